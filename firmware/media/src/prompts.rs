//! System prompts: a prompt set is a folder of named files (`vm-intro.wav`,
//! `digits/5.wav`, ...), so another language is another folder. The driver loads a
//! prompt when it is first played and keeps it (the exchange names prompts, it never
//! reads files).

use crate::player::{Clip, ClipError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// At most this much of the prompts is kept in memory (µ-law: about 33 minutes).
const CACHE_CAP: usize = 16 << 20;

/// The extensions tried for a prompt's name, in order.
const EXTENSIONS: [&str; 3] = ["wav", "ulaw", "alaw"];

/// Whether `name` can name a prompt: path segments of letters, digits, `-` and `_`
/// separated by `/` (never `..`, an absolute path or an extension).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A prompt set with the prompts played so far.
#[derive(Debug, Default)]
pub struct Prompts {
    dir: Option<PathBuf>,
    cache: HashMap<String, Clip>,
    bytes: usize,
}

impl Prompts {
    /// The set in folder `dir` (none: every prompt is missing).
    pub fn new(dir: Option<PathBuf>) -> Prompts {
        Prompts {
            dir,
            ..Prompts::default()
        }
    }

    /// The folder of the set.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The prompt `name`, loaded once.
    pub fn get(&mut self, name: &str) -> Result<Clip, ClipError> {
        if let Some(c) = self.cache.get(name) {
            return Ok(c.clone());
        }
        if !valid_name(name) {
            return Err(ClipError::BadName(name.to_string()));
        }
        let Some(dir) = &self.dir else {
            return Err(ClipError::Missing(name.to_string()));
        };
        let mut last = ClipError::Missing(name.to_string());
        for ext in EXTENSIONS {
            let path = dir.join(format!("{name}.{ext}"));
            if !path.is_file() {
                continue;
            }
            match Clip::load(&path) {
                Ok(c) => {
                    if self.bytes + c.len() > CACHE_CAP {
                        self.cache.clear();
                        self.bytes = 0;
                    }
                    self.bytes += c.len();
                    self.cache.insert(name.to_string(), c.clone());
                    return Ok(c);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_set() {
        for good in ["vm-intro", "digits/5", "en_US/beep"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "/etc/passwd",
            "digits//5",
            "a.wav",
            "a b",
            "x/",
            &"a".repeat(129),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn prompts_load_once_by_name_and_missing_ones_say_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("digits")).unwrap();
        std::fs::write(
            dir.path().join("digits/5.wav"),
            crate::player::wav_bytes(&[1000; 800]),
        )
        .unwrap();
        std::fs::write(dir.path().join("beep.ulaw"), [0x7f; 80]).unwrap();
        std::fs::write(dir.path().join("broken.wav"), b"RIFF....WAVE").unwrap();
        let mut p = Prompts::new(Some(dir.path().to_path_buf()));
        assert_eq!(p.get("digits/5").unwrap().len(), 800);
        assert_eq!(p.get("beep").unwrap().len(), 80);
        std::fs::remove_file(dir.path().join("digits/5.wav")).unwrap();
        assert_eq!(p.get("digits/5").unwrap().len(), 800, "kept");
        assert!(p.get("vm-nothing").is_err());
        assert!(p.get("broken").is_err());
        assert!(p.get("../beep").is_err());
        assert!(Prompts::new(None).get("beep").is_err());
    }
}
