//! The support bundle (Kerio 29: what technical support asks for): one `.tar.gz` with
//! the versions, the health figures, the configuration without its secrets, the network
//! and time settings, the live registrations, calls and peers, and the logs (the store's
//! as text, the files' newest 16 MiB). `GET /api/v1/system/support-bundle`, linked from
//! the Logs page.

use crate::api::need_admin_read;
use crate::{ApiError, App, Caller};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// The most of the log files a bundle carries (the newest first).
const MAX_LOGS: u64 = 16 << 20;

/// Whether a configuration field holds a secret: passwords and their hashes, SIP
/// secrets, PINs.
fn secret_key(k: &str) -> bool {
    k.contains("password") || k.contains("secret") || k == "pin" || k.ends_with("_pin")
}

/// The value with every secret field's text replaced by `****` (an empty one stays
/// empty: "not set" is worth knowing).
pub(crate) fn without_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let y = match x {
                        Value::String(s) if secret_key(k) && !s.is_empty() => {
                            Value::String("****".into())
                        }
                        _ => without_secrets(x),
                    };
                    (k.clone(), y)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_secrets).collect()),
        _ => v.clone(),
    }
}

fn add(t: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(crate::unix_now());
    h.set_cksum();
    t.append_data(&mut h, name, data)
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("JSON")
}

/// `GET /api/v1/system/support-bundle`.
pub(crate) async fn download(app: &Arc<App>, c: &Caller) -> Result<Response, ApiError> {
    need_admin_read(c)?;
    // One at a time: a bundle is made in memory.
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE.lock().await;
    let health = crate::pages::health(app).await;
    let live = [
        (
            "registrations.json",
            app.ask(crate::CoreRequest::Registrations).await,
        ),
        ("calls.json", app.ask(crate::CoreRequest::Calls).await),
        ("peers.json", app.ask(crate::CoreRequest::Peers).await),
    ];
    let app2 = app.clone();
    let bytes = tokio::task::spawn_blocking(move || build(&app2, &health, &live))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot make the support bundle: {e}"),
            )
        })?;
    let mut r = warp::reply::with_header(bytes, "content-type", "application/gzip").into_response();
    let stamp = crate::pages::when(crate::unix_now()).replace([' ', ':'], "-");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"pbx-support-{stamp}.tar.gz\""
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

fn build(app: &App, health: &Value, live: &[(&str, Option<Value>)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    let uname = nix::sys::utsname::uname().ok();
    let versions = serde_json::json!({
        "firmware": app.settings.version,
        "board": app.settings.board,
        "kernel": uname.as_ref().map(|u| format!("{} {}", u.release().to_string_lossy(), u.machine().to_string_lossy())),
        "host": uname.as_ref().map(|u| u.nodename().to_string_lossy().into_owned()),
        "made": crate::unix_now(),
    });
    add(&mut t, "versions.json", &pretty(&versions))?;
    add(&mut t, "health.json", &pretty(health))?;
    let snap = app.cfg.snapshot();
    let mut cfg = serde_json::to_value(&snap.config).expect("JSON");
    cfg["revision"] = snap.revision.into();
    add(&mut t, "config.json", &pretty(&without_secrets(&cfg)))?;
    let net = crate::network::current(&app.settings.data_dir, app.settings.root.as_deref());
    add(
        &mut t,
        "network.json",
        &pretty(&serde_json::to_value(&net).expect("JSON")),
    )?;
    if let Ok(time) = std::fs::read(app.settings.data_dir.join("system/time.json")) {
        add(&mut t, "time.json", &time)?;
    }
    for (name, v) in live {
        let v = v
            .clone()
            .unwrap_or(Value::String("the exchange did not answer".into()));
        add(&mut t, name, &pretty(&without_secrets(&v)))?;
    }
    let store = app.cfg.store();
    for name in ["config", "security"] {
        let mut text = crate::log_pages::store_lines(store, name)
            .unwrap_or_default()
            .join("\n");
        text.push('\n');
        add(&mut t, &format!("logs/{name}.log"), text.as_bytes())?;
    }
    // The files, newest first, until the cap.
    let mut left = MAX_LOGS;
    for log in logs::FileLog::ALL {
        for f in app.settings.logs.files_oldest_first(log).iter().rev() {
            let Ok(data) = std::fs::read(f) else { continue };
            if data.len() as u64 > left {
                break;
            }
            left -= data.len() as u64;
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            add(&mut t, &format!("logs/{name}"), &data)?;
        }
    }
    t.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn temperatures_come_from_thermal_zones_and_hwmon() {
        let d = tempfile::tempdir().unwrap();
        let z = d.path().join("sys/class/thermal/thermal_zone0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("type"), "x86_pkg_temp\n").unwrap();
        std::fs::write(z.join("temp"), "47500\n").unwrap();
        let cool = d.path().join("sys/class/thermal/cooling_device0");
        std::fs::create_dir_all(&cool).unwrap();
        let h = d.path().join("sys/class/hwmon/hwmon1");
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(h.join("name"), "coretemp\n").unwrap();
        std::fs::write(h.join("temp1_input"), "52000\n").unwrap();
        std::fs::write(h.join("temp1_label"), "Core 0\n").unwrap();
        std::fs::write(h.join("temp2_input"), "garbage\n").unwrap();
        let t = crate::pages::temperatures(d.path());
        assert_eq!(
            t,
            vec![
                json!({"sensor": "x86_pkg_temp", "celsius": 47.5}),
                json!({"sensor": "coretemp Core 0", "celsius": 52.0})
            ]
        );
        assert!(crate::pages::temperatures(&d.path().join("none")).is_empty());
    }

    #[test]
    fn secrets_are_hidden_and_the_rest_kept() {
        let v = json!({
            "accounts": [{"username": "101", "secret": "Sip-Secret-1"}],
            "users": [{"username": "Admin", "password_hash": "$argon2id$...", "role": "administrator"}],
            "extensions": [{"number": "101", "service_pin": "4321", "phone_password": "", "voicemail": true}],
            "smtp": {"server": "mail", "password": "x"},
            "conferences": [{"number": "800", "pin": "1234"}],
            "queues": [{"login_code": "7001", "pinned": "kept"}]
        });
        let w = without_secrets(&v);
        let text = w.to_string();
        for s in ["Sip-Secret-1", "argon2", "4321", "1234", "\"x\""] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert_eq!(
            w["extensions"][0]["phone_password"], "",
            "empty stays empty"
        );
        assert_eq!(w["accounts"][0]["username"], "101");
        assert_eq!(w["queues"][0]["login_code"], "7001");
        assert_eq!(w["queues"][0]["pinned"], "kept");
        assert_eq!(w["users"][0]["password_hash"], "****");
    }
}
