//! Network settings in the web admin (Kerio 22.1) in network namespaces the test makes:
//! pbxd runs in the box's namespace with a system root of the test's, so the settings
//! are put in force through netlink on the namespace's veth. A new address is reached
//! at once; left unconfirmed, the box goes back to its old address by itself; confirmed
//! from the new address, it stays, with the DNS servers written. Bad settings are
//! refused with their field, and a change on trial at a restart goes back at the start.

use e2e::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const OLD: &str = "10.79.0.1";
const NEW: &str = "10.79.0.9";
const LAN: &str = "10.79.0.2";
const PW: &str = "Network-Admin-1!";

struct Net {
    box_ns: String,
    lan_ns: String,
    dev: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.box_ns, &self.lan_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Namespaces of their own per test (`tag`), the box's veth at the old address.
fn net(tag: &str) -> Net {
    let id = std::process::id() % 100_000;
    let n = Net {
        box_ns: format!("nwbox{tag}{id}"),
        lan_ns: format!("nwlan{tag}{id}"),
        dev: format!("nb{tag}{id}"),
    };
    let peer = format!("nl{tag}{id}");
    ip(&["netns", "add", &n.box_ns]);
    ip(&["netns", "add", &n.lan_ns]);
    ip(&["link", "add", &n.dev, "type", "veth", "peer", "name", &peer]);
    ip(&["link", "set", &n.dev, "netns", &n.box_ns]);
    ip(&["link", "set", &peer, "netns", &n.lan_ns]);
    ip(&[
        "-n",
        &n.box_ns,
        "addr",
        "add",
        &format!("{OLD}/24"),
        "dev",
        &n.dev,
    ]);
    ip(&[
        "-n",
        &n.lan_ns,
        "addr",
        "add",
        &format!("{LAN}/24"),
        "dev",
        &peer,
    ]);
    for (ns, dev) in [(&n.box_ns, &n.dev), (&n.lan_ns, &peer)] {
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    n
}

/// curl from the LAN to the box at `host` (its certificate is self-signed): status and
/// body.
fn curl(
    net: &Net,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    h: &[String],
) -> (u16, String) {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &net.lan_ns,
        "curl",
        "-sk",
        "--connect-timeout",
        "2",
        "--max-time",
        "10",
    ])
    .args(["-X", method, "-w", "\n%{http_code}"]);
    for x in h {
        c.args(["-H", x]);
    }
    if let Some(b) = body {
        c.args([
            "-H",
            "content-type: application/json",
            "--data",
            &b.to_string(),
        ]);
    }
    c.arg(format!("https://{host}:4021{path}"));
    let o = c.output().expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn login(net: &Net, host: &str) -> Vec<String> {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &net.lan_ns,
        "curl",
        "-sk",
        "-D",
        "-",
        "--max-time",
        "10",
    ])
    .args(["-H", "content-type: application/json"])
    .args([
        "--data",
        &json!({"username": "Admin", "password": PW}).to_string(),
    ])
    .arg(format!("https://{host}:4021/api/v1/login"));
    let out = String::from_utf8_lossy(&c.output().unwrap().stdout).to_string();
    let cookie = out
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no session from {host}: {out}"))
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let body = out.split("\r\n\r\n").last().unwrap_or("");
    let token: Value = serde_json::from_str(body).unwrap();
    vec![
        format!("Cookie: {cookie}"),
        format!("X-CSRF-Token: {}", token["csrf_token"].as_str().unwrap()),
    ]
}

/// A data partition whose network settings (as the console saved them) are the old
/// address on the namespace's veth.
fn data(net: &Net) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("system")).unwrap();
    let s = json!({"hostname": "pbx", "interfaces": [{"name": net.dev, "address": OLD, "prefix": 24}], "dns": []});
    std::fs::write(d.path().join("system/network.json"), s.to_string()).unwrap();
    d
}

fn start(net: &Net, data: tempfile::TempDir, root: &std::path::Path) -> Pbxd {
    let sip: SocketAddr = "0.0.0.0:5060".parse().unwrap();
    Pbxd::launch(
        data,
        sip,
        &[
            "--web",
            "0.0.0.0:4021",
            "--tftp",
            "127.0.0.1:6969",
            "--sip-tls",
            "off",
            "--system-root",
            root.to_str().unwrap(),
            "--network-confirm",
            "5",
        ],
        &["ip", "netns", "exec", &net.box_ns],
    )
}

fn addresses(net: &Net) -> String {
    ip(&["-n", &net.box_ns, "-4", "addr", "show", "dev", &net.dev])
}

fn settings(address: &str, dev: &str, dns: &[&str]) -> Value {
    json!({"hostname": "pbx-office", "interfaces": [
        {"name": dev, "address": address, "prefix": 24}
    ], "dns": dns})
}

