//! Passwords, sessions and the login rate limit.
//!
//! Passwords are Argon2id PHC strings in the configuration. Sessions live in memory
//! (a restart logs everybody out), each with its own CSRF token; the role is looked up
//! again on every request, so a demoted or disabled user loses access at once.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Argon2id with OWASP's minimum (19 MiB, two passes): about 30 ms on the box.
fn argon() -> Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("valid parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any input")
        .to_string()
}

/// A hash of nothing anybody knows, verified against when the user does not exist so
/// that the answer takes as long either way.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&hex::encode(rand::random::<[u8; 16]>())))
}

/// Whether `password` matches the stored hash; an empty or broken hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    let (hash, known) = if hash.is_empty() {
        (decoy(), false)
    } else {
        (hash, true)
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && known
}

/// Burns the time of one verification (for unknown users).
pub fn verify_nobody(password: &str) {
    let _ = verify_password("", password);
}

/// Random token, hex.
pub fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Constant-time string comparison for tokens.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub csrf: String,
    pub last_seen: Instant,
    pub address: IpAddr,
}

/// Sessions by token.
pub struct Sessions {
    by_token: HashMap<String, Session>,
    idle: Duration,
    max: usize,
}

impl Sessions {
    /// Sessions end after `idle` without a request.
    pub fn new(idle: Duration) -> Self {
        Sessions {
            by_token: HashMap::new(),
            idle,
            max: 1000,
        }
    }

    /// Opens a session; returns its token. The oldest goes when there are too many.
    pub fn open(&mut self, now: Instant, username: &str, address: IpAddr) -> (String, Session) {
        self.expire(now);
        if self.by_token.len() >= self.max {
            if let Some(oldest) = self
                .by_token
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(t, _)| t.clone())
            {
                self.by_token.remove(&oldest);
            }
        }
        let t = token();
        let s = Session {
            username: username.to_string(),
            csrf: token(),
            last_seen: now,
            address,
        };
        self.by_token.insert(t.clone(), s.clone());
        (t, s)
    }

    /// The live session for a token, refreshed; expired ones are dropped.
    pub fn touch(&mut self, now: Instant, token: &str) -> Option<Session> {
        let s = self.by_token.get_mut(token)?;
        if now.saturating_duration_since(s.last_seen) > self.idle {
            self.by_token.remove(token);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// Ends one session.
    pub fn close(&mut self, token: &str) {
        self.by_token.remove(token);
    }

    /// Ends every session of a user except `keep` (after a password change or removal).
    pub fn close_user(&mut self, username: &str, keep: Option<&str>) {
        self.by_token
            .retain(|t, s| !s.username.eq_ignore_ascii_case(username) || Some(t.as_str()) == keep);
    }

    fn expire(&mut self, now: Instant) {
        let idle = self.idle;
        self.by_token
            .retain(|_, s| now.saturating_duration_since(s.last_seen) <= idle);
    }
}

/// Failed logins per source address: `limit` failures within `window` block the address
/// for `block`. A successful login clears the address's count.
pub struct LoginLimiter {
    failures: HashMap<IpAddr, (Vec<Instant>, Option<Instant>)>,
    pub limit: usize,
    pub window: Duration,
    pub block: Duration,
}

impl LoginLimiter {
    /// Five failures in five minutes block for five minutes.
    pub fn new() -> Self {
        LoginLimiter {
            failures: HashMap::new(),
            limit: 5,
            window: Duration::from_secs(300),
            block: Duration::from_secs(300),
        }
    }

    /// Seconds the address must still wait, when it is blocked.
    pub fn blocked(&mut self, now: Instant, ip: IpAddr) -> Option<u64> {
        let (_, until) = self.failures.get(&ip)?;
        match until {
            Some(u) if *u > now => Some(u.duration_since(now).as_secs().max(1)),
            Some(_) => {
                self.failures.remove(&ip);
                None
            }
            None => None,
        }
    }

    /// Records a failure; true when it blocks the address now.
    pub fn failed(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.failures.len() > 10_000 {
            let window = self.window;
            self.failures.retain(|_, (v, until)| {
                until.is_some_and(|u| u > now)
                    || v.last().is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let window = self.window;
        let e = self.failures.entry(ip).or_default();
        e.0.retain(|t| now.saturating_duration_since(*t) < window);
        e.0.push(now);
        if e.0.len() >= self.limit && e.1.is_none() {
            e.1 = Some(now + self.block);
            return true;
        }
        false
    }

    /// Clears the address after a successful login.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let h = hash_password("Corr3ct-horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "Corr3ct-horse"));
        assert!(!verify_password(&h, "corr3ct-horse"));
        assert!(!verify_password("", ""));
        assert!(!verify_password("$argon2id$broken", "x"));
    }

    #[test]
    fn sessions_expire_when_idle() {
        let t0 = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(60));
        let ip = "127.0.0.1".parse().unwrap();
        let (tok, _) = s.open(t0, "Admin", ip);
        assert!(s.touch(t0 + Duration::from_secs(50), &tok).is_some());
        assert!(
            s.touch(t0 + Duration::from_secs(100), &tok).is_some(),
            "refreshed"
        );
        assert!(s.touch(t0 + Duration::from_secs(161), &tok).is_none());
        assert!(s.touch(t0, "nonsense").is_none());
    }

    #[test]
    fn limiter_blocks_then_forgives() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new();
        let ip = "10.0.0.9".parse().unwrap();
        let other = "10.0.0.10".parse().unwrap();
        for i in 0..4 {
            assert!(!l.failed(t0 + Duration::from_secs(i), ip));
        }
        assert!(l.blocked(t0, ip).is_none());
        assert!(l.failed(t0 + Duration::from_secs(5), ip));
        assert!(l.blocked(t0 + Duration::from_secs(6), ip).is_some());
        assert!(l.blocked(t0, other).is_none(), "per address");
        assert!(l.blocked(t0 + Duration::from_secs(306), ip).is_none());
        // Failures spread wider than the window never block.
        for i in 0..20 {
            assert!(!l.failed(t0 + Duration::from_secs(1000 + i * 100), other));
        }
    }
}
