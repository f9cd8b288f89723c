//! Media endpoints as the exchange sees them: handles that turn what the exchange does
//! to an endpoint into [`Command`]s, and a pool of spare endpoints the driver hands in.
//!
//! The exchange is sans-IO: it never binds a socket. The driver (pbxd, or a test) binds
//! port pairs ahead of need ([`Endpoints::spares`]) and gives them to the exchange as
//! [`Spare`]s; the exchange takes one when a leg needs it (its port goes into the SDP at
//! once), works it through a [`Handle`], and the driver carries out the commands that
//! come out ([`Pool::poll`], [`Endpoints::apply`]) on the relay's threads. Dropping a
//! handle closes its endpoint and frees the ports. What the endpoints report comes back
//! as [`Event`](crate::Event)s.

use crate::player::Clip;
use crate::prompts::Prompts;
use crate::relay::{Endpoint, Listen, PtMap, Relay, SideConfig, Stats};
use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

/// An endpoint's number for its whole life (in commands and events).
pub type EndpointId = u64;

/// What the exchange asks of the endpoints, carried out in order by the driver.
#[derive(Debug)]
pub enum Command {
    /// A spare endpoint goes into use: anything latched while it sat idle is forgotten.
    Take(EndpointId),
    /// Where the party receives RTP, and whether to latch to where it really sends from.
    SetRemote(EndpointId, SideConfig),
    /// SRTP on the leg: the suite, the party's key, the box's key (None: plain).
    Srtp(EndpointId, Option<Box<crate::relay::SrtpKeys>>),
    /// WebRTC on the leg (a browser), with what both descriptions said (None: waiting
    /// for the browser's answer, silent).
    WebRtc(EndpointId, Option<Box<crate::webrtc::WebRtcParams>>),
    /// The relay fast path between two endpoints, both ways, with the payload rewrite of
    /// each direction; stops their plays and ends their earlier connections.
    Connect {
        a: EndpointId,
        b: EndpointId,
        maps: Box<(PtMap, PtMap)>,
    },
    /// Ends the endpoint's connection, both ways.
    Disconnect(EndpointId),
    /// Plays a clip to the party, in a loop or once (then [`crate::Event::PlayDone`]).
    Play {
        id: EndpointId,
        clip: Clip,
        pt: u8,
        alaw: bool,
        looped: bool,
    },
    /// Plays the music on hold collection `name` of the driver's set in a loop (the
    /// shipped collection, `system`, when there is no such collection).
    PlayMusic {
        id: EndpointId,
        name: String,
        pt: u8,
        alaw: bool,
    },
    /// Plays the prompt `name` of the driver's prompt set once, then
    /// [`crate::Event::PlayDone`] (at once when the set has no such prompt).
    PlayPrompt {
        id: EndpointId,
        name: String,
        pt: u8,
        alaw: bool,
    },
    /// Plays the audio file `path` once (a user's greeting), or the prompt `fallback`
    /// when the file is missing or unplayable, then [`crate::Event::PlayDone`].
    PlayFile {
        id: EndpointId,
        path: PathBuf,
        fallback: Option<String>,
        pt: u8,
        alaw: bool,
    },
    /// Records what the party says into the WAV file `path`, at most `listen.record`
    /// samples, listening for digits as `listen` says meanwhile. The file is written
    /// when the recording stops or the endpoint closes; [`crate::Event::Recorded`]
    /// follows.
    Record {
        id: EndpointId,
        path: std::path::PathBuf,
        listen: Listen,
    },
    /// Ends the recording (and goes on listening as `Listen` says).
    StopRecording(EndpointId, Listen),
    /// Sends a keypad digit as RFC 4733 events, then [`crate::Event::PlayDone`].
    SendDigit {
        id: EndpointId,
        ev: u8,
        ms: u32,
        pt: u8,
    },
    /// Stops playing.
    Stop(EndpointId),
    /// Listens to the party for digits (and records) as `Listen` says.
    Listen(EndpointId, Listen),
    /// The endpoint is done with: its ports are freed.
    Close(EndpointId),
    /// The endpoint joins conference `room` (its mixer made when the first one joins),
    /// hearing and sending payload type `pt` (A-law when `alaw`); a connection ends.
    Join {
        id: EndpointId,
        room: String,
        pt: u8,
        alaw: bool,
    },
    /// The endpoint leaves its conference.
    Leave(EndpointId),
    /// Whether the others in its conference hear the endpoint's party.
    Mute(EndpointId, bool),
    /// Everyone in conference `room` hears `clip` once (entry and exit tones).
    RoomTone { room: String, clip: Clip },
}

/// A port pair the driver bound ahead of need, idle until the exchange takes it.
#[derive(Debug, Clone)]
pub struct Spare {
    pub id: EndpointId,
    /// The RTP port (RTCP is the next one).
    pub port: u16,
    /// Its packet counters (written by the relay's threads, read for the calls view).
    pub stats: Arc<Stats>,
}

/// The exchange's spare endpoints and the queue of its commands.
pub struct Pool {
    spares: Vec<Spare>,
    /// How many spares the driver keeps here.
    target: usize,
    tx: mpsc::Sender<Command>,
    rx: mpsc::Receiver<Command>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} spare)", self.spares.len())
    }
}

