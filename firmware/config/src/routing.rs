//! Trunks and number routing: SIP interfaces to providers (Kerio 6.1), links to other
//! PBXs (Kerio 6.2, Kerauno's System Connector, IvozProvider's Friends), inbound DID
//! mapping and rewrite rules (Kerio 6.3, 7.3), outbound routes with backup interfaces
//! (Kerio 6.6), call permission groups (Kerio 23.2), emergency numbers (Kerio 18) and
//! ring groups (Kerio 15). Plus the pure routing decision for a dialled number.

use crate::{is_digits, valid_host, Config, Transport};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Strip `strip` digits from the left, then add `prefix` (Kerio 6.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    #[serde(default)]
    pub strip: u32,
    #[serde(default)]
    pub prefix: String,
}

impl Rewrite {
    pub fn new(strip: u32, prefix: &str) -> Rewrite {
        Rewrite {
            strip,
            prefix: prefix.into(),
        }
    }

    /// The rewritten number (stripping may leave nothing before the prefix).
    pub fn apply(&self, number: &str) -> String {
        let cut: String = number.chars().skip(self.strip as usize).collect();
        format!("{}{cut}", self.prefix)
    }
}

/// One row of an interface's incoming table: an external number (exact, or with X for
/// any digit) and the local number it rings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidMapping {
    pub number: String,
    pub target: String,
}

/// Whether `number` matches `pattern`: digits match themselves, X (or x) any digit.
pub fn matches_pattern(pattern: &str, number: &str) -> bool {
    pattern.len() == number.len()
        && pattern
            .bytes()
            .zip(number.bytes())
            .all(|(p, n)| p == n || ((p == b'X' || p == b'x') && n.is_ascii_digit()))
}

pub(crate) fn valid_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 32
        && p.bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || b == b'X' || b == b'x' || (i == 0 && b == b'+'))
}

fn default_expires() -> u32 {
    3600
}
fn default_keepalive() -> u32 {
    60
}
fn default_priority() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_codecs() -> Vec<String> {
    vec!["PCMA".into(), "PCMU".into()]
}

/// An interface to a SIP provider (Kerio 6.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipInterface {
    /// Letters, digits, - and _; unique among interfaces and links.
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    /// The numbers the provider gave us: one, several, or intervals with X.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Local number that gets calls no mapping or rewrite leads anywhere.
    #[serde(default)]
    pub operator: String,
    /// External number (or X pattern) to local number; exact numbers win over patterns.
    #[serde(default)]
    pub did: Vec<DidMapping>,
    /// Incoming calls: the called number, applied when no DID row matched.
    #[serde(default)]
    pub called_rewrite: Rewrite,
    /// Incoming calls: the calling number, so users can call back (e.g. add 9).
    #[serde(default)]
    pub calling_rewrite: Rewrite,
    /// Provider's SIP server: an IP address or a DNS name (SRV/NAPTR when `port` is 0).
    pub host: String,
    /// 0 = from DNS SRV, else 5060.
    #[serde(default)]
    pub port: u16,
    #[serde(default = "udp")]
    pub transport: Transport,
    /// User name for authentication and registration (often the telephone number).
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// Authentication user ID when it differs from `username`.
    #[serde(default)]
    pub auth_user: String,
    /// Keep a registration with the provider.
    #[serde(default)]
    pub register: bool,
    /// Registration lifetime asked for, seconds.
    #[serde(default = "default_expires")]
    pub register_expires: u32,
    /// Public address to put in the Contact when the box is behind NAT.
    #[serde(default)]
    pub external_ip: String,
    /// Seconds between OPTIONS keepalives (0 = none).
    #[serde(default = "default_keepalive")]
    pub keepalive: u32,
    /// Preferred first.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// Calls at once through this interface (0 = no limit).
    #[serde(default)]
    pub max_calls: u32,
    /// Further addresses or subnets the provider sends calls from.
    #[serde(default)]
    pub inbound_sources: Vec<String>,
    /// Encrypt audio (SRTP with SDES keys, Kalliope's "Abilita SRTP"): calls through
    /// it are offered RTP/SAVP with a key, calls from it must offer SRTP. Needs TLS
    /// (the keys travel in the signalling).
    #[serde(default)]
    pub srtp: bool,
}

fn udp() -> Transport {
    Transport::Udp
}

impl SipInterface {
    pub fn new(name: &str, host: &str) -> SipInterface {
        SipInterface {
            name: name.into(),
            enabled: true,
            description: String::new(),
            numbers: Vec::new(),
            operator: String::new(),
            did: Vec::new(),
            called_rewrite: Rewrite::default(),
            calling_rewrite: Rewrite::default(),
            host: host.into(),
            port: 0,
            transport: Transport::Udp,
            username: String::new(),
            password: String::new(),
            auth_user: String::new(),
            register: false,
            register_expires: default_expires(),
            external_ip: String::new(),
            keepalive: default_keepalive(),
            codecs: default_codecs(),
            max_calls: 0,
            inbound_sources: Vec::new(),
            srtp: false,
        }
    }

    /// The local number an incoming call to `called` rings (Kerio 6.1, 6.3): the DID
    /// table (exact rows, then patterns), else the called-number rewrite when it leads to
    /// a local number, else the operator. `None` when nothing applies.
    pub fn inbound_target(&self, called: &str, is_local: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(m) = self.did.iter().find(|m| m.number == called) {
            return Some(m.target.clone());
        }
        if let Some(m) = self.did.iter().find(|m| matches_pattern(&m.number, called)) {
            return Some(m.target.clone());
        }
        let rewritten = self.called_rewrite.apply(called);
        if is_local(&rewritten) {
            return Some(rewritten);
        }
        (!self.operator.is_empty()).then(|| self.operator.clone())
    }

    /// Whether `number` is one of the provider's numbers (exact or an X interval).
    pub fn owns_number(&self, number: &str) -> bool {
        self.numbers
            .iter()
            .any(|p| p == number || matches_pattern(p, number))
    }

    /// User for the digest answer.
    pub fn auth_name(&self) -> &str {
        if self.auth_user.is_empty() {
            &self.username
        } else {
            &self.auth_user
        }
    }
}

/// How the box and the other PBX reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMode {
    /// We send to `host:port`; it sends to us.
    #[default]
    Direct,
    /// The other PBX is behind NAT and registers to us with `username`/`password`.
    PeerRegisters,
    /// We register to the other PBX with `username`/`password`.
    WeRegister,
}

