//! Firmware update over the web (Kerio 21): the administrator uploads a signed bundle,
//! the box installs it into the other slot with RAUC and restarts into it.
//!
//! `POST /api/v1/system/update` takes the bundle as the request body
//! (`application/octet-stream`), `GET /api/v1/system/update` says where it stands. The
//! page `/admin/update` sends the file with the same request and shows the progress.

use crate::api::{need_admin_read, need_admin_write, ok};
use crate::{json_reply, ApiError, App, Caller, Req};
use std::sync::Arc;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// The largest bundle accepted (the root slots hold 640 MiB; bundles are compressed).
pub const MAX_BUNDLE: usize = 512 << 20;

/// Whether a request may carry a bundle-sized body.
pub(crate) fn big_body(method: &Method, path: &str) -> bool {
    method == Method::POST && path == "/api/v1/system/update"
}

/// The magic of a RAUC bundle: a squashfs image.
fn looks_like_bundle(b: &[u8]) -> bool {
    b.starts_with(b"hsqs")
}

pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    segs: &[&str],
) -> Result<Response, ApiError> {
    match (&req.method, segs) {
        (&Method::GET, ["update"]) => {
            need_admin_read(c)?;
            ok(serde_json::to_value(app.updater.state()).expect("serialises"))
        }
        (&Method::POST, ["update"]) => {
            need_admin_write(c)?;
            if req.body.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "send the firmware bundle (.raucb) as the request body",
                ));
            }
            if !looks_like_bundle(&req.body) {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the file is not a firmware bundle (.raucb)",
                ));
            }
            // Refused before anything is written: the bundle an install is reading
            // must never be overwritten.
            if app.updater.busy() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "an update is already being installed",
                ));
            }
            let dir = app.settings.data_dir.join("update");
            let path = dir.join(format!("upload-{}.raucb", rand::random::<u64>()));
            let body = req.body.clone();
            let p = path.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(&p, &body)
            })
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| {
                let _ = std::fs::remove_file(&path);
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!("cannot store the bundle on the data partition: {e}"),
                )
            })?;
            app.security(req.addr, &c.user.username, "firmware update uploaded");
            if let Err(e) = app.updater.install(&path, true) {
                let _ = std::fs::remove_file(&path);
                return Err(ApiError::new(StatusCode::CONFLICT, e));
            }
            Ok(json_reply(
                StatusCode::ACCEPTED,
                &serde_json::to_value(app.updater.state()).expect("serialises"),
            ))
        }
        (&Method::GET, ["time"]) => {
            need_admin_read(c)?;
            let s = system::time::TimeFile::in_data_dir(&app.settings.data_dir)
                .load()
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
                .unwrap_or_default();
            ok(serde_json::to_value(s).expect("serialises"))
        }
        (&Method::PUT, ["time"]) => {
            need_admin_write(c)?;
            let s: system::time::TimeSettings = serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "expected {{\"timezone\": \"Europe/Prague\", \"ntp\": [\"host\"]}}: {e}"
                    ),
                )
            })?;
            save_time(app, &s).await?;
            app.security(req.addr, &c.user.username, "time settings changed");
            ok(serde_json::to_value(s).expect("serialises"))
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// Validates, saves and (on the box) applies time settings.
async fn save_time(app: &Arc<App>, s: &system::time::TimeSettings) -> Result<(), ApiError> {
    // Zones are checked against the system's zoneinfo (the host's off the box).
    let check = app.settings.root.clone().unwrap_or_else(|| "/".into());
    if let Err(e) = s.validate(&check) {
        return Err(ApiError::bad(&e.field, e.message));
    }
    let root = app.settings.root.clone();
    let data = app.settings.data_dir.clone();
    let saved = s.clone();
    tokio::task::spawn_blocking(move || {
        system::time::TimeFile::in_data_dir(&data).save(&saved, &check)?;
        match root {
            Some(root) => system::time::apply(&saved, &root).map(|_| ()),
            None => Ok(()),
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// The Date and time form posted from the System page (fields `timezone`, `ntp`:
/// servers separated by spaces or commas).
pub(crate) async fn time_post(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    form: &[(String, String)],
) -> Response {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let s = system::time::TimeSettings {
        timezone: get("timezone"),
        ntp: get("ntp")
            .split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
    };
    match save_time(app, &s).await {
        Ok(()) => {
            app.security(req.addr, &c.user.username, "time settings changed");
            page(
                app,
                c,
                crate::pages::Note::Done(format!("Time zone {} saved.", s.timezone)),
                StatusCode::OK,
                Some(&s),
            )
        }
        Err(e) => page(
            app,
            c,
            crate::pages::Note::Error(e.error.clone()),
            StatusCode::BAD_REQUEST,
            Some(&s),
        ),
    }
}

/// `/admin/update`, the System page: the running version, the last update's state and
/// the upload form; the time zone and NTP servers. The script (static/app.js) sends the
/// chosen bundle to the API and follows the progress; without a script the page says
/// how to do it with pbxctl.
pub(crate) fn page(
    app: &Arc<App>,
    c: &Caller,
    note: crate::pages::Note,
    status: StatusCode,
    typed: Option<&system::time::TimeSettings>,
) -> Response {
    use maud::html;
    let time = typed.cloned().unwrap_or_else(|| {
        system::time::TimeFile::in_data_dir(&app.settings.data_dir)
            .load()
            .ok()
            .flatten()
            .unwrap_or_default()
    });
    let st = app.updater.state();
    let write = c.can_write_admin();
    crate::pages::page_response(
        status,
        crate::pages::layout(
            "System",
            Some(c),
            true,
            &note,
            html! {
                h2 { "Firmware" }
                p { "Running firmware: " strong id="fw-version" { (app.settings.version) } }
                p id="update-state" data-state=(st.name()) { (st) }
                @if write {
                    p { "Upload a firmware bundle (" code { ".raucb" } ") signed for this box. It is installed into the other firmware slot and the box restarts into it; if the new firmware does not come up healthy, the box goes back to this one." }
                    form id="update-form" data-csrf=(c.session.csrf) {
                        label for="bundle" { "Bundle" }
                        input type="file" id="bundle" name="bundle" accept=".raucb" required;
                        button type="submit" { "Install and restart" }
                    }
                    noscript { p { "Uploading needs JavaScript. Without it: copy the bundle to the box and run " code { "pbxctl --data-dir /data update install FILE" } "." } }
                }
                h2 { "Date and time" }
                form id="time-form" method="post" action="/admin/update/time" {
                    (crate::pages::csrf_field(c))
                    label for="timezone" { "Time zone (as Europe/Prague)" }
                    input id="timezone" name="timezone" value=(time.timezone) required disabled[!write];
                    label for="ntp" { "NTP servers (empty: off)" }
                    input id="ntp" name="ntp" value=(time.ntp.join(" ")) disabled[!write];
                    @if write { button type="submit" { "Save" } }
                }
            },
        ),
    )
}
