//! Call features on the exchange core, on a virtual clock for signalling and real
//! loopback sockets for media: hold with music, transfer, forwarding, call waiting,
//! ring groups, pickup.

mod common;

use common::*;
use pbx::Settings;
use std::net::UdpSocket;
use std::time::Duration;

/// A phone's RTP socket on loopback, with its port for SDP.
fn rtp_socket() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let p = s.local_addr().unwrap().port();
    (s, p)
}

fn sdp(port: u16, dir: &str) -> String {
    SDP.replace("9000", &port.to_string())
        .replace("a=sendrecv", &format!("a={dir}"))
}

/// RTP packets `s` receives within half a second (or until `n`): (payload type, payload).
fn packets(s: &UdpSocket, n: usize) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < n {
        match s.recv_from(&mut buf) {
            Ok((len, _)) if len >= 12 => out.push((buf[1] & 0x7f, buf[12..len].to_vec())),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

/// Drops what waits on `s` and what arrives in the next 60 ms.
fn drain(s: &UdpSocket) {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let end = std::time::Instant::now() + Duration::from_millis(60);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < end {
        let _ = s.recv_from(&mut buf);
    }
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
}

/// The m= port of an SDP body in a message.
fn media_port(msg: &str) -> u16 {
    let l = msg.lines().find(|l| l.starts_with("m=audio ")).unwrap();
    l.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A request from the caller (101 at A) inside the answered call-1 dialog.
fn from_a(method: &str, cseq: u32, tag: &str, branch: &str, extra: &str, body: &str) -> String {
    let ty = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!("{method} sip:102@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch={branch};rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\n{extra}{ty}Content-Length: {}\r\n\r\n{body}", body.len())
}

/// 101 calls 102; both answer with RTP on real sockets. Returns the caller's To tag,
/// the box's port towards A, and both sockets.
fn answered_call(rig: &mut Rig) -> (String, u16, UdpSocket, UdpSocket) {
    let (a_rtp, a_port) = rtp_socket();
    let (b_rtp, b_port) = rtp_socket();
    let inv = start_call_with(rig, &sdp(a_port, "sendrecv"));
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &sdp(b_port, "sendrecv")),
    );
    assert!(rig.take(B)[0].starts_with("ACK "));
    let ok = rig.take(A).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &from_a("ACK", 2, &tag, "z9hG4bKack2", "", ""));
    (tag, media_port(&ok), a_rtp, b_rtp)
}

fn rtp(pt: u8, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    p.extend_from_slice(&[fill; 160]);
    p
}

#[tokio::test]
async fn hold_plays_music_to_the_other_side_and_resume_reconnects() {
    let mut rig =
        Rig::new(Settings::default()).with_music(media::Clip::tone(&[425.0], 1000, 0, 0.5));
    let (tag, a_ep, a_rtp, b_rtp) = answered_call(&mut rig);
    let a_port = a_rtp.local_addr().unwrap().port();
    // Before hold, what A sends reaches B unchanged.
    a_rtp.send_to(&rtp(0, 7), ("127.0.0.1", a_ep)).unwrap();
    assert_eq!(packets(&b_rtp, 1), vec![(0, vec![7; 160])]);

    // A holds (sendonly): the box answers recvonly itself and B is not asked.
    rig.send(
        A,
        &from_a(
            "INVITE",
            3,
            &tag,
            "z9hG4bKhold",
            "",
            &sdp(a_port, "sendonly"),
        ),
    );
    let ok = rig.take(A).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("a=recvonly") && ok.contains("RTP/AVP 0 101"),
        "{ok}"
    );
    assert_eq!(media_port(&ok), a_ep, "the same endpoint");
    assert!(rig.take(B).is_empty(), "B is not re-INVITEd for hold");
    rig.send(A, &from_a("ACK", 3, &tag, "z9hG4bKack3", "", ""));
    // B hears the music: a 425 Hz tone in PCMU, and nothing A sends.
    drain(&b_rtp);
    a_rtp.send_to(&rtp(0, 7), ("127.0.0.1", a_ep)).unwrap();
    let got = packets(&b_rtp, 25);
    assert_eq!(got.len(), 25, "music at 50 packets a second");
    assert!(got.iter().all(|(pt, p)| *pt == 0 && p != &vec![7; 160]));
    let pcm: Vec<i16> = got
        .iter()
        .flat_map(|(_, p)| p.iter().map(|b| media::g711::ulaw_to_linear(*b)))
        .collect();
    assert!(media::dtmf::tone_power(&pcm, 8000, 425.0) > 1e7);
    assert_eq!(rig.pbx.calls(rig.now)[0].state, "answered");

    // A resumes: answered sendrecv by the box, the music stops, A is heard again.
    rig.send(
        A,
        &from_a(
            "INVITE",
            4,
            &tag,
            "z9hG4bKresume",
            "",
            &sdp(a_port, "sendrecv"),
        ),
    );
    let ok = rig.take(A).pop().unwrap();
    assert!(
        ok.starts_with("SIP/2.0 200") && ok.contains("a=sendrecv"),
        "{ok}"
    );
    assert!(rig.take(B).is_empty());
    rig.send(A, &from_a("ACK", 4, &tag, "z9hG4bKack4", "", ""));
    drain(&b_rtp);
    a_rtp.send_to(&rtp(0, 9), ("127.0.0.1", a_ep)).unwrap();
    assert_eq!(packets(&b_rtp, 1), vec![(0, vec![9; 160])]);
    // An old-style hold (c=0.0.0.0) holds too.
    let zero = sdp(a_port, "sendrecv").replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    rig.send(A, &from_a("INVITE", 5, &tag, "z9hG4bKhold0", "", &zero));
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 200"));
    assert!(rig.take(B).is_empty());
    drain(&b_rtp);
    assert!(packets(&b_rtp, 5).len() == 5, "music after c=0.0.0.0");
}

const C: &str = "127.0.0.1:7003";

/// What the transferor gets when its transfer succeeded: the final NOTIFY (200) and BYE.
fn transfer_done(got: &[String]) {
    assert!(
        got.iter()
            .any(|m| m.starts_with("NOTIFY ") && m.contains("\r\n\r\nSIP/2.0 200 OK")),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m.starts_with("BYE ")), "{got:?}");
}

/// A request from the callee (102 at B) inside the dialog the box opened with `inv`.
fn from_b(inv: &str, method: &str, cseq: u32, branch: &str, extra: &str) -> String {
    let from = header(inv, "From").unwrap();
    let to = header(inv, "To").unwrap();
    let call_id = header(inv, "Call-ID").unwrap();
    let contact = header(inv, "Contact").unwrap();
    let target = contact.trim_start_matches('<').split('>').next().unwrap();
    format!("{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {B};branch={branch};rport\r\nFrom: {to};tag=callee\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:102@{B}>\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n")
}

/// Answers the box's NOTIFY and returns its sipfrag status line.
fn notify_status(rig: &mut Rig, msg: &str, at: &str) -> String {
    assert!(msg.starts_with("NOTIFY "), "{msg}");
    assert_eq!(
        header(msg, "Content-Type"),
        Some("message/sipfrag;version=2.0"),
        "{msg}"
    );
    assert!(header(msg, "Event").unwrap().starts_with("refer"), "{msg}");
    assert!(header(msg, "Contact").is_some(), "{msg}");
    let ok = answer_at(msg, "200 OK", "callee", "", at);
    rig.send(at.split('@').next_back().unwrap(), &ok);
    let body = msg.split("\r\n\r\n").nth(1).unwrap();
    body.lines().next().unwrap().to_string()
}

/// 101 calls 102, who answers; 103 registers at C. Returns the INVITE B got, A's To tag,
/// and the RTP sockets of A and B with A's endpoint port.
fn three_phones(rig: &mut Rig) -> (String, String, u16, UdpSocket, UdpSocket) {
    let (a_rtp, a_port) = rtp_socket();
    let (b_rtp, b_port) = rtp_socket();
    let inv = start_call_with(rig, &sdp(a_port, "sendrecv"));
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &sdp(b_port, "sendrecv")),
    );
    rig.take(B);
    let ok = rig.take(A).pop().unwrap();
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &from_a("ACK", 2, &tag, "z9hG4bKack2", "", ""));
    assert!(do_register(rig, "103", C, 3600, sip::auth::Algorithm::Md5).starts_with("SIP/2.0 200"));
    (inv, tag, media_port(&ok), a_rtp, b_rtp)
}

