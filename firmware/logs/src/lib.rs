//! The box's logs (Kerio 28).
//!
//! - `config` and `security` are kept in the store (`store::Store::log`,
//!   `store::Store::security_log`); their entries are also traced (targets
//!   `store::config_log` and `store::security_log`) so that they reach the syslog server.
//! - `error`, `warning` and `debug` are files on /data written from the daemon's
//!   `tracing` events: errors, warnings, and the informational messages of every class
//!   with the debug messages of the classes the technician switched on.
//! - `kernel` is the kernel's ring buffer (`/dev/kmsg`), copied into a file.
//!
//! [`Logs::layer`] is the `tracing` layer that writes them and forwards to syslog.

pub mod files;
pub mod stamp;
pub mod syslog;

use std::fmt::Write as _;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use config::{LogSettings, DEBUG_CLASSES, LOG_NAMES};
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

pub use files::FileLog;

/// The target of the debug events that carry whole SIP messages.
pub const SIP_MESSAGES: &str = "sip_messages";

/// The debug class of an event's target (a module path, or one of the targets named
/// here).
pub fn class_of(target: &str) -> &'static str {
    let top = target.split("::").next().unwrap_or(target);
    match top {
        SIP_MESSAGES | "sip" => "sip",
        "pbx" => match target.split("::").nth(1) {
            Some("registrar" | "trunks" | "mwi" | "guard") => "registrations",
            _ => "calls",
        },
        "media" => "media",
        "provision" => "provisioning",
        "isdn" | "spans" => "isdn",
        "web" => "web",
        "pbxd" => match target.split("::").nth(1) {
            Some("music" | "recordings") => "media",
            Some("isdn") => "isdn",
            _ => "system",
        },
        "store" | "system" | "config" | "console" | "logs" => "system",
        // Other crates (sled, rustls, hyper through `log`): their informational
        // messages are written, their debug messages never.
        _ => "other",
    }
}

fn class_bit(class: &str) -> u32 {
    DEBUG_CLASSES
        .iter()
        .position(|c| *c == class)
        .map_or(0, |i| 1 << i)
}

fn log_bit(log: &str) -> u32 {
    LOG_NAMES
        .iter()
        .position(|l| *l == log)
        .map_or(0, |i| 1 << i)
}

/// The logs of one daemon: its writer and syslog threads, and what the settings say.
pub struct Logs {
    dir: PathBuf,
    rotation: Arc<files::Rotation>,
    /// Debug classes switched on, one bit per [`DEBUG_CLASSES`].
    classes: AtomicU32,
    /// Logs forwarded to syslog, one bit per [`LOG_NAMES`]; 0 when forwarding is off.
    forwarded: AtomicU32,
    files: SyncSender<files::Msg>,
    files_dropped: Arc<AtomicU64>,
    /// Bytes of lines queued for the writer.
    files_queued: Arc<AtomicU64>,
    syslog: SyncSender<syslog::Record>,
    /// The number of the last kernel record copied (`u64::MAX`: none yet).
    kernel_seq: AtomicU64,
    syslog_dropped: Arc<AtomicU64>,
    target: Arc<syslog::Target>,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Logs {
    /// Starts the writer (files in `dir`) and the syslog sender; nothing is forwarded
    /// until [`Logs::apply`] says where.
    pub fn start(dir: &Path) -> Arc<Logs> {
        let rotation = Arc::new(files::Rotation::default());
        let files_dropped = Arc::new(AtomicU64::new(0));
        let files_queued = Arc::new(AtomicU64::new(0));
        let (ftx, frx) = sync_channel(files::QUEUE);
        let w = files::Writer::new(
            dir.to_path_buf(),
            rotation.clone(),
            files_dropped.clone(),
            files_queued.clone(),
        );
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || w.run(frx))
            .expect("log writer thread");
        let target = Arc::new(syslog::Target::default());
        let syslog_dropped = Arc::new(AtomicU64::new(0));
        let (stx, srx) = sync_channel(syslog::QUEUE);
        let (t, d) = (target.clone(), syslog_dropped.clone());
        std::thread::Builder::new()
            .name("syslog".into())
            .spawn(move || syslog::run(t, srx, d))
            .expect("syslog thread");
        Arc::new(Logs {
            dir: dir.to_path_buf(),
            rotation,
            classes: AtomicU32::new(0),
            forwarded: AtomicU32::new(0),
            files: ftx,
            files_dropped,
            files_queued,
            syslog: stx,
            kernel_seq: AtomicU64::new(u64::MAX),
            syslog_dropped,
            target,
        })
    }

