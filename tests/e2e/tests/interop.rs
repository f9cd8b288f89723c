//! The same call scenarios with every phone family the harness drives (baresip,
//! PJSIP's pjsua2 and liblinphone's linphonec), alone and against each other: a box
//! that only one stack tolerates fails here. Audio is checked in what each phone
//! recorded.

use e2e::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn two_extensions() -> Pbxd {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&["extension", "add", "101", "--password", "Secret-101x"]);
    pbx.ctl_ok(&["extension", "add", "102", "--password", "Secret-102x"]);
    pbx
}

/// `from` calls `number`; `to` rings, is answered by hand, and both sides connect.
fn ring_and_answer(from: &mut Phone, to: &mut Phone, pbx: &Pbxd, number: &str) {
    dial(from, pbx, number);
    assert!(
        to.wait_event("CALL_INCOMING", T).is_some(),
        "{} never rang: {:?}\ncaller {:?}: {:?}\n{}",
        to.name,
        to.events(),
        from.kind,
        from.events(),
        pbx.log_text()
    );
    to.command("accept", "");
    for p in [&*from, &*to] {
        assert!(
            p.wait_event("CALL_ESTABLISHED", T).is_some(),
            "{:?} {} never connected: {:?}",
            p.kind,
            p.name,
            p.events()
        );
    }
}

/// A whole conversation between a `caller` phone and a `callee` phone: answer, audio
/// both ways, hold and resume (voice back after it), a keypad digit, the callee hangs
/// up; then the other way round, and the caller hangs up.
fn conversation(caller: Kind, callee: Kind) {
    let pbx = two_extensions();
    let mut a = phone_of(caller, &pbx, "101", "Secret-101x", 1000, false, "PCMU,PCMA");
    let mut b = phone_of(callee, &pbx, "102", "Secret-102x", 440, false, "PCMU,PCMA");

    ring_and_answer(&mut a, &mut b, &pbx, "102");
    std::thread::sleep(Duration::from_secs(2));
    // Hold is the box's business: the callee is not asked, it hears music.
    a.command("hold", "");
    assert!(
        wait_until(T, || pbx.log_text().contains("call put on hold")),
        "{caller:?} could not hold"
    );
    std::thread::sleep(Duration::from_secs(2));
    a.command("resume", "");
    assert!(
        wait_until(T, || pbx.log_text().contains("call taken off hold")),
        "{caller:?} could not resume"
    );
    std::thread::sleep(Duration::from_millis(500));
    // A keypad digit, sent by the caller (by the callee when the caller is linphonec,
    // which cannot send one from its prompt).
    let (sender, receiver) = if caller == Kind::Linphone {
        (&mut b, &a)
    } else {
        (&mut a, &b)
    };
    sender.command("sndcode", "5");
    let digit = receiver
        .wait_event("CALL_DTMF_START", T)
        .unwrap_or_else(|| {
            panic!(
                "no digit reached {:?}: {:?}",
                receiver.kind,
                receiver.events()
            )
        });
    assert_eq!(digit["param"], "5", "{digit}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        a.wait_event("CALL_CLOSED", Duration::from_millis(10))
            .is_none(),
        "the call dropped: {:?}",
        a.events()
    );
    b.command("hangup", "");
    closed_reason(&a);
    closed_reason(&b);
    // Before the hold and after the resume, each side heard the other's tone; in
    // between, the held callee heard the music.
    assert_heard_somewhere(&b, MUSIC_TONE);
    assert_heard_at(&b, 1000.0, 0.1);
    assert_heard_at(&a, 440.0, 0.1);
    assert_heard_at(&b, 1000.0, 0.85);
    assert_heard_at(&a, 440.0, 0.85);
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));

    // The other way round; the caller hangs up.
    a.clear_events();
    b.clear_events();
    ring_and_answer(&mut b, &mut a, &pbx, "101");
    std::thread::sleep(Duration::from_secs(2));
    b.command("hangup", "");
    closed_reason(&a);
    closed_reason(&b);
    assert_heard(&a, 440.0);
    assert_heard(&b, 1000.0);
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
}

#[test]
fn pjsua2_calls_pjsua2() {
    conversation(Kind::Pjsua2, Kind::Pjsua2);
}

#[test]
fn pjsua2_calls_baresip() {
    conversation(Kind::Pjsua2, Kind::Baresip);
}

