//! Call parking: a call waits in a slot, hearing music, until any phone dials the slot
//! and takes it, or until the parking time is up and it rings whoever parked it.
//!
//! A call is parked by a transfer: blind to a slot (that one, when free) or to the park
//! code (the first free one), or attended after a consultation call to the park code,
//! which says the slot aloud ([`crate::app::ParkAnnounce`]) and keeps it for that call
//! until the transfer completes. The parker's dialog is ended; the call stays with the
//! parked party's side only, in the state of a blind transfer whose transferor has
//! gone and whose target rings nothing yet (`Transfer` with no legs and the parking
//! time as its deadline). Taking the call back puts the taker's own INVITE dialog in
//! the parker's place (as a transfer's answered leg would be); the time running out
//! rings the parker's extension as the transfer's forward "on no answer", with the
//! parked party's number shown; if that is not answered either, the parked party is
//! hung up.

use crate::calls::{key_of, Side, Transfer};
use crate::route::{Caller, Origin};
use crate::{negotiate, Pbx, ServerKey, Source};
use media::sdp::{self, Audio};
use serde::Serialize;
use sip::build::Response;
use std::time::{Duration, Instant};

/// A parked call as the status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ParkedInfo {
    pub slot: String,
    pub call: u64,
    /// Who waits, and who parked it.
    pub number: String,
    pub parked_by: String,
    pub seconds: u64,
}

/// Where a dialled or transferred-to number parks a call.
pub(crate) enum ParkTarget {
    /// Not a parking number.
    No,
    /// This slot.
    Slot(String),
    /// Parking it is, but it cannot be done (the slot is taken, none is free): the
    /// status of the refusal.
    Refused(u16),
}

impl Pbx {
    /// Whether `slot` holds a call or was told to a parker.
    fn slot_taken(&self, slot: &str) -> bool {
        self.parked.contains_key(slot)
            || self.calls.values().any(|c| {
                c.app
                    .as_ref()
                    .and_then(|a| a.app.as_ref())
                    .and_then(|a| a.park_slot())
                    == Some(slot)
            })
    }

    /// The first slot neither holding a call nor told to a parker.
    pub(crate) fn free_slot(&self) -> Option<String> {
        self.snapshot
            .config
            .parking
            .slots
            .iter()
            .find(|s| !self.slot_taken(s))
            .cloned()
    }

    /// What transferring a call to `number` does as parking.
    pub(crate) fn park_target(&self, number: &str) -> ParkTarget {
        let cfg = &self.snapshot.config;
        if !cfg.feature_codes.park.is_empty() && number == cfg.feature_codes.park {
            return match self.free_slot() {
                Some(s) => ParkTarget::Slot(s),
                None => ParkTarget::Refused(486),
            };
        }
        if cfg.parking.slots.iter().any(|s| s == number) {
            return if self.slot_taken(number) {
                ParkTarget::Refused(486)
            } else {
                ParkTarget::Slot(number.to_string())
            };
        }
        ParkTarget::No
    }

    /// Whether `number` is a parking slot.
    pub(crate) fn is_slot(&self, number: &str) -> bool {
        self.snapshot
            .config
            .parking
            .slots
            .iter()
            .any(|s| s == number)
    }

    /// Parks the other side of call `id` in `slot`: `by` (the parker, whose REFER's
    /// NOTIFYs go with `event`) is told it worked and hung up; the parked party hears
    /// music until it is taken back or the parking time is up. `parker` is the
    /// parker's account (its permission groups ring it back).
    pub(crate) fn park(
        &mut self,
        now: Instant,
        id: u64,
        by: Side,
        event: &str,
        slot: String,
        parker: &config::SipAccount,
    ) {
        let other = by.other();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(template) = call.dialog_ref(other).sent_sdp.clone() else {
            return self.notify(now, id, by, event, 488, true);
        };
        let transferor = self.caller(&Origin::Phone(parker.clone()), "");
        let caller: Caller = self.party_caller(id, other, &transferor);
        let timeout = Duration::from_secs(self.snapshot.config.parking.timeout_seconds as u64);
        let moh = self.hold_music();
        self.notify(now, id, by, event, 200, true);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.held_by != Some(by) {
            call.play_hold_music(other, &moh);
            call.held_by = Some(by);
        }
        call.transfer = Some(Transfer {
            by,
            legs: Vec::new(),
            event: event.to_string(),
            was_held: true,
            by_gone: true,
            deadline: now + timeout,
            rang: false,
            fallbacks: crate::transfer::TransferFallbacks {
                groups: transferor.groups.clone(),
                then: crate::plan::Fallbacks {
                    busy: None,
                    no_answer: Some(parker.extension.clone()),
                    unavailable: None,
                },
                hops: 0,
            },
            caller,
            template,
        });
        call.refers += 1;
        // The parker's dialog ends here; the call waits with the parked side only.
        let gone = crate::calls::clone_dialog(call.dialog_ref(by));
        self.dialogs.remove(&gone.call_id);
        self.bye_leg(now, &gone);
        tracing::info!(call = id, slot, parker = %parker.extension, "parked");
        self.parked.insert(slot, (id, now));
        self.arm_call(id);
    }

