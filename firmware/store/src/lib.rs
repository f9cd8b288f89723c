//! Persistence on the data partition, in sled.
//!
//! Owns: the configuration with its revision number, the config log (who, when, what),
//! the persisted registrations, the call history and the schema version. A commit returns only once the
//! data is on disk, so an acknowledged change survives a power cut. Must not touch:
//! validation rules (that is `config`), sockets.

use config::Config;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the on-disk layout; a newer database is refused rather than misread.
pub const SCHEMA_VERSION: u64 = 1;

const META: &str = "meta";
const CONFIG: &str = "config";
const LOG: &str = "config_log";
const REGISTRATIONS: &str = "registrations";
const SECURITY: &str = "security_log";
const PHONES_SEEN: &str = "phones_seen";
const SIP_BANS: &str = "sip_bans";
/// Tasks set for a later time (a restart of the phones), kept across restarts.
const SCHEDULED: &str = "scheduled";

/// Entries the security log keeps; older ones are dropped.
pub const SECURITY_LOG_KEEP: usize = 5000;

pub mod backup;
mod changes;
pub mod history;
pub mod voicemail;
pub use changes::{ChangeError, Configurator};
pub use history::{CallRecord, HistoryQuery};

/// Local failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    #[error("database schema {found} is newer than this firmware understands ({SCHEMA_VERSION})")]
    SchemaTooNew { found: u64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("configuration changed meanwhile (expected revision {expected}, found {found})")]
    Conflict { expected: u64, found: u64 },
}

/// One entry of the config log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub revision: u64,
    /// Who made the change (`pbxctl`, a user name, ...).
    pub who: String,
    /// Seconds since the Unix epoch.
    pub when: u64,
    /// What changed, in words.
    pub what: String,
}

/// One entry of the security log: an attempt to get into the administration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEntry {
    /// Seconds since the Unix epoch.
    pub when: u64,
    /// Client address.
    pub address: String,
    /// User name given (may be unknown or empty).
    pub username: String,
    /// What happened, in words: "login failed", "session opened", ...
    pub event: String,
}

/// The store, open on one directory.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// The call history's oldest and newest ids once known (`history.rs`): a record
    /// added as each call ends then costs one insert, not two walks of the tree.
    history_ids: std::sync::Arc<std::sync::Mutex<Option<(u64, u64)>>>,
}

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn read_u64(v: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = v
        .try_into()
        .map_err(|_| StoreError::Corrupt("bad number".into()))?;
    Ok(u64::from_be_bytes(arr))
}