#[tokio::test]
async fn blind_transfer_rings_the_target_with_music_and_connects_it() {
    let mut rig =
        Rig::new(Settings::default()).with_music(media::Clip::tone(&[425.0], 1000, 0, 0.5));
    let (inv, _tag, a_ep, a_rtp, _b_rtp) = three_phones(&mut rig);
    // 102 transfers 101 to 103.
    rig.send(
        B,
        &from_b(
            &inv,
            "REFER",
            1,
            "z9hG4bKrefer",
            &format!("Refer-To: <sip:103@{PBX}>\r\nReferred-By: <sip:102@{PBX}>\r\n"),
        ),
    );
    let got = rig.take(B);
    assert!(got[0].starts_with("SIP/2.0 202"), "{got:?}");
    assert!(header(&got[0], "Contact").is_some(), "{}", got[0]);
    assert_eq!(header(&got[1], "Event"), Some("refer;id=1"));
    assert!(header(&got[1], "Subscription-State")
        .unwrap()
        .starts_with("active"));
    assert_eq!(
        notify_status(&mut rig, &got[1], &format!("102@{B}")),
        "SIP/2.0 100 Trying"
    );
    // 103 rings, shown 101 calling; 101 hears music, not re-INVITEd.
    let to_c = rig.take(C);
    assert_eq!(to_c.len(), 1, "{to_c:?}");
    let inv_c = &to_c[0];
    assert!(inv_c.starts_with(&format!("INVITE sip:103@{C}")), "{inv_c}");
    assert!(
        header(inv_c, "From").unwrap().contains("sip:101@"),
        "{inv_c}"
    );
    assert!(rig.take(A).is_empty());
    drain(&a_rtp);
    assert_eq!(packets(&a_rtp, 5).len(), 5, "music while 103 rings");
    rig.send(
        C,
        &answer_at(inv_c, "180 Ringing", "target", "", &format!("103@{C}")),
    );
    // 102 hears that 103 rings, once however often 103 says so.
    let got = rig.take(B);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        notify_status(&mut rig, &got[0], &format!("102@{B}")),
        "SIP/2.0 180 Ringing"
    );
    assert!(header(&got[0], "Subscription-State")
        .unwrap()
        .starts_with("active"));
    rig.send(
        C,
        &answer_at(inv_c, "180 Ringing", "target", "", &format!("103@{C}")),
    );
    assert!(rig.take(B).is_empty());
    let (c_rtp, c_port) = rtp_socket();
    rig.send(
        C,
        &answer_at(
            inv_c,
            "200 OK",
            "target",
            &sdp(c_port, "sendrecv"),
            &format!("103@{C}"),
        ),
    );
    assert!(rig.take(C)[0].starts_with("ACK "));
    // 102 hears it worked and is hung up; 101 is now with 103.
    let got = rig.take(B);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        notify_status(&mut rig, &got[0], &format!("102@{B}")),
        "SIP/2.0 200 OK"
    );
    assert!(header(&got[0], "Subscription-State")
        .unwrap()
        .starts_with("terminated"));
    assert!(got[1].starts_with("BYE "), "{}", got[1]);
    assert!(rig.take(A).is_empty(), "101 is not asked anything");
    drain(&c_rtp);
    a_rtp.send_to(&rtp(0, 3), ("127.0.0.1", a_ep)).unwrap();
    let heard = packets(&c_rtp, 1);
    assert_eq!(heard, vec![(0, vec![3; 160])], "103 hears 101");
    let calls = rig.pbx.calls(rig.now);
    assert_eq!(
        (
            calls.len(),
            calls[0].caller.as_str(),
            calls[0].callee.as_str()
        ),
        (1, "101", "103")
    );
    // 103 hangs up: 101 gets BYE, the call is gone.
    let from = header(inv_c, "From").unwrap();
    let to = header(inv_c, "To").unwrap();
    rig.send(C, &format!("BYE sip:101@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {C};branch=z9hG4bKcbye;rport\r\nFrom: {to};tag=target\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(inv_c, "Call-ID").unwrap()));
    assert!(rig.take(C)[0].starts_with("SIP/2.0 200"));
    assert!(rig.take(A).iter().any(|m| m.starts_with("BYE ")));
    assert!(rig.pbx.calls(rig.now).is_empty());
    // One record: 101 called 102, talked to 103 last, 102 transferred.
    let r = rig.pbx.poll_record().expect("a call record");
    assert_eq!(
        (
            r.caller.as_str(),
            r.called.as_str(),
            r.answered_by.as_str(),
            r.transferred_by.as_str()
        ),
        ("101", "102", "103", "102")
    );
    assert_eq!(
        (r.outcome, r.status),
        (store::history::Outcome::Answered, 200)
    );
    assert!(r.answered.is_some() && r.end >= r.start);
    assert!(rig.pbx.poll_record().is_none());
}

#[tokio::test]
async fn a_blind_transfer_to_a_busy_phone_reports_it_and_the_call_goes_on() {
    let mut rig = Rig::new(Settings::default());
    let (inv, _tag, a_ep, a_rtp, b_rtp) = three_phones(&mut rig);
    rig.send(
        B,
        &from_b(
            &inv,
            "REFER",
            1,
            "z9hG4bKrefer",
            &format!("Refer-To: sip:103@{PBX}\r\n"),
        ),
    );
    let got = rig.take(B);
    notify_status(&mut rig, &got[1], &format!("102@{B}"));
    let inv_c = rig.take(C).pop().unwrap();
    rig.send(
        C,
        &answer_at(&inv_c, "486 Busy Here", "target", "", &format!("103@{C}")),
    );
    let got = rig.take(B);
    assert_eq!(
        notify_status(&mut rig, &got[0], &format!("102@{B}")),
        "SIP/2.0 486 Busy Here"
    );
    assert!(header(&got[0], "Subscription-State")
        .unwrap()
        .starts_with("terminated"));
    assert!(!got.iter().any(|m| m.starts_with("BYE")));
    // 101 and 102 talk again.
    drain(&b_rtp);
    a_rtp.send_to(&rtp(0, 4), ("127.0.0.1", a_ep)).unwrap();
    assert_eq!(packets(&b_rtp, 1), vec![(0, vec![4; 160])]);
    // A REFER to a number that does not exist is refused in the NOTIFY; one without
    // Refer-To gets 400.
    rig.send(
        B,
        &from_b(
            &inv,
            "REFER",
            2,
            "z9hG4bKrefer2",
            "Refer-To: <sip:999@x>\r\n",
        ),
    );
    let got = rig.take(B);
    assert!(got[0].starts_with("SIP/2.0 202"));
    assert!(
        got.iter().skip(1).any(|m| m.contains("SIP/2.0 404")),
        "{got:?}"
    );
    rig.send(B, &from_b(&inv, "REFER", 3, "z9hG4bKrefer3", ""));
    assert!(rig.take(B)[0].starts_with("SIP/2.0 400"));
    assert_eq!(rig.pbx.calls(rig.now).len(), 1);
}

#[tokio::test]
async fn a_blind_transfer_nobody_answers_times_out() {
    let mut rig = Rig::new(Settings {
        ring_timeout: Duration::from_secs(20),
        ..Settings::default()
    });
    let (inv, _tag, _a_ep, _a_rtp, _b_rtp) = three_phones(&mut rig);
    rig.send(
        B,
        &from_b(
            &inv,
            "REFER",
            1,
            "z9hG4bKrefer",
            &format!("Refer-To: sip:103@{PBX}\r\n"),
        ),
    );
    rig.take(B);
    let inv_c = rig.take(C).pop().unwrap();
    rig.send(
        C,
        &answer_at(&inv_c, "180 Ringing", "target", "", &format!("103@{C}")),
    );
    rig.advance(Duration::from_secs(21));
    let got = rig.take(B);
    assert!(got.iter().any(|m| m.contains("SIP/2.0 480")), "{got:?}");
    assert!(rig.take(C).iter().any(|m| m.starts_with("CANCEL ")));
    assert_eq!(rig.pbx.calls(rig.now).len(), 1);
}

#[tokio::test]
async fn attended_transfer_joins_the_two_other_parties() {
    let mut rig = Rig::new(Settings::default());
    let (inv, _tag, a_ep, a_rtp, _b_rtp) = three_phones(&mut rig);
    // 102 calls 103 (a second call), who answers.
    let (c_rtp, c_port) = rtp_socket();
    let ringing = call_as_with(&mut rig, "102", B, "103", "second", &sdp(40000, "sendrecv"));
    assert!(
        ringing.is_empty() || ringing.starts_with("SIP/2.0 1"),
        "{ringing}"
    );
    let inv_c = rig.take(C).pop().unwrap();
    rig.send(
        C,
        &answer_at(
            &inv_c,
            "200 OK",
            "target",
            &sdp(c_port, "sendrecv"),
            &format!("103@{C}"),
        ),
    );
    rig.take(C);
    let ok = rig
        .take(B)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap();
    let box_tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    assert_eq!(rig.pbx.calls(rig.now).len(), 2);
    // 102 refers 101 to 103, replacing its call with 103.
    let refer_to = format!(
        "Refer-To: <sip:103@{PBX}?Replaces=second%3Bto-tag%3D{box_tag}%3Bfrom-tag%3Dtsecond>\r\n"
    );
    rig.send(B, &from_b(&inv, "REFER", 1, "z9hG4bKrefer", &refer_to));
    let got = rig.take(B);
    assert!(got[0].starts_with("SIP/2.0 202"), "{got:?}");
    let statuses: Vec<String> = got
        .iter()
        .filter(|m| m.starts_with("NOTIFY "))
        .map(|m| {
            m.split("\r\n\r\n")
                .nth(1)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    let byes: Vec<&String> = got.iter().filter(|m| m.starts_with("BYE ")).collect();
    assert_eq!(byes.len(), 2, "both of 102's calls end: {got:?}");
    assert!(byes.iter().any(|m| header(m, "Call-ID") == Some("second")));
    assert!(
        rig.take(A).is_empty() && rig.take(C).is_empty(),
        "101 and 103 are not asked"
    );
    drain(&c_rtp);
    a_rtp.send_to(&rtp(0, 5), ("127.0.0.1", a_ep)).unwrap();
    assert_eq!(packets(&c_rtp, 1), vec![(0, vec![5; 160])], "103 hears 101");
    let calls = rig.pbx.calls(rig.now);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].caller.as_str(), calls[0].callee.as_str()),
        ("101", "103")
    );
    // A Replaces naming no call is refused in the NOTIFY.
    let (inv2, tag2, ..) = three_phones_again(&mut rig);
    let _ = tag2;
    rig.send(
        B,
        &from_b(
            &inv2,
            "REFER",
            1,
            "z9hG4bKrefer9",
            "Refer-To: <sip:103@x?Replaces=nosuch%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n",
        ),
    );
    let got = rig.take(B);
    assert!(got.iter().any(|m| m.contains("SIP/2.0 481")), "{got:?}");
}

