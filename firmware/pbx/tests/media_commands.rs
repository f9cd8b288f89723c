//! The exchange with no media sockets at all: spare endpoints are numbers the rig hands
//! in, and what the exchange does to them is the list of commands it emits.

mod common;

use common::*;
use media::{Command, SideConfig};
use pbx::Settings;
use std::time::Duration;

/// The commands since the last look, as short text: `Take 1`, `Connect 1 2`, ...
fn commands(rig: &mut Rig) -> Vec<String> {
    rig.commands
        .drain(..)
        .map(|c| match c {
            Command::Take(id) => format!("Take {id}"),
            Command::SetRemote(id, SideConfig { remote, latch }) => {
                format!("SetRemote {id} {remote:?} {latch}")
            }
            Command::Connect { a, b, .. } => format!("Connect {a} {b}"),
            Command::Disconnect(id) => format!("Disconnect {id}"),
            Command::Play { id, looped, .. } => format!("Play {id} looped={looped}"),
            Command::PlayMusic { id, name, .. } => format!("PlayMusic {id} {name}"),
            Command::SendDigit { id, ev, .. } => format!("SendDigit {id} {ev}"),
            Command::PlayPrompt { id, name, .. } => format!("PlayPrompt {id} {name}"),
            Command::PlayFile {
                id, path, fallback, ..
            } => format!(
                "PlayFile {id} {} or {}",
                path.display(),
                fallback.unwrap_or_default()
            ),
            Command::Record { id, path, listen } => {
                format!("Record {id} {} {}", path.display(), listen.record)
            }
            Command::StopRecording(id, _) => format!("StopRecording {id}"),
            Command::Stop(id) => format!("Stop {id}"),
            Command::Listen(id, _) => format!("Listen {id}"),
            Command::Close(id) => format!("Close {id}"),
            Command::Join { id, room, pt, alaw } => format!("Join {id} {room} {pt} {alaw}"),
            Command::Leave(id) => format!("Leave {id}"),
            Command::Mute(id, m) => format!("Mute {id} {m}"),
            Command::RoomTone { room, clip } => format!("RoomTone {room} {}", clip.len()),
            Command::Srtp(id, keys) => format!("Srtp {id} {}", keys.is_some()),
            Command::WebRtc(id, p) => format!("WebRtc {id} {}", p.is_some()),
        })
        .collect()
}

fn in_dialog(method: &str, cseq: u32, tag: &str, branch: &str, body: &str) -> String {
    let ty = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!("{method} sip:102@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch={branch};rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\n{ty}Content-Length: {}\r\n\r\n{body}", body.len())
}

fn m_port(msg: &str) -> u16 {
    let l = msg.lines().find(|l| l.starts_with("m=audio ")).unwrap();
    l.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_call_takes_two_endpoints_connects_holds_resumes_and_closes_them() {
    let mut rig = Rig::without_sockets(Settings::default(), 100);
    assert_eq!(
        rig.spares_made, 64,
        "the pool is filled before the first input"
    );
    let inv = start_call(&mut rig);
    // The spares are handed out last first: the caller's is 64, the callee's 63; each
    // SDP carries its own endpoint's port.
    assert_eq!(m_port(&inv), 40000 + 2 * 63, "{inv}");
    assert_eq!(
        commands(&mut rig),
        [
            "Take 64",
            "SetRemote 64 Some(127.0.0.1:9000) true",
            "Take 63"
        ]
    );
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &SDP.replace("9000", "9002")),
    );
    let ok = rig.take(A).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert_eq!(m_port(&ok), 40000 + 2 * 64);
    assert_eq!(
        commands(&mut rig),
        ["SetRemote 63 Some(127.0.0.1:9002) true", "Connect 64 63"]
    );
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &in_dialog("ACK", 2, &tag, "z9hG4bKack2", ""));

    // A holds: B's endpoint plays the music in a loop; nothing goes to B.
    let held = SDP.replace("a=sendrecv", "a=sendonly");
    rig.send(A, &in_dialog("INVITE", 3, &tag, "z9hG4bKhold", &held));
    assert!(rig.take(A).pop().unwrap().contains("a=recvonly"));
    rig.send(A, &in_dialog("ACK", 3, &tag, "z9hG4bKack3", ""));
    let got = commands(&mut rig);
    assert!(got.contains(&"PlayMusic 63 system".to_string()), "{got:?}");
    assert!(!got.iter().any(|c| c.starts_with("Close")), "{got:?}");

    // A resumes: the two are connected again.
    rig.send(A, &in_dialog("INVITE", 4, &tag, "z9hG4bKres", SDP));
    assert!(rig.take(A).pop().unwrap().contains("a=sendrecv"));
    rig.send(A, &in_dialog("ACK", 4, &tag, "z9hG4bKack4", ""));
    let got = commands(&mut rig);
    assert!(got.contains(&"Connect 64 63".to_string()), "{got:?}");

    // A hangs up: both endpoints are closed, and the pool is topped up again.
    rig.send(A, &in_dialog("BYE", 5, &tag, "z9hG4bKbye", ""));
    let mut got = commands(&mut rig);
    got.sort();
    assert_eq!(got, ["Close 63", "Close 64"]);
    assert_eq!(rig.spares_made, 66);
}

