//! The logs in the web admin (Kerio 28): each log viewed newest first, searched,
//! downloaded and (the files) cleared; the debug classes, the rotation and the syslog
//! server set. `config` and `security` come from the store, the others from the files
//! the `logs` crate writes.

use crate::api::{need_admin_read, need_admin_write, no_content, ok};
use crate::pages::{csrf_field, field, fields, layout, page_response, Note};
use crate::{ApiError, App, Caller, Req};
use config::{LogSettings, SyslogTransport, DEBUG_CLASSES, FACILITIES, LOG_NAMES};
use logs::FileLog;
use serde_json::{json, Value};
use std::sync::Arc;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// Lines a view or an API answer shows at most.
const MAX_LINES: usize = 1000;
/// The most a download carries: the newest files of the log up to this size.
const MAX_DOWNLOAD: u64 = 64 << 20;

fn title(name: &str) -> &'static str {
    match name {
        "config" => "Config: changes to the configuration, by whom",
        "security" => "Security: logins, refusals, SIP bans, firewall",
        "error" => "Error: what stops a service from working",
        "warning" => "Warning: problems of little significance",
        "debug" => "Debug: what the exchange does, with the classes switched on",
        "kernel" => "Kernel: the operating system's messages",
        _ => "",
    }
}

/// The lines of a log holding `q` (any case), newest first: (lines, more).
fn lines(app: &App, name: &str, q: &str, limit: usize) -> Result<(Vec<String>, bool), ApiError> {
    let q = q.to_lowercase();
    let hit = |l: &String| q.is_empty() || l.to_lowercase().contains(&q);
    let take = |all: Vec<String>| {
        let mut found: Vec<String> = all.into_iter().filter(hit).take(limit + 1).collect();
        let more = found.len() > limit;
        found.truncate(limit);
        (found, more)
    };
    let store = app.cfg.store();
    match name {
        "config" | "security" => {
            let mut all = store_lines(store, name).map_err(crate::api::store_err)?;
            all.reverse();
            Ok(take(all))
        }
        _ => {
            let log = file_log(name)?;
            Ok(app.settings.logs.search(log, &q, limit))
        }
    }
}

/// Runs `f` on a blocking thread: the logs are files (and a search reads them whole),
/// the store is sled; neither may hold up the runtime's two threads.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("log task: {e}")))?
}

/// The store's `config` or `security` log as text lines, oldest first (the view, the
/// download and the support bundle).
pub(crate) fn store_lines(
    store: &store::Store,
    name: &str,
) -> Result<Vec<String>, store::StoreError> {
    let stamp = |when: u64| logs::stamp::rfc3339(when as i64, 0);
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    Ok(match name {
        "config" => store
            .log()?
            .iter()
            .map(|e| {
                format!(
                    "{} {} revision {}: {}",
                    stamp(e.when),
                    e.who,
                    e.revision,
                    e.what
                )
            })
            .collect(),
        _ => store
            .security_log()?
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}: {}",
                    stamp(e.when),
                    dash(&e.address),
                    dash(&e.username),
                    e.event
                )
            })
            .collect(),
    })
}

fn file_log(name: &str) -> Result<FileLog, ApiError> {
    FileLog::from_name(name).ok_or_else(|| {
        ApiError::not_found(format!("no log {name:?} (one of {})", LOG_NAMES.join(", ")))
    })
}

