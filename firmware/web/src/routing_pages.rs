//! The Call routing pages (`/admin/routing/...`): SIP interfaces (Kerio 6.1), ISDN
//! interfaces (Kerio 7), links to
//! other PBXs (Kerio 6.2, Kerauno's System Connector, Ivoz's Friends) with their
//! conflicts, outbound routes (6.6), call permission groups (23.2), emergency numbers
//! (18) and ring groups. Every form goes through the same operations as the API.

use crate::ops::HIDDEN;
use crate::pages::{
    csrf_field, field, fields, layout, numbers_list, outcome, page_response, secret_field, Note,
};
use crate::routing::{self as r, Entity};
use crate::{ApiError, App, Caller};
use config::{
    DidMapping, IsdnInterface, IsdnLine, IsdnSide, Link, LinkMode, PermissionGroup, SipInterface,
    SpanDriver, SwitchType, Transport,
};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::Response;

type Form = [(String, String)];

/// Empty rows offered under a table form for new entries.
const SPARE_ROWS: usize = 3;

/// Routes `/admin/routing/...` (`segs` after `routing`); `get` for GET and HEAD.
pub(crate) async fn handle(
    app: &Arc<App>,
    c: &Caller,
    get: bool,
    segs: &[&str],
    form: &Form,
) -> Response {
    let who = c.user.username.clone();
    match (get, segs) {
        (true, []) => overview(app, c, Note::None, StatusCode::OK).await,
        (false, ["outbound"]) => {
            let res = async { r::set_outbound(app, &who, outbound_form(form)?).await }.await;
            let (note, st) = outcome(res, |()| "Outbound routes saved.".into());
            overview(app, c, note, st).await
        }
        (false, ["ring-groups"]) => {
            let res = async { save_ring_groups(app, &who, form).await }.await;
            let (note, st) = outcome(res, |()| "Ring groups saved.".into());
            overview(app, c, note, st).await
        }

        (_, ["ip-groups"]) => crate::ipgroups::handle(app, c, get, form).await,
        (_, ["queues", rest @ ..]) => crate::queues::handle(app, c, get, rest, form).await,
        (_, ["conferences", rest @ ..]) => {
            crate::conferences::handle(app, c, get, rest, form).await
        }
        (_, ["music", rest @ ..]) => crate::music::handle(app, c, get, rest, form).await,
        (_, ["attendants", rest @ ..]) => {
            crate::attendant_pages::handle(app, c, get, rest, form).await
        }
        (_, ["interfaces", rest @ ..]) => {
            entity_pages::<SipInterface>(app, c, get, rest, form, Some(interface_form)).await
        }
        (_, ["isdn", rest @ ..]) => {
            entity_pages::<IsdnInterface>(app, c, get, rest, form, Some(isdn_form)).await
        }
        // A link's form can also only check its conflicts: its own POST.
        (false, ["links"]) => link_post(app, c, None, form).await,
        (false, ["links", n]) => link_post(app, c, Some(n), form).await,
        (_, ["links", rest @ ..]) => entity_pages::<Link>(app, c, get, rest, form, None).await,
        (_, ["groups", rest @ ..]) => {
            entity_pages::<PermissionGroup>(app, c, get, rest, form, Some(group_form)).await
        }

        (true, ["emergency"]) => emergency_page(app, c, None, Note::None, StatusCode::OK),
        (false, ["emergency"]) => {
            let (res, typed) = match emergency_form(form) {
                Ok(e) => (r::set_emergency(app, &who, e.clone()).await, Some(e)),
                Err(err) => (Err(err), None),
            };
            let (note, st) = outcome(res, |()| "Emergency numbers saved.".into());
            let shown = if st == StatusCode::OK { None } else { typed };
            emergency_page(app, c, shown, note, st)
        }
        (false, ["emergency", "preset"]) => {
            let country = field(form, "country").unwrap_or("");
            let res = r::load_preset(app, &who, country).await;
            let (note, st) = outcome(res, |e| {
                format!(
                    "The emergency numbers of {country} replaced the list ({} numbers).",
                    e.numbers.len()
                )
            });
            emergency_page(app, c, None, note, st)
        }
        _ => not_found(app, c, "There is no such page.".into()).await,
    }
}

type FormReader = fn(&Form) -> Result<Map<String, Value>, ApiError>;

/// The pages of one kind of entity (`rest` after its collection): the blank form, one
/// entity's page, adding and saving through `read` (when the kind has no POST of its
/// own), removing.
async fn entity_pages<E: Entity + Page>(
    app: &Arc<App>,
    c: &Caller,
    get: bool,
    rest: &[&str],
    form: &Form,
    read: Option<FormReader>,
) -> Response {
    match (get, rest, read) {
        (true, [], _) => E::page(app, c, &E::blank(), true, Note::None, StatusCode::OK),
        (true, [n], _) => match r::find::<E>(&app.cfg.snapshot().config, n) {
            Some(e) => {
                let e = e.clone();
                E::page(app, c, &e, false, Note::None, StatusCode::OK)
            }
            None => not_found(app, c, format!("{} {n} does not exist.", capital(E::WHAT))).await,
        },
        (false, [], Some(read)) => save::<E>(app, c, None, read(form)).await,
        (false, [n], Some(read)) => save::<E>(app, c, Some(n), read(form)).await,
        (false, [n, "delete"], _) => {
            let res = r::delete::<E>(app, &c.user.username, n).await;
            let (note, st) = outcome(res, |()| format!("{} {n} removed.", capital(E::WHAT)));
            overview(app, c, note, st).await
        }
        _ => not_found(app, c, "There is no such page.".into()).await,
    }
}

async fn not_found(app: &Arc<App>, c: &Caller, m: String) -> Response {
    overview(app, c, Note::Error(m), StatusCode::NOT_FOUND).await
}

