//! The exchange core fed a script of SIP messages from three addresses, media events
//! and time: never a panic, and everything it sends is SIP that parses.
//!
//! Phones 101 (A, 127.0.0.1:7001) and 102 (B, 127.0.0.1:7002) are registered before
//! the script; C (127.0.0.9:5060) is a stranger (its requests are answered as 103's
//! when they carry 103's credentials). A script is text: a line `=== A 20` starts a
//! message from A sent 20 ms after the one before (`===` lines for B and C alike), `=== D
//! 3 5` hands the core digit 5 from media endpoint 3, `=== P 3` tells it endpoint 3's
//! clip ended, `=== T 1000` lets 1000 ms pass. In a message, bare LF become CRLF, and
//! `${Name}` becomes header Name of the last request the exchange sent to that address,
//! `${r:Name}` of the last response, `${auth}` digest credentials answering the last
//! challenge sent there (for this message's method and Request-URI), and `${len}` the
//! length of the body (after the empty line). With FUZZ_TRACE set, every message in and
//! out is printed (to see what a seed reaches).
#![no_main]
use config::{Config, Extension, SipAccount, Snapshot};
use libfuzzer_sys::fuzz_target;
use pbx::{Pbx, Proto, Settings, Source};
use sip::auth::{digest_response, Algorithm};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const PBX: &str = "127.0.0.1:5060";
const PHONES: [(&str, &str); 3] = [
    ("101", "127.0.0.1:7001"),
    ("102", "127.0.0.1:7002"),
    ("103", "127.0.0.9:5060"),
];

fn snapshot() -> Arc<Snapshot> {
    static S: OnceLock<Arc<Snapshot>> = OnceLock::new();
    S.get_or_init(|| {
        let mut c = Config::default();
        for (n, _) in PHONES {
            c.extensions.push(Extension::new(n));
            c.accounts.push(SipAccount::new(n, &secret(n), n));
        }
        Arc::new(Snapshot::new(1, c))
    })
    .clone()
}

