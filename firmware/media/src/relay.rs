//! RTP endpoints: one RTP/RTCP port pair on the box per leg of a call.
//!
//! Two endpoints connected are the relay fast path: a packet that reaches one is sent
//! on from the other (symmetric RTP: we send from the port we receive on), with
//! latching to the real source for phones behind NAT, payload-type mapping and G.711
//! transcoding in place, and no decoding or allocation per packet. An endpoint that
//! plays sends a [`Clip`] itself, 20 ms a packet (music on hold, prompts, tones); what
//! its former peer sends meanwhile is dropped. Endpoints can be connected, played to
//! and moved from one peer to another at any time: that is hold, transfer and pickup.
//!
//! An endpoint also listens to its party when asked ([`Endpoint::listen`]): keypad
//! digits (RFC 4733 events and in-band tones) become [`Event`]s and what the party says
//! can be recorded. A clip played once, or a digit sent as RFC 4733 events
//! ([`Endpoint::send_digit`]), ends with [`Event::PlayDone`], and the connection (if
//! any) carries the peer's audio again.
//!
//! Relaying runs on dedicated threads, one per core, each with one epoll set over the
//! sockets of its endpoints: a ready socket is drained in a loop with one reused
//! buffer, so there is no allocation and no task wake-up per packet. The two endpoints
//! of a connection may sit on different threads; each sends on the other's socket.

use crate::dtmf::{EventIn, InBand};
use crate::g711;
use crate::mixer::{Input, Mixer};
use crate::player::Clip;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use std::collections::HashMap;
use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdp};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

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

/// Packet counters of one endpoint.
#[derive(Debug, Default)]
pub struct Stats {
    /// RTP packets received here and sent on by the connected endpoint.
    pub relayed: AtomicU64,
    /// RTP packets played from here.
    pub played: AtomicU64,
    /// Of the relayed packets, those whose G.711 law was changed.
    pub transcoded: AtomicU64,
    /// Packets an SRTP leg dropped: forged, replayed, or not SRTP at all.
    pub srtp_dropped: AtomicU64,
}

/// What endpoints report to the exchange (through [`Relay::set_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A keypad digit from the endpoint's party: RFC 4733 or, when `inband`, heard in
    /// the audio.
    Dtmf {
        endpoint: u64,
        digit: char,
        inband: bool,
    },
    /// A clip played once, or a digit sent, has ended.
    PlayDone { endpoint: u64 },
    /// A recording was written to `path` (`samples` at 8 kHz), or could not be (`ok`
    /// false; the driver says why in its log).
    Recorded {
        endpoint: u64,
        path: std::path::PathBuf,
        samples: usize,
        ok: bool,
    },
}

/// Where endpoints' events go.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<Event>;

/// What an endpoint listens for in what its party sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listen {
    /// The payload type of the party's telephone-events (RFC 4733), if it sends them.
    pub events_pt: Option<u8>,
    /// Digits heard in the audio too (phones and lines that send them in-band).
    pub inband: bool,
    /// Record what the party says, at most this many samples (8,000 a second; 0 for
    /// no recording).
    pub record: usize,
}

/// The longest silence put in a recording for packets that did not come: 10 s.
const MAX_GAP: usize = 80_000;

/// An endpoint's listening state, used by its relay thread.
#[derive(Debug, Default)]
struct Tap {
    listen: Listen,
    events: EventIn,
    inband: InBand,
    recording: Vec<i16>,
    /// Samples of this recording already handed to the driver (a long one is written
    /// out as it goes).
    taken: usize,
    /// The RTP timestamp (of source `ssrc`) the next audio packet should carry: a later
    /// one means packets were lost or not sent (a phone on hold, silence
    /// suppression), and the recording gets that much silence so it keeps time.
    next_ts: Option<(u32, u32)>,
    pcm: Vec<i16>,
    digits: Vec<char>,
}

impl Tap {
    /// One RTP packet from the party.
    fn packet(&mut self, pkt: &[u8], id: u64, sink: Option<&EventSink>) {
        let Some(range) = crate::rtp::payload_range(pkt) else {
            return;
        };
        let (pt, payload) = (pkt[1] & 0x7f, &pkt[range]);
        if Some(pt) == self.listen.events_pt {
            let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
            if let (Some(digit), Some(sink)) = (self.events.packet(ts, payload), sink) {
                let _ = sink.send(Event::Dtmf {
                    endpoint: id,
                    digit,
                    inband: false,
                });
            }
            return;
        }
        let decode: fn(u8) -> i16 = match pt {
            0 => g711::ulaw_to_linear,
            8 => g711::alaw_to_linear,
            _ => return,
        };
        let mut room = self
            .listen
            .record
            .saturating_sub(self.taken + self.recording.len());
        if room == 0 && !self.listen.inband {
            return; // only events are listened for, or the recording is full
        }
        if room > 0 {
            let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
            let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
            if let Some((src, next)) = self.next_ts {
                let gap = ts.wrapping_sub(next) as usize;
                // Up to 10 s of silence; a larger jump (or one backwards) is a new
                // stream, not a gap.
                if src == ssrc && gap > 0 && gap <= MAX_GAP {
                    let fill = gap.min(room);
                    self.recording.resize(self.recording.len() + fill, 0);
                    room -= fill;
                }
            }
            self.next_ts = Some((ssrc, ts.wrapping_add(payload.len() as u32)));
        }
        self.pcm.clear();
        self.pcm.extend(payload.iter().map(|b| decode(*b)));
        self.recording
            .extend_from_slice(&self.pcm[..room.min(self.pcm.len())]);
        if self.listen.inband {
            self.digits.clear();
            self.inband.samples(&self.pcm, &mut self.digits);
            for &digit in &self.digits {
                if let Some(sink) = sink {
                    let _ = sink.send(Event::Dtmf {
                        endpoint: id,
                        digit,
                        inband: true,
                    });
                }
            }
        }
    }
}

/// The destination a WebRTC leg's packets are given: unused (str0m sends them where
/// the browser's checks succeeded), a constant so that the packet path makes no
/// `getsockname(2)` for it.
const WEBRTC_DEST: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

/// What an endpoint does with what it receives.
#[derive(Debug, Default)]
struct Cfg {
    side: SideConfig,
    /// The endpoint packets received here go out from.
    peer: Option<Weak<Shared>>,
    /// Payload rewrite for packets received here on their way to the peer.
    map: PtMap,
    /// Playing (the number of the play, 0 for none): what the peer sends is not
    /// forwarded to this side.
    playing: u64,
    /// The play loops (music on hold): what this side says goes nowhere either. A clip
    /// played once or a digit holds back only the peer's audio.
    looping: bool,
    /// In a conference: where what the party says goes, and the mixer.
    mix: Option<(Arc<Input>, Weak<Mixer>)>,
}

/// What a relay thread and the endpoint handle share.
pub(crate) struct Shared {
    /// RTP and RTCP.
    pub(crate) socks: [StdUdp; 2],
    cfg: RwLock<Cfg>,
    /// Where RTP and RTCP really came from last.
    latched: Mutex<[Option<SocketAddr>; 2]>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) id: u64,
    /// Set while a tap listens: the fast path reads only this flag otherwise.
    listening: AtomicBool,
    tap: Mutex<Tap>,
    events: Arc<OnceLock<EventSink>>,
    /// SRTP on this leg: what comes in is unprotected, what goes out protected.
    srtp: Mutex<Option<Box<SrtpLeg>>>,
    /// Set while `srtp` holds a leg, or the leg is WebRTC: the plain fast path reads
    /// only this flag.
    secure: AtomicBool,
    /// WebRTC on this leg (a browser): str0m between the socket and the relay. Set
    /// with `secure`; None while the browser's answer is awaited (the leg is silent).
    webrtc: Mutex<Option<Box<crate::webrtc::WebRtcLeg>>>,
    /// Set while the leg is WebRTC.
    webrtc_on: AtomicBool,
}

/// SRTP keys of a leg: the suite, the party's master key and salt (what it sends is
/// unprotected with it), the box's (what goes to it is protected with it).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: crate::srtp::Suite,
    pub theirs: [u8; crate::srtp::KEY_LEN],
    pub ours: [u8; crate::srtp::KEY_LEN],
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secrets: never in a log.
        write!(f, "SrtpKeys({})", self.suite.name())
    }
}

/// The two sessions of an SRTP leg.
struct SrtpLeg {
    keys: SrtpKeys,
    rx: crate::srtp::Session,
    tx: crate::srtp::Session,
}

