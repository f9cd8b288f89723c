//! Backup and restore of the data partition (Kerio 20).
//!
//! A backup is one gzip-compressed tar archive, readable with `tar -tzf`:
//! - `manifest.json` first: format, firmware version, data schema version, board, host
//!   name, date, configuration revision and the parts it holds;
//! - `db.dump` (the `config` part): every tree of the sled database written out
//!   record by record (configuration, users and their password hashes, the config log,
//!   call history, security log, bans); a database file copied while in use could be
//!   torn, a dump cannot;
//! - `data/<dir>/...`: the files of the parts' directories on the data partition;
//! - `SHA256SUMS` last: the SHA-256 of every file above, in `sha256sum` format.
//!
//! A restore is checked whole before anything changes: [`stage`] unpacks into
//! `DATA/.restore/new` (format, schema, paths, sizes, checksums, and the database dump
//! opening as this firmware's store) and only then writes `READY`. The next start
//! applies it before the store opens ([`apply_pending`]): the current directories of
//! the parts go to `.restore/old` and the staged ones take their place, journaled with
//! markers so that a power cut at any point is finished at the next start. Once the
//! restored store opened, [`finish`] drops the old directories; if it did not,
//! [`roll_back`] puts them back. A refused archive leaves the box as it was.

use crate::{Store, StoreError, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path};

/// Version of the archive layout.
pub const FORMAT: u32 = 1;
/// Where backups are kept on the data partition.
pub const DIR: &str = "backups";
/// Where a restore is staged and journaled.
const RESTORE: &str = ".restore";
/// Where a finished or abandoned `.restore` goes to be deleted.
const TRASH: &str = ".restore-trash";
const MANIFEST: &str = "manifest.json";
const DUMP: &str = "db.dump";
const SUMS: &str = "SHA256SUMS";
const DUMP_MAGIC: &[u8; 8] = b"PBXDUMP1";
/// Room left free on the data partition after a restore is staged.
const RESERVE: u64 = 16 << 20;
/// What each file or directory of a restore is counted as besides its bytes (a block).
const ENTRY_COST: u64 = 4096;
/// Most files and directories a backup may hold, and most trees its database.
const MAX_ENTRIES: u64 = 200_000;
const MAX_TREES: usize = 1000;
/// Largest field of a database dump (a tree name, a key or a value).
const MAX_FIELD: u64 = 64 << 20;

/// What a backup can hold (Kerio's check boxes); each part is directories of DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Config,
    Voicemail,
    Sounds,
    Recordings,
    Firmware,
}

impl Part {
    pub const ALL: [Part; 5] = [
        Part::Config,
        Part::Voicemail,
        Part::Sounds,
        Part::Recordings,
        Part::Firmware,
    ];
    /// What a backup holds when nobody chose: all but call recordings and phone
    /// firmware, which are large and come back from elsewhere.
    pub const DEFAULT: [Part; 3] = [Part::Config, Part::Voicemail, Part::Sounds];

    pub fn name(self) -> &'static str {
        match self {
            Part::Config => "config",
            Part::Voicemail => "voicemail",
            Part::Sounds => "sounds",
            Part::Recordings => "recordings",
            Part::Firmware => "firmware",
        }
    }

    pub fn parse(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == s)
    }

    /// What the part holds, in words (the backup page's check boxes).
    pub fn label(self) -> &'static str {
        match self {
            Part::Config => "Configuration, users and passwords, certificates and keys, network and time settings, call history, logs of changes and security",
            Part::Voicemail => "Voicemail messages and greetings",
            Part::Sounds => "Uploaded prompts and music on hold",
            Part::Recordings => "Call recordings",
            Part::Firmware => "Phone firmware uploaded for provisioning",
        }
    }

    /// The directories of the data partition the part is made of (`db` is the store).
    pub fn dirs(self) -> &'static [&'static str] {
        match self {
            Part::Config => &["db", "web", "tls", "system"],
            Part::Voicemail => &["voicemail"],
            Part::Sounds => &["sounds", "music"],
            Part::Recordings => &["recordings"],
            Part::Firmware => &["provisioning"],
        }
    }
}

/// The first entry of a backup: what it is and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Firmware version that made it.
    pub firmware: String,
    /// Data schema version of the store it was made from.
    pub schema: u64,
    pub board: String,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Configuration revision at the time (0 without the `config` part).
    pub revision: u64,
    pub parts: Vec<Part>,
}

/// What a manifest says about the box making the backup.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub firmware: String,
    pub board: String,
    pub host: String,
}

/// Why a backup could not be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("not a backup of this box: {0}")]
    NotABackup(String),
    #[error("the backup is damaged: {0}")]
    Corrupt(String),
    #[error(
        "this backup was made by firmware {firmware} with data schema {schema}, newer than \
         this firmware understands ({SCHEMA_VERSION}): update the firmware first, then restore"
    )]
    TooNew { firmware: String, schema: u64 },
    #[error("not enough room on the data partition to unpack the backup (more than {free_mib} MiB needed)")]
    NoRoom { free_mib: u64 },
    #[error(
        "this backup was made by newer firmware ({firmware}, archive format {format}; this \
         firmware reads {FORMAT}): update the firmware first, then restore"
    )]
    FormatTooNew { firmware: String, format: u32 },
    #[error("{0}")]
    Invalid(String),
}

impl From<sled::Error> for BackupError {
    fn from(e: sled::Error) -> Self {
        BackupError::Store(StoreError::Db(e))
    }
}

fn corrupt(what: impl std::fmt::Display) -> BackupError {
    BackupError::Corrupt(what.to_string())
}

