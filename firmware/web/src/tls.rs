//! The HTTPS certificate: made once (self-signed, rcgen) for the box's host name and
//! addresses, kept in the data directory, reused after restarts.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the certificate and key live under the data directory.
pub fn paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("web");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The names the certificate is made for: host name, localhost, every local address.
pub fn subject_names(extra: &[IpAddr]) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Ok(h) = nix::unistd::gethostname() {
        if let Some(h) = h.to_str().filter(|h| !h.is_empty() && *h != "localhost") {
            names.push(h.to_string());
        }
    }
    let mut ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(s) = a.address else { continue };
            if let Some(v4) = s.as_sockaddr_in() {
                ips.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = s.as_sockaddr_in6() {
                // Link-local addresses need a zone in URLs; browsers do not use them.
                if v6.ip().segments()[0] & 0xffc0 != 0xfe80 {
                    ips.push(IpAddr::V6(v6.ip()));
                }
            }
        }
    }
    ips.extend(extra.iter().filter(|ip| !ip.is_unspecified()));
    for ip in ips {
        let s = ip.to_string();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

/// Loads the certificate and key, making and saving new ones when there are none (or
/// they cannot be read). Returns them with whether they were made now.
pub fn load_or_make(
    data_dir: &Path,
    extra: &[IpAddr],
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, bool)> {
    let (cert_path, key_path) = paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        match read(&cert_path, &key_path) {
            Ok((c, k)) => return Ok((c, k, false)),
            Err(e) => tracing::warn!("web certificate unreadable ({e}); making a new one"),
        }
    }
    let names = subject_names(extra);
    let mut params = rcgen::CertificateParams::new(names.clone())
        .map_err(|e| bad(format!("certificate names: {e}")))?;
    let host = names.get(1).cloned().unwrap_or_else(|| "pbx".into());
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("PBX {host}"));
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "PBX appliance (self-signed)",
    );
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86_400)).into();
    let key = rcgen::KeyPair::generate().map_err(|e| bad(format!("key: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| bad(format!("certificate: {e}")))?;
    std::fs::create_dir_all(cert_path.parent().expect("has a parent"))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    write_private(&cert_path, cert.pem().as_bytes())?;
    tracing::info!(names = ?names, "made a self-signed web certificate");
    let (c, k) = read(&cert_path, &key_path)?;
    Ok((c, k, true))
}

/// Writes via a temporary file and rename, mode 0600, so a power cut leaves the old
/// file or the new one.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn read(
    cert_path: &Path,
    key_path: &Path,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    use rustls::pki_types::pem::PemObject;
    let certs = crate::certs::parse_chain(&std::fs::read(cert_path)?)
        .map_err(|e| bad(format!("{}: {}", cert_path.display(), e.0)))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| bad(format!("{}: {e}", key_path.display())))?;
    // A pair that does not match (a power cut between writing the two) is unreadable
    // too: a new certificate is made rather than the servers refusing to start.
    ActiveCert::certified(certs.clone(), key.clone_key())?;
    Ok((certs, key))
}

/// Where the certificates of CAs the administrator trusts (besides the system's roots)
/// are kept: one PEM file of any number of certificates.
pub fn trusted_cas_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("trusted-ca.pem")
}

/// The administrator's trusted CA certificates (none when the file is missing; an
/// unreadable one is logged and trusts none: the store writes only parsed ones).
pub fn trusted_cas(data_dir: &Path) -> Vec<CertificateDer<'static>> {
    let path = trusted_cas_path(data_dir);
    let Ok(pem) = std::fs::read(&path) else {
        return Vec::new();
    };
    crate::certs::parse_chain(&pem).unwrap_or_else(|e| {
        tracing::warn!("{}: {}", path.display(), e.0);
        Vec::new()
    })
}

/// A TLS client configuration (SIP over TLS, syslog, the backup target) that trusts
/// the system's roots and the administrator's CAs in `data_dir`. Returns it with how
/// many roots it trusts.
pub fn client_config(data_dir: &Path) -> io::Result<(Arc<rustls::ClientConfig>, usize)> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system certificates: {e}");
    }
    roots.add_parsable_certificates(native.certs);
    let (added, ignored) = roots.add_parsable_certificates(trusted_cas(data_dir));
    if ignored > 0 {
        tracing::warn!("{ignored} trusted CA certificate(s) could not be used");
    }
    tracing::debug!(extra = added, total = roots.len(), "TLS trust");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    Ok((Arc::new(cfg), roots.len()))
}

/// The certificate the servers present, shared by the web admin and SIP over TLS and
/// replaced when the admin makes another certificate active: each new connection gets
/// the current one.
#[derive(Debug)]
pub struct ActiveCert(std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>);

impl ActiveCert {
    fn certified(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<Arc<rustls::sign::CertifiedKey>> {
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| bad(format!("the private key cannot be used: {e}")))?;
        let ck = rustls::sign::CertifiedKey::new(certs, signer);
        ck.keys_match()
            .map_err(|e| bad(format!("certificate and key do not match: {e}")))?;
        Ok(Arc::new(ck))
    }

    /// The certificate to present first.
    pub fn new(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<Arc<ActiveCert>> {
        Ok(Arc::new(ActiveCert(std::sync::RwLock::new(
            Self::certified(certs, key)?,
        ))))
    }

    /// Presents this certificate from the next connection on.
    pub fn set(
        &self,
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<()> {
        let ck = Self::certified(certs, key)?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = ck;
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for ActiveCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A rustls server configuration presenting the active certificate: TLS 1.2 and 1.3,
/// with these ALPN protocols.
pub fn server_config_active(
    active: Arc<ActiveCert>,
    alpn: &[&[u8]],
) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(active);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A rustls server configuration for this certificate: TLS 1.2 and 1.3, HTTP/1.1.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    server_config_active(ActiveCert::new(certs, key)?, &[b"http/1.1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, _, made) = load_or_make(dir.path(), &[]).unwrap();
        assert!(made);
        let (c2, k2, made) = load_or_make(dir.path(), &[]).unwrap();
        assert!(!made);
        assert_eq!(c1, c2, "the same certificate after a restart");
        server_config(c2, k2).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(paths(dir.path()).1)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_broken_certificate_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        load_or_make(dir.path(), &[]).unwrap();
        std::fs::write(paths(dir.path()).0, "garbage").unwrap();
        let (_, _, made) = load_or_make(dir.path(), &[]).unwrap();
        assert!(made);
    }

    #[test]
    fn names_cover_loopback() {
        let n = subject_names(&[]);
        assert!(n.contains(&"127.0.0.1".to_string()) && n.contains(&"localhost".to_string()));
    }
}
