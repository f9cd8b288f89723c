//! RFC 3261 section 17 transactions as sans-IO state machines, with the RFC 6026
//! "Accepted" states for 2xx to INVITE.
//!
//! All time comes in as `now`. After every call the owner drains [`poll_transmit`]
//! and re-arms its timer from [`poll_timeout`]; when the deadline passes it calls
//! `handle_timeout(now)`.
//!
//! [`poll_transmit`]: ClientTransaction::poll_transmit
//! [`poll_timeout`]: ClientTransaction::poll_timeout

use std::time::{Duration, Instant};

/// The RFC 3261 timer base values.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Client INVITE before any response (RFC "Calling"); client non-INVITE "Trying";
    /// server non-INVITE before any response.
    Trying,
    Proceeding,
    /// 2xx to an INVITE seen or sent (RFC 6026).
    Accepted,
    Completed,
    /// Server INVITE after the ACK.
    Confirmed,
    Terminated,
}

/// What a client transaction tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent {
    /// Pass the response up.
    Response,
    /// Swallow it (a retransmission).
    Absorbed,
}

/// A client transaction (17.1.1 for INVITE, 17.1.2 otherwise).
#[derive(Debug)]
pub struct ClientTransaction {
    invite: bool,
    reliable: bool,
    timers: Timers,
    state: State,
    request: Vec<u8>,
    ack: Option<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
    /// Timer A or E: next retransmission and the interval after it.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B or F.
    timeout: Option<Instant>,
    /// Timer D, K or M: when the transaction ends.
    linger: Option<Instant>,
    timed_out: bool,
}