#[test]
fn a_call_with_no_spare_endpoint_is_refused_with_503() {
    let mut rig = Rig::without_sockets(Settings::default(), 0);
    send_authed_invite(&mut rig, SDP);
    let got = rig.take(A);
    let refusal = got.last().unwrap();
    assert!(refusal.starts_with("SIP/2.0 503 "), "{got:?}");
    assert_eq!(
        header(refusal, "Via").unwrap(),
        format!("SIP/2.0/UDP {A};branch=z9hG4bKinv2;rport=7001;received=127.0.0.1")
    );
    assert_eq!(header(refusal, "Call-ID"), Some("call-1"));
    assert_eq!(header(refusal, "CSeq"), Some("2 INVITE"));
    assert!(header(refusal, "To").unwrap().contains("tag="));
    assert!(rig.take(B).is_empty(), "102 is not rung without media");
    assert!(rig.pbx.calls(rig.now).is_empty());
    assert!(commands(&mut rig).is_empty());
}

/// The rig's configuration with 102 sending callers to voicemail after 5 s.
fn voicemail_after_5s() -> config::Config {
    let mut cfg = config();
    let e = cfg
        .extensions
        .iter_mut()
        .find(|e| e.number == "102")
        .unwrap();
    e.no_answer_seconds = 5;
    e.forwarding.push(config::ForwardRule {
        cause: config::ForwardCause::NoAnswer,
        origin: config::CallOrigin::Any,
        to: config::VOICEMAIL.into(),
    });
    cfg
}

