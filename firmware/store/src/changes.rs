//! One way to change the configuration, shared by the control socket and the web admin:
//! copy the current snapshot, apply the change, validate the whole configuration, commit
//! it durably, then publish the new snapshot on a watch channel for every reader.

use crate::{Store, StoreError};
use config::{Config, Snapshot, ValidationError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// What the change names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change clashes with what exists (a number in use, the last administrator).
    #[error("{message}")]
    Conflict { field: String, message: String },
    /// A field value is refused before the whole configuration is checked.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    /// The resulting configuration does not validate.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The store failed; nothing was changed.
    #[error("cannot store the change: {0}")]
    Store(#[from] StoreError),
}

impl ChangeError {
    /// A refused field value.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ChangeError::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A clash with existing configuration.
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        ChangeError::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Serialises configuration changes and publishes snapshots.
pub struct Configurator {
    store: Store,
    tx: watch::Sender<Arc<Snapshot>>,
    lock: Mutex<()>,
}

impl Configurator {
    /// Starts from the store's current configuration.
    pub fn new(store: Store, initial: Arc<Snapshot>) -> Self {
        let (tx, _) = watch::channel(initial);
        Configurator {
            store,
            tx,
            lock: Mutex::new(()),
        }
    }

    /// The store, for logs and registrations.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Applies `f` to a copy of the configuration; when it succeeds and the result
    /// validates, commits it as `who` with the log line `what` and publishes it. Returns
    /// the new revision and what `f` returned. Blocks while the store flushes.
    pub fn change<T>(
        &self,
        who: &str,
        what: &str,
        when: u64,
        f: impl FnOnce(&mut Config) -> Result<T, ChangeError>,
    ) -> Result<(u64, T), ChangeError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot();
        let mut cfg = current.config.clone();
        let out = f(&mut cfg)?;
        cfg.validate()?;
        let rev = self.store.commit(current.revision, &cfg, who, what, when)?;
        self.tx.send_replace(Arc::new(Snapshot::new(rev, cfg)));
        Ok((rev, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Extension;

    #[test]
    fn a_change_is_committed_and_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let c = Configurator::new(store, Arc::new(Snapshot::default()));
        let mut rx = c.subscribe();
        let (rev, ()) = c
            .change("admin", "add 101", 1, |cfg| {
                cfg.extensions.push(Extension::new("101"));
                Ok(())
            })
            .unwrap();
        assert_eq!(rev, 1);
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().config.extensions.len(), 1);
        // An invalid result is neither stored nor published.
        let e = c
            .change("admin", "add 101 again", 2, |cfg| {
                cfg.extensions.push(Extension::new("101"));
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, ChangeError::Invalid(_)), "{e}");
        assert!(!rx.has_changed().unwrap());
        assert_eq!(c.store().config().unwrap().0, 1);
        assert_eq!(c.store().log().unwrap().len(), 1);
    }
}
