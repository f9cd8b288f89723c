//! The web admin (`/admin`), the user portal (`/`) and the REST API (`/api/v1`), over
//! HTTPS only.
//!
//! Owns: the HTTP surface, sessions, CSRF, the login rate limit, the security log
//! entries for logins, the certificate. Changes configuration only through
//! [`store::Configurator`], and asks the exchange for live state (registrations, calls)
//! through [`CoreRequest`] messages. Must not touch: SIP, media, the store's layout.
//!
//! warp 0.4 has no TLS of its own: we accept TCP, finish the rustls handshake, and let
//! hyper serve warp's filter on the TLS stream, passing the client address along.

// The OpenAPI document is one serde_json literal, deeper than the default limit.
#![recursion_limit = "256"]

mod api;
mod attendant_pages;
pub mod auth;
pub mod backup;
mod capture;
mod cert_pages;
pub mod certs;
mod conferences;
pub mod directory;
pub mod firewall;
mod history;
mod ipgroups;
mod log_pages;
mod music;
pub mod network;
pub mod openapi;
mod ops;
mod pages;
pub mod phone;
mod provisioning;
mod queues;
mod recordings;
pub mod remote;
mod routing;
mod routing_pages;
mod security;
pub mod sip_ws;
mod support;
mod tasks;
pub mod tls;
mod update;
mod voicemail;

use bytes::Bytes;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// Largest request body accepted (a configuration is far smaller).
pub const MAX_BODY: usize = 1 << 20;
/// Name of the session cookie.
pub const COOKIE: &str = "pbx_session";

/// Live state the web asks the exchange's loop for.
pub enum CoreRequest {
    /// Current registrations as JSON.
    Registrations(oneshot::Sender<Value>),
    /// Calls in progress as JSON.
    Calls(oneshot::Sender<Value>),
    /// Hang a call up; answers whether it was in progress.
    HangUp(u64, oneshot::Sender<bool>),
    /// NOTIFY these accounts with these resync events; answers how many were registered.
    Resync(Vec<(String, String)>, oneshot::Sender<usize>),
    /// Registration and keepalive state of SIP interfaces and links as JSON.
    Peers(oneshot::Sender<Value>),
    /// The state of each ISDN interface's span (D-channel, alarms, calls) by name.
    Spans(oneshot::Sender<Value>),
    /// The messages of this extension's voicemail box changed (one was deleted): the
    /// exchange counts them again for the message-waiting lamps.
    MailboxChanged(String),
    /// Uploaded music on hold files changed: collections using them are loaded again.
    MusicChanged,
    /// The certificates trusted besides the system's changed: TLS to providers and
    /// links checks against the new list.
    TrustChanged,
    /// Conference rooms with who is in them, as JSON.
    Conferences(oneshot::Sender<Value>),
    /// Mute (true) or unmute participant call `1` of room `0`; answers whether it was
    /// there.
    ConferenceMute(String, u64, bool, oneshot::Sender<bool>),
    /// Put participant call `1` out of room `0`; answers whether it was there.
    ConferenceKick(String, u64, oneshot::Sender<bool>),
    /// Calls waiting in parking slots, as JSON.
    Parked(oneshot::Sender<Value>),
    /// Call queues with their waiting callers, agents and figures, as JSON.
    Queues(oneshot::Sender<Value>),
    /// Extension `1` logs in to (true) or out of queue `0`; answers whether it could.
    QueueLogin(String, String, bool, oneshot::Sender<bool>),
    /// The SIP bans in force, as JSON.
    Bans(oneshot::Sender<Value>),
    /// Lift the SIP ban with key `0`, by user `1`; answers whether there was one.
    LiftBan(String, String, oneshot::Sender<bool>),
    /// A recovery is staged: stop and start again, which puts it in place.
    Restart,
    /// The browser phone of account `0` for the grant's user ([`phone`]): its grant
    /// renewed, or `1` (with a fresh secret) in its place; answers the secret in force
    /// and whether it is new.
    WebPhoneGrant(String, config::WebGrant, oneshot::Sender<(String, bool)>),
    /// Every extension's lamp for the operator panel, as JSON.
    Lamps(oneshot::Sender<Value>),
}

