//! The web admin over real HTTPS against pbxd: the certificate, TLS versions, the
//! redirect, the recovery path, a real call watched and hung up through the API,
//! schemathesis against the OpenAPI document and Chromium driven by playwright-core.

use e2e::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const PW: &str = "Adm1n-Secret!";
const T: Duration = Duration::from_secs(15);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn curl_tls(pbx: &Pbxd, flags: &[&str]) -> bool {
    Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--max-time", "10", "--cacert"])
        .arg(pbx.data.path().join("web/cert.pem"))
        .args(flags)
        .arg(format!("https://{}/admin", pbx.web))
        .status()
        .unwrap()
        .success()
}

#[test]
fn https_certificate_tls_versions_and_redirect() {
    let redirect = format!("127.0.0.1:{}", free_port());
    let pbx = Pbxd::start_in(
        tempfile::tempdir().unwrap(),
        free_port(),
        &["--web-redirect", &redirect],
    );
    // The certificate names 127.0.0.1: curl verifies it against the box's own cert.
    let page = pbx.https("GET", "/admin", None, &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Create the administrator account"));
    assert!(curl_tls(&pbx, &["--tlsv1.3"]), "TLS 1.3");
    assert!(
        curl_tls(&pbx, &["--tlsv1.2", "--tls-max", "1.2"]),
        "TLS 1.2"
    );
    assert!(
        !curl_tls(&pbx, &["--tlsv1.0", "--tls-max", "1.1"]),
        "TLS 1.1 must be refused"
    );
    // Plain HTTP is redirected to HTTPS on the web port, path kept.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://{redirect}/admin"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        text,
        format!("301 https://127.0.0.1:{}/admin", pbx.web.port())
    );
    // Bad input on the redirect port: a connection that says nothing holds nobody up, a
    // request that is no HTTP gets 400 and the connection closed, and the redirect
    // still answers.
    {
        use std::io::{Read, Write};
        let silent = std::net::TcpStream::connect(&redirect).unwrap();
        let mut junk = std::net::TcpStream::connect(&redirect).unwrap();
        junk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        junk.write_all(b"\x16\x03\x01 not HTTP at all\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = junk.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
        let out = Command::new("curl")
            .args([
                "-sS",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
            ])
            .arg(format!("http://{redirect}/portal"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("301 https://127.0.0.1:{}/portal", pbx.web.port())
        );
        drop(silent);
    }

    // The certificate is made once and survives a restart, and so does the admin.
    let cert = std::fs::read(pbx.data.path().join("web/cert.pem")).unwrap();
    pbx.admin_session(PW);
    let web = pbx.web.to_string();
    let data = pbx.stop();
    let pbx = Pbxd::start_in(data, free_port(), &["--web", &web]);
    assert_eq!(
        std::fs::read(pbx.data.path().join("web/cert.pem")).unwrap(),
        cert
    );
    let h = pbx.login("Admin", PW);
    let hr: Vec<&str> = h.iter().map(String::as_str).collect();
    let health = pbx.https("GET", "/api/v1/status/health", None, &hr);
    assert_eq!(health.status, 200);
    assert!(health.json()["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(health.json()["disk"]["free_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn pbxctl_resets_the_administrator_password_running_or_stopped() {
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    let reset = |pbx_dir: &std::path::Path, pw: &str| {
        use std::io::Write;
        let mut c = Command::new(bin_dir().join("pbxctl"))
            .arg("--data-dir")
            .arg(pbx_dir)
            .arg("admin-password")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(format!("{pw}\n").as_bytes())
            .unwrap();
        c.wait_with_output().unwrap()
    };
    let weak = reset(pbx.data.path(), "admin");
    assert_eq!(weak.status.code(), Some(1), "weak passwords are refused");
    assert!(String::from_utf8_lossy(&weak.stderr).contains("too weak"));
    let out = reset(pbx.data.path(), "N3w-Admin-Pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pbx.login("Admin", "N3w-Admin-Pass");
    let bad = pbx.https(
        "POST",
        "/api/v1/login",
        Some(&json!({"username": "Admin", "password": PW}).to_string()),
        &[],
    );
    assert_eq!(bad.status, 401, "the old password no longer works");
    // With pbxd stopped the store is changed directly (the console's case).
    let data = pbx.stop();
    let out = reset(data.path(), "Th1rd-Admin-Pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pbx = Pbxd::start_in(data, free_port(), &[]);
    pbx.login("Admin", "Th1rd-Admin-Pass");
    let log = pbx.https(
        "GET",
        "/api/v1/logs/config",
        None,
        &pbx.login("Admin", "Th1rd-Admin-Pass")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        log.body.contains("reset the administrator password"),
        "{}",
        log.body
    );
}

#[test]
fn a_call_is_watched_and_hung_up_from_the_api() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    // Extensions and accounts made through the API, as an admin would in the pages.
    let mut secrets = Vec::new();
    for n in ["201", "202"] {
        let a = pbx.https(
            "POST",
            "/api/v1/extensions",
            Some(&json!({"number": n, "first_name": format!("Phone {n}")}).to_string()),
            &h,
        );
        assert_eq!(a.status, 201, "{a:?}");
        let a = pbx.https(
            "POST",
            &format!("/api/v1/extensions/{n}/accounts"),
            Some("{}"),
            &h,
        );
        assert_eq!(a.status, 201, "{a:?}");
        secrets.push(a.json()["secret"].as_str().unwrap().to_string());
    }
    let mut a = phone(&pbx, "201", &secrets[0], 440, false, "PCMU");
    let b = phone(&pbx, "202", &secrets[1], 700, true, "PCMU");
    let regs = pbx
        .https("GET", "/api/v1/status/registrations", None, &h)
        .json();
    assert_eq!(regs.as_array().unwrap().len(), 2, "{regs}");
    connect(&mut a, &b, &pbx, "202");
    let calls = pbx.https("GET", "/api/v1/status/calls", None, &h).json();
    let call = &calls.as_array().unwrap()[0];
    assert_eq!(
        (
            call["caller"].as_str(),
            call["callee"].as_str(),
            call["state"].as_str()
        ),
        (Some("201"), Some("202"), Some("answered"))
    );
    // The status page lists it with a hang-up button.
    let page = pbx.https("GET", "/admin/status", None, &h);
    assert!(
        page.body.contains("Hang up") && page.body.contains("202"),
        "{}",
        page.body
    );
    let id = call["id"].as_u64().unwrap();
    let r = pbx.https("DELETE", &format!("/api/v1/status/calls/{id}"), None, &h);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(
        a.wait_event("CALL_CLOSED", T).is_some(),
        "caller hung up: {:?}",
        a.events()
    );
    assert!(
        b.wait_event("CALL_CLOSED", T).is_some(),
        "callee hung up: {:?}",
        b.events()
    );
    assert!(pbx
        .https("GET", "/api/v1/status/calls", None, &h)
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    let r = pbx.https("DELETE", &format!("/api/v1/status/calls/{id}"), None, &h);
    assert_eq!(r.status, 404);
}

/// Python tools live in a virtualenv that scripts/test makes.
fn schemathesis() -> PathBuf {
    std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/pyenv/bin/schemathesis"))
}

#[test]
fn schemathesis_finds_no_server_errors() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let hdrs: Vec<&str> = h.iter().map(String::as_str).collect();
    // Something to read and change.
    pbx.ctl_ok(&[
        "extension",
        "add",
        "101",
        "--name",
        "Ann Example",
        "--password",
        "Str0ng-Secret-101",
    ]);
    let url = format!("https://{}/api/v1/openapi.json", pbx.web);
    let mut c = Command::new(schemathesis());
    c.args([
        "run",
        &url,
        "--checks",
        "not_a_server_error",
        "--tls-verify",
        "false",
    ])
    .args([
        "--max-examples",
        "25",
        "--seed",
        "4021",
        "--exclude-path",
        "/logout",
        "--exclude-path",
        "/setup",
        "--exclude-path",
        "/login",
        // Interfaces and links make the box send SIP to their hosts: made-up hosts
        // would be traffic to addresses outside this machine. ISDN interfaces would
        // open made-up DAHDI spans and make sockets at made-up paths.
        "--exclude-name-regex",
        "^(POST|PUT) /routing/(interfaces|links|isdn)",
    ])
    .args(["--request-timeout", "10"]);
    for x in &h {
        c.args(["-H", x]);
    }
    let out = c.output().unwrap_or_else(|e| {
        panic!(
            "run schemathesis ({}): {e}; scripts/test installs it",
            schemathesis().display()
        )
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\npbxd log:\n{}",
        pbx.log_text()
    );
    assert!(pbx.ctl(&["status"]).status.success(), "pbxd survived");
    // It really exercised the API: the operations ran and the admin's writes landed.
    assert!(text.contains("/extensions"), "{text}");
    let log = pbx.https("GET", "/api/v1/logs/config", None, &hdrs).body;
    assert!(
        log.contains("changed outbound routes") || log.contains("changed emergency numbers"),
        "routing was not exercised: {log}"
    );
    // No made-up provider or link was stored (the box would send SIP to it).
    let cfg: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    assert_eq!(cfg["sip_interfaces"], serde_json::json!([]), "{cfg}");
    assert_eq!(cfg["links"], serde_json::json!([]), "{cfg}");
}

#[test]
fn chromium_first_run_extensions_dial_plan_and_auditor() {
    let pbx = Pbxd::start();
    browser(&pbx, "browser.mjs", &[]);
    assert!(repo().join("target/artifacts/extensions.png").exists());
    // What the browser did is really in the configuration.
    let cfg: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    assert!(cfg["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["number"] == "101"));
    assert!(cfg["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "audrey" && u["role"] == "auditor"));
}

/// Calls made with real phones show in the call history: the API, its filters and CSV,
/// the admin page in Chromium (filters, export, clear) and the user's portal.
#[test]
fn call_history_in_the_api_the_admin_and_the_portal() {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    let admin_pw = "Adm1n-History!";
    let user_pw = "Us3r-History!";
    let h = pbx.admin_session(admin_pw);
    let hdrs: Vec<&str> = h.iter().map(String::as_str).collect();
    let body = serde_json::json!({"username": "winston", "password": user_pw, "role": "user", "extensions": ["101"]}).to_string();
    let r = pbx.https("POST", "/api/v1/users", Some(&body), &hdrs);
    assert_eq!(r.status, 201, "{r:?}");
    let mut a = phone(&pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let b = phone(&pbx, "102", "Secret-102x", 440, true, "PCMU,PCMA");
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    closed_reason(&b);
    a.clear_events();
    dial(&mut a, &pbx, "103");
    closed_reason(&a);
    // Written to the store within a few seconds of the calls' ends.
    let mut got = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(10), || {
            got = pbx.https("GET", "/api/v1/history", None, &hdrs).json();
            got.as_array().is_some_and(|a| a.len() == 2)
        }),
        "{got}"
    );
    let (unavail, answered) = (&got[0], &got[1]);
    assert_eq!(
        (
            answered["caller"].as_str(),
            answered["called"].as_str(),
            answered["answered_by"].as_str(),
            answered["outcome"].as_str(),
            answered["status"].as_u64()
        ),
        (
            Some("101"),
            Some("102"),
            Some("102"),
            Some("answered"),
            Some(200)
        ),
        "{got}"
    );
    assert!(answered["duration"].as_u64().unwrap() >= 1, "{answered}");
    assert_eq!(
        (unavail["called"].as_str(), unavail["outcome"].as_str()),
        (Some("103"), Some("unavailable"))
    );
    let f = pbx
        .https(
            "GET",
            "/api/v1/history?outcome=answered&limit=5",
            None,
            &hdrs,
        )
        .json();
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    let bad = pbx.https("GET", "/api/v1/history?since=soon", None, &hdrs);
    assert_eq!(
        (bad.status, bad.json()["field"].as_str()),
        (400, Some("since")),
        "{bad:?}"
    );
    let csv = pbx.https("GET", "/api/v1/history?format=csv", None, &hdrs);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(csv.body.trim().lines().count(), 3, "{}", csv.body);
    // The user sees only their own extension's calls.
    let u = pbx.login("winston", user_pw);
    let uh: Vec<&str> = u.iter().map(String::as_str).collect();
    assert_eq!(
        pbx.https("GET", "/api/v1/history", None, &uh)
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let del = pbx.https("DELETE", "/api/v1/history", None, &uh);
    assert_eq!(del.status, 403, "only administrators clear: {del:?}");
    // The history survives a restart of the daemon.
    let data = pbx.stop();
    // A message waits in 101's voicemail box (as pbxd writes them).
    let vm = data.path().join("voicemail/101");
    std::fs::create_dir_all(&vm).unwrap();
    write_tone_wav(&vm.join("1700000000-7-103.wav"), 440, 2);
    let pbx = Pbxd::start_in(data, free_port(), &[]);
    browser(
        &pbx,
        "history.mjs",
        &[("ADMIN_PW", admin_pw), ("USER_PW", user_pw)],
    );
    // What the user set in the portal is 101's configuration (and the refused change
    // left nothing behind): busy calls to 103, unanswered ones to the voicemail box.
    let u = pbx.login("winston", user_pw);
    let uh: Vec<&str> = u.iter().map(String::as_str).collect();
    let me = pbx.https("GET", "/api/v1/me", None, &uh).json();
    let e = &me["extensions"][0];
    assert_eq!(e["call_waiting"], false, "{me}");
    assert_eq!(e["no_answer_seconds"], 12, "{me}");
    assert_eq!(
        e["forwarding"],
        serde_json::json!([
            {"cause": "busy", "origin": "any", "to": "103"},
            {"cause": "no_answer", "origin": "any", "to": "voicemail"}
        ]),
        "{me}"
    );
    // The message deleted in the portal is gone; the greeting uploaded there is kept.
    let left: Vec<String> = std::fs::read_dir(pbx.data.path().join("voicemail/101"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["greeting-unavailable.wav"]);
    drop((a, b));
}

#[test]
fn chromium_sip_protection_lists_and_lifts_a_ban_and_sets_the_allowed_group() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    pbx.ctl_ok(&["extension", "add", "101", "--password", "Str0ng-Secret-101"]);
    let group =
        json!({"name": "office", "items": [{"type": "network", "network": "127.0.0.0/29"}]});
    let r = pbx.https(
        "POST",
        "/api/v1/routing/ip_groups",
        Some(&group.to_string()),
        &h,
    );
    assert!(r.status == 201 || r.status == 200, "{r:?}");
    // Ten wrong passwords from 127.0.0.9: the eleventh and twelfth get no answer.
    assert_eq!(guess_passwords(&pbx, "127.0.0.9", "101", 12).len(), 10);
    // The ban is in the security log the page shows (written within a second).
    assert!(wait_until(Duration::from_secs(5), || {
        pbx.https("GET", "/api/v1/logs/security", None, &h)
            .body
            .contains("SIP ban")
    }));
    browser(&pbx, "security.mjs", &[("ADMIN_PW", PW)]);
    assert!(
        options_from(&pbx, "127.0.0.9", "x").is_some(),
        "still banned"
    );
    let cfg: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    assert_eq!(cfg["sip_protection"]["allow_group"], "office", "{cfg}");
}

#[test]
fn certificates_a_request_signed_elsewhere_serves_the_web_and_sip_at_once() {
    let pbx = Pbxd::start();
    let h = pbx.admin_session(PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let pw = "Str0ng-Secret-101";
    pbx.ctl_ok(&["extension", "add", "101", "--password", pw]);
    let list = pbx.https("GET", "/api/v1/certificates", None, &h).json();
    let first = &list["certificates"][0];
    assert_eq!(list["certificates"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (first["active"].clone(), first["self_signed"].clone()),
        (json!(true), json!(true))
    );

    // A request (Kerio 19.2): host name and country are required.
    let bad = pbx.https(
        "POST",
        "/api/v1/certificates",
        Some(
            &json!({"kind": "request", "hostname": "pbx.example.test", "country": "Czechia"})
                .to_string(),
        ),
        &h,
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.body.contains("two letters"), "{}", bad.body);
    let request = |days: u64| {
        let r = pbx.https(
            "POST",
            "/api/v1/certificates",
            Some(
                &json!({"kind": "request", "hostname": "pbx.example.test",
                "names": ["127.0.0.1", "localhost"], "organization": "Example", "country": "cz"})
                .to_string(),
            ),
            &h,
        );
        assert_eq!(r.status, 201, "{r:?}");
        let id = r.json()["id"].as_str().unwrap().to_string();
        assert_eq!(r.json()["kind"], "request");
        let csr = pbx.https(
            "GET",
            &format!("/api/v1/certificates/{id}/request"),
            None,
            &h,
        );
        assert_eq!(csr.status, 200);
        assert!(
            csr.body.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{}",
            csr.body
        );
        let (chain, ca) = sign_request(&csr.body, days);
        // What the authority signed comes back without a key: the request's is used.
        let r = pbx.https(
            "POST",
            "/api/v1/certificates/import",
            Some(&json!({"certificate": chain}).to_string()),
            &h,
        );
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.json()["id"], id.as_str());
        assert_eq!(r.json()["kind"], "certificate");
        assert_eq!(r.json()["chain"], 2);
        assert!(r.json()["issuer"].as_str().unwrap().contains("e2e test CA"));
        (id, ca)
    };
    let (id, ca) = request(90);
    // Imported again without a key, it answers no request any more; junk is refused.
    let chain = pbx
        .https(
            "GET",
            &format!("/api/v1/certificates/{id}/certificate"),
            None,
            &h,
        )
        .body;
    assert!(
        chain.contains("BEGIN CERTIFICATE") && !chain.contains("PRIVATE KEY"),
        "{chain}"
    );
    let again = pbx.https(
        "POST",
        "/api/v1/certificates/import",
        Some(&json!({"certificate": chain}).to_string()),
        &h,
    );
    assert_eq!(again.status, 400, "{again:?}");
    assert!(
        again.body.contains("no request made here"),
        "{}",
        again.body
    );
    let junk = pbx.https(
        "POST",
        "/api/v1/certificates/import",
        Some(&json!({"certificate": "junk"}).to_string()),
        &h,
    );
    assert_eq!(junk.status, 400);
    assert!(junk.body.contains("no certificate"), "{}", junk.body);
    let missing = pbx.https("GET", "/api/v1/certificates/request-1/request", None, &h);
    assert_eq!(missing.status, 404, "{missing:?}");
    let r = pbx.https(
        "POST",
        &format!("/api/v1/certificates/{id}/activate"),
        None,
        &h,
    );
    assert_eq!(r.status, 200, "{r:?}");

    // The web presents it at once: curl trusting only the test CA gets in.
    let ca_file = pbx.data.path().join("e2e-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let curl = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--max-time", "10", "--cacert"])
        .arg(&ca_file)
        .arg(format!("https://{}/admin", pbx.web))
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );
    // So does SIP over TLS: a phone trusting only the test CA registers and calls.
    let mut p = registered_phone(
        Kind::Pjsua2,
        &pbx,
        PhoneSpec {
            user: "101",
            password: pw,
            tone: 440,
            auto_answer: true,
            codecs: "PCMU",
            tls_ca: Some(&ca_file),
            srtp: false,
        },
    );
    p.command("dial", &format!("sip:*43@{}", p.server));
    assert!(
        p.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        p.events()
    );
    p.command("hangup", "");
    // The active certificate cannot be removed.
    let r = pbx.https("DELETE", &format!("/api/v1/certificates/{id}"), None, &h);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("active"), "{}", r.body);

    // One that runs out in 10 days is warned about on the dashboard (the browser sees it).
    let (short, _) = request(10);
    let r = pbx.https(
        "POST",
        &format!("/api/v1/certificates/{short}/activate"),
        None,
        &h,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let health = pbx.https("GET", "/api/v1/status/health", None, &h).json();
    assert!(
        health["warnings"].to_string().contains("runs out in"),
        "{health}"
    );
    browser(
        &pbx,
        "certificates.mjs",
        &[("ADMIN_PW", PW), ("SIGNED_ID", &short)],
    );
    // The security log has each change.
    let log = pbx.https("GET", "/api/v1/logs/security", None, &h).body;
    assert!(
        log.contains(&format!("certificate {id} made active")),
        "{log}"
    );
    // Trusted certificates: junk is refused, a CA is kept.
    let r = pbx.https("PUT", "/api/v1/certificates/trusted", Some("junk"), &h);
    assert_eq!(r.status, 400, "{r:?}");
    let r = pbx.https("PUT", "/api/v1/certificates/trusted", Some(&ca), &h);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        pbx.https("GET", "/api/v1/certificates/trusted", None, &h)
            .json()[0]["subject"],
        "CN=e2e test CA"
    );
}

/// Runs one browser script from tests/web against `pbx`; panics with its output on failure.
fn browser(pbx: &Pbxd, script: &str, env: &[(&str, &str)]) {
    browser_via(pbx, &[], script, env);
}

#[test]
fn chromium_call_routing_provider_link_conflict_outbound_isdn_emergency() {
    let pbx = Pbxd::start();
    pbx.admin_session(PW);
    pbx.ctl_ok(&["extension", "add", "101", "--password", "Str0ng-Secret-101"]);
    // Phones added in the browser get lines: a phone password is set.
    pbx.ctl_ok(&[
        "provisioning",
        "set",
        "--phone-password",
        "Ph0ne-Secret-2026",
    ]);
    let lab = tempfile::tempdir().unwrap();
    let span = lab.path().join("span");
    browser(
        &pbx,
        "routing.mjs",
        &[("ADMIN_PW", PW), ("SPAN_PATH", span.to_str().unwrap())],
    );
    assert!(repo().join("target/artifacts/routing.png").exists());
    // The ISDN interface added in the browser runs: its span listens.
    assert!(wait_until(Duration::from_secs(5), || span.exists()));
    // What the browser did is really in the configuration.
    let cfg: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    let a = &cfg["auto_attendants"][0];
    assert_eq!(a["number"], "200", "{cfg}");
    assert_eq!(a["menus"][0]["keys"][0]["action"], "dial", "{cfg}");
    assert_eq!(a["conditions"][0]["time_range"], "office", "{cfg}");
    assert_eq!(
        cfg["time_ranges"][0]["items"][1]["type"], "absolute",
        "{cfg}"
    );
    assert_eq!(
        cfg["music"],
        serde_json::json!([{"name": "lobby-music", "description": "Reception", "files": ["lobby"], "default": true}]),
        "{cfg}"
    );
    assert_eq!(
        cfg["phones"][0]["blf_keys"],
        serde_json::json!([{"number": "101", "label": "Reception"}, {"number": "*71", "label": "Park 1"}]),
        "{cfg}"
    );
    assert_eq!(
        cfg["conferences"],
        serde_json::json!([{"number": "800", "description": "Weekly sales", "pin": "4711", "max_participants": 10, "tones": false}]),
        "{cfg}"
    );
    assert_eq!(
        cfg["ip_groups"][1]["items"][0],
        serde_json::json!({"type": "group", "group": "Admins", "description": ""}),
        "{cfg}"
    );
    // Through the API: a renamed group follows into the groups naming it, and one
    // that is named cannot be removed.
    let h = pbx.login("Admin", PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let put = pbx.https(
        "PUT",
        "/api/v1/routing/ip_groups/Admins",
        Some(r#"{"name": "IT"}"#),
        &h,
    );
    assert_eq!(put.status, 200, "{put:?}");
    let office = pbx
        .https("GET", "/api/v1/routing/ip_groups/Office", None, &h)
        .json();
    assert_eq!(office["items"][0]["group"], "IT", "{office}");
    let del = pbx.https("DELETE", "/api/v1/routing/ip_groups/IT", None, &h);
    assert_eq!(del.status, 400, "{del:?}");
    assert!(del.body.contains("Office: items: no group IT"), "{del:?}");
    // Conference rooms through the API: a number an extension has is refused; a room
    // added is listed with the defaults filled; the live view lists it, empty.
    for (body, status, says) in [
        (r#"{"number": "101"}"#, 400, "already used"),
        (
            r#"{"number": "801", "max_participants": 1}"#,
            400,
            "2 to 64",
        ),
        (r#"{"number": "801", "seats": 3}"#, 400, "seats"),
        (r#"{"number": "801"}"#, 201, "801"),
    ] {
        let r = pbx.https("POST", "/api/v1/routing/conferences", Some(body), &h);
        assert_eq!(r.status, status, "{body}: {r:?}");
        assert!(r.body.contains(says), "{body}: {r:?}");
    }
    let room = pbx
        .https("GET", "/api/v1/routing/conferences/801", None, &h)
        .json();
    assert_eq!(
        room,
        serde_json::json!({"number": "801", "description": "", "pin": "", "max_participants": 0, "tones": true})
    );
    let live = pbx
        .https("GET", "/api/v1/status/conferences", None, &h)
        .json();
    assert_eq!(live[1]["number"], "801", "{live}");
    assert_eq!(live[1]["participants"], serde_json::json!([]), "{live}");
    // The queue saved in Chromium.
    let q = &cfg["queues"][0];
    assert_eq!(
        (
            q["number"].as_str(),
            q["strategy"].as_str(),
            q["wrapup_seconds"].as_u64(),
            q["login_code"].as_str()
        ),
        (Some("700"), Some("round_robin"), Some(30), Some("7001")),
        "{cfg}"
    );
    assert_eq!(q["agents"], serde_json::json!(["101"]), "{cfg}");
    assert_eq!(cfg["recordings_max_mb"], 200, "{cfg}");
    pbx.ctl_ok(&["extension", "add", "102", "--password", "Str0ng-Secret-102"]);
    // Call queues through the API: refusals name the field; a queue added gets its
    // defaults; the live view lists it and its agent; an agent logs in and out.
    for (body, status, says) in [
        (
            r#"{"number": "101", "agents": ["101"]}"#,
            400,
            "already used",
        ),
        (r#"{"number": "710"}"#, 400, "at least one extension"),
        (
            r#"{"number": "710", "agents": ["101"], "strategy": "loudest"}"#,
            400,
            "strategy",
        ),
        (
            r#"{"number": "710", "agents": ["101"], "ring_seconds": 1}"#,
            400,
            "5 to 300",
        ),
        (
            r#"{"number": "710", "agents": ["101"], "dynamic_agents": true, "login_code": "7101", "logout_code": "7102"}"#,
            201,
            "710",
        ),
    ] {
        let r = pbx.https("POST", "/api/v1/routing/queues", Some(body), &h);
        assert_eq!(r.status, status, "{body}: {r:?}");
        assert!(r.body.contains(says), "{body}: {r:?}");
    }
    let q = pbx
        .https("GET", "/api/v1/routing/queues/710", None, &h)
        .json();
    assert_eq!(
        (q["strategy"].as_str(), q["ring_seconds"].as_u64()),
        (Some("ring_all"), Some(20)),
        "{q}"
    );
    let put = pbx.https(
        "PUT",
        "/api/v1/status/queues/710/agents/102",
        Some(r#"{"logged_in": true}"#),
        &h,
    );
    assert_eq!(put.status, 204, "{put:?}");
    let bad = pbx.https(
        "PUT",
        "/api/v1/status/queues/710/agents/102",
        Some(r#"{"in": true}"#),
        &h,
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    let live = pbx.https("GET", "/api/v1/status/queues", None, &h).json();
    let q = live
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["number"] == "710")
        .unwrap();
    let agents: Vec<(&str, bool)> = q["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["extension"].as_str().unwrap(),
                a["dynamic"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(agents, [("101", false), ("102", true)], "{q}");
    let out = pbx.https(
        "PUT",
        "/api/v1/status/queues/710/agents/102",
        Some(r#"{"logged_in": false}"#),
        &h,
    );
    assert_eq!(out.status, 204, "{out:?}");
    let none = pbx.https(
        "PUT",
        "/api/v1/status/queues/700/agents/555",
        Some(r#"{"logged_in": true}"#),
        &h,
    );
    assert_eq!(none.status, 404, "{none:?}");
    // The uploaded file was stored at 8 kHz.
    let wav = std::fs::read(pbx.data.path().join("music/lobby.wav")).unwrap();
    assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 8000);
    let i = &cfg["sip_interfaces"][0];
    assert_eq!(i["name"], "voipex", "{cfg}");
    assert_eq!(i["did"][0]["target"], "101", "{cfg}");
    assert_eq!(i["calling_rewrite"]["prefix"], "9", "{cfg}");
    let l = &cfg["links"][0];
    assert_eq!(
        (&l["range_min"], &l["range_max"]),
        (&serde_json::json!("100"), &serde_json::json!("150"))
    );
    assert_eq!(l["remote_wins"], serde_json::json!(["101"]), "{cfg}");
    assert_eq!(
        cfg["outbound_routes"][0]["interfaces"],
        serde_json::json!(["voipex"])
    );
    assert_eq!(cfg["emergency"]["direct_dialing"], true, "{cfg}");
    assert_eq!(cfg["emergency"]["numbers"][0]["number"], "112", "{cfg}");
    let t = &cfg["isdn_interfaces"][0];
    assert_eq!(
        (&t["name"], &t["called_digits"]),
        (&serde_json::json!("telco"), &serde_json::json!(4)),
        "{cfg}"
    );
    assert_eq!(t["calling_rewrite"]["prefix"], "9", "{cfg}");
}

#[test]
fn chromium_time_settings_and_firmware_upload() {
    use std::os::unix::fs::PermissionsExt;
    let lab = tempfile::tempdir().unwrap();
    // RAUC's command line, played by a script: progress lines, then success.
    let rauc = lab.path().join("rauc");
    let got = lab.path().join("installed.raucb");
    std::fs::write(
        &rauc,
        format!(
            "#!/bin/sh\ncp \"$2\" {}\necho '  0% Installing'\nsleep 1\necho ' 40% Copying image to rootfs.1'\nsleep 2\necho '100% Installing done.'\n",
            got.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rauc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let junk = lab.path().join("photo.jpg");
    std::fs::write(&junk, b"\xff\xd8\xff\xe0 not firmware").unwrap();
    let bundle = lab.path().join("update.raucb");
    let mut body = b"hsqs".to_vec();
    body.extend((0..200_000u32).map(|i| (i % 251) as u8));
    std::fs::write(&bundle, &body).unwrap();
    let data = tempfile::tempdir().unwrap();
    let pbx = Pbxd::start_in(
        data,
        free_port(),
        &["--rauc", rauc.to_str().unwrap(), "--reboot-command", "true"],
    );
    pbx.admin_session(PW);
    browser(
        &pbx,
        "firmware.mjs",
        &[
            ("ADMIN_PW", PW),
            ("JUNK_FILE", junk.to_str().unwrap()),
            ("BUNDLE_FILE", bundle.to_str().unwrap()),
        ],
    );
    // RAUC got the bundle byte for byte; the upload is gone from the data directory.
    assert_eq!(std::fs::read(&got).unwrap(), body);
    assert_eq!(
        std::fs::read_dir(pbx.data.path().join("update"))
            .unwrap()
            .count(),
        0,
        "the upload was left on /data"
    );
    assert!(repo().join("target/artifacts/firmware.png").exists());
    let time: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(pbx.data.path().join("system/time.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        time,
        json!({"timezone": "Europe/Prague", "ntp": ["ntp.example.net", "192.0.2.123"]})
    );
}

#[test]
fn bad_connections_and_oversized_bodies_never_hang_the_web() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let pbx = Pbxd::start();
    // Plain HTTP and garbage on the TLS port: dropped at once (a TLS alert at most).
    for junk in [
        b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    ] {
        let mut s = TcpStream::connect(pbx.web).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&junk).unwrap();
        let mut buf = Vec::new();
        let r = s.read_to_end(&mut buf);
        assert!(r.is_ok(), "connection not closed within 5 s: {r:?}");
        assert!(buf.len() < 64, "no page over plain TCP: {buf:?}");
    }
    // A client that connects and says nothing holds no slot for long, and others are
    // served meanwhile.
    let mut silent = TcpStream::connect(pbx.web).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    assert_eq!(pbx.https("GET", "/admin", None, &[]).status, 200);
    let mut buf = [0u8; 16];
    assert!(
        matches!(silent.read(&mut buf), Ok(0)),
        "the silent client is dropped after the 10 s handshake limit"
    );
    // A body over 1 MiB gets 413, chunked or not. A chunked one is read to its end
    // before the answer (else the client, still sending, gets a reset instead of the
    // 413 now and then): ten in a row all see the 413.
    let post = |mib: usize, chunked: bool| {
        let big = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(big.path(), vec![b'a'; mib << 20]).unwrap();
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
        ])
        .arg("--cacert")
        .arg(pbx.data.path().join("web/cert.pem"))
        .args(["-X", "POST", "--data-binary"])
        .arg(format!("@{}", big.path().display()));
        if chunked {
            c.args(["-H", "Transfer-Encoding: chunked"]);
        }
        let out = c
            .arg(format!("https://{}/api/v1/login", pbx.web))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(post(2, false), "413", "declared length");
    for i in 0..10 {
        assert_eq!(post(2, true), "413", "chunked, round {i}");
    }
    // Past 16 MiB nothing more is read: the connection is dropped, nothing hangs.
    assert_ne!(post(20, true), "200");
    assert_eq!(
        pbx.https("GET", "/admin", None, &[]).status,
        200,
        "still serving"
    );
}
