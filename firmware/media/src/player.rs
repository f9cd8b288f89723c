//! What a player endpoint plays: a clip of 8 kHz audio held as G.711 µ-law (one byte a
//! sample, half of linear PCM), read from WAV files or made as a tone.
//!
//! The WAV reader is written here rather than taken from a crate: the common one
//! (`hound`) reads only linear PCM and float, and prompts and music on hold also come
//! as A-law and µ-law WAV (formats 6 and 7); RIFF is a chunk list of a few lines.

use crate::g711;
use std::path::Path;
use std::sync::Arc;

/// Audio to play, 8,000 samples a second, µ-law encoded; cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Clip(Arc<[u8]>);

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clip({} ms)", self.0.len() / 8)
    }
}

/// Why a file cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file the box can play: {0}")]
    Format(&'static str),
    #[error("no prompt {0:?} in the prompt set")]
    Missing(String),
    #[error("{0:?} is not a prompt name")]
    BadName(String),
    #[error("longer than {0} seconds")]
    TooLong(usize),
}

impl Clip {
    /// A clip of µ-law samples.
    pub fn from_ulaw(samples: Vec<u8>) -> Clip {
        Clip(samples.into())
    }

    /// The µ-law samples.
    pub fn samples(&self) -> &[u8] {
        &self.0
    }

    /// Length in samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the clip holds no sound at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tones of `freqs` Hz played together for `on_ms`, then `off_ms` of silence: one
    /// cadence, to be looped (ringback, the music-on-hold stand-in, beeps).
    pub fn tone(freqs: &[f64], on_ms: u32, off_ms: u32, level: f64) -> Clip {
        let on = on_ms as usize * 8;
        let mut out = Vec::with_capacity(on + off_ms as usize * 8);
        for n in 0..on {
            let t = n as f64 / 8000.0;
            let v: f64 = freqs
                .iter()
                .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
                .sum::<f64>()
                / freqs.len().max(1) as f64;
            out.push(g711::linear_to_ulaw((v * level * 32767.0) as i16));
        }
        out.resize(on + off_ms as usize * 8, g711::linear_to_ulaw(0));
        Clip::from_ulaw(out)
    }

    /// A WAV file: mono or stereo (mixed down), 8 kHz linear 16-bit, A-law or µ-law;
    /// other rates are resampled to 8 kHz by linear interpolation.
    pub fn wav(bytes: &[u8]) -> Result<Clip, ClipError> {
        Clip::wav_within(bytes, usize::MAX)
    }

    /// [`Clip::wav`] for a file of at most `cap` samples at 8 kHz, refused (before
    /// anything is decoded) when it is longer.
    pub fn wav_within(bytes: &[u8], cap: usize) -> Result<Clip, ClipError> {
        if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err(ClipError::Format("no RIFF/WAVE header"));
        }
        let mut pos = 12;
        let mut fmt: Option<(u16, u16, u32, u16)> = None;
        while pos + 8 <= bytes.len() {
            let id = &bytes[pos..pos + 4];
            let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4")) as usize;
            let body = pos + 8;
            let end = body.saturating_add(len).min(bytes.len());
            if id == b"fmt " {
                let f = &bytes[body..end];
                if f.len() < 16 {
                    return Err(ClipError::Format("short fmt chunk"));
                }
                let le16 = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
                let mut tag = le16(0);
                if tag == 0xfffe && f.len() >= 26 {
                    tag = le16(24); // WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                }
                let rate = u32::from_le_bytes(f[4..8].try_into().expect("4"));
                fmt = Some((tag, le16(2), rate, le16(14)));
            } else if id == b"data" {
                let (tag, channels, rate, bits) =
                    fmt.ok_or(ClipError::Format("data before fmt"))?;
                let frame = (channels as u64 * (bits as u64 / 8)).max(1);
                let samples = (end - body) as u64 / frame * 8000 / (rate as u64).max(1);
                if samples > cap as u64 {
                    return Err(ClipError::TooLong(cap / 8000));
                }
                return decode(&bytes[body..end], tag, channels, rate, bits);
            }
            pos = body.saturating_add(len + (len & 1));
        }
        Err(ClipError::Format("no data chunk"))
    }

