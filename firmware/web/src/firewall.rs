//! The firewall (Kerio 22.2): which IP address groups reach which of the box's
//! services, on the page `/admin/firewall` and at `/api/v1/firewall`.
//!
//! A change that restricts anything (the settings, or a group they name) is on trial:
//! it is in force at once, and rolled back unless an administrator confirms it within
//! [`CONFIRM_WINDOW`] from a new request, which a rule that cut the administrator off
//! cannot carry. The rules as they were are kept on /data until then, so a restart in
//! the window rolls back too. The web server holds its own paths to their groups (the
//! web admin, the user portal and provisioning share the web port); the box itself
//! (loopback) is never held, as in nftables.

use crate::api::{no_content, ok};
use crate::pages::{csrf_field, field, layout, page_response, Note};
use crate::{ApiError, App, Caller, Req};
use config::{Config, Firewall, IpGroup, FIREWALL_SERVICES};
use maud::html;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// How long a restricting change waits for its confirmation (the daemon's default).
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(60);

/// The rules as they were before a change on trial, on /data.
const FILE: &str = "firewall-unconfirmed.json";

/// Drops a firewall change on trial without applying anything (a recovery replaced the
/// configuration it was made to).
pub fn forget_unconfirmed(data_dir: &Path) {
    match std::fs::remove_file(data_dir.join(FILE)) {
        Ok(()) => {
            tracing::info!("the firewall change on trial went with the replaced configuration")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!("cannot remove {FILE}: {e}"),
    }
}

/// What a rollback restores.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Previous {
    firewall: Firewall,
    ip_groups: Vec<IpGroup>,
}

/// A change on trial.
#[derive(Debug)]
pub(crate) struct Pending {
    id: u64,
    previous: Previous,
    deadline: Instant,
}

impl Pending {
    /// Seconds until the rollback.
    pub(crate) fn seconds_left(&self, now: Instant) -> u64 {
        self.deadline.saturating_duration_since(now).as_secs()
    }
}

/// What the rules are made of: the settings and the addresses of the groups they name.
fn effective(c: &Config) -> Vec<(String, config::GroupRanges)> {
    FIREWALL_SERVICES
        .iter()
        .map(|(k, _)| {
            let g = c.firewall.group(k).unwrap_or("").to_string();
            let r = config::group_ranges(&c.ip_groups, &g);
            (g, r)
        })
        .collect()
}

/// What a change does to the firewall's trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trial {
    /// The rules stay as they were.
    Untouched,
    /// The rules changed and hold something: on trial (a trial under way starts its
    /// time again and keeps the rules from before it).
    Starts,
    /// The rules changed and hold nothing: nobody can be cut off; a trial is over.
    Ends,
}

/// Run inside a configuration change, before it is committed: decides what the change
/// does to the trial and keeps the rules from before a new trial on /data first, so
/// that a daemon stopping at any moment afterwards rolls it back when it starts. A
/// change whose rules cannot be kept is refused. `open`: a trial is under way.
pub(crate) fn before_commit(
    data_dir: &Path,
    before: &Config,
    after: &Config,
    open: bool,
) -> Result<Trial, store::ChangeError> {
    if effective(before) == effective(after) {
        return Ok(Trial::Untouched);
    }
    // What would not be committed must not touch the file.
    after.validate()?;
    if !after.firewall.restricts() {
        if open {
            remove(data_dir).map_err(|e| {
                store::ChangeError::field("firewall", format!("cannot end the trial: {e}"))
            })?;
        }
        return Ok(Trial::Ends);
    }
    if !open {
        let previous = Previous {
            firewall: before.firewall.clone(),
            ip_groups: before.ip_groups.clone(),
        };
        system::network::write_atomic(
            &data_dir.join(FILE),
            &serde_json::to_vec(&previous).expect("JSON"),
        )
        .map_err(|e| {
            store::ChangeError::field(
                "firewall",
                format!("cannot keep the rules from before the change, so it is not made: {e}"),
            )
        })?;
    }
    Ok(Trial::Starts)
}

