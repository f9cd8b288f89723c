//! A USB stick at the console: the disks that are not the box's own, mounted read-only
//! one file system at a time, and the backups found on them (Kerio 20, restored without
//! a browser: a box after a factory reset, or one whose web admin cannot be reached).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use store::backup::{read_manifest, Manifest};

/// File systems a stick may carry, tried in this order.
const TYPES: [&str; 3] = ["vfat", "exfat", "ext4"];

/// At most this many files are looked at on a stick (a stick full of photos must not
/// keep the console busy).
const MAX_FILES: usize = 2_000;

/// The disks holding a mounted file system (`/`, `/data`, `/boot/efi`...): the box's
/// own, never offered. `mountinfo` is `/proc/self/mountinfo`; `sys` is `/sys`. Mounts
/// under `sticks` (where the consoles mount sticks) do not count.
pub fn own_disks(mountinfo: &str, sys: &Path, sticks: &Path) -> BTreeSet<String> {
    let sticks = sticks.to_string_lossy();
    mountinfo
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(4)
                .is_none_or(|m| !m.starts_with(sticks.as_ref()))
        })
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|dev| !dev.starts_with("0:"))
        .filter_map(|dev| std::fs::canonicalize(sys.join("dev/block").join(dev)).ok())
        .filter_map(|p| {
            // A partition's directory sits in its disk's.
            let p = if p.join("partition").exists() {
                p.parent()?.to_path_buf()
            } else {
                p
            };
            Some(p.file_name()?.to_string_lossy().to_string())
        })
        .collect()
}

/// The block devices that may hold a stick's file system: each partition of a disk
/// that is not the box's own, or the whole disk when it has no partitions ("super
/// floppy" sticks). Loop, RAM, optical, mapper and RAID devices are left out.
pub fn candidates(sys: &Path, own: &BTreeSet<String>) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(sys.join("block")) else {
        return Vec::new();
    };
    let mut disks: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            let virtual_or_internal = ["loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
                || n.ends_with("rpmb")
                || (n.starts_with("mmcblk") && n.contains("boot"));
            !own.contains(n) && !virtual_or_internal
        })
        .collect();
    disks.sort();
    let mut out = Vec::new();
    for d in disks {
        let base = sys.join("block").join(&d);
        let sectors: u64 = std::fs::read_to_string(base.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if sectors == 0 {
            continue; // a card reader without a card
        }
        let mut parts: Vec<String> = std::fs::read_dir(&base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("partition").exists())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        parts.sort();
        if parts.is_empty() {
            out.push(d);
        } else {
            out.extend(parts);
        }
    }
    out
}

/// A stick's file system mounted read-only (no devices, no set-uid, nothing run from
/// it); unmounted when dropped.
pub struct Mounted {
    pub dir: PathBuf,
    pub fstype: &'static str,
}

