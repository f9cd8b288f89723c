//! Application load benchmark: N sessions at once on the relay pbxd uses, half of them
//! callers in an auto attendant or the voicemail menu (the box plays a prompt to them),
//! half leaving a voicemail (they send 50 G.711 packets a second and the box records
//! and listens for digits). Prints, per step: CPU, the prompt packets received against
//! the 50 a second expected, the longest gap between two prompt packets at any caller
//! and how many gaps were over 40 ms, and how much of the callers' audio was recorded.
//! Everything runs on loopback; the load generator shares the machine's cores.
//!
//! cargo run --release -p media --example app_load -- --sessions 200,500,1000 --seconds 20

use media::{Clip, Listen, Relay};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// Per listening caller: packets, the last arrival, the longest gap, gaps over 40 ms.
#[derive(Default, Clone, Copy)]
struct Heard {
    packets: u64,
    last: Option<Instant>,
    longest: Duration,
    late: u64,
}

fn prompt() -> Clip {
    // The system prompt a caller hears first in the voicemail menu, when installed;
    // else a tone of the same length (the relay's cost does not depend on the audio).
    Clip::load(std::path::Path::new(
        "/usr/share/asterisk/sounds/en/vm-intro.wav",
    ))
    .unwrap_or_else(|_| Clip::tone(&[440.0], 5000, 700, 0.25))
}

/// One step; true when every caller heard its prompt with no gap over 40 ms and the
/// recordings kept at least 99 % of what was sent.
fn run(relay: &Relay, sessions: usize, seconds: u64, clip: &Clip) -> bool {
    let listeners = sessions / 2;
    let talkers = sessions - listeners;
    let mut eps = Vec::new();
    let mut ivr = Vec::new();
    for _ in 0..listeners {
        let e = relay.open().expect("relay ports");
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        e.set_remote(Some(s.local_addr().unwrap()), true);
        e.listen(Listen {
            events_pt: Some(101),
            inband: false,
            record: 0,
        });
        e.play(clip.clone(), 0, false);
        ivr.push(s);
        eps.push(e);
    }
    let mut vm = Vec::new();
    let mut rec = Vec::new();
    for _ in 0..talkers {
        let e = relay.open().expect("relay ports");
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        e.set_remote(Some(s.local_addr().unwrap()), true);
        e.listen(Listen {
            events_pt: Some(101),
            inband: false,
            record: 8000 * (seconds as usize + 5),
        });
        vm.push((s, format!("127.0.0.1:{}", e.port)));
        rec.push(e);
    }
    let ivr = Arc::new(ivr);
    let heard = Arc::new(Mutex::new(vec![Heard::default(); listeners]));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = {
        let (ivr, heard, stop) = (ivr.clone(), heard.clone(), stop.clone());
        std::thread::spawn(move || {
            let ep = Epoll::new(EpollCreateFlags::empty()).unwrap();
            for (i, s) in ivr.iter().enumerate() {
                ep.add(s.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                    .unwrap();
            }
            let mut events = vec![EpollEvent::empty(); 1024];
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let n = ep
                    .wait(&mut events, EpollTimeout::from(100u16))
                    .unwrap_or(0);
                let now = Instant::now();
                let mut h = heard.lock().unwrap();
                for e in &events[..n] {
                    let i = e.data() as usize;
                    while ivr[i].recv_from(&mut buf).is_ok() {
                        let x = &mut h[i];
                        if let Some(last) = x.last {
                            let gap = now.saturating_duration_since(last);
                            x.longest = x.longest.max(gap);
                            if gap > Duration::from_millis(40) {
                                x.late += 1;
                            }
                        }
                        x.last = Some(now);
                        x.packets += 1;
                    }
                }
            }
        })
    };
    // The first second settles (sockets, first packets); then the measurement.
    std::thread::sleep(Duration::from_secs(1));
    for h in heard.lock().unwrap().iter_mut() {
        *h = Heard {
            last: h.last,
            ..Heard::default()
        };
    }
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    pkt[12..].fill(0x7f);
    let mut sent = 0u64;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut tick = start;
    let mut seq: u16 = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        seq = seq.wrapping_add(1);
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        for (s, dst) in &vm {
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
    std::thread::sleep(Duration::from_millis(200));
    let cpu = cpu_seconds() - cpu0;
    // Prompts kept playing through the 200 ms the recordings were given to drain.
    let listened = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap();
    let h = heard.lock().unwrap();
    let got: u64 = h.iter().map(|x| x.packets).sum();
    let expected = listeners as f64 * 50.0 * listened;
    let longest = h.iter().map(|x| x.longest).max().unwrap_or_default();
    let late: u64 = h.iter().map(|x| x.late).sum();
    let recorded: usize = rec.iter().map(|e| e.stop_listening().len()).sum();
    let kept = if sent == 0 {
        0.0
    } else {
        100.0 * recorded as f64 / (sent as f64 * 160.0)
    };
    println!(
        "sessions {sessions:5} ({listeners} hearing prompts, {talkers} recorded): CPU {:.0} % of one core, prompt packets {got} of {expected:.0} expected, longest gap {} ms, gaps over 40 ms {late}, recorded {kept:.1} % of what was said",
        100.0 * cpu / elapsed,
        longest.as_millis(),
    );
    drop(eps);
    drop(rec);
    late == 0 && kept >= 99.0 && got as f64 >= 0.99 * expected
}

fn main() {
    let mut sessions = vec![500usize, 1000, 2000, 3000];
    let mut seconds = 20u64;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--sessions" => {
                sessions = args[i + 1]
                    .split(',')
                    .map(|c| c.parse().expect("--sessions N[,N...]"))
                    .collect()
            }
            "--seconds" => seconds = args[i + 1].parse().expect("--seconds N"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let need = sessions.iter().max().copied().unwrap_or(0) as u64 * 4 + 1024;
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, need, need);
    let relay = Relay::new("127.0.0.1".parse().unwrap(), 20000, 59999);
    let clip = prompt();
    let mut best = 0;
    for s in sessions {
        if run(&relay, s, seconds, &clip) {
            best = best.max(s);
        }
    }
    println!("most concurrent prompt and voicemail sessions with no prompt gap over 40 ms and >= 99 % recorded: {best} (the load generator shares the same two cores)");
}