/// A form's fields as an entity, then created or saved; the page again with the note.
/// On an error the page keeps what was typed.
async fn save<E: Entity + Page>(
    app: &Arc<App>,
    c: &Caller,
    key: Option<&str>,
    m: Result<Map<String, Value>, ApiError>,
) -> Response {
    let who = c.user.username.clone();
    let cfg = app.cfg.snapshot().config.clone();
    let typed = |m: &Map<String, Value>| match key {
        Some(k) => r::merged::<E>(&cfg, k, m.clone()).ok(),
        None => E::from_json(m.clone()).ok(),
    };
    let (res, shown) = match m {
        Err(e) => (Err(e), None),
        Ok(m) => {
            let shown = typed(&m);
            let res = match key {
                Some(k) => r::update::<E>(app, &who, k, m).await,
                None => r::create::<E>(app, &who, m).await,
            };
            (res, shown)
        }
    };
    match res {
        Ok(e) => {
            let note = if key.is_some() {
                "Saved.".to_string()
            } else {
                format!("{} {} added.", capital(E::WHAT), e.key())
            };
            E::page(app, c, &e, false, Note::Done(note), StatusCode::OK)
        }
        Err(err) => {
            let status = if err.status == StatusCode::NOT_FOUND {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            let shown = shown
                .or_else(|| key.and_then(|k| r::find::<E>(&cfg, k).cloned()))
                .unwrap_or_else(E::blank);
            E::page(app, c, &shown, key.is_none(), err.into(), status)
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// An entity with an edit page.
trait Page: Sized {
    fn blank() -> Self;
    fn page(
        app: &Arc<App>,
        c: &Caller,
        e: &Self,
        new: bool,
        note: Note,
        st: StatusCode,
    ) -> Response;
}

impl Page for SipInterface {
    fn blank() -> Self {
        SipInterface::new("", "")
    }
    fn page(_: &Arc<App>, c: &Caller, e: &Self, new: bool, note: Note, st: StatusCode) -> Response {
        interface_page(c, e, new, note, st)
    }
}

impl Page for IsdnInterface {
    fn blank() -> Self {
        IsdnInterface::new("", SpanDriver::Dahdi { span: 1 })
    }
    fn page(
        app: &Arc<App>,
        c: &Caller,
        e: &Self,
        new: bool,
        note: Note,
        st: StatusCode,
    ) -> Response {
        let found = system::dahdi::scan(&app.settings.dahdi_sys);
        isdn_page(c, e, new, note, st, &found)
    }
}

impl Page for PermissionGroup {
    fn blank() -> Self {
        new_group()
    }
    fn page(_: &Arc<App>, c: &Caller, e: &Self, new: bool, note: Note, st: StatusCode) -> Response {
        group_page(c, e, new, note, st)
    }
}

impl Page for Link {
    fn blank() -> Self {
        Link::new("")
    }
    fn page(
        app: &Arc<App>,
        c: &Caller,
        e: &Self,
        new: bool,
        note: Note,
        st: StatusCode,
    ) -> Response {
        link_page(app, c, e, new, None, note, st)
    }
}

fn new_group() -> PermissionGroup {
    PermissionGroup {
        name: String::new(),
        description: String::new(),
        rules: Vec::new(),
        default_allow: true,
    }
}

// ---- Reading forms ----

fn text(form: &Form, k: &str) -> Value {
    json!(field(form, k).unwrap_or("").trim())
}

fn check(form: &Form, k: &str) -> Value {
    json!(field(form, k).is_some())
}

fn list(form: &Form, k: &str) -> Value {
    json!(numbers_list(field(form, k).unwrap_or("")))
}

fn lines(form: &Form, k: &str) -> Value {
    let v: Vec<&str> = field(form, k)
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    json!(v)
}

fn num(form: &Form, k: &str, what: &str) -> Result<Value, ApiError> {
    let v = field(form, k).unwrap_or("").trim();
    if v.is_empty() {
        return Ok(json!(0));
    }
    v.parse::<u32>()
        .map(|n| json!(n))
        .map_err(|_| ApiError::bad(k, format!("{what} must be a whole number")))
}

fn rewrite(form: &Form, k: &str) -> Result<Value, ApiError> {
    Ok(json!({
        "strip": num(form, &format!("{k}_strip"), "digits to strip")?,
        "prefix": text(form, &format!("{k}_prefix")),
    }))
}

/// Repeated fields read row by row; rows whose fields are all empty are left out.
fn rows<'a>(form: &'a Form, names: &[&str]) -> Vec<Vec<&'a str>> {
    let cols: Vec<Vec<&str>> = names.iter().map(|n| fields(form, n)).collect();
    let n = cols.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            cols.iter()
                .map(|c| c.get(i).map(|s| s.trim()).unwrap_or(""))
                .collect::<Vec<_>>()
        })
        .filter(|r| r.iter().any(|v| !v.is_empty()))
        .collect()
}

fn transport(form: &Form) -> Value {
    json!(field(form, "transport").unwrap_or("udp"))
}

fn interface_form(form: &Form) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    for k in [
        "name",
        "description",
        "operator",
        "host",
        "username",
        "auth_user",
        "external_ip",
    ] {
        m.insert(k.into(), text(form, k));
    }
    m.insert(
        "password".into(),
        json!(field(form, "password").unwrap_or("")),
    );
    for k in ["enabled", "register", "srtp"] {
        m.insert(k.into(), check(form, k));
    }
    for k in ["numbers", "codecs", "inbound_sources"] {
        m.insert(k.into(), list(form, k));
    }
    m.insert("port".into(), num(form, "port", "the port")?);
    for k in ["register_expires", "keepalive", "max_calls"] {
        m.insert(k.into(), num(form, k, k)?);
    }
    m.insert("transport".into(), transport(form));
    incoming_form(form, &mut m)?;
    Ok(m)
}

/// What SIP and ISDN interfaces share: the DID table and the rewrites of incoming calls.
fn incoming_form(form: &Form, m: &mut Map<String, Value>) -> Result<(), ApiError> {
    m.insert("called_rewrite".into(), rewrite(form, "called")?);
    m.insert("calling_rewrite".into(), rewrite(form, "calling")?);
    let did: Vec<Value> = rows(form, &["did_number", "did_target"])
        .into_iter()
        .map(|r| json!({"number": r[0], "target": r[1]}))
        .collect();
    m.insert("did".into(), Value::Array(did));
    Ok(())
}

fn isdn_form(form: &Form) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    for k in ["name", "description", "operator"] {
        m.insert(k.into(), text(form, k));
    }
    for k in ["enabled", "overlap"] {
        m.insert(k.into(), check(form, k));
    }
    m.insert("numbers".into(), list(form, "numbers"));
    for k in ["role", "line", "switch_type", "side"] {
        if let Some(v) = field(form, k).filter(|v| !v.is_empty()) {
            m.insert(k.into(), json!(v));
        }
    }
    let span = match field(form, "driver").unwrap_or("dahdi") {
        "virtual" => json!({"driver": "virtual", "path": text(form, "path")}),
        _ => json!({"driver": "dahdi", "span": num(form, "span", "the DAHDI span")?}),
    };
    m.insert("span".into(), span);
    m.insert(
        "called_digits".into(),
        num(form, "called_digits", "digits of the called number")?,
    );
    incoming_form(form, &mut m)?;
    Ok(m)
}

