//! The local control socket: one JSON request per line, one JSON answer per line.
//!
//! Requests are `{"cmd": NAME, ...}`; answers are `{"ok": true, "data": ...}` or
//! `{"ok": false, "errors": ["...", ...]}`. Only the owner of the data directory can
//! connect (the socket is mode 0600).

use crate::ControlRequest;
use anyhow::{Context, Result};
use config::{Config, Extension, SipAccount};
use pbx::Pbx;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// Largest request accepted (a whole configuration import).
const MAX_REQUEST: usize = 16 << 20;

/// What the control handlers change.
pub struct State {
    pub cfg: Arc<store::Configurator>,
    pub prov: Arc<provision::Provisioner>,
    pub updater: Arc<system::update::Updater>,
}

/// Binds the socket with mode 0600, replacing a stale one.
pub fn listen(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another pbxd is already running on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = l.with_context(|| format!("cannot create control socket {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Accepts connections and forwards their requests to the core's loop.
pub async fn serve(l: UnixListener, tx: mpsc::Sender<ControlRequest>) {
    loop {
        let Ok((stream, _)) = l.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut rd = BufReader::new(rd).take(MAX_REQUEST as u64);
            let mut line = String::new();
            // A client that connects and sends nothing must not hold a task forever.
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(10), rd.read_line(&mut line))
                    .await;
            let answer = match read.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request within 10 s",
                ))
            }) {
                Ok(_) => match serde_json::from_str::<Value>(&line) {
                    Ok(body) => {
                        let (rtx, rrx) = oneshot::channel();
                        if tx.send(ControlRequest { body, reply: rtx }).await.is_err() {
                            return;
                        }
                        rrx.await
                            .unwrap_or_else(|_| fail("daemon is shutting down"))
                    }
                    Err(e) => fail(&format!("request is not JSON: {e}")),
                },
                Err(e) => fail(&format!("cannot read request: {e}")),
            };
            let mut out = answer.to_string();
            out.push('\n');
            let _ = wr.write_all(out.as_bytes()).await;
        });
    }
}

fn fail(msg: &str) -> Value {
    json!({"ok": false, "errors": [msg]})
}

fn ok(data: Value) -> Value {
    json!({"ok": true, "data": data})
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn str_arg<'a>(body: &'a Value, name: &str) -> Result<&'a str, Value> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| fail(&format!("missing argument {name}")))
}

