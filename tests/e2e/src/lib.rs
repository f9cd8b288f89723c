//! Harness for end-to-end tests: starts pbxd on loopback with its own data directory,
//! runs pbxctl, SIPp and baresip against it, and reads what they recorded.
//!
//! Every process binds to 127.0.0.1, every wait is bounded, and every child is killed
//! when its handle drops.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Directory holding the built pbxd and pbxctl (`PBX_BIN_DIR`, else the workspace's target/debug).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("PBX_BIN_DIR") {
        return PathBuf::from(d);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug")
}

fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

/// A free loopback port for UDP and TCP alike.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

static RTP_BLOCK: AtomicU16 = AtomicU16::new(0);

/// A distinct RTP range for each daemon or phone started by this process, below the
/// kernel's ephemeral ports (32768 and up) that `free_port` hands out, so the two never
/// collide.
fn rtp_range() -> (u16, u16) {
    let block = RTP_BLOCK.fetch_add(1, Ordering::SeqCst) % 25;
    let base = 20000 + (std::process::id() % 12) as u16 * 1000 + block * 40;
    (base, base + 39)
}

/// Waits until `f` is true, polling; false on timeout.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A running pbxd.
pub struct Pbxd {
    pub child: Child,
    pub data: tempfile::TempDir,
    pub sip: SocketAddr,
    /// SIP over TLS (a free port beside `sip`'s address unless the test chose one).
    pub sip_tls: SocketAddr,
    pub log: PathBuf,
    pub rtp: (u16, u16),
    /// The HTTPS web admin (on loopback unless the test chose otherwise).
    pub web: SocketAddr,
    /// The TFTP server (on loopback unless the test chose otherwise).
    pub tftp: SocketAddr,
}

/// An HTTP answer as curl saw it.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl HttpAnswer {
    /// The body as JSON (Null when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A response header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// The tones the tests' phones send and the music on hold, Hz: what a recording is
/// checked against.
pub const TONES: [f64; 4] = [440.0, 1000.0, 700.0, 1400.0];

/// The tone the daemon plays as music on hold in tests, Hz.
pub const MUSIC_TONE: f64 = 700.0;

impl Pbxd {
    /// Starts pbxd on a free loopback port and waits until `pbxctl status` succeeds.
    pub fn start() -> Pbxd {
        let data = tempfile::tempdir().unwrap();
        Self::start_in(data, free_port(), &[])
    }

    /// Starts pbxd with a given data directory, port and extra arguments.
    pub fn start_in(data: tempfile::TempDir, port: u16, extra: &[&str]) -> Pbxd {
        let sip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self::launch(data, sip, extra, &[])
    }

    /// Starts pbxd on `sip`, run through `prefix` (for example `ip netns exec NS`), with
    /// extra arguments; `--web` and `--tftp` on loopback unless `extra` names them.
    pub fn launch(
        data: tempfile::TempDir,
        sip: SocketAddr,
        extra: &[&str],
        prefix: &[&str],
    ) -> Pbxd {
        let web: SocketAddr = match extra.iter().position(|a| *a == "--web") {
            Some(i) => extra[i + 1].parse().unwrap(),
            None => format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        };
        let web_arg = web.to_string();
        let web_args: Vec<&str> = if extra.contains(&"--web") {
            vec![]
        } else {
            vec!["--web", &web_arg]
        };
        let tftp: SocketAddr = match extra.iter().position(|a| *a == "--tftp") {
            Some(i) => extra[i + 1].parse().unwrap(),
            None => format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        };
        let sip_tls: SocketAddr = match extra.iter().position(|a| *a == "--sip-tls") {
            Some(i) => extra[i + 1].parse().unwrap_or(sip),
            None => SocketAddr::new(sip.ip(), free_port()),
        };
        let sip_tls_arg = sip_tls.to_string();
        let sip_tls_args: Vec<&str> = if extra.contains(&"--sip-tls") {
            vec![]
        } else {
            vec!["--sip-tls", &sip_tls_arg]
        };
        let tftp_arg = tftp.to_string();
        let tftp_args: Vec<&str> = if extra.contains(&"--tftp") {
            vec![]
        } else {
            vec!["--tftp", &tftp_arg]
        };
        // Music on hold: a steady tone tests can tell from the phones' own tones.
        let moh_dir = data.path().join("system-music");
        let moh_args: Vec<String> = if extra.contains(&"--music-on-hold") {
            vec![]
        } else {
            std::fs::create_dir_all(&moh_dir).unwrap();
            write_tone_wav(&moh_dir.join("tone.wav"), MUSIC_TONE as u32, 10);
            vec!["--music-on-hold".into(), moh_dir.display().to_string()]
        };
        let rtp = rtp_range();
        let log = data.path().join("pbxd.log");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let (program, pre_args): (PathBuf, Vec<PathBuf>) = match prefix.split_first() {
            Some((p, rest)) => (
                PathBuf::from(p),
                rest.iter()
                    .map(PathBuf::from)
                    .chain([bin("pbxd")])
                    .collect(),
            ),
            None => (bin("pbxd"), vec![]),
        };
        let child = Command::new(program)
            .args(&pre_args)
            .arg("--data-dir")
            .arg(data.path())
            .args([
                "--sip",
                &sip.to_string(),
                "--rtp-ports",
                &format!("{}-{}", rtp.0, rtp.1),
            ])
            .args(&web_args)
            .args(&sip_tls_args)
            .args(&tftp_args)
            .args(&moh_args)
            .args(extra)
            .env("RUST_LOG", "info,pbx=debug,sled=warn")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start pbxd");
        let mut d = Pbxd {
            child,
            data,
            sip,
            sip_tls,
            log,
            rtp,
            web,
            tftp,
        };
        let ready = wait_until(Duration::from_secs(20), || {
            d.ctl(&["status"]).status.success()
        });
        assert!(ready, "pbxd did not become ready:\n{}", d.log_text());
        let _ = d.child.try_wait();
        d
    }

    /// An HTTPS request to the web admin with curl, trusting the box's own certificate
    /// (so the name check is real). `headers` are `Name: value` lines.
    pub fn https(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> HttpAnswer {
        let a = self.https_via(&[], &[], method, path, body, headers);
        assert!(a.status != 0, "curl {method} {path} failed: {}", a.body);
        a
    }

    /// [`Pbxd::https`] with curl run through `prefix` (`ip netns exec NS`) and given
    /// `curl_args` (`--interface ADDRESS`). A connection that fails is status 0 with
    /// curl's complaint and exit code as the body.
    pub fn https_via(
        &self,
        prefix: &[&str],
        curl_args: &[&str],
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> HttpAnswer {
        let cert = self.data.path().join("web/cert.pem");
        let hdr = tempfile::NamedTempFile::new().unwrap();
        let mut c = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg("curl");
                c
            }
            None => Command::new("curl"),
        };
        c.args(curl_args);
        c.args(["-sS", "--max-time", "20", "-X", method, "--cacert"])
            .arg(&cert)
            .arg("-D")
            .arg(hdr.path())
            .args(["-w", "\n%{http_code}"]);
        for h in headers {
            c.args(["-H", h]);
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        c.arg(format!("https://{}{path}", self.web));
        let out = c.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            return HttpAnswer {
                status: 0,
                headers: String::new(),
                body: format!(
                    "{} (curl exit {:?})",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    out.status.code()
                ),
            };
        }
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        HttpAnswer {
            status: code.trim().parse().unwrap_or(0),
            headers: std::fs::read_to_string(hdr.path()).unwrap_or_default(),
            body: body.to_string(),
        }
    }

