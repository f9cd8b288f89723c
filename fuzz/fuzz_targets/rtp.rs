//! RTP and RTCP packets as the relay receives them: the tap (RFC 4733 events, in-band
//! digits, recording), a conference input and the payload rewrite with G.711
//! transcoding never panic, and the recording stays within its cap. The input is a
//! run of packets, each behind a two-byte length.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pkts = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && pkts.len() < 256 {
        let n = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        pkts.push(rest[2..2 + n].to_vec());
        rest = &rest[2 + n..];
    }
    for p in &pkts {
        if let Some(r) = media::rtp::payload_range(p) {
            assert!(r.start <= r.end && r.end <= p.len());
        }
        let _ = (media::rtp::payload_type(p), media::rtp::timestamp(p));
    }
    let _ = media::relay::fuzz_packets(&mut pkts);
});
