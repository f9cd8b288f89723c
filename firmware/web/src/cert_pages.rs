//! The certificate store (`certs`) on the web: `/api/v1/certificates[/...]` and the page
//! `/admin/certificates` (Kerio 19: new self-signed certificate, new certificate request,
//! export, import, set as active; plus the certificates the box trusts).

use crate::api::{created, no_content, ok};
use crate::certs::{self, Refused, Subject};
use crate::pages::{csrf_field, field, layout, outcome, page_response, Note};
use crate::{ApiError, App, Caller, Req};
use maud::html;
use serde_json::{json, Value};
use std::sync::Arc;
use warp::http::{Method, StatusCode};
use warp::reply::{Reply, Response};

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        if r.0.starts_with(certs::MISSING) {
            ApiError::not_found(r.0)
        } else if r.0.starts_with(certs::STORAGE) {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, r.0)
        } else {
            ApiError::bad("certificate", r.0)
        }
    }
}

fn list_json(app: &App) -> Value {
    json!({
        "certificates": certs::list(&app.settings.data_dir),
        "trusted": certs::trusted(&app.settings.data_dir),
    })
}

fn subject_of(v: &Value) -> Subject {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    Subject {
        hostname: s("hostname"),
        organization: s("organization"),
        city: s("city"),
        country: s("country"),
        names: match &v["names"] {
            Value::Array(a) => a
                .iter()
                .filter_map(|n| n.as_str())
                .map(str::to_string)
                .collect(),
            Value::String(t) => names_list(t),
            _ => Vec::new(),
        },
        days: v["days"].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32,
    }
}

fn names_list(t: &str) -> Vec<String> {
    t.split([',', ' ', ';'])
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs blocking store work (key generation, file writes) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Refused> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// Makes a self-signed certificate or a request (`kind`).
async fn create(app: &Arc<App>, kind: &str, s: Subject) -> Result<String, ApiError> {
    let dir = app.settings.data_dir.clone();
    match kind {
        "self_signed" => blocking(move || certs::create_self_signed(&dir, &s)).await,
        "request" => blocking(move || certs::create_request(&dir, &s)).await,
        _ => Err(ApiError::bad("kind", "kind is self_signed or request")),
    }
}

async fn activate(
    app: &Arc<App>,
    req_addr: std::net::IpAddr,
    c: &Caller,
    id: &str,
) -> Result<(), ApiError> {
    let (dir, id2, app2) = (app.settings.data_dir.clone(), id.to_string(), app.clone());
    blocking(move || certs::activate(&dir, &id2, app2.active_cert())).await?;
    app.security(
        req_addr,
        &c.user.username,
        &format!("certificate {id} made active"),
    );
    Ok(())
}

async fn set_trusted(
    app: &Arc<App>,
    addr: std::net::IpAddr,
    c: &Caller,
    pem: Vec<u8>,
) -> Result<usize, ApiError> {
    let dir = app.settings.data_dir.clone();
    let n = blocking(move || certs::set_trusted(&dir, &pem)).await?;
    app.tell(crate::CoreRequest::TrustChanged);
    app.security(
        addr,
        &c.user.username,
        &format!("trusted certificates replaced ({n})"),
    );
    Ok(n)
}

fn pem_reply(bytes: Vec<u8>, name: &str) -> Response {
    let r = warp::reply::with_header(bytes, "content-type", "application/x-pem-file");
    warp::reply::with_header(
        r,
        "content-disposition",
        format!("attachment; filename=\"{name}\""),
    )
    .into_response()
}

/// `/api/v1/certificates[/...]`.
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    rest: &[&str],
) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    let dir = app.settings.data_dir.clone();
    match (&req.method, rest) {
        (&Method::GET, []) => ok(list_json(app)),
        (&Method::POST, []) => {
            crate::api::need_admin_write(c)?;
            let v: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
            let kind = v["kind"].as_str().unwrap_or("").to_string();
            let id = create(app, &kind, subject_of(&v)).await?;
            let info = certs::list(&dir).into_iter().find(|e| e.id == id);
            created(serde_json::to_value(info).expect("serialises"))
        }
        (&Method::POST, ["import"]) => {
            crate::api::need_admin_write(c)?;
            let v: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
            let chain = v["certificate"].as_str().unwrap_or("").as_bytes().to_vec();
            let key = v["key"]
                .as_str()
                .filter(|k| !k.trim().is_empty())
                .map(|k| k.as_bytes().to_vec());
            let d2 = dir.clone();
            let id = blocking(move || certs::import(&d2, &chain, key.as_deref())).await?;
            let info = certs::list(&dir).into_iter().find(|e| e.id == id);
            created(serde_json::to_value(info).expect("serialises"))
        }
        (&Method::GET, ["trusted"]) => {
            ok(serde_json::to_value(certs::trusted(&dir)).expect("serialises"))
        }
        (&Method::PUT, ["trusted"]) => {
            crate::api::need_admin_write(c)?;
            let n = set_trusted(app, req.addr, c, req.body.to_vec()).await?;
            ok(json!({"trusted": n}))
        }
        (&Method::GET, [id, what @ ("request" | "certificate")]) => {
            let bytes = certs::download(&dir, id, what)?;
            Ok(pem_reply(bytes, &format!("{id}-{what}.pem")))
        }
        (&Method::POST, [id, "activate"]) => {
            crate::api::need_admin_write(c)?;
            activate(app, req.addr, c, id).await?;
            ok(list_json(app))
        }
        (&Method::DELETE, [id]) => {
            crate::api::need_admin_write(c)?;
            certs::remove(&dir, id)?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such certificate resource")),
    }
}

