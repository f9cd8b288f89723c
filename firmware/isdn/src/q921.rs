//! Q.921 LAPD: frames (modulo 128), the multiple-frame data link with its windows and
//! timers (T200, N200, T203), and TEI management for BRI point-to-multipoint.
//!
//! One [`Lapd`] is one data link (SAPI 0, one TEI) as the user side or the network
//! side sees it. Frames come in without flags or FCS (the HDLC framer or DAHDI handles
//! those) and go out the same way.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// SAPI of call control (Q.931).
pub const SAPI_CALL: u8 = 0;
/// SAPI of layer 2 management (TEI assignment).
pub const SAPI_MGMT: u8 = 63;
/// The broadcast TEI.
pub const TEI_GROUP: u8 = 127;

/// Supervisory frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervisory {
    Rr,
    Rnr,
    Rej,
}

/// Unnumbered frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnumbered {
    Sabme,
    Dm,
    Ui,
    Disc,
    Ua,
    Frmr,
    Xid,
}

impl Unnumbered {
    /// The control octet without the P/F bit.
    fn code(self) -> u8 {
        match self {
            Unnumbered::Sabme => 0x6f,
            Unnumbered::Dm => 0x0f,
            Unnumbered::Ui => 0x03,
            Unnumbered::Disc => 0x43,
            Unnumbered::Ua => 0x63,
            Unnumbered::Frmr => 0x87,
            Unnumbered::Xid => 0xaf,
        }
    }

    fn from_code(c: u8) -> Option<Unnumbered> {
        Some(match c & !0x10 {
            0x6f => Unnumbered::Sabme,
            0x0f => Unnumbered::Dm,
            0x03 => Unnumbered::Ui,
            0x43 => Unnumbered::Disc,
            0x63 => Unnumbered::Ua,
            0x87 => Unnumbered::Frmr,
            0xaf => Unnumbered::Xid,
            _ => return None,
        })
    }
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    I {
        ns: u8,
        nr: u8,
        p: bool,
        info: Vec<u8>,
    },
    S {
        s: Supervisory,
        nr: u8,
        pf: bool,
    },
    U {
        u: Unnumbered,
        pf: bool,
        info: Vec<u8>,
    },
}

/// One LAPD frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub sapi: u8,
    /// The C/R bit as sent.
    pub cr: bool,
    pub tei: u8,
    pub kind: Kind,
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too short ({0} bytes)")]
    Short(usize),
    #[error("address field extension bits are wrong")]
    Address,
    #[error("unknown control field {0:#04x}")]
    Control(u8),
    #[error("a {0} frame carries an information field")]
    UnexpectedInfo(&'static str),
    #[error("an I frame of more than 260 octets")]
    TooLong,
}

/// N201: the largest information field.
pub const N201: usize = 260;

/// Layer 3 messages held while the link is down or the window is closed.
pub const MAX_QUEUE: usize = 1024;

