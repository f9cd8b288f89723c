//! The registrar: digest-authenticated REGISTER, Expires negotiation, one location per
//! account (the last registration wins), expiry.

use crate::{Pbx, ServerKey, Source};
use serde::{Deserialize, Serialize};
use sip::auth::{self, AuthOutcome};
use sip::build::Response;
use sip::message::{get, get_all, header_param, uri_part, uri_user};
use std::net::SocketAddr;
use std::time::Instant;

/// The digest credentials a request carries, in either header (phones use both).
pub(crate) fn credentials(req: &rsip::Request) -> impl Iterator<Item = auth::Credentials> + '_ {
    req.headers
        .iter()
        .map(sip::message::name_value)
        .filter(|(n, _)| {
            n.eq_ignore_ascii_case("Authorization") || n.eq_ignore_ascii_case("Proxy-Authorization")
        })
        .filter_map(|(_, v)| auth::parse_credentials(v))
}

/// Where an account can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub username: String,
    pub extension: String,
    /// Contact URI the phone registered.
    pub contact: String,
    /// Where the REGISTER came from (what NAT mode answers to).
    pub source: SocketAddr,
    /// Our address the phone reached.
    pub local: SocketAddr,
    /// `udp`, `tcp`, `tls` or `wss`.
    pub transport: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub user_agent: String,
}

impl Registration {
    /// Transport as the core's enum.
    pub fn proto(&self) -> sip::transport::Proto {
        sip::transport::Proto::from_name(&self.transport)
    }

    /// Where requests to the phone go ([`crate::build::dest_of`]).
    pub fn dest(&self, nat: bool) -> SocketAddr {
        crate::build::dest_of(self.proto(), nat, &self.contact, self.source)
    }
}

/// The outcome of checking a request's credentials against the configuration.
pub(crate) enum Authn {
    /// Authenticated as this account.
    Account(config::SipAccount),
    /// Authenticated with a link's credentials.
    Link(Box<config::Link>),
    /// A response was sent (challenge or refusal).
    Answered,
}

