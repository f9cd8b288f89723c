//! The firewall through nftables, in network namespaces the test makes: pbxd runs with
//! `--firewall` in the box's namespace, a LAN namespace holds two addresses, the
//! office's (allowed) and another (held). A held service refuses (TCP) or says nothing
//! (UDP); the office gets through; a change that cuts the administrator off rolls back
//! by itself, and one left unconfirmed at a restart rolls back at the start.

use e2e::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const BOX: &str = "10.78.0.1";
const OFFICE: &str = "10.78.0.2";
const OTHER: &str = "10.78.0.3";

/// Namespaces and the veth between them; removed when dropped.
struct Net {
    box_ns: String,
    lan_ns: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.box_ns, &self.lan_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn net() -> Net {
    net_named("")
}

/// A datagram from `src` in the LAN to the box's `port`; the answer, or None when
/// nothing comes within two seconds.
fn udp_from(net: &Net, src: &str, port: u16, data: &[u8]) -> Option<Vec<u8>> {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.settimeout(2)
s.sendto(bytes.fromhex(sys.argv[4]), (sys.argv[2], int(sys.argv[3])))
try:
    sys.stdout.write(s.recv(65535).hex())
except socket.timeout:
    sys.exit(3)
"#;
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.lan_ns,
            "python3",
            "-c",
            script,
            src,
            BOX,
        ])
        .arg(port.to_string())
        .arg(hex)
        .output()
        .expect("run python3");
    if o.status.code() == Some(3) {
        return None;
    }
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    Some(
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect(),
    )
}

fn options(src: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{BOX}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {src}:5099;branch=z9hG4bKfw{};rport\r\nFrom: <sip:probe@{src}>;tag=f1\r\nTo: <sip:{BOX}>\r\nCall-ID: fw{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        rand_tag(),
        rand_tag()
    )
    .into_bytes()
}

/// A TFTP read request for a file the box does not have: an ERROR packet answers it.
fn tftp_rrq() -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(b"no-such-file.cfg\0octet\0");
    p
}

fn rand_tag() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// The web from `src` in the LAN.
fn web(
    pbx: &Pbxd,
    net: &Net,
    src: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    h: &[String],
) -> HttpAnswer {
    let prefix = ["ip", "netns", "exec", net.lan_ns.as_str()];
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let body = body.map(Value::to_string);
    pbx.https_via(
        &prefix,
        &["--interface", src, "--connect-timeout", "3"],
        method,
        path,
        body.as_deref(),
        &h,
    )
}

fn login(pbx: &Pbxd, net: &Net, src: &str) -> Vec<String> {
    let a = web(
        pbx,
        net,
        src,
        "POST",
        "/api/v1/login",
        Some(&json!({"username": "Admin", "password": PW})),
        &[],
    );
    assert_eq!(a.status, 200, "login from {src}: {a:?}");
    let cookie = a.header("set-cookie").expect("a cookie");
    vec![
        format!("Cookie: {}", cookie.split(';').next().unwrap()),
        format!("X-CSRF-Token: {}", a.json()["csrf_token"].as_str().unwrap()),
    ]
}

const PW: &str = "Adm1n-Secret!";

/// The administrator, made from the office at the first start and logged in there.
fn admin(pbx: &Pbxd, net: &Net) -> Vec<String> {
    let setup = web(
        pbx,
        net,
        OFFICE,
        "POST",
        "/api/v1/setup",
        Some(&json!({"password": PW})),
        &[],
    );
    assert_eq!(setup.status, 201, "{setup:?}");
    login(pbx, net, OFFICE)
}

/// An IP address group made from the office.
fn group(pbx: &Pbxd, net: &Net, h: &[String], name: &str, items: Value) {
    let body = json!({"name": name, "items": items});
    let a = web(
        pbx,
        net,
        OFFICE,
        "POST",
        "/api/v1/routing/ip_groups",
        Some(&body),
        h,
    );
    assert_eq!(a.status, 201, "{a:?}");
}

fn nft_table(net: &Net) -> Option<Value> {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.box_ns,
            "nft",
            "-j",
            "list",
            "table",
            "inet",
            "pbx",
        ])
        .output()
        .expect("run nft");
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).expect("nft lists JSON"))
}

