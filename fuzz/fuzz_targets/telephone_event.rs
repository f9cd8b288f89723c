//! RFC 4733 telephone-events (timestamp and payload of each packet, 4 + n bytes behind a
//! one-byte length): the receiver reports a digit at most once per event and the tone
//! generator puts out whole 160-octet blocks, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::dtmf::{EventIn, ToneOut};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut rx = EventIn::default();
    let mut tones = [ToneOut::new(false), ToneOut::new(true)];
    let mut rest = data;
    let mut i = 0u64;
    while rest.len() >= 5 && i < 512 {
        let n = (rest[0] as usize).min(rest.len() - 5);
        let ts = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let payload = &rest[5..5 + n];
        rest = &rest[5 + n..];
        let now = t0 + Duration::from_millis(i * 20);
        i += 1;
        if let Some(c) = rx.packet(ts, payload) {
            assert!(media::dtmf::digit_event(c).is_some(), "{c}");
        }
        for t in &mut tones {
            for block in t.event(now, ts, payload) {
                assert_eq!(block.len(), 160);
            }
            let _ = t.playing(now);
        }
    }
});
