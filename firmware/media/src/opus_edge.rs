//! Opus (RFC 7587) at the edge of a browser's leg: what the browser sends as Opus is
//! turned into G.711 as it arrives, and G.711 going to it into Opus as it leaves, so
//! that everything between (the relay's payload maps, taps, recordings, players,
//! conferences) sees G.711 only. libopus runs at 8 kHz, mono: it resamples the
//! browser's 48 kHz itself, and the narrowband a G.711 call carries is all there is to
//! code. Opus's RTP clock is 48 kHz whatever the audio (RFC 7587 4.1): timestamps are
//! scaled by six each way.

use crate::g711;

/// What a leg's Opus needs: the payload type the browser gave it, and the G.711
/// payload type (0 PCMU, 8 PCMA) the rest of the call knows the leg by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    pub pt: u8,
    pub law_pt: u8,
}

/// 20 ms at 8 kHz: what one Opus packet to the browser carries.
const FRAME: usize = 160;
/// The longest Opus packet decoded: 120 ms at 8 kHz (RFC 6716 3.2.5).
const MAX_SAMPLES: usize = 960;
/// Samples waiting for a whole frame, at most (a sender's odd packetisation).
const MAX_PENDING: usize = 2 * MAX_SAMPLES;
/// The largest Opus frame written (RFC 6716 3.2.1 allows 1275 bytes; 20 ms of
/// narrowband speech takes well under 100).
const MAX_OPUS: usize = 400;

/// The encoder's complexity (0-10): 80 us a packet at 5 instead of 103 at libopus's
/// default 9 (examples/opus_cost.rs), for a box that codes many legs.
pub const COMPLEXITY: i32 = 5;

/// An encoder as a leg's edge has it, at `complexity` ([`COMPLEXITY`] on a leg; the
/// benchmark tries others): 8 kHz mono, VOIP, with in-band forward error correction
/// (the browser recovers a lost packet from the next one: what Opus is on a mobile
/// network for).
pub fn encoder(complexity: i32) -> Result<opus::Encoder, opus::Error> {
    let mut enc = opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip)?;
    enc.set_inband_fec(true)?;
    enc.set_packet_loss_perc(5)?;
    enc.set_complexity(complexity)?;
    Ok(enc)
}

/// One leg's Opus decoder and encoder.
pub(crate) struct OpusEdge {
    params: OpusParams,
    dec: opus::Decoder,
    enc: opus::Encoder,
    /// The browser's last timestamp (48 kHz) and the one it became (8 kHz).
    rx: Option<(u32, u32)>,
    /// Samples to the browser waiting for a whole frame, and the (8 kHz) timestamp of
    /// the first of them.
    pending: Vec<i16>,
    pending_ts: u32,
    /// The timestamp the next G.711 packet to the browser carries if it follows the
    /// last one (another is a new source or a gap).
    next_ts: Option<u32>,
    /// The next frame starts a talkspurt (the G.711 it came from was marked).
    marker: bool,
}

impl OpusEdge {
    pub(crate) fn new(params: OpusParams) -> Result<OpusEdge, String> {
        let enc = encoder(COMPLEXITY).map_err(|e| format!("Opus encoder: {e}"))?;
        let dec = opus::Decoder::new(8000, opus::Channels::Mono)
            .map_err(|e| format!("Opus decoder: {e}"))?;
        Ok(OpusEdge {
            params,
            dec,
            enc,
            rx: None,
            pending: Vec::with_capacity(MAX_PENDING),
            pending_ts: 0,
            next_ts: None,
            marker: false,
        })
    }

    pub(crate) fn params(&self) -> OpusParams {
        self.params
    }