/// Waits until the daemon says the rules of the newest revision are in force.
fn in_force(pbx: &Pbxd, net: &Net, h: &[String]) -> Value {
    let mut last = Value::Null;
    let done = wait_until(Duration::from_secs(10), || {
        last = web(pbx, net, OFFICE, "GET", "/api/v1/firewall", None, h).json();
        // "ready: revision N, ..."
        let rev: u64 = pbx
            .ctl_ok(&["status"])
            .split("revision ")
            .nth(1)
            .and_then(|t| t.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .expect("pbxctl status names the revision");
        last["in_force"]["revision"]
            .as_u64()
            .is_some_and(|r| r >= rev)
    });
    assert!(done, "the rules never came in force: {last}");
    last
}

fn start(net: &Net, data: tempfile::TempDir) -> Pbxd {
    let sip: SocketAddr = format!("{BOX}:5060").parse().unwrap();
    Pbxd::launch(
        data,
        sip,
        &[
            "--firewall",
            "--firewall-confirm",
            "6",
            "--web",
            &format!("{BOX}:4021"),
            "--tftp",
            &format!("{BOX}:69"),
            "--sip-tls",
            &format!("{BOX}:5061"),
        ],
        &["ip", "netns", "exec", &net.box_ns],
    )
}

#[test]
fn services_are_held_to_their_groups_and_a_change_that_cuts_the_admin_off_rolls_back() {
    let net = net();
    let pbx = start(&net, tempfile::tempdir().unwrap());
    let h = admin(&pbx, &net);
    for (name, addr) in [("Office", OFFICE), ("Other", OTHER)] {
        group(
            &pbx,
            &net,
            &h,
            name,
            json!([{"type": "host", "address": addr}]),
        );
    }
    // Open: both addresses reach SIP, TFTP and the web; no table on the box.
    for src in [OFFICE, OTHER] {
        assert!(
            udp_from(&net, src, 5060, &options(src)).is_some(),
            "SIP from {src}"
        );
        assert!(
            udp_from(&net, src, 69, &tftp_rrq()).is_some(),
            "TFTP from {src}"
        );
        assert_ne!(
            web(&pbx, &net, src, "GET", "/", None, &[]).status,
            0,
            "web from {src}"
        );
    }
    assert!(nft_table(&net).is_none(), "no table while nothing is held");

    // Everything but RTP to the office.
    let office = json!({"sip_udp": "Office", "sip_tcp": "Office", "sip_tls": "Office",
        "web_admin": "Office", "user_portal": "Office", "provisioning": "Office"});
    let a = web(
        &pbx,
        &net,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&office),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["settings"]["sip_udp"], "Office");
    let left = a.json()["confirm_within"].as_u64().expect("on trial");
    assert!((1..=6).contains(&left), "{a:?}");
    let v = in_force(&pbx, &net, &h);
    assert_eq!(v["in_force"]["enabled"], true, "{v}");
    assert!(v["in_force"]["error"].is_null(), "{v}");
    // The table nftables lists: the office's address in the SIP set, a drop for the rest.
    let table = nft_table(&net).expect("the table is there");
    let items = table["nftables"].as_array().unwrap();
    let set = items
        .iter()
        .find(|o| o["set"]["name"] == "sip_udp_v4")
        .expect("a set for SIP over UDP");
    assert_eq!(set["set"]["elem"], json!([OFFICE]), "{set}");
    let rules = items.iter().filter(|o| o.get("rule").is_some()).count();
    assert_eq!(v["in_force"]["rules"].as_u64(), Some(rules as u64), "{v}");
    assert!(rules >= 10, "{table}");

    // The office gets through, the other address gets nothing or a refusal.
    assert!(udp_from(&net, OFFICE, 5060, &options(OFFICE)).is_some());
    assert!(
        udp_from(&net, OTHER, 5060, &options(OTHER)).is_none(),
        "SIP over UDP held"
    );
    assert!(udp_from(&net, OFFICE, 69, &tftp_rrq()).is_some());
    assert!(
        udp_from(&net, OTHER, 69, &tftp_rrq()).is_none(),
        "TFTP held"
    );
    let refused = web(&pbx, &net, OTHER, "GET", "/", None, &[]);
    assert_eq!(
        refused.status, 0,
        "the web refuses the other address: {refused:?}"
    );
    assert!(
        refused.body.contains("exit Some(7)"),
        "refused, not timed out: {refused:?}"
    );
    let sip_tcp = Command::new("ip")
        .args(["netns", "exec", &net.lan_ns, "python3", "-c"])
        .arg(format!(
            "import socket\ns=socket.socket()\ns.bind(('{OTHER}',0))\ns.settimeout(3)\ntry:\n s.connect(('{BOX}',5061))\n print('open')\nexcept ConnectionRefusedError:\n print('refused')\n"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sip_tcp.stdout).trim(), "refused");
    // Confirmed from a new request by the office, the rules stay past the minute.
    let c = web(
        &pbx,
        &net,
        OFFICE,
        "POST",
        "/api/v1/firewall/confirm",
        None,
        &h,
    );
    assert_eq!(c.status, 204, "{c:?}");
    let again = web(
        &pbx,
        &net,
        OFFICE,
        "POST",
        "/api/v1/firewall/confirm",
        None,
        &h,
    );
    assert_eq!(again.status, 409, "nothing left to confirm: {again:?}");
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        udp_from(&net, OTHER, 5060, &options(OTHER)).is_none(),
        "still held"
    );

    // Now the admin gives the web to the other address only: their own next request is
    // refused, so no confirmation can come, and the rules from before come back.
    let cut = json!({"web_admin": "Other", "user_portal": "Other", "provisioning": "Other"});
    let a = web(
        &pbx,
        &net,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&cut),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        wait_until(Duration::from_secs(5), || {
            web(&pbx, &net, OFFICE, "GET", "/api/v1/firewall", None, &h).status == 0
        }),
        "the office is cut off while the change is on trial"
    );
    let back = wait_until(Duration::from_secs(15), || {
        web(&pbx, &net, OFFICE, "GET", "/api/v1/firewall", None, &h).json()["settings"]["web_admin"]
            == "Office"
    });
    assert!(back, "rolled back: {}", pbx.log_text());
    let v = in_force(&pbx, &net, &h);
    assert!(v["confirm_within"].is_null(), "{v}");
    let log = web(&pbx, &net, OFFICE, "GET", "/api/v1/logs/security", None, &h).body;
    assert!(log.contains("not confirmed in time: rolled back"), "{log}");

    // Opening everything removes the table, with no trial.
    let open = json!({"sip_udp": "", "sip_tcp": "", "sip_tls": "", "web_admin": "",
        "user_portal": "", "provisioning": "", "rtp": ""});
    let a = web(
        &pbx,
        &net,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&open),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json()["confirm_within"].is_null(), "{a:?}");
    assert!(wait_until(Duration::from_secs(10), || nft_table(&net).is_none()));
    assert!(udp_from(&net, OTHER, 5060, &options(OTHER)).is_some());
}

