//! Trunks and number routing with real peers: two pbxd joined by a link, SIP providers
//! played by SIPp (registration with digest, inbound DID with rewrites, outbound with a
//! backup interface), permission groups on direct calls, forwards and ring-group
//! members, Ivoz's routing order, and emergency numbers.

use e2e::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 [local_ip]\r\ns=-\r\nc=IN IP4 [local_ip]\r\nt=0 0\r\nm=audio [media_port] RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";

fn reply(status: &str, extra: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\n".into()
    };
    format!(
        "<send><![CDATA[\nSIP/2.0 {status}\n[last_Via:]\n[last_From:]\n[last_To:];tag=[pid]T[call_number]\n[last_Call-ID:]\n[last_CSeq:]\nContact: <sip:[local_ip]:[local_port]>\n{extra}{ct}Content-Length: [len]\n\n{body}]]></send>\n"
    )
}

fn scenario(body: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"t\">\n{body}</scenario>\n")
}

/// A provider that takes one INVITE whose Request-URI user is `user` (and From user
/// `from` when given), optionally challenges it, and answers `status`; with 200 it
/// waits for the BYE.
fn provider_uas(user: &str, from: Option<&str>, challenge: bool, status: &str) -> String {
    let check = |extra: &str| {
        let mut a = format!("<ereg regexp=\"^INVITE sip:{user}@\" search_in=\"msg\" check_it=\"true\" assign_to=\"u\"/>");
        if let Some(f) = from {
            a.push_str(&format!("<ereg regexp=\"sip:{f}@\" search_in=\"hdr\" header=\"From:\" check_it=\"true\" assign_to=\"f\"/>"));
        }
        let refs = if from.is_some() { "u,f" } else { "u" };
        format!("<recv request=\"INVITE\"><action>{a}{extra}</action></recv>\n<Reference variables=\"{refs}\"/>\n")
    };
    let mut s = String::new();
    if challenge {
        s.push_str(&check(""));
        s.push_str(&reply(
            "401 Unauthorized",
            "WWW-Authenticate: Digest realm=\"provider\", nonce=\"n[call_number]x\"\n",
            "",
        ));
        s.push_str("<recv request=\"ACK\"/>\n");
        s.push_str(&check(
            "<verifyauth assign_to=\"ok\" username=\"trunkuser\" password=\"Provider-Pass-1\"/>",
        ));
        s.push_str("<nop test=\"ok\" next=\"good\"/>\n");
        s.push_str(&reply("403 Forbidden", "", ""));
        s.push_str("<recv request=\"ACK\" next=\"end\"/>\n<label id=\"good\"/>\n");
    } else {
        s.push_str(&check(""));
    }
    if status.starts_with("200") {
        s.push_str(&reply("180 Ringing", "", ""));
        s.push_str(&reply("200 OK", "", SDP).replace("<send>", "<send retrans=\"500\">"));
        s.push_str("<recv request=\"ACK\"/>\n<recv request=\"BYE\"/>\n");
        s.push_str(&reply("200 OK", "", ""));
    } else {
        s.push_str(&reply(status, "", ""));
        s.push_str("<recv request=\"ACK\"/>\n");
    }
    s.push_str("<label id=\"end\"/>\n");
    scenario(&s)
}

/// A provider's registrar: challenges every REGISTER, checks the answer, grants 20 s;
/// `rounds` registrations, each within the previous one's lifetime.
fn provider_registrar(rounds: usize) -> String {
    let mut s = String::new();
    for i in 0..rounds {
        let timeout = if i == 0 { "" } else { " timeout=\"19000\"" };
        s.push_str(&format!("<recv request=\"REGISTER\"{timeout}/>\n"));
        s.push_str(&reply("401 Unauthorized", "WWW-Authenticate: Digest realm=\"provider\", nonce=\"r[call_number]n\", qop=\"auth\"\n", ""));
        s.push_str("<recv request=\"REGISTER\"><action><verifyauth assign_to=\"ok\" username=\"trunkuser\" password=\"Provider-Pass-1\"/></action></recv>\n");
        s.push_str(&format!("<nop test=\"ok\" next=\"good{i}\"/>\n"));
        s.push_str(&reply("403 Forbidden", "", "").replace("<send>", "<send next=\"end\">"));
        s.push_str(&format!("<label id=\"good{i}\"/>\n"));
        s.push_str(&reply("200 OK", "Expires: 20\n", ""));
    }
    s.push_str("<label id=\"end\"/>\n");
    scenario(&s)
}