/// 102 does not answer and its rule sends the caller to voicemail: the caller is
/// answered by the box, hears the greeting and the beep, is recorded into 102's box
/// until `#`, hears that the message is saved and goodbye, and is hung up.
#[test]
fn no_answer_sends_the_caller_to_voicemail_which_records_until_hash() {
    let cfg = voicemail_after_5s();
    let settings = Settings {
        voicemail_dir: "/data/voicemail".into(),
        ..Settings::default()
    };
    let mut rig = Rig::without_sockets_with(settings, cfg, 100);
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    assert!(rig.take(A)[0].starts_with("SIP/2.0 180"));
    commands(&mut rig);
    rig.advance(Duration::from_secs(5));
    // 102 stops ringing; the box answers the caller itself.
    let cancel = rig.take(B);
    assert!(
        cancel.iter().any(|m| m.starts_with("CANCEL ")),
        "{cancel:?}"
    );
    let ok = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap();
    assert_eq!(header(&ok, "CSeq"), Some("2 INVITE"));
    assert!(
        header(&ok, "Content-Type") == Some("application/sdp"),
        "{ok}"
    );
    assert_eq!(
        m_port(&ok),
        40000 + 2 * 64,
        "the caller's own endpoint answers"
    );
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &in_dialog("ACK", 2, &tag, "z9hG4bKack2", ""));
    let got = commands(&mut rig);
    assert!(got.contains(&"Disconnect 64".to_string()), "{got:?}");
    assert!(got.contains(&"Listen 64".to_string()), "{got:?}");
    assert_eq!(
        got.last().unwrap(),
        "PlayFile 64 /data/voicemail/102/greeting-unavailable.wav or vm-intro",
        "the user's greeting, else the invitation: {got:?}"
    );
    let done = |rig: &mut Rig| {
        rig.pbx
            .handle_media_event(rig.now, media::Event::PlayDone { endpoint: 64 });
        rig.drain();
        commands(rig)
    };
    assert_eq!(done(&mut rig), ["PlayPrompt 64 beep"]);
    let rec = done(&mut rig);
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert!(
        rec[0].starts_with("Record 64 /data/voicemail/102/")
            && rec[0].ends_with("-1-101.wav 1440000"),
        "{rec:?}"
    );
    // The caller talks, then presses # (RFC 4733, seen by its endpoint).
    rig.advance(Duration::from_secs(20));
    assert!(rig.take(A).is_empty(), "three minutes to talk");
    rig.pbx.handle_media_event(
        rig.now,
        media::Event::Dtmf {
            endpoint: 64,
            digit: '#',
            inband: false,
        },
    );
    rig.drain();
    assert_eq!(
        commands(&mut rig),
        ["StopRecording 64", "PlayPrompt 64 vm-msgsaved"]
    );
    assert_eq!(done(&mut rig), ["PlayPrompt 64 vm-goodbye"]);
    let last = done(&mut rig);
    assert!(last.contains(&"Close 64".to_string()), "{last:?}");
    let bye = rig.take(A).pop().unwrap();
    assert!(bye.starts_with("BYE sip:101@"), "{bye}");
    assert_eq!(header(&bye, "Call-ID"), Some("call-1"));
    assert!(header(&bye, "From")
        .unwrap()
        .contains(&format!("tag={tag}")));
    let rec = rig.pbx.poll_record().expect("a history record");
    assert_eq!(rec.answered_by, "voicemail");
}

/// Early media from the phone that rang (a 183 with SDP) already gave the caller an
/// answer: voicemail's 200 repeats it, byte for byte (RFC 3261 13.2.1). A caller
/// without an offer (late offer) is not sent to voicemail and hears why instead.
#[test]
fn voicemail_repeats_an_early_answer_and_skips_late_offers() {
    let cfg = voicemail_after_5s();
    let mut rig = Rig::without_sockets_with(Settings::default(), cfg.clone(), 100);
    let inv = start_call(&mut rig);
    rig.send(
        B,
        &answer(
            &inv,
            "183 Session Progress",
            "callee",
            &SDP.replace("9000", "9002"),
        ),
    );
    let early = rig.take(A).pop().unwrap();
    assert!(early.starts_with("SIP/2.0 183"), "{early}");
    rig.advance(Duration::from_secs(5));
    let ok = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap();
    let body = |m: &str| m.split_once("\r\n\r\n").unwrap().1.to_string();
    assert_eq!(body(&ok), body(&early));

    let mut rig = Rig::without_sockets_with(Settings::default(), cfg, 100);
    send_authed_invite(&mut rig, "");
    assert!(rig.take(B).iter().any(|m| m.starts_with("INVITE ")));
    rig.advance(Duration::from_secs(5));
    let got = rig.take(A);
    let last = got.last().unwrap();
    assert!(last.starts_with("SIP/2.0 480 "), "{got:?}");
    assert!(!got.iter().any(|m| m.starts_with("SIP/2.0 200")), "{got:?}");
}

