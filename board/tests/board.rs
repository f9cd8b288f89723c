//! Board support against real kernel objects: a pseudo-terminal standing in for the
//! serial line, a file standing in for /dev/watchdog (the driver API's writes and magic
//! close are what is checked), and the profiles' consistency.

use board::watchdog::{Feeder, Watchdog};
use board::{Profile, PROFILES};
use nix::sys::termios::{tcgetattr, LocalFlags};

nix::ioctl_read!(tcgets2, b'T', 0x2A, libc::termios2);

/// The line's output speed as the kernel holds it (serialport sets it with termios2).
fn speed(fd: &std::os::fd::OwnedFd) -> u32 {
    let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS2 fills the struct it is given.
    unsafe { tcgets2(std::os::fd::AsRawFd::as_raw_fd(fd), &mut t) }.unwrap();
    t.c_ospeed
}
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn the_serial_line_gets_its_speed_and_keeps_line_editing() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&pty.slave)
    ))
    .unwrap();
    let before = tcgetattr(&pty.slave).unwrap();
    assert!(before.local_flags.contains(LocalFlags::ICANON));
    board::serial::configure(&path, 115_200).unwrap();
    let after = tcgetattr(&pty.slave).unwrap();
    assert_eq!(speed(&pty.slave), 115_200);
    // serialport makes the line raw; the menu needs lines, echo and Ctrl-C as a signal.
    for f in [LocalFlags::ICANON, LocalFlags::ECHO, LocalFlags::ISIG] {
        assert!(after.local_flags.contains(f), "{f:?} lost");
    }
    assert!(board::serial::configure(std::path::Path::new("/dev/ttyS-none"), 115_200).is_err());
    assert!(board::serial::is_serial(std::path::Path::new("/dev/ttyS0")));
    assert!(board::serial::is_serial(std::path::Path::new(
        "/dev/ttyAMA0"
    )));
    assert!(!board::serial::is_serial(std::path::Path::new("/dev/tty1")));
    assert!(!board::serial::is_serial(std::path::Path::new(
        "/dev/pts/3"
    )));
    assert!(!board::serial::is_serial(std::path::Path::new("/dev/ttyS")));
}

#[test]
fn the_watchdog_is_fed_while_healthy_and_disarmed_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("watchdog");
    std::fs::write(&dev, b"").unwrap();
    let mut dog = Watchdog::open(&dev).unwrap();
    // A plain file has no timeout control.
    assert_eq!(dog.set_timeout(30), None);
    let healthy = Arc::new(AtomicBool::new(true));
    let h = healthy.clone();
    let f = Feeder::spawn(dog, Duration::from_millis(50), move || {
        h.load(Ordering::Relaxed)
    });
    std::thread::sleep(Duration::from_millis(400));
    let fed = std::fs::read(&dev).unwrap().len();
    assert!(fed >= 3, "fed {fed} times in 400 ms");
    healthy.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(120));
    let frozen = std::fs::read(&dev).unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read(&dev).unwrap().len(),
        frozen,
        "fed while unhealthy"
    );
    f.stop().unwrap();
    let all = std::fs::read(&dev).unwrap();
    assert_eq!(all.last(), Some(&b'V'), "no magic close");
    assert!(Watchdog::open(&dir.path().join("missing")).is_err());
}

#[test]
fn profiles_name_what_each_board_has() {
    let names: Vec<_> = PROFILES.iter().map(|p| p.name).collect();
    assert_eq!(names, ["x86-1nic", "x86-isdn", "qemu-x86_64", "rpi4"]);
    for p in PROFILES {
        assert!(!p.consoles.is_empty() && !p.nics.is_empty(), "{}", p.name);
        assert_eq!(
            p.nics[0], "eth0",
            "{}: the factory address goes on eth0",
            p.name
        );
        assert!(
            p.consoles.iter().any(|c| c.1 == 115_200),
            "{}: no serial console",
            p.name
        );
        assert!(p.watchdog.is_some(), "{}", p.name);
        // The compatible must match the image's RAUC system.conf.
        assert!(p.compatible == "pbx-x86_64" || p.compatible == "pbx-rpi4");
    }
    let pi = Profile::by_name("rpi4").unwrap();
    assert_eq!(pi.buttons[0].hold_secs, 10);
    assert!(pi
        .leds
        .iter()
        .any(|l| l.role == "status" && l.gpio.is_some()));
    assert_eq!(pi.console_speed("ttyAMA0"), Some(115_200));
    assert!(Profile::by_name("x86-isdn")
        .unwrap()
        .telephony
        .contains(&"wcte13xp"));
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rootfs-overlay/etc/rauc/system.conf"
    ))
    .unwrap();
    assert!(conf.contains("compatible=pbx-x86_64"));
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../buildroot-external/board/rpi4/rootfs-overlay/etc/rauc/system.conf"
    ))
    .unwrap();
    assert!(conf.contains("compatible=pbx-rpi4"));

    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Profile::detect(dir.path()), None);
    std::fs::create_dir_all(dir.path().join("etc/pbx")).unwrap();
    std::fs::write(dir.path().join("etc/pbx/board"), "qemu-x86_64\n").unwrap();
    assert_eq!(Profile::detect(dir.path()).unwrap().name, "qemu-x86_64");
    std::fs::write(dir.path().join("etc/pbx/board"), "toaster\n").unwrap();
    assert_eq!(Profile::detect(dir.path()), None);
}

#[test]
fn a_heartbeat_ages_until_it_beats_again() {
    let h = board::watchdog::Heartbeat::new();
    assert!(h.age() < Duration::from_millis(50));
    std::thread::sleep(Duration::from_millis(120));
    assert!(h.age() >= Duration::from_millis(100));
    h.beat();
    assert!(h.age() < Duration::from_millis(50));
}
