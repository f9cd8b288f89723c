//! Calls between baresip phones through pbxd, with audio checked in what each phone
//! recorded. Every family against every other, and two devices of one extension
//! ringing, are in interop.rs.

use e2e::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

#[test]
fn two_phones_talk_and_either_side_hangs_up() {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&[
        "extension",
        "add",
        "101",
        "--name",
        "Alice Smith",
        "--password",
        "Secret-101x",
    ]);
    pbx.ctl_ok(&[
        "extension",
        "add",
        "102",
        "--name",
        "Bob Jones",
        "--password",
        "Secret-102x",
    ]);
    let mut a = phone(&pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let mut b = phone(&pbx, "102", "Secret-102x", 440, true, "PCMU,PCMA");

    connect(&mut a, &b, &pbx, "102");
    let calls = pbx.ctl_ok(&["calls"]);
    assert!(
        calls
            .lines()
            .any(|l| l.contains("101") && l.contains("102") && l.contains("answered")),
        "{calls}"
    );
    std::thread::sleep(Duration::from_secs(3));
    // Both directions were relayed by the box, not phone to phone.
    let (ab, ba) = relay_counters(&pbx);
    a.command("hangup", "");
    closed_reason(&b);
    assert_heard(&b, 1000.0);
    assert_heard(&a, 440.0);
    assert!(
        wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1),
        "call still listed"
    );
    assert!(ab > 50 && ba > 50, "relay counters too low: {ab} {ba}");

    // Second call: the callee hangs up this time.
    a.clear_events();
    b.clear_events();
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(1));
    b.command("hangup", "");
    closed_reason(&a);
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
}

#[test]
fn busy_unregistered_unknown_and_disabled() {
    let pbx = Pbxd::start();
    for (n, p) in [
        ("101", "Secret-101x"),
        ("102", "Secret-102x"),
        ("103", "Secret-103x"),
        ("104", "Secret-104x"),
    ] {
        pbx.ctl_ok(&["extension", "add", n, "--password", p]);
    }
    let mut a = phone(&pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let b = phone(&pbx, "102", "Secret-102x", 440, true, "PCMU,PCMA");
    let mut c = phone(&pbx, "104", "Secret-104x", 700, false, "PCMU,PCMA");

    // Nobody registered on 103.
    dial(&mut a, &pbx, "103");
    let r = closed_reason(&a);
    assert!(r.contains("480"), "{r}");
    // No such number.
    a.clear_events();
    dial(&mut a, &pbx, "999");
    let r = closed_reason(&a);
    assert!(r.contains("404"), "{r}");
    // 102's only device is in a call, and call waiting is off: busy.
    edit_extension(&pbx, "102", |e| e["call_waiting"] = false.into());
    a.clear_events();
    connect(&mut a, &b, &pbx, "102");
    dial(&mut c, &pbx, "102");
    let r = closed_reason(&c);
    assert!(r.contains("486"), "{r}");
    a.command("hangup", "");
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));

    // A disabled extension answers 403.
    edit_config(&pbx, |v| {
        for e in v["extensions"].as_array_mut().unwrap() {
            if e["number"] == "102" {
                e["enabled"] = serde_json::json!(false);
            }
        }
    });
    c.clear_events();
    dial(&mut c, &pbx, "102");
    let r = closed_reason(&c);
    assert!(r.contains("403"), "{r}");
}

#[test]
fn no_common_codec_is_transcoded() {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&["extension", "add", "101", "--password", "Secret-101x"]);
    pbx.ctl_ok(&["extension", "add", "102", "--password", "Secret-102x"]);
    // 102's account allows only A-law.
    edit_config(&pbx, |v| {
        for a in v["accounts"].as_array_mut().unwrap() {
            if a["username"] == "102" {
                a["codecs"] = serde_json::json!(["PCMA"]);
            }
        }
    });

    let mut a = phone(&pbx, "101", "Secret-101x", 1000, false, "PCMU");
    let b = phone(&pbx, "102", "Secret-102x", 440, true, "PCMA");
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(3));
    let calls = pbx.ctl_ok(&["calls"]);
    assert!(
        calls
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_end().ends_with("true")),
        "not transcoding: {calls}"
    );
    a.command("hangup", "");
    closed_reason(&b);
    assert!(
        b.log().contains("Set audio encoder: PCMA"),
        "callee did not use A-law"
    );
    assert!(
        a.log().contains("Set audio encoder: PCMU"),
        "caller did not use u-law"
    );
    assert_heard(&b, 1000.0);
    assert_heard(&a, 440.0);
}

#[test]
fn hold_resume_and_dtmf_pass_through() {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&["extension", "add", "101", "--password", "Secret-101x"]);
    pbx.ctl_ok(&["extension", "add", "102", "--password", "Secret-102x"]);
    let mut a = phone(&pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let b = phone(&pbx, "102", "Secret-102x", 440, true, "PCMU,PCMA");
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_millis(500));
    a.clear_events();
    b.clear_events();

    // Hold: the box answers the caller's re-INVITE (sendonly) itself, recvonly; the
    // callee is not asked, and hears music on hold instead of the caller.
    a.command("hold", "");
    let answer = a
        .wait_event("CALL_REMOTE_SDP", T)
        .unwrap_or_else(|| panic!("caller got no answer to its hold: {:?}", a.events()));
    assert_eq!(answer["param"], "answer", "{answer}");
    assert!(
        a.log().contains("a=recvonly"),
        "the answer to the caller must be recvonly"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        b.wait_event("CALL_REMOTE_SDP", Duration::from_millis(10))
            .is_none(),
        "the callee was re-INVITEd for hold: {:?}",
        b.events()
    );
    a.clear_events();
    a.command("resume", "");
    assert!(
        a.wait_event("CALL_REMOTE_SDP", T).is_some(),
        "caller got no answer to resume: {:?}",
        a.events()
    );
    assert!(
        b.wait_event("CALL_CLOSED", Duration::from_millis(200))
            .is_none(),
        "call dropped on re-INVITE"
    );

    // RFC 4733 telephone-events reach the other side through the relay.
    std::thread::sleep(Duration::from_millis(500));
    a.command("sndcode", "5");
    let dtmf = b
        .wait_event("CALL_DTMF_START", T)
        .unwrap_or_else(|| panic!("no DTMF at the callee: {:?}", b.events()));
    assert_eq!(dtmf["param"], "5", "{dtmf}");

    // Audio flows both ways again after the resume: the relay's counters keep rising.
    let before = relay_counters(&pbx);
    std::thread::sleep(Duration::from_secs(2));
    let after = relay_counters(&pbx);
    assert!(
        after.0 >= before.0 + 50 && after.1 >= before.1 + 50,
        "no audio after resume: {before:?} -> {after:?}"
    );
    a.command("hangup", "");
    closed_reason(&b);
    assert_heard_somewhere(&b, MUSIC_TONE);
}
