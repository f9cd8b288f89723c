//! Answers a file request from a phone, over TFTP or HTTPS alike: checks the access rules,
//! finds which family and phone the file name belongs to, adds an unknown phone to the
//! table (with an extension when auto-create is on), renders its template and remembers
//! what each phone fetched, so a configuration change shows which phones need a restart.

use crate::phones;
use crate::templates::{self, Context, LineView, Match, PhoneView};
use bytes::Bytes;
use config::{format_mac, phone_model, Phone, Snapshot, Subnet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::Configurator;

/// How the file was asked for; decides the URLs written into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Tftp,
    /// `https://<box>:<port>/prov/`
    Https {
        port: u16,
    },
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Tftp => "tftp",
            Via::Https { .. } => "https",
        }
    }
}

/// The answer to a file request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    File(Bytes),
    /// TFTP error 1, HTTP 404.
    NotFound(String),
    /// TFTP error 2, HTTP 403.
    Denied(String),
    /// Something on our side failed (TFTP error 0, HTTP 500).
    Failed(String),
}

/// What a phone fetched last (kept in the store, written once per fetch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub ip: String,
    /// The box address it asked.
    pub local: String,
    /// Unix seconds.
    pub when: u64,
    pub file: String,
    pub via: String,
    /// Port of the HTTPS server when `via` is https.
    #[serde(default)]
    pub port: u16,
    /// SHA-256 of what it got.
    pub hash: String,
}

/// A row of the Provisioned Phones table.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneRow {
    pub mac: String,
    pub model: String,
    pub manufacturer: String,
    pub max_extensions: usize,
    pub extensions: Vec<String>,
    pub accounts: Vec<String>,
    pub state: config::PhoneState,
    pub ip: Option<String>,
    pub last_fetch: Option<u64>,
    pub last_file: Option<String>,
    /// Its configuration changed since it fetched it.
    pub needs_restart: bool,
    /// Its busy-lamp keys.
    pub blf_keys: Vec<config::BlfKey>,
}

/// File names that are never served: anything that could leave the flat provisioning
/// space or hide in a listing.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err("file names are 1 to 128 characters".into());
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err("paths are not served".into());
    }
    if name.starts_with('.') || name.chars().any(|c| c.is_control()) {
        return Err("illegal file name".into());
    }
    Ok(())
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How long a generic file's request tells which model asks from that address.
const HINT_SECS: u64 = 600;
/// Addresses remembered for hints; older ones are dropped beyond this (UDP sources can
/// be forged, so the map must not grow without end).
const MAX_HINTS: usize = 4096;

/// The store's name for the restart of the phones set for later.
const RESTART_TASK: &str = "phone-restart";

/// Serves phone files; shared by the TFTP server and the web.
pub struct Provisioner {
    cfg: Arc<Configurator>,
    sip_port: u16,
    firmware_dir: PathBuf,
    seen: Mutex<BTreeMap<String, Seen>>,
    /// Address -> (family, model, when) of the last generic file it fetched.
    hints: Mutex<HashMap<IpAddr, (&'static str, &'static str, u64)>>,
    /// The firmware images read so far, by path, with their modification time: many
    /// phones fetching one image share one copy.
    images: Mutex<HashMap<PathBuf, (std::time::SystemTime, Bytes)>>,
    /// A restart set for later: Unix time and MAC addresses (empty = all phones).
    scheduled: Mutex<Option<(u64, Vec<String>)>>,
}

impl Provisioner {
    /// `data_dir` holds `provisioning/firmware/<MODEL>/`.
    pub fn new(cfg: Arc<Configurator>, sip_port: u16, data_dir: &Path) -> Provisioner {
        let mut seen = BTreeMap::new();
        match cfg.store().phones_seen() {
            Ok(list) => {
                for (mac, blob) in list {
                    if let Ok(s) = serde_json::from_slice::<Seen>(&blob) {
                        seen.insert(mac, s);
                    }
                }
            }
            Err(e) => tracing::warn!("cannot read what phones fetched: {e}"),
        }
        let scheduled = match cfg.store().scheduled(RESTART_TASK) {
            Ok(b) => b.and_then(|b| serde_json::from_slice(&b).ok()),
            Err(e) => {
                tracing::warn!("cannot read the scheduled restart of the phones: {e}");
                None
            }
        };
        Provisioner {
            cfg,
            sip_port,
            firmware_dir: data_dir.join("provisioning").join("firmware"),
            seen: Mutex::new(seen),
            hints: Mutex::new(HashMap::new()),
            scheduled: Mutex::new(scheduled),
            images: Mutex::new(HashMap::new()),
        }
    }