/// A request whose Request-URI is a reachable SIP URI ([`sip::message::target_uri`]) that
/// rsip cannot read (an IPv6 literal, a parameter value with `:`, as a phone's Contact
/// may carry) and that parses with a plain one in its place.
fn rsip_limit(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((line, rest)) = text.split_once("\r\n") else {
        return false;
    };
    let mut parts = line.split(' ');
    let (Some(m), Some(uri), Some("SIP/2.0"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    sip::message::target_uri(uri) == Some(uri)
        && sip::message::parse(format!("{m} sip:x@127.0.0.1 SIP/2.0\r\n{rest}").as_bytes()).is_ok()
}

fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fn secret(user: &str) -> String {
    format!("Secret-{user}x")
}

/// What one address was sent last.
#[derive(Default)]
struct Last {
    request: String,
    response: String,
    challenge: String,
}

struct Rig {
    pbx: Pbx,
    now: Instant,
    last: [Last; 3],
    spares: u64,
    /// The message being handled did not parse.
    echo: bool,
    /// Timer rounds run for this input (at most 20,000: bounded time).
    rounds: u32,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let Some(i) = challenge.find(&format!("{name}=")) else {
        return "";
    };
    let rest = &challenge[i + name.len() + 1..];
    match rest.strip_prefix('"') {
        Some(r) => &r[..r.find('"').unwrap_or(r.len())],
        None => rest.split([',', ' ']).next().unwrap_or(""),
    }
}

impl Rig {
    fn new() -> Rig {
        let now = Instant::now();
        let settings = Settings {
            voicemail_dir: "/nonexistent/voicemail".into(),
            sounds_dir: "/nonexistent/sounds".into(),
            recordings_dir: "/nonexistent/recordings".into(),
            ..Settings::default()
        };
        let pbx = Pbx::new(snapshot(), settings, 42, now, 1_700_000_000);
        let mut rig = Rig {
            pbx,
            now,
            last: Default::default(),
            spares: 0,
            echo: false,
            rounds: 0,
        };
        rig.drain();
        for (i, (user, at)) in PHONES.iter().enumerate().take(2) {
            let reg = |cseq: u32, auth: &str| {
                format!("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {at};branch=z9hG4bKreg{cseq};rport\r\nFrom: <sip:{user}@127.0.0.1>;tag=r{user}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{at}>\r\nExpires: 3600\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n")
            };
            rig.send(i, reg(1, "").as_bytes());
            let auth = format!(
                "Authorization: {}\r\n",
                rig.auth(i, "REGISTER", "sip:127.0.0.1")
            );
            rig.send(i, reg(2, &auth).as_bytes());
            assert!(
                rig.last[i].response.starts_with("SIP/2.0 200"),
                "{}",
                rig.last[i].response
            );
        }
        rig
    }

    fn auth(&self, i: usize, method: &str, uri: &str) -> String {
        let (user, _) = PHONES[i];
        let ch = &self.last[i].challenge;
        let nonce = param(ch, "nonce");
        let realm = param(ch, "realm");
        let r = digest_response(
            Algorithm::Md5,
            user,
            realm,
            &secret(user),
            method,
            uri,
            nonce,
            "auth",
            "00000001",
            "c0ffee",
        );
        format!("Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\"")
    }

    fn send(&mut self, i: usize, bytes: &[u8]) {
        if trace() {
            eprintln!(
                "<<< from {}\n{}",
                PHONES[i].1,
                String::from_utf8_lossy(bytes)
            );
        }
        let src = Source {
            proto: Proto::Udp,
            remote: PHONES[i].1.parse().unwrap(),
            local: PBX.parse().unwrap(),
        };
        // A request that does not parse gets its 400 (or 505) with the headers it came with,
        // broken or not (RFC 3261 8.2.6.2: the sender matches the answer by them).
        self.echo = sip::message::parse(bytes).is_err();
        self.pbx.handle_message(self.now, src, bytes);
        self.drain();
        self.echo = false;
    }

    /// Takes what the exchange sends (checking it parses) and hands it media spares.
    fn drain(&mut self) {
        let pool = self.pbx.media_pool();
        while pool.poll().is_some() {}
        let n = (pool.wanted() as u64).min(64u64.saturating_sub(self.spares));
        let first = self.spares + 1;
        pool.add((first..first + n).map(|id| media::Spare {
            id,
            port: 40000 + 2 * id as u16,
            stats: Default::default(),
        }));
        self.spares += n;
        while let Some(t) = self.pbx.poll_transmit() {
            if t.bytes.iter().all(|b| b.is_ascii_whitespace()) {
                continue; // a keep-alive
            }
            let echo = self.echo
                && (t.bytes.starts_with(b"SIP/2.0 4") || t.bytes.starts_with(b"SIP/2.0 5"));
            if let (false, Err(e)) = (echo || rsip_limit(&t.bytes), sip::message::parse(&t.bytes)) {
                panic!(
                    "the exchange sent what does not parse ({e}):\n{}",
                    String::from_utf8_lossy(&t.bytes)
                );
            }
            let text = String::from_utf8_lossy(&t.bytes).into_owned();
            if trace() {
                eprintln!(">>> to {}\n{text}", t.dest);
            }
            let Some(i) = PHONES
                .iter()
                .position(|(_, at)| at.parse::<SocketAddr>().ok() == Some(t.dest))
            else {
                continue;
            };
            let last = &mut self.last[i];
            if text.starts_with("SIP/2.0 ") {
                if text.starts_with("SIP/2.0 401") || text.starts_with("SIP/2.0 407") {
                    let h =
                        header(&text, "WWW-Authenticate").or(header(&text, "Proxy-Authenticate"));
                    last.challenge = h.unwrap_or("").to_string();
                }
                last.response = text;
            } else {
                last.request = text;
            }
        }
        while self.pbx.poll_request().is_some() {}
        while self.pbx.poll_record().is_some() {}
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.rounds < 20_000 {
            self.rounds += 1;
            let next = self.pbx.poll_timeout();
            if next > end {
                break;
            }
            self.now = next.max(self.now);
            self.pbx.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.pbx.handle_timeout(self.now);
        self.drain();
    }

    /// A message of the script with its placeholders filled in.
    fn fill(&self, i: usize, text: &str) -> Vec<u8> {
        let mut out = String::with_capacity(text.len() + 256);
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                out.push_str(&rest[at..]);
                rest = "";
                break;
            };
            let name = &rest[at + 2..at + end];
            rest = &rest[at + end + 1..];
            let last = &self.last[i];
            match name {
                "auth" => {
                    let line = text.lines().next().unwrap_or("");
                    let mut p = line.split(' ');
                    let (m, uri) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
                    out.push_str(&self.auth(i, m, uri));
                }
                "len" => out.push_str("${len}"),
                n => {
                    let (src, n) = match n.strip_prefix("r:") {
                        Some(n) => (&last.response, n),
                        None => (&last.request, n),
                    };
                    out.push_str(header(src, n).unwrap_or(""));
                }
            }
        }
        out.push_str(rest);
        let mut out = out.replace("\r\n", "\n").replace('\n', "\r\n");
        if let Some(at) = out.find("\r\n\r\n") {
            let len = (out.len() - at - 4).to_string();
            out = out.replace("${len}", &len);
        }
        out.into_bytes()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let mut rig = Rig::new();
    let mut steps = 0;
    for record in script.split("=== ").filter(|r| !r.is_empty()) {
        steps += 1;
        if steps > 64 {
            break;
        }
        let (head, body) = record.split_once('\n').unwrap_or((record, ""));
        let mut words = head.split_whitespace();
        let kind = words.next().unwrap_or("");
        let num = |w: Option<&str>| w.and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
        let a = num(words.next());
        let b = words.next().and_then(|w| w.chars().next());
        match kind {
            "A" | "B" | "C" => {
                let i = (kind.as_bytes()[0] - b'A') as usize;
                rig.advance(Duration::from_millis(a.min(600_000)));
                let msg = rig.fill(i, body);
                rig.send(i, &msg);
            }
            "D" => {
                let e = media::Event::Dtmf {
                    endpoint: a,
                    digit: b.unwrap_or('1'),
                    inband: false,
                };
                let now = rig.now;
                rig.pbx.handle_media_event(now, e);
                rig.drain();
            }
            "P" => {
                let now = rig.now;
                rig.pbx
                    .handle_media_event(now, media::Event::PlayDone { endpoint: a });
                rig.drain();
            }
            "T" => rig.advance(Duration::from_millis(a.min(3_600_000))),
            _ => {}
        }
    }
    // Every call ends by itself or when hung up, and every timer runs.
    let now = rig.now;
    for c in rig.pbx.calls(now) {
        rig.pbx.hang_up_call(now, c.id);
        rig.drain();
    }
    rig.advance(Duration::from_secs(70));
});