/// A second call from 101 to 102 on a rig that has one already.
fn three_phones_again(rig: &mut Rig) -> (String, String) {
    let (_, a_port) = rtp_socket();
    let ans = call_as_with(rig, "101", A, "102", "again", &sdp(a_port, "sendrecv"));
    assert!(ans.is_empty() || ans.starts_with("SIP/2.0 1"), "{ans}");
    let inv = rig.take(B).pop().unwrap();
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &sdp(41000, "sendrecv")),
    );
    rig.take(B);
    let ok = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap();
    (inv, param(header(&ok, "To").unwrap(), "tag").to_string())
}

#[tokio::test]
async fn the_caller_transfers_the_callee() {
    let mut rig = Rig::new(Settings::default());
    let (inv, tag, _a_ep, _a_rtp, b_rtp) = three_phones(&mut rig);
    let b_ep = media_port(&inv);
    rig.send(
        A,
        &from_a(
            "REFER",
            3,
            &tag,
            "z9hG4bKrefer",
            &format!("Refer-To: <sip:103@{PBX}>\r\n"),
            "",
        ),
    );
    let got = rig.take(A);
    assert!(got[0].starts_with("SIP/2.0 202"), "{got:?}");
    let inv_c = rig.take(C).pop().unwrap();
    assert!(
        header(&inv_c, "From").unwrap().contains("sip:102@"),
        "103 sees 102: {inv_c}"
    );
    let (c_rtp, c_port) = rtp_socket();
    rig.send(
        C,
        &answer_at(
            &inv_c,
            "200 OK",
            "target",
            &sdp(c_port, "sendrecv"),
            &format!("103@{C}"),
        ),
    );
    transfer_done(&rig.take(A));
    assert!(rig.take(B).is_empty());
    drain(&c_rtp);
    b_rtp.send_to(&rtp(0, 6), ("127.0.0.1", b_ep)).unwrap();
    assert_eq!(packets(&c_rtp, 1), vec![(0, vec![6; 160])], "103 hears 102");
    let calls = rig.pbx.calls(rig.now);
    assert_eq!(
        (calls[0].caller.as_str(), calls[0].callee.as_str()),
        ("103", "102")
    );
    // 102 hangs up: 103 gets the BYE, in its own dialog.
    rig.send(B, &from_b(&inv, "BYE", 2, "z9hG4bKbbye", ""));
    let to_c = rig.take(C);
    assert!(
        to_c.iter()
            .any(|m| m.starts_with("BYE ") && header(m, "Call-ID") == header(&inv_c, "Call-ID")),
        "{to_c:?}"
    );
    assert!(rig.pbx.calls(rig.now).is_empty());
}

const D: &str = "127.0.0.1:7004";

fn cfg_with(edit: impl FnOnce(&mut config::Config)) -> config::Config {
    let mut c = config();
    c.extensions.push(config::Extension::new("104"));
    c.accounts
        .push(config::SipAccount::new("104", "Secret-104x", "104"));
    edit(&mut c);
    c
}

fn rule(cause: config::ForwardCause, origin: config::CallOrigin, to: &str) -> config::ForwardRule {
    config::ForwardRule {
        cause,
        origin,
        to: to.into(),
    }
}

fn ext<'a>(c: &'a mut config::Config, n: &str) -> &'a mut config::Extension {
    c.extensions.iter_mut().find(|e| e.number == n).unwrap()
}

fn register_all(rig: &mut Rig, who: &[(&str, &str)]) {
    for (user, at) in who {
        let r = do_register(rig, user, at, 3600, sip::auth::Algorithm::Md5);
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
    }
}

/// The INVITEs the box sent to `at` since the last look.
fn invites(rig: &mut Rig, at: &str) -> Vec<String> {
    rig.take(at)
        .into_iter()
        .filter(|m| m.starts_with("INVITE "))
        .collect()
}

