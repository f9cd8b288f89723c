//! Q.931 call control (ITU-T Q.931 / ETSI EN 300 403, National ISDN-2) for one
//! D-channel, on either side of the interface: the user side (the box facing a
//! provider) or the network side (the box acting as the network towards another PBX,
//! Kerio 7.2). Sans-IO like [`crate::q921`]: Q.931 messages in ([`Calls::receive`]),
//! messages to send out ([`Calls::poll_transmit`], handed to LAPD), events for the
//! exchange ([`Calls::poll_event`]), and timers on the caller's clock.
//!
//! What it does:
//! - call set-up both ways, en-bloc (sending complete) and overlap (SETUP
//!   ACKNOWLEDGE, INFORMATION with digits, T302/T304);
//! - B-channel selection: exclusive from the network side, preferred from the user
//!   side; the network side hunts from the top channel down and the user side from the
//!   bottom up, so that glare is rare; when both sides take the same channel at once
//!   the network side's call keeps it (Q.931 5.2.3.1);
//! - clearing in three steps (DISCONNECT, RELEASE, RELEASE COMPLETE) with collisions,
//!   and the timers T303 (SETUP retransmitted once), T305, T308 (RELEASE sent twice),
//!   T310, T313, T316 (RESTART), T309 (data link failure);
//! - RESTART and RESTART ACKNOWLEDGE for one channel or the whole interface;
//! - STATUS ENQUIRY answered; STATUS for errors with the cause Q.931 5.8 gives: 81
//!   (unknown call reference, by RELEASE COMPLETE), 96 (mandatory element missing), 97
//!   (unknown message type), 100 (broken element), 101 (message not compatible with
//!   the call state); a STATUS saying the peer has no such call clears ours.

use crate::q931::{self, ie, Bearer, CallRef, Cause, ChannelId, DecodeError, Message, MsgType};
use crate::q931::{NumberType, PartyNumber};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Which side of the user-network interface this D-channel plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    User,
    Network,
}

/// The protocol variant (switch type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// EuroISDN (ETSI EN 300 403): A-law.
    Etsi,
    /// National ISDN-2 (Telcordia): u-law.
    Ni2,
}

/// Timer values (Q.931 table 9-1 and 9-2).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t302: Duration,
    pub t303: Duration,
    pub t304: Duration,
    pub t305: Duration,
    pub t308: Duration,
    pub t309: Duration,
    pub t310: Duration,
    pub t313: Duration,
    pub t316: Duration,
    /// STATUS ENQUIRY waiting for STATUS (Q.931 5.8.10).
    pub t322: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        let s = Duration::from_secs;
        Timers {
            t302: s(15),
            t303: s(4),
            t304: s(30),
            t305: s(30),
            t308: s(4),
            t309: s(90),
            t310: s(10),
            t313: s(4),
            t316: s(120),
            t322: s(4),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub side: Side,
    pub variant: Variant,
    /// PRI (two-octet call references, channel numbers in octet 3.3) or BRI.
    pub pri: bool,
    /// The B-channels calls may use, as Q.931 numbers them (E1: 1-15 and 17-31; T1:
    /// 1-23; BRI: 1 and 2).
    pub channels: Vec<u8>,
    pub timers: Timers,
}

impl Config {
    /// An E1 PRI, EuroISDN: 30 B-channels.
    pub fn e1(side: Side) -> Config {
        Config {
            side,
            variant: Variant::Etsi,
            pri: true,
            channels: (1..=31).filter(|c| *c != 16).collect(),
            timers: Timers::default(),
        }
    }

    /// A T1 PRI, National ISDN-2: 23 B-channels, the 24th is the D-channel.
    pub fn t1(side: Side) -> Config {
        Config {
            side,
            variant: Variant::Ni2,
            pri: true,
            channels: (1..=23).collect(),
            timers: Timers::default(),
        }
    }

    /// A BRI port: two B-channels.
    pub fn bri(side: Side, variant: Variant) -> Config {
        Config {
            side,
            variant,
            pri: false,
            channels: vec![1, 2],
            timers: Timers::default(),
        }
    }

    /// The B-channels' law: A-law for EuroISDN, u-law for NI-2.
    pub fn alaw(&self) -> bool {
        self.variant == Variant::Etsi
    }
}

/// A call's handle, unique for the life of a [`Calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u32);

/// What the exchange hears from the D-channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call is offered. With `complete` false more digits may follow: answer with
    /// [`Calls::more_digits`] (overlap receiving) or route what is there.
    Setup {
        call: CallId,
        channel: u8,
        called: String,
        calling: Option<PartyNumber>,
        complete: bool,
        display: Option<String>,
    },
    /// More called-number digits (overlap receiving). With `complete` and no digits,
    /// T302 ran out: the number is as complete as it will get.
    Digits {
        call: CallId,
        digits: String,
        complete: bool,
    },
    /// The far end asks for more digits of our call (overlap sending).
    MoreDigits {
        call: CallId,
    },
    Proceeding {
        call: CallId,
    },
    Alerting {
        call: CallId,
        inband: bool,
    },
    Progress {
        call: CallId,
        inband: bool,
    },
    /// Our call was answered.
    Answered {
        call: CallId,
    },
    /// A call we answered is confirmed (CONNECT ACKNOWLEDGE, user side).
    Connected {
        call: CallId,
    },
    /// The call is over for the exchange (its channel is free or soon will be).
    Ended {
        call: CallId,
        cause: u8,
    },
    /// Channels were restarted: `None` = the whole interface. `by_peer` when the far
    /// end asked; otherwise our RESTART was acknowledged (or T316 gave up).
    Restarted {
        channel: Option<u8>,
        by_peer: bool,
        acknowledged: bool,
    },
    /// A protocol error the far end made, answered as Q.931 5.8 says.
    Error(String),
    /// The data link went up or down (reported by [`crate::dchan::Dchannel`]).
    Link {
        up: bool,
        why: String,
    },
}

