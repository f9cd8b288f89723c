//! The DAHDI span driver: a PRI or BRI card's span as DAHDI presents it after
//! `dahdi_cfg` has read `/etc/dahdi/system.conf` (`bchan=` and `dchan=` or
//! `hardhdlc=`).
//!
//! - The span's channels are found by asking `/dev/dahdi/ctl` for the parameters of each
//!   channel number (`DAHDI_GET_PARAMS`): those on our span, by position. The D-channel
//!   must sit at position 16 (E1), 24 (T1) or 3 (BRI) with HDLC signalling; every
//!   position signalled as a clear channel is a B-channel, numbered as Q.931 numbers it
//!   (its position), so a fractional span offers only what it has.
//! - The D-channel is a `/dev/dahdi/channel` descriptor bound with `DAHDI_SPECIFY`. Each
//!   read is one HDLC frame followed by its two FCS octets (DAHDI checked them and drops
//!   bad frames); each write is one frame followed by two FCS octets, which we compute
//!   (DAHDI replaces them with its own). A read that fails with `ELAST` means an event is
//!   waiting (`DAHDI_GETEVENT`): alarms and HDLC errors.
//! - A B-channel is read and written in 160-octet blocks (20 ms) of the span's law:
//!   A-law on E1, u-law on T1, linear off, audio mode on.
//! - The span's alarms come from `DAHDI_SPANSTAT`, read when DAHDI signals an alarm
//!   change and every few seconds, and are shown as the interface's state.

use config::IsdnLine;
use dahdi_sys as d;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Where DAHDI's device nodes are (`PBX_DAHDI_DEV` moves it, for tests).
pub fn dev_dir() -> PathBuf {
    std::env::var_os("PBX_DAHDI_DEV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/dahdi"))
}

/// Octets per B-channel read and write: 20 ms at 8 kHz.
pub const BLOCK: usize = 160;

/// DAHDI's "an event is waiting" errno (`ELAST` in dahdi/user.h).
const ELAST: i32 = 500;

/// The HDLC frame check sequence (CRC-16/X.25, ISO 3309): reflected polynomial
/// 0x8408, initial value and final XOR 0xffff.
pub fn fcs16(data: &[u8]) -> u16 {
    let mut fcs: u16 = 0xffff;
    for &b in data {
        fcs ^= b as u16;
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 {
                (fcs >> 1) ^ 0x8408
            } else {
                fcs >> 1
            };
        }
    }
    !fcs
}

/// A Q.921 frame as it is written to a DAHDI D-channel: the frame, then its FCS, low
/// octet first.
pub fn with_fcs(frame: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(frame.len() + 2);
    v.extend_from_slice(frame);
    v.extend_from_slice(&fcs16(frame).to_le_bytes());
    v
}

/// The Q.921 frame in what a DAHDI D-channel read returned, without its two FCS octets;
/// `None` when it is too short to hold an address, a control field and an FCS.
pub fn strip_fcs(read: &[u8]) -> Option<&[u8]> {
    (read.len() >= 3 + 2).then(|| &read[..read.len() - 2])
}

/// One DAHDI channel as `DAHDI_GET_PARAMS` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChanInfo {
    pub channo: i32,
    pub spanno: i32,
    pub chanpos: i32,
    pub sigtype: u32,
}

/// Which DAHDI channels carry a span's D-channel and B-channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The D-channel's DAHDI channel number.
    pub dchan: i32,
    /// Q.931 channel number (the position in the span) to DAHDI channel number.
    pub bchans: BTreeMap<u8, i32>,
}

fn is_hdlc(sig: u32) -> bool {
    sig & d::DAHDI_SIG_HDLCFCS == d::DAHDI_SIG_HDLCFCS
        || sig & d::DAHDI_SIG_HARDHDLC == d::DAHDI_SIG_HARDHDLC
}

fn is_clear(sig: u32) -> bool {
    sig == d::DAHDI_SIG_CLEAR
}

fn conf_hint(line: IsdnLine) -> &'static str {
    match line {
        IsdnLine::E1 => "bchan=1-15,17-31 and dchan=16",
        IsdnLine::T1 => "bchan=1-23 and dchan=24",
        IsdnLine::Bri => "bchan=1-2 and hardhdlc=3",
    }
}

