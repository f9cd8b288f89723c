//! SDP bodies from offers and answers: any bytes are a description or a clean error; a
//! description prints and parses again to the same media, and negotiation against it
//! (offer, answer, bridge, join) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::sdp;
use pbx::negotiate;
use std::net::{IpAddr, Ipv4Addr};

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PLAIN: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(a) = sdp::parse(data) else { return };
    let written = sdp::write(7, 1, &a);
    let b = sdp::parse(&written).unwrap_or_else(|e| {
        panic!(
            "our own SDP does not parse: {e:?}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(a, b, "{}", String::from_utf8_lossy(&written));
    let plain = sdp::parse(PLAIN).expect("plain SDP");
    for allowed in [
        vec![],
        vec!["PCMU".to_string()],
        vec!["PCMA".into(), "PCMU".into()],
    ] {
        if let Some(o) = negotiate::offer(&a, &allowed, IP, 40000) {
            let _ = sdp::parse(&sdp::write(1, 1, &o)).expect("our offer parses");
        }
        if let Some(ans) = negotiate::answer_local(&a, &allowed, IP, 40000) {
            let _ = sdp::parse(&sdp::write(1, 1, &ans)).expect("our answer parses");
        }
        let _ = negotiate::late_offer(&allowed);
    }
    let _ = negotiate::narrow(&plain, &a);
    let _ = negotiate::narrow(&a, &plain);
    let _ = negotiate::bridge(&plain, &a, IP, 40000);
    let _ = negotiate::bridge(&a, &plain, IP, 40000);
    let _ = negotiate::join(&a, &plain);
    let _ = negotiate::join(&plain, &a);
});
