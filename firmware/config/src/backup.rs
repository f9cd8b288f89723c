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
}

impl Default for BackupSchedule {
    fn default() -> Self {
        BackupSchedule {
            every: BackupEvery::Off,
            hour: 3,
            parts: ["config", "voicemail", "sounds"].map(String::from).to_vec(),
            keep: 5,
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
        if self.every != BackupEvery::Off && self.parts.is_empty() {
            p.push((
                "parts",
                "a scheduled backup must hold something".to_string(),
            ));
        }
        p
    }
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
        };
        let fields: Vec<&str> = bad.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["hour", "keep", "parts"]);
        let s: BackupSchedule =
            serde_json::from_str(r#"{"every": "weekly", "parts": ["everything"]}"#).unwrap();
        assert!(s.problems()[0].1.contains("unknown part \"everything\""));
    }
}
