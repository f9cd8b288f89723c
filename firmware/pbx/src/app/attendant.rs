//! The auto attendant (Kerio 16): a script of voice menus answering its number.
//!
//! Entering a node follows time conditions (each holds or not at the box's local time)
//! to a menu. A menu plays its announcement (an uploaded sound of that name, else the
//! system prompt) `playbacks` times, waiting `timeout_seconds` for a key after each;
//! then its default action runs. A key runs its action after its own announcement.
//! With dial-by-extension, keys are collected until `#` or a 3 s pause: a local number
//! (extension or ring group) is dialled, a single key runs its action. A key the menu
//! does not know plays the prompt `invalid` ("that's not a valid extension, please try
//! again") and the menu again; three in a row run the default action. Actions: dial a number (the exchange rings it; the script's permission group
//! checks outside numbers), leave a voicemail, go to another node, repeat, hang up.

use super::{AppEvent, Application, Context, Greeting, LeaveMessage};
use config::{AaAction, AutoAttendant, TimeRange};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

/// The pause that ends a number keyed in a dial-by-extension menu.
const DIGIT_PAUSE: Duration = Duration::from_secs(3);

/// How long a sound may take before it counts as played.
const SOUND_LIMIT: Duration = Duration::from_secs(120);

/// Invalid keys in a row before the default action.
const MAX_INVALID: u32 = 3;

/// Conditions followed in a row at most (validation refuses circles).
const MAX_HOPS: usize = 16;

/// Menus played in one call at most: a script that repeats itself (or a caller who
/// never hangs up) does not hold a line for ever.
const MAX_PLAYS: u32 = 30;

/// What the script needs of the box around it.
#[derive(Debug, Clone, Default)]
pub struct AttendantEnv {
    /// The time ranges of the configuration.
    pub ranges: Vec<TimeRange>,
    /// Numbers a caller may key in a dial-by-extension menu.
    pub local_numbers: Vec<String>,
    /// Uploaded sounds (`<name>.wav`).
    pub sounds: PathBuf,
    /// The voicemail folder, and the boxes with whether each has a temporary greeting.
    pub voicemail: PathBuf,
    pub boxes: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Wait {
    /// Speaking the menu (or a key's announcement).
    Speaking,
    /// The menu said: waiting for a key.
    Key,
    /// Collecting a number.
    Digits,
}

/// A caller in a script.
pub struct Attendant {
    script: AutoAttendant,
    env: AttendantEnv,
    menu: String,
    plays: u32,
    /// Menus played in the whole call.
    total: u32,
    invalid: u32,
    wait: Wait,
    speech: VecDeque<String>,
    digits: String,
    /// Runs when what is being said ends (a key's announcement).
    then: Option<AaAction>,
    inner: Option<LeaveMessage>,
}

impl Attendant {
    pub fn new(script: AutoAttendant, env: AttendantEnv) -> Attendant {
        Attendant {
            menu: script.start.clone(),
            script,
            env,
            plays: 0,
            total: 0,
            invalid: 0,
            wait: Wait::Speaking,
            speech: VecDeque::new(),
            digits: String::new(),
            then: None,
            inner: None,
        }
    }

    /// The menu a node leads to now.
    fn resolve(&self, node: &str, local: i64) -> Option<String> {
        let mut at = node.to_string();
        for _ in 0..MAX_HOPS {
            if self.script.menu(&at).is_some() {
                return Some(at);
            }
            let c = self.script.condition(&at)?;
            let holds = self
                .env
                .ranges
                .iter()
                .find(|r| r.name == c.time_range)
                .is_some_and(|r| r.holds(local));
            tracing::debug!(
                condition = c.name,
                range = c.time_range,
                holds,
                "time condition"
            );
            at = if holds {
                c.then.clone()
            } else {
                c.otherwise.clone()
            };
        }
        None
    }

