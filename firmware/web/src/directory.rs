//! Directory users (Kerio 11) over LDAP (the `ldap3` crate, rustls): the box binds as
//! the configured account, searches the users, and keeps its users and their
//! extensions in step (created, updated, disabled when gone from the directory; never
//! deleted, so their voicemail and history stay). A directory user logs in to the portal
//! by binding to the directory as itself with the password typed; the box stores none.
//!
//! API: `GET`/`PUT /api/v1/directory` (the bind password shown as `****`),
//! `POST /api/v1/directory/sync`.

use crate::api::{need_admin_read, need_admin_write, ok};
use crate::{ApiError, App, Caller, Req};
use config::{Config, Directory, Extension, Role, User};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

/// Longest a directory operation may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most entries one synchronisation takes.
const MAX_ENTRIES: usize = 5000;

/// What the last synchronisation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Unix seconds.
    pub when: u64,
    pub ok: bool,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub disabled: Vec<String>,
    /// Entries left out, with why.
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The last report, and when the next synchronisation is due.
#[derive(Default)]
pub(crate) struct State {
    last: Option<Report>,
    synced_at: Option<Instant>,
    settings: Option<Directory>,
}

/// ldaps:// checks the server's certificate against the system's authorities and the
/// CAs the administrator added (web::tls::client_config, as SIP and syslog do).
fn settings_conn(data: &Path) -> Result<LdapConnSettings, String> {
    let (tls, _) = crate::tls::client_config(data).map_err(|e| e.to_string())?;
    Ok(LdapConnSettings::new()
        .set_conn_timeout(TIMEOUT)
        .set_config(tls))
}

/// Binds as `dn` with `password`: `Ok(true)` when the directory takes it, `Ok(false)`
/// when it says the credentials are wrong.
pub(crate) async fn bind_as(
    data: &Path,
    d: &Directory,
    dn: &str,
    password: &str,
) -> Result<bool, String> {
    // An empty password is an unauthenticated bind (RFC 4513 5.1.2), which succeeds:
    // never a login.
    if password.is_empty() || dn.is_empty() {
        return Ok(false);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings_conn(data)?, &d.url)
        .await
        .map_err(|e| e.to_string())?;
    ldap3::drive!(conn);
    let r = tokio::time::timeout(TIMEOUT, ldap.simple_bind(dn, password))
        .await
        .map_err(|_| "the directory did not answer".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = ldap.unbind().await;
    match r.rc {
        0 => Ok(true),
        49 => Ok(false), // invalidCredentials
        rc => Err(format!("the directory answered {rc}: {}", r.text)),
    }
}

/// One user as the directory has it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    dn: String,
    username: String,
    name: String,
    extension: String,
    email: String,
}

fn first(e: &SearchEntry, attr: &str) -> String {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .cloned()
        .unwrap_or_default()
}

/// Reads the users from the directory.
/// The entries, and whether that is all of them (no size limit hit).
async fn fetch(data: &Path, d: &Directory) -> Result<(Vec<Entry>, bool), String> {
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings_conn(data)?, &d.url)
        .await
        .map_err(|e| format!("cannot reach {}: {e}", d.url))?;
    ldap3::drive!(conn);
    ldap.with_timeout(TIMEOUT)
        .simple_bind(&d.bind_dn, &d.bind_password)
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| format!("the directory refused the box's bind: {e}"))?;
    let attrs = vec![
        d.username_attribute.as_str(),
        d.name_attribute.as_str(),
        d.extension_attribute.as_str(),
        d.email_attribute.as_str(),
    ];
    let res = ldap
        .with_timeout(TIMEOUT)
        .search(&d.base_dn, Scope::Subtree, &d.filter, attrs)
        .await
        .map_err(|e| e.to_string())?;
    let _ = ldap.unbind().await;
    // sizeLimitExceeded (4): the entries up to the server's limit, not all of them.
    let (entries, whole) = match res.1.rc {
        0 => (res.0, true),
        4 => (res.0, false),
        _ => return Err(format!("the search failed: {}", res.1)),
    };
    let whole = whole && entries.len() <= MAX_ENTRIES;
    let mut list: Vec<Entry> = entries
        .into_iter()
        .take(MAX_ENTRIES)
        .map(SearchEntry::construct)
        .map(|e| Entry {
            username: first(&e, &d.username_attribute),
            name: first(&e, &d.name_attribute),
            extension: first(&e, &d.extension_attribute)
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
            email: first(&e, &d.email_attribute),
            dn: e.dn,
        })
        .collect();
    // The directory's order is its own: the box's is by name.
    list.sort_by(|a, b| a.username.cmp(&b.username));
    Ok((list, whole))
}

