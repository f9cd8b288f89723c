//! Music on hold (Kerio 24): uploaded music files (WAV or MP3 of any rate, stored as
//! 8 kHz WAV in `<data>/music`), collections of them in the configuration (or a live
//! line-in), one the default that held callers hear. `/api/v1/music[/{name}]` for the
//! files, `/api/v1/routing/music_collections` for the collections, and the page
//! `/admin/routing/music`.

use crate::api::{no_content, ok};
use crate::attendant_pages::{table, typed_rows};
use crate::pages::{csrf_field, field, fields, layout, outcome, page_response, Note};
use crate::voicemail::Upload;
use crate::{ApiError, App, Caller, Req};
use config::{valid_upload_name, MusicCollection, SYSTEM_MUSIC};
use maud::html;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use warp::http::{Method, StatusCode};
use warp::reply::{Reply, Response};

/// The longest music file (10 minutes; a collection plays at most that much too).
pub(crate) const MAX_MUSIC_SECONDS: usize = 600;

/// The largest music upload (an MP3 of 10 minutes at 320 kbit/s fits; so does a WAV
/// of 4 minutes at 48 kHz 16-bit stereo).
pub(crate) const MAX_MUSIC_BODY: usize = 48 << 20;

/// Whether a request may carry a music file.
pub(crate) fn big_body(m: &Method, path: &str) -> bool {
    m == Method::PUT && path.starts_with("/api/v1/music/")
}

/// An uploaded music file.
#[derive(Debug, Serialize)]
pub(crate) struct MusicFile {
    pub name: String,
    pub seconds: u64,
    /// The collections that play it.
    pub collections: Vec<String>,
}

/// The uploaded music files, by name.
pub(crate) fn files(data_dir: &Path, music: &[MusicCollection]) -> Vec<MusicFile> {
    crate::voicemail::wav_folder(&data_dir.join("music"))
        .into_iter()
        .map(|(name, seconds)| MusicFile {
            collections: music
                .iter()
                .filter(|c| c.files.contains(&name))
                .map(|c| c.name.clone())
                .collect(),
            name,
            seconds,
        })
        .collect()
}

/// Music files: WAV or MP3, a second to 10 minutes.
const MUSIC: Upload = Upload {
    what: "music file",
    mp3: true,
    max_seconds: MAX_MUSIC_SECONDS,
    max_text: "10 minutes",
    min_samples: 8000,
    min_text: "a second",
};

/// Removes an uploaded file no collection plays.
fn remove(app: &App, name: &str) -> Result<(), ApiError> {
    let snap = app.cfg.snapshot();
    if let Some(c) = snap
        .config
        .music
        .iter()
        .find(|c| c.files.iter().any(|f| f == name))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "collection {} plays {name}: take it out of the collection first",
                c.name
            ),
        ));
    }
    let path = app
        .settings
        .data_dir
        .join("music")
        .join(format!("{name}.wav"));
    std::fs::remove_file(path).map_err(|_| ApiError::not_found(format!("no music file {name}")))
}

/// `/api/v1/music[/{name}]`: list, listen, upload (decoded on a blocking thread), remove.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    let dir = app.settings.data_dir.join("music");
    match (&req.method, rest) {
        (&Method::GET, []) => {
            let snap = app.cfg.snapshot();
            let v = files(&app.settings.data_dir, &snap.config.music);
            ok(serde_json::to_value(v).unwrap_or(Value::Null))
        }
        (_, [name]) if !valid_upload_name(name) => Err(ApiError::bad(
            "name",
            "a music file's name is 1 to 64 letters, digits, - and _",
        )),
        (&Method::GET, [name]) => {
            let bytes = std::fs::read(dir.join(format!("{name}.wav")))
                .map_err(|_| ApiError::not_found(format!("no music file {name}")))?;
            Ok(warp::reply::with_header(bytes, "content-type", "audio/wav").into_response())
        }
        (&Method::PUT, [name]) => {
            crate::api::need_admin_write(c)?;
            let (body, path) = (req.body.clone(), dir.join(format!("{name}.wav")));
            tokio::task::spawn_blocking(move || MUSIC.store(&path, &body))
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
            app.tell(crate::CoreRequest::MusicChanged);
            no_content()
        }
        (&Method::DELETE, [name]) => {
            crate::api::need_admin_write(c)?;
            remove(app, name)?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such music resource")),
    }
}

type Form = [(String, String)];

const COLS: [&str; 4] = ["mc_name", "mc_description", "mc_files", "mc_line_in"];