fn link_form(form: &Form, stored: Option<&Link>) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    for k in [
        "name",
        "description",
        "prefix",
        "range_min",
        "range_max",
        "host",
        "username",
        "from_domain",
        "fallback_ddi",
        "country_code",
        "area_code",
        "permission_group",
    ] {
        m.insert(k.into(), text(form, k));
    }
    m.insert(
        "password".into(),
        json!(field(form, "password").unwrap_or("")),
    );
    for k in ["enabled", "nat", "srtp"] {
        m.insert(k.into(), check(form, k));
    }
    m.insert("patterns".into(), lines(form, "patterns"));
    m.insert("codecs".into(), list(form, "codecs"));
    m.insert("port".into(), num(form, "port", "the port")?);
    for k in ["priority", "register_expires", "keepalive"] {
        m.insert(k.into(), num(form, k, k)?);
    }
    m.insert("transport".into(), transport(form));
    m.insert(
        "mode".into(),
        json!(field(form, "mode").unwrap_or("direct")),
    );
    // The register string wins only when the admin changed it.
    let rs = field(form, "register_string").unwrap_or("").trim();
    let shown = stored.map(Link::register_string).unwrap_or_default();
    if !rs.is_empty() && rs != shown {
        m.insert("register_string".into(), json!(rs));
    }
    let remote: Vec<&str> = rows(form, &["conflict_number", "conflict_winner"])
        .into_iter()
        .filter(|r| r[1] == "remote")
        .map(|r| r[0])
        .collect();
    m.insert("remote_wins".into(), json!(remote));
    Ok(m)
}

fn group_form(form: &Form) -> Result<Map<String, Value>, ApiError> {
    let mut m = Map::new();
    m.insert("name".into(), text(form, "name"));
    m.insert("description".into(), text(form, "description"));
    m.insert(
        "default_allow".into(),
        json!(field(form, "default") != Some("deny")),
    );
    // Rows come in the order shown; an order column moves them.
    let mut rules: Vec<(u32, usize, Value)> = Vec::new();
    for (i, r) in rows(form, &["rule_prefix", "rule_action", "rule_order"])
        .into_iter()
        .enumerate()
    {
        if r[0].is_empty() {
            continue; // a spare row with only the action chosen
        }
        let order = if r[2].is_empty() {
            (i as u32 + 1) * 10
        } else {
            r[2].parse()
                .map_err(|_| ApiError::bad("rule_order", "the order must be a whole number"))?
        };
        rules.push((order, i, json!({"prefix": r[0], "allow": r[1] == "allow"})));
    }
    rules.sort_by_key(|(o, i, _)| (*o, *i));
    m.insert(
        "rules".into(),
        Value::Array(rules.into_iter().map(|(_, _, v)| v).collect()),
    );
    Ok(m)
}

fn emergency_form(form: &Form) -> Result<config::Emergency, ApiError> {
    let numbers: Vec<Value> = rows(form, &["em_number", "em_description"])
        .into_iter()
        .map(|r| json!({"number": r[0], "description": r[1]}))
        .collect();
    crate::ops::parse(json!({
        "numbers": numbers,
        "direct_dialing": field(form, "direct_dialing").is_some(),
        "routes": numbers_list(field(form, "routes").unwrap_or("")),
    }))
}

fn outbound_form(form: &Form) -> Result<Vec<config::OutboundRoute>, ApiError> {
    let mut v = Vec::new();
    for r in rows(
        form,
        &[
            "out_prefix",
            "out_interfaces",
            "out_called_strip",
            "out_called_prefix",
            "out_calling_strip",
            "out_calling_prefix",
            "out_description",
        ],
    ) {
        let n = |s: &str, what: &str| -> Result<u32, ApiError> {
            if s.is_empty() {
                return Ok(0);
            }
            s.parse().map_err(|_| {
                ApiError::bad(
                    what,
                    format!("route {:?}: digits to strip must be a whole number", r[0]),
                )
            })
        };
        v.push(json!({
            "prefix": r[0],
            "interfaces": numbers_list(r[1]),
            "called_rewrite": {"strip": n(r[2], "called_rewrite")?, "prefix": r[3]},
            "calling_rewrite": {"strip": n(r[4], "calling_rewrite")?, "prefix": r[5]},
            "description": r[6],
        }));
    }
    crate::ops::parse(Value::Array(v))
}

async fn save_ring_groups(app: &Arc<App>, who: &str, form: &Form) -> Result<(), ApiError> {
    let num = |s: &str, what: &str, default: u32| -> Result<u32, ApiError> {
        if s.is_empty() {
            return Ok(default);
        }
        s.parse()
            .map_err(|_| ApiError::bad(what, "must be a number of seconds"))
    };
    let mut v = Vec::new();
    for r in rows(
        form,
        &[
            "rg_number",
            "rg_name",
            "rg_members",
            "rg_strategy",
            "rg_member_seconds",
            "rg_timeout",
            "rg_fallback",
        ],
    ) {
        v.push(json!({
            "number": r[0],
            "name": r[1],
            "members": numbers_list(r[2]),
            "strategy": if r[3].is_empty() { "all" } else { r[3] },
            "member_seconds": num(r[4], "member_seconds", 15)?,
            "timeout": num(r[5], "timeout", 0)?,
            "fallback": r[6],
        }));
    }
    let groups: Vec<config::RingGroup> = crate::ops::parse(Value::Array(v))?;
    crate::ops::change(app, who, "changed ring groups".into(), move |c| {
        c.ring_groups = groups;
        Ok(())
    })
    .await
}

// ---- Pages ----

/// `/admin/routing/<kind>/<key>` (the key percent-encoded: group names may hold any
/// printable character), or the collection's page without a key.
fn entity_url(kind: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!(
            "/admin/routing/{kind}/{}",
            percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => format!("/admin/routing/{kind}"),
    }
}

/// An edit page's heading and form action: the collection's for a new entity.
fn edit_target(new: bool, new_title: &str, title: &str, kind: &str, key: &str) -> (String, String) {
    if new {
        (new_title.to_string(), entity_url(kind, None))
    } else {
        (format!("{title} {key}"), entity_url(kind, Some(key)))
    }
}

/// A page under Call routing: the layout with the way back above `body`.
fn sub_page(c: &Caller, title: &str, note: &Note, status: StatusCode, body: Markup) -> Response {
    page_response(
        status,
        layout(
            title,
            Some(c),
            true,
            note,
            html! {
                p { a href="/admin/routing" { "← Call routing" } }
                (body)
            },
        ),
    )
}

