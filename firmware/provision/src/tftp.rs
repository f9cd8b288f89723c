//! TFTP, read-only, as a sans-IO core: RFC 1350 with option negotiation (RFC 2347),
//! blksize (RFC 2348), timeout and tsize (RFC 2349) and windowsize (RFC 7440).
//!
//! [`parse_request`] reads the first packet a client sends to port 69; a [`Session`] then
//! serves one file to one client. The caller feeds it packets and the time, sends what
//! [`Session::poll_transmit`] gives and sleeps until [`Session::poll_timeout`]. No clock
//! reads and no sockets here.
//!
//! Retransmission happens on timeouts only. An acknowledgement that does not move the
//! window forward is ignored, so a duplicated ACK never doubles the traffic (the
//! Sorcerer's Apprentice bug of RFC 1350, fixed as RFC 1123 4.2.3.1 says).

use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// Error codes of RFC 1350 and RFC 2347.
pub mod code {
    pub const NOT_DEFINED: u16 = 0;
    pub const FILE_NOT_FOUND: u16 = 1;
    pub const ACCESS_VIOLATION: u16 = 2;
    pub const ILLEGAL_OPERATION: u16 = 4;
    pub const UNKNOWN_TID: u16 = 5;
    pub const OPTION_REFUSED: u16 = 8;
}

/// Largest request packet (RFC 2347 keeps requests within 512 octets).
pub const MAX_REQUEST: usize = 512;
/// Block size without the option.
pub const DEFAULT_BLKSIZE: usize = 512;
/// Largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: usize = 65464;
/// Largest window we agree to; bigger requests are answered with this.
pub const MAX_WINDOW: u16 = 64;
/// Retransmission timeout without the option.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Retransmissions of one window (or the OACK) before the session gives up.
pub const MAX_RETRIES: u32 = 5;

/// A TFTP error to send: code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpError {
    pub code: u16,
    pub message: String,
}

impl TftpError {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        TftpError {
            code,
            message: message.into(),
        }
    }

    /// The ERROR packet.
    pub fn packet(&self) -> Vec<u8> {
        error_packet(self.code, &self.message)
    }
}

impl std::fmt::Display for TftpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TFTP error {}: {}", self.code, self.message)
    }
}

/// An ERROR packet.
pub fn error_packet(code: u16, message: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + message.len());
    p.extend_from_slice(&OP_ERROR.to_be_bytes());
    p.extend_from_slice(&code.to_be_bytes());
    // The message is NUL-terminated, so it must not carry one.
    p.extend(message.bytes().filter(|b| *b != 0).take(200));
    p.push(0);
    p
}

/// Transfer mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Octet,
    /// Text with CR LF line ends (RFC 764's NVT ASCII).
    Netascii,
}

/// Options the client asked for that we understand, as we will grant them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub blksize: Option<usize>,
    pub timeout: Option<u8>,
    /// The client asked for the transfer size.
    pub tsize: bool,
    pub windowsize: Option<u16>,
}

impl Options {
    fn any(&self) -> bool {
        self.blksize.is_some() || self.timeout.is_some() || self.tsize || self.windowsize.is_some()
    }
}

/// A read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: Mode,
    pub options: Options,
}

