//! RFC 3261 section 17 transactions as sans-IO state machines, one file per machine
//! of the RFC (with RFC 6026's "Accepted" states for 2xx to INVITE), and the table
//! that holds them (`table`: typed keys, matching, one timer heap).
//!
//! All time comes in as `now`. After every call the owner drains [`poll_transmit`]
//! and re-arms its timer from [`poll_timeout`]; when the deadline passes it calls
//! `handle_timeout(now)`. [`table::Transactions`] does that bookkeeping for many.
//!
//! [`poll_transmit`]: ClientTransaction::poll_transmit
//! [`poll_timeout`]: ClientTransaction::poll_timeout

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;
pub mod table;

pub use client_invite::ClientInvite;
pub use client_non_invite::ClientNonInvite;
pub use server_invite::ServerInvite;
pub use server_non_invite::ServerNonInvite;
pub use table::{ClientKey, ServerKey, Transactions};

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

/// A client transaction: the INVITE machine (17.1.1) or the non-INVITE one (17.1.2).
#[derive(Debug)]
pub enum ClientTransaction {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
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
        if invite {
            ClientTransaction::Invite(ClientInvite::new(now, request, reliable, timers))
        } else {
            ClientTransaction::NonInvite(ClientNonInvite::new(now, request, reliable, timers))
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        match self {
            ClientTransaction::Invite(t) => t.state(),
            ClientTransaction::NonInvite(t) => t.state(),
        }
    }

    /// True when all it does until its timer ends it is absorb retransmissions (a
    /// retransmitted 2xx to an accepted INVITE still goes up): nothing to send, nothing
    /// kept to resend.
    pub fn lingering(&self) -> bool {
        match self {
            ClientTransaction::Invite(t) => t.lingering(),
            ClientTransaction::NonInvite(t) => t.lingering(),
        }
    }

    /// True once Timer B or F fired: the owner treats it as a 408.
    pub fn timed_out(&self) -> bool {
        match self {
            ClientTransaction::Invite(t) => t.timed_out(),
            ClientTransaction::NonInvite(t) => t.timed_out(),
        }
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
        match self {
            ClientTransaction::Invite(t) => t.handle_response(now, status, ack),
            ClientTransaction::NonInvite(t) => t.handle_response(now, status),
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            ClientTransaction::Invite(t) => t.handle_timeout(now),
            ClientTransaction::NonInvite(t) => t.handle_timeout(now),
        }
    }

    /// Next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let outbox = match self {
            ClientTransaction::Invite(t) => &mut t.outbox,
            ClientTransaction::NonInvite(t) => &mut t.outbox,
        };
        (!outbox.is_empty()).then(|| outbox.remove(0))
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ClientTransaction::Invite(t) => t.poll_timeout(),
            ClientTransaction::NonInvite(t) => t.poll_timeout(),
        }
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

/// A server transaction: the INVITE machine (17.2.1) or the non-INVITE one (17.2.2).
#[derive(Debug)]
pub enum ServerTransaction {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerTransaction {
    /// A transaction for a new request.
    pub fn new(invite: bool, reliable: bool, timers: Timers) -> Self {
        if invite {
            ServerTransaction::Invite(ServerInvite::new(reliable, timers))
        } else {
            ServerTransaction::NonInvite(ServerNonInvite::new(reliable, timers))
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        match self {
            ServerTransaction::Invite(t) => t.state(),
            ServerTransaction::NonInvite(t) => t.state(),
        }
    }

    /// True when all it does until its timer ends it is absorb retransmitted requests
    /// (and ACKs): nothing to send, nothing kept to resend.
    pub fn lingering(&self) -> bool {
        match self {
            ServerTransaction::Invite(t) => t.lingering(),
            ServerTransaction::NonInvite(_) => false,
        }
    }

    /// True when Timer H fired: the final response was never acknowledged.
    pub fn ack_missing(&self) -> bool {
        match self {
            ServerTransaction::Invite(t) => t.ack_missing(),
            ServerTransaction::NonInvite(_) => false,
        }
    }

    /// The owner answers. Returns false (and sends nothing) once a final was sent.
    pub fn respond(&mut self, now: Instant, status: u16, bytes: Vec<u8>) -> bool {
        match self {
            ServerTransaction::Invite(t) => t.respond(now, status, bytes),
            ServerTransaction::NonInvite(t) => t.respond(now, status, bytes),
        }
    }

    /// The same request arrived again.
    pub fn handle_retransmission(&mut self) -> ServerEvent {
        match self {
            ServerTransaction::Invite(t) => t.handle_retransmission(),
            ServerTransaction::NonInvite(t) => t.handle_retransmission(),
        }
    }

    /// An ACK matched this transaction (non-2xx final).
    pub fn handle_ack(&mut self, now: Instant) -> ServerEvent {
        match self {
            ServerTransaction::Invite(t) => t.handle_ack(now),
            ServerTransaction::NonInvite(_) => ServerEvent::Absorbed,
        }
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self {
            ServerTransaction::Invite(t) => t.handle_timeout(now),
            ServerTransaction::NonInvite(t) => t.handle_timeout(now),
        }
    }

    /// Next datagram to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let outbox = match self {
            ServerTransaction::Invite(t) => &mut t.outbox,
            ServerTransaction::NonInvite(t) => &mut t.outbox,
        };
        (!outbox.is_empty()).then(|| outbox.remove(0))
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ServerTransaction::Invite(t) => t.poll_timeout(),
            ServerTransaction::NonInvite(t) => t.poll_timeout(),
        }
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
