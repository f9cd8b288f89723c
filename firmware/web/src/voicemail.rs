//! A user's voicemail in the portal and the API (Kerio MyPhone, Kalliope's voicemail
//! box): the messages left in the boxes of the user's own extensions, listened to in
//! the browser and deleted; the box's greetings for busy and unavailable, uploaded as
//! a WAV file (any rate, PCM or G.711; stored at 8 kHz, 16-bit). Messages are the WAV files pbxd writes under
//! `<data>/voicemail/<extension>/`, named `<unix seconds>-<call>-<caller>.wav` (with
//! `-1`, `-2`... when a name was taken).

use crate::api::{no_content, ok};
use crate::pages::{csrf_field, when};
use crate::{ApiError, App, Caller, Req};
use config::valid_upload_name;
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
    /// Not heard yet on the phone.
    pub new: bool,
}

/// The longest greeting.
pub(crate) const MAX_GREETING_SECONDS: usize = 120;

/// The largest greeting upload (two minutes of 48 kHz 16-bit stereo fit).
pub(crate) const MAX_GREETING_BODY: usize = 32 << 20;

/// Whether a request may carry a greeting's body.
pub(crate) fn big_body(m: &Method, path: &str) -> bool {
    m == Method::PUT
        && ((path.starts_with("/api/v1/me/voicemail/") && path.contains("/greetings/"))
            || path.starts_with("/api/v1/sounds/"))
}

/// The greetings a box has, by cause, and their files.
const GREETINGS: [(&str, &str); 2] = [
    ("busy", "greeting-busy.wav"),
    ("unavailable", "greeting-unavailable.wav"),
];

fn greeting_file(app: &App, c: &Caller, ext: &str, cause: &str) -> Result<PathBuf, ApiError> {
    if !c.user.extensions.iter().any(|e| e == ext) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not your extension"));
    }
    let (_, file) = GREETINGS
        .iter()
        .find(|(k, _)| *k == cause)
        .ok_or_else(|| ApiError::not_found("greetings are busy and unavailable"))?;
    Ok(box_dir(&app.settings.data_dir, ext).join(file))
}

/// A kind of uploaded audio (greetings and announcements, music) and its limits.
pub(crate) struct Upload {
    /// What it is called in messages: "greeting", "music file".
    pub what: &'static str,
    /// MP3 is taken besides WAV.
    pub mp3: bool,
    pub max_seconds: usize,
    pub max_text: &'static str,
    pub min_samples: usize,
    pub min_text: &'static str,
}

/// Greetings and auto attendant announcements: WAV, half a second to two minutes.
pub(crate) const GREETING: Upload = Upload {
    what: "greeting",
    mp3: false,
    max_seconds: MAX_GREETING_SECONDS,
    max_text: "two minutes",
    min_samples: 8000 / 2,
    min_text: "half a second",
};

impl Upload {
    /// The upload as stored: decoded (WAV of any rate, PCM 8/16-bit, A-law or µ-law;
    /// MP3 where taken), its length checked before it is all decoded, and written at
    /// 8 kHz, 16-bit.
    pub(crate) fn wav(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let cap = self.max_seconds * 8000;
        let clip = if self.mp3 {
            media::Clip::audio_within(body, cap)
        } else {
            media::Clip::wav_within(body, cap)
        };
        let clip = clip.map_err(|e| match e {
            media::player::ClipError::TooLong(_) => ApiError::bad(
                "body",
                format!("a {} is at most {} long", self.what, self.max_text),
            ),
            e => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the {}: {e}", self.what),
            ),
        })?;
        if clip.len() < self.min_samples {
            return Err(ApiError::bad(
                "body",
                format!("the {} is shorter than {}", self.what, self.min_text),
            ));
        }
        let pcm: Vec<i16> = clip
            .samples()
            .iter()
            .map(|b| media::g711::ulaw_to_linear(*b))
            .collect();
        Ok(media::player::wav_bytes(&pcm))
    }

    /// Decodes the upload and stores it at `path` (written aside, then renamed into
    /// place, so a failure leaves the file before it).
    pub(crate) fn store(&self, path: &Path, body: &[u8]) -> Result<(), ApiError> {
        let wav = self.wav(body)?;
        let io = |e: std::io::Error| {
            ApiError::new(StatusCode::INSUFFICIENT_STORAGE, format!("storing: {e}"))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, wav).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// The `<name>.wav` files of `dir` whose names are upload names, with their lengths in
/// seconds (8 kHz 16-bit), by name.
pub(crate) fn wav_folder(dir: &Path) -> Vec<(String, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, u64)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let name = name.strip_suffix(".wav")?;
            let seconds = e
                .metadata()
                .map_or(0, |m| m.len().saturating_sub(44) / 16_000);
            valid_upload_name(name).then(|| (name.to_string(), seconds))
        })
        .collect();
    v.sort();
    v
}

