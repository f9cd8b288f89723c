//! Network settings in the web admin (Kerio 22.1): the same file and validation the
//! console uses (`system::network`), put in force through netlink on the box. A change
//! is on trial: the settings from before are kept on /data, and unless an administrator
//! confirms the change within the window (from the new address, where the browser has to
//! go), the box goes back to them by itself; a restart in the window goes back too. A
//! wrong address never strands the box.

use crate::api::{need_admin_read, need_admin_write, ok};
use crate::pages::{csrf_field, field};
use crate::{ApiError, App, Caller, Req};
use maud::{html, Markup};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use system::apply::{Applier, Net};
use system::network::{parse_addr, parse_mask, InterfaceSettings, NetworkSettings, SettingsFile};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// The settings from before a change on trial.
const UNCONFIRMED: &str = "system/network-unconfirmed.json";

/// A change on trial.
#[derive(Debug)]
pub(crate) struct Pending {
    id: u64,
    previous: NetworkSettings,
    /// The settings on trial.
    new: NetworkSettings,
    /// Whether they are in force yet (they are put in force a moment after the answer).
    applied: bool,
    deadline: Instant,
}

/// The saved settings, or the image's factory ones (`/etc/pbx/network.json`), or the
/// built-in factory settings of eth0.
pub(crate) fn current(data: &Path, root: Option<&Path>) -> NetworkSettings {
    if let Ok(Some(s)) = SettingsFile::in_data_dir(data).load() {
        return s;
    }
    root.and_then(|r| std::fs::read(r.join("etc/pbx/network.json")).ok())
        .and_then(|b| serde_json::from_slice::<NetworkSettings>(&b).ok())
        .filter(|s| s.validate().is_ok())
        .unwrap_or_else(|| NetworkSettings::factory("eth0"))
}

/// Puts settings in force on the box (saved only on a development machine, which has
/// no system root): answers notes for the administrator.
async fn put_in_force(root: Option<&Path>, s: &NetworkSettings) -> Result<Vec<String>, String> {
    let Some(root) = root else {
        return Ok(vec![
            "saved; a development machine does not apply network settings".into(),
        ]);
    };
    let applier = Applier {
        root: root.to_path_buf(),
        // The kernel's host name is the box's own only when the root is the real one.
        set_hostname: root == Path::new("/"),
        ..Applier::default()
    };
    let net = Net::open().map_err(|e| e.to_string())?;
    net.apply(&applier, s).await.map_err(|e| e.to_string())
}

/// Saves `s` and puts it in force.
async fn save_and_apply(
    data: &Path,
    root: Option<&Path>,
    s: &NetworkSettings,
) -> Result<Vec<String>, String> {
    SettingsFile::in_data_dir(data)
        .save(s)
        .map_err(|e| e.to_string())?;
    put_in_force(root, s).await
}

/// At start: a change left on trial by a daemon that stopped goes back to the settings
/// from before it.
pub async fn recover_unconfirmed(data: &Path, root: Option<&Path>) {
    let file = data.join(UNCONFIRMED);
    let Ok(text) = std::fs::read(&file) else {
        return;
    };
    match serde_json::from_slice::<NetworkSettings>(&text) {
        Ok(previous) => match save_and_apply(data, root, &previous).await {
            Ok(_) => tracing::warn!(
                "a network change was not confirmed before the exchange stopped: back to the settings from before it"
            ),
            Err(e) => tracing::error!("cannot go back to the network settings from before a change: {e}"),
        },
        Err(e) => tracing::error!("{}: {e}", file.display()),
    }
    let _ = std::fs::remove_file(&file);
}

/// At start after a recovery from the console: the saved settings (the backup's) put
/// in force now rather than at the next boot.
pub async fn put_saved_in_force(data: &Path, root: Option<&Path>) {
    let s = current(data, root);
    match put_in_force(root, &s).await {
        Ok(notes) => tracing::info!(
            "the restored network settings are in force{}",
            if notes.is_empty() {
                String::new()
            } else {
                format!(": {}", notes.join("; "))
            }
        ),
        Err(e) => tracing::error!("cannot put the restored network settings in force: {e}"),
    }
}

