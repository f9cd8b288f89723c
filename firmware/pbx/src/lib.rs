//! The exchange.
//!
//! Owns: the registrar (locations of SIP accounts), number routing and call control as a
//! back-to-back user agent over legs. It is a sans-IO core: datagrams and `now` come in
//! through [`Pbx::handle_message`] and [`Pbx::handle_timeout`]; datagrams to send come
//! out of [`Pbx::poll_transmit`], and [`Pbx::poll_timeout`] says when to call again.
//! Media endpoints are spares the driver binds and hands in ([`Pbx::media_pool`]); what
//! the exchange does to them comes out as [`media::Command`]s from the same pool, and
//! their events come in through [`Pbx::handle_media_event`]. Must not touch: sockets,
//! threads, the clock, storage.

pub mod app;
pub use park::ParkedInfo;
pub use queues::{QueueAgentInfo, QueueCallerInfo, QueueInfo};
pub use rooms::{Participant, RoomInfo};
mod app_leg;
mod blf;
pub use blf::Lamp;
mod build;
mod calls;
mod dtmf;
pub mod guard;
mod mwi;
pub mod negotiate;
mod park;
mod pickup;
mod plan;
mod queues;
mod registrar;
mod rooms;
mod route;
mod secure;
mod transfer;
mod trunks;

pub use mwi::BoxSummary;
pub use registrar::Registration;
pub use sip::transport::Proto;
pub use trunks::{Lookup, PeerStatus};

use config::Snapshot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::SipMessage;
use serde::Serialize;
use sip::build::Response;
pub(crate) use sip::transaction::ServerKey;
use sip::transaction::{ClientKey, Timers, Transactions};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a message came from and on which of our addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub proto: Proto,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub proto: Proto,
    pub dest: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Tunables of the exchange.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Digest realm.
    pub realm: String,
    /// Shortest registration accepted (shorter gets 423).
    pub min_expires: u32,
    /// Longest registration granted (longer is cut down).
    pub max_expires: u32,
    /// Granted when the phone asks for nothing.
    pub default_expires: u32,
    /// How long an extension rings before the caller gets 480.
    pub ring_timeout: Duration,
    /// How long a nonce stays fresh, seconds.
    pub nonce_lifetime: u64,
    /// Digest algorithms offered in challenges, in order.
    pub digest: Vec<sip::auth::Algorithm>,
    /// Wrong digest answers from one address within `ban_window` that get it banned
    /// (0 = never). Challenges (401/407) and stale nonces never count.
    pub ban_after: u32,
    pub ban_window: Duration,
    /// How long a first ban lasts (a second within a day an hour, later ones a day).
    pub ban_time: Duration,
    /// Challenges within `ban_window` never answered right that get an address nobody
    /// authenticated from banned (0: never).
    pub challenge_flood: u32,
    /// SIP requests a second from one address (twice as many in a burst) before an
    /// untrusted one is banned and a trusted one's excess dropped (0: no limit).
    pub rate_limit: u32,
    pub timers: Timers,
    /// First wait before a failed registration to a provider or link is tried again;
    /// it doubles up to 30 minutes.
    pub register_retry: Duration,
    /// Where voicemail boxes are (a folder per extension; the driver writes them).
    pub voicemail_dir: std::path::PathBuf,
    /// Uploaded announcements (`<name>.wav`) that auto attendants play.
    pub sounds_dir: std::path::PathBuf,
    /// Recorded queue calls (`<name>.wav`, stereo), their halves in `parts/` while
    /// the call lasts.
    pub recordings_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            realm: "pbx".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            ring_timeout: Duration::from_secs(60),
            nonce_lifetime: 300,
            digest: vec![sip::auth::Algorithm::Md5],
            ban_after: 10,
            ban_window: Duration::from_secs(60),
            ban_time: Duration::from_secs(600),
            challenge_flood: 100,
            rate_limit: 300,
            timers: Timers::default(),
            register_retry: Duration::from_secs(30),
            voicemail_dir: "voicemail".into(),
            sounds_dir: "sounds".into(),
            recordings_dir: "recordings".into(),
        }
    }
}