impl Pool {
    /// A pool the driver keeps `target` spares in.
    pub fn new(target: usize) -> Pool {
        let (tx, rx) = mpsc::channel();
        Pool {
            spares: Vec::new(),
            target,
            tx,
            rx,
        }
    }

    /// How many spares the driver should hand in now.
    pub fn wanted(&self) -> usize {
        self.target.saturating_sub(self.spares.len())
    }

    /// Spares from the driver.
    pub fn add(&mut self, spares: impl IntoIterator<Item = Spare>) {
        self.spares.extend(spares);
    }

    /// Takes a spare endpoint into use; an error when none is left (the RTP port range
    /// is used up).
    pub fn take(&mut self) -> io::Result<Handle> {
        let s = self.spares.pop().ok_or_else(|| {
            io::Error::new(io::ErrorKind::AddrInUse, "no free RTP ports in the range")
        })?;
        let _ = self.tx.send(Command::Take(s.id));
        Ok(Handle {
            id: s.id,
            port: s.port,
            stats: s.stats,
            side: Cell::new(SideConfig::default()),
            playing: Cell::new(false),
            listen: Cell::new(Listen::default()),
            recording: Cell::new(false),
            secure: Cell::new(false),
            out: self.tx.clone(),
        })
    }

    /// Everyone in conference `room` hears `clip` once.
    pub fn room_tone(&self, room: &str, clip: Clip) {
        let _ = self.tx.send(Command::RoomTone {
            room: room.to_string(),
            clip,
        });
    }

    /// The next command for the driver to carry out.
    pub fn poll(&mut self) -> Option<Command> {
        self.rx.try_recv().ok()
    }
}

/// The exchange's handle on one endpoint in use. What it does becomes [`Command`]s;
/// dropping it closes the endpoint.
pub struct Handle {
    id: EndpointId,
    /// The RTP port (RTCP is the next one).
    pub port: u16,
    pub stats: Arc<Stats>,
    side: Cell<SideConfig>,
    /// Playing, as far as the exchange knows (a play once ends with its event).
    playing: Cell<bool>,
    /// What it listens for (digits), besides a recording.
    listen: Cell<Listen>,
    recording: Cell<bool>,
    /// Keyed for SRTP (a plain leg is told nothing).
    secure: Cell<bool>,
    out: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({} port {})", self.id, self.port)
    }
}

impl Handle {
    fn send(&self, c: Command) {
        // The pool (and its receiver) lives as long as the exchange that holds both.
        let _ = self.out.send(c);
    }

    /// The endpoint's number in commands and events.
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// Points the endpoint at the party's RTP address (from its SDP), following the
    /// real source of its packets when `latch` is set.
    pub fn set_remote(&self, remote: Option<std::net::SocketAddr>, latch: bool) {
        let side = SideConfig { remote, latch };
        self.side.set(side);
        self.send(Command::SetRemote(self.id, side));
    }

    /// Puts SRTP on the leg with the party's key and the box's, or takes it off.
    pub fn set_srtp(&self, keys: Option<crate::relay::SrtpKeys>) {
        if keys.is_none() && !self.secure.get() {
            return;
        }
        self.secure.set(keys.is_some());
        self.send(Command::Srtp(self.id, keys.map(Box::new)));
    }

    /// Makes the leg a WebRTC one (ICE-lite, DTLS-SRTP), or one that waits for the
    /// browser's answer with `None`. [`Handle::set_srtp`] makes it plain or SDES again.
    pub fn set_webrtc(&self, params: Option<crate::webrtc::WebRtcParams>) {
        self.secure.set(true);
        self.send(Command::WebRtc(self.id, params.map(Box::new)));
    }

    /// Where the party said it receives RTP, and whether to latch.
    pub fn side(&self) -> SideConfig {
        self.side.get()
    }

    /// Connects two endpoints both ways: what reaches `self` goes out of `other` with
    /// `here_to_there`, and back with `there_to_here`. Stops playing on both.
    pub fn connect(&self, other: &Handle, here_to_there: PtMap, there_to_here: PtMap) {
        self.playing.set(false);
        other.playing.set(false);
        self.send(Command::Connect {
            a: self.id,
            b: other.id,
            maps: Box::new((here_to_there, there_to_here)),
        });
    }

    /// Ends the connection, both ways.
    pub fn disconnect(&self) {
        self.send(Command::Disconnect(self.id));
    }

    /// Joins conference `room`, in payload type `pt` (A-law when `alaw`).
    pub fn join(&self, room: &str, pt: u8, alaw: bool) {
        self.playing.set(false);
        self.send(Command::Join {
            id: self.id,
            room: room.to_string(),
            pt,
            alaw,
        });
    }

    /// Leaves its conference.
    pub fn leave(&self) {
        self.send(Command::Leave(self.id));
    }

    /// Whether the others in its conference hear this party.
    pub fn mute(&self, muted: bool) {
        self.send(Command::Mute(self.id, muted));
    }

    /// Plays `clip` to the party in a loop until [`Handle::stop`] or a new connection.
    pub fn play(&self, clip: Clip, pt: u8, alaw: bool) {
        self.play_clip(clip, pt, alaw, true);
    }

