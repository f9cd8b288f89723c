//! Links Debian's static libpri (package libpri-dev) into this test-only crate.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lib = ["/usr/lib/libpri.a", "/usr/lib/x86_64-linux-gnu/libpri.a"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("libpri.a not found: apt-get install libpri-dev"));
    let dir = std::path::Path::new(lib).parent().unwrap();
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=pri");
}