/// The configuration with the directory's users in it; what changed.
fn merge(c: &mut Config, entries: &[Entry], report: &mut Report, whole: bool) {
    let mut seen: HashMap<String, ()> = HashMap::new();
    for e in entries {
        let valid = !e.username.is_empty()
            && e.username.len() <= 64
            && e.username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
        if !valid {
            report
                .skipped
                .push(format!("{}: no usable user name ({:?})", e.dn, e.username));
            continue;
        }
        let known = c
            .users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(&e.username))
            .cloned();
        if known.as_ref().is_some_and(|u| u.directory_dn.is_empty()) {
            report.skipped.push(format!(
                "{}: a local user of the box has that name",
                e.username
            ));
            continue;
        }
        seen.insert(e.username.to_ascii_lowercase(), ());
        // Each entry is merged on its own: one that would make the configuration
        // invalid is left out, not the whole synchronisation.
        let before = c.clone();
        let mut note = None;
        // The extension: the directory's number, made when the box has no such
        // number. An extension the box already has is never handed over (a directory
        // entry must not take somebody's voicemail and calls), unless the user has it.
        let mut ext = Vec::new();
        if !e.extension.is_empty() && e.extension.len() <= 16 {
            let has = known
                .as_ref()
                .is_some_and(|u| u.extensions.contains(&e.extension));
            if has {
                ext.push(e.extension.clone());
            } else if c.extensions.iter().any(|x| x.number == e.extension) {
                note = Some(format!(
                    "{}: extension {} is already on the box, not given",
                    e.username, e.extension
                ));
            } else {
                let mut x = Extension::new(&e.extension);
                let (first_name, last_name) = e.name.split_once(' ').unwrap_or((&e.name, ""));
                x.first_name = first_name.to_string();
                x.last_name = last_name.to_string();
                x.email = e.email.clone();
                c.extensions.push(x);
                ext.push(e.extension.clone());
            }
        }
        let mut changed = None;
        match c
            .users
            .iter_mut()
            .find(|u| u.username.eq_ignore_ascii_case(&e.username))
        {
            Some(u) => {
                let old = u.clone();
                u.directory_dn = e.dn.clone();
                u.full_name = e.name.clone();
                // A user disabled on the box (by an administrator, or because it was
                // gone from the directory) stays so: enabling is the administrator's.
                for x in &ext {
                    if !u.extensions.contains(x) {
                        u.extensions.push(x.clone());
                    }
                }
                if *u != old {
                    changed = Some(false);
                }
            }
            None => {
                let mut u = User::new(&e.username, Role::User);
                u.full_name = e.name.clone();
                u.extensions = ext;
                u.directory_dn = e.dn.clone();
                c.users.push(u);
                changed = Some(true);
            }
        }
        if let Err(v) = c.validate() {
            *c = before;
            report.skipped.push(format!(
                "{}: {}",
                e.username,
                v.0.first().map_or(String::new(), |f| f.to_string())
            ));
            continue;
        }
        report.skipped.extend(note);
        match changed {
            Some(true) => report.created.push(e.username.clone()),
            Some(false) => report.updated.push(e.username.clone()),
            None => {}
        }
    }
    // A partial answer (a size limit) or none at all says nothing of who left.
    if !whole || entries.is_empty() {
        report
            .skipped
            .push("the directory's answer was not whole or empty: nobody was disabled".into());
        return;
    }
    // Gone from the directory: disabled, kept with their data.
    for u in c.users.iter_mut() {
        if !u.directory_dn.is_empty()
            && u.enabled
            && !seen.contains_key(&u.username.to_ascii_lowercase())
        {
            u.enabled = false;
            report.disabled.push(u.username.clone());
        }
    }
}

