//! The exchange core driven with raw SIP on a virtual clock: no sockets for signalling,
//! and timers that take seconds run in microseconds.

mod common;

use common::*;
use config::Snapshot;
use pbx::{Proto, Settings, Source};
use sip::auth::Algorithm;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn registrar_negotiates_expires_and_expires_locations() {
    let mut rig = Rig::new(Settings::default());
    let r = do_register(&mut rig, "101", A, 30, Algorithm::Md5);
    assert!(r.starts_with("SIP/2.0 423"), "{r}");
    assert_eq!(header(&r, "Min-Expires"), Some("60"));
    let r = do_register(&mut rig, "101", A, 7200, Algorithm::Md5);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    assert!(
        header(&r, "Contact").unwrap().ends_with("expires=3600"),
        "{r}"
    );
    assert!(
        header(&r, "Via")
            .unwrap()
            .contains("rport=7001;received=127.0.0.1"),
        "{r}"
    );
    // The last registration wins: one location per account.
    let r = do_register(&mut rig, "101", B, 120, Algorithm::Sha256);
    assert!(r.starts_with("SIP/2.0 200"), "SHA-256 accepted: {r}");
    let regs = rig.pbx.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].source, B.parse().unwrap());
    assert!(rig.pbx.take_registrations_dirty());
    rig.advance(Duration::from_secs(119));
    assert_eq!(rig.pbx.registrations().len(), 1);
    rig.advance(Duration::from_secs(3));
    assert!(rig.pbx.registrations().is_empty(), "expired location kept");
}

#[tokio::test]
async fn stale_nonce_is_rechallenged_and_unregister_works() {
    let mut rig = Rig::new(Settings::default());
    rig.send(A, &register("101", A, 1, 120, ""));
    let ch = header(&rig.take(A).pop().unwrap(), "WWW-Authenticate")
        .unwrap()
        .to_string();
    let auth = reg_auth(&ch, "101", "Secret-101x");
    rig.send(A, &register("101", A, 2, 120, &auth));
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 200"));
    rig.advance(Duration::from_secs(301));
    // Refresh with the old nonce: right password, stale nonce.
    rig.send(A, &register("101", A, 3, 120, &auth));
    let r = rig.take(A).pop().unwrap();
    assert!(
        r.starts_with("SIP/2.0 401") && r.contains("stale=true"),
        "{r}"
    );
    let wrong = reg_auth(&ch, "101", "bad");
    rig.send(A, &register("101", A, 4, 120, &wrong));
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 403"));
    let ch = header(&r, "WWW-Authenticate").unwrap().to_string();
    let auth = reg_auth(&ch, "101", "Secret-101x");
    rig.send(A, &register("101", A, 5, 0, &auth));
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 200"));
    assert!(rig.pbx.registrations().is_empty());
}

