//! The updater's handling of the installer process. A script stands in for RAUC's
//! command line (the image test runs the real one): one that hangs with its output
//! open, and one that talks without end.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use system::update::{UpdateSettings, UpdateState, Updater};

/// The tests run one after the other: a process one forks while the other's script is
/// open for writing holds that descriptor until it executes, and running the script
/// meanwhile fails with ETXTBSY ("Text file busy"; seen once in CI).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn script(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("rauc");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

async fn settle(u: &Updater, within: Duration) -> UpdateState {
    let t0 = std::time::Instant::now();
    while u.busy() {
        assert!(t0.elapsed() < within, "still {:?}", u.state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    u.state()
}

#[tokio::test]
async fn a_hung_installer_is_stopped_and_a_new_install_allowed() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.raucb");
    std::fs::write(&bundle, b"hsqs").unwrap();
    // Says one progress line, then hangs with stdout open.
    let rauc = script(dir.path(), "echo '  0% Installing'; exec sleep 60");
    let u = Updater::new(UpdateSettings {
        rauc,
        reboot: vec!["true".into()],
        reboot_delay: Duration::from_millis(10),
        timeout: Duration::from_secs(1),
    });
    u.install(&bundle, false).unwrap();
    assert_eq!(
        u.install(&bundle, false).unwrap_err(),
        "an update is already being installed"
    );
    match settle(&u, Duration::from_secs(10)).await {
        UpdateState::Failed { message } => {
            assert!(message.contains("did not finish within 1 s"), "{message}")
        }
        s => panic!("{s:?}"),
    }
    assert!(!u.busy());
    // Not left behind for good: the next install runs.
    u.install(&bundle, false).unwrap();
}

#[tokio::test]
async fn an_endless_talker_keeps_its_last_words_only() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b.raucb");
    std::fs::write(&bundle, b"hsqs").unwrap();
    let rauc = script(
        dir.path(),
        "i=0; while [ $i -lt 20000 ]; do echo \"noise line $i\"; i=$((i+1)); done; \
         echo 'LastError: signature verification failed' >&2; exit 1",
    );
    let u = Updater::new(UpdateSettings {
        rauc,
        reboot: vec!["true".into()],
        reboot_delay: Duration::from_millis(10),
        timeout: Duration::from_secs(60),
    });
    u.install(&bundle, false).unwrap();
    match settle(&u, Duration::from_secs(60)).await {
        UpdateState::Failed { message } => {
            assert!(
                message.starts_with("The bundle is not signed"),
                "{}",
                &message[..200.min(message.len())]
            );
            assert!(message.len() < 8 * 1024, "{} bytes kept", message.len());
            assert!(
                message.contains("noise line 19999") && !message.contains("noise line 5;"),
                "{}",
                &message[..200]
            );
        }
        s => panic!("{s:?}"),
    }
}
