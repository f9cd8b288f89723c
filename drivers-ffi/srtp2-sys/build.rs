//! Runs bindgen over libsrtp2's `srtp2/srtp.h` and links the library. The header is
//! found in `SRTP2_INCLUDE_DIR` (Buildroot points it at the staging directory of its
//! libsrtp package), else in `/usr/include` (Debian's libsrtp2-dev).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=SRTP2_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=SRTP2_LIB_DIR");
    let dir = std::env::var_os("SRTP2_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    let header = dir.join("srtp2/srtp.h");
    if !header.exists() {
        panic!(
            "{} not found: install Debian's libsrtp2-dev (apt-get install libsrtp2-dev) or \
             set SRTP2_INCLUDE_DIR to the directory holding srtp2/srtp.h",
            header.display()
        );
    }
    println!("cargo:rerun-if-changed={}", header.display());
    if let Some(lib) = std::env::var_os("SRTP2_LIB_DIR") {
        println!(
            "cargo:rustc-link-search=native={}",
            PathBuf::from(lib).display()
        );
    }
    println!("cargo:rustc-link-lib=srtp2");
    let bindings = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <srtp2/srtp.h>\n")
        .clang_arg(format!("-I{}", dir.display()))
        .allowlist_function("srtp_.*")
        .allowlist_type("srtp_.*")
        .allowlist_var("SRTP_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen over srtp2/srtp.h");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("bindings.rs");
    bindings.write_to_file(&out).expect("write bindings");
}
