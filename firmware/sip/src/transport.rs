//! Tokio drivers for the UDP and TCP transports: the only place in `sip` that owns sockets.
//!
//! Everything received goes to one channel as [`Incoming`]; [`Transports::send`] writes
//! a message to a peer, over the connection it came from for TCP.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    /// Name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        }
    }
    /// Reliable transports do not retransmit.
    pub fn reliable(self) -> bool {
        self == Proto::Tcp
    }
}

/// One message as it arrived.
#[derive(Debug)]
pub struct Incoming {
    pub proto: Proto,
    pub remote: SocketAddr,
    /// The box's address as seen by this peer.
    pub local: SocketAddr,
    pub bytes: Vec<u8>,
}

type Conns = Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>>;

/// The bound SIP transports.
#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    conns: Conns,
    local: SocketAddr,
    tx: mpsc::Sender<Incoming>,
    routes: Arc<Mutex<HashMap<IpAddr, IpAddr>>>,
}

/// Most TCP connections served at once.
const MAX_TCP: usize = 4096;

impl Transports {
    /// Binds UDP and TCP on `addr` and starts receiving.
    pub async fn bind(addr: SocketAddr) -> io::Result<(Transports, mpsc::Receiver<Incoming>)> {
        let udp = Arc::new(UdpSocket::bind(addr).await?);
        let local = udp.local_addr()?;
        let tcp = TcpListener::bind(local).await?;
        let (tx, rx) = mpsc::channel(4096);
        let t = Transports {
            udp: udp.clone(),
            conns: Arc::default(),
            local,
            tx: tx.clone(),
            routes: Arc::default(),
        };
        let t2 = t.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match udp.recv_from(&mut buf).await {
                    Ok((n, remote)) => {
                        // Bare CRLF keep-alives are answered by nothing.
                        if n <= 4 && buf[..n].iter().all(|b| *b == b'\r' || *b == b'\n') {
                            continue;
                        }
                        let local = t2.local_for(remote);
                        let m = Incoming {
                            proto: Proto::Udp,
                            remote,
                            local,
                            bytes: buf[..n].to_vec(),
                        };
                        if t2.tx.send(m).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::debug!("udp receive: {e}"),
                }
            }
        });
        let t3 = t.clone();
        tokio::spawn(async move {
            loop {
                match tcp.accept().await {
                    Ok((stream, remote)) => {
                        if t3.conns.lock().unwrap().len() >= MAX_TCP {
                            continue;
                        }
                        t3.serve_tcp(stream, remote);
                    }
                    Err(e) => {
                        tracing::warn!("tcp accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok((t, rx))
    }

    /// The address the transports are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The box's own address towards `remote`: the bound address, or when bound to the
    /// wildcard the source address the kernel routes to `remote` with.
    pub fn local_for(&self, remote: SocketAddr) -> SocketAddr {
        if !self.local.ip().is_unspecified() {
            return self.local;
        }
        let ip = {
            let mut routes = self.routes.lock().unwrap();
            *routes
                .entry(remote.ip())
                .or_insert_with(|| route_source(remote).unwrap_or(self.local.ip()))
        };
        SocketAddr::new(ip, self.local.port())
    }

    fn serve_tcp(&self, stream: TcpStream, remote: SocketAddr) {
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        self.conns.lock().unwrap().insert(remote, out_tx);
        let local = stream.local_addr().unwrap_or(self.local);
        let (mut rd, mut wr) = stream.into_split();
        let conns = self.conns.clone();
        let tx = self.tx.clone();
        let writer = tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        let conns2 = conns.clone();
        tokio::spawn(async move {
            let mut buf: Vec<u8> = Vec::with_capacity(8192);
            let mut chunk = vec![0u8; 16_384];
            'conn: loop {
                let n = match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    match crate::message::stream_frame_len(&buf) {
                        Ok(Some(len)) => {
                            let mut msg: Vec<u8> = buf.drain(..len).collect();
                            let lead = msg
                                .iter()
                                .take_while(|b| **b == b'\r' || **b == b'\n')
                                .count();
                            msg.drain(..lead);
                            let m = Incoming {
                                proto: Proto::Tcp,
                                remote,
                                local,
                                bytes: msg,
                            };
                            if tx.send(m).await.is_err() {
                                break 'conn;
                            }
                        }
                        Ok(None) => {
                            // A lone CRLF keep-alive (RFC 5626) is consumed.
                            if buf.iter().all(|b| *b == b'\r' || *b == b'\n') {
                                buf.clear();
                            }
                            break;
                        }
                        Err(e) => {
                            // The stream cannot be framed any more: answer if we can, then close.
                            if let Some(reply) = crate::message::reject_unparsed(&buf, &e) {
                                if let Some(c) = conns2.lock().unwrap().get(&remote) {
                                    let _ = c.send(reply);
                                }
                            }
                            break 'conn;
                        }
                    }
                }
            }
            conns.lock().unwrap().remove(&remote);
            // Let the writer flush what is queued, then stop.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            writer.abort();
        });
    }

    /// Sends `bytes` to `dest`. UDP datagrams that cannot be sent now are dropped (the
    /// transaction layer retransmits); TCP reuses the peer's connection or opens one.
    pub fn send(&self, proto: Proto, dest: SocketAddr, bytes: Vec<u8>) {
        match proto {
            Proto::Udp => {
                if let Err(e) = self.udp.try_send_to(&bytes, dest) {
                    tracing::debug!("udp send to {dest}: {e}");
                }
            }
            Proto::Tcp => {
                if let Some(c) = self.conns.lock().unwrap().get(&dest) {
                    let _ = c.send(bytes);
                    return;
                }
                let me = self.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        TcpStream::connect(dest),
                    )
                    .await
                    {
                        Ok(Ok(s)) => {
                            me.serve_tcp(s, dest);
                            if let Some(c) = me.conns.lock().unwrap().get(&dest) {
                                let _ = c.send(bytes);
                            }
                        }
                        _ => tracing::debug!("tcp connect to {dest} failed"),
                    }
                });
            }
        }
    }
}

/// The source address the kernel would use towards `remote` (no packet is sent).
fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = std::net::UdpSocket::bind(bind).ok()?;
    s.connect(remote).ok()?;
    Some(s.local_addr().ok()?.ip())
}
