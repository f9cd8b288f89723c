//! WebRTC media on one leg (a browser phone): ICE-lite and DTLS-SRTP (RFC 8445 2.5,
//! RFC 5763, RFC 5764, RFC 8827) through str0m, a sans-IO WebRTC stack. The relay
//! thread keeps the leg's socket and loop: what arrives on it goes into str0m, which
//! answers connectivity checks, runs the DTLS handshake and hands back plain RTP that
//! the relay treats like any other leg's; what the relay sends to the leg goes out
//! through str0m, protected. The browser's RTCP is str0m's to read and answer.
//!
//! The box is always ICE-lite and never controlling (the browser nominates), so it
//! needs no candidates of the browser's: it answers checks where they come from. Its
//! DTLS certificate is one per process, made at first use; its fingerprint goes in
//! every WebRTC description the box writes.

use crate::opus_edge::OpusEdge;
use sha2::Digest;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use str0m::config::DtlsCert;
use str0m::media::{MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

/// What a WebRTC leg needs from the two session descriptions.
#[derive(Clone, PartialEq, Eq)]
pub struct WebRtcParams {
    /// The box's host candidate: the address its description gives and the leg's port.
    pub local: SocketAddr,
    /// The box's ICE username fragment and password.
    pub ufrag: String,
    pub pwd: String,
    /// The browser's.
    pub their_ufrag: String,
    pub their_pwd: String,
    /// The browser's certificate fingerprint: `sha-256 AB:CD:...`.
    pub fingerprint: String,
    /// The box opens the DTLS handshake (it answered or was answered `setup:passive`).
    pub active: bool,
    /// The leg speaks Opus (transcoded at its edge, [`crate::OpusParams`]), not G.711.
    pub opus: Option<crate::OpusParams>,
}

impl std::fmt::Debug for WebRtcParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ICE passwords are secrets: never in a log.
        write!(f, "WebRtcParams({} {})", self.local, self.ufrag)
    }
}

/// Most SSRCs of the browser's a leg waits for before any of their packets
/// authenticated (it sends one; anyone can send a clear RTP header), and most it keeps
/// once authenticated (a renegotiation may change it).
const MAX_RX: usize = 4;

/// The process's DTLS certificate and its fingerprint.
fn cert() -> &'static Option<(DtlsCert, String)> {
    static CERT: OnceLock<Option<(DtlsCert, String)>> = OnceLock::new();
    CERT.get_or_init(|| {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider.dtls_provider.generate_certificate()?;
        let digest = sha2::Sha256::digest(&cert.certificate);
        let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        Some((cert, format!("sha-256 {}", hex.join(":"))))
    })
}

/// The box's certificate fingerprint as `a=fingerprint` carries it (`sha-256 AB:...`),
/// or None if no certificate could be made (the box then offers no WebRTC).
pub fn fingerprint() -> Option<&'static str> {
    cert().as_ref().map(|(_, f)| f.as_str())
}

/// A fresh ICE username fragment (8 characters) and password (24), from the kernel's
/// random numbers (RFC 8445 5.3: at least 24 bits and 128 bits of randomness).
pub fn new_ice_credentials() -> (String, String) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = [0u8; 32];
    let _ = getrandom::getrandom(&mut raw);
    let s: String = raw
        .iter()
        .map(|b| ALPHABET[(*b & 63) as usize] as char)
        .collect();
    (s[..8].to_string(), s[8..].to_string())
}

/// One leg's WebRTC session.
pub(crate) struct WebRtcLeg {
    pub(crate) params: WebRtcParams,
    rtc: Rtc,
    mid: Mid,
    tx: Ssrc,
    /// The next sequence number sent (the leg numbers its own stream, whatever the
    /// source: a peer, a clip, a conference).
    seq: u64,
    /// The browser's SSRCs learnt so far, and whether a packet of each authenticated.
    /// Only unconfirmed ones make way for new ones: a forged header cannot evict the
    /// browser's stream (and reset its replay window).
    rx: Vec<(u32, bool)>,
    /// When str0m wants to be driven next.
    next: Instant,
    connected: bool,
    /// Opus with the browser, G.711 with the rest of the call.
    opus: Option<Box<OpusEdge>>,
}

/// The leg's Opus edge for `p`, if it speaks Opus (none when libopus refuses, logged:
/// the leg then sends the law, which the box's description also lists, and passes
/// on what the browser sends as it comes).
fn opus_edge(p: Option<crate::OpusParams>) -> Option<Box<OpusEdge>> {
    match OpusEdge::new(p?) {
        Ok(e) => Some(Box::new(e)),
        Err(e) => {
            tracing::warn!("WebRTC leg: {e}");
            None
        }
    }
}

