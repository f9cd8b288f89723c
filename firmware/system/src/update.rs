//! Firmware updates: a signed RAUC bundle goes into the other root slot, the box reboots
//! into it, and pbxd marks it good once healthy; GRUB's boot counter abandons a slot
//! that is never marked good (docs/updates.md).
//!
//! The [`Updater`] runs `rauc install` (RAUC's CLI, which talks to its D-Bus service),
//! reads its progress lines, turns its refusals into messages a technician understands,
//! and reboots when the install succeeded. One install at a time.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Where an update stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpdateState {
    /// No install since pbxd started.
    Idle,
    /// RAUC is installing: percent done and its current step.
    Installing { percent: u8, step: String },
    /// Installed into the other slot; the box reboots into it.
    Rebooting { message: String },
    /// Refused or failed; the running firmware stays.
    Failed { message: String },
}

/// How the updater reaches RAUC and the init system.
#[derive(Debug, Clone)]
pub struct UpdateSettings {
    /// RAUC's command line program.
    pub rauc: PathBuf,
    /// Run after a successful install.
    pub reboot: Vec<String>,
    /// Seconds between a successful install and the reboot, so the web page and
    /// pbxctl can show the outcome.
    pub reboot_delay: Duration,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        UpdateSettings {
            rauc: PathBuf::from("rauc"),
            reboot: vec!["/sbin/reboot".into()],
            reboot_delay: Duration::from_secs(3),
        }
    }
}

/// Installs bundles, one at a time.
pub struct Updater {
    settings: UpdateSettings,
    state: Mutex<UpdateState>,
}

impl Updater {
    pub fn new(settings: UpdateSettings) -> Arc<Updater> {
        Arc::new(Updater {
            settings,
            state: Mutex::new(UpdateState::Idle),
        })
    }

    /// The current state.
    pub fn state(&self) -> UpdateState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UpdateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, s: UpdateState) {
        *self.lock() = s;
    }

    /// Starts installing `bundle` (on the current tokio runtime). With `remove_after`,
    /// the file (an upload) is deleted once RAUC is done with it. Errors at once when
    /// an install is running or the file is not there.
    pub fn install(self: &Arc<Self>, bundle: &Path, remove_after: bool) -> Result<(), String> {
        {
            let mut st = self.lock();
            if matches!(
                *st,
                UpdateState::Installing { .. } | UpdateState::Rebooting { .. }
            ) {
                return Err("an update is already being installed".into());
            }
            match std::fs::metadata(bundle) {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(format!("{} is not a file", bundle.display())),
                Err(e) => return Err(format!("{}: {e}", bundle.display())),
            }
            *st = UpdateState::Installing {
                percent: 0,
                step: "Starting".into(),
            };
        }
        let me = self.clone();
        let bundle = bundle.to_path_buf();
        tokio::spawn(async move {
            let outcome = me.run_rauc(&bundle).await;
            if remove_after {
                let _ = std::fs::remove_file(&bundle);
            }
            match outcome {
                Ok(()) => {
                    me.set(UpdateState::Rebooting {
                        message: "The new firmware is installed; the box restarts into it.".into(),
                    });
                    tokio::time::sleep(me.settings.reboot_delay).await;
                    if let Some((cmd, args)) = me.settings.reboot.split_first() {
                        if let Err(e) = tokio::process::Command::new(cmd).args(args).status().await
                        {
                            me.set(UpdateState::Failed {
                                message: format!(
                                    "installed, but the restart failed ({cmd}: {e}); restart the box"
                                ),
                            });
                        }
                    }
                }
                Err(message) => me.set(UpdateState::Failed { message }),
            }
        });
        Ok(())
    }

    async fn run_rauc(&self, bundle: &Path) -> Result<(), String> {
        let mut child = tokio::process::Command::new(&self.settings.rauc)
            .arg("install")
            .arg(bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "firmware updates are not available on this system ({}: {e})",
                    self.settings.rauc.display()
                )
            })?;
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let errors = tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            let mut all = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                all.push(l);
            }
            all
        });
        let mut lines = BufReader::new(out).lines();
        let mut said = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some((percent, step)) = progress(&l) {
                self.set(UpdateState::Installing { percent, step });
            }
            said.push(l);
        }
        // An install takes minutes; nothing takes an hour.
        let status = tokio::time::timeout(Duration::from_secs(3600), child.wait())
            .await
            .map_err(|_| "the installer did not finish within an hour".to_string())?
            .map_err(|e| format!("installer: {e}"))?;
        let mut text = errors.await.unwrap_or_default();
        text.extend(said);
        if status.success() {
            Ok(())
        } else {
            Err(explain(&text.join("\n")))
        }
    }
}

