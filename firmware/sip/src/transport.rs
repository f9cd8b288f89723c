//! Tokio drivers for the UDP, TCP and TLS transports and SIP over secure WebSocket
//! (RFC 7118): the only place in `sip` that owns sockets.
//!
//! Everything received goes to one channel as [`Incoming`]; [`Transports::send`] writes
//! a message to a peer, over the connection it came from for TCP, TLS and WSS, or over
//! one it opens for TCP and TLS (TLS verifies the peer's certificate against the name set
//! with [`Transports::set_server_names`], else its address). WebSocket connections are
//! accepted and upgraded by the web server, which hands each to
//! [`Transports::serve_ws`]; the box opens none.

use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;

/// Transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Proto {
    #[default]
    Udp,
    Tcp,
    Tls,
    /// SIP over secure WebSocket (RFC 7118), served on the web port.
    Wss,
}

impl Proto {
    /// Name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Wss => "WSS",
        }
    }
    /// The `transport` URI parameter a Contact or Route of ours carries (none for UDP;
    /// `ws` for secure WebSocket too, RFC 7118 5.2).
    pub fn uri_param(self) -> &'static str {
        match self {
            Proto::Udp => "",
            Proto::Tcp => ";transport=tcp",
            Proto::Tls => ";transport=tls",
            Proto::Wss => ";transport=ws",
        }
    }
    /// Lower-case name (`udp`, `tcp`, `tls`, `wss`), as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Wss => "wss",
        }
    }
    /// The protocol of a lower- or upper-case name (`ws` is served secure only, as
    /// `wss`); anything else is UDP.
    pub fn from_name(s: &str) -> Proto {
        if s.eq_ignore_ascii_case("tcp") {
            Proto::Tcp
        } else if s.eq_ignore_ascii_case("tls") {
            Proto::Tls
        } else if s.eq_ignore_ascii_case("wss") || s.eq_ignore_ascii_case("ws") {
            Proto::Wss
        } else {
            Proto::Udp
        }
    }
    /// Reliable transports do not retransmit.
    pub fn reliable(self) -> bool {
        self != Proto::Udp
    }
    /// Reached only over the connection the peer opened (the box opens no WebSocket,
    /// and a phone over TLS has no certificate the box could check).
    pub fn connection_only(self) -> bool {
        matches!(self, Proto::Tls | Proto::Wss)
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
    /// The peer's WebSocket has closed (no bytes): what it registered cannot be reached
    /// until it connects again. Only for WSS.
    pub closed: bool,
}

type Key = (Proto, SocketAddr);
/// A connection's queue of messages to write, with a number that tells it from a later
/// connection to the same peer.
type Conns = Arc<Mutex<HashMap<Key, (u64, mpsc::Sender<Vec<u8>>)>>>;
static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What SIP over TLS needs: where to listen, our certificate, whom we trust.
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

struct TlsState {
    local: SocketAddr,
    connector: Mutex<tokio_rustls::TlsConnector>,
    /// The name to verify a peer's certificate against, by its address.
    names: Mutex<HashMap<SocketAddr, String>>,
}

/// What a connection's writer takes from.
struct Queue {
    id: u64,
    rx: mpsc::Receiver<Vec<u8>>,
}

/// The bound SIP transports.
#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    conns: Conns,
    local: SocketAddr,
    tx: mpsc::Sender<Incoming>,
    routes: Arc<Mutex<HashMap<IpAddr, IpAddr>>>,
    tls: Arc<OnceLock<TlsState>>,
    /// The web server's address, where SIP over WebSocket is served.
    ws: Arc<OnceLock<SocketAddr>>,
}

