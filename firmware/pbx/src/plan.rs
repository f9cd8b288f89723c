//! What happens to a dialled number over time: a plan, as data, that the exchange
//! executes for a call that is not answered yet.
//!
//! A plan rings one step after the other (a ring group in order or round robin rings
//! one member a step; everything else is one step), for at most its time; when every
//! step failed or the time is up it falls back by cause: busy, no answer or
//! unavailable (Kalliope's failover actions, Kerio's ring group fallback). A fallback is
//! another number, whose own plan then runs in the same call (the caller's leg stays),
//! or `hangup`. Forwarding on busy, no answer and unavailable, ring-group strategies,
//! timeouts and fallbacks are all plans.

use crate::calls::LegState;
use crate::route::Caller;
use crate::Pbx;
use config::{CallOrigin, Destination, ForwardCause, RingStrategy, HANG_UP, VOICEMAIL};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How many fallbacks one call may follow (a forward to a forward to ...).
pub(crate) const MAX_HOPS: u8 = 5;

/// The plan of a call being rung.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Numbers still to ring, one step each.
    pub next: VecDeque<String>,
    /// How long each of those steps rings (None: until the plan's time is up).
    pub step_time: Option<Duration>,
    /// How long the whole plan rings before its no-answer fallback.
    pub time: Duration,
    /// The first leg of the plan and of the step being rung.
    pub plan_first: usize,
    pub step_first: usize,
    /// Failures found while routing (no phone registered, busy level reached, ...).
    pub errs: Vec<(u16, String)>,
    pub fallbacks: Fallbacks,
    /// Permission groups the plan's numbers are checked against, besides the caller's
    /// (the forwarding extension's).
    pub groups: Vec<String>,
    pub hops: u8,
    /// When the current step gives way to the next.
    pub step_deadline: Option<Instant>,
    /// The extension whose plan this is, with a voicemail box (its rules' `voicemail`).
    pub mailbox: Option<String>,
    /// Why the plan before this one fell back to it (a box's greeting follows it).
    pub cause: Option<ForwardCause>,
}

/// Where a plan (or a transfer's target) goes when nobody takes the call, by cause.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fallbacks {
    pub busy: Option<String>,
    pub no_answer: Option<String>,
    pub unavailable: Option<String>,
}

impl Fallbacks {
    /// The number (or `hangup`) for `cause`.
    pub(crate) fn for_cause(&self, cause: Option<ForwardCause>) -> Option<String> {
        match cause? {
            ForwardCause::Busy => self.busy.clone(),
            ForwardCause::NoAnswer => self.no_answer.clone(),
            ForwardCause::Unavailable => self.unavailable.clone(),
        }
    }
}

/// Why routing found nothing to ring: a refusal first, then busy, then the first
/// reason (404 when there was none).
pub(crate) fn routing_failure(errs: &[(u16, String)]) -> (u16, String) {
    errs.iter()
        .find(|e| e.0 == 403)
        .or(errs.iter().find(|e| e.0 == 486))
        .or(errs.first())
        .cloned()
        .unwrap_or((404, "no such number".into()))
}

/// What made a plan fail.
pub(crate) fn cause_of(statuses: &[u16]) -> Option<ForwardCause> {
    if statuses.iter().any(|s| matches!(s, 486 | 600 | 603)) {
        Some(ForwardCause::Busy)
    } else if statuses
        .iter()
        .any(|s| matches!(s, 404 | 408 | 410 | 480 | 500 | 502 | 503 | 504))
    {
        Some(ForwardCause::Unavailable)
    } else {
        None
    }
}

