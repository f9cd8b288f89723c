//! Kills a writer process with SIGKILL at random moments and checks that every
//! acknowledged commit survives and that the database always opens.

use config::{Config, Extension};
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use store::Store;

const ROUNDS: usize = 200;

/// The writer: runs only when the parent test starts this binary with STORE_KILL_DIR.
#[test]
fn writer_child() {
    let Ok(dir) = std::env::var("STORE_KILL_DIR") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let (mut rev, mut cfg) = store.config().unwrap();
    loop {
        let n = format!("{}", 1000 + rev);
        cfg.extensions.push(Extension::new(&n));
        rev = store
            .commit(rev, &cfg, "kill-test", &format!("add {n}"), 0)
            .unwrap();
        println!("ACK {rev}");
    }
}

#[test]
fn acknowledged_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut last_acked = 0u64;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
            .env("STORE_KILL_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ACK ") {
                    let _ = tx.send(n.trim().parse::<u64>().unwrap());
                }
            }
        });
        let mut acked = Vec::new();
        if round % 5 == 0 {
            // Kill during start-up and recovery.
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..60_000)));
        } else {
            // Kill in the middle of writing: after the first acknowledged commit.
            if let Ok(n) = rx.recv_timeout(Duration::from_secs(10)) {
                acked.push(n);
            }
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..20_000)));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter());
        for n in acked {
            last_acked = last_acked.max(n);
        }
        let store = Store::open(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: database does not open: {e}"));
        let (rev, cfg): (u64, Config) = store.config().unwrap();
        assert!(
            rev >= last_acked,
            "round {round}: acknowledged revision {last_acked} lost, found {rev}"
        );
        cfg.validate().unwrap();
        assert_eq!(
            cfg.extensions.len() as u64,
            rev,
            "round {round}: configuration does not match its revision"
        );
        let log = store.log().unwrap();
        assert_eq!(
            log.len() as u64,
            rev,
            "round {round}: config log does not match the revision"
        );
        last_acked = rev;
    }
    eprintln!(
        "{ROUNDS} kill rounds, {last_acked} commits, {:?}",
        started.elapsed()
    );
}
