//! Runs bindgen over DAHDI's `dahdi/user.h`. The header is found in, in order:
//! `DAHDI_INCLUDE_DIR` (Buildroot points it at the staging directory of its
//! dahdi-linux package), then Debian's `dahdi-dkms` sources (`/usr/src/dahdi-*/include`).

use std::path::PathBuf;

fn include_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DAHDI_INCLUDE_DIR") {
        return PathBuf::from(d);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/src")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dahdi-"))
                && p.join("include/dahdi/user.h").exists()
        })
        .map(|p| p.join("include"))
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "dahdi/user.h not found: install Debian's dahdi-dkms (apt-get install \
             --no-install-recommends dahdi-dkms) or set DAHDI_INCLUDE_DIR to the directory \
             holding dahdi/user.h"
        )
    })
}

fn main() {
    println!("cargo:rerun-if-env-changed=DAHDI_INCLUDE_DIR");
    let dir = include_dir();
    let header = dir.join("dahdi/user.h");
    println!("cargo:rerun-if-changed={}", header.display());
    // For the ioctl-number test, which compiles C against the same header.
    println!("cargo:rustc-env=DAHDI_INCLUDE_DIR={}", dir.display());
    println!("cargo:include={}", dir.display());
    let bindings = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <dahdi/user.h>\n")
        .clang_arg(format!("-I{}", dir.display()))
        .allowlist_type("dahdi_.*")
        .allowlist_var("DAHDI_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen over dahdi/user.h");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(&out).expect("write bindings");
}
