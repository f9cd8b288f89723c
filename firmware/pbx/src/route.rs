//! Number routing for a new call: who is calling (a phone, a provider recognised by its
//! address, a link), and what the dialled number expands to: devices of extensions,
//! ring-group members, forwards, users' "ring also" numbers, links, and outbound legs
//! through interfaces with backups. Every leg that leaves the box through an outbound
//! route passes the permission groups of everybody on the way (the caller's, and the
//! forwarding extension's); emergency numbers always pass.

use crate::calls::{Dialog, Leg, LegState};
use crate::registrar::Registration;
use crate::{build, negotiate, Owner, Pbx, Target};
use config::{CallerIdPresentation, Destination, SipAccount};
use media::sdp;
use sip::transaction::ClientKey;
use std::collections::HashSet;
use std::time::Instant;

/// Who placed the call.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Phone(SipAccount),
    Trunk(String),
    Link(String),
}

/// One place an outbound leg may go, tried in order.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    pub peer: String,
    /// The called number as this peer gets it.
    pub number: String,
    /// The calling number as this peer gets it.
    pub calling: String,
}

/// The state of a leg towards a provider or link.
#[derive(Debug, Clone)]
pub(crate) struct PeerLeg {
    pub hops: Vec<Hop>,
    pub hop: usize,
    /// Which of the current hop's addresses (DNS order) the INVITE went to.
    pub addr: usize,
    /// The INVITE to the current hop carried credentials.
    pub authed: bool,
    pub display: String,
    pub privacy: bool,
    /// Status of the last hop that failed, for the caller.
    pub last_status: u16,
    /// The session the leg is offered from, when not the caller's offer (a transfer's
    /// target is offered the transferee's session).
    pub template: Option<media::sdp::Audio>,
}

impl PeerLeg {
    pub(crate) fn current(&self) -> &str {
        self.hops.get(self.hop).map_or("", |h| h.peer.as_str())
    }
}

/// What a number expanded to.
pub(crate) enum Dest {
    Device(Box<(SipAccount, Registration)>),
    Peer(Vec<Hop>),
}

/// The caller as the legs present it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Number shown on internal legs (and to links).
    pub number: String,
    pub display: String,
    /// Number for calls leaving through providers, before the route's rewrite.
    pub external: String,
    pub privacy: bool,
    pub groups: Vec<String>,
    /// The link the call came from (never sent back to it).
    pub link: Option<String>,
}

/// Statuses after which the next interface of a route is tried (Kerio 6.6).
pub(crate) fn fails_over(status: u16) -> bool {
    matches!(status, 408 | 500 | 502 | 503 | 504)
}

pub(crate) fn display_of(from: &str) -> String {
    let f = from.trim();
    let name = if let Some(rest) = f.strip_prefix('"') {
        rest.split('"').next().unwrap_or("")
    } else {
        f.split('<').next().unwrap_or("").trim()
    };
    name.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '<' && *c != '>')
        .take(64)
        .collect()
}

impl Pbx {
    /// The caller's numbers and groups.
    pub(crate) fn caller(&self, origin: &Origin, from: &str) -> Caller {
        let snap = &self.snapshot;
        let from_user = sip::message::uri_user(sip::message::uri_part(from))
            .unwrap_or("")
            .to_string();
        match origin {
            Origin::Phone(a) => {
                let e = snap
                    .extension(&a.extension)
                    .cloned()
                    .unwrap_or_else(|| config::Extension::new(&a.extension));
                let (external, privacy) = match &e.caller_id {
                    CallerIdPresentation::Show => (e.number.clone(), false),
                    CallerIdPresentation::Hide => ("anonymous".into(), true),
                    CallerIdPresentation::Present(n) => (n.clone(), false),
                };
                Caller {
                    number: e.number.clone(),
                    display: e.display_name().replace('"', ""),
                    external,
                    privacy,
                    groups: [e.permission_group.clone()]
                        .into_iter()
                        .filter(|g| !g.is_empty())
                        .collect(),
                    link: None,
                }
            }
            Origin::Trunk(name) => {
                let n = snap
                    .interface(name)
                    .map(|i| i.calling_rewrite.apply(&from_user))
                    .unwrap_or(from_user);
                Caller {
                    number: n.clone(),
                    display: display_of(from),
                    external: n,
                    privacy: false,
                    groups: Vec::new(),
                    link: None,
                }
            }
            Origin::Link(name) => {
                let l = snap.link(name);
                let n = l.map(|l| l.from_link(&from_user)).unwrap_or(from_user);
                let ours = snap.config.sip_interfaces.iter().any(|i| i.owns_number(&n));
                let external = match l {
                    Some(l) if !ours && !l.fallback_ddi.is_empty() => l.fallback_ddi.clone(),
                    _ => n.clone(),
                };
                Caller {
                    number: n,
                    display: display_of(from),
                    external,
                    privacy: false,
                    groups: l
                        .map(|l| l.permission_group.clone())
                        .into_iter()
                        .filter(|g| !g.is_empty())
                        .collect(),
                    link: Some(name.clone()),
                }
            }
        }
    }