    pub fn configurator(&self) -> &Arc<Configurator> {
        &self.cfg
    }

    /// Answers a request for `name` from `client`, which reached the box at `local`.
    pub fn fetch(&self, name: &str, client: IpAddr, local: IpAddr, via: Via, now: u64) -> Fetch {
        let snap = self.cfg.snapshot();
        let p = &snap.config.provisioning;
        if !p.enabled {
            return Fetch::Denied("provisioning is disabled".into());
        }
        if !allowed(&p.allowed_sources, client) {
            return Fetch::Denied(format!("{client} may not fetch phone files"));
        }
        if let Err(e) = check_name(name) {
            return Fetch::Denied(e);
        }
        if let Some(f) = self.firmware_file(&snap, name, client) {
            return f;
        }
        let ms = templates::matches(name);
        if ms.is_empty() {
            return Fetch::NotFound(format!("no file {name}"));
        }
        match ms[0].mac.clone() {
            Some(mac) => self.phone_file(name, &mac, &ms, client, local, via, now),
            None => {
                let m = self.pick(&ms, client, now);
                let model = m
                    .model
                    .or_else(|| templates::models_of(m.family.name).next())
                    .expect("every family has a model");
                let mut hints = self.hints.lock().expect("hints");
                if hints.len() >= MAX_HINTS {
                    hints.retain(|_, h| now.saturating_sub(h.2) < HINT_SECS);
                    if hints.len() >= MAX_HINTS {
                        hints.clear();
                    }
                }
                hints.insert(client, (m.family.name, model.name, now));
                drop(hints);
                let ctx = self.context(&snap, local, via, model, None);
                finish(templates::render(m.rule, &ctx))
            }
        }
    }

