//! Message-waiting indication (RFC 3842, over RFC 6665 subscriptions): the lamp on a
//! phone whose extension's voicemail box holds new messages.
//!
//! A phone subscribes (`SUBSCRIBE`, `Event: message-summary`) with its account's
//! credentials and always watches its own extension's box, whatever its Request-URI
//! names. The box answers 200, sends the state at once in a NOTIFY, again whenever the
//! box changes, and a last one when the subscription ends (refreshed by the phone, or
//! it expires). A phone that never subscribes gets the same NOTIFY out of any dialog
//! ("unsolicited", as most PBXs do) when the box changes and when it registers anew
//! while its box holds messages.
//!
//! The same subscriptions carry the busy lamps (`crate::blf`): `Event: dialog` (RFC
//! 4235) and `Event: presence` (RFC 3856 with PIDF and RPID) for an extension or a
//! parking slot named in the Request-URI.

use crate::{build, ClientKey, Owner, Pbx, ServerKey, Source, Target};
use sip::build::{Body, Response};
use sip::message::get;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The event package.
pub(crate) const EVENT: &str = "message-summary";

/// The body's media type (RFC 3842 section 7).
const CONTENT_TYPE: &str = "application/simple-message-summary";

/// Most message-waiting subscriptions one account may hold (a phone refreshing with
/// new dialogs after each reboot must not grow the table without end).
const PER_ACCOUNT: usize = 4;

/// Most busy-lamp subscriptions one account may hold (a phone with many BLF keys on
/// an expansion module).
const BLF_PER_ACCOUNT: usize = 100;

/// What a subscription watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Package {
    /// Its own extension's voicemail box (RFC 3842).
    MessageSummary,
    /// An extension's or a parking slot's calls (RFC 4235).
    Dialog,
    /// The same as presence (RFC 3856, PIDF with RPID's on-the-phone).
    Presence,
}

/// Every package the box serves, for `Allow-Events`.
pub(crate) const ALLOW_EVENTS: &str = "message-summary, dialog, presence";

impl Package {
    fn of(event: &str) -> Option<Package> {
        let name = event.split(';').next().unwrap_or("").trim();
        [Package::MessageSummary, Package::Dialog, Package::Presence]
            .into_iter()
            .find(|p| p.event().eq_ignore_ascii_case(name))
    }

    pub(crate) fn event(self) -> &'static str {
        match self {
            Package::MessageSummary => EVENT,
            Package::Dialog => "dialog",
            Package::Presence => "presence",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Package::MessageSummary => CONTENT_TYPE,
            Package::Dialog => "application/dialog-info+xml",
            Package::Presence => "application/pidf+xml",
        }
    }
}

/// A box as `pbxctl voicemail` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoxSummary {
    pub extension: String,
    pub new: usize,
    pub old: usize,
    pub temp_greeting: bool,
    /// Accounts subscribed to its message summary.
    pub subscribers: Vec<String>,
}

/// A phone watching its box, or a busy lamp.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub package: Package,
    pub username: String,
    /// The box's extension, or the extension or slot a lamp watches.
    pub ext: String,
    /// The dialog-info version of the next NOTIFY (RFC 4235 4.1: 0, 1, 2, ...).
    pub version: u32,
    /// The lamp's state as last sent.
    pub last: Option<crate::blf::LineState>,
    call_id: String,
    /// Our tag (the 200's To tag; the NOTIFYs' From tag).
    local_tag: String,
    /// The SUBSCRIBE's From (with its tag): our NOTIFYs' To.
    remote: String,
    /// The SUBSCRIBE's To without a tag: our NOTIFYs' From, with ours.
    local_uri: String,
    /// The phone's Contact: where NOTIFYs are addressed.
    remote_target: String,
    route: Vec<String>,
    target: Target,
    local: SocketAddr,
    cseq: u32,
    expires: Instant,
}

