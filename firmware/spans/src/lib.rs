//! ISDN spans inside pbxd.
//!
//! Each enabled ISDN interface gets a [`gateway`]: it owns the span's D-channel
//! ([`isdn::dchan::Dchannel`]) and B-channels and speaks SIP and RTP to the exchange
//! core over loopback, from an address of its own (`127.77.0.N`). The core sees the
//! interface as a SIP provider at that address (built by
//! [`config::IsdnInterface::as_sip`]), so incoming tables, rewriting rules, outbound
//! routes, permission groups and call history apply to ISDN exactly as to SIP.
//!
//! Span drivers: [`dahdi`] (a PRI or BRI card through DAHDI) and [`vspan`] (the virtual
//! span over Unix sockets, for labs and tests).

pub mod dahdi;
pub mod gateway;
pub mod vspan;

/// The loopback address of the gateway of the `index`-th ISDN interface (its own
/// address, so the core tells it from phones on 127.0.0.1; the port is chosen when the
/// gateway binds).
pub fn gateway_ip(index: usize) -> std::net::IpAddr {
    let n = (index % 250) as u8 + 1;
    std::net::IpAddr::from([127, 77, 0, n])
}
