//! Music on hold: a collection of files played in a loop (a [`Clip`]), or a live source
//! that many endpoints play at once (the line-in, [`Live`]).

use crate::g711;
use crate::player::Clip;
use std::sync::{Arc, Mutex};

/// Samples in one 20 ms frame.
pub const FRAME: usize = 160;

/// Frames a live source keeps (640 ms): a capture that delivers in bursts (a sound
/// card's period of several frames) is smoothed, a slow reader can catch up.
const RING: usize = 32;

/// How far behind the newest frame a reader starts (160 ms).
const BEHIND: u64 = 8;

/// What a held party hears.
#[derive(Clone, Debug)]
pub enum Music {
    /// Files, looped.
    Clip(Clip),
    /// A live source (each endpoint plays its newest frames).
    Live(Arc<Live>),
}

impl Music {
    /// The music a held party hears when no collection is installed: a soft two-tone
    /// chime every four seconds, so that hold is never mistaken for a dropped call.
    pub fn chime() -> Music {
        Music::Clip(Clip::tone(&[523.25, 659.25], 600, 3400, 0.25))
    }
}

/// A live source: its capture pushes 20 ms frames, endpoints read them on their own
/// tick. Frames are kept µ-law in a small ring; a reader that falls behind skips ahead,
/// one that runs ahead of the capture sends silence.
pub struct Live {
    ring: Mutex<([[u8; FRAME]; RING], u64)>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Live({} frames)", self.frames())
    }
}

impl Default for Live {
    fn default() -> Self {
        Live {
            ring: Mutex::new(([[0xff; FRAME]; RING], 0)),
        }
    }
}

impl Live {
    pub fn new() -> Arc<Live> {
        Arc::new(Live::default())
    }

    /// Adds the next 20 ms of linear samples.
    pub fn push(&self, pcm: &[i16; FRAME]) {
        let mut r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let i = (r.1 % RING as u64) as usize;
        for (o, s) in r.0[i].iter_mut().zip(pcm) {
            *o = g711::linear_to_ulaw(*s);
        }
        r.1 += 1;
    }

    /// How many frames were pushed so far.
    pub fn frames(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Frame `*next` into `out` (µ-law) and moves `*next` on; silence when the capture
    /// has not got that far. A reader starts at `u64::MAX`; a new one, and one nearly a
    /// ring behind, go to eight frames behind the newest (room for the capture's bursts
    /// and the jitter between capture and the relay's tick).
    pub(crate) fn read(&self, next: &mut u64, out: &mut [u8; FRAME]) {
        let r = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let count = r.1;
        if count == 0 {
            return out.fill(0xff);
        }
        // A new reader (`u64::MAX`) and one about to be overtaken by the capture start
        // again a little behind the newest frame.
        if *next > count || *next + (RING as u64) - 4 < count {
            *next = count.saturating_sub(BEHIND);
        }
        if *next < count {
            *out = r.0[(*next % RING as u64) as usize];
            *next += 1;
        } else {
            out.fill(0xff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_follows_skips_ahead_and_waits_with_silence() {
        let live = Live::default();
        let mut out = [0u8; FRAME];
        let mut next = u64::MAX;
        // Nothing captured yet: silence.
        live.read(&mut next, &mut out);
        assert!(out.iter().all(|b| *b == 0xff));
        let frame = |v: i16| [v; FRAME];
        for v in 1..=3 {
            live.push(&frame(v * 1000));
        }
        // Starts up to eight behind the newest: frames 1, 2 and 3, then silence.
        for v in 1..=3 {
            live.read(&mut next, &mut out);
            assert_eq!(out[0], g711::linear_to_ulaw(v * 1000));
        }
        live.read(&mut next, &mut out);
        assert_eq!(out[0], 0xff);
        // A burst of frames is played in order.
        for v in 4..=20 {
            live.push(&frame(v * 100));
        }
        for v in 4..=20 {
            live.read(&mut next, &mut out);
            assert_eq!(out[0], g711::linear_to_ulaw(v * 100));
        }
        // Nearly a ring behind after a stall: back to eight behind the newest.
        for v in 21..=60 {
            live.push(&frame(v * 100));
        }
        live.read(&mut next, &mut out);
        assert_eq!(out[0], g711::linear_to_ulaw(5300));
    }
}
