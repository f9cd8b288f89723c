//! Transfer and hold with real phones of every family: a receptionist (102) transfers
//! a caller (101) to a colleague (103), blind and attended; each side's recording must
//! hold the other's tone after the transfer, and the transferred caller hears music
//! while the colleague's phone rings.

use e2e::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn three_extensions() -> Pbxd {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    pbx
}

/// 101 calls 102, who answers and transfers the call blind to 103; 103 answers after
/// ringing for two seconds. 101 and 103 must hear each other, 101 must have heard
/// music meanwhile, and 102 must be hung up.
fn blind(caller: Kind, receptionist: Kind, colleague: Kind) {
    let pbx = three_extensions();
    let mut a = phone_of(caller, &pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let mut b = phone_of(
        receptionist,
        &pbx,
        "102",
        "Secret-102x",
        440,
        true,
        "PCMU,PCMA",
    );
    let mut c = phone_of(
        colleague,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        false,
        "PCMU,PCMA",
    );
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(1));
    b.command("transfer", &format!("sip:103@{}", pbx.sip));
    assert!(
        c.wait_event("CALL_INCOMING", T).is_some(),
        "103 never rang: {:?}\n{}",
        c.events(),
        pbx.log_text()
    );
    if receptionist == Kind::Pjsua2 {
        // The receptionist's phone hears that 103 rings (NOTIFY with 180).
        assert!(
            wait_until(T, || b
                .events()
                .iter()
                .any(|e| e["type"] == "TRANSFER_STATUS" && e["param"] == "180")),
            "no ringing NOTIFY: {:?}",
            b.events()
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    c.command("accept", "");
    assert!(
        c.wait_event("CALL_ESTABLISHED", T).is_some(),
        "103 never connected: {:?}",
        c.events()
    );
    // The receptionist is hung up (by the box, or by itself after the NOTIFY).
    assert!(
        b.wait_event("CALL_CLOSED", T).is_some(),
        "102 was not hung up: {:?}",
        b.events()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        a.wait_event("CALL_CLOSED", Duration::from_millis(10))
            .is_none(),
        "the caller was dropped: {:?}",
        a.events()
    );
    let calls = pbx.ctl_ok(&["calls"]);
    assert!(
        calls
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("101") && l.contains("103")),
        "{calls}"
    );
    c.command("hangup", "");
    closed_reason(&a);
    closed_reason(&c);
    // 101: first 102's tone, then music while 103 rang, then 103's tone.
    assert_heard_at(&a, 440.0, 0.05);
    assert_heard_somewhere(&a, MUSIC_TONE);
    assert_heard_at(&a, 1400.0, 0.9);
    assert_heard_at(&c, 1000.0, 0.5);
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
    // The history has one call: 101 called 102, ended with 103, 102 transferred.
    let r = newest_call(&pbx);
    assert_eq!(
        [
            &r["caller"],
            &r["called"],
            &r["answered_by"],
            &r["transferred_by"],
            &r["outcome"]
        ],
        ["101", "102", "103", "102", "answered"],
        "{r}"
    );
    drop(b);
}

/// The newest record of the call history (through the API).
fn newest_call(pbx: &Pbxd) -> serde_json::Value {
    let h = pbx.admin_session("Adm1n-Transfer!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut got = serde_json::Value::Null;
    wait_until(T, || {
        got = pbx.https("GET", "/api/v1/history?limit=1", None, &h).json();
        got.as_array().is_some_and(|a| !a.is_empty())
    });
    got[0].clone()
}

#[test]
fn baresip_transfers_pjsua2_to_linphone() {
    blind(Kind::Pjsua2, Kind::Baresip, Kind::Linphone);
}

#[test]
fn pjsua2_transfers_baresip_to_pjsua2() {
    blind(Kind::Baresip, Kind::Pjsua2, Kind::Pjsua2);
}

#[test]
fn linphone_transfers_pjsua2_to_baresip() {
    blind(Kind::Pjsua2, Kind::Linphone, Kind::Baresip);
}

/// 101 calls 102; 102 holds, calls 103, talks to 103, then joins 101 and 103
/// (REFER with Replaces) and drops out.
fn attended(caller: Kind, colleague: Kind) {
    let pbx = three_extensions();
    let mut a = phone_of(caller, &pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let mut b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        440,
        true,
        "PCMU,PCMA",
    );
    let c = phone_of(
        colleague,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        true,
        "PCMU,PCMA",
    );
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(1));
    b.command("hold", "");
    assert!(wait_until(T, || pbx
        .log_text()
        .contains("call put on hold")));
    b.clear_events();
    dial(&mut b, &pbx, "103");
    assert!(
        c.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        c.events()
    );
    assert!(
        b.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        b.events()
    );
    std::thread::sleep(Duration::from_secs(2));
    b.command("transfer_attended", "");
    let status = b
        .wait_event("TRANSFER_STATUS", T)
        .unwrap_or_else(|| panic!("no NOTIFY reached 102: {:?}", b.events()));
    assert!(
        ["100", "200"].contains(&status["param"].as_str().unwrap()),
        "{status}"
    );
    assert!(
        wait_until(T, || b
            .events()
            .iter()
            .filter(|e| e["type"] == "CALL_CLOSED")
            .count()
            == 2),
        "102's two calls must end: {:?}",
        b.events()
    );
    std::thread::sleep(Duration::from_secs(3));
    for p in [&a, &c] {
        assert!(
            p.wait_event("CALL_CLOSED", Duration::from_millis(10))
                .is_none(),
            "{} was dropped: {:?}",
            p.name,
            p.events()
        );
    }
    a.command("hangup", "");
    closed_reason(&a);
    closed_reason(&c);
    // 101: 102, then music while held, then 103; 103: 102, then 101.
    assert_heard_at(&a, 440.0, 0.05);
    assert_heard_somewhere(&a, MUSIC_TONE);
    assert_heard_at(&a, 1400.0, 0.92);
    assert_heard_at(&c, 440.0, 0.1);
    assert_heard_at(&c, 1000.0, 0.9);
    let r = newest_call(&pbx);
    assert_eq!(
        [
            &r["caller"],
            &r["called"],
            &r["answered_by"],
            &r["transferred_by"]
        ],
        ["101", "102", "103", "102"],
        "{r}"
    );
    drop(b);
}

#[test]
fn attended_transfer_from_pjsua2_joins_baresip_and_linphone() {
    attended(Kind::Baresip, Kind::Linphone);
}

#[test]
fn attended_transfer_from_pjsua2_joins_linphone_and_pjsua2() {
    attended(Kind::Linphone, Kind::Pjsua2);
}