/// Why a call could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("no B-channel is free (cause 34)")]
    NoChannel,
    #[error("B-channel {0} is not on this span or is busy (cause 44)")]
    ChannelBusy(u8),
    #[error("no call reference is free (cause 47)")]
    NoCallRef,
}

impl SetupError {
    pub fn cause(&self) -> u8 {
        match self {
            SetupError::NoChannel => 34,
            SetupError::ChannelBusy(_) => 44,
            SetupError::NoCallRef => 47,
        }
    }
}

/// A call to place.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub called: String,
    pub calling: Option<PartyNumber>,
    /// Type of number for the called party (unknown by default).
    pub called_ton: Option<NumberType>,
    /// A given B-channel, else the next free one.
    pub channel: Option<u8>,
    /// All digits are in (en-bloc); false starts overlap sending.
    pub complete: bool,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initiated,
    Overlap,
    Proceeding,
    Alerting,
    ConnectRequest,
    Active,
    DisconnectRequest,
    ReleaseRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    T302,
    T303,
    T304,
    T305,
    T308,
    T309,
    T310,
    T313,
}

#[derive(Debug)]
struct Call {
    id: CallId,
    cref: u16,
    /// We sent the SETUP (we own the call reference).
    outgoing: bool,
    phase: Phase,
    channel: Option<u8>,
    timer: Option<(Timer, Instant)>,
    /// T303/T308 expiries so far.
    expiries: u8,
    setup: Option<Message>,
    cause: u8,
    /// The first answer to a SETUP (which carries the channel) was sent.
    answered_setup: bool,
    /// A STATUS ENQUIRY is out: T322 runs to this instant; enquiries sent so far.
    enquiry: Option<(Instant, u8)>,
    /// Ended was reported.
    ended: bool,
}

impl Call {
    /// Being cleared or already ended: no STATUS ENQUIRY is made or answered for it.
    fn clearing(&self) -> bool {
        self.ended || matches!(self.phase, Phase::DisconnectRequest | Phase::ReleaseRequest)
    }
}