#[test]
fn baresip_calls_pjsua2() {
    conversation(Kind::Baresip, Kind::Pjsua2);
}

#[test]
fn linphone_calls_pjsua2() {
    conversation(Kind::Linphone, Kind::Pjsua2);
}

#[test]
fn pjsua2_calls_linphone() {
    conversation(Kind::Pjsua2, Kind::Linphone);
}

#[test]
fn baresip_calls_linphone() {
    conversation(Kind::Baresip, Kind::Linphone);
}

/// Whether a call's closing reason is `code`: baresip and pjsua2 give the status,
/// linphonec the reason phrase.
fn refused(reason: &str, code: &str, phrase: &str) -> bool {
    reason.contains(code) || reason.to_ascii_lowercase().contains(phrase)
}

/// Failures as `caller`'s family sees them, and one extension on two phones of the
/// other families: both ring, the first to answer wins, the other stops ringing; the
/// free one then finds the caller busy. Run once per family, so each is the caller,
/// each a ringing device and each the one that hears busy.
fn failures_and_two_devices(caller: Kind) {
    let i = Kind::ALL.iter().position(|k| *k == caller).unwrap();
    let (k1, k2) = (Kind::ALL[(i + 1) % 3], Kind::ALL[(i + 2) % 3]);
    let pbx = two_extensions();
    pbx.ctl_ok(&["extension", "add", "103", "--password", "Secret-103x"]);
    pbx.ctl_ok(&[
        "account",
        "add",
        "102-desk",
        "--extension",
        "102",
        "--password",
        "Secret-102-desk",
    ]);
    let mut a = phone_of(caller, &pbx, "101", "Secret-101x", 1000, false, "PCMU");
    let mut b1 = phone_of(k1, &pbx, "102", "Secret-102x", 440, false, "PCMU");
    let mut b2 = phone_of(
        k2,
        &pbx,
        "102-desk",
        "Secret-102-desk",
        700,
        false,
        "PCMA,PCMU",
    );

    // Nobody registered on 103; 999 does not exist.
    for (number, status, phrase) in [
        ("103", "480", "temporarily unavailable"),
        ("999", "404", "not found"),
    ] {
        a.clear_events();
        dial(&mut a, &pbx, number);
        let r = closed_reason(&a);
        assert!(refused(&r, status, phrase), "{caller:?} to {number}: {r}");
    }

    a.clear_events();
    dial(&mut a, &pbx, "102");
    for b in [&b1, &b2] {
        assert!(
            b.wait_event("CALL_INCOMING", T).is_some(),
            "{:?} did not ring: {:?}",
            b.kind,
            b.events()
        );
    }
    b2.command("accept", "");
    assert!(
        a.wait_event("CALL_ESTABLISHED", T).is_some(),
        "{:?}",
        a.events()
    );
    closed_reason(&b1);
    assert!(b1
        .wait_event("CALL_ESTABLISHED", Duration::from_millis(10))
        .is_none());

    // 102's other device is free, so a call from it to 101 (in a call, with call
    // waiting switched off) is busy.
    edit_extension(&pbx, "101", |e| e["call_waiting"] = false.into());
    b1.clear_events();
    dial(&mut b1, &pbx, "101");
    let r = closed_reason(&b1);
    assert!(refused(&r, "486", "busy"), "{k1:?} calling a busy 101: {r}");

    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    closed_reason(&b2);
    // u-law on the caller's side, A-law on the desk phone's: transcoded both ways.
    assert_heard(&b2, 1000.0);
    assert_heard(&a, 700.0);
}

#[test]
fn failures_and_two_devices_baresip_calls() {
    failures_and_two_devices(Kind::Baresip);
}

#[test]
fn failures_and_two_devices_pjsua2_calls() {
    failures_and_two_devices(Kind::Pjsua2);
}

#[test]
fn failures_and_two_devices_linphone_calls() {
    failures_and_two_devices(Kind::Linphone);
}