/// Routes `/admin/routing/music[/...]`.
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
        (false, ["collections"]) => {
            let r = save(app, &who, form).await;
            let (note, st) = outcome(r, |()| "Music on hold saved.".into());
            let typed = (st != StatusCode::OK).then_some(form);
            page(app, c, note, st, typed)
        }
        (false, ["delete"]) => {
            let name = field(form, "name").unwrap_or("").to_string();
            let r = crate::api::need_admin_write(c).and_then(|()| {
                if !valid_upload_name(&name) {
                    return Err(ApiError::not_found(format!("no music file {name}")));
                }
                remove(app, &name)
            });
            let (note, st) = outcome(r, |()| format!("Music file {name} removed."));
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

fn list(s: &str) -> Vec<String> {
    s.split([',', ';', ' '])
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

async fn save(app: &Arc<App>, who: &str, form: &Form) -> Result<(), ApiError> {
    let default = field(form, "default").unwrap_or(SYSTEM_MUSIC).to_string();
    let mut v = Vec::new();
    for (i, name) in fields(form, COLS[0]).iter().enumerate() {
        let col = |n: &str| fields(form, n).get(i).map_or("", |s| s.trim()).to_string();
        let (files, line_in) = (col(COLS[2]), col(COLS[3]));
        if name.trim().is_empty() && files.is_empty() && line_in.is_empty() {
            continue;
        }
        v.push(MusicCollection {
            name: name.trim().to_string(),
            description: col(COLS[1]),
            files: list(&files),
            line_in,
            default: default == name.trim(),
        });
    }
    if default != SYSTEM_MUSIC && !v.iter().any(|m| m.default) {
        return Err(ApiError::bad(
            "default",
            format!("no collection {default} to make the default"),
        ));
    }
    crate::ops::change(app, who, "changed music on hold".into(), move |c| {
        c.music = v;
        Ok(())
    })
    .await
}

fn page(
    app: &Arc<App>,
    c: &Caller,
    note: Note,
    status: StatusCode,
    typed: Option<&Form>,
) -> Response {
    let snap = app.cfg.snapshot();
    let music = &snap.config.music;
    let write = c.can_write_admin();
    let rows: Vec<Vec<String>> = match typed {
        Some(f) => typed_rows(f, &COLS),
        None => music
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.description.clone(),
                    m.files.join(", "),
                    m.line_in.clone(),
                ]
            })
            .collect(),
    };
    let default = match typed {
        Some(f) => field(f, "default").unwrap_or(SYSTEM_MUSIC).to_string(),
        None => music
            .iter()
            .find(|m| m.default)
            .map_or(SYSTEM_MUSIC.to_string(), |m| m.name.clone()),
    };
    let uploaded = files(&app.settings.data_dir, music);
    page_response(
        status,
        layout(
            "Music on hold",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "A held caller hears the default collection; without one, the music the box ships (system). A collection plays its files one after the other in a loop (10 minutes at most), or a live line-in: an ALSA capture device such as plughw:1,0." }
                h2 { "Music files" }
                p.hint { "WAV or MP3 of any rate, a second to 10 minutes; stored at 8 kHz, the telephone's rate." }
                @if !uploaded.is_empty() {
                    table #music-files {
                        thead { tr { th { "Name" } th { "Length" } th { "Collections" } th { "Listen" } th {} } }
                        tbody {
                            @for f in &uploaded {
                                tr {
                                    td { (f.name) }
                                    td { (f.seconds) " s" }
                                    td { (f.collections.join(", ")) }
                                    td { audio controls preload="none" src={ "/api/v1/music/" (f.name) } {} }
                                    td {
                                        @if write && f.collections.is_empty() {
                                            form.inline method="post" action="/admin/routing/music/delete" {
                                                (csrf_field(c))
                                                input type="hidden" name="name" value=(f.name);
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
                    form.card.sounds data-csrf=(c.session.csrf) data-api="/api/v1/music/" {
                        label { "Name" input name="name" pattern="[A-Za-z0-9_-]{1,64}" required; }
                        label { "WAV or MP3 file" input type="file" name="file" accept="audio/wav,audio/mpeg,.wav,.mp3"; }
                        button type="submit" { "Upload music" }
                        output.sound-state {}
                    }
                }
                h2 { "Collections" }
                p.hint { "Files by name, separated by commas, in the order they play. A line-in collection names its device and no files." }
                form method="post" action="/admin/routing/music/collections" id="collections" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        (table("music-collections", &COLS, &["Name", "Description", "Files", "Line-in device"], &[10, 20, 30, 10], &rows, if write { 2 } else { 0 }, ""))
                        label {
                            "Default collection (what held callers hear) "
                            select name="default" {
                                option value=(SYSTEM_MUSIC) selected[default == SYSTEM_MUSIC] { "system (shipped)" }
                                @for r in &rows {
                                    @if let Some(n) = r.first().filter(|n| !n.is_empty()) {
                                        option value=(n) selected[default == *n] { (n) }
                                    }
                                }
                                // A default typed before a refused save stays chosen.
                                @if default != SYSTEM_MUSIC && !rows.iter().any(|r| r.first() == Some(&default)) {
                                    option value=(default) selected { (default) }
                                }
                            }
                        }
                        @if write { button type="submit" { "Save music on hold" } }
                    }
                }
            },
        ),
    )
}
