//! Keypad digits (DTMF, Q.23 frequency pairs) in both directions:
//!
//! - [`ToneOut`]: RFC 4733 telephone-events arriving on a call's RTP become tones in the
//!   span's law on the B-channel, so a provider's voice menu hears what a SIP phone
//!   dialled (digits from the line travel in-band: G.711 carries them unchanged);
//! - [`EventIn`]: digits received as RFC 4733 events, each reported once;
//! - [`InBand`]: digits heard in the audio itself (Goertzel), for phones and lines that
//!   send them in-band;
//! - [`digit_char`], [`digit_event`], [`tone_clip`]: the names and sounds of digits.

use crate::g711;
use std::time::{Duration, Instant};

/// The low and high frequency of each RFC 4733 event 0-15 (0-9, *, #, A-D).
const PAIRS: [(f64, f64); 16] = [
    (941.0, 1336.0),
    (697.0, 1209.0),
    (697.0, 1336.0),
    (697.0, 1477.0),
    (770.0, 1209.0),
    (770.0, 1336.0),
    (770.0, 1477.0),
    (852.0, 1209.0),
    (852.0, 1336.0),
    (852.0, 1477.0),
    (941.0, 1209.0),
    (941.0, 1477.0),
    (697.0, 1633.0),
    (770.0, 1633.0),
    (852.0, 1633.0),
    (941.0, 1633.0),
];

/// Peak of each of the two sines (linear, 16-bit scale): about -10 dBm0 each.
const LEVEL: f64 = 5000.0;

/// At most this many blocks for one event packet (a late packet that reports a long
/// duration must not flood the line).
const MAX_BLOCKS: u32 = 3;

const BLOCK: u32 = 160;

/// A digit whose end never came (all three end packets lost) stops holding the call's
/// audio this long after its last packet (RFC 4733 senders update every 50 ms).
const HOLD: Duration = Duration::from_millis(250);

/// The power of frequency `f` in `samples` (Goertzel): what a DTMF receiver measures.
pub fn tone_power(samples: &[i16], rate: u32, f: f64) -> f64 {
    let k = 2.0 * (std::f64::consts::TAU * f / rate as f64).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// The keypad character of RFC 4733 event `ev` (0-9, *, #, A-D), if it is a digit.
pub fn digit_char(ev: u8) -> Option<char> {
    b"0123456789*#ABCD".get(ev as usize).map(|c| *c as char)
}

/// The RFC 4733 event of a keypad character (case-insensitive for A-D).
pub fn digit_event(c: char) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    b"0123456789*#ABCD"
        .iter()
        .position(|d| *d as char == c)
        .map(|i| i as u8)
}

/// A digit played in-band: its two tones for `ms` milliseconds, µ-law.
pub fn tone_clip(ev: u8, ms: u32) -> Option<crate::Clip> {
    let (lo, hi) = *PAIRS.get(ev as usize)?;
    // Clip::tone averages its tones: twice the level gives each tone LEVEL.
    Some(crate::Clip::tone(&[lo, hi], ms, 0, 2.0 * LEVEL / 32767.0))
}

/// Digits received as RFC 4733 telephone-events: a digit is reported once, when the
/// first packet of its event comes (a sender repeats an event's packets as its
/// duration grows and sends its end three times; all carry the event's timestamp).
#[derive(Debug, Default)]
pub struct EventIn {
    last: Option<(u32, u8)>,
}

impl EventIn {
    /// One telephone-event packet (its RTP timestamp and payload): the digit it starts.
    pub fn packet(&mut self, ts: u32, payload: &[u8]) -> Option<char> {
        let ev = *payload.first()?;
        if payload.len() < 4 || self.last == Some((ts, ev)) {
            return None;
        }
        let c = digit_char(ev)?;
        self.last = Some((ts, ev));
        Some(c)
    }
}

/// Samples in one detection block (20 ms at 8 kHz).
const DETECT_BLOCK: usize = 160;
/// The quietest block that can hold a digit: mean square of about -45 dBm0.
const MIN_ENERGY: f64 = 100.0 * 100.0;
/// A digit is heard after this many blocks in a row (40 ms, ITU-T Q.24's shortest tone).
const BLOCKS_TO_HEAR: u8 = 2;