/// Reads the first packet of a transfer. Anything but a well-formed read request is an
/// error to send back: write requests are refused (the server is read-only), other
/// opcodes and malformed packets are illegal operations.
pub fn parse_request(p: &[u8]) -> Result<Request, TftpError> {
    let bad = |m: &str| TftpError::new(code::ILLEGAL_OPERATION, m);
    if p.len() < 2 {
        return Err(bad("packet too short"));
    }
    match u16::from_be_bytes([p[0], p[1]]) {
        OP_RRQ => {}
        OP_WRQ => {
            return Err(TftpError::new(
                code::ACCESS_VIOLATION,
                "this server is read-only",
            ))
        }
        _ => return Err(bad("expected a read request")),
    }
    if p.len() > MAX_REQUEST {
        return Err(bad("request longer than 512 octets"));
    }
    let body = &p[2..];
    if body.last() != Some(&0) {
        return Err(bad("request fields must end with NUL"));
    }
    let fields: Vec<&[u8]> = body[..body.len() - 1].split(|b| *b == 0).collect();
    if fields.len() < 2 || !fields.len().is_multiple_of(2) {
        return Err(bad(
            "malformed request: expected file name, mode and option pairs",
        ));
    }
    let text = |f: &[u8]| -> Result<String, TftpError> {
        match std::str::from_utf8(f) {
            Ok(s) if !s.chars().any(char::is_control) => Ok(s.to_string()),
            _ => Err(bad("request fields must be printable text")),
        }
    };
    let filename = text(fields[0])?;
    if filename.is_empty() {
        return Err(bad("empty file name"));
    }
    let mode = match text(fields[1])?.to_ascii_lowercase().as_str() {
        "octet" => Mode::Octet,
        "netascii" => Mode::Netascii,
        "mail" => return Err(bad("mail mode is not supported")),
        other => return Err(bad(&format!("unknown transfer mode {other:?}"))),
    };
    let mut options = Options::default();
    let mut seen = Vec::new();
    for pair in fields[2..].chunks(2) {
        let name = text(pair[0])?.to_ascii_lowercase();
        let value = text(pair[1])?;
        if seen.contains(&name) {
            return Err(bad(&format!("option {name} given twice")));
        }
        seen.push(name.clone());
        let num: Option<u64> = value.parse().ok().filter(|_| value.len() <= 10);
        // Out-of-range values are left out of the OACK (the client then uses the
        // default), as RFC 2347 lets a server decline an option.
        match (name.as_str(), num) {
            ("blksize", Some(n)) if n >= 8 => {
                options.blksize = Some((n as usize).min(MAX_BLKSIZE));
            }
            ("timeout", Some(n)) if (1..=255).contains(&n) => options.timeout = Some(n as u8),
            ("tsize", Some(_)) => options.tsize = true,
            ("windowsize", Some(n)) if (1..=65535).contains(&n) => {
                options.windowsize = Some((n as u16).min(MAX_WINDOW));
            }
            _ => {}
        }
    }
    Ok(Request {
        filename,
        mode,
        options,
    })
}

