//! Certificates (Kerio 19): one store under `<data>/tls/store/<id>/` that the web admin
//! and SIP over TLS share. An entry is a certificate (`cert.pem`, its chain, and
//! `key.pem`) or a request waiting for its certificate (`request.pem` and `key.pem`).
//! The active certificate is the one in `<data>/web/` (what the servers load at start);
//! setting another active copies it there and both servers present it to the next
//! connection. Certificates the box trusts besides the system's roots (for providers
//! and links over TLS) are `<data>/tls/trusted-ca.pem`. API: `/api/v1/certificates`;
//! page: `/admin/certificates`.

use crate::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};

/// The certificate the dashboard warns about this many days before it runs out.
pub const WARN_DAYS: i64 = 30;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Certificate,
    Request,
}

/// An entry of the store as the page and API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub id: String,
    pub kind: Kind,
    /// Distinguished name, `CN=..., O=...`.
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses it is made for.
    pub names: Vec<String>,
    /// Unix seconds (0 for a request).
    pub not_before: i64,
    pub not_after: i64,
    /// Whole days until it runs out (negative: expired).
    pub days_left: i64,
    pub self_signed: bool,
    /// Certificates in its chain (the server's first).
    pub chain: usize,
    pub active: bool,
}

impl Info {
    fn blank(id: &str, kind: Kind) -> Info {
        Info {
            id: id.into(),
            kind,
            subject: String::new(),
            issuer: String::new(),
            names: Vec::new(),
            not_before: 0,
            not_after: 0,
            days_left: 0,
            self_signed: false,
            chain: 0,
            active: false,
        }
    }
}

/// What a new certificate or request is made for (Kerio's dialog: host name and
/// country are required).
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub hostname: String,
    pub organization: String,
    pub city: String,
    pub country: String,
    /// More DNS names or IP addresses.
    pub names: Vec<String>,
    /// Validity of a self-signed certificate.
    pub days: u32,
}

/// A refusal with the reason the admin reads.
#[derive(Debug)]
pub struct Refused(pub String);

impl From<io::Error> for Refused {
    fn from(e: io::Error) -> Self {
        Refused(format!("{STORAGE}{e}"))
    }
}

/// How a refusal for a failing disk starts (the API answers 500, not 400).
pub const STORAGE: &str = "storage: ";
/// How a refusal for something that is not there starts (the API answers 404).
pub const MISSING: &str = "no such certificate";

/// Most entries in the store, and most names in one certificate.
const MAX_ENTRIES: usize = 100;
const MAX_NAMES: usize = 100;

/// One change to the store at a time (two activations must not interleave their
/// files, nor two first listings both take the initial certificate in).
static STORE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn store_lock() -> std::sync::MutexGuard<'static, ()> {
    STORE.lock().unwrap_or_else(|e| e.into_inner())
}

/// PEM of certificates as parsed (whatever else a pasted file held, a private key
/// among it, is not kept).
fn chain_pem(certs: &[CertificateDer<'static>]) -> String {
    let blocks: Vec<pem::Pem> = certs
        .iter()
        .map(|c| pem::Pem::new("CERTIFICATE", c.as_ref().to_vec()))
        .collect();
    pem::encode_many(&blocks)
}

fn check_room(data_dir: &Path) -> Result<(), Refused> {
    let n = std::fs::read_dir(store_dir(data_dir)).map_or(0, |rd| rd.count());
    if n >= MAX_ENTRIES {
        return refused(format!(
            "the store holds {MAX_ENTRIES} certificates and requests: remove some first"
        ));
    }
    Ok(())
}

fn refused<T>(msg: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(msg.into()))
}

fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("store")
}

/// Whether `id` can name an entry (what the store makes: letters, digits and `-`).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn entry_dir(data_dir: &Path, id: &str) -> Result<PathBuf, Refused> {
    let d = store_dir(data_dir).join(id);
    if !valid_id(id) || !d.is_dir() {
        return refused(format!("{MISSING}: {id}"));
    }
    Ok(d)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn new_id(kind: &str) -> String {
    use rand::Rng;
    let day = time::OffsetDateTime::now_utc().date();
    let n: u32 = rand::thread_rng().gen();
    format!(
        "{kind}-{:04}{:02}{:02}-{n:08x}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Reads a PEM chain (at least one certificate).
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Refused> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| Refused(format!("the certificate is not PEM: {e}")))?;
    if certs.is_empty() {
        return refused("no certificate (-----BEGIN CERTIFICATE-----) in it");
    }
    for c in &certs {
        x509_parser::parse_x509_certificate(c)
            .map_err(|e| Refused(format!("a certificate cannot be read: {e}")))?;
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Refused> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| Refused(format!("the private key is not a PEM key: {e}")))
}

