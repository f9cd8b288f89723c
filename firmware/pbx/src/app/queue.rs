//! A caller waiting in a call queue (Kerio 14), and an agent's login and logout codes.
//!
//! The caller hears the queue's music; its place in the queue is said on entering and
//! every `position_seconds` (with the estimated hold time when the queue says so), the
//! periodic announcement every `periodic_seconds`. After `max_wait_seconds`, or when
//! the queue refuses or puts it out, it goes to the queue's fallback (or hears goodbye).
//! Handing the caller to an agent is the exchange's business (`Pbx::queue_dispatch`):
//! when an agent answers, the application simply ends.

use super::{number_prompts, AppEvent, Application, Context};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The prompt asking callers to hold for the next representative.
const PERIODIC_PROMPT: &str = "queue-periodic-announce";

#[derive(Debug)]
pub struct QueueCaller {
    queue: config::Queue,
    /// Where uploaded sounds are (`<name>.wav`), before system prompts of that name.
    sounds: PathBuf,
    /// In the queue (from [`AppEvent::Queued`] until it leaves).
    waiting: bool,
    deadline: Option<Instant>,
    next_position: Option<Instant>,
    next_periodic: Option<Instant>,
    /// Sounds left of the announcement being said; empty: music plays.
    speech: VecDeque<String>,
    /// The caller left (a fallback or goodbye is under way).
    gone: bool,
}

impl QueueCaller {
    pub fn new(queue: config::Queue, sounds: PathBuf) -> QueueCaller {
        QueueCaller {
            queue,
            sounds,
            waiting: false,
            deadline: None,
            next_position: None,
            next_periodic: None,
            speech: VecDeque::new(),
            gone: false,
        }
    }

    fn secs(s: u32) -> Option<Duration> {
        (s > 0).then(|| Duration::from_secs(s.into()))
    }

    /// What the caller hears of its place: "you are next", or "there are N calls
    /// waiting", then the estimated hold time when asked for.
    fn position_speech(&self, cx: &Context) -> Vec<String> {
        let Some(place) = cx.queue else {
            return Vec::new();
        };
        let mut v = Vec::new();
        if place.position <= 1 {
            v.push("queue-youarenext".to_string());
        } else {
            v.push("queue-thereare".to_string());
            v.extend(number_prompts(place.position - 1));
            v.push("queue-callswaiting".to_string());
        }
        if let Some(secs) = place.estimate.filter(|_| self.queue.hold_time) {
            v.push("queue-holdtime".to_string());
            let minutes = secs.div_ceil(60) as usize;
            if minutes <= 1 {
                v.push("queue-less-than".to_string());
                v.extend(number_prompts(1));
                v.push("queue-minute".to_string());
            } else {
                v.extend(number_prompts(minutes));
                v.push("queue-minutes".to_string());
            }
        }
        v.push("queue-thankyou".to_string());
        v
    }

    fn say(&mut self, cx: &mut Context, sounds: Vec<String>) {
        self.speech.extend(sounds);
        self.next(cx);
    }

    fn next(&mut self, cx: &mut Context) {
        match self.speech.pop_front() {
            Some(s) => {
                let path = self.sounds.join(format!("{s}.wav"));
                cx.play_file(path, Some(&s));
            }
            None => {
                cx.music(&self.queue.music);
            }
        }
        self.arm(cx);
    }