impl Pbx {
    /// Forgets the subscriptions whose NOTIFYs go to `target` (a connection that
    /// closed), without a NOTIFY.
    pub(crate) fn drop_subscriptions_to(&mut self, target: Target) {
        let before = self.subscriptions.len();
        self.subscriptions
            .retain(|_, s| !(s.target.proto == target.proto && s.target.dest == target.dest));
        if self.subscriptions.len() != before {
            tracing::debug!(dest = %target.dest, "subscriptions ended with their connection");
        }
    }

    /// An out-of-dialog SUBSCRIBE.
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: &rsip::Request,
    ) {
        let event = get(&req.headers, "Event").unwrap_or("");
        let Some(package) = Package::of(event) else {
            let tag = self.random_hex(10);
            let r = Response::to(req, 489, "Bad Event")
                .tag(Some(&tag))
                .header("Allow-Events", ALLOW_EVENTS)
                .build();
            return self.respond(now, key, 489, r);
        };
        let account = match self.authenticate(now, src, key, req, "Authorization") {
            crate::registrar::Authn::Account(a) => a,
            crate::registrar::Authn::Link(_) => {
                self.refuse(
                    now,
                    key,
                    req,
                    403,
                    "Forbidden (a link has no voicemail box)",
                );
                return;
            }
            crate::registrar::Authn::Answered => return,
        };
        // A lamp watches the extension or parking slot the Request-URI names.
        let watched = if package == Package::MessageSummary {
            account.extension.clone()
        } else {
            let ruri = req.uri.to_string();
            let user = sip::message::uri_user(&ruri).unwrap_or("").to_string();
            if self.snapshot.extension(&user).is_none() && !self.is_slot(&user) {
                self.refuse(
                    now,
                    key,
                    req,
                    404,
                    "Not Found (no such extension or parking slot)",
                );
                return;
            }
            user
        };
        let Some(expires) = self.subscription_expires(now, key, req) else {
            return;
        };
        if get(&req.headers, "Contact").is_none() {
            self.refuse(now, key, req, 400, "Bad Request (no Contact)");
            return;
        }
        // A Contact the exchange cannot send to: the From, then the source stand in.
        let remote_target = build::remote_target(&req.headers, src.remote);
        let k = sip::message::key(&req.headers);
        let from = get(&req.headers, "From").unwrap_or("").to_string();
        let to = get(&req.headers, "To").unwrap_or("").to_string();
        let local_tag = self.random_hex(10);
        let dest = build::dest_of(src.proto, account.nat, &remote_target, src.remote);
        let route: Vec<String> = sip::message::get_all(&req.headers, "Record-Route")
            .into_iter()
            .map(str::to_string)
            .collect();
        let sub = Subscription {
            package,
            username: account.username.clone(),
            ext: watched,
            version: 0,
            last: None,
            call_id: k.call_id.clone(),
            local_tag: local_tag.clone(),
            remote: from,
            local_uri: to,
            remote_target,
            route,
            target: Target {
                proto: src.proto,
                dest,
            },
            local: src.local,
            cseq: 0,
            expires: now + Duration::from_secs(expires.into()),
        };
        let contact = build::contact("pbx", src.proto, src.local);
        let r = Response::to(req, 200, "OK")
            .tag(Some(&local_tag))
            .contact(&contact)
            .header("Expires", expires.to_string())
            .build();
        self.respond(now, key, 200, r);
        let id = format!("{}|{local_tag}", k.call_id);
        tracing::debug!(user = %account.username, package = package.event(), expires, "subscription");
        if expires == 0 {
            // A fetch: the state once, and the subscription ends (RFC 6665 4.4.3).
            return self.notify_subscription(now, sub, Some("timeout"));
        }
        // One account keeps its newest few of each kind.
        let lamp = package != Package::MessageSummary;
        let mut mine: Vec<(Instant, String)> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| {
                s.username == account.username && (s.package != Package::MessageSummary) == lamp
            })
            .map(|(k, s)| (s.expires, k.clone()))
            .collect();
        if mine.len() >= if lamp { BLF_PER_ACCOUNT } else { PER_ACCOUNT } {
            mine.sort();
            for (_, old) in mine.into_iter().take(1) {
                if let Some(gone) = self.subscriptions.remove(&old) {
                    self.notify_subscription(now, gone, Some("deactivated"));
                }
            }
        }
        self.lamps |= lamp;
        self.subscriptions.insert(id.clone(), sub.clone());
        self.notify_subscription(now, sub, None);
    }

    /// The Expires a SUBSCRIBE gets, or `None` when it was answered with 423 or 400.
    fn subscription_expires(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &rsip::Request,
    ) -> Option<u32> {
        let asked = match get(&req.headers, "Expires") {
            None => self.settings.default_expires,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    self.refuse(now, key, req, 400, "Bad Request (Expires)");
                    return None;
                }
            },
        };
        if asked != 0 && asked < self.settings.min_expires {
            let tag = self.random_hex(10);
            let r = Response::to(req, 423, "Interval Too Brief")
                .tag(Some(&tag))
                .header("Min-Expires", self.settings.min_expires.to_string())
                .build();
            self.respond(now, key, 423, r);
            return None;
        }
        Some(asked.min(self.settings.max_expires))
    }

    /// Whether an in-dialog request belongs to a subscription.
    pub(crate) fn is_subscription(&self, call_id: &str, to_tag: &str) -> bool {
        self.subscriptions
            .contains_key(&format!("{call_id}|{to_tag}"))
    }

    /// A SUBSCRIBE within a subscription's dialog: a refresh, or its end (Expires: 0).
    pub(crate) fn resubscribe(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: &rsip::Request,
    ) {
        let k = sip::message::key(&req.headers);
        let id = format!("{}|{}", k.call_id, k.to_tag);
        let event = get(&req.headers, "Event").unwrap_or("");
        let package = Package::of(event);
        let ok = self.subscriptions.get(&id).is_some_and(|s| {
            sip::message::header_param(&s.remote, "tag") == Some(k.from_tag.as_str())
                && Some(s.package) == package
        });
        if !ok {
            let r = Response::to(req, 481, "Subscription Does Not Exist").build();
            return self.respond(now, key, 481, r);
        }
        let Some(expires) = self.subscription_expires(now, key, req) else {
            return;
        };
        let nat = self
            .subscriptions
            .get(&id)
            .and_then(|s| self.snapshot.account(&s.username))
            .is_none_or(|a| a.nat);
        let Some(sub) = self.subscriptions.get_mut(&id) else {
            let r = Response::to(req, 481, "Subscription Does Not Exist").build();
            return self.respond(now, key, 481, r);
        };
        // A refresh is a target refresh (RFC 6665 4.1.2.1): the phone may have moved.
        if let Some(c) = build::contact_uri(&req.headers) {
            sub.target.dest = build::dest_of(src.proto, nat, &c, src.remote);
            sub.remote_target = c;
        }
        sub.target.proto = src.proto;
        sub.local = src.local;
        sub.expires = now + Duration::from_secs(expires.into());
        let sub = sub.clone();
        let contact = build::contact("pbx", sub.target.proto, sub.local);
        let r = Response::to(req, 200, "OK")
            .contact(&contact)
            .header("Expires", expires.to_string())
            .build();
        self.respond(now, key, 200, r);
        let end = expires == 0;
        if end {
            self.subscriptions.remove(&id);
        }
        // An unsubscribe ends with no reason (RFC 6665 4.2.2: the subscriber asked).
        self.notify_subscription(now, sub, end.then_some(""));
    }

    /// A NOTIFY refused (481: the phone forgot the subscription) or unanswered (408):
    /// the subscription ends (RFC 6665 4.2.2).
    pub(crate) fn subscription_refused(&mut self, id: &str, status: u16) {
        if status >= 300 && self.subscriptions.remove(id).is_some() {
            tracing::debug!(status, "message-waiting subscription ended by the phone");
        }
    }

    /// Ends subscriptions that were not refreshed (a last NOTIFY says so).
    pub(crate) fn expire_subscriptions(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for id in gone {
            if let Some(sub) = self.subscriptions.remove(&id) {
                self.notify_subscription(now, sub, Some("timeout"));
            }
        }
    }

    /// The message-summary body of box `ext` (RFC 3842 section 5.2).
    fn summary(&self, ext: &str, host: SocketAddr) -> String {
        let (new, old) = self
            .mailboxes
            .get(ext)
            .map(|m| (m.new_count(), m.old_count()))
            .unwrap_or((0, 0));
        // The account a phone's voicemail key calls: the voicemail menu when it is on.
        let vm = &self.snapshot.config.feature_codes.voicemail;
        let user = if vm.is_empty() { ext } else { vm.as_str() };
        format!(
            "Messages-Waiting: {}\r\nMessage-Account: sip:{user}@{host}\r\nVoice-Message: {new}/{old} (0/0)\r\n",
            if new > 0 { "yes" } else { "no" }
        )
    }

    /// Sends a subscription's NOTIFY with the box's state; `end` ends the subscription
    /// with that reason (empty: none).
    pub(crate) fn notify_subscription(
        &mut self,
        now: Instant,
        mut sub: Subscription,
        end: Option<&str>,
    ) {
        let id = format!("{}|{}", sub.call_id, sub.local_tag);
        sub.cseq += 1;
        if let Some(s) = self.subscriptions.get_mut(&id) {
            s.cseq = sub.cseq;
        }
        let state = if let Some(reason) = end {
            if reason.is_empty() {
                "terminated".to_string()
            } else {
                format!("terminated;reason={reason}")
            }
        } else {
            let left = sub.expires.saturating_duration_since(now).as_secs();
            format!("active;expires={left}")
        };
        let body = match sub.package {
            Package::MessageSummary => self.summary(&sub.ext, sub.local),
            Package::Dialog | Package::Presence => {
                let mut state = self.line_state(&sub.ext);
                if !self.may_see_calls(&sub) {
                    state = state.redacted();
                }
                let body = crate::blf::body(&sub, &state, sub.local);
                sub.version += 1;
                sub.last = Some(state);
                if let Some(s) = self.subscriptions.get_mut(&id) {
                    s.version = sub.version;
                    s.last = sub.last.clone();
                }
                body
            }
        };
        let branch = self.branch();
        let via = build::via(sub.target.proto, sub.local, &branch);
        let from = format!("{};tag={}", sub.local_uri, sub.local_tag);
        let contact = build::contact("pbx", sub.target.proto, sub.local);
        let bytes = sip::build::Request {
            method: "NOTIFY",
            uri: &sub.remote_target,
            via: &via,
            from: &from,
            to: &sub.remote,
            call_id: &sub.call_id,
            cseq: sub.cseq,
            contact: Some(&contact),
            route: &sub.route,
            extra: &[
                ("Event", sub.package.event().to_string()),
                ("Subscription-State", state),
            ],
            body: Body::Typed {
                content_type: sub.package.content_type(),
                bytes: body.as_bytes(),
            },
        }
        .build();
        self.start_client(
            now,
            ClientKey::new(&branch, "NOTIFY"),
            bytes,
            false,
            sub.target,
            Owner::Subscription(id),
            None,
        );
    }

    /// Box `ext` changed: its subscribers hear the new state, and the registered
    /// phones of its extension that do not subscribe get it unsolicited.
    pub(crate) fn mailbox_changed(&mut self, now: Instant, ext: &str) {
        let subs: Vec<Subscription> = self
            .subscriptions
            .values()
            .filter(|s| s.ext == ext && s.package == Package::MessageSummary)
            .cloned()
            .collect();
        let watching: Vec<String> = subs.iter().map(|s| s.username.clone()).collect();
        for s in subs {
            self.notify_subscription(now, s, None);
        }
        let others: Vec<String> = self
            .registrations
            .values()
            .filter(|r| r.extension == ext && !watching.contains(&r.username))
            .map(|r| r.username.clone())
            .collect();
        for u in others {
            self.notify_unsolicited(now, &u);
        }
    }

    /// An out-of-dialog NOTIFY with the state of `username`'s box to its registered
    /// phone.
    pub(crate) fn notify_unsolicited(&mut self, now: Instant, username: &str) {
        let Some(reg) = self.registrations.get(username).cloned() else {
            return;
        };
        let nat = self.snapshot.account(username).is_none_or(|a| a.nat);
        let proto = reg.proto();
        let branch = self.branch();
        let call_id = format!("{}@pbxd", self.random_hex(24));
        let tag = self.random_hex(10);
        let host = reg.local;
        let from = format!("<sip:{}@{host}>;tag={tag}", reg.extension);
        let to = format!("<sip:{username}@{host}>");
        let via = build::via(proto, reg.local, &branch);
        let contact = build::contact("pbx", proto, reg.local);
        let body = self.summary(&reg.extension, host);
        let bytes = sip::build::Request {
            method: "NOTIFY",
            uri: &reg.contact,
            via: &via,
            from: &from,
            to: &to,
            call_id: &call_id,
            cseq: 1,
            contact: Some(&contact),
            extra: &[
                ("Event", EVENT.to_string()),
                ("Subscription-State", "terminated".into()),
            ],
            body: Body::Typed {
                content_type: CONTENT_TYPE,
                bytes: body.as_bytes(),
            },
            ..Default::default()
        }
        .build();
        let dest = reg.dest(nat);
        self.start_client(
            now,
            ClientKey::new(&branch, "NOTIFY"),
            bytes,
            false,
            Target { proto, dest },
            Owner::Fire,
            None,
        );
    }

    /// Every voicemail box with its counts and the accounts watching it, for
    /// `pbxctl voicemail`.
    pub fn voicemail_boxes(&self) -> Vec<BoxSummary> {
        self.snapshot
            .config
            .extensions
            .iter()
            .filter(|e| e.voicemail)
            .map(|e| {
                let m = self.mailboxes.get(&e.number);
                let mut watchers: Vec<String> = self
                    .subscriptions
                    .values()
                    .filter(|s| s.ext == e.number && s.package == Package::MessageSummary)
                    .map(|s| s.username.clone())
                    .collect();
                watchers.sort();
                watchers.dedup();
                BoxSummary {
                    extension: e.number.clone(),
                    new: m.map_or(0, |m| m.new_count()),
                    old: m.map_or(0, |m| m.old_count()),
                    temp_greeting: m.is_some_and(|m| m.temp_greeting),
                    subscribers: watchers,
                }
            })
            .collect()
    }

    /// Message-waiting subscriptions, for `pbxctl`.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .subscriptions
            .values()
            .filter(|s| s.package == Package::MessageSummary)
            .map(|s| (s.username.clone(), s.ext.clone()))
            .collect();
        v.sort();
        v
    }
}

/// A subscription with every field filled, for tests of the bodies.
#[cfg(test)]
pub(crate) fn tests_subscription() -> Subscription {
    Subscription {
        package: Package::MessageSummary,
        username: String::new(),
        ext: String::new(),
        version: 0,
        last: None,
        call_id: "c".into(),
        local_tag: "l".into(),
        remote: "<sip:101@127.0.0.1>;tag=r".into(),
        local_uri: "<sip:102@127.0.0.1>".into(),
        remote_target: "sip:101@127.0.0.1".into(),
        route: Vec::new(),
        target: Target {
            proto: crate::Proto::Udp,
            dest: "127.0.0.1:5060".parse().unwrap(),
        },
        local: "127.0.0.1:5060".parse().unwrap(),
        cseq: 0,
        expires: Instant::now(),
    }
}