impl Store {
    /// Writes every tree of the database out, record by record (a backup's `db.dump`):
    /// the magic, then `T` and a tree name, `K` with a key and a value for each record,
    /// and `E` at the end; every field a 32-bit big-endian length and its bytes.
    pub fn dump(&self, w: &mut impl Write) -> Result<(), BackupError> {
        w.write_all(DUMP_MAGIC)?;
        for name in self.db.tree_names() {
            let t = self.db.open_tree(&name)?;
            w.write_all(b"T")?;
            put(w, &name)?;
            for kv in t.iter() {
                let (k, v) = kv?;
                w.write_all(b"K")?;
                put(w, &k)?;
                put(w, &v)?;
            }
        }
        w.write_all(b"E")?;
        Ok(())
    }
}

fn put(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    let n = u32::try_from(b.len()).map_err(|_| io::Error::other("record too large"))?;
    w.write_all(&n.to_be_bytes())?;
    w.write_all(b)
}

fn field(r: &mut impl Read) -> Result<Vec<u8>, BackupError> {
    let mut n = [0u8; 4];
    r.read_exact(&mut n)
        .map_err(|_| corrupt("database dump cut short"))?;
    let n = u64::from(u32::from_be_bytes(n));
    if n > MAX_FIELD {
        return Err(corrupt("database dump: a record is too large"));
    }
    // Grown as the bytes come: a length the dump does not back costs nothing.
    let mut v = Vec::new();
    r.take(n).read_to_end(&mut v)?;
    if v.len() as u64 != n {
        return Err(corrupt("database dump cut short"));
    }
    Ok(v)
}

/// Reads a database dump into `db`.
fn import_dump(r: &mut impl Read, db: &sled::Db) -> Result<(), BackupError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| corrupt("database dump cut short"))?;
    if &magic != DUMP_MAGIC {
        return Err(corrupt("database dump: unknown format"));
    }
    let mut tree: Option<sled::Tree> = None;
    let mut trees = 0;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)
            .map_err(|_| corrupt("database dump cut short"))?;
        match tag[0] {
            b'T' => {
                trees += 1;
                if trees > MAX_TREES {
                    return Err(corrupt("database dump: too many trees"));
                }
                tree = Some(db.open_tree(field(r)?)?);
            }
            b'K' => {
                let t = tree
                    .as_ref()
                    .ok_or_else(|| corrupt("database dump: a record before its tree"))?;
                let k = field(r)?;
                t.insert(k, field(r)?)?;
            }
            b'E' => break,
            _ => return Err(corrupt("database dump: unknown record")),
        }
    }
    if r.read(&mut [0u8; 1])? != 0 {
        return Err(corrupt("database dump: data after its end"));
    }
    db.flush()?;
    Ok(())
}

