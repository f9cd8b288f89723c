//! Phone provisioning in the web: `/api/v1/provisioning/...`, the Provisioned Phones
//! page and `/prov/<file>`, where phones that prefer HTTPS fetch their files.

use crate::ops::{self, change};
use crate::{json_reply, ApiError, App, Caller, Req};
use provision::phones::{self, SettingsInput};
use provision::{Fetch, Via};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use warp::http::{HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// Largest firmware image accepted.
pub const MAX_FIRMWARE: usize = 64 << 20;

/// Whether a request may carry a firmware-sized body.
pub(crate) fn big_body(method: &Method, path: &str) -> bool {
    method == Method::PUT && path.starts_with("/api/v1/provisioning/firmware/")
}

/// `GET /prov/<file>`: the same files and rules as TFTP; no login (phones cannot).
pub(crate) async fn prov(app: &Arc<App>, req: &Req, name: &str) -> Response {
    let Some(name) = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
    else {
        return text(StatusCode::BAD_REQUEST, "file name is not UTF-8".into());
    };
    let p = app.prov.clone();
    let (client, local, port) = (req.addr, req.local.ip(), req.local.port());
    let r = tokio::task::spawn_blocking(move || {
        p.fetch(&name, client, local, Via::Https { port }, crate::unix_now())
    })
    .await;
    match r {
        Ok(Fetch::File(bytes)) => {
            let mut r = Response::new(bytes.into());
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        Ok(Fetch::NotFound(m)) => text(StatusCode::NOT_FOUND, m),
        Ok(Fetch::Denied(m)) => text(StatusCode::FORBIDDEN, m),
        Ok(Fetch::Failed(m)) => text(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn text(status: StatusCode, m: String) -> Response {
    warp::reply::with_status(m, status).into_response()
}

/// Settings as JSON; the phone password only for administrators.
fn settings_json(app: &Arc<App>, reveal: bool) -> Value {
    let snap = app.cfg.snapshot();
    let mut v = serde_json::to_value(&snap.config.provisioning).expect("serialises");
    if !reveal && !snap.config.provisioning.phone_password.is_empty() {
        v["phone_password"] = json!("****");
    }
    v["scheduled_restart"] = match app.prov.scheduled_restart() {
        Some((at, macs)) => json!({"at": at, "phones": macs}),
        None => Value::Null,
    };
    v
}

fn models_json() -> Value {
    Value::Array(
        config::PHONE_MODELS
            .iter()
            .map(|m| json!({"name": m.name, "manufacturer": m.manufacturer, "extensions": m.lines}))
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    mac: Option<String>,
    model: Option<String>,
    extensions: Option<Vec<String>>,
    blf_keys: Option<Vec<config::BlfKey>>,
}

/// Sets phone `mac`'s BLF keys (when given) in a change.
fn set_blf(cfg: &mut config::Config, mac: &str, keys: Option<Vec<config::BlfKey>>) {
    if let (Some(keys), Some(p)) = (keys, cfg.phones.iter_mut().find(|p| p.mac == mac)) {
        p.blf_keys = keys;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    csv: String,
    #[serde(default)]
    lines: Option<Vec<usize>>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartBody {
    #[serde(default)]
    phones: Vec<String>,
    /// Unix time; absent = now.
    at: Option<u64>,
    /// Cancel a scheduled restart.
    #[serde(default)]
    cancel: bool,
}

/// Asks the exchange to NOTIFY the phones now; answers how many were reached.
pub(crate) async fn restart_now(app: &Arc<App>, phones: Vec<String>) -> Result<usize, ApiError> {
    let targets = app.prov.restart_targets(&app.cfg.snapshot(), &phones);
    app.ask(|tx| crate::CoreRequest::Resync(targets, tx))
        .await
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the exchange did not answer",
            )
        })
}

/// Routes `/api/v1/provisioning/...` (`segs` after `provisioning`).
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    segs: &[&str],
) -> Result<Response, ApiError> {
    if req.changes_state() {
        crate::api::need_admin_write(c)?;
    } else {
        crate::api::need_admin_read(c)?;
    }
    let who = c.user.username.clone();
    let okj = |v: Value| Ok(json_reply(StatusCode::OK, &v));
    match (&req.method, segs) {
        (&Method::GET, []) => okj(settings_json(app, c.can_write_admin())),
        (&Method::PUT, []) => {
            let i: SettingsInput = ops::parse(Value::Object(ops::object(&req.body)?))?;
            change(
                app,
                &who,
                "changed provisioning settings".into(),
                move |cfg| phones::set_settings(cfg, i),
            )
            .await?;
            okj(settings_json(app, true))
        }
        (&Method::GET, ["models"]) => okj(models_json()),
        (&Method::GET, ["phones"]) => {
            okj(serde_json::to_value(app.prov.rows(&app.cfg.snapshot())).expect("serialises"))
        }
        (&Method::POST, ["phones"]) => {
            let b: PhoneBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            let mac = b
                .mac
                .ok_or_else(|| ApiError::bad("mac", "missing field `mac`"))?;
            let model = b
                .model
                .ok_or_else(|| ApiError::bad("model", "missing field `model`"))?;
            let exts = b.extensions.unwrap_or_default();
            let blf = b.blf_keys;
            let snap = app.cfg.snapshot();
            if let Some(m) = config::normalize_mac(&mac) {
                if snap
                    .config
                    .phones
                    .iter()
                    .any(|p| p.mac == m && !p.lines.is_empty())
                {
                    return Err(ApiError::field(
                        StatusCode::CONFLICT,
                        "mac",
                        format!("phone {} is already in the table", config::format_mac(&m)),
                    ));
                }
            }
            let mac = change(app, &who, format!("added phone {mac}"), move |cfg| {
                let m = phones::put_phone(cfg, &mac, &model, &exts)?;
                set_blf(cfg, &m, blf);
                Ok(m)
            })
            .await?;
            Ok(json_reply(StatusCode::CREATED, &phone_row(app, &mac)))
        }
        (&Method::GET, ["phones", mac]) => {
            let m = config::normalize_mac(mac)
                .ok_or_else(|| ApiError::not_found(format!("no phone {mac}")))?;
            let v = phone_row(app, &m);
            if v.is_null() {
                return Err(ApiError::not_found(format!("no phone {mac}")));
            }
            okj(v)
        }
        (&Method::PUT, ["phones", mac]) => {
            let b: PhoneBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            let m = config::normalize_mac(mac)
                .ok_or_else(|| ApiError::not_found(format!("no phone {mac}")))?;
            let snap = app.cfg.snapshot();
            let Some(cur) = snap.config.phones.iter().find(|p| p.mac == m) else {
                return Err(ApiError::not_found(format!("no phone {mac}")));
            };
            let model = b.model.unwrap_or_else(|| cur.model.clone());
            let exts = b
                .extensions
                .unwrap_or_else(|| cur.lines.iter().map(|l| l.extension.clone()).collect());
            let blf = b.blf_keys;
            change(app, &who, format!("changed phone {mac}"), move |cfg| {
                let m = phones::put_phone(cfg, &m, &model, &exts)?;
                set_blf(cfg, &m, blf);
                Ok(m)
            })
            .await?;
            okj(phone_row(
                app,
                &config::normalize_mac(mac).unwrap_or_default(),
            ))
        }
        (&Method::DELETE, ["phones", mac]) => {
            let m = mac.to_string();
            change(app, &who, format!("removed phone {mac}"), move |cfg| {
                phones::remove_phone(cfg, &m)
            })
            .await?;
            if let Some(m) = config::normalize_mac(mac) {
                app.prov.forget(&m);
            }
            Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
        }
        (&Method::POST, ["import"]) => {
            let b: ImportBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            if b.dry_run {
                let p = phones::preview(&app.cfg.snapshot().config, b.csv.as_bytes())
                    .map_err(|e| ApiError::bad("csv", e))?;
                return okj(serde_json::to_value(p).expect("serialises"));
            }
            let lines = change(app, &who, "imported phones from CSV".into(), move |cfg| {
                phones::import(cfg, b.csv.as_bytes(), b.lines.as_deref())
            })
            .await?;
            Ok(json_reply(
                StatusCode::CREATED,
                &serde_json::to_value(lines).expect("serialises"),
            ))
        }
        (&Method::POST, ["restart"]) => {
            let b: RestartBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            if b.cancel {
                app.prov.schedule_restart(None);
                return okj(json!({"scheduled": null}));
            }
            let list = phones::parse_macs(&b.phones).map_err(|e| {
                let mut e = ApiError::from(e);
                e.field = Some("phones".into());
                e
            })?;
            match b.at {
                Some(at) if at > crate::unix_now() => {
                    app.prov.schedule_restart(Some((at, list.clone())));
                    okj(json!({"scheduled": {"at": at, "phones": list}}))
                }
                _ => {
                    let n = restart_now(app, list).await?;
                    okj(json!({"notified": n}))
                }
            }
        }
        (&Method::GET, ["firmware"]) => okj(Value::Array(
            app.prov
                .firmware_list()
                .into_iter()
                .map(|(m, f, s)| json!({"model": m, "file": f, "size": s}))
                .collect(),
        )),
        (&Method::PUT, ["firmware", model, file]) => {
            let p = app.prov.clone();
            let (model, file, body) = (model.to_string(), file.to_string(), req.body.clone());
            tokio::task::spawn_blocking(move || p.put_firmware(&model, &file, &body))
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_err(|e| ApiError::bad("file", e))?;
            Ok(json_reply(
                StatusCode::CREATED,
                &json!({"model": segs[1], "file": segs[2]}),
            ))
        }
        (&Method::DELETE, ["firmware", model]) => {
            if app.prov.remove_firmware(model) {
                Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
            } else {
                Err(ApiError::not_found(format!("no firmware for {model}")))
            }
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

fn phone_row(app: &Arc<App>, mac: &str) -> Value {
    let colon = config::format_mac(mac);
    app.prov
        .rows(&app.cfg.snapshot())
        .into_iter()
        .find(|r| r.mac == colon)
        .map(|r| serde_json::to_value(r).expect("serialises"))
        .unwrap_or(Value::Null)
}