/// A link to another PBX: Kerio's "link to another PBX" (prefix), Kerauno's System
/// Connector (extension range) and IvozProvider's Friend (patterns with a priority).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    /// Numbers starting with this go to the link (Kerio), sent as dialled.
    #[serde(default)]
    pub prefix: String,
    /// The other system's extension range (Kerauno), inclusive; both or neither.
    #[serde(default)]
    pub range_min: String,
    #[serde(default)]
    pub range_max: String,
    /// Regular expressions matching whole numbers (Ivoz).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// When several links match, the lowest wins (Ivoz).
    #[serde(default = "default_priority")]
    pub priority: u32,
    #[serde(default)]
    pub mode: LinkMode,
    /// The other PBX (for `direct` and `we_register`).
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default = "udp")]
    pub transport: Transport,
    /// Credentials, the same on both systems (Kerauno): the other side authenticates
    /// to us with them, and we answer its challenges and register with them. Empty
    /// password on a direct link: requests are recognised by the host's address.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// Registration lifetime asked for when we register.
    #[serde(default = "default_expires")]
    pub register_expires: u32,
    /// NAT transformation: answer and send media where packets really come from.
    #[serde(default)]
    pub nat: bool,
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// Domain in the From of requests we send (Ivoz).
    #[serde(default)]
    pub from_domain: String,
    /// External calls from the link show this number unless the link presents one of
    /// our providers' numbers (Ivoz).
    #[serde(default)]
    pub fallback_ddi: String,
    /// For number normalisation to and from the link (Ivoz): `+CC...` and `00CC...`
    /// national numbers, and `0AREA...` local ones, are shortened towards the link;
    /// numbers from the link are widened back (see docs/routing.md).
    #[serde(default)]
    pub country_code: String,
    #[serde(default)]
    pub area_code: String,
    /// Permission group for the external calls the other side places through us.
    #[serde(default)]
    pub permission_group: String,
    /// Local numbers inside this link's numbers where the remote side wins (Kerauno's
    /// conflicts); Local wins for every other one.
    #[serde(default)]
    pub remote_wins: Vec<String>,
    /// Seconds between OPTIONS keepalives for a direct link (0 = none).
    #[serde(default = "default_keepalive")]
    pub keepalive: u32,
    /// Encrypt audio (SRTP), as on an interface; needs TLS.
    #[serde(default)]
    pub srtp: bool,
}

impl Link {
    pub fn new(name: &str) -> Link {
        Link {
            name: name.into(),
            enabled: true,
            description: String::new(),
            prefix: String::new(),
            range_min: String::new(),
            range_max: String::new(),
            patterns: Vec::new(),
            priority: 1,
            mode: LinkMode::Direct,
            host: String::new(),
            port: 0,
            transport: Transport::Udp,
            username: String::new(),
            password: String::new(),
            register_expires: default_expires(),
            nat: false,
            codecs: default_codecs(),
            from_domain: String::new(),
            fallback_ddi: String::new(),
            country_code: String::new(),
            area_code: String::new(),
            permission_group: String::new(),
            remote_wins: Vec::new(),
            keepalive: default_keepalive(),
            srtp: false,
        }
    }

    /// Kerauno's register string `{username}@{host}:{password}`.
    pub fn register_string(&self) -> String {
        if self.username.is_empty() && self.password.is_empty() {
            return String::new();
        }
        format!("{}@{}:{}", self.username, self.host, self.password)
    }

    /// Fills user name, host and password from a register string.
    pub fn set_register_string(&mut self, s: &str) -> Result<(), String> {
        let bad =
            || format!("{s:?} is not a register string ({{username}}@{{host or IP}}:{{password}})");
        let (user, rest) = s.split_once('@').ok_or_else(bad)?;
        let (host, password) = rest.split_once(':').ok_or_else(bad)?;
        if user.is_empty() || host.is_empty() || password.is_empty() || !valid_host(host) {
            return Err(bad());
        }
        self.username = user.into();
        self.host = host.into();
        self.password = password.into();
        Ok(())
    }

    /// Whether the dialled number belongs to the other PBX (by prefix, range or pattern).
    pub fn matches(&self, number: &str, compiled: &[regex_lite::Regex]) -> bool {
        (!self.prefix.is_empty()
            && number.starts_with(&self.prefix)
            && number.len() > self.prefix.len())
            || self.in_range(number)
            || compiled.iter().any(|r| r.is_match(number))
    }

    fn in_range(&self, number: &str) -> bool {
        if self.range_min.is_empty() || !is_digits(number) {
            return false;
        }
        let (Ok(lo), Ok(hi), Ok(n)) = (
            self.range_min.parse::<u64>(),
            self.range_max.parse::<u64>(),
            number.parse::<u64>(),
        ) else {
            return false;
        };
        number.len() >= self.range_min.len()
            && number.len() <= self.range_max.len()
            && (lo..=hi).contains(&n)
    }

    /// The link's patterns, anchored to whole numbers.
    pub fn compile(&self) -> Result<Vec<regex_lite::Regex>, String> {
        self.patterns
            .iter()
            .map(|p| {
                regex_lite::RegexBuilder::new(&format!("^(?:{p})$"))
                    .size_limit(1 << 16)
                    .build()
                    .map_err(|e| format!("{p:?} is not a regular expression: {e}"))
            })
            .collect()
    }

    /// A number going to the link, in the link's own form (Ivoz's normalisation).
    pub fn to_link(&self, number: &str) -> String {
        let Some(national) = self.national(number) else {
            return number.to_string();
        };
        match national.strip_prefix(&format!("0{}", self.area_code)) {
            Some(local) if !self.area_code.is_empty() && !local.is_empty() => local.to_string(),
            _ => national,
        }
    }

    /// A number from the link, widened to the national form we dial.
    pub fn from_link(&self, number: &str) -> String {
        if let Some(n) = self.national(number) {
            return n;
        }
        number.to_string()
    }

    /// `+CC...` or `00CC...` of our own country as a national number `0...`.
    fn national(&self, number: &str) -> Option<String> {
        if self.country_code.is_empty() {
            return None;
        }
        let rest = number
            .strip_prefix('+')
            .or_else(|| number.strip_prefix("00"))?;
        let n = rest.strip_prefix(self.country_code.as_str())?;
        (!n.is_empty()).then(|| format!("0{n}"))
    }
}

/// One outbound route (Kerio 6.6, 7.3): numbers starting with `prefix` leave through
/// the first working interface of `interfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRoute {
    /// The dial-out prefix; empty matches every number no other route takes.
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub description: String,
    /// Interface names, tried in order.
    pub interfaces: Vec<String>,
    /// The called number as the provider wants it (usually strip the prefix).
    #[serde(default)]
    pub called_rewrite: Rewrite,
    /// The calling number as the provider wants it.
    #[serde(default)]
    pub calling_rewrite: Rewrite,
}

/// One rule of a permission group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionRule {
    /// Prefix of the number as dialled (with the dial-out prefix).
    pub prefix: String,
    pub allow: bool,
}

/// A call permission group (Kerio 23.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// First match wins.
    #[serde(default)]
    pub rules: Vec<PermissionRule>,
    /// The `default` row.
    #[serde(default = "yes")]
    pub default_allow: bool,
}

impl PermissionGroup {
    /// Whether an external call to `dialled` is allowed.
    pub fn allows(&self, dialled: &str) -> bool {
        self.rules
            .iter()
            .find(|r| dialled.starts_with(&r.prefix))
            .map_or(self.default_allow, |r| r.allow)
    }
}

/// One emergency number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyNumber {
    pub number: String,
    #[serde(default)]
    pub description: String,
}

/// Emergency numbers (Kerio 18).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emergency {
    #[serde(default)]
    pub numbers: Vec<EmergencyNumber>,
    /// Dial them without the dial-out prefix.
    #[serde(default)]
    pub direct_dialing: bool,
    /// Prefixes of the outbound routes direct dialing uses, in order.
    #[serde(default)]
    pub routes: Vec<String>,
}

