//! TFTP as the provisioning server sees it: the first packet is a read request or the
//! error to send back; a transfer fed any packets (ACKs, errors, junk, each behind a
//! one-byte length) and its timeouts never panics, sends nothing larger than a block
//! and its header, and ends within its retries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use provision::tftp::{parse_request, Session};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let n = (*data.first().unwrap_or(&0) as usize).min(data.len().saturating_sub(1));
    let (first, rest) = data.get(1..).unwrap_or_default().split_at(n);
    let req = match parse_request(first) {
        Ok(r) => r,
        Err(e) => {
            let p = e.packet();
            assert_eq!(&p[..2], &[0, 5], "an ERROR packet");
            return;
        }
    };
    let file: Vec<u8> = (0..3000u32)
        .map(|i| if i % 61 == 60 { b'\n' } else { b'a' })
        .collect();
    let t0 = Instant::now();
    let mut s = Session::new(&req, file, t0);
    let limit = s.blksize() + 4;
    let mut now = t0;
    let mut rest = rest;
    while !rest.is_empty() {
        let n = (rest[0] as usize).min(rest.len() - 1);
        let p = &rest[1..1 + n];
        rest = &rest[1 + n..];
        now += Duration::from_millis(p.len() as u64 * 7);
        s.handle(now, p);
        s.handle_timeout(now);
        while let Some(out) = s.poll_transmit() {
            assert!(out.len() <= limit.max(600), "{} bytes", out.len());
        }
    }
    // Left alone it gives up after its retries, never later than a few minutes.
    for _ in 0..100 {
        let Some(t) = s.poll_timeout() else { break };
        now = t.max(now);
        s.handle_timeout(now);
        while s.poll_transmit().is_some() {}
    }
    assert!(s.poll_timeout().is_none(), "the transfer never ends");
    assert!(s.outcome().is_some());
});