/// Knobs of the web server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sessions end after this long without a request.
    pub idle_timeout: Duration,
    /// Firmware version shown on the dashboard.
    pub version: String,
    /// Data directory (for the disk figures).
    pub data_dir: PathBuf,
    /// The system's root where the time zone and NTP servers are put in force (`/` on
    /// the box); `None` on a development machine: settings are saved, not applied.
    pub root: Option<PathBuf>,
    /// How long a firewall change that holds anything waits for its confirmation.
    pub firewall_confirm: Duration,
    /// The board (its profile's name, or the processor architecture): what a backup's
    /// manifest says it was made on.
    pub board: String,
    /// What became of a recovery put in place at this start: `Ok` with the backup in
    /// words when it came up, `Err` with why it was rolled back (the Backup page says).
    pub recovery: Option<Result<String, String>>,
    /// The daemon's logs (the files, searched and cleared from the Logs page).
    pub logs: Arc<logs::Logs>,
    /// The packet capture program (`tcpdump`).
    pub tcpdump: PathBuf,
    /// How long a network change waits for its confirmation before it is rolled back.
    pub network_confirm: Duration,
    /// Where the kernel's sysfs is (`/sys`): the DAHDI cards and spans found.
    pub dahdi_sys: PathBuf,
}

/// Everything the handlers share.
pub struct App {
    cfg: Arc<store::Configurator>,
    prov: Arc<provision::Provisioner>,
    core: mpsc::Sender<CoreRequest>,
    sessions: Mutex<auth::Sessions>,
    limiter: Mutex<auth::LoginLimiter>,
    started: Instant,
    settings: Settings,
    updater: Arc<system::update::Updater>,
    /// The packet capture (Network page).
    capture: Arc<system::capture::Capturer>,
    /// The directory's last synchronisation.
    directory: directory::Shared,
    /// Network changes one at a time, and the one on trial.
    net_lock: tokio::sync::Mutex<()>,
    net_pending: Mutex<Option<network::Pending>>,
    /// What the servers present (set by the driver once they run).
    active_cert: std::sync::OnceLock<Arc<tls::ActiveCert>>,
    /// What puts the firewall in force (set by the driver).
    firewall: std::sync::OnceLock<Arc<system::firewall::Enforcer>>,
    /// A firewall change on trial.
    fw_pending: Mutex<Option<firewall::Pending>>,
    /// Held across a configuration change and its trial's bookkeeping, a confirmation
    /// and a rollback, so that none of them sees another half done.
    fw_lock: tokio::sync::Mutex<()>,
}