#[tokio::test]
async fn call_is_connected_relayed_and_hung_up() {
    let mut rig = Rig::new(Settings::default());
    let inv = start_call(&mut rig);
    // Timer A: the INVITE to B is retransmitted until B answers.
    rig.advance(Duration::from_millis(600));
    assert_eq!(rig.take(B).len(), 1, "one retransmission after T1");
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    assert!(rig.take(A)[0].starts_with("SIP/2.0 180"));
    rig.advance(Duration::from_secs(5));
    assert!(
        rig.take(B).is_empty(),
        "no retransmissions after a provisional"
    );
    let b_sdp = SDP.replace("9000", "9002");
    rig.send(B, &answer(&inv, "200 OK", "callee", &b_sdp));
    let acks = rig.take(B);
    assert!(acks[0].starts_with(&format!("ACK sip:102@{B}")), "{acks:?}");
    let ok = rig.take(A).pop().unwrap();
    assert!(
        ok.starts_with("SIP/2.0 200") && ok.contains("m=audio ") && ok.contains("RTP/AVP 0 101"),
        "{ok}"
    );
    assert_eq!(rig.pbx.calls(rig.now)[0].state, "answered");
    // No ACK yet: the 200 is retransmitted.
    rig.advance(Duration::from_millis(600));
    assert!(rig.take(A).iter().any(|m| m.starts_with("SIP/2.0 200")));
    let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
    rig.send(A, &format!("ACK sip:102@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKack2;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"));
    rig.advance(Duration::from_secs(2));
    assert!(rig.take(A).is_empty(), "200 retransmitted after the ACK");
    // The caller hangs up.
    rig.send(A, &format!("BYE sip:102@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKbye;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    assert!(rig.take(A)[0].starts_with("SIP/2.0 200"));
    let bye = rig.take(B).pop().unwrap();
    assert!(
        bye.starts_with("BYE ") && bye.contains("tag=callee"),
        "{bye}"
    );
    assert!(rig.pbx.calls(rig.now).is_empty());
    rig.send(B, &answer(&bye, "200 OK", "callee", ""));
    // Late retransmissions of the caller's BYE are absorbed with the same 200.
    rig.send(A, &format!("BYE sip:102@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKbye;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    assert!(rig.take(A)[0].starts_with("SIP/2.0 200"));
}

#[tokio::test]
async fn late_offer_is_offered_in_the_200_and_answered_in_the_ack() {
    for ack_answer in [true, false] {
        let mut rig = Rig::new(Settings::default());
        let inv = start_call_with(&mut rig, "");
        // The callee is offered the caller's codecs as if the caller had offered them.
        assert!(
            header(&inv, "Content-Type") == Some("application/sdp")
                && inv.contains("m=audio ")
                && inv.contains("a=rtpmap:0 PCMU/8000")
                && inv.contains("telephone-event/8000"),
            "{inv}"
        );
        // Early media cannot reach a late-offer caller: its 183 has no SDP.
        rig.send(B, &answer(&inv, "183 Session Progress", "callee", SDP));
        let p = rig.take(A).pop().unwrap();
        assert!(p.starts_with("SIP/2.0 183"), "{p}");
        assert_eq!(header(&p, "Content-Length"), Some("0"), "{p}");
        assert!(header(&p, "Content-Type").is_none(), "{p}");
        rig.send(
            B,
            &answer(&inv, "200 OK", "callee", &SDP.replace("9000", "9002")),
        );
        assert!(rig.take(B)[0].starts_with("ACK "));
        let ok = rig.take(A).pop().unwrap();
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"), "{ok}");
        assert!(
            ok.contains("m=audio ") && ok.contains("RTP/AVP 0 101"),
            "the box offers: {ok}"
        );
        assert!(header(&ok, "Contact").is_some(), "{ok}");
        let tag = param(header(&ok, "To").unwrap(), "tag").to_string();
        let body = if ack_answer { SDP } else { "" };
        let ty = if ack_answer {
            "Content-Type: application/sdp\r\n"
        } else {
            ""
        };
        rig.send(A, &format!("ACK sip:102@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKack2;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: 2 ACK\r\n{ty}Content-Length: {}\r\n\r\n{body}", body.len()));
        rig.advance(Duration::from_secs(2));
        let to_a = rig.take(A);
        let to_b = rig.take(B);
        if ack_answer {
            assert!(to_a.is_empty() && to_b.is_empty(), "{to_a:?} {to_b:?}");
            assert_eq!(rig.pbx.calls(rig.now)[0].state, "answered");
        } else {
            // No answer in the ACK: the session cannot start; both sides get BYE.
            assert!(to_a.iter().any(|m| m.starts_with("BYE ")), "{to_a:?}");
            assert!(to_b.iter().any(|m| m.starts_with("BYE ")), "{to_b:?}");
            assert!(rig.pbx.calls(rig.now).is_empty());
        }
    }
}

#[tokio::test]
async fn caller_cancels_and_unanswered_calls_time_out() {
    let mut rig = Rig::new(Settings {
        ring_timeout: Duration::from_secs(20),
        ..Settings::default()
    });
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    let ringing = rig.take(A).pop().unwrap();
    let dialog_tag = param(header(&ringing, "To").unwrap(), "tag").to_string();
    rig.send(A, &format!("CANCEL sip:102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKinv2;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>\r\nCall-ID: call-1\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    let got = rig.take(A);
    assert!(
        got.iter()
            .any(|m| m.starts_with("SIP/2.0 200") && m.contains("CSeq: 2 CANCEL")),
        "{got:?}"
    );
    assert!(got.iter().any(|m| m.starts_with("SIP/2.0 487")), "{got:?}");
    // RFC 3261 9.2: the CANCEL's 200 and the INVITE's 487 carry the dialog's To tag.
    for m in &got {
        assert_eq!(param(header(m, "To").unwrap(), "tag"), dialog_tag, "{m}");
    }
    let cancel = rig.take(B).pop().unwrap();
    assert!(
        cancel.starts_with("CANCEL sip:102@") && cancel.contains("CSeq: 1 CANCEL"),
        "{cancel}"
    );
    rig.send(B, &answer(&cancel, "200 OK", "callee", ""));
    rig.send(B, &answer(&inv, "487 Request Terminated", "callee", ""));
    assert!(
        rig.take(B).iter().any(|m| m.starts_with("ACK ")),
        "487 must be ACKed"
    );

    // A second call nobody answers: 480 after the ring timeout.
    let mut rig = Rig::new(Settings {
        ring_timeout: Duration::from_secs(20),
        ..Settings::default()
    });
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    rig.take(A);
    rig.advance(Duration::from_secs(21));
    assert!(rig.take(A).iter().any(|m| m.starts_with("SIP/2.0 480")));
    assert!(rig.take(B).iter().any(|m| m.starts_with("CANCEL ")));
}

#[tokio::test]
async fn callee_timeout_gives_the_caller_480() {
    let mut rig = Rig::new(Settings::default());
    start_call(&mut rig);
    // B never answers: Timer B fires after 64*T1.
    rig.advance(Duration::from_secs(33));
    let sent_to_b = rig.take(B);
    assert_eq!(
        sent_to_b.len(),
        6,
        "Timer A retransmissions: {}",
        sent_to_b.len()
    );
    assert!(rig.take(A).iter().any(|m| m.starts_with("SIP/2.0 480")));
    assert!(rig.pbx.calls(rig.now).is_empty());
}

#[tokio::test]
async fn busy_level_and_call_limit() {
    let mut cfg = config();
    cfg.extensions[0].call_limit = 1; // 101
    cfg.extensions[1].busy_level = 1; // 102
    let mut rig = Rig::with_config(Settings::default(), cfg);
    start_call(&mut rig); // 101 -> 102, ringing: one call for each
    assert_eq!(rig.pbx.calls(rig.now).len(), 1);
    let r = call_as(&mut rig, "103", "127.0.0.1:7003", "102", "busy-1");
    assert!(r.starts_with("SIP/2.0 486"), "busy level: {r}");
    let r = call_as(&mut rig, "101", A, "103", "limit-1");
    assert!(
        r.starts_with("SIP/2.0 403") && r.contains("call limit"),
        "call limit: {r}"
    );
    let r = call_as(&mut rig, "103", "127.0.0.1:7003", "999", "nobody-1");
    assert!(r.starts_with("SIP/2.0 404"), "{r}");
    // 101 is at its call limit as a callee too.
    let r = call_as(&mut rig, "103", "127.0.0.1:7003", "101", "limit-2");
    assert!(r.starts_with("SIP/2.0 486"), "{r}");
}

#[tokio::test]
async fn brute_force_bans_the_address_but_challenges_never_count() {
    let mut rig = Rig::new(Settings::default());
    // A phone that keeps getting challenged (no credentials yet) is never banned.
    for i in 0..50 {
        rig.send(A, &register("101", A, 100 + i, 120, ""));
        assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 401"));
    }
    // An attacker guessing passwords from another address.
    const EVIL: &str = "127.0.0.9:6666";
    rig.send(EVIL, &register("101", EVIL, 1, 120, ""));
    let ch = header(&rig.take(EVIL).pop().unwrap(), "WWW-Authenticate")
        .unwrap()
        .to_string();
    for i in 0..10 {
        let wrong = reg_auth(&ch, "101", &format!("guess-{i}"));
        rig.send(EVIL, &register("101", EVIL, 2 + i, 120, &wrong));
        assert!(
            rig.take(EVIL).pop().unwrap().starts_with("SIP/2.0 403"),
            "guess {i}"
        );
    }
    // Banned: nothing is answered any more, even a right password.
    let right = reg_auth(&ch, "101", "Secret-101x");
    rig.send(EVIL, &register("101", EVIL, 50, 120, &right));
    assert!(rig.take(EVIL).is_empty(), "banned address answered");
    assert_eq!(rig.pbx.bans(rig.now).len(), 1);
    // The phone elsewhere is unaffected.
    assert!(do_register(&mut rig, "101", A, 120, Algorithm::Md5).starts_with("SIP/2.0 200"));
    // The ban ends.
    rig.advance(Duration::from_secs(601));
    assert!(rig.pbx.bans(rig.now).is_empty());
    rig.send(EVIL, &register("101", EVIL, 60, 120, ""));
    assert!(rig.take(EVIL).pop().unwrap().starts_with("SIP/2.0 401"));
}

#[tokio::test]
async fn behind_one_nat_a_guesser_and_a_scanner_are_cut_off_and_the_phone_keeps_working() {
    let mut rig = Rig::new(Settings::default());
    // 101's phone authenticates from 127.0.0.1: the address is trusted.
    assert!(do_register(&mut rig, "101", A, 120, Algorithm::Md5).starts_with("SIP/2.0 200"));
    // A device at the same address guesses 102's password from one port.
    const BAD: &str = "127.0.0.1:40000";
    rig.send(BAD, &register("102", BAD, 1, 120, ""));
    let ch = header(&rig.take(BAD).pop().unwrap(), "WWW-Authenticate")
        .unwrap()
        .to_string();
    for i in 0..10 {
        rig.send(
            BAD,
            &register(
                "102",
                BAD,
                2 + i,
                120,
                &reg_auth(&ch, "102", &format!("guess-{i}")),
            ),
        );
        assert!(rig.take(BAD).pop().unwrap().starts_with("SIP/2.0 403"));
    }
    rig.send(BAD, &register("102", BAD, 20, 120, ""));
    assert!(rig.take(BAD).is_empty(), "the guessing port answered");
    let keys: Vec<String> = rig.pbx.bans(rig.now).into_iter().map(|b| b.key).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&BAD.to_string()) && keys.contains(&"102@127.0.0.1".to_string()));
    // 102 from yet another port is not answered; 101's phone is.
    const OTHER: &str = "127.0.0.1:40001";
    rig.send(OTHER, &register("102", OTHER, 1, 120, ""));
    assert!(rig.take(OTHER).is_empty());
    assert!(do_register(&mut rig, "101", A, 120, Algorithm::Md5).starts_with("SIP/2.0 200"));
    // A scanner's user agent from an address nobody authenticated from: no answer, and
    // the address is banned.
    const SCAN: &str = "127.0.0.9:5060";
    let probe = format!("OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {SCAN};branch=z9hG4bKscan\r\nFrom: <sip:100@x>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: scan\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n");
    rig.send(SCAN, &probe);
    assert!(rig.take(SCAN).is_empty());
    rig.send(
        "127.0.0.9:5999",
        &register("101", "127.0.0.9:5999", 1, 120, ""),
    );
    assert!(rig.take("127.0.0.9:5999").is_empty());
    // The security log gets each ban; the bans go to the store and come back.
    let events = rig.pbx.take_security_events(rig.now);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events[2].event.contains("scanner (friendly-scanner)"),
        "{events:?}"
    );
    assert!(rig.pbx.take_bans_dirty());
    let blob = rig.pbx.export_bans(rig.now);
    let mut fresh = Rig::new(Settings::default());
    assert!(fresh.pbx.import_bans(&blob, fresh.now));
    assert_eq!(fresh.pbx.bans(fresh.now).len(), 3);
    fresh.send(SCAN, &probe.replace("friendly-scanner", "Yealink"));
    assert!(fresh.take(SCAN).is_empty());
    // Lifted, it is answered again.
    assert!(fresh.pbx.lift_ban(fresh.now, "127.0.0.9", "Admin"));
    fresh.send(
        SCAN,
        &probe
            .replace("friendly-scanner", "Yealink")
            .replace("z9hG4bKscan", "z9hG4bKscan2"),
    );
    assert!(fresh.take(SCAN).pop().unwrap().starts_with("SIP/2.0 200"));
}

#[tokio::test]
async fn a_late_answer_after_cancel_is_acked_and_hung_up() {
    let mut rig = Rig::new(Settings::default());
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    rig.take(A);
    rig.send(A, &format!("CANCEL sip:102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKinv2;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>\r\nCall-ID: call-1\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    assert!(rig.take(A).iter().any(|m| m.starts_with("SIP/2.0 487")));
    assert!(rig.take(B).iter().any(|m| m.starts_with("CANCEL ")));
    assert!(rig.pbx.calls(rig.now).is_empty());
    // The phone had already answered: its 200 crosses our CANCEL.
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &SDP.replace("9000", "9002")),
    );
    let to_b = rig.take(B);
    assert!(
        to_b.iter()
            .any(|m| m.starts_with(&format!("ACK sip:102@{B}"))),
        "{to_b:?}"
    );
    assert!(
        to_b.iter()
            .any(|m| m.starts_with(&format!("BYE sip:102@{B}")) && m.contains("tag=callee")),
        "{to_b:?}"
    );
}

/// xorshift, for the mutation test.
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mangle(rng: &mut Xs, msg: &str) -> Vec<u8> {
    let mut m = msg.as_bytes().to_vec();
    const BITS: &[&[u8]] = &[
        b"\r\n",
        b";",
        b",",
        b"<",
        b">",
        b"\"",
        b" ",
        b"=",
        b"0",
        b"\xc3\xa9",
        b"m=audio 0 RTP/AVP 0\r\n",
        b"c=IN IP4 0.0.0.0\r\n",
        b"a=sendonly\r\n",
    ];
    for _ in 0..1 + rng.below(3) {
        if m.is_empty() {
            m.push(b'x');
        }
        let at = rng.below(m.len());
        match rng.below(4) {
            0 => m[at] = rng.next() as u8,
            1 => {
                m.remove(at);
            }
            2 => {
                let b = BITS[rng.below(BITS.len())];
                m.splice(at..at, b.iter().copied());
            }
            _ => m.truncate(at.max(1)),
        }
    }
    m
}

#[tokio::test]
async fn mangled_traffic_in_every_call_state_never_panics() {
    // No bans here: mangled digests would get 127.0.0.1 banned and the rest unexamined.
    let mut rig = Rig::new(Settings {
        ban_after: 0,
        ..Settings::default()
    });
    let inv = start_call(&mut rig);
    let ok_b = answer(&inv, "200 OK", "callee", &SDP.replace("9000", "9002"));
    let ringing = answer(&inv, "180 Ringing", "callee", "");
    let ch_msg = {
        rig.send(A, &register("101", A, 1, 120, ""));
        rig.take(A).pop().unwrap()
    };
    let ch = header(&ch_msg, "WWW-Authenticate").unwrap().to_string();
    let reg = register("101", A, 2, 120, &reg_auth(&ch, "101", "Secret-101x"));
    let pch = {
        rig.send(A, &invite("z9hG4bKfz0", 1, ""));
        rig.take(A)
            .into_iter()
            .find(|m| m.starts_with("SIP/2.0 407"))
            .unwrap()
    };
    let pch = header(&pch, "Proxy-Authenticate").unwrap().to_string();
    let auth_inv = invite(
        "z9hG4bKfz1",
        5,
        &authorization(
            "Proxy-Authorization",
            &pch,
            "101",
            "Secret-101x",
            "INVITE",
            "sip:102@127.0.0.1",
            Algorithm::Md5,
        ),
    );
    let bye = format!("BYE sip:102@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKfzb;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>;tag=x\r\nCall-ID: call-1\r\nCSeq: 9 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    let samples: Vec<(&str, String)> =
        vec![(A, reg), (A, auth_inv), (B, ringing), (B, ok_b), (A, bye)];
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xfeed_beef_1234_5678u64);
    let rounds = std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000usize);
    let mut rng = Xs(seed | 1);
    for i in 0..rounds {
        let (from, msg) = &samples[rng.below(samples.len())];
        let m = mangle(&mut rng, msg);
        let src = Source {
            proto: Proto::Udp,
            remote: from.parse().unwrap(),
            local: PBX.parse().unwrap(),
        };
        rig.pbx.handle_message(rig.now, src, &m);
        rig.drain();
        rig.out.clear();
        if i % 500 == 0 {
            rig.advance(Duration::from_secs(3));
            rig.out.clear();
        }
    }
    // Still serving.
    rig.send(B, &format!("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {B};branch=z9hG4bKalive;rport\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:y@y>\r\nCall-ID: alive\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"));
    let got = rig.take(B);
    assert!(
        got.iter().any(|m| m.starts_with("SIP/2.0 200")),
        "{got:?} bans {:?}",
        rig.pbx.bans(rig.now)
    );
}

#[tokio::test]
async fn the_administrator_hangs_up_ringing_and_answered_calls() {
    // Ringing: the caller gets 480 and the ringing phone a CANCEL.
    let mut rig = Rig::new(Settings::default());
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    rig.take(A);
    let id = rig.pbx.calls(rig.now)[0].id;
    assert!(!rig.pbx.hang_up_call(rig.now, id + 1000), "unknown id");
    assert!(rig.pbx.hang_up_call(rig.now, id));
    rig.drain();
    let to_a = rig.take(A);
    assert!(
        to_a.iter().any(|m| m.starts_with("SIP/2.0 480")),
        "{to_a:?}"
    );
    assert!(rig.take(B).iter().any(|m| m.starts_with("CANCEL ")));
    assert!(!rig.pbx.hang_up_call(rig.now, id), "only once");

    // Answered: both sides get BYE and the call is gone.
    let mut rig = Rig::new(Settings::default());
    let inv = start_call(&mut rig);
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &SDP.replace("9000", "9002")),
    );
    rig.take(B);
    rig.take(A);
    let id = rig.pbx.calls(rig.now)[0].id;
    assert!(rig.pbx.hang_up_call(rig.now, id));
    rig.drain();
    assert!(rig.take(A).iter().any(|m| m.starts_with("BYE ")));
    assert!(rig.take(B).iter().any(|m| m.starts_with("BYE ")));
    assert!(rig.pbx.calls(rig.now).is_empty());
}

