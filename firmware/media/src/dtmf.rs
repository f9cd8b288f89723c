//! Keypad digits from the exchange to the line: RFC 4733 telephone-events arriving on a
//! call's RTP become DTMF tones (Q.23 frequency pairs) in the span's law on the
//! B-channel, so a provider's voice menu hears what a SIP phone dialled. Digits from
//! the line travel in-band (G.711 carries DTMF tones unchanged).

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