/// The voicemail menu after five wrong PINs within a quarter of an hour (two calls):
/// the next call to the box hears "login incorrect" and goodbye, and no PIN prompt.
#[test]
fn five_wrong_voicemail_pins_lock_the_box_for_a_while() {
    let mut cfg = config();
    cfg.extensions[0].service_pin = "2468".into();
    let mut rig = Rig::without_sockets_with(Settings::default(), cfg, 100);
    // The endpoint of the call the box answered: the one it asks for the PIN on.
    let prompt_ep = |rig: &mut Rig| -> (u64, String) {
        let got = commands(rig);
        let first = got
            .iter()
            .find(|c| c.starts_with("PlayPrompt "))
            .unwrap_or_else(|| panic!("{got:?}"))
            .clone();
        let mut w = first.split(' ');
        w.next();
        let ep: u64 = w.next().unwrap().parse().unwrap();
        (ep, w.next().unwrap().to_string())
    };
    let key = |rig: &mut Rig, ep: u64, keys: &str| {
        for d in keys.chars() {
            rig.pbx.handle_media_event(
                rig.now,
                media::Event::Dtmf {
                    endpoint: ep,
                    digit: d,
                    inband: false,
                },
            );
            rig.drain();
        }
    };
    for call in ["vm-1", "vm-2"] {
        call_as(&mut rig, "101", A, "*97", call);
        let (ep, first) = prompt_ep(&mut rig);
        assert_eq!(first, "agent-pass");
        key(&mut rig, ep, "1111#1111#1111#");
        rig.take(A);
        commands(&mut rig);
    }
    call_as(&mut rig, "101", A, "*97", "vm-3");
    let (_, first) = prompt_ep(&mut rig);
    assert_eq!(first, "vm-incorrect", "the box is locked");
    // A quarter of an hour later it asks for the PIN again.
    rig.advance(Duration::from_secs(15 * 60));
    rig.take(A);
    commands(&mut rig);
    call_as(&mut rig, "101", A, "*97", "vm-4");
    let (_, first) = prompt_ep(&mut rig);
    assert_eq!(first, "agent-pass");
}

/// A ring group whose fallback is another extension's box (`voicemail:102`): nobody
/// can take the call, and the box answers with 102's greeting.
#[test]
fn a_ring_group_falls_back_to_a_voicemail_box() {
    let mut cfg = config();
    let mut g = config::RingGroup::new("300", &["102", "103"]);
    g.timeout = 5;
    g.fallback = "voicemail:102".into();
    cfg.ring_groups.push(g);
    cfg.validate().unwrap();
    let settings = Settings {
        voicemail_dir: "/data/voicemail".into(),
        ..Settings::default()
    };
    let mut rig = Rig::without_sockets_with(settings, cfg, 100);
    // No member is registered: the group fails at once and falls back.
    call_as(&mut rig, "101", A, "300", "rg-1");
    rig.advance(Duration::from_secs(6));
    let ok = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .expect("the box answered");
    assert_eq!(header(&ok, "Call-ID"), Some("rg-1"));
    let got = commands(&mut rig);
    assert!(
        got.iter()
            .any(|c| c.ends_with("/data/voicemail/102/greeting-unavailable.wav or vm-intro")),
        "{got:?}"
    );
    // A box that does not exist is refused by validation.
    let mut bad = config();
    let mut g = config::RingGroup::new("300", &["102"]);
    g.fallback = "voicemail:109".into();
    bad.ring_groups.push(g);
    assert!(bad.validate().is_err());
}

/// The endpoint that joined room 800 in µ-law, from the commands.
fn joined(got: &[String]) -> String {
    got.iter()
        .find_map(|c| c.strip_prefix("Join ")?.strip_suffix(" 800 0 false"))
        .unwrap_or_else(|| panic!("nobody joined: {got:?}"))
        .to_string()
}

