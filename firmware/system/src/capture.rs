//! The packet sniffer (Kerio 22.1 "Capturing network communication"): one capture at a
//! time, by tcpdump (libpcap's filters, the pcap format every analyser reads), on an
//! interface with a filter, for at most a duration and a size, into
//! `<data>/capture/capture.pcap`, downloaded from the web admin.
//!
//! tcpdump writes each packet as it comes (`-U`); a watcher stops it (SIGINT, so it
//! closes the file properly) when the time is up, the file reaches its cap or the
//! administrator says stop. What passed the cap meanwhile is cut off at the last whole
//! packet, so the download never passes it.

use serde::Serialize;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the administrator asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// An interface of the box, or `any`.
    #[serde(default = "any")]
    pub interface: String,
    /// A pcap filter (`udp port 5060`, `host 192.0.2.7`); empty: everything.
    #[serde(default)]
    pub filter: String,
    /// The capture stops after this long (1-3600 s).
    #[serde(default = "default_seconds")]
    pub seconds: u32,
    /// ...or when the file reaches this size (1-100 MiB).
    #[serde(default = "default_mib")]
    pub max_mib: u32,
}

fn any() -> String {
    "any".into()
}
fn default_seconds() -> u32 {
    60
}
fn default_mib() -> u32 {
    10
}

/// Where the capture stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureState {
    /// `idle` (no capture yet), `running`, `done` or `failed`.
    pub state: &'static str,
    pub interface: String,
    pub filter: String,
    pub seconds: u32,
    pub max_mib: u32,
    /// Unix seconds.
    pub started: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<u64>,
    /// Bytes of the file.
    pub bytes: u64,
    /// Packets tcpdump says it captured (when it ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Why it ended, or why it failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error("a capture is running: stop it first")]
    Busy,
    #[error("tcpdump refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The box's one capture.
pub struct Capturer {
    tcpdump: PathBuf,
    dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    state: CaptureState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Capturer {
    pub fn new(tcpdump: PathBuf, data_dir: &Path) -> Arc<Capturer> {
        let c = Capturer {
            tcpdump,
            dir: data_dir.join("capture"),
            inner: Mutex::default(),
        };
        let file = c.file();
        {
            let mut i = c.inner.lock().unwrap();
            i.state.state = "idle";
            // A capture of an earlier run can still be downloaded.
            if let Ok(m) = std::fs::metadata(&file) {
                i.state.state = "done";
                i.state.bytes = m.len();
                i.state.why = "made before the exchange last started".into();
            }
        }
        Arc::new(c)
    }

    /// The capture file.
    pub fn file(&self) -> PathBuf {
        self.dir.join("capture.pcap")
    }

    pub fn state(&self) -> CaptureState {
        let mut s = self.inner.lock().unwrap().state.clone();
        if s.state == "running" {
            s.bytes = std::fs::metadata(self.file()).map(|m| m.len()).unwrap_or(0);
        }
        s
    }

    /// Problems of a request, as (field, message).
    pub fn problems(r: &CaptureRequest) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        let name_ok = !r.interface.is_empty()
            && r.interface.len() <= 15
            && r.interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        if r.interface != "any"
            && (!name_ok || !Path::new("/sys/class/net").join(&r.interface).exists())
        {
            p.push((
                "interface",
                format!("the box has no interface {:?}", r.interface),
            ));
        }
        if r.filter.len() > 512
            || r.filter.trim_start().starts_with('-')
            || r.filter.chars().any(|c| c.is_control())
        {
            p.push((
                "filter",
                "must be a pcap filter of at most 512 characters, such as \"udp port 5060\"".into(),
            ));
        }
        if !(1..=3600).contains(&r.seconds) {
            p.push(("seconds", "must be 1-3600".into()));
        }
        if !(1..=100).contains(&r.max_mib) {
            p.push(("max_mib", "must be 1-100".into()));
        }
        p
    }

