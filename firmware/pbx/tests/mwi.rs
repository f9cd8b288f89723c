//! Message-waiting indication (RFC 3842 over RFC 6665), on a virtual clock with no
//! sockets: a phone subscribes with its credentials and hears its box's counts at once,
//! on each change and at the end; a phone that does not subscribe gets them unsolicited.
//! Busy lamps (RFC 4235 dialog, RFC 3856 presence) on the same subscriptions: idle,
//! ringing with the dialog a BLF key picks up by Replaces, in a call, a parked slot.

mod common;

use common::*;
use pbx::Settings;
use sip::auth::Algorithm;
use std::time::Duration;
use store::voicemail::{Mailbox, Message};

fn subscribe(
    from: &str,
    branch: &str,
    cseq: u32,
    to_tag: &str,
    expires: u32,
    auth: &str,
) -> String {
    let tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    format!(
        "SUBSCRIBE sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\nFrom: <sip:101@127.0.0.1>;tag=s101\r\nTo: <sip:101@127.0.0.1>{tag}\r\nCall-ID: mwi-101\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:101@{from}>\r\nEvent: message-summary\r\nAccept: application/simple-message-summary\r\nExpires: {expires}\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

fn mailbox(new: usize, old: usize) -> Mailbox {
    let m = |i: usize, new| Message {
        id: format!("{}-1-102", 1_700_000_000 + i),
        unix: 1_700_000_000 + i as u64,
        caller: "102".into(),
        seconds: 3,
        new,
    };
    Mailbox {
        messages: (0..new)
            .map(|i| m(i, true))
            .chain((0..old).map(|i| m(100 + i, false)))
            .collect(),
        temp_greeting: false,
    }
}

/// What A was sent; each NOTIFY among it answered 200 as a phone would.
fn to_a(rig: &mut Rig) -> Vec<String> {
    let got = rig.take(A);
    for m in &got {
        if m.starts_with("NOTIFY") {
            rig.send(A, &answer(m, "200 OK", "", ""));
        }
    }
    rig.take(A);
    got
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// Subscribes 101 from A for `expires`; returns the 200 and the first NOTIFY.
fn subscribed(rig: &mut Rig, expires: u32) -> (String, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    rig.send(
        A,
        &subscribe(A, &format!("z9hG4bKsubA{n}"), 1, "", expires, ""),
    );
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 401"), "{r}");
    let ch = header(&r, "WWW-Authenticate").unwrap().to_string();
    let auth = authorization(
        "Authorization",
        &ch,
        "101",
        "Secret-101x",
        "SUBSCRIBE",
        "sip:101@127.0.0.1",
        Algorithm::Md5,
    );
    rig.send(
        A,
        &subscribe(A, &format!("z9hG4bKsubB{n}"), 2, "", expires, &auth),
    );
    let mut got = to_a(rig);
    assert_eq!(got.len(), 2, "{got:?}");
    let notify = got.pop().unwrap();
    (got.pop().unwrap(), notify)
}

#[test]
fn a_subscribed_phone_hears_its_box_at_once_on_each_change_and_at_the_end() {
    let mut rig = Rig::without_sockets(Settings::default(), 4);
    rig.pbx.set_mailbox("101", mailbox(0, 1));
    let (ok, first) = subscribed(&mut rig, 600);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert_eq!(header(&ok, "Expires"), Some("600"));
    assert!(header(&ok, "Contact").is_some(), "{ok}");
    let tag = sip::message::header_param(header(&ok, "To").unwrap(), "tag")
        .unwrap()
        .to_string();
    // The NOTIFY is in the subscription's dialog, header by header.
    assert!(
        first.starts_with("NOTIFY sip:101@127.0.0.1:7001 SIP/2.0"),
        "{first}"
    );
    assert_eq!(header(&first, "Call-ID"), Some("mwi-101"));
    assert_eq!(header(&first, "To"), Some("<sip:101@127.0.0.1>;tag=s101"));
    assert_eq!(
        header(&first, "From"),
        Some(format!("<sip:101@127.0.0.1>;tag={tag}").as_str())
    );
    assert_eq!(header(&first, "CSeq"), Some("1 NOTIFY"));
    assert_eq!(header(&first, "Event"), Some("message-summary"));
    assert_eq!(
        header(&first, "Subscription-State"),
        Some("active;expires=600")
    );
    assert_eq!(
        header(&first, "Content-Type"),
        Some("application/simple-message-summary")
    );
    assert!(header(&first, "Contact").is_some());
    assert_eq!(
        body(&first),
        "Messages-Waiting: no\r\nMessage-Account: sip:*97@127.0.0.1:5060\r\nVoice-Message: 0/1 (0/0)\r\n"
    );
    // A message arrives: the lamp lights.
    rig.pbx.set_mailbox("101", mailbox(2, 1));
    rig.drain();
    let n = to_a(&mut rig);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(header(&n[0], "CSeq"), Some("2 NOTIFY"));
    assert!(
        body(&n[0]).starts_with("Messages-Waiting: yes\r\n"),
        "{}",
        n[0]
    );
    assert!(body(&n[0]).contains("Voice-Message: 2/1 (0/0)"));
    // The same counts again (a greeting changed): no NOTIFY.
    rig.pbx.set_mailbox("101", mailbox(2, 1));
    rig.drain();
    assert!(to_a(&mut rig).is_empty());
    // Another box changes: not 101's business.
    rig.pbx.set_mailbox("102", mailbox(1, 0));
    rig.drain();
    assert!(to_a(&mut rig).is_empty());
    // A refresh within the dialog: 200 and the state again.
    rig.send(A, &subscribe(A, "z9hG4bKsub3", 3, &tag, 300, ""));
    let got = to_a(&mut rig);
    assert!(got[0].starts_with("SIP/2.0 200"), "{got:?}");
    assert_eq!(
        header(&got[1], "Subscription-State"),
        Some("active;expires=300")
    );
    // Not refreshed: it ends with a last NOTIFY.
    rig.advance(Duration::from_secs(301));
    let got = to_a(&mut rig);
    let last = got.iter().find(|m| m.starts_with("NOTIFY")).unwrap();
    assert_eq!(
        header(last, "Subscription-State"),
        Some("terminated;reason=timeout")
    );
    rig.pbx.set_mailbox("101", mailbox(0, 3));
    rig.drain();
    assert!(
        to_a(&mut rig).iter().all(|m| !m.starts_with("NOTIFY")),
        "nothing after the end (not registered either)"
    );
    assert!(rig.pbx.subscriptions().is_empty());
}

#[test]
fn an_unsubscribe_ends_at_once_and_a_forgotten_subscription_is_dropped() {
    let mut rig = Rig::without_sockets(Settings::default(), 4);
    let (ok, _) = subscribed(&mut rig, 600);
    let tag = sip::message::header_param(header(&ok, "To").unwrap(), "tag")
        .unwrap()
        .to_string();
    rig.send(A, &subscribe(A, "z9hG4bKsub3", 3, &tag, 0, ""));
    let got = rig.take(A);
    assert!(got[0].starts_with("SIP/2.0 200"));
    // The phone asked: no reason given (RFC 6665 4.2.2).
    assert_eq!(header(&got[1], "Subscription-State"), Some("terminated"));
    assert!(rig.pbx.subscriptions().is_empty());
    // An unknown dialog: 481.
    rig.send(A, &subscribe(A, "z9hG4bKsub4", 4, &tag, 600, ""));
    assert!(rig.take(A)[0].starts_with("SIP/2.0 481"));

    // The phone answers a NOTIFY with 481: the subscription is gone.
    subscribed(&mut rig, 600);
    assert_eq!(rig.pbx.subscriptions(), [("101".into(), "101".into())]);
    rig.pbx.set_mailbox("101", mailbox(1, 0));
    rig.drain();
    let notify = rig.take(A).pop().unwrap();
    rig.send(
        A,
        &answer(&notify, "481 Call/Transaction Does Not Exist", "", ""),
    );
    assert!(rig.pbx.subscriptions().is_empty());
}

#[test]
fn other_packages_bad_expiry_and_wrong_passwords_are_refused() {
    let mut rig = Rig::without_sockets(Settings::default(), 4);
    let other = subscribe(A, "z9hG4bKp1", 1, "", 600, "")
        .replace("Event: message-summary", "Event: conference");
    rig.send(A, &other);
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 489"), "{r}");
    assert_eq!(
        header(&r, "Allow-Events"),
        Some("message-summary, dialog, presence")
    );
    // Too short.
    rig.send(A, &subscribe(A, "z9hG4bKe1", 1, "", 10, ""));
    let ch = rig.take(A).pop().unwrap();
    let ch = header(&ch, "WWW-Authenticate").unwrap().to_string();
    let auth = authorization(
        "Authorization",
        &ch,
        "101",
        "Secret-101x",
        "SUBSCRIBE",
        "sip:101@127.0.0.1",
        Algorithm::Md5,
    );
    rig.send(A, &subscribe(A, "z9hG4bKe2", 2, "", 10, &auth));
    let r = rig.take(A).pop().unwrap();
    assert!(r.starts_with("SIP/2.0 423"), "{r}");
    assert_eq!(header(&r, "Min-Expires"), Some("60"));
    let junk =
        subscribe(A, "z9hG4bKe3", 3, "", 600, &auth).replace("Expires: 600", "Expires: soon");
    rig.send(A, &junk);
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 400"));
    // A wrong password: 403, nothing subscribed.
    let wrong = authorization(
        "Authorization",
        &ch,
        "101",
        "nope",
        "SUBSCRIBE",
        "sip:101@127.0.0.1",
        Algorithm::Md5,
    );
    rig.send(A, &subscribe(A, "z9hG4bKe4", 4, "", 600, &wrong));
    assert!(rig.take(A).pop().unwrap().starts_with("SIP/2.0 403"));
    assert!(rig.pbx.subscriptions().is_empty());
}

#[test]
fn a_phone_that_does_not_subscribe_hears_of_messages_unsolicited() {
    let mut rig = Rig::without_sockets(Settings::default(), 4);
    rig.pbx.set_mailbox("101", mailbox(1, 0));
    // Registering anew with messages waiting: a NOTIFY after the 200.
    let n = do_register(&mut rig, "101", A, 600, Algorithm::Md5);
    let n = [n];
    assert!(n[0].starts_with("NOTIFY sip:101@127.0.0.1:7001 SIP/2.0"));
    assert_eq!(header(&n[0], "Event"), Some("message-summary"));
    assert_eq!(header(&n[0], "Subscription-State"), Some("terminated"));
    assert!(body(&n[0]).contains("Voice-Message: 1/0 (0/0)"));
    rig.send(A, &answer(&n[0], "200 OK", "", ""));
    // A refresh of the same binding says nothing again.
    let ok = do_register(&mut rig, "101", A, 600, Algorithm::Md5);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(rig.take(A).is_empty());
    // The message heard: the lamp goes out.
    rig.pbx.set_mailbox("101", mailbox(0, 1));
    rig.drain();
    let n = rig.take(A);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(body(&n[0]).starts_with("Messages-Waiting: no\r\n"));
    // 102's phone hears nothing of 101's box.
    do_register(&mut rig, "102", B, 600, Algorithm::Md5);
    rig.take(B);
    rig.pbx.set_mailbox("101", mailbox(1, 1));
    rig.drain();
    assert!(rig.take(B).is_empty());
}

#[test]
fn a_refresh_moves_the_subscription_and_a_fifth_one_ends_the_oldest() {
    let mut rig = Rig::without_sockets(Settings::default(), 4);
    let (ok, _) = subscribed(&mut rig, 600);
    let tag = sip::message::header_param(header(&ok, "To").unwrap(), "tag")
        .unwrap()
        .to_string();
    // The phone comes back from another port (a new NAT binding) and refreshes there.
    const MOVED: &str = "127.0.0.1:7009";
    let refresh = subscribe(MOVED, "z9hG4bKmove1", 3, &tag, 600, "");
    rig.send(MOVED, &refresh);
    let got = rig.take(MOVED);
    assert!(got[0].starts_with("SIP/2.0 200"), "{got:?}");
    assert!(
        got[1].starts_with("NOTIFY sip:101@127.0.0.1:7009 "),
        "{got:?}"
    );
    // Another package in the same dialog is not this subscription.
    let other = subscribe(MOVED, "z9hG4bKmove2", 4, &tag, 600, "")
        .replace("Event: message-summary", "Event: presence");
    rig.send(MOVED, &other);
    assert!(rig.take(MOVED)[0].starts_with("SIP/2.0 481"));
    // Four more subscriptions of the same account: the oldest is ended, saying so.
    for _ in 0..4 {
        let (ok, _) = subscribed(&mut rig, 600);
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        rig.advance(Duration::from_secs(1));
    }
    let ended = rig
        .take(MOVED)
        .into_iter()
        .find(|m| m.starts_with("NOTIFY") && m.contains("terminated"))
        .expect("the oldest heard it ended");
    assert_eq!(
        header(&ended, "Subscription-State"),
        Some("terminated;reason=deactivated")
    );
    assert_eq!(rig.pbx.subscriptions().len(), 4);
}

/// Where the watching phone (103) is.
const C: &str = "127.0.0.1:7003";

/// 103 at C subscribes to `package` of `res`; answers the first NOTIFY's body.
fn lamp(rig: &mut Rig, package: &str, res: &str, call_id: &str) -> String {
    assert!(do_register(rig, "103", C, 3600, Algorithm::Md5).starts_with("SIP/2.0 200"));
    let sub = |cseq: u32, auth: &str| {
        format!(
            "SUBSCRIBE sip:{res}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {C};branch=z9hG4bK{call_id}{cseq};rport\r\nFrom: <sip:103@127.0.0.1>;tag=s103\r\nTo: <sip:{res}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:103@{C}>\r\nEvent: {package}\r\nExpires: 600\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    rig.send(C, &sub(1, ""));
    let r = rig.take(C).pop().unwrap();
    let ch = header(&r, "WWW-Authenticate").unwrap().to_string();
    let auth = authorization(
        "Authorization",
        &ch,
        "103",
        "Secret-103x",
        "SUBSCRIBE",
        &format!("sip:{res}@127.0.0.1"),
        Algorithm::Md5,
    );
    rig.send(C, &sub(2, &auth));
    let got = rig.take(C);
    assert!(got[0].starts_with("SIP/2.0 200"), "{got:?}");
    let notify = got
        .iter()
        .find(|m| m.starts_with("NOTIFY"))
        .unwrap_or_else(|| panic!("{got:?}"))
        .clone();
    assert_eq!(header(&notify, "Event"), Some(package));
    rig.send(C, &answer(&notify, "200 OK", "", ""));
    rig.take(C);
    body(&notify).to_string()
}

/// The NOTIFYs C got since the last look (answered 200), and everything else B and C
/// got.
fn lamp_notifies(rig: &mut Rig) -> (Vec<String>, Vec<String>) {
    let mut got = rig.take(C);
    got.extend(rig.take(B));
    let (n, other): (Vec<String>, Vec<String>) =
        got.into_iter().partition(|m| m.starts_with("NOTIFY"));
    for m in &n {
        rig.send(C, &answer(m, "200 OK", "", ""));
    }
    rig.take(C);
    (n, other)
}

#[test]
fn a_dialog_lamp_shows_ringing_in_a_call_and_idle_and_a_replaces_invite_picks_up() {
    let mut rig = Rig::without_sockets(Settings::default(), 10);
    // Nothing else has a lamp: an unknown resource is 404.
    let first = lamp(&mut rig, "dialog", "102", "blf-1");
    assert!(first.contains("version=\"0\" state=\"full\""), "{first}");
    assert!(!first.contains("<dialog "), "idle: {first}");
    // 101 calls 102 (registered at B... the rig's 102 is at B too): ringing.
    let inv = start_call(&mut rig);
    let (n, _) = lamp_notifies(&mut rig);
    assert_eq!(n.len(), 1, "{n:?}");
    let b = body(&n[0]);
    assert!(
        b.contains("<state>early</state>") && b.contains("version=\"1\""),
        "{b}"
    );
    let leg_call_id = header(&inv, "Call-ID").unwrap().to_string();
    assert!(b.contains(&format!("call-id=\"{leg_call_id}\"")), "{b}");
    assert!(b.contains("direction=\"recipient\""), "{b}");
    assert!(b.contains("<identity>sip:101@"), "{b}");
    let box_tag = b
        .split("remote-tag=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    // A BLF key press: 103 (at C) sends INVITE with Replaces naming that dialog and
    // takes the call; 102's phone is cancelled; the lamp goes idle.
    let inv = |cseq: u32, auth: &str| {
        format!(
            "INVITE sip:102@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {C};branch=z9hG4bKrep{cseq};rport\r\nFrom: <sip:103@127.0.0.1>;tag=p103\r\nTo: <sip:102@127.0.0.1>\r\nCall-ID: blf-pickup\r\nCSeq: {cseq} INVITE\r\nContact: <sip:103@{C}>\r\nReplaces: {leg_call_id};to-tag={box_tag};from-tag=;early-only\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        )
    };
    rig.send(C, &inv(1, ""));
    let ch = rig
        .take(C)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 407"))
        .expect("407");
    let ch = header(&ch, "Proxy-Authenticate").unwrap().to_string();
    let auth = authorization(
        "Proxy-Authorization",
        &ch,
        "103",
        "Secret-103x",
        "INVITE",
        "sip:102@127.0.0.1",
        Algorithm::Md5,
    );
    rig.send(C, &inv(2, &auth));
    let (n, other) = lamp_notifies(&mut rig);
    assert!(
        other.iter().any(|m| m.starts_with("SIP/2.0 200")),
        "{other:?}"
    );
    assert!(rig.take(A).iter().any(|m| m.starts_with("SIP/2.0 200")));
    // (102's phone sent no provisional yet: its CANCEL waits for one, RFC 3261 9.1.)
    assert!(
        n.last().is_some_and(|m| !body(m).contains("<dialog ")),
        "102 is idle again: {n:?}"
    );
    // A Replaces naming no ringing dialog is 481.
    let stale = inv(3, &auth).replace("Call-ID: blf-pickup", "Call-ID: blf-stale");
    rig.send(C, &stale);
    let r = rig.take(C);
    assert!(
        r.last().is_some_and(|m| m.starts_with("SIP/2.0 481")),
        "the dialog rings no more: {r:?}"
    );
}

#[test]
fn a_presence_lamp_follows_an_extension_and_a_parking_slot_lamp_exists() {
    let mut rig = Rig::without_sockets(Settings::default(), 10);
    let first = lamp(&mut rig, "presence", "101", "pres-1");
    assert!(first.contains("<note>Idle</note>"), "{first}");
    // 101 calls 102: 101 is on the phone.
    let _inv = start_call(&mut rig);
    let (n, _) = lamp_notifies(&mut rig);
    assert!(
        n.last()
            .is_some_and(|m| body(m).contains("<note>On the phone</note>")),
        "{n:?}"
    );
    assert_eq!(header(&n[0], "Content-Type"), Some("application/pidf+xml"));
    // A parking slot can be watched; an unknown resource cannot.
    let slot = lamp(&mut rig, "dialog", "*71", "slot-1");
    assert!(slot.contains("entity=\"sip:*71@"), "{slot}");
}