impl Pbx {
    /// Checks digest credentials in `header` ("Authorization" or "Proxy-Authorization")
    /// and the account's own rules; answers with a challenge or a refusal if needed.
    pub(crate) fn authenticate(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: &rsip::Request,
        header: &str,
    ) -> Authn {
        let (code, reason, challenge_header) = if header == "Authorization" {
            (401, "Unauthorized", "WWW-Authenticate")
        } else {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        };
        let method = req.method.to_string();
        // Phones put credentials in either header; take the first for our realm.
        let creds = credentials(req).find(|c| c.realm == self.settings.realm);
        let unix = self.unix(now);
        let account = creds
            .as_ref()
            .and_then(|c| self.snapshot.account(&c.username))
            .cloned();
        let link = creds
            .as_ref()
            .filter(|_| account.is_none())
            .and_then(|c| self.snapshot.link_by_user(&c.username))
            .filter(|l| !l.password.is_empty())
            .cloned();
        // A browser phone's account has the secret the portal gave its owner, while it
        // lasts (none: refused like an unknown name).
        let secret = match &account {
            Some(a) if a.is_web() => self.web_secret(&a.username, unix),
            Some(a) => Some(a.secret.as_str()),
            None => link.as_ref().map(|l| l.password.as_str()),
        };
        let outcome = auth::check(
            &self.nonces,
            &self.settings.realm,
            creds.as_ref(),
            &method,
            secret,
            unix,
        );
        let challenge = |pbx: &mut Pbx, stale: bool| {
            let realm = pbx.settings.realm.clone();
            // One challenge per configured algorithm, in order. Older phones (libre/baresip
            // 1.x among them) fail on any challenge whose algorithm they do not know, so
            // the default offers MD5 only; SHA-256 answers are accepted either way.
            let extra: Vec<(&str, String)> = pbx
                .settings
                .digest
                .clone()
                .into_iter()
                .map(|alg| {
                    (
                        challenge_header,
                        pbx.nonces.challenge(&realm, alg, unix, stale),
                    )
                })
                .collect();
            let tag = pbx.random_hex(10);
            let r = Response::to(req, code, reason)
                .tag(Some(&tag))
                .headers(&extra)
                .build();
            pbx.tx.challenge(now, key, code, r);
            Authn::Answered
        };
        let snap = self.snapshot.clone();
        match outcome {
            AuthOutcome::Missing => {
                let allowed = crate::guard::allow_list(&snap.config, &self.peers);
                self.guard.challenged(now, unix, src.remote, allowed);
                return challenge(self, false);
            }
            AuthOutcome::Stale => return challenge(self, true),
            AuthOutcome::Wrong => {
                let user = creds.as_ref().map(|c| c.username.as_str()).unwrap_or("");
                {
                    let allowed = crate::guard::allow_list(&snap.config, &self.peers);
                    self.guard
                        .wrong(now, unix, src.remote, user, secret.is_some(), allowed);
                }
                tracing::info!(remote = %src.remote, user = creds.as_ref().map(|c| c.username.as_str()).unwrap_or(""), "wrong SIP credentials");
                return self.refuse(
                    now,
                    key,
                    req,
                    403,
                    "Forbidden (wrong user name or password)",
                );
            }
            AuthOutcome::Ok => {}
        }
        // Trusted only once every check below passed (a leaked password for an account
        // held to another address must not make this one trusted).
        let user = creds
            .as_ref()
            .map(|c| c.username.clone())
            .unwrap_or_default();
        if let Some(l) = link {
            // A link set to TLS takes nothing else; no link comes over WebSocket.
            if (l.transport == config::Transport::Tls && src.proto != sip::transport::Proto::Tls)
                || src.proto == sip::transport::Proto::Wss
            {
                tracing::info!(link = %l.name, source = %src.remote, transport = src.proto.name(), "refused: the link takes only TLS");
                return self.refuse(now, key, req, 403, "Forbidden (transport not allowed)");
            }
            self.guard.authenticated(now, src.remote, &user);
            return Authn::Link(Box::new(l));
        }
        let account = account.expect("Ok implies an account");
        let ext = self.snapshot.extension(&account.extension).cloned();
        if !account.enabled {
            return self.refuse(now, key, req, 403, "Forbidden (account disabled)");
        }
        if !ext.as_ref().is_some_and(|e| e.enabled) {
            return self.refuse(now, key, req, 403, "Forbidden (extension disabled)");
        }
        if !account.allowed_source.is_empty() {
            let ok = config::Subnet::parse(&account.allowed_source)
                .is_ok_and(|s| s.contains(src.remote.ip()));
            if !ok {
                return self.refuse(now, key, req, 403, "Forbidden (source address not allowed)");
            }
        }
        let proto_ok = account.transports.iter().any(|t| match src.proto {
            sip::transport::Proto::Udp => *t == config::Transport::Udp,
            sip::transport::Proto::Tcp => *t == config::Transport::Tcp,
            sip::transport::Proto::Tls => *t == config::Transport::Tls,
            sip::transport::Proto::Wss => *t == config::Transport::Wss,
        });
        if !proto_ok {
            tracing::info!(user = %account.username, source = %src.remote, transport = src.proto.name(), allowed = ?account.transports, "refused: transport not allowed for the account");
            return self.refuse(now, key, req, 403, "Forbidden (transport not allowed)");
        }
        if self.snapshot.encrypts(&account) && src.proto != sip::transport::Proto::Tls {
            tracing::info!(user = %account.username, source = %src.remote, transport = src.proto.name(), "refused: the account encrypts calls");
            return self.refuse(
                now,
                key,
                req,
                403,
                "Forbidden (this account encrypts calls: use TLS)",
            );
        }
        self.guard.authenticated(now, src.remote, &user);
        Authn::Account(account)
    }

    /// A phone's WebSocket has closed: what it registered over it is gone (the box
    /// opens no WebSocket, so it cannot be reached until it connects and registers
    /// again), with the subscriptions it made, so a new call to it fails at once
    /// instead of waiting out a transaction. Registrations over other transports stay.
    pub fn connection_closed(&mut self, src: Source) {
        if src.proto != sip::transport::Proto::Wss {
            return;
        }
        let before = self.registrations.len();
        self.registrations
            .retain(|_, r| !(r.proto() == src.proto && r.source == src.remote));
        if self.registrations.len() != before {
            self.registrations_dirty = true;
            tracing::info!(source = %src.remote, "registration ended with its WebSocket");
        }
        // Its lamps' subscriptions cannot be notified any more either.
        self.drop_subscriptions_to(crate::Target {
            proto: src.proto,
            dest: src.remote,
        });
    }

    pub(crate) fn refuse(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &rsip::Request,
        code: u16,
        reason: &str,
    ) -> Authn {
        let tag = self.random_hex(10);
        let r = Response::to(req, code, reason).tag(Some(&tag)).build();
        self.respond(now, key, code, r);
        Authn::Answered
    }

