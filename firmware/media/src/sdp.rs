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

/// An m-line the box does not take: its place, media, transport and formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub index: usize,
    pub media: String,
    pub proto: String,
    pub formats: String,
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
                let spoken = ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
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
                        secure: proto.eq_ignore_ascii_case("RTP/SAVP")
                            || proto.eq_ignore_ascii_case("RTP/SAVPF"),
                        crypto: Vec::new(),
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
                if mlines == 0 {
                    if let Some(d) = dir {
                        session_dir = d;
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
        Some(p) if p.to_ascii_uppercase().contains("TLS") => SdpError(format!(
            "audio only as {p} (DTLS-SRTP, as browsers send) which the box does not speak yet: \
             offer RTP/AVP or RTP/SAVP"
        )),
        Some(p) => SdpError(format!("audio only as {p}: offer RTP/AVP or RTP/SAVP")),
        None => SdpError("no audio stream".into()),
    })?;
    if a.addr.is_unspecified() && session_addr.is_none() && a.port != 0 {
        return Err(SdpError("no connection address".into()));
    }
    a.codecs.retain(|c| !c.name.is_empty());
    a.rejected = rejected;
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
    let reject = |s: &mut String, m: &MediaLine| {
        s.push_str(&format!("m={} 0 {} {}\r\n", m.media, m.proto, m.formats));
    };
    for m in audio.rejected.iter().filter(|m| m.index < audio.index) {
        reject(&mut s, m);
    }
    let proto = if audio.secure { "RTP/SAVP" } else { "RTP/AVP" };
    s.push_str(&format!("m=audio {} {proto}", audio.port));
    for c in &audio.codecs {
        s.push_str(&format!(" {}", c.pt));
    }
    s.push_str("\r\n");
    for c in &audio.codecs {
        s.push_str(&format!("a=rtpmap:{} {}/{}\r\n", c.pt, c.name, c.rate));
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
        // A browser's WebRTC offer: DTLS-SRTP only.
        let webrtc = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                      m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\n\
                      a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n";
        let e = parse(webrtc.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("UDP/TLS/RTP/SAVPF") && e.contains("DTLS-SRTP"),
            "{e}"
        );
        let tcp = webrtc.replace("UDP/TLS/RTP/SAVPF", "TCP/RTP/AVP");
        let e = parse(tcp.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("audio only as TCP/RTP/AVP"), "{e}");
        // A later stream the box speaks is taken, the first refused in its place.
        let both = format!("{webrtc}m=audio 4000 RTP/AVP 0\r\n");
        let a = parse(both.as_bytes()).unwrap();
        assert_eq!((a.port, a.index), (4000, 1));
        assert_eq!(a.rejected.len(), 1);
        assert_eq!(a.rejected[0].proto, "UDP/TLS/RTP/SAVPF");
        // RTP/AVPF is plain RTP with feedback: taken.
        let avpf = webrtc.replace("UDP/TLS/RTP/SAVPF", "RTP/AVPF");
        assert!(!parse(avpf.as_bytes()).unwrap().secure);
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
                formats: "96".into()
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