/// Name, Enabled and Description: how SIP interfaces, ISDN interfaces and links start.
fn identity_fields(name: &str, enabled: bool, description: &str) -> Markup {
    html! {
        label { "Name (letters, digits, - and _)" input name="name" value=(name) required pattern="[A-Za-z0-9_-]{1,32}"; }
        label.check { input type="checkbox" name="enabled" checked[enabled]; "Enabled" }
        label { "Description" input name="description" value=(description); }
    }
}

/// The remove button under an edit page.
fn remove_form(c: &Caller, kind: &str, key: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ (entity_url(kind, Some(key))) "/delete" } {
            (csrf_field(c))
            button.danger type="submit" { (label) }
        }
    }
}

fn selected_transport(t: Transport) -> Markup {
    html! {
        option value="udp" selected[t == Transport::Udp] { "UDP" }
        option value="tcp" selected[t == Transport::Tcp] { "TCP" }
        option value="tls" selected[t == Transport::Tls] { "TLS (certificate checked)" }
    }
}

fn state_of<'a>(peers: &'a Option<Value>, name: &str) -> Option<&'a Value> {
    peers
        .as_ref()?
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

fn state_text(p: Option<&Value>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
    let mut out = s("registration");
    if out == "off" {
        out = "not registering".into();
    }
    let detail = s("detail");
    if !detail.is_empty() {
        out = format!("{out} ({detail})");
    }
    match s("keepalive").as_str() {
        "up" => out.push_str("; answers keepalives"),
        "down" => out.push_str("; NOT answering keepalives"),
        _ => {}
    }
    out
}

fn link_numbers(l: &Link) -> String {
    let mut v = Vec::new();
    if !l.prefix.is_empty() {
        v.push(format!("prefix {}", l.prefix));
    }
    if !l.range_min.is_empty() {
        v.push(format!("{}–{}", l.range_min, l.range_max));
    }
    v.extend(l.patterns.iter().cloned());
    v.join(", ")
}

fn mode_text(m: LinkMode) -> &'static str {
    match m {
        LinkMode::Direct => "direct",
        LinkMode::PeerRegisters => "the other PBX registers here",
        LinkMode::WeRegister => "we register there",
    }
}

