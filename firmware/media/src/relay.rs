//! The RTP/RTCP relay: each call gets two port pairs on the box, one facing each party.
//!
//! Packets are relayed from side to side with symmetric RTP (we send from the port we
//! receive on), latching to the real source for phones behind NAT, payload-type mapping
//! and G.711 transcoding in place. Relaying runs on dedicated threads, one per core, each
//! with one epoll set over the sockets of its sessions: a ready socket is drained in a
//! loop with one reused buffer, so there is no allocation and no task wake-up per packet.

use crate::g711;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdp};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Payload conversion applied to one payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Xcode {
    #[default]
    None,
    UlawToAlaw,
    AlawToUlaw,
}

/// Payload-type rewrite for one direction: incoming PT -> (outgoing PT, conversion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtMap(pub [(u8, Xcode); 128]);

impl Default for PtMap {
    fn default() -> Self {
        PtMap(std::array::from_fn(|i| (i as u8, Xcode::None)))
    }
}

impl PtMap {
    /// Sets the rewrite for one payload type.
    pub fn set(&mut self, from: u8, to: u8, x: Xcode) {
        if from < 128 && to < 128 {
            self.0[from as usize] = (to, x);
        }
    }
}

/// Where one side's media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideConfig {
    /// RTP address from the party's SDP.
    pub remote: Option<SocketAddr>,
    /// Follow the address packets really come from (NAT mode).
    pub latch: bool,
}

/// The whole relay configuration of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionConfig {
    pub a: SideConfig,
    pub b: SideConfig,
    pub a_to_b: PtMap,
    pub b_to_a: PtMap,
}

/// Packet counters of one session.
#[derive(Debug, Default)]
pub struct Stats {
    pub a_to_b: AtomicU64,
    pub b_to_a: AtomicU64,
    pub transcoded: AtomicU64,
}

/// A call's relay; dropping it frees the ports.
pub struct Session {
    /// RTP port facing party A (RTCP is the next one).
    pub a_port: u16,
    /// RTP port facing party B.
    pub b_port: u16,
    pub stats: Arc<Stats>,
    shared: Arc<Shared>,
    id: u64,
    engine: Arc<Engine>,
}

