//! The image test's harness: a network namespace with a tap device for the guest's NIC,
//! QEMU booting a copy of the image with its serial console on a Unix socket, and the
//! programs (curl, python3) run inside the namespace to reach the box.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where scripts/build-image put its output.
pub fn image_dir() -> PathBuf {
    std::env::var_os("PBX_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/image"))
}

/// A network namespace holding `tap0` (the guest's NIC) and the test's side of the
/// box's LAN at 10.10.10.2/24.
pub struct Lan {
    pub name: String,
}

impl Lan {
    #[allow(clippy::new_without_default)] // it makes a namespace: not a default value
    pub fn new() -> Lan {
        let name = format!("pbximg{}", std::process::id());
        let lan = Lan { name };
        run(Command::new("ip").args(["netns", "add", &lan.name]));
        for a in [
            &["tuntap", "add", "dev", "tap0", "mode", "tap"][..],
            &["addr", "add", "10.10.10.2/24", "dev", "tap0"],
            &["link", "set", "tap0", "up"],
            &["link", "set", "lo", "up"],
        ] {
            run(Command::new("ip").arg("-n").arg(&lan.name).args(a));
        }
        lan
    }

    /// A command run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Adds an address to the LAN side (`10.10.20.2/24`).
    pub fn add_address(&self, cidr: &str) {
        run(Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(["addr", "add", cidr, "dev", "tap0"]));
    }

    /// HTTPS GET from the LAN: (status, body). The box's certificate is self-signed.
    pub fn https_get(&self, url: &str) -> (u16, String) {
        let out = self
            .cmd("curl")
            .args(["-sk", "--max-time", "10", "-w", "\n%{http_code}", url])
            .output()
            .expect("curl");
        split_status(&out)
    }