#[test]
fn keepalives_notice_a_dead_trunk_and_a_live_one() {
    // Documentation addresses: the core only queues datagrams, nothing is sent.
    let mut cfg = config();
    let mut dead = config::SipInterface::new("dead", "192.0.2.1");
    dead.keepalive = 5;
    let mut live = config::SipInterface::new("live", "192.0.2.2");
    live.keepalive = 5;
    cfg.sip_interfaces = vec![dead, live];
    let mut rig = Rig::with_config(Settings::default(), cfg);
    rig.advance(Duration::from_secs(2));
    let options: Vec<String> = rig
        .out
        .iter()
        .filter(|t| t.bytes.starts_with(b"OPTIONS"))
        .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
        .collect();
    assert!(
        options
            .iter()
            .any(|o| o.starts_with("OPTIONS sip:192.0.2.1 ")),
        "{options:?}"
    );
    // The live one answers (even 404 means the server is there).
    let live_opt = options
        .iter()
        .find(|o| o.starts_with("OPTIONS sip:192.0.2.2 "))
        .unwrap()
        .clone();
    let answer = answer(&live_opt, "404 Not Found", "x", "");
    rig.send("192.0.2.2:5060", &answer);
    let state = |rig: &Rig, n: &str| {
        let peers = rig.pbx.peers(rig.now);
        peers
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .keepalive
            .clone()
    };
    assert_eq!(state(&rig, "live"), "up");
    assert_eq!(state(&rig, "dead"), "unknown");
    // No answer within the transaction timeout (32 s): down.
    rig.advance(Duration::from_secs(40));
    assert_eq!(state(&rig, "dead"), "down");
}

