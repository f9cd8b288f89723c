//! The transaction table: every client and server transaction of a user agent under a
//! typed key, the matching rules of RFC 3261 17.1.3 and 17.2.3, one timer heap for
//! all of them, and one ordered queue of what to send.
//!
//! `D` is where a transaction's messages go (the owner's address type), `O` what the
//! owner wants back with a client transaction's responses and timeouts.

use super::{ClientEvent, ClientTransaction, ServerTransaction, State, Timers};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// A server transaction's key (RFC 3261 17.2.3): the top Via's branch, the method
/// (an ACK is filed under its INVITE) and where the request came from (the sent-by
/// as the transport saw it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    pub branch: String,
    pub method: String,
    pub remote: SocketAddr,
}

impl ServerKey {
    /// The key of a request; an ACK gets its INVITE's.
    pub fn new(branch: &str, method: &str, remote: SocketAddr) -> ServerKey {
        let method = if method == "ACK" { "INVITE" } else { method };
        ServerKey {
            branch: branch.to_string(),
            method: method.to_string(),
            remote,
        }
    }
}

/// A client transaction's key (RFC 3261 17.1.3): our branch and the CSeq method (a
/// CANCEL shares its INVITE's branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    pub branch: String,
    pub method: String,
}

impl ClientKey {
    pub fn new(branch: &str, method: &str) -> ClientKey {
        ClientKey {
            branch: branch.to_string(),
            method: method.to_string(),
        }
    }
}

/// Server transactions kept (answering, or absorbing retransmissions after their final
/// response) beyond which a non-INVITE transaction ends with its final response.
pub const MAX_SERVER: usize = 8192;

/// Gives a table's memory back once it holds less than an eighth of what it has room
/// for: a hash table otherwise keeps its largest size for ever (after 30 s of 2,000
/// calls/s, 30 MB for the client transactions and 20 MB for the server ones, with none
/// left). Shrinking to twice what is left, only past that eighth, costs a rehash of the
/// few entries left now and then, never one per removal.
/// True when it gave memory back.
pub fn give_back<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    m: &mut HashMap<K, V, S>,
) -> bool {
    let shrink = sparse(m.len(), m.capacity());
    if shrink {
        m.shrink_to(m.len() * 2);
    }
    shrink
}

/// [`give_back`] for a timer heap: a heap keeps its largest size too.
pub fn give_back_heap<T: Ord>(h: &mut BinaryHeap<T>) -> bool {
    let shrink = sparse(h.len(), h.capacity());
    if shrink {
        h.shrink_to(h.len() * 2);
    }
    shrink
}

/// [`give_back`]'s rule: a large table less than an eighth full.
fn sparse(len: usize, capacity: usize) -> bool {
    capacity > 1024 && len < capacity / 8
}

/// A timer in the heap: the transaction's key, shared with the table (a reference
/// count, not a copy of the branch and method).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Client(Arc<ClientKey>),
    Server(Arc<ServerKey>),
}

/// A transaction's state machine while it may still send something, or, once all it
/// does is absorb retransmissions until its timer ends it (a 2xx to an INVITE sent or
/// received, an ACK received, a non-INVITE final received), only that state: the
/// compact record RFC 3261's lingering timers need. At 2,000 calls/s some 64,000 INVITE
/// transactions of each side linger 32 s (Timers L and M).
#[derive(Debug)]
enum Machine<T> {
    Live(Box<T>),
    /// Absorbing until `armed` (the entry's only timer).
    Lingering(State),
}

/// What the table asks of either side's state machine.
trait Lingers {
    fn state(&self) -> State;
    fn lingering(&self) -> bool;
}

impl Lingers for ServerTransaction {
    fn state(&self) -> State {
        ServerTransaction::state(self)
    }
    fn lingering(&self) -> bool {
        ServerTransaction::lingering(self)
    }
}

