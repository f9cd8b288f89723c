//! Call history (Kerio 27.6): `GET /api/v1/history` (filters, JSON or CSV), `DELETE
//! /api/v1/history` (clear), the admin page `/admin/history` with the same filters, a
//! CSV export and Clear, and each user's own calls in the portal.
//!
//! Filters (query string, all optional): `number` (calls it took part in; with
//! `match=contains` any number or name containing it), `since` and `until` (Unix
//! seconds or `YYYY-MM-DD[ HH:MM]` UTC), `outcome` (answered, busy, no_answer,
//! unavailable, cancelled, refused, failed), `limit` (1-10000, default 500) and
//! `format=csv`.

use crate::api::{need_admin_read, need_admin_write, no_content};
use crate::pages::{csrf_field, layout, page_response, when, Note};
use crate::{ApiError, App, Caller, Req};
use maud::html;
use serde_json::Value;
use std::sync::Arc;
use store::history::{CallRecord, HistoryQuery, Outcome};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

/// The most records one answer carries.
pub(crate) const MAX_LIMIT: usize = 10_000;

fn bad(field: &str, why: &str) -> ApiError {
    ApiError::bad(field, format!("{field}: {why}"))
}

fn time_of(field: &str, v: &str, end_of_day: bool) -> Result<u64, ApiError> {
    let v = v.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Ok(n);
    }
    let with_time = if v.len() == 10 {
        format!("{v} {}", if end_of_day { "23:59" } else { "00:00" })
    } else {
        v.to_string()
    };
    crate::pages::parse_when(&with_time)
        .map(|t| {
            if end_of_day && v.len() == 10 {
                t + 59
            } else {
                t
            }
        })
        .ok_or_else(|| bad(field, "a date YYYY-MM-DD [HH:MM] or Unix seconds"))
}

/// The filters of a query string (or of the admin page's form).
pub(crate) fn parse_query(pairs: &[(String, String)]) -> Result<(HistoryQuery, bool), ApiError> {
    let mut q = HistoryQuery {
        limit: 500,
        ..Default::default()
    };
    let mut csv = false;
    for (k, v) in pairs {
        let v = v.trim();
        match k.as_str() {
            "number" if !v.is_empty() => {
                if v.len() > 64 {
                    return Err(bad("number", "at most 64 characters"));
                }
                q.number = Some(v.to_string());
            }
            "match" => match v {
                "exact" | "" => q.contains = false,
                "contains" => q.contains = true,
                _ => return Err(bad("match", "exact or contains")),
            },
            "since" if !v.is_empty() => q.since = Some(time_of("since", v, false)?),
            "until" if !v.is_empty() => q.until = Some(time_of("until", v, true)?),
            "outcome" if !v.is_empty() => {
                q.outcome = Some(
                    serde_json::from_value::<Outcome>(Value::String(v.to_string())).map_err(
                        |_| {
                            bad(
                        "outcome",
                        "answered, busy, no_answer, unavailable, cancelled, refused or failed",
                    )
                        },
                    )?,
                )
            }
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad("limit", "a number from 1 to 10000"))?
            }
            "format" => match v {
                "csv" => csv = true,
                "json" | "" => csv = false,
                _ => return Err(bad("format", "json or csv")),
            },
            _ => {}
        }
    }
    Ok((q, csv))
}

fn query_pairs(req: &Req) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The history as CSV (UTC times; a leading = + - @ is defused for spreadsheets).
pub(crate) fn csv(records: &[CallRecord]) -> String {
    let f = crate::ops::csv_field;
    let mut out = String::from(
        "Start (UTC),Answered (UTC),End (UTC),Caller,Caller name,Called,Answered by,Outcome,Status,Duration (s),Direction,Trunk,Transferred by\r\n",
    );
    for r in records {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            when(r.start),
            r.answered.map(when).unwrap_or_default(),
            when(r.end),
            f(&r.caller),
            f(&r.caller_name),
            f(&r.called),
            f(&r.answered_by),
            r.outcome.as_str(),
            r.status,
            r.duration,
            serde_json::to_value(r.direction)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            f(&r.trunk),
            f(&r.transferred_by),
        ));
    }
    out
}

