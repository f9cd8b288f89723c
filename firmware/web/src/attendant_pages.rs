//! The Auto attendant page (`/admin/routing/attendants`, Kerio 16 and 25): time ranges
//! and scripts, edited as short lines a technician can read aloud. A time range's items
//! are `mon-fri 09:00-17:00`, `daily 22:00-06:00`, `fri 17:00 - mon 08:00` (weekly) or
//! `2026-12-24 00:00 - 2026-12-27 00:00` (absolute), separated by `;`. An action is
//! `dial 102`, `voicemail 102`, `goto sales`, `repeat` or `hangup`; a menu's keys are
//! `1=goto sales; 2=dial 102 @transfer` (`@sound`: played before the action). Saving
//! goes through the same validation as the API.

use crate::pages::{csrf_field, fields, layout, outcome, page_response, Note};
use crate::{ApiError, App, Caller};
use config::{AaAction, AaCondition, AaKey, AaMenu, AutoAttendant, TimeItem, TimeRange, Weekday};
use maud::{html, Markup};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::Response;

type Form = [(String, String)];

/// Empty rows offered for new entries.
const SPARE: usize = 2;

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

fn day(s: &str) -> Option<Weekday> {
    DAYS.iter().find(|(n, _)| *n == s).map(|(_, d)| *d)
}

fn day_name(d: Weekday) -> &'static str {
    DAYS[d.index() as usize].0
}

/// One item of a time range, as written on the page.
pub(crate) fn item_text(i: &TimeItem) -> String {
    match i {
        TimeItem::Daily { from, to, days } => {
            let d = if days.is_empty() {
                "daily".to_string()
            } else if days.len() > 2 && days.windows(2).all(|w| w[1].index() == w[0].index() + 1) {
                format!("{}-{}", day_name(days[0]), day_name(days[days.len() - 1]))
            } else {
                days.iter()
                    .map(|d| day_name(*d))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!("{d} {from}-{to}")
        }
        TimeItem::Weekly {
            from_day,
            from,
            to_day,
            to,
        } => format!(
            "{} {from} - {} {to}",
            day_name(*from_day),
            day_name(*to_day)
        ),
        TimeItem::Absolute { from, to } => format!("{from} - {to}"),
    }
}

/// Reads one item (see the module's description).
pub(crate) fn parse_item(s: &str) -> Result<TimeItem, String> {
    let s = s.trim();
    let bad = || {
        format!("{s:?}: write mon-fri 09:00-17:00, fri 17:00 - mon 08:00 or 2026-12-24 00:00 - 2026-12-27 00:00")
    };
    if let Some((a, b)) = s.split_once(" - ") {
        let (a, b) = (a.trim(), b.trim());
        let (da, ta) = a.split_once(' ').ok_or_else(bad)?;
        let (db, tb) = b.split_once(' ').ok_or_else(bad)?;
        return match (day(da), day(db)) {
            (Some(fd), Some(td)) => Ok(TimeItem::Weekly {
                from_day: fd,
                from: ta.into(),
                to_day: td,
                to: tb.into(),
            }),
            _ => Ok(TimeItem::Absolute {
                from: a.into(),
                to: b.into(),
            }),
        };
    }
    let (d, t) = s.split_once(' ').ok_or_else(bad)?;
    let (from, to) = t.trim().split_once('-').ok_or_else(bad)?;
    let days = if d == "daily" {
        Vec::new()
    } else if let Some((a, b)) = d.split_once('-') {
        let (a, b) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
        if a.index() > b.index() {
            return Err(bad());
        }
        DAYS[a.index() as usize..=b.index() as usize]
            .iter()
            .map(|(_, d)| *d)
            .collect()
    } else {
        d.split(',')
            .map(|x| day(x.trim()).ok_or_else(bad))
            .collect::<Result<_, _>>()?
    };
    Ok(TimeItem::Daily {
        from: from.trim().into(),
        to: to.trim().into(),
        days,
    })
}

pub(crate) fn action_text(a: &AaAction) -> String {
    match a {
        AaAction::Dial { number } => format!("dial {number}"),
        AaAction::Voicemail { extension } => format!("voicemail {extension}"),
        AaAction::Goto { node } => format!("goto {node}"),
        AaAction::Repeat => "repeat".into(),
        AaAction::HangUp => "hangup".into(),
    }
}

pub(crate) fn parse_action(s: &str) -> Result<AaAction, String> {
    let s = s.trim();
    let (verb, arg) = s.split_once(' ').map_or((s, ""), |(v, a)| (v, a.trim()));
    match (verb, arg) {
        ("dial", n) if !n.is_empty() => Ok(AaAction::Dial { number: n.into() }),
        ("voicemail", n) if !n.is_empty() => Ok(AaAction::Voicemail {
            extension: n.into(),
        }),
        ("goto", n) if !n.is_empty() => Ok(AaAction::Goto { node: n.into() }),
        ("repeat", "") => Ok(AaAction::Repeat),
        ("hangup" | "hang up", "") | ("", "") => Ok(AaAction::HangUp),
        _ => Err(format!(
            "{s:?}: an action is dial <number>, voicemail <extension>, goto <menu>, repeat or hangup"
        )),
    }
}

fn keys_text(keys: &[AaKey]) -> String {
    keys.iter()
        .map(|k| {
            let mut t = format!("{}={}", k.key, action_text(&k.action));
            if !k.announcement.is_empty() {
                t.push_str(&format!(" @{}", k.announcement));
            }
            t
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse_keys(s: &str) -> Result<Vec<AaKey>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            let (key, rest) = k
                .split_once('=')
                .ok_or_else(|| format!("{k:?}: write 1=goto sales"))?;
            let (action, ann) = match rest.split_once('@') {
                Some((a, n)) => (a, n.trim()),
                None => (rest, ""),
            };
            Ok(AaKey {
                key: key.trim().into(),
                action: parse_action(action)?,
                announcement: ann.into(),
            })
        })
        .collect()
}

fn bad(field: &str) -> impl Fn(String) -> ApiError + '_ {
    move |m| ApiError::bad(field, m)
}

