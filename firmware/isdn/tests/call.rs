//! Q.931 call control on a virtual clock: protocol errors answered with the cause
//! Q.931 5.8 gives, the timers, and two of our own stacks calling each other.

use isdn::call::{Calls, Config, Event, Outgoing, Side};
use isdn::q931::{ie, CallRef, Cause, Message, MsgType, PartyNumber};
use std::time::{Duration, Instant};

fn drain(c: &mut Calls) -> Vec<Message> {
    std::iter::from_fn(|| c.poll_transmit())
        .map(|b| Message::parse(&b).unwrap())
        .collect()
}

fn events(c: &mut Calls) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn cause_of(m: &Message) -> u8 {
    m.cause().map(|c| c.value).unwrap_or(0)
}

fn state_of(m: &Message) -> u8 {
    m.get(ie::CALL_STATE).map(|d| d[0]).unwrap_or(99)
}

fn cr(value: u16, from_destination: bool) -> CallRef {
    CallRef {
        value,
        from_destination,
        len: 2,
    }
}

fn setup_from_network(value: u16, channel: u8) -> Vec<u8> {
    let mut m = Message::new(cr(value, false), MsgType::Setup);
    m.push(ie::BEARER_CAPABILITY, vec![0x80, 0x90, 0xa3]);
    m.push(ie::CHANNEL_ID, vec![0xa9, 0x83, 0x80 | channel]);
    m.push(ie::CALLED_NUMBER, PartyNumber::new("201").encode_called());
    m.push(ie::SENDING_COMPLETE, vec![]);
    m.encode()
}

/// A user-side stack with one call offered and answered.
fn user_with_active_call(now: Instant) -> Calls {
    let mut c = Calls::new(Config::e1(Side::User));
    c.link_up(now);
    c.receive(now, &setup_from_network(7, 3));
    let id = match events(&mut c).as_slice() {
        [Event::Setup {
            call, channel: 3, ..
        }] => *call,
        e => panic!("{e:?}"),
    };
    c.connect(now, id);
    let sent = drain(&mut c);
    assert_eq!(sent[0].msg_type, MsgType::Connect);
    assert!(
        sent[0].channel().is_some(),
        "first answer names the channel"
    );
    let ack = Message::new(cr(7, false), MsgType::ConnectAcknowledge);
    c.receive(now, &ack.encode());
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Connected { .. }]
    ));
    c
}

#[test]
fn protocol_errors_are_answered_with_the_right_cause() {
    let now = Instant::now();
    let mut c = user_with_active_call(now);
    // An unknown message type in a call: STATUS, cause 97, our state (10, active).
    c.receive(now, &[0x08, 0x02, 0x00, 0x07, 0x33]);
    let m = drain(&mut c);
    assert_eq!(m[0].msg_type, MsgType::Status);
    assert_eq!((cause_of(&m[0]), state_of(&m[0])), (97, 10));
    assert!(m[0].call_ref.from_destination);
    // A broken element: cause 100.
    c.receive(now, &[0x08, 0x02, 0x00, 0x07, 0x7b, 0x70, 0x09, 0x81]);
    let m = drain(&mut c);
    assert_eq!((m[0].msg_type, cause_of(&m[0])), (MsgType::Status, 100));
    // A message not fitting the state (SETUP ACKNOWLEDGE for an answered call): 101.
    let sa = Message::new(cr(7, false), MsgType::SetupAcknowledge);
    c.receive(now, &sa.encode());
    let m = drain(&mut c);
    assert_eq!((m[0].msg_type, cause_of(&m[0])), (MsgType::Status, 101));
    // An unknown call reference: RELEASE COMPLETE, cause 81.
    let d = Message::new(cr(99, false), MsgType::Disconnect);
    c.receive(now, &d.encode());
    let m = drain(&mut c);
    assert_eq!(
        (m[0].msg_type, cause_of(&m[0])),
        (MsgType::ReleaseComplete, 81)
    );
    // SETUP without bearer capability: RELEASE COMPLETE, cause 96.
    let mut s = Message::new(cr(8, false), MsgType::Setup);
    s.push(ie::CHANNEL_ID, vec![0xa9, 0x83, 0x84]);
    c.receive(now, &s.encode());
    let m = drain(&mut c);
    assert_eq!(
        (m[0].msg_type, cause_of(&m[0])),
        (MsgType::ReleaseComplete, 96)
    );
    // A SETUP for a channel that does not exist: 82; for a busy one: 44.
    c.receive(now, &setup_from_network(9, 16));
    assert_eq!(cause_of(&drain(&mut c)[0]), 82);
    c.receive(now, &setup_from_network(10, 3));
    assert_eq!(cause_of(&drain(&mut c)[0]), 44);
    // STATUS ENQUIRY: STATUS with cause 30 and the state.
    let se = Message::new(cr(7, false), MsgType::StatusEnquiry);
    c.receive(now, &se.encode());
    let m = drain(&mut c);
    assert_eq!((cause_of(&m[0]), state_of(&m[0])), (30, 10));
    // A STATUS saying the far end has no such call clears ours.
    let mut st = Message::new(cr(7, false), MsgType::Status);
    st.push(ie::CAUSE, Cause::new(101).encode());
    st.push(ie::CALL_STATE, vec![0]);
    c.receive(now, &st.encode());
    assert!(c.is_empty(), "{:?}", events(&mut c));
    events(&mut c);
    // Junk never panics and never stalls the D-channel: a SETUP still gets through.
    let mut seed = 7u32;
    for _ in 0..5_000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let n = (seed >> 24) as usize % 24;
        let mut b = vec![0x08, 0x02, (seed >> 8) as u8, (seed >> 16) as u8];
        for i in 0..n {
            b.push((seed >> (i % 24)) as u8);
        }
        c.receive(now, &b);
        drain(&mut c);
    }
    // Whatever the junk set up is cleared by a RESTART of the interface.
    c.restart(now, None);
    drain(&mut c);
    events(&mut c);
    c.receive(now, &setup_from_network(11, 4));
    assert!(matches!(
        events(&mut c).as_slice(),
        [Event::Setup { channel: 4, .. }]
    ));
}

