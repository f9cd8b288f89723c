//! Call queues (Kerio 14) end to end with real phones of every family. A round-robin
//! queue hands callers to its three agents (pjsua2, baresip, linphone) in turn, and
//! each caller and agent hear each other. A ring-all queue: an agent logs in with the
//! code and hears so; a caller waiting hears its place in the queue; both agents ring
//! and the first to take the call hears the queue's announcement before the caller;
//! in its wrap-up time it is not rung for the next caller, who gives up and counts as
//! abandoned; the agent logs out with the other code.

use e2e::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const PROMPTS: &str = "/usr/share/asterisk/sounds/en";

fn prompt(name: &str) -> std::path::PathBuf {
    Path::new(PROMPTS).join(format!("{name}.wav"))
}

fn pbx_with_queue(queue: serde_json::Value) -> Pbxd {
    let pbx = Pbxd::start();
    for n in ["101", "102", "103", "104"] {
        pbx.ctl_ok(&["extension", "add", n, "--password", &format!("Secret-{n}x")]);
    }
    edit_config(&pbx, |v| v["queues"] = json!([queue]));
    pbx
}

fn live(pbx: &Pbxd, h: &[&str]) -> serde_json::Value {
    pbx.https("GET", "/api/v1/status/queues", None, h).json()[0].clone()
}