    pub(crate) fn register(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: &rsip::Request,
    ) {
        let account = match self.authenticate(now, src, key, req, "Authorization") {
            Authn::Account(a) => a,
            Authn::Link(l) if l.mode == config::LinkMode::PeerRegisters => {
                // The other PBX registers to us like a phone (Ivoz's friends behind NAT).
                let mut a =
                    config::SipAccount::new(&l.username, &l.password, &format!("link:{}", l.name));
                a.nat = l.nat;
                a
            }
            Authn::Link(_) => {
                self.refuse(
                    now,
                    key,
                    req,
                    403,
                    "Forbidden (this link does not register to us)",
                );
                return;
            }
            Authn::Answered => return,
        };
        let to_user = get(&req.headers, "To")
            .map(uri_part)
            .and_then(uri_user)
            .unwrap_or("");
        if to_user != account.username {
            self.refuse(
                now,
                key,
                req,
                403,
                "Forbidden (To does not name the authenticated account)",
            );
            return;
        }
        let unix = self.unix(now);
        let contacts = get_all(&req.headers, "Contact");
        let header_expires: Option<u32> =
            get(&req.headers, "Expires").and_then(|e| e.trim().parse().ok());
        let tag = self.random_hex(10);
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                self.refuse(
                    now,
                    key,
                    req,
                    400,
                    "Bad Request (Contact * needs Expires: 0 and no other contact)",
                );
                return;
            }
            if self.registrations.remove(&account.username).is_some() {
                self.registrations_dirty = true;
            }
            let r = Response::to(req, 200, "OK").tag(Some(&tag)).build();
            self.respond(now, key, 200, r);
            return;
        }
        let mut notify = false;
        if let Some(c) = contacts.first() {
            let uri = match sip::message::target_uri(c) {
                Some(u) => u.to_string(),
                // Behind NAT requests go where the REGISTER came from anyway.
                None if account.nat => format!("sip:{}@{}", account.username, src.remote),
                None => {
                    self.refuse(
                        now,
                        key,
                        req,
                        400,
                        "Bad Request (the Contact is no SIP URI)",
                    );
                    return;
                }
            };
            let asked = header_param(c, "expires")
                .and_then(|e| e.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(self.settings.default_expires);
            if asked == 0 {
                let same = self
                    .registrations
                    .get(&account.username)
                    .is_some_and(|r| r.contact == uri);
                if (same || contacts.len() == 1)
                    && self.registrations.remove(&account.username).is_some()
                {
                    self.registrations_dirty = true;
                }
            } else if asked < self.settings.min_expires {
                let min = self.settings.min_expires.to_string();
                let r = Response::to(req, 423, "Interval Too Brief")
                    .tag(Some(&tag))
                    .headers(&[("Min-Expires", min)])
                    .build();
                self.respond(now, key, 423, r);
                return;
            } else {
                let granted = asked.min(self.settings.max_expires);
                let uri_of_new = uri.clone();
                let reg = Registration {
                    username: account.username.clone(),
                    extension: account.extension.clone(),
                    contact: uri,
                    source: src.remote,
                    local: src.local,
                    transport: src.proto.name().into(),
                    expires_at: unix + granted as u64,
                    user_agent: get(&req.headers, "User-Agent")
                        .unwrap_or("")
                        .chars()
                        .take(100)
                        .collect(),
                };
                let fresh = self
                    .registrations
                    .insert(account.username.clone(), reg)
                    .is_none_or(|old| old.contact != uri_of_new);
                self.registrations_dirty = true;
                // A phone that (re)appears learns of waiting messages at once, unless it
                // subscribes (its subscription says so).
                notify = fresh
                    && self.mailboxes.contains_key(&account.extension)
                    && !self.subscriptions.values().any(|s| {
                        s.username == account.username
                            && s.package == crate::mwi::Package::MessageSummary
                    });
            }
        }
        // The bindings now in force (RFC 3261 10.3 step 8).
        let binding = self.registrations.get(&account.username).map(|r| {
            format!(
                "<{}>;expires={}",
                r.contact,
                r.expires_at.saturating_sub(unix)
            )
        });
        let mut r = Response::to(req, 200, "OK")
            .tag(Some(&tag))
            .header("Allow", sip::build::ALLOW);
        if let Some(b) = &binding {
            r = r.contact(b);
        }
        let r = r.build();
        self.respond(now, key, 200, r);
        if notify {
            self.notify_unsolicited(now, &account.username);
        }
    }

    pub(crate) fn expire_registrations(&mut self, now: Instant) {
        let unix = self.unix(now);
        let before = self.registrations.len();
        self.registrations.retain(|_, r| r.expires_at > unix);
        if self.registrations.len() != before {
            self.registrations_dirty = true;
        }
    }
}