/// An uploaded sound.
#[derive(Debug, Serialize)]
pub(crate) struct Sound {
    pub name: String,
    pub seconds: u64,
}

/// The uploaded sounds, by name.
pub(crate) fn sounds(data_dir: &Path) -> Vec<Sound> {
    wav_folder(&data_dir.join("sounds"))
        .into_iter()
        .map(|(name, seconds)| Sound { name, seconds })
        .collect()
}

/// `/api/v1/sounds[/{name}]`: the announcements auto attendants play (Kerio 16's
/// recordings): list, listen, upload (a WAV like a greeting, stored at 8 kHz), remove.
pub(crate) fn sounds_api(
    app: &App,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    let dir = app.settings.data_dir.join("sounds");
    match (&req.method, rest) {
        (&Method::GET, []) => {
            ok(serde_json::to_value(sounds(&app.settings.data_dir)).unwrap_or(Value::Null))
        }
        (_, [name]) if !valid_upload_name(name) => Err(ApiError::bad(
            "name",
            "a sound's name is 1 to 64 letters, digits, - and _",
        )),
        (&Method::GET, [name]) => {
            let bytes = std::fs::read(dir.join(format!("{name}.wav")))
                .map_err(|_| ApiError::not_found(format!("no sound {name}")))?;
            Ok(warp::reply::with_header(bytes, "content-type", "audio/wav").into_response())
        }
        (&Method::PUT, [name]) => {
            crate::api::need_admin_write(c)?;
            GREETING.store(&dir.join(format!("{name}.wav")), &req.body)?;
            no_content()
        }
        (&Method::DELETE, [name]) => {
            crate::api::need_admin_write(c)?;
            std::fs::remove_file(dir.join(format!("{name}.wav")))
                .map_err(|_| ApiError::not_found(format!("no sound {name}")))?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such sound resource")),
    }
}

/// `/api/v1/me/voicemail/{n}/greetings/{busy|unavailable}`: listen, upload, remove.
fn greeting_api(
    app: &App,
    req: &Req,
    c: &Caller,
    ext: &str,
    cause: &str,
) -> Result<Response, ApiError> {
    let path = greeting_file(app, c, ext, cause)?;
    match req.method {
        Method::GET => {
            let bytes = std::fs::read(&path)
                .map_err(|_| ApiError::not_found(format!("no {cause} greeting")))?;
            Ok(warp::reply::with_header(bytes, "content-type", "audio/wav").into_response())
        }
        Method::PUT => {
            GREETING.store(&path, &req.body)?;
            no_content()
        }
        Method::DELETE => {
            std::fs::remove_file(&path)
                .map_err(|_| ApiError::not_found(format!("no {cause} greeting")))?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such voicemail resource")),
    }
}

fn box_dir(data_dir: &Path, ext: &str) -> PathBuf {
    store::voicemail::box_dir(&data_dir.join("voicemail"), ext)
}

/// The messages of `ext`'s box, newest first.
pub(crate) fn list(data_dir: &Path, ext: &str) -> Vec<Message> {
    store::voicemail::list(&box_dir(data_dir, ext))
        .into_iter()
        .map(|m| Message {
            extension: ext.to_string(),
            id: m.id,
            unix: m.unix,
            caller: m.caller,
            seconds: m.seconds,
            new: m.new,
        })
        .collect()
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
    // A message's name starts with when it was left (a greeting's does not).
    if !store::voicemail::valid_id(id) {
        return Err(ApiError::bad("id", "not a message"));
    }
    let path = store::voicemail::file(&box_dir(&app.settings.data_dir, ext), id)
        .ok_or_else(|| ApiError::not_found(format!("message {id}")))?;
    Ok(path)
}

/// Deletes message `id` of `ext`'s box.
pub(crate) fn delete(app: &App, c: &Caller, ext: &str, id: &str) -> Result<(), ApiError> {
    let path = own_file(app, c, ext, id)?;
    std::fs::remove_file(path)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("deleting: {e}")))?;
    // The phones' message lamps follow.
    app.tell(crate::CoreRequest::MailboxChanged(ext.to_string()));
    Ok(())
}