/// Work on the card or in the configuration that the exchange asks of its driver
/// (it touches neither): what the voicemail menu decided. Box names are extension
/// numbers; after carrying one out the driver hands the box's new contents in
/// ([`Pbx::set_mailbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Message `id` of box `ext` was heard: it becomes old.
    MarkHeard { ext: String, id: String },
    /// Message `id` of box `ext` is deleted.
    DeleteMessage { ext: String, id: String },
    /// The greeting recorded on the phone at `recorded` becomes box `ext`'s `file`.
    InstallGreeting {
        ext: String,
        recorded: std::path::PathBuf,
        file: &'static str,
    },
    /// Box `ext`'s greeting `file` is removed (the temporary greeting).
    RemoveGreeting { ext: String, file: &'static str },
    /// A greeting recorded on the phone and not kept is removed.
    DiscardRecording { path: std::path::PathBuf },
    /// Extension `ext`'s service PIN becomes `pin` (the user changed it by phone).
    ServicePin { ext: String, pin: String },
    /// Extension `ext`'s do not disturb becomes `on` (its phone dialled the code).
    DoNotDisturb { ext: String, on: bool },
    /// A wrong PIN was keyed for extension `ext`'s box (the exchange counts them).
    PinFailed { ext: String },
    /// The right PIN was keyed for `ext`'s box.
    PinOk { ext: String },
    /// A recorded queue call ended: its two halves (the caller's and the agent's
    /// voice, `None` when one could not be written) become one stereo file `out`, and
    /// the oldest recordings go while they take more than `keep_bytes`.
    MergeRecording {
        caller: Option<std::path::PathBuf>,
        agent: Option<std::path::PathBuf>,
        out: std::path::PathBuf,
        keep_bytes: u64,
    },
}

/// A call as `pbxctl calls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CallInfo {
    pub id: u64,
    pub caller: String,
    pub callee: String,
    pub state: String,
    pub seconds: u64,
    pub packets_a_to_b: u64,
    pub packets_b_to_a: u64,
    pub transcoding: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    proto: Proto,
    dest: SocketAddr,
}

/// What a client transaction's responses are for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// INVITE to callee leg `leg` of a call.
    Leg(u64, usize),
    /// A re-INVITE we forwarded into a call's dialog.
    Reinvite(u64),
    /// Our REGISTER to a provider or link.
    Register(String),
    /// A keepalive OPTIONS to a peer.
    Options(String),
    /// A NOTIFY of a message-waiting subscription (its id).
    Subscription(String),
    /// BYE, CANCEL and the like: nothing waits for the answer.
    Fire,
}

/// Spare media endpoints the driver keeps bound ahead of need: more than one message
/// can use (a call ringing a large group opens one per member; legs beyond the spares
/// are not rung, and say so in the log).
const MEDIA_SPARES: usize = 64;

/// What comes back with a client transaction's responses.
#[derive(Clone)]
struct ClientMeta {
    owner: Owner,
    /// For an INVITE: the fields the transaction's own ACK to a non-2xx needs (shared:
    /// the table hands a copy of the owner back with every response); dropped once a
    /// 2xx came, the dialog ACKs that.
    ack: Option<std::sync::Arc<build::AckBase>>,
}

