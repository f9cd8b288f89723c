//! Backup and recovery (Kerio 20) against the real daemon: a backup made through the
//! API and downloaded, the box reset to factory (a new, empty data partition), refused
//! uploads that change nothing (not a backup, a damaged one, one from newer firmware),
//! then the recovery: the daemon restarts into the backup and the extension, the
//! users with their passwords, the certificate and the voicemail are back. In Chromium,
//! the Backup page makes, downloads and restores a backup.

use e2e::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PW: &str = "Backup-Admin-1!";

fn refs(h: &[String]) -> Vec<&str> {
    h.iter().map(String::as_str).collect()
}

fn download(pbx: &Pbxd, h: &[String], name: &str, to: &Path) {
    let a = pbx.https_via(
        &[],
        &["-o", to.to_str().unwrap()],
        "GET",
        &format!("/api/v1/system/backups/{name}"),
        None,
        &refs(h),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("content-type").as_deref(),
        Some("application/gzip")
    );
    assert_eq!(
        a.header("content-disposition"),
        Some(format!("attachment; filename=\"{name}\""))
    );
}

fn upload(pbx: &Pbxd, h: &[String], file: &Path) -> HttpAnswer {
    pbx.https(
        "POST",
        "/api/v1/system/restore",
        Some(&format!("@{}", file.display())),
        &refs(h),
    )
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The log says a backup was put in place (not only registrations or bans restored).
fn restored(pbx: &Pbxd) -> bool {
    pbx.log_text()
        .lines()
        .any(|l| l.contains("backup made") && l.ends_with(" restored"))
}

/// The daemon restarted in place (same process) and answers again.
fn wait_restarted(pbx: &Pbxd) {
    let back = wait_until(Duration::from_secs(30), || {
        pbx.log_text().matches("pbxd ready").count() >= 2 && pbx.ctl(&["status"]).status.success()
    });
    assert!(back, "pbxd did not come back:\n{}", pbx.log_text());
}

#[test]
fn backup_factory_reset_and_recovery_give_the_same_box_back() {
    let lab = tempfile::tempdir().unwrap();
    let a = Pbxd::start();
    let h = a.admin_session(PW);
    add_ext(&a, "101");
    let user = json!({"username": "anna", "password": "Anna-Portal-9", "role": "user", "extensions": ["101"]});
    assert_eq!(
        a.https("POST", "/api/v1/users", Some(&user.to_string()), &refs(&h))
            .status,
        201
    );
    let message = a.data.path().join("voicemail/101/1700000000-1-103.wav");
    std::fs::create_dir_all(message.parent().unwrap()).unwrap();
    write_tone_wav(&message, 440, 1);
    let cert = std::fs::read(a.data.path().join("web/cert.pem")).unwrap();
    let recorded = std::fs::read(&message).unwrap();

    // Parts checked: an unknown one is named.
    let bad = a.https(
        "POST",
        "/api/v1/system/backups",
        Some(r#"{"parts": ["everything"]}"#),
        &refs(&h),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(
        bad.body.contains("unknown part \\\"everything\\\""),
        "{bad:?}"
    );
    let made = a.https(
        "POST",
        "/api/v1/system/backups",
        Some(r#"{"parts": ["config", "voicemail"]}"#),
        &refs(&h),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let made = made.json();
    let name = made["name"].as_str().unwrap().to_string();
    assert_eq!(made["manifest"]["parts"], json!(["config", "voicemail"]));
    assert_eq!(made["manifest"]["schema"], 1);
    assert!(
        made["manifest"]["revision"].as_u64().unwrap() >= 2,
        "{made}"
    );
    let list = a
        .https("GET", "/api/v1/system/backups", None, &refs(&h))
        .json();
    assert_eq!(list["backups"][0]["name"], name.as_str(), "{list}");
    assert_eq!(list["restore_pending"], false);
    let archive = lab.path().join("box.tar.gz");
    download(&a, &h, &name, &archive);

    // The archive is an ordinary one: the manifest first, the checksums last, and
    // `sha256sum -c` agrees with them.
    let listing = run(Command::new("tar").arg("-tzf").arg(&archive));
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names.first(), Some(&"manifest.json"), "{listing}");
    assert_eq!(names.last(), Some(&"SHA256SUMS"), "{listing}");
    assert!(
        names.contains(&"db.dump") && names.contains(&"data/voicemail/101/1700000000-1-103.wav"),
        "{listing}"
    );
    assert!(names.contains(&"data/web/cert.pem"), "{listing}");
    let x = lab.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&x));
    run(Command::new("sha256sum")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(&x));

    // A backup from newer firmware: the manifest and its checksum made to say so.
    let manifest = x.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["schema"] = json!(99);
    m["firmware"] = json!("99.0");
    std::fs::write(&manifest, m.to_string()).unwrap();
    let sums = run(Command::new("sha256sum")
        .arg("manifest.json")
        .current_dir(&x));
    let rest: String = std::fs::read_to_string(x.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with("  manifest.json"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(x.join("SHA256SUMS"), sums + &rest).unwrap();
    let newer = lab.path().join("newer.tar.gz");
    run(Command::new("tar")
        .arg("-czf")
        .arg(&newer)
        .args(["manifest.json", "db.dump", "data", "SHA256SUMS"])
        .current_dir(&x));
    let mut damaged = std::fs::read(&archive).unwrap();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x5a;
    let damaged_file = lab.path().join("damaged.tar.gz");
    std::fs::write(&damaged_file, &damaged).unwrap();
    let junk = lab.path().join("photo.jpg");
    std::fs::write(&junk, b"\xff\xd8\xff\xe0 not a backup").unwrap();

    // Factory reset: the same daemon on a new, empty data partition.
    drop(a.stop());
    let b = Pbxd::start();
    let h = b.admin_session("Other-Admin-2!");
    assert!(
        !b.ctl_ok(&["extension", "list"]).contains("101"),
        "a new box has no extensions"
    );
    let changes = b.https("GET", "/api/v1/logs/config", None, &refs(&h)).body;

    for (file, status, why) in [
        (&junk, 422, "not a backup of this box"),
        (&damaged_file, 422, "the backup is damaged"),
        (&newer, 409, "made by firmware 99.0 with data schema 99"),
    ] {
        let r = upload(&b, &h, file);
        assert_eq!(r.status, status, "{file:?}: {r:?}");
        assert!(r.json()["error"].as_str().unwrap().contains(why), "{r:?}");
        assert!(
            !b.data.path().join(".restore").exists(),
            "{file:?} left a staging behind"
        );
    }
    let r = upload(&b, &h, &newer);
    assert!(r.body.contains("update the firmware first"), "{r:?}");
    assert_eq!(
        b.https("GET", "/api/v1/logs/config", None, &refs(&h)).body,
        changes,
        "nothing changed"
    );

    // The recovery: accepted, the daemon restarts into it.
    let r = upload(&b, &h, &archive);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(
        r.json()["restoring"]["parts"],
        json!(["config", "voicemail"])
    );
    wait_restarted(&b);
    assert!(restored(&b), "{}", b.log_text());
    // The first box's certificate, administrator password, extension, user and message.
    assert_eq!(
        std::fs::read(b.data.path().join("web/cert.pem")).unwrap(),
        cert
    );
    let h = b.login("Admin", PW);
    assert!(b.ctl_ok(&["extension", "list"]).contains("101"));
    let u = b.login("anna", "Anna-Portal-9");
    let vm = b
        .https("GET", "/api/v1/me/voicemail", None, &refs(&u))
        .json();
    assert_eq!(vm.as_array().map(Vec::len), Some(1), "{vm}");
    assert_eq!(
        std::fs::read(b.data.path().join("voicemail/101/1700000000-1-103.wav")).unwrap(),
        recorded
    );
    let security = b.https("GET", "/api/v1/logs/security", None, &refs(&h));
    assert!(
        security.body.contains("backup made") && security.body.contains("on pbx by firmware"),
        "{security:?}"
    );
    assert!(!b.data.path().join(".restore").exists());
}

#[test]
fn chromium_backup_page_makes_downloads_and_restores() {
    let lab = tempfile::tempdir().unwrap();
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    add_ext(&pbx, "101");
    let junk = lab.path().join("notes.txt");
    std::fs::write(&junk, b"not a backup").unwrap();
    let saved = lab.path().join("saved.tar.gz");
    browser_via(
        &pbx,
        &[],
        "backup.mjs",
        &[
            ("ADMIN_PW", PW),
            ("JUNK_FILE", junk.to_str().unwrap()),
            ("SAVE_TO", saved.to_str().unwrap()),
        ],
    );
    let listing = String::from_utf8(
        Command::new("tar")
            .arg("-tzf")
            .arg(&saved)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(listing.starts_with("manifest.json\n"), "{listing}");
    assert!(
        !listing.contains("data/sounds"),
        "sounds were left out: {listing}"
    );
    assert!(restored(&pbx), "{}", pbx.log_text());
    // 102 was added after the backup: the recovery took it away again.
    let exts = pbx.ctl_ok(&["extension", "list"]);
    assert!(exts.contains("101") && !exts.contains("102"), "{exts}");
    let cfg: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    assert_eq!(
        cfg["backup"],
        json!({"every": "weekly", "hour": 4, "parts": ["config"], "keep": 7,
            "remote": {"enabled": false, "url": "", "username": "", "password": ""}})
    );
}

#[test]
fn scheduled_backups_are_made_and_the_oldest_go() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let bad = pbx.https(
        "PUT",
        "/api/v1/system/backup-schedule",
        Some(r#"{"every": "daily", "hour": 24}"#),
        &refs(&h),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(
        bad.body.contains("hour") && bad.body.contains("0-23"),
        "{bad:?}"
    );
    // From midnight, box time: due at once.
    let s = json!({"every": "daily", "hour": 0, "parts": ["config"], "keep": 2});
    let r = pbx.https(
        "PUT",
        "/api/v1/system/backup-schedule",
        Some(&s.to_string()),
        &refs(&h),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let mut shown = r.json();
    assert_eq!(
        shown["remote"],
        json!({"enabled": false, "url": "", "username": "", "password": ""})
    );
    shown.as_object_mut().unwrap().remove("remote");
    assert_eq!(shown, s);
    let backups = || -> Vec<serde_json::Value> {
        pbx.https("GET", "/api/v1/system/backups", None, &refs(&h))
            .json()["backups"]
            .as_array()
            .unwrap()
            .clone()
    };
    // The daemon looks every 30 seconds.
    assert!(
        wait_until(Duration::from_secs(45), || backups().len() == 1),
        "no scheduled backup:\n{}",
        pbx.log_text()
    );
    let first = backups()[0].clone();
    assert_eq!(first["manifest"]["parts"], json!(["config"]), "{first}");
    assert!(pbx.log_text().contains("scheduled backup made"));
    // Two more by hand: two are kept, the scheduled one (the oldest) went; none more is
    // made today.
    for _ in 0..2 {
        let r = pbx.https("POST", "/api/v1/system/backups", Some(""), &refs(&h));
        assert_eq!(r.status, 201, "{r:?}");
    }
    let names: Vec<String> = backups()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        !names.contains(&first["name"].as_str().unwrap().to_string()),
        "{names:?}"
    );
    assert!(names[0] > names[1], "newest first: {names:?}");
    assert_eq!(pbx.log_text().matches("scheduled backup made").count(), 1);
}

#[test]
fn a_recovery_that_does_not_open_is_rolled_back() {
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    add_ext(&pbx, "101");
    let data = pbx.stop();
    // A staged recovery whose database is no database (made by hand: no upload gets
    // this far): it is swapped in, does not open, and is rolled back.
    let root = data.path().join(".restore");
    std::fs::create_dir_all(root.join("new")).unwrap();
    std::fs::write(root.join("new/db"), b"not a database").unwrap();
    let plan = json!({
        "manifest": {"format": 1, "firmware": "0.1.0", "schema": 1, "board": "x86_64",
                     "host": "elsewhere", "created": 1_700_000_000, "revision": 9, "parts": ["config"]},
        "staged": [], "by": "Admin from 192.0.2.7"
    });
    std::fs::write(root.join("READY"), plan.to_string()).unwrap();
    let pbx = Pbxd::start_in(data, free_port(), &[]);
    assert!(
        pbx.log_text().contains("does not open"),
        "{}",
        pbx.log_text()
    );
    assert!(pbx.ctl_ok(&["extension", "list"]).contains("101"));
    assert!(!pbx.data.path().join(".restore").exists());
    let h = pbx.login("Admin", PW);
    let security = pbx
        .https("GET", "/api/v1/logs/security", None, &refs(&h))
        .body;
    assert!(
        security.contains("recovery rolled back") && security.contains("192.0.2.7"),
        "{security}"
    );
}