fn query(req: &Req, key: &str) -> Option<String> {
    form_urlencoded::parse(req.query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// `/api/v1/logs...`.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    match (&req.method, rest) {
        (&Method::GET, []) => {
            need_admin_read(c)?;
            let list: Vec<Value> = LOG_NAMES
                .iter()
                .map(|n| match FileLog::from_name(n) {
                    Some(l) => {
                        let (bytes, files) = app.settings.logs.usage(l);
                        json!({"name": n, "title": title(n), "kept": "files", "bytes": bytes, "files": files})
                    }
                    None => json!({"name": n, "title": title(n), "kept": "store"}),
                })
                .collect();
            ok(Value::Array(list))
        }
        (&Method::GET, ["settings"]) => {
            need_admin_read(c)?;
            ok(serde_json::to_value(&app.cfg.snapshot().config.logs).expect("serialises"))
        }
        (&Method::PUT, ["settings"]) => {
            need_admin_write(c)?;
            let s: LogSettings = serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"debug\": [\"sip\"], \"size_kib\": 1024, \"keep\": 5, \"days\": 30, \"syslog\": {{\"enabled\": true, \"host\": \"192.0.2.9\", \"transport\": \"udp\"}}}}: {e}"),
                )
            })?;
            save(app, &c.user.username, s).await?;
            ok(serde_json::to_value(&app.cfg.snapshot().config.logs).expect("serialises"))
        }
        // The store's logs as records (what this API always answered).
        (&Method::GET, ["config"]) => {
            need_admin_read(c)?;
            let mut log = app.cfg.store().log().map_err(crate::api::store_err)?;
            log.reverse();
            log.truncate(MAX_LINES);
            ok(serde_json::to_value(log).expect("serialises"))
        }
        (&Method::GET, ["security"]) => {
            need_admin_read(c)?;
            let mut log = app
                .cfg
                .store()
                .security_log()
                .map_err(crate::api::store_err)?;
            log.reverse();
            log.truncate(MAX_LINES);
            ok(serde_json::to_value(log).expect("serialises"))
        }
        (&Method::GET, [name]) => {
            need_admin_read(c)?;
            let limit = match query(req, "limit") {
                None => 200,
                Some(l) => l
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=MAX_LINES).contains(l))
                    .ok_or_else(|| ApiError::bad("limit", format!("must be 1-{MAX_LINES}")))?,
            };
            let q = query(req, "q").unwrap_or_default();
            let name = name.to_string();
            let (lines, more) = blocking(app, move |a| lines(a, &name, &q, limit)).await?;
            ok(json!({"lines": lines, "more": more}))
        }
        (&Method::GET, [name, "download"]) => {
            need_admin_read(c)?;
            // One at a time: a download is held in memory (up to 64 MiB).
            static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            let _one = ONE.lock().await;
            let name = name.to_string();
            blocking(app, move |a| download(a, &name)).await
        }
        (&Method::DELETE, [name]) => {
            need_admin_write(c)?;
            if *name == "config" || *name == "security" {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "the {name} log cannot be cleared: it keeps its newest entries by itself"
                    ),
                ));
            }
            clear(app, c, req.addr, name).await?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

async fn clear(
    app: &Arc<App>,
    c: &Caller,
    addr: std::net::IpAddr,
    name: &str,
) -> Result<(), ApiError> {
    let log = file_log(name)?;
    blocking(app, move |a| {
        a.settings.logs.clear(log).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot clear the {} log: {e}", log.name()),
            )
        })
    })
    .await?;
    // Said where it cannot be cleared.
    app.security(addr, &c.user.username, &format!("{name} log cleared"));
    Ok(())
}

async fn save(app: &Arc<App>, who: &str, s: LogSettings) -> Result<(), ApiError> {
    crate::ops::change(app, who, "changed the log settings".into(), move |c| {
        c.logs = s;
        Ok(())
    })
    .await
    .map(|_| ())
}

/// The whole log as text, oldest first (the newest [`MAX_DOWNLOAD`] bytes of a file
/// log).
fn download(app: &App, name: &str) -> Result<Response, ApiError> {
    let body: Vec<u8> = match FileLog::from_name(name) {
        Some(log) => {
            let mut files = app.settings.logs.files_oldest_first(log);
            // Newest first while counting, so the newest are the ones kept.
            files.reverse();
            let mut total = 0;
            let mut kept = Vec::new();
            for f in files {
                let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                if total + len > MAX_DOWNLOAD && !kept.is_empty() {
                    break;
                }
                total += len;
                kept.push(f);
            }
            let mut body = Vec::with_capacity(total as usize);
            for f in kept.iter().rev() {
                if let Ok(b) = std::fs::read(f) {
                    body.extend_from_slice(&b);
                }
            }
            body
        }
        None => {
            let (mut all, _) = lines(app, name, "", usize::MAX - 1)?;
            all.reverse();
            let mut s = all.join("\n");
            if !s.is_empty() {
                s.push('\n');
            }
            s.into_bytes()
        }
    };
    let mut r =
        warp::reply::with_header(body, "content-type", "text/plain; charset=utf-8").into_response();
    let file = format!(
        "pbx-{name}-{}.log",
        &logs::stamp::rfc3339(logs::stamp::unix_now(), 0)[..10]
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `/admin/logs`: `?log=NAME&q=TEXT` views; posts clear a log or save the settings.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    req: &Req,
    get: bool,
    rest: &[&str],
    form: &[(String, String)],
) -> Response {
    let name = query(req, "log")
        .or_else(|| field(form, "log").map(String::from))
        .filter(|n| LOG_NAMES.contains(&n.as_str()))
        .unwrap_or_else(|| "config".into());
    let q = query(req, "q").unwrap_or_default();
    if get {
        return match rest {
            [] => page(app, c, &name, &q, Note::None, StatusCode::OK).await,
            _ => {
                let note = Note::Error("no such page".into());
                page(app, c, &name, "", note, StatusCode::NOT_FOUND).await
            }
        };
    }
    if let Err(e) = need_admin_write(c) {
        return page(app, c, &name, &q, Note::Error(e.error), e.status).await;
    }
    let r = match rest {
        ["clear"] => match name.as_str() {
            "config" | "security" => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("The {name} log cannot be cleared: it keeps its newest entries by itself."),
            )),
            _ => clear(app, c, req.addr, &name)
                .await
                .map(|()| format!("The {name} log is cleared.")),
        },
        ["settings"] => match settings_from(form) {
            Ok(s) => save(app, &c.user.username, s)
                .await
                .map(|()| "Log settings saved.".to_string()),
            Err(e) => Err(e),
        },
        _ => Err(ApiError::not_found("no such action")),
    };
    match r {
        Ok(m) => page(app, c, &name, &q, Note::Done(m), StatusCode::OK).await,
        Err(e) => page(app, c, &name, &q, Note::Error(e.error), e.status).await,
    }
}