    /// The `tracing` layer writing the files and forwarding to syslog, with its filter:
    /// errors, warnings and informational messages always; debug messages of the
    /// classes switched on.
    pub fn layer<S>(self: &Arc<Self>) -> impl Layer<S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        LogLayer(self.clone()).with_filter(ClassFilter(self.clone()))
    }

    /// Takes the settings: debug classes, rotation, syslog server. `hostname` is the
    /// box's, `tls` the trust for a TLS syslog server.
    pub fn apply(&self, s: &LogSettings, hostname: &str, tls: Option<Arc<rustls::ClientConfig>>) {
        let classes = s.debug.iter().fold(0, |b, c| b | class_bit(c));
        self.classes.store(classes, Ordering::Relaxed);
        let size = u64::from(s.size_kib) * 1024;
        let r = &self.rotation;
        let size_changed = r.size.swap(size, Ordering::Relaxed) != size;
        let keep_changed = r.keep.swap(s.keep, Ordering::Relaxed) != s.keep;
        let days_changed = r.days.swap(s.days, Ordering::Relaxed) != s.days;
        let changed = size_changed || keep_changed || days_changed;
        if changed {
            // Files past a lowered keep or days go now, not at the next roll.
            let _ = self.files.try_send(files::Msg::Prune);
        }
        let y = &s.syslog;
        let dest = (y.enabled && !y.host.is_empty()).then(|| syslog::Dest {
            host: y.host.clone(),
            port: y.port(),
            transport: y.transport,
            facility: y.facility_code(),
            hostname: hostname.to_string(),
            tls,
        });
        let forwarded = if dest.is_some() {
            y.logs.iter().fold(0, |b, l| b | log_bit(l))
        } else {
            0
        };
        {
            let mut d = self.target.dest.lock().unwrap();
            let same = match (&*d, &dest) {
                (Some(a), Some(b)) => {
                    (&a.host, a.port, a.transport, a.facility, &a.hostname)
                        == (&b.host, b.port, b.transport, b.facility, &b.hostname)
                }
                (None, None) => true,
                _ => false,
            };
            // A TLS trust that changed reconnects too (a new CA for the server).
            let tls_same = match (&*d, &dest) {
                (Some(a), Some(b)) => match (&a.tls, &b.tls) {
                    (Some(x), Some(y)) => Arc::ptr_eq(x, y),
                    (None, None) => true,
                    _ => false,
                },
                _ => true,
            };
            if !same || !tls_same {
                *d = dest;
                self.target.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.forwarded.store(forwarded, Ordering::Relaxed);
    }

    /// Whether debug messages of `class` are written.
    pub fn debug_on(&self, class: &str) -> bool {
        self.classes.load(Ordering::Relaxed) & class_bit(class) != 0
    }

    fn line(&self, log: FileLog, unix: i64, line: String) {
        let len = line.len() as u64;
        let queued = self.files_queued.fetch_add(len, Ordering::Relaxed);
        let sent = queued + len <= files::QUEUE_BYTES as u64
            && self
                .files
                .try_send(files::Msg::Line(log, unix, line))
                .is_ok();
        if !sent {
            self.files_queued.fetch_sub(len, Ordering::Relaxed);
            self.files_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a message to the syslog server when `log` is forwarded.
    pub fn forward(&self, log: &'static str, severity: u8, text: impl FnOnce() -> String) {
        if self.forwarded.load(Ordering::Relaxed) & log_bit(log) == 0 {
            return;
        }
        let (unix, millis) = stamp::now_ms();
        let r = syslog::Record {
            log,
            severity,
            unix,
            millis,
            text: text(),
        };
        if let Err(TrySendError::Full(_)) = self.syslog.try_send(r) {
            self.syslog_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (at most 2 s) until the lines queued so far are on the disk; at once when
    /// the queue is full (the writer is busy writing them anyway). Blocking: not for an
    /// async task.
    pub fn flush(&self) {
        let (tx, rx) = sync_channel(1);
        if self.files.try_send(files::Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }

    /// Up to `limit` lines holding `query`, newest first, and whether there were more.
    /// Blocking (it reads the files).
    pub fn search(&self, log: FileLog, query: &str, limit: usize) -> (Vec<String>, bool) {
        self.flush();
        files::search(&self.dir, log, query, limit)
    }

    /// The log's files, oldest first (for a download).
    pub fn files_oldest_first(&self, log: FileLog) -> Vec<PathBuf> {
        self.flush();
        let mut f = files::files_of(&self.dir, log);
        f.reverse();
        f
    }

    /// (bytes, files) of the log.
    pub fn usage(&self, log: FileLog) -> (u64, usize) {
        files::usage(&self.dir, log)
    }

    /// Deletes the log's files. Blocking (it waits for the writer, at most 10 s).
    pub fn clear(&self, log: FileLog) -> io::Result<()> {
        let (tx, rx) = sync_channel(1);
        self.files
            .send(files::Msg::Clear(log, tx))
            .map_err(|_| io::Error::other("the log writer stopped"))?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the log writer is busy"))?
    }

    /// Copies the kernel's messages from `path` (`/dev/kmsg`) into the kernel log from a
    /// thread of its own. Records of this boot already copied by an earlier start are
    /// skipped (the last one's number is kept in `kernel.seq`).
    pub fn follow_kernel(self: &Arc<Self>, path: PathBuf) {
        let logs = self.clone();
        let _ = std::thread::Builder::new()
            .name("kernel-log".into())
            .spawn(move || {
                if let Err(e) = logs.copy_kernel(&path) {
                    tracing::warn!("kernel log {}: {e}", path.display());
                }
            });
        // A read of /dev/kmsg waits for the next record: the number of the last one
        // copied is saved from here, every few seconds when it changed.
        let logs = self.clone();
        let _ = std::thread::Builder::new()
            .name("kernel-seq".into())
            .spawn(move || {
                let mut saved = u64::MAX;
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    logs.save_kernel_seq(&mut saved);
                }
            });
    }

    /// Writes `kernel.seq` when the last record copied is not the one saved.
    fn save_kernel_seq(&self, saved: &mut u64) {
        let n = self.kernel_seq.load(Ordering::Relaxed);
        if n != u64::MAX && n != *saved {
            let boot = boot_id();
            if std::fs::write(self.dir.join("kernel.seq"), format!("{boot} {n}\n")).is_ok() {
                *saved = n;
            }
        }
    }

    /// What a daemon about to stop or restart does: the lines queued go to the disk and
    /// the kernel log's place is saved.
    pub fn close(&self) {
        self.flush();
        self.save_kernel_seq(&mut u64::MAX.clone());
    }

    fn copy_kernel(&self, path: &Path) -> io::Result<()> {
        let boot = boot_id();
        let seq_file = self.dir.join("kernel.seq");
        let last: Option<u64> = std::fs::read_to_string(&seq_file).ok().and_then(|s| {
            let (b, n) = s.trim().split_once(' ')?;
            (b == boot).then(|| n.parse().ok())?
        });
        let f = std::fs::File::open(path)?;
        // /dev/kmsg gives one record per read; a plain file gives lines.
        let mut r = io::BufReader::with_capacity(16 * 1024, f);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    // A plain file ends; /dev/kmsg waits instead.
                    self.save_kernel_seq(&mut u64::MAX.clone());
                    return Ok(());
                }
                Ok(_) => {}
                // Records overwritten before they were read: go on with the next.
                Err(e) if e.raw_os_error() == Some(32) => continue,
                Err(e) => return Err(e),
            }
            let rec = String::from_utf8_lossy(&buf);
            let Some(k) = kmsg(rec.trim_end()) else {
                continue;
            };
            if last.is_some_and(|l| k.seq <= l) {
                continue;
            }
            let (unix, millis) = stamp::now_ms();
            let text = k.text.to_string();
            let sev = k.severity;
            self.line(
                FileLog::Kernel,
                unix,
                format!(
                    "{} {:<5} kernel: {text}",
                    stamp::rfc3339(unix, millis),
                    level_name(sev)
                ),
            );
            self.forward("kernel", sev, || format!("kernel: {text}"));
            self.kernel_seq.store(k.seq, Ordering::Relaxed);
        }
    }
}

/// A SIP message as the debug log shows it: the SRTP keys (`inline:` of `a=crypto`,
/// RFC 4568), ICE passwords (`a=ice-pwd:`, RFC 8839) and digest answers (`response=`,
/// RFC 3261 22.4) hidden, since auditors read the log and it may go to a syslog server
/// unencrypted.
pub fn redact_sip(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    loop {
        let next = ["inline:", "response=", "a=ice-pwd:"]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| (i, *k)))
            .min();
        let Some((i, key)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let end = if key == "response=" && rest.starts_with('"') {
            rest[1..].find('"').map_or(rest.len(), |e| e + 2)
        } else if key == "a=ice-pwd:" {
            // The whole value, spaces and all (the parser trims what it reads).
            rest.find(['\r', '\n']).unwrap_or(rest.len())
        } else {
            rest.find(|c: char| c.is_whitespace() || matches!(c, '|' | ',' | ';'))
                .unwrap_or(rest.len())
        };
        out.push_str(if key == "response=" && rest.starts_with('"') {
            "\"[hidden]\""
        } else {
            "[hidden]"
        });
        rest = &rest[end..];
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A record of `/dev/kmsg`: `PRI,SEQ,USEC,FLAGS[,...];TEXT`.
struct Kmsg<'a> {
    severity: u8,
    seq: u64,
    text: &'a str,
}

fn kmsg(rec: &str) -> Option<Kmsg<'_>> {
    let (head, text) = rec.split_once(';')?;
    let mut f = head.split(',');
    let pri: u32 = f.next()?.parse().ok()?;
    let seq: u64 = f.next()?.parse().ok()?;
    Some(Kmsg {
        severity: (pri & 7) as u8,
        seq,
        text,
    })
}

fn level_name(severity: u8) -> &'static str {
    match severity {
        0..=3 => "ERROR",
        4 => "WARN",
        5 | 6 => "INFO",
        _ => "DEBUG",
    }
}