    /// curl with arbitrary arguments from the LAN: (status, body).
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = self
            .cmd("curl")
            .args(["-sk", "--max-time", "600", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl");
        split_status(&out)
    }

    /// Sends a SIP OPTIONS over UDP from the LAN and answers the status line.
    pub fn sip_options(&self, to: &str) -> Option<String> {
        let script = format!(
            r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5099))
s.settimeout(2)
msg = ("OPTIONS sip:{to} SIP/2.0\r\n"
       "Via: SIP/2.0/UDP 10.10.10.2:5099;branch=z9hG4bK-img-1;rport\r\n"
       "Max-Forwards: 70\r\nTo: <sip:{to}>\r\nFrom: <sip:test@10.10.10.2>;tag=img1\r\n"
       "Call-ID: image-test-1\r\nCSeq: 1 OPTIONS\r\nContact: <sip:test@10.10.10.2:5099>\r\n"
       "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n")
for _ in range(3):
    s.sendto(msg.encode(), ("{host}", 5060))
    try:
        data, _ = s.recvfrom(65535)
        print(data.decode(errors="replace").split("\r\n")[0])
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"#,
            to = to,
            host = to.split(':').next().unwrap_or(to)
        );
        let out = self.cmd("python3").args(["-c", &script]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn split_status(out: &Output) -> (u16, String) {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn run(c: &mut Command) {
    let out = c.output().expect("run");
    assert!(out.status.success(), "{c:?}: {out:?}");
}

/// KVM with hardware virtualisation (kvm_intel or kvm_amd). Some machines offer
/// /dev/kvm through kvm_pvm, which runs only PVM-aware guest kernels and no firmware:
/// those use TCG like machines without KVM. PBX_QEMU_ACCEL=kvm|tcg decides instead.
pub fn kvm_usable() -> bool {
    match std::env::var("PBX_QEMU_ACCEL").as_deref() {
        Ok("kvm") => return true,
        Ok("tcg") => return false,
        _ => {}
    }
    Path::new("/dev/kvm").exists()
        && (Path::new("/sys/module/kvm_intel").exists()
            || Path::new("/sys/module/kvm_amd").exists())
}

/// How long the console may stay silent (and the guest's disk idle) after the guest's
/// `Restarting system` before the test presses the power button: longer than the 2 minutes of the watchdog systemd
/// arms for the way down, so a working watchdog gets its chance first (a boot prints
/// within seconds of a reset).
const STUCK_REBOOT: Duration = Duration::from_secs(150);

/// How long the console may stay silent, with the guest's disk idle, between GRUB's
/// welcome and the console's menu before the boot is taken as hung (the kernel runs
/// `quiet`, so a slow boot under TCG is silent for minutes; its disk is not).
const STUCK_BOOT: Duration = Duration::from_secs(240);

/// Where the boot partition lies in the image (scripts/build-image: from 1 MiB, 32 MiB).
const BOOT_PARTITION: (u64, usize) = (1 << 20, 32 << 20);

/// GRUB's environment blocks on the boot partition of a disk: each one's offset in the
/// disk and its 1,024 bytes, the first on the partition first. The grubenv file begins
/// a FAT cluster, so a block begins a sector; its signature also stands inside
/// BOOTX64.EFI (GRUB's loadenv module), never there. A freshly built image has one;
/// once the guest's RAUC has set variables, more: grub-editenv truncates the file and
/// writes it again, and Linux's FAT driver puts it in a new cluster, leaving the old
/// block in free space (which of them is the file's, only the FAT says).
fn grubenv_blocks(f: &mut std::fs::File) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
    use std::io::{Read, Seek, SeekFrom};
    let (start, len) = BOOT_PARTITION;
    let mut part = vec![0u8; len];
    f.seek(SeekFrom::Start(start))?;
    f.read_exact(&mut part)?;
    let blocks: Vec<(u64, Vec<u8>)> = (0..len)
        .step_by(512)
        .filter(|&at| part[at..].starts_with(b"# GRUB Environment Block\n"))
        .map(|at| (start + at as u64, part[at..(at + 1024).min(len)].to_vec()))
        .collect();
    if blocks.is_empty() {
        return Err(std::io::Error::other(
            "no GRUB environment block on the boot partition",
        ));
    }
    Ok(blocks)
}

/// Sets `<slot>_TRY=1` back to 0 in GRUB's environment block on the boot partition of a
/// stopped guest's disk, in place (the block is a fixed 1,024 bytes GRUB itself
/// rewrites in place): true when it did, false when the slot was not marked as tried.
/// Every block on the partition is changed so (the file's, and old copies in free
/// space, which nothing reads: see [`grubenv_blocks`]).
fn give_back_try(disk: &Path, slot: char) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)?;
    let tried = format!("\n{slot}_TRY=1\n");
    let mut gave = false;
    for (at, block) in grubenv_blocks(&mut f)? {
        let Some(i) = block
            .windows(tried.len())
            .position(|w| w == tried.as_bytes())
        else {
            continue;
        };
        // The '1' of "<slot>_TRY=1".
        f.seek(SeekFrom::Start(at + (i + tried.len() - 2) as u64))?;
        f.write_all(b"0")?;
        gave = true;
    }
    f.sync_all()?;
    Ok(gave)
}

/// The slot GRUB said it was booting in the console's last boot (since GRUB's last
/// welcome), if it said so.
fn slot_being_booted(seen: &[u8]) -> Option<char> {
    let from = seen
        .windows(16)
        .rposition(|w| w == b"Welcome to GRUB!")
        .unwrap_or(0);
    let boot = &seen[from..];
    let marker = b"Booting `PBX firmware (slot ";
    let i = boot.windows(marker.len()).position(|w| w == marker)?;
    boot.get(i + marker.len())
        .map(|&c| c as char)
        .filter(|c| matches!(c, 'A' | 'B'))
}

/// One QMP command (after the capabilities handshake) on a fresh connection: QEMU's
/// answer line, or what went wrong (a QEMU that does not answer in 10 s is wedged).
fn qmp(sock: &Path, command: &str) -> Result<String, String> {
    use std::io::BufRead;
    let s = UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = std::io::BufReader::new(s);
    let mut answer = |w: &mut UnixStream, cmd: &str| -> Result<String, String> {
        writeln!(w, "{{\"execute\": \"{cmd}\"}}").map_err(|e| e.to_string())?;
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => return Err("QMP closed".into()),
                Ok(_) if line.contains("\"return\"") || line.contains("\"error\"") => {
                    return Ok(line.trim().to_string())
                }
                Ok(_) => {} // the greeting, or an event
                Err(e) => return Err(format!("no answer to {cmd}: {e}")),
            }
        }
    };
    answer(&mut w, "qmp_capabilities")?;
    answer(&mut w, command)
}