/// Q.931 on one D-channel.
pub struct Calls {
    cfg: Config,
    calls: BTreeMap<u32, Call>,
    next_id: u32,
    next_cref: u16,
    link_up: bool,
    /// RESTART awaiting its acknowledgement: channel, deadline, sends so far.
    restart: Option<(Option<u8>, Instant, u8)>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

fn progress_ie(description: u8) -> Vec<u8> {
    // Coding standard CCITT, location private network serving the local user.
    vec![0x81, 0x80 | description]
}

fn inband(m: &Message) -> bool {
    // Progress description 1 (not end-to-end ISDN) or 8 (in-band information).
    m.ies
        .iter()
        .filter(|e| e.codeset == 0 && e.id == ie::PROGRESS)
        .any(|e| matches!(e.data.get(1).map(|d| d & 0x7f), Some(1 | 8)))
}

fn call_state(m: &Message) -> Option<u8> {
    m.get(ie::CALL_STATE)
        .and_then(|d| d.first())
        .map(|s| s & 0x3f)
}

impl Calls {
    pub fn new(cfg: Config) -> Calls {
        Calls {
            cfg,
            calls: BTreeMap::new(),
            next_id: 1,
            next_cref: 1,
            link_up: false,
            restart: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Q.931 messages to hand to LAPD, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Calls that exist (in any state).
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The B-channel a call holds.
    pub fn channel(&self, call: CallId) -> Option<u8> {
        self.find(call).and_then(|c| c.channel)
    }

    /// Whether the call is answered and not being cleared.
    pub fn is_active(&self, call: CallId) -> bool {
        self.find(call).is_some_and(|c| c.phase == Phase::Active)
    }

    /// B-channels held by calls.
    pub fn busy_channels(&self) -> Vec<u8> {
        self.calls.values().filter_map(|c| c.channel).collect()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|c| c.timer.map(|t| t.1));
        let enquiries = self.calls.values().filter_map(|c| c.enquiry.map(|e| e.0));
        calls
            .chain(enquiries)
            .chain(self.restart.map(|r| r.1))
            .min()
    }

    fn find(&self, call: CallId) -> Option<&Call> {
        self.calls.values().find(|c| c.id == call)
    }

    fn key_of(&self, call: CallId) -> Option<u32> {
        self.calls
            .iter()
            .find(|(_, c)| c.id == call)
            .map(|(k, _)| *k)
    }

    /// Calls are keyed by call reference and who allocated it: both sides may use the
    /// same value at once.
    fn key(cref: u16, ours: bool) -> u32 {
        u32::from(cref) | if ours { 0x1_0000 } else { 0 }
    }

    fn cref_len(&self) -> u8 {
        if self.cfg.pri {
            2
        } else {
            1
        }
    }

    fn msg(&self, c: &Call, t: MsgType) -> Message {
        Message::new(
            CallRef {
                value: c.cref,
                // Set in messages from the side that did not allocate the reference.
                from_destination: !c.outgoing,
                len: self.cref_len(),
            },
            t,
        )
    }

    fn chan_ie(&self, channel: Option<u8>, exclusive: bool) -> Vec<u8> {
        ChannelId {
            pri: self.cfg.pri,
            exclusive,
            channel,
            dchannel: false,
        }
        .encode()
    }

    fn send(&mut self, m: Message) {
        tracing::debug!(msg = ?m.msg_type, cref = m.call_ref.value, "q931 out");
        self.out.push_back(m.encode());
    }

    fn free_channel(&self, prefer: Option<u8>) -> Option<u8> {
        let busy = self.busy_channels();
        if let Some(p) = prefer.filter(|p| self.cfg.channels.contains(p) && !busy.contains(p)) {
            return Some(p);
        }
        let free = self
            .cfg
            .channels
            .iter()
            .copied()
            .filter(|c| !busy.contains(c));
        match self.cfg.side {
            Side::Network => free.max(),
            Side::User => free.min(),
        }
    }

    fn new_id(&mut self) -> CallId {
        let id = CallId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// The link came up: calls kept across a failure are checked with the far end.
    pub fn link_up(&mut self, _now: Instant) {
        self.link_up = true;
        let keys: Vec<u32> = self.calls.keys().copied().collect();
        for k in keys {
            let c = &self.calls[&k];
            if c.timer.is_some_and(|t| t.0 == Timer::T309) {
                let mut m = self.msg(c, MsgType::Status);
                m.push(ie::CAUSE, Cause::new(31).encode());
                m.push(ie::CALL_STATE, vec![self.state_number(c)]);
                self.calls.get_mut(&k).unwrap().timer = None;
                self.send(m);
            }
        }
    }

    /// The link was reset under our calls (a spontaneous DL-ESTABLISH, Q.931 5.8.8):
    /// messages in flight may be lost, so every call not being cleared is checked with
    /// a STATUS ENQUIRY; the far end's STATUS keeps it or clears it, and a call the far
    /// end never answers for is cleared after T322 twice (cause 41).
    pub fn link_reset(&mut self, now: Instant) {
        self.link_up = true;
        let keys: Vec<u32> = self.calls.keys().copied().collect();
        for k in keys {
            let c = &self.calls[&k];
            if c.clearing() {
                continue;
            }
            if c.timer.is_some_and(|t| t.0 == Timer::T309) {
                self.calls.get_mut(&k).unwrap().timer = None;
            }
            self.enquire(now, k, 0);
        }
    }

    fn enquire(&mut self, now: Instant, k: u32, sent: u8) {
        let m = self.msg(&self.calls[&k], MsgType::StatusEnquiry);
        self.calls.get_mut(&k).unwrap().enquiry = Some((now + self.cfg.timers.t322, sent + 1));
        self.send(m);
    }

    /// The link failed: calls not yet answered are cleared, answered ones wait T309
    /// for it to come back (Q.931 5.8.8).
    pub fn link_down(&mut self, now: Instant) {
        self.link_up = false;
        // What was waiting to go out is lost with the link.
        self.out.clear();
        let keys: Vec<u32> = self.calls.keys().copied().collect();
        for k in keys {
            let t309 = self.cfg.timers.t309;
            let c = self.calls.get_mut(&k).unwrap();
            // No enquiry can be answered now; T309 decides (Q.931 5.8.9).
            c.enquiry = None;
            if c.phase == Phase::Active {
                c.timer = Some((Timer::T309, now + t309));
            } else {
                self.drop_call(k, 41);
            }
        }
    }

    /// Places a call. The SETUP goes out at once (LAPD queues it while the link comes
    /// up).
    pub fn setup(&mut self, now: Instant, o: Outgoing) -> Result<CallId, SetupError> {
        let channel = match o.channel {
            Some(ch) => {
                if !self.cfg.channels.contains(&ch) || self.busy_channels().contains(&ch) {
                    return Err(SetupError::ChannelBusy(ch));
                }
                ch
            }
            None => self.free_channel(None).ok_or(SetupError::NoChannel)?,
        };
        let max = if self.cfg.pri { 0x7fff } else { 0x7f };
        let mut cref = None;
        for _ in 0..max {
            let v = self.next_cref;
            self.next_cref = if v >= max { 1 } else { v + 1 };
            if !self.calls.contains_key(&Self::key(v, true)) {
                cref = Some(v);
                break;
            }
        }
        let cref = cref.ok_or(SetupError::NoCallRef)?;
        let id = self.new_id();
        let mut c = Call {
            id,
            cref,
            outgoing: true,
            phase: Phase::Initiated,
            channel: Some(channel),
            timer: Some((Timer::T303, now + self.cfg.timers.t303)),
            expiries: 0,
            setup: None,
            cause: 16,
            answered_setup: true,
            enquiry: None,
            ended: false,
        };
        let mut m = self.msg(&c, MsgType::Setup);
        m.push(
            ie::BEARER_CAPABILITY,
            Bearer::speech(self.cfg.alaw()).encode(),
        );
        // The network assigns the channel; a user only says which one it would like.
        let exclusive = self.cfg.side == Side::Network || o.channel.is_some();
        m.push(ie::CHANNEL_ID, self.chan_ie(Some(channel), exclusive));
        if self.cfg.side == Side::Network {
            m.push(ie::PROGRESS, progress_ie(3)); // origination address is non-ISDN
        }
        if let Some(d) = &o.display {
            m.push(ie::DISPLAY, d.bytes().take(80).collect());
        }
        if let Some(cg) = &o.calling {
            m.push(ie::CALLING_NUMBER, cg.encode_calling());
        }
        if !o.called.is_empty() || o.complete {
            let mut cd = PartyNumber::new(&o.called);
            cd.ton = o.called_ton.unwrap_or(NumberType::Unknown);
            m.push(ie::CALLED_NUMBER, cd.encode_called());
        }
        if o.complete {
            m.push(ie::SENDING_COMPLETE, Vec::new());
        }
        c.setup = Some(m.clone());
        self.calls.insert(Self::key(cref, true), c);
        self.send(m);
        Ok(id)
    }

    /// Sends more digits of our call while the far end collects them (overlap
    /// sending); `complete` adds sending complete.
    pub fn information(&mut self, now: Instant, call: CallId, digits: &str, complete: bool) {
        let Some(k) = self.key_of(call) else { return };
        let t304 = self.cfg.timers.t304;
        let c = self.calls.get_mut(&k).unwrap();
        // Only once the far end asked for them (SETUP ACKNOWLEDGE).
        if c.phase != Phase::Overlap {
            return;
        }
        c.timer = Some((Timer::T304, now + t304));
        let mut m = self.msg(&self.calls[&k], MsgType::Information);
        if !digits.is_empty() {
            m.push(ie::CALLED_NUMBER, PartyNumber::new(digits).encode_called());
        }
        if complete {
            m.push(ie::SENDING_COMPLETE, Vec::new());
        }
        self.send(m);
    }

    /// Asks for more digits of an offered call (SETUP ACKNOWLEDGE, overlap
    /// receiving); T302 waits for each INFORMATION.
    pub fn more_digits(&mut self, now: Instant, call: CallId) {
        self.answer_setup(now, call, MsgType::SetupAcknowledge, Phase::Overlap, None);
    }

    /// The offered call is being routed (CALL PROCEEDING).
    pub fn proceeding(&mut self, now: Instant, call: CallId) {
        self.answer_setup(now, call, MsgType::CallProceeding, Phase::Proceeding, None);
    }

    /// The called party rings (ALERTING; with `inband`, tones are on the B-channel).
    pub fn alerting(&mut self, now: Instant, call: CallId, inband: bool) {
        let pi = inband.then_some(8);
        self.answer_setup(now, call, MsgType::Alerting, Phase::Alerting, pi);
    }

    /// In-band information is available on the B-channel (PROGRESS).
    pub fn progress(&mut self, _now: Instant, call: CallId) {
        let Some(k) = self.key_of(call) else { return };
        let c = &self.calls[&k];
        if c.outgoing || !matches!(c.phase, Phase::Proceeding | Phase::Alerting) {
            return;
        }
        let mut m = self.msg(c, MsgType::Progress);
        m.push(ie::PROGRESS, progress_ie(8));
        self.send(m);
    }

    /// Answers an offered call (CONNECT).
    pub fn connect(&mut self, now: Instant, call: CallId) {
        let next = match self.cfg.side {
            // The user waits T313 for CONNECT ACKNOWLEDGE.
            Side::User => Phase::ConnectRequest,
            Side::Network => Phase::Active,
        };
        self.answer_setup(now, call, MsgType::Connect, next, None);
        if let Some(k) = self.key_of(call) {
            if self.cfg.side == Side::User && self.calls[&k].phase == Phase::ConnectRequest {
                let t = self.cfg.timers.t313;
                self.calls.get_mut(&k).unwrap().timer = Some((Timer::T313, now + t));
            }
        }
    }

    fn answer_setup(
        &mut self,
        now: Instant,
        call: CallId,
        t: MsgType,
        next: Phase,
        progress: Option<u8>,
    ) {
        let Some(k) = self.key_of(call) else { return };
        let c = &self.calls[&k];
        let order = |p: Phase| match p {
            Phase::Initiated => 0,
            Phase::Overlap => 1,
            Phase::Proceeding => 2,
            Phase::Alerting => 3,
            Phase::ConnectRequest | Phase::Active => 4,
            _ => 9,
        };
        // Only forward, only on a call offered to us.
        if c.outgoing || order(c.phase) >= order(next) || order(c.phase) == 9 {
            return;
        }
        let mut m = self.msg(c, t);
        if !c.answered_setup {
            m.push(ie::CHANNEL_ID, self.chan_ie(c.channel, true));
        }
        if let Some(pi) = progress {
            m.push(ie::PROGRESS, progress_ie(pi));
        }
        let t302 = self.cfg.timers.t302;
        let c = self.calls.get_mut(&k).unwrap();
        c.answered_setup = true;
        c.phase = next;
        c.timer = (next == Phase::Overlap).then_some((Timer::T302, now + t302));
        self.send(m);
    }

    /// Clears a call with a Q.850 cause (16 normal clearing, 17 busy, ...). An offered
    /// call not yet answered in any way is refused with RELEASE COMPLETE.
    pub fn hangup(&mut self, now: Instant, call: CallId, cause: u8) {
        let Some(k) = self.key_of(call) else { return };
        let c = self.calls.get_mut(&k).unwrap();
        c.ended = true;
        c.cause = cause;
        match c.phase {
            Phase::DisconnectRequest | Phase::ReleaseRequest => {}
            Phase::Initiated if !c.outgoing && !c.answered_setup => {
                let mut m = self.msg(&self.calls[&k], MsgType::ReleaseComplete);
                m.push(ie::CAUSE, Cause::new(cause).encode());
                self.calls.remove(&k);
                self.send(m);
            }
            _ => {
                let t305 = self.cfg.timers.t305;
                c.phase = Phase::DisconnectRequest;
                c.timer = Some((Timer::T305, now + t305));
                let mut m = self.msg(&self.calls[&k], MsgType::Disconnect);
                m.push(ie::CAUSE, Cause::new(cause).encode());
                if self.cfg.side == Side::Network {
                    m.push(ie::PROGRESS, progress_ie(8));
                }
                self.send(m);
            }
        }
    }

    /// Restarts one B-channel, or the whole interface with `None`: calls on it end
    /// at once, and T316 waits for RESTART ACKNOWLEDGE (sent twice at most).
    pub fn restart(&mut self, now: Instant, channel: Option<u8>) {
        self.clear_channels(channel, 41);
        self.restart = Some((channel, now + self.cfg.timers.t316, 1));
        self.send_restart(channel);
    }

    fn send_restart(&mut self, channel: Option<u8>) {
        let mut m = Message::new(CallRef::global(self.cref_len()), MsgType::Restart);
        if let Some(ch) = channel {
            m.push(ie::CHANNEL_ID, self.chan_ie(Some(ch), true));
        }
        // Class: indicated channels, or all interfaces.
        m.push(
            ie::RESTART_INDICATOR,
            vec![if channel.is_some() { 0x80 } else { 0x87 }],
        );
        self.send(m);
    }

    fn clear_channels(&mut self, channel: Option<u8>, cause: u8) {
        let keys: Vec<u32> = self
            .calls
            .iter()
            .filter(|(_, c)| channel.is_none() || c.channel == channel)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.drop_call(k, cause);
        }
    }

    /// Forgets a call, reporting its end if the exchange has not heard of it.
    fn drop_call(&mut self, k: u32, cause: u8) {
        if let Some(c) = self.calls.remove(&k) {
            if !c.ended {
                self.events.push_back(Event::Ended { call: c.id, cause });
            }
        }
    }

    fn end(&mut self, k: u32, cause: u8) {
        let c = self.calls.get_mut(&k).unwrap();
        if !c.ended {
            c.ended = true;
            let id = c.id;
            self.events.push_back(Event::Ended { call: id, cause });
        }
    }

    fn release(&mut self, now: Instant, k: u32, cause: u8) {
        let t308 = self.cfg.timers.t308;
        let c = self.calls.get_mut(&k).unwrap();
        c.phase = Phase::ReleaseRequest;
        c.timer = Some((Timer::T308, now + t308));
        c.expiries = 0;
        c.cause = cause;
        let mut m = self.msg(&self.calls[&k], MsgType::Release);
        m.push(ie::CAUSE, Cause::new(cause).encode());
        self.send(m);
    }

    /// The call state number for STATUS (Q.931 4.5.7): the side that placed the call
    /// counts 1-4, the side it was offered to 6-9 and 25; the network side mirrors
    /// the user's numbering.
    fn state_number(&self, c: &Call) -> u8 {
        let origin = c.outgoing == (self.cfg.side == Side::User);
        match c.phase {
            Phase::Initiated => {
                if origin {
                    1
                } else {
                    6
                }
            }
            Phase::Overlap => {
                if origin {
                    2
                } else {
                    25
                }
            }
            Phase::Proceeding => {
                if origin {
                    3
                } else {
                    9
                }
            }
            Phase::Alerting => {
                if origin {
                    4
                } else {
                    7
                }
            }
            Phase::ConnectRequest => 8,
            Phase::Active => 10,
            Phase::DisconnectRequest => 11,
            Phase::ReleaseRequest => 19,
        }
    }

    fn status(&mut self, cref: CallRef, state: u8, cause: u8) {
        let mut m = Message::new(
            CallRef {
                from_destination: !cref.from_destination,
                ..cref
            },
            MsgType::Status,
        );
        m.push(ie::CAUSE, Cause::new(cause).encode());
        m.push(ie::CALL_STATE, vec![state]);
        self.send(m);
    }

    fn release_complete(&mut self, cref: CallRef, cause: u8) {
        let mut m = Message::new(
            CallRef {
                from_destination: !cref.from_destination,
                ..cref
            },
            MsgType::ReleaseComplete,
        );
        m.push(ie::CAUSE, Cause::new(cause).encode());
        self.send(m);
    }

    /// A Q.931 message from the far end (the data of a LAPD I or UI frame).
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) {
        let m = match Message::parse(bytes) {
            Ok(m) => m,
            Err(DecodeError::Ignore(why)) => {
                tracing::debug!(why, "q931 ignored");
                return;
            }
            Err(DecodeError::Cause { cause, why }) => {
                self.events.push_back(Event::Error(why));
                if let Some((cref, mt)) = q931::header(bytes) {
                    self.answer_error(cref, MsgType::from_code(mt), cause);
                }
                return;
            }
        };
        tracing::debug!(msg = ?m.msg_type, cref = m.call_ref.value, "q931 in");
        if m.call_ref.len == 0 || m.call_ref.value == 0 {
            self.receive_global(m);
            return;
        }
        // A message with the flag set answers a call we allocated.
        let k = Self::key(m.call_ref.value, m.call_ref.from_destination);
        if !self.calls.contains_key(&k) {
            self.unknown_call(m);
            return;
        }
        self.receive_call(now, k, m);
    }

