//! The virtual span (a contract labs and tests rely on; docs/isdn.md):
//!
//! - pbxd listens on a Unix SOCK_SEQPACKET socket at the configured path; each
//!   datagram is one Q.921 frame without flags or FCS. One peer at a time: a new
//!   connection replaces the old one.
//! - The audio of B-channel N travels as Unix SOCK_DGRAM datagrams of 160 bytes every
//!   20 ms in the span's law: pbxd binds `<path>.bN`, the peer binds `<path>.bN.peer`,
//!   and each sends to the other's address.

use nix::sys::socket::{
    accept4, bind, listen, recv, send, socket, AddressFamily, Backlog, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;
use tokio::net::UnixDatagram;

/// The D-channel side of a virtual span.
pub struct Dline {
    listener: AsyncFd<OwnedFd>,
    conn: Option<AsyncFd<OwnedFd>>,
    path: PathBuf,
}

/// Registers an owned descriptor with tokio's reactor.
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and names the same description until it is dropped
    // with the AsyncFd that holds it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))
}

/// Removes what a previous run left at `path`, but only a socket: a path that names
/// anything else is refused, so a span's path can never delete a file.
fn clear(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::other(format!(
            "{} exists and is not a socket",
            path.display()
        ))),
        Err(_) => Ok(()),
    }
}

fn flags() -> SockFlag {
    SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC
}

impl Dline {
    pub fn listen(path: &Path) -> io::Result<Dline> {
        clear(path)?;
        let fd = socket(AddressFamily::Unix, SockType::SeqPacket, flags(), None)?;
        bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        listen(&fd, Backlog::new(1).map_err(io::Error::from)?)?;
        Ok(Dline {
            listener: register(fd)?,
            conn: None,
            path: path.to_path_buf(),
        })
    }

    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Waits for a peer or a frame. `Ok(None)` when a peer connected or left (nothing
    /// to hand over).
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        tokio::select! {
            g = self.listener.readable() => {
                let mut g = g?;
                if let Ok(r) = g.try_io(|l| accept4(l.as_raw_fd(), flags()).map_err(io::Error::from)) {
                    let raw = r?;
                    // SAFETY: accept4 returned a new descriptor we now own.
                    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                    tracing::info!(path = %self.path.display(), "virtual span: peer connected");
                    self.conn = Some(register(fd)?);
                }
                Ok(None)
            }
            r = async {
                match &self.conn {
                    Some(c) => {
                        let mut g = c.readable().await?;
                        match g.try_io(|c| recv(c.as_raw_fd(), buf, MsgFlags::empty()).map_err(io::Error::from)) {
                            Ok(r) => r.map(Some),
                            Err(_would_block) => Ok(None),
                        }
                    }
                    None => std::future::pending().await,
                }
            } => {
                match r {
                    Ok(Some(0)) | Err(_) => {
                        tracing::info!(path = %self.path.display(), "virtual span: peer left");
                        self.conn = None;
                        Ok(None)
                    }
                    Ok(n) => Ok(n),
                }
            }
        }
    }

    /// Sends one frame; lost when no peer is connected (like a line with nothing on it).
    pub fn send(&mut self, frame: &[u8]) {
        if let Some(c) = &self.conn {
            if send(c.get_ref().as_raw_fd(), frame, MsgFlags::MSG_DONTWAIT).is_err() {
                tracing::debug!("virtual span: frame lost");
            }
        }
    }
}

impl Drop for Dline {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The audio socket of B-channel `n`.
pub struct Bchan {
    pub sock: UnixDatagram,
    pub peer: PathBuf,
    own: PathBuf,
}

impl Bchan {
    pub fn bind(path: &Path, n: u8) -> io::Result<Bchan> {
        let own = PathBuf::from(format!("{}.b{n}", path.display()));
        let peer = PathBuf::from(format!("{}.b{n}.peer", path.display()));
        clear(&own)?;
        Ok(Bchan {
            sock: UnixDatagram::bind(&own)?,
            peer,
            own,
        })
    }

    /// Sends one chunk of audio to the peer (lost when the peer is not there).
    pub fn send(&self, audio: &[u8]) {
        let _ = self.sock.try_send_to(audio, &self.peer);
    }

    /// Throws away what queued while no call used the channel.
    pub fn drain(&self) {
        let mut b = [0u8; 512];
        while self.sock.try_recv(&mut b).is_ok() {}
    }
}

impl Drop for Bchan {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.own);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_span_path_never_deletes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("precious");
        std::fs::write(&keep, b"data").unwrap();
        let e = Dline::listen(&keep).err().unwrap().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&keep).unwrap(), b"data");
        std::fs::write(dir.path().join("precious.b1"), b"audio").unwrap();
        assert!(Bchan::bind(&keep, 1).is_err());
        assert_eq!(
            std::fs::read(dir.path().join("precious.b1")).unwrap(),
            b"audio"
        );
        // A socket left by an earlier run is replaced.
        let span = dir.path().join("span");
        drop(std::os::unix::net::UnixDatagram::bind(&span).unwrap());
        let l = Dline::listen(&span).unwrap();
        assert!(!l.connected());
    }
}
