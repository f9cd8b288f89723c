//! Recorded queue calls (Kerio 14.4): the relay writes the caller's voice and the
//! agent's into two mono files while the call lasts; when it ends they become one
//! stereo WAV (the caller left, the agent right), and the oldest recordings go while
//! all of them take more than the configured megabytes.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A mono 16-bit 8 kHz WAV as the relay writes it: its samples' reader and count.
fn open_mono(path: &Path) -> io::Result<(BufReader<File>, u64)> {
    let mut f = BufReader::new(File::open(path)?);
    let mut h = [0u8; 44];
    f.read_exact(&mut h)?;
    let ok = &h[0..4] == b"RIFF"
        && &h[8..16] == b"WAVEfmt "
        && u16::from_le_bytes([h[22], h[23]]) == 1
        && u16::from_le_bytes([h[34], h[35]]) == 16
        && &h[36..40] == b"data";
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a mono 16-bit WAV",
        ));
    }
    let len = std::fs::metadata(path)?.len().saturating_sub(44) / 2;
    Ok((f, len))
}

/// The header of a stereo 16-bit 8 kHz WAV of `frames` frames.
fn stereo_header(frames: u64) -> Vec<u8> {
    let data = (frames * 4).min(u32::MAX as u64 - 36) as u32;
    let mut v = Vec::with_capacity(44);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&2u16.to_le_bytes()); // two channels
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&32000u32.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v
}

/// Makes `caller` and `agent` (either may be missing: silence) one stereo file like
/// `out` (`-1`, `-2`... when that name is taken), read and written a few thousand
/// samples at a time; the halves are removed. Answers the file written.
pub fn merge(caller: Option<&Path>, agent: Option<&Path>, out: &Path) -> io::Result<PathBuf> {
    let tmp = out.with_extension("part");
    let r = merge_into(caller, agent, out, &tmp);
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn merge_into(
    caller: Option<&Path>,
    agent: Option<&Path>,
    out: &Path,
    tmp: &Path,
) -> io::Result<PathBuf> {
    let mut sides = Vec::new();
    for p in [caller, agent] {
        sides.push(match p {
            Some(p) => match open_mono(p) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(file = %p.display(), "half of a recorded call unreadable: {e}");
                    None
                }
            },
            None => None,
        });
    }
    let frames = sides
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.1))
        .max()
        .unwrap_or(0);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = BufWriter::new(File::create(tmp)?);
    w.write_all(&stereo_header(frames))?;
    let mut left = vec![0u8; 8192];
    let mut right = vec![0u8; 8192];
    let mut done = 0u64;
    while done < frames {
        let n = ((frames - done) * 2).min(8192) as usize;
        for (side, buf) in sides.iter_mut().zip([&mut left, &mut right]) {
            buf[..n].fill(0);
            if let Some((r, _)) = side {
                // A shorter half ends in silence.
                let mut got = 0;
                while got < n {
                    match r.read(&mut buf[got..n])? {
                        0 => break,
                        k => got += k,
                    }
                }
            }
        }
        let mut frame = Vec::with_capacity(n * 2);
        for i in (0..n).step_by(2) {
            frame.extend_from_slice(&left[i..i + 2]);
            frame.extend_from_slice(&right[i..i + 2]);
        }
        w.write_all(&frame)?;
        done += (n / 2) as u64;
    }
    w.flush()?;
    drop(w);
    // Never over an earlier recording (call numbers start again with pbxd, and a box
    // without a clock may repeat a time).
    let stem = out
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let out = (0..1000)
        .map(|n| match n {
            0 => out.to_path_buf(),
            n => out.with_file_name(format!("{stem}-{n}.wav")),
        })
        .find(|p| !p.exists())
        .ok_or_else(|| io::Error::new(io::ErrorKind::AlreadyExists, "no free file name"))?;
    std::fs::rename(tmp, &out)?;
    for p in [caller, agent].into_iter().flatten() {
        let _ = std::fs::remove_file(p);
    }
    Ok(out)
}