/// The settings form: ranges and names are the configuration's to check (it names the
/// field).
fn settings_from(form: &[(String, String)]) -> Result<LogSettings, ApiError> {
    let number = |name: &str| {
        field(form, name)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| ApiError::bad(name, "must be a whole number"))
    };
    let port = match field(form, "port").map(str::trim).unwrap_or("") {
        "" => 0,
        p => p.parse::<u16>().map_err(|_| {
            ApiError::bad(
                "syslog.port",
                "must be 1-65535, or empty for the transport's port",
            )
        })?,
    };
    let transport = match field(form, "transport").unwrap_or("udp") {
        "udp" => SyslogTransport::Udp,
        "tcp" => SyslogTransport::Tcp,
        "tls" => SyslogTransport::Tls,
        _ => return Err(ApiError::bad("syslog.transport", "choose UDP, TCP or TLS")),
    };
    Ok(LogSettings {
        debug: fields(form, "class")
            .into_iter()
            .map(String::from)
            .collect(),
        size_kib: number("size_kib")?,
        keep: number("keep")?,
        days: number("days")?,
        syslog: config::Syslog {
            enabled: field(form, "syslog").is_some(),
            host: field(form, "host").unwrap_or("").trim().to_string(),
            port,
            transport,
            facility: field(form, "facility").unwrap_or("").to_string(),
            logs: fields(form, "forward")
                .into_iter()
                .map(String::from)
                .collect(),
        },
    })
}

fn class_label(c: &str) -> &'static str {
    match c {
        "sip" => "SIP messages (whole, in and out)",
        "registrations" => "Registrations (phones, trunks, subscriptions)",
        "calls" => "Calls (routing, answers, transfers, applications)",
        "media" => "Media (relay, music, recordings)",
        "provisioning" => "Provisioning (TFTP, phone files)",
        "isdn" => "ISDN (Q.921/Q.931)",
        "web" => "Web admin",
        "system" => "System",
        _ => "",
    }
}

