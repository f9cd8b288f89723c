//! Media for the exchange.
//!
//! Owns: RTP endpoints (one port pair per leg; two connected are the relay fast path
//! with latching, payload mapping and transcoding; one may play a clip instead), clips
//! to play (WAV and raw G.711 files, tones), G.711, RTP header arithmetic, DTMF (tones
//! from RFC 4733 events, events to the party, digits detected as RFC 4733 events or
//! in-band), recording what a party says, events to the exchange, and the SDP subset
//! the exchange reads and writes, SRTP ([`srtp`], libsrtp2) on the legs that ask for
//! it, and the conference mixer ([`mixer`]). The exchange
//! works endpoints through handles that emit commands ([`control`]); the driver
//! carries them out on the relay. Must not touch: SIP or call routing.

pub mod control;
pub mod dtmf;
pub mod g711;
pub mod mixer;
pub mod music;
pub mod opus_edge;
pub mod player;
pub mod prompts;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod webrtc;

pub use control::{Command, EndpointId, Endpoints, Handle, Pool, Spare};
pub use mixer::Mixer;
pub use music::{Live, Music};
pub use opus_edge::OpusParams;
pub use player::Clip;
pub use relay::{
    Endpoint, Event, EventSink, Listen, PtMap, Relay, SideConfig, SrtpKeys, Stats, Xcode,
};
