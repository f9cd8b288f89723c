//! Call queues in the exchange (Kerio 14): who waits in which queue, which agents are
//! logged in, and handing each waiting caller to a free agent by the queue's strategy.
//!
//! A waiting caller's call is answered by the box (`app::QueueCaller` plays music and
//! announcements). [`Pbx::queue_dispatch`] runs after every input: for each queue,
//! higher priority first, the first waiting callers not being offered to anybody get
//! the free agents the strategy picks, rung as legs of the caller's own call. The
//! first agent to answer is connected (after the queue's announcement to the agent,
//! when it has one) and the application ends; an agent who does not answer within
//! `ring_seconds` is cancelled and the next is tried. An agent is free when it is
//! registered, in no call, not ringing, and its wrap-up time after its last queue
//! call is over.

use crate::app::{AppEvent, QueuePlace};
use crate::calls::LegState;
use crate::Pbx;
use config::QueueStrategy;
use rand::Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an agent that let a caller ring out (or declined it) is not offered that
/// caller again while no other agent is free.
const RETRY: Duration = Duration::from_secs(5);

/// The longest a queue call is recorded: its first hour (written to the card as it
/// goes; the stereo file is then 115 MB).
const MAX_RECORDING: usize = 8000 * 3600;

/// A name's piece made of what a file name may hold (a caller's number may not).
fn name_part(s: &str) -> String {
    let v: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
        .take(32)
        .collect();
    if v.is_empty() {
        "unknown".into()
    } else {
        v
    }
}

/// The announcement an agent hears, after a short silence (a phone that has just
/// answered may not play the first moment of what it gets).
#[derive(Debug, Clone)]
pub(crate) struct Whisper {
    path: std::path::PathBuf,
    prompt: String,
    pt: u8,
    alaw: bool,
}

/// The silence before an agent's announcement.
const WHISPER_LEAD_MS: usize = 400;

/// A caller waiting in a queue.
#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    pub call: u64,
    pub entered: Instant,
    /// Legs ringing agents for it now, and those agents.
    pub legs: Vec<usize>,
    pub ringing: Vec<String>,
    pub ring_until: Option<Instant>,
    /// Agents that did not answer it, and when they gave up: tried again only when no
    /// other agent is free, and not within [`RETRY`].
    pub tried: Vec<(String, Instant)>,
}

/// What a queue remembers of an agent.
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentStats {
    pub answered: u64,
    pub missed: u64,
    pub last_answered: Option<Instant>,
}

/// One queue's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueState {
    pub waiting: Vec<Waiter>,
    /// Dynamic agents logged in, in order of login.
    pub dynamic: Vec<String>,
    pub agents: HashMap<String, AgentStats>,
    /// The agent rung last (round robin goes on after it).
    pub rr_last: Option<String>,
    pub answered: u64,
    pub abandoned: u64,
    /// Callers sent to the fallback (full, no agent, waited too long).
    pub redirected: u64,
    pub total_wait: Duration,
    pub longest_wait: Duration,
}

impl QueueState {
    /// The average wait of answered callers, once some were.
    fn average_wait(&self) -> Option<u64> {
        (self.answered > 0).then(|| self.total_wait.as_secs() / self.answered)
    }
}

/// A waiting caller as the live view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueCallerInfo {
    pub call: u64,
    pub number: String,
    pub name: String,
    pub position: usize,
    pub seconds: u64,
    /// Agents ringing for it now.
    pub ringing: Vec<String>,
}

/// An agent as the live view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueAgentInfo {
    pub extension: String,
    pub name: String,
    /// Logged in with the code (else assigned for good).
    pub dynamic: bool,
    /// `free`, `ringing`, `in call`, `wrap-up` or `unavailable` (no phone registered).
    pub state: String,
    pub answered: u64,
    pub missed: u64,
}

/// A queue as the live view and `GET /api/v1/status/queues` show it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueInfo {
    pub number: String,
    pub description: String,
    pub strategy: QueueStrategy,
    pub waiting: Vec<QueueCallerInfo>,
    pub agents: Vec<QueueAgentInfo>,
    pub answered: u64,
    pub abandoned: u64,
    pub redirected: u64,
    /// Seconds answered callers waited on average, and the longest wait.
    pub average_wait: u64,
    pub longest_wait: u64,
}

