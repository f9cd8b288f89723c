//! The box's scheduled tasks (Kerio 27.5), as the Status page and
//! `GET /api/v1/status/tasks` list them: what runs by itself, when, and when it last
//! ran. They come from the configuration, so they are kept across restarts; the trials
//! that undo a change by themselves are listed while they run.

use crate::App;
use serde_json::{json, Value};
use std::time::Instant;

/// Each task: `task`, `schedule` in words, `last` (Unix seconds, when known) and
/// `state`.
pub(crate) fn list(app: &App) -> Vec<Value> {
    let snap = app.cfg.snapshot();
    let c = &snap.config;
    let mut out = Vec::new();
    let b = &c.backup;
    let schedule = match b.every {
        config::BackupEvery::Off => "only by hand".to_string(),
        config::BackupEvery::Daily => format!("every day from {:02}:00", b.hour),
        config::BackupEvery::Weekly => format!("every Sunday from {:02}:00", b.hour),
    };
    let sent = crate::remote::last(&app.settings.data_dir);
    out.push(json!({
        "task": "backup",
        "schedule": format!(
            "{schedule}; the newest {} kept ({}){}",
            b.keep,
            b.parts.join(", "),
            if b.remote.enabled { format!("; sent to {}", b.remote.url) } else { String::new() }
        ),
        "last": crate::backup::newest_created(&app.settings.data_dir),
        "state": match (b.every, &sent) {
            (config::BackupEvery::Off, _) => "off",
            (_, Some(s)) if b.remote.enabled && !s.ok => "failed",
            _ => "on",
        },
    }));
    let d = &c.directory;
    let last = crate::directory::last(app);
    out.push(json!({
        "task": "directory synchronisation",
        "schedule": if d.enabled { format!("every {} minutes from {}", d.sync_minutes, d.url) } else { "off".into() },
        "last": last.as_ref().map(|r| r.when),
        "state": match (&last, d.enabled) {
            (_, false) => "off",
            (Some(r), true) if !r.ok => "failed",
            _ => "on",
        },
    }));
    let l = &c.logs;
    out.push(json!({
        "task": "log rotation",
        "schedule": format!("every day and at {} KiB; {} files kept, deleted after {} days", l.size_kib, l.keep, l.days),
        "last": Value::Null,
        "state": "on",
    }));
    if let Some((at, phones)) = app.prov.scheduled_restart() {
        out.push(json!({
            "task": "phone restart",
            "schedule": format!(
                "at {} UTC: {}",
                crate::pages::when(at),
                if phones.is_empty() { "all provisioned phones".to_string() } else { format!("{} phones", phones.len()) }
            ),
            "last": Value::Null,
            "state": "pending",
        }));
    }
    let now = Instant::now();
    if let Some(left) = app
        .fw_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|p| p.seconds_left(now))
    {
        out.push(json!({"task": "firewall rollback", "schedule": format!("in {left} s unless confirmed"), "last": Value::Null, "state": "pending"}));
    }
    if let Some(left) = crate::network::seconds_left(app) {
        out.push(json!({"task": "network rollback", "schedule": format!("in {left} s unless confirmed"), "last": Value::Null, "state": "pending"}));
    }
    let cap = app.capture.state();
    if cap.state == "running" {
        out.push(json!({"task": "packet capture", "schedule": format!("stops after {} s or at {} MiB", cap.seconds, cap.max_mib), "last": cap.started, "state": "running"}));
    }
    out
}
