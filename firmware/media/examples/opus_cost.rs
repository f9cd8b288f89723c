//! What a browser leg in Opus costs the box: libopus as the leg's edge has it
//! (`media::opus_edge::encoder`), per 20 ms packet each way, on
//! a tone with noise. Prints microseconds of one core per packet, and the share of one
//! core that a call (50 packets a second each way) takes.
//! `cargo run --release -p media --example opus_cost`

use std::time::Instant;

fn main() {
    // The edge's own encoder; COMPLEXITY=n tries another complexity.
    let complexity = std::env::var("COMPLEXITY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(media::opus_edge::COMPLEXITY);
    let mut enc = media::opus_edge::encoder(complexity).unwrap();
    let mut dec = opus::Decoder::new(8000, opus::Channels::Mono).unwrap();
    let mut seed = 1u32;
    let pcm: Vec<i16> = (0..8000 * 10)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((seed >> 16) as i16) / 64;
            (6000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16
                + noise
        })
        .collect();
    let mut frames = Vec::new();
    let mut buf = [0u8; 400];
    let t = Instant::now();
    for f in pcm.chunks_exact(160) {
        let n = enc.encode(f, &mut buf).unwrap();
        frames.push(buf[..n].to_vec());
    }
    let enc_us = t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    let mut out = [0i16; 960];
    let t = Instant::now();
    for f in &frames {
        dec.decode(f, &mut out, false).unwrap();
    }
    let dec_us = t.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    let bytes = frames.iter().map(Vec::len).sum::<usize>() as f64 / frames.len() as f64;
    println!(
        "opus {}: {} packets of 20 ms",
        opus::version(),
        frames.len()
    );
    println!("encode (to the browser): {enc_us:.1} us a packet");
    println!("decode (from the browser): {dec_us:.1} us a packet");
    println!(
        "payload: {bytes:.0} bytes a packet (G.711: 160), {:.1} kbit/s",
        bytes * 8.0 * 50.0 / 1000.0
    );
    println!(
        "one call in Opus: {:.2} % of a core ({} packets a second each way)",
        (enc_us + dec_us) * 50.0 / 1e6 * 100.0,
        50
    );
}