    /// Creates the administrator (first run) and logs in; returns the headers a
    /// state-changing request needs (cookie and CSRF token).
    pub fn admin_session(&self, password: &str) -> Vec<String> {
        let body = serde_json::json!({"password": password}).to_string();
        let a = self.https("POST", "/api/v1/setup", Some(&body), &[]);
        assert!(a.status == 201 || a.status == 409, "setup: {a:?}");
        self.login("Admin", password)
    }

    /// Logs in; returns the cookie and CSRF headers.
    pub fn login(&self, user: &str, password: &str) -> Vec<String> {
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        let a = self.https("POST", "/api/v1/login", Some(&body), &[]);
        assert_eq!(a.status, 200, "login as {user}: {a:?}");
        let cookie = a.header("set-cookie").expect("a session cookie");
        let cookie = cookie.split(';').next().unwrap().to_string();
        vec![
            format!("Cookie: {cookie}"),
            format!("X-CSRF-Token: {}", a.json()["csrf_token"].as_str().unwrap()),
        ]
    }

    /// Runs pbxctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("pbxctl"))
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .output()
            .expect("run pbxctl")
    }

    /// Runs pbxctl and asserts success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "pbxctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM and returns its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let stopped = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(stopped, "pbxd did not stop on SIGTERM");
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "pbxd exited with {status}:\n{}",
            self.log_text()
        );
        let data = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data, data)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Pbxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pbxd log ---\n{}", self.log_text());
        }
    }
}

/// Runs a SIPp scenario from tests/e2e/sipp against the daemon; returns SIPp's output.
pub fn sipp(pbx: &Pbxd, scenario: &str, user: &str, password: &str, extra: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(scenario);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    Command::new("sipp")
        .current_dir(dir.path())
        .arg(pbx.sip.to_string())
        .arg("-sf")
        .arg(&path)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-l",
            "1",
        ])
        .args(["-s", user, "-au", user, "-ap", password])
        .args([
            "-timeout",
            "20s",
            "-timeout_error",
            "-recv_timeout",
            "10000",
            "-nostdin",
            "-trace_err",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run sipp (apt package sip-tester)")
}

/// Asserts a SIPp run passed, with the end of its output when not.
pub fn sipp_ok(o: &std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "SIPp {what} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Events a phone reported, in order: `{"type": ..., "param": ...}` as baresip's
/// ctrl_tcp names them (the pjsua2 driver speaks the same names).
type Events = Arc<Mutex<Vec<Value>>>;

/// Which softphone family a test phone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// baresip 1.x (libre), driven over ctrl_tcp.
    Baresip,
    /// PJSIP 2.15 through pjsua2 (`tests/e2e/phones/pjsua2_phone.py`), driven over
    /// its stdin and stdout.
    Pjsua2,
    /// liblinphone 5.1 (belle-sip) through Debian's `linphonec`, driven over its stdin
    /// and read from what it prints. It cannot send keypad digits from its prompt.
    Linphone,
}

impl Kind {
    /// Every family the call tests run with.
    pub const ALL: [Kind; 3] = [Kind::Baresip, Kind::Pjsua2, Kind::Linphone];
}

/// How the harness talks to a phone.
enum Control {
    /// baresip's ctrl_tcp socket (netstrings of JSON).
    Tcp(TcpStream),
    /// The pjsua2 driver's stdin (JSON lines).
    Stdin(std::process::ChildStdin),
    /// linphonec's stdin (its own commands), shared with the thread reading its output.
    Linphonec(Arc<Mutex<std::process::ChildStdin>>),
}

/// A softphone registered to the daemon: baresip or pjsua2, driven alike.
pub struct Phone {
    pub name: String,
    pub kind: Kind,
    /// Where the phone sends its requests: `host:port`, with `;transport=tls` for a
    /// phone on SIP over TLS.
    pub server: String,
    child: Child,
    dir: tempfile::TempDir,
    ctrl: Control,
    events: Events,
    token: u32,
}

/// How a phone is set up.
pub struct PhoneSpec<'a> {
    pub user: &'a str,
    pub password: &'a str,
    /// Tone the phone sends, Hz.
    pub tone: u32,
    pub auto_answer: bool,
    /// Codecs in order of preference, e.g. "PCMU,PCMA".
    pub codecs: &'a str,
    /// SIP over TLS only, trusting this CA (the box's own certificate).
    pub tls_ca: Option<&'a Path>,
    /// Audio over SRTP only (SDES keys; pjsua2 and linphone).
    pub srtp: bool,
}

impl PhoneSpec<'_> {
    /// Where the phone registers and sends its calls.
    fn server(&self, pbx: &Pbxd) -> String {
        match self.tls_ca {
            Some(_) => format!("{};transport=tls", pbx.sip_tls),
            None => pbx.sip.to_string(),
        }
    }
}

/// The Python that has pjsua2 (`PBX_PYTHON`, else the workspace's target/pyenv, which
/// scripts/test fills).
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PBX_PYTHON") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
}

/// Reads netstrings (`LEN ":" JSON ","`) from baresip's ctrl_tcp into `events`.
fn read_netstrings(rd: TcpStream, events: Events) {
    let mut r = BufReader::new(rd);
    loop {
        let mut len = Vec::new();
        if r.read_until(b':', &mut len).unwrap_or(0) == 0 {
            return;
        }
        let Ok(n) = String::from_utf8_lossy(&len[..len.len() - 1])
            .trim()
            .parse::<usize>()
        else {
            return;
        };
        let mut buf = vec![0u8; n + 1];
        if r.read_exact(&mut buf).is_err() {
            return;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&buf[..n]) {
            events.lock().unwrap().push(v);
        }
    }
}

