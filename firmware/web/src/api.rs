//! `/api/v1`: JSON over HTTPS. Anonymous requests get 401, the wrong role 403, a
//! state change without the session's `X-CSRF-Token` 403. Errors are
//! `{"error": "...", "field": "..."}`.

use crate::ops::{self, UserInput};
use crate::{
    caller, csrf_ok, json_reply, login, session_cookie, ApiError, App, Caller, LoginError, Req,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;

pub(crate) fn ok(v: Value) -> Result<Response, ApiError> {
    Ok(json_reply(StatusCode::OK, &v))
}

pub(crate) fn created(v: Value) -> Result<Response, ApiError> {
    Ok(json_reply(StatusCode::CREATED, &v))
}

pub(crate) fn no_content() -> Result<Response, ApiError> {
    use warp::Reply;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

fn decode(seg: &str) -> Option<String> {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeBody {
    ring_also: Option<Vec<String>>,
    password: Option<String>,
}

/// Routes one API request.
pub(crate) async fn handle(app: &Arc<App>, req: &Req) -> Response {
    match route(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

pub(crate) fn need_admin_read(c: &Caller) -> Result<(), ApiError> {
    if c.can_read_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this account may use the user portal only",
        ))
    }
}

pub(crate) fn need_admin_write(c: &Caller) -> Result<(), ApiError> {
    need_admin_read(c)?;
    if c.can_write_admin() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "auditors may look but not change anything",
        ))
    }
}

