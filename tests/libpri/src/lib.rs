//! libpri as the far end of our ISDN stack, for tests only (libpri is GPL; this crate
//! never goes into the image). libpri runs with `pri_new_cb` on one end of a
//! SOCK_SEQPACKET socketpair; our sans-IO [`isdn::q921::Lapd`] on the other, driven on
//! the real clock. libpri's frames carry two FCS octets that DAHDI would compute: the
//! callbacks add and strip them.

use isdn::call;
use isdn::dchan::Dchannel;
use isdn::q921::{Event, Lapd};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[repr(C)]
pub struct Pri {
    _private: [u8; 0],
}

type IoCb = extern "C" fn(*mut Pri, *mut c_void, c_int) -> c_int;

extern "C" {
    fn pri_new_cb(
        fd: c_int,
        nodetype: c_int,
        switchtype: c_int,
        rd: IoCb,
        wr: IoCb,
        userdata: *mut c_void,
    ) -> *mut Pri;
    fn pri_new_bri_cb(
        fd: c_int,
        ptpmode: c_int,
        nodetype: c_int,
        switchtype: c_int,
        rd: IoCb,
        wr: IoCb,
        userdata: *mut c_void,
    ) -> *mut Pri;
    fn pri_check_event(pri: *mut Pri) -> *mut c_int;
    fn pri_schedule_next(pri: *mut Pri) -> *const libc::timeval;
    fn pri_schedule_run(pri: *mut Pri) -> *mut c_int;
    fn pri_fd(pri: *mut Pri) -> c_int;
    fn pri_set_message(cb: extern "C" fn(*mut Pri, *mut c_char));
    fn pri_set_error(cb: extern "C" fn(*mut Pri, *mut c_char));
    fn pri_set_debug(pri: *mut Pri, debug: c_int);
    fn pri_new_call(pri: *mut Pri) -> *mut Q931Call;
    fn pri_sr_new() -> *mut c_void;
    fn pri_sr_free(sr: *mut c_void);
    fn pri_sr_set_channel(
        sr: *mut c_void,
        channel: c_int,
        exclusive: c_int,
        nonisdn: c_int,
    ) -> c_int;
    fn pri_sr_set_bearer(sr: *mut c_void, transmode: c_int, userl1: c_int) -> c_int;
    fn pri_sr_set_called(
        sr: *mut c_void,
        called: *const c_char,
        plan: c_int,
        complete: c_int,
    ) -> c_int;
    fn pri_sr_set_caller(
        sr: *mut c_void,
        caller: *const c_char,
        name: *const c_char,
        plan: c_int,
        pres: c_int,
    ) -> c_int;
    fn pri_setup(pri: *mut Pri, call: *mut Q931Call, sr: *mut c_void) -> c_int;
    fn pri_answer(pri: *mut Pri, call: *mut Q931Call, channel: c_int, nonisdn: c_int) -> c_int;
    fn pri_acknowledge(pri: *mut Pri, call: *mut Q931Call, channel: c_int, info: c_int) -> c_int;
    fn pri_proceeding(pri: *mut Pri, call: *mut Q931Call, channel: c_int, info: c_int) -> c_int;
    fn pri_need_more_info(
        pri: *mut Pri,
        call: *mut Q931Call,
        channel: c_int,
        nonisdn: c_int,
    ) -> c_int;
    fn pri_information(pri: *mut Pri, call: *mut Q931Call, digit: c_char) -> c_int;
    fn pri_hangup(pri: *mut Pri, call: *mut Q931Call, cause: c_int) -> c_int;
    fn pri_restart(pri: *mut Pri) -> c_int;
    fn pri_reset(pri: *mut Pri, channel: c_int) -> c_int;
    fn pri_set_overlapdial(pri: *mut Pri, state: c_int);
    fn shim_event(ev: *const c_int, out: *mut ShimEvent);
}

/// libpri's opaque call.
#[repr(C)]
pub struct Q931Call {
    _private: [u8; 0],
}

/// A libpri call as libpri handed it out (only libpri's own events and
/// [`Peer::call`] make one, so every pointer in here came from libpri).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PriCall(*mut Q931Call);

#[repr(C)]
struct ShimEvent {
    e: c_int,
    channel: c_int,
    cause: c_int,
    complete: c_int,
    flexible: c_int,
    call: *mut Q931Call,
    called: [c_char; 64],
    calling: [c_char; 64],
}

