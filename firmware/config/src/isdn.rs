//! ISDN interfaces (Kerio 7.1-7.4): a PRI or BRI span to a provider or to another PBX,
//! with the same incoming table and rewriting rules as a SIP interface, plus what only
//! ISDN has: the switch type, the side of the interface, the span's driver, how many
//! digits of the called number the provider sends, and overlap dialing.

use crate::routing::{valid_name, validate_incoming, DidMapping, Rewrite, SipInterface};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Provider (Kerio 7.1) or another PBX (Kerio 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsdnRole {
    #[default]
    Provider,
    Pbx,
}

/// The switch type (Kerio: "PBX type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchType {
    /// EuroISDN (ETSI), A-law.
    #[default]
    Euroisdn,
    /// National ISDN-2, u-law.
    Ni2,
}

/// Which side of the interface the box plays: `user` facing a provider, `network`
/// when another PBX is the user (Kerio 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsdnSide {
    #[default]
    User,
    Network,
}

/// The line: an E1 or T1 PRI port, or a BRI port (point-to-multipoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsdnLine {
    /// 30 B-channels (1-15, 17-31).
    #[default]
    E1,
    /// 23 B-channels (1-23).
    T1,
    /// 2 B-channels.
    Bri,
}

impl IsdnLine {
    /// The B-channels as Q.931 numbers them.
    pub fn channels(self) -> Vec<u8> {
        match self {
            IsdnLine::E1 => (1..=31).filter(|c| *c != 16).collect(),
            IsdnLine::T1 => (1..=23).collect(),
            IsdnLine::Bri => vec![1, 2],
        }
    }
}

/// Where the span's D- and B-channels come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "driver", rename_all = "snake_case", deny_unknown_fields)]
pub enum SpanDriver {
    /// A DAHDI span (a PRI or BRI card): the number `dahdi_cfg` gave it.
    Dahdi { span: u32 },
    /// A virtual span for labs and tests (docs/isdn.md): D-channel frames on a Unix
    /// SOCK_SEQPACKET socket at `path`, B-channel N on SOCK_DGRAM `<path>.bN`.
    Virtual { path: String },
}

/// An ISDN interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsdnInterface {
    /// Letters, digits, - and _; unique among all interfaces and links.
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub role: IsdnRole,
    pub span: SpanDriver,
    #[serde(default)]
    pub line: IsdnLine,
    #[serde(default)]
    pub switch_type: SwitchType,
    #[serde(default)]
    pub side: IsdnSide,
    /// The numbers the provider gave us: one, several, or intervals with X.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Local number for calls no mapping or rewrite leads anywhere.
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub did: Vec<DidMapping>,
    /// Incoming calls: how many digits of the called number count (the provider's
    /// shortened form, Kerio 7.3: "only the last 4 digits"); 0 keeps them all.
    #[serde(default)]
    pub called_digits: u32,
    /// Incoming calls: the called number (after `called_digits`) when no DID row
    /// matched.
    #[serde(default)]
    pub called_rewrite: Rewrite,
    /// Incoming calls: the calling number, so users can call back (e.g. add 9).
    #[serde(default)]
    pub calling_rewrite: Rewrite,
    /// Overlap dialing (Kerio 7.4): numbers are sent and taken digit by digit.
    #[serde(default)]
    pub overlap: bool,
}

fn yes() -> bool {
    true
}

impl IsdnInterface {
    pub fn new(name: &str, span: SpanDriver) -> IsdnInterface {
        IsdnInterface {
            name: name.into(),
            enabled: true,
            description: String::new(),
            role: IsdnRole::Provider,
            span,
            line: IsdnLine::E1,
            switch_type: SwitchType::Euroisdn,
            side: IsdnSide::User,
            numbers: Vec::new(),
            operator: String::new(),
            did: Vec::new(),
            called_digits: 0,
            called_rewrite: Rewrite::default(),
            calling_rewrite: Rewrite::default(),
            overlap: false,
        }
    }

    /// The B-channels' codec: A-law on EuroISDN, u-law on NI-2.
    pub fn codec(&self) -> &'static str {
        match self.switch_type {
            SwitchType::Euroisdn => "PCMA",
            SwitchType::Ni2 => "PCMU",
        }
    }

    /// The called number as it counts for routing (the last `called_digits`).
    pub fn significant(&self, called: &str) -> String {
        let n = self.called_digits as usize;
        let len = called.chars().count();
        if n == 0 || len <= n {
            called.to_string()
        } else {
            called.chars().skip(len - n).collect()
        }
    }

    /// How the exchange core sees this interface: a SIP provider at the address of the
    /// span's gateway inside pbxd, with this interface's table and rules.
    pub fn as_sip(&self, host: &str, port: u16) -> SipInterface {
        let mut s = SipInterface::new(&self.name, host);
        s.enabled = self.enabled;
        s.description = self.description.clone();
        s.port = port;
        s.numbers = self.numbers.clone();
        s.operator = self.operator.clone();
        s.did = self.did.clone();
        s.called_rewrite = self.called_rewrite.clone();
        s.calling_rewrite = self.calling_rewrite.clone();
        s.keepalive = 0;
        s.codecs = vec![self.codec().to_string()];
        s.max_calls = self.line.channels().len() as u32;
        s
    }
}