impl Lingers for ClientTransaction {
    fn state(&self) -> State {
        ClientTransaction::state(self)
    }
    fn lingering(&self) -> bool {
        ClientTransaction::lingering(self)
    }
}

impl<T: Lingers> Machine<T> {
    fn state(&self) -> State {
        match self {
            Machine::Live(t) => t.state(),
            Machine::Lingering(s) => *s,
        }
    }

    /// Keeps only the state once the machine just absorbs until its timer.
    fn settle(&mut self) {
        if let Machine::Live(t) = self {
            if t.lingering() {
                *self = Machine::Lingering(t.state());
            }
        }
    }
}

struct Server<D> {
    key: Arc<ServerKey>,
    tx: Machine<ServerTransaction>,
    dest: D,
    /// The deadline in the heap for this transaction; other entries are stale.
    armed: Option<Instant>,
}

struct Client<D, O> {
    key: Arc<ClientKey>,
    tx: Machine<ClientTransaction>,
    dest: D,
    owner: O,
    armed: Option<Instant>,
}

/// What a response to one of our requests means for its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<D, O> {
    pub event: ClientEvent,
    pub owner: O,
    pub dest: D,
}

/// All transactions of a user agent.
pub struct Transactions<D, O> {
    timers: Timers,
    server: HashMap<Arc<ServerKey>, Box<Server<D>>>,
    client: HashMap<Arc<ClientKey>, Box<Client<D, O>>>,
    heap: BinaryHeap<Reverse<(Instant, Due)>>,
    outbox: VecDeque<(D, Vec<u8>)>,
    /// Whether a table gave memory back since [`Self::take_gave_back`] last asked.
    gave_back: bool,
}

impl<D: Copy, O: Clone> Transactions<D, O> {
    pub fn new(timers: Timers) -> Self {
        Transactions {
            timers,
            server: HashMap::new(),
            client: HashMap::new(),
            heap: BinaryHeap::new(),
            outbox: VecDeque::new(),
            gave_back: false,
        }
    }