/// The exchange core.
pub struct Pbx {
    snapshot: Arc<Snapshot>,
    settings: Settings,
    nonces: sip::auth::Nonces,
    /// Spare media endpoints and the commands for the driver.
    media: media::Pool,
    rng: StdRng,
    /// `now` and Unix seconds at creation, to tell wall time from `now`.
    epoch: (Instant, u64),
    registrations: HashMap<String, Registration>,
    registrations_dirty: bool,
    /// What the portal gave its users' browser phones, by account user name
    /// ([`Pbx::renew_web_grant`]).
    web_grants: HashMap<String, config::WebGrant>,
    /// Whether a table of calls or transactions gave memory back since the driver last
    /// asked ([`Pbx::take_gave_back`]).
    gave_back: bool,
    /// Every SIP transaction, with its timers and the queue of what to send.
    tx: Transactions<Target, ClientMeta>,
    calls: HashMap<u64, calls::Call>,
    dialogs: HashMap<String, u64>,
    next_call: u64,
    /// Calls' deadlines (entries a call re-armed since are stale).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The call whose plan is being expanded (it does not count as its callee's load).
    routing: Option<u64>,
    /// Ring groups rung round robin: where each starts next time.
    round_robin: HashMap<String, usize>,
    /// Call records of calls that ended, for the history.
    records: VecDeque<store::CallRecord>,
    next_sweep: Instant,
    /// Scanner and brute-force protection.
    guard: guard::Guard,
    /// Providers and links: addresses, registrations, keepalives.
    peers: trunks::Peers,
    /// Our address towards a destination (the driver knows the routes).
    local_for: Box<dyn Fn(Proto, SocketAddr) -> SocketAddr + Send>,
    /// The latest `now` seen, for work started outside a handler.
    last_now: Instant,
    /// What the voicemail boxes hold, as the driver last read them.
    mailboxes: HashMap<String, store::voicemail::Mailbox>,
    /// Work for the driver.
    requests: VecDeque<Request>,
    /// Message-waiting subscriptions by Call-ID and our tag.
    subscriptions: HashMap<String, mwi::Subscription>,
    /// Seconds the box's time zone is ahead of UTC now (the driver keeps it current).
    utc_offset: i64,
    /// Wrong voicemail PINs per extension: count and when the first was keyed.
    pin_failures: HashMap<String, (u32, Instant)>,
    /// Conference rooms with someone in them, by number.
    rooms: HashMap<String, Vec<rooms::Participant>>,
    /// Parked calls by slot, with when they were parked.
    parked: std::collections::BTreeMap<String, (u64, Instant)>,
    /// Some busy lamp may be subscribed (cleared when none is found).
    lamps: bool,
    /// Call queues' waiting callers, agents logged in and figures, by number.
    queues: HashMap<String, queues::QueueState>,
    /// Calls an agent answered for a queue: the queue and the agent.
    queue_calls: HashMap<u64, (String, String)>,
    /// Agents in wrap-up after a queue call, until when.
    agent_wrapup: HashMap<String, Instant>,
    /// Agents' endpoints playing the queue's announcement, with the call to put
    /// through when it ends, and the announcement itself while the short silence
    /// before it plays.
    queue_whispers: HashMap<u64, (u64, Option<queues::Whisper>)>,
    /// Endpoints recording a queue call: the recording's name and side (0 caller, 1
    /// agent); and each recording's halves written so far (`None`: not saved).
    queue_rec_halves: HashMap<u64, (String, usize)>,
    queue_rec_pairs: HashMap<String, [Option<Option<std::path::PathBuf>>; 2]>,
}

impl Pbx {
    /// A core starting at `now` (`unix_now` seconds since the epoch), with a seeded RNG.
    pub fn new(
        snapshot: Arc<Snapshot>,
        settings: Settings,
        seed: u64,
        now: Instant,
        unix_now: u64,
    ) -> Pbx {
        let mut rng = StdRng::seed_from_u64(seed);
        let key: [u8; 32] = rng.gen();
        let timers = settings.timers;
        let guard = guard::Guard::new(guard::GuardSettings {
            ban_after: settings.ban_after,
            window: settings.ban_window,
            challenge_flood: settings.challenge_flood,
            rate: settings.rate_limit,
            ban_times: [
                settings.ban_time,
                settings.ban_time.max(Duration::from_secs(3600)),
                settings.ban_time.max(Duration::from_secs(24 * 3600)),
            ],
            trust_time: Duration::from_secs(24 * 3600),
        });
        let mut pbx = Pbx {
            snapshot,
            nonces: sip::auth::Nonces::new(key, settings.nonce_lifetime),
            settings,
            media: media::Pool::new(MEDIA_SPARES),
            rng,
            epoch: (now, unix_now),
            registrations: HashMap::new(),
            web_grants: HashMap::new(),
            registrations_dirty: false,
            gave_back: false,
            tx: Transactions::new(timers),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            next_call: 1,
            timers: BinaryHeap::new(),
            records: VecDeque::new(),
            round_robin: HashMap::new(),
            routing: None,
            next_sweep: now + Duration::from_secs(1),
            guard,
            peers: HashMap::new(),
            local_for: Box::new(|_, _| SocketAddr::from(([127, 0, 0, 1], 5060))),
            last_now: now,
            mailboxes: HashMap::new(),
            requests: VecDeque::new(),
            subscriptions: HashMap::new(),
            utc_offset: 0,
            pin_failures: HashMap::new(),
            rooms: HashMap::new(),
            parked: std::collections::BTreeMap::new(),
            lamps: false,
            queues: HashMap::new(),
            queue_calls: HashMap::new(),
            agent_wrapup: HashMap::new(),
            queue_whispers: HashMap::new(),
            queue_rec_halves: HashMap::new(),
            queue_rec_pairs: HashMap::new(),
        };
        pbx.sync_peers(now);
        pbx
    }