/// A WAV file (8 kHz, 16-bit mono) of a sine tone, `secs` long.
pub fn write_tone_wav(path: &Path, hz: u32, secs: u32) {
    let n = 8000 * secs;
    let mut b = Vec::with_capacity(44 + 2 * n as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let x = 8000.0 * (2.0 * std::f64::consts::PI * hz as f64 * i as f64 / 8000.0).sin();
        b.extend_from_slice(&(x as i16).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Turns what linphonec prints into the harness's events. After each call it names the
/// next recording, so every call is recorded in a file of its own.
fn read_linphonec(
    out: impl Read,
    events: Events,
    stdin: Arc<Mutex<std::process::ChildStdin>>,
    rec: PathBuf,
) {
    let mut held = false;
    let mut calls = 1;
    let mut refusals = 0;
    let push = |kind: &str, param: &str| {
        events
            .lock()
            .unwrap()
            .push(serde_json::json!({"type": kind, "param": param}));
    };
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { return };
        if line.contains("Receiving new incoming call from") {
            push("CALL_INCOMING", &line);
        } else if line.contains("Registration on") && line.contains("successful") {
            push("REGISTER_OK", &line);
        } else if line.contains(" connected.") && line.contains("Call ") {
            push("CALL_ESTABLISHED", &line);
        } else if line.contains("has been paused by") {
            held = true;
            push("CALL_HELD", &line);
        } else if line.contains("Media streams established") && held {
            held = false;
            push("CALL_RESUMED", &line);
        } else if let Some(rest) = line.split("Receiving tone ").nth(1) {
            push("CALL_DTMF_START", rest.split(' ').next().unwrap_or(""));
        } else if line.contains("Call ") && (line.contains(" ended (") || line.ends_with(" error."))
        {
            let why = line
                .split_once(" ended (")
                .map(|(_, r)| r.trim_end_matches(").").to_string())
                .unwrap_or_else(|| refusal_in_log(&rec.join("../linphone.log"), &mut refusals));
            held = false;
            calls += 1;
            let next = rec.join(format!("call-{calls:03}-dec.wav"));
            let _ = writeln!(stdin.lock().unwrap(), "record {}", next.display());
            push("CALL_CLOSED", &why);
        }
    }
}

/// linphonec prints only "error" for a refused call: the refusal is the newest final
/// response it logged (challenges aside), e.g. "486 Busy Here". `seen` counts the
/// refusals already taken, so an old one is never returned for a new call.
fn refusal_in_log(log: &Path, seen: &mut usize) -> String {
    let mut found = String::new();
    wait_until(Duration::from_secs(2), || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // Only what linphone received (belle-sip logs "received [N] new bytes from"
        // before an incoming message, "message sent to" before an outgoing one).
        let mut incoming = false;
        let all: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                if l.contains("]: received [") {
                    incoming = true;
                } else if l.contains("]: message sent to") {
                    incoming = false;
                }
                l.trim().strip_prefix("SIP/2.0 ").filter(|_| incoming)
            })
            .filter(|r| {
                r.get(..3)
                    .and_then(|c| c.parse::<u16>().ok())
                    .is_some_and(|c| c >= 300 && c != 401 && c != 407)
            })
            .collect();
        if all.len() > *seen {
            *seen = all.len();
            found = all.last().copied().unwrap_or_default().to_string();
        }
        !found.is_empty()
    });
    if found.is_empty() {
        "error".into()
    } else {
        found
    }
}

/// Reads JSON lines from the pjsua2 driver's stdout into `events` (other lines are
/// PJSIP's own start-up chatter).
fn read_json_lines(out: impl Read, events: Events) {
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { return };
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            events.lock().unwrap().push(v);
        }
    }
}

impl Phone {
    /// Starts a baresip phone (see [`Phone::start_kind`]).
    pub fn start(pbx: &Pbxd, spec: PhoneSpec) -> Phone {
        Self::start_kind(pbx, Kind::Baresip, spec)
    }

    /// Starts a phone of `kind` with a sine source at `spec.tone` that records what it
    /// hears. A phone that dies while starting (a port taken meanwhile) is retried on
    /// new ports.
    pub fn start_kind(pbx: &Pbxd, kind: Kind, spec: PhoneSpec) -> Phone {
        let start = |pbx: &Pbxd, spec: &PhoneSpec| match kind {
            Kind::Baresip => Self::try_baresip(pbx, spec),
            Kind::Pjsua2 => Self::try_pjsua2(pbx, spec),
            Kind::Linphone => Self::try_linphone(pbx, spec),
        };
        for _ in 0..2 {
            if let Some(p) = start(pbx, &spec) {
                return p;
            }
        }
        start(pbx, &spec).unwrap_or_else(|| panic!("{kind:?} phone {} did not start", spec.user))
    }