/// Synchronises now; the report is kept for the page and the API.
pub(crate) async fn sync(app: &Arc<App>) -> Report {
    let d = app.cfg.snapshot().config.directory.clone();
    let mut report = Report {
        when: crate::unix_now(),
        ..Report::default()
    };
    match fetch(&app.settings.data_dir, &d).await {
        Err(e) => report.error = e,
        Ok(entries) => {
            let mut r2 = report.clone();
            let res = crate::ops::change(
                app,
                "directory",
                "synchronised the directory users".into(),
                {
                    let entries = entries.clone();
                    move |c| {
                        let mut r = Report::default();
                        merge(c, &entries.0, &mut r, entries.1);
                        Ok(r)
                    }
                },
            )
            .await;
            match res {
                Ok(r) => {
                    r2.created = r.created;
                    r2.updated = r.updated;
                    r2.disabled = r.disabled;
                    r2.skipped = r.skipped;
                    r2.ok = true;
                }
                Err(e) => r2.error = e.error,
            }
            report = r2;
        }
    }
    if report.ok {
        tracing::info!(created = ?report.created, updated = ?report.updated, disabled = ?report.disabled, "directory synchronised");
    } else {
        tracing::warn!("directory synchronisation failed: {}", report.error);
    }
    let mut s = app.directory.lock().unwrap_or_else(|e| e.into_inner());
    s.last = Some(report.clone());
    s.synced_at = Some(Instant::now());
    s.settings = Some(d);
    report
}

/// Synchronises every `sync_minutes`, and soon after the settings change.
pub async fn follow(app: Arc<App>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let d = app.cfg.snapshot().config.directory.clone();
        if !d.enabled {
            continue;
        }
        let due = {
            let s = app.directory.lock().unwrap_or_else(|e| e.into_inner());
            s.settings.as_ref() != Some(&d)
                || s.synced_at.is_none_or(|t| {
                    t.elapsed() >= Duration::from_secs(u64::from(d.sync_minutes) * 60)
                })
        };
        if due {
            sync(&app).await;
        }
    }
}

fn shown(d: &Directory) -> Value {
    let mut v = serde_json::to_value(d).expect("JSON");
    if !d.bind_password.is_empty() {
        v["bind_password"] = json!("****");
    }
    v
}

fn state(app: &App) -> Value {
    let d = app.cfg.snapshot().config.directory.clone();
    let s = app.directory.lock().unwrap_or_else(|e| e.into_inner());
    json!({"settings": shown(&d), "last_sync": s.last})
}

/// `/api/v1/directory...`.
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
            let mut d: Directory = serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"enabled\": true, \"url\": \"ldap://dc.example.org\", \"bind_dn\": \"...\", \"bind_password\": \"...\", \"base_dn\": \"...\"}}: {e}"),
                )
            })?;
            save(app, c, &mut d).await?;
            ok(state(app))
        }
        (&Method::POST, ["sync"]) => {
            need_admin_write(c)?;
            let r = sync(app).await;
            if r.ok {
                ok(serde_json::to_value(r).expect("JSON"))
            } else {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.error))
            }
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// Saves the settings; `****` keeps the bind password there is.
pub(crate) async fn save(app: &Arc<App>, c: &Caller, d: &mut Directory) -> Result<(), ApiError> {
    if d.bind_password == "****" {
        let now = app.cfg.snapshot().config.directory.clone();
        // The saved password goes only to the server and account it was given for.
        if now.url != d.url || now.bind_dn != d.bind_dn {
            return Err(ApiError::bad(
                "bind_password",
                "type the password again for another server or bind DN",
            ));
        }
        d.bind_password = now.bind_password;
    }
    let d = d.clone();
    crate::ops::change(
        app,
        &c.user.username,
        "changed the directory settings".into(),
        move |cfg| {
            cfg.directory = d;
            Ok(())
        },
    )
    .await
    .map(|_| ())
}

