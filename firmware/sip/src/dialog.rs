//! Dialogs (RFC 3261 12) from our end: identity (Call-ID and both tags), the route set
//! from Record-Route, the local CSeq, the remote target; the retransmission of a 2xx
//! to an INVITE until its ACK (13.3.1.4); and the dialog a `Replaces` header names
//! (RFC 3891).
//!
//! Sans-IO like the transactions: no clock, no sockets. The owner keeps a `Dialog`
//! per leg and builds requests from it with [`crate::build`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One dialog, seen from our end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    /// Our From/To value, with our tag.
    pub local: String,
    /// Their From/To value, with their tag once known.
    pub remote: String,
    /// Request-URI for requests inside the dialog (their Contact).
    pub target_uri: String,
    /// Our Contact in this dialog.
    pub contact: String,
    /// The last CSeq number we used.
    pub cseq: u32,
    /// The route set (RFC 3261 12.1): the Route headers of every request we send in
    /// the dialog, first hop first.
    pub route: Vec<String>,
}

impl Dialog {
    pub fn local_tag(&self) -> &str {
        tag_of(&self.local)
    }

    pub fn remote_tag(&self) -> &str {
        tag_of(&self.remote)
    }

    /// The CSeq of our next request in the dialog.
    pub fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// Where our requests in the dialog go first: the first route when it names an
    /// address (loose routing, RFC 3261 12.2.1.1); None means the remote target.
    pub fn first_hop(&self) -> Option<SocketAddr> {
        self.route
            .first()
            .and_then(|r| uri_addr(crate::message::uri_part(r)))
    }

    /// True when `r` names this dialog (RFC 3891 3: its to-tag is our tag, its
    /// from-tag theirs). With `lenient`, the tags may also be swapped, as some phones
    /// write them the other way round.
    pub fn is_named_by(&self, r: &Replaces, lenient: bool) -> bool {
        let (ours, theirs) = (self.local_tag(), self.remote_tag());
        self.call_id == r.call_id
            && !r.to_tag.is_empty()
            && !r.from_tag.is_empty()
            && ((ours == r.to_tag && theirs == r.from_tag)
                || (lenient && ours == r.from_tag && theirs == r.to_tag))
    }
}

/// The route set a message's Record-Route headers give, in the order they appear: a
/// UAS keeps it so (RFC 3261 12.1.1).
pub fn route_set_uas(headers: &rsip::Headers) -> Vec<String> {
    crate::message::get_all(headers, "Record-Route")
        .into_iter()
        .flat_map(crate::message::split_list)
        .map(|r| r.trim().to_string())
        .collect()
}

/// The route set of a 2xx or 1xx to our INVITE: the Record-Route entries reversed
/// (RFC 3261 12.1.2).
pub fn route_set_uac(headers: &rsip::Headers) -> Vec<String> {
    let mut r = route_set_uas(headers);
    r.reverse();
    r
}

/// The tag parameter of a From or To value ("" when there is none).
pub fn tag_of(v: &str) -> &str {
    crate::message::header_param(v, "tag").unwrap_or("")
}

/// The address in a SIP URI when its host is an IP literal (a port of 5060 when it
/// gives none).
pub fn uri_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.split_once(':')?.1;
    let hostport = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hostport = hostport.split([';', '?', '>']).next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip: std::net::IpAddr = hostport.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, 5060))
}

/// A `Replaces` value (RFC 3891): the dialog an INVITE or a transfer target takes the
/// place of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// `early-only`: only an early dialog may be replaced.
    pub early_only: bool,
}

impl Replaces {
    /// Reads `call-id;to-tag=..;from-tag=..[;early-only]`; None without a Call-ID.
    pub fn parse(v: &str) -> Option<Replaces> {
        let mut parts = v.split(';');
        let call_id = parts.next()?.trim().to_string();
        if call_id.is_empty() {
            return None;
        }
        let mut r = Replaces {
            call_id,
            to_tag: String::new(),
            from_tag: String::new(),
            early_only: false,
        };
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "to-tag" => r.to_tag = v.trim().to_string(),
                "from-tag" => r.from_tag = v.trim().to_string(),
                "early-only" => r.early_only = true,
                _ => {}
            }
        }
        Some(r)
    }
}

/// A 2xx to an INVITE we sent, resent until its ACK comes (RFC 3261 13.3.1.4: T1
/// doubling up to T2 over an unreliable transport; given up after 64*T1).
#[derive(Debug, Clone)]
pub struct Answered {
    /// The CSeq of the INVITE (its ACK carries the same number).
    pub cseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// What an [`Answered`] asks for when its time comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// Nothing yet.
    Wait,
    /// Send the 2xx again.
    Again,
    /// No ACK within 64*T1: the dialog is to be ended with a BYE.
    GiveUp,
}