impl Emergency {
    pub fn is_emergency(&self, number: &str) -> bool {
        self.numbers.iter().any(|n| n.number == number)
    }
}

/// Countries with a preset emergency list: code, name.
pub const EMERGENCY_COUNTRIES: &[(&str, &str)] = &[
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("CA", "Canada"),
    ("CZ", "Czech Republic"),
    ("DE", "Germany"),
    ("ES", "Spain"),
    ("FR", "France"),
    ("IT", "Italy"),
    ("NL", "Netherlands"),
    ("PL", "Poland"),
    ("SK", "Slovakia"),
    ("GB", "United Kingdom"),
    ("US", "United States"),
];

/// The preset emergency list of a country (ISO code or English name).
pub fn emergency_preset(country: &str) -> Option<Vec<EmergencyNumber>> {
    let code = EMERGENCY_COUNTRIES
        .iter()
        .find(|(c, n)| c.eq_ignore_ascii_case(country) || n.eq_ignore_ascii_case(country))?
        .0;
    let list: &[(&str, &str)] = match code {
        "AT" => &[
            ("112", "Emergency"),
            ("122", "Fire"),
            ("133", "Police"),
            ("144", "Ambulance"),
            ("140", "Mountain rescue"),
        ],
        "AU" => &[("000", "Emergency"), ("112", "Emergency (mobile)")],
        "CA" => &[("911", "Emergency")],
        "CZ" => &[
            ("112", "Emergency"),
            ("150", "Fire"),
            ("155", "Ambulance"),
            ("156", "Municipal police"),
            ("158", "Police"),
        ],
        "DE" => &[
            ("112", "Fire and ambulance"),
            ("110", "Police"),
            ("116117", "Medical on-call service"),
        ],
        "ES" => &[
            ("112", "Emergency"),
            ("091", "National police"),
            ("092", "Local police"),
        ],
        "FR" => &[
            ("112", "Emergency"),
            ("15", "Ambulance (SAMU)"),
            ("17", "Police"),
            ("18", "Fire"),
            ("114", "Emergency for the deaf"),
        ],
        "IT" => &[
            ("112", "Emergency"),
            ("113", "Police"),
            ("115", "Fire"),
            ("118", "Ambulance"),
        ],
        "NL" => &[("112", "Emergency"), ("09008844", "Police (non-emergency)")],
        "PL" => &[
            ("112", "Emergency"),
            ("997", "Police"),
            ("998", "Fire"),
            ("999", "Ambulance"),
        ],
        "SK" => &[
            ("112", "Emergency"),
            ("150", "Fire"),
            ("155", "Ambulance"),
            ("158", "Police"),
            ("159", "Municipal police"),
        ],
        "GB" => &[
            ("999", "Emergency"),
            ("112", "Emergency"),
            ("111", "NHS (non-emergency)"),
            ("101", "Police (non-emergency)"),
        ],
        "US" => &[
            ("911", "Emergency"),
            ("112", "Emergency"),
            ("311", "Non-emergency"),
        ],
        _ => return None,
    };
    Some(
        list.iter()
            .map(|(n, d)| EmergencyNumber {
                number: (*n).into(),
                description: (*d).into(),
            })
            .collect(),
    )
}

/// A ring group (Kerio 15): members are local or external numbers (external ones go
/// out through the outbound routes), rung all at once or one after the other; when
/// nobody answers within the group's time the call falls back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingGroup {
    pub number: String,
    #[serde(default)]
    pub name: String,
    pub members: Vec<String>,
    #[serde(default)]
    pub strategy: RingStrategy,
    /// Seconds each member rings, one after the other (in order, round robin).
    #[serde(default = "default_member_seconds")]
    pub member_seconds: u32,
    /// Seconds the whole group rings before the fallback; 0 = the box's ring timeout.
    #[serde(default)]
    pub timeout: u32,
    /// Where the call goes when nobody answers or every member is busy: a number, or
    /// `hangup`; empty = the caller hears why.
    #[serde(default)]
    pub fallback: String,
}

fn default_member_seconds() -> u32 {
    15
}

/// How a ring group's members are rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RingStrategy {
    /// Every member at once.
    #[default]
    All,
    /// One after the other, always from the first.
    InOrder,
    /// One after the other, starting after the member who was rung first last time.
    RoundRobin,
}

impl RingGroup {
    /// A group ringing all `members` at once, with no fallback.
    pub fn new(number: &str, members: &[&str]) -> RingGroup {
        RingGroup {
            number: number.into(),
            name: String::new(),
            members: members.iter().map(|m| m.to_string()).collect(),
            strategy: RingStrategy::All,
            member_seconds: default_member_seconds(),
            timeout: 0,
            fallback: String::new(),
        }
    }
}

/// Whether `to` can be where a call is forwarded or falls back: a number or `hangup`.
pub fn valid_target(to: &str) -> bool {
    to == crate::HANG_UP
        || crate::is_phone_number(to)
        || crate::voicemail_target(to).is_some_and(is_digits)
}

/// Where a dialled number goes, in the order of DESIGN.md.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    Extension(String),
    RingGroup(String),
    /// Link name.
    Link(String),
    /// Emergency number dialled directly: the routes to try, in order.
    Emergency(Vec<OutboundRoute>),
    Outbound(OutboundRoute),
    Unknown,
}

/// A local number that also falls inside a link's numbers (Kerauno's conflicts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub link: String,
    pub number: String,
    /// extension, ring group, emergency number.
    pub kind: String,
    /// `local` or `remote`.
    pub winner: String,
}