#[test]
fn a_silent_server_hands_over_to_the_domains_next_one() {
    // RFC 3263 4.3: a provider named by domain with two servers (SRV order). The first
    // never answers the keepalive: the next OPTIONS goes to the second, which answers.
    let mut cfg = config();
    let mut i = config::SipInterface::new("prov", "provider.test");
    i.keepalive = 5;
    cfg.sip_interfaces = vec![i];
    let mut rig = Rig::with_config(Settings::default(), cfg);
    let (first, second): (std::net::SocketAddr, std::net::SocketAddr) = (
        "192.0.2.10:5060".parse().unwrap(),
        "192.0.2.11:5060".parse().unwrap(),
    );
    rig.pbx
        .set_peer_addresses("prov", "provider.test", vec![first, second]);
    let options_to = |rig: &Rig, a: std::net::SocketAddr| -> Vec<String> {
        rig.out
            .iter()
            .filter(|t| t.bytes.starts_with(b"OPTIONS") && t.dest == a)
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .collect()
    };
    rig.advance(Duration::from_secs(2));
    assert!(!options_to(&rig, first).is_empty());
    assert!(options_to(&rig, second).is_empty());
    rig.advance(Duration::from_secs(40));
    assert_eq!(rig.pbx.peers(rig.now)[0].keepalive, "down");
    assert_eq!(rig.pbx.peers(rig.now)[0].address, Some(second));
    // The periodic lookup answering the same two does not put the silent one first.
    rig.pbx
        .set_peer_addresses("prov", "provider.test", vec![first, second]);
    rig.advance(Duration::from_secs(6));
    let to_second = options_to(&rig, second);
    assert!(!to_second.is_empty(), "no OPTIONS to the next server");
    let a = answer(to_second.last().unwrap(), "200 OK", "x", "");
    rig.send("192.0.2.11:5060", &a);
    assert_eq!(rig.pbx.peers(rig.now)[0].keepalive, "up");
}