fn col<'a>(form: &'a Form, name: &str, i: usize) -> &'a str {
    fields(form, name).get(i).map(|s| s.trim()).unwrap_or("")
}

/// Routes `/admin/routing/attendants[/...]`.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    get: bool,
    rest: &[&str],
    form: &Form,
) -> Response {
    let who = c.user.username.clone();
    match (get, rest) {
        (true, []) => page(app, c, Note::None, StatusCode::OK, None),
        (false, ["time-ranges"]) => {
            let r = async { save_ranges(app, &who, form).await }.await;
            let (note, st) = outcome(r, |()| "Time ranges saved.".into());
            let typed = (st != StatusCode::OK).then_some(form);
            page(app, c, note, st, typed)
        }
        (false, ["scripts"]) => {
            let r = async { save_scripts(app, &who, form).await }.await;
            let (note, st) = outcome(r, |()| "Auto attendant scripts saved.".into());
            let typed = (st != StatusCode::OK).then_some(form);
            page(app, c, note, st, typed)
        }
        (false, ["sounds", "delete"]) => {
            let name = crate::pages::field(form, "name").unwrap_or("").to_string();
            let r = async {
                crate::api::need_admin_write(c)?;
                let ok = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                let path = app
                    .settings
                    .data_dir
                    .join("sounds")
                    .join(format!("{name}.wav"));
                if !ok || std::fs::remove_file(path).is_err() {
                    return Err(ApiError::not_found(format!("no sound {name}")));
                }
                Ok(())
            }
            .await;
            let (note, st) = outcome(r, |()| format!("Sound {name} removed."));
            page(app, c, note, st, None)
        }
        _ => page(
            app,
            c,
            Note::Error("no such page".into()),
            StatusCode::NOT_FOUND,
            None,
        ),
    }
}

async fn save_ranges(app: &Arc<App>, who: &str, form: &Form) -> Result<(), ApiError> {
    let names = fields(form, "tr_name");
    let mut v = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let items = col(form, "tr_items", i);
        if name.trim().is_empty() && items.is_empty() {
            continue;
        }
        let items = items
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(parse_item)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad("time_ranges"))?;
        v.push(TimeRange {
            name: name.trim().into(),
            description: col(form, "tr_description", i).into(),
            items,
        });
    }
    crate::ops::change(app, who, "changed time ranges".into(), move |c| {
        c.time_ranges = v;
        Ok(())
    })
    .await
}

