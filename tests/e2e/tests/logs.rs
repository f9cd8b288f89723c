//! The logs (Kerio 28) against the real daemon: the debug log's "sip" class written
//! under a flood of SIP messages, rolling over within its cap; searched, downloaded and
//! cleared through the API; bad settings refused. Forwarding: RFC 5424 messages to a
//! UDP listener of the test's, checked field by field, and to a real syslog server
//! (Debian's rsyslog) over UDP, TCP and TLS, whose certificate the box checks.

use e2e::*;
use serde_json::json;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PW: &str = "Logs-Admin-1!";

fn refs(h: &[String]) -> Vec<&str> {
    h.iter().map(String::as_str).collect()
}

fn put_settings(pbx: &Pbxd, h: &[String], s: &serde_json::Value) -> HttpAnswer {
    pbx.https(
        "PUT",
        "/api/v1/logs/settings",
        Some(&s.to_string()),
        &refs(h),
    )
}

fn options(from: &UdpSocket, to: std::net::SocketAddr, i: usize) -> String {
    let me = from.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKflood{i}\r\nFrom: <sip:probe@{me}>;tag=f{i}\r\nTo: <sip:{to}>\r\nCall-ID: flood-{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    from.send_to(msg.as_bytes(), to).unwrap();
    msg
}

#[test]
fn a_flood_of_debug_lines_rolls_over_within_the_cap() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    // Bad settings are refused with the field named, and change nothing.
    for (bad, field) in [
        (json!({"size_kib": 1}), "size_kib"),
        (json!({"debug": ["everything"]}), "debug"),
        (json!({"syslog": {"enabled": true}}), "syslog.host"),
        (json!({"syslog": {"facility": "local9"}}), "syslog.facility"),
    ] {
        let r = put_settings(&pbx, &h, &bad);
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.body.contains(field), "{bad}: {r:?}");
    }
    let r = put_settings(
        &pbx,
        &h,
        &json!({"syslog": {"transport": "carrier-pigeon"}}),
    );
    assert_eq!(r.status, 400, "{r:?}");
    // SIP messages on; 16 KiB files, two kept.
    let s = json!({"debug": ["sip"], "size_kib": 16, "keep": 2, "days": 30});
    let r = put_settings(&pbx, &h, &s);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["debug"], json!(["sip"]));
    assert_eq!(r.json()["size_kib"], json!(16));

    // A flood from its own loopback address (the rate limit may ban it: what came in
    // is written all the same).
    let flood = UdpSocket::bind("127.0.0.77:0").unwrap();
    for i in 0..3000 {
        options(&flood, pbx.sip, i);
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let dir = pbx.data.path().join("logs");
    let (mut bytes, mut files) = (0u64, Vec::new());
    let settled = wait_until(Duration::from_secs(20), || {
        let a = pbx.https(
            "GET",
            "/api/v1/logs/debug?q=flood-2999&limit=5",
            None,
            &refs(&h),
        );
        a.json()["lines"].as_array().is_some_and(|l| !l.is_empty())
    });
    assert!(
        settled,
        "the flood's last message never reached the debug log"
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("debug.log") {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= 16 * 1024, "{name} is {len} bytes");
            bytes += len;
            files.push(name);
        }
    }
    files.sort();
    assert_eq!(files, ["debug.log", "debug.log.1", "debug.log.2"]);
    assert!(bytes <= 3 * 16 * 1024, "{bytes}");
    let list = pbx.https("GET", "/api/v1/logs", None, &refs(&h)).json();
    let debug = list
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "debug")
        .unwrap()
        .clone();
    assert_eq!(debug["files"], json!(3), "{list}");
    assert!(debug["bytes"].as_u64().unwrap() <= 3 * 16 * 1024, "{list}");

    // The newest message first, whole: the request line and its headers, as the
    // flood sent them.
    let a = pbx.https(
        "GET",
        "/api/v1/logs/debug?q=flood-29&limit=3",
        None,
        &refs(&h),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let lines: Vec<String> = serde_json::from_value(a.json()["lines"].clone()).unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let newest = lines
        .iter()
        .find(|l| l.contains(" in from udp:127.0.0.77:"))
        .unwrap();
    assert!(
        newest.contains(" DEBUG sip: in from udp:127.0.0.77:"),
        "{newest}"
    );
    assert!(
        newest.contains("\n    OPTIONS sip:") && newest.contains("\n    Call-ID: flood-29"),
        "{newest}"
    );
    assert!(a.json()["more"].as_bool().is_some());
    // What the box answers is there too (the flood's source is banned by now: it
    // gets no answer).
    let probe = UdpSocket::bind("127.0.0.79:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    options(&probe, pbx.sip, 9999);
    let mut buf = [0u8; 4096];
    assert!(probe.recv(&mut buf).is_ok(), "no answer to the probe");
    let a = pbx.https(
        "GET",
        "/api/v1/logs/debug?q=out%20to%20udp:127.0.0.79&limit=1",
        None,
        &refs(&h),
    );
    let l = a.json()["lines"][0].as_str().unwrap_or("").to_string();
    assert!(
        l.contains("\n    SIP/2.0 200 OK") && l.contains("\n    Call-ID: flood-9999"),
        "{l}"
    );

    // Downloaded whole, oldest first.
    let d = pbx.https("GET", "/api/v1/logs/debug/download", None, &refs(&h));
    assert_eq!(d.status, 200);
    assert_eq!(
        d.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(d
        .header("content-disposition")
        .is_some_and(|c| c.starts_with("attachment; filename=\"pbx-debug-")));
    let stamps: Vec<&str> = d
        .body
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| &l[..24])
        .collect();
    assert!(stamps.len() > 20 && stamps.windows(2).all(|w| w[0] <= w[1]));
    assert!(d.body.len() as u64 <= bytes + 4096);

    // Off again: nothing more is written. Cleared: the files go, and the security log
    // says who cleared it.
    let r = put_settings(&pbx, &h, &json!({"debug": [], "size_kib": 16, "keep": 2}));
    assert_eq!(r.status, 200);
    let r = pbx.https("DELETE", "/api/v1/logs/debug", None, &refs(&h));
    assert_eq!(r.status, 204, "{r:?}");
    for i in 5000..5020 {
        options(&UdpSocket::bind("127.0.0.78:0").unwrap(), pbx.sip, i);
    }
    std::thread::sleep(Duration::from_secs(1));
    let a = pbx.https("GET", "/api/v1/logs/debug?q=flood-50", None, &refs(&h));
    assert_eq!(a.json()["lines"], json!([]), "{a:?}");
    let sec = pbx
        .https("GET", "/api/v1/logs/security?", None, &refs(&h))
        .body;
    assert!(sec.contains("debug log cleared"), "{sec}");
    // The store's logs are not cleared; odd requests get clear answers.
    let r = pbx.https("DELETE", "/api/v1/logs/security", None, &refs(&h));
    assert_eq!(r.status, 409, "{r:?}");
    let r = pbx.https("GET", "/api/v1/logs/mail", None, &refs(&h));
    assert_eq!(r.status, 404, "{r:?}");
    let r = pbx.https("GET", "/api/v1/logs/debug?limit=0", None, &refs(&h));
    assert_eq!(r.status, 400, "{r:?}");
    // The config log as lines too, searched.
    let a = pbx.https("GET", "/api/v1/logs/config/download", None, &refs(&h));
    assert!(a.body.contains("changed the log settings"), "{a:?}");
    // A user of the portal sees none of it.
    let body = json!({"username": "logreader", "password": "Reader-Pass-1!", "role": "user"});
    let r = pbx.https("POST", "/api/v1/users", Some(&body.to_string()), &refs(&h));
    assert_eq!(r.status, 201, "{r:?}");
    let u = pbx.login("logreader", "Reader-Pass-1!");
    let r = pbx.https("GET", "/api/v1/logs/debug", None, &refs(&u));
    assert_eq!(r.status, 403, "{r:?}");
}

/// A header field of an RFC 5424 message, split on spaces: PRI and VERSION, TIMESTAMP,
/// HOSTNAME, APP-NAME, PROCID, MSGID, STRUCTURED-DATA, then MSG.
fn fields(m: &str) -> Vec<String> {
    let mut f: Vec<String> = m.splitn(8, ' ').map(String::from).collect();
    while f.len() < 8 {
        f.push(String::new());
    }
    f
}

#[test]
fn messages_reach_a_syslog_listener_and_rsyslog_over_udp_tcp_and_tls() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let pid = pbx.child.id().to_string();

    // A listener of the test's: every field checked.
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let s = json!({"syslog": {
        "enabled": true, "host": "127.0.0.1", "port": listener.local_addr().unwrap().port(),
        "transport": "udp", "facility": "local3", "logs": ["config", "security", "warning"]
    }});
    assert_eq!(put_settings(&pbx, &h, &s).status, 200);
    std::thread::sleep(Duration::from_millis(500));
    let bad = pbx.https(
        "POST",
        "/api/v1/login",
        Some(r#"{"username": "intruder", "password": "guess"}"#),
        &[],
    );
    assert_eq!(bad.status, 401);
    let mut buf = [0u8; 4096];
    let m = loop {
        let n = listener.recv(&mut buf).expect("no syslog datagram in 5 s");
        let m = String::from_utf8_lossy(&buf[..n]).to_string();
        if m.contains("intruder") {
            break m;
        }
    };
    let f = fields(&m);
    // local3 (19) * 8 + warning (4).
    assert_eq!(f[0], "<156>1", "{m}");
    assert_eq!(f[1].len(), 24, "{m}");
    assert!(f[1].ends_with('Z') && f[1].as_bytes()[10] == b'T', "{m}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(f[2], host.trim(), "{m}");
    assert_eq!(f[3], "pbxd", "{m}");
    assert_eq!(f[4], pid, "{m}");
    assert_eq!(f[5], "security", "{m}");
    assert_eq!(f[6], "-", "{m}");
    assert!(
        f[7].contains("intruder") && f[7].contains("login failed"),
        "{m}"
    );
    // A change of the configuration: notice (5).
    add_ext(&pbx, "4101");
    let m = loop {
        let n = listener.recv(&mut buf).expect("no config message");
        let m = String::from_utf8_lossy(&buf[..n]).to_string();
        if m.contains("4101") {
            break m;
        }
    };
    let f = fields(&m);
    assert_eq!((f[0].as_str(), f[5].as_str()), ("<157>1", "config"), "{m}");
    assert!(f[7].contains("revision"), "{m}");

    // rsyslog, a real syslog server, on UDP, TCP and TLS.
    let rs = Rsyslog::start();
    let ca_pem = rs.ca_pem.clone();
    for (transport, port, probe) in [
        ("udp", rs.udp, "4201"),
        ("tcp", rs.tcp, "4202"),
        ("tls", rs.tls, "4203"),
    ] {
        let s = json!({"syslog": {
            "enabled": true, "host": "127.0.0.1", "port": port, "transport": transport,
            "facility": "local5", "logs": ["config"]
        }});
        assert_eq!(put_settings(&pbx, &h, &s).status, 200);
        std::thread::sleep(Duration::from_millis(500));
        if transport == "tls" {
            // The box does not know the server's CA: nothing goes, and the warning
            // log says why.
            add_ext(&pbx, "4299");
            let said = wait_until(Duration::from_secs(10), || {
                let a = pbx.https(
                    "GET",
                    "/api/v1/logs/warning?q=syslog%20server",
                    None,
                    &refs(&h),
                );
                a.json()["lines"].as_array().is_some_and(|l| !l.is_empty())
            });
            assert!(
                said,
                "no warning about the untrusted server:\n{}",
                pbx.log_text()
            );
            assert!(!rs.output().contains("4299"), "{}", rs.output());
            let r = pbx.https(
                "PUT",
                "/api/v1/certificates/trusted",
                Some(&ca_pem),
                &refs(&h),
            );
            assert_eq!(r.status, 200, "{r:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
        add_ext(&pbx, probe);
        let got = wait_until(Duration::from_secs(15), || rs.output().contains(probe));
        assert!(
            got,
            "{transport}: rsyslog never got {probe}:\n{}\n{}",
            rs.output(),
            pbx.log_text()
        );
        let line = rs
            .output()
            .lines()
            .find(|l| l.contains(probe))
            .unwrap()
            .to_string();
        // rsyslog's template: input, PRI, version, hostname, app, procid, msgid, msg.
        let f: Vec<&str> = line.splitn(8, ' ').collect();
        let input = if transport == "udp" { "imudp" } else { "imtcp" };
        assert_eq!(f[0], input, "{line}");
        // local5 (21) * 8 + notice (5).
        assert_eq!(f[1], "173", "{line}");
        assert_eq!(f[2], "1", "{line}");
        assert_eq!(f[3], host.trim(), "{line}");
        assert_eq!(
            (f[4], f[5], f[6]),
            ("pbxd", pid.as_str(), "config"),
            "{line}"
        );
        assert!(f[7].contains("revision"), "{line}");
    }
    // What went while the server could not be trusted is counted, not lost silently.
    let notes = rs.output();
    assert!(notes.contains("log messages were not forwarded"), "{notes}");
}

/// rsyslogd in a directory of the test's, listening on loopback: UDP, TCP and TLS (its
/// certificate from a CA of the test's), writing what it parsed with a template.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    udp: u16,
    tcp: u16,
    tls: u16,
    ca_pem: String,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, ca_pem) = test_ca();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let d = dir.path();
        std::fs::write(d.join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
        let (udp, tcp, tls) = (free_port(), free_port(), free_port());
        let conf = format!(
            r#"global(workDirectory="{d}" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{d}/ca.pem"
       defaultNetstreamDriverCertFile="{d}/cert.pem"
       defaultNetstreamDriverKeyFile="{d}/key.pem")
module(load="imudp")
module(load="imtcp" maxSessions="10")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imtcp" address="127.0.0.1" port="{tls}" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
template(name="fields" type="string" string="%inputname% %pri% %protocol-version% %hostname% %app-name% %procid% %msgid% %msg%\n")
*.* action(type="omfile" file="{d}/out.log" template="fields")
"#,
            d = d.display()
        );
        std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .expect("rsyslogd (Debian's rsyslog)");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", tls)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", tcp)).is_ok()
        });
        assert!(up, "rsyslogd did not listen: {}", read(&d.join("stderr")));
        Rsyslog {
            child,
            dir,
            udp,
            tcp,
            tls,
            ca_pem,
        }
    }

    fn output(&self) -> String {
        read(&self.dir.path().join("out.log"))
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium on the Logs page (tests/web/logs.mjs): settings saved and refused, the
/// debug log viewed, searched, downloaded and cleared.
#[test]
fn the_logs_page_views_searches_downloads_and_clears() {
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("debug.log");
    browser_via(
        &pbx,
        &[],
        "logs.mjs",
        &[("ADMIN_PW", PW), ("SAVE_TO", saved.to_str().unwrap())],
    );
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(
        text.contains(" INFO  system: configuration in force"),
        "{text}"
    );
    let cfg: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    assert_eq!(cfg["logs"]["debug"], json!(["sip"]));
    assert_eq!(cfg["logs"]["size_kib"], json!(64));
    assert_eq!(cfg["logs"]["keep"], json!(5));
}

/// The support bundle: what technical support asks for, without a password, secret
/// or PIN in it.
#[test]
fn the_support_bundle_holds_the_facts_and_no_secrets() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    pbx.ctl_ok(&["extension", "add", "101", "--password", "Bundle-Secret-101"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.tar.gz");
    let a = pbx.https_via(
        &[],
        &["-o", file.to_str().unwrap()],
        "GET",
        "/api/v1/system/support-bundle",
        None,
        &refs(&h),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("content-type").as_deref(),
        Some("application/gzip")
    );
    assert!(a
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment; filename=\"pbx-support-")));
    let list = Command::new("tar").arg("-tzf").arg(&file).output().unwrap();
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    for name in [
        "versions.json",
        "health.json",
        "config.json",
        "network.json",
        "registrations.json",
        "calls.json",
        "peers.json",
        "logs/config.log",
        "logs/security.log",
        "logs/debug.log",
    ] {
        assert!(list.lines().any(|l| l == name), "{name} not in:\n{list}");
    }
    let out = dir.path().join("x");
    std::fs::create_dir_all(&out).unwrap();
    let x = Command::new("tar")
        .arg("-xzf")
        .arg(&file)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(x.success());
    let mut all = String::new();
    for name in list.lines() {
        all.push_str(&std::fs::read_to_string(out.join(name)).unwrap_or_default());
    }
    for secret in ["Bundle-Secret-101", PW, "$argon2"] {
        assert!(!all.contains(secret), "{secret} is in the bundle");
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["extensions"][0]["number"], "101");
    assert_eq!(cfg["accounts"][0]["secret"], "****");
    let health: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("health.json")).unwrap()).unwrap();
    assert!(health["temperatures"].is_array(), "{health}");
    let versions = std::fs::read_to_string(out.join("versions.json")).unwrap();
    assert!(versions.contains("\"firmware\""), "{versions}");
    let security = std::fs::read_to_string(out.join("logs/security.log")).unwrap();
    assert!(security.contains("Admin: session opened"), "{security}");
    // A portal user gets none of it.
    let body = json!({"username": "bundler", "password": "Bundler-Pass-1!", "role": "user"});
    let r = pbx.https("POST", "/api/v1/users", Some(&body.to_string()), &refs(&h));
    assert_eq!(r.status, 201, "{r:?}");
    let u = pbx.login("bundler", "Bundler-Pass-1!");
    let r = pbx.https("GET", "/api/v1/system/support-bundle", None, &refs(&u));
    assert_eq!(r.status, 403, "{r:?}");
}