#[test]
fn a_corrected_provider_password_registers_at_once() {
    let provider = "192.0.2.3:5060";
    let mut cfg = config();
    let mut i = config::SipInterface::new("prov", "192.0.2.3");
    i.keepalive = 0;
    i.register = true;
    i.username = "trunkuser".into();
    i.password = "Wrong-Pass-999".into();
    cfg.sip_interfaces = vec![i];
    let mut rig = Rig::with_config(Settings::default(), cfg.clone());
    let registers = |rig: &Rig| -> Vec<String> {
        rig.out
            .iter()
            .filter(|t| t.bytes.starts_with(b"REGISTER"))
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .collect()
    };
    let challenge = |req: &str| {
        answer(req, "401 Unauthorized", "p1", "").replacen(
            "Content-Length:",
            "WWW-Authenticate: Digest realm=\"provider\", nonce=\"n1\"\r\nContent-Length:",
            1,
        )
    };
    rig.advance(Duration::from_millis(1500));
    let first = registers(&rig).last().unwrap().clone();
    assert!(!first.contains("Authorization:"));
    rig.send(provider, &challenge(&first));
    let second = registers(&rig).last().unwrap().clone();
    assert!(
        second.contains("Authorization: Digest username=\"trunkuser\""),
        "{second}"
    );
    // The provider refuses the answer: wrong password, retried only after the back-off.
    rig.send(provider, &challenge(&second));
    let failed = rig.pbx.peers(rig.now)[0].clone();
    assert_eq!(failed.registration, "failed");
    assert!(failed.detail.contains("password"), "{}", failed.detail);
    let sent = registers(&rig).len();
    rig.advance(Duration::from_secs(5));
    assert_eq!(
        registers(&rig).len(),
        sent,
        "retried before the back-off: {:#?}",
        registers(&rig)
    );
    // The admin corrects the password: a new REGISTER goes out within the next sweep.
    cfg.sip_interfaces[0].password = "Provider-Pass-1".into();
    rig.pbx.set_snapshot(Arc::new(Snapshot::new(2, cfg)));
    rig.advance(Duration::from_millis(1500));
    // (With its UDP retransmission, Timer E, there may be two.)
    assert!(registers(&rig).len() > sent, "no REGISTER after the fix");
    assert_eq!(rig.pbx.peers(rig.now)[0].registration, "registering");
    // A provider granting an absurd lifetime: registered, refreshed within a day.
    let third = registers(&rig).last().unwrap().clone();
    // (An Expires header that large is refused by the parser; a Contact parameter is not.)
    let ok = answer(&third, "200 OK", "p2", "").replacen(
        &format!("<sip:102@{B}>"),
        &format!("<sip:102@{B}>;expires=18446744073709551615"),
        1,
    );
    rig.send(provider, &ok);
    let p = rig.pbx.peers(rig.now)[0].clone();
    assert_eq!(p.registration, "registered");
    assert!(p.expires_in <= 86_400, "{}", p.expires_in);
}

