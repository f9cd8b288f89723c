//! The gateway of one ISDN interface: Q.931 calls on the span become SIP calls to the
//! exchange core and back, and each call's B-channel audio is carried as RTP (PCMA on
//! EuroISDN, PCMU on NI-2) between the B-channel and the core's relay.
//!
//! All its SIP travels on loopback between the gateway's own address and pbxd's SIP
//! port, so a request is answered at once and never lost; the gateway answers
//! retransmitted INVITEs with its last response and acknowledges every 2xx it gets, and
//! sends its own requests once.

use crate::{dahdi, vspan};
use config::{IsdnInterface, IsdnLine, IsdnSide, SpanDriver, SwitchType};
use isdn::call::{self, CallId, Event, Outgoing, Side, Variant};
use isdn::dchan::Dchannel;
use isdn::q921;
use isdn::q931::{cause_to_sip, sip_to_cause, PartyNumber};
use media::rtp;
use media::sdp::{self, Audio, Codec, Direction};
use rand::Rng;
use sip::build::Response;
use sip::message::{get, header_param, uri_part, uri_user};
use sip::rsip::{self, SipMessage};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the web and pbxctl show of a span.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SpanStatus {
    /// The D-channel's data link is established.
    pub link_up: bool,
    /// Why it is down, or what the driver says.
    pub detail: String,
    /// Calls in progress on the span.
    pub calls: usize,
    /// B-channels in use.
    pub channels_busy: Vec<u8>,
    /// The span's alarms (DAHDI spans), e.g. "alarm: red (no signal or no frame sync)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
}

/// A span's D-channel, whichever driver carries it.
enum Dline {
    Virtual(vspan::Dline),
    Dahdi(dahdi::Dchan),
}

/// What waiting on the D-channel gave.
enum Dread {
    Frame(usize),
    /// A DAHDI event (alarm changes among them).
    Event(i32),
    Nothing,
}

impl Dline {
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<Dread> {
        match self {
            Dline::Virtual(l) => Ok(match l.recv(buf).await? {
                Some(n) => Dread::Frame(n),
                None => Dread::Nothing,
            }),
            Dline::Dahdi(d) => Ok(match d.recv(buf).await? {
                dahdi::Dread::Frame(n) => Dread::Frame(n),
                dahdi::Dread::Event(e) => Dread::Event(e),
                dahdi::Dread::Nothing => Dread::Nothing,
            }),
        }
    }

    fn send(&mut self, frame: &[u8]) {
        match self {
            Dline::Virtual(l) => l.send(frame),
            Dline::Dahdi(d) => d.send(frame),
        }
    }
}

/// A B-channel, whichever driver carries it.
pub enum Bline {
    Virtual(vspan::Bchan),
    Dahdi(dahdi::Bchan),
}

impl Bline {
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Bline::Virtual(b) => b.sock.recv(buf).await,
            Bline::Dahdi(b) => b.recv(buf).await,
        }
    }

    fn send(&self, audio: &[u8]) {
        match self {
            Bline::Virtual(b) => b.send(audio),
            Bline::Dahdi(b) => b.send(audio),
        }
    }

    fn drain(&self) {
        match self {
            Bline::Virtual(b) => b.drain(),
            Bline::Dahdi(b) => b.drain(),
        }
    }
}

pub type Status = Arc<Mutex<SpanStatus>>;

/// One gateway's settings.
pub struct GatewayConfig {
    pub iface: IsdnInterface,
    /// The gateway's SIP socket, bound by the caller so the core knows its port (its
    /// RTP uses the same IP).
    pub sip: std::net::UdpSocket,
    /// pbxd's SIP address.
    pub core: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Offered by the span: we send the INVITE.
    FromIsdn,
    /// Offered by the core: we got the INVITE.
    ToIsdn,
}