/// `/api/v1/me/voicemail[/{extension}/{id}]`: the list, one message as WAV, or its
/// deletion.
pub(crate) fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    if let [ext, "greetings", cause] = rest {
        return greeting_api(app, req, c, ext, cause);
    }
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

/// The portal's list of the user's messages, to listen to and delete, and each box's
/// greetings (uploaded by the script in static/app.js).
pub(crate) fn portal_section(app: &App, c: &Caller) -> maud::Markup {
    let messages = own(app, c);
    html! {
        h2 { "My voicemail" }
        @for ext in &c.user.extensions {
            form.card.greetings data-extension=(ext) data-csrf=(c.session.csrf) {
                p { "Greetings of extension " (ext) " (WAV; without one, callers hear the box's invitation)" }
                @for (cause, file) in GREETINGS {
                    @let has = box_dir(&app.settings.data_dir, ext).join(file).is_file();
                    label {
                        (if cause == "busy" { "When busy" } else { "When unavailable" })
                        input type="file" accept="audio/wav,.wav" name=(cause);
                    }
                    @if has {
                        audio controls preload="none" src={ "/api/v1/me/voicemail/" (ext) "/greetings/" (cause) } {}
                    }
                }
                button type="submit" { "Upload greetings" }
                output.greeting-state {}
            }
        }
        @if messages.is_empty() { p { "No messages." } } @else {
            table #voicemail {
                thead { tr { th { "Left" } th { "Extension" } th { "From" } th { "Length" } th { "Listen" } th {} } }
                tbody {
                    @for m in &messages {
                        tr.new[m.new] title=(if m.new { "not heard on the phone yet" } else { "heard" }) {
                            td { (when(m.unix)) @if m.new { " " strong { "new" } } }
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
    fn greetings_are_stored_at_8_khz_and_bad_ones_refused() {
        // One second at 16 kHz, 16-bit mono.
        let mut wav = Vec::new();
        let n: u32 = 16_000;
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + n * 2).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes());
        wav.extend_from_slice(&16_000u32.to_le_bytes());
        wav.extend_from_slice(&32_000u32.to_le_bytes());
        wav.extend_from_slice(&2u16.to_le_bytes());
        wav.extend_from_slice(&16u16.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(n * 2).to_le_bytes());
        for i in 0..n {
            let s = (8000.0 * (i as f64 * 700.0 * std::f64::consts::TAU / 16_000.0).sin()) as i16;
            wav.extend_from_slice(&s.to_le_bytes());
        }
        let stored = GREETING.wav(&wav).unwrap();
        assert_eq!(stored.len(), 44 + 8000 * 2, "one second at 8 kHz, 16-bit");
        assert_eq!(&stored[24..28], &8000u32.to_le_bytes());
        // The length is checked before decoding: 20 minutes of 4 kHz µ-law in 4.8 MB.
        let mut long = media::player::wav_bytes(&[0; 2]);
        long[20..22].copy_from_slice(&7u16.to_le_bytes());
        long[24..28].copy_from_slice(&4000u32.to_le_bytes());
        long[34..36].copy_from_slice(&8u16.to_le_bytes());
        long.truncate(40);
        long.extend_from_slice(&(4000u32 * 1200).to_le_bytes());
        long.resize(44 + 4000 * 1200, 0xff);
        assert_eq!(
            GREETING.wav(&long).unwrap_err().error,
            "a greeting is at most two minutes long"
        );
        for (bad, status) in [
            (b"not a wav".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (media::player::wav_bytes(&[0; 100]), StatusCode::BAD_REQUEST),
            (
                media::player::wav_bytes(&vec![0; 8000 * 121]),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            assert_eq!(GREETING.wav(&bad).unwrap_err().status, status);
        }
    }
}
