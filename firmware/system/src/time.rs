//! Time zone and NTP (Kerio 22: date, time and time zone). Kept in
//! `<data>/system/time.json` like the network settings, so they survive firmware updates
//! (the root slot is replaced) and are put in force at every boot: `/etc/localtime`,
//! `/etc/timezone`, and systemd-timesyncd's servers.

use crate::network::{is_hostname, write_atomic, Invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The box's clock settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    /// IANA zone name (`Europe/Prague`); call times and time conditions use it.
    pub timezone: String,
    /// NTP servers (host names or addresses), in order; empty: NTP off.
    #[serde(default)]
    pub ntp: Vec<String>,
}

impl Default for TimeSettings {
    /// UTC and no NTP server: the box sends nothing until the administrator names one.
    fn default() -> Self {
        TimeSettings {
            timezone: "UTC".into(),
            ntp: Vec::new(),
        }
    }
}

fn bad(field: &str, message: impl Into<String>) -> Invalid {
    Invalid::new(field, message)
}

impl TimeSettings {
    /// Checks the settings; the zone must exist under `<root>/usr/share/zoneinfo`.
    pub fn validate(&self, root: &Path) -> Result<(), Invalid> {
        let tz = &self.timezone;
        let shape_ok = !tz.is_empty()
            && tz.len() <= 64
            && !tz.starts_with('/')
            && tz
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != "..")
            && tz
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !shape_ok {
            return Err(bad(
                "timezone",
                format!("{tz:?} is not a time zone name such as Europe/Prague"),
            ));
        }
        if !zone_file(root, tz).is_file() {
            return Err(bad("timezone", format!("unknown time zone {tz:?}")));
        }
        if self.ntp.len() > 4 {
            return Err(bad("ntp", "at most 4 NTP servers"));
        }
        if let Some(s) = self.ntp.iter().find(|s| !is_hostname(s)) {
            return Err(bad(
                "ntp",
                format!("{s:?} is not a host name or IPv4 address"),
            ));
        }
        Ok(())
    }

    /// Puts the settings in force under `root`: `etc/localtime` (a symlink swapped in
    /// atomically), `etc/timezone`, and timesyncd's drop-in. The
    /// caller restarts systemd-timesyncd (see [`apply`]).
    pub fn write_system_files(&self, root: &Path) -> std::io::Result<()> {
        let etc = root.join("etc");
        std::fs::create_dir_all(&etc)?;
        let target = Path::new("/usr/share/zoneinfo").join(&self.timezone);
        let tmp = etc.join(format!(".localtime.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        std::fs::rename(&tmp, etc.join("localtime"))?;
        write_atomic(
            &etc.join("timezone"),
            format!("{}\n", self.timezone).as_bytes(),
        )?;
        let dropin = etc.join("systemd/timesyncd.conf.d/pbx.conf");
        let body = format!(
            "# Written by the PBX from /data/system/time.json; edit it in the web admin.\n[Time]\nNTP={}\nFallbackNTP=\n",
            self.ntp.join(" ")
        );
        write_atomic(&dropin, body.as_bytes())
    }
}

fn zone_file(root: &Path, tz: &str) -> PathBuf {
    root.join("usr/share/zoneinfo").join(tz)
}

/// `<data>/system/time.json`.
pub struct TimeFile {
    path: PathBuf,
}

impl TimeFile {
    pub fn in_data_dir(data: &Path) -> TimeFile {
        TimeFile {
            path: data.join("system/time.json"),
        }
    }

    /// The saved settings; `Ok(None)` when none were saved; an error naming the file
    /// when it is damaged.
    pub fn load(&self) -> Result<Option<TimeSettings>, String> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{} is damaged: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
        }
    }

    /// Validates against `root` and writes the file atomically.
    pub fn save(&self, s: &TimeSettings, root: &Path) -> Result<(), String> {
        s.validate(root).map_err(|e| e.to_string())?;
        let body = serde_json::to_vec_pretty(s).map_err(|e| e.to_string())?;
        write_atomic(&self.path, &body).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Writes the system files and, on a running box (`root` is `/`), restarts
/// systemd-timesyncd so the servers take effect; with no server it is stopped.
pub fn apply(s: &TimeSettings, root: &Path) -> Result<Vec<String>, String> {
    s.validate(root).map_err(|e| e.to_string())?;
    s.write_system_files(root)
        .map_err(|e| format!("writing the time settings: {e}"))?;
    let mut notes = vec![format!("time zone {}", s.timezone)];
    if root == Path::new("/") {
        let action = if s.ntp.is_empty() { "stop" } else { "restart" };
        match std::process::Command::new("systemctl")
            .args([action, "systemd-timesyncd.service"])
            .status()
        {
            Ok(st) if st.success() => {}
            Ok(st) => notes.push(format!("systemd-timesyncd {action}: {st}")),
            Err(e) => notes.push(format!("systemd-timesyncd {action}: {e}")),
        }
    }
    notes.push(if s.ntp.is_empty() {
        "NTP off".into()
    } else {
        format!("NTP {}", s.ntp.join(", "))
    });
    Ok(notes)
}
