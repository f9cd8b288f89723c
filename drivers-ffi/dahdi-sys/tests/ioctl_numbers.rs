//! Every ioctl number declared with nix equals the one gcc computes from the same
//! `dahdi/user.h`, and the structures have the size gcc gives them.

use std::process::Command;

const STRUCTS: &[(&str, usize)] = &[
    (
        "struct dahdi_params",
        std::mem::size_of::<dahdi_sys::dahdi_params>(),
    ),
    (
        "struct dahdi_spaninfo",
        std::mem::size_of::<dahdi_sys::dahdi_spaninfo>(),
    ),
    (
        "struct dahdi_bufferinfo",
        std::mem::size_of::<dahdi_sys::dahdi_bufferinfo>(),
    ),
    (
        "struct dahdi_maintinfo",
        std::mem::size_of::<dahdi_sys::dahdi_maintinfo>(),
    ),
    (
        "struct dahdi_versioninfo",
        std::mem::size_of::<dahdi_sys::dahdi_versioninfo>(),
    ),
];

#[test]
fn ioctl_numbers_match_the_c_header() {
    let codes = dahdi_sys::request_codes();
    assert!(codes.len() >= 15);
    let mut c = String::from("#include <stdio.h>\n#include <dahdi/user.h>\nint main(void) {\n");
    for (name, _) in &codes {
        c.push_str(&format!(
            "  printf(\"{name} %lu\\n\", (unsigned long)({name}));\n"
        ));
    }
    for (s, _) in STRUCTS {
        c.push_str(&format!("  printf(\"{s} %zu\\n\", sizeof({s}));\n"));
    }
    c.push_str("  return 0;\n}\n");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("numbers.c");
    let exe = dir.path().join("numbers");
    std::fs::write(&src, c).unwrap();
    let out = Command::new("gcc")
        .arg(format!("-I{}", env!("DAHDI_INCLUDE_DIR")))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let from_c: std::collections::HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    for (name, code) in &codes {
        assert_eq!(
            from_c.get(name),
            Some(code),
            "{name}: nix says {code:#x}, C says {:#x?}",
            from_c.get(name)
        );
    }
    for (s, size) in STRUCTS {
        assert_eq!(from_c.get(s), Some(&(*size as u64)), "sizeof({s})");
    }
}