/// Checks an interface's incoming table (SIP or ISDN): its numbers, the operator and
/// the DID rows must be numbers or X patterns leading to local numbers.
pub(crate) fn validate_incoming(
    ent: &str,
    numbers: &[String],
    operator: &str,
    did: &[DidMapping],
    local: &HashSet<&str>,
    err: &mut impl FnMut(String, &str, String),
) {
    for n in numbers {
        if !valid_pattern(n) {
            err(
                ent.into(),
                "numbers",
                format!("{n:?} is not a number or an X pattern"),
            );
        }
    }
    if !operator.is_empty() && !local.contains(operator) {
        err(
            ent.into(),
            "operator",
            format!("{operator} is not a local number"),
        );
    }
    for m in did {
        if !valid_pattern(&m.number) {
            err(
                ent.into(),
                "did",
                format!("{:?} is not a number or an X pattern", m.number),
            );
        }
        if !local.contains(m.target.as_str()) {
            err(
                ent.into(),
                "did",
                format!("{} is not a local number", m.target),
            );
        }
    }
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Config {
    /// Local numbers inside links' numbers; `remote` where the link's `remote_wins` says.
    pub fn link_conflicts(&self) -> Vec<Conflict> {
        let mut locals: Vec<(&str, &str)> = Vec::new();
        locals.extend(
            self.extensions
                .iter()
                .map(|e| (e.number.as_str(), "extension")),
        );
        locals.extend(
            self.ring_groups
                .iter()
                .map(|g| (g.number.as_str(), "ring group")),
        );
        locals.extend(
            self.emergency
                .numbers
                .iter()
                .map(|n| (n.number.as_str(), "emergency number")),
        );
        let mut out = Vec::new();
        for l in &self.links {
            let compiled = l.compile().unwrap_or_default();
            for (n, kind) in &locals {
                if l.matches(n, &compiled) {
                    out.push(Conflict {
                        link: l.name.clone(),
                        number: n.to_string(),
                        kind: kind.to_string(),
                        winner: if l.remote_wins.iter().any(|r| r == n) {
                            "remote".into()
                        } else {
                            "local".into()
                        },
                    });
                }
            }
        }
        out
    }

    pub(crate) fn validate_routing(
        &self,
        numbers: &HashSet<&str>,
        err: &mut impl FnMut(String, &str, String),
    ) {
        let mut names = HashSet::new();
        let accounts: HashSet<&str> = self.accounts.iter().map(|a| a.username.as_str()).collect();
        let boxes = self.extension_numbers(|e| e.voicemail);
        let groups: HashSet<&str> = self
            .permission_groups
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        let mut local: HashSet<&str> = numbers.clone();
        for g in &self.ring_groups {
            let ent = format!("ring group {}", g.number);
            if !is_digits(&g.number) || g.number.len() > 20 {
                err(ent.clone(), "number", "must be 1 to 20 digits".into());
            }
            if !local.insert(g.number.as_str()) {
                err(
                    ent.clone(),
                    "number",
                    "is already used by an extension or another ring group".into(),
                );
            }
            if g.members.is_empty() || g.members.len() > 32 {
                err(ent.clone(), "members", "must list 1 to 32 numbers".into());
            }
            for m in &g.members {
                if !crate::is_phone_number(m) {
                    err(ent.clone(), "members", format!("{m:?} is not a number"));
                }
                if m == &g.number {
                    err(ent.clone(), "members", "a group cannot ring itself".into());
                }
            }
            if !(5..=300).contains(&g.member_seconds) {
                err(
                    ent.clone(),
                    "member_seconds",
                    "must be 5 to 300 seconds".into(),
                );
            }
            if g.timeout != 0 && !(5..=3600).contains(&g.timeout) {
                err(
                    ent.clone(),
                    "timeout",
                    "must be 0 (the box's) or 5 to 3600 seconds".into(),
                );
            }
            if !g.fallback.is_empty() && (!valid_target(&g.fallback) || g.fallback == g.number) {
                err(
                    ent.clone(),
                    "fallback",
                    "must be another number, voicemail:<extension> or hangup".into(),
                );
            }
            if let Some(b) = crate::voicemail_target(&g.fallback) {
                if !boxes.contains(b) {
                    err(
                        ent.clone(),
                        "fallback",
                        format!("extension {b} has no voicemail box"),
                    );
                }
            }
        }
        let group_names: HashSet<&str> = self.ip_groups.iter().map(|g| g.name.as_str()).collect();
        let mut group_seen = HashSet::new();
        for g in &self.ip_groups {
            let ent = format!("IP address group {}", g.name);
            if !valid_name(&g.name) {
                err(
                    ent.clone(),
                    "name",
                    "must be 1 to 32 letters, digits, - or _".into(),
                );
            }
            if !group_seen.insert(g.name.as_str()) {
                err(ent.clone(), "name", "is used by another group".into());
            }
            if g.items.is_empty() || g.items.len() > crate::MAX_IP_ITEMS {
                err(
                    ent.clone(),
                    "items",
                    format!("must have 1 to {} items", crate::MAX_IP_ITEMS),
                );
            }
            for i in &g.items {
                if let Some(p) = i.problem() {
                    err(ent.clone(), "items", p);
                }
                if let crate::IpItem::Group { group, .. } = i {
                    if !group_names.contains(group.as_str()) {
                        err(ent.clone(), "items", format!("no group {group}"));
                    }
                }
                if i.description().len() > 200 || i.description().chars().any(char::is_control) {
                    err(
                        ent.clone(),
                        "items",
                        "a description is one line of at most 200 characters".into(),
                    );
                }
            }
        }
        let allow = &self.sip_protection.allow_group;
        if !allow.is_empty() && !group_names.contains(allow.as_str()) {
            err(
                "SIP protection".into(),
                "allow_group",
                format!("no IP address group {allow}"),
            );
        }
        for (k, _) in crate::FIREWALL_SERVICES {
            let g = self.firewall.group(k).unwrap_or("");
            if !g.is_empty() && !group_names.contains(g) {
                err("Firewall".into(), k, format!("no IP address group {g}"));
            }
        }
        for c in crate::ipgroups::circles(&self.ip_groups) {
            err(
                format!("IP address group {c}"),
                "items",
                "names itself through other groups".into(),
            );
        }
        let mut collections = HashSet::new();
        for m in &self.music {
            let ent = format!("music collection {}", m.name);
            if !collections.insert(m.name.as_str()) {
                err(ent.clone(), "name", "is used by another collection".into());
            }
            for (field, message) in m.problems() {
                err(ent.clone(), field, message);
            }
        }
        if self.music.iter().filter(|m| m.default).count() > 1 {
            err(
                "music on hold".into(),
                "default",
                "only one collection can be the default".into(),
            );
        }
        let mut ranges = HashSet::new();
        for r in &self.time_ranges {
            let ent = format!("time range {}", r.name);
            if !valid_name(&r.name) {
                err(
                    ent.clone(),
                    "name",
                    "must be letters, digits, - or _".into(),
                );
            }
            if !ranges.insert(r.name.as_str()) {
                err(ent.clone(), "name", "is used by another time range".into());
            }
            for (field, message) in r.problems() {
                err(ent.clone(), field, message);
            }
        }
        let fc = &self.feature_codes;
        for c in &self.conferences {
            let ent = format!("conference {}", c.number);
            if !local.insert(c.number.as_str()) {
                err(
                    ent.clone(),
                    "number",
                    "is already used by an extension, ring group or another conference".into(),
                );
            }
            let prefixes = [&fc.directed_pickup, &fc.voicemail_direct];
            if prefixes
                .iter()
                .any(|p| !p.is_empty() && c.number.starts_with(p.as_str()))
            {
                err(
                    ent.clone(),
                    "number",
                    "begins with a feature code prefix".into(),
                );
            }
            for (field, message) in c.problems() {
                err(ent.clone(), field, message);
            }
        }
        if !(10..=1_000_000).contains(&self.recordings_max_mb) {
            err(
                "recorded calls".into(),
                "recordings_max_mb",
                "must be 10 to 1000000 megabytes".into(),
            );
        }
        for q in &self.queues {
            let ent = format!("queue {}", q.number);
            for n in q.numbers() {
                if !n.is_empty() && !local.insert(n) {
                    err(
                        ent.clone(),
                        if n == q.number {
                            "number"
                        } else {
                            "login_code"
                        },
                        format!("{n} is already used by another number of the dial plan"),
                    );
                }
                let prefixes = [&fc.directed_pickup, &fc.voicemail_direct];
                if prefixes
                    .iter()
                    .any(|p| !p.is_empty() && !n.is_empty() && n.starts_with(p.as_str()))
                {
                    err(
                        ent.clone(),
                        if n == q.number {
                            "number"
                        } else {
                            "login_code"
                        },
                        format!("{n} begins with a feature code prefix"),
                    );
                }
            }
            if self.queues.iter().any(|o| {
                o.dynamic_agents && (o.login_code == q.fallback || o.logout_code == q.fallback)
            }) {
                err(
                    ent.clone(),
                    "fallback",
                    "is an agent login or logout code, not a place for callers".into(),
                );
            }
            for a in &q.agents {
                if !numbers.contains(a.as_str()) {
                    err(ent.clone(), "agents", format!("{a} is not an extension"));
                }
            }
            if !q.music.is_empty()
                && q.music != crate::SYSTEM_MUSIC
                && !self.music.iter().any(|m| m.name == q.music)
            {
                err(
                    ent.clone(),
                    "music",
                    format!("{} is not a music on hold collection", q.music),
                );
            }
            if let Some(b) = crate::voicemail_target(&q.fallback) {
                if !boxes.contains(b) {
                    err(
                        ent.clone(),
                        "fallback",
                        format!("extension {b} has no voicemail box"),
                    );
                }
            }
            for (field, message) in q.problems() {
                err(ent.clone(), field, message);
            }
        }
        for a in &self.auto_attendants {
            let ent = format!("auto attendant {}", a.number);
            if !is_digits(&a.number) || a.number.len() > 20 {
                err(ent.clone(), "number", "must be 1 to 20 digits".into());
            }
            if !local.insert(a.number.as_str()) {
                err(
                    ent.clone(),
                    "number",
                    "is already used by an extension, ring group or another script".into(),
                );
            }
            let prefixes = [&fc.directed_pickup, &fc.voicemail_direct];
            if prefixes
                .iter()
                .any(|p| !p.is_empty() && a.number.starts_with(p.as_str()))
            {
                err(
                    ent.clone(),
                    "number",
                    "begins with a feature code prefix".into(),
                );
            }
            for (field, message) in a.problems(&local, &boxes, &ranges, &groups) {
                err(ent.clone(), field, message);
            }
        }
        for e in &self.extensions {
            if !e.forward.is_empty()
                && (!crate::is_phone_number(&e.forward) || e.forward == e.number)
            {
                err(
                    format!("extension {}", e.number),
                    "forward",
                    "must be another number (digits, optionally after +)".into(),
                );
            }
            if e.forwarding.len() > 12 {
                err(
                    format!("extension {}", e.number),
                    "forwarding",
                    "at most 12 rules".into(),
                );
            }
            let mut seen = HashSet::new();
            for r in &e.forwarding {
                if r.to == crate::VOICEMAIL {
                    if !e.voicemail {
                        err(
                            format!("extension {}", e.number),
                            "forwarding",
                            "the extension has no voicemail box (turn voicemail on)".into(),
                        );
                    }
                } else if !valid_target(&r.to) || r.to == e.number {
                    err(
                        format!("extension {}", e.number),
                        "forwarding",
                        format!(
                            "{:?} must be another number, voicemail, voicemail:<extension> or hangup",
                            r.to
                        ),
                    );
                } else if let Some(b) = crate::voicemail_target(&r.to) {
                    if !boxes.contains(b) {
                        err(
                            format!("extension {}", e.number),
                            "forwarding",
                            format!("extension {b} has no voicemail box"),
                        );
                    }
                }
                if !seen.insert((r.cause, r.origin)) {
                    err(
                        format!("extension {}", e.number),
                        "forwarding",
                        "two rules for the same cause and origin".into(),
                    );
                }
            }
            for (field, list) in [
                ("pickup_groups", &e.pickup_groups),
                ("pickup_from", &e.pickup_from),
            ] {
                if list.len() > 16 || list.iter().any(|g| !valid_name(g)) {
                    err(
                        format!("extension {}", e.number),
                        field,
                        "up to 16 group names of letters, digits, - or _".into(),
                    );
                }
            }
            if !(5..=600).contains(&e.no_answer_seconds) {
                err(
                    format!("extension {}", e.number),
                    "no_answer_seconds",
                    "must be 5 to 600 seconds".into(),
                );
            }
            if !e.permission_group.is_empty() && !groups.contains(e.permission_group.as_str()) {
                err(
                    format!("extension {}", e.number),
                    "permission_group",
                    format!("permission group {} does not exist", e.permission_group),
                );
            }
        }
        let check_common = |ent: &str,
                            name: &str,
                            host: &str,
                            transport: Transport,
                            srtp: bool,
                            codecs: &[String],
                            names: &mut HashSet<String>,
                            err: &mut dyn FnMut(String, &str, String)| {
            if !valid_name(name) {
                err(
                    ent.into(),
                    "name",
                    "must be 1 to 32 letters, digits, - or _ (no spaces or national characters)"
                        .into(),
                );
            }
            if !names.insert(name.to_ascii_lowercase()) {
                err(
                    ent.into(),
                    "name",
                    "is used by another interface or link".into(),
                );
            }
            if !host.is_empty() && !valid_host(host) {
                err(
                    ent.into(),
                    "host",
                    format!("{host:?} is not a host name or IP address"),
                );
            }
            if !matches!(transport, Transport::Udp | Transport::Tcp | Transport::Tls) {
                err(ent.into(), "transport", "must be udp, tcp or tls".into());
            }
            if srtp && transport != Transport::Tls {
                err(
                    ent.into(),
                    "srtp",
                    "SRTP keys travel in the signalling: set the transport to tls".into(),
                );
            }
            if codecs.is_empty() {
                err(ent.into(), "codecs", "must list at least one codec".into());
            }
            for c in codecs {
                if !crate::KNOWN_CODECS
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(c))
                {
                    err(ent.into(), "codecs", format!("unknown codec {c:?}"));
                }
            }
        };
        for i in &self.sip_interfaces {
            let ent = format!("interface {}", i.name);
            check_common(
                &ent,
                &i.name,
                &i.host,
                i.transport,
                i.srtp,
                &i.codecs,
                &mut names,
                err,
            );
            if i.host.is_empty() {
                err(
                    ent.clone(),
                    "host",
                    "the provider's server is required".into(),
                );
            }
            validate_incoming(&ent, &i.numbers, &i.operator, &i.did, &local, err);
            if i.register && (i.username.is_empty() || i.password.is_empty()) {
                err(
                    ent.clone(),
                    "register",
                    "registration needs a user name and password".into(),
                );
            }
            if i.register && !(60..=86400).contains(&i.register_expires) {
                err(
                    ent.clone(),
                    "register_expires",
                    "must be 60 to 86400 seconds".into(),
                );
            }
            if !i.external_ip.is_empty() && i.external_ip.parse::<std::net::IpAddr>().is_err() {
                err(ent.clone(), "external_ip", "must be an IP address".into());
            }
            for s in &i.inbound_sources {
                if let Err(why) = crate::Subnet::parse(s) {
                    err(ent.clone(), "inbound_sources", why);
                }
            }
            for r in [&i.called_rewrite, &i.calling_rewrite] {
                if !r.prefix.is_empty() && !crate::is_phone_number(&r.prefix) {
                    err(ent.clone(), "rewrite", "a rewrite adds digits only".into());
                }
            }
        }
        let mut link_users = HashSet::new();
        for l in &self.links {
            let ent = format!("link {}", l.name);
            check_common(
                &ent,
                &l.name,
                &l.host,
                l.transport,
                l.srtp,
                &l.codecs,
                &mut names,
                err,
            );
            if l.prefix.is_empty() && l.range_min.is_empty() && l.patterns.is_empty() {
                err(
                    ent.clone(),
                    "prefix",
                    "give a prefix, an extension range or patterns".into(),
                );
            }
            if !l.prefix.is_empty() && !is_digits(&l.prefix) {
                err(ent.clone(), "prefix", "must be digits".into());
            }
            if l.range_min.is_empty() != l.range_max.is_empty() {
                err(
                    ent.clone(),
                    "range_max",
                    "give both ends of the range or neither".into(),
                );
            } else if !l.range_min.is_empty() {
                match (l.range_min.parse::<u64>(), l.range_max.parse::<u64>()) {
                    (Ok(a), Ok(b))
                        if is_digits(&l.range_min) && is_digits(&l.range_max) && a <= b => {}
                    _ => err(
                        ent.clone(),
                        "range_min",
                        "must be digits, min not above max".into(),
                    ),
                }
            }
            if l.patterns.len() > 32 {
                err(ent.clone(), "patterns", "at most 32 patterns".into());
            }
            if let Err(why) = l.compile() {
                err(ent.clone(), "patterns", why);
            }
            if matches!(l.mode, LinkMode::Direct | LinkMode::WeRegister) && l.host.is_empty() {
                err(
                    ent.clone(),
                    "host",
                    "the other PBX's address is required".into(),
                );
            }
            if matches!(l.mode, LinkMode::PeerRegisters | LinkMode::WeRegister)
                && (l.username.is_empty() || l.password.is_empty())
            {
                err(
                    ent.clone(),
                    "username",
                    "registration needs a user name and password".into(),
                );
            }
            if !l.password.is_empty() {
                if let Some(why) = crate::weak_secret_reason(&l.password) {
                    err(ent.clone(), "password", why);
                }
                if l.username.is_empty() {
                    err(
                        ent.clone(),
                        "username",
                        "a password needs a user name".into(),
                    );
                }
            }
            if !l.username.is_empty() {
                if !crate::valid_username(&l.username) {
                    err(
                        ent.clone(),
                        "username",
                        "must be 1 to 64 letters, digits or - _ . +".into(),
                    );
                }
                if accounts.contains(l.username.as_str()) {
                    err(ent.clone(), "username", "is a phone's SIP account".into());
                }
                if !link_users.insert(l.username.as_str()) {
                    err(ent.clone(), "username", "is used by another link".into());
                }
            }
            if !l.permission_group.is_empty() && !groups.contains(l.permission_group.as_str()) {
                err(
                    ent.clone(),
                    "permission_group",
                    format!("permission group {} does not exist", l.permission_group),
                );
            }
            for (f, v) in [
                ("fallback_ddi", &l.fallback_ddi),
                ("country_code", &l.country_code),
                ("area_code", &l.area_code),
            ] {
                if !v.is_empty() && !is_digits(v) {
                    err(ent.clone(), f, "must be digits".into());
                }
            }
            if !l.from_domain.is_empty() && !valid_host(&l.from_domain) {
                err(
                    ent.clone(),
                    "from_domain",
                    "must be a domain or IP address".into(),
                );
            }
        }
        crate::isdn::validate(&self.isdn_interfaces, &mut names, &local, err);
        let iface_names: HashSet<&str> = self
            .sip_interfaces
            .iter()
            .map(|i| i.name.as_str())
            .chain(self.isdn_interfaces.iter().map(|i| i.name.as_str()))
            .collect();
        let mut prefixes = HashSet::new();
        for r in &self.outbound_routes {
            let ent = format!("outbound route {:?}", r.prefix);
            if !r.prefix.is_empty() && !is_digits(&r.prefix) {
                err(ent.clone(), "prefix", "must be digits".into());
            }
            if !prefixes.insert(r.prefix.as_str()) {
                err(
                    ent.clone(),
                    "prefix",
                    "another route has this prefix".into(),
                );
            }
            if r.interfaces.is_empty() {
                err(
                    ent.clone(),
                    "interfaces",
                    "list at least one interface".into(),
                );
            }
            for i in &r.interfaces {
                if !iface_names.contains(i.as_str()) {
                    err(
                        ent.clone(),
                        "interfaces",
                        format!("interface {i} does not exist"),
                    );
                }
            }
        }
        let mut gnames = HashSet::new();
        for g in &self.permission_groups {
            let ent = format!("permission group {}", g.name);
            if g.name.trim().is_empty()
                || g.name.len() > 64
                || g.name.chars().any(|c| c.is_control())
            {
                err(
                    ent.clone(),
                    "name",
                    "must be 1 to 64 printable characters".into(),
                );
            }
            if !gnames.insert(g.name.as_str()) {
                err(ent.clone(), "name", "is used by another group".into());
            }
            for r in &g.rules {
                if !crate::is_phone_number(&r.prefix) {
                    err(
                        ent.clone(),
                        "rules",
                        format!("{:?} is not a number prefix", r.prefix),
                    );
                }
            }
        }
        let em = &self.emergency;
        let mut seen = HashSet::new();
        for n in &em.numbers {
            if !is_digits(&n.number) || n.number.len() > 16 {
                err(
                    format!("emergency number {}", n.number),
                    "number",
                    "must be 1 to 16 digits".into(),
                );
            }
            if !seen.insert(n.number.as_str()) {
                err(
                    format!("emergency number {}", n.number),
                    "number",
                    "is listed twice".into(),
                );
            }
            if em.direct_dialing && local.contains(n.number.as_str()) {
                err(
                    format!("extension {}", n.number),
                    "number",
                    "is an emergency number; with direct emergency dialing on it cannot be a local number".into(),
                );
            }
        }
        if em.direct_dialing && em.routes.is_empty() {
            err(
                "emergency".into(),
                "routes",
                "direct dialing needs at least one outbound route".into(),
            );
        }
        for p in &em.routes {
            if !prefixes.contains(p.as_str()) {
                err(
                    "emergency".into(),
                    "routes",
                    format!("no outbound route has prefix {p:?}"),
                );
            }
        }
    }
}