#[tokio::test]
async fn forwarding_on_unavailable_busy_and_no_answer() {
    use config::{CallOrigin::*, ForwardCause::*};
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let e = ext(c, "102");
            e.forwarding = vec![
                rule(Unavailable, Any, "103"),
                rule(Busy, Internal, "104"),
                rule(NoAnswer, Any, "104"),
            ];
            e.no_answer_seconds = 10;
        }),
    );
    register_all(&mut rig, &[("103", C), ("104", D)]);
    // 102 has no phone registered: unavailable, so 103 rings.
    let got = call_as(&mut rig, "101", A, "102", "fw-1");
    assert!(got.is_empty() || got.starts_with("SIP/2.0 1"), "{got}");
    let to_c = invites(&mut rig, C);
    assert_eq!(to_c.len(), 1, "{to_c:#?}");
    let r = rig.pbx.calls(rig.now);
    assert_eq!((r.len(), r[0].callee.as_str()), (1, "102"));

    // With 102 registered: it rings; it answers busy, so 104 (the internal busy rule).
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let e = ext(c, "102");
            e.forwarding = vec![rule(Busy, Internal, "104"), rule(NoAnswer, Any, "103")];
            e.no_answer_seconds = 10;
        }),
    );
    register_all(&mut rig, &[("103", C), ("104", D)]);
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "486 Busy Here", "callee", ""));
    assert_eq!(invites(&mut rig, D).len(), 1, "busy: 104 rings");
    assert!(invites(&mut rig, C).is_empty());

    // It rings and nobody answers for 10 s: cancelled, 103 rings.
    let mut rig2 = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let e = ext(c, "102");
            e.forwarding = vec![rule(NoAnswer, Any, "103")];
            e.no_answer_seconds = 10;
        }),
    );
    register_all(&mut rig2, &[("103", C)]);
    let inv = start_call(&mut rig2);
    rig2.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    rig2.advance(Duration::from_secs(9));
    assert!(invites(&mut rig2, C).is_empty(), "not before 10 s");
    rig2.advance(Duration::from_millis(1200));
    assert!(rig2.take(B).iter().any(|m| m.starts_with("CANCEL ")));
    let to_c = invites(&mut rig2, C);
    assert_eq!(to_c.len(), 1);
    // 103 answers: the caller gets its 200, the call is 101 with 103.
    let (c_rtp, c_port) = rtp_socket();
    rig2.send(
        C,
        &answer_at(
            &to_c[0],
            "200 OK",
            "c",
            &sdp(c_port, "sendrecv"),
            &format!("103@{C}"),
        ),
    );
    assert!(rig2.take(A).iter().any(|m| m.starts_with("SIP/2.0 200")));
    drop(c_rtp);
    rig2.send(B, &answer(&inv, "487 Request Terminated", "callee", ""));
    assert_eq!(rig2.pbx.calls(rig2.now)[0].state, "answered");
}

#[tokio::test]
async fn forwarding_rules_follow_the_origin_and_hang_up() {
    use config::{CallOrigin::*, ForwardCause::*};
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            ext(c, "102").forwarding = vec![
                rule(Unavailable, External, "103"),
                rule(Unavailable, Internal, "hangup"),
            ];
        }),
    );
    register_all(&mut rig, &[("103", C)]);
    // An internal call: hung up (480), 103 does not ring.
    let got = call_as(&mut rig, "101", A, "102", "fw-2");
    assert!(got.starts_with("SIP/2.0 480"), "{got}");
    assert!(invites(&mut rig, C).is_empty());
    // A transferred call follows the any-origin rules: none here, so the transfer fails.
    let r = rig.pbx.poll_record().unwrap();
    assert_eq!(r.outcome, store::history::Outcome::Unavailable);
}

#[tokio::test]
async fn a_ring_group_in_order_falls_back() {
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let mut g = config::RingGroup::new("600", &["102", "103"]);
            g.strategy = config::RingStrategy::InOrder;
            g.member_seconds = 5;
            g.fallback = "104".into();
            c.ring_groups.push(g);
        }),
    );
    register_all(&mut rig, &[("102", B), ("103", C), ("104", D)]);
    let got = call_as(&mut rig, "101", A, "600", "grp-1");
    assert!(got.is_empty() || got.starts_with("SIP/2.0 1"), "{got}");
    let inv_b = invites(&mut rig, B);
    assert_eq!(inv_b.len(), 1, "102 first");
    assert!(invites(&mut rig, C).is_empty());
    rig.send(B, &answer(&inv_b[0], "180 Ringing", "b", ""));
    rig.advance(Duration::from_secs(5));
    assert!(rig.take(B).iter().any(|m| m.starts_with("CANCEL ")));
    let inv_c = invites(&mut rig, C);
    assert_eq!(inv_c.len(), 1, "then 103");
    rig.send(
        C,
        &answer_at(&inv_c[0], "180 Ringing", "c", "", &format!("103@{C}")),
    );
    rig.advance(Duration::from_secs(5));
    assert!(rig.take(C).iter().any(|m| m.starts_with("CANCEL ")));
    let inv_d = invites(&mut rig, D);
    assert_eq!(inv_d.len(), 1, "then the fallback 104");
    rig.send(
        D,
        &answer_at(&inv_d[0], "486 Busy Here", "d", "", &format!("104@{D}")),
    );
    let to_a = rig.take(A);
    assert!(
        to_a.iter().any(|m| m.starts_with("SIP/2.0 486")),
        "{to_a:?}"
    );
}

#[tokio::test]
async fn a_round_robin_group_remembers_where_it_was() {
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let mut g = config::RingGroup::new("600", &["102", "103", "104"]);
            g.strategy = config::RingStrategy::RoundRobin;
            c.ring_groups.push(g);
        }),
    );
    register_all(&mut rig, &[("102", B), ("103", C), ("104", D)]);
    let mut firsts = Vec::new();
    for i in 0..4 {
        call_as(&mut rig, "101", A, "600", &format!("rr-{i}"));
        let who: Vec<&str> = [B, C, D]
            .into_iter()
            .filter(|at| !invites(&mut rig, at).is_empty())
            .collect();
        assert_eq!(who.len(), 1, "one member at a time: {who:?}");
        firsts.push(who[0]);
        rig.pbx.hang_up_call(rig.now, rig.pbx.calls(rig.now)[0].id);
        rig.advance(Duration::from_secs(40));
        rig.out.clear();
    }
    assert_eq!(firsts, [B, C, D, B]);
}

#[tokio::test]
async fn call_waiting_rings_a_phone_in_a_call_unless_switched_off() {
    for waiting in [true, false] {
        let mut rig = Rig::with_config(
            Settings::default(),
            cfg_with(|c| ext(c, "102").call_waiting = waiting),
        );
        let _ = answered_call(&mut rig);
        register_all(&mut rig, &[("103", C)]);
        let got = call_as(&mut rig, "103", C, "102", "cw-1");
        let to_b = invites(&mut rig, B);
        if waiting {
            assert_eq!(to_b.len(), 1, "the second call rings 102: {got}");
        } else {
            assert!(to_b.is_empty());
            assert!(got.starts_with("SIP/2.0 486"), "{got}");
        }
    }
}

#[tokio::test]
async fn a_ringing_call_is_picked_up_by_group_or_by_extension() {
    for code in ["*8", "**102"] {
        let mut rig = Rig::with_config(Settings::default(), cfg_with(|_| {}));
        register_all(&mut rig, &[("103", C)]);
        let (a_rtp, a_port) = rtp_socket();
        let inv = start_call_with(&mut rig, &sdp(a_port, "sendrecv"));
        rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
        rig.take(A);
        // 103 dials the code and takes the call.
        let (c_rtp, c_port) = rtp_socket();
        let got = call_as_with(&mut rig, "103", C, code, "pick", &sdp(c_port, "sendrecv"));
        assert!(got.starts_with("SIP/2.0 200"), "{code}: {got}");
        assert!(got.contains("m=audio "), "{got}");
        let to_a = rig.take(A);
        let ok = to_a
            .iter()
            .find(|m| m.starts_with("SIP/2.0 200"))
            .expect("the caller's 200");
        assert!(
            rig.take(B).iter().any(|m| m.starts_with("CANCEL ")),
            "102 stops ringing"
        );
        let calls = rig.pbx.calls(rig.now);
        assert_eq!((calls.len(), calls[0].state.as_str()), (1, "answered"));
        // 101 and 103 hear each other.
        drain(&c_rtp);
        a_rtp
            .send_to(&rtp(0, 8), ("127.0.0.1", media_port(ok)))
            .unwrap();
        assert_eq!(packets(&c_rtp, 1), vec![(0, vec![8; 160])]);
        drain(&a_rtp);
        c_rtp
            .send_to(&rtp(0, 9), ("127.0.0.1", media_port(&got)))
            .unwrap();
        assert_eq!(packets(&a_rtp, 1), vec![(0, vec![9; 160])]);
        // The record: answered by 103.
        rig.pbx.hang_up_call(rig.now, calls[0].id);
        let r = rig.pbx.poll_record().unwrap();
        assert_eq!((r.called.as_str(), r.answered_by.as_str()), ("102", "103"));
    }
    // Nothing ringing, or not allowed to pick up: 404.
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| ext(c, "103").pickup_from.clear()),
    );
    register_all(&mut rig, &[("103", C)]);
    let got = call_as(&mut rig, "103", C, "*8", "pick-0");
    assert!(got.starts_with("SIP/2.0 404"), "{got}");
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    let got = call_as(&mut rig, "103", C, "**102", "pick-1");
    assert!(
        got.starts_with("SIP/2.0 404"),
        "not in a group it may pick up from: {got}"
    );
}

