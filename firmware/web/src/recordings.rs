//! Recorded queue calls (Kerio 14.4): `<data>/recordings/<name>.wav`, stereo (the
//! caller left, the agent right), named `<unix>-<queue>-<caller>-<agent>-<call>`.
//! `/api/v1/recordings[/{name}]` lists, plays and removes them; the call queues page
//! shows them with the size limit.

use crate::api::{no_content, ok};
use crate::{ApiError, App, Caller, Req};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use warp::http::Method;
use warp::reply::{Reply, Response};

/// A recorded call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Recording {
    pub name: String,
    /// When it began (Unix seconds).
    pub time: u64,
    pub queue: String,
    pub caller: String,
    pub agent: String,
    pub seconds: u64,
    pub bytes: u64,
}

pub(crate) fn dir(app: &App) -> PathBuf {
    app.settings.data_dir.join("recordings")
}

/// Whether `name` can name a recording (what the exchange writes: letters, digits,
/// `+`, `-`).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 160
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
}

/// The recordings, newest first.
pub(crate) fn list(app: &App) -> Vec<Recording> {
    let mut v: Vec<Recording> = std::fs::read_dir(dir(app))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let p = e.path();
            let name = p.file_name()?.to_str()?.strip_suffix(".wav")?.to_string();
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            let f: Vec<&str> = name.split('-').collect();
            Some(Recording {
                time: f.first().and_then(|t| t.parse().ok()).unwrap_or(0),
                queue: f.get(1).unwrap_or(&"").to_string(),
                caller: f.get(2).unwrap_or(&"").to_string(),
                agent: f.get(3).unwrap_or(&"").to_string(),
                // Stereo 16-bit at 8 kHz: 32,000 bytes a second.
                seconds: m.len().saturating_sub(44) / 32_000,
                bytes: m.len(),
                name,
            })
            .filter(|r| valid_name(&r.name))
        })
        .collect();
    v.sort_by(|a, b| b.time.cmp(&a.time).then(b.name.cmp(&a.name)));
    v
}

/// Removes recording `name`.
pub(crate) fn remove(app: &App, name: &str) -> Result<(), ApiError> {
    if !valid_name(name) {
        return Err(ApiError::not_found(format!("no recorded call {name}")));
    }
    std::fs::remove_file(dir(app).join(format!("{name}.wav")))
        .map_err(|_| ApiError::not_found(format!("no recorded call {name}")))
}

/// `/api/v1/recordings[/{name}]`: list, listen (WAV), remove.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    match (&req.method, rest) {
        (&Method::GET, []) => ok(serde_json::to_value(list(app)).unwrap_or_default()),
        (&Method::GET, [name]) => {
            // What callers said is for administrators, not auditors.
            crate::api::need_admin_write(c)?;
            if !valid_name(name) {
                return Err(ApiError::not_found(format!("no recorded call {name}")));
            }
            let bytes = tokio::fs::read(dir(app).join(format!("{name}.wav")))
                .await
                .map_err(|_| ApiError::not_found(format!("no recorded call {name}")))?;
            Ok(warp::reply::with_header(bytes, "content-type", "audio/wav").into_response())
        }
        (&Method::DELETE, [name]) => {
            crate::api::need_admin_write(c)?;
            remove(app, name)?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such recording resource")),
    }
}
