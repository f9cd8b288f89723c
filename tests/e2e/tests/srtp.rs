//! Encrypted calls (RFC 3711 SRTP with RFC 4568 SDES keys, over SIP over TLS): accounts
//! marked "encrypt calls" use pjsua2 and linphone with SRTP made mandatory; a plain
//! baresip phone calls them and is called. What the box sends the encrypting phones
//! is captured on the wire (tcpdump) and does not decode to the tone the plain phone
//! sends, while what goes to the plain phone does; the sessions the encrypting phones
//! got say RTP/SAVP with a key. An encrypting account is refused over UDP, and its
//! offer without SRTP is refused with the reason. Two boxes linked over TLS with
//! "encrypt audio" carry plain phones' calls as SRTP between them, and a box whose
//! link does not encrypt is refused with the reason.

use e2e::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// Extensions that encrypt calls (Kerio's "Encrypt communication"), their accounts
/// allowed `transports`.
fn encrypting(pbx: &Pbxd, numbers: &[&str], transports: serde_json::Value) {
    edit_config(pbx, |v| {
        for e in v["extensions"].as_array_mut().unwrap() {
            if numbers.iter().any(|n| e["number"] == *n) {
                e["encrypt_calls"] = json!(true);
            }
        }
        for a in v["accounts"].as_array_mut().unwrap() {
            if numbers.iter().any(|n| a["extension"] == *n) {
                a["transports"] = transports.clone();
                a["nat"] = json!(false);
            }
        }
    });
}

fn secure_phone(kind: Kind, pbx: &Pbxd, user: &str, pw: &str, tone: u32, ca: &Path) -> Phone {
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
            srtp: true,
        },
    )
}

/// A call from `from` to `to` (dialling `number`): answered, three seconds of the two
/// tones, `from` hangs up; `heard.0` is what `to` heard, `heard.1` what `from` heard.
fn talk(from: &mut Phone, to: &mut Phone, pbx: &Pbxd, number: &str, heard: (f64, f64)) {
    from.clear_events();
    to.clear_events();
    connect(from, to, pbx, number);
    std::thread::sleep(Duration::from_secs(3));
    from.command("hangup", "");
    closed_reason(to);
    assert_heard(to, heard.0);
    assert_heard(from, heard.1);
}

/// In an answered call, `p` talks 2 s, holds (the box logs it), resumes after 1 s
/// (logged), talks 3 s more and hangs up.
fn hold_and_resume(p: &mut Phone, pbx: &Pbxd) {
    let count = |what: &str| pbx.log_text().matches(what).count();
    let (held, resumed) = (count("call put on hold"), count("call taken off hold"));
    std::thread::sleep(Duration::from_secs(2));
    p.command("hold", "");
    assert!(wait_until(T, || count("call put on hold") > held));
    std::thread::sleep(Duration::from_secs(1));
    p.command("resume", "");
    assert!(wait_until(T, || count("call taken off hold") > resumed));
    std::thread::sleep(Duration::from_secs(3));
    p.command("hangup", "");
}

