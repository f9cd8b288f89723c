//! Where calls go when the called party cannot take them, with real phones: call
//! waiting, forwarding (unconditional, busy, no answer, unavailable) and a ring group
//! in order with a fallback. Audio is checked in the recordings of whoever answers.

use e2e::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn four_extensions() -> Pbxd {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103", "104"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    pbx
}

/// `a` dials `number`; `c` (auto-answering) takes the call; both hear each other; `a`
/// hangs up (`others` calls go on).
fn reaches(a: &mut Phone, c: &Phone, pbx: &Pbxd, number: &str, tone_c: f64) {
    reaches_beside(a, c, pbx, number, tone_c, 0)
}

fn reaches_beside(a: &mut Phone, c: &Phone, pbx: &Pbxd, number: &str, tone_c: f64, others: usize) {
    a.clear_events();
    c.clear_events();
    dial(a, pbx, number);
    assert!(
        c.wait_event("CALL_ESTABLISHED", Duration::from_secs(30))
            .is_some(),
        "{number} never reached {}: {:?}\n{}",
        c.name,
        c.events(),
        pbx.log_text()
    );
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        a.events()
    );
    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    closed_reason(c);
    assert_heard(a, tone_c);
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1 + others));
}

#[test]
fn every_forward_kind_reaches_the_colleague() {
    let pbx = four_extensions();
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    let mut b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        440,
        false,
        "PCMU,PCMA",
    );
    let c = phone_of(
        Kind::Linphone,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        true,
        "PCMU,PCMA",
    );

    // Unconditional: 102 never rings.
    edit_extension(&pbx, "102", |e| e["forward"] = json!("103"));
    reaches(&mut a, &c, &pbx, "102", 1400.0);
    assert!(b
        .wait_event("CALL_INCOMING", Duration::from_millis(10))
        .is_none());

    // No answer after 5 s: 102 rings, then 103.
    edit_extension(&pbx, "102", |e| {
        e["forward"] = json!("");
        e["no_answer_seconds"] = json!(5);
        e["forwarding"] = json!([{"cause": "no_answer", "to": "103"}]);
    });
    b.clear_events();
    reaches(&mut a, &c, &pbx, "102", 1400.0);
    assert!(
        b.wait_event("CALL_INCOMING", Duration::from_millis(10))
            .is_some(),
        "102 rang first"
    );
    assert!(
        b.wait_event("CALL_CLOSED", T).is_some(),
        "102 stopped ringing"
    );

    // Busy (102 in a call, call waiting off): 103, for internal callers.
    edit_extension(&pbx, "102", |e| {
        e["call_waiting"] = json!(false);
        e["forwarding"] = json!([{"cause": "busy", "origin": "internal", "to": "103"}]);
    });
    let mut d = phone_of(
        Kind::Pjsua2,
        &pbx,
        "104",
        "Secret-104x",
        700,
        false,
        "PCMU,PCMA",
    );
    b.clear_events();
    dial(&mut d, &pbx, "102");
    assert!(b.wait_event("CALL_INCOMING", T).is_some());
    b.command("accept", "");
    assert!(d.wait_event("CALL_ESTABLISHED", T).is_some());
    reaches_beside(&mut a, &c, &pbx, "102", 1400.0, 1);
    d.command("hangup", "");
    closed_reason(&b);

    // Unavailable (nobody registered on 104 once its phone is gone): 103.
    drop(d);
    pbx.ctl_ok(&["extension", "add", "105"]);
    edit_extension(&pbx, "105", |e| {
        e["forwarding"] = json!([{"cause": "unavailable", "to": "103"}])
    });
    reaches(&mut a, &c, &pbx, "105", 1400.0);

    // Each of these is in the history as answered by 103.
    let h = pbx.admin_session("Adm1n-Forward!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut rows = Value::Null;
    assert!(
        wait_until(T, || {
            rows = pbx
                .https("GET", "/api/v1/history?number=103", None, &h)
                .json();
            rows.as_array().is_some_and(|r| r.len() >= 4)
        }),
        "{rows}"
    );
    for r in rows.as_array().unwrap().iter().take(4) {
        assert_eq!(
            (r["answered_by"].as_str(), r["outcome"].as_str()),
            (Some("103"), Some("answered")),
            "{r}"
        );
    }
}

