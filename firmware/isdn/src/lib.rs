//! ISDN signalling for PRI and BRI spans, as sans-IO state machines driven on a
//! virtual clock (`std::time::Instant` handed in by the caller): bytes and time in,
//! frames to send and events out. Nothing here touches a socket, a file or a clock.
//!
//! - [`q921`]: LAPD, the data link on the D-channel (ITU-T Q.921 / ETSI EN 300 125).
//! - [`q931`]: call-control messages and information elements, and causes to and from
//!   SIP (RFC 3398).
//! - [`call`]: Q.931 call control for the user and the network side.
//! - [`dchan`]: the two joined, one D-channel.

pub mod call;
pub mod dchan;
pub mod q921;
pub mod q931;