#[tokio::test]
async fn every_call_leaves_a_record() {
    use store::history::{Direction, Outcome};
    // Nobody registered at 102: refused at once, recorded as unavailable.
    let mut rig = Rig::new(Settings::default());
    let got = call_as(&mut rig, "101", A, "102", "rec-1");
    assert!(got.starts_with("SIP/2.0 480"), "{got}");
    let r = rig.pbx.poll_record().expect("record");
    assert_eq!(
        (r.caller.as_str(), r.called.as_str(), r.outcome, r.status),
        ("101", "102", Outcome::Unavailable, 480)
    );
    // Rung and cancelled by the caller.
    let inv = start_call(&mut rig);
    rig.send(B, &answer(&inv, "180 Ringing", "callee", ""));
    rig.send(A, &format!("CANCEL sip:102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKinv2;rport\r\nFrom: <sip:101@127.0.0.1>;tag=caller\r\nTo: <sip:102@127.0.0.1>\r\nCall-ID: call-1\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n"));
    let cancel = rig
        .take(B)
        .into_iter()
        .find(|m| m.starts_with("CANCEL"))
        .unwrap();
    rig.send(B, &answer(&cancel, "200 OK", "callee", ""));
    rig.send(B, &answer(&inv, "487 Request Terminated", "callee", ""));
    rig.advance(Duration::from_secs(1));
    let r = rig.pbx.poll_record().expect("record");
    assert_eq!(
        (r.outcome, r.direction, r.answered),
        (Outcome::Cancelled, Direction::Internal, None)
    );
    // Answered and hung up after 5 s: its duration.
    let mut rig = Rig::new(Settings::default());
    let inv = start_call(&mut rig);
    rig.send(
        B,
        &answer(&inv, "200 OK", "callee", &SDP.replace("9000", "9002")),
    );
    rig.take(A);
    rig.advance(Duration::from_secs(5));
    let bye = format!("BYE sip:101@{PBX} SIP/2.0\r\nVia: SIP/2.0/UDP {B};branch=z9hG4bKrb;rport\r\nFrom: {};tag=callee\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n", header(&inv, "To").unwrap(), header(&inv, "From").unwrap(), header(&inv, "Call-ID").unwrap());
    rig.send(B, &bye);
    let r = rig.pbx.poll_record().expect("record");
    assert_eq!(
        (r.outcome, r.answered_by.as_str(), r.duration),
        (Outcome::Answered, "102", 5)
    );
}

/// A Contact the exchange could not send to: behind NAT the source stands in, without
/// NAT the REGISTER is refused (the exchange fuzz target's find, tests/../fuzz).
#[tokio::test]
async fn a_contact_that_is_no_target_is_replaced_or_refused() {
    let mut cfg = common::config();
    cfg.accounts[1].nat = false;
    let mut rig = Rig::with_config(Settings::default(), cfg);
    for (user, at, want) in [("101", A, "200"), ("102", B, "400")] {
        let bad = |cseq: u32, auth: &str| {
            register(user, at, cseq, 120, auth).replace(
                &format!("Contact: <sip:{user}@{at}>"),
                &format!("Contact: <sip:{user}@{at}9*1>"),
            )
        };
        rig.send(at, &bad(1, ""));
        let ch = header(&rig.take(at).pop().unwrap(), "WWW-Authenticate")
            .unwrap()
            .to_string();
        rig.send(
            at,
            &bad(2, &reg_auth(&ch, user, &format!("Secret-{user}x"))),
        );
        let r = rig.take(at).pop().unwrap();
        assert!(r.starts_with(&format!("SIP/2.0 {want}")), "{user}: {r}");
    }
    let regs = rig.pbx.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].contact, format!("sip:101@{A}"));
}

/// Registers `user` from `from` over secure WebSocket (RFC 7118: a `.invalid` Contact);
/// the final answer.
fn register_over_wss(rig: &mut Rig, user: &str, from: &str) -> String {
    register_over_wss_with(rig, user, from, &format!("Secret-{user}x"))
}

/// [`register_over_wss`] with password `pass`.
fn register_over_wss_with(rig: &mut Rig, user: &str, from: &str, pass: &str) -> String {
    let msg = |cseq: u32, auth: &str| {
        register(user, from, cseq, 300, auth)
            .replace("SIP/2.0/UDP", "SIP/2.0/WSS")
            .replace(
                &format!("Contact: <sip:{user}@{from}>"),
                "Contact: <sip:k3x9@df7jal23ls0d.invalid;transport=ws>",
            )
    };
    rig.send_over(Proto::Wss, from, &msg(1, ""));
    let r = rig.take(from).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 401"), "{r}");
    let auth = reg_auth(header(&r, "WWW-Authenticate").unwrap(), user, pass);
    rig.send_over(Proto::Wss, from, &msg(2, &auth));
    rig.take(from).pop().unwrap()
}