/// The server's certificate and key belong together.
fn check_pair(
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), Refused> {
    let signer = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| Refused(format!("the private key cannot be used: {e}")))?;
    rustls::sign::CertifiedKey::new(certs.to_vec(), signer)
        .keys_match()
        .map_err(|_| Refused("the private key does not belong to the certificate".into()))
}

fn dn(n: &x509_parser::x509::X509Name) -> String {
    n.to_string()
}

fn san_names(ext: Option<&x509_parser::extensions::SubjectAlternativeName>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Some(san) = ext else { return Vec::new() };
    san.general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// What a certificate chain says about its first certificate.
pub fn describe(id: &str, certs: &[CertificateDer<'static>], active: bool) -> Info {
    let mut info = Info::blank(id, Kind::Certificate);
    info.chain = certs.len();
    info.active = active;
    if let Some(Ok((_, c))) = certs
        .first()
        .map(|c| x509_parser::parse_x509_certificate(c))
    {
        info.subject = dn(c.subject());
        info.issuer = dn(c.issuer());
        info.self_signed = c.subject().as_raw() == c.issuer().as_raw();
        info.names = san_names(c.subject_alternative_name().ok().flatten().map(|e| e.value));
        info.not_before = c.validity().not_before.timestamp();
        info.not_after = c.validity().not_after.timestamp();
        info.days_left = (info.not_after - now_unix()).div_euclid(86_400);
    }
    info
}

fn describe_request(id: &str, pem: &[u8]) -> Info {
    let mut info = Info::blank(id, Kind::Request);
    if let Ok(der) = CertificateSigningRequestDer::from_pem_slice(pem) {
        use x509_parser::prelude::FromDer;
        if let Ok((_, r)) =
            x509_parser::certification_request::X509CertificationRequest::from_der(der.as_ref())
        {
            info.subject = dn(&r.certification_request_info.subject);
            if let Some(exts) = r.requested_extensions() {
                for e in exts {
                    if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(s) = e {
                        info.names = san_names(Some(s));
                    }
                }
            }
        }
    }
    info
}

/// The active certificate chain (the web's files).
pub fn active_chain(data_dir: &Path) -> Option<Vec<CertificateDer<'static>>> {
    let (cert, _) = tls::paths(data_dir);
    parse_chain(&std::fs::read(cert).ok()?).ok()
}

/// Every entry, the active one marked; the certificate made at first start is taken
/// into the store the first time it is listed.
pub fn list(data_dir: &Path) -> Vec<Info> {
    let _g = store_lock();
    list_locked(data_dir)
}

fn list_locked(data_dir: &Path) -> Vec<Info> {
    let active = active_chain(data_dir);
    let active_leaf = active.as_ref().and_then(|c| c.first().cloned());
    let mut out = Vec::new();
    let mut seen_active = false;
    if let Ok(rd) = std::fs::read_dir(store_dir(data_dir)) {
        let mut ids: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|id| valid_id(id))
            .collect();
        ids.sort();
        for id in ids {
            let d = store_dir(data_dir).join(&id);
            if let Ok(pem) = std::fs::read(d.join("cert.pem")) {
                if let Ok(chain) = parse_chain(&pem) {
                    let is_active = active_leaf.as_ref() == chain.first();
                    seen_active |= is_active;
                    out.push(describe(&id, &chain, is_active));
                }
            } else if let Ok(pem) = std::fs::read(d.join("request.pem")) {
                out.push(describe_request(&id, &pem));
            }
        }
    }
    if !seen_active {
        if let Some(chain) = active {
            let (cert, key) = tls::paths(data_dir);
            let id = new_id("initial");
            if let (Ok(_), Ok(k)) = (std::fs::read(cert), std::fs::read(key)) {
                let c = chain_pem(&chain);
                if save_entry(data_dir, &id, Some(c.as_bytes()), &k, None).is_ok() {
                    out.insert(0, describe(&id, &chain, true));
                }
            }
        }
    }
    out
}

