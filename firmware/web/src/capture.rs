//! The Network page's packet capture (Kerio 22.1 "Packet sniffer") and its API:
//! `GET`/`POST`/`DELETE /api/v1/system/capture`, `POST /api/v1/system/capture/stop`,
//! `GET /api/v1/system/capture/download` (the pcap). The capture itself is
//! `system::capture`.

use crate::api::{need_admin_read, need_admin_write, no_content, ok};
use crate::pages::{csrf_field, field, layout, page_response, when, Note};
use crate::{ApiError, App, Caller, Req};
use serde_json::Value;
use std::sync::Arc;
use system::capture::{CaptureError, CaptureRequest};
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Reply;

fn err(e: CaptureError) -> ApiError {
    match e {
        CaptureError::Invalid(f, m) => ApiError::bad(f, m),
        CaptureError::Busy => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        CaptureError::Refused(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        CaptureError::Io(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn state(app: &App) -> Value {
    serde_json::to_value(app.capture.state()).expect("serialises")
}

async fn start(
    app: &Arc<App>,
    c: &Caller,
    addr: std::net::IpAddr,
    r: CaptureRequest,
) -> Result<(), ApiError> {
    let what = format!(
        "packet capture started on {} ({})",
        r.interface,
        if r.filter.trim().is_empty() {
            "every packet"
        } else {
            r.filter.trim()
        }
    );
    // In a task of its own: a client that goes away mid-start must not leave the
    // capture "starting" for good.
    let capture = app.capture.clone();
    tokio::spawn(async move { capture.start(r).await })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(err)?;
    // Packets can hold what phones say: who captured is on record.
    app.security(addr, &c.user.username, &what);
    Ok(())
}

/// Waits (at most 5 s) for the watcher to end a capture asked to stop.
async fn ended(app: &App) {
    for _ in 0..50 {
        if app.capture.state().state != "running" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `/api/v1/system/capture...`.
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
        (&Method::POST, []) => {
            // Administrators only: a capture holds the calls' audio and the phones'
            // messages.
            need_admin_write(c)?;
            let body: &[u8] = if req.body.is_empty() {
                b"{}"
            } else {
                &req.body
            };
            let r: CaptureRequest = serde_json::from_slice(body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"interface\": \"eth0\", \"filter\": \"udp port 5060\", \"seconds\": 60, \"max_mib\": 10}}: {e}"),
                )
            })?;
            start(app, c, req.addr, r).await?;
            Ok(crate::json_reply(StatusCode::ACCEPTED, &state(app)))
        }
        (&Method::POST, ["stop"]) => {
            need_admin_write(c)?;
            if !app.capture.stop() {
                return Err(ApiError::new(StatusCode::CONFLICT, "no capture is running"));
            }
            ended(app).await;
            ok(state(app))
        }
        (&Method::DELETE, []) => {
            need_admin_write(c)?;
            app.capture.remove().map_err(err)?;
            no_content()
        }
        (&Method::GET, ["download"]) => {
            need_admin_write(c)?;
            // One at a time: the file is held in memory (up to 100 MiB).
            static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            let _one = ONE.lock().await;
            download(app).await
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

async fn download(app: &Arc<App>) -> Result<Response, ApiError> {
    let s = app.capture.state();
    if s.state == "running" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the capture is running: stop it first",
        ));
    }
    let file = app.capture.file();
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|_| ApiError::not_found("no capture to download"))?;
    let mut r = warp::reply::with_header(bytes, "content-type", "application/vnd.tcpdump.pcap")
        .into_response();
    let name = format!("capture-{}.pcap", when(s.started).replace([' ', ':'], "-"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// The interfaces and their IPv4 addresses.
fn interfaces() -> Vec<(String, Vec<String>)> {
    let mut list: Vec<(String, Vec<String>)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let i = match list.iter().position(|(n, _)| *n == a.interface_name) {
                Some(i) => i,
                None => {
                    list.push((a.interface_name.clone(), Vec::new()));
                    list.len() - 1
                }
            };
            if let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                let prefix = a
                    .netmask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in())
                    .map(|m| u32::from(m.ip()).count_ones())
                    .unwrap_or(32);
                list[i].1.push(format!("{}/{prefix}", v4.ip()));
            }
        }
    }
    list
}

