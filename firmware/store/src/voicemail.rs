//! Voicemail boxes on the card: a folder per extension under `<data>/voicemail/`,
//! shared by pbxd (which records into it and carries out what the voicemail menu
//! asks), the web portal (which lists, plays and deletes) and the message-waiting
//! lamps (which count).
//!
//! A message is a WAV file named `<unix seconds>-<call>-<caller>.wav` (with `-1`, `-2`...
//! when a name was taken) while it is new; once heard on the phone (or saved) it is
//! renamed `<id>.old.wav`, so a box's new and old messages are told apart by name
//! alone, and both count against the box's limit. Greetings are `greeting-busy.wav`,
//! `greeting-unavailable.wav` and `greeting-temp.wav` (the temporary greeting, played
//! for both causes while it exists); a greeting recorded on the phone is written as
//! `greeting-new-<call>.wav` first and renamed when the user accepts it.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// One message in a box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// The file name without `.wav` or `.old.wav`: what the API, the portal and the
    /// menu call it by.
    pub id: String,
    /// When it was left, seconds since the Unix epoch.
    pub unix: u64,
    /// Who left it (digits, letters and `+`; `unknown` when the caller had no number).
    pub caller: String,
    /// Its length.
    pub seconds: u64,
    /// Not heard yet on the phone.
    pub new: bool,
}

/// What a box holds, as the exchange needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// Newest first.
    pub messages: Vec<Message>,
    /// The temporary greeting is there.
    pub temp_greeting: bool,
}

impl Mailbox {
    /// Messages not heard yet.
    pub fn new_count(&self) -> usize {
        self.messages.iter().filter(|m| m.new).count()
    }

    /// Messages heard.
    pub fn old_count(&self) -> usize {
        self.messages.len() - self.new_count()
    }
}

/// Reads the box in folder `dir`.
pub fn scan(dir: &Path) -> Mailbox {
    Mailbox {
        messages: list(dir),
        temp_greeting: dir.join(TEMP_GREETING).is_file(),
    }
}

/// The temporary greeting's file.
pub const TEMP_GREETING: &str = "greeting-temp.wav";

/// The prefix of a greeting recorded on the phone and not accepted yet.
pub const NEW_GREETING_PREFIX: &str = "greeting-new-";

/// Whether `id` can name a message: letters, digits, `+` and `-`, starting with when it
/// was left; never a path.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
        && id
            .split('-')
            .next()
            .is_some_and(|t| t.parse::<u64>().is_ok())
}

/// Whether `name` can be a box (an extension's number).
pub fn valid_box(name: &str) -> bool {
    !name.is_empty() && name.len() <= 20 && name.bytes().all(|b| b.is_ascii_digit())
}

/// The folder of box `ext` under the voicemail folder `root`.
pub fn box_dir(root: &Path, ext: &str) -> PathBuf {
    root.join(ext)
}

/// The messages of the box in folder `dir`, newest first. Files that are not messages
/// (a `.part` being written, greetings, anything else) are left out.
pub fn list(dir: &Path) -> Vec<Message> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<Message> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (id, new) = match name.strip_suffix(".old.wav") {
                Some(id) => (id, false),
                None => (name.strip_suffix(".wav")?, true),
            };
            if !valid_id(id) {
                return None;
            }
            let mut parts = id.splitn(3, '-');
            let unix = parts.next()?.parse().ok()?;
            let _call: u64 = parts.next()?.parse().ok()?;
            let rest = parts.next()?;
            // A suffix added for a name that was taken is not part of the caller.
            let caller = match rest.rsplit_once('-') {
                Some((c, n)) if n.bytes().all(|b| b.is_ascii_digit()) => c,
                _ => rest,
            };
            let len = e.metadata().ok()?.len();
            Some(Message {
                id: id.to_string(),
                unix,
                caller: caller.to_string(),
                seconds: len.saturating_sub(44) / 16_000,
                new,
            })
        })
        .collect();
    v.sort_by(|a, b| b.unix.cmp(&a.unix).then(b.id.cmp(&a.id)));
    v
}

/// The file of message `id` in box folder `dir`, new or old, when it exists.
pub fn file(dir: &Path, id: &str) -> Option<PathBuf> {
    if !valid_id(id) {
        return None;
    }
    [format!("{id}.wav"), format!("{id}.old.wav")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Marks message `id` heard (it becomes an old message).
pub fn mark_heard(dir: &Path, id: &str) -> std::io::Result<()> {
    if !valid_id(id) {
        return Err(std::io::Error::other("not a message"));
    }
    let new = dir.join(format!("{id}.wav"));
    if new.is_file() {
        std::fs::rename(new, dir.join(format!("{id}.old.wav")))?;
    }
    Ok(())
}

/// Deletes message `id`, new or old.
pub fn delete(dir: &Path, id: &str) -> std::io::Result<()> {
    match file(dir, id) {
        Some(p) => std::fs::remove_file(p),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("message {id}"),
        )),
    }
}