impl App {
    /// A web application over the configurator and the exchange's request channel.
    pub fn new(
        cfg: Arc<store::Configurator>,
        core: mpsc::Sender<CoreRequest>,
        settings: Settings,
        prov: Arc<provision::Provisioner>,
        updater: Arc<system::update::Updater>,
    ) -> Arc<App> {
        Arc::new(App {
            cfg,
            prov,
            core,
            sessions: Mutex::new(auth::Sessions::new(settings.idle_timeout)),
            limiter: Mutex::new(auth::LoginLimiter::new()),
            started: Instant::now(),
            capture: system::capture::Capturer::new(settings.tcpdump.clone(), &settings.data_dir),
            net_lock: tokio::sync::Mutex::new(()),
            directory: Default::default(),
            net_pending: Mutex::new(None),
            settings,
            updater,
            active_cert: std::sync::OnceLock::new(),
            firewall: std::sync::OnceLock::new(),
            fw_pending: Mutex::new(None),
            fw_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// What puts the firewall's settings in force (its status is shown on the page).
    pub fn set_firewall(&self, e: Arc<system::firewall::Enforcer>) {
        let _ = self.firewall.set(e);
    }

    /// The certificate the web and SIP over TLS present, so that making another one
    /// active takes effect at once.
    pub fn set_active_cert(&self, a: Arc<tls::ActiveCert>) {
        let _ = self.active_cert.set(a);
    }

    pub(crate) fn active_cert(&self) -> Option<&tls::ActiveCert> {
        self.active_cert.get().map(|a| a.as_ref())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, auth::Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, auth::LoginLimiter> {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the exchange; `None` when it does not answer within five seconds.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> CoreRequest) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.core.send(make(tx)).await.ok()?;
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .ok()?
            .ok()
    }

    /// Tells the exchange something that needs no answer (dropped when its queue is
    /// full: the next change tells it again).
    fn tell(&self, request: CoreRequest) {
        let _ = self.core.try_send(request);
    }

    fn security(&self, address: IpAddr, username: &str, event: &str) {
        let e = store::SecurityEntry {
            when: unix_now(),
            address: address.to_string(),
            username: username.chars().take(64).collect(),
            event: event.into(),
        };
        if let Err(err) = self.cfg.store().security_event(&e) {
            tracing::warn!("security log: {err}");
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One HTTP request, read whole.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub addr: IpAddr,
    /// The box address and port the client connected to.
    pub local: SocketAddr,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    fn changes_state(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }

    /// A cross-site request announces another origin; refuse those outright.
    fn origin_ok(&self) -> bool {
        let Some(origin) = self.header("origin") else {
            return true;
        };
        let Some(host) = self.header("host") else {
            return false;
        };
        let o = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .unwrap_or("");
        o.eq_ignore_ascii_case(host)
    }

    /// Name/value pairs of an urlencoded form body.
    fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Who is asking: a live session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    token: String,
    session: auth::Session,
    user: config::User,
    /// Whether the firewall's settings allow the web admin from the request's address
    /// (an administrator elsewhere is a portal user there).
    admin_here: bool,
}

impl Caller {
    fn role(&self) -> config::Role {
        self.user.role
    }
    fn can_read_admin(&self) -> bool {
        self.admin_here
            && matches!(
                self.role(),
                config::Role::Administrator | config::Role::Auditor
            )
    }
    fn can_write_admin(&self) -> bool {
        self.admin_here && self.role() == config::Role::Administrator
    }
}

/// The session behind the request's cookie, if it is live and its user may still log in.
fn caller(app: &App, req: &Req) -> Option<Caller> {
    let token = req.cookie(COOKIE)?;
    let session = app.sessions().touch(Instant::now(), token)?;
    let snap = app.cfg.snapshot();
    let user = snap
        .config
        .user(&session.username)
        .filter(|u| u.enabled && (!u.password_hash.is_empty() || !u.directory_dn.is_empty()))
        .cloned();
    match user {
        Some(user) if firewall::web_allowed(&snap.config, user.role, req.addr) => Some(Caller {
            token: token.to_string(),
            session,
            user,
            admin_here: firewall::admin_allowed(&snap.config, req.addr),
        }),
        // A session from an address the firewall's settings no longer allow: no rights
        // there (it stays open for the address it may still be used from).
        Some(_) => None,
        None => {
            app.sessions().close(token);
            None
        }
    }
}

/// Whether a state-changing request carries the session's CSRF token (header, or the
/// `csrf` field of a form).
fn csrf_ok(req: &Req, c: &Caller, form: Option<&[(String, String)]>) -> bool {
    let sent = req
        .header("x-csrf-token")
        .map(str::to_string)
        .or_else(|| form.and_then(|f| f.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.clone())));
    sent.is_some_and(|t| auth::same(&t, &c.session.csrf))
}

/// Why a login failed.
enum LoginError {
    Blocked(u64),
    Wrong,
    /// The firewall's settings keep this user's part of the web from the address.
    NotHere(IpAddr),
}

/// Checks a user name and password, with the rate limit and the security log; opens a
/// session on success.
async fn login(
    app: &Arc<App>,
    addr: IpAddr,
    username: &str,
    password: &str,
) -> Result<(String, auth::Session, config::User), LoginError> {
    if let Some(secs) = app.limiter().blocked(Instant::now(), addr) {
        return Err(LoginError::Blocked(secs));
    }
    let user = app.cfg.snapshot().config.user(username).cloned();
    let pw = password.to_string();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = match &user {
        // A directory user's password is the directory's (Kerio 11).
        Some(u) if !u.directory_dn.is_empty() => directory::check(app, u, password).await,
        _ => tokio::task::spawn_blocking(move || match hash {
            Some(h) => auth::verify_password(&h, &pw),
            None => {
                auth::verify_nobody(&pw);
                false
            }
        })
        .await
        .unwrap_or(false),
    };
    match user {
        Some(u)
            if ok
                && u.enabled
                && !firewall::web_allowed(&app.cfg.snapshot().config, u.role, addr) =>
        {
            app.limiter().succeeded(addr);
            app.security(
                addr,
                &u.username,
                "login refused: the firewall does not allow the web from this address",
            );
            Err(LoginError::NotHere(addr))
        }
        Some(u) if ok && u.enabled => {
            app.limiter().succeeded(addr);
            let (token, s) = app.sessions().open(Instant::now(), &u.username, addr);
            app.security(addr, &u.username, "session opened");
            Ok((token, s, u))
        }
        other => {
            let why = match other {
                Some(u) if ok && !u.enabled => "login refused: account disabled",
                Some(_) => "login failed: wrong password",
                None => "login failed: unknown user",
            };
            app.security(addr, username, why);
            if app.limiter().failed(Instant::now(), addr) {
                app.security(
                    addr,
                    username,
                    "address blocked after repeated failed logins",
                );
            }
            Err(LoginError::Wrong)
        }
    }
}

fn session_cookie(token: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict{age}"
    ))
    .expect("cookie is ASCII")
}

/// A JSON answer with a status.
fn json_reply(status: StatusCode, v: &Value) -> Response {
    warp::reply::with_status(warp::reply::json(v), status).into_response()
}

/// An error as the API reports it: `{"error": ..., "field": ...}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }
    fn field(status: StatusCode, field: &str, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: Some(field.into()),
        }
    }
    fn bad(field: &str, error: impl Into<String>) -> Self {
        Self::field(StatusCode::BAD_REQUEST, field, error)
    }
    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }
    fn into_response(self) -> Response {
        let mut v = json!({"error": self.error});
        if let Some(f) = self.field {
            v["field"] = Value::String(f);
        }
        json_reply(self.status, &v)
    }
}