    fn try_pjsua2(pbx: &Pbxd, spec: &PhoneSpec) -> Option<Phone> {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        let rtp = rtp_range();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("phones/pjsua2_phone.py");
        let py = python();
        assert!(
            py.exists(),
            "{} is missing: scripts/test installs pjsua2-python there (or set PBX_PYTHON)",
            py.display()
        );
        let mut cmd = Command::new(py);
        cmd.arg(script)
            .args(["--user", spec.user, "--password", spec.password])
            .args([
                "--registrar",
                &match spec.tls_ca {
                    Some(_) => pbx.sip_tls,
                    None => pbx.sip,
                }
                .to_string(),
            ])
            .args(["--sip-port", &free_port().to_string()])
            .args(["--rtp-port", &rtp.0.to_string()])
            .args(["--rtp-range", &(rtp.1 - rtp.0).to_string()])
            .args(["--tone", &spec.tone.to_string(), "--codecs", spec.codecs])
            .arg("--rec-dir")
            .arg(&rec)
            .arg("--log")
            .arg(dir.path().join("pjsua2.log"))
            .args(["--lifetime", "300"]);
        if spec.auto_answer {
            cmd.arg("--auto-answer");
        }
        if let Some(ca) = spec.tls_ca {
            cmd.arg("--tls-ca").arg(ca);
        }
        if spec.srtp {
            cmd.arg("--srtp");
        }
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("run the pjsua2 phone");
        let events: Events = Arc::default();
        let out = child.stdout.take().unwrap();
        let ev2 = events.clone();
        std::thread::spawn(move || read_json_lines(out, ev2));
        let stdin = child.stdin.take().unwrap();
        let mut p = Phone {
            name: spec.user.to_string(),
            kind: Kind::Pjsua2,
            server: spec.server(pbx),
            child,
            dir,
            ctrl: Control::Stdin(stdin),
            events,
            token: 0,
        };
        // It has started once it has asked to register (REGISTER_OK or a failure).
        let up = wait_until(Duration::from_secs(10), || {
            !matches!(p.child.try_wait(), Ok(None))
                || p.events().iter().any(|e| {
                    e["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("REGISTER_"))
                })
        });
        if !up || !matches!(p.child.try_wait(), Ok(None)) {
            eprintln!(
                "pjsua2 {} failed to start, retrying:\n{}",
                spec.user,
                p.log()
            );
            return None;
        }
        Some(p)
    }

    fn try_linphone(pbx: &Pbxd, spec: &PhoneSpec) -> Option<Phone> {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        // liblinphone does not start its SIP stack until it can open its call database.
        std::fs::create_dir_all(dir.path().join(".local/share/linphone")).unwrap();
        let rtp = rtp_range();
        // Over TLS: no UDP port, and the box's certificate checked, name included.
        let (udp, tls, trust) = match spec.tls_ca {
            Some(ca) => (
                0,
                free_port(),
                format!(
                    "root_ca={}\nverify_server_certs=1\nverify_server_cn=1\n",
                    ca.display()
                ),
            ),
            None => (free_port(), 0, String::new()),
        };
        // SRTP with SDES keys, and nothing else.
        let srtp = if spec.srtp {
            "media_encryption=srtp\nmedia_encryption_mandatory=1\n"
        } else {
            ""
        };
        let mut rc = format!(
            "[sip]\nsip_port={udp}\nsip_tcp_port=0\nsip_tls_port={tls}\n{trust}{srtp}use_ipv6=0\ninc_timeout=60\n\
             [rtp]\naudio_rtp_port={}-{}\nnortp_timeout=60\n[sound]\nechocancellation=0\n\
             [video]\ncapture=0\ndisplay=0\n",
            rtp.0,
            rtp.1
        );
        for (i, codec) in spec.codecs.split(',').enumerate() {
            rc.push_str(&format!(
                "[audio_codec_{i}]\nmime={codec}\nrate=8000\nchannels=1\nenabled=1\n"
            ));
        }
        std::fs::write(dir.path().join("linphonerc"), rc).unwrap();
        let tone = dir.path().join("tone.wav");
        write_tone_wav(&tone, spec.tone, 120);
        // liblinphone's TLS (mbedTLS) matches the server's name against the
        // certificate's DNS names only, never its IP addresses: it dials the box as
        // localhost, which the box's certificate names.
        let server = match spec.tls_ca {
            Some(_) if pbx.sip_tls.ip().is_loopback() => {
                format!("localhost:{};transport=tls", pbx.sip_tls.port())
            }
            _ => spec.server(pbx),
        };
        // linphonec does not end when its stdin closes: coreutils' timeout bounds its
        // life should this process die without dropping the phone (SIGTERM to
        // timeout reaches linphonec too; SIGKILL would orphan it).
        let mut child = Command::new("timeout")
            .args(["-k", "5", "300", "linphonec"])
            .arg("-c")
            .arg(dir.path().join("linphonerc"))
            .args(["-d", "5", "-l"])
            .arg(dir.path().join("linphone.log"))
            .env("HOME", dir.path())
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run linphonec (apt package linphone-cli)");
        let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
        let events: Events = Arc::default();
        let out = child.stdout.take().unwrap();
        let (ev2, in2, rec2) = (events.clone(), stdin.clone(), rec.clone());
        std::thread::spawn(move || read_linphonec(out, ev2, in2, rec2));
        let mut first = vec![
            "soundcard use files".to_string(),
            format!(
                "register sip:{user}@{pbx} sip:{server} {pass}",
                user = spec.user,
                pbx = pbx.sip,
                pass = spec.password
            ),
            format!("play {}", tone.display()),
            format!("record {}", rec.join("call-001-dec.wav").display()),
        ];
        if spec.auto_answer {
            first.insert(1, "autoanswer enable".into());
        }
        let written = first
            .iter()
            .all(|line| writeln!(stdin.lock().unwrap(), "{line}").is_ok());
        std::thread::sleep(Duration::from_millis(300));
        if !written || !matches!(child.try_wait(), Ok(None)) {
            eprintln!("linphonec {} failed to start, retrying", spec.user);
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(Phone {
            name: spec.user.to_string(),
            kind: Kind::Linphone,
            server,
            child,
            dir,
            ctrl: Control::Linphonec(stdin),
            events,
            token: 0,
        })
    }

    fn try_baresip(pbx: &Pbxd, spec: &PhoneSpec) -> Option<Phone> {
        let dir = tempfile::tempdir().unwrap();
        let sip_port = free_port();
        let ctrl_port = free_port();
        let rtp = rtp_range();
        let rec = dir.path().join("rec");
        std::fs::create_dir_all(&rec).unwrap();
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nsip_transports udp\nnet_interface 127.0.0.1\n\
             audio_player aubridge,none\naudio_source ausine,{tone}\naudio_alert aubridge,none\n\
             ausrc_srate 48000\nausrc_channels 2\nauplay_srate 8000\naudio_channels 1\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\nmodule aubridge.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
             snd_path {rec}\nrtp_ports {lo}-{hi}\n",
            tone = spec.tone,
            rec = rec.display(),
            lo = rtp.0,
            hi = rtp.1
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        let answer = if spec.auto_answer {
            ";answermode=auto"
        } else {
            ";answermode=manual"
        };
        let account = format!(
            "<sip:{user}@{pbx};transport=udp>;auth_pass={pass}{answer};regint=300;audio_codecs={codecs}\n",
            user = spec.user,
            pbx = pbx.sip,
            pass = spec.password,
            codecs = spec.codecs
        );
        std::fs::write(dir.path().join("accounts"), account).unwrap();
        let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
        // -s: SIP trace into the log, so tests can check what the phone was sent.
        let mut child = Command::new("baresip")
            .arg("-s")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run baresip (apt package baresip-core)");
        let log_path = dir.path().join("baresip.log");
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let mut ctrl = None;
        wait_until(Duration::from_secs(10), || {
            ctrl = TcpStream::connect(("127.0.0.1", ctrl_port)).ok();
            ctrl.is_some() || !matches!(child.try_wait(), Ok(None))
        });
        // A port taken between free_port and baresip's bind does not stop baresip: it
        // logs the failure and goes on, and the control connection above may then have
        // reached another process listening there (a CI run once dialled through
        // another test's phone). Its start is read to the end first.
        wait_until(Duration::from_secs(10), || {
            let l = log();
            l.contains("baresip is ready")
                || l.contains("Address already in use")
                || !matches!(child.try_wait(), Ok(None))
        });
        let started =
            !log().contains("Address already in use") && matches!(child.try_wait(), Ok(None));
        let Some(ctrl) = ctrl.filter(|_| started) else {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "baresip {} failed to start, retrying:\n{}",
                spec.user,
                log()
            );
            return None;
        };
        let events: Events = Arc::default();
        let rd = ctrl.try_clone().unwrap();
        rd.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let ev2 = events.clone();
        std::thread::spawn(move || read_netstrings(rd, ev2));
        assert!(spec.tls_ca.is_none(), "the baresip harness has no TLS");
        assert!(!spec.srtp, "the baresip harness has no SRTP");
        Some(Phone {
            name: spec.user.to_string(),
            kind: Kind::Baresip,
            server: spec.server(pbx),
            child,
            dir,
            ctrl: Control::Tcp(ctrl),
            events,
            token: 0,
        })
    }

    /// Sends a command (`dial`, `accept`, `hangup`, `hold`, `resume`, `sndcode`;
    /// pjsua2 also `conference`: its calls bridged on the phone).
    pub fn command(&mut self, cmd: &str, params: &str) {
        self.token += 1;
        let body =
            serde_json::json!({"command": cmd, "params": params, "token": self.token.to_string()})
                .to_string();
        match &mut self.ctrl {
            Control::Tcp(s) => s
                .write_all(format!("{}:{},", body.len(), body).as_bytes())
                .unwrap(),
            Control::Stdin(s) => s.write_all(format!("{body}\n").as_bytes()).unwrap(),
            Control::Linphonec(s) => {
                let line = match cmd {
                    "dial" => format!("call {params}"),
                    "accept" => "answer".into(),
                    "hangup" => "terminate".into(),
                    "hold" => "pause".into(),
                    "resume" => "resume".into(),
                    "transfer" => format!("transfer {params}"),
                    other => panic!("linphonec cannot {other}"),
                };
                writeln!(s.lock().unwrap(), "{line}").unwrap();
            }
        }
    }

    /// Waits for an event of `kind` (e.g. `REGISTER_OK`, `CALL_ESTABLISHED`); returns it.
    pub fn wait_event(&self, kind: &str, timeout: Duration) -> Option<Value> {
        let mut found = None;
        wait_until(timeout, || {
            found = self
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|e| e["type"] == kind)
                .cloned();
            found.is_some()
        });
        found
    }

