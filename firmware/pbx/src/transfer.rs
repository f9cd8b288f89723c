//! Call transfer: a party asks the box, with REFER (RFC 3515), to replace it in its call.
//!
//! - Blind: `Refer-To` names a number. The box accepts (202), routes the number as if
//!   the transferor dialled it (its permission groups apply; the new party sees the
//!   transferee's number), rings it while the transferee hears music on hold, and when
//!   it answers connects the two and reports `200 OK` in a NOTIFY; the transferor is then
//!   hung up. If nobody answers, the NOTIFY carries the failure and the call is as it
//!   was (still held if the transferor had held it).
//! - Attended: `Refer-To` carries `Replaces` (RFC 3891) naming the transferor's other
//!   call, in which it talks to the new party. The two remote parties are joined at
//!   once, and the transferor's two dialogs are ended.
//!
//! Either way the NOTIFYs (RFC 3515 2.4.4) carry a `message/sipfrag` status line and
//! end the implicit subscription with the final one.

use crate::calls::{clone_dialog, key_of, reason, Leg, LegState, Side, Transfer};
use crate::route::{Caller, Origin};
use crate::{negotiate, Owner, Pbx, ServerKey};
use media::sdp;
use sip::build::{Body, Response};
use sip::message::{get, uri_part, uri_user};
use std::collections::HashSet;
use std::time::Instant;

/// Blind transfers one call may try.
const MAX_REFERS: u32 = 8;

/// How many forwards a blind transfer's target may lead through.
const MAX_TRANSFER_HOPS: u8 = 5;

/// Where a blind transfer goes when its target does not take it (the target's
/// forwarding for transferred calls), and how many forwards it has followed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransferFallbacks {
    /// The permission groups a forward is checked against (the transferor's and those
    /// of every extension on the way).
    pub groups: Vec<String>,
    pub then: crate::plan::Fallbacks,
    pub hops: u8,
}

/// A transfer target being rung.
struct TransferTarget {
    legs: Vec<usize>,
    time: std::time::Duration,
    fallbacks: TransferFallbacks,
}

/// What `Refer-To` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferTo {
    pub number: String,
    /// Call-ID, to-tag and from-tag of the dialog to replace (attended transfer).
    pub replaces: Option<sip::dialog::Replaces>,
}

/// Decodes %XX escapes (RFC 3986) of a URI header value.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a `Refer-To` value: `<sip:103@host?Replaces=...>` or `sip:103@host`.
pub(crate) fn parse_refer_to(v: &str) -> Option<ReferTo> {
    let uri = uri_part(v.trim());
    let (addr, headers) = uri.split_once('?').unwrap_or((uri, ""));
    let number = uri_user(addr)?.to_string();
    if number.is_empty() {
        return None;
    }
    let replaces = headers
        .split('&')
        .find_map(|h| {
            let (n, val) = h.split_once('=')?;
            n.eq_ignore_ascii_case("Replaces").then(|| unescape(val))
        })
        .map(|r| sip::dialog::Replaces::parse(&r));
    match replaces {
        // A Replaces that names no dialog: the REFER is refused.
        Some(None) => None,
        Some(r) => Some(ReferTo {
            number,
            replaces: r,
        }),
        None => Some(ReferTo {
            number,
            replaces: None,
        }),
    }
}

