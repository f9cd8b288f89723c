//! Scanner and brute-force protection: which sources get no answer at all.
//!
//! Counted per source address within a window (a minute): wrong digest answers (a
//! wrong password or a user that does not exist) and challenges that were never
//! followed by a right answer; and requests per second. An address nobody has
//! authenticated from is banned whole. An address a phone authenticated from (an
//! office behind one NAT) is *trusted*: it is never banned for challenges, and a
//! device guessing passwords there is cut off by its source port and by the user name
//! it tries, so the phones that authenticate correctly keep working; when the guesses
//! come from everywhere at once, the address is banned except for the ports phones
//! authenticated from. Known scanners' user agents are dropped and their source banned
//! at once. Bans escalate (10 minutes, an hour, a day for a source banned again within
//! a day), survive a restart (the driver saves [`Guard::export`]), and every ban, end
//! and lift is a security event. Sources in the administrator's allow group are never
//! banned. Every table here is bounded, so a flood from spoofed addresses cannot grow
//! the box's memory.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// User agents of scanners and password crackers (lower case, matched as parts).
pub const SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "iwar",
    "sundayddr",
    "vaxsipuseragent",
    "pplsip",
    "smap",
];

/// Sources never banned: the administrator's allow group (`sip_protection.allow_group`),
/// and the providers and links the box talks to (their addresses and inbound sources:
/// they never authenticate to us, and a spoofed packet must not cut a trunk off).
pub(crate) fn allow_list<'a>(
    cfg: &'a config::Config,
    peers: &'a crate::trunks::Peers,
) -> impl Fn(IpAddr) -> bool + 'a {
    let group = cfg.sip_protection.allow_group.as_str();
    move |ip| {
        (!group.is_empty() && config::group_contains(&cfg.ip_groups, group, ip))
            || peers.values().any(|p| p.addrs.iter().any(|a| a.ip() == ip))
            || cfg.sip_interfaces.iter().any(|i| {
                i.inbound_sources
                    .iter()
                    .any(|s| config::Subnet::parse(s).is_ok_and(|s| s.contains(ip)))
            })
    }
}

/// Source addresses followed at once (beyond it new ones are not counted).
pub const MAX_ADDRESSES: usize = 65_536;
/// Bans held at once (beyond it no new ones are made).
pub const MAX_BANS: usize = 10_000;
/// Ports and users with wrong answers followed per address.
const MAX_PER_ADDRESS: usize = 64;
/// Phones (user and source port that authenticated) remembered per address.
const MAX_PHONES: usize = 1_024;
/// Source ports of one address banned before the address itself is (sparing phones).
const MAX_PORT_BANS: usize = 16;
/// Security events waiting for the driver (it takes them every second; the rest are
/// counted in one line, so a flood of bans does not rotate the security log away).
const MAX_EVENTS: usize = 100;
/// A source banned again within this long gets the next, longer ban.
const OFFENCE_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// Thresholds.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Wrong digest answers (wrong password or unknown user) within `window` that get a
    /// source banned (0: never).
    pub ban_after: u32,
    pub window: Duration,
    /// Challenges within `window` never followed by a right answer that get an
    /// untrusted address banned (0: never).
    pub challenge_flood: u32,
    /// Requests a second from one address (twice as many in a burst); past it an
    /// untrusted address is banned and a trusted one's excess dropped (0: no limit).
    pub rate: u32,
    /// First, second and later bans within a day.
    pub ban_times: [Duration; 3],
    /// How long an address stays trusted after a phone authenticated from it.
    pub trust_time: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            ban_after: 10,
            window: Duration::from_secs(60),
            challenge_flood: 100,
            rate: 300,
            ban_times: [
                Duration::from_secs(600),
                Duration::from_secs(3600),
                Duration::from_secs(24 * 3600),
            ],
            trust_time: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a ban shuts out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanKey {
    /// Everything from an address.
    Address(IpAddr),
    /// Everything from one source port of an address.
    Port(SocketAddr),
    /// Requests naming this user from this address (but the ports it authenticated from).
    User(IpAddr, String),
}

impl BanKey {
    pub fn kind(&self) -> &'static str {
        match self {
            BanKey::Address(_) => "address",
            BanKey::Port(_) => "port",
            BanKey::User(..) => "user",
        }
    }

    pub fn ip(&self) -> IpAddr {
        match self {
            BanKey::Address(ip) | BanKey::User(ip, _) => *ip,
            BanKey::Port(s) => s.ip(),
        }
    }

    /// Reads what [`Display`](std::fmt::Display) writes: `192.0.2.7`,
    /// `192.0.2.7:5070`, `[2001:db8::7]:5070`, `alice@192.0.2.7`, `alice@[2001:db8::7]`.
    pub fn parse(s: &str) -> Option<BanKey> {
        if let Some((user, ip)) = s.rsplit_once('@') {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            if user.is_empty() {
                return None;
            }
            return Some(BanKey::User(ip.parse().ok()?, user.to_string()));
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Some(BanKey::Port(sa));
        }
        s.parse().ok().map(BanKey::Address)
    }
}