    /// A plain RTP packet from the browser (`buf[..len]`, a 12-byte header and its
    /// payload): Opus is decoded and written over it as G.711 of the leg's law, and the
    /// new length answered; None when it does not decode (it is dropped). Any other
    /// payload type passes unchanged.
    pub(crate) fn decode_in(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        if len < 12 || buf[1] & 0x7f != self.params.pt {
            return Some(len);
        }
        let mut pcm = [0i16; MAX_SAMPLES];
        let n = self.dec.decode(&buf[12..len], &mut pcm, false).ok()?;
        let n = n.min(buf.len() - 12);
        let alaw = self.params.law_pt == 8;
        for (b, s) in buf[12..12 + n].iter_mut().zip(&pcm[..n]) {
            *b = if alaw {
                g711::linear_to_alaw(*s)
            } else {
                g711::linear_to_ulaw(*s)
            };
        }
        buf[1] = (buf[1] & 0x80) | self.params.law_pt;
        // The timestamp at 8 kHz: a sixth of the way from the last packet's (packets
        // out of order go back as far).
        let theirs = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ours = match self.rx {
            Some((t, o)) => o.wrapping_add(((theirs.wrapping_sub(t) as i32) / 6) as u32),
            None => theirs / 6,
        };
        if self
            .rx
            .is_none_or(|(t, _)| (theirs.wrapping_sub(t) as i32) > 0)
        {
            self.rx = Some((theirs, ours));
        }
        buf[4..8].copy_from_slice(&ours.to_be_bytes());
        Some(12 + n)
    }