#[tokio::test]
async fn a_browser_phone_registers_only_with_the_secret_the_portal_gave_while_it_lasts() {
    let mut cfg = config();
    let mut alice = config::User::new("alice", config::Role::User);
    alice.extensions = vec!["101".into()];
    alice.password_hash = "$argon2id$first".into();
    cfg.users.push(alice);
    let mut rig = Rig::with_config(Settings::default(), cfg.clone());
    let web = "101~web";
    let grant = |secret: &str, user: &str, hash: &str, until: u64| config::WebGrant {
        secret: secret.repeat(16),
        until,
        user: user.into(),
        password_hash: hash.into(),
    };
    // No secret given yet: refused like an unknown name; 102 has no owner, no account.
    for user in [web, "102~web"] {
        let r = register_over_wss_with(&mut rig, user, A, "");
        assert!(r.starts_with("SIP/2.0 403 Forbidden (wrong"), "{user}: {r}");
    }
    let now = rig.now;
    // Given under another password (changed since), or to another user: no use.
    for g in [
        grant("old1", "alice", "$argon2id$old", u64::MAX),
        grant("bob1", "bob", "", u64::MAX),
    ] {
        let (secret, new) = rig.pbx.renew_web_grant(now, web, g);
        assert!(new);
        let r = register_over_wss_with(&mut rig, web, A, &secret);
        assert!(r.starts_with("SIP/2.0 403 Forbidden (wrong"), "{r}");
    }
    let (secret, new) = rig.pbx.renew_web_grant(
        now,
        web,
        grant("a1b2", "alice", "$argon2id$first", u64::MAX),
    );
    assert_eq!((secret.as_str(), new), ("a1b2".repeat(16).as_str(), true));
    let r = register_over_wss_with(&mut rig, web, A, "guess");
    assert!(r.starts_with("SIP/2.0 403 Forbidden (wrong"), "{r}");
    // The secret over UDP: the account takes secure WebSocket only.
    rig.send(A, &register(web, A, 1, 300, ""));
    let ch = rig.take(A).pop().unwrap();
    let auth = reg_auth(header(&ch, "WWW-Authenticate").unwrap(), web, &secret);
    rig.send(A, &register(web, A, 2, 300, &auth));
    let r = rig.take(A).pop().unwrap();
    assert!(
        r.starts_with("SIP/2.0 403 Forbidden (transport not allowed)"),
        "{r}"
    );
    let registered = |rig: &Rig| {
        rig.pbx
            .registrations()
            .iter()
            .any(|r| r.username == web && r.transport == "wss")
    };
    let r = register_over_wss_with(&mut rig, web, A, &secret);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    assert!(registered(&rig));
    // Renewed by alice's page (another tab): the same secret, the page stays.
    let again = rig.pbx.renew_web_grant(
        now,
        web,
        grant("c3d4", "alice", "$argon2id$first", u64::MAX),
    );
    assert_eq!(again, (secret.clone(), false));
    assert!(registered(&rig));
    // Asked for by another user: alice's grant is replaced, her page stops at once,
    // and her secret is refused.
    let (bobs, new) = rig
        .pbx
        .renew_web_grant(now, web, grant("b0b0", "bob", "", u64::MAX));
    assert!(new && bobs != secret);
    assert!(!registered(&rig));
    let r = register_over_wss_with(&mut rig, web, A, &secret);
    assert!(r.starts_with("SIP/2.0 403 Forbidden (wrong"), "{r}");
    // Lapsed: refused.
    let (lapsed, _) = rig.pbx.renew_web_grant(
        now,
        web,
        grant("e5f6", "alice", "$argon2id$first", 1_700_000_000),
    );
    let r = register_over_wss_with(&mut rig, web, A, &lapsed);
    assert!(r.starts_with("SIP/2.0 403 Forbidden (wrong"), "{r}");
    // Alice's password changes in the configuration: her registered page stops.
    let (secret, _) = rig.pbx.renew_web_grant(
        now,
        web,
        grant("a7b8", "alice", "$argon2id$first", u64::MAX),
    );
    let r = register_over_wss_with(&mut rig, web, A, &secret);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    cfg.users[0].password_hash = "$argon2id$second".into();
    rig.pbx
        .set_snapshot(Arc::new(config::Snapshot::new(2, cfg.clone())));
    assert!(!registered(&rig), "{:?}", rig.pbx.registrations());
    let r = register_over_wss_with(&mut rig, web, A, &secret);
    assert!(r.starts_with("SIP/2.0 403 Forbidden (wrong"), "{r}");
}

#[tokio::test]
async fn a_websocket_phone_is_reached_over_its_connection_and_leaves_with_it() {
    let mut cfg = config();
    cfg.accounts[0].transports.push(config::Transport::Wss);
    let mut rig = Rig::with_config(Settings::default(), cfg);
    // 102's account does not allow WSS.
    let r = register_over_wss(&mut rig, "102", B);
    assert!(
        r.starts_with("SIP/2.0 403 Forbidden (transport not allowed)"),
        "{r}"
    );
    let r = register_over_wss(&mut rig, "101", A);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    let regs = rig.pbx.registrations();
    assert_eq!(regs.len(), 1);
    assert_eq!(
        (regs[0].transport.as_str(), regs[0].source),
        ("wss", A.parse().unwrap())
    );
    // A call to it goes down its connection, to its .invalid Contact, over WSS.
    do_register(&mut rig, "103", B, 300, Algorithm::Md5);
    call_as(&mut rig, "103", B, "101", "ws-call");
    rig.advance(Duration::from_millis(10));
    let out: Vec<_> = rig
        .out
        .iter()
        .filter(|t| t.dest == A.parse().unwrap())
        .collect();
    let inv = out
        .iter()
        .find(|t| t.bytes.starts_with(b"INVITE "))
        .expect("INVITE to the browser phone");
    assert_eq!(inv.proto, Proto::Wss);
    let text = String::from_utf8_lossy(&inv.bytes);
    assert!(
        text.starts_with("INVITE sip:k3x9@df7jal23ls0d.invalid;transport=ws SIP/2.0"),
        "{text}"
    );
    assert!(
        header(&text, "Via").unwrap().starts_with("SIP/2.0/WSS "),
        "{text}"
    );
    assert!(
        header(&text, "Contact")
            .unwrap()
            .ends_with(";transport=ws>"),
        "{text}"
    );
    // Its connection closes: the registration goes with it (not one from elsewhere, nor
    // over another transport from the same address).
    rig.pbx.take_registrations_dirty();
    for (proto, from) in [(Proto::Wss, B), (Proto::Tcp, A)] {
        rig.pbx.connection_closed(Source {
            proto,
            remote: from.parse().unwrap(),
            local: PBX.parse().unwrap(),
        });
        assert_eq!(rig.pbx.registrations().len(), 2);
    }
    assert!(!rig.pbx.take_registrations_dirty());
    rig.pbx.connection_closed(Source {
        proto: Proto::Wss,
        remote: A.parse().unwrap(),
        local: PBX.parse().unwrap(),
    });
    assert!(rig.pbx.registrations().iter().all(|r| r.username != "101"));
    assert!(rig.pbx.take_registrations_dirty());
}