    /// Waits until the other side has put this phone's call on hold (true) or taken it
    /// off hold (false): pjsua2 says so; baresip shows the new offer and its SDP.
    pub fn wait_held(&self, held: bool, timeout: Duration) -> bool {
        match self.kind {
            Kind::Pjsua2 | Kind::Linphone => {
                let ev = if held { "CALL_HELD" } else { "CALL_RESUMED" };
                self.wait_event(ev, timeout).is_some()
            }
            Kind::Baresip => {
                self.wait_event("CALL_REMOTE_SDP", timeout)
                    .is_some_and(|e| e["param"] == "offer")
                    && (!held || self.log().contains("a=sendonly"))
            }
        }
    }

    /// Forgets the events seen so far.
    /// The first event of `kind` whose parameter contains `text`, waiting up to
    /// `timeout` for it.
    pub fn wait_event_with(&self, kind: &str, text: &str, timeout: Duration) -> Option<Value> {
        let mut found = None;
        wait_until(timeout, || {
            found = self
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|e| {
                    e["type"] == kind && e["param"].as_str().is_some_and(|p| p.contains(text))
                })
                .cloned();
            found.is_some()
        });
        found
    }

    pub fn clear_events(&self) {
        self.events.lock().unwrap().clear();
    }

    /// All events so far (for assertion messages).
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The phone's own log (baresip's with its SIP trace, PJSIP's at level 5).
    pub fn log(&self) -> String {
        let name = match self.kind {
            Kind::Baresip => "baresip.log",
            Kind::Pjsua2 => "pjsua2.log",
            Kind::Linphone => "linphone.log",
        };
        let mut log = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        if let Ok(e) = std::fs::read_to_string(self.dir.path().join("stderr.log")) {
            log.push_str(&e);
        }
        log
    }

    /// Recordings of decoded (heard) audio, oldest first. A pjsua2 recording is
    /// complete once its call has closed.
    pub fn heard(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("rec"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let quit = match &mut self.ctrl {
            Control::Stdin(s) => s.write_all(b"{\"command\": \"quit\"}\n").is_ok(),
            Control::Linphonec(s) => writeln!(s.lock().unwrap(), "quit").is_ok(),
            Control::Tcp(_) => false,
        };
        let gone = |c: &mut Child| !matches!(c.try_wait(), Ok(None));
        if quit {
            let _ = wait_until(Duration::from_secs(2), || gone(&mut self.child));
        }
        if self.kind == Kind::Linphone && !gone(&mut self.child) {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
            let _ = wait_until(Duration::from_secs(2), || gone(&mut self.child));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {:?} {} log (tail) ---", self.kind, self.name);
            let log = self.log();
            let tail: Vec<&str> = log.lines().filter(|l| !l.contains("audio=")).collect();
            eprintln!("{}", tail[tail.len().saturating_sub(80)..].join("\n"));
        }
    }
}

/// 16-bit mono/stereo PCM samples of a WAV file (first channel) and its rate.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(path).unwrap();
    assert!(
        b.len() >= 44 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE",
        "{} is not a WAV file",
        path.display()
    );
    let mut i = 12;
    let (mut rate, mut channels, mut data) = (8000u32, 1usize, Vec::new());
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let mut len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        if id == b"data" && len == 0 {
            len = b.len() - (i + 8); // a writer that never came back to fill the length
        }
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            data = body
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        i += 8 + len + (len & 1);
    }
    (data, rate)
}

/// The box's default music on hold: Debian's asterisk-moh-opsound-wav (what the image
/// installs and pbxd plays by default), in name order.
pub const DEBIAN_MUSIC: &str = "/usr/share/asterisk/moh";

/// Loudness per 50 ms block (mean absolute sample); `None` for a block that is
/// nearly silent or mostly the tone `voice` (the other phone's, around the music).
/// With `pauses`, quiet blocks count too (as their loudness), as speech has them.
fn envelope(samples: &[i16], rate: u32, voice: Option<f64>, pauses: bool) -> Vec<Option<f64>> {
    samples
        .chunks_exact((rate / 20) as usize)
        .map(|b| {
            let loud = b.iter().map(|s| (*s as f64).abs()).sum::<f64>() / b.len() as f64;
            let energy: f64 = b.iter().map(|s| (*s as f64).powi(2)).sum();
            let tone =
                voice.is_some_and(|f| tone_power(b, rate, f) > 0.5 * energy * b.len() as f64 / 2.0);
            ((loud > 100.0 || pauses) && !tone).then_some(loud)
        })
        .collect()
}

/// Like [`clip_match`] for speech (a prompt): its pauses count as part of the match,
/// so the phone's recording must be quiet where the prompt is.
pub fn speech_match(p: &Phone, wav: &Path, secs: usize, voice: f64) -> f64 {
    envelope_match(p, wav, secs, voice, true)
}

/// The best Pearson correlation of `reference` with any stretch of `heard` as long
/// made only of blocks that count.
fn best_correlation(reference: &[f64], heard: &[Option<f64>]) -> f64 {
    let n = reference.len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mr = mean(reference);
    let sr: f64 = reference
        .iter()
        .map(|x| (x - mr).powi(2))
        .sum::<f64>()
        .sqrt();
    heard
        .windows(n)
        .filter_map(|w| w.iter().copied().collect::<Option<Vec<f64>>>())
        .map(|w| {
            let mw = mean(&w);
            let sw: f64 = w.iter().map(|x| (x - mw).powi(2)).sum::<f64>().sqrt();
            let cov: f64 = w
                .iter()
                .zip(reference)
                .map(|(a, b)| (a - mw) * (b - mr))
                .sum();
            if sw == 0.0 || sr == 0.0 {
                0.0
            } else {
                cov / (sw * sr)
            }
        })
        .fold(-1.0, f64::max)
}

