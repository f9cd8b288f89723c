//! Firmware updates: a signed RAUC bundle goes into the other root slot, the box reboots
//! into it, and pbxd marks it good once healthy; GRUB's boot counter abandons a slot
//! that is never marked good (docs/updates.md).
//!
//! The [`Updater`] runs `rauc install` (RAUC's CLI, which talks to its D-Bus service),
//! reads its progress lines, turns its refusals into messages a technician understands,
//! and reboots when the install succeeded. One install at a time.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Where an update stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl UpdateState {
    /// The state's short name, as the JSON's `state` field has it.
    pub fn name(&self) -> &'static str {
        match self {
            UpdateState::Idle => "idle",
            UpdateState::Installing { .. } => "installing",
            UpdateState::Rebooting { .. } => "rebooting",
            UpdateState::Failed { .. } => "failed",
        }
    }

    /// An install is running or done and the box is about to restart.
    pub fn busy(&self) -> bool {
        matches!(
            self,
            UpdateState::Installing { .. } | UpdateState::Rebooting { .. }
        )
    }
}

/// The state in words, as the web page and pbxctl show it.
impl std::fmt::Display for UpdateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateState::Idle => f.write_str("No update since the last start."),
            UpdateState::Installing { percent, step } => write!(f, "Installing: {percent}% {step}"),
            UpdateState::Rebooting { message } | UpdateState::Failed { message } => {
                f.write_str(message)
            }
        }
    }
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
    /// The longest an install may take before it is stopped and reported failed.
    pub timeout: Duration,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        UpdateSettings {
            rauc: PathBuf::from("rauc"),
            reboot: vec!["/sbin/reboot".into()],
            reboot_delay: Duration::from_secs(3),
            timeout: Duration::from_secs(3600),
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

    /// Whether an install is running (or done, the box restarting): a new one is refused.
    pub fn busy(&self) -> bool {
        self.lock().busy()
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
            if st.busy() {
                return Err(BUSY.into());
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
        // RAUC's last words are what explain a refusal; a chatty or broken installer
        // cannot fill memory.
        let keep = |all: &mut std::collections::VecDeque<String>, l: String| {
            if all.len() == 64 {
                all.pop_front();
            }
            all.push_back(l);
        };
        let run = async {
            let errors = async {
                let mut lines = BufReader::new(err).lines();
                let mut all = std::collections::VecDeque::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    keep(&mut all, l);
                }
                all
            };
            let said = async {
                let mut lines = BufReader::new(out).lines();
                let mut all = std::collections::VecDeque::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if let Some((percent, step)) = progress(&l) {
                        self.set(UpdateState::Installing { percent, step });
                    }
                    keep(&mut all, l);
                }
                all
            };
            let (mut errors, said) = tokio::join!(errors, said);
            errors.extend(said);
            (child.wait().await, errors)
        };
        // An install takes minutes; past the limit (an hour on the box) it is stopped,
        // whether RAUC stopped talking or stopped exiting.
        let limit = self.settings.timeout;
        let (status, text) = match tokio::time::timeout(limit, run).await {
            Ok((status, text)) => (status.map_err(|e| format!("installer: {e}"))?, text),
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!(
                    "the installer did not finish within {} s and was stopped; the running firmware stays",
                    limit.as_secs()
                ));
            }
        };
        let text: Vec<String> = text.into();
        if status.success() {
            Ok(())
        } else {
            Err(explain(&text.join("\n")))
        }
    }
}

const BUSY: &str = "an update is already being installed";

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

/// One root slot as `rauc status --output-format=shell` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// RAUC's name (`rootfs.0`).
    pub name: String,
    /// The boot loader's name (`A`).
    pub bootname: String,
    /// `booted`, `inactive`, `active`.
    pub state: String,
    /// `good` or `bad` (the boot loader's view).
    pub boot_status: String,
    /// The version of the bundle installed into it, when RAUC knows it.
    pub version: Option<String>,
}

/// What `rauc status --output-format=shell` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStatus {
    /// The boot name of the slot running now.
    pub booted: Option<String>,
    /// RAUC's name of the slot the next boot takes (`rootfs.1`).
    pub primary: Option<String>,
    pub slots: Vec<Slot>,
}