/// One libpri event, flattened by shim.c.
#[derive(Debug, Clone)]
pub struct PriEvent {
    pub e: c_int,
    /// The B-channel (-1 when the event names none).
    pub channel: c_int,
    pub cause: c_int,
    pub complete: bool,
    /// The channel was only preferred: another one will do.
    pub flexible: bool,
    pub call: PriCall,
    pub called: String,
    pub calling: String,
}

impl PriEvent {
    fn from_raw(e: *const c_int) -> PriEvent {
        let mut o = ShimEvent {
            e: 0,
            channel: -1,
            cause: 0,
            complete: 0,
            flexible: 0,
            call: std::ptr::null_mut(),
            called: [0; 64],
            calling: [0; 64],
        };
        // SAFETY: `e` is the event libpri just returned; the shim only reads it.
        unsafe { shim_event(e, &mut o) };
        let s = |b: &[c_char; 64]| {
            unsafe { CStr::from_ptr(b.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        PriEvent {
            e: o.e,
            // libpri adds the span and an "explicit" flag above the channel number.
            channel: if o.channel < 0 { -1 } else { o.channel & 0xff },
            cause: o.cause,
            complete: o.complete != 0,
            flexible: o.flexible != 0,
            call: PriCall(o.call),
            called: s(&o.called),
            calling: s(&o.calling),
        }
    }
}

pub const PRI_NETWORK: c_int = 1;
pub const PRI_CPE: c_int = 2;
pub const PRI_SWITCH_NI2: c_int = 1;
pub const PRI_SWITCH_EUROISDN_E1: c_int = 5;
pub const PRI_EVENT_DCHAN_UP: c_int = 1;
pub const PRI_EVENT_DCHAN_DOWN: c_int = 2;
pub const PRI_EVENT_RESTART: c_int = 3;
pub const PRI_EVENT_RING: c_int = 5;
pub const PRI_EVENT_HANGUP: c_int = 6;
pub const PRI_EVENT_RINGING: c_int = 7;
pub const PRI_EVENT_ANSWER: c_int = 8;
pub const PRI_EVENT_HANGUP_ACK: c_int = 9;
pub const PRI_EVENT_RESTART_ACK: c_int = 10;
pub const PRI_EVENT_INFO_RECEIVED: c_int = 12;
pub const PRI_EVENT_PROCEEDING: c_int = 13;
pub const PRI_EVENT_SETUP_ACK: c_int = 14;
pub const PRI_EVENT_HANGUP_REQ: c_int = 15;
pub const PRI_EVENT_CONNECT_ACK: c_int = 27;
const PRI_TRANS_CAP_SPEECH: c_int = 0;
const PRI_LAYER_1_ALAW: c_int = 0x23;
const PRI_LAYER_1_ULAW: c_int = 0x22;
const PRI_UNKNOWN: c_int = 0;
pub const PRI_DEBUG_Q921_STATE: c_int = 1 << 2;

/// What libpri printed, for failure messages.
static LOG: Mutex<String> = Mutex::new(String::new());

extern "C" fn log_cb(_: *mut Pri, s: *mut c_char) {
    // SAFETY: libpri hands a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(s) }.to_string_lossy();
    let mut l = LOG.lock().unwrap_or_else(|p| p.into_inner());
    if l.len() < 200_000 {
        l.push_str(&s);
    }
}

/// libpri's text so far (all instances in this process).
pub fn libpri_log() -> String {
    LOG.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

extern "C" fn read_cb(pri: *mut Pri, buf: *mut c_void, len: c_int) -> c_int {
    // SAFETY: libpri passes a buffer of `len` bytes and its own fd.
    let fd = unsafe { pri_fd(pri) };
    let n = unsafe { libc::read(fd, buf, (len as usize).saturating_sub(2)) };
    if n <= 0 {
        return 0;
    }
    // Two FCS octets, as DAHDI delivers them.
    unsafe {
        let b = buf as *mut u8;
        *b.add(n as usize) = 0;
        *b.add(n as usize + 1) = 0;
    }
    n as c_int + 2
}

extern "C" fn write_cb(pri: *mut Pri, buf: *mut c_void, len: c_int) -> c_int {
    // SAFETY: as above; the last two octets are room for the FCS.
    let fd = unsafe { pri_fd(pri) };
    let n = (len as usize).saturating_sub(2);
    let r = unsafe { libc::write(fd, buf, n) };
    if r < 0 {
        return -1;
    }
    len
}

/// Our end of the line: LAPD alone, or a whole D-channel with call control.
pub trait Ours {
    fn transmit(&mut self) -> Option<Vec<u8>>;
    fn input(&mut self, now: Instant, frame: &[u8]);
    fn next_timeout(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
}

impl Ours for Lapd {
    fn transmit(&mut self) -> Option<Vec<u8>> {
        self.poll_transmit()
    }
    fn input(&mut self, now: Instant, frame: &[u8]) {
        self.receive(now, frame)
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn fire(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
}

impl Ours for Dchannel {
    fn transmit(&mut self) -> Option<Vec<u8>> {
        self.pump(Instant::now());
        self.poll_transmit()
    }
    fn input(&mut self, now: Instant, frame: &[u8]) {
        self.receive(now, frame)
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn fire(&mut self, now: Instant) {
        self.handle_timeout(now)
    }
}

/// What the call loop hands the test: one event from either side.
#[derive(Debug, Clone)]
pub enum Input {
    Pri(PriEvent),
    Ours(call::Event),
}

/// Starts libpri on a PRI D-channel descriptor.
fn pri_on(nodetype: c_int, switchtype: c_int) -> impl FnOnce(c_int) -> *mut Pri {
    move |fd| {
        // SAFETY: the descriptor stays open for the Peer's life; the callbacks are
        // plain functions.
        unsafe {
            pri_new_cb(
                fd,
                nodetype,
                switchtype,
                read_cb,
                write_cb,
                std::ptr::null_mut(),
            )
        }
    }
}

/// One libpri instance and our end, joined.
pub struct Peer {
    pri: *mut Pri,
    theirs: OwnedFd,
    /// Our end of the socketpair (none when libpri faces pbxd's virtual span).
    ours: Option<OwnedFd>,
    alaw: bool,
    /// libpri's event types, in order.
    pub pri_events: Vec<c_int>,
    pending: std::collections::VecDeque<PriEvent>,
    /// Our link's events, in order.
    pub our_events: Vec<Event>,
    /// While set, every frame is lost both ways.
    pub cut: bool,
}

impl Peer {
    /// libpri on a PRI (`nodetype` PRI_NETWORK or PRI_CPE).
    pub fn pri(nodetype: c_int, switchtype: c_int) -> Peer {
        Self::make(switchtype, pri_on(nodetype, switchtype))
    }

    /// libpri on a BRI, point-to-multipoint when `ptmp`.
    pub fn bri(nodetype: c_int, switchtype: c_int, ptmp: bool) -> Peer {
        Self::make(switchtype, |fd| unsafe {
            pri_new_bri_cb(
                fd,
                c_int::from(!ptmp),
                nodetype,
                switchtype,
                read_cb,
                write_cb,
                std::ptr::null_mut(),
            )
        })
    }

    /// libpri on a PRI connected to a virtual span's D-channel socket (pbxd listens
    /// there; docs/isdn.md).
    pub fn connect(path: &std::path::Path, nodetype: c_int, switchtype: c_int) -> Peer {
        let fd = nix::sys::socket::socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .expect("socket");
        let addr = nix::sys::socket::UnixAddr::new(path).expect("path");
        // The socket's file appears at bind, a moment before pbxd listens on it: a
        // refusal then is tried again (for 5 s), anything else is an error at once.
        let t0 = std::time::Instant::now();
        loop {
            match nix::sys::socket::connect(fd.as_raw_fd(), &addr) {
                Ok(()) => break,
                Err(nix::errno::Errno::ECONNREFUSED)
                    if t0.elapsed() < std::time::Duration::from_secs(5) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("connect {}: {e}", path.display()),
            }
        }
        Self::with_fd(switchtype, fd, None, pri_on(nodetype, switchtype))
    }

    fn make(switchtype: c_int, new: impl FnOnce(c_int) -> *mut Pri) -> Peer {
        let (theirs, ours) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .expect("socketpair");
        Self::with_fd(switchtype, theirs, Some(ours), new)
    }

    fn with_fd(
        switchtype: c_int,
        theirs: OwnedFd,
        ours: Option<OwnedFd>,
        new: impl FnOnce(c_int) -> *mut Pri,
    ) -> Peer {
        // SAFETY: registering plain function pointers.
        unsafe {
            pri_set_message(log_cb);
            pri_set_error(log_cb);
        }
        let pri = new(theirs.as_raw_fd());
        assert!(!pri.is_null(), "libpri refused to start");
        // LIBPRI_DEBUG (libpri's PRI_DEBUG_* bits) shows more when a test is studied.
        let debug = std::env::var("LIBPRI_DEBUG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(PRI_DEBUG_Q921_STATE);
        unsafe { pri_set_debug(pri, debug) };
        Peer {
            pri,
            theirs,
            ours,
            alaw: switchtype == PRI_SWITCH_EUROISDN_E1,
            pri_events: Vec::new(),
            pending: Default::default(),
            our_events: Vec::new(),
            cut: false,
        }
    }

    fn note(&mut self, e: *mut c_int) {
        if !e.is_null() {
            let ev = PriEvent::from_raw(e);
            self.pri_events.push(ev.e);
            self.pending.push_back(ev);
        }
    }

    /// libpri's next timer on our clock.
    fn pri_next(&self) -> Option<Instant> {
        // SAFETY: libpri returns NULL or a pointer to its own timeval.
        let tv = unsafe { pri_schedule_next(self.pri) };
        if tv.is_null() {
            return None;
        }
        let tv = unsafe { *tv };
        let at = Duration::new(tv.tv_sec as u64, (tv.tv_usec as u32) * 1000);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        Some(Instant::now() + at.saturating_sub(now))
    }

    /// Moves frames and fires timers on both ends, waiting at most until `end`.
    fn step(&mut self, o: &mut impl Ours, end: Instant) {
        let ours = self.ours.take().expect("a socketpair peer");
        self.step_with(o, end, &ours);
        self.ours = Some(ours);
    }

    fn step_with(&mut self, o: &mut impl Ours, end: Instant, ours: &OwnedFd) {
        let mut buf = [0u8; 512];
        while let Some(f) = o.transmit() {
            if !self.cut {
                let _ = nix::unistd::write(ours, &f);
            }
        }
        let now = Instant::now();
        let next = [o.next_timeout(), self.pri_next(), Some(end)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end);
        let wait = next
            .saturating_duration_since(now)
            .min(Duration::from_millis(200));
        let ms = wait.as_millis().max(1) as u16;
        let (theirs_ready, ours_ready) = {
            let mut fds = [
                PollFd::new(self.theirs.as_fd(), PollFlags::POLLIN),
                PollFd::new(ours.as_fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, PollTimeout::from(ms));
            let r = |f: &PollFd| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
            (r(&fds[0]), r(&fds[1]))
        };
        if theirs_ready {
            let e = unsafe { pri_check_event(self.pri) };
            self.note(e);
        }
        if ours_ready {
            while let Ok(n) = nix::unistd::read(ours.as_raw_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
                if !self.cut {
                    o.input(Instant::now(), &buf[..n]);
                }
            }
        }
        if self.pri_next().is_some_and(|t| t <= Instant::now()) {
            let e = unsafe { pri_schedule_run(self.pri) };
            self.note(e);
        }
        if o.next_timeout().is_some_and(|t| t <= Instant::now()) {
            o.fire(Instant::now());
        }
    }

    /// Runs both ends for `d` (or until `done` says so), moving frames and firing timers.
    pub fn run(&mut self, lapd: &mut Lapd, d: Duration, mut done: impl FnMut(&Peer) -> bool) {
        let end = Instant::now() + d;
        loop {
            while let Some(e) = lapd.poll_event() {
                self.our_events.push(e);
            }
            self.pending.clear();
            if Instant::now() >= end || done(self) {
                return;
            }
            self.step(lapd, end);
        }
    }

    /// Runs libpri and our D-channel for at most `d`, handing every event of either
    /// side to `app`, which acts on them and returns true when the test is done.
    /// Returns whether it was.
    pub fn drive(
        &mut self,
        dch: &mut Dchannel,
        d: Duration,
        mut app: impl FnMut(&mut Peer, &mut Dchannel, Option<Input>) -> bool,
    ) -> bool {
        let end = Instant::now() + d;
        loop {
            let mut inputs: Vec<Input> = self.pending.drain(..).map(Input::Pri).collect();
            while let Some(e) = dch.poll_event() {
                inputs.push(Input::Ours(e));
            }
            // Every event of a batch is handed over before `done` is believed.
            let mut done = false;
            for i in inputs {
                done |= app(self, dch, Some(i));
            }
            if done || app(self, dch, None) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            self.step(dch, end);
        }
    }

    /// Runs libpri alone (facing pbxd) for at most `d`, handing each of its events to
    /// `app`, which returns true when the test is done. Returns whether it was.
    pub fn serve(
        &mut self,
        d: Duration,
        mut app: impl FnMut(&mut Peer, Option<PriEvent>) -> bool,
    ) -> bool {
        let end = Instant::now() + d;
        loop {
            let evs: Vec<PriEvent> = self.pending.drain(..).collect();
            let mut done = false;
            for e in evs {
                done |= app(self, Some(e));
            }
            if done || app(self, None) {
                return true;
            }
            let now = Instant::now();
            if now >= end {
                return false;
            }
            let next = self.pri_next().unwrap_or(end).min(end);
            let ms = next
                .saturating_duration_since(now)
                .min(Duration::from_millis(50))
                .as_millis()
                .max(1) as u16;
            let ready = {
                let mut fds = [PollFd::new(self.theirs.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms));
                fds[0]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            };
            if ready {
                let e = unsafe { pri_check_event(self.pri) };
                self.note(e);
            }
            if self.pri_next().is_some_and(|t| t <= Instant::now()) {
                let e = unsafe { pri_schedule_run(self.pri) };
                self.note(e);
            }
        }
    }

    /// Whether libpri's last D-channel event says up.
    pub fn pri_up(&self) -> bool {
        self.pri_events
            .iter()
            .rev()
            .find(|e| **e == PRI_EVENT_DCHAN_UP || **e == PRI_EVENT_DCHAN_DOWN)
            == Some(&PRI_EVENT_DCHAN_UP)
    }

    /// libpri places a call: en-bloc when `complete`, else overlap (send the rest
    /// with [`Peer::information`] after SETUP ACKNOWLEDGE).
    pub fn call(
        &mut self,
        called: &str,
        calling: &str,
        channel: c_int,
        exclusive: bool,
        complete: bool,
    ) -> PriCall {
        let called = std::ffi::CString::new(called).unwrap();
        let calling = std::ffi::CString::new(calling).unwrap();
        // SAFETY: libpri owns the call and the request; the strings outlive the calls.
        unsafe {
            let c = pri_new_call(self.pri);
            assert!(!c.is_null());
            let sr = pri_sr_new();
            pri_sr_set_channel(sr, channel, c_int::from(exclusive), 0);
            let l1 = if self.alaw {
                PRI_LAYER_1_ALAW
            } else {
                PRI_LAYER_1_ULAW
            };
            pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, l1);
            pri_sr_set_called(sr, called.as_ptr(), PRI_UNKNOWN, c_int::from(complete));
            pri_sr_set_caller(sr, calling.as_ptr(), std::ptr::null(), PRI_UNKNOWN, 0);
            let r = pri_setup(self.pri, c, sr);
            pri_sr_free(sr);
            assert_eq!(r, 0, "pri_setup failed\n{}", libpri_log());
            PriCall(c)
        }
    }

    pub fn answer(&mut self, call: PriCall, channel: c_int) {
        unsafe { pri_answer(self.pri, call.0, channel, 0) };
    }

    pub fn proceeding(&mut self, call: PriCall, channel: c_int) {
        unsafe { pri_proceeding(self.pri, call.0, channel, 0) };
    }

    /// ALERTING.
    pub fn alerting(&mut self, call: PriCall, channel: c_int) {
        unsafe { pri_acknowledge(self.pri, call.0, channel, 1) };
    }

    /// SETUP ACKNOWLEDGE: libpri wants more digits.
    pub fn need_more_info(&mut self, call: PriCall, channel: c_int) {
        unsafe { pri_need_more_info(self.pri, call.0, channel, 0) };
    }

    /// INFORMATION, one digit each.
    pub fn information(&mut self, call: PriCall, digits: &str) {
        for d in digits.bytes() {
            unsafe { pri_information(self.pri, call.0, d as c_char) };
        }
    }

    pub fn hangup(&mut self, call: PriCall, cause: c_int) {
        unsafe { pri_hangup(self.pri, call.0, cause) };
    }

    /// RESTART of the whole interface.
    pub fn restart(&mut self) {
        unsafe { pri_restart(self.pri) };
    }

    /// RESTART of one channel.
    pub fn reset(&mut self, channel: c_int) {
        unsafe { pri_reset(self.pri, channel) };
    }

    pub fn set_overlap(&mut self, on: bool) {
        unsafe { pri_set_overlapdial(self.pri, c_int::from(on)) };
    }
}