fn remove(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(data_dir.join(FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// After a committed change (under `App::fw_lock`, as [`before_commit`] ran): the trial
/// in memory and its timer.
pub(crate) fn after_commit(app: &Arc<App>, trial: Trial, before: &Config) {
    match trial {
        Trial::Untouched => {}
        Trial::Ends => *app.fw_pending.lock().unwrap_or_else(|e| e.into_inner()) = None,
        Trial::Starts => {
            let id = rand::random::<u64>();
            let deadline = Instant::now() + app.settings.firewall_confirm;
            {
                let mut p = app.fw_pending.lock().unwrap_or_else(|e| e.into_inner());
                let previous = match p.take() {
                    Some(old) => old.previous,
                    None => Previous {
                        firewall: before.firewall.clone(),
                        ip_groups: before.ip_groups.clone(),
                    },
                };
                *p = Some(Pending {
                    id,
                    previous,
                    deadline,
                });
            }
            let app = app.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                let _g = app.fw_lock.lock().await;
                let due = {
                    let mut p = app.fw_pending.lock().unwrap_or_else(|e| e.into_inner());
                    match p.as_ref() {
                        Some(x) if x.id == id => p.take(),
                        _ => None,
                    }
                };
                if let Some(x) = due {
                    let cfg = app.cfg.clone();
                    let data = app.settings.data_dir.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        restore(&cfg, &data, &x.previous, "not confirmed in time")
                    })
                    .await;
                    app.security(
                        IpAddr::from([0, 0, 0, 0]),
                        crate::ops::ADMIN,
                        "firewall change not confirmed in time: rolled back",
                    );
                }
            });
        }
    }
}

/// The groups the settings name, and the groups those name, as they were.
fn reachable<'a>(fw: &Firewall, groups: &'a [IpGroup]) -> Vec<&'a IpGroup> {
    let names: Vec<&str> = FIREWALL_SERVICES
        .iter()
        .filter_map(|(k, _)| fw.group(k).filter(|g| !g.is_empty()))
        .collect();
    config::reached(groups, &names)
}

/// Puts the rules from before a change back: the settings, and the groups they reach
/// as they were (other groups keep their edits). Should that not fit the configuration
/// as it is now, or not give the very rules from before, every service is opened: a
/// rollback never leaves anybody cut off. The kept file goes only once that is done.
fn restore(cfg: &store::Configurator, data_dir: &Path, previous: &Previous, why: &str) {
    let now = crate::unix_now();
    let what = format!("firewall rolled back: {why}");
    let want = effective(&Config {
        firewall: previous.firewall.clone(),
        ip_groups: previous.ip_groups.clone(),
        ..Config::default()
    });
    let r = cfg
        .change("firewall", &what, now, |c| {
            c.firewall = previous.firewall.clone();
            for g in reachable(&previous.firewall, &previous.ip_groups) {
                match c.ip_groups.iter_mut().find(|x| x.name == g.name) {
                    Some(x) => *x = g.clone(),
                    None => c.ip_groups.push(g.clone()),
                }
            }
            if effective(c) != want {
                return Err(store::ChangeError::field(
                    "firewall",
                    "the groups changed since",
                ));
            }
            Ok(())
        })
        .or_else(|e| {
            tracing::warn!("cannot put the rules from before back ({e}); opening every service");
            cfg.change(
                "firewall",
                &format!("{what}; every service opened"),
                now,
                |c| {
                    c.firewall = Firewall::default();
                    Ok(())
                },
            )
        });
    match r {
        Ok((rev, ())) => {
            tracing::warn!(revision = rev, "firewall rolled back: {why}");
            if let Err(e) = remove(data_dir) {
                tracing::error!("cannot remove {FILE}: {e}");
            }
        }
        // The file stays: the next start tries again.
        Err(e) => tracing::error!("cannot roll the firewall back: {e}"),
    }
}

/// At start: a change still on trial when the daemon stopped was never confirmed; the
/// rules from before it come back.
pub fn recover_unconfirmed(cfg: &store::Configurator, data_dir: &Path) {
    let path = data_dir.join(FILE);
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let previous = serde_json::from_slice::<Previous>(&bytes).unwrap_or_else(|e| {
        // Unreadable: the safe rules are none at all.
        tracing::error!(
            "{} is unreadable ({e}); every service opened",
            path.display()
        );
        Previous {
            firewall: Firewall::default(),
            ip_groups: Vec::new(),
        }
    });
    restore(cfg, data_dir, &previous, "not confirmed before the restart");
}

