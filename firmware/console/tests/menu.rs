//! The console menu driven through a pseudo-terminal, as a technician on the serial line
//! would, inside a network namespace the test makes (eth0 on a veth pair): the factory
//! address at the top, bad input at the prompts, Ctrl-C and Ctrl-\ ignored, a static
//! address set and really applied, power entries confirmed, factory reset.

use nix::pty::openpty;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use system::testing::Netns;

struct Console {
    child: Child,
    master: std::fs::File,
    seen: Arc<Mutex<String>>,
    mark: usize,
}

impl Console {
    fn start(ns: &Netns, args: &[String]) -> Console {
        let pty = openpty(None, None).unwrap();
        let slave: OwnedFd = pty.slave;
        let s = slave.as_raw_fd();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_pbx-console")])
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session
        // with the pty as its controlling terminal, as getty gives the console.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc_ioctl_sctty(s) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(slave);
        let master = std::fs::File::from(pty.master);
        let seen = Arc::new(Mutex::new(String::new()));
        let (mut r, s2) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Console {
            child,
            master,
            seen,
            mark: 0,
        }
    }

    /// Waits for `text` after what was matched last.
    fn expect(&mut self, text: &str) -> String {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            {
                let s = self.seen.lock().unwrap();
                if let Some(at) = s[self.mark..].find(text) {
                    let got = s[self.mark..self.mark + at + text.len()].to_string();
                    self.mark += at + text.len();
                    return got;
                }
                if Instant::now() > end {
                    panic!(
                        "no {text:?} on the console; after the last match:\n{}",
                        &s[self.mark..]
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    fn line(&mut self, s: &str) {
        self.send(&format!("{s}\r"));
    }
}

nix::ioctl_write_int_bad!(tiocsctty, nix::libc::TIOCSCTTY);

fn libc_ioctl_sctty(fd: i32) -> i32 {
    // SAFETY: TIOCSCTTY on the pty slave, in the child after setsid.
    unsafe { tiocsctty(fd, 0) }.map(|_| 0).unwrap_or(-1)
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script(dir: &std::path::Path, name: &str, log: &std::path::Path) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\necho {name} >> {}\n", log.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[test]
fn the_menu_through_a_terminal() {
    let Some(ns) = Netns::new("pbxcon") else {
        assert!(
            !nix::unistd::Uid::effective().is_root(),
            "root must be able to make a netns"
        );
        eprintln!("skipped: needs root for a network namespace");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(data.join("store.db"), b"configuration").unwrap();
    let power = tmp.path().join("power.log");
    let pbxctl = std::path::Path::new(env!("CARGO_BIN_EXE_pbx-console")).with_file_name("pbxctl");
    assert!(
        pbxctl.exists(),
        "{} missing: build the workspace first (scripts/test does)",
        pbxctl.display()
    );
    let args: Vec<String> = vec![
        "--pbxctl".into(),
        pbxctl.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--root".into(),
        root.display().to_string(),
        "--reboot-command".into(),
        script(tmp.path(), "reboot", &power),
        "--poweroff-command".into(),
        script(tmp.path(), "poweroff", &power),
        "--rauc".into(),
        tmp.path().join("no-rauc-here").display().to_string(),
        "--sys".into(),
        tmp.path().join("sys").display().to_string(),
        "--stick-dir".into(),
        tmp.path().join("stick").display().to_string(),
    ];
    // At boot: the factory address goes on eth0.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            env!("CARGO_BIN_EXE_pbx-console"),
            "--apply-network",
        ])
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(ns.eth0().contains("10.10.10.1/24"), "{}", ns.eth0());

    let mut c = Console::start(&ns, &args);
    c.expect("https://10.10.10.1:4021/admin");
    c.expect("Choose 1-10");
    // Nonsense, then Ctrl-C and Ctrl-\ at the prompt: still the menu.
    c.line("42");
    c.expect("\"42\" is not in the menu");
    c.line("");
    // (At the prompt: the keys flush what is typed but not yet read, as on a real tty.)
    c.expect("Choose 1-10");
    c.send("\x03");
    c.send("\x1c");
    c.line("1");
    let status = c.expect("Host name: pbx");
    assert!(
        status.contains("eth0") && status.contains("10.10.10.1/24 (mask 255.255.255.0)"),
        "{status}"
    );
    assert!(c.child.try_wait().unwrap().is_none(), "the console ended");
    c.line("");

    // A static address, with a mistake at every prompt.
    c.expect("Choose 1-10");
    c.line("2");
    c.expect("eth0");
    c.line("9");
    c.expect("type a number");
    c.line("1");
    c.expect("Choose 1 or 2");
    c.line("3");
    c.expect("type 1 or 2");
    c.line("2");
    c.expect("IP address [10.10.10.1]");
    c.line("300.1.1.1");
    c.expect("not an IPv4 address");
    c.line("192.168.50.2");
    c.expect("Mask [255.255.255.0]");
    c.line("255.0.255.0");
    c.expect("holes");
    c.line("24");
    c.expect("Default gateway");
    c.line("10.0.0.1");
    c.expect("not a host of 192.168.50.0/24");
    c.expect("IP address");
    c.line("192.168.50.2");
    c.expect("Mask");
    c.line("");
    c.expect("Default gateway");
    c.line("192.168.50.1");
    c.expect("DNS servers");
    c.line("192.168.50.1 nonsense");
    c.expect("not an IPv4 address");
    c.line("192.168.50.1");
    c.expect("(y/n)");
    c.line("maybe");
    c.expect("type y or n");
    c.line("y");
    c.expect("Saved and applied.");
    c.line("");
    c.expect("https://192.168.50.2:4021/admin");
    let a = ns.eth0();
    assert!(
        a.contains("192.168.50.2/24") && !a.contains("10.10.10.1"),
        "{a}"
    );
    let file = std::fs::read_to_string(data.join("system/network.json")).unwrap();
    assert!(
        file.contains("192.168.50.2") && file.contains("192.168.50.1"),
        "{file}"
    );
    assert!(std::fs::read_to_string(root.join("etc/resolv.conf"))
        .unwrap()
        .contains("nameserver 192.168.50.1"));

    // Ping: a bad host is refused; loopback answers.
    c.expect("Choose 1-10");
    c.line("4");
    c.line("-f");
    c.expect("is not a host name or address");
    c.line("127.0.0.1");
    c.expect("3 packets transmitted");
    c.line("");

    // The web administrator's password: typed twice without echo; a mismatch and a
    // weak one change nothing, a good one is stored through pbxctl.
    c.expect("Choose 1-10");
    c.line("3");
    c.expect("New password:");
    c.line("Console-Secret-1");
    c.expect("The same again:");
    c.line("Console-Secret-2");
    c.expect("differ; nothing changed");
    c.line("");
    c.expect("Choose 1-10");
    c.line("3");
    c.expect("New password:");
    c.line("Console-Secret-1");
    let echoed = c.expect("The same again:");
    assert!(
        !echoed.contains("Console-Secret-1"),
        "the password was echoed: {echoed}"
    );
    c.line("Console-Secret-1");
    c.expect("log in as Admin");
    c.line("");

    // Version without RAUC says updates are not available here.
    c.expect("Choose 1-10");
    c.line("5");
    c.expect("not available on this system");
    c.line("");

    // Back to the previous firmware: without RAUC nothing is switched or rebooted.
    c.expect("Choose 1-10");
    c.line("6");
    c.expect("(y/n)");
    c.line("y");
    c.expect("Not switched: firmware updates are not available");
    c.line("");

    // Reboot asked and declined; shut down confirmed.
    c.expect("Choose 1-10");
    c.line("7");
    c.line("n");
    c.expect("Choose 1-10");
    assert!(
        !power.exists(),
        "declined, yet {:?}",
        std::fs::read_to_string(&power)
    );
    c.line("8");
    c.line("y");
    c.expect("shutting down");
    assert_eq!(std::fs::read_to_string(&power).unwrap(), "poweroff\n");

    // A backup from a USB stick: none plugged in, then a disk that is not the box's
    // and cannot be mounted (its device node is missing here). (The whole restore runs in the image
    // test, with a real stick.)
    c.expect("Choose 1-10");
    c.line("10");
    c.expect("No USB stick found");
    c.line("");
    let disk = tmp.path().join("sys/devices/usb1/block/pbxtest-nostick");
    std::fs::create_dir_all(&disk).unwrap();
    std::fs::write(disk.join("size"), "2048\n").unwrap();
    std::fs::create_dir_all(tmp.path().join("sys/block")).unwrap();
    std::os::unix::fs::symlink(&disk, tmp.path().join("sys/block/pbxtest-nostick")).unwrap();
    c.expect("Choose 1-10");
    c.line("10");
    let none = c.expect("Press Enter");
    assert!(
        none.contains("No backup found")
            && none.contains("no FAT, exFAT or ext4 file system on /dev/pbxtest-nostick"),
        "{none}"
    );
    c.line("");

    // Factory reset: a wrong word cancels; RESET marks it and reboots; the boot step
    // erases the data partition.
    c.expect("Choose 1-10");
    c.line("9");
    c.line("reset");
    c.expect("cancelled; nothing changed");
    c.line("");
    c.expect("Choose 1-10");
    assert!(data.join("store.db").exists());
    c.line("9");
    c.line("RESET");
    c.expect("restarting");
    assert_eq!(
        std::fs::read_to_string(&power).unwrap(),
        "poweroff\nreboot\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pbx-console"))
        .arg("--finish-factory-reset")
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "data left after the reset"
    );
}
