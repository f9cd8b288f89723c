//! The hardware watchdog (`/dev/watchdog`, Linux watchdog API): pbxd opens it and feeds
//! it while its loop runs. If pbxd hangs, or dies without the magic close, the board
//! resets itself when the timeout runs out.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A loop's sign of life, read from other threads: the watchdog feeder and the front
/// panel's status LED both ask how long ago it last beat.
#[derive(Debug)]
pub struct Heartbeat {
    started: Instant,
    last_ms: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat that has just beaten.
    pub fn new() -> Arc<Heartbeat> {
        Arc::new(Heartbeat {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    /// The loop is alive now.
    pub fn beat(&self) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Since the last beat.
    pub fn age(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc_int);
#[allow(non_camel_case_types)]
type libc_int = std::ffi::c_int;

/// An open watchdog device.
pub struct Watchdog {
    file: File,
    path: PathBuf,
}

impl Watchdog {
    /// Opens (and so arms) the watchdog at `path`.
    pub fn open(path: &Path) -> std::io::Result<Watchdog> {
        let file = OpenOptions::new().write(true).open(path)?;
        Ok(Watchdog {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Asks the driver for `secs`; answers what it set, or `None` when the device has
    /// no such control (a plain file in tests, or a fixed-timeout watchdog).
    pub fn set_timeout(&mut self, secs: u32) -> Option<u32> {
        use std::os::fd::AsRawFd;
        let mut t = libc_int::try_from(secs).ok()?;
        // SAFETY: the descriptor is open and `t` lives across the call.
        match unsafe { wdioc_settimeout(self.file.as_raw_fd(), &mut t) } {
            Ok(_) => u32::try_from(t).ok(),
            Err(_) => None,
        }
    }

    /// One keepalive: the ioctl where the driver has it, and a write, which every
    /// driver takes.
    pub fn feed(&mut self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut dummy: libc_int = 0;
        // SAFETY: as above.
        let _ = unsafe { wdioc_keepalive(self.file.as_raw_fd(), &mut dummy) };
        self.file.write_all(b"\0")?;
        self.file.flush()
    }

    /// Disarms the watchdog with the magic close ('V') and closes it: an orderly stop
    /// must not reset the box.
    pub fn close(mut self) -> std::io::Result<()> {
        self.file.write_all(b"V")?;
        self.file.flush()
    }

    /// The device's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A thread that feeds a watchdog every `interval` while `healthy()` says so, and stops
/// feeding (so the board resets) when it does not.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<Watchdog>>>,
}

impl Feeder {
    /// Starts feeding `dog`.
    pub fn spawn(
        mut dog: Watchdog,
        interval: Duration,
        healthy: impl Fn() -> bool + Send + 'static,
    ) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let step = Duration::from_millis(100).min(interval);
                let mut waited = interval;
                while !s.load(Ordering::Relaxed) {
                    if waited >= interval {
                        waited = Duration::ZERO;
                        if healthy() {
                            if let Err(e) = dog.feed() {
                                eprintln!("watchdog {}: {e}", dog.path().display());
                            }
                        }
                    }
                    std::thread::sleep(step);
                    waited += step;
                }
                Some(dog)
            })
            .ok();
        Feeder { stop, thread }
    }

    /// Stops feeding and disarms the watchdog (orderly shutdown).
    pub fn stop(mut self) -> std::io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().and_then(|t| t.join().ok()).flatten() {
            Some(dog) => dog.close(),
            None => Ok(()),
        }
    }
}
