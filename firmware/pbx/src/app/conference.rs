//! A conference room (Kerio 13): the caller keys the room's PIN when it has one, then
//! joins the room's mixer and hears everyone else; `*` mutes and unmutes the caller.
//! The exchange keeps who is in which room, plays the entry and exit tones and refuses
//! a caller when the room is full ([`AppEvent::Joined`] or [`AppEvent::Full`]).

use super::{AppEvent, Application, Context};
use std::time::Duration;

/// Wrong PINs before the box hangs up.
pub const PIN_TRIES: u32 = 3;
/// How long the box waits for the PIN.
const PIN_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Asking for the PIN: what was keyed so far.
    Pin,
    /// "Invalid PIN" plays; then the PIN is asked again.
    Invalid,
    /// Waiting for the exchange to put the caller in.
    Joining,
    In,
    /// A last prompt plays; then the box hangs up.
    Bye,
}

#[derive(Debug)]
pub struct ConferenceRoom {
    room: String,
    pin: String,
    step: Step,
    digits: String,
    tries: u32,
    /// Too many wrong PINs lately: nobody gets in for a while.
    locked: bool,
}

impl ConferenceRoom {
    pub fn new(room: &str, pin: &str) -> ConferenceRoom {
        ConferenceRoom {
            room: room.to_string(),
            pin: pin.to_string(),
            step: Step::Pin,
            digits: String::new(),
            tries: 0,
            locked: false,
        }
    }

    /// The room refuses everyone for now ("the conference is locked").
    pub fn locked(mut self) -> ConferenceRoom {
        self.locked = true;
        self
    }

    /// What the exchange counts a room's wrong PINs under.
    pub fn pin_key(room: &str) -> String {
        format!("conference {room}")
    }

    fn ask_pin(&mut self, cx: &mut Context) {
        self.step = Step::Pin;
        self.digits.clear();
        cx.play_prompt("conf-getpin");
        cx.timer(PIN_WAIT);
    }

    fn join(&mut self, cx: &mut Context) {
        self.step = Step::Joining;
        cx.stop_playing();
        cx.join(&self.room);
    }

    fn bye(&mut self, cx: &mut Context, prompt: &str) {
        self.step = Step::Bye;
        cx.stop_playing();
        cx.play_prompt(prompt);
        cx.timer(Duration::from_secs(10));
    }

    fn check(&mut self, cx: &mut Context) {
        if self.digits == self.pin {
            return self.join(cx);
        }
        self.tries += 1;
        cx.request(crate::Request::PinFailed {
            ext: Self::pin_key(&self.room),
        });
        if self.tries >= PIN_TRIES {
            tracing::warn!(
                room = self.room,
                caller = cx.caller,
                "security: wrong conference PINs"
            );
            return self.bye(cx, "conf-invalidpin");
        }
        self.step = Step::Invalid;
        cx.stop_playing();
        cx.play_prompt("conf-invalidpin");
    }
}

impl Application for ConferenceRoom {
    fn name(&self) -> &'static str {
        "conference"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        match (&self.step, event) {
            (_, AppEvent::Hangup) => {}
            (Step::Pin, AppEvent::Started) if self.locked => self.bye(cx, "conf-locked"),
            (Step::Pin, AppEvent::Started) if self.pin.is_empty() => self.join(cx),
            (Step::Pin, AppEvent::Started) => self.ask_pin(cx),
            (Step::Pin, AppEvent::Dtmf('#')) => self.check(cx),
            (Step::Pin, AppEvent::Dtmf(d)) => {
                if self.digits.len() <= self.pin.len() {
                    self.digits.push(d);
                }
                cx.stop_playing();
                cx.timer(PIN_WAIT);
                // The right PIN lets the caller in without the pound key.
                if self.digits == self.pin {
                    self.join(cx);
                }
            }
            (Step::Pin, AppEvent::Timer) if !self.digits.is_empty() => self.check(cx),
            (Step::Pin, AppEvent::Timer) => self.bye(cx, "vm-goodbye"),
            (Step::Invalid, AppEvent::PlayDone) => self.ask_pin(cx),
            (Step::Joining, AppEvent::Joined { others }) => {
                self.step = Step::In;
                if others == 0 {
                    cx.play_prompt("conf-onlyperson");
                }
            }
            (Step::Joining, AppEvent::Full) => self.bye(cx, "conf-full"),
            (Step::In, AppEvent::Dtmf('*')) => cx.toggle_mute(),
            (Step::In, AppEvent::Muted(muted)) => {
                cx.stop_playing();
                cx.play_prompt(if muted { "conf-muted" } else { "conf-unmuted" });
            }
            (Step::Bye, AppEvent::PlayDone | AppEvent::Timer) => cx.hang_up(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Action;
    use std::time::Instant;

    fn run(app: &mut ConferenceRoom, ev: AppEvent) -> Vec<String> {
        let mut cx = Context::new(Instant::now(), "101");
        app.handle(ev, &mut cx);
        cx.take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::PlayPrompt(p) => Some(format!("play {p}")),
                Action::Join { room } => Some(format!("join {room}")),
                Action::ToggleMute => Some("toggle mute".into()),
                Action::Request(crate::Request::PinFailed { ext }) => Some(format!("failed {ext}")),
                Action::HangUp => Some("hang up".into()),
                Action::StopPlaying | Action::Timer(_) => None,
                other => Some(format!("{other:?}")),
            })
            .collect()
    }