/// The last synchronisation, for the Users page.
pub(crate) fn last(app: &App) -> Option<Report> {
    app.directory
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last
        .clone()
}

/// For a login: whether the directory takes `password` for this directory user.
pub(crate) async fn check(app: &App, user: &User, password: &str) -> bool {
    // Synchronisation off or not, the directory's users keep logging in with it.
    let d = app.cfg.snapshot().config.directory.clone();
    if d.url.is_empty() {
        return false;
    }
    // An administrator's or auditor's password does not cross the network in the
    // clear, nor is a forged answer on it taken for theirs: ldaps only.
    if user.role != Role::User && !d.url.starts_with("ldaps://") {
        tracing::warn!(user = %user.username, "directory login refused: this role needs ldaps://");
        return false;
    }
    match bind_as(&app.settings.data_dir, &d, &user.directory_dn, password).await {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(user = %user.username, "directory login: {e}");
            false
        }
    }
}

/// Guards the lock type for `App`.
pub(crate) type Shared = Mutex<State>;

/// The Users page's directory form.
pub(crate) async fn post_settings(
    app: &Arc<App>,
    c: &Caller,
    form: &[(String, String)],
) -> Result<(), ApiError> {
    need_admin_write(c)?;
    let f = |k: &str| {
        crate::pages::field(form, k)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut d = Directory {
        enabled: crate::pages::field(form, "enabled").is_some(),
        url: f("url"),
        bind_dn: f("bind_dn"),
        bind_password: crate::pages::field(form, "bind_password")
            .unwrap_or("")
            .to_string(),
        base_dn: f("base_dn"),
        filter: f("filter"),
        username_attribute: f("username_attribute"),
        name_attribute: f("name_attribute"),
        extension_attribute: f("extension_attribute"),
        email_attribute: f("email_attribute"),
        sync_minutes: f("sync_minutes")
            .parse()
            .map_err(|_| ApiError::bad("sync_minutes", "must be a whole number"))?,
    };
    save(app, c, &mut d).await
}

/// The Users page's "Synchronize now".
pub(crate) async fn post_sync(app: &Arc<App>, c: &Caller) -> Result<String, ApiError> {
    need_admin_write(c)?;
    let r = sync(app).await;
    if r.ok {
        Ok(format!(
            "Directory synchronised: {} created, {} updated, {} disabled, {} skipped.",
            r.created.len(),
            r.updated.len(),
            r.disabled.len(),
            r.skipped.len()
        ))
    } else {
        Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.error))
    }
}

