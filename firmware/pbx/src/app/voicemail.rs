//! Leaving a voicemail message (Kerio 17, Kalliope's voicemail box): the caller of an
//! extension whose forwarding sends it to voicemail hears the invitation to leave a
//! message and a beep, and what it says is recorded into the extension's box until it
//! presses `#` (then hears that the message is saved), hangs up, or the longest message
//! is reached.
//!
//! The greeting is the user's own for the cause (`greeting-busy.wav` or
//! `greeting-unavailable.wav` in the box's folder, uploaded in the portal or recorded
//! in the voicemail menu; the temporary greeting `greeting-temp.wav` for both), else the
//! prompt `vm-intro` ("Please leave your message after the tone. When done, hang up, or
//! press the pound key."); then the prompts `beep`, `vm-msgsaved` and `vm-goodbye`. A message is a WAV file in the box's folder named
//! `<unix seconds>-<call>-<caller>.wav`.

use super::{AppEvent, Application, Context};
use std::path::PathBuf;
use std::time::Duration;

/// The longest message (Kalliope and Asterisk default to a few minutes).
pub const MAX_MESSAGE: Duration = Duration::from_secs(180);

/// How long the greeting and beep may take before recording starts anyway (a prompt
/// set without them reports them done at once).
const GREETING_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Beep,
    Recording,
    Saved,
    Goodbye,
}

/// The greeting a box plays: the user's own for the cause, when uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// The extension was busy.
    Busy,
    /// Nobody answered, or no phone could be reached.
    Unavailable,
}

impl Greeting {
    /// The greeting's file in the box's folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Greeting::Busy => "greeting-busy.wav",
            Greeting::Unavailable => "greeting-unavailable.wav",
        }
    }
}

/// A caller leaving a message in one box.
#[derive(Debug)]
pub struct LeaveMessage {
    /// The box's folder.
    dir: PathBuf,
    greeting: Greeting,
    /// The box has a temporary greeting (played for every cause).
    temp: bool,
    step: Step,
}

impl LeaveMessage {
    /// A message for the box in folder `dir`, greeted for `greeting`.
    pub fn new(dir: PathBuf, greeting: Greeting) -> LeaveMessage {
        LeaveMessage {
            dir,
            greeting,
            temp: false,
            step: Step::Greeting,
        }
    }

    /// Whether the box's temporary greeting is played instead of the cause's.
    pub fn with_temp_greeting(mut self, temp: bool) -> LeaveMessage {
        self.temp = temp;
        self
    }

    fn record(&mut self, cx: &mut Context) {
        self.step = Step::Recording;
        let caller: String = cx
            .caller
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
            .take(32)
            .collect();
        let caller = if caller.is_empty() {
            "unknown".to_string()
        } else {
            caller
        };
        let name = format!("{}-{}-{caller}.wav", cx.unix, cx.call);
        cx.record(self.dir.join(name), MAX_MESSAGE);
        cx.timer(MAX_MESSAGE);
    }

    fn save(&mut self, cx: &mut Context) {
        self.step = Step::Saved;
        cx.stop_recording();
        cx.play_prompt("vm-msgsaved");
        cx.timer(GREETING_LIMIT);
    }
}

impl Application for LeaveMessage {
    fn name(&self) -> &'static str {
        "voicemail"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        match (self.step, event) {
            (Step::Greeting, AppEvent::Started) => {
                // The user's greeting for the cause, else the box's invitation.
                let file = if self.temp {
                    store::voicemail::TEMP_GREETING
                } else {
                    self.greeting.file_name()
                };
                cx.play_file(self.dir.join(file), Some("vm-intro"));
                cx.timer(GREETING_LIMIT);
            }
            (Step::Greeting, AppEvent::PlayDone) => {
                self.step = Step::Beep;
                cx.play_prompt("beep");
            }
            (Step::Beep, AppEvent::PlayDone) => self.record(cx),
            (Step::Greeting | Step::Beep, AppEvent::Timer) => self.record(cx),
            (Step::Recording, AppEvent::Dtmf('#') | AppEvent::Timer) => self.save(cx),
            (Step::Saved, AppEvent::PlayDone) => {
                self.step = Step::Goodbye;
                cx.play_prompt("vm-goodbye");
            }
            (Step::Goodbye, AppEvent::PlayDone)
            | (Step::Saved | Step::Goodbye, AppEvent::Timer) => cx.hang_up(),
            // The caller gone: the exchange closes the endpoint, which writes what was
            // recorded.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Action;
    use std::time::Instant;

    fn run(app: &mut LeaveMessage, ev: AppEvent) -> Vec<String> {
        let mut cx = Context::new(Instant::now(), "+420 601-002");
        cx.unix = 1_700_000_000;
        cx.call = 7;
        app.handle(ev, &mut cx);
        cx.take_actions()
            .into_iter()
            .map(|a| match a {
                Action::PlayPrompt(p) => format!("prompt {p}"),
                Action::PlayFile { path, fallback } => {
                    format!(
                        "file {} or {}",
                        path.display(),
                        fallback.unwrap_or_default()
                    )
                }
                Action::Record { path, max } => {
                    format!("record {} {}", path.display(), max.as_secs())
                }
                Action::StopRecording => "stop".into(),
                Action::Timer(d) => format!("timer {}", d.as_secs()),
                Action::HangUp => "hang up".into(),
                a => format!("{a:?}"),
            })
            .collect()
    }

    #[test]
    fn greeting_beep_record_until_hash_then_saved_and_goodbye() {
        let mut app = LeaveMessage::new("/data/voicemail/102".into(), Greeting::Unavailable);
        assert_eq!(
            run(&mut app, AppEvent::Started),
            [
                "file /data/voicemail/102/greeting-unavailable.wav or vm-intro",
                "timer 60"
            ]
        );
        // Digits during the greeting change nothing.
        assert!(run(&mut app, AppEvent::Dtmf('#')).is_empty());
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["prompt beep"]);
        assert_eq!(
            run(&mut app, AppEvent::PlayDone),
            [
                "record /data/voicemail/102/1700000000-7-+420601002.wav 180",
                "timer 180"
            ]
        );
        assert!(run(&mut app, AppEvent::Dtmf('5')).is_empty());
        assert_eq!(
            run(&mut app, AppEvent::Dtmf('#')),
            ["stop", "prompt vm-msgsaved", "timer 60"]
        );
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["prompt vm-goodbye"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["hang up"]);
    }

    #[test]
    fn the_longest_message_is_saved_and_a_hang_up_needs_nothing() {
        let mut app = LeaveMessage::new("/v/102".into(), Greeting::Busy);
        assert_eq!(
            run(&mut app, AppEvent::Started)[0],
            "file /v/102/greeting-busy.wav or vm-intro"
        );
        // A prompt set that never reports its greeting done: recording starts anyway.
        assert_eq!(run(&mut app, AppEvent::Timer)[1], "timer 180");
        assert_eq!(
            run(&mut app, AppEvent::Timer),
            ["stop", "prompt vm-msgsaved", "timer 60"]
        );
        assert_eq!(run(&mut app, AppEvent::Timer), ["hang up"]);
        let mut gone = LeaveMessage::new("/v/102".into(), Greeting::Unavailable);
        run(&mut gone, AppEvent::Started);
        run(&mut gone, AppEvent::PlayDone);
        run(&mut gone, AppEvent::PlayDone);
        assert!(run(&mut gone, AppEvent::Hangup).is_empty());
    }
}
