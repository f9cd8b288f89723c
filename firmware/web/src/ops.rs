//! The changes the admin pages, the portal and the API make, in one place: each builds a
//! change, the configurator validates and commits it, and the caller gets the result or
//! an error naming the field.

use crate::{unix_now, ApiError, App};
use config::{Config, Extension, Role, SipAccount, Snapshot, User};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use store::ChangeError;
use warp::http::StatusCode;

/// Runs a configuration change off the async threads (the commit waits for the disk).
pub(crate) async fn change<T: Send + 'static>(
    app: &Arc<App>,
    who: &str,
    what: String,
    f: impl FnOnce(&mut Config) -> Result<T, ChangeError> + Send + 'static,
) -> Result<T, ApiError> {
    let cfg = app.cfg.clone();
    let who = who.to_string();
    // The firewall's trial (crate::firewall) is decided with the change, under one lock.
    let _g = app.fw_lock.lock().await;
    let open = app
        .fw_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    let data = app.settings.data_dir.clone();
    let (trial, before, t) = tokio::task::spawn_blocking(move || {
        let mut seen = None;
        let r = cfg.change(&who, &what, unix_now(), |c| {
            let before = c.clone();
            let t = f(c)?;
            let trial = crate::firewall::before_commit(&data, &before, c, open)?;
            seen = Some((trial, before));
            Ok(t)
        });
        r.map(|(_, t)| {
            let (trial, before) = seen.expect("the change ran");
            (trial, before, t)
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(ApiError::from)?;
    crate::firewall::after_commit(app, trial, &before);
    Ok(t)
}

/// Extension `n` of a configuration being changed.
fn extension_mut<'a>(c: &'a mut Config, n: &str) -> Result<&'a mut Extension, ChangeError> {
    c.extensions
        .iter_mut()
        .find(|x| x.number == n)
        .ok_or_else(|| ChangeError::NotFound(format!("extension {n} does not exist")))
}

/// Parses a JSON body into `T`, naming the offending field on failure.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let m = e.inner().to_string();
        // Unknown and missing fields are reported at the object that lacks them.
        let field = match m.split('`').nth(1) {
            Some(f) if m.starts_with("unknown field") || m.starts_with("missing field") => {
                f.to_string()
            }
            _ if path == "." => "body".to_string(),
            _ => path,
        };
        ApiError::bad(&field, m)
    })
}

/// The body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad("body", "must be a JSON object")),
        Err(e) => Err(ApiError::bad("body", format!("not JSON: {e}"))),
    }
}

/// Whether an enabled administrator with a password exists.
pub(crate) fn has_admin(c: &Config) -> bool {
    c.users
        .iter()
        .any(|u| u.role == Role::Administrator && u.enabled && !u.password_hash.is_empty())
}

fn check_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() > 128 {
        return Err(ApiError::bad("password", "must be at most 128 characters"));
    }
    match config::weak_secret_reason(p) {
        Some(why) => Err(ApiError::bad("password", format!("too weak: {why}"))),
        None => Ok(()),
    }
}

async fn hash(p: String) -> String {
    tokio::task::spawn_blocking(move || crate::auth::hash_password(&p))
        .await
        .expect("hashing does not panic")
}

/// The administrator's user name made by first-run setup (Kerio 3.1).
pub const ADMIN: &str = "Admin";

/// First run: creates the administrator while none exists.
pub(crate) async fn setup(app: &Arc<App>, password: &str) -> Result<(), ApiError> {
    if has_admin(&app.cfg.snapshot().config) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the administrator account already exists",
        ));
    }
    check_password(password)?;
    let h = hash(password.to_string()).await;
    change(
        app,
        ADMIN,
        "created the administrator account".into(),
        move |c| {
            if has_admin(c) {
                return Err(ChangeError::conflict(
                    "username",
                    "the administrator account already exists",
                ));
            }
            set_admin(c, h);
            Ok(())
        },
    )
    .await
}