/// Makes a backup of `parts` at `out` (written beside it first, renamed when whole).
pub fn create(
    store: &Store,
    data: &Path,
    parts: &[Part],
    origin: &Origin,
    now: u64,
    out: &Path,
) -> Result<Manifest, BackupError> {
    let parts: Vec<Part> = parts
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if parts.is_empty() {
        return Err(BackupError::Invalid(
            "choose at least one part to back up".into(),
        ));
    }
    let dir = out.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("backup");
    let tmp = dir.join(format!(".partial-{name}"));
    let dump = dir.join(format!(".partial-{name}.dump"));
    let r = write_archive(store, data, &parts, origin, now, &tmp, &dump);
    let _ = fs::remove_file(&dump);
    match r.and_then(|m| {
        fs::rename(&tmp, out)?;
        File::open(dir)?.sync_all()?;
        Ok(m)
    }) {
        Ok(m) => Ok(m),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

type Tar = tar::Builder<flate2::write::GzEncoder<BufWriter<File>>>;

fn write_archive(
    store: &Store,
    data: &Path,
    parts: &[Part],
    origin: &Origin,
    now: u64,
    tmp: &Path,
    dump: &Path,
) -> Result<Manifest, BackupError> {
    // A backup holds password hashes and private keys: for the daemon's eyes only.
    let file = private_file(tmp)?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let manifest = Manifest {
        format: FORMAT,
        firmware: origin.firmware.clone(),
        schema: SCHEMA_VERSION,
        board: origin.board.clone(),
        host: origin.host.clone(),
        created: now,
        revision: if parts.contains(&Part::Config) {
            store.config()?.0
        } else {
            0
        },
        parts: parts.to_vec(),
    };
    let mut sums = Vec::new();
    let m = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    append(&mut tar, MANIFEST, &m[..], m.len() as u64, now, &mut sums)?;
    if parts.contains(&Part::Config) {
        // Through a file beside the archive: call history can be large.
        let mut w = BufWriter::new(private_file(dump)?);
        store.dump(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let f = File::open(dump)?;
        let len = f.metadata()?.len();
        append(&mut tar, DUMP, f, len, now, &mut sums)?;
    }
    for p in parts {
        for d in p.dirs().iter().filter(|d| **d != "db") {
            let path = data.join(d);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                add_tree(&mut tar, &path, &format!("data/{d}"), &mut sums)?;
            }
        }
    }
    let mut list = String::new();
    for (hash, name) in &sums {
        list.push_str(&format!("{hash}  {name}\n"));
    }
    let mut ignore = Vec::new();
    append(
        &mut tar,
        SUMS,
        list.as_bytes(),
        list.len() as u64,
        now,
        &mut ignore,
    )?;
    let gz = tar.into_inner()?;
    let w = gz.finish()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(manifest)
}

/// A new file only its owner reads.
fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

fn mtime(m: &fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Adds a directory with everything under it (files and directories; links, sockets
/// and devices are not data and are left out, as are names that are not UTF-8).
fn add_tree(
    tar: &mut Tar,
    dir: &Path,
    name: &str,
    sums: &mut Vec<(String, String)>,
) -> Result<(), BackupError> {
    let meta = fs::symlink_metadata(dir)?;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(mtime(&meta));
    tar.append_data(&mut h, format!("{name}/"), io::empty())?;
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(file) = e.file_name().to_str().map(str::to_string) else {
            tracing::warn!(path = %e.path().display(), "not backed up: the name is not UTF-8");
            continue;
        };
        let path = e.path();
        // Something removed meanwhile (a message deleted) is simply not in the backup.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let entry = format!("{name}/{file}");
        if meta.is_dir() {
            add_tree(tar, &path, &entry, sums)?;
        } else if meta.is_file() {
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            append(tar, &entry, f, meta.len(), mtime(&meta), sums)?;
        }
    }
    Ok(())
}

/// Adds a file of `len` bytes and notes its checksum.
fn append(
    tar: &mut Tar,
    name: &str,
    r: impl Read,
    len: u64,
    mtime: u64,
    sums: &mut Vec<(String, String)>,
) -> Result<(), BackupError> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    let mut s = Snapshot {
        inner: r.take(len),
        left: len,
        hash: Sha256::new(),
    };
    tar.append_data(&mut h, name, &mut s)?;
    sums.push((hex::encode(s.hash.finalize()), name.to_string()));
    Ok(())
}

/// A file's first `left` bytes as it was when listed: a file that grew meanwhile (a
/// message being recorded) is cut there, one that shrank is padded with zeros, so the
/// entry always matches its header and its checksum.
struct Snapshot<R> {
    inner: R,
    left: u64,
    hash: Sha256,
}

impl<R: Read> Read for Snapshot<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads the manifest of a backup (its first entry) without unpacking the rest.
pub fn read_manifest(archive: impl Read) -> Result<Manifest, BackupError> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut entries = ar.entries().map_err(corrupt)?;
    let e = entries
        .next()
        .ok_or_else(|| BackupError::NotABackup("the archive is empty".into()))?
        .map_err(|e| BackupError::NotABackup(format!("not a gzip-compressed tar archive ({e})")))?;
    manifest_of(e).map(|(m, _)| m)
}

/// The manifest entry read and checked, with its bytes' checksum.
fn manifest_of(mut e: tar::Entry<'_, impl Read>) -> Result<(Manifest, String), BackupError> {
    let name = e.path().map_err(corrupt)?.to_string_lossy().into_owned();
    if name != MANIFEST || !e.header().entry_type().is_file() {
        return Err(BackupError::NotABackup(format!(
            "it starts with {name:?}, not {MANIFEST}"
        )));
    }
    if e.size() > 64 << 10 {
        return Err(corrupt("manifest.json is too large"));
    }
    let mut b = Vec::new();
    e.read_to_end(&mut b).map_err(corrupt)?;
    let m: Manifest = serde_json::from_slice(&b)
        .map_err(|e| BackupError::NotABackup(format!("manifest.json: {e}")))?;
    if m.format > FORMAT {
        return Err(BackupError::FormatTooNew {
            firmware: m.firmware,
            format: m.format,
        });
    }
    if m.format != FORMAT {
        return Err(BackupError::NotABackup(format!(
            "archive format {} (this firmware reads {FORMAT})",
            m.format
        )));
    }
    if m.schema > SCHEMA_VERSION {
        return Err(BackupError::TooNew {
            firmware: m.firmware,
            schema: m.schema,
        });
    }
    if m.parts.is_empty() {
        return Err(corrupt("the manifest names no parts"));
    }
    Ok((m, hex::encode(Sha256::digest(&b))))
}

/// What a staged restore will do at the next start.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    manifest: Manifest,
    /// The directories of DATA the restore replaces that the backup brings (the others
    /// of its parts it removes); each must be staged.
    staged: Vec<String>,
    /// Who asked for it, from where (for the security log at the next start).
    by: String,
}

/// How a recovery staged at the console begins its `by` (then the device it came from):
/// the security log shows user `console` at `USB stick sdb1`, and pbxd puts the backup's
/// network settings in force at once (whoever sits at the console is not cut off).
pub const BY_CONSOLE: &str = "console from USB stick";

/// A recovery put in place at start: the backup's manifest and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub manifest: Manifest,
    pub by: String,
}

/// Checks a backup and stages it for the next start (nothing in force changes). A
/// restore staged before and not yet applied is replaced. `by` (who, from where) goes
/// to the security log when it is put in place.
pub fn stage(data: &Path, archive: impl Read, by: &str) -> Result<Manifest, BackupError> {
    let root = data.join(RESTORE);
    if exists(&root) {
        retire(data, &root)?;
    }
    let new = root.join("new");
    fs::create_dir_all(&new)?;
    let r = stage_into(data, &new, archive).and_then(|mut plan| {
        plan.by = by.to_string();
        write_marker(
            &root.join("READY"),
            &serde_json::to_vec(&plan).expect("plan serialises"),
        )?;
        Ok(plan.manifest)
    });
    if r.is_err() {
        let _ = retire(data, &root);
    }
    r
}

/// Takes `.restore` out of the way in one step (a rename), then deletes it: a power cut
/// can never leave a journal marker beside a half-deleted directory.
fn retire(data: &Path, root: &Path) -> io::Result<()> {
    let trash = data.join(TRASH);
    if exists(&trash) {
        fs::remove_dir_all(&trash)?;
    }
    fs::rename(root, &trash)?;
    sync_dir(data)?;
    fs::remove_dir_all(&trash)
}

