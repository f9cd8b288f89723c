//! Call queues (Kerio 14 and 27.3): the queues in the configuration
//! (`/api/v1/routing/queues`), their waiting callers, agents and figures now with
//! agents logged in and out (`/api/v1/status/queues`), and the page
//! `/admin/routing/queues` with both.

use crate::api::{busy, no_content, ok};
use crate::pages::{csrf_field, field, layout, numbers_list, outcome, page_response, Note};
use crate::{ApiError, App, Caller, Req};
use config::{Queue, QueueStrategy};
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// `/api/v1/status/queues[/{queue}/agents/{extension}]`: the live view; an agent
/// logged in or out (`{"logged_in": true}`).
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    match (&req.method, rest) {
        (&Method::GET, []) => ok(app.ask(crate::CoreRequest::Queues).await.ok_or_else(busy)?),
        (&Method::PUT, [queue, "agents", ext]) => {
            crate::api::need_admin_write(c)?;
            let body = crate::ops::object(&req.body)?;
            let login = match body.get("logged_in") {
                Some(Value::Bool(b)) => *b,
                _ => return Err(ApiError::bad("logged_in", "must be true or false")),
            };
            if let Some(k) = body.keys().find(|k| *k != "logged_in") {
                return Err(ApiError::bad(k, "is not a field of an agent"));
            }
            agent(app, queue, ext, login).await?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such queue resource")),
    }
}

async fn agent(app: &Arc<App>, queue: &str, ext: &str, login: bool) -> Result<(), ApiError> {
    let (q, e) = (queue.to_string(), ext.to_string());
    let done = app
        .ask(|tx| crate::CoreRequest::QueueLogin(q, e, login, tx))
        .await
        .ok_or_else(busy)?;
    if done {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "queue {queue} takes no agents logging in, or {ext} is no extension"
        )))
    }
}

type Form = [(String, String)];

const STRATEGIES: [QueueStrategy; 5] = [
    QueueStrategy::RingAll,
    QueueStrategy::LongestIdle,
    QueueStrategy::FewestCalls,
    QueueStrategy::Random,
    QueueStrategy::RoundRobin,
];