/// Gives `Admin` this password hash, creating the user or making it an enabled
/// administrator again (first-run setup and the console's recovery path).
pub(crate) fn set_admin(c: &mut Config, hash: String) {
    match c
        .users
        .iter_mut()
        .find(|u| u.username.eq_ignore_ascii_case(ADMIN))
    {
        Some(u) => {
            u.role = Role::Administrator;
            u.enabled = true;
            u.password_hash = hash;
        }
        None => {
            let mut u = User::new(ADMIN, Role::Administrator);
            u.full_name = "Administrator".into();
            u.password_hash = hash;
            c.users.push(u);
        }
    }
}

/// Proposes the next free extension number: one above the highest of the most common
/// length, or 101 in an empty box.
pub(crate) fn next_free_number(s: &Snapshot) -> String {
    let mut by_len: std::collections::BTreeMap<usize, Vec<u64>> = Default::default();
    for e in &s.config.extensions {
        if let Ok(n) = e.number.parse::<u64>() {
            by_len.entry(e.number.len()).or_default().push(n);
        }
    }
    let Some((len, nums)) = by_len.into_iter().max_by_key(|(l, v)| (v.len(), *l)) else {
        return "101".into();
    };
    let mut n = nums.iter().max().copied().unwrap_or(100) + 1;
    loop {
        let cand = format!("{n:0len$}");
        if s.extension(&cand).is_none() {
            return cand;
        }
        n += 1;
    }
}

/// Extension JSON; the service PIN is hidden from auditors.
pub(crate) fn extension_json(e: &Extension, reveal: bool) -> Value {
    let mut v = serde_json::to_value(e).expect("serialises");
    if !reveal && !e.service_pin.is_empty() {
        v["service_pin"] = json!("****");
    }
    v
}

/// Shown instead of a password or secret to auditors.
pub(crate) const HIDDEN: &str = "********";

/// Account JSON; the secret is hidden from auditors.
pub(crate) fn account_json(a: &SipAccount, reveal: bool) -> Value {
    let mut v = serde_json::to_value(a).expect("serialises");
    if !reveal {
        v["secret"] = json!(HIDDEN);
    }
    v
}

/// User JSON: never the password hash.
pub(crate) fn user_json(u: &User) -> Value {
    json!({
        "username": u.username,
        "full_name": u.full_name,
        "role": u.role,
        "enabled": u.enabled,
        "extensions": u.extensions,
        "ring_also": u.ring_also,
        "has_password": !u.password_hash.is_empty(),
        "directory": !u.directory_dn.is_empty(),
    })
}

fn extension_from(
    mut m: serde_json::Map<String, Value>,
    number: Option<&str>,
) -> Result<Extension, ApiError> {
    if let Some(n) = number {
        match m.get("number") {
            None => {
                m.insert("number".into(), json!(n));
            }
            Some(Value::String(s)) if s == n => {}
            Some(_) => {
                return Err(ApiError::bad(
                    "number",
                    "the number cannot be changed; add a new extension and remove this one",
                ))
            }
        }
    }
    parse(Value::Object(m))
}

