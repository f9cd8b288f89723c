//! The one writer of SIP messages: every request and response the box sends is built
//! here, so the headers RFC 3261 asks for cannot be present in one place and forgotten
//! in another.
//!
//! What the builders always do:
//! - `Content-Length` on every message, and `Content-Type` on every message with a body
//!   (RFC 3261 20.14, 20.15: a strict stack such as PJSIP treats an untyped body as no
//!   body at all);
//! - a response copies Via, From, To (adding our tag), Call-ID and CSeq from the
//!   request (8.2.6.2), and `Record-Route` into every 101-299 response to a
//!   dialog-creating request (12.1.1);
//! - `Contact` is required in every dialog-creating request and every 101-299 response
//!   to one (8.1.1.8, 12.1.1, 13.3.1.4); building one without it is a bug and panics in
//!   debug builds;
//! - `Allow` and `Supported` on INVITEs, on 1xx/2xx responses to INVITE and on 2xx to
//!   OPTIONS (13.3.1.4, 11.2); `Allow` on 405 and 501 (20.5); `Accept` on 2xx to
//!   OPTIONS and on 415 (20.1).

use crate::message::{header_param, name_value};
use std::fmt::Write;

/// The methods pbxd accepts, for `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, REFER, SUBSCRIBE";
/// The SIP extensions (option tags) pbxd supports, for `Supported`: `replaces` (RFC
/// 3891: an INVITE taking a ringing call's place, a BLF key's pickup).
pub const SUPPORTED: &[&str] = &["replaces"];
/// The body types pbxd understands, for `Accept`.
pub const ACCEPT: &str = "application/sdp";
/// `User-Agent` and `Server`.
pub const AGENT: &str = "pbxd";

/// A message body with its type.
#[derive(Debug, Clone, Copy, Default)]
pub enum Body<'a> {
    #[default]
    None,
    /// `application/sdp`; an empty slice is no body.
    Sdp(&'a [u8]),
    /// Any other type, e.g. `application/dtmf-relay`.
    Typed {
        content_type: &'a str,
        bytes: &'a [u8],
    },
}

impl<'a> Body<'a> {
    fn parts(self) -> Option<(&'a str, &'a [u8])> {
        match self {
            Body::None | Body::Sdp(&[]) | Body::Typed { bytes: &[], .. } => None,
            Body::Sdp(b) => Some(("application/sdp", b)),
            Body::Typed {
                content_type,
                bytes,
            } => Some((content_type, bytes)),
        }
    }
}

/// Whether a request of this method creates a dialog (RFC 3261 12.1, RFC 6665, RFC 3515).
pub fn creates_dialog(method: &str) -> bool {
    matches!(method, "INVITE" | "SUBSCRIBE" | "REFER")
}

/// The option tags of `Require` in `req` that pbxd does not support (RFC 3261 8.2.2.3):
/// a non-empty answer means the request gets 420 with these in `Unsupported`.
pub fn unsupported(req: &rsip::Request) -> Vec<String> {
    crate::message::get_all(&req.headers, "Require")
        .into_iter()
        .flat_map(crate::message::split_list)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect()
}

fn push(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "{name}: {value}\r\n");
}

fn finish(mut head: String, body: Body) -> Vec<u8> {
    let bytes = match body.parts() {
        Some((ty, b)) => {
            push(&mut head, "Content-Type", ty);
            b
        }
        None => &[],
    };
    push(&mut head, "Content-Length", &bytes.len().to_string());
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(bytes);
    out
}

