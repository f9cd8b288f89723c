//! The voicemail menu (Kerio 17.1's voicemail access extension, Kalliope's service
//! PIN): a phone's user dials the access number and, after its service PIN, hears how
//! many new and old messages its box holds, listens to them, deletes or keeps them,
//! leaves a message in a colleague's box, records its greetings and changes its PIN.
//!
//! The keys are the ones the box's English prompts (Asterisk's core sounds) announce,
//! so every option the caller hears is one that works:
//!
//! - login: the PIN and `#` (three wrong PINs end the call; no PIN set: no login);
//! - main menu: `1` new messages (the old ones when there is no new one), `2` old
//!   messages, `3` leave a message in another box, `0` greetings and PIN, `*` the menu
//!   again, `#` goodbye;
//! - a message: `4` previous, `5` again, `6` next, `7` or `0` delete / undelete, `9`
//!   keep it (as heard) and go on, `*` the main menu, `#` goodbye;
//! - greetings and PIN: `1` unavailable greeting, `2` busy greeting, `4` the temporary
//!   greeting (recorded, or removed when there is one), `5` new PIN, `*` the main menu;
//!   `3` (recording one's name) is not offered by this box and says so;
//! - a recorded greeting: `1` keep, `2` listen, `3` record again, `*` drop.
//!
//! A message played is heard (it becomes old); what was deleted or heard is carried
//! out when the caller leaves the message list or hangs up, so a deletion can be undone
//! until then.

use super::{AppEvent, Application, Context, LeaveMessage};
use crate::Request;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;
use store::voicemail::{Message, TEMP_GREETING};

/// How long the box waits for a key after it has spoken, and between the digits of
/// a PIN or a box number.
const KEY_WAIT: Duration = Duration::from_secs(8);

/// How long a prompt may take before it counts as played (a prompt set that never
/// reports one done does not leave the caller in silence).
const PROMPT_LIMIT: Duration = Duration::from_secs(30);

/// How long a message or greeting may play before it counts as played.
const FILE_LIMIT: Duration = Duration::from_secs(200);

/// The longest greeting recorded on the phone (the portal's limit).
const MAX_GREETING: Duration = Duration::from_secs(120);

/// The shortest greeting kept (half a second, in samples at 8 kHz).
const MIN_GREETING_SAMPLES: usize = 4000;

/// Wrong PINs, and menus left unanswered, before the box says goodbye.
const TRIES: u32 = 3;

/// The longest PIN (config validation asks for at least four digits).
const MAX_PIN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Say {
    Prompt(String),
    File(PathBuf),
}

fn p(name: &str) -> Say {
    Say::Prompt(name.to_string())
}