impl Pbx {
    /// The agents of queue `q`: assigned ones, then those logged in.
    fn queue_agents(&self, q: &config::Queue) -> Vec<String> {
        let mut v = q.agents.clone();
        if let Some(s) = self.queues.get(&q.number).filter(|_| q.dynamic_agents) {
            for a in &s.dynamic {
                if !v.contains(a) {
                    v.push(a.clone());
                }
            }
        }
        v
    }

    /// A new configuration: agents logged in to a queue that is gone, takes no more
    /// dynamic agents, or whose extension is gone are logged out.
    pub(crate) fn queues_reconfigured(&mut self) {
        let snap = self.snapshot.clone();
        for (name, s) in self.queues.iter_mut() {
            match snap.queue(name).filter(|q| q.dynamic_agents) {
                Some(_) => s.dynamic.retain(|a| snap.extension(a).is_some()),
                None => s.dynamic.clear(),
            }
        }
    }

    /// Devices of extension `ext` that can ring (enabled and registered).
    fn agent_devices(&self, ext: &str) -> Vec<crate::route::Dest> {
        let snap = self.snapshot.clone();
        if !snap
            .extension(ext)
            .is_some_and(|e| e.enabled && !e.do_not_disturb)
        {
            return Vec::new();
        }
        snap.accounts_of(ext)
            .filter(|a| a.enabled)
            .filter_map(|a| {
                self.registrations
                    .get(&a.username)
                    .map(|r| crate::route::Dest::Device(Box::new((a.clone(), r.clone()))))
            })
            .collect()
    }