#[test]
fn timers_on_a_virtual_clock() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    // T303: SETUP sent twice, then the call ends with 102.
    let mut c = Calls::new(Config::e1(Side::User));
    c.link_up(t0);
    let id = c
        .setup(
            t0,
            Outgoing {
                called: "5550100".into(),
                complete: true,
                ..Outgoing::default()
            },
        )
        .unwrap();
    assert_eq!(drain(&mut c)[0].msg_type, MsgType::Setup);
    c.handle_timeout(t0 + s(4));
    assert_eq!(drain(&mut c)[0].msg_type, MsgType::Setup);
    c.handle_timeout(t0 + s(8));
    assert_eq!(
        events(&mut c),
        vec![Event::Ended {
            call: id,
            cause: 102
        }]
    );
    assert!(c.is_empty());
    drain(&mut c);

    // T310 after CALL PROCEEDING: DISCONNECT 102; T305: RELEASE; T308 twice: gone.
    let id = c
        .setup(
            t0,
            Outgoing {
                called: "5550100".into(),
                complete: true,
                ..Outgoing::default()
            },
        )
        .unwrap();
    let setup = drain(&mut c).remove(0);
    let mut cp = Message::new(
        CallRef {
            from_destination: true,
            ..setup.call_ref
        },
        MsgType::CallProceeding,
    );
    cp.push(ie::CHANNEL_ID, vec![0xa9, 0x83, 0x85]);
    c.receive(t0, &cp.encode());
    assert_eq!(c.channel(id), Some(5), "the network's channel");
    c.handle_timeout(t0 + s(10));
    let m = drain(&mut c);
    assert_eq!((m[0].msg_type, cause_of(&m[0])), (MsgType::Disconnect, 102));
    c.handle_timeout(t0 + s(40));
    assert_eq!(drain(&mut c)[0].msg_type, MsgType::Release);
    c.handle_timeout(t0 + s(44));
    assert_eq!(drain(&mut c)[0].msg_type, MsgType::Release);
    c.handle_timeout(t0 + s(48));
    assert!(c.is_empty());

    // T313: our CONNECT is never acknowledged.
    let mut c = Calls::new(Config::e1(Side::User));
    c.receive(t0, &setup_from_network(3, 1));
    let Some(Event::Setup { call, .. }) = c.poll_event() else {
        panic!()
    };
    c.connect(t0, call);
    drain(&mut c);
    c.handle_timeout(t0 + s(4));
    let m = drain(&mut c);
    assert_eq!((m[0].msg_type, cause_of(&m[0])), (MsgType::Disconnect, 102));

    // T302: overlap receiving ends with what there is.
    let mut c = Calls::new(Config::e1(Side::Network));
    let mut su = Message::new(cr(4, false), MsgType::Setup);
    su.push(ie::BEARER_CAPABILITY, vec![0x80, 0x90, 0xa3]);
    su.push(ie::CALLED_NUMBER, PartyNumber::new("2").encode_called());
    c.receive(t0, &su.encode());
    let Some(Event::Setup {
        call,
        complete: false,
        ..
    }) = c.poll_event()
    else {
        panic!()
    };
    c.more_digits(t0, call);
    let m = drain(&mut c);
    assert_eq!(m[0].msg_type, MsgType::SetupAcknowledge);
    let ch = m[0].channel().unwrap();
    assert!(
        ch.exclusive && ch.channel == Some(31),
        "network hunts downwards"
    );
    c.handle_timeout(t0 + s(15));
    assert_eq!(
        events(&mut c),
        vec![Event::Digits {
            call,
            digits: String::new(),
            complete: true
        }]
    );
}