/// Digits heard in-band: Goertzel powers of the eight DTMF frequencies over 20 ms
/// blocks. A block holds a digit when one row and one column frequency each stand well
/// above the rest of their group, the two are within 10 dB of each other (twist), and
/// together they carry most of the block's energy (speech and music spread theirs). A
/// digit is reported once after two such blocks, and again only after a block
/// without it.
#[derive(Debug)]
pub struct InBand {
    block: [i16; DETECT_BLOCK],
    fill: usize,
    /// The digit of the last blocks, how many blocks in a row, whether reported.
    run: Option<(u8, u8, bool)>,
}

impl Default for InBand {
    fn default() -> Self {
        InBand {
            block: [0; DETECT_BLOCK],
            fill: 0,
            run: None,
        }
    }
}

const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

impl InBand {
    /// Linear samples at 8 kHz, in any chunks: the digits that began to be heard.
    pub fn samples(&mut self, mut s: &[i16], out: &mut Vec<char>) {
        while !s.is_empty() {
            let n = (DETECT_BLOCK - self.fill).min(s.len());
            self.block[self.fill..self.fill + n].copy_from_slice(&s[..n]);
            self.fill += n;
            s = &s[n..];
            if self.fill == DETECT_BLOCK {
                self.fill = 0;
                let d = block_digit(&self.block);
                self.run = match (d, self.run) {
                    (None, _) => None,
                    (Some(d), Some((r, n, said))) if r == d => Some((d, n.saturating_add(1), said)),
                    (Some(d), _) => Some((d, 1, false)),
                };
                if let Some((d, n, false)) = self.run {
                    if n >= BLOCKS_TO_HEAR {
                        self.run = Some((d, n, true));
                        out.extend(digit_char(d));
                    }
                }
            }
        }
    }
}

/// The digit one block holds, if any.
fn block_digit(b: &[i16; DETECT_BLOCK]) -> Option<u8> {
    let energy: f64 = b.iter().map(|x| *x as f64 * *x as f64).sum();
    if energy < MIN_ENERGY * DETECT_BLOCK as f64 {
        return None;
    }
    let pick = |fs: &[f64; 4]| {
        let p: [f64; 4] = std::array::from_fn(|k| tone_power(b, 8000, fs[k]));
        let (i, best) = p
            .iter()
            .enumerate()
            .fold((0, 0.0f64), |m, (i, v)| if *v > m.1 { (i, *v) } else { m });
        let second = p
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, v)| *v)
            .fold(0.0f64, f64::max);
        (i, best, second)
    };
    let (r, rp, r2) = pick(&ROWS);
    let (c, cp, c2) = pick(&COLS);
    // Each stands 6 dB above the next of its group.
    if rp < 4.0 * r2 || cp < 4.0 * c2 {
        return None;
    }
    // Twist within 10 dB either way.
    if rp > 10.0 * cp || cp > 10.0 * rp {
        return None;
    }
    // A sine of amplitude A gives a Goertzel power of (A N / 2)^2 and an energy of
    // A^2 N / 2: the two tones' share of the block's energy is (rp + cp) 2 / N.
    if (rp + cp) * 2.0 / (DETECT_BLOCK as f64) < 0.7 * energy {
        return None;
    }
    Some(KEYPAD[r][c])
}

/// The event at each row and column.
const KEYPAD: [[u8; 4]; 4] = [[1, 2, 3, 12], [4, 5, 6, 13], [7, 8, 9, 14], [10, 0, 11, 15]];

/// Turns one call's telephone-events into blocks of tone.
#[derive(Debug)]
pub struct ToneOut {
    alaw: bool,
    /// The event playing: its RTP timestamp, its number, whether its end was seen.
    current: Option<(u32, u8, bool)>,
    /// Samples of it already put on the line.
    sent: u32,
    /// When its last packet came.
    last: Option<Instant>,
}

impl ToneOut {
    pub fn new(alaw: bool) -> ToneOut {
        ToneOut {
            alaw,
            current: None,
            sent: 0,
            last: None,
        }
    }

    /// Whether a digit is playing (the call's other audio is kept off the line then):
    /// its end has not come, and neither has a pause of [`HOLD`] in its packets.
    pub fn playing(&self, now: Instant) -> bool {
        matches!(self.current, Some((_, _, false)))
            && self
                .last
                .is_some_and(|t| now.saturating_duration_since(t) < HOLD)
    }

