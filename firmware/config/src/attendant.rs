//! Auto attendant scripts (Kerio 16) and the time ranges their time conditions use
//! (Kerio 25).
//!
//! A script answers its number with a menu: an announcement played a number of times,
//! keys that dial a number, leave a voicemail, go to another menu, repeat or hang up,
//! optionally an extension number keyed directly, and a default action when the caller
//! keys nothing. A time condition is a named branch: one node when its time range holds
//! at the box's local time, another when it does not. Menus and conditions are the
//! script's nodes, named; the script starts at `start`.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// What a key (or the menu's timeout) does. (Flattened into a key, so unknown fields
/// cannot be refused here: serde's `flatten` and `deny_unknown_fields` do not mix.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AaAction {
    /// Rings a number as if the caller had dialled it: an extension, a ring group, or
    /// an outside number the script's permission group allows.
    Dial { number: String },
    /// The caller leaves a message in an extension's box.
    Voicemail { extension: String },
    /// Another menu or time condition of the script.
    Goto { node: String },
    /// The current menu again.
    Repeat,
    /// The box hangs up.
    HangUp,
}

/// A key of a menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AaKey {
    /// `0`-`9`, `*` or `#`.
    pub key: String,
    #[serde(flatten)]
    pub action: AaAction,
    /// Played before the action ("Connecting you to sales"); empty: none.
    #[serde(default)]
    pub announcement: String,
}

/// A voice menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AaMenu {
    pub name: String,
    /// A sound: an uploaded announcement of that name, else the system prompt of that
    /// name (e.g. `vm-intro`); empty: silence.
    #[serde(default)]
    pub announcement: String,
    /// How many times the announcement is played before the default action (Kerio's
    /// "number of playbacks").
    #[serde(default = "two")]
    pub playbacks: u32,
    /// Seconds the box waits for a key after each playback.
    #[serde(default = "ten")]
    pub timeout_seconds: u32,
    /// What happens when the caller keys nothing (default: hang up).
    #[serde(default = "hang_up")]
    pub default_action: AaAction,
    /// The caller may key an extension (or ring group) number; a single key is then
    /// taken after a pause or `#`.
    #[serde(default)]
    pub dial_by_extension: bool,
    #[serde(default)]
    pub keys: Vec<AaKey>,
}

/// A time condition: `then` while `time_range` holds, else `otherwise`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AaCondition {
    pub name: String,
    pub time_range: String,
    pub then: String,
    pub otherwise: String,
}

/// An auto attendant script, reached by its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoAttendant {
    pub number: String,
    #[serde(default)]
    pub description: String,
    /// The node (menu or condition) callers start at.
    pub start: String,
    #[serde(default)]
    pub menus: Vec<AaMenu>,
    #[serde(default)]
    pub conditions: Vec<AaCondition>,
    /// Outside numbers a `dial` action may reach are checked against this permission
    /// group (empty: only local numbers may be dialled).
    #[serde(default)]
    pub permission_group: String,
}

fn two() -> u32 {
    2
}

fn ten() -> u32 {
    10
}

fn hang_up() -> AaAction {
    AaAction::HangUp
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday is 0.
    pub fn index(self) -> u32 {
        self as u32
    }
}

/// One part of a time range (Kerio 25's subintervals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TimeItem {
    /// Every listed day (none: every day) from `from` to `to` (`HH:MM`; `to` before
    /// `from` runs past midnight).
    Daily {
        from: String,
        to: String,
        #[serde(default)]
        days: Vec<Weekday>,
    },
    /// Each week from one day and time to another (Fri 17:00 to Mon 08:00).
    Weekly {
        from_day: Weekday,
        from: String,
        to_day: Weekday,
        to: String,
    },
    /// Once, between two dates and times (`YYYY-MM-DD HH:MM`), e.g. a holiday.
    Absolute { from: String, to: String },
}

/// A named time range (Kerio 25): it holds when a daily or weekly item holds (or there
/// is none) and, when it has absolute items, one of them holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub items: Vec<TimeItem>,
}

/// `HH:MM` as minutes of the day.
pub fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
}