fn csv_response(records: &[CallRecord]) -> Response {
    let mut r = warp::reply::with_header(csv(records), "content-type", "text/csv; charset=utf-8")
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"call-history.csv\""),
    );
    r
}

fn store_err(e: store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))
}

/// `GET` and `DELETE /api/v1/history`: administrators and auditors see every call;
/// other users only calls of their own extensions.
pub(crate) fn api(app: &Arc<App>, req: &Req, c: &Caller) -> Result<Response, ApiError> {
    if req.method == warp::http::Method::DELETE {
        need_admin_write(c)?;
        app.cfg.store().clear_history().map_err(store_err)?;
        app.security(req.addr, &c.user.username, "call history cleared");
        return no_content();
    }
    let (q, as_csv) = parse_query(&query_pairs(req))?;
    let records = if need_admin_read(c).is_ok() {
        app.cfg.store().history(&q).map_err(store_err)?
    } else {
        own_calls(app, c, q)?
    };
    if as_csv {
        return Ok(csv_response(&records));
    }
    crate::api::ok(serde_json::to_value(records).expect("serialises"))
}

/// The calls that involve one of `c`'s extensions, with `q`'s other filters.
fn own_calls(app: &App, c: &Caller, q: HistoryQuery) -> Result<Vec<CallRecord>, ApiError> {
    let limit = q.limit;
    let mine = &c.user.extensions;
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let all = app
        .cfg
        .store()
        .history(&HistoryQuery { limit: 0, ..q })
        .map_err(store_err)?;
    // An external caller's number may equal an extension's: only the local parties
    // count.
    let local = |r: &CallRecord, n: &String| {
        r.called == *n
            || r.answered_by == *n
            || r.transferred_by == *n
            || (r.caller == *n && r.direction != store::history::Direction::Inbound)
    };
    Ok(all
        .into_iter()
        .filter(|r| mine.iter().any(|n| local(r, n)))
        .take(limit)
        .collect())
}