impl Frame {
    pub fn parse(b: &[u8]) -> Result<Frame, FrameError> {
        if b.len() < 3 {
            return Err(FrameError::Short(b.len()));
        }
        if b[0] & 1 != 0 || b[1] & 1 != 1 {
            return Err(FrameError::Address);
        }
        let (sapi, cr, tei) = (b[0] >> 2, b[0] & 2 != 0, b[1] >> 1);
        let c = b[2];
        let kind = if c & 1 == 0 {
            if b.len() < 4 {
                return Err(FrameError::Short(b.len()));
            }
            if b.len() - 4 > N201 {
                return Err(FrameError::TooLong);
            }
            Kind::I {
                ns: c >> 1,
                nr: b[3] >> 1,
                p: b[3] & 1 != 0,
                info: b[4..].to_vec(),
            }
        } else if c & 3 == 1 {
            if b.len() < 4 {
                return Err(FrameError::Short(b.len()));
            }
            let s = match c {
                0x01 => Supervisory::Rr,
                0x05 => Supervisory::Rnr,
                0x09 => Supervisory::Rej,
                _ => return Err(FrameError::Control(c)),
            };
            if b.len() > 4 {
                return Err(FrameError::UnexpectedInfo("supervisory"));
            }
            Kind::S {
                s,
                nr: b[3] >> 1,
                pf: b[3] & 1 != 0,
            }
        } else {
            let u = Unnumbered::from_code(c).ok_or(FrameError::Control(c))?;
            if b.len() > 3 && !matches!(u, Unnumbered::Ui | Unnumbered::Frmr | Unnumbered::Xid) {
                return Err(FrameError::UnexpectedInfo("unnumbered"));
            }
            Kind::U {
                u,
                pf: c & 0x10 != 0,
                info: b[3..].to_vec(),
            }
        };
        Ok(Frame {
            sapi,
            cr,
            tei,
            kind,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![
            (self.sapi << 2) | (u8::from(self.cr) << 1),
            (self.tei << 1) | 1,
        ];
        match &self.kind {
            Kind::I { ns, nr, p, info } => {
                b.push((ns & 0x7f) << 1);
                b.push(((nr & 0x7f) << 1) | u8::from(*p));
                b.extend_from_slice(info);
            }
            Kind::S { s, nr, pf } => {
                b.push(match s {
                    Supervisory::Rr => 0x01,
                    Supervisory::Rnr => 0x05,
                    Supervisory::Rej => 0x09,
                });
                b.push(((nr & 0x7f) << 1) | u8::from(*pf));
            }
            Kind::U { u, pf, info } => {
                b.push(u.code() | if *pf { 0x10 } else { 0 });
                b.extend_from_slice(info);
            }
        }
        b
    }
}

/// Settings of one data link.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network side (a provider's exchange, or the box facing another PBX).
    pub network: bool,
    /// `Some(tei)`: a fixed TEI (0 on PRI and point-to-point BRI). `None`: BRI
    /// point-to-multipoint, the user side asks the network for one (TEI management);
    /// the network side hands out 64 and up.
    pub tei: Option<u8>,
    /// k: I frames out without acknowledgement (7 on PRI, 1 on BRI).
    pub window: u8,
    pub t200: Duration,
    pub n200: u32,
    pub t203: Duration,
    /// Seed for the TEI request's reference number.
    pub seed: u16,
}

impl Config {
    /// PRI (and point-to-point BRI): TEI 0, k = 7.
    pub fn pri(network: bool) -> Config {
        Config {
            network,
            tei: Some(0),
            window: 7,
            t200: Duration::from_secs(1),
            n200: 3,
            t203: Duration::from_secs(10),
            seed: 0x1234,
        }
    }

    /// BRI point-to-multipoint: automatic TEI, k = 1.
    pub fn bri_ptmp(network: bool, seed: u16) -> Config {
        Config {
            tei: None,
            window: 1,
            seed,
            ..Config::pri(network)
        }
    }
}

/// What the data link tells layer 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Multiple-frame operation established (DL-ESTABLISH).
    Up,
    /// The link was reset while it was up, by the peer's SABME or by our own recovery
    /// from a protocol error (a spontaneous DL-ESTABLISH): frames in flight may be
    /// lost, so layer 3 checks its calls with the far end (Q.931 5.8.8).
    Reestablished,
    /// Released or failed (DL-RELEASE), with why.
    Down(String),
    /// A layer 3 message (DL-DATA or DL-UNIT-DATA).
    Data(Vec<u8>),
    /// A TEI was assigned (user side) or handed out (network side).
    TeiAssigned(u8),
    /// A protocol error the link recovered from (MDL-ERROR), for the log.
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No TEI yet (BRI point-to-multipoint).
    TeiUnassigned,
    /// TEI requested, waiting for the network.
    AwaitingTei,
    /// TEI known, link released.
    TeiAssigned,
    AwaitingEstablishment,
    AwaitingRelease,
    Established,
    TimerRecovery,
}