/// Checks the ISDN interfaces; `names` holds the names already taken by SIP interfaces
/// and links, `local` the local numbers.
pub(crate) fn validate(
    list: &[IsdnInterface],
    names: &mut HashSet<String>,
    local: &HashSet<&str>,
    err: &mut impl FnMut(String, &str, String),
) {
    let mut spans = HashSet::new();
    for i in list {
        let ent = format!("ISDN interface {}", i.name);
        if !valid_name(&i.name) {
            err(
                ent.clone(),
                "name",
                "must be 1 to 32 letters, digits, - or _ (no spaces or national characters)".into(),
            );
        }
        if !names.insert(i.name.to_ascii_lowercase()) {
            err(
                ent.clone(),
                "name",
                "is used by another interface or link".into(),
            );
        }
        match &i.span {
            SpanDriver::Dahdi { span } => {
                if !(1..=128).contains(span) {
                    err(ent.clone(), "span", "DAHDI span must be 1 to 128".into());
                }
            }
            SpanDriver::Virtual { path } => {
                if !path.starts_with('/') || path.len() > 90 || path.contains('\0') {
                    err(
                        ent.clone(),
                        "span",
                        "a virtual span needs an absolute socket path of at most 90 bytes".into(),
                    );
                }
            }
        }
        if !spans.insert(i.span.clone()) {
            err(
                ent.clone(),
                "span",
                "another ISDN interface uses this span".into(),
            );
        }
        validate_incoming(&ent, &i.numbers, &i.operator, &i.did, local, err);
        if i.called_digits > 20 {
            err(ent.clone(), "called_digits", "must be 0 to 20".into());
        }
        for (f, r) in [
            ("called_rewrite", &i.called_rewrite),
            ("calling_rewrite", &i.calling_rewrite),
        ] {
            if r.strip > 20 || !r.prefix.bytes().all(|b| b.is_ascii_digit()) {
                err(
                    ent.clone(),
                    f,
                    "strip must be 0 to 20 and the prefix digits".into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Extension};

    fn kerio() -> Config {
        let mut c = Config::default();
        c.extensions.push(Extension::new("201"));
        let mut i = IsdnInterface::new(
            "telco",
            SpanDriver::Virtual {
                path: "/tmp/span".into(),
            },
        );
        i.numbers = vec!["55501XX".into()];
        i.called_digits = 4;
        i.called_rewrite = Rewrite::new(2, "2");
        i.calling_rewrite = Rewrite::new(0, "9");
        c.isdn_interfaces.push(i);
        c
    }

    #[test]
    fn kerio_7_3_example() {
        let c = kerio();
        c.validate().unwrap();
        let i = &c.isdn_interfaces[0];
        // The network sends 5550101: the last four digits, strip 2, add 2.
        let s = i.as_sip("127.77.0.1", 5060);
        let n = i.significant("5550101");
        assert_eq!(n, "0101");
        assert_eq!(s.inbound_target(&n, |x| x == "201"), Some("201".into()));
        assert_eq!(s.calling_rewrite.apply("5550399"), "95550399");
        assert_eq!(s.codecs, ["PCMA"]);
        assert_eq!(s.max_calls, 30);
        assert!(s.owns_number("5550101"));
    }

    #[test]
    fn bad_fields_are_refused_with_their_names() {
        let mut c = kerio();
        c.isdn_interfaces[0].name = "tel co".into();
        c.isdn_interfaces[0].span = SpanDriver::Virtual {
            path: "relative".into(),
        };
        c.isdn_interfaces[0].operator = "999".into();
        c.isdn_interfaces[0].called_rewrite.prefix = "x".into();
        let e = c.validate().unwrap_err().to_string();
        for f in ["name", "span", "operator", "called_rewrite"] {
            assert!(e.contains(f), "{f}: {e}");
        }
        // A name shared with a SIP interface, and a span used twice.
        let mut c = kerio();
        c.sip_interfaces
            .push(SipInterface::new("telco", "127.0.0.4"));
        let again = c.isdn_interfaces[0].clone();
        c.isdn_interfaces.push(IsdnInterface {
            name: "other".into(),
            ..again
        });
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("used by another interface"), "{e}");
        assert!(e.contains("another ISDN interface uses this span"), "{e}");
    }

    #[test]
    fn outbound_routes_may_use_isdn_interfaces() {
        let mut c = kerio();
        c.outbound_routes.push(crate::OutboundRoute {
            prefix: "9".into(),
            description: String::new(),
            interfaces: vec!["telco".into()],
            called_rewrite: Rewrite::new(1, ""),
            calling_rewrite: Rewrite::new(1, "01"),
        });
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: Config = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