#[tokio::test]
async fn a_transferor_may_hang_up_right_after_its_refer() {
    for target_answers in [true, false] {
        let mut rig = Rig::new(Settings::default());
        let (inv, _tag, _a_ep, _a_rtp, _b_rtp) = three_phones(&mut rig);
        rig.send(
            B,
            &from_b(
                &inv,
                "REFER",
                1,
                "z9hG4bKrefer",
                &format!("Refer-To: <sip:103@{PBX}>\r\n"),
            ),
        );
        rig.take(B);
        // RFC 5589 6.1: the transferor hangs up at once.
        rig.send(B, &from_b(&inv, "BYE", 2, "z9hG4bKbye", ""));
        let to_b = rig.take(B);
        assert!(to_b[0].starts_with("SIP/2.0 200"), "{to_b:?}");
        assert!(rig.take(A).is_empty(), "the transferee stays");
        let inv_c = rig
            .take(C)
            .into_iter()
            .find(|m| m.starts_with("INVITE"))
            .expect("103 rings");
        if target_answers {
            let (_c_rtp, c_port) = rtp_socket();
            rig.send(
                C,
                &answer_at(
                    &inv_c,
                    "200 OK",
                    "c",
                    &sdp(c_port, "sendrecv"),
                    &format!("103@{C}"),
                ),
            );
            let calls = rig.pbx.calls(rig.now);
            assert_eq!(
                (calls[0].caller.as_str(), calls[0].callee.as_str()),
                ("101", "103")
            );
            assert!(rig.take(B).is_empty(), "nothing more to the transferor");
        } else {
            rig.send(
                C,
                &answer_at(&inv_c, "486 Busy Here", "c", "", &format!("103@{C}")),
            );
            assert!(
                rig.take(A).iter().any(|m| m.starts_with("BYE ")),
                "nobody to go back to"
            );
            assert!(rig.pbx.calls(rig.now).is_empty());
        }
    }
}

#[tokio::test]
async fn replaces_cannot_name_another_phones_call() {
    let mut rig = Rig::new(Settings::default());
    let (inv, _tag, ..) = three_phones(&mut rig);
    // A second call, 103 -> 101, answered; 102 names it in a REFER.
    register_all(&mut rig, &[("101", A)]);
    let got = call_as_with(&mut rig, "103", C, "101", "theirs", &sdp(42000, "sendrecv"));
    assert!(got.is_empty() || got.starts_with("SIP/2.0 1"), "{got}");
    let inv_a = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("INVITE"))
        .unwrap();
    rig.send(
        A,
        &answer_at(
            &inv_a,
            "200 OK",
            "a2",
            &sdp(42002, "sendrecv"),
            &format!("101@{A}"),
        ),
    );
    let ok = rig
        .take(C)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap();
    let box_tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    let refer_to = format!(
        "Refer-To: <sip:101@{PBX}?Replaces=theirs%3Bto-tag%3D{box_tag}%3Bfrom-tag%3Dttheirs>\r\n"
    );
    rig.send(B, &from_b(&inv, "REFER", 1, "z9hG4bKsteal", &refer_to));
    let got = rig.take(B);
    assert!(got.iter().any(|m| m.contains("SIP/2.0 481")), "{got:?}");
    assert_eq!(rig.pbx.calls(rig.now).len(), 2, "both calls as they were");
}

/// An INFO from the caller in the answered call-1 dialog.
fn info_from_a(cseq: u32, tag: &str, ty: &str, body: &str) -> String {
    format!("INFO sip:102@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKinfo{cseq};rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: {cseq} INFO\r\nMax-Forwards: 70\r\nContent-Type: {ty}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn digits_sent_by_info_reach_the_other_side_as_events_or_tones() {
    let mut rig = Rig::new(Settings::default());
    let (tag, _a_ep, _a_rtp, b_rtp) = answered_call(&mut rig);
    rig.send(
        A,
        &info_from_a(
            3,
            &tag,
            "application/dtmf-relay",
            "Signal=5\r\nDuration=100\r\n",
        ),
    );
    let ok = rig.take(A).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("CSeq: 3 INFO"), "{ok}");
    assert!(rig.take(B).is_empty(), "the INFO is not passed on");
    // B negotiated telephone-event 101: the digit comes as RFC 4733 events.
    let got = packets(&b_rtp, 7);
    assert_eq!(got.len(), 7, "{got:?}");
    assert!(got
        .iter()
        .all(|(pt, p)| *pt == 101 && p.len() == 4 && p[0] == 5));
    assert_eq!(got.iter().filter(|(_, p)| p[1] & 0x80 != 0).count(), 3);
    assert_eq!(&got[6].1[2..4], &800u16.to_be_bytes());

    // A body that is not a digit: 400 naming why; nothing is sent.
    rig.send(
        A,
        &info_from_a(4, &tag, "application/dtmf-relay", "Signal=x\r\n"),
    );
    let r = rig.take(A).pop().unwrap();
    assert!(
        r.starts_with("SIP/2.0 400") && r.contains("keypad digit"),
        "{r}"
    );
    // Another INFO (a picture update request): 200, nothing sent.
    rig.send(
        A,
        &info_from_a(5, &tag, "application/media_control+xml", "<x/>"),
    );
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 200"));
    drain(&b_rtp);
    assert!(packets(&b_rtp, 1).is_empty());
}

#[tokio::test]
async fn a_digit_by_info_to_a_phone_without_events_is_played_in_band() {
    let mut rig = Rig::new(Settings::default());
    let (a_rtp, a_port) = rtp_socket();
    let (b_rtp, b_port) = rtp_socket();
    let inv = start_call_with(&mut rig, &sdp(a_port, "sendrecv"));
    let plain = sdp(b_port, "sendrecv")
        .replace("RTP/AVP 0 101", "RTP/AVP 0")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    rig.send(B, &answer(&inv, "200 OK", "callee", &plain));
    rig.take(B);
    let ok = rig.take(A).pop().unwrap();
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &from_a("ACK", 2, &tag, "z9hG4bKack2", "", ""));
    let a_ep = media_port(&ok);
    rig.send(A, &info_from_a(3, &tag, "application/dtmf", "#"));
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 200"));
    // 160 ms of 941 + 1477 Hz in PCMU: eight packets.
    let got = packets(&b_rtp, 8);
    assert_eq!(got.len(), 8);
    let pcm: Vec<i16> = got
        .iter()
        .flat_map(|(pt, p)| {
            assert_eq!(*pt, 0);
            p.iter().map(|b| media::g711::ulaw_to_linear(*b))
        })
        .collect();
    let mut heard = Vec::new();
    media::dtmf::InBand::default().samples(&pcm, &mut heard);
    assert_eq!(heard, ['#']);
    // Then B hears A again.
    drain(&b_rtp);
    a_rtp.send_to(&rtp(0, 9), ("127.0.0.1", a_ep)).unwrap();
    assert_eq!(packets(&b_rtp, 1), vec![(0, vec![9; 160])]);
}