/// Most TCP and TLS connections served at once.
const MAX_TCP: usize = 4096;
/// Most TCP and TLS connections from one address (an office of phones behind one NAT
/// fits; one host cannot take every place).
const MAX_PER_ADDRESS: usize = 256;
/// Most WebSockets from one address (within [`MAX_PER_ADDRESS`]).
const MAX_WS_PER_ADDRESS: usize = 64;
/// Most TLS handshakes under way at once, and how long one may take.
const MAX_HANDSHAKES: usize = 256;
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// Messages queued for one connection: a peer that reads none of them is cut off.
const QUEUE: usize = 256;
/// Longest a write to a connection may take.
const WRITE_TIME: Duration = Duration::from_secs(10);
/// A connection silent this long before its first message, or this long after one
/// (longer than the longest registration, so a registered phone's connection lives
/// between its refreshes even without keep-alives), is closed.
const FIRST_MESSAGE_TIME: Duration = Duration::from_secs(30);
const IDLE_TIME: Duration = Duration::from_secs(3_900);

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
            tls: Arc::default(),
            ws: Arc::default(),
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
                        let local = t2.local_for(Proto::Udp, remote);
                        let m = Incoming {
                            proto: Proto::Udp,
                            remote,
                            local,
                            bytes: buf[..n].to_vec(),
                            closed: false,
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
                        if !t3.room_for(remote.ip()) {
                            continue;
                        }
                        let local = stream.local_addr().unwrap_or(t3.local);
                        let rx = t3.register((Proto::Tcp, remote));
                        t3.serve_stream(Proto::Tcp, stream, remote, local, rx);
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

    /// The box's own address towards `remote` over `proto`: the bound address (the TLS
    /// listener's for TLS), or when bound to the wildcard the source address the
    /// kernel routes to `remote` with.
    pub fn local_for(&self, proto: Proto, remote: SocketAddr) -> SocketAddr {
        let bound = match (proto, self.tls.get(), self.ws.get()) {
            (Proto::Tls, Some(t), _) => t.local,
            (Proto::Wss, _, Some(w)) => *w,
            _ => self.local,
        };
        if !bound.ip().is_unspecified() {
            return bound;
        }
        let ip = {
            let mut routes = self.routes.lock().unwrap();
            *routes
                .entry(remote.ip())
                .or_insert_with(|| route_source(remote).unwrap_or(bound.ip()))
        };
        SocketAddr::new(ip, bound.port())
    }

    /// Listens for SIP over TLS (once; a second call changes nothing) and opens TLS
    /// connections with `client`'s trust. Returns the bound address.
    pub async fn listen_tls(&self, settings: TlsSettings) -> io::Result<SocketAddr> {
        if let Some(t) = self.tls.get() {
            return Ok(t.local);
        }
        let listener = TcpListener::bind(settings.listen).await?;
        let local = listener.local_addr()?;
        // Handshakes under way (accepted, not yet finished).
        let handshakes = Arc::new(AtomicUsize::new(0));
        let state = TlsState {
            local,
            connector: Mutex::new(tokio_rustls::TlsConnector::from(settings.client)),
            names: Mutex::default(),
        };
        if self.tls.set(state).is_err() {
            return Ok(self.tls.get().map_or(local, |t| t.local));
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(settings.server);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, remote) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("tls accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if !me.room_for(remote.ip()) || handshakes.load(Ordering::Relaxed) >= MAX_HANDSHAKES
                {
                    continue;
                }
                let counted = Counted::new(&handshakes);
                let (me, acceptor) = (me.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let local = stream.local_addr().unwrap_or(local);
                    let done = tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(stream)).await;
                    drop(counted);
                    match done {
                        Ok(Ok(s)) => {
                            let rx = me.register((Proto::Tls, remote));
                            me.serve_stream(Proto::Tls, s, remote, local, rx);
                        }
                        Ok(Err(e)) => tracing::debug!("tls handshake from {remote}: {e}"),
                        Err(_) => tracing::debug!("tls handshake from {remote} timed out"),
                    }
                });
            }
        });
        Ok(local)
    }

    /// Whom TLS connections the box opens from now on trust (the administrator
    /// changed the trusted certificates); connections open stay as they are.
    pub fn set_client_config(&self, client: Arc<rustls::ClientConfig>) {
        if let Some(t) = self.tls.get() {
            *t.connector.lock().unwrap() = tokio_rustls::TlsConnector::from(client);
        }
    }

    /// The address SIP over TLS listens on, when it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.get().map(|t| t.local)
    }

    /// The names TLS peers must prove (their host names: SNI and the certificate
    /// check), by address; replaces the earlier list. An address listed twice keeps its
    /// first name (the exchange lists peers given by address first, so a DNS name
    /// pointed at another peer's address cannot change what that peer must prove).
    /// An address not listed is checked as an IP address.
    pub fn set_server_names(&self, names: &[(SocketAddr, String)]) {
        let Some(t) = self.tls.get() else { return };
        let mut m = HashMap::new();
        for (a, n) in names {
            match m.get(a) {
                Some(first) if first != n => tracing::warn!(
                    "TLS peers {first} and {n} share the address {a}: it must prove {first}"
                ),
                Some(_) => {}
                None => {
                    m.insert(*a, n.clone());
                }
            }
        }
        *t.names.lock().unwrap() = m;
    }

    /// Whether a connection from `ip` may be accepted: fewer than [`MAX_TCP`] in all
    /// and [`MAX_PER_ADDRESS`] from it. A refused connection is closed at once.
    fn room_for(&self, ip: IpAddr) -> bool {
        let conns = self.conns.lock().unwrap();
        if conns.len() >= MAX_TCP {
            return false;
        }
        let ok = conns.keys().filter(|(_, a)| a.ip() == ip).count() < MAX_PER_ADDRESS;
        if !ok {
            tracing::debug!("{ip} holds {MAX_PER_ADDRESS} connections: refusing another");
        }
        ok
    }

    /// A new connection's queue of messages to write.
    fn register(&self, key: Key) -> Queue {
        let (out_tx, rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().unwrap().insert(key, (id, out_tx));
        Queue { id, rx }
    }

    /// Forgets `key`'s connection if it is still the one numbered `id`.
    fn forget(conns: &Conns, key: &Key, id: u64) {
        let mut c = conns.lock().unwrap();
        if c.get(key).is_some_and(|(i, _)| *i == id) {
            c.remove(key);
        }
    }

    /// Reads messages off a connection (framed by Content-Length) and writes what is
    /// queued for it, until either side ends, a write takes longer than
    /// [`WRITE_TIME`], or the peer is silent too long ([`FIRST_MESSAGE_TIME`] before its
    /// first message, [`IDLE_TIME`] later).
    fn serve_stream<S>(
        &self,
        proto: Proto,
        stream: S,
        remote: SocketAddr,
        local: SocketAddr,
        mut q: Queue,
    ) where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let key = (proto, remote);
        let conns = self.conns.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(stream);
            {
                let reading = read_messages(&mut rd, key, local, &tx, &conns);
                let writing = async {
                    while let Some(b) = q.rx.recv().await {
                        if !write_timed(&mut wr, &b).await {
                            break;
                        }
                    }
                };
                tokio::select! {
                    _ = reading => {}
                    _ = writing => {}
                }
            }
            // Nothing more is queued here; what was (an answer to the last message, a
            // 400 to an unframeable stream) goes out, briefly.
            Self::forget(&conns, &key, q.id);
            let _ = tokio::time::timeout(Duration::from_millis(100), async {
                while let Ok(b) = q.rx.try_recv() {
                    if !write_timed(&mut wr, &b).await {
                        break;
                    }
                }
            })
            .await;
            let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
        });
    }

    /// Where SIP over WebSocket is served (the web server's address): the box's own
    /// address in what it sends over WSS.
    pub fn set_ws_addr(&self, addr: SocketAddr) {
        let _ = self.ws.set(addr);
    }

    /// Whether a WebSocket from `ip` may be taken: room as for any connection, and
    /// fewer than [`MAX_WS_PER_ADDRESS`] WebSockets from it (any web page a user opens
    /// can open WebSockets to the box: they cannot take an office's places from its
    /// TCP and TLS phones).
    pub fn ws_room_for(&self, ip: IpAddr) -> bool {
        if !self.room_for(ip) {
            return false;
        }
        let conns = self.conns.lock().unwrap();
        conns
            .keys()
            .filter(|(p, a)| *p == Proto::Wss && a.ip() == ip)
            .count()
            < MAX_WS_PER_ADDRESS
    }

    /// Serves SIP over a WebSocket (RFC 7118) on `io`, a connection the web server
    /// accepted from `remote` on `local` and upgraded with the `sip` subprotocol: each
    /// text or binary message is one SIP message (at most [`WS_MAX_MESSAGE`] bytes), and
    /// each message queued for the connection goes out as one text message (binary if
    /// it is not UTF-8). The first SIP message must come within [`FIRST_MESSAGE_TIME`]
    /// of the opening (pings and blank messages do not count); later anything from
    /// the peer keeps it open for [`IDLE_TIME`]. Otherwise it ends as
    /// [`Self::serve_stream`] does, with a close frame saying why; its end is reported
    /// as an [`Incoming`] with `closed`. Without [`Self::ws_room_for`] it is closed at
    /// once.
    pub fn serve_ws<S>(&self, io: S, remote: SocketAddr, local: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
        use tokio_tungstenite::tungstenite::{Error, Message};
        if !self.ws_room_for(remote.ip()) {
            return;
        }
        let key = (Proto::Wss, remote);
        let mut q = self.register(key);
        let conns = self.conns.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut ws =
                WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
            let silence = tokio::time::sleep(FIRST_MESSAGE_TIME);
            tokio::pin!(silence);
            let mut heard = false;
            // Why the box closes (None: the peer closed, or the connection broke).
            let why: Option<(CloseCode, &str)> = loop {
                tokio::select! {
                    got = ws.next() => {
                        let bytes = match got {
                            Some(Ok(Message::Text(t))) => t.into_bytes(),
                            Some(Ok(Message::Binary(b))) => b,
                            // Pings are answered by the stream itself.
                            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Vec::new(),
                            Some(Ok(Message::Close(_))) | None => break None,
                            Some(Err(Error::Capacity(e))) => {
                                tracing::debug!("WebSocket from {remote}: {e}");
                                break Some((CloseCode::Size, "message too big for SIP"));
                            }
                            Some(Err(Error::Protocol(e))) => {
                                tracing::debug!("WebSocket from {remote}: {e}");
                                break Some((CloseCode::Protocol, "protocol error"));
                            }
                            Some(Err(Error::Utf8)) => break Some((CloseCode::Invalid, "text not UTF-8")),
                            Some(Err(e)) => {
                                tracing::debug!("WebSocket from {remote}: {e}");
                                break None;
                            }
                        };
                        // A keep-alive (a ping, blank lines) keeps a connection that has
                        // carried SIP; it is no message.
                        let blank = bytes.iter().all(u8::is_ascii_whitespace);
                        if heard || !blank {
                            silence.as_mut().reset(tokio::time::Instant::now() + IDLE_TIME);
                        }
                        if blank {
                            continue;
                        }
                        heard = true;
                        let m = Incoming { proto: Proto::Wss, remote, local, bytes, closed: false };
                        if tx.send(m).await.is_err() {
                            break Some((CloseCode::Away, "shutting down"));
                        }
                    }
                    out = q.rx.recv() => {
                        // The queue is closed when the box gave up on the peer.
                        let Some(b) = out else { break Some((CloseCode::Policy, "not read")) };
                        if !matches!(tokio::time::timeout(WRITE_TIME, ws.send(ws_message(b))).await, Ok(Ok(()))) {
                            break None;
                        }
                    }
                    _ = &mut silence => {
                        tracing::debug!("WebSocket from {remote} silent; closing it");
                        break Some((CloseCode::Away, "silent too long"));
                    }
                }
            };
            Self::forget(&conns, &key, q.id);
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                match why {
                    // The peer's close is answered (tungstenite queued the reply).
                    None => {
                        let _ = ws.flush().await;
                    }
                    Some((code, reason)) => {
                        // What was queued (an answer to the last message) goes first.
                        while let Ok(b) = q.rx.try_recv() {
                            if ws.send(ws_message(b)).await.is_err() {
                                return;
                            }
                        }
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = ws.close(Some(frame)).await;
                    }
                }
            })
            .await;
            let gone = Incoming {
                proto: Proto::Wss,
                remote,
                local,
                bytes: Vec::new(),
                closed: true,
            };
            let _ = tx.send(gone).await;
        });
    }

    /// Opens a connection to `dest` and queues `bytes` on it. Messages sent while it
    /// opens queue behind them; a connection that cannot be opened drops them (the
    /// transaction layer times out).
    fn open(&self, proto: Proto, dest: SocketAddr, bytes: Vec<u8>) {
        if proto == Proto::Wss {
            // The box opens no WebSocket: a browser phone whose connection has gone is
            // reached again when it reconnects and registers.
            tracing::debug!("SIP over WebSocket to {dest}: no connection");
            return;
        }
        if proto == Proto::Tls && self.tls.get().is_none() {
            tracing::warn!("SIP over TLS to {dest}: TLS is not set up");
            return;
        }
        let key = (proto, dest);
        let rx = self.register(key);
        if let Some((_, c)) = self.conns.lock().unwrap().get(&key) {
            let _ = c.try_send(bytes);
        }
        let me = self.clone();
        tokio::spawn(async move {
            // From our own address (the one Via, Contact and SDP name), not whichever
            // the kernel would pick.
            let local = me.local_for(proto, dest);
            let tcp = match tokio::time::timeout(Duration::from_secs(5), connect_from(local, dest))
                .await
            {
                Ok(Ok(s)) => s,
                _ => {
                    tracing::debug!("{} connect to {dest} failed", proto.via_name());
                    Self::forget(&me.conns, &key, rx.id);
                    return;
                }
            };
            if proto == Proto::Tcp {
                me.serve_stream(proto, tcp, dest, local, rx);
                return;
            }
            let Some(tls) = me.tls.get() else {
                tracing::warn!("SIP over TLS to {dest}: TLS is not set up");
                Self::forget(&me.conns, &key, rx.id);
                return;
            };
            let name = tls
                .names
                .lock()
                .unwrap()
                .get(&dest)
                .cloned()
                .unwrap_or_else(|| dest.ip().to_string());
            let server_name = match ServerName::try_from(name.clone()) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("SIP over TLS to {dest}: bad server name {name:?}: {e}");
                    Self::forget(&me.conns, &key, rx.id);
                    return;
                }
            };
            let connector = tls.connector.lock().unwrap().clone();
            match tokio::time::timeout(HANDSHAKE_TIME, connector.connect(server_name, tcp)).await {
                Ok(Ok(s)) => me.serve_stream(proto, s, dest, local, rx),
                Ok(Err(e)) => {
                    tracing::warn!("SIP over TLS to {dest} ({name}) refused: {e}");
                    Self::forget(&me.conns, &key, rx.id);
                }
                Err(_) => {
                    tracing::warn!("SIP over TLS to {dest} ({name}): handshake timed out");
                    Self::forget(&me.conns, &key, rx.id);
                }
            }
        });
    }

    /// Sends `bytes` to `dest`. UDP datagrams that cannot be sent now are dropped (the
    /// transaction layer retransmits); TCP and TLS reuse the peer's connection or open
    /// one.
    pub fn send(&self, proto: Proto, dest: SocketAddr, bytes: Vec<u8>) {
        // The debug log's "sip" class (written only when a technician switched it on).
        tracing::debug!(
            target: "sip_messages",
            "out to {}:{dest}:\n{}",
            proto.name(),
            String::from_utf8_lossy(&bytes)
        );
        if proto == Proto::Udp {
            if let Err(e) = self.udp.try_send_to(&bytes, dest) {
                tracing::debug!("udp send to {dest}: {e}");
            }
            return;
        }
        let key = (proto, dest);
        let bytes = {
            let mut conns = self.conns.lock().unwrap();
            match conns.get(&key) {
                Some((_, c)) => match c.try_send(bytes) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // The peer reads nothing: it is cut off (its writer ends
                        // when its current write times out).
                        tracing::warn!(
                            "{} connection to {dest} is not read; closing it",
                            proto.via_name()
                        );
                        conns.remove(&key);
                        return;
                    }
                    // Its writer has just stopped: open a new one.
                    Err(mpsc::error::TrySendError::Closed(b)) => b,
                },
                None => bytes,
            }
        };
        self.open(proto, dest, bytes);
    }
}