    /// Plays `clip` once, then the endpoint reports [`crate::Event::PlayDone`].
    pub fn play_once(&self, clip: Clip, pt: u8, alaw: bool) {
        self.play_clip(clip, pt, alaw, false);
    }

    fn play_clip(&self, clip: Clip, pt: u8, alaw: bool, looped: bool) {
        if !clip.is_empty() {
            self.playing.set(true);
        }
        self.send(Command::Play {
            id: self.id,
            clip,
            pt,
            alaw,
            looped,
        });
    }

    /// Plays music on hold collection `name` in a loop until [`Handle::stop`] or a new
    /// connection.
    pub fn play_music(&self, name: &str, pt: u8, alaw: bool) {
        self.playing.set(true);
        self.send(Command::PlayMusic {
            id: self.id,
            name: name.to_string(),
            pt,
            alaw,
        });
    }

    /// Sends keypad digit `ev` as RFC 4733 events of payload type `pt` lasting `ms`.
    pub fn send_digit(&self, ev: u8, ms: u32, pt: u8) {
        self.playing.set(true);
        self.send(Command::SendDigit {
            id: self.id,
            ev,
            ms,
            pt,
        });
    }

    /// Stops playing.
    pub fn stop(&self) {
        self.playing.set(false);
        self.send(Command::Stop(self.id));
    }

    /// Whether the endpoint is playing, as far as the exchange knows.
    pub fn playing(&self) -> bool {
        self.playing.get()
    }

    /// The endpoint reported its play done.
    pub fn play_done(&self) {
        self.playing.set(false);
    }

    /// Plays prompt `name` of the prompt set once, then [`crate::Event::PlayDone`].
    pub fn play_prompt(&self, name: &str, pt: u8, alaw: bool) {
        self.playing.set(true);
        self.send(Command::PlayPrompt {
            id: self.id,
            name: name.to_string(),
            pt,
            alaw,
        });
    }

    /// Plays the file `path` once, or prompt `fallback` when there is no such file.
    pub fn play_file(&self, path: PathBuf, fallback: Option<&str>, pt: u8, alaw: bool) {
        self.playing.set(true);
        self.send(Command::PlayFile {
            id: self.id,
            path,
            fallback: fallback.map(str::to_string),
            pt,
            alaw,
        });
    }

    /// Starts listening to the party as `listen` says (digits; a recording goes by
    /// [`Handle::record`]).
    pub fn listen(&self, listen: Listen) {
        let listen = Listen {
            record: 0,
            ..listen
        };
        self.listen.set(listen);
        self.recording.set(false);
        self.send(Command::Listen(self.id, listen));
    }

    /// Records what the party says into the WAV file `path`, at most `max` samples,
    /// still listening for digits.
    pub fn record(&self, path: std::path::PathBuf, max: usize) {
        self.recording.set(true);
        let listen = Listen {
            record: max,
            ..self.listen.get()
        };
        self.send(Command::Record {
            id: self.id,
            path,
            listen,
        });
    }

    /// Ends the recording: the file is written.
    pub fn stop_recording(&self) {
        if self.recording.replace(false) {
            self.send(Command::StopRecording(self.id, self.listen.get()));
        }
    }

    /// Whether a recording is going on.
    pub fn recording(&self) -> bool {
        self.recording.get()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.send(Command::Close(self.id));
    }
}

/// Samples a recording holds in memory before [`Endpoints::flush_recordings`] writes
/// them out: 10 seconds (160 kB).
pub const SPOOL_SAMPLES: usize = 80_000;

/// A recording going on.
struct Recording {
    path: PathBuf,
    /// A long recording is written out as it goes into this file (a WAV whose sizes
    /// are set when it ends), with this many samples so far.
    spool: Option<PathBuf>,
    spooled: usize,
    /// The last write of it, which the next one waits for (they run in order); a
    /// write that failed fails the ones after it, and the recording.
    last: Option<std::thread::JoinHandle<io::Result<()>>>,
}

/// The driver's side: the relay's endpoints by number, spares among them.
pub struct Endpoints {
    relay: Relay,
    open: HashMap<EndpointId, Endpoint>,
    prompts: Prompts,
    /// Music on hold collections by name.
    music: HashMap<String, crate::Music>,
    /// Each recording going on: where it is written, and what of it is written out
    /// already.
    recordings: HashMap<EndpointId, Recording>,
    /// Recordings being written.
    writers: Vec<std::thread::JoinHandle<()>>,
    /// Conference mixers by room, while anyone is in.
    rooms: HashMap<String, Arc<crate::Mixer>>,
    /// When the last binding ran out of ports: tried again 50 ms later at the soonest
    /// (a closed pair is freed by its relay thread a moment after the close, so
    /// binding again at once would fail the same way).
    exhausted: Option<std::time::Instant>,
}

impl Endpoints {
    pub fn new(relay: Relay) -> Endpoints {
        Endpoints {
            relay,
            open: HashMap::new(),
            prompts: Prompts::default(),
            music: HashMap::new(),
            recordings: HashMap::new(),
            writers: Vec::new(),
            rooms: HashMap::new(),
            exhausted: None,
        }
    }