    #[test]
    fn an_open_room_is_joined_at_once() {
        let mut app = ConferenceRoom::new("800", "");
        assert_eq!(run(&mut app, AppEvent::Started), ["join 800"]);
        assert_eq!(
            run(&mut app, AppEvent::Joined { others: 0 }),
            ["play conf-onlyperson"]
        );
        assert!(run(&mut app, AppEvent::Dtmf('5')).is_empty());
        assert_eq!(run(&mut app, AppEvent::Dtmf('*')), ["toggle mute"]);
        assert_eq!(run(&mut app, AppEvent::Muted(true)), ["play conf-muted"]);
        assert_eq!(run(&mut app, AppEvent::Muted(false)), ["play conf-unmuted"]);
        assert!(run(&mut app, AppEvent::Hangup).is_empty());
    }

    #[test]
    fn the_pin_is_asked_three_times_at_most() {
        let mut app = ConferenceRoom::new("800", "4711");
        assert_eq!(run(&mut app, AppEvent::Started), ["play conf-getpin"]);
        for d in "12".chars() {
            assert!(run(&mut app, AppEvent::Dtmf(d)).is_empty());
        }
        assert_eq!(
            run(&mut app, AppEvent::Dtmf('#')),
            ["failed conference 800", "play conf-invalidpin"]
        );
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["play conf-getpin"]);
        // A pause after some digits counts as the pound key.
        run(&mut app, AppEvent::Dtmf('9'));
        assert_eq!(
            run(&mut app, AppEvent::Timer),
            ["failed conference 800", "play conf-invalidpin"]
        );
        run(&mut app, AppEvent::PlayDone);
        // Too many digits are never the PIN, even when it is a prefix.
        for d in "4712222".chars() {
            run(&mut app, AppEvent::Dtmf(d));
        }
        assert_eq!(
            run(&mut app, AppEvent::Dtmf('#')),
            ["failed conference 800", "play conf-invalidpin"]
        );
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["hang up"]);
        // A room locked after many wrong PINs lets nobody key one.
        let mut app = ConferenceRoom::new("800", "4711").locked();
        assert_eq!(run(&mut app, AppEvent::Started), ["play conf-locked"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["hang up"]);
    }

    #[test]
    fn the_right_pin_joins_and_a_full_room_says_so() {
        let mut app = ConferenceRoom::new("800", "4711");
        run(&mut app, AppEvent::Started);
        for d in "471".chars() {
            assert!(run(&mut app, AppEvent::Dtmf(d)).is_empty());
        }
        assert_eq!(run(&mut app, AppEvent::Dtmf('1')), ["join 800"]);
        // The pound key after it changes nothing.
        assert!(run(&mut app, AppEvent::Dtmf('#')).is_empty());
        assert!(run(&mut app, AppEvent::Joined { others: 2 }).is_empty());

        let mut app = ConferenceRoom::new("800", "");
        run(&mut app, AppEvent::Started);
        assert_eq!(run(&mut app, AppEvent::Full), ["play conf-full"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["hang up"]);
        // Nobody keying anything is sent away.
        let mut app = ConferenceRoom::new("800", "1");
        run(&mut app, AppEvent::Started);
        assert_eq!(run(&mut app, AppEvent::Timer), ["play vm-goodbye"]);
        assert_eq!(run(&mut app, AppEvent::Timer), ["hang up"]);
    }
}