/// A phone that makes no offer in its INVITE (PJSIP's late offer): the box offers in
/// its 200, the phone answers in the ACK, and the call talks both ways, to each family.
#[test]
fn late_offer_from_pjsua2_to_each_family() {
    let pbx = two_extensions();
    pbx.ctl_ok(&["extension", "add", "103", "--password", "Secret-103x"]);
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
    let c = phone_of(
        Kind::Pjsua2,
        &pbx,
        "103",
        "Secret-103x",
        700,
        true,
        "PCMA,PCMU",
    );
    for (to, number, tone) in [(&b, "102", 440.0), (&c, "103", 700.0)] {
        a.clear_events();
        a.command("dial_late", &format!("sip:{number}@{}", pbx.sip));
        for p in [&a, to] {
            assert!(
                p.wait_event("CALL_ESTABLISHED", T).is_some(),
                "{:?} {}: {:?}",
                p.kind,
                p.name,
                p.events()
            );
        }
        std::thread::sleep(Duration::from_secs(3));
        a.command("hangup", "");
        closed_reason(&a);
        closed_reason(to);
        // PJSIP's log (written behind) holds every message it sent: the INVITE had no SDP, the ACK did.
        let log = a.log();
        let sent = |method: &str| {
            let marker = format!("bytes Request msg {method}/");
            assert!(log.contains(&marker), "PJSIP logged no {method} sent");
            let m = log.rsplit(&marker).next().unwrap_or_default();
            m.split("--end msg--")
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert!(!sent("INVITE").contains("m=audio"), "{}", sent("INVITE"));
        assert!(sent("ACK").contains("m=audio"), "{}", sent("ACK"));
        assert_heard(to, 1000.0);
        assert_heard(&a, tone);
        assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
    }
}

/// A phone set to send its keypad by SIP INFO (pjsua2) reaches every family: the box
/// turns each INFO into RFC 4733 events towards the other phone, which reports the
/// digits it received.
#[test]
fn digits_sent_by_sip_info_reach_every_family() {
    let pbx = two_extensions();
    let mut a = phone_of(
        Kind::Pjsua2,
        &pbx,
        "101",
        "Secret-101x",
        1000,
        false,
        "PCMU,PCMA",
    );
    // pjsua2 sends a string of digits as INFOs one right after the other: the box
    // queues them, so all arrive, in order.
    for (kind, digits) in [
        (Kind::Baresip, "71#"),
        (Kind::Linphone, "#*9"),
        (Kind::Pjsua2, "502"),
    ] {
        a.clear_events();
        let mut b = phone_of(kind, &pbx, "102", "Secret-102x", 440, false, "PCMU,PCMA");
        ring_and_answer(&mut a, &mut b, &pbx, "102");
        std::thread::sleep(Duration::from_millis(500));
        a.command("sndinfo", digits);
        let heard = || -> String {
            b.events()
                .iter()
                .filter(|e| e["type"] == "CALL_DTMF_START")
                .filter_map(|e| e["param"].as_str().map(str::to_string))
                .collect()
        };
        wait_until(T, || heard().len() >= digits.len());
        assert_eq!(
            heard(),
            digits,
            "{kind:?}: {:?}\n{}",
            b.events(),
            pbx.log_text()
        );
        assert!(
            a.wait_event("CALL_CLOSED", Duration::from_millis(10))
                .is_none(),
            "the INFO dropped the call: {:?}",
            a.events()
        );
        a.command("hangup", "");
        closed_reason(&a);
        closed_reason(&b);
        assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
    }
}

/// Hold plays the box's default collection, Debian's opsound music (as on the image),
/// to the held party of each family: what it recorded while held follows the first
/// track's loudness, a different track does not match, and the voice is back after
/// the resume.
#[test]
fn held_phones_hear_debians_music_collection() {
    let data = tempfile::tempdir().unwrap();
    let pbx = Pbxd::start_in(data, free_port(), &["--music-on-hold", DEBIAN_MUSIC]);
    for (n, pw) in [
        ("101", "Secret-101x"),
        ("102", "Secret-102x"),
        ("103", "Secret-103x"),
    ] {
        pbx.ctl_ok(&["extension", "add", n, "--password", pw]);
    }
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
    let mut c = phone_of(
        Kind::Linphone,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        false,
        "PCMU,PCMA",
    );
    // 101 (baresip) holds 102 (pjsua2); then 102 holds 103 (linphonec).
    hold_with_music(&pbx, &mut a, &mut b, "102", 1000.0);
    hold_with_music(&pbx, &mut b, &mut c, "103", 440.0);
}

/// `holder` calls `number` (`held`), holds it for six seconds and resumes; `held`
/// heard the first track of the collection, then `holder`'s tone `voice` again.
fn hold_with_music(pbx: &Pbxd, holder: &mut Phone, held: &mut Phone, number: &str, voice: f64) {
    let first = std::path::Path::new(DEBIAN_MUSIC).join("macroform-cold_day.wav");
    let other = std::path::Path::new(DEBIAN_MUSIC).join("reno_project-system.wav");
    // Waits until pbxd has logged `line` once more than it had when asked.
    let once_more = |line: &'static str| {
        let before = pbx.log_text().matches(line).count();
        move |what: &str, who: Kind| {
            assert!(
                wait_until(T, || pbx.log_text().matches(line).count() > before),
                "{who:?} could not {what}"
            )
        }
    };
    let (held_on, resumed) = (
        once_more("call put on hold"),
        once_more("call taken off hold"),
    );
    ring_and_answer(holder, held, pbx, number);
    std::thread::sleep(Duration::from_secs(1));
    holder.command("hold", "");
    held_on("hold", holder.kind);
    std::thread::sleep(Duration::from_secs(6));
    holder.command("resume", "");
    resumed("resume", holder.kind);
    std::thread::sleep(Duration::from_secs(2));
    holder.command("hangup", "");
    closed_reason(held);
    closed_reason(holder);
    let music = clip_match(held, &first, 4, voice);
    let wrong = clip_match(held, &other, 4, voice);
    println!(
        "{:?} held: envelope match {music:.2} (another track {wrong:.2})",
        held.kind
    );
    assert!(
        music > 0.8 && wrong < 0.6,
        "{:?} did not hear the collection while held: match {music:.2}, another track {wrong:.2}",
        held.kind
    );
    assert_heard_at(held, voice, 0.93);
    holder.clear_events();
    held.clear_events();
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
}