    /// A WAV file, or a raw G.711 file named `*.ulaw`/`*.pcmu`/`*.alaw`/`*.pcma`.
    pub fn load(path: &Path) -> Result<Clip, ClipError> {
        let bytes = std::fs::read(path)?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "ulaw" | "pcmu" | "ul" => Ok(Clip::from_ulaw(bytes)),
            "alaw" | "pcma" | "al" => {
                let t = g711::alaw_to_ulaw_table();
                Ok(Clip::from_ulaw(
                    bytes.iter().map(|b| t[*b as usize]).collect(),
                ))
            }
            _ => Clip::wav(&bytes),
        }
    }

    /// Every playable file of a folder in name order, one after the other, stopping
    /// before the clip would pass `cap` samples (a collection of music on hold).
    /// Files that cannot be read are skipped with a warning.
    pub fn collection(dir: &Path, cap: usize) -> Result<Clip, ClipError> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut all = Vec::new();
        for p in names {
            match Clip::load(&p) {
                Ok(c) if all.len() + c.len() <= cap || all.is_empty() => {
                    all.extend_from_slice(&c.0[..c.len().min(cap)]);
                }
                Ok(_) => break,
                Err(e) => tracing::warn!(file = %p.display(), "not played: {e}"),
            }
        }
        if all.is_empty() {
            return Err(ClipError::Format("no playable file in the folder"));
        }
        Ok(Clip::from_ulaw(all))
    }
}

fn decode(data: &[u8], tag: u16, channels: u16, rate: u32, bits: u16) -> Result<Clip, ClipError> {
    let ch = channels as usize;
    if ch == 0 || ch > 8 {
        return Err(ClipError::Format("channel count"));
    }
    if !(4000..=192_000).contains(&rate) {
        return Err(ClipError::Format("sample rate"));
    }
    let (width, sample): (usize, fn(&[u8]) -> i16) = match (tag, bits) {
        (1, 16) => (2, |b| i16::from_le_bytes([b[0], b[1]])),
        (1, 8) => (1, |b| (b[0] as i16 - 128) << 8),
        (6, 8) => (1, |b| g711::alaw_to_linear(b[0])),
        (7, 8) => (1, |b| g711::ulaw_to_linear(b[0])),
        _ => return Err(ClipError::Format("only 8/16-bit PCM, A-law and µ-law")),
    };
    let frame = width * ch;
    let mono: Vec<i16> = data
        .chunks_exact(frame)
        .map(|f| {
            let sum: i32 = f.chunks_exact(width).map(|s| sample(s) as i32).sum();
            (sum / ch as i32) as i16
        })
        .collect();
    let out: Vec<u8> = if rate == 8000 {
        mono.iter().map(|s| g711::linear_to_ulaw(*s)).collect()
    } else {
        let n = (mono.len() as u64 * 8000 / rate as u64) as usize;
        (0..n)
            .map(|i| {
                let x = i as f64 * rate as f64 / 8000.0;
                let j = x as usize;
                let f = x - j as f64;
                let a = mono[j.min(mono.len() - 1)] as f64;
                let b = mono[(j + 1).min(mono.len() - 1)] as f64;
                g711::linear_to_ulaw((a + (b - a) * f) as i16)
            })
            .collect()
    };
    Ok(Clip::from_ulaw(out))
}

/// A WAV file of 8 kHz mono 16-bit samples (what the recorder writes and tests read).
pub fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let data = samples.len() * 2;
    let mut v = Vec::with_capacity(44 + data);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data as u32).to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_of_pcm_is_read_and_resampled() {
        let tone: Vec<i16> = (0..8000)
            .map(|n| {
                ((n as f64 * 440.0 * 2.0 * std::f64::consts::PI / 8000.0).sin() * 8000.0) as i16
            })
            .collect();
        let c = Clip::wav(&wav_bytes(&tone)).unwrap();
        assert_eq!(c.len(), 8000);
        let back: Vec<i16> = c
            .samples()
            .iter()
            .map(|b| g711::ulaw_to_linear(*b))
            .collect();
        assert!(crate::dtmf::tone_power(&back, 8000, 440.0) > 1e6);
        // The same at 16 kHz comes back at 8 kHz, half as many samples.
        let mut w = wav_bytes(&[0i16; 16000]);
        w[24..28].copy_from_slice(&16000u32.to_le_bytes());
        assert_eq!(Clip::wav(&w).unwrap().len(), 8000);
    }

    #[test]
    fn broken_wav_files_are_refused_without_panicking() {
        let good = wav_bytes(&[1, 2, 3, 4]);
        for cut in 0..good.len() {
            let _ = Clip::wav(&good[..cut]);
        }
        assert!(Clip::wav(b"RIFF\0\0\0\0WAVE").is_err());
        let mut huge = good.clone();
        huge[40..44].copy_from_slice(&u32::MAX.to_le_bytes()); // data longer than the file
        assert_eq!(Clip::wav(&huge).unwrap().len(), 4);
        let mut odd = good.clone();
        odd[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // fmt chunk past the end
        assert!(Clip::wav(&odd).is_err());
        let mut float = good;
        float[20] = 3;
        assert!(Clip::wav(&float).is_err());
    }

    #[test]
    fn a_tone_cadence_has_its_length() {
        let c = Clip::tone(&[425.0], 1000, 4000, 0.3);
        assert_eq!(c.len(), 40_000);
    }
}
