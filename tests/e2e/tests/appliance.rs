//! pbxd on the box's side: the hardware watchdog it feeds and the firmware slot it
//! confirms once healthy. A file stands in for /dev/watchdog and a script for RAUC's
//! command line (the image test boots the real ones under QEMU).

use e2e::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn watchdog_fed_then_disarmed_and_the_slot_confirmed_after_a_failed_try() {
    let lab = tempfile::tempdir().unwrap();
    let dog = lab.path().join("watchdog");
    std::fs::write(&dog, b"").unwrap();
    let cmdline = lab.path().join("cmdline");
    std::fs::write(
        &cmdline,
        "console=ttyS0 root=PARTLABEL=rootfs-b rauc.slot=B quiet\n",
    )
    .unwrap();
    // RAUC refuses the first mark-good (its service still starting), takes the second.
    let tries = lab.path().join("tries");
    let rauc = lab.path().join("rauc");
    std::fs::write(
        &rauc,
        format!(
            "#!/bin/sh\necho \"$@\" >> {t}\nif [ $(wc -l < {t}) -lt 2 ]; then echo 'rauc service not ready' >&2; exit 1; fi\n",
            t = tries.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rauc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pbx = Pbxd::start_in(
        tempfile::tempdir().unwrap(),
        free_port(),
        &[
            "--watchdog",
            dog.to_str().unwrap(),
            "--watchdog-timeout",
            "3",
            "--confirm-slot",
            "--rauc",
            rauc.to_str().unwrap(),
            "--kernel-cmdline",
            cmdline.to_str().unwrap(),
        ],
    );
    // Health checks every 5 s: the first mark-good fails, the next one is made.
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&tries)
                .unwrap_or_default()
                .lines()
                .count()
                >= 2
        }),
        "mark-good was not tried again:\n{}",
        pbx.log_text()
    );
    assert!(wait_until(Duration::from_secs(5), || pbx
        .log_text()
        .contains("the booted firmware slot is marked good")));
    let calls = std::fs::read_to_string(&tries).unwrap();
    assert!(calls.lines().all(|l| l == "status mark-good"), "{calls}");
    // Fed every second while the loop runs (timeout 3 s, fed at a third of it).
    let fed = std::fs::read(&dog).unwrap().len();
    assert!(fed >= 5, "fed {fed} times");
    assert!(
        !std::fs::read(&dog).unwrap().contains(&b'V'),
        "disarmed while running"
    );
    // Stopped in order: the magic close disarms it, so the stop does not reset the box.
    let _data = pbx.stop();
    assert_eq!(std::fs::read(&dog).unwrap().last(), Some(&b'V'));
    // Confirmed once: no more mark-good after success.
    assert_eq!(std::fs::read_to_string(&tries).unwrap().lines().count(), 2);
}

#[test]
fn pbxctl_installs_with_progress_and_reports_a_refusal() {
    let lab = tempfile::tempdir().unwrap();
    let rauc = lab.path().join("rauc");
    // Refuses bundles named *pi*, installs the rest with progress (40% lasts 3 s, longer
    // than pbxctl's 1 s between looks even on a loaded machine).
    std::fs::write(
        &rauc,
        "#!/bin/sh\ncase \"$2\" in */rpi4.raucb) echo \"LastError: Compatible mismatch: Expected 'pbx-x86_64' but bundle manifest has 'pbx-rpi4'\" >&2; exit 1;; esac\n\
         echo '  0% Installing'; sleep 1; echo ' 40% Copying image to rootfs.1'; sleep 3; echo '100% Installing done.'\n",
    )
    .unwrap();
    std::fs::set_permissions(&rauc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rebooted = lab.path().join("rebooted");
    let reboot = format!("touch {}", rebooted.display());
    let pbx = Pbxd::start_in(
        tempfile::tempdir().unwrap(),
        free_port(),
        &[
            "--rauc",
            rauc.to_str().unwrap(),
            "--reboot-command",
            &reboot,
        ],
    );
    assert!(pbx.ctl_ok(&["update", "status"]).contains("idle"));
    let pi = lab.path().join("rpi4.raucb");
    std::fs::write(&pi, b"hsqs").unwrap();
    let out = pbx.ctl(&["update", "install", pi.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("The bundle is for another board"), "{err}");
    assert!(pbx
        .ctl_ok(&["update", "status"])
        .starts_with("failed: The bundle is for another board"));
    // A missing file is refused by pbxctl itself.
    let out = pbx.ctl(&["update", "install", "/nonexistent.raucb"]);
    assert!(!out.status.success());
    let good = lab.path().join("update.raucb");
    std::fs::write(&good, b"hsqs").unwrap();
    let out = pbx.ctl(&["update", "install", good.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Installing: 40% Copying image to rootfs.1"),
        "{text}"
    );
    assert!(text.contains("restarts into it"), "{text}");
    assert!(
        wait_until(Duration::from_secs(10), || rebooted.exists()),
        "no reboot"
    );
    // The technician's own file is not removed (only uploads are).
    assert!(good.exists());
}