impl Shared {
    fn cfg(&self) -> std::sync::RwLockReadGuard<'_, Cfg> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cfg_mut(&self) -> std::sync::RwLockWriteGuard<'_, Cfg> {
        self.cfg.write().unwrap_or_else(|e| e.into_inner())
    }

    fn latched(&self) -> std::sync::MutexGuard<'_, [Option<SocketAddr>; 2]> {
        self.latched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tap(&self) -> std::sync::MutexGuard<'_, Tap> {
        self.tap.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, e: Event) {
        if let Some(sink) = self.events.get() {
            let _ = sink.send(e);
        }
    }

    fn srtp(&self) -> std::sync::MutexGuard<'_, Option<Box<SrtpLeg>>> {
        self.srtp.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn webrtc(&self) -> std::sync::MutexGuard<'_, Option<Box<crate::webrtc::WebRtcLeg>>> {
        self.webrtc.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_webrtc(&self) -> bool {
        self.webrtc_on.load(Ordering::Acquire)
    }

    /// Drives a WebRTC leg's timers.
    fn tick_webrtc(&self, now: Instant) {
        if let Some(leg) = self.webrtc().as_mut() {
            leg.tick(&self.socks[0], now);
        }
    }

    /// Sends a packet out of socket `idx` (0 RTP, 1 RTCP) to `dst`, protected first
    /// on an SRTP leg (a packet that cannot be protected is not sent in clear).
    pub(crate) fn send(&self, idx: usize, pkt: &[u8], dst: SocketAddr) -> bool {
        if !self.secure.load(Ordering::Acquire) {
            return self.socks[idx].send_to(pkt, dst).is_ok();
        }
        if self.is_webrtc() {
            // RTP only: the browser's RTCP is str0m's own (a peer's is not passed on).
            return idx == 0
                && self
                    .webrtc()
                    .as_mut()
                    .is_some_and(|leg| leg.send(&self.socks[0], pkt));
        }
        let mut buf = [0u8; 2048];
        if pkt.len() + crate::srtp::MAX_TRAILER > buf.len() {
            return false;
        }
        buf[..pkt.len()].copy_from_slice(pkt);
        let n = match self.srtp().as_mut() {
            Some(leg) => match leg.tx.protect(&mut buf, pkt.len(), idx == 1) {
                Ok(n) => n,
                Err(_) => return false,
            },
            None => return false,
        };
        self.socks[idx].send_to(&buf[..n], dst).is_ok()
    }

    /// What came in on an SRTP leg, checked and decrypted in place: its plain length,
    /// or None to drop it (forged, replayed, or sent before the keys were set). A plain
    /// leg passes everything.
    /// `buf[..len]` came in; a WebRTC leg may write back more than that (Opus
    /// decoded to G.711), up to `buf`'s length.
    fn unprotect(&self, idx: usize, buf: &mut [u8], len: usize, src: SocketAddr) -> Option<usize> {
        if !self.secure.load(Ordering::Acquire) {
            return Some(len);
        }
        if self.is_webrtc() {
            // Checks, DTLS and RTCP are answered by the leg; its RTP comes back plain.
            return self
                .webrtc()
                .as_mut()
                .filter(|_| idx == 0)
                .and_then(|leg| leg.receive(&self.socks[0], src, buf, len));
        }
        let n = self
            .srtp()
            .as_mut()?
            .rx
            .unprotect(&mut buf[..len], idx == 1)
            .ok();
        if n.is_none() {
            self.stats.srtp_dropped.fetch_add(1, Ordering::Relaxed);
        }
        n
    }

    /// Where this endpoint's RTP (or RTCP) goes, if anywhere. A WebRTC leg's goes
    /// where its browser's checks succeeded, which str0m knows: [`WEBRTC_DEST`]
    /// stands for that.
    fn dest(&self, rtcp: bool) -> Option<SocketAddr> {
        if self.is_webrtc() {
            return Some(WEBRTC_DEST);
        }
        let side = self.cfg().side;
        target(&side, &self.latched()[rtcp as usize], rtcp)
    }

    /// Where this endpoint's RTP goes, unless it is playing something (a prompt to one
    /// conference participant goes before the conference).
    pub(crate) fn dest_unless_playing(&self) -> Option<SocketAddr> {
        let cfg = self.cfg();
        if cfg.playing != 0 {
            return None;
        }
        if self.is_webrtc() {
            return Some(WEBRTC_DEST);
        }
        target(&cfg.side, &self.latched()[0], false)
    }
}

/// One port pair on the box facing one party; dropping it frees the ports.
pub struct Endpoint {
    /// The RTP port (RTCP is the next one).
    pub port: u16,
    pub stats: Arc<Stats>,
    shared: Arc<Shared>,
    id: u64,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({})", self.port)
    }
}

impl Endpoint {
    /// Puts SRTP on the leg (SDES: the party's key unprotects what it sends, the key
    /// the box gave it protects what goes to it), or takes it off with `None`. Keys
    /// that libsrtp refuses leave the leg silent rather than plain.
    pub fn set_srtp(&self, keys: Option<SrtpKeys>) {
        use crate::srtp::Session;
        self.drop_webrtc();
        let mut cur = self.shared.srtp();
        let Some(k) = keys else {
            *cur = None;
            self.shared.secure.store(false, Ordering::Release);
            return;
        };
        // A session's rollover counter and replay window live as long as its key: the
        // same keys again (an offer or answer repeating them) change nothing, and a
        // new key of the party's renews only what reads it.
        let leg = match cur.take() {
            Some(old) if old.keys == k => Some(old),
            Some(old) if old.keys.suite == k.suite && old.keys.ours == k.ours => {
                Session::inbound(k.suite, &k.theirs).ok().map(|rx| {
                    Box::new(SrtpLeg {
                        keys: k.clone(),
                        rx,
                        tx: old.tx,
                    })
                })
            }
            _ => match (
                Session::inbound(k.suite, &k.theirs),
                Session::outbound(k.suite, &k.ours),
            ) {
                (Ok(rx), Ok(tx)) => Some(Box::new(SrtpLeg {
                    keys: k.clone(),
                    rx,
                    tx,
                })),
                _ => None,
            },
        };
        // Keys libsrtp refused leave the leg silent rather than plain.
        *cur = leg;
        self.shared.secure.store(true, Ordering::Release);
    }

    /// Makes the leg a WebRTC one (a browser: ICE-lite and DTLS-SRTP through str0m)
    /// with what both descriptions said, or, with `None`, a WebRTC leg that waits
    /// for the browser's answer (silent both ways). The same parameters again change
    /// nothing (the handshake done stands), new ICE credentials alone restart ICE on
    /// the same session, and a new fingerprint or DTLS role starts afresh. Takes any SDES
    /// keys off. Parameters str0m refuses leave the leg silent.
    pub fn set_webrtc(&self, mut params: Option<crate::webrtc::WebRtcParams>) {
        *self.shared.srtp() = None;
        // No address given for the candidate: the one the leg's socket is bound to.
        if let (Some(p), Ok(a)) = (params.as_mut(), self.shared.socks[0].local_addr()) {
            if p.local.ip().is_unspecified() {
                p.local = a;
            }
        }
        {
            let mut cur = self.shared.webrtc();
            match params {
                Some(p) if cur.as_ref().is_some_and(|l| l.params == p) => {}
                // An ICE restart: the DTLS association and keys stand.
                Some(p) if cur.as_mut().is_some_and(|l| l.restart_ice(&p)) => {}
                Some(p) => {
                    *cur = match crate::webrtc::WebRtcLeg::new(p) {
                        Ok(leg) => Some(Box::new(leg)),
                        Err(e) => {
                            tracing::warn!("WebRTC leg on port {}: {e}", self.port);
                            None
                        }
                    }
                }
                None => *cur = None,
            }
        }
        self.shared.secure.store(true, Ordering::Release);
        if !self.shared.webrtc_on.swap(true, Ordering::AcqRel) {
            self.engine.webrtc.fetch_add(1, Ordering::Relaxed);
            // Its timers run from now: the thread shortens its waits.
            self.engine.command(Cmd::Tick, true);
        }
    }

    /// Whether the leg is WebRTC and its browser connected (checks and handshake
    /// done).
    pub fn webrtc_connected(&self) -> bool {
        self.shared.webrtc().as_ref().is_some_and(|l| l.connected())
    }

    /// Whether the leg is WebRTC.
    pub fn is_webrtc(&self) -> bool {
        self.shared.is_webrtc()
    }