/// Makes the greeting recorded on the phone at `recorded` (a `greeting-new-*` file in
/// box folder `dir`) the box's greeting `file_name`.
pub fn install_greeting(dir: &Path, recorded: &Path, file_name: &str) -> std::io::Result<()> {
    let ok_source = recorded.parent() == Some(dir)
        && recorded
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(NEW_GREETING_PREFIX) && n.ends_with(".wav"));
    let ok_target = file_name.starts_with("greeting-")
        && !file_name.starts_with(NEW_GREETING_PREFIX)
        && file_name.ends_with(".wav")
        && !file_name.contains('/');
    if !ok_source || !ok_target {
        return Err(std::io::Error::other("not a greeting of this box"));
    }
    std::fs::rename(recorded, dir.join(file_name))
}

/// Removes a greeting recorded on the phone and not accepted (only such files).
pub fn discard_new_greeting(path: &Path) -> std::io::Result<()> {
    let is_new = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(NEW_GREETING_PREFIX));
    if !is_new {
        return Err(std::io::Error::other("not a new greeting"));
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_lists_new_and_old_messages_newest_first_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        std::fs::write(b.join("1700000000-3-101.old.wav"), vec![0u8; 44 + 32_000]).unwrap();
        std::fs::write(
            b.join("1700000500-9-+420601002.wav"),
            vec![0u8; 44 + 16_000],
        )
        .unwrap();
        std::fs::write(b.join("1700000500-9-+420601002-1.wav"), vec![0u8; 44]).unwrap();
        for junk in [
            "1700000600-1-101.part",
            "notes.txt",
            "x.wav",
            "1-2.wav",
            "a-b-c.wav",
            "greeting-busy.wav",
            "greeting-new-7.wav",
            "1-2-3.old.old.wav",
        ] {
            std::fs::write(b.join(junk), b"x").unwrap();
        }
        let got = list(b);
        let ids: Vec<(&str, bool)> = got.iter().map(|m| (m.id.as_str(), m.new)).collect();
        assert_eq!(
            ids,
            [
                ("1700000500-9-+420601002-1", true),
                ("1700000500-9-+420601002", true),
                ("1700000000-3-101", false)
            ]
        );
        assert_eq!(
            got[0].caller, "+420601002",
            "the suffix is not the caller's"
        );
        assert_eq!((got[1].seconds, got[2].seconds), (1, 2));
        assert!(list(&b.join("103")).is_empty(), "no box yet");

        // Heard: renamed old, still found; deleted: gone.
        mark_heard(b, "1700000500-9-+420601002").unwrap();
        assert!(!list(b)[1].new);
        assert!(file(b, "1700000500-9-+420601002")
            .unwrap()
            .ends_with("1700000500-9-+420601002.old.wav"));
        mark_heard(b, "1700000500-9-+420601002").unwrap();
        delete(b, "1700000000-3-101").unwrap();
        assert!(delete(b, "1700000000-3-101").is_err());
        assert_eq!(list(b).len(), 2);
        assert!(mark_heard(b, "../x").is_err());
    }

    #[test]
    fn ids_never_name_a_path() {
        for good in ["1700000000-3-101", "1-2-+420-1"] {
            assert!(valid_id(good), "{good}");
        }
        for bad in [
            "",
            "../102/1-2-3",
            "1-2-3.wav",
            "1/2",
            "a b",
            "greeting-busy",
            &"1".repeat(81),
        ] {
            assert!(!valid_id(bad), "{bad}");
            assert!(file(Path::new("/"), bad).is_none());
        }
        assert!(valid_box("102") && !valid_box("../1") && !valid_box(""));
    }

    #[test]
    fn only_a_new_greeting_of_the_box_is_installed_or_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        let rec = b.join("greeting-new-7.wav");
        std::fs::write(&rec, b"RIFF").unwrap();
        std::fs::write(b.join("1-2-3.wav"), b"RIFF").unwrap();
        assert!(install_greeting(b, &b.join("1-2-3.wav"), "greeting-busy.wav").is_err());
        assert!(install_greeting(b, &rec, "../greeting-busy.wav").is_err());
        assert!(install_greeting(b, &rec, "1-2-4.wav").is_err());
        install_greeting(b, &rec, "greeting-busy.wav").unwrap();
        assert!(b.join("greeting-busy.wav").is_file() && !rec.exists());
        assert!(discard_new_greeting(&b.join("1-2-3.wav")).is_err());
        std::fs::write(&rec, b"RIFF").unwrap();
        discard_new_greeting(&rec).unwrap();
        discard_new_greeting(&rec).unwrap();
        assert!(!rec.exists());
    }
}
