//! The portal's phone (issue 23): a WebRTC softphone on the user portal's `/phone` page.
//!
//! Each extension a user owns has a browser phone account ([`config::SipAccount::web`],
//! kind "web", user name `<number>~web`), derived by the configuration and never stored.
//! It has no password of its own: the page asks `POST /phone/account` (the portal
//! session and its CSRF token) for a secret, which the web gives the exchange
//! ([`crate::CoreRequest::WebPhoneGrant`]) and the page's JsSIP uses to register over
//! `wss://<box>/ws`. The secret is never shown; it lasts [`LIFETIME`] past the page's
//! last renewal (the page renews it every [`RENEW`]), so it dies soon after the last
//! portal page of its user closes, and at once when the user changes the password, is
//! disabled or removed, or no longer owns the extension (the exchange checks the grant
//! against the configuration in force).
//!
//! JsSIP (MIT, `static/jssip.js.gz`, built from its npm release by `scripts/bundle-jssip`:
//! nothing on the box needs Node.js) does SIP over WebSocket and WebRTC;
//! `static/phone.js` is the page's dial pad and call controls, and the operator panel
//! (the switchboard: every extension's lamp, parked calls, queues, from
//! `GET /phone/panel` every two seconds; a click calls, picks up or transfers). The
//! page's switches (do not disturb, forward every call) go through `POST /phone/settings`,
//! the same change as MyPhone's forms.

use crate::pages::{csrf_field, layout, page_response, Note};
use crate::{ApiError, App, Caller, CoreRequest, Req};
use maud::html;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

/// How long a browser phone's secret works after the page last renewed it.
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// How often the page renews it (told to the page).
pub const RENEW: Duration = Duration::from_secs(1200);

/// JsSIP, minified and gzip-compressed.
const JSSIP: &[u8] = include_bytes!("../static/jssip.js.gz");
/// The page's phone.
const PHONE_JS: &str = include_str!("../static/phone.js");

/// `/static/jssip.js`: served compressed (every browser that runs WebRTC takes gzip).
pub(crate) fn jssip() -> Response {
    let mut r = warp::reply::with_header(JSSIP, "content-type", "text/javascript; charset=utf-8")
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    r
}

/// `/static/phone.js`.
pub(crate) fn script() -> Response {
    let mut r =
        warp::reply::with_header(PHONE_JS, "content-type", "text/javascript; charset=utf-8")
            .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    r
}

/// The extensions of the caller that have a browser phone (enabled, owned).
fn lines(app: &App, c: &Caller) -> Vec<(String, String)> {
    let snap = app.cfg.snapshot();
    c.user
        .extensions
        .iter()
        .filter_map(|n| snap.extension(n))
        .filter(|e| e.enabled)
        .filter(|e| {
            snap.account(&config::SipAccount::web(&e.number).username)
                .is_some()
        })
        .map(|e| (e.number.clone(), e.display_name().to_string()))
        .collect()
}

