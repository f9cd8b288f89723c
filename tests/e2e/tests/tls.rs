//! SIP over TLS (RFC 3261 26.2, port 5061): phones of two stacks register and call
//! over TLS, checking the box's certificate, name included; an account limited to TLS
//! is refused over UDP; a link between two boxes runs over TLS found through
//! `_sips._tcp` SRV, and a box whose peer's certificate is not trusted, or is not for
//! the name it dialled, does not talk to it.

use e2e::*;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn only_tls(pbx: &Pbxd, users: &[&str]) {
    edit_config(pbx, |v| {
        for a in v["accounts"].as_array_mut().unwrap() {
            if users.iter().any(|u| a["username"] == *u) {
                a["transports"] = json!(["tls"]);
                // Not behind NAT: over TLS the box still answers down the phone's
                // own connection, never to its Contact.
                a["nat"] = json!(false);
            }
        }
    });
}

fn proto_of(pbx: &Pbxd, user: &str) -> String {
    pbx.ctl_ok(&["registrations"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(user))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("")
        .to_string()
}

fn tls_phone(kind: Kind, pbx: &Pbxd, user: &str, pw: &str, tone: u32, ca: &Path) -> Phone {
    registered_phone(
        kind,
        pbx,
        PhoneSpec {
            user,
            password: pw,
            tone,
            auto_answer: true,
            codecs: "PCMU,PCMA",
            tls_ca: Some(ca),
            srtp: false,
        },
    )
}

#[test]
fn phones_of_two_stacks_register_and_call_over_tls() {
    let pbx = Pbxd::start();
    let pw101 = add_ext(&pbx, "101");
    let pw102 = add_ext(&pbx, "102");
    let pw103 = add_ext(&pbx, "103");
    only_tls(&pbx, &["101", "102"]);
    // The phones trust the box's own (self-signed) certificate and check that it
    // names 127.0.0.1.
    let ca = pbx.data.path().join("web/cert.pem");
    let mut a = tls_phone(Kind::Pjsua2, &pbx, "101", &pw101, 1000, &ca);
    let mut b = tls_phone(Kind::Linphone, &pbx, "102", &pw102, 440, &ca);
    assert_eq!(proto_of(&pbx, "101"), "tls");
    assert_eq!(proto_of(&pbx, "102"), "tls");

    // TLS to TLS: pjsua2 calls linphone.
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(3));
    a.command("hangup", "");
    closed_reason(&b);
    assert_heard(&b, 1000.0);
    assert_heard(&a, 440.0);

    // A phone on UDP calls the TLS phone: the INVITE goes down 101's own connection.
    let mut c = phone(&pbx, "103", &pw103, 700, true, "PCMU,PCMA");
    a.clear_events();
    connect(&mut c, &a, &pbx, "101");
    std::thread::sleep(Duration::from_secs(3));
    c.command("hangup", "");
    closed_reason(&a);
    assert_heard(&a, 700.0);
    assert_heard(&c, 1000.0);

    // And the TLS linphone calls the UDP phone.
    b.clear_events();
    c.clear_events();
    connect(&mut b, &c, &pbx, "103");
    std::thread::sleep(Duration::from_secs(3));
    b.command("hangup", "");
    closed_reason(&c);
    assert_heard(&c, 440.0);

    // 101 may only use TLS: the right password over UDP is refused, with the reason.
    let before = pbx.log_text().matches("transport not allowed").count();
    let udp = Phone::start(
        &pbx,
        PhoneSpec {
            user: "101",
            password: &pw101,
            tone: 500,
            auto_answer: true,
            codecs: "PCMU",
            tls_ca: None,
            srtp: false,
        },
    );
    assert!(
        wait_until(T, || udp
            .log()
            .contains("SIP/2.0 403 Forbidden (transport not allowed)")),
        "{}",
        udp.log()
    );
    assert!(pbx.log_text().matches("transport not allowed").count() > before);
    // 101's TLS registration stands.
    assert_eq!(proto_of(&pbx, "101"), "tls");
}

