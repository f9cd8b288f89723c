//! The non-INVITE server transaction: RFC 3261 17.2.2 (figure 8).

use super::{ServerEvent, State, Timers};
use std::time::Instant;

#[derive(Debug)]
pub struct ServerNonInvite {
    reliable: bool,
    timers: Timers,
    state: State,
    /// The last response, resent for a retransmitted request (exactly its length: a
    /// final is kept 32 s).
    last: Option<Box<[u8]>>,
    pub(super) outbox: Vec<Vec<u8>>,
    /// Timer J: absorbs retransmitted requests, then the transaction ends.
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            reliable,
            timers,
            state: State::Trying,
            last: None,
            outbox: Vec::new(),
            timer_j: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return false;
        }
        self.last = Some(bytes.as_slice().into());
        self.outbox.push(bytes);
        if status < 200 {
            self.state = State::Proceeding;
        } else {
            self.state = State::Completed;
            self.timer_j = Some(if self.reliable {
                now
            } else {
                now + self.timers.t1 * 64
            });
        }
        true
    }

    pub fn handle_retransmission(&mut self) -> ServerEvent {
        if matches!(self.state, State::Proceeding | State::Completed) {
            if let Some(l) = &self.last {
                self.outbox.push(l.to_vec());
            }
        }
        ServerEvent::Absorbed
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_j.is_some_and(|t| now >= t) {
            self.state = State::Terminated;
            self.timer_j = None;
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }
}