    fn drop_webrtc(&self) {
        *self.shared.webrtc() = None;
        if self.shared.webrtc_on.swap(false, Ordering::AcqRel) {
            self.engine.webrtc.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether the leg speaks SRTP.
    pub fn secure(&self) -> bool {
        self.shared.secure.load(Ordering::Acquire)
    }

    /// Points the endpoint at the party's RTP address (from its SDP), following the
    /// real source of its packets when `latch` is set.
    pub fn set_remote(&self, remote: Option<SocketAddr>, latch: bool) {
        self.shared.cfg_mut().side = SideConfig { remote, latch };
    }

    /// Forgets where packets came from (a spare endpoint going into use).
    pub fn forget_latched(&self) {
        *self.shared.latched() = [None; 2];
    }

    /// Where the party said it receives RTP, and whether to latch.
    pub fn side(&self) -> SideConfig {
        self.shared.cfg().side
    }

    /// Connects two endpoints both ways: what reaches `self` goes out of `other` with
    /// `here_to_there`, and back with `there_to_here`. Stops playing on both and drops
    /// any earlier connection of either.
    pub fn connect(&self, other: &Endpoint, here_to_there: PtMap, there_to_here: PtMap) {
        self.leave();
        other.leave();
        self.disconnect();
        other.disconnect();
        self.stop();
        other.stop();
        {
            let mut c = self.shared.cfg_mut();
            c.peer = Some(Arc::downgrade(&other.shared));
            c.map = here_to_there;
        }
        let mut c = other.shared.cfg_mut();
        c.peer = Some(Arc::downgrade(&self.shared));
        c.map = there_to_here;
    }

    /// Whether the endpoint is connected to `other`.
    pub fn connected_to(&self, other: &Endpoint) -> bool {
        self.shared
            .cfg()
            .peer
            .as_ref()
            .is_some_and(|p| std::ptr::eq(p.as_ptr(), Arc::as_ptr(&other.shared)))
    }

    /// Ends the connection, both ways. What reaches either endpoint is dropped.
    pub fn disconnect(&self) {
        let peer = self.shared.cfg_mut().peer.take();
        if let Some(p) = peer.and_then(|p| p.upgrade()) {
            let mut c = p.cfg_mut();
            if c.peer
                .as_ref()
                .is_some_and(|q| std::ptr::eq(q.as_ptr(), Arc::as_ptr(&self.shared)))
            {
                c.peer = None;
            }
        }
    }

    /// Joins the conference `mixer`, hearing and sending payload type `pt` (PCMA when
    /// `alaw`, else PCMU): any connection ends and what the party says goes to the
    /// mixer. False when the mixer is full.
    pub fn join(&self, mixer: &Arc<Mixer>, pt: u8, alaw: bool) -> bool {
        self.leave();
        self.disconnect();
        self.stop();
        let Some(input) = mixer.add(self.shared.clone(), pt, alaw) else {
            return false;
        };
        self.shared.cfg_mut().mix = Some((input, Arc::downgrade(mixer)));
        true
    }

    /// Leaves its conference, if it is in one.
    pub fn leave(&self) {
        let mix = self.shared.cfg_mut().mix.take();
        if let Some(m) = mix.and_then(|(_, m)| m.upgrade()) {
            m.remove(self.id);
        }
    }

    /// Whether the endpoint is in a conference.
    pub fn in_conference(&self) -> bool {
        self.shared.cfg().mix.is_some()
    }

    /// Plays `clip` to the party in a loop, as payload type `pt` (PCMA when `alaw`,
    /// else PCMU), until [`Endpoint::stop`] or a new connection.
    pub fn play(&self, clip: Clip, pt: u8, alaw: bool) {
        if !clip.is_empty() {
            self.start(
                Source::Clip {
                    clip,
                    pos: 0,
                    looped: true,
                },
                pt,
                alaw,
            );
        }
    }

    /// Plays `live` to the party, its newest frames, until [`Endpoint::stop`] or a new
    /// connection (the line-in as music on hold).
    pub fn play_live(&self, live: Arc<crate::Live>, pt: u8, alaw: bool) {
        self.start(
            Source::Live {
                live,
                next: u64::MAX,
            },
            pt,
            alaw,
        );
    }

    /// Plays `clip` once, then reports [`Event::PlayDone`]; a connection carries the
    /// peer's audio again after it.
    pub fn play_once(&self, clip: Clip, pt: u8, alaw: bool) {
        if clip.is_empty() {
            return self.shared.event(Event::PlayDone { endpoint: self.id });
        }
        self.start(
            Source::Clip {
                clip,
                pos: 0,
                looped: false,
            },
            pt,
            alaw,
        );
    }

    /// Sends keypad digit `ev` (RFC 4733 event 0-15) to the party as telephone-events
    /// of payload type `pt` lasting `ms` (an update every 20 ms, the end three times),
    /// then reports [`Event::PlayDone`]. The peer's audio is held back meanwhile. A
    /// digit sent while another is still going follows it (a stored number sent at
    /// once loses no digit).
    pub fn send_digit(&self, ev: u8, ms: u32, pt: u8) {
        let len = (ms.clamp(40, 5000) * 8).min(u16::MAX as u32);
        let source = Source::Digit {
            ev,
            len,
            sent: 0,
            ends: 0,
            queue: std::collections::VecDeque::new(),
        };
        self.start(source, pt, false);
    }

    fn start(&self, source: Source, pt: u8, alaw: bool) {
        // Each play is a new RTP source: a fresh SSRC, so a second hold does not send
        // the same SSRC with its sequence numbers going backwards.
        static PLAYS: AtomicU64 = AtomicU64::new(1);
        let n = PLAYS.fetch_add(1, Ordering::Relaxed);
        {
            let mut cfg = self.shared.cfg_mut();
            cfg.playing = n;
            cfg.looping = matches!(
                source,
                Source::Clip { looped: true, .. } | Source::Live { .. }
            );
        }
        let mix = (self.id ^ n.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let play = Cmd::Play(
            self.id,
            Box::new(Play {
                shared: self.shared.clone(),
                n,
                source,
                pt,
                alaw,
                seq: (mix >> 48) as u16,
                ts: (mix >> 16) as u32,
                ssrc: mix as u32 ^ (mix >> 32) as u32,
                first: true,
            }),
        );
        self.engine.command(play, true);
    }

    /// Stops playing.
    pub fn stop(&self) {
        let was = std::mem::take(&mut self.shared.cfg_mut().playing);
        if was != 0 {
            self.engine.command(Cmd::Stop(self.id), false);
        }
    }

    /// Whether the endpoint is playing.
    pub fn playing(&self) -> bool {
        self.shared.cfg().playing != 0
    }

    /// The endpoint's number in its [`Event`]s.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Starts listening to the party as `listen` says (digits reported as events, what
    /// it says recorded), replacing any earlier listening and its recording.
    pub fn listen(&self, listen: Listen) {
        *self.shared.tap() = Tap {
            listen,
            recording: Vec::with_capacity(listen.record.min(8000 * 60)),
            ..Tap::default()
        };
        self.shared.listening.store(true, Ordering::Release);
    }

    /// What was recorded since the last take, when it is at least `min` samples: the
    /// recording goes on (its length limit counts what was taken).
    pub fn take_recorded(&self, min: usize) -> Option<Vec<i16>> {
        let mut tap = self.shared.tap();
        if tap.recording.len() < min.max(1) {
            return None;
        }
        let v = std::mem::take(&mut tap.recording);
        tap.taken += v.len();
        Some(v)
    }

    /// Stops listening; answers what was recorded (linear samples at 8 kHz).
    pub fn stop_listening(&self) -> Vec<i16> {
        self.shared.listening.store(false, Ordering::Release);
        std::mem::take(&mut *self.shared.tap()).recording
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // A mixer holds the endpoint's sockets while it is in: out it goes.
        self.leave();
        self.disconnect();
        self.drop_webrtc();
        let tight = self.engine.ports.tight();
        self.engine.command(Cmd::Remove(self.id), tight);
    }
}

/// What a play sends.
enum Source {
    /// A live source, from its frame `next` on.
    Live { live: Arc<crate::Live>, next: u64 },
    Clip {
        clip: Clip,
        pos: usize,
        looped: bool,
    },
    /// An RFC 4733 event `len` samples long; `ends` end packets sent so far; the
    /// digits to send after it.
    Digit {
        ev: u8,
        len: u32,
        sent: u32,
        ends: u8,
        queue: std::collections::VecDeque<(u8, u32)>,
    },
}

/// A clip or a digit being played from an endpoint.
struct Play {
    shared: Arc<Shared>,
    /// Its number: the endpoint is playing this one while its `playing` says so.
    n: u64,
    source: Source,
    pt: u8,
    alaw: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    first: bool,
}

/// Samples in one 20 ms packet.
const FRAME: usize = 160;

/// RFC 4733 volume of the digits sent: -10 dBm0.
const EVENT_VOLUME: u8 = 10;

impl Play {
    /// Sends the next 20 ms; answers whether the play has ended.
    fn tick(&mut self, pkt: &mut [u8; 12 + FRAME]) -> bool {
        let dst = self.shared.dest(false);
        pkt[0] = 0x80;
        pkt[1] = self.pt & 0x7f | if self.first { 0x80 } else { 0 };
        pkt[2..4].copy_from_slice(&self.seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&self.ts.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let (len, done) = match &mut self.source {
            Source::Live { live, next } => {
                let mut f = [0u8; FRAME];
                live.read(next, &mut f);
                let to_alaw = g711::ulaw_to_alaw_table();
                for (b, s) in pkt[12..].iter_mut().zip(f) {
                    *b = if self.alaw { to_alaw[s as usize] } else { s };
                }
                self.ts = self.ts.wrapping_add(FRAME as u32);
                (12 + FRAME, false)
            }
            Source::Clip { clip, pos, looped } => {
                let samples = clip.samples();
                let to_alaw = g711::ulaw_to_alaw_table();
                let mut done = false;
                for b in &mut pkt[12..] {
                    // Past the end of a clip played once: silence to the frame's end.
                    let s = if done { 0xff } else { samples[*pos] };
                    *b = if self.alaw { to_alaw[s as usize] } else { s };
                    *pos += 1;
                    if *pos == samples.len() {
                        *pos = 0;
                        done = !*looped;
                    }
                }
                self.ts = self.ts.wrapping_add(FRAME as u32);
                (12 + FRAME, done)
            }
            Source::Digit {
                ev,
                len,
                sent,
                ends,
                queue,
            } => {
                if *ends == 3 {
                    // The next digit queued: a new event, a new timestamp, the marker.
                    let Some((next, next_len)) = queue.pop_front() else {
                        return true;
                    };
                    self.ts = self.ts.wrapping_add(*len + FRAME as u32);
                    (*ev, *len, *sent, *ends) = (next, next_len, 0, 0);
                    pkt[1] |= 0x80;
                    pkt[4..8].copy_from_slice(&self.ts.to_be_bytes());
                }
                // All packets of an event carry its start's timestamp (RFC 4733 2.5).
                *sent = (*sent + FRAME as u32).min(*len);
                let end = *sent == *len;
                pkt[12] = *ev;
                pkt[13] = if end { 0x80 } else { 0 } | EVENT_VOLUME;
                pkt[14..16].copy_from_slice(&(*sent as u16).to_be_bytes());
                if end {
                    *ends += 1;
                }
                (16, *ends == 3 && queue.is_empty())
            }
        };
        if let Some(dst) = dst {
            if self.shared.send(0, &pkt[..len], dst) {
                self.shared.stats.played.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        if done {
            // The endpoint goes back to relaying, unless another play began meanwhile
            // (then that one's end is the one reported).
            let mut cfg = self.shared.cfg_mut();
            if cfg.playing == self.n {
                cfg.playing = 0;
                drop(cfg);
                self.shared.event(Event::PlayDone {
                    endpoint: self.shared.id,
                });
            }
        }
        done
    }
}

enum Cmd {
    Add(u64, Arc<Shared>),
    Remove(u64),
    Play(u64, Box<Play>),
    Stop(u64),
    /// A conference mixer to tick every 20 ms while anyone but this thread holds it.
    Mix(Arc<Mixer>),
    /// Nothing but a wake-up: a WebRTC leg's timers start.
    Tick,
}

/// One relay thread: an epoll set over the sockets of its endpoints.
struct Engine {
    epoll: Epoll,
    wake: EventFd,
    cmds: Mutex<Queue>,
    /// Set with every command queued, taken by the thread each time it wakes.
    queued: AtomicBool,
    /// The relay's port pairs held, to tell when a freed pair is wanted at once.
    ports: Arc<Ports>,
    /// WebRTC legs among its endpoints: while there are any, the thread wakes at
    /// least every tick to drive their timers.
    webrtc: AtomicUsize,
}

/// How many of the relay's port pairs are bound, out of how many there are.
struct Ports {
    /// Endpoints open or not yet closed by their thread.
    held: AtomicUsize,
    /// Pairs in the range.
    span: usize,
}

impl Ports {
    /// Once more than half the range is bound, a freed pair is closed at once (its
    /// thread is woken for it) rather than when the thread next wakes.
    fn tight(&self) -> bool {
        self.held.load(Ordering::Relaxed) * 2 > self.span
    }
}

/// The commands waiting for a relay thread, and whether it was woken for them.
#[derive(Default)]
struct Queue {
    cmds: Vec<Cmd>,
    woken: bool,
}

const WAKE: u64 = u64::MAX;
const TICK: Duration = Duration::from_millis(20);

impl Engine {
    fn start(n: usize, ports: Arc<Ports>) -> io::Result<Arc<Engine>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let e = Arc::new(Engine {
            epoll,
            wake,
            cmds: Mutex::new(Queue::default()),
            queued: AtomicBool::new(false),
            ports,
            webrtc: AtomicUsize::new(0),
        });
        let e2 = e.clone();
        std::thread::Builder::new()
            .name(format!("pbx-relay-{n}"))
            .spawn(move || e2.run())?;
        Ok(e)
    }

    /// Queues a command for the relay thread; `wake` when it must be carried out at
    /// once. The thread takes the whole queue each time it wakes, before it reads a
    /// socket, so what only changes how packets are handled waits for the next packet,
    /// tick or second (an endpoint's sockets are watched by `Relay::open` itself, and
    /// a removed endpoint's sockets close at most a second late). Only what starts
    /// sending by itself wakes the thread (a play, a mixer), and only the first of such
    /// a batch: a call's set-up and end then cost no wake-up of a relay thread (about
    /// 5 % of pbxd's CPU per call went to them).
    fn command(&self, c: Cmd, wake: bool) {
        let mut q = self.cmds.lock().unwrap_or_else(|e| e.into_inner());
        q.cmds.push(c);
        self.queued.store(true, Ordering::Release);
        self.wake_for(q, wake);
    }

    /// Wakes the thread for what waits in its queue (removals, which close ports).
    fn flush(&self) {
        let q = self.cmds.lock().unwrap_or_else(|e| e.into_inner());
        let waiting = !q.cmds.is_empty();
        self.wake_for(q, waiting);
    }

    /// Writes the eventfd when `wake` and no write since the thread last took the queue.
    fn wake_for(&self, mut q: std::sync::MutexGuard<'_, Queue>, wake: bool) {
        let first = wake && !q.woken;
        q.woken |= wake;
        drop(q);
        if first {
            let _ = self.wake.write(1);
        }
    }

    /// The relay loop: never returns; one thread per engine.
    fn run(&self) {
        let mut endpoints: HashMap<u64, Arc<Shared>> = HashMap::new();
        let mut players: HashMap<u64, Box<Play>> = HashMap::new();
        let mut mixers: Vec<Arc<Mixer>> = Vec::new();
        let mut next_tick = Instant::now();
        let mut events = vec![EpollEvent::empty(); 256];
        let mut batch = Batch::new();
        let mut frame = [0u8; 12 + FRAME];
        loop {
            let webrtc = self.webrtc.load(Ordering::Relaxed) > 0;
            let wait = if webrtc && players.is_empty() && mixers.is_empty() {
                EpollTimeout::from(TICK.as_millis() as u16)
            } else if players.is_empty() && mixers.is_empty() {
                EpollTimeout::from(1000u16)
            } else {
                // Rounded up: a wait of 0 in the last millisecond would spin.
                let us = next_tick
                    .saturating_duration_since(Instant::now())
                    .as_micros();
                EpollTimeout::from(us.div_ceil(1000).min(1000) as u16)
            };
            let n = match self.epoll.wait(&mut events, wait) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    tracing::error!("relay epoll: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            // The eventfd is read before the queue is taken: a wake written after the
            // take (for a command behind it) then stays to end the next wait.
            if events[..n].iter().any(|ev| ev.data() == WAKE) {
                let _ = self.wake.read();
            }
            // Read before written: most wakes (a packet) find nothing queued.
            if self.queued.load(Ordering::Relaxed) && self.queued.swap(false, Ordering::Acquire) {
                let cmds = {
                    let mut q = self.cmds.lock().unwrap_or_else(|e| e.into_inner());
                    q.woken = false;
                    std::mem::take(&mut q.cmds)
                };
                for c in cmds {
                    match c {
                        Cmd::Add(id, shared) => {
                            endpoints.insert(id, shared);
                        }
                        Cmd::Remove(id) => {
                            players.remove(&id);
                            if let Some(s) = endpoints.remove(&id) {
                                for s in &s.socks {
                                    let _ = self.epoll.delete(s.as_fd());
                                }
                                self.ports.held.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                        Cmd::Play(id, p) => {
                            // A mixer's tick keeps its pace.
                            if players.is_empty() && mixers.is_empty() {
                                next_tick = Instant::now();
                            }
                            // A digit while a digit is being sent: queued behind it.
                            if let (Some(cur), Source::Digit { ev, len, .. }) =
                                (players.get_mut(&id), &p.source)
                            {
                                if let Source::Digit { queue, .. } = &mut cur.source {
                                    if queue.len() < 32 {
                                        queue.push_back((*ev, *len));
                                    }
                                    cur.n = p.n;
                                    continue;
                                }
                            }
                            players.insert(id, p);
                        }
                        Cmd::Stop(id) => {
                            players.remove(&id);
                        }
                        Cmd::Mix(m) => {
                            if players.is_empty() && mixers.is_empty() {
                                next_tick = Instant::now();
                            }
                            mixers.push(m);
                        }
                        Cmd::Tick => {}
                    }
                }
            }
            for ev in &events[..n] {
                let token = ev.data();
                if token == WAKE {
                    continue;
                }
                let (id, idx) = (token >> 1, (token & 1) as usize);
                let Some(shared) = endpoints.get(&id) else {
                    continue;
                };
                // Drain the socket: several packets may wait after a busy moment.
                for _ in 0..BATCHES {
                    let n = batch.recv(&shared.socks[idx]);
                    for (buf, (len, src)) in batch.bufs.iter_mut().zip(&batch.got).take(n) {
                        if let Some(src) = src {
                            relay(shared, idx, buf, *len, *src);
                        }
                    }
                    // Fewer than asked: the socket is empty (epoll says when more come).
                    if n < BATCH {
                        break;
                    }
                }
            }
            if webrtc {
                let now = Instant::now();
                for s in endpoints.values().filter(|s| s.is_webrtc()) {
                    s.tick_webrtc(now);
                }
            }
            if !players.is_empty() || !mixers.is_empty() {
                let now = Instant::now();
                let mut sent = 0;
                // A mixer nobody else holds (its conference is over) is let go.
                mixers.retain(|m| Arc::strong_count(m) > 1);
                // Catch up at most a few frames after a stall, then start afresh.
                while next_tick <= now && sent < 3 {
                    players.retain(|_, p| !p.tick(&mut frame));
                    for m in &mixers {
                        m.tick();
                    }
                    next_tick += TICK;
                    sent += 1;
                }
                if next_tick <= now {
                    next_tick = now + TICK;
                }
            }
        }
    }
}

/// Packets read from a socket with one `recvmmsg(2)`.
const BATCH: usize = 8;
/// Batches read from one ready socket before the thread turns to the others (64
/// packets, as after a stall).
const BATCHES: usize = 8;

/// What one relay thread reads packets into: `BATCH` buffers of 2 KiB and the headers
/// `recvmmsg(2)` fills, made once per thread.
struct Batch {
    bufs: [[u8; 2048]; BATCH],
    headers: MultiHeaders<SockaddrStorage>,
    /// Each packet's length and source, as read.
    got: [(usize, Option<SocketAddr>); BATCH],
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bufs: [[0u8; 2048]; BATCH],
            headers: MultiHeaders::preallocate(BATCH, None),
            got: [(0, None); BATCH],
        }
    }

    /// Reads what waits on `sock`, up to `BATCH` packets in one system call (a
    /// socket of a call holds one most of the time: read with one call and no second
    /// one to learn it is empty). Answers how many were read.
    fn recv(&mut self, sock: &StdUdp) -> usize {
        let mut slices = self.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
        let Ok(read) = recvmmsg(
            sock.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) else {
            return 0;
        };
        let mut n = 0;
        for (m, got) in read.zip(self.got.iter_mut()) {
            *got = (m.bytes, m.address.and_then(|a| socket_addr(&a)));
            n += 1;
        }
        n
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// A packet (`buf[..len]`) that reached endpoint `here` on socket `idx` (0 RTP, 1
/// RTCP) goes out of its peer. The rest of `buf` is room for what it may become.
fn relay(here: &Shared, idx: usize, buf: &mut [u8], len: usize, src: SocketAddr) {
    // On an SRTP leg only what authenticates is latched onto and relayed.
    let Some(len) = here.unprotect(idx, buf, len, src) else {
        return;
    };
    let pkt = &mut buf[..len];
    {
        let mut l = here.latched();
        if l[idx] != Some(src) {
            l[idx] = Some(src);
        }
    }
    let rtcp = idx == 1;
    if !rtcp && here.listening.load(Ordering::Acquire) {
        here.tap().packet(pkt, here.id, here.events.get());
    }
    let peer = {
        let cfg = here.cfg();
        if let Some((input, _)) = &cfg.mix {
            if !rtcp {
                input.packet(pkt);
            }
            return; // a conference: the mixer sends what the others hear
        }
        if cfg.playing != 0 && cfg.looping {
            return; // the party hears music; what it says goes nowhere
        }
        let Some(peer) = cfg.peer.as_ref().and_then(|p| p.upgrade()) else {
            return;
        };
        if !rtcp && !rewrite(pkt, &cfg.map, &here.stats) {
            return;
        }
        peer
    };
    let (dst, playing) = if peer.is_webrtc() {
        (Some(WEBRTC_DEST), peer.cfg().playing != 0)
    } else {
        let cfg = peer.cfg();
        (
            target(&cfg.side, &peer.latched()[idx], rtcp),
            cfg.playing != 0,
        )
    };
    let Some(dst) = dst.filter(|_| !playing) else {
        return;
    };
    if peer.send(idx, pkt, dst) && !rtcp {
        here.stats.relayed.fetch_add(1, Ordering::Relaxed);
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
    /// The pairs held and how many the range has (the engines share it).
    ports: Arc<Ports>,
    next_id: Arc<AtomicU64>,
    events: Arc<OnceLock<EventSink>>,
}

impl Relay {
    /// A relay binding on `ip`, using RTP ports `low..=high` (RTP even, RTCP odd), with
    /// one relay thread per available core.
    pub fn new(ip: IpAddr, low: u16, high: u16) -> Relay {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let low = low + (low % 2);
        let ports = Arc::new(Ports {
            held: AtomicUsize::new(0),
            // Even RTP ports from `low` whose RTCP port is in the range too.
            span: (high.saturating_sub(low) as usize).div_ceil(2),
        });
        let engines = (0..threads)
            .map(|n| Engine::start(n, ports.clone()).expect("relay thread"))
            .collect();
        Relay {
            ip,
            low,
            high,
            cursor: Arc::new(Mutex::new(low)),
            engines: Arc::new(engines),
            ports,
            next_id: Arc::new(AtomicU64::new(1)),
            events: Arc::new(OnceLock::new()),
        }
    }

    /// Where every endpoint's [`Event`]s go (set once; later calls are ignored).
    pub fn set_events(&self, sink: EventSink) {
        let _ = self.events.set(sink);
    }

    /// Where events go, once set (the driver reports recordings there too).
    pub fn events(&self) -> Option<EventSink> {
        self.events.get().cloned()
    }

    fn bind_pair(&self) -> io::Result<(StdUdp, StdUdp, u16)> {
        let mut cur = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..self.ports.span {
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
        // Pairs freed but not yet closed by their threads are closed now: the next try
        // (the driver waits 50 ms) may find them.
        self.flush();
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP ports in the range",
        ))
    }

    /// Makes the relay threads close now the ports of endpoints dropped since they
    /// last woke (they do so by themselves within a second).
    pub fn flush(&self) {
        for e in self.engines.iter() {
            e.flush();
        }
    }

    /// A conference mixer, ticked on one of the relay's threads until it is dropped.
    pub fn mixer(&self) -> Arc<Mixer> {
        let m = Arc::new(Mixer::new());
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) as usize;
        self.engines[n % self.engines.len()].command(Cmd::Mix(m.clone()), true);
        m
    }

    /// Opens an endpoint: binds a port pair and starts watching it.
    pub fn open(&self) -> io::Result<Endpoint> {
        let (rtp, rtcp, port) = self.bind_pair()?;
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        let stats = Arc::new(Stats::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            socks: [rtp, rtcp],
            cfg: RwLock::new(Cfg::default()),
            latched: Mutex::new([None; 2]),
            stats: stats.clone(),
            id,
            listening: AtomicBool::new(false),
            tap: Mutex::new(Tap::default()),
            events: self.events.clone(),
            srtp: Mutex::new(None),
            secure: AtomicBool::new(false),
            webrtc: Mutex::new(None),
            webrtc_on: AtomicBool::new(false),
        });
        let engine = self.engines[(id as usize) % self.engines.len()].clone();
        // Watched from here: a packet then wakes the thread, which takes the Add first.
        engine.ports.held.fetch_add(1, Ordering::Relaxed);
        engine.command(Cmd::Add(id, shared.clone()), false);
        for (i, s) in shared.socks.iter().enumerate() {
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, id << 1 | i as u64);
            if let Err(e) = engine.epoll.add(s.as_fd(), ev) {
                engine.command(Cmd::Remove(id), engine.ports.tight());
                return Err(e.into());
            }
        }
        Ok(Endpoint {
            port,
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

/// What a relay thread does with packets that needs no socket, for the fuzz targets
/// (`fuzz/`): the tap (RFC 4733 and in-band digits, a recording), a conference input
/// with its frames, and the rewrite for the other side with G.711 transcoding. Returns
/// the digits heard. Built only for tests and the fuzz targets (`--cfg fuzzing`).
#[cfg(any(test, fuzzing))]
pub fn fuzz_packets(pkts: &mut [Vec<u8>]) -> Vec<char> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tap = Tap {
        listen: Listen {
            events_pt: Some(101),
            inband: true,
            record: 16_000,
        },
        ..Tap::default()
    };
    let input = crate::mixer::Input::new();
    let mut map = PtMap::default();
    map.set(0, 8, Xcode::UlawToAlaw);
    map.set(8, 0, Xcode::AlawToUlaw);
    map.set(101, 96, Xcode::None);
    let stats = Stats::default();
    let mut frame = [0i16; 160];
    for pkt in pkts.iter_mut() {
        tap.packet(pkt, 1, Some(&tx));
        input.packet(pkt);
        input.frame(&mut frame);
        rewrite(pkt, &map, &stats);
    }
    assert!(
        tap.recording.len() <= 16_000,
        "the recording passed its cap"
    );
    let mut digits = Vec::new();
    while let Ok(Event::Dtmf { digit, .. }) = rx.try_recv() {
        digits.push(digit);
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn the_fuzz_hook_hears_an_event_and_transcodes() {
        let mut pkts = vec![
            rtp(101, &[5, 10, 0, 160]),
            rtp(101, &[5, 0x8a, 1, 64]),
            rtp(0, &[0xff; 160]),
            vec![0x80],
        ];
        assert_eq!(fuzz_packets(&mut pkts), vec!['5']);
        assert_eq!(pkts[0][1], 96, "telephone-event renumbered");
        assert_eq!(pkts[2][1], 8, "PCMU became PCMA");
        assert_eq!(pkts[2][12], g711::ulaw_to_alaw_table()[0xff]);
    }

    fn at(port: u16) -> SocketAddr {
        SocketAddr::new("127.0.0.1".parse().unwrap(), port)
    }

    async fn recv(s: &tokio::net::UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
        tokio::time::timeout(Duration::from_secs(2), s.recv_from(buf))
            .await
            .expect("a packet within 2 s")
            .unwrap()
    }

    #[tokio::test]
    async fn a_webrtc_leg_survives_junk_and_relays_nothing_unauthenticated() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31940, 31960);
        let a = relay.open().unwrap();
        let w = relay.open().unwrap();
        let phone_a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.set_remote(Some(phone_a.local_addr().unwrap()), true);
        let (ufrag, pwd) = crate::webrtc::new_ice_credentials();
        w.set_webrtc(Some(crate::webrtc::WebRtcParams {
            local: SocketAddr::new("0.0.0.0".parse().unwrap(), w.port),
            ufrag,
            pwd,
            their_ufrag: "brws".into(),
            their_pwd: "browserpasswordbrowserpw".into(),
            fingerprint: format!("sha-256 {}", ["AB"; 32].join(":")),
            active: false,
            opus: Some(crate::OpusParams { pt: 111, law_pt: 0 }),
        }));
        assert!(w.is_webrtc() && w.secure() && !w.webrtc_connected());
        a.connect(&w, PtMap::default(), PtMap::default());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut x: u32 = 12345;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        };
        for i in 0..300u32 {
            let mut pkt: Vec<u8> = (0..(i % 200 + 1)).map(|_| next()).collect();
            match i % 4 {
                // RTP of a new source each time (the SSRCs learnt stay few).
                0 if pkt.len() >= 12 => {
                    pkt[0] = 0x80;
                    pkt[1] = 0;
                    pkt[8..12].copy_from_slice(&i.to_be_bytes());
                }
                // A STUN binding request with a forged integrity.
                1 if pkt.len() >= 20 => {
                    pkt[..8].copy_from_slice(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
                }
                // A DTLS record.
                2 if pkt.len() >= 13 => pkt[..3].copy_from_slice(&[0x16, 0xfe, 0xfd]),
                _ => {}
            }
            junk.send_to(&pkt, at(w.port)).await.unwrap();
        }
        // Nothing of it reaches the other leg, and the leg still only waits.
        let mut buf = [0u8; 2048];
        let got =
            tokio::time::timeout(Duration::from_millis(300), phone_a.recv_from(&mut buf)).await;
        assert!(got.is_err(), "junk relayed");
        assert_eq!(w.stats.relayed.load(Ordering::Relaxed), 0);
        assert!(!w.webrtc_connected());
        // Plain audio for the browser before it connected goes nowhere, and the relay
        // thread still relays: a plain pair beside it works.
        phone_a
            .send_to(&rtp(0, &[0x2a; 160]), at(a.port))
            .await
            .unwrap();
        let (c, d) = (relay.open().unwrap(), relay.open().unwrap());
        let mut socks = futures_bind(2).await;
        let (pd, pc) = (socks.pop().unwrap(), socks.pop().unwrap());
        c.set_remote(Some(pc.local_addr().unwrap()), false);
        d.set_remote(Some(pd.local_addr().unwrap()), false);
        c.connect(&d, PtMap::default(), PtMap::default());
        tokio::time::sleep(Duration::from_millis(20)).await;
        pc.send_to(&rtp(0, &[7; 160]), at(c.port)).await.unwrap();
        let (n, _) = recv(&pd, &mut buf).await;
        assert_eq!(n, 172);
        assert_eq!(
            a.stats.relayed.load(Ordering::Relaxed),
            0,
            "sent before connected"
        );
        // Taken off: a plain leg again.
        w.set_srtp(None);
        assert!(!w.is_webrtc() && !w.secure());
    }

    #[tokio::test]
    async fn an_srtp_leg_is_decrypted_and_reencrypted_only_where_the_legs_differ() {
        use crate::srtp::{new_key, Session, Suite};
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31900, 31920);
        let a = relay.open().unwrap();
        let b = relay.open().unwrap();
        let phone_a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let phone_b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.set_remote(Some(phone_a.local_addr().unwrap()), true);
        b.set_remote(Some(phone_b.local_addr().unwrap()), true);
        // B speaks SRTP: its key and the box's.
        let (b_key, box_key) = (new_key(), new_key());
        b.set_srtp(Some(SrtpKeys {
            suite: Suite::Aes128Sha1_80,
            theirs: b_key,
            ours: box_key,
        }));
        assert!(b.secure() && !a.secure());
        a.connect(&b, PtMap::default(), PtMap::default());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut phone_b_tx = Session::outbound(Suite::Aes128Sha1_80, &b_key).unwrap();
        let mut phone_b_rx = Session::inbound(Suite::Aes128Sha1_80, &box_key).unwrap();
        // Plain from A reaches B encrypted with the box's key.
        let plain = rtp(0, &[0x2a; 160]);
        phone_a.send_to(&plain, at(a.port)).await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = recv(&phone_b, &mut buf).await;
        assert_eq!(n, plain.len() + 10);
        assert_ne!(&buf[12..172], &plain[12..], "not plain on B's wire");
        let m = phone_b_rx.unprotect(&mut buf[..n], false).unwrap();
        assert_eq!(&buf[..m], &plain[..]);
        // SRTP from B reaches A plain; a forged packet and plain RTP from B go nowhere.
        let forged = rtp(0, &[1; 170]);
        phone_b.send_to(&forged, at(b.port)).await.unwrap();
        let mut out = [0u8; 2048];
        let said = rtp(0, &[0x17; 160]);
        out[..said.len()].copy_from_slice(&said);
        let k = phone_b_tx.protect(&mut out, said.len(), false).unwrap();
        phone_b.send_to(&out[..k], at(b.port)).await.unwrap();
        let (n, _) = recv(&phone_a, &mut buf).await;
        assert_eq!(&buf[..n], &said[..], "A gets what B said, decrypted");
        assert_eq!(b.stats.srtp_dropped.load(Ordering::Relaxed), 1);
        // The same keys again (a re-INVITE repeating them) keep the sessions: the
        // packet just relayed is still a replay.
        let keys = SrtpKeys {
            suite: Suite::Aes128Sha1_80,
            theirs: b_key,
            ours: box_key,
        };
        b.set_srtp(Some(keys.clone()));
        phone_b.send_to(&out[..k], at(b.port)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(b.stats.srtp_dropped.load(Ordering::Relaxed), 2);
        // A new key of B's renews only what reads B: the box's side goes on.
        let b_key2 = new_key();
        b.set_srtp(Some(SrtpKeys {
            theirs: b_key2,
            ..keys
        }));
        let mut phone_b_tx2 = Session::outbound(Suite::Aes128Sha1_80, &b_key2).unwrap();
        let said2 = rtp(0, &[0x33; 160]);
        out[..said2.len()].copy_from_slice(&said2);
        let k2 = phone_b_tx2.protect(&mut out, said2.len(), false).unwrap();
        phone_b.send_to(&out[..k2], at(b.port)).await.unwrap();
        let (n, _) = recv(&phone_a, &mut buf).await;
        assert_eq!(&buf[..n], &said2[..]);
        let plain2 = rtp(0, &[0x44; 160]);
        let mut p2 = plain2.clone();
        p2[3] = 2; // the next sequence number
        phone_a.send_to(&p2, at(a.port)).await.unwrap();
        let (n, _) = recv(&phone_b, &mut buf).await;
        let m = phone_b_rx.unprotect(&mut buf[..n], false).unwrap();
        assert_eq!(&buf[12..m], &p2[12..], "the box's session went on");
        // A plain leg again: B's packets pass as they are.
        b.set_srtp(None);
        assert!(!b.secure());
        phone_b.send_to(&said, at(b.port)).await.unwrap();
        let (n, _) = recv(&phone_a, &mut buf).await;
        assert_eq!(&buf[..n], &said[..]);
    }

    #[tokio::test]
    async fn relays_latches_and_transcodes() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31000, 31100);
        let a = relay.open().unwrap();
        let b = relay.open().unwrap();
        let phone_a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let phone_b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // A's SDP claims a private address it cannot be reached on: latching must fix it.
        let mut map = PtMap::default();
        map.set(0, 8, Xcode::UlawToAlaw);
        let mut back = PtMap::default();
        back.set(8, 0, Xcode::AlawToUlaw);
        a.set_remote(Some("127.0.0.1:9".parse().unwrap()), true);
        b.set_remote(Some(phone_b.local_addr().unwrap()), false);
        a.connect(&b, map, back);
        assert!(a.connected_to(&b) && b.connected_to(&a));
        tokio::time::sleep(Duration::from_millis(20)).await;
        phone_a
            .send_to(&rtp(0, &[0xff; 160]), at(a.port))
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = recv(&phone_b, &mut buf).await;
        assert_eq!(from, at(b.port), "symmetric: sent from the B-facing port");
        assert_eq!(buf[1] & 0x7f, 8);
        assert!(
            buf[12..n].iter().all(|b| *b == 0xd5),
            "u-law silence became A-law silence"
        );
        phone_b
            .send_to(&rtp(8, &[0xd5; 160]), at(b.port))
            .await
            .unwrap();
        let (n, from) = recv(&phone_a, &mut buf).await;
        assert_eq!(from, at(a.port));
        assert_eq!(buf[1] & 0x7f, 0);
        assert!(buf[12..n]
            .iter()
            .all(|b| crate::g711::ulaw_to_linear(*b).abs() <= 8));
        assert_eq!(a.stats.transcoded.load(Ordering::Relaxed), 1);
        // The relay thread counts a packet after sending it: the phone may see the
        // packet first.
        let counted = async {
            while b.stats.relayed.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(2), counted)
            .await
            .expect("the relayed packet is counted");
        assert_eq!(b.stats.relayed.load(Ordering::Relaxed), 1);
        // Garbage is dropped, not relayed, and does not stop the relay.
        phone_a.send_to(b"junk", at(a.port)).await.unwrap();
        phone_a
            .send_to(&rtp(101, &[1, 2, 3, 4]), at(a.port))
            .await
            .unwrap();
        let (n, _) = recv(&phone_b, &mut buf).await;
        assert_eq!(
            &buf[12..n],
            &[1, 2, 3, 4],
            "telephone-event passes unchanged"
        );
    }

    /// A burst larger than one batch (and than all batches of one wake-up) arrives
    /// whole, in order, each packet with its own length; over IPv6 as well.
    #[tokio::test]
    async fn a_burst_is_read_in_batches_and_relayed_whole() {
        for ip in ["127.0.0.1", "::1"] {
            let Ok(probe) = std::net::UdpSocket::bind((ip, 0)) else {
                continue; // no IPv6 loopback here
            };
            drop(probe);
            let relay = Relay::new(ip.parse().unwrap(), 31400, 31439);
            let (a, b) = (relay.open().unwrap(), relay.open().unwrap());
            let phone_a = tokio::net::UdpSocket::bind((ip, 0)).await.unwrap();
            let phone_b = tokio::net::UdpSocket::bind((ip, 0)).await.unwrap();
            a.set_remote(Some(phone_a.local_addr().unwrap()), true);
            b.set_remote(Some(phone_b.local_addr().unwrap()), false);
            a.connect(&b, PtMap::default(), PtMap::default());
            let to_a = SocketAddr::new(ip.parse().unwrap(), a.port);
            for i in 0..100u8 {
                let payload = vec![i; 20 + i as usize];
                phone_a.send_to(&rtp(0, &payload), to_a).await.unwrap();
            }
            let mut buf = [0u8; 2048];
            for i in 0..100u8 {
                let (n, from) = recv(&phone_b, &mut buf).await;
                assert_eq!(from.port(), b.port);
                assert_eq!(n, 12 + 20 + i as usize, "packet {i} keeps its length");
                assert!(buf[12..n].iter().all(|x| *x == i), "packet {i} in order");
            }
        }
    }

    #[tokio::test]
    async fn rtcp_is_relayed_on_the_next_port() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31300, 31399);
        let ea = relay.open().unwrap();
        let eb = relay.open().unwrap();
        let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // B's RTCP port is its RTP port + 1.
        let b_rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_rtcp = loop {
            let p = b_rtp.local_addr().unwrap().port() + 1;
            if let Ok(s) = tokio::net::UdpSocket::bind(("127.0.0.1", p)).await {
                break s;
            }
        };
        ea.set_remote(Some(a.local_addr().unwrap()), true);
        eb.set_remote(Some(b_rtp.local_addr().unwrap()), false);
        ea.connect(&eb, PtMap::default(), PtMap::default());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let report = [
            0x81, 200, 0, 6, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
        ];
        a.send_to(&report, at(ea.port + 1)).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, from) = recv(&b_rtcp, &mut buf).await;
        assert_eq!(&buf[..n], &report, "RTCP passes unchanged");
        assert_eq!(from.port(), eb.port + 1, "sent from the B-facing RTCP port");
    }

    #[tokio::test]
    async fn a_held_party_hears_the_clip_and_a_moved_one_its_new_peer() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31400, 31499);
        let (a, b, c) = (
            relay.open().unwrap(),
            relay.open().unwrap(),
            relay.open().unwrap(),
        );
        let phones: Vec<_> = futures_bind(3).await;
        for (e, p) in [&a, &b, &c].iter().zip(&phones) {
            e.set_remote(Some(p.local_addr().unwrap()), false);
        }
        a.connect(&b, PtMap::default(), PtMap::default());
        // B holds: A hears the clip, a 425 Hz tone, as PCMA at 50 packets a second;
        // what B sends meanwhile does not reach A.
        let clip = Clip::tone(&[425.0], 1000, 0, 0.5);
        b.disconnect();
        a.play(clip, 8, true);
        assert!(!a.connected_to(&b) && a.playing());
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        let mut samples = Vec::new();
        let mut seqs = Vec::new();
        while samples.len() < 8000 {
            phones[1]
                .send_to(&rtp(8, &[0x55; 160]), at(b.port))
                .await
                .unwrap();
            let (n, from) = recv(&phones[0], &mut buf).await;
            assert_eq!(from, at(a.port));
            assert_eq!(buf[1] & 0x7f, 8);
            assert_eq!(n, 12 + 160);
            seqs.push(u16::from_be_bytes([buf[2], buf[3]]));
            samples.extend(buf[12..n].iter().map(|s| g711::alaw_to_linear(*s)));
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "50 packets took {took:?}: paced at 20 ms"
        );
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        let power = crate::dtmf::tone_power(&samples, 8000, 425.0);
        assert!(power > 1e7, "the tone is heard: {power}");
        // The transfer: A is connected to C; the clip stops, C hears A.
        a.connect(&c, PtMap::default(), PtMap::default());
        assert!(!a.playing());
        tokio::time::sleep(Duration::from_millis(60)).await;
        while tokio::time::timeout(Duration::from_millis(50), phones[0].recv_from(&mut buf))
            .await
            .is_ok()
        {}
        phones[0]
            .send_to(&rtp(0, &[7; 160]), at(a.port))
            .await
            .unwrap();
        let (n, from) = recv(&phones[2], &mut buf).await;
        assert_eq!((from, &buf[12..n]), (at(c.port), &[7u8; 160][..]));
        drop(c);
        assert!(!a.connected_to(&b));
    }

