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
    let mono = |f: &[u8]| {
        let sum: i32 = f.chunks_exact(width).map(|s| sample(s) as i32).sum();
        (sum / ch as i32) as i16
    };
    let out: Vec<u8> = if rate == 8000 {
        data.chunks_exact(frame)
            .map(|f| g711::linear_to_ulaw(mono(f)))
            .collect()
    } else {
        // A block at a time: the resampler keeps only what its filter still needs.
        let mut r = To8k::new(rate, usize::MAX);
        for block in data.chunks(frame * 65536) {
            r.push(block.chunks_exact(frame).map(|f| mono(f) as f32))?;
        }
        r.finish()
    };
    Ok(Clip::from_ulaw(out))
}

/// Audio brought to 8 kHz a block at a time. Going down, a low-pass filter (a
/// Hann-windowed sinc cut at 3.7 kHz, eight output samples each side) comes before the
/// interpolation, so music from 44.1 or 48 kHz does not fold its highs back into the
/// telephone band as noise; going up is linear interpolation.
struct To8k {
    rate: u64,
    taps: Vec<f32>,
    /// Input samples from number `base` on.
    buf: Vec<f32>,
    base: u64,
    out: Vec<u8>,
    cap: usize,
}

impl To8k {
    fn new(rate: u32, cap: usize) -> To8k {
        let rate = u64::from(rate.max(1));
        let taps = if rate <= 8000 {
            vec![1.0]
        } else {
            let half = (8.0 * rate as f64 / 8000.0).ceil() as i64;
            let fc = 3700.0 / rate as f64;
            let pi = std::f64::consts::PI;
            let mut t: Vec<f32> = (-half..=half)
                .map(|n| {
                    let n = n as f64;
                    let sinc = if n == 0.0 {
                        2.0 * fc
                    } else {
                        (2.0 * pi * fc * n).sin() / (pi * n)
                    };
                    (sinc * (0.5 + 0.5 * (pi * n / (half as f64 + 1.0)).cos())) as f32
                })
                .collect();
            let sum: f32 = t.iter().sum();
            t.iter_mut().for_each(|x| *x /= sum);
            t
        };
        To8k {
            rate,
            taps,
            buf: Vec::new(),
            base: 0,
            out: Vec::new(),
            cap,
        }
    }

    /// The filtered input at sample `j` (nothing before the start or past the end).
    fn at(&self, j: u64) -> f32 {
        let h = (self.taps.len() / 2) as i64;
        let lo = j as i64 - h;
        let base = self.base as i64;
        let start = lo.max(base);
        let end = (lo + self.taps.len() as i64).min(base + self.buf.len() as i64);
        if start >= end {
            return 0.0;
        }
        self.taps[(start - lo) as usize..(end - lo) as usize]
            .iter()
            .zip(&self.buf[(start - base) as usize..(end - base) as usize])
            .map(|(t, x)| t * x)
            .sum()
    }

    /// Takes more input (linear samples, any scale of 16-bit).
    fn push(&mut self, samples: impl Iterator<Item = f32>) -> Result<(), ClipError> {
        self.buf.extend(samples);
        self.run(false)
    }

    fn run(&mut self, last: bool) -> Result<(), ClipError> {
        let h = (self.taps.len() / 2) as u64;
        let have = self.base + self.buf.len() as u64;
        loop {
            let x = self.out.len() as u64 * self.rate;
            let (j, f) = (x / 8000, (x % 8000) as f32 / 8000.0);
            if (!last && j + 1 + h >= have) || (last && j >= have) {
                break;
            }
            if self.out.len() >= self.cap {
                return Err(ClipError::TooLong(self.cap / 8000));
            }
            let a = self.at(j);
            let v = if f > 0.0 {
                a + (self.at(j + 1) - a) * f
            } else {
                a
            };
            self.out
                .push(g711::linear_to_ulaw(v.clamp(-32768.0, 32767.0) as i16));
        }
        // What no later output needs goes.
        let keep = (self.out.len() as u64 * self.rate / 8000).saturating_sub(h + 1);
        if keep > self.base + 65536 {
            self.buf.drain(..(keep - self.base) as usize);
            self.base = keep;
        }
        Ok(())
    }

    /// The rest of the output, µ-law.
    fn finish(mut self) -> Vec<u8> {
        // The cap was checked before (a WAV) or is checked by the last push.
        let _ = self.run(true);
        self.out
    }
}

