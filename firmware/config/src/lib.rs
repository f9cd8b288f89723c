//! The one typed configuration of the exchange.
//!
//! Owns: every entity the admin edits (extensions, SIP accounts, users), their validation
//! against the whole configuration, the versioned JSON document used by export/import,
//! and the immutable [`Snapshot`] the runtime reads. Must not touch: storage, sockets, time.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

mod attendant;
mod backup;
mod conference;
mod directory;
mod firewall;
mod ipgroups;
mod isdn;
mod logs;
mod mail;
mod music;
mod parking;
mod phones;
mod queue;
mod routing;
mod stored;
pub use attendant::{
    date_minutes, valid_sound, AaAction, AaCondition, AaKey, AaMenu, AutoAttendant, TimeItem,
    TimeRange, Weekday,
};
pub use backup::{BackupEvery, BackupSchedule, RemoteTarget, BACKUP_PARTS};
pub use conference::{Conference, MAX_CONFERENCE};
pub use directory::Directory;
pub use firewall::{Firewall, FIREWALL_SERVICES};
pub use ipgroups::{
    group_contains, group_ranges, parse_network, reached, GroupRanges, IpGroup, IpItem,
    MAX_IP_ITEMS,
};
pub use isdn::{IsdnInterface, IsdnLine, IsdnRole, IsdnSide, SpanDriver, SwitchType};
pub use logs::{LogSettings, Syslog, SyslogTransport, DEBUG_CLASSES, FACILITIES, LOG_NAMES};
pub use mail::{valid_address, Smtp, SmtpSecurity};
pub use music::{valid_upload_name, MusicCollection, MAX_MUSIC_FILES, SYSTEM_MUSIC};
pub use parking::Parking;
pub use phones::{
    format_blf_keys, format_mac, normalize_mac, parse_blf_keys, parse_utc_offset, phone_model,
    BlfKey, Phone, PhoneLine, PhoneModel, PhoneState, Provisioning, MAX_BLF_KEYS, MAX_PHONES,
    PHONE_MODELS,
};
pub use queue::{Queue, QueueStrategy, MAX_QUEUE_AGENTS, MAX_QUEUE_CALLERS};
pub use routing::{
    emergency_preset, matches_pattern, valid_target, Conflict, Destination, DidMapping, Emergency,
    EmergencyNumber, Link, LinkMode, OutboundRoute, PermissionGroup, PermissionRule, Rewrite,
    RingGroup, RingStrategy, SipInterface, EMERGENCY_COUNTRIES,
};
pub use stored::to_stored_vec;

/// Name written into every exported document, so an import can refuse foreign JSON.
pub const FORMAT: &str = "pbx-config";
/// Version of the document layout; bumped when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The whole configuration, as exported and imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version, [`FORMAT_VERSION`].
    pub version: u32,
    /// Extensions, each with its number.
    #[serde(default)]
    pub extensions: Vec<Extension>,
    /// SIP accounts; each belongs to one extension.
    #[serde(default)]
    pub accounts: Vec<SipAccount>,
    /// People who log in to the web admin or the user portal.
    #[serde(default)]
    pub users: Vec<User>,
    /// Phone provisioning settings (Kerio 10.1).
    #[serde(default)]
    pub provisioning: Provisioning,
    /// The Provisioned Phones table.
    #[serde(default)]
    pub phones: Vec<Phone>,
    /// Interfaces to SIP providers (Kerio 6.1).
    #[serde(default)]
    pub sip_interfaces: Vec<SipInterface>,
    /// Links to other PBXs (Kerio 6.2, Kerauno System Connector, Ivoz Friends).
    #[serde(default)]
    pub links: Vec<Link>,
    /// PRI and BRI interfaces (Kerio 7).
    #[serde(default)]
    pub isdn_interfaces: Vec<IsdnInterface>,
    /// Outbound routes by dial-out prefix, each with its interfaces in order.
    #[serde(default)]
    pub outbound_routes: Vec<OutboundRoute>,
    /// Call permission groups (Kerio 23.2).
    #[serde(default)]
    pub permission_groups: Vec<PermissionGroup>,
    /// Emergency numbers (Kerio 18).
    #[serde(default)]
    pub emergency: Emergency,
    /// Ring groups (Kerio 15).
    #[serde(default)]
    pub ring_groups: Vec<RingGroup>,
    /// Numbers phones dial for features (call pickup, echo test; park and voicemail
    /// later).
    #[serde(default)]
    pub feature_codes: FeatureCodes,
    /// The mail server voicemail messages are sent through (Kerio 17.3).
    #[serde(default)]
    pub smtp: Smtp,
    /// Scheduled backups and how many backups are kept (Kerio 20).
    #[serde(default)]
    pub backup: BackupSchedule,
    /// Debug classes, rotation of the log files and the syslog server (Kerio 28).
    #[serde(default)]
    pub logs: LogSettings,
    /// Users mapped from an LDAP directory or Active Directory (Kerio 11).
    #[serde(default)]
    pub directory: Directory,
    /// Auto attendant scripts (Kerio 16).
    #[serde(default)]
    pub auto_attendants: Vec<AutoAttendant>,
    /// Time ranges for time conditions (Kerio 25).
    #[serde(default)]
    pub time_ranges: Vec<TimeRange>,
    /// Music on hold collections (Kerio 24).
    #[serde(default)]
    pub music: Vec<MusicCollection>,
    /// IP address groups (Kerio 26).
    #[serde(default)]
    pub ip_groups: Vec<IpGroup>,
    /// Conference rooms (Kerio 13).
    #[serde(default)]
    pub conferences: Vec<Conference>,
    /// Call queues (Kerio 14).
    #[serde(default)]
    pub queues: Vec<Queue>,
    /// Megabytes of recorded calls kept on the card; past it the oldest go (Kerio's
    /// "periodically remove old recorded calls").
    #[serde(default = "default_recordings_max_mb")]
    pub recordings_max_mb: u32,
    /// Call parking slots (none in a document written before parking existed).
    #[serde(default = "Parking::off")]
    pub parking: Parking,
    /// Scanner and brute-force protection's settings.
    #[serde(default)]
    pub sip_protection: SipProtection,
    /// The firewall: which IP address groups reach which services (Kerio 22.2).
    #[serde(default)]
    pub firewall: Firewall,
}

/// Scanner and brute-force protection (always on): what the administrator sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SipProtection {
    /// An IP address group whose sources are never banned nor held to the request
    /// rate (the office, a provider); empty: none.
    pub allow_group: String,
}

fn default_recordings_max_mb() -> u32 {
    500
}

/// Feature codes: numbers in the dial plan like any other, made of digits, `*` and `#`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureCodes {
    /// Picks up a call ringing at any extension of the caller's pickup groups.
    pub pickup: String,
    /// Followed by an extension number: picks up the call ringing there.
    pub directed_pickup: String,
    /// The echo test: the box answers, beeps, and sends the caller's own voice back
    /// until `#` or a minute has passed (a technician's check of a phone and its path).
    /// Empty: off. A document written before the echo test existed has it off (its own
    /// codes or numbers might be `*43`); a new box has `*43`.
    #[serde(default)]
    pub echo_test: String,
    /// The voicemail access number (Kerio 17.1): a phone's user hears its own box
    /// after the service PIN (messages, greetings, PIN). Empty: off; a document written
    /// before it existed has it off, a new box has `*97`.
    #[serde(default)]
    pub voicemail: String,
    /// Followed by an extension: leave a message in that extension's box without
    /// ringing it (Kerio 17.2, direct access to user voicemail). Empty: off; a new box
    /// has `*98`.
    #[serde(default)]
    pub voicemail_direct: String,
    /// Parks the call in the first free parking slot and says which (dialled in a
    /// consultation call, then the transfer completed; or a blind transfer to it).
    /// Empty: off; a new box has `*70`.
    #[serde(default)]
    pub park: String,
    /// Switches the caller's extension's do not disturb on or off (the box answers,
    /// says which, and hangs up). Empty: off; a document written before it existed has
    /// it off, a new box has `*60` (`*7x` are the parking slots).
    #[serde(default)]
    pub do_not_disturb: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            pickup: "*8".into(),
            directed_pickup: "**".into(),
            echo_test: "*43".into(),
            voicemail: "*97".into(),
            voicemail_direct: "*98".into(),
            park: "*70".into(),
            do_not_disturb: "*60".into(),
        }
    }
}