/// How well the first `secs` seconds of `wav` match some stretch of `p`'s last
/// recording where neither silence nor the other phone's tone `voice` is heard
/// (loudness envelopes in 50 ms blocks; 1.0 is a perfect match, -1.0 no stretch).
/// Music survives G.711 and jitter buffers this way where a waveform comparison
/// would not.
pub fn clip_match(p: &Phone, wav: &Path, secs: usize, voice: f64) -> f64 {
    envelope_match(p, wav, secs, voice, false)
}

/// [`clip_match`]; with `pauses`, quiet blocks count too ([`speech_match`]).
fn envelope_match(p: &Phone, wav: &Path, secs: usize, voice: f64, pauses: bool) -> f64 {
    let f = last_recording(p);
    let (clip, clip_rate) = read_wav(wav);
    let reference: Vec<f64> = envelope(
        &clip[..(clip_rate as usize * secs).min(clip.len())],
        clip_rate,
        None,
        pauses,
    )
    .into_iter()
    .map(|b| b.unwrap_or(0.0))
    .collect();
    let (heard, rate) = read_wav(&f);
    best_correlation(&reference, &envelope(&heard, rate, Some(voice), pauses))
}

/// Goertzel power of frequency `f` in `samples` (the same measure the box's DTMF code
/// is tested with).
pub use media::dtmf::tone_power;

/// The frequency (of `candidates`) that dominates the recording's loud part, with the
/// number of samples above a whisper.
pub fn dominant_tone(path: &Path, candidates: &[f64]) -> (f64, usize) {
    dominant_tone_at(path, candidates, 0.25)
}

/// Like [`dominant_tone`], measured half a second from `at` (a fraction of the length).
pub fn dominant_tone_at(path: &Path, candidates: &[f64], at: f64) -> (f64, usize) {
    let (s, rate) = read_wav(path);
    let loud: Vec<i16> = s
        .iter()
        .copied()
        .filter(|x| x.unsigned_abs() > 300)
        .collect();
    let from = ((s.len() as f64 * at) as usize).min(s.len().saturating_sub(4000));
    let window = &s[from..(from + 4000).min(s.len())];
    let best = candidates
        .iter()
        .copied()
        .max_by(|a, b| tone_power(window, rate, *a).total_cmp(&tone_power(window, rate, *b)))
        .unwrap();
    // The winner must clearly beat every other candidate.
    let p = tone_power(window, rate, best);
    for c in candidates {
        if *c != best {
            assert!(
                p > 100.0 * tone_power(window, rate, *c).max(1.0),
                "no clear tone in {}",
                path.display()
            );
        }
    }
    (best, loud.len())
}

/// Sends a raw datagram to the daemon and returns the answer, if one comes in 2 s.
pub fn udp_exchange(pbx: &Pbxd, bytes: &[u8]) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(bytes, pbx.sip).unwrap();
    let mut buf = [0u8; 65536];
    s.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// An OPTIONS from a socket on `ip` (a loopback address) with From user `user`: the
