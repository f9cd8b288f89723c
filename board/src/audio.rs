//! ALSA line-in as a live music-on-hold source: 20 ms frames of 8 kHz mono audio from a
//! capture device (the board profile's `audio_in`), encoded as G.711 for the RTP legs
//! that are on hold.

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// An open capture device delivering 8 kHz mono 16-bit frames.
pub struct LineIn {
    pcm: PCM,
    device: String,
}

impl LineIn {
    /// Opens `device` (`hw:0,0`, `plughw:1,0`, or `null` in tests) for capture at 8 kHz
    /// mono, signed 16-bit; the error names the device and what ALSA said.
    pub fn open(device: &str) -> Result<LineIn, String> {
        let e = |what: &str, err: alsa::Error| format!("line-in {device}: {what}: {err}");
        let pcm = PCM::new(device, Direction::Capture, false).map_err(|x| e("open", x))?;
        {
            let hw = HwParams::any(&pcm).map_err(|x| e("parameters", x))?;
            hw.set_channels(1).map_err(|x| e("mono", x))?;
            hw.set_rate(8000, ValueOr::Nearest)
                .map_err(|x| e("8 kHz", x))?;
            hw.set_format(Format::s16()).map_err(|x| e("16-bit", x))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(|x| e("access", x))?;
            hw.set_period_size_near(FRAME as alsa::pcm::Frames, ValueOr::Nearest)
                .map_err(|x| e("period", x))?;
            pcm.hw_params(&hw).map_err(|x| e("apply parameters", x))?;
        }
        let rate = pcm
            .hw_params_current()
            .and_then(|h| h.get_rate())
            .map_err(|x| e("rate", x))?;
        if rate != 8000 {
            return Err(format!(
                "line-in {device}: runs at {rate} Hz, not 8000 (use plughw:)"
            ));
        }
        pcm.prepare().map_err(|x| e("prepare", x))?;
        Ok(LineIn {
            pcm,
            device: device.to_string(),
        })
    }

    /// The rate and channels the device runs at.
    pub fn format(&self) -> (u32, u32) {
        self.pcm
            .hw_params_current()
            .map(|h| (h.get_rate().unwrap_or(0), h.get_channels().unwrap_or(0)))
            .unwrap_or((0, 0))
    }

    /// Reads one 20 ms frame; recovers from an overrun (the next frame is late, not
    /// lost for good).
    pub fn read_frame(&mut self, out: &mut [i16; FRAME]) -> Result<(), String> {
        let io = self
            .pcm
            .io_i16()
            .map_err(|x| format!("line-in {}: {x}", self.device))?;
        let mut got = 0;
        let mut tries = 0;
        while got < FRAME {
            match io.readi(&mut out[got..]) {
                Ok(n) => got += n,
                Err(err) if tries < 3 => {
                    tries += 1;
                    self.pcm
                        .try_recover(err, true)
                        .map_err(|x| format!("line-in {}: {x}", self.device))?;
                }
                Err(err) => return Err(format!("line-in {}: {err}", self.device)),
            }
        }
        Ok(())
    }

    /// One frame as G.711 (A-law when `alaw`, else u-law), what a leg on hold is sent.
    pub fn read_g711(&mut self, alaw: bool) -> Result<[u8; FRAME], String> {
        let mut pcm = [0i16; FRAME];
        self.read_frame(&mut pcm)?;
        let mut out = [0u8; FRAME];
        for (o, s) in out.iter_mut().zip(pcm) {
            *o = if alaw {
                media::g711::linear_to_alaw(s)
            } else {
                media::g711::linear_to_ulaw(s)
            };
        }
        Ok(out)
    }
}