impl SlotStatus {
    /// Parses RAUC's shell output; missing keys leave fields empty.
    pub fn parse(shell: &str) -> SlotStatus {
        let val = |key: &str| {
            shell
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        };
        let names: Vec<String> = val("RAUC_SYSTEM_SLOTS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let slots = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let n = i + 1;
                Some(Slot {
                    name: name.clone(),
                    bootname: val(&format!("RAUC_SLOT_BOOTNAME_{n}"))?,
                    state: val(&format!("RAUC_SLOT_STATE_{n}")).unwrap_or_default(),
                    boot_status: val(&format!("RAUC_SLOT_BOOT_STATUS_{n}")).unwrap_or_default(),
                    version: val(&format!("RAUC_SLOT_STATUS_BUNDLE_VERSION_{n}"))
                        .filter(|v| !v.is_empty()),
                })
            })
            .collect();
        SlotStatus {
            booted: val("RAUC_SYSTEM_BOOTED_BOOTNAME"),
            primary: val("RAUC_BOOT_PRIMARY"),
            slots,
        }
    }

    /// Whether the running slot was booted by RAUC's boot selection and is not marked
    /// good: a fresh update on trial.
    pub fn booted_unconfirmed(&self) -> bool {
        self.booted.as_ref().is_some_and(|b| {
            self.slots
                .iter()
                .any(|s| &s.bootname == b && s.boot_status != "good")
        })
    }

    /// The slots for a technician (`Slot A: booted, good, firmware 0.1.0`) and which
    /// boots next.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .slots
            .iter()
            .map(|s| {
                let mut l = format!("Slot {}: {}, {}", s.bootname, s.state, s.boot_status);
                if let Some(v) = &s.version {
                    l.push_str(&format!(", firmware {v}"));
                }
                l
            })
            .collect();
        if let Some(next) = self
            .slots
            .iter()
            .find(|s| Some(&s.name) == self.primary.as_ref())
        {
            out.push(format!("Next boot: slot {}", next.bootname));
        }
        out
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

    const STATUS: &str = "RAUC_SYSTEM_COMPATIBLE='pbx-x86_64'\nRAUC_SYSTEM_BOOTED_BOOTNAME='B'\n\
        RAUC_BOOT_PRIMARY='rootfs.1'\nRAUC_SYSTEM_SLOTS='rootfs.0 rootfs.1'\n\
        RAUC_SLOT_STATE_1='inactive'\nRAUC_SLOT_BOOTNAME_1='A'\nRAUC_SLOT_BOOT_STATUS_1='good'\n\
        RAUC_SLOT_STATUS_BUNDLE_VERSION_1='0.1.0+abc'\n\
        RAUC_SLOT_STATE_2='booted'\nRAUC_SLOT_BOOTNAME_2='B'\nRAUC_SLOT_BOOT_STATUS_2='bad'\n";

    #[test]
    fn slots_for_the_technician() {
        assert_eq!(
            SlotStatus::parse(STATUS).lines(),
            [
                "Slot A: inactive, good, firmware 0.1.0+abc",
                "Slot B: booted, bad",
                "Next boot: slot B"
            ]
        );
        assert!(SlotStatus::parse("").lines().is_empty());
    }

    #[test]
    fn only_a_booted_slot_not_marked_good_is_unconfirmed() {
        assert!(SlotStatus::parse(STATUS).booted_unconfirmed());
        let good = STATUS.replace("BOOT_STATUS_2='bad'", "BOOT_STATUS_2='good'");
        assert!(!SlotStatus::parse(&good).booted_unconfirmed());
        // Not booted by RAUC's boot selection: nothing to fall back to.
        assert!(!SlotStatus::parse("").booted_unconfirmed());
        let other = STATUS.replace("BOOTED_BOOTNAME='B'", "BOOTED_BOOTNAME='C'");
        assert!(!SlotStatus::parse(&other).booted_unconfirmed());
    }

    #[test]
    fn states_in_words_and_back_from_json() {
        let s = UpdateState::Installing {
            percent: 40,
            step: "Copying image to rootfs.1".into(),
        };
        assert_eq!(s.to_string(), "Installing: 40% Copying image to rootfs.1");
        assert_eq!(s.name(), "installing");
        assert!(s.busy() && !UpdateState::Idle.busy());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "installing");
        assert_eq!(serde_json::from_value::<UpdateState>(json).unwrap(), s);
    }

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