    /// What agent `ext` is doing now.
    fn agent_state(&self, now: Instant, ext: &str) -> &'static str {
        let accounts: Vec<&str> = self
            .snapshot
            .accounts_of(ext)
            .map(|a| a.username.as_str())
            .collect();
        let ringing = self.calls.values().any(|c| {
            c.legs.iter().any(|l| {
                matches!(l.state, LegState::Calling | LegState::Ringing)
                    && accounts.contains(&l.account.as_str())
            })
        });
        if ringing {
            "ringing"
        } else if self.active_calls(ext) > 0 || accounts.iter().any(|a| self.account_busy(a)) {
            "in call"
        } else if self.agent_wrapup.get(ext).is_some_and(|t| *t > now) {
            "wrap-up"
        } else if self
            .snapshot
            .extension(ext)
            .is_some_and(|e| e.do_not_disturb)
        {
            "do not disturb"
        } else if self.agent_devices(ext).is_empty() {
            "unavailable"
        } else {
            "free"
        }
    }

    /// Where call `id` waits, for its application.
    pub(crate) fn queue_place(&self, id: u64) -> Option<QueuePlace> {
        self.queues.values().find_map(|s| {
            let i = s.waiting.iter().position(|w| w.call == id)?;
            Some(QueuePlace {
                position: i + 1,
                estimate: s.average_wait(),
            })
        })
    }

    fn queue_of(&self, id: u64) -> Option<String> {
        self.queues
            .iter()
            .find(|(_, s)| s.waiting.iter().any(|w| w.call == id))
            .map(|(n, _)| n.clone())
    }

    /// Call `id` (answered by its queue application) asks to wait in `queue`.
    pub(crate) fn enter_queue(&mut self, now: Instant, id: u64, queue: &str) {
        let Some(q) = self.snapshot.queue(queue).cloned() else {
            return self.app_event(now, id, AppEvent::QueueRefused);
        };
        let agents = self.queue_agents(&q);
        let state = self.queues.entry(q.number.clone()).or_default();
        if state.waiting.len() >= q.limit() {
            tracing::info!(call = id, queue, "the queue is full");
            state.redirected += 1;
            return self.app_event(now, id, AppEvent::QueueRefused);
        }
        if q.refuse_when_empty && agents.is_empty() {
            tracing::info!(call = id, queue, "no agent is logged in to the queue");
            state.redirected += 1;
            return self.app_event(now, id, AppEvent::QueueRefused);
        }
        state.waiting.push(Waiter {
            call: id,
            entered: now,
            legs: Vec::new(),
            ringing: Vec::new(),
            ring_until: None,
            tried: Vec::new(),
        });
        tracing::info!(
            call = id,
            queue,
            position = state.waiting.len(),
            "waits in the queue"
        );
        self.app_event(now, id, AppEvent::Queued);
        self.queue_dispatch(now);
    }

    /// Stops the legs ringing agents for call `id`.
    fn stop_ringing(&mut self, now: Instant, id: u64, legs: &[usize]) {
        for &i in legs {
            self.cancel_leg(now, id, i);
        }
    }

    /// Call `id` leaves its queue: sent to the fallback (`redirected`), or gone.
    pub(crate) fn leave_queue(&mut self, now: Instant, id: u64, redirected: bool) {
        let Some(name) = self.queue_of(id) else {
            return;
        };
        let state = self.queues.get_mut(&name).expect("found above");
        let i = state
            .waiting
            .iter()
            .position(|w| w.call == id)
            .expect("found above");
        let w = state.waiting.remove(i);
        if redirected {
            state.redirected += 1;
        } else {
            state.abandoned += 1;
        }
        tracing::info!(
            call = id,
            queue = name,
            redirected,
            seconds = now.saturating_duration_since(w.entered).as_secs(),
            "left the queue"
        );
        if self.calls.contains_key(&id) {
            self.stop_ringing(now, id, &w.legs);
        }
    }

    /// Call `id` ended: out of its queue (abandoned), and an agent's queue call over
    /// (its wrap-up time begins).
    pub(crate) fn queue_call_ended(&mut self, id: u64) {
        let now = self.last_now;
        self.queue_whispers.retain(|_, (call, _)| *call != id);
        if self.queue_of(id).is_some() {
            self.leave_queue(now, id, false);
        }
        if let Some((queue, agent)) = self.queue_calls.remove(&id) {
            let wrapup = self.snapshot.queue(&queue).map_or(0, |q| q.wrapup_seconds);
            if wrapup > 0 {
                self.agent_wrapup
                    .insert(agent, now + Duration::from_secs(wrapup.into()));
            }
        }
    }

    /// Whether leg `idx` of call `id` rings an agent for a waiting caller.
    pub(crate) fn is_queue_leg(&self, id: u64, idx: usize) -> bool {
        self.queues
            .values()
            .flat_map(|s| s.waiting.iter())
            .any(|w| w.call == id && w.legs.contains(&idx))
    }

    /// An agent answered leg `idx` of call `id` (already connected to the caller):
    /// the caller leaves the queue and its application ends; the agent hears the
    /// queue's announcement first when it has one.
    pub(crate) fn queue_answered(&mut self, now: Instant, id: u64, idx: usize) {
        let Some(name) = self.queue_of(id) else {
            return;
        };
        let snap = self.snapshot.clone();
        let default_music = self.hold_music();
        let unix = self.unix(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let agent = call.legs[idx].number(&snap);
        let codec = call.app.take().map(|a| a.codec);
        let state = self.queues.get_mut(&name).expect("found above");
        let i = state
            .waiting
            .iter()
            .position(|w| w.call == id)
            .expect("found above");
        let w = state.waiting.remove(i);
        let waited = now.saturating_duration_since(w.entered);
        state.answered += 1;
        state.total_wait += waited;
        state.longest_wait = state.longest_wait.max(waited);
        let a = state.agents.entry(agent.clone()).or_default();
        a.answered += 1;
        a.last_answered = Some(now);
        tracing::info!(
            call = id,
            queue = name,
            agent,
            waited = waited.as_secs(),
            "an agent answered"
        );
        self.queue_calls.insert(id, (name.clone(), agent.clone()));
        // Recorded: the caller's voice and the agent's, into one file when it ends.
        if snap.queue(&name).is_some_and(|q| q.record) {
            let stem = format!(
                "{}-{}-{}-{}-{id}",
                unix,
                name_part(&name),
                name_part(&call.caller_ext),
                name_part(&agent)
            );
            let parts = self.settings.recordings_dir.join("parts");
            if let Some(ep) = call.legs[idx].ep.as_ref() {
                call.a_ep
                    .record(parts.join(format!("{stem}-caller.wav")), MAX_RECORDING);
                ep.record(parts.join(format!("{stem}-agent.wav")), MAX_RECORDING);
                self.queue_rec_halves
                    .insert(call.a_ep.id(), (stem.clone(), 0));
                self.queue_rec_halves.insert(ep.id(), (stem.clone(), 1));
                self.queue_rec_pairs.insert(stem, [None, None]);
            }
        }
        // The agent hears which queue the call comes from; the caller hears music
        // until then.
        let sound = snap
            .queue(&name)
            .map(|q| (q.agent_sound.clone(), q.music.clone()))
            .filter(|(s, _)| !s.is_empty());
        let leg = &call.legs[idx];
        let leg_codec = leg
            .dialog
            .sent_sdp
            .as_ref()
            .and_then(|s| s.codecs.iter().find(|c| !c.is_dtmf()))
            .map(|c| (c.pt, c.name.eq_ignore_ascii_case("PCMA")))
            .filter(|_| {
                leg.dialog.sent_sdp.as_ref().is_some_and(|s| {
                    s.codecs.iter().find(|c| !c.is_dtmf()).is_some_and(|c| {
                        c.name.eq_ignore_ascii_case("PCMA") || c.name.eq_ignore_ascii_case("PCMU")
                    })
                })
            });
        if let (Some((sound, music)), Some((lpt, lalaw)), Some(ep)) =
            (sound, leg_codec, leg.ep.as_ref())
        {
            let path = self.settings.sounds_dir.join(format!("{sound}.wav"));
            // µ-law 0xff is silence; the endpoint plays it in the agent's law.
            ep.play_once(
                media::Clip::from_ulaw(vec![0xff; WHISPER_LEAD_MS * 8]),
                lpt,
                lalaw,
            );
            if let Some((pt, alaw)) = codec {
                let music = if music.is_empty() {
                    default_music
                } else {
                    music
                };
                call.a_ep.play_music(&music, pt, alaw);
            }
            let whisper = Whisper {
                path,
                prompt: sound,
                pt: lpt,
                alaw: lalaw,
            };
            self.queue_whispers.insert(ep.id(), (id, Some(whisper)));
        }
        // The other agents' legs are cancelled by the caller of this (as for any
        // answer of a call the box answered).
        let _ = w;
    }

    /// A half of a recorded queue call is written (or not, `ok`): once both are, the
    /// driver makes them one file. False when `ep` records no queue call.
    pub(crate) fn queue_recording_written(
        &mut self,
        ep: u64,
        path: &std::path::Path,
        ok: bool,
    ) -> bool {
        let Some((stem, side)) = self.queue_rec_halves.remove(&ep) else {
            return false;
        };
        let Some(pair) = self.queue_rec_pairs.get_mut(&stem) else {
            return true;
        };
        pair[side] = Some(ok.then(|| path.to_path_buf()));
        if pair.iter().all(Option::is_some) {
            let [caller, agent] = self.queue_rec_pairs.remove(&stem).expect("found above");
            self.requests.push_back(crate::Request::MergeRecording {
                caller: caller.flatten(),
                agent: agent.flatten(),
                out: self.settings.recordings_dir.join(format!("{stem}.wav")),
                keep_bytes: u64::from(self.snapshot.config.recordings_max_mb) * 1_000_000,
            });
        }
        true
    }

    /// A play to an agent ended (endpoint `ep`): after the silence its announcement
    /// plays; after the announcement the caller is put through (unless a hold plays
    /// it music meanwhile).
    pub(crate) fn queue_whisper_done(&mut self, ep: u64) {
        let Some((id, next)) = self.queue_whispers.remove(&ep) else {
            return;
        };
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        if let Some(w) = next {
            let leg = c
                .legs
                .iter()
                .filter_map(|l| l.ep.as_ref())
                .find(|e| e.id() == ep);
            if let Some(h) = leg {
                h.play_file(w.path, Some(&w.prompt), w.pt, w.alaw);
                self.queue_whispers.insert(ep, (id, None));
                return;
            }
        }
        if c.held_by.is_none() {
            c.a_ep.stop();
        }
    }

    /// A leg of call `id` failed while its caller waits: when no agent rings for it
    /// any more, the next is tried.
    pub(crate) fn queue_leg_failed(&mut self, now: Instant, id: u64) {
        let Some(name) = self.queue_of(id) else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let done = |i: &usize| matches!(call.legs[*i].state, LegState::Done(_));
        let state = self.queues.get_mut(&name).expect("found above");
        let Some(w) = state.waiting.iter_mut().find(|w| w.call == id) else {
            return;
        };
        if w.legs.is_empty() || !w.legs.iter().all(done) {
            return;
        }
        for a in std::mem::take(&mut w.ringing) {
            state.agents.entry(a.clone()).or_default().missed += 1;
            w.tried.retain(|(t, _)| *t != a);
            w.tried.push((a, now));
        }
        w.legs.clear();
        w.ring_until = None;
        self.queue_dispatch(now);
    }

    /// Hands waiting callers to free agents; agents that rang too long are given up.
    pub(crate) fn queue_dispatch(&mut self, now: Instant) {
        if self.queues.values().all(|s| s.waiting.is_empty()) {
            return;
        }
        let snap = self.snapshot.clone();
        // Agents that rang out.
        let mut rang_out = Vec::new();
        for s in self.queues.values_mut() {
            for w in s.waiting.iter_mut() {
                if w.ring_until.is_some_and(|t| t <= now) {
                    for a in std::mem::take(&mut w.ringing) {
                        s.agents.entry(a.clone()).or_default().missed += 1;
                        w.tried.retain(|(t, _)| *t != a);
                        w.tried.push((a, now));
                    }
                    w.ring_until = None;
                    rang_out.push((w.call, std::mem::take(&mut w.legs)));
                }
            }
        }
        for (id, legs) in rang_out {
            tracing::debug!(call = id, "no agent answered in time");
            self.stop_ringing(now, id, &legs);
        }
        let mut order: Vec<(u8, String)> = self
            .queues
            .iter()
            .filter(|(_, s)| !s.waiting.is_empty())
            .map(|(n, _)| (snap.queue(n).map_or(0, |q| q.priority), n.clone()))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, name) in order {
            let Some(q) = snap.queue(&name).cloned() else {
                // The queue is gone from the configuration: its callers go.
                self.put_out(now, &name);
                continue;
            };
            let agents = self.queue_agents(&q);
            if agents.is_empty() && q.leave_when_empty {
                self.put_out(now, &name);
                continue;
            }
            let waiting: Vec<u64> = self.queues[&name]
                .waiting
                .iter()
                .filter(|w| w.legs.is_empty())
                .map(|w| w.call)
                .collect();
            for call in waiting {
                let free: Vec<String> = agents
                    .iter()
                    .filter(|a| self.agent_state(now, a) == "free")
                    .cloned()
                    .collect();
                if free.is_empty() {
                    break;
                }
                // A caller whose free agents all gave up on it a moment ago waits;
                // the next caller may take them.
                self.offer(now, &q, call, &agents, free);
            }
        }
    }

    /// Rings the agents the strategy picks among `free` for waiting call `call`.
    /// False when nothing was rung.
    fn offer(
        &mut self,
        now: Instant,
        q: &config::Queue,
        call: u64,
        agents: &[String],
        free: Vec<String>,
    ) -> bool {
        let state = self.queues.get_mut(&q.number).expect("has waiters");
        let Some(w) = state.waiting.iter_mut().find(|w| w.call == call) else {
            return false;
        };
        // Agents that let this caller ring out (or declined it) come last: offered
        // again only when no other is free, and not within RETRY of giving up.
        let mut fresh: Vec<String> = free
            .iter()
            .filter(|a| !w.tried.iter().any(|(t, _)| t == *a))
            .cloned()
            .collect();
        if fresh.is_empty() {
            fresh = free
                .into_iter()
                .filter(|a| {
                    w.tried
                        .iter()
                        .any(|(t, at)| t == a && now.saturating_duration_since(*at) >= RETRY)
                })
                .collect();
            w.tried.retain(|(t, _)| !fresh.contains(t));
            if fresh.is_empty() {
                return false;
            }
        }
        let stats = |a: &String| state.agents.get(a).cloned().unwrap_or_default();
        let chosen: Vec<String> = match q.strategy {
            QueueStrategy::RingAll => fresh,
            QueueStrategy::LongestIdle => fresh
                .iter()
                .min_by_key(|a| stats(a).last_answered)
                .cloned()
                .into_iter()
                .collect(),
            QueueStrategy::FewestCalls => fresh
                .iter()
                .min_by_key(|a| stats(a).answered)
                .cloned()
                .into_iter()
                .collect(),
            QueueStrategy::Random => {
                let i = self.rng.gen_range(0..fresh.len());
                vec![fresh[i].clone()]
            }
            QueueStrategy::RoundRobin => {
                // The next agent of the queue's list after the one rung last.
                let start = state
                    .rr_last
                    .as_ref()
                    .and_then(|l| agents.iter().position(|a| a == l))
                    .map_or(0, |i| i + 1);
                (0..agents.len())
                    .map(|k| &agents[(start + k) % agents.len()])
                    .find(|a| fresh.contains(a))
                    .cloned()
                    .into_iter()
                    .collect()
            }
        };
        if q.strategy == QueueStrategy::RoundRobin {
            state.rr_last = chosen.first().cloned();
        }
        let Some(c) = self.calls.get(&call) else {
            return false;
        };
        let caller = c.caller.clone();
        let template = match &c.a.sent_sdp {
            Some(agreed) => crate::negotiate::narrow(&c.a_offer, agreed),
            None => c.a_offer.clone(),
        };
        let mut dests = Vec::new();
        for a in &chosen {
            dests.extend(self.agent_devices(a));
        }
        let legs = self.ring(now, call, dests, &caller, &template);
        let state = self.queues.get_mut(&q.number).expect("has waiters");
        let Some(w) = state.waiting.iter_mut().find(|w| w.call == call) else {
            return false;
        };
        if legs.is_empty() {
            w.tried.extend(chosen.into_iter().map(|a| (a, now)));
            return false;
        }
        tracing::info!(call, queue = q.number, agents = ?chosen, "rings agents");
        w.legs = legs;
        w.ringing = chosen;
        w.ring_until = Some(now + Duration::from_secs(q.ring_seconds.into()));
        true
    }

    /// Every caller waiting in queue `name` goes to its fallback.
    fn put_out(&mut self, now: Instant, name: &str) {
        let calls: Vec<u64> = self
            .queues
            .get(name)
            .map(|s| s.waiting.iter().map(|w| w.call).collect())
            .unwrap_or_default();
        for id in calls {
            self.leave_queue(now, id, true);
            self.app_event(now, id, AppEvent::QueueRefused);
        }
    }

    /// Extension `ext` logs in to (or out of) queue `queue` as a dynamic agent. False
    /// when the queue takes no dynamic agents or `ext` is no extension.
    pub fn queue_login(&mut self, now: Instant, queue: &str, ext: &str, login: bool) -> bool {
        let Some(q) = self.snapshot.queue(queue) else {
            return false;
        };
        if !q.dynamic_agents || self.snapshot.extension(ext).is_none() {
            return false;
        }
        let s = self.queues.entry(queue.to_string()).or_default();
        if login {
            if !s.dynamic.iter().any(|a| a == ext) {
                s.dynamic.push(ext.to_string());
            }
        } else {
            s.dynamic.retain(|a| a != ext);
        }
        tracing::info!(queue, agent = ext, login, "queue agent");
        self.queue_dispatch(now);
        true
    }

    /// The queues with their waiting callers, agents and figures.
    pub fn queues(&self, now: Instant) -> Vec<QueueInfo> {
        let snap = self.snapshot.clone();
        snap.config
            .queues
            .iter()
            .map(|q| {
                let empty = QueueState::default();
                let s = self.queues.get(&q.number).unwrap_or(&empty);
                let waiting = s
                    .waiting
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let c = self.calls.get(&w.call);
                        QueueCallerInfo {
                            call: w.call,
                            number: c.map(|c| c.caller_ext.clone()).unwrap_or_default(),
                            name: c.map(|c| c.caller_name.clone()).unwrap_or_default(),
                            position: i + 1,
                            seconds: now.saturating_duration_since(w.entered).as_secs(),
                            ringing: w.ringing.clone(),
                        }
                    })
                    .collect();
                let agents = self
                    .queue_agents(q)
                    .into_iter()
                    .map(|a| {
                        let st = s.agents.get(&a).cloned().unwrap_or_default();
                        QueueAgentInfo {
                            name: snap
                                .extension(&a)
                                .map(|e| e.display_name())
                                .unwrap_or_default(),
                            dynamic: !q.agents.contains(&a),
                            state: self.agent_state(now, &a).to_string(),
                            answered: st.answered,
                            missed: st.missed,
                            extension: a,
                        }
                    })
                    .collect();
                QueueInfo {
                    number: q.number.clone(),
                    description: q.description.clone(),
                    strategy: q.strategy,
                    waiting,
                    agents,
                    answered: s.answered,
                    abandoned: s.abandoned,
                    redirected: s.redirected,
                    average_wait: s.average_wait().unwrap_or(0),
                    longest_wait: s.longest_wait.as_secs(),
                }
            })
            .collect()
    }
}
