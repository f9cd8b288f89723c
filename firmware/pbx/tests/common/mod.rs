//! What the exchange's tests share: a rig driving the core on a virtual clock, and raw
//! SIP from phones 101-103.
#![allow(dead_code)]

use config::{Config, Extension, SipAccount, Snapshot};
use pbx::{Pbx, Proto, Settings, Source, Transmit};
use sip::auth::{digest_response, Algorithm};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const PBX: &str = "127.0.0.1:5060";
pub const A: &str = "127.0.0.1:7001";
pub const B: &str = "127.0.0.1:7002";

pub fn config() -> Config {
    let mut c = Config::default();
    for n in ["101", "102", "103"] {
        c.extensions.push(Extension::new(n));
        c.accounts
            .push(SipAccount::new(n, &format!("Secret-{n}x"), n));
    }
    c
}

pub struct Rig {
    pub pbx: Pbx,
    pub now: Instant,
    pub out: Vec<Transmit>,
    /// Events of the relay's endpoints (digits, plays done), for the exchange.
    pub media: tokio::sync::mpsc::UnboundedReceiver<media::Event>,
    /// The relay's endpoints: the exchange's commands carried out on real sockets;
    /// none for a rig without sockets, which keeps the commands in `commands` instead.
    pub endpoints: Option<media::Endpoints>,
    pub commands: Vec<media::Command>,
    /// Spares a rig without sockets has handed in (numbered from 1, ports 40000 up);
    /// it hands in no more once `spares_left` is 0.
    pub spares_made: u64,
    pub spares_left: u64,
}

impl Rig {
    pub fn new(settings: Settings) -> Rig {
        Rig::with_config(settings, config())
    }

    pub fn with_config(settings: Settings, cfg: Config) -> Rig {
        let now = Instant::now();
        let relay = media::Relay::new("127.0.0.1".parse().unwrap(), 32000, 32999);
        let (tx, media) = tokio::sync::mpsc::unbounded_channel();
        relay.set_events(tx);
        let mut pbx = Pbx::new(
            Arc::new(Snapshot::new(1, cfg)),
            settings,
            42,
            now,
            1_700_000_000,
        );
        let mut endpoints = media::Endpoints::new(relay);
        endpoints.serve(pbx.media_pool());
        Rig {
            pbx,
            now,
            out: Vec::new(),
            media,
            endpoints: Some(endpoints),
            commands: Vec::new(),
            spares_made: 0,
            spares_left: u64::MAX,
        }
    }

    /// The shipped music on hold collection is `clip`.
    pub fn with_music(mut self, clip: media::Clip) -> Rig {
        if let Some(e) = &mut self.endpoints {
            e.set_music("system", Some(media::Music::Clip(clip)));
        }
        self
    }

    /// A rig with no media sockets at all: spares are numbers, commands are kept.
    pub fn without_sockets(settings: Settings, spares: u64) -> Rig {
        Rig::without_sockets_with(settings, config(), spares)
    }

    /// [`Rig::without_sockets`] with a configuration.
    pub fn without_sockets_with(settings: Settings, cfg: Config, spares: u64) -> Rig {
        let now = Instant::now();
        let (_tx, media) = tokio::sync::mpsc::unbounded_channel();
        let pbx = Pbx::new(
            Arc::new(Snapshot::new(1, cfg)),
            settings,
            42,
            now,
            1_700_000_000,
        );
        let mut rig = Rig {
            pbx,
            now,
            out: Vec::new(),
            media,
            endpoints: None,
            commands: Vec::new(),
            spares_made: 0,
            spares_left: spares,
        };
        rig.drain();
        rig
    }

    /// Carries out (or, without sockets, keeps) the exchange's media commands and
    /// hands it spares.
    fn serve_media(&mut self) {
        if let Some(eps) = self.endpoints.as_mut() {
            return eps.serve(self.pbx.media_pool());
        }
        let pool = self.pbx.media_pool();
        while let Some(c) = pool.poll() {
            self.commands.push(c);
        }
        let n = (pool.wanted() as u64).min(self.spares_left);
        let first = self.spares_made + 1;
        pool.add((first..first + n).map(|id| media::Spare {
            id,
            port: 40000 + 2 * id as u16,
            stats: Default::default(),
        }));
        self.spares_made += n;
        self.spares_left -= n;
    }