/// The history's table; `own` (the portal: the user's numbers) adds a link that calls
/// the other party back from the portal's phone.
fn rows(records: &[CallRecord], own: Option<&[String]>) -> maud::Markup {
    let other = |r: &CallRecord| -> Option<String> {
        let own = own?;
        let n = if own.contains(&r.caller) {
            &r.called
        } else {
            &r.caller
        };
        (!n.is_empty() && !own.contains(n)).then(|| n.clone())
    };
    html! {
        table id="history" {
            thead { tr {
                th { "Start (UTC)" } th { "Caller" } th { "Called" } th { "Answered by" }
                th { "Outcome" } th { "Duration" } th { "Trunk" } th { "Transferred by" }
                @if own.is_some() { th { "Call" } }
            } }
            tbody {
                @for r in records {
                    tr data-outcome=(r.outcome.as_str()) {
                        td { (when(r.start)) }
                        td { (r.caller) @if !r.caller_name.is_empty() { " (" (r.caller_name) ")" } }
                        td { (r.called) }
                        td { (r.answered_by) }
                        td { (r.outcome.as_str()) }
                        td { (format!("{}:{:02}", r.duration / 60, r.duration % 60)) }
                        td { (r.trunk) }
                        td { (r.transferred_by) }
                        @if own.is_some() {
                            td { @if let Some(n) = other(r) {
                                a.call href=(format!("/phone?dial={}", form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>())) { "Call " (n) }
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// `/admin/history`: filters, the list, CSV export and Clear.
pub(crate) fn admin_page(app: &Arc<App>, req: &Req, c: &Caller, note: Note) -> Response {
    let pairs = query_pairs(req);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (records, note, status) = match parse_query(&pairs) {
        Ok((q, true)) => {
            return match app.cfg.store().history(&q) {
                Ok(r) => csv_response(&r),
                Err(e) => page_response(StatusCode::SERVICE_UNAVAILABLE, html! { (e.to_string()) }),
            }
        }
        Ok((q, false)) => match app.cfg.store().history(&q) {
            Ok(r) => (r, note, StatusCode::OK),
            Err(e) => (
                Vec::new(),
                Note::Error(e.to_string()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        },
        Err(e) => (Vec::new(), e.into(), StatusCode::BAD_REQUEST),
    };
    let mut export: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "format")
        .cloned()
        .collect();
    export.push(("format".into(), "csv".into()));
    let export = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(export)
        .finish();
    let outcome = get("outcome");
    page_response(
        status,
        layout(
            "Call history",
            Some(c),
            true,
            &note,
            html! {
                form.card.filters method="get" action="/admin/history" {
                    label { "Number or name contains" input name="number" value=(get("number")) inputmode="tel"; }
                    input type="hidden" name="match" value="contains";
                    label { "From (YYYY-MM-DD)" input name="since" value=(get("since")) placeholder="2026-12-01"; }
                    label { "To (YYYY-MM-DD)" input name="until" value=(get("until")) placeholder="2026-12-31"; }
                    label { "Outcome"
                        select name="outcome" {
                            option value="" selected[outcome.is_empty()] { "any" }
                            @for o in ["answered", "busy", "no_answer", "unavailable", "cancelled", "refused", "failed"] {
                                option value=(o) selected[outcome == o] { (o.replace('_', " ")) }
                            }
                        }
                    }
                    button type="submit" { "Show" }
                    a.button href=(format!("/admin/history?{export}")) download="call-history.csv" { "Export to CSV" }
                }
                p { (records.len()) " calls" @if records.len() >= 500 { " (the newest 500; narrow the filters)" } "." }
                (rows(&records, None))
                @if c.can_write_admin() {
                    form.card method="post" action="/admin/history/clear" {
                        (csrf_field(c))
                        button.danger type="submit" { "Clear history" }
                    }
                }
            },
        ),
    )
}

/// `POST /admin/history/clear`.
pub(crate) fn clear(app: &Arc<App>, req: &Req, c: &Caller) -> Response {
    let note = match app.cfg.store().clear_history() {
        Ok(()) => {
            app.security(req.addr, &c.user.username, "call history cleared");
            Note::Done("The call history is cleared.".into())
        }
        Err(e) => Note::Error(e.to_string()),
    };
    admin_page(app, req, c, note)
}

/// The portal's list of the user's own latest calls.
pub(crate) fn portal_section(app: &App, c: &Caller) -> maud::Markup {
    let q = HistoryQuery {
        limit: 50,
        ..Default::default()
    };
    let records = own_calls(app, c, q).unwrap_or_default();
    html! {
        h2 { "My calls" }
        @if records.is_empty() { p { "No calls yet." } } @else { (rows(&records, Some(&c.user.extensions))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn filters_are_read_and_bad_ones_named() {
        let (q, csv) = parse_query(&pairs(
            "number=101&since=2026-12-01&until=2026-12-01&outcome=no_answer&limit=20&format=csv",
        ))
        .unwrap();
        assert!(csv);
        assert_eq!(q.number.as_deref(), Some("101"));
        assert_eq!(q.since, Some(1_796_083_200));
        assert_eq!(q.until, Some(1_796_083_200 + 86_399));
        assert_eq!(q.outcome, Some(Outcome::NoAnswer));
        assert_eq!(q.limit, 20);
        for (bad, field) in [
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("limit=10001", "limit"),
            ("since=yesterday", "since"),
            ("until=2026-13-01", "until"),
            ("outcome=great", "outcome"),
            ("format=xml", "format"),
            ("match=fuzzy", "match"),
        ] {
            let e = parse_query(&pairs(bad)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{bad}: {e:?}");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn csv_quotes_and_defuses() {
        let r = CallRecord {
            id: 1,
            start: 0,
            answered: None,
            end: 5,
            caller: "=cmd".into(),
            caller_name: "Doe, \"J\"".into(),
            called: "102".into(),
            answered_by: String::new(),
            outcome: Outcome::Busy,
            status: 486,
            duration: 0,
            direction: store::history::Direction::Inbound,
            trunk: "provider".into(),
            transferred_by: String::new(),
        };
        let out = csv(&[r]);
        let line = out.lines().nth(1).unwrap();
        assert!(
            line.contains(",'=cmd,\"Doe, \"\"J\"\"\",102,,busy,486,0,inbound,provider,"),
            "{line}"
        );
    }
}
