//! The TFTP server on tokio: one socket for requests, one task and one socket (a new
//! transfer ID) per transfer, as RFC 1350 asks.

use crate::provider::{Fetch, Provisioner, Via};
use crate::tftp::{self, code, Session, TftpError};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Transfers at once; more requests get an error packet.
pub const MAX_SESSIONS: usize = 64;
/// Transfers at once from one address.
pub const MAX_PER_CLIENT: usize = 8;
/// No transfer lasts longer than this, whatever the client does.
pub const MAX_SESSION_TIME: Duration = Duration::from_secs(600);

/// Where a server gets its files. [`Provisioner`] is the real one.
pub trait Files: Send + Sync + 'static {
    /// The file for `name`, asked by `client` of the box at `local`.
    fn read(&self, name: &str, client: IpAddr, local: IpAddr) -> Result<Bytes, TftpError>;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Files for Provisioner {
    fn read(&self, name: &str, client: IpAddr, local: IpAddr) -> Result<Bytes, TftpError> {
        match self.fetch(name, client, local, Via::Tftp, unix_now()) {
            Fetch::File(b) => Ok(b),
            Fetch::NotFound(m) => Err(TftpError::new(code::FILE_NOT_FOUND, m)),
            Fetch::Denied(m) => Err(TftpError::new(code::ACCESS_VIOLATION, m)),
            Fetch::Failed(m) => Err(TftpError::new(code::NOT_DEFINED, m)),
        }
    }
}

/// Counts transfers in progress, per client and in all.
#[derive(Default)]
struct Load {
    per_client: HashMap<IpAddr, usize>,
    total: usize,
}

struct Slot {
    load: Arc<Mutex<Load>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut l = self.load.lock().expect("load");
        l.total -= 1;
        if let Some(n) = l.per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                l.per_client.remove(&self.ip);
            }
        }
    }
}

/// The box address a client reaches us on: the source the kernel picks towards it.
fn local_towards(bound: IpAddr, client: SocketAddr) -> std::io::Result<IpAddr> {
    if !bound.is_unspecified() {
        return Ok(bound);
    }
    let any: SocketAddr = if client.is_ipv4() {
        "0.0.0.0:0".parse().expect("addr")
    } else {
        "[::]:0".parse().expect("addr")
    };
    let s = std::net::UdpSocket::bind(any)?;
    s.connect(client)?;
    Ok(s.local_addr()?.ip())
}

/// Serves requests on `socket` until the task is dropped.
pub async fn serve(socket: UdpSocket, files: Arc<dyn Files>) {
    let bound = socket
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or([0, 0, 0, 0].into());
    let load = Arc::new(Mutex::new(Load::default()));
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems.
                tracing::debug!("tftp receive: {e}");
                continue;
            }
        };
        let req = match tftp::parse_request(&buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(%client, "tftp request refused: {}", e.message);
                let _ = socket.send_to(&e.packet(), client).await;
                continue;
            }
        };
        let slot = {
            let mut l = load.lock().expect("load");
            let mine = l.per_client.get(&client.ip()).copied().unwrap_or(0);
            if l.total >= MAX_SESSIONS || mine >= MAX_PER_CLIENT {
                None
            } else {
                l.total += 1;
                *l.per_client.entry(client.ip()).or_default() += 1;
                Some(Slot {
                    load: load.clone(),
                    ip: client.ip(),
                })
            }
        };
        let Some(slot) = slot else {
            let e = TftpError::new(code::NOT_DEFINED, "server busy, try again");
            let _ = socket.send_to(&e.packet(), client).await;
            continue;
        };
        let files = files.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let r =
                tokio::time::timeout(MAX_SESSION_TIME, transfer(bound, client, req, files)).await;
            if r.is_err() {
                tracing::warn!(%client, "tftp transfer cut after {MAX_SESSION_TIME:?}");
            }
        });
    }
}

async fn transfer(bound: IpAddr, client: SocketAddr, req: tftp::Request, files: Arc<dyn Files>) {
    let local = match local_towards(bound, client) {
        Ok(ip) => ip,
        Err(e) => {
            tracing::warn!(%client, "no route back to the client: {e}");
            return;
        }
    };
    let sock = match UdpSocket::bind(SocketAddr::new(local, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot open a transfer socket: {e}");
            return;
        }
    };
    let name = req.filename.clone();
    let data = tokio::task::spawn_blocking(move || files.read(&name, client.ip(), local)).await;
    let data = match data {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            tracing::info!(%client, file = %req.filename, "tftp: {}", e.message);
            let _ = sock.send_to(&e.packet(), client).await;
            return;
        }
        Err(e) => {
            let _ = sock
                .send_to(
                    &tftp::error_packet(code::NOT_DEFINED, "internal error"),
                    client,
                )
                .await;
            tracing::error!("tftp file task failed: {e}");
            return;
        }
    };
    let mut s = Session::new(&req, data, Instant::now());
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(p) = s.poll_transmit() {
            if let Err(e) = sock.send_to(&p, client).await {
                tracing::debug!(%client, "tftp send: {e}");
            }
        }
        let Some(deadline) = s.poll_timeout() else {
            break;
        };
        let r = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            sock.recv_from(&mut buf),
        )
        .await;
        match r {
            Ok(Ok((n, from))) if from == client => s.handle(Instant::now(), &buf[..n]),
            Ok(Ok((_, from))) => {
                // Someone else's packet on this transfer's port (RFC 1350: error 5,
                // and the transfer goes on).
                let e = tftp::error_packet(code::UNKNOWN_TID, "unknown transfer ID");
                let _ = sock.send_to(&e, from).await;
            }
            Ok(Err(e)) => tracing::debug!(%client, "tftp receive: {e}"),
            Err(_) => s.handle_timeout(Instant::now()),
        }
    }
    match s.outcome() {
        Some(tftp::Outcome::Complete) => {
            tracing::info!(%client, file = %req.filename, bytes = s.size(), blksize = s.blksize(), "tftp sent")
        }
        o => tracing::info!(%client, file = %req.filename, "tftp transfer ended: {o:?}"),
    }
}