    #[tokio::test]
    async fn digits_are_heard_recorded_sent_and_a_clip_played_once_ends() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31500, 31599);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        relay.set_events(tx);
        let (a, b) = (relay.open().unwrap(), relay.open().unwrap());
        let phones = futures_bind(2).await;
        a.set_remote(Some(phones[0].local_addr().unwrap()), false);
        b.set_remote(Some(phones[1].local_addr().unwrap()), false);
        a.connect(&b, PtMap::default(), PtMap::default());
        a.listen(Listen {
            events_pt: Some(101),
            inband: true,
            record: 480,
        });
        // Phone A presses 7 as RFC 4733 (three packets of one event), then says a
        // digit 4 in-band (PCMA, 100 ms).
        for d in [160u16, 320, 320] {
            let mut p = rtp(101, &[7, 0x0a, (d >> 8) as u8, d as u8]);
            p[4..8].copy_from_slice(&5000u32.to_be_bytes());
            phones[0].send_to(&p, at(a.port)).await.unwrap();
        }
        let four: Vec<u8> = crate::dtmf::tone_clip(4, 100)
            .unwrap()
            .samples()
            .iter()
            .map(|u| g711::ulaw_to_alaw_table()[*u as usize])
            .collect();
        for chunk in four.chunks(160) {
            phones[0].send_to(&rtp(8, chunk), at(a.port)).await.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 2 {
            let e = tokio::time::timeout(Duration::from_secs(2), events.recv())
                .await
                .expect("an event")
                .unwrap();
            got.push(e);
        }
        let id = a.id();
        assert_eq!(
            got,
            [
                Event::Dtmf {
                    endpoint: id,
                    digit: '7',
                    inband: false
                },
                Event::Dtmf {
                    endpoint: id,
                    digit: '4',
                    inband: true
                },
            ]
        );
        // Listening does not stop the relaying: B got all eight packets.
        let mut buf = [0u8; 2048];
        for _ in 0..8 {
            recv(&phones[1], &mut buf).await;
        }
        let rec = a.stop_listening();
        assert_eq!(rec.len(), 480, "capped at what was asked (800 were sent)");
        let p = crate::dtmf::tone_power(&rec, 8000, 770.0);
        assert!(p > 1e9, "the recording holds the tone: {p}");

        // The box sends 9 to phone B: RFC 4733 with B's payload type, one timestamp,
        // the duration growing, the end three times; then B hears A again.
        b.send_digit(9, 100, 96);
        let mut pkts = Vec::new();
        while pkts.len() < 7 {
            let (n, _) = recv(&phones[1], &mut buf).await;
            pkts.push(buf[..n].to_vec());
        }
        assert!(pkts
            .iter()
            .all(|p| p.len() == 16 && p[1] & 0x7f == 96 && p[12] == 9));
        assert_eq!(pkts[0][1] & 0x80, 0x80, "the first has the marker");
        assert!(
            pkts.windows(2).all(|w| w[0][4..12] == w[1][4..12]),
            "one event"
        );
        let durations: Vec<u16> = pkts
            .iter()
            .map(|p| u16::from_be_bytes([p[14], p[15]]))
            .collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pkts.iter().map(|p| p[13] & 0x80 != 0).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        let e = tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .unwrap();
        assert_eq!(e, Some(Event::PlayDone { endpoint: b.id() }));
        assert!(!b.playing() && a.connected_to(&b));
        phones[0]
            .send_to(&rtp(0, &[3; 160]), at(a.port))
            .await
            .unwrap();
        let (n, _) = recv(&phones[1], &mut buf).await;
        assert_eq!(&buf[12..n], &[3u8; 160][..], "B hears A again");

        // A clip played once: 30 ms is two packets (the second padded with silence),
        // then PlayDone.
        a.play_once(Clip::from_ulaw(vec![0x10; 240]), 0, false);
        let (n, _) = recv(&phones[0], &mut buf).await;
        assert_eq!(&buf[12..n], &[0x10; 160][..]);
        let (n, _) = recv(&phones[0], &mut buf).await;
        assert_eq!(
            (&buf[12..92], &buf[92..n]),
            (&[0x10; 80][..], &[0xff; 80][..])
        );
        let e = tokio::time::timeout(Duration::from_secs(2), events.recv())
            .await
            .unwrap();
        assert_eq!(e, Some(Event::PlayDone { endpoint: a.id() }));
        assert!(!a.playing());
    }

    #[tokio::test]
    async fn digits_sent_at_once_follow_each_other() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31600, 31699);
        let a = relay.open().unwrap();
        let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.set_remote(Some(phone.local_addr().unwrap()), false);
        for ev in [1, 2, 3] {
            a.send_digit(ev, 40, 101);
        }
        let mut buf = [0u8; 64];
        let mut events: Vec<(u8, u32, bool, bool)> = Vec::new();
        while events.iter().filter(|e| e.3).count() < 9 {
            let (n, _) = recv(&phone, &mut buf).await;
            assert_eq!(n, 16);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            events.push((buf[12], ts, buf[1] & 0x80 != 0, buf[13] & 0x80 != 0));
        }
        // Each digit: its own timestamp, the marker on its first packet, three ends.
        for (k, ev) in [1u8, 2, 3].iter().enumerate() {
            let mine: Vec<_> = events.iter().filter(|e| e.0 == *ev).collect();
            assert!(
                mine.iter().all(|e| e.1 == mine[0].1),
                "digit {ev}: one timestamp"
            );
            assert!(
                mine[0].2 && mine.iter().skip(1).all(|e| !e.2),
                "digit {ev}: marker"
            );
            assert_eq!(
                mine.iter().filter(|e| e.3).count(),
                3,
                "digit {ev}: three ends"
            );
            if k > 0 {
                let before = events.iter().find(|e| e.0 == ev - 1).unwrap().1;
                assert!(mine[0].1 > before, "digit {ev} starts later");
            }
        }
        assert_eq!(
            events
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] != w[1])
                .count(),
            2,
            "in order, not interleaved"
        );
    }

    async fn futures_bind(n: usize) -> Vec<tokio::net::UdpSocket> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        }
        v
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
    fn a_roomy_range_frees_a_pair_when_its_thread_next_wakes() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31240, 31299);
        let a = relay.open().unwrap();
        let port = a.port;
        drop(a);
        // Nobody woke the thread for it: the pair closes within its idle second.
        let t0 = Instant::now();
        while StdUdp::bind(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(3),
                "port {port} never freed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn ports_are_exhausted_cleanly() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31200, 31203);
        let a = relay.open().unwrap();
        let b = relay.open().unwrap();
        assert!(relay.open().is_err());
        drop(a);
        // The relay thread closes the sockets when it takes the removal.
        std::thread::sleep(Duration::from_millis(50));
        let c = relay.open().unwrap();
        drop((b, c));
    }
}
