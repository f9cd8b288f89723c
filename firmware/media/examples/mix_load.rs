//! Conference mixing benchmark: rooms of participants on the relay pbxd uses, each
//! participant sending 50 G.711 packets a second with a tone and hearing the room's
//! mix. Prints, per step: the relay threads' CPU (read from /proc, so the load
//! generator's own work is not counted) per participant per 20 ms frame, the whole
//! process's CPU, and the mixed packets received against the 50 a second expected.
//! Everything runs on loopback; the load generator shares the machine's cores.
//!
//! cargo run --release -p media --example mix_load -- --steps 1x4,1x64,50x4 --seconds 10

use media::Relay;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// CPU seconds spent by the relay's threads (`pbx-relay-N`), from /proc.
fn relay_cpu() -> f64 {
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in dir.filter_map(Result::ok) {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("pbx-relay") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: utime is the 12th, stime 13th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (u, s) = (
            f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
            f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
        );
        total += (u + s) / tick;
    }
    total
}

/// One step of `rooms` conferences of `size`; true when at least 99 % of the mixed
/// packets arrived.
fn run(relay: &Relay, rooms: usize, size: usize, seconds: u64) -> bool {
    let mut mixers = Vec::new();
    let mut eps = Vec::new();
    let mut socks = Vec::new();
    for r in 0..rooms {
        let m = relay.mixer();
        for p in 0..size {
            let e = relay.open().expect("relay ports");
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            e.set_remote(Some(s.local_addr().unwrap()), true);
            assert!(e.join(&m, 0, false), "room {r} full at {p}");
            socks.push((s, format!("127.0.0.1:{}", e.port)));
            eps.push(e);
        }
        mixers.push(m);
    }
    let socks = Arc::new(socks);
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = {
        let (socks, got, stop) = (socks.clone(), got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                for (s, _) in socks.iter() {
                    while s.recv_from(&mut buf).is_ok() {
                        got.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // A 700 Hz tone, the same packet for everyone (the mixer's cost does not depend
    // on the audio).
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    for (i, b) in pkt[12..].iter_mut().enumerate() {
        let t = i as f64 / 8000.0;
        *b = media::g711::linear_to_ulaw(
            ((2.0 * std::f64::consts::PI * 700.0 * t).sin() * 4000.0) as i16,
        );
    }
    let send = |seq: u16, pkt: &mut [u8; 172]| {
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        for (s, dst) in socks.iter() {
            let _ = s.send_to(&pkt[..], dst.as_str());
        }
    };
    // The first second settles (jitter buffers fill); then the measurement.
    let mut seq: u16 = 0;
    let mut tick = Instant::now();
    let warm = tick + Duration::from_secs(1);
    while Instant::now() < warm {
        seq = seq.wrapping_add(1);
        send(seq, &mut pkt);
        tick += Duration::from_millis(20);
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
    got.store(0, Ordering::Relaxed);
    let (cpu0, relay0) = (cpu_seconds(), relay_cpu());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        seq = seq.wrapping_add(1);
        send(seq, &mut pkt);
        tick += Duration::from_millis(20);
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu, relay_cpu) = (cpu_seconds() - cpu0, relay_cpu() - relay0);
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap();
    let parts = rooms * size;
    let expected = parts as f64 * 50.0 * elapsed;
    let received = got.load(Ordering::Relaxed) as f64;
    let per = relay_cpu / (elapsed * 50.0 * parts as f64) * 1e6;
    println!(
        "{rooms:3} conferences of {size:2} ({parts:4} participants): relay CPU {:.1} µs per participant per 20 ms frame ({:.0} % of one core), whole process {:.0} %, mixed packets {:.1} % of expected",
        per,
        100.0 * relay_cpu / elapsed,
        100.0 * cpu / elapsed,
        100.0 * received / expected,
    );
    drop(eps);
    drop(mixers);
    received >= 0.99 * expected
}

fn main() {
    let mut steps = vec![
        (1usize, 4usize),
        (1, 16),
        (1, 64),
        (25, 4),
        (50, 8),
        (100, 8),
    ];
    let mut seconds = 10u64;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--steps" => {
                steps = args[i + 1]
                    .split(',')
                    .map(|c| {
                        let (r, s) = c.split_once('x').expect("--steps ROOMSxSIZE[,...]");
                        (r.parse().expect("rooms"), s.parse().expect("size"))
                    })
                    .collect()
            }
            "--seconds" => seconds = args[i + 1].parse().expect("--seconds N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let need = steps.iter().map(|(r, s)| r * s).max().unwrap_or(0) as u64 * 4 + 1024;
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, need, need);
    let relay = Relay::new("127.0.0.1".parse().unwrap(), 20000, 59999);
    let mut most = 0;
    for (rooms, size) in steps {
        if run(&relay, rooms, size, seconds) {
            most = most.max(rooms * size);
        }
    }
    println!("most conference participants mixed with >= 99 % of packets delivered: {most} (the load generator shares the same two cores; a room holds at most {})", media::mixer::MAX_PARTICIPANTS);
}