fn save_entry(
    data_dir: &Path,
    id: &str,
    cert: Option<&[u8]>,
    key: &[u8],
    request: Option<&[u8]>,
) -> io::Result<()> {
    let d = store_dir(data_dir).join(id);
    std::fs::create_dir_all(&d)?;
    tls::write_private(&d.join("key.pem"), key)?;
    if let Some(r) = request {
        tls::write_private(&d.join("request.pem"), r)?;
    }
    if let Some(c) = cert {
        tls::write_private(&d.join("cert.pem"), c)?;
        let _ = std::fs::remove_file(d.join("request.pem"));
    }
    Ok(())
}

fn params(s: &Subject) -> Result<rcgen::CertificateParams, Refused> {
    let host = s.hostname.trim();
    if host.is_empty() {
        return refused("the host name is required");
    }
    if !config::valid_host(host) {
        return refused(format!("{host:?} is not a host name or IP address"));
    }
    let country = s.country.trim();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return refused("the country is required: two letters (ISO 3166, e.g. CZ, US)");
    }
    for (what, v) in [("organization", &s.organization), ("city", &s.city)] {
        if v.len() > 64 || v.chars().any(char::is_control) {
            return refused(format!("the {what} is up to 64 printable characters"));
        }
    }
    if s.names.len() > MAX_NAMES {
        return refused(format!("at most {MAX_NAMES} more names"));
    }
    let mut names = vec![host.to_string()];
    for n in &s.names {
        let n = n.trim();
        if n.is_empty() || names.iter().any(|x| x == n) {
            continue;
        }
        if !config::valid_host(n) {
            return refused(format!("{n:?} is not a host name or IP address"));
        }
        names.push(n.to_string());
    }
    let mut p = rcgen::CertificateParams::new(names)
        .map_err(|e| Refused(format!("certificate names: {e}")))?;
    p.distinguished_name
        .push(rcgen::DnType::CommonName, host.to_string());
    if !s.organization.trim().is_empty() {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, s.organization.trim());
    }
    if !s.city.trim().is_empty() {
        p.distinguished_name
            .push(rcgen::DnType::LocalityName, s.city.trim());
    }
    p.distinguished_name
        .push(rcgen::DnType::CountryName, country.to_ascii_uppercase());
    Ok(p)
}

/// Makes a self-signed certificate (not active until chosen). Returns its id.
pub fn create_self_signed(data_dir: &Path, s: &Subject) -> Result<String, Refused> {
    let _g = store_lock();
    check_room(data_dir)?;
    let mut p = params(s)?;
    let days = if s.days == 0 { 3650 } else { s.days };
    if days > 3650 {
        return refused("a certificate is valid for 1 to 3650 days");
    }
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    p.not_after = (now + std::time::Duration::from_secs(u64::from(days) * 86_400)).into();
    let key = rcgen::KeyPair::generate().map_err(|e| Refused(format!("key: {e}")))?;
    let cert = p
        .self_signed(&key)
        .map_err(|e| Refused(format!("certificate: {e}")))?;
    let id = new_id("self-signed");
    save_entry(
        data_dir,
        &id,
        Some(cert.pem().as_bytes()),
        key.serialize_pem().as_bytes(),
        None,
    )?;
    tracing::info!(id, subject = %s.hostname, "self-signed certificate made");
    Ok(id)
}

/// Makes a key and a certificate signing request (PKCS #10) for a certification
/// authority. Returns its id; the request is `request_pem(id)`.
pub fn create_request(data_dir: &Path, s: &Subject) -> Result<String, Refused> {
    let _g = store_lock();
    check_room(data_dir)?;
    let p = params(s)?;
    let key = rcgen::KeyPair::generate().map_err(|e| Refused(format!("key: {e}")))?;
    let csr = p
        .serialize_request(&key)
        .map_err(|e| Refused(format!("request: {e}")))?;
    let pem = csr.pem().map_err(|e| Refused(format!("request: {e}")))?;
    let id = new_id("request");
    save_entry(
        data_dir,
        &id,
        None,
        key.serialize_pem().as_bytes(),
        Some(pem.as_bytes()),
    )?;
    tracing::info!(id, subject = %s.hostname, "certificate request made");
    Ok(id)
}

/// An entry's request (PEM) or certificate chain (PEM).
pub fn download(data_dir: &Path, id: &str, what: &str) -> Result<Vec<u8>, Refused> {
    let d = entry_dir(data_dir, id)?;
    let file = match what {
        "request" => "request.pem",
        "certificate" => "cert.pem",
        _ => return refused("download the certificate or the request"),
    };
    std::fs::read(d.join(file)).map_err(|_| Refused(format!("{MISSING} file: {id} has no {what}")))
}