/// Free bytes and free inodes on the partition of `dir`.
fn free_space(dir: &Path) -> Result<(u64, u64), BackupError> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    Ok((
        u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size())),
        u64::from(s.files_available()),
    ))
}

fn stage_into(data: &Path, new: &Path, archive: impl Read) -> Result<Plan, BackupError> {
    let (bytes, inodes) = free_space(data)?;
    let budget = bytes.saturating_sub(RESERVE);
    // A file system that does not count inodes says 0 free: then only the cap holds.
    let max_entries = if inodes == 0 {
        MAX_ENTRIES
    } else {
        MAX_ENTRIES.min(inodes / 2)
    };
    let (mut written, mut count) = (0u64, 0u64);
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut entries = ar.entries().map_err(corrupt)?;
    let first = entries
        .next()
        .ok_or_else(|| BackupError::NotABackup("the archive is empty".into()))?
        .map_err(|e| BackupError::NotABackup(format!("not a gzip-compressed tar archive ({e})")))?;
    let (m, manifest_sum) = manifest_of(first)?;
    let allowed: BTreeSet<&str> = dirs_of(&m).filter(|d| *d != "db").collect();
    let mut hashes = BTreeMap::from([(MANIFEST.to_string(), manifest_sum)]);
    let mut dirs_seen = BTreeSet::new();
    let mut sums: Option<BTreeMap<String, String>> = None;
    for entry in entries {
        let mut e = entry.map_err(corrupt)?;
        if sums.is_some() {
            return Err(corrupt("entries after SHA256SUMS"));
        }
        let path = e.path().map_err(corrupt)?.into_owned();
        let name = path
            .to_str()
            .ok_or_else(|| corrupt("a name that is not UTF-8"))?
            .trim_end_matches('/')
            .to_string();
        let kind = e.header().entry_type();
        if name == SUMS {
            if e.size() > 16 << 20 {
                return Err(corrupt("SHA256SUMS is too large"));
            }
            let mut s = String::new();
            e.read_to_string(&mut s).map_err(corrupt)?;
            sums = Some(parse_sums(&s)?);
            continue;
        }
        if name == MANIFEST || hashes.contains_key(&name) || dirs_seen.contains(&name) {
            return Err(corrupt(format!("{name} is in the archive twice")));
        }
        count += 1;
        written = written.saturating_add(ENTRY_COST);
        if count > max_entries {
            return Err(corrupt(format!(
                "more than {max_entries} files and directories"
            )));
        }
        let target = if name == DUMP {
            if !m.parts.contains(&Part::Config) || !kind.is_file() {
                return Err(corrupt("a database dump without the config part"));
            }
            new.join(DUMP)
        } else {
            let rel = name
                .strip_prefix("data/")
                .ok_or_else(|| corrupt(format!("unexpected entry {name:?}")))?;
            let comps: Vec<Component> = Path::new(rel).components().collect();
            let plain =
                !comps.is_empty() && comps.iter().all(|c| matches!(c, Component::Normal(_)));
            let top = rel.split('/').next().unwrap_or("");
            if !plain || !allowed.contains(top) {
                return Err(corrupt(format!(
                    "{name:?} is outside what the manifest's parts hold"
                )));
            }
            // A part's own directories are directories.
            if comps.len() == 1 && !kind.is_dir() {
                return Err(corrupt(format!("{name} is not a directory")));
            }
            new.join(rel)
        };
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(|e| clash(&name, e))?;
            dirs_seen.insert(name);
            continue;
        }
        if !kind.is_file() {
            return Err(corrupt(format!(
                "{name}: only files and directories are restored (links and devices are refused)"
            )));
        }
        written = written.saturating_add(e.size());
        if written > budget {
            return Err(BackupError::NoRoom {
                free_mib: budget >> 20,
            });
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| clash(&name, e))?;
        }
        let mut out = BufWriter::new(private_file(&target).map_err(|e| clash(&name, e))?);
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = e.read(&mut buf).map_err(corrupt)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        hashes.insert(name, hex::encode(hash.finalize()));
    }
    let sums = sums.ok_or_else(|| corrupt("no SHA256SUMS at its end: the archive is cut short"))?;
    if sums.keys().ne(hashes.keys()) {
        return Err(corrupt(
            "SHA256SUMS lists other files than the archive holds",
        ));
    }
    if let Some((name, _)) = hashes.iter().find(|(k, h)| sums.get(*k) != Some(h)) {
        return Err(corrupt(format!("{name}: its checksum does not match")));
    }
    if m.parts.contains(&Part::Config) {
        let dump = new.join(DUMP);
        if !dump.is_file() {
            return Err(corrupt("the config part has no database dump"));
        }
        let db = open_db(&new.join("db"))?;
        import_dump(&mut BufReader::new(File::open(&dump)?), &db)?;
        drop(db);
        fs::remove_file(&dump)?;
        // The restored database must open as this firmware's store.
        let s = Store::open(new).map_err(|e| match e {
            StoreError::SchemaTooNew { found } => BackupError::TooNew {
                firmware: m.firmware.clone(),
                schema: found,
            },
            e => corrupt(e),
        })?;
        s.config().map_err(corrupt)?;
    }
    if written > budget {
        return Err(BackupError::NoRoom {
            free_mib: budget >> 20,
        });
    }
    let staged = dirs_of(&m)
        .filter(|d| new.join(d).is_dir())
        .map(str::to_string)
        .collect();
    Ok(Plan {
        manifest: m,
        staged,
        by: String::new(),
    })
}

