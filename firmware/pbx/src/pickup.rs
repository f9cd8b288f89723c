//! Call pickup: a phone dials the pickup code (any call ringing in its pickup groups)
//! or the directed-pickup code and an extension (the call ringing there), and takes
//! the call. The picker's own INVITE dialog becomes the answered leg of the ringing
//! call: the caller gets its 200 as if a rung phone had answered, the phones still
//! ringing are cancelled, and the two endpoints are connected.
//!
//! Who may pick up whom follows Kalliope: an extension is a member of pickup groups
//! and may pick up from pickup groups; by default every extension is in, and may pick
//! up from, the group `default`. The oldest ringing call is taken first.

use crate::build::{self, AckBase};
use crate::calls::{key_of, Dialog, Leg, LegState, Side};
use crate::{negotiate, Pbx, ServerKey, Source, Target};
use media::sdp::{self, Audio};
use sip::build::Response;
use sip::message::get;
use std::time::Instant;

impl Pbx {
    /// A phone's INVITE dialog (`req` from `account`, offering `offer`, answered with
    /// `answer` on endpoint `ep`) as an answered leg that can take a call's place (a
    /// pickup, a parked call taken back); and the To tag the box gives it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn inbound_leg(
        &mut self,
        src: Source,
        req: &rsip::Request,
        account: &config::SipAccount,
        number: &str,
        ep: media::Handle,
        offer: &Audio,
        answer: &Audio,
    ) -> (Leg, String) {
        let tag = self.random_hex(10);
        let from = get(&req.headers, "From").unwrap_or("").to_string();
        let contact_uri = build::remote_target(&req.headers, src.remote);
        let dest = build::dest_of(src.proto, account.nat, &contact_uri, src.remote);
        let call_id = key_of(req).call_id;
        // SRTP as the offer asks (a refused offer was answered 488 before this).
        let mut srtp = None;
        let must = self
            .snapshot
            .encrypts(account)
            .then_some(crate::secure::ACCOUNT_ENCRYPTS);
        let _ = crate::secure::take_offer(&mut srtp, offer, must);
        crate::secure::locate(&mut srtp, src.local.ip());
        crate::secure::key(&ep, &srtp);
        let dialog = Dialog {
            sip: sip::dialog::Dialog {
                call_id: call_id.clone(),
                local: format!("{};tag={tag}", get(&req.headers, "To").unwrap_or("")),
                remote: from.clone(),
                target_uri: contact_uri.clone(),
                contact: build::contact(number, src.proto, src.local),
                cseq: 0,
                route: sip::dialog::route_set_uas(&req.headers),
            },
            to: Target {
                proto: src.proto,
                dest,
            },
            local_addr: src.local,
            sdp_version: 1,
            sent_sdp: Some(answer.clone()),
            srtp,
        };
        ep.set_remote(offer.rtp_target(), account.nat);
        let leg = Leg {
            account: account.username.clone(),
            ep: Some(ep),
            peer: None,
            ack: AckBase {
                ruri: contact_uri,
                via: String::new(),
                from: dialog.local.clone(),
                call_id,
                cseq: 0,
                route: Vec::new(),
            },
            to_initial: from,
            dialog,
            branch: String::new(),
            state: LegState::Answered,
            got_provisional: true,
            cancel_wanted: false,
        };
        (leg, tag)
    }

    /// The feature code a phone dialled, if `dialled` is a pickup: `Some(None)` for
    /// group pickup, `Some(Some(n))` for directed pickup of extension `n`.
    pub(crate) fn pickup_code(&self, dialled: &str) -> Option<Option<String>> {
        let fc = &self.snapshot.config.feature_codes;
        if dialled == fc.pickup {
            return Some(None);
        }
        dialled
            .strip_prefix(fc.directed_pickup.as_str())
            .filter(|n| !n.is_empty())
            .map(|n| Some(n.to_string()))
    }

    /// The picker (`account`, calling with `offer`) takes the oldest call ringing at
    /// `target` (or at any extension it may pick up from); with `only`, that call (an
    /// INVITE with Replaces named it: 481 when it cannot be taken).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pickup(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: rsip::Request,
        account: config::SipAccount,
        offer: Option<Audio>,
        target: Option<String>,
        only: Option<u64>,
    ) {
        let snap = self.snapshot.clone();
        let Some(me) = snap.extension(&account.extension).cloned() else {
            return self.reply(now, key, &req, 403, "no extension");
        };
        let Some(offer) = offer else {
            return self.reply(now, key, &req, 488, "pickup needs an SDP offer");
        };
        let ringing_here = |l: &Leg| {
            matches!(l.state, LegState::Calling | LegState::Ringing)
                && !l.cancel_wanted
                && snap
                    .account(&l.account)
                    .and_then(|a| snap.extension(&a.extension))
                    .is_some_and(|e| {
                        target.as_ref().is_none_or(|t| &e.number == t) && me.may_pick_up(e)
                    })
        };
        let found = self
            .calls
            .values()
            // A queue's caller ringing agents is the queue's to hand over.
            .filter(|c| {
                !c.finished
                    && c.answered.is_none()
                    && !c.late_offer
                    && c.transfer.is_none()
                    && c.app.is_none()
            })
            .filter(|c| c.caller_account != account.username)
            .filter(|c| only.is_none_or(|o| c.id == o))
            .filter(|c| c.legs.iter().any(ringing_here))
            .min_by_key(|c| (c.created, c.id))
            .map(|c| c.id);
        let Some(id) = found else {
            tracing::info!(picker = %me.number, ?target, "nothing to pick up");
            if only.is_some() {
                return self.reply(now, key, &req, 481, "that call cannot be picked up");
            }
            return self.reply(now, key, &req, 404, "no call to pick up");
        };
        let ep = match self.media.take() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("media relay: {e}");
                return self.reply(now, key, &req, 503, "no media ports");
            }
        };
        let call = &self.calls[&id];
        // A caller that already has an answer (early media in a 183) gets the same one.
        let caller_side = call.a.sent_sdp.as_ref().unwrap_or(&call.a_offer);
        let Some((ans_a, ans_p, ab, ba, xcode)) = negotiate::answer_both(
            caller_side,
            &offer,
            (call.a.local_addr.ip(), call.a_ep.port),
            (src.local.ip(), ep.port),
        ) else {
            return self.reply(now, key, &req, 488, "no codec in common");
        };
        // The picker's dialog, as a leg of the ringing call.
        let (leg, tag) = self.inbound_leg(src, &req, &account, &me.number, ep, &offer, &ans_p);
        let (contact, picker_call_id) = (leg.dialog.contact.clone(), leg.dialog.call_id.clone());
        let picker_srtp = leg.dialog.srtp.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let idx = call.legs.len();
        call.legs.push(leg);
        call.answered = Some(idx);
        call.answered_here(now, me.number.clone());
        call.transcoding = xcode;
        call.maps = (ab, ba);
        if let Some(ep) = &call.legs[idx].ep {
            call.a_ep.connect(ep, ab, ba);
        }
        // The caller's 200, as if a rung phone had answered.
        self.answer_caller(now, id, ans_a);
        // The picker's 200.
        self.dialogs.insert(picker_call_id, id);
        let body = sdp::write(id, 1, &crate::secure::dress(&ans_p, &picker_srtp));
        let rp = Response::to(&req, 200, "OK")
            .tag(Some(&tag))
            .contact(&contact)
            .sdp(&body)
            .build();
        self.await_ack(now, id, Side::B, &rp, key, key_of(&req).cseq);
        self.respond(now, key, 200, rp);
        for i in 0..idx {
            self.cancel_leg(now, id, i);
        }
        tracing::info!(call = id, picker = %me.number, "picked up");
        self.arm_call(id);
    }
}