    fn say(&mut self, cx: &mut Context, sounds: Vec<String>) {
        if self.wait == Wait::Speaking && !self.speech.is_empty() {
            cx.stop_playing();
        }
        self.speech = sounds.into_iter().filter(|s| !s.is_empty()).collect();
        self.wait = Wait::Speaking;
        self.next(cx);
    }

    fn next(&mut self, cx: &mut Context) {
        match self.speech.pop_front() {
            Some(s) => {
                // An uploaded announcement of that name, else the system prompt.
                let path = self.env.sounds.join(format!("{s}.wav"));
                cx.play_file(path, Some(&s));
                cx.timer(SOUND_LIMIT);
            }
            None => self.spoken(cx),
        }
    }

    fn spoken(&mut self, cx: &mut Context) {
        if let Some(a) = self.then.take() {
            return self.act(cx, a);
        }
        self.wait = Wait::Key;
        let secs = self
            .script
            .menu(&self.menu)
            .map_or(10, |m| m.timeout_seconds);
        cx.timer(Duration::from_secs(secs.into()));
    }

    fn enter(&mut self, cx: &mut Context, node: &str) {
        match self.resolve(node, cx.local) {
            Some(m) => {
                self.menu = m;
                self.plays = 0;
                self.invalid = 0;
                self.play_menu(cx, vec![]);
            }
            None => {
                tracing::warn!(node, "auto attendant: no menu there");
                cx.hang_up();
            }
        }
    }

    fn play_menu(&mut self, cx: &mut Context, before: Vec<String>) {
        self.digits.clear();
        self.total += 1;
        if self.total > MAX_PLAYS {
            tracing::info!("auto attendant: {MAX_PLAYS} menus played, the box hangs up");
            return cx.hang_up();
        }
        let ann = self
            .script
            .menu(&self.menu)
            .map(|m| m.announcement.clone())
            .unwrap_or_default();
        let mut v = before;
        v.push(ann);
        self.say(cx, v);
    }

    fn act(&mut self, cx: &mut Context, a: AaAction) {
        match a {
            AaAction::Dial { number } => {
                self.wait = Wait::Key;
                cx.dial(&number, &self.script.permission_group);
            }
            AaAction::Voicemail { extension } => {
                let Some((b, temp)) = self
                    .env
                    .boxes
                    .iter()
                    .find(|(b, _)| *b == extension)
                    .cloned()
                else {
                    return cx.hang_up();
                };
                let mut leave = LeaveMessage::new(
                    store::voicemail::box_dir(&self.env.voicemail, &b),
                    Greeting::Unavailable,
                )
                .with_temp_greeting(temp);
                leave.handle(AppEvent::Started, cx);
                self.inner = Some(leave);
            }
            AaAction::Goto { node } => self.enter(cx, &node),
            AaAction::Repeat => {
                self.plays = 0;
                self.play_menu(cx, vec![]);
            }
            AaAction::HangUp => cx.hang_up(),
        }
    }

    /// A key of the menu, or an unknown one.
    fn key(&mut self, cx: &mut Context, k: &str) {
        let Some(m) = self.script.menu(&self.menu) else {
            return cx.hang_up();
        };
        match m.keys.iter().find(|x| x.key == k).cloned() {
            Some(key) => {
                self.invalid = 0;
                self.then = Some(key.action);
                self.say(cx, vec![key.announcement]);
            }
            None => self.invalid_key(cx),
        }
    }

    fn invalid_key(&mut self, cx: &mut Context) {
        self.invalid += 1;
        if self.invalid >= MAX_INVALID {
            let a = self
                .script
                .menu(&self.menu)
                .map_or(AaAction::HangUp, |m| m.default_action.clone());
            return self.act(cx, a);
        }
        self.play_menu(cx, vec!["invalid".into()]);
    }

