//! Peers: SIP interfaces to providers and links to other PBXs. Their resolved
//! addresses (the driver resolves DNS names and hands the answer in), the registration
//! we keep with them (REGISTER, digest answer, refresh before expiry, retry with
//! back-off) and OPTIONS keepalives that notice a dead trunk.

use crate::{build, Owner, Pbx, Target};
use config::{LinkMode, Transport};
use serde::Serialize;
use sip::transaction::ClientKey;
use sip::transport::Proto;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What the driver needs to resolve for a peer whose host is a DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub peer: String,
    pub host: String,
    /// 0 = use SRV (RFC 3263).
    pub port: u16,
    pub proto: Proto,
}

/// A peer as `pbxctl status` and the web show it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub name: String,
    /// `interface` or `link`.
    pub kind: String,
    pub enabled: bool,
    pub address: Option<SocketAddr>,
    /// `off`, `registering`, `registered`, `failed`.
    pub registration: String,
    /// Why the last registration failed, or when it is due again.
    pub detail: String,
    /// Seconds until the registration runs out (0 when not registered).
    pub expires_in: u64,
    /// `off`, `unknown`, `up`, `down`.
    pub keepalive: String,
    pub calls: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegState {
    Registering,
    Registered(Instant),
    Failed(String),
}

pub(crate) struct RegClient {
    call_id: String,
    tag: String,
    cseq: u32,
    state: RegState,
    /// When to send the next REGISTER.
    next: Instant,
    backoff: Duration,
    /// The last REGISTER carried credentials (a second challenge means wrong ones).
    authed: bool,
    /// A REGISTER is out.
    pending: bool,
}

#[derive(Default)]
pub(crate) struct Peer {
    /// Host, port and transport as configured, to notice a change.
    host: (String, u16, Proto),
    /// What the registration depends on (user, auth user, password, expires, external
    /// address), to start it afresh when one changes.
    reg_key: [String; 5],
    pub addrs: Vec<SocketAddr>,
    pub reg: Option<RegClient>,
    /// Keepalive: `None` = off; `Some(None)` = not known yet.
    pub alive: Option<Option<bool>>,
    next_options: Option<Instant>,
    options_pending: bool,
}

/// The settings of a peer that the machinery needs, from an interface or a link.
pub(crate) struct PeerConf {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub proto: Proto,
    pub user: String,
    pub auth_user: String,
    pub password: String,
    pub register: bool,
    pub expires: u32,
    pub external_ip: String,
    pub keepalive: u32,
    pub codecs: Vec<String>,
    pub from_domain: String,
    pub nat: bool,
    pub max_calls: u32,
    pub peer_registers: bool,
    /// Audio with it is SRTP only (SDES keys).
    pub srtp: bool,
}

impl Pbx {
    pub(crate) fn peer_conf(&self, name: &str) -> Option<PeerConf> {
        peer_conf_of(&self.snapshot, name)
    }
}

/// How we reach a peer configured with `t` (WS and WSS are for phones only).
pub(crate) fn proto_of(t: Transport) -> Proto {
    match t {
        Transport::Tcp => Proto::Tcp,
        Transport::Tls => Proto::Tls,
        _ => Proto::Udp,
    }
}

/// The settings of an enabled interface or link.
pub(crate) fn peer_conf_of(s: &config::Snapshot, name: &str) -> Option<PeerConf> {
    {
        if let Some(i) = s.interface(name).filter(|i| i.enabled) {
            return Some(PeerConf {
                name: i.name.clone(),
                host: i.host.clone(),
                port: i.port,
                proto: proto_of(i.transport),
                user: i.username.clone(),
                auth_user: i.auth_name().to_string(),
                password: i.password.clone(),
                register: i.register,
                expires: i.register_expires,
                external_ip: i.external_ip.clone(),
                keepalive: i.keepalive,
                codecs: i.codecs.clone(),
                from_domain: i.host.clone(),
                nat: false,
                max_calls: i.max_calls,
                peer_registers: false,
                srtp: i.srtp,
            });
        }
        let l = s.link(name).filter(|l| l.enabled)?;
        Some(PeerConf {
            name: l.name.clone(),
            host: l.host.clone(),
            port: l.port,
            proto: proto_of(l.transport),
            user: l.username.clone(),
            auth_user: l.username.clone(),
            password: l.password.clone(),
            register: l.mode == LinkMode::WeRegister,
            expires: l.register_expires,
            external_ip: String::new(),
            keepalive: if l.mode == LinkMode::Direct {
                l.keepalive
            } else {
                0
            },
            codecs: l.codecs.clone(),
            from_domain: l.from_domain.clone(),
            nat: l.nat,
            max_calls: 0,
            peer_registers: l.mode == LinkMode::PeerRegisters,
            srtp: l.srtp,
        })
    }
}

