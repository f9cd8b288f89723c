//! The conference mixer: every 20 ms it takes one frame of what each participant said
//! (decoded from G.711 as the packets came, smoothed by a small jitter buffer), adds
//! them, and sends each participant the sum less its own voice, encoded in its own
//! G.711 law. An entry or exit tone is mixed in for everyone.
//!
//! A mixer runs on one relay thread (chosen when it is made); its participants'
//! endpoints may sit on any. Nothing is allocated per frame: the sum, each
//! participant's frame and the packet are fixed arrays, and a participant's jitter
//! buffer is allocated once when it joins. Muted participants still hear the others;
//! nobody hears them.

use crate::g711;
use crate::player::Clip;
use crate::relay::Shared;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Samples in one 20 ms frame.
const FRAME: usize = 160;
/// Samples a participant's jitter buffer holds at most (160 ms).
const CAP: usize = 8 * FRAME;
/// Frames buffered before a participant is heard (and again after it ran dry).
const PRIME: usize = 2 * FRAME;
/// More than this buffered (a phone whose clock runs fast, or a burst): the oldest
/// audio is dropped down to [`PRIME`], so the delay never builds up.
const BEHIND: usize = 6 * FRAME;

/// The largest conference a mixer takes.
pub const MAX_PARTICIPANTS: usize = 64;

/// What a participant said, as its packets came in, until the mixer takes it.
pub(crate) struct Input {
    jitter: Mutex<Jitter>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

struct Jitter {
    buf: [i16; CAP],
    head: usize,
    len: usize,
    primed: bool,
}

impl Input {
    pub(crate) fn new() -> Input {
        Input {
            jitter: Mutex::new(Jitter {
                buf: [0; CAP],
                head: 0,
                len: 0,
                primed: false,
            }),
        }
    }

    /// An RTP packet from the participant: G.711 audio goes into the buffer; other
    /// payloads (telephone-events, comfort noise) are not audio.
    pub(crate) fn packet(&self, pkt: &[u8]) {
        let Some(range) = crate::rtp::payload_range(pkt) else {
            return;
        };
        let decode: fn(u8) -> i16 = match pkt[1] & 0x7f {
            0 => g711::ulaw_to_linear,
            8 => g711::alaw_to_linear,
            _ => return,
        };
        let mut j = self.jitter.lock().unwrap_or_else(|e| e.into_inner());
        for &b in &pkt[range] {
            if j.len == CAP {
                j.head = (j.head + 1) % CAP;
                j.len -= 1;
            }
            let at = (j.head + j.len) % CAP;
            j.buf[at] = decode(b);
            j.len += 1;
        }
    }

    /// The next frame into `out` (silence while the buffer fills).
    pub(crate) fn frame(&self, out: &mut [i16; FRAME]) {
        let mut j = self.jitter.lock().unwrap_or_else(|e| e.into_inner());
        if !j.primed {
            if j.len < PRIME {
                out.fill(0);
                return;
            }
            j.primed = true;
        }
        if j.len > BEHIND {
            let drop = j.len - PRIME;
            j.head = (j.head + drop) % CAP;
            j.len -= drop;
        }
        let n = j.len.min(FRAME);
        for (i, o) in out.iter_mut().enumerate() {
            *o = if i < n { j.buf[(j.head + i) % CAP] } else { 0 };
        }
        j.head = (j.head + n) % CAP;
        j.len -= n;
        if n < FRAME {
            j.primed = false;
        }
    }
}

/// One participant: its endpoint (sent from), what it said, its outgoing stream.
struct Part {
    id: u64,
    shared: Arc<Shared>,
    input: Arc<Input>,
    pt: u8,
    alaw: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    first: bool,
    muted: bool,
    frame: [i16; FRAME],
}

struct Inner {
    parts: Vec<Part>,
    /// A tone everyone hears, and how far it has played.
    tone: Option<(Clip, usize)>,
    total: [i32; FRAME],
    pkt: [u8; 12 + FRAME],
}

/// A conference's mixer (see the module's documentation).
pub struct Mixer {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mixer({} participants)", self.len())
    }
}