    /// Starts a capture; answers once tcpdump listens (or refused the filter).
    pub async fn start(self: &Arc<Self>, r: CaptureRequest) -> Result<CaptureState, CaptureError> {
        if let Some((field, msg)) = Self::problems(&r).into_iter().next() {
            return Err(CaptureError::Invalid(field, msg));
        }
        {
            let mut i = self.inner.lock().unwrap();
            if i.state.state == "running" || i.state.state == "starting" {
                return Err(CaptureError::Busy);
            }
            i.state.state = "starting";
        }
        let started = self.spawn(&r).await;
        let mut i = self.inner.lock().unwrap();
        match started {
            Ok((child, t0)) => {
                i.state = CaptureState {
                    state: "running",
                    interface: r.interface.clone(),
                    filter: r.filter.clone(),
                    seconds: r.seconds,
                    max_mib: r.max_mib,
                    started: unix_now(),
                    ..CaptureState::default()
                };
                let (tx, rx) = tokio::sync::oneshot::channel();
                i.stop = Some(tx);
                let me = self.clone();
                tokio::spawn(me.watch(child, t0, rx, r));
                drop(i);
                Ok(self.state())
            }
            Err(e) => {
                // The file went when tcpdump was started: nothing to download.
                i.state = CaptureState {
                    state: "idle",
                    ..CaptureState::default()
                };
                Err(e)
            }
        }
    }

    /// Starts tcpdump and waits (at most 10 s) for it to listen.
    async fn spawn(
        &self,
        r: &CaptureRequest,
    ) -> Result<(tokio::process::Child, Instant), CaptureError> {
        std::fs::create_dir_all(&self.dir)?;
        let file = self.file();
        let _ = std::fs::remove_file(&file);
        let mut cmd = tokio::process::Command::new(&self.tcpdump);
        cmd.args([
            "-i",
            &r.interface,
            "-n",
            "-U",
            // Each packet handed over at once, not in blocks a second late (the last
            // second before a stop would be lost).
            "--immediate-mode",
            // A 4 MiB kernel buffer: a burst (a flood, a call's start) is not dropped.
            "-B",
            "4096",
            "-s",
            "0",
            "-Z",
            "root",
            "-w",
        ])
        .arg(&file);
        if !r.filter.trim().is_empty() {
            // After "--": the filter is never taken for an option.
            cmd.arg("--").arg(r.filter.trim());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CaptureError::Refused(format!("{}: {e}", self.tcpdump.display())))?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut said = Vec::new();
        let listening = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if l.contains("listening on") {
                    return true;
                }
                said.push(l);
            }
            false
        })
        .await
        .unwrap_or(false);
        if !listening {
            let _ = child.kill().await;
            let why = said
                .iter()
                .filter(|l| !l.trim().is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            return Err(CaptureError::Refused(if why.is_empty() {
                "tcpdump did not start".into()
            } else {
                why
            }));
        }
        // What tcpdump says at the end is read and left: a closed pipe would kill it
        // with SIGPIPE on its way out.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((child, Instant::now()))
    }

    /// Waits for the end: time up, size reached, stop asked, or tcpdump gone.
    async fn watch(
        self: Arc<Self>,
        mut child: tokio::process::Child,
        t0: Instant,
        mut stop: tokio::sync::oneshot::Receiver<()>,
        r: CaptureRequest,
    ) {
        let cap = u64::from(r.max_mib) << 20;
        let file = self.file();
        let why = loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = &mut stop => break "stopped by the administrator".to_string(),
                st = child.wait() => {
                    break format!("tcpdump ended ({})", st.map(|s| s.to_string()).unwrap_or_default());
                }
            }
            if t0.elapsed() >= Duration::from_secs(u64::from(r.seconds)) {
                break format!("{} seconds passed", r.seconds);
            }
            if std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) >= cap {
                break format!("the file reached {} MiB", r.max_mib);
            }
        };
        // SIGINT: tcpdump closes the file and says how many packets it captured.
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        let ended = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        if ended.is_err() {
            let _ = child.kill().await;
        }
        let trimmed = tokio::task::spawn_blocking({
            let file = file.clone();
            move || trim_pcap(&file, cap)
        })
        .await;
        let mut i = self.inner.lock().unwrap();
        i.stop = None;
        i.state.ended = Some(unix_now());
        i.state.bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        match trimmed {
            Ok(Ok(packets)) => {
                i.state.state = "done";
                i.state.packets = Some(packets);
                i.state.why = why;
            }
            Ok(Err(e)) => {
                i.state.state = "failed";
                i.state.why = format!("{why}; the file is not a capture: {e}");
            }
            Err(e) => {
                i.state.state = "failed";
                i.state.why = format!("{why}; {e}");
            }
        }
    }

    /// Asks the running capture to stop; false when none runs.
    pub fn stop(&self) -> bool {
        let mut i = self.inner.lock().unwrap();
        match i.stop.take() {
            Some(tx) => {
                let _ = tx.send(());
                true
            }
            None => false,
        }
    }

    /// Deletes the capture file (not while a capture runs).
    pub fn remove(&self) -> Result<(), CaptureError> {
        let mut i = self.inner.lock().unwrap();
        if i.state.state == "running" || i.state.state == "starting" {
            return Err(CaptureError::Busy);
        }
        match std::fs::remove_file(self.file()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        i.state = CaptureState {
            state: "idle",
            ..CaptureState::default()
        };
        Ok(())
    }
}