    /// Plays prompts from the set in folder `dir`.
    pub fn with_prompts(mut self, dir: Option<PathBuf>) -> Endpoints {
        self.prompts = Prompts::new(dir);
        self
    }

    /// Installs music on hold collection `name` (`None` removes it); holds going on
    /// keep what they play.
    pub fn set_music(&mut self, name: &str, music: Option<crate::Music>) {
        match music {
            Some(m) => self.music.insert(name.to_string(), m),
            None => self.music.remove(name),
        };
    }

    /// The names of the collections installed.
    pub fn music_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.music.keys().cloned().collect();
        v.sort();
        v
    }

    /// Reports a recording that was not made.
    fn report(&self, endpoint: EndpointId, path: PathBuf, samples: usize, ok: bool) {
        if let Some(tx) = self.relay.events() {
            let _ = tx.send(crate::Event::Recorded {
                endpoint,
                path,
                samples,
                ok,
            });
        }
    }

    /// Ends the recording of endpoint `id`, if any: the file is written on a thread of
    /// its own (the card may be slow), then [`crate::Event::Recorded`].
    /// Writes out what long recordings hold in memory (at least [`SPOOL_SAMPLES`]):
    /// the driver calls this every few seconds, so a recording of an hour holds
    /// seconds, not the hour, in memory. The writing runs on its own thread.
    pub fn flush_recordings(&mut self) {
        for (id, rec) in self.recordings.iter_mut() {
            let Some(ep) = self.open.get(id) else {
                continue;
            };
            let Some(samples) = ep.take_recorded(SPOOL_SAMPLES) else {
                continue;
            };
            let spool = rec
                .spool
                .get_or_insert_with(|| rec.path.with_extension("spool"))
                .clone();
            let first = rec.spooled == 0;
            rec.spooled += samples.len();
            let prev = rec.last.take();
            rec.last = Some(std::thread::spawn(move || {
                if let Some(p) = prev {
                    p.join()
                        .unwrap_or_else(|_| Err(io::Error::other("writer panicked")))?;
                }
                append_spool(&spool, first, &samples).inspect_err(|e| {
                    tracing::warn!(file = %spool.display(), "recording not written out: {e}");
                })
            }));
        }
    }

    fn finish_recording(&mut self, id: EndpointId, ep: &Endpoint, listen: Option<Listen>) {
        let Some(rec) = self.recordings.remove(&id) else {
            return;
        };
        let samples = ep.stop_listening();
        if let Some(l) = listen {
            ep.listen(l);
        }
        let events = self.relay.events();
        self.writers.retain(|w| !w.is_finished());
        self.writers.push(std::thread::spawn(move || {
            let Recording {
                path,
                spool,
                spooled,
                last,
            } = rec;
            let before = last.map_or(Ok(()), |p| {
                p.join()
                    .unwrap_or_else(|_| Err(io::Error::other("writer panicked")))
            });
            let mut path = path;
            let n = spooled + samples.len();
            let written = match &spool {
                Some(spool) => before.and_then(|()| finish_spool(spool, &path, &samples)),
                None => write_wav(&path, &samples),
            };
            if let (Err(_), Some(spool)) = (&written, &spool) {
                // Half a recording is no recording: the spool goes.
                let _ = std::fs::remove_file(spool);
            }
            let ok = match written {
                Ok(written) => {
                    path = written;
                    true
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "recording not saved: {e}");
                    false
                }
            };
            if let Some(tx) = events {
                let _ = tx.send(crate::Event::Recorded {
                    endpoint: id,
                    path,
                    samples: n,
                    ok,
                });
            }
        }));
    }

    /// Before the daemon exits: every endpoint closes, so the recordings going on are
    /// written, and the writing is waited for.
    pub fn shutdown(&mut self) {
        let ids: Vec<EndpointId> = self.open.keys().copied().collect();
        for id in ids {
            self.apply(Command::Close(id));
        }
        for w in self.writers.drain(..) {
            let _ = w.join();
        }
    }

    /// Binds up to `n` more port pairs as spares (fewer when the range is used up).
    pub fn spares(&mut self, n: usize) -> Vec<Spare> {
        let mut got = Vec::new();
        if self
            .exhausted
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(50))
        {
            return got;
        }
        self.exhausted = None;
        for _ in 0..n {
            match self.relay.open() {
                Ok(ep) => {
                    got.push(Spare {
                        id: ep.id(),
                        port: ep.port,
                        stats: ep.stats.clone(),
                    });
                    self.open.insert(ep.id(), ep);
                }
                Err(e) => {
                    // The exchange says so when a leg finds no spare.
                    tracing::debug!("media relay: {e}");
                    self.exhausted = Some(std::time::Instant::now());
                    break;
                }
            }
        }
        got
    }

    /// Carries out one command of the exchange.
    pub fn apply(&mut self, c: Command) {
        let ep = |id: &EndpointId| self.open.get(id);
        match c {
            Command::Take(id) => {
                if let Some(e) = ep(&id) {
                    e.forget_latched();
                    e.set_srtp(None);
                }
            }
            Command::Srtp(id, keys) => {
                if let Some(e) = ep(&id) {
                    e.set_srtp(keys.map(|k| *k));
                }
            }
            Command::WebRtc(id, params) => {
                if let Some(e) = ep(&id) {
                    e.set_webrtc(params.map(|p| *p));
                }
            }
            Command::SetRemote(id, side) => {
                if let Some(e) = ep(&id) {
                    e.set_remote(side.remote, side.latch);
                }
            }
            Command::Connect { a, b, maps } => {
                if let (Some(x), Some(y)) = (ep(&a), ep(&b)) {
                    let was = x.in_conference() || y.in_conference();
                    x.connect(y, maps.0, maps.1);
                    if was {
                        self.rooms.retain(|_, m| !m.is_empty());
                    }
                }
            }
            Command::Join { id, room, pt, alaw } => {
                if let Some(e) = self.open.get(&id) {
                    let relay = &self.relay;
                    let m = self.rooms.entry(room).or_insert_with(|| relay.mixer());
                    if !e.join(m, pt, alaw) {
                        tracing::warn!("a conference is full: {} participants", m.len());
                    }
                    self.rooms.retain(|_, m| !m.is_empty());
                }
            }
            Command::Leave(id) => {
                if let Some(e) = ep(&id) {
                    e.leave();
                    self.rooms.retain(|_, m| !m.is_empty());
                }
            }
            Command::Mute(id, muted) => {
                for m in self.rooms.values() {
                    m.set_muted(id, muted);
                }
            }
            Command::RoomTone { room, clip } => {
                if let Some(m) = self.rooms.get(&room) {
                    m.tone(clip);
                }
            }
            Command::Disconnect(id) => {
                if let Some(e) = ep(&id) {
                    e.disconnect();
                }
            }
            Command::Play {
                id,
                clip,
                pt,
                alaw,
                looped,
            } => {
                if let Some(e) = ep(&id) {
                    if looped {
                        e.play(clip, pt, alaw);
                    } else {
                        e.play_once(clip, pt, alaw);
                    }
                }
            }
            Command::PlayMusic { id, name, pt, alaw } => {
                if let Some(e) = self.open.get(&id) {
                    let music = self
                        .music
                        .get(&name)
                        .or_else(|| self.music.get("system"))
                        .cloned()
                        .unwrap_or_else(crate::Music::chime);
                    match music {
                        crate::Music::Clip(c) => e.play(c, pt, alaw),
                        crate::Music::Live(l) => e.play_live(l, pt, alaw),
                    }
                }
            }
            Command::PlayPrompt { id, name, pt, alaw } => {
                if let Some(e) = self.open.get(&id) {
                    let clip = self.prompts.get(&name).unwrap_or_else(|err| {
                        tracing::warn!(prompt = name, "not played: {err}");
                        // What played before stops, as a prompt would have replaced it.
                        e.stop();
                        Clip::from_ulaw(Vec::new())
                    });
                    // An empty clip reports its PlayDone at once.
                    e.play_once(clip, pt, alaw);
                }
            }
            Command::PlayFile {
                id,
                path,
                fallback,
                pt,
                alaw,
            } => {
                if let Some(e) = self.open.get(&id) {
                    let clip = match Clip::load(&path) {
                        Ok(c) => Ok(c),
                        Err(err) => {
                            if path.exists() {
                                tracing::warn!(file = %path.display(), "not played: {err}");
                            }
                            match &fallback {
                                Some(name) => self.prompts.get(name),
                                None => Err(err),
                            }
                        }
                    };
                    let clip = clip.unwrap_or_else(|err| {
                        tracing::warn!(file = %path.display(), "nothing played: {err}");
                        e.stop();
                        Clip::from_ulaw(Vec::new())
                    });
                    e.play_once(clip, pt, alaw);
                }
            }
            Command::Record { id, path, listen } => {
                if let Some(e) = self.open.remove(&id) {
                    // A recording started over saves the one before.
                    self.finish_recording(id, &e, None);
                    if folder_full(&path) {
                        // The card is not filled by one box: nothing is recorded (the
                        // digits are still listened for).
                        tracing::warn!(folder = ?path.parent(), "{MAX_RECORDINGS} recordings there already: not recording");
                        e.listen(Listen {
                            record: 0,
                            ..listen
                        });
                        self.report(id, path, 0, false);
                    } else {
                        e.listen(listen);
                        self.recordings.insert(
                            id,
                            Recording {
                                path,
                                spool: None,
                                spooled: 0,
                                last: None,
                            },
                        );
                    }
                    self.open.insert(id, e);
                }
            }
            Command::StopRecording(id, listen) => {
                if let Some(e) = self.open.remove(&id) {
                    self.finish_recording(id, &e, Some(listen));
                    self.open.insert(id, e);
                }
            }
            Command::SendDigit { id, ev, ms, pt } => {
                if let Some(e) = ep(&id) {
                    e.send_digit(ev, ms, pt);
                }
            }
            Command::Stop(id) => {
                if let Some(e) = ep(&id) {
                    e.stop();
                }
            }
            Command::Listen(id, l) => {
                if let Some(e) = self.open.remove(&id) {
                    // Listening anew ends a recording: it is written, not lost.
                    self.finish_recording(id, &e, None);
                    e.listen(l);
                    self.open.insert(id, e);
                }
            }
            Command::Close(id) => {
                if let Some(e) = self.open.remove(&id) {
                    self.finish_recording(id, &e, None);
                    if e.in_conference() {
                        drop(e);
                        self.rooms.retain(|_, m| !m.is_empty());
                    }
                }
            }
        }
    }

    /// Carries out the pool's commands and tops its spares up.
    pub fn serve(&mut self, pool: &mut Pool) {
        while let Some(c) = pool.poll() {
            self.apply(c);
        }
        let n = pool.wanted();
        if n > 0 {
            pool.add(self.spares(n));
        }
    }

    /// An endpoint by number (tests look at what it does).
    pub fn get(&self, id: EndpointId) -> Option<&Endpoint> {
        self.open.get(&id)
    }

    /// How many endpoints are bound, spares included.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

