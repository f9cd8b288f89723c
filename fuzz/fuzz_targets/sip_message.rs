//! SIP messages as they come off a socket (UDP datagrams, TCP streams): any bytes are a
//! message or a clean error with the status to answer (400, 416, 501 or 505); a message's header helpers never
//! panic, and what parsed prints and parses again to the same start line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsip::SipMessage;
use sip::message;

fuzz_target!(|data: &[u8]| {
    // A TCP stream: frames one after the other until one is incomplete or refused.
    let mut rest = data;
    while let Ok(Some(n)) = message::stream_frame_len(rest) {
        assert!(n > 0 && n <= rest.len(), "a frame inside the buffer");
        let _ = message::parse(&rest[..n]);
        rest = &rest[n..];
    }
    let msg = match message::parse(data) {
        Ok(m) => m,
        Err(e) => {
            assert!(matches!(e.status, 400 | 416 | 501 | 505), "{e}");
            let _ = message::reject_unparsed(data, &e);
            return;
        }
    };
    let headers = match &msg {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    let _ = message::key(headers);
    for h in headers.iter() {
        let (name, value) = message::name_value(h);
        let _ = message::get_all(headers, &name);
        for part in message::split_list(value) {
            let _ = message::uri_user(message::uri_part(part));
            let _ = message::header_param(part, "tag");
            let _ = message::via_param(part, "branch");
        }
        let _ = sip::auth::parse_credentials(value);
        let _ = sip::auth::parse_challenge(value);
        let _ = sip::dialog::Replaces::parse(value);
    }
    let again = message::parse(msg.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("what parsed does not parse again: {e}\n{msg}"));
    let start = |m: &SipMessage| m.to_string().lines().next().unwrap_or("").to_string();
    assert_eq!(start(&msg), start(&again));
});
