//! Forwarding to a syslog server: RFC 5424 messages over UDP (RFC 5426), TCP (RFC 6587,
//! octet counting) or TLS (RFC 5425). The format is a line of a few fields, written
//! here; the TLS is rustls, with the exchange's own trust (the system's authorities and
//! those the administrator added). One thread sends, from a bounded queue: a server that
//! is away costs the exchange neither memory nor time, and what could not be sent is
//! counted and said once the server is back.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use config::SyslogTransport;

use crate::stamp;

/// The longest message sent in a datagram (RFC 5426 4.3.1: receivers take 2048 octets).
pub const MAX_DATAGRAM: usize = 2048;
/// The longest message sent on a connection.
pub const MAX_FRAMED: usize = 64 * 1024;
/// Messages waiting for the sender at most.
pub const QUEUE: usize = 1024;
/// How long the sender waits before it tries a server that failed again.
const RETRY: Duration = Duration::from_secs(5);
const CONNECT_TIME: Duration = Duration::from_secs(5);

/// Where and how the messages go.
#[derive(Clone)]
pub struct Dest {
    pub host: String,
    pub port: u16,
    pub transport: SyslogTransport,
    pub facility: u8,
    /// The box's host name, as the messages' HOSTNAME.
    pub hostname: String,
    /// Trust for TLS servers.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// One message before it is formatted for the destination.
pub struct Record {
    /// The log it comes from: the message's MSGID.
    pub log: &'static str,
    /// RFC 5424 severity: 3 error, 4 warning, 5 notice, 6 informational, 7 debug.
    pub severity: u8,
    pub unix: i64,
    pub millis: u32,
    pub text: String,
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` (RFC 5424 6), cut to `max`
/// bytes at a character's boundary.
pub fn format(r: &Record, facility: u8, hostname: &str, pid: u32, max: usize) -> String {
    let pri = u16::from(facility) * 8 + u16::from(r.severity.min(7));
    let host = header_field(hostname, 255);
    let mut m = format!(
        "<{pri}>1 {} {host} pbxd {pid} {} - {}",
        stamp::rfc3339(r.unix, r.millis),
        r.log,
        r.text
    );
    if m.len() > max {
        let mut cut = max;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    m
}

/// A header field: printable US-ASCII without spaces, at most `max` characters; `-`
/// when nothing is left.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

enum Conn {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn open(d: &Dest) -> io::Result<Conn> {
        let addr = (d.host.as_str(), d.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        match d.transport {
            SyslogTransport::Udp => {
                let local: SocketAddr = if addr.is_ipv4() {
                    "0.0.0.0:0".parse().expect("address")
                } else {
                    "[::]:0".parse().expect("address")
                };
                Ok(Conn::Udp(UdpSocket::bind(local)?, addr))
            }
            SyslogTransport::Tcp => Ok(Conn::Tcp(tcp(addr)?)),
            SyslogTransport::Tls => {
                let cfg = d
                    .tls
                    .clone()
                    .ok_or_else(|| io::Error::other("no TLS trust configured"))?;
                let name = rustls::pki_types::ServerName::try_from(d.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn = rustls::ClientConnection::new(cfg, name).map_err(io::Error::other)?;
                let mut s = rustls::StreamOwned::new(conn, tcp(addr)?);
                // The handshake now, so a server whose certificate is not trusted is
                // said at once rather than at the first message.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Ok(Conn::Tls(Box::new(s)))
            }
        }
    }

    fn send(&mut self, msg: &str) -> io::Result<()> {
        match self {
            Conn::Udp(s, to) => s.send_to(msg.as_bytes(), *to).map(|_| ()),
            Conn::Tcp(s) => framed(s, msg),
            Conn::Tls(s) => framed(s.as_mut(), msg),
        }
    }
}

fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIME)?;
    s.set_write_timeout(Some(CONNECT_TIME))?;
    s.set_read_timeout(Some(CONNECT_TIME))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// RFC 6587 3.4.1: `MSG-LEN SP SYSLOG-MSG`.
fn framed(w: &mut impl Write, msg: &str) -> io::Result<()> {
    let mut b = Vec::with_capacity(msg.len() + 8);
    write!(b, "{} {msg}", msg.len())?;
    w.write_all(&b)?;
    w.flush()
}

/// The destination, changed by the settings while the sender runs.
#[derive(Default)]
pub(crate) struct Target {
    pub dest: Mutex<Option<Dest>>,
    pub generation: AtomicU64,
}

/// Runs until every sender of `rx` is gone.
pub(crate) fn run(target: Arc<Target>, rx: Receiver<Record>, dropped: Arc<AtomicU64>) {
    let pid = std::process::id();
    let mut conn: Option<Conn> = None;
    let mut retry_at: Option<Instant> = None;
    let mut unsent = 0u64;
    let mut said_failure = false;
    let mut seen_generation = 0;
    for r in rx {
        // Read together: a destination with the generation it came with.
        let (generation, dest) = {
            let d = target.dest.lock().unwrap();
            (target.generation.load(Ordering::Acquire), d.clone())
        };
        let Some(dest) = dest else {
            conn = None;
            continue;
        };
        // New settings (or a new trust): a new connection, tried at once.
        if generation != seen_generation {
            (conn, retry_at, said_failure) = (None, None, false);
            seen_generation = generation;
        }
        if conn.is_none() {
            if retry_at.is_some_and(|t| Instant::now() < t) {
                unsent += 1;
                continue;
            }
            match Conn::open(&dest) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if !said_failure {
                        // Once per failure (the warning itself may be forwarded: it
                        // waits in the queue like any other message).
                        tracing::warn!("syslog server {}:{}: {e}", dest.host, dest.port);
                        said_failure = true;
                    }
                    retry_at = Some(Instant::now() + RETRY);
                    unsent += 1;
                    continue;
                }
            }
        }
        let max = match dest.transport {
            SyslogTransport::Udp => MAX_DATAGRAM,
            _ => MAX_FRAMED,
        };
        let c = conn.as_mut().expect("connected");
        unsent += dropped.swap(0, Ordering::Relaxed);
        if unsent > 0 {
            let (unix, millis) = stamp::now_ms();
            let note = Record {
                log: "warning",
                severity: 4,
                unix,
                millis,
                text: format!(
                    "system: {unsent} log messages were not forwarded (the syslog server could not take them)"
                ),
            };
            if c.send(&format(&note, dest.facility, &dest.hostname, pid, max))
                .is_ok()
            {
                unsent = 0;
            }
        }
        if let Err(e) = c.send(&format(&r, dest.facility, &dest.hostname, pid, max)) {
            if !said_failure {
                tracing::warn!("syslog server {}:{}: {e}", dest.host, dest.port);
                said_failure = true;
            }
            conn = None;
            retry_at = Some(Instant::now() + RETRY);
            unsent += 1;
        } else {
            said_failure = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Record {
        Record {
            log: "security",
            severity: 4,
            unix: 1_764_901_845,
            millis: 12,
            text: text.into(),
        }
    }

    #[test]
    fn the_header_is_rfc_5424() {
        let m = format(&record("web: login failed"), 16, "pbx", 42, MAX_FRAMED);
        assert_eq!(
            m,
            "<132>1 2025-12-05T02:30:45.012Z pbx pbxd 42 security - web: login failed"
        );
        // A host name with a space or no printable character at all.
        let m = format(&record("x"), 4, "my box", 1, MAX_FRAMED);
        assert!(
            m.starts_with("<36>1 2025-12-05T02:30:45.012Z mybox pbxd 1 "),
            "{m}"
        );
        let m = format(&record("x"), 4, "\u{e9}", 1, MAX_FRAMED);
        assert!(m.contains("Z - pbxd"), "{m}");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character() {
        let m = format(&record(&"\u{e9}".repeat(3000)), 16, "pbx", 1, MAX_DATAGRAM);
        assert!(m.len() <= MAX_DATAGRAM && m.len() > MAX_DATAGRAM - 2);
        assert!(m.ends_with('\u{e9}'));
    }

    #[test]
    fn frames_are_octet_counted() {
        let mut b = Vec::new();
        framed(&mut b, "<14>1 - - - - - - h\u{e9}").unwrap();
        assert_eq!(b, "21 <14>1 - - - - - - h\u{e9}".as_bytes());
    }

    #[test]
    fn the_sender_reaches_a_udp_server_and_counts_what_it_could_not_send() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let target = Arc::new(Target::default());
        *target.dest.lock().unwrap() = Some(Dest {
            host: "127.0.0.1".into(),
            port: server.local_addr().unwrap().port(),
            transport: SyslogTransport::Udp,
            facility: 10,
            hostname: "box".into(),
            tls: None,
        });
        let dropped = Arc::new(AtomicU64::new(3));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let t = target.clone();
        let h = std::thread::spawn(move || run(t, rx, dropped));
        tx.send(record("one")).unwrap();
        let mut buf = [0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        let note = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(note.starts_with("<84>1 "), "{note}");
        assert!(
            note.contains(" warning - system: 3 log messages were not forwarded"),
            "{note}"
        );
        let n = server.recv(&mut buf).unwrap();
        let m = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            m.starts_with("<84>1 2025-12-05T02:30:45.012Z box pbxd "),
            "{m}"
        );
        assert!(m.ends_with(" security - one"), "{m}");
        drop(tx);
        h.join().unwrap();
    }
}
