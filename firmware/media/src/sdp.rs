//! The parts of SDP (RFC 4566, RFC 3264) the exchange needs: the audio stream's address,
//! port, codecs and direction. Anything else in an offer is dropped by the relay.

use std::net::{IpAddr, SocketAddr};

/// One payload type of the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    /// Encoding name as in rtpmap (`PCMU`, `telephone-event`).
    pub name: String,
    pub rate: u32,
    pub fmtp: Option<String>,
}

impl Codec {
    /// Whether this is the RFC 4733 event codec.
    pub fn is_dtmf(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// The static payload type of a G.711 law (0 PCMU, 8 PCMA), None for any other.
    pub fn g711_pt(&self) -> Option<u8> {
        if self.name.eq_ignore_ascii_case("PCMU") {
            Some(0)
        } else if self.name.eq_ignore_ascii_case("PCMA") {
            Some(8)
        } else {
            None
        }
    }
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer mirrors.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// The audio stream of a session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Where the party wants to receive RTP (address 0.0.0.0 = on hold, old style).
    pub addr: IpAddr,
    pub port: u16,
    pub codecs: Vec<Codec>,
    pub direction: Direction,
    pub ptime: Option<u32>,
    /// Where the audio stream stands among the description's m-lines (0 = first).
    pub index: usize,
    /// The other m-lines of an offer (video, a second audio stream, ...), which an
    /// answer must repeat in their places with port 0 (RFC 3264 6, RFC 4317 2.2).
    pub rejected: Vec<MediaLine>,
    /// The m-line's profile is RTP/SAVP or RTP/SAVPF: SRTP or nothing (RFC 3711).
    pub secure: bool,
    /// The SDES keys offered or answered (RFC 4568), in their order; lines of a suite
    /// or with parameters the box does not speak are left out.
    pub crypto: Vec<Crypto>,
    /// WebRTC (UDP/TLS/RTP/SAVPF: ICE and DTLS-SRTP, as browsers send): its ICE
    /// credentials, certificate fingerprint and DTLS role.
    pub webrtc: Option<Box<WebRtc>>,
}

/// The DTLS role a description asks for (RFC 4145 4, RFC 5763 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
}

impl Setup {
    fn parse(v: &str) -> Option<Setup> {
        match v.trim() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            _ => None,
        }
    }

    fn attr(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
        }
    }
}

/// The WebRTC attributes of an audio stream (RFC 8839, RFC 8842, RFC 8843): what a
/// browser's description says of itself, or what the box writes of itself.
#[derive(Clone, PartialEq, Eq)]
pub struct WebRtc {
    pub ufrag: String,
    pub pwd: String,
    /// `sha-256 AB:CD:...` (the hash function, a space, the digest).
    pub fingerprint: String,
    pub setup: Setup,
    /// The stream's `a=mid`, if it has one.
    pub mid: Option<String>,
    /// The stream is in an `a=group:BUNDLE` (RFC 8843): the answer bundles it too.
    pub bundle: bool,
    /// The box's description: `a=ice-lite` and its one host candidate (the stream's
    /// address and port).
    pub lite: bool,
    /// Opus (`opus/48000/2`, RFC 7587), which the box speaks to a browser at the leg's
    /// edge ([`crate::OpusParams`]) and the rest of the call never sees. A browser's
    /// description has it when it lists Opus before both G.711 laws (it prefers it):
    /// its codecs then keep one law only, the one the leg's Opus becomes. The box's
    /// has it when the leg speaks Opus, or to let a browser choose it.
    pub opus: Option<Codec>,
    /// The box writes Opus before its other codecs (it speaks it), not after them (it
    /// offers it to a browser that prefers it).
    pub opus_first: bool,
    /// A browser's description listed Opus and no G.711 law (its codecs then hold the
    /// law its leg's Opus becomes all the same), and is written so; the box's answer
    /// to one says it too, and lists Opus alone (RFC 3264 6.1: an answer lists only
    /// formats of the offer).
    pub opus_only: bool,
}

/// The payload type of Opus with a browser.
pub const OPUS_PT: u8 = 111;

/// The Opus codec the box offers a browser: Chrome's payload type, 20 ms packets at
/// least, in-band FEC (RFC 7587 6.1).
pub fn opus_offer() -> Codec {
    Codec {
        pt: OPUS_PT,
        name: "opus".into(),
        rate: 48000,
        fmtp: Some("minptime=10;useinbandfec=1".into()),
    }
}

fn is_opus(c: &Codec) -> bool {
    c.name.eq_ignore_ascii_case("opus") && c.rate == 48000
}

fn is_g711(c: &Codec) -> bool {
    c.g711_pt().is_some()
}