impl ClientTransaction {
    /// Starts a transaction; the request goes out on the first [`Self::poll_transmit`].
    pub fn new(
        now: Instant,
        request: Vec<u8>,
        invite: bool,
        reliable: bool,
        timers: Timers,
    ) -> Self {
        let retransmit = (!reliable).then_some((now + timers.t1, timers.t1));
        ClientTransaction {
            invite,
            reliable,
            timers,
            state: State::Trying,
            outbox: vec![request.clone()],
            request,
            ack: None,
            retransmit,
            timeout: Some(now + timers.t1 * 64),
            linger: None,
            timed_out: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once Timer B or F fired: the owner treats it as a 408.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// A response matched this transaction. For a non-2xx final to an INVITE, `ack`
    /// builds the ACK the transaction sends (and resends on retransmissions).
    #[must_use]
    pub fn handle_response(
        &mut self,
        now: Instant,
        status: u16,
        ack: impl FnOnce() -> Vec<u8>,
    ) -> ClientEvent {
        match self.state {
            State::Trying | State::Proceeding => {
                if status < 200 {
                    self.state = State::Proceeding;
                    if self.invite {
                        self.retransmit = None;
                        self.timeout = None;
                    } else if let Some((at, _)) = self.retransmit {
                        self.retransmit = Some((at, self.timers.t2));
                    }
                    return ClientEvent::Response;
                }
                self.retransmit = None;
                self.timeout = None;
                // Never sent again: free it while the transaction lingers.
                self.request = Vec::new();
                if self.invite && status < 300 {
                    self.state = State::Accepted;
                    self.linger = Some(now + self.timers.t1 * 64);
                } else if self.invite {
                    let a = ack();
                    self.outbox.push(a.clone());
                    self.ack = Some(a);
                    self.state = State::Completed;
                    self.linger = Some(if self.reliable {
                        now
                    } else {
                        now + Duration::from_secs(32)
                    });
                } else {
                    self.state = State::Completed;
                    self.linger = Some(if self.reliable {
                        now
                    } else {
                        now + self.timers.t4
                    });
                }
                ClientEvent::Response
            }
            // Retransmitted 2xx go up so the owner can ACK them again (RFC 6026 7.2).
            State::Accepted if (200..300).contains(&status) => ClientEvent::Response,
            State::Completed => {
                if let Some(a) = &self.ack {
                    if status >= 300 {
                        self.outbox.push(a.clone());
                    }
                }
                ClientEvent::Absorbed
            }
            _ => ClientEvent::Absorbed,
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.timeout {
            if now >= t {
                self.timed_out = true;
                self.terminate();
                return;
            }
        }
        if let Some((at, interval)) = self.retransmit {
            if now >= at {
                self.outbox.push(self.request.clone());
                let next = if self.invite {
                    interval * 2
                } else {
                    (interval * 2).min(self.timers.t2)
                };
                self.retransmit = Some((now + next, next));
            }
        }
        if let Some(t) = self.linger {
            if now >= t {
                self.terminate();
            }
        }
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.linger = None;
    }

    /// Next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit.map(|r| r.0), self.timeout, self.linger]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What a server transaction tells its owner about an incoming request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// A retransmission: the last response was queued again, nothing to do.
    Absorbed,
    /// The ACK for a non-2xx final response.
    Acked,
}

/// A server transaction (17.2.1 for INVITE, 17.2.2 otherwise).
#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    reliable: bool,
    timers: Timers,
    state: State,
    last: Option<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
    /// Timer G: retransmission of a non-2xx final to INVITE.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H: give up waiting for the ACK.
    ack_timeout: Option<Instant>,
    /// Timer I, J or L: when the transaction ends.
    linger: Option<Instant>,
    ack_missing: bool,
}

impl ServerTransaction {
    /// A transaction for a new request.
    pub fn new(invite: bool, reliable: bool, timers: Timers) -> Self {
        ServerTransaction {
            invite,
            reliable,
            timers,
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            last: None,
            outbox: Vec::new(),
            retransmit: None,
            ack_timeout: None,
            linger: None,
            ack_missing: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// True when Timer H fired: the final response was never acknowledged.
    pub fn ack_missing(&self) -> bool {
        self.ack_missing
    }

    /// The owner answers. Returns false (and sends nothing) once a final was sent.
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return false;
        }
        self.outbox.push(bytes.clone());
        self.last = Some(bytes);
        if status < 200 {
            self.state = State::Proceeding;
        } else if self.invite && status < 300 {
            // The owner retransmits the 2xx until the ACK (RFC 6026 Accepted, Timer L);
            // retransmitted INVITEs are absorbed silently, so the bytes need not be kept.
            self.last = None;
            self.state = State::Accepted;
            self.linger = Some(now + self.timers.t1 * 64);
        } else if self.invite {
            self.state = State::Completed;
            if !self.reliable {
                self.retransmit = Some((now + self.timers.t1, self.timers.t1));
            }
            self.ack_timeout = Some(now + self.timers.t1 * 64);
        } else {
            self.state = State::Completed;
            self.linger = Some(if self.reliable {
                now
            } else {
                now + self.timers.t1 * 64
            });
        }
        true
    }

    /// The same request arrived again.
    pub fn handle_retransmission(&mut self) -> ServerEvent {
        if matches!(self.state, State::Proceeding | State::Completed) {
            if let Some(l) = &self.last {
                self.outbox.push(l.clone());
            }
        }
        ServerEvent::Absorbed
    }

    /// An ACK matched this transaction (non-2xx final).
    pub fn handle_ack(&mut self, now: Instant) -> ServerEvent {
        if self.state == State::Completed && self.invite {
            self.state = State::Confirmed;
            self.retransmit = None;
            self.ack_timeout = None;
            self.linger = Some(if self.reliable {
                now
            } else {
                now + self.timers.t4
            });
            return ServerEvent::Acked;
        }
        ServerEvent::Absorbed
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.ack_timeout {
            if now >= t {
                self.ack_missing = true;
                self.state = State::Terminated;
                self.retransmit = None;
                self.ack_timeout = None;
                return;
            }
        }
        if let Some((at, interval)) = self.retransmit {
            if now >= at {
                if let Some(l) = &self.last {
                    self.outbox.push(l.clone());
                }
                let next = (interval * 2).min(self.timers.t2);
                self.retransmit = Some((now + next, next));
            }
        }
        if let Some(t) = self.linger {
            if now >= t {
                self.state = State::Terminated;
                self.linger = None;
            }
        }
    }

    /// Next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit.map(|r| r.0), self.ack_timeout, self.linger]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_c(t: &mut ClientTransaction) -> usize {
        std::iter::from_fn(|| t.poll_transmit()).count()
    }
    fn drain_s(t: &mut ServerTransaction) -> usize {
        std::iter::from_fn(|| t.poll_transmit()).count()
    }

    /// Runs the virtual clock to `until`, firing each deadline, and counts transmissions.
    fn run_client(t: &mut ClientTransaction, mut now: Instant, until: Instant) -> (usize, Instant) {
        let mut sent = 0;
        while let Some(d) = t.poll_timeout() {
            if d > until {
                break;
            }
            now = d;
            t.handle_timeout(now);
            sent += drain_c(t);
        }
        (sent, now)
    }

    #[test]
    fn timer_a_doubles_and_timer_b_times_out() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, b"INVITE".to_vec(), true, false, Timers::default());
        assert_eq!(drain_c(&mut t), 1);
        // Retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; Timer B at 32 s.
        let (sent, now) = run_client(&mut t, t0, t0 + Duration::from_secs(40));
        assert_eq!(sent, 6);
        assert!(t.timed_out());
        assert_eq!(t.state(), State::Terminated);
        assert_eq!(now - t0, Duration::from_secs(32));
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, b"BYE".to_vec(), false, false, Timers::default());
        drain_c(&mut t);
        // 0.5, 1.5, 3.5, 7.5, then every 4 s up to 32 s: 11.5 ... 31.5 = 6 more.
        let (sent, _) = run_client(&mut t, t0, t0 + Duration::from_secs(40));
        assert_eq!(sent, 10);
        assert!(t.timed_out());
    }

    #[test]
    fn reliable_transport_never_retransmits() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, b"OPTIONS".to_vec(), false, true, Timers::default());
        drain_c(&mut t);
        let (sent, _) = run_client(&mut t, t0, t0 + Duration::from_secs(40));
        assert_eq!(sent, 0);
        assert!(t.timed_out());
    }

    #[test]
    fn invite_non_2xx_is_acked_and_timer_d() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, b"INVITE".to_vec(), true, false, Timers::default());
        drain_c(&mut t);
        assert_eq!(t.handle_response(t0, 180, Vec::new), ClientEvent::Response);
        assert_eq!(t.state(), State::Proceeding);
        // Proceeding: no retransmissions, no Timer B.
        assert_eq!(run_client(&mut t, t0, t0 + Duration::from_secs(100)).0, 0);
        assert!(!t.timed_out());
        assert_eq!(
            t.handle_response(t0, 486, || b"ACK".to_vec()),
            ClientEvent::Response
        );
        assert_eq!(t.poll_transmit().unwrap(), b"ACK");
        // A retransmitted 486 is absorbed and ACKed again.
        assert_eq!(t.handle_response(t0, 486, Vec::new), ClientEvent::Absorbed);
        assert_eq!(t.poll_transmit().unwrap(), b"ACK");
        let (_, end) = run_client(&mut t, t0, t0 + Duration::from_secs(100));
        assert_eq!(end - t0, Duration::from_secs(32));
        assert_eq!(t.state(), State::Terminated);
    }

    #[test]
    fn invite_2xx_accepted_passes_retransmissions_up() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, b"INVITE".to_vec(), true, false, Timers::default());
        drain_c(&mut t);
        assert_eq!(t.handle_response(t0, 200, Vec::new), ClientEvent::Response);
        assert_eq!(t.state(), State::Accepted);
        assert_eq!(t.handle_response(t0, 200, Vec::new), ClientEvent::Response);
        assert_eq!(t.handle_response(t0, 180, Vec::new), ClientEvent::Absorbed);
        run_client(&mut t, t0, t0 + Duration::from_secs(40));
        assert_eq!(t.state(), State::Terminated);
    }

    #[test]
    fn non_invite_timer_k() {
        let t0 = Instant::now();
        let mut t = ClientTransaction::new(t0, b"BYE".to_vec(), false, false, Timers::default());
        drain_c(&mut t);
        assert_eq!(t.handle_response(t0, 200, Vec::new), ClientEvent::Response);
        assert_eq!(t.handle_response(t0, 200, Vec::new), ClientEvent::Absorbed);
        let (_, end) = run_client(&mut t, t0, t0 + Duration::from_secs(40));
        assert_eq!(end - t0, Duration::from_secs(5));
        assert_eq!(t.state(), State::Terminated);
    }

    #[test]
    fn server_invite_timer_g_h() {
        let t0 = Instant::now();
        let mut s = ServerTransaction::new(true, false, Timers::default());
        assert!(s.respond(t0, 100, b"100".to_vec()));
        s.handle_retransmission();
        assert_eq!(drain_s(&mut s), 2);
        assert!(s.respond(t0, 486, b"486".to_vec()));
        assert!(!s.respond(t0, 200, b"200".to_vec()));
        drain_s(&mut s);
        let mut now = t0;
        let mut sent = 0;
        while let Some(d) = s.poll_timeout() {
            now = d;
            s.handle_timeout(now);
            sent += drain_s(&mut s);
        }
        // G at 0.5, 1.5, 3.5, 7.5, then every 4 s until H at 32 s.
        assert_eq!(sent, 10);
        assert!(s.ack_missing());
        assert_eq!(now - t0, Duration::from_secs(32));
    }

    #[test]
    fn server_invite_ack_and_timer_i() {
        let t0 = Instant::now();
        let mut s = ServerTransaction::new(true, false, Timers::default());
        s.respond(t0, 404, b"404".to_vec());
        drain_s(&mut s);
        assert_eq!(
            s.handle_ack(t0 + Duration::from_millis(100)),
            ServerEvent::Acked
        );
        assert_eq!(s.state(), State::Confirmed);
        assert_eq!(s.handle_ack(t0), ServerEvent::Absorbed);
        let d = s.poll_timeout().unwrap();
        assert_eq!(d - t0, Duration::from_millis(5100));
        s.handle_timeout(d);
        assert_eq!(s.state(), State::Terminated);
        assert!(!s.ack_missing());
    }

    #[test]
    fn server_non_invite_timer_j() {
        let t0 = Instant::now();
        let mut s = ServerTransaction::new(false, false, Timers::default());
        s.respond(t0, 200, b"200".to_vec());
        drain_s(&mut s);
        s.handle_retransmission();
        assert_eq!(s.poll_transmit().unwrap(), b"200");
        let d = s.poll_timeout().unwrap();
        assert_eq!(d - t0, Duration::from_secs(32));
        s.handle_timeout(d);
        assert_eq!(s.state(), State::Terminated);
        let mut r = ServerTransaction::new(false, true, Timers::default());
        r.respond(t0, 200, b"200".to_vec());
        r.handle_timeout(t0);
        assert_eq!(r.state(), State::Terminated);
    }
}
