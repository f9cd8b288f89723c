//! WAV files uploaded as greetings, announcements and music: any bytes are a clip of
//! at most the cap or a clean refusal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media::Clip;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Clip::wav_within(data, 80_000) {
        assert!(c.len() <= 80_000, "{} samples", c.len());
    }
});