/// `GET /phone`: the phone.
pub(crate) fn page(app: &App, c: &Caller, dial: &str) -> Response {
    let lines = lines(app, c);
    let body = html! {
        @if lines.is_empty() {
            p { "No extension is assigned to you yet; ask your administrator." }
        } @else {
            section #phone.card data-csrf=(c.session.csrf) data-renew=(RENEW.as_secs()) data-dial=(dial) {
                (csrf_field(c))
                @if lines.len() > 1 {
                    label { "Line"
                        select #phone-line {
                            @for (n, name) in &lines { option value=(n) { (n) " " (name) } }
                        }
                    }
                }
                p #phone-state role="status" data-state="starting" { "Starting the phone..." }
                div #phone-dial {
                    label { "Number" input #phone-number type="tel" inputmode="tel" autocomplete="off"; }
                    div.dialpad #phone-pad {
                        @for k in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"] {
                            button.key type="button" data-key=(k) { (k) }
                        }
                    }
                    button #phone-call type="button" disabled { "Call" }
                }
                div #phone-incoming hidden {
                    p { "Incoming call from " strong #phone-caller {} }
                    button #phone-answer type="button" { "Answer" }
                    button #phone-reject type="button" { "Reject" }
                }
                div #phone-call-panel hidden {
                    p { span #phone-peer {} " " span #phone-call-state {} " " span #phone-timer {} }
                    button #phone-hangup type="button" { "Hang up" }
                    button #phone-hold type="button" aria-pressed="false" { "Hold" }
                    button #phone-mute type="button" aria-pressed="false" { "Mute" }
                    label { "Transfer to" input #phone-transfer-to type="tel" inputmode="tel" autocomplete="off"; }
                    button #phone-blind type="button" { "Transfer" }
                    button #phone-consult type="button" { "Call first" }
                    button #phone-complete type="button" hidden { "Complete transfer" }
                }
                p #phone-waiting hidden { "On hold: " button #phone-held type="button" title="Swap" {} }
                fieldset #phone-settings disabled {
                    legend { "When people call me" }
                    label.check { input #phone-dnd type="checkbox"; "Do not disturb (callers get my busy rule, e.g. voicemail)" }
                    label.check { input #phone-forward-on type="checkbox"; "Forward every call to" }
                    input #phone-forward type="tel" inputmode="tel" autocomplete="off" aria-label="Forward every call to";
                    p #phone-settings-note.hint role="status" {}
                }
                label #phone-codec-label {
                    "Audio"
                    select #phone-codec {
                        option value="g711" title="As the desk phones: the best on the office network" { "G.711 (office)" }
                        option value="opus" title="Less data: mobile networks (the box converts it)" { "Opus (mobile data)" }
                    }
                }
                audio #phone-audio autoplay {}
                p.hint {
                    "Your browser asks once for the microphone. "
                    a href="/" { "Forwarding rules, call waiting and voicemail" }
                    " are on MyPhone."
                }
            }
            section #panel.card {
                h2 { "Switchboard" }
                p.hint { "Click an extension to call it, to pick up its ringing call, or, in a call, to transfer the call to it." }
                label { "Find a colleague" input #panel-search type="search" placeholder="Name or number" autocomplete="off"; }
                div #panel-extensions.lamps role="list" {}
                h3 { "Parked calls" }
                ul #panel-parked { li.none { "None." } }
                h3 { "Queues" }
                ul #panel-queues { li.none { "None." } }
            }
            script src="/static/jssip.js" defer {}
            script src="/static/phone.js" defer {}
        }
    };
    page_response(
        StatusCode::OK,
        layout("Phone", Some(c), false, &Note::None, body),
    )
}

/// `POST /phone/account`: the browser phone account of `extension` (or the first line)
/// with its secret, renewed; 404 when the caller has no such line. The secret is the
/// user's own: another user given the extension, or the same user after a password
/// change, gets a new one (and the exchange drops the old one's registration).
pub(crate) async fn account(app: &Arc<App>, req: &Req, c: &Caller, extension: &str) -> Response {
    let lines = lines(app, c);
    let Some((number, name)) = lines
        .iter()
        .find(|(n, _)| extension.is_empty() || n == extension)
        .cloned()
    else {
        return ApiError::not_found("you have no such extension").into_response();
    };
    let snap = app.cfg.snapshot();
    let password_hash = snap
        .config
        .user(&c.user.username)
        .map(|u| u.password_hash.clone())
        .unwrap_or_default();
    let username = config::SipAccount::web(&number).username;
    // The exchange keeps the grants: it renews this user's, or takes this one (a
    // fresh secret) in its place.
    let proposal = config::WebGrant {
        secret: crate::auth::token(),
        until: crate::unix_now() + LIFETIME.as_secs(),
        user: c.user.username.clone(),
        password_hash,
    };
    let ask = |tx| CoreRequest::WebPhoneGrant(username.clone(), proposal, tx);
    let Some((secret, new)) = app.ask(ask).await else {
        return busy();
    };
    if new {
        app.security(
            req.addr,
            &c.user.username,
            &format!("browser phone of extension {number} started"),
        );
    }
    let mut v = snap.extension(&number).map_or_else(|| json!({}), switches);
    v["extension"] = json!(number);
    v["name"] = json!(name);
    v["username"] = json!(username);
    v["password"] = json!(secret);
    v["ws"] = json!(crate::sip_ws::PATH);
    no_store(v)
}