/// `/admin/network`: the interfaces, and the packet capture.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    addr: std::net::IpAddr,
    local: std::net::SocketAddr,
    get: bool,
    rest: &[&str],
    form: &[(String, String)],
) -> Response {
    if get {
        return match rest {
            [] => page(app, c, Note::None, StatusCode::OK),
            _ => page(
                app,
                c,
                Note::Error("no such page".into()),
                StatusCode::NOT_FOUND,
            ),
        };
    }
    if let Err(e) = need_admin_write(c) {
        return page(app, c, Note::Error(e.error), e.status);
    }
    let number = |name: &'static str| {
        field(form, name)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| ApiError::bad(name, "must be a whole number"))
    };
    let r = match rest {
        [action @ ("settings" | "confirm")] => {
            crate::network::post(app, c, addr, local, action, form).await
        }
        ["capture"] => {
            let req = number("seconds").and_then(|seconds| {
                Ok(CaptureRequest {
                    interface: field(form, "interface").unwrap_or("any").to_string(),
                    filter: field(form, "filter").unwrap_or("").to_string(),
                    seconds,
                    max_mib: number("max_mib")?,
                })
            });
            match req {
                Ok(req) => start(app, c, addr, req)
                    .await
                    .map(|()| "The capture runs: make the call or the registration that fails, then stop it.".to_string()),
                Err(e) => Err(e),
            }
        }
        ["capture", "stop"] => {
            if app.capture.stop() {
                ended(app).await;
                Ok("The capture stopped.".to_string())
            } else {
                Err(ApiError::new(StatusCode::CONFLICT, "no capture is running"))
            }
        }
        ["capture", "delete"] => app
            .capture
            .remove()
            .map(|()| "The capture was deleted.".to_string())
            .map_err(err),
        _ => Err(ApiError::not_found("no such action")),
    };
    match r {
        Ok(m) => page(app, c, Note::Done(m), StatusCode::OK),
        // A refused settings form comes back as it was typed.
        Err(e) if rest == ["settings"] => page_with(app, c, Note::Error(e.error), e.status, form),
        Err(e) => page(app, c, Note::Error(e.error), e.status),
    }
}

fn page(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    page_with(app, c, note, status, &[])
}

/// The page; `posted`: a refused settings form, shown as it was typed.
fn page_with(
    app: &Arc<App>,
    c: &Caller,
    note: Note,
    status: StatusCode,
    posted: &[(String, String)],
) -> Response {
    use maud::html;
    let write = c.can_write_admin();
    let s = app.capture.state();
    let ifs = interfaces();
    page_response(
        status,
        layout(
            "Network",
            Some(c),
            true,
            &note,
            html! {
                (crate::network::section(app, c, posted))
                h2 { "Interfaces" }
                table id="interfaces" {
                    thead { tr { th { "Interface" } th { "IPv4 addresses" } } }
                    tbody {
                        @for (name, addrs) in &ifs {
                            tr { td { (name) } td { (addrs.join(", ")) } }
                        }
                    }
                }
                h2 { "Packet capture" }
                p { "When a phone cannot register or a call to a provider fails, capture what the box sends and receives, then open the file in Wireshark (or " code { "tcpdump -r" } "). A capture holds what callers say: delete it when you are done." }
                p id="capture-state" data-state=(s.state) role="status" {
                    @match s.state {
                        "running" => { "Capturing on " (s.interface) " since " (when(s.started)) " UTC: " (s.bytes.div_ceil(1024)) " KiB so far; it stops after " (s.seconds) " s or at " (s.max_mib) " MiB." }
                        "done" => { "Capture ready: " (s.bytes.div_ceil(1024)) " KiB" @if let Some(p) = s.packets { ", " (p) " packets" } " (" (s.why) ")." }
                        "failed" => { "The capture failed: " (s.why) }
                        _ => { "No capture on the box." }
                    }
                }
                @if s.state == "done" {
                    p { a id="capture-download" href="/api/v1/system/capture/download" download { "Download the capture (pcap)" } }
                }
                @if write {
                    @if s.state == "running" {
                        form id="capture-stop" method="post" action="/admin/network/capture/stop" {
                            (csrf_field(c))
                            button type="submit" { "Stop" }
                        }
                    } @else {
                        form id="capture-form" method="post" action="/admin/network/capture" {
                            (csrf_field(c))
                            label for="interface" { "Interface" }
                            select id="interface" name="interface" {
                                option value="any" { "any (all interfaces)" }
                                @for (name, _) in &ifs { option value=(name) { (name) } }
                            }
                            label for="filter" { "Filter (pcap syntax; empty: everything)" }
                            input id="filter" name="filter" placeholder="udp port 5060 or host 192.0.2.7" maxlength="512";
                            label for="seconds" { "Stop after (seconds, 1-3600)" }
                            input id="seconds" name="seconds" type="number" min="1" max="3600" value="60";
                            label for="max_mib" { "or at (MiB, 1-100)" }
                            input id="max_mib" name="max_mib" type="number" min="1" max="100" value="10";
                            button type="submit" { "Start capture" }
                        }
                        @if s.state == "done" || s.state == "failed" {
                            form id="capture-delete" method="post" action="/admin/network/capture/delete" {
                                (csrf_field(c))
                                button type="submit" { "Delete the capture" }
                            }
                        }
                    }
                }
            },
        ),
    )
}