impl Pbx {
    /// The plan for `number` and the first number to ring.
    pub(crate) fn plan_for(
        &mut self,
        number: &str,
        origin: CallOrigin,
        hops: u8,
    ) -> (Plan, String) {
        let snap = self.snapshot.clone();
        let ring = self.settings.ring_timeout;
        let mut plan = Plan {
            time: ring,
            hops,
            ..Plan::default()
        };
        let first = match snap.route(number) {
            Destination::Extension(n) => {
                if let Some(e) = snap.extension(&n) {
                    let rule = |c| e.forward_for(c, origin).map(str::to_string);
                    plan.fallbacks = Fallbacks {
                        busy: rule(ForwardCause::Busy),
                        no_answer: rule(ForwardCause::NoAnswer),
                        unavailable: rule(ForwardCause::Unavailable),
                    };
                    if plan.fallbacks.no_answer.is_some() {
                        plan.time = Duration::from_secs(e.no_answer_seconds.into());
                    }
                    // The box is a folder named by the number: digits only.
                    plan.mailbox = (e.voicemail
                        && !e.number.is_empty()
                        && e.number.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| e.number.clone());
                    plan.groups = [e.permission_group.clone()]
                        .into_iter()
                        .filter(|g| !g.is_empty())
                        .collect();
                }
                number.to_string()
            }
            Destination::RingGroup(g) => {
                let Some(g) = snap.config.ring_groups.iter().find(|x| x.number == g) else {
                    return (plan, number.to_string());
                };
                if g.timeout > 0 {
                    plan.time = Duration::from_secs(g.timeout.into());
                }
                if !g.fallback.is_empty() {
                    let to = Some(g.fallback.clone());
                    plan.fallbacks = Fallbacks {
                        busy: to.clone(),
                        no_answer: to.clone(),
                        unavailable: to,
                    };
                }
                match g.strategy {
                    RingStrategy::All => number.to_string(),
                    RingStrategy::InOrder | RingStrategy::RoundRobin => {
                        let mut order: VecDeque<String> = g.members.iter().cloned().collect();
                        if g.strategy == RingStrategy::RoundRobin && !order.is_empty() {
                            // Round robin with memory: start after last time's first.
                            let at = self.round_robin.entry(g.number.clone()).or_insert(0);
                            let start = *at % order.len();
                            *at = start + 1;
                            order.rotate_left(start);
                        }
                        plan.step_time = Some(Duration::from_secs(g.member_seconds.into()));
                        let first = order.pop_front().unwrap_or_default();
                        plan.next = order;
                        first
                    }
                }
            }
            _ => number.to_string(),
        };
        (plan, first)
    }

