//! Links Debian's static libpri (package libpri-dev) into this test-only crate, with a
//! small C shim that flattens libpri's event union (built by the `cc` crate).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim.c");
    cc::Build::new()
        .file("shim.c")
        .warnings(true)
        .compile("prishim");
    let lib = ["/usr/lib/libpri.a", "/usr/lib/x86_64-linux-gnu/libpri.a"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("libpri.a not found: apt-get install libpri-dev"));
    let dir = std::path::Path::new(lib).parent().unwrap();
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=pri");
}