/// Compiled link patterns, per link, for the snapshot.
pub(crate) fn compile_links(links: &[Link]) -> Vec<Vec<regex_lite::Regex>> {
    links
        .iter()
        .map(|l| {
            l.compile().unwrap_or_else(|e| {
                // Validation refuses such a link; one stored before (a syntax the engine
                // no longer takes, say) routes by prefix and range only.
                tracing::warn!(link = %l.name, "the link's number patterns are off: {e}");
                Vec::new()
            })
        })
        .collect()
}

impl crate::Snapshot {
    /// Where `dialled` goes: local numbers (unless a link claims the number as Remote),
    /// then enabled links by match and priority, then emergency numbers (direct
    /// dialing), then the outbound route with the longest matching prefix.
    pub fn route(&self, dialled: &str) -> Destination {
        let c = &self.config;
        let best_link = c
            .links
            .iter()
            .zip(&self.link_patterns)
            .enumerate()
            .filter(|(_, (l, re))| l.enabled && l.matches(dialled, re))
            .min_by_key(|(i, (l, _))| (l.priority, *i))
            .map(|(_, (l, _))| l);
        let remote = best_link.is_some_and(|l| l.remote_wins.iter().any(|n| n == dialled));
        if !remote {
            if self.extension(dialled).is_some() {
                return Destination::Extension(dialled.into());
            }
            if c.ring_groups.iter().any(|g| g.number == dialled) {
                return Destination::RingGroup(dialled.into());
            }
        }
        if let Some(l) = best_link {
            return Destination::Link(l.name.clone());
        }
        if c.emergency.direct_dialing && c.emergency.is_emergency(dialled) {
            let routes = c
                .emergency
                .routes
                .iter()
                .filter_map(|p| c.outbound_routes.iter().find(|r| &r.prefix == p))
                .cloned()
                .collect();
            return Destination::Emergency(routes);
        }
        c.outbound_routes
            .iter()
            .filter(|r| dialled.starts_with(&r.prefix) && dialled.len() > r.prefix.len())
            .max_by_key(|r| r.prefix.len())
            .map_or(Destination::Unknown, |r| Destination::Outbound(r.clone()))
    }