/// The directories of DATA a backup's parts are made of: what its recovery replaces.
fn dirs_of(m: &Manifest) -> impl Iterator<Item = &'static str> + '_ {
    m.parts.iter().flat_map(|p| p.dirs().iter().copied())
}

/// An entry that cannot be written where a file and a directory share a name is the
/// archive's fault, not the box's.
fn clash(name: &str, e: io::Error) -> BackupError {
    use io::ErrorKind::{AlreadyExists, IsADirectory, NotADirectory};
    match e.kind() {
        AlreadyExists | IsADirectory | NotADirectory => {
            corrupt(format!("{name}: a file and a directory of the same name"))
        }
        _ => e.into(),
    }
}

fn parse_sums(s: &str) -> Result<BTreeMap<String, String>, BackupError> {
    let mut out = BTreeMap::new();
    for line in s.lines().filter(|l| !l.is_empty()) {
        let (hash, name) = line
            .split_once("  ")
            .ok_or_else(|| corrupt("SHA256SUMS: a line is not \"hash  name\""))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(corrupt("SHA256SUMS: not a SHA-256"));
        }
        if out
            .insert(name.to_string(), hash.to_ascii_lowercase())
            .is_some()
        {
            return Err(corrupt(format!("SHA256SUMS names {name} twice")));
        }
    }
    Ok(out)
}

/// Opens a sled database the way the store does: with no background flusher. Every
/// commit flushes before it is acknowledged, and without the flusher thread dropping
/// the store releases the database at once (with it, a reopen right after a drop could
/// fail on sled's file lock).
pub(crate) fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
    sled::Config::new()
        .path(path)
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(None)
        .open()
}

/// Writes a small file so that it is either whole or absent after a power cut.
fn write_marker(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn read_plan(path: &Path) -> Result<Plan, BackupError> {
    let plan: Plan = serde_json::from_slice(&fs::read(path)?).map_err(corrupt)?;
    // Only the parts' own directories are ever moved.
    if let Some(d) = plan
        .staged
        .iter()
        .find(|d| !dirs_of(&plan.manifest).any(|x| x == d.as_str()))
    {
        return Err(corrupt(format!("the staged restore names {d:?}")));
    }
    Ok(plan)
}

/// Puts a staged restore in place (called at start, before the store opens). Answers
/// the backup now in place, until [`finish`] or [`roll_back`].
pub fn apply_pending(data: &Path) -> Result<Option<Applied>, BackupError> {
    let trash = data.join(TRASH);
    if exists(&trash) {
        fs::remove_dir_all(&trash)?;
    }
    let root = data.join(RESTORE);
    if !exists(&root) {
        return Ok(None);
    }
    let (ready, moved, done) = (root.join("READY"), root.join("MOVED"), root.join("DONE"));
    if exists(&root.join("ROLLBACK")) {
        roll_back(data)?;
        return Ok(None);
    }
    if exists(&done) {
        return Ok(Some(read_plan(&done)?.applied()));
    }
    if !exists(&ready) {
        // A staging cut off before it was whole: nothing in force was touched.
        retire(data, &root)?;
        return Ok(None);
    }
    let plan = read_plan(&ready)?;
    let (old, new) = (root.join("old"), root.join("new"));
    if !exists(&moved) {
        // Nothing in force was touched yet: a staging that is not whole is dropped.
        if let Some(d) = plan.staged.iter().find(|d| !new.join(d).is_dir()) {
            retire(data, &root)?;
            return Err(corrupt(format!(
                "the staged recovery lacks {d}; it was dropped and the box is as it was"
            )));
        }
        fs::create_dir_all(&old)?;
        // Each directory moves whole (rename is atomic), so running this again after
        // an interruption moves only what is left. A directory that was not there is
        // kept as an empty one, so that a roll-back knows to take the restored one away.
        for d in dirs_of(&plan.manifest) {
            let (cur, keep) = (data.join(d), old.join(d));
            if exists(&cur) {
                fs::rename(&cur, &keep)?;
            } else if !exists(&keep) {
                fs::create_dir(&keep)?;
            }
        }
        sync_dir(data)?;
        sync_dir(&old)?;
        write_marker(&moved, b"")?;
    }
    for d in dirs_of(&plan.manifest) {
        let staged = new.join(d);
        if exists(&staged) {
            fs::rename(&staged, data.join(d))?;
        }
    }
    sync_dir(data)?;
    fs::rename(&ready, &done)?;
    sync_dir(&root)?;
    Ok(Some(plan.applied()))
}

impl Plan {
    fn applied(self) -> Applied {
        Applied {
            manifest: self.manifest,
            by: self.by,
        }
    }
}

/// The restored store opened: the directories it replaced go.
pub fn finish(data: &Path) -> io::Result<()> {
    retire(data, &data.join(RESTORE))
}

/// The restored box did not come up: the directories it replaced come back. Safe to
/// run again after an interruption.
pub fn roll_back(data: &Path) -> Result<(), BackupError> {
    let root = data.join(RESTORE);
    let marker = root.join("ROLLBACK");
    let plan = if exists(&marker) {
        read_plan(&marker)?
    } else {
        let done = root.join("DONE");
        if !exists(&done) {
            // Nothing was swapped (a failure before the swap finished is finished
            // forward at the next start, never half rolled back).
            return Ok(());
        }
        let plan = read_plan(&done)?;
        fs::rename(&done, &marker)?;
        sync_dir(&root)?;
        plan
    };
    let old = root.join("old");
    for d in dirs_of(&plan.manifest) {
        let keep = old.join(d);
        if exists(&keep) {
            let cur = data.join(d);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&cur)?,
                Ok(_) => fs::remove_file(&cur)?,
                Err(_) => {}
            }
            fs::rename(&keep, &cur)?;
        }
    }
    sync_dir(data)?;
    retire(data, &root)?;
    Ok(())
}