/// A line's switches as the page shows them.
fn switches(e: &config::Extension) -> serde_json::Value {
    json!({"extension": e.number, "do_not_disturb": e.do_not_disturb, "forward": e.forward})
}

/// A JSON answer nothing keeps (it holds a secret, or state that changes).
fn no_store(v: serde_json::Value) -> Response {
    let mut r = warp::reply::json(&v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The core did not answer in time.
fn busy() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the exchange is busy; try again",
    )
    .into_response()
}

/// `POST /phone/settings`: the page's switches for one of the user's extensions
/// (`extension`): do not disturb (`do_not_disturb` = `on`/`off`) and the forward of
/// every call (`forward`: a number, empty = off), each only when given. Answers the
/// extension's settings as they now stand, or the error (400, 403 not the user's).
pub(crate) async fn settings(app: &Arc<App>, c: &Caller, form: &[(String, String)]) -> Response {
    let field = |k: &str| crate::pages::field(form, k);
    let number = field("extension").unwrap_or("").to_string();
    let r = async {
        let dnd = match field("do_not_disturb") {
            None => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            Some(_) => return Err(ApiError::bad("do_not_disturb", "must be on or off")),
        };
        let i = crate::ops::MyExtension {
            do_not_disturb: dnd,
            forward: field("forward").map(str::to_string),
            ..Default::default()
        };
        crate::ops::set_my_extension(app, &c.user, &number, i).await
    }
    .await;
    if let Err(e) = r {
        return e.into_response();
    }
    let snap = app.cfg.snapshot();
    no_store(
        snap.extension(&number)
            .map_or_else(|| json!({"extension": number}), switches),
    )
}

/// `GET /phone/panel`: the operator panel's state (polled by the page): every
/// extension's lamp (who calls a ringing one only on the user's own or where one of
/// them may pick the call up, as a phone's busy lamp), the parked calls (slot, who waits,
/// for how long), how many callers wait in each queue, the directed pickup code the
/// page dials to take a ringing colleague's call, and the user's own extensions' do not
/// disturb and forward (the page's switches follow a change made elsewhere).
pub(crate) async fn panel(app: &Arc<App>, c: &Caller) -> Response {
    let lamps = app.ask(CoreRequest::Lamps).await;
    let parked = app.ask(CoreRequest::Parked).await;
    let queues = app.ask(CoreRequest::Queues).await;
    let Some(((mut lamps, parked), queues)) = lamps.zip(parked).zip(queues) else {
        return busy();
    };
    let snap = app.cfg.snapshot();
    let mine: Vec<&config::Extension> = c
        .user
        .extensions
        .iter()
        .filter_map(|n| snap.extension(n))
        .collect();
    for l in lamps.as_array_mut().into_iter().flatten() {
        let may = l["number"]
            .as_str()
            .and_then(|n| snap.extension(n))
            .is_some_and(|e| {
                mine.iter()
                    .any(|m| m.number == e.number || m.may_pick_up(e))
            });
        if !may {
            if let Some(o) = l.as_object_mut() {
                o.remove("caller");
            }
        }
    }
    let parked: Vec<serde_json::Value> = parked
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| json!({"slot": p["slot"], "number": p["number"], "seconds": p["seconds"]}))
        .collect();
    let queues: Vec<serde_json::Value> = queues
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            json!({"number": q["number"], "description": q["description"],
                "waiting": q["waiting"].as_array().map_or(0, Vec::len)})
        })
        .collect();
    let lines: Vec<serde_json::Value> = mine.iter().map(|e| switches(e)).collect();
    no_store(json!({
        "extensions": lamps,
        "lines": lines,
        "parked": parked,
        "queues": queues,
        "directed_pickup": snap.config.feature_codes.directed_pickup,
    }))
}