impl Pbx {
    fn peer_names(&self) -> Vec<String> {
        let c = &self.snapshot.config;
        c.sip_interfaces
            .iter()
            .filter(|i| i.enabled)
            .map(|i| i.name.clone())
            .chain(
                c.links
                    .iter()
                    .filter(|l| l.enabled && l.mode != LinkMode::PeerRegisters)
                    .map(|l| l.name.clone()),
            )
            .collect()
    }

    /// Brings the peers in line with the configuration (after a new snapshot). A new
    /// host forgets the addresses; new credentials or registration settings start the
    /// registration afresh, so a corrected password does not wait out the back-off.
    pub(crate) fn sync_peers(&mut self, now: Instant) {
        let names = self.peer_names();
        self.peers.retain(|n, _| names.contains(n));
        for name in names {
            let Some(pc) = self.peer_conf(&name) else {
                continue;
            };
            let host = (pc.host.clone(), pc.port, pc.proto);
            let reg_key = [
                pc.user.clone(),
                pc.auth_user.clone(),
                pc.password.clone(),
                pc.expires.to_string(),
                pc.external_ip.clone(),
            ];
            let (call_id, tag) = (format!("{}@pbxd", self.random_hex(24)), self.random_hex(10));
            let retry = self.settings.register_retry;
            let p = self.peers.entry(name).or_default();
            if p.host != host {
                p.addrs.clear();
                if let Ok(ip) = pc.host.parse::<IpAddr>() {
                    let port = match (pc.port, pc.proto) {
                        (0, Proto::Tls) => 5061,
                        (0, _) => 5060,
                        (p, _) => p,
                    };
                    p.addrs = vec![SocketAddr::new(ip, port)];
                }
                p.host = host;
                p.reg = None;
                p.alive = None;
            }
            if p.reg_key != reg_key {
                p.reg_key = reg_key;
                p.reg = None;
            }
            if !pc.register {
                p.reg = None;
            } else if p.reg.is_none() {
                p.reg = Some(RegClient {
                    call_id,
                    tag,
                    cseq: 0,
                    state: RegState::Registering,
                    next: now,
                    backoff: retry,
                    authed: false,
                    pending: false,
                });
            }
            if pc.keepalive == 0 {
                p.alive = None;
                p.next_options = None;
            } else if p.alive.is_none() {
                p.alive = Some(None);
                p.next_options = Some(now);
            }
        }
    }

    /// The names TLS peers must prove, by address: peers given by IP address first
    /// (their address), then those given by name (the name), so that a name pointed at
    /// another peer's address cannot change what that one must prove.
    pub fn tls_names(&self) -> Vec<(SocketAddr, String)> {
        let mut by_ip = Vec::new();
        let mut by_name = Vec::new();
        for p in self.peers.values().filter(|p| p.host.2 == Proto::Tls) {
            let ip = p.host.0.parse::<IpAddr>().is_ok();
            for a in &p.addrs {
                if ip {
                    by_ip.push((*a, a.ip().to_string()));
                } else {
                    by_name.push((*a, p.host.0.clone()));
                }
            }
        }
        by_ip.sort();
        by_name.sort();
        by_ip.extend(by_name);
        by_ip
    }

    /// Peers whose host is a DNS name, for the driver to resolve.
    pub fn lookups(&self) -> Vec<Lookup> {
        self.peers
            .iter()
            .filter(|(_, p)| p.host.0.parse::<IpAddr>().is_err() && !p.host.0.is_empty())
            .map(|(n, p)| Lookup {
                peer: n.clone(),
                host: p.host.0.clone(),
                port: p.host.1,
                proto: p.host.2,
            })
            .collect()
    }

    /// The driver's answer to a [`Lookup`]: addresses in the order to try.
    pub fn set_peer_addresses(&mut self, peer: &str, host: &str, addrs: Vec<SocketAddr>) {
        if let Some(p) = self.peers.get_mut(peer).filter(|p| p.host.0 == host) {
            let (mut old, mut new) = (p.addrs.clone(), addrs.clone());
            old.sort();
            new.sort();
            // The same addresses again: keep the order failures have taught us.
            if old != new {
                tracing::info!(peer, ?addrs, "peer address resolved");
                p.addrs = addrs;
            }
        }
    }