    /// The media endpoints' pool: the driver hands spares in and carries the exchange's
    /// commands out ([`media::Endpoints::serve`]) after every input.
    pub fn media_pool(&mut self) -> &mut media::Pool {
        &mut self.media
    }

    /// How to find our address towards a destination (pbxd asks the kernel's routes).
    pub fn set_local_for(&mut self, f: Box<dyn Fn(Proto, SocketAddr) -> SocketAddr + Send>) {
        self.local_for = f;
    }

    /// Publishes a new configuration; calls in progress carry on.
    /// The music on hold collection held parties hear: the default one, else the
    /// shipped one.
    pub(crate) fn hold_music(&self) -> String {
        self.snapshot
            .config
            .music
            .iter()
            .find(|m| m.default)
            .map_or(config::SYSTEM_MUSIC, |m| m.name.as_str())
            .to_string()
    }

    /// Puts `s` in force; answers the configuration it replaced (whose last holder may
    /// want to drop it elsewhere: 10,000 extensions are some 40,000 allocations).
    pub fn set_snapshot(&mut self, s: Arc<Snapshot>) -> Arc<Snapshot> {
        let old = std::mem::replace(&mut self.snapshot, s);
        self.queues_reconfigured();
        // Locations of accounts that no longer exist go away.
        let snap = self.snapshot.clone();
        let before = self.registrations.len();
        self.registrations
            .retain(|u, _| snap.account(u).is_some() || snap.link_by_user(u).is_some());
        if self.registrations.len() != before {
            self.registrations_dirty = true;
        }
        // A browser phone whose user lost the extension, was disabled or changed the
        // password stops at once.
        self.forget_web_grants(self.last_now);
        // Subscriptions of accounts gone end, saying so, and so do message lamps of an
        // account moved to another extension and busy lamps of an extension or slot
        // that is no longer there.
        let gone: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| match snap.account(&s.username) {
                None => true,
                Some(a) if s.package == mwi::Package::MessageSummary => a.extension != s.ext,
                Some(_) => {
                    snap.extension(&s.ext).is_none() && !snap.config.parking.slots.contains(&s.ext)
                }
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some(s) = self.subscriptions.remove(&k) {
                self.notify_subscription(self.last_now, s, Some("noresource"));
            }
        }
        self.sync_peers(self.last_now);
        old
    }