    /// Queues a message outside any transaction (an ACK to a 2xx, a 2xx resent by
    /// its dialog, a stateless answer), in order with the transactions' own.
    pub fn send(&mut self, dest: D, bytes: Vec<u8>) {
        self.outbox.push_back((dest, bytes));
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(D, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// The earliest deadline of any transaction (possibly one since superseded: then
    /// [`Self::handle_timeout`] does nothing).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// True when there is no transaction at all.
    pub fn is_empty(&self) -> bool {
        self.client.is_empty() && self.server.is_empty()
    }

    // ----- server side -----

    /// A new request: its transaction, answering to `dest`.
    pub fn new_server(&mut self, key: ServerKey, invite: bool, reliable: bool, dest: D) {
        let tx = Machine::Live(Box::new(ServerTransaction::new(
            invite,
            reliable,
            self.timers,
        )));
        let key = Arc::new(key);
        let s = Server {
            key: key.clone(),
            tx,
            dest,
            armed: None,
        };
        self.server.insert(key, Box::new(s));
    }

    /// The state of a server transaction, if there is one.
    pub fn server_state(&self, key: &ServerKey) -> Option<State> {
        self.server.get(key).map(|s| s.tx.state())
    }

    /// Where a server transaction answers.
    pub fn server_dest(&self, key: &ServerKey) -> Option<D> {
        self.server.get(key).map(|s| s.dest)
    }

    /// Answers the request of `key`; false when there is no such transaction or it
    /// already sent a final response.
    ///
    /// A non-INVITE transaction ends with its final response, instead of keeping it 32 s
    /// for retransmissions (Timer J), when more than [`MAX_SERVER`] transactions are kept
    /// (a repeated request is then handled again: for REGISTER, OPTIONS and SUBSCRIBE
    /// that does what the first did, a repeated BYE gets 481).
    pub fn respond(&mut self, now: Instant, key: &ServerKey, status: u16, bytes: Vec<u8>) -> bool {
        let many = self.server.len() > MAX_SERVER && status >= 200;
        self.respond_and_end(now, key, status, bytes, many, false)
    }

    /// Answers the request of `key` with our own challenge (401, 407). A non-INVITE
    /// transaction ends with it, as a stateless proxy's would: a request sent again is
    /// challenged again. An INVITE transaction keeps resending it until the ACK (Timer
    /// G; the caller stopped resending its INVITE at our 100 Trying), unless more than
    /// [`MAX_SERVER`] transactions are kept: then it ends too, and its ACK finds neither
    /// transaction nor dialog and is dropped. A REGISTER flood from many addresses thus
    /// keeps no transaction, an INVITE flood at most [`MAX_SERVER`].
    pub fn challenge(
        &mut self,
        now: Instant,
        key: &ServerKey,
        status: u16,
        bytes: Vec<u8>,
    ) -> bool {
        let many = self.server.len() > MAX_SERVER;
        self.respond_and_end(now, key, status, bytes, true, many)
    }

    fn respond_and_end(
        &mut self,
        now: Instant,
        key: &ServerKey,
        status: u16,
        bytes: Vec<u8>,
        // Whether the transaction ends with this response, when non-INVITE and INVITE.
        end_non_invite: bool,
        end_invite: bool,
    ) -> bool {
        let Some(s) = self.server.get_mut(key) else {
            return false;
        };
        let Machine::Live(tx) = &mut s.tx else {
            return false; // a final response went out already
        };
        let sent = tx.respond(now, status, bytes);
        let non_invite = matches!(**tx, ServerTransaction::NonInvite(_));
        let done = sent
            && if non_invite {
                end_non_invite
            } else {
                end_invite
            };
        if done {
            if let Some(s) = self.server.remove(key) {
                if let Machine::Live(mut tx) = s.tx {
                    while let Some(b) = tx.poll_transmit() {
                        self.outbox.push_back((s.dest, b));
                    }
                }
            }
            return true;
        }
        self.touch_server(key);
        sent
    }

    /// How many server transactions there are (for tests and figures).
    pub fn server_count(&self) -> usize {
        self.server.len()
    }

    /// A request arrived again: its transaction resends what it last sent. False when
    /// the request is new.
    pub fn retransmission(&mut self, key: &ServerKey) -> bool {
        let Some(s) = self.server.get_mut(key) else {
            return false;
        };
        if let Machine::Live(tx) = &mut s.tx {
            tx.handle_retransmission();
            self.touch_server(key);
        }
        true
    }

    /// An ACK for the non-2xx final of the INVITE transaction `key`; false when it is
    /// not one (an ACK for a 2xx belongs to the dialog, RFC 3261 17.2.3).
    pub fn ack(&mut self, now: Instant, key: &ServerKey) -> bool {
        let Some(s) = self.server.get_mut(key) else {
            return false;
        };
        let Machine::Live(tx) = &mut s.tx else {
            return false;
        };
        if tx.state() != State::Completed {
            return false;
        }
        tx.handle_ack(now);
        self.touch_server(key);
        true
    }

    // ----- client side -----

    /// Sends a request in a new client transaction; `owner` comes back with its
    /// responses and its timeout.
    #[allow(clippy::too_many_arguments)]
    pub fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        bytes: Vec<u8>,
        invite: bool,
        reliable: bool,
        dest: D,
        owner: O,
    ) {
        let tx = ClientTransaction::new(now, bytes, invite, reliable, self.timers);
        let key = Arc::new(key);
        let c = Client {
            key: key.clone(),
            tx: Machine::Live(Box::new(tx)),
            dest,
            owner,
            armed: None,
        };
        self.client.insert(key.clone(), Box::new(c));
        self.touch_client(&key);
    }

    /// A response to one of our requests. `ack` builds the ACK to a non-2xx final of
    /// an INVITE (the transaction sends it). None when it matches no transaction.
    pub fn client_response(
        &mut self,
        now: Instant,
        key: &ClientKey,
        status: u16,
        ack: impl FnOnce(&O) -> Vec<u8>,
    ) -> Option<Matched<D, O>> {
        let c = self.client.get_mut(key)?;
        let owner = &c.owner;
        let event = match &mut c.tx {
            Machine::Live(tx) => tx.handle_response(now, status, || ack(owner)),
            // RFC 6026 7.2: a 2xx retransmitted to an accepted INVITE goes up, so the
            // owner ACKs it again; anything else is absorbed.
            Machine::Lingering(State::Accepted) if (200..300).contains(&status) => {
                ClientEvent::Response
            }
            Machine::Lingering(_) => ClientEvent::Absorbed,
        };
        let m = Matched {
            event,
            owner: c.owner.clone(),
            dest: c.dest,
        };
        self.touch_client(key);
        Some(m)
    }

    // ----- time -----

    /// Runs every transaction timer due at `now`; returns the owners of client
    /// transactions that got no final answer (Timer B or F: a 408 for them).
    /// Transactions that ended are removed.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<O> {
        let mut timed_out = Vec::new();
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, due)) = self.heap.pop().expect("peeked");
            match due {
                Due::Client(k) => {
                    let Some(c) = self.client.get_mut(&k) else {
                        continue;
                    };
                    if c.armed != Some(at) {
                        continue; // superseded by a later entry
                    }
                    c.armed = None;
                    let ended = match &mut c.tx {
                        Machine::Live(tx) => {
                            tx.handle_timeout(now);
                            if tx.timed_out() {
                                timed_out.push(c.owner.clone());
                            }
                            tx.state() == State::Terminated
                        }
                        Machine::Lingering(_) => true,
                    };
                    self.touch_client(&k);
                    if ended {
                        self.client.remove(&k);
                    }
                }
                Due::Server(k) => {
                    let Some(s) = self.server.get_mut(&k) else {
                        continue;
                    };
                    if s.armed != Some(at) {
                        continue;
                    }
                    s.armed = None;
                    let ended = match &mut s.tx {
                        Machine::Live(tx) => {
                            tx.handle_timeout(now);
                            tx.state() == State::Terminated
                        }
                        Machine::Lingering(_) => true,
                    };
                    self.touch_server(&k);
                    if ended {
                        self.server.remove(&k);
                    }
                }
            }
        }
        self.gave_back |= give_back(&mut self.server)
            | give_back(&mut self.client)
            | give_back_heap(&mut self.heap);
        if self.outbox.capacity() > 1024 && self.outbox.is_empty() {
            self.outbox.shrink_to(64);
        }
        timed_out
    }

    /// Whether a table gave memory back (after a flood) since this was last asked: the
    /// owner may then ask the allocator to return its free pages to the system.
    pub fn take_gave_back(&mut self) -> bool {
        std::mem::take(&mut self.gave_back)
    }

    /// Moves a server transaction's output to the queue, re-arms its timer, and keeps
    /// only its state once it just absorbs until that timer.
    fn touch_server(&mut self, key: &ServerKey) {
        let Some(s) = self.server.get_mut(key) else {
            return;
        };
        let Machine::Live(tx) = &mut s.tx else {
            return;
        };
        while let Some(b) = tx.poll_transmit() {
            self.outbox.push_back((s.dest, b));
        }
        let at = tx.poll_timeout();
        s.tx.settle();
        if let Some(at) = at.filter(|at| s.armed != Some(*at)) {
            s.armed = Some(at);
            self.heap.push(Reverse((at, Due::Server(s.key.clone()))));
        }
    }

    fn touch_client(&mut self, key: &ClientKey) {
        let Some(c) = self.client.get_mut(key) else {
            return;
        };
        let Machine::Live(tx) = &mut c.tx else {
            return;
        };
        while let Some(b) = tx.poll_transmit() {
            self.outbox.push_back((c.dest, b));
        }
        let at = tx.poll_timeout();
        c.tx.settle();
        if let Some(at) = at.filter(|at| c.armed != Some(*at)) {
            c.armed = Some(at);
            self.heap.push(Reverse((at, Due::Client(c.key.clone()))));
        }
    }

    /// The owner of a client transaction, to drop what it no longer needs (an INVITE's
    /// ACK fields once a 2xx came: the dialog ACKs a 2xx).
    pub fn client_owner_mut(&mut self, key: &ClientKey) -> Option<&mut O> {
        self.client.get_mut(key).map(|c| &mut c.owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    type Table = Transactions<u8, &'static str>;

    fn drain(t: &mut Table) -> Vec<(u8, Vec<u8>)> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    fn remote() -> SocketAddr {
        "127.0.0.1:5062".parse().unwrap()
    }

    #[test]
    fn an_ack_is_filed_under_its_invite() {
        assert_eq!(
            ServerKey::new("z9hG4bK1", "ACK", remote()),
            ServerKey::new("z9hG4bK1", "INVITE", remote())
        );
        assert_ne!(
            ServerKey::new("z9hG4bK1", "CANCEL", remote()),
            ServerKey::new("z9hG4bK1", "INVITE", remote())
        );
    }

    /// A flood's transactions gone, the table's memory goes too; while they are there
    /// nothing is lost.
    #[test]
    fn tables_emptied_after_a_flood_give_their_memory_back() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        for i in 0..5000 {
            let s = ServerKey::new(&format!("z9hG4bKs{i}"), "INVITE", remote());
            t.new_server(s.clone(), true, false, 7);
            assert!(t.respond(t0, &s, 200, b"200".to_vec()));
            let c = ClientKey::new(&format!("z9hG4bKc{i}"), "INVITE");
            t.start_client(t0, c.clone(), b"INVITE".to_vec(), true, false, 8, "call");
            assert!(t.client_response(t0, &c, 200, |_| Vec::new()).is_some());
        }
        drain(&mut t);
        assert!(t.handle_timeout(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!((t.server.len(), t.client.len()), (5000, 5000));
        let big = t.server.capacity() + t.client.capacity();
        assert!(big >= 10_000, "{big}");
        // Timers L and M (64 T1) end them all.
        assert!(!t.take_gave_back(), "nothing given back while in use");
        assert!(t.handle_timeout(t0 + Duration::from_secs(33)).is_empty());
        assert!(t.is_empty());
        assert!(t.take_gave_back());
        assert!(!t.take_gave_back(), "said once");
        let left = t.server.capacity() + t.client.capacity();
        assert!(left < 100, "{left} of {big} kept");
        assert!(t.heap.capacity() < 100, "{}", t.heap.capacity());
        // A few entries in a large map: shrunk to twice what is left, all still there.
        let mut m: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        m.retain(|k, _| *k < 100);
        assert!(give_back(&mut m));
        assert!(m.capacity() < 1000, "{}", m.capacity());
        assert!((0..100).all(|k| m[&k] == k));
        // A map in use is left alone.
        let mut m: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        let cap = m.capacity();
        assert!(!give_back(&mut m));
        assert_eq!(m.capacity(), cap);
        // A timer heap likewise (the exchange's call timers), its order kept.
        let mut h: BinaryHeap<Reverse<u32>> = (0..10_000).map(Reverse).collect();
        while h.len() > 100 {
            h.pop();
        }
        assert!(give_back_heap(&mut h));
        assert!(h.capacity() < 1000, "{}", h.capacity());
        assert_eq!(h.into_sorted_vec().last(), Some(&Reverse(9_900)));
    }

    /// Transactions that only absorb until their timer keep their state, not their
    /// machine, and still answer as the RFC says.
    #[test]
    fn lingering_transactions_keep_a_compact_record() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        let lingering_s = |t: &Table, k: &ServerKey| {
            matches!(t.server.get(k).map(|s| &s.tx), Some(Machine::Lingering(_)))
        };
        let lingering_c = |t: &Table, k: &ClientKey| {
            matches!(t.client.get(k).map(|c| &c.tx), Some(Machine::Lingering(_)))
        };
        // A 2xx to an INVITE: Accepted, retransmitted INVITEs absorbed without a
        // word, the ACK is the dialog's, the answer's address is still known.
        let k = ServerKey::new("z9hG4bKa", "INVITE", remote());
        t.new_server(k.clone(), true, false, 7);
        assert!(t.respond(t0, &k, 100, b"100".to_vec()));
        assert!(!lingering_s(&t, &k), "still answering");
        assert!(t.respond(t0, &k, 200, b"200".to_vec()));
        assert!(lingering_s(&t, &k));
        assert_eq!(t.server_state(&k), Some(State::Accepted));
        assert_eq!(t.server_dest(&k), Some(7));
        assert!(!t.respond(t0, &k, 500, b"500".to_vec()));
        assert!(t.retransmission(&k));
        assert!(!t.ack(t0, &k));
        assert_eq!(
            drain(&mut t),
            vec![(7, b"100".to_vec()), (7, b"200".to_vec())]
        );
        // A non-2xx: resent until its ACK, then Confirmed and compact.
        let k2 = ServerKey::new("z9hG4bKb", "INVITE", remote());
        t.new_server(k2.clone(), true, false, 7);
        assert!(t.respond(t0, &k2, 486, b"486".to_vec()));
        assert!(!lingering_s(&t, &k2), "Timer G resends the 486");
        assert!(t.retransmission(&k2));
        assert!(t.ack(t0, &k2));
        assert!(lingering_s(&t, &k2));
        assert_eq!(t.server_state(&k2), Some(State::Confirmed));
        assert!(!t.ack(t0, &k2), "a repeated ACK is absorbed");
        assert_eq!(
            drain(&mut t),
            vec![(7, b"486".to_vec()), (7, b"486".to_vec())]
        );
        // A non-INVITE final stays whole: it is resent for a repeated request.
        let k3 = ServerKey::new("z9hG4bKc", "BYE", remote());
        t.new_server(k3.clone(), false, false, 7);
        assert!(t.respond(t0, &k3, 200, b"200 bye".to_vec()));
        assert!(!lingering_s(&t, &k3));
        // Client side: a 2xx to our INVITE goes up, and so does its retransmission;
        // a late 180 is absorbed.
        let c = ClientKey::new("z9hG4bKd", "INVITE");
        t.start_client(t0, c.clone(), b"INVITE".to_vec(), true, false, 8, "leg");
        assert!(!lingering_c(&t, &c));
        let m = t.client_response(t0, &c, 200, |_| Vec::new()).unwrap();
        assert_eq!(
            (m.event, m.owner, m.dest),
            (ClientEvent::Response, "leg", 8)
        );
        assert!(lingering_c(&t, &c));
        let m = t.client_response(t0, &c, 200, |_| Vec::new()).unwrap();
        assert_eq!(m.event, ClientEvent::Response);
        let m = t.client_response(t0, &c, 180, |_| Vec::new()).unwrap();
        assert_eq!(m.event, ClientEvent::Absorbed);
        *t.client_owner_mut(&c).unwrap() = "settled";
        let m = t.client_response(t0, &c, 200, |_| Vec::new()).unwrap();
        assert_eq!(m.owner, "settled");
        // A non-INVITE final: Completed, everything after it absorbed.
        let b = ClientKey::new("z9hG4bKe", "BYE");
        t.start_client(t0, b.clone(), b"BYE".to_vec(), false, false, 8, "bye");
        assert_eq!(
            t.client_response(t0, &b, 200, |_| Vec::new())
                .unwrap()
                .event,
            ClientEvent::Response
        );
        assert!(lingering_c(&t, &b));
        assert_eq!(
            t.client_response(t0, &b, 200, |_| Vec::new())
                .unwrap()
                .event,
            ClientEvent::Absorbed
        );
        drain(&mut t);
        // Their timers still end them: K (T4) and I (T4) first, then L, M and J.
        assert!(t.handle_timeout(t0 + Duration::from_secs(6)).is_empty());
        assert!(!t.client.contains_key(&b));
        assert_eq!(t.server_state(&k2), None);
        assert!(lingering_c(&t, &c) && lingering_s(&t, &k));
        assert!(t.handle_timeout(t0 + Duration::from_secs(33)).is_empty());
        assert!(t.is_empty());
        assert!(drain(&mut t).is_empty(), "lingering records sent nothing");
    }

    #[test]
    fn server_answers_retransmissions_and_ends_after_timer_j() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        let k = ServerKey::new("z9hG4bK1", "OPTIONS", remote());
        assert!(!t.retransmission(&k));
        t.new_server(k.clone(), false, false, 7);
        assert!(t.respond(t0, &k, 200, b"200".to_vec()));
        assert!(!t.respond(t0, &k, 500, b"500".to_vec()));
        assert!(t.retransmission(&k));
        assert_eq!(
            drain(&mut t),
            vec![(7, b"200".to_vec()), (7, b"200".to_vec())]
        );
        let due = t.poll_timeout().unwrap();
        assert_eq!(due - t0, Duration::from_secs(32));
        assert!(t.handle_timeout(due).is_empty());
        assert_eq!(t.server_state(&k), None);
        assert!(t.is_empty());
    }

    #[test]
    fn a_challenge_or_a_full_table_keeps_no_transaction() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        let k = ServerKey::new("z9hG4bKc", "REGISTER", remote());
        t.new_server(k.clone(), false, false, 7);
        assert!(t.challenge(t0, &k, 401, b"401".to_vec()));
        assert_eq!(drain(&mut t), vec![(7, b"401".to_vec())]);
        assert!(
            t.is_empty() && t.poll_timeout().is_none(),
            "nothing kept for a 401"
        );
        assert!(!t.retransmission(&k), "a repeated REGISTER is a new one");
        // A 401 passed on from elsewhere is an ordinary final response.
        let k = ServerKey::new("z9hG4bKp", "REGISTER", remote());
        t.new_server(k.clone(), false, false, 7);
        assert!(t.respond(t0, &k, 401, b"401".to_vec()));
        assert!(t.retransmission(&k));
        t.handle_timeout(t0 + std::time::Duration::from_secs(33));
        drain(&mut t);
        // The caller stops resending its INVITE at the 100: the 407 is resent until
        // the ACK.
        let k = ServerKey::new("z9hG4bKci", "INVITE", remote());
        t.new_server(k.clone(), true, false, 7);
        assert!(t.respond(t0, &k, 100, b"100".to_vec()));
        assert!(t.challenge(t0, &k, 407, b"407".to_vec()));
        assert_eq!(
            drain(&mut t),
            vec![(7, b"100".to_vec()), (7, b"407".to_vec())]
        );
        assert!(t.ack(t0, &k), "the INVITE transaction waits for its ACK");
        t.handle_timeout(t0 + std::time::Duration::from_secs(33));
        assert!(t.is_empty());
        // A full table: finals end at once, INVITE transactions still linger.
        for i in 0..=MAX_SERVER {
            let k = ServerKey::new(&format!("z9hG4bKi{i}"), "INVITE", remote());
            t.new_server(k, true, false, 1);
        }
        let k = ServerKey::new("z9hG4bKo", "OPTIONS", remote());
        t.new_server(k.clone(), false, false, 7);
        assert!(t.respond(t0, &k, 200, b"200".to_vec()));
        assert_eq!(t.server_count(), MAX_SERVER + 1);
        let ki = ServerKey::new("z9hG4bKi0", "INVITE", remote());
        assert!(t.respond(t0, &ki, 486, b"486".to_vec()));
        assert!(
            t.retransmission(&ki),
            "an INVITE answered by the core absorbs"
        );
        let kc = ServerKey::new("z9hG4bKi1", "INVITE", remote());
        assert!(t.challenge(t0, &kc, 407, b"407".to_vec()));
        assert!(
            !t.retransmission(&kc),
            "a challenged INVITE ends in a full table"
        );
    }

    #[test]
    fn server_invite_ack_only_matches_a_non_2xx() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        let k = ServerKey::new("z9hG4bK2", "INVITE", remote());
        t.new_server(k.clone(), true, false, 1);
        t.respond(t0, &k, 200, b"200".to_vec());
        // The ACK to a 2xx is the dialog's.
        assert!(!t.ack(t0, &k));
        let k2 = ServerKey::new("z9hG4bK3", "INVITE", remote());
        t.new_server(k2.clone(), true, false, 1);
        t.respond(t0, &k2, 486, b"486".to_vec());
        assert!(t.ack(t0, &k2));
        assert_eq!(t.server_state(&k2), Some(State::Confirmed));
    }

    #[test]
    fn client_timeouts_come_back_with_their_owner() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        let bye = ClientKey::new("z9hG4bK4", "BYE");
        let opt = ClientKey::new("z9hG4bK5", "OPTIONS");
        t.start_client(t0, bye.clone(), b"BYE".to_vec(), false, false, 1, "bye");
        t.start_client(
            t0,
            opt.clone(),
            b"OPTIONS".to_vec(),
            false,
            false,
            2,
            "options",
        );
        assert_eq!(drain(&mut t).len(), 2);
        // The OPTIONS is answered; the BYE never.
        let m = t
            .client_response(t0, &opt, 200, |_| Vec::new())
            .expect("matches");
        assert_eq!(
            (m.event, m.owner, m.dest),
            (ClientEvent::Response, "options", 2)
        );
        assert!(t
            .client_response(
                t0,
                &ClientKey::new("z9hG4bK4", "CANCEL"),
                200,
                |_| Vec::new()
            )
            .is_none());
        let mut now = t0;
        let mut timed_out = Vec::new();
        let mut resent = 0;
        while let Some(d) = t.poll_timeout() {
            now = d;
            timed_out.extend(t.handle_timeout(now));
            resent += drain(&mut t).len();
        }
        assert_eq!(timed_out, vec!["bye"]);
        assert_eq!(resent, 10, "Timer E for the BYE");
        assert_eq!(now - t0, Duration::from_secs(32));
        assert!(t.is_empty());
    }

    #[test]
    fn an_invite_non_2xx_is_acked_by_the_table() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        let k = ClientKey::new("z9hG4bK6", "INVITE");
        t.start_client(t0, k.clone(), b"INVITE".to_vec(), true, true, 3, "leg");
        drain(&mut t);
        let m = t
            .client_response(t0, &k, 486, |o| format!("ACK for {o}").into_bytes())
            .unwrap();
        assert_eq!(m.event, ClientEvent::Response);
        assert_eq!(drain(&mut t), vec![(3, b"ACK for leg".to_vec())]);
        // Reliable: Timer D is zero, the transaction ends at once.
        t.handle_timeout(t0);
        assert!(t.is_empty());
    }

    #[test]
    fn messages_outside_transactions_keep_their_order() {
        let t0 = Instant::now();
        let mut t = Table::new(Timers::default());
        t.send(9, b"first".to_vec());
        t.start_client(
            t0,
            ClientKey::new("b", "BYE"),
            b"second".to_vec(),
            false,
            true,
            9,
            "x",
        );
        t.send(9, b"third".to_vec());
        let order: Vec<Vec<u8>> = drain(&mut t).into_iter().map(|(_, b)| b).collect();
        assert_eq!(
            order,
            vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
        );
    }
}