    fn answer_error(&mut self, cref: CallRef, mt: MsgType, cause: u8) {
        let k = Self::key(cref.value, cref.from_destination);
        match self.calls.get(&k) {
            Some(c) => {
                let s = self.state_number(c);
                self.status(cref, s, cause);
            }
            None if matches!(mt, MsgType::ReleaseComplete) || cref.value == 0 => {}
            None if matches!(mt, MsgType::Setup) && !cref.from_destination => {
                self.release_complete(cref, cause);
            }
            None => self.release_complete(cref, 81),
        }
    }

    fn receive_global(&mut self, m: Message) {
        match m.msg_type {
            MsgType::Restart => {
                let channel = m.channel().and_then(|c| c.channel);
                let all = m
                    .get(ie::RESTART_INDICATOR)
                    .and_then(|d| d.first())
                    .is_some_and(|r| r & 0x07 != 0);
                let which = if all { None } else { channel };
                self.clear_channels(which, 41);
                let mut ack = Message::new(
                    CallRef {
                        from_destination: true,
                        ..m.call_ref
                    },
                    MsgType::RestartAcknowledge,
                );
                ack.ies = m
                    .ies
                    .iter()
                    .filter(|e| e.id == ie::CHANNEL_ID || e.id == ie::RESTART_INDICATOR)
                    .cloned()
                    .collect();
                self.send(ack);
                self.events.push_back(Event::Restarted {
                    channel: which,
                    by_peer: true,
                    acknowledged: true,
                });
            }
            MsgType::RestartAcknowledge => {
                if let Some((ch, _, _)) = self.restart.take() {
                    self.events.push_back(Event::Restarted {
                        channel: ch,
                        by_peer: false,
                        acknowledged: true,
                    });
                }
            }
            MsgType::StatusEnquiry => self.status(m.call_ref, 0, 30),
            // STATUS, SERVICE and the like on the global reference: nothing to do.
            _ => {}
        }
    }