/// The largest WebSocket message (one SIP message) and frame a peer may send: as large
/// as any SIP message over TCP.
pub const WS_MAX_MESSAGE: usize = 65_536;

/// How the box reads a WebSocket: messages and frames at most [`WS_MAX_MESSAGE`].
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        max_message_size: Some(WS_MAX_MESSAGE),
        max_frame_size: Some(WS_MAX_MESSAGE),
        // Pongs to a peer that sends pings and reads nothing would pile up here:
        // bounded, past it the pending pong is replaced, not added.
        max_write_buffer_size: 4 * WS_MAX_MESSAGE,
        ..Default::default()
    }
}

/// One SIP message as one WebSocket message: text, or binary when it is not UTF-8.
fn ws_message(b: Vec<u8>) -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::Message;
    match String::from_utf8(b) {
        Ok(t) => Message::Text(t),
        Err(e) => Message::Binary(e.into_bytes()),
    }
}

/// One of a count of things under way, for as long as it lives (a task that is
/// dropped or panics gives its place back).
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(n: &Arc<AtomicUsize>) -> Counted {
        n.fetch_add(1, Ordering::Relaxed);
        Counted(n.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes `b` whole within [`WRITE_TIME`].
async fn write_timed<W: AsyncWrite + Unpin>(wr: &mut W, b: &[u8]) -> bool {
    let write = async {
        wr.write_all(b).await?;
        wr.flush().await
    };
    matches!(tokio::time::timeout(WRITE_TIME, write).await, Ok(Ok(())))
}

/// Reads messages off a stream until it ends, cannot be framed (a 400 is queued when
/// the request can be read) or is silent too long; each goes to `tx`.
async fn read_messages<R: AsyncRead + Unpin>(
    rd: &mut R,
    key: Key,
    local: SocketAddr,
    tx: &mpsc::Sender<Incoming>,
    conns: &Conns,
) {
    let (proto, remote) = key;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16_384];
    let mut wait = FIRST_MESSAGE_TIME;
    loop {
        let n = match tokio::time::timeout(wait, rd.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(
                    "{} connection from {remote} silent; closing it",
                    proto.via_name()
                );
                return;
            }
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
                    wait = IDLE_TIME;
                    let m = Incoming {
                        proto,
                        remote,
                        local,
                        bytes: msg,
                        closed: false,
                    };
                    if tx.send(m).await.is_err() {
                        return;
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
                        if let Some((_, c)) = conns.lock().unwrap().get(&key) {
                            let _ = c.try_send(reply);
                        }
                    }
                    return;
                }
            }
        }
    }
}