/// Cuts a pcap file after its last whole packet within `max` bytes; answers how many
/// packets it holds. A file that is not a pcap is an error.
pub fn trim_pcap(path: &Path, max: u64) -> io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut header = [0u8; 24];
    f.read_exact(&mut header)?;
    let little = match header[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no pcap magic number",
            ))
        }
    };
    let mut r = io::BufReader::new(f);
    let (mut at, mut packets) = (24u64, 0u64);
    let mut rec = [0u8; 16];
    loop {
        if at + 16 > len || r.read_exact(&mut rec).is_err() {
            break;
        }
        let b = [rec[8], rec[9], rec[10], rec[11]];
        let incl = u64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        });
        let end = at + 16 + incl;
        if end > len || end > max.max(24) {
            break;
        }
        io::copy(&mut (&mut r).take(incl), &mut io::sink())?;
        at = end;
        packets += 1;
    }
    if at < len {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(at)?;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(packets: &[usize]) -> Vec<u8> {
        let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        for &n in packets {
            b.extend_from_slice(&[0; 8]);
            b.extend_from_slice(&(n as u32).to_le_bytes());
            b.extend_from_slice(&(n as u32).to_le_bytes());
            b.extend(std::iter::repeat_n(0xab, n));
        }
        b
    }

    #[test]
    fn a_capture_is_cut_at_a_whole_packet_within_its_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.pcap");
        std::fs::write(&p, pcap(&[100, 100, 100])).unwrap();
        assert_eq!(trim_pcap(&p, 1 << 20).unwrap(), 3);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24 + 3 * 116);
        // 300 bytes hold the header and two packets.
        assert_eq!(trim_pcap(&p, 300).unwrap(), 2);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24 + 2 * 116);
        // A packet written half (tcpdump killed) is cut off.
        let mut b = pcap(&[100, 100]);
        b.truncate(b.len() - 10);
        std::fs::write(&p, &b).unwrap();
        assert_eq!(trim_pcap(&p, 1 << 20).unwrap(), 1);
        // Not a capture.
        std::fs::write(&p, b"not a pcap file at all, really").unwrap();
        assert!(trim_pcap(&p, 1 << 20).is_err());
        std::fs::write(&p, b"short").unwrap();
        assert!(trim_pcap(&p, 1 << 20).is_err());
    }

    #[test]
    fn bad_requests_name_their_field() {
        let ok = CaptureRequest {
            interface: "lo".into(),
            filter: "udp port 5060".into(),
            seconds: 60,
            max_mib: 10,
        };
        assert!(Capturer::problems(&ok).is_empty());
        for (bad, field) in [
            (
                CaptureRequest {
                    interface: "nope0".into(),
                    ..ok.clone()
                },
                "interface",
            ),
            (
                CaptureRequest {
                    interface: "../../etc".into(),
                    ..ok.clone()
                },
                "interface",
            ),
            (
                CaptureRequest {
                    filter: "-w /etc/passwd".into(),
                    ..ok.clone()
                },
                "filter",
            ),
            (
                CaptureRequest {
                    filter: " -w/etc/passwd".into(),
                    ..ok.clone()
                },
                "filter",
            ),
            (
                CaptureRequest {
                    filter: "udp\nport".into(),
                    ..ok.clone()
                },
                "filter",
            ),
            (
                CaptureRequest {
                    seconds: 0,
                    ..ok.clone()
                },
                "seconds",
            ),
            (
                CaptureRequest {
                    max_mib: 101,
                    ..ok.clone()
                },
                "max_mib",
            ),
        ] {
            assert_eq!(Capturer::problems(&bad)[0].0, field, "{bad:?}");
        }
    }
}