/// One data link.
pub struct Lapd {
    cfg: Config,
    state: State,
    tei: Option<u8>,
    vs: u8,
    va: u8,
    vr: u8,
    /// Layer 3 messages not yet sent.
    queue: VecDeque<Vec<u8>>,
    /// Sent and not acknowledged: (N(S), info), oldest first.
    unacked: VecDeque<(u8, Vec<u8>)>,
    t200: Option<Instant>,
    t203: Option<Instant>,
    /// Retransmission count (RC).
    rc: u32,
    peer_busy: bool,
    reject: bool,
    /// The link should be up: re-establish after a failure.
    wanted: bool,
    /// The establishment under way resets a link that was up (see [`Event::Reestablished`]).
    resetting: bool,
    /// Our SABME crossed the peer's: its UA may still come.
    crossed: bool,
    /// TEI management: our request's reference and when to ask again.
    ri: u16,
    t202: Option<Instant>,
    n202: u32,
    /// Network side: the next TEI to hand out.
    next_tei: u8,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

fn mod128(a: u8) -> u8 {
    a & 0x7f
}

/// (b - a) mod 128.
fn dist(a: u8, b: u8) -> u8 {
    b.wrapping_sub(a) & 0x7f
}

impl Lapd {
    pub fn new(cfg: Config) -> Lapd {
        let tei = cfg.tei;
        Lapd {
            state: if tei.is_some() || cfg.network {
                State::TeiAssigned
            } else {
                State::TeiUnassigned
            },
            tei,
            vs: 0,
            va: 0,
            vr: 0,
            queue: VecDeque::new(),
            unacked: VecDeque::new(),
            t200: None,
            t203: None,
            rc: 0,
            peer_busy: false,
            reject: false,
            wanted: false,
            resetting: false,
            crossed: false,
            ri: cfg.seed,
            t202: None,
            n202: 0,
            next_tei: 64,
            out: VecDeque::new(),
            events: VecDeque::new(),
            cfg,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn tei(&self) -> Option<u8> {
        self.tei
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Established | State::TimerRecovery)
    }

    /// Brings the link up (and keeps it up: a failed link is established again).
    pub fn start(&mut self, now: Instant) {
        self.wanted = true;
        match self.state {
            State::TeiUnassigned => self.request_tei(now),
            State::TeiAssigned if self.tei.is_some() => self.establish(now),
            _ => {}
        }
    }

    /// Releases the link (DISC) and stops re-establishing it.
    pub fn stop(&mut self, now: Instant) {
        self.wanted = false;
        if self.is_up() || self.state == State::AwaitingEstablishment {
            self.send_u(Unnumbered::Disc, true, true);
            self.rc = 0;
            self.t200 = Some(now + self.cfg.t200);
            self.t203 = None;
            self.state = State::AwaitingRelease;
        }
    }

    /// Sends a layer 3 message in an I frame (queued until the link is up).
    pub fn send(&mut self, now: Instant, msg: Vec<u8>) {
        // A link down for long must not hold layer 3's messages without bound.
        if self.queue.len() >= MAX_QUEUE {
            self.events.push_back(Event::Error(format!(
                "{MAX_QUEUE} messages wait for the data link: message dropped"
            )));
            return;
        }
        self.queue.push_back(msg);
        match self.state {
            State::Established => self.push_i_frames(now),
            State::TeiAssigned if self.tei.is_some() => {
                self.wanted = true;
                self.establish(now);
            }
            State::TeiUnassigned => {
                self.wanted = true;
                self.request_tei(now);
            }
            _ => {}
        }
    }

    /// The next frame to put on the D-channel.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.t200, self.t203, self.t202]
            .into_iter()
            .flatten()
            .min()
    }

    fn addr(&self, command: bool) -> (u8, bool) {
        // Commands from the network carry C/R = 1, from the user 0; responses the opposite.
        (self.tei.unwrap_or(TEI_GROUP), command == self.cfg.network)
    }

    fn send_frame(&mut self, sapi: u8, tei: u8, cr: bool, kind: Kind) {
        self.out.push_back(
            Frame {
                sapi,
                cr,
                tei,
                kind,
            }
            .encode(),
        );
    }

    fn send_u(&mut self, u: Unnumbered, command: bool, pf: bool) {
        let (tei, cr) = self.addr(command);
        self.send_frame(
            SAPI_CALL,
            tei,
            cr,
            Kind::U {
                u,
                pf,
                info: Vec::new(),
            },
        );
    }

    fn send_s(&mut self, s: Supervisory, command: bool, pf: bool) {
        let (tei, cr) = self.addr(command);
        let nr = self.vr;
        self.send_frame(SAPI_CALL, tei, cr, Kind::S { s, nr, pf });
    }

