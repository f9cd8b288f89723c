//! Relay load benchmark: N relayed G.711 calls, 50 packets per second each way, for S
//! seconds, through the same `media::Relay` pbxd uses. Prints packets sent and received,
//! loss, and the process's CPU use. Everything runs on loopback.
//!
//! cargo run --release -p media --example relay_load -- --calls 500,1000,2000,3000 --seconds 60

use media::{PtMap, Relay};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// CPU seconds used by the relay threads (`pbx-relay-N`), from /proc/self/task.
fn relay_cpu_seconds() -> f64 {
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut total = 0.0;
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("pbx-relay") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the ")" that ends the thread name: utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            total +=
                (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick;
        }
    }
    total
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Runs one load step; true when the full nominal rate was offered and loss stayed under 0.1 %.
fn run(relay: &Relay, calls: usize, seconds: u64) -> bool {
    let mut sessions = Vec::with_capacity(calls);
    let mut phones = Vec::with_capacity(calls * 2);
    for _ in 0..calls {
        let ea = relay.open().expect("relay ports");
        let eb = relay.open().expect("relay ports");
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        ea.set_remote(Some(a.local_addr().unwrap()), true);
        eb.set_remote(Some(b.local_addr().unwrap()), true);
        ea.connect(&eb, PtMap::default(), PtMap::default());
        let (ap, bp) = (ea.port, eb.port);
        phones.push((a, format!("127.0.0.1:{ap}")));
        phones.push((b, format!("127.0.0.1:{bp}")));
        sessions.push((ea, eb));
    }
    let phones = Arc::new(phones);
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Receiver: epoll over every phone socket.
    let rx = {
        let (phones, received, stop) = (phones.clone(), received.clone(), stop.clone());
        std::thread::spawn(move || {
            let ep = Epoll::new(EpollCreateFlags::empty()).unwrap();
            for (i, (s, _)) in phones.iter().enumerate() {
                ep.add(s.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                    .unwrap();
            }
            let mut events = vec![EpollEvent::empty(); 1024];
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let n = ep
                    .wait(&mut events, EpollTimeout::from(100u16))
                    .unwrap_or(0);
                for e in &events[..n] {
                    let (s, _) = &phones[e.data() as usize];
                    while s.recv_from(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[12..].fill(0xff);
    let mut sent = 0u64;
    let cpu0 = cpu_seconds();
    let relay0 = relay_cpu_seconds();
    let start = Instant::now();
    let mut tick = start;
    let mut seq: u16 = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        seq = seq.wrapping_add(1);
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        for (s, dst) in phones.iter() {
            if s.send_to(&pkt, dst.as_str()).is_ok() {
                sent += 1;
            }
        }
        tick += Duration::from_millis(20);
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let cpu = cpu_seconds() - cpu0;
    let relay_cpu = relay_cpu_seconds() - relay0;
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap();
    let got = received.load(Ordering::Relaxed);
    let loss = if sent == 0 {
        0.0
    } else {
        100.0 * (sent.saturating_sub(got)) as f64 / sent as f64
    };
    let rate = sent as f64 / elapsed;
    let nominal = calls as f64 * 100.0;
    let us_per_pkt = if got > 0 {
        relay_cpu * 1e6 / got as f64
    } else {
        0.0
    };
    println!(
        "relayed calls {calls:5}: {seconds} s, sent {sent} received {got}, loss {loss:.3} %, offered {rate:.0} of {nominal:.0} pkt/s nominal, CPU {:.0} % of one core in all, relay {:.0} % = {us_per_pkt:.1} us per packet, RSS {} MiB",
        100.0 * cpu / elapsed,
        100.0 * relay_cpu / elapsed,
        rss_kib() / 1024
    );
    drop(sessions);
    rate >= 0.99 * nominal && loss < 0.1
}

fn main() {
    let mut calls = vec![500usize, 1000, 2000, 3000];
    let mut seconds = 20u64;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--calls" => {
                calls = args[i + 1]
                    .split(',')
                    .map(|c| c.parse().expect("--calls N[,N...]"))
                    .collect()
            }
            "--seconds" => seconds = args[i + 1].parse().expect("--seconds N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let need = calls.iter().max().copied().unwrap_or(0) as u64 * 6 + 1024;
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, need, need);
    // Two worker threads, as in pbxd.

    let relay = Relay::new("127.0.0.1".parse().unwrap(), 20000, 59999);
    let mut best = 0;
    for c in calls {
        if run(&relay, c, seconds) {
            best = best.max(c);
        }
    }
    println!("most relayed calls held at the full 50 pkt/s each way with < 0.1 % loss: {best} (the load generator shares the same two cores)");
}