#[test]
fn a_ring_group_in_order_falls_back_to_another_extension() {
    let pbx = four_extensions();
    edit_config(&pbx, |v| {
        v["ring_groups"] = json!([{
            "number": "600", "name": "Sales", "members": ["102", "104"],
            "strategy": "in_order", "member_seconds": 5, "fallback": "103"
        }]);
    });
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
        false,
        "PCMU,PCMA",
    );
    let c = phone_of(
        Kind::Pjsua2,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        true,
        "PCMU,PCMA",
    );
    // 102 rings for 5 s; 104 has no phone; then the fallback, 103, answers.
    reaches(&mut a, &c, &pbx, "600", 1400.0);
    assert!(
        b.wait_event("CALL_INCOMING", Duration::from_millis(10))
            .is_some(),
        "102 rang first"
    );
    assert!(b.wait_event("CALL_CLOSED", T).is_some(), "and stopped");
}

/// A phone already in a call rings for a second one (call waiting, on by default)
/// and can take it.
fn call_waiting(waiting: Kind) {
    let pbx = four_extensions();
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    let mut b = phone_of(waiting, &pbx, "102", "Secret-102x", 440, false, "PCMU,PCMA");
    let mut c = phone_of(
        Kind::Pjsua2,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        false,
        "PCMU,PCMA",
    );
    dial(&mut a, &pbx, "102");
    assert!(b.wait_event("CALL_INCOMING", T).is_some());
    b.command("accept", "");
    assert!(a.wait_event("CALL_ESTABLISHED", T).is_some());
    b.clear_events();
    dial(&mut c, &pbx, "102");
    assert!(
        b.wait_event("CALL_INCOMING", T).is_some(),
        "{waiting:?} did not ring for the second call: {:?}",
        b.events()
    );
    b.command("accept", "");
    assert!(
        c.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        c.events()
    );
    std::thread::sleep(Duration::from_secs(2));
    c.command("hangup", "");
    closed_reason(&c);
    assert_heard(&c, 440.0);
    a.command("hangup", "");
    closed_reason(&a);
}

#[test]
fn call_waiting_on_pjsua2() {
    call_waiting(Kind::Pjsua2);
}

#[test]
fn call_waiting_on_baresip() {
    call_waiting(Kind::Baresip);
}

/// 101 calls 102, whose phone rings; `picker` on 103 dials `code` and takes the call:
/// 102 stops ringing, 101 and 103 hear each other.
fn pickup(picker: Kind, code: &str) {
    let pbx = four_extensions();
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    let b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        440,
        false,
        "PCMU,PCMA",
    );
    let mut c = phone_of(picker, &pbx, "103", "Secret-103x", 1400, false, "PCMU,PCMA");
    dial(&mut a, &pbx, "102");
    assert!(b.wait_event("CALL_INCOMING", T).is_some());
    dial(&mut c, &pbx, code);
    assert!(
        c.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{picker:?} could not pick up: {:?}\n{}",
        c.events(),
        pbx.log_text()
    );
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        a.events()
    );
    assert!(b.wait_event("CALL_CLOSED", T).is_some(), "102 kept ringing");
    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    closed_reason(&c);
    assert_heard(&a, 1400.0);
    assert_heard(&c, 1000.0);
}

#[test]
fn linphone_picks_up_a_colleagues_call_with_the_group_code() {
    pickup(Kind::Linphone, "*8");
}

#[test]
fn baresip_picks_up_one_extension_with_the_directed_code() {
    pickup(Kind::Baresip, "**102");
}

/// The English prompt set the box plays (Debian's asterisk-core-sounds-en-wav).
const PROMPTS: &str = "/usr/share/asterisk/sounds/en";