/// A script's menus and conditions come as rows tagged with the script's number.
async fn save_scripts(app: &Arc<App>, who: &str, form: &Form) -> Result<(), ApiError> {
    let mut scripts: Vec<AutoAttendant> = Vec::new();
    for (i, number) in fields(form, "aa_number").iter().enumerate() {
        let number = number.trim();
        if number.is_empty() {
            continue;
        }
        scripts.push(AutoAttendant {
            number: number.into(),
            description: col(form, "aa_description", i).into(),
            start: col(form, "aa_start", i).into(),
            menus: Vec::new(),
            conditions: Vec::new(),
            permission_group: col(form, "aa_permission_group", i).into(),
        });
    }
    let find = |scripts: &mut Vec<AutoAttendant>, n: &str| -> Result<usize, ApiError> {
        scripts.iter().position(|s| s.number == n).ok_or_else(|| {
            ApiError::bad("menus", format!("script {n:?} is not in the scripts table"))
        })
    };
    for (i, owner) in fields(form, "m_script").iter().enumerate() {
        let name = col(form, "m_name", i);
        // A spare row carries only its script's number.
        let filled = MENU_COLS[1..]
            .iter()
            .any(|f| !col(form, f, i).is_empty() && col(form, f, i) != "no");
        if !filled {
            continue;
        }
        let num = |f: &str, d: u32| -> Result<u32, ApiError> {
            let v = col(form, f, i);
            if v.is_empty() {
                return Ok(d);
            }
            v.parse().map_err(|_| ApiError::bad(f, "must be a number"))
        };
        let menu = AaMenu {
            name: name.into(),
            announcement: col(form, "m_announcement", i).into(),
            playbacks: num("m_playbacks", 2)?,
            timeout_seconds: num("m_timeout", 10)?,
            default_action: parse_action(col(form, "m_default", i)).map_err(bad("menus"))?,
            dial_by_extension: col(form, "m_dial_by_extension", i) == "yes",
            keys: parse_keys(col(form, "m_keys", i)).map_err(bad("menus"))?,
        };
        let at = find(&mut scripts, owner.trim())?;
        scripts[at].menus.push(menu);
    }
    for (i, owner) in fields(form, "c_script").iter().enumerate() {
        let name = col(form, "c_name", i);
        if COND_COLS[1..].iter().all(|f| col(form, f, i).is_empty()) {
            continue;
        }
        let cond = AaCondition {
            name: name.into(),
            time_range: col(form, "c_range", i).into(),
            then: col(form, "c_then", i).into(),
            otherwise: col(form, "c_otherwise", i).into(),
        };
        let at = find(&mut scripts, owner.trim())?;
        scripts[at].conditions.push(cond);
    }
    crate::ops::change(
        app,
        who,
        "changed auto attendant scripts".into(),
        move |c| {
            c.auto_attendants = scripts;
            Ok(())
        },
    )
    .await
}

/// The rows of the page's four tables, as text: from the configuration, or as the
/// user typed them when saving failed (nothing typed is lost).
struct Rows {
    ranges: Vec<Vec<String>>,
    scripts: Vec<Vec<String>>,
    menus: Vec<Vec<String>>,
    conditions: Vec<Vec<String>>,
}

const RANGE_COLS: [&str; 3] = ["tr_name", "tr_items", "tr_description"];
const SCRIPT_COLS: [&str; 4] = [
    "aa_number",
    "aa_description",
    "aa_start",
    "aa_permission_group",
];
const MENU_COLS: [&str; 8] = [
    "m_script",
    "m_name",
    "m_announcement",
    "m_playbacks",
    "m_timeout",
    "m_default",
    "m_dial_by_extension",
    "m_keys",
];
const COND_COLS: [&str; 5] = ["c_script", "c_name", "c_range", "c_then", "c_otherwise"];