/// Whether `s` can be a feature code: 1 to 8 of digits, `*` and `#`.
pub fn is_feature_code(s: &str) -> bool {
    (1..=8).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

impl Default for Config {
    fn default() -> Self {
        Config {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            extensions: Vec::new(),
            accounts: Vec::new(),
            users: Vec::new(),
            provisioning: Provisioning::default(),
            phones: Vec::new(),
            sip_interfaces: Vec::new(),
            links: Vec::new(),
            isdn_interfaces: Vec::new(),
            outbound_routes: Vec::new(),
            permission_groups: Vec::new(),
            emergency: Emergency::default(),
            ring_groups: Vec::new(),
            feature_codes: FeatureCodes::default(),
            smtp: Smtp::default(),
            backup: BackupSchedule::default(),
            logs: LogSettings::default(),
            directory: Directory::default(),
            auto_attendants: Vec::new(),
            time_ranges: Vec::new(),
            music: Vec::new(),
            ip_groups: Vec::new(),
            conferences: Vec::new(),
            queues: Vec::new(),
            recordings_max_mb: default_recordings_max_mb(),
            parking: Parking::default(),
            sip_protection: SipProtection::default(),
            firewall: Firewall::default(),
        }
    }
}

/// How the caller's number is shown on external calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", content = "number", rename_all = "snake_case")]
pub enum CallerIdPresentation {
    /// The extension's own number.
    #[default]
    Show,
    /// Anonymous.
    Hide,
    /// Another extension's number (for example a reception desk).
    Present(String),
}

/// An extension: a number people dial, rung on all its SIP accounts.
///
/// The store leaves out the fields that hold their serde defaults (`stored`): changing a
/// default changes every stored extension that had it, so it needs a migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// Digits only, unique in the box.
    pub number: String,
    #[serde(default = "yes", skip_serializing_if = "stored::yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "stored::default")]
    pub first_name: String,
    #[serde(default, skip_serializing_if = "stored::default")]
    pub last_name: String,
    #[serde(default, skip_serializing_if = "stored::default")]
    pub email: String,
    #[serde(default, skip_serializing_if = "stored::default")]
    pub mobile: String,
    /// Digits used for voicemail and feature codes; empty when unset.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub service_pin: String,
    /// Most calls the extension may have at once, 0 = no limit.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub call_limit: u32,
    /// With this many calls in progress new calls get 486 Busy Here; 0 = no busy level.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub busy_level: u32,
    #[serde(default, skip_serializing_if = "stored::default")]
    pub caller_id: CallerIdPresentation,
    /// Encrypt calls (Kerio's "Encrypt communication"): its phones register and call
    /// only over SIP over TLS, and their calls' audio is SRTP only (SDES keys, RFC
    /// 4568); anything else is refused with the reason. Its accounts must allow TLS.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub encrypt_calls: bool,
    /// Every call to the extension goes to this number instead (unconditional forward);
    /// empty = off.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub forward: String,
    /// Do not disturb: the extension's phones do not ring; its callers are treated as
    /// if it were busy (its busy forwarding rule, e.g. voicemail, applies), a queue
    /// does not offer it calls, and the operator panel shows it. An unconditional
    /// `forward` still applies first.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub do_not_disturb: bool,
    /// Call permission group for calls leaving the box; empty = no restriction.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub permission_group: String,
    /// A phone already in a call rings for a second one (unless the busy level says
    /// the extension is busy).
    #[serde(default = "yes", skip_serializing_if = "stored::yes")]
    pub call_waiting: bool,
    /// Where calls go when the extension is busy, does not answer or cannot be
    /// reached, per origin (Kalliope's failover actions).
    #[serde(default, skip_serializing_if = "stored::default")]
    pub forwarding: Vec<ForwardRule>,
    /// Seconds the extension rings before a no-answer rule applies.
    #[serde(
        default = "default_no_answer",
        skip_serializing_if = "stored::no_answer"
    )]
    pub no_answer_seconds: u32,
    /// Pickup groups the extension is a member of: calls ringing here can be picked up
    /// by extensions allowed on one of them (Kalliope's "member of").
    #[serde(default = "default_pickup", skip_serializing_if = "stored::pickup")]
    pub pickup_groups: Vec<String>,
    /// Pickup groups this extension may pick up calls from.
    #[serde(default = "default_pickup", skip_serializing_if = "stored::pickup")]
    pub pickup_from: Vec<String>,
    /// The extension has a voicemail box: forwarding rules may send callers to it
    /// (`to: "voicemail"`).
    #[serde(default = "yes", skip_serializing_if = "stored::yes")]
    pub voicemail: bool,
    /// Each new message is e-mailed to `email` (Kerio 17.3, Kalliope's notifications).
    #[serde(default, skip_serializing_if = "stored::default")]
    pub voicemail_email: bool,
    /// The e-mail carries the message as a WAV attachment (else it only says one came).
    #[serde(default = "yes", skip_serializing_if = "stored::yes")]
    pub voicemail_attach: bool,
    /// A message sent as an attachment is deleted from the box (Kalliope's "delete
    /// forwarded messages"): the mailbox is where it is kept.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub voicemail_delete_sent: bool,
}

/// The pickup group every extension is in, and may pick up from, unless told otherwise.
const DEFAULT_PICKUP: &str = "default";

fn default_pickup() -> Vec<String> {
    vec![DEFAULT_PICKUP.into()]
}

fn default_no_answer() -> u32 {
    20
}

/// Why a call to an extension is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardCause {
    /// The busy level is reached, or every phone answers busy.
    Busy,
    /// Nobody answers within the extension's no-answer time.
    NoAnswer,
    /// No phone is registered, or none can be reached.
    Unavailable,
}

/// Where a call comes from, for forwarding rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallOrigin {
    #[default]
    Any,
    /// From a phone of the box or a linked PBX.
    Internal,
    /// From a provider.
    External,
    /// Put through by a transfer.
    Transfer,
}

/// One forwarding rule: for `cause`, calls of `origin` go `to` a number (an
/// extension, a ring group or an external number, checked against the extension's
/// permission group) or are hung up (`hangup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRule {
    pub cause: ForwardCause,
    #[serde(default)]
    pub origin: CallOrigin,
    pub to: String,
}

/// The `to` of a rule or fallback that hangs up instead of ringing elsewhere.
pub const HANG_UP: &str = "hangup";

/// The `to` of a forwarding rule that sends the caller to the extension's own
/// voicemail box.
pub const VOICEMAIL: &str = "voicemail";

/// The extension whose box a `voicemail:<extension>` target names (a ring group's
/// fallback, or a forwarding rule to another extension's box).
pub fn voicemail_target(to: &str) -> Option<&str> {
    to.strip_prefix("voicemail:")
}

impl Extension {
    /// A new enabled extension with defaults for everything but the number.
    pub fn new(number: &str) -> Self {
        Extension {
            number: number.into(),
            enabled: true,
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            mobile: String::new(),
            service_pin: String::new(),
            call_limit: 0,
            busy_level: 0,
            caller_id: CallerIdPresentation::Show,
            encrypt_calls: false,
            forward: String::new(),
            do_not_disturb: false,
            permission_group: String::new(),
            call_waiting: true,
            forwarding: Vec::new(),
            no_answer_seconds: default_no_answer(),
            pickup_groups: default_pickup(),
            pickup_from: default_pickup(),
            voicemail: true,
            voicemail_email: false,
            voicemail_attach: true,
            voicemail_delete_sent: false,
        }
    }

    /// Whether this extension may pick up calls ringing at `other`.
    pub fn may_pick_up(&self, other: &Extension) -> bool {
        self.number != other.number
            && self
                .pickup_from
                .iter()
                .any(|g| other.pickup_groups.contains(g))
    }

