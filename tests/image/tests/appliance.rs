//! The appliance image under QEMU, as a technician meets it (Kerio chapters 2, 20-22):
//! it boots to the console menu at 10.10.10.1; the web admin and SIP answer there; a new
//! static address set at the console is reached; bundles that are unsigned or for
//! another board are refused; an update installs, reboots into the other slot and is
//! marked good; a bundle whose pbxd cannot start rolls back to the previous slot.
//!
//! Needs `scripts/build-image` first and root (network namespace, tap device, QEMU):
//! scripts/test runs it with `--ignored` after building the image.

use image_tests::{image_dir, Guest, Lan};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(420);

/// How long the web admin may take to answer after a boot: pbxd starts after the menu,
/// and under TCG on a slow machine (a first start makes its certificate, a factory reset
/// a new data partition) that has been seen to take over two minutes.
const WEB_UP: Duration = Duration::from_secs(300);
const PASSWORD: &str = "Image-Test-Admin-9";

/// Waits for the menu and reads its header (the box's addresses).
fn menu(g: &mut Guest, within: Duration) -> String {
    g.expect("Choose 1-10", within)
}

/// Console entry 5: the firmware version and slots.
/// Waits (a boot at most) for the menu to show `words` in its header: the menu drawn
/// again before a reboot takes the console does not count.
fn menu_showing(g: &mut Guest, words: &str) {
    let t0 = std::time::Instant::now();
    loop {
        let header = menu(g, BOOT);
        if header.contains(words) {
            return;
        }
        assert!(
            t0.elapsed() < BOOT,
            "the menu never showed {words}:\n{header}"
        );
    }
}

fn slots(g: &mut Guest) -> String {
    g.line("5");
    let s = g.expect("Press Enter", Duration::from_secs(30));
    g.line("");
    menu(g, Duration::from_secs(10));
    s
}