impl Answered {
    pub fn new(now: Instant, cseq: u32, t1: Duration) -> Answered {
        Answered {
            cseq,
            next: now + t1,
            interval: t1,
            give_up: now + t1 * 64,
        }
    }

    /// When to call [`Self::handle_timeout`].
    pub fn deadline(&self) -> Instant {
        self.next
    }

    pub fn handle_timeout(&mut self, now: Instant, t2: Duration) -> Resend {
        if self.next > now {
            return Resend::Wait;
        }
        if self.give_up <= now {
            return Resend::GiveUp;
        }
        self.interval = (self.interval * 2).min(t2);
        self.next = now + self.interval;
        Resend::Again
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog() -> Dialog {
        Dialog {
            call_id: "abc@host".into(),
            local: "<sip:101@pbx>;tag=ours".into(),
            remote: "\"Bob\" <sip:102@pbx>;tag=theirs".into(),
            target_uri: "sip:102@127.0.0.1:5062".into(),
            contact: "<sip:pbx@127.0.0.1:5060>".into(),
            cseq: 1,
            route: vec!["<sip:10.0.0.9:5070;lr>".into(), "<sip:proxy2;lr>".into()],
        }
    }

    #[test]
    fn identity_cseq_and_first_hop() {
        let mut d = dialog();
        assert_eq!((d.local_tag(), d.remote_tag()), ("ours", "theirs"));
        assert_eq!(d.next_cseq(), 2);
        assert_eq!(d.next_cseq(), 3);
        assert_eq!(d.first_hop(), Some("10.0.0.9:5070".parse().unwrap()));
        d.route.clear();
        assert_eq!(d.first_hop(), None);
    }

    #[test]
    fn replaces_names_a_dialog_by_call_id_and_both_tags() {
        let d = dialog();
        let r = Replaces::parse("abc@host;to-tag=ours;from-tag=theirs").unwrap();
        assert!(d.is_named_by(&r, false));
        let swapped = Replaces::parse("abc@host;from-tag=ours;to-tag=theirs").unwrap();
        assert!(!d.is_named_by(&swapped, false));
        assert!(d.is_named_by(&swapped, true));
        for other in [
            "xyz@host;to-tag=ours;from-tag=theirs",
            "abc@host;to-tag=ours",
            "abc@host;to-tag=ours;from-tag=someone",
        ] {
            let r = Replaces::parse(other).unwrap();
            assert!(!d.is_named_by(&r, true), "{other}");
        }
        let early = Replaces::parse("abc@host;to-tag=a;from-tag=b;early-only").unwrap();
        assert!(early.early_only);
        assert_eq!(Replaces::parse(";to-tag=a"), None);
        assert_eq!(Replaces::parse(""), None);
    }

    #[test]
    fn route_sets_from_record_route() {
        let mut h = rsip::Headers::default();
        h.push(rsip::Header::Other(
            "Record-Route".into(),
            "<sip:p1;lr>, <sip:p2;lr>".into(),
        ));
        h.push(rsip::Header::Other(
            "Record-Route".into(),
            "<sip:p3;lr>".into(),
        ));
        assert_eq!(
            route_set_uas(&h),
            vec!["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
        );
        assert_eq!(
            route_set_uac(&h),
            vec!["<sip:p3;lr>", "<sip:p2;lr>", "<sip:p1;lr>"]
        );
    }

    #[test]
    fn a_2xx_is_resent_doubling_to_t2_then_given_up() {
        let (t1, t2) = (Duration::from_millis(500), Duration::from_secs(4));
        let t0 = Instant::now();
        let mut a = Answered::new(t0, 1, t1);
        assert_eq!(a.handle_timeout(t0, t2), Resend::Wait);
        let mut resent = 0;
        let end = loop {
            let at = a.deadline();
            match a.handle_timeout(at, t2) {
                Resend::Again => resent += 1,
                Resend::GiveUp => break at,
                Resend::Wait => unreachable!(),
            }
        };
        // 0.5, 1.5, 3.5, 7.5, then every 4 s: 11.5 ... 31.5; given up at 32 s or after.
        assert_eq!(resent, 10);
        assert!(
            end - t0 >= t1 * 64 && end - t0 < t1 * 64 + t2,
            "{:?}",
            end - t0
        );
    }
}