/// A list of strings argument; absent = empty.
fn str_list(body: &Value, name: &str) -> Vec<String> {
    body.get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Validates and commits a change; the configurator publishes the new snapshot, and the
/// core loop takes it before it handles anything else.
fn change(
    state: &mut State,
    what: &str,
    f: impl FnOnce(&mut Config) -> Result<(), String>,
) -> Value {
    change_with(state, what, |c| {
        f(c).map_err(|m| store::ChangeError::field("", m))
    })
}

/// Like [`change`], for changes that already say which field is wrong.
fn change_with(
    state: &mut State,
    what: &str,
    f: impl FnOnce(&mut Config) -> Result<(), store::ChangeError>,
) -> Value {
    let r = state.cfg.change("pbxctl", what, unix_now(), f);
    match r {
        Ok((rev, ())) => {
            tracing::info!(revision = rev, "configuration changed: {what}");
            ok(json!({"revision": rev}))
        }
        Err(store::ChangeError::Invalid(e)) => {
            json!({"ok": false, "errors": e.0.iter().map(|f| f.to_string()).collect::<Vec<_>>()})
        }
        Err(store::ChangeError::Field { message, .. }) => fail(&message),
        Err(e) => fail(&e.to_string()),
    }
}

/// Runs one control request against the core.
pub fn handle(state: &mut State, core: &mut Pbx, spans: &crate::isdn::Spans, body: Value) -> Value {
    let cmd = body
        .get("cmd")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let r: Result<Value, Value> = (|| {
        Ok(match cmd.as_str() {
            "status" => ok(json!({
                "ready": true,
                "revision": state.cfg.snapshot().revision,
                "extensions": state.cfg.snapshot().config.extensions.len(),
                "registrations": core.registrations().len(),
                "calls": core.calls(Instant::now()).len(),
                "banned": core.bans(Instant::now()),
                "peers": core.peers(Instant::now()),
            })),
            "peers" => ok(serde_json::to_value(core.peers(Instant::now())).expect("serialises")),
            "update_install" => {
                let path = std::path::PathBuf::from(str_arg(&body, "path")?);
                if !path.is_absolute() {
                    return Err(fail("the bundle's path must be absolute"));
                }
                tracing::info!(bundle = %path.display(), "firmware update requested (pbxctl)");
                state.updater.install(&path, false).map_err(|e| fail(&e))?;
                ok(serde_json::to_value(state.updater.state()).expect("serialises"))
            }
            "update_status" => ok(serde_json::to_value(state.updater.state()).expect("serialises")),
            "extension_add" => {
                let number = str_arg(&body, "number")?.to_string();
                let name = body
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let password = body
                    .get("password")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                change(state, &format!("add extension {number}"), |c| {
                    if c.extensions.iter().any(|e| e.number == number) {
                        return Err(format!("extension {number}: number: already exists"));
                    }
                    let mut e = Extension::new(&number);
                    let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
                    e.first_name = first.trim().into();
                    e.last_name = last.trim().into();
                    c.extensions.push(e);
                    if let Some(p) = password {
                        if c.accounts.iter().any(|a| a.username == number) {
                            return Err(format!("account {number}: username: already exists"));
                        }
                        c.accounts.push(SipAccount::new(&number, &p, &number));
                    }
                    Ok(())
                })
            }
            "extension_remove" => {
                let number = str_arg(&body, "number")?.to_string();
                change(state, &format!("remove extension {number}"), |c| {
                    if c.remove_extension(&number) {
                        Ok(())
                    } else {
                        Err(format!("extension {number} does not exist"))
                    }
                })
            }
            "extension_list" => {
                let snap = &state.cfg.snapshot();
                let regs = core.registrations();
                let list: Vec<Value> = snap
                    .config
                    .extensions
                    .iter()
                    .map(|e| {
                        let accounts: Vec<Value> = snap
                            .accounts_of(&e.number)
                            .map(|a| json!({"username": a.username, "enabled": a.enabled, "registered": regs.iter().any(|r| r.username == a.username)}))
                            .collect();
                        json!({"number": e.number, "name": e.display_name(), "enabled": e.enabled, "accounts": accounts})
                    })
                    .collect();
                ok(Value::Array(list))
            }
            "account_add" => {
                let username = str_arg(&body, "username")?.to_string();
                let extension = str_arg(&body, "extension")?.to_string();
                let generated = body.get("password").and_then(Value::as_str).is_none();
                let password = match body.get("password").and_then(Value::as_str) {
                    Some(p) => p.to_string(),
                    None => config::generate_secret(&mut rand::thread_rng()),
                };
                let r = change(
                    state,
                    &format!("add account {username} to extension {extension}"),
                    |c| {
                        if c.accounts.iter().any(|a| a.username == username) {
                            return Err(format!("account {username}: username: already exists"));
                        }
                        c.accounts
                            .push(SipAccount::new(&username, &password, &extension));
                        Ok(())
                    },
                );
                if generated && r["ok"] == json!(true) {
                    ok(json!({"revision": r["data"]["revision"], "password": password}))
                } else {
                    r
                }
            }
            "link_conflicts" => ok(serde_json::to_value(
                state.cfg.snapshot().config.link_conflicts(),
            )
            .expect("serialises")),
            "registrations" => ok(serde_json::to_value(core.registrations()).expect("serialises")),
            "calls" => ok(serde_json::to_value(core.calls(Instant::now())).expect("serialises")),
            "voicemail" => ok(serde_json::to_value(core.voicemail_boxes()).expect("serialises")),
            "isdn_list" => {
                let cfg = state.cfg.snapshot();
                let mut live = spans.states(&cfg.config);
                let list: Vec<Value> = cfg
                    .config
                    .isdn_interfaces
                    .iter()
                    .map(|i| {
                        let mut v = serde_json::to_value(i).expect("serialises");
                        v["state"] = live.remove(&i.name).unwrap_or(Value::Null);
                        v
                    })
                    .collect();
                ok(Value::Array(list))
            }
            "isdn_set" => {
                let v = body
                    .get("interface")
                    .cloned()
                    .ok_or_else(|| fail("missing argument interface"))?;
                let iface: config::IsdnInterface =
                    serde_json::from_value(v).map_err(|e| fail(&format!("ISDN interface: {e}")))?;
                let name = iface.name.clone();
                change(state, &format!("set ISDN interface {name}"), |c| {
                    match c.isdn_interfaces.iter_mut().find(|i| i.name == name) {
                        Some(i) => *i = iface,
                        None => c.isdn_interfaces.push(iface),
                    }
                    Ok(())
                })
            }
            "isdn_remove" => {
                let name = str_arg(&body, "name")?.to_string();
                change(state, &format!("remove ISDN interface {name}"), |c| {
                    let before = c.isdn_interfaces.len();
                    c.isdn_interfaces.retain(|i| i.name != name);
                    if c.isdn_interfaces.len() == before {
                        return Err(format!("ISDN interface {name} does not exist"));
                    }
                    for r in &mut c.outbound_routes {
                        r.interfaces.retain(|i| i != &name);
                    }
                    c.outbound_routes.retain(|r| !r.interfaces.is_empty());
                    Ok(())
                })
            }
            "config_export" => {
                ok(serde_json::to_value(&state.cfg.snapshot().config).expect("serialises"))
            }
            "config_import" => {
                let doc = str_arg(&body, "document")?;
                let cfg = match Config::from_json(doc) {
                    Ok(c) => c,
                    Err(e) => {
                        return Err(
                            json!({"ok": false, "errors": e.0.iter().map(|f| f.to_string()).collect::<Vec<_>>()}),
                        )
                    }
                };
                change(state, "import configuration", |c| {
                    *c = cfg;
                    Ok(())
                })
            }
            "admin_password" => {
                let password = str_arg(&body, "password")?;
                match web::reset_admin_password(&state.cfg, "pbxctl", password) {
                    Ok(rev) => ok(json!({"revision": rev, "username": "Admin"})),
                    Err(e) => fail(&e),
                }
            }
            "call_hangup" => {
                let id = body
                    .get("id")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| fail("missing argument id"))?;
                if core.hang_up_call(Instant::now(), id) {
                    ok(json!({"id": id}))
                } else {
                    fail(&format!("no call {id} in progress"))
                }
            }
            "bans" => ok(serde_json::to_value(core.bans(Instant::now())).expect("serialises")),
            "unban" => {
                let key = str_arg(&body, "key")?.to_string();
                if core.lift_ban(Instant::now(), &key, "pbxctl") {
                    ok(json!({ "lifted": key }))
                } else {
                    fail(&format!("no SIP ban on {key}"))
                }
            }
            "parked" => {
                ok(serde_json::to_value(core.parked_calls(Instant::now())).expect("serialises"))
            }
            "queues" => ok(serde_json::to_value(core.queues(Instant::now())).expect("serialises")),
            "queue_login" | "queue_logout" => {
                let queue = str_arg(&body, "queue")?.to_string();
                let ext = str_arg(&body, "extension")?.to_string();
                let login = cmd == "queue_login";
                if core.queue_login(Instant::now(), &queue, &ext, login) {
                    ok(json!({"queue": queue, "extension": ext, "login": login}))
                } else {
                    fail(&format!(
                        "queue {queue} takes no agents logging in, or {ext} is no extension"
                    ))
                }
            }
            "conferences" => {
                ok(serde_json::to_value(core.conferences(Instant::now())).expect("serialises"))
            }
            "conference_mute" | "conference_kick" => {
                let room = str_arg(&body, "room")?.to_string();
                let call = body
                    .get("call")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| fail("missing argument call"))?;
                let muted = body.get("muted").and_then(Value::as_bool).unwrap_or(false);
                let done = if cmd == "conference_kick" {
                    core.kick_participant(Instant::now(), &room, call)
                } else {
                    core.mute_participant(&room, call, muted)
                };
                if done {
                    ok(json!({"room": room, "call": call, "muted": muted}))
                } else {
                    fail(&format!("call {call} is not in conference {room}"))
                }
            }
            "emergency_preset" => {
                let country = str_arg(&body, "country")?.to_string();
                let Some(list) = config::emergency_preset(&country) else {
                    return Err(
                        json!({"ok": false, "error": format!("no preset for {country:?} (known: {})", config::EMERGENCY_COUNTRIES.iter().map(|c| c.0).collect::<Vec<_>>().join(", "))}),
                    );
                };
                return Ok(change_with(
                    state,
                    &format!("emergency numbers of {country}"),
                    |c| {
                        c.emergency.numbers = list;
                        Ok(())
                    },
                ));
            }
            "provisioning_set" => {
                let i = provision::phones::SettingsInput {
                    enabled: body.get("enabled").and_then(Value::as_bool),
                    first_extension: body
                        .get("first_extension")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    auto_create: body.get("auto_create").and_then(Value::as_bool),
                    phone_password: body
                        .get("phone_password")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    ..Default::default()
                };
                let r = change_with(state, "changed provisioning settings", |c| {
                    provision::phones::set_settings(c, i)
                });
                if r["ok"] == json!(true) {
                    let p = &state.cfg.snapshot().config.provisioning;
                    ok(
                        json!({"revision": r["data"]["revision"], "enabled": p.enabled,
                        "first_extension": p.first_extension, "auto_create": p.auto_create}),
                    )
                } else {
                    r
                }
            }
            "phone_add" => {
                let mac = str_arg(&body, "mac")?.to_string();
                let model = str_arg(&body, "model")?.to_string();
                let exts = str_list(&body, "extensions");
                change_with(state, &format!("add phone {mac}"), |c| {
                    provision::phones::add_phone(c, &mac, &model, &exts).map(|_| ())
                })
            }
            "phone_remove" => {
                let mac = str_arg(&body, "mac")?.to_string();
                let r = change_with(state, &format!("remove phone {mac}"), |c| {
                    provision::phones::remove_phone(c, &mac)
                });
                if let (true, Some(m)) = (r["ok"] == json!(true), config::normalize_mac(&mac)) {
                    state.prov.forget(&m);
                }
                r
            }
            "phone_list" => {
                let rows = state.prov.rows(&state.cfg.snapshot());
                ok(serde_json::to_value(rows).expect("serialises"))
            }
            "phone_import" => {
                let csv = str_arg(&body, "csv")?.to_string();
                let dry = body
                    .get("dry_run")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let preview = match provision::phones::preview(
                    &state.cfg.snapshot().config,
                    csv.as_bytes(),
                ) {
                    Ok(p) => p,
                    Err(e) => return Err(fail(&e)),
                };
                if dry {
                    ok(serde_json::to_value(preview).expect("serialises"))
                } else {
                    let r = change_with(state, "import phones from CSV", |c| {
                        provision::phones::import(c, csv.as_bytes(), None).map(|_| ())
                    });
                    if r["ok"] == json!(true) {
                        ok(serde_json::to_value(preview).expect("serialises"))
                    } else {
                        json!({"ok": false, "errors": r["errors"], "lines": preview})
                    }
                }
            }
            "phone_restart" => {
                // A mistyped MAC is an error, not "no MAC" (which means every phone).
                let macs = provision::phones::parse_macs(&str_list(&body, "macs"))
                    .map_err(|e| fail(&e.to_string()))?;
                let targets = state.prov.restart_targets(&state.cfg.snapshot(), &macs);
                let n = targets
                    .iter()
                    .filter(|(a, e)| core.notify_resync(Instant::now(), a, e))
                    .count();
                ok(json!({"notified": n, "phones": targets.len()}))
            }
            "" => fail("missing cmd"),
            other => fail(&format!("unknown command {other:?}")),
        })
    })();
    r.unwrap_or_else(|e| e)
}