/// answer, or None when the box says nothing within two seconds.
pub fn options_from(pbx: &Pbxd, ip: &str, user: &str) -> Option<String> {
    let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = s.local_addr().unwrap();
    let branch = format!("z9hG4bKopt{}", rand_tag());
    let msg = format!("OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nFrom: <sip:{user}@{ip}>;tag=o1\r\nTo: <sip:{}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: e2e\r\nContent-Length: 0\r\n\r\n", pbx.sip, pbx.sip);
    s.send_to(msg.as_bytes(), pbx.sip).unwrap();
    let mut buf = [0u8; 65536];
    s.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// `n` REGISTERs for `user` answering the box's challenge with a wrong digest (a
/// password guess) from one socket on `ip`; returns the status lines answered to the
/// guesses (a banned source gets none).
pub fn guess_passwords(pbx: &Pbxd, ip: &str, user: &str, n: usize) -> Vec<String> {
    let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let me = s.local_addr().unwrap();
    let mut buf = [0u8; 65536];
    let register = |i: usize, auth: &str| {
        let branch = format!("z9hG4bKguess{}{i}", rand_tag());
        format!("REGISTER sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nFrom: <sip:{user}@{0}>;tag=g{i}\r\nTo: <sip:{user}@{0}>\r\nCall-ID: {branch}\r\nCSeq: {1} REGISTER\r\nContact: <sip:{user}@{me}>\r\n{auth}Max-Forwards: 70\r\nUser-Agent: e2e\r\nContent-Length: 0\r\n\r\n", pbx.sip, i + 1)
    };
    // The challenge: its nonce makes the guesses real answers.
    s.send_to(register(0, "").as_bytes(), pbx.sip).unwrap();
    let nonce = match s.recv_from(&mut buf) {
        Ok((len, _)) => {
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            text.split("nonce=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        }
        Err(_) => return Vec::new(), // banned already
    };
    let mut answers = Vec::new();
    for i in 1..=n {
        let auth = format!("Authorization: Digest username=\"{user}\", realm=\"pbx\", nonce=\"{nonce}\", uri=\"sip:{}\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5\r\n", pbx.sip);
        s.send_to(register(i, &auth).as_bytes(), pbx.sip).unwrap();
        if let Ok((len, _)) = s.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            answers.push(text.lines().next().unwrap_or("").to_string());
        }
    }
    answers
}

fn rand_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// How long a phone may take to register, answer or connect.
pub const PHONE_WAIT: Duration = Duration::from_secs(15);

/// A baresip phone that has registered (checked through `pbxctl registrations`).
pub fn phone(
    pbx: &Pbxd,
    user: &str,
    password: &str,
    tone: u32,
    auto_answer: bool,
    codecs: &str,
) -> Phone {
    phone_of(
        Kind::Baresip,
        pbx,
        user,
        password,
        tone,
        auto_answer,
        codecs,
    )
}

/// A phone of `kind` that has registered (checked through `pbxctl registrations`).
pub fn phone_of(
    kind: Kind,
    pbx: &Pbxd,
    user: &str,
    password: &str,
    tone: u32,
    auto_answer: bool,
    codecs: &str,
) -> Phone {
    registered_phone(
        kind,
        pbx,
        PhoneSpec {
            user,
            password,
            tone,
            auto_answer,
            codecs,
            tls_ca: None,
            srtp: false,
        },
    )
}

/// A phone of `kind` set up as `spec` says that has registered.
pub fn registered_phone(kind: Kind, pbx: &Pbxd, spec: PhoneSpec) -> Phone {
    let user = spec.user;
    // A phone that had this account before may still be registered (it was stopped
    // without unregistering): wait for the new phone's own registration, not that one.
    let line_of = |pbx: &Pbxd| {
        pbx.ctl_ok(&["registrations"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(user))
            .map(str::to_string)
    };
    let before = line_of(pbx);
    let p = Phone::start_kind(pbx, kind, spec);
    let registered = wait_until(PHONE_WAIT, || {
        line_of(pbx).is_some_and(|l| Some(&l) != before.as_ref())
    });
    assert!(registered, "{user} did not register:\n{}", p.log());
    p
}

/// Adds extension `n` with the password `Secret-<n>x`, which it returns.
pub fn add_ext(p: &Pbxd, n: &str) -> String {
    let pw = format!("Secret-{n}x");
    p.ctl_ok(&["extension", "add", n, "--password", &pw]);
    pw
}

/// Adds each of `numbers` ([`add_ext`]); their passwords, in order.
pub fn add_exts(p: &Pbxd, numbers: &[&str]) -> Vec<String> {
    numbers.iter().map(|n| add_ext(p, n)).collect()
}

pub fn dial(from: &mut Phone, pbx: &Pbxd, number: &str) {
    let _ = pbx;
    from.command("dial", &format!("sip:{number}@{}", from.server));
}

/// `from` dials `number`; both it and `to` reach CALL_ESTABLISHED.
pub fn connect(from: &mut Phone, to: &Phone, pbx: &Pbxd, number: &str) {
    dial(from, pbx, number);
    assert!(
        to.wait_event("CALL_ESTABLISHED", PHONE_WAIT).is_some(),
        "{} never answered: {:?}",
        to.name,
        to.events()
    );
    assert!(
        from.wait_event("CALL_ESTABLISHED", PHONE_WAIT).is_some(),
        "{} never connected: {:?}",
        from.name,
        from.events()
    );
}

/// Changes the configuration the way a technician would: export, edit, import.
pub fn edit_config(pbx: &Pbxd, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    edit(&mut v);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.json");
    std::fs::write(&f, v.to_string()).unwrap();
    pbx.ctl_ok(&["config", "import", f.to_str().unwrap()]);
}

/// Changes one extension's fields in the configuration (export, edit, import).
pub fn edit_extension(pbx: &Pbxd, number: &str, f: impl Fn(&mut serde_json::Value)) {
    edit_config(pbx, |v| {
        for e in v["extensions"].as_array_mut().unwrap() {
            if e["number"] == number {
                f(e);
            }
        }
    });
}

/// Packets the relay moved A->B and B->A in the one call listed.
pub fn relay_counters(pbx: &Pbxd) -> (u64, u64) {
    let calls = pbx.ctl_ok(&["calls"]);
    let row: Vec<&str> = calls
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no call listed: {calls}"))
        .split_whitespace()
        .collect();
    (row[5].parse().unwrap(), row[6].parse().unwrap())
}

/// The reason baresip gives when a call closes, e.g. "486 Busy Here".
pub fn closed_reason(p: &Phone) -> String {
    let e = p
        .wait_event("CALL_CLOSED", PHONE_WAIT)
        .unwrap_or_else(|| panic!("{}: call did not close: {:?}", p.name, p.events()));
    e["param"].as_str().unwrap_or_default().to_string()
}

/// `p`'s last recording, once it holds something (a pjsua2 recording is closed when
/// its call ends: up to 5 s).
pub fn last_recording(p: &Phone) -> PathBuf {
    wait_until(Duration::from_secs(5), || {
        p.heard()
            .last()
            .is_some_and(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 44))
    });
    p.heard()
        .pop()
        .unwrap_or_else(|| panic!("{} recorded nothing", p.name))
}

/// The power of each of [`TONES`] in the `secs` of `p`'s last recording that end
/// `before` seconds before its end (what it heard last, once calls settled).
pub fn tone_powers(p: &Phone, before: f64, secs: f64) -> Vec<f64> {
    let (s, rate) = read_wav(&last_recording(p));
    let end = s.len().saturating_sub((before * rate as f64) as usize);
    let from = end.saturating_sub((secs * rate as f64) as usize);
    TONES
        .iter()
        .map(|t| tone_power(&s[from..end], rate, *t))
        .collect()
}

pub fn assert_heard(p: &Phone, tone: f64) {
    assert_heard_at(p, tone, 0.25)
}

/// Asserts that `p`'s last recording has `tone` at `at` (a fraction of its length)
/// and enough sound overall. Waits up to 5 s for a pjsua2 recording to be closed.
pub fn assert_heard_at(p: &Phone, tone: f64, at: f64) {
    let f = last_recording(p);
    let (best, loud) = dominant_tone_at(&f, &TONES, at);
    let sizes = recording_sizes(p);
    assert!(
        loud > 8000,
        "{} heard almost nothing ({loud} loud samples): {sizes:?}",
        p.name
    );
    assert_eq!(best, tone, "{} heard the wrong tone", p.name);
}

/// `p`'s recordings with their sizes in bytes, for a failure's message.
pub fn recording_sizes(p: &Phone) -> Vec<String> {
    p.heard()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f.display(),
                std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)
            )
        })
        .collect()
}

/// Asserts that somewhere in `p`'s last recording `tone` is heard clearly for half a
/// second (music on hold, which plays for a while in the middle of a call).
pub fn assert_heard_somewhere(p: &Phone, tone: f64) {
    let f = last_recording(p);
    let (s, rate) = read_wav(&f);
    let win = rate as usize / 2;
    let others = TONES;
    let found = s.chunks_exact(win).any(|w| {
        let p = tone_power(w, rate, tone);
        p > 1e9
            && others
                .iter()
                .filter(|o| **o != tone)
                .all(|o| p > 100.0 * tone_power(w, rate, *o).max(1.0))
    });
    assert!(
        found,
        "{} never heard {tone} Hz in {} ({} s); its recordings: {:?}",
        p.name,
        f.display(),
        s.len() / rate as usize,
        recording_sizes(p)
    );
}

/// Runs SIPp with a scenario given as text against `remote`, bound to `ip:port`.
/// `extra` adds arguments (`-m`, `-au`, ...). Spawned, so UAS scenarios can wait.
pub fn sipp_spawn(
    xml: &str,
    remote: &str,
    ip: &str,
    port: u16,
    extra: &[&str],
) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.xml");
    std::fs::write(&path, xml).unwrap();
    let mut cmd = Command::new("sipp");
    cmd.current_dir(dir.path());
    if !remote.is_empty() {
        cmd.arg(remote);
    }
    let child = cmd
        .arg("-sf")
        .arg(&path)
        .args([
            "-i",
            ip,
            "-p",
            &port.to_string(),
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-trace_msg",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipp (apt package sip-tester)");
    (child, dir)
}