    /// A number keyed in a dial-by-extension menu is complete.
    fn number(&mut self, cx: &mut Context) {
        let n = std::mem::take(&mut self.digits);
        if n.len() == 1
            && self
                .script
                .menu(&self.menu)
                .is_some_and(|m| m.keys.iter().any(|k| k.key == n))
        {
            return self.key(cx, &n);
        }
        if self.env.local_numbers.contains(&n) {
            self.then = None;
            return self.act(cx, AaAction::Dial { number: n });
        }
        self.invalid_key(cx);
    }
}

impl Application for Attendant {
    fn name(&self) -> &'static str {
        "auto attendant"
    }

    fn handle(&mut self, event: AppEvent, cx: &mut Context) {
        if let Some(inner) = self.inner.as_mut() {
            return inner.handle(event, cx);
        }
        match event {
            AppEvent::Started => {
                let start = self.script.start.clone();
                self.enter(cx, &start);
            }
            AppEvent::PlayDone if self.wait == Wait::Speaking => self.next(cx),
            AppEvent::Dtmf(d) => {
                let dial_by_ext = self
                    .script
                    .menu(&self.menu)
                    .is_some_and(|m| m.dial_by_extension);
                // A key cuts the menu short, not a key's own announcement.
                if self.then.is_some() {
                    return;
                }
                if self.wait == Wait::Speaking {
                    cx.stop_playing();
                    self.speech.clear();
                }
                if dial_by_ext {
                    if d == '#' && !self.digits.is_empty() {
                        return self.number(cx);
                    }
                    if self.digits.len() < 20 {
                        self.digits.push(d);
                    }
                    self.wait = Wait::Digits;
                    cx.timer(DIGIT_PAUSE);
                } else {
                    self.key(cx, &d.to_string());
                }
            }
            AppEvent::Timer => match self.wait {
                // A sound that never reported its end.
                Wait::Speaking => self.next(cx),
                Wait::Digits => self.number(cx),
                Wait::Key => {
                    self.plays += 1;
                    let Some(m) = self.script.menu(&self.menu) else {
                        return cx.hang_up();
                    };
                    if self.plays < m.playbacks {
                        self.play_menu(cx, vec![]);
                    } else {
                        let a = m.default_action.clone();
                        self.act(cx, a);
                    }
                }
            },
            AppEvent::PlayDone
            | AppEvent::Recorded { .. }
            | AppEvent::Joined { .. }
            | AppEvent::Full
            | AppEvent::Queued
            | AppEvent::QueueRefused
            | AppEvent::AgentLogged { .. }
            | AppEvent::Muted(_)
            | AppEvent::Hangup => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Action;
    use config::{AaCondition, AaKey, AaMenu, TimeItem, Weekday};
    use std::time::Instant;

    /// 2026-12-02 (a Wednesday) at `hh:mm`, local seconds.
    fn wednesday(hh: i64, mm: i64) -> i64 {
        config::date_minutes("2026-12-02 00:00").unwrap() * 60 + hh * 3600 + mm * 60
    }

    fn script() -> AutoAttendant {
        let menu = |name: &str, ann: &str, keys: Vec<AaKey>, default: AaAction| AaMenu {
            name: name.into(),
            announcement: ann.into(),
            playbacks: 2,
            timeout_seconds: 5,
            default_action: default,
            dial_by_extension: false,
            keys,
        };
        let key = |k: &str, action: AaAction, ann: &str| AaKey {
            key: k.into(),
            action,
            announcement: ann.into(),
        };
        AutoAttendant {
            number: "200".into(),
            description: String::new(),
            start: "hours".into(),
            menus: vec![
                menu(
                    "main",
                    "welcome",
                    vec![
                        key(
                            "1",
                            AaAction::Goto {
                                node: "sales".into(),
                            },
                            "",
                        ),
                        key(
                            "2",
                            AaAction::Dial {
                                number: "102".into(),
                            },
                            "transfer",
                        ),
                        key(
                            "9",
                            AaAction::Voicemail {
                                extension: "101".into(),
                            },
                            "",
                        ),
                        key("0", AaAction::HangUp, ""),
                    ],
                    AaAction::Dial {
                        number: "100".into(),
                    },
                ),
                menu(
                    "sales",
                    "sales",
                    vec![key(
                        "*",
                        AaAction::Goto {
                            node: "main".into(),
                        },
                        "",
                    )],
                    AaAction::Repeat,
                ),
                menu("closed", "closed", vec![], AaAction::HangUp),
            ],
            conditions: vec![AaCondition {
                name: "hours".into(),
                time_range: "office".into(),
                then: "main".into(),
                otherwise: "closed".into(),
            }],
            permission_group: "local".into(),
        }
    }

    fn env() -> AttendantEnv {
        AttendantEnv {
            ranges: vec![TimeRange {
                name: "office".into(),
                description: String::new(),
                items: vec![TimeItem::Daily {
                    from: "09:00".into(),
                    to: "17:00".into(),
                    days: vec![
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri,
                    ],
                }],
            }],
            local_numbers: vec!["101".into(), "102".into(), "150".into()],
            sounds: "/s".into(),
            voicemail: "/v".into(),
            boxes: vec![("101".into(), false)],
        }
    }

    /// The actions for `ev` at local time `local`, as words; sounds are played out.
    fn run(app: &mut Attendant, local: i64, ev: AppEvent) -> Vec<String> {
        let mut out = Vec::new();
        let mut ev = Some(ev);
        while let Some(e) = ev.take() {
            let mut cx = Context::new(Instant::now(), "+420601002");
            cx.local = local;
            cx.unix = 1_700_000_000;
            cx.call = 5;
            app.handle(e, &mut cx);
            for a in cx.take_actions() {
                out.push(match a {
                    Action::PlayFile { path, fallback } => {
                        ev = Some(AppEvent::PlayDone);
                        format!("{} or {}", path.display(), fallback.unwrap_or_default())
                    }
                    Action::PlayPrompt(p) => {
                        ev = Some(AppEvent::PlayDone);
                        p
                    }
                    Action::Timer(d) => format!("wait {}", d.as_secs()),
                    Action::Dial { number, groups } => format!("dial {number} as {groups}"),
                    Action::HangUp => "hang up".into(),
                    Action::StopPlaying => "stop".into(),
                    Action::Record { path, .. } => format!("record {}", path.display()),
                    a => format!("{a:?}"),
                });
            }
        }
        out.retain(|s| {
            !s.starts_with("wait 120") && !s.starts_with("wait 60") && !s.starts_with("wait 180")
        });
        out
    }

    #[test]
    fn office_hours_play_the_menu_and_keys_lead_on() {
        let mut app = Attendant::new(script(), env());
        let t = wednesday(10, 0);
        assert_eq!(
            run(&mut app, t, AppEvent::Started),
            ["/s/welcome.wav or welcome", "wait 5"]
        );
        // 1: the sales submenu; * back to the main menu.
        assert_eq!(
            run(&mut app, t, AppEvent::Dtmf('1')),
            ["/s/sales.wav or sales", "wait 5"]
        );
        assert_eq!(
            run(&mut app, t, AppEvent::Dtmf('*'))[0],
            "/s/welcome.wav or welcome"
        );
        // 2: its announcement, then the exchange rings 102 with the script's group.
        assert_eq!(
            run(&mut app, t, AppEvent::Dtmf('2')),
            ["/s/transfer.wav or transfer", "dial 102 as local"]
        );
    }

    #[test]
    fn a_key_cuts_the_menu_short_and_an_invalid_one_replays_it() {
        let mut app = Attendant::new(script(), env());
        let t = wednesday(10, 0);
        let mut cx = Context::new(Instant::now(), "x");
        cx.local = t;
        app.handle(AppEvent::Started, &mut cx);
        // Keyed while the menu plays: it stops, and the invalid key is said.
        let got = run(&mut app, t, AppEvent::Dtmf('7'));
        assert_eq!(
            got,
            [
                "stop",
                "/s/invalid.wav or invalid",
                "/s/welcome.wav or welcome",
                "wait 5"
            ]
        );
        run(&mut app, t, AppEvent::Dtmf('7'));
        // The third invalid key: the default action (the receptionist).
        assert_eq!(run(&mut app, t, AppEvent::Dtmf('8')), ["dial 100 as local"]);
    }

    #[test]
    fn silence_replays_then_takes_the_default_and_night_plays_closed() {
        let mut app = Attendant::new(script(), env());
        let t = wednesday(10, 0);
        run(&mut app, t, AppEvent::Started);
        assert_eq!(
            run(&mut app, t, AppEvent::Timer),
            ["/s/welcome.wav or welcome", "wait 5"]
        );
        assert_eq!(run(&mut app, t, AppEvent::Timer), ["dial 100 as local"]);
        // After hours (and on Saturday) the condition leads to the closed menu.
        for when in [
            wednesday(18, 30),
            wednesday(8, 59),
            wednesday(24 * 3 + 10, 0),
        ] {
            let mut night = Attendant::new(script(), env());
            assert_eq!(
                run(&mut night, when, AppEvent::Started)[0],
                "/s/closed.wav or closed"
            );
            run(&mut night, when, AppEvent::Timer);
            assert_eq!(run(&mut night, when, AppEvent::Timer), ["hang up"]);
        }
    }

    #[test]
    fn a_script_that_repeats_for_ever_ends() {
        let mut s = script();
        s.menus[0].default_action = AaAction::Repeat;
        let mut app = Attendant::new(s, env());
        let t = wednesday(10, 0);
        run(&mut app, t, AppEvent::Started);
        let mut last = Vec::new();
        for _ in 0..100 {
            last = run(&mut app, t, AppEvent::Timer);
            if last == ["hang up"] {
                break;
            }
        }
        assert_eq!(last, ["hang up"]);
    }

    #[test]
    fn voicemail_and_hang_up_keys() {
        let mut app = Attendant::new(script(), env());
        let t = wednesday(10, 0);
        run(&mut app, t, AppEvent::Started);
        let got = run(&mut app, t, AppEvent::Dtmf('9'));
        assert_eq!(got[0], "/v/101/greeting-unavailable.wav or vm-intro");
        assert_eq!(got[1], "beep");
        assert!(
            got[2].starts_with("record /v/101/1700000000-5-+420601002.wav"),
            "{got:?}"
        );
        let mut app = Attendant::new(script(), env());
        run(&mut app, t, AppEvent::Started);
        assert_eq!(run(&mut app, t, AppEvent::Dtmf('0')), ["hang up"]);
    }

    #[test]
    fn dial_by_extension_takes_local_numbers_only() {
        let mut s = script();
        s.menus[0].dial_by_extension = true;
        let t = wednesday(10, 0);
        let mut app = Attendant::new(s.clone(), env());
        run(&mut app, t, AppEvent::Started);
        run(&mut app, t, AppEvent::Dtmf('1'));
        run(&mut app, t, AppEvent::Dtmf('5'));
        assert_eq!(run(&mut app, t, AppEvent::Dtmf('0')), ["wait 3"]);
        assert_eq!(run(&mut app, t, AppEvent::Dtmf('#')), ["dial 150 as local"]);
        // A single key after the pause is the key.
        let mut app = Attendant::new(s.clone(), env());
        run(&mut app, t, AppEvent::Started);
        run(&mut app, t, AppEvent::Dtmf('1'));
        assert_eq!(
            run(&mut app, t, AppEvent::Timer),
            ["/s/sales.wav or sales", "wait 5"]
        );
        // An outside number keyed is not dialled.
        let mut app = Attendant::new(s, env());
        run(&mut app, t, AppEvent::Started);
        for d in "0900123".chars() {
            run(&mut app, t, AppEvent::Dtmf(d));
        }
        assert_eq!(
            run(&mut app, t, AppEvent::Timer)[0],
            "/s/invalid.wav or invalid"
        );
    }
}