impl WebRtcLeg {
    pub(crate) fn new(params: WebRtcParams) -> Result<WebRtcLeg, String> {
        let (cert, _) = cert().as_ref().ok_or("no DTLS certificate could be made")?;
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .set_dtls_cert(cert.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .enable_opus(true, false)
            .clear_extension_map()
            .set_local_ice_credentials(IceCreds {
                ufrag: params.ufrag.clone(),
                pass: params.pwd.clone(),
            })
            .build(now);
        let candidate =
            Candidate::host(params.local, "udp").map_err(|e| format!("candidate: {e}"))?;
        rtc.add_local_candidate(candidate);
        let fingerprint = params
            .fingerprint
            .parse()
            .map_err(|e| format!("fingerprint: {e}"))?;
        let mid: Mid = "0".into();
        let tx;
        {
            let mut api = rtc.direct_api();
            api.set_ice_controlling(false);
            api.set_remote_ice_credentials(IceCreds {
                ufrag: params.their_ufrag.clone(),
                pass: params.their_pwd.clone(),
            });
            api.set_remote_fingerprint(fingerprint);
            api.start_dtls(params.active)
                .map_err(|e| format!("DTLS: {e}"))?;
            api.declare_media(mid, MediaKind::Audio);
            tx = api.new_ssrc();
            api.declare_stream_tx(tx, None, mid, None);
        }
        let mut seq = [0u8; 2];
        let _ = getrandom::getrandom(&mut seq);
        Ok(WebRtcLeg {
            opus: opus_edge(params.opus),
            params,
            rtc,
            mid,
            tx,
            seq: u16::from_be_bytes(seq) as u64 & 0x7fff,
            rx: Vec::new(),
            next: now,
            connected: false,
        })
    }

    /// A datagram (`buf[..len]`) that reached the leg's socket from `src`: its RTP,
    /// decrypted (and Opus decoded), is written over `buf` and its length answered;
    /// checks, handshakes and RTCP answer None (what they call for has been sent).
    pub(crate) fn receive(
        &mut self,
        sock: &UdpSocket,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<usize> {
        // An RTP packet of a source not seen yet (the SSRC is in clear): expected on
        // the audio stream, so str0m takes it (no mid header extension is agreed).
        if len >= 12 && (128..192).contains(&buf[0]) && !(72..=79).contains(&(buf[1] & 0x7f)) {
            let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
            if !self.rx.iter().any(|(s, _)| *s == ssrc) {
                if self.rx.iter().filter(|(_, c)| !c).count() >= MAX_RX {
                    if let Some(i) = self.rx.iter().position(|(_, c)| !c) {
                        let (old, _) = self.rx.remove(i);
                        self.rtc.direct_api().remove_stream_rx(old.into());
                    }
                }
                self.rx.push((ssrc, false));
                self.rtc
                    .direct_api()
                    .expect_stream_rx(ssrc.into(), None, self.mid, None);
            }
        }
        let now = Instant::now();
        let input = Receive::new(Protocol::Udp, src, self.params.local, &buf[..len]).ok()?;
        if self.rtc.handle_input(Input::Receive(now, input)).is_err() {
            return None;
        }
        let mut got = None;
        let mut authentic = None;
        self.drain(sock, |p| {
            authentic = Some(*p.header.ssrc);
            if got.is_some() {
                return;
            }
            let n = 12 + p.payload.len();
            if n <= buf.len() {
                let h = &p.header;
                buf[0] = 0x80;
                buf[1] = (*h.payload_type & 0x7f) | if h.marker { 0x80 } else { 0 };
                buf[2..4].copy_from_slice(&h.sequence_number.to_be_bytes());
                buf[4..8].copy_from_slice(&h.timestamp.to_be_bytes());
                buf[8..12].copy_from_slice(&(*h.ssrc).to_be_bytes());
                buf[12..n].copy_from_slice(&p.payload);
                got = Some(n);
            }
        });
        // Opus becomes G.711 here: the relay sees the law the call agreed.
        if let (Some(n), Some(o)) = (got, self.opus.as_mut()) {
            got = o.decode_in(buf, n);
        }
        if let Some(ssrc) = authentic {
            let fresh = self.rx.iter_mut().find(|(s, c)| *s == ssrc && !*c);
            if let Some(e) = fresh {
                e.1 = true;
                // Authenticated streams are kept, a few: the oldest other one goes.
                if self.rx.iter().filter(|(_, c)| *c).count() > MAX_RX {
                    if let Some(i) = self.rx.iter().position(|(s, c)| *c && *s != ssrc) {
                        let (old, _) = self.rx.remove(i);
                        self.rtc.direct_api().remove_stream_rx(old.into());
                    }
                }
            }
        }
        got
    }

    /// Sends plain RTP `pkt` (a 12-byte header and more) to the browser, protected:
    /// false when it could not go (no connection yet, or a packet that is not RTP).
    pub(crate) fn send(&mut self, sock: &UdpSocket, pkt: &[u8]) -> bool {
        let Some(range) = crate::rtp::payload_range(pkt) else {
            return false;
        };
        if !self.connected {
            return false;
        }
        let now = Instant::now();
        let WebRtcLeg {
            rtc, tx, seq, opus, ..
        } = self;
        let mut api = rtc.direct_api();
        let Some(stream) = api.stream_tx(tx) else {
            return false;
        };
        let mut write = |pt: u8, ts: u32, marker: bool, payload: &[u8]| {
            let s: SeqNo = (*seq).into();
            *seq += 1;
            stream.write_rtp(RtpWrite::new(pt.into(), s, ts, now, payload).marker(marker));
        };
        let sent = match opus.as_mut() {
            // Opus: G.711 becomes 20 ms frames (none yet, or two, for other packet
            // sizes).
            Some(o) => {
                let pt = o.params().pt;
                o.encode_out(pkt, |frame, ts, marker| write(pt, ts, marker, frame))
            }
            // G.711 only (what the leg agreed): events and anything else are not sent.
            None => {
                let pt = pkt[1] & 0x7f;
                if pt == 0 || pt == 8 {
                    let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
                    write(pt, ts, pkt[1] & 0x80 != 0, &pkt[range]);
                }
                pt == 0 || pt == 8
            }
        };
        if !sent {
            return false;
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain(sock, |_| {});
        true
    }

    /// New ICE credentials on both sides (an ICE restart, RFC 8839 4.4.1.1.1), or
    /// another codec (Opus or G.711), with the same certificate and DTLS role: the
    /// session, its DTLS association and SRTP keys stand; only the checks' credentials
    /// or the leg's Opus edge change. False when more than that changed.
    pub(crate) fn restart_ice(&mut self, p: &WebRtcParams) -> bool {
        let same_dtls = p.fingerprint == self.params.fingerprint
            && p.active == self.params.active
            && p.local == self.params.local;
        if !same_dtls {
            return false;
        }
        let q = &self.params;
        if (&p.ufrag, &p.pwd, &p.their_ufrag, &p.their_pwd)
            != (&q.ufrag, &q.pwd, &q.their_ufrag, &q.their_pwd)
        {
            let mut api = self.rtc.direct_api();
            api.set_local_ice_credentials(IceCreds {
                ufrag: p.ufrag.clone(),
                pass: p.pwd.clone(),
            });
            api.set_remote_ice_credentials(IceCreds {
                ufrag: p.their_ufrag.clone(),
                pass: p.their_pwd.clone(),
            });
        }
        // Another codec agreed on the same session (a re-INVITE).
        if p.opus != self.params.opus {
            self.opus = opus_edge(p.opus);
        }
        self.params = p.clone();
        true
    }

    /// Drives str0m's timers (DTLS retransmissions, RTCP reports, the browser's
    /// consent) when they are due.
    pub(crate) fn tick(&mut self, sock: &UdpSocket, now: Instant) {
        if now < self.next {
            return;
        }
        if self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain(sock, |_| {});
        }
    }

    /// Whether the browser's checks and the DTLS handshake have succeeded.
    pub(crate) fn connected(&self) -> bool {
        self.connected
    }

    /// Sends what str0m has to send and hands its RTP packets to `rtp`, until it
    /// names its next timeout.
    fn drain(&mut self, sock: &UdpSocket, mut rtp: impl FnMut(&str0m::rtp::RtpPacket)) {
        // Bounded: a session has only so much to say at once.
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = sock.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::RtpPacket(p))) => rtp(&p),
                Ok(Output::Event(Event::Connected)) => {
                    tracing::info!("WebRTC leg {} connected", self.params.local);
                    self.connected = true;
                }
                Ok(Output::Event(Event::IceConnectionStateChange(s))) => {
                    tracing::debug!("WebRTC leg {}: ICE {s:?}", self.params.local);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("WebRTC leg {}: {e}", self.params.local);
                    self.next = Instant::now() + std::time::Duration::from_millis(100);
                    return;
                }
            }
        }
    }
}