/// Sends QMP commands given whole (JSON objects), one after the other; answers what
/// QEMU said to the last, or the first error.
fn qmp_json(sock: &Path, commands: &[serde_json::Value]) -> Result<String, String> {
    use std::io::BufRead;
    let s = UnixStream::connect(sock).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = std::io::BufReader::new(s);
    let mut last = String::new();
    let capabilities = serde_json::json!({"execute": "qmp_capabilities"});
    for cmd in std::iter::once(&capabilities).chain(commands) {
        writeln!(w, "{cmd}").map_err(|e| e.to_string())?;
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => return Err("QMP closed".into()),
                Ok(_) if line.contains("\"error\"") => {
                    return Err(format!("{cmd}: {}", line.trim()))
                }
                Ok(_) if line.contains("\"return\"") => {
                    last = line.trim().to_string();
                    break;
                }
                Ok(_) => {} // the greeting, or an event
                Err(e) => return Err(format!("no answer to {cmd}: {e}")),
            }
        }
    }
    Ok(last)
}

/// The box under QEMU, its serial console on a Unix socket.
pub struct Guest {
    qemu: Child,
    serial: UnixStream,
    /// QEMU's machine protocol socket (QMP): where the test asks QEMU of the guest's state.
    qmp: PathBuf,
    /// The length of the console output when the guest was last power-cycled.
    cycled_at: Option<usize>,
    seen: Arc<Mutex<Vec<u8>>>,
    /// Where [`Guest::expect`] looks from.
    cursor: usize,
    /// The namespace QEMU runs in (its NIC is the LAN's tap0).
    netns: String,
    dir: tempfile::TempDir,
}