    /// The one timer: the end of the wait, and (while music plays) the next
    /// announcement.
    fn arm(&self, cx: &mut Context) {
        let quiet = self.speech.is_empty();
        let next = [
            self.deadline,
            self.next_position.filter(|_| quiet),
            self.next_periodic.filter(|_| quiet),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = next {
            cx.timer(at.saturating_duration_since(cx.now));
        }
    }

    /// The wait is over: the fallback, or goodbye.
    fn leave(&mut self, cx: &mut Context) {
        self.gone = true;
        self.speech.clear();
        if self.waiting {
            cx.leave_queue();
            self.waiting = false;
        }
        if self.queue.fallback.is_empty() {
            cx.stop_playing();
            cx.play_prompt("vm-goodbye");
        } else {
            cx.dial(&self.queue.fallback, "");
        }
    }
}

impl Application for QueueCaller {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        if self.gone {
            if event == AppEvent::PlayDone {
                cx.hang_up();
            }
            return;
        }
        match event {
            AppEvent::Started => cx.enter_queue(&self.queue.number),
            AppEvent::Queued => {
                self.waiting = true;
                let now = cx.now;
                self.deadline = Self::secs(self.queue.max_wait_seconds).map(|d| now + d);
                self.next_periodic = Self::secs(self.queue.periodic_seconds).map(|d| now + d);
                match Self::secs(self.queue.position_seconds) {
                    Some(d) => {
                        self.next_position = Some(now + d);
                        let s = self.position_speech(cx);
                        self.say(cx, s);
                    }
                    None => self.next(cx),
                }
            }
            AppEvent::QueueRefused => {
                self.waiting = false;
                self.leave(cx);
            }
            AppEvent::PlayDone if !self.speech.is_empty() || self.waiting => self.next(cx),
            AppEvent::Timer => {
                let now = cx.now;
                if self.deadline.is_some_and(|d| d <= now) {
                    return self.leave(cx);
                }
                if !self.speech.is_empty() {
                    return self.arm(cx);
                }
                let mut say = Vec::new();
                if let (Some(at), Some(d)) =
                    (self.next_position, Self::secs(self.queue.position_seconds))
                {
                    if at <= now {
                        self.next_position = Some(now + d);
                        say.extend(self.position_speech(cx));
                    }
                }
                if let (Some(at), Some(d)) =
                    (self.next_periodic, Self::secs(self.queue.periodic_seconds))
                {
                    if at <= now {
                        self.next_periodic = Some(now + d);
                        say.push(if self.queue.periodic_sound.is_empty() {
                            PERIODIC_PROMPT.to_string()
                        } else {
                            self.queue.periodic_sound.clone()
                        });
                    }
                }
                if say.is_empty() {
                    self.arm(cx);
                } else {
                    self.say(cx, say);
                }
            }
            _ => {}
        }
    }
}

/// An extension dialling a queue's login or logout code: the exchange changes its
/// state, the caller hears "agent logged in", "agent logged off" or (not an
/// extension) "incorrect", and the box hangs up.
#[derive(Debug)]
pub struct AgentLogin {
    queue: String,
    login: bool,
    said: bool,
}

impl AgentLogin {
    pub fn new(queue: &str, login: bool) -> AgentLogin {
        AgentLogin {
            queue: queue.to_string(),
            login,
            said: false,
        }
    }
}