/// A RAUC progress line (`  40% Copying image to rootfs.1`), as percent and step.
pub fn progress(line: &str) -> Option<(u8, String)> {
    let l = line.trim();
    let (n, rest) = l.split_once('%')?;
    let n: u8 = n.trim().parse().ok()?;
    Some((n.min(100), rest.trim().to_string()))
}

/// RAUC's refusal, in words a technician acts on, with RAUC's own text after it.
pub fn explain(rauc: &str) -> String {
    let detail = rauc
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && progress(l).is_none())
        .filter(|l| !l.starts_with("installing") || l.contains("fail"))
        .collect::<Vec<_>>()
        .join("; ");
    let low = rauc.to_ascii_lowercase();
    let head = if low.contains("compatible mismatch") {
        "The bundle is for another board and was refused"
    } else if low.contains("signature") || low.contains("verif") || low.contains("certificate") {
        "The bundle is not signed with this box's update key and was refused"
    } else if low.contains("not a bundle")
        || low.contains("squashfs")
        || low.contains("too small")
        || low.contains("invalid bundle")
        || low.contains("identifier")
    {
        "The file is not a firmware bundle"
    } else {
        "The update failed; the running firmware stays"
    };
    if detail.is_empty() {
        format!("{head}.")
    } else {
        format!("{head} ({detail}).")
    }
}

/// Marks the booted slot good (`rauc status mark-good`) when the box was booted by
/// RAUC's boot selection (`rauc.slot=` on the kernel command line); `Ok(false)` when it
/// was not (a development machine).
pub async fn mark_booted_good(rauc: &Path, cmdline: &Path) -> Result<bool, String> {
    let line = std::fs::read_to_string(cmdline).unwrap_or_default();
    if !line.split_whitespace().any(|w| w.starts_with("rauc.slot=")) {
        return Ok(false);
    }
    let out = tokio::process::Command::new(rauc)
        .args(["status", "mark-good"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", rauc.display()))?;
    if out.status.success() {
        Ok(true)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(progress("  0% Installing"), Some((0, "Installing".into())));
        assert_eq!(
            progress(" 40% Copying image to rootfs.1"),
            Some((40, "Copying image to rootfs.1".into()))
        );
        assert_eq!(progress("installing `/x`: succeeded"), None);
        assert_eq!(
            progress("100% Installing done."),
            Some((100, "Installing done.".into()))
        );
    }

    #[test]
    fn refusals_are_explained() {
        let m = explain("  0% Installing\nLastError: Failed to check bundle identifier: Compatible mismatch: Expected 'pbx-x86_64' but bundle manifest has 'pbx-rpi4'\ninstalling `/data/update/upload.raucb`: failed");
        assert!(m.starts_with("The bundle is for another board"), "{m}");
        assert!(m.contains("pbx-rpi4"), "{m}");
        let m = explain(
            "LastError: signature verification failed: Verify error:self-signed certificate",
        );
        assert!(
            m.starts_with("The bundle is not signed with this box's update key"),
            "{m}"
        );
        let m = explain("LastError: Failed mounting bundle: not a squashfs");
        assert!(m.starts_with("The file is not a firmware bundle"), "{m}");
        assert_eq!(
            explain(""),
            "The update failed; the running firmware stays."
        );
    }
}