    /// Where calls of `origin` go for `cause`: a rule for that origin, else one for
    /// any origin.
    pub fn forward_for(&self, cause: ForwardCause, origin: CallOrigin) -> Option<&str> {
        let rule = |o: CallOrigin| {
            self.forwarding
                .iter()
                .find(|r| r.cause == cause && r.origin == o)
                .map(|r| r.to.as_str())
        };
        rule(origin).or_else(|| rule(CallOrigin::Any))
    }

    /// "First Last", or empty.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
}

/// SIP transports a phone may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        })
    }
}

/// Audio codecs an account may be offered, by their SDP encoding names.
pub const KNOWN_CODECS: &[&str] = &["PCMU", "PCMA", "G722", "G729", "opus", "GSM"];

/// A SIP account: credentials a phone registers with.
///
/// The store leaves out the fields that hold their serde defaults (`stored`): changing a
/// default changes every stored account that had it, so it needs a migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipAccount {
    /// Unique in the box.
    pub username: String,
    pub secret: String,
    #[serde(default = "yes", skip_serializing_if = "stored::yes")]
    pub enabled: bool,
    /// Number of the extension this account belongs to.
    pub extension: String,
    /// Address or subnet (CIDR) the phone must come from; empty = anywhere.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub allowed_source: String,
    /// INVITEs must come from the address and port that registered.
    #[serde(default, skip_serializing_if = "stored::default")]
    pub registration_check: bool,
    /// Answer to the packet's source address and latch RTP to where it really comes from.
    #[serde(default = "yes", skip_serializing_if = "stored::yes")]
    pub nat: bool,
    /// Let media flow phone to phone (off: the box relays).
    #[serde(default, skip_serializing_if = "stored::default")]
    pub direct_media: bool,
    #[serde(
        default = "default_transports",
        skip_serializing_if = "stored::transports"
    )]
    pub transports: Vec<Transport>,
    /// Preferred first.
    #[serde(default = "default_codecs", skip_serializing_if = "stored::codecs")]
    pub codecs: Vec<String>,
}

impl SipAccount {
    /// An account with the defaults a phone on the LAN needs.
    pub fn new(username: &str, secret: &str, extension: &str) -> Self {
        SipAccount {
            username: username.into(),
            secret: secret.into(),
            enabled: true,
            extension: extension.into(),
            allowed_source: String::new(),
            registration_check: false,
            nat: true,
            direct_media: false,
            transports: default_transports(),
            codecs: default_codecs(),
        }
    }

    /// What ends the user name of an extension's browser phone account: `~` is never
    /// in a configured account's name ([`valid_username`]), so the two cannot meet.
    pub const WEB_SUFFIX: &'static str = "~web";

    /// The browser phone account of extension `number` (kind "web"): derived, never
    /// stored. It has no password of its own: the portal gives a logged-in owner a
    /// secret for it, which the exchange alone keeps (docs/ARCHITECTURE.md, "The
    /// portal's phone"). Over secure WebSocket only, G.711 (what a browser and every
    /// phone share).
    pub fn web(number: &str) -> Self {
        SipAccount {
            username: format!("{number}{}", Self::WEB_SUFFIX),
            secret: String::new(),
            transports: vec![Transport::Wss],
            ..SipAccount::new("", "", number)
        }
    }

    /// Whether `grant` still lets its user's browser phone use this account at Unix
    /// second `unix`: not lapsed, and its user still enabled, owning the account's
    /// extension, with the password the grant was given under (a password change,
    /// a disabled or removed user or a lost extension ends it at once).
    pub fn web_grant_holds(&self, grant: &WebGrant, config: &Config, unix: u64) -> bool {
        grant.until > unix
            && config.user(&grant.user).is_some_and(|u| {
                u.enabled
                    && u.password_hash == grant.password_hash
                    && u.extensions.contains(&self.extension)
            })
    }

    /// Whether this is an extension's browser phone account ([`SipAccount::web`]).
    pub fn is_web(&self) -> bool {
        self.username.ends_with(Self::WEB_SUFFIX)
    }

    /// "web" for a browser phone account, "phone" for any other.
    pub fn kind(&self) -> &'static str {
        if self.is_web() {
            "web"
        } else {
            "phone"
        }
    }
}

/// What the portal gave a user's browser phone for an account of kind "web": the secret
/// its digest is checked against, until Unix second `until`, for `user` as long as the
/// user's password stays `password_hash` ([`SipAccount::web_grant_holds`]). Runtime
/// state, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WebGrant {
    pub secret: String,
    pub until: u64,
    pub user: String,
    pub password_hash: String,
}

impl std::fmt::Debug for WebGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebGrant")
            .field("until", &self.until)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn yes() -> bool {
    true
}
const DEFAULT_TRANSPORTS: &[Transport] = &[Transport::Udp, Transport::Tcp, Transport::Tls];
fn default_transports() -> Vec<Transport> {
    DEFAULT_TRANSPORTS.to_vec()
}
const DEFAULT_CODECS: &[&str] = &["PCMU", "PCMA"];
fn default_codecs() -> Vec<String> {
    DEFAULT_CODECS.iter().map(|c| c.to_string()).collect()
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Administrator,
    Auditor,
    User,
}

impl Role {
    /// The name used in the API and the documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Auditor => "auditor",
            Role::User => "user",
        }
    }
}

/// A person who logs in to the web admin or user portal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    #[serde(default)]
    pub full_name: String,
    pub role: Role,
    /// A disabled user cannot log in (Kerio 8.5); the account and its settings stay.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Argon2id PHC string; empty = no password set, so the user cannot log in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_hash: String,
    /// Numbers of the extensions this user owns.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Ringing rules (Kerio 8.3): external numbers rung at the same time as the user's
    /// extensions.
    #[serde(default)]
    pub ring_also: Vec<String>,
    /// The user's entry in the directory (Kerio 11): such a user logs in with the
    /// directory's password, and the synchronisation keeps the user in step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory_dn: String,
}

impl User {
    /// A new enabled user without a password.
    pub fn new(username: &str, role: Role) -> Self {
        User {
            username: username.into(),
            full_name: String::new(),
            role,
            enabled: true,
            password_hash: String::new(),
            extensions: Vec::new(),
            ring_also: Vec::new(),
            directory_dn: String::new(),
        }
    }
}

/// Whether `s` is a dialable external number: digits, optionally after one `+`.
pub fn is_phone_number(s: &str) -> bool {
    let d = s.strip_prefix('+').unwrap_or(s);
    !d.is_empty() && d.len() <= 32 && d.bytes().all(|b| b.is_ascii_digit())
}

/// One problem found by validation, naming the entity and the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// For example `extension 101` or `account 101a`.
    pub entity: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.entity, self.field, self.message)
    }
}

/// Validation failed; every problem found is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ValidationError(pub Vec<FieldError>);

/// Why a secret is refused, or `None` when it is strong enough.
pub fn weak_secret_reason(secret: &str) -> Option<String> {
    if secret.chars().count() < 10 {
        return Some("must be at least 10 characters long".into());
    }
    let classes = [
        secret.chars().any(|c| c.is_ascii_lowercase()),
        secret.chars().any(|c| c.is_ascii_uppercase()),
        secret.chars().any(|c| c.is_ascii_digit()),
        secret.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Some("must mix at least three of: lower case, upper case, digits, symbols".into());
    }
    if secret
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Some("must not contain quotes, backslashes or control characters".into());
    }
    None
}

/// A strong random SIP secret of 16 characters with every character class.
pub fn generate_secret<R: Rng>(rng: &mut R) -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"-_.+=*!";
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    let mut out: Vec<u8> = vec![
        LOWER[rng.gen_range(0..LOWER.len())],
        UPPER[rng.gen_range(0..UPPER.len())],
        DIGIT[rng.gen_range(0..DIGIT.len())],
        SYMBOL[rng.gen_range(0..SYMBOL.len())],
    ];
    while out.len() < 16 {
        out.push(all[rng.gen_range(0..all.len())]);
    }
    // Shuffle so the classes do not always sit in front.
    for i in (1..out.len()).rev() {
        out.swap(i, rng.gen_range(0..=i));
    }
    String::from_utf8(out).expect("ascii")
}

/// An address or CIDR subnet, as allowed in `allowed_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `192.168.1.10` or `192.168.1.0/24` (IPv6 too).
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix length must be 0 to {max}"))?,
        };
        Ok(Subnet { addr, prefix })
    }

    /// Whether `ip` lies inside the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A DNS host name or an IP address.