impl std::fmt::Display for BanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BanKey::Address(ip) => write!(f, "{ip}"),
            BanKey::Port(sa) => write!(f, "{sa}"),
            BanKey::User(IpAddr::V6(ip), u) => write!(f, "{u}@[{ip}]"),
            BanKey::User(ip, u) => write!(f, "{u}@{ip}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Ban {
    until: Instant,
    since_unix: u64,
    until_unix: u64,
    reason: String,
    offence: u32,
    /// An address ban that lets through the ports phones authenticated from.
    spare_phones: bool,
}

/// A ban as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    /// What lifts it: `192.0.2.7`, `192.0.2.7:5070` or `alice@192.0.2.7`.
    pub key: String,
    /// `address`, `port` or `user`.
    pub kind: String,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub reason: String,
    /// Unix seconds.
    pub since: u64,
    pub until: u64,
    pub seconds_left: u64,
    /// 1 for a first ban, 2 for a second within a day, ...
    pub offence: u32,
    /// Phones that authenticated from the address still get through.
    pub spares_phones: bool,
}

/// A line for the security log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Unix seconds.
    pub unix: u64,
    pub address: String,
    pub user: String,
    pub event: String,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    n: u32,
    since: Instant,
}

impl Counter {
    fn new(now: Instant) -> Counter {
        Counter { n: 0, since: now }
    }

    /// Counts one more within `window` and says how many.
    fn hit(&mut self, now: Instant, window: Duration) -> u32 {
        if now.saturating_duration_since(self.since) >= window {
            *self = Counter::new(now);
        }
        self.n += 1;
        self.n
    }
}

#[derive(Debug)]
struct AddrState {
    last: Instant,
    tokens: f64,
    refilled: Instant,
    wrong: Counter,
    challenges: Counter,
    trusted_until: Option<Instant>,
    ports: HashMap<u16, Counter>,
    users: HashMap<String, Counter>,
    /// (user, port) pairs that authenticated, newest last.
    phones: VecDeque<(String, u16)>,
    /// When dropped excess requests were last reported.
    excess_noted: Option<Instant>,
}

impl AddrState {
    fn new(now: Instant, burst: f64) -> AddrState {
        AddrState {
            last: now,
            tokens: burst,
            refilled: now,
            wrong: Counter::new(now),
            challenges: Counter::new(now),
            trusted_until: None,
            ports: HashMap::new(),
            users: HashMap::new(),
            phones: VecDeque::new(),
            excess_noted: None,
        }
    }

    fn trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|t| t > now)
    }

    fn phone_port(&self, port: u16) -> bool {
        self.phones.iter().any(|(_, p)| *p == port)
    }
}

/// A ban as saved across restarts.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    key: String,
    reason: String,
    since: u64,
    until: u64,
    offence: u32,
    #[serde(default)]
    spare_phones: bool,
    /// (user, port) pairs spared by an address ban.
    #[serde(default)]
    phones: Vec<(String, u16)>,
}

/// The guard's state.
pub struct Guard {
    settings: GuardSettings,
    addrs: HashMap<IpAddr, AddrState>,
    bans: HashMap<BanKey, Ban>,
    user_bans: usize,
    offences: HashMap<BanKey, (u32, Instant)>,
    events: VecDeque<SecurityEvent>,
    events_dropped: u64,
    dirty: bool,
    /// When idle addresses were last forgotten.
    pruned: Option<Instant>,
}

/// Says whether an address is in the administrator's allow list.
pub trait Allowed: Fn(IpAddr) -> bool {}
impl<F: Fn(IpAddr) -> bool> Allowed for F {}

impl Guard {
    pub fn new(settings: GuardSettings) -> Guard {
        Guard {
            settings,
            addrs: HashMap::new(),
            bans: HashMap::new(),
            user_bans: 0,
            offences: HashMap::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            dirty: false,
            pruned: None,
        }
    }

    /// Whether a user is banned anywhere (requests' users need reading then).
    pub fn has_user_bans(&self) -> bool {
        self.user_bans > 0
    }

    fn burst(&self) -> f64 {
        2.0 * self.settings.rate as f64
    }

    fn state(&mut self, now: Instant, ip: IpAddr) -> Option<&mut AddrState> {
        if !self.addrs.contains_key(&ip) && self.addrs.len() >= MAX_ADDRESSES {
            // Full (a flood from ever new addresses): forgotten idle ones at most once a
            // second, not a scan of the table per message.
            if self
                .pruned
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
            {
                self.prune(now);
            }
            if self.addrs.len() >= MAX_ADDRESSES {
                return None;
            }
        }
        let burst = self.burst();
        let st = self
            .addrs
            .entry(ip)
            .or_insert_with(|| AddrState::new(now, burst));
        st.last = now;
        Some(st)
    }