impl Pbx {
    /// A REFER inside an answered call from `side`.
    pub(crate) fn refer(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        key: &ServerKey,
        req: rsip::Request,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.answered.is_none() {
            return self.reply(now, key, &req, 403, "the call is not answered");
        }
        if call.transfer.is_some() || call.reinvite.is_some() {
            return self.reply(now, key, &req, 491, "a transfer is in progress");
        }
        // Each blind transfer adds legs and ports that last as long as the call.
        if call.refers >= MAX_REFERS {
            return self.reply(now, key, &req, 403, "too many transfers in this call");
        }
        let Some(target) = get(&req.headers, "Refer-To")
            .or_else(|| get(&req.headers, "r"))
            .and_then(parse_refer_to)
        else {
            return self.reply(now, key, &req, 400, "no usable Refer-To");
        };
        // Only phones transfer: their permission groups decide where the call may go.
        let account = match side {
            Side::A => call.caller_account.clone(),
            Side::B => call.legs[call.answered.expect("answered")].account.clone(),
        };
        let Some(acct) = self.snapshot.account(&account).cloned() else {
            return self.reply(now, key, &req, 403, "only phones can transfer");
        };
        let contact = call.dialog_ref(side).contact.clone();
        let r = Response::to(&req, 202, "Accepted")
            .contact(&contact)
            .build();
        self.respond(now, key, 202, r);
        let event = format!("refer;id={}", key_of(&req).cseq);
        self.notify(now, id, side, &event, 100, false);
        tracing::info!(call = id, side = ?side, to = %target.number, attended = target.replaces.is_some(), "transfer");
        match target.replaces {
            Some(r) => self.attended(now, id, side, &event, r, acct),
            None => match self.park_target(&target.number) {
                crate::park::ParkTarget::Slot(slot) => {
                    self.park(now, id, side, &event, slot, &acct)
                }
                crate::park::ParkTarget::Refused(status) => {
                    tracing::info!(call = id, status, "parking refused");
                    self.notify(now, id, side, &event, status, true)
                }
                crate::park::ParkTarget::No => {
                    self.blind(now, id, side, &event, &target.number, acct)
                }
            },
        }
    }

    /// A NOTIFY of the transfer's progress to `side`: `status` as a sipfrag status
    /// line; `last` ends the subscription.
    pub(crate) fn notify(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        event: &str,
        status: u16,
        last: bool,
    ) {
        let gone = self
            .calls
            .get(&id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| t.by == side && t.by_gone);
        if gone {
            return;
        }
        let frag = format!("SIP/2.0 {status} {}\r\n", reason(status));
        let state = if last {
            "terminated;reason=noresource".to_string()
        } else {
            "active;expires=60".to_string()
        };
        self.send_in_dialog_with(
            now,
            id,
            side,
            "NOTIFY",
            Body::Typed {
                content_type: "message/sipfrag;version=2.0",
                bytes: frag.as_bytes(),
            },
            &[("Event", event.to_string()), ("Subscription-State", state)],
            Owner::Fire,
        );
    }

    /// The transferee's identity, as the new party is shown it.
    pub(crate) fn party_caller(&self, id: u64, side: Side, transferor: &Caller) -> Caller {
        let call = &self.calls[&id];
        let (number, display) = match side {
            Side::A => (
                call.caller_ext.clone(),
                crate::route::display_of(&call.a.remote),
            ),
            Side::B => {
                let leg = &call.legs[call.answered.expect("answered")];
                match self
                    .snapshot
                    .account(&leg.account)
                    .and_then(|a| self.snapshot.extension(&a.extension))
                {
                    Some(e) => (e.number.clone(), e.display_name()),
                    None => (call.callee_ext.clone(), String::new()),
                }
            }
        };
        Caller {
            number,
            display: display.replace('"', ""),
            external: transferor.external.clone(),
            privacy: transferor.privacy,
            groups: transferor.groups.clone(),
            link: None,
        }
    }

    fn blind(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        event: &str,
        number: &str,
        acct: config::SipAccount,
    ) {
        let other = side.other();
        let transferor = self.caller(&Origin::Phone(acct), "");
        let caller = self.party_caller(id, other, &transferor);
        let Some(template) = self.calls[&id].dialog_ref(other).sent_sdp.clone() else {
            return self.notify(now, id, side, event, 488, true);
        };
        let target = match self.transfer_route(now, id, &caller, &template, number, (0, &[])) {
            Ok(t) => t,
            Err(status) => {
                tracing::info!(call = id, status, "transfer refused");
                return self.notify(now, id, side, event, status, true);
            }
        };
        let moh = self.hold_music();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let was_held = call.held_by == Some(side);
        if !was_held {
            call.play_hold_music(other, &moh);
            call.held_by = Some(side);
        }
        call.transfer = Some(Transfer {
            by: side,
            legs: target.legs,
            event: event.to_string(),
            was_held,
            deadline: now + target.time,
            by_gone: false,
            rang: false,
            fallbacks: target.fallbacks,
            caller,
            template,
        });
        call.refers += 1;
        self.arm_call(id);
        // Legs to providers may have failed at once.
        self.transfer_check(now, id);
    }