impl Drop for Endpoints {
    /// The driver's endpoints go now (a restarted exchange, a test's next rig binds in
    /// the same range), not when the relay threads next wake.
    fn drop(&mut self) {
        self.open.clear();
        self.relay.flush();
    }
}

/// The most recordings (`.wav` files) one folder takes: a voicemail box that nobody
/// empties cannot fill the card.
pub const MAX_RECORDINGS: usize = 200;

/// Whether `path`'s folder already holds [`MAX_RECORDINGS`] recordings.
fn folder_full(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    // A greeting recorded on the phone replaces one: a full box may still get it.
    if path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("greeting-"))
    {
        return false;
    }
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.filter_map(Result::ok)
            .filter(|e| {
                // Messages only: a box's greetings do not take a message's place.
                let p = e.path();
                p.extension().is_some_and(|x| x == "wav")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("greeting-"))
            })
            .count()
            >= MAX_RECORDINGS
    })
}

/// Writes a recording as an 8 kHz 16-bit WAV file, whole or not at all (a temporary
/// file renamed), making its folder if needed; answers the file written (`path`, or
/// `path` with `-1`, `-2`... when a file of that name is there).
fn write_wav(path: &Path, samples: &[i16]) -> io::Result<PathBuf> {
    let path = free_name(path)?;
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, crate::player::wav_bytes(samples))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Adds `samples` to a long recording's spool file (made with a WAV header when
/// `first`).
fn append_spool(spool: &Path, first: bool, samples: &[i16]) -> io::Result<()> {
    use std::io::Write;
    if let Some(dir) = spool.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Only the first write makes the file (over a spool a crash left): a later one
    // finding none fails rather than making a file without a header.
    let mut f = std::fs::OpenOptions::new()
        .create(first)
        .append(true)
        .truncate(false)
        .open(spool)?;
    if first {
        f.set_len(0)?;
        f.write_all(&crate::player::wav_bytes(&[]))?;
    }
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    f.write_all(&bytes)
}

