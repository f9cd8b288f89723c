//! Applications: the box itself answering a call: the echo test, leaving a voicemail
//! message, the voicemail menu, the auto attendant, conference rooms and call queues
//! (their callers and their agents' login codes).
//!
//! An application is a sans-IO state machine. The exchange answers the caller, gives
//! the application what happens on that leg ([`AppEvent`]: started, a keypad digit, a
//! clip played out, its timer, the caller gone) and carries out what it asks for
//! ([`Action`]: play a clip or a prompt, echo, record, set a timer, hang up) on the
//! caller's media endpoint and
//! dialog. Applications never see SIP, sockets or the clock; their tests feed events
//! and read the actions.

mod attendant;
mod conference;
mod dnd;
mod echo;
mod park;
mod queue;
mod vm_menu;
mod voicemail;

pub use attendant::{Attendant, AttendantEnv};
pub use conference::ConferenceRoom;
pub use dnd::DndSwitch;
pub use echo::EchoTest;
pub use park::ParkAnnounce;
pub use queue::{AgentLogin, QueueCaller};
pub use vm_menu::VoicemailMenu;
pub use voicemail::{Greeting, LeaveMessage, MAX_MESSAGE};

use std::time::{Duration, Instant};

/// What happened to an application's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// The caller was answered and hears the application from now on.
    Started,
    /// A keypad digit (RFC 4733, SIP INFO or heard in-band).
    Dtmf(char),
    /// A clip played once has ended.
    PlayDone,
    /// The timer the application set has come.
    Timer,
    /// A recording the application made is written (`samples` at 8 kHz; not `ok`
    /// when nothing could be written).
    Recorded {
        path: std::path::PathBuf,
        samples: usize,
        ok: bool,
    },
    /// The caller is in the conference room it asked to join, with `others` there.
    Joined { others: usize },
    /// The conference room is full: the caller is not in.
    Full,
    /// Whether the others in its conference room hear the caller now (after its own
    /// `*`, which cannot undo the administrator's mute).
    Muted(bool),
    /// The caller waits in the queue it asked to enter ([`Context::queue`] tells
    /// where).
    Queued,
    /// The queue did not take the caller (full, or no agent logged in), or put it out
    /// (the last agent logged out): it goes to the queue's fallback.
    QueueRefused,
    /// The agent login or logout asked for is done (`ok`), or the caller is not an
    /// extension that can be an agent.
    AgentLogged { ok: bool },
    /// The caller hung up; the application's last event.
    Hangup,
}

/// What an application asks the exchange to do on its caller's leg.
#[derive(Debug, Clone)]
pub enum Action {
    /// Play a clip once; [`AppEvent::PlayDone`] follows.
    PlayOnce(media::Clip),
    /// Play a prompt of the box's prompt set once; [`AppEvent::PlayDone`] follows (at
    /// once when the set has no such prompt).
    PlayPrompt(String),
    /// Play an audio file once (a user's greeting), or the prompt `fallback` when there
    /// is none; [`AppEvent::PlayDone`] follows.
    PlayFile {
        path: std::path::PathBuf,
        fallback: Option<String>,
    },
    /// Record what the caller says into the WAV file `path`, at most `max` (written
    /// when it stops or the caller hangs up).
    Record {
        path: std::path::PathBuf,
        max: Duration,
    },
    /// End the recording.
    StopRecording,
    /// Stop what is playing (no [`AppEvent::PlayDone`] follows).
    StopPlaying,
    /// Something for the driver to do on the card or in the configuration.
    Request(crate::Request),
    /// Send the caller's own audio back to it.
    Echo,
    /// Set the application's one timer (a later one replaces it).
    Timer(Duration),
    /// End the call from the box's side.
    HangUp,
    /// The application ends and the exchange rings `number` for the caller, as if
    /// dialled (outside numbers checked against permission group `groups`).
    Dial { number: String, groups: String },
    /// The caller joins conference room `room`; [`AppEvent::Joined`] or
    /// [`AppEvent::Full`] follows.
    Join { room: String },
    /// The caller mutes or unmutes itself in its conference room;
    /// [`AppEvent::Muted`] follows.
    ToggleMute,
    /// Music on hold from collection `music` (empty: the default one) until something
    /// else plays.
    Music(String),
    /// The caller enters call queue `queue` and waits for an agent;
    /// [`AppEvent::Queued`] or [`AppEvent::QueueRefused`] follows.
    EnterQueue { queue: String },
    /// The caller leaves its queue (its wait is over); agents ringing for it stop.
    LeaveQueue,
    /// The caller (an extension) logs in to or out of queue `queue` as an agent;
    /// [`AppEvent::AgentLogged`] follows.
    AgentLogin { queue: String, login: bool },
}

/// Where a caller waiting in a queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1 for the next caller to be served.
    pub position: usize,
    /// Seconds the caller can expect to wait (the queue's average wait of answered
    /// callers), when calls were answered already.
    pub estimate: Option<u64>,
}