/// `YYYY-MM-DD HH:MM` as minutes since 1970-01-01 00:00 (in whatever zone it is).
pub fn date_minutes(s: &str) -> Option<i64> {
    let (d, t) = s.split_once(' ')?;
    let mut p = d.split('-');
    let (y, m, dd): (i64, i64, i64) = (
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
    );
    if p.next().is_some() || !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let mdays = [
        31,
        28 + i64::from(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if dd < 1 || dd > mdays[(m - 1) as usize] {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 1440 + i64::from(minutes(t)?))
}

impl TimeRange {
    /// Whether the range holds at `local` (seconds since the epoch in the box's time
    /// zone, i.e. UTC seconds plus the zone's offset).
    pub fn holds(&self, local: i64) -> bool {
        let minute = local.div_euclid(60);
        let day = minute.div_euclid(1440);
        let of_day = minute.rem_euclid(1440) as u32;
        // 1970-01-01 was a Thursday (index 3).
        let wd = (day + 3).rem_euclid(7) as u32;
        let mut periodic = None;
        let mut absolute = None;
        for item in &self.items {
            match item {
                TimeItem::Daily { from, to, days } => {
                    let (Some(f), Some(t)) = (minutes(from), minutes(to)) else {
                        continue;
                    };
                    let on = |d: u32| days.is_empty() || days.iter().any(|x| x.index() == d);
                    let hit = if f <= t {
                        on(wd) && (f..t).contains(&of_day)
                    } else {
                        // Past midnight: the evening of a listed day, or the morning after.
                        (on(wd) && of_day >= f) || (on((wd + 6) % 7) && of_day < t)
                    };
                    periodic = Some(periodic.unwrap_or(false) || hit);
                }
                TimeItem::Weekly {
                    from_day,
                    from,
                    to_day,
                    to,
                } => {
                    let (Some(f), Some(t)) = (minutes(from), minutes(to)) else {
                        continue;
                    };
                    let week = wd * 1440 + of_day;
                    let (a, b) = (from_day.index() * 1440 + f, to_day.index() * 1440 + t);
                    let hit = if a <= b {
                        (a..b).contains(&week)
                    } else {
                        week >= a || week < b
                    };
                    periodic = Some(periodic.unwrap_or(false) || hit);
                }
                TimeItem::Absolute { from, to } => {
                    let (Some(f), Some(t)) = (date_minutes(from), date_minutes(to)) else {
                        continue;
                    };
                    absolute = Some(absolute.unwrap_or(false) || (f..t).contains(&minute));
                }
            }
        }
        periodic.unwrap_or(true) && absolute.unwrap_or(true)
    }

    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.items.is_empty() || self.items.len() > 64 {
            v.push(("items", "must have 1 to 64 items".into()));
        }
        for i in &self.items {
            let ok = match i {
                TimeItem::Daily { from, to, .. } => {
                    minutes(from).is_some() && minutes(to).is_some() && from != to
                }
                TimeItem::Weekly {
                    from_day,
                    from,
                    to_day,
                    to,
                } => {
                    minutes(from).is_some()
                        && minutes(to).is_some()
                        && (from_day, from) != (to_day, to)
                }
                TimeItem::Absolute { from, to } => {
                    matches!((date_minutes(from), date_minutes(to)), (Some(f), Some(t)) if f < t)
                }
            };
            if !ok {
                v.push((
                    "items",
                    format!("{i:?}: times are HH:MM, dates YYYY-MM-DD HH:MM, and a range must not be empty"),
                ));
            }
        }
        v
    }
}

fn valid_key(k: &str) -> bool {
    k.len() == 1
        && k.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

impl AutoAttendant {
    /// The node names of the script.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.menus
            .iter()
            .map(|m| m.name.as_str())
            .chain(self.conditions.iter().map(|c| c.name.as_str()))
    }

    pub fn menu(&self, name: &str) -> Option<&AaMenu> {
        self.menus.iter().find(|m| m.name == name)
    }

    pub fn condition(&self, name: &str) -> Option<&AaCondition> {
        self.conditions.iter().find(|c| c.name == name)
    }

    /// What is wrong with the script, as (field, message); `local` holds the box's
    /// local numbers, `voicemail` the extensions with a box, `ranges` the time ranges.
    pub(crate) fn problems(
        &self,
        local: &HashSet<&str>,
        voicemail: &HashSet<&str>,
        ranges: &HashSet<&str>,
        groups: &HashSet<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let nodes: Vec<&str> = self.nodes().collect();
        let mut seen = HashSet::new();
        for n in &nodes {
            if !crate::routing::valid_name(n) {
                v.push((
                    "menus",
                    format!("{n:?} is not a name (letters, digits, - _)"),
                ));
            }
            if !seen.insert(*n) {
                v.push(("menus", format!("two nodes are named {n}")));
            }
        }
        if nodes.len() > 64 {
            v.push(("menus", "at most 64 menus and conditions".into()));
        }
        if !nodes.contains(&self.start.as_str()) {
            v.push((
                "start",
                format!("{} is not a menu or condition of the script", self.start),
            ));
        }
        if !self.permission_group.is_empty() && !groups.contains(self.permission_group.as_str()) {
            v.push((
                "permission_group",
                format!("{} does not exist", self.permission_group),
            ));
        }
        let check = |a: &AaAction, v: &mut Vec<(&'static str, String)>, at: &str| match a {
            AaAction::Dial { number } => {
                if !crate::is_phone_number(number) || number == &self.number {
                    v.push(("menus", format!("{at}: {number:?} must be another number")));
                }
            }
            AaAction::Voicemail { extension } => {
                if !voicemail.contains(extension.as_str()) {
                    v.push((
                        "menus",
                        format!("{at}: extension {extension} has no voicemail box"),
                    ));
                }
            }
            AaAction::Goto { node } => {
                if !nodes.contains(&node.as_str()) {
                    v.push((
                        "menus",
                        format!("{at}: {node} is not a menu or condition of the script"),
                    ));
                }
            }
            AaAction::Repeat | AaAction::HangUp => {}
        };
        for m in &self.menus {
            let at = format!("menu {}", m.name);
            if !(1..=10).contains(&m.playbacks) {
                v.push(("menus", format!("{at}: playbacks must be 1 to 10")));
            }
            if !(1..=120).contains(&m.timeout_seconds) {
                v.push((
                    "menus",
                    format!("{at}: the timeout must be 1 to 120 seconds"),
                ));
            }
            for s in std::iter::once(&m.announcement).chain(m.keys.iter().map(|k| &k.announcement))
            {
                if !s.is_empty() && !valid_sound(s) {
                    v.push(("menus", format!("{at}: {s:?} is not a sound name")));
                }
            }
            check(&m.default_action, &mut v, &at);
            let mut keys = HashSet::new();
            for k in &m.keys {
                if !valid_key(&k.key) {
                    v.push((
                        "menus",
                        format!("{at}: {:?} is not a key (0-9, * or #)", k.key),
                    ));
                }
                if !keys.insert(k.key.as_str()) {
                    v.push(("menus", format!("{at}: key {} is used twice", k.key)));
                }
                check(&k.action, &mut v, &format!("{at} key {}", k.key));
            }
        }
        for c in &self.conditions {
            let at = format!("condition {}", c.name);
            if !ranges.contains(c.time_range.as_str()) {
                v.push((
                    "conditions",
                    format!("{at}: time range {} does not exist", c.time_range),
                ));
            }
            for n in [&c.then, &c.otherwise] {
                if !nodes.contains(&n.as_str()) {
                    v.push((
                        "conditions",
                        format!("{at}: {n} is not a menu or condition of the script"),
                    ));
                }
            }
        }
        // Conditions must end at a menu, by either branch (no circle of conditions).
        fn circle<'a>(
            a: &'a AutoAttendant,
            at: &'a str,
            state: &mut std::collections::HashMap<&'a str, u8>,
        ) -> bool {
            let Some(c) = a.condition(at) else {
                return false;
            };
            match state.get(at) {
                Some(1) => return true,
                Some(_) => return false,
                None => {}
            }
            state.insert(at, 1);
            let found = circle(a, &c.then, state) || circle(a, &c.otherwise, state);
            state.insert(at, 2);
            found
        }
        let mut state = std::collections::HashMap::new();
        for c in &self.conditions {
            if circle(self, &c.name, &mut state) {
                v.push((
                    "conditions",
                    format!("condition {} leads round in a circle", c.name),
                ));
                break;
            }
        }
        let _ = local;
        v
    }
}