fn strategy_key(s: QueueStrategy) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Routes `/admin/routing/queues[/...]`.
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
        (false, ["save"]) => {
            let r = save(app, &who, form).await;
            let (note, st) = outcome(r, |n| format!("Queue {n} saved."));
            let typed = (st != StatusCode::OK).then_some(form);
            page(app, c, note, st, typed).await
        }
        (false, [number, "delete"]) => {
            let n = number.to_string();
            let r = crate::ops::change(app, &who, format!("removed queue {n}"), move |cfg| {
                cfg.queues.retain(|q| q.number != n);
                Ok(())
            })
            .await;
            let (note, st) = outcome(r, |()| format!("Queue {number} removed."));
            page(app, c, note, st, None).await
        }
        (false, ["recordings", name, "delete"]) => {
            let r =
                crate::api::need_admin_write(c).and_then(|()| crate::recordings::remove(app, name));
            let (note, st) = outcome(r, |()| format!("Recorded call {name} removed."));
            page(app, c, note, st, None).await
        }
        (false, ["recordings-limit"]) => {
            let v = field(form, "recordings_max_mb")
                .unwrap_or("")
                .trim()
                .to_string();
            let r = match v.parse::<u32>() {
                Err(_) => Err(ApiError::bad(
                    "recordings_max_mb",
                    format!("{v:?} is not a whole number of megabytes"),
                )),
                Ok(mb) => {
                    crate::ops::change(
                        app,
                        &who,
                        format!("recorded calls kept up to {mb} MB"),
                        move |cfg| {
                            cfg.recordings_max_mb = mb;
                            Ok(())
                        },
                    )
                    .await
                }
            };
            let (note, st) = outcome(r, |()| "Size limit saved.".to_string());
            page(app, c, note, st, None).await
        }
        (false, [queue, "agents", ext, act @ ("login" | "logout")]) => {
            let r = match crate::api::need_admin_write(c) {
                Err(e) => Err(e),
                Ok(()) => agent(app, queue, ext, *act == "login").await,
            };
            let (note, st) = outcome(r, |()| {
                if *act == "login" {
                    format!("{ext} logged in to queue {queue}.")
                } else {
                    format!("{ext} logged out of queue {queue}.")
                }
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

/// The queue the form describes, and the first field that could not be read (its
/// value is then the default, so the form comes back with everything else as typed).
fn from_form(form: &Form) -> (Queue, Option<ApiError>) {
    let mut bad = None;
    let mut num = |name: &str| -> u32 {
        let v = field(form, name).unwrap_or("").trim();
        if v.is_empty() {
            return 0;
        }
        v.parse().unwrap_or_else(|_| {
            bad.get_or_insert_with(|| {
                ApiError::bad(
                    name,
                    format!("{v:?} is not a whole number of a sensible size"),
                )
            });
            0
        })
    };
    let text = |n: &str| field(form, n).unwrap_or("").trim().to_string();
    let on = |n: &str| field(form, n).is_some();
    let strategy = STRATEGIES
        .into_iter()
        .find(|s| strategy_key(*s) == text("strategy"));
    let ring = num("ring_seconds");
    let priority = num("priority");
    let q = Queue {
        number: text("number"),
        description: text("description"),
        strategy: strategy.unwrap_or_default(),
        max_callers: num("max_callers"),
        max_wait_seconds: num("max_wait_seconds"),
        fallback: text("fallback"),
        music: text("music"),
        agents: numbers_list(&text("agents")),
        dynamic_agents: on("dynamic_agents"),
        login_code: text("login_code"),
        logout_code: text("logout_code"),
        ring_seconds: if ring == 0 { 20 } else { ring },
        wrapup_seconds: num("wrapup_seconds"),
        // Out of range is the configuration's to say (0 to 10).
        priority: u8::try_from(priority).unwrap_or(u8::MAX),
        position_seconds: num("position_seconds"),
        hold_time: on("hold_time"),
        periodic_seconds: num("periodic_seconds"),
        periodic_sound: text("periodic_sound"),
        agent_sound: text("agent_sound"),
        refuse_when_empty: on("refuse_when_empty"),
        leave_when_empty: on("leave_when_empty"),
        record: on("record"),
    };
    if strategy.is_none() {
        bad.get_or_insert_with(|| ApiError::bad("strategy", "is not a queue strategy"));
    }
    (q, bad)
}

async fn save(app: &Arc<App>, who: &str, form: &Form) -> Result<String, ApiError> {
    let (q, bad) = from_form(form);
    if let Some(e) = bad {
        return Err(e);
    }
    let original = field(form, "original").unwrap_or("").to_string();
    let number = q.number.clone();
    crate::ops::change(app, who, format!("saved queue {number}"), move |cfg| {
        match cfg
            .queues
            .iter_mut()
            .find(|x| !original.is_empty() && x.number == original)
        {
            Some(x) => *x = q,
            None => cfg.queues.push(q),
        }
        Ok(())
    })
    .await?;
    Ok(number)
}

/// The form for queue `v`, which replaces queue `original` when saved (`None`: a
/// new queue).
fn queue_form(c: &Caller, v: &Queue, original: Option<&str>, music: &[String]) -> Markup {
    let write = c.can_write_admin();
    let secs = |n: u32| if n == 0 { String::new() } else { n.to_string() };
    let id = match original {
        Some(n) => format!("queue-{n}"),
        None => "queue-new".to_string(),
    };
    html! {
        form.queue method="post" action="/admin/routing/queues/save" id=(id) {
            (csrf_field(c))
            input type="hidden" name="original" value=(original.unwrap_or(""));
            fieldset disabled[!write] {
                legend { @if let Some(n) = original { "Queue " (n) } @else { "New queue" } }
                label { "Number " input name="number" value=(v.number) inputmode="numeric" size="8"; }
                label { "Description " input name="description" value=(v.description) size="24"; }
                label { "Strategy "
                    select name="strategy" {
                        @for s in STRATEGIES {
                            option value=(strategy_key(s)) selected[s == v.strategy] { (s.label()) }
                        }
                    }
                }
                br;
                label { "Agents (extensions) " input name="agents" value=(v.agents.join(", ")) size="30"; }
                label { input type="checkbox" name="dynamic_agents" checked[v.dynamic_agents]; " Agents log in and out with codes" }
                label { "Login code " input name="login_code" value=(v.login_code) size="6"; }
                label { "Logout code " input name="logout_code" value=(v.logout_code) size="6"; }
                br;
                label { "Agent rings (s) " input name="ring_seconds" value=(v.ring_seconds) size="4"; }
                label { "Wrap-up (s) " input name="wrapup_seconds" value=(secs(v.wrapup_seconds)) size="4"; }
                label { "Priority (0-10) " input name="priority" value=(v.priority) size="3"; }
                br;
                label { "Most callers (empty: 999) " input name="max_callers" value=(secs(v.max_callers)) size="4"; }
                label { "Longest wait (s, empty: none) " input name="max_wait_seconds" value=(secs(v.max_wait_seconds)) size="5"; }
                label { "Fallback " input name="fallback" value=(v.fallback) size="16" placeholder="number or voicemail:101"; }
                br;
                label { "Music on hold "
                    select name="music" {
                        option value="" selected[v.music.is_empty()] { "the default" }
                        @for m in music {
                            option value=(m) selected[*m == v.music] { (m) }
                        }
                    }
                }
                label { "Say the place every (s) " input name="position_seconds" value=(secs(v.position_seconds)) size="4"; }
                label { input type="checkbox" name="hold_time" checked[v.hold_time]; " with the estimated hold time" }
                br;
                label { "Periodic announcement every (s) " input name="periodic_seconds" value=(secs(v.periodic_seconds)) size="4"; }
                label { "Sound " input name="periodic_sound" value=(v.periodic_sound) size="16" placeholder="queue-periodic-announce"; }
                label { "Agents hear first " input name="agent_sound" value=(v.agent_sound) size="16" placeholder="nothing"; }
                br;
                label { input type="checkbox" name="refuse_when_empty" checked[v.refuse_when_empty]; " No agent logged in: callers go to the fallback" }
                label { input type="checkbox" name="leave_when_empty" checked[v.leave_when_empty]; " The last agent logs out: waiting callers go to the fallback" }
                label { input type="checkbox" name="record" checked[v.record]; " Record the calls agents answer" }
                @if write { br; button type="submit" { "Save queue" } }
            }
        }
        @if let (true, Some(n)) = (write, original) {
            form.inline method="post" action={ "/admin/routing/queues/" (n) "/delete" } {
                (csrf_field(c))
                button.danger type="submit" { "Remove queue " (n) }
            }
        }
    }
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
    let live = app
        .ask(crate::CoreRequest::Queues)
        .await
        .unwrap_or(Value::Null);
    let empty = Vec::new();
    let s = crate::pages::json_text;
    let mut music: Vec<String> = vec![config::SYSTEM_MUSIC.to_string()];
    music.extend(snap.config.music.iter().map(|m| m.name.clone()));
    // A refused form comes back as typed, in place of the queue it edits.
    let typed_queue = typed.map(|f| from_form(f).0);
    let typed_original = typed.and_then(|f| field(f, "original")).unwrap_or("");
    let blank = Queue::new("", &[]);
    page_response(
        status,
        layout(
            "Call queues",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "Callers dial a queue's number and wait with music until an agent is free; the strategy picks which free agent rings. Agents are extensions assigned to the queue, or extensions that dial the login code (and later the logout code)." }
                h2 { "Queues now" }
                @if live.as_array().is_none_or(|a| a.is_empty()) {
                    p #queue-live { "No queue." }
                } @else {
                    table #queue-live {
                        thead { tr { th { "Queue" } th { "Waiting" } th { "Answered" } th { "Abandoned" } th { "Redirected" } th { "Average wait" } th { "Longest wait" } } }
                        tbody {
                            @for q in live.as_array().unwrap_or(&empty) {
                                tr {
                                    td { (s(q, "number")) " " (s(q, "description")) }
                                    td { (q["waiting"].as_array().map_or(0, |w| w.len())) }
                                    td { (s(q, "answered")) } td { (s(q, "abandoned")) } td { (s(q, "redirected")) }
                                    td { (s(q, "average_wait")) " s" } td { (s(q, "longest_wait")) " s" }
                                }
                            }
                        }
                    }
                    h3 { "Callers" }
                    table #queue-callers {
                        thead { tr { th { "Queue" } th { "Place" } th { "Caller" } th { "Waiting" } th { "Ringing" } } }
                        tbody {
                            @for q in live.as_array().unwrap_or(&empty) {
                                @for w in q["waiting"].as_array().unwrap_or(&empty) {
                                    tr {
                                        td { (s(q, "number")) } td { (s(w, "position")) }
                                        td { (s(w, "number")) @if !s(w, "name").is_empty() { " (" (s(w, "name")) ")" } }
                                        td { (s(w, "seconds")) " s" }
                                        td { (w["ringing"].as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "Agents" }
                    table #queue-agents {
                        thead { tr { th { "Queue" } th { "Agent" } th { "State" } th { "Answered" } th { "Missed" } @if write { th {} } } }
                        tbody {
                            @for q in live.as_array().unwrap_or(&empty) {
                                @for a in q["agents"].as_array().unwrap_or(&empty) {
                                    @let (queue, ext) = (s(q, "number"), s(a, "extension"));
                                    tr {
                                        td { (queue) }
                                        td { (ext) @if !s(a, "name").is_empty() { " (" (s(a, "name")) ")" } @if a["dynamic"].as_bool() == Some(true) { " (logged in)" } }
                                        td { (s(a, "state")) } td { (s(a, "answered")) } td { (s(a, "missed")) }
                                        @if write {
                                            td {
                                                @if a["dynamic"].as_bool() == Some(true) {
                                                    form.inline method="post" action={ "/admin/routing/queues/" (queue) "/agents/" (ext) "/logout" } {
                                                        (csrf_field(c))
                                                        button type="submit" { "Log out" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p.hint { a href="/admin/routing/queues" { "Refresh" } }
                }
                h2 { "Recorded calls" }
                @let recs = crate::recordings::list(app);
                @let used: u64 = recs.iter().map(|r| r.bytes).sum();
                p.hint { "Calls of queues that record them: the caller on the left, the agent on the right (the first hour of a call). " (recs.len()) " recordings, " (used / 1_000_000) " MB; past the limit the oldest go." }
                form.inline method="post" action="/admin/routing/queues/recordings-limit" id="recordings-limit" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        label { "Keep up to (MB) " input name="recordings_max_mb" value=(snap.config.recordings_max_mb) size="7" inputmode="numeric"; }
                        @if write { button type="submit" { "Save limit" } }
                    }
                }
                @if !recs.is_empty() {
                    table #recordings {
                        thead { tr { th { "Time" } th { "Queue" } th { "Caller" } th { "Agent" } th { "Length" } th { "Listen" } @if write { th {} } } }
                        tbody {
                            @for r in &recs {
                                tr {
                                    td { (crate::pages::when(r.time)) } td { (r.queue) } td { (r.caller) } td { (r.agent) }
                                    td { (r.seconds) " s" }
                                    td { @if write { audio controls preload="none" src={ "/api/v1/recordings/" (r.name) } {} } }
                                    @if write {
                                        td {
                                            form.inline method="post" action={ "/admin/routing/queues/recordings/" (r.name) "/delete" } {
                                                (csrf_field(c))
                                                button.danger type="submit" { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { "Queues" }
                @for q in &snap.config.queues {
                    @let shown = typed_queue.as_ref().filter(|_| typed_original == q.number).unwrap_or(q);
                    (queue_form(c, shown, Some(&q.number), &music))
                }
                @if write {
                    @let shown = typed_queue.as_ref().filter(|_| typed_original.is_empty()).unwrap_or(&blank);
                    (queue_form(c, shown, None, &music))
                }
            },
        ),
    )
}