    /// Expands `number` into legs; failures are collected for the caller's answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn expand(
        &self,
        number: &str,
        caller: &Caller,
        groups: &[String],
        depth: u8,
        seen: &mut HashSet<String>,
        out: &mut Vec<Dest>,
        errs: &mut Vec<(u16, String)>,
    ) {
        if depth > 5 || out.len() >= 32 {
            errs.push((482, "forwarding loop".into()));
            return;
        }
        let snap = self.snapshot.clone();
        match snap.route(number) {
            Destination::Extension(n) => {
                if !seen.insert(n.clone()) {
                    return;
                }
                let ext = snap.extension(&n).expect("routed").clone();
                if !ext.enabled {
                    return errs.push((403, "extension disabled".into()));
                }
                let mut groups2 = groups.to_vec();
                if !ext.permission_group.is_empty() {
                    groups2.push(ext.permission_group.clone());
                }
                if !ext.forward.is_empty() {
                    return self.expand(&ext.forward, caller, &groups2, depth + 1, seen, out, errs);
                }
                // Do not disturb: busy to its callers, its "ring also" numbers quiet too.
                if ext.do_not_disturb {
                    return errs.push((486, "do not disturb".into()));
                }
                // Counting the extension's calls walks them all: only when a limit asks.
                let limited = ext.call_limit > 0 || ext.busy_level > 0;
                let load = if limited {
                    self.active_calls(&ext.number)
                } else {
                    0
                };
                if (ext.call_limit > 0 && load >= ext.call_limit)
                    || (ext.busy_level > 0 && load >= ext.busy_level)
                {
                    errs.push((486, String::new()));
                } else {
                    let registered: Vec<_> = snap
                        .accounts_of(&ext.number)
                        .filter(|a| a.enabled)
                        .filter_map(|a| {
                            self.registrations
                                .get(&a.username)
                                .map(|r| (a.clone(), r.clone()))
                        })
                        .collect();
                    if registered.is_empty() {
                        errs.push((480, "nobody registered".into()));
                    }
                    let before = out.len();
                    // With call waiting a phone in a call rings too; the phone that
                    // is calling never rings for its own call.
                    let calling = self
                        .routing
                        .and_then(|id| self.calls.get(&id))
                        .map(|c| c.caller_account.clone());
                    for (a, r) in registered {
                        if calling.as_deref() == Some(a.username.as_str()) {
                            continue;
                        }
                        if ext.call_waiting || !self.account_busy(&a.username) {
                            out.push(Dest::Device(Box::new((a, r))));
                        }
                    }
                    if out.len() == before && !errs.iter().any(|e| e.0 == 480) {
                        errs.push((486, String::new()));
                    }
                }
                // The owner's "ring also" numbers (Kerio 8.3) ring at the same time.
                if let Some(u) = snap.owner(&n) {
                    for m in &u.ring_also {
                        self.expand(m, caller, &groups2, depth + 1, seen, out, errs);
                    }
                }
            }
            Destination::RingGroup(g) => {
                if !seen.insert(g.clone()) {
                    return;
                }
                let members = snap
                    .config
                    .ring_groups
                    .iter()
                    .find(|x| x.number == g)
                    .map(|x| x.members.clone())
                    .unwrap_or_default();
                for m in members {
                    self.expand(&m, caller, groups, depth + 1, seen, out, errs);
                }
            }
            Destination::Link(name) => {
                if caller.link.as_deref() == Some(name.as_str()) {
                    return errs.push((482, "the number belongs to the calling link".into()));
                }
                let l = snap.link(&name).expect("routed");
                let calling = if caller.privacy {
                    "anonymous".to_string()
                } else {
                    l.to_link(&caller.number)
                };
                out.push(Dest::Peer(vec![crate::route::Hop {
                    peer: name.clone(),
                    number: l.to_link(number),
                    calling,
                }]));
            }
            Destination::Emergency(routes) => {
                let mut hops: Vec<Hop> = Vec::new();
                for r in routes {
                    for i in &r.interfaces {
                        if !hops.iter().any(|h| &h.peer == i) {
                            hops.push(Hop {
                                peer: i.clone(),
                                number: number.to_string(),
                                calling: r.calling_rewrite.apply(&caller.external),
                            });
                        }
                    }
                }
                tracing::info!(number, "emergency call");
                out.push(Dest::Peer(hops));
            }
            Destination::Outbound(r) => {
                let out_number = r.called_rewrite.apply(number);
                let emergency = snap.config.emergency.is_emergency(&out_number);
                let denied = groups.iter().find(|g| {
                    snap.permission_group(g)
                        .is_some_and(|pg| !pg.allows(number))
                });
                if let (Some(g), false) = (denied, emergency) {
                    tracing::info!(number, group = %g, "call not allowed");
                    return errs.push((403, format!("not allowed by permission group {g}")));
                }
                let calling = if caller.privacy {
                    "anonymous".to_string()
                } else {
                    r.calling_rewrite.apply(&caller.external)
                };
                out.push(Dest::Peer(
                    r.interfaces
                        .iter()
                        .map(|i| Hop {
                            peer: i.clone(),
                            number: out_number.clone(),
                            calling: calling.clone(),
                        })
                        .collect(),
                ));
            }
            Destination::Unknown => errs.push((404, "no such number".into())),
        }
    }

    /// Sends the INVITE of a peer leg to its current hop, skipping hops that cannot take
    /// a call; `auth` re-sends to the same hop with credentials. False when no hop is
    /// left (the leg is then done).
    pub(crate) fn send_peer_invite(
        &mut self,
        now: Instant,
        id: u64,
        idx: usize,
        auth: Option<(&str, String)>,
    ) -> bool {
        loop {
            let Some(call) = self.calls.get(&id) else {
                return false;
            };
            let leg = &call.legs[idx];
            let Some(pl) = leg.peer.clone() else {
                return false;
            };
            let addr = pl.addr;
            let Some(hop) = pl.hops.get(pl.hop).cloned() else {
                let s = if pl.last_status == 0 {
                    503
                } else {
                    pl.last_status
                };
                let call = self.calls.get_mut(&id).expect("checked");
                call.legs[idx].state = LegState::Done(s);
                return false;
            };
            let skip = |pbx: &mut Pbx, status: u16, why: &str| {
                tracing::info!(call = id, peer = %hop.peer, why, "interface skipped");
                if let Some(p) = pbx
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.legs[idx].peer.as_mut())
                {
                    p.hop += 1;
                    p.addr = 0;
                    p.authed = false;
                    p.last_status = status;
                }
            };
            let Some(pc) = self.peer_conf(&hop.peer) else {
                skip(self, 503, "disabled");
                continue;
            };
            if auth.is_none() {
                if let Some(why) = self.peer_unusable(&pc) {
                    skip(self, if why == "no free channel" { 503 } else { 480 }, why);
                    continue;
                }
            }
            let Some((target, hostport)) = self.peer_target_at(&pc, addr) else {
                skip(self, 480, "unreachable");
                continue;
            };
            let (local, contact_host) = self.local_towards(&pc, target);
            let branch = self.branch();
            let (new_tag, new_call_id) =
                (self.random_hex(10), format!("{}@pbxd", self.random_hex(24)));
            let call = self.calls.get(&id).expect("checked");
            let Some(offer) = negotiate::offer(
                &call.a_offer,
                &pc.codecs,
                local.ip(),
                call.legs[idx].ep.as_ref().map_or(0, |e| e.port),
            ) else {
                skip(self, 488, "no codec in common");
                continue;
            };
            let retry = auth.is_some();
            let (call_id, from, cseq) = if retry {
                let d = &call.legs[idx].dialog;
                (d.call_id.clone(), d.local.clone(), d.cseq + 1)
            } else {
                let from_host = if pc.from_domain.is_empty() {
                    local.ip().to_string()
                } else {
                    pc.from_domain.clone()
                };
                let tag = new_tag;
                let from = if pl.privacy {
                    format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={tag}")
                } else if pl.display.is_empty() {
                    format!("<sip:{}@{from_host}>;tag={tag}", hop.calling)
                } else {
                    format!(
                        "\"{}\" <sip:{}@{from_host}>;tag={tag}",
                        pl.display, hop.calling
                    )
                };
                (new_call_id, from, 1)
            };
            let ruri = format!("sip:{}@{hostport}", hop.number);
            let to = format!("<sip:{}@{hostport}>", hop.number);
            let via = build::via(target.proto, local, &branch);
            let t = target.proto.uri_param();
            let contact = format!(
                "<sip:{}@{contact_host}{t}>",
                if pl.privacy {
                    "anonymous"
                } else {
                    &hop.calling
                }
            );
            let mut extra = Vec::new();
            if pl.privacy {
                extra.push(("Privacy", "id".into()));
            }
            if let Some((h, v)) = &auth {
                extra.push((h, v.clone()));
            }
            // SRTP towards a peer that encrypts audio: the box's key, kept through a
            // retry with credentials; a plain peer after it (failover) gets plain RTP.
            let call = self.calls.get(&id).expect("checked");
            let srtp = pc.srtp.then(|| {
                retry
                    .then(|| call.legs[idx].dialog.srtp.clone())
                    .flatten()
                    .unwrap_or_else(crate::secure::offered)
            });
            if let Some(ep) = call.legs[idx].ep.as_ref() {
                crate::secure::key(ep, &srtp);
            }
            let body = sdp::write(id, 1, &crate::secure::dress(&offer, &srtp));
            let bytes = sip::build::Request {
                method: "INVITE",
                uri: &ruri,
                via: &via,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq,
                contact: Some(&contact),
                extra: &extra,
                body: sip::build::Body::Sdp(&body),
                ..Default::default()
            }
            .build();
            let ack = build::AckBase {
                ruri: ruri.clone(),
                via,
                from: from.clone(),
                call_id: call_id.clone(),
                cseq,
                route: Vec::new(),
            };
            let call = self.calls.get_mut(&id).expect("checked");
            let old = std::mem::replace(&mut call.legs[idx].dialog.call_id, call_id.clone());
            let leg = &mut call.legs[idx];
            leg.dialog = Dialog {
                sip: sip::dialog::Dialog {
                    call_id: call_id.clone(),
                    local: from,
                    remote: to.clone(),
                    target_uri: ruri,
                    contact,
                    cseq,
                    route: Vec::new(),
                },
                to: target,
                local_addr: local,
                sdp_version: 1,
                sent_sdp: Some(offer),
                srtp,
            };
            leg.branch = branch.clone();
            leg.ack = ack.clone();
            leg.to_initial = to;
            leg.state = LegState::Calling;
            leg.got_provisional = false;
            if let Some(p) = leg.peer.as_mut() {
                p.authed = retry;
            }
            if old != call_id {
                self.dialogs.remove(&old);
            }
            self.dialogs.insert(call_id, id);
            tracing::debug!(call = id, peer = %hop.peer, number = %hop.number, dest = %target.dest, "outbound leg");
            self.start_client(
                now,
                ClientKey::new(&branch, "INVITE"),
                bytes,
                true,
                target,
                Owner::Leg(id, idx),
                Some(ack),
            );
            return true;
        }
    }

    /// A peer leg got a final failure: answer a challenge, or try the next interface.
    /// True when the leg goes on.
    pub(crate) fn peer_leg_failed(
        &mut self,
        now: Instant,
        id: u64,
        idx: usize,
        resp: Option<&rsip::Response>,
        status: u16,
    ) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let in_transfer = call
            .transfer
            .as_ref()
            .is_some_and(|t| t.legs.contains(&idx));
        if call.finished
            || (call.answered.is_some() && !in_transfer)
            || call.legs[idx].cancel_wanted
        {
            return false;
        }
        let Some(pl) = call.legs[idx].peer.clone() else {
            return false;
        };
        if (status == 401 || status == 407) && !pl.authed {
            let header = if status == 401 {
                "WWW-Authenticate"
            } else {
                "Proxy-Authenticate"
            };
            let pc = self.peer_conf(pl.current());
            let uri = call.legs[idx].ack.ruri.clone();
            let cnonce = self.random_hex(16);
            let answer = resp.zip(pc).and_then(|(r, pc)| {
                sip::auth::challenges(&r.headers, header)
                    .iter()
                    .find_map(|c| c.answer("INVITE", &uri, &pc.auth_user, &pc.password, &cnonce))
            });
            if let Some(a) = answer {
                let h = if status == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                return self.send_peer_invite(now, id, idx, Some((h, a)));
            }
        }
        if !fails_over(status) {
            return false;
        }
        // RFC 3263 4.3: no answer or 503 from one of the peer's addresses: its next one.
        let more = matches!(status, 408 | 503)
            && self
                .peer_conf(pl.current())
                .is_some_and(|pc| self.address_count(&pc) > pl.addr + 1);
        let call = self.calls.get_mut(&id).expect("checked");
        let p = call.legs[idx].peer.as_mut().expect("peer leg");
        p.authed = false;
        if more {
            p.addr += 1;
            p.last_status = status;
            tracing::info!(call = id, peer = %p.current(), status, address = p.addr, "address failed; trying the peer's next address");
            return self.send_peer_invite(now, id, idx, None);
        }
        tracing::info!(call = id, peer = %p.current(), status, "interface failed; trying the next");
        p.hop += 1;
        p.addr = 0;
        p.last_status = status;
        if p.hop >= p.hops.len() {
            return false;
        }
        self.send_peer_invite(now, id, idx, None)
    }

    /// A placeholder leg for a peer, filled in by [`Self::send_peer_invite`].
    pub(crate) fn peer_leg(
        hops: Vec<Hop>,
        caller: &Caller,
        local: std::net::SocketAddr,
        ep: media::Handle,
    ) -> Leg {
        Leg {
            account: String::new(),
            ep: Some(ep),
            peer: Some(PeerLeg {
                hops,
                hop: 0,
                addr: 0,
                authed: false,
                display: caller.display.clone(),
                privacy: caller.privacy,
                last_status: 0,
                template: None,
            }),
            dialog: Dialog {
                sip: sip::dialog::Dialog {
                    call_id: String::new(),
                    local: String::new(),
                    remote: String::new(),
                    target_uri: String::new(),
                    contact: String::new(),
                    cseq: 0,
                    route: Vec::new(),
                },
                to: Target {
                    proto: sip::transport::Proto::Udp,
                    dest: local,
                },
                local_addr: local,
                sdp_version: 1,
                sent_sdp: None,
                srtp: None,
            },
            branch: String::new(),
            ack: build::AckBase {
                ruri: String::new(),
                via: String::new(),
                from: String::new(),
                call_id: String::new(),
                cseq: 0,
                route: Vec::new(),
            },
            to_initial: String::new(),
            state: LegState::Calling,
            got_provisional: false,
            cancel_wanted: false,
        }
    }
}

/// Whether media towards this leg latches to where packets really come from.
pub(crate) fn leg_latch(snap: &config::Snapshot, leg: &Leg) -> bool {
    match &leg.peer {
        Some(p) => crate::trunks::peer_conf_of(snap, p.current()).is_some_and(|pc| pc.nat),
        None => snap.account(&leg.account).is_some_and(|a| a.nat),
    }
}

/// Codecs of a leg's far end, preferred first.
pub(crate) fn leg_codecs(snap: &config::Snapshot, leg: &Leg) -> Vec<String> {
    let c = match &leg.peer {
        Some(p) => crate::trunks::peer_conf_of(snap, p.current()).map(|pc| pc.codecs),
        None => snap.account(&leg.account).map(|a| a.codecs.clone()),
    };
    c.unwrap_or_else(|| vec!["PCMU".into(), "PCMA".into()])
}