/// Whether `ip` may use the service whose group is `group`.
fn allowed(c: &Config, group: &str, ip: IpAddr) -> bool {
    group.is_empty()
        || ip.is_loopback()
        || v4_loopback(ip)
        || config::group_contains(&c.ip_groups, group, ip)
}

fn v4_loopback(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v) if v.to_ipv4_mapped().is_some_and(|a| a.is_loopback()))
}

/// Whether the web admin is allowed from `ip`.
pub(crate) fn admin_allowed(c: &Config, ip: IpAddr) -> bool {
    allowed(c, &c.firewall.web_admin, ip)
}

/// Whether a user of `role` may use the web from `ip`: administrators and auditors
/// where the web admin or the portal is allowed (the portal's rights only outside the
/// admin's group), users where the portal is.
pub(crate) fn web_allowed(c: &Config, role: config::Role, ip: IpAddr) -> bool {
    allowed(c, &c.firewall.user_portal, ip) || (role != config::Role::User && admin_allowed(c, ip))
}

/// The answer to a request the firewall's settings keep from `req.addr`, if they do:
/// `/prov/` is provisioning's; the rest is the portal's and the admin's (an address
/// allowed only the portal gets no administrator rights: see `Caller`).
pub(crate) fn refusal(app: &App, req: &Req) -> Option<Response> {
    refusal_at(app, &req.path, req.addr)
}

/// [`refusal`] of a request for `path` from `ip` (also SIP over WebSocket's `/ws`,
/// answered before the site's routes: held like the rest of the web, for browser
/// phones live in the portal).
pub(crate) fn refusal_at(app: &App, path: &str, ip: IpAddr) -> Option<Response> {
    if path_allowed(&app.cfg.snapshot().config, path, ip) {
        return None;
    }
    tracing::debug!(address = %ip, path, "refused by the firewall's settings");
    Some(crate::json_reply(
        StatusCode::FORBIDDEN,
        &json!({"error": format!("the firewall does not allow this service from {ip}")}),
    ))
}

/// Whether the firewall's settings let `ip` reach `path` on the web port.
fn path_allowed(c: &Config, path: &str, ip: IpAddr) -> bool {
    if !c.firewall.restricts() {
        return true;
    }
    if path.starts_with("/prov/") {
        allowed(c, &c.firewall.provisioning, ip)
    } else {
        allowed(c, &c.firewall.user_portal, ip) || allowed(c, &c.firewall.web_admin, ip)
    }
}

/// The change on trial, if one is: seconds left to confirm it, and its id.
fn trial(app: &App) -> Option<(u64, String)> {
    app.fw_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|p| {
            (
                p.deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs(),
                p.id.to_string(),
            )
        })
}

/// Seconds left to confirm the change on trial, if one is.
pub(crate) fn seconds_left(app: &App) -> Option<u64> {
    trial(app).map(|t| t.0)
}

/// The API's view: settings, the trial and what is in force.
fn view(app: &App) -> Value {
    let snap = app.cfg.snapshot();
    let (left, trial) = trial(app).unzip();
    let status = app.firewall.get().map(|e| e.status()).unwrap_or_default();
    json!({
        "settings": snap.config.firewall,
        "confirm_within": left,
        "trial": trial,
        "in_force": status,
    })
}

async fn set(app: &Arc<App>, c: &Caller, fw: Firewall) -> Result<(), ApiError> {
    let what = if fw.restricts() {
        "firewall changed (on trial until confirmed)".to_string()
    } else {
        "firewall changed: every service from anywhere".to_string()
    };
    crate::ops::change(app, &c.user.username, what, move |cfg| {
        cfg.firewall = fw;
        Ok(())
    })
    .await
}

fn nothing_on_trial() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no firewall change is waiting for confirmation",
    )
}