fn root(app: &App) -> Option<PathBuf> {
    app.settings.root.clone()
}

/// Puts new settings in force on trial. `Ok(None)`: nothing changed.
async fn change(
    app: &Arc<App>,
    c: &Caller,
    addr: IpAddr,
    s: NetworkSettings,
) -> Result<Option<Vec<String>>, ApiError> {
    s.validate()
        .map_err(|e| ApiError::bad(&e.field, e.message))?;
    let data = app.settings.data_dir.clone();
    let root = root(app);
    let _g = app.net_lock.lock().await;
    let now = current(&data, root.as_deref());
    let previous = {
        let p = app.net_pending.lock().unwrap_or_else(|e| e.into_inner());
        p.as_ref()
            .map(|p| p.previous.clone())
            .unwrap_or(now.clone())
    };
    if s == now {
        return Ok(None);
    }
    system::network::write_atomic(
        &data.join(UNCONFIRMED),
        &serde_json::to_vec_pretty(&previous).expect("JSON"),
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot keep the settings from before the change, so it is not made: {e}"),
        )
    })?;
    SettingsFile::in_data_dir(&data)
        .save(&s)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let id = rand::random::<u64>();
    let deadline = Instant::now() + APPLY_DELAY + app.settings.network_confirm;
    *app.net_pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending {
        id,
        previous: previous.clone(),
        new: s.clone(),
        applied: false,
        deadline,
    });
    app.security(addr, &c.user.username, "network settings changed, on trial");
    let app2 = app.clone();
    tokio::spawn(async move {
        // The answer to this request goes out from the old address first.
        tokio::time::sleep(APPLY_DELAY).await;
        {
            let _g = app2.net_lock.lock().await;
            let still = app2
                .net_pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|p| p.id == id);
            if still {
                match put_in_force(app2.settings.root.as_deref(), &s).await {
                    Ok(notes) => {
                        for n in notes {
                            tracing::warn!("network settings: {n}");
                        }
                        if let Some(p) = app2
                            .net_pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .as_mut()
                            .filter(|p| p.id == id)
                        {
                            p.applied = true;
                        }
                    }
                    Err(e) => {
                        // Not in force: straight back to what it was.
                        app2.net_pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take();
                        let why = format!("network settings could not be put in force ({e})");
                        roll_back(&app2, &previous, &why).await;
                        return;
                    }
                }
            }
        }
        tokio::time::sleep_until(deadline.into()).await;
        let _g = app2.net_lock.lock().await;
        let due = {
            let mut p = app2.net_pending.lock().unwrap_or_else(|e| e.into_inner());
            match p.as_ref() {
                Some(x) if x.id == id => p.take(),
                _ => None,
            }
        };
        if let Some(x) = due {
            roll_back(&app2, &x.previous, "network change not confirmed in time").await;
        }
    });
    Ok(Some(vec![format!(
        "in force in {} ms, on trial for {} s",
        APPLY_DELAY.as_millis(),
        app.settings.network_confirm.as_secs()
    )]))
}

/// Puts the settings from before a change back, ends the trial's file, and says so in
/// the log and the security log (also when going back failed).
async fn roll_back(app: &App, previous: &NetworkSettings, why: &str) {
    let data = &app.settings.data_dir;
    let r = save_and_apply(data, app.settings.root.as_deref(), previous).await;
    let _ = std::fs::remove_file(data.join(UNCONFIRMED));
    let what = match r {
        Ok(_) => format!("{why}: rolled back"),
        Err(e) => format!("{why}; going back failed: {e}"),
    };
    tracing::warn!("{what}");
    app.security(IpAddr::from([0, 0, 0, 0]), crate::ops::ADMIN, &what);
}