impl Mounted {
    /// Mounts `dev` at `dir` (made if missing), trying FAT, exFAT and ext4.
    pub fn new(dev: &Path, dir: &Path) -> Result<Mounted, String> {
        use nix::mount::{mount, MsFlags};
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Left mounted by a console that was stopped half-way.
        let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let mut last = String::new();
        for t in TYPES {
            // ext4 would replay its journal even read-only: the stick is only read.
            let options = (t == "ext4").then_some("noload");
            match mount(Some(dev), dir, Some(t), flags, options) {
                Ok(()) => {
                    return Ok(Mounted {
                        dir: dir.to_path_buf(),
                        fstype: t,
                    })
                }
                Err(e) => last = e.desc().to_string(),
            }
        }
        Err(format!(
            "no FAT, exFAT or ext4 file system on {} ({last})",
            dev.display()
        ))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Control characters (an escape sequence in a file name or a manifest) shown as `?`,
/// so that nothing on a stick can rewrite what the technician reads.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A file on the stick that may be a backup.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    /// Its name as the technician sees it, from the stick's top.
    pub name: String,
    pub bytes: u64,
    /// Its manifest, or why it is not a backup the box reads.
    pub manifest: Result<Manifest, String>,
}

/// The `.tar.gz` (or `.tgz`) files at the top of `dir` and one directory down, newest
/// backup first, then the files that are not backups. Hidden files (a Mac's `._`
/// companions) are left out.
pub fn backups(dir: &Path) -> Vec<Found> {
    let mut files = Vec::new();
    let mut seen = 0;
    let mut look = |d: &Path, prefix: &str, subdirs: &mut Vec<(PathBuf, String)>| {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            seen += 1;
            if seen > MAX_FILES {
                return;
            }
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let Ok(t) = e.file_type() else { continue };
            let shown = format!("{prefix}{name}");
            if t.is_dir() {
                subdirs.push((e.path(), format!("{shown}/")));
            } else if t.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
                files.push((e.path(), shown, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    };
    let mut subdirs = Vec::new();
    look(dir, "", &mut subdirs);
    subdirs.sort();
    for (d, prefix) in subdirs {
        look(&d, &prefix, &mut Vec::new());
    }
    let mut found: Vec<Found> = files
        .into_iter()
        .map(|(path, name, bytes)| {
            let manifest = std::fs::File::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| read_manifest(std::io::BufReader::new(f)).map_err(|e| e.to_string()));
            Found {
                path,
                name,
                bytes,
                manifest,
            }
        })
        .collect();
    found.sort_by(|a, b| match (&a.manifest, &b.manifest) {
        (Ok(x), Ok(y)) => y.created.cmp(&x.created).then(a.name.cmp(&b.name)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.name.cmp(&b.name),
    });
    found
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM` (UTC).
pub fn when(unix: u64) -> String {
    logs::stamp::minutes_utc(i64::try_from(unix).unwrap_or(i64::MAX))
}

/// One line of the list: what a backup is, in under 80 columns with its number.
pub fn line(f: &Found) -> String {
    let size = if f.bytes >= 1 << 20 {
        format!("{:.1} MiB", f.bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", f.bytes.div_ceil(1024))
    };
    let name = printable(&f.name);
    match &f.manifest {
        Ok(m) => format!(
            "{name} ({size})\n      made {} UTC on {} by firmware {}: {}",
            when(m.created),
            if m.host.is_empty() {
                "a box".to_string()
            } else {
                printable(&m.host)
            },
            printable(&m.firmware),
            m.parts
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!(
            "{name} ({size})\n{}",
            wrap(&printable(&format!("not a backup the box reads: {e}")))
        ),
    }
}

/// Words in lines of at most 75 columns, each indented by six.
fn wrap(text: &str) -> String {
    let mut lines = vec![String::new()];
    for w in text.split_whitespace() {
        let l = lines.last_mut().expect("one line");
        if !l.is_empty() && l.len() + 1 + w.len() > 69 {
            lines.push(w.to_string());
        } else {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(w);
        }
    }
    lines
        .iter()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(sys: &Path, name: &str, sectors: u64, parts: &[&str]) {
        let d = sys.join("devices/pci0/block").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("size"), format!("{sectors}\n")).unwrap();
        std::fs::create_dir_all(sys.join("block")).unwrap();
        std::os::unix::fs::symlink(&d, sys.join("block").join(name)).unwrap();
        for p in parts {
            std::fs::create_dir_all(d.join(p)).unwrap();
            std::fs::write(d.join(p).join("partition"), "1\n").unwrap();
        }
    }

    #[test]
    fn the_box_s_own_disk_and_virtual_devices_are_never_offered() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path();
        disk(sys, "vda", 1 << 22, &["vda1", "vda2", "vda3"]);
        disk(sys, "sda", 1 << 20, &["sda1", "sda2"]);
        disk(sys, "sdb", 1 << 16, &[]);
        disk(sys, "sdc", 0, &[]); // a card reader without a card
        disk(sys, "loop0", 100, &[]);
        disk(sys, "mmcblk0boot0", 100, &[]);
        std::fs::create_dir_all(sys.join("dev/block")).unwrap();
        std::os::unix::fs::symlink(
            sys.join("devices/pci0/block/vda/vda2"),
            sys.join("dev/block/254:2"),
        )
        .unwrap();
        let mountinfo = "22 1 254:2 / / rw,relatime shared:1 - ext4 /dev/vda2 rw\n\
                         23 22 0:21 / /proc rw shared:2 - proc proc rw\n";
        let sticks = Path::new("/run/pbx-stick");
        let own = own_disks(mountinfo, sys, sticks);
        assert_eq!(own.into_iter().collect::<Vec<_>>(), ["vda"]);
        assert_eq!(
            candidates(sys, &own_disks(mountinfo, sys, sticks)),
            ["sda1", "sda2", "sdb"]
        );
        // A stick left mounted by a console that was stopped is still a stick.
        std::os::unix::fs::symlink(
            sys.join("devices/pci0/block/sda/sda1"),
            sys.join("dev/block/8:1"),
        )
        .unwrap();
        let left = format!("{mountinfo}40 22 8:1 / /run/pbx-stick.77 ro - vfat /dev/sda1 ro\n");
        assert_eq!(
            candidates(sys, &own_disks(&left, sys, sticks)),
            ["sda1", "sda2", "sdb"]
        );
        let data = format!("{mountinfo}40 22 8:1 / /data rw - ext4 /dev/sda1 rw\n");
        assert_eq!(candidates(sys, &own_disks(&data, sys, sticks)), ["sdb"]);
    }

    #[test]
    fn backups_are_listed_newest_first_then_the_files_that_are_not() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("pbx")).unwrap();
        std::fs::create_dir_all(d.join("photos")).unwrap();
        std::fs::write(d.join("notes.tar.gz"), b"not gzip at all").unwrap();
        std::fs::write(d.join("._backup.tar.gz"), b"a Mac's companion").unwrap();
        std::fs::write(d.join("photos/cat.jpg"), b"jpeg").unwrap();
        let data = tempfile::tempdir().unwrap();
        let store = store::Store::open(data.path()).unwrap();
        let origin = store::backup::Origin {
            firmware: "1.2.3".into(),
            board: "x86_64".into(),
            host: "pbx".into(),
        };
        for (name, at) in [
            ("pbx/old.tgz", 1_700_000_000),
            ("new.tar.gz", 1_800_000_000),
        ] {
            store::backup::create(
                &store,
                data.path(),
                &[store::backup::Part::Config],
                &origin,
                at,
                &d.join(name),
            )
            .unwrap();
        }
        let found = backups(d);
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["new.tar.gz", "pbx/old.tgz", "notes.tar.gz"]);
        let first = line(&found[0]);
        assert!(
            first.contains("made 2027-01-15 08:00 UTC on pbx by firmware 1.2.3: config"),
            "{first}"
        );
        assert!(line(&found[2]).contains("not a backup the box reads"));
        assert_eq!(printable("evil\x1b[2Jname"), "evil?[2Jname");
        for l in found.iter().map(line) {
            assert!(l.lines().all(|x| x.len() < 76), "{l}");
        }
    }
}