/// The echo test (`*43`) from each family: the box answers, beeps, and the phone hears
/// its own tone back; `#` makes the box hang up (linphonec, which cannot send a digit
/// from its prompt, hangs up itself). Each call is in the history, answered by the
/// echo test.
#[test]
fn every_family_hears_itself_in_the_echo_test() {
    let pbx = two_extensions();
    pbx.ctl_ok(&["extension", "add", "103", "--password", "Secret-103x"]);
    for (kind, user, tone) in [
        (Kind::Baresip, "101", 1000.0),
        (Kind::Pjsua2, "102", 440.0),
        (Kind::Linphone, "103", 700.0),
    ] {
        let mut p = phone_of(
            kind,
            &pbx,
            user,
            &format!("Secret-{user}x"),
            tone as u32,
            false,
            "PCMU,PCMA",
        );
        dial(&mut p, &pbx, "*43");
        assert!(
            p.wait_event("CALL_ESTABLISHED", T).is_some(),
            "{kind:?}: the echo test did not answer: {:?}\n{}",
            p.events(),
            pbx.log_text()
        );
        std::thread::sleep(Duration::from_secs(3));
        if kind == Kind::Linphone {
            p.command("hangup", "");
        } else {
            p.command("sndcode", "#");
        }
        closed_reason(&p);
        assert_heard_at(&p, tone, 0.6);
        assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
    }
    let h = pbx.admin_session("Adm1n-Echo-Test!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let rows = pbx
        .https("GET", "/api/v1/history?number=*43", None, &h)
        .json();
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(
            (
                r["answered_by"].as_str(),
                r["outcome"].as_str(),
                r["called"].as_str()
            ),
            (Some("echo test"), Some("answered"), Some("*43")),
            "{r}"
        );
    }
}