/// Which events reach [`LogLayer`].
struct ClassFilter(Arc<Logs>);

impl<S> Filter<S> for ClassFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        let level = *meta.level();
        level <= Level::INFO || (level == Level::DEBUG && self.0.debug_on(class_of(meta.target())))
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        use tracing::subscriber::Interest;
        match *meta.level() {
            l if l <= Level::INFO => Interest::always(),
            // Asked again at each event: the classes change at run time.
            Level::DEBUG => Interest::sometimes(),
            _ => Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }
}

struct LogLayer(Arc<Logs>);

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let target = meta.target();
        let level = *meta.level();
        let logs = &self.0;
        // The store's logs: only forwarded (the store keeps them).
        let kept = match target {
            "store::config_log" => Some(("config", 5)),
            "store::security_log" => Some(("security", 4)),
            _ => None,
        };
        let mut text = String::new();
        let mut v = Fields(&mut text);
        event.record(&mut v);
        if let Some((log, severity)) = kept {
            logs.forward(log, severity, || text);
            return;
        }
        if target == SIP_MESSAGES {
            text = redact_sip(&text);
        }
        let class = class_of(target);
        let (file, log, severity) = match level {
            Level::ERROR => (FileLog::Error, "error", 3),
            Level::WARN => (FileLog::Warning, "warning", 4),
            Level::INFO => (FileLog::Debug, "debug", 6),
            _ => (FileLog::Debug, "debug", 7),
        };
        if text.len() > files::MAX_LINE {
            let mut cut = files::MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" [cut]");
        }
        let (unix, millis) = stamp::now_ms();
        logs.forward(log, severity, || format!("{class}: {text}"));
        if text.contains('\n') {
            // The lines of a SIP message continue the entry, indented.
            text = text
                .trim_end()
                .replace("\r\n", "\n")
                .replace('\n', "\n    ");
        }
        logs.line(
            file,
            unix,
            format!(
                "{} {:<5} {class}: {text}",
                stamp::rfc3339(unix, millis),
                level.as_str()
            ),
        );
    }
}