type Form = [(String, String)];

fn form_subject(form: &Form) -> Subject {
    let f = |k: &str| field(form, k).unwrap_or("").trim().to_string();
    Subject {
        hostname: f("hostname"),
        organization: f("organization"),
        city: f("city"),
        country: f("country"),
        names: names_list(&f("names")),
        days: f("days").parse().unwrap_or(0),
    }
}

/// Routes `/admin/certificates[/...]`.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    addr: std::net::IpAddr,
    get: bool,
    rest: &[&str],
    form: &Form,
) -> Response {
    let dir = app.settings.data_dir.clone();
    if get {
        return match rest {
            [] => page(app, c, Note::None, StatusCode::OK),
            [id, what @ ("request" | "certificate")] => match certs::download(&dir, id, what) {
                Ok(b) => pem_reply(b, &format!("{id}-{what}.pem")),
                Err(e) => page(app, c, Note::Error(e.0), StatusCode::NOT_FOUND),
            },
            _ => page(
                app,
                c,
                Note::Error("no such page".into()),
                StatusCode::NOT_FOUND,
            ),
        };
    }
    if let Err(e) = crate::api::need_admin_write(c) {
        return page(app, c, Note::Error(e.error), e.status);
    }
    let (note, st) = match rest {
        ["new"] => {
            let kind = field(form, "kind").unwrap_or("").to_string();
            let r = create(app, &kind, form_subject(form)).await;
            outcome(r, |id| {
                if kind == "request" {
                    format!("Request {id} made: download it and send it to your certification authority, then import what it signs.")
                } else {
                    format!("Certificate {id} made. Set it active to use it.")
                }
            })
        }
        ["import"] => {
            let chain = field(form, "certificate").unwrap_or("").as_bytes().to_vec();
            let key = field(form, "key")
                .filter(|k| !k.trim().is_empty())
                .map(|k| k.as_bytes().to_vec());
            let d2 = dir.clone();
            let r = blocking(move || certs::import(&d2, &chain, key.as_deref())).await;
            outcome(r, |id| {
                format!("Certificate {id} imported. Set it active to use it.")
            })
        }
        ["trusted"] => {
            let pem = field(form, "trusted").unwrap_or("").as_bytes().to_vec();
            let r = set_trusted(app, addr, c, pem).await;
            outcome(r, |n| format!("{n} trusted certificate(s) saved."))
        }
        [id, "activate"] => {
            let r = activate(app, addr, c, id).await;
            outcome(r, |()| {
                format!("Certificate {id} is active: new connections to the web admin and SIP over TLS get it.")
            })
        }
        [id, "delete"] => {
            let r = certs::remove(&dir, id).map_err(ApiError::from);
            outcome(r, |()| format!("Certificate {id} removed."))
        }
        _ => (Note::Error("no such page".into()), StatusCode::NOT_FOUND),
    };
    page(app, c, note, st)
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

fn page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let write = c.can_write_admin();
    let list = certs::list(&app.settings.data_dir);
    let trusted = certs::trusted(&app.settings.data_dir);
    let trusted_pem = std::fs::read_to_string(crate::tls::trusted_cas_path(&app.settings.data_dir))
        .unwrap_or_default();
    let warning = certs::expiry_warning(&app.settings.data_dir);
    page_response(
        status,
        layout(
            "Certificates",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "The active certificate is what browsers get from the web admin and phones from SIP over TLS (port 5061). Make a self-signed one, or a request for a certification authority and import what it signs, then set it active." }
                @if let Some(w) = &warning { p.warning { (w) } }
                table #certificate-list {
                    thead { tr { th { "Certificate" } th { "Names" } th { "Issued by" } th { "Valid until" } th { "State" } th {} } }
                    tbody {
                        @for e in &list {
                            tr data-id=(e.id) {
                                td { strong { (e.subject) } br; small { (e.id) } }
                                td { (e.names.join(", ")) }
                                td { @if e.kind == certs::Kind::Request { "(waiting for the authority)" } @else if e.self_signed { "self-signed" } @else { (e.issuer) } }
                                td { @if e.kind == certs::Kind::Certificate { (date(e.not_after)) " (" (e.days_left) " days)" } }
                                td.state { @if e.active { strong { "active" } } @else if e.kind == certs::Kind::Request { "request" } @else if e.days_left < 0 { "expired" } @else { "" } }
                                td {
                                    @if e.kind == certs::Kind::Request {
                                        a.button href={ "/admin/certificates/" (e.id) "/request" } download { "Download request" }
                                    } @else {
                                        a.button href={ "/admin/certificates/" (e.id) "/certificate" } download { "Download" }
                                    }
                                    @if write && !e.active && e.kind == certs::Kind::Certificate {
                                        form.inline method="post" action={ "/admin/certificates/" (e.id) "/activate" } {
                                            (csrf_field(c)) button type="submit" { "Set as active" }
                                        }
                                    }
                                    @if write && !e.active {
                                        form.inline method="post" action={ "/admin/certificates/" (e.id) "/delete" } {
                                            (csrf_field(c)) button.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if write {
                    details.dialog {
                        summary { "New certificate or request" }
                        form.card method="post" action="/admin/certificates/new" id="new-certificate" {
                            (csrf_field(c))
                            label { "Kind" select name="kind" {
                                option value="self_signed" { "Self-signed certificate" }
                                option value="request" { "Request for a certification authority" }
                            } }
                            label { "Host name (required)" input name="hostname" required; }
                            label { "More names and addresses (comma separated)" input name="names"; }
                            label { "Organization" input name="organization"; }
                            label { "City" input name="city"; }
                            label { "Country, two letters (required)" input name="country" required pattern="[A-Za-z]{2}" maxlength="2"; }
                            label { "Valid for (days, self-signed)" input name="days" value="3650" inputmode="numeric"; }
                            button type="submit" { "Create" }
                        }
                    }
                    details.dialog {
                        summary { "Import a certificate" }
                        form.card method="post" action="/admin/certificates/import" id="import-certificate" {
                            (csrf_field(c))
                            label { "Certificate with its chain (PEM)" textarea name="certificate" rows="6" required {} }
                            label { "Private key (PEM; empty when it answers a request made here)" textarea name="key" rows="4" {} }
                            button type="submit" { "Import" }
                        }
                    }
                }
                h2 { "Trusted certification authorities" }
                p.hint { "Besides the system's, for providers and links over TLS. " (trusted.len()) " trusted here." }
                ul { @for t in &trusted { li { (t.subject) " (until " (date(t.not_after)) ")" } } }
                form method="post" action="/admin/certificates/trusted" id="trusted-certificates" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        label { "Certificates (PEM)" textarea name="trusted" rows="6" { (trusted_pem) } }
                        @if write { button type="submit" { "Save trusted certificates" } }
                    }
                }
            },
        ),
    )
}