/// An INVITE from `ip` to the box for `number`; expects `status` as the final answer.
fn caller_uac(number: &str, from: &str, status: u16) -> String {
    let mut s = format!(
        "<send retrans=\"500\"><![CDATA[\nINVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/UDP [local_ip]:[local_port];branch=[branch]\nFrom: \"Outside\" <sip:{from}@[local_ip]>;tag=[pid]U[call_number]\nTo: <sip:{number}@[remote_ip]>\nCall-ID: [call_id]\nCSeq: 1 INVITE\nContact: <sip:{from}@[local_ip]:[local_port]>\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: [len]\n\n{SDP}]]></send>\n<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n<recv response=\"183\" optional=\"true\"/>\n<recv response=\"{status}\"/>\n"
    );
    let ack = "<send><![CDATA[\nACK sip:{number}@[remote_ip]:[remote_port] SIP/2.0\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>\n".replace("{number}", number);
    s.push_str(&ack);
    if status == 200 {
        s.push_str("<pause milliseconds=\"1000\"/>\n<send retrans=\"500\"><![CDATA[\nBYE sip:{number}@[remote_ip]:[remote_port] SIP/2.0\nVia: SIP/2.0/UDP [local_ip]:[local_port];branch=[branch]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n]]></send>\n<recv response=\"200\"/>\n".replace("{number}", number).as_str());
    }
    scenario(&s)
}

const WEB_PW: &str = "Adm1n-Trunks!x";

fn sip_of(p: &Pbxd) -> String {
    p.sip.to_string()
}

fn peers(p: &Pbxd) -> Value {
    serde_json::from_str(&p.ctl_ok(&["peers", "--json"])).unwrap()
}

fn peer_state(p: &Pbxd, name: &str) -> (String, String) {
    let v = peers(p);
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no peer {name}: {v}"))
        .clone();
    (
        row["registration"].as_str().unwrap().to_string(),
        row["detail"].as_str().unwrap_or("").to_string(),
    )
}

fn launch_on(ip: &str) -> Pbxd {
    let data = tempfile::tempdir().unwrap();
    let sip: SocketAddr = format!("{ip}:{}", free_port()).parse().unwrap();
    Pbxd::launch(data, sip, &["--register-retry", "2"], &[])
}

#[test]
fn two_boxes_joined_by_a_link_talk_both_ways_of_connecting() {
    // Kerauno's example: A has 100-150, B has 151-200.
    let a = launch_on("127.0.0.2");
    let b = launch_on("127.0.0.3");
    let pw101 = add_ext(&a, "101");
    let pw170 = add_ext(&a, "170"); // inside B's range: a conflict where Local wins
    let pw160 = add_ext(&b, "160");
    let (a_port, b_port) = (a.sip.port(), b.sip.port());
    edit_config(&a, |v| {
        v["links"] = json!([{"name": "siteB", "range_min": "151", "range_max": "200",
            "host": "127.0.0.3", "port": b_port, "username": "linkAB", "password": "Link-Secret-42x", "keepalive": 0}]);
    });
    edit_config(&b, |v| {
        v["links"] = json!([{"name": "siteA", "range_min": "100", "range_max": "150",
            "host": "127.0.0.2", "port": a_port, "username": "linkAB", "password": "Link-Secret-42x", "keepalive": 0}]);
    });
    let conflicts = a.ctl_ok(&["conflicts"]);
    assert!(
        conflicts.contains("170") && conflicts.contains("local"),
        "{conflicts}"
    );

    let mut p101 = phone(&a, "101", &pw101, 440, false, "PCMU,PCMA");
    let p160 = phone(&b, "160", &pw160, 1000, true, "PCMU,PCMA");
    let p170 = phone(&a, "170", &pw170, 700, true, "PCMU,PCMA");
    connect(&mut p101, &p160, &a, "160");
    std::thread::sleep(Duration::from_secs(3));
    p101.command("hangup", "");
    closed_reason(&p160);
    assert_heard(&p160, 440.0);
    assert_heard(&p101, 1000.0);
    // The caller shows as 101 at B.
    assert!(p160.log().contains("sip:101@"), "{}", p160.log());

    // A local number inside B's range reaches the local extension.
    p101.clear_events();
    connect(&mut p101, &p170, &a, "170");
    p101.command("hangup", "");
    closed_reason(&p170);

    // Now B registers to A (A's side is behind NAT, say).
    edit_config(&a, |v| {
        v["links"][0]["mode"] = json!("peer_registers");
        v["links"][0]["host"] = json!("");
        v["links"][0]["port"] = json!(0);
    });
    edit_config(&b, |v| {
        v["links"][0]["mode"] = json!("we_register");
    });
    assert!(
        wait_until(Duration::from_secs(15), || peer_state(&b, "siteA").0
            == "registered"
            && peer_state(&a, "siteB").0 == "registered"),
        "B did not register to A: {} / {}",
        peers(&a),
        peers(&b)
    );
    p101.clear_events();
    connect(&mut p101, &p160, &a, "160");
    std::thread::sleep(Duration::from_secs(2));
    p101.command("hangup", "");
    assert!(p160.wait_event("CALL_CLOSED", PHONE_WAIT).is_some());
}