/// Whether a restore is staged and waiting for the next start.
pub fn pending(data: &Path) -> bool {
    exists(&data.join(RESTORE).join("READY"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::{Config, Extension};

    fn origin() -> Origin {
        Origin {
            firmware: "1.2.3".into(),
            board: "x86".into(),
            host: "pbx".into(),
        }
    }

    /// A box with a configuration, a certificate, a voicemail message, a prompt and a
    /// recording.
    fn a_box() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = Store::open(d).unwrap();
        let mut c = Config::default();
        c.extensions.push(Extension::new("101"));
        s.commit(0, &c, "test", "add 101", 5).unwrap();
        drop(s);
        for (p, b) in [
            ("web/cert.pem", "CERT"),
            ("voicemail/101/msg1.wav", "MESSAGE"),
            ("sounds/welcome.wav", "WELCOME"),
            ("recordings/r1.wav", "RECORDING"),
            ("pbxd.log", "LOG"),
        ] {
            fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
            fs::write(d.join(p), b).unwrap();
        }
        fs::create_dir_all(d.join("voicemail/102")).unwrap();
        (dir, c)
    }

    fn backup_of(d: &Path, parts: &[Part]) -> Vec<u8> {
        let s = Store::open(d).unwrap();
        let out = d.join(DIR).join("b.tar.gz");
        let m = create(&s, d, parts, &origin(), 1_700_000_000, &out).unwrap();
        assert_eq!(m.revision, u64::from(parts.contains(&Part::Config)));
        assert_eq!(m.schema, SCHEMA_VERSION);
        fs::read(&out).unwrap()
    }

    fn restore(d: &Path, archive: &[u8]) -> Result<Manifest, BackupError> {
        let m = stage(d, archive, "admin at 192.0.2.1")?;
        let applied = apply_pending(d).unwrap().unwrap();
        assert_eq!(
            (&applied.manifest, applied.by.as_str()),
            (&m, "admin at 192.0.2.1")
        );
        Store::open(d).unwrap();
        finish(d).unwrap();
        Ok(m)
    }

    fn read(d: &Path, p: &str) -> Option<String> {
        fs::read_to_string(d.join(p)).ok()
    }

    #[test]
    fn a_backup_restored_on_an_empty_box_gives_the_same_box() {
        let (from, c) = a_box();
        let archive = backup_of(from.path(), &Part::DEFAULT);
        assert_eq!(read_manifest(&archive[..]).unwrap().parts, Part::DEFAULT);
        let to = tempfile::tempdir().unwrap();
        let d = to.path();
        fs::create_dir_all(d.join("voicemail/999")).unwrap();
        fs::create_dir_all(d.join("recordings")).unwrap();
        fs::write(d.join("recordings/mine.wav"), "MINE").unwrap();
        let m = restore(d, &archive).unwrap();
        assert_eq!(m.firmware, "1.2.3");
        let s = Store::open(d).unwrap();
        assert_eq!(s.config().unwrap(), (1, c));
        assert_eq!(s.log().unwrap()[0].what, "add 101");
        assert_eq!(read(d, "web/cert.pem").as_deref(), Some("CERT"));
        assert_eq!(
            read(d, "voicemail/101/msg1.wav").as_deref(),
            Some("MESSAGE")
        );
        assert!(d.join("voicemail/102").is_dir(), "empty boxes come back");
        assert!(
            !d.join("voicemail/999").exists(),
            "a part is replaced whole"
        );
        assert_eq!(read(d, "sounds/welcome.wav").as_deref(), Some("WELCOME"));
        assert_eq!(
            read(d, "recordings/mine.wav").as_deref(),
            Some("MINE"),
            "a part not in the backup is left alone"
        );
        assert!(!d.join("pbxd.log").exists() && !d.join(RESTORE).exists());
    }

    /// An archive made by hand: `entries` in order, SHA256SUMS computed over the files
    /// unless `sums` is given.
    fn craft(entries: &[(&str, tar::EntryType, &[u8])], sums: Option<&str>) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let mut list = String::new();
        for (name, kind, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.set_link_name("/etc/passwd").unwrap();
            }
            // Names as they are, even the ones append_data would refuse ("..").
            let b = name.as_bytes();
            h.as_old_mut().name[..b.len()].copy_from_slice(b);
            h.set_cksum();
            t.append(&h, *body).unwrap();
            if kind.is_file() {
                list.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(body))));
            }
        }
        let sums = sums.unwrap_or(&list).to_string();
        let mut h = tar::Header::new_gnu();
        h.set_size(sums.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, SUMS, sums.as_bytes()).unwrap();
        t.into_inner().unwrap().finish().unwrap()
    }

    fn manifest(schema: u64, parts: &[Part]) -> Vec<u8> {
        serde_json::to_vec(&Manifest {
            format: FORMAT,
            firmware: "9.9".into(),
            schema,
            board: "x86".into(),
            host: "pbx".into(),
            created: 1,
            revision: 0,
            parts: parts.to_vec(),
        })
        .unwrap()
    }

    /// Everything under `d`, with contents: what must not change when a restore is
    /// refused.
    fn snapshot(d: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![d.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in fs::read_dir(&p).unwrap().map(Result::unwrap) {
                let path = e.path();
                let rel = path.strip_prefix(d).unwrap().display().to_string();
                if path.is_dir() {
                    out.insert(rel, vec![]);
                    stack.push(path);
                } else {
                    out.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    fn refused(archive: &[u8]) -> BackupError {
        let (dir, _) = a_box();
        let before = snapshot(dir.path());
        let e = stage(dir.path(), archive, "test").unwrap_err();
        assert_eq!(apply_pending(dir.path()).unwrap(), None);
        assert_eq!(snapshot(dir.path()), before, "{e}: nothing changes");
        e
    }

    #[test]
    fn a_newer_schema_is_refused_and_changes_nothing() {
        use tar::EntryType::Regular;
        let m = manifest(SCHEMA_VERSION + 1, &[Part::Voicemail]);
        let e = refused(&craft(&[(MANIFEST, Regular, &m)], None));
        assert!(matches!(e, BackupError::TooNew { schema, .. } if schema == SCHEMA_VERSION + 1));
        assert!(e.to_string().contains("update the firmware first"), "{e}");
    }

    #[test]
    fn damaged_archives_are_refused_and_change_nothing() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let (from, _) = a_box();
        let good = backup_of(from.path(), &Part::DEFAULT);
        // Cut short, a byte flipped in the compressed data, not gzip at all.
        assert!(matches!(
            refused(&good[..good.len() / 2]),
            BackupError::Corrupt(_)
        ));
        let mut flipped = good.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x40;
        refused(&flipped);
        assert!(matches!(
            refused(b"PK\x03\x04 a zip file"),
            BackupError::NotABackup(_)
        ));
        assert!(matches!(refused(b""), BackupError::NotABackup(_)));
        let m = manifest(SCHEMA_VERSION, &[Part::Voicemail]);
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (
                craft(
                    &[("other.txt", Regular, b"x"), (MANIFEST, Regular, &m)],
                    None,
                ),
                "not manifest.json",
            ),
            (
                craft(&[(MANIFEST, Regular, b"{\"format\": 1}")], None),
                "manifest.json",
            ),
            (
                craft(
                    &[
                        (MANIFEST, Regular, &m),
                        ("data/voicemail/../../etc/x", Regular, b"x"),
                    ],
                    None,
                ),
                "outside",
            ),
            (
                craft(
                    &[
                        (MANIFEST, Regular, &m),
                        ("data/web/cert.pem", Regular, b"x"),
                    ],
                    None,
                ),
                "outside",
            ),
            (
                craft(
                    &[
                        (MANIFEST, Regular, &m),
                        ("/data/voicemail/x", Regular, b"x"),
                    ],
                    None,
                ),
                "unexpected",
            ),
            (
                craft(
                    &[(MANIFEST, Regular, &m), ("data/voicemail/l", Symlink, b"")],
                    None,
                ),
                "links",
            ),
            (
                craft(
                    &[(MANIFEST, Regular, &m), ("data/voicemail/h", Link, b"")],
                    None,
                ),
                "links",
            ),
            (
                craft(
                    &[(MANIFEST, Regular, &m), ("data/voicemail", Regular, b"x")],
                    None,
                ),
                "not a directory",
            ),
            (
                craft(
                    &[
                        (MANIFEST, Regular, &m),
                        ("data/voicemail/a", Regular, b"x"),
                        ("data/voicemail/a/b", Regular, b"y"),
                    ],
                    None,
                ),
                "a file and a directory of the same name",
            ),
            (
                craft(
                    &[
                        (MANIFEST, Regular, &m),
                        ("data/voicemail/a/", Directory, b""),
                        ("data/voicemail/a", Regular, b"x"),
                    ],
                    None,
                ),
                "twice",
            ),
            (
                craft(
                    &[(MANIFEST, Regular, &m), ("data/voicemail/a", Regular, b"x")],
                    Some(&format!(
                        "{}  {MANIFEST}\n{}  data/voicemail/a\n",
                        hex::encode(Sha256::digest(&m)),
                        "0".repeat(64)
                    )),
                ),
                "checksum",
            ),
            (
                craft(
                    &[(MANIFEST, Regular, &m), ("data/voicemail/a", Regular, b"x")],
                    Some(""),
                ),
                "lists other files",
            ),
            (
                craft(
                    &[
                        (MANIFEST, Regular, &m),
                        ("data/voicemail/", Directory, b""),
                        ("data/voicemail/", Directory, b""),
                    ],
                    None,
                ),
                "twice",
            ),
            (
                craft(
                    &[(MANIFEST, Regular, &m), (DUMP, Regular, b"PBXDUMP1E")],
                    None,
                ),
                "without the config part",
            ),
        ];
        let mc = manifest(SCHEMA_VERSION, &[Part::Config]);
        for dump in [
            &b"PBXDUMP1"[..],
            b"PBXDUMP1K",
            b"PBXDUMP1T\xff\xff\xff\xffE",
            b"XXXX",
        ] {
            cases.push((
                craft(&[(MANIFEST, Regular, &mc), (DUMP, Regular, dump)], None),
                "database dump",
            ));
        }
        cases.push((craft(&[(MANIFEST, Regular, &mc)], None), "no database dump"));
        for (archive, why) in cases {
            let e = refused(&archive).to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn an_interrupted_restore_is_finished_at_the_next_start() {
        let (from, c) = a_box();
        let archive = backup_of(from.path(), &[Part::Config, Part::Voicemail]);
        let to = tempfile::tempdir().unwrap();
        let d = to.path();
        fs::create_dir_all(d.join("voicemail/7")).unwrap();
        fs::create_dir_all(d.join("web")).unwrap();
        stage(d, &archive[..], "test").unwrap();
        // Power cut after the first directory went aside.
        let old = d.join(RESTORE).join("old");
        fs::create_dir_all(&old).unwrap();
        fs::rename(d.join("voicemail"), old.join("voicemail")).unwrap();
        assert!(apply_pending(d).unwrap().is_some());
        // And again after the swap, before the store opened.
        assert!(apply_pending(d).unwrap().is_some());
        assert_eq!(Store::open(d).unwrap().config().unwrap(), (1, c));
        assert!(d.join("voicemail/101/msg1.wav").is_file() && !d.join("voicemail/7").exists());
        finish(d).unwrap();
        assert_eq!(apply_pending(d).unwrap(), None);
    }

    #[test]
    fn a_restore_cut_off_after_the_old_directories_went_aside_is_finished() {
        let (from, c) = a_box();
        let archive = backup_of(from.path(), &[Part::Config, Part::Voicemail]);
        let to = tempfile::tempdir().unwrap();
        let d = to.path();
        fs::create_dir_all(d.join("voicemail/7")).unwrap();
        drop(Store::open(d).unwrap());
        stage(d, &archive[..], "test").unwrap();
        // Everything aside and MOVED written, nothing moved in yet.
        let root = d.join(RESTORE);
        let old = root.join("old");
        fs::create_dir_all(&old).unwrap();
        for dir in ["db", "voicemail"] {
            fs::rename(d.join(dir), old.join(dir)).unwrap();
        }
        for dir in ["web", "tls", "system"] {
            fs::create_dir(old.join(dir)).unwrap();
        }
        write_marker(&root.join("MOVED"), b"").unwrap();
        assert!(apply_pending(d).unwrap().is_some());
        assert_eq!(Store::open(d).unwrap().config().unwrap(), (1, c));
        assert!(d.join("voicemail/101/msg1.wav").is_file());
        finish(d).unwrap();
        assert!(!root.exists() && !d.join(TRASH).exists());
    }

    #[test]
    fn a_second_upload_replaces_the_staged_one_and_a_staging_that_lost_a_part_is_dropped() {
        let (from, _) = a_box();
        let config_only = backup_of(from.path(), &[Part::Config]);
        let voicemail_only = backup_of(from.path(), &[Part::Voicemail]);
        let (to, c) = a_box();
        let d = to.path();
        fs::write(d.join("voicemail/101/msg1.wav"), "MINE").unwrap();
        stage(d, &config_only[..], "first").unwrap();
        stage(d, &voicemail_only[..], "second").unwrap();
        assert_eq!(apply_pending(d).unwrap().unwrap().by, "second");
        finish(d).unwrap();
        assert_eq!(
            read(d, "voicemail/101/msg1.wav").as_deref(),
            Some("MESSAGE")
        );
        // A staging whose database went missing (a power cut while it was replaced)
        // is never swapped in: the box keeps its own store.
        stage(d, &config_only[..], "third").unwrap();
        fs::remove_dir_all(d.join(RESTORE).join("new/db")).unwrap();
        let e = apply_pending(d).unwrap_err();
        assert!(e.to_string().contains("lacks db"), "{e}");
        assert!(!d.join(RESTORE).exists());
        assert_eq!(Store::open(d).unwrap().config().unwrap(), (1, c));
    }

    #[test]
    fn backups_and_restored_files_are_for_the_daemon_only() {
        use std::os::unix::fs::PermissionsExt;
        let (from, _) = a_box();
        let archive = backup_of(from.path(), &[Part::Config]);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&from.path().join(DIR).join("b.tar.gz")), 0o600);
        let to = tempfile::tempdir().unwrap();
        restore(to.path(), &archive).unwrap();
        assert_eq!(mode(&to.path().join("web/cert.pem")), 0o600);
    }

    #[test]
    fn a_restore_that_does_not_come_up_is_rolled_back() {
        let (from, _) = a_box();
        let archive = backup_of(from.path(), &[Part::Config, Part::Voicemail]);
        let (to, c) = a_box();
        let d = to.path();
        let mut c2 = c.clone();
        c2.extensions.push(Extension::new("555"));
        Store::open(d)
            .unwrap()
            .commit(1, &c2, "test", "add 555", 6)
            .unwrap();
        fs::remove_dir_all(d.join("web")).unwrap();
        fs::write(d.join("voicemail/101/msg1.wav"), "MINE").unwrap();
        stage(d, &archive[..], "test").unwrap();
        apply_pending(d).unwrap().unwrap();
        assert!(d.join("web/cert.pem").is_file());
        roll_back(d).unwrap();
        assert_eq!(Store::open(d).unwrap().config().unwrap(), (2, c2));
        assert_eq!(read(d, "voicemail/101/msg1.wav").as_deref(), Some("MINE"));
        assert!(
            fs::read_dir(d.join("web")).unwrap().next().is_none(),
            "a directory the restore brought is taken away again"
        );
        assert!(!d.join(RESTORE).exists());
    }

    #[test]
    fn the_configuration_names_the_same_parts() {
        assert_eq!(Part::ALL.map(Part::name), config::BACKUP_PARTS);
        assert_eq!(
            Part::DEFAULT.map(Part::name).to_vec(),
            config::BackupSchedule::default().parts
        );
        assert!(Part::ALL.iter().all(|p| Part::parse(p.name()) == Some(*p)));
    }

    #[test]
    fn a_file_that_changes_while_it_is_archived_keeps_its_listed_length() {
        let mut s = Snapshot {
            inner: &b"abc"[..],
            left: 5,
            hash: Sha256::new(),
        };
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        let mut s = Snapshot {
            inner: (&b"abcdef"[..]).take(2),
            left: 2,
            hash: Sha256::new(),
        };
        out.clear();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
        assert_eq!(
            hex::encode(s.hash.finalize()),
            hex::encode(Sha256::digest(b"ab"))
        );
    }
}