impl Mixer {
    pub(crate) fn new() -> Mixer {
        Mixer {
            inner: Mutex::new(Inner {
                parts: Vec::with_capacity(8),
                tone: None,
                total: [0; FRAME],
                pkt: [0; 12 + FRAME],
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many participants are in.
    pub fn len(&self) -> usize {
        self.inner().parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Endpoint `shared` joins, sending and hearing payload type `pt` (A-law when
    /// `alaw`); answers where its packets go; none when the mixer is full.
    pub(crate) fn add(&self, shared: Arc<Shared>, pt: u8, alaw: bool) -> Option<Arc<Input>> {
        static STREAMS: AtomicU64 = AtomicU64::new(1);
        let mut g = self.inner();
        if g.parts.len() >= MAX_PARTICIPANTS {
            return None;
        }
        let id = shared.id;
        g.parts.retain(|p| p.id != id);
        let input = Arc::new(Input::new());
        let n = STREAMS.fetch_add(1, Ordering::Relaxed);
        let mix = (id ^ n.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        g.parts.push(Part {
            id,
            shared,
            input: input.clone(),
            pt,
            alaw,
            seq: (mix >> 48) as u16,
            ts: (mix >> 16) as u32,
            ssrc: mix as u32 ^ (mix >> 32) as u32,
            first: true,
            muted: false,
            frame: [0; FRAME],
        });
        Some(input)
    }

    /// Endpoint `id` leaves.
    pub(crate) fn remove(&self, id: u64) {
        self.inner().parts.retain(|p| p.id != id);
    }

    /// Whether the others hear endpoint `id`.
    pub fn set_muted(&self, id: u64, muted: bool) {
        if let Some(p) = self.inner().parts.iter_mut().find(|p| p.id == id) {
            p.muted = muted;
        }
    }

    /// Mixes `clip` (an entry or exit tone) in once for everyone, replacing a tone
    /// still playing.
    pub fn tone(&self, clip: Clip) {
        if !clip.is_empty() {
            self.inner().tone = Some((clip, 0));
        }
    }

    /// One 20 ms frame: read, add, send.
    pub(crate) fn tick(&self) {
        let mut g = self.inner();
        let Inner {
            parts,
            tone,
            total,
            pkt,
        } = &mut *g;
        total.fill(0);
        for p in parts.iter_mut() {
            p.input.frame(&mut p.frame);
            if !p.muted {
                for (t, s) in total.iter_mut().zip(&p.frame) {
                    *t += *s as i32;
                }
            }
        }
        if let Some((clip, pos)) = tone {
            let samples = clip.samples();
            let n = (samples.len() - *pos).min(FRAME);
            for (t, s) in total.iter_mut().zip(&samples[*pos..*pos + n]) {
                *t += g711::ulaw_to_linear(*s) as i32;
            }
            *pos += n;
            if *pos >= samples.len() {
                *tone = None;
            }
        }
        for p in parts.iter_mut() {
            // A prompt played to this participant alone goes first.
            let Some(dst) = p.shared.dest_unless_playing() else {
                continue;
            };
            pkt[0] = 0x80;
            pkt[1] = p.pt & 0x7f | if p.first { 0x80 } else { 0 };
            pkt[2..4].copy_from_slice(&p.seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&p.ts.to_be_bytes());
            pkt[8..12].copy_from_slice(&p.ssrc.to_be_bytes());
            let own = !p.muted;
            for (i, b) in pkt[12..].iter_mut().enumerate() {
                let s = total[i] - if own { p.frame[i] as i32 } else { 0 };
                let s = s.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
                *b = if p.alaw {
                    g711::linear_to_alaw(s)
                } else {
                    g711::linear_to_ulaw(s)
                };
            }
            if p.shared.send(0, &pkt[..], dst) {
                p.shared.stats.played.fetch_add(1, Ordering::Relaxed);
            }
            p.first = false;
            p.seq = p.seq.wrapping_add(1);
            p.ts = p.ts.wrapping_add(FRAME as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn the_jitter_buffer_primes_runs_dry_and_never_falls_behind() {
        let i = Input::new();
        let mut f = [1i16; FRAME];
        let frame = |v: i16| pkt(0, &[g711::linear_to_ulaw(v); FRAME]);
        i.packet(&frame(1000));
        i.frame(&mut f);
        assert!(
            f.iter().all(|s| *s == 0),
            "one frame is not enough to start"
        );
        i.packet(&frame(1000));
        i.frame(&mut f);
        assert!(f.iter().all(|s| (*s - 1000).abs() < 40), "{:?}", &f[..4]);
        i.frame(&mut f);
        assert!(f[0] != 0);
        i.frame(&mut f);
        assert!(f.iter().all(|s| *s == 0), "dry: silence, and priming again");
        // Telephone-events and unknown payloads are not audio.
        i.packet(&pkt(101, &[1, 0, 0, 160]));
        i.packet(&pkt(9, &[0x55; FRAME]));
        assert_eq!(i.jitter.lock().unwrap().len, 0);
        // A burst of 20 frames: the buffer holds at most CAP, and the mixer drops to
        // PRIME so the delay stays small.
        for _ in 0..20 {
            i.packet(&frame(-500));
        }
        assert_eq!(i.jitter.lock().unwrap().len, CAP);
        i.frame(&mut f);
        assert_eq!(i.jitter.lock().unwrap().len, PRIME - FRAME);
        // A-law decodes as A-law; a short or broken packet is ignored.
        let i = Input::new();
        i.packet(&pkt(8, &[g711::linear_to_alaw(2000); 2 * FRAME]));
        i.packet(&[0x80, 0]);
        i.frame(&mut f);
        assert!(f.iter().all(|s| (*s - 2000).abs() < 64));
    }
}
