//! Voicemail by e-mail (Kerio 17.3, Kalliope's notifications): each new message of an
//! extension whose `voicemail_email` is on goes to its e-mail address through the mail
//! server of the configuration, with the recording attached as WAV unless the
//! extension asks for a notice only; with `voicemail_delete_sent` the message then
//! leaves the box (Kalliope's "delete forwarded messages").
//!
//! Sending runs beside the exchange's loop and never holds it up. A server that cannot
//! be reached or refuses is tried again twice (after 30 s and 2 min), then the failure
//! is logged; the message stays in the box either way until it is sent.

use config::{Smtp, SmtpSecurity};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Waits before the second and third tries.
const RETRIES: [Duration; 2] = [Duration::from_secs(30), Duration::from_secs(120)];

/// How long one exchange with the server may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest recording attached (three minutes at 8 kHz 16-bit is 2.9 MB).
const MAX_ATTACHMENT: u64 = 8 << 20;

/// A message to send: what the mail says, and where the recording is.
#[derive(Debug, Clone)]
pub struct Notice {
    pub ext: String,
    pub to: String,
    pub file: PathBuf,
    pub caller: String,
    pub unix: u64,
    pub seconds: u64,
    pub attach: bool,
    pub delete_after: bool,
}

/// The notice for a recording just written at `path`, if its box's extension wants
/// its messages by e-mail and a mail server is set.
pub fn notice_for(
    cfg: &config::Config,
    root: &Path,
    path: &Path,
    samples: usize,
) -> Option<Notice> {
    let ext = crate::mailboxes::box_of(root, path)?;
    let id = path.file_name()?.to_str()?.strip_suffix(".wav")?;
    if !store::voicemail::valid_id(id) || !cfg.smtp.enabled() {
        return None;
    }
    let e = cfg.extensions.iter().find(|e| e.number == ext)?;
    if !e.voicemail_email || e.email.is_empty() {
        return None;
    }
    let m = store::voicemail::list(path.parent()?)
        .into_iter()
        .find(|m| m.id == id)?;
    Some(Notice {
        ext,
        to: e.email.clone(),
        file: path.to_path_buf(),
        caller: m.caller,
        unix: m.unix,
        seconds: (samples / 8000) as u64,
        attach: e.voicemail_attach,
        delete_after: e.voicemail_delete_sent && e.voicemail_attach,
    })
}

/// The mail for `n`, with the recording's bytes when attached.
pub fn compose(smtp: &Smtp, n: &Notice, wav: Option<Vec<u8>>) -> Result<Message, String> {
    let from: Mailbox = format!("PBX voicemail <{}>", smtp.from)
        .parse()
        .map_err(|e| format!("sender {}: {e}", smtp.from))?;
    let to: Mailbox =
        n.to.parse()
            .map_err(|e| format!("recipient {}: {e}", n.to))?;
    let when = utc(n.unix);
    let text = format!(
        "A new voicemail message is in box {ext}.\n\nFrom: {caller}\nLeft: {when}\nLength: {secs} seconds\n\n{what}\n",
        ext = n.ext,
        caller = n.caller,
        secs = n.seconds,
        what = match (&wav, n.delete_after) {
            (Some(_), true) => "The recording is attached; it is no longer kept in the box.",
            (Some(_), false) => "The recording is attached. It stays in the box: hear it on the phone or in the user portal.",
            (None, _) => "Hear it on the phone or in the user portal.",
        }
    );
    let builder = Message::builder().from(from).to(to).subject(format!(
        "Voicemail from {} ({} s) for {}",
        n.caller, n.seconds, n.ext
    ));
    let body = SinglePart::plain(text);
    let m = match wav {
        Some(bytes) => {
            let name = n
                .file
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("message.wav")
                .replace(".old.wav", ".wav");
            let wav_type = ContentType::parse("audio/wav").map_err(|e| e.to_string())?;
            builder.multipart(
                MultiPart::mixed()
                    .singlepart(body)
                    .singlepart(Attachment::new(name).body(bytes, wav_type)),
            )
        }
        None => builder.singlepart(body),
    };
    m.map_err(|e| e.to_string())
}

/// `unix` as `2023-11-14 22:13 UTC`.
fn utc(unix: u64) -> String {
    format!("{} UTC", logs::stamp::minutes_utc(unix as i64))
}

/// The transport to the configured server.
pub fn transport(smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = smtp.server.trim_start_matches('[').trim_end_matches(']');
    let mut params = TlsParameters::builder(host.to_string());
    if !smtp.ca.trim().is_empty() {
        let ca = Certificate::from_pem(smtp.ca.as_bytes()).map_err(|e| format!("ca: {e}"))?;
        params = params.add_root_certificate(ca);
    }
    let params = || {
        params
            .clone()
            .build_rustls()
            .map_err(|e| format!("TLS: {e}"))
    };
    let tls = match smtp.security {
        SmtpSecurity::Starttls => Tls::Required(params()?),
        SmtpSecurity::Tls => Tls::Wrapper(params()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(smtp.port())
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if !smtp.username.is_empty() {
        b = b.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.clone(),
        ));
    }
    Ok(b.build())
}

