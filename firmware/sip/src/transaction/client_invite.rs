//! The INVITE client transaction: RFC 3261 17.1.1 (figure 5) with RFC 6026's
//! "Accepted" state, so retransmitted 2xx reach the owner, which ACKs them.

use super::{ClientEvent, State, Timers};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ClientInvite {
    reliable: bool,
    timers: Timers,
    state: State,
    /// Kept for Timer A while nothing was heard; freed once a final arrives.
    request: Vec<u8>,
    /// The ACK to a non-2xx final, resent for each retransmission of that final.
    ack: Option<Vec<u8>>,
    pub(super) outbox: Vec<Vec<u8>>,
    /// Timer A: next retransmission and the interval after it.
    timer_a: Option<(Instant, Duration)>,
    /// Timer B: no answer at all.
    timer_b: Option<Instant>,
    /// Timer D (Completed) or M (Accepted): when the transaction ends.
    linger: Option<Instant>,
    timed_out: bool,
}

impl ClientInvite {
    pub fn new(now: Instant, request: Vec<u8>, reliable: bool, timers: Timers) -> Self {
        ClientInvite {
            reliable,
            timers,
            state: State::Trying,
            outbox: vec![request.clone()],
            request,
            ack: None,
            timer_a: (!reliable).then_some((now + timers.t1, timers.t1)),
            timer_b: Some(now + timers.t1 * 64),
            linger: None,
            timed_out: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Accepted (a 2xx came: retransmitted 2xx go up, the rest is absorbed), waiting
    /// only for Timer M.
    pub fn lingering(&self) -> bool {
        self.state == State::Accepted && self.linger.is_some() && self.outbox.is_empty()
    }

    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    pub fn handle_response(
        &mut self,
        now: Instant,
        status: u16,
        ack: impl FnOnce() -> Vec<u8>,
    ) -> ClientEvent {
        match self.state {
            State::Trying | State::Proceeding if status < 200 => {
                // Proceeding: no more retransmissions, and no Timer B (a phone may
                // ring for minutes).
                self.state = State::Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                ClientEvent::Response
            }
            State::Trying | State::Proceeding => {
                self.timer_a = None;
                self.timer_b = None;
                self.request = Vec::new();
                if status < 300 {
                    self.state = State::Accepted;
                    self.linger = Some(now + self.timers.t1 * 64);
                } else {
                    let a = ack();
                    self.outbox.push(a.clone());
                    self.ack = Some(a);
                    self.state = State::Completed;
                    self.linger = Some(if self.reliable {
                        now
                    } else {
                        now + Duration::from_secs(32)
                    });
                }
                ClientEvent::Response
            }
            // Retransmitted 2xx go up so the owner can ACK them again (RFC 6026 7.2).
            State::Accepted if (200..300).contains(&status) => ClientEvent::Response,
            State::Completed => {
                if let (Some(a), true) = (&self.ack, status >= 300) {
                    self.outbox.push(a.clone());
                }
                ClientEvent::Absorbed
            }
            _ => ClientEvent::Absorbed,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_b.is_some_and(|t| now >= t) {
            self.timed_out = true;
            return self.terminate();
        }
        if let Some((at, interval)) = self.timer_a {
            if now >= at {
                self.outbox.push(self.request.clone());
                self.timer_a = Some((now + interval * 2, interval * 2));
            }
        }
        if self.linger.is_some_and(|t| now >= t) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.linger = None;
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_a.map(|r| r.0), self.timer_b, self.linger]
            .into_iter()
            .flatten()
            .min()
    }
}