    fn unknown_call(&mut self, m: Message) {
        match m.msg_type {
            MsgType::Setup if !m.call_ref.from_destination => self.offered(m),
            MsgType::Setup | MsgType::ReleaseComplete => {}
            MsgType::StatusEnquiry => self.status(m.call_ref, 0, 30),
            MsgType::Status => {
                if call_state(&m).is_some_and(|s| s != 0) {
                    self.release_complete(m.call_ref, 101);
                }
            }
            _ => self.release_complete(m.call_ref, 81),
        }
    }

    /// A SETUP for a new call.
    fn offered(&mut self, m: Message) {
        if m.bearer().is_none() {
            self.events
                .push_back(Event::Error("SETUP without bearer capability".into()));
            self.release_complete(m.call_ref, 96);
            return;
        }
        let chan = m.channel();
        let busy = self.busy_channels();
        let channel = match chan.and_then(|c| c.channel) {
            Some(ch) if !self.cfg.channels.contains(&ch) => Err(82),
            Some(ch) if !busy.contains(&ch) => Ok(ch),
            Some(ch) if chan.is_some_and(|c| c.exclusive) => {
                // Glare: the network side's choice wins over a call we placed as the
                // user and that the network has not yet answered (Q.931 5.2.3.1).
                let ours = self.calls.iter().find(|(_, c)| {
                    c.channel == Some(ch) && c.outgoing && c.phase == Phase::Initiated
                });
                match ours {
                    Some((k, _)) if self.cfg.side == Side::User => {
                        let k = *k;
                        self.calls.get_mut(&k).unwrap().channel = None;
                        Ok(ch)
                    }
                    _ => Err(44),
                }
            }
            _ => self.free_channel(None).ok_or(34),
        };
        let channel = match channel {
            Ok(ch) => ch,
            Err(cause) => {
                self.release_complete(m.call_ref, cause);
                return;
            }
        };
        let id = self.new_id();
        let k = Self::key(m.call_ref.value, false);
        self.calls.insert(
            k,
            Call {
                id,
                cref: m.call_ref.value,
                outgoing: false,
                phase: Phase::Initiated,
                channel: Some(channel),
                timer: None,
                expiries: 0,
                setup: None,
                cause: 16,
                answered_setup: false,
                enquiry: None,
                ended: false,
            },
        );
        self.events.push_back(Event::Setup {
            call: id,
            channel,
            called: m.called().map(|c| c.digits).unwrap_or_default(),
            calling: m.calling(),
            complete: m.sending_complete(),
            display: m.display(),
        });
    }

