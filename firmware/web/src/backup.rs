//! Backup and recovery (Kerio 20): the administrator chooses what to back up, the box
//! writes one archive to `DATA/backups` (the newest `backup.keep` are kept), and it is
//! downloaded from the page or the API. A backup uploaded for recovery is checked whole
//! and staged; the exchange then restarts and puts it in place before anything opens
//! the store (`store::backup` says how a failure leaves the box as it was).
//!
//! API: `GET /api/v1/system/backups` lists the backups, the parts a backup can hold and
//! whether a recovery waits for the restart; `POST` makes one (`{"parts": [...]}`);
//! `GET` or `DELETE /api/v1/system/backups/NAME` downloads or removes one;
//! `POST /api/v1/system/restore` takes an archive as the body and restarts into it;
//! `POST /api/v1/system/backups/NAME/send` sends one to the remote target now
//! (`backup.remote`, web::remote), where the schedule sends each backup it makes.

use crate::api::{created, need_admin_read, need_admin_write, no_content, ok};
use crate::pages::{csrf_field, field, fields, layout, page_response, Note};
use crate::{json_reply, ApiError, App, Caller, Req};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::backup::{BackupError, Manifest, Part};
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// The largest backup the box makes, sends or takes back: downloads and uploads go
/// through memory.
pub const MAX_BACKUP: usize = 512 << 20;
const RESTORE_PATH: &str = "/api/v1/system/restore";

/// Whether a request may carry a backup-sized body.
pub(crate) fn big_body(method: &Method, path: &str) -> bool {
    method == Method::POST && path == RESTORE_PATH
}

fn dir(app: &App) -> PathBuf {
    app.settings.data_dir.join(store::backup::DIR)
}

/// A backup's file name from its date (UTC): `backup-2026-12-04-231500.tar.gz`.
pub fn file_name(unix: u64) -> String {
    format!(
        "backup-{}.tar.gz",
        crate::pages::when(unix).replace(' ', "-").replace(':', "")
    )
}

/// A backup in words, for the logs: when, where and by which firmware it was made.
pub fn describe(m: &Manifest) -> String {
    format!(
        "backup made {} UTC on {} by firmware {}",
        crate::pages::when(m.created),
        if m.host.is_empty() { "a box" } else { &m.host },
        m.firmware
    )
}

/// Only names the box gives its backups are ever opened.
fn valid_name(n: &str) -> bool {
    n.starts_with("backup-")
        && n.ends_with(".tar.gz")
        && n.len() < 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !n.contains("..")
}

/// A random name of this daemon, new at every start: the Backup page's script knows
/// the box restarted when it changes.
pub(crate) fn instance() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// A recovery is staged and the restart asked for: nothing else is taken until then.
static STAGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn http_error(e: BackupError) -> ApiError {
    let status = match &e {
        BackupError::NotABackup(_) | BackupError::Corrupt(_) => StatusCode::UNPROCESSABLE_ENTITY,
        BackupError::TooNew { .. } | BackupError::FormatTooNew { .. } => StatusCode::CONFLICT,
        BackupError::NoRoom { .. } => StatusCode::INSUFFICIENT_STORAGE,
        BackupError::Invalid(_) => StatusCode::BAD_REQUEST,
        BackupError::Io(io) if io.raw_os_error() == Some(28) => StatusCode::INSUFFICIENT_STORAGE,
        BackupError::Io(_) | BackupError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

fn listed(path: &Path) -> Value {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let manifest = std::fs::File::open(path)
        .map_err(BackupError::from)
        .and_then(|f| store::backup::read_manifest(std::io::BufReader::new(f)));
    match manifest {
        Ok(m) => json!({"name": name, "size": size, "manifest": m}),
        Err(e) => json!({"name": name, "size": size, "error": e.to_string()}),
    }
}

/// The backups on the box, newest first.
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(valid_name)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

/// Makes a backup of `parts` of the box at `data` now, in `DATA/backups`; the oldest
/// beyond `keep` go. Blocking (the web's requests and the schedule call it off their
/// loops); one backup at a time.
pub fn make_now(
    store: &store::Store,
    data: &Path,
    parts: &[Part],
    origin: &store::backup::Origin,
    keep: usize,
) -> Result<PathBuf, ApiError> {
    static BUSY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUSY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = data.join(store::backup::DIR);
    // What a backup cut off (a restart, a power cut) left behind.
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(".partial-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    // Names sort by date: a second backup within the same second waits for the next.
    let mut now = crate::unix_now();
    while dir.join(file_name(now)).exists() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        now = crate::unix_now();
    }
    let out = dir.join(file_name(now));
    store::backup::create(store, data, parts, origin, now, &out).map_err(http_error)?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    if size > MAX_BACKUP as u64 {
        let _ = std::fs::remove_file(&out);
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "the backup would be {} MiB, more than the {} MiB the box can send and take back: leave out call recordings or phone firmware",
                size >> 20,
                MAX_BACKUP >> 20
            ),
        ));
    }
    for old in list(&dir).into_iter().skip(keep.max(1)) {
        let _ = std::fs::remove_file(old);
    }
    Ok(out)
}