/// Interface `provider1` (primary) and `backup` on SIPp ports, Kerio 6.3's numbers.
fn providers(pbx: &Pbxd, primary: u16, backup: u16, password: &str, register: bool) {
    let pw = password.to_string();
    edit_config(pbx, |v| {
        v["sip_interfaces"] = json!([
            {"name": "provider1", "host": "127.0.0.4", "port": primary, "numbers": ["800225XXX"],
             "operator": "100", "called_rewrite": {"strip": 6}, "calling_rewrite": {"prefix": "9"},
             "username": "trunkuser", "password": pw, "register": register, "register_expires": 60,
             "keepalive": 0},
            {"name": "backup", "host": "127.0.0.5", "port": backup, "keepalive": 0,
             "username": "trunkuser", "password": "Provider-Pass-1"}
        ]);
        v["outbound_routes"] = json!([
            {"prefix": "9", "interfaces": ["provider1", "backup"],
             "called_rewrite": {"strip": 1}, "calling_rewrite": {"strip": 1, "prefix": "01"}}
        ]);
    });
}

#[test]
fn provider_registration_with_right_and_wrong_password() {
    // Set up as an administrator would: through the web API, whose status shows the
    // registration the exchange keeps.
    let pbx = Pbxd::start();
    let h = pbx.admin_session(WEB_PW);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    add_ext(&pbx, "100");
    let port = free_port();
    let (uas, dir) = sipp_spawn(&provider_registrar(2), "", "127.0.0.4", port, &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let iface = json!({"name": "provider1", "host": "127.0.0.4", "port": port,
        "numbers": ["800225XXX"], "operator": "100", "username": "trunkuser",
        "password": "Provider-Pass-1", "register": true, "register_expires": 60, "keepalive": 0});
    let a = pbx.https(
        "POST",
        "/api/v1/routing/interfaces",
        Some(&iface.to_string()),
        &h,
    );
    assert_eq!(a.status, 201, "{a:?}");
    let web_state = || {
        let a = pbx.https("GET", "/api/v1/status/peers", None, &h);
        a.json()[0]["registration"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(10), || web_state() == "registered"),
        "{}",
        peers(&pbx)
    );
    let page = pbx.https("GET", "/admin/routing", None, &h);
    assert!(page.body.contains("registered"), "{}", page.body);
    // The second round (the refresh, due after 10 of the 20 s granted) must come
    // before the first registration runs out: SIPp waits 19 s at most.
    sipp_wait("registrar", uas, &dir);
    assert_eq!(peer_state(&pbx, "provider1").0, "registered");

    // A wrong password typed in later: the registration fails at once and says so.
    let port = free_port();
    let (uas, dir) = sipp_spawn(&provider_registrar(1), "", "127.0.0.4", port, &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let change = json!({"port": port, "password": "Wrong-Pass-999"});
    let a = pbx.https(
        "PUT",
        "/api/v1/routing/interfaces/provider1",
        Some(&change.to_string()),
        &h,
    );
    assert_eq!(a.status, 200, "{a:?}");
    sipp_wait("registrar (wrong password)", uas, &dir);
    assert!(
        wait_until(Duration::from_secs(10), || web_state() == "failed"),
        "{}",
        peers(&pbx)
    );
    let (_, detail) = peer_state(&pbx, "provider1");
    assert!(
        detail.contains("403") || detail.contains("password"),
        "{detail}"
    );
}

#[test]
fn provider_calls_in_and_out_with_rewrites_and_backup() {
    let pbx = Pbxd::start();
    add_ext(&pbx, "100");
    let pw = add_ext(&pbx, "111");
    let (primary, backup) = (free_port(), free_port());
    providers(&pbx, primary, backup, "Provider-Pass-1", false);
    let mut p111 = phone(&pbx, "111", &pw, 440, true, "PCMU,PCMA");

    // Inbound (Kerio 6.3): 800225111 reaches 111; the caller shows with 9 in front.
    let (uac, dir) = sipp_spawn(
        &caller_uac("800225111", "5550399", 200),
        &sip_of(&pbx),
        "127.0.0.4",
        free_port(),
        &["-m", "1"],
    );
    sipp_wait("provider calling in", uac, &dir);
    assert!(
        p111.log().contains("sip:95550399@"),
        "caller not rewritten:\n{}",
        p111.log()
    );

    // Somebody else claiming to be the provider is challenged.
    let (uac, dir) = sipp_spawn(
        &caller_uac("800225111", "5550399", 407),
        &sip_of(&pbx),
        "127.0.0.9",
        free_port(),
        &["-m", "1"],
    );
    sipp_wait("impostor", uac, &dir);

    // Outbound: 9 + number leaves with the prefix stripped and the caller as 0111
    // (strip 1, add 01). The primary answers 503: the backup carries the call, after
    // challenging our INVITE.
    let (p1, d1) = sipp_spawn(
        &provider_uas("5550199", None, false, "503 Service Unavailable"),
        "",
        "127.0.0.4",
        primary,
        &["-m", "1"],
    );
    let (p2, d2) = sipp_spawn(
        &provider_uas("5550199", Some("0111"), true, "200 OK"),
        "",
        "127.0.0.5",
        backup,
        &["-m", "1"],
    );
    std::thread::sleep(Duration::from_millis(300));
    p111.clear_events();
    dial(&mut p111, &pbx, "95550199");
    if p111.wait_event("CALL_ESTABLISHED", PHONE_WAIT).is_none() {
        let (mut p1, mut p2) = (p1, p2);
        let _ = (p1.kill(), p2.kill());
        sipp_wait("primary (503)", p1, &d1);
        sipp_wait("backup", p2, &d2);
        panic!("no call: {:?}", p111.events());
    }
    std::thread::sleep(Duration::from_secs(1));
    p111.command("hangup", "");
    sipp_wait("primary (503)", p1, &d1);
    sipp_wait("backup", p2, &d2);
}

/// A provider that answers 486 to every call, so "went out" is told from "refused by
/// the box" (403).
fn busy_provider() -> String {
    scenario(&format!(
        "<recv request=\"INVITE\"/>\n{}<recv request=\"ACK\"/>\n",
        reply("486 Busy Here", "", "")
    ))
}

fn outcome(p: &mut Phone, pbx: &Pbxd, number: &str) -> String {
    p.clear_events();
    dial(p, pbx, number);
    closed_reason(p)
}

#[test]
fn permission_groups_hold_direct_calls_forwards_ring_groups_and_emergency() {
    let pbx = Pbxd::start();
    let pw201 = add_ext(&pbx, "201");
    let pw205 = add_ext(&pbx, "205");
    for n in ["202", "203"] {
        add_ext(&pbx, n);
    }
    let port = free_port();
    let (uas, dir) = sipp_spawn(&busy_provider(), "", "127.0.0.4", port, &["-m", "5"]);
    std::thread::sleep(Duration::from_millis(300));
    edit_config(&pbx, |v| {
        v["sip_interfaces"] =
            json!([{"name": "provider1", "host": "127.0.0.4", "port": port, "keepalive": 0}]);
        v["outbound_routes"] = json!([
            {"prefix": "0", "interfaces": ["provider1"], "called_rewrite": {"strip": 1}},
            {"prefix": "5", "interfaces": ["provider1"]}
        ]);
        // Kerio's figure 23.3.
        v["permission_groups"] = json!([
            {"name": "John Smith", "rules": [
                {"prefix": "0900654321", "allow": true}, {"prefix": "0900", "allow": false},
                {"prefix": "5000100", "allow": false}, {"prefix": "5000123", "allow": false}],
             "default_allow": true},
            {"name": "Only internal", "rules": [], "default_allow": false}
        ]);
        v["emergency"] = json!({"numbers": [{"number": "112", "description": "Emergency"}],
            "direct_dialing": true, "routes": ["0"]});
        v["ring_groups"] = json!([
            {"number": "600", "members": ["5000123"]},
            {"number": "601", "members": ["0900654321"]}
        ]);
        for e in v["extensions"].as_array_mut().unwrap() {
            match e["number"].as_str().unwrap() {
                "201" => e["permission_group"] = json!("John Smith"),
                "205" => e["permission_group"] = json!("Only internal"),
                "202" => e["forward"] = json!("5000100"),
                "203" => e["forward"] = json!("0602111111"),
                _ => {}
            }
        }
    });
    let mut p201 = phone(&pbx, "201", &pw201, 440, false, "PCMU,PCMA");
    let mut p205 = phone(&pbx, "205", &pw205, 440, false, "PCMU,PCMA");
    // (caller, number, why): 403 = refused by the box, 486 = reached the provider.
    let cases = [
        (0, "0900123456", "403", "direct call to denied 0900"),
        (
            0,
            "0900654321",
            "486",
            "direct call to the allowed 0900654321",
        ),
        (0, "5000123", "403", "direct call to denied 5000123"),
        (0, "0602111111", "486", "the default rule"),
        (0, "202", "403", "forward to denied 5000100"),
        (0, "203", "486", "forward to 0602111111"),
        (0, "600", "403", "ring-group member 5000123"),
        (0, "601", "486", "ring-group member 0900654321"),
        // Emergency: 112 without the prefix goes out for an internal-only extension,
        // which cannot call anything else outside.
        (1, "0602111111", "403", "internal only"),
        (1, "112", "486", "emergency 112"),
    ];
    let phones = [&mut p201, &mut p205];
    for (who, number, want, why) in cases {
        let r = outcome(phones[who], &pbx, number);
        assert!(r.starts_with(want), "{why} ({number}): {r}");
    }
    sipp_wait("provider", uas, &dir);
    // An extension cannot take an emergency number while direct dialing is on.
    let out = pbx.ctl(&["extension", "add", "112", "--password", "Secret-112x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("emergency"),
        "{out:?}"
    );
    // A country preset overwrites the list (Kerio 18.2); an unknown country is refused.
    pbx.ctl_ok(&["emergency-preset", "United Kingdom"]);
    let doc: Value = serde_json::from_str(&pbx.ctl_ok(&["config", "export"])).unwrap();
    let numbers: Vec<&str> = doc["emergency"]["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["999", "112", "111", "101"]);
    assert!(!pbx.ctl(&["emergency-preset", "Atlantis"]).status.success());
}

#[test]
fn ivoz_routing_order_and_a_friend_held_to_its_permission_group() {
    let pbx = Pbxd::start();
    let pw = add_ext(&pbx, "101");
    add_ext(&pbx, "102");
    let (f1, f2, prov) = (free_port(), free_port(), free_port());
    let (s1, d1) = sipp_spawn(
        &provider_uas("150", None, false, "486 Busy Here"),
        "",
        "127.0.0.6",
        f1,
        &["-m", "1"],
    );
    let (s2, d2) = sipp_spawn(
        &provider_uas("5000", None, false, "603 Decline"),
        "",
        "127.0.0.7",
        f2,
        &["-m", "1"],
    );
    let (sp, dp) = sipp_spawn(&busy_provider(), "", "127.0.0.4", prov, &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    edit_config(&pbx, |v| {
        v["permission_groups"] = json!([{"name": "friends", "rules": [{"prefix": "0900", "allow": false}], "default_allow": true}]);
        v["sip_interfaces"] =
            json!([{"name": "provider1", "host": "127.0.0.4", "port": prov, "keepalive": 0}]);
        v["outbound_routes"] =
            json!([{"prefix": "0", "interfaces": ["provider1"], "called_rewrite": {"strip": 1}}]);
        v["links"] = json!([
            {"name": "friend1", "host": "127.0.0.6", "port": f1, "patterns": ["1\\d\\d", "5\\d{3}"], "priority": 2,
             "permission_group": "friends", "keepalive": 0},
            {"name": "friend2", "host": "127.0.0.7", "port": f2, "patterns": ["5\\d{3}"], "priority": 1, "keepalive": 0}
        ]);
    });
    let mut p101 = phone(&pbx, "101", &pw, 440, false, "PCMU,PCMA");
    // An extension beats a friend pattern: 102 is local (and not registered).
    let r = outcome(&mut p101, &pbx, "102");
    assert!(r.starts_with("480"), "102: {r}");
    // Only friend1 matches 150.
    let r = outcome(&mut p101, &pbx, "150");
    assert!(r.starts_with("486"), "150: {r}");
    // Both match 5000: friend2 has the lower priority value.
    let r = outcome(&mut p101, &pbx, "5000");
    assert!(r.starts_with("603"), "5000: {r}");
    sipp_wait("friend1", s1, &d1);
    sipp_wait("friend2", s2, &d2);
    // friend1 calls out through us: its group denies 0900, allows the rest.
    let (c, d) = sipp_spawn(
        &caller_uac("0900123456", "150", 403),
        &sip_of(&pbx),
        "127.0.0.6",
        free_port(),
        &["-m", "1"],
    );
    sipp_wait("friend1 calling 0900", c, &d);
    let (c, d) = sipp_spawn(
        &caller_uac("0602111111", "150", 486),
        &sip_of(&pbx),
        "127.0.0.6",
        free_port(),
        &["-m", "1"],
    );
    sipp_wait("friend1 calling out", c, &d);
    sipp_wait("provider", sp, &dp);
}

#[test]
fn a_provider_named_by_domain_is_found_through_naptr_and_srv() {
    // RFC 3263: NAPTR names the UDP SRV record, which names two servers by priority. A
    // decoy _sip._udp record at the domain itself shows that NAPTR was followed.
    let (dns_port, sip_port, second, decoy) = (free_port(), free_port(), free_port(), free_port());
    // dnsmasq on loopback serving the provider's NAPTR, SRV and A records.
    let dns = Dnsmasq::start(
        dns_port,
        &[
            "--host-record=sip1.provider.test,127.0.0.4".into(),
            "--host-record=sip2.provider.test,127.0.0.5".into(),
            "--naptr-record=provider.test,10,10,s,SIP+D2U,,_sip._udp.naptr.provider.test".into(),
            format!("--srv-host=_sip._udp.naptr.provider.test,sip1.provider.test,{sip_port},0,5"),
            format!("--srv-host=_sip._udp.naptr.provider.test,sip2.provider.test,{second},1,5"),
            format!("--srv-host=_sip._udp.provider.test,sip1.provider.test,{decoy},0,5"),
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dns_arg = format!("127.0.0.1:{dns_port}");
    let pbx = Pbxd::launch(data, sip, &["--dns", &dns_arg], &[]);
    let pw = add_ext(&pbx, "111");
    edit_config(&pbx, |v| {
        v["sip_interfaces"] =
            json!([{"name": "provider1", "host": "provider.test", "keepalive": 0}]);
        v["outbound_routes"] = json!([{"prefix": "9", "interfaces": ["provider1"],
            "called_rewrite": {"strip": 1}}]);
    });
    let want = format!("127.0.0.4:{sip_port}");
    let address = || peers(&pbx)[0]["address"].as_str().unwrap_or("").to_string();
    assert!(
        wait_until(Duration::from_secs(10), || address() == want),
        "{} (wanted {want})",
        peers(&pbx)
    );
    // The first server answers 503: the call goes to the domain's next server, which
    // answers 486 (without the failover the caller would hear the 503).
    let (s1, d1) = sipp_spawn(
        &provider_uas("5550199", None, false, "503 Service Unavailable"),
        "",
        "127.0.0.4",
        sip_port,
        &["-m", "1"],
    );
    let (s2, d2) = sipp_spawn(&busy_provider(), "", "127.0.0.5", second, &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut p111 = phone(&pbx, "111", &pw, 440, false, "PCMU,PCMA");
    let r = outcome(&mut p111, &pbx, "95550199");
    sipp_wait("first server (503)", s1, &d1);
    sipp_wait("second server", s2, &d2);
    assert!(r.starts_with("486"), "{r}\n{}", pbx.log_text());

    // An unknown name leaves the interface without an address (and routes skip it).
    edit_config(&pbx, |v| {
        v["sip_interfaces"][0]["host"] = json!("nowhere.provider.test");
    });
    assert!(
        wait_until(Duration::from_secs(10), || address().is_empty()),
        "{}",
        peers(&pbx)
    );
    drop(dns);
}
