//! Line-in through real ALSA: its `null` device stands in for a sound card's capture
//! (it records silence), so the whole path (open, 8 kHz mono 16-bit, read, G.711) runs.

use board::audio::{LineIn, FRAME};

#[test]
fn line_in_reads_frames_from_alsas_null_device() {
    let mut l = LineIn::open("null").expect("ALSA's null device");
    assert_eq!(l.format(), (8000, 1));
    let mut pcm = [0i16; FRAME];
    // Whole 20 ms frames come back, frame after frame.
    for _ in 0..50 {
        l.read_frame(&mut pcm).unwrap();
    }
    // Silence in G.711: 0xD5 in A-law, 0xFF in u-law.
    assert!(l.read_g711(true).unwrap().iter().all(|b| *b == 0xD5));
    assert!(l.read_g711(false).unwrap().iter().all(|b| *b == 0xFF));
}

#[test]
fn a_missing_device_is_a_clear_error() {
    let e = LineIn::open("hw:99,0").err().expect("no card 99");
    assert!(e.starts_with("line-in hw:99,0: open"), "{e}");
}