/// What a backup made here says of the box.
pub fn origin(version: &str, board: &str) -> store::backup::Origin {
    store::backup::Origin {
        firmware: version.to_string(),
        board: board.to_string(),
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// Whether the scheduled backup is due at `now` (Unix seconds; `utc_offset` seconds east
/// of UTC gives local time): its hour of the day (of the last Sunday, weekly) has come
/// and no backup on the box was made since. A box that was off then catches up when it
/// is back.
pub fn scheduled_due(s: &config::BackupSchedule, now: u64, utc_offset: i64, data: &Path) -> bool {
    let local = now as i64 + utc_offset;
    let day = local.div_euclid(86_400);
    let slot = match s.every {
        config::BackupEvery::Off => return false,
        config::BackupEvery::Daily => day,
        // 1970-01-01 was a Thursday: day + 4 counts from a Sunday.
        config::BackupEvery::Weekly => day - (day + 4).rem_euclid(7),
    };
    let start = slot * 86_400 + i64::from(s.hour) * 3600 - utc_offset;
    if (now as i64) < start {
        return false;
    }
    // The newest backup (names sort by date) and its date, from its manifest.
    newest_created(data).is_none_or(|c| (c as i64) < start)
}

/// When the newest backup on the box was made (its manifest's date).
/// The newest backup on the box.
pub fn newest(data: &Path) -> Option<PathBuf> {
    list(&data.join(store::backup::DIR)).into_iter().next()
}

pub(crate) fn newest_created(data: &Path) -> Option<u64> {
    newest(data)
        .and_then(|p| std::fs::File::open(p).ok())
        .and_then(|f| store::backup::read_manifest(std::io::BufReader::new(f)).ok())
        .map(|m| m.created)
}

/// Makes a backup now for a web request.
async fn make(app: &Arc<App>, parts: Vec<Part>) -> Result<Value, ApiError> {
    let store = app.cfg.store().clone();
    let data = app.settings.data_dir.clone();
    let origin = origin(&app.settings.version, &app.settings.board);
    let keep = app.cfg.snapshot().config.backup.keep as usize;
    tokio::task::spawn_blocking(move || {
        make_now(&store, &data, &parts, &origin, keep).map(|p| listed(&p))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// What stands for the remote target's password in answers and forms: sent back, it
/// keeps the stored one.
const HIDDEN: &str = "****";

/// The schedule as the API shows it, the remote password hidden.
fn schedule_json(s: &config::BackupSchedule) -> Value {
    let mut v = serde_json::to_value(s).expect("serialises");
    if !s.remote.password.is_empty() {
        v["remote"]["password"] = json!(HIDDEN);
    }
    v
}

/// Saves the backup schedule.
async fn set_schedule(
    app: &Arc<App>,
    who: &str,
    mut s: config::BackupSchedule,
) -> Result<(), ApiError> {
    s.remote.url = s.remote.url.trim().to_string();
    s.remote.username = s.remote.username.trim().to_string();
    if s.remote.password == HIDDEN {
        let now = app.cfg.snapshot().config.backup.remote.clone();
        // The saved password goes only to the server and user it was given for.
        if now.url != s.remote.url || now.username != s.remote.username {
            return Err(ApiError::bad(
                "remote.password",
                "type the password again for another server, folder or user name",
            ));
        }
        s.remote.password = now.password;
    }
    crate::ops::change(app, who, "changed the backup schedule".into(), move |c| {
        c.backup = s;
        Ok(())
    })
    .await
    .map(|_| ())
}

/// Parts by name; unknown names are refused with the list of known ones.
fn parts_from(names: &[impl AsRef<str>]) -> Result<Vec<Part>, ApiError> {
    names
        .iter()
        .map(|n| {
            let n = n.as_ref();
            Part::parse(n).ok_or_else(|| {
                ApiError::bad(
                    "parts",
                    format!(
                        "unknown part {n:?} (one of {})",
                        Part::ALL.map(Part::name).join(", ")
                    ),
                )
            })
        })
        .collect()
}

fn download(app: &App, name: &str) -> Result<Response, ApiError> {
    if !valid_name(name) {
        return Err(ApiError::not_found("no such backup"));
    }
    let bytes =
        std::fs::read(dir(app).join(name)).map_err(|_| ApiError::not_found("no such backup"))?;
    let mut r = warp::reply::with_header(bytes, "content-type", "application/gzip").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// How long a request waits for a send it started; a longer one goes on by itself
/// (the web server ends connections after ten minutes) and the page shows how it went.
const SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends a backup of the box to the remote target now: `Ok(Some(url))` when it went,
/// `Ok(None)` when it is still going after [`SEND_WAIT`].
async fn send(app: &Arc<App>, name: &str) -> Result<Option<String>, ApiError> {
    if !valid_name(name) || !dir(app).join(name).is_file() {
        return Err(ApiError::not_found("no such backup"));
    }
    let target = app.cfg.snapshot().config.backup.remote.clone();
    if !target.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no remote target is set: turn it on in the backup schedule first",
        ));
    }
    let data = app.settings.data_dir.clone();
    let file = dir(app).join(name);
    let task = tokio::spawn(async move {
        crate::remote::send_recorded(&data, &target, &file, crate::unix_now()).await
    });
    match tokio::time::timeout(SEND_WAIT, task).await {
        Err(_) => Ok(None),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
        Ok(Ok(r)) => r
            .map(Some)
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e)),
    }
}

fn remove(app: &App, name: &str) -> Result<(), ApiError> {
    if !valid_name(name) {
        return Err(ApiError::not_found("no such backup"));
    }
    std::fs::remove_file(dir(app).join(name)).map_err(|_| ApiError::not_found("no such backup"))
}

/// Checks and stages an uploaded backup, then has the exchange restart into it.
async fn restore(app: &Arc<App>, req: &Req, who: &str) -> Result<Manifest, ApiError> {
    static BUSY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    if req.body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "send the backup (.tar.gz) as the request body",
        ));
    }
    let _one = BUSY.lock().await;
    if STAGED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a recovery is staged and the box is restarting into it",
        ));
    }
    let data = app.settings.data_dir.clone();
    let body = req.body.clone();
    let by = format!("{who} from {}", req.addr);
    let m = tokio::task::spawn_blocking(move || store::backup::stage(&data, &body[..], &by))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(http_error)?;
    STAGED.store(true, std::sync::atomic::Ordering::SeqCst);
    app.security(
        req.addr,
        who,
        &format!("{} uploaded for recovery; restarting", describe(&m)),
    );
    // The answer goes out first; then the exchange stops and starts again.
    let core = app.core.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let _ = core.send(crate::CoreRequest::Restart).await;
    });
    Ok(m)
}

pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    segs: &[&str],
) -> Result<Response, ApiError> {
    match (&req.method, segs) {
        (&Method::GET, ["backups"]) => {
            need_admin_read(c)?;
            let backups: Vec<Value> = list(&dir(app)).iter().map(|p| listed(p)).collect();
            let parts: Vec<Value> = Part::ALL
                .iter()
                .map(|p| json!({"name": p.name(), "label": p.label(), "default": Part::DEFAULT.contains(p)}))
                .collect();
            ok(json!({
                "backups": backups,
                "parts": parts,
                "restore_pending": store::backup::pending(&app.settings.data_dir),
                "remote": crate::remote::last(&app.settings.data_dir),
            }))
        }
        (&Method::POST, ["backups"]) => {
            need_admin_write(c)?;
            let parts = if req.body.iter().all(u8::is_ascii_whitespace) {
                Part::DEFAULT.to_vec()
            } else {
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Body {
                    parts: Vec<String>,
                }
                let b: Body = serde_json::from_slice(&req.body).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("expected {{\"parts\": [\"config\", \"voicemail\"]}}: {e}"),
                    )
                })?;
                parts_from(&b.parts)?
            };
            let v = make(app, parts).await?;
            app.security(req.addr, &c.user.username, "backup created");
            created(v)
        }
        (&Method::GET, ["backups", name]) => {
            need_admin_write(c)?;
            let r = download(app, name)?;
            app.security(
                req.addr,
                &c.user.username,
                &format!("backup {name} downloaded"),
            );
            Ok(r)
        }
        (&Method::POST, ["backups", name, "send"]) => {
            need_admin_write(c)?;
            match send(app, name).await? {
                Some(url) => {
                    app.security(
                        req.addr,
                        &c.user.username,
                        &format!("backup {name} sent to {url}"),
                    );
                    ok(json!({"name": name, "sent_to": url}))
                }
                None => {
                    app.security(
                        req.addr,
                        &c.user.username,
                        &format!("backup {name} being sent"),
                    );
                    Ok(json_reply(
                        StatusCode::ACCEPTED,
                        &json!({"name": name, "message": "still sending; GET /api/v1/system/backups shows how it went (remote)"}),
                    ))
                }
            }
        }
        (&Method::DELETE, ["backups", name]) => {
            need_admin_write(c)?;
            remove(app, name)?;
            no_content()
        }
        (&Method::GET, ["backup-schedule"]) => {
            need_admin_read(c)?;
            ok(schedule_json(&app.cfg.snapshot().config.backup))
        }
        (&Method::PUT, ["backup-schedule"]) => {
            need_admin_write(c)?;
            let bad = |e: serde_json::Error| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"every\": \"daily\", \"hour\": 3, \"parts\": [\"config\"], \"keep\": 5}}: {e}"),
                )
            };
            let v: Value = serde_json::from_slice(&req.body).map_err(bad)?;
            // A schedule sent without `remote` (a script older than it) keeps the target.
            let keeps_target = v.get("remote").is_none();
            let mut s: config::BackupSchedule = serde_json::from_value(v).map_err(bad)?;
            if keeps_target {
                s.remote = app.cfg.snapshot().config.backup.remote.clone();
            }
            set_schedule(app, &c.user.username, s).await?;
            ok(schedule_json(&app.cfg.snapshot().config.backup))
        }
        (&Method::POST, ["restore"]) => {
            need_admin_write(c)?;
            let m = restore(app, req, &c.user.username).await?;
            Ok(json_reply(
                StatusCode::ACCEPTED,
                &json!({"restoring": m, "instance": instance(), "message": "The backup is in order. The exchange restarts into it now; calls in progress end."}),
            ))
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// `/admin/backup`: create, list, download, delete; recovery through the API from the
/// page's script.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    addr: std::net::IpAddr,
    get: bool,
    rest: &[&str],
    form: &[(String, String)],
) -> Response {
    if get {
        return match rest {
            [] => page(app, c, Note::None, StatusCode::OK),
            _ => page(
                app,
                c,
                Note::Error("no such page".into()),
                StatusCode::NOT_FOUND,
            ),
        };
    }
    if let Err(e) = need_admin_write(c) {
        return page(app, c, Note::Error(e.error), e.status);
    }
    let r = match rest {
        ["create"] => match parts_from(&fields(form, "part")) {
            Ok(p) => make(app, p).await.map(|v| {
                app.security(addr, &c.user.username, "backup created");
                format!(
                    "Backup {} made: download it and keep it off the box.",
                    v["name"].as_str().unwrap_or("")
                )
            }),
            Err(e) => Err(e),
        },
        ["delete"] => {
            let name = field(form, "name").unwrap_or("");
            remove(app, name).map(|()| format!("Backup {name} removed."))
        }
        ["send"] => {
            let name = field(form, "name").unwrap_or("");
            send(app, name).await.map(|sent| match sent {
                Some(url) => {
                    app.security(
                        addr,
                        &c.user.username,
                        &format!("backup {name} sent to {url}"),
                    );
                    format!("Backup {name} sent to {url}.")
                }
                None => {
                    app.security(addr, &c.user.username, &format!("backup {name} being sent"));
                    format!(
                        "Backup {name} is still being sent; reload this page to see how it went."
                    )
                }
            })
        }
        ["schedule"] => {
            let every = match field(form, "every").unwrap_or("") {
                "daily" => Ok(config::BackupEvery::Daily),
                "weekly" => Ok(config::BackupEvery::Weekly),
                "off" => Ok(config::BackupEvery::Off),
                _ => Err(ApiError::bad("every", "choose off, daily or weekly")),
            };
            // Ranges are the configuration's to check (it names the field).
            let number = |name: &str| {
                field(form, name)
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .ok_or_else(|| ApiError::bad(name, "must be a whole number"))
            };
            let s = every.and_then(|every| {
                Ok(config::BackupSchedule {
                    every,
                    hour: u8::try_from(number("hour")?).unwrap_or(u8::MAX),
                    keep: number("keep")?,
                    parts: fields(form, "scheduled_part")
                        .into_iter()
                        .map(String::from)
                        .collect(),
                    remote: config::RemoteTarget {
                        enabled: field(form, "remote_enabled").is_some(),
                        url: field(form, "remote_url").unwrap_or("").trim().to_string(),
                        username: field(form, "remote_username")
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                        password: field(form, "remote_password").unwrap_or("").to_string(),
                    },
                })
            });
            match s {
                Ok(s) => set_schedule(app, &c.user.username, s)
                    .await
                    .map(|()| "Backup schedule saved.".to_string()),
                Err(e) => Err(e),
            }
        }
        _ => Err(ApiError::not_found("no such action")),
    };
    match r {
        Ok(m) => page(app, c, Note::Done(m), StatusCode::OK),
        Err(e) => page(app, c, Note::Error(e.error), e.status),
    }
}