/// Waits for a spawned SIPp; panics with its messages unless it passed.
pub fn sipp_wait(name: &str, child: Child, dir: &tempfile::TempDir) {
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let mut logs = String::new();
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            logs.push_str(&format!("== {}\n", e.path().display()));
            logs.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        panic!(
            "SIPp {name} failed ({}):\n{}\n{}\n{logs}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A mail server on loopback (aiosmtpd, `phones/smtp_sink.py`): STARTTLS required,
/// AUTH for one user after TLS, its certificate for 127.0.0.1 signed by a CA of its
/// own (made with openssl), so the box must be told to trust that CA. Each message it
/// takes is a JSON summary in `out` (envelope, TLS, user, headers, text, attachments).
pub struct MailSink {
    pub port: u16,
    /// The CA certificate (PEM) the server's certificate is signed by.
    pub ca_pem: String,
    pub out: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl MailSink {
    pub fn start(user: &str, password: &str) -> MailSink {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl (scripts/test installs it)");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=pbx test mail CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "srv.key",
                    "-out",
                    "srv.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let out = d.join("mail");
        std::fs::create_dir_all(&out).unwrap();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("phones/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--user",
                user,
                "--password",
                password,
            ])
            .arg("--cert")
            .arg(d.join("srv.pem"))
            .arg("--key")
            .arg(d.join("srv.key"))
            .arg("--out")
            .arg(&out)
            .args(["--lifetime", "300"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .expect("run the mail server (aiosmtpd: scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "the mail server did not start: {}",
            std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default()
        );
        MailSink {
            port,
            ca_pem: std::fs::read_to_string(d.join("ca.pem")).unwrap(),
            out,
            child,
            _dir: dir,
        }
    }

    /// The messages taken so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|x| x == "json"));
        names.sort();
        names
            .iter()
            .filter_map(|p| serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok())
            .collect()
    }

    /// Waits up to `timeout` for `n` messages.
    pub fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<Value> {
        wait_until(timeout, || self.messages().len() >= n);
        self.messages()
    }

    /// What the server wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A certification authority of the test's own: the issuer and its certificate, PEM.
pub fn test_ca() -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "e2e test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    (rcgen::Issuer::new(ca, ca_key), ca_cert.pem())
}

/// A certification authority of the test's own signs `request_pem` (PKCS #10, what the
/// box's certificate store makes) for `days`. Returns the chain (the certificate, then
/// the CA's) and the CA's certificate, both PEM.
pub fn sign_request(request_pem: &str, days: u64) -> (String, String) {
    let (issuer, ca_pem) = test_ca();
    let mut req = rcgen::CertificateSigningRequestParams::from_pem(request_pem).unwrap();
    let now = std::time::SystemTime::now();
    req.params.not_before = (now - Duration::from_secs(86_400)).into();
    req.params.not_after = (now + Duration::from_secs(days * 86_400)).into();
    let cert = req.signed_by(&issuer).unwrap();
    (format!("{}{ca_pem}", cert.pem()), ca_pem)
}

/// What `pbxctl peers --json` says of the interface or link `name`.
pub fn peer(p: &Pbxd, name: &str) -> Value {
    let v: Value = serde_json::from_str(&p.ctl_ok(&["peers", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no peer {name}: {v}"))
}

/// dnsmasq on 127.0.0.1:`port` with these record options (`--host-record=...`,
/// `--srv-host=...`); killed on drop.
pub struct Dnsmasq(Child);

impl Dnsmasq {
    pub fn start(port: u16, records: &[String]) -> Dnsmasq {
        Dnsmasq(
            Command::new("dnsmasq")
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--user=root",
                ])
                .args(["--listen-address=127.0.0.1", "--bind-interfaces"])
                .arg(format!("--port={port}"))
                .args(records)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run dnsmasq (apt package dnsmasq-base)"),
        )
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a Chromium script of `tests/web` (playwright-core) against the daemon's web,
/// through `prefix` (`ip netns exec NS` for a daemon in a namespace); fails the test
/// with the script's output and the daemon's log unless it says it passed.
pub fn browser_via(pbx: &Pbxd, prefix: &[&str], script: &str, env: &[(&str, &str)]) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = repo.join("tests/web");
    let artifacts = repo.join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut c = match prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg("node");
            c
        }
        None => Command::new("node"),
    };
    let out = c
        .arg(dir.join(script))
        .env("BASE_URL", format!("https://{}", pbx.web))
        .env("ARTIFACTS", &artifacts)
        .env("NODE_PATH", dir.join("node_modules"))
        .envs(env.iter().copied())
        .current_dir(&dir)
        .output()
        .expect("run node (scripts/test installs playwright-core)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "browser test {script} failed:\n{text}\npbxd log:\n{}",
        pbx.log_text()
    );
    assert!(text.contains("browser test passed"), "{text}");
    // What the script printed, for `--nocapture`.
    eprintln!("{text}");
}

/// UDP payloads of a pcap file (Linux loopback: Ethernet framing), with their source
/// and destination ports.
pub fn udp_payloads(pcap: &Path) -> Vec<(u16, u16, Vec<u8>)> {
    let b = std::fs::read(pcap).unwrap();
    assert!(b.len() >= 24, "no pcap header");
    let le = b[0..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |i: usize| {
        let x = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let caplen = u32_at(i + 8) as usize;
        let pkt = &b[i + 16..(i + 16 + caplen).min(b.len())];
        i += 16 + caplen;
        // Ethernet (14), IPv4 (IHL), UDP (8).
        if pkt.len() < 14 + 20 + 8 || pkt[12..14] != [0x08, 0x00] || pkt[23] != 17 {
            continue;
        }
        let ihl = (pkt[14] & 0x0f) as usize * 4;
        let udp = &pkt[14 + ihl..];
        if udp.len() < 8 {
            continue;
        }
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        out.push((sport, dport, udp[8..].to_vec()));
    }
    out
}

/// The power of `hz` in μ-law samples, as a fraction of all their power (Goertzel).
pub fn tone_share(ulaw: &[u8], hz: f64) -> f64 {
    let x: Vec<f64> = ulaw
        .iter()
        .map(|&u| {
            // G.711 μ-law to linear.
            let u = !u;
            let sign = u & 0x80;
            let exp = (u >> 4) & 7;
            let man = u & 0x0f;
            let mag = ((((man as i32) << 3) + 0x84) << exp) - 0x84;
            f64::from(if sign != 0 { -mag } else { mag })
        })
        .collect();
    let n = x.len() as f64;
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let (mut s1, mut s2) = (0.0, 0.0);
    for v in &x {
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = x.iter().map(|v| v * v).sum::<f64>() * n / 2.0;
    if total == 0.0 {
        0.0
    } else {
        p / total
    }
}

/// Starts tcpdump on loopback with `filter`, writing to `pcap`.
pub fn capture(pcap: &Path, filter: &str) -> Child {
    let dump = Command::new("timeout")
        .args(["-s", "INT", "600", "tcpdump", "-i", "lo", "-U", "-n", "-w"])
        .arg(pcap)
        .arg(filter)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run tcpdump");
    assert!(
        wait_until(Duration::from_secs(15), || pcap.exists()),
        "tcpdump did not start"
    );
    std::thread::sleep(Duration::from_millis(500));
    dump
}

pub fn stop_capture(mut dump: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let _ = dump.wait();
}
