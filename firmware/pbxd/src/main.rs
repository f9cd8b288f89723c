//! pbxd: the exchange daemon.
//!
//! Owns the runtime: opens the store, publishes configuration snapshots, drives the
//! sans-IO exchange core with the SIP transports and a clock, serves the local control
//! socket (`DATA/control.sock`, mode 0600) and persists registrations sparingly.

mod control;
mod dns;
mod history;
mod isdn;
mod mail;
mod mailboxes;
mod music;
mod recordings;

use anyhow::{bail, Context, Result};
use clap::Parser;
use config::Snapshot;
use pbx::{Pbx, Settings, Source};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(name = "pbxd", version, about = "PBX appliance daemon")]
struct Args {
    /// Data directory: the store, the control socket.
    #[arg(long)]
    data_dir: PathBuf,
    /// SIP address for UDP and TCP.
    #[arg(long, default_value = "0.0.0.0:5060")]
    sip: SocketAddr,
    /// SIP over TLS address (default: the SIP address with the next port, 5061 beside
    /// 5060), or `off`.
    #[arg(long)]
    sip_tls: Option<String>,
    /// RTP port range, LOW-HIGH.
    #[arg(long, default_value = "10000-20000")]
    rtp_ports: String,
    /// Digest realm.
    #[arg(long, default_value = "pbx")]
    realm: String,
    /// Digest algorithms offered in challenges, in order (md5, sha-256). Both are always
    /// accepted in answers; older phones fail when offered one they do not know.
    #[arg(long, default_value = "md5", value_delimiter = ',')]
    digest: Vec<String>,
    /// Wrong SIP passwords or unknown users from one source within a minute before it
    /// is ignored for ten minutes (an hour, a day when it does it again; 0 disables).
    /// Challenges never count against an address a phone authenticated from.
    #[arg(long, default_value_t = 10)]
    ban_after: u32,
    /// SIP requests a second from one address (twice as many in a burst) before an
    /// address no phone authenticated from is banned, and a trusted one's excess
    /// dropped (0: no limit; benchmarks).
    #[arg(long, default_value_t = 300)]
    sip_rate_limit: u32,
    /// Seconds an extension rings before the caller gets 480.
    #[arg(long, default_value_t = 60)]
    ring_timeout: u64,
    /// Music on hold: a folder of WAV (or raw G.711) files played in name order to a
    /// held party; without one a soft chime is played.
    #[arg(long, default_value = "/usr/share/asterisk/moh")]
    music_on_hold: PathBuf,
    /// System prompts: the prompt set (a folder of named WAV files, one folder a
    /// language) that voicemail plays.
    #[arg(long, default_value = "/usr/share/asterisk/sounds/en")]
    prompts: PathBuf,
    /// HTTPS address of the web admin (/admin), user portal (/) and API (/api/v1).
    #[arg(long, default_value = "0.0.0.0:4021")]
    web: SocketAddr,
    /// Plain HTTP address that redirects to HTTPS (the box uses 0.0.0.0:80).
    #[arg(long)]
    web_redirect: Option<SocketAddr>,
    /// Minutes without a request before a web session ends.
    #[arg(long, default_value_t = 30)]
    web_idle: u64,
    /// TFTP address phones fetch their configuration from (DHCP option 66).
    #[arg(long, default_value = "0.0.0.0:69")]
    tftp: SocketAddr,
    /// Name server for providers' and links' host names (default: the system's).
    #[arg(long)]
    dns: Option<SocketAddr>,
    /// Seconds before a failed registration to a provider is tried again (doubles up
    /// to 30 minutes).
    #[arg(long, default_value_t = 30)]
    register_retry: u64,
    /// Hardware watchdog device to feed while the loop runs (the box: /dev/watchdog).
    #[arg(long)]
    watchdog: Option<PathBuf>,
    /// Seconds the watchdog waits for a feed before it resets the board.
    #[arg(long, default_value_t = 30)]
    watchdog_timeout: u32,
    /// Once healthy (store open, SIP and web listening, ISDN spans opened), mark the
    /// booted firmware slot good with RAUC, so GRUB keeps booting it.
    #[arg(long)]
    confirm_slot: bool,
    /// Where the kernel command line is read (`rauc.slot=` says RAUC's boot selection
    /// booted us); tests point it elsewhere.
    #[arg(long, default_value = "/proc/cmdline", hide = true)]
    kernel_cmdline: PathBuf,
    /// RAUC's command line program (firmware updates).
    #[arg(long, default_value = "rauc")]
    rauc: PathBuf,
    /// Seconds a network change made in the web admin waits for its confirmation before
    /// the box goes back to the settings from before it (tests shorten it).
    #[arg(long, default_value_t = 90, hide = true)]
    network_confirm: u64,
    /// Manage the ISDN cards (the box): load DAHDI and the board's card drivers at start,
    /// write `--dahdi-conf` from the ISDN interfaces and run `dahdi_cfg` on it at start
    /// and whenever it changes. Without it (a development machine) the cards found are
    /// only listed.
    #[arg(long)]
    dahdi: bool,
    /// The file `dahdi_cfg` reads.
    #[arg(long, default_value = "/etc/dahdi/system.conf")]
    dahdi_conf: PathBuf,
    /// `dahdi_cfg` (tests give a stand-in).
    #[arg(long, default_value = "dahdi_cfg", hide = true)]
    dahdi_cfg: PathBuf,
    /// `modprobe` (tests give a stand-in).
    #[arg(long, default_value = "modprobe", hide = true)]
    modprobe: PathBuf,
    /// Where the kernel's sysfs is (tests give a fake one).
    #[arg(long, default_value = "/sys", hide = true)]
    sys: PathBuf,
    /// The card drivers to load (default: the board profile's).
    #[arg(long, value_delimiter = ',', hide = true)]
    dahdi_drivers: Option<Vec<String>>,
    /// The packet capture program (the Network page's packet sniffer).
    #[arg(long, default_value = "tcpdump")]
    tcpdump: PathBuf,
    /// Copy the kernel's messages from here (`/dev/kmsg` on the box) into the kernel
    /// log on /data. Without it (a development machine) the kernel log stays empty.
    #[arg(long)]
    kernel_log: Option<PathBuf>,
    /// The system root where time zone and NTP settings are put in force (`/` on the
    /// box). Without it (a development machine) they are only saved.
    #[arg(long)]
    system_root: Option<PathBuf>,
    /// Put the firewall's settings in force through nftables (the box). Without it (a
    /// development machine, the tests) they are saved and the web server holds its own
    /// paths to them, but the host's packet filter is left alone.
    #[arg(long)]
    firewall: bool,
    /// Seconds a firewall change that holds anything waits for its confirmation
    /// before it is rolled back (tests shorten the minute).
    #[arg(long, default_value_t = 60, hide = true)]
    firewall_confirm: u64,
    /// nftables' command line program.
    #[arg(long, default_value = "nft")]
    nft: PathBuf,
    /// What restarts the box after a firmware update.
    #[arg(long, default_value = "/sbin/reboot")]
    reboot_command: String,
}

