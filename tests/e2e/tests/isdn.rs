//! Kerio's rewriting example (admin guide 7.3) end to end through a virtual span, with
//! libpri as the ISDN network on the span's D-channel socket and the test itself on
//! B-channel 1: the network calls 5550101, extension 201 (baresip) rings and answers,
//! audio flows both ways, the calling number arrives with prefix 9; then 201 dials
//! 95550199 and the network sees called 5550199 and calling 0101.

use e2e::*;
use libpri_peer::*;
use serde_json::json;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The network side's audio on one B-channel: sends a tone as A-law every 20 ms and
/// keeps what arrives (as linear samples), until told to stop.
struct Line {
    stop: Arc<AtomicBool>,
    heard: Arc<Mutex<Vec<i16>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Line {
    fn start(span: &Path, channel: u8, tone: f64) -> Line {
        let me = PathBuf::from(format!("{}.b{channel}.peer", span.display()));
        let box_side = PathBuf::from(format!("{}.b{channel}", span.display()));
        let _ = std::fs::remove_file(&me);
        let sock = UnixDatagram::bind(&me).unwrap();
        // Never blocks: pbxd reads a B-channel only while a call uses it.
        sock.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), heard.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            let start = Instant::now();
            let mut buf = [0u8; 512];
            // At most 60 s of audio, whatever happens.
            while !s.load(Ordering::Relaxed) && n < 3000 {
                let due = start + Duration::from_millis(20 * n);
                if Instant::now() >= due {
                    let frame: Vec<u8> = (0..160u64)
                        .map(|k| {
                            let t = (n * 160 + k) as f64 / 8000.0;
                            let v = (t * tone * std::f64::consts::TAU).sin() * 8000.0;
                            media::g711::linear_to_alaw(v as i16)
                        })
                        .collect();
                    let _ = sock.send_to(&frame, &box_side);
                    n += 1;
                }
                match sock.recv(&mut buf) {
                    Ok(k) => {
                        let mut h = h.lock().unwrap();
                        h.extend(buf[..k].iter().map(|a| media::g711::alaw_to_linear(*a)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            let _ = std::fs::remove_file(&me);
        });
        Line {
            stop,
            heard,
            thread: Some(thread),
        }
    }

    fn samples(&self) -> Vec<i16> {
        self.heard.lock().unwrap().clone()
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ev(p: &mut Peer, d: Duration, want: std::ffi::c_int) -> Option<PriEvent> {
    let mut got = None;
    p.serve(d, |_, e| {
        if let Some(e) = e {
            if e.e == want && got.is_none() {
                got = Some(e);
            }
        }
        got.is_some()
    });
    got
}

#[test]
fn kerio_rewriting_example_through_a_virtual_span() {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&[
        "extension",
        "add",
        "201",
        "--name",
        "Dana Novak",
        "--password",
        "Secret-201x",
    ]);
    pbx.ctl_ok(&["extension", "add", "202", "--password", "Secret-202x"]);
    // The phones first: libpri below must be served all the time once it runs.
    let mut p201 = phone(&pbx, "201", "Secret-201x", 440, true, "PCMU,PCMA");
    let p202 = phone(&pbx, "202", "Secret-202x", 440, false, "PCMU,PCMA");
    let dir = tempfile::tempdir().unwrap();
    let span = dir.path().join("span");
    let iface = json!({
        "name": "telco",
        "span": {"driver": "virtual", "path": span},
        "line": "e1",
        "switch_type": "euroisdn",
        "side": "user",
        "numbers": ["55501XX"],
        "called_digits": 4,
        "called_rewrite": {"strip": 2, "prefix": "2"},
        "calling_rewrite": {"strip": 0, "prefix": "9"}
    });
    let f = dir.path().join("telco.json");
    std::fs::write(&f, iface.to_string()).unwrap();
    pbx.ctl_ok(&["isdn", "set", f.to_str().unwrap()]);
    edit_config(&pbx, |v| {
        v["outbound_routes"] = json!([{"prefix": "9", "interfaces": ["telco"],
            "called_rewrite": {"strip": 1, "prefix": ""},
            "calling_rewrite": {"strip": 1, "prefix": "01"}}]);
    });
    // Bad input is refused with the field named, and nothing changes.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"name": "tel co", "span": {"driver": "virtual", "path": "x"}}"#,
    )
    .unwrap();
    let out = pbx.ctl(&["isdn", "set", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("name") && err.contains("span"),
        "{err}"
    );

    assert!(
        wait_until(Duration::from_secs(5), || span.exists()),
        "no span socket"
    );
    let mut net = Peer::connect(&span, PRI_NETWORK, PRI_SWITCH_EUROISDN_E1);
    // Both ends say the link is up (pbxctl asked twice a second meanwhile).
    let mut asked = Instant::now();
    let up = net.serve(Duration::from_secs(15), |p, _| {
        if !p.pri_up() || asked.elapsed() < Duration::from_millis(500) {
            return false;
        }
        asked = Instant::now();
        pbx.ctl_ok(&["isdn", "list"])
            .lines()
            .any(|l| l.starts_with("telco") && l.contains(" up "))
    });
    assert!(
        up,
        "D-channel not up: {}\n{}",
        pbx.ctl_ok(&["isdn", "list"]),
        libpri_log()
    );

    // In: the network calls 5550101 from 5550399 on B-channel 1.
    let line = Line::start(&span, 1, 1000.0);
    let call = net.call("5550101", "5550399", 1, true, true);
    let answered = ev(&mut net, Duration::from_secs(15), PRI_EVENT_ANSWER);
    assert!(
        answered.is_some(),
        "201 did not answer: {:?}\n{}",
        net.pri_events,
        pbx.log_text()
    );
    // Let audio flow, keeping libpri's timers running.
    net.serve(Duration::from_secs(3), |_, _| false);
    let heard = line.samples();
    assert!(heard.len() > 8000, "the line heard {} samples", heard.len());
    let tail = &heard[heard.len() - 8000..];
    let (p440, p1000) = (
        tone_power(tail, 8000, 440.0),
        tone_power(tail, 8000, 1000.0),
    );
    assert!(
        p440 > 10.0 * p1000,
        "the network should hear 201's 440 Hz: {p440} vs {p1000}"
    );
    net.hangup(call, 16);
    let mut closed = false;
    net.serve(PHONE_WAIT, |_, _| {
        closed = p201.events().iter().any(|e| e["type"] == "CALL_CLOSED");
        closed
    });
    assert!(closed, "201's call did not close: {:?}", p201.events());
    drop(line);
    assert_heard(&p201, 1000.0);
    // The calling number arrived with prefix 9, so 201 can call back.
    assert!(p201.log().contains("95550399"), "{}", p201.log());

    // Out: 201 dials 95550199; the network sees 5550199 from 0101.
    p201.clear_events();
    net.serve(Duration::from_millis(300), |_, _| false);
    dial(&mut p201, &pbx, "95550199");
    let ring = ev(&mut net, Duration::from_secs(15), PRI_EVENT_RING)
        .unwrap_or_else(|| panic!("no SETUP: {:?}\n{}", net.pri_events, pbx.log_text()));
    assert_eq!(ring.called, "5550199");
    assert_eq!(ring.calling, "0101");
    let line = Line::start(&span, ring.channel as u8, 1000.0);
    net.proceeding(ring.call, ring.channel);
    net.alerting(ring.call, ring.channel);
    net.answer(ring.call, ring.channel);
    let mut est = false;
    net.serve(PHONE_WAIT, |_, _| {
        est = p201
            .events()
            .iter()
            .any(|e| e["type"] == "CALL_ESTABLISHED");
        est
    });
    assert!(est, "201 never connected: {:?}", p201.events());
    net.serve(Duration::from_secs(2), |_, _| false);
    let before = line.samples();
    assert!(before.len() > 4000, "no audio on the outgoing call");
    // 201 presses 1 (RFC 4733 from baresip): the line hears 697 + 1209 Hz, which
    // 201's 440 Hz tone alone does not have.
    p201.command("sndcode", "1");
    net.serve(Duration::from_secs(1), |_, _| false);
    let after = line.samples();
    let keyed = &after[before.len()..];
    let quiet = &before[before.len() - keyed.len().min(before.len())..];
    for f in [697.0, 1209.0] {
        let (p, base) = (tone_power(keyed, 8000, f), tone_power(quiet, 8000, f));
        assert!(
            p > 100.0 * base.max(1.0),
            "{f} Hz: {p} after the key, {base} before"
        );
    }
    assert!(tone_power(keyed, 8000, 697.0) > 20.0 * tone_power(keyed, 8000, 941.0));
    // 201 hangs up: the network gets DISCONNECT with normal clearing.
    p201.command("hangup", "");
    let gone = ev(&mut net, Duration::from_secs(10), PRI_EVENT_HANGUP_REQ)
        .unwrap_or_else(|| panic!("no DISCONNECT: {:?}", net.pri_events));
    assert_eq!(gone.cause, 16);
    net.hangup(gone.call, 16);
    net.serve(Duration::from_secs(1), |_, _| false);
    assert!(
        wait_until(Duration::from_secs(5), || pbx
            .ctl_ok(&["calls"])
            .lines()
            .count()
            == 1),
        "{}",
        pbx.ctl_ok(&["calls"])
    );

    // The network gives up while 202 rings (5550102 -> 0102 -> 202): the gateway
    // cancels, the phone stops ringing and the span is left with no call.
    let c = net.call("5550102", "5550399", 2, true, true);
    let mut ringing = false;
    net.serve(PHONE_WAIT, |_, _| {
        ringing = p202.events().iter().any(|e| e["type"] == "CALL_INCOMING");
        ringing
    });
    assert!(ringing, "202 never rang: {:?}", p202.events());
    net.hangup(c, 16);
    let mut closed = false;
    net.serve(PHONE_WAIT, |_, _| {
        closed = p202.events().iter().any(|e| e["type"] == "CALL_CLOSED");
        closed
    });
    assert!(closed, "202 still rings: {:?}", p202.events());
    let span_calls = |pbx: &Pbxd| {
        pbx.ctl_ok(&["isdn", "list"])
            .lines()
            .find(|l| l.starts_with("telco"))
            .and_then(|l| l.split_whitespace().nth(6).map(str::to_string))
    };
    let mut idle = false;
    net.serve(Duration::from_secs(5), |_, _| {
        idle = span_calls(&pbx).as_deref() == Some("0");
        idle
    });
    assert!(idle, "{}", pbx.ctl_ok(&["isdn", "list"]));

    // Only the exchange core may place calls on the span: an INVITE sent straight to
    // the gateway from elsewhere on the box gets no answer and no SETUP.
    let peers: serde_json::Value = serde_json::from_str(&pbx.ctl_ok(&["peers", "--json"])).unwrap();
    let gw = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "telco")
        .and_then(|p| p["address"].as_str())
        .unwrap_or_else(|| panic!("no gateway address: {peers}"))
        .to_string();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = sock.local_addr().unwrap();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
    let invite = format!(
        "INVITE sip:5550100@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKsneak\r\nMax-Forwards: 70\r\nFrom: <sip:201@{me}>;tag=x\r\nTo: <sip:5550100@{gw}>\r\nCall-ID: sneak@test\r\nCSeq: 1 INVITE\r\nContact: <sip:201@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), &gw).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut rung = false;
    let mut answered = false;
    let mut buf = [0u8; 2048];
    net.serve(Duration::from_secs(2), |_, e| {
        rung |= e.is_some_and(|e| e.e == PRI_EVENT_RING);
        answered |= sock.recv(&mut buf).is_ok();
        false
    });
    assert!(!rung && !answered, "the gateway took a call from {me}");

    // A DAHDI span on a box without the card (or span) says why it is down in its
    // state, and the virtual span goes on working beside it.
    let card = dir.path().join("card.json");
    std::fs::write(
        &card,
        json!({"name": "card", "span": {"driver": "dahdi", "span": 99}, "line": "e1"}).to_string(),
    )
    .unwrap();
    pbx.ctl_ok(&["isdn", "set", card.to_str().unwrap()]);
    let said = wait_until(Duration::from_secs(5), || {
        pbx.ctl_ok(&["isdn", "list"]).lines().any(|l| {
            l.starts_with("card")
                && l.contains(" down ")
                && (l.contains("is DAHDI loaded") || l.contains("no channels on span 99"))
        })
    });
    assert!(said, "{}", pbx.ctl_ok(&["isdn", "list"]));
    let telco_up = net.serve(Duration::from_secs(3), |p, _| p.pri_up());
    assert!(
        telco_up
            && pbx
                .ctl_ok(&["isdn", "list"])
                .lines()
                .any(|l| l.starts_with("telco") && l.contains(" up "))
    );
}

/// A box with extension 201 (a phone that answers by itself) behind an E1 virtual span
/// named telco, user side; returns the box, the phone and the span's D-channel path.
fn span_box(dir: &Path) -> (Pbxd, Phone, PathBuf) {
    let pbx = Pbxd::start();
    pbx.ctl_ok(&["extension", "add", "201", "--password", "Secret-201x"]);
    let p201 = phone(&pbx, "201", "Secret-201x", 440, true, "PCMU,PCMA");
    let span = dir.join("span");
    let iface = json!({
        "name": "telco",
        "span": {"driver": "virtual", "path": span},
        "line": "e1",
        "switch_type": "euroisdn",
        "side": "user",
        "numbers": ["55501XX"],
        "called_digits": 3,
    });
    let f = dir.join("telco.json");
    std::fs::write(&f, iface.to_string()).unwrap();
    pbx.ctl_ok(&["isdn", "set", f.to_str().unwrap()]);
    assert!(
        wait_until(Duration::from_secs(5), || span.exists()),
        "no span socket"
    );
    (pbx, p201, span)
}

/// The network sends SETUP the moment its data link is up (libpri does, and telcos do
/// after a line restart), both when the box's gateway starts with the network and
/// when it has been calling into a dead line for a while (its SABMEs unanswered):
/// the call is answered, not lost to the link's set-up. (It was: the box's SABME,
/// retransmitted after the network's link was up, reset it and lost the SETUP.)
#[test]
fn a_setup_at_link_up_is_answered() {
    for wait_before_connecting in [Duration::ZERO, Duration::from_secs(5)] {
        let dir = tempfile::tempdir().unwrap();
        let (pbx, p201, span) = span_box(dir.path());
        std::thread::sleep(wait_before_connecting);
        let mut net = Peer::connect(&span, PRI_NETWORK, PRI_SWITCH_EUROISDN_E1);
        let line = Line::start(&span, 1, 1000.0);
        let mut call = None;
        let mut answered = false;
        net.serve(Duration::from_secs(20), |p, e| {
            if let Some(e) = e {
                if e.e == PRI_EVENT_DCHAN_UP && call.is_none() {
                    call = Some(p.call("5550201", "5550399", 1, true, true));
                }
                answered |= e.e == PRI_EVENT_ANSWER;
            }
            answered
        });
        assert!(
            answered,
            "after {wait_before_connecting:?}: the call at link-up was not answered: {:?}\n{}\n{}",
            net.pri_events,
            libpri_log(),
            pbx.log_text()
        );
        assert!(p201.wait_event("CALL_ESTABLISHED", PHONE_WAIT).is_some());
        net.serve(Duration::from_secs(1), |_, _| false);
        drop(line);
        net.hangup(call.unwrap(), 16);
        let mut closed = false;
        net.serve(PHONE_WAIT, |_, _| {
            closed = p201.events().iter().any(|e| e["type"] == "CALL_CLOSED");
            closed
        });
        assert!(closed, "201's call did not close: {:?}", p201.events());
    }
}

/// Hold and transfer across an ISDN line (libpri as the network): the network calls
/// 201 (pjsua2, answering by itself); 201 holds, and the network hears music on hold;
/// 201 resumes, then transfers the call blind to 202 (baresip), and the network hears
/// 202's tone. The history shows the call from the line, answered by 202.
#[test]
fn hold_and_transfer_across_an_isdn_line() {
    let dir = tempfile::tempdir().unwrap();
    let (pbx, p201, span) = span_box(dir.path());
    drop(p201);
    pbx.ctl_ok(&["extension", "add", "202", "--password", "Secret-202x"]);
    let mut p201 = phone_of(
        Kind::Pjsua2,
        &pbx,
        "201",
        "Secret-201x",
        440,
        true,
        "PCMA,PCMU",
    );
    let p202 = phone_of(
        Kind::Baresip,
        &pbx,
        "202",
        "Secret-202x",
        1400,
        true,
        "PCMU,PCMA",
    );
    let mut net = Peer::connect(&span, PRI_NETWORK, PRI_SWITCH_EUROISDN_E1);
    let up = net.serve(Duration::from_secs(15), |p, _| p.pri_up());
    assert!(up, "D-channel not up: {}", libpri_log());
    let line = Line::start(&span, 1, 1000.0);
    let call = net.call("5550201", "5550399", 1, true, true);
    assert!(
        ev(&mut net, Duration::from_secs(15), PRI_EVENT_ANSWER).is_some(),
        "201 did not answer: {}",
        pbx.log_text()
    );
    // The network's tone reaches 201, 201's reaches the network.
    net.serve(Duration::from_secs(2), |_, _| false);
    let dominant = |tail: &[i16]| {
        TONES
            .iter()
            .copied()
            .max_by(|a, b| tone_power(tail, 8000, *a).total_cmp(&tone_power(tail, 8000, *b)))
            .unwrap()
    };
    let last_second = |line: &Line| {
        let s = line.samples();
        s[s.len().saturating_sub(8000)..].to_vec()
    };
    assert_eq!(dominant(&last_second(&line)), 440.0);
    // Hold: the line hears the music.
    p201.command("hold", "");
    net.serve(Duration::from_secs(2), |_, _| false);
    assert_eq!(
        dominant(&last_second(&line)),
        MUSIC_TONE,
        "music on hold to the ISDN caller"
    );
    p201.command("resume", "");
    net.serve(Duration::from_secs(2), |_, _| false);
    assert_eq!(
        dominant(&last_second(&line)),
        440.0,
        "201 again after resume"
    );
    // Blind transfer to 202.
    p201.command("transfer", &format!("sip:202@{}", pbx.sip));
    let mut established = false;
    net.serve(Duration::from_secs(15), |_, _| {
        established = p202
            .events()
            .iter()
            .any(|e| e["type"] == "CALL_ESTABLISHED");
        established
    });
    assert!(
        established,
        "202 never answered: {:?}\n{}",
        p202.events(),
        pbx.log_text()
    );
    net.serve(Duration::from_secs(2), |_, _| false);
    assert_eq!(
        dominant(&last_second(&line)),
        1400.0,
        "the line hears 202 after the transfer"
    );
    assert!(
        p201.wait_event("CALL_CLOSED", PHONE_WAIT).is_some(),
        "201 was not hung up"
    );
    net.hangup(call, 16);
    let mut closed = false;
    net.serve(PHONE_WAIT, |_, _| {
        closed = p202.events().iter().any(|e| e["type"] == "CALL_CLOSED");
        closed
    });
    assert!(closed, "202's call did not close");
    drop(line);
    let h = pbx.admin_session("Adm1n-Isdn-Hist!");
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut rows = serde_json::Value::Null;
    assert!(wait_until(Duration::from_secs(10), || {
        rows = pbx.https("GET", "/api/v1/history", None, &h).json();
        rows.as_array().is_some_and(|r| !r.is_empty())
    }));
    let r = &rows[0];
    assert_eq!(
        [
            &r["trunk"],
            &r["direction"],
            &r["answered_by"],
            &r["transferred_by"]
        ],
        ["telco", "inbound", "202", "201"],
        "{r}"
    );
}