impl Rows {
    fn of(cfg: &config::Config) -> Rows {
        let aa = &cfg.auto_attendants;
        Rows {
            ranges: cfg
                .time_ranges
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.items.iter().map(item_text).collect::<Vec<_>>().join("; "),
                        r.description.clone(),
                    ]
                })
                .collect(),
            scripts: aa
                .iter()
                .map(|a| {
                    vec![
                        a.number.clone(),
                        a.description.clone(),
                        a.start.clone(),
                        a.permission_group.clone(),
                    ]
                })
                .collect(),
            menus: aa
                .iter()
                .flat_map(|a| {
                    a.menus.iter().map(|m| {
                        vec![
                            a.number.clone(),
                            m.name.clone(),
                            m.announcement.clone(),
                            m.playbacks.to_string(),
                            m.timeout_seconds.to_string(),
                            action_text(&m.default_action),
                            if m.dial_by_extension { "yes" } else { "no" }.into(),
                            keys_text(&m.keys),
                        ]
                    })
                })
                .collect(),
            conditions: aa
                .iter()
                .flat_map(|a| {
                    a.conditions.iter().map(|k| {
                        vec![
                            a.number.clone(),
                            k.name.clone(),
                            k.time_range.clone(),
                            k.then.clone(),
                            k.otherwise.clone(),
                        ]
                    })
                })
                .collect(),
        }
    }

    /// Replaces the tables the form carried with what it carried.
    fn typed(mut self, form: &Form) -> Rows {
        let take = |cols: &[&str]| -> Option<Vec<Vec<String>>> {
            let n = fields(form, cols[0]).len();
            (n > 0).then(|| {
                (0..n)
                    .map(|i| cols.iter().map(|c| col(form, c, i).to_string()).collect())
                    .filter(|r: &Vec<String>| r.iter().skip(1).any(|v| !v.is_empty() && v != "no"))
                    .collect()
            })
        };
        if let Some(r) = take(&RANGE_COLS) {
            self.ranges = r;
        }
        if let Some(r) = take(&SCRIPT_COLS) {
            self.scripts = r;
        }
        if let Some(r) = take(&MENU_COLS) {
            self.menus = r;
        }
        if let Some(r) = take(&COND_COLS) {
            self.conditions = r;
        }
        self
    }
}

/// One row of inputs; `sizes` per column; the dial-by-extension column is a choice.
/// A table form's rows as typed (columns `cols`), blank rows left out: what a refused
/// save shows again.
pub(crate) fn typed_rows(form: &Form, cols: &[&str]) -> Vec<Vec<String>> {
    (0..fields(form, cols[0]).len())
        .map(|i| cols.iter().map(|c| col(form, c, i).to_string()).collect())
        .filter(|r: &Vec<String>| r.iter().any(|v| !v.is_empty()))
        .collect()
}

pub(crate) fn row(cols: &[&str], labels: &[&str], sizes: &[u32], values: &[String]) -> Markup {
    html! {
        tr {
            @for (i, name) in cols.iter().enumerate() {
                @let v = values.get(i).map(String::as_str).unwrap_or("");
                td {
                    @if *name == "m_dial_by_extension" {
                        select name=(name) aria-label=(labels[i]) {
                            option value="no" selected[v != "yes"] { "no" }
                            option value="yes" selected[v == "yes"] { "yes" }
                        }
                    } @else {
                        input name=(name) value=(v) size=(sizes[i]) aria-label=(labels[i]);
                    }
                }
            }
        }
    }
}

pub(crate) fn table(
    id: &str,
    cols: &[&str],
    labels: &[&str],
    sizes: &[u32],
    rows: &[Vec<String>],
    spare: usize,
    spare_first: &str,
) -> Markup {
    html! {
        table.rows id=(id) {
            thead { tr { @for l in labels { th { (l) } } } }
            tbody {
                @for r in rows { (row(cols, labels, sizes, r)) }
                @for _ in 0..spare { (row(cols, labels, sizes, &[spare_first.to_string()])) }
            }
        }
    }
}