/// Prompts saying `n` (0 to 999).
fn number(n: usize) -> Vec<Say> {
    super::number_prompts(n)
        .into_iter()
        .map(Say::Prompt)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Greeting {
    Unavailable,
    Busy,
    Temporary,
}

impl Greeting {
    fn file(&self) -> &'static str {
        match self {
            Greeting::Unavailable => "greeting-unavailable.wav",
            Greeting::Busy => "greeting-busy.wav",
            Greeting::Temporary => TEMP_GREETING,
        }
    }

    fn invitation(&self) -> &'static str {
        match self {
            Greeting::Unavailable => "vm-rec-unv",
            Greeting::Busy => "vm-rec-busy",
            Greeting::Temporary => "vm-rec-temp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Login,
    Menu,
    /// Listening to `list` (indices of messages), at `pos`.
    Messages {
        list: Vec<usize>,
        pos: usize,
    },
    Options,
    /// The invitation and beep, then recording, then waiting for the file.
    Recording {
        greeting: Greeting,
        started: bool,
    },
    Stopping(Greeting),
    Review {
        greeting: Greeting,
        file: PathBuf,
    },
    NewPin {
        first: Option<String>,
    },
    OtherBox,
    /// A message for another box: its own application runs.
    Leaving,
    Goodbye,
}

#[derive(Debug, Clone)]
struct Entry {
    m: Message,
    deleted: bool,
    heard: bool,
}

/// New ones first, then old; oldest first within each (as they were left).
fn sort(messages: &mut [Entry]) {
    messages.sort_by(|a, b| {
        b.m.new
            .cmp(&a.m.new)
            .then(a.m.unix.cmp(&b.m.unix))
            .then(a.m.id.cmp(&b.m.id))
    });
}

/// A user in its voicemail box.
pub struct VoicemailMenu {
    ext: String,
    /// The voicemail folder (each box is a folder in it).
    root: PathBuf,
    pin: String,
    /// Boxes a message can be left in (option 3), with whether each has a temporary
    /// greeting.
    boxes: Vec<(String, bool)>,
    temp_greeting: bool,
    messages: Vec<Entry>,
    state: State,
    speech: VecDeque<Say>,
    speaking: bool,
    digits: String,
    tries: u32,
    inner: Option<LeaveMessage>,
    /// Too many wrong PINs lately: the box says so and hangs up.
    locked: bool,
}

impl VoicemailMenu {
    /// The box of extension `ext` (folder `root/ext`) holding `messages`; `pin` is the
    /// extension's service PIN (empty: none asked).
    pub fn new(
        ext: &str,
        root: PathBuf,
        pin: &str,
        messages: Vec<Message>,
        temp_greeting: bool,
        boxes: Vec<(String, bool)>,
    ) -> VoicemailMenu {
        let mut messages: Vec<Entry> = messages
            .into_iter()
            .map(|m| Entry {
                m,
                deleted: false,
                heard: false,
            })
            .collect();
        sort(&mut messages);
        VoicemailMenu {
            ext: ext.to_string(),
            root,
            pin: pin.to_string(),
            boxes,
            temp_greeting,
            messages,
            state: State::Login,
            speech: VecDeque::new(),
            speaking: false,
            digits: String::new(),
            tries: 0,
            inner: None,
            locked: false,
        }
    }

    /// A box locked after too many wrong PINs: the caller hears "login incorrect" and
    /// goodbye, whatever it keys.
    pub fn locked(mut self) -> VoicemailMenu {
        self.locked = true;
        self
    }

    fn dir(&self) -> PathBuf {
        store::voicemail::box_dir(&self.root, &self.ext)
    }

    /// Speaks `items` (what was being said stops).
    fn say(&mut self, cx: &mut Context, items: Vec<Say>) {
        if self.speaking {
            cx.stop_playing();
        }
        self.speech = items.into();
        self.speaking = false;
        self.next(cx);
    }

    /// Plays what comes next, or, when all is said, what the state does then.
    fn next(&mut self, cx: &mut Context) {
        match self.speech.pop_front() {
            Some(Say::Prompt(name)) => {
                self.speaking = true;
                cx.play_prompt(&name);
                cx.timer(PROMPT_LIMIT);
            }
            Some(Say::File(path)) => {
                self.speaking = true;
                cx.play_file(path, None);
                cx.timer(FILE_LIMIT);
            }
            None => {
                self.speaking = false;
                self.spoken(cx);
            }
        }
    }

    /// Everything said: wait for a key, or go on.
    fn spoken(&mut self, cx: &mut Context) {
        match &mut self.state {
            State::Recording { started, .. } if !*started => {
                *started = true;
                let path = self.dir().join(format!(
                    "{}{}.wav",
                    store::voicemail::NEW_GREETING_PREFIX,
                    cx.call
                ));
                cx.record(path, MAX_GREETING);
                cx.timer(MAX_GREETING);
            }
            State::Goodbye => cx.hang_up(),
            _ => cx.timer(KEY_WAIT),
        }
    }

    fn new_count(&self) -> usize {
        self.messages.iter().filter(|e| e.m.new && !e.heard).count()
    }

    fn old_count(&self) -> usize {
        self.messages.len() - self.new_count()
    }

    fn menu_prompts(&self) -> Vec<Say> {
        let folder = if self.new_count() > 0 {
            "vm-INBOX"
        } else {
            "vm-Old"
        };
        vec![
            p("vm-onefor-full"),
            p(folder),
            p("vm-messages"),
            p("vm-opts-full"),
            p("vm-helpexit"),
        ]
    }

    /// "You have 2 new messages and 1 old message", then the main menu.
    fn enter_menu(&mut self, cx: &mut Context, summary: bool) {
        self.state = State::Menu;
        self.tries = 0;
        let mut v = Vec::new();
        if summary {
            let (new, old) = (self.new_count(), self.old_count());
            let plural = |n| p(if n == 1 { "vm-message" } else { "vm-messages" });
            v.push(p("vm-youhave"));
            if new == 0 && old == 0 {
                v.extend([p("vm-no"), p("vm-messages")]);
            } else {
                if new > 0 {
                    v.extend(number(new));
                    v.extend([p("vm-INBOX"), plural(new)]);
                }
                if new > 0 && old > 0 {
                    v.push(p("vm-and"));
                }
                if old > 0 {
                    v.extend(number(old));
                    v.extend([p("vm-Old"), plural(old)]);
                }
            }
        }
        v.extend(self.menu_prompts());
        self.say(cx, v);
    }

    fn enter_options(&mut self, cx: &mut Context, before: Vec<Say>) {
        self.state = State::Options;
        self.tries = 0;
        let mut v = before;
        if self.temp_greeting {
            v.push(p("vm-tempgreetactive"));
        }
        v.push(p("vm-options"));
        self.say(cx, v);
    }

    fn goodbye(&mut self, cx: &mut Context) {
        self.flush(cx);
        self.state = State::Goodbye;
        self.say(cx, vec![p("vm-goodbye")]);
    }

    /// Carries out the deletions and what was heard.
    fn flush(&mut self, cx: &mut Context) {
        let ext = self.ext.clone();
        self.messages.retain_mut(|e| {
            if e.deleted {
                cx.request(Request::DeleteMessage {
                    ext: ext.clone(),
                    id: e.m.id.clone(),
                });
                return false;
            }
            if e.heard && e.m.new {
                cx.request(Request::MarkHeard {
                    ext: ext.clone(),
                    id: e.m.id.clone(),
                });
                e.m.new = false;
            }
            e.heard = false;
            true
        });
        sort(&mut self.messages);
    }

    fn open_folder(&mut self, cx: &mut Context, new: bool) {
        let list: Vec<usize> = (0..self.messages.len())
            .filter(|&i| self.messages[i].m.new == new)
            .collect();
        if list.is_empty() {
            let mut v = vec![p("vm-no"), p(if new { "vm-INBOX" } else { "vm-Old" })];
            v.push(p("vm-messages"));
            v.extend(self.menu_prompts());
            self.tries = 0;
            return self.say(cx, v);
        }
        self.state = State::Messages { list, pos: 0 };
        self.play_message(cx, vec![]);
    }

    fn instructions() -> Vec<Say> {
        vec![p("vm-msginstruct"), p("vm-savemessage"), p("vm-starmain")]
    }

    /// Announces and plays the message at the current position.
    fn play_message(&mut self, cx: &mut Context, before: Vec<Say>) {
        let State::Messages { list, pos } = &self.state else {
            return;
        };
        let (i, pos, len) = (list[*pos], *pos, list.len());
        self.tries = 0;
        let mut v = before;
        if pos == 0 {
            v.extend([p("vm-first"), p("vm-message")]);
        } else if pos + 1 == len {
            v.extend([p("vm-last"), p("vm-message")]);
        } else {
            v.push(p("vm-message"));
            v.extend(number(pos + 1));
        }
        let e = &mut self.messages[i];
        let caller = e.m.caller.trim_start_matches('+');
        if !caller.is_empty() && caller.len() <= 20 && caller.bytes().all(|b| b.is_ascii_digit()) {
            let known = self.boxes.iter().any(|(b, _)| b == caller) || caller == self.ext;
            v.push(p(if known {
                "vm-from-extension"
            } else {
                "vm-from-phonenumber"
            }));
            v.extend(caller.chars().map(|d| p(&format!("digits/{d}"))));
        } else {
            v.push(p("vm-unknown-caller"));
        }
        let name = if e.m.new {
            format!("{}.wav", e.m.id)
        } else {
            format!("{}.old.wav", e.m.id)
        };
        v.push(Say::File(
            store::voicemail::box_dir(&self.root, &self.ext).join(name),
        ));
        // Played: heard (it becomes old when the caller leaves the list).
        e.heard = true;
        v.extend(Self::instructions());
        self.say(cx, v);
    }

    /// Moves to the next message, or back to the menu after the last.
    fn advance(&mut self, cx: &mut Context, before: Vec<Say>) {
        let State::Messages { list, pos } = &mut self.state else {
            return;
        };
        if *pos + 1 < list.len() {
            *pos += 1;
            self.play_message(cx, before);
        } else {
            self.flush(cx);
            let mut v = before;
            v.push(p("vm-nomore"));
            self.state = State::Menu;
            self.tries = 0;
            v.extend(self.menu_prompts());
            self.say(cx, v);
        }
    }

    fn on_key(&mut self, cx: &mut Context, d: char) {
        match self.state.clone() {
            State::Login | State::NewPin { .. } | State::OtherBox => {
                if self.speaking {
                    cx.stop_playing();
                    self.speech.clear();
                    self.speaking = false;
                }
                if d == '#' {
                    let digits = std::mem::take(&mut self.digits);
                    return self.entered(cx, digits);
                }
                if d.is_ascii_digit() && self.digits.len() < 20 {
                    self.digits.push(d);
                }
                cx.timer(KEY_WAIT);
            }
            State::Menu => match d {
                '1' => {
                    let new = self.new_count() > 0;
                    self.open_folder(cx, new)
                }
                '2' => self.open_folder(cx, false),
                '3' => {
                    self.state = State::OtherBox;
                    self.digits.clear();
                    self.say(cx, vec![p("vm-whichbox"), p("vm-then-pound")]);
                }
                '0' => self.enter_options(cx, vec![]),
                '*' => self.enter_menu(cx, false),
                '#' => self.goodbye(cx),
                _ => {
                    let mut v = vec![p("vm-sorry")];
                    v.extend(self.menu_prompts());
                    self.say(cx, v);
                }
            },
            State::Messages { list, pos } => match d {
                '4' if pos > 0 => {
                    self.state = State::Messages { list, pos: pos - 1 };
                    self.play_message(cx, vec![]);
                }
                '4' => self.say(cx, [vec![p("vm-nomore")], Self::instructions()].concat()),
                '5' => self.play_message(cx, vec![]),
                '6' => self.advance(cx, vec![]),
                '7' | '0' => {
                    let e = &mut self.messages[list[pos]];
                    e.deleted = !e.deleted;
                    if e.deleted {
                        self.advance(cx, vec![p("vm-deleted")]);
                    } else {
                        self.say(cx, [vec![p("vm-undeleted")], Self::instructions()].concat());
                    }
                }
                '9' => {
                    self.messages[list[pos]].deleted = false;
                    self.advance(cx, vec![p("vm-msgsaved")]);
                }
                '*' => {
                    self.flush(cx);
                    self.enter_menu(cx, false);
                }
                '#' => self.goodbye(cx),
                _ => self.say(cx, [vec![p("vm-sorry")], Self::instructions()].concat()),
            },
            State::Options => match d {
                '1' => self.record_greeting(cx, Greeting::Unavailable),
                '2' => self.record_greeting(cx, Greeting::Busy),
                '4' if self.temp_greeting => {
                    self.temp_greeting = false;
                    cx.request(Request::RemoveGreeting {
                        ext: self.ext.clone(),
                        file: TEMP_GREETING,
                    });
                    self.enter_options(cx, vec![p("vm-tempremoved")]);
                }
                '4' => self.record_greeting(cx, Greeting::Temporary),
                '5' => {
                    self.state = State::NewPin { first: None };
                    self.digits.clear();
                    self.say(cx, vec![p("vm-newpassword")]);
                }
                '*' => self.enter_menu(cx, false),
                '#' => self.goodbye(cx),
                _ => self.enter_options(cx, vec![p("vm-sorry")]),
            },
            State::Recording {
                greeting,
                started: true,
            } if d == '#' => {
                cx.stop_recording();
                self.state = State::Stopping(greeting);
                // The file is written on the driver's side; its report follows.
                cx.timer(KEY_WAIT);
            }
            State::Review { greeting, file } => match d {
                '1' => {
                    cx.request(Request::InstallGreeting {
                        ext: self.ext.clone(),
                        recorded: file,
                        file: greeting.file(),
                    });
                    if greeting == Greeting::Temporary {
                        self.temp_greeting = true;
                    }
                    self.enter_options(cx, vec![p("vm-msgsaved")]);
                }
                '2' => self.say(cx, vec![Say::File(file), p("vm-review")]),
                '3' => {
                    cx.request(Request::DiscardRecording { path: file });
                    self.record_greeting(cx, greeting);
                }
                '*' | '#' => {
                    cx.request(Request::DiscardRecording { path: file });
                    self.enter_options(cx, vec![]);
                }
                _ => self.say(cx, vec![p("vm-sorry"), p("vm-review")]),
            },
            _ => {}
        }
    }

    fn record_greeting(&mut self, cx: &mut Context, greeting: Greeting) {
        let first = greeting.invitation();
        self.state = State::Recording {
            greeting,
            started: false,
        };
        self.say(cx, vec![p(first), p("beep")]);
    }

    /// Digits entered (with `#`, or when the caller stopped typing).
    fn entered(&mut self, cx: &mut Context, digits: String) {
        match self.state.clone() {
            State::Login => {
                if digits == self.pin {
                    cx.request(Request::PinOk {
                        ext: self.ext.clone(),
                    });
                    self.enter_menu(cx, true);
                } else {
                    cx.request(Request::PinFailed {
                        ext: self.ext.clone(),
                    });
                    self.tries += 1;
                    if self.tries >= TRIES {
                        self.state = State::Goodbye;
                        self.say(cx, vec![p("vm-incorrect"), p("vm-goodbye")]);
                    } else {
                        self.say(cx, vec![p("vm-incorrect"), p("agent-pass")]);
                    }
                }
            }
            State::NewPin { first: None } => {
                if digits.len() < 4 || digits.len() > MAX_PIN {
                    return self.enter_options(cx, vec![p("vm-invalid-password")]);
                }
                self.state = State::NewPin {
                    first: Some(digits),
                };
                self.say(cx, vec![p("vm-reenterpassword")]);
            }
            State::NewPin { first: Some(first) } => {
                if first != digits {
                    return self.enter_options(cx, vec![p("vm-mismatch")]);
                }
                cx.request(Request::ServicePin {
                    ext: self.ext.clone(),
                    pin: digits.clone(),
                });
                self.pin = digits;
                self.enter_options(cx, vec![p("vm-passchanged")]);
            }
            State::OtherBox => match self.boxes.iter().find(|(b, _)| *b == digits).cloned() {
                Some((b, temp)) => {
                    if self.speaking {
                        cx.stop_playing();
                        self.speaking = false;
                    }
                    self.flush(cx);
                    self.state = State::Leaving;
                    let mut leave = LeaveMessage::new(
                        store::voicemail::box_dir(&self.root, &b),
                        super::Greeting::Unavailable,
                    )
                    .with_temp_greeting(temp);
                    leave.handle(AppEvent::Started, cx);
                    self.inner = Some(leave);
                }
                None => {
                    self.state = State::Menu;
                    let mut v = vec![p("invalid")];
                    v.extend(self.menu_prompts());
                    self.say(cx, v);
                }
            },
            _ => {}
        }
    }

    fn on_timer(&mut self, cx: &mut Context) {
        if self.speaking {
            // A prompt that never reported its end: go on.
            return self.next(cx);
        }
        match self.state.clone() {
            State::Login | State::NewPin { .. } | State::OtherBox => {
                let digits = std::mem::take(&mut self.digits);
                if digits.is_empty() && self.state != State::Login {
                    return self.enter_menu(cx, false);
                }
                self.entered(cx, digits)
            }
            State::Recording { greeting, .. } => {
                cx.stop_recording();
                self.state = State::Stopping(greeting);
                cx.timer(KEY_WAIT);
            }
            // No report of the recording: it is not kept.
            State::Stopping(_) => self.enter_options(cx, vec![p("vm-sorry")]),
            State::Goodbye => cx.hang_up(),
            State::Leaving => {}
            _ => {
                self.tries += 1;
                if self.tries >= TRIES {
                    return self.goodbye(cx);
                }
                let again = match &self.state {
                    State::Messages { .. } => Self::instructions(),
                    State::Options => vec![p("vm-options")],
                    State::Review { .. } => vec![p("vm-review")],
                    _ => self.menu_prompts(),
                };
                let tries = self.tries;
                self.say(cx, again);
                self.tries = tries;
            }
        }
    }
}

impl Application for VoicemailMenu {
    fn name(&self) -> &'static str {
        "voicemail menu"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        if let Some(inner) = self.inner.as_mut() {
            return inner.handle(event, cx);
        }
        match event {
            AppEvent::Started if self.locked => {
                self.state = State::Goodbye;
                self.say(cx, vec![p("vm-incorrect"), p("vm-goodbye")]);
            }
            AppEvent::Started => {
                if self.pin.is_empty() {
                    self.enter_menu(cx, true);
                } else {
                    self.say(cx, vec![p("agent-pass")]);
                }
            }
            AppEvent::PlayDone if self.speaking => self.next(cx),
            AppEvent::PlayDone => {}
            AppEvent::Dtmf(d) => self.on_key(cx, d),
            AppEvent::Timer => self.on_timer(cx),
            AppEvent::Recorded { path, samples, ok } => {
                if let State::Stopping(greeting) = self.state.clone() {
                    if ok && samples >= MIN_GREETING_SAMPLES {
                        self.state = State::Review {
                            greeting,
                            file: path,
                        };
                        self.tries = 0;
                        self.say(cx, vec![p("vm-review")]);
                    } else {
                        cx.request(Request::DiscardRecording { path });
                        self.enter_options(cx, vec![p("vm-tooshort")]);
                    }
                } else {
                    // A greeting the caller did not wait for.
                    cx.request(Request::DiscardRecording { path });
                }
            }
            AppEvent::Joined { .. }
            | AppEvent::Full
            | AppEvent::Muted(_)
            | AppEvent::Queued
            | AppEvent::QueueRefused
            | AppEvent::AgentLogged { .. } => {}
            AppEvent::Hangup => {
                self.flush(cx);
                if let State::Review { file, .. } = &self.state {
                    cx.request(Request::DiscardRecording { path: file.clone() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Action;
    use std::time::Instant;

    fn msg(id: &str, unix: u64, caller: &str, new: bool) -> Message {
        Message {
            id: id.into(),
            unix,
            caller: caller.into(),
            seconds: 3,
            new,
        }
    }

    /// The actions for `ev`, as words; `PlayDone`s are fed until the box waits.
    fn run(app: &mut VoicemailMenu, ev: AppEvent) -> Vec<String> {
        let mut out = Vec::new();
        let mut ev = Some(ev);
        while let Some(e) = ev.take() {
            let mut cx = Context::new(Instant::now(), "101");
            cx.call = 9;
            cx.unix = 1_700_000_000;
            app.handle(e, &mut cx);
            for a in cx.take_actions() {
                out.push(match a {
                    Action::PlayPrompt(p) => {
                        ev = Some(AppEvent::PlayDone);
                        p
                    }
                    Action::PlayFile { path, .. } => {
                        ev = Some(AppEvent::PlayDone);
                        format!("file {}", path.display())
                    }
                    Action::Record { path, max } => {
                        format!("record {} {}", path.display(), max.as_secs())
                    }
                    Action::StopRecording => "stop recording".into(),
                    Action::StopPlaying => "stop".into(),
                    Action::Timer(_) => continue,
                    Action::HangUp => "hang up".into(),
                    // PIN bookkeeping is the exchange's (tested there).
                    Action::Request(
                        crate::Request::PinFailed { .. } | crate::Request::PinOk { .. },
                    ) => continue,
                    Action::Request(r) => format!("{r:?}"),
                    a => format!("{a:?}"),
                });
            }
        }
        out
    }

    fn keys(app: &mut VoicemailMenu, keys: &str) -> Vec<String> {
        keys.chars()
            .flat_map(|k| run(app, AppEvent::Dtmf(k)))
            .collect()
    }

    fn menu() -> VoicemailMenu {
        VoicemailMenu::new(
            "101",
            "/v".into(),
            "4321",
            vec![
                msg("1700000300-5-+420601002", 1_700_000_300, "+420601002", true),
                msg("1700000100-3-102", 1_700_000_100, "102", true),
                msg("1600000000-1-unknown", 1_600_000_000, "unknown", false),
            ],
            false,
            vec![("101".into(), false), ("102".into(), true)],
        )
    }

    const MENU: [&str; 5] = [
        "vm-onefor-full",
        "vm-INBOX",
        "vm-messages",
        "vm-opts-full",
        "vm-helpexit",
    ];

    #[test]
    fn the_pin_opens_the_box_and_three_wrong_ones_end_the_call() {
        let mut app = menu();
        assert_eq!(run(&mut app, AppEvent::Started), ["agent-pass"]);
        assert_eq!(keys(&mut app, "12#"), ["vm-incorrect", "agent-pass"]);
        // Typing cuts the prompt short.
        run(&mut app, AppEvent::Dtmf('4'));
        let got = keys(&mut app, "321#");
        let want: Vec<String> = [
            "vm-youhave",
            "digits/2",
            "vm-INBOX",
            "vm-messages",
            "vm-and",
            "digits/1",
            "vm-Old",
            "vm-message",
        ]
        .into_iter()
        .chain(MENU)
        .map(String::from)
        .collect();
        assert_eq!(got, want);

        let mut app = menu();
        run(&mut app, AppEvent::Started);
        keys(&mut app, "1#");
        // Stopping typing counts as the pound key.
        assert_eq!(
            run(&mut app, AppEvent::Timer),
            ["vm-incorrect", "agent-pass"]
        );
        assert_eq!(
            keys(&mut app, "9#"),
            ["vm-incorrect", "vm-goodbye", "hang up"]
        );
    }

    #[test]
    fn messages_are_played_oldest_new_first_deleted_kept_and_carried_out_at_the_end() {
        let mut app = menu();
        run(&mut app, AppEvent::Started);
        keys(&mut app, "4321#");
        let first = keys(&mut app, "1");
        assert_eq!(
            first,
            [
                "vm-first",
                "vm-message",
                "vm-from-extension",
                "digits/1",
                "digits/0",
                "digits/2",
                "file /v/101/1700000100-3-102.wav",
                "vm-msginstruct",
                "vm-savemessage",
                "vm-starmain"
            ]
        );
        // 7 deletes and goes on to the last new message, from an outside number.
        let second = keys(&mut app, "7");
        assert_eq!(
            second[..4],
            ["vm-deleted", "vm-last", "vm-message", "vm-from-phonenumber"]
        );
        assert!(second.contains(&"file /v/101/1700000300-5-+420601002.wav".to_string()));
        // Back, undelete, then to the end of the list: the menu, nothing done yet.
        assert!(keys(&mut app, "4").contains(&"file /v/101/1700000100-3-102.wav".to_string()));
        assert_eq!(keys(&mut app, "0")[0], "vm-undeleted");
        assert_eq!(keys(&mut app, "7")[0], "vm-deleted");
        let end = keys(&mut app, "6");
        assert_eq!(
            end[..3],
            [
                r#"DeleteMessage { ext: "101", id: "1700000100-3-102" }"#,
                r#"MarkHeard { ext: "101", id: "1700000300-5-+420601002" }"#,
                "vm-nomore"
            ]
        );
        // Both heard: the menu offers the old ones, now two.
        assert_eq!(end[3..5], ["vm-onefor-full", "vm-Old"]);
        let old = keys(&mut app, "2");
        assert!(old.contains(&"file /v/101/1600000000-1-unknown.old.wav".to_string()));
        assert!(old.contains(&"vm-unknown-caller".to_string()));
        let next = keys(&mut app, "6");
        assert!(next.contains(&"file /v/101/1700000300-5-+420601002.old.wav".to_string()));
        assert_eq!(keys(&mut app, "#"), ["vm-goodbye", "hang up"]);
    }

    #[test]
    fn a_hang_up_carries_out_what_was_heard_and_no_pin_means_no_login() {
        let mut app = VoicemailMenu::new(
            "101",
            "/v".into(),
            "",
            vec![msg("1-2-3", 1, "3", true)],
            false,
            vec![],
        );
        let start = run(&mut app, AppEvent::Started);
        assert_eq!(
            start[..4],
            ["vm-youhave", "digits/1", "vm-INBOX", "vm-message"]
        );
        keys(&mut app, "1");
        assert_eq!(
            run(&mut app, AppEvent::Hangup),
            [r#"MarkHeard { ext: "101", id: "1-2-3" }"#]
        );
        // An empty box says so.
        let mut empty = VoicemailMenu::new("101", "/v".into(), "", vec![], false, vec![]);
        assert_eq!(
            run(&mut empty, AppEvent::Started)[..3],
            ["vm-youhave", "vm-no", "vm-messages"]
        );
        assert_eq!(
            keys(&mut empty, "1")[..3],
            ["vm-no", "vm-Old", "vm-messages"]
        );
    }

    #[test]
    fn a_greeting_is_recorded_reviewed_and_kept_or_dropped() {
        let mut app = menu();
        run(&mut app, AppEvent::Started);
        keys(&mut app, "4321#");
        assert_eq!(keys(&mut app, "0"), ["vm-options"]);
        assert_eq!(
            keys(&mut app, "2"),
            [
                "vm-rec-busy",
                "beep",
                "record /v/101/greeting-new-9.wav 120"
            ]
        );
        assert_eq!(keys(&mut app, "#"), ["stop recording"]);
        let file = PathBuf::from("/v/101/greeting-new-9.wav");
        let rec = |samples| AppEvent::Recorded {
            path: file.clone(),
            samples,
            ok: true,
        };
        assert_eq!(run(&mut app, rec(16_000)), ["vm-review"]);
        assert_eq!(
            keys(&mut app, "2"),
            ["file /v/101/greeting-new-9.wav", "vm-review"]
        );
        assert_eq!(
            keys(&mut app, "1"),
            [
                r#"InstallGreeting { ext: "101", recorded: "/v/101/greeting-new-9.wav", file: "greeting-busy.wav" }"#,
                "vm-msgsaved",
                "vm-options"
            ]
        );
        // Too short: not kept.
        keys(&mut app, "1#");
        assert_eq!(
            run(&mut app, rec(100)),
            [
                r#"DiscardRecording { path: "/v/101/greeting-new-9.wav" }"#,
                "vm-tooshort",
                "vm-options"
            ]
        );
        // The temporary greeting: recorded, then announced and removed.
        keys(&mut app, "4#");
        run(&mut app, rec(8000));
        keys(&mut app, "1");
        assert_eq!(
            keys(&mut app, "4"),
            [
                r#"RemoveGreeting { ext: "101", file: "greeting-temp.wav" }"#,
                "vm-tempremoved",
                "vm-options"
            ]
        );
        // Hanging up in review drops the recording.
        keys(&mut app, "1#");
        run(&mut app, rec(8000));
        assert_eq!(
            run(&mut app, AppEvent::Hangup),
            [r#"DiscardRecording { path: "/v/101/greeting-new-9.wav" }"#]
        );
    }

    #[test]
    fn a_locked_box_says_so_and_hangs_up() {
        let mut app = menu().locked();
        assert_eq!(
            run(&mut app, AppEvent::Started),
            ["vm-incorrect", "vm-goodbye", "hang up"]
        );
    }

    #[test]
    fn wrong_and_right_pins_are_reported_to_the_exchange() {
        let mut app = menu();
        let mut cx = Context::new(Instant::now(), "101");
        app.handle(AppEvent::Started, &mut cx);
        for d in "12#4321#".chars() {
            app.handle(AppEvent::Dtmf(d), &mut cx);
        }
        let reports: Vec<String> = cx
            .take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Request(r) => Some(format!("{r:?}")),
                _ => None,
            })
            .collect();
        assert_eq!(
            reports,
            [r#"PinFailed { ext: "101" }"#, r#"PinOk { ext: "101" }"#]
        );
    }

    #[test]
    fn the_pin_is_changed_when_entered_twice_alike() {
        let mut app = menu();
        run(&mut app, AppEvent::Started);
        keys(&mut app, "4321#0");
        assert_eq!(keys(&mut app, "5"), ["vm-newpassword"]);
        assert_eq!(keys(&mut app, "12#"), ["vm-invalid-password", "vm-options"]);
        keys(&mut app, "5");
        assert_eq!(keys(&mut app, "55555#"), ["vm-reenterpassword"]);
        assert_eq!(keys(&mut app, "55556#"), ["vm-mismatch", "vm-options"]);
        keys(&mut app, "555555#");
        assert_eq!(
            keys(&mut app, "55555#"),
            [
                r#"ServicePin { ext: "101", pin: "55555" }"#,
                "vm-passchanged",
                "vm-options"
            ]
        );
    }

    #[test]
    fn a_message_is_left_in_another_box_and_a_wrong_box_is_refused() {
        let mut app = menu();
        run(&mut app, AppEvent::Started);
        keys(&mut app, "4321#");
        assert_eq!(keys(&mut app, "3"), ["vm-whichbox", "vm-then-pound"]);
        let wrong = keys(&mut app, "999#");
        assert_eq!(wrong[..2], ["invalid", "vm-onefor-full"]);
        keys(&mut app, "3");
        // Box 102 has a temporary greeting: the caller hears it.
        let got = keys(&mut app, "102#");
        assert_eq!(got[0], "file /v/102/greeting-temp.wav");
        assert_eq!(got[1], "beep");
        assert!(got[2].starts_with("record /v/102/1700000000-9-101.wav"));
    }

    #[test]
    fn silence_repeats_a_menu_then_ends_the_call_and_numbers_are_spoken() {
        let mut app = menu();
        run(&mut app, AppEvent::Started);
        keys(&mut app, "4321#");
        assert_eq!(run(&mut app, AppEvent::Timer), MENU);
        assert_eq!(run(&mut app, AppEvent::Timer), MENU);
        assert_eq!(run(&mut app, AppEvent::Timer), ["vm-goodbye", "hang up"]);
        let say = |n| {
            number(n)
                .into_iter()
                .map(|s| match s {
                    Say::Prompt(p) => p,
                    Say::File(_) => unreachable!(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(say(0), "digits/0");
        assert_eq!(say(20), "digits/20");
        assert_eq!(say(42), "digits/40 digits/2");
        assert_eq!(say(200), "digits/2 digits/hundred");
        assert_eq!(say(115), "digits/1 digits/hundred digits/15");
    }
}