/// Works out the span's channels from what DAHDI says of every channel; the error says
/// what to change in `/etc/dahdi/system.conf`.
pub fn plan(span: u32, line: IsdnLine, chans: &[ChanInfo]) -> Result<Plan, String> {
    let ours: Vec<&ChanInfo> = chans.iter().filter(|c| c.spanno == span as i32).collect();
    if ours.is_empty() {
        return Err(format!(
            "DAHDI has no channels on span {span}: is the card's driver loaded and \
             dahdi_cfg run?"
        ));
    }
    let dpos = match line {
        IsdnLine::E1 => 16,
        IsdnLine::T1 => 24,
        IsdnLine::Bri => 3,
    };
    let hint = conf_hint(line);
    let Some(dch) = ours.iter().find(|c| c.chanpos == dpos) else {
        return Err(format!(
            "span {span} has no channel {dpos} for the D-channel: is it a {} span? \
             (system.conf: {hint})",
            line_name(line)
        ));
    };
    if !is_hdlc(dch.sigtype) {
        return Err(format!(
            "channel {dpos} of span {span} (DAHDI channel {}) is not an HDLC D-channel \
             (system.conf: {hint})",
            dch.channo
        ));
    }
    let mut bchans = BTreeMap::new();
    for pos in line.channels() {
        if let Some(c) = ours.iter().find(|c| c.chanpos == pos as i32) {
            if is_clear(c.sigtype) {
                bchans.insert(pos, c.channo);
            }
        }
    }
    if bchans.is_empty() {
        return Err(format!(
            "span {span} has no B-channels configured (system.conf: {hint})"
        ));
    }
    let last = line
        .channels()
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(dpos as u8) as i32;
    if let Some(extra) = ours.iter().find(|c| c.chanpos > last) {
        return Err(format!(
            "span {span} has channel {} beyond the D-channel: is it a {} span?",
            extra.chanpos,
            line_name(line)
        ));
    }
    Ok(Plan {
        dchan: dch.channo,
        bchans,
    })
}

fn line_name(line: IsdnLine) -> &'static str {
    match line {
        IsdnLine::E1 => "E1",
        IsdnLine::T1 => "T1",
        IsdnLine::Bri => "BRI",
    }
}

/// The alarms of a span as the interface's state: `None` when there are none.
pub fn alarm_text(alarms: u32) -> Option<String> {
    let names = d::alarm_names(alarms);
    (!names.is_empty()).then(|| format!("alarm: {}", names.join(", ")))
}

fn dahdi_err(what: &str, path: &Path, e: nix::Error) -> io::Error {
    let hint = match e {
        nix::Error::ENOTTY | nix::Error::EINVAL => " (not a DAHDI device?)",
        nix::Error::ENOENT | nix::Error::ENXIO | nix::Error::ENODEV => {
            " (is DAHDI loaded and the span configured?)"
        }
        _ => "",
    };
    io::Error::other(format!("{what} on {}: {e}{hint}", path.display()))
}

fn open(path: &Path) -> io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| dahdi_err("open", path, e))?;
    // SAFETY: open returned a new descriptor that we now own.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// `/dev/dahdi/ctl`: span status and channel parameters.
pub struct Ctl {
    fd: OwnedFd,
    path: PathBuf,
}

impl Ctl {
    pub fn open(dir: &Path) -> io::Result<Ctl> {
        let path = dir.join("ctl");
        Ok(Ctl {
            fd: open(&path)?,
            path,
        })
    }

    /// The span's alarms and how many channels it has.
    pub fn span_stat(&self, span: u32) -> io::Result<(u32, i32)> {
        let mut info = d::dahdi_spaninfo {
            spanno: span as c_int,
            ..Default::default()
        };
        // SAFETY: the descriptor is DAHDI's control device and `info` is the structure
        // DAHDI_SPANSTAT reads and fills.
        unsafe { d::span_stat(self.fd.as_raw_fd(), &mut info) }
            .map_err(|e| dahdi_err(&format!("SPANSTAT of span {span}"), &self.path, e))?;
        Ok((info.alarms as u32, info.totalchans))
    }

    /// A channel's parameters; `None` when DAHDI has no such channel.
    pub fn params(&self, channo: i32) -> io::Result<Option<ChanInfo>> {
        let mut p = d::dahdi_params {
            channo,
            ..Default::default()
        };
        // SAFETY: as above, with DAHDI_GET_PARAMS and its structure.
        match unsafe { d::get_params(self.fd.as_raw_fd(), &mut p) } {
            Ok(_) => Ok(Some(ChanInfo {
                channo: p.channo,
                spanno: p.spanno,
                chanpos: p.chanpos,
                sigtype: p.sigtype as u32,
            })),
            Err(nix::Error::EINVAL) | Err(nix::Error::ENXIO) | Err(nix::Error::ENODEV) => Ok(None),
            Err(e) => Err(dahdi_err(
                &format!("GET_PARAMS of channel {channo}"),
                &self.path,
                e,
            )),
        }
    }

