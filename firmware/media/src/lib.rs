//! Media for the exchange.
//!
//! Owns: the RTP/RTCP relay (ports, latching, payload mapping, transcoding), G.711, RTP
//! header arithmetic, DTMF tones from RFC 4733 events, and the SDP subset the exchange
//! reads and writes. Must not touch: SIP or call routing.

pub mod dtmf;
pub mod g711;
pub mod relay;
pub mod rtp;
pub mod sdp;

pub use relay::{PtMap, Relay, Session, SessionConfig, SideConfig, Xcode};