    /// The peer's first address failed (no answer, 503): the next one goes first now
    /// (RFC 3263 4.3); the failed one is tried last.
    pub(crate) fn next_address(&mut self, name: &str) {
        if let Some(p) = self.peers.get_mut(name).filter(|p| p.addrs.len() > 1) {
            p.addrs.rotate_left(1);
            tracing::info!(peer = name, next = %p.addrs[0], "trying the peer's next address");
        }
    }

    /// How many addresses the peer has (1 for a peer that registers to us).
    pub(crate) fn address_count(&self, pc: &PeerConf) -> usize {
        if pc.peer_registers {
            return 1;
        }
        self.peers.get(&pc.name).map_or(0, |p| p.addrs.len())
    }

    /// Where to send to a peer now, and how; `None` when it cannot be reached.
    pub(crate) fn peer_target(&self, pc: &PeerConf) -> Option<(Target, String)> {
        self.peer_target_at(pc, 0)
    }

    /// The same with the peer's `n`th address (DNS order).
    pub(crate) fn peer_target_at(&self, pc: &PeerConf, n: usize) -> Option<(Target, String)> {
        if pc.peer_registers {
            let user = &pc.user;
            let reg = self.registrations.get(user)?;
            let dest = reg.dest(pc.nat);
            let hostport = reg
                .contact
                .split_once('@')
                .map(|(_, h)| h)
                .unwrap_or_else(|| reg.contact.trim_start_matches("sip:"))
                .split([';', '>'])
                .next()
                .unwrap_or("")
                .to_string();
            return Some((
                Target {
                    proto: reg.proto(),
                    dest,
                },
                hostport,
            ));
        }
        let p = self.peers.get(&pc.name)?;
        let dest = *p.addrs.get(n)?;
        let proto = pc.proto;
        // Without a port the host alone is the target (5060, or the domain's SRV).
        let hostport = if pc.port != 0 {
            format!("{}:{}", pc.host, pc.port)
        } else {
            pc.host.clone()
        };
        Some((Target { proto, dest }, hostport))
    }