#[cfg(feature = "mp3")]
impl Clip {
    /// An MP3 file (MPEG-1/2 layer III, any rate, mono or stereo mixed down), decoded
    /// and brought to 8 kHz; `TooLong` past `cap` samples, decoded no further.
    pub fn mp3_within(bytes: &[u8], cap: usize) -> Result<Clip, ClipError> {
        use symphonia::core::audio::SampleBuffer;
        use symphonia::core::codecs::DecoderOptions;
        use symphonia::core::errors::Error;
        use symphonia::core::formats::FormatOptions;
        use symphonia::core::io::MediaSourceStream;
        use symphonia::core::meta::MetadataOptions;
        use symphonia::core::probe::Hint;
        let mss = MediaSourceStream::new(
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            Default::default(),
        );
        let mut hint = Hint::new();
        hint.with_extension("mp3");
        let mut format = symphonia::default::get_probe()
            .format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|_| ClipError::Format("neither WAV nor MP3"))?
            .format;
        let track = format
            .default_track()
            .ok_or(ClipError::Format("no audio in the MP3 file"))?;
        let id = track.id;
        let mut decoder = symphonia::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .map_err(|_| ClipError::Format("not MP3 audio"))?;
        let mut resampler: Option<To8k> = None;
        let mut bad = 0;
        loop {
            let packet = match format.next_packet() {
                Ok(p) => p,
                Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(_) => return Err(ClipError::Format("a broken MP3 stream")),
            };
            if packet.track_id() != id {
                continue;
            }
            let decoded = match decoder.decode(&packet) {
                Ok(d) => d,
                // A damaged frame is skipped, as players do; a stream of them is refused.
                Err(Error::DecodeError(_)) if bad < 50 => {
                    bad += 1;
                    continue;
                }
                Err(_) => return Err(ClipError::Format("a broken MP3 stream")),
            };
            let spec = *decoded.spec();
            if !(4000..=192_000).contains(&spec.rate) {
                return Err(ClipError::Format("sample rate"));
            }
            let r = resampler.get_or_insert_with(|| To8k::new(spec.rate, cap));
            if r.rate != u64::from(spec.rate) {
                return Err(ClipError::Format("the sample rate changes in the file"));
            }
            let ch = spec.channels.count().max(1);
            let mut samples = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
            samples.copy_interleaved_ref(decoded);
            r.push(
                samples
                    .samples()
                    .chunks_exact(ch)
                    .map(|f| f.iter().sum::<f32>() / ch as f32 * 32767.0),
            )?;
        }
        let r = resampler.ok_or(ClipError::Format("no audio in the MP3 file"))?;
        Ok(Clip::from_ulaw(r.finish()))
    }
}

impl Clip {
    /// An uploaded sound: a WAV file, or (with the `mp3` feature) an MP3 file; at most
    /// `cap` samples at 8 kHz.
    pub fn audio_within(bytes: &[u8], cap: usize) -> Result<Clip, ClipError> {
        if bytes.starts_with(b"RIFF") {
            return Clip::wav_within(bytes, cap);
        }
        #[cfg(feature = "mp3")]
        {
            Clip::mp3_within(bytes, cap)
        }
        #[cfg(not(feature = "mp3"))]
        Err(ClipError::Format("no RIFF/WAVE header"))
    }
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

    fn linear(c: &Clip) -> Vec<i16> {
        c.samples()
            .iter()
            .map(|b| g711::ulaw_to_linear(*b))
            .collect()
    }

    #[test]
    fn music_from_44_1_khz_keeps_its_band_and_loses_what_would_fold_back() {
        // 600 Hz plus 6 kHz at 44.1 kHz stereo: sampled down without a filter, 6 kHz
        // comes back as a 2 kHz whistle.
        let pcm: Vec<i16> = (0..44100)
            .flat_map(|n| {
                let t = n as f64 / 44100.0;
                let v = 0.35 * (2.0 * std::f64::consts::PI * 600.0 * t).sin()
                    + 0.25 * (2.0 * std::f64::consts::PI * 6000.0 * t).sin();
                let s = (v * 32767.0) as i16;
                [s, s]
            })
            .collect();
        let mut w = wav_bytes(&pcm);
        w[22..24].copy_from_slice(&2u16.to_le_bytes());
        w[24..28].copy_from_slice(&44100u32.to_le_bytes());
        let c = Clip::wav(&w).unwrap();
        assert_eq!(c.len(), 8000);
        let x = linear(&c);
        let tone = crate::dtmf::tone_power(&x[1000..7000], 8000, 600.0);
        let alias = crate::dtmf::tone_power(&x[1000..7000], 8000, 2000.0);
        assert!(tone > 1000.0 * alias, "600 Hz {tone}, 2 kHz {alias}");
    }

    #[cfg(feature = "mp3")]
    #[test]
    fn an_mp3_is_decoded_to_8_khz_and_capped() {
        let mp3 = include_bytes!("../tests/data/tone-600hz-6khz.mp3");
        let c = Clip::audio_within(mp3, 10 * 8000).unwrap();
        // Three seconds, give or take the encoder's delay and padding.
        assert!((23_500..25_000).contains(&c.len()), "{}", c.len());
        let x = linear(&c);
        let tone = crate::dtmf::tone_power(&x[4000..20000], 8000, 600.0);
        let alias = crate::dtmf::tone_power(&x[4000..20000], 8000, 2000.0);
        assert!(tone > 1000.0 * alias, "600 Hz {tone}, 2 kHz {alias}");
        assert!(matches!(
            Clip::audio_within(mp3, 2 * 8000),
            Err(ClipError::TooLong(2))
        ));
        // Cut short, damaged, or not audio at all: an error, never a panic.
        for cut in [0, 10, 100, 417, 5000] {
            let _ = Clip::audio_within(&mp3[..cut], 10 * 8000);
        }
        let mut bad = mp3.to_vec();
        for i in (600..bad.len()).step_by(97) {
            bad[i] ^= 0x5a;
        }
        let _ = Clip::audio_within(&bad, 10 * 8000);
        assert!(Clip::audio_within(b"hello, this is not music", 8000).is_err());
        assert!(Clip::audio_within(&[0xff; 4096], 8000).is_err());
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