/// Confirms the change on trial. It must be in force, and on the box the confirmation
/// must reach one of its new static addresses (so the administrator has reached the box
/// there); with DHCP the new address is not known, and any will do.
async fn confirm(app: &Arc<App>, c: &Caller, addr: IpAddr, local: IpAddr) -> Result<(), ApiError> {
    let _g = app.net_lock.lock().await;
    {
        let mut p = app.net_pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(x) = p.as_ref() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no network change waits for its confirmation",
            ));
        };
        if !x.applied {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "the new settings are not in force yet: try again in a moment",
            ));
        }
        let statics: Vec<IpAddr> = x
            .new
            .interfaces
            .iter()
            .filter_map(|i| i.address.map(IpAddr::V4))
            .collect();
        let dhcp = x.new.interfaces.iter().any(|i| i.dhcp);
        if app.settings.root.is_some() && !dhcp && !statics.is_empty() && !statics.contains(&local)
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "confirm from the new address ({}), so the box is known to be reached there",
                    statics
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        p.take();
    }
    let _ = std::fs::remove_file(app.settings.data_dir.join(UNCONFIRMED));
    app.security(addr, &c.user.username, "network settings confirmed");
    Ok(())
}

pub(crate) fn seconds_left(app: &App) -> Option<u64> {
    app.net_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|p| {
            p.deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
        })
}

fn state(app: &App) -> Value {
    let s = current(&app.settings.data_dir, app.settings.root.as_deref());
    json!({
        "settings": s,
        "applied": app.settings.root.is_some(),
        "pending": seconds_left(app).map(|s| json!({"seconds_left": s})),
        "confirm_seconds": app.settings.network_confirm.as_secs(),
    })
}

