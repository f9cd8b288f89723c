//! The log files on /data: one writer thread appends, rolls a file over when it would
//! pass its size or a new day starts, keeps a bounded number of rolled-over files and
//! deletes those past their age. Writes are batched (flushed when the queue is empty), so
//! a flood of lines costs the card few writes, and the queue is bounded, so a flood
//! costs the exchange no memory: what does not fit is counted and said in the log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::stamp;

/// The logs kept in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLog {
    Error,
    Warning,
    Debug,
    Kernel,
}

impl FileLog {
    pub const ALL: [FileLog; 4] = [
        FileLog::Error,
        FileLog::Warning,
        FileLog::Debug,
        FileLog::Kernel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FileLog::Error => "error",
            FileLog::Warning => "warning",
            FileLog::Debug => "debug",
            FileLog::Kernel => "kernel",
        }
    }

    pub fn from_name(s: &str) -> Option<FileLog> {
        FileLog::ALL.into_iter().find(|l| l.name() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The longest line written (a SIP message in the debug log is cut there).
pub const MAX_LINE: usize = 16 * 1024;

/// Lines waiting for the writer at most; more are dropped and counted.
pub const QUEUE: usize = 2048;

/// Bytes of lines waiting for the writer at most (whole SIP messages are long): more
/// are dropped and counted.
pub const QUEUE_BYTES: usize = 4 << 20;

/// The most rolled-over files a log keeps (the settings allow 1-50).
const MAX_KEEP: u32 = 50;

/// How often the writer looks for rolled-over files past their age.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// How long a log whose file cannot be written is left alone before the next try (a
/// read-only or full partition must not cost a try and a complaint per line).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Sizes and ages, changed by the settings while the writer runs.
pub(crate) struct Rotation {
    pub size: AtomicU64,
    pub keep: AtomicU32,
    pub days: AtomicU32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            size: AtomicU64::new(1024 * 1024),
            keep: AtomicU32::new(5),
            days: AtomicU32::new(30),
        }
    }
}

pub(crate) enum Msg {
    /// A line (without its newline) stamped at `unix` seconds.
    Line(FileLog, i64, String),
    Clear(FileLog, SyncSender<io::Result<()>>),
    /// Answered once every line queued before it is on the disk.
    Flush(SyncSender<()>),
    /// The rotation settings changed: files past `keep` or `days` go now.
    Prune,
}

/// The path of a log's `n`th file: 0 is the one written, 1 the newest rolled over.
pub fn path_of(dir: &Path, log: FileLog, n: u32) -> PathBuf {
    if n == 0 {
        dir.join(format!("{}.log", log.name()))
    } else {
        dir.join(format!("{}.log.{n}", log.name()))
    }
}

/// The log's files that exist, newest first.
pub fn files_of(dir: &Path, log: FileLog) -> Vec<PathBuf> {
    (0..=MAX_KEEP)
        .map(|n| path_of(dir, log, n))
        .filter(|p| p.is_file())
        .collect()
}

struct Open {
    file: BufWriter<File>,
    size: u64,
    /// The day (since 1970) of the file's first line.
    day: i64,
}

pub(crate) struct Writer {
    dir: PathBuf,
    rotation: Arc<Rotation>,
    open: [Option<Open>; 4],
    dropped: Arc<AtomicU64>,
    /// Bytes queued for the writer (the sender adds, the writer takes away).
    queued: Arc<AtomicU64>,
    /// A log that could not be written is skipped (its lines counted) until then.
    failed_until: [Option<Instant>; 4],
    pruned_at: Instant,
}