/// A TCP connection to `dest` from `local`'s address (any port).
async fn connect_from(local: SocketAddr, dest: SocketAddr) -> io::Result<TcpStream> {
    let sock = if dest.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if local.is_ipv4() == dest.is_ipv4() && !local.ip().is_unspecified() {
        sock.bind(SocketAddr::new(local.ip(), 0))?;
    }
    sock.connect(dest).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    const OPTIONS: &[u8] = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.5:5061;branch=z9hG4bK1\r\nFrom: <sip:a@127.0.0.5>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    /// A server configuration with our certificate chain (pbxd's comes from the web's
    /// certificate resolver, `web::tls::server_config_active`).
    fn tls_server_config(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> io::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(Arc::new(cfg))
    }

    /// A certificate for 127.0.0.1 and its server configuration.
    fn server_cert() -> (CertificateDer<'static>, Arc<rustls::ServerConfig>) {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let der = c.cert.der().clone();
        let key = PrivateKeyDer::try_from(c.signing_key.serialize_der()).unwrap();
        (der.clone(), tls_server_config(vec![der], key).unwrap())
    }

    async fn with_tls(
        ip: &str,
        server: Arc<rustls::ServerConfig>,
        trust: &[CertificateDer<'static>],
    ) -> (Transports, mpsc::Receiver<Incoming>) {
        let (t, rx) = Transports::bind(format!("{ip}:0").parse().unwrap())
            .await
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(trust.iter().cloned());
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        );
        t.listen_tls(TlsSettings {
            listen: format!("{ip}:0").parse().unwrap(),
            server,
            client,
        })
        .await
        .unwrap();
        (t, rx)
    }

    async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Option<Incoming> {
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn tls_carries_messages_both_ways_from_our_own_address() {
        let (cert, server) = server_cert();
        let (a, mut a_rx) = with_tls("127.0.0.1", server.clone(), &[]).await;
        let (b, mut b_rx) = with_tls("127.0.0.5", server, &[cert]).await;
        let a_tls = a.tls_addr().unwrap();
        assert_ne!(a_tls, a.local_addr());
        assert_eq!(
            a.local_for(Proto::Tls, "127.0.0.9:5061".parse().unwrap()),
            a_tls
        );
        b.send(Proto::Tls, a_tls, OPTIONS.to_vec());
        let m = next(&mut a_rx).await.expect("arrives over TLS");
        assert_eq!(m.proto, Proto::Tls);
        assert_eq!(m.bytes, OPTIONS);
        assert_eq!(m.local, a_tls);
        // From B's own address, not whichever the kernel would pick.
        assert_eq!(m.remote.ip(), "127.0.0.5".parse::<IpAddr>().unwrap());
        // The answer goes back down the same connection.
        a.send(
            Proto::Tls,
            m.remote,
            b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        );
        let r = next(&mut b_rx).await.expect("answer over the connection");
        assert_eq!(r.proto, Proto::Tls);
        assert_eq!(r.remote, a_tls);
        assert!(r.bytes.starts_with(b"SIP/2.0 200 OK"));
        assert_eq!(b.conns.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_untrusted_or_misnamed_certificate_carries_nothing() {
        let (cert, server) = server_cert();
        let (a, mut a_rx) = with_tls("127.0.0.1", server.clone(), &[]).await;
        let a_tls = a.tls_addr().unwrap();
        // Not trusted.
        let (b, _b_rx) = with_tls("127.0.0.6", server.clone(), &[]).await;
        b.send(Proto::Tls, a_tls, OPTIONS.to_vec());
        // Trusted, but dialled by a name the certificate does not carry.
        let (c, _c_rx) = with_tls("127.0.0.7", server, &[cert]).await;
        c.set_server_names(&[(a_tls, "pbx.example.com".into())]);
        c.send(Proto::Tls, a_tls, OPTIONS.to_vec());
        assert!(next(&mut a_rx).await.is_none());
        // The failed connections are forgotten: a later send tries afresh.
        assert!(b.conns.lock().unwrap().is_empty());
        assert!(c.conns.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_connection() {
        let (a, mut a_rx) = Transports::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_PER_ADDRESS + 5 {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.9:0".parse().unwrap()).unwrap();
            held.push(s.connect(a.local_addr()).await.unwrap());
        }
        // The accept loop has taken them all in (or shut the extra ones).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let from = |ip: &str| {
            a.conns
                .lock()
                .unwrap()
                .keys()
                .filter(|(_, r)| r.ip() == ip.parse::<IpAddr>().unwrap())
                .count()
        };
        assert_eq!(from("127.0.0.9"), MAX_PER_ADDRESS);
        // Another address still gets in and is heard.
        let (b, _b_rx) = Transports::bind("127.0.0.10:0".parse().unwrap())
            .await
            .unwrap();
        b.send(Proto::Tcp, a.local_addr(), OPTIONS.to_vec());
        let m = next(&mut a_rx).await.expect("heard");
        assert_eq!(m.remote.ip(), "127.0.0.10".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn tls_without_tls_set_up_opens_nothing_and_leaves_tcp_alone() {
        let (_, server) = server_cert();
        let (a, mut a_rx) = with_tls("127.0.0.1", server, &[]).await;
        let (b, mut b_rx) = Transports::bind("127.0.0.8:0".parse().unwrap())
            .await
            .unwrap();
        b.send(Proto::Tcp, a.local_addr(), OPTIONS.to_vec());
        let m = next(&mut a_rx).await.unwrap();
        assert_eq!(m.proto, Proto::Tcp);
        assert_eq!(m.remote.ip(), "127.0.0.8".parse::<IpAddr>().unwrap());
        // No TLS set up on B: a TLS send opens no connection (not even TCP) and leaves
        // the TCP one alone.
        b.send(Proto::Tls, a.tls_addr().unwrap(), OPTIONS.to_vec());
        assert_eq!(b.conns.lock().unwrap().len(), 1);
        assert!(next(&mut a_rx).await.is_none());
        assert_eq!(b.conns.lock().unwrap().len(), 1);
        // A holds B's TCP connection: a TLS send to the same address is not carried
        // by it.
        a.send(Proto::Tls, m.remote, OPTIONS.to_vec());
        assert!(next(&mut b_rx).await.is_none());
        assert!(a
            .conns
            .lock()
            .unwrap()
            .contains_key(&(Proto::Tcp, m.remote)));
    }
}

#[cfg(test)]
mod ws_tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;

    const REGISTER: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK1\r\nFrom: <sip:101@127.0.0.1>;tag=1\r\nTo: <sip:101@127.0.0.1>\r\nCall-ID: w1\r\nCSeq: 1 REGISTER\r\nContact: <sip:x@df7jal23ls0d.invalid;transport=ws>\r\nMax-Forwards: 70\r\n\r\n";

    type Browser = WebSocketStream<tokio::io::DuplexStream>;

    /// The box's transports with one WebSocket served, and the browser's end of it.
    async fn served() -> (Transports, mpsc::Receiver<Incoming>, Browser, SocketAddr) {
        let (t, rx) = Transports::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let web: SocketAddr = "127.0.0.1:4021".parse().unwrap();
        t.set_ws_addr(web);
        let (box_end, browser_end) = tokio::io::duplex(200_000);
        let client = WebSocketStream::from_raw_socket(browser_end, Role::Client, None).await;
        let remote: SocketAddr = "127.0.0.44:50123".parse().unwrap();
        t.serve_ws(box_end, remote, web);
        (t, rx, client, remote)
    }

    async fn next_message(c: &mut Browser) -> Message {
        tokio::time::timeout(Duration::from_secs(2), c.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("well formed")
    }

    async fn forgotten(t: &Transports, remote: SocketAddr) {
        tokio::time::timeout(Duration::from_secs(2), async {
            while t.conns.lock().unwrap().contains_key(&(Proto::Wss, remote)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the connection is forgotten");
    }

    #[tokio::test]
    async fn each_websocket_message_is_one_sip_message_both_ways() {
        let (t, mut rx, mut c, remote) = served().await;
        // No Content-Length: the WebSocket message frames it (RFC 7118 5.1).
        c.send(Message::Text(REGISTER.into())).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.proto, Proto::Wss);
        assert_eq!(m.remote, remote);
        assert_eq!(m.local, "127.0.0.1:4021".parse().unwrap());
        assert_eq!(m.bytes, REGISTER.as_bytes());
        // Blank keep-alives and pings deliver nothing; a ping is answered.
        c.send(Message::Text("\r\n\r\n".into())).await.unwrap();
        c.send(Message::Ping(b"hi".to_vec())).await.unwrap();
        assert_eq!(next_message(&mut c).await, Message::Pong(b"hi".to_vec()));
        // Binary messages are SIP too.
        c.send(Message::Binary(REGISTER.as_bytes().to_vec()))
            .await
            .unwrap();
        let m = rx.recv().await.unwrap();
        assert_eq!(m.bytes, REGISTER.as_bytes());
        // What the box sends goes back over the same WebSocket, one message each.
        t.send(Proto::Wss, remote, b"SIP/2.0 200 OK\r\n\r\n".to_vec());
        t.send(Proto::Wss, remote, vec![b'S', 0xff]);
        assert_eq!(
            next_message(&mut c).await,
            Message::Text("SIP/2.0 200 OK\r\n\r\n".into())
        );
        assert_eq!(
            next_message(&mut c).await,
            Message::Binary(vec![b'S', 0xff])
        );
        // The box's address over WSS is the web server's.
        assert_eq!(
            t.local_for(Proto::Wss, remote),
            "127.0.0.1:4021".parse().unwrap()
        );
        // A message larger than any SIP message ends the connection, undelivered, with
        // a close frame saying so; the core hears that the connection is gone.
        c.send(Message::Text("x".repeat(WS_MAX_MESSAGE + 1)))
            .await
            .unwrap();
        match next_message(&mut c).await {
            Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1009),
            m => panic!("{m:?}"),
        }
        forgotten(&t, remote).await;
        let gone = rx.recv().await.unwrap();
        assert!(gone.closed && gone.bytes.is_empty() && gone.remote == remote);
    }

    /// Resident memory of this process, bytes.
    fn rss() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[tokio::test]
    async fn pings_to_a_peer_that_reads_nothing_cannot_grow_the_box() {
        let (t, mut rx) = Transports::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        // The browser's end holds 1 KiB and is never read.
        let (box_end, mut browser_end) = tokio::io::duplex(1024);
        let remote: SocketAddr = "127.0.0.45:50124".parse().unwrap();
        t.serve_ws(box_end, remote, "127.0.0.1:4021".parse().unwrap());
        // 200,000 masked pings of 125 bytes (26 MB): their pongs would pile up in the
        // box without a bound.
        let mut ping = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
        ping.extend(std::iter::repeat_n(0u8, 125));
        let burst = ping.repeat(1000);
        let before = rss();
        let flood = async {
            for _ in 0..200 {
                tokio::io::AsyncWriteExt::write_all(&mut browser_end, &burst)
                    .await
                    .unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(60), flood)
            .await
            .expect("the box keeps reading");
        let grown = rss().saturating_sub(before);
        assert!(grown < 12 << 20, "grew {grown} bytes");
        assert!(t.conns.lock().unwrap().contains_key(&(Proto::Wss, remote)));
        drop(browser_end);
        forgotten(&t, remote).await;
        assert!(rx.recv().await.unwrap().closed);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alives_do_not_stand_in_for_the_first_sip_message() {
        let (t, mut rx, mut c, remote) = served().await;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(12)).await;
            if c.send(Message::Text("\r\n".into())).await.is_err() {
                break;
            }
        }
        // 36 s of blank keep-alives and no SIP: closed at 30 s, "going away".
        match next_message(&mut c).await {
            Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
            m => panic!("{m:?}"),
        }
        forgotten(&t, remote).await;
        assert!(rx.recv().await.unwrap().closed);
    }

    #[tokio::test]
    async fn a_closed_websocket_is_answered_forgotten_and_never_reopened() {
        let (t, mut rx, mut c, remote) = served().await;
        c.close(None).await.unwrap();
        // The box answers the close (RFC 6455 5.5.1).
        assert!(matches!(next_message(&mut c).await, Message::Close(_)));
        forgotten(&t, remote).await;
        assert!(rx.recv().await.unwrap().closed);
        // Nothing is opened towards a browser.
        t.send(
            Proto::Wss,
            remote,
            b"OPTIONS sip:x SIP/2.0\r\n\r\n".to_vec(),
        );
        assert!(t.conns.lock().unwrap().is_empty());
    }

    #[test]
    fn wss_names() {
        assert_eq!(Proto::from_name("WSS"), Proto::Wss);
        assert_eq!(Proto::from_name("ws"), Proto::Wss);
        assert_eq!(Proto::Wss.via_name(), "WSS");
        assert_eq!(Proto::Wss.name(), "wss");
        assert_eq!(Proto::Wss.uri_param(), ";transport=ws");
        assert!(Proto::Wss.reliable() && Proto::Wss.connection_only());
        assert!(Proto::Tls.connection_only() && !Proto::Tcp.connection_only());
    }
}