#[test]
fn encrypting_phones_talk_srtp_over_tls_and_plain_phones_still_reach_them() {
    let pbx = Pbxd::start();
    let pw101 = add_ext(&pbx, "101");
    let pw102 = add_ext(&pbx, "102");
    let pw103 = add_ext(&pbx, "103");
    let pw104 = add_ext(&pbx, "104");
    encrypting(&pbx, &["101", "102"], json!(["tls"]));
    // 104 may use UDP too, but encrypts: over UDP it is refused all the same.
    encrypting(&pbx, &["104"], json!(["udp", "tls"]));
    let ca = pbx.data.path().join("web/cert.pem");

    // What the box sends from its RTP ports, on the wire.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("rtp.pcap");
    let dump = capture(
        &pcap,
        &format!("udp and src portrange {}-{}", pbx.rtp.0, pbx.rtp.1),
    );

    let mut a = secure_phone(Kind::Pjsua2, &pbx, "101", &pw101, 1000, &ca);
    let mut b = secure_phone(Kind::Linphone, &pbx, "102", &pw102, 440, &ca);
    let mut c = phone(&pbx, "103", &pw103, 700, true, "PCMU,PCMA");

    // SRTP phone to plain phone: decrypted on the way to 103. 101 holds and resumes:
    // its re-offers keep their keys, the box's answers carry its own, and the voice
    // comes back after.
    connect(&mut a, &c, &pbx, "103");
    hold_and_resume(&mut a, &pbx);
    closed_reason(&c);
    assert_heard(&c, 1000.0);
    assert_heard_at(&c, 1000.0, 0.9);
    assert_heard(&a, 700.0);

    // Plain phone to the SRTP linphone: encrypted on the way to 102.
    talk(&mut c, &mut b, &pbx, "102", (700.0, 440.0));
    // SRTP to SRTP: each leg with its own keys. linphone holds and resumes: its
    // re-offers' keys are taken when the box answers them (not before), and the voice
    // comes back after.
    b.clear_events();
    a.clear_events();
    connect(&mut b, &a, &pbx, "101");
    hold_and_resume(&mut b, &pbx);
    closed_reason(&a);
    assert_heard(&a, 440.0);
    assert_heard_at(&a, 440.0, 0.9);
    assert_heard(&b, 1000.0);

    // The offer the box made 101 (the last INVITE pjsua2 logged, one it received):
    // RTP/SAVP with one key of the suite every phone speaks.
    let log = a.log();
    let marker = "bytes Request msg INVITE/";
    let line = log
        .lines()
        .rfind(|l| l.contains(marker))
        .expect("pjsua2 logged an INVITE");
    assert!(
        line.contains("RX"),
        "the last INVITE was not the box's: {line}"
    );
    let offer = log
        .rsplit(marker)
        .next()
        .and_then(|m| m.split("--end msg--").next())
        .unwrap_or_default();
    assert!(offer.contains(" RTP/SAVP "), "{offer}");
    assert_eq!(offer.matches("a=crypto:").count(), 1, "{offer}");
    assert!(
        offer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{offer}"
    );

    stop_capture(dump);
    let pkts = udp_payloads(&pcap);
    // 20 ms of G.711: 12 + 160 bytes in clear, 10 more with SRTP's tag.
    let plain: Vec<u8> = pkts
        .iter()
        .filter(|p| p.2.len() == 172 && p.2[1] & 0x7f == 0)
        .flat_map(|p| p.2[12..].to_vec())
        .collect();
    let secure: Vec<u8> = pkts
        .iter()
        .filter(|p| p.2.len() == 182)
        .flat_map(|p| p.2[12..172].to_vec())
        .collect();
    assert!(
        plain.len() >= 8000 && secure.len() >= 8000,
        "plain {} bytes, SRTP {} bytes of {} packets",
        plain.len(),
        secure.len(),
        pkts.len()
    );
    // To 103 went 101's and 102's tones in clear; to 101 and 102 went 103's 700 Hz
    // (and each other's) only encrypted.
    let clear = tone_share(&plain, 1000.0).max(tone_share(&plain, 440.0));
    eprintln!(
        "on the wire: {} plain bytes (tone share {clear:.3}), {} SRTP bytes (700 Hz share {:.5})",
        plain.len(),
        secure.len(),
        tone_share(&secure, 700.0)
    );
    assert!(
        clear > 0.2,
        "the plain leg's audio does not decode to a tone: {clear}"
    );
    for hz in [700.0, 1000.0, 440.0] {
        let s = tone_share(&secure, hz);
        assert!(s < 0.01, "SRTP packets decode to {hz} Hz ({s})");
    }

    // 104 encrypts: over UDP with the right password it is refused, with the reason.
    let udp = Phone::start(
        &pbx,
        PhoneSpec {
            user: "104",
            password: &pw104,
            tone: 500,
            auto_answer: true,
            codecs: "PCMU",
            tls_ca: None,
            srtp: false,
        },
    );
    assert!(
        wait_until(T, || udp.log().contains(
            "SIP/2.0 403 Forbidden (this account encrypts calls: use TLS)"
        )),
        "{}",
        udp.log()
    );
    drop(udp);
    // Over TLS without SRTP it registers, but its plain offer is refused with 488.
    let mut d = registered_phone(
        Kind::Pjsua2,
        &pbx,
        PhoneSpec {
            user: "104",
            password: &pw104,
            tone: 500,
            auto_answer: true,
            codecs: "PCMU",
            tls_ca: Some(&ca),
            srtp: false,
        },
    );
    dial(&mut d, &pbx, "103");
    assert!(
        wait_until(T, || d
            .log()
            .contains("488 Not Acceptable Here (this account encrypts calls")),
        "{}",
        d.log()
    );
}