impl Writer {
    pub fn new(
        dir: PathBuf,
        rotation: Arc<Rotation>,
        dropped: Arc<AtomicU64>,
        queued: Arc<AtomicU64>,
    ) -> Writer {
        Writer {
            dir,
            rotation,
            open: [None, None, None, None],
            dropped,
            queued,
            failed_until: [None; 4],
            pruned_at: Instant::now(),
        }
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, rx: Receiver<Msg>) {
        self.prune();
        loop {
            match rx.recv_timeout(PRUNE_EVERY) {
                Ok(m) => {
                    self.handle(m);
                    // Whatever else is queued goes in the same batch.
                    while let Ok(m) = rx.try_recv() {
                        self.handle(m);
                    }
                    self.note_dropped();
                    self.flush();
                    // A busy box (lines all the time) prunes too.
                    if self.pruned_at.elapsed() > PRUNE_EVERY {
                        self.prune();
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.prune(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Line(log, unix, line) => {
                self.queued.fetch_sub(line.len() as u64, Ordering::Relaxed);
                let i = log.index();
                if self.failed_until[i].is_some_and(|t| Instant::now() < t) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.failed_until[i] = None;
                if let Err(e) = self.write(log, unix, &line) {
                    // Nowhere better to say it: stderr goes to the journal (and a
                    // stderr that fails is no reason to stop).
                    let _ = writeln!(
                        io::stderr(),
                        "log {}: {e}; its lines are dropped for {} s",
                        log.name(),
                        RETRY_AFTER_FAILURE.as_secs()
                    );
                    self.open[i] = None;
                    self.failed_until[i] = Some(Instant::now() + RETRY_AFTER_FAILURE);
                }
            }
            Msg::Clear(log, reply) => {
                let _ = reply.send(self.clear(log));
            }
            Msg::Flush(reply) => {
                self.note_dropped();
                self.flush();
                let _ = reply.send(());
            }
            Msg::Prune => self.prune(),
        }
    }

    /// A line saying how many lines the queue could not take, in the debug log.
    fn note_dropped(&mut self) {
        let n = self.dropped.swap(0, Ordering::Relaxed);
        if n > 0 {
            let now = stamp::unix_now();
            let line = format!(
                "{} WARN  system: {n} log lines were dropped (more came than the card could take)",
                stamp::rfc3339(now, 0)
            );
            let _ = self.write(FileLog::Debug, now, &line);
        }
    }

    fn write(&mut self, log: FileLog, unix: i64, line: &str) -> io::Result<()> {
        let day = unix.div_euclid(86_400);
        let limit = self.rotation.size.load(Ordering::Relaxed).max(2);
        // No file passes the limit, not even with one long entry.
        let mut line = line;
        if line.len() as u64 + 1 > limit {
            let mut cut = limit as usize - 1;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line = &line[..cut];
        }
        let len = line.len() as u64 + 1;
        let slot = &mut self.open[log.index()];
        if slot.is_none() {
            *slot = Some(open(&self.dir, log, day)?);
        }
        let o = slot.as_mut().expect("opened");
        // A line stamped a little before midnight that comes after it does not roll
        // the new day's file again.
        if o.size > 0 && (o.size + len > limit || day > o.day) {
            self.open[log.index()] = None;
            self.roll(log)?;
            self.open[log.index()] = Some(open(&self.dir, log, day)?);
        }
        let o = self.open[log.index()].as_mut().expect("opened");
        o.file.write_all(line.as_bytes())?;
        o.file.write_all(b"\n")?;
        o.size += len;
        Ok(())
    }

    /// The file written becomes `.1`, `.1` becomes `.2`, and so on; what passes `keep`
    /// is deleted.
    fn roll(&mut self, log: FileLog) -> io::Result<()> {
        let keep = self
            .rotation
            .keep
            .load(Ordering::Relaxed)
            .clamp(1, MAX_KEEP);
        for n in keep..=MAX_KEEP {
            remove(&path_of(&self.dir, log, n))?;
        }
        for n in (1..keep).rev() {
            let from = path_of(&self.dir, log, n);
            if from.exists() {
                fs::rename(&from, path_of(&self.dir, log, n + 1))?;
            }
        }
        fs::rename(path_of(&self.dir, log, 0), path_of(&self.dir, log, 1))?;
        self.prune_log(log);
        Ok(())
    }

    fn clear(&mut self, log: FileLog) -> io::Result<()> {
        self.open[log.index()] = None;
        for n in 0..=MAX_KEEP {
            remove(&path_of(&self.dir, log, n))?;
        }
        Ok(())
    }

    fn flush(&mut self) {
        for o in self.open.iter_mut().flatten() {
            let _ = o.file.flush();
        }
    }

    fn prune(&mut self) {
        self.pruned_at = Instant::now();
        for log in FileLog::ALL {
            self.prune_log(log);
        }
    }

    /// Deletes the log's rolled-over files last written more than `days` ago, and those
    /// past `keep` (the setting may have been lowered).
    fn prune_log(&self, log: FileLog) {
        let days = self.rotation.days.load(Ordering::Relaxed) as u64;
        let keep = self
            .rotation
            .keep
            .load(Ordering::Relaxed)
            .clamp(1, MAX_KEEP);
        let max_age = Duration::from_secs(days * 86_400);
        for n in 1..=MAX_KEEP {
            let p = path_of(&self.dir, log, n);
            let old = fs::metadata(&p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > max_age);
            if n > keep || old {
                let _ = fs::remove_file(&p);
            }
        }
    }
}

fn remove(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens the log's file for appending; its day is that of its first line (`today`
/// for a new or empty file).
fn open(dir: &Path, log: FileLog, today: i64) -> io::Result<Open> {
    fs::create_dir_all(dir)?;
    let path = path_of(dir, log, 0);
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let size = file.metadata()?.len();
    let mut first = [0u8; 10];
    let day = if size >= 10 {
        let mut r = File::open(&path)?;
        r.read_exact(&mut first)?;
        std::str::from_utf8(&first)
            .ok()
            .and_then(stamp::day_of)
            .unwrap_or(today)
    } else {
        today
    };
    Ok(Open {
        file: BufWriter::with_capacity(64 * 1024, file),
        size,
        day,
    })
}

/// Up to `limit` entries of the log holding `query` (any case; all for an empty query),
/// newest first, and whether there were more. An entry is one line, with the indented
/// lines that continue it.
pub fn search(dir: &Path, log: FileLog, query: &str, limit: usize) -> (Vec<String>, bool) {
    let q = query.to_lowercase();
    let mut found = Vec::new();
    // Every file opened first: one rolled over meanwhile is read once, under its old
    // name.
    let opened: Vec<File> = files_of(dir, log)
        .iter()
        .filter_map(|p| File::open(p).ok())
        .collect();
    for f in opened {
        // One file at a time: a file is at most the size setting. An entry is a line
        // and the indented lines after it (a SIP message).
        let mut entries: Vec<String> = Vec::new();
        for l in BufReader::new(f).split(b'\n').map_while(Result::ok) {
            let l = String::from_utf8_lossy(&l);
            match entries.last_mut() {
                Some(e) if l.starts_with(' ') => {
                    e.push('\n');
                    e.push_str(&l);
                }
                _ => entries.push(l.into_owned()),
            }
        }
        for l in entries.into_iter().rev() {
            if q.is_empty() || l.to_lowercase().contains(&q) {
                if found.len() == limit {
                    return (found, true);
                }
                found.push(l);
            }
        }
    }
    (found, false)
}

/// The bytes and files the log holds now.
pub fn usage(dir: &Path, log: FileLog) -> (u64, usize) {
    let files = files_of(dir, log);
    let bytes = files
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    (bytes, files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn writer(dir: &Path, size: u64, keep: u32) -> Writer {
        let r = Rotation::default();
        r.size.store(size, Ordering::Relaxed);
        r.keep.store(keep, Ordering::Relaxed);
        Writer::new(
            dir.to_path_buf(),
            Arc::new(r),
            Arc::default(),
            Arc::default(),
        )
    }

    #[test]
    fn a_flood_rolls_over_and_never_passes_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let mut w = writer(d.path(), 4096, 3);
        let t = 1_764_900_000;
        for i in 0..5_000 {
            let line = format!(
                "{} DEBUG sip: line {i:05} {}",
                stamp::rfc3339(t, 0),
                "x".repeat(40)
            );
            w.write(FileLog::Debug, t, &line).unwrap();
        }
        w.flush();
        let files = files_of(d.path(), FileLog::Debug);
        assert_eq!(files.len(), 4, "{files:?}");
        for p in &files {
            assert!(fs::metadata(p).unwrap().len() <= 4096, "{p:?}");
        }
        let (bytes, n) = usage(d.path(), FileLog::Debug);
        assert!(bytes <= 4 * 4096 && n == 4, "{bytes} {n}");
        // The newest line is first, and lines come in order across the files.
        let (lines, more) = search(d.path(), FileLog::Debug, "", 100);
        assert!(more);
        assert!(lines[0].contains("line 04999"), "{}", lines[0]);
        assert!(lines[99].contains("line 04900"), "{}", lines[99]);
        let (hits, more) = search(d.path(), FileLog::Debug, "LINE 0489", 100);
        assert_eq!((hits.len(), more), (10, false));
        // Fewer kept: the extra files go at the next roll.
        w.rotation.keep.store(1, Ordering::Relaxed);
        for i in 0..100 {
            let line = format!(
                "{} DEBUG sip: more {i} {}",
                stamp::rfc3339(t, 0),
                "y".repeat(40)
            );
            w.write(FileLog::Debug, t, &line).unwrap();
        }
        assert_eq!(files_of(d.path(), FileLog::Debug).len(), 2);
    }

    #[test]
    fn a_new_day_starts_a_new_file_and_old_files_are_deleted() {
        let d = tempfile::tempdir().unwrap();
        let mut w = writer(d.path(), 1 << 20, 5);
        let day1 = 1_764_900_000;
        w.write(
            FileLog::Error,
            day1,
            &format!("{} ERROR a", stamp::rfc3339(day1, 0)),
        )
        .unwrap();
        w.flush();
        // A restart reads the day from the file's first line.
        let mut w = writer(d.path(), 1 << 20, 5);
        w.write(
            FileLog::Error,
            day1 + 60,
            &format!("{} ERROR b", stamp::rfc3339(day1 + 60, 0)),
        )
        .unwrap();
        let day2 = day1 + 86_400;
        w.write(
            FileLog::Error,
            day2,
            &format!("{} ERROR c", stamp::rfc3339(day2, 0)),
        )
        .unwrap();
        w.flush();
        let old = fs::read_to_string(path_of(d.path(), FileLog::Error, 1)).unwrap();
        assert_eq!(old.lines().count(), 2, "{old}");
        let new = fs::read_to_string(path_of(d.path(), FileLog::Error, 0)).unwrap();
        assert!(new.ends_with(" ERROR c\n"), "{new}");
        // A rolled-over file last written long ago is deleted.
        let f = File::options()
            .write(true)
            .open(path_of(d.path(), FileLog::Error, 1))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(31 * 86_400))
            .unwrap();
        w.prune();
        assert_eq!(files_of(d.path(), FileLog::Error).len(), 1);
    }

    #[test]
    fn the_writer_thread_batches_clears_and_counts_what_it_dropped() {
        let d = tempfile::tempdir().unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let w = Writer::new(
            d.path().to_path_buf(),
            Arc::default(),
            dropped.clone(),
            Arc::default(),
        );
        let (tx, rx) = sync_channel(16);
        let h = std::thread::spawn(move || w.run(rx));
        let now = stamp::unix_now();
        tx.send(Msg::Line(FileLog::Warning, now, "w1".into()))
            .unwrap();
        dropped.store(7, Ordering::Relaxed);
        let (ftx, frx) = sync_channel(1);
        tx.send(Msg::Flush(ftx)).unwrap();
        frx.recv().unwrap();
        let (lines, _) = search(d.path(), FileLog::Warning, "", 10);
        assert_eq!(lines, ["w1"]);
        let (lines, _) = search(d.path(), FileLog::Debug, "dropped", 10);
        assert!(lines[0].contains("7 log lines were dropped"), "{lines:?}");
        let (ctx, crx) = sync_channel(1);
        tx.send(Msg::Clear(FileLog::Warning, ctx)).unwrap();
        crx.recv().unwrap().unwrap();
        assert!(files_of(d.path(), FileLog::Warning).is_empty());
        tx.send(Msg::Line(FileLog::Warning, now, "w2".into()))
            .unwrap();
        drop(tx);
        h.join().unwrap();
        assert_eq!(search(d.path(), FileLog::Warning, "", 10).0, ["w2"]);
    }
}
