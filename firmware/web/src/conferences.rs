//! Conference rooms (Kerio 13 and 27.2): the rooms in the configuration
//! (`/api/v1/routing/conferences`), who is in them now with mute and kick
//! (`/api/v1/status/conferences`), and the page `/admin/routing/conferences` with both.

use crate::api::{busy, no_content, ok};
use crate::attendant_pages::{table, typed_rows};
use crate::pages::{csrf_field, fields, layout, outcome, page_response, Note};
use crate::{ApiError, App, Caller, Req};
use config::Conference;
use maud::html;
use serde_json::Value;
use std::sync::Arc;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

fn call_id(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found(format!("no participant {s}")))
}

/// `/api/v1/status/conferences[/{room}/{call}]`: the live view, mute, kick.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    match (&req.method, rest) {
        (&Method::GET, []) => ok(app
            .ask(crate::CoreRequest::Conferences)
            .await
            .ok_or_else(busy)?),
        (&Method::PUT, [room, call]) => {
            crate::api::need_admin_write(c)?;
            let call = call_id(call)?;
            let body = crate::ops::object(&req.body)?;
            let muted = match body.get("muted") {
                Some(Value::Bool(b)) => *b,
                _ => return Err(ApiError::bad("muted", "must be true or false")),
            };
            if let Some(k) = body.keys().find(|k| *k != "muted") {
                return Err(ApiError::bad(k, "is not a field of a participant"));
            }
            participant(app, room, call, Some(muted)).await?;
            no_content()
        }
        (&Method::DELETE, [room, call]) => {
            crate::api::need_admin_write(c)?;
            participant(app, room, call_id(call)?, None).await?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such conference resource")),
    }
}

/// Mutes or unmutes (`Some`) or puts out (`None`) participant `call` of `room`.
async fn participant(
    app: &Arc<App>,
    room: &str,
    call: u64,
    muted: Option<bool>,
) -> Result<(), ApiError> {
    let room = room.to_string();
    let done = match muted {
        Some(m) => {
            app.ask(|tx| crate::CoreRequest::ConferenceMute(room.clone(), call, m, tx))
                .await
        }
        None => {
            app.ask(|tx| crate::CoreRequest::ConferenceKick(room.clone(), call, tx))
                .await
        }
    }
    .ok_or_else(busy)?;
    if done {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "call {call} is not in conference {room}"
        )))
    }
}

type Form = [(String, String)];

const COLS: [&str; 5] = [
    "cf_number",
    "cf_description",
    "cf_pin",
    "cf_max",
    "cf_tones",
];

/// Routes `/admin/routing/conferences[/...]`.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    get: bool,
    rest: &[&str],
    form: &Form,
) -> Response {
    let who = c.user.username.clone();
    match (get, rest) {
        (true, []) => page(app, c, Note::None, StatusCode::OK, None).await,
        (false, ["rooms"]) => {
            let r = save(app, &who, form).await;
            let (note, st) = outcome(r, |()| "Conference rooms saved.".into());
            let typed = (st != StatusCode::OK).then_some(form);
            page(app, c, note, st, typed).await
        }
        (false, [room, call, act @ ("mute" | "unmute" | "kick")]) => {
            let r = match (crate::api::need_admin_write(c), call_id(call)) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(()), Ok(id)) => {
                    let muted = match *act {
                        "mute" => Some(true),
                        "unmute" => Some(false),
                        _ => None,
                    };
                    participant(app, room, id, muted).await
                }
            };
            let (note, st) = outcome(r, |()| match *act {
                "kick" => format!("Call {call} put out of conference {room}."),
                "mute" => format!("Call {call} muted."),
                _ => format!("Call {call} unmuted."),
            });
            page(app, c, note, st, None).await
        }
        _ => {
            page(
                app,
                c,
                Note::Error("no such page".into()),
                StatusCode::NOT_FOUND,
                None,
            )
            .await
        }
    }
}