#[tokio::test]
async fn a_refused_reinvite_leaves_the_session_as_it_was() {
    let mut rig = Rig::new(Settings::default());
    let (_a_rtp, a_port) = rtp_socket();
    let (_b_rtp, b_port) = rtp_socket();
    let inv = start_call_with(&mut rig, &sdp(a_port, "sendrecv"));
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &sdp(b_port, "sendrecv")),
    );
    rig.take(B);
    let ok = rig.take(A).pop().unwrap();
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &from_a("ACK", 2, &tag, "z9hG4bKack2", "", ""));
    // A offers PCMA only; B's phone is in the middle of its own re-INVITE: 491.
    let alaw = sdp(a_port, "sendrecv")
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000");
    rig.send(A, &from_a("INVITE", 3, &tag, "z9hG4bKre", "", &alaw));
    let re = rig.take(B).pop().unwrap();
    assert!(
        re.starts_with("INVITE ") && re.contains("RTP/AVP 8"),
        "{re}"
    );
    rig.send(B, &answer(&re, "491 Request Pending", "callee", ""));
    let r = rig.take(A).pop().unwrap();
    assert!(
        r.starts_with("SIP/2.0 491"),
        "the glare goes back to the offerer: {r}"
    );
    assert!(
        rig.take(B).iter().any(|m| m.starts_with("ACK ")),
        "the 491 is ACKed"
    );
    // B's own re-INVITE without SDP: the box offers the session B still has (PCMU),
    // not the refused PCMA one.
    rig.send(B, &from_b(&inv, "INVITE", 1, "z9hG4bKbre", ""));
    let ok = rig.take(B).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("RTP/AVP 0 "), "{ok}");
}

/// `sdp(port, "sendrecv")` as RTP/SAVP with the SDES key `key` (30 bytes of one value,
/// so that its base64 is that value's four characters ten times).
fn keyed(port: u16, key: u8) -> String {
    let b64 = match key {
        1 => "AQEB",
        2 => "AgIC",
        _ => unreachable!(),
    }
    .repeat(10);
    sdp(port, "sendrecv")
        .replace("RTP/AVP", "RTP/SAVP")
        .replace(
            "a=sendrecv\r\n",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{b64}\r\na=sendrecv\r\n"),
        )
}

/// A PCMU packet of `fill` with sequence number `seq`, protected by `s`.
fn srtp_packet(s: &mut media::srtp::Session, seq: u16, fill: u8) -> Vec<u8> {
    let mut p = rtp(0, fill);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    let len = p.len();
    p.resize(len + media::srtp::MAX_TRAILER, 0);
    let n = s.protect(&mut p, len, false).unwrap();
    p.truncate(n);
    p
}

#[tokio::test]
async fn a_reinvites_new_key_is_taken_only_once_the_offer_is_accepted() {
    use media::srtp::{Session, Suite};
    let mut rig = Rig::new(Settings::default());
    let (a_rtp, a_port) = rtp_socket();
    let (b_rtp, b_port) = rtp_socket();
    // A encrypts with key 1 (best effort: an SDES offer from a phone); B is plain.
    let inv = start_call_with(&mut rig, &keyed(a_port, 1));
    assert!(!inv.contains("a=crypto"), "{inv}");
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &sdp(b_port, "sendrecv")),
    );
    assert!(rig.take(B)[0].starts_with("ACK "));
    let ok = rig.take(A).pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains(" RTP/SAVP ") && ok.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{ok}"
    );
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &from_a("ACK", 2, &tag, "z9hG4bKack2", "", ""));
    let a_ep = media_port(&ok);
    let mut key1 = Session::outbound(Suite::Aes128Sha1_80, &[1; 30]).unwrap();
    let send = |key: &mut Session, seq: u16, fill: u8| {
        let p = srtp_packet(key, seq, fill);
        a_rtp.send_to(&p, ("127.0.0.1", a_ep)).unwrap();
    };
    send(&mut key1, 1, 7);
    assert_eq!(packets(&b_rtp, 1), vec![(0, vec![7; 160])], "key 1 works");

    // A offers key 2; B is asked. Until B accepts, A still sends with key 1 (RFC 4568
    // 7.1.4), and the box still reads it.
    rig.send(
        A,
        &from_a("INVITE", 3, &tag, "z9hG4bKre1", "", &keyed(a_port, 2)),
    );
    let re = rig.take(B).pop().unwrap();
    assert!(
        re.starts_with("INVITE ") && !re.contains("a=crypto"),
        "{re}"
    );
    send(&mut key1, 2, 8);
    assert_eq!(packets(&b_rtp, 1), vec![(0, vec![8; 160])], "pending offer");
    // B refuses: A is told, and the session (key 1) stays as it was (RFC 3264 8).
    rig.send(B, &answer(&re, "488 Not Acceptable Here", "callee", ""));
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 488"), "{r}");
    send(&mut key1, 3, 9);
    assert_eq!(
        packets(&b_rtp, 1),
        vec![(0, vec![9; 160])],
        "a refused offer leaves key 1"
    );

    // Offered again and accepted: key 2 from the 200 on, and key 1 no more.
    rig.send(
        A,
        &from_a("INVITE", 4, &tag, "z9hG4bKre2", "", &keyed(a_port, 2)),
    );
    let re = rig.take(B).pop().unwrap();
    assert!(re.starts_with("INVITE "), "{re}");
    rig.send(
        B,
        &answer(&re, "200 OK", "callee", &sdp(b_port, "sendrecv")),
    );
    assert!(rig.take(B).iter().any(|m| m.starts_with("ACK ")));
    let ok = rig.take(A).pop().unwrap();
    assert!(
        ok.starts_with("SIP/2.0 200") && ok.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{ok}"
    );
    rig.send(A, &from_a("ACK", 4, &tag, "z9hG4bKack4", "", ""));
    let mut key2 = Session::outbound(Suite::Aes128Sha1_80, &[2; 30]).unwrap();
    send(&mut key1, 4, 10);
    send(&mut key2, 5, 11);
    assert_eq!(
        packets(&b_rtp, 2),
        vec![(0, vec![11; 160])],
        "only key 2 once accepted"
    );
}

#[tokio::test]
async fn a_blind_transfer_follows_the_targets_forwarding() {
    use config::{CallOrigin::*, ForwardCause::*};
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let e = ext(c, "103");
            e.forwarding = vec![rule(NoAnswer, Transfer, "104"), rule(Busy, Any, "104")];
            e.no_answer_seconds = 8;
        }),
    );
    let (inv, _tag, _a_ep, _a_rtp, _b_rtp) = three_phones(&mut rig);
    const D: &str = "127.0.0.1:7004";
    register_all(&mut rig, &[("104", D)]);
    blind_transfer_to_103_ringing(&mut rig, &inv);
    // 103 does not answer within its 8 s: it is cancelled and 104 rings instead; the
    // transferor is told nothing has failed.
    rig.advance(Duration::from_secs(9));
    assert!(rig.take(C).iter().any(|m| m.starts_with("CANCEL ")));
    let inv_d = invites(&mut rig, D);
    assert!(!inv_d.is_empty(), "104 rings");
    let via = |m: &String| header(m, "Via").unwrap().to_string();
    assert!(
        inv_d.iter().all(|m| via(m) == via(&inv_d[0])),
        "one INVITE, retransmitted"
    );
    assert!(
        header(&inv_d[0], "From").unwrap().contains("sip:101@"),
        "{}",
        inv_d[0]
    );
    assert!(rig
        .take(B)
        .iter()
        .all(|m| !m.contains("sipfrag") || !m.contains("SIP/2.0 4")));
    // 104 answers: the transfer succeeded.
    let (_d_rtp, d_port) = rtp_socket();
    rig.send(
        D,
        &answer_at(
            &inv_d[0],
            "200 OK",
            "fwd",
            &sdp(d_port, "sendrecv"),
            &format!("104@{D}"),
        ),
    );
    transfer_done(&rig.take(B));
    let calls = rig.pbx.calls(rig.now);
    assert_eq!(
        (calls[0].caller.as_str(), calls[0].callee.as_str()),
        ("101", "104")
    );

    // The same call transferred back to 103 by 104, and 103 answers busy: its busy
    // forward rings 104 (in the call, but with call waiting), which declines: the
    // transfer fails with 486 and the call goes on.
    let from_d = format!(
        "REFER sip:101@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {D};branch=z9hG4bKdref;rport\r\nFrom: {};tag=fwd\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 REFER\r\nContact: <sip:104@{D}>\r\nRefer-To: sip:103@{PBX}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        header(&inv_d[0], "To").unwrap(),
        header(&inv_d[0], "From").unwrap(),
        header(&inv_d[0], "Call-ID").unwrap()
    );
    rig.send(D, &from_d);
    let inv_c2 = invites(&mut rig, C).pop().unwrap();
    rig.send(
        C,
        &answer_at(&inv_c2, "486 Busy Here", "target2", "", &format!("103@{C}")),
    );
    let again = invites(&mut rig, D)
        .pop()
        .expect("the busy forward rings 104");
    assert!(
        header(&again, "From").unwrap().contains("sip:101@"),
        "{again}"
    );
    rig.send(
        D,
        &answer_at(&again, "486 Busy Here", "fwd2", "", &format!("104@{D}")),
    );
    let got = rig.take(D);
    assert!(
        got.iter()
            .any(|m| m.starts_with("NOTIFY") && m.contains("SIP/2.0 486")),
        "{got:?}"
    );
    assert_eq!(rig.pbx.calls(rig.now).len(), 1, "the call goes on");
}

