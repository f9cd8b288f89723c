//! Call park end to end: a phone parks its call with the park code in a consultation
//! call (it hears the slot, "star seven one"), completes the transfer, and another
//! phone dials the slot and talks to the parked party; a call blind-transferred to a
//! slot waits there with music and, when nobody takes it, rings its parker again.

use e2e::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const PROMPTS: &str = "/usr/share/asterisk/sounds/en";

fn pbx_with_phones(timeout: u32) -> Pbxd {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103", "104"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    edit_config(&pbx, |v| {
        v["parking"]["timeout_seconds"] = timeout.into();
    });
    pbx
}

fn prompt(name: &str) -> std::path::PathBuf {
    Path::new(PROMPTS).join(format!("{name}.wav"))
}

#[test]
fn a_call_parked_with_the_park_code_is_taken_from_another_phone() {
    let pbx = pbx_with_phones(120);
    let mut a = phone_of(
        Kind::Pjsua2,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    let b = phone_of(
        Kind::Baresip,
        &pbx,
        "102",
        "Secret-102x",
        440,
        true,
        "PCMU,PCMA",
    );
    let mut d = phone_of(
        Kind::Baresip,
        &pbx,
        "104",
        "Secret-104x",
        1400,
        false,
        "PCMA,PCMU",
    );
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(1));
    a.command("hold", "");
    std::thread::sleep(Duration::from_secs(1));
    a.clear_events();
    // The consultation call to the park code: the box says the slot.
    dial(&mut a, &pbx, "*70");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}\n{}",
        a.events(),
        pbx.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    a.command("transfer_attended", "");
    assert!(
        wait_until(T, || pbx.ctl_ok(&["parked"]).contains("*71")),
        "nothing parked: {}\n{}",
        pbx.ctl_ok(&["calls"]),
        pbx.log_text()
    );
    let parked = pbx.ctl_ok(&["parked"]);
    let row = parked.lines().find(|l| l.starts_with("*71")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[2], cols[3]), ("102", "101"), "{parked}");
    // The parker's two calls end; its recording of the consultation call says the slot.
    assert!(
        wait_until(T, || a
            .events()
            .iter()
            .filter(|e| e["type"] == "CALL_CLOSED")
            .count()
            == 2),
        "{:?}",
        a.events()
    );
    let star = speech_match(&a, &prompt("digits/star"), 1, 1000.0);
    let one = speech_match(&a, &prompt("digits/1"), 1, 1000.0);
    println!("park announcement: star {star:.2}, one {one:.2}");
    assert!(
        star > 0.8 && one > 0.8,
        "the slot was not said: star {star:.2}, one {one:.2}"
    );
    // The web status lists it too.
    let h = pbx.admin_session("Adm1n-Parking!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let v = pbx.https("GET", "/api/v1/status/parked", None, &h).json();
    assert_eq!(v[0]["slot"], "*71", "{v}");
    assert_eq!(v[0]["number"], "102", "{v}");
    std::thread::sleep(Duration::from_secs(2));

    // 104 dials the slot and talks to 102.
    connect(&mut d, &b, &pbx, "*71");
    assert!(
        pbx.ctl_ok(&["parked"]).lines().count() == 1,
        "the slot is free again"
    );
    std::thread::sleep(Duration::from_secs(4));
    d.command("hangup", "");
    closed_reason(&d);
    closed_reason(&b);
    let pb = tone_powers(&b, 0.5, 2.0);
    let pd = tone_powers(&d, 0.5, 2.0);
    println!("after the pickup: 102 heard {pb:?}, 104 heard {pd:?}");
    assert!(
        pb[3] > 1e9 && pb[3] > 100.0 * pb[2].max(1.0),
        "102 hears 104, not music: {pb:?}"
    );
    assert!(pd[0] > 1e9, "104 hears 102: {pd:?}");
    // A slot with nothing parked is refused.
    d.clear_events();
    dial(&mut d, &pbx, "*72");
    let why = closed_reason(&d);
    assert!(why.contains("404"), "{why}");
    assert!(pbx.ctl_ok(&["calls"]).lines().count() <= 1);
}

#[test]
fn a_call_blind_transferred_to_a_slot_rings_its_parker_when_nobody_takes_it() {
    let pbx = pbx_with_phones(10);
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        440,
        true,
        "PCMU,PCMA",
    );
    let b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        1000,
        true,
        "PCMU,PCMA",
    );
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(1));
    a.command("transfer", &format!("sip:*72@{}", pbx.sip));
    closed_reason(&a);
    assert!(
        pbx.ctl_ok(&["parked"]).contains("*72"),
        "{}",
        pbx.log_text()
    );
    let calls = pbx.ctl_ok(&["calls"]);
    assert!(calls.contains("parked"), "{calls}");
    // The parked party hears the music on hold meanwhile.
    std::thread::sleep(Duration::from_secs(4));
    // Ten seconds later 101 rings again (it answers by itself) and talks to 102.
    a.clear_events();
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "the parker was not rung back: {:?}\n{}",
        a.events(),
        pbx.log_text()
    );
    assert!(!pbx.ctl_ok(&["parked"]).contains("*72"));
    std::thread::sleep(Duration::from_secs(3));
    a.command("hangup", "");
    closed_reason(&a);
    closed_reason(&b);
    assert_heard_somewhere(&b, MUSIC_TONE);
    let pb = tone_powers(&b, 0.5, 2.0);
    println!("after the ring back: 102 heard {pb:?}");
    assert!(
        pb[0] > 1e9 && pb[0] > 100.0 * pb[2].max(1.0),
        "102 hears 101 again: {pb:?}"
    );
}