fn page(
    app: &Arc<App>,
    c: &Caller,
    note: Note,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let snap = app.cfg.snapshot();
    let cfg = &snap.config;
    let write = c.can_write_admin();
    let spare = if write { SPARE } else { 0 };
    let rows = match typed {
        Some(f) => Rows::of(cfg).typed(f),
        None => Rows::of(cfg),
    };
    let first = rows
        .scripts
        .first()
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or_default();
    page_response(
        status,
        layout(
            "Auto attendant",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "A script answers its number (dial it, or map a DID to it) with voice menus. Sounds are uploaded announcements or the box's prompts by name (hello-world, vm-intro). Time conditions pick a branch by the box's local time." }
                h2 { "Announcements" }
                p.hint { "Uploaded sounds (WAV of any rate, half a second to two minutes; stored at 8 kHz). A menu or key names one by its name; a name with no upload plays the system prompt of that name." }
                @let sounds = crate::voicemail::sounds(&app.settings.data_dir);
                @if !sounds.is_empty() {
                    table #sounds {
                        thead { tr { th { "Name" } th { "Length" } th { "Listen" } th {} } }
                        tbody {
                            @for s in &sounds {
                                tr {
                                    td { (s.name) }
                                    td { (s.seconds) " s" }
                                    td { audio controls preload="none" src={ "/api/v1/sounds/" (s.name) } {} }
                                    td {
                                        @if write {
                                            form.inline method="post" action="/admin/routing/attendants/sounds/delete" {
                                                (csrf_field(c))
                                                input type="hidden" name="name" value=(s.name);
                                                button.danger type="submit" { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if write {
                    form.card.sounds data-csrf=(c.session.csrf) {
                        label { "Name" input name="name" pattern="[A-Za-z0-9_-]{1,64}" required; }
                        label { "WAV file" input type="file" name="file" accept="audio/wav,.wav"; }
                        button type="submit" { "Upload announcement" }
                        output.sound-state {}
                    }
                }
                h2 { "Time ranges" }
                p.hint { "Items separated by ; — mon-fri 09:00-17:00, daily 22:00-06:00, fri 17:00 - mon 08:00, 2026-12-24 00:00 - 2026-12-27 00:00. A range holds when a daily or weekly item holds and, if it has dates, one of them does." }
                form method="post" action="/admin/routing/attendants/time-ranges" id="time-ranges" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        (table("ranges", &RANGE_COLS, &["Name", "Items", "Description"], &[10, 40, 16], &rows.ranges, spare, ""))
                        @if write { button type="submit" { "Save time ranges" } }
                    }
                }
                h2 { "Scripts" }
                p.hint { "Actions: dial <number>, voicemail <extension>, goto <menu or condition>, repeat, hangup. Keys: 1=goto sales; 2=dial 102 @transfer (the sound after @ plays first). A menu plays its announcement as many times as its playbacks, waiting its timeout after each, then does what it says when nothing is keyed; an unknown key plays 'invalid' and the menu again." }
                form method="post" action="/admin/routing/attendants/scripts" id="scripts" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        (table("script-list", &SCRIPT_COLS, &["Number", "Description", "Starts at", "Permission group (outside numbers)"], &[6, 16, 8, 8], &rows.scripts, spare, ""))
                        h3 { "Menus" }
                        (table("menus", &MENU_COLS, &["Script", "Menu", "Announcement", "Playbacks", "Timeout (s)", "When nothing is keyed", "Dial by extension", "Keys"], &[5, 8, 10, 2, 3, 12, 3, 30], &rows.menus, spare + 1, &first))
                        h3 { "Time conditions" }
                        (table("conditions", &COND_COLS, &["Script", "Condition", "Time range", "While it holds", "Otherwise"], &[5, 8, 10, 8, 8], &rows.conditions, spare, &first))
                        @if write { button type="submit" { "Save scripts" } }
                    }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_actions_read_back_what_the_page_writes() {
        for s in [
            "mon-fri 09:00-17:00",
            "daily 22:00-06:00",
            "sat,sun 10:00-12:00",
            "fri 17:00 - mon 08:00",
            "2026-12-24 00:00 - 2026-12-27 00:00",
        ] {
            let i = parse_item(s).unwrap();
            assert_eq!(item_text(&i), s);
        }
        for bad in ["", "someday 09:00-17:00", "fri-mon 09:00-10:00", "mon 0900"] {
            assert!(parse_item(bad).is_err(), "{bad}");
        }
        for s in [
            "dial 102",
            "voicemail 101",
            "goto sales",
            "repeat",
            "hangup",
        ] {
            assert_eq!(action_text(&parse_action(s).unwrap()), s);
        }
        assert!(parse_action("dial").is_err() && parse_action("jump 3").is_err());
        let keys = parse_keys("1=goto sales; 2=dial 102 @transfer").unwrap();
        assert_eq!(keys_text(&keys), "1=goto sales; 2=dial 102 @transfer");
        assert!(parse_keys("1 goto").is_err());
    }
}
