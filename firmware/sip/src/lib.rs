//! SIP on rsip.
//!
//! Owns: message framing, normalisation and validation (`message`), writing every
//! message the box sends (`build`), digest authentication (`auth`), the RFC 3261
//! transaction state machines and their table as sans-IO cores (`transaction`),
//! dialogs (`dialog`: identity, route set, CSeq, a 2xx resent until its ACK, the
//! dialog a Replaces names), and the tokio UDP/TCP drivers (`transport`). Must not touch: call
//! routing, registrations or configuration (that is `pbx`).

pub mod auth;
pub mod build;
pub mod dialog;
pub mod message;
pub mod transaction;
pub mod transport;

pub use message::{parse, ParseError};
pub use rsip;
