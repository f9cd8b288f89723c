//! Q.931 messages: a SETUP as a PRI switch sends it, round trips, the causes a bad
//! message is answered with, junk that must never panic, and RFC 3398's mappings.

use isdn::q931::*;

/// SETUP, call reference 1 (2 octets, PRI): speech A-law, channel 1 exclusive,
/// calling 95550399 (national, presentation allowed, network screened), called
/// 5550101, sending complete.
const SETUP: &[u8] = &[
    0x08, 0x02, 0x00, 0x01, 0x05, // header
    0xa1, // sending complete
    0x04, 0x03, 0x80, 0x90, 0xa3, // bearer
    0x18, 0x03, 0xa9, 0x83, 0x81, // channel id: PRI, exclusive, B1
    0x6c, 0x0a, 0x21, 0x83, b'9', b'5', b'5', b'5', b'0', b'3', b'9', b'9', // calling
    0x70, 0x08, 0x81, b'5', b'5', b'5', b'0', b'1', b'0', b'1', // called
];

#[test]
fn a_setup_is_read_and_written_back_the_same() {
    let m = Message::parse(SETUP).unwrap();
    assert_eq!(m.msg_type, MsgType::Setup);
    assert_eq!(
        m.call_ref,
        CallRef {
            value: 1,
            from_destination: false,
            len: 2
        }
    );
    assert!(m.sending_complete());
    assert_eq!(m.bearer(), Some(Bearer::speech(true)));
    let ch = m.channel().unwrap();
    assert!(ch.pri && ch.exclusive && ch.channel == Some(1));
    let calling = m.calling().unwrap();
    assert_eq!(calling.digits, "95550399");
    assert_eq!(calling.ton, NumberType::National);
    assert!(calling.presentation_allowed);
    assert_eq!(calling.screening, 3);
    assert_eq!(m.called().unwrap().digits, "5550101");
    assert_eq!(m.encode(), SETUP);
}

#[test]
fn messages_built_here_read_back() {
    let mut m = Message::new(
        CallRef {
            value: 0x1234,
            from_destination: true,
            len: 2,
        },
        MsgType::Disconnect,
    );
    m.push(ie::CAUSE, Cause::new(17).encode());
    m.push(ie::PROGRESS, vec![0x81, 0x88]);
    let back = Message::parse(&m.encode()).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.cause().unwrap().value, 17);
    // BRI: one-octet call reference, channel B2.
    let mut s = Message::new(
        CallRef {
            value: 0x55,
            from_destination: false,
            len: 1,
        },
        MsgType::Setup,
    );
    let ch = ChannelId {
        pri: false,
        exclusive: false,
        channel: Some(2),
        dchannel: false,
    };
    let mut calling = PartyNumber::new("0101");
    calling.presentation_allowed = false;
    s.push(ie::BEARER_CAPABILITY, Bearer::speech(true).encode())
        .push(ie::CHANNEL_ID, ch.encode())
        .push(ie::CALLING_NUMBER, calling.encode_calling())
        .push(
            ie::CALLED_NUMBER,
            PartyNumber::new("5550199").encode_called(),
        );
    let back = Message::parse(&s.encode()).unwrap();
    assert_eq!(back.channel(), Some(ch));
    assert!(!back.calling().unwrap().presentation_allowed);
    assert_eq!(back.called().unwrap().digits, "5550199");
    // A PRI channel and "any channel".
    for ch in [
        ChannelId {
            pri: true,
            exclusive: false,
            channel: Some(23),
            dchannel: false,
        },
        ChannelId {
            pri: true,
            exclusive: false,
            channel: None,
            dchannel: false,
        },
    ] {
        let mut m = Message::new(CallRef::global(2), MsgType::CallProceeding);
        m.push(ie::CHANNEL_ID, ch.encode());
        assert_eq!(Message::parse(&m.encode()).unwrap().channel(), Some(ch));
    }
}

#[test]
fn bad_messages_get_the_cause_to_answer_with() {
    // Not Q.931 at all, or too short: ignored.
    for b in [
        &[][..],
        &[0x08, 0x02],
        &[0x09, 0x01, 0x01, 0x05],
        &[0x08, 0x03, 1, 2, 3, 5],
    ] {
        assert!(
            matches!(Message::parse(b), Err(DecodeError::Ignore(_))),
            "{b:?}"
        );
    }
    // Unknown message type: 97.
    assert!(matches!(
        Message::parse(&[0x08, 0x01, 0x01, 0x33]),
        Err(DecodeError::Cause { cause: 97, .. })
    ));
    // An element running past the end: 100.
    assert!(matches!(
        Message::parse(&[0x08, 0x01, 0x01, 0x05, 0x70, 0x09, 0x81, b'1']),
        Err(DecodeError::Cause { cause: 100, .. })
    ));
    // A SETUP without a bearer capability: the mandatory element answer is 96.
    let mut m = Message::parse(SETUP).unwrap();
    m.ies.retain(|e| e.id != ie::BEARER_CAPABILITY);
    assert!(matches!(
        m.need(ie::BEARER_CAPABILITY),
        Err(DecodeError::Cause { cause: 96, .. })
    ));
    // Codeset shifts are kept apart from codeset 0.
    let b = [
        0x08, 0x01, 0x01, 0x7b, 0x9e, 0x28, 0x01, b'x', 0x2c, 0x01, b'5',
    ];
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.ies[0].codeset, 6);
    assert!(m.display().is_none(), "a codeset 6 display is not ours");
    assert_eq!(m.get(ie::KEYPAD), Some(&b"5"[..]));
}

#[test]
fn junk_and_every_truncation_never_panic() {
    for n in 0..SETUP.len() {
        let _ = Message::parse(&SETUP[..n]);
    }
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 64) as usize;
        let mut b: Vec<u8> = (0..len)
            .map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8)
            .collect();
        if b.len() > 2 {
            b[0] = 0x08; // mostly Q.931-looking
            b[1] &= 0x03;
        }
        if let Ok(m) = Message::parse(&b) {
            let _ = (
                m.called(),
                m.calling(),
                m.channel(),
                m.bearer(),
                m.cause(),
                m.display(),
            );
            let _ = m.encode();
        }
    }
}

#[test]
fn causes_and_sip_responses_map_as_rfc_3398_says() {
    for (cause, sip) in [
        (1, 404),
        (17, 486),
        (18, 408),
        (19, 480),
        (21, 403),
        (27, 502),
        (28, 484),
        (34, 503),
        (38, 503),
        (65, 488),
        (102, 504),
        (111, 500),
    ] {
        assert_eq!(cause_to_sip(cause), sip, "cause {cause}");
    }
    for (sip, cause) in [
        (404, 1),
        (486, 17),
        (600, 17),
        (480, 18),
        (408, 102),
        (484, 28),
        (403, 21),
        (603, 21),
        (503, 41),
        (502, 38),
        (487, 127),
        (410, 22),
    ] {
        assert_eq!(sip_to_cause(sip), cause, "SIP {sip}");
    }
}
