//! Media for the exchange.
//!
//! Owns: the RTP/RTCP relay (ports, latching, payload mapping, transcoding), G.711, and
//! the SDP subset the exchange reads and writes. Must not touch: SIP or call routing.

pub mod g711;
pub mod relay;
pub mod sdp;

pub use relay::{PtMap, Relay, Session, SessionConfig, SideConfig, Xcode};