    /// A plain RTP packet going to the browser: G.711 (payload type 0 or 8) becomes
    /// Opus, 20 ms a packet, each handed to `out` with its payload, its 48 kHz
    /// timestamp and marker. False for anything else (not sent: the leg agreed to Opus).
    pub(crate) fn encode_out(&mut self, pkt: &[u8], mut out: impl FnMut(&[u8], u32, bool)) -> bool {
        let Some(range) = crate::rtp::payload_range(pkt) else {
            return false;
        };
        let pt = pkt[1] & 0x7f;
        if pt != 0 && pt != 8 {
            return false;
        }
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        // Another source, or a gap: what waits of the last one is dropped, and the
        // next frame starts a talkspurt.
        if self.next_ts != Some(ts) {
            self.pending.clear();
            self.pending_ts = ts;
            self.marker = true;
        }
        self.next_ts = Some(ts.wrapping_add(range.len() as u32));
        self.marker |= pkt[1] & 0x80 != 0;
        let room = MAX_PENDING - self.pending.len();
        self.pending.extend(pkt[range].iter().take(room).map(|&b| {
            if pt == 8 {
                g711::alaw_to_linear(b)
            } else {
                g711::ulaw_to_linear(b)
            }
        }));
        let mut frame = [0u8; MAX_OPUS];
        while self.pending.len() >= FRAME {
            if let Ok(n) = self.enc.encode(&self.pending[..FRAME], &mut frame) {
                out(&frame[..n], self.pending_ts.wrapping_mul(6), self.marker);
                self.marker = false;
            }
            self.pending.drain(..FRAME);
            self.pending_ts = self.pending_ts.wrapping_add(FRAME as u32);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The share of `pcm`'s energy at `hz` (Goertzel over the whole).
    fn share(pcm: &[i16], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let (mut s1, mut s2) = (0.0, 0.0);
        let mut total = 0.0;
        for &x in pcm {
            let x = x as f64;
            total += x * x;
            let s0 = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        2.0 * power / (pcm.len() as f64 * total.max(1.0))
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn junk_either_way_is_dropped_or_bounded_and_never_panics() {
        let mut e = OpusEdge::new(OpusParams { pt: 111, law_pt: 8 }).unwrap();
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed >> 8
        };
        let mut buf = [0u8; 2048];
        for i in 0..3000 {
            let len = next() as usize % 1500;
            for b in &mut buf[..len] {
                *b = next() as u8;
            }
            if len >= 2 && i % 2 == 0 {
                // RTP version 2 with Opus's payload type: the decoder sees it.
                buf[0] = 0x80;
                buf[1] = 111;
            }
            if let Some(n) = e.decode_in(&mut buf, len) {
                // Decoded: a 12-byte header and at most 120 ms of the law; else as came.
                assert!(
                    n == len || (buf[1] & 0x7f == 8 && n <= 12 + MAX_SAMPLES),
                    "{n}"
                );
            }
            // Anything as G.711 to the browser: whole frames of at most MAX_OPUS bytes,
            // and never more waiting than MAX_PENDING.
            let mut frames = 0;
            e.encode_out(&buf[..len], |f, _, _| {
                assert!(!f.is_empty() && f.len() <= MAX_OPUS);
                frames += 1;
            });
            assert!(frames <= MAX_PENDING / FRAME);
            assert!(e.pending.len() < FRAME);
        }
    }

    #[test]
    fn a_tone_crosses_opus_both_ways_and_keeps_time() {
        let p = OpusParams { pt: 111, law_pt: 0 };
        let (mut tx, mut rx) = (OpusEdge::new(p).unwrap(), OpusEdge::new(p).unwrap());
        // 1 s of 1000 Hz as PCMU in 30 ms packets (an odd packetisation): 20 ms Opus
        // frames come out, 48 kHz timestamps 960 apart.
        let tone: Vec<i16> = (0..8000)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let mut frames = Vec::new();
        for (k, chunk) in tone.chunks(240).enumerate() {
            let law: Vec<u8> = chunk.iter().map(|&s| g711::linear_to_ulaw(s)).collect();
            let pkt = rtp(0, k as u16, 1000 + 240 * k as u32, &law);
            assert!(tx.encode_out(&pkt, |f, ts, m| frames.push((f.to_vec(), ts, m))));
        }
        assert_eq!(frames.len(), 50);
        assert!(frames[0].2, "the first frame is marked");
        assert!(frames[1..].iter().all(|f| !f.2), "and no other");
        for (i, (f, ts, _)) in frames.iter().enumerate() {
            assert_eq!(*ts, 6 * (1000 + 160 * i as u32));
            assert!(f.len() < 172, "Opus is smaller than G.711: {}", f.len());
        }
        // 20 ms packets that follow each other: one frame each, unmarked; a gap (or
        // another source) marks the next.
        let (mut n, mut marked) = (0, Vec::new());
        let law = [0xffu8; 160];
        for (k, ts) in [0u32, 160, 320, 800, 960].iter().enumerate() {
            let pkt = rtp(0, 100 + k as u16, 50_000 + ts, &law);
            tx.encode_out(&pkt, |_, _, m| {
                n += 1;
                marked.push(m);
            });
        }
        assert_eq!((n, marked), (5, vec![true, false, false, true, false]));
        // Telephone-events and other payloads do not go to an Opus leg.
        assert!(!tx.encode_out(&rtp(101, 0, 0, &[1, 0, 0, 160]), |_, _, _| panic!()));
        // Back: each frame decodes to 160 PCMU samples, 8 kHz timestamps.
        let mut heard = Vec::new();
        for (i, (f, ts, _)) in frames.iter().enumerate() {
            let mut buf = rtp(111, i as u16, *ts, f);
            buf.resize(1500, 0);
            let len = 12 + f.len();
            let n = rx.decode_in(&mut buf, len).unwrap();
            assert_eq!(n, 12 + 160);
            assert_eq!(buf[1] & 0x7f, 0);
            let ours = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            assert_eq!(ours, 1000 + 160 * i as u32);
            heard.extend(buf[12..n].iter().map(|&b| g711::ulaw_to_linear(b)));
        }
        // The codec's delay aside, the tone is what is heard.
        let s = share(&heard[800..], 1000.0);
        assert!(s > 0.8, "1000 Hz share {s}");
        assert!(share(&heard[800..], 440.0) < 0.05);
        // Junk is dropped, other payload types pass.
        let mut junk = rtp(111, 99, 0, &[0xff; 40]);
        let n = junk.len();
        assert!(rx.decode_in(&mut junk, n).is_none());
        let mut other = rtp(0, 1, 0, &[0xff; 160]);
        assert_eq!(rx.decode_in(&mut other, 172), Some(172));
    }
}