/// Imports a signed certificate with its chain: with its key (a certificate made
/// elsewhere), or without one when it answers a request made here (the request's key
/// is used and the request becomes the certificate). Returns its id.
pub fn import(
    data_dir: &Path,
    chain_pem: &[u8],
    key_pem: Option<&[u8]>,
) -> Result<String, Refused> {
    if chain_pem.len() > 64 * 1024 || key_pem.is_some_and(|k| k.len() > 16 * 1024) {
        return refused("a certificate chain is at most 64 KiB and a key 16 KiB");
    }
    let chain = parse_chain(chain_pem)?;
    // Only the certificates are kept, re-encoded (a key pasted with them is not).
    let clean = self::chain_pem(&chain);
    let info = describe("", &chain, false);
    if info.not_after < now_unix() {
        return refused("the certificate has expired");
    }
    let _g = store_lock();
    if let Some(k) = key_pem {
        let key = parse_key(k)?;
        check_pair(&chain, &key)?;
        check_room(data_dir)?;
        let id = new_id("imported");
        save_entry(data_dir, &id, Some(clean.as_bytes()), k, None)?;
        tracing::info!(id, subject = %info.subject, "certificate imported");
        return Ok(id);
    }
    // Without a key: the request made here whose key it carries.
    for e in list_locked(data_dir)
        .into_iter()
        .filter(|e| e.kind == Kind::Request)
    {
        let d = store_dir(data_dir).join(&e.id);
        let Ok(k) = std::fs::read(d.join("key.pem")) else {
            continue;
        };
        let Ok(key) = parse_key(&k) else { continue };
        if check_pair(&chain, &key).is_ok() {
            save_entry(data_dir, &e.id, Some(clean.as_bytes()), &k, None)?;
            tracing::info!(id = %e.id, subject = %info.subject, "signed certificate imported for its request");
            return Ok(e.id);
        }
    }
    refused("no request made here has this certificate's key: import it with its private key")
}

