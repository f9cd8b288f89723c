//! Firmware update through the API: who may, what is refused before RAUC sees it, and
//! how RAUC's answers reach the administrator. A script stands in for RAUC's command
//! line here; the image test (tests/image) installs real bundles with real RAUC.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const BIN: &str = "application/octet-stream";

fn fake_rauc(rig: &Rig, script: &str) {
    let p = rig.dir.path().join("rauc");
    std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn settle(rig: &Rig, admin: &Who) -> serde_json::Value {
    for _ in 0..100 {
        let a = rig.call(admin, "GET", "/api/v1/system/update", None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if a.body["state"] != "installing" {
            return a.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the install never finished");
}

fn uploads_left(rig: &Rig) -> usize {
    std::fs::read_dir(rig.dir.path().join("update"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn upload(rig: &Rig, who: &Who, body: &str) -> Answer {
    rig.raw(
        who,
        "POST",
        "/api/v1/system/update",
        Some((BIN, body.to_string())),
        &[],
        "127.0.0.1",
    )
    .await
}

#[tokio::test]
async fn only_administrators_upload_and_junk_is_refused() {
    let rig = rig();
    let (admin, auditor, user) = rig.populated().await;
    assert_eq!(upload(&rig, &Who::default(), "hsqs").await.status, 401);
    assert_eq!(upload(&rig, &auditor, "hsqs").await.status, 403);
    assert_eq!(upload(&rig, &user, "hsqs").await.status, 403);
    let a = upload(&rig, &admin, "").await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = upload(&rig, &admin, "PK\u{3}\u{4} a zip file").await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.body["error"]
        .as_str()
        .unwrap()
        .contains("not a firmware bundle"));
    let a = rig
        .call(&auditor, "GET", "/api/v1/system/update", None)
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["state"], "idle");
}

#[tokio::test]
async fn refusals_are_explained_and_success_reboots() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    // No RAUC on this system.
    let a = upload(&rig, &admin, "hsqs bundle").await;
    assert_eq!(a.status, 202, "{}", a.text);
    let s = settle(&rig, &admin).await;
    assert_eq!(s["state"], "failed");
    assert!(
        s["message"].as_str().unwrap().contains("not available"),
        "{s}"
    );

    // RAUC refusing a bundle for another board.
    let seen = rig.dir.path().join("args");
    fake_rauc(
        &rig,
        &format!(
            "echo \"$@\" > {seen}; cp \"$2\" {seen}.bundle; echo '  0% Installing'; \
             echo \"LastError: Failed to check bundle identifier: Compatible mismatch: Expected 'pbx-x86_64' but bundle manifest has 'pbx-rpi4'\" >&2; exit 1",
            seen = seen.display()
        ),
    );
    let a = upload(&rig, &admin, "hsqs for the pi").await;
    assert_eq!(a.status, 202, "{}", a.text);
    let s = settle(&rig, &admin).await;
    assert_eq!(s["state"], "failed", "{s}");
    let m = s["message"].as_str().unwrap();
    assert!(m.starts_with("The bundle is for another board"), "{m}");
    assert!(m.contains("pbx-rpi4"), "{m}");
    let args = std::fs::read_to_string(&seen).unwrap();
    assert!(args.starts_with("install /"), "{args}");
    assert_eq!(
        std::fs::read(rig.dir.path().join("args.bundle")).unwrap(),
        b"hsqs for the pi"
    );
    // The upload is not left on the data partition.
    assert_eq!(uploads_left(&rig), 0);

    // Accepted: progress, then the restart.
    fake_rauc(&rig, "echo '  0% Installing'; sleep 0.3; echo ' 60% Copying image to rootfs.1'; sleep 0.3; echo '100% Installing done.'; echo \"installing \\`$2': succeeded\"");
    let a = upload(&rig, &admin, "hsqs good").await;
    assert_eq!(a.status, 202, "{}", a.text);
    let mut saw_progress = false;
    for _ in 0..100 {
        let a = rig.call(&admin, "GET", "/api/v1/system/update", None).await;
        if a.body["state"] == "installing" && a.body["percent"] == 60 {
            saw_progress = true;
        }
        if a.body["state"] == "rebooting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(saw_progress, "no progress seen");
    let s = settle(&rig, &admin).await;
    assert_eq!(s["state"], "rebooting", "{s}");
    // A second upload while the box restarts is refused.
    let a = upload(&rig, &admin, "hsqs again").await;
    assert_eq!(a.status, 409, "{}", a.text);
}

#[tokio::test]
async fn time_zone_and_ntp_are_saved_and_written() {
    let rig = rig();
    let (admin, auditor, _) = rig.populated().await;
    let a = rig.call(&auditor, "GET", "/api/v1/system/time", None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body, serde_json::json!({"timezone": "UTC", "ntp": []}));
    let body = serde_json::json!({"timezone": "Europe/Prague", "ntp": ["ntp.example.net"]});
    assert_eq!(
        rig.call(&auditor, "PUT", "/api/v1/system/time", Some(body.clone()))
            .await
            .status,
        403
    );
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/system/time",
            Some(serde_json::json!({"timezone": "Europe/Atlantis"})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.body["field"], "timezone");
    let a = rig
        .raw(
            &admin,
            "PUT",
            "/api/v1/system/time",
            Some(("application/json", "{\"timezone\": 7".into())),
            &[],
            "127.0.0.1",
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = rig
        .call(&admin, "PUT", "/api/v1/system/time", Some(body.clone()))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        rig.call(&admin, "GET", "/api/v1/system/time", None)
            .await
            .body,
        body
    );
    let etc = rig.dir.path().join("root/etc");
    assert_eq!(
        std::fs::read_link(etc.join("localtime")).unwrap(),
        std::path::Path::new("/usr/share/zoneinfo/Europe/Prague")
    );
    assert!(
        std::fs::read_to_string(etc.join("systemd/timesyncd.conf.d/pbx.conf"))
            .unwrap()
            .contains("NTP=ntp.example.net")
    );
    assert!(rig.dir.path().join("system/time.json").exists());
}

#[tokio::test]
async fn an_upload_during_an_install_is_refused_and_touches_nothing() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    // RAUC reads the bundle late in its work: what it reads must be the first upload.
    let seen = rig.dir.path().join("read-by-rauc");
    fake_rauc(
        &rig,
        &format!(
            "echo '  0% Installing'; sleep 1; cp \"$2\" {}; exit 1",
            seen.display()
        ),
    );
    assert_eq!(upload(&rig, &admin, "hsqs first").await.status, 202);
    let a = upload(&rig, &admin, "hsqs second").await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert!(a.body["error"]
        .as_str()
        .unwrap()
        .contains("already being installed"));
    let s = settle(&rig, &admin).await;
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(std::fs::read(&seen).unwrap(), b"hsqs first");
    assert_eq!(uploads_left(&rig), 0);
}