#[tokio::test]
async fn the_ports_of_a_leg_that_lost_are_given_back() {
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            c.ring_groups
                .push(config::RingGroup::new("600", &["102", "103"]))
        }),
    );
    register_all(&mut rig, &[("102", B), ("103", C)]);
    let (_b_rtp, b_port) = rtp_socket();
    call_as(&mut rig, "101", A, "600", "grp-ports");
    let inv_b = invites(&mut rig, B).pop().unwrap();
    let inv_c = invites(&mut rig, C).pop().unwrap();
    let lost = media_port(&inv_c);
    rig.send(
        C,
        &answer_at(&inv_c, "180 Ringing", "c", "", &format!("103@{C}")),
    );
    rig.send(B, &answer(&inv_b, "200 OK", "b", &sdp(b_port, "sendrecv")));
    let cancel = rig
        .take(C)
        .into_iter()
        .find(|m| m.starts_with("CANCEL "))
        .unwrap();
    rig.send(
        C,
        &answer_at(&cancel, "200 OK", "c", "", &format!("103@{C}")),
    );
    rig.send(
        C,
        &answer_at(
            &inv_c,
            "487 Request Terminated",
            "c",
            "",
            &format!("103@{C}"),
        ),
    );
    assert!(
        UdpSocket::bind(("127.0.0.1", lost)).is_err(),
        "103's endpoint still holds its port"
    );
    // Within a second the box gives the lost leg's ports back; the call goes on.
    rig.advance(Duration::from_millis(1100));
    let t0 = std::time::Instant::now();
    while UdpSocket::bind(("127.0.0.1", lost)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "port {lost} never freed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let calls = rig.pbx.calls(rig.now);
    assert_eq!((calls.len(), calls[0].state.as_str()), (1, "answered"));
}

#[tokio::test]
async fn a_forward_reaches_only_what_the_forwarding_extension_may_call() {
    use config::{CallOrigin::*, ForwardCause::*};
    // 102 may call internal numbers only; its unavailable rule names a premium number
    // through the provider. 101 (no restriction) calls 102, which is not registered.
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            provider_and_internal_only_group(c);
            let e = ext(c, "102");
            e.permission_group = "internal".into();
            e.forwarding = vec![rule(Unavailable, Any, "0900123")];
            let e = ext(c, "103");
            e.forwarding = vec![rule(Busy, Any, "102")];
            e.call_limit = 1;
        }),
    );
    let got = call_as(&mut rig, "101", A, "102", "fw-deny");
    assert!(got.starts_with("SIP/2.0 403"), "{got}");
    assert!(
        rig.out.iter().all(|t| !t.bytes.starts_with(b"INVITE")),
        "nothing went to the provider"
    );
    // Through two forwards (103 busy -> 102 unavailable -> premium): still refused.
    register_all(&mut rig, &[("103", C)]);
    let inv = call_as(&mut rig, "101", A, "103", "fw-busy-1");
    assert!(inv.is_empty() || inv.starts_with("SIP/2.0 1"), "{inv}");
    rig.out.clear();
    let got = call_as(&mut rig, "104", D, "103", "fw-deny-2");
    assert!(got.starts_with("SIP/2.0 403"), "{got}");
    assert!(rig.out.iter().all(
        |t| !t.bytes.starts_with(b"INVITE sip:0900") && !t.bytes.starts_with(b"INVITE sip:900")
    ));
}

#[tokio::test]
async fn a_transfers_forward_reaches_only_what_the_target_may_call() {
    use config::{CallOrigin::*, ForwardCause::*};
    // 103 may call internal numbers only; its no-answer rule for transferred calls
    // names a premium number through the provider.
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            provider_and_internal_only_group(c);
            let e = ext(c, "103");
            e.permission_group = "internal".into();
            e.forwarding = vec![rule(NoAnswer, Transfer, "0900123")];
            e.no_answer_seconds = 6;
        }),
    );
    let (inv, _tag, _a_ep, _a_rtp, _b_rtp) = three_phones(&mut rig);
    blind_transfer_to_103_ringing(&mut rig, &inv);
    rig.out.clear();
    // 103 does not answer: the forward is refused, nothing goes to the provider, and
    // the transfer fails back to the transferor; the call goes on.
    rig.advance(Duration::from_secs(7));
    assert!(
        rig.out.iter().all(|t| !t.bytes.starts_with(b"INVITE ")),
        "nothing was rung"
    );
    let got = rig.take(B);
    assert!(
        got.iter()
            .any(|m| m.starts_with("NOTIFY") && m.contains("\r\n\r\nSIP/2.0 4")),
        "{got:?}"
    );
    assert_eq!(rig.pbx.calls(rig.now).len(), 1, "the call goes on");
}

/// A provider reached with the prefix 0, and a permission group "internal" that allows
/// no number through it.
fn provider_and_internal_only_group(c: &mut config::Config) {
    let mut i = config::SipInterface::new("prov", "127.0.0.9");
    i.keepalive = 0;
    c.sip_interfaces = vec![i];
    c.outbound_routes =
        vec![
            serde_json::from_value(serde_json::json!({"prefix": "0", "interfaces": ["prov"]}))
                .unwrap(),
        ];
    c.permission_groups = vec![serde_json::from_value(
        serde_json::json!({"name": "internal", "default_allow": false}),
    )
    .unwrap()];
}

/// 102 transfers 101 to 103 (blind, REFER in the dialog of `inv`), and 103 rings; what
/// 102 was told so far is dropped.
fn blind_transfer_to_103_ringing(rig: &mut Rig, inv: &str) {
    rig.send(
        B,
        &from_b(
            inv,
            "REFER",
            1,
            "z9hG4bKrefer",
            &format!("Refer-To: sip:103@{PBX}\r\n"),
        ),
    );
    rig.take(B);
    let inv_c = invites(rig, C).pop().unwrap();
    rig.send(
        C,
        &answer_at(&inv_c, "180 Ringing", "target", "", &format!("103@{C}")),
    );
    rig.take(B);
}

/// An RFC 4733 event packet for `digit` (pt 101), the last of its event when `end`.
fn event(digit: u8, end: bool, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 101, 0, 0, 0, 0, 0x10, 0, 9, 9, 9, 9];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[digit, if end { 0x8a } else { 0x0a }, 0x03, 0x20]);
    p
}

/// 101 dials the echo test (`*43`) offering `a_port`; returns the box's 200.
fn echo_call(rig: &mut Rig, a_port: u16, call_id: &str) -> String {
    assert!(do_register(rig, "101", A, 3600, sip::auth::Algorithm::Md5).starts_with("SIP/2.0 200"));
    call_as_with(rig, "101", A, "*43", call_id, &sdp(a_port, "sendrecv"))
}

