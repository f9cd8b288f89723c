//! Q.921: any bytes are a frame or a clean error; a link fed them never panics.
#![no_main]
use isdn::q921::{Config, Frame, Lapd};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::parse(data) {
        let _ = Frame::parse(&f.encode());
    }
    let t0 = Instant::now();
    for network in [false, true] {
        let mut l = Lapd::new(Config::pri(network));
        l.start(t0);
        // Split the input into frames at 0x7e, as a line would.
        for (i, f) in data.split(|b| *b == 0x7e).enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 300);
            l.receive(now, f);
            l.handle_timeout(now);
            while l.poll_transmit().is_some() {}
            while l.poll_event().is_some() {}
        }
    }
});