/// Adds an extension; the add dialog can also give it a first SIP account named like
/// the number (with this secret) and assign it to a user.
pub(crate) async fn create_extension(
    app: &Arc<App>,
    who: &str,
    m: serde_json::Map<String, Value>,
    account_secret: Option<String>,
    owner: Option<String>,
) -> Result<Extension, ApiError> {
    let e = extension_from(m, None)?;
    let out = e.clone();
    change(
        app,
        who,
        format!("added extension {}", e.number),
        move |c| {
            let n = e.number.clone();
            if c.extensions.iter().any(|x| x.number == n) {
                return Err(ChangeError::conflict(
                    "number",
                    format!("extension {n} already exists"),
                ));
            }
            c.extensions.push(e);
            if let Some(secret) = account_secret {
                if c.accounts.iter().any(|a| a.username == n) {
                    return Err(ChangeError::conflict(
                        "number",
                        format!("SIP account {n} already exists"),
                    ));
                }
                c.accounts.push(SipAccount::new(&n, &secret, &n));
            }
            if let Some(owner) = owner {
                let u = c
                    .users
                    .iter_mut()
                    .find(|u| u.username == owner)
                    .ok_or_else(|| {
                        ChangeError::field("owner", format!("user {owner} does not exist"))
                    })?;
                u.extensions.push(n);
            }
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

pub(crate) async fn update_extension(
    app: &Arc<App>,
    who: &str,
    number: &str,
    m: serde_json::Map<String, Value>,
) -> Result<Extension, ApiError> {
    if app.cfg.snapshot().extension(number).is_none() {
        return Err(ApiError::not_found(format!(
            "extension {number} does not exist"
        )));
    }
    let e = extension_from(m, Some(number))?;
    let out = e.clone();
    let n = number.to_string();
    change(app, who, format!("changed extension {number}"), move |c| {
        *extension_mut(c, &n)? = e;
        Ok(())
    })
    .await?;
    Ok(out)
}

pub(crate) async fn delete_extension(
    app: &Arc<App>,
    who: &str,
    number: &str,
) -> Result<(), ApiError> {
    let n = number.to_string();
    change(app, who, format!("removed extension {number}"), move |c| {
        let before = c.extensions.len();
        c.extensions.retain(|e| e.number != n);
        if c.extensions.len() == before {
            return Err(ChangeError::NotFound(format!(
                "extension {n} does not exist"
            )));
        }
        c.accounts.retain(|a| a.extension != n);
        for u in &mut c.users {
            u.extensions.retain(|x| *x != n);
        }
        for e in &mut c.extensions {
            if e.caller_id == config::CallerIdPresentation::Present(n.clone()) {
                e.caller_id = config::CallerIdPresentation::Show;
            }
        }
        Ok(())
    })
    .await
}

fn account_from(
    c: &Config,
    mut m: serde_json::Map<String, Value>,
    number: &str,
    username: Option<&str>,
) -> Result<SipAccount, ApiError> {
    match m.get("extension") {
        None => {
            m.insert("extension".into(), json!(number));
        }
        Some(Value::String(s)) if s == number => {}
        Some(_) => {
            return Err(ApiError::bad(
                "extension",
                "must be the extension in the path",
            ))
        }
    }
    match (username, m.get("username")) {
        (Some(u), None) => {
            m.insert("username".into(), json!(u));
        }
        (Some(u), Some(Value::String(s))) if s == u => {}
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "username",
                "the user name cannot be changed; add a new account",
            ))
        }
        (None, None) => {
            m.insert("username".into(), json!(c.free_username(number)));
        }
        (None, Some(_)) => {}
    }
    if !m.contains_key("secret") {
        let s = config::generate_secret(&mut rand::thread_rng());
        m.insert("secret".into(), json!(s));
    }
    parse(Value::Object(m))
}