    /// Whether `number` is answered inside the box (an extension or ring group).
    pub fn is_local(&self, number: &str) -> bool {
        self.extension(number).is_some()
            || self.config.ring_groups.iter().any(|g| g.number == number)
    }

    pub fn interface(&self, name: &str) -> Option<&SipInterface> {
        self.config.sip_interfaces.iter().find(|i| i.name == name)
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.config.links.iter().find(|l| l.name == name)
    }

    /// The enabled link whose credentials use this user name.
    pub fn link_by_user(&self, username: &str) -> Option<&Link> {
        self.config
            .links
            .iter()
            .find(|l| l.enabled && !l.username.is_empty() && l.username == username)
    }

    pub fn permission_group(&self, name: &str) -> Option<&PermissionGroup> {
        self.config
            .permission_groups
            .iter()
            .find(|g| g.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Extension, Snapshot};

    fn base() -> Config {
        let mut c = Config::default();
        for n in ["100", "101", "111", "201"] {
            c.extensions.push(Extension::new(n));
        }
        let mut p = SipInterface::new("provider1", "192.0.2.10");
        p.numbers = vec!["800225XXX".into()];
        p.operator = "100".into();
        p.called_rewrite = Rewrite::new(6, "");
        p.calling_rewrite = Rewrite::new(0, "9");
        c.sip_interfaces.push(p);
        c.sip_interfaces
            .push(SipInterface::new("backup", "192.0.2.20"));
        c.outbound_routes.push(OutboundRoute {
            prefix: "9".into(),
            description: String::new(),
            interfaces: vec!["provider1".into(), "backup".into()],
            called_rewrite: Rewrite::new(1, ""),
            calling_rewrite: Rewrite::new(1, "01"),
        });
        c
    }

    #[test]
    fn kerio_rewrites() {
        // 6.3: 800225111 strip 6 -> 111; caller gets 9 in front.
        let c = base();
        let p = &c.sip_interfaces[0];
        let snap = Snapshot::new(1, c.clone());
        assert_eq!(
            p.inbound_target("800225111", |n| snap.is_local(n)),
            Some("111".into())
        );
        assert_eq!(p.calling_rewrite.apply("5550399"), "95550399");
        // Not local after the rewrite: the operator.
        assert_eq!(
            p.inbound_target("800225999", |n| snap.is_local(n)),
            Some("100".into())
        );
        // 7.3: 01XX strip 2 add 2 -> 2XX; outbound strip 9, caller strip 2 add 01.
        let r = Rewrite::new(2, "2");
        assert_eq!(r.apply("0101"), "201");
        assert_eq!(
            c.outbound_routes[0].called_rewrite.apply("95550199"),
            "5550199"
        );
        assert_eq!(c.outbound_routes[0].calling_rewrite.apply("201"), "0101");
        // Stripping more than there is leaves the prefix only.
        assert_eq!(Rewrite::new(9, "7").apply("12"), "7");
    }

    #[test]
    fn did_table_exact_beats_pattern() {
        let mut c = base();
        c.sip_interfaces[0].did = vec![
            DidMapping {
                number: "8002252XX".into(),
                target: "101".into(),
            },
            DidMapping {
                number: "800225150".into(),
                target: "100".into(),
            },
        ];
        let snap = Snapshot::new(1, c.clone());
        let p = &c.sip_interfaces[0];
        assert_eq!(
            p.inbound_target("800225150", |n| snap.is_local(n)),
            Some("100".into())
        );
        assert_eq!(
            p.inbound_target("800225251", |n| snap.is_local(n)),
            Some("101".into())
        );
        assert_eq!(
            p.inbound_target("800225111", |n| snap.is_local(n)),
            Some("111".into())
        );
        assert!(c.validate().is_ok(), "{:?}", c.validate());
    }

    #[test]
    fn routing_order_follows_ivoz() {
        let mut c = base();
        let mut f1 = Link::new("friend1");
        f1.host = "192.0.2.30".into();
        f1.patterns = vec!["1\\d\\d".into(), "5\\d{3}".into()];
        f1.priority = 2;
        let mut f2 = Link::new("friend2");
        f2.host = "192.0.2.31".into();
        f2.patterns = vec!["5\\d{3}".into()];
        f2.priority = 1;
        c.links = vec![f1, f2];
        c.validate().unwrap();
        let s = Snapshot::new(1, c);
        // An extension beats a friend pattern.
        assert_eq!(s.route("101"), Destination::Extension("101".into()));
        assert_eq!(s.route("150"), Destination::Link("friend1".into()));
        // Two matching friends: the lower priority value wins.
        assert_eq!(s.route("5000"), Destination::Link("friend2".into()));
        assert!(matches!(s.route("95550199"), Destination::Outbound(r) if r.prefix == "9"));
        assert_eq!(s.route("777"), Destination::Unknown);
    }

    #[test]
    fn kerauno_range_and_conflicts() {
        let mut c = Config::default();
        for n in ["101", "150", "160"] {
            c.extensions.push(Extension::new(n));
        }
        let mut b = Link::new("siteB");
        b.host = "127.0.0.3".into();
        b.range_min = "151".into();
        b.range_max = "200".into();
        c.links.push(b);
        c.validate().unwrap();
        let s = Snapshot::new(1, c.clone());
        assert_eq!(s.route("160"), Destination::Extension("160".into()));
        assert_eq!(s.route("170"), Destination::Link("siteB".into()));
        assert_eq!(s.route("150"), Destination::Extension("150".into()));
        assert_eq!(s.route("1700"), Destination::Unknown);
        let conflicts = c.link_conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            (conflicts[0].number.as_str(), conflicts[0].winner.as_str()),
            ("160", "local")
        );
        c.links[0].remote_wins = vec!["160".into()];
        let s = Snapshot::new(1, c.clone());
        assert_eq!(s.route("160"), Destination::Link("siteB".into()));
        assert_eq!(c.link_conflicts()[0].winner, "remote");
    }

