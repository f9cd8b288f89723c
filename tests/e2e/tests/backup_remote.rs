//! Backups sent off the box (issue 21.1): Debian's nginx, started by the test on
//! loopback with TLS (a certificate of the test's own CA), HTTP Basic authentication and
//! WebDAV `PUT`, takes the box's backups. An untrusted certificate, a wrong password and
//! a folder that does not exist are refused with their reasons; a backup sent by hand
//! and a scheduled one arrive byte for byte; the password never comes back out of the
//! API. In Chromium, the Backup page sets the target and sends a backup.

use e2e::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PW: &str = "Backup-Admin-1!";
const DAV_USER: &str = "pbx-backup";
const DAV_PW: &str = "Dav-Secret-77";

fn refs(h: &[String]) -> Vec<&str> {
    h.iter().map(String::as_str).collect()
}

/// nginx on 127.0.0.1 with WebDAV PUT under `/dav/` (files in `www/dav`), stopped when
/// dropped, and by `timeout` after five minutes whatever happens.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    ca_pem: String,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (issuer, ca_pem) = test_ca();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nas");
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(d.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(
            d.join("htpasswd"),
            format!("{DAV_USER}:{{PLAIN}}{DAV_PW}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("www/dav/backups")).unwrap();
        for t in ["body", "proxy", "fcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(d.join("tmp").join(t)).unwrap();
        }
        let port = free_port();
        let p = d.display();
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
                 error_log {p}/error.log info;\nevents {{ worker_connections 64; }}\n\
                 http {{\n  access_log {p}/access.log;\n\
                 client_body_temp_path {p}/tmp/body;\n  proxy_temp_path {p}/tmp/proxy;\n\
                 fastcgi_temp_path {p}/tmp/fcgi;\n  uwsgi_temp_path {p}/tmp/uwsgi;\n\
                 scgi_temp_path {p}/tmp/scgi;\n\
                 server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {p}/cert.pem;\n    ssl_certificate_key {p}/key.pem;\n\
                 client_max_body_size 600m;\n\
                 location /dav/ {{\n      root {p}/www;\n      dav_methods PUT DELETE;\n\
                 create_full_put_path off;\n      auth_basic \"backups\";\n\
                 auth_basic_user_file {p}/htpasswd;\n    }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new("timeout")
            .args(["300", "nginx", "-e", "stderr", "-p"])
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian's nginx package; scripts/test installs it)");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "nginx did not start: {}",
            std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
        );
        Nginx {
            child,
            dir,
            port,
            ca_pem,
        }
    }

    fn url(&self, folder: &str) -> String {
        format!("https://127.0.0.1:{}/dav/{folder}/", self.port)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("www/dav/backups").join(name)
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to timeout(1), which passes it on to nginx (a SIGKILL would leave
        // nginx behind).
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The box trusts the test's CA, which signed nginx's certificate.
fn trust(pbx: &Pbxd, h: &[String], nas: &Nginx) {
    let r = pbx.https(
        "PUT",
        "/api/v1/certificates/trusted",
        Some(&nas.ca_pem),
        &refs(h),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

fn set_target(pbx: &Pbxd, h: &[String], every: &str, url: &str, password: &str) -> HttpAnswer {
    pbx.https(
        "PUT",
        "/api/v1/system/backup-schedule",
        Some(
            &json!({"every": every, "hour": 0, "parts": ["config"], "keep": 5,
                "remote": {"enabled": true, "url": url, "username": DAV_USER, "password": password}})
            .to_string(),
        ),
        &refs(h),
    )
}

fn make_backup(pbx: &Pbxd, h: &[String]) -> String {
    let r = pbx.https("POST", "/api/v1/system/backups", Some(""), &refs(h));
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["name"].as_str().unwrap().to_string()
}

fn send(pbx: &Pbxd, h: &[String], name: &str) -> HttpAnswer {
    pbx.https(
        "POST",
        &format!("/api/v1/system/backups/{name}/send"),
        Some(""),
        &refs(h),
    )
}

/// The backup the box last sent (as `GET /api/v1/system/backups` says) is on the
/// server byte for byte.
fn last_sent_arrived(pbx: &Pbxd, h: &[String], nas: &Nginx) {
    let b = pbx
        .https("GET", "/api/v1/system/backups", None, &refs(h))
        .json();
    assert_eq!(b["remote"]["ok"], true, "{b}");
    let name = b["remote"]["file"].as_str().unwrap();
    assert!(
        same_file(&pbx.data.path().join("backups").join(name), &nas.file(name)),
        "{name}: the copy on the server differs"
    );
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

#[test]
fn backups_go_to_a_webdav_server_over_https_by_hand_and_on_schedule() {
    let nas = Nginx::start();
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);

    // Plain HTTP is refused: a backup holds password hashes and keys.
    let r = set_target(&pbx, &h, "off", "http://127.0.0.1/dav/backups/", DAV_PW);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("remote.url") && r.body.contains("https://"),
        "{r:?}"
    );
    // No target: nothing to send to.
    let name = make_backup(&pbx, &h);
    let r = send(&pbx, &h, &name);
    assert_eq!(r.status, 409, "{r:?}");

    // The server's certificate is not trusted yet.
    let r = set_target(&pbx, &h, "off", &nas.url("backups"), DAV_PW);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["remote"]["password"], "****", "{r:?}");
    assert!(!r.body.contains(DAV_PW));
    let r = send(&pbx, &h, &name);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        r.body.contains("TLS") && r.body.contains("certificate"),
        "{r:?}"
    );
    assert!(!nas.file(&name).exists());
    trust(&pbx, &h, &nas);

    // A wrong password, then a folder the server does not have.
    let r = set_target(&pbx, &h, "off", &nas.url("backups"), "not-the-password");
    assert_eq!(r.status, 200, "{r:?}");
    let r = send(&pbx, &h, &name);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(
        r.body.contains("refused the user name or password (401"),
        "{r:?}"
    );
    let r = set_target(&pbx, &h, "off", &nas.url("missing"), DAV_PW);
    assert_eq!(r.status, 200, "{r:?}");
    let r = send(&pbx, &h, &name);
    assert_eq!(r.status, 502, "{r:?}");
    // RFC 4918 9.7.1 says 409 (the box then says the folder is missing); nginx, whose
    // rename into the missing folder fails, says 500.
    assert!(
        r.body.contains("the server answered 500") && r.body.contains("/dav/missing/"),
        "{r:?}"
    );
    let listed = pbx.https("GET", "/api/v1/system/backups", None, &refs(&h));
    let last = &listed.json()["remote"];
    assert_eq!(last["file"], name.as_str(), "{listed:?}");
    assert_eq!(last["ok"], false, "{listed:?}");
    assert!(
        pbx.log_text().contains(&format!("backup {name} not sent")),
        "{}",
        pbx.log_text()
    );

    // Right: the file arrives whole, with the user's credentials.
    let r = set_target(&pbx, &h, "off", &nas.url("backups"), DAV_PW);
    assert_eq!(r.status, 200, "{r:?}");
    // The hidden password sent back keeps the stored one, for the same server, folder
    // and user only.
    let r = set_target(&pbx, &h, "off", &nas.url("backups"), "****");
    assert_eq!(r.status, 200, "{r:?}");
    let elsewhere = format!("https://127.0.0.2:{}/dav/backups/", nas.port);
    let r = set_target(&pbx, &h, "off", &elsewhere, "****");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("remote.password"), "{r:?}");
    // A schedule sent without `remote` keeps the target.
    let r = pbx.https(
        "PUT",
        "/api/v1/system/backup-schedule",
        Some(r#"{"every": "off", "hour": 0, "parts": ["config"], "keep": 5}"#),
        &refs(&h),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["remote"]["url"],
        nas.url("backups").as_str(),
        "{r:?}"
    );
    let r = send(&pbx, &h, &name);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["sent_to"],
        format!("{}{name}", nas.url("backups")),
        "{r:?}"
    );
    let mine = pbx.data.path().join("backups").join(&name);
    assert!(same_file(&mine, &nas.file(&name)), "the copy differs");
    let log = nas.access_log();
    assert!(
        log.lines().any(|l| l.contains(&format!("{DAV_USER} ["))
            && l.contains(&format!("\"PUT /dav/backups/{name} HTTP/1.1\" 201"))),
        "{log}"
    );
    let listed = pbx.https("GET", "/api/v1/system/backups", None, &refs(&h));
    assert_eq!(listed.json()["remote"]["ok"], true, "{listed:?}");
    let security = pbx.https("GET", "/api/v1/logs/security", None, &refs(&h));
    assert!(
        security.body.contains(&format!("backup {name} sent to")),
        "{security:?}"
    );

    // On schedule: the backup of the day is made and sent by itself (the one made by
    // hand today goes first, or the day would count as backed up).
    let r = pbx.https(
        "DELETE",
        &format!("/api/v1/system/backups/{name}"),
        None,
        &refs(&h),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = set_target(&pbx, &h, "daily", &nas.url("backups"), "****");
    assert_eq!(r.status, 200, "{r:?}");
    let sent = wait_until(Duration::from_secs(45), || {
        let b = pbx
            .https("GET", "/api/v1/system/backups", None, &refs(&h))
            .json();
        b["remote"]["ok"] == true && b["remote"]["file"] != name.as_str()
    });
    assert!(sent, "no scheduled backup sent:\n{}", pbx.log_text());
    last_sent_arrived(&pbx, &h, &nas);
    let export = pbx.ctl_ok(&["config", "export"]);
    assert!(
        export.contains(DAV_PW),
        "the password is kept for the schedule"
    );
}

#[test]
fn chromium_sets_the_remote_target_and_sends_a_backup() {
    let nas = Nginx::start();
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    trust(&pbx, &h, &nas);
    let url = nas.url("backups");
    browser_via(
        &pbx,
        &[],
        "backup_remote.mjs",
        &[
            ("ADMIN_PW", PW),
            ("DAV_URL", &url),
            ("DAV_USER", DAV_USER),
            ("DAV_PW", DAV_PW),
        ],
    );
    last_sent_arrived(&pbx, &h, &nas);
}
