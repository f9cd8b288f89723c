//! Call control on both sides fed any messages: never a panic, and afterwards a
//! RESTART clears the span and a SETUP still gets through (the span is not stalled).
#![no_main]
use isdn::call::{Calls, Config, Event, Side};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    for side in [Side::User, Side::Network] {
        let mut c = Calls::new(Config::e1(side));
        c.link_up(t0);
        for (i, m) in data.split(|b| *b == 0xff).enumerate() {
            let now = t0 + Duration::from_secs(i as u64);
            c.receive(now, m);
            c.handle_timeout(now);
            while c.poll_transmit().is_some() {}
            while c.poll_event().is_some() {}
        }
        c.restart(t0, None);
        while c.poll_event().is_some() {}
        let setup = [
            0x08, 0x02, 0x00, 0x63, 0x05, 0x04, 0x03, 0x80, 0x90, 0xa3, 0x18, 0x03, 0xa9, 0x83,
            0x81, 0xa1,
        ];
        c.receive(t0, &setup);
        assert!(matches!(c.poll_event(), Some(Event::Setup { .. })));
    }
});