/// Sends `n` in the background; when the message leaves the box afterwards, its box is
/// named on `changed` so the exchange counts it again.
pub fn send(smtp: Smtp, n: Notice, changed: tokio::sync::mpsc::UnboundedSender<String>) {
    tokio::spawn(async move {
        let wav = if n.attach {
            match tokio::fs::metadata(&n.file).await {
                Ok(m) if m.len() <= MAX_ATTACHMENT => tokio::fs::read(&n.file).await.ok(),
                _ => None,
            }
        } else {
            None
        };
        let attached = wav.is_some();
        let mail = match compose(&smtp, &n, wav) {
            Ok(m) => m,
            Err(e) => return tracing::warn!(extension = n.ext, "voicemail e-mail not sent: {e}"),
        };
        let mailer = match transport(&smtp) {
            Ok(t) => t,
            Err(e) => return tracing::warn!(extension = n.ext, "voicemail e-mail not sent: {e}"),
        };
        let mut tries = RETRIES.iter();
        loop {
            match mailer.send(mail.clone()).await {
                Ok(_) => break,
                Err(e) => match tries.next() {
                    Some(wait) => {
                        tracing::info!(
                            extension = n.ext,
                            to = n.to,
                            "voicemail e-mail: {e}; trying again in {} s",
                            wait.as_secs()
                        );
                        tokio::time::sleep(*wait).await;
                    }
                    None => {
                        return tracing::warn!(
                            extension = n.ext,
                            to = n.to,
                            "voicemail e-mail not sent: {e}"
                        );
                    }
                },
            }
        }
        tracing::info!(
            extension = n.ext,
            to = n.to,
            attached,
            "voicemail e-mail sent"
        );
        if n.delete_after && attached {
            // The message may have been heard meanwhile (renamed old): either name goes.
            let dir = n.file.parent().map(Path::to_path_buf).unwrap_or_default();
            let id = n
                .file
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_suffix(".wav"))
                .unwrap_or("")
                .to_string();
            let gone =
                tokio::task::spawn_blocking(move || store::voicemail::delete(&dir, &id)).await;
            if matches!(gone, Ok(Ok(()))) {
                let _ = changed.send(n.ext.clone());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp() -> Smtp {
        Smtp {
            server: "127.0.0.1".into(),
            from: "pbx@example.com".into(),
            ..Smtp::default()
        }
    }

    #[test]
    fn the_notice_follows_the_extension_and_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("voicemail");
        std::fs::create_dir_all(root.join("101")).unwrap();
        let file = root.join("101/1700000000-4-102.wav");
        std::fs::write(&file, vec![0u8; 44 + 16_000]).unwrap();
        let mut cfg = config::Config::default();
        let mut e = config::Extension::new("101");
        e.email = "anna@example.com".into();
        e.voicemail_email = true;
        cfg.extensions.push(e);
        assert!(notice_for(&cfg, &root, &file, 8000).is_none(), "no server");
        cfg.smtp = smtp();
        let n = notice_for(&cfg, &root, &file, 8000).unwrap();
        assert_eq!(
            (n.ext.as_str(), n.caller.as_str(), n.unix, n.seconds),
            ("101", "102", 1_700_000_000, 1)
        );
        assert!(n.attach && !n.delete_after);
        // Greetings and other boxes' files are not messages to send.
        assert!(notice_for(&cfg, &root, &root.join("101/greeting-new-3.wav"), 8000).is_none());
        assert!(notice_for(&cfg, &root, &root.join("102/1-2-3.wav"), 8000).is_none());
        cfg.extensions[0].voicemail_email = false;
        assert!(notice_for(&cfg, &root, &file, 8000).is_none());
    }

    #[test]
    fn the_mail_names_the_caller_and_carries_the_wav() {
        let n = Notice {
            ext: "101".into(),
            to: "anna@example.com".into(),
            file: "/v/101/1700000000-4-102.wav".into(),
            caller: "102".into(),
            unix: 1_700_000_000,
            seconds: 12,
            attach: true,
            delete_after: false,
        };
        let m = compose(&smtp(), &n, Some(b"RIFFxxxxWAVE".to_vec())).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Subject: Voicemail from 102 (12 s) for 101"),
            "{text}"
        );
        assert!(text.contains("To: anna@example.com"), "{text}");
        assert!(text.contains("Content-Type: audio/wav"), "{text}");
        assert!(text.contains("filename=\"1700000000-4-102.wav\""), "{text}");
        assert!(text.contains("Left: 2023-11-14 22:13 UTC"), "{text}");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        let m = compose(&smtp(), &n, None).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(!text.contains("audio/wav"));
        let bad = Notice {
            to: "not an address".into(),
            ..n
        };
        assert!(compose(&smtp(), &bad, None).is_err());
    }
}
