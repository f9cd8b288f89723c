//! Server-rendered pages: the admin (`/admin/...`) and the user portal (`/`). Forms post
//! back with the session's CSRF token in a hidden field; the only JavaScript shows a
//! hidden password when its key icon is clicked.

use crate::ops::{self, UserInput};
use crate::{caller, csrf_ok, login, session_cookie, ApiError, App, Caller, LoginError, Req};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

const STYLE: &str = include_str!("../static/style.css");
const SCRIPT: &str = include_str!("../static/app.js");

pub(crate) fn page_response(status: StatusCode, m: Markup) -> Response {
    warp::reply::with_status(warp::reply::html(m.into_string()), status).into_response()
}

pub(crate) fn see_other(to: &str) -> Response {
    let mut r = warp::reply::with_status("", StatusCode::SEE_OTHER).into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
    );
    r
}

fn asset(body: &'static str, ctype: &'static str) -> Response {
    let mut r = warp::reply::with_header(body, "content-type", ctype).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

/// Where a message goes at the top of a page.
pub(crate) enum Note {
    None,
    Error(String),
    Done(String),
}

impl From<ApiError> for Note {
    fn from(e: ApiError) -> Self {
        match e.field {
            Some(f) if !e.error.starts_with(&f) && !f.is_empty() => {
                Note::Error(format!("{f}: {}", e.error))
            }
            _ => Note::Error(e.error),
        }
    }
}

/// A form's result as the note on the page it returns to, with the status to send.
pub(crate) fn outcome<T>(
    r: Result<T, ApiError>,
    done: impl FnOnce(T) -> String,
) -> (Note, StatusCode) {
    match r {
        Ok(t) => (Note::Done(done(t)), StatusCode::OK),
        Err(e) => (e.into(), StatusCode::BAD_REQUEST),
    }
}

pub(crate) fn layout(
    title: &str,
    c: Option<&Caller>,
    admin: bool,
    note: &Note,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · PBX" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href=(if admin { "/admin" } else { "/" }) { "PBX" }
                    @if let Some(c) = c {
                        nav {
                            @if admin && c.can_read_admin() {
                                a href="/admin" { "Dashboard" }
                                a href="/admin/users" { "Users" }
                                a href="/admin/extensions" { "Extensions" }
                                a href="/admin/phones" { "Phones" }
                                a href="/admin/routing" { "Call routing" }
                                a href="/admin/routing/attendants" { "Auto attendant" }
                                a href="/admin/routing/conferences" { "Conferences" }
                                a href="/admin/routing/queues" { "Call queues" }
                                a href="/admin/routing/music" { "Music on hold" }
                                a href="/admin/routing/ip-groups" { "IP address groups" }
                                a href="/admin/dialplan" { "Dial plan" }
                                a href="/admin/status" { "Status" }
                                a href="/admin/history" { "Call history" }
                                a href="/admin/security" { "SIP protection" }
                                a href="/admin/network" { "Network" }
                                a href="/admin/firewall" { "Firewall" }
                                a href="/admin/certificates" { "Certificates" }
                                a href="/admin/logs" { "Logs" }
                                a href="/admin/update" { "System" }
                                a href="/admin/backup" { "Backup" }
                                a href="/" { "MyPhone" }
                            } @else {
                                a href="/" { "MyPhone" }
                                a href="/phone" { "Phone" }
                                @if c.can_read_admin() { a href="/admin" { "Administration" } }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(c.session.csrf);
                            input type="hidden" name="to" value=(if admin { "/admin" } else { "/" });
                            span.who { (c.user.username) " (" (c.user.role.as_str()) ")" }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @match note {
                        Note::Error(m) => { p.error role="alert" { (m) } }
                        Note::Done(m) => { p.done role="status" { (m) } }
                        Note::None => {}
                    }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn csrf_field(c: &Caller) -> Markup {
    html! { input type="hidden" name="csrf" value=(c.session.csrf); }
}

/// A password box with the key icon that shows it.
pub(crate) fn secret_field(id: &str, name: &str, value: &str, readonly: bool) -> Markup {
    html! {
        span.secret {
            input type="password" id=(id) name=(name) value=(value) readonly[readonly] autocomplete="off";
            button.reveal type="button" data-target=(id) title="Show the password" aria-label="Show the password" { "\u{1F511}" }
        }
    }
}

fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if d > 0 {
        format!("{d} d {h} h {m} min")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {} s", secs % 60)
    }
}

pub(crate) fn when(unix: u64) -> String {
    // UTC, like the box's logs.
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, mo, d) = civil(days as i64);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a date (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn read_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// CPU, memory, disk, uptime and version, as `GET /api/v1/status/health` answers.
pub(crate) async fn health(app: &Arc<App>) -> Value {
    let regs = app.ask(crate::CoreRequest::Registrations).await;
    let calls = app.ask(crate::CoreRequest::Calls).await;
    health_of(app, regs.as_ref(), calls.as_ref())
}

/// The health figures with the registrations and calls already fetched.
fn health_of(app: &Arc<App>, regs: Option<&Value>, calls: Option<&Value>) -> Value {
    let load: Vec<f64> = read_file("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    let meminfo = read_file("/proc/meminfo");
    let mem = |key: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let rss = read_file("/proc/self/status")
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    #[allow(clippy::useless_conversion)] // the field types differ between 32- and 64-bit boards
    let (disk_total, disk_free) = nix::sys::statvfs::statvfs(&app.settings.data_dir)
        .map(|s| {
            // u64::from: the field types differ between 32- and 64-bit boards.
            let f = u64::from(s.fragment_size());
            (
                u64::from(s.blocks()) * f,
                u64::from(s.blocks_available()) * f,
            )
        })
        .unwrap_or((0, 0));
    let system_uptime = read_file("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let snap = app.cfg.snapshot();
    let mut warnings = warnings(&snap.config);
    warnings.extend(crate::certs::expiry_warning(&app.settings.data_dir));
    json!({
        "version": app.settings.version,
        "uptime_seconds": app.started.elapsed().as_secs(),
        "system_uptime_seconds": system_uptime,
        "cpu": {"cores": cores, "load_1": load.first().copied().unwrap_or(0.0),
                "load_5": load.get(1).copied().unwrap_or(0.0), "load_15": load.get(2).copied().unwrap_or(0.0)},
        "memory": {"total_bytes": mem("MemTotal:"), "available_bytes": mem("MemAvailable:"), "pbxd_rss_bytes": rss},
        "disk": {"path": app.settings.data_dir.display().to_string(), "total_bytes": disk_total, "free_bytes": disk_free},
        "extensions": snap.config.extensions.len(),
        "users": snap.config.users.len(),
        "registrations": regs.and_then(Value::as_array).map_or(0, Vec::len),
        "calls": calls.and_then(Value::as_array).map_or(0, Vec::len),
        "revision": snap.revision,
        "temperatures": temperatures(app.settings.root.as_deref().unwrap_or(std::path::Path::new("/"))),
        "warnings": warnings,
    })
}

/// The board's temperature sensors (`sys/class/thermal` zones and `sys/class/hwmon`
/// inputs under `root`), in degrees Celsius; none on a board without them.
pub(crate) fn temperatures(root: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let milli = |s: Option<String>| {
        s.and_then(|t| t.parse::<i64>().ok())
            .map(|m| m as f64 / 1000.0)
    };
    let dirs = |sub: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(root.join(sub))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for z in dirs("sys/class/thermal") {
        if !z
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("thermal_zone"))
        {
            continue;
        }
        if let Some(c) = milli(read(z.join("temp"))) {
            let name = read(z.join("type"))
                .unwrap_or_else(|| z.file_name().unwrap().to_string_lossy().into());
            out.push(json!({"sensor": name, "celsius": c}));
        }
    }
    for h in dirs("sys/class/hwmon") {
        let chip = read(h.join("name")).unwrap_or_default();
        let mut inputs: Vec<_> = std::fs::read_dir(&h)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        inputs.retain(|n: &String| n.starts_with("temp") && n.ends_with("_input"));
        inputs.sort();
        for i in inputs {
            if let Some(c) = milli(read(h.join(&i))) {
                let label = read(h.join(i.replace("_input", "_label")))
                    .unwrap_or_else(|| i.trim_end_matches("_input").to_string());
                out.push(json!({"sensor": format!("{chip} {label}"), "celsius": c}));
            }
        }
    }
    out
}

/// What the dashboard warns about (Kerio 28.7's kind of warnings).
fn warnings(c: &config::Config) -> Vec<String> {
    let mut w = Vec::new();
    for u in &c.users {
        if u.password_hash.is_empty() {
            let what = if u.role == config::Role::Administrator {
                "administrator"
            } else {
                "user"
            };
            w.push(format!(
                "{what} {} has no password and cannot log in",
                u.username
            ));
        }
    }
    for e in &c.extensions {
        if !c.accounts.iter().any(|a| a.extension == e.number) {
            w.push(format!(
                "extension {} has no SIP account, so no phone can use it",
                e.number
            ));
        }
    }
    w
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1_048_576.0)
}

/// Routes one page request.
pub(crate) async fn handle(app: &Arc<App>, req: &Req) -> Response {
    let p = req.path.as_str();
    match (&req.method, p) {
        (&Method::GET, "/static/style.css") => return asset(STYLE, "text/css; charset=utf-8"),
        (&Method::GET, "/static/app.js") => return asset(SCRIPT, "text/javascript; charset=utf-8"),
        (&Method::GET, "/static/jssip.js") => return crate::phone::jssip(),
        (&Method::GET, "/static/phone.js") => return crate::phone::script(),
        (&Method::GET, "/favicon.ico") => {
            return warp::reply::with_status("", StatusCode::NOT_FOUND).into_response()
        }
        _ => {}
    }
    if req.changes_state() && !req.origin_ok() {
        return page_response(
            StatusCode::FORBIDDEN,
            layout(
                "Refused",
                None,
                false,
                &Note::Error("cross-site request refused".into()),
                html! {},
            ),
        );
    }
    let admin = p == "/admin" || p.starts_with("/admin/");
    let snap = app.cfg.snapshot();
    let has_admin = ops::has_admin(&snap.config);
    match (&req.method, p) {
        (&Method::POST, "/admin/setup") => return setup_post(app, req).await,
        (&Method::POST, "/admin/login") | (&Method::POST, "/login") => {
            return login_post(app, req, admin).await
        }
        _ => {}
    }
    let Some(c) = caller(app, req) else {
        if req.changes_state() {
            return see_other(if admin { "/admin" } else { "/" });
        }
        if admin && !has_admin {
            return setup_page(&Note::None, StatusCode::OK);
        }
        if admin && p != "/admin" {
            return see_other("/admin");
        }
        if !admin && p != "/" {
            return see_other("/");
        }
        return login_page(admin, &Note::None, StatusCode::OK);
    };
    let form = req.form();
    if req.changes_state() && !csrf_ok(req, &c, Some(&form)) {
        return page_response(
            StatusCode::FORBIDDEN,
            layout(
                "Refused",
                Some(&c),
                admin,
                &Note::Error("the form expired; reload the page and try again".into()),
                html! {},
            ),
        );
    }
    if p == "/logout" && req.method == Method::POST {
        app.sessions().close(&c.token);
        app.security(req.addr, &c.user.username, "session closed");
        let to = form
            .iter()
            .find(|(k, _)| k == "to")
            .map(|(_, v)| v.as_str())
            .filter(|v| *v == "/admin")
            .unwrap_or("/");
        let mut r = see_other(to);
        r.headers_mut()
            .insert(header::SET_COOKIE, session_cookie("", Some(0)));
        return r;
    }
    if !admin {
        return portal(app, req, &c, &form).await;
    }
    if !c.can_read_admin() {
        return page_response(
            StatusCode::FORBIDDEN,
            layout(
                "Administration",
                Some(&c),
                false,
                &Note::Error("This account may use the user portal only.".into()),
                html! { p { a href="/" { "Go to MyPhone" } } },
            ),
        );
    }
    if req.changes_state() && !c.can_write_admin() {
        return page_response(
            StatusCode::FORBIDDEN,
            layout(
                "Read only",
                Some(&c),
                true,
                &Note::Error("Auditors may look but not change anything.".into()),
                html! {},
            ),
        );
    }
    let segs: Vec<String> = p
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(1)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let who = c.user.username.clone();
    let get = req.method == Method::GET || req.method == Method::HEAD;
    match (get, segs.as_slice()) {
        (true, []) => dashboard(app, &c).await,
        (true, ["users"]) => users_page(app, &c, Note::None, StatusCode::OK),
        (false, ["directory"]) => {
            let r = crate::directory::post_settings(app, &c, &form).await;
            let (note, st) = outcome(r, |()| "Directory settings saved.".into());
            users_page(app, &c, note, st)
        }
        (false, ["directory", "sync"]) => {
            let r = crate::directory::post_sync(app, &c).await;
            let (note, st) = outcome(r, |m| m);
            users_page(app, &c, note, st)
        }
        (false, ["users"]) => {
            let r = async { ops::create_user(app, &who, user_input(&form, true)?).await }.await;
            let (note, st) = outcome(r, |u| format!("User {} added.", u.username));
            users_page(app, &c, note, st)
        }
        (true, ["users", u]) => user_page(app, &c, u, Note::None, StatusCode::OK),
        (false, ["users", u]) => {
            let r = async { ops::update_user(app, &who, u, user_input(&form, false)?).await }.await;
            let (note, st) = outcome(r, |_| "Saved.".into());
            user_page(app, &c, u, note, st)
        }
        (false, ["users", u, "delete"]) => {
            let r = ops::delete_user(app, &who, u).await;
            let (note, st) = outcome(r, |()| format!("User {u} removed."));
            users_page(app, &c, note, st)
        }
        (true, ["extensions"]) => extensions_page(app, &c, Note::None, StatusCode::OK),
        (false, ["extensions"]) => {
            let r = add_extension(app, &who, &form).await;
            let (note, st) = outcome(r, |n| format!("Extension {n} added."));
            extensions_page(app, &c, note, st)
        }
        (true, ["extensions", n]) => extension_page(app, &c, n, Note::None, StatusCode::OK),
        (false, ["extensions", n]) => {
            let r = async { ops::update_extension(app, &who, n, extension_form(&form, n)?).await }
                .await;
            let (note, st) = outcome(r, |_| "Saved.".into());
            extension_page(app, &c, n, note, st)
        }
        (false, ["extensions", n, "delete"]) => {
            let r = ops::delete_extension(app, &who, n).await;
            let (note, st) = outcome(r, |()| format!("Extension {n} removed."));
            extensions_page(app, &c, note, st)
        }
        (false, ["extensions", n, "accounts"]) => {
            let mut m = Map::new();
            for k in ["username", "secret"] {
                if let Some(v) = field(&form, k).filter(|v| !v.is_empty()) {
                    m.insert(k.into(), json!(v));
                }
            }
            let r = ops::create_account(app, &who, n, m).await;
            let (note, st) = outcome(r, |a| format!("SIP account {} added.", a.username));
            extension_page(app, &c, n, note, st)
        }
        (false, ["extensions", n, "accounts", u, "delete"]) => {
            let r = ops::delete_account(app, &who, n, u).await;
            let (note, st) = outcome(r, |()| format!("SIP account {u} removed."));
            extension_page(app, &c, n, note, st)
        }
        (true, ["dialplan"]) => dialplan_page(app, &c, Note::None, StatusCode::OK),
        (false, ["dialplan", "feature-codes"]) => {
            let fc = config::FeatureCodes {
                pickup: field(&form, "pickup").unwrap_or("").trim().to_string(),
                directed_pickup: field(&form, "directed_pickup")
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                echo_test: field(&form, "echo_test").unwrap_or("").trim().to_string(),
                voicemail: field(&form, "voicemail").unwrap_or("").trim().to_string(),
                voicemail_direct: field(&form, "voicemail_direct")
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                park: field(&form, "park").unwrap_or("").trim().to_string(),
                do_not_disturb: field(&form, "do_not_disturb")
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            };
            let r = ops::set_feature_codes(app, &who, fc).await;
            let (note, st) = outcome(r, |()| "Feature codes saved.".into());
            dialplan_page(app, &c, note, st)
        }
        (false, ["dialplan", "smtp"]) => {
            let port = field(&form, "port").unwrap_or("").trim();
            let r = async {
                let port: u16 = if port.is_empty() {
                    0
                } else {
                    port.parse().map_err(|_| {
                        ApiError::bad("port", "must be a port number (empty: the usual one)")
                    })?
                };
                let security = match field(&form, "security").unwrap_or("starttls") {
                    "tls" => config::SmtpSecurity::Tls,
                    "none" => config::SmtpSecurity::None,
                    _ => config::SmtpSecurity::Starttls,
                };
                let s = config::Smtp {
                    server: field(&form, "server").unwrap_or("").to_string(),
                    port,
                    security,
                    username: field(&form, "username").unwrap_or("").to_string(),
                    password: field(&form, "password").unwrap_or("").to_string(),
                    from: field(&form, "from").unwrap_or("").to_string(),
                    ca: field(&form, "ca").unwrap_or("").replace("\r\n", "\n"),
                };
                ops::set_smtp(app, &who, s).await
            }
            .await;
            let (note, st) = outcome(r, |()| "Mail server saved.".into());
            dialplan_page(app, &c, note, st)
        }
        (true, ["dialplan.csv"]) => {
            let mut r = warp::reply::with_header(
                ops::dial_plan_csv(&app.cfg.snapshot()),
                "content-type",
                "text/csv; charset=utf-8",
            )
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"dialplan.csv\""),
            );
            r
        }
        (true, ["status"]) => status_page(app, &c, Note::None).await,
        (true, ["history"]) => crate::history::admin_page(app, req, &c, Note::None),
        (false, ["history", "clear"]) => crate::history::clear(app, req, &c),
        (false, ["status", "calls", id, "hangup"]) => {
            let done = match id.parse::<u64>() {
                Ok(id) => app
                    .ask(|tx| crate::CoreRequest::HangUp(id, tx))
                    .await
                    .unwrap_or(false),
                Err(_) => false,
            };
            let note = if done {
                Note::Done(format!("Call {id} hung up."))
            } else {
                Note::Error(format!("Call {id} is no longer in progress."))
            };
            status_page(app, &c, note).await
        }
        (_, ["logs", rest @ ..]) => crate::log_pages::handle(app, &c, req, get, rest, &form).await,
        (_, ["security", rest @ ..]) => crate::security::handle(app, &c, get, rest, &form).await,
        (_, ["network", rest @ ..]) => {
            crate::capture::handle(app, &c, req.addr, req.local, get, rest, &form).await
        }
        (_, ["firewall", rest @ ..]) => {
            crate::firewall::handle(app, &c, req.addr, get, rest, &form).await
        }
        (_, ["certificates", rest @ ..]) => {
            crate::cert_pages::handle(app, &c, req.addr, get, rest, &form).await
        }
        (_, ["backup", rest @ ..]) => {
            crate::backup::handle(app, &c, req.addr, get, rest, &form).await
        }
        (true, ["update"]) => crate::update::page(app, &c, Note::None, StatusCode::OK, None),
        (false, ["update", "time"]) => crate::update::time_post(app, req, &c, &form).await,
        (_, ["routing", rest @ ..]) => {
            crate::routing_pages::handle(app, &c, get, rest, &form).await
        }
        (true, ["phones"]) => phones_page(app, &c, Note::None, StatusCode::OK, None),
        (false, ["phones", action]) => {
            let (note, st, preview) = phones_post(app, &who, action, &form).await;
            phones_page(app, &c, note, st, preview)
        }
        _ => page_response(
            StatusCode::NOT_FOUND,
            layout(
                "Not found",
                Some(&c),
                true,
                &Note::Error("There is no such page.".into()),
                html! {},
            ),
        ),
    }
}

/// A field of a JSON object as page text: a string as it is, anything else as JSON,
/// nothing when absent (the live views' values from the exchange).
pub(crate) fn json_text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn fields<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(crate) fn numbers_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n', '\r', ';'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn user_input(form: &[(String, String)], new: bool) -> Result<UserInput, ApiError> {
    let password = field(form, "password").filter(|p| !p.is_empty());
    if let Some(p) = password {
        if field(form, "confirm") != Some(p) {
            return Err(ApiError::bad("confirm", "the two passwords differ"));
        }
    }
    let role = match field(form, "role") {
        Some("administrator") => Some(config::Role::Administrator),
        Some("auditor") => Some(config::Role::Auditor),
        Some("user") => Some(config::Role::User),
        None => None,
        Some(_) => {
            return Err(ApiError::bad(
                "role",
                "must be administrator, auditor or user",
            ))
        }
    };
    Ok(UserInput {
        username: if new {
            field(form, "username").map(|s| s.trim().to_string())
        } else {
            None
        },
        full_name: field(form, "full_name").map(|s| s.trim().to_string()),
        password: password.map(str::to_string),
        role,
        enabled: Some(field(form, "enabled").is_some()),
        extensions: Some(
            fields(form, "extensions")
                .into_iter()
                .map(str::to_string)
                .collect(),
        ),
        ring_also: field(form, "ring_also").map(numbers_list),
    })
}

fn extension_form(form: &[(String, String)], number: &str) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    m.insert("number".into(), json!(number));
    m.insert("enabled".into(), json!(field(form, "enabled").is_some()));
    m.insert(
        "encrypt_calls".into(),
        json!(field(form, "encrypt_calls").is_some()),
    );
    for k in [
        "first_name",
        "last_name",
        "email",
        "mobile",
        "service_pin",
        "forward",
        "permission_group",
    ] {
        m.insert(k.into(), json!(field(form, k).unwrap_or("").trim()));
    }
    for k in ["call_limit", "busy_level"] {
        let v = field(form, k).unwrap_or("0").trim();
        let v: u32 = if v.is_empty() {
            0
        } else {
            v.parse()
                .map_err(|_| ApiError::bad(k, "must be a whole number (0 = no limit)"))?
        };
        m.insert(k.into(), json!(v));
    }
    let cid = match field(form, "caller_id").unwrap_or("show") {
        "hide" => json!({"mode": "hide"}),
        "present" => {
            json!({"mode": "present", "number": field(form, "caller_id_number").unwrap_or("").trim()})
        }
        _ => json!({"mode": "show"}),
    };
    m.insert("caller_id".into(), cid);
    for k in ["call_waiting", "do_not_disturb"] {
        m.insert(k.into(), json!(field(form, k).is_some()));
    }
    for k in [
        "voicemail",
        "voicemail_email",
        "voicemail_attach",
        "voicemail_delete_sent",
    ] {
        m.insert(k.into(), json!(field(form, k).is_some()));
    }
    let secs = field(form, "no_answer_seconds").unwrap_or("20").trim();
    let secs: u32 = secs
        .parse()
        .map_err(|_| ApiError::bad("no_answer_seconds", "must be a number of seconds"))?;
    m.insert("no_answer_seconds".into(), json!(secs));
    m.insert("forwarding".into(), Value::Array(forwarding_rules(form)));
    for k in ["pickup_groups", "pickup_from"] {
        let list: Vec<String> = field(form, k)
            .unwrap_or("")
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect();
        m.insert(k.into(), json!(list));
    }
    Ok(m)
}

/// The rules of a forwarding grid ([`forwarding_grid`]) as the API writes them.
fn forwarding_rules(form: &[(String, String)]) -> Vec<Value> {
    let mut rules = Vec::new();
    for (cause, _) in FORWARD_CAUSES {
        for (origin, _) in FORWARD_ORIGINS {
            let to = field(form, &format!("fw_{cause}_{origin}"))
                .unwrap_or("")
                .trim();
            if !to.is_empty() {
                rules.push(json!({"cause": cause, "origin": origin, "to": to}));
            }
        }
    }
    rules
}

/// The forwarding grid (cause by origin) of an extension, on the extension page and in
/// the portal.
fn forwarding_grid(e: &config::Extension, id: &str) -> Markup {
    html! {
        fieldset.forwarding {
            legend { "Forwarding: a number, voicemail (the extension's box), voicemail:<extension> (another box) or hangup; empty = the caller hears why" }
            table id=(id) {
                thead { tr { th {} @for (_, o) in FORWARD_ORIGINS { th { (o) } } } }
                tbody {
                    @for (cause, cname) in FORWARD_CAUSES {
                        tr {
                            th { (cname) }
                            @for (origin, oname) in FORWARD_ORIGINS {
                                @let v = e.forwarding.iter().find(|r| serde_json::to_value(r.cause).ok() == Some(json!(cause)) && serde_json::to_value(r.origin).ok() == Some(json!(origin))).map(|r| r.to.as_str()).unwrap_or("");
                                td { input name=(format!("fw_{cause}_{origin}")) value=(v) inputmode="tel" aria-label=(format!("{cname}, {oname}")) size="10"; }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Forwarding causes and origins as the extension page's grid shows them.
const FORWARD_CAUSES: [(&str, &str); 3] = [
    ("busy", "Busy"),
    ("no_answer", "No answer"),
    ("unavailable", "Unavailable"),
];
const FORWARD_ORIGINS: [(&str, &str); 4] = [
    ("any", "All calls"),
    ("internal", "Internal"),
    ("external", "External"),
    ("transfer", "Transferred"),
];

async fn add_extension(
    app: &Arc<App>,
    who: &str,
    form: &[(String, String)],
) -> Result<String, ApiError> {
    let mut m = Map::new();
    for k in ["number", "first_name", "last_name"] {
        m.insert(k.into(), json!(field(form, k).unwrap_or("").trim()));
    }
    let nonempty = |k: &str| field(form, k).filter(|v| !v.is_empty()).map(str::to_string);
    let e = ops::create_extension(app, who, m, nonempty("secret"), nonempty("owner")).await?;
    Ok(e.number)
}

fn setup_page(note: &Note, status: StatusCode) -> Response {
    page_response(
        status,
        layout(
            "Create the administrator account",
            None,
            true,
            note,
            html! {
                p.warn { "Please set up the password for the administration account." }
                form.card method="post" action="/admin/setup" {
                    label { "User name" input name="username" value=(ops::ADMIN) readonly; }
                    label { "Password" input type="password" name="password" required autocomplete="new-password"; }
                    label { "Confirm password" input type="password" name="confirm" required autocomplete="new-password"; }
                    p.hint { "At least 10 characters, mixing three of: lower case, upper case, digits, symbols." }
                    button type="submit" { "Create account" }
                }
            },
        ),
    )
}

fn login_page(admin: bool, note: &Note, status: StatusCode) -> Response {
    let (title, action) = if admin {
        ("Administration", "/admin/login")
    } else {
        ("MyPhone", "/login")
    };
    page_response(
        status,
        layout(
            title,
            None,
            admin,
            note,
            html! {
                form.card method="post" action=(action) {
                    label { "User name" input name="username" required autocomplete="username" autofocus; }
                    label { "Password" input type="password" name="password" required autocomplete="current-password"; }
                    button type="submit" { "Log in" }
                }
            },
        ),
    )
}

async fn setup_post(app: &Arc<App>, req: &Req) -> Response {
    let form = req.form();
    let pw = field(&form, "password").unwrap_or("");
    if field(&form, "confirm") != Some(pw) {
        return setup_page(
            &Note::Error("The two passwords differ.".into()),
            StatusCode::BAD_REQUEST,
        );
    }
    match ops::setup(app, pw).await {
        Ok(()) => {
            app.security(req.addr, ops::ADMIN, "administrator account created");
            see_other("/admin")
        }
        Err(e) if e.status == StatusCode::CONFLICT => see_other("/admin"),
        Err(e) => setup_page(&e.into(), StatusCode::BAD_REQUEST),
    }
}

async fn login_post(app: &Arc<App>, req: &Req, admin: bool) -> Response {
    let form = req.form();
    let (u, p) = (
        field(&form, "username").unwrap_or(""),
        field(&form, "password").unwrap_or(""),
    );
    match login(app, req.addr, u, p).await {
        Ok((token, _, user)) => {
            let to = if admin && user.role != config::Role::User {
                "/admin"
            } else {
                "/"
            };
            let mut r = see_other(to);
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token, None));
            r
        }
        Err(LoginError::Blocked(s)) => login_page(
            admin,
            &Note::Error(format!(
                "Too many failed logins from this address. Try again in {s} seconds."
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(LoginError::NotHere(a)) => login_page(
            admin,
            &Note::Error(format!(
                "The firewall does not allow this service from {a}."
            )),
            StatusCode::FORBIDDEN,
        ),
        Err(LoginError::Wrong) => login_page(
            admin,
            &Note::Error("Wrong user name or password.".into()),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

async fn dashboard(app: &Arc<App>, c: &Caller) -> Response {
    let h = health(app).await;
    let g = |p: &str| h.pointer(p).cloned().unwrap_or(Value::Null);
    let warnings: Vec<String> = serde_json::from_value(g("/warnings")).unwrap_or_default();
    page_response(
        StatusCode::OK,
        layout(
            "Dashboard",
            Some(c),
            true,
            &Note::None,
            html! {
                section.cards {
                    div.stat { span { "Version" } strong { (g("/version").as_str().unwrap_or("")) } }
                    div.stat { span { "Uptime" } strong { (uptime(g("/uptime_seconds").as_u64().unwrap_or(0))) } }
                    div.stat { span { "Extensions" } strong { (g("/extensions")) } }
                    div.stat { span { "Users" } strong { (g("/users")) } }
                    div.stat { span { "Registered phones" } strong { (g("/registrations")) } }
                    div.stat { span { "Calls now" } strong { (g("/calls")) } }
                }
                h2 { "Warnings" }
                @if warnings.is_empty() {
                    p { "None." }
                } @else {
                    ul.warnings { @for w in &warnings { li { (w) } } }
                }
            },
        ),
    )
}

fn users_page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let write = c.can_write_admin();
    let owned: std::collections::HashSet<&str> = snap
        .config
        .users
        .iter()
        .flat_map(|u| u.extensions.iter().map(String::as_str))
        .collect();
    page_response(
        status,
        layout(
            "Users",
            Some(c),
            true,
            &note,
            html! {
                table {
                    thead { tr { th { "User name" } th { "Full name" } th { "Role" } th { "Enabled" } th { "Extensions" } } }
                    tbody {
                        @for u in &snap.config.users {
                            tr {
                                td { a href={ "/admin/users/" (u.username) } { (u.username) } }
                                td { (u.full_name) }
                                td { (u.role.as_str()) }
                                td { (if u.enabled { "yes" } else { "no" }) }
                                td { (u.extensions.join(", ")) }
                            }
                        }
                    }
                }
                @if write {
                    details.dialog open[matches!(note, Note::Error(_))] {
                        summary { "Add user" }
                        form.card method="post" action="/admin/users" {
                            (csrf_field(c))
                            label { "User name" input name="username" required pattern="[A-Za-z0-9._+-]{1,64}"; }
                            label { "Full name" input name="full_name"; }
                            label { "Password" input type="password" name="password" required autocomplete="new-password"; }
                            label { "Confirm password" input type="password" name="confirm" required autocomplete="new-password"; }
                            label { "Role"
                                select name="role" {
                                    option value="user" selected { "user (MyPhone only)" }
                                    option value="auditor" { "auditor (read-only administration)" }
                                    option value="administrator" { "administrator" }
                                }
                            }
                            label.check { input type="checkbox" name="enabled" checked; "Account is enabled" }
                            fieldset {
                                legend { "Extensions" }
                                @for e in snap.config.extensions.iter().filter(|e| !owned.contains(e.number.as_str())) {
                                    label.check { input type="checkbox" name="extensions" value=(e.number); (e.number) " " (e.display_name()) }
                                }
                            }
                            label { "Also ring these numbers (comma separated)" input name="ring_also"; }
                            button type="submit" { "Add" }
                        }
                    }
                }
                (crate::directory::section(app, c))
            },
        ),
    )
}

fn user_page(app: &Arc<App>, c: &Caller, name: &str, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let Some(u) = snap.config.user(name) else {
        return users_page(
            app,
            c,
            Note::Error(format!("User {name} does not exist.")),
            StatusCode::NOT_FOUND,
        );
    };
    let write = c.can_write_admin();
    let others: std::collections::HashSet<&str> = snap
        .config
        .users
        .iter()
        .filter(|o| o.username != u.username)
        .flat_map(|o| o.extensions.iter().map(String::as_str))
        .collect();
    let title = format!("User {}", u.username);
    page_response(
        status,
        layout(
            &title,
            Some(c),
            true,
            &note,
            html! {
                form.card method="post" action={ "/admin/users/" (u.username) } {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        label { "Full name" input name="full_name" value=(u.full_name); }
                        label { "New password (empty keeps it)" input type="password" name="password" autocomplete="new-password"; }
                        label { "Confirm new password" input type="password" name="confirm" autocomplete="new-password"; }
                        label { "Role"
                            select name="role" {
                                @for r in [config::Role::User, config::Role::Auditor, config::Role::Administrator] {
                                    option value=(r.as_str()) selected[u.role == r] { (r.as_str()) }
                                }
                            }
                        }
                        label.check { input type="checkbox" name="enabled" checked[u.enabled]; "Account is enabled" }
                        fieldset {
                            legend { "Extensions" }
                            @for e in snap.config.extensions.iter().filter(|e| !others.contains(e.number.as_str())) {
                                label.check { input type="checkbox" name="extensions" value=(e.number) checked[u.extensions.contains(&e.number)]; (e.number) " " (e.display_name()) }
                            }
                        }
                        label { "Ringing rules: also ring (comma separated)" input name="ring_also" value=(u.ring_also.join(", ")); }
                        @if write { button type="submit" { "Save" } }
                    }
                }
                @if write {
                    form.inline method="post" action={ "/admin/users/" (u.username) "/delete" } {
                        (csrf_field(c))
                        button.danger type="submit" { "Remove user" }
                    }
                }
            },
        ),
    )
}

fn extensions_page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let write = c.can_write_admin();
    let next = ops::next_free_number(&snap);
    let secret = config::generate_secret(&mut rand::thread_rng());
    page_response(
        status,
        layout(
            "Extensions",
            Some(c),
            true,
            &note,
            html! {
                table id="extensions" {
                    thead { tr { th { "Number" } th { "Name" } th { "User" } th { "SIP accounts" } th { "Enabled" } } }
                    tbody {
                        @for e in &snap.config.extensions {
                            tr {
                                td { a href={ "/admin/extensions/" (e.number) } { (e.number) } }
                                td { (e.display_name()) }
                                td { (snap.owner(&e.number).map(|u| u.username.as_str()).unwrap_or("")) }
                                td { (snap.configured_accounts_of(&e.number).map(|a| a.username.as_str()).collect::<Vec<_>>().join(", ")) }
                                td { (if e.enabled { "yes" } else { "no" }) }
                            }
                        }
                    }
                }
                @if write {
                    details.dialog open[matches!(note, Note::Error(_))] {
                        summary { "Add extension" }
                        form.card id="add-extension" method="post" action="/admin/extensions" {
                            (csrf_field(c))
                            label { "Extension number" input name="number" value=(next) required pattern="[0-9]{1,20}" inputmode="numeric"; }
                            label { "First name" input name="first_name"; }
                            label { "Last name" input name="last_name"; }
                            label { "SIP password" (secret_field("new-secret", "secret", &secret, false)) }
                            label { "User"
                                select name="owner" {
                                    option value="" { "(none)" }
                                    @for u in &snap.config.users { option value=(u.username) { (u.username) } }
                                }
                            }
                            button type="submit" { "Add" }
                        }
                    }
                }
            },
        ),
    )
}

fn extension_page(app: &Arc<App>, c: &Caller, n: &str, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let Some(e) = snap.extension(n) else {
        return extensions_page(
            app,
            c,
            Note::Error(format!("Extension {n} does not exist.")),
            StatusCode::NOT_FOUND,
        );
    };
    let write = c.can_write_admin();
    let (mode, cid_num) = match &e.caller_id {
        config::CallerIdPresentation::Show => ("show", ""),
        config::CallerIdPresentation::Hide => ("hide", ""),
        config::CallerIdPresentation::Present(x) => ("present", x.as_str()),
    };
    let title = format!("Extension {}", e.number);
    page_response(
        status,
        layout(
            &title,
            Some(c),
            true,
            &note,
            html! {
                form.card method="post" action={ "/admin/extensions/" (e.number) } {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        label.check { input type="checkbox" name="enabled" checked[e.enabled]; "Enabled" }
                        label { "First name" input name="first_name" value=(e.first_name); }
                        label { "Last name" input name="last_name" value=(e.last_name); }
                        label { "E-mail" input type="email" name="email" value=(e.email); }
                        label { "Mobile" input name="mobile" value=(e.mobile); }
                        label { "Voicemail / service PIN" input name="service_pin" value=(if write { e.service_pin.as_str() } else { "" }) inputmode="numeric"; }
                        label { "Call limit (0 = none)" input name="call_limit" value=(e.call_limit) inputmode="numeric"; }
                        label { "Busy level (0 = none)" input name="busy_level" value=(e.busy_level) inputmode="numeric"; }
                        label { "Caller ID on external calls"
                            select name="caller_id" {
                                option value="show" selected[mode == "show"] { "show own number" }
                                option value="hide" selected[mode == "hide"] { "hide number" }
                                option value="present" selected[mode == "present"] { "show another extension" }
                            }
                        }
                        label { "Other extension shown" input name="caller_id_number" value=(cid_num); }
                        label.check { input type="checkbox" name="encrypt_calls" checked[e.encrypt_calls]; "Encrypt calls (TLS + SRTP)" }
                        label { "Forward every call to (empty = ring here)" input name="forward" value=(e.forward) inputmode="tel"; }
                        label.check { input type="checkbox" name="do_not_disturb" checked[e.do_not_disturb]; "Do not disturb (its phones do not ring; callers get its busy rule)" }
                        label.check { input type="checkbox" name="call_waiting" checked[e.call_waiting]; "Call waiting (a phone in a call rings for a second one)" }
                        label.check { input type="checkbox" name="voicemail" checked[e.voicemail]; "Voicemail box (forwarding can send callers to it)" }
                        label.check { input type="checkbox" name="voicemail_email" checked[e.voicemail_email]; "E-mail each voicemail message to the e-mail address" }
                        label.check { input type="checkbox" name="voicemail_attach" checked[e.voicemail_attach]; "with the recording attached (WAV)" }
                        label.check { input type="checkbox" name="voicemail_delete_sent" checked[e.voicemail_delete_sent]; "and delete it from the box once sent" }
                        label { "Member of pickup groups (comma separated)" input name="pickup_groups" value=(e.pickup_groups.join(", ")); }
                        label { "May pick up calls from groups (comma separated)" input name="pickup_from" value=(e.pickup_from.join(", ")); }
                        label { "Rings before \"no answer\" (seconds)" input name="no_answer_seconds" value=(e.no_answer_seconds) inputmode="numeric"; }
                        (forwarding_grid(e, "forwarding"))
                        label { "Call permission group"
                            select name="permission_group" {
                                option value="" { "(none: every number)" }
                                @for g in &snap.config.permission_groups {
                                    option value=(g.name) selected[g.name == e.permission_group] { (g.name) }
                                }
                            }
                        }
                        @if write { button type="submit" { "Save" } }
                    }
                }
                h2 { "SIP accounts" }
                table {
                    thead { tr { th { "User name" } th { "Password" } th { "Transports" } th { "Codecs" } @if write { th {} } } }
                    tbody {
                        @for (i, a) in snap.configured_accounts_of(&e.number).enumerate() {
                            tr {
                                td { (a.username) }
                                td {
                                    @if write { (secret_field(&format!("secret-{i}"), "", &a.secret, true)) } @else { "********" }
                                }
                                td { (a.transports.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")) }
                                td { (a.codecs.join(", ")) }
                                @if write {
                                    td {
                                        form.inline method="post" action={ "/admin/extensions/" (e.number) "/accounts/" (a.username) "/delete" } {
                                            (csrf_field(c))
                                            button.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if write {
                    details.dialog {
                        summary { "Add SIP account" }
                        form.card method="post" action={ "/admin/extensions/" (e.number) "/accounts" } {
                            (csrf_field(c))
                            label { "User name (empty: proposed)" input name="username"; }
                            label { "Password (empty: generated)" input type="password" name="secret" autocomplete="new-password"; }
                            button type="submit" { "Add" }
                        }
                    }
                    form.inline method="post" action={ "/admin/extensions/" (e.number) "/delete" } {
                        (csrf_field(c))
                        button.danger type="submit" { "Remove extension" }
                    }
                }
            },
        ),
    )
}

fn dialplan_page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    page_response(
        status,
        layout(
            "Dial plan",
            Some(c),
            true,
            &note,
            html! {
                p { a.button href="/admin/dialplan.csv" download="dialplan.csv" { "Export to CSV" } }
                table id="dialplan" {
                    thead { tr { th { "Number" } th { "Type" } th { "Description" } } }
                    tbody {
                        @for (n, _, t, d) in ops::dial_plan(&snap) {
                            tr { td { (n) } td { (t) } td { (d) } }
                        }
                    }
                }
                h2 { "Feature codes" }
                form.card method="post" action="/admin/dialplan/feature-codes" id="feature-codes" {
                    (csrf_field(c))
                    fieldset disabled[!c.can_write_admin()] {
                        label { "Call pickup (a call ringing in the caller's pickup groups)" input name="pickup" value=(snap.config.feature_codes.pickup); }
                        label { "Directed call pickup (followed by the extension)" input name="directed_pickup" value=(snap.config.feature_codes.directed_pickup); }
                        label { "Echo test (hear yourself: checks a phone's microphone, speaker and network; # ends it; empty: off)" input name="echo_test" value=(snap.config.feature_codes.echo_test); }
                        label { "Voicemail (your own box after your service PIN: messages, greetings, PIN; empty: off)" input name="voicemail" value=(snap.config.feature_codes.voicemail); }
                        label { "Direct voicemail (followed by an extension: leave a message without ringing it; empty: off)" input name="voicemail_direct" value=(snap.config.feature_codes.voicemail_direct); }
                        label { "Call park (in a consultation call, then transfer: the first free slot, said aloud; empty: off)" input name="park" value=(snap.config.feature_codes.park); }
                        label { "Do not disturb (switches the caller's extension's on or off, said aloud; empty: off)" input name="do_not_disturb" value=(snap.config.feature_codes.do_not_disturb); }
                        @if c.can_write_admin() { button type="submit" { "Save feature codes" } }
                    }
                }
                h2 { "Voicemail by e-mail" }
                @let smtp = &snap.config.smtp;
                form.card method="post" action="/admin/dialplan/smtp" id="smtp" {
                    (csrf_field(c))
                    fieldset disabled[!c.can_write_admin()] {
                        p.hint { "The mail server each extension's voicemail messages are sent through, when the extension asks for them by e-mail (Kerio 17.3). Empty server: nothing is sent." }
                        label { "Mail server (host name or address; empty: off)" input name="server" value=(smtp.server); }
                        label { "Security"
                            select name="security" {
                                option value="starttls" selected[smtp.security == config::SmtpSecurity::Starttls] { "STARTTLS (port 587)" }
                                option value="tls" selected[smtp.security == config::SmtpSecurity::Tls] { "TLS (SMTPS, port 465)" }
                                option value="none" selected[smtp.security == config::SmtpSecurity::None] { "none (port 25; no password is sent)" }
                            }
                        }
                        label { "Port (empty: the usual one)" input name="port" value=(if smtp.port == 0 { String::new() } else { smtp.port.to_string() }) inputmode="numeric"; }
                        label { "User name (empty: no authentication)" input name="username" value=(smtp.username) autocomplete="off"; }
                        label { "Password" input name="password" type="password" value=(if smtp.password.is_empty() { "" } else { crate::ops::MASK }) autocomplete="new-password"; }
                        label { "Sender address" input name="from" type="email" value=(smtp.from); }
                        label { "Trusted certificates (PEM, besides the system's: a company CA or the server's own)" textarea name="ca" rows="4" { (smtp.ca) } }
                        @if c.can_write_admin() { button type="submit" { "Save mail server" } }
                    }
                }
            },
        ),
    )
}

async fn status_page(app: &Arc<App>, c: &Caller, note: Note) -> Response {
    let calls = app
        .ask(crate::CoreRequest::Calls)
        .await
        .unwrap_or(Value::Null);
    let regs = app
        .ask(crate::CoreRequest::Registrations)
        .await
        .unwrap_or(Value::Null);
    let parked = app
        .ask(crate::CoreRequest::Parked)
        .await
        .unwrap_or(Value::Null);
    let h = health_of(app, Some(&regs), Some(&calls));
    let dahdi_spans = system::dahdi::scan(&app.settings.dahdi_sys);
    let scheduled = crate::tasks::list(app);
    let dahdi_cards = system::dahdi::cards(&app.settings.dahdi_sys, &dahdi_spans);
    let g = |p: &str| h.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let gf = |p: &str| h.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let write = c.can_write_admin();
    let empty = Vec::new();
    let s = |v: &Value, k: &str| {
        v.get(k)
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    page_response(
        StatusCode::OK,
        layout(
            "Status",
            Some(c),
            true,
            &note,
            html! {
                (PreEscaped("<meta http-equiv=\"refresh\" content=\"5\">"))
                h2 { "Calls" }
                table id="calls" {
                    thead { tr { th { "Id" } th { "From" } th { "To" } th { "State" } th { "Duration" } @if write { th {} } } }
                    tbody {
                        @for call in calls.as_array().unwrap_or(&empty) {
                            tr {
                                td { (s(call, "id")) } td { (s(call, "caller")) } td { (s(call, "callee")) }
                                td { (s(call, "state")) } td { (s(call, "seconds")) " s" }
                                @if write {
                                    td {
                                        form.inline method="post" action={ "/admin/status/calls/" (s(call, "id")) "/hangup" } {
                                            (csrf_field(c))
                                            button.danger type="submit" { "Hang up" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { "Parked calls" }
                @if parked.as_array().is_none_or(|p| p.is_empty()) {
                    p #parked { "No call is parked." }
                } @else {
                    table #parked {
                        thead { tr { th { "Slot" } th { "Waiting" } th { "Parked by" } th { "Time" } } }
                        tbody {
                            @for p in parked.as_array().unwrap_or(&empty) {
                                tr { td { (s(p, "slot")) } td { (s(p, "number")) } td { (s(p, "parked_by")) } td { (s(p, "seconds")) " s" } }
                            }
                        }
                    }
                }
                h2 { "Registrations" }
                table id="registrations" {
                    thead { tr { th { "Account" } th { "Contact" } th { "Source" } th { "Phone" } } }
                    tbody {
                        @for r in regs.as_array().unwrap_or(&empty) {
                            tr { td { (s(r, "username")) } td { (s(r, "contact")) } td { (s(r, "source")) } td { (s(r, "user_agent")) } }
                        }
                    }
                }
                h2 { "System health" }
                dl.health {
                    dt { "CPU load (1/5/15 min)" } dd { (format!("{:.2} / {:.2} / {:.2} on {} cores", gf("/cpu/load_1"), gf("/cpu/load_5"), gf("/cpu/load_15"), g("/cpu/cores"))) }
                    dt { "Memory available" } dd { (mib(g("/memory/available_bytes"))) " of " (mib(g("/memory/total_bytes"))) " (pbxd uses " (mib(g("/memory/pbxd_rss_bytes"))) ")" }
                    dt { "Data disk free" } dd { (mib(g("/disk/free_bytes"))) " of " (mib(g("/disk/total_bytes"))) }
                    dt { "pbxd uptime" } dd { (uptime(g("/uptime_seconds"))) }
                    dt { "System uptime" } dd { (uptime(g("/system_uptime_seconds"))) }
                    @for t in h.pointer("/temperatures").and_then(Value::as_array).unwrap_or(&empty) {
                        dt { "Temperature, " (s(t, "sensor")) } dd { (format!("{:.1} °C", t["celsius"].as_f64().unwrap_or(0.0))) }
                    }
                }
                h2 { "Scheduled tasks" }
                table id="tasks" {
                    thead { tr { th { "Task" } th { "When" } th { "Last run (UTC)" } th { "State" } } }
                    tbody {
                        @for t in &scheduled {
                            tr {
                                td { (s(t, "task")) }
                                td { (s(t, "schedule")) }
                                td { @if let Some(w) = t["last"].as_u64() { (when(w)) } @else { "-" } }
                                td { (s(t, "state")) }
                            }
                        }
                    }
                }
                @if !dahdi_spans.is_empty() {
                    h2 { "ISDN cards" }
                    table id="dahdi-cards" {
                        thead { tr { th { "Card" } th { "Span" } th { "Port" } th { "Type" } th { "Alarms" } } }
                        tbody {
                            @for card in &dahdi_cards {
                                @for n in &card.spans {
                                    @if let Some(sp) = dahdi_spans.iter().find(|x| x.span == *n) {
                                        tr {
                                            td { (card.kind) " " (card.location) }
                                            td { (sp.span) }
                                            td { (sp.port) }
                                            td { (sp.spantype) }
                                            td { @if sp.alarms.is_empty() { "none" } @else { (sp.alarms.join(", ")) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// The user portal (Kerio MyPhone): own extensions and SIP credentials, voicemail PINs,
/// forwarding and call waiting, ringing rules, own password.
async fn portal(app: &Arc<App>, req: &Req, c: &Caller, form: &[(String, String)]) -> Response {
    let post = req.method == Method::POST;
    let who = c.user.username.clone();
    let (note, status) = match (post, req.path.as_str()) {
        (false, "/") => (Note::None, StatusCode::OK),
        (false, "/phone") => {
            let dial = form_urlencoded::parse(req.query.as_bytes())
                .find(|(k, _)| k == "dial")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            return crate::phone::page(app, c, &dial);
        }
        (false, "/phone/panel") => return crate::phone::panel(app, c).await,
        (true, "/phone/settings") => return crate::phone::settings(app, c, form).await,
        (true, "/phone/account") => {
            let ext = field(form, "extension").unwrap_or("");
            return crate::phone::account(app, req, c, ext).await;
        }
        (true, "/ringing") => {
            let list = numbers_list(field(form, "ring_also").unwrap_or(""));
            let r = ops::update_me(app, &who, Some(list), None).await;
            outcome(r, |()| "Ringing rules saved.".into())
        }
        (true, "/pin") => {
            let n = field(form, "extension").unwrap_or("");
            let i = ops::MyExtension {
                service_pin: Some(field(form, "service_pin").unwrap_or("").to_string()),
                ..Default::default()
            };
            let r = ops::set_my_extension(app, &c.user, n, i).await;
            outcome(r, |()| format!("PIN of extension {n} saved."))
        }
        (true, "/voicemail-mail") => {
            let n = field(form, "extension").unwrap_or("");
            let i = ops::MyExtension {
                email: Some(field(form, "email").unwrap_or("").to_string()),
                voicemail_email: Some(field(form, "voicemail_email").is_some()),
                voicemail_attach: Some(field(form, "voicemail_attach").is_some()),
                voicemail_delete_sent: Some(field(form, "voicemail_delete_sent").is_some()),
                ..Default::default()
            };
            let r = ops::set_my_extension(app, &c.user, n, i).await;
            outcome(r, |()| format!("Voicemail e-mail of extension {n} saved."))
        }
        (true, "/forwarding") => {
            let n = field(form, "extension").unwrap_or("");
            let r = async {
                let secs = field(form, "no_answer_seconds").unwrap_or("20").trim();
                let secs: u32 = secs.parse().map_err(|_| {
                    ApiError::bad("no_answer_seconds", "must be a number of seconds")
                })?;
                let rules = ops::parse(Value::Array(forwarding_rules(form)))?;
                let i = ops::MyExtension {
                    forward: Some(field(form, "forward").unwrap_or("").to_string()),
                    call_waiting: Some(field(form, "call_waiting").is_some()),
                    do_not_disturb: Some(field(form, "do_not_disturb").is_some()),
                    no_answer_seconds: Some(secs),
                    forwarding: Some(rules),
                    ..Default::default()
                };
                ops::set_my_extension(app, &c.user, n, i).await
            }
            .await;
            outcome(r, |()| format!("Forwarding of extension {n} saved."))
        }
        (true, "/voicemail/delete") => {
            let n = field(form, "extension").unwrap_or("");
            let id = field(form, "id").unwrap_or("");
            let r = crate::voicemail::delete(app, c, n, id);
            outcome(r, |()| "Message deleted.".into())
        }
        (true, "/password") => {
            let p = field(form, "password").unwrap_or("");
            if field(form, "confirm") != Some(p) {
                (
                    Note::Error("The two passwords differ.".into()),
                    StatusCode::BAD_REQUEST,
                )
            } else {
                match ops::update_me(app, &who, None, Some(p.to_string())).await {
                    Ok(()) => {
                        app.security(req.addr, &who, "password changed");
                        // Changing the password logs out every session, this one too.
                        let mut r = see_other("/");
                        r.headers_mut()
                            .insert(header::SET_COOKIE, session_cookie("", Some(0)));
                        return r;
                    }
                    Err(e) => (e.into(), StatusCode::BAD_REQUEST),
                }
            }
        }
        _ => {
            return page_response(
                StatusCode::NOT_FOUND,
                layout(
                    "Not found",
                    Some(c),
                    false,
                    &Note::Error("There is no such page.".into()),
                    html! {},
                ),
            )
        }
    };
    let snap = app.cfg.snapshot();
    let user = snap
        .config
        .users
        .iter()
        .find(|u| u.username == c.user.username)
        .cloned()
        .unwrap_or_else(|| c.user.clone());
    let title = format!(
        "MyPhone: {}",
        if user.full_name.is_empty() {
            &user.username
        } else {
            &user.full_name
        }
    );
    page_response(
        status,
        layout(
            &title,
            Some(c),
            false,
            &note,
            html! {
                h2 { "My extensions" }
                @if user.extensions.is_empty() { p { "No extension is assigned to you yet; ask your administrator." } }
                @for (i, n) in user.extensions.iter().enumerate() {
                    @if let Some(e) = snap.extension(n) {
                        section.card {
                            h3 { "Extension " (e.number) " " (e.display_name()) }
                            table {
                                thead { tr { th { "SIP user name" } th { "SIP password" } } }
                                tbody {
                                    @for (j, a) in snap.configured_accounts_of(&e.number).enumerate() {
                                        tr { td { (a.username) } td { (secret_field(&format!("my-secret-{i}-{j}"), "", &a.secret, true)) } }
                                    }
                                }
                            }
                            form method="post" action="/pin" {
                                (csrf_field(c))
                                input type="hidden" name="extension" value=(e.number);
                                label { "Voicemail PIN (4 or more digits)" input name="service_pin" value=(e.service_pin) inputmode="numeric" autocomplete="off"; }
                                button type="submit" { "Save PIN" }
                            }
                            form.my-voicemail-mail method="post" action="/voicemail-mail" {
                                (csrf_field(c))
                                input type="hidden" name="extension" value=(e.number);
                                label { "My e-mail address" input name="email" type="email" value=(e.email) autocomplete="email"; }
                                label.check { input type="checkbox" name="voicemail_email" checked[e.voicemail_email]; "E-mail me each voicemail message" }
                                label.check { input type="checkbox" name="voicemail_attach" checked[e.voicemail_attach]; "with the recording attached" }
                                label.check { input type="checkbox" name="voicemail_delete_sent" checked[e.voicemail_delete_sent]; "and delete it from the box once sent" }
                                @if !snap.config.smtp.enabled() { p.hint { "The administrator has not set a mail server yet: nothing is sent until then." } }
                                button type="submit" { "Save voicemail e-mail" }
                            }
                            form.my-forwarding method="post" action="/forwarding" {
                                (csrf_field(c))
                                input type="hidden" name="extension" value=(e.number);
                                label { "Forward every call to (empty = ring here)" input name="forward" value=(e.forward) inputmode="tel"; }
                                label.check { input type="checkbox" name="do_not_disturb" checked[e.do_not_disturb]; "Do not disturb (my phones do not ring; callers get my busy rule)" }
                                label.check { input type="checkbox" name="call_waiting" checked[e.call_waiting]; "Call waiting (my phone rings for a second call while I am in one)" }
                                label { "Rings before \"no answer\" (seconds)" input name="no_answer_seconds" value=(e.no_answer_seconds) inputmode="numeric"; }
                                (forwarding_grid(e, &format!("forwarding-{}", e.number)))
                                button type="submit" { "Save forwarding" }
                            }
                        }
                    }
                }
                (crate::voicemail::portal_section(app, c))
                (crate::history::portal_section(app, c))
                h2 { "Ringing rules" }
                form.card method="post" action="/ringing" {
                    (csrf_field(c))
                    p { "Calls to your extensions ring your phones and, at the same time, these numbers:" }
                    label { "External numbers (comma separated, up to 5)" input name="ring_also" value=(user.ring_also.join(", ")); }
                    button type="submit" { "Save" }
                }
                h2 { "Password" }
                form.card method="post" action="/password" {
                    (csrf_field(c))
                    label { "New password" input type="password" name="password" required autocomplete="new-password"; }
                    label { "Confirm" input type="password" name="confirm" required autocomplete="new-password"; }
                    button type="submit" { "Change password" }
                }
            },
        ),
    )
}

/// Days since 1970-01-01 of a date (the inverse of [`civil`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM` (or with `T`), UTC, as Unix seconds.
pub(crate) fn parse_when(s: &str) -> Option<u64> {
    let s = s.trim().replace('T', " ");
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-');
    let (y, mo, da): (i64, u32, u32) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (h, mi) = time.split_once(':')?;
    let (h, mi): (u64, u64) = (h.parse().ok()?, mi.get(..2)?.parse().ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, mo, da);
    Some(days as u64 * 86_400 + h * 3600 + mi * 60)
}

/// The result of a Phones form; a CSV preview comes back with the CSV it was made of.
async fn phones_post(
    app: &Arc<App>,
    who: &str,
    action: &str,
    form: &[(String, String)],
) -> (
    Note,
    StatusCode,
    Option<(String, Vec<provision::phones::ImportLine>)>,
) {
    use provision::phones;
    let who = who.to_string();
    let r: Result<String, ApiError> = async {
        match action {
            "settings" => {
                let on = |k: &str| Some(field(form, k).is_some());
                let txt = |k: &str| field(form, k).map(str::to_string);
                let i = phones::SettingsInput {
                    enabled: on("enabled"),
                    first_extension: txt("first_extension"),
                    auto_create: on("auto_create"),
                    phone_password: txt("phone_password"),
                    allowed_sources: field(form, "allowed_sources").map(numbers_list),
                    ntp_server: txt("ntp_server"),
                    time_zone: txt("time_zone"),
                    utc_offset: txt("utc_offset"),
                };
                ops::change(
                    app,
                    &who,
                    "changed provisioning settings".into(),
                    move |c| phones::set_settings(c, i),
                )
                .await?;
                Ok("Provisioning settings saved.".into())
            }
            "add" | "edit" => {
                let mac = field(form, "mac").unwrap_or("").to_string();
                let model = field(form, "model").unwrap_or("").to_string();
                let exts = numbers_list(field(form, "extensions").unwrap_or(""));
                let blf = field(form, "blf_keys").map(config::parse_blf_keys);
                let (m2, add) = (mac.clone(), action == "add");
                ops::change(app, &who, format!("set phone {mac}"), move |c| {
                    let m = if add {
                        phones::add_phone(c, &m2, &model, &exts)?
                    } else {
                        phones::put_phone(c, &m2, &model, &exts)?
                    };
                    if let (Some(keys), Some(p)) = (blf, c.phones.iter_mut().find(|p| p.mac == m)) {
                        p.blf_keys = keys;
                    }
                    Ok(m)
                })
                .await?;
                Ok(format!("Phone {mac} saved."))
            }
            "remove" => {
                let mac = field(form, "mac").unwrap_or("").to_string();
                let m2 = mac.clone();
                ops::change(app, &who, format!("removed phone {mac}"), move |c| {
                    phones::remove_phone(c, &m2)
                })
                .await?;
                if let Some(m) = config::normalize_mac(&mac) {
                    app.prov.forget(&m);
                }
                Ok(format!("Phone {mac} removed."))
            }
            "import" => {
                let csv = field(form, "csv").unwrap_or("").to_string();
                let chosen: Vec<usize> = fields(form, "line")
                    .iter()
                    .filter_map(|l| l.parse().ok())
                    .collect();
                let n = chosen.len();
                ops::change(app, &who, "imported phones from CSV".into(), move |c| {
                    phones::import(c, csv.as_bytes(), Some(&chosen))
                })
                .await?;
                Ok(format!("{n} phones imported."))
            }
            "restart" => {
                let macs = phones::parse_macs(
                    &fields(form, "mac")
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>(),
                )?;
                match field(form, "at").map(str::trim).filter(|s| !s.is_empty()) {
                    Some(at) => {
                        let t = parse_when(at)
                            .ok_or_else(|| ApiError::bad("at", "use YYYY-MM-DD HH:MM (UTC)"))?;
                        app.prov.schedule_restart(Some((t, macs)));
                        Ok(format!("Phones restart at {} UTC.", when(t)))
                    }
                    None => {
                        let n = crate::provisioning::restart_now(app, macs).await?;
                        Ok(format!("Restart sent to {n} registered phones."))
                    }
                }
            }
            "cancel-restart" => {
                app.prov.schedule_restart(None);
                Ok("Scheduled restart cancelled.".into())
            }
            _ => Err(ApiError::not_found("no such action")),
        }
    }
    .await;
    if action == "preview" {
        let csv = field(form, "csv").unwrap_or("").to_string();
        return match phones::preview(&app.cfg.snapshot().config, csv.as_bytes()) {
            Ok(lines) => (Note::None, StatusCode::OK, Some((csv, lines))),
            Err(e) => (Note::Error(e), StatusCode::BAD_REQUEST, None),
        };
    }
    let (note, st) = outcome(r, |m| m);
    (note, st, None)
}

fn phones_page(
    app: &Arc<App>,
    c: &Caller,
    note: Note,
    status: StatusCode,
    preview: Option<(String, Vec<provision::phones::ImportLine>)>,
) -> Response {
    let snap = app.cfg.snapshot();
    let p = &snap.config.provisioning;
    let write = c.can_write_admin();
    let rows = app.prov.rows(&snap);
    let stale = rows.iter().filter(|r| r.needs_restart).count();
    let firmware = app.prov.firmware_list();
    page_response(
        status,
        layout(
            "Provisioned phones",
            Some(c),
            true,
            &note,
            html! {
                @if stale > 0 {
                    p.warning id="restart-needed" { (stale) " phone(s) have a changed configuration and need a restart." }
                }
                @if let Some((at, _)) = app.prov.scheduled_restart() {
                    p id="scheduled" { "Phones restart at " (when(at)) " UTC." }
                }
                table id="phones" {
                    thead { tr { th { "MAC" } th { "Model" } th { "Extensions" } th { "State" } th { "IP address" } th { "Last fetch (UTC)" } th { "Restart" } @if write { th {} } } }
                    tbody {
                        @for r in &rows {
                            tr {
                                td { (r.mac) }
                                td { (r.manufacturer) " " (r.model) }
                                td {
                                    @if write && r.state != config::PhoneState::Disabled {
                                        form.inline method="post" action="/admin/phones/edit" {
                                            (csrf_field(c))
                                            input type="hidden" name="mac" value=(r.mac);
                                            input type="hidden" name="model" value=(r.model);
                                            input name="extensions" value=(r.extensions.join(", ")) aria-label="Extensions" size="12";
                                            input name="blf_keys" value=(config::format_blf_keys(&r.blf_keys)) aria-label="BLF keys" placeholder="BLF keys: 102 Bob; *71 Park" size="18";
                                            button type="submit" { "Set" }
                                        }
                                    } @else { (r.extensions.join(", ")) }
                                }
                                td { (r.state.as_str()) }
                                td { (r.ip.as_deref().unwrap_or("")) }
                                td { (r.last_fetch.map(when).unwrap_or_default()) " " (r.last_file.as_deref().unwrap_or("")) }
                                td { (if r.needs_restart { "needed" } else { "" }) }
                                @if write {
                                    td {
                                        @if r.state != config::PhoneState::Disabled {
                                            form.inline method="post" action="/admin/phones/remove" {
                                                (csrf_field(c))
                                                input type="hidden" name="mac" value=(r.mac);
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
                    form.card method="post" action="/admin/phones/restart" {
                        (csrf_field(c))
                        label { "Restart all phones at (UTC, YYYY-MM-DD HH:MM; empty = now)" input name="at" placeholder="2026-12-24 02:00"; }
                        button type="submit" { "Restart all phones" }
                    }
                    @if app.prov.scheduled_restart().is_some() {
                        form.inline method="post" action="/admin/phones/cancel-restart" {
                            (csrf_field(c))
                            button type="submit" { "Cancel the scheduled restart" }
                        }
                    }
                    details.dialog {
                        summary { "Add manually" }
                        form.card id="add-phone" method="post" action="/admin/phones/add" {
                            (csrf_field(c))
                            label { "MAC address" input name="mac" required placeholder="00:1a:a0:be:1e:cd"; }
                            label { "Phone type"
                                select name="model" {
                                    @for m in config::PHONE_MODELS {
                                        option value=(m.name) { (m.manufacturer) " " (m.name) " (" (m.lines) " extensions)" }
                                    }
                                }
                            }
                            label { "Extensions (comma-separated; missing ones are created)" input name="extensions"; }
                            button type="submit" { "Add" }
                        }
                    }
                    details.dialog open[preview.is_some()] {
                        summary { "Import from CSV" }
                        @if let Some((csv, lines)) = &preview {
                            form.card id="import" method="post" action="/admin/phones/import" {
                                (csrf_field(c))
                                input type="hidden" name="csv" value=(csv);
                                table id="preview" {
                                    thead { tr { th { "Import" } th { "Line" } th { "MAC" } th { "Type" } th { "Extensions" } th { "Error" } } }
                                    tbody {
                                        @for l in lines {
                                            tr {
                                                td { input type="checkbox" name="line" value=(l.line) checked[l.error.is_none()] disabled[l.error.is_some()] aria-label={ "line " (l.line) }; }
                                                td { (l.line) }
                                                td { (l.mac) }
                                                td { (l.manufacturer) " " (l.model) }
                                                td { (l.extensions.join(", ")) }
                                                td.error { (l.error.as_deref().unwrap_or("")) }
                                            }
                                        }
                                    }
                                }
                                button type="submit" { "Import the checked phones" }
                            }
                        } @else {
                            form.card method="post" action="/admin/phones/preview" {
                                (csrf_field(c))
                                label { "hwAddress;phoneManufacturer;phoneType;extension1;extension2;..." textarea name="csv" rows="6" required {} }
                                button type="submit" { "Preview" }
                            }
                        }
                    }
                    form.card method="post" action="/admin/phones/settings" {
                        h2 { "Provisioning" }
                        (csrf_field(c))
                        label { input type="checkbox" name="enabled" checked[p.enabled]; " Enable provisioning" }
                        label { "First extension" input name="first_extension" value=(p.first_extension) pattern="[0-9]{1,20}"; }
                        label { input type="checkbox" name="auto_create" checked[p.auto_create]; " Create new extension for newly registered phones" }
                        label { "Password for phones" (secret_field("phone-password", "phone_password", &p.phone_password, false)) }
                        label { "Allowed addresses (empty = any)" input name="allowed_sources" value=(p.allowed_sources.join(", ")); }
                        label { "NTP server (empty = this box)" input name="ntp_server" value=(p.ntp_server); }
                        label { "Time zone" input name="time_zone" value=(p.time_zone); }
                        label { "UTC offset" input name="utc_offset" value=(p.utc_offset) pattern="[+-][0-9]{2}:[0-9]{2}"; }
                        button type="submit" { "Save" }
                    }
                } @else {
                    p { "Provisioning is " (if p.enabled { "enabled" } else { "disabled" }) ", first extension " (p.first_extension) "." }
                }
                h2 { "Firmware" }
                table id="firmware" {
                    thead { tr { th { "Model" } th { "File" } th { "Size" } } }
                    tbody {
                        @for (m, f, size) in &firmware {
                            tr { td { (m) } td { (f) } td { (mib(*size)) } }
                        }
                    }
                }
                @if write {
                    p { "Upload a phone firmware with " code { "PUT /api/v1/provisioning/firmware/MODEL/FILE" } "; each model's configuration names it." }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(when(0), "1970-01-01 00:00:00");
        assert_eq!(when(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(when(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn restart_times_parse_as_utc() {
        assert_eq!(parse_when("1970-01-01 00:01"), Some(60));
        assert_eq!(parse_when("2026-12-24T02:00"), Some(1_798_077_600));
        assert_eq!(
            when(parse_when("2026-02-28 23:59").unwrap()),
            "2026-02-28 23:59:00"
        );
        for bad in [
            "",
            "2026-13-01 00:00",
            "2026-12-24",
            "24.12.2026 02:00",
            "2026-12-24 25:00",
        ] {
            assert_eq!(parse_when(bad), None, "{bad}");
        }
    }
}
