//! Call control: a call is the caller's leg (A, where we are the UAS) and one leg per
//! device of the called extension (B, where we are the UAC). All devices ring in
//! parallel; the first to answer wins and the others are cancelled. Media always flows
//! through the relay, with the SDP on each side carrying the box's address on that side.

use crate::build::{self, AckBase};
use crate::negotiate;
use crate::secure::LegSrtp;
use crate::{CallInfo, Owner, Pbx, ServerKey, Source, Target};
use media::sdp::{self, Audio};
use sip::build::{Body, Response};
use sip::message::{get, key, uri_user};
use sip::transaction::ClientKey;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    B,
}

impl Side {
    pub(crate) fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One SIP dialog of a call, seen from our end: the dialog proper (`sip::dialog`) and
/// what the exchange adds to it (where it is reached, the session we gave it).
pub(crate) struct Dialog {
    pub sip: sip::dialog::Dialog,
    pub to: Target,
    pub local_addr: SocketAddr,
    pub sdp_version: u64,
    /// The session description we last gave this side.
    pub sent_sdp: Option<Audio>,
    /// SRTP with this side (SDES keys); None: plain RTP.
    pub srtp: Option<LegSrtp>,
}

impl std::ops::Deref for Dialog {
    type Target = sip::dialog::Dialog;
    fn deref(&self) -> &sip::dialog::Dialog {
        &self.sip
    }
}

impl std::ops::DerefMut for Dialog {
    fn deref_mut(&mut self) -> &mut sip::dialog::Dialog {
        &mut self.sip
    }
}

impl Dialog {
    /// Where requests in the dialog go: the first route when the route set names an
    /// address (loose routing, RFC 3261 12.2.1.1), else the other side itself.
    pub fn next_hop(&self) -> Target {
        self.sip
            .first_hop()
            .map(|dest| Target {
                proto: self.to.proto,
                dest,
            })
            .unwrap_or(self.to)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegState {
    Calling,
    Ringing,
    Answered,
    Done(u16),
}

pub(crate) struct Leg {
    /// The device's account; empty for a leg to a provider or link.
    pub account: String,
    /// The box's RTP endpoint facing this device; given back (its ports freed) once
    /// the leg has ended and is not the call's answered one.
    pub ep: Option<media::Handle>,
    /// A leg to a provider or link, with its interfaces to try.
    pub peer: Option<crate::route::PeerLeg>,
    pub dialog: Dialog,
    pub branch: String,
    pub ack: AckBase,
    /// To of the INVITE, without tag (for CANCEL).
    pub to_initial: String,
    pub state: LegState,
    pub got_provisional: bool,
    pub cancel_wanted: bool,
}

impl Leg {
    /// The number of the party: its extension, else the user part of its URI.
    pub(crate) fn number(&self, snap: &config::Snapshot) -> String {
        snap.account(&self.account)
            .map(|a| a.extension.clone())
            .unwrap_or_else(|| {
                uri_user(sip::message::uri_part(&self.dialog.remote))
                    .unwrap_or("")
                    .to_string()
            })
    }
}

/// A 2xx we resend until its ACK comes (RFC 3261 13.3.1.4).
pub(crate) struct OkRetx {
    bytes: Vec<u8>,
    /// Where the 2xx goes; resent there only over an unreliable transport.
    target: Target,
    call_id: String,
    timer: sip::dialog::Answered,
}

/// A re-INVITE forwarded to the other side, waiting for its answer.
pub(crate) struct Reinvite {
    from: Side,
    key: ServerKey,
    req: rsip::Request,
    offer: Audio,
    /// The session with the other side before this offer: it stays when the offer is
    /// refused (RFC 3261 14.1: a failed re-INVITE leaves the session as it was).
    prev: Option<Audio>,
    /// The offerer's SRTP or WebRTC state as its offer makes it, taken when the offer
    /// is accepted (until then its earlier keys stay in use, RFC 4568 7.1.4).
    srtp: Option<LegSrtp>,
}

/// A transfer (REFER) in progress: `by` asked for its side to be replaced by whoever
/// answers one of `legs`; the other side hears music meanwhile.
#[derive(Clone)]
pub(crate) struct Transfer {
    pub by: Side,
    pub legs: Vec<usize>,
    /// The `Event` of the NOTIFYs (refer;id=CSeq of the REFER).
    pub event: String,
    /// The other side was already on hold when the transfer began.
    pub was_held: bool,
    /// The transferor hung up meanwhile (RFC 5589 6.1 allows it): no more NOTIFYs,
    /// and if the transfer fails the transferee is hung up too.
    pub by_gone: bool,
    pub deadline: Instant,
    /// The transferor has been told the target rings (one NOTIFY 180 a transfer).
    pub rang: bool,
    /// A blind transfer: where the target's forwarding leads, and what a forward rings
    /// with (the transferee as the new party sees it, and its session).
    pub fallbacks: crate::transfer::TransferFallbacks,
    pub caller: crate::route::Caller,
    pub template: media::sdp::Audio,
}

pub(crate) struct Call {
    pub id: u64,
    pub caller_ext: String,
    pub caller_account: String,
    /// The provider or link the call came from.
    pub caller_peer: Option<String>,
    /// Codecs of the caller's side, preferred first.
    pub caller_codecs: Vec<String>,
    pub callee_ext: String,
    pub a: Dialog,
    pub a_key: ServerKey,
    pub a_req: rsip::Request,
    pub a_offer: Audio,
    pub legs: Vec<Leg>,
    pub answered: Option<usize>,
    /// The box's RTP endpoint facing the caller.
    pub a_ep: media::Handle,
    pub created: Instant,
    pub answered_at: Option<Instant>,
    pub ring_deadline: Option<Instant>,
    /// 2xx responses awaiting their ACK (the caller's, and a picker's).
    pub ok: Vec<OkRetx>,
    pub reinvite: Option<Reinvite>,
    pub transcoding: bool,
    /// Payload maps between the two endpoints (A to B, B to A), to connect them again
    /// after hold.
    pub maps: (media::PtMap, media::PtMap),
    /// The side that put the other on hold; the other hears music meanwhile.
    pub held_by: Option<Side>,
    /// A transfer in progress: new legs ringing to replace one side.
    pub transfer: Option<Transfer>,
    /// The plan failed because nobody answered in time (for the record).
    pub timed_out: bool,
    /// REFERs taken in this call (each adds legs and ports; bounded).
    pub refers: u32,
    /// What is rung while the call is not answered, and what comes after.
    pub plan: crate::plan::Plan,
    /// The caller as legs present it, and where the call came from.
    pub caller: crate::route::Caller,
    pub origin: config::CallOrigin,
    /// For the call record: who called (as first seen), their name, the final status
    /// the caller got, who talked to the caller last, who transferred.
    pub first_caller: String,
    /// The provider or link the call first came from (the caller's place may change
    /// hands in a transfer).
    pub first_peer: Option<String>,
    pub dialled: String,
    pub caller_name: String,
    pub final_status: u16,
    pub answered_by: String,
    pub transferred_by: String,
    /// The call went out through a provider or link (its name).
    pub trunk_out: String,
    /// The side whose SDP answer is due in its ACK: the box put an offer in a 2xx (the
    /// caller's INVITE or a re-INVITE came without SDP).
    pub answer_due: Option<Side>,
    /// The caller made no offer (late offer): its provisional answers carry no SDP.
    pub late_offer: bool,
    /// The caller already has its final answer; only unsettled legs keep the call.
    pub finished: bool,
    /// The box answered the caller itself (an application), and may ring numbers for
    /// it afterwards (an auto attendant's key): their answers only connect the media.
    pub caller_answered: bool,
    /// The application answering the call (the box itself), if any.
    pub app: Option<crate::app_leg::AppLeg>,
    /// The deadline in the timer heap for this call; other entries are stale.
    pub armed: Option<Instant>,
}

impl Call {
    pub(crate) fn info(&self, now: Instant) -> CallInfo {
        use std::sync::atomic::Ordering::Relaxed;
        CallInfo {
            id: self.id,
            caller: self.caller_ext.clone(),
            callee: self.callee_ext.clone(),
            state: if self
                .transfer
                .as_ref()
                .is_some_and(|t| t.by_gone && t.legs.is_empty())
            {
                "parked".into()
            } else if self.answered.is_some() || self.app.is_some() {
                "answered".into()
            } else {
                "ringing".into()
            },
            seconds: now
                .saturating_duration_since(self.answered_at.unwrap_or(self.created))
                .as_secs(),
            packets_a_to_b: self.a_ep.stats.relayed.load(Relaxed),
            packets_b_to_a: self
                .answered
                .and_then(|i| self.legs[i].ep.as_ref())
                .map_or(0, |ep| ep.stats.relayed.load(Relaxed)),
            transcoding: self.transcoding,
        }
    }

    /// The call was answered by the box's own doing (a pickup, an application) for
    /// `by`: nothing of its plan rings any more.
    pub(crate) fn answered_here(&mut self, now: Instant, by: String) {
        self.answered_at = Some(now);
        self.final_status = 200;
        self.answered_by = by;
        self.ring_deadline = None;
        self.plan.step_deadline = None;
        self.plan.next.clear();
    }

    fn dialog(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => Some(&mut self.a),
            Side::B => self.answered.map(|i| &mut self.legs[i].dialog),
        }
    }

    /// One side's dialog; the call must be answered for side B.
    pub(crate) fn dialog_ref(&self, side: Side) -> &Dialog {
        match side {
            Side::A => &self.a,
            Side::B => &self.legs[self.answered.expect("answered")].dialog,
        }
    }

    /// Disconnects the two sides and plays music on hold collection `music` to `held`,
    /// in its own G.711 law (a side on another codec hears silence).
    pub(crate) fn play_hold_music(&self, held: Side, music: &str) {
        let (Some(a), Some(b)) = (self.ep(Side::A), self.ep(Side::B)) else {
            return;
        };
        a.disconnect();
        let session = self.dialog_ref(held).sent_sdp.as_ref();
        if let Some(c) = session.and_then(|s| s.codecs.iter().find(|c| !c.is_dtmf())) {
            let alaw = c.name.eq_ignore_ascii_case("PCMA");
            if alaw || c.name.eq_ignore_ascii_case("PCMU") {
                let ep = if held == Side::A { a } else { b };
                ep.play_music(music, c.pt, alaw);
            }
        }
    }

    /// Connects the two sides again after hold.
    pub(crate) fn resume_from_hold(&mut self) {
        let (ab, ba) = self.maps;
        if let (Some(a), Some(b)) = (self.ep(Side::A), self.ep(Side::B)) {
            a.connect(b, ab, ba);
        }
        self.held_by = None;
    }

    /// Takes a side's SRTP or WebRTC state (its offer accepted) and keys the endpoint
    /// facing it.
    fn take_srtp(&mut self, side: Side, s: Option<LegSrtp>) {
        if let Some(ep) = self.ep(side) {
            crate::secure::key(ep, &s);
        }
        if let Some(d) = self.dialog(side) {
            d.srtp = s;
        }
    }

    /// The box's endpoint facing one side.
    pub(crate) fn ep(&self, side: Side) -> Option<&media::Handle> {
        match side {
            Side::A => Some(&self.a_ep),
            Side::B => self.answered.and_then(|i| self.legs[i].ep.as_ref()),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.ring_deadline,
            self.ok.iter().map(|o| o.timer.deadline()).min(),
            self.transfer.as_ref().map(|t| t.deadline),
            self.app.as_ref().and_then(|a| a.timer),
            self.plan
                .step_deadline
                .filter(|_| self.answered.is_none() && !self.finished),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ if status < 200 => "Progress",
        _ if status < 300 => "OK",
        _ => "Failed",
    }
}

/// The status the caller gets when every device failed.
pub(crate) fn summarize(statuses: &[u16]) -> u16 {
    if statuses.iter().any(|s| *s == 486 || *s == 600) {
        486
    } else if statuses.contains(&603) {
        603
    } else if statuses.iter().all(|s| *s == 408 || *s == 487 || *s == 480) {
        480
    } else {
        // A 503 says the box itself is overloaded: a phone would fail over from it
        // (RFC 3263). A downstream 503 is answered 500 (RFC 3261 16.7, step 6).
        match statuses.first().copied().unwrap_or(480) {
            503 => 500,
            s => s,
        }
    }
}

impl Pbx {
    /// Puts the call's next deadline in the timer heap unless it is already there.
    /// Gives back the endpoints (and so the ports) of legs that have ended and are
    /// not their call's answered one: the devices of a ring group that did not
    /// answer, a failed transfer target. Run once a second.
    pub(crate) fn release_ended_legs(&mut self) {
        for call in self.calls.values_mut() {
            let answered = call.answered;
            for (i, leg) in call.legs.iter_mut().enumerate() {
                if matches!(leg.state, LegState::Done(_)) && answered != Some(i) {
                    leg.ep = None;
                }
            }
        }
    }

    pub(crate) fn arm_call(&mut self, id: u64) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(at) = c.next_deadline().filter(|at| c.armed != Some(*at)) {
            c.armed = Some(at);
            self.timers.push(std::cmp::Reverse((at, id)));
        }
    }

    /// The caller's 200 with the box's `answer` (resent until its ACK): a pickup or an
    /// application answered.
    pub(crate) fn answer_caller(&mut self, now: Instant, id: u64, answer: Audio) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.caller_answered {
            // Answered already (an application before this one): the session stands.
            return;
        }
        call.caller_answered = true;
        let body = sdp::write(
            id,
            call.a.sdp_version,
            &crate::secure::dress(&answer, &call.a.srtp),
        );
        call.a.sent_sdp = Some(answer);
        let r = Response::to(&call.a_req, 200, "OK")
            .tag(Some(call.a.local_tag()))
            .contact(&call.a.contact)
            .sdp(&body)
            .build();
        let (a_key, a_cseq) = (call.a_key.clone(), key_of(&call.a_req).cseq);
        self.await_ack(now, id, Side::A, &r, &a_key, a_cseq);
        self.respond(now, &a_key, 200, r);
    }

