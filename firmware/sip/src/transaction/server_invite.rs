//! The INVITE server transaction: RFC 3261 17.2.1 (figure 7) with RFC 6026's
//! "Accepted" state: the owner (the dialog) retransmits a 2xx until its ACK.

use super::{ServerEvent, State, Timers};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ServerInvite {
    reliable: bool,
    timers: Timers,
    state: State,
    /// The last response, resent for a retransmitted INVITE (not kept for a 2xx).
    last: Option<Vec<u8>>,
    pub(super) outbox: Vec<Vec<u8>>,
    /// Timer G: retransmission of a non-2xx final.
    timer_g: Option<(Instant, Duration)>,
    /// Timer H: give up waiting for the ACK.
    timer_h: Option<Instant>,
    /// Timer I (Confirmed) or L (Accepted): when the transaction ends.
    linger: Option<Instant>,
    ack_missing: bool,
}

impl ServerInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerInvite {
            reliable,
            timers,
            state: State::Proceeding,
            last: None,
            outbox: Vec::new(),
            timer_g: None,
            timer_h: None,
            linger: None,
            ack_missing: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Accepted (a 2xx sent: retransmitted INVITEs are absorbed, the ACK is the
    /// dialog's) or Confirmed (the ACK came), waiting only for Timer L or I.
    pub fn lingering(&self) -> bool {
        matches!(self.state, State::Accepted | State::Confirmed)
            && self.linger.is_some()
            && self.outbox.is_empty()
    }

    pub fn ack_missing(&self) -> bool {
        self.ack_missing
    }

    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if self.state != State::Proceeding {
            return false;
        }
        self.outbox.push(bytes.clone());
        if status < 200 {
            self.last = Some(bytes);
        } else if status < 300 {
            // Retransmitted INVITEs are absorbed silently from here on, so the bytes
            // need not be kept.
            self.last = None;
            self.state = State::Accepted;
            self.linger = Some(now + self.timers.t1 * 64);
        } else {
            self.last = Some(bytes);
            self.state = State::Completed;
            if !self.reliable {
                self.timer_g = Some((now + self.timers.t1, self.timers.t1));
            }
            self.timer_h = Some(now + self.timers.t1 * 64);
        }
        true
    }

    pub fn handle_retransmission(&mut self) -> ServerEvent {
        if matches!(self.state, State::Proceeding | State::Completed) {
            if let Some(l) = &self.last {
                self.outbox.push(l.clone());
            }
        }
        ServerEvent::Absorbed
    }

    pub fn handle_ack(&mut self, now: Instant) -> ServerEvent {
        if self.state != State::Completed {
            return ServerEvent::Absorbed;
        }
        self.state = State::Confirmed;
        self.timer_g = None;
        self.timer_h = None;
        self.last = None;
        self.linger = Some(if self.reliable {
            now
        } else {
            now + self.timers.t4
        });
        ServerEvent::Acked
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_h.is_some_and(|t| now >= t) {
            self.ack_missing = true;
            self.state = State::Terminated;
            self.timer_g = None;
            self.timer_h = None;
            return;
        }
        if let Some((at, interval)) = self.timer_g {
            if now >= at {
                if let Some(l) = &self.last {
                    self.outbox.push(l.clone());
                }
                let next = (interval * 2).min(self.timers.t2);
                self.timer_g = Some((now + next, next));
            }
        }
        if self.linger.is_some_and(|t| now >= t) {
            self.state = State::Terminated;
            self.linger = None;
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_g.map(|r| r.0), self.timer_h, self.linger]
            .into_iter()
            .flatten()
            .min()
    }
}