/// Confirms the trial `trial` (its id as the view gives it; None: whichever is on).
async fn confirm(
    app: &Arc<App>,
    c: &Caller,
    addr: IpAddr,
    trial: Option<&str>,
) -> Result<(), ApiError> {
    let _g = app.fw_lock.lock().await;
    {
        let mut p = app.fw_pending.lock().unwrap_or_else(|e| e.into_inner());
        match p.as_ref() {
            Some(x) if Instant::now() >= x.deadline => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "too late: the change is being rolled back",
                ))
            }
            Some(x) if trial.is_some_and(|t| t != x.id.to_string()) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "another change is on trial now; look at it before confirming",
                ))
            }
            Some(_) => *p = None,
            None => return Err(nothing_on_trial()),
        }
    }
    let data = app.settings.data_dir.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || remove(&data)).await {
        tracing::error!("cannot remove {FILE}: {e}");
    }
    app.security(addr, &c.user.username, "firewall change confirmed");
    Ok(())
}

async fn roll_back(app: &Arc<App>, c: &Caller, addr: IpAddr) -> Result<(), ApiError> {
    let _g = app.fw_lock.lock().await;
    let p = app
        .fw_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(nothing_on_trial)?;
    let cfg = app.cfg.clone();
    let data = app.settings.data_dir.clone();
    let who = c.user.username.clone();
    tokio::task::spawn_blocking(move || restore(&cfg, &data, &p.previous, &format!("by {who}")))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    app.security(addr, &c.user.username, "firewall change rolled back");
    Ok(())
}

/// `/api/v1/firewall[/confirm|/rollback]`.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    match (&req.method, rest) {
        (&Method::GET, []) => ok(view(app)),
        (&Method::PUT, []) => {
            crate::api::need_admin_write(c)?;
            let mut merged =
                serde_json::to_value(&app.cfg.snapshot().config.firewall).expect("serialises");
            for (k, v) in crate::ops::object(&req.body)? {
                merged[k] = v;
            }
            let fw: Firewall = crate::ops::parse(merged)?;
            set(app, c, fw).await?;
            ok(view(app))
        }
        (&Method::POST, ["confirm"]) => {
            crate::api::need_admin_write(c)?;
            let body = if req.body.is_empty() {
                serde_json::Map::new()
            } else {
                crate::ops::object(&req.body)?
            };
            let trial = match body.get("trial") {
                None => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => return Err(ApiError::bad("trial", "the trial's id, as GET gives it")),
            };
            confirm(app, c, req.addr, trial.as_deref()).await?;
            no_content()
        }
        (&Method::POST, ["rollback"]) => {
            crate::api::need_admin_write(c)?;
            roll_back(app, c, req.addr).await?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such firewall resource")),
    }
}

/// Routes `/admin/firewall[/confirm|/rollback]`.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    addr: IpAddr,
    get: bool,
    rest: &[&str],
    form: &[(String, String)],
) -> Response {
    let (note, status) = match (get, rest) {
        (true, []) => (Note::None, StatusCode::OK),
        (false, []) => {
            let mut fw = Firewall::default();
            for (k, _) in FIREWALL_SERVICES {
                let g = field(form, k).unwrap_or("").trim().to_string();
                *fw.group_mut(k).expect("a known service") = g;
            }
            let restricts = fw.restricts();
            match set(app, c, fw).await {
                Ok(()) if restricts => (
                    Note::Done(format!(
                        "Saved and in force on trial: confirm within {} seconds, or the rules from before come back.",
                        app.settings.firewall_confirm.as_secs()
                    )),
                    StatusCode::OK,
                ),
                Ok(()) => (Note::Done("Saved: every service is open to anyone.".into()), StatusCode::OK),
                Err(e) => (e.into(), StatusCode::BAD_REQUEST),
            }
        }
        (false, ["confirm"]) => {
            match confirm(app, c, addr, field(form, "trial").filter(|t| !t.is_empty())).await {
                Ok(()) => (
                    Note::Done("The firewall's rules are confirmed.".into()),
                    StatusCode::OK,
                ),
                Err(e) => (e.into(), StatusCode::CONFLICT),
            }
        }
        (false, ["rollback"]) => match roll_back(app, c, addr).await {
            Ok(()) => (
                Note::Done("The rules from before are back.".into()),
                StatusCode::OK,
            ),
            Err(e) => (e.into(), StatusCode::CONFLICT),
        },
        _ => (Note::Error("no such page".into()), StatusCode::NOT_FOUND),
    };
    page(app, c, note, status)
}