/// Ends a long recording: the last samples added, the WAV sizes set from what the
/// file holds, and the spool renamed to a free name like `path`.
fn finish_spool(spool: &Path, path: &Path, samples: &[i16]) -> io::Result<PathBuf> {
    use std::io::{Seek, SeekFrom, Write};
    append_spool(spool, false, samples)?;
    let len = std::fs::metadata(spool)?.len();
    let data = len.saturating_sub(44).min(u64::from(u32::MAX) - 36) as u32;
    let mut f = std::fs::OpenOptions::new().write(true).open(spool)?;
    f.seek(SeekFrom::Start(4))?;
    f.write_all(&(36 + data).to_le_bytes())?;
    f.seek(SeekFrom::Start(40))?;
    f.write_all(&data.to_le_bytes())?;
    f.sync_all()?;
    let path = free_name(path)?;
    std::fs::rename(spool, &path)?;
    Ok(path)
}

/// `path`, or `path` with `-1`, `-2`... when a file of that name is there (never over
/// an earlier recording: a clock set back at boot); its folder made if needed.
fn free_name(path: &Path) -> io::Result<PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Never over an earlier recording of the same name (a clock set back at boot).
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let path = (0..100)
        .map(|n| match n {
            0 => path.to_path_buf(),
            n => path.with_file_name(format!("{stem}-{n}.wav")),
        })
        .find(|p| !p.exists())
        .ok_or_else(|| io::Error::new(io::ErrorKind::AlreadyExists, "no free file name"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_says_what_it_does_and_closes_when_dropped() {
        let mut pool = Pool::new(2);
        assert_eq!(pool.wanted(), 2);
        assert!(pool.take().is_err(), "no spare, no endpoint");
        let stats = Arc::new(Stats::default());
        pool.add([
            Spare {
                id: 7,
                port: 4000,
                stats: stats.clone(),
            },
            Spare {
                id: 8,
                port: 4002,
                stats,
            },
        ]);
        assert_eq!(pool.wanted(), 0);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!((a.id(), a.port, b.id(), b.port), (8, 4002, 7, 4000));
        a.set_remote(Some("127.0.0.1:9000".parse().unwrap()), true);
        assert!(a.side().latch);
        a.play(Clip::tone(&[425.0], 100, 0, 0.5), 0, false);
        assert!(a.playing());
        a.connect(&b, PtMap::default(), PtMap::default());
        assert!(!a.playing());
        drop(a);
        let got: Vec<String> = std::iter::from_fn(|| pool.poll())
            .map(|c| {
                format!("{c:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            got,
            ["Take", "Take", "SetRemote", "Play", "Connect", "Close"]
        );
        assert_eq!(pool.wanted(), 2);
    }

    #[test]
    fn the_driver_binds_spares_and_carries_commands_out() {
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31700, 31703);
        let mut eps = Endpoints::new(relay);
        let mut pool = Pool::new(3);
        eps.serve(&mut pool);
        assert_eq!(eps.len(), 2, "the range holds two pairs");
        assert_eq!(pool.wanted(), 1);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_err());
        a.connect(&b, PtMap::default(), PtMap::default());
        eps.serve(&mut pool);
        let (ea, eb) = (eps.get(a.id()).unwrap(), eps.get(b.id()).unwrap());
        assert!(ea.connected_to(eb) && eb.connected_to(ea));
        drop(a);
        eps.serve(&mut pool);
        std::thread::sleep(std::time::Duration::from_millis(100));
        eps.serve(&mut pool);
        assert_eq!(eps.len(), 2, "the freed pair came back as a spare");
        assert_eq!(pool.wanted(), 2);
        assert!(pool.take().is_ok());
    }

    #[test]
    fn prompts_are_played_by_name_and_recordings_written_on_stop_or_close() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("en");
        std::fs::create_dir(&set).unwrap();
        std::fs::write(set.join("beep.ulaw"), [0x10u8; 480]).unwrap();
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31710, 31719);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        relay.set_events(tx.clone());
        let mut eps = Endpoints::new(relay).with_prompts(Some(set));
        let mut pool = Pool::new(2);
        eps.serve(&mut pool);
        let a = pool.take().unwrap();
        let party = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        party
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        a.set_remote(Some(party.local_addr().unwrap()), false);
        a.play_prompt("beep", 0, false);
        assert!(a.playing());
        eps.serve(&mut pool);
        let mut buf = [0u8; 512];
        let mut got = 0;
        while got < 480 {
            let (n, _) = party.recv_from(&mut buf).unwrap();
            assert!(buf[12..n].iter().all(|b| *b == 0x10));
            got += n - 12;
        }
        let next = |events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::Event>| {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
            loop {
                if let Ok(e) = events.try_recv() {
                    return e;
                }
                assert!(std::time::Instant::now() < end, "no event");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        assert_eq!(
            next(&mut events),
            crate::Event::PlayDone { endpoint: a.id() }
        );
        // A missing prompt is done at once.
        a.play_prompt("vm-nothing", 0, false);
        eps.serve(&mut pool);
        assert_eq!(
            next(&mut events),
            crate::Event::PlayDone { endpoint: a.id() }
        );
        // A file plays, and a missing file gives way to its fallback prompt.
        let greeting = dir.path().join("greeting.wav");
        std::fs::write(&greeting, crate::player::wav_bytes(&[0; 320])).unwrap();
        for (path, fallback, len) in [
            (greeting.clone(), None, 320),
            (dir.path().join("none.wav"), Some("beep"), 480),
        ] {
            a.play_file(path, fallback, 0, false);
            eps.serve(&mut pool);
            let mut got = 0;
            while got < len {
                let (n, _) = party.recv_from(&mut buf).unwrap();
                got += n - 12;
            }
            assert_eq!(got, len);
            assert_eq!(
                next(&mut events),
                crate::Event::PlayDone { endpoint: a.id() }
            );
        }

        // Recording: what the party sends goes into the file when it stops.
        let to = ("127.0.0.1", a.port);
        let rtp = |seq: u8| {
            let mut p = vec![0x80, 0, 0, seq, 0, 0, 0, seq, 1, 2, 3, 4];
            p.extend_from_slice(&[0x00; 160]);
            p
        };
        let msg = dir.path().join("box/101/1.wav");
        a.record(msg.clone(), 8000);
        assert!(a.recording());
        eps.serve(&mut pool);
        for i in 0..5 {
            party.send_to(&rtp(i), to).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        a.stop_recording();
        a.stop_recording(); // once is enough
        eps.serve(&mut pool);
        match next(&mut events) {
            crate::Event::Recorded {
                path, samples, ok, ..
            } => {
                assert_eq!((path, samples, ok), (msg.clone(), 800, true));
            }
            e => panic!("{e:?}"),
        }
        let clip = Clip::load(&msg).unwrap();
        assert_eq!(clip.len(), 800);
        assert!(!dir.path().join("box/101/1.part").exists());
        // A recording the caller hangs up on is written when the endpoint closes.
        let msg2 = dir.path().join("box/101/2.wav");
        a.record(msg2.clone(), 8000);
        eps.serve(&mut pool);
        party.send_to(&rtp(9), to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(a);
        eps.serve(&mut pool);
        assert!(matches!(
            next(&mut events),
            crate::Event::Recorded {
                samples: 160,
                ok: true,
                ..
            }
        ));
        assert_eq!(Clip::load(&msg2).unwrap().len(), 160);
        // The same name again is written beside it, and shutting down writes what
        // is being recorded.
        let c = pool.take().unwrap();
        c.record(msg2.clone(), 8000);
        eps.serve(&mut pool);
        eps.shutdown();
        match next(&mut events) {
            crate::Event::Recorded { path, ok: true, .. } => {
                assert_eq!(path, dir.path().join("box/101/2-1.wav"));
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(Clip::load(&msg2).unwrap().len(), 160, "the first is kept");
        assert!(eps.is_empty());
        drop(c);
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31720, 31729);
        relay.set_events(tx);
        let mut eps = Endpoints::new(relay);
        let mut pool = Pool::new(2);
        eps.serve(&mut pool);
        // A full box takes no more.
        let full = dir.path().join("full");
        std::fs::create_dir(&full).unwrap();
        for i in 0..MAX_RECORDINGS {
            std::fs::write(full.join(format!("{i}.wav")), b"").unwrap();
        }
        let b = pool.take().unwrap();
        b.record(full.join("new.wav"), 8000);
        eps.serve(&mut pool);
        assert!(matches!(
            next(&mut events),
            crate::Event::Recorded {
                samples: 0,
                ok: false,
                ..
            }
        ));
        drop(b);
        eps.serve(&mut pool);
        assert!(!full.join("new.wav").exists());
        // A greeting recorded on the phone replaces one: a full box still takes it.
        assert!(folder_full(&full.join("new.wav")));
        assert!(!folder_full(&full.join("greeting-new-7.wav")));
    }

    #[test]
    fn a_long_recording_is_written_out_as_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31740, 31749);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        relay.set_events(tx);
        let mut eps = Endpoints::new(relay);
        let mut pool = Pool::new(2);
        eps.serve(&mut pool);
        let a = pool.take().unwrap();
        let party = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = ("127.0.0.1", a.port);
        let send = |from: usize, n: usize| {
            for i in from..from + n {
                let mut p = vec![0x80, 0, (i >> 8) as u8, i as u8, 0, 0, 0, 0, 1, 2, 3, 4];
                // µ-law 0xff is silence (0); each packet carries its number's low byte.
                p.extend_from_slice(&[(i % 100) as u8; 160]);
                party.send_to(&p, to).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(500));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let path = dir.path().join("calls/long.wav");
        a.record(path.clone(), 8000 * 3600);
        eps.serve(&mut pool);
        // 12 s of audio: more than the spool threshold, written out on the flush.
        send(0, 600);
        eps.flush_recordings();
        eps.flush_recordings(); // nothing new: nothing written
        let spool = path.with_extension("spool");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(&spool).map_or(0, |m| m.len()) < 44 + 600 * 320 {
            assert!(
                std::time::Instant::now() < end,
                "the spool holds what was taken"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(std::fs::metadata(&spool).unwrap().len(), 44 + 600 * 320);
        send(600, 50);
        a.stop_recording();
        eps.serve(&mut pool);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let ev = loop {
            if let Ok(e) = events.try_recv() {
                break e;
            }
            assert!(std::time::Instant::now() < end, "no event");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        match ev {
            crate::Event::Recorded {
                path: p,
                samples,
                ok,
                ..
            } => assert_eq!((p, samples, ok), (path.clone(), 650 * 160, true)),
            e => panic!("{e:?}"),
        }
        assert!(!spool.exists());
        let clip = Clip::load(&path).unwrap();
        assert_eq!(clip.len(), 650 * 160);
        // In order: packet 0, then 1, ... 649 (each its own byte).
        let s = clip.samples();
        for i in [0usize, 1, 599, 600, 649] {
            assert_eq!(
                s[i * 160],
                crate::g711::linear_to_ulaw(crate::g711::ulaw_to_linear((i % 100) as u8)),
                "packet {i}"
            );
        }
    }

    #[test]
    fn packets_that_did_not_come_are_recorded_as_silence() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::new("127.0.0.1".parse().unwrap(), 31750, 31759);
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        relay.set_events(tx);
        let mut eps = Endpoints::new(relay);
        let mut pool = Pool::new(2);
        eps.serve(&mut pool);
        let a = pool.take().unwrap();
        let party = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let send = |ts: u32, ssrc: u8| {
            let mut p = vec![0x80, 0, 0, 0];
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, ssrc]);
            p.extend_from_slice(&[0x10; 160]);
            party.send_to(&p, ("127.0.0.1", a.port)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let path = dir.path().join("gap.wav");
        a.record(path.clone(), 8000 * 60);
        eps.serve(&mut pool);
        // 0, 160, then 960: four packets' worth (640 samples) never came. A new source
        // starting anywhere is no gap.
        send(0, 1);
        send(160, 1);
        send(960, 1);
        send(5000, 2);
        std::thread::sleep(std::time::Duration::from_millis(100));
        a.stop_recording();
        eps.serve(&mut pool);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let samples = loop {
            if let Ok(crate::Event::Recorded { samples, .. }) = events.try_recv() {
                break samples;
            }
            assert!(std::time::Instant::now() < end, "no event");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(samples, 4 * 160 + 640);
        let clip = Clip::load(&path).unwrap();
        let s = clip.samples();
        assert_ne!(s[320], s[320 + 640], "silence, then the third packet");
        assert_eq!(s[320..960], [s[320]; 640]);
    }
}