struct GwCall {
    q931: CallId,
    dir: Dir,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our From and To headers as we send them in the dialog (without tags).
    local_uri: String,
    remote_uri: String,
    /// Where in-dialog requests go (the far end's Contact).
    target: String,
    invite_branch: String,
    /// The core's INVITE (ToIsdn), kept to answer it.
    invite: Option<rsip::Request>,
    /// The last response sent to the core's INVITE (for retransmissions).
    last_response: Option<Vec<u8>>,
    cseq: u32,
    answered: bool,
    /// The INVITE went out (FromIsdn) and has no final answer.
    inviting: bool,
    /// Digits collected (FromIsdn, overlap).
    collected: String,
    /// Digits still to send (ToIsdn, overlap).
    rest: String,
    rtp: Option<Arc<UdpSocket>>,
    remote_rtp: Option<SocketAddr>,
    /// The telephone-event payload type both ends agreed on (RFC 4733), if any.
    te_pt: Option<u8>,
    bridge: Option<JoinHandle<()>>,
    ended: bool,
}

fn token() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// The whole gateway: run until `stop` turns true.
pub async fn run(cfg: GatewayConfig, status: Status, mut stop: watch::Receiver<bool>) {
    let name = cfg.iface.name.clone();
    if let Err(e) = serve(cfg, status.clone(), &mut stop).await {
        tracing::warn!(interface = %name, "ISDN span stopped: {e}");
        let mut s = status.lock().unwrap_or_else(|p| p.into_inner());
        s.link_up = false;
        s.detail = e.to_string();
    }
}

struct Gw {
    iface: IsdnInterface,
    sip: Arc<UdpSocket>,
    me: SocketAddr,
    core: SocketAddr,
    dch: Dchannel,
    line: Dline,
    bchans: HashMap<u8, Arc<Bline>>,
    calls: Vec<GwCall>,
    status: Status,
    /// A DAHDI span's control device and number, for its alarms.
    dahdi: Option<(dahdi::Ctl, u32)>,
}

