//! Phone provisioning (Kerio chapter 10).
//!
//! Owns: the read-only TFTP server ([`tftp`] sans-IO core, [`server`] tokio driver), the
//! per-vendor configuration templates ([`templates`]), the rules for the phones table and
//! CSV import ([`phones`]) and the [`Provisioner`] that answers a file request from TFTP
//! or HTTPS. Must not touch: SIP (restarting phones is the core's NOTIFY), HTTP routing.

pub mod phones;
pub mod provider;
pub mod server;
pub mod templates;
pub mod tftp;

pub use provider::{Fetch, Provisioner, Via};