    fn receive_call(&mut self, now: Instant, k: u32, m: Message) {
        let (id, phase, outgoing) = {
            let c = &self.calls[&k];
            (c.id, c.phase, c.outgoing)
        };
        let timers = self.cfg.timers;
        let clearing = matches!(phase, Phase::DisconnectRequest | Phase::ReleaseRequest);
        match m.msg_type {
            MsgType::StatusEnquiry => {
                let s = self.state_number(&self.calls[&k]);
                self.status(m.call_ref, s, 30);
            }
            MsgType::Status => {
                if call_state(&m) == Some(0) {
                    // The far end has no such call: ours is gone too.
                    let cause = m.cause().map_or(41, |c| c.value);
                    self.drop_call(k, cause);
                } else if let Some(c) = self.calls.get_mut(&k) {
                    // The far end still has the call: the enquiry is answered.
                    c.enquiry = None;
                }
            }
            MsgType::ReleaseComplete => {
                let cause = m.cause().map_or(16, |c| c.value);
                self.drop_call(k, cause);
            }
            MsgType::Release => {
                let cause = m.cause().map_or(16, |c| c.value);
                if phase != Phase::ReleaseRequest {
                    // Both sent RELEASE at once: neither answers (Q.931 5.3.5).
                    let mut rc = self.msg(&self.calls[&k], MsgType::ReleaseComplete);
                    if !m.has(ie::CAUSE) {
                        rc.push(ie::CAUSE, Cause::new(96).encode());
                    }
                    self.send(rc);
                }
                self.drop_call(k, cause);
            }
            MsgType::Disconnect => {
                let (cause, reply) = match m.cause() {
                    Some(c) => (c.value, c.value),
                    None => (31, 96),
                };
                if phase == Phase::ReleaseRequest {
                    return;
                }
                self.end(k, cause);
                self.release(now, k, reply);
            }
            _ if clearing => {
                // Late messages of a call being cleared are not answered.
            }
            MsgType::SetupAcknowledge if outgoing && phase == Phase::Initiated => {
                if !self.take_channel(now, k, &m) {
                    return;
                }
                let c = self.calls.get_mut(&k).unwrap();
                c.phase = Phase::Overlap;
                c.timer = Some((Timer::T304, now + timers.t304));
                self.events.push_back(Event::MoreDigits { call: id });
            }
            MsgType::CallProceeding
                if outgoing && matches!(phase, Phase::Initiated | Phase::Overlap) =>
            {
                if !self.take_channel(now, k, &m) {
                    return;
                }
                let c = self.calls.get_mut(&k).unwrap();
                c.phase = Phase::Proceeding;
                c.timer = Some((Timer::T310, now + timers.t310));
                self.events.push_back(Event::Proceeding { call: id });
            }
            MsgType::Alerting
                if outgoing
                    && matches!(phase, Phase::Initiated | Phase::Overlap | Phase::Proceeding) =>
            {
                if !self.take_channel(now, k, &m) {
                    return;
                }
                let c = self.calls.get_mut(&k).unwrap();
                c.phase = Phase::Alerting;
                c.timer = None;
                self.events.push_back(Event::Alerting {
                    call: id,
                    inband: inband(&m),
                });
            }
            MsgType::Progress if outgoing && phase != Phase::Active => {
                let c = self.calls.get_mut(&k).unwrap();
                if c.timer.is_some_and(|t| t.0 == Timer::T310) {
                    c.timer = None;
                }
                self.events.push_back(Event::Progress {
                    call: id,
                    inband: inband(&m),
                });
            }
            MsgType::Connect if outgoing && phase != Phase::Active => {
                if !self.take_channel(now, k, &m) {
                    return;
                }
                let c = self.calls.get_mut(&k).unwrap();
                c.phase = Phase::Active;
                c.timer = None;
                let ack = self.msg(&self.calls[&k], MsgType::ConnectAcknowledge);
                self.send(ack);
                self.events.push_back(Event::Answered { call: id });
            }
            MsgType::ConnectAcknowledge if !outgoing && phase == Phase::ConnectRequest => {
                let c = self.calls.get_mut(&k).unwrap();
                c.phase = Phase::Active;
                c.timer = None;
                self.events.push_back(Event::Connected { call: id });
            }
            // Some networks acknowledge a CONNECT the user did not wait for.
            MsgType::ConnectAcknowledge if phase == Phase::Active => {}
            MsgType::Information => {
                let digits = m.called().map(|c| c.digits).unwrap_or_default();
                let complete = m.sending_complete();
                if !outgoing && phase == Phase::Overlap {
                    let c = self.calls.get_mut(&k).unwrap();
                    c.timer = Some((Timer::T302, now + timers.t302));
                    self.events.push_back(Event::Digits {
                        call: id,
                        digits,
                        complete,
                    });
                } else if !outgoing && phase == Phase::Initiated {
                    // Digits before we asked for them: keep them for the exchange.
                    self.events.push_back(Event::Digits {
                        call: id,
                        digits,
                        complete,
                    });
                }
                // Otherwise (keypad in an active call, display updates): nothing to do.
            }
            MsgType::Notify | MsgType::Facility => {}
            MsgType::Progress => {}
            _ => {
                let s = self.state_number(&self.calls[&k]);
                self.events.push_back(Event::Error(format!(
                    "{:?} is not expected in call state {s}",
                    m.msg_type
                )));
                self.status(m.call_ref, s, 101);
            }
        }
    }