/// A certificate entry that can be made active: its chain and key, read and as files.
struct Usable {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// The entry `id` if it can be made active (a certificate with its key, not expired).
fn usable(data_dir: &Path, id: &str) -> Result<Usable, Refused> {
    let d = entry_dir(data_dir, id)?;
    let Ok(c) = std::fs::read(d.join("cert.pem")) else {
        return refused(format!(
            "{id} is a request: import the certificate the authority signed first"
        ));
    };
    let k = std::fs::read(d.join("key.pem")).map_err(|_| Refused(format!("{id} has no key")))?;
    let chain = parse_chain(&c)?;
    let key = parse_key(&k)?;
    check_pair(&chain, &key)?;
    if describe(id, &chain, false).not_after < now_unix() {
        return refused("the certificate has expired");
    }
    Ok(Usable {
        chain,
        key,
        chain_pem: c,
        key_pem: k,
    })
}

/// Makes `id` the active certificate: its files become the web's (atomically, the key
/// first) and `active` serves it to the next connection, web and SIP alike.
pub fn activate(
    data_dir: &Path,
    id: &str,
    active: Option<&tls::ActiveCert>,
) -> Result<(), Refused> {
    let _g = store_lock();
    let u = usable(data_dir, id)?;
    let (cert_path, key_path) = tls::paths(data_dir);
    std::fs::create_dir_all(cert_path.parent().expect("has a parent"))?;
    // The files first, then the servers: a write that fails puts the old files back
    // and leaves the servers as they were. Cert and key are renamed into place one
    // after the other; a power cut between them leaves a pair that does not match,
    // which the next start replaces by a new self-signed certificate (logged) rather
    // than serving nothing.
    let old = (std::fs::read(&key_path), std::fs::read(&cert_path));
    let written = tls::write_private(&key_path, &u.key_pem)
        .and_then(|()| tls::write_private(&cert_path, &u.chain_pem));
    if let Err(e) = written {
        if let (Ok(k), Ok(c)) = old {
            let _ = tls::write_private(&key_path, &k);
            let _ = tls::write_private(&cert_path, &c);
        }
        return Err(e.into());
    }
    if let Some(a) = active {
        a.set(u.chain, u.key)?;
    }
    tracing::info!(id, "certificate made active");
    Ok(())
}

/// Removes an entry that is not active.
pub fn remove(data_dir: &Path, id: &str) -> Result<(), Refused> {
    let _g = store_lock();
    let d = entry_dir(data_dir, id)?;
    if list_locked(data_dir).iter().any(|e| e.id == id && e.active) {
        return refused("the active certificate cannot be removed: make another one active first");
    }
    std::fs::remove_dir_all(d)?;
    Ok(())
}

/// The certificates the box trusts besides the system's roots.
pub fn trusted(data_dir: &Path) -> Vec<Info> {
    let certs = tls::trusted_cas(data_dir);
    certs
        .iter()
        .enumerate()
        .map(|(i, c)| describe(&format!("ca-{}", i + 1), std::slice::from_ref(c), false))
        .collect()
}

/// Replaces the trusted certificates (PEM; empty trusts only the system's roots).
pub fn set_trusted(data_dir: &Path, pem: &[u8]) -> Result<usize, Refused> {
    if pem.len() > 256 * 1024 {
        return refused("trusted certificates are at most 256 KiB");
    }
    let path = tls::trusted_cas_path(data_dir);
    if pem.iter().all(u8::is_ascii_whitespace) {
        let _ = std::fs::remove_file(&path);
        return Ok(0);
    }
    let certs = parse_chain(pem)?;
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    tls::write_private(&path, chain_pem(&certs).as_bytes())?;
    Ok(certs.len())
}

/// The dashboard's warning about the active certificate, if it runs out soon.
pub fn expiry_warning(data_dir: &Path) -> Option<String> {
    let chain = active_chain(data_dir)?;
    let i = describe("", &chain, true);
    if i.days_left < 0 {
        Some(format!(
            "The active certificate ({}) has expired: browsers and phones over TLS refuse it. Make another one active under Certificates.",
            i.subject
        ))
    } else if i.days_left <= WARN_DAYS {
        Some(format!(
            "The active certificate ({}) runs out in {} days: renew it under Certificates.",
            i.subject, i.days_left
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(host: &str) -> Subject {
        Subject {
            hostname: host.into(),
            organization: "Example s.r.o.".into(),
            city: "Plzen".into(),
            country: "cz".into(),
            names: vec!["127.0.0.1".into()],
            days: 0,
        }
    }

    fn box_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        tls::load_or_make(d.path(), &[]).unwrap();
        d
    }

    /// A test CA signs a request's PEM; returns the chain (certificate, CA).
    fn sign(request_pem: &str, days: i64) -> (String, rcgen::Certificate) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut req = rcgen::CertificateSigningRequestParams::from_pem(request_pem).unwrap();
        let now = time::OffsetDateTime::now_utc();
        req.params.not_before = now - time::Duration::days(1);
        req.params.not_after = now + time::Duration::days(days);
        let cert = req.signed_by(&issuer).unwrap();
        (format!("{}{}", cert.pem(), ca_cert.pem()), ca_cert)
    }

    #[test]
    fn the_first_certificate_is_listed_active_and_cannot_be_removed() {
        let d = box_dir();
        let l = list(d.path());
        assert_eq!(l.len(), 1);
        assert!(l[0].active && l[0].self_signed && l[0].id.starts_with("initial-"));
        assert!(l[0].days_left > 3000);
        assert!(l[0].names.contains(&"127.0.0.1".to_string()), "{:?}", l[0]);
        // Listed again: the same entry, not a second copy.
        assert_eq!(list(d.path()).len(), 1);
        assert!(remove(d.path(), &l[0].id).unwrap_err().0.contains("active"));
    }

    #[test]
    fn a_request_signed_elsewhere_comes_back_and_becomes_active() {
        let d = box_dir();
        let id = create_request(d.path(), &subject("pbx.example.com")).unwrap();
        let info = list(d.path()).into_iter().find(|e| e.id == id).unwrap();
        assert_eq!(info.kind, Kind::Request);
        assert!(
            info.subject.contains("CN=pbx.example.com"),
            "{}",
            info.subject
        );
        assert!(info.subject.contains("C=CZ"), "{}", info.subject);
        assert_eq!(info.names, vec!["pbx.example.com", "127.0.0.1"]);
        assert!(activate(d.path(), &id, None)
            .unwrap_err()
            .0
            .contains("request"));
        let csr = String::from_utf8(download(d.path(), &id, "request").unwrap()).unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let (chain, _) = sign(&csr, 90);
        // Without a key: it answers the request made here.
        assert_eq!(import(d.path(), chain.as_bytes(), None).unwrap(), id);
        let info = list(d.path()).into_iter().find(|e| e.id == id).unwrap();
        assert_eq!(
            (info.kind, info.chain, info.self_signed),
            (Kind::Certificate, 2, false)
        );
        assert!(info.issuer.contains("Test CA"));
        assert!((88..=90).contains(&info.days_left), "{}", info.days_left);
        activate(d.path(), &id, None).unwrap();
        let l = list(d.path());
        assert_eq!(l.iter().filter(|e| e.active).count(), 1);
        assert!(l.iter().any(|e| e.id == id && e.active));
        // The web's files are now this certificate and its key.
        let (c, k, _) = tls::load_or_make(d.path(), &[]).unwrap();
        assert_eq!(c.len(), 2);
        check_pair(&c, &k).unwrap();
        // It runs out within 90 days: the dashboard warns only inside 30.
        assert!(expiry_warning(d.path()).is_none());
    }

    #[test]
    fn soon_expiring_certificates_are_warned_about() {
        let d = box_dir();
        let id = create_request(d.path(), &subject("pbx.example.com")).unwrap();
        let csr = String::from_utf8(download(d.path(), &id, "request").unwrap()).unwrap();
        let (chain, _) = sign(&csr, 10);
        import(d.path(), chain.as_bytes(), None).unwrap();
        activate(d.path(), &id, None).unwrap();
        let w = expiry_warning(d.path()).unwrap();
        assert!(
            w.contains("runs out in 9 days") || w.contains("runs out in 10 days"),
            "{w}"
        );
    }

    #[test]
    fn bad_imports_are_refused_with_the_reason_and_change_nothing() {
        let d = box_dir();
        let before = list(d.path()).len();
        let other = rcgen::generate_simple_self_signed(vec!["x.example".to_string()]).unwrap();
        let wrong_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        type Case = (Vec<u8>, Option<Vec<u8>>, &'static str);
        let cases: Vec<Case> = vec![
            (b"hello".to_vec(), None, "no certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
                None,
                "cannot be read",
            ),
            (other.cert.pem().into_bytes(), None, "no request made here"),
            (
                other.cert.pem().into_bytes(),
                Some(wrong_key.into_bytes()),
                "does not belong",
            ),
            (
                other.cert.pem().into_bytes(),
                Some(b"not a key".to_vec()),
                "not a PEM key",
            ),
            (vec![b'A'; 70_000], None, "at most"),
        ];
        for (chain, key, why) in cases {
            let e = import(d.path(), &chain, key.as_deref()).unwrap_err().0;
            assert!(e.contains(why), "{why}: {e}");
        }
        assert_eq!(list(d.path()).len(), before);
        // Its own key makes it importable; a key pasted with the certificate is not
        // kept in the certificate's file (which auditors may download).
        let key = other.signing_key.serialize_pem();
        let pasted = format!("{}{key}", other.cert.pem());
        let id = import(d.path(), pasted.as_bytes(), Some(key.as_bytes())).unwrap();
        assert!(id.starts_with("imported-"));
        let kept = String::from_utf8(download(d.path(), &id, "certificate").unwrap()).unwrap();
        assert!(
            kept.contains("BEGIN CERTIFICATE") && !kept.contains("PRIVATE KEY"),
            "{kept}"
        );
        for s in [
            Subject {
                country: "Czechia".into(),
                ..subject("pbx")
            },
            subject(""),
            subject("bad host!"),
        ] {
            assert!(create_self_signed(d.path(), &s).is_err());
        }
        // ".." is a directory, but no id.
        assert!(download(d.path(), "..", "request")
            .unwrap_err()
            .0
            .starts_with(MISSING));
        assert!(download(d.path(), "../../etc", "request").is_err());
        assert!(remove(d.path(), "nope").is_err());
    }

    #[test]
    fn trusted_certificates_are_replaced_whole() {
        let d = box_dir();
        assert!(trusted(d.path()).is_empty());
        let a = rcgen::generate_simple_self_signed(vec!["a.example".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.example".to_string()]).unwrap();
        let both = format!("{}{}", a.cert.pem(), b.cert.pem());
        assert_eq!(set_trusted(d.path(), both.as_bytes()).unwrap(), 2);
        assert_eq!(trusted(d.path()).len(), 2);
        assert!(set_trusted(d.path(), b"junk").is_err());
        assert_eq!(trusted(d.path()).len(), 2);
        assert_eq!(set_trusted(d.path(), b"  \n").unwrap(), 0);
        assert!(trusted(d.path()).is_empty());
    }
}