#[tokio::test]
async fn a_provider_that_encrypts_audio_is_offered_srtp_and_must_offer_it() {
    let mut cfg = config();
    let mut i = config::SipInterface::new("prov", "127.0.0.9");
    i.keepalive = 0;
    i.transport = config::Transport::Tls;
    i.port = 5061;
    i.srtp = true;
    i.operator = "101".into();
    cfg.sip_interfaces = vec![i];
    cfg.outbound_routes =
        vec![
            serde_json::from_value(serde_json::json!({"prefix": "0", "interfaces": ["prov"]}))
                .unwrap(),
        ];
    let mut rig = Rig::with_config(Settings::default(), cfg);
    let prov = "127.0.0.9:5061";
    do_register(&mut rig, "101", A, 300, Algorithm::Md5);
    // 101 (plain) calls out: the provider is offered RTP/SAVP with one key, over TLS.
    call_as(&mut rig, "101", A, "0555123", "to-prov");
    let inv = rig
        .out
        .iter()
        .find(|t| t.bytes.starts_with(b"INVITE "))
        .expect("an INVITE to the provider");
    assert_eq!((inv.proto, inv.dest), (Proto::Tls, prov.parse().unwrap()));
    let text = String::from_utf8_lossy(&inv.bytes).into_owned();
    assert!(text.contains(" RTP/SAVP "), "{text}");
    assert_eq!(text.matches("a=crypto:").count(), 1, "{text}");
    assert!(
        text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{text}"
    );
    rig.take(prov);
    // From it, a plain offer is refused with the reason; one with a key rings 101.
    let from_prov = |call_id: &str, sdp: &str| {
        format!(
            "INVITE sip:5551000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {prov};branch=z9hG4bK{call_id}\r\nFrom: <sip:0612345@127.0.0.9>;tag=p1\r\nTo: <sip:5551000@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:0612345@{prov};transport=tls>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    rig.send_over(Proto::Tls, prov, &from_prov("plain-in", SDP));
    let got = rig.take(prov);
    assert!(
        got.iter().any(
            |m| m.starts_with("SIP/2.0 488 Not Acceptable Here (this interface encrypts audio")
        ),
        "{got:?}"
    );
    let keyed = SDP.replace("RTP/AVP", "RTP/SAVP").replace(
        "a=sendrecv\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv\r\n",
    );
    rig.take(A);
    rig.send_over(Proto::Tls, prov, &from_prov("srtp-in", &keyed));
    assert!(
        rig.take(A).iter().any(|m| m.starts_with("INVITE ")),
        "101 is rung"
    );
    // Over UDP the same provider is refused: the box's key would travel in clear.
    let udp = "127.0.0.9:5060";
    rig.send_over(Proto::Udp, udp, &from_prov("udp-in", &keyed));
    let got = rig.take(udp);
    assert!(
        got.iter().any(|m| m
            .starts_with("SIP/2.0 403 Forbidden (this interface encrypts audio: call over TLS)")),
        "{got:?}"
    );
    // Over WebSocket, its address makes no provider: challenged like anyone.
    let ws = "127.0.0.9:40000";
    rig.send_over(Proto::Wss, ws, &from_prov("ws-in", &keyed));
    let got = rig.take(ws);
    assert!(got.iter().any(|m| m.starts_with("SIP/2.0 407 ")), "{got:?}");
    assert!(rig.take(A).iter().all(|m| !m.starts_with("INVITE ")));
}

#[tokio::test]
async fn the_operator_panel_lamps_say_offline_idle_ringing_and_busy() {
    let mut rig = Rig::new(Settings::default());
    let lamps = |rig: &Rig| -> Vec<(String, &'static str, String)> {
        rig.pbx
            .lamps()
            .into_iter()
            .map(|l| (l.number, l.state, l.caller))
            .collect()
    };
    let s = |n: &str, st: &'static str, c: &str| (n.to_string(), st, c.to_string());
    assert_eq!(
        lamps(&rig),
        [
            s("101", "offline", ""),
            s("102", "offline", ""),
            s("103", "offline", "")
        ]
    );
    do_register(&mut rig, "101", A, 300, Algorithm::Md5);
    do_register(&mut rig, "102", B, 300, Algorithm::Md5);
    assert_eq!(
        lamps(&rig)[..2],
        [s("101", "idle", ""), s("102", "idle", "")]
    );
    // 101 calls 102, which rings, then answers.
    let inv = start_call(&mut rig);
    assert!(inv.starts_with("INVITE "), "{inv}");
    assert_eq!(
        lamps(&rig)[..2],
        [s("101", "busy", ""), s("102", "ringing", "101")]
    );
    rig.send(B, &answer(&inv, "200 OK", "b1", SDP));
    assert_eq!(
        lamps(&rig)[..2],
        [s("101", "busy", ""), s("102", "busy", "")]
    );
}
