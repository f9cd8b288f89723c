//! Digest authentication (RFC 2617 / RFC 7616 / RFC 8760): MD5 and SHA-256, qop=auth,
//! nonces that carry their own issue time and expire (stale=true).

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// Name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// Credentials from an Authorization or Proxy-Authorization header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: String,
    pub qop: String,
    pub nc: String,
    pub cnonce: String,
    pub opaque: String,
}

/// Parses `Digest k=v, k="v"...`; `None` when it is not a Digest header.
pub fn parse_credentials(value: &str) -> Option<Credentials> {
    let rest = value.trim();
    // Compare bytes: slicing the str could cut a multi-byte character and panic.
    if rest.len() < 7 || !rest.as_bytes()[..6].eq_ignore_ascii_case(b"digest") {
        return None;
    }
    let mut c = Credentials::default();
    for part in crate::message::split_list(&rest[6..]) {
        let (k, v) = part.split_once('=')?;
        let v = v.trim();
        let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            &v[1..v.len() - 1]
        } else {
            v
        };
        let v = v.to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "username" => c.username = v,
            "realm" => c.realm = v,
            "nonce" => c.nonce = v,
            "uri" => c.uri = v,
            "response" => c.response = v.to_ascii_lowercase(),
            "algorithm" => c.algorithm = v,
            "qop" => c.qop = v,
            "nc" => c.nc = v,
            "cnonce" => c.cnonce = v,
            "opaque" => c.opaque = v,
            _ => {}
        }
    }
    if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() {
        return None;
    }
    Some(c)
}

impl Credentials {
    /// The algorithm the client used, if we support it.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.to_ascii_uppercase().as_str() {
            "" | "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// Whether the response matches `secret` for a request with this method.
    pub fn verify(&self, method: &str, secret: &str) -> bool {
        let Some(alg) = self.algorithm() else {
            return false;
        };
        let expected = digest_response(
            alg,
            &self.username,
            &self.realm,
            secret,
            method,
            &self.uri,
            &self.nonce,
            &self.qop,
            &self.nc,
            &self.cnonce,
        );
        constant_time_eq(expected.as_bytes(), self.response.as_bytes())
    }
}