    fn active(&self, key: &BanKey, now: Instant) -> Option<&Ban> {
        self.bans.get(key).filter(|b| b.until > now)
    }

    /// Before a message is parsed: false when its source is banned, or it is a request
    /// past its address's rate.
    pub fn admit(
        &mut self,
        now: Instant,
        unix: u64,
        src: SocketAddr,
        request: bool,
        allowed: impl Allowed,
    ) -> bool {
        let ip = src.ip();
        if !self.bans.is_empty() {
            let mut banned = self.active(&BanKey::Port(src), now).is_some();
            if let Some(b) = self.active(&BanKey::Address(ip), now) {
                let spared = b.spare_phones
                    && self
                        .addrs
                        .get(&ip)
                        .is_some_and(|s| s.phone_port(src.port()));
                banned |= !spared;
            }
            // The allow group also covers bans made before it named the source.
            if banned && !allowed(ip) {
                return false;
            }
        }
        if !request || self.settings.rate == 0 {
            return true;
        }
        let (rate, burst) = (self.settings.rate as f64, self.burst());
        let (limit, window) = (self.settings.rate, self.settings.window);
        let Some(st) = self.state(now, ip) else {
            return true;
        };
        let elapsed = now.saturating_duration_since(st.refilled).as_secs_f64();
        st.tokens = (st.tokens + elapsed * rate).min(burst);
        st.refilled = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            return true;
        }
        if allowed(ip) {
            return true;
        }
        if st.trusted(now) {
            let note = st
                .excess_noted
                .is_none_or(|t| now.saturating_duration_since(t) >= window);
            if note {
                st.excess_noted = Some(now);
                tracing::warn!(target: "security", %src, "more than {} SIP requests a second from a trusted address: the excess is dropped", limit);
            }
            return false;
        }
        let reason = format!("more than {} requests a second (flood)", self.settings.rate);
        self.ban(now, unix, BanKey::Address(ip), reason, false);
        false
    }

    /// A parsed request: false (and no answer) for a scanner's user agent or a user
    /// banned at this address. `users` are the From user and the credentials' user.
    pub fn admit_request(
        &mut self,
        now: Instant,
        unix: u64,
        src: SocketAddr,
        user_agent: Option<&str>,
        users: &[&str],
        allowed: impl Allowed,
    ) -> bool {
        if let Some(ua) = user_agent {
            let lower = ua.to_ascii_lowercase();
            if SCANNERS.iter().any(|s| lower.contains(s)) {
                if allowed(src.ip()) {
                    return false;
                }
                let st = self.addrs.get(&src.ip());
                let trusted = st.is_some_and(|s| s.trusted(now));
                let ua: String = ua.chars().take(40).collect();
                if !trusted {
                    let key = BanKey::Address(src.ip());
                    self.ban(now, unix, key, format!("scanner ({ua})"), false);
                } else if !st.is_some_and(|s| s.phone_port(src.port())) {
                    // Never a port a phone authenticated from (one spoofed packet would
                    // cut the phone off): that message alone is dropped.
                    self.ban_port(now, unix, src, format!("scanner ({ua})"));
                }
                return false;
            }
        }
        if self.user_bans > 0 {
            for u in users.iter().filter(|u| !u.is_empty()) {
                let key = BanKey::User(src.ip(), u.to_string());
                if self.active(&key, now).is_some() {
                    let phone = self.addrs.get(&src.ip()).is_some_and(|s| {
                        s.phones.iter().any(|(pu, pp)| pu == u && *pp == src.port())
                    });
                    if !phone {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// A request was challenged (it carried no credentials for us).
    pub fn challenged(&mut self, now: Instant, unix: u64, src: SocketAddr, allowed: impl Allowed) {
        let (flood, window) = (self.settings.challenge_flood, self.settings.window);
        if flood == 0 {
            return;
        }
        let Some(st) = self.state(now, src.ip()) else {
            return;
        };
        if st.trusted(now) {
            return; // never banned for challenges
        }
        let n = st.challenges.hit(now, window);
        if n >= flood && !allowed(src.ip()) {
            let reason = format!(
                "{n} challenges unanswered within {} s (scan)",
                window.as_secs()
            );
            self.ban(now, unix, BanKey::Address(src.ip()), reason, false);
        }
    }

    /// A wrong digest answer: a wrong password for `user`, or (`known` false) a user
    /// that does not exist.
    pub fn wrong(
        &mut self,
        now: Instant,
        unix: u64,
        src: SocketAddr,
        user: &str,
        known: bool,
        allowed: impl Allowed,
    ) {
        let (after, window) = (self.settings.ban_after, self.settings.window);
        if after == 0 || allowed(src.ip()) {
            return;
        }
        let what = if known {
            "wrong passwords"
        } else {
            "unknown users"
        };
        let Some(st) = self.state(now, src.ip()) else {
            return;
        };
        if !st.trusted(now) {
            let n = st.wrong.hit(now, window);
            if n >= after {
                st.wrong = Counter::new(now);
                let reason = format!(
                    "{n} wrong passwords or unknown users within {} s",
                    window.as_secs()
                );
                self.ban(now, unix, BanKey::Address(src.ip()), reason, false);
            }
            return;
        }
        // A trusted address: the port and the user guessed, and the address as a whole
        // only past ten times as many (then only phones get through).
        let mut bans = Vec::new();
        let total = st.wrong.hit(now, window);
        if total >= after.saturating_mul(10) {
            st.wrong = Counter::new(now);
            bans.push((
                BanKey::Address(src.ip()),
                format!("{total} wrong passwords or unknown users within {} s from many ports (phones that authenticated still get through)", window.as_secs()),
                true,
            ));
        }
        if st.ports.len() >= MAX_PER_ADDRESS && !st.ports.contains_key(&src.port()) {
            st.ports
                .retain(|_, c| now.saturating_duration_since(c.since) < window);
        }
        if st.users.len() >= MAX_PER_ADDRESS && !st.users.contains_key(user) {
            st.users
                .retain(|_, c| now.saturating_duration_since(c.since) < window);
        }
        if st.ports.len() < MAX_PER_ADDRESS || st.ports.contains_key(&src.port()) {
            let c = st.ports.entry(src.port()).or_insert(Counter::new(now));
            let n = c.hit(now, window);
            if n >= after {
                *c = Counter::new(now);
                bans.push((
                    BanKey::Port(src),
                    format!("{n} {what} within {} s from this port", window.as_secs()),
                    false,
                ));
            }
        }
        if known
            && !user.is_empty()
            && (st.users.len() < MAX_PER_ADDRESS || st.users.contains_key(user))
        {
            let c = st
                .users
                .entry(user.to_string())
                .or_insert(Counter::new(now));
            let n = c.hit(now, window);
            if n >= after {
                *c = Counter::new(now);
                bans.push((
                    BanKey::User(src.ip(), user.to_string()),
                    format!(
                        "{n} wrong passwords for this user within {} s",
                        window.as_secs()
                    ),
                    false,
                ));
            }
        }
        for (key, reason, spare) in bans {
            match key {
                BanKey::Port(sa) => self.ban_port(now, unix, sa, reason),
                key => self.ban(now, unix, key, reason, spare),
            }
        }
    }

    /// A request authenticated as `user`: its address is trusted, and the port is a
    /// phone's that address and user bans spare.
    pub fn authenticated(&mut self, now: Instant, src: SocketAddr, user: &str) {
        let trust = self.settings.trust_time;
        let Some(st) = self.state(now, src.ip()) else {
            return;
        };
        st.trusted_until = Some(now + trust);
        st.challenges = Counter::new(now);
        if let Some(i) = st
            .phones
            .iter()
            .position(|(u, p)| u == user && *p == src.port())
        {
            st.phones.remove(i);
        } else if st.phones.len() >= MAX_PHONES {
            st.phones.pop_front();
        }
        st.phones.push_back((user.to_string(), src.port()));
    }

    fn ban(&mut self, now: Instant, unix: u64, key: BanKey, reason: String, spare_phones: bool) {
        if self.active(&key, now).is_some() {
            return;
        }
        if !self.bans.contains_key(&key) && self.bans.len() >= MAX_BANS {
            // Full (a flood of bans): the one ending soonest makes room, so the newest
            // offender is always shut out.
            self.bans.retain(|_, b| b.until > now);
            if self.bans.len() >= MAX_BANS {
                if let Some(k) = self
                    .bans
                    .iter()
                    .min_by_key(|(_, b)| b.until)
                    .map(|(k, _)| k.clone())
                {
                    self.bans.remove(&k);
                }
            }
        }
        if !self.offences.contains_key(&key) && self.offences.len() >= 2 * MAX_BANS {
            self.offences
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < OFFENCE_MEMORY);
        }
        let offence = if self.offences.contains_key(&key) || self.offences.len() < 2 * MAX_BANS {
            let e = self.offences.entry(key.clone()).or_insert((0, now));
            if now.saturating_duration_since(e.1) >= OFFENCE_MEMORY {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = now;
            e.0
        } else {
            1 // the escalation table is full: a first offence
        };
        let time = self.settings.ban_times[(offence as usize - 1).min(2)];
        let minutes = time.as_secs() / 60;
        tracing::warn!(target: "security", %key, minutes, offence, "SIP source banned: {reason}");
        self.event(
            unix,
            &key,
            format!("SIP ban for {} ({}): {reason}", span(time), key.kind()),
        );
        self.bans.insert(
            key,
            Ban {
                until: now + time,
                since_unix: unix,
                until_unix: unix + time.as_secs(),
                reason,
                offence,
                spare_phones,
            },
        );
        self.recount_user_bans();
        self.dirty = true;
    }

    /// Bans one source port of an address; past [`MAX_PORT_BANS`] of them the address
    /// itself, sparing the ports its phones authenticated from.
    fn ban_port(&mut self, now: Instant, unix: u64, src: SocketAddr, reason: String) {
        let ip = src.ip();
        let ports = self
            .bans
            .iter()
            .filter(|(k, b)| b.until > now && matches!(k, BanKey::Port(sa) if sa.ip() == ip))
            .count();
        if ports >= MAX_PORT_BANS {
            let reason = format!(
                "{reason}, from more than {MAX_PORT_BANS} ports (phones that authenticated still get through)"
            );
            self.ban(now, unix, BanKey::Address(ip), reason, true);
        } else {
            self.ban(now, unix, BanKey::Port(src), reason, false);
        }
    }

    fn recount_user_bans(&mut self) {
        self.user_bans = self
            .bans
            .keys()
            .filter(|k| matches!(k, BanKey::User(..)))
            .count();
    }

    fn event(&mut self, unix: u64, key: &BanKey, event: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        let user = match key {
            BanKey::User(_, u) => u.clone(),
            _ => String::new(),
        };
        let address = match key {
            BanKey::User(ip, _) => ip.to_string(),
            k => k.to_string(),
        };
        self.events.push_back(SecurityEvent {
            unix,
            address,
            user,
            event,
        });
    }

    /// Once a second: bans that ran out end (a security event each) and idle
    /// addresses are forgotten.
    pub fn tick(&mut self, now: Instant, unix: u64) {
        let ended: Vec<BanKey> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            self.bans.remove(&k);
            tracing::info!(target: "security", key = %k, "SIP ban ended");
            self.event(unix, &k, "SIP ban ended".into());
            self.dirty = true;
        }
        self.recount_user_bans();
        self.prune(now);
    }

    fn prune(&mut self, now: Instant) {
        self.pruned = Some(now);
        let window = self.settings.window;
        let banned: std::collections::HashSet<IpAddr> = self.bans.keys().map(|k| k.ip()).collect();
        self.addrs.retain(|ip, st| {
            st.trusted(now)
                || now.saturating_duration_since(st.last) < window
                || banned.contains(ip)
        });
    }

    /// The administrator `by` lifts a ban (and forgives the source's count).
    pub fn lift(&mut self, unix: u64, key: &BanKey, by: &str) -> bool {
        if self.bans.remove(key).is_none() {
            return false;
        }
        self.offences.remove(key);
        if let Some(st) = self.addrs.get_mut(&key.ip()) {
            let now = st.last;
            match key {
                BanKey::Address(_) => {
                    st.wrong = Counter::new(now);
                    st.challenges = Counter::new(now);
                    st.tokens = 2.0 * self.settings.rate as f64;
                }
                BanKey::Port(sa) => {
                    st.ports.remove(&sa.port());
                }
                BanKey::User(_, u) => {
                    st.users.remove(u);
                }
            }
        }
        tracing::info!(target: "security", %key, by, "SIP ban lifted by the administrator");
        self.event(
            unix,
            key,
            format!("SIP ban lifted by the administrator ({by})"),
        );
        self.recount_user_bans();
        self.dirty = true;
        true
    }

    /// The bans in force, the newest first.
    pub fn bans(&self, now: Instant) -> Vec<BanView> {
        let mut v: Vec<BanView> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(k, b)| BanView {
                key: k.to_string(),
                kind: k.kind().into(),
                address: k.ip().to_string(),
                port: match k {
                    BanKey::Port(sa) => Some(sa.port()),
                    _ => None,
                },
                user: match k {
                    BanKey::User(_, u) => Some(u.clone()),
                    _ => None,
                },
                reason: b.reason.clone(),
                since: b.since_unix,
                until: b.until_unix,
                seconds_left: b.until.saturating_duration_since(now).as_secs(),
                offence: b.offence,
                spares_phones: b.spare_phones,
            })
            .collect();
        v.sort_by(|a, b| b.since.cmp(&a.since).then(a.key.cmp(&b.key)));
        v
    }

    /// Whether the bans changed since the last call (the driver saves them then).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Security events since the last call, oldest first.
    pub fn take_events(&mut self, unix: u64) -> Vec<SecurityEvent> {
        let mut v: Vec<SecurityEvent> = self.events.drain(..).collect();
        if self.events_dropped > 0 {
            v.insert(
                0,
                SecurityEvent {
                    unix,
                    address: String::new(),
                    user: String::new(),
                    event: format!(
                        "{} SIP security events were not logged (too many at once)",
                        std::mem::take(&mut self.events_dropped)
                    ),
                },
            );
        }
        v
    }

    /// The bans in force as JSON, for the store.
    pub fn export(&self, now: Instant) -> Vec<u8> {
        let list: Vec<Stored> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(k, b)| Stored {
                key: k.to_string(),
                reason: b.reason.clone(),
                since: b.since_unix,
                until: b.until_unix,
                offence: b.offence,
                spare_phones: b.spare_phones,
                phones: if b.spare_phones {
                    self.addrs
                        .get(&k.ip())
                        .map(|s| s.phones.iter().cloned().collect())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect();
        serde_json::to_vec(&list).expect("bans serialise")
    }

    /// Takes back saved bans (those that ran out meanwhile are dropped); false when the
    /// blob cannot be read.
    pub fn import(&mut self, blob: &[u8], now: Instant, unix: u64) -> bool {
        let Ok(list) = serde_json::from_slice::<Vec<Stored>>(blob) else {
            return false;
        };
        for s in list.into_iter().take(MAX_BANS) {
            let Some(key) = BanKey::parse(&s.key) else {
                continue;
            };
            if s.until <= unix {
                continue;
            }
            // Never longer than the ban was made for, nor than the longest ban (a clock
            // that was wrong at the ban or is wrong now).
            let longest = self.settings.ban_times[2].as_secs();
            let left = (s.until - unix)
                .min(s.until.saturating_sub(s.since))
                .min(longest);
            let left = Duration::from_secs(left);
            if s.spare_phones {
                let burst = self.burst();
                let trust = self.settings.trust_time;
                let st = self
                    .addrs
                    .entry(key.ip())
                    .or_insert_with(|| AddrState::new(now, burst));
                st.trusted_until = Some(now + trust);
                // Phones restored with their registrations stay; the saved ones join.
                for p in s.phones {
                    if st.phones.len() < MAX_PHONES && !st.phones.contains(&p) {
                        st.phones.push_back(p);
                    }
                }
            }
            self.offences.insert(key.clone(), (s.offence.max(1), now));
            self.bans.insert(
                key,
                Ban {
                    until: now + left,
                    since_unix: s.since,
                    until_unix: s.until,
                    reason: s.reason,
                    offence: s.offence.max(1),
                    spare_phones: s.spare_phones,
                },
            );
        }
        self.recount_user_bans();
        true
    }
}

fn span(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        let h = s / 3600;
        format!("{h} hour{}", if h == 1 { "" } else { "s" })
    } else if s >= 60 {
        let m = s / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn none(_: IpAddr) -> bool {
        false
    }

    #[test]
    fn keys_read_back() {
        for s in [
            "192.0.2.7",
            "192.0.2.7:5070",
            "[2001:db8::7]:5070",
            "alice@192.0.2.7",
            "alice@[2001:db8::7]",
        ] {
            let k = BanKey::parse(s).unwrap();
            assert_eq!(k.to_string(), s);
        }
        assert!(BanKey::parse("nonsense").is_none());
        assert!(BanKey::parse("@192.0.2.7").is_none());
        assert!(BanKey::parse("").is_none());
    }

    #[test]
    fn an_untrusted_address_is_banned_whole_and_bans_escalate() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let a = src("192.0.2.7:5060");
        for _ in 0..9 {
            g.wrong(t0, 1000, a, "101", true, none);
        }
        assert!(g.admit(t0, 1000, a, true, none));
        g.wrong(t0, 1000, a, "101", true, none);
        assert!(!g.admit(t0, 1000, a, true, none));
        assert!(!g.admit(t0, 1000, src("192.0.2.7:5999"), false, none));
        let b = g.bans(t0);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].key.as_str(), b[0].seconds_left, b[0].offence),
            ("192.0.2.7", 600, 1)
        );
        assert!(g.take_dirty());
        let ev = g.take_events(1000);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].event.starts_with("SIP ban for 10 minutes"), "{ev:?}");
        // It ends; a second offence within the day gets an hour, a third a day.
        let t1 = t0 + Duration::from_secs(601);
        g.tick(t1, 1601);
        assert!(g.admit(t1, 1601, a, true, none));
        assert_eq!(g.take_events(1601)[0].event, "SIP ban ended");
        for _ in 0..10 {
            g.wrong(t1, 1601, a, "101", false, none);
        }
        assert_eq!(g.bans(t1)[0].seconds_left, 3600);
        let t2 = t1 + Duration::from_secs(3601);
        g.tick(t2, 5202);
        for _ in 0..10 {
            g.wrong(t2, 5202, a, "x", false, none);
        }
        assert_eq!(g.bans(t2)[0].seconds_left, 24 * 3600);
        assert_eq!(g.bans(t2)[0].offence, 3);
    }

    #[test]
    fn challenges_never_ban_a_trusted_address_and_floods_ban_an_untrusted_one() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let phone = src("192.0.2.7:5060");
        g.authenticated(t0, phone, "101");
        for _ in 0..1000 {
            g.challenged(t0, 0, src("192.0.2.7:6000"), none);
        }
        assert!(g.bans(t0).is_empty());
        // A scanner's requests are challenged and never answered.
        let scan = src("198.51.100.1:5060");
        for _ in 0..99 {
            g.challenged(t0, 0, scan, none);
        }
        assert!(g.bans(t0).is_empty());
        // A phone's ordinary round resets the count.
        g.authenticated(t0, scan, "102");
        g.challenged(t0, 0, scan, none);
        assert!(g.bans(t0).is_empty());
        let other = src("198.51.100.2:5060");
        for _ in 0..100 {
            g.challenged(t0, 0, other, none);
        }
        assert_eq!(g.bans(t0)[0].key, "198.51.100.2");
        assert!(g.bans(t0)[0].reason.contains("challenges unanswered"));
    }

    #[test]
    fn behind_one_nat_the_guesser_is_cut_off_and_the_phones_keep_working() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let good = src("192.0.2.7:5060");
        let good2 = src("192.0.2.7:5062");
        g.authenticated(t0, good, "101");
        g.authenticated(t0, good2, "102");
        // One device guesses 101's password from one port.
        let bad = src("192.0.2.7:40000");
        for _ in 0..10 {
            g.wrong(t0, 0, bad, "101", true, none);
        }
        let keys: Vec<String> = g.bans(t0).into_iter().map(|b| b.key).collect();
        assert!(keys.contains(&"192.0.2.7:40000".to_string()), "{keys:?}");
        assert!(keys.contains(&"101@192.0.2.7".to_string()), "{keys:?}");
        assert!(!g.admit(t0, 0, bad, true, none));
        assert!(g.admit(t0, 0, good, true, none));
        assert!(g.admit(t0, 0, good2, true, none));
        // The user ban spares the phone that authenticated as 101 from its port ...
        assert!(g.admit_request(t0, 0, good, None, &["101", "101"], none));
        // ... but not another port naming 101.
        assert!(!g.admit_request(t0, 0, src("192.0.2.7:40001"), None, &["101"], none));
        assert!(g.admit_request(t0, 0, src("192.0.2.7:40001"), None, &["103"], none));
        // Guesses from ever new ports: the address is shut but for its phones.
        for i in 0..100u16 {
            g.wrong(
                t0,
                0,
                src(&format!("192.0.2.7:{}", 41000 + i)),
                &format!("u{i}"),
                false,
                none,
            );
        }
        let addr = g
            .bans(t0)
            .into_iter()
            .find(|b| b.kind == "address")
            .unwrap();
        assert!(addr.spares_phones);
        assert!(!g.admit(t0, 0, src("192.0.2.7:42000"), true, none));
        assert!(g.admit(t0, 0, good, true, none));
        assert!(g.admit(t0, 0, good2, true, none));
        // Saved and taken back, the phones are still spared.
        let blob = g.export(t0);
        let mut h = Guard::new(GuardSettings::default());
        assert!(h.import(&blob, t0, 0));
        assert_eq!(h.bans(t0).len(), g.bans(t0).len());
        assert!(h.admit(t0, 0, good, true, none));
        assert!(!h.admit(t0, 0, src("192.0.2.7:42000"), true, none));
        assert!(!h.admit(t0, 0, bad, true, none));
    }

    #[test]
    fn scanners_are_dropped_and_banned_and_the_allow_list_is_never_banned() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let s = src("203.0.113.9:5060");
        assert!(!g.admit_request(t0, 0, s, Some("friendly-scanner"), &[], none));
        assert_eq!(g.bans(t0)[0].key, "203.0.113.9");
        assert!(g.bans(t0)[0].reason.contains("friendly-scanner"));
        // From a trusted address only the scanner's port.
        g.authenticated(t0, src("192.0.2.7:5060"), "101");
        assert!(!g.admit_request(t0, 0, src("192.0.2.7:5070"), Some("sipcli/v1.8"), &[], none));
        assert_eq!(
            g.bans(t0)
                .iter()
                .filter(|b| b.key == "192.0.2.7:5070")
                .count(),
            1
        );
        assert!(g.admit_request(
            t0,
            0,
            src("192.0.2.7:5060"),
            Some("Yealink SIP-T46S"),
            &[],
            none
        ));
        // The allow list: dropped scanner messages, but never a ban.
        let office = |ip: IpAddr| ip == "198.51.100.5".parse::<IpAddr>().unwrap();
        let o = src("198.51.100.5:5060");
        assert!(!g.admit_request(t0, 0, o, Some("friendly-scanner"), &[], office));
        for _ in 0..50 {
            g.wrong(t0, 0, o, "101", true, office);
            g.challenged(t0, 0, o, office);
        }
        for _ in 0..2000 {
            assert!(g.admit(t0, 0, o, true, office));
        }
        assert!(g.bans(t0).iter().all(|b| b.address != "198.51.100.5"));
    }

    #[test]
    fn a_request_flood_bans_an_untrusted_address_and_trims_a_trusted_one() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let f = src("203.0.113.9:5060");
        let admitted = (0..2000).filter(|_| g.admit(t0, 0, f, true, none)).count();
        assert_eq!(admitted, 600, "the burst");
        assert!(g.bans(t0)[0].reason.contains("flood"));
        // Responses and other addresses are not held back.
        let p = src("192.0.2.7:5060");
        g.authenticated(t0, p, "101");
        let admitted = (0..2000).filter(|_| g.admit(t0, 0, p, true, none)).count();
        assert_eq!(admitted, 600);
        assert!(g.bans(t0).iter().all(|b| b.address != "192.0.2.7"));
        // A second later 300 more get through.
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..2000).filter(|_| g.admit(t1, 0, p, true, none)).count();
        assert_eq!(admitted, 300);
        assert!(g.admit(t1, 0, p, false, none), "a response");
    }

    #[test]
    fn lifting_forgives_and_tables_stay_bounded() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let a = src("192.0.2.7:5060");
        for _ in 0..10 {
            g.wrong(t0, 0, a, "101", true, none);
        }
        assert!(g.lift(5, &BanKey::parse("192.0.2.7").unwrap(), "Admin"));
        assert!(!g.lift(5, &BanKey::parse("192.0.2.7").unwrap(), "Admin"));
        assert!(g.admit(t0, 0, a, true, none));
        let ev = g.take_events(5);
        assert_eq!(
            ev.last().unwrap().event,
            "SIP ban lifted by the administrator (Admin)"
        );
        // A flood from ever new (spoofed) addresses.
        for i in 0..(MAX_ADDRESSES as u32 + 5000) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            g.challenged(t0, 0, SocketAddr::new(ip.into(), 5060), none);
        }
        assert!(g.addrs.len() <= MAX_ADDRESSES);
        // A minute later they are forgotten.
        g.tick(t0 + Duration::from_secs(61), 61);
        assert!(g.addrs.len() < 10);
    }

    #[test]
    fn spoofed_scanners_never_cut_a_phone_and_many_ports_shut_the_address() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        let phone = src("192.0.2.7:5060");
        g.authenticated(t0, phone, "101");
        // A scanner's user agent "from" the phone's port: that message only.
        assert!(!g.admit_request(t0, 0, phone, Some("friendly-scanner"), &[], none));
        assert!(g.bans(t0).is_empty());
        assert!(g.admit(t0, 0, phone, true, none));
        // From ever new ports: 16 port bans, then the address but for its phones.
        for p in 0..17u16 {
            let s = src(&format!("192.0.2.7:{}", 30000 + p));
            assert!(!g.admit_request(t0, 0, s, Some("sipvicious"), &[], none));
        }
        let b = g.bans(t0);
        assert_eq!(b.iter().filter(|b| b.kind == "port").count(), 16);
        let addr = b.iter().find(|b| b.kind == "address").unwrap();
        assert!(addr.spares_phones, "{addr:?}");
        assert!(g.admit(t0, 0, phone, true, none));
        assert!(!g.admit(t0, 0, src("192.0.2.7:40000"), true, none));
        // Added to the allow group afterwards, the address is let in at once.
        let office = |ip: IpAddr| ip == "192.0.2.7".parse::<IpAddr>().unwrap();
        assert!(g.admit(t0, 0, src("192.0.2.7:40000"), true, office));
    }

    #[test]
    fn a_full_ban_table_makes_room_and_restored_bans_are_never_longer_than_made() {
        let t0 = Instant::now();
        let mut g = Guard::new(GuardSettings::default());
        for i in 0..(MAX_BANS as u32 + 10) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let s = SocketAddr::new(ip.into(), 5060);
            g.admit_request(t0, 0, s, Some("friendly-scanner"), &[], none);
        }
        assert_eq!(g.bans(t0).len(), MAX_BANS);
        // The newest offender is always shut out.
        let last = SocketAddr::new(
            std::net::Ipv4Addr::from(0x0a00_0000 + MAX_BANS as u32 + 9).into(),
            5060,
        );
        assert!(!g.admit(t0, 0, last, true, none));
        // A saved ban whose clock is off by years comes back no longer than it was made.
        let blob = br#"[{"key": "198.51.100.1", "reason": "x", "since": 100, "until": 700, "offence": 1}]"#;
        let mut h = Guard::new(GuardSettings::default());
        assert!(h.import(blob, t0, 50));
        assert_eq!(h.bans(t0)[0].seconds_left, 600);
        let blob = br#"[{"key": "198.51.100.1", "reason": "x", "since": 0, "until": 18446744073709551615, "offence": 9}]"#;
        assert!(h.import(blob, t0, 50));
        assert_eq!(h.bans(t0)[0].seconds_left, 24 * 3600);
        assert!(!h.import(b"not json", t0, 50));
    }
}
