//! A user's voicemail in the portal and the API (Kerio MyPhone, Kalliope's voicemail
//! box): the messages left in the boxes of the user's own extensions, listened to in
//! the browser and deleted. Messages are the WAV files pbxd writes under
//! `<data>/voicemail/<extension>/`, named `<unix seconds>-<call>-<caller>.wav` (with
//! `-1`, `-2`... when a name was taken).

use crate::api::{no_content, ok};
use crate::pages::{csrf_field, when};
use crate::{ApiError, App, Caller, Req};
use maud::html;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::{Reply, Response};

/// One message in a box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Message {
    pub extension: String,
    /// The file name without `.wav`: what the API and the portal call it by.
    pub id: String,
    /// When it was left, seconds since the Unix epoch.
    pub unix: u64,
    /// Who left it (digits, letters and `+`; `unknown` when the caller had no number).
    pub caller: String,
    /// Its length.
    pub seconds: u64,
}

/// Whether `id` can name a message: letters, digits, `+` and `-`, never a path.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 80
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
}

fn box_dir(data_dir: &Path, ext: &str) -> PathBuf {
    data_dir.join("voicemail").join(ext)
}

/// The messages of `ext`'s box, newest first. Files that are not messages (a `.part`
/// being written, anything else) are left out.
pub(crate) fn list(data_dir: &Path, ext: &str) -> Vec<Message> {
    let Ok(dir) = std::fs::read_dir(box_dir(data_dir, ext)) else {
        return Vec::new();
    };
    let mut v: Vec<Message> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".wav")?;
            if !valid_id(id) {
                return None;
            }
            let mut parts = id.splitn(3, '-');
            let unix = parts.next()?.parse().ok()?;
            let _call: u64 = parts.next()?.parse().ok()?;
            let rest = parts.next()?;
            // A suffix added for a name that was taken is not part of the caller.
            let caller = match rest.rsplit_once('-') {
                Some((c, n)) if n.bytes().all(|b| b.is_ascii_digit()) => c,
                _ => rest,
            };
            let len = e.metadata().ok()?.len();
            Some(Message {
                extension: ext.to_string(),
                id: id.to_string(),
                unix,
                caller: caller.to_string(),
                seconds: len.saturating_sub(44) / 16_000,
            })
        })
        .collect();
    v.sort_by(|a, b| b.unix.cmp(&a.unix).then(b.id.cmp(&a.id)));
    v
}

/// The messages of every box of `c`'s extensions, newest first.
pub(crate) fn own(app: &App, c: &Caller) -> Vec<Message> {
    let mut v: Vec<Message> = c
        .user
        .extensions
        .iter()
        .flat_map(|e| list(&app.settings.data_dir, e))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.unix));
    v
}

/// The file of message `id` in `ext`'s box, when it is one of `c`'s.
fn own_file(app: &App, c: &Caller, ext: &str, id: &str) -> Result<PathBuf, ApiError> {
    if !c.user.extensions.iter().any(|e| e == ext) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not your extension"));
    }
    if !valid_id(id) {
        return Err(ApiError::bad("id", "not a message"));
    }
    let path = box_dir(&app.settings.data_dir, ext).join(format!("{id}.wav"));
    if !path.is_file() {
        return Err(ApiError::not_found(format!("message {id}")));
    }
    Ok(path)
}

/// Deletes message `id` of `ext`'s box.
pub(crate) fn delete(app: &App, c: &Caller, ext: &str, id: &str) -> Result<(), ApiError> {
    let path = own_file(app, c, ext, id)?;
    std::fs::remove_file(path)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("deleting: {e}")))
}

/// `/api/v1/me/voicemail[/{extension}/{id}]`: the list, one message as WAV, or its
/// deletion.
pub(crate) fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    match (&req.method, rest) {
        (&Method::GET, []) => ok(serde_json::to_value(own(app, c)).unwrap_or(Value::Null)),
        (&Method::GET, [ext, id]) => {
            let path = own_file(app, c, ext, id)?;
            let bytes = std::fs::read(&path).map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("reading: {e}"))
            })?;
            let mut r =
                warp::reply::with_header(bytes, "content-type", "audio/wav").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{id}.wav\"")) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(r)
        }
        (&Method::DELETE, [ext, id]) => {
            delete(app, c, ext, id)?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such voicemail resource")),
    }
}

/// The portal's list of the user's messages, to listen to and delete.
pub(crate) fn portal_section(app: &App, c: &Caller) -> maud::Markup {
    let messages = own(app, c);
    html! {
        h2 { "My voicemail" }
        @if messages.is_empty() { p { "No messages." } } @else {
            table #voicemail {
                thead { tr { th { "Left" } th { "Extension" } th { "From" } th { "Length" } th { "Listen" } th {} } }
                tbody {
                    @for m in &messages {
                        tr {
                            td { (when(m.unix)) }
                            td { (m.extension) }
                            td { (m.caller) }
                            td { (m.seconds) " s" }
                            td { audio controls preload="none" src={ "/api/v1/me/voicemail/" (m.extension) "/" (m.id) } {} }
                            td {
                                form.inline method="post" action="/voicemail/delete" {
                                    (csrf_field(c))
                                    input type="hidden" name="extension" value=(m.extension);
                                    input type="hidden" name="id" value=(m.id);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_lists_its_messages_newest_first_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let b = box_dir(dir.path(), "102");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("1700000000-3-101.wav"), vec![0u8; 44 + 32_000]).unwrap();
        std::fs::write(
            b.join("1700000500-9-+420601002.wav"),
            vec![0u8; 44 + 16_000],
        )
        .unwrap();
        std::fs::write(b.join("1700000500-9-+420601002-1.wav"), vec![0u8; 44]).unwrap();
        for junk in [
            "1700000600-1-101.part",
            "notes.txt",
            "x.wav",
            "1-2.wav",
            "a-b-c.wav",
        ] {
            std::fs::write(b.join(junk), b"x").unwrap();
        }
        let got = list(dir.path(), "102");
        let ids: Vec<&str> = got.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "1700000500-9-+420601002-1",
                "1700000500-9-+420601002",
                "1700000000-3-101"
            ]
        );
        assert_eq!(
            got[0].caller, "+420601002",
            "the suffix is not the caller's"
        );
        assert_eq!((got[1].seconds, got[2].seconds), (1, 2));
        assert_eq!(got[2].caller, "101");
        assert!(list(dir.path(), "103").is_empty(), "no box yet");
    }

    #[test]
    fn ids_never_name_a_path() {
        for good in ["1700000000-3-101", "1-2-+420-1"] {
            assert!(valid_id(good), "{good}");
        }
        for bad in [
            "",
            "../102/1-2-3",
            "1-2-3.wav",
            "1/2",
            "a b",
            &"1".repeat(81),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
