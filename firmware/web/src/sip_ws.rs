//! SIP over secure WebSocket (RFC 7118) on the web port, at [`PATH`]: the web server
//! checks the opening handshake (RFC 6455 4.2), answers `101 Switching Protocols` with
//! the `sip` subprotocol and hands the upgraded connection to the SIP transports (a
//! [`SipWs`] that pbxd gives [`crate::serve`]). SIP digest authentication and the
//! scanner protection then apply as to any other transport; the web login does not
//! (a browser phone proves itself with its SIP account's password, so no cookie can be
//! borrowed by another site's page). The firewall's settings hold `/ws` to the user
//! portal's and the web admin's groups, as the rest of the web (browser phones live in
//! the portal).

use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// Where SIP over WebSocket is served.
pub const PATH: &str = "/ws";

/// An upgraded connection, WebSocket frames from here on.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;
/// What takes SIP over WebSocket connections: the SIP transports, which frame them.
#[derive(Clone)]
pub struct SipWs {
    /// Whether a WebSocket from this address may be opened now (within the
    /// transports' limits on connections).
    pub room: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    /// Serves an upgraded connection: the browser's address and the box's.
    pub serve: Arc<dyn Fn(Upgraded, SocketAddr, SocketAddr) + Send + Sync>,
}

/// Whether SIP over WebSocket is served at all: only while some account may use it
/// (`wss` in its transports, or the portal's phone of an extension a user owns), so a
/// box without browser phones offers nothing there.
pub(crate) fn served(c: &config::Config) -> bool {
    c.accounts
        .iter()
        .any(|a| a.enabled && a.transports.contains(&config::Transport::Wss))
        || c.users
            .iter()
            .any(|u| u.enabled && !u.extensions.is_empty())
}

/// Whether a request is for [`PATH`] (it is answered here, never by the site).
pub(crate) fn wanted(path: &str) -> bool {
    path == PATH
}

/// A refused opening: its status and reason.
type Refusal = (StatusCode, &'static str);

fn refuse((status, why): Refusal) -> Response {
    let mut r = warp::reply::with_status(format!("{why}\n"), status).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::UPGRADE_REQUIRED {
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    r
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The answer to a handshake for [`PATH`]: `Ok` with the key to accept when it is a
/// WebSocket opening for the `sip` subprotocol, else the refusal to send.
pub(crate) fn check(method: &Method, headers: &HeaderMap) -> Result<String, Refusal> {
    if method != Method::GET
        || !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "SIP over WebSocket (RFC 7118): open a WebSocket here with the sip subprotocol",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken",
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    // RFC 6455 4.2.1: a base64 value of 16 bytes.
    let b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    if key.len() != 24 || !key.ends_with("==") || !key.bytes().take(22).all(b64) {
        return Err((
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key missing or malformed",
        ));
    }
    if !has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, "sip") {
        return Err((
            StatusCode::BAD_REQUEST,
            "the sip subprotocol (RFC 7118) must be offered in Sec-WebSocket-Protocol",
        ));
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// Answers the opening handshake of `req` and, once hyper hands the connection over,
/// gives it to `sip`.
pub(crate) fn upgrade<B>(
    req: &mut hyper::Request<B>,
    peer: SocketAddr,
    local: SocketAddr,
    sip: &SipWs,
    config: &config::Config,
) -> Response {
    if !served(config) {
        return refuse((
            StatusCode::NOT_FOUND,
            "SIP over WebSocket is not served: no account allows wss",
        ));
    }
    let accept = match check(req.method(), req.headers()) {
        Ok(a) => a,
        Err(why) => {
            tracing::debug!(%peer, reason = why.1, "WebSocket handshake refused");
            return refuse(why);
        }
    };
    if !(sip.room)(peer.ip()) {
        let mut r = refuse((
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections from this address",
        ));
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let on = hyper::upgrade::on(req);
    let serve = sip.serve.clone();
    tokio::spawn(async move {
        let upgraded = match tokio::time::timeout(std::time::Duration::from_secs(10), on).await {
            Ok(Ok(u)) => u,
            _ => {
                tracing::debug!(%peer, "WebSocket upgrade did not complete");
                return;
            }
        };
        tracing::debug!(%peer, "SIP over WebSocket opened");
        serve(TokioIo::new(upgraded), peer, local);
    });
    let mut r = warp::reply().into_response();
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("sip"),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const GOOD: &[(&str, &str)] = &[
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Protocol", "sip"),
    ];

    #[test]
    fn a_sip_websocket_opening_is_accepted_with_rfc_6455s_key() {
        // RFC 6455 1.3's example.
        assert_eq!(
            check(&Method::GET, &headers(GOOD)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn every_other_opening_is_refused_with_its_reason() {
        let without = |name: &str| {
            let kept: Vec<(&str, &str)> =
                GOOD.iter().copied().filter(|(k, _)| *k != name).collect();
            check(&Method::GET, &headers(&kept)).unwrap_err().0
        };
        assert_eq!(without("Upgrade"), StatusCode::BAD_REQUEST);
        assert_eq!(without("Connection"), StatusCode::BAD_REQUEST);
        assert_eq!(without("Sec-WebSocket-Key"), StatusCode::BAD_REQUEST);
        assert_eq!(without("Sec-WebSocket-Protocol"), StatusCode::BAD_REQUEST);
        assert_eq!(
            without("Sec-WebSocket-Version"),
            StatusCode::UPGRADE_REQUIRED
        );
        let r = refuse(check(&Method::GET, &headers(&GOOD[..2])).unwrap_err());
        assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        assert_eq!(
            check(&Method::POST, &headers(GOOD)).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        let mut other = GOOD.to_vec();
        other[4] = ("Sec-WebSocket-Protocol", "chat, superchat");
        assert_eq!(
            check(&Method::GET, &headers(&other)).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        other[4] = ("Sec-WebSocket-Protocol", "chat, sip");
        assert!(check(&Method::GET, &headers(&other)).is_ok());
        other[3] = ("Sec-WebSocket-Key", "short");
        assert!(check(&Method::GET, &headers(&other)).is_err());
        other[3] = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j\"\"==");
        assert!(check(&Method::GET, &headers(&other)).is_err());
    }

    #[test]
    fn served_only_while_an_enabled_account_allows_wss() {
        let mut c = config::Config::default();
        c.accounts
            .push(config::SipAccount::new("101", "Secret-101x", "101"));
        assert!(!served(&c), "new accounts take UDP, TCP and TLS");
        c.accounts[0].transports.push(config::Transport::Wss);
        assert!(served(&c));
        c.accounts[0].enabled = false;
        assert!(!served(&c));
    }
}
