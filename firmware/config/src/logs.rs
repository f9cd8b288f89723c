//! The box's logs (Kerio 28): which debug messages are written, how the log files on
//! /data roll over, and the syslog server they are forwarded to.

use serde::{Deserialize, Serialize};

/// The logs: `config` and `security` are kept in the store; the others are files.
pub const LOG_NAMES: [&str; 6] = ["config", "security", "error", "warning", "debug", "kernel"];

/// The classes of debug messages a technician switches on (Kerio 28.3 "Messages").
pub const DEBUG_CLASSES: [&str; 8] = [
    "sip",
    "registrations",
    "calls",
    "media",
    "provisioning",
    "isdn",
    "web",
    "system",
];

/// Syslog facilities by name (RFC 5424 6.2.1), in code order.
pub const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// How the box talks to the syslog server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// RFC 5426: one message per datagram, lost when the server is away.
    #[default]
    Udp,
    /// RFC 6587: octet-counted frames on a connection.
    Tcp,
    /// RFC 5425: octet-counted frames in TLS, the server's certificate verified against
    /// the system's and the administrator's trusted authorities.
    Tls,
}

impl SyslogTransport {
    /// The port a syslog server listens on for this transport.
    pub fn default_port(self) -> u16 {
        match self {
            SyslogTransport::Udp | SyslogTransport::Tcp => 514,
            SyslogTransport::Tls => 6514,
        }
    }
}

/// Forwarding to a syslog server (Kerio 28.1 "External logging").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Syslog {
    pub enabled: bool,
    /// Host name or address of the server.
    pub host: String,
    /// 0: the transport's port (514, or 6514 for TLS).
    pub port: u16,
    pub transport: SyslogTransport,
    /// The facility the messages carry (a name of [`FACILITIES`]).
    pub facility: String,
    /// Which logs are forwarded (names of [`LOG_NAMES`]).
    pub logs: Vec<String>,
}

impl Default for Syslog {
    fn default() -> Self {
        Syslog {
            enabled: false,
            host: String::new(),
            port: 0,
            transport: SyslogTransport::Udp,
            facility: "local0".into(),
            logs: ["config", "security", "error", "warning", "kernel"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Syslog {
    /// The port messages go to.
    pub fn port(&self) -> u16 {
        if self.port == 0 {
            self.transport.default_port()
        } else {
            self.port
        }
    }

    /// The facility's code (local0 when the name is unknown).
    pub fn facility_code(&self) -> u8 {
        FACILITIES
            .iter()
            .position(|f| *f == self.facility)
            .unwrap_or(16) as u8
    }
}

/// The logs' settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Debug message classes written to the debug log (names of [`DEBUG_CLASSES`]);
    /// informational messages of every class are written in any case.
    pub debug: Vec<String>,
    /// A log file rolls over when it would pass this size (KiB, 16-16384), and at the
    /// first message of a new day.
    pub size_kib: u32,
    /// Rolled-over files kept of each log (1-20); the oldest goes first.
    pub keep: u32,
    /// Rolled-over files older than this many days are deleted (1-3650).
    pub days: u32,
    pub syslog: Syslog,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            debug: Vec::new(),
            size_kib: 1024,
            keep: 5,
            days: 30,
            syslog: Syslog::default(),
        }
    }
}

impl LogSettings {
    /// Problems, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(bad) = self
            .debug
            .iter()
            .find(|c| !DEBUG_CLASSES.contains(&c.as_str()))
        {
            p.push((
                "debug",
                format!(
                    "unknown class {bad:?} (one of {})",
                    DEBUG_CLASSES.join(", ")
                ),
            ));
        }
        if !(16..=16_384).contains(&self.size_kib) {
            p.push(("size_kib", "must be 16-16384".to_string()));
        }
        if !(1..=20).contains(&self.keep) {
            p.push(("keep", "must be 1-20".to_string()));
        }
        if !(1..=3650).contains(&self.days) {
            p.push(("days", "must be 1-3650".to_string()));
        }
        let s = &self.syslog;
        let host_ok = crate::valid_host(&s.host);
        if s.enabled && s.host.is_empty() {
            p.push(("syslog.host", "is needed to forward the logs".to_string()));
        } else if !s.host.is_empty() && !host_ok {
            p.push((
                "syslog.host",
                "must be a host name or an IP address".to_string(),
            ));
        }
        if !FACILITIES.contains(&s.facility.as_str()) {
            p.push((
                "syslog.facility",
                format!("must be one of {}", FACILITIES.join(", ")),
            ));
        }
        if let Some(bad) = s.logs.iter().find(|l| !LOG_NAMES.contains(&l.as_str())) {
            p.push((
                "syslog.logs",
                format!("unknown log {bad:?} (one of {})", LOG_NAMES.join(", ")),
            ));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_bad_values_are_named() {
        let d = LogSettings::default();
        assert!(d.problems().is_empty());
        assert!(!d.syslog.enabled);
        assert_eq!(d.syslog.port(), 514);
        assert_eq!(d.syslog.facility_code(), 16);
        let bad = LogSettings {
            debug: vec!["everything".into()],
            size_kib: 1,
            keep: 0,
            days: 0,
            syslog: Syslog {
                enabled: true,
                host: String::new(),
                facility: "local9".into(),
                logs: vec!["mail".into()],
                ..Syslog::default()
            },
        };
        let fields: Vec<&str> = bad.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "debug",
                "size_kib",
                "keep",
                "days",
                "syslog.host",
                "syslog.facility",
                "syslog.logs"
            ]
        );
        let s: LogSettings = serde_json::from_str(
            r#"{"syslog": {"enabled": true, "host": "bad host!", "transport": "tls"}}"#,
        )
        .unwrap();
        assert_eq!(s.syslog.port(), 6514);
        assert_eq!(s.problems()[0].0, "syslog.host");
        assert!(
            serde_json::from_str::<LogSettings>(r#"{"syslog": {"transport": "smtp"}}"#).is_err()
        );
    }
}
