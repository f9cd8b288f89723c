//! Relay load benchmark: N relayed G.711 calls, 50 packets per second each way, for S
//! seconds, through the same `media::Relay` pbxd uses. Prints packets sent and received,
//! loss, and the relay threads' CPU per packet. The load generator's phones are on
//! 127.0.0.2, the relay on 127.0.0.1.
//!
//! With `--rtpengine HOST:PORT --rtpengine-pid PID` each step is run a second time through
//! a running rtpengine (calls set up over its ng control protocol, offer and answer as
//! Kamailio's rtpengine module sends them), with the same generator, and the line gives
//! rtpengine's CPU (every thread of the process) per packet and the ratio ours/theirs.
//!
//! cargo run --release -p media --example relay_load -- --calls 500,1000,2000,3000 --seconds 60

use media::{Endpoint, PtMap, Relay};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

fn clock_tick() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64
}

/// User + system CPU seconds in a `/proc/.../stat` file (a process's or one thread's).
fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the ")" that ends the name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.len() > 12 {
        (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / clock_tick()
    } else {
        0.0
    }
}

/// CPU seconds used by the relay threads (`pbx-relay-N`), from /proc/self/task.
fn relay_cpu_seconds() -> f64 {
    let mut total = 0.0;
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.starts_with("pbx-relay") {
            total += stat_cpu_seconds(&t.path().join("stat").to_string_lossy());
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

/// What relays the load: our relay in this process, or a running rtpengine.
enum Target<'a> {
    Ours(&'a Relay),
    Rtpengine { ng: UdpSocket, pid: u32 },
}

/// What a step keeps open while it runs (dropped or deleted after it).
enum Calls {
    Ours(Vec<(Endpoint, Endpoint)>),
    Rtpengine(Vec<String>),
}

/// Cookies of ng commands: rtpengine answers a cookie it has seen (for a minute) from its
/// cache, whatever the command, so none may repeat within a run or across runs.
static COOKIE: AtomicU64 = AtomicU64::new(0);
/// Steps run so far: a step's call-ids are not an earlier step's.
static STEP: AtomicU64 = AtomicU64::new(0);

/// Sends one command of rtpengine's ng protocol (a cookie and a bencoded dictionary over UDP) and
/// returns the bencoded answer; panics on a failure, since the benchmark means nothing then.
fn ng(sock: &UdpSocket, pairs: &[(&str, &str)]) -> String {
    let cookie = format!(
        "{}-{}",
        std::process::id(),
        COOKIE.fetch_add(1, Ordering::Relaxed)
    );
    let mut pairs = pairs.to_vec();
    pairs.sort();
    let mut msg = format!("{cookie} d");
    for (k, v) in pairs {
        msg += &format!("{}:{k}{}:{v}", k.len(), v.len());
    }
    msg.push('e');
    sock.send(msg.as_bytes()).expect("ng send");
    let mut buf = vec![0u8; 65536];
    loop {
        let n = sock
            .recv(&mut buf)
            .expect("ng answer (is rtpengine running?)");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if let Some(rest) = text.strip_prefix(&format!("{cookie} ")) {
            assert!(rest.contains("6:result2:ok"), "rtpengine said {rest}");
            return rest.to_string();
        }
    }
}

/// Sends an ng `offer` (no to-tag) or `answer` for a phone at `port` and returns the
/// port rtpengine gives the other side to send to.
fn ng_sdp(sock: &UdpSocket, id: &str, to_tag: Option<&str>, port: u16) -> u16 {
    let sdp = sdp_for(port);
    let mut pairs = vec![("call-id", id), ("from-tag", "a"), ("sdp", sdp.as_str())];
    match to_tag {
        Some(tag) => pairs.extend([("command", "answer"), ("to-tag", tag)]),
        None => pairs.push(("command", "offer")),
    }
    ng_port(&ng(sock, &pairs))
}

/// The audio port of the bencoded `sdp` in an ng answer.
fn ng_port(answer: &str) -> u16 {
    let at = answer.find("3:sdp").expect("ng answer without sdp") + 5;
    let (len, rest) = answer[at..].split_once(':').expect("sdp length");
    let sdp = &rest[..len.parse::<usize>().expect("sdp length")];
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("m=audio port")
}

fn sdp_for(port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

fn phone() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.2:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// Sets up `calls` relayed calls: two phones each, and where each sends.
fn set_up(target: &Target, calls: usize) -> (Vec<(UdpSocket, SocketAddr)>, Calls) {
    let mut phones = Vec::with_capacity(calls * 2);
    match target {
        Target::Ours(relay) => {
            let mut sessions = Vec::with_capacity(calls);
            for _ in 0..calls {
                let ea = relay.open().expect("relay ports");
                let eb = relay.open().expect("relay ports");
                let (a, b) = (phone(), phone());
                ea.set_remote(Some(a.local_addr().unwrap()), true);
                eb.set_remote(Some(b.local_addr().unwrap()), true);
                ea.connect(&eb, PtMap::default(), PtMap::default());
                phones.push((a, SocketAddr::from(([127, 0, 0, 1], ea.port))));
                phones.push((b, SocketAddr::from(([127, 0, 0, 1], eb.port))));
                sessions.push((ea, eb));
            }
            (phones, Calls::Ours(sessions))
        }
        Target::Rtpengine { ng: sock, .. } => {
            let mut ids = Vec::with_capacity(calls);
            let step = STEP.fetch_add(1, Ordering::Relaxed);
            for n in 0..calls {
                let (a, b) = (phone(), phone());
                let id = format!("bench-{}-{step}-{n}", std::process::id());
                // What B is sent to comes back from A's offer, what A is sent to from
                // B's answer.
                let to_b = ng_sdp(sock, &id, None, a.local_addr().unwrap().port());
                let to_a = ng_sdp(sock, &id, Some("b"), b.local_addr().unwrap().port());
                phones.push((a, SocketAddr::from(([127, 0, 0, 1], to_a))));
                phones.push((b, SocketAddr::from(([127, 0, 0, 1], to_b))));
                ids.push(id);
            }
            (phones, Calls::Rtpengine(ids))
        }
    }
}

/// Runs one load step; returns whether the full nominal rate was offered and loss stayed
/// under 0.1 %, and the relay's CPU per received packet in microseconds.
fn run(target: &Target, calls: usize, seconds: u64) -> (bool, f64) {
    let (phones, kept) = set_up(target, calls);
    let server_cpu = || match target {
        Target::Ours(_) => relay_cpu_seconds(),
        Target::Rtpengine { pid, .. } => stat_cpu_seconds(&format!("/proc/{pid}/stat")),
    };
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
    let relay0 = server_cpu();
    let start = Instant::now();
    let mut tick = start;
    let mut seq: u16 = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        seq = seq.wrapping_add(1);
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        for (s, dst) in phones.iter() {
            if s.send_to(&pkt, dst).is_ok() {
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
    let relay_cpu = server_cpu() - relay0;
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
    let who = match target {
        Target::Ours(_) => "pbxd relay",
        Target::Rtpengine { .. } => "rtpengine ",
    };
    println!(
        "{who} calls {calls:5}: {seconds} s, sent {sent} received {got}, loss {loss:.3} %, offered {rate:.0} of {nominal:.0} pkt/s nominal, this process (the generator, and our relay for pbxd) {:.0} % of one core, relay {:.0} % = {us_per_pkt:.2} us per packet, RSS {} MiB",
        100.0 * cpu / elapsed,
        100.0 * relay_cpu / elapsed,
        rss_kib() / 1024
    );
    match kept {
        Calls::Ours(sessions) => drop(sessions),
        Calls::Rtpengine(ids) => {
            if let Target::Rtpengine { ng: sock, .. } = target {
                for id in ids {
                    ng(
                        sock,
                        &[("command", "delete"), ("call-id", &id), ("from-tag", "a")],
                    );
                }
            }
        }
    }
    (rate >= 0.99 * nominal && loss < 0.1, us_per_pkt)
}

fn main() {
    let mut calls = vec![500usize, 1000, 2000, 3000];
    let mut seconds = 20u64;
    let mut rtpengine: Option<String> = None;
    let mut rtpengine_pid: Option<u32> = None;
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
            "--rtpengine" => rtpengine = Some(args[i + 1].clone()),
            "--rtpengine-pid" => rtpengine_pid = args[i + 1].parse().ok(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let need = calls.iter().max().copied().unwrap_or(0) as u64 * 6 + 1024;
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, need, need);
    let relay = Relay::new("127.0.0.1".parse().unwrap(), 20000, 59999);
    let theirs = rtpengine.map(|addr| {
        let pid = rtpengine_pid.expect("--rtpengine-pid PID with --rtpengine");
        let ng = UdpSocket::bind("127.0.0.1:0").unwrap();
        ng.connect(&addr).expect("--rtpengine HOST:PORT");
        ng.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Target::Rtpengine { ng, pid }
    });
    let ours = Target::Ours(&relay);
    let (mut best, mut best_theirs) = (0, 0);
    for c in calls {
        let (held, us) = run(&ours, c, seconds);
        if held {
            best = best.max(c);
        }
        if let Some(theirs) = &theirs {
            let (held_theirs, us_theirs) = run(theirs, c, seconds);
            if held_theirs {
                best_theirs = best_theirs.max(c);
            }
            if us_theirs > 0.0 {
                println!(
                    "relay CPU per packet at {c} calls: pbxd {us:.2} us, rtpengine {us_theirs:.2} us, ratio {:.2} (goal <= 0.5)",
                    us / us_theirs
                );
            }
        }
    }
    println!("most relayed calls held at the full 50 pkt/s each way with < 0.1 % loss: pbxd {best}{} (the load generator shares the same two cores)",
        if theirs.is_some() { format!(", rtpengine {best_theirs}") } else { String::new() });
}