#[test]
fn a_new_address_rolls_back_unless_confirmed_from_it() {
    let net = net("a");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let pbx = start(&net, data(&net), root.path());
    let (code, body) = curl(
        &net,
        OLD,
        "POST",
        "/api/v1/setup",
        Some(&json!({"password": PW})),
        &[],
    );
    assert_eq!(code, 201, "{body}");
    let h = login(&net, OLD);

    // Refused, with the field; nothing changes.
    for (bad, field) in [
        (settings("10.79.0.0", &net.dev, &[]), "address"),
        (
            json!({"hostname": "bad host!", "interfaces": [{"name": net.dev, "dhcp": true}]}),
            "hostname",
        ),
        (settings("10.79.0.9", &net.dev, &["127.0.0.1"]), "dns"),
        (json!({"interfaces": "eth0"}), "interfaces"),
    ] {
        let (code, body) = curl(&net, OLD, "PUT", "/api/v1/system/network", Some(&bad), &h);
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains(field), "{bad}: {body}");
    }
    assert!(addresses(&net).contains(&format!("{OLD}/24")));

    // A new address: in force at once, on trial, not confirmed: back by itself.
    let (code, body) = curl(
        &net,
        OLD,
        "PUT",
        "/api/v1/system/network",
        Some(&settings(NEW, &net.dev, &["10.79.0.53"])),
        &h,
    );
    assert_eq!(code, 202, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["pending"]["seconds_left"].as_u64().unwrap() <= 5, "{v}");
    // In force a moment after the answer (which left from the old address).
    wait_until(Duration::from_secs(3), || addresses(&net).contains(NEW));
    let a = addresses(&net);
    assert!(
        a.contains(&format!("{NEW}/24")) && !a.contains(&format!("{OLD}/")),
        "{a}\n{v}\n{}",
        pbx.log_text()
    );
    let (code, _) = curl(&net, NEW, "GET", "/admin", None, &[]);
    assert_eq!(
        code, 200,
        "the web admin does not answer at the new address"
    );
    let (code, _) = curl(&net, OLD, "GET", "/admin", None, &[]);
    assert_eq!(code, 0, "the old address still answers");
    let back = wait_until(Duration::from_secs(15), || {
        addresses(&net).contains(&format!("{OLD}/24"))
    });
    assert!(
        back,
        "never rolled back: {}\n{}",
        addresses(&net),
        pbx.log_text()
    );
    assert!(!addresses(&net).contains(NEW));
    let h = login(&net, OLD);
    let (_, body) = curl(&net, OLD, "GET", "/api/v1/system/network", None, &h);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["settings"]["interfaces"][0]["address"], OLD, "{v}");
    assert_eq!(v["pending"], Value::Null, "{v}");
    let (_, sec) = curl(&net, OLD, "GET", "/api/v1/logs/security", None, &h);
    assert!(
        sec.contains("network change not confirmed in time: rolled back"),
        "{sec}"
    );

    // Again, confirmed from the new address (a new login there): it stays.
    let (code, body) = curl(
        &net,
        OLD,
        "PUT",
        "/api/v1/system/network",
        Some(&settings(NEW, &net.dev, &["10.79.0.53"])),
        &h,
    );
    assert_eq!(code, 202, "{body}");
    let hn = login(&net, NEW);
    let (code, body) = curl(
        &net,
        NEW,
        "POST",
        "/api/v1/system/network/confirm",
        None,
        &hn,
    );
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        addresses(&net).contains(&format!("{NEW}/24")),
        "{}",
        addresses(&net)
    );
    let resolv = std::fs::read_to_string(root.path().join("etc/resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.79.0.53"), "{resolv}");
    let hostname = std::fs::read_to_string(root.path().join("etc/hostname")).unwrap();
    assert_eq!(hostname, "pbx-office\n");
    let (code, _) = curl(
        &net,
        NEW,
        "POST",
        "/api/v1/system/network/confirm",
        None,
        &hn,
    );
    assert_eq!(code, 409);
    // The same settings again: nothing to put on trial.
    let (code, body) = curl(
        &net,
        NEW,
        "PUT",
        "/api/v1/system/network",
        Some(&settings(NEW, &net.dev, &["10.79.0.53"])),
        &hn,
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn a_change_on_trial_at_a_restart_goes_back() {
    let net = net("b");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let pbx = start(&net, data(&net), root.path());
    let (code, _) = curl(
        &net,
        OLD,
        "POST",
        "/api/v1/setup",
        Some(&json!({"password": PW})),
        &[],
    );
    assert_eq!(code, 201);
    let h = login(&net, OLD);
    let (code, body) = curl(
        &net,
        OLD,
        "PUT",
        "/api/v1/system/network",
        Some(&settings(NEW, &net.dev, &[])),
        &h,
    );
    assert_eq!(code, 202, "{body}");
    // The daemon stops in the window; the next one goes back before it serves.
    assert!(wait_until(Duration::from_secs(3), || addresses(&net).contains(NEW)));
    let data = pbx.stop();
    let _pbx = start(&net, data, root.path());
    assert!(
        addresses(&net).contains(&format!("{OLD}/24")) && !addresses(&net).contains(NEW),
        "{}",
        addresses(&net)
    );
    let h = login(&net, OLD);
    let (_, body) = curl(&net, OLD, "GET", "/api/v1/system/network", None, &h);
    assert!(body.contains(OLD) && !body.contains(NEW), "{body}");
}