/// The directory section of the Users page.
pub(crate) fn section(app: &App, c: &Caller) -> maud::Markup {
    use maud::html;
    let write = c.can_write_admin();
    let d = app.cfg.snapshot().config.directory.clone();
    let last = last(app);
    html! {
        h2 { "Directory users (LDAP, Active Directory)" }
        p { "Users and their extensions are taken from the directory and kept in step; they log in to MyPhone with the directory's password, which the box never stores. Users gone from the directory are disabled, not deleted." }
        @if let Some(r) = &last {
            p id="directory-last" data-ok=(r.ok) {
                "Last synchronisation " (crate::pages::when(r.when)) " UTC: "
                @if r.ok { (r.created.len()) " created, " (r.updated.len()) " updated, " (r.disabled.len()) " disabled, " (r.skipped.len()) " skipped." } @else { "failed: " (r.error) }
            }
        }
        form id="directory-form" method="post" action="/admin/directory" {
            (crate::pages::csrf_field(c))
            fieldset disabled[!write] {
                label { input type="checkbox" name="enabled" checked[d.enabled]; " Synchronise users from a directory" }
                label for="dir-url" { "Server (ldap://host or ldaps://host)" }
                input id="dir-url" name="url" value=(d.url) placeholder="ldaps://dc.example.org";
                label for="dir-bind" { "Bind as (DN)" }
                input id="dir-bind" name="bind_dn" value=(d.bind_dn);
                label for="dir-pw" { "Bind password" }
                input id="dir-pw" name="bind_password" type="password" value=(if d.bind_password.is_empty() { "" } else { "****" }) autocomplete="off";
                label for="dir-base" { "Search base" }
                input id="dir-base" name="base_dn" value=(d.base_dn) placeholder="ou=people,dc=example,dc=org";
                label for="dir-filter" { "Filter" }
                input id="dir-filter" name="filter" value=(d.filter);
                label for="dir-user" { "User name attribute (Active Directory: sAMAccountName)" }
                input id="dir-user" name="username_attribute" value=(d.username_attribute);
                label for="dir-name" { "Full name attribute" }
                input id="dir-name" name="name_attribute" value=(d.name_attribute);
                label for="dir-ext" { "Extension attribute" }
                input id="dir-ext" name="extension_attribute" value=(d.extension_attribute);
                label for="dir-mail" { "E-mail attribute" }
                input id="dir-mail" name="email_attribute" value=(d.email_attribute);
                label for="dir-minutes" { "Synchronise every (minutes, 5-1440)" }
                input id="dir-minutes" name="sync_minutes" type="number" min="5" max="1440" value=(d.sync_minutes);
                button type="submit" { "Save" }
            }
        }
        @if write && d.enabled {
            form id="directory-sync" method="post" action="/admin/directory/sync" {
                (crate::pages::csrf_field(c))
                button type="submit" { "Synchronise now" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(u: &str, ext: &str) -> Entry {
        Entry {
            dn: format!("uid={u},ou=people,dc=example,dc=org"),
            username: u.into(),
            name: format!("{u} Example"),
            extension: ext.into(),
            email: format!("{u}@example.org"),
        }
    }

    #[test]
    fn users_are_created_updated_disabled_and_local_ones_left_alone() {
        let mut c = Config::default();
        c.users.push(User::new("local", Role::User));
        let mut r = Report::default();
        merge(
            &mut c,
            &[
                entry("alice", "301"),
                entry("bob", "302"),
                entry("local", "303"),
                entry("bad name!", ""),
            ],
            &mut r,
            true,
        );
        assert_eq!(r.created, ["alice", "bob"]);
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
        let alice = c.user("alice").unwrap();
        assert_eq!(alice.extensions, ["301"]);
        assert_eq!(alice.role, Role::User);
        assert!(alice.password_hash.is_empty());
        let x = c.extensions.iter().find(|x| x.number == "301").unwrap();
        assert_eq!(
            (x.first_name.as_str(), x.last_name.as_str()),
            ("alice", "Example")
        );
        assert!(!c.extensions.iter().any(|x| x.number == "303"));
        // Bob leaves; Alice is renamed: one disabled, one updated, nothing created.
        let mut r = Report::default();
        let mut a = entry("alice", "301");
        a.name = "Alice Smith".into();
        merge(&mut c, &[a.clone()], &mut r, true);
        assert_eq!(
            (r.created.len(), r.updated.clone(), r.disabled.clone()),
            (0, vec!["alice".to_string()], vec!["bob".to_string()])
        );
        assert!(!c.user("bob").unwrap().enabled);
        assert!(c.user("local").unwrap().enabled);
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        // Bob comes back: he stays disabled until an administrator enables him. Carol
        // names Alice's extension: she is created without it. A partial answer
        // disables nobody.
        let mut carol = entry("carol", "301");
        carol.name = "Carol".into();
        let mut r = Report::default();
        merge(&mut c, &[entry("bob", "302"), carol], &mut r, false);
        assert!(!c.user("bob").unwrap().enabled);
        assert!(c.user("carol").unwrap().extensions.is_empty());
        assert!(
            r.skipped
                .iter()
                .any(|s| s.contains("extension 301 is already on the box")),
            "{:?}",
            r.skipped
        );
        assert!(r.disabled.is_empty() && c.user("alice").unwrap().enabled);
        // An entry that would not validate is left out, the others go in.
        let mut r = Report::default();
        let mut dave = entry("dave", "0");
        dave.extension = "1234567890123".into();
        merge(&mut c, &[a, dave], &mut r, true);
        assert!(c.validate().is_ok());
    }
}