/// A CA and a certificate it signs for `names`, as PEM (CA, certificate, key).
fn signed_cert(names: &[&str]) -> (String, String, String) {
    let (ca, ca_pem) = test_ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// A box on `ip` whose link `siteA` registers over TLS to `host` (SRV for the port).
fn box_b(ip: &str, dns: &str, ca: Option<&str>, host: &str) -> Pbxd {
    let data = tempfile::tempdir().unwrap();
    if let Some(ca) = ca {
        std::fs::create_dir_all(data.path().join("tls")).unwrap();
        std::fs::write(data.path().join("tls/trusted-ca.pem"), ca).unwrap();
    }
    let sip: SocketAddr = format!("{ip}:{}", free_port()).parse().unwrap();
    let b = Pbxd::launch(data, sip, &["--register-retry", "2", "--dns", dns], &[]);
    edit_config(&b, |v| {
        v["links"] = json!([{"name": "siteA", "range_min": "100", "range_max": "150",
            "host": host, "port": 0, "transport": "tls", "mode": "we_register",
            "username": "linkAB", "password": "Link-Secret-42x", "keepalive": 0}]);
    });
    b
}

#[test]
fn a_link_over_tls_checks_the_peer_certificate_by_name() {
    // A's certificate, from a CA of the test's own, names pbx-a.test.
    let (ca, cert, key) = signed_cert(&["pbx-a.test"]);
    let a_data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(a_data.path().join("web")).unwrap();
    std::fs::write(a_data.path().join("web/cert.pem"), &cert).unwrap();
    std::fs::write(a_data.path().join("web/key.pem"), &key).unwrap();
    let a_sip: SocketAddr = format!("127.0.0.2:{}", free_port()).parse().unwrap();
    let a_tls: SocketAddr = format!("127.0.0.2:{}", free_port()).parse().unwrap();
    let a_tls_arg = a_tls.to_string();
    let a = Pbxd::launch(a_data, a_sip, &["--sip-tls", &a_tls_arg], &[]);
    assert_eq!(a.sip_tls, a_tls);
    let pw101 = add_ext(&a, "101");
    edit_config(&a, |v| {
        v["links"] = json!([{"name": "siteB", "range_min": "151", "range_max": "200",
            "host": "", "port": 0, "mode": "peer_registers", "transport": "tls",
            "username": "linkAB", "password": "Link-Secret-42x", "keepalive": 0}]);
    });

    // RFC 3263 for TLS: _sips._tcp SRV gives A's TLS port; other.test is A's
    // address under a name its certificate does not carry.
    let dns_port = free_port();
    let _dns = Dnsmasq::start(
        dns_port,
        &[
            "--host-record=pbx-a.test,127.0.0.2".into(),
            "--host-record=other.test,127.0.0.2".into(),
            format!(
                "--srv-host=_sips._tcp.pbx-a.test,pbx-a.test,{},0,5",
                a_tls.port()
            ),
            format!(
                "--srv-host=_sips._tcp.other.test,other.test,{},0,5",
                a_tls.port()
            ),
        ],
    );
    let dns = format!("127.0.0.1:{dns_port}");

    // B trusts the CA and dials A by the name on its certificate.
    let b = box_b("127.0.0.3", &dns, Some(&ca), "pbx-a.test");
    // C trusts the CA but dials A by a name the certificate does not carry; D does
    // not trust the CA at all.
    let c = box_b("127.0.0.6", &dns, Some(&ca), "other.test");
    let d = box_b("127.0.0.7", &dns, None, "pbx-a.test");
    assert!(
        wait_until(Duration::from_secs(20), || peer(&b, "siteA")
            ["registration"]
            == "registered"),
        "B did not register to A over TLS: {}\n{}",
        peer(&b, "siteA"),
        b.log_text()
    );
    assert_eq!(peer(&a, "siteB")["registration"], "registered");

    // Calls both ways over the link: A reaches B down the connection B opened.
    let pw160 = add_ext(&b, "160");
    let mut p101 = phone(&a, "101", &pw101, 440, true, "PCMU,PCMA");
    let mut p160 = phone(&b, "160", &pw160, 1000, true, "PCMU,PCMA");
    connect(&mut p101, &p160, &a, "160");
    std::thread::sleep(Duration::from_secs(3));
    p101.command("hangup", "");
    closed_reason(&p160);
    assert_heard(&p160, 440.0);
    assert_heard(&p101, 1000.0);
    p101.clear_events();
    p160.clear_events();
    connect(&mut p160, &p101, &b, "101");
    std::thread::sleep(Duration::from_secs(2));
    p160.command("hangup", "");
    closed_reason(&p101);
    assert_heard(&p101, 1000.0);

    // Neither C nor D got through, and their logs say why.
    for (x, why) in [(&c, "not valid for name"), (&d, "UnknownIssuer")] {
        assert!(
            wait_until(T, || x.log_text().contains(why)),
            "no {why} in:\n{}",
            x.log_text()
        );
        assert_ne!(peer(x, "siteA")["registration"], "registered");
    }
    let regs = a.ctl_ok(&["peers"]);
    assert!(
        !regs.contains("127.0.0.6") && !regs.contains("127.0.0.7"),
        "{regs}"
    );

    // D's administrator trusts the CA on the Certificates API: with no restart, D's
    // next registration (started afresh by a changed setting) gets through.
    let h = d.admin_session("Adm1n-Secret!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let r = d.https("PUT", "/api/v1/certificates/trusted", Some(&ca), &h);
    assert_eq!(r.status, 200, "{r:?}");
    edit_config(&d, |v| v["links"][0]["register_expires"] = json!(1800));
    assert!(
        wait_until(Duration::from_secs(20), || peer(&d, "siteA")
            ["registration"]
            == "registered"),
        "D did not register after trusting the CA: {}\n{}",
        peer(&d, "siteA"),
        d.log_text()
    );
}