impl Guest {
    /// Boots a copy of `disk` (the build's image stays as built) with its NIC on the
    /// LAN's tap0. KVM when the machine has it.
    pub fn boot(lan: &Lan, disk: &Path) -> Guest {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("disk.img");
        run(Command::new("cp")
            .arg("--sparse=always")
            .arg(disk)
            .arg(&copy));
        // The harness can give a hung boot's try back (`power_cycle`) on this disk.
        let env = std::fs::File::open(&copy)
            .and_then(|mut f| grubenv_blocks(&mut f))
            .map(|mut blocks| blocks.swap_remove(0).1)
            .expect("GRUB's environment block on the image's boot partition");
        assert!(
            env.windows(8).any(|w| w == b"\nA_TRY=0") && env.windows(8).any(|w| w == b"\nB_TRY=0"),
            "the image's grubenv names both slots' tries: {:?}",
            String::from_utf8_lossy(&env)
        );
        let vars = dir.path().join("vars.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).expect("OVMF vars");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (qemu, serial) = Self::power_on(&lan.name, dir.path(), &seen);
        Guest {
            qemu,
            serial,
            qmp: dir.path().join("qmp.sock"),
            cycled_at: None,
            seen,
            cursor: 0,
            netns: lan.name.clone(),
            dir,
        }
    }

    /// Starts QEMU on the disk and firmware variables in `dir`, and copies what its
    /// serial console prints into `seen` from a thread of its own.
    fn power_on(netns: &str, dir: &Path, seen: &Arc<Mutex<Vec<u8>>>) -> (Child, UnixStream) {
        let sock = dir.join("serial.sock");
        let qmp = dir.join("qmp.sock");
        // A socket left by a QEMU that was stopped must not be mistaken for the new one.
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(&qmp);
        let kvm = kvm_usable();
        let qemu = Command::new("ip")
            .args(["netns", "exec", netns, "qemu-system-x86_64"])
            .args([
                "-machine",
                if kvm {
                    "q35,accel=kvm"
                } else {
                    "q35,accel=tcg"
                },
            ])
            .args(["-cpu", if kvm { "host" } else { "max" }])
            .args(["-m", "1024", "-smp", "2"])
            .args([
                "-drive",
                "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            ])
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,file={}",
                dir.join("vars.fd").display()
            ))
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=virtio",
                dir.join("disk.img").display()
            ))
            .args(["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no"])
            .args(["-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"])
            .args(["-device", "i6300esb"])
            // A USB 3 controller, where the test plugs a stick in.
            .args(["-device", "qemu-xhci,id=usb"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=ser0,path={},server=on,wait=off",
                sock.display()
            ))
            .args(["-serial", "chardev:ser0"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .args([
                "-display",
                "none",
                "-monitor",
                "none",
                "-nodefaults",
                "-vga",
                "std",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu-system-x86_64");
        let t0 = Instant::now();
        let serial = loop {
            if let Ok(s) = UnixStream::connect(&sock) {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "QEMU's serial socket never came"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut rd = serial.try_clone().expect("clone");
        let s = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rd.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (qemu, serial)
    }

    /// The console's last `n` bytes, whatever the cursor.
    pub fn tail(&self, n: usize) -> String {
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen[seen.len().saturating_sub(n)..]).to_string()
    }

    /// What the serial console showed since the cursor, escape sequences and all.
    pub fn since(&self) -> String {
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen[self.cursor.min(seen.len())..]).to_string()
    }

    /// Waits for `text` on the serial console after the cursor and moves the cursor past
    /// it; answers what came before it.
    pub fn expect(&mut self, text: &str, within: Duration) -> String {
        let mut t0 = Instant::now();
        let (mut len, mut quiet_since) = (0, Instant::now());
        let (mut disk, mut disk_checked) = (None, Instant::now());
        loop {
            {
                let n = self.seen.lock().unwrap().len();
                if n != len {
                    (len, quiet_since) = (n, Instant::now());
                }
            }
            // A guest that reads or writes its disk is working, silent or not: the
            // kernel boots `quiet` and prints nothing until the console's menu, and
            // under TCG on a slow machine that took longer than STUCK_BOOT once (the
            // power cut then landed mid-boot, before the slot was marked good, and
            // GRUB took the other slot).
            if quiet_since.elapsed() > Duration::from_secs(30)
                && disk_checked.elapsed() > Duration::from_secs(10)
            {
                disk_checked = Instant::now();
                let now = self.disk_operations();
                if now.is_some() && disk.is_some() && now != disk {
                    quiet_since = Instant::now();
                }
                disk = now.or(disk);
            }
            let stuck = (quiet_since.elapsed() > STUCK_REBOOT && self.reboot_stuck())
                || (quiet_since.elapsed() > STUCK_BOOT && self.boot_stuck());
            if stuck && self.cycled_at != Some(len) {
                self.power_cycle();
                quiet_since = Instant::now();
                // The new QEMU counts its disk's operations from zero.
                disk = None;
                // The boot after the power button gets the whole wait again.
                t0 = Instant::now();
            }
            {
                // Searched in the raw bytes: firmware and boot loader output is not
                // always UTF-8, and the cursor counts bytes.
                let seen = self.seen.lock().unwrap();
                let tail = &seen[self.cursor.min(seen.len())..];
                if let Some(i) = tail.windows(text.len()).position(|w| w == text.as_bytes()) {
                    let before = String::from_utf8_lossy(&tail[..i]).to_string();
                    self.cursor += i + text.len();
                    return before;
                }
            }
            if t0.elapsed() > within {
                panic!(
                    "waited {within:?} for {text:?} on the serial console; it showed:\n{}",
                    self.since()
                        .chars()
                        .rev()
                        .take(3000)
                        .collect::<String>()
                        .chars()
                        .rev()
                        .collect::<String>()
                );
            }
            if let Ok(Some(st)) = self.qemu.try_wait() {
                panic!(
                    "QEMU ended ({st}) while waiting for {text:?}:\n{}",
                    self.since()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The guest's disk operations so far (reads, writes and flushes of every drive, as
    /// QEMU counts them), or `None` when QMP does not say.
    fn disk_operations(&self) -> Option<u64> {
        let answer = qmp(&self.qmp, "query-blockstats").ok()?;
        let v: serde_json::Value = serde_json::from_str(&answer).ok()?;
        let devices = v.get("return")?.as_array()?;
        Some(
            devices
                .iter()
                .filter_map(|d| d.get("stats"))
                .map(|s| {
                    ["rd_operations", "wr_operations", "flush_operations"]
                        .iter()
                        .filter_map(|k| s.get(*k).and_then(serde_json::Value::as_u64))
                        .sum::<u64>()
                })
                .sum(),
        )
    }

    /// Whether the console's last words are the kernel's `reboot: Restarting system`,
    /// with nothing after them.
    fn reboot_stuck(&self) -> bool {
        let seen = self.seen.lock().unwrap();
        let tail = String::from_utf8_lossy(&seen[seen.len().saturating_sub(200)..]).to_string();
        tail.trim_end().ends_with("reboot: Restarting system")
    }

    /// Whether the guest is on its way up and has not reached the console's menu: the
    /// last `Welcome to GRUB!` comes after the last menu prompt (or there is no prompt
    /// yet). Under TCG a boot has been seen to hang there once in a while, after GRUB's
    /// `Booting `...'` and once right after GRUB cleared the screen, before its menu; the
    /// same image booted on the next try. Asked only once the console and the disk have
    /// been idle for STUCK_BOOT, so the search through the whole console is rare.
    fn boot_stuck(&self) -> bool {
        let seen = self.seen.lock().unwrap();
        let last = |text: &[u8]| seen.windows(text.len()).rposition(|w| w == text);
        match (last(b"Welcome to GRUB!"), last(b"Choose 1-")) {
            (Some(grub), Some(menu)) => grub > menu,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The guest asked for a reset and nothing has come since: under TCG, QEMU has been
    /// seen to stay silent there (no firmware, no GRUB) while the hardware watchdog armed
    /// for the way down did not fire either, and once it stayed silent after QMP's
    /// `system_reset` too. A technician would pull the plug and put it back: QEMU is
    /// stopped and started again on the same disk and firmware variables. What QEMU said
    /// of the guest's state is printed first, so the cause can be followed up.
    fn power_cycle(&mut self) {
        self.cycled_at = Some(self.seen.lock().unwrap().len());
        let status = qmp(&self.qmp, "query-status");
        let reboot = self.reboot_stuck();
        let after = if reboot {
            "'reboot: Restarting system'"
        } else {
            "GRUB, before the console's menu"
        };
        eprintln!(
            "image test: the guest went silent after {after}, its disk idle; QEMU says \
             {status:?}; powering it off and on"
        );
        // GRUB counted the hung boot as its slot's one try (grub.cfg): the hang is
        // QEMU's, not the firmware's, so the try is given back before the power comes
        // back, or GRUB would take the other slot (once the broken one the rollback
        // test left) and the test would follow a rollback nobody asked for.
        let slot = (!reboot)
            .then(|| slot_being_booted(&self.seen.lock().unwrap()))
            .flatten();
        self.power_off();
        if let Some(slot) = slot {
            let disk = self.dir.path().join("disk.img");
            match give_back_try(&disk, slot) {
                Ok(true) => eprintln!("image test: slot {slot}'s try given back in grubenv"),
                Ok(false) => eprintln!("image test: slot {slot} was not marked as tried"),
                Err(e) => eprintln!("image test: grubenv not changed: {e}"),
            }
        }
        self.power_back_on();
    }

    /// The plug pulled and put back: QEMU is stopped without warning to the guest and
    /// started again on the same disk. What the console showed before is not looked at
    /// again.
    pub fn power_cut(&mut self) {
        self.power_off();
        self.power_back_on();
    }

    fn power_off(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        let _ = self.serial.shutdown(std::net::Shutdown::Both);
    }

    fn power_back_on(&mut self) {
        let (qemu, serial) = Self::power_on(&self.netns, self.dir.path(), &self.seen);
        (self.qemu, self.serial) = (qemu, serial);
        self.skip();
    }

    /// Plugs a USB stick (a raw disk image, read-only) into the running box, as a
    /// technician would; it is gone after a power cut.
    pub fn plug_stick(&mut self, image: &Path) {
        let answer = qmp_json(
            &self.qmp,
            &[
                serde_json::json!({"execute": "blockdev-add", "arguments": {
                    "node-name": "stick", "driver": "raw", "read-only": true,
                    "file": {"driver": "file", "filename": image, "read-only": true}}}),
                serde_json::json!({"execute": "device_add", "arguments": {
                    "driver": "usb-storage", "id": "stick0", "drive": "stick",
                    "bus": "usb.0", "removable": true}}),
            ],
        );
        assert!(answer.is_ok(), "the stick was not plugged in: {answer:?}");
    }

    /// Types a line at the console (Enter is CR on a serial terminal).
    pub fn line(&mut self, s: &str) {
        self.serial
            .write_all(format!("{s}\r").as_bytes())
            .expect("serial write");
    }

    /// Moves the cursor to the end: what came before is not looked at again.
    pub fn skip(&mut self) {
        self.cursor = self.seen.lock().unwrap().len();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GRUB's environment block as grub-editenv writes it: header, warning, variables,
    /// '#' up to 1,024 bytes.
    fn grubenv(vars: &str) -> Vec<u8> {
        let mut b = format!(
            "# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than \
             grub-editenv!!!\n{vars}"
        )
        .into_bytes();
        b.resize(1024, b'#');
        b
    }

    #[test]
    fn a_hung_boot_gives_its_slot_try_back_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        let (start, len) = BOOT_PARTITION;
        let mut img = vec![0u8; start as usize + len + 4096];
        let at = start as usize + 77 * 512;
        // GRUB's own binary, earlier on the partition, holds the signature off a sector
        // boundary (its loadenv module), as BOOTX64.EFI does.
        let decoy = b"# GRUB Environment Block\n\0\0LICENSE=GPLv3+\0loadenv\0";
        img[start as usize + 10 * 512 + 352..][..decoy.len()].copy_from_slice(decoy);
        let env = grubenv("ORDER=A B\nA_OK=1\nB_OK=1\nA_TRY=1\nB_TRY=1\n");
        img[at..at + 1024].copy_from_slice(&env);
        // The block as the image was built, left in free space earlier on the partition
        // when the guest's grub-editenv wrote the file again (the one a CI run found
        // first, giving back nothing).
        let stale_at = start as usize + 40 * 512;
        let stale = grubenv("ORDER=A B\nA_OK=1\nB_OK=1\nA_TRY=0\nB_TRY=0\n");
        img[stale_at..stale_at + 1024].copy_from_slice(&stale);
        std::fs::write(&disk, &img).unwrap();
        assert!(give_back_try(&disk, 'B').unwrap());
        let after = std::fs::read(&disk).unwrap();
        let want = grubenv("ORDER=A B\nA_OK=1\nB_OK=1\nA_TRY=1\nB_TRY=0\n");
        assert_eq!(&after[at..at + 1024], &want[..], "only B's try changed");
        let mut expected = img.clone();
        expected[at..at + 1024].copy_from_slice(&want);
        assert!(
            after == expected,
            "nothing but the block changed (the decoy neither)"
        );
        // Not tried: nothing to give back, nothing written.
        assert!(!give_back_try(&disk, 'B').unwrap());
        assert_eq!(std::fs::read(&disk).unwrap(), after);
        // A disk with no environment block is an error, not a guess.
        std::fs::write(&disk, vec![0u8; start as usize + len]).unwrap();
        assert!(give_back_try(&disk, 'A').is_err());
    }

    #[test]
    fn the_slot_being_booted_is_the_last_boot_s() {
        let console = b"Welcome to GRUB!\r\n    Booting `PBX firmware (slot A)'\r\n\
            PBX appliance\r\nreboot: Restarting system\r\nBdsDxe: starting\r\n\
            Welcome to GRUB!\r\n\x1b[H    Booting `PBX firmware (slot B)'";
        assert_eq!(slot_being_booted(console), Some('B'));
        let before_choice = b"Booting `PBX firmware (slot A)'\r\nWelcome to GRUB!\r\n\x1b[H\x1b[J";
        assert_eq!(slot_being_booted(before_choice), None);
        assert_eq!(slot_being_booted(b""), None);
    }
}