/// The `response` value a client computes.
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    alg: Algorithm,
    user: &str,
    realm: &str,
    secret: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = alg.hash(&format!("{user}:{realm}:{secret}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    if qop.eq_ignore_ascii_case("auth") {
        alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
    } else {
        alg.hash(&format!("{ha1}:{nonce}:{ha2}"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// State of a nonce presented by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and young enough.
    Fresh,
    /// Ours but expired, or from before a restart: challenge again with stale=true.
    Stale,
}

/// Issues and checks nonces without keeping per-nonce state: a nonce is its issue time
/// plus a keyed hash of it.
#[derive(Clone)]
pub struct Nonces {
    key: [u8; 32],
    /// How long a nonce stays fresh, in seconds.
    pub lifetime: u64,
}

impl Nonces {
    /// A nonce keeper with a random key (from the caller's RNG) and lifetime.
    pub fn new(key: [u8; 32], lifetime: u64) -> Nonces {
        Nonces { key, lifetime }
    }

    fn mac(&self, ts: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(ts.to_be_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// A new nonce for time `now_secs`.
    pub fn issue(&self, now_secs: u64) -> String {
        format!("{:x}.{}", now_secs, self.mac(now_secs))
    }

    /// Whether a nonce is ours and fresh at `now_secs`. Unknown nonces count as stale:
    /// the client is told to retry with a new one rather than that its password is wrong.
    pub fn check(&self, nonce: &str, now_secs: u64) -> NonceState {
        let Some((ts, mac)) = nonce.split_once('.') else {
            return NonceState::Stale;
        };
        let Ok(ts) = u64::from_str_radix(ts, 16) else {
            return NonceState::Stale;
        };
        if !constant_time_eq(mac.as_bytes(), self.mac(ts).as_bytes()) {
            return NonceState::Stale;
        }
        if now_secs < ts || now_secs - ts > self.lifetime {
            return NonceState::Stale;
        }
        NonceState::Fresh
    }

    /// Whether we issued `nonce` (fresh or not): a digest answer with a nonce we never
    /// gave is not a password guess but a request to challenge.
    pub fn issued(&self, nonce: &str) -> bool {
        let Some((ts, mac)) = nonce.split_once('.') else {
            return false;
        };
        let Ok(ts) = u64::from_str_radix(ts, 16) else {
            return false;
        };
        constant_time_eq(mac.as_bytes(), self.mac(ts).as_bytes())
    }

    /// A challenge header value.
    pub fn challenge(&self, realm: &str, alg: Algorithm, now_secs: u64, stale: bool) -> String {
        format!(
            "Digest realm=\"{realm}\", nonce=\"{}\", algorithm={}, qop=\"auth\"{}",
            self.issue(now_secs),
            alg.name(),
            if stale { ", stale=true" } else { "" }
        )
    }
}

/// Result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The digest is right and the nonce is fresh: the account is authenticated.
    Ok,
    /// No usable credentials for us: challenge.
    Missing,
    /// Right password, old nonce: challenge again with stale=true.
    Stale,
    /// Wrong password (or unknown user): 403 or a new challenge, counted for brute-force.
    Wrong,
}

/// Checks `creds` for `method` against `secret` (None = unknown user).
pub fn check(
    nonces: &Nonces,
    realm: &str,
    creds: Option<&Credentials>,
    method: &str,
    secret: Option<&str>,
    now_secs: u64,
) -> AuthOutcome {
    let Some(c) = creds else {
        return AuthOutcome::Missing;
    };
    if c.realm != realm || c.algorithm().is_none() {
        return AuthOutcome::Missing;
    }
    // Only an answer to one of our challenges can be a wrong password: a made-up nonce
    // (a spoofed packet cannot have seen ours) is challenged, never counted.
    if !nonces.issued(&c.nonce) {
        return AuthOutcome::Missing;
    }
    let Some(secret) = secret else {
        return AuthOutcome::Wrong;
    };
    if !c.verify(method, secret) {
        return AuthOutcome::Wrong;
    }
    match nonces.check(&c.nonce, now_secs) {
        NonceState::Fresh => AuthOutcome::Ok,
        NonceState::Stale => AuthOutcome::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // The worked example of RFC 2617 section 3.5.
        let r = digest_response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "auth",
            "00000001",
            "0a4f113b",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_example() {
        // The SHA-256 example of RFC 7616 section 3.9.1.
        let r = digest_response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "auth",
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn nonce_lifecycle() {
        let n = Nonces::new([7; 32], 300);
        let nonce = n.issue(1000);
        assert_eq!(n.check(&nonce, 1100), NonceState::Fresh);
        assert_eq!(n.check(&nonce, 1301), NonceState::Stale);
        assert_eq!(n.check("deadbeef.00", 1000), NonceState::Stale);
        let other = Nonces::new([8; 32], 300);
        assert_eq!(other.check(&nonce, 1000), NonceState::Stale);
    }

    #[test]
    fn check_outcomes() {
        let n = Nonces::new([1; 32], 300);
        let nonce = n.issue(10);
        let resp = digest_response(
            Algorithm::Sha256,
            "101",
            "pbx",
            "Secret-123",
            "REGISTER",
            "sip:pbx",
            &nonce,
            "auth",
            "00000001",
            "abc",
        );
        let hdr = format!("Digest username=\"101\", realm=\"pbx\", nonce=\"{nonce}\", uri=\"sip:pbx\", response=\"{resp}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"abc\"");
        let c = parse_credentials(&hdr).unwrap();
        assert_eq!(
            check(&n, "pbx", Some(&c), "REGISTER", Some("Secret-123"), 20),
            AuthOutcome::Ok
        );
        assert_eq!(
            check(&n, "pbx", Some(&c), "REGISTER", Some("wrong"), 20),
            AuthOutcome::Wrong
        );
        assert_eq!(
            check(&n, "pbx", Some(&c), "REGISTER", Some("Secret-123"), 1000),
            AuthOutcome::Stale
        );
        assert_eq!(
            check(&n, "pbx", None, "REGISTER", Some("x"), 20),
            AuthOutcome::Missing
        );
        assert_eq!(
            check(&n, "other", Some(&c), "REGISTER", Some("Secret-123"), 20),
            AuthOutcome::Missing
        );
        assert!(parse_credentials("Basic abc").is_none());
        assert!(
            parse_credentials("Diges\u{e9} username=x").is_none(),
            "multi-byte text must not panic"
        );
        assert!(parse_credentials("Digest garbage").is_none());
    }
}

/// A challenge from a WWW-Authenticate or Proxy-Authenticate header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: String,
    pub algorithm: String,
    /// `qop` options offered.
    pub qop: Vec<String>,
}

/// Parses `Digest realm=..., nonce=...`; `None` when it is not a Digest challenge.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let rest = value.trim();
    if rest.len() < 7 || !rest.as_bytes()[..6].eq_ignore_ascii_case(b"digest") {
        return None;
    }
    let mut c = Challenge::default();
    for part in crate::message::split_list(&rest[6..]) {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            &v[1..v.len() - 1]
        } else {
            v
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "realm" => c.realm = v.into(),
            "nonce" => c.nonce = v.into(),
            "opaque" => c.opaque = v.into(),
            "algorithm" => c.algorithm = v.into(),
            "qop" => {
                c.qop = v
                    .split(',')
                    .map(|q| q.trim().to_ascii_lowercase())
                    .collect()
            }
            _ => {}
        }
    }
    (!c.nonce.is_empty()).then_some(c)
}

impl Challenge {
    /// The Authorization value answering this challenge for a request; `None` when the
    /// algorithm is one we do not speak.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        user: &str,
        secret: &str,
        cnonce: &str,
    ) -> Option<String> {
        let alg = match self.algorithm.to_ascii_uppercase().as_str() {
            "" | "MD5" => Algorithm::Md5,
            "SHA-256" => Algorithm::Sha256,
            _ => return None,
        };
        let auth = self.qop.iter().any(|q| q == "auth");
        let (qop, nc) = if auth { ("auth", "00000001") } else { ("", "") };
        let response = digest_response(
            alg,
            user,
            &self.realm,
            secret,
            method,
            uri,
            &self.nonce,
            qop,
            nc,
            cnonce,
        );
        let mut v = format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            alg.name()
        );
        if auth {
            v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if !self.opaque.is_empty() {
            v.push_str(&format!(", opaque=\"{}\"", self.opaque));
        }
        Some(v)
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn our_answer_passes_our_own_check() {
        let nonces = Nonces::new([7; 32], 300);
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let ch = parse_challenge(&nonces.challenge("pbx", alg, 1000, false)).unwrap();
            let v = ch
                .answer(
                    "INVITE",
                    "sip:160@127.0.0.3",
                    "linkA",
                    "Secret-123456",
                    "abc",
                )
                .unwrap();
            let creds = parse_credentials(&v).unwrap();
            assert!(creds.verify("INVITE", "Secret-123456"));
            assert!(!creds.verify("INVITE", "wrong"));
            assert_eq!(
                check(
                    &nonces,
                    "pbx",
                    Some(&creds),
                    "INVITE",
                    Some("Secret-123456"),
                    1001
                ),
                AuthOutcome::Ok
            );
        }
    }

    #[test]
    fn rfc2617_example() {
        // RFC 2617 3.5 (with qop=auth), computed with our cnonce and nc.
        let ch = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let v = ch
            .answer(
                "GET",
                "/dir/index.html",
                "Mufasa",
                "Circle Of Life",
                "0a4f113b",
            )
            .unwrap();
        assert!(
            v.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{v}"
        );
        assert!(v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(parse_challenge("Basic realm=x").is_none());
        assert!(parse_challenge("Digest realm=x").is_none());
        assert!(parse_challenge("Digest nonce=1, algorithm=SHA-512-256")
            .unwrap()
            .answer("INVITE", "sip:x", "u", "p", "c")
            .is_none());
    }
}

/// The Digest challenges in a response's `name` header (WWW-Authenticate or
/// Proxy-Authenticate), whole: their values are comma lists themselves.
pub fn challenges(headers: &rsip::Headers, name: &str) -> Vec<Challenge> {
    headers
        .iter()
        .map(crate::message::name_value)
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .filter_map(|(_, v)| parse_challenge(v))
        .collect()
}
