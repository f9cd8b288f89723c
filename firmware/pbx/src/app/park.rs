//! The park code's announcement: a phone that dials the park code (usually in a
//! consultation call, its other call on hold) hears the first free parking slot, digit
//! by digit, again every few seconds; completing the transfer then parks the held
//! call in that slot (`Pbx::park`). The slot is kept for this call while it lasts, so
//! two parkers are never told the same slot.

use super::{AppEvent, Application, Context};
use std::time::Duration;

/// Times the slot is said before the box hangs up.
const REPEATS: u32 = 5;

#[derive(Debug)]
pub struct ParkAnnounce {
    slot: String,
    /// Prompts left of the current announcement.
    left: Vec<String>,
    said: u32,
}

impl ParkAnnounce {
    pub fn new(slot: &str) -> ParkAnnounce {
        ParkAnnounce {
            slot: slot.to_string(),
            left: Vec::new(),
            said: 0,
        }
    }

    fn say(&mut self, cx: &mut Context) {
        self.said += 1;
        self.left = self
            .slot
            .chars()
            .rev()
            .map(|c| match c {
                '*' => "digits/star".to_string(),
                '#' => "digits/pound".to_string(),
                d => format!("digits/{d}"),
            })
            .collect();
        self.next(cx);
    }

    fn next(&mut self, cx: &mut Context) {
        match self.left.pop() {
            Some(p) => cx.play_prompt(&p),
            None if self.said >= REPEATS => cx.hang_up(),
            None => cx.timer(Duration::from_secs(2)),
        }
    }
}

impl Application for ParkAnnounce {
    fn name(&self) -> &'static str {
        "call park"
    }

    fn park_slot(&self) -> Option<&str> {
        Some(&self.slot)
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        match event {
            AppEvent::Started | AppEvent::Timer => self.say(cx),
            AppEvent::PlayDone => self.next(cx),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(app: &mut ParkAnnounce, ev: AppEvent) -> Vec<String> {
        crate::app::said(app, ev)
    }

    #[test]
    fn the_slot_is_said_digit_by_digit_five_times() {
        let mut app = ParkAnnounce::new("*71");
        assert_eq!(app.park_slot(), Some("*71"));
        assert_eq!(run(&mut app, AppEvent::Started), ["digits/star"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["digits/7"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["digits/1"]);
        assert_eq!(run(&mut app, AppEvent::PlayDone), ["timer 2"]);
        for _ in 0..4 {
            assert_eq!(run(&mut app, AppEvent::Timer), ["digits/star"]);
            run(&mut app, AppEvent::PlayDone);
            run(&mut app, AppEvent::PlayDone);
            let last = run(&mut app, AppEvent::PlayDone);
            assert!(last == ["timer 2"] || last == ["hang up"], "{last:?}");
        }
        // Keys do nothing.
        assert!(run(&mut app, AppEvent::Dtmf('1')).is_empty());
    }
}