/// Seconds the box's local time (its time zone, `/etc/localtime`) is ahead of UTC now.
fn utc_offset() -> i64 {
    let now: nix::libc::time_t = unix_now() as nix::libc::time_t;
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset re-reads the zone (glibc's localtime_r alone keeps the one it read
    // first; the System page replaces /etc/localtime at run time); localtime_r writes
    // only into `tm`, which lives on this stack frame.
    unsafe { tzset() };
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !nix::libc::localtime_r(&now, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s
        .split_once('-')
        .context("--rtp-ports must be LOW-HIGH, for example 10000-20000")?;
    let (a, b): (u16, u16) = (
        a.trim().parse().context("--rtp-ports LOW is not a port")?,
        b.trim().parse().context("--rtp-ports HIGH is not a port")?,
    );
    if a < 1024 || b <= a + 4 {
        bail!("--rtp-ports must lie above 1023 and hold at least two port pairs");
    }
    Ok((a, b))
}

/// What goes to stderr: `RUST_LOG`'s targets and levels (`info,pbx=debug,sled=warn`), or
/// `info` when it is unset or not understood. Targets only, no span or field filters: the
/// `EnvFilter` that reads those brings a whole regular-expression engine into the binary.
fn stderr_filter(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    let info = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    let Some(s) = rust_log else {
        return info();
    };
    // As EnvFilter read it: spaces around a directive and empty ones do not count (for
    // Targets an empty directive is every target at TRACE).
    let directives: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return info();
    }
    if directives.iter().any(|d| d.contains(['[', ']', '{', '}'])) {
        eprintln!("RUST_LOG={s:?}: span and field filters are not read; logging at info");
        return info();
    }
    directives.join(",").parse().unwrap_or_else(|e| {
        eprintln!("RUST_LOG={s:?} is not understood ({e}); logging at info");
        info()
    })
}

/// After a flood the exchange's tables shrink, but glibc's allocator keeps the freed
/// pages in its arenas (some 50 MB after 30 s of 2,000 calls/s): `malloc_trim` returns
/// them to the system, on a blocking thread (it walks every arena). Other C libraries
/// return memory on their own terms.
fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only releases free memory of the allocator's own arenas;
        // it takes each arena's lock like malloc does.
        unsafe { nix::libc::malloc_trim(0) };
    });
}

/// Puts the newest published configuration in force.
fn take_snapshot(
    rx: &mut tokio::sync::watch::Receiver<Arc<Snapshot>>,
    core: &mut Pbx,
    spans: &mut isdn::Spans,
    dns: &tokio::sync::mpsc::Sender<(pbx::Lookup, Vec<std::net::SocketAddr>)>,
    voicemail: &std::path::Path,
    collections: &mut music::Collections,
) {
    let snap = rx.borrow_and_update().clone();
    collections.reconcile(&snap.config);
    tracing::info!(revision = snap.revision, "configuration in force");
    retire_boxes(voicemail, &snap, unix_now());
    spans.reconcile(&snap.config);
    let old = core.set_snapshot(spans.for_core(snap));
    // Freeing the configuration it replaced (7 % of the loop's time in a change with
    // 10,000 extensions) is not the exchange's work: SIP waits for none of it.
    tokio::task::spawn_blocking(move || drop(old));
    resolve(core, dns);
}

/// Moves the voicemail boxes of extensions that no longer exist aside, to
/// `<voicemail>/removed/<number>-<unix seconds>`: kept for the administrator, out of
/// reach of whoever is given the number next (their portal, their callers).
fn retire_boxes(dir: &std::path::Path, snap: &Snapshot, unix: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().to_string();
        let a_box = !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
        if !a_box || !e.path().is_dir() || snap.extension(&name).is_some() {
            continue;
        }
        let to = dir.join("removed").join(format!("{name}-{unix}"));
        match std::fs::create_dir_all(dir.join("removed"))
            .and_then(|()| std::fs::rename(e.path(), &to))
        {
            Ok(()) => {
                tracing::info!(extension = name, to = %to.display(), "voicemail box of a removed extension moved aside")
            }
            Err(err) => tracing::warn!(
                extension = name,
                "cannot move the box of a removed extension aside: {err}"
            ),
        }
    }
}

/// Whom SIP over TLS trusts: the system's roots and the administrator's CAs (how many
/// in all).
fn sip_trust(data_dir: &std::path::Path) -> std::io::Result<(Arc<rustls::ClientConfig>, usize)> {
    web::tls::client_config(data_dir)
}

/// Starts SIP over TLS with the web's certificate, trusting the system's roots and the
/// administrator's CAs. A port that cannot be bound leaves SIP over UDP and TCP working.
async fn listen_sip_tls(
    args: &Args,
    transports: &sip::transport::Transports,
    active: Arc<web::tls::ActiveCert>,
) {
    let listen = match args.sip_tls.as_deref() {
        Some("off") => return,
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("--sip-tls {a:?}: {e}; SIP over TLS is off");
                return;
            }
        },
        None => SocketAddr::new(args.sip.ip(), args.sip.port().wrapping_add(1).max(1)),
    };
    let made = web::tls::server_config_active(active, &[]).and_then(|server| {
        let (client, roots) = sip_trust(&args.data_dir)?;
        Ok((server, client, roots))
    });
    let (server, client, roots) = match made {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("SIP over TLS is off: {e}");
            return;
        }
    };
    let settings = sip::transport::TlsSettings {
        listen,
        server,
        client,
    };
    match transports.listen_tls(settings).await {
        Ok(a) => tracing::info!(tls = %a, trusted = roots, "SIP over TLS"),
        Err(e) => tracing::error!("cannot bind SIP over TLS on {listen}: {e}; SIP over TLS is off"),
    }
}