/// `/api/v1/system/network` and `.../confirm`.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    match (&req.method, rest) {
        (&Method::GET, []) => {
            need_admin_read(c)?;
            ok(state(app))
        }
        (&Method::PUT, []) => {
            need_admin_write(c)?;
            let s: NetworkSettings = serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"hostname\": \"pbx\", \"interfaces\": [{{\"name\": \"eth0\", \"address\": \"192.0.2.10\", \"prefix\": 24, \"gateway\": \"192.0.2.1\"}}], \"dns\": [\"192.0.2.53\"]}}: {e}"),
                )
            })?;
            match change(app, c, req.addr, s).await? {
                None => ok(state(app)),
                Some(notes) => {
                    let mut v = state(app);
                    v["notes"] = json!(notes);
                    Ok(crate::json_reply(StatusCode::ACCEPTED, &v))
                }
            }
        }
        (&Method::POST, ["confirm"]) => {
            need_admin_write(c)?;
            confirm(app, c, req.addr, req.local.ip()).await?;
            ok(state(app))
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// The settings form's answer: the new settings, or the field that is wrong.
fn from_form(
    base: &NetworkSettings,
    form: &[(String, String)],
) -> Result<NetworkSettings, ApiError> {
    let bad = |e: system::network::Invalid| ApiError::bad(&e.field, e.message);
    let mut s = base.clone();
    s.hostname = field(form, "hostname").unwrap_or("").trim().to_string();
    for i in s.interfaces.iter_mut() {
        let n = &i.name;
        let dhcp = field(form, &format!("dhcp_{n}")).is_some();
        let text = |k: &str| {
            field(form, &format!("{k}_{n}"))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        *i = if dhcp {
            InterfaceSettings {
                name: n.clone(),
                dhcp: true,
                address: None,
                prefix: 0,
                gateway: None,
            }
        } else {
            let gw = text("gateway");
            InterfaceSettings {
                name: n.clone(),
                dhcp: false,
                address: Some(parse_addr("address", &text("address")).map_err(bad)?),
                prefix: parse_mask(&text("mask")).map_err(bad)?,
                gateway: if gw.is_empty() {
                    None
                } else {
                    Some(parse_addr("gateway", &gw).map_err(bad)?)
                },
            }
        };
    }
    s.dns = field(form, "dns")
        .unwrap_or("")
        .split([',', ' '])
        .filter(|x| !x.trim().is_empty())
        .map(|x| parse_addr("dns", x.trim()))
        .collect::<Result<Vec<Ipv4Addr>, _>>()
        .map_err(bad)?;
    Ok(s)
}

/// The page's posts: `settings` and `confirm`. Answers the note to show.
pub(crate) async fn post(
    app: &Arc<App>,
    c: &Caller,
    addr: IpAddr,
    local: std::net::SocketAddr,
    action: &str,
    form: &[(String, String)],
) -> Result<String, ApiError> {
    match action {
        "settings" => {
            let base = current(&app.settings.data_dir, app.settings.root.as_deref());
            let s = from_form(&base, form)?;
            match change(app, c, addr, s.clone()).await? {
                None => Ok("Nothing changed.".into()),
                Some(_) => Ok(format!(
                    "The new settings are in force. Open the web admin at {} within {} seconds and confirm them there, or the box goes back to the settings it had.",
                    s.interfaces
                        .iter()
                        .find_map(|i| i.address)
                        .map_or("the box's new address".to_string(), |a| format!("https://{a}:{}/admin/network", local.port())),
                    app.settings.network_confirm.as_secs()
                )),
            }
        }
        "confirm" => confirm(app, c, addr, local.ip())
            .await
            .map(|()| "The network settings are confirmed.".into()),
        _ => Err(ApiError::not_found("no such action")),
    }
}

/// The settings section of the Network page; a refused form shows what was typed
/// (`posted`), not the settings in force.
pub(crate) fn section(app: &App, c: &Caller, posted: &[(String, String)]) -> Markup {
    let write = c.can_write_admin();
    let s = current(&app.settings.data_dir, app.settings.root.as_deref());
    let left = seconds_left(app);
    let mask = |p: u8| system::network::mask_of(p).to_string();
    let typed = |name: &str, saved: String| match field(posted, name) {
        Some(v) if !posted.is_empty() => v.to_string(),
        _ => saved,
    };
    html! {
        h2 { "Settings" }
        @if let Some(left) = left {
            div id="network-trial" role="alert" {
                p.error { "A network change is on trial: the box goes back to its previous settings in " (left) " seconds unless you confirm it." }
                @if write {
                    form id="network-confirm" method="post" action="/admin/network/confirm" {
                        (csrf_field(c))
                        button type="submit" { "Confirm the network settings" }
                    }
                }
            }
        }
        @if app.settings.root.is_none() {
            p { "This is a development machine: settings are saved, not put in force." }
        }
        form id="network-form" method="post" action="/admin/network/settings" {
            (csrf_field(c))
            label for="hostname" { "Host name" }
            input id="hostname" name="hostname" value=(typed("hostname", s.hostname.clone())) disabled[!write];
            @for i in &s.interfaces {
                fieldset {
                    legend { (i.name) }
                    label { input type="checkbox" name=(format!("dhcp_{}", i.name)) id=(format!("dhcp_{}", i.name)) checked[if posted.is_empty() { i.dhcp } else { field(posted, &format!("dhcp_{}", i.name)).is_some() }] disabled[!write]; " Obtain the configuration by DHCP" }
                    label for=(format!("address_{}", i.name)) { "IP address" }
                    input id=(format!("address_{}", i.name)) name=(format!("address_{}", i.name)) value=(typed(&format!("address_{}", i.name), i.address.map(|a| a.to_string()).unwrap_or_default())) disabled[!write];
                    label for=(format!("mask_{}", i.name)) { "Mask" }
                    input id=(format!("mask_{}", i.name)) name=(format!("mask_{}", i.name)) value=(typed(&format!("mask_{}", i.name), if i.dhcp { String::new() } else { mask(i.prefix) })) disabled[!write];
                    label for=(format!("gateway_{}", i.name)) { "Default gateway (may be empty)" }
                    input id=(format!("gateway_{}", i.name)) name=(format!("gateway_{}", i.name)) value=(typed(&format!("gateway_{}", i.name), i.gateway.map(|a| a.to_string()).unwrap_or_default())) disabled[!write];
                }
            }
            label for="dns" { "DNS servers (up to 3, separated by commas)" }
            input id="dns" name="dns" value=(typed("dns", s.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))) disabled[!write];
            @if write {
                p { "After saving, open the web admin at the new address and confirm within " (app.settings.network_confirm.as_secs()) " seconds; otherwise the box goes back to its settings by itself. The console (menu entry 2) changes the same settings." }
                button type="submit" { "Save and put in force" }
            }
        }
    }
}

/// How long after its answer a change is put in force (the answer leaves from the old
/// address).
const APPLY_DELAY: Duration = Duration::from_millis(700);

/// How long a network change waits for its confirmation by default.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(90);
