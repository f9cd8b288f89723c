//! Backups the box makes by itself (Kerio 20: "Backup the voicemail boxes in regular
//! intervals"), and how many backups it keeps.

use serde::{Deserialize, Serialize};

/// The parts a backup can hold (what `store::backup::Part` names).
pub const BACKUP_PARTS: [&str; 5] = ["config", "voicemail", "sounds", "recordings", "firmware"];

/// How often the box backs itself up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupEvery {
    /// Only when the administrator makes one.
    #[default]
    Off,
    /// Every day at `hour`.
    Daily,
    /// Every Sunday at `hour`.
    Weekly,
}

/// Scheduled backups, written to the data partition like those made by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSchedule {
    pub every: BackupEvery,
    /// Local hour (0-23) from which the backup of the day (or week) is due; a box that
    /// was off then makes it when it is back the same day.
    pub hour: u8,
    /// What the scheduled backups hold.
    pub parts: Vec<String>,
    /// How many backups the box keeps, made by hand or by the schedule (1-30); the
    /// oldest go first.
    pub keep: u32,
    /// Where scheduled backups are also sent.
    pub remote: RemoteTarget,
}

/// A folder on an HTTPS (WebDAV) server that takes the scheduled backups by `PUT`:
/// a NAS, Nextcloud, nginx or Apache with WebDAV.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteTarget {
    pub enabled: bool,
    /// `https://server[:port]/folder/`: each backup goes in it under its own name.
    pub url: String,
    /// Sent with the password as HTTP Basic authentication (over TLS only); none when
    /// empty.
    pub username: String,
    pub password: String,
}

impl Default for BackupSchedule {
    fn default() -> Self {
        BackupSchedule {
            every: BackupEvery::Off,
            hour: 3,
            parts: ["config", "voicemail", "sounds"].map(String::from).to_vec(),
            keep: 5,
            remote: RemoteTarget::default(),
        }
    }
}

impl BackupSchedule {
    /// Problems, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.hour > 23 {
            p.push(("hour", "must be 0-23".to_string()));
        }
        if !(1..=30).contains(&self.keep) {
            p.push(("keep", "must be 1-30".to_string()));
        }
        if let Some(bad) = self
            .parts
            .iter()
            .find(|x| !BACKUP_PARTS.contains(&x.as_str()))
        {
            p.push((
                "parts",
                format!("unknown part {bad:?} (one of {})", BACKUP_PARTS.join(", ")),
            ));
        }
        let r = &self.remote;
        if r.enabled || !r.url.is_empty() {
            let u = r.url.as_str();
            if r.enabled && u.is_empty() {
                p.push((
                    "remote.url",
                    "the server's folder is needed (https://...)".to_string(),
                ));
            } else if u.starts_with("http://") {
                p.push((
                    "remote.url",
                    "must be https://: a backup holds password hashes and keys".to_string(),
                ));
            } else if !remote_url_ok(u) {
                p.push((
                    "remote.url",
                    "must be a URL like https://nas.example.org/backups/ (no user name, query \
                     or spaces in it)"
                        .to_string(),
                ));
            }
        }
        if r.username.contains(':') || r.username.chars().any(char::is_control) {
            p.push((
                "remote.username",
                "no colon or control characters".to_string(),
            ));
        }
        if r.password.chars().any(char::is_control) {
            p.push(("remote.password", "no control characters".to_string()));
        }
        if self.every != BackupEvery::Off && self.parts.is_empty() {
            p.push((
                "parts",
                "a scheduled backup must hold something".to_string(),
            ));
        }
        p
    }
}

/// `https://host[:port]/path`: printable ASCII without spaces, a host without a user
/// name, a port that is a port, no query or fragment.
fn remote_url_ok(u: &str) -> bool {
    let Some(rest) = u.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None),
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    u.len() <= 512
        && u.bytes().all(|b| b.is_ascii_graphic())
        && !u.contains(['?', '#'])
        && !host.is_empty()
        && !host.contains('@')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_off_and_bad_values_are_named() {
        let d = BackupSchedule::default();
        assert!(d.problems().is_empty());
        assert_eq!(d.every, BackupEvery::Off);
        let bad = BackupSchedule {
            every: BackupEvery::Daily,
            hour: 24,
            parts: vec![],
            keep: 0,
            remote: RemoteTarget {
                enabled: true,
                url: "http://nas/backups/".into(),
                username: "a:b".into(),
                password: String::new(),
            },
        };
        let fields: Vec<&str> = bad.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            ["hour", "keep", "remote.url", "remote.username", "parts"]
        );
        for (url, good) in [
            ("https://nas.example.org/backups/", true),
            ("https://[2001:db8::1]:8443/dav", true),
            ("", false),
            ("https://", false),
            ("https://me@nas/backups/", false),
            ("https://nas/my backups/", false),
            (" https://nas/backups/", false),
            ("https://nas:99999/backups/", false),
            ("https://nas/backups/?x=1", false),
            ("https://nás/backups/", false),
            ("ftp://nas/", false),
        ] {
            let s = BackupSchedule {
                remote: RemoteTarget {
                    enabled: true,
                    url: url.into(),
                    ..RemoteTarget::default()
                },
                ..BackupSchedule::default()
            };
            assert_eq!(s.problems().is_empty(), good, "{url:?}");
        }
        let s: BackupSchedule =
            serde_json::from_str(r#"{"every": "weekly", "parts": ["everything"]}"#).unwrap();
        assert!(s.problems()[0].1.contains("unknown part \"everything\""));
    }
}