/// The ISDN cards (the box): DAHDI and the board's drivers loaded once, then
/// `system.conf` written from the ISDN interfaces and `dahdi_cfg` run whenever it
/// changes (at start, after a configuration change, and when the spans the kernel
/// found change: a card's driver may come up after pbxd).
async fn follow_dahdi(
    mut rx: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    dahdi: system::dahdi::Dahdi,
    drivers: Vec<String>,
) {
    let d = dahdi.clone();
    let names: Vec<&str> = drivers.iter().map(String::as_str).collect();
    match tokio::task::spawn_blocking({
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        move || d.load_modules(&names.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    {
        Ok(Ok(())) if !drivers.is_empty() => tracing::info!(?drivers, "DAHDI drivers loaded"),
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(?drivers, "cannot load the DAHDI drivers: {e}"),
        Err(e) => tracing::error!("DAHDI drivers: {e}"),
    }
    let mut said: Vec<String> = Vec::new();
    // What this run applied: nothing yet (after a boot the kernel's spans are bare).
    let mut last: Option<String> = None;
    loop {
        let cfg = rx.borrow_and_update().config.clone();
        let d = dahdi.clone();
        let mut held = last.take();
        let r = tokio::task::spawn_blocking(move || {
            let spans = system::dahdi::scan(&d.sys);
            let (text, problems) = system::dahdi::system_conf(&cfg, &spans);
            // No card: nothing for dahdi_cfg to do.
            let applied = if spans.is_empty() {
                Ok(false)
            } else {
                d.apply(&text, &mut held)
            };
            (applied, problems, held)
        })
        .await;
        match r {
            Ok((applied, problems, held)) => {
                last = held;
                if problems != said {
                    for p in &problems {
                        tracing::warn!("ISDN card: {p}");
                    }
                    said = problems;
                }
                match applied {
                    Ok(true) => {
                        tracing::info!(conf = %dahdi.conf.display(), "dahdi_cfg applied the ISDN spans")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!("ISDN spans not configured: {e}"),
                }
            }
            Err(e) => tracing::error!("DAHDI: {e}"),
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            // The spans the kernel found may change (a driver loading late).
            () = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// Keeps the logs' debug classes, rotation and syslog server in step with the
/// configuration, and a TLS syslog server checked against the trust in force.
async fn follow_log_settings(
    mut rx: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    logs: Arc<logs::Logs>,
    data_dir: std::path::PathBuf,
    trust_changed: Arc<tokio::sync::Notify>,
) {
    let mut last: Option<config::LogSettings> = None;
    let mut trust: Option<Arc<rustls::ClientConfig>> = None;
    let mut new_trust = true;
    loop {
        let s = rx.borrow_and_update().config.logs.clone();
        if last.as_ref() != Some(&s) || new_trust {
            if s.syslog.enabled && s.syslog.transport == config::SyslogTransport::Tls {
                if trust.is_none() || new_trust {
                    match sip_trust(&data_dir) {
                        Ok((c, _)) => trust = Some(c),
                        Err(e) => tracing::error!("syslog over TLS: {e}"),
                    }
                }
                new_trust = false;
            }
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            logs.apply(&s, host.trim(), trust.clone());
            last = Some(s);
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            () = trust_changed.notified() => new_trust = true,
        }
    }
}

/// Keeps the firewall's nftables table in step with the configuration: loads it at
/// start and again whenever the settings, the groups they name or the ports change.
async fn enforce_firewall(
    mut rx: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    enforcer: Arc<system::firewall::Enforcer>,
    ports: system::firewall::Ports,
) {
    let mut last: Option<serde_json::Value> = None;
    loop {
        let snap = rx.borrow_and_update().clone();
        let rules = system::firewall::ruleset(&snap.config, &ports);
        if last.as_ref() != Some(&rules) {
            let e = enforcer.clone();
            let r2 = rules.clone();
            let rev = snap.revision;
            match tokio::task::spawn_blocking(move || e.apply(rev, &r2)).await {
                Ok(Ok(n)) => {
                    tracing::info!(revision = rev, rules = n, "firewall in force");
                    last = Some(rules);
                }
                Ok(Err(e)) => tracing::error!(revision = rev, "firewall not in force: {e}"),
                Err(e) => tracing::error!("firewall: {e}"),
            }
        } else {
            enforcer.unchanged(snap.revision);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Looks up the peers whose host is a DNS name (RFC 3263: NAPTR, SRV, then A/AAAA);
/// the answers come back to the loop through `dns`.
/// Hands what the SIP transports received to the core: a message, or the end of a
/// peer's WebSocket.
fn deliver(core: &mut Pbx, m: sip::transport::Incoming) {
    let src = Source {
        proto: m.proto,
        remote: m.remote,
        local: m.local,
    };
    if m.closed {
        core.connection_closed(src);
    } else {
        // Written only when the technician switched the "sip" debug class on.
        tracing::debug!(
            target: "sip_messages",
            "in from {}:{} at {}:\n{}",
            m.proto.name(),
            m.remote,
            m.local,
            String::from_utf8_lossy(&m.bytes)
        );
        core.handle_message(Instant::now(), src, &m.bytes);
    }
}

fn resolve(core: &Pbx, dns: &tokio::sync::mpsc::Sender<(pbx::Lookup, Vec<std::net::SocketAddr>)>) {
    for l in core.lookups() {
        let tx = dns.clone();
        tokio::spawn(async move {
            let addrs = dns::resolve(&l.host, l.port, l.proto).await;
            if addrs.is_empty() {
                tracing::warn!(peer = %l.peer, host = %l.host, "cannot resolve the peer's host");
            }
            let _ = tx.send((l, addrs)).await;
        });
    }
}

/// Drives the front panel from its own thread: status LED on while the loop beats,
/// factory reset (marker on /data, then reboot) when the button is held long enough.
fn spawn_panel(
    mut panel: board::panel::Panel,
    beat: Arc<board::watchdog::Heartbeat>,
    data: PathBuf,
    reboot: Vec<String>,
) {
    let _ = std::thread::Builder::new()
        .name("panel".into())
        .spawn(move || loop {
            panel.set("status", beat.age() < Duration::from_secs(5));
            if panel.reset_held(Instant::now()) {
                tracing::warn!("reset button held: factory reset and restart");
                if let Err(e) = std::fs::write(data.join(system::FACTORY_RESET_MARKER), b"button\n")
                {
                    tracing::error!("cannot mark the factory reset: {e}");
                } else if let Some((cmd, rest)) = reboot.split_first() {
                    let _ = std::process::Command::new(cmd).args(rest).status();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        });
}

/// Slot confirmation states (see `--confirm-slot`).
const CONFIRM_WAITING: u8 = 0;
const CONFIRM_MARKING: u8 = 1;
const CONFIRM_DONE: u8 = 2;

/// The image's release (`/etc/pbx-release`: "PBX firmware 0.1.0+abc"), or the crate's
/// version off the box.
fn release_version() -> String {
    std::fs::read_to_string("/etc/pbx-release")
        .ok()
        .and_then(|r| {
            r.lines()
                .next()?
                .strip_prefix("PBX firmware ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}

/// What keeps the box from being healthy: the web admin not accepting connections, or
/// an enabled ISDN interface whose span did not open. (The store is open and SIP bound,
/// or pbxd would not have started.) Lines being down is not a fault of the firmware.
fn health_problems(spans: &isdn::Spans, cfg: &config::Config, web: SocketAddr) -> Vec<String> {
    let mut p = Vec::new();
    let mut web = web;
    if web.ip().is_unspecified() {
        web.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if let Err(e) = std::net::TcpStream::connect_timeout(&web, Duration::from_secs(1)) {
        p.push(format!("web admin on {web}: {e}"));
    }
    for (name, st) in spans.states(cfg) {
        let enabled = cfg
            .isdn_interfaces
            .iter()
            .any(|i| i.name == name && i.enabled);
        if enabled
            && st
                .get("detail")
                .and_then(|d| d.as_str())
                .is_some_and(|d| d.starts_with("not running"))
        {
            p.push(format!("ISDN interface {name}: span not running"));
        }
    }
    p
}

/// Sends the resync NOTIFYs; returns how many phones were registered to receive one.
fn resync(core: &mut Pbx, targets: &[(String, String)]) -> usize {
    targets
        .iter()
        .filter(|(account, event)| core.notify_resync(Instant::now(), account, event))
        .count()
}

/// A request from the control socket with its reply channel.
pub struct ControlRequest {
    pub body: serde_json::Value,
    pub reply: oneshot::Sender<serde_json::Value>,
}

fn main() -> Result<()> {
    use tracing_subscriber::prelude::*;
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    // stderr (the journal on the box) as RUST_LOG says; the log files on /data and the
    // syslog server as the settings say (Kerio 28).
    let logs = logs::Logs::start(&args.data_dir.join("logs"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(stderr_filter(std::env::var("RUST_LOG").ok().as_deref()));
    tracing_subscriber::registry()
        .with(stderr)
        .with(logs.layer())
        .init();
    if let Some(k) = &args.kernel_log {
        logs.follow_kernel(k.clone());
    }
    let (low, high) = parse_range(&args.rtp_ports)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // On a worker, not the main thread: see "The core loop" in docs/ARCHITECTURE.md. A
    // panic in it goes on unwinding here, as it did when the main thread ran the loop.
    let restart = rt.block_on(async {
        match tokio::spawn(run(args, low, high, logs.clone())).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(anyhow::anyhow!("the exchange stopped: {e}")),
        }
    });
    if matches!(restart, Ok(true)) {
        tracing::info!("restarting");
    }
    // The last lines (why it stopped, "restarting") reach the files first.
    logs.close();
    if restart? {
        // Threads still serving a web request must not hold the restart up.
        rt.shutdown_timeout(Duration::from_secs(2));
        return Err(restart_in_place());
    }
    Ok(())
}

/// Runs this program again in this process (same PID, same arguments): a recovery
/// staged by the web admin is put in place as it starts, with or without a service
/// manager around it.
fn restart_in_place() -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return anyhow::anyhow!("cannot restart: {e}"),
    };
    let e = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::anyhow!("cannot restart: {e}")
}

/// The board's profile name, or the processor architecture off the known boards.
fn board_name() -> String {
    board::Profile::detect(std::path::Path::new("/"))
        .map_or(std::env::consts::ARCH, |p| p.name)
        .to_string()
}

/// Makes the scheduled backup when it is due (off the loop), and sends it to the remote
/// target when one is set. One that failed (a full partition, say) is tried again after
/// ten minutes, not at every tick; so is a send that failed (six tries).
fn scheduled_backup(
    cfg: &store::Configurator,
    data: &std::path::Path,
    origin: &store::backup::Origin,
    tried: &mut Option<std::time::Instant>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RUNNING: AtomicBool = AtomicBool::new(false);
    /// Holds RUNNING for a task, and lets go of it however the task ends.
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.store(false, Ordering::Relaxed);
        }
    }
    let snap = cfg.snapshot();
    let s = &snap.config.backup;
    // Ten minutes after a try that failed (also when its outcome could not be written).
    if RUNNING.load(Ordering::Relaxed)
        || tried.is_some_and(|t| t.elapsed() < Duration::from_secs(600))
    {
        return;
    }
    let newest = web::backup::newest(data);
    if let Some(file) = web::remote::retry_due(data, &s.remote, newest.as_deref(), unix_now()) {
        *tried = Some(std::time::Instant::now());
        RUNNING.store(true, Ordering::Relaxed);
        let (data, target, running) = (data.to_path_buf(), s.remote.clone(), Running);
        tokio::spawn(async move {
            let _running = running;
            let _ = web::remote::send_recorded(&data, &target, &file, unix_now()).await;
        });
        return;
    }
    if !web::backup::scheduled_due(s, unix_now(), utc_offset(), data) {
        return;
    }
    *tried = Some(std::time::Instant::now());
    RUNNING.store(true, Ordering::Relaxed);
    let running = Running;
    let parts: Vec<store::backup::Part> = s
        .parts
        .iter()
        .filter_map(|p| store::backup::Part::parse(p))
        .collect();
    let (store, data, origin, keep, target) = (
        cfg.store().clone(),
        data.to_path_buf(),
        origin.clone(),
        s.keep as usize,
        s.remote.clone(),
    );
    tokio::spawn(async move {
        let _running = running;
        let made = {
            let data = data.clone();
            tokio::task::spawn_blocking(move || {
                web::backup::make_now(&store, &data, &parts, &origin, keep)
            })
            .await
        };
        match made {
            Ok(Ok(p)) => {
                tracing::info!(file = %p.display(), "scheduled backup made");
                if target.enabled {
                    let _ = web::remote::send_recorded(&data, &target, &p, unix_now()).await;
                }
            }
            Ok(Err(e)) => tracing::error!("scheduled backup failed: {}", e.error),
            Err(e) => tracing::error!("scheduled backup failed: {e}"),
        }
    });
}

/// What became of a recovery at start: what was restored, or why it was rolled back.
type Recovery = Option<Result<String, String>>;

/// Opens the store, after putting a staged recovery in place. A recovered store that
/// does not open, or whose configuration does not read, is rolled back: the box comes
/// up as it was before. Answers what became of a recovery (for the Backup page), and
/// whether the recovery's network settings are to be put in force (one from the console).
fn open_store(data: &std::path::Path) -> Result<(store::Store, Recovery, bool)> {
    use store::backup;
    let open = || {
        store::Store::open(data)
            .with_context(|| format!("cannot open the store in {}", data.display()))
    };
    let restored = match backup::apply_pending(data) {
        Ok(r) => r,
        // A staging that was not whole was dropped: the box is as it was.
        Err(e @ backup::BackupError::Corrupt(_)) => {
            tracing::error!("{e}");
            let s = open()?;
            security_note(&s, "", &format!("recovery not put in place: {e}"));
            return Ok((s, Some(Err(e.to_string())), false));
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot put the staged recovery in place in {}",
                    data.display()
                )
            })
        }
    };
    let Some(applied) = restored else {
        return Ok((open()?, None, false));
    };
    let what = web::backup::describe(&applied.manifest);
    match store::Store::open(data).and_then(|s| s.config().map(|_| s)) {
        Ok(s) => {
            if applied.manifest.parts.contains(&backup::Part::Config) {
                // A firewall change on trial belonged to the configuration replaced.
                web::firewall::forget_unconfirmed(data);
            }
            if let Err(e) = backup::finish(data) {
                tracing::warn!("the directories the recovery replaced stay in .restore: {e}");
            }
            tracing::info!("{what} restored");
            security_note(&s, &applied.by, &format!("{what} restored"));
            let network = applied.by.starts_with(backup::BY_CONSOLE)
                && applied.manifest.parts.contains(&backup::Part::Config);
            Ok((s, Some(Ok(what)), network))
        }
        Err(e) => {
            tracing::error!("the recovered store does not open ({e}): back to the box as it was");
            backup::roll_back(data).context("rolling the recovery back")?;
            let s = open()?;
            let why = format!("the {what} does not open ({e})");
            security_note(&s, &applied.by, &format!("recovery rolled back: {why}"));
            Ok((s, Some(Err(why)), false))
        }
    }
}

/// An entry of the security log written at start (`by`: who asked, from where).
fn security_note(s: &store::Store, by: &str, event: &str) {
    let (username, address) = by.split_once(" from ").unwrap_or((by, ""));
    if let Err(e) = s.security_event(&store::SecurityEntry {
        when: unix_now(),
        address: address.to_string(),
        username: username.to_string(),
        event: event.to_string(),
    }) {
        tracing::warn!("security log: {e}");
    }
}

/// Runs the exchange until it is told to stop; answers whether it was asked to restart.
async fn run(args: Args, low: u16, high: u16, logs: Arc<logs::Logs>) -> Result<bool> {
    let (store, recovery, restored_network) = open_store(&args.data_dir)?;
    let (rev, cfg) = store.config()?;
    if let Err(e) = cfg.validate() {
        tracing::error!("stored configuration does not validate: {e}");
    }
    let snapshot = Arc::new(Snapshot::new(rev, cfg));
    let configurator = Arc::new(store::Configurator::new(store.clone(), snapshot.clone()));
    // A firewall change nobody confirmed before the daemon stopped is undone first, and
    // so is a network change.
    web::firewall::recover_unconfirmed(&configurator, &args.data_dir);
    web::network::recover_unconfirmed(&args.data_dir, args.system_root.as_deref()).await;
    if restored_network {
        // Restored at the console: the backup's address now, not at the next boot.
        web::network::put_saved_in_force(&args.data_dir, args.system_root.as_deref()).await;
    }
    let snapshot = configurator.snapshot();
    let mut snapshots = configurator.subscribe();
    let (transports, mut incoming) = sip::transport::Transports::bind(args.sip)
        .await
        .with_context(|| format!("cannot bind SIP on {}", args.sip))?;
    let relay = media::Relay::new(args.sip.ip(), low, high);
    // Digits and plays done on the endpoints go to the core (applications use them).
    let (media_tx, mut media_rx) = tokio::sync::mpsc::unbounded_channel();
    relay.set_events(media_tx);
    // The relay's endpoints: spares bound for the core, its commands carried out.
    if !args.prompts.join("vm-intro.wav").is_file() {
        tracing::warn!(folder = %args.prompts.display(), "no system prompts there: voicemail callers hear only the recording's silence");
    }
    let mut endpoints = media::Endpoints::new(relay).with_prompts(Some(args.prompts.clone()));
    endpoints.set_music(
        config::SYSTEM_MUSIC,
        Some(music::system(&args.music_on_hold)),
    );
    // The configured collections are loaded off the loop and installed as they come.
    let (music_tx, mut music_rx) = mpsc::unbounded_channel();
    let mut collections = music::Collections::new(args.data_dir.join("music"), music_tx);
    collections.reconcile(&snapshot.config);
    let mut digest = Vec::new();
    for d in &args.digest {
        digest.push(match d.to_ascii_lowercase().as_str() {
            "md5" => sip::auth::Algorithm::Md5,
            "sha-256" | "sha256" => sip::auth::Algorithm::Sha256,
            other => bail!("--digest: unknown algorithm {other:?} (use md5 and/or sha-256)"),
        });
    }
    let voicemail_dir = args.data_dir.join("voicemail");
    retire_boxes(&voicemail_dir, &snapshot, unix_now());
    let settings = Settings {
        realm: args.realm.clone(),
        ring_timeout: Duration::from_secs(args.ring_timeout),
        digest,
        ban_after: args.ban_after,
        rate_limit: args.sip_rate_limit,
        register_retry: Duration::from_secs(args.register_retry.max(1)),
        voicemail_dir: voicemail_dir.clone(),
        sounds_dir: args.data_dir.join("sounds"),
        recordings_dir: {
            let dir = args.data_dir.join("recordings");
            recordings::recover(&dir);
            dir
        },
        ..Settings::default()
    };
    let seed: u64 = rand::random();
    let mut spans = isdn::Spans::new(transports.local_addr());
    spans.reconcile(&snapshot.config);
    let mut core = Pbx::new(
        spans.for_core(snapshot.clone()),
        settings,
        seed,
        Instant::now(),
        unix_now(),
    );
    endpoints.serve(core.media_pool());
    core.set_utc_offset(utc_offset());
    mailboxes::load_all(&mut core, &voicemail_dir, &snapshot.config);
    // Boxes that changed beside the loop (a message e-mailed, then deleted).
    let (mail_tx, mut mail_rx) = mpsc::unbounded_channel::<String>();
    let t = transports.clone();
    core.set_local_for(Box::new(move |proto, dest| t.local_for(proto, dest)));
    dns::init(args.dns);
    let (dns_tx, mut dns_rx) = mpsc::channel::<(pbx::Lookup, Vec<SocketAddr>)>(64);
    resolve(&core, &dns_tx);
    let mut rounds = 0u32;
    let history = history::Writer::start(store.clone());
    if let Some(blob) = store.registrations()? {
        core.import_registrations(&blob, Instant::now());
        tracing::info!(count = core.registrations().len(), "registrations restored");
    }
    let mut bans_saved = std::time::Instant::now();
    if let Some(blob) = store.bans()? {
        if core.import_bans(&blob, Instant::now()) {
            tracing::info!(count = core.bans(Instant::now()).len(), "SIP bans restored");
        } else {
            tracing::warn!("saved SIP bans unreadable; starting without");
        }
    }

    if args.dahdi {
        let dahdi = system::dahdi::Dahdi {
            sys: args.sys.clone(),
            conf: args.dahdi_conf.clone(),
            dahdi_cfg: args.dahdi_cfg.clone(),
            modprobe: args.modprobe.clone(),
        };
        let drivers: Vec<String> = args.dahdi_drivers.clone().unwrap_or_else(|| {
            board::Profile::detect(std::path::Path::new("/"))
                .map(|p| p.telephony.iter().map(|d| d.to_string()).collect())
                .unwrap_or_default()
        });
        tokio::spawn(follow_dahdi(configurator.subscribe(), dahdi, drivers));
    }
    let trust_changed = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(follow_log_settings(
        configurator.subscribe(),
        logs.clone(),
        args.data_dir.clone(),
        trust_changed.clone(),
    ));
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlRequest>(64);
    let sock_path = args.data_dir.join("control.sock");
    let listener = control::listen(&sock_path)?;
    tokio::spawn(control::serve(listener, ctl_tx));
    tracing::info!(sip = %transports.local_addr(), rtp = %format!("{low}-{high}"), revision = rev, "pbxd ready");

    // The web admin: certificate first (made once), then HTTPS and the redirect.
    let (certs, key, made) =
        web::tls::load_or_make(&args.data_dir, &[args.web.ip(), args.sip.ip()])
            .context("cannot make or read the web certificate")?;
    // One certificate for both servers, replaced live when the admin picks another.
    let active = web::tls::ActiveCert::new(certs, key)?;
    listen_sip_tls(&args, &transports, active.clone()).await;
    transports.set_server_names(&core.tls_names());
    let tls = web::tls::server_config_active(active.clone(), &[b"http/1.1"])?;
    let web_listener = tokio::net::TcpListener::bind(args.web)
        .await
        .with_context(|| format!("cannot bind the web admin on {}", args.web))?;
    // Phone provisioning: the same files over TFTP and at https://<box>:4021/prov/.
    let prov = Arc::new(provision::Provisioner::new(
        configurator.clone(),
        transports.local_addr().port(),
        &args.data_dir,
    ));
    let tftp = tokio::net::UdpSocket::bind(args.tftp)
        .await
        .with_context(|| format!("cannot bind TFTP on {}", args.tftp))?;
    let tftp_port = tftp.local_addr()?.port();
    tracing::info!(tftp = %tftp.local_addr()?, "provisioning over TFTP");
    tokio::spawn(provision::server::serve(tftp, prov.clone()));
    let (web_tx, mut web_rx) = mpsc::channel::<web::CoreRequest>(64);
    let reboot: Vec<String> = args
        .reboot_command
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let updater = system::update::Updater::new(system::update::UpdateSettings {
        rauc: args.rauc.clone(),
        reboot: reboot.clone(),
        ..Default::default()
    });
    let app = web::App::new(
        configurator.clone(),
        web_tx,
        web::Settings {
            idle_timeout: Duration::from_secs(args.web_idle.max(1) * 60),
            version: release_version(),
            data_dir: args.data_dir.clone(),
            root: args.system_root.clone(),
            firewall_confirm: Duration::from_secs(args.firewall_confirm.max(1)),
            board: board_name(),
            recovery,
            logs: logs.clone(),
            tcpdump: args.tcpdump.clone(),
            network_confirm: Duration::from_secs(args.network_confirm.max(1)),
            dahdi_sys: args.sys.clone(),
        },
        prov.clone(),
        updater.clone(),
    );
    let web_addr = web_listener.local_addr()?;
    app.set_active_cert(active);
    // SIP over WebSocket (RFC 7118) on the web port: the web server upgrades, the SIP
    // transports carry it like any connection.
    transports.set_ws_addr(web_addr);
    let (room, serve) = (transports.clone(), transports.clone());
    let sip_ws = web::sip_ws::SipWs {
        room: Arc::new(move |ip| room.ws_room_for(ip)),
        serve: Arc::new(move |io, peer, local| serve.serve_ws(io, peer, local)),
    };
    tokio::spawn(web::serve(web_listener, tls, app.clone(), sip_ws));
    // Directory users (Kerio 11), synchronised when the settings say.
    tokio::spawn(web::directory::follow(app.clone()));
    if let Some(addr) = args.web_redirect {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind the HTTP redirect on {addr}"))?;
        tokio::spawn(web::serve_redirect(l, web_addr.port()));
    }
    tracing::info!(web = %web_addr, new_certificate = made, "web admin at https://{web_addr}/admin");
    let ports = system::firewall::Ports {
        sip: transports.local_addr().port(),
        sip_tls: transports.tls_addr().map(|a| a.port()),
        web: std::iter::once(web_addr.port())
            .chain(args.web_redirect.map(|a| a.port()))
            .collect(),
        tftp: Some(tftp_port),
        rtp: (low, high),
    };
    let enforcer = Arc::new(if args.firewall {
        system::firewall::Enforcer::new(&args.nft)
    } else {
        system::firewall::Enforcer::disabled()
    });
    app.set_firewall(enforcer.clone());
    if args.firewall {
        tokio::spawn(enforce_firewall(configurator.subscribe(), enforcer, ports));
    }

    let mut state = control::State {
        cfg: configurator,
        prov: prov.clone(),
        updater: updater.clone(),
    };
    // The watchdog is fed from its own thread while this loop keeps beating.
    let beat = board::watchdog::Heartbeat::new();
    let feeder = match &args.watchdog {
        Some(path) => match board::watchdog::Watchdog::open(path) {
            Err(e) => {
                // Calls matter more than the watchdog: run without it, and say so.
                tracing::error!(
                    "cannot open the watchdog {}: {e}; running without it",
                    path.display()
                );
                None
            }
            Ok(mut dog) => {
                let want = args.watchdog_timeout.max(2);
                let timeout = dog.set_timeout(want).unwrap_or(want);
                let b = beat.clone();
                tracing::info!(device = %path.display(), timeout, "feeding the watchdog");
                Some(board::watchdog::Feeder::spawn(
                    dog,
                    Duration::from_secs(u64::from(timeout / 3).max(1)),
                    move || b.age() < Duration::from_secs(u64::from(timeout)) / 2,
                ))
            }
        },
        None => None,
    };
    // A front panel (Raspberry Pi): the status LED shows the loop beating; the reset
    // button held 10 s asks for a factory reset and restarts the box.
    if let Some(profile) = board::Profile::detect(std::path::Path::new("/")) {
        match board::panel::Panel::open(profile) {
            Ok(Some(panel)) => {
                spawn_panel(panel, beat.clone(), args.data_dir.clone(), reboot.clone());
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(board = profile.name, "front panel: {e}"),
        }
    }
    let started = Instant::now();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    let mut health = tokio::time::interval(Duration::from_secs(5));
    // Slot confirmation: not asked for, waiting for health, being marked, or done. A
    // failed `rauc status mark-good` is tried again at the next health check, since an
    // unconfirmed slot is abandoned at the next boot.
    let confirm = Arc::new(std::sync::atomic::AtomicU8::new(if args.confirm_slot {
        CONFIRM_WAITING
    } else {
        CONFIRM_DONE
    }));
    let mut warned_unhealthy = false;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut persist = tokio::time::interval(Duration::from_secs(30));
    persist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut restart = false;
    let origin = web::backup::origin(&release_version(), &board_name());
    let mut backup_tried: Option<std::time::Instant> = None;
    loop {
        // A configuration committed by the web or the control socket is in force before
        // the core handles anything that came after it (a phone registering to a new
        // account, say); the `changed()` branch below covers an idle loop.
        if snapshots.has_changed().unwrap_or(false) {
            take_snapshot(
                &mut snapshots,
                &mut core,
                &mut spans,
                &dns_tx,
                &voicemail_dir,
                &mut collections,
            );
        }
        let deadline = tokio::time::Instant::from_std(core.poll_timeout());
        tokio::select! {
            m = incoming.recv() => {
                let Some(m) = m else { break };
                deliver(&mut core, m);
                // Drain what else is queued before looking at timers: batches under load.
                for _ in 0..256 {
                    let Ok(m) = incoming.try_recv() else { break };
                    // Each message finds the media endpoints it needs.
                    endpoints.serve(core.media_pool());
                    deliver(&mut core, m);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                core.handle_timeout(Instant::now());
                if core.take_gave_back() {
                    give_memory_back();
                }
            }
            Some(e) = media_rx.recv() => {
                // A message recorded: its box is counted again (message lamps).
                let recorded = match &e {
                    media::Event::Recorded { path, samples, ok, .. } => {
                        let cfg = state.cfg.snapshot();
                        if let Some(n) = (*ok && *samples > 0)
                            .then(|| mail::notice_for(&cfg.config, &voicemail_dir, path, *samples))
                            .flatten()
                        {
                            mail::send(cfg.config.smtp.clone(), n, mail_tx.clone());
                        }
                        mailboxes::box_of(&voicemail_dir, path)
                    }
                    _ => None,
                };
                core.handle_media_event(Instant::now(), e);
                if let Some(ext) = recorded {
                    mailboxes::rescan(&mut core, &voicemail_dir, &ext);
                }
            }
            r = web_rx.recv() => {
                let Some(r) = r else { break };
                match r {
                    web::CoreRequest::Registrations(tx) => {
                        let _ = tx.send(serde_json::to_value(core.registrations()).expect("serialises"));
                    }
                    web::CoreRequest::Calls(tx) => {
                        let _ = tx.send(serde_json::to_value(core.calls(Instant::now())).expect("serialises"));
                    }
                    web::CoreRequest::HangUp(id, tx) => {
                        let _ = tx.send(core.hang_up_call(Instant::now(), id));
                    }
                    web::CoreRequest::Resync(targets, tx) => {
                        let _ = tx.send(resync(&mut core, &targets));
                    }
                    web::CoreRequest::Peers(tx) => {
                        let _ = tx.send(serde_json::to_value(core.peers(Instant::now())).expect("serialises"));
                    }
                    web::CoreRequest::Spans(tx) => {
                        let _ = tx.send(serde_json::Value::Object(spans.states(&state.cfg.snapshot().config)));
                    }
                    web::CoreRequest::MailboxChanged(ext) => {
                        mailboxes::rescan(&mut core, &voicemail_dir, &ext);
                    }
                    web::CoreRequest::MusicChanged => {
                        collections.reconcile(&state.cfg.snapshot().config);
                    }
                    web::CoreRequest::TrustChanged => {
                        trust_changed.notify_one();
                        match sip_trust(&args.data_dir) {
                            Ok((client, roots)) => {
                                transports.set_client_config(client);
                                tracing::info!(trusted = roots, "TLS trust changed");
                            }
                            Err(e) => tracing::error!("TLS trust unchanged: {e}"),
                        }
                    }
                    web::CoreRequest::Queues(tx) => {
                        let _ = tx.send(serde_json::to_value(core.queues(Instant::now())).expect("serialises"));
                    }
                    web::CoreRequest::QueueLogin(queue, ext, login, tx) => {
                        let _ = tx.send(core.queue_login(Instant::now(), &queue, &ext, login));
                    }
                    web::CoreRequest::Bans(tx) => {
                        let _ = tx.send(serde_json::to_value(core.bans(Instant::now())).expect("serialises"));
                    }
                    web::CoreRequest::LiftBan(key, by, tx) => {
                        let _ = tx.send(core.lift_ban(Instant::now(), &key, &by));
                    }
                    web::CoreRequest::Parked(tx) => {
                        let _ = tx.send(serde_json::to_value(core.parked_calls(Instant::now())).expect("serialises"));
                    }
                    web::CoreRequest::Conferences(tx) => {
                        let _ = tx.send(serde_json::to_value(core.conferences(Instant::now())).expect("serialises"));
                    }
                    web::CoreRequest::ConferenceMute(room, call, muted, tx) => {
                        let _ = tx.send(core.mute_participant(&room, call, muted));
                    }
                    web::CoreRequest::ConferenceKick(room, call, tx) => {
                        let _ = tx.send(core.kick_participant(Instant::now(), &room, call));
                    }
                    web::CoreRequest::Lamps(tx) => {
                        let _ = tx.send(serde_json::to_value(core.lamps()).expect("serialises"));
                    }
                    web::CoreRequest::WebPhoneGrant(account, proposal, tx) => {
                        let _ = tx.send(core.renew_web_grant(Instant::now(), &account, proposal));
                    }
                    web::CoreRequest::Restart => {
                        restart = true;
                        break;
                    }
                }
            }
            Some(ext) = mail_rx.recv() => mailboxes::rescan(&mut core, &voicemail_dir, &ext),
            Some((l, addrs)) = dns_rx.recv() => {
                core.set_peer_addresses(&l.peer, &l.host, addrs);
                // A TLS peer's certificate must be for its host (and SNI names it).
                transports.set_server_names(&core.tls_names());
            }
            Ok(()) = snapshots.changed() => {
                take_snapshot(&mut snapshots, &mut core, &mut spans, &dns_tx, &voicemail_dir, &mut collections);
                transports.set_server_names(&core.tls_names());
            }
            Some((name, gen, m)) = music_rx.recv() => {
                if collections.current(&name, gen, m.is_some()) {
                    endpoints.set_music(&name, m);
                }
            }
            r = ctl_rx.recv() => {
                let Some(r) = r else { break };
                let answer = control::handle(&mut state, &mut core, &spans, r.body);
                let _ = r.reply.send(answer);
            }
            _ = heartbeat.tick() => {
                beat.beat();
                // Long recordings (queue calls) go to the card as they run.
                endpoints.flush_recordings();
                save_guard(&mut core, state.cfg.store(), &mut bans_saved, false);
            }
            _ = health.tick(), if confirm.load(std::sync::atomic::Ordering::Relaxed) == CONFIRM_WAITING => {
                let problems = health_problems(&spans, &state.cfg.snapshot().config, web_addr);
                if problems.is_empty() {
                    confirm.store(CONFIRM_MARKING, std::sync::atomic::Ordering::Relaxed);
                    let (rauc, cmdline, confirm) = (args.rauc.clone(), args.kernel_cmdline.clone(), confirm.clone());
                    tokio::spawn(async move {
                        let done = match system::update::mark_booted_good(&rauc, &cmdline).await {
                            Ok(true) => { tracing::info!("healthy: the booted firmware slot is marked good"); true }
                            Ok(false) => { tracing::info!("healthy (not booted from a RAUC slot)"); true }
                            Err(e) => { tracing::error!("healthy, but marking the slot good failed (tried again): {e}"); false }
                        };
                        confirm.store(if done { CONFIRM_DONE } else { CONFIRM_WAITING }, std::sync::atomic::Ordering::Relaxed);
                    });
                } else if !warned_unhealthy && started.elapsed() > Duration::from_secs(60) {
                    warned_unhealthy = true;
                    tracing::warn!("not healthy yet, the slot stays unconfirmed: {}", problems.join("; "));
                }
            }
            _ = persist.tick() => {
                rounds += 1;
                scheduled_backup(&state.cfg, &args.data_dir, &origin, &mut backup_tried);
                // Daylight saving time and a new time zone reach the time conditions.
                core.set_utc_offset(utc_offset());
                if rounds.is_multiple_of(10) {
                    resolve(&core, &dns_tx); // every 5 minutes: DNS answers change
                }
                if let Some(macs) = prov.take_due_restart(unix_now()) {
                    let targets = prov.restart_targets(&state.cfg.snapshot(), &macs);
                    let n = resync(&mut core, &targets);
                    tracing::info!(phones = n, "scheduled phone restart sent");
                }
                if core.take_registrations_dirty() {
                    if let Err(e) = state.cfg.store().save_registrations(&core.export_registrations()) {
                        tracing::warn!("saving registrations: {e}");
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        endpoints.serve(core.media_pool());
        mailboxes::serve(&mut core, &voicemail_dir, &state.cfg);
        while let Some(t) = core.poll_transmit() {
            transports.send(t.proto, t.dest, t.bytes);
        }
        // Call history: written as calls end (by its own thread), on the card every few
        // seconds.
        while let Some(r) = core.poll_record() {
            history.add(r);
        }
    }
    tracing::info!("shutting down");
    save_guard(&mut core, state.cfg.store(), &mut bans_saved, true);
    // Messages being recorded are written before the daemon goes.
    endpoints.shutdown();
    history.stop();
    if let Some(f) = feeder {
        if let Err(e) = f.stop() {
            tracing::warn!("disarming the watchdog: {e}");
        }
    }
    spans.stop_all();
    if let Err(e) = state
        .cfg
        .store()
        .save_registrations(&core.export_registrations())
    {
        tracing::warn!("saving registrations: {e}");
    }
    let _ = std::fs::remove_file(&sock_path);
    Ok(restart)
}

/// SIP bans made, ended or lifted: into the security log (every second), and the bans
/// saved so they survive a restart (at most every 10 s, and at shutdown: a flood of
/// bans costs one write a second and one save in ten).
fn save_guard(core: &mut Pbx, store: &store::Store, saved: &mut std::time::Instant, force: bool) {
    let now = Instant::now();
    let events: Vec<store::SecurityEntry> = core
        .take_security_events(now)
        .into_iter()
        .map(|e| store::SecurityEntry {
            when: e.unix,
            address: e.address,
            username: e.user,
            event: e.event,
        })
        .collect();
    if !events.is_empty() {
        if let Err(e) = store.security_events(&events) {
            tracing::warn!("security log: {e}");
        }
    }
    if !force && saved.elapsed() < Duration::from_secs(10) {
        return;
    }
    if core.take_bans_dirty() {
        *saved = std::time::Instant::now();
        if let Err(e) = store.save_bans(&core.export_bans(now)) {
            tracing::warn!("saving SIP bans: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_sets_stderr_levels_by_target_and_nonsense_falls_back_to_info() {
        use tracing::Level;
        let f = stderr_filter(Some("info,pbx=debug,sled=warn"));
        assert!(f.would_enable("pbx::calls", &Level::DEBUG));
        assert!(!f.would_enable("pbx::calls", &Level::TRACE));
        assert!(!f.would_enable("sled::pagecache", &Level::INFO));
        assert!(f.would_enable("sled::pagecache", &Level::WARN));
        // (Targets match by prefix, as `EnvFilter`'s did: `pbx` covers `pbxd` too.)
        assert!(f.would_enable("web", &Level::INFO));
        assert!(!f.would_enable("web", &Level::DEBUG));
        // Spaces and empty directives as EnvFilter took them (an empty one is not "every
        // target at TRACE").
        for s in ["info,", "info, pbx=debug", ",,info,,pbx=debug ,"] {
            let f = stderr_filter(Some(s));
            assert!(!f.would_enable("hyper::proto", &Level::DEBUG), "{s:?}");
            assert!(f.would_enable("hyper::proto", &Level::INFO), "{s:?}");
            assert_eq!(
                f.would_enable("pbx", &Level::DEBUG),
                s.contains("pbx"),
                "{s:?}"
            );
        }
        for info in [
            None,
            Some(""),
            Some(" , "),
            Some("pbx=loud"),
            Some("[{]}="),
            Some("pbx[call]=debug"),
        ] {
            let f = stderr_filter(info);
            assert!(f.would_enable("web", &Level::INFO), "{info:?}");
            assert!(!f.would_enable("pbx", &Level::DEBUG), "{info:?}");
        }
    }

    #[test]
    fn boxes_of_removed_extensions_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        for b in ["101", "102", "removed", "notes"] {
            std::fs::create_dir_all(dir.path().join(b)).unwrap();
        }
        std::fs::write(dir.path().join("102/1-2-103.wav"), b"x").unwrap();
        let mut cfg = config::Config::default();
        cfg.extensions.push(config::Extension::new("101"));
        let snap = Snapshot::new(1, cfg);
        retire_boxes(dir.path(), &snap, 1_700_000_000);
        assert!(dir.path().join("101").is_dir(), "an extension's box stays");
        assert!(!dir.path().join("102").exists());
        assert!(dir
            .path()
            .join("removed/102-1700000000/1-2-103.wav")
            .is_file());
        assert!(dir.path().join("notes").is_dir(), "not a box: left alone");
        retire_boxes(&dir.path().join("nothing"), &snap, 1);
    }
}