    /// Calls an extension takes part in, but for the one being routed.
    pub(crate) fn active_calls(&self, ext: &str) -> u32 {
        self.calls
            .values()
            .filter(|c| Some(c.id) != self.routing)
            .filter(|c| !c.finished && (c.caller_ext == ext || c.callee_ext == ext))
            .count() as u32
    }

    pub(crate) fn account_busy(&self, username: &str) -> bool {
        self.calls.values().any(|c| {
            Some(c.id) != self.routing
                && !c.finished
                && (c.caller_account == username
                    || c.answered.is_some_and(|i| c.legs[i].account == username))
        })
    }

    pub(crate) fn reply(
        &mut self,
        now: Instant,
        key: &ServerKey,
        req: &rsip::Request,
        status: u16,
        why: &str,
    ) {
        let tag = self.random_hex(10);
        let text = if why.is_empty() {
            reason(status).to_string()
        } else {
            format!("{} ({why})", reason(status))
        };
        let r = Response::to(req, status, &text).tag(Some(&tag)).build();
        self.respond(now, key, status, r);
    }

    pub(crate) fn invite(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: rsip::Request,
    ) {
        use crate::route::Origin;
        // Who is calling: a provider or an open link by its address (never challenged),
        // else a phone or a link by its credentials. Nothing over WebSocket is a
        // provider or a link (a web page at a provider's address could open one).
        let by_address = if src.proto == sip::transport::Proto::Wss {
            None
        } else {
            self.peer_from(src.remote.ip())
        };
        let origin = match by_address {
            Some((name, false)) => Origin::Trunk(name),
            Some((name, true)) => Origin::Link(name),
            None => match self.authenticate(now, src, key, &req, "Proxy-Authorization") {
                crate::registrar::Authn::Account(a) => Origin::Phone(a),
                crate::registrar::Authn::Link(l) => Origin::Link(l.name),
                crate::registrar::Authn::Answered => return,
            },
        };
        let snap = self.snapshot.clone();
        if let Origin::Phone(account) = &origin {
            if account.registration_check
                && self
                    .registrations
                    .get(&account.username)
                    .is_none_or(|r| r.source != src.remote)
            {
                return self.reply(now, key, &req, 403, "not from the registered address");
            }
            let ext = snap
                .extension(&account.extension)
                .expect("authenticated accounts have extensions");
            if ext.call_limit > 0 && self.active_calls(&ext.number) >= ext.call_limit {
                return self.reply(now, key, &req, 403, "call limit reached");
            }
        }
        let ruri = req.uri.to_string();
        let ruri_user = uri_user(&ruri).unwrap_or("").to_string();
        let to_user = get(&req.headers, "To")
            .map(sip::message::uri_part)
            .and_then(uri_user)
            .unwrap_or("")
            .to_string();
        let (dialed, caller_peer, caller_codecs, caller_latch, caller_account, caller_ext) =
            match &origin {
                Origin::Phone(a) => (
                    ruri_user,
                    None,
                    a.codecs.clone(),
                    a.nat,
                    a.username.clone(),
                    a.extension.clone(),
                ),
                Origin::Trunk(name) => {
                    let i = snap.interface(name).expect("matched").clone();
                    if i.max_calls > 0 && self.peer_calls(name) >= i.max_calls {
                        return self.reply(now, key, &req, 503, "no free channel");
                    }
                    // Calls to our registration's Contact carry the DID in To.
                    let called = if ruri_user.is_empty()
                        || ruri_user == i.username
                        || ruri_user == i.auth_name()
                    {
                        to_user
                    } else {
                        ruri_user
                    };
                    let Some(target) = i.inbound_target(&called, |n| snap.is_local(n)) else {
                        return self.reply(now, key, &req, 404, "no such number");
                    };
                    tracing::info!(interface = %name, called, target, "incoming call");
                    (
                        target,
                        Some(name.clone()),
                        i.codecs.clone(),
                        false,
                        String::new(),
                        String::new(),
                    )
                }
                Origin::Link(name) => {
                    let l = snap.link(name).expect("matched").clone();
                    (
                        l.from_link(&ruri_user),
                        Some(name.clone()),
                        l.codecs.clone(),
                        l.nat,
                        String::new(),
                        String::new(),
                    )
                }
            };
        // No SDP: a late offer. The box makes the offer in its 200 and the caller
        // answers in the ACK.
        let late_offer = req.body.is_empty();
        let a_offer = if late_offer {
            match negotiate::late_offer(&caller_codecs) {
                Some(o) => o,
                None => return self.reply(now, key, &req, 488, "no G.711 codec allowed"),
            }
        } else {
            match sdp::parse(&req.body) {
                Ok(a) => a,
                Err(e) => return self.reply(now, key, &req, 488, &e.to_string()),
            }
        };
        // SRTP with the caller: its offer's key, or the box's offer in the 200 when a
        // caller that must encrypt made none.
        let peer_encrypts = match &origin {
            Origin::Trunk(n) | Origin::Link(n) => self.peer_conf(n).is_some_and(|p| p.srtp),
            Origin::Phone(_) => false,
        };
        // Its keys travel in the signalling: only over TLS.
        if peer_encrypts && src.proto != sip::transport::Proto::Tls {
            return self.reply(
                now,
                key,
                &req,
                403,
                "this interface encrypts audio: call over TLS",
            );
        }
        let must = if peer_encrypts {
            Some(crate::secure::INTERFACE_ENCRYPTS)
        } else {
            matches!(&origin, Origin::Phone(a) if snap.encrypts(a))
                .then_some(crate::secure::ACCOUNT_ENCRYPTS)
        };
        let mut a_srtp = None;
        if late_offer {
            a_srtp = must.map(|_| crate::secure::offered());
        } else if let Err(why) = crate::secure::take_offer(&mut a_srtp, &a_offer, must) {
            return self.reply(now, key, &req, 488, why);
        }
        crate::secure::locate(&mut a_srtp, src.local.ip());
        let from_hdr = get(&req.headers, "From").unwrap_or("").to_string();
        let caller = self.caller(&origin, &from_hdr);
        if let (Some(target), Origin::Phone(account)) = (self.pickup_code(&dialed), &origin) {
            let offer = (!late_offer).then_some(a_offer);
            return self.pickup(now, src, key, req, account.clone(), offer, target, None);
        }
        // A BLF key pressed on a ringing colleague: INVITE with Replaces naming the
        // early dialog its lamp showed (RFC 3891), a directed pickup of that call.
        // Only phones replace; anything else naming a dialog is not a new call either.
        if let Some(r) = get(&req.headers, "Replaces") {
            let found = sip::dialog::Replaces::parse(r).and_then(|r| self.ringing_dialog(&r));
            let (Some((call, ext)), Origin::Phone(account)) = (found, &origin) else {
                return self.reply(now, key, &req, 481, "no such dialog to replace");
            };
            let offer = (!late_offer).then_some(a_offer);
            let account = account.clone();
            return self.pickup(now, src, key, req, account, offer, Some(ext), Some(call));
        }
        if let (true, Origin::Phone(account)) = (self.is_slot(&dialed), &origin) {
            let offer = (!late_offer).then_some(a_offer);
            return self.retrieve(now, src, key, req, account.clone(), offer, &dialed);
        }
        let app = self.application(&dialed, &origin);
        if app.is_none() && self.snapshot.route(&dialed) == config::Destination::Unknown {
            self.record_attempt(now, &caller, &dialed, 404, caller_peer);
            return self.reply(now, key, &req, 404, "no such number");
        }
        let call_origin = match origin {
            Origin::Trunk(_) => config::CallOrigin::External,
            _ => config::CallOrigin::Internal,
        };
        let a_ep = match self.media.take() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("media relay: {e}");
                return self.reply(now, key, &req, 503, "no media ports");
            }
        };
        a_ep.set_remote(a_offer.rtp_target(), caller_latch);
        crate::secure::key(&a_ep, &a_srtp);
        let id = self.next_call;
        self.next_call += 1;
        let a_tag = self.random_hex(10);
        let a_contact_uri = build::remote_target(&req.headers, src.remote);
        // Providers, NAT'ed callers and callers over TLS are answered where the
        // request came from.
        let a_dest = if matches!(origin, Origin::Trunk(_)) {
            src.remote
        } else {
            build::dest_of(src.proto, caller_latch, &a_contact_uri, src.remote)
        };
        let a = Dialog {
            sip: sip::dialog::Dialog {
                call_id: key_of(&req).call_id,
                local: format!("{};tag={a_tag}", get(&req.headers, "To").unwrap_or("")),
                remote: from_hdr.clone(),
                target_uri: a_contact_uri,
                contact: build::contact(&dialed, src.proto, src.local),
                cseq: 0,
                route: sip::dialog::route_set_uas(&req.headers),
            },
            to: Target {
                proto: src.proto,
                dest: a_dest,
            },
            local_addr: src.local,
            sdp_version: 1,
            sent_sdp: None,
            srtp: a_srtp,
        };
        tracing::debug!(call = id, caller = %caller.number, callee = %dialed, "call");
        self.dialogs.insert(a.call_id.clone(), id);
        let ring_deadline = now + self.settings.ring_timeout;
        self.calls.insert(
            id,
            Call {
                id,
                caller_ext: if caller_ext.is_empty() {
                    caller.number.clone()
                } else {
                    caller_ext
                },
                caller_account,
                caller_peer: caller_peer.clone(),
                caller_codecs,
                callee_ext: dialed.clone(),
                a,
                a_key: key.clone(),
                a_req: req,
                a_offer: a_offer.clone(),
                legs: Vec::new(),
                answered: None,
                a_ep,
                created: now,
                answered_at: None,
                ring_deadline: Some(ring_deadline),
                ok: Vec::new(),
                reinvite: None,
                transcoding: false,
                maps: Default::default(),
                held_by: None,
                transfer: None,
                timed_out: false,
                refers: 0,
                plan: Default::default(),
                caller: caller.clone(),
                origin: call_origin,
                first_caller: caller.number.clone(),
                first_peer: caller_peer.clone(),
                dialled: dialed.clone(),
                caller_name: caller.display.clone(),
                final_status: 0,
                answered_by: String::new(),
                transferred_by: String::new(),
                trunk_out: String::new(),
                answer_due: None,
                late_offer,
                finished: false,
                caller_answered: false,
                app: None,
                armed: None,
            },
        );
        match app {
            Some(app) => self.start_app(now, id, app),
            None => self.start_plan(now, id, &dialed, 0, Vec::new()),
        }
    }

    /// Starts a leg to every destination of `dests` in call `id`, each offered the
    /// codecs of `template` (the session of the party they are to be connected to)
    /// that its account allows. Returns the new legs' indices.
    pub(crate) fn ring(
        &mut self,
        now: Instant,
        id: u64,
        dests: Vec<crate::route::Dest>,
        caller: &crate::route::Caller,
        template: &Audio,
    ) -> Vec<usize> {
        use crate::route::Dest;
        let Some(call) = self.calls.get(&id) else {
            return Vec::new();
        };
        let local = call.a.local_addr;
        let base = call.legs.len();
        let mut legs: Vec<Leg> = Vec::new();
        let mut starts = Vec::new();
        let mut peer_legs = Vec::new();
        let display = caller.display.clone();
        for d in dests {
            let (acct, reg) = match d {
                Dest::Peer(hops) => {
                    let Ok(ep) = self.media.take() else {
                        tracing::warn!(
                            call = id,
                            "no media endpoint left: a trunk leg is not rung"
                        );
                        continue;
                    };
                    peer_legs.push(base + legs.len());
                    let mut leg = Pbx::peer_leg(hops, caller, local, ep);
                    if let Some(p) = leg.peer.as_mut() {
                        p.template = Some(template.clone());
                    }
                    legs.push(leg);
                    continue;
                }
                Dest::Device(d) => *d,
            };
            if legs.iter().any(|l: &Leg| l.account == acct.username) {
                continue; // rung already (a group and a forward reaching the same phone)
            }
            // An encrypting phone's key goes only over TLS (a registration from before
            // the extension was set to encrypt may be over UDP or TCP).
            let encrypts = self.snapshot.encrypts(&acct);
            if encrypts && reg.proto() != sip::transport::Proto::Tls {
                tracing::warn!(
                    call = id,
                    account = acct.username,
                    "not rung: its extension encrypts calls and it registered without TLS"
                );
                continue;
            }
            let Ok(ep) = self.media.take() else {
                tracing::warn!(
                    call = id,
                    account = acct.username,
                    "no media endpoint left: not rung"
                );
                continue;
            };
            let Some(offer) = negotiate::offer(template, &acct.codecs, reg.local.ip(), ep.port)
            else {
                continue;
            };
            let proto = reg.proto();
            let branch = self.branch();
            let call_id = format!("{}@pbxd", self.random_hex(24));
            let tag = self.random_hex(10);
            let host = reg.local;
            let from = if display.is_empty() {
                format!("<sip:{}@{host}>;tag={tag}", caller.number)
            } else {
                format!("\"{display}\" <sip:{}@{host}>;tag={tag}", caller.number)
            };
            let to = format!("<sip:{}@{host}>", reg.extension);
            let via = build::via(proto, reg.local, &branch);
            let contact = build::contact(&caller.number, proto, reg.local);
            // A phone that encrypts is offered SRTP only; what goes to it is protected
            // from the start, what it sends readable once its answer gives its key.
            // A browser (registered over WebSocket) is offered WebRTC.
            let b_srtp =
                if proto == sip::transport::Proto::Wss && media::webrtc::fingerprint().is_some() {
                    Some(crate::secure::offered_webrtc(reg.local.ip()))
                } else {
                    encrypts.then(crate::secure::offered)
                };
            crate::secure::key(&ep, &b_srtp);
            let body = sdp::write(id, 1, &crate::secure::dress(&offer, &b_srtp));
            let bytes = sip::build::Request {
                method: "INVITE",
                uri: &reg.contact,
                via: &via,
                from: &from,
                to: &to,
                call_id: &call_id,
                cseq: 1,
                contact: Some(&contact),
                body: sip::build::Body::Sdp(&body),
                ..Default::default()
            }
            .build();
            let dest = reg.dest(acct.nat);
            let target = Target { proto, dest };
            let ack = AckBase {
                ruri: reg.contact.clone(),
                via,
                from: from.clone(),
                call_id: call_id.clone(),
                cseq: 1,
                route: Vec::new(),
            };
            starts.push((
                ClientKey::new(&branch, "INVITE"),
                bytes,
                target,
                base + legs.len(),
                ack.clone(),
            ));
            legs.push(Leg {
                account: acct.username.clone(),
                ep: Some(ep),
                peer: None,
                dialog: Dialog {
                    sip: sip::dialog::Dialog {
                        call_id,
                        local: from,
                        remote: to.clone(),
                        target_uri: reg.contact.clone(),
                        contact,
                        cseq: 1,
                        route: Vec::new(),
                    },
                    to: target,
                    local_addr: reg.local,
                    sdp_version: 1,
                    sent_sdp: Some(offer),
                    srtp: b_srtp,
                },
                branch,
                ack,
                to_initial: to,
                state: LegState::Calling,
                got_provisional: false,
                cancel_wanted: false,
            });
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return Vec::new();
        };
        for l in legs.iter().filter(|l| l.peer.is_none()) {
            self.dialogs.insert(l.dialog.call_id.clone(), id);
        }
        let added: Vec<usize> = (base..base + legs.len()).collect();
        call.legs.extend(legs);
        for (branch, bytes, target, idx, ack) in starts {
            self.start_client(
                now,
                branch,
                bytes,
                true,
                target,
                Owner::Leg(id, idx),
                Some(ack),
            );
        }
        for idx in peer_legs {
            self.send_peer_invite(now, id, idx, None);
        }
        added
    }

    /// Sends a request inside one side's dialog and returns nothing; `owner` gets the answer.
    fn send_in_dialog(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        method: &str,
        body: &[u8],
        owner: Owner,
    ) {
        self.send_in_dialog_with(now, id, side, method, Body::Sdp(body), &[], owner);
    }

    /// Like [`Self::send_in_dialog`], with any body and extra headers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_in_dialog_with(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        method: &str,
        body: Body,
        extra: &[(&str, String)],
        owner: Owner,
    ) {
        let branch = self.branch();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(d) = call.dialog(side) else { return };
        d.next_cseq();
        let via = build::via(d.to.proto, d.local_addr, &branch);
        let contact = matches!(method, "INVITE" | "NOTIFY").then(|| d.contact.clone());
        let bytes = sip::build::Request {
            method,
            uri: &d.target_uri,
            via: &via,
            from: &d.local,
            to: &d.remote,
            call_id: &d.call_id,
            cseq: d.cseq,
            contact: contact.as_deref(),
            route: &d.route,
            extra,
            body,
        }
        .build();
        let ack = (method == "INVITE").then(|| AckBase {
            ruri: d.target_uri.clone(),
            via,
            from: d.local.clone(),
            call_id: d.call_id.clone(),
            cseq: d.cseq,
            route: d.route.clone(),
        });
        let target = d.next_hop();
        self.start_client(
            now,
            ClientKey::new(&branch, method),
            bytes,
            method == "INVITE",
            target,
            owner,
            ack,
        );
    }

    /// A request inside dialog `d` with a new branch; returns the branch and the bytes.
    fn dialog_request(&mut self, d: &Dialog, method: &str, cseq: u32) -> (String, Vec<u8>) {
        let branch = self.branch();
        let via = build::via(d.to.proto, d.local_addr, &branch);
        let bytes = sip::build::Request {
            method,
            uri: &d.target_uri,
            via: &via,
            from: &d.local,
            to: &d.remote,
            call_id: &d.call_id,
            cseq,
            route: &d.route,
            ..Default::default()
        }
        .build();
        (branch, bytes)
    }

    /// BYE to a leg that answered but lost (or whose call is gone).
    pub(crate) fn bye_leg(&mut self, now: Instant, d: &Dialog) {
        let (branch, bytes) = self.dialog_request(d, "BYE", d.cseq + 1);
        self.start_client(
            now,
            ClientKey::new(&branch, "BYE"),
            bytes,
            false,
            d.next_hop(),
            Owner::Fire,
            None,
        );
    }

    /// ACK for a 2xx: end to end, outside any transaction.
    pub(crate) fn ack_2xx(&mut self, d: &Dialog, cseq: u32) {
        let (_, bytes) = self.dialog_request(d, "ACK", cseq);
        self.send(d.next_hop(), bytes);
    }

    pub(crate) fn cancel_leg(&mut self, now: Instant, id: u64, idx: usize) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = &mut call.legs[idx];
        if !matches!(leg.state, LegState::Calling | LegState::Ringing) {
            return;
        }
        leg.cancel_wanted = true;
        // RFC 3261 9.1: no CANCEL before a provisional response.
        if !leg.got_provisional {
            return;
        }
        let bytes = leg.ack.cancel(&leg.to_initial);
        let (target, via_branch) = (leg.dialog.to, leg.branch.clone());
        // CANCEL has the INVITE's branch; keep its transaction apart by method.
        let ckey = ClientKey::new(&via_branch, "CANCEL");
        self.start_client(now, ckey, bytes, false, target, Owner::Fire, None);
    }

    pub(crate) fn end_call(&mut self, id: u64) -> Option<Call> {
        self.queue_call_ended(id);
        let call = self.calls.remove(&id)?;
        self.leave_room(id);
        self.unpark(id);
        self.dialogs.remove(&call.a.call_id);
        for l in &call.legs {
            self.dialogs.remove(&l.dialog.call_id);
        }
        tracing::debug!(call = id, "call ended");
        self.record(&call);
        Some(call)
    }

    /// Emits the history record of a call refused before anything rang.
    fn record_attempt(
        &mut self,
        now: Instant,
        caller: &crate::route::Caller,
        dialled: &str,
        status: u16,
        inbound: Option<String>,
    ) {
        use store::history::{CallRecord, Direction, Outcome};
        let t = self.unix(now);
        self.records.push_back(CallRecord {
            id: 0,
            start: t,
            answered: None,
            end: t,
            caller: caller.number.clone(),
            caller_name: caller.display.clone(),
            called: dialled.to_string(),
            answered_by: String::new(),
            // Nothing rang: a 480 here means nobody could be reached.
            outcome: match status {
                480 => Outcome::Unavailable,
                s => Outcome::of_status(s),
            },
            status,
            duration: 0,
            direction: if inbound.is_some() {
                Direction::Inbound
            } else {
                Direction::Internal
            },
            trunk: inbound.unwrap_or_default(),
            transferred_by: String::new(),
        });
    }

    /// Emits the history record of a call that is over.
    pub(crate) fn record(&mut self, call: &Call) {
        use store::history::{CallRecord, Direction, Outcome};
        let now = self.last_now;
        let status = match call.final_status {
            0 if call.answered_at.is_some() => 200,
            0 => 500,
            s => s,
        };
        let end = self.unix(now);
        let answered = call.answered_at.map(|t| self.unix(t));
        let inbound = call.first_peer.clone();
        let direction = if inbound.is_some() {
            Direction::Inbound
        } else if !call.trunk_out.is_empty() {
            Direction::Outbound
        } else {
            Direction::Internal
        };
        self.records.push_back(CallRecord {
            id: 0,
            start: self.unix(call.created),
            answered,
            end,
            caller: call.first_caller.clone(),
            caller_name: call.caller_name.clone(),
            called: call.dialled.clone(),
            answered_by: call.answered_by.clone(),
            // A 480 without ringing out the time: nobody could be reached.
            outcome: match status {
                480 if !call.timed_out => Outcome::Unavailable,
                s => Outcome::of_status(s),
            },
            status,
            duration: answered.map_or(0, |a| end.saturating_sub(a)),
            direction,
            trunk: inbound.unwrap_or_else(|| call.trunk_out.clone()),
            transferred_by: call.transferred_by.clone(),
        });
    }

    /// The caller gets a final failure and the call goes.
    pub(crate) fn fail_call(&mut self, now: Instant, id: u64, status: u16, why: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.caller_answered {
            // The box answered the caller (an auto attendant rang a number for it):
            // nobody took the call, so the box hangs up.
            call.plan.step_deadline = None;
            call.plan.next.clear();
            tracing::info!(
                call = id,
                status,
                why,
                "nobody took the call the box rang for its caller"
            );
            return self.hang_up(now, id, Some(Side::B));
        }
        call.final_status = status;
        call.plan.step_deadline = None;
        call.plan.next.clear();
        let (key, req, tag) = (
            call.a_key.clone(),
            call.a_req.clone(),
            call.a.local.rsplit_once(";tag=").map(|t| t.1.to_string()),
        );
        for i in 0..call.legs.len() {
            self.cancel_leg(now, id, i);
        }
        let text = if why.is_empty() {
            reason(status).to_string()
        } else {
            format!("{} ({why})", reason(status))
        };
        let r = Response::to(&req, status, &text)
            .tag(tag.as_deref())
            .build();
        self.respond(now, &key, status, r);
        // Legs still waiting for a provisional will be cancelled when it comes: keep the
        // call until every leg is settled.
        let pending = self.calls.get(&id).is_some_and(|c| {
            c.legs.iter().any(|l| {
                l.cancel_wanted && !l.got_provisional && matches!(l.state, LegState::Calling)
            })
        });
        if pending {
            // The ring deadline now bounds how long unsettled legs may take (64*T1).
            if let Some(c) = self.calls.get_mut(&id) {
                c.ring_deadline = Some(now + self.settings.timers.t1 * 64);
                c.finished = true;
            }
            self.arm_call(id);
        } else {
            self.end_call(id);
        }
    }

    pub(crate) fn leg_response(
        &mut self,
        now: Instant,
        id: u64,
        idx: usize,
        resp: &rsip::Response,
        status: u16,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let finished = call.finished;
        let in_transfer = call
            .transfer
            .as_ref()
            .is_some_and(|t| t.legs.contains(&idx));
        if key(&resp.headers).call_id != call.legs[idx].dialog.call_id {
            // The leg's dialog moved to the caller's place (a transfer): only a
            // retransmitted 2xx can come, and it is ACKed there.
            if (200..300).contains(&status) && key(&resp.headers).call_id == call.a.call_id {
                let d = clone_dialog(&call.a);
                self.ack_2xx(&d, key(&resp.headers).cseq);
            }
            return;
        }
        let leg = &mut call.legs[idx];
        if let Some(to) = get(&resp.headers, "To") {
            if sip::message::header_param(to, "tag").is_some() {
                leg.dialog.remote = to.to_string();
            }
        }
        if let Some(c) = build::contact_uri(&resp.headers) {
            leg.dialog.target_uri = c;
        }
        if (101..300).contains(&status) && leg.state != LegState::Answered {
            leg.dialog.route = sip::dialog::route_set_uac(&resp.headers);
        }
        // A transfer's leg rings like any other (its provisionals go nowhere: the call
        // is answered); its answer or failure is the transfer's.
        if in_transfer && status >= 200 {
            return self.transfer_leg_response(now, id, idx, resp, status);
        }
        match status {
            100 => {}
            101..=199 => {
                leg.got_provisional = true;
                if leg.state == LegState::Calling {
                    leg.state = LegState::Ringing;
                }
                if leg.cancel_wanted {
                    self.cancel_leg(now, id, idx);
                    return;
                }
                if in_transfer {
                    if status >= 180 {
                        self.transfer_ringing(now, id);
                    }
                    return;
                }
                if finished || call.answered.is_some() || call.caller_answered {
                    return;
                }
                let mut body = Vec::new();
                // A late-offer caller cannot take an offer in an unreliable provisional.
                if !resp.body.is_empty() && !call.late_offer {
                    let ans = sdp::parse(&resp.body)
                        .ok()
                        .filter(|a| crate::secure::take_answer(&mut leg.dialog.srtp, a).is_ok());
                    if let Some(ans) = ans {
                        if let Some(ep) = &leg.ep {
                            crate::secure::key(ep, &leg.dialog.srtp);
                        }
                        if let Some(br) = negotiate::bridge(
                            &call.a_offer,
                            &ans,
                            call.a.local_addr.ip(),
                            call.a_ep.port,
                        ) {
                            let latch = crate::route::leg_latch(&self.snapshot, leg);
                            if let Some(ep) = &leg.ep {
                                connect_callee(&call.a_ep, ep, &ans, &br, latch);
                            }
                            body = sdp::write(
                                id,
                                call.a.sdp_version,
                                &crate::secure::dress(&br.answer, &call.a.srtp),
                            );
                            call.a.sent_sdp = Some(br.answer);
                        }
                    }
                }
                let tag = call.a.local.rsplit_once(";tag=").map(|t| t.1.to_string());
                let r = Response::to(&call.a_req, status, reason(status))
                    .tag(tag.as_deref())
                    .contact(&call.a.contact)
                    .sdp(&body)
                    .build();
                let key = call.a_key.clone();
                self.respond(now, &key, status, r);
            }
            200..=299 => {
                // The ACK has the CSeq number of the INVITE the 2xx answers (a leg
                // sent again with credentials is at 2).
                let leg_dialog_cseq = key(&resp.headers).cseq;
                if key(&resp.headers).call_id == call.a.call_id {
                    // A retransmitted 2xx of a leg that took the caller's place (a
                    // transfer): ACK it in that dialog.
                    let d = clone_dialog(&call.a);
                    self.ack_2xx(&d, leg_dialog_cseq);
                    return;
                }
                leg.got_provisional = true;
                // An application (voicemail after no answer) took the call meanwhile,
                // unless it is the queue the caller waits in for this agent.
                let for_queue = call.answered.is_none() && self.is_queue_leg(id, idx);
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                let leg = &mut call.legs[idx];
                let answered_elsewhere =
                    call.answered.is_some_and(|i| i != idx) || (call.app.is_some() && !for_queue);
                if call.answered == Some(idx) {
                    // A retransmitted 2xx: ACK it again.
                    let d = clone_dialog(&call.legs[idx].dialog);
                    self.ack_2xx(&d, leg_dialog_cseq);
                    return;
                }
                let d = clone_dialog(&leg.dialog);
                self.ack_2xx(&d, leg_dialog_cseq);
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                let leg = &mut call.legs[idx];
                if answered_elsewhere || leg.cancel_wanted || finished {
                    leg.state = LegState::Done(200);
                    let l = clone_dialog(&leg.dialog);
                    self.bye_leg(now, &l);
                    self.settle_if_finished(id);
                    return;
                }
                // On an SRTP leg an answer without the party's key is no answer.
                let ans = sdp::parse(&resp.body)
                    .ok()
                    .filter(|a| crate::secure::take_answer(&mut leg.dialog.srtp, a).is_ok());
                // A caller the box answered already keeps the codec it agreed to.
                let caller_side = match (&call.a.sent_sdp, call.caller_answered) {
                    (Some(agreed), true) => negotiate::narrow(&call.a_offer, agreed),
                    _ => call.a_offer.clone(),
                };
                let br = ans.as_ref().and_then(|ans| {
                    negotiate::bridge(&caller_side, ans, call.a.local_addr.ip(), call.a_ep.port)
                });
                let (Some(ans), Some(br)) = (ans, br) else {
                    leg.state = LegState::Done(488);
                    let l = clone_dialog(&leg.dialog);
                    self.bye_leg(now, &l);
                    self.leg_failed(now, id);
                    return;
                };
                leg.state = LegState::Answered;
                let latch = crate::route::leg_latch(&self.snapshot, leg);
                if let Some(ep) = &leg.ep {
                    crate::secure::key(ep, &leg.dialog.srtp);
                }
                if call.caller_answered {
                    // The ringback the box played stops; no more digits are listened for.
                    call.a_ep.stop();
                    call.a_ep.listen(media::Listen::default());
                }
                if let Some(ep) = &leg.ep {
                    connect_callee(&call.a_ep, ep, &ans, &br, latch);
                }
                call.maps = (br.forward, br.backward);
                // The session with this side is now what it chose from our offer.
                leg.dialog.sent_sdp = leg
                    .dialog
                    .sent_sdp
                    .take()
                    .map(|o| negotiate::narrow(&o, &ans));
                call.transcoding = br.transcoding;
                call.answered = Some(idx);
                call.answered_at = Some(now);
                call.final_status = 200;
                call.answered_by = call.legs[idx].number(&self.snapshot);
                call.trunk_out = call.legs[idx]
                    .peer
                    .as_ref()
                    .map(|p| p.current().to_string())
                    .unwrap_or_default();
                call.ring_deadline = None;
                if call.caller_answered {
                    let others: Vec<usize> = (0..call.legs.len()).filter(|i| *i != idx).collect();
                    tracing::debug!(call = id, "answered for a caller the box had answered");
                    if for_queue {
                        self.queue_answered(now, id, idx);
                    }
                    self.arm_call(id);
                    for i in others {
                        self.cancel_leg(now, id, i);
                    }
                    return;
                }
                if call.late_offer {
                    call.answer_due = Some(Side::A);
                }
                let body = sdp::write(
                    id,
                    call.a.sdp_version,
                    &crate::secure::dress(&br.answer, &call.a.srtp),
                );
                call.a.sent_sdp = Some(br.answer);
                let tag = call.a.local.rsplit_once(";tag=").map(|t| t.1.to_string());
                let r = Response::to(&call.a_req, 200, "OK")
                    .tag(tag.as_deref())
                    .contact(&call.a.contact)
                    .sdp(&body)
                    .build();
                let key = call.a_key.clone();
                let cseq = key_of(&call.a_req).cseq;
                self.await_ack(now, id, Side::A, &r, &key, cseq);
                let Some(call) = self.calls.get(&id) else {
                    return;
                };
                let others: Vec<usize> = (0..call.legs.len()).filter(|i| *i != idx).collect();
                tracing::debug!(call = id, account = %call.legs[idx].account, transcoding = call.transcoding, "answered");
                self.respond(now, &key, 200, r);
                self.arm_call(id);
                for i in others {
                    self.cancel_leg(now, id, i);
                }
            }
            _ => {
                if leg.peer.is_some() && self.peer_leg_failed(now, id, idx, Some(resp), status) {
                    return;
                }
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                let leg = &mut call.legs[idx];
                leg.state = LegState::Done(status);
                leg.cancel_wanted = false;
                if finished {
                    self.settle_if_finished(id);
                } else if call.answered.is_none() {
                    self.leg_failed(now, id);
                }
            }
        }
    }

    /// After a call failed towards the caller, drops it once no leg is still pending.
    fn settle_if_finished(&mut self, id: u64) {
        let done = self.calls.get(&id).is_some_and(|c| {
            c.finished && c.legs.iter().all(|l| matches!(l.state, LegState::Done(_)))
        });
        if done {
            self.end_call(id);
        }
    }

    /// A leg failed: when every leg of the plan's current step has, the plan goes on.
    pub(crate) fn leg_failed(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.app.is_some() && call.answered.is_none() {
            return self.queue_leg_failed(now, id);
        }
        if call.answered.is_some() || call.app.is_some() || call.finished {
            return;
        }
        let step = &call.legs[call.plan.step_first.min(call.legs.len())..];
        if step.iter().all(|l| matches!(l.state, LegState::Done(_))) {
            self.step_failed(now, id);
        }
    }

    pub(crate) fn client_timed_out(&mut self, now: Instant, owner: Owner) {
        match owner {
            Owner::Leg(id, idx) => {
                if self.peer_leg_failed(now, id, idx, None, 408) {
                    return;
                }
                if let Some(call) = self.calls.get_mut(&id) {
                    call.legs[idx].state = LegState::Done(408);
                    call.legs[idx].cancel_wanted = false;
                    if call
                        .transfer
                        .as_ref()
                        .is_some_and(|t| t.legs.contains(&idx))
                    {
                        self.transfer_check(now, id);
                    } else if call.finished {
                        self.settle_if_finished(id);
                    } else {
                        self.leg_failed(now, id);
                    }
                }
            }
            Owner::Reinvite(id) => {
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                if let Some(ri) = call.reinvite.take() {
                    // Unanswered: the session with the other side stays as it was.
                    let other = ri.from.other();
                    if let Some(d) = call.dialog(other) {
                        d.sent_sdp = ri.prev.clone();
                    }
                    let r = Response::to(&ri.req, 408, "Request Timeout").build();
                    self.respond(now, &ri.key, 408, r);
                }
            }
            Owner::Register(name) => self.register_timed_out(now, &name),
            Owner::Options(name) => self.options_result(&name, false),
            // RFC 6665 4.2.2: a NOTIFY that times out ends its subscription.
            Owner::Subscription(id) => self.subscription_refused(&id, 408),
            Owner::Fire => {}
        }
    }

    pub(crate) fn call_timeout(&mut self, now: Instant, id: u64) {
        self.app_timeout(now, id);
        if self
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| t.deadline <= now)
        {
            self.transfer_check(now, id);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.ring_deadline.is_some_and(|d| d <= now) {
            call.ring_deadline = None;
            if call.finished {
                // Legs that never answered anything: give up on them.
                self.end_call(id);
                return;
            }
            if call.answered.is_none() {
                tracing::info!(call = id, "no answer");
                self.plan_failed(now, id, true);
                return;
            }
        }
        if call.answered.is_none()
            && !call.finished
            && call.plan.step_deadline.is_some_and(|d| d <= now)
        {
            self.step_timeout(now, id);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let mut resend = Vec::new();
        let mut hang_up = false;
        let t2 = self.settings.timers.t2;
        for ok in call.ok.iter_mut() {
            match ok.timer.handle_timeout(now, t2) {
                sip::dialog::Resend::GiveUp => hang_up = true,
                sip::dialog::Resend::Again if !ok.target.proto.reliable() => {
                    resend.push((ok.target, ok.bytes.clone()));
                }
                _ => {}
            }
        }
        if hang_up {
            call.ok.clear();
            tracing::info!(call = id, "no ACK for 200 OK: hanging up");
            self.hang_up(now, id, None);
            return;
        }
        for (t, b) in resend {
            self.send(t, b);
        }
        self.arm_call(id);
    }

    /// Ends a call on the administrator's order: an answered call gets BYE on both sides,
    /// a ringing one answers the caller 480 and cancels the ringing phones. False when
    /// no such call is in progress.
    pub(crate) fn terminate(&mut self, now: Instant, id: u64) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        if call.finished {
            return false;
        }
        tracing::info!(call = id, "hung up by the administrator");
        if call.answered.is_some() || call.app.is_some() {
            self.hang_up(now, id, None);
        } else {
            self.fail_call(now, id, 480, "hung up by the administrator");
        }
        true
    }

    /// Ends an answered call: BYE to every side except `except`.
    pub(crate) fn hang_up(&mut self, now: Instant, id: u64, except: Option<Side>) {
        // An application hears the end however it comes (the admin's hang-up, a lost
        // ACK): the voicemail menu carries out what the caller decided.
        if self.calls.get(&id).is_some_and(|c| c.app.is_some()) {
            self.app_caller_gone(now, id);
        }
        // Legs still ringing (a transfer's) are cancelled.
        let ringing = self.calls.get(&id).map_or(0, |c| c.legs.len());
        for i in 0..ringing {
            self.cancel_leg(now, id, i);
        }
        // A transferor that has gone (a parker) has no dialog left to end.
        let gone = self
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .filter(|t| t.by_gone)
            .map(|t| t.by);
        if except != Some(Side::A) && gone != Some(Side::A) {
            self.send_in_dialog(now, id, Side::A, "BYE", b"", Owner::Fire);
        }
        if except != Some(Side::B) && gone != Some(Side::B) {
            self.send_in_dialog(now, id, Side::B, "BYE", b"", Owner::Fire);
        }
        // A leg that has not answered anything yet can only be cancelled once it does:
        // the call stays (finished, out of the dialog table) until every leg settles.
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let pending = call
            .legs
            .iter()
            .any(|l| l.cancel_wanted && !l.got_provisional && matches!(l.state, LegState::Calling));
        if pending {
            call.finished = true;
            call.transfer = None;
            call.ok.clear();
            call.ring_deadline = Some(now + self.settings.timers.t1 * 64);
            let ids: Vec<String> = std::iter::once(call.a.call_id.clone())
                .chain(call.answered.map(|i| call.legs[i].dialog.call_id.clone()))
                .collect();
            for c in ids {
                self.dialogs.remove(&c);
            }
            // Its slot, its room and its queue place are free at once, not when the
            // last leg settles.
            self.unpark(id);
            self.leave_room(id);
            self.queue_call_ended(id);
            self.arm_call(id);
        } else {
            self.end_call(id);
        }
    }

    /// An ACK for a 2xx we sent: the retransmissions stop, and an answer due in it (to
    /// the box's offer) points the relay at that side.
    pub(crate) fn dialog_ack(&mut self, now: Instant, req: &rsip::Request) {
        let k = key_of(req);
        let Some(&id) = self.dialogs.get(&k.call_id) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let before = call.ok.len();
        call.ok
            .retain(|o| !(o.call_id == k.call_id && o.timer.cseq == k.cseq));
        if call.ok.len() == before {
            return; // a repeated ACK, or one for another transaction
        }
        let Some(side) = call.answer_due.take() else {
            return;
        };
        let offered = call.dialog(side).and_then(|d| d.sent_sdp.clone());
        let answer = sdp::parse(&req.body).ok().filter(|a| {
            offered.as_ref().is_some_and(|o| {
                a.codecs.iter().any(|c| {
                    !c.is_dtmf()
                        && o.codecs
                            .iter()
                            .any(|m| m.name.eq_ignore_ascii_case(&c.name))
                })
            })
        });
        // On an SRTP side the answer must carry the party's key.
        let answer = answer.filter(|a| {
            call.dialog(side)
                .is_some_and(|d| crate::secure::take_answer(&mut d.srtp, a).is_ok())
        });
        let Some(answer) = answer else {
            // RFC 3261 13.3.1.4: an ACK without a usable answer ends the session.
            tracing::info!(call = id, side = ?side, "no usable SDP answer in the ACK: hanging up");
            return self.hang_up(now, id, None);
        };
        let srtp = call.dialog(side).and_then(|d| d.srtp.clone());
        if let Some(ep) = call.ep(side) {
            ep.set_remote(answer.rtp_target(), ep.side().latch);
            crate::secure::key(ep, &srtp);
        }
    }

    pub(crate) fn cancel(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: &rsip::Request,
    ) {
        let inv = ServerKey::new(&key.branch, "INVITE", src.remote);
        let k = key_of(req);
        let call = self
            .dialogs
            .get(&k.call_id)
            .copied()
            .filter(|id| self.calls.get(id).is_some_and(|c| c.a_key == inv));
        let Some(id) = call else {
            return self.reply(now, key, req, 481, "");
        };
        // RFC 3261 9.2: the same To tag as the INVITE's responses.
        let tag = self.calls[&id]
            .a
            .local
            .rsplit_once(";tag=")
            .map(|t| t.1.to_string());
        let r = Response::to(req, 200, "OK").tag(tag.as_deref()).build();
        self.respond(now, key, 200, r);
        // A CANCEL that crossed the 200 of an application changes nothing (RFC 3261
        // 9.2): the caller ACKs and then hangs up with a BYE.
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.answered.is_none() && c.app.is_none())
        {
            tracing::debug!(call = id, "cancelled by the caller");
            self.fail_call(now, id, 487, "");
        }
    }

    pub(crate) fn in_dialog(
        &mut self,
        now: Instant,
        _src: Source,
        key: &ServerKey,
        req: rsip::Request,
    ) {
        let k = key_of(&req);
        let method = req.method.to_string();
        let Some(&id) = self.dialogs.get(&k.call_id) else {
            return self.reply(now, key, &req, 481, "");
        };
        let Some(call) = self.calls.get(&id) else {
            return self.reply(now, key, &req, 481, "");
        };
        let side = if call.a.call_id == k.call_id {
            Side::A
        } else if call
            .answered
            .is_some_and(|i| call.legs[i].dialog.call_id == k.call_id)
        {
            Side::B
        } else {
            return self.reply(now, key, &req, 481, "");
        };
        let other = if side == Side::A { Side::B } else { Side::A };
        let answered = call.answered.is_some() || call.app.is_some() || call.caller_answered;
        match method.as_str() {
            "BYE" => {
                let r = Response::to(&req, 200, "OK").build();
                self.respond(now, key, 200, r);
                if let Some(t) = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.transfer.as_mut())
                    .filter(|t| t.by == side)
                {
                    // The transferor leaves after its REFER was accepted: the transfer
                    // goes on without it.
                    t.by_gone = true;
                    self.dialogs.remove(&k.call_id);
                    tracing::debug!(call = id, "the transferor hung up; the transfer goes on");
                    return;
                }
                if !answered {
                    // BYE on an early dialog: treat as a cancel.
                    self.fail_call(now, id, 487, "");
                } else {
                    self.app_caller_gone(now, id);
                    tracing::debug!(call = id, side = ?side, "hung up");
                    self.hang_up(now, id, Some(side));
                }
            }
            "INVITE" => self.reinvite(now, id, side, other, key, req),
            "REFER" => self.refer(now, id, side, key, req),
            "INFO" => {
                let ty = sip::message::get(&req.headers, "Content-Type");
                match crate::dtmf::parse_info(ty, &req.body) {
                    Ok(info) => {
                        let r = Response::to(&req, 200, "OK").build();
                        self.respond(now, key, 200, r);
                        if let crate::dtmf::Info::Digit(ev, ms) = info {
                            let digit = media::dtmf::digit_char(ev);
                            if !digit.is_some_and(|d| self.app_info_digit(now, id, d)) {
                                self.send_digit(id, side, ev, ms);
                            }
                        }
                    }
                    Err(why) => self.reply(now, key, &req, 400, why),
                }
            }
            "OPTIONS" => {
                let r = Response::to(&req, 200, "OK").build();
                self.respond(now, key, 200, r);
            }
            _ => {
                let r = Response::to(&req, 501, "Not Implemented").build();
                self.respond(now, key, 501, r);
            }
        }
    }

    fn reinvite(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        other: Side,
        key: &ServerKey,
        req: rsip::Request,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.reinvite.is_some() || !call.ok.is_empty() {
            return self.reply(now, key, &req, 491, "");
        }
        // Nobody else to ask: the box itself answers the caller (an application: a
        // conference, a menu), or the other side has gone (a parked call).
        let gone = call
            .transfer
            .as_ref()
            .is_some_and(|t| t.by_gone && t.by == other);
        if (call.app.is_some() && side == Side::A) || (gone && call.answered.is_some()) {
            return self.reinvite_local(now, id, side, key, req);
        }
        if call.answered.is_none() {
            return self.reply(now, key, &req, 491, "");
        }
        if let (Some(c), Some(d)) = (build::contact_uri(&req.headers), call.dialog(side)) {
            d.target_uri = c; // target refresh
        }
        if req.body.is_empty() {
            // No offer: the 200 offers the description this side already has, and
            // the answer comes in the ACK (RFC 3261 14.2).
            let d = call.dialog(side).expect("answered");
            let Some(sdp_prev) = d.sent_sdp.clone() else {
                return self.reply(now, key, &req, 488, "");
            };
            d.sdp_version += 1;
            let body = sdp::write(id, d.sdp_version, &crate::secure::dress(&sdp_prev, &d.srtp));
            let contact = d.contact.clone();
            let r = Response::to(&req, 200, "OK")
                .contact(&contact)
                .sdp(&body)
                .build();
            call.answer_due = Some(side);
            self.await_ack(now, id, side, &r, key, key_of(&req).cseq);
            return self.respond(now, key, 200, r);
        }
        let offer = match sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => return self.reply(now, key, &req, 488, &e.to_string()),
        };
        let srtp = match self.srtp_offer(id, side, &offer) {
            Ok(s) => s,
            Err(why) => return self.reply(now, key, &req, 488, why),
        };
        if self.hold_offer(now, id, side, key, &req, (&offer, &srtp)) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let codecs = match other {
            Side::A => call.caller_codecs.clone(),
            Side::B => {
                let leg = &call.legs[call.answered.expect("answered")];
                crate::route::leg_codecs(&self.snapshot, leg)
            }
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let port = call.ep(other).map_or(0, |e| e.port);
        let d = call.dialog(other).expect("answered");
        let Some(mut fwd) = negotiate::offer(&offer, &codecs, d.local_addr.ip(), port) else {
            return self.reply(now, key, &req, 488, "no codec in common");
        };
        // A new offer keeps the m-lines of the session it changes (RFC 3264 8).
        if let Some(prev) = &d.sent_sdp {
            fwd.index = prev.index;
            fwd.rejected = prev.rejected.clone();
        }
        d.sdp_version += 1;
        let body = sdp::write(id, d.sdp_version, &crate::secure::dress(&fwd, &d.srtp));
        let prev = d.sent_sdp.replace(fwd);
        call.reinvite = Some(Reinvite {
            from: side,
            key: key.clone(),
            req,
            offer,
            prev,
            srtp,
        });
        self.send_in_dialog(now, id, other, "INVITE", &body, Owner::Reinvite(id));
    }

    /// A re-INVITE the box answers alone (from an application's caller, or from a
    /// parked party whose other side has gone): the session stays as it is, in the
    /// direction the offer asks (hold answered recvonly or inactive), following the
    /// party's new address; without an offer the 200 offers the session again and the
    /// answer comes in the ACK. A session timer's refresh or a phone's hold keeps the
    /// call instead of failing it.
    fn reinvite_local(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        key: &ServerKey,
        req: rsip::Request,
    ) {
        let offer = if req.body.is_empty() {
            None
        } else {
            match sdp::parse(&req.body) {
                Ok(o) => Some(o),
                Err(e) => return self.reply(now, key, &req, 488, &e.to_string()),
            }
        };
        let srtp = match &offer {
            Some(o) => match self.srtp_offer(id, side, o) {
                Ok(s) => Some(s),
                Err(why) => return self.reply(now, key, &req, 488, why),
            },
            None => None,
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let (Some(c), Some(d)) = (build::contact_uri(&req.headers), call.dialog(side)) {
            d.target_uri = c; // target refresh
        }
        let Some(mut answer) = call.dialog(side).and_then(|d| d.sent_sdp.clone()) else {
            return self.reply(now, key, &req, 488, "no session");
        };
        match &offer {
            Some(o) => {
                // The session's codec must still be offered (same payload type: the
                // endpoint keeps sending it).
                let codec = answer.codecs.iter().find(|c| !c.is_dtmf()).cloned();
                if !codec.is_some_and(|c| {
                    o.codecs
                        .iter()
                        .any(|x| x.pt == c.pt && x.name.eq_ignore_ascii_case(&c.name))
                }) {
                    return self.reply(now, key, &req, 488, "the session's codec is not offered");
                }
                answer.direction = o.direction.reverse();
                answer.index = o.index;
                answer.rejected = o.rejected.clone();
                if let Some(ep) = call.ep(side) {
                    ep.set_remote(o.rtp_target(), ep.side().latch);
                }
            }
            None => call.answer_due = Some(side),
        }
        if let Some(s) = srtp {
            call.take_srtp(side, s);
        }
        let d = call.dialog(side).expect("side A, or B of an answered call");
        d.sdp_version += 1;
        let body = sdp::write(id, d.sdp_version, &crate::secure::dress(&answer, &d.srtp));
        let contact = d.contact.clone();
        let r = Response::to(&req, 200, "OK")
            .contact(&contact)
            .sdp(&body)
            .build();
        tracing::debug!(call = id, side = ?side, "re-INVITE answered by the box");
        self.await_ack(now, id, side, &r, key, key_of(&req).cseq);
        self.respond(now, key, 200, r);
    }

    pub(crate) fn reinvite_response(
        &mut self,
        now: Instant,
        id: u64,
        resp: &rsip::Response,
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(ri) = call.reinvite.take() else {
            // A retransmitted 2xx: ACK again.
            if (200..300).contains(&status) {
                let side = if call.a.call_id == key(&resp.headers).call_id {
                    Side::A
                } else {
                    Side::B
                };
                if let Some(d) = call.dialog(side) {
                    let (d, cseq) = (clone_dialog(d), key(&resp.headers).cseq);
                    self.ack_2xx(&d, cseq);
                }
            }
            return;
        };
        let other = if ri.from == Side::A { Side::B } else { Side::A };
        if status >= 300 {
            // Refused (491 glare included: the offerer retries after its own random
            // wait, RFC 3261 14.1): both sessions stay as they were.
            if let Some(d) = call.dialog(other) {
                d.sent_sdp = ri.prev;
            }
            let r = Response::to(&ri.req, status, reason(status)).build();
            return self.respond(now, &ri.key, status, r);
        }
        let cseq = key(&resp.headers).cseq;
        if let Some(d) = call.dialog(other) {
            if let Some(c) = build::contact_uri(&resp.headers) {
                d.target_uri = c;
            }
            let d = clone_dialog(d);
            self.ack_2xx(&d, cseq);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let port = call.ep(ri.from).map_or(0, |e| e.port);
        let ip = call.dialog(ri.from).expect("answered").local_addr.ip();
        let Some((ans, br)) = sdp::parse(&resp.body)
            .ok()
            .filter(|a| {
                call.dialog(other)
                    .is_some_and(|d| crate::secure::take_answer(&mut d.srtp, a).is_ok())
            })
            .and_then(|a| negotiate::bridge(&ri.offer, &a, ip, port).map(|b| (a, b)))
        else {
            let r = Response::to(&ri.req, 488, "Not Acceptable Here").build();
            return self.respond(now, &ri.key, 488, r);
        };
        call.maps = if ri.from == Side::A {
            (br.forward, br.backward)
        } else {
            (br.backward, br.forward)
        };
        let answerer_srtp = call.dialog(other).and_then(|d| d.srtp.clone());
        if let (Some(offerer), Some(answerer)) = (call.ep(ri.from), call.ep(other)) {
            offerer.set_remote(ri.offer.rtp_target(), offerer.side().latch);
            answerer.set_remote(ans.rtp_target(), answerer.side().latch);
            crate::secure::key(answerer, &answerer_srtp);
            // On hold the music goes on until the holder resumes.
            if call.held_by.is_none() {
                offerer.connect(answerer, br.forward, br.backward);
            }
        }
        call.transcoding = br.transcoding;
        if let Some(d) = call.dialog(other) {
            d.sent_sdp = d.sent_sdp.take().map(|o| negotiate::narrow(&o, &ans));
        }
        call.take_srtp(ri.from, ri.srtp);
        let d = call.dialog(ri.from).expect("answered");
        d.sdp_version += 1;
        let body = sdp::write(
            id,
            d.sdp_version,
            &crate::secure::dress(&br.answer, &d.srtp),
        );
        d.sent_sdp = Some(br.answer);
        let contact = d.contact.clone();
        let r = Response::to(&ri.req, 200, "OK")
            .contact(&contact)
            .sdp(&body)
            .build();
        self.await_ack(now, id, ri.from, &r, &ri.key, key_of(&ri.req).cseq);
        self.respond(now, &ri.key, 200, r);
    }

    /// What a side's new offer makes of its dialog's SRTP (or WebRTC) state, not yet
    /// taken: [`Call::take_srtp`] takes it once the offer is answered 2xx, so that a
    /// refused offer leaves the session as it was (RFC 3264 8) and the party's keys
    /// work until its offer is accepted (RFC 4568 7.1.4). `Err`: the reason for a 488.
    fn srtp_offer(
        &mut self,
        id: u64,
        side: Side,
        offer: &Audio,
    ) -> Result<Option<LegSrtp>, &'static str> {
        let mut s = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.dialog(side))
            .and_then(|d| d.srtp.clone());
        crate::secure::take_offer(&mut s, offer, None)?;
        Ok(s)
    }

    /// A re-INVITE that puts the other side on hold, or takes it off hold, is answered
    /// by the box itself: the held side hears music on hold from its endpoint and is
    /// not asked anything; resuming connects the two endpoints again. False when the
    /// offer is neither (or changes the codec), and goes to the other side as usual.
    /// The offer comes with what it makes of the side's keys (taken when answered).
    fn hold_offer(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        key: &ServerKey,
        req: &rsip::Request,
        (offer, srtp): (&Audio, &Option<LegSrtp>),
    ) -> bool {
        use sdp::Direction;
        // A browser's address is ICE's, never the description's: 0.0.0.0 there is no
        // hold.
        let old_hold = offer.addr.is_unspecified() && offer.webrtc.is_none();
        let holds =
            matches!(offer.direction, Direction::SendOnly | Direction::Inactive) || old_hold;
        let moh = self.hold_music();
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let other = if side == Side::A { Side::B } else { Side::A };
        if !holds && call.held_by != Some(side) {
            return false;
        }
        // The session with this side goes on with the codec it has, if the offer has it.
        let Some(current) = call.dialog(side).and_then(|d| d.sent_sdp.clone()) else {
            return false;
        };
        let Some(codec) = current.codecs.iter().find(|c| !c.is_dtmf()).cloned() else {
            return false;
        };
        // (with the same payload type, so that the relay's maps still hold).
        if !offer
            .codecs
            .iter()
            .any(|c| c.pt == codec.pt && c.name.eq_ignore_ascii_case(&codec.name))
        {
            return false;
        }
        let mut answer = current.clone();
        answer.direction = if holds {
            offer.direction.reverse()
        } else {
            Direction::SendRecv
        };
        if offer.addr.is_unspecified()
            && offer.webrtc.is_none()
            && offer.direction == Direction::SendRecv
        {
            answer.direction = Direction::SendRecv; // RFC 2543 hold: mirrored as is
        }
        answer.index = offer.index;
        answer.rejected = offer.rejected.clone();
        if let Some(ep) = call.ep(side) {
            ep.set_remote(offer.rtp_target(), ep.side().latch);
        }
        if holds {
            call.play_hold_music(other, &moh);
            if call.held_by.is_none() {
                tracing::info!(call = id, side = ?side, "call put on hold");
            }
            call.held_by = Some(side);
        } else {
            call.resume_from_hold();
            tracing::info!(call = id, side = ?side, "call taken off hold");
        }
        call.take_srtp(side, srtp.clone());
        let d = call.dialog(side).expect("answered");
        d.sdp_version += 1;
        let body = sdp::write(id, d.sdp_version, &crate::secure::dress(&answer, &d.srtp));
        d.sent_sdp = Some(current);
        let contact = d.contact.clone();
        let r = Response::to(req, 200, "OK")
            .contact(&contact)
            .sdp(&body)
            .build();
        self.await_ack(now, id, side, &r, key, key_of(req).cseq);
        self.respond(now, key, 200, r);
        true
    }

    /// After a 2xx to an INVITE: wait for its ACK, resending the 2xx over an unreliable
    /// transport (T1 doubling to T2) to where the INVITE's server transaction answers
    /// (its source, RFC 3581), and hang up after 64*T1 without one (RFC 3261 13.3.1.4).
    pub(crate) fn await_ack(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        bytes: &[u8],
        key: &ServerKey,
        cseq: u32,
    ) {
        let t1 = self.settings.timers.t1;
        let source = self.tx.server_dest(key);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(d) = call.dialog(side) else { return };
        let (target, call_id) = (source.unwrap_or(d.to), d.call_id.clone());
        call.ok.push(OkRetx {
            bytes: bytes.to_vec(),
            target,
            call_id,
            timer: sip::dialog::Answered::new(now, cseq, t1),
        });
        self.arm_call(id);
    }
}

/// Points the callee's endpoint at its answer and connects it to the caller's, with the
/// payload maps of `br`.
fn connect_callee(
    a: &media::Handle,
    b: &media::Handle,
    ans: &Audio,
    br: &negotiate::Bridged,
    latch: bool,
) {
    b.set_remote(ans.rtp_target(), latch);
    a.connect(b, br.forward, br.backward);
}

pub(crate) fn key_of(req: &rsip::Request) -> sip::message::Key {
    key(&req.headers)
}

pub(crate) fn clone_dialog(d: &Dialog) -> Dialog {
    Dialog {
        sip: d.sip.clone(),
        to: d.to,
        local_addr: d.local_addr,
        sdp_version: d.sdp_version,
        sent_sdp: None,
        srtp: d.srtp.clone(),
    }
}