pub(crate) async fn create_account(
    app: &Arc<App>,
    who: &str,
    number: &str,
    m: serde_json::Map<String, Value>,
) -> Result<SipAccount, ApiError> {
    let snap = app.cfg.snapshot();
    if snap.extension(number).is_none() {
        return Err(ApiError::not_found(format!(
            "extension {number} does not exist"
        )));
    }
    let a = account_from(&snap.config, m, number, None)?;
    let out = a.clone();
    change(
        app,
        who,
        format!("added SIP account {} to extension {number}", a.username),
        move |c| {
            if c.accounts.iter().any(|x| x.username == a.username) {
                return Err(ChangeError::conflict(
                    "username",
                    format!("account {} already exists", a.username),
                ));
            }
            c.accounts.push(a);
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

pub(crate) async fn update_account(
    app: &Arc<App>,
    who: &str,
    number: &str,
    username: &str,
    mut m: serde_json::Map<String, Value>,
) -> Result<SipAccount, ApiError> {
    let snap = app.cfg.snapshot();
    let Some(old) = snap
        .account(username)
        .filter(|a| a.extension == number && !a.is_web())
    else {
        return Err(ApiError::not_found(format!(
            "extension {number} has no account {username}"
        )));
    };
    // An edit that leaves the secret out keeps it.
    if !m.contains_key("secret") {
        m.insert("secret".into(), json!(old.secret));
    }
    let a = account_from(&snap.config, m, number, Some(username))?;
    let out = a.clone();
    let u = username.to_string();
    change(
        app,
        who,
        format!("changed SIP account {username}"),
        move |c| {
            let slot = c
                .accounts
                .iter_mut()
                .find(|x| x.username == u)
                .ok_or_else(|| ChangeError::NotFound(format!("account {u} does not exist")))?;
            *slot = a;
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

pub(crate) async fn delete_account(
    app: &Arc<App>,
    who: &str,
    number: &str,
    username: &str,
) -> Result<(), ApiError> {
    let (n, u) = (number.to_string(), username.to_string());
    change(
        app,
        who,
        format!("removed SIP account {username}"),
        move |c| {
            let before = c.accounts.len();
            c.accounts
                .retain(|a| !(a.username == u && a.extension == n));
            if c.accounts.len() == before {
                return Err(ChangeError::NotFound(format!(
                    "extension {n} has no account {u}"
                )));
            }
            Ok(())
        },
    )
    .await
}

/// A user as the API and forms send it; absent fields keep their value on an edit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserInput {
    pub username: Option<String>,
    pub full_name: Option<String>,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub enabled: Option<bool>,
    pub extensions: Option<Vec<String>>,
    pub ring_also: Option<Vec<String>>,
}

fn last_admin_guard(c: &Config) -> Result<(), ChangeError> {
    if has_admin(c) {
        Ok(())
    } else {
        Err(ChangeError::conflict(
            "role",
            "at least one enabled administrator must remain",
        ))
    }
}

pub(crate) async fn create_user(app: &Arc<App>, who: &str, i: UserInput) -> Result<User, ApiError> {
    let username = i
        .username
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad("username", "is required"))?;
    let role = i.role.ok_or_else(|| ApiError::bad("role", "is required"))?;
    let password = i
        .password
        .clone()
        .ok_or_else(|| ApiError::bad("password", "is required"))?;
    check_password(&password)?;
    let mut u = User::new(&username, role);
    u.full_name = i.full_name.unwrap_or_default();
    u.enabled = i.enabled.unwrap_or(true);
    u.extensions = i.extensions.unwrap_or_default();
    u.ring_also = i.ring_also.unwrap_or_default();
    u.password_hash = hash(password).await;
    let out = u.clone();
    change(app, who, format!("added user {username}"), move |c| {
        if c.users
            .iter()
            .any(|x| x.username.eq_ignore_ascii_case(&u.username))
        {
            return Err(ChangeError::conflict(
                "username",
                format!("user {} already exists", u.username),
            ));
        }
        c.users.push(u);
        Ok(())
    })
    .await?;
    Ok(out)
}

pub(crate) async fn update_user(
    app: &Arc<App>,
    who: &str,
    username: &str,
    i: UserInput,
) -> Result<User, ApiError> {
    let Some(old) = app.cfg.snapshot().config.user(username).cloned() else {
        return Err(ApiError::not_found(format!(
            "user {username} does not exist"
        )));
    };
    if i.password.is_some() && !old.directory_dn.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{username}'s password is the directory's: change it there"),
        ));
    }
    if let Some(n) = &i.username {
        if !n.eq_ignore_ascii_case(&old.username) {
            return Err(ApiError::bad("username", "a user cannot be renamed"));
        }
    }
    let new_hash = match i.password {
        Some(p) => {
            check_password(&p)?;
            Some(hash(p).await)
        }
        None => None,
    };
    let password_changed = new_hash.is_some();
    let name = old.username.clone();
    let out = change(app, who, format!("changed user {name}"), move |c| {
        let u = c
            .users
            .iter_mut()
            .find(|u| u.username == name)
            .ok_or_else(|| ChangeError::NotFound(format!("user {name} does not exist")))?;
        if let Some(v) = i.full_name {
            u.full_name = v;
        }
        if let Some(v) = i.role {
            u.role = v;
        }
        if let Some(v) = i.enabled {
            u.enabled = v;
        }
        if let Some(v) = i.extensions {
            u.extensions = v;
        }
        if let Some(v) = i.ring_also {
            u.ring_also = v;
        }
        if let Some(h) = new_hash {
            u.password_hash = h;
        }
        let out = u.clone();
        last_admin_guard(c)?;
        Ok(out)
    })
    .await?;
    if password_changed || !out.enabled {
        app.sessions().close_user(&out.username, None);
    }
    Ok(out)
}

pub(crate) async fn delete_user(app: &Arc<App>, who: &str, username: &str) -> Result<(), ApiError> {
    let name = username.to_string();
    change(app, who, format!("removed user {username}"), move |c| {
        let before = c.users.len();
        c.users.retain(|u| !u.username.eq_ignore_ascii_case(&name));
        if c.users.len() == before {
            return Err(ChangeError::NotFound(format!("user {name} does not exist")));
        }
        last_admin_guard(c)
    })
    .await?;
    app.sessions().close_user(username, None);
    Ok(())
}

/// Kerio's dial plan types (table 12.1): 1 = extension; ours for what Kerio's table
/// does not name: 2 = ring group, 3 = conference room, 4 = auto attendant script,
/// 5 = call queue, 6 = emergency number, 7 = outbound route (a prefix), 8 = link to
/// another PBX (its prefix, range or patterns), 9 = feature code (a queue's agent login
/// and logout codes and the parking slots too).
pub(crate) const TYPE_EXTENSION: u32 = 1;
pub(crate) const TYPE_RING_GROUP: u32 = 2;
pub(crate) const TYPE_FEATURE: u32 = 9;
pub(crate) const TYPE_CONFERENCE: u32 = 3;
/// Kerio's dial plan names auto attendant scripts as their own type.
pub(crate) const TYPE_AUTO_ATTENDANT: u32 = 4;
pub(crate) const TYPE_QUEUE: u32 = 5;
pub(crate) const TYPE_EMERGENCY: u32 = 6;
pub(crate) const TYPE_OUTBOUND: u32 = 7;
pub(crate) const TYPE_LINK: u32 = 8;

/// Every used number with its type id, type name and description, by number.
pub(crate) fn dial_plan(s: &Snapshot) -> Vec<(String, u32, &'static str, String)> {
    let mut v: Vec<_> = s
        .config
        .extensions
        .iter()
        .map(|e| {
            let owner = s
                .config
                .users
                .iter()
                .find(|u| u.extensions.contains(&e.number))
                .map(|u| {
                    if u.full_name.is_empty() {
                        u.username.clone()
                    } else {
                        u.full_name.clone()
                    }
                });
            let name = e.display_name();
            let desc = if name.is_empty() {
                owner.unwrap_or_default()
            } else {
                name
            };
            (e.number.clone(), TYPE_EXTENSION, "extension", desc)
        })
        .collect();
    for g in &s.config.ring_groups {
        let desc = if g.name.is_empty() {
            format!("rings {}", g.members.join(", "))
        } else {
            g.name.clone()
        };
        v.push((g.number.clone(), TYPE_RING_GROUP, "ring group", desc));
    }
    for a in &s.config.auto_attendants {
        let desc = if a.description.is_empty() {
            "auto attendant script".to_string()
        } else {
            a.description.clone()
        };
        v.push((
            a.number.clone(),
            TYPE_AUTO_ATTENDANT,
            "auto attendant",
            desc,
        ));
    }
    for c in &s.config.conferences {
        let desc = if c.description.is_empty() {
            "conference room".to_string()
        } else {
            c.description.clone()
        };
        v.push((c.number.clone(), TYPE_CONFERENCE, "conference", desc));
    }
    for q in &s.config.queues {
        let name = if q.description.is_empty() {
            format!("queue {}", q.number)
        } else {
            q.description.clone()
        };
        v.push((q.number.clone(), TYPE_QUEUE, "call queue", name.clone()));
        if q.dynamic_agents {
            v.push((
                q.login_code.clone(),
                TYPE_FEATURE,
                "feature code",
                format!("Agent login: {name}"),
            ));
            v.push((
                q.logout_code.clone(),
                TYPE_FEATURE,
                "feature code",
                format!("Agent logout: {name}"),
            ));
        }
    }
    for e in &s.config.emergency.numbers {
        let desc = if e.description.is_empty() {
            "emergency number".to_string()
        } else {
            e.description.clone()
        };
        v.push((e.number.clone(), TYPE_EMERGENCY, "emergency number", desc));
    }
    v.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    // Prefixes and patterns after the numbers: they stand for many numbers.
    for l in &s.config.links {
        let what = if l.description.is_empty() {
            format!("link {}", l.name)
        } else {
            format!("link {}: {}", l.name, l.description)
        };
        if !l.prefix.is_empty() {
            v.push((
                format!("{}<number>", l.prefix),
                TYPE_LINK,
                "link",
                what.clone(),
            ));
        }
        if !l.range_min.is_empty() {
            v.push((
                format!("{}-{}", l.range_min, l.range_max),
                TYPE_LINK,
                "link",
                what.clone(),
            ));
        }
        for p in &l.patterns {
            v.push((p.clone(), TYPE_LINK, "link", what.clone()));
        }
    }
    for r in &s.config.outbound_routes {
        let desc = if r.description.is_empty() {
            format!("outbound through {}", r.interfaces.join(", "))
        } else {
            r.description.clone()
        };
        v.push((
            format!("{}<number>", r.prefix),
            TYPE_OUTBOUND,
            "outbound route",
            desc,
        ));
    }
    let fc = &s.config.feature_codes;
    v.push((
        fc.pickup.clone(),
        TYPE_FEATURE,
        "feature code",
        "Call pickup: a call ringing in my pickup groups".into(),
    ));
    v.push((
        format!("{}<extension>", fc.directed_pickup),
        TYPE_FEATURE,
        "feature code",
        "Directed call pickup: the call ringing at that extension".into(),
    ));
    if !fc.echo_test.is_empty() {
        v.push((
            fc.echo_test.clone(),
            TYPE_FEATURE,
            "feature code",
            "Echo test: hear yourself back (# ends it)".into(),
        ));
    }
    if !fc.voicemail.is_empty() {
        v.push((
            fc.voicemail.clone(),
            TYPE_FEATURE,
            "feature code",
            "Voicemail: my box after my service PIN".into(),
        ));
    }
    if !fc.voicemail_direct.is_empty() {
        v.push((
            format!("{}<extension>", fc.voicemail_direct),
            TYPE_FEATURE,
            "feature code",
            "Direct voicemail: leave a message in that extension's box".into(),
        ));
    }
    if !fc.park.is_empty() {
        v.push((
            fc.park.clone(),
            TYPE_FEATURE,
            "feature code",
            "Call park: the first free slot, said aloud (transfer the call to it)".into(),
        ));
    }
    if !fc.do_not_disturb.is_empty() {
        v.push((
            fc.do_not_disturb.clone(),
            TYPE_FEATURE,
            "feature code",
            "Do not disturb: switches the caller's extension's on or off".into(),
        ));
    }
    for slot in &s.config.parking.slots {
        v.push((
            slot.clone(),
            TYPE_FEATURE,
            "parking slot",
            "Parking slot: transfer a call here to park it, dial it to pick the call up".into(),
        ));
    }
    v
}

/// What the API and the admin page show of the mail server: the password masked.
pub(crate) fn smtp_view(s: &config::Smtp) -> Value {
    let mut v = serde_json::to_value(s).expect("serialises");
    if !s.password.is_empty() {
        v["password"] = json!(MASK);
    }
    v
}

/// What a masked secret stands for in a form or a PUT: the one in force.
pub(crate) const MASK: &str = "****";

/// Sets the mail server (`****` as the password keeps the one in force).
pub(crate) async fn set_smtp(
    app: &Arc<App>,
    who: &str,
    mut s: config::Smtp,
) -> Result<(), ApiError> {
    s.server = s.server.trim().to_string();
    s.from = s.from.trim().to_string();
    s.username = s.username.trim().to_string();
    change(
        app,
        who,
        "changed the voicemail mail server".into(),
        move |c| {
            if s.password == MASK {
                // The password in force goes only to the server and user it was for.
                if s.server != c.smtp.server || s.username != c.smtp.username {
                    return Err(store::ChangeError::Field {
                        field: "password".into(),
                        message: "type the password again for a new server or user name".into(),
                    });
                }
                s.password = c.smtp.password.clone();
            }
            c.smtp = s;
            Ok(())
        },
    )
    .await
}

/// Sets the feature codes (checked against every number like the rest).
pub(crate) async fn set_feature_codes(
    app: &Arc<App>,
    who: &str,
    fc: config::FeatureCodes,
) -> Result<(), ApiError> {
    change(app, who, "changed feature codes".into(), move |c| {
        c.feature_codes = fc;
        Ok(())
    })
    .await
    .map(|_| ())
}

/// The dial plan as Kerio's CSV: `Extension Number,Type ID,Description`.
pub(crate) fn dial_plan_csv(s: &Snapshot) -> String {
    let mut out = String::from("Extension Number,Type ID,Description\r\n");
    for (n, t, _, d) in dial_plan(s) {
        out.push_str(&format!("{n},{t},{}\r\n", csv_field(&d)));
    }
    out
}

pub(crate) fn csv_field(s: &str) -> String {
    // A leading = + - @ would run as a formula in a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The portal's own changes: ringing rules and password.
pub(crate) async fn update_me(
    app: &Arc<App>,
    username: &str,
    ring_also: Option<Vec<String>>,
    password: Option<String>,
) -> Result<(), ApiError> {
    let i = UserInput {
        ring_also,
        password,
        ..Default::default()
    };
    update_user(app, username, username, i).await.map(|_| ())
}

/// What a user may change of their own extension in the portal (Kerio MyPhone): the
/// voicemail PIN, forwarding, call waiting and do not disturb. Fields left out stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MyExtension {
    pub service_pin: Option<String>,
    /// Every call to (empty: ring here).
    pub forward: Option<String>,
    pub call_waiting: Option<bool>,
    pub do_not_disturb: Option<bool>,
    pub no_answer_seconds: Option<u32>,
    pub forwarding: Option<Vec<config::ForwardRule>>,
    /// Where voicemail is e-mailed, and how.
    pub email: Option<String>,
    pub voicemail_email: Option<bool>,
    pub voicemail_attach: Option<bool>,
    pub voicemail_delete_sent: Option<bool>,
}

/// The portal: a user changes one of their own extensions. The whole configuration is
/// validated as for the administrator (forwarding targets, the no-answer time), and the
/// permission group, which only the administrator sets, still decides at call time
/// which external numbers a forward may reach.
pub(crate) async fn set_my_extension(
    app: &Arc<App>,
    user: &User,
    number: &str,
    i: MyExtension,
) -> Result<(), ApiError> {
    if !user.extensions.iter().any(|n| n == number) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not your extension"));
    }
    let mail = i.email.is_some()
        || i.voicemail_email.is_some()
        || i.voicemail_attach.is_some()
        || i.voicemail_delete_sent.is_some();
    let rest = mail
        || i.forward.is_some()
        || i.call_waiting.is_some()
        || i.no_answer_seconds.is_some()
        || i.forwarding.is_some();
    let what = match (&i.service_pin, i.do_not_disturb, rest) {
        (Some(_), None, false) => format!("changed the voicemail PIN of extension {number}"),
        (None, Some(on), false) => format!(
            "turned do not disturb {} for extension {number}",
            if on { "on" } else { "off" }
        ),
        (None, None, false) => return Err(ApiError::bad("body", "nothing to change")),
        _ => format!("changed the settings of extension {number} in the portal"),
    };
    let n = number.to_string();
    change(app, &user.username, what, move |c| {
        let e = extension_mut(c, &n)?;
        if let Some(p) = i.service_pin {
            e.service_pin = p.trim().to_string();
        }
        if let Some(f) = i.forward {
            e.forward = f.trim().to_string();
        }
        if let Some(w) = i.call_waiting {
            e.call_waiting = w;
        }
        if let Some(d) = i.do_not_disturb {
            e.do_not_disturb = d;
        }
        if let Some(s) = i.no_answer_seconds {
            e.no_answer_seconds = s;
        }
        if let Some(mut rules) = i.forwarding {
            for r in &mut rules {
                r.to = r.to.trim().to_string();
            }
            e.forwarding = rules;
        }
        if let Some(m) = i.email {
            e.email = m.trim().to_string();
        }
        if let Some(v) = i.voicemail_email {
            e.voicemail_email = v;
        }
        if let Some(v) = i.voicemail_attach {
            e.voicemail_attach = v;
        }
        if let Some(v) = i.voicemail_delete_sent {
            e.voicemail_delete_sent = v;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_number_follows_the_plan() {
        let mut c = Config::default();
        assert_eq!(next_free_number(&Snapshot::new(0, c.clone())), "101");
        for n in ["100", "101", "105", "20"] {
            c.extensions.push(Extension::new(n));
        }
        assert_eq!(next_free_number(&Snapshot::new(0, c)), "106");
    }

    #[test]
    fn csv_escapes() {
        assert_eq!(csv_field("Smith, John"), "\"Smith, John\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