impl Store {
    /// Opens (creating if needed) the database under `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        // sled's worker threads can hold the file lock for a moment after a store is
        // dropped, and a previous pbxd may still be exiting: wait a little for the lock.
        let mut tries = 0;
        let db = loop {
            match backup::open_db(&dir.join("db")) {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && tries < 40 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let meta = db.open_tree(META)?;
        match meta.get("schema")? {
            None => {
                meta.insert("schema", &be(SCHEMA_VERSION))?;
                db.flush()?;
            }
            Some(v) => {
                let found = read_u64(&v)?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::SchemaTooNew { found });
                }
            }
        }
        Ok(Store {
            db,
            history_ids: Default::default(),
        })
    }

    /// The current configuration and its revision (0 and an empty one when new).
    pub fn config(&self) -> Result<(u64, Config), StoreError> {
        let t = self.db.open_tree(CONFIG)?;
        let rev = match t.get("revision")? {
            Some(v) => read_u64(&v)?,
            None => return Ok((0, Config::default())),
        };
        let doc = t
            .get("current")?
            .ok_or_else(|| StoreError::Corrupt("revision without configuration".into()))?;
        let cfg: Config = serde_json::from_slice(&doc)
            .map_err(|e| StoreError::Corrupt(format!("configuration: {e}")))?;
        Ok((rev, cfg))
    }

    /// Stores `cfg` as the next revision with a log entry, atomically, and returns the
    /// new revision once it is durable. `expected` guards against lost updates.
    pub fn commit(
        &self,
        expected: u64,
        cfg: &Config,
        who: &str,
        what: &str,
        when: u64,
    ) -> Result<u64, StoreError> {
        use sled::Transactional;
        let t = self.db.open_tree(CONFIG)?;
        let log = self.db.open_tree(LOG)?;
        // Without the fields that hold their defaults (config::to_stored_vec): most of the
        // bytes to serialise and write with thousands of extensions.
        let doc = config::to_stored_vec(cfg);
        let res = (&t, &log).transaction(|(t, log)| {
            let found = match t.get("revision")? {
                Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
                None => 0,
            };
            if found != expected {
                return sled::transaction::abort(StoreError::Conflict { expected, found });
            }
            let rev = found + 1;
            t.insert("current", doc.as_slice())?;
            t.insert("revision", &be(rev))?;
            let entry = LogEntry {
                revision: rev,
                who: who.into(),
                when,
                what: what.into(),
            };
            log.insert(
                &be(rev),
                serde_json::to_vec(&entry).expect("log serialises"),
            )?;
            Ok(rev)
        });
        let rev = match res {
            Ok(rev) => rev,
            Err(sled::transaction::TransactionError::Abort(e)) => return Err(e),
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        };
        self.db.flush()?;
        // For the syslog server (the `logs` crate forwards this target as the config log).
        tracing::info!(target: "store::config_log", "{who} revision {rev}: {what}");
        Ok(rev)
    }

    /// The config log, oldest first.
    pub fn log(&self) -> Result<Vec<LogEntry>, StoreError> {
        let log = self.db.open_tree(LOG)?;
        log.iter()
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("config log: {e}")))
            })
            .collect()
    }

    /// Replaces the persisted registrations (a JSON blob owned by the registrar).
    pub fn save_registrations(&self, blob: &[u8]) -> Result<(), StoreError> {
        self.db.open_tree(REGISTRATIONS)?.insert("all", blob)?;
        self.db.flush()?;
        Ok(())
    }

    /// Appends to the security log (durable before it returns), dropping the oldest
    /// entries beyond [`SECURITY_LOG_KEEP`].
    pub fn security_event(&self, e: &SecurityEntry) -> Result<(), StoreError> {
        self.security_event_keeping(e, SECURITY_LOG_KEEP)
    }

    /// Appends several entries with one flush (the SIP guard's bans of a second).
    pub fn security_events(&self, list: &[SecurityEntry]) -> Result<(), StoreError> {
        self.security_events_keeping(list, SECURITY_LOG_KEEP)
    }

    fn security_event_keeping(&self, e: &SecurityEntry, keep: usize) -> Result<(), StoreError> {
        self.security_events_keeping(std::slice::from_ref(e), keep)
    }

    fn security_events_keeping(
        &self,
        list: &[SecurityEntry],
        keep: usize,
    ) -> Result<(), StoreError> {
        let t = self.db.open_tree(SECURITY)?;
        for e in list {
            let id = self.db.generate_id()?;
            t.insert(be(id), serde_json::to_vec(e).expect("entry serialises"))?;
        }
        // sled's len() walks the tree: counted once, then the surplus popped.
        for _ in keep..t.len() {
            if t.pop_min()?.is_none() {
                break;
            }
        }
        self.db.flush()?;
        // For the syslog server (the `logs` crate forwards this target as the security
        // log).
        for e in list {
            tracing::info!(target: "store::security_log", "{} {}: {}", e.address, e.username, e.event);
        }
        Ok(())
    }

    /// The security log, oldest first.
    pub fn security_log(&self) -> Result<Vec<SecurityEntry>, StoreError> {
        let t = self.db.open_tree(SECURITY)?;
        t.iter()
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("security log: {e}")))
            })
            .collect()
    }

    /// Records what a provisioned phone last fetched (a JSON blob owned by `provision`),
    /// keyed by its MAC address. Phones fetch at boot, so this writes rarely.
    pub fn save_phone_seen(&self, mac: &str, blob: &[u8]) -> Result<(), StoreError> {
        self.db.open_tree(PHONES_SEEN)?.insert(mac, blob)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every phone's last fetch record, by MAC address.
    pub fn phones_seen(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db
            .open_tree(PHONES_SEEN)?
            .iter()
            .map(|r| {
                let (k, v) = r?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    /// Forgets a phone's fetch record.
    pub fn forget_phone_seen(&self, mac: &str) -> Result<(), StoreError> {
        self.db.open_tree(PHONES_SEEN)?.remove(mac)?;
        Ok(())
    }

    /// Replaces the saved SIP bans (a JSON blob owned by the exchange's guard).
    pub fn save_bans(&self, blob: &[u8]) -> Result<(), StoreError> {
        self.db.open_tree(SIP_BANS)?.insert("all", blob)?;
        self.db.flush()?;
        Ok(())
    }

    /// Keeps (or with `None` forgets) a task set for later under `name`: a JSON blob
    /// owned by whoever set it.
    pub fn save_scheduled(&self, name: &str, blob: Option<&[u8]>) -> Result<(), StoreError> {
        let t = self.db.open_tree(SCHEDULED)?;
        match blob {
            Some(b) => {
                t.insert(name, b)?;
            }
            None => {
                t.remove(name)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// The task kept under `name`, if any.
    pub fn scheduled(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.open_tree(SCHEDULED)?.get(name)?.map(|v| v.to_vec()))
    }

    /// The saved SIP bans, if any.
    pub fn bans(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.open_tree(SIP_BANS)?.get("all")?.map(|v| v.to_vec()))
    }

    /// The persisted registrations, if any.
    pub fn registrations(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .open_tree(REGISTRATIONS)?
            .get("all")?
            .map(|v| v.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Extension;

    #[test]
    fn commit_read_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.config().unwrap().0, 0);
        let mut c = Config::default();
        c.extensions.push(Extension::new("101"));
        assert_eq!(s.commit(0, &c, "test", "add 101", 5).unwrap(), 1);
        assert!(matches!(
            s.commit(0, &c, "test", "again", 6),
            Err(StoreError::Conflict { .. })
        ));
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let (rev, got) = s.config().unwrap();
        assert_eq!((rev, got), (1, c));
        assert_eq!(s.log().unwrap()[0].what, "add 101");
    }

    #[test]
    fn security_log_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 0..13 {
            s.security_event_keeping(
                &SecurityEntry {
                    when: i as u64,
                    address: "127.0.0.1".into(),
                    username: "x".into(),
                    event: "login failed".into(),
                },
                10,
            )
            .unwrap();
        }
        let log = s.security_log().unwrap();
        assert_eq!(log.len(), 10);
        assert_eq!(log[0].when, 3);
        assert_eq!(log.last().unwrap().when, 12);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.db.open_tree(META)
                .unwrap()
                .insert("schema", &be(99))
                .unwrap();
            s.db.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::SchemaTooNew { found: 99 })
        ));
    }
}