#[test]
fn our_user_side_calls_our_network_side() {
    let now = Instant::now();
    let mut net = Calls::new(Config::e1(Side::Network));
    let mut usr = Calls::new(Config::e1(Side::User));
    net.link_up(now);
    usr.link_up(now);
    let pass = |from: &mut Calls, to: &mut Calls| {
        while let Some(b) = from.poll_transmit() {
            to.receive(now, &b);
        }
    };
    let id = usr
        .setup(
            now,
            Outgoing {
                called: "201".into(),
                calling: Some(PartyNumber::new("0101")),
                complete: true,
                ..Outgoing::default()
            },
        )
        .unwrap();
    pass(&mut usr, &mut net);
    let Some(Event::Setup {
        call,
        called,
        calling,
        ..
    }) = net.poll_event()
    else {
        panic!()
    };
    assert_eq!(
        (called.as_str(), calling.unwrap().digits.as_str()),
        ("201", "0101")
    );
    net.proceeding(now, call);
    net.alerting(now, call, true);
    net.connect(now, call);
    pass(&mut net, &mut usr);
    let ev = events(&mut usr);
    assert!(ev.contains(&Event::Alerting {
        call: id,
        inband: true
    }));
    assert!(ev.contains(&Event::Answered { call: id }));
    pass(&mut usr, &mut net);
    assert!(usr.is_active(id) && net.is_active(call));
    assert_eq!(usr.channel(id), net.channel(call));
    // The network clears; both ends are left with nothing.
    net.hangup(now, call, 16);
    pass(&mut net, &mut usr);
    pass(&mut usr, &mut net);
    pass(&mut net, &mut usr);
    assert_eq!(
        events(&mut usr),
        vec![Event::Ended {
            call: id,
            cause: 16
        }]
    );
    assert!(usr.is_empty() && net.is_empty());
}

#[test]
fn an_answer_naming_a_busy_channel_clears_the_call_for_good() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut c = user_with_active_call(t0); // channel 3 is busy
    let id = c
        .setup(
            t0,
            Outgoing {
                called: "5550100".into(),
                complete: true,
                ..Outgoing::default()
            },
        )
        .unwrap();
    let setup = drain(&mut c).remove(0);
    let mut cp = Message::new(
        CallRef {
            from_destination: true,
            ..setup.call_ref
        },
        MsgType::CallProceeding,
    );
    cp.push(ie::CHANNEL_ID, vec![0xa9, 0x83, 0x83]);
    c.receive(t0, &cp.encode());
    let m = drain(&mut c);
    assert_eq!((m[0].msg_type, cause_of(&m[0])), (MsgType::Disconnect, 44));
    assert_eq!(
        events(&mut c),
        vec![Event::Ended {
            call: id,
            cause: 44
        }]
    );
    assert_eq!(c.channel(id), Some(1), "the call keeps the channel it had");
    // Clearing goes on (T305 sends RELEASE at 30 s); no T310 DISCONNECT at 10 s.
    c.handle_timeout(t0 + s(10));
    assert!(drain(&mut c).is_empty());
    c.handle_timeout(t0 + s(30));
    assert_eq!(drain(&mut c)[0].msg_type, MsgType::Release);
    // INFORMATION goes out only after SETUP ACKNOWLEDGE.
    let id = c
        .setup(
            t0,
            Outgoing {
                called: "5".into(),
                ..Outgoing::default()
            },
        )
        .unwrap();
    drain(&mut c);
    c.information(t0, id, "550100", true);
    assert!(drain(&mut c).is_empty());
}

/// A data link reset under an answered call (Q.931 5.8.8): the call is checked with
/// STATUS ENQUIRY; a STATUS keeps it, silence clears it after T322 twice, and a STATUS
/// in the null state clears it at once.
#[test]
fn a_link_reset_checks_calls_with_status_enquiry() {
    let t0 = Instant::now();
    // Answered by STATUS: the call stays.
    let mut c = user_with_active_call(t0);
    c.link_reset(t0);
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].msg_type, MsgType::StatusEnquiry);
    let mut st = Message::new(cr(7, false), MsgType::Status);
    st.push(ie::CAUSE, Cause::new(30).encode());
    st.push(ie::CALL_STATE, vec![10]);
    c.receive(t0, &st.encode());
    c.handle_timeout(t0 + Duration::from_secs(20));
    assert!(drain(&mut c).is_empty());
    assert!(!c.is_empty(), "the call was kept");

    // No answer: asked again after T322, then cleared with cause 41.
    let mut c = user_with_active_call(t0);
    c.link_reset(t0);
    drain(&mut c);
    c.handle_timeout(t0 + Duration::from_secs(4));
    let again = drain(&mut c);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].msg_type, MsgType::StatusEnquiry);
    c.handle_timeout(t0 + Duration::from_secs(8));
    let clear = drain(&mut c);
    assert_eq!(clear[0].msg_type, MsgType::Disconnect, "{clear:?}");
    assert_eq!(cause_of(&clear[0]), 41);
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::Ended { cause: 41, .. })));

    // The far end lost the call: its STATUS says null, ours is cleared.
    let mut c = user_with_active_call(t0);
    c.link_reset(t0);
    drain(&mut c);
    let mut st = Message::new(cr(7, false), MsgType::Status);
    st.push(ie::CAUSE, Cause::new(81).encode());
    st.push(ie::CALL_STATE, vec![0]);
    c.receive(t0, &st.encode());
    assert!(c.is_empty());
}
