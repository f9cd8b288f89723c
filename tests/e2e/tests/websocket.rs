//! SIP over secure WebSocket (RFC 7118) on the web port: JsSIP and SIP.js in Chromium
//! (tests/web/sip_ws.mjs) register over wss://<box>/ws, a pjsua2 phone calls the JsSIP
//! one and a baresip phone the SIP.js one, and each browser phone declines busy after
//! checking the INVITE header by header (and its WebRTC offer); the callers hear "486".
//! An account that does not allow WSS is refused with the reason. Real WebRTC calls:
//! webrtc.rs.

use e2e::*;
use serde_json::json;
use std::time::Duration;

/// The registration line of `user` over WSS, if it is registered so.
fn wss_line(pbx: &Pbxd, user: &str) -> Option<String> {
    pbx.ctl_ok(&["registrations"])
        .lines()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&user) && f.get(3) == Some(&"wss")
        })
        .map(str::to_string)
}

fn phone_spec<'a>(user: &'a str, password: &'a str) -> PhoneSpec<'a> {
    PhoneSpec {
        user,
        password,
        tone: 500,
        auto_answer: false,
        codecs: "PCMU,PCMA",
        tls_ca: None,
        srtp: false,
    }
}

#[test]
fn browser_phones_register_and_are_called_over_secure_websocket() {
    let pbx = Pbxd::start();
    let pw = add_exts(&pbx, &["101", "102", "103", "104", "105"]);
    // An opening with everything right, but for a box where no account may use WSS.
    let opening = |protocol: &str| {
        let headers = [
            "Connection: Upgrade".to_string(),
            "Upgrade: websocket".to_string(),
            "Sec-WebSocket-Version: 13".to_string(),
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_string(),
            format!("Sec-WebSocket-Protocol: {protocol}"),
        ];
        let h: Vec<&str> = headers.iter().map(String::as_str).collect();
        pbx.https("GET", "/ws", None, &h)
    };
    let a = opening("sip");
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("no account allows wss"), "{}", a.body);
    // 101 and 103 may use WSS (an account's transports, Kalliope); 104 keeps the
    // default (UDP, TCP, TLS).
    edit_config(&pbx, |v| {
        for a in v["accounts"].as_array_mut().unwrap() {
            if a["extension"] == "101" || a["extension"] == "103" {
                a["transports"] = json!(["udp", "tcp", "tls", "wss"]);
            }
        }
    });
    // Served now, but only for the sip subprotocol.
    let a = opening("chat");
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("sip subprotocol"), "{}", a.body);
    let mut pjsua = registered_phone(Kind::Pjsua2, &pbx, phone_spec("102", &pw[1]));
    let mut baresip = registered_phone(Kind::Baresip, &pbx, phone_spec("105", &pw[4]));

    let (reasons, lines) = std::thread::scope(|s| {
        let caller = s.spawn(|| {
            // Once both browser phones are registered over WSS, each is called.
            let up = wait_until(Duration::from_secs(60), || {
                wss_line(&pbx, "101").is_some() && wss_line(&pbx, "103").is_some()
            });
            assert!(up, "browser phones not registered:\n{}", pbx.log_text());
            let lines = (
                wss_line(&pbx, "101").unwrap(),
                wss_line(&pbx, "103").unwrap(),
            );
            dial(&mut pjsua, &pbx, "101");
            let a = closed_reason(&pjsua);
            dial(&mut baresip, &pbx, "103");
            let b = closed_reason(&baresip);
            ((a, b), lines)
        });
        browser_via(
            &pbx,
            &[],
            "sip_ws.mjs",
            &[
                ("SIP_DOMAIN", "127.0.0.1"),
                ("USER_A", "101"),
                ("PW_A", &pw[0]),
                ("USER_B", "103"),
                ("PW_B", &pw[2]),
                ("USER_C", "104"),
                ("PW_C", &pw[3]),
                ("CALLER_A", "102"),
                ("CALLER_B", "105"),
            ],
        );
        caller.join().unwrap()
    });
    assert!(reasons.0.contains("486"), "pjsua2 to JsSIP: {}", reasons.0);
    assert!(
        reasons.1.contains("486"),
        "baresip to SIP.js: {}",
        reasons.1
    );
    // Registered from the browser's connection, contact kept as sent (RFC 7118 5.1).
    for l in [&lines.0, &lines.1] {
        assert!(l.contains("127.0.0.1:") && l.contains(".invalid"), "{l}");
    }
    // Both browser phones left.
    assert!(wss_line(&pbx, "101").is_none() && wss_line(&pbx, "103").is_none());
    let log = pbx.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