impl std::fmt::Debug for WebRtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ICE password is a secret: never in a log.
        write!(f, "WebRtc({} {:?} {:?})", self.ufrag, self.setup, self.mid)
    }
}

/// The longest ICE credential kept (RFC 8839 5.4 allows 256 characters).
const MAX_ICE: usize = 256;

/// An ICE, DTLS or mid attribute's value as kept: trimmed and cut to [`MAX_ICE`]
/// characters, and trimmed again after the cut (written back, a trailing blank would
/// not read back the same).
fn attr_value(val: &str) -> String {
    let v: String = val.trim().chars().take(MAX_ICE).collect();
    v.trim_end().to_string()
}

/// Most `a=crypto` lines kept from one stream.
pub const MAX_CRYPTO: usize = 8;

/// One SDES key (RFC 4568): `a=crypto:<tag> <suite> inline:<key||salt>[|<lifetime>]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: crate::srtp::Suite,
    pub key: [u8; crate::srtp::KEY_LEN],
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never in a log.
        write!(f, "Crypto({} {})", self.tag, self.suite.name())
    }
}

impl Crypto {
    /// The attribute's value (after `a=crypto:`), or None for a line the box does not
    /// speak: another suite, a master key index, several keys, session parameters
    /// (UNENCRYPTED_SRTP, KDR, ...), or a key of the wrong length.
    pub fn parse(val: &str) -> Option<Crypto> {
        use base64::Engine;
        let mut it = val.split_whitespace();
        let tag: u32 = it.next()?.parse().ok().filter(|t| *t < 1_000_000_000)?;
        let suite = crate::srtp::Suite::from_name(it.next()?)?;
        let key_params = it.next()?;
        if it.next().is_some() || key_params.contains(';') {
            return None;
        }
        let info = key_params.strip_prefix("inline:")?;
        let mut parts = info.split('|');
        let b64 = parts.next()?;
        for p in parts {
            // A lifetime (2^31 or a number) is fine; a master key index is not.
            if p.contains(':') {
                return None;
            }
        }
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let key: [u8; crate::srtp::KEY_LEN] = raw.try_into().ok()?;
        Some(Crypto { tag, suite, key })
    }

    /// The attribute's value as the box writes it.
    pub fn value(&self) -> String {
        use base64::Engine;
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            base64::engine::general_purpose::STANDARD.encode(self.key)
        )
    }
}

/// An m-line the box does not take: its place, media, transport and formats, and its
/// `a=mid` (RFC 5888), which the answer repeats on the rejected line (RFC 8829
/// 5.3.1: a browser that bundled video with audio refuses an answer without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub index: usize,
    pub media: String,
    pub proto: String,
    pub formats: String,
    pub mid: Option<String>,
}

impl Audio {
    /// The RFC 4733 telephone-event format at 8 kHz, the clock of every codec the box
    /// relays (linphone offers it at 48, 16 and 8 kHz; events at another clock would
    /// be read with the wrong durations or not at all).
    pub fn dtmf(&self) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.is_dtmf() && c.rate == 8000)
    }

    /// Where RTP goes, unless the port is 0 or the address is unspecified.
    pub fn rtp_target(&self) -> Option<SocketAddr> {
        (self.port != 0 && !self.addr.is_unspecified())
            .then(|| SocketAddr::new(self.addr, self.port))
    }
}

/// Why a body is not usable SDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad SDP: {0}")]
pub struct SdpError(pub String);