async fn save(app: &Arc<App>, who: &str, form: &Form) -> Result<(), ApiError> {
    let mut v = Vec::new();
    for (i, number) in fields(form, COLS[0]).iter().enumerate() {
        let col = |n: &str| fields(form, n).get(i).map_or("", |s| s.trim()).to_string();
        let (number, description, pin, max) = (
            number.trim().to_string(),
            col(COLS[1]),
            col(COLS[2]),
            col(COLS[3]),
        );
        if number.is_empty() && description.is_empty() && pin.is_empty() && max.is_empty() {
            continue;
        }
        let max_participants = if max.is_empty() {
            0
        } else {
            max.parse().map_err(|_| {
                ApiError::bad(
                    "max_participants",
                    format!("conference {number}: {max:?} is not a number"),
                )
            })?
        };
        v.push(Conference {
            number,
            description,
            pin,
            max_participants,
            tones: col(COLS[4]) != "no",
        });
    }
    crate::ops::change(app, who, "changed conference rooms".into(), move |c| {
        c.conferences = v;
        Ok(())
    })
    .await
}

async fn page(
    app: &Arc<App>,
    c: &Caller,
    note: Note,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let snap = app.cfg.snapshot();
    let write = c.can_write_admin();
    let rows: Vec<Vec<String>> = match typed {
        Some(f) => typed_rows(f, &COLS),
        None => snap
            .config
            .conferences
            .iter()
            .map(|r| {
                vec![
                    r.number.clone(),
                    r.description.clone(),
                    // Auditors see that a room has a PIN, not the PIN.
                    if write || r.pin.is_empty() {
                        r.pin.clone()
                    } else {
                        "****".to_string()
                    },
                    match r.max_participants {
                        0 => String::new(),
                        n => n.to_string(),
                    },
                    if r.tones { "yes" } else { "no" }.to_string(),
                ]
            })
            .collect(),
    };
    let live = app
        .ask(crate::CoreRequest::Conferences)
        .await
        .unwrap_or(Value::Null);
    let empty = Vec::new();
    let s = crate::pages::json_text;
    let busy_rooms: Vec<&Value> = live
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|r| r["participants"].as_array().is_some_and(|p| !p.is_empty()))
        .collect();
    page_response(
        status,
        layout(
            "Conferences",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "Callers dial a room's number (from a phone, an auto attendant or a DID) and, when it has a PIN, key it; everyone in a room hears everyone else. In a room, * mutes and unmutes oneself." }
                h2 { "In conference now" }
                @if busy_rooms.is_empty() {
                    p #conference-live { "Nobody is in a conference." }
                } @else {
                    table #conference-live {
                        thead { tr { th { "Room" } th { "Call" } th { "Participant" } th { "Time" } th { "Muted" } @if write { th {} } } }
                        tbody {
                            @for r in &busy_rooms {
                                @for p in r["participants"].as_array().unwrap_or(&empty) {
                                    @let (room, call) = (s(r, "number"), s(p, "call"));
                                    @let muted = p["muted"].as_bool().unwrap_or(false);
                                    tr {
                                        td { (room) } td { (call) }
                                        td { (s(p, "number")) @if !s(p, "name").is_empty() { " (" (s(p, "name")) ")" } }
                                        td { (s(p, "seconds")) " s" }
                                        td { @if muted { "muted" } @else { "no" } }
                                        @if write {
                                            td {
                                                form.inline method="post" action={ "/admin/routing/conferences/" (room) "/" (call) "/" (if muted { "unmute" } else { "mute" }) } {
                                                    (csrf_field(c))
                                                    button type="submit" { @if muted { "Unmute" } @else { "Mute" } }
                                                }
                                                form.inline method="post" action={ "/admin/routing/conferences/" (room) "/" (call) "/kick" } {
                                                    (csrf_field(c))
                                                    button.danger type="submit" { "Put out" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.hint { a href="/admin/routing/conferences" { "Refresh" } }
                }
                h2 { "Rooms" }
                p.hint { "Max participants: 2 to 64, empty for the box's limit (64). PIN: digits, empty for none. Tones: yes or no (someone joining or leaving)." }
                form method="post" action="/admin/routing/conferences/rooms" id="rooms" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        (table("conference-rooms", &COLS, &["Number", "Description", "PIN", "Max participants", "Tones"], &[8, 24, 8, 4, 4], &rows, if write { 2 } else { 0 }, ""))
                        @if write { button type="submit" { "Save rooms" } }
                    }
                }
            },
        ),
    )
}