impl From<store::ChangeError> for ApiError {
    fn from(e: store::ChangeError) -> Self {
        use store::ChangeError as C;
        match e {
            C::NotFound(m) => ApiError::not_found(m),
            C::Conflict { field, message } => {
                ApiError::field(StatusCode::CONFLICT, &field, message)
            }
            C::Field { field, message } => ApiError::bad(&field, message),
            C::Invalid(v) => {
                let field = v.0.first().map(|f| f.field.clone()).unwrap_or_default();
                ApiError::bad(&field, v.to_string())
            }
            C::Store(s) => {
                tracing::error!("store: {s}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("cannot store the change: {s}"),
                )
            }
        }
    }
}

fn add_security_headers(r: &mut Response) {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "strict-transport-security", "max-age=31536000");
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(
        h,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
}

/// Routes one request.
pub async fn handle(app: Arc<App>, req: Req) -> Response {
    let prov_get = req.method == Method::GET || req.method == Method::HEAD;
    let mut r = if let Some(refused) = firewall::refusal(&app, &req) {
        refused
    } else if let (Some(name), true) = (req.path.strip_prefix("/prov/"), prov_get) {
        let name = name.to_string();
        provisioning::prov(&app, &req, &name).await
    } else if req.path == "/api/v1" || req.path.starts_with("/api/v1/") {
        api::handle(&app, &req).await
    } else if req.path.starts_with("/api/") {
        ApiError::not_found("no such API route").into_response()
    } else {
        pages::handle(&app, &req).await
    };
    add_security_headers(&mut r);
    r
}

/// The client address a connection carried, put on each request by [`serve`].
#[derive(Debug, Clone, Copy)]
struct ClientAddr(SocketAddr, SocketAddr);

#[derive(Debug)]
struct TooLarge;
impl warp::reject::Reject for TooLarge {}