    fn establish(&mut self, now: Instant) {
        self.crossed = false;
        self.send_u(Unnumbered::Sabme, true, true);
        self.rc = 0;
        self.t200 = Some(now + self.cfg.t200);
        self.t203 = None;
        self.state = State::AwaitingEstablishment;
    }

    /// Sequence variables to zero; frames not acknowledged go out again after it.
    fn reset_link(&mut self) {
        while let Some((_, m)) = self.unacked.pop_back() {
            self.queue.push_front(m);
        }
        self.vs = 0;
        self.va = 0;
        self.vr = 0;
        self.peer_busy = false;
        self.reject = false;
    }

    fn up(&mut self, now: Instant) {
        self.state = State::Established;
        self.t200 = None;
        self.t203 = Some(now + self.cfg.t203);
        self.rc = 0;
        let reset = std::mem::take(&mut self.resetting);
        self.events.push_back(if reset {
            Event::Reestablished
        } else {
            Event::Up
        });
        self.push_i_frames(now);
    }

    fn down(&mut self, why: &str) {
        self.resetting = false;
        self.crossed = false;
        self.t200 = None;
        self.t203 = None;
        self.state = if self.tei.is_some() {
            State::TeiAssigned
        } else {
            State::TeiUnassigned
        };
        self.events.push_back(Event::Down(why.to_string()));
    }

    /// A failed link: tell layer 3, then try again when the link should be up.
    fn fail(&mut self, now: Instant, why: &str) {
        tracing::info!(why, "data link failed");
        self.down(why);
        if self.wanted && self.tei.is_some() {
            self.reset_link();
            self.establish(now);
        }
    }

    /// Re-establishment after a protocol error (N(R) error, FRMR, unsolicited DM).
    fn reestablish(&mut self, now: Instant, why: &str) {
        self.events.push_back(Event::Error(why.to_string()));
        self.resetting = true;
        self.reset_link();
        self.establish(now);
    }

    fn push_i_frames(&mut self, now: Instant) {
        if self.state != State::Established || self.peer_busy {
            return;
        }
        let tei = match self.tei {
            Some(t) => t,
            None => return,
        };
        while dist(self.va, self.vs) < self.cfg.window {
            // After a REJ or recovery, V(S) points back into what is unacknowledged.
            let pending = dist(self.va, self.vs) as usize;
            let info = if pending < self.unacked.len() {
                self.unacked[pending].1.clone()
            } else if let Some(m) = self.queue.pop_front() {
                self.unacked.push_back((self.vs, m.clone()));
                m
            } else {
                break;
            };
            let (_, cr) = self.addr(true);
            let (ns, nr) = (self.vs, self.vr);
            self.send_frame(
                SAPI_CALL,
                tei,
                cr,
                Kind::I {
                    ns,
                    nr,
                    p: false,
                    info,
                },
            );
            self.vs = mod128(self.vs + 1);
            if self.t200.is_none() {
                self.t200 = Some(now + self.cfg.t200);
                self.t203 = None;
            }
        }
    }

    /// Applies N(R); false when it is outside V(A)..=V(S).
    fn ack(&mut self, nr: u8) -> bool {
        if dist(self.va, nr) > dist(self.va, self.vs) {
            return false;
        }
        while self.va != nr {
            self.unacked.pop_front();
            self.va = mod128(self.va + 1);
        }
        true
    }

    /// N(R) in the multiple-frame established state: timers as Q.921 5.6.3.
    fn ack_established(&mut self, now: Instant, nr: u8) -> bool {
        let before = self.va;
        if !self.ack(nr) {
            return false;
        }
        if nr == self.vs {
            self.t200 = None;
            self.t203 = Some(now + self.cfg.t203);
        } else if nr != before {
            self.t200 = Some(now + self.cfg.t200);
        }
        true
    }