/// Polls entry 5 until `want` shows (pbxd marks the slot good once healthy).
fn slots_until(g: &mut Guest, want: &[&str], within: Duration) -> String {
    let t0 = std::time::Instant::now();
    loop {
        let s = slots(g);
        if want.iter().all(|w| s.contains(w)) {
            return s;
        }
        assert!(t0.elapsed() < within, "slots never showed {want:?}:\n{s}");
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// As [`web_answers`], and when the web never answers, the panic shows what the box's
/// console shows (the menu's header names the address the box has), so that a failure
/// seen once in CI can be followed up.
fn web_up(g: &mut Guest, lan: &Lan, url: &str, within: Duration) -> String {
    let t0 = std::time::Instant::now();
    loop {
        let (code, body) = lan.https_get(url);
        if code == 200 {
            return body;
        }
        if t0.elapsed() >= within {
            g.line("");
            std::thread::sleep(Duration::from_secs(5));
            panic!(
                "{url} answered {code}: {body}\nthe console's last words:\n{}",
                g.tail(6000)
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn web_answers(lan: &Lan, url: &str, within: Duration) -> String {
    let t0 = std::time::Instant::now();
    loop {
        let (code, body) = lan.https_get(url);
        if code == 200 {
            return body;
        }
        assert!(t0.elapsed() < within, "{url} answered {code}: {body}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// A web session: its cookie jar (in its own folder) and its CSRF token.
struct Session {
    _dir: tempfile::TempDir,
    jar: String,
    csrf: String,
}

impl Session {
    /// Logs in as Admin with `password`.
    fn open(lan: &Lan, host: &str, password: &str) -> Session {
        Session::try_open(lan, host, password)
            .unwrap_or_else(|(code, body)| panic!("login: {code} {body}"))
    }

    /// Logs in as Admin with `password`, or answers the refusal's status and body.
    fn try_open(lan: &Lan, host: &str, password: &str) -> Result<Session, (u16, String)> {
        let dir = tempfile::tempdir().unwrap();
        let jar = dir.path().join("cookies").display().to_string();
        let (code, body) = lan.curl(&[
            "-c",
            &jar,
            "-H",
            "content-type: application/json",
            "--data",
            &format!(r#"{{"username":"Admin","password":"{password}"}}"#),
            &format!("https://{host}:4021/api/v1/login"),
        ]);
        if code != 200 {
            return Err((code, body));
        }
        let login: serde_json::Value = serde_json::from_str(&body).unwrap();
        let csrf = login["csrf_token"].as_str().unwrap().to_string();
        Ok(Session {
            _dir: dir,
            jar,
            csrf,
        })
    }

    /// A state-changing request with `args` (the body and URL among them).
    fn send(&self, lan: &Lan, args: &[&str]) -> (u16, String) {
        let csrf = format!("x-csrf-token: {}", self.csrf);
        let mut all = vec!["-b", &self.jar, "-H", &csrf];
        all.extend_from_slice(args);
        lan.curl(&all)
    }
}

/// Logs in as Admin and uploads a bundle; answers the final update state.
fn upload(lan: &Lan, host: &str, bundle: &Path) -> serde_json::Value {
    let session = Session::open(lan, host, PASSWORD);
    let (jar, csrf) = (&session.jar, &session.csrf);
    let (code, body) = lan.curl(&[
        "-b",
        jar,
        "-H",
        &format!("x-csrf-token: {csrf}"),
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &format!("@{}", bundle.display()),
        &format!("https://{host}:4021/api/v1/system/update"),
    ]);
    assert_eq!(code, 202, "upload of {}: {body}", bundle.display());
    let t0 = std::time::Instant::now();
    loop {
        let (code, body) = lan.curl(&[
            "-b",
            jar,
            &format!("https://{host}:4021/api/v1/system/update"),
        ]);
        if code == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["state"] != "installing" {
                return v;
            }
        } else {
            // The box went down to reboot before we saw "rebooting".
            return serde_json::json!({"state": "gone", "code": code});
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "install never finished: {body}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Uploads a bundle the box must refuse, with `words` in the reason.
fn refused(lan: &Lan, host: &str, bundle: &Path, words: &str) {
    let st = upload(lan, host, bundle);
    assert_eq!(st["state"], "failed", "{st}");
    assert!(st["message"].as_str().unwrap().contains(words), "{st}");
}

/// A bundle of the built root with `pbxd` replaced by a program that fails.
fn broken_bundle(dir: &Path) -> std::path::PathBuf {
    let img = image_dir();
    let rootfs = dir.join("rootfs-bad.ext4");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(img.join("rootfs.ext4"))
        .arg(&rootfs));
    let fake = dir.join("pbxd");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'pbxd: broken on purpose by the image test' >&2\nexit 1\n",
    )
    .unwrap();
    run(Command::new("debugfs")
        .args(["-w", "-R", "rm /usr/bin/pbxd"])
        .arg(&rootfs));
    run(Command::new("debugfs")
        .args([
            "-w",
            "-R",
            &format!("write {} /usr/bin/pbxd", fake.display()),
        ])
        .arg(&rootfs));
    run(Command::new("debugfs")
        .args(["-w", "-R", "sif /usr/bin/pbxd mode 0100755"])
        .arg(&rootfs));
    let out = dir.join("broken.raucb");
    make_bundle(&rootfs, &out, &["--version", "broken"]);
    out
}

fn make_bundle(rootfs: &Path, out: &Path, extra: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-bundle");
    run(Command::new(script).arg(rootfs).arg(out).args(extra));
}

fn run(c: &mut Command) {
    let out = c.output().expect("run");
    assert!(out.status.success(), "{c:?}: {out:?}");
}

#[test]
#[ignore = "needs scripts/build-image and root; scripts/test runs it"]
fn the_box_boots_answers_updates_and_rolls_back() {
    let img = image_dir();
    let disk = img.join("disk.img");
    assert!(
        disk.exists(),
        "no {}: run scripts/build-image first",
        disk.display()
    );
    let work = tempfile::tempdir().unwrap();
    let lan = Lan::new();
    let mut g = Guest::boot(&lan, &disk);

    // Plugged in: the serial console shows the menu with the factory address.
    let header = menu(&mut g, BOOT);
    assert!(
        header.contains("10.10.10.1"),
        "no factory address in:\n{header}"
    );
    assert!(header.contains("https://10.10.10.1:4021/admin"), "{header}");
    // Ctrl-C and Ctrl-\ do not leave the menu (no shell behind it).
    g.line("\x03\x1c");
    g.line("1");
    let status = g.expect("Press Enter", Duration::from_secs(30));
    assert!(
        status.contains("Host name: pbx") && status.contains("10.10.10.1/24"),
        "{status}"
    );
    g.line("");
    menu(&mut g, Duration::from_secs(10));

    // The web admin and SIP answer at the factory address.
    let page = web_answers(&lan, "https://10.10.10.1:4021/admin", WEB_UP);
    assert!(page.contains("Admin") || page.contains("admin"), "{page}");
    let sip = lan
        .sip_options("10.10.10.1:5060")
        .expect("no SIP answer to OPTIONS");
    assert!(sip.starts_with("SIP/2.0 "), "{sip}");

    // A new static address through the console, reached there at once.
    for (answer, next) in [
        ("2", "eth0"),
        ("1", "Choose 1 or 2"),
        ("2", "IP address [10.10.10.1]"),
        ("10.10.20.1", "Mask"),
        ("24", "Default gateway"),
        ("", "DNS servers"),
        ("", "(y/n)"),
    ] {
        g.line(answer);
        g.expect(next, Duration::from_secs(10));
    }
    g.line("y");
    g.expect("Saved and applied.", Duration::from_secs(30));
    g.line("");
    let header = menu(&mut g, Duration::from_secs(10));
    assert!(header.contains("https://10.10.20.1:4021/admin"), "{header}");
    lan.add_address("10.10.20.2/24");
    web_answers(
        &lan,
        "https://10.10.20.1:4021/admin",
        Duration::from_secs(30),
    );
    let sip = lan
        .sip_options("10.10.20.1:5060")
        .expect("no SIP answer at the new address");
    assert!(sip.starts_with("SIP/2.0 "), "{sip}");
    let host = "10.10.20.1";

    // The administrator's password, set at the console.
    g.line("3");
    g.expect("New password:", Duration::from_secs(10));
    g.line(PASSWORD);
    g.expect("The same again:", Duration::from_secs(10));
    g.line(PASSWORD);
    g.expect("log in as Admin", Duration::from_secs(30));
    g.line("");
    menu(&mut g, Duration::from_secs(10));
    let before = slots(&mut g);
    assert!(before.contains("Slot A: booted"), "{before}");

    // Refused: signed with a key the box does not know, and built for another board.
    let other = work.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=not the box's key",
        ])
        .arg("-keyout")
        .arg(other.join("key.pem"))
        .arg("-out")
        .arg(other.join("cert.pem")));
    let unsigned = work.path().join("foreign-key.raucb");
    make_bundle(
        &img.join("rootfs.ext4"),
        &unsigned,
        &[
            "--cert",
            other.join("cert.pem").to_str().unwrap(),
            "--key",
            other.join("key.pem").to_str().unwrap(),
        ],
    );
    refused(
        &lan,
        host,
        &unsigned,
        "not signed with this box's update key",
    );
    let pi = work.path().join("rpi4.raucb");
    make_bundle(&img.join("rootfs.ext4"), &pi, &["--compatible", "pbx-rpi4"]);
    refused(&lan, host, &pi, "for another board");

    // The update: installed into slot B, rebooted into it, marked good by pbxd.
    g.skip();
    let st = upload(&lan, host, &img.join("update.raucb"));
    assert!(st["state"] == "rebooting" || st["state"] == "gone", "{st}");
    let header = menu(&mut g, BOOT);
    assert!(
        header.contains("10.10.20.1"),
        "the address did not survive the update:\n{header}"
    );
    let s = slots_until(
        &mut g,
        &["Slot B: booted, good", "Slot A: inactive"],
        WEB_UP,
    );
    assert!(s.contains("Next boot: slot B"), "{s}");
    web_answers(
        &lan,
        "https://10.10.20.1:4021/admin",
        Duration::from_secs(60),
    );

    // A bundle whose pbxd cannot start: installed into slot A, booted once, never
    // marked good; the box comes back on slot B.
    let broken = broken_bundle(work.path());
    g.skip();
    let st = upload(&lan, host, &broken);
    assert!(st["state"] == "rebooting" || st["state"] == "gone", "{st}");
    // First boot: the broken slot A.
    menu(&mut g, BOOT);
    // pbx-fallback reboots it; GRUB's counter takes slot B.
    let t0 = std::time::Instant::now();
    loop {
        let s = slots(&mut g);
        if s.contains("Slot B: booted") {
            break;
        }
        assert!(t0.elapsed() < BOOT, "never came back on slot B:\n{s}");
        // Still on A: wait for the reboot and the menu after it.
        g.skip();
        menu(&mut g, BOOT);
    }
    // Back on B, which pbxd confirms again; A stays marked bad.
    slots_until(
        &mut g,
        &["Slot B: booted, good", "Slot A: inactive, bad"],
        WEB_UP,
    );
    web_answers(
        &lan,
        "https://10.10.20.1:4021/admin",
        Duration::from_secs(60),
    );

    backup_factory_reset_and_recovery(&lan, &mut g, work.path(), host);
}

/// Kerio 20 on the box: a backup made and downloaded, a power cut, a factory reset from
/// the console, the backup restored from a USB stick at the console (the box restarts
/// with the backup's extension, administrator's password and network settings), then
/// uploaded in the web admin (pbxd restarts into it).
fn backup_factory_reset_and_recovery(lan: &Lan, g: &mut Guest, work: &Path, host: &str) {
    let admin = Session::open(lan, host, PASSWORD);
    let url = |h: &str, path: &str| format!("https://{h}:4021/api/v1{path}");
    let json = "content-type: application/json";
    let (code, body) = admin.send(
        lan,
        &[
            "-H",
            json,
            "--data",
            r#"{"number": "101"}"#,
            &url(host, "/extensions"),
        ],
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = admin.send(
        lan,
        &[
            "-H",
            json,
            "--data",
            r#"{"parts": ["config", "voicemail"]}"#,
            &url(host, "/system/backups"),
        ],
    );
    assert_eq!(code, 201, "{body}");
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    let name = made["name"].as_str().unwrap();
    let archive = work.join("box.tar.gz");
    let (code, body) = admin.send(
        lan,
        &[
            "-o",
            archive.to_str().unwrap(),
            &url(host, &format!("/system/backups/{name}")),
        ],
    );
    assert_eq!(code, 200, "{body}");

    // A power cut: the box comes back with the extension and the backup it had.
    g.power_cut();
    menu(g, BOOT);
    web_up(g, lan, &format!("https://{host}:4021/admin"), WEB_UP);
    let admin = Session::open(lan, host, PASSWORD);
    let (_, exts) = lan.curl(&["-b", &admin.jar, &url(host, "/extensions")]);
    assert!(
        exts.contains("\"101\""),
        "101 lost in the power cut: {exts}"
    );
    let (_, backups) = lan.curl(&["-b", &admin.jar, &url(host, "/system/backups")]);
    assert!(
        backups.contains(name),
        "the backup lost in the power cut: {backups}"
    );
    // The kernel log (Kerio 28.5) holds this boot's kernel messages, read from
    // /dev/kmsg by pbxd.
    let (code, kernel) = lan.curl(&["-b", &admin.jar, &url(host, "/logs/kernel?limit=5")]);
    assert_eq!(code, 200, "{kernel}");
    let kernel: serde_json::Value = serde_json::from_str(&kernel).unwrap();
    let lines = kernel["lines"].as_array().unwrap();
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l.as_str().unwrap().contains(" kernel: ")),
        "{kernel}"
    );

    // The packet sniffer (Kerio 22.1): the web admin's own traffic captured on eth0,
    // downloaded, and read back here by tcpdump.
    let (code, body) = admin.send(
        lan,
        &[
            "-H",
            json,
            "--data",
            r#"{"interface": "eth0", "filter": "tcp port 4021", "seconds": 120, "max_mib": 1}"#,
            &url(host, "/system/capture"),
        ],
    );
    assert_eq!(code, 202, "{body}");
    lan.https_get(&format!("https://{host}:4021/admin"));
    let (code, body) = admin.send(lan, &["-X", "POST", &url(host, "/system/capture/stop")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"state\":\"done\""), "{body}");
    let pcap = work.join("box.pcap");
    let (code, body) = admin.send(
        lan,
        &[
            "-o",
            pcap.to_str().unwrap(),
            &url(host, "/system/capture/download"),
        ],
    );
    assert_eq!(code, 200, "{body}");
    let read = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump");
    let text = String::from_utf8_lossy(&read.stdout);
    assert!(
        read.status.success() && text.contains(&format!("{host}.4021 >")),
        "{text}{}",
        String::from_utf8_lossy(&read.stderr)
    );

    // Network settings in the web admin (Kerio 22.1): a new address is in force at
    // once, on trial; nobody confirms it, and the box goes back to its address by itself.
    let (code, body) = admin.send(
        lan,
        &[
            "-X",
            "PUT",
            "-H",
            json,
            "--data",
            r#"{"hostname": "pbx", "interfaces": [{"name": "eth0", "address": "10.10.20.7", "prefix": 24}], "dns": []}"#,
            &url(host, "/system/network"),
        ],
    );
    assert_eq!(code, 202, "{body}");
    web_answers(
        lan,
        "https://10.10.20.7:4021/admin",
        Duration::from_secs(30),
    );
    web_answers(
        lan,
        &format!("https://{host}:4021/admin"),
        Duration::from_secs(180),
    );
    assert_eq!(lan.https_get("https://10.10.20.7:4021/admin").0, 0);
    let (_, security) = lan.curl(&["-b", &admin.jar, &url(host, "/logs/security")]);
    assert!(
        security.contains("network change not confirmed in time: rolled back"),
        "{security}"
    );

    // Factory reset at the console: the box comes back at the factory address, empty.
    g.line("9");
    g.expect("Type RESET", Duration::from_secs(10));
    g.line("RESET");
    menu_showing(g, "https://10.10.10.1:4021/admin");
    web_up(g, lan, "https://10.10.10.1:4021/admin", WEB_UP);
    let factory = "10.10.10.1";
    g.line("3");
    g.expect("New password:", Duration::from_secs(10));
    g.line("Factory-Fresh-7");
    g.expect("The same again:", Duration::from_secs(10));
    g.line("Factory-Fresh-7");
    g.expect("log in as Admin", Duration::from_secs(30));
    g.line("");
    menu(g, Duration::from_secs(10));
    let fresh = Session::open(lan, factory, "Factory-Fresh-7");
    let (_, exts) = lan.curl(&["-b", &fresh.jar, &url(factory, "/extensions")]);
    assert!(
        !exts.contains("\"101\""),
        "the reset box still has 101: {exts}"
    );

    // The recovery from a USB stick at the console: the backup (FAT, in a partition,
    // beside a file that is not a backup) is checked and staged, the box restarts into
    // it, and the backup's network settings are in force at once.
    let stick = usb_stick(work, &archive);
    g.plug_stick(&stick);
    std::thread::sleep(Duration::from_secs(3));
    let t0 = std::time::Instant::now();
    let listed = loop {
        g.line("10");
        let shown = g.expect("Enter to go back", Duration::from_secs(120));
        if shown.contains("pbx-backup.tar.gz") {
            break shown;
        }
        // The stick may still be coming up (USB enumeration, the driver loaded; slow
        // under TCG).
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the console never found the stick's backup:\n{shown}"
        );
        g.line("");
        menu(g, Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(3));
    };
    assert!(
        listed.contains("by firmware") && listed.contains("config, voicemail"),
        "{listed}"
    );
    assert!(listed.contains("not a backup the box reads"), "{listed}");
    g.line("1");
    g.expect("(y/n)", Duration::from_secs(10));
    g.line("y");
    g.expect(
        "it is put in place while the box restarts",
        Duration::from_secs(300),
    );
    // The menu the console draws again before the reboot takes it does not count.
    g.expect("reboot: Restarting system", BOOT);
    menu(g, BOOT);
    let host = "10.10.20.1";
    web_up(g, lan, &format!("https://{host}:4021/admin"), WEB_UP);
    // The menu drawn again shows the backup's address.
    g.line("");
    let header = menu(g, Duration::from_secs(10));
    assert!(header.contains("https://10.10.20.1:4021/admin"), "{header}");
    let admin = Session::open(lan, host, PASSWORD);
    let (_, exts) = lan.curl(&["-b", &admin.jar, &url(host, "/extensions")]);
    assert!(exts.contains("\"101\""), "{exts}");
    let (_, security) = lan.curl(&["-b", &admin.jar, &url(host, "/logs/security")]);
    assert!(
        security.contains("restored") && security.contains("USB stick sd"),
        "{security}"
    );

    // The recovery uploaded in the web admin: 101 removed, the backup brings it back
    // as pbxd restarts into it.
    let (code, body) = admin.send(lan, &["-X", "DELETE", &url(host, "/extensions/101")]);
    assert!(code == 200 || code == 204, "{code} {body}");
    let (code, body) = admin.send(
        lan,
        &[
            "-H",
            "content-type: application/octet-stream",
            "--data-binary",
            &format!("@{}", archive.display()),
            &url(host, "/system/restore"),
        ],
    );
    assert_eq!(code, 202, "{body}");
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(s) = Session::try_open(lan, host, PASSWORD) {
            let (_, exts) = lan.curl(&["-b", &s.jar, &url(host, "/extensions")]);
            if exts.contains("\"101\"") {
                break;
            }
        }
        assert!(t0.elapsed() < WEB_UP, "101 never came back from the upload");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// A USB stick's image: an MBR partition table, one FAT partition from 1 MiB holding
/// the backup as `pbx-backup.tar.gz` and, in a folder, a `.tar.gz` that is not one.
fn usb_stick(work: &Path, archive: &Path) -> PathBuf {
    let img = work.join("stick.img");
    run(Command::new("truncate").args(["-s", "64M"]).arg(&img));
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--label", "dos"])
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk");
    {
        use std::io::Write;
        let mut i = sfdisk.stdin.take().unwrap();
        writeln!(i, "start=2048, type=c").unwrap();
    }
    assert!(sfdisk.wait().unwrap().success(), "sfdisk");
    run(Command::new("mkfs.vfat")
        .args(["-n", "STICK", "--offset", "2048"])
        .arg(&img));
    let fat = format!("{}@@1M", img.display());
    run(Command::new("mcopy")
        .args(["-i", &fat])
        .arg(archive)
        .arg("::/pbx-backup.tar.gz"));
    let junk = work.join("junk.tar.gz");
    std::fs::write(&junk, b"holiday photos").unwrap();
    run(Command::new("mmd").args(["-i", &fat, "::/old"]));
    run(Command::new("mcopy")
        .args(["-i", &fat])
        .arg(&junk)
        .arg("::/old/photos.tar.gz"));
    img
}

/// The root file system carries the default music on hold where pbxd looks for it
/// (Debian's asterisk-moh-opsound-wav: five 8 kHz WAV tracks).
#[test]
#[ignore = "needs scripts/build-image; scripts/test runs it"]
fn the_root_file_system_has_the_music_on_hold() {
    let rootfs = image_dir().join("rootfs.ext4");
    let out = Command::new("debugfs")
        .args(["-R", "ls -l /usr/share/asterisk/moh"])
        .arg(&rootfs)
        .output()
        .expect("run debugfs (e2fsprogs)");
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    let tracks = listing.lines().filter(|l| l.ends_with(".wav")).count();
    assert_eq!(tracks, 5, "{listing}");
    assert!(listing.contains("macroform-cold_day.wav"), "{listing}");
}

/// The root file system carries nftables' command line program, which pbxd runs with
/// `--firewall` to put the firewall's settings in force.
#[test]
#[ignore = "needs scripts/build-image; scripts/test runs it"]
fn the_root_file_system_has_nftables() {
    let out = Command::new("debugfs")
        .args(["-R", "stat /usr/sbin/nft"])
        .arg(image_dir().join("rootfs.ext4"))
        .output()
        .expect("run debugfs (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Type: regular"),
        "{out:?}"
    );
    let unit = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../rootfs-overlay/etc/systemd/system/pbxd.service"),
    )
    .unwrap();
    assert!(unit.contains(" --firewall"), "{unit}");
}

/// The root file system carries the English system prompts where pbxd looks for them:
/// `/usr/share/asterisk/sounds/en` (the alternatives link of Debian's
/// asterisk-core-sounds-en) leads to the WAV set, voicemail's prompts among them.
#[test]
#[ignore = "needs scripts/build-image; scripts/test runs it"]
fn the_root_file_system_has_the_system_prompts() {
    let rootfs = image_dir().join("rootfs.ext4");
    let debugfs = |req: &str| {
        let out = Command::new("debugfs")
            .args(["-R", req])
            .arg(&rootfs)
            .output()
            .expect("run debugfs (e2fsprogs)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // en -> /etc/alternatives/asterisk-prompt-en -> .../en_US_f_Allison
    let link = debugfs("stat /usr/share/asterisk/sounds/en");
    assert!(
        link.contains("/etc/alternatives/asterisk-prompt-en"),
        "{link}"
    );
    let alt = debugfs("stat /etc/alternatives/asterisk-prompt-en");
    assert!(
        alt.contains("/usr/share/asterisk/sounds/en_US_f_Allison"),
        "{alt}"
    );
    let listing = debugfs("ls -l /usr/share/asterisk/sounds/en_US_f_Allison");
    for prompt in [
        "vm-intro.wav",
        "beep.wav",
        "vm-msgsaved.wav",
        "vm-goodbye.wav",
    ] {
        assert!(listing.contains(prompt), "{prompt}: {listing}");
    }
    assert!(
        listing.lines().filter(|l| l.ends_with(".wav")).count() > 300,
        "{listing}"
    );
}