    /// Why a peer cannot take a call now, if it cannot.
    pub(crate) fn peer_unusable(&self, pc: &PeerConf) -> Option<&'static str> {
        if pc.peer_registers {
            return (!self.registrations.contains_key(&pc.user)).then_some("not registered to us");
        }
        let p = self.peers.get(&pc.name)?;
        if p.addrs.is_empty() {
            return Some("address not resolved");
        }
        if let Some(r) = &p.reg {
            if !matches!(r.state, RegState::Registered(_)) {
                return Some("not registered");
            }
        }
        if p.alive == Some(Some(false)) {
            return Some("not answering keepalives");
        }
        if pc.max_calls > 0 && self.peer_calls(&pc.name) >= pc.max_calls {
            return Some("no free channel");
        }
        None
    }

    pub(crate) fn peer_calls(&self, name: &str) -> u32 {
        self.calls
            .values()
            .filter(|c| !c.finished)
            .map(|c| {
                u32::from(c.caller_peer.as_deref() == Some(name))
                    + c.legs
                        .iter()
                        .filter(|l| {
                            l.peer.as_ref().is_some_and(|p| p.current() == name)
                                && !matches!(l.state, crate::calls::LegState::Done(_))
                        })
                        .count() as u32
            })
            .sum()
    }

    /// Our address towards `dest`, and what to put in Contact.
    pub(crate) fn local_towards(&self, pc: &PeerConf, target: Target) -> (SocketAddr, String) {
        let local = (self.local_for)(target.proto, target.dest);
        let contact_host = match pc.external_ip.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, local.port()),
            Err(_) => local,
        };
        (local, contact_host.to_string())
    }

    /// Sends what is due: registrations and keepalives. Called from the 1 s sweep.
    pub(crate) fn run_peers(&mut self, now: Instant) {
        let names: Vec<String> = self.peers.keys().cloned().collect();
        for name in names {
            let due_reg = self.peers[&name]
                .reg
                .as_ref()
                .is_some_and(|r| !r.pending && r.next <= now);
            if due_reg {
                self.send_register(now, &name, None);
            }
            let p = &self.peers[&name];
            if !p.options_pending && p.next_options.is_some_and(|t| t <= now) {
                self.send_options(now, &name);
            }
        }
    }

    fn send_register(&mut self, now: Instant, name: &str, auth: Option<(&str, String)>) {
        let Some(pc) = self.peer_conf(name) else {
            return;
        };
        let Some((target, hostport)) = self.peer_target(&pc) else {
            if let Some(r) = self.peers.get_mut(name).and_then(|p| p.reg.as_mut()) {
                r.state = RegState::Failed("address not resolved".into());
                r.next = now + Duration::from_secs(5);
            }
            return;
        };
        let (local, contact_host) = self.local_towards(&pc, target);
        let branch = self.branch();
        let Some(r) = self.peers.get_mut(name).and_then(|p| p.reg.as_mut()) else {
            return;
        };
        r.cseq += 1;
        r.pending = true;
        r.authed = auth.is_some();
        let ruri = format!("sip:{hostport}");
        let aor = format!("<sip:{}@{hostport}>", pc.user);
        let from = format!("{aor};tag={}", r.tag);
        let t = target.proto.uri_param();
        let contact = format!("<sip:{}@{contact_host}{t}>", pc.user);
        let mut extra = vec![("Expires", pc.expires.to_string())];
        if let Some((h, v)) = auth {
            extra.push((h, v));
        }
        let bytes = sip::build::Request {
            method: "REGISTER",
            uri: &ruri,
            via: &build::via(target.proto, local, &branch),
            from: &from,
            to: &aor,
            call_id: &r.call_id.clone(),
            cseq: r.cseq,
            contact: Some(&contact),
            extra: &extra,
            ..Default::default()
        }
        .build();
        tracing::debug!(peer = name, dest = %target.dest, "REGISTER");
        self.start_client(
            now,
            ClientKey::new(&branch, "REGISTER"),
            bytes,
            false,
            target,
            Owner::Register(name.to_string()),
            None,
        );
    }

    pub(crate) fn register_response(
        &mut self,
        now: Instant,
        name: &str,
        resp: &rsip::Response,
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        let Some(pc) = self.peer_conf(name) else {
            return;
        };
        let retry = self.settings.register_retry;
        let Some(r) = self.peers.get_mut(name).and_then(|p| p.reg.as_mut()) else {
            return;
        };
        r.pending = false;
        if (200..300).contains(&status) {
            let h = &resp.headers;
            let granted = sip::message::get_all(h, "Contact")
                .iter()
                .find_map(|c| {
                    sip::message::header_param(c, "expires").and_then(|e| e.parse::<u64>().ok())
                })
                .or_else(|| sip::message::get(h, "Expires").and_then(|e| e.trim().parse().ok()))
                .unwrap_or(pc.expires as u64)
                .clamp(1, 86_400); // a provider's absurd Expires must not overflow the clock
            r.state = RegState::Registered(now + Duration::from_secs(granted));
            r.next = now + Duration::from_secs((granted / 2).max(5).min(granted));
            r.backoff = retry;
            tracing::info!(peer = name, seconds = granted, "registered");
            return;
        }
        if (status == 401 || status == 407) && !r.authed {
            let header = if status == 401 {
                "WWW-Authenticate"
            } else {
                "Proxy-Authenticate"
            };
            let cnonce = self.random_hex(16);
            let hostport = self.peer_target(&pc).map(|t| t.1).unwrap_or_default();
            let answer = sip::auth::challenges(&resp.headers, header)
                .iter()
                .find_map(|c| {
                    c.answer(
                        "REGISTER",
                        &format!("sip:{hostport}"),
                        &pc.auth_user,
                        &pc.password,
                        &cnonce,
                    )
                });
            if let Some(a) = answer {
                let h = if status == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                return self.send_register(now, name, Some((h, a)));
            }
        }
        if status == 503 {
            self.next_address(name);
        }
        let why = match status {
            401 | 407 => "wrong user name or password".to_string(),
            408 => "no answer".to_string(),
            s => format!("{s} {}", resp.status_code),
        };
        let r = self
            .peers
            .get_mut(name)
            .and_then(|p| p.reg.as_mut())
            .expect("checked");
        tracing::warn!(peer = name, reason = %why, retry_in = r.backoff.as_secs(), "registration failed");
        r.state = RegState::Failed(why);
        r.next = now + r.backoff;
        r.backoff = (r.backoff * 2).min(Duration::from_secs(1800));
    }

    pub(crate) fn register_timed_out(&mut self, now: Instant, name: &str) {
        self.next_address(name);
        if let Some(r) = self.peers.get_mut(name).and_then(|p| p.reg.as_mut()) {
            r.pending = false;
            r.state = RegState::Failed("no answer".into());
            r.next = now + r.backoff;
            r.backoff = (r.backoff * 2).min(Duration::from_secs(1800));
        }
    }

    fn send_options(&mut self, now: Instant, name: &str) {
        let Some(pc) = self.peer_conf(name) else {
            return;
        };
        let Some((target, hostport)) = self.peer_target(&pc) else {
            if let Some(p) = self.peers.get_mut(name) {
                p.next_options = Some(now + Duration::from_secs(pc.keepalive.max(1) as u64));
            }
            return;
        };
        let (local, _) = self.local_towards(&pc, target);
        let branch = self.branch();
        let (cid, tag) = (format!("{}@pbxd", self.random_hex(24)), self.random_hex(10));
        let user = if pc.user.is_empty() { "pbx" } else { &pc.user };
        let bytes = sip::build::Request {
            method: "OPTIONS",
            uri: &format!("sip:{hostport}"),
            via: &build::via(target.proto, local, &branch),
            from: &format!("<sip:{user}@{local}>;tag={tag}"),
            to: &format!("<sip:{hostport}>"),
            call_id: &cid,
            cseq: 1,
            ..Default::default()
        }
        .build();
        if let Some(p) = self.peers.get_mut(name) {
            p.options_pending = true;
            p.next_options = Some(now + Duration::from_secs(pc.keepalive.max(1) as u64));
        }
        self.start_client(
            now,
            ClientKey::new(&branch, "OPTIONS"),
            bytes,
            false,
            target,
            Owner::Options(name.to_string()),
            None,
        );
    }

    pub(crate) fn options_result(&mut self, name: &str, alive: bool) {
        if !alive {
            self.next_address(name);
        }
        if let Some(p) = self.peers.get_mut(name) {
            p.options_pending = false;
            if p.alive.is_some() {
                if p.alive != Some(Some(alive)) {
                    tracing::info!(peer = name, alive, "keepalive");
                }
                p.alive = Some(Some(alive));
            }
        }
    }

    /// Every interface and link with its state.
    pub fn peers(&self, now: Instant) -> Vec<PeerStatus> {
        let c = &self.snapshot.config;
        let mut out = Vec::new();
        let rows = c
            .sip_interfaces
            .iter()
            .map(|i| (i.name.clone(), "interface", i.enabled))
            .chain(c.links.iter().map(|l| (l.name.clone(), "link", l.enabled)));
        for (name, kind, enabled) in rows {
            let p = self.peers.get(&name);
            let pc = self.peer_conf(&name);
            let (registration, detail, expires_in) = match (p.and_then(|p| p.reg.as_ref()), &pc) {
                (_, Some(pc)) if pc.peer_registers => match self.registrations.get(&pc.user) {
                    Some(r) => (
                        "registered".to_string(),
                        format!("registered to us from {}", r.source),
                        r.expires_at.saturating_sub(self.unix(now)),
                    ),
                    None => (
                        "off".into(),
                        "waiting for the other PBX to register".into(),
                        0,
                    ),
                },
                (Some(r), _) => match &r.state {
                    RegState::Registering => ("registering".into(), String::new(), 0),
                    RegState::Registered(until) => (
                        "registered".into(),
                        String::new(),
                        until.saturating_duration_since(now).as_secs(),
                    ),
                    RegState::Failed(why) => (
                        "failed".into(),
                        format!(
                            "{why}; retry in {} s",
                            r.next.saturating_duration_since(now).as_secs()
                        ),
                        0,
                    ),
                },
                _ => ("off".into(), String::new(), 0),
            };
            let keepalive = match p.and_then(|p| p.alive) {
                None => "off",
                Some(None) => "unknown",
                Some(Some(true)) => "up",
                Some(Some(false)) => "down",
            };
            let address = pc
                .as_ref()
                .and_then(|pc| self.peer_target(pc))
                .map(|t| t.0.dest);
            out.push(PeerStatus {
                calls: self.peer_calls(&name),
                name,
                kind: kind.into(),
                enabled,
                address,
                registration,
                detail,
                expires_in,
                keepalive: keepalive.into(),
            });
        }
        out
    }

    /// The interface or address-identified link a request from `ip` comes from.
    pub(crate) fn peer_from(&self, ip: IpAddr) -> Option<(String, bool)> {
        let c = &self.snapshot.config;
        for i in c.sip_interfaces.iter().filter(|i| i.enabled) {
            let by_addr = self
                .peers
                .get(&i.name)
                .is_some_and(|p| p.addrs.iter().any(|a| a.ip() == ip));
            let by_source = i
                .inbound_sources
                .iter()
                .any(|s| config::Subnet::parse(s).is_ok_and(|s| s.contains(ip)));
            if by_addr || by_source {
                return Some((i.name.clone(), false));
            }
        }
        for l in c
            .links
            .iter()
            .filter(|l| l.enabled && l.mode == LinkMode::Direct && l.password.is_empty())
        {
            if self
                .peers
                .get(&l.name)
                .is_some_and(|p| p.addrs.iter().any(|a| a.ip() == ip))
            {
                return Some((l.name.clone(), true));
            }
        }
        None
    }
}

pub(crate) type Peers = HashMap<String, Peer>;
