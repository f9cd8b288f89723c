//! SIP protection: the exchange's bans (scanners, password guessing, floods) seen and
//! lifted, and the IP address group never banned. `/api/v1/security/bans[/{key}]`,
//! `/api/v1/security/sip_protection` and the page `/admin/security`.

use crate::api::{busy, no_content, ok};
use crate::pages::{csrf_field, field, layout, outcome, page_response, Note};
use crate::{ApiError, App, Caller, Req};
use maud::html;
use serde_json::Value;
use std::sync::Arc;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// `/api/v1/security/...`.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    match (&req.method, rest) {
        (&Method::GET, ["bans"]) => ok(app.ask(crate::CoreRequest::Bans).await.ok_or_else(busy)?),
        (&Method::DELETE, ["bans", key]) => {
            crate::api::need_admin_write(c)?;
            lift(app, c, key).await?;
            no_content()
        }
        (&Method::GET, ["sip_protection"]) => ok(serde_json::to_value(
            &app.cfg.snapshot().config.sip_protection,
        )
        .expect("serialises")),
        (&Method::PUT, ["sip_protection"]) => {
            crate::api::need_admin_write(c)?;
            let mut merged = serde_json::to_value(&app.cfg.snapshot().config.sip_protection)
                .expect("serialises");
            for (k, v) in crate::ops::object(&req.body)? {
                merged[k] = v;
            }
            let p: config::SipProtection = crate::ops::parse(merged)?;
            set_allow_group(app, c, p.allow_group).await?;
            ok(
                serde_json::to_value(&app.cfg.snapshot().config.sip_protection)
                    .expect("serialises"),
            )
        }
        _ => Err(ApiError::not_found("no such security resource")),
    }
}

async fn lift(app: &Arc<App>, c: &Caller, key: &str) -> Result<(), ApiError> {
    let (k, by) = (key.to_string(), c.user.username.clone());
    let done = app
        .ask(|tx| crate::CoreRequest::LiftBan(k, by, tx))
        .await
        .ok_or_else(busy)?;
    if !done {
        return Err(ApiError::not_found(format!("no SIP ban on {key}")));
    }
    Ok(())
}

async fn set_allow_group(app: &Arc<App>, c: &Caller, group: String) -> Result<(), ApiError> {
    let what = if group.is_empty() {
        "SIP protection: no allowed group".to_string()
    } else {
        format!("SIP protection: group {group} never banned")
    };
    crate::ops::change(app, &c.user.username, what, move |cfg| {
        cfg.sip_protection.allow_group = group;
        Ok(())
    })
    .await
    .map(|_| ())
}

/// Routes `/admin/security[/...]`.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    get: bool,
    rest: &[&str],
    form: &[(String, String)],
) -> Response {
    match (get, rest) {
        (true, []) => page(app, c, Note::None, StatusCode::OK).await,
        (false, ["allow"]) => {
            let g = field(form, "allow_group").unwrap_or("").trim().to_string();
            let r = set_allow_group(app, c, g).await;
            let (note, st) = outcome(r, |()| "Saved.".to_string());
            page(app, c, note, st).await
        }
        (false, ["lift"]) => {
            let key = field(form, "key").unwrap_or("").to_string();
            let r = lift(app, c, &key).await;
            let (note, st) = outcome(r, |()| format!("The ban on {key} is lifted."));
            page(app, c, note, st).await
        }
        _ => {
            page(
                app,
                c,
                Note::Error("no such page".into()),
                StatusCode::NOT_FOUND,
            )
            .await
        }
    }
}

async fn page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let write = c.can_write_admin();
    let bans = app
        .ask(crate::CoreRequest::Bans)
        .await
        .unwrap_or(Value::Null);
    let empty = Vec::new();
    let s = crate::pages::json_text;
    let allow = &snap.config.sip_protection.allow_group;
    let log: Vec<store::SecurityEntry> = app
        .cfg
        .store()
        .security_log()
        .unwrap_or_default()
        .into_iter()
        .rev()
        .filter(|e| e.event.starts_with("SIP "))
        .take(50)
        .collect();
    page_response(
        status,
        layout(
            "SIP protection",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "Always on. A source that guesses passwords or user names (10 wrong answers within a minute), scans (requests challenged and never answered, or a scanner's user agent) or floods the box (more than 300 requests a second) gets no answer at all: for 10 minutes, an hour when it does it again within a day, then a day. An address a phone authenticated from is never banned for challenges; a device guessing there is cut off by its source port and the user name it tries, so the phones behind the same router keep working." }
                h2 { "Banned now" }
                @if bans.as_array().is_none_or(|a| a.is_empty()) {
                    p #bans { "No source is banned." }
                } @else {
                    table #bans {
                        thead { tr { th { "Source" } th { "Kind" } th { "Reason" } th { "Since" } th { "Left" } th { "Offence" } @if write { th {} } } }
                        tbody {
                            @for b in bans.as_array().unwrap_or(&empty) {
                                tr {
                                    td { (s(b, "key")) } td { (s(b, "kind")) } td { (s(b, "reason")) }
                                    td { (crate::pages::when(b["since"].as_u64().unwrap_or(0))) }
                                    td { (b["seconds_left"].as_u64().unwrap_or(0) / 60) " min" }
                                    td { (s(b, "offence")) }
                                    @if write {
                                        td {
                                            form.inline method="post" action="/admin/security/lift" {
                                                (csrf_field(c))
                                                input type="hidden" name="key" value=(s(b, "key"));
                                                button type="submit" { "Lift" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p.hint { a href="/admin/security" { "Refresh" } }
                h2 { "Never banned" }
                form method="post" action="/admin/security/allow" id="allow" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        label { "IP address group "
                            select name="allow_group" {
                                option value="" selected[allow.is_empty()] { "(none)" }
                                @for g in &snap.config.ip_groups {
                                    option value=(g.name) selected[*allow == g.name] { (g.name) }
                                }
                            }
                        }
                        p.hint { "Sources in this group (the office, a provider) are never banned nor held to the request rate; messages with a scanner's user agent are still dropped. Groups are made on the " a href="/admin/routing/ip-groups" { "IP address groups" } " page." }
                        @if write { button type="submit" { "Save" } }
                    }
                }
                h2 { "Recent SIP security events" }
                table #sip-events {
                    thead { tr { th { "When (UTC)" } th { "Source" } th { "User" } th { "Event" } } }
                    tbody {
                        @for e in &log {
                            tr { td { (crate::pages::when(e.when)) } td { (e.address) } td { (e.username) } td { (e.event) } }
                        }
                    }
                }
            },
        ),
    )
}