/// The message first, then `name=value` for the other fields.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn targets_fall_into_classes() {
        assert_eq!(class_of("sip_messages"), "sip");
        assert_eq!(class_of("sip::transport"), "sip");
        assert_eq!(class_of("pbx::registrar"), "registrations");
        assert_eq!(class_of("pbx::calls"), "calls");
        assert_eq!(class_of("pbx::app::voicemail"), "calls");
        assert_eq!(class_of("media::control"), "media");
        assert_eq!(class_of("provision::tftp"), "provisioning");
        assert_eq!(class_of("isdn::call"), "isdn");
        assert_eq!(class_of("pbxd::isdn"), "isdn");
        assert_eq!(class_of("web::api"), "web");
        assert_eq!(class_of("pbxd"), "system");
        assert_eq!(class_of("store::backup"), "system");
        assert_eq!(class_of("rustls::client"), "other");
        assert_eq!(class_bit("other"), 0);
    }

    #[test]
    fn keys_and_digest_answers_are_hidden() {
        let m = "INVITE sip:1@b SIP/2.0\r\nAuthorization: Digest username=\"101\", response=\"6629fae49393a05397450978507c4ef1\", nonce=\"n\"\r\n\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n";
        let r = redact_sip(m);
        assert!(!r.contains("6629fae4") && !r.contains("WVNfX19z"), "{r}");
        assert!(r.contains("response=\"[hidden]\", nonce=\"n\""), "{r}");
        assert!(r.contains("inline:[hidden]|2^20|1:4"), "{r}");
        assert_eq!(redact_sip("OPTIONS sip:x SIP/2.0"), "OPTIONS sip:x SIP/2.0");
        assert_eq!(redact_sip("response="), "response=[hidden]");
        assert_eq!(redact_sip("response=\"abc"), "response=\"[hidden]\"");
        let w = redact_sip(
            "a=ice-ufrag:Hm3Q\r\na=ice-pwd:Ua2NMaSRE1XBKxPqFcg3M7Rh\r\na=setup:actpass\r\n",
        );
        assert_eq!(
            w,
            "a=ice-ufrag:Hm3Q\r\na=ice-pwd:[hidden]\r\na=setup:actpass\r\n"
        );
        assert_eq!(
            redact_sip("a=ice-pwd: abc def\r\nx"),
            "a=ice-pwd:[hidden]\r\nx"
        );
    }

    #[test]
    fn kmsg_records_parse_and_bad_ones_are_skipped() {
        let k = kmsg("6,339,5140900,-;NET: Registered PF_INET6 protocol family").unwrap();
        assert_eq!((k.severity, k.seq), (6, 339));
        assert_eq!(k.text, "NET: Registered PF_INET6 protocol family");
        let k = kmsg("3,12,1,c,more;x;y").unwrap();
        assert_eq!((k.severity, k.text), (3, "x;y"));
        assert!(kmsg("no header").is_none());
        assert!(kmsg("x,1,2,-;text").is_none());
        assert!(kmsg(" SUBSYSTEM=net").is_none());
    }

    #[test]
    fn events_go_to_their_logs_and_debug_classes_switch_on_and_off() {
        let d = tempfile::tempdir().unwrap();
        let logs = Logs::start(d.path());
        let sub = tracing_subscriber::registry().with(logs.layer());
        tracing::subscriber::with_default(sub, || {
            tracing::error!(target: "pbxd", "disk full");
            tracing::warn!(target: "pbx::calls", call = 7, "no route");
            tracing::info!(target: "pbx::registrar", user = "101", "registered");
            tracing::debug!(target: "sip_messages", "OPTIONS one");
            logs.apply(
                &LogSettings {
                    debug: vec!["sip".into()],
                    ..LogSettings::default()
                },
                "pbx",
                None,
            );
            tracing::debug!(
                target: "sip_messages",
                "OPTIONS two\r\nVia: x\r\n\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\r\n"
            );
            tracing::debug!(target: "media::relay", "a media detail");
            tracing::info!(target: "store::security_log", "kept in the store, not in a file");
        });
        let (e, _) = logs.search(FileLog::Error, "", 10);
        assert_eq!(e.len(), 1);
        assert!(e[0].ends_with(" ERROR system: disk full"), "{e:?}");
        let (w, _) = logs.search(FileLog::Warning, "", 10);
        assert!(w[0].ends_with(" WARN  calls: no route call=7"), "{w:?}");
        let (dbg, _) = logs.search(FileLog::Debug, "", 10);
        assert_eq!(dbg.len(), 2, "{dbg:?}");
        assert!(
            dbg[0].ends_with(
                " DEBUG sip: OPTIONS two\n    Via: x\n    \n    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[hidden]"
            ),
            "{dbg:?}"
        );
        assert!(
            dbg[1].ends_with(" INFO  registrations: registered user=101"),
            "{dbg:?}"
        );
        assert!(stamp::day_of(&dbg[0]).is_some());
        logs.clear(FileLog::Debug).unwrap();
        assert_eq!(logs.usage(FileLog::Debug), (0, 0));
    }

    #[test]
    fn the_kernel_log_is_copied_once_per_boot() {
        let d = tempfile::tempdir().unwrap();
        let logs = Logs::start(d.path());
        let src = d.path().join("kmsg");
        std::fs::write(
            &src,
            "6,1,10,-;Linux version 6.1\n3,2,20,-;oops\nnot a record\n",
        )
        .unwrap();
        logs.copy_kernel(&src).unwrap();
        std::fs::write(
            &src,
            "6,1,10,-;Linux version 6.1\n3,2,20,-;oops\n4,3,30,-;later\n",
        )
        .unwrap();
        logs.copy_kernel(&src).unwrap();
        let (k, _) = logs.search(FileLog::Kernel, "", 10);
        assert_eq!(k.len(), 3, "{k:?}");
        assert!(k[0].ends_with(" WARN  kernel: later"), "{k:?}");
        assert!(k[1].ends_with(" ERROR kernel: oops"), "{k:?}");
    }
}