/// The system prompts saying `n` (0 to 999): "digits/3", "digits/hundred", ...
pub(crate) fn number_prompts(n: usize) -> Vec<String> {
    let mut v = Vec::new();
    let mut n = n.min(999);
    if n >= 100 {
        v.push(format!("digits/{}", n / 100));
        v.push("digits/hundred".to_string());
        n %= 100;
        if n == 0 {
            return v;
        }
    }
    if n > 20 && !n.is_multiple_of(10) {
        v.push(format!("digits/{}", n / 10 * 10));
        v.push(format!("digits/{}", n % 10));
    } else {
        v.push(format!("digits/{n}"));
    }
    v
}

/// What an application sees of its call, and where its actions go.
#[derive(Debug)]
pub struct Context {
    pub now: Instant,
    /// The caller's number (its extension for a phone).
    pub caller: String,
    /// Wall time, seconds since the Unix epoch (for naming what is recorded).
    pub unix: u64,
    /// The call's number in the exchange.
    pub call: u64,
    /// Wall time in the box's time zone: Unix seconds plus the zone's offset (for
    /// time conditions).
    pub local: i64,
    /// Where the caller waits, when it is in a call queue.
    pub queue: Option<QueuePlace>,
    actions: Vec<Action>,
}

impl Context {
    pub fn new(now: Instant, caller: &str) -> Context {
        Context {
            now,
            caller: caller.to_string(),
            unix: 0,
            call: 0,
            local: 0,
            queue: None,
            actions: Vec::new(),
        }
    }

    pub fn play_once(&mut self, clip: media::Clip) {
        self.actions.push(Action::PlayOnce(clip));
    }

    pub fn play_prompt(&mut self, name: &str) {
        self.actions.push(Action::PlayPrompt(name.to_string()));
    }

    pub fn play_file(&mut self, path: std::path::PathBuf, fallback: Option<&str>) {
        self.actions.push(Action::PlayFile {
            path,
            fallback: fallback.map(str::to_string),
        });
    }

    pub fn record(&mut self, path: std::path::PathBuf, max: Duration) {
        self.actions.push(Action::Record { path, max });
    }

    pub fn stop_recording(&mut self) {
        self.actions.push(Action::StopRecording);
    }

    pub fn stop_playing(&mut self) {
        self.actions.push(Action::StopPlaying);
    }

    pub fn request(&mut self, r: crate::Request) {
        self.actions.push(Action::Request(r));
    }

    pub fn echo(&mut self) {
        self.actions.push(Action::Echo);
    }

    pub fn timer(&mut self, after: Duration) {
        self.actions.push(Action::Timer(after));
    }

    pub fn dial(&mut self, number: &str, groups: &str) {
        self.actions.push(Action::Dial {
            number: number.to_string(),
            groups: groups.to_string(),
        });
    }

    pub fn join(&mut self, room: &str) {
        self.actions.push(Action::Join {
            room: room.to_string(),
        });
    }

    pub fn toggle_mute(&mut self) {
        self.actions.push(Action::ToggleMute);
    }

    pub fn music(&mut self, collection: &str) {
        self.actions.push(Action::Music(collection.to_string()));
    }

    pub fn enter_queue(&mut self, queue: &str) {
        self.actions.push(Action::EnterQueue {
            queue: queue.to_string(),
        });
    }

    pub fn leave_queue(&mut self) {
        self.actions.push(Action::LeaveQueue);
    }

    pub fn agent_login(&mut self, queue: &str, login: bool) {
        self.actions.push(Action::AgentLogin {
            queue: queue.to_string(),
            login,
        });
    }

    pub fn hang_up(&mut self) {
        self.actions.push(Action::HangUp);
    }

    /// What the application asked for, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }
}

/// A call answered by the box.
pub trait Application: Send {
    /// The name the call history and `pbxctl calls` show as the answering party.
    fn name(&self) -> &'static str;

    /// Something happened to the caller; the application acts through `cx`.
    fn handle(&mut self, event: AppEvent, cx: &mut Context);

    /// The parking slot this call was told (the park code's announcement), kept for it.
    fn park_slot(&self) -> Option<&str> {
        None
    }
}

/// What an application does on `ev`, as words: the prompts it plays, `timer <s>`,
/// `hang up`, and any other action as it prints (for the applications' tests).
#[cfg(test)]
pub(crate) fn said(app: &mut dyn Application, ev: AppEvent) -> Vec<String> {
    let mut cx = Context::new(Instant::now(), "101");
    app.handle(ev, &mut cx);
    cx.take_actions()
        .into_iter()
        .map(|a| match a {
            Action::PlayPrompt(p) => p,
            Action::Timer(d) => format!("timer {}", d.as_secs()),
            Action::HangUp => "hang up".into(),
            other => format!("{other:?}"),
        })
        .collect()
}