fn ack_for(ok: &str, call_id: &str) -> String {
    let to = header(ok, "To").unwrap();
    format!("ACK sip:*43@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bK{call_id}ack;rport\r\nFrom: <sip:101@127.0.0.1>;tag=t{call_id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
}

#[tokio::test]
async fn the_echo_test_answers_beeps_echoes_and_hangs_up_on_hash() {
    let mut rig = Rig::new(Settings::default());
    let (a_rtp, a_port) = rtp_socket();
    let ok = echo_call(&mut rig, a_port, "echo1");
    // The box answers itself, header by header.
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(header(&ok, "To").unwrap().contains(";tag="), "{ok}");
    assert_eq!(header(&ok, "CSeq"), Some("2 INVITE"), "{ok}");
    assert!(header(&ok, "Contact").unwrap().contains("sip:"), "{ok}");
    assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"), "{ok}");
    assert!(
        ok.contains("m=audio ") && ok.contains(" RTP/AVP 0 101\r\n"),
        "{ok}"
    );
    assert!(ok.contains("a=rtpmap:101 telephone-event/8000"), "{ok}");
    assert!(rig.take(B).is_empty(), "nobody else is rung");
    rig.send(A, &ack_for(&ok, "echo1"));
    let box_port = media_port(&ok);
    let info = rig.pbx.calls(rig.now);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].state, "answered");

    // A quarter-second beep (12-13 packets of PCMU), then what A sends comes back.
    let beep = packets(&a_rtp, 13);
    assert!(
        beep.len() >= 12 && beep.iter().all(|(pt, _)| *pt == 0),
        "{}",
        beep.len()
    );
    let done = rig.media_events(Duration::from_millis(300));
    assert!(
        done.iter()
            .any(|e| matches!(e, media::Event::PlayDone { .. })),
        "{done:?}"
    );
    drain(&a_rtp);
    let to_box = format!("127.0.0.1:{box_port}");
    for fill in [0x11, 0x22, 0x33] {
        a_rtp.send_to(&rtp(0, fill), &to_box).unwrap();
    }
    let back = packets(&a_rtp, 3);
    assert_eq!(
        back.iter()
            .map(|(pt, p)| (*pt, p[0], p.len()))
            .collect::<Vec<_>>(),
        vec![(0, 0x11, 160), (0, 0x22, 160), (0, 0x33, 160)],
        "the caller hears itself"
    );
    // A 5 is only echoed; # ends the test: the box hangs up.
    for (i, d) in [5u8, 11].into_iter().enumerate() {
        for k in 0..4u16 {
            a_rtp
                .send_to(&event(d, k >= 2, 100 + i as u16 * 10 + k), &to_box)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let digits = rig.media_events(Duration::from_millis(300));
    assert!(
        digits
            .iter()
            .any(|e| matches!(e, media::Event::Dtmf { digit: '#', .. })),
        "{digits:?}"
    );
    let bye = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("BYE "))
        .expect("BYE");
    assert!(
        bye.starts_with("BYE sip:101@127.0.0.1:7001 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(header(&bye, "Call-ID"), Some("echo1"));
    assert!(header(&bye, "From")
        .unwrap()
        .contains(&param(header(&ok, "To").unwrap(), "tag").to_string()));
    assert!(rig.pbx.calls(rig.now).is_empty());
    let rec = rig.pbx.poll_record().expect("a history record");
    assert_eq!(rec.called, "*43");
    assert_eq!(rec.answered_by, "echo test");
    assert_eq!(rec.status, 200);
}

#[tokio::test]
async fn the_echo_test_ends_by_itself_and_takes_hash_by_sip_info() {
    let mut rig = Rig::new(Settings::default());
    let (_a_rtp, a_port) = rtp_socket();
    let ok = echo_call(&mut rig, a_port, "echo2");
    rig.send(A, &ack_for(&ok, "echo2"));
    // Nothing pressed: the box hangs up after a minute.
    rig.advance(Duration::from_secs(59));
    assert!(!rig.take(A).iter().any(|m| m.starts_with("BYE ")));
    rig.advance(Duration::from_secs(2));
    assert!(
        rig.take(A).iter().any(|m| m.starts_with("BYE ")),
        "no BYE after the limit"
    );
    assert!(rig.pbx.calls(rig.now).is_empty());

    // A # by SIP INFO ends it too; the INFO gets its 200.
    let ok = echo_call(&mut rig, a_port, "echo3");
    rig.send(A, &ack_for(&ok, "echo3"));
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    let body = "Signal=#\r\nDuration=160\r\n";
    rig.send(A, &format!("INFO sip:*43@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKecho3info;rport\r\nFrom: <sip:101@127.0.0.1>;tag=techo3\r\nTo: <sip:*43@127.0.0.1>;tag={tag}\r\nCall-ID: echo3\r\nCSeq: 3 INFO\r\nMax-Forwards: 70\r\nContent-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    let got = rig.take(A);
    assert!(
        got.iter()
            .any(|m| m.starts_with("SIP/2.0 200") && m.contains("CSeq: 3 INFO")),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m.starts_with("BYE ")), "{got:?}");
    assert!(rig.pbx.calls(rig.now).is_empty());

    // A CANCEL that crossed the 200 changes nothing; the administrator's hang-up
    // sends the caller a BYE.
    let ok = echo_call(&mut rig, a_port, "echo4");
    rig.send(A, &format!("CANCEL sip:*43@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKecho4b;rport\r\nFrom: <sip:101@127.0.0.1>;tag=techo4\r\nTo: <sip:*43@127.0.0.1>\r\nCall-ID: echo4\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    let got = rig.take(A);
    assert!(got.iter().all(|m| !m.starts_with("SIP/2.0 487")), "{got:?}");
    rig.send(A, &ack_for(&ok, "echo4"));
    let calls = rig.pbx.calls(rig.now);
    assert_eq!(calls.len(), 1, "the echo test goes on");
    assert!(rig.pbx.hang_up_call(rig.now, calls[0].id));
    rig.drain();
    let bye = rig
        .take(A)
        .into_iter()
        .find(|m| m.starts_with("BYE "))
        .expect("BYE");
    assert_eq!(header(&bye, "Call-ID"), Some("echo4"));
    assert!(rig.pbx.calls(rig.now).is_empty());
}

#[tokio::test]
async fn do_not_disturb_sends_callers_to_the_busy_rule_and_shows_on_the_panel() {
    use config::{CallOrigin::*, ForwardCause::*};
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let e = ext(c, "102");
            e.do_not_disturb = true;
            e.forwarding = vec![rule(Busy, Any, "104")];
        }),
    );
    register_all(&mut rig, &[("102", B), ("104", D)]);
    let lamp = |rig: &Rig, n: &str| {
        rig.pbx
            .lamps()
            .into_iter()
            .find(|l| l.number == n)
            .map(|l| l.state)
    };
    assert_eq!(lamp(&rig, "102"), Some("dnd"));
    assert_eq!(lamp(&rig, "104"), Some("idle"));
    // 102's phone does not ring; its busy rule does: 104 rings.
    let got = call_as(&mut rig, "101", A, "102", "dnd-1");
    assert!(got.is_empty() || got.starts_with("SIP/2.0 1"), "{got}");
    assert!(invites(&mut rig, B).is_empty(), "a phone in DND rang");
    assert_eq!(invites(&mut rig, D).len(), 1, "the busy rule did not apply");

    // A forward of every call goes first: 104 rings, 102 does not.
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| {
            let e = ext(c, "102");
            e.do_not_disturb = true;
            e.forward = "104".into();
        }),
    );
    register_all(&mut rig, &[("102", B), ("104", D)]);
    call_as(&mut rig, "101", A, "102", "dnd-0");
    assert!(invites(&mut rig, B).is_empty());
    assert_eq!(invites(&mut rig, D).len(), 1, "the forward did not apply");

    // Without a busy rule the caller hears busy, and why.
    let mut rig = Rig::with_config(
        Settings::default(),
        cfg_with(|c| ext(c, "102").do_not_disturb = true),
    );
    register_all(&mut rig, &[("102", B)]);
    let got = call_as(&mut rig, "101", A, "102", "dnd-2");
    assert!(
        got.starts_with("SIP/2.0 486 Busy Here") && got.contains("do not disturb"),
        "{got}"
    );
    assert!(invites(&mut rig, B).is_empty());
    // Switched off (a configuration change): it rings again and its lamp is idle.
    rig.pbx
        .set_snapshot(std::sync::Arc::new(config::Snapshot::new(
            2,
            cfg_with(|_| {}),
        )));
    assert_eq!(lamp(&rig, "102"), Some("idle"));
    let got = call_as(&mut rig, "101", A, "102", "dnd-3");
    assert!(got.is_empty() || got.starts_with("SIP/2.0 1"), "{got}");
    assert_eq!(invites(&mut rig, B).len(), 1);
}