    /// Of several families that ask for the same name: the one this address just showed
    /// with a generic file, else the vendor of the MAC, else the first.
    fn pick<'a>(&self, ms: &'a [Match], client: IpAddr, now: u64) -> &'a Match {
        let hint = self.hints.lock().expect("hints").get(&client).copied();
        if let Some((fam, _, when)) = hint {
            if now.saturating_sub(when) < HINT_SECS {
                if let Some(m) = ms.iter().find(|m| m.family.name == fam) {
                    return m;
                }
            }
        }
        if let Some(f) = ms
            .iter()
            .find_map(|m| m.mac.as_deref())
            .and_then(templates::family_by_oui)
        {
            if let Some(m) = ms.iter().find(|m| m.family.name == f.name) {
                return m;
            }
        }
        &ms[0]
    }

    #[allow(clippy::too_many_arguments)]
    fn phone_file(
        &self,
        name: &str,
        mac: &str,
        ms: &[Match],
        client: IpAddr,
        local: IpAddr,
        via: Via,
        now: u64,
    ) -> Fetch {
        let snap = self.cfg.snapshot();
        let known = snap.config.phones.iter().find(|p| p.mac == mac).cloned();
        let m = match &known {
            Some(ph) if ph.disabled => {
                return Fetch::Denied(format!(
                    "phone {} was removed; add it again to provision it",
                    format_mac(mac)
                ))
            }
            Some(ph) => {
                let fam = phone_model(&ph.model).map(|m| m.family).unwrap_or("");
                match ms.iter().find(|m| m.family.name == fam) {
                    Some(m) => m,
                    None => {
                        return Fetch::NotFound(format!(
                            "{name} is not a file of phone {} ({})",
                            format_mac(mac),
                            ph.model
                        ))
                    }
                }
            }
            None => self.pick(ms, client, now),
        };
        let snap = if known.is_none() {
            let hint = self.hints.lock().expect("hints").get(&client).copied();
            let model = m
                .model
                .map(|m| m.name)
                .or(hint
                    .filter(|(f, _, when)| {
                        *f == m.family.name && now.saturating_sub(*when) < HINT_SECS
                    })
                    .map(|h| h.1))
                .or_else(|| templates::models_of(m.family.name).next().map(|m| m.name))
                .expect("every family has a model");
            let mac2 = mac.to_string();
            let r = self.cfg.change(
                "provisioning",
                &format!("phone {} ({model}) asked for {name}", format_mac(mac)),
                now,
                move |c| phones::auto_add(c, &mac2, model),
            );
            if let Err(e) = r {
                tracing::warn!("cannot add phone {}: {e}", format_mac(mac));
                return Fetch::Failed(format!("cannot add the phone: {e}"));
            }
            tracing::info!(mac = %format_mac(mac), model, %client, "new phone added to the provisioning table");
            self.cfg.snapshot()
        } else {
            snap
        };
        let Some(phone) = snap.config.phones.iter().find(|p| p.mac == mac) else {
            return Fetch::Failed("the phone vanished".into());
        };
        let model = phone_model(&phone.model).expect("validated model");
        let ctx = self.context(&snap, local, via, model, Some(phone));
        let f = finish(templates::render(m.rule, &ctx));
        if let Fetch::File(bytes) = &f {
            let s = Seen {
                ip: client.to_string(),
                local: local.to_string(),
                when: now,
                file: name.to_string(),
                via: via.name().into(),
                port: match via {
                    Via::Https { port } => port,
                    Via::Tftp => 0,
                },
                hash: hash(bytes),
            };
            if let Err(e) = self
                .cfg
                .store()
                .save_phone_seen(mac, &serde_json::to_vec(&s).expect("serialises"))
            {
                tracing::warn!("cannot record the fetch of {}: {e}", format_mac(mac));
            }
            self.seen.lock().expect("seen").insert(mac.to_string(), s);
        }
        f
    }

    fn context(
        &self,
        snap: &Snapshot,
        local: IpAddr,
        via: Via,
        model: &config::PhoneModel,
        phone: Option<&Phone>,
    ) -> Context {
        let p = &snap.config.provisioning;
        let server = local.to_string();
        let host = match local {
            IpAddr::V6(_) => format!("[{server}]"),
            IpAddr::V4(_) => server.clone(),
        };
        let (prov_url, prov_host) = match via {
            Via::Tftp => (format!("tftp://{host}"), host.clone()),
            Via::Https { port } => (
                format!("https://{host}:{port}/prov"),
                format!("https://{host}:{port}/prov"),
            ),
        };
        let minutes = config::parse_utc_offset(&p.utc_offset).unwrap_or(0);
        let (secs, hours, posix, abbrev) = templates::time_fields(minutes);
        let lines = phone
            .map(|ph| {
                ph.lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let name = snap
                            .extension(&l.extension)
                            .map(|e| e.display_name())
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| l.extension.clone());
                        LineView {
                            index: i + 1,
                            extension: l.extension.clone(),
                            display_name: name,
                            username: l.account.clone(),
                            password: snap
                                .account(&l.account)
                                .map(|a| a.secret.clone())
                                .unwrap_or_default(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fc = &snap.config.feature_codes;
        let blf = phone
            .map(|ph| {
                ph.blf_keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| templates::BlfView {
                        index: i + 1,
                        number: k.number.clone(),
                        label: if k.label.is_empty() {
                            k.number.clone()
                        } else {
                            k.label.clone()
                        },
                        pickup: if snap.extension(&k.number).is_some() {
                            format!("{}{}", fc.directed_pickup, k.number)
                        } else {
                            String::new()
                        },
                    })
                    .collect()
            })
            .unwrap_or_default();
        Context {
            blf,
            pickup_prefix: fc.directed_pickup.clone(),
            server: host.clone(),
            sip_port: self.sip_port,
            prov_url,
            prov_host,
            ntp_server: if p.ntp_server.is_empty() {
                server.clone()
            } else {
                p.ntp_server.clone()
            },
            time_zone: p.time_zone.clone(),
            utc_offset: p.utc_offset.clone(),
            utc_offset_seconds: secs,
            utc_offset_hours: hours,
            posix_tz: posix,
            tz_abbrev: abbrev,
            model: model.name.into(),
            model_token: model.token.into(),
            firmware: self.firmware_of(model.name).unwrap_or_default(),
            phone: phone.map(|ph| PhoneView {
                mac: ph.mac.clone(),
                mac_upper: ph.mac.to_ascii_uppercase(),
                mac_colon: format_mac(&ph.mac),
                model: ph.model.clone(),
                max_lines: model.lines,
            }),
            lines,
        }
    }

    /// The table as the admin sees it.
    pub fn rows(&self, snap: &Snapshot) -> Vec<PhoneRow> {
        let seen = self.seen.lock().expect("seen").clone();
        snap.config
            .phones
            .iter()
            .map(|ph| {
                let m = phone_model(&ph.model);
                let s = seen.get(&ph.mac);
                PhoneRow {
                    mac: format_mac(&ph.mac),
                    model: ph.model.clone(),
                    manufacturer: m.map(|m| m.manufacturer).unwrap_or("").into(),
                    max_extensions: m.map(|m| m.lines).unwrap_or(0),
                    extensions: ph.lines.iter().map(|l| l.extension.clone()).collect(),
                    accounts: ph.lines.iter().map(|l| l.account.clone()).collect(),
                    state: ph.state(),
                    ip: s.map(|s| s.ip.clone()),
                    last_fetch: s.map(|s| s.when),
                    last_file: s.map(|s| s.file.clone()),
                    needs_restart: s.is_some_and(|s| self.changed_since(snap, ph, s)),
                    blf_keys: ph.blf_keys.clone(),
                }
            })
            .collect()
    }

    /// Whether the file the phone fetched last would now come out different.
    fn changed_since(&self, snap: &Snapshot, ph: &Phone, s: &Seen) -> bool {
        if ph.disabled {
            return false;
        }
        let (Ok(local), Some(model)) = (s.local.parse::<IpAddr>(), phone_model(&ph.model)) else {
            return false;
        };
        let via = if s.via == "https" {
            Via::Https { port: s.port }
        } else {
            Via::Tftp
        };
        let fam = model.family;
        let Some(m) = templates::matches(&s.file)
            .into_iter()
            .find(|m| m.family.name == fam)
        else {
            return false;
        };
        let ctx = self.context(snap, local, via, model, Some(ph));
        match templates::render(m.rule, &ctx) {
            Ok(text) => hash(text.as_bytes()) != s.hash,
            Err(_) => false,
        }
    }

    /// The accounts to send a resync NOTIFY to, with the event each vendor expects, for
    /// the phones given (all provisioned phones when empty).
    pub fn restart_targets(&self, snap: &Snapshot, macs: &[String]) -> Vec<(String, String)> {
        snap.config
            .phones
            .iter()
            .filter(|p| !p.disabled && (macs.is_empty() || macs.contains(&p.mac)))
            .filter_map(|p| {
                let fam = templates::family(phone_model(&p.model)?.family)?;
                // One NOTIFY a phone: to the account of its first line.
                let l = p.lines.first()?;
                Some((l.account.clone(), fam.resync_event.to_string()))
            })
            .collect()
    }

    /// Sets (or with `None` cancels) a restart of the phones at a Unix time (10.5). It is
    /// kept in the store: a restart of the box before then keeps it, and one due while
    /// the box was off is done when it is back.
    pub fn schedule_restart(&self, at: Option<(u64, Vec<String>)>) {
        let mut s = self.scheduled.lock().expect("scheduled");
        *s = at;
        self.keep_scheduled(s.as_ref());
    }

    fn keep_scheduled(&self, s: Option<&(u64, Vec<String>)>) {
        let blob = s.map(|s| serde_json::to_vec(s).expect("serialises"));
        if let Err(e) = self
            .cfg
            .store()
            .save_scheduled(RESTART_TASK, blob.as_deref())
        {
            tracing::warn!("cannot keep the scheduled restart of the phones: {e}");
        }
    }

    /// The restart set for later, if any.
    pub fn scheduled_restart(&self) -> Option<(u64, Vec<String>)> {
        self.scheduled.lock().expect("scheduled").clone()
    }

    /// The phones whose scheduled restart is due now, once.
    pub fn take_due_restart(&self, now: u64) -> Option<Vec<String>> {
        let mut s = self.scheduled.lock().expect("scheduled");
        match &*s {
            Some((at, _)) if *at <= now => {
                let due = s.take().map(|(_, m)| m);
                self.keep_scheduled(None);
                due
            }
            _ => None,
        }
    }

    /// Forgets what a phone fetched (when it is removed).
    pub fn forget(&self, mac: &str) {
        self.seen.lock().expect("seen").remove(mac);
        let _ = self.cfg.store().forget_phone_seen(mac);
    }

    fn model_dir(&self, model: &str) -> PathBuf {
        self.firmware_dir.join(model)
    }

    /// The firmware file uploaded for a model.
    pub fn firmware_of(&self, model: &str) -> Option<String> {
        let rd = std::fs::read_dir(self.model_dir(model)).ok()?;
        rd.filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .find(|n| !n.starts_with('.'))
    }

    /// Every uploaded firmware: model, file name, size.
    pub fn firmware_list(&self) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for m in config::PHONE_MODELS {
            if let Some(f) = self.firmware_of(m.name) {
                let size = std::fs::metadata(self.model_dir(m.name).join(&f))
                    .map(|md| md.len())
                    .unwrap_or(0);
                out.push((m.name.to_string(), f, size));
            }
        }
        out
    }

    /// Stores a firmware image for a model, replacing the model's previous one. Written
    /// to a temporary name and renamed, so a phone never gets half a file.
    pub fn put_firmware(&self, model: &str, file: &str, bytes: &[u8]) -> Result<(), String> {
        let m = phone_model(model).ok_or_else(|| format!("unknown phone model {model:?}"))?;
        check_name(file)?;
        if !file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            || file.len() > 64
        {
            return Err("firmware file names are up to 64 letters, digits, . _ -".into());
        }
        if !templates::matches(file).is_empty() {
            return Err(format!("{file} is the name of a configuration file"));
        }
        if let Some((other, _, _)) = self
            .firmware_list()
            .into_iter()
            .find(|(o, f, _)| f == file && o != m.name)
        {
            return Err(format!("{file} is already the firmware of {other}"));
        }
        if bytes.is_empty() {
            return Err("the file is empty".into());
        }
        let dir = self.model_dir(m.name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let tmp = dir.join(format!(".upload-{file}"));
        std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
        if let Some(old) = self.firmware_of(m.name) {
            let _ = std::fs::remove_file(dir.join(old));
        }
        std::fs::rename(&tmp, dir.join(file)).map_err(|e| e.to_string())
    }

    /// Removes a model's firmware; false when it had none.
    pub fn remove_firmware(&self, model: &str) -> bool {
        match phone_model(model).and_then(|m| Some((m, self.firmware_of(m.name)?))) {
            Some((m, f)) => std::fs::remove_file(self.model_dir(m.name).join(f)).is_ok(),
            None => false,
        }
    }

    /// A firmware image by file name, served to phones of its model only (as far as the
    /// asking address tells the model).
    fn firmware_file(&self, snap: &Snapshot, name: &str, client: IpAddr) -> Option<Fetch> {
        let (model, file, _) = self
            .firmware_list()
            .into_iter()
            .find(|(_, f, _)| f.eq_ignore_ascii_case(name))?;
        let ip = client.to_string();
        let seen = self.seen.lock().expect("seen").clone();
        let asker = snap
            .config
            .phones
            .iter()
            .find(|p| seen.get(&p.mac).is_some_and(|s| s.ip == ip));
        if let Some(p) = asker {
            if p.model != model {
                return Some(Fetch::NotFound(format!(
                    "{name} is firmware for {model}, not for a {}",
                    p.model
                )));
            }
        }
        Some(match self.image(&self.model_dir(&model).join(file)) {
            Ok(b) => Fetch::File(b),
            Err(e) => Fetch::Failed(format!("cannot read firmware: {e}")),
        })
    }

    /// A firmware image, read once while it is unchanged; only the newest image of each
    /// path is kept.
    fn image(&self, path: &Path) -> std::io::Result<Bytes> {
        let mtime = std::fs::metadata(path)?.modified()?;
        let mut images = self.images.lock().expect("images");
        if let Some((t, b)) = images.get(path) {
            if *t == mtime {
                return Ok(b.clone());
            }
        }
        let b = Bytes::from(std::fs::read(path)?);
        images.retain(|p, _| p.exists());
        images.insert(path.to_path_buf(), (mtime, b.clone()));
        Ok(b)
    }
}

fn allowed(sources: &[String], ip: IpAddr) -> bool {
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    sources.is_empty()
        || sources
            .iter()
            .filter_map(|s| Subnet::parse(s).ok())
            .any(|s| s.contains(ip))
}

fn finish(r: Result<String, String>) -> Fetch {
    match r {
        Ok(t) if t.trim().is_empty() => Fetch::NotFound("nothing to send for this phone".into()),
        Ok(t) => Fetch::File(t.into_bytes().into()),
        Err(e) => {
            tracing::error!("{e}");
            Fetch::Failed(e)
        }
    }
}