fn static_codec(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// Most m-lines an offer may have.
pub const MAX_STREAMS: usize = 16;

/// Reads the first audio stream of an SDP body.
pub fn parse(body: &[u8]) -> Result<Audio, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError("not UTF-8".into()))?;
    let mut session_addr: Option<IpAddr> = None;
    let mut audio: Option<Audio> = None;
    let mut in_audio = false;
    let mut session_dir = Direction::SendRecv;
    let mut mlines = 0usize;
    let mut rejected = Vec::new();
    // The profile of an audio stream passed over because the box does not speak it.
    let mut unspoken: Option<String> = None;
    // Session-level ICE credentials and fingerprint, DTLS role, ICE-lite, BUNDLE group.
    let mut session_ice = (String::new(), String::new(), String::new());
    let mut session_setup: Option<Setup> = None;
    let mut session_lite = false;
    let mut bundled: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "c" => {
                let ip = v
                    .split_whitespace()
                    .nth(2)
                    .ok_or_else(|| SdpError("malformed c= line".into()))?;
                let ip: IpAddr = ip
                    .split('/')
                    .next()
                    .unwrap_or(ip)
                    .parse()
                    .map_err(|_| SdpError(format!("c= address {ip:?} is not an IP address")))?;
                if in_audio {
                    if let Some(a) = audio.as_mut() {
                        a.addr = ip;
                    }
                } else if mlines == 0 {
                    session_addr = Some(ip);
                }
            }
            "m" => {
                // m=<media> <port>[/<count>] <proto> <fmt> ... (RFC 4566 5.14): a line
                // short of its proto is refused, or the answer would repeat it garbled.
                let mut it = v.split_whitespace();
                let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next())
                else {
                    return Err(SdpError("malformed m= line".into()));
                };
                let index = mlines;
                mlines += 1;
                // Every stream comes back in the answer: a few are plenty for a phone,
                // and thousands would make the answer larger than the offer allows.
                if mlines > MAX_STREAMS {
                    return Err(SdpError(format!("more than {MAX_STREAMS} media streams")));
                }
                // RTP over UDP only: an audio stream of another profile (DTLS-SRTP's
                // UDP/TLS/RTP/SAVPF from a browser, RTP over TCP) is refused in the
                // answer like any stream the box does not take (RFC 3264 6).
                let dtls = proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF")
                    || proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVP");
                let spoken = dtls
                    || ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
                        .iter()
                        .any(|p| proto.eq_ignore_ascii_case(p));
                if media == "audio" && audio.is_none() && !spoken && unspoken.is_none() {
                    unspoken = Some(proto.chars().take(40).collect());
                }
                in_audio = media == "audio" && audio.is_none() && spoken;
                if !in_audio {
                    rejected.push(MediaLine {
                        index,
                        media: media.to_string(),
                        proto: proto.to_string(),
                        formats: it.collect::<Vec<_>>().join(" "),
                        mid: None,
                    });
                    continue;
                }
                if in_audio {
                    let port: u16 = port
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| SdpError("bad m= port".into()))?;
                    let mut codecs = Vec::new();
                    for pt in it {
                        let pt: u8 = pt
                            .parse()
                            .ok()
                            .filter(|p| *p < 128)
                            .ok_or_else(|| SdpError(format!("bad payload type {pt:?}")))?;
                        if codecs.iter().any(|c: &Codec| c.pt == pt) {
                            continue; // listed twice: the first stands
                        }
                        let (name, rate) = static_codec(pt).unwrap_or(("", 8000));
                        codecs.push(Codec {
                            pt,
                            name: name.into(),
                            rate,
                            fmtp: None,
                        });
                    }
                    audio = Some(Audio {
                        addr: session_addr.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                        port,
                        codecs,
                        direction: session_dir,
                        ptime: None,
                        index,
                        rejected: Vec::new(),
                        secure: dtls
                            || proto.eq_ignore_ascii_case("RTP/SAVP")
                            || proto.eq_ignore_ascii_case("RTP/SAVPF"),
                        crypto: Vec::new(),
                        webrtc: dtls.then(|| {
                            Box::new(WebRtc {
                                ufrag: session_ice.0.clone(),
                                pwd: session_ice.1.clone(),
                                fingerprint: session_ice.2.clone(),
                                setup: session_setup.unwrap_or(Setup::ActPass),
                                mid: None,
                                bundle: false,
                                lite: session_lite,
                                opus: None,
                                opus_first: true,
                                opus_only: false,
                            })
                        }),
                    });
                }
            }
            "a" => {
                let (name, val) = v.split_once(':').unwrap_or((v, ""));
                let dir = match name {
                    "sendrecv" => Some(Direction::SendRecv),
                    "sendonly" => Some(Direction::SendOnly),
                    "recvonly" => Some(Direction::RecvOnly),
                    "inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                // A rejected stream's mid, for the answer to repeat.
                if name == "mid" && !in_audio {
                    if let Some(m) = rejected.last_mut().filter(|m| m.index + 1 == mlines) {
                        m.mid = Some(attr_value(val));
                    }
                    continue;
                }
                if mlines == 0 {
                    if let Some(d) = dir {
                        session_dir = d;
                    }
                    // Session-level ICE and DTLS attributes (Firefox writes them so),
                    // which the stream's own override.
                    match name {
                        "ice-ufrag" => session_ice.0 = attr_value(val),
                        "ice-pwd" => session_ice.1 = attr_value(val),
                        "fingerprint" => session_ice.2 = attr_value(val),
                        "setup" => session_setup = Setup::parse(val),
                        "ice-lite" => session_lite = true,
                        "group" => {
                            let mut it = val.split_whitespace();
                            if it.next() == Some("BUNDLE") {
                                bundled = it.take(MAX_STREAMS).map(str::to_string).collect();
                            }
                        }
                        _ => {}
                    }
                    continue;
                }
                let Some(a) = audio.as_mut().filter(|_| in_audio) else {
                    continue;
                };
                if let Some(d) = dir {
                    a.direction = d;
                }
                match name {
                    "rtpmap" => {
                        let (pt, enc) = val.split_once(' ').unwrap_or((val, ""));
                        let Ok(pt) = pt.parse::<u8>() else { continue };
                        let mut parts = enc.split('/');
                        let n = parts.next().unwrap_or("").to_string();
                        let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
                        if let Some(c) = a.codecs.iter_mut().find(|c| c.pt == pt) {
                            c.name = n;
                            c.rate = rate;
                        }
                    }
                    "fmtp" => {
                        let (pt, f) = val.split_once(' ').unwrap_or((val, ""));
                        let Ok(pt) = pt.parse::<u8>() else { continue };
                        if let Some(c) = a.codecs.iter_mut().find(|c| c.pt == pt) {
                            c.fmtp = Some(f.to_string());
                        }
                    }
                    "ptime" => a.ptime = val.trim().parse().ok(),
                    "ice-ufrag" | "ice-pwd" | "fingerprint" | "setup" | "mid" => {
                        let Some(w) = a.webrtc.as_mut() else { continue };
                        let v = attr_value(val);
                        match name {
                            "ice-ufrag" => w.ufrag = v,
                            "ice-pwd" => w.pwd = v,
                            "fingerprint" => w.fingerprint = v,
                            "setup" => w.setup = Setup::parse(&v).unwrap_or(w.setup),
                            _ => w.mid = Some(v),
                        }
                    }
                    "crypto" if a.crypto.len() < MAX_CRYPTO => {
                        if let Some(c) = Crypto::parse(val) {
                            if !a.crypto.iter().any(|x| x.tag == c.tag) {
                                a.crypto.push(c);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let mut a = audio.ok_or_else(|| match unspoken {
        Some(p) => SdpError(format!(
            "audio only as {p}: offer RTP/AVP, RTP/SAVP or UDP/TLS/RTP/SAVPF"
        )),
        None => SdpError("no audio stream".into()),
    })?;
    if a.addr.is_unspecified() && session_addr.is_none() && a.port != 0 && a.webrtc.is_none() {
        return Err(SdpError("no connection address".into()));
    }
    a.codecs.retain(|c| !c.name.is_empty());
    a.rejected = rejected;
    if let Some(w) = a.webrtc.as_mut() {
        if w.ufrag.is_empty() || w.pwd.is_empty() {
            return Err(SdpError(
                "WebRTC audio without ICE credentials (a=ice-ufrag, a=ice-pwd)".into(),
            ));
        }
        let (hash, digest) = w.fingerprint.split_once(' ').unwrap_or(("", ""));
        if !hash.eq_ignore_ascii_case("sha-256") || digest.split(':').count() != 32 {
            return Err(SdpError(
                "WebRTC audio without a SHA-256 certificate fingerprint (a=fingerprint:sha-256)"
                    .into(),
            ));
        }
        w.fingerprint = format!("sha-256 {}", digest.trim());
        w.bundle = w.mid.as_ref().is_some_and(|m| bundled.contains(m));
        // A WebRTC leg carries G.711 (every browser speaks both laws), or Opus that the
        // leg's edge turns into G.711 when the browser prefers it: the other codecs of
        // a browser's list are left out before any negotiation.
        // Opus under payload type 111 only (Chromium's and the box's own offer's):
        // str0m knows Opus by that type alone, so a browser's Opus under another
        // (Firefox offers 109) is left out like any other codec.
        let opus = a.codecs.iter().position(|c| is_opus(c) && c.pt == OPUS_PT);
        let law = a.codecs.iter().position(is_g711);
        if let Some(o) = opus.filter(|o| law.is_none_or(|l| *o < l)) {
            w.opus = Some(a.codecs[o].clone());
            w.opus_only = law.is_none();
            let law = law.map_or_else(
                || Codec {
                    pt: 0,
                    name: "PCMU".into(),
                    rate: 8000,
                    fmtp: None,
                },
                |l| a.codecs[l].clone(),
            );
            a.codecs.retain(|c| c.is_dtmf() && c.pt != law.pt);
            a.codecs.insert(0, law);
        }
        a.codecs.retain(|c| c.is_dtmf() || is_g711(c));
    }
    Ok(a)
}

/// Writes a session description with one audio stream, and the `rejected` m-lines in
/// their places with port 0.
pub fn write(origin_id: u64, version: u64, audio: &Audio) -> Vec<u8> {
    let fam = if audio.addr.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = format!(
        "v=0\r\no=pbxd {origin_id} {version} IN {fam} {ip}\r\ns=pbxd\r\nc=IN {fam} {ip}\r\nt=0 0\r\n",
        ip = audio.addr,
    );
    // Session-level attributes come before any m-line.
    let webrtc = audio.webrtc.as_deref();
    if let Some(w) = webrtc {
        if w.lite {
            s.push_str("a=ice-lite\r\n");
        }
        if let (true, Some(mid)) = (w.bundle, &w.mid) {
            s.push_str(&format!("a=group:BUNDLE {mid}\r\n"));
        }
    }
    let reject = |s: &mut String, m: &MediaLine| {
        s.push_str(&format!("m={} 0 {} {}\r\n", m.media, m.proto, m.formats));
        if let Some(mid) = &m.mid {
            s.push_str(&format!("a=mid:{mid}\r\n"));
        }
    };
    for m in audio.rejected.iter().filter(|m| m.index < audio.index) {
        reject(&mut s, m);
    }
    let proto = match (webrtc, audio.secure) {
        (Some(_), _) => "UDP/TLS/RTP/SAVPF",
        (None, true) => "RTP/SAVP",
        (None, false) => "RTP/AVP",
    };
    s.push_str(&format!("m=audio {} {proto}", audio.port));
    // A browser's Opus goes before the codecs or after them, under a payload type
    // none of them has.
    let opus = webrtc
        .and_then(|w| w.opus.as_ref().map(|o| (o, w.opus_first)))
        .filter(|(o, _)| !audio.codecs.iter().any(|c| c.pt == o.pt));
    // Opus alone (the law it becomes left out) when the browser listed no law.
    let only = opus.is_some() && webrtc.is_some_and(|w| w.opus_only);
    let others = audio.codecs.iter().filter(|c| !(only && is_g711(c)));
    let codecs: Vec<&Codec> = match opus {
        Some((o, true)) => std::iter::once(o).chain(others).collect(),
        Some((o, false)) => others.chain(std::iter::once(o)).collect(),
        None => others.collect(),
    };
    for c in &codecs {
        s.push_str(&format!(" {}", c.pt));
    }
    s.push_str("\r\n");
    for c in &codecs {
        if is_opus(c) {
            // Two channels, always (RFC 7587 7); the name as it came.
            s.push_str(&format!("a=rtpmap:{} {}/48000/2\r\n", c.pt, c.name));
        } else {
            s.push_str(&format!("a=rtpmap:{} {}/{}\r\n", c.pt, c.name, c.rate));
        }
        if let Some(f) = &c.fmtp {
            s.push_str(&format!("a=fmtp:{} {}\r\n", c.pt, f));
        }
    }
    if let Some(p) = audio.ptime {
        s.push_str(&format!("a=ptime:{p}\r\n"));
    }
    for c in &audio.crypto {
        s.push_str(&format!("a=crypto:{}\r\n", c.value()));
    }
    if let Some(w) = webrtc {
        if let Some(mid) = &w.mid {
            s.push_str(&format!("a=mid:{mid}\r\n"));
        }
        s.push_str(&format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{}\r\na=setup:{}\r\na=rtcp-mux\r\n",
            w.ufrag,
            w.pwd,
            w.fingerprint,
            w.setup.attr()
        ));
        if w.lite {
            // The one host candidate: the relay's port on the stream's address.
            s.push_str(&format!(
                "a=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
                audio.addr, audio.port
            ));
        }
    }
    s.push_str(&format!("a={}\r\n", audio.direction.attr()));
    for m in audio.rejected.iter().filter(|m| m.index > audio.index) {
        reject(&mut s, m);
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendonly\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    #[test]
    fn audio_in_a_profile_the_box_does_not_speak_is_passed_over_with_its_reason() {
        let tcp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 9 TCP/RTP/AVP 0\r\n";
        let e = parse(tcp.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("audio only as TCP/RTP/AVP"), "{e}");
        assert!(e.contains("UDP/TLS/RTP/SAVPF"), "{e}");
        // A later stream the box speaks is taken, the first refused in its place.
        let both = format!("{tcp}m=audio 4000 RTP/AVP 0\r\n");
        let a = parse(both.as_bytes()).unwrap();
        assert_eq!((a.port, a.index), (4000, 1));
        assert_eq!(a.rejected.len(), 1);
        assert_eq!(a.rejected[0].proto, "TCP/RTP/AVP");
        // RTP/AVPF is plain RTP with feedback: taken.
        let avpf = tcp.replace("TCP/RTP/AVP", "RTP/AVPF");
        assert!(!parse(avpf.as_bytes()).unwrap().secure);
    }

    const FP: &str = "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3C:5C:09:24:EB:0B:5B:B9:6B:5C:9A:4B";

    #[test]
    fn a_browsers_offer_is_read_and_the_boxs_webrtc_answer_written() {
        // Chrome's shape: BUNDLE, media-level ICE and DTLS attributes, mDNS candidates.
        let offer = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
             a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n\
             c=IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2113937151 abc.local 50000 typ host\r\n\
             a=ice-ufrag:Xy12\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
             a=fingerprint:{FP}\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\n\
             a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\n"
        );
        let a = parse(offer.as_bytes()).unwrap();
        assert!(a.secure && a.crypto.is_empty());
        // Opus first: the browser prefers it. It is set aside for the leg's edge, and
        // the codecs keep the law it becomes (the first listed) and events.
        let pts: Vec<u8> = a.codecs.iter().map(|c| c.pt).collect();
        assert_eq!(pts, [0, 126]);
        let w = a.webrtc.as_deref().unwrap();
        assert_eq!(w.opus.as_ref().map(|o| (o.pt, o.rate)), Some((111, 48000)));
        // G.711 first (the phone page's default): no Opus; PCMA alone becomes the law.
        let g = parse(
            offer
                .replace("SAVPF 111 0 8 126", "SAVPF 0 8 111 126")
                .as_bytes(),
        )
        .unwrap();
        let pts: Vec<u8> = g.codecs.iter().map(|c| c.pt).collect();
        assert_eq!(
            (pts.as_slice(), g.webrtc.unwrap().opus),
            (&[0, 8, 126][..], None)
        );
        let only = parse(offer.replace("SAVPF 111 0 8 126", "SAVPF 111 8").as_bytes()).unwrap();
        assert_eq!(only.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(), [8]);
        assert!(!only.webrtc.unwrap().opus_only && !a.webrtc.as_ref().unwrap().opus_only);
        let none = parse(offer.replace("SAVPF 111 0 8 126", "SAVPF 111").as_bytes()).unwrap();
        assert_eq!(none.codecs[0].name, "PCMU", "a law to become: PCMU");
        assert!(none.webrtc.unwrap().opus_only, "but no law listed");
        // Firefox's 109: not Opus to the box (str0m knows it as 111 only).
        let ff = offer
            .replace("SAVPF 111 0 8 126", "SAVPF 109 0 8 126")
            .replace("rtpmap:111", "rtpmap:109");
        let ff = parse(ff.as_bytes()).unwrap();
        assert_eq!((ff.codecs.len(), ff.webrtc.unwrap().opus), (3, None));
        assert_eq!(
            (w.ufrag.as_str(), w.pwd.as_str()),
            ("Xy12", "0123456789abcdefghijkl")
        );
        assert_eq!(w.fingerprint, FP);
        assert_eq!(
            (w.setup, w.mid.as_deref(), w.bundle, w.lite),
            (Setup::ActPass, Some("0"), true, false)
        );
        assert!(
            !format!("{w:?}").contains("0123456789"),
            "no ICE password in a log"
        );
        // Firefox's shape: the fingerprint at session level.
        let ff = offer
            .replace(&format!("a=fingerprint:{FP}\r\n"), "")
            .replace("t=0 0\r\n", &format!("t=0 0\r\na=fingerprint:{FP}\r\n"));
        assert_eq!(
            parse(ff.as_bytes()).unwrap().webrtc.unwrap().fingerprint,
            FP
        );
        // Without credentials or with another hash: refused with the reason.
        let e = parse(
            offer
                .replace("a=ice-pwd:0123456789abcdefghijkl\r\n", "")
                .as_bytes(),
        );
        assert!(e.unwrap_err().to_string().contains("ICE credentials"));
        let e = parse(offer.replace("sha-256", "sha-1").as_bytes());
        assert!(e.unwrap_err().to_string().contains("SHA-256"));
        // The box's answer: ICE-lite, its credentials and candidate, passive.
        let mut ans = a.clone();
        ans.addr = "192.0.2.7".parse().unwrap();
        ans.port = 20000;
        ans.codecs.retain(|c| c.pt == 0);
        ans.webrtc = Some(Box::new(WebRtc {
            ufrag: "box1".into(),
            pwd: "boxpassword0123456789012".into(),
            fingerprint: FP.into(),
            setup: Setup::Passive,
            mid: Some("0".into()),
            bundle: true,
            lite: true,
            opus: None,
            opus_first: true,
            opus_only: false,
        }));
        let text = String::from_utf8(write(1, 1, &ans)).unwrap();
        for line in [
            "a=ice-lite",
            "a=group:BUNDLE 0",
            "m=audio 20000 UDP/TLS/RTP/SAVPF 0",
            "a=mid:0",
            "a=ice-ufrag:box1",
            "a=ice-pwd:boxpassword0123456789012",
            &format!("a=fingerprint:{FP}"),
            "a=setup:passive",
            "a=rtcp-mux",
            "a=candidate:1 1 udp 2130706431 192.0.2.7 20000 typ host",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("a=crypto"));
        // ... and it reads back.
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.webrtc.as_deref(), ans.webrtc.as_deref());
        // Video bundled with the audio: refused in the answer with its mid (RFC 8829
        // 5.3.1) and out of the answer's BUNDLE group (RFC 8843 7.3.3).
        let video = offer.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1")
            + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
               a=sendrecv\r\na=rtpmap:96 VP8/90000\r\n";
        let v = parse(video.as_bytes()).unwrap();
        assert_eq!(v.rejected[0].mid.as_deref(), Some("1"));
        assert_eq!(v.webrtc.as_deref().unwrap().mid.as_deref(), Some("0"));
        let mut ans_v = ans.clone();
        ans_v.rejected = v.rejected.clone();
        let text = String::from_utf8(write(1, 1, &ans_v)).unwrap();
        assert!(
            text.ends_with("a=sendrecv\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n")
                && text.contains("a=group:BUNDLE 0\r\n"),
            "{text}"
        );
        assert_eq!(parse(text.as_bytes()).unwrap(), ans_v);
        // A mid cut at 256 characters just before a blank reads back the same.
        let long = format!(
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\nm=video 0 X 1\r\na=mid:{} y\r\n",
            "x".repeat(255)
        );
        let l = parse(long.as_bytes()).unwrap();
        assert_eq!(l.rejected[0].mid.as_ref().map(String::len), Some(255));
        assert_eq!(parse(&write(1, 1, &l)).unwrap(), l);
        // Speaking Opus: first, as opus/48000/2 with its parameters; read back so.
        let mut o = ans.clone();
        o.webrtc.as_mut().unwrap().opus = Some(opus_offer());
        let text = String::from_utf8(write(1, 1, &o)).unwrap();
        for line in [
            "m=audio 20000 UDP/TLS/RTP/SAVPF 111 0",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(
            parse(text.as_bytes()).unwrap().webrtc.unwrap().opus,
            Some(opus_offer())
        );
        // Offered to a browser that may prefer it: after G.711.
        o.webrtc.as_mut().unwrap().opus_first = false;
        let text = String::from_utf8(write(1, 1, &o)).unwrap();
        assert!(
            text.contains("m=audio 20000 UDP/TLS/RTP/SAVPF 0 111\r\n"),
            "{text}"
        );
        assert_eq!(parse(text.as_bytes()).unwrap().webrtc.unwrap().opus, None);
    }

    #[test]
    fn opus_on_a_plain_stream_prints_and_parses_again_as_it_came() {
        // Found by the fuzzer: "Opus" (not "opus") written back as "opus".
        let text = "v=0\r\no=- 3 3 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n\
                    m=audio 9000 RTP/AVP 96 97\r\na=rtpmap:96 Opus/48000/2\r\n";
        let a = parse(text.as_bytes()).unwrap();
        assert_eq!(parse(&write(7, 1, &a)).unwrap(), a);
        // A browser preferring Opus whose events sit on PCMU's payload type: the law
        // the leg becomes takes it.
        let b = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
                 a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 telephone-event/8000\r\n\
                 a=ice-ufrag:u1\r\na=ice-pwd:secretsecretsecretsecret\r\n\
                 a=fingerprint:sha-256 "
            .to_string()
            + &["AB"; 32].join(":")
            + "\r\n";
        let a = parse(b.as_bytes()).unwrap();
        assert_eq!(
            a.codecs
                .iter()
                .map(|c| (c.pt, c.name.as_str()))
                .collect::<Vec<_>>(),
            [(0, "PCMU")]
        );
        assert_eq!(parse(&write(7, 1, &a)).unwrap(), a);
    }

    #[test]
    fn parse_and_write() {
        let a = parse(OFFER.as_bytes()).unwrap();
        assert_eq!(a.rtp_target(), Some("10.0.0.2:4000".parse().unwrap()));
        assert_eq!(
            a.codecs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["PCMU", "PCMA", "telephone-event"]
        );
        assert_eq!(a.direction, Direction::SendOnly);
        assert_eq!(a.ptime, Some(20));
        assert!(a.codecs[2].is_dtmf());
        let again = parse(&write(1, 2, &a)).unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn other_streams_are_kept_in_place_for_the_answer() {
        let a = parse(OFFER.as_bytes()).unwrap();
        assert_eq!(a.index, 0);
        assert_eq!(
            a.rejected,
            vec![MediaLine {
                index: 1,
                media: "video".into(),
                proto: "RTP/AVP".into(),
                formats: "96".into(),
                mid: None,
            }]
        );
        let text = String::from_utf8(write(1, 1, &a)).unwrap();
        let m: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m, ["m=audio 4000 RTP/AVP 0 8 101", "m=video 0 RTP/AVP 96"]);
        // Audio second: the rejected stream stays first, and what the video stream
        // says of itself (its address, its direction) is not the session's.
        let video_first = "v=0\r\nc=IN IP4 10.0.0.2\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8\r\n";
        let a = parse(video_first.as_bytes()).unwrap();
        assert_eq!((a.index, a.port), (1, 4000));
        assert_eq!(a.rtp_target(), Some("10.0.0.2:4000".parse().unwrap()));
        assert_eq!(a.direction, Direction::SendRecv);
        let text = String::from_utf8(write(1, 1, &a)).unwrap();
        let m: Vec<&str> = text.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m,
            [
                "m=video 0 RTP/AVP 96",
                "m=audio 4000 RTP/AVP 0",
                "m=audio 0 RTP/AVP 8"
            ]
        );
    }

    #[test]
    fn an_m_line_short_of_its_proto_is_refused() {
        // Found by the sdp fuzz target: `m=` alone was kept as a stream with no media,
        // and the answer repeated it as `m= 0 RTP/AVP `, which reads back differently.
        let twice = parse(
            b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 9000 RTP/AVP 0 8 8\r\na=rtpmap:8 PCMA/8000\r\n",
        )
        .unwrap();
        assert_eq!(
            twice.codecs.len(),
            2,
            "a payload type listed twice is one codec"
        );
        for m in ["m=", "m=video", "m=video 0", "m=audio 9000"] {
            let body = format!("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 9000 RTP/AVP 0\r\n{m}\r\n");
            let e = parse(body.as_bytes()).unwrap_err();
            assert!(e.0.contains("malformed m= line"), "{m}: {e}");
        }
    }

    #[test]
    fn bad_sdp() {
        assert!(parse(b"v=0\r\n").is_err());
        assert!(parse(b"v=0\r\nc=IN IP4 nonsense\r\nm=audio 1 RTP/AVP 0\r\n").is_err());
        assert!(parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n").is_err());
        assert!(parse(&[0xff, 0xfe]).is_err());
        let many = format!(
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n{}",
            "m=video 5000 RTP/AVP 96\r\n".repeat(MAX_STREAMS)
        );
        assert!(parse(many.as_bytes())
            .unwrap_err()
            .0
            .contains("media streams"));
    }

    #[test]
    fn sdes_keys_are_read_and_written_and_odd_lines_left_out() {
        let k80 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k80}|2^20\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{k80}\r\n\
             a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{k80}|2^20|1:4\r\n\
             a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{k80} UNENCRYPTED_SRTP\r\n\
             a=crypto:5 F8_128_HMAC_SHA1_80 inline:{k80}\r\n\
             a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:notbase64!\r\n\
             a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{k80}\r\n\
             a=crypto:99999999999 AES_CM_128_HMAC_SHA1_80 inline:{k80}\r\n"
        );
        let a = parse(offer.as_bytes()).unwrap();
        assert!(a.secure);
        let tags: Vec<u32> = a.crypto.iter().map(|c| c.tag).collect();
        assert_eq!(tags, [1, 2], "{:?}", a.crypto);
        assert_eq!(a.crypto[0].suite, crate::srtp::Suite::Aes128Sha1_80);
        assert_eq!(a.crypto[1].suite, crate::srtp::Suite::Aes128Sha1_32);
        assert!(
            !format!("{:?}", a.crypto[0]).contains(k80),
            "no key in a log"
        );
        let body = String::from_utf8(write(1, 1, &a)).unwrap();
        assert!(body.contains("m=audio 4000 RTP/SAVP 0\r\n"), "{body}");
        assert!(
            body.contains(&format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k80}\r\n"
            )),
            "{body}"
        );
        assert_eq!(parse(body.as_bytes()).unwrap().crypto, a.crypto);
        // Plain RTP with keys (best effort SRTP) and SAVPF.
        let be = offer.replace("RTP/SAVP", "RTP/AVP");
        let b = parse(be.as_bytes()).unwrap();
        assert!(!b.secure && b.crypto.len() == 2);
        assert!(
            parse(offer.replace("RTP/SAVP", "RTP/SAVPF").as_bytes())
                .unwrap()
                .secure
        );
        // Thousands of lines keep at most MAX_CRYPTO.
        let mut many = String::from("v=0\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/SAVP 0\r\n");
        for t in 0..5000 {
            many.push_str(&format!(
                "a=crypto:{t} AES_CM_128_HMAC_SHA1_80 inline:{k80}\r\n"
            ));
        }
        assert_eq!(parse(many.as_bytes()).unwrap().crypto.len(), MAX_CRYPTO);
    }
}
