//! The mail server voicemail messages are sent through (Kerio 17.3, Kalliope's e-mail
//! notifications).

use serde::{Deserialize, Serialize};

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded with STARTTLS (RFC 3207); refused when the server does not
    /// offer it. Port 587 by default.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314, "SMTPS"). Port 465 by default.
    Tls,
    /// No encryption (a relay on the local network). Port 25 by default; no password is
    /// ever sent this way.
    None,
}

/// The mail server. With no `server`, no e-mail is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// Host name or address of the mail server; empty: off.
    pub server: String,
    /// 0: the usual port of `security`.
    pub port: u16,
    pub security: SmtpSecurity,
    /// Empty: the server takes mail without authentication.
    pub username: String,
    pub password: String,
    /// The sender's address (Kerio's "Sender email address").
    pub from: String,
    /// PEM certificates trusted for the server besides the system's (a company CA, or
    /// the server's own self-signed certificate).
    pub ca: String,
}

/// The largest `ca` (a few certificates).
pub const MAX_CA: usize = 64 * 1024;

impl Smtp {
    /// Whether e-mail can be sent.
    pub fn enabled(&self) -> bool {
        !self.server.is_empty()
    }

    /// The port in use.
    pub fn port(&self) -> u16 {
        match (self.port, self.security) {
            (0, SmtpSecurity::Starttls) => 587,
            (0, SmtpSecurity::Tls) => 465,
            (0, SmtpSecurity::None) => 25,
            (p, _) => p,
        }
    }

    /// What is wrong with the settings, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if !self.enabled() {
            return v;
        }
        let host_ok = self.server.len() <= 253
            && self
                .server
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !host_ok {
            v.push(("server", "must be a host name or an address".into()));
        }
        if !valid_address(&self.from) {
            v.push(("from", "must be an e-mail address".into()));
        }
        if self.security == SmtpSecurity::None && !self.username.is_empty() {
            v.push((
                "username",
                "a password is never sent unencrypted: choose STARTTLS or TLS".into(),
            ));
        }
        if !self.username.is_empty() && self.password.is_empty() {
            v.push(("password", "is needed with a user name".into()));
        }
        if self.ca.len() > MAX_CA {
            v.push(("ca", format!("must be at most {} KiB", MAX_CA / 1024)));
        } else if !self.ca.trim().is_empty() && !self.ca.contains("-----BEGIN CERTIFICATE-----") {
            v.push((
                "ca",
                "must be PEM certificates (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        v
    }
}

/// Whether `s` looks like a mail address: one `@`, something on both sides, no spaces,
/// quotes, angle brackets or control characters (it goes into a mail header).
pub fn valid_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && s.len() <= 254
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"<>,;()[]\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_needs_nothing_and_on_needs_a_sender() {
        assert!(Smtp::default().problems().is_empty());
        let mut s = Smtp {
            server: "mail.example.com".into(),
            ..Smtp::default()
        };
        assert_eq!(s.problems()[0].0, "from");
        s.from = "pbx@example.com".into();
        assert!(s.problems().is_empty());
        assert_eq!(s.port(), 587);
        s.security = SmtpSecurity::Tls;
        assert_eq!(s.port(), 465);
        s.port = 2525;
        assert_eq!(s.port(), 2525);
    }

    #[test]
    fn no_password_goes_out_in_clear_and_bad_fields_are_named() {
        let s = Smtp {
            server: "mail example".into(),
            security: SmtpSecurity::None,
            username: "pbx".into(),
            from: "a b@c".into(),
            ca: "not pem".into(),
            ..Smtp::default()
        };
        let fields: Vec<&str> = s.problems().iter().map(|p| p.0).collect();
        assert_eq!(fields, ["server", "from", "username", "password", "ca"]);
        for good in ["a@b", "first.last+vm@example.co.uk"] {
            assert!(valid_address(good), "{good}");
        }
        for bad in ["", "a", "@b", "a@", "a@b@c", "a <b@c>", "a\r\n@b", "a,b@c"] {
            assert!(!valid_address(bad), "{bad:?}");
        }
    }
}