fn has(extra: &[(&str, String)], name: &str) -> bool {
    extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// A response to `req`, built by chaining and written by [`Response::build`].
#[must_use = "a response does nothing until it is built and sent"]
pub struct Response<'a> {
    req: &'a rsip::Request,
    status: u16,
    reason: &'a str,
    to_tag: Option<&'a str>,
    contact: Option<&'a str>,
    extra: Vec<(&'a str, String)>,
    body: Body<'a>,
}

impl<'a> Response<'a> {
    /// A response with this status and reason phrase.
    pub fn to(req: &'a rsip::Request, status: u16, reason: &'a str) -> Self {
        Response {
            req,
            status,
            reason,
            to_tag: None,
            contact: None,
            extra: Vec::new(),
            body: Body::None,
        }
    }

    /// Our To tag, added when the request's To has none.
    pub fn tag(mut self, tag: Option<&'a str>) -> Self {
        self.to_tag = tag;
        self
    }

    /// Our Contact (the full header value, e.g. `<sip:101@192.0.2.1:5060>`).
    pub fn contact(mut self, contact: &'a str) -> Self {
        self.contact = Some(contact);
        self
    }

    /// Another header, written after the automatic ones.
    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// Several headers.
    pub fn headers(mut self, h: &[(&'a str, String)]) -> Self {
        self.extra.extend(h.iter().cloned());
        self
    }

    /// An SDP body (nothing when empty).
    pub fn sdp(mut self, body: &'a [u8]) -> Self {
        self.body = Body::Sdp(body);
        self
    }

    /// Any body.
    pub fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }

    /// The wire bytes.
    pub fn build(self) -> Vec<u8> {
        let method = self.req.method.to_string();
        // A reason can carry what a peer sent (a bad SDP line): no control characters
        // in the status line (a NUL made the exchange's 488 unreadable; found by the
        // exchange fuzz target).
        let reason = if self.reason.chars().any(char::is_control) {
            std::borrow::Cow::Owned(crate::message::sanitize(self.reason))
        } else {
            std::borrow::Cow::Borrowed(self.reason)
        };
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, reason);
        let mut tagged = false;
        let mut record_route = Vec::new();
        for h in self.req.headers.iter() {
            let (n, v) = name_value(h);
            match &*n {
                "Via" | "From" | "Call-ID" | "CSeq" => push(&mut out, &n, v),
                "To" => match (self.to_tag, header_param(v, "tag")) {
                    (Some(tag), None) => {
                        tagged = true;
                        push(&mut out, "To", &format!("{v};tag={tag}"));
                    }
                    (_, had) => {
                        tagged |= had.is_some();
                        push(&mut out, "To", v);
                    }
                },
                "Record-Route" => record_route.push(v),
                _ => {}
            }
        }
        let dialog = creates_dialog(&method) && (101..300).contains(&self.status) && tagged;
        if dialog {
            for rr in record_route {
                push(&mut out, "Record-Route", rr);
            }
            debug_assert!(
                self.contact.is_some(),
                "{} to {method} without Contact",
                self.status
            );
        }
        if let Some(c) = self.contact {
            push(&mut out, "Contact", c);
        }
        let success = (200..300).contains(&self.status);
        let capabilities = (method == "INVITE" && (101..300).contains(&self.status))
            || (method == "OPTIONS" && success);
        if (capabilities || matches!(self.status, 405 | 501)) && !has(&self.extra, "Allow") {
            push(&mut out, "Allow", ALLOW);
        }
        if capabilities && !has(&self.extra, "Supported") {
            push(&mut out, "Supported", &SUPPORTED.join(", "));
        }
        if ((method == "OPTIONS" && success) || self.status == 415) && !has(&self.extra, "Accept") {
            push(&mut out, "Accept", ACCEPT);
        }
        for (n, v) in &self.extra {
            push(&mut out, n, v);
        }
        push(&mut out, "Server", AGENT);
        finish(out, self.body)
    }
}

/// A request; fill the fields and call [`Request::build`]. Unset strings are left out
/// where they may be (Contact, Route) and required where RFC 3261 requires them.
#[derive(Debug, Clone, Default)]
#[must_use = "a request does nothing until it is built and sent"]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub via: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Our Contact; required for dialog-creating requests and NOTIFY.
    pub contact: Option<&'a str>,
    /// The dialog's route set, one `Route` header each, in order.
    pub route: &'a [String],
    /// More headers, written after the automatic ones.
    pub extra: &'a [(&'a str, String)],
    pub body: Body<'a>,
}