/// Refuses a declared body over [`MAX_BODY`] before reading it, so the client gets the
/// 413 instead of a reset in the middle of its upload (and no `100 Continue`). Chunked
/// bodies are cut off at the limit while they are read.
fn declared_length_ok() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::method())
        .and(warp::path::full())
        .and_then(
            |len: Option<u64>, m: Method, p: warp::path::FullPath| async move {
                if len.is_some_and(|l| l > body_limit(&m, p.as_str()) as u64) {
                    Err(warp::reject::custom(TooLarge))
                } else {
                    Ok(())
                }
            },
        )
        .untuple_one()
}

/// A request body cut at `limit`. What comes past the limit is read and thrown away
/// (up to 16 times the limit) and the body then ends in an error, which answers 413:
/// a client still uploading when the answer came would otherwise get its connection
/// reset and lose the 413 (lingering close, as web servers do it).
struct Capped<B> {
    inner: B,
    seen: usize,
    limit: usize,
}

impl<B> Capped<B> {
    fn new(inner: B, limit: usize) -> Self {
        Capped {
            inner,
            seen: 0,
            limit,
        }
    }
}

impl<B> hyper::body::Body for Capped<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            let frame = match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) if this.seen > this.limit => {
                    return Poll::Ready(Some(Err("request body too large".into())))
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(f))) => f,
            };
            if let Some(d) = frame.data_ref() {
                this.seen = this.seen.saturating_add(d.len());
            }
            if this.seen > this.limit.saturating_mul(16) {
                return Poll::Ready(Some(Err("request body far too large".into())));
            }
            if this.seen <= this.limit {
                return Poll::Ready(Some(Ok(frame)));
            }
            // Past the limit: keep reading, keep nothing.
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.seen <= self.limit
    }
}

/// The largest body a request may carry: firmware uploads are big, the rest is small.
fn body_limit(m: &Method, path: &str) -> usize {
    if provisioning::big_body(m, path) {
        provisioning::MAX_FIRMWARE
    } else if update::big_body(m, path) {
        update::MAX_BUNDLE
    } else if voicemail::big_body(m, path) {
        voicemail::MAX_GREETING_BODY
    } else if music::big_body(m, path) {
        music::MAX_MUSIC_BODY
    } else if backup::big_body(m, path) {
        backup::MAX_BACKUP
    } else {
        MAX_BODY
    }
}

/// The whole site as one warp filter (also what the tests drive).
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let addr = warp::ext::optional::<ClientAddr>()
        .and(warp::addr::remote())
        .map(|mine: Option<ClientAddr>, warp_addr: Option<SocketAddr>| {
            let peer = mine
                .map(|c| c.0)
                .or(warp_addr)
                .map(|a| a.ip())
                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let local = mine
                .map(|c| c.1)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 4021)));
            (peer, local)
        });
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .map(move || app.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(declared_length_ok())
        .and(warp::body::bytes())
        .and(addr)
        .then(
            |app: Arc<App>,
             method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body: Bytes,
             (addr, local): (IpAddr, SocketAddr)| async move {
                let req = Req {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                    body,
                    addr,
                    local,
                };
                handle(app, req).await
            },
        )
        .recover(|_rej: warp::Rejection| async move {
            // Only the body can be refused before our handler runs: too large or broken.
            let mut r = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body unreadable or larger than this request may carry \
                 (1 MiB; a greeting 32 MiB; firmware more)",
            )
            .into_response();
            add_security_headers(&mut r);
            Ok::<_, std::convert::Infallible>(r)
        })
        .unify()
}

