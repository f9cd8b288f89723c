//! libpri as the far end of our ISDN stack, for tests only (libpri is GPL; this crate
//! never goes into the image). libpri runs with `pri_new_cb` on one end of a
//! SOCK_SEQPACKET socketpair; our sans-IO [`isdn::q921::Lapd`] on the other, driven on
//! the real clock. libpri's frames carry two FCS octets that DAHDI would compute: the
//! callbacks add and strip them.

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
}

pub const PRI_NETWORK: c_int = 1;
pub const PRI_CPE: c_int = 2;
pub const PRI_SWITCH_NI2: c_int = 1;
pub const PRI_SWITCH_EUROISDN_E1: c_int = 5;
pub const PRI_EVENT_DCHAN_UP: c_int = 1;
pub const PRI_EVENT_DCHAN_DOWN: c_int = 2;
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

/// One libpri instance and our link, joined.
pub struct Peer {
    pri: *mut Pri,
    theirs: OwnedFd,
    ours: OwnedFd,
    /// libpri's event types, in order.
    pub pri_events: Vec<c_int>,
    /// Our link's events, in order.
    pub our_events: Vec<Event>,
    /// While set, every frame is lost both ways.
    pub cut: bool,
}

impl Peer {
    /// libpri on a PRI (`nodetype` PRI_NETWORK or PRI_CPE).
    pub fn pri(nodetype: c_int, switchtype: c_int) -> Peer {
        Self::make(|fd| unsafe {
            pri_new_cb(
                fd,
                nodetype,
                switchtype,
                read_cb,
                write_cb,
                std::ptr::null_mut(),
            )
        })
    }

    /// libpri on a BRI, point-to-multipoint when `ptmp`.
    pub fn bri(nodetype: c_int, switchtype: c_int, ptmp: bool) -> Peer {
        Self::make(|fd| unsafe {
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

    fn make(new: impl FnOnce(c_int) -> *mut Pri) -> Peer {
        let (theirs, ours) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .expect("socketpair");
        // SAFETY: registering plain function pointers.
        unsafe {
            pri_set_message(log_cb);
            pri_set_error(log_cb);
        }
        let pri = new(theirs.as_raw_fd());
        assert!(!pri.is_null(), "libpri refused to start");
        unsafe { pri_set_debug(pri, PRI_DEBUG_Q921_STATE) };
        Peer {
            pri,
            theirs,
            ours,
            pri_events: Vec::new(),
            our_events: Vec::new(),
            cut: false,
        }
    }

    fn note(&mut self, e: *mut c_int) {
        if !e.is_null() {
            // SAFETY: every pri_event starts with its type.
            self.pri_events.push(unsafe { *e });
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

    /// Runs both ends for `d` (or until `done` says so), moving frames and firing timers.
    pub fn run(&mut self, lapd: &mut Lapd, d: Duration, mut done: impl FnMut(&Peer) -> bool) {
        let end = Instant::now() + d;
        let mut buf = [0u8; 512];
        loop {
            while let Some(f) = lapd.poll_transmit() {
                if !self.cut {
                    let _ = nix::unistd::write(&self.ours, &f);
                }
            }
            while let Some(e) = lapd.poll_event() {
                self.our_events.push(e);
            }
            let now = Instant::now();
            if now >= end || done(self) {
                return;
            }
            let next = [lapd.poll_timeout(), self.pri_next(), Some(end)]
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
                    PollFd::new(self.ours.as_fd(), PollFlags::POLLIN),
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
                if let Ok(n) = nix::unistd::read(self.ours.as_raw_fd(), &mut buf) {
                    if !self.cut && n > 0 {
                        lapd.receive(Instant::now(), &buf[..n]);
                    }
                }
            }
            if self.pri_next().is_some_and(|t| t <= Instant::now()) {
                let e = unsafe { pri_schedule_run(self.pri) };
                self.note(e);
            }
            if lapd.poll_timeout().is_some_and(|t| t <= Instant::now()) {
                lapd.handle_timeout(Instant::now());
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
}
