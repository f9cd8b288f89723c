//! Line-in from a capture device that plays a file: ALSA's `file` plugin reading a
//! raw tone (its `infile`) over the `null` device, declared in an `.asoundrc` of the
//! test's own. pbxd's end-to-end test of live music on hold uses the same device.

use board::audio::{LineIn, FRAME};

#[test]
fn line_in_reads_what_the_device_captures() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("tone.raw");
    let samples: Vec<i16> = (0..8000).map(|n| ((n % 100) * 100) as i16).collect();
    std::fs::write(
        &raw,
        samples
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".asoundrc"),
        format!(
            "pcm.tonein {{\n type file\n slave.pcm null\n file \"/dev/null\"\n infile \"{}\"\n format raw\n}}\n",
            raw.display()
        ),
    )
    .unwrap();
    // Only this test runs in this binary: nothing else reads the environment.
    std::env::set_var("HOME", dir.path());
    let mut l = LineIn::open("tonein").expect("the file device");
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    let mut pcm = [0i16; FRAME];
    for _ in 0..10 {
        l.read_frame(&mut pcm).unwrap();
        got.extend_from_slice(&pcm);
    }
    eprintln!("10 frames in {:?}", start.elapsed());
    assert_eq!(&got[..], &samples[..got.len()]);
}
