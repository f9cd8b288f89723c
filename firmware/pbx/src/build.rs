//! Building the requests the exchange sends.

use rsip::Header;
use sip::build::Request;
use sip::message::{get_all, via_param};
use std::net::SocketAddr;

/// Adds `received` and fills `rport` (RFC 3581) in the top Via, so responses carry
/// where the request really came from.
pub fn stamp_via(req: &mut rsip::Request, remote: SocketAddr) {
    for h in req.headers.iter_mut() {
        if let Header::Via(v) = h {
            use rsip::headers::UntypedHeader;
            let vals = sip::message::split_list(v.value());
            let Some(top) = vals.first() else { return };
            let mut top = top.to_string();
            let rest: Vec<String> = vals[1..].iter().map(|s| s.to_string()).collect();
            let has_rport = via_param(&top, "rport").is_some();
            if has_rport {
                top = top
                    .split(';')
                    .map(|p| {
                        if p.trim().eq_ignore_ascii_case("rport") {
                            format!("rport={}", remote.port())
                        } else {
                            p.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(";");
            }
            if via_param(&top, "received").is_none() {
                top.push_str(&format!(";received={}", remote.ip()));
            }
            let mut all = vec![top];
            all.extend(rest);
            *v = rsip::headers::Via::new(all.join(", "));
            return;
        }
    }
}

/// The Via value of a request we send.
pub fn via(proto: sip::transport::Proto, local: SocketAddr, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {};branch={};rport",
        proto.via_name(),
        local,
        branch
    )
}

/// Where requests to a phone go: over TLS or WSS the connection it came on (it has no
/// certificate the box could check, and its listening port may be unreachable),
/// behind NAT its source, else its Contact (`contact`, a URI) when that names an
/// address.
pub fn dest_of(
    proto: sip::transport::Proto,
    nat: bool,
    contact: &str,
    source: SocketAddr,
) -> SocketAddr {
    if nat || proto.connection_only() {
        source
    } else {
        uri_addr(contact).unwrap_or(source)
    }
}

/// Our Contact for a dialog.
pub fn contact(user: &str, proto: sip::transport::Proto, local: SocketAddr) -> String {
    format!("<sip:{user}@{local}{}>", proto.uri_param())
}

/// Fields of an outgoing INVITE that the ACK to a non-2xx answer repeats.
#[derive(Debug, Clone)]
pub struct AckBase {
    pub ruri: String,
    pub via: String,
    pub from: String,
    pub call_id: String,
    pub cseq: u32,
    /// The INVITE's Route headers, which ACK and CANCEL repeat.
    pub route: Vec<String>,
}

impl AckBase {
    /// The ACK, with To taken from the response (RFC 3261 17.1.1.3).
    pub fn ack(&self, to: &str) -> Vec<u8> {
        self.same_transaction("ACK", to)
    }

    /// The CANCEL for this INVITE (RFC 3261 9.1).
    pub fn cancel(&self, to: &str) -> Vec<u8> {
        self.same_transaction("CANCEL", to)
    }

    fn same_transaction(&self, method: &str, to: &str) -> Vec<u8> {
        Request {
            method,
            uri: &self.ruri,
            via: &self.via,
            from: &self.from,
            to,
            call_id: &self.call_id,
            cseq: self.cseq,
            route: &self.route,
            ..Default::default()
        }
        .build()
    }
}

/// The first Contact URI of a message as a remote target ([`sip::message::target_uri`]:
/// without a `?headers` part, `None` when it is no SIP URI a request can be sent to).
pub fn contact_uri(headers: &rsip::Headers) -> Option<String> {
    get_all(headers, "Contact")
        .first()
        .and_then(|c| sip::message::target_uri(c))
        .map(str::to_string)
}

/// Where requests in a dialog a request started go: its Contact, else its From, else
/// the address it came from.
pub fn remote_target(headers: &rsip::Headers, src: std::net::SocketAddr) -> String {
    contact_uri(headers)
        .or_else(|| sip::message::target_uri(get_all(headers, "From").first()?).map(str::to_string))
        .unwrap_or_else(|| format!("sip:{src}"))
}

/// `host:port` of a SIP URI when the host is an IP literal.
pub use sip::dialog::uri_addr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_loses_its_uri_headers() {
        let raw = "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b:70*1>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContact: <sip:101@10.0.0.2?:7001>\r\nContent-Length: 0\r\n\r\n";
        let req = |raw: &str| match sip::parse(raw.as_bytes()).unwrap() {
            rsip::SipMessage::Request(r) => r,
            _ => panic!(),
        };
        let src: std::net::SocketAddr = "10.0.0.2:5062".parse().unwrap();
        let r = req(raw);
        assert_eq!(contact_uri(&r.headers).as_deref(), Some("sip:101@10.0.0.2"));
        let r = req(&raw.replace(
            "Contact: <sip:101@10.0.0.2?:7001>\r\n",
            "Contact: <si!:x@y>\r\n",
        ));
        assert_eq!(contact_uri(&r.headers), None);
        assert_eq!(
            remote_target(&r.headers, src),
            "sip:10.0.0.2:5062",
            "nor the From"
        );
        let r = req(&raw
            .replace("Contact: <sip:101@10.0.0.2?:7001>\r\n", "")
            .replace(":70*1", ""));
        assert_eq!(remote_target(&r.headers, src), "sip:a@b");
    }

    #[test]
    fn rport_is_filled() {
        let raw = "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx;rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let rsip::SipMessage::Request(mut r) = sip::parse(raw.as_bytes()).unwrap() else {
            panic!()
        };
        stamp_via(&mut r, "192.0.2.9:4444".parse().unwrap());
        let v = sip::message::get(&r.headers, "Via").unwrap();
        assert_eq!(
            v,
            "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx;rport=4444;received=192.0.2.9"
        );
    }

    #[test]
    fn uri_addresses() {
        assert_eq!(
            uri_addr("sip:101@127.0.0.1:5062;transport=udp"),
            Some("127.0.0.1:5062".parse().unwrap())
        );
        assert_eq!(
            uri_addr("sip:10.0.0.1"),
            Some("10.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(uri_addr("sip:101@phone.example"), None);
    }
}