impl Session {
    /// Applies a new configuration (after an answer or a re-INVITE).
    pub fn configure(&self, f: impl FnOnce(&mut SessionConfig)) {
        f(&mut self.shared.cfg.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// The current configuration.
    pub fn config(&self) -> SessionConfig {
        *self.shared.cfg.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.engine.command(Cmd::Remove(self.id));
    }
}

/// What a relay thread and the session handle share.
struct Shared {
    /// A RTP, A RTCP, B RTP, B RTCP.
    socks: [StdUdp; 4],
    cfg: RwLock<SessionConfig>,
    stats: Arc<Stats>,
}

enum Cmd {
    Add(u64, Arc<Shared>),
    Remove(u64),
}

/// One relay thread: an epoll set over the sockets of its sessions.
struct Engine {
    epoll: Epoll,
    wake: EventFd,
    cmds: Mutex<Vec<Cmd>>,
}

const WAKE: u64 = u64::MAX;

impl Engine {
    fn start(n: usize) -> io::Result<Arc<Engine>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let e = Arc::new(Engine {
            epoll,
            wake,
            cmds: Mutex::new(Vec::new()),
        });
        let e2 = e.clone();
        std::thread::Builder::new()
            .name(format!("pbx-relay-{n}"))
            .spawn(move || e2.run())?;
        Ok(e)
    }

    fn command(&self, c: Cmd) {
        self.cmds.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        let _ = self.wake.write(1);
    }

    /// The relay loop: never returns; one thread per engine.
    fn run(&self) {
        let mut sessions: HashMap<u64, Entry> = HashMap::new();
        let mut events = vec![EpollEvent::empty(); 256];
        let mut buf = [0u8; 2048];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(1000u16)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("relay epoll: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            for ev in &events[..n] {
                let token = ev.data();
                if token == WAKE {
                    let _ = self.wake.read();
                    let cmds =
                        std::mem::take(&mut *self.cmds.lock().unwrap_or_else(|e| e.into_inner()));
                    for c in cmds {
                        match c {
                            Cmd::Add(id, shared) => {
                                for (i, s) in shared.socks.iter().enumerate() {
                                    if let Err(e) = self.epoll.add(
                                        s.as_fd(),
                                        EpollEvent::new(EpollFlags::EPOLLIN, id << 2 | i as u64),
                                    ) {
                                        tracing::warn!("relay: cannot watch a socket: {e}");
                                    }
                                }
                                sessions.insert(
                                    id,
                                    Entry {
                                        shared,
                                        latched: [None; 4],
                                    },
                                );
                            }
                            Cmd::Remove(id) => {
                                if let Some(e) = sessions.remove(&id) {
                                    for s in &e.shared.socks {
                                        let _ = self.epoll.delete(s.as_fd());
                                    }
                                }
                            }
                        }
                    }
                    continue;
                }
                let (id, idx) = (token >> 2, (token & 3) as usize);
                let Some(entry) = sessions.get_mut(&id) else {
                    continue;
                };
                // Drain the socket: several packets may wait after a busy moment.
                for _ in 0..64 {
                    match entry.shared.socks[idx].recv_from(&mut buf) {
                        Ok((len, src)) => entry.relay(idx, &mut buf[..len], src),
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

/// A session as its relay thread sees it.
struct Entry {
    shared: Arc<Shared>,
    /// Where packets really came from, per socket.
    latched: [Option<SocketAddr>; 4],
}

impl Entry {
    fn relay(&mut self, idx: usize, pkt: &mut [u8], src: SocketAddr) {
        self.latched[idx] = Some(src);
        let cfg = self.shared.cfg.read().unwrap_or_else(|e| e.into_inner());
        let stats = &self.shared.stats;
        // A side is sockets 0/1, B side 2/3; RTP even, RTCP odd.
        let (to_side, out, rtcp) = match idx {
            0 => (&cfg.b, 2, false),
            1 => (&cfg.b, 3, true),
            2 => (&cfg.a, 0, false),
            _ => (&cfg.a, 1, true),
        };
        let Some(dst) = target(to_side, &self.latched[out], rtcp) else {
            return;
        };
        if !rtcp {
            let map = if idx == 0 { &cfg.a_to_b } else { &cfg.b_to_a };
            if !rewrite(pkt, map, stats) {
                return;
            }
        }
        if self.shared.socks[out].send_to(pkt, dst).is_ok() && !rtcp {
            let counter = if idx == 0 {
                &stats.a_to_b
            } else {
                &stats.b_to_a
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Hands out port pairs from a range; relaying runs on one thread per core.
#[derive(Clone)]
pub struct Relay {
    ip: IpAddr,
    low: u16,
    high: u16,
    cursor: Arc<Mutex<u16>>,
    engines: Arc<Vec<Arc<Engine>>>,
    next_id: Arc<AtomicU64>,
}

impl Relay {
    /// A relay binding on `ip`, using RTP ports `low..=high` (RTP even, RTCP odd), with
    /// one relay thread per available core.
    pub fn new(ip: IpAddr, low: u16, high: u16) -> Relay {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let engines = (0..threads)
            .map(|n| Engine::start(n).expect("relay thread"))
            .collect();
        let low = low + (low % 2);
        Relay {
            ip,
            low,
            high,
            cursor: Arc::new(Mutex::new(low)),
            engines: Arc::new(engines),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    fn bind_pair(&self) -> io::Result<(StdUdp, StdUdp, u16)> {
        let mut cur = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let span = ((self.high.saturating_sub(self.low)) / 2 + 1) as usize;
        for _ in 0..span {
            let p = *cur;
            *cur = if p as u32 + 3 > self.high as u32 {
                self.low
            } else {
                p + 2
            };
            if p == 0 || p as u32 + 1 > self.high as u32 {
                continue;
            }
            let Ok(rtp) = StdUdp::bind(SocketAddr::new(self.ip, p)) else {
                continue;
            };
            let Ok(rtcp) = StdUdp::bind(SocketAddr::new(self.ip, p + 1)) else {
                continue;
            };
            return Ok((rtp, rtcp, p));
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP ports in the range",
        ))
    }

    /// Allocates two port pairs and starts relaying them.
    pub fn allocate(&self) -> io::Result<Session> {
        let (a_rtp, a_rtcp, a_port) = self.bind_pair()?;
        let (b_rtp, b_rtcp, b_port) = self.bind_pair()?;
        for s in [&a_rtp, &a_rtcp, &b_rtp, &b_rtcp] {
            s.set_nonblocking(true)?;
        }
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            socks: [a_rtp, a_rtcp, b_rtp, b_rtcp],
            cfg: RwLock::new(SessionConfig::default()),
            stats: stats.clone(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let engine = self.engines[(id as usize) % self.engines.len()].clone();
        engine.command(Cmd::Add(id, shared.clone()));
        Ok(Session {
            a_port,
            b_port,
            stats,
            shared,
            id,
            engine,
        })
    }
}

fn target(side: &SideConfig, latched: &Option<SocketAddr>, rtcp: bool) -> Option<SocketAddr> {
    let signalled = side.remote.map(|mut a| {
        if rtcp {
            a.set_port(a.port().wrapping_add(1));
        }
        a
    });
    if side.latch {
        latched.or(signalled)
    } else {
        signalled.or(*latched)
    }
}

/// Rewrites an RTP packet in place for the other side. Returns false to drop it.
fn rewrite(pkt: &mut [u8], map: &PtMap, stats: &Stats) -> bool {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return false;
    }
    let pt = pkt[1] & 0x7f;
    let (out, x) = map.0[pt as usize];
    pkt[1] = (pkt[1] & 0x80) | out;
    if x != Xcode::None {
        let Some(payload) = crate::rtp::payload_range(pkt) else {
            return false;
        };
        let table = match x {
            Xcode::UlawToAlaw => g711::ulaw_to_alaw_table(),
            Xcode::AlawToUlaw => g711::alaw_to_ulaw_table(),
            Xcode::None => unreachable!(),
        };
        for b in &mut pkt[payload] {
            *b = table[*b as usize];
        }
        stats.transcoded.fetch_add(1, Ordering::Relaxed);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rtp(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn relays_latches_and_transcodes() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31000, 31100);
        let s = relay.allocate().unwrap();
        let phone_a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let phone_b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // A's SDP claims a private address it cannot be reached on: latching must fix it.
        let mut map = PtMap::default();
        map.set(0, 8, Xcode::UlawToAlaw);
        let mut back = PtMap::default();
        back.set(8, 0, Xcode::AlawToUlaw);
        s.configure(|c| {
            c.a = SideConfig {
                remote: Some("127.0.0.1:9".parse().unwrap()),
                latch: true,
            };
            c.b = SideConfig {
                remote: Some(phone_b.local_addr().unwrap()),
                latch: false,
            };
            c.a_to_b = map;
            c.b_to_a = back;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let a_side: SocketAddr = format!("127.0.0.1:{}", s.a_port).parse().unwrap();
        let b_side: SocketAddr = format!("127.0.0.1:{}", s.b_port).parse().unwrap();
        phone_a
            .send_to(&rtp(0, &[0xff; 160]), a_side)
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), phone_b.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, b_side, "symmetric: sent from the B-facing port");
        assert_eq!(buf[1] & 0x7f, 8);
        assert!(
            buf[12..n].iter().all(|b| *b == 0xd5),
            "u-law silence became A-law silence"
        );
        phone_b
            .send_to(&rtp(8, &[0xd5; 160]), b_side)
            .await
            .unwrap();
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), phone_a.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, a_side);
        assert_eq!(buf[1] & 0x7f, 0);
        assert!(buf[12..n]
            .iter()
            .all(|b| crate::g711::ulaw_to_linear(*b).abs() <= 8));
        assert_eq!(s.stats.transcoded.load(Ordering::Relaxed), 2);
        // Garbage is dropped, not relayed, and does not stop the relay.
        phone_a.send_to(b"junk", a_side).await.unwrap();
        phone_a
            .send_to(&rtp(101, &[1, 2, 3, 4]), a_side)
            .await
            .unwrap();
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), phone_b.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &buf[12..n],
            &[1, 2, 3, 4],
            "telephone-event passes unchanged"
        );
    }

    #[tokio::test]
    async fn rtcp_is_relayed_on_the_next_port() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31300, 31399);
        let s = relay.allocate().unwrap();
        let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // B's RTCP port is its RTP port + 1.
        let b_rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_rtcp = loop {
            let p = b_rtp.local_addr().unwrap().port() + 1;
            if let Ok(s) = tokio::net::UdpSocket::bind(("127.0.0.1", p)).await {
                break s;
            }
        };
        s.configure(|c| {
            c.a = SideConfig {
                remote: Some(a.local_addr().unwrap()),
                latch: true,
            };
            c.b = SideConfig {
                remote: Some(b_rtp.local_addr().unwrap()),
                latch: false,
            };
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let report = [
            0x81, 200, 0, 6, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
        ];
        let a_rtcp_side: SocketAddr = format!("127.0.0.1:{}", s.a_port + 1).parse().unwrap();
        a.send_to(&report, a_rtcp_side).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, from) = tokio::time::timeout(Duration::from_secs(2), b_rtcp.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], &report, "RTCP passes unchanged");
        assert_eq!(
            from.port(),
            s.b_port + 1,
            "sent from the B-facing RTCP port"
        );
    }

    #[test]
    fn rewrite_survives_any_packet() {
        // Random headers (CSRC count, extension, padding bits) with transcoding on.
        let mut map = PtMap::default();
        for pt in 0..128 {
            map.set(
                pt,
                pt,
                if pt % 2 == 0 {
                    Xcode::UlawToAlaw
                } else {
                    Xcode::AlawToUlaw
                },
            );
        }
        let stats = Stats::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = [0u8; 300];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 300) as usize;
            for (i, b) in buf[..len].iter_mut().enumerate() {
                *b = (x >> (i % 8 * 8)) as u8 ^ i as u8;
            }
            if len > 0 {
                buf[0] = 0x80 | (x as u8 & 0x3f); // version 2, random P/X/CC
            }
            let _ = rewrite(&mut buf[..len], &map, &stats);
        }
    }

    #[test]
    fn ports_are_exhausted_cleanly() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let relay = Relay::new("127.0.0.1".parse().unwrap(), 31200, 31203);
            let s = relay.allocate().unwrap();
            assert!(relay.allocate().is_err());
            drop(s);
        });
    }
}