/// Converts text to netascii: LF becomes CR LF, a bare CR becomes CR NUL.
pub fn to_netascii(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' => out.extend_from_slice(b"\r\0"),
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The client acknowledged the last block.
    Complete,
    /// The client sent an error (for example declining our options).
    ClientError(TftpError),
    /// No answer after [`MAX_RETRIES`] retransmissions.
    TimedOut,
    /// The client broke the protocol; we sent it an error.
    Protocol(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// OACK sent, waiting for ACK 0.
    Negotiating,
    Sending,
    Done,
}

/// One file served to one client.
#[derive(Debug)]
pub struct Session {
    /// Shared, not copied: a firmware image served to many phones is in memory once.
    data: Bytes,
    blksize: usize,
    window: u64,
    timeout: Duration,
    oack: Option<Vec<u8>>,
    state: State,
    /// Highest block the client acknowledged (absolute, 0 = none).
    acked: u64,
    /// Highest block sent in the current window.
    sent: u64,
    /// Blocks in the transfer, the last one shorter than `blksize` (maybe empty).
    total: u64,
    deadline: Instant,
    retries: u32,
    out: VecDeque<Vec<u8>>,
    outcome: Option<Outcome>,
    /// Packets sent, retransmissions included (for tests and logs).
    pub packets_sent: u64,
}

impl Session {
    /// Starts serving `data` (the file as stored; converted here for netascii) for the
    /// request. The first packet (OACK, or DATA 1 without options) is ready at once.
    pub fn new(req: &Request, data: impl Into<Bytes>, now: Instant) -> Session {
        let data: Bytes = data.into();
        let data = match req.mode {
            Mode::Octet => data,
            Mode::Netascii => to_netascii(&data).into(),
        };
        let o = &req.options;
        let blksize = o.blksize.unwrap_or(DEFAULT_BLKSIZE);
        let timeout = o
            .timeout
            .map(|t| Duration::from_secs(t.into()))
            .unwrap_or(DEFAULT_TIMEOUT);
        let oack = o.any().then(|| {
            let mut p = OP_OACK.to_be_bytes().to_vec();
            let mut put = |k: &str, v: String| {
                p.extend_from_slice(k.as_bytes());
                p.push(0);
                p.extend_from_slice(v.as_bytes());
                p.push(0);
            };
            if let Some(b) = o.blksize {
                put("blksize", b.to_string());
            }
            if let Some(t) = o.timeout {
                put("timeout", t.to_string());
            }
            if o.tsize {
                put("tsize", data.len().to_string());
            }
            if let Some(w) = o.windowsize {
                put("windowsize", w.to_string());
            }
            p
        });
        let total = (data.len() / blksize) as u64 + 1;
        let mut s = Session {
            data,
            blksize,
            window: o.windowsize.unwrap_or(1).into(),
            timeout,
            state: if oack.is_some() {
                State::Negotiating
            } else {
                State::Sending
            },
            oack,
            acked: 0,
            sent: 0,
            total,
            deadline: now + timeout,
            retries: 0,
            out: VecDeque::new(),
            outcome: None,
            packets_sent: 0,
        };
        match &s.oack {
            Some(p) => {
                let p = p.clone();
                s.queue(p);
            }
            None => s.send_window(now),
        }
        s
    }

    /// The file's size as sent (after netascii conversion).
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Block size in force.
    pub fn blksize(&self) -> usize {
        self.blksize
    }

    fn queue(&mut self, p: Vec<u8>) {
        self.packets_sent += 1;
        self.out.push_back(p);
    }

    fn data_packet(&self, block: u64) -> Vec<u8> {
        let start = ((block - 1) as usize) * self.blksize;
        let end = (start + self.blksize).min(self.data.len());
        let chunk = &self.data[start.min(end)..end];
        let mut p = Vec::with_capacity(4 + chunk.len());
        p.extend_from_slice(&OP_DATA.to_be_bytes());
        // Block numbers wrap from 65535 to 0 for files over 65535 blocks.
        p.extend_from_slice(&((block & 0xffff) as u16).to_be_bytes());
        p.extend_from_slice(chunk);
        p
    }

    /// Sends the window that follows the last acknowledged block.
    fn send_window(&mut self, now: Instant) {
        let last = (self.acked + self.window).min(self.total);
        for b in self.acked + 1..=last {
            let p = self.data_packet(b);
            self.queue(p);
        }
        self.sent = last;
        self.deadline = now + self.timeout;
    }

    fn finish(&mut self, o: Outcome) {
        self.state = State::Done;
        self.outcome = Some(o);
    }

    fn protocol_error(&mut self, code: u16, m: &str) {
        self.queue(error_packet(code, m));
        self.finish(Outcome::Protocol(m.to_string()));
    }

    /// A packet from the client's transfer ID.
    pub fn handle(&mut self, now: Instant, p: &[u8]) {
        if self.state == State::Done {
            return;
        }
        if p.len() < 4 {
            return self.protocol_error(code::ILLEGAL_OPERATION, "packet too short");
        }
        let op = u16::from_be_bytes([p[0], p[1]]);
        let n = u16::from_be_bytes([p[2], p[3]]);
        match op {
            OP_ACK if p.len() == 4 => self.on_ack(now, n),
            OP_ERROR => {
                let end = p[4..].iter().position(|b| *b == 0).unwrap_or(p.len() - 4);
                let msg = String::from_utf8_lossy(&p[4..4 + end]).into_owned();
                self.finish(Outcome::ClientError(TftpError::new(n, msg)));
            }
            // A repeated request from the same port: the client missed our first
            // answer; the timer resends it, so nothing to do now.
            OP_RRQ => {}
            OP_ACK => self.protocol_error(code::ILLEGAL_OPERATION, "malformed ACK"),
            _ => self.protocol_error(
                code::ILLEGAL_OPERATION,
                "only ACK and ERROR are expected during a read",
            ),
        }
    }

    fn on_ack(&mut self, now: Instant, n: u16) {
        if self.state == State::Negotiating {
            if n == 0 {
                self.state = State::Sending;
                self.retries = 0;
                self.send_window(now);
            }
            // Any other block number: stale or bogus, ignored.
            return;
        }
        // The absolute block this ACK names, if it is inside what we sent.
        let Some(k) = (self.acked..=self.sent).find(|k| (k & 0xffff) as u16 == n) else {
            return;
        };
        if k == self.acked {
            // Duplicate: never answered, or both sides would double every packet.
            return;
        }
        self.acked = k;
        self.retries = 0;
        if self.acked == self.total {
            self.finish(Outcome::Complete);
        } else {
            // The next window; after an ACK inside the window (RFC 7440: the rest was
            // lost) it starts just after the acknowledged block.
            self.send_window(now);
        }
    }

    /// The retransmission timer fired (or the caller checks after `poll_timeout`).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Done || now < self.deadline {
            return;
        }
        if self.retries >= MAX_RETRIES {
            self.queue(error_packet(code::NOT_DEFINED, "timed out"));
            self.finish(Outcome::TimedOut);
            return;
        }
        self.retries += 1;
        match self.state {
            State::Negotiating => {
                let p = self.oack.clone().expect("negotiating has an OACK");
                self.queue(p);
                self.deadline = now + self.timeout;
            }
            State::Sending => self.send_window(now),
            State::Done => {}
        }
    }

    /// The next packet to send to the client.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When to call [`Session::handle_timeout`]; `None` once done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state != State::Done).then_some(self.deadline)
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(name: &str, mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
        let mut p = OP_RRQ.to_be_bytes().to_vec();
        for f in [name, mode]
            .into_iter()
            .chain(opts.iter().flat_map(|(k, v)| [*k, *v]))
        {
            p.extend_from_slice(f.as_bytes());
            p.push(0);
        }
        p
    }

    fn ack(n: u16) -> Vec<u8> {
        let mut p = OP_ACK.to_be_bytes().to_vec();
        p.extend_from_slice(&n.to_be_bytes());
        p
    }

    fn drain(s: &mut Session) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    fn block_of(p: &[u8]) -> (u16, u16, usize) {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
            p.len() - 4,
        )
    }

    fn file(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    /// A well-behaved client: acks every packet it gets in order, collects the data.
    fn run_client(s: &mut Session, t0: Instant, blksize: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut expect: u16 = 1;
        for _ in 0..100_000 {
            let out = drain(s);
            if out.is_empty() {
                break;
            }
            for p in out {
                let (op, n, len) = block_of(&p);
                match op {
                    OP_OACK => s.handle(t0, &ack(0)),
                    OP_DATA if n == expect => {
                        got.extend_from_slice(&p[4..]);
                        expect = expect.wrapping_add(1);
                        s.handle(t0, &ack(n));
                        if len < blksize {
                            return got;
                        }
                    }
                    _ => panic!("unexpected packet {op} {n}"),
                }
            }
        }
        got
    }

    #[test]
    fn plain_transfer_without_options() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("SIPDefault.cnf", "octet", &[])).unwrap();
        let data = file(1300);
        let mut s = Session::new(&req, data.clone(), t0);
        assert_eq!(run_client(&mut s, t0, 512), data);
        assert_eq!(s.outcome(), Some(&Outcome::Complete));
        assert_eq!(s.packets_sent, 3);
    }

    #[test]
    fn exact_multiple_ends_with_an_empty_block() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[])).unwrap();
        let data = file(1024);
        let mut s = Session::new(&req, data.clone(), t0);
        assert_eq!(run_client(&mut s, t0, 512), data);
        assert_eq!(s.packets_sent, 3, "two full blocks and an empty one");
        assert_eq!(s.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn all_options_are_negotiated() {
        let t0 = Instant::now();
        let req = parse_request(&rrq(
            "f",
            "OCTET",
            &[
                ("BLKSIZE", "1428"),
                ("timeout", "3"),
                ("tsize", "0"),
                ("windowsize", "4"),
                ("x-unknown", "1"),
            ],
        ))
        .unwrap();
        assert_eq!(
            req.options,
            Options {
                blksize: Some(1428),
                timeout: Some(3),
                tsize: true,
                windowsize: Some(4)
            }
        );
        let data = file(10_000);
        let mut s = Session::new(&req, data.clone(), t0);
        let oack = s.poll_transmit().unwrap();
        assert_eq!(
            oack,
            b"\x00\x06blksize\x001428\x00timeout\x003\x00tsize\x0010000\x00windowsize\x004\x00"
        );
        s.handle(t0, &ack(0));
        let window = drain(&mut s);
        assert_eq!(window.len(), 4, "a window of four blocks");
        assert!(window.iter().all(|p| p.len() == 4 + 1428));
        // Timeout is the negotiated 3 s.
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        s.handle(t0, &ack(4));
        let next = drain(&mut s);
        assert_eq!(block_of(&next[0]).1, 5);
        assert_eq!(next.len(), 4, "blocks 5 to 8, the last one short");
        assert_eq!(next[3].len(), 4 + 10_000 - 7 * 1428);
        s.handle(t0, &ack(8));
        assert_eq!(s.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn options_out_of_range_are_declined_or_capped() {
        let req = parse_request(&rrq(
            "f",
            "octet",
            &[("blksize", "4"), ("timeout", "0"), ("windowsize", "9999")],
        ))
        .unwrap();
        assert_eq!(req.options.blksize, None);
        assert_eq!(req.options.timeout, None);
        assert_eq!(req.options.windowsize, Some(MAX_WINDOW));
        let req = parse_request(&rrq("f", "octet", &[("blksize", "99999")])).unwrap();
        assert_eq!(req.options.blksize, Some(MAX_BLKSIZE));
    }

    #[test]
    fn lost_data_is_resent_on_timeout_only() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[])).unwrap();
        let mut s = Session::new(&req, file(700), t0);
        let first = drain(&mut s);
        assert_eq!(first.len(), 1);
        // The DATA was lost: nothing happens before the deadline ...
        s.handle_timeout(t0 + Duration::from_millis(500));
        assert!(drain(&mut s).is_empty());
        // ... and the same block goes again after it.
        s.handle_timeout(t0 + DEFAULT_TIMEOUT);
        assert_eq!(drain(&mut s), first);
        s.handle(t0, &ack(1));
        assert_eq!(block_of(&drain(&mut s)[0]).1, 2);
    }

    #[test]
    fn lost_ack_makes_the_client_see_the_block_again() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[])).unwrap();
        let mut s = Session::new(&req, file(1200), t0);
        drain(&mut s);
        s.handle(t0, &ack(1));
        let b2 = drain(&mut s);
        // ACK 2 lost: block 2 is resent at the timeout; the client acks it again.
        s.handle_timeout(t0 + DEFAULT_TIMEOUT);
        assert_eq!(drain(&mut s), b2);
        s.handle(t0, &ack(2));
        let b3 = drain(&mut s);
        assert_eq!(block_of(&b3[0]), (OP_DATA, 3, 176));
    }

    #[test]
    fn duplicate_acks_are_ignored() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[])).unwrap();
        let mut s = Session::new(&req, file(5000), t0);
        drain(&mut s);
        s.handle(t0, &ack(1));
        assert_eq!(drain(&mut s).len(), 1);
        // The network duplicated ACK 1: no second copy of block 2.
        s.handle(t0, &ack(1));
        s.handle(t0, &ack(1));
        assert!(drain(&mut s).is_empty());
        // An ACK for a block not yet sent is ignored too.
        s.handle(t0, &ack(9));
        assert!(drain(&mut s).is_empty());
        s.handle(t0, &ack(2));
        assert_eq!(drain(&mut s).len(), 1);
    }

    #[test]
    fn window_partial_ack_goes_on_after_it() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[("windowsize", "8")])).unwrap();
        let mut s = Session::new(&req, file(512 * 20), t0);
        drain(&mut s);
        s.handle(t0, &ack(0));
        assert_eq!(drain(&mut s).len(), 8);
        // Block 4 was lost; the client acks 3.
        s.handle(t0, &ack(3));
        let w = drain(&mut s);
        assert_eq!(block_of(&w[0]).1, 4);
        assert_eq!(w.len(), 8);
        // A late duplicate of ACK 3 does not start another window.
        s.handle(t0, &ack(3));
        assert!(drain(&mut s).is_empty());
        // A duplicate ACK 0 after negotiation is ignored as well.
        s.handle(t0, &ack(0));
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn lost_oack_is_resent_then_the_session_times_out() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[("tsize", "0")])).unwrap();
        let mut s = Session::new(&req, file(10), t0);
        let oack = drain(&mut s);
        let mut t = t0;
        for _ in 0..MAX_RETRIES {
            t = s.poll_timeout().unwrap();
            s.handle_timeout(t);
            assert_eq!(drain(&mut s), oack);
        }
        t += DEFAULT_TIMEOUT;
        s.handle_timeout(t);
        let last = drain(&mut s);
        assert_eq!(block_of(&last[0]).0, OP_ERROR);
        assert_eq!(s.outcome(), Some(&Outcome::TimedOut));
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn client_declining_options_ends_the_session() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[("blksize", "1024")])).unwrap();
        let mut s = Session::new(&req, file(10), t0);
        drain(&mut s);
        s.handle(t0, &error_packet(code::OPTION_REFUSED, "no"));
        assert!(matches!(s.outcome(), Some(Outcome::ClientError(e)) if e.code == 8));
        assert!(drain(&mut s).is_empty(), "no answer to an error");
    }

    #[test]
    fn unexpected_packets_get_an_error() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[])).unwrap();
        let mut s = Session::new(&req, file(10), t0);
        drain(&mut s);
        s.handle(t0, b"\x00\x03\x00\x01data");
        let e = drain(&mut s);
        assert_eq!(
            block_of(&e[0]),
            (OP_ERROR, code::ILLEGAL_OPERATION, e[0].len() - 4)
        );
        assert!(matches!(s.outcome(), Some(Outcome::Protocol(_))));
    }

    #[test]
    fn block_numbers_roll_over() {
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[("blksize", "8")])).unwrap();
        // 70,000 blocks of 8 octets: past 65535 the numbers go on from 0.
        let data = file(8 * 70_000 + 3);
        let mut s = Session::new(&req, data.clone(), t0);
        assert_eq!(run_client(&mut s, t0, 8), data);
        assert_eq!(s.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn netascii_converts_line_ends() {
        assert_eq!(to_netascii(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\0d");
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "netascii", &[("tsize", "0")])).unwrap();
        let mut s = Session::new(&req, &b"x\ny\n"[..], t0);
        assert!(drain(&mut s)[0].ends_with(b"tsize\x006\x00"));
    }

    #[test]
    fn bad_requests_are_refused_with_the_right_code() {
        let wrq = {
            let mut p = rrq("f", "octet", &[]);
            p[1] = 2;
            p
        };
        assert_eq!(
            parse_request(&wrq).unwrap_err().code,
            code::ACCESS_VIOLATION
        );
        for p in [
            &b""[..],
            b"\x00",
            b"\x00\x01",
            b"\x00\x01file",
            b"\x00\x01file\x00",
            b"\x00\x01file\x00octet",
            b"\x00\x01\x00octet\x00",
            b"\x00\x01file\x00mail\x00",
            b"\x00\x01file\x00octet\x00blksize\x00",
            b"\x00\x01file\x00octet\x00blksize\x00512\x00blksize\x00512\x00",
            b"\x00\x01fi\x01le\x00octet\x00",
            b"\x00\x01\xff\xfe\x00octet\x00",
            b"\x00\x04\x00\x01",
            b"\x00\x09whatever",
        ] {
            let e = parse_request(p).unwrap_err();
            assert_eq!(e.code, code::ILLEGAL_OPERATION, "{p:?}");
        }
        let long = rrq(&"a".repeat(600), "octet", &[]);
        assert!(parse_request(&long).is_err());
    }

    #[test]
    fn random_packets_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let t0 = Instant::now();
        let req = parse_request(&rrq("f", "octet", &[("windowsize", "4")])).unwrap();
        let mut s = Session::new(&req, file(3000), t0);
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 2 && next() % 2 == 0 {
                p[0] = 0;
                p[1] = (next() % 7) as u8;
            }
            let _ = parse_request(&p);
            s.handle(t0, &p);
            drain(&mut s);
        }
    }
}
