//! Backups sent off the box (Kerio 20's advice, "keep them off the box", done by the box):
//! an HTTPS `PUT` of the archive into a folder of a WebDAV server (a NAS, Nextcloud,
//! nginx or Apache with WebDAV). HTTPS only, since a backup holds password hashes and
//! private keys; the server's certificate is checked against the system's roots and
//! the administrator's CAs, with its name (SNI). The request is hyper's HTTP/1.1 client
//! over tokio-rustls (both already the web server's), the file streamed from the disk.

use config::RemoteTarget;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Where the outcome of the last send is kept, beside the backups.
const STATE: &str = "remote.json";
/// A connection that does not come up in this time fails.
const CONNECT: Duration = Duration::from_secs(15);
/// The whole upload, at most (512 MiB at 1 MiB/s takes under 9 minutes).
const UPLOAD: Duration = Duration::from_secs(30 * 60);
/// A failed automatic send is tried again after this long, this many times in all.
pub const RETRY_AFTER: u64 = 600;
pub const TRIES: u32 = 6;

/// The last send: which backup, when, how it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub file: String,
    /// Unix seconds of the last try.
    pub at: u64,
    pub ok: bool,
    /// Where it went, or why not.
    pub message: String,
    /// Tries of this file so far.
    pub tries: u32,
}

fn state_path(data: &Path) -> PathBuf {
    data.join(store::backup::DIR).join(STATE)
}

/// The outcome of the last send, if any.
pub fn last(data: &Path) -> Option<Sent> {
    serde_json::from_slice(&std::fs::read(state_path(data)).ok()?).ok()
}

fn record(data: &Path, s: &Sent) {
    let path = state_path(data);
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tmp = path.with_extension(format!(
        "{}.{}.tmp",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let r = std::fs::write(&tmp, serde_json::to_vec(s).expect("serialises"))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = r {
        tracing::warn!("{}: {e}", path.display());
    }
}

/// The backup the schedule should try to send again now: the newest, when its last
/// automatic send failed at least [`RETRY_AFTER`] seconds ago and fewer than [`TRIES`]
/// were made.
pub fn retry_due(
    data: &Path,
    target: &RemoteTarget,
    newest: Option<&Path>,
    now: u64,
) -> Option<PathBuf> {
    let newest = newest?;
    let s = last(data)?;
    let name = newest.file_name()?.to_str()?;
    (target.enabled
        && !s.ok
        && s.file == name
        && s.tries < TRIES
        && now.saturating_sub(s.at) >= RETRY_AFTER)
        .then(|| newest.to_path_buf())
}

/// Sends `file` to the target, records the outcome (for the Backup page and the
/// schedule's retries) and logs it. A failure is also an entry of the error log.
pub async fn send_recorded(
    data: &Path,
    target: &RemoteTarget,
    file: &Path,
    now: u64,
) -> Result<String, String> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let tries = match last(data) {
        Some(s) if s.file == name && !s.ok => s.tries + 1,
        _ => 1,
    };
    let r = send(data, target, file).await;
    let message = match &r {
        Ok(url) => {
            tracing::info!("backup {name} sent to {url}");
            format!("sent to {url}")
        }
        Err(e) => {
            tracing::error!("backup {name} not sent to the remote target: {e}");
            e.clone()
        }
    };
    record(
        data,
        &Sent {
            file: name,
            at: now,
            ok: r.is_ok(),
            message,
            tries,
        },
    );
    r
}

/// The target's folder split up: host, port, path ending in `/`.
fn split(url: &str) -> Result<(String, u16, String), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("the target must be an https:// URL".into());
    }
    let host = uri
        .host()
        .ok_or("the URL names no server")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut path = uri.path().to_string();
    if !path.ends_with('/') {
        path.push('/');
    }
    Ok((host, uri.port_u16().unwrap_or(443), path))
}

