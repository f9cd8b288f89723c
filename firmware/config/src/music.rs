//! Music on hold collections (Kerio 24): named sets of uploaded files, played one after
//! the other in a loop, or a live source (the board's ALSA line-in). One collection may
//! be the default, which held callers hear; without one they hear the system collection
//! the image ships. Other collections are named by what plays music (call queues).

use serde::{Deserialize, Serialize};

/// The name the shipped collection is known by; no configured collection takes it.
pub const SYSTEM_MUSIC: &str = "system";

/// Files per collection.
pub const MAX_MUSIC_FILES: usize = 50;

/// A music on hold collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MusicCollection {
    /// Letters, digits, `-` or `_`; not `system`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Uploaded music files by name (`GET /api/v1/music`), played in this order.
    #[serde(default)]
    pub files: Vec<String>,
    /// An ALSA capture device (`hw:1,0`, `plughw:1,0`, `default`) played live instead
    /// of files: the line-in of a radio or a player.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub line_in: String,
    /// Held callers hear this collection (at most one is the default).
    #[serde(default)]
    pub default: bool,
}

/// Whether `name` can name an uploaded file (music, announcements): 1 to 64 letters,
/// digits, `-`, `_`.
pub fn valid_upload_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl MusicCollection {
    /// What is wrong with the collection by itself, as (field, message).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if !crate::routing::valid_name(&self.name) {
            v.push(("name", "must be 1 to 32 letters, digits, - or _".into()));
        } else if self.name.eq_ignore_ascii_case(SYSTEM_MUSIC) {
            v.push(("name", "system is the shipped collection's name".into()));
        }
        if self.description.len() > 200 || self.description.chars().any(char::is_control) {
            v.push((
                "description",
                "must be at most 200 characters on one line".into(),
            ));
        }
        if self.line_in.is_empty() {
            if self.files.is_empty() {
                v.push(("files", "a collection needs a file or a line-in".into()));
            }
        } else {
            if !self.files.is_empty() {
                v.push((
                    "line_in",
                    "a live collection plays the line-in only: no files".into(),
                ));
            }
            // ALSA names: hw:1,0, plughw:CARD=USB,DEV=0, default, dsnoop:1.
            if self.line_in.len() > 64
                || !self
                    .line_in
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-:,=.".contains(&b))
            {
                v.push((
                    "line_in",
                    "must be an ALSA device name such as hw:1,0 or plughw:1,0".into(),
                ));
            }
        }
        if self.files.len() > MAX_MUSIC_FILES {
            v.push(("files", format!("at most {MAX_MUSIC_FILES} files")));
        }
        for f in &self.files {
            if !valid_upload_name(f) {
                v.push(("files", format!("{f:?} is not a music file's name")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(f) = self.files.iter().find(|f| !seen.insert(f.as_str())) {
            v.push(("files", format!("{f} is listed twice")));
        }
        v
    }
}
