//! A backup uploaded for recovery (docs/backup.md): any bytes are staged whole or
//! refused with a reason, and a refusal leaves no staging behind.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

/// One data directory for the run: each staging replaces the one before.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let d = data_dir();
    match store::backup::stage(d, data, "fuzz") {
        Ok(_) => assert!(store::backup::pending(d), "staged but not ready"),
        Err(_) => assert!(
            !d.join(".restore").exists(),
            "a refused backup left its staging"
        ),
    }
});