    /// One frame from the D-channel; anything malformed is dropped (and reported).
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        let f = match Frame::parse(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.events
                    .push_back(Event::Error(format!("frame dropped: {e}")));
                return;
            }
        };
        if f.sapi == SAPI_MGMT {
            self.management(now, &f);
            return;
        }
        if f.sapi != SAPI_CALL {
            return;
        }
        // Broadcast UI frames (SETUP on a BRI bus) reach every terminal.
        if let Kind::U {
            u: Unnumbered::Ui,
            info,
            ..
        } = &f.kind
        {
            if f.tei == TEI_GROUP || Some(f.tei) == self.tei {
                self.events.push_back(Event::Data(info.clone()));
            }
            return;
        }
        if Some(f.tei) != self.tei {
            return;
        }
        // A command from the peer carries the peer's command C/R value.
        let command = f.cr != self.cfg.network;
        if !matches!(f.kind, Kind::U { .. }) {
            // A UA to our crossed SABME comes before the peer's first I or S frame.
            self.crossed = false;
        }
        match f.kind {
            Kind::U { u, pf, .. } => self.unnumbered(now, u, pf, command),
            Kind::S { s, nr, pf } => self.supervisory(now, s, nr, pf, command),
            Kind::I { ns, nr, p, info } => self.information(now, ns, nr, p, info, command),
        }
    }

    fn unnumbered(&mut self, now: Instant, u: Unnumbered, pf: bool, command: bool) {
        match (u, self.state) {
            (Unnumbered::Sabme, State::TeiAssigned) => {
                self.send_u(Unnumbered::Ua, false, pf);
                self.reset_link();
                self.up(now);
            }
            (Unnumbered::Sabme, State::AwaitingEstablishment) => {
                // Both sides establishing (Q.921 5.5.1.3): the peer takes the link as
                // up once it has our UA. Waiting for a UA to our own SABME would leave
                // I frames the peer sends at once (a SETUP) unread, and our SABME
                // retransmitted by T200 (ours may have gone out before the peer
                // listened) would reset the peer's link and lose them; so the link is
                // up now, and a UA to our SABME arriving later is ignored.
                self.send_u(Unnumbered::Ua, false, pf);
                self.reset_link();
                self.crossed = true;
                self.up(now);
            }
            (Unnumbered::Sabme, State::Established | State::TimerRecovery) => {
                self.send_u(Unnumbered::Ua, false, pf);
                self.events
                    .push_back(Event::Error("the peer reset the data link".into()));
                self.reset_link();
                self.resetting = true;
                self.up(now);
            }
            (Unnumbered::Sabme, State::AwaitingRelease) => self.send_u(Unnumbered::Dm, false, pf),
            (Unnumbered::Disc, State::Established | State::TimerRecovery) => {
                self.send_u(Unnumbered::Ua, false, pf);
                self.reset_link();
                self.down("released by the peer");
            }
            (Unnumbered::Disc, State::AwaitingEstablishment) => {
                self.send_u(Unnumbered::Dm, false, pf)
            }
            (Unnumbered::Disc, _) => self.send_u(Unnumbered::Dm, false, pf),
            (Unnumbered::Ua, State::AwaitingEstablishment) if pf => {
                self.reset_link();
                self.up(now);
            }
            (Unnumbered::Ua, State::AwaitingRelease) if pf => {
                self.down("released");
            }
            // The UA to our SABME that crossed the peer's (above) is expected once.
            (Unnumbered::Ua, State::Established | State::TimerRecovery)
                if pf && std::mem::take(&mut self.crossed) => {}
            (Unnumbered::Ua, _) => self.events.push_back(Event::Error("unsolicited UA".into())),
            (Unnumbered::Dm, State::AwaitingEstablishment) if pf => {
                self.t200 = None;
                self.resetting = false;
                self.state = State::TeiAssigned;
                self.events
                    .push_back(Event::Down("the peer refused the data link (DM)".into()));
                // Try again after T200 while the link is wanted.
                if self.wanted {
                    self.t200 = Some(now + self.cfg.t200);
                }
            }
            (Unnumbered::Dm, State::AwaitingRelease) if pf => self.down("released"),
            (Unnumbered::Dm, State::Established | State::TimerRecovery) if !pf => {
                self.reestablish(now, "DM in multiple-frame operation")
            }
            (Unnumbered::Dm, State::TeiAssigned) if !pf && self.wanted => self.establish(now),
            (Unnumbered::Frmr, State::Established | State::TimerRecovery) => {
                self.reestablish(now, "the peer rejected a frame (FRMR)")
            }
            (Unnumbered::Xid, _) if command => {}
            _ => {}
        }
    }

    fn supervisory(&mut self, now: Instant, s: Supervisory, nr: u8, pf: bool, command: bool) {
        if !self.is_up() {
            if command && pf {
                self.send_u(Unnumbered::Dm, false, true);
            }
            return;
        }
        self.peer_busy = s == Supervisory::Rnr;
        if command && pf {
            // Enquiry: answer with our state.
            self.send_s(Supervisory::Rr, false, true);
        }
        if self.state == State::TimerRecovery {
            if !command && pf {
                if !self.ack(nr) {
                    return self.reestablish(now, "N(R) error");
                }
                self.t200 = None;
                self.t203 = Some(now + self.cfg.t203);
                self.vs = nr; // send again what was not acknowledged
                self.state = State::Established;
                self.rc = 0;
                self.push_i_frames(now);
            } else if !self.ack(nr) {
                self.reestablish(now, "N(R) error");
            }
            return;
        }
        if !self.ack_established(now, nr) {
            return self.reestablish(now, "N(R) error");
        }
        if s == Supervisory::Rej {
            self.vs = nr;
            self.t200 = None;
        }
        self.push_i_frames(now);
        if self.t200.is_none() && self.va != self.vs {
            self.t200 = Some(now + self.cfg.t200);
        }
    }

    fn information(&mut self, now: Instant, ns: u8, nr: u8, p: bool, info: Vec<u8>, command: bool) {
        if !command {
            self.events
                .push_back(Event::Error("I frame sent as a response".into()));
            return;
        }
        if !self.is_up() {
            if p {
                self.send_u(Unnumbered::Dm, false, true);
            }
            return;
        }
        if ns == self.vr {
            self.vr = mod128(self.vr + 1);
            self.reject = false;
            self.events.push_back(Event::Data(info));
            // Acknowledge now unless an I frame of ours will carry it.
            let window_open = dist(self.va, self.vs) < self.cfg.window
                && !self.queue.is_empty()
                && self.state == State::Established
                && !self.peer_busy;
            if p || !window_open {
                self.send_s(Supervisory::Rr, false, p);
            }
        } else if !self.reject {
            self.reject = true;
            self.send_s(Supervisory::Rej, false, p);
        } else if p {
            self.send_s(Supervisory::Rr, false, true);
        }
        if self.state == State::TimerRecovery {
            if !self.ack(nr) {
                self.reestablish(now, "N(R) error");
            }
            return;
        }
        if !self.ack_established(now, nr) {
            return self.reestablish(now, "N(R) error");
        }
        self.push_i_frames(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.t202.is_some_and(|t| t <= now) {
            self.t202 = None;
            if self.state == State::AwaitingTei {
                if self.n202 >= 3 {
                    self.state = State::TeiUnassigned;
                    self.events
                        .push_back(Event::Down("the network assigned no TEI".into()));
                    self.t202 = Some(now + Duration::from_secs(10)); // ask again later
                    self.n202 = 0;
                } else {
                    self.request_tei(now);
                }
            } else if self.state == State::TeiUnassigned && self.wanted {
                self.request_tei(now);
            }
        }
        if self.t203.is_some_and(|t| t <= now) && self.state == State::Established {
            // Nothing heard for T203: ask whether the peer is still there.
            self.t203 = None;
            self.state = State::TimerRecovery;
            self.rc = 0;
            self.send_s(Supervisory::Rr, true, true);
            self.rc += 1;
            self.t200 = Some(now + self.cfg.t200);
        }
        if self.t200.is_none_or(|t| t > now) {
            return;
        }
        self.t200 = None;
        match self.state {
            State::AwaitingEstablishment => {
                if self.rc >= self.cfg.n200 {
                    self.fail(now, "no answer to SABME");
                } else {
                    self.rc += 1;
                    self.send_u(Unnumbered::Sabme, true, true);
                    self.t200 = Some(now + self.cfg.t200);
                }
            }
            State::TeiAssigned if self.wanted => self.establish(now),
            State::AwaitingRelease => {
                if self.rc >= self.cfg.n200 {
                    self.down("released (no answer to DISC)");
                } else {
                    self.rc += 1;
                    self.send_u(Unnumbered::Disc, true, true);
                    self.t200 = Some(now + self.cfg.t200);
                }
            }
            State::Established => {
                self.state = State::TimerRecovery;
                self.rc = 0;
                self.enquire(now);
            }
            State::TimerRecovery => {
                if self.rc >= self.cfg.n200 {
                    self.fail(now, "the peer stopped answering");
                } else {
                    self.enquire(now);
                }
            }
            _ => {}
        }
    }

    /// Timer recovery: ask for the peer's N(R) with a poll.
    fn enquire(&mut self, now: Instant) {
        self.send_s(Supervisory::Rr, true, true);
        self.rc += 1;
        self.t200 = Some(now + self.cfg.t200);
    }

    // ---- TEI management (Q.921 5.3) ----

    fn request_tei(&mut self, now: Instant) {
        if self.cfg.network {
            return;
        }
        // A new reference number for every request.
        self.ri = self.ri.wrapping_mul(25173).wrapping_add(13849);
        self.n202 += 1;
        self.state = State::AwaitingTei;
        self.t202 = Some(now + Duration::from_secs(2));
        self.send_mgmt(1, self.ri, TEI_GROUP);
    }

    fn send_mgmt(&mut self, msg: u8, ri: u16, ai: u8) {
        let info = vec![0x0f, (ri >> 8) as u8, ri as u8, msg, (ai << 1) | 1];
        // TEI management messages are UI commands on the broadcast TEI.
        self.send_frame(
            SAPI_MGMT,
            TEI_GROUP,
            self.cfg.network,
            Kind::U {
                u: Unnumbered::Ui,
                pf: false,
                info,
            },
        );
    }

    fn management(&mut self, now: Instant, f: &Frame) {
        let Kind::U {
            u: Unnumbered::Ui,
            info,
            ..
        } = &f.kind
        else {
            return;
        };
        if info.len() < 5 || info[0] != 0x0f {
            self.events
                .push_back(Event::Error("malformed TEI management message".into()));
            return;
        }
        let ri = u16::from_be_bytes([info[1], info[2]]);
        let (msg, ai) = (info[3], info[4] >> 1);
        if self.cfg.network {
            match msg {
                1 => {
                    // Identity request: hand out a TEI (the one already given, if any).
                    let tei = match self.tei {
                        Some(t) => t,
                        None => {
                            let t = self.next_tei;
                            self.next_tei = if t >= 126 { 64 } else { t + 1 };
                            t
                        }
                    };
                    self.tei = Some(tei);
                    if self.state == State::TeiUnassigned {
                        self.state = State::TeiAssigned;
                    }
                    self.send_mgmt(2, ri, tei);
                    self.events.push_back(Event::TeiAssigned(tei));
                }
                5 | 7 => {} // check response, verify: the terminal is there
                _ => {}
            }
            return;
        }
        match msg {
            2 if self.state == State::AwaitingTei && ri == self.ri => {
                self.t202 = None;
                self.n202 = 0;
                self.tei = Some(ai);
                self.state = State::TeiAssigned;
                self.events.push_back(Event::TeiAssigned(ai));
                if self.wanted {
                    self.establish(now);
                }
            }
            3 if self.state == State::AwaitingTei && ri == self.ri => {
                self.t202 = Some(now + Duration::from_secs(2));
            }
            4 if self.tei.is_some() && (ai == TEI_GROUP || Some(ai) == self.tei) => {
                let tei = self.tei.unwrap_or(TEI_GROUP);
                self.send_mgmt(5, self.ri, tei);
            }
            6 if self.tei.is_some() && (ai == TEI_GROUP || Some(ai) == self.tei) => {
                self.tei = None;
                self.resetting = false;
                self.crossed = false;
                self.reset_link();
                let was = self.is_up();
                self.state = State::TeiUnassigned;
                self.t200 = None;
                self.t203 = None;
                if was {
                    self.events
                        .push_back(Event::Down("the network removed our TEI".into()));
                }
                if self.wanted {
                    self.request_tei(now);
                }
            }
            _ => {}
        }
    }
}