fn page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let write = c.can_write_admin();
    let fw = &snap.config.firewall;
    let v = view(app);
    let left = v["confirm_within"].as_u64();
    let st = &v["in_force"];
    page_response(
        status,
        layout(
            "Firewall",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "Each service of the box is open to anyone, or only to the computers of one IP address group (define the groups first, under IP address groups). Limit SIP to your office and your providers' servers, and provisioning to your office: TFTP sends phones' settings in plain text. Packets for a held service from elsewhere get no answer (UDP) or are refused (TCP). Name your SIP providers' servers in the SIP and audio groups: the answers to the box's own requests come in from anywhere, but a provider's calls and audio only from the groups. A change that holds anything is on trial for " (app.settings.firewall_confirm.as_secs()) " seconds: confirm it from a new page load, or the rules from before come back by themselves, so a rule that cuts you off undoes itself." }
                @if let Some(s) = left {
                    div.warn id="firewall-trial" role="alert" {
                        "The new rules are on trial: confirm within " span id="firewall-left" { (s) } " seconds, or the rules from before come back."
                        @if write {
                            form method="post" action="/admin/firewall/confirm" {
                                (csrf_field(c))
                                input type="hidden" name="trial" value=(v["trial"].as_str().unwrap_or(""));
                                button type="submit" id="firewall-confirm" { "Confirm the rules" }
                            }
                            form method="post" action="/admin/firewall/rollback" {
                                (csrf_field(c))
                                button type="submit" id="firewall-rollback" { "Roll back now" }
                            }
                        }
                    }
                }
                p id="firewall-status" {
                    @if st["enabled"] != true {
                        "Saved only: this daemon does not put the firewall in force (development mode); the web server still holds its own paths to the groups."
                    } @else if st["revision"].as_u64().is_none_or(|r| r < snap.revision) {
                        "Being put in force (configuration revision " (snap.revision) ")."
                    } @else if let Some(e) = st["error"].as_str() {
                        "Not in force: " (e)
                    } @else {
                        "In force: " (st["rules"]) " rules (configuration revision " (st["revision"]) ")."
                    }
                }
                form method="post" action="/admin/firewall" id="firewall" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        table {
                            tr { th { "Service" } th { "Allowed from" } }
                            @for (k, label) in FIREWALL_SERVICES {
                                @let chosen = fw.group(k).unwrap_or("");
                                tr {
                                    td { label for=(k) { (label) } }
                                    td {
                                        select name=(k) id=(k) {
                                            option value="" selected[chosen.is_empty()] { "anyone" }
                                            @for g in &snap.config.ip_groups {
                                                option value=(g.name) selected[chosen == g.name] { "group " (g.name) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if write { button type="submit" { "Save the firewall" } }
                    }
                }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::IpItem;

    fn cfg(net: &str) -> Config {
        Config {
            ip_groups: vec![IpGroup {
                name: "Office".into(),
                description: String::new(),
                items: vec![IpItem::Network {
                    network: net.into(),
                    description: String::new(),
                }],
            }],
            ..Config::default()
        }
    }

    #[test]
    fn browser_phones_are_held_to_the_portals_or_the_admins_group() {
        let ws = |c: &Config, ip| path_allowed(c, crate::sip_ws::PATH, ip);
        let office: IpAddr = "10.1.2.3".parse().unwrap();
        let away: IpAddr = "192.0.2.7".parse().unwrap();
        let mut c = cfg("10.0.0.0/8");
        assert!(ws(&c, away));
        // SIP's own groups do not hold the web port's WebSocket.
        c.firewall.sip_tls = "Office".into();
        assert!(ws(&c, away));
        c.firewall.user_portal = "Office".into();
        assert!(ws(&c, away), "the admin's service is still open");
        c.firewall.web_admin = "Office".into();
        assert!(ws(&c, office) && !ws(&c, away));
        assert!(ws(&c, "127.0.0.1".parse().unwrap()));
        c.firewall.user_portal.clear();
        assert!(ws(&c, away));
    }

    #[test]
    fn the_rules_change_when_a_named_group_does() {
        let mut a = cfg("10.0.0.0/8");
        a.firewall.sip_udp = "Office".into();
        let mut b = cfg("10.0.0.0/16");
        b.firewall.sip_udp = "Office".into();
        assert_ne!(effective(&a), effective(&b));
        // A group nothing names changes nothing.
        let (mut c, d) = (cfg("10.0.0.0/8"), cfg("10.0.0.0/16"));
        assert_eq!(effective(&c), effective(&d));
        c.firewall.rtp = "Office".into();
        assert_ne!(effective(&c), effective(&d));
    }

    #[test]
    fn loopback_is_never_held() {
        let mut c = cfg("10.0.0.0/8");
        c.firewall.web_admin = "Office".into();
        assert!(admin_allowed(&c, "127.0.0.1".parse().unwrap()));
        assert!(admin_allowed(&c, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(admin_allowed(&c, "10.1.2.3".parse().unwrap()));
        assert!(!admin_allowed(&c, "192.0.2.1".parse().unwrap()));
        c.firewall.web_admin.clear();
        assert!(admin_allowed(&c, "192.0.2.1".parse().unwrap()));
    }

    fn configurator(dir: &Path, c: Config) -> store::Configurator {
        let st = store::Store::open(dir).unwrap();
        let rev = st.commit(0, &c, "test", "start", 0).unwrap_or(0);
        store::Configurator::new(st, Arc::new(config::Snapshot::new(rev, c)))
    }

    #[test]
    fn a_restricting_change_keeps_the_rules_from_before_and_a_rollback_puts_back_only_its_groups() {
        let dir = tempfile::tempdir().unwrap();
        let before = cfg("10.0.0.0/8");
        let mut after = before.clone();
        after.firewall.sip_udp = "Office".into();
        assert_eq!(
            before_commit(dir.path(), &before, &before, false).unwrap(),
            Trial::Untouched
        );
        assert!(!dir.path().join(FILE).exists());
        assert_eq!(
            before_commit(dir.path(), &before, &after, false).unwrap(),
            Trial::Starts
        );
        let kept: Previous =
            serde_json::from_slice(&std::fs::read(dir.path().join(FILE)).unwrap()).unwrap();
        assert_eq!(kept.firewall, before.firewall);
        // An invalid result touches nothing.
        let mut bad = after.clone();
        bad.firewall.rtp = "Nobody".into();
        assert!(before_commit(dir.path(), &after, &bad, true).is_err());
        assert!(dir.path().join(FILE).exists());
        // Opening everything ends the trial and its file.
        assert_eq!(
            before_commit(dir.path(), &after, &before, true).unwrap(),
            Trial::Ends
        );
        assert!(!dir.path().join(FILE).exists());

        // During a trial the office group shrank and an unrelated group came: the
        // rollback puts the office back as it was and keeps the other.
        let mut now = after.clone();
        now.ip_groups[0].items = vec![IpItem::Host {
            address: "10.9.9.9".into(),
            description: String::new(),
        }];
        now.ip_groups.push(IpGroup {
            name: "Printers".into(),
            description: String::new(),
            items: vec![IpItem::Host {
                address: "192.0.2.9".into(),
                description: String::new(),
            }],
        });
        let store_dir = tempfile::tempdir().unwrap();
        let c = configurator(store_dir.path(), now);
        std::fs::write(store_dir.path().join(FILE), b"{}").unwrap();
        let previous = Previous {
            firewall: after.firewall.clone(),
            ip_groups: before.ip_groups.clone(),
        };
        restore(&c, store_dir.path(), &previous, "test");
        let got = c.snapshot().config.clone();
        assert_eq!(got.firewall.sip_udp, "Office");
        assert_eq!(got.ip_groups[0], before.ip_groups[0]);
        assert!(got.ip_groups.iter().any(|g| g.name == "Printers"));
        assert!(!store_dir.path().join(FILE).exists());
    }

    #[test]
    fn an_unreadable_kept_file_opens_every_service_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg("10.0.0.0/8");
        c.firewall.web_admin = "Office".into();
        let conf = configurator(dir.path(), c);
        std::fs::write(dir.path().join(FILE), b"not json").unwrap();
        recover_unconfirmed(&conf, dir.path());
        assert!(!conf.snapshot().config.firewall.restricts());
        assert!(!dir.path().join(FILE).exists());
        // Nothing kept: nothing to do.
        recover_unconfirmed(&conf, dir.path());
    }
}