impl Application for AgentLogin {
    fn name(&self) -> &'static str {
        "queue agent login"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        match event {
            AppEvent::Started => cx.agent_login(&self.queue, self.login),
            AppEvent::AgentLogged { ok } => {
                self.said = true;
                cx.play_prompt(match (ok, self.login) {
                    (false, _) => "agent-incorrect",
                    (true, true) => "agent-loginok",
                    (true, false) => "agent-loggedoff",
                });
            }
            AppEvent::PlayDone if self.said => cx.hang_up(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Action, QueuePlace};

    struct Run {
        app: QueueCaller,
        now: Instant,
        place: Option<QueuePlace>,
    }

    impl Run {
        fn new(q: config::Queue) -> Run {
            Run {
                app: QueueCaller::new(q, PathBuf::from("/sounds")),
                now: Instant::now(),
                place: Some(QueuePlace {
                    position: 3,
                    estimate: None,
                }),
            }
        }

        fn ev(&mut self, ev: AppEvent) -> Vec<String> {
            let mut cx = Context::new(self.now, "101");
            cx.queue = self.place;
            self.app.handle(ev, &mut cx);
            cx.take_actions()
                .into_iter()
                .map(|a| match a {
                    Action::PlayFile { fallback, .. } => fallback.unwrap_or_default(),
                    Action::PlayPrompt(p) => p,
                    Action::Timer(d) => format!("timer {}", d.as_secs()),
                    Action::Music(m) => format!("music {m}"),
                    Action::EnterQueue { queue } => format!("enter {queue}"),
                    Action::LeaveQueue => "leave".into(),
                    Action::Dial { number, .. } => format!("dial {number}"),
                    Action::HangUp => "hang up".into(),
                    Action::StopPlaying => "stop".into(),
                    other => format!("{other:?}"),
                })
                .collect()
        }

        /// Plays out an announcement: the sounds said until music comes back.
        fn speech(&mut self, first: Vec<String>) -> Vec<String> {
            let mut said = Vec::new();
            let mut got = first;
            loop {
                let sound = got.remove(0);
                if sound.starts_with("music") {
                    return said;
                }
                said.push(sound);
                got = self.ev(AppEvent::PlayDone);
            }
        }

        fn later(&mut self, secs: u64) -> Vec<String> {
            self.now += Duration::from_secs(secs);
            self.ev(AppEvent::Timer)
        }
    }

    #[test]
    fn a_caller_hears_music_and_goes_to_the_fallback_after_the_longest_wait() {
        let mut q = config::Queue::new("700", &["101"]);
        q.max_wait_seconds = 60;
        q.fallback = "voicemail:102".into();
        let mut r = Run::new(q);
        assert_eq!(r.ev(AppEvent::Started), ["enter 700"]);
        assert_eq!(r.ev(AppEvent::Queued), ["music ", "timer 60"]);
        assert_eq!(r.later(60), ["leave", "dial voicemail:102"]);
        // Nothing more comes of it.
        assert!(r.ev(AppEvent::Timer).is_empty());
    }

    #[test]
    fn the_place_is_said_on_entering_and_again_with_the_hold_time() {
        let mut q = config::Queue::new("700", &["101"]);
        q.position_seconds = 30;
        q.hold_time = true;
        q.periodic_seconds = 45;
        q.music = "jazz".into();
        let mut r = Run::new(q);
        r.ev(AppEvent::Started);
        let first = r.ev(AppEvent::Queued);
        // No hold time known yet: only the place.
        assert_eq!(
            r.speech(first),
            [
                "queue-thereare",
                "digits/2",
                "queue-callswaiting",
                "queue-thankyou"
            ]
        );
        r.place = Some(QueuePlace {
            position: 1,
            estimate: Some(150),
        });
        let again = r.later(30);
        assert_eq!(
            r.speech(again),
            [
                "queue-youarenext",
                "queue-holdtime",
                "digits/3",
                "queue-minutes",
                "queue-thankyou"
            ]
        );
        // The periodic announcement at 45 s, then music again.
        let periodic = r.later(15);
        assert_eq!(r.speech(periodic), ["queue-periodic-announce"]);
        r.place = Some(QueuePlace {
            position: 1,
            estimate: Some(20),
        });
        let soon = r.later(15);
        assert_eq!(
            r.speech(soon),
            [
                "queue-youarenext",
                "queue-holdtime",
                "queue-less-than",
                "digits/1",
                "queue-minute",
                "queue-thankyou"
            ]
        );
    }

    #[test]
    fn a_refused_caller_hears_goodbye_without_a_fallback() {
        let mut r = Run::new(config::Queue::new("700", &["101"]));
        r.ev(AppEvent::Started);
        assert_eq!(r.ev(AppEvent::QueueRefused), ["stop", "vm-goodbye"]);
        assert_eq!(r.ev(AppEvent::PlayDone), ["hang up"]);
    }

    #[test]
    fn an_agent_logs_in_and_out() {
        for (login, ok, prompt) in [
            (true, true, "agent-loginok"),
            (false, true, "agent-loggedoff"),
            (true, false, "agent-incorrect"),
        ] {
            let mut app = AgentLogin::new("700", login);
            let mut cx = Context::new(Instant::now(), "101");
            app.handle(AppEvent::Started, &mut cx);
            assert!(matches!(
                &cx.take_actions()[..],
                [Action::AgentLogin { queue, login: l }] if queue == "700" && *l == login
            ));
            app.handle(AppEvent::AgentLogged { ok }, &mut cx);
            assert!(matches!(&cx.take_actions()[..], [Action::PlayPrompt(p)] if p == prompt));
            app.handle(AppEvent::PlayDone, &mut cx);
            assert!(matches!(&cx.take_actions()[..], [Action::HangUp]));
        }
    }
}