    /// Routes a blind transfer's `number` (hop `hops` of its forwarding) and rings it:
    /// a target that is busy or unreachable at once is followed to its forwarding for
    /// transferred calls; the one that can ring is rung, with how long it may ring and
    /// where it goes when it does not answer, is busy or fails. `Err` is the status
    /// the transfer fails with.
    fn transfer_route(
        &mut self,
        now: Instant,
        id: u64,
        caller: &Caller,
        template: &media::sdp::Audio,
        number: &str,
        (hops, carried): (u8, &[String]),
    ) -> Result<TransferTarget, u16> {
        let mut number = number.to_string();
        let (mut dests, mut errs) = (Vec::new(), Vec::new());
        let mut hop = hops;
        // A forward reaches only what the transferor and every extension forwarded
        // through may call.
        let mut groups: Vec<String> = caller.groups.clone();
        groups.extend(carried.iter().cloned());
        // Only the fallbacks are wanted of the plans: a round-robin group's memory
        // stays as it was (a transfer rings all its members).
        let round_robin = self.round_robin.clone();
        let plan = loop {
            dests.clear();
            errs.clear();
            let mut seen = HashSet::new();
            self.expand(
                &number, caller, &groups, 0, &mut seen, &mut dests, &mut errs,
            );
            let (plan, _) = self.plan_for(&number, config::CallOrigin::Transfer, hop);
            for g in &plan.groups {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
            if !dests.is_empty() || hop >= MAX_TRANSFER_HOPS {
                break plan;
            }
            let codes: Vec<u16> = errs.iter().map(|e| e.0).collect();
            match plan.fallbacks.for_cause(crate::plan::cause_of(&codes)) {
                // Voicemail after a transfer is not offered yet: the transfer fails as
                // with no rule.
                Some(to) if to != config::HANG_UP && to != config::VOICEMAIL => {
                    number = to;
                    hop += 1;
                }
                _ => break plan,
            }
        };
        self.round_robin = round_robin;
        if dests.is_empty() {
            return Err(crate::plan::routing_failure(&errs).0);
        }
        let legs = self.ring(now, id, dests, caller, template);
        if legs.is_empty() {
            return Err(488);
        }
        // The target's no-answer time, a ring group's timeout, else the box's ring
        // timeout bounds the transfer.
        Ok(TransferTarget {
            legs,
            time: plan.time,
            fallbacks: TransferFallbacks {
                groups,
                then: plan.fallbacks,
                hops: hop,
            },
        })
    }

    /// A leg of a blind transfer rings: the transferor hears of it once (NOTIFY with
    /// `SIP/2.0 180 Ringing`, RFC 3515 2.4.5), so its display can say the target rings.
    pub(crate) fn transfer_ringing(&mut self, now: Instant, id: u64) {
        let Some(t) = self.calls.get_mut(&id).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        if std::mem::replace(&mut t.rang, true) {
            return;
        }
        let (by, event) = (t.by, t.event.clone());
        self.notify(now, id, by, &event, 180, false);
    }

    /// A final response to the INVITE of a leg ringing for a blind transfer.
    pub(crate) fn transfer_leg_response(
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
        let leg = &mut call.legs[idx];
        match status {
            200..=299 => {
                leg.got_provisional = true;
                let d = clone_dialog(&leg.dialog);
                self.ack_2xx(&d, sip::message::key(&resp.headers).cseq);
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                let t = call.transfer.as_ref().expect("in transfer");
                let (by, other) = (t.by, t.by.other());
                let template = call.dialog_ref(other).sent_sdp.clone();
                let leg = &mut call.legs[idx];
                let ans = sdp::parse(&resp.body)
                    .ok()
                    .filter(|a| crate::secure::take_answer(&mut leg.dialog.srtp, a).is_ok());
                let br = match (&template, &ans) {
                    (Some(t), Some(a)) => negotiate::bridge(t, a, t.addr, t.port),
                    _ => None,
                };
                let (Some(ans), Some(br)) = (ans, br) else {
                    leg.state = LegState::Done(488);
                    self.bye_leg(now, &d);
                    return self.transfer_check(now, id);
                };
                leg.state = LegState::Answered;
                let latch = crate::route::leg_latch(&self.snapshot, leg);
                if let Some(ep) = &leg.ep {
                    ep.set_remote(ans.rtp_target(), latch);
                    crate::secure::key(ep, &leg.dialog.srtp);
                }
                leg.dialog.sent_sdp = leg
                    .dialog
                    .sent_sdp
                    .take()
                    .map(|o| negotiate::narrow(&o, &ans));
                let t = call.transfer.clone().expect("in transfer");
                for i in t.legs.iter().copied().filter(|i| *i != idx) {
                    self.cancel_leg(now, id, i);
                }
                self.notify(now, id, by, &t.event, 200, true);
                if let Some(c) = self.calls.get_mut(&id) {
                    c.transfer = None;
                }
                self.replace_side(
                    now,
                    id,
                    by,
                    idx,
                    (br.forward, br.backward),
                    br.transcoding,
                    !t.by_gone,
                );
                // A parked call rung back to its parker is no longer parked.
                self.unpark(id);
            }
            _ => {
                if leg.peer.is_some() && self.peer_leg_failed(now, id, idx, Some(resp), status) {
                    return;
                }
                if let Some(call) = self.calls.get_mut(&id) {
                    call.legs[idx].state = LegState::Done(status);
                    call.legs[idx].cancel_wanted = false;
                }
                self.transfer_check(now, id);
            }
        }
    }

    /// Ends a blind transfer whose legs all failed, or that rang too long: the
    /// transferor hears why, and the call is as it was.
    pub(crate) fn transfer_check(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(t) = &call.transfer else { return };
        let timed_out = t.deadline <= now;
        if t.legs.is_empty() && !timed_out {
            return; // parked: nothing rings until the parking time is up
        }
        let statuses: Vec<u16> = t
            .legs
            .iter()
            .filter_map(|i| match call.legs[*i].state {
                LegState::Done(s) => Some(s),
                _ => None,
            })
            .collect();
        if !timed_out && statuses.len() < t.legs.len() {
            return;
        }
        let t = call.transfer.clone().expect("checked");
        let status = if timed_out {
            480
        } else {
            crate::calls::summarize(&statuses)
        };
        for i in t.legs.iter().copied() {
            self.cancel_leg(now, id, i);
        }
        // The target's forwarding for transferred calls: no answer in its time, busy,
        // or unreachable rings the next number in the same transfer.
        let f = &t.fallbacks;
        let next = f.then.for_cause(if timed_out {
            Some(config::ForwardCause::NoAnswer)
        } else {
            crate::plan::cause_of(&statuses)
        });
        if let Some(to) = next.filter(|to| {
            to != config::HANG_UP && to != config::VOICEMAIL && f.hops < MAX_TRANSFER_HOPS
        }) {
            match self.transfer_route(
                now,
                id,
                &t.caller,
                &t.template,
                &to,
                (f.hops + 1, &f.groups),
            ) {
                Ok(target) => {
                    tracing::info!(call = id, to, "transfer forwarded");
                    if let Some(tr) = self.calls.get_mut(&id).and_then(|c| c.transfer.as_mut()) {
                        tr.legs = target.legs;
                        tr.deadline = now + target.time;
                        tr.fallbacks = target.fallbacks;
                    }
                    self.arm_call(id);
                    // The new legs may have failed at once too.
                    return self.transfer_check(now, id);
                }
                Err(s) => tracing::info!(call = id, to, status = s, "transfer forward failed"),
            }
        }
        tracing::info!(call = id, status, "transfer failed");
        self.notify(now, id, t.by, &t.event, status, true);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.transfer = None;
        if t.by_gone {
            // Nobody to go back to: the transferee is hung up.
            return self.hang_up(now, id, Some(t.by));
        }
        if !t.was_held {
            // The transferor had not held the other side: they talk again.
            call.resume_from_hold();
        }
        self.arm_call(id);
    }

    /// Attended transfer: the transferor's dialog `replaces` (in another call, where it
    /// talks to the new party) is replaced by the other side of call `id`.
    fn attended(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        event: &str,
        replaces: sip::dialog::Replaces,
        acct: config::SipAccount,
    ) {
        let transferor = acct.username.clone();
        // The dialog named is the transferor's consultation call to the park code: the
        // other side of this call is parked in the slot it was told.
        let park = self.dialogs.get(&replaces.call_id).and_then(|id2| {
            let c = self.calls.get(id2)?;
            let slot = c.app.as_ref()?.app.as_ref()?.park_slot()?.to_string();
            (c.caller_account == transferor && c.a.is_named_by(&replaces, true))
                .then_some((*id2, slot))
        });
        if let Some((id2, slot)) = park {
            // The consultation call ends (its slot is given up) once the call is in it.
            self.park(now, id, side, event, slot, &acct);
            self.terminate(now, id2);
            return;
        }
        // The dialog named is the transferor's own with the box: to-tag is ours,
        // from-tag the transferor's (RFC 3891 3); some phones swap them. The
        // exchange files calls by Call-ID (each of its dialogs has its own); the tags
        // are then matched by `sip::dialog`.
        let found = self
            .dialogs
            .get(&replaces.call_id)
            .copied()
            .and_then(|id2| {
                let c = self.calls.get(&id2)?;
                c.answered?;
                let s = [Side::A, Side::B]
                    .into_iter()
                    .find(|s| c.dialog_ref(*s).is_named_by(&replaces, true))?;
                // Only the transferor's own dialog: another phone's call cannot be taken.
                let owner = match s {
                    Side::A => &c.caller_account,
                    Side::B => &c.legs[c.answered?].account,
                };
                (owner == &transferor).then_some((id2, s))
            });
        let Some((id2, t2)) = found.filter(|(id2, _)| *id2 != id) else {
            tracing::info!(call = id, "attended transfer: no such dialog to replace");
            return self.notify(now, id, side, event, 481, true);
        };
        // The new party's session and ours with the transferee must connect.
        let o1 = self.calls[&id].dialog_ref(side.other()).sent_sdp.clone();
        let o2 = self.calls[&id2].dialog_ref(t2.other()).sent_sdp.clone();
        let Some((fwd, back, xcode)) = o1
            .as_ref()
            .zip(o2.as_ref())
            .and_then(|(a, b)| negotiate::join(a, b))
        else {
            return self.notify(now, id, side, event, 488, true);
        };
        // Take the new party out of its call; the transferor's dialog there is ended
        // (and that call goes in the history as answered and over).
        let ringing2 = self.calls[&id2].legs.len();
        for i in 0..ringing2 {
            self.cancel_leg(now, id2, i);
        }
        let call2 = self.calls.remove(&id2).expect("found");
        self.record(&call2);
        let (leg, t2_dialog) = call2.into_party(t2.other());
        self.dialogs.retain(|_, v| *v != id2);
        self.bye_leg(now, &t2_dialog);
        self.dialogs.insert(leg.dialog.call_id.clone(), id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let idx = call.legs.len();
        call.legs.push(leg);
        // The other call's timers and transactions find it gone.
        self.notify(now, id, side, event, 200, true);
        self.replace_side(now, id, side, idx, (fwd, back), xcode, true);
    }

    /// Puts the answered leg `idx` of call `id` in the place of `side`, which is hung
    /// up, and connects it to the other side with `maps` (other to new, new to other).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn replace_side(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        idx: usize,
        maps: (media::PtMap, media::PtMap),
        transcoding: bool,
        bye_old: bool,
    ) {
        let snap = self.snapshot.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.transferred_by = match side {
            Side::A => call.caller_ext.clone(),
            Side::B => call.legs[call.answered.expect("answered")].number(&snap),
        };
        let gone = match side {
            Side::B => {
                let old = call.answered.replace(idx).expect("answered");
                call.legs[old].state = LegState::Done(200);
                call.callee_ext = call.legs[idx].number(&snap);
                call.answered_by = call.callee_ext.clone();
                if let Some(p) = &call.legs[idx].peer {
                    call.trunk_out = p.current().to_string();
                }
                clone_dialog(&call.legs[old].dialog)
            }
            Side::A => {
                // The caller's place takes the new party; the old caller's dialog
                // and endpoint end up in the leg, which is then done.
                let leg = &mut call.legs[idx];
                let number = leg.number(&snap);
                let codecs = crate::route::leg_codecs(&snap, leg);
                let peer = leg.peer.as_ref().map(|p| p.current().to_string());
                std::mem::swap(&mut call.a, &mut leg.dialog);
                if let Some(ep) = leg.ep.as_mut() {
                    std::mem::swap(&mut call.a_ep, ep);
                }
                let account = std::mem::replace(&mut leg.account, call.caller_account.clone());
                leg.peer = None;
                leg.state = LegState::Done(200);
                call.caller_account = account;
                call.caller_ext = number;
                call.caller_peer = peer;
                call.caller_codecs = codecs;
                call.answer_due = None;
                call.late_offer = false;
                clone_dialog(&leg.dialog)
            }
        };
        call.ok.clear();
        call.held_by = None;
        call.transcoding = transcoding;
        // Maps are kept A to B, B to A.
        call.maps = if side == Side::B {
            maps
        } else {
            (maps.1, maps.0)
        };
        let (ab, ba) = call.maps;
        if let (Some(a), Some(b)) = (call.ep(Side::A), call.ep(Side::B)) {
            a.connect(b, ab, ba);
        }
        tracing::info!(call = id, side = ?side, "transferred");
        self.dialogs.remove(&gone.call_id);
        if bye_old {
            self.bye_leg(now, &gone);
        }
        self.arm_call(id);
    }
}

impl crate::calls::Call {
    /// Turns one side of this (ended) call into an answered leg for another call, and
    /// gives the other side's dialog (to be hung up).
    pub(crate) fn into_party(mut self, side: Side) -> (Leg, crate::calls::Dialog) {
        let ans = self.answered.expect("answered");
        match side {
            Side::B => {
                let other = clone_dialog(&self.a);
                let leg = self.legs.swap_remove(ans);
                (leg, other)
            }
            Side::A => {
                let other = clone_dialog(&self.legs[ans].dialog);
                let peer = self.caller_peer.clone().map(|p| crate::route::PeerLeg {
                    hops: vec![crate::route::Hop {
                        peer: p,
                        number: self.caller_ext.clone(),
                        calling: String::new(),
                    }],
                    hop: 0,
                    addr: 0,
                    authed: false,
                    display: String::new(),
                    privacy: false,
                    last_status: 0,
                    template: None,
                });
                let leg = Leg {
                    account: self.caller_account,
                    ep: Some(self.a_ep),
                    peer,
                    ack: crate::build::AckBase {
                        ruri: self.a.target_uri.clone(),
                        via: String::new(),
                        from: self.a.local.clone(),
                        call_id: self.a.call_id.clone(),
                        cseq: 0,
                        route: Vec::new(),
                    },
                    to_initial: self.a.remote.clone(),
                    dialog: self.a,
                    branch: String::new(),
                    state: LegState::Answered,
                    got_provisional: true,
                    cancel_wanted: false,
                };
                (leg, other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_values_are_read() {
        assert_eq!(
            parse_refer_to("<sip:103@127.0.0.1:5060>"),
            Some(ReferTo {
                number: "103".into(),
                replaces: None
            })
        );
        assert_eq!(
            parse_refer_to("sip:0555123@pbx;user=phone").map(|r| r.number),
            Some("0555123".into())
        );
        let r = parse_refer_to(
            "<sip:103@10.0.0.1?Replaces=abc%40host%3Bto-tag%3D12%3Bfrom-tag%3D34&Require=replaces>",
        )
        .unwrap();
        assert_eq!(
            r.replaces,
            Some(sip::dialog::Replaces {
                call_id: "abc@host".into(),
                to_tag: "12".into(),
                from_tag: "34".into(),
                early_only: false,
            })
        );
        for bad in [
            "",
            "<>",
            "<sip:@host>",
            "<sip:1@h?Replaces=>",
            "%",
            "<sip:1@h?Replaces=%4",
        ] {
            let _ = parse_refer_to(bad);
        }
        assert_eq!(parse_refer_to("<sip:@host>"), None);
        assert_eq!(parse_refer_to("<sip:1@h?Replaces=>"), None);
        assert_eq!(unescape("%4"), "%4");
        assert_eq!(unescape("é%C3%A9%"), "éé%");
        assert_eq!(unescape("a%3Db%zz"), "a=b%zz");
    }
}