pub fn valid_host(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
        || (!s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

pub(crate) fn valid_username(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

impl Config {
    /// The numbers of the extensions that `keep` keeps: validation looks references up
    /// in them (a scan of the extensions for each one is quadratic in a large
    /// configuration: with 10,000 extensions a change took a third of a second).
    pub(crate) fn extension_numbers(&self, keep: impl Fn(&Extension) -> bool) -> HashSet<&str> {
        self.extensions
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.number.as_str())
            .collect()
    }

    /// Checks the whole configuration: unique numbers and names, references that exist,
    /// values in range, strong secrets. Lists every problem, not only the first.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut errs = Vec::new();
        let mut err = |entity: String, field: &str, message: String| {
            errs.push(FieldError {
                entity,
                field: field.into(),
                message,
            })
        };
        if self.format != FORMAT {
            err("document".into(), "format", format!("must be {FORMAT:?}"));
        }
        if self.version != FORMAT_VERSION {
            err(
                "document".into(),
                "version",
                format!(
                    "version {} is not supported (this firmware reads {FORMAT_VERSION})",
                    self.version
                ),
            );
        }
        let fc = &self.feature_codes;
        // Whole codes (the echo test and the voicemail access may be off), and the
        // prefixes (directed pickup, direct voicemail) followed by an extension.
        let mut codes = vec![("pickup", &fc.pickup)];
        if !fc.echo_test.is_empty() {
            codes.push(("echo_test", &fc.echo_test));
        }
        if !fc.voicemail.is_empty() {
            codes.push(("voicemail", &fc.voicemail));
        }
        if !fc.park.is_empty() {
            codes.push(("park", &fc.park));
        }
        if !fc.do_not_disturb.is_empty() {
            codes.push(("do_not_disturb", &fc.do_not_disturb));
        }
        let park = &self.parking;
        codes.extend(park.slots.iter().map(|s| ("parking slot", s)));
        if park.slots.len() > 50 {
            err("parking".into(), "slots", "at most 50 slots".into());
        }
        if !(10..=3600).contains(&park.timeout_seconds) {
            err(
                "parking".into(),
                "timeout_seconds",
                "must be 10 to 3600".into(),
            );
        }
        let mut prefixes = vec![("directed_pickup", &fc.directed_pickup)];
        if !fc.voicemail_direct.is_empty() {
            prefixes.push(("voicemail_direct", &fc.voicemail_direct));
        }
        for (field, code) in codes.iter().chain(&prefixes) {
            if !is_feature_code(code) {
                err(
                    "feature codes".into(),
                    field,
                    "must be 1 to 8 of digits, * and #".into(),
                );
            }
        }
        for (i, &(field, code)) in codes.iter().chain(&prefixes).enumerate() {
            for &(pfield, prefix) in prefixes.iter() {
                if field != pfield && (code.starts_with(prefix) || prefix.starts_with(code)) {
                    err(
                        "feature codes".into(),
                        field,
                        format!(
                            "{code} and the {} {prefix} must not begin with one another",
                            pfield.replace('_', " ")
                        ),
                    );
                }
            }
            for &(ofield, other) in codes.iter().skip(i + 1) {
                if code == other {
                    err(
                        "feature codes".into(),
                        ofield,
                        format!("is the same as the {field} code"),
                    );
                }
            }
        }
        for n in self
            .extensions
            .iter()
            .map(|e| e.number.as_str())
            .chain(self.ring_groups.iter().map(|g| g.number.as_str()))
            .chain(self.auto_attendants.iter().map(|a| a.number.as_str()))
            .chain(self.conferences.iter().map(|c| c.number.as_str()))
            .chain(
                self.queues
                    .iter()
                    .flat_map(|q| q.numbers().into_iter().filter(|n| !n.is_empty())),
            )
        {
            let clash = codes
                .iter()
                .find(|(_, c)| n == *c)
                .map(|(f, _)| *f)
                .or_else(|| {
                    prefixes
                        .iter()
                        .find(|(_, p)| n.starts_with(p.as_str()))
                        .map(|(f, _)| *f)
                });
            if let Some(field) = clash {
                err(
                    "feature codes".into(),
                    field,
                    format!("conflicts with number {n}"),
                );
            }
        }
        let extensions = self.extension_numbers(|_| true);
        let mut numbers = HashSet::new();
        for e in &self.extensions {
            let ent = format!("extension {}", e.number);
            if !is_digits(&e.number) || e.number.len() > 20 {
                err(ent.clone(), "number", "must be 1 to 20 digits".into());
            }
            if !numbers.insert(e.number.as_str()) {
                err(ent.clone(), "number", "is used by another extension".into());
            }
            if !e.service_pin.is_empty() && (!is_digits(&e.service_pin) || e.service_pin.len() < 4)
            {
                err(
                    ent.clone(),
                    "service_pin",
                    "must be at least 4 digits".into(),
                );
            }
            if !e.email.is_empty() && !valid_address(&e.email) {
                err(ent.clone(), "email", "is not an e-mail address".into());
            }
            if e.voicemail_email && e.email.is_empty() {
                err(
                    ent.clone(),
                    "voicemail_email",
                    "needs the extension's e-mail address".into(),
                );
            }
            if e.voicemail_delete_sent && !(e.voicemail_email && e.voicemail_attach) {
                err(
                    ent.clone(),
                    "voicemail_delete_sent",
                    "only messages sent as attachments can be deleted from the box".into(),
                );
            }
            if !e.mobile.is_empty()
                && !e
                    .mobile
                    .trim_start_matches('+')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                err(
                    ent.clone(),
                    "mobile",
                    "must be digits, optionally after +".into(),
                );
            }
            if let CallerIdPresentation::Present(n) = &e.caller_id {
                if !extensions.contains(n.as_str()) {
                    err(
                        ent.clone(),
                        "caller_id",
                        format!("extension {n} does not exist"),
                    );
                }
            }
            for (field, v) in [("first_name", &e.first_name), ("last_name", &e.last_name)] {
                if v.chars()
                    .any(|c| c.is_control() || c == '"' || c == '<' || c == '>')
                {
                    err(
                        ent.clone(),
                        field,
                        "must not contain quotes, < > or control characters".into(),
                    );
                }
            }
        }
        for (field, message) in self.backup.problems() {
            err("backup".into(), field, message);
        }
        for (field, message) in self.logs.problems() {
            err("logs".into(), field, message);
        }
        for (field, message) in self.directory.problems() {
            err("directory".into(), field, message);
        }
        for (field, message) in self.smtp.problems() {
            err("smtp".into(), field, message);
        }
        let encrypting = self.extension_numbers(|e| e.encrypt_calls);
        let mut usernames = HashSet::new();
        for a in &self.accounts {
            let ent = format!("account {}", a.username);
            if !valid_username(&a.username) {
                err(
                    ent.clone(),
                    "username",
                    "must be 1 to 64 letters, digits or - _ . +".into(),
                );
            }
            if !usernames.insert(a.username.as_str()) {
                err(ent.clone(), "username", "is used by another account".into());
            }
            if let Some(why) = weak_secret_reason(&a.secret) {
                err(ent.clone(), "secret", why);
            }
            if !numbers.contains(a.extension.as_str()) {
                err(
                    ent.clone(),
                    "extension",
                    format!("extension {} does not exist", a.extension),
                );
            }
            if !a.allowed_source.is_empty() {
                if let Err(why) = Subnet::parse(&a.allowed_source) {
                    err(ent.clone(), "allowed_source", why);
                }
            }
            if a.transports.is_empty() {
                err(
                    ent.clone(),
                    "transports",
                    "must allow at least one transport".into(),
                );
            }
            if encrypting.contains(a.extension.as_str()) && !a.transports.contains(&Transport::Tls)
            {
                err(
                    ent.clone(),
                    "transports",
                    format!(
                        "extension {} encrypts calls: TLS must be among the transports",
                        a.extension
                    ),
                );
            }
            if a.codecs.is_empty() {
                err(ent.clone(), "codecs", "must list at least one codec".into());
            }
            let mut seen = HashSet::new();
            for c in &a.codecs {
                if !KNOWN_CODECS.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                    err(
                        ent.clone(),
                        "codecs",
                        format!("unknown codec {c:?} (known: {})", KNOWN_CODECS.join(", ")),
                    );
                }
                if !seen.insert(c.to_ascii_uppercase()) {
                    err(ent.clone(), "codecs", format!("{c} is listed twice"));
                }
            }
        }
        let mut users = HashSet::new();
        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        for u in &self.users {
            let ent = format!("user {}", u.username);
            if !valid_username(&u.username) {
                err(
                    ent.clone(),
                    "username",
                    "must be 1 to 64 letters, digits or - _ . +".into(),
                );
            }
            if !users.insert(u.username.to_ascii_lowercase()) {
                err(ent.clone(), "username", "is used by another user".into());
            }
            let mut owned = HashSet::new();
            for n in &u.extensions {
                if !numbers.contains(n.as_str()) {
                    err(
                        ent.clone(),
                        "extensions",
                        format!("extension {n} does not exist"),
                    );
                }
                if !owned.insert(n.as_str()) {
                    err(ent.clone(), "extensions", format!("{n} is listed twice"));
                } else if let Some(other) = owners.insert(n.as_str(), u.username.as_str()) {
                    err(
                        ent.clone(),
                        "extensions",
                        format!("extension {n} already belongs to user {other}"),
                    );
                }
            }
            if !u.password_hash.is_empty() && !u.password_hash.starts_with("$argon2") {
                err(
                    ent.clone(),
                    "password_hash",
                    "must be an Argon2 PHC string".into(),
                );
            }
            if u.full_name.chars().count() > 100
                || u.full_name
                    .chars()
                    .any(|c| c.is_control() || c == '<' || c == '>')
            {
                err(
                    ent.clone(),
                    "full_name",
                    "must be at most 100 characters, without < > or control characters".into(),
                );
            }
            if u.ring_also.len() > 5 {
                err(
                    ent.clone(),
                    "ring_also",
                    "at most 5 numbers ring at the same time".into(),
                );
            }
            for n in &u.ring_also {
                if !is_phone_number(n) {
                    err(
                        ent.clone(),
                        "ring_also",
                        format!("{n:?} is not a phone number (digits, optionally after +)"),
                    );
                }
            }
        }
        self.validate_provisioning(&numbers, &mut err);
        self.validate_routing(&numbers, &mut err);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ValidationError(errs))
        }
    }

    fn validate_provisioning(
        &self,
        numbers: &HashSet<&str>,
        err: &mut impl FnMut(String, &str, String),
    ) {
        let accounts: HashMap<&str, &SipAccount> = self
            .accounts
            .iter()
            .rev()
            .map(|a| (a.username.as_str(), a))
            .collect();
        let p = &self.provisioning;
        let ent = || "provisioning".to_string();
        if !is_digits(&p.first_extension) || p.first_extension.len() > 20 {
            err(ent(), "first_extension", "must be 1 to 20 digits".into());
        }
        if !p.phone_password.is_empty() {
            if let Some(why) = weak_secret_reason(&p.phone_password) {
                err(ent(), "phone_password", why);
            }
        } else if p.enabled {
            err(
                ent(),
                "phone_password",
                "is needed while provisioning is enabled".into(),
            );
        }
        for s in &p.allowed_sources {
            if let Err(why) = Subnet::parse(s) {
                err(ent(), "allowed_sources", why);
            }
        }
        if !p.ntp_server.is_empty() && !valid_host(&p.ntp_server) {
            err(
                ent(),
                "ntp_server",
                "must be a host name or an IP address".into(),
            );
        }
        if p.time_zone.is_empty()
            || p.time_zone.len() > 64
            || !p
                .time_zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
        {
            err(
                ent(),
                "time_zone",
                "must be a time zone name such as Europe/Prague".into(),
            );
        }
        if parse_utc_offset(&p.utc_offset).is_none() {
            err(
                ent(),
                "utc_offset",
                "must be +HH:MM or -HH:MM, at most 14 hours".into(),
            );
        }
        if self.phones.len() > MAX_PHONES {
            err(
                "phones".into(),
                "mac",
                format!("the table holds at most {MAX_PHONES} phones"),
            );
        }
        let mut macs = HashSet::new();
        let mut on_phone: BTreeMap<&str, &str> = BTreeMap::new();
        let mut accounts_used = HashSet::new();
        for ph in &self.phones {
            let ent = || format!("phone {}", ph.mac);
            if normalize_mac(&ph.mac).as_deref() != Some(ph.mac.as_str()) {
                err(
                    ent(),
                    "mac",
                    "must be 12 lower-case hex digits of a unicast MAC address".into(),
                );
            }
            if !macs.insert(ph.mac.as_str()) {
                err(ent(), "mac", "is listed twice".into());
            }
            match phone_model(&ph.model) {
                Some(m) if m.name == ph.model => {
                    if ph.lines.len() > m.lines {
                        err(
                            ent(),
                            "lines",
                            format!("a {} carries at most {} extensions", m.name, m.lines),
                        );
                    }
                }
                _ => err(ent(), "model", format!("unknown model {:?}", ph.model)),
            }
            if ph.disabled && !ph.lines.is_empty() {
                err(
                    ent(),
                    "lines",
                    "a removed phone carries no extensions".into(),
                );
            }
            for l in &ph.lines {
                if !numbers.contains(l.extension.as_str()) {
                    err(
                        ent(),
                        "lines",
                        format!("extension {} does not exist", l.extension),
                    );
                } else if let Some(other) = on_phone.insert(l.extension.as_str(), &ph.mac) {
                    err(
                        ent(),
                        "lines",
                        format!(
                            "extension {} is already on phone {}",
                            l.extension,
                            format_mac(other)
                        ),
                    );
                }
                match accounts.get(l.account.as_str()) {
                    Some(a) if a.extension == l.extension => {}
                    Some(_) => err(
                        ent(),
                        "lines",
                        format!(
                            "account {} does not belong to extension {}",
                            l.account, l.extension
                        ),
                    ),
                    None => err(
                        ent(),
                        "lines",
                        format!("account {} does not exist", l.account),
                    ),
                }
                if !accounts_used.insert(l.account.as_str()) {
                    err(
                        ent(),
                        "lines",
                        format!("account {} is used by two lines", l.account),
                    );
                }
            }
            if ph.blf_keys.len() > phones::MAX_BLF_KEYS {
                err(
                    ent(),
                    "blf_keys",
                    format!("at most {} BLF keys", phones::MAX_BLF_KEYS),
                );
            }
            for k in &ph.blf_keys {
                if !numbers.contains(k.number.as_str()) && !self.parking.slots.contains(&k.number) {
                    err(
                        ent(),
                        "blf_keys",
                        format!("{} is not an extension or a parking slot", k.number),
                    );
                }
                // Labels go into the phones' files as they are: one plain line.
                if k.label.chars().count() > 32
                    || k.label
                        .chars()
                        .any(|c| c.is_control() || "<>&\"|;".contains(c))
                {
                    err(
                        ent(),
                        "blf_keys",
                        format!(
                            "label {:?}: at most 32 characters, without < > & \" | ; or control characters",
                            k.label
                        ),
                    );
                }
            }
        }
    }

    /// The user with this name, ignoring letter case.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// A free account user name for an extension: the number, then `number-2`, ...
    pub fn free_username(&self, number: &str) -> String {
        let taken = |u: &str| self.accounts.iter().any(|a| a.username == u);
        if !taken(number) {
            return number.to_string();
        }
        (2..)
            .map(|i| format!("{number}-{i}"))
            .find(|u| !taken(u))
            .expect("some suffix is free")
    }

    /// Removes a SIP account and the phone line that used it; false when there is none.
    pub fn remove_account(&mut self, username: &str) -> bool {
        let before = self.accounts.len();
        self.accounts.retain(|a| a.username != username);
        for p in &mut self.phones {
            p.lines.retain(|l| l.account != username);
        }
        self.accounts.len() != before
    }

    /// Removes an extension with its SIP accounts, its owners' references to it and
    /// caller IDs that present it; false when there is no such extension.
    pub fn remove_extension(&mut self, number: &str) -> bool {
        let before = self.extensions.len();
        self.extensions.retain(|e| e.number != number);
        if self.extensions.len() == before {
            return false;
        }
        self.accounts.retain(|a| a.extension != number);
        for p in &mut self.phones {
            p.lines.retain(|l| l.extension != number);
            p.blf_keys.retain(|k| k.number != number);
        }
        for u in &mut self.users {
            u.extensions.retain(|n| n != number);
        }
        for e in &mut self.extensions {
            if matches!(&e.caller_id, CallerIdPresentation::Present(n) if n == number) {
                e.caller_id = CallerIdPresentation::Show;
            }
        }
        true
    }

    /// Parses a document and validates it as a whole.
    pub fn from_json(text: &str) -> Result<Config, ValidationError> {
        let cfg: Config = serde_json::from_str(text).map_err(|e| {
            ValidationError(vec![FieldError {
                entity: "document".into(),
                field: format!("line {} column {}", e.line(), e.column()),
                message: e.to_string(),
            }])
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The document as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }
}

/// The immutable configuration the runtime reads, with look-up indexes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Store revision this snapshot was made from.
    pub revision: u64,
    pub config: Config,
    extension_by_number: BTreeMap<String, usize>,
    account_by_username: BTreeMap<String, usize>,
    /// Each extension's accounts (indexes, in configuration order): every call rings
    /// them, and a scan of 10,000 accounts per call cost more than the call's parsing.
    accounts_by_extension: HashMap<String, Vec<usize>>,
    /// The browser phone account ([`SipAccount::web`]) of each extension a user owns;
    /// the indexes above count them after the configured accounts.
    web_accounts: Vec<SipAccount>,
    /// The first user owning each extension.
    owner_by_extension: HashMap<String, usize>,
    /// Each link's patterns, compiled, in link order.
    link_patterns: Vec<Vec<regex_lite::Regex>>,
}