    pub(crate) fn unix(&self, now: Instant) -> u64 {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0).as_secs()
    }

    fn random_hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.rng.gen_range(0..16), 16).unwrap())
            .collect()
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.random_hex(16))
    }

    fn send(&mut self, t: Target, bytes: Vec<u8>) {
        self.tx.send(t, bytes);
    }

    /// What voicemail box `ext` holds now (the driver read it at start, after a
    /// recording, and after carrying out a [`Request`] or a change from the web).
    /// Phones watching the box hear of a change in its counts (message lamps).
    pub fn set_mailbox(&mut self, ext: &str, mailbox: store::voicemail::Mailbox) {
        let counts = |m: &store::voicemail::Mailbox| (m.new_count(), m.old_count());
        let before = self.mailboxes.get(ext).map(counts).unwrap_or((0, 0));
        let after = counts(&mailbox);
        if mailbox.messages.is_empty() && !mailbox.temp_greeting {
            self.mailboxes.remove(ext);
        } else {
            self.mailboxes.insert(ext.to_string(), mailbox);
        }
        if before != after {
            self.mailbox_changed(self.last_now, ext);
        }
    }

    /// The box's time zone offset from UTC now, seconds (time conditions use local
    /// time; the driver sets it at start and as daylight saving time changes).
    pub fn set_utc_offset(&mut self, seconds: i64) {
        self.utc_offset = seconds;
    }

    /// The next work for the driver.
    #[must_use]
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// The record of the next call that ended, for the history.
    #[must_use]
    pub fn poll_record(&mut self) -> Option<store::CallRecord> {
        self.records.pop_front()
    }

    /// Next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit().map(|(t, bytes)| Transmit {
            proto: t.proto,
            dest: t.dest,
            bytes,
        })
    }

    /// When [`Self::handle_timeout`] is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        let call = self.timers.peek().map(|Reverse((t, _))| *t);
        [call, self.tx.poll_timeout(), Some(self.next_sweep)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_sweep)
    }

    /// Whether the tables of calls and transactions gave memory back (after a flood)
    /// since this was last asked: the driver may then have the allocator return its
    /// free pages to the system.
    pub fn take_gave_back(&mut self) -> bool {
        std::mem::take(&mut self.gave_back)
    }

    /// Answers a request through its server transaction.
    fn respond(&mut self, now: Instant, key: &ServerKey, status: u16, bytes: Vec<u8>) {
        self.tx.respond(now, key, status, bytes);
    }

    /// Starts a client transaction for an outgoing request.
    #[allow(clippy::too_many_arguments)]
    fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        bytes: Vec<u8>,
        invite: bool,
        target: Target,
        owner: Owner,
        ack: Option<build::AckBase>,
    ) {
        let reliable = target.proto.reliable();
        self.tx.start_client(
            now,
            key,
            bytes,
            invite,
            reliable,
            target,
            ClientMeta {
                owner,
                ack: ack.map(std::sync::Arc::new),
            },
        );
    }

    /// Runs everything that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        for meta in self.tx.handle_timeout(now) {
            self.client_timed_out(now, meta.owner);
        }
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, id)) = self.timers.pop().expect("peeked");
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.armed != Some(at) {
                continue; // superseded by a later entry
            }
            c.armed = None;
            self.call_timeout(now, id);
        }
        if now >= self.next_sweep {
            self.next_sweep = now + Duration::from_secs(1);
            self.release_ended_legs();
            self.expire_registrations(now);
            self.expire_subscriptions(now);
            self.run_peers(now);
            let unix = self.unix(now);
            self.guard.tick(now, unix);
            // After a flood of calls, their tables give the memory back.
            self.gave_back |= sip::transaction::table::give_back(&mut self.calls)
                | sip::transaction::table::give_back(&mut self.dialogs)
                | sip::transaction::table::give_back_heap(&mut self.timers)
                | self.tx.take_gave_back();
        }
        self.after_input(now);
    }

    /// What follows every input: waiting queue callers get free agents, and busy
    /// lamps show what changed.
    fn after_input(&mut self, now: Instant) {
        self.queue_dispatch(now);
        self.blf_update(now);
    }

    /// The SIP bans in force, the newest first.
    pub fn bans(&self, now: Instant) -> Vec<guard::BanView> {
        self.guard.bans(now)
    }

    /// Lifts a ban by its key (`192.0.2.7`, `192.0.2.7:5070`, `alice@192.0.2.7`);
    /// false when no such ban is in force.
    /// `by` names who lifted it (for the security log).
    pub fn lift_ban(&mut self, now: Instant, key: &str, by: &str) -> bool {
        let unix = self.unix(now);
        guard::BanKey::parse(key).is_some_and(|k| self.guard.lift(unix, &k, by))
    }

    /// Whether the bans changed since the last call (save [`Pbx::export_bans`] then).
    pub fn take_bans_dirty(&mut self) -> bool {
        self.guard.take_dirty()
    }

    /// The bans in force, for the store.
    pub fn export_bans(&self, now: Instant) -> Vec<u8> {
        self.guard.export(now)
    }

    /// Takes back saved bans; false when the blob cannot be read.
    pub fn import_bans(&mut self, blob: &[u8], now: Instant) -> bool {
        let unix = self.unix(now);
        self.guard.import(blob, now, unix)
    }

    /// Bans made, ended and lifted since the last call, for the security log.
    pub fn take_security_events(&mut self, now: Instant) -> Vec<guard::SecurityEvent> {
        let unix = self.unix(now);
        self.guard.take_events(unix)
    }

    /// Handles one received message.
    pub fn handle_message(&mut self, now: Instant, src: Source, bytes: &[u8]) {
        self.last_now = now;
        let unix = self.unix(now);
        // A bare CRLF keepalive is no request.
        let request = !bytes.starts_with(b"SIP/2.0 ") && !bytes.iter().all(u8::is_ascii_whitespace);
        if !self.guard.admit(
            now,
            unix,
            src.remote,
            request,
            guard::allow_list(&self.snapshot.config, &self.peers),
        ) {
            return; // banned or flooding: not even an answer
        }
        let msg = match sip::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(remote = %src.remote, "refused message: {e}");
                if let Some(reply) = sip::message::reject_unparsed(bytes, &e) {
                    self.send(
                        Target {
                            proto: src.proto,
                            dest: src.remote,
                        },
                        reply,
                    );
                }
                return;
            }
        };
        if let SipMessage::Request(req) = &msg {
            let ua = sip::message::get(&req.headers, "User-Agent");
            // The users a request names matter only while a user is banned somewhere.
            let (mut from, mut cred) = (String::new(), String::new());
            if self.guard.has_user_bans() {
                from = sip::message::get(&req.headers, "From")
                    .and_then(|v| sip::message::uri_user(sip::message::uri_part(v)))
                    .unwrap_or("")
                    .to_string();
                cred = registrar::credentials(req)
                    .next()
                    .map(|c| c.username)
                    .unwrap_or_default();
            }
            let allowed = guard::allow_list(&self.snapshot.config, &self.peers);
            if !self
                .guard
                .admit_request(now, unix, src.remote, ua, &[&from, &cred], allowed)
            {
                return; // a scanner, or a user banned here: no answer
            }
        }
        match msg {
            SipMessage::Request(req) => self.handle_request(now, src, req),
            SipMessage::Response(resp) => self.handle_response(now, resp),
        }
        self.after_input(now);
    }

    fn handle_request(&mut self, now: Instant, src: Source, mut req: rsip::Request) {
        build::stamp_via(&mut req, src.remote);
        let k = sip::message::key(&req.headers);
        let method = req.method.to_string();
        let target = Target {
            proto: src.proto,
            dest: src.remote,
        };
        let key = ServerKey::new(&k.branch, &method, src.remote);
        if method == "ACK" {
            // An ACK to a non-2xx ends its INVITE transaction; one to a 2xx is the
            // dialog's (RFC 3261 17.2.3, RFC 6026).
            if !self.tx.ack(now, &key) {
                self.dialog_ack(now, &req);
            }
            return;
        }
        if self.tx.retransmission(&key) {
            return;
        }
        self.tx.new_server(
            key.clone(),
            method == "INVITE",
            src.proto.reliable(),
            target,
        );
        if method == "INVITE" {
            let trying = Response::to(&req, 100, "Trying").build();
            self.respond(now, &key, 100, trying);
        }
        // RFC 3261 8.2.2.3: an extension we do not support is refused by name.
        // Only for methods we take (RFC 3261 8.2.1 checks the method first).
        let ours = method != "CANCEL" && sip::build::ALLOW.split(", ").any(|m| m == method);
        let unsupported = if ours {
            sip::build::unsupported(&req)
        } else {
            Vec::new()
        };
        if !unsupported.is_empty() {
            let tag = k.to_tag.is_empty().then(|| self.random_hex(10));
            let r = Response::to(&req, 420, "Bad Extension")
                .tag(tag.as_deref())
                .header("Unsupported", unsupported.join(", "))
                .build();
            return self.respond(now, &key, 420, r);
        }
        match method.as_str() {
            "REGISTER" => self.register(now, src, &key, &req),
            "OPTIONS" if k.to_tag.is_empty() => {
                let r = Response::to(&req, 200, "OK")
                    .tag(Some(&self.random_hex(8)))
                    .build();
                self.respond(now, &key, 200, r);
            }
            "CANCEL" => self.cancel(now, src, &key, &req),
            "INVITE" if k.to_tag.is_empty() => self.invite(now, src, &key, req),
            "SUBSCRIBE" if k.to_tag.is_empty() => self.subscribe(now, src, &key, &req),
            "SUBSCRIBE" if self.is_subscription(&k.call_id, &k.to_tag) => {
                self.resubscribe(now, src, &key, &req)
            }
            _ if !k.to_tag.is_empty() => self.in_dialog(now, src, &key, req),
            _ => {
                let r = Response::to(&req, 405, "Method Not Allowed").build();
                self.respond(now, &key, 405, r);
            }
        }
    }

    fn handle_response(&mut self, now: Instant, resp: rsip::Response) {
        let k = sip::message::key(&resp.headers);
        let status = u16::from(resp.status_code.clone());
        let ckey = ClientKey::new(&k.branch, &k.cseq_method);
        let to = sip::message::get(&resp.headers, "To").unwrap_or("");
        let ack = |m: &ClientMeta| m.ack.as_ref().map(|a| a.ack(to)).unwrap_or_default();
        let Some(m) = self.tx.client_response(now, &ckey, status, ack) else {
            tracing::debug!(branch = %k.branch, "response matches no transaction");
            return;
        };
        if m.event == sip::transaction::ClientEvent::Absorbed {
            return;
        }
        if m.owner.ack.is_some() && (200..300).contains(&status) {
            if let Some(meta) = self.tx.client_owner_mut(&ckey) {
                meta.ack = None;
            }
        }
        let (owner, target) = (m.owner.owner, m.dest);
        match owner {
            Owner::Leg(call, _)
                if (200..300).contains(&status) && !self.calls.contains_key(&call) =>
            {
                self.orphan_2xx(now, &resp, target)
            }
            Owner::Leg(call, leg) => self.leg_response(now, call, leg, &resp, status),
            Owner::Reinvite(call) => self.reinvite_response(now, call, &resp, status),
            Owner::Register(name) => self.register_response(now, &name, &resp, status),
            Owner::Options(name) if status >= 200 => self.options_result(&name, true),
            Owner::Subscription(id) if status >= 300 => self.subscription_refused(&id, status),
            Owner::Subscription(_) => {}
            Owner::Options(_) | Owner::Fire => {}
        }
    }

    /// A device answered after its call was gone (it lost a race with our CANCEL): ACK
    /// the 2xx and hang up, so the phone does not stay off-hook.
    fn orphan_2xx(&mut self, now: Instant, resp: &rsip::Response, target: Target) {
        let h = &resp.headers;
        let (Some(from), Some(to), Some(call_id), Some(contact)) = (
            sip::message::get(h, "From"),
            sip::message::get(h, "To"),
            sip::message::get(h, "Call-ID"),
            build::contact_uri(h),
        ) else {
            return;
        };
        let k = sip::message::key(h);
        // Our own Via came back on top: its sent-by is where we are.
        let via = sip::message::get_all(h, "Via")
            .first()
            .copied()
            .unwrap_or("")
            .to_string();
        let sent_by = via.split(';').next().unwrap_or("").to_string();
        let ack_via = format!("{sent_by};branch={};rport", self.branch());
        let ack = sip::build::Request {
            method: "ACK",
            uri: &contact,
            via: &ack_via,
            from,
            to,
            call_id,
            cseq: k.cseq,
            ..Default::default()
        }
        .build();
        self.send(target, ack);
        let branch = self.branch();
        let bye_via = format!("{sent_by};branch={branch};rport");
        let bye = sip::build::Request {
            method: "BYE",
            uri: &contact,
            via: &bye_via,
            from,
            to,
            call_id,
            cseq: k.cseq + 1,
            ..Default::default()
        }
        .build();
        tracing::debug!(call_id, "late answer to a finished call: ACK and BYE");
        self.start_client(
            now,
            ClientKey::new(&branch, "BYE"),
            bye,
            false,
            target,
            Owner::Fire,
            None,
        );
    }

    /// Asks a registered phone to fetch its configuration again (and restart), with an
    /// out-of-dialog NOTIFY carrying the vendor's `Event` (`check-sync`, `resync`, ...).
    /// False when the account is not registered.
    pub fn notify_resync(&mut self, now: Instant, username: &str, event: &str) -> bool {
        let Some(reg) = self.registrations.get(username).cloned() else {
            return false;
        };
        let nat = self.snapshot.account(username).is_none_or(|a| a.nat);
        let proto = reg.proto();
        let branch = self.branch();
        let call_id = format!("{}@pbxd", self.random_hex(24));
        let tag = self.random_hex(10);
        let host = reg.local;
        let from = format!("<sip:pbx@{host}>;tag={tag}");
        let to = format!("<sip:{username}@{host}>");
        let via = build::via(proto, reg.local, &branch);
        // RFC 6665 8.2.1 (and 3261 8.1.1.8 for requests that could start a dialog):
        // a NOTIFY carries our Contact.
        let contact = build::contact("pbx", proto, reg.local);
        let bytes = sip::build::Request {
            method: "NOTIFY",
            uri: &reg.contact,
            via: &via,
            from: &from,
            to: &to,
            call_id: &call_id,
            cseq: 1,
            contact: Some(&contact),
            extra: &[
                ("Event", event.to_string()),
                ("Subscription-State", "terminated".into()),
            ],
            ..Default::default()
        }
        .build();
        let dest = reg.dest(nat);
        tracing::info!(username, event, %dest, "asking the phone to resync");
        self.start_client(
            now,
            ClientKey::new(&branch, "NOTIFY"),
            bytes,
            false,
            Target { proto, dest },
            Owner::Fire,
            None,
        );
        true
    }

    /// Current locations, for `pbxctl registrations`.
    pub fn registrations(&self) -> Vec<Registration> {
        let mut v: Vec<_> = self.registrations.values().cloned().collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        v
    }

    /// The portal asks for the browser phone of account `username`
    /// ([`config::SipAccount::web`]) on behalf of `proposal`'s user: while that user's
    /// grant holds (same user, same password) it is renewed until `proposal.until` and
    /// keeps its secret, else `proposal` (with a fresh secret from the portal) takes its
    /// place, and a registration made under the grant it replaces goes at once (that
    /// page stops ringing). Answers the secret in force and whether it is new. The
    /// account's REGISTERs and calls are checked against the grant while it holds
    /// ([`config::SipAccount::web_grant_holds`]). Kept in memory only: a restart makes
    /// the portal's pages ask again.
    pub fn renew_web_grant(
        &mut self,
        now: Instant,
        username: &str,
        proposal: config::WebGrant,
    ) -> (String, bool) {
        let unix = self.unix(now);
        let kept = self
            .web_grants
            .get(username)
            .filter(|g| {
                g.user == proposal.user
                    && g.password_hash == proposal.password_hash
                    && g.until > unix
            })
            .map(|g| g.secret.clone());
        let new = kept.is_none();
        let secret = kept.unwrap_or(proposal.secret);
        let grant = config::WebGrant {
            secret: secret.clone(),
            ..proposal
        };
        if self
            .web_grants
            .insert(username.to_string(), grant)
            .is_some()
            && new
            && self.registrations.remove(username).is_some()
        {
            self.registrations_dirty = true;
        }
        self.forget_web_grants(now);
        (secret, new)
    }

    /// The secret of browser phone account `username` while its grant holds.
    pub(crate) fn web_secret(&self, username: &str, unix: u64) -> Option<&str> {
        let a = self.snapshot.account(username)?;
        let g = self.web_grants.get(username)?;
        a.web_grant_holds(g, &self.snapshot.config, unix)
            .then_some(g.secret.as_str())
    }

    /// Drops grants that no longer hold, with the registrations made under them.
    fn forget_web_grants(&mut self, now: Instant) {
        let unix = self.unix(now);
        let gone: Vec<String> = self
            .web_grants
            .keys()
            .filter(|u| self.web_secret(u, unix).is_none())
            .cloned()
            .collect();
        for u in gone {
            self.web_grants.remove(&u);
            if self.registrations.remove(&u).is_some() {
                self.registrations_dirty = true;
            }
        }
    }

    /// Calls in progress, for `pbxctl calls`.
    pub fn calls(&self, now: Instant) -> Vec<CallInfo> {
        // A finished call only waits for legs to settle: it is not in progress.
        let mut v: Vec<_> = self
            .calls
            .values()
            .filter(|c| !c.finished)
            .map(|c| c.info(now))
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Hangs up call `id` (see `pbxctl calls`); false when it is not in progress.
    pub fn hang_up_call(&mut self, now: Instant, id: u64) -> bool {
        self.last_now = now;
        let done = self.terminate(now, id);
        self.after_input(now);
        done
    }

    /// True once after the locations changed; the driver then persists them.
    pub fn take_registrations_dirty(&mut self) -> bool {
        std::mem::take(&mut self.registrations_dirty)
    }

    /// The locations as a JSON blob for the store.
    pub fn export_registrations(&self) -> Vec<u8> {
        serde_json::to_vec(&self.registrations()).expect("registrations serialise")
    }

    /// Restores persisted locations, dropping expired ones and unknown accounts.
    pub fn import_registrations(&mut self, blob: &[u8], now: Instant) {
        let Ok(list) = serde_json::from_slice::<Vec<Registration>>(blob) else {
            tracing::warn!("persisted registrations unreadable; starting without");
            return;
        };
        let unix = self.unix(now);
        for r in list {
            if r.expires_at > unix
                && (self.snapshot.account(&r.username).is_some()
                    || self.snapshot.link_by_user(&r.username).is_some())
            {
                // Its address was trusted before the restart.
                self.guard.authenticated(now, r.source, &r.username);
                self.registrations.insert(r.username.clone(), r);
            }
        }
    }
}