/// The messages in `ext`'s voicemail box, oldest first.
fn messages(pbx: &Pbxd, ext: &str) -> Vec<std::path::PathBuf> {
    let dir = pbx.data.path().join("voicemail").join(ext);
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "wav"));
    v.sort();
    v
}

/// `p` calls 102, is answered (by voicemail), stays `secs` seconds and hangs up.
fn talk_to_voicemail(p: &mut Phone, pbx: &Pbxd, secs: u64) {
    dial(p, pbx, "102");
    assert!(
        p.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        p.events()
    );
    std::thread::sleep(Duration::from_secs(secs));
    p.command("hangup", "");
    closed_reason(p);
}

/// Nobody answers 102, whose rules send callers to voicemail: a baresip caller hears
/// the invitation and the beep, speaks, presses `#` and is told the message is saved;
/// a pjsua2 caller speaks and hangs up. Each message is in 102's box holding the
/// caller's own tone, and each call is in the history, answered by voicemail.
#[test]
fn callers_who_find_nobody_leave_a_voicemail() {
    let pbx = four_extensions();
    edit_extension(&pbx, "102", |e| {
        e["no_answer_seconds"] = json!(5);
        e["forwarding"] = json!([
            {"cause": "no_answer", "to": "voicemail"},
            {"cause": "unavailable", "to": "voicemail"}
        ]);
    });
    let b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        440,
        false,
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
    dial(&mut a, &pbx, "102");
    assert!(b.wait_event("CALL_INCOMING", T).is_some(), "102 rang");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "voicemail did not answer: {:?}\n{}",
        a.events(),
        pbx.log_text()
    );
    assert!(
        b.wait_event("CALL_CLOSED", T).is_some(),
        "102 stopped ringing"
    );
    // The invitation (5.7 s) and the beep, then three seconds of the caller's tone.
    std::thread::sleep(Duration::from_secs(9));
    a.command("sndcode", "#");
    closed_reason(&a);
    let prompts = std::path::Path::new(PROMPTS);
    let intro = speech_match(&a, &prompts.join("vm-intro.wav"), 4, 1000.0);
    let other = speech_match(&a, &prompts.join("demo-congrats.wav"), 4, 1000.0);
    println!("voicemail caller: vm-intro envelope match {intro:.2} (another prompt {other:.2})");
    assert!(
        intro > 0.8 && intro > other + 0.2,
        "the caller did not hear the invitation: {intro:.2} vs {other:.2}"
    );
    assert!(
        wait_until(T, || messages(&pbx, "102").len() == 1),
        "no message in 102's box:\n{}",
        pbx.log_text()
    );
    let first = messages(&pbx, "102").remove(0);
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.ends_with("-101.wav"), "{name}");
    let (tone, loud) = dominant_tone(&first, &TONES);
    assert_eq!(tone, 1000.0, "the message holds the caller's tone");
    assert!(
        (8000 * 2..8000 * 6).contains(&loud),
        "about three seconds of the caller: {loud} loud samples"
    );

    // A pjsua2 caller speaks and hangs up: the message is kept all the same.
    let mut c = phone_of(
        Kind::Pjsua2,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        false,
        "PCMU,PCMA",
    );
    talk_to_voicemail(&mut c, &pbx, 10);
    assert!(
        wait_until(T, || messages(&pbx, "102").len() == 2),
        "the second message is missing:\n{}",
        pbx.log_text()
    );
    let second = messages(&pbx, "102").remove(1);
    assert_eq!(dominant_tone(&second, &TONES).0, 1400.0);

    let h = pbx.admin_session("Adm1n-Voicemail!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let rows = pbx
        .https("GET", "/api/v1/history?number=102", None, &h)
        .json();
    let rows = rows.as_array().cloned().unwrap_or_default();
    let by_vm: Vec<_> = rows
        .iter()
        .filter(|r| r["answered_by"] == "voicemail" && r["called"] == "102")
        .collect();
    assert_eq!(by_vm.len(), 2, "{rows:?}");

    // 102's user lists the two messages in the portal's API, fetches one as WAV and
    // deletes it; another extension's box and a path are refused.
    let body = json!({"username": "julia", "password": "Us3r-Voicemail!", "role": "user", "extensions": ["102"]}).to_string();
    assert_eq!(
        pbx.https("POST", "/api/v1/users", Some(&body), &h).status,
        201
    );
    let u = pbx.login("julia", "Us3r-Voicemail!");
    let u: Vec<&str> = u.iter().map(String::as_str).collect();
    let list = pbx.https("GET", "/api/v1/me/voicemail", None, &u).json();
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["caller"], "103", "newest first: {list:?}");
    assert_eq!(list[1]["caller"], "101");
    assert!(
        (2..=5).contains(&list[1]["seconds"].as_u64().unwrap()),
        "{list:?}"
    );
    let id = list[1]["id"].as_str().unwrap().to_string();
    let wav = pbx.https("GET", &format!("/api/v1/me/voicemail/102/{id}"), None, &u);
    assert_eq!(wav.status, 200);
    assert_eq!(wav.header("content-type").as_deref(), Some("audio/wav"));
    assert!(wav.body.starts_with("RIFF"), "a WAV file");
    for (path, status) in [
        (format!("/api/v1/me/voicemail/101/{id}"), 403),
        ("/api/v1/me/voicemail/102/1.wav".to_string(), 400),
        ("/api/v1/me/voicemail/102/1-2-3".to_string(), 404),
    ] {
        assert_eq!(pbx.https("GET", &path, None, &u).status, status, "{path}");
    }
    let del = pbx.https(
        "DELETE",
        &format!("/api/v1/me/voicemail/102/{id}"),
        None,
        &u,
    );
    assert_eq!(del.status, 204, "{del:?}");
    assert_eq!(messages(&pbx, "102"), [second]);

    // The user uploads a greeting for "unavailable" (two seconds of 700 Hz): the next
    // caller hears it instead of the invitation, then the beep.
    let upload = pbx.data.path().join("greeting-upload.wav");
    write_tone_wav(&upload, 700, 2);
    let at = "/api/v1/me/voicemail/102/greetings/unavailable";
    let put = pbx.https("PUT", at, Some(&format!("@{}", upload.display())), &u);
    assert_eq!(put.status, 204, "{put:?}");
    let bad = pbx.https("PUT", at, Some("not a wav"), &u);
    assert_eq!(bad.status, 422, "{bad:?}");
    let got = pbx.https("GET", at, None, &u);
    assert_eq!(
        (got.status, got.header("content-type").as_deref()),
        (200, Some("audio/wav"))
    );
    a.clear_events();
    talk_to_voicemail(&mut a, &pbx, 2);
    assert_heard_somewhere(&a, 700.0);
    let intro = speech_match(&a, &prompts.join("vm-intro.wav"), 4, 1000.0);
    assert!(
        intro < 0.8,
        "the invitation was played over the greeting: {intro:.2}"
    );
    assert_eq!(pbx.https("DELETE", at, None, &u).status, 204);
    assert_eq!(pbx.https("GET", at, None, &u).status, 404);
}