    #[test]
    fn register_string_round_trips() {
        let mut l = Link::new("x");
        l.set_register_string("321231@xyzcorp.kerauno.io:PAssW07D")
            .unwrap();
        assert_eq!(
            (l.username.as_str(), l.host.as_str(), l.password.as_str()),
            ("321231", "xyzcorp.kerauno.io", "PAssW07D")
        );
        assert_eq!(l.register_string(), "321231@xyzcorp.kerauno.io:PAssW07D");
        assert!(l.set_register_string("nonsense").is_err());
        assert!(l.set_register_string("u@:p").is_err());
    }

    #[test]
    fn kerio_figure_23_3() {
        let g = PermissionGroup {
            name: "Restriction for John Smith".into(),
            description: String::new(),
            rules: vec![
                PermissionRule {
                    prefix: "0900654321".into(),
                    allow: true,
                },
                PermissionRule {
                    prefix: "0900".into(),
                    allow: false,
                },
                PermissionRule {
                    prefix: "5000100".into(),
                    allow: false,
                },
                PermissionRule {
                    prefix: "5000123".into(),
                    allow: false,
                },
            ],
            default_allow: true,
        };
        assert!(g.allows("0900654321"));
        assert!(!g.allows("0900123456"));
        assert!(!g.allows("5000100"));
        assert!(!g.allows("5000123"));
        assert!(g.allows("0602111111"));
    }