#[test]
fn round_robin_hands_callers_to_the_agents_in_turn() {
    let pbx = pbx_with_queue(json!({
        "number": "700", "description": "Sales", "strategy": "round_robin",
        "agents": ["102", "103", "104"], "ring_seconds": 15
    }));
    let mut a = phone_of(
        Kind::Pjsua2,
        &pbx,
        "101",
        "Secret-101x",
        440,
        false,
        "PCMU,PCMA",
    );
    let agents = [
        phone_of(
            Kind::Pjsua2,
            &pbx,
            "102",
            "Secret-102x",
            1000,
            true,
            "PCMU,PCMA",
        ),
        phone_of(
            Kind::Baresip,
            &pbx,
            "103",
            "Secret-103x",
            1400,
            true,
            "PCMA,PCMU",
        ),
        phone_of(
            Kind::Linphone,
            &pbx,
            "104",
            "Secret-104x",
            1000,
            true,
            "PCMU,PCMA",
        ),
    ];
    for (round, expected) in [0, 1, 2, 0].into_iter().enumerate() {
        for p in &agents {
            p.clear_events();
        }
        a.clear_events();
        dial(&mut a, &pbx, "700");
        let got = agents[expected].wait_event("CALL_ESTABLISHED", T);
        assert!(
            got.is_some(),
            "call {round}: {} was not handed the caller: {}\n{}",
            agents[expected].name,
            pbx.ctl_ok(&["queue"]),
            pbx.log_text()
        );
        assert!(a.wait_event("CALL_ESTABLISHED", T).is_some());
        std::thread::sleep(Duration::from_secs(3));
        a.command("hangup", "");
        closed_reason(&a);
        closed_reason(&agents[expected]);
        for (i, p) in agents.iter().enumerate() {
            if i != expected {
                assert!(
                    p.events().iter().all(|e| e["type"] != "CALL_INCOMING"),
                    "call {round}: {} rang too",
                    p.name
                );
            }
        }
        // Caller and agent heard each other.
        let heard_by_agent = tone_powers(&agents[expected], 0.5, 1.5);
        let heard_by_caller = tone_powers(&a, 0.5, 1.5);
        let agent_tone = [1000.0, 1400.0, 1000.0][expected];
        let k = TONES.iter().position(|t| *t == agent_tone).unwrap();
        assert!(
            heard_by_agent[0] > 1e9,
            "call {round}: the agent did not hear the caller: {heard_by_agent:?}"
        );
        assert!(
            heard_by_caller[k] > 1e9,
            "call {round}: the caller did not hear the agent: {heard_by_caller:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let list = pbx.ctl_ok(&["queue"]);
    println!("{list}");
    assert!(list.contains("answered 4, abandoned 0"), "{list}");
    for (ext, n) in [("102", 2), ("103", 1), ("104", 1)] {
        assert!(
            list.lines()
                .any(|l| l.contains(&format!("agent  {ext}"))
                    && l.contains(&format!("answered {n} "))),
            "{ext} answered {n}: {list}"
        );
    }
}

#[test]
fn ring_all_with_a_logged_in_agent_announcements_wrap_up_and_an_abandoned_caller() {
    let pbx = pbx_with_queue(json!({
        "number": "701", "description": "Support", "strategy": "ring_all",
        "agents": ["103"], "dynamic_agents": true, "login_code": "7011", "logout_code": "7012",
        "wrapup_seconds": 60, "position_seconds": 30, "agent_sound": "queue-reporthold",
        "record": true
    }));
    let h = pbx.admin_session("Adm1n-Queues!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut a = phone_of(
        Kind::Baresip,
        &pbx,
        "101",
        "Secret-101x",
        440,
        false,
        "PCMU,PCMA",
    );
    let mut b = phone_of(
        Kind::Pjsua2,
        &pbx,
        "102",
        "Secret-102x",
        1000,
        false,
        "PCMA,PCMU",
    );
    let c = phone_of(
        Kind::Linphone,
        &pbx,
        "103",
        "Secret-103x",
        1400,
        false,
        "PCMU,PCMA",
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
    // 102 logs in with the code: "agent logged in", and the box hangs up.
    dial(&mut b, &pbx, "7011");
    assert!(b.wait_event("CALL_ESTABLISHED", T).is_some());
    closed_reason(&b);
    let loginok = speech_match(&b, &prompt("agent-loginok"), 1, 1000.0);
    println!("login heard: {loginok:.2}");
    assert!(loginok > 0.8, "the login was not confirmed: {loginok:.2}");
    let q = live(&pbx, &h);
    assert_eq!(q["agents"][1]["extension"], "102", "{q}");
    assert_eq!(q["agents"][1]["dynamic"], true, "{q}");
    b.clear_events();

    // 101 calls: both agents ring; the caller hears that it is next, then music.
    dial(&mut a, &pbx, "701");
    assert!(a.wait_event("CALL_ESTABLISHED", T).is_some());
    assert!(
        b.wait_event("CALL_INCOMING", T).is_some(),
        "{}",
        pbx.log_text()
    );
    assert!(c.wait_event("CALL_INCOMING", T).is_some());
    let q = live(&pbx, &h);
    assert_eq!(q["waiting"][0]["number"], "101", "{q}");
    assert_eq!(q["waiting"][0]["ringing"], json!(["103", "102"]), "{q}");
    std::thread::sleep(Duration::from_secs(5));
    // 102 takes it: 103 stops ringing; 102 hears "hold time" (the queue's
    // announcement), then the caller.
    b.command("accept", "");
    assert!(b.wait_event("CALL_ESTABLISHED", T).is_some());
    closed_reason(&c);
    std::thread::sleep(Duration::from_secs(5));
    a.command("hangup", "");
    closed_reason(&a);
    closed_reason(&b);
    let next = speech_match(&a, &prompt("queue-youarenext"), 1, 1000.0);
    let whisper = speech_match(&b, &prompt("queue-reporthold"), 1, 440.0);
    println!("announcements: caller {next:.2}, agent {whisper:.2}");
    assert!(next > 0.8, "the caller did not hear its place: {next:.2}");
    assert!(
        whisper > 0.8,
        "the agent did not hear the queue: {whisper:.2}"
    );
    let pb = tone_powers(&b, 0.5, 2.0);
    let pa = tone_powers(&a, 0.5, 2.0);
    assert!(pb[0] > 1e9, "the agent did not hear the caller: {pb:?}");
    assert!(pa[1] > 1e9, "the caller did not hear the agent: {pa:?}");
    // The call was recorded: one stereo file, the caller's 440 Hz on the left and the
    // agent's 1000 Hz on the right; the API lists it and gives the same file.
    let rec_dir = pbx.data.path().join("recordings");
    let wavs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&rec_dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .collect()
    };
    assert!(
        wait_until(T, || wavs().len() == 1),
        "no recording: {:?}\n{}",
        wavs(),
        pbx.log_text()
    );
    let file = wavs().pop().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2, "stereo");
    let frames: Vec<(i16, i16)> = bytes[44..]
        .chunks_exact(4)
        .map(|f| {
            (
                i16::from_le_bytes([f[0], f[1]]),
                i16::from_le_bytes([f[2], f[3]]),
            )
        })
        .collect();
    let seconds = frames.len() as f64 / 8000.0;
    println!("recorded {seconds:.1} s in {}", file.display());
    assert!(seconds > 4.0, "{seconds}");
    let tail = &frames[frames.len() - 16000..frames.len() - 4000];
    let left: Vec<i16> = tail.iter().map(|f| f.0).collect();
    let right: Vec<i16> = tail.iter().map(|f| f.1).collect();
    let (l440, l1000) = (
        tone_power(&left, 8000, 440.0),
        tone_power(&left, 8000, 1000.0),
    );
    let (r440, r1000) = (
        tone_power(&right, 8000, 440.0),
        tone_power(&right, 8000, 1000.0),
    );
    println!("left 440 {l440:.2e} 1000 {l1000:.2e}; right 440 {r440:.2e} 1000 {r1000:.2e}");
    assert!(
        l440 > 100.0 * l1000.max(1.0),
        "the caller is not on the left"
    );
    assert!(
        r1000 > 100.0 * r440.max(1.0),
        "the agent is not on the right"
    );
    let name = file.file_stem().unwrap().to_str().unwrap().to_string();
    assert!(name.contains("-701-101-102-"), "{name}");
    let listed = pbx.https("GET", "/api/v1/recordings", None, &h).json();
    assert_eq!(listed[0]["name"], name.as_str(), "{listed}");
    assert_eq!(
        (listed[0]["queue"].as_str(), listed[0]["agent"].as_str()),
        (Some("701"), Some("102"))
    );
    let got = pbx.https("GET", &format!("/api/v1/recordings/{name}"), None, &h);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-length"), Some(bytes.len().to_string()));
    let bad = pbx.https("GET", "/api/v1/recordings/..%2Fconfig", None, &h);
    assert_eq!(bad.status, 404, "{bad:?}");

    // 104 calls within 102's wrap-up: only 103 rings; 104 gives up.
    b.clear_events();
    c.clear_events();
    dial(&mut d, &pbx, "701");
    assert!(d.wait_event("CALL_ESTABLISHED", T).is_some());
    assert!(c.wait_event("CALL_INCOMING", T).is_some());
    std::thread::sleep(Duration::from_secs(3));
    let q = live(&pbx, &h);
    assert_eq!(q["agents"][1]["state"], "wrap-up", "{q}");
    assert_eq!(q["waiting"][0]["ringing"], json!(["103"]), "{q}");
    assert!(b.events().iter().all(|e| e["type"] != "CALL_INCOMING"));
    d.command("hangup", "");
    closed_reason(&d);
    closed_reason(&c);
    let q = live(&pbx, &h);
    println!("{q}");
    assert_eq!(
        (q["answered"].as_u64(), q["abandoned"].as_u64()),
        (Some(1), Some(1)),
        "{q}"
    );
    assert_eq!(q["agents"][0]["missed"], 0, "{q}");
    assert_eq!(q["agents"][1]["answered"], 1, "{q}");
    assert!(q["waiting"].as_array().unwrap().is_empty());

    // 102 logs out with the other code.
    dial(&mut b, &pbx, "7012");
    assert!(b.wait_event("CALL_ESTABLISHED", T).is_some());
    closed_reason(&b);
    let off = speech_match(&b, &prompt("agent-loggedoff"), 1, 1000.0);
    assert!(off > 0.8, "the logout was not confirmed: {off:.2}");
    let q = live(&pbx, &h);
    assert_eq!(q["agents"].as_array().unwrap().len(), 1, "{q}");
}