/// Whether `s` can name a sound: a system prompt (`digits/5`, `vm-intro`) or an
/// uploaded announcement.
pub fn valid_sound(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(items: Vec<TimeItem>) -> TimeRange {
        TimeRange {
            name: "r".into(),
            description: String::new(),
            items,
        }
    }

    /// Local seconds at a date and time.
    fn at(s: &str) -> i64 {
        date_minutes(s).unwrap() * 60
    }

    #[test]
    fn office_hours_weekends_nights_and_holidays() {
        let office = range(vec![TimeItem::Daily {
            from: "09:00".into(),
            to: "17:00".into(),
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
        }]);
        // 2026-12-02 is a Wednesday.
        assert!(office.holds(at("2026-12-02 09:00")));
        assert!(office.holds(at("2026-12-02 16:59")));
        assert!(!office.holds(at("2026-12-02 17:00")));
        assert!(!office.holds(at("2026-12-02 08:59")));
        assert!(!office.holds(at("2026-12-05 10:00")), "Saturday");
        // Office hours but not on the Christmas holidays.
        let mut hol = office.clone();
        hol.items.push(TimeItem::Absolute {
            from: "2026-12-02 00:00".into(),
            to: "2026-12-03 00:00".into(),
        });
        assert!(hol.holds(at("2026-12-02 10:00")), "absolute intersects");
        assert!(!hol.holds(at("2026-12-03 10:00")));
        // The night, past midnight.
        let night = range(vec![TimeItem::Daily {
            from: "22:00".into(),
            to: "06:00".into(),
            days: vec![Weekday::Fri],
        }]);
        assert!(night.holds(at("2026-12-04 23:00")), "Friday evening");
        assert!(
            night.holds(at("2026-12-05 05:59")),
            "Saturday morning after"
        );
        assert!(!night.holds(at("2026-12-05 23:00")));
        // The weekend: Friday 17:00 to Monday 08:00.
        let weekend = range(vec![TimeItem::Weekly {
            from_day: Weekday::Fri,
            from: "17:00".into(),
            to_day: Weekday::Mon,
            to: "08:00".into(),
        }]);
        assert!(weekend.holds(at("2026-12-06 12:00")), "Sunday");
        assert!(weekend.holds(at("2026-12-07 07:59")), "Monday early");
        assert!(!weekend.holds(at("2026-12-07 08:00")));
        assert!(!weekend.holds(at("2026-12-02 12:00")), "Wednesday");
        // Only an absolute range: a holiday.
        let day = range(vec![TimeItem::Absolute {
            from: "2026-12-24 00:00".into(),
            to: "2026-12-27 00:00".into(),
        }]);
        assert!(day.holds(at("2026-12-25 12:00")) && !day.holds(at("2026-12-27 00:00")));
    }

    #[test]
    fn times_and_dates_are_read_strictly() {
        assert_eq!(minutes("09:30"), Some(570));
        for bad in ["9:30", "24:00", "12:60", "ab:cd", "12:3"] {
            assert_eq!(minutes(bad), None, "{bad}");
        }
        assert_eq!(date_minutes("1970-01-01 00:00"), Some(0));
        assert_eq!(date_minutes("2000-03-01 00:00"), Some(951_868_800 / 60));
        for bad in ["2026-02-29 00:00", "2026-13-01 00:00", "2026-1-1", "x"] {
            assert_eq!(date_minutes(bad), None, "{bad}");
        }
        assert!(!range(vec![]).problems().is_empty());
        // A weekend from Saturday to Monday at midnight is a range, not an empty one.
        assert!(range(vec![TimeItem::Weekly {
            from_day: Weekday::Sat,
            from: "00:00".into(),
            to_day: Weekday::Mon,
            to: "00:00".into()
        }])
        .problems()
        .is_empty());
        assert!(!range(vec![TimeItem::Absolute {
            from: "2026-12-27 00:00".into(),
            to: "2026-12-24 00:00".into()
        }])
        .problems()
        .is_empty());
    }

    #[test]
    fn a_circle_of_conditions_by_either_branch_is_refused() {
        let cond = |name: &str, then: &str, otherwise: &str| AaCondition {
            name: name.into(),
            time_range: "r".into(),
            then: then.into(),
            otherwise: otherwise.into(),
        };
        let mut a = AutoAttendant {
            number: "200".into(),
            description: String::new(),
            start: "a".into(),
            menus: vec![AaMenu {
                name: "m".into(),
                announcement: "hello-world".into(),
                playbacks: 1,
                timeout_seconds: 5,
                default_action: AaAction::HangUp,
                dial_by_extension: false,
                keys: vec![],
            }],
            conditions: vec![cond("a", "m", "b"), cond("b", "m", "m")],
            permission_group: String::new(),
        };
        let none = HashSet::new();
        let ranges: HashSet<&str> = ["r"].into();
        assert!(a.problems(&none, &none, &ranges, &none).is_empty());
        a.conditions[1].otherwise = "a".into();
        let p = a.problems(&none, &none, &ranges, &none);
        assert!(p.iter().any(|(_, m)| m.contains("circle")), "{p:?}");
    }
}