/// Serves the site over TLS on `listener` until the task is dropped, and SIP over
/// WebSocket at [`sip_ws::PATH`] through `sip`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    sip: sip_ws::SipWs,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let service = warp::service(routes(app.clone()));
    // Bounds the memory a flood of connections can take.
    let slots = Arc::new(tokio::sync::Semaphore::new(256));
    // One firmware-sized upload at a time bounds what uploads can take.
    let uploads = Arc::new(tokio::sync::Semaphore::new(1));
    loop {
        let (tcp, peer, permit) = accept_bounded(&listener, &slots, "web").await;
        let acceptor = acceptor.clone();
        let service = service.clone();
        let uploads = uploads.clone();
        let (app, sip) = (app.clone(), sip.clone());
        let local = tcp
            .local_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        tokio::spawn(async move {
            let _permit = permit;
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    // SIP over WebSocket: held like the rest of the web, never routed.
                    let ws = if sip_ws::wanted(req.uri().path()) {
                        let mut r = match firewall::refusal_at(&app, sip_ws::PATH, peer.ip()) {
                            Some(r) => r,
                            None => sip_ws::upgrade(
                                &mut req,
                                peer,
                                local,
                                &sip,
                                &app.cfg.snapshot().config,
                            ),
                        };
                        add_security_headers(&mut r);
                        Some(r)
                    } else {
                        None
                    };
                    req.extensions_mut().insert(ClientAddr(peer, local));
                    let limit = body_limit(req.method(), req.uri().path());
                    let req = req.map(|b| Capped::new(b, limit));
                    let mut service = service.clone();
                    let uploads = uploads.clone();
                    async move {
                        if let Some(r) = ws {
                            return Ok(r);
                        }
                        let _big = if limit > MAX_BODY {
                            Some(uploads.acquire_owned().await)
                        } else {
                            None
                        };
                        tower_service::Service::call(&mut service, req).await
                    }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(20))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            // Nobody keeps a connection for more than ten minutes.
            let _ = tokio::time::timeout(Duration::from_secs(600), conn).await;
        });
    }
}

/// The next connection on `listener` that finds a free slot in `slots` (one beyond them
/// is closed at once); after an accept error (no descriptors left, say) it waits 100 ms.
async fn accept_bounded(
    listener: &tokio::net::TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
    what: &str,
) -> (
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => return (tcp, peer, permit),
                Err(_) => drop(tcp),
            },
            Err(e) => {
                tracing::warn!("{what} accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answers plain HTTP on `listener` with a redirect to the same path over HTTPS on
/// `https_port`, so typing the box's address is enough (Kerio 3.1).
pub async fn serve_redirect(listener: tokio::net::TcpListener, https_port: u16) {
    let filter = warp::path::full()
        .and(warp::header::optional::<String>("host"))
        .map(move |path: warp::path::FullPath, host: Option<String>| {
            let host = host
                .as_deref()
                .map(strip_port)
                .filter(|h| valid_host(h))
                .unwrap_or("10.10.10.1")
                .to_string();
            let location = format!("https://{host}:{https_port}{}", path.as_str());
            let mut r = warp::reply::with_status("", StatusCode::MOVED_PERMANENTLY).into_response();
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/")),
            );
            r
        });
    // Served as the HTTPS side is (HTTP/1.1 by hyper, warp's filter as the service), not
    // by `warp::serve`: that one also speaks HTTP/2, whose code (some 0.5 MB) nothing else
    // in the box uses, and sets no bound on connections or slow headers.
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = warp::service(filter);
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    loop {
        let (tcp, _, permit) = accept_bounded(&listener, &slots, "web redirect").await;
        // The service is Copy (the filter is a closure over the port): each connection
        // and each request gets its own copy.
        tokio::spawn(async move {
            let _permit = permit;
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut service = service;
                    async move { tower_service::Service::call(&mut service, req).await }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(tcp), svc);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        // [v6] or [v6]:port
        return h.find(']').map_or(h, |i| &h[..=i]);
    }
    h.rsplit_once(':').map_or(h, |(a, _)| a)
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// The console's recovery path (`pbxctl admin-password`): gives the administrator
/// account `Admin` a new password, creating or re-enabling it as an administrator.
pub fn reset_admin_password(
    cfg: &store::Configurator,
    who: &str,
    password: &str,
) -> Result<u64, String> {
    if let Some(why) = config::weak_secret_reason(password) {
        return Err(format!("password too weak: {why}"));
    }
    let hash = auth::hash_password(password);
    cfg.change(who, "reset the administrator password", unix_now(), |c| {
        ops::set_admin(c, hash);
        Ok(())
    })
    .map(|(rev, ())| rev)
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_hosts() {
        assert_eq!(strip_port("10.0.0.1:80"), "10.0.0.1");
        assert_eq!(strip_port("pbx.local"), "pbx.local");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert!(!valid_host("evil.com/x"));
        assert!(valid_host("[::1]"));
    }
}