#[test]
fn a_link_that_encrypts_audio_carries_plain_phones_calls_as_srtp() {
    // A's certificate, from the test's own CA, names A's address; B trusts the CA.
    let (ca, ca_pem) = test_ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.2".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let a_data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(a_data.path().join("web")).unwrap();
    std::fs::write(a_data.path().join("web/cert.pem"), cert.pem()).unwrap();
    std::fs::write(a_data.path().join("web/key.pem"), key.serialize_pem()).unwrap();
    let a_sip: SocketAddr = format!("127.0.0.2:{}", free_port()).parse().unwrap();
    let a_tls = format!("127.0.0.2:{}", free_port());
    let a = Pbxd::launch(a_data, a_sip, &["--sip-tls", &a_tls], &[]);
    let pw101 = add_ext(&a, "101");
    let link = |name: &str, range: (&str, &str), extra: Value| {
        let mut l = json!({"name": name, "range_min": range.0, "range_max": range.1,
            "transport": "tls", "srtp": true, "username": "linkAB",
            "password": "Link-Secret-42x", "keepalive": 0});
        for (k, v) in extra.as_object().unwrap() {
            l[k] = v.clone();
        }
        l
    };
    edit_config(&a, |v| {
        v["links"] = json!([link(
            "siteB",
            ("151", "200"),
            json!({"mode": "peer_registers"})
        )]);
    });
    let b_data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(b_data.path().join("tls")).unwrap();
    std::fs::write(b_data.path().join("tls/trusted-ca.pem"), &ca_pem).unwrap();
    let b_sip: SocketAddr = format!("127.0.0.3:{}", free_port()).parse().unwrap();
    let b = Pbxd::launch(b_data, b_sip, &["--register-retry", "2"], &[]);
    let (host, port) = a_tls.split_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    edit_config(&b, |v| {
        v["links"] = json!([link(
            "siteA",
            ("100", "150"),
            json!({"mode": "we_register", "host": host, "port": port})
        )]);
    });
    assert!(
        wait_until(Duration::from_secs(20), || peer(&b, "siteA")
            ["registration"]
            == "registered"),
        "B did not register to A: {}\n{}",
        peer(&b, "siteA"),
        b.log_text()
    );
    let pw160 = add_ext(&b, "160");

    // Only the audio between the two boxes' relays.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("link.pcap");
    let dump = capture(
        &pcap,
        &format!(
            "udp and ((src portrange {}-{} and dst portrange {}-{}) or (src portrange {}-{} and dst portrange {}-{}))",
            a.rtp.0, a.rtp.1, b.rtp.0, b.rtp.1, b.rtp.0, b.rtp.1, a.rtp.0, a.rtp.1
        ),
    );
    // Plain phones of two stacks: pjsua2 on A, baresip on B.
    let mut p101 = registered_phone(
        Kind::Pjsua2,
        &a,
        PhoneSpec {
            user: "101",
            password: &pw101,
            tone: 1000,
            auto_answer: true,
            codecs: "PCMU",
            tls_ca: None,
            srtp: false,
        },
    );
    let mut p160 = phone(&b, "160", &pw160, 440, true, "PCMU");
    talk(&mut p101, &mut p160, &a, "160", (1000.0, 440.0));
    talk(&mut p160, &mut p101, &b, "101", (440.0, 1000.0));
    stop_capture(dump);
    let pkts = udp_payloads(&pcap);
    let secure: Vec<u8> = pkts
        .iter()
        .filter(|p| p.2.len() == 182)
        .flat_map(|p| p.2[12..172].to_vec())
        .collect();
    let plain = pkts.iter().filter(|p| p.2.len() == 172).count();
    assert!(
        secure.len() >= 16_000 && plain == 0,
        "{} SRTP bytes, {plain} plain packets of {} between the boxes",
        secure.len(),
        pkts.len()
    );
    for hz in [1000.0, 440.0] {
        let s = tone_share(&secure, hz);
        assert!(s < 0.01, "the link's SRTP decodes to {hz} Hz ({s})");
    }

    // B's link stops encrypting: its plain offers are refused by A, with the reason.
    edit_config(&b, |v| v["links"][0]["srtp"] = json!(false));
    p160.clear_events();
    p101.clear_events();
    dial(&mut p160, &b, "101");
    let why = closed_reason(&p160);
    assert!(why.contains("488"), "{why}");
    assert!(
        p101.wait_event("CALL_INCOMING", Duration::from_millis(500))
            .is_none(),
        "101 was rung"
    );
}