/// Opens a DAHDI span, trying again every 10 s until it opens or `stop` (the driver
/// may be loaded, or dahdi_cfg run, after pbxd starts).
async fn open_dahdi(
    span: u32,
    line: IsdnLine,
    status: &Status,
    stop: &mut watch::Receiver<bool>,
) -> Option<dahdi::Span> {
    loop {
        match dahdi::Span::open(&dahdi::dev_dir(), span, line) {
            Ok(s) => return Some(s),
            Err(e) => {
                let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
                if st.detail != e.to_string() {
                    tracing::warn!(span, "DAHDI span: {e}");
                    st.detail = e.to_string();
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return None,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

async fn serve(
    cfg: GatewayConfig,
    status: Status,
    stop: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut bchans = HashMap::new();
    let (line, dahdi) = match &cfg.iface.span {
        SpanDriver::Virtual { path } => {
            let path = PathBuf::from(path);
            let line = vspan::Dline::listen(&path)?;
            for n in cfg.iface.line.channels() {
                let b = vspan::Bchan::bind(&path, n)?;
                bchans.insert(n, Arc::new(Bline::Virtual(b)));
            }
            (Dline::Virtual(line), None)
        }
        SpanDriver::Dahdi { span } => {
            let Some(s) = open_dahdi(*span, cfg.iface.line, &status, stop).await else {
                return Ok(());
            };
            tracing::info!(
                interface = %cfg.iface.name,
                span,
                dchan = s.plan.dchan,
                bchans = s.bchans.len(),
                "DAHDI span opened"
            );
            for (n, b) in s.bchans {
                bchans.insert(n, Arc::new(Bline::Dahdi(b)));
            }
            (Dline::Dahdi(s.dchan), Some((s.ctl, s.span)))
        }
    };
    let network = cfg.iface.side == IsdnSide::Network;
    let side = if network { Side::Network } else { Side::User };
    let variant = match cfg.iface.switch_type {
        SwitchType::Euroisdn => Variant::Etsi,
        SwitchType::Ni2 => Variant::Ni2,
    };
    let (link, mut calls) = match cfg.iface.line {
        IsdnLine::E1 => (q921::Config::pri(network), call::Config::e1(side)),
        IsdnLine::T1 => (q921::Config::pri(network), call::Config::t1(side)),
        IsdnLine::Bri => (
            q921::Config::bri_ptmp(network, rand::thread_rng().gen()),
            call::Config::bri(side, variant),
        ),
    };
    calls.variant = variant;
    // A fractional span (DAHDI) offers only the B-channels it has.
    calls.channels.retain(|c| bchans.contains_key(c));
    // The digits of an overlap call are routed 5 s after the last one.
    calls.timers.t302 = Duration::from_secs(5);
    cfg.sip.set_nonblocking(true)?;
    let sip = Arc::new(UdpSocket::from_std(cfg.sip)?);
    let mut gw = Gw {
        me: sip.local_addr()?,
        iface: cfg.iface,
        sip,
        core: cfg.core,
        dch: Dchannel::new(link, calls),
        line,
        bchans,
        calls: Vec::new(),
        status,
        dahdi,
    };
    gw.set_status(|s| s.detail = "waiting for the line".into());
    gw.check_alarms();
    let mut alarm_poll = tokio::time::interval(Duration::from_secs(5));
    gw.dch.start(Instant::now());
    let mut frame = [0u8; 1024];
    let mut dgram = vec![0u8; 65536];
    loop {
        gw.flush();
        let wake = gw
            .dch
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let sip = gw.sip.clone();
        tokio::select! {
            _ = stop.changed() => {
                if *stop.borrow() {
                    for c in std::mem::take(&mut gw.calls) {
                        if let Some(b) = c.bridge { b.abort(); }
                    }
                    return Ok(());
                }
            }
            r = gw.line.recv(&mut frame) => match r? {
                Dread::Frame(n) => gw.dch.receive(Instant::now(), &frame[..n]),
                Dread::Event(e) => {
                    tracing::debug!(interface = %gw.iface.name, event = e, "DAHDI event");
                    gw.check_alarms();
                }
                Dread::Nothing => {}
            },
            _ = alarm_poll.tick(), if gw.dahdi.is_some() => gw.check_alarms(),
            r = sip.recv_from(&mut dgram) => {
                if let Ok((n, src)) = r {
                    gw.sip_in(&dgram[..n], src);
                }
            }
            _ = tokio::time::sleep_until(wake) => gw.dch.handle_timeout(Instant::now()),
        }
    }
}

impl Gw {
    /// Reads a DAHDI span's alarms into its state.
    fn check_alarms(&mut self) {
        let Some((ctl, span)) = &self.dahdi else {
            return;
        };
        let alarm = match ctl.span_stat(*span) {
            Ok((a, _)) => dahdi::alarm_text(a),
            Err(e) => Some(e.to_string()),
        };
        let name = self.iface.name.clone();
        self.set_status(|s| {
            if s.alarm != alarm {
                match &alarm {
                    Some(a) => tracing::warn!(interface = %name, "ISDN span {a}"),
                    None => tracing::info!(interface = %name, "ISDN span alarms cleared"),
                }
                s.alarm = alarm;
            }
        });
    }

    fn set_status(&self, f: impl FnOnce(&mut SpanStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }

    /// Frames to the line, events to the exchange, until both are quiet.
    fn flush(&mut self) {
        loop {
            let now = Instant::now();
            self.dch.pump(now);
            while let Some(f) = self.dch.poll_transmit() {
                self.line.send(&f);
            }
            let Some(e) = self.dch.poll_event() else {
                break;
            };
            self.isdn_event(e);
        }
        let busy = self.dch.calls.busy_channels();
        let n = self.calls.len();
        self.set_status(|s| {
            s.calls = n;
            s.channels_busy = busy;
        });
    }

    fn send_sip(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.sip.try_send_to(bytes, to) {
            tracing::warn!("gateway SIP send: {e}");
        }
    }

    /// Our SDP: the span's law, and telephone-events (for keypad digits to the line)
    /// with payload type `te`.
    fn sdp(&self, port: u16, te: Option<u8>) -> Vec<u8> {
        let alaw = self.iface.switch_type == SwitchType::Euroisdn;
        let mut codecs = vec![Codec {
            pt: if alaw { 8 } else { 0 },
            name: self.iface.codec().into(),
            rate: 8000,
            fmtp: None,
        }];
        if let Some(pt) = te {
            codecs.push(Codec {
                pt,
                name: "telephone-event".into(),
                rate: 8000,
                fmtp: Some("0-15".into()),
            });
        }
        let audio = Audio {
            addr: self.me.ip(),
            port,
            codecs,
            direction: Direction::SendRecv,
            ptime: Some(20),
            index: 0,
            rejected: Vec::new(),
            secure: false,
            crypto: Vec::new(),
            webrtc: None,
        };
        sdp::write(rand::thread_rng().gen::<u32>().into(), 1, &audio)
    }

    fn find(&self, q: CallId) -> Option<usize> {
        self.calls.iter().position(|c| c.q931 == q)
    }

    fn by_call_id(&self, id: &str) -> Option<usize> {
        self.calls.iter().position(|c| c.call_id == id)
    }

    fn isdn_event(&mut self, e: Event) {
        let now = Instant::now();
        match e {
            Event::Link { up, why } => {
                tracing::info!(interface = %self.iface.name, up, %why, "ISDN data link");
                self.set_status(|s| {
                    s.link_up = up;
                    s.detail = if up { String::new() } else { why };
                });
            }
            Event::Setup {
                call,
                called,
                calling,
                complete,
                ..
            } => {
                let mut c = self.new_call(call, Dir::FromIsdn);
                c.collected = called;
                let calling = calling
                    .filter(|c| c.presentation_allowed && !c.digits.is_empty())
                    .map(|c| c.digits);
                c.local_uri = format!(
                    "<sip:{}@{}>",
                    calling.as_deref().unwrap_or("anonymous"),
                    self.me
                );
                self.calls.push(c);
                if complete || !self.iface.overlap {
                    self.dch.calls.proceeding(now, call);
                    self.invite_core(call);
                } else {
                    self.dch.calls.more_digits(now, call);
                }
            }
            Event::Digits {
                call,
                digits,
                complete,
            } => {
                let Some(i) = self.find(call) else { return };
                if self.calls[i].inviting || self.calls[i].answered {
                    return;
                }
                self.calls[i].collected.push_str(&digits);
                if complete {
                    self.dch.calls.proceeding(now, call);
                    self.invite_core(call);
                }
            }
            Event::MoreDigits { call } => {
                let Some(i) = self.find(call) else { return };
                let rest = std::mem::take(&mut self.calls[i].rest);
                let n = rest.chars().count();
                for (k, d) in rest.chars().enumerate() {
                    self.dch
                        .calls
                        .information(now, call, &d.to_string(), k + 1 == n);
                }
            }
            Event::Alerting { call, inband } | Event::Progress { call, inband } => {
                let Some(i) = self.find(call) else { return };
                if self.calls[i].dir != Dir::ToIsdn || self.calls[i].answered {
                    return;
                }
                if inband {
                    self.start_bridge(i);
                    let port = self.rtp_port(i);
                    let body = self.sdp(port, self.calls[i].te_pt);
                    self.respond_invite(i, 183, "Session Progress", &body);
                } else {
                    self.respond_invite(i, 180, "Ringing", &[]);
                }
            }
            Event::Answered { call } => {
                let Some(i) = self.find(call) else { return };
                self.calls[i].answered = true;
                self.start_bridge(i);
                let port = self.rtp_port(i);
                let body = self.sdp(port, self.calls[i].te_pt);
                self.respond_invite(i, 200, "OK", &body);
            }
            Event::Ended { call, cause } => {
                let Some(i) = self.find(call) else { return };
                self.calls[i].ended = true;
                let c = &self.calls[i];
                match (c.dir, c.answered) {
                    (_, true) => self.bye(i),
                    (Dir::ToIsdn, false) => {
                        let status = cause_to_sip(cause);
                        self.respond_invite(i, status, reason(status), &[]);
                    }
                    (Dir::FromIsdn, false) if c.inviting => {
                        // Kept until the INVITE's final answer, which must be
                        // acknowledged (and a 2xx that crossed the CANCEL ended by BYE).
                        self.cancel(i);
                        return;
                    }
                    _ => {}
                }
                self.drop_call(i);
            }
            Event::Connected { .. } | Event::Proceeding { .. } => {}
            Event::Restarted { .. } => {}
            Event::Error(e) => tracing::debug!(interface = %self.iface.name, "Q.931: {e}"),
        }
    }

    fn new_call(&self, q: CallId, dir: Dir) -> GwCall {
        GwCall {
            q931: q,
            dir,
            call_id: format!("{}@{}", token(), self.me.ip()),
            local_tag: token(),
            remote_tag: None,
            local_uri: String::new(),
            remote_uri: String::new(),
            target: String::new(),
            invite_branch: format!("z9hG4bK{}", token()),
            invite: None,
            last_response: None,
            cseq: 1,
            answered: false,
            inviting: false,
            collected: String::new(),
            rest: String::new(),
            rtp: None,
            remote_rtp: None,
            te_pt: None,
            bridge: None,
            ended: false,
        }
    }

    fn drop_call(&mut self, i: usize) {
        let c = self.calls.remove(i);
        if let Some(b) = c.bridge {
            b.abort();
        }
    }

    fn rtp_port(&self, i: usize) -> u16 {
        self.calls[i]
            .rtp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map_or(0, |a| a.port())
    }

    /// Binds the call's RTP socket (synchronously, so SDP can name it at once).
    fn ensure_rtp(&mut self, i: usize) -> bool {
        if self.calls[i].rtp.is_some() {
            return true;
        }
        let s = std::net::UdpSocket::bind(SocketAddr::new(self.me.ip(), 0))
            .and_then(|s| {
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .and_then(UdpSocket::from_std);
        match s {
            Ok(s) => {
                self.calls[i].rtp = Some(Arc::new(s));
                true
            }
            Err(e) => {
                tracing::warn!("gateway RTP socket: {e}");
                false
            }
        }
    }

    fn invite_core(&mut self, q: CallId) {
        let Some(i) = self.find(q) else { return };
        if !self.ensure_rtp(i) {
            self.dch.calls.hangup(Instant::now(), q, 47);
            self.drop_call(i);
            return;
        }
        let called = self.iface.significant(&self.calls[i].collected);
        let port = self.rtp_port(i);
        let body = self.sdp(port, Some(OUR_TE_PT));
        let core = self.core;
        let c = &mut self.calls[i];
        c.te_pt = Some(OUR_TE_PT);
        c.remote_uri = format!("<sip:{called}@{core}>");
        c.target = format!("sip:{called}@{core}");
        c.inviting = true;
        let branch = c.invite_branch.clone();
        self.send_request(i, "INVITE", Some(&branch), 1, &body);
    }

    /// Sends a request of call `i`'s dialog to the core: the INVITE (no To tag yet, with
    /// the SDP body) and the BYE, CANCEL and ACK after it.
    fn send_request(
        &mut self,
        i: usize,
        method: &str,
        branch: Option<&str>,
        cseq: u32,
        body: &[u8],
    ) {
        let c = &self.calls[i];
        let to_tag = c
            .remote_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let branch = branch
            .map(str::to_string)
            .unwrap_or_else(|| format!("z9hG4bK{}", token()));
        let contact = format!("<sip:isdn@{}>", self.me);
        let bytes = sip::build::Request {
            method,
            uri: &c.target,
            via: &format!("SIP/2.0/UDP {};branch={branch};rport", self.me),
            from: &format!("{};tag={}", c.local_uri, c.local_tag),
            to: &format!("{}{to_tag}", c.remote_uri),
            call_id: &c.call_id,
            cseq,
            contact: (method == "INVITE").then_some(contact.as_str()),
            body: sip::build::Body::Sdp(body),
            ..Default::default()
        }
        .build();
        self.send_sip(&bytes, self.core);
    }

    fn bye(&mut self, i: usize) {
        self.calls[i].cseq += 1;
        let cseq = self.calls[i].cseq;
        self.send_request(i, "BYE", None, cseq, &[]);
    }

    fn cancel(&mut self, i: usize) {
        // CANCEL matches the INVITE: same branch, same CSeq number, no To tag.
        let branch = self.calls[i].invite_branch.clone();
        self.calls[i].remote_tag = None;
        self.send_request(i, "CANCEL", Some(&branch), 1, &[]);
    }

    fn respond_invite(&mut self, i: usize, status: u16, reason: &str, body: &[u8]) {
        let Some(req) = self.calls[i].invite.clone() else {
            return;
        };
        let contact = format!("<sip:isdn@{}>", self.me);
        let tag = (status > 100).then(|| self.calls[i].local_tag.clone());
        let bytes = Response::to(&req, status, reason)
            .tag(tag.as_deref())
            .contact(&contact)
            .sdp(body)
            .build();
        if status >= 200 {
            self.calls[i].last_response = Some(bytes.clone());
        }
        self.send_sip(&bytes, self.core);
    }

    fn start_bridge(&mut self, i: usize) {
        if self.calls[i].bridge.is_some() || !self.ensure_rtp(i) {
            return;
        }
        let Some(ch) = self.dch.calls.channel(self.calls[i].q931) else {
            return;
        };
        let Some(b) = self.bchans.get(&ch).cloned() else {
            return;
        };
        let rtp = self.calls[i].rtp.clone().expect("bound above");
        let remote = self.calls[i].remote_rtp;
        let alaw = self.iface.switch_type == SwitchType::Euroisdn;
        let pt = if alaw { 8 } else { 0 };
        let te = self.calls[i].te_pt;
        b.drain();
        self.calls[i].bridge = Some(tokio::spawn(bridge(b, rtp, remote, pt, te, alaw)));
    }

    fn sip_in(&mut self, bytes: &[u8], src: SocketAddr) {
        // Only the exchange core places calls on the span: anything else on the box
        // would bypass routing and permission groups.
        if src.port() != self.core.port() || src.ip().to_canonical() != self.core.ip() {
            tracing::debug!("gateway: SIP from {src} ignored (not the core)");
            return;
        }
        let msg = match sip::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!("gateway: bad SIP from {src}: {e}");
                return;
            }
        };
        match msg {
            SipMessage::Request(req) => self.request(req, src),
            SipMessage::Response(resp) => self.response(resp),
        }
    }

    fn request(&mut self, req: rsip::Request, src: SocketAddr) {
        let now = Instant::now();
        let method = req.method.to_string();
        let call_id = get(&req.headers, "Call-ID").unwrap_or("").to_string();
        let existing = self.by_call_id(&call_id);
        let reply = |gw: &Gw, status: u16, reason: &str| {
            let b = Response::to(&req, status, reason).build();
            gw.send_sip(&b, src);
        };
        match method.as_str() {
            "INVITE" => {
                if let Some(i) = existing {
                    // A retransmission (or a re-INVITE, which we do not take).
                    match &self.calls[i].last_response {
                        Some(r) if self.calls[i].dir == Dir::ToIsdn => {
                            let r = r.clone();
                            self.send_sip(&r, src);
                        }
                        _ if self.calls[i].dir == Dir::ToIsdn => reply(self, 100, "Trying"),
                        _ => reply(self, 488, "Not Acceptable Here"),
                    }
                    return;
                }
                self.offer_to_isdn(req, src, call_id, now);
            }
            "ACK" => {}
            "BYE" => match existing {
                Some(i) => {
                    reply(self, 200, "OK");
                    let q = self.calls[i].q931;
                    self.dch.calls.hangup(now, q, 16);
                    self.drop_call(i);
                }
                None => reply(self, 481, "Call/Transaction Does Not Exist"),
            },
            "CANCEL" => match existing {
                Some(i) if self.calls[i].dir == Dir::ToIsdn && !self.calls[i].answered => {
                    reply(self, 200, "OK");
                    self.respond_invite(i, 487, "Request Terminated", &[]);
                    let q = self.calls[i].q931;
                    self.dch.calls.hangup(now, q, 16);
                    self.drop_call(i);
                }
                Some(_) => reply(self, 200, "OK"),
                None => reply(self, 481, "Call/Transaction Does Not Exist"),
            },
            "OPTIONS" => reply(self, 200, "OK"),
            _ => reply(self, 501, "Not Implemented"),
        }
    }

    fn offer_to_isdn(
        &mut self,
        req: rsip::Request,
        src: SocketAddr,
        call_id: String,
        now: Instant,
    ) {
        let uri = req.uri.to_string();
        let called: String = uri_user(&uri)
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#')
            .collect();
        let from = get(&req.headers, "From").unwrap_or("").to_string();
        let calling: String = uri_user(uri_part(&from))
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        let offered = sdp::parse(&req.body).ok();
        let offer = offered.as_ref().and_then(|a| a.rtp_target());
        let te_pt = offered.as_ref().and_then(te_of);
        let bad = |gw: &Gw, status: u16, why: &str| {
            let b = Response::to(&req, status, why).tag(Some(&token())).build();
            gw.send_sip(&b, src);
        };
        if called.is_empty() {
            return bad(self, 484, "Address Incomplete");
        }
        if offer.is_none() {
            return bad(self, 488, "Not Acceptable Here");
        }
        let overlap = self.iface.overlap;
        let (first, rest) = if overlap {
            let mut ch = called.chars();
            let f: String = ch.next().into_iter().collect();
            (f, ch.collect::<String>())
        } else {
            (called.clone(), String::new())
        };
        let mut calling_pn = PartyNumber::new(&calling);
        calling_pn.presentation_allowed = !calling.is_empty();
        let q = match self.dch.calls.setup(
            now,
            Outgoing {
                called: first,
                calling: (!calling.is_empty()).then_some(calling_pn),
                complete: !overlap,
                ..Outgoing::default()
            },
        ) {
            Ok(q) => q,
            Err(e) => {
                let status = cause_to_sip(e.cause());
                return bad(self, status, reason(status));
            }
        };
        let mut c = self.new_call(q, Dir::ToIsdn);
        c.call_id = call_id;
        c.rest = rest;
        c.remote_rtp = offer;
        c.te_pt = te_pt;
        c.remote_tag = get(&req.headers, "From")
            .and_then(|f| header_param(f, "tag"))
            .map(str::to_string);
        c.local_uri = get(&req.headers, "To")
            .map(|t| format!("<{}>", uri_part(t)))
            .unwrap_or_default();
        c.remote_uri = format!("<{}>", uri_part(&from));
        c.target = get(&req.headers, "Contact")
            .and_then(sip::message::target_uri)
            .map_or_else(|| format!("sip:{}", src), str::to_string);
        c.invite = Some(req);
        self.calls.push(c);
        let i = self.calls.len() - 1;
        self.respond_invite(i, 100, "Trying", &[]);
    }

    fn response(&mut self, resp: rsip::Response) {
        let now = Instant::now();
        let status = u16::from(resp.status_code.clone());
        let call_id = get(&resp.headers, "Call-ID").unwrap_or("").to_string();
        let cseq = get(&resp.headers, "CSeq").unwrap_or("").to_string();
        if !cseq.ends_with("INVITE") {
            return; // answers to BYE and CANCEL: nothing to do
        }
        let Some(i) = self.by_call_id(&call_id) else {
            return;
        };
        if self.calls[i].dir != Dir::FromIsdn {
            return;
        }
        if let Some(t) = get(&resp.headers, "To").and_then(|t| header_param(t, "tag")) {
            self.calls[i].remote_tag = Some(t.to_string());
        }
        if let Some(ct) = get(&resp.headers, "Contact").and_then(sip::message::target_uri) {
            self.calls[i].target = ct.to_string();
        }
        let answered_sdp = sdp::parse(&resp.body).ok();
        let answer = answered_sdp.as_ref().and_then(|a| a.rtp_target());
        if let Some(a) = &answered_sdp {
            // What the answer keeps of our telephone-events offer.
            self.calls[i].te_pt = te_of(a);
        }
        let q = self.calls[i].q931;
        match status {
            100 => {}
            180..=182 => self.dch.calls.alerting(now, q, false),
            183 => {
                if let Some(a) = answer {
                    self.calls[i].remote_rtp = Some(a);
                    self.start_bridge(i);
                    self.dch.calls.alerting(now, q, true);
                }
            }
            200..=299 => {
                self.ack(i, None);
                let c = &mut self.calls[i];
                c.inviting = false;
                if c.ended {
                    // The line hung up while the INVITE was out: the 2xx crossed
                    // our CANCEL.
                    self.bye(i);
                    self.drop_call(i);
                    return;
                }
                if c.answered {
                    return; // a retransmitted 2xx, acknowledged again above
                }
                c.answered = true;
                if let Some(a) = answer {
                    c.remote_rtp = Some(a);
                }
                // Early media may have come from elsewhere than the answer names.
                if let Some(b) = self.calls[i].bridge.take() {
                    b.abort();
                }
                self.start_bridge(i);
                self.dch.calls.connect(now, q);
            }
            _ if status >= 300 => {
                let branch = self.calls[i].invite_branch.clone();
                self.ack(i, Some(&branch));
                if !self.calls[i].ended {
                    self.dch.calls.hangup(now, q, sip_to_cause(status));
                }
                self.drop_call(i);
            }
            _ => {}
        }
    }

    fn ack(&mut self, i: usize, branch: Option<&str>) {
        self.send_request(i, "ACK", branch, 1, &[]);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        _ => "Call Failed",
    }
}

/// The telephone-event payload type the gateway offers.
const OUR_TE_PT: u8 = 101;

/// The telephone-event payload type an SDP lists, if any.
fn te_of(a: &Audio) -> Option<u8> {
    a.dtmf().map(|c| c.pt)
}

/// Carries one call's audio: B-channel chunks out as RTP, RTP payloads in to the
/// B-channel, telephone-events (payload type `te`) in as DTMF tones while the call's
/// other audio waits. Runs until aborted when the call ends.
async fn bridge(
    b: Arc<Bline>,
    rtp: Arc<UdpSocket>,
    mut remote: Option<SocketAddr>,
    pt: u8,
    te: Option<u8>,
    alaw: bool,
) {
    let mut tones = media::dtmf::ToneOut::new(alaw);
    let ssrc: u32 = rand::thread_rng().gen();
    let mut seq: u16 = rand::thread_rng().gen();
    let mut ts: u32 = rand::thread_rng().gen();
    let mut from_line = [0u8; 512];
    let mut from_net = [0u8; 2048];
    let mut pkt = Vec::with_capacity(12 + 512);
    loop {
        tokio::select! {
            r = b.recv(&mut from_line) => {
                let Ok(n) = r else { continue };
                let Some(to) = remote else { continue };
                pkt.clear();
                pkt.extend_from_slice(&[0x80, pt & 0x7f]);
                pkt.extend_from_slice(&seq.to_be_bytes());
                pkt.extend_from_slice(&ts.to_be_bytes());
                pkt.extend_from_slice(&ssrc.to_be_bytes());
                pkt.extend_from_slice(&from_line[..n]);
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(n as u32);
                let _ = rtp.send_to(&pkt, to).await;
            }
            r = rtp.recv_from(&mut from_net) => {
                let Ok((n, src)) = r else { continue };
                let p = &from_net[..n];
                let Some(payload) = rtp::payload_range(p) else { continue };
                // Symmetric RTP: answer where the relay really sends from.
                remote = Some(src);
                let now = std::time::Instant::now();
                let kind = rtp::payload_type(p);
                if Some(kind) == te {
                    for block in tones.event(now, rtp::timestamp(p), &p[payload]) {
                        b.send(&block);
                    }
                } else if kind == pt && !tones.playing(now) && !payload.is_empty() {
                    b.send(&p[payload]);
                }
                // Anything else (comfort noise, audio under a digit) stays off the line.
            }
        }
    }
}