/// After a restart: what a call in progress left in `dir/parts` (halves, spools,
/// temporary files) is put together as well as it can be or removed.
pub fn recover(dir: &Path) {
    let parts = dir.join("parts");
    let Ok(rd) = std::fs::read_dir(&parts) else {
        return;
    };
    let mut stems = std::collections::BTreeSet::new();
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        match name
            .strip_suffix("-caller.wav")
            .or_else(|| name.strip_suffix("-agent.wav"))
        {
            Some(stem) => {
                stems.insert(stem.to_string());
            }
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    for stem in stems {
        let half =
            |side: &str| Some(parts.join(format!("{stem}-{side}.wav"))).filter(|p| p.exists());
        let (c, a) = (half("caller"), half("agent"));
        match merge(c.as_deref(), a.as_deref(), &dir.join(format!("{stem}.wav"))) {
            Ok(p) => {
                tracing::info!(file = %p.display(), "recorded call of before the restart saved")
            }
            Err(e) => {
                tracing::warn!(stem, "recorded call of before the restart lost: {e}");
                for p in [c, a].into_iter().flatten() {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}

/// The recorded calls in `dir` (`*.wav`), oldest first, with their sizes.
pub fn list(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut v: Vec<(PathBuf, u64, std::time::SystemTime)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
        .filter_map(|e| {
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some((e.path(), m.len(), m.modified().ok()?))
        })
        .collect();
    v.sort_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)));
    v.into_iter().map(|(p, n, _)| (p, n)).collect()
}

/// Removes the oldest recordings of `dir` while they take more than `keep` bytes (the
/// newest stays, however large). Answers how many went.
pub fn enforce_cap(dir: &Path, keep: u64) -> usize {
    let all = list(dir);
    let mut total: u64 = all.iter().map(|(_, n)| n).sum();
    let mut gone = 0;
    for (p, n) in all.iter().take(all.len().saturating_sub(1)) {
        if total <= keep {
            break;
        }
        if std::fs::remove_file(p).is_ok() {
            total -= n;
            gone += 1;
            tracing::info!(file = %p.display(), "old recorded call removed (size limit)");
        }
    }
    gone
}

/// Carries out [`pbx::Request::MergeRecording`] (on a blocking thread).
pub fn finish(caller: Option<PathBuf>, agent: Option<PathBuf>, out: PathBuf, keep: u64) {
    if caller.is_none() && agent.is_none() {
        tracing::warn!(file = %out.display(), "recorded call not saved: neither side was written");
        return;
    }
    match merge(caller.as_deref(), agent.as_deref(), &out) {
        Ok(p) => tracing::info!(file = %p.display(), "call recorded"),
        Err(e) => tracing::warn!(file = %out.display(), "recorded call not saved: {e}"),
    }
    if let Some(dir) = out.parent() {
        enforce_cap(dir, keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mono(path: &Path, samples: &[i16]) {
        let data = samples.len() as u32 * 2;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&8000u32.to_le_bytes());
        v.extend_from_slice(&16000u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data.to_le_bytes());
        for s in samples {
            v.extend_from_slice(&s.to_le_bytes());
        }
        std::fs::write(path, v).unwrap();
    }

    #[test]
    fn halves_become_one_stereo_file_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
        let left: Vec<i16> = (0..10_000).map(|i| i as i16).collect();
        let right: Vec<i16> = (0..6_000).map(|i| -(i as i16)).collect();
        mono(&a, &left);
        mono(&b, &right);
        let out = dir.path().join("rec/1-700-101-102-5.wav");
        merge(Some(&a), Some(&b), &out).unwrap();
        assert!(!a.exists() && !b.exists(), "the halves are removed");
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2);
        assert_eq!(bytes.len(), 44 + 10_000 * 4);
        let frame = |i: usize| {
            let o = 44 + i * 4;
            (
                i16::from_le_bytes([bytes[o], bytes[o + 1]]),
                i16::from_le_bytes([bytes[o + 2], bytes[o + 3]]),
            )
        };
        assert_eq!(frame(0), (0, 0));
        assert_eq!(frame(5_999), (5_999, -5_999));
        // The shorter half ends in silence.
        assert_eq!(frame(9_999), (9_999, 0));
        // One half missing or unreadable: silence on that side.
        let c = dir.path().join("c.wav");
        std::fs::write(&c, b"not a wav file at all, not even close to one").unwrap();
        mono(&a, &left[..100]);
        let out2 = dir.path().join("rec/2-700-101-102-6.wav");
        merge(Some(&a), Some(&c), &out2).unwrap();
        assert_eq!(std::fs::read(&out2).unwrap().len(), 44 + 100 * 4);
        // Past the limit the oldest goes, the newest stays.
        let total: u64 = list(&dir.path().join("rec")).iter().map(|x| x.1).sum();
        assert_eq!(enforce_cap(&dir.path().join("rec"), total), 0);
        assert_eq!(enforce_cap(&dir.path().join("rec"), 1000), 1);
        assert!(!out.exists() && out2.exists());
        assert_eq!(
            enforce_cap(&dir.path().join("rec"), 0),
            0,
            "the newest stays"
        );
        // The same name again: a new file beside it.
        mono(&a, &left[..10]);
        let again = merge(Some(&a), None, &out2).unwrap();
        assert_eq!(again, dir.path().join("rec/2-700-101-102-6-1.wav"));
        // After a restart: halves are saved, spools and temporary files removed.
        let rec = dir.path().join("rec");
        std::fs::create_dir_all(rec.join("parts")).unwrap();
        mono(&rec.join("parts/3-700-101-102-1-caller.wav"), &left[..50]);
        std::fs::write(rec.join("parts/4-700-101-102-2-agent.spool"), b"x").unwrap();
        recover(&rec);
        assert!(rec.join("3-700-101-102-1.wav").exists());
        assert_eq!(std::fs::read_dir(rec.join("parts")).unwrap().count(), 0);
    }
}
