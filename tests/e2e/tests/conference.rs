//! Conference rooms (Kerio 13) end to end with real phones of every family: four phones
//! in one room each hear the three others' tones and not their own; the live view
//! lists them, the administrator mutes one and puts one out. A room with a PIN and a
//! limit of two: the PIN is asked and keyed, the first participant hears that it is
//! alone, a wrong PIN is refused, and a third caller hears that the room is full. A
//! phone's conference key (three-way mixed on the phone, as desk phones do by default)
//! works through the box: hold, a second call, both resumed and bridged.

use e2e::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const PROMPTS: &str = "/usr/share/asterisk/sounds/en";

fn pbx_with_rooms() -> Pbxd {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103", "104", "105"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    edit_config(&pbx, |v| {
        v["conferences"] = json!([
            {"number": "800", "description": "All hands"},
            {"number": "801", "description": "Board", "pin": "4711", "max_participants": 2}
        ]);
    });
    pbx
}

fn press(p: &mut Phone, keys: &str) {
    for k in keys.chars() {
        p.command("sndcode", &k.to_string());
        std::thread::sleep(Duration::from_millis(400));
    }
}

fn prompt(name: &str) -> std::path::PathBuf {
    Path::new(PROMPTS).join(format!("{name}.wav"))
}

#[test]
fn four_phones_hear_each_other_and_not_themselves() {
    let pbx = pbx_with_rooms();
    let kinds = [Kind::Pjsua2, Kind::Baresip, Kind::Linphone, Kind::Pjsua2];
    // Two prefer A-law, two µ-law: the mixer speaks each one's own.
    let codecs = ["PCMU,PCMA", "PCMA,PCMU", "PCMU,PCMA", "PCMA,PCMU"];
    let mut phones: Vec<Phone> = (0..4)
        .map(|i| {
            let n = format!("10{}", i + 1);
            phone_of(
                kinds[i],
                &pbx,
                &n,
                &format!("Secret-{n}x"),
                TONES[i] as u32,
                false,
                codecs[i],
            )
        })
        .collect();
    for p in phones.iter_mut() {
        dial(p, &pbx, "800");
        assert!(
            p.wait_event("CALL_ESTABLISHED", T).is_some(),
            "{} did not get into the room: {:?}\n{}",
            p.name,
            p.events(),
            pbx.log_text()
        );
        std::thread::sleep(Duration::from_millis(700));
    }
    // The live view, from the API and pbxctl.
    let h = pbx.admin_session("Adm1n-Conference!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    assert!(wait_until(T, || {
        let v = pbx
            .https("GET", "/api/v1/status/conferences", None, &h)
            .json();
        v[0]["participants"]
            .as_array()
            .is_some_and(|p| p.len() == 4)
    }));
    let live = pbx
        .https("GET", "/api/v1/status/conferences", None, &h)
        .json();
    assert_eq!(live[0]["number"], "800");
    assert_eq!(live[0]["limit"], 64);
    assert_eq!(live[1]["participants"], json!([]));
    let numbers: Vec<&str> = live[0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["101", "102", "103", "104"]);
    let listed = pbx.ctl_ok(&["conference"]);
    assert!(
        listed.lines().filter(|l| l.starts_with("800")).count() == 4,
        "{listed}"
    );
    std::thread::sleep(Duration::from_secs(4));

    // 104 is muted by the administrator; a wrong call or room is refused.
    let call = |i: usize| live[0]["participants"][i]["call"].as_u64().unwrap();
    let muted = pbx.https(
        "PUT",
        &format!("/api/v1/status/conferences/800/{}", call(3)),
        Some(r#"{"muted": true}"#),
        &h,
    );
    assert_eq!(muted.status, 204, "{muted:?}");
    for (m, path, body, status) in [
        (
            "PUT",
            format!("/api/v1/status/conferences/801/{}", call(3)),
            Some(r#"{"muted": true}"#),
            404,
        ),
        (
            "PUT",
            format!("/api/v1/status/conferences/800/{}", call(3)),
            Some(r#"{"muted": 1}"#),
            400,
        ),
        (
            "PUT",
            format!("/api/v1/status/conferences/800/{}", call(3)),
            Some(r#"{"muted": true, "x": 1}"#),
            400,
        ),
        (
            "DELETE",
            "/api/v1/status/conferences/800/99999".to_string(),
            None,
            404,
        ),
        (
            "DELETE",
            "/api/v1/status/conferences/800/abc".to_string(),
            None,
            404,
        ),
    ] {
        let r = pbx.https(m, &path, body, &h);
        assert_eq!(r.status, status, "{m} {path} {body:?}: {r:?}");
    }
    let live = pbx
        .https("GET", "/api/v1/status/conferences", None, &h)
        .json();
    assert_eq!(live[0]["participants"][3]["muted"], true);
    std::thread::sleep(Duration::from_secs(3));

    // 103 (linphonec) is put out with pbxctl; the others stay.
    let out = pbx.ctl_ok(&["conference", "kick", "800", &call(2).to_string()]);
    assert!(out.contains("put out"), "{out}");
    closed_reason(&phones[2]);
    std::thread::sleep(Duration::from_secs(1));
    for i in [0, 1, 3] {
        phones[i].command("hangup", "");
    }
    for i in [0, 1, 3] {
        closed_reason(&phones[i]);
    }

    // Each recording: before the mute (the 3 s window ending 8 s before the hang-up,
    // about when 104 was muted) every phone hears the three others and not itself.
    // 103 was put out 4 s before the others hung up; its recording ends then.
    for (i, p) in phones.iter().enumerate() {
        let before = if i == 2 { 3.5 } else { 8.0 };
        let pw = tone_powers(p, before, 2.5);
        println!(
            "{} ({:?}) heard {:?}",
            p.name,
            p.kind,
            pw.iter().map(|x| format!("{x:.1e}")).collect::<Vec<_>>()
        );
        for (j, t) in TONES.iter().enumerate() {
            if j == i {
                continue;
            }
            assert!(
                pw[j] > 1e9 && pw[j] > 30.0 * pw[i].max(1.0),
                "{} should hear {t} Hz clearly and its own {} Hz not: {pw:?}",
                p.name,
                TONES[i]
            );
        }
    }
    // After the mute: 101 no longer hears 104 (1400 Hz), still hears 102.
    let pw = tone_powers(&phones[0], 1.5, 2.0);
    println!("101 after the mute heard {pw:?}");
    assert!(pw[1] > 1e9, "101 still hears 102: {pw:?}");
    assert!(
        pw[1] > 100.0 * pw[3].max(1.0),
        "101 still hears the muted 104: {pw:?}"
    );
    let calls = pbx.ctl_ok(&["calls"]);
    assert!(calls.lines().count() <= 1, "calls left: {calls}");
    let live = pbx
        .https("GET", "/api/v1/status/conferences", None, &h)
        .json();
    assert_eq!(live[0]["participants"], json!([]));
}

#[test]
fn a_pin_is_asked_and_a_full_room_refuses() {
    let pbx = pbx_with_rooms();
    let mut a = phone_of(
        Kind::Pjsua2,
        &pbx,
        "101",
        "Secret-101x",
        440,
        false,
        "PCMU,PCMA",
    );
    let mut b = phone_of(
        Kind::Baresip,
        &pbx,
        "102",
        "Secret-102x",
        1000,
        false,
        "PCMU,PCMA",
    );
    let mut c = phone_of(
        Kind::Pjsua2,
        &pbx,
        "103",
        "Secret-103x",
        700,
        false,
        "PCMA,PCMU",
    );
    let mut d = phone_of(
        Kind::Baresip,
        &pbx,
        "104",
        "Secret-104x",
        1400,
        false,
        "PCMU,PCMA",
    );

    // 101 keys the PIN after the prompt and is alone: "you are currently the only
    // person in this conference".
    dial(&mut a, &pbx, "801");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{}",
        pbx.log_text()
    );
    std::thread::sleep(Duration::from_millis(2500));
    press(&mut a, "4711#");
    std::thread::sleep(Duration::from_secs(4));
    // 104 keys a wrong PIN three times and is hung up on.
    dial(&mut d, &pbx, "801");
    assert!(d.wait_event("CALL_ESTABLISHED", T).is_some());
    std::thread::sleep(Duration::from_millis(2500));
    for _ in 0..3 {
        press(&mut d, "1234#");
        std::thread::sleep(Duration::from_millis(2500));
    }
    let why = closed_reason(&d);
    println!("wrong PINs: {why}");
    // 102 joins with the PIN; 101 and 102 hear each other.
    dial(&mut b, &pbx, "801");
    assert!(b.wait_event("CALL_ESTABLISHED", T).is_some());
    std::thread::sleep(Duration::from_millis(2500));
    press(&mut b, "4711");
    std::thread::sleep(Duration::from_secs(3));
    // 103 keys the right PIN but the room holds two: "the conference is full", then
    // the box hangs up.
    dial(&mut c, &pbx, "801");
    assert!(c.wait_event("CALL_ESTABLISHED", T).is_some());
    std::thread::sleep(Duration::from_millis(2500));
    press(&mut c, "4711#");
    closed_reason(&c);
    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    b.command("hangup", "");
    closed_reason(&a);
    closed_reason(&b);

    let getpin = speech_match(&a, &prompt("conf-getpin"), 2, 1000.0);
    let alone = speech_match(&a, &prompt("conf-onlyperson"), 2, 1000.0);
    let invalid = speech_match(&d, &prompt("conf-invalidpin"), 2, 1000.0);
    let full = speech_match(&c, &prompt("conf-full"), 1, 1000.0);
    println!("conference prompts: getpin {getpin:.2}, onlyperson {alone:.2}, invalidpin {invalid:.2}, full {full:.2}");
    // The prompt starts with the answer: a phone whose recorder starts with its media
    // loses the first syllable or so (seen once at 0.80).
    assert!(getpin > 0.7, "the PIN was not asked: {getpin:.2}");
    assert!(
        alone > 0.8,
        "the first participant was not told it is alone: {alone:.2}"
    );
    assert!(invalid > 0.8, "a wrong PIN was not refused: {invalid:.2}");
    assert!(full > 0.8, "the full room did not say so: {full:.2}");
    let pa = tone_powers(&a, 2.5, 2.0);
    let pb = tone_powers(&b, 2.5, 2.0);
    assert!(
        pa[1] > 1e9 && pa[1] > 30.0 * pa[0].max(1.0),
        "101 hears 102: {pa:?}"
    );
    assert!(
        pb[0] > 1e9 && pb[0] > 30.0 * pb[1].max(1.0),
        "102 hears 101: {pb:?}"
    );
    // 103 (refused) and 104 (wrong PIN) were never heard in the room.
    assert!(pa[2] < pa[1] / 100.0 && pa[3] < pa[1] / 100.0, "{pa:?}");
}

#[test]
fn a_phones_conference_key_joins_its_two_calls() {
    let pbx = pbx_with_rooms();
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
    // 103 sends 1400 Hz: the music on hold 102 hears while held is 700 Hz.
    let c = phone_of(
        Kind::Linphone,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        true,
        "PCMA,PCMU",
    );
    connect(&mut a, &b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(1));
    a.command("hold", "");
    std::thread::sleep(Duration::from_secs(1));
    a.clear_events();
    connect(&mut a, &c, &pbx, "103");
    std::thread::sleep(Duration::from_secs(1));
    a.command("conference", "");
    std::thread::sleep(Duration::from_secs(5));
    a.command("hangup", "");
    std::thread::sleep(Duration::from_millis(500));
    a.command("hangup", "");
    closed_reason(&b);
    closed_reason(&c);
    // 102 hears 103 through 101's phone, and 103 hears 102.
    let pb = tone_powers(&b, 0.5, 2.5);
    let pc = tone_powers(&c, 0.5, 2.5);
    println!("three-way on the phone: 102 heard {pb:?}, 103 heard {pc:?}");
    assert!(
        pb[3] > 1e9 && pb[3] > 30.0 * pb[0].max(1.0),
        "102 hears 103: {pb:?}"
    );
    assert!(pb[2] < pb[3] / 100.0, "102 hears no music on hold: {pb:?}");
    assert!(pb[1] > 1e9, "102 hears 101: {pb:?}");
    assert!(
        pc[0] > 1e9 && pc[0] > 30.0 * pc[3].max(1.0),
        "103 hears 102: {pc:?}"
    );
    assert!(pc[1] > 1e9, "103 hears 101: {pc:?}");
}
