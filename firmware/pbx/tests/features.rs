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
    let mut rig = Rig::new(Settings {
        music_on_hold: media::Clip::tone(&[425.0], 1000, 0, 0.5),
        ..Settings::default()
    });
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