async fn page(
    app: &Arc<App>,
    c: &Caller,
    name: &str,
    q: &str,
    note: Note,
    status: StatusCode,
) -> Response {
    use maud::html;
    let write = c.can_write_admin();
    let file = FileLog::from_name(name);
    let (n, query) = (name.to_string(), q.to_string());
    let found = blocking(app, move |a| {
        let usage = file.map(|l| a.settings.logs.usage(l));
        Ok((lines(a, &n, &query, 500), usage))
    })
    .await;
    let (shown, usage) = match found {
        Ok((shown, usage)) => (shown, usage),
        Err(e) => (Err(e), None),
    };
    let s = app.cfg.snapshot().config.logs.clone();
    page_response(
        status,
        layout(
            "Logs",
            Some(c),
            true,
            &note,
            html! {
                p { a id="support-bundle" href="/api/v1/system/support-bundle" download { "Download a support bundle" } " (versions, health, the configuration without its passwords and secrets, network settings, live registrations and calls, and the logs) for technical support." }
                nav id="log-names" aria-label="Logs" {
                    @for n in LOG_NAMES {
                        a href=(format!("/admin/logs?log={n}")) aria-current=[(n == name).then_some("page")] { (n) } " "
                    }
                }
                h2 { (title(name)) }
                form id="log-search" method="get" action="/admin/logs" role="search" {
                    input type="hidden" name="log" value=(name);
                    label for="q" { "Lines holding" }
                    input id="q" name="q" type="search" value=(q);
                    button type="submit" { "Search" }
                }
                p {
                    a id="log-download" href=(format!("/api/v1/logs/{name}/download")) download { "Download the " (name) " log" }
                    @if let Some((bytes, files)) = usage {
                        " (" (bytes.div_ceil(1024)) " KiB in " (files) " file" @if files != 1 { "s" } ")"
                    }
                }
                @if write && file.is_some() {
                    form id="log-clear" method="post" action="/admin/logs/clear" {
                        (csrf_field(c))
                        input type="hidden" name="log" value=(name);
                        button type="submit" { "Clear the " (name) " log" }
                    }
                }
                @match &shown {
                    Ok((lines, more)) => {
                        @if lines.is_empty() {
                            p id="log-empty" { @if q.is_empty() { "The log is empty." } @else { "No line holds " q { (q) } "." } }
                        } @else {
                            pre id="log-lines" tabindex="0" {
                                @for l in lines { (l) "\n" }
                            }
                            @if *more { p { "Newest 500 lines shown; download the log for the rest." } }
                        }
                    }
                    Err(e) => p.error role="alert" { (e.error) }
                }
                p { "Times are UTC. The " code { "config" } " and " code { "security" } " logs are kept with the configuration (and in backups) and keep their newest entries; the others are files on the data partition that roll over at " (s.size_kib) " KiB and every day, " (s.keep) " kept, deleted after " (s.days) " days." }
                h2 { "Settings" }
                form id="log-settings" method="post" action="/admin/logs/settings" {
                    (csrf_field(c))
                    input type="hidden" name="log" value=(name);
                    fieldset {
                        legend { "Debug messages written to the debug log" }
                        @for cl in DEBUG_CLASSES {
                            label { input type="checkbox" name="class" value=(cl) checked[s.debug.iter().any(|d| d == cl)] disabled[!write]; " " (class_label(cl)) }
                        }
                        p { "Switch on only what you need while you look into a problem: whole SIP messages fill the log fast." }
                    }
                    fieldset {
                        legend { "Log files" }
                        label for="size_kib" { "Roll a file over at (KiB, 16-16384)" }
                        input id="size_kib" name="size_kib" type="number" min="16" max="16384" value=(s.size_kib) disabled[!write];
                        label for="keep" { "Rolled-over files kept of each log (1-20)" }
                        input id="keep" name="keep" type="number" min="1" max="20" value=(s.keep) disabled[!write];
                        label for="days" { "Delete rolled-over files after (days)" }
                        input id="days" name="days" type="number" min="1" max="3650" value=(s.days) disabled[!write];
                    }
                    fieldset {
                        legend { "Syslog server" }
                        label { input id="syslog" type="checkbox" name="syslog" value="on" checked[s.syslog.enabled] disabled[!write]; " Forward to a syslog server (RFC 5424)" }
                        label for="host" { "Server (host name or address)" }
                        input id="host" name="host" value=(s.syslog.host) disabled[!write];
                        label for="transport" { "Transport" }
                        select id="transport" name="transport" disabled[!write] {
                            @for (v, t, tr) in [("udp", "UDP (514)", SyslogTransport::Udp), ("tcp", "TCP (514)", SyslogTransport::Tcp), ("tls", "TLS (6514)", SyslogTransport::Tls)] {
                                option value=(v) selected[s.syslog.transport == tr] { (t) }
                            }
                        }
                        p { "Over TLS the server's certificate must be trusted: by the system's authorities or one added on the Certificates page." }
                        label for="port" { "Port (empty: the transport's)" }
                        input id="port" name="port" type="number" min="1" max="65535" value=[(s.syslog.port != 0).then_some(s.syslog.port)] disabled[!write];
                        label for="facility" { "Facility" }
                        select id="facility" name="facility" disabled[!write] {
                            @for f in FACILITIES { option value=(f) selected[s.syslog.facility == f] { (f) } }
                        }
                        fieldset {
                            legend { "Logs forwarded" }
                            @for n in LOG_NAMES {
                                label { input type="checkbox" name="forward" value=(n) checked[s.syslog.logs.iter().any(|l| l == n)] disabled[!write]; " " (n) }
                            }
                        }
                    }
                    @if write { button type="submit" { "Save log settings" } }
                }
            },
        ),
    )
}