    /// Call `id` is no longer parked (taken back, rung back and answered, or over).
    pub(crate) fn unpark(&mut self, id: u64) {
        self.parked.retain(|_, (c, _)| *c != id);
    }

    /// A phone (`account`, offering `offer`) dialled `slot`: it takes the call parked
    /// there, in the parker's place.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retrieve(
        &mut self,
        now: Instant,
        src: Source,
        key: &ServerKey,
        req: rsip::Request,
        account: config::SipAccount,
        offer: Option<Audio>,
        slot: &str,
    ) {
        let Some(&(id, _)) = self.parked.get(slot) else {
            tracing::info!(slot, "nothing parked there");
            return self.reply(now, key, &req, 404, "nothing parked in this slot");
        };
        let Some(offer) = offer else {
            return self.reply(
                now,
                key,
                &req,
                488,
                "taking a parked call needs an SDP offer",
            );
        };
        let Some(t) = self.calls.get(&id).and_then(|c| c.transfer.clone()) else {
            return self.reply(now, key, &req, 404, "nothing parked in this slot");
        };
        let (by, other) = (t.by, t.by.other());
        let ep = match self.media.take() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("media relay: {e}");
                return self.reply(now, key, &req, 503, "no media ports");
            }
        };
        let call = &self.calls[&id];
        let Some(parked) = call.dialog_ref(other).sent_sdp.clone() else {
            return self.reply(now, key, &req, 488, "no session to join");
        };
        let Some((_, ans_p, ab, ba, xcode)) = negotiate::answer_both(
            &parked,
            &offer,
            (parked.addr, parked.port),
            (src.local.ip(), ep.port),
        ) else {
            return self.reply(now, key, &req, 488, "no codec in common");
        };
        // A ring back to the parker going on stops.
        for i in t.legs.iter().copied() {
            self.cancel_leg(now, id, i);
        }
        let (leg, tag) =
            self.inbound_leg(src, &req, &account, &account.extension, ep, &offer, &ans_p);
        let (contact, taker_call_id) = (leg.dialog.contact.clone(), leg.dialog.call_id.clone());
        // The taker's own SRTP (its dialog changes places in replace_side below).
        let taker_srtp = leg.dialog.srtp.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.transfer = None;
        let idx = call.legs.len();
        call.legs.push(leg);
        self.unpark(id);
        // Maps from the parked party to the taker and back.
        self.replace_side(now, id, by, idx, (ab, ba), xcode, false);
        self.dialogs.insert(taker_call_id, id);
        let body = sdp::write(id, 1, &crate::secure::dress(&ans_p, &taker_srtp));
        let rp = Response::to(&req, 200, "OK")
            .tag(Some(&tag))
            .contact(&contact)
            .sdp(&body)
            .build();
        self.await_ack(now, id, by, &rp, key, key_of(&req).cseq);
        self.respond(now, key, 200, rp);
        tracing::info!(call = id, slot, by = %account.extension, "parked call taken");
        self.arm_call(id);
    }

    /// The calls waiting in parking slots, by slot.
    pub fn parked_calls(&self, now: Instant) -> Vec<ParkedInfo> {
        let snap = &self.snapshot;
        self.parked
            .iter()
            .filter_map(|(slot, (id, since))| {
                let c = self.calls.get(id)?;
                let t = c.transfer.as_ref()?;
                let number = match t.by.other() {
                    Side::A => c.caller_ext.clone(),
                    Side::B => c
                        .answered
                        .map(|i| c.legs[i].number(snap))
                        .unwrap_or_default(),
                };
                Some(ParkedInfo {
                    slot: slot.clone(),
                    call: *id,
                    number,
                    parked_by: t.fallbacks.then.no_answer.clone().unwrap_or_default(),
                    seconds: now.saturating_duration_since(*since).as_secs(),
                })
            })
            .collect()
    }
}