    /// Every channel DAHDI knows, up to the last one of `span` (channel numbers run
    /// across spans in order, so the scan stops once it has passed ours).
    pub fn scan(&self, span: u32) -> io::Result<Vec<ChanInfo>> {
        let mut out = Vec::new();
        let mut misses = 0;
        for channo in 1..=4096 {
            match self.params(channo)? {
                Some(c) => {
                    misses = 0;
                    let past = c.spanno > span as i32;
                    out.push(c);
                    if past {
                        break;
                    }
                }
                None => {
                    misses += 1;
                    if misses > 64 {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Opens `/dev/dahdi/channel` bound to DAHDI channel `channo`.
fn channel(dir: &Path, channo: i32) -> io::Result<OwnedFd> {
    let path = dir.join("channel");
    let fd = open(&path)?;
    let n: c_int = channo;
    // SAFETY: DAHDI_SPECIFY takes a pointer to the channel number.
    unsafe { d::specify(fd.as_raw_fd(), &n) }
        .map_err(|e| dahdi_err(&format!("SPECIFY channel {channo}"), &path, e))?;
    Ok(fd)
}

fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and names the same description until it is dropped
    // with the AsyncFd that holds it. PRIORITY: DAHDI signals a waiting event as POLLPRI.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::PRIORITY) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Reads once the descriptor is ready: the count, or the errno (never EAGAIN).
async fn read_ready(
    fd: &AsyncFd<OwnedFd>,
    buf: &mut [u8],
) -> io::Result<Result<usize, nix::Error>> {
    loop {
        let mut g = fd.ready(Interest::READABLE | Interest::PRIORITY).await?;
        let r = g.try_io(
            |fd| match nix::unistd::read(fd.get_ref().as_raw_fd(), buf) {
                Ok(n) => Ok(Ok(n)),
                Err(nix::Error::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Ok(Err(e)),
            },
        );
        if let Ok(r) = r {
            return r;
        }
    }
}

/// Takes the event DAHDI has waiting on a channel (after a read failed with ELAST).
fn take_event(fd: &AsyncFd<OwnedFd>) -> io::Result<i32> {
    let mut ev: c_int = 0;
    // SAFETY: DAHDI_GETEVENT writes one int.
    unsafe { d::get_event(fd.get_ref().as_raw_fd(), &mut ev) }.map_err(io::Error::from)?;
    Ok(ev)
}

/// What reading the D-channel gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Dread {
    /// One Q.921 frame (FCS removed) of this length at the start of the buffer.
    Frame(usize),
    /// A DAHDI event (`DAHDI_EVENT_*`).
    Event(i32),
    /// Nothing usable (a runt frame).
    Nothing,
}

/// A span's D-channel on DAHDI.
pub struct Dchan {
    fd: AsyncFd<OwnedFd>,
    raw: Vec<u8>,
}

impl Dchan {
    pub fn open(dir: &Path, channo: i32) -> io::Result<Dchan> {
        let fd = channel(dir, channo)?;
        let bi = d::dahdi_bufferinfo {
            txbufpolicy: d::DAHDI_POLICY_IMMEDIATE as c_int,
            rxbufpolicy: d::DAHDI_POLICY_IMMEDIATE as c_int,
            numbufs: 16,
            bufsize: 1024,
            ..Default::default()
        };
        // SAFETY: DAHDI_SET_BUFINFO reads the structure.
        unsafe { d::set_bufinfo(fd.as_raw_fd(), &bi) }
            .map_err(|e| io::Error::other(format!("SET_BUFINFO on D-channel {channo}: {e}")))?;
        Ok(Dchan {
            fd: register(fd)?,
            raw: vec![0; 1024 + 2],
        })
    }

    /// Waits for a frame or an event.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<Dread> {
        match read_ready(&self.fd, &mut self.raw).await? {
            Ok(n) => Ok(match strip_fcs(&self.raw[..n]) {
                Some(f) => {
                    let len = f.len().min(buf.len());
                    buf[..len].copy_from_slice(&f[..len]);
                    Dread::Frame(len)
                }
                None => Dread::Nothing,
            }),
            Err(e) if e as i32 == ELAST => Ok(Dread::Event(take_event(&self.fd)?)),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Sends one frame (its FCS added); dropped when DAHDI's buffers are full, as on a
    /// congested line (Q.921 sends it again).
    pub fn send(&self, frame: &[u8]) {
        let out = with_fcs(frame);
        if let Err(e) = nix::unistd::write(self.fd.get_ref(), &out) {
            tracing::debug!("DAHDI D-channel write: {e}");
        }
    }
}

/// One B-channel on DAHDI.
pub struct Bchan {
    fd: AsyncFd<OwnedFd>,
}

impl Bchan {
    pub fn open(dir: &Path, channo: i32, line: IsdnLine) -> io::Result<Bchan> {
        let fd = channel(dir, channo)?;
        let raw = fd.as_raw_fd();
        let block: c_int = BLOCK as c_int;
        let law: c_int = match line {
            IsdnLine::T1 => d::DAHDI_LAW_MULAW as c_int,
            _ => d::DAHDI_LAW_ALAW as c_int,
        };
        let zero: c_int = 0;
        let one: c_int = 1;
        let step = |what: &str, r: nix::Result<c_int>| {
            r.map(|_| ())
                .map_err(|e| io::Error::other(format!("{what} on B-channel {channo}: {e}")))
        };
        // SAFETY: each of these ioctls reads one int from the pointer given.
        unsafe {
            step("SET_BLOCKSIZE", d::set_blocksize(raw, &block))?;
            step("SETLAW", d::set_law(raw, &law))?;
            step("SETLINEAR", d::set_linear(raw, &zero))?;
            step("AUDIOMODE", d::audio_mode(raw, &one))?;
        }
        Ok(Bchan { fd: register(fd)? })
    }

    /// The next block of audio from the line.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match read_ready(&self.fd, buf).await? {
                Ok(n) => return Ok(n),
                // An event on a B-channel (its alarms, say): taken and let go.
                Err(e) if e as i32 == ELAST => {
                    take_event(&self.fd)?;
                }
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }

    /// Writes one block of audio to the line (dropped when DAHDI's buffers are full).
    pub fn send(&self, audio: &[u8]) {
        let _ = nix::unistd::write(self.fd.get_ref(), audio);
    }

    /// Throws away what queued in both directions while no call used the channel.
    pub fn drain(&self) {
        let both: c_int = (d::DAHDI_FLUSH_READ | d::DAHDI_FLUSH_WRITE) as c_int;
        // SAFETY: DAHDI_FLUSH reads one int.
        let _ = unsafe { d::flush(self.fd.get_ref().as_raw_fd(), &both) };
    }
}

/// A whole span opened on DAHDI: control device, D-channel and B-channels.
pub struct Span {
    pub ctl: Ctl,
    pub span: u32,
    pub plan: Plan,
    pub dchan: Dchan,
    pub bchans: BTreeMap<u8, Bchan>,
}

impl Span {
    pub fn open(dir: &Path, span: u32, line: IsdnLine) -> io::Result<Span> {
        let ctl = Ctl::open(dir)?;
        ctl.span_stat(span)?;
        let plan = plan(span, line, &ctl.scan(span)?).map_err(io::Error::other)?;
        let dchan = Dchan::open(dir, plan.dchan)?;
        let mut bchans = BTreeMap::new();
        for (&pos, &channo) in &plan.bchans {
            bchans.insert(pos, Bchan::open(dir, channo, line)?);
        }
        Ok(Span {
            ctl,
            span,
            plan,
            dchan,
            bchans,
        })
    }

    /// The span's alarms as the interface's state (`None`: no alarm).
    pub fn alarms(&self) -> io::Result<Option<String>> {
        let (alarms, _) = self.ctl.span_stat(self.span)?;
        Ok(alarm_text(alarms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_is_crc16_x25() {
        // The check value of CRC-16/X-25 over "123456789".
        assert_eq!(fcs16(b"123456789"), 0x906e);
        // A frame followed by its FCS (low octet first) leaves the "good FCS" residue
        // 0xf0b8 in the running register, which is how a receiver checks it.
        let f = with_fcs(&[0x02, 0x01, 0x7f]);
        assert_eq!(f.len(), 5);
        assert_eq!(!fcs16(&f), 0xf0b8);
    }

    #[test]
    fn reads_lose_their_fcs_and_runts_are_dropped() {
        let f = with_fcs(&[0x00, 0x01, 0x01, 0x03]);
        assert_eq!(strip_fcs(&f), Some(&[0x00, 0x01, 0x01, 0x03][..]));
        assert_eq!(strip_fcs(&[0x02, 0x01, 0x7f, 0x00]), None);
        assert_eq!(strip_fcs(&[]), None);
    }

    fn span_of(spanno: i32, first: i32, n: i32, d: i32, dsig: u32) -> Vec<ChanInfo> {
        (1..=n)
            .map(|pos| ChanInfo {
                channo: first + pos - 1,
                spanno,
                chanpos: pos,
                sigtype: if pos == d { dsig } else { d::DAHDI_SIG_CLEAR },
            })
            .collect()
    }

    #[test]
    fn an_e1_span_after_a_t1_span() {
        let mut chans = span_of(1, 1, 24, 24, d::DAHDI_SIG_HDLCFCS);
        chans.extend(span_of(2, 25, 31, 16, d::DAHDI_SIG_HDLCFCS));
        let p = plan(2, IsdnLine::E1, &chans).unwrap();
        assert_eq!(p.dchan, 25 + 15);
        assert_eq!(p.bchans.len(), 30);
        assert_eq!(p.bchans[&1], 25);
        assert_eq!(p.bchans[&17], 25 + 16);
        assert!(!p.bchans.contains_key(&16));
        let t = plan(1, IsdnLine::T1, &chans).unwrap();
        assert_eq!(t.dchan, 24);
        assert_eq!(
            t.bchans.keys().copied().collect::<Vec<_>>(),
            (1..=23).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bri_ports_with_hardware_hdlc() {
        let mut chans = Vec::new();
        for port in 0..4 {
            chans.extend(span_of(port + 1, 1 + 3 * port, 3, 3, d::DAHDI_SIG_HARDHDLC));
        }
        let p = plan(3, IsdnLine::Bri, &chans).unwrap();
        assert_eq!(p.dchan, 9);
        assert_eq!(p.bchans, BTreeMap::from([(1, 7), (2, 8)]));
    }

    #[test]
    fn a_fractional_span_offers_what_it_has() {
        let mut chans = span_of(1, 1, 31, 16, d::DAHDI_SIG_HDLCFCS);
        for c in chans
            .iter_mut()
            .filter(|c| c.chanpos > 10 && c.chanpos != 16)
        {
            c.sigtype = 0; // not configured
        }
        let p = plan(1, IsdnLine::E1, &chans).unwrap();
        assert_eq!(
            p.bchans.keys().copied().collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn misconfigured_spans_say_what_to_change() {
        let e1 = span_of(1, 1, 31, 16, d::DAHDI_SIG_HDLCFCS);
        let e = plan(2, IsdnLine::E1, &e1).unwrap_err();
        assert!(e.contains("no channels on span 2"), "{e}");
        // The D-channel left as a clear channel.
        let plain = span_of(1, 1, 31, 16, d::DAHDI_SIG_CLEAR);
        let e = plan(1, IsdnLine::E1, &plain).unwrap_err();
        assert!(
            e.contains("not an HDLC D-channel") && e.contains("dchan=16"),
            "{e}"
        );
        // An E1 span configured as a T1 interface: position 24 is a B-channel.
        let e = plan(1, IsdnLine::T1, &e1).unwrap_err();
        assert!(
            e.contains("is not an HDLC D-channel") || e.contains("beyond"),
            "{e}"
        );
        // A T1 span configured as E1: there is no channel 16 D-channel.
        let t1 = span_of(1, 1, 24, 24, d::DAHDI_SIG_HDLCFCS);
        let e = plan(1, IsdnLine::E1, &t1).unwrap_err();
        assert!(e.contains("not an HDLC D-channel"), "{e}");
        // A BRI port with only its D-channel.
        let mut bri = span_of(1, 1, 3, 3, d::DAHDI_SIG_HARDHDLC);
        bri.iter_mut().take(2).for_each(|c| c.sigtype = 0);
        let e = plan(1, IsdnLine::Bri, &bri).unwrap_err();
        assert!(e.contains("no B-channels"), "{e}");
    }

    #[test]
    fn alarms_become_the_state() {
        assert_eq!(alarm_text(0), None);
        let t = alarm_text(d::DAHDI_ALARM_RED).unwrap();
        assert!(t.starts_with("alarm: red"), "{t}");
    }

    #[test]
    fn a_box_without_dahdi_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = Span::open(dir.path(), 1, IsdnLine::E1)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("ctl") && e.contains("is DAHDI loaded"), "{e}");
        // Something that is not a DAHDI device at DAHDI's paths.
        std::fs::write(dir.path().join("ctl"), b"").unwrap();
        let e = Span::open(dir.path(), 1, IsdnLine::E1)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a DAHDI device"), "{e}");
    }
}