#[test]
fn an_unknown_group_is_refused_and_a_change_unconfirmed_at_a_restart_rolls_back() {
    let net_a = net_named("r");
    let pbx = start(&net_a, tempfile::tempdir().unwrap());
    let h = admin(&pbx, &net_a);
    let bad = web(
        &pbx,
        &net_a,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&json!({"sip_udp": "Nobody"})),
        &h,
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.json()["field"], "sip_udp", "{bad:?}");
    assert!(bad.body.contains("no IP address group Nobody"), "{bad:?}");
    let unknown = web(
        &pbx,
        &net_a,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&json!({"ssh": "x"})),
        &h,
    );
    assert_eq!(unknown.status, 400, "{unknown:?}");
    let office = json!([{"type": "range", "from": "10.78.0.1", "to": "10.78.0.2"}]);
    group(&pbx, &net_a, &h, "Office", office);
    let a = web(
        &pbx,
        &net_a,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&json!({"sip_udp": "Office"})),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    in_force(&pbx, &net_a, &h);
    // 10.78.0.3 is outside the range.
    assert!(udp_from(&net_a, OTHER, 5060, &options(OTHER)).is_none());
    // The daemon stops before anybody confirms: at the next start the rules from before
    // (nothing held) come back, and the table goes.
    let data = pbx.stop();
    let pbx = start(&net_a, data);
    let h = login(&pbx, &net_a, OFFICE);
    let v = in_force(&pbx, &net_a, &h);
    assert_eq!(v["settings"]["sip_udp"], "", "{v}");
    assert!(v["confirm_within"].is_null(), "{v}");
    assert!(nft_table(&net_a).is_none(), "{v}");
    assert!(udp_from(&net_a, OTHER, 5060, &options(OTHER)).is_some());
    assert!(pbx.log_text().contains("not confirmed before the restart"));

    // The web port admits the LAN for the portal, but the web admin and provisioning
    // over HTTPS only the office: the web server holds each path to its group.
    group(
        &pbx,
        &net_a,
        &h,
        "Lan",
        json!([{"type": "network", "network": "10.78.0.0/24"}]),
    );
    let split = json!({"web_admin": "Office", "user_portal": "Lan", "provisioning": "Office"});
    let a = web(
        &pbx,
        &net_a,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&split),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    in_force(&pbx, &net_a, &h);
    let elsewhere = login(&pbx, &net_a, OTHER);
    let admin = web(
        &pbx,
        &net_a,
        OTHER,
        "GET",
        "/api/v1/firewall",
        None,
        &elsewhere,
    );
    assert_eq!(
        admin.status, 403,
        "no administrator rights from there: {admin:?}"
    );
    let prov = web(&pbx, &net_a, OTHER, "GET", "/prov/snom360.htm", None, &[]);
    assert_eq!(prov.status, 403, "{prov:?}");
    assert!(
        prov.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not allow this service from 10.78.0.3")),
        "{prov:?}"
    );
    // The portal to the office too, provisioning to the LAN: the other address reaches
    // the web port but may not log in, and only /prov/ answers it.
    let portal = json!({"user_portal": "Office", "provisioning": "Lan"});
    let a = web(
        &pbx,
        &net_a,
        OFFICE,
        "PUT",
        "/api/v1/firewall",
        Some(&portal),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    let trial = a.json()["trial"].as_str().expect("a trial id").to_string();
    in_force(&pbx, &net_a, &h);
    let refused = web(
        &pbx,
        &net_a,
        OTHER,
        "POST",
        "/api/v1/login",
        Some(&json!({"username": "Admin", "password": PW})),
        &[],
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(web(&pbx, &net_a, OTHER, "GET", "/", None, &[]).status, 403);
    let session = web(&pbx, &net_a, OTHER, "GET", "/api/v1/me", None, &elsewhere);
    assert_eq!(session.status, 403, "{session:?}");
    let prov = web(&pbx, &net_a, OTHER, "GET", "/prov/snom360.htm", None, &[]);
    assert!(
        prov.status != 0 && !prov.body.contains("firewall"),
        "{prov:?}"
    );
    // A confirmation names the trial it confirms.
    let stale = web(
        &pbx,
        &net_a,
        OFFICE,
        "POST",
        "/api/v1/firewall/confirm",
        Some(&json!({"trial": "12345"})),
        &h,
    );
    assert_eq!(stale.status, 409, "{stale:?}");
    let c = web(
        &pbx,
        &net_a,
        OFFICE,
        "POST",
        "/api/v1/firewall/confirm",
        Some(&json!({"trial": trial})),
        &h,
    );
    assert_eq!(c.status, 204, "{c:?}");
}

fn net_named(tag: &str) -> Net {
    // A second set of namespaces for a test running beside the other one.
    let id = std::process::id() % 100_000;
    let n = Net {
        box_ns: format!("fwbox{tag}{id}"),
        lan_ns: format!("fwlan{tag}{id}"),
    };
    let (vb, vl) = (format!("fb{tag}{id}"), format!("fl{tag}{id}"));
    ip(&["netns", "add", &n.box_ns]);
    ip(&["netns", "add", &n.lan_ns]);
    ip(&["link", "add", &vb, "type", "veth", "peer", "name", &vl]);
    ip(&["link", "set", &vb, "netns", &n.box_ns]);
    ip(&["link", "set", &vl, "netns", &n.lan_ns]);
    ip(&[
        "-n",
        &n.box_ns,
        "addr",
        "add",
        &format!("{BOX}/24"),
        "dev",
        &vb,
    ]);
    for a in [OFFICE, OTHER] {
        ip(&[
            "-n",
            &n.lan_ns,
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &vl,
        ]);
    }
    for (ns, dev) in [(&n.box_ns, &vb), (&n.lan_ns, &vl)] {
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    n
}

#[test]
fn chromium_puts_rules_on_trial_confirms_them_and_rolls_a_change_back() {
    let net = net_named("w");
    let pbx = start(&net, tempfile::tempdir().unwrap());
    let h = admin(&pbx, &net);
    group(
        &pbx,
        &net,
        &h,
        "Office",
        json!([{"type": "host", "address": OFFICE}]),
    );
    // Chromium runs in the LAN from the office's address (the first on its link).
    browser_via(
        &pbx,
        &["ip", "netns", "exec", &net.lan_ns],
        "firewall.mjs",
        &[("ADMIN_PW", PW)],
    );
    let v = in_force(&pbx, &net, &h);
    assert_eq!(v["settings"]["sip_udp"], "Office", "{v}");
    assert_eq!(v["settings"]["rtp"], "", "{v}");
    assert!(v["confirm_within"].is_null(), "{v}");
    assert!(udp_from(&net, OTHER, 5060, &options(OTHER)).is_none());
}
