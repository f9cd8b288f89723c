//! The auto attendant (Kerio 16) with time conditions (Kerio 25), end to end with real
//! phones sending RFC 4733 digits: the greeting is heard on the caller's recording, a
//! key reaches a department's extension (audio both ways), an invalid key replays the
//! menu, silence takes the default branch (voicemail, whose message holds the caller's
//! tone), and outside the office hours the night branch plays.

use e2e::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const PROMPTS: &str = "/usr/share/asterisk/sounds/en";

/// 101-104 and two scripts: 200 runs in office hours (a range that always holds),
/// 300 outside them (a range that never does). Both start at a time condition.
fn pbx_with_scripts() -> Pbxd {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103", "104"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    edit_config(&pbx, |v| {
        v["time_ranges"] = json!([
            {"name": "office", "items": [
                {"type": "daily", "from": "00:00", "to": "12:00"},
                {"type": "daily", "from": "12:00", "to": "00:00"}]},
            {"name": "never", "items": [
                {"type": "absolute", "from": "2000-01-01 00:00", "to": "2000-01-02 00:00"}]}
        ]);
        let script = |number: &str, range: &str| {
            json!({
                "number": number,
                "description": "Company Ltd.",
                "start": "hours",
                "conditions": [{"name": "hours", "time_range": range, "then": "main", "otherwise": "closed"}],
                "menus": [
                    {"name": "main", "announcement": "hello-world", "playbacks": 2, "timeout_seconds": 3,
                     "default_action": {"action": "voicemail", "extension": "102"},
                     "keys": [
                        {"key": "2", "action": "dial", "number": "102"},
                        {"key": "3", "action": "goto", "node": "closed"},
                        {"key": "0", "action": "hang_up"}]},
                    {"name": "closed", "announcement": "closed-notice", "playbacks": 1, "timeout_seconds": 2,
                     "default_action": {"action": "hang_up"}}
                ]
            })
        };
        v["auto_attendants"] = json!([script("200", "office"), script("300", "never")]);
    });
    // The night announcement is an upload: two seconds of 700 Hz.
    let h = pbx.admin_session("Adm1n-Attendant!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let wav = pbx.data.path().join("closed.wav");
    write_tone_wav(&wav, 700, 2);
    let put = pbx.https(
        "PUT",
        "/api/v1/sounds/closed-notice",
        Some(&format!("@{}", wav.display())),
        &h,
    );
    assert_eq!(put.status, 204, "{put:?}");
    for (path, status) in [
        ("/api/v1/sounds/..%2Fx", 400),
        ("/api/v1/sounds/nothing", 404),
    ] {
        assert_eq!(pbx.https("GET", path, None, &h).status, status, "{path}");
    }
    let list = pbx.https("GET", "/api/v1/sounds", None, &h).json();
    assert_eq!(list, json!([{"name": "closed-notice", "seconds": 2}]));
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
fn a_caller_picks_a_department_by_key_after_the_greeting() {
    let pbx = pbx_with_scripts();
    let b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        440,
        true,
        "PCMU,PCMA",
    );
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    dial(&mut a, &pbx, "200");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "the script did not answer: {:?}\n{}",
        a.events(),
        pbx.log_text()
    );
    // The greeting, then an invalid key: "that's not a valid extension" and the
    // greeting again; then 2 rings 102, which answers.
    std::thread::sleep(Duration::from_millis(2000));
    press(&mut a, "7");
    std::thread::sleep(Duration::from_millis(6000));
    press(&mut a, "2");
    assert!(
        b.wait_event("CALL_INCOMING", T).is_some(),
        "102 did not ring: {}",
        pbx.log_text()
    );
    assert!(b.wait_event("CALL_ESTABLISHED", T).is_some());
    std::thread::sleep(Duration::from_secs(3));
    a.command("hangup", "");
    closed_reason(&a);
    closed_reason(&b);
    let hello = speech_match(&a, &prompt("hello-world"), 1, 1000.0);
    let invalid = speech_match(&a, &prompt("invalid"), 3, 1000.0);
    println!("auto attendant caller: hello-world {hello:.2}, invalid {invalid:.2}");
    assert!(hello > 0.8, "the greeting was not heard: {hello:.2}");
    assert!(
        invalid > 0.8,
        "the invalid key was not answered: {invalid:.2}"
    );
    // The department's phone and the caller hear each other.
    assert_heard_somewhere(&a, 440.0);
    assert_heard_somewhere(&b, 1000.0);
    let calls = pbx.ctl_ok(&["calls"]);
    assert!(calls.lines().count() <= 1, "the call is gone: {calls}");
}

#[test]
fn silence_takes_the_default_branch_and_the_night_branch_plays_after_hours() {
    let pbx = pbx_with_scripts();
    // Silence: the greeting twice, then the default action, 102's voicemail.
    let mut a = phone_of(
        Kind::Pjsua2,
        &pbx,
        "101",
        "Secret-101x",
        1400,
        false,
        "PCMU,PCMA",
    );
    dial(&mut a, &pbx, "200");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{}",
        pbx.log_text()
    );
    // 2 x (1.4 s + 3 s), the invitation (5.7 s) and the beep, then the caller's tone.
    std::thread::sleep(Duration::from_secs(19));
    a.command("hangup", "");
    closed_reason(&a);
    let vm = speech_match(&a, &prompt("vm-intro"), 4, 1000.0);
    println!("auto attendant default: vm-intro {vm:.2}");
    assert!(
        vm > 0.8,
        "the default branch (voicemail) did not play: {vm:.2}"
    );
    let dir = pbx.data.path().join("voicemail/102");
    let list = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    assert!(
        wait_until(T, || !list().is_empty()),
        "no message in 102's box:\n{}",
        pbx.log_text()
    );
    let msgs = list();
    assert_eq!(
        dominant_tone(&msgs[0], &TONES).0,
        1400.0,
        "the message holds the caller's tone"
    );

    // After hours: the night branch's uploaded announcement, then the box hangs up.
    let mut c = phone_of(
        Kind::Baresip,
        &pbx,
        "103",
        "Secret-103x",
        1000,
        false,
        "PCMU,PCMA",
    );
    dial(&mut c, &pbx, "300");
    assert!(
        c.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{}",
        pbx.log_text()
    );
    let why = closed_reason(&c);
    println!("night branch call ended: {why}");
    // The uploaded night announcement (700 Hz), not the day greeting.
    assert_heard_somewhere(&c, 700.0);
    let day = speech_match(&c, &prompt("hello-world"), 1, 1000.0);
    println!("night branch: hello-world {day:.2}");
    assert!(day < 0.8, "the day menu played at night: {day:.2}");
}