impl Request<'_> {
    /// The wire bytes.
    pub fn build(&self) -> Vec<u8> {
        let m = self.method;
        debug_assert!(
            !creates_dialog(m) && m != "NOTIFY" || self.contact.is_some(),
            "{m} without Contact"
        );
        let mut out = format!("{m} {} SIP/2.0\r\n", self.uri);
        push(&mut out, "Via", self.via);
        push(&mut out, "Max-Forwards", "70");
        for r in self.route {
            push(&mut out, "Route", r);
        }
        push(&mut out, "From", self.from);
        push(&mut out, "To", self.to);
        push(&mut out, "Call-ID", self.call_id);
        push(&mut out, "CSeq", &format!("{} {m}", self.cseq));
        if let Some(c) = self.contact {
            push(&mut out, "Contact", c);
        }
        if m == "INVITE" {
            if !has(self.extra, "Allow") {
                push(&mut out, "Allow", ALLOW);
            }
            if !has(self.extra, "Supported") {
                push(&mut out, "Supported", &SUPPORTED.join(", "));
            }
        }
        for (n, v) in self.extra {
            push(&mut out, n, v);
        }
        push(&mut out, "User-Agent", AGENT);
        finish(out, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &str) -> rsip::Request {
        match crate::parse(raw.as_bytes()).unwrap() {
            rsip::SipMessage::Request(r) => r,
            _ => panic!(),
        }
    }

    const INVITE: &str = "INVITE sip:102@pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa\r\nRecord-Route: <sip:p1.example;lr>\r\nRecord-Route: <sip:p2.example;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:101@pbx>;tag=1\r\nTo: <sip:102@pbx>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:101@10.0.0.2>\r\nContent-Length: 0\r\n\r\n";

    fn parsed(bytes: &[u8]) -> rsip::Response {
        match crate::parse(bytes).unwrap() {
            rsip::SipMessage::Response(r) => r,
            _ => panic!(),
        }
    }

    #[test]
    fn ok_to_invite_has_every_header() {
        let r = req(INVITE);
        let b = Response::to(&r, 200, "OK")
            .tag(Some("xyz"))
            .contact("<sip:102@10.0.0.1>")
            .sdp(b"v=0\r\n")
            .build();
        let text = String::from_utf8(b.clone()).unwrap();
        let resp = parsed(&b);
        let h = &resp.headers;
        use crate::message::{get, get_all};
        assert_eq!(get(h, "To"), Some("<sip:102@pbx>;tag=xyz"));
        assert_eq!(get(h, "Content-Type"), Some("application/sdp"));
        assert_eq!(get(h, "Content-Length"), Some("5"));
        assert_eq!(get(h, "Contact"), Some("<sip:102@10.0.0.1>"));
        assert_eq!(get(h, "Allow"), Some(ALLOW));
        assert!(text.contains("\r\nSupported: replaces\r\n"), "{text}");
        assert_eq!(
            get_all(h, "Record-Route"),
            vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
        );
        assert_eq!(resp.body, b"v=0\r\n");
    }

    #[test]
    fn failures_carry_no_route_or_contact_and_a_typed_empty_length() {
        let r = req(INVITE);
        let b = Response::to(&r, 486, "Busy Here").tag(Some("t")).build();
        let resp = parsed(&b);
        use crate::message::get;
        assert!(get(&resp.headers, "Record-Route").is_none());
        assert!(get(&resp.headers, "Content-Type").is_none());
        assert_eq!(get(&resp.headers, "Content-Length"), Some("0"));
        assert!(get(&resp.headers, "Allow").is_none());
    }

    #[test]
    fn trying_gets_no_tag() {
        let r = req(INVITE);
        let b = Response::to(&r, 100, "Trying").build();
        let resp = parsed(&b);
        assert_eq!(
            crate::message::get(&resp.headers, "To"),
            Some("<sip:102@pbx>")
        );
    }

    #[test]
    fn options_and_405_advertise() {
        let r = req(&INVITE.replace("INVITE", "OPTIONS"));
        let resp = parsed(&Response::to(&r, 200, "OK").tag(Some("a")).build());
        use crate::message::get;
        assert_eq!(get(&resp.headers, "Accept"), Some(ACCEPT));
        assert_eq!(get(&resp.headers, "Allow"), Some(ALLOW));
        let resp = parsed(&Response::to(&r, 405, "Method Not Allowed").build());
        assert_eq!(get(&resp.headers, "Allow"), Some(ALLOW));
    }

    #[test]
    #[should_panic(expected = "without Contact")]
    fn ok_to_invite_without_contact_is_a_bug() {
        let r = req(INVITE);
        let _ = Response::to(&r, 200, "OK").tag(Some("x")).build();
    }

    #[test]
    fn requests() {
        let route = vec!["<sip:p1.example;lr>".to_string()];
        let b = Request {
            method: "INVITE",
            uri: "sip:102@10.0.0.3",
            via: "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb;rport",
            from: "<sip:101@pbx>;tag=9",
            to: "<sip:102@pbx>",
            call_id: "c2",
            cseq: 1,
            contact: Some("<sip:101@10.0.0.1>"),
            route: &route,
            body: Body::Sdp(b"v=0\r\n"),
            ..Default::default()
        }
        .build();
        let rsip::SipMessage::Request(r) = crate::parse(&b).unwrap() else {
            panic!()
        };
        use crate::message::get;
        assert_eq!(get(&r.headers, "Route"), Some("<sip:p1.example;lr>"));
        assert_eq!(get(&r.headers, "Content-Type"), Some("application/sdp"));
        assert_eq!(get(&r.headers, "Allow"), Some(ALLOW));
        assert_eq!(get(&r.headers, "Max-Forwards"), Some("70"));
        let bye = Request {
            method: "BYE",
            uri: "sip:102@10.0.0.3",
            via: "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc;rport",
            from: "<sip:101@pbx>;tag=9",
            to: "<sip:102@pbx>;tag=8",
            call_id: "c2",
            cseq: 2,
            ..Default::default()
        }
        .build();
        let text = String::from_utf8(bye).unwrap();
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
        assert!(!text.contains("Content-Type"), "{text}");
    }

    #[test]
    fn require_we_do_not_support() {
        let r = req(&INVITE.replace("Content-Length", "Require: 100rel, timer\r\nContent-Length"));
        assert_eq!(unsupported(&r), vec!["100rel", "timer"]);
        assert!(unsupported(&req(INVITE)).is_empty());
    }
}