fn size_text(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
    }
}

fn page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    use maud::html;
    let write = c.can_write_admin();
    let backups: Vec<Value> = list(&dir(app)).iter().map(|p| listed(p)).collect();
    let pending = store::backup::pending(&app.settings.data_dir);
    let sched = app.cfg.snapshot().config.backup.clone();
    let sent = crate::remote::last(&app.settings.data_dir);
    page_response(
        status,
        layout(
            "Backup and recovery",
            Some(c),
            true,
            &note,
            html! {
                @if pending {
                    p.error role="alert" { "A recovery is staged and waits for the exchange to restart." }
                }
                @match &app.settings.recovery {
                    Some(Ok(m)) => p.done id="recovery" role="status" { "At its last start the box restored the " (m) "." }
                    Some(Err(m)) => p.error id="recovery" role="alert" { "At its last start the recovery did not come up and the box went back to what it was: " (m) }
                    None => {}
                }
                h2 { "Back up" }
                p { "A backup is one archive (" code { ".tar.gz" } ") with a manifest and checksums. The box keeps the newest " (sched.keep) "; download them and keep them off the box, since a factory reset erases the data partition." }
                @if write {
                    form id="backup-form" method="post" action="/admin/backup/create" {
                        (csrf_field(c))
                        fieldset {
                            legend { "What to back up" }
                            @for p in Part::ALL {
                                label {
                                    input type="checkbox" name="part" value=(p.name()) checked[Part::DEFAULT.contains(&p)];
                                    " " (p.label())
                                }
                            }
                        }
                        button type="submit" { "Create backup" }
                    }
                }
                table id="backups" {
                    thead { tr { th { "Backup" } th { "Made" } th { "Firmware" } th { "Holds" } th { "Size" } th {} } }
                    tbody {
                        @for b in &backups {
                            @let name = b["name"].as_str().unwrap_or("");
                            tr data-name=(name) {
                                td { @if write { a href=(format!("/api/v1/system/backups/{name}")) download=(name) { (name) } } @else { (name) } }
                                @if let Some(m) = b.get("manifest") {
                                    td { (crate::pages::when(m["created"].as_u64().unwrap_or(0))) " UTC" }
                                    td { (m["firmware"].as_str().unwrap_or("")) }
                                    td { (m["parts"].as_array().map(|a| a.iter().filter_map(|p| p.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                } @else {
                                    td colspan="3" { (b["error"].as_str().unwrap_or("")) }
                                }
                                td { (size_text(b["size"].as_u64().unwrap_or(0))) }
                                td {
                                    @if write && sched.remote.enabled {
                                        form method="post" action="/admin/backup/send" {
                                            (csrf_field(c))
                                            input type="hidden" name="name" value=(name);
                                            button type="submit" { "Send to the server" }
                                        }
                                    }
                                    @if write {
                                        form method="post" action="/admin/backup/delete" {
                                            (csrf_field(c))
                                            input type="hidden" name="name" value=(name);
                                            button type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if backups.is_empty() { p { "No backups on the box yet." } }
                h2 { "Scheduled backups" }
                form id="schedule-form" method="post" action="/admin/backup/schedule" {
                    (csrf_field(c))
                    label for="every" { "Back up" }
                    select id="every" name="every" disabled[!write] {
                        @for (v, t) in [("off", "Only by hand"), ("daily", "Every day"), ("weekly", "Every Sunday")] {
                            option value=(v) selected[serde_json::to_value(sched.every).ok().and_then(|x| x.as_str().map(|x| x == v)).unwrap_or(false)] { (t) }
                        }
                    }
                    label for="hour" { "From this hour (0-23, the box's time)" }
                    input id="hour" name="hour" type="number" min="0" max="23" value=(sched.hour) disabled[!write];
                    label for="keep" { "Backups kept on the box (1-30, made by hand or by the schedule)" }
                    input id="keep" name="keep" type="number" min="1" max="30" value=(sched.keep) disabled[!write];
                    fieldset {
                        legend { "What the scheduled backups hold" }
                        @for p in Part::ALL {
                            label {
                                input type="checkbox" name="scheduled_part" value=(p.name()) checked[sched.parts.iter().any(|x| x == p.name())] disabled[!write];
                                " " (p.label())
                            }
                        }
                    }
                    fieldset id="remote" {
                        legend { "Send each scheduled backup to a server" }
                        p { "An HTTPS folder that takes uploads (WebDAV: a NAS, Nextcloud, nginx or Apache). The server's certificate must be trusted (a public one, or its CA added under Certificates). A failed send is tried again every 10 minutes, 6 times." }
                        label {
                            input type="checkbox" name="remote_enabled" value="on" checked[sched.remote.enabled] disabled[!write];
                            " Send to the server"
                        }
                        label for="remote_url" { "Folder URL" }
                        input id="remote_url" name="remote_url" type="url" placeholder="https://nas.example.org/backups/" value=(sched.remote.url) disabled[!write];
                        label for="remote_username" { "User name (HTTP Basic; empty for none)" }
                        input id="remote_username" name="remote_username" value=(sched.remote.username) autocomplete="off" disabled[!write];
                        label for="remote_password" { "Password" }
                        input id="remote_password" name="remote_password" type="password" value=(if sched.remote.password.is_empty() { "" } else { HIDDEN }) autocomplete="off" disabled[!write];
                        @if let Some(s) = &sent {
                            p id="remote-state" class=(if s.ok { "done" } else { "error" }) role="status" {
                                "Last send: " (s.file) ", " (crate::pages::when(s.at)) " UTC: " (s.message)
                                @if !s.ok { " (try " (s.tries) " of " (crate::remote::TRIES) ")" }
                            }
                        }
                    }
                    @if write { button type="submit" { "Save schedule" } }
                }
                @if write {
                    h2 { "Recover" }
                    p { "Upload a backup of this box or of another one. It is checked whole first (manifest, checksums, data schema); a damaged backup, or one made by newer firmware, is refused and nothing changes. Then the exchange restarts into it: calls in progress end, and what the backup holds replaces what the box has." }
                    form id="restore-form" data-csrf=(c.session.csrf) data-instance=(instance()) {
                        label for="archive" { "Backup file" }
                        input type="file" id="archive" name="archive" accept=".tar.gz,.tgz,application/gzip" required;
                        button type="submit" { "Recover and restart" }
                    }
                    p id="restore-state" data-state="idle" {}
                    noscript { p { "Uploading needs JavaScript; the API takes the file too: POST " code { (RESTORE_PATH) } "." } }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_box_gives_are_the_only_ones_it_opens() {
        let n = file_name(1_733_354_100);
        assert_eq!(n, "backup-2024-12-04-231500.tar.gz");
        assert!(valid_name(&n));
        for bad in [
            "../db",
            "backup-..tar.gz",
            "backup-a/b.tar.gz",
            "x.tar.gz",
            "backup-1.zip",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_scheduled_backup_is_due_once_per_day_or_week_from_its_hour() {
        use config::{BackupEvery, BackupSchedule};
        let data = tempfile::tempdir().unwrap();
        let d = data.path();
        let store = store::Store::open(d).unwrap();
        let daily = BackupSchedule {
            every: BackupEvery::Daily,
            hour: 3,
            ..Default::default()
        };
        // Wednesday 2024-12-04 in UTC+1: 02:30 and 03:30 local.
        let wed_0230 = 1_733_275_800;
        let wed_0330 = wed_0230 + 3600;
        let off = BackupSchedule::default();
        assert!(!scheduled_due(&off, wed_0330, 3600, d), "off");
        assert!(!scheduled_due(&daily, wed_0230, 3600, d), "before its hour");
        assert!(scheduled_due(&daily, wed_0330, 3600, d));
        let weekly = BackupSchedule {
            every: BackupEvery::Weekly,
            ..daily.clone()
        };
        // Weekly: due since Sunday 03:00 (a box off on Sunday catches up).
        assert!(scheduled_due(&weekly, wed_0230, 3600, d));
        let origin = origin("t", "x86");
        let parts = [Part::Config];
        let out = d.join(store::backup::DIR).join(file_name(wed_0230));
        // Made on Wednesday at 02:30: the weekly one is done, the daily one not yet.
        store::backup::create(&store, d, &parts, &origin, wed_0230, &out).unwrap();
        assert!(!scheduled_due(&weekly, wed_0330, 3600, d));
        assert!(scheduled_due(&daily, wed_0330, 3600, d));
        let out = d.join(store::backup::DIR).join(file_name(wed_0330));
        store::backup::create(&store, d, &parts, &origin, wed_0330, &out).unwrap();
        assert!(
            !scheduled_due(&daily, wed_0330 + 7200, 3600, d),
            "done today"
        );
        assert!(
            scheduled_due(&daily, wed_0330 + 86_400, 3600, d),
            "due again tomorrow"
        );
        // A Sunday before 03:00 belongs to the week before.
        let sun_0230 = wed_0230 + 4 * 86_400;
        assert!(!scheduled_due(&weekly, sun_0230, 3600, d));
        assert!(scheduled_due(&weekly, sun_0230 + 3600, 3600, d));
    }
}