async fn route(app: &Arc<App>, req: &Req) -> Result<Response, ApiError> {
    let rest = req.path.strip_prefix("/api/v1").unwrap_or("");
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::not_found("no such route"))?;
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = &req.method;
    if req.changes_state() && !req.origin_ok() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused",
        ));
    }

    // Routes open to anybody.
    match (m, segs.as_slice()) {
        (&Method::GET, ["openapi.json"]) => return ok(crate::openapi::document()),
        (&Method::GET, ["instance"]) => return ok(json!({"instance": crate::backup::instance()})),
        (&Method::POST, ["setup"]) => {
            let b: SetupBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            ops::setup(app, &b.password).await?;
            app.security(req.addr, ops::ADMIN, "administrator account created");
            return created(json!({"username": ops::ADMIN}));
        }
        (&Method::POST, ["login"]) => {
            let b: LoginBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            return match login(app, req.addr, &b.username, &b.password).await {
                Ok((token, s, u)) => {
                    let mut r = json_reply(
                        StatusCode::OK,
                        &json!({"csrf_token": s.csrf, "username": u.username, "role": u.role}),
                    );
                    r.headers_mut()
                        .insert(header::SET_COOKIE, session_cookie(&token, None));
                    Ok(r)
                }
                Err(LoginError::Blocked(secs)) => {
                    let mut r = ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("too many failed logins from this address; try again in {secs} s"),
                    )
                    .into_response();
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from_str(&secs.to_string()).expect("digits"),
                    );
                    Ok(r)
                }
                Err(LoginError::NotHere(a)) => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("the firewall does not allow this service from {a}"),
                )),
                Err(LoginError::Wrong) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "wrong user name or password",
                )),
            };
        }
        _ => {}
    }

    let Some(c) = caller(app, req) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "log in first"));
    };
    if req.changes_state() && !csrf_ok(req, &c, None) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing or wrong X-CSRF-Token header",
        ));
    }
    if segs.first() == Some(&"provisioning") {
        return crate::provisioning::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"routing") {
        return crate::routing::api(app, req, &c, &segs[1..]).await;
    }
    if segs == ["history"] {
        return crate::history::api(app, req, &c);
    }
    if segs.starts_with(&["me", "voicemail"]) {
        return crate::voicemail::api(app, req, &c, &segs[2..]);
    }
    if segs.first() == Some(&"firewall") {
        return crate::firewall::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"security") {
        return crate::security::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"recordings") {
        return crate::recordings::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"certificates") {
        return crate::cert_pages::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"music") {
        return crate::music::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"sounds") {
        return crate::voicemail::sounds_api(app, req, &c, &segs[1..]);
    }
    if segs.starts_with(&["system", "backups"])
        || segs == ["system", "restore"]
        || segs == ["system", "backup-schedule"]
    {
        return crate::backup::api(app, req, &c, &segs[1..]).await;
    }
    if segs == ["system", "support-bundle"] && req.method == Method::GET {
        return crate::support::download(app, &c).await;
    }
    if segs.starts_with(&["system", "network"]) {
        return crate::network::api(app, req, &c, &segs[2..]).await;
    }
    if segs.starts_with(&["system", "capture"]) {
        return crate::capture::api(app, req, &c, &segs[2..]).await;
    }
    if segs.first() == Some(&"directory") {
        return crate::directory::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"logs") {
        return crate::log_pages::api(app, req, &c, &segs[1..]).await;
    }
    if segs.first() == Some(&"system") {
        return crate::update::api(app, req, &c, &segs[1..]).await;
    }
    let who = c.user.username.clone();
    let reveal = c.can_write_admin();
    let snap = app.cfg.snapshot();
    match (m, segs.as_slice()) {
        (&Method::POST, ["logout"]) => {
            app.sessions().close(&c.token);
            app.security(req.addr, &who, "session closed");
            let mut r = no_content()?;
            r.headers_mut()
                .insert(header::SET_COOKIE, session_cookie("", Some(0)));
            Ok(r)
        }
        (&Method::GET, ["session"]) => ok(json!({
            "username": c.user.username, "role": c.user.role, "csrf_token": c.session.csrf,
        })),

        // The user's own portal.
        (&Method::GET, ["me"]) => {
            let exts: Vec<Value> = c
                .user
                .extensions
                .iter()
                .filter_map(|n| snap.extension(n))
                .map(|e| {
                    let accounts: Vec<Value> = snap
                        .configured_accounts_of(&e.number)
                        .map(|a| json!({"username": a.username, "secret": a.secret}))
                        .collect();
                    json!({
                        "number": e.number, "name": e.display_name(), "service_pin": e.service_pin,
                        "forward": e.forward, "call_waiting": e.call_waiting,
                        "do_not_disturb": e.do_not_disturb,
                        "no_answer_seconds": e.no_answer_seconds, "forwarding": e.forwarding,
                        "accounts": accounts,
                    })
                })
                .collect();
            let mut v = ops::user_json(&c.user);
            v["extensions"] = Value::Array(exts);
            ok(v)
        }
        (&Method::PUT, ["me"]) => {
            let b: MeBody = ops::parse(Value::Object(ops::object(&req.body)?))?;
            let pw_changed = b.password.is_some();
            ops::update_me(app, &who, b.ring_also, b.password).await?;
            if pw_changed {
                app.security(req.addr, &who, "password changed");
            }
            no_content()
        }
        (&Method::PUT, ["me", "extensions", number]) => {
            let b: ops::MyExtension = ops::parse(Value::Object(ops::object(&req.body)?))?;
            ops::set_my_extension(app, &c.user, number, b).await?;
            no_content()
        }

        // Extensions and their SIP accounts.
        (&Method::GET, ["extensions"]) => {
            need_admin_read(&c)?;
            ok(Value::Array(
                snap.config
                    .extensions
                    .iter()
                    .map(|e| ops::extension_json(e, reveal))
                    .collect(),
            ))
        }
        (&Method::POST, ["extensions"]) => {
            need_admin_write(&c)?;
            let e = ops::create_extension(app, &who, ops::object(&req.body)?, None, None).await?;
            created(ops::extension_json(&e, true))
        }
        (&Method::GET, ["extensions", n]) => {
            need_admin_read(&c)?;
            let e = snap
                .extension(n)
                .ok_or_else(|| ApiError::not_found(format!("extension {n} does not exist")))?;
            ok(ops::extension_json(e, reveal))
        }
        (&Method::PUT, ["extensions", n]) => {
            need_admin_write(&c)?;
            let e = ops::update_extension(app, &who, n, ops::object(&req.body)?).await?;
            ok(ops::extension_json(&e, true))
        }
        (&Method::DELETE, ["extensions", n]) => {
            need_admin_write(&c)?;
            ops::delete_extension(app, &who, n).await?;
            no_content()
        }
        (&Method::GET, ["extensions", n, "accounts"]) => {
            need_admin_read(&c)?;
            if snap.extension(n).is_none() {
                return Err(ApiError::not_found(format!("extension {n} does not exist")));
            }
            ok(Value::Array(
                snap.configured_accounts_of(n)
                    .map(|a| ops::account_json(a, reveal))
                    .collect(),
            ))
        }
        (&Method::POST, ["extensions", n, "accounts"]) => {
            need_admin_write(&c)?;
            let a = ops::create_account(app, &who, n, ops::object(&req.body)?).await?;
            created(ops::account_json(&a, true))
        }
        (&Method::GET, ["extensions", n, "accounts", u]) => {
            need_admin_read(&c)?;
            let a = snap
                .account(u)
                .filter(|a| a.extension == *n && !a.is_web())
                .ok_or_else(|| ApiError::not_found(format!("extension {n} has no account {u}")))?;
            ok(ops::account_json(a, reveal))
        }
        (&Method::PUT, ["extensions", n, "accounts", u]) => {
            need_admin_write(&c)?;
            let a = ops::update_account(app, &who, n, u, ops::object(&req.body)?).await?;
            ok(ops::account_json(&a, true))
        }
        (&Method::DELETE, ["extensions", n, "accounts", u]) => {
            need_admin_write(&c)?;
            ops::delete_account(app, &who, n, u).await?;
            no_content()
        }

        // Users.
        (&Method::GET, ["users"]) => {
            need_admin_read(&c)?;
            ok(Value::Array(
                snap.config.users.iter().map(ops::user_json).collect(),
            ))
        }
        (&Method::POST, ["users"]) => {
            need_admin_write(&c)?;
            let i: UserInput = ops::parse(Value::Object(ops::object(&req.body)?))?;
            let u = ops::create_user(app, &who, i).await?;
            created(ops::user_json(&u))
        }
        (&Method::GET, ["users", u]) => {
            need_admin_read(&c)?;
            let u = snap
                .config
                .users
                .iter()
                .find(|x| x.username.eq_ignore_ascii_case(u))
                .ok_or_else(|| ApiError::not_found(format!("user {u} does not exist")))?;
            ok(ops::user_json(u))
        }
        (&Method::PUT, ["users", u]) => {
            need_admin_write(&c)?;
            let i: UserInput = ops::parse(Value::Object(ops::object(&req.body)?))?;
            let u = ops::update_user(app, &who, u, i).await?;
            ok(ops::user_json(&u))
        }
        (&Method::DELETE, ["users", u]) => {
            need_admin_write(&c)?;
            ops::delete_user(app, &who, u).await?;
            no_content()
        }

        // Status and logs.
        (&Method::GET, ["status", "registrations"]) => {
            need_admin_read(&c)?;
            ok(app
                .ask(crate::CoreRequest::Registrations)
                .await
                .ok_or_else(busy)?)
        }
        (&Method::GET, ["status", "parked"]) => {
            need_admin_read(&c)?;
            ok(app.ask(crate::CoreRequest::Parked).await.ok_or_else(busy)?)
        }
        (&Method::GET, ["status", "calls"]) => {
            need_admin_read(&c)?;
            ok(app.ask(crate::CoreRequest::Calls).await.ok_or_else(busy)?)
        }
        (&Method::DELETE, ["status", "calls", id]) => {
            need_admin_write(&c)?;
            let id: u64 = id
                .parse()
                .map_err(|_| ApiError::not_found(format!("no call {id}")))?;
            let done = app
                .ask(|tx| crate::CoreRequest::HangUp(id, tx))
                .await
                .ok_or_else(busy)?;
            if done {
                no_content()
            } else {
                Err(ApiError::not_found(format!("no call {id} in progress")))
            }
        }
        (_, ["status", "queues", rest @ ..]) => crate::queues::api(app, req, &c, rest).await,
        (_, ["status", "conferences", rest @ ..]) => {
            crate::conferences::api(app, req, &c, rest).await
        }
        (&Method::GET, ["status", "peers"]) => crate::routing::peers_api(app, &c).await,
        (&Method::GET, ["status", "spans"]) => crate::routing::spans_api(app, &c).await,
        (&Method::GET, ["status", "tasks"]) => {
            need_admin_read(&c)?;
            ok(json!(crate::tasks::list(app)))
        }
        (&Method::GET, ["status", "dahdi"]) => {
            need_admin_read(&c)?;
            let sys = app.settings.dahdi_sys.clone();
            let (spans, cards) = tokio::task::spawn_blocking(move || {
                let spans = system::dahdi::scan(&sys);
                let cards = system::dahdi::cards(&sys, &spans);
                (spans, cards)
            })
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            ok(json!({"cards": cards, "spans": spans}))
        }
        (&Method::GET, ["status", "health"]) => {
            need_admin_read(&c)?;
            ok(crate::pages::health(app).await)
        }
        (&Method::GET, ["feature_codes"]) => {
            need_admin_read(&c)?;
            ok(serde_json::to_value(&snap.config.feature_codes).expect("serialises"))
        }
        (&Method::PUT, ["feature_codes"]) => {
            need_admin_write(&c)?;
            // Codes left out keep their value (a client that knows only some of them
            // does not reset the others).
            let mut merged = serde_json::to_value(&snap.config.feature_codes).expect("serialises");
            for (k, v) in ops::object(&req.body)? {
                merged[k] = v;
            }
            let fc: config::FeatureCodes = ops::parse(merged)?;
            ops::set_feature_codes(app, &who, fc.clone()).await?;
            ok(serde_json::to_value(fc).expect("serialises"))
        }
        (&Method::GET, ["smtp"]) => {
            need_admin_read(&c)?;
            ok(ops::smtp_view(&snap.config.smtp))
        }
        (&Method::PUT, ["smtp"]) => {
            need_admin_write(&c)?;
            // Fields left out keep their value; a masked password is the one in force.
            let mut merged = ops::smtp_view(&snap.config.smtp);
            for (k, v) in ops::object(&req.body)? {
                merged[k] = v;
            }
            let s: config::Smtp = ops::parse(merged)?;
            ops::set_smtp(app, &who, s).await?;
            ok(ops::smtp_view(&app.cfg.snapshot().config.smtp))
        }
        (&Method::GET, ["dialplan"]) => {
            need_admin_read(&c)?;
            ok(Value::Array(
                ops::dial_plan(&snap)
                    .into_iter()
                    .map(|(n, t, name, d)| json!({"number": n, "type_id": t, "type": name, "description": d}))
                    .collect(),
            ))
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

pub(crate) fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the exchange did not answer",
    )
}

pub(crate) fn store_err(e: store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))
}
