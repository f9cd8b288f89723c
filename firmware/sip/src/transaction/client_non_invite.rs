//! The non-INVITE client transaction: RFC 3261 17.1.2 (figure 6).

use super::{ClientEvent, State, Timers};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ClientNonInvite {
    reliable: bool,
    timers: Timers,
    state: State,
    /// Kept for Timer E until a final arrives.
    request: Vec<u8>,
    pub(super) outbox: Vec<Vec<u8>>,
    /// Timer E: next retransmission and the interval after it (capped at T2).
    timer_e: Option<(Instant, Duration)>,
    /// Timer F: no final answer.
    timer_f: Option<Instant>,
    /// Timer K: absorbs retransmitted finals, then the transaction ends.
    timer_k: Option<Instant>,
    timed_out: bool,
}

impl ClientNonInvite {
    pub fn new(now: Instant, request: Vec<u8>, reliable: bool, timers: Timers) -> Self {
        ClientNonInvite {
            reliable,
            timers,
            state: State::Trying,
            outbox: vec![request.clone()],
            request,
            timer_e: (!reliable).then_some((now + timers.t1, timers.t1)),
            timer_f: Some(now + timers.t1 * 64),
            timer_k: None,
            timed_out: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Completed (a final came: retransmitted finals are absorbed), waiting only for
    /// Timer K.
    pub fn lingering(&self) -> bool {
        self.state == State::Completed && self.timer_k.is_some() && self.outbox.is_empty()
    }

    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    pub fn handle_response(&mut self, now: Instant, status: u16) -> ClientEvent {
        match self.state {
            State::Trying | State::Proceeding if status < 200 => {
                // Proceeding: retransmissions go on, every T2.
                self.state = State::Proceeding;
                if let Some((at, _)) = self.timer_e {
                    self.timer_e = Some((at, self.timers.t2));
                }
                ClientEvent::Response
            }
            State::Trying | State::Proceeding => {
                self.state = State::Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.request = Vec::new();
                self.timer_k = Some(if self.reliable {
                    now
                } else {
                    now + self.timers.t4
                });
                ClientEvent::Response
            }
            _ => ClientEvent::Absorbed,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_f.is_some_and(|t| now >= t) {
            self.timed_out = true;
            return self.terminate();
        }
        if let Some((at, interval)) = self.timer_e {
            if now >= at {
                self.outbox.push(self.request.clone());
                let next = (interval * 2).min(self.timers.t2);
                self.timer_e = Some((now + next, next));
            }
        }
        if self.timer_k.is_some_and(|t| now >= t) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_e.map(|r| r.0), self.timer_f, self.timer_k]
            .into_iter()
            .flatten()
            .min()
    }
}