    /// The channel the network chose for our call (the first answer carries it).
    /// False when it cannot be used: the call is then being cleared with cause 44 and
    /// the answer must not move it on.
    fn take_channel(&mut self, now: Instant, k: u32, m: &Message) -> bool {
        let usable = match m.channel().and_then(|c| c.channel) {
            // No channel named: the one we asked for stands, if glare left us one.
            None => self.calls[&k].channel.is_some(),
            Some(ch) => {
                self.cfg.channels.contains(&ch)
                    && !self
                        .calls
                        .iter()
                        .any(|(kk, c)| *kk != k && c.channel == Some(ch))
            }
        };
        if !usable {
            self.fail(now, k, 44);
            return false;
        }
        if let Some(ch) = m.channel().and_then(|c| c.channel) {
            self.calls.get_mut(&k).unwrap().channel = Some(ch);
        }
        true
    }

    /// Reports the call's end to the exchange and clears it towards the far end.
    fn fail(&mut self, now: Instant, k: u32, cause: u8) {
        self.end(k, cause);
        let id = self.calls[&k].id;
        self.hangup(now, id, cause);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((ch, at, n)) = self.restart {
            if at <= now {
                if n < 2 {
                    self.restart = Some((ch, now + self.cfg.timers.t316, n + 1));
                    self.send_restart(ch);
                } else {
                    self.restart = None;
                    self.events.push_back(Event::Restarted {
                        channel: ch,
                        by_peer: false,
                        acknowledged: false,
                    });
                }
            }
        }
        let asked: Vec<(u32, u8)> = self
            .calls
            .iter()
            .filter_map(|(k, c)| c.enquiry.filter(|e| e.0 <= now).map(|e| (*k, e.1)))
            .collect();
        for (k, sent) in asked {
            let c = self.calls.get_mut(&k).unwrap();
            c.enquiry = None;
            // A call being cleared, or ended meanwhile, needs no answer any more.
            if c.clearing() {
                continue;
            }
            if sent < 2 {
                self.enquire(now, k, sent);
            } else {
                // No STATUS after two enquiries (Q.931 5.8.10): the call is cleared.
                self.fail(now, k, 41);
            }
        }
        let due: Vec<(u32, Timer)> = self
            .calls
            .iter()
            .filter_map(|(k, c)| c.timer.filter(|t| t.1 <= now).map(|t| (*k, t.0)))
            .collect();
        for (k, t) in due {
            let Some(c) = self.calls.get_mut(&k) else {
                continue;
            };
            c.timer = None;
            let id = c.id;
            match t {
                Timer::T303 => {
                    c.expiries += 1;
                    if c.expiries < 2 {
                        c.timer = Some((Timer::T303, now + self.cfg.timers.t303));
                        if let Some(s) = c.setup.clone() {
                            self.send(s);
                        }
                    } else {
                        let mut m = self.msg(&self.calls[&k], MsgType::ReleaseComplete);
                        m.push(ie::CAUSE, Cause::new(102).encode());
                        self.send(m);
                        self.drop_call(k, 102);
                    }
                }
                Timer::T302 => self.events.push_back(Event::Digits {
                    call: id,
                    digits: String::new(),
                    complete: true,
                }),
                Timer::T304 | Timer::T310 | Timer::T313 => self.fail(now, k, 102),
                Timer::T305 => {
                    let cause = c.cause;
                    self.release(now, k, cause);
                }
                Timer::T308 => {
                    let c = self.calls.get_mut(&k).unwrap();
                    c.expiries += 1;
                    if c.expiries < 2 {
                        c.timer = Some((Timer::T308, now + self.cfg.timers.t308));
                        let cause = c.cause;
                        let mut m = self.msg(&self.calls[&k], MsgType::Release);
                        m.push(ie::CAUSE, Cause::new(cause).encode());
                        self.send(m);
                    } else {
                        self.drop_call(k, 102);
                    }
                }
                Timer::T309 => self.drop_call(k, 27),
            }
        }
    }
}