async fn overview(app: &Arc<App>, c: &Caller, note: Note, status: StatusCode) -> Response {
    let snap = app.cfg.snapshot();
    let cfg = &snap.config;
    let write = c.can_write_admin();
    let peers = r::peers(app).await;
    let spans = r::spans(app).await;
    let conflicts = cfg.link_conflicts();
    let spare = if write { SPARE_ROWS } else { 0 };
    page_response(
        status,
        layout(
            "Call routing",
            Some(c),
            true,
            &note,
            html! {
                p.hint { "A dialled number goes to a local extension or ring group first, then to a link by its numbers and priority, then to an emergency number, then out through the outbound route with the longest matching prefix." }
                h2 { "SIP interfaces" }
                table id="interfaces" {
                    thead { tr { th { "Name" } th { "Server" } th { "Numbers" } th { "Enabled" } th { "State" } } }
                    tbody {
                        @for i in &cfg.sip_interfaces {
                            tr {
                                td { a href=(entity_url("interfaces", Some(&i.name))) { (i.name) } }
                                td { (i.host) @if i.port != 0 { ":" (i.port) } }
                                td { (i.numbers.join(", ")) }
                                td { (if i.enabled { "yes" } else { "no" }) }
                                td.state { (state_text(state_of(&peers, &i.name))) }
                            }
                        }
                    }
                }
                @if write { p { a.button href="/admin/routing/interfaces" { "Add SIP interface" } } }

                h2 { "ISDN interfaces" }
                table id="isdn" {
                    thead { tr { th { "Name" } th { "Line" } th { "Numbers" } th { "Enabled" } th { "State" } } }
                    tbody {
                        @for i in &cfg.isdn_interfaces {
                            tr {
                                td { a href=(entity_url("isdn", Some(&i.name))) { (i.name) } }
                                td { (isdn_span_text(i)) }
                                td { (i.numbers.join(", ")) }
                                td { (if i.enabled { "yes" } else { "no" }) }
                                td.state { (span_state_text(spans.as_ref().and_then(|s| s.get(&i.name)))) }
                            }
                        }
                    }
                }
                @if write { p { a.button href="/admin/routing/isdn" { "Add ISDN interface" } } }

                h2 { "Links to other PBXs" }
                table id="links" {
                    thead { tr { th { "Name" } th { "Numbers" } th { "Priority" } th { "Connection" } th { "Enabled" } th { "State" } } }
                    tbody {
                        @for l in &cfg.links {
                            tr {
                                td { a href=(entity_url("links", Some(&l.name))) { (l.name) } }
                                td { (link_numbers(l)) }
                                td { (l.priority) }
                                td { (mode_text(l.mode)) @if !l.host.is_empty() { " · " (l.host) } }
                                td { (if l.enabled { "yes" } else { "no" }) }
                                td.state { (state_text(state_of(&peers, &l.name))) }
                            }
                        }
                    }
                }
                @if write { p { a.button href="/admin/routing/links" { "Add link" } } }
                @if !conflicts.is_empty() {
                    h3 { "Conflicts" }
                    p.hint { "Local numbers that also fall inside a link's numbers. Choose the winner on the link's page." }
                    table id="conflicts" {
                        thead { tr { th { "Number" } th { "Local" } th { "Link" } th { "Wins" } } }
                        tbody {
                            @for x in &conflicts {
                                tr { td { (x.number) } td { (x.kind) } td { a href=(entity_url("links", Some(&x.link))) { (x.link) } } td { (x.winner) } }
                            }
                        }
                    }
                }

                h2 { "Outbound routes" }
                p.hint { "A number starting with the prefix leaves through the first working interface of the list (names separated by commas); the next one is tried when a provider fails. An empty prefix takes every number no other route takes." }
                form method="post" action="/admin/routing/outbound" id="outbound" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        table.rows {
                            thead { tr { th { "Prefix" } th { "Interfaces in order" } th { "Called: strip" } th { "then add" } th { "Calling: strip" } th { "then add" } th { "Description" } } }
                            tbody {
                                @for o in &cfg.outbound_routes {
                                    (outbound_row(&o.prefix, &o.interfaces.join(", "), o.called_rewrite.strip, &o.called_rewrite.prefix, o.calling_rewrite.strip, &o.calling_rewrite.prefix, &o.description))
                                }
                                @for _ in 0..spare { (outbound_row("", "", 0, "", 0, "", "")) }
                            }
                        }
                        @if write { button type="submit" { "Save outbound routes" } }
                    }
                }

                h2 { "Call permission groups" }
                table id="groups" {
                    thead { tr { th { "Name" } th { "Rules" } th { "Default" } th { "Used by" } } }
                    tbody {
                        @for g in &cfg.permission_groups {
                            tr {
                                td { a href=(entity_url("groups", Some(&g.name))) { (g.name) } }
                                td { (g.rules.iter().map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.prefix)).collect::<Vec<_>>().join(", ")) }
                                td { (if g.default_allow { "allow" } else { "deny" }) }
                                td { (cfg.extensions.iter().filter(|e| e.permission_group == g.name).map(|e| e.number.as_str()).chain(cfg.links.iter().filter(|l| l.permission_group == g.name).map(|l| l.name.as_str())).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
                @if write { p { a.button href="/admin/routing/groups" { "Add permission group" } } }

                h2 { "Emergency numbers" }
                p {
                    @if cfg.emergency.numbers.is_empty() { "None listed. " } @else {
                        (cfg.emergency.numbers.iter().map(|n| n.number.as_str()).collect::<Vec<_>>().join(", "))
                        (if cfg.emergency.direct_dialing { "; dialled directly. " } else { "; dialled with the dial-out prefix. " })
                    }
                    a href="/admin/routing/emergency" { "Edit emergency numbers" }
                }

                h2 { "Ring groups" }
                p.hint { "Members are extensions or external numbers. All at once: every member rings and the first to answer takes the call; in order and round robin: one member at a time for its seconds (round robin starts after last time's first). After the group's time (empty = the box's), or when every member is busy, the call goes to the fallback: a number (an auto attendant too), voicemail:<extension> (that box), or hangup." }
                form method="post" action="/admin/routing/ring-groups" id="ring-groups" {
                    (csrf_field(c))
                    fieldset disabled[!write] {
                        table.rows {
                            thead { tr { th { "Number" } th { "Name" } th { "Members" } th { "Strategy" } th { "Seconds each" } th { "Group time" } th { "Fallback" } } }
                            tbody {
                                @for g in &cfg.ring_groups { (ring_row(Some(g))) }
                                @for _ in 0..spare { (ring_row(None)) }
                            }
                        }
                        @if write { button type="submit" { "Save ring groups" } }
                    }
                }
            },
        ),
    )
}

#[allow(clippy::too_many_arguments)]
fn outbound_row(
    prefix: &str,
    ifaces: &str,
    cs: u32,
    cp: &str,
    ks: u32,
    kp: &str,
    desc: &str,
) -> Markup {
    let n = |v: u32| if v == 0 { String::new() } else { v.to_string() };
    html! {
        tr {
            td { input name="out_prefix" value=(prefix) inputmode="numeric" size="4" aria-label="Prefix"; }
            td { input name="out_interfaces" value=(ifaces) aria-label="Interfaces in order"; }
            td { input name="out_called_strip" value=(n(cs)) inputmode="numeric" size="2" aria-label="Called: strip"; }
            td { input name="out_called_prefix" value=(cp) inputmode="numeric" size="4" aria-label="Called: add"; }
            td { input name="out_calling_strip" value=(n(ks)) inputmode="numeric" size="2" aria-label="Calling: strip"; }
            td { input name="out_calling_prefix" value=(kp) inputmode="numeric" size="4" aria-label="Calling: add"; }
            td { input name="out_description" value=(desc) aria-label="Description"; }
        }
    }
}

fn ring_row(g: Option<&config::RingGroup>) -> Markup {
    use config::RingStrategy;
    let strategy = g.map(|g| g.strategy);
    let text = |f: fn(&config::RingGroup) -> String| g.map(f).unwrap_or_default();
    html! {
        tr {
            td { input name="rg_number" value=(text(|g| g.number.clone())) inputmode="numeric" size="6" aria-label="Number"; }
            td { input name="rg_name" value=(text(|g| g.name.clone())) aria-label="Name"; }
            td { input name="rg_members" value=(text(|g| g.members.join(", "))) aria-label="Members"; }
            td {
                select name="rg_strategy" aria-label="Strategy" {
                    option value="" selected[matches!(strategy, None | Some(RingStrategy::All))] { "all at once" }
                    option value="in_order" selected[strategy == Some(RingStrategy::InOrder)] { "in order" }
                    option value="round_robin" selected[strategy == Some(RingStrategy::RoundRobin)] { "round robin" }
                }
            }
            td { input name="rg_member_seconds" value=(text(|g| g.member_seconds.to_string())) inputmode="numeric" size="4" aria-label="Seconds each"; }
            td { input name="rg_timeout" value=(text(|g| if g.timeout == 0 { String::new() } else { g.timeout.to_string() })) inputmode="numeric" size="4" aria-label="Group time"; }
            td { input name="rg_fallback" value=(text(|g| g.fallback.clone())) size="8" aria-label="Fallback"; }
        }
    }
}

fn rewrite_fields(label: &str, k: &str, rw: &config::Rewrite) -> Markup {
    html! {
        fieldset {
            legend { (label) }
            label { "Strip digits from the left" input name={ (k) "_strip" } value=(rw.strip) inputmode="numeric"; }
            label { "Then add prefix" input name={ (k) "_prefix" } value=(rw.prefix) inputmode="numeric"; }
        }
    }
}

/// The DID table and the rewrites of incoming calls (SIP and ISDN interfaces).
fn incoming_fields(
    did: &[DidMapping],
    called: &config::Rewrite,
    calling: &config::Rewrite,
    spare: usize,
) -> Markup {
    html! {
        table.rows id="did" {
            thead { tr { th { "External number" } th { "Extension" } } }
            tbody {
                @for d in did {
                    tr { td { input name="did_number" value=(d.number) aria-label="External number"; } td { input name="did_target" value=(d.target) aria-label="Extension"; } }
                }
                @for _ in 0..spare {
                    tr { td { input name="did_number" aria-label="External number"; } td { input name="did_target" aria-label="Extension"; } }
                }
            }
        }
        (rewrite_fields("Called number", "called", called))
        (rewrite_fields("Calling number (so users can call back)", "calling", calling))
    }
}

/// `<option>`s with the one whose value is `current` selected.
fn options(current: &str, list: &[(&str, &str)]) -> Markup {
    html! {
        @for (v, label) in list {
            option value=(v) selected[*v == current] { (label) }
        }
    }
}

fn isdn_span_text(i: &IsdnInterface) -> String {
    let line = match i.line {
        IsdnLine::E1 => "E1",
        IsdnLine::T1 => "T1",
        IsdnLine::Bri => "BRI",
    };
    let span = match &i.span {
        SpanDriver::Dahdi { span } => format!("DAHDI span {span}"),
        SpanDriver::Virtual { path } => format!("virtual span {path}"),
    };
    let switch = match i.switch_type {
        SwitchType::Euroisdn => "EuroISDN",
        SwitchType::Ni2 => "NI-2",
    };
    let side = match i.side {
        IsdnSide::User => "user side",
        IsdnSide::Network => "network side",
    };
    format!("{span}: {line}, {switch}, {side}")
}

/// A span's state in words: link, alarms, calls, or why it is down.
fn span_state_text(s: Option<&Value>) -> String {
    let Some(s) = s else {
        return String::new();
    };
    let mut out = if s["link_up"] == json!(true) {
        "link up".to_string()
    } else {
        "link down".to_string()
    };
    if let Some(a) = s["alarm"].as_str() {
        out = format!("{out}; {a}");
    }
    match s["detail"].as_str() {
        Some(d) if !d.is_empty() => out = format!("{out} ({d})"),
        _ => {}
    }
    let calls = s["calls"].as_u64().unwrap_or(0);
    if calls > 0 {
        out = format!("{out}; {calls} call{}", if calls == 1 { "" } else { "s" });
    }
    out
}

fn isdn_page(
    c: &Caller,
    i: &IsdnInterface,
    new: bool,
    note: Note,
    status: StatusCode,
    found: &[system::dahdi::Span],
) -> Response {
    let write = c.can_write_admin();
    let (title, action) = edit_target(new, "New ISDN interface", "ISDN interface", "isdn", &i.name);
    let spare = if write { SPARE_ROWS } else { 0 };
    let enum_str = |v: Value| v.as_str().unwrap_or("").to_string();
    let (driver, span, path) = match &i.span {
        SpanDriver::Dahdi { span } => ("dahdi", span.to_string(), String::new()),
        SpanDriver::Virtual { path } => ("virtual", String::new(), path.clone()),
    };
    let role = enum_str(json!(i.role));
    let line = enum_str(json!(i.line));
    let switch = enum_str(json!(i.switch_type));
    let side = enum_str(json!(i.side));
    sub_page(
        c,
        &title,
        &note,
        status,
        html! {
            form.card id="isdn" method="post" action=(action) {
                (csrf_field(c))
                fieldset disabled[!write] {
                    (identity_fields(&i.name, i.enabled, &i.description))
                    label { "Connected to" select name="role" { (options(&role, &[("provider", "an ISDN provider"), ("pbx", "another PBX")])) } }
                    h3 { "Line" }
                    label { "Span" select name="driver" { (options(driver, &[("dahdi", "PRI/BRI card (DAHDI)"), ("virtual", "virtual span (lab)")])) } }
                    label { "DAHDI span number" @if !found.is_empty() { " (the box's spans are listed)" } input name="span" value=(span) inputmode="numeric" list="dahdi-spans"; }
                    datalist id="dahdi-spans" {
                        @for s in found {
                            option value=(s.span) { (format!("span {}: {} port {} ({}{})", s.span, s.desc, s.port, s.spantype, if s.alarms.is_empty() { String::new() } else { format!(", alarm: {}", s.alarms.join(", ")) })) }
                        }
                    }
                    label { "Virtual span socket path" input name="path" value=(path); }
                    label { "Line type" select name="line" { (options(&line, &[("e1", "E1 PRI (30 channels)"), ("t1", "T1 PRI (23 channels)"), ("bri", "BRI (2 channels)")])) } }
                    label { "Switch type" select name="switch_type" { (options(&switch, &[("euroisdn", "EuroISDN (A-law)"), ("ni2", "National ISDN-2 (u-law)")])) } }
                    label { "Side" select name="side" { (options(&side, &[("user", "user (facing a provider)"), ("network", "network (the other PBX is the user)")])) } }
                    label.check { input type="checkbox" name="overlap" checked[i.overlap]; "Overlap dialing (numbers sent digit by digit)" }
                    h3 { "Incoming calls" }
                    label { "Numbers from the provider (commas; X = any digit)" input name="numbers" value=(i.numbers.join(", ")); }
                    label { "Operator extension (unmapped numbers)" input name="operator" value=(i.operator) inputmode="numeric"; }
                    label { "Digits of the called number that count (0 = all)" input name="called_digits" value=(i.called_digits) inputmode="numeric"; }
                    p.hint { "A number in the table rings its extension; exact numbers win over X patterns. Other numbers are rewritten; what is not a local number then goes to the operator. Calls out use the outbound routes." }
                    (incoming_fields(&i.did, &i.called_rewrite, &i.calling_rewrite, spare))
                    @if write { button type="submit" { (if new { "Add" } else { "Save" }) } }
                }
            }
            @if write && !new {
                (remove_form(c, "isdn", &i.name, "Remove ISDN interface"))
            }
        },
    )
}

fn interface_page(
    c: &Caller,
    i: &SipInterface,
    new: bool,
    note: Note,
    status: StatusCode,
) -> Response {
    let write = c.can_write_admin();
    let (title, action) = edit_target(
        new,
        "New SIP interface",
        "SIP interface",
        "interfaces",
        &i.name,
    );
    let password = if write { i.password.as_str() } else { HIDDEN };
    let spare = if write { SPARE_ROWS } else { 0 };
    sub_page(
        c,
        &title,
        &note,
        status,
        html! {
            form.card id="interface" method="post" action=(action) {
                (csrf_field(c))
                fieldset disabled[!write] {
                    (identity_fields(&i.name, i.enabled, &i.description))
                    label { "Numbers from the provider (commas; X = any digit)" input name="numbers" value=(i.numbers.join(", ")); }
                    label { "Operator extension (unmapped numbers)" input name="operator" value=(i.operator) inputmode="numeric"; }
                    h3 { "Provider's server" }
                    label { "Host name or IP address" input name="host" value=(i.host) required; }
                    label { "Port (0 = from DNS SRV, else 5060)" input name="port" value=(i.port) inputmode="numeric"; }
                    label { "Transport" select name="transport" { (selected_transport(i.transport)) } }
                    label.check { input type="checkbox" name="srtp" checked[i.srtp]; "Encrypt audio (SRTP; needs TLS)" }
                    label { "User name" input name="username" value=(i.username) autocomplete="off"; }
                    label { "Password" (secret_field("iface-password", "password", password, !write)) }
                    label { "Authentication user ID (when it differs)" input name="auth_user" value=(i.auth_user) autocomplete="off"; }
                    label.check { input type="checkbox" name="register" checked[i.register]; "Must register" }
                    label { "Registration lifetime (seconds)" input name="register_expires" value=(i.register_expires) inputmode="numeric"; }
                    label { "External IP to send in registration (NAT)" input name="external_ip" value=(i.external_ip); }
                    label { "Keepalive every (seconds, 0 = off)" input name="keepalive" value=(i.keepalive) inputmode="numeric"; }
                    label { "Codecs in order" input name="codecs" value=(i.codecs.join(", ")); }
                    label { "Calls at once (0 = no limit)" input name="max_calls" value=(i.max_calls) inputmode="numeric"; }
                    label { "Other addresses the provider calls from (commas; subnets allowed)" input name="inbound_sources" value=(i.inbound_sources.join(", ")); }
                    h3 { "Incoming calls" }
                    p.hint { "A number in the table rings its extension; exact numbers win over X patterns. Other numbers are rewritten; what is not a local number then goes to the operator." }
                    (incoming_fields(&i.did, &i.called_rewrite, &i.calling_rewrite, spare))
                    @if write { button type="submit" { (if new { "Add" } else { "Save" }) } }
                }
            }
            @if write && !new {
                (remove_form(c, "interfaces", &i.name, "Remove interface"))
            }
        },
    )
}

async fn link_post(app: &Arc<App>, c: &Caller, key: Option<&str>, form: &Form) -> Response {
    let cfg = app.cfg.snapshot().config.clone();
    let stored = key.and_then(|k| r::find::<Link>(&cfg, k).cloned());
    if key.is_some() && stored.is_none() {
        return not_found(
            app,
            c,
            format!("Link {} does not exist.", key.unwrap_or("")),
        )
        .await;
    }
    let m = link_form(form, stored.as_ref());
    if field(form, "action") == Some("check") {
        // Conflicts before saving: the link as typed, nothing stored.
        let res = m.and_then(|m| match key {
            Some(k) => r::merged::<Link>(&cfg, k, m),
            None => Link::from_json(m),
        });
        return match res.and_then(|l| r::preview_conflicts(&cfg, l.clone()).map(|x| (l, x))) {
            Ok((l, x)) => {
                let note = if x.is_empty() {
                    "No local number falls inside this link's numbers. Not saved yet.".into()
                } else {
                    format!(
                        "{} local number(s) fall inside this link's numbers; choose who wins, then save. Not saved yet.",
                        x.len()
                    )
                };
                link_page(
                    app,
                    c,
                    &l,
                    key.is_none(),
                    Some(x),
                    Note::Done(note),
                    StatusCode::OK,
                )
            }
            Err(e) => {
                let shown = stored.unwrap_or_else(|| Link::new(""));
                link_page(
                    app,
                    c,
                    &shown,
                    key.is_none(),
                    None,
                    e.into(),
                    StatusCode::BAD_REQUEST,
                )
            }
        };
    }
    save::<Link>(app, c, key, m).await
}

fn link_page(
    app: &Arc<App>,
    c: &Caller,
    l: &Link,
    new: bool,
    preview: Option<Vec<config::Conflict>>,
    note: Note,
    status: StatusCode,
) -> Response {
    let snap = app.cfg.snapshot();
    let cfg = &snap.config;
    let write = c.can_write_admin();
    let (title, action) = edit_target(new, "New link to another PBX", "Link", "links", &l.name);
    let conflicts = match preview {
        Some(x) => x,
        None => r::preview_conflicts(cfg, l.clone()).unwrap_or_default(),
    };
    let (password, reg) = if write {
        (l.password.clone(), l.register_string())
    } else if l.password.is_empty() {
        (String::new(), l.register_string())
    } else {
        (
            HIDDEN.to_string(),
            format!("{}@{}:{HIDDEN}", l.username, l.host),
        )
    };
    sub_page(
        c,
        &title,
        &note,
        status,
        html! {
            form.card id="link" method="post" action=(action) {
                (csrf_field(c))
                fieldset disabled[!write] {
                    (identity_fields(&l.name, l.enabled, &l.description))
                    h3 { "Numbers that reach the other PBX" }
                    p.hint { "Any of: a prefix (sent as dialled), the other system's extension range, or regular expressions. When several links match, the lowest priority wins." }
                    label { "Prefix" input name="prefix" value=(l.prefix) inputmode="numeric"; }
                    label { "Extension range from" input name="range_min" value=(l.range_min) inputmode="numeric"; }
                    label { "to" input name="range_max" value=(l.range_max) inputmode="numeric"; }
                    label { "Patterns (one regular expression per line)" textarea name="patterns" rows="3" { (l.patterns.join("\n")) } }
                    label { "Priority (lower wins)" input name="priority" value=(l.priority) inputmode="numeric"; }
                    h3 { "Connection" }
                    label { "How the systems reach each other"
                        select name="mode" {
                            option value="direct" selected[l.mode == LinkMode::Direct] { "Directly (host and port)" }
                            option value="peer_registers" selected[l.mode == LinkMode::PeerRegisters] { "The other PBX registers here (it is behind NAT)" }
                            option value="we_register" selected[l.mode == LinkMode::WeRegister] { "We register to the other PBX" }
                        }
                    }
                    label { "Register string {username}@{host or IP}:{password}" input name="register_string" value=(reg) autocomplete="off"; }
                    label { "Host name or IP address" input name="host" value=(l.host); }
                    label { "Port (0 = 5060 or DNS SRV)" input name="port" value=(l.port) inputmode="numeric"; }
                    label { "Transport" select name="transport" { (selected_transport(l.transport)) } }
                    label.check { input type="checkbox" name="srtp" checked[l.srtp]; "Encrypt audio (SRTP; needs TLS)" }
                    label { "User name (the same on both systems)" input name="username" value=(l.username) autocomplete="off"; }
                    label { "Password" (secret_field("link-password", "password", &password, !write)) }
                    label { "Registration lifetime (seconds)" input name="register_expires" value=(l.register_expires) inputmode="numeric"; }
                    label { "Keepalive every (seconds, 0 = off)" input name="keepalive" value=(l.keepalive) inputmode="numeric"; }
                    label.check { input type="checkbox" name="nat" checked[l.nat]; "NAT transformation" }
                    label { "Codecs in order" input name="codecs" value=(l.codecs.join(", ")); }
                    label { "From domain" input name="from_domain" value=(l.from_domain); }
                    h3 { "Calls the other side places through us" }
                    label { "Fallback outgoing DDI" input name="fallback_ddi" value=(l.fallback_ddi) inputmode="numeric"; }
                    label { "Country code" input name="country_code" value=(l.country_code) inputmode="numeric"; }
                    label { "Area code" input name="area_code" value=(l.area_code) inputmode="numeric"; }
                    label { "Call permission group"
                        select name="permission_group" {
                            option value="" { "(none: every number)" }
                            @for g in &cfg.permission_groups {
                                option value=(g.name) selected[g.name == l.permission_group] { (g.name) }
                            }
                        }
                    }
                    h3 { "Conflicts" }
                    @if conflicts.is_empty() {
                        p.hint id="no-conflicts" { "No local number falls inside this link's numbers." }
                    } @else {
                        p.hint { "These local numbers also fall inside the link's numbers. Local: the call stays here. Remote: it goes to the other PBX." }
                        table.rows id="link-conflicts" {
                            thead { tr { th { "Number" } th { "Local" } th { "Wins" } } }
                            tbody {
                                @for x in &conflicts {
                                    tr {
                                        td { (x.number) input type="hidden" name="conflict_number" value=(x.number); }
                                        td { (x.kind) }
                                        td {
                                            select name="conflict_winner" aria-label={ "Winner for " (x.number) } {
                                                option value="local" selected[x.winner == "local"] { "Local" }
                                                option value="remote" selected[x.winner == "remote"] { "Remote" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if write {
                        button type="submit" name="action" value="check" { "Check conflicts" }
                        " "
                        button type="submit" name="action" value="save" { (if new { "Add" } else { "Save" }) }
                    }
                }
            }
            @if write && !new {
                (remove_form(c, "links", &l.name, "Remove link"))
            }
        },
    )
}

fn rule_row(order: usize, prefix: &str, allow: bool) -> Markup {
    html! {
        tr {
            td { input name="rule_order" value=(if order == 0 { String::new() } else { order.to_string() }) inputmode="numeric" size="3" aria-label="Order"; }
            td { input name="rule_prefix" value=(prefix) inputmode="numeric" aria-label="Number prefix"; }
            td {
                select name="rule_action" aria-label="Action" {
                    option value="deny" selected[!allow] { "Deny" }
                    option value="allow" selected[allow] { "Allow" }
                }
            }
        }
    }
}

fn group_page(
    c: &Caller,
    g: &PermissionGroup,
    new: bool,
    note: Note,
    status: StatusCode,
) -> Response {
    let write = c.can_write_admin();
    let (title, action) = edit_target(
        new,
        "New call permission group",
        "Permission group",
        "groups",
        &g.name,
    );
    let spare = if write { SPARE_ROWS } else { 0 };
    sub_page(
        c,
        &title,
        &note,
        status,
        html! {
            form.card id="group" method="post" action=(action) {
                (csrf_field(c))
                fieldset disabled[!write] {
                    label { "Name" input name="name" value=(g.name) required; }
                    label { "Description" input name="description" value=(g.description); }
                    p.hint { "Rules apply to external calls, in order; the first whose prefix matches the number as dialled (with the dial-out prefix) decides. Internal and emergency calls are always allowed. Change the order numbers to move a rule." }
                    table.rows id="rules" {
                        thead { tr { th { "Order" } th { "Number prefix" } th { "Action" } } }
                        tbody {
                            @for (i, r) in g.rules.iter().enumerate() { (rule_row((i + 1) * 10, &r.prefix, r.allow)) }
                            @for _ in 0..spare { (rule_row(0, "", false)) }
                        }
                    }
                    label { "Default (no rule matches)"
                        select name="default" {
                            option value="allow" selected[g.default_allow] { "Allow" }
                            option value="deny" selected[!g.default_allow] { "Deny" }
                        }
                    }
                    @if write { button type="submit" { (if new { "Add" } else { "Save" }) } }
                }
            }
            @if write && !new {
                (remove_form(c, "groups", &g.name, "Remove group"))
            }
        },
    )
}

fn emergency_page(
    app: &Arc<App>,
    c: &Caller,
    shown: Option<config::Emergency>,
    note: Note,
    status: StatusCode,
) -> Response {
    let snap = app.cfg.snapshot();
    let cfg = &snap.config;
    let e = shown.unwrap_or_else(|| cfg.emergency.clone());
    let write = c.can_write_admin();
    let spare = if write { SPARE_ROWS } else { 0 };
    sub_page(
        c,
        "Emergency numbers",
        &note,
        status,
        html! {
            @if write {
                form.card id="preset" method="post" action="/admin/routing/emergency/preset" {
                    (csrf_field(c))
                    label { "Country"
                        select name="country" {
                            @for (code, name) in config::EMERGENCY_COUNTRIES {
                                option value=(code) { (name) }
                            }
                        }
                    }
                    p.hint { "Loading a country's numbers replaces the list below." }
                    button type="submit" { "Load the country's numbers" }
                }
            }
            form.card id="emergency" method="post" action="/admin/routing/emergency" {
                (csrf_field(c))
                fieldset disabled[!write] {
                    table.rows id="emergency-numbers" {
                        thead { tr { th { "Number" } th { "Description" } } }
                        tbody {
                            @for n in &e.numbers {
                                tr { td { input name="em_number" value=(n.number) inputmode="numeric" aria-label="Number"; } td { input name="em_description" value=(n.description) aria-label="Description"; } }
                            }
                            @for _ in 0..spare {
                                tr { td { input name="em_number" inputmode="numeric" aria-label="Number"; } td { input name="em_description" aria-label="Description"; } }
                            }
                        }
                    }
                    label.check { input type="checkbox" name="direct_dialing" checked[e.direct_dialing]; "Dial emergency numbers directly, without the dial-out prefix" }
                    label { "Through the outbound routes with these prefixes, in order"
                        input name="routes" value=(e.routes.join(", ")) inputmode="numeric";
                    }
                    p.hint {
                        "Outbound routes: "
                        @if cfg.outbound_routes.is_empty() { "none yet." } @else {
                            (cfg.outbound_routes.iter().map(|o| if o.prefix.is_empty() { "(no prefix)".to_string() } else { o.prefix.clone() }).collect::<Vec<_>>().join(", "))
                            "."
                        }
                        " Emergency calls are allowed whatever the caller's permission group. While direct dialing is on, no extension may have an emergency number."
                    }
                    @if write { button type="submit" { "Save" } }
                }
            }
        },
    )
}