/// Sends `keys` as RFC 4733 digits, one at a time.
fn press(p: &mut Phone, keys: &str) {
    for k in keys.chars() {
        p.command("sndcode", &k.to_string());
        std::thread::sleep(Duration::from_millis(400));
    }
}

/// 102 (baresip) leaves a message straight in 101's box with the direct-voicemail
/// prefix, 101 never ringing; 101's phone (pjsua2, subscribed to its box like a desk
/// phone) sees its message lamp light (RFC 3842 NOTIFY, 1 new). 101's user dials the
/// voicemail number, is asked for its PIN, hears the message (102's tone on its
/// recording), deletes it and says goodbye with `#`: the box hangs up, the box is
/// empty and the lamp goes out.
#[test]
fn a_user_hears_and_deletes_voicemail_after_its_pin() {
    let pbx = four_extensions();
    edit_extension(&pbx, "101", |e| e["service_pin"] = json!("2468"));
    let mut a = phone_of(
        Kind::Pjsua2,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    let mut b = phone_of(
        Kind::Baresip,
        &pbx,
        "102",
        "Secret-102x",
        440,
        false,
        "PCMU,PCMA",
    );
    let off = a.wait_event_with("MWI", "Messages-Waiting: no", T);
    assert!(
        off.is_some(),
        "101's phone got no message summary when it subscribed: {:?}\n{}\n{}",
        a.events(),
        pbx.log_text(),
        a.log()
    );
    dial(&mut b, &pbx, "*98101");
    assert!(
        b.wait_event("CALL_ESTABLISHED", T).is_some(),
        "direct voicemail did not answer: {:?}\n{}",
        b.events(),
        pbx.log_text()
    );
    assert!(a
        .wait_event("CALL_INCOMING", Duration::from_secs(1))
        .is_none());
    // The invitation and the beep, then about three seconds of 440 Hz.
    std::thread::sleep(Duration::from_secs(9));
    b.command("hangup", "");
    closed_reason(&b);
    assert!(
        wait_until(T, || messages(&pbx, "101").len() == 1),
        "no message in 101's box:\n{}",
        pbx.log_text()
    );
    assert_eq!(dominant_tone(&messages(&pbx, "101")[0], &TONES).0, 440.0);
    let on = a.wait_event_with("MWI", "Voice-Message: 1/0", T);
    let on = on.unwrap_or_else(|| panic!("the lamp did not light: {:?}", a.events()));
    let on = on["param"].as_str().unwrap();
    assert!(on.contains("Messages-Waiting: yes"), "{on}");
    assert!(on.contains("Message-Account: sip:*97@"), "{on}");
    // The technician's view: 101's box, one new message, watched by 101's phone.
    let boxes = pbx.ctl_ok(&["voicemail"]);
    let line = boxes.lines().find(|l| l.starts_with("101 ")).unwrap_or("");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols, ["101", "1", "0", "no", "101"], "{boxes}");
    a.clear_events();

    dial(&mut a, &pbx, "*97");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "the voicemail menu did not answer: {:?}\n{}",
        a.events(),
        pbx.log_text()
    );
    // "Please enter your password followed by the pound key."
    std::thread::sleep(Duration::from_millis(3500));
    press(&mut a, "2468#");
    // "You have one new message..." cut short by 1: "first message from extension
    // 1 0 2", the message, the instructions; 7 deletes it, # says goodbye.
    std::thread::sleep(Duration::from_millis(1500));
    press(&mut a, "1");
    std::thread::sleep(Duration::from_secs(10));
    press(&mut a, "7");
    std::thread::sleep(Duration::from_secs(2));
    press(&mut a, "#");
    let why = closed_reason(&a);
    println!("voicemail menu call ended: {why}");
    let prompts = std::path::Path::new(PROMPTS);
    let login = speech_match(&a, &prompts.join("agent-pass.wav"), 2, 1000.0);
    println!("voicemail menu: agent-pass envelope match {login:.2}");
    assert!(
        login > 0.8,
        "the caller was not asked for its PIN: {login:.2}"
    );
    assert_heard_somewhere(&a, 440.0);
    assert!(
        wait_until(T, || messages(&pbx, "101").is_empty()),
        "the message was not deleted: {:?}\n{}",
        messages(&pbx, "101"),
        pbx.log_text()
    );
    assert!(
        a.wait_event_with("MWI", "Voice-Message: 0/0", T).is_some(),
        "the lamp did not go out: {:?}",
        a.events()
    );
}