    #[test]
    fn emergency_rules() {
        let mut c = base();
        c.emergency.numbers = emergency_preset("United States").unwrap();
        assert_eq!(c.emergency.numbers.len(), 3);
        c.emergency.direct_dialing = true;
        c.emergency.routes = vec!["9".into()];
        assert!(c.validate().is_ok());
        let s = Snapshot::new(1, c.clone());
        assert!(matches!(s.route("911"), Destination::Emergency(r) if r.len() == 1));
        // An extension with an emergency number cannot exist while direct dialing is on.
        c.extensions.push(Extension::new("112"));
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("emergency"), "{e}");
        c.emergency.direct_dialing = false;
        assert!(c.validate().is_ok());
        for (code, _) in EMERGENCY_COUNTRIES {
            assert!(emergency_preset(code).is_some_and(|l| !l.is_empty()));
        }
        assert!(emergency_preset("Atlantis").is_none());
    }

    #[test]
    fn bad_routing_config_names_fields() {
        let mut c = base();
        c.sip_interfaces[0].name = "prov ider".into();
        c.sip_interfaces
            .push(SipInterface::new("backup", "not a host"));
        c.outbound_routes[0].interfaces.push("nowhere".into());
        let mut l = Link::new("l1");
        l.patterns = vec!["(".into()];
        c.links.push(l);
        let text = c.validate().unwrap_err().to_string();
        for needle in [
            "name",
            "host",
            "nowhere",
            "regular expression",
            "another interface",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }

    #[test]
    fn link_normalisation() {
        let mut l = Link::new("f");
        l.country_code = "34".into();
        l.area_code = "91".into();
        assert_eq!(l.to_link("+34911234567"), "1234567");
        assert_eq!(l.to_link("+34931234567"), "0931234567");
        assert_eq!(l.to_link("0033123"), "0033123");
        assert_eq!(l.from_link("+34931234567"), "0931234567");
        assert_eq!(l.from_link("101"), "101");
    }

    #[test]
    fn forwarding_rules_and_ring_group_plans_are_checked() {
        use crate::{CallOrigin, Extension, ForwardCause, ForwardRule};
        let fields = |c: &Config| -> Vec<String> {
            c.validate()
                .err()
                .map(|e| e.0.iter().map(|f| f.field.clone()).collect())
                .unwrap_or_default()
        };
        let mut c = Config::default();
        let mut e = Extension::new("101");
        e.forwarding = vec![
            ForwardRule {
                cause: ForwardCause::Busy,
                origin: CallOrigin::Any,
                to: "hangup".into(),
            },
            ForwardRule {
                cause: ForwardCause::NoAnswer,
                origin: CallOrigin::External,
                to: "0601234567".into(),
            },
        ];
        c.extensions.push(e.clone());
        assert_eq!(fields(&c), Vec::<String>::new());
        // Which rule applies: the origin's own, else the any-origin one.
        assert_eq!(
            e.forward_for(ForwardCause::Busy, CallOrigin::Transfer),
            Some("hangup")
        );
        assert_eq!(
            e.forward_for(ForwardCause::NoAnswer, CallOrigin::Internal),
            None
        );
        for (bad, to) in [("itself", "101"), ("word", "mailbox"), ("empty", "")] {
            let mut c2 = c.clone();
            c2.extensions[0].forwarding[0].to = to.into();
            assert_eq!(fields(&c2), ["forwarding"], "{bad}");
        }
        // Voicemail: the extension's own box, while it has one.
        let mut c2 = c.clone();
        c2.extensions[0].forwarding[0].to = crate::VOICEMAIL.into();
        assert_eq!(fields(&c2), Vec::<String>::new());
        c2.extensions[0].voicemail = false;
        assert_eq!(fields(&c2), ["forwarding"], "no box");
        let mut c2 = c.clone();
        c2.extensions[0].forwarding[1].cause = ForwardCause::Busy;
        c2.extensions[0].forwarding[1].origin = CallOrigin::Any;
        assert_eq!(
            fields(&c2),
            ["forwarding"],
            "the same cause and origin twice"
        );
        let mut c2 = c.clone();
        c2.extensions[0].no_answer_seconds = 2;
        assert_eq!(fields(&c2), ["no_answer_seconds"]);
        // An old document without the new fields reads with their defaults.
        let e: Extension = serde_json::from_str(r#"{"number": "102"}"#).unwrap();
        assert!(e.call_waiting && e.forwarding.is_empty() && e.no_answer_seconds == 20);
        assert!(e.voicemail, "a box by default");
        let mut g = RingGroup::new("600", &["101"]);
        g.strategy = RingStrategy::RoundRobin;
        g.fallback = "600".into();
        g.member_seconds = 1;
        g.timeout = 3;
        c.ring_groups.push(g);
        let mut f = fields(&c);
        f.sort();
        assert_eq!(f, ["fallback", "member_seconds", "timeout"]);
        let g: RingGroup =
            serde_json::from_str(r#"{"number": "601", "members": ["101"]}"#).unwrap();
        assert_eq!(
            (g.strategy, g.member_seconds, g.timeout),
            (RingStrategy::All, 15, 0)
        );
    }

    #[test]
    fn srtp_towards_a_peer_needs_tls() {
        let mut c = Config::default();
        let mut i = SipInterface::new("prov", "sip.example.com");
        i.srtp = true;
        c.sip_interfaces.push(i);
        let mut l = Link::new("siteB");
        l.prefix = "8".into();
        l.host = "10.0.0.2".into();
        l.srtp = true;
        c.links.push(l);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("interface prov: srtp"), "{e}");
        assert!(e.contains("link siteB: srtp"), "{e}");
        c.sip_interfaces[0].transport = Transport::Tls;
        c.links[0].transport = Transport::Tls;
        assert!(c.validate().is_ok(), "{:?}", c.validate());
    }
}