    /// Hands the exchange the endpoints' events that came within `wait` (real time:
    /// media runs on the relay's threads).
    pub fn media_events(&mut self, wait: Duration) -> Vec<media::Event> {
        let end = Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            while let Ok(e) = self.media.try_recv() {
                got.push(e.clone());
                self.pbx.handle_media_event(self.now, e);
                self.drain();
            }
            if Instant::now() >= end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn send(&mut self, from: &str, msg: &str) {
        self.send_over(Proto::Udp, from, msg);
    }

    /// A message from `from` over `proto`.
    pub fn send_over(&mut self, proto: Proto, from: &str, msg: &str) {
        let src = Source {
            proto,
            remote: from.parse().unwrap(),
            local: PBX.parse().unwrap(),
        };
        self.pbx.handle_message(self.now, src, msg.as_bytes());
        self.drain();
    }

    pub fn drain(&mut self) {
        self.serve_media();
        while let Some(t) = self.pbx.poll_transmit() {
            self.out.push(t);
        }
    }

    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
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

    /// Messages sent to `to` since the last call, as text.
    pub fn take(&mut self, to: &str) -> Vec<String> {
        let to: SocketAddr = to.parse().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = self.out.drain(..).partition(|t| t.dest == to);
        self.out = rest;
        mine.into_iter()
            .map(|t| String::from_utf8(t.bytes).unwrap())
            .collect()
    }
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let i = challenge.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &challenge[i..];
    if let Some(r) = rest.strip_prefix('"') {
        &r[..r.find('"').unwrap()]
    } else {
        rest.split([',', ' ']).next().unwrap()
    }
}

pub fn authorization(
    hdr: &str,
    challenge: &str,
    user: &str,
    pass: &str,
    method: &str,
    uri: &str,
    alg: Algorithm,
) -> String {
    let nonce = param(challenge, "nonce");
    let r = digest_response(
        alg, user, "pbx", pass, method, uri, nonce, "auth", "00000001", "c0ffee",
    );
    format!("{hdr}: Digest username=\"{user}\", realm=\"pbx\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n", alg.name())
}

/// Authorization for a REGISTER of `user` with `pass`, answering challenge `ch`.
pub fn reg_auth(ch: &str, user: &str, pass: &str) -> String {
    authorization(
        "Authorization",
        ch,
        user,
        pass,
        "REGISTER",
        "sip:127.0.0.1",
        Algorithm::Md5,
    )
}

pub fn register(user: &str, from: &str, cseq: u32, expires: u32, auth: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKreg{user}x{n};rport\r\nFrom: <sip:{user}@127.0.0.1>;tag=r{user}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{from}>\r\nExpires: {expires}\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

/// Registers `user` from `from` and returns the 200 OK.
pub fn do_register(rig: &mut Rig, user: &str, from: &str, expires: u32, alg: Algorithm) -> String {
    rig.send(from, &register(user, from, 1, expires, ""));
    let r = rig.take(from).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 401"), "{r}");
    let ch = header(&r, "WWW-Authenticate").unwrap().to_string();
    let auth = authorization(
        "Authorization",
        &ch,
        user,
        &format!("Secret-{user}x"),
        "REGISTER",
        "sip:127.0.0.1",
        alg,
    );
    rig.send(from, &register(user, from, 2, expires, &auth));
    rig.take(from).pop().unwrap()
}

pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

pub fn invite(branch: &str, cseq: u32, auth: &str) -> String {
    invite_with(branch, cseq, auth, SDP)
}

/// An INVITE from 101 to 102 with `sdp` as its body (none when empty: a late offer).
pub fn invite_with(branch: &str, cseq: u32, auth: &str, sdp: &str) -> String {
    let ty = if sdp.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "INVITE sip:102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch={branch};rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>\r\nCall-ID: call-1\r\nCSeq: {cseq} INVITE\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\n{auth}{ty}Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// A response from B to a request the exchange sent it.
pub fn answer(req: &str, status: &str, to_tag: &str, body: &str) -> String {
    answer_at(req, status, to_tag, body, &format!("102@{B}"))
}

/// A response from the phone whose Contact is `sip:{at}` to a request the exchange
/// sent it.
pub fn answer_at(req: &str, status: &str, to_tag: &str, body: &str, at: &str) -> String {
    let mut s = format!("SIP/2.0 {status}\r\n");
    for h in ["Via", "From", "Call-ID", "CSeq"] {
        s.push_str(&format!("{h}: {}\r\n", header(req, h).unwrap()));
    }
    let to = header(req, "To").unwrap();
    if to.contains("tag=") {
        s.push_str(&format!("To: {to}\r\n"));
    } else {
        s.push_str(&format!("To: {to};tag={to_tag}\r\n"));
    }
    s.push_str(&format!("Contact: <sip:{at}>\r\n"));
    if !body.is_empty() {
        s.push_str("Content-Type: application/sdp\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}

/// 101 calls 102 (registered at B); returns the INVITE B received.
pub fn start_call(rig: &mut Rig) -> String {
    start_call_with(rig, SDP)
}

/// 101 calls 102 with `sdp` in its INVITE; returns the INVITE B received.
pub fn start_call_with(rig: &mut Rig, sdp: &str) -> String {
    send_authed_invite(rig, sdp);
    assert!(rig.take(A)[0].starts_with("SIP/2.0 100"));
    let to_b = rig.take(B);
    assert_eq!(to_b.len(), 1, "{to_b:?}");
    let inv = to_b[0].clone();
    assert!(
        inv.starts_with(&format!("INVITE sip:102@{B} SIP/2.0")),
        "{inv}"
    );
    assert!(
        inv.contains("c=IN IP4 127.0.0.1") && !inv.contains("m=audio 9000"),
        "SDP must point at the relay: {inv}"
    );
    inv
}

/// 102 registers at B; 101 sends its INVITE (with `sdp`, none when empty), is
/// challenged, acknowledges the 407 and sends it again with its credentials. What the
/// exchange answers to that is left for the caller to take.
pub fn send_authed_invite(rig: &mut Rig, sdp: &str) {
    assert!(do_register(rig, "102", B, 3600, Algorithm::Md5).starts_with("SIP/2.0 200"));
    rig.send(A, &invite_with("z9hG4bKinv1", 1, "", sdp));
    let got = rig.take(A);
    assert!(got[0].starts_with("SIP/2.0 100"), "{got:?}");
    assert!(got[1].starts_with("SIP/2.0 407"), "{got:?}");
    let ch = header(&got[1], "Proxy-Authenticate").unwrap().to_string();
    rig.send(A, &format!("ACK sip:102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKinv1;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag=x\r\nCall-ID: call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
    let auth = authorization(
        "Proxy-Authorization",
        &ch,
        "101",
        "Secret-101x",
        "INVITE",
        "sip:102@127.0.0.1",
        Algorithm::Md5,
    );
    rig.send(A, &invite_with("z9hG4bKinv2", 2, &auth, sdp));
}

/// `user` (at `from`) calls `to`, answering the 407; returns the final answer it got.
pub fn call_as(rig: &mut Rig, user: &str, from: &str, to: &str, call_id: &str) -> String {
    call_as_with(rig, user, from, to, call_id, SDP)
}

/// Like [`call_as`], offering `sdp`.
pub fn call_as_with(
    rig: &mut Rig,
    user: &str,
    from: &str,
    to: &str,
    call_id: &str,
    sdp: &str,
) -> String {
    let inv = |branch: &str, cseq: u32, auth: &str| {
        format!(
            "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\nFrom: <sip:{user}@127.0.0.1>;tag=t{call_id}\r\nTo: <sip:{to}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{user}@{from}>\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    rig.send(from, &inv(&format!("z9hG4bK{call_id}a"), 1, ""));
    let ch = rig
        .take(from)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 407"))
        .expect("407");
    let ch = header(&ch, "Proxy-Authenticate").unwrap().to_string();
    let auth = authorization(
        "Proxy-Authorization",
        &ch,
        user,
        &format!("Secret-{user}x"),
        "INVITE",
        &format!("sip:{to}@127.0.0.1"),
        Algorithm::Md5,
    );
    rig.send(from, &inv(&format!("z9hG4bK{call_id}b"), 2, &auth));
    rig.take(from)
        .into_iter()
        .find(|m| !m.starts_with("SIP/2.0 100"))
        .unwrap_or_default()
}