/// Kerio 17.3 and Kalliope's notifications: the admin sets a mail server (STARTTLS with
/// a certificate from the company's own CA, AUTH); 102 wants its messages by e-mail
/// with the recording attached and deleted from the box once sent. A baresip caller
/// leaves a message with the direct-voicemail prefix: the mail server gets it over TLS
/// from the authenticated user, header by header, with a WAV holding the caller's tone,
/// and the box is empty afterwards. Settings the box must refuse are refused.
#[test]
fn voicemail_is_emailed_over_starttls_with_the_recording() {
    let pbx = four_extensions();
    let sink = MailSink::start("pbx-mailer", "Mail-Secret-1");
    let h = pbx.admin_session("Adm1n-Mail!x");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    // A password never goes out in clear, and the CA must be PEM.
    for bad in [
        json!({"server": "127.0.0.1", "security": "none", "username": "u", "password": "p", "from": "pbx@example.com"}),
        json!({"server": "127.0.0.1", "from": "pbx@example.com", "ca": "not a certificate"}),
        json!({"server": "127.0.0.1", "from": "not an address"}),
    ] {
        let r = pbx.https("PUT", "/api/v1/smtp", Some(&bad.to_string()), &h);
        assert!(r.status == 400 || r.status == 422, "{bad}: {r:?}");
    }
    let smtp = json!({
        "server": "127.0.0.1", "port": sink.port, "security": "starttls",
        "username": "pbx-mailer", "password": "Mail-Secret-1",
        "from": "pbx@example.com", "ca": sink.ca_pem,
    });
    let put = pbx.https("PUT", "/api/v1/smtp", Some(&smtp.to_string()), &h);
    assert_eq!(put.status, 200, "{put:?}");
    let got = pbx.https("GET", "/api/v1/smtp", None, &h).json();
    assert_eq!(got["password"], "****", "the password is not shown: {got}");
    assert_eq!(got["port"], sink.port);
    // The masked password keeps the one in force.
    let put = pbx.https("PUT", "/api/v1/smtp", Some(&got.to_string()), &h);
    assert_eq!(put.status, 200, "{put:?}");
    // ...but not for another server: the password must be typed again.
    let mut moved = got.clone();
    moved["server"] = json!("127.0.0.2");
    let r = pbx.https("PUT", "/api/v1/smtp", Some(&moved.to_string()), &h);
    assert!(r.status == 400 || r.status == 422, "{r:?}");
    edit_extension(&pbx, "102", |e| {
        e["email"] = json!("julia@example.com");
        e["voicemail_email"] = json!(true);
        e["voicemail_delete_sent"] = json!(true);
    });

    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        1400,
        false,
        "PCMU,PCMA",
    );
    dial(&mut a, &pbx, "*98102");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "direct voicemail did not answer: {:?}",
        a.events()
    );
    std::thread::sleep(Duration::from_secs(9));
    a.command("hangup", "");
    closed_reason(&a);
    let mails = sink.wait_messages(1, Duration::from_secs(20));
    assert_eq!(
        mails.len(),
        1,
        "no mail arrived:\n{}\n{}",
        sink.log(),
        pbx.log_text()
    );
    let m = &mails[0];
    println!("voicemail e-mail: {m}");
    assert_eq!(m["tls"], true, "STARTTLS was not used: {m}");
    assert_eq!(m["auth_user"], "pbx-mailer");
    assert_eq!(m["mail_from"], "pbx@example.com");
    assert_eq!(m["rcpt_tos"], json!(["julia@example.com"]));
    assert_eq!(m["to"], "julia@example.com");
    assert!(
        m["from"].as_str().unwrap().contains("<pbx@example.com>"),
        "{m}"
    );
    let subject = m["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("Voicemail from 101 (") && subject.ends_with(" s) for 102"),
        "{subject}"
    );
    assert!(!m["date"].as_str().unwrap_or("").is_empty(), "no Date: {m}");
    assert!(m["text"].as_str().unwrap().contains("From: 101"), "{m}");
    let att = &m["attachments"][0];
    assert_eq!(att["content_type"], "audio/wav", "{m}");
    assert!(
        att["filename"].as_str().unwrap().ends_with("-101.wav"),
        "{m}"
    );
    let wav = std::path::PathBuf::from(att["path"].as_str().unwrap());
    assert_eq!(
        dominant_tone(&wav, &TONES).0,
        1400.0,
        "the caller's tone is in the WAV"
    );
    assert!(
        wait_until(T, || messages(&pbx, "102").is_empty()),
        "the message sent stays in the box: {:?}",
        messages(&pbx, "102")
    );
}
