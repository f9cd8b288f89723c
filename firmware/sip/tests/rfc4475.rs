//! RFC 4475 torture messages: the valid ones parse (or, for an extension method, are
//! recognised as well-formed and answered 501), the invalid ones are refused.

use rsip::message::HasHeaders;
use sip::message::{get, key, reject_unparsed};
use std::path::Path;

fn load(kind: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rfc4475")
        .join(kind)
        .join(format!("{name}.dat"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn names(kind: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rfc4475")
        .join(kind);
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn valid_messages_parse() {
    let all = names("valid");
    assert!(all.len() >= 11);
    for name in all {
        match sip::parse(&load("valid", &name)) {
            Ok(_) => {}
            Err(e) if e.status == 501 => {}
            Err(e) => panic!("{name}: refused a valid message: {e}"),
        }
    }
}

#[test]
fn invalid_messages_are_refused() {
    let all = names("invalid");
    assert!(all.len() >= 20);
    for name in all {
        let bytes = load("invalid", &name);
        let e = match sip::parse(&bytes) {
            Ok(_) => panic!("{name}: accepted an invalid message"),
            Err(e) => e,
        };
        // Requests get an answer when they can be addressed; it never panics.
        let reply = reject_unparsed(&bytes, &e);
        if let Some(r) = reply {
            let r = String::from_utf8(r).unwrap();
            assert!(
                r.starts_with(&format!("SIP/2.0 {}", e.status)),
                "{name}: {r}"
            );
        }
    }
}

#[test]
fn tortuous_invite_is_read_right() {
    let m = sip::parse(&load("valid", "wsinv")).unwrap();
    let k = key(m.headers());
    assert_eq!(k.call_id, "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(k.cseq, 9);
    assert_eq!(k.cseq_method, "INVITE");
    assert_eq!(k.branch, "390skdjuw");
    assert_eq!(k.to_tag, "1918181833n");
    assert_eq!(k.from_tag, "98asjd8");
    assert_eq!(get(m.headers(), "Max-Forwards"), Some("0068"));
    assert_eq!(m.body().len(), 150);
    assert_eq!(
        get(m.headers(), "NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
}

#[test]
fn trailing_octets_in_a_datagram_are_ignored() {
    let m = sip::parse(&load("valid", "dblreq")).unwrap();
    let rsip::SipMessage::Request(r) = m else {
        panic!("not a request")
    };
    assert_eq!(r.method, rsip::Method::Register);
    assert!(r.body.is_empty());
}

#[test]
fn specific_answers() {
    let status = |name: &str| sip::parse(&load("invalid", name)).unwrap_err().status;
    assert_eq!(status("badvers"), 505);
    assert_eq!(status("mismatch01"), 400);
    assert_eq!(status("insuf"), 400);
    assert_eq!(sip::parse(&load("valid", "esc02")).unwrap_err().status, 501);
}