/// One HTTPS PUT of `file` into the target's folder: answers the file's URL.
pub async fn send(data: &Path, target: &RemoteTarget, file: &Path) -> Result<String, String> {
    use hyper::header;
    let (host, port, folder) = split(&target.url)?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("no such backup")?;
    let url = format!("https://{}:{port}{folder}{name}", bracket(&host));
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let len = f.metadata().await.map_err(|e| e.to_string())?.len();

    let (tls, _) = crate::tls::client_config(data).map_err(|e| e.to_string())?;
    let server_name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| format!("{host:?}: {e}"))?;
    let tcp = tokio::time::timeout(
        CONNECT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        format!(
            "{host}:{port} did not answer within {} s",
            CONNECT.as_secs()
        )
    })?
    .map_err(|e| format!("cannot reach {host}:{port}: {e}"))?;
    let stream = tokio::time::timeout(
        CONNECT,
        tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
    )
    .await
    .map_err(|_| {
        format!(
            "{host}:{port}: no TLS handshake within {} s",
            CONNECT.as_secs()
        )
    })?
    .map_err(|e| format!("{host}:{port}: TLS: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);

    let mut req = hyper::Request::put(format!("{folder}{name}"))
        .header(header::HOST, host_header(&host, port))
        .header(header::CONTENT_TYPE, "application/gzip")
        .header(header::CONTENT_LENGTH, len)
        .header(
            header::USER_AGENT,
            concat!("pbxd/", env!("CARGO_PKG_VERSION")),
        );
    if !target.username.is_empty() {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", target.username, target.password));
        req = req.header(header::AUTHORIZATION, format!("Basic {token}"));
    }
    let req = req
        .body(FileBody { file: f, left: len })
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(UPLOAD, sender.send_request(req)).await;
    conn.abort();
    let answer = answer
        .map_err(|_| {
            format!(
                "the upload took longer than {} minutes",
                UPLOAD.as_secs() / 60
            )
        })?
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(url);
    }
    Err(match status.as_u16() {
        401 | 403 => format!("the server refused the user name or password ({status}): {url}"),
        404 | 409 => {
            format!("the folder does not exist on the server ({status}): make it first, {url}")
        }
        405 => format!(
            "the server does not take uploads there ({status}): is it a WebDAV folder? {url}"
        ),
        413 => format!("the server refused a backup this large ({status}): {url}"),
        507 => format!("the server is full ({status}): {url}"),
        _ => format!("the server answered {status}: {url}"),
    })
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn host_header(host: &str, port: u16) -> String {
    if port == 443 {
        bracket(host)
    } else {
        format!("{}:{port}", bracket(host))
    }
}

/// A file as a request body, read 64 KiB at a time.
struct FileBody {
    file: tokio::fs::File,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>> {
        use tokio::io::AsyncRead;
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(self.left.min(64 * 1024)).unwrap_or(64 * 1024);
        let mut buf = vec![0u8; want];
        let mut rb = tokio::io::ReadBuf::new(&mut buf);
        match Pin::new(&mut self.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    // The file shrank under us: the length sent would be a lie.
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the backup file shrank while it was sent",
                    ))));
                }
                self.left -= n as u64;
                buf.truncate(n);
                Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes::Bytes::from(buf)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_folders_are_targets() {
        assert_eq!(
            split("https://nas.example.org/dav/backups").unwrap(),
            ("nas.example.org".into(), 443, "/dav/backups/".into())
        );
        assert_eq!(
            split("https://[2001:db8::1]:8443/").unwrap(),
            ("2001:db8::1".into(), 8443, "/".into())
        );
        assert!(split("http://nas/backups/")
            .unwrap_err()
            .contains("https://"));
        assert!(split("nas backups").is_err());
        assert_eq!(host_header("2001:db8::1", 8443), "[2001:db8::1]:8443");
        assert_eq!(host_header("nas", 443), "nas");
    }

    #[test]
    fn a_failed_send_is_tried_again_after_ten_minutes_six_times_at_most() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(store::backup::DIR)).unwrap();
        let target = RemoteTarget {
            enabled: true,
            url: "https://nas/b/".into(),
            ..RemoteTarget::default()
        };
        let newest = d.path().join("backups/backup-2026-12-05-030000.tar.gz");
        assert_eq!(
            retry_due(d.path(), &target, Some(&newest), 1_000),
            None,
            "never sent"
        );
        let mut s = Sent {
            file: "backup-2026-12-05-030000.tar.gz".into(),
            at: 1_000,
            ok: false,
            message: "refused".into(),
            tries: 1,
        };
        record(d.path(), &s);
        assert_eq!(last(d.path()).unwrap(), s);
        assert_eq!(retry_due(d.path(), &target, Some(&newest), 1_599), None);
        assert_eq!(
            retry_due(d.path(), &target, Some(&newest), 1_600),
            Some(newest.clone())
        );
        let off = RemoteTarget {
            enabled: false,
            ..target.clone()
        };
        assert_eq!(retry_due(d.path(), &off, Some(&newest), 1_600), None);
        let other = d.path().join("backups/backup-2026-12-06-030000.tar.gz");
        assert_eq!(
            retry_due(d.path(), &target, Some(&other), 1_600),
            None,
            "a newer one"
        );
        s.tries = TRIES;
        record(d.path(), &s);
        assert_eq!(
            retry_due(d.path(), &target, Some(&newest), 9_999),
            None,
            "given up"
        );
        s.ok = true;
        s.tries = 1;
        record(d.path(), &s);
        assert_eq!(
            retry_due(d.path(), &target, Some(&newest), 9_999),
            None,
            "sent"
        );
    }
}