    /// One telephone-event packet (its RTP timestamp and payload): the 160-octet
    /// blocks of tone to put on the line now (none for a repeated end, an event that is
    /// not a keypad digit, or a payload too short).
    pub fn event(&mut self, now: Instant, ts: u32, payload: &[u8]) -> Vec<Vec<u8>> {
        let Some(p) = payload.get(..4) else {
            return Vec::new();
        };
        let (ev, end, duration) = (p[0], p[1] & 0x80 != 0, u16::from_be_bytes([p[2], p[3]]));
        if ev as usize >= PAIRS.len() {
            return Vec::new();
        }
        match self.current {
            Some((t, _, true)) if t == ts => return Vec::new(), // end sent again
            Some((t, _, false)) if t == ts => {}
            _ => {
                self.current = Some((ts, ev, false));
                self.sent = 0;
            }
        }
        self.last = Some(now);
        let mut out = Vec::new();
        // At least one block for any digit, however short.
        let want = (duration as u32).max(1);
        while self.sent < want && (out.len() as u32) < MAX_BLOCKS {
            out.push(self.block(ev));
            self.sent += BLOCK;
        }
        if end {
            self.current = Some((ts, ev, true));
        }
        out
    }

    fn block(&self, ev: u8) -> Vec<u8> {
        let (lo, hi) = PAIRS[ev as usize];
        let tau = std::f64::consts::TAU;
        (0..BLOCK)
            .map(|k| {
                let t = (self.sent + k) as f64 / 8000.0;
                let v = LEVEL * ((tau * lo * t).sin() + (tau * hi * t).sin());
                if self.alaw {
                    g711::linear_to_alaw(v as i16)
                } else {
                    g711::linear_to_ulaw(v as i16)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power(samples: &[i16], f: f64) -> f64 {
        tone_power(samples, 8000, f)
    }

    fn pkt(ev: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [ev, if end { 0x8a } else { 0x0a }, d[0], d[1]]
    }

    #[test]
    fn a_digit_becomes_its_two_tones_for_its_duration() {
        let now = Instant::now();
        let mut t = ToneOut::new(true);
        let mut blocks = Vec::new();
        for d in [160u16, 320, 480] {
            blocks.extend(t.event(now, 1000, &pkt(5, false, d)));
            assert!(t.playing(now));
        }
        blocks.extend(t.event(now, 1000, &pkt(5, true, 640)));
        assert!(!t.playing(now));
        // The end is sent three times; only the first counts.
        assert!(t.event(now, 1000, &pkt(5, true, 640)).is_empty());
        assert!(t.event(now, 1000, &pkt(5, true, 640)).is_empty());
        assert_eq!(blocks.len(), 4);
        assert!(blocks.iter().all(|b| b.len() == 160));
        let s: Vec<i16> = blocks
            .concat()
            .iter()
            .map(|a| g711::alaw_to_linear(*a))
            .collect();
        let (p770, p1336) = (power(&s, 770.0), power(&s, 1336.0));
        for other in [697.0, 852.0, 941.0, 1209.0, 1477.0, 1633.0] {
            let p = power(&s, other);
            assert!(
                p770 > 50.0 * p && p1336 > 50.0 * p,
                "5 is 770+1336 Hz, not {other}"
            );
        }
    }

    #[test]
    fn the_next_digit_starts_afresh_and_u_law_works() {
        let now = Instant::now();
        let mut t = ToneOut::new(false);
        assert_eq!(
            t.event(now, 1, &pkt(1, true, 800)).len(),
            3,
            "capped per packet"
        );
        let b = t.event(now, 2000, &pkt(11, false, 160)); // '#'
        assert_eq!(b.len(), 1);
        let s: Vec<i16> = b[0].iter().map(|u| g711::ulaw_to_linear(*u)).collect();
        assert!(power(&s, 941.0) > 20.0 * power(&s, 697.0));
        assert!(power(&s, 1477.0) > 20.0 * power(&s, 1209.0));
    }

    fn linear(clip: &crate::Clip) -> Vec<i16> {
        clip.samples()
            .iter()
            .map(|u| g711::ulaw_to_linear(*u))
            .collect()
    }

    #[test]
    fn every_digit_is_heard_in_band_once() {
        for (ev, c) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_char(ev as u8), Some(c));
            assert_eq!(digit_event(c), Some(ev as u8));
            let mut d = InBand::default();
            let mut out = Vec::new();
            // Silence, the digit for 100 ms in odd chunks, silence, the digit again.
            let tone = linear(&tone_clip(ev as u8, 100).unwrap());
            let mut audio = vec![0i16; 130];
            audio.extend(&tone);
            audio.extend(vec![0i16; 400]);
            audio.extend(&tone);
            for chunk in audio.chunks(77) {
                d.samples(chunk, &mut out);
            }
            assert_eq!(out, [c, c], "digit {c}");
        }
        assert_eq!(digit_char(16), None);
        assert_eq!(digit_event('x'), None);
        assert_eq!(digit_event('b'), Some(13));
    }

    #[test]
    fn speech_like_sound_music_and_single_tones_are_no_digits() {
        let mut d = InBand::default();
        let mut out = Vec::new();
        // Dial tone (350+440 Hz), a 425 Hz tone, one DTMF frequency alone, a chord of
        // three DTMF frequencies, white noise, and a loud digit buried in noise.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as i16) / 4
        };
        let sine = |fs: &[f64], n: usize| -> Vec<i16> {
            (0..n)
                .map(|k| {
                    let t = k as f64 / 8000.0;
                    fs.iter()
                        .map(|f| 4000.0 * (std::f64::consts::TAU * f * t).sin())
                        .sum::<f64>() as i16
                })
                .collect()
        };
        d.samples(&sine(&[350.0, 440.0], 8000), &mut out);
        d.samples(&sine(&[425.0], 8000), &mut out);
        d.samples(&sine(&[770.0], 8000), &mut out);
        d.samples(&sine(&[697.0, 770.0, 1336.0], 8000), &mut out);
        let n: Vec<i16> = (0..8000).map(|_| noise()).collect();
        d.samples(&n, &mut out);
        let buried: Vec<i16> = sine(&[770.0, 1336.0], 8000)
            .iter()
            .map(|s| s.saturating_add(noise().saturating_mul(2)))
            .collect();
        d.samples(&buried, &mut out);
        assert!(out.is_empty(), "heard {out:?}");
        // A quiet digit (about -25 dBm0 a tone) is still a digit.
        let quiet: Vec<i16> = sine(&[852.0, 1477.0], 1600)
            .iter()
            .map(|s| s / 16)
            .collect();
        d.samples(&quiet, &mut out);
        assert_eq!(out, ['9']);
    }

    #[test]
    fn an_event_is_one_digit_however_often_it_is_sent() {
        let mut e = EventIn::default();
        let mut got = Vec::new();
        for (ts, p) in [
            (100, pkt(1, false, 160)),
            (100, pkt(1, false, 320)),
            (100, pkt(1, true, 480)),
            (100, pkt(1, true, 480)),
            (100, pkt(1, true, 480)),
            (900, pkt(1, false, 160)),   // the same key again
            (1700, pkt(11, true, 800)),  // only its end survived
            (2500, pkt(16, false, 160)), // flash: no digit
        ] {
            got.extend(e.packet(ts, &p));
        }
        assert_eq!(got, ['1', '1', '#']);
        assert_eq!(e.packet(3000, &[5, 0]), None, "too short");
        assert_eq!(e.packet(3000, &[]), None);
    }

    #[test]
    fn junk_events_play_nothing() {
        let now = Instant::now();
        let mut t = ToneOut::new(true);
        assert!(t.event(now, 1, &[1, 2]).is_empty());
        assert!(
            t.event(now, 1, &pkt(16, false, 160)).is_empty(),
            "flash is not a digit"
        );
        assert!(t.event(now, 1, &pkt(200, false, 160)).is_empty());
        assert!(!t.playing(now));
        // A zero duration still gives the digit one block.
        assert_eq!(t.event(now, 5, &pkt(0, false, 0)).len(), 1);
    }

    #[test]
    fn a_digit_whose_end_was_lost_lets_the_audio_back() {
        let now = Instant::now();
        let mut t = ToneOut::new(true);
        assert_eq!(t.event(now, 7, &pkt(9, false, 160)).len(), 1);
        assert!(t.playing(now + Duration::from_millis(100)));
        // More of it keeps it playing; then its packets stop without an end.
        t.event(now + Duration::from_millis(200), 7, &pkt(9, false, 320));
        assert!(t.playing(now + Duration::from_millis(400)));
        assert!(
            !t.playing(now + Duration::from_millis(450)),
            "the call would stay mute"
        );
    }
}