#[test]
fn callers_join_a_conference_room_up_to_its_limit_and_leave_with_a_tone() {
    let mut cfg = config();
    cfg.conferences.push(config::Conference {
        number: "800".into(),
        description: String::new(),
        pin: String::new(),
        max_participants: 2,
        tones: true,
    });
    let mut rig = Rig::without_sockets_with(Settings::default(), cfg, 100);
    // 101 dials the room: answered by the box, its endpoint joins the room's mixer in
    // its codec; alone, it hears so.
    let ok = call_as(&mut rig, "101", A, "800", "c1");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let got = commands(&mut rig);
    let a = joined(&got);
    assert!(
        got.contains(&format!("PlayPrompt {a} conf-onlyperson")),
        "{got:?}"
    );
    assert!(!got.iter().any(|c| c.starts_with("RoomTone")), "{got:?}");
    // 102 joins: everyone hears the entry tone (300 ms).
    assert!(call_as(&mut rig, "102", B, "800", "c2").starts_with("SIP/2.0 200"));
    let got = commands(&mut rig);
    let b = joined(&got);
    assert!(got.contains(&"RoomTone 800 2400".to_string()), "{got:?}");
    let live = rig.pbx.conferences(rig.now);
    assert_eq!(live[0].participants.len(), 2);
    let (first, second) = (live[0].participants[0].call, live[0].participants[1].call);
    // The room holds two: 103 hears that it is full and never joins.
    assert!(call_as(&mut rig, "103", "127.0.0.1:7003", "800", "c3").starts_with("SIP/2.0 200"));
    let got = commands(&mut rig);
    assert!(got.iter().any(|c| c.ends_with(" conf-full")), "{got:?}");
    assert!(!got.iter().any(|c| c.starts_with("Join")), "{got:?}");
    // The administrator mutes 102, then puts 101 out: BYE, its endpoint closes and
    // the other hears the exit tone.
    assert!(rig.pbx.mute_participant("800", second, true));
    assert!(!rig.pbx.mute_participant("801", second, true));
    rig.drain();
    assert_eq!(commands(&mut rig), [format!("Mute {b} true")]);
    assert!(rig.pbx.conferences(rig.now)[0].participants[1].muted);
    assert!(rig.pbx.kick_participant(rig.now, "800", first));
    rig.drain();
    assert!(rig.take(A).iter().any(|m| m.starts_with("BYE ")));
    let got = commands(&mut rig);
    assert!(got.contains(&format!("Close {a}")), "{got:?}");
    assert!(got.contains(&"RoomTone 800 2400".to_string()), "{got:?}");
    assert!(!rig.pbx.kick_participant(rig.now, "800", first));
    assert_eq!(rig.pbx.conferences(rig.now)[0].participants.len(), 1);
}

#[test]
fn a_participant_holds_and_resumes_and_the_box_answers_itself() {
    let mut cfg = config();
    cfg.conferences.push(config::Conference {
        number: "800".into(),
        description: String::new(),
        pin: String::new(),
        max_participants: 0,
        tones: true,
    });
    let mut rig = Rig::without_sockets_with(Settings::default(), cfg, 100);
    let ok = call_as(&mut rig, "101", A, "800", "h1");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    let msg = |method: &str, cseq: u32, branch: &str, body: &str| {
        let ty = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!("{method} sip:800@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch={branch};rport\r\nFrom: <sip:101@127.0.0.1>;tag=th1\r\nTo: <sip:800@127.0.0.1>;tag={tag}\r\nCall-ID: h1\r\nCSeq: {cseq} {method}\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\n{ty}Content-Length: {}\r\n\r\n{body}", body.len())
    };
    rig.send(A, &msg("ACK", 2, "z9hG4bKh1ack", ""));
    commands(&mut rig);
    // Hold: answered recvonly by the box, the call goes on (no 491).
    let hold = SDP
        .replace("a=sendrecv", "a=sendonly")
        .replace("9000", "9010");
    rig.send(A, &msg("INVITE", 3, "z9hG4bKh1hold", &hold));
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    assert!(r.contains("a=recvonly"), "{r}");
    rig.send(A, &msg("ACK", 3, "z9hG4bKh1a3", ""));
    // The endpoint follows the new address.
    assert!(commands(&mut rig)
        .iter()
        .any(|c| c.starts_with("SetRemote") && c.contains("9010")),);
    // Resume, and a refresh without SDP: offered the session again.
    rig.send(
        A,
        &msg("INVITE", 4, "z9hG4bKh1res", &SDP.replace("9000", "9010")),
    );
    let r = rig.take(A).pop().unwrap();
    assert!(r.contains("a=sendrecv"), "{r}");
    rig.send(A, &msg("ACK", 4, "z9hG4bKh1a4", ""));
    rig.send(A, &msg("INVITE", 5, "z9hG4bKh1ref", ""));
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 200") && r.contains("m=audio"), "{r}");
    // An offer without the session's codec is refused; the call stays.
    // (the ACK carries the answer the 200's offer called for)
    rig.send(
        A,
        &msg("ACK", 5, "z9hG4bKh1a5", &SDP.replace("9000", "9010")),
    );
    let g722 = SDP
        .replace("RTP/AVP 0 101", "RTP/AVP 9 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000");
    rig.send(A, &msg("INVITE", 6, "z9hG4bKh1g", &g722));
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 488"), "{r}");
    assert_eq!(rig.pbx.conferences(rig.now)[0].participants.len(), 1);
}