/// Music on hold collections (Kerio 24): an MP3 uploaded through the API (600 Hz, at
/// 44.1 kHz with a 6 kHz overtone that must not fold back) made the default is what a
/// held pjsua2 phone hears; then a live collection, the line-in (an ALSA device that
/// captures a 1800 Hz tone from a file, declared in the `.asoundrc` of pbxd's home),
/// is what a held linphonec phone hears. Bad uploads and collections are refused, and
/// a file a collection plays cannot be removed.
#[test]
fn uploaded_and_live_music_collections_play_on_hold() {
    let data = tempfile::tempdir().unwrap();
    let home = data.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let raw = home.join("line.raw");
    let line: Vec<u8> = (0..8000 * 180)
        .flat_map(|n| {
            let v = (2.0 * std::f64::consts::PI * 1800.0 * n as f64 / 8000.0).sin() * 9000.0;
            (v as i16).to_le_bytes()
        })
        .collect();
    std::fs::write(&raw, line).unwrap();
    std::fs::write(
        home.join(".asoundrc"),
        format!(
            "pcm.tonein {{\n type file\n slave.pcm null\n file \"/dev/null\"\n infile \"{}\"\n format raw\n}}\n",
            raw.display()
        ),
    )
    .unwrap();
    let sip: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let home_env = format!("HOME={}", home.display());
    let pbx = Pbxd::launch(data, sip, &[], &["env", &home_env]);
    for (n, pw) in [
        ("101", "Secret-101x"),
        ("102", "Secret-102x"),
        ("103", "Secret-103x"),
    ] {
        pbx.ctl_ok(&["extension", "add", n, "--password", pw]);
    }
    let h = pbx.admin_session("Adm1n-Music-On-Hold!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let mp3 = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../firmware/media/tests/data/tone-600hz-6khz.mp3");
    let put = |name: &str, file: &std::path::Path| {
        pbx.https(
            "PUT",
            &format!("/api/v1/music/{name}"),
            Some(&format!("@{}", file.display())),
            &h,
        )
    };
    assert_eq!(put("tone600", &mp3).status, 204);
    let junk = pbx.data.path().join("junk.mp3");
    std::fs::write(&junk, b"ID3 this is no music at all").unwrap();
    let refused = put("junk", &junk);
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(put("..%2Fx", &mp3).status, 400);
    let files = pbx.https("GET", "/api/v1/music", None, &h).json();
    assert_eq!(
        files,
        serde_json::json!([{"name": "tone600", "seconds": 3, "collections": []}])
    );
    let post = |body: serde_json::Value| {
        pbx.https(
            "POST",
            "/api/v1/routing/music_collections",
            Some(&body.to_string()),
            &h,
        )
    };
    for bad in [
        serde_json::json!({"name": "system", "files": ["tone600"]}),
        serde_json::json!({"name": "empty"}),
        serde_json::json!({"name": "both", "files": ["tone600"], "line_in": "tonein"}),
        serde_json::json!({"name": "shell", "line_in": "hw:0;reboot"}),
    ] {
        let a = post(bad.clone());
        assert!(a.status == 400 || a.status == 422, "{bad}: {a:?}");
    }
    let a = post(
        serde_json::json!({"name": "jazz", "description": "Uploaded", "files": ["tone600"], "default": true}),
    );
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        pbx.https("DELETE", "/api/v1/music/tone600", None, &h)
            .status,
        409
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
    let mut b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        440,
        false,
        "PCMU,PCMA",
    );
    hold_and_hear(&pbx, &mut a, &mut b, "102", 600.0);
    // The line-in becomes the default.
    let a2 = post(serde_json::json!({"name": "radio", "line_in": "tonein", "default": true}));
    assert!(a2.status == 400 || a2.status == 422, "two defaults: {a2:?}");
    edit_config(&pbx, |v| {
        v["music"] = serde_json::json!([
            {"name": "jazz", "files": ["tone600"]},
            {"name": "radio", "line_in": "tonein", "default": true}
        ]);
    });
    let mut c = phone_of(
        Kind::Linphone,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        false,
        "PCMU,PCMA",
    );
    hold_and_hear(&pbx, &mut a, &mut c, "103", 1800.0);
    assert!(
        pbx.log_text().contains("music on hold from the line-in"),
        "{}",
        pbx.log_text()
    );
}

/// `holder` calls `held`, holds it five seconds and hangs up; `held` heard `music`.
fn hold_and_hear(pbx: &Pbxd, holder: &mut Phone, held: &mut Phone, number: &str, music: f64) {
    let before = pbx.log_text().matches("call put on hold").count();
    ring_and_answer(holder, held, pbx, number);
    std::thread::sleep(Duration::from_secs(1));
    holder.command("hold", "");
    assert!(wait_until(T, || pbx
        .log_text()
        .matches("call put on hold")
        .count()
        > before));
    std::thread::sleep(Duration::from_secs(5));
    holder.command("hangup", "");
    closed_reason(held);
    closed_reason(holder);
    assert_heard_somewhere(held, music);
    holder.clear_events();
    held.clear_events();
    assert!(wait_until(T, || pbx.ctl_ok(&["calls"]).lines().count() == 1));
}