impl Snapshot {
    /// Indexes a validated configuration.
    pub fn new(revision: u64, config: Config) -> Snapshot {
        let extension_by_number = config
            .extensions
            .iter()
            .enumerate()
            .map(|(i, e)| (e.number.clone(), i))
            .collect();
        let mut owner_by_extension = HashMap::new();
        for (i, u) in config.users.iter().enumerate() {
            for e in &u.extensions {
                owner_by_extension.entry(e.clone()).or_insert(i);
            }
        }
        // Every extension an enabled user owns has a browser phone (the portal's): in
        // extension order, after the configured accounts.
        let owned: HashSet<&str> = config
            .users
            .iter()
            .filter(|u| u.enabled)
            .flat_map(|u| u.extensions.iter().map(String::as_str))
            .collect();
        let web_accounts: Vec<SipAccount> = config
            .extensions
            .iter()
            .filter(|e| owned.contains(e.number.as_str()))
            .map(|e| SipAccount::web(&e.number))
            .collect();
        let all = config.accounts.iter().chain(web_accounts.iter());
        let account_by_username = all
            .clone()
            .enumerate()
            .map(|(i, a)| (a.username.clone(), i))
            .collect();
        let mut accounts_by_extension: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, a) in all.enumerate() {
            accounts_by_extension
                .entry(a.extension.clone())
                .or_default()
                .push(i);
        }
        Snapshot {
            web_accounts,
            revision,
            accounts_by_extension,
            owner_by_extension,
            link_patterns: routing::compile_links(&config.links),
            config,
            extension_by_number,
            account_by_username,
        }
    }

    /// Whether the account's extension encrypts its calls (TLS and SRTP only), by the
    /// index: asked at every REGISTER and call.
    pub fn encrypts(&self, account: &SipAccount) -> bool {
        self.extension(&account.extension)
            .is_some_and(|e| e.encrypt_calls)
    }

    /// The extension with this number.
    pub fn auto_attendant(&self, number: &str) -> Option<&AutoAttendant> {
        self.config
            .auto_attendants
            .iter()
            .find(|a| a.number == number)
    }

    /// The conference room with this number.
    pub fn conference(&self, number: &str) -> Option<&Conference> {
        self.config.conferences.iter().find(|c| c.number == number)
    }

    /// The call queue with this number.
    pub fn queue(&self, number: &str) -> Option<&Queue> {
        self.config.queues.iter().find(|q| q.number == number)
    }

    /// The queue whose agents log in (true) or out with this code.
    pub fn queue_code(&self, code: &str) -> Option<(&Queue, bool)> {
        self.config
            .queues
            .iter()
            .filter(|q| q.dynamic_agents)
            .find_map(|q| {
                if q.login_code == code {
                    Some((q, true))
                } else if q.logout_code == code {
                    Some((q, false))
                } else {
                    None
                }
            })
    }

    pub fn time_range(&self, name: &str) -> Option<&TimeRange> {
        self.config.time_ranges.iter().find(|r| r.name == name)
    }

    pub fn extension(&self, number: &str) -> Option<&Extension> {
        self.extension_by_number
            .get(number)
            .map(|i| &self.config.extensions[*i])
    }

    /// A configured account by index, or past them a browser phone account.
    fn account_at(&self, i: usize) -> &SipAccount {
        match self.config.accounts.get(i) {
            Some(a) => a,
            None => &self.web_accounts[i - self.config.accounts.len()],
        }
    }

    /// The account with this user name (a browser phone account too).
    pub fn account(&self, username: &str) -> Option<&SipAccount> {
        self.account_by_username
            .get(username)
            .map(|i| self.account_at(*i))
    }

    /// All accounts of an extension, in configuration order, then its browser phone
    /// account if a user owns it: every call to the extension rings them all.
    pub fn accounts_of<'a>(&'a self, number: &'a str) -> impl Iterator<Item = &'a SipAccount> + 'a {
        self.accounts_by_extension
            .get(number)
            .into_iter()
            .flatten()
            .map(|i| self.account_at(*i))
    }

    /// The accounts of an extension that the configuration holds (no browser phone):
    /// what the administrator sets and a phone is given.
    pub fn configured_accounts_of<'a>(
        &'a self,
        number: &'a str,
    ) -> impl Iterator<Item = &'a SipAccount> + 'a {
        self.accounts_of(number).filter(|a| !a.is_web())
    }

    /// The user owning the extension with this number (the first, should two list it).
    pub fn owner(&self, number: &str) -> Option<&User> {
        self.owner_by_extension
            .get(number)
            .map(|i| &self.config.users[*i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn an_owned_extension_has_a_browser_phone_account_that_is_never_stored() {
        let mut c = Config::default();
        for n in ["101", "102"] {
            c.extensions.push(Extension::new(n));
            c.accounts.push(SipAccount::new(n, "S3cret-Ph0ne", n));
        }
        let mut u = User::new("alice", Role::User);
        u.extensions = vec!["101".into()];
        c.users.push(u);
        let s = Snapshot::new(1, c.clone());
        let web = s.account("101~web").expect("101 is owned");
        assert!(web.is_web() && web.kind() == "web" && web.secret.is_empty());
        assert_eq!(web.transports, [Transport::Wss]);
        assert_eq!(web.extension, "101");
        assert!(s.account("102~web").is_none(), "102 has no owner");
        assert_eq!(s.account("102").map(SipAccount::kind), Some("phone"));
        let all: Vec<_> = s.accounts_of("101").map(|a| a.username.as_str()).collect();
        assert_eq!(all, ["101", "101~web"]);
        let set: Vec<_> = s
            .configured_accounts_of("101")
            .map(|a| a.username.as_str())
            .collect();
        assert_eq!(set, ["101"]);
        assert_eq!(s.config, c, "the configuration holds no browser account");
        // No configured account can take the name.
        assert!(!valid_username("101~web"));
        // A disabled user's extensions have none.
        let mut off = c.clone();
        off.users[0].enabled = false;
        assert!(Snapshot::new(2, off).account("101~web").is_none());
        // A grant holds for its user, under the password it was given with.
        let g = WebGrant {
            secret: "x".into(),
            until: 100,
            user: "alice".into(),
            password_hash: String::new(),
        };
        assert!(web.web_grant_holds(&g, &c, 99));
        assert!(!web.web_grant_holds(&g, &c, 100), "lapsed");
        let other = WebGrant {
            user: "bob".into(),
            ..g.clone()
        };
        assert!(!web.web_grant_holds(&other, &c, 99));
        let mut moved = c.clone();
        moved.users[0].extensions.clear();
        assert!(!web.web_grant_holds(&g, &moved, 99), "alice lost 101");
        assert!(!format!("{g:?}").contains("secret"), "{g:?}");
    }

    fn sample() -> Config {
        let mut c = Config::default();
        c.extensions.push(Extension::new("101"));
        c.extensions.push(Extension::new("102"));
        c.accounts
            .push(SipAccount::new("101", "Str0ng-Secret", "101"));
        c
    }

    #[test]
    fn sample_is_valid_and_round_trips() {
        let c = sample();
        c.validate().unwrap();
        assert_eq!(Config::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn ip_address_groups_are_checked() {
        let g = |name: &str, items: Vec<IpItem>| IpGroup {
            name: name.into(),
            description: String::new(),
            items,
        };
        let host = |a: &str| IpItem::Host {
            address: a.into(),
            description: "a PC".into(),
        };
        let of = |o: &str| IpItem::Group {
            group: o.into(),
            description: String::new(),
        };
        let mut c = sample();
        c.ip_groups = vec![
            g("Admins", vec![host("192.168.15.3")]),
            g("Office", vec![of("Admins"), host("2001:db8::1")]),
        ];
        c.validate().unwrap();
        assert_eq!(Config::from_json(&c.to_json()).unwrap(), c);
        for groups in [
            vec![g("a", vec![host("192.168.15.300")])],
            vec![g("a", vec![])],
            vec![g("a", vec![of("nobody")])],
            vec![g(
                "a",
                vec![IpItem::Host {
                    address: "10.0.0.1".into(),
                    description: "a; b".into(),
                }],
            )],
            vec![g(
                "a",
                vec![IpItem::Network {
                    network: "::ffff:10.0.0.0/104".into(),
                    description: String::new(),
                }],
            )],
            vec![g("a", vec![of("b")]), g("b", vec![of("a")])],
            vec![g(
                "a",
                vec![IpItem::Range {
                    from: "10.0.0.9".into(),
                    to: "10.0.0.1".into(),
                    description: String::new(),
                }],
            )],
            vec![g(
                "a",
                vec![IpItem::Network {
                    network: "10.0.0.1/8".into(),
                    description: String::new(),
                }],
            )],
        ] {
            let mut c = sample();
            c.ip_groups = groups.clone();
            let e = c.validate().expect_err("refused");
            assert!(e.0.iter().any(|f| f.field == "items"), "{groups:?}: {e:?}");
        }
    }

    #[test]
    fn music_collections_are_checked() {
        let m = |name: &str, files: &[&str], line_in: &str, default: bool| MusicCollection {
            name: name.into(),
            description: String::new(),
            files: files.iter().map(|f| f.to_string()).collect(),
            line_in: line_in.into(),
            default,
        };
        let mut c = sample();
        c.music = vec![
            m("jazz", &["a", "b-2"], "", true),
            m("radio", &[], "plughw:CARD=USB,DEV=0", false),
        ];
        c.validate().unwrap();
        assert_eq!(Config::from_json(&c.to_json()).unwrap(), c);
        let wrong = |music: Vec<MusicCollection>, field: &str| {
            let mut c = sample();
            c.music = music;
            let e = c.validate().expect_err(field);
            assert!(e.0.iter().any(|f| f.field == field), "{field}: {e:?}");
        };
        wrong(vec![m("system", &["a"], "", false)], "name");
        wrong(vec![m("a b", &["a"], "", false)], "name");
        wrong(
            vec![m("x", &["a"], "", false), m("x", &["b"], "", false)],
            "name",
        );
        wrong(vec![m("x", &[], "", false)], "files");
        wrong(vec![m("x", &["../a"], "", false)], "files");
        wrong(vec![m("x", &["a", "a"], "", false)], "files");
        wrong(vec![m("x", &["a"], "hw:1,0", false)], "line_in");
        wrong(vec![m("x", &[], "hw:1;reboot", false)], "line_in");
        wrong(
            vec![m("x", &["a"], "", true), m("y", &["a"], "", true)],
            "default",
        );
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(weak_secret_reason("short1A").is_some());
        assert!(weak_secret_reason("alllowercaseletters").is_some());
        assert!(weak_secret_reason("lowerUPPERonly").is_some());
        assert!(weak_secret_reason("lowerUPPER123").is_none());
        assert!(weak_secret_reason("lower-123-symbols").is_none());
    }

    #[test]
    fn generated_secrets_are_strong() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let s = generate_secret(&mut rng);
            assert_eq!(weak_secret_reason(&s), None, "{s}");
        }
    }

    #[test]
    fn errors_name_entity_and_field() {
        let mut c = sample();
        c.extensions.push(Extension::new("101"));
        c.extensions.push(Extension::new("12a"));
        c.accounts.push(SipAccount::new("101", "weak", "999"));
        let errs = c.validate().unwrap_err().0;
        let has = |ent: &str, field: &str| errs.iter().any(|e| e.entity == ent && e.field == field);
        assert!(has("extension 101", "number"), "{errs:?}");
        assert!(has("extension 12a", "number"));
        assert!(has("account 101", "username"));
        assert!(has("account 101", "secret"));
        assert!(has("account 101", "extension"));
    }

    #[test]
    fn feature_codes_clash_with_nothing() {
        let field_of = |edit: &dyn Fn(&mut Config)| {
            let mut c = sample();
            edit(&mut c);
            c.validate()
                .err()
                .map(|e| {
                    e.0.iter()
                        .filter(|f| f.entity == "feature codes")
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        assert!(field_of(&|_| {}).is_empty());
        let e = field_of(&|c| c.feature_codes.echo_test = "101".into());
        assert_eq!(e, vec!["echo_test: conflicts with number 101"]);
        let e = field_of(&|c| c.feature_codes.echo_test = "*8".into());
        assert_eq!(e, vec!["echo_test: is the same as the pickup code"]);
        let e = field_of(&|c| c.feature_codes.echo_test = "**4".into());
        assert!(
            e[0].starts_with("echo_test: **4 and the directed pickup **"),
            "{e:?}"
        );
        let e = field_of(&|c| c.feature_codes.echo_test = "*43x".into());
        assert_eq!(e, vec!["echo_test: must be 1 to 8 of digits, * and #"]);
        let e = field_of(&|c| c.feature_codes.directed_pickup = "*".into());
        assert_eq!(
            e.len(),
            16,
            "the five whole codes, the nine parking slots and the direct voicemail begin with it: {e:?}"
        );
        // The voicemail codes: a whole code and a prefix, both checked.
        let e = field_of(&|c| c.feature_codes.voicemail = "*98".into());
        assert_eq!(
            e,
            vec!["voicemail: *98 and the voicemail direct *98 must not begin with one another"]
        );
        let e = field_of(&|c| c.feature_codes.voicemail = "*43".into());
        assert_eq!(e, vec!["voicemail: is the same as the echo_test code"]);
        let e = field_of(&|c| c.feature_codes.voicemail_direct = "10".into());
        assert_eq!(e[0], "voicemail_direct: conflicts with number 101");
        assert!(field_of(&|c| {
            c.feature_codes.voicemail.clear();
            c.feature_codes.voicemail_direct.clear();
        })
        .is_empty());
        // Off, it clashes with nothing; a document from before the echo test has it
        // off, so its own *43 stays valid.
        assert!(field_of(&|c| {
            c.feature_codes.echo_test.clear();
            c.feature_codes.pickup = "*43".into();
        })
        .is_empty());
        let mut old = sample();
        old.feature_codes.pickup = "*43".into();
        let mut doc: serde_json::Value = serde_json::from_str(&old.to_json()).unwrap();
        doc["feature_codes"]
            .as_object_mut()
            .unwrap()
            .remove("echo_test");
        let back = Config::from_json(&doc.to_string()).unwrap();
        assert_eq!(back.feature_codes.echo_test, "");
    }

    #[test]
    fn broken_json_and_foreign_documents_are_refused() {
        let e = Config::from_json("{\"format\": ").unwrap_err();
        assert_eq!(e.0[0].entity, "document");
        let e = Config::from_json(r#"{"format":"other","version":1}"#).unwrap_err();
        assert_eq!(e.0[0].field, "format");
        let e = Config::from_json(r#"{"format":"pbx-config","version":1,"bogus":[]}"#).unwrap_err();
        assert!(e.0[0].message.contains("bogus"));
    }

    #[test]
    fn removing_an_extension_leaves_no_dangling_reference() {
        let mut c = sample();
        c.extensions[1].caller_id = CallerIdPresentation::Present("101".into());
        let mut u = User::new("ann", Role::User);
        u.extensions = vec!["101".into(), "102".into()];
        c.users.push(u);
        assert!(c.remove_extension("101"));
        assert!(!c.remove_extension("101"));
        assert!(c.accounts.is_empty());
        assert_eq!(c.users[0].extensions, vec!["102"]);
        assert_eq!(c.extensions[0].caller_id, CallerIdPresentation::Show);
        c.validate().unwrap();
    }

    #[test]
    fn users_are_validated() {
        let mut c = sample();
        let mut a = User::new("ann", Role::User);
        a.extensions = vec!["101".into()];
        a.ring_also = vec!["+420602111111".into(), "call me".into()];
        let mut b = User::new("ANN", Role::Auditor);
        b.extensions = vec!["101".into()];
        b.password_hash = "plaintext".into();
        c.users = vec![a, b];
        let errs = c.validate().unwrap_err().0;
        let has = |ent: &str, field: &str| errs.iter().any(|e| e.entity == ent && e.field == field);
        assert!(has("user ann", "ring_also"), "{errs:?}");
        assert!(
            has("user ANN", "username"),
            "names are unique ignoring case"
        );
        assert!(has("user ANN", "extensions"), "an extension has one owner");
        assert!(has("user ANN", "password_hash"));
    }

    #[test]
    fn subnets() {
        let s = Subnet::parse("192.168.1.0/24").unwrap();
        assert!(s.contains("192.168.1.77".parse().unwrap()));
        assert!(!s.contains("192.168.2.1".parse().unwrap()));
        assert!(Subnet::parse("10.0.0.1/33").is_err());
        assert!(Subnet::parse("nonsense").is_err());
        assert!(Subnet::parse("::1")
            .unwrap()
            .contains("::1".parse().unwrap()));
    }

    #[test]
    fn snapshot_indexes() {
        let s = Snapshot::new(3, sample());
        assert_eq!(s.extension("102").unwrap().number, "102");
        assert_eq!(s.account("101").unwrap().extension, "101");
        assert_eq!(s.accounts_of("101").count(), 1);
        assert!(s.extension("999").is_none());
        assert!(!s.encrypts(s.account("101").unwrap()));
        // Accounts by extension in configuration order; an extension's first owner.
        let mut c = sample();
        c.accounts
            .insert(0, SipAccount::new("101-desk", "Desk-Secret-1", "101"));
        c.accounts
            .push(SipAccount::new("101-soft", "Soft-Secret-1", "101"));
        let mut anna = User::new("anna", Role::User);
        anna.extensions = vec!["102".into(), "101".into()];
        let mut bob = User::new("bob", Role::User);
        bob.extensions = vec!["101".into()];
        c.users = vec![anna, bob];
        let s = Snapshot::new(4, c);
        let names: Vec<_> = s.accounts_of("101").map(|a| a.username.as_str()).collect();
        assert_eq!(names, ["101-desk", "101", "101-soft", "101~web"]);
        assert_eq!(s.accounts_of("999").count(), 0);
        assert_eq!(s.owner("101").unwrap().username, "anna");
        assert_eq!(s.owner("102").unwrap().username, "anna");
        assert!(s.owner("999").is_none());
    }

    /// The references validation looks up by index (an encrypting extension's accounts,
    /// caller IDs, phone lines, voicemail targets) are found where they exist and
    /// refused where they do not, among many extensions.
    #[test]
    fn references_are_checked_by_index() {
        let mut c = sample();
        for n in 1000..3000 {
            c.extensions.push(Extension::new(&n.to_string()));
        }
        c.validate().unwrap();
        let e = c.extensions.iter_mut().find(|e| e.number == "101").unwrap();
        e.encrypt_calls = true;
        e.caller_id = CallerIdPresentation::Present("2999".into());
        c.accounts[0].transports = vec![Transport::Udp];
        let err = c.validate().unwrap_err().0;
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(
            (err[0].entity.as_str(), err[0].field.as_str()),
            ("account 101", "transports")
        );
        assert!(
            err[0].message.contains("TLS must be among the transports"),
            "{err:?}"
        );
        c.accounts[0].transports = vec![Transport::Tls];
        c.validate().unwrap();
        assert!(Snapshot::new(4, c.clone()).encrypts(&c.accounts[0]));
        let e = c.extensions.iter_mut().find(|e| e.number == "101").unwrap();
        e.caller_id = CallerIdPresentation::Present("3000".into());
        let err = c.validate().unwrap_err().0;
        assert!(
            err.iter()
                .any(|e| e.field == "caller_id" && e.message == "extension 3000 does not exist"),
            "{err:?}"
        );
    }
}

#[cfg(test)]
mod phone_tests {
    use super::*;

    fn with_phone() -> Config {
        let mut c = Config::default();
        c.extensions.push(Extension::new("111"));
        c.extensions.push(Extension::new("112"));
        c.accounts
            .push(SipAccount::new("111", "Str0ng-Secret", "111"));
        c.accounts
            .push(SipAccount::new("112", "Str0ng-Secret", "112"));
        let mut p = Phone::new("001aa0be1ecd", "794X");
        p.lines = vec![
            PhoneLine {
                extension: "111".into(),
                account: "111".into(),
            },
            PhoneLine {
                extension: "112".into(),
                account: "112".into(),
            },
        ];
        c.phones.push(p);
        c
    }

    #[test]
    fn phones_are_validated() {
        let mut c = with_phone();
        c.validate().unwrap();
        assert_eq!(c.phones[0].state(), PhoneState::Provisioned);
        c.phones[0].model = "SPA922".into();
        let e = c.validate().unwrap_err().0;
        assert!(
            e.iter()
                .any(|e| e.field == "lines" && e.message.contains("at most 1")),
            "{e:?}"
        );
        c.phones[0].model = "7970".into();
        c.phones.push(Phone::new("001AA0BE1ECD", "794X"));
        let e = c.validate().unwrap_err().0;
        assert!(e.iter().any(|e| e.field == "model"), "{e:?}");
        assert!(e.iter().any(|e| e.field == "mac"), "{e:?}");
        let mut c = with_phone();
        let mut other = Phone::new("001bb0cde1ca", "796X");
        other.lines.push(PhoneLine {
            extension: "111".into(),
            account: "111".into(),
        });
        c.phones.push(other);
        let e = c.validate().unwrap_err().0;
        assert!(
            e.iter()
                .any(|e| e.message.contains("already on phone 00:1a:a0:be:1e:cd")),
            "{e:?}"
        );
    }

    #[test]
    fn provisioning_needs_a_strong_phone_password() {
        let mut c = Config::default();
        c.provisioning.enabled = true;
        let e = c.validate().unwrap_err().0;
        assert_eq!(e[0].field, "phone_password");
        c.provisioning.phone_password = "weak".into();
        assert!(c.validate().is_err());
        c.provisioning.phone_password = "Str0ng-Phones".into();
        c.provisioning.allowed_sources = vec!["10.0.0.0/8".into(), "bogus".into()];
        c.provisioning.utc_offset = "+1".into();
        let e = c.validate().unwrap_err().0;
        assert!(e.iter().any(|e| e.field == "allowed_sources"));
        assert!(e.iter().any(|e| e.field == "utc_offset"));
    }

    #[test]
    fn removing_an_extension_or_account_frees_the_phone_line() {
        let mut c = with_phone();
        assert!(c.remove_extension("111"));
        assert_eq!(c.phones[0].lines.len(), 1);
        assert!(c.remove_account("112"));
        assert_eq!(c.phones[0].state(), PhoneState::Pending);
        c.validate().unwrap();
    }
}