    /// Starts the plan for `number` in call `id` (the call's first, or a fallback).
    /// `carried` are the permission groups of the plans it falls back from: a forward
    /// reaches only what every extension on the way may call (an extension allowed
    /// internal numbers only cannot send its callers to a premium number by a rule).
    pub(crate) fn start_plan(
        &mut self,
        now: Instant,
        id: u64,
        number: &str,
        hops: u8,
        carried: Vec<String>,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let late = call.late_offer;
        // Another extension's box (a ring group's fallback), or an auto attendant: the
        // box answers.
        if let Some(app) = self.target_app(number, call.plan.cause) {
            if let Some(c) = self.calls.get_mut(&id) {
                c.plan.next.clear();
                c.plan.hops = hops;
            }
            if late {
                return self.fail_call(now, id, 488, "an application needs an SDP offer");
            }
            tracing::info!(call = id, to = number, "answered by an application");
            return self.start_app(now, id, app);
        }
        let origin = call.origin;
        let (mut plan, first) = self.plan_for(number, origin, hops);
        for g in carried {
            if !plan.groups.contains(&g) {
                plan.groups.push(g);
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        plan.plan_first = call.legs.len();
        call.ring_deadline = Some(now + plan.time);
        call.plan = plan;
        self.start_step(now, id, &first);
        self.arm_call(id);
    }

    /// The application a plan's number names: `voicemail:<extension>` (that box,
    /// greeted for `cause`), an auto attendant's number or a conference room's.
    pub(crate) fn target_app(
        &self,
        to: &str,
        cause: Option<ForwardCause>,
    ) -> Option<Box<dyn crate::app::Application>> {
        if let Some(b) = config::voicemail_target(to) {
            let greeting = if cause == Some(ForwardCause::Busy) {
                crate::app::Greeting::Busy
            } else {
                crate::app::Greeting::Unavailable
            };
            let (b, temp) = self.boxes().into_iter().find(|(x, _)| x == b)?;
            return Some(Box::new(
                crate::app::LeaveMessage::new(
                    store::voicemail::box_dir(&self.settings.voicemail_dir, &b),
                    greeting,
                )
                .with_temp_greeting(temp),
            ));
        }
        self.local_app(to)
    }

    /// Rings `number` as the plan's next step.
    fn start_step(&mut self, now: Instant, id: u64, number: &str) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let caller: Caller = call.caller.clone();
        let mut groups = caller.groups.clone();
        groups.extend(call.plan.groups.iter().cloned());
        // A caller the box answered already (an auto attendant dialling) keeps the codec
        // it agreed to: the legs are offered what can be bridged to it.
        let template = match (&call.a.sent_sdp, call.caller_answered) {
            (Some(agreed), true) => crate::negotiate::narrow(&call.a_offer, agreed),
            _ => call.a_offer.clone(),
        };
        let mut dests = Vec::new();
        let mut errs = Vec::new();
        let mut seen = HashSet::new();
        self.routing = Some(id);
        self.expand(
            number, &caller, &groups, 0, &mut seen, &mut dests, &mut errs,
        );
        self.routing = None;
        let found = !dests.is_empty();
        let legs = if found {
            self.ring(now, id, dests, &caller, &template)
        } else {
            Vec::new()
        };
        if found && legs.is_empty() {
            errs.push((488, "no codec in common or no media ports".into()));
        }
        let step_time = {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            call.plan.errs.extend(errs);
            call.plan.step_first = legs.first().copied().unwrap_or(call.legs.len());
            call.plan.step_time
        };
        if legs.is_empty() {
            return self.step_failed(now, id);
        }
        if let (Some(t), Some(call)) = (step_time, self.calls.get_mut(&id)) {
            call.plan.step_deadline = Some(now + t);
        }
        self.arm_call(id);
        // Peer legs may have failed at once (no usable interface).
        self.leg_failed(now, id);
    }

    /// Every leg of the current step failed (or it had none): the next step, or the
    /// plan's end.
    pub(crate) fn step_failed(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.plan.step_deadline = None;
        if let Some(n) = call.plan.next.pop_front() {
            return self.start_step(now, id, &n);
        }
        self.plan_failed(now, id, false);
    }

    /// The plan is over without an answer: its fallback for the cause, or the caller
    /// hears why.
    pub(crate) fn plan_failed(&mut self, now: Instant, id: u64, timed_out: bool) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let p = &call.plan;
        let mut statuses: Vec<u16> = call.legs[p.plan_first.min(call.legs.len())..]
            .iter()
            .filter_map(|l| match l.state {
                LegState::Done(s) => Some(s),
                _ => None,
            })
            .collect();
        statuses.extend(p.errs.iter().map(|e| e.0));
        if timed_out {
            if let Some(c) = self.calls.get_mut(&id) {
                c.timed_out = true;
            }
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let p = &call.plan;
        let cause = if timed_out {
            Some(ForwardCause::NoAnswer)
        } else {
            cause_of(&statuses)
        };
        let fallback = p.fallbacks.for_cause(cause);
        let legs_done = statuses.len() - p.errs.len();
        let (status, why) = if timed_out {
            (480, "no answer".to_string())
        } else if legs_done == 0 {
            // Nothing rang: the routing's reason.
            routing_failure(&p.errs)
        } else {
            (crate::calls::summarize(&statuses), String::new())
        };
        let hops = p.hops;
        let carried = p.groups.clone();
        // A caller without an offer cannot be answered by the box yet: it hears why.
        let mailbox = p.mailbox.clone().filter(|_| !call.late_offer);
        // Whatever still rings of this plan stops.
        let ringing: Vec<usize> = (p.plan_first..call.legs.len()).collect();
        for i in ringing {
            self.cancel_leg(now, id, i);
        }
        match fallback {
            Some(to) if to == HANG_UP => {
                tracing::info!(call = id, ?cause, "hung up by a forwarding rule");
                self.fail_call(now, id, status, &why);
            }
            Some(to) if to == VOICEMAIL => match mailbox {
                Some(ext) => {
                    tracing::info!(call = id, ?cause, mailbox = ext, "to voicemail");
                    let dir = self.settings.voicemail_dir.join(&ext);
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.plan.next.clear();
                    }
                    let greeting = if cause == Some(ForwardCause::Busy) {
                        crate::app::Greeting::Busy
                    } else {
                        crate::app::Greeting::Unavailable
                    };
                    let app = crate::app::LeaveMessage::new(dir, greeting)
                        .with_temp_greeting(self.has_temp_greeting(&ext));
                    self.start_app(now, id, Box::new(app));
                }
                None => self.fail_call(now, id, status, &why),
            },
            Some(_) if hops >= MAX_HOPS => self.fail_call(now, id, 482, "forwarding loop"),
            Some(to) => {
                tracing::info!(call = id, ?cause, to, "falls back");
                if let Some(c) = self.calls.get_mut(&id) {
                    c.plan.next.clear();
                    c.plan.cause = cause;
                }
                self.start_plan(now, id, &to, hops + 1, carried);
            }
            None => self.fail_call(now, id, status, &why),
        }
    }

    /// The current step rang long enough: its legs stop and the next step rings.
    pub(crate) fn step_timeout(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.plan.step_deadline = None;
        let step: Vec<usize> = (call.plan.step_first..call.legs.len()).collect();
        let last = call.plan.next.is_empty();
        for i in step {
            self.cancel_leg(now, id, i);
        }
        if last {
            // The last step rang out: nobody answered.
            self.plan_failed(now, id, true);
        } else {
            self.step_failed(now, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_told_apart() {
        assert_eq!(cause_of(&[480, 486]), Some(ForwardCause::Busy));
        assert_eq!(cause_of(&[603]), Some(ForwardCause::Busy));
        assert_eq!(cause_of(&[408, 487]), Some(ForwardCause::Unavailable));
        assert_eq!(cause_of(&[403]), None);
        assert_eq!(cause_of(&[]), None);
    }
}
