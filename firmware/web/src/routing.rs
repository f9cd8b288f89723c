//! Trunks and number routing in the web: `/api/v1/routing/...` (SIP interfaces, ISDN
//! interfaces, links, conflicts, outbound routes, permission groups, emergency numbers,
//! ring groups), `/api/v1/status/peers` and `/api/v1/status/spans`. The Call routing
//! pages (`routing_pages.rs`) use the same operations.
//!
//! Writes of one entity take the fields given and keep the rest (`PUT` merges over the
//! stored entity); outbound routes are one ordered list and are replaced whole.

use crate::api::{busy, created, no_content, ok};
use crate::ops::{self, change, HIDDEN};
use crate::{ApiError, App, Caller, Req};
use config::{
    AutoAttendant, Conference, Config, Emergency, IpGroup, IpItem, IsdnInterface, Link,
    MusicCollection, OutboundRoute, PermissionGroup, Queue, RingGroup, SipInterface, TimeRange,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use store::ChangeError;
use warp::http::Method;
use warp::reply::Response;

/// A routing entity kept as a list in the configuration, named by one key.
pub(crate) trait Entity:
    Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
    /// "interface", "link", ... as messages name it.
    const WHAT: &'static str;
    /// The key field: `name` or `number`.
    const KEY: &'static str;
    fn key(&self) -> &str;
    fn list(c: &Config) -> &Vec<Self>;
    fn list_mut(c: &mut Config) -> &mut Vec<Self>;
    /// Follows a rename in the rest of the configuration.
    fn renamed(_c: &mut Config, _old: &str, _new: &str) {}
    /// JSON as the API shows it; secrets only with `reveal`.
    fn to_json(&self, _reveal: bool) -> Value {
        serde_json::to_value(self).expect("serialises")
    }
    /// From JSON as the API takes it.
    fn from_json(m: Map<String, Value>) -> Result<Self, ApiError> {
        ops::parse(Value::Object(m))
    }
    /// Fields `to_json` adds that are not stored.
    const DERIVED: &'static [&'static str] = &[];
}

impl Entity for SipInterface {
    const WHAT: &'static str = "interface";
    const KEY: &'static str = "name";
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.sip_interfaces
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.sip_interfaces
    }
    fn renamed(c: &mut Config, old: &str, new: &str) {
        for r in &mut c.outbound_routes {
            for i in &mut r.interfaces {
                if i == old {
                    *i = new.to_string();
                }
            }
        }
    }
    fn to_json(&self, reveal: bool) -> Value {
        let mut v = serde_json::to_value(self).expect("serialises");
        if !reveal && !self.password.is_empty() {
            v["password"] = json!(HIDDEN);
        }
        v
    }
}

impl Entity for IsdnInterface {
    const WHAT: &'static str = "ISDN interface";
    const KEY: &'static str = "name";
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.isdn_interfaces
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.isdn_interfaces
    }
    fn renamed(c: &mut Config, old: &str, new: &str) {
        SipInterface::renamed(c, old, new)
    }
}

impl Entity for Link {
    const WHAT: &'static str = "link";
    const KEY: &'static str = "name";
    const DERIVED: &'static [&'static str] = &["register_string"];
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.links
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.links
    }
    fn to_json(&self, reveal: bool) -> Value {
        let mut v = serde_json::to_value(self).expect("serialises");
        v["register_string"] = json!(self.register_string());
        if !reveal && !self.password.is_empty() {
            v["password"] = json!(HIDDEN);
            v["register_string"] = json!(format!("{}@{}:{HIDDEN}", self.username, self.host));
        }
        v
    }
    /// Kerauno's register string, when given, fills user name, host and password.
    fn from_json(mut m: Map<String, Value>) -> Result<Self, ApiError> {
        let rs = match m.remove("register_string") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err(ApiError::bad("register_string", "must be a string")),
        };
        let mut l: Link = ops::parse(Value::Object(m))?;
        if !rs.is_empty() {
            l.set_register_string(&rs)
                .map_err(|e| ApiError::bad("register_string", e))?;
        }
        Ok(l)
    }
}

impl Entity for PermissionGroup {
    const WHAT: &'static str = "permission group";
    const KEY: &'static str = "name";
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.permission_groups
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.permission_groups
    }
    fn renamed(c: &mut Config, old: &str, new: &str) {
        for e in &mut c.extensions {
            if e.permission_group == old {
                e.permission_group = new.to_string();
            }
        }
        for l in &mut c.links {
            if l.permission_group == old {
                l.permission_group = new.to_string();
            }
        }
    }
}

impl Entity for RingGroup {
    const WHAT: &'static str = "ring group";
    const KEY: &'static str = "number";
    fn key(&self) -> &str {
        &self.number
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.ring_groups
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.ring_groups
    }
}

impl Entity for AutoAttendant {
    const WHAT: &'static str = "auto attendant";
    const KEY: &'static str = "number";
    fn key(&self) -> &str {
        &self.number
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.auto_attendants
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.auto_attendants
    }
}

impl Entity for Conference {
    const WHAT: &'static str = "conference";
    const KEY: &'static str = "number";
    fn key(&self) -> &str {
        &self.number
    }
    /// The PIN is for administrators to hand out, not for auditors.
    fn to_json(&self, reveal: bool) -> Value {
        let mut v = serde_json::to_value(self).expect("serialises");
        if !reveal && !self.pin.is_empty() {
            v["pin"] = json!(HIDDEN);
        }
        v
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.conferences
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.conferences
    }
}

impl Entity for Queue {
    const WHAT: &'static str = "queue";
    const KEY: &'static str = "number";
    fn key(&self) -> &str {
        &self.number
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.queues
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.queues
    }
}

impl Entity for IpGroup {
    const WHAT: &'static str = "IP address group";
    const KEY: &'static str = "name";
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.ip_groups
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.ip_groups
    }
    fn renamed(c: &mut Config, old: &str, new: &str) {
        for g in &mut c.ip_groups {
            for i in &mut g.items {
                if let IpItem::Group { group, .. } = i {
                    if group == old {
                        *group = new.to_string();
                    }
                }
            }
        }
    }
}

impl Entity for MusicCollection {
    const WHAT: &'static str = "music collection";
    const KEY: &'static str = "name";
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.music
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.music
    }
}

impl Entity for TimeRange {
    const WHAT: &'static str = "time range";
    const KEY: &'static str = "name";
    fn key(&self) -> &str {
        &self.name
    }
    fn list(c: &Config) -> &Vec<Self> {
        &c.time_ranges
    }
    fn list_mut(c: &mut Config) -> &mut Vec<Self> {
        &mut c.time_ranges
    }
    fn renamed(c: &mut Config, old: &str, new: &str) {
        for a in &mut c.auto_attendants {
            for cond in &mut a.conditions {
                if cond.time_range == old {
                    cond.time_range = new.to_string();
                }
            }
        }
    }
}

fn missing<E: Entity>(key: &str) -> ApiError {
    ApiError::not_found(format!("{} {key} does not exist", E::WHAT))
}

pub(crate) fn list_json<E: Entity>(c: &Config, reveal: bool) -> Value {
    Value::Array(E::list(c).iter().map(|e| e.to_json(reveal)).collect())
}

pub(crate) fn find<'a, E: Entity>(c: &'a Config, key: &str) -> Option<&'a E> {
    E::list(c).iter().find(|e| e.key() == key)
}

/// `m` over the stored entity `key` (its derived fields dropped), as an entity.
pub(crate) fn merged<E: Entity>(
    c: &Config,
    key: &str,
    m: Map<String, Value>,
) -> Result<E, ApiError> {
    let old = find::<E>(c, key).ok_or_else(|| missing::<E>(key))?;
    let Value::Object(mut base) = old.to_json(true) else {
        unreachable!("entities are objects")
    };
    for d in E::DERIVED {
        base.remove(*d);
    }
    base.extend(m);
    E::from_json(base)
}

pub(crate) async fn create<E: Entity>(
    app: &Arc<App>,
    who: &str,
    m: Map<String, Value>,
) -> Result<E, ApiError> {
    let e = E::from_json(m)?;
    let out = e.clone();
    change(
        app,
        who,
        format!("added {} {}", E::WHAT, e.key()),
        move |c| {
            if find::<E>(c, e.key()).is_some() {
                return Err(ChangeError::conflict(
                    E::KEY,
                    format!("{} {} already exists", E::WHAT, e.key()),
                ));
            }
            E::list_mut(c).push(e);
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

pub(crate) async fn update<E: Entity>(
    app: &Arc<App>,
    who: &str,
    key: &str,
    m: Map<String, Value>,
) -> Result<E, ApiError> {
    let e: E = merged(&app.cfg.snapshot().config, key, m)?;
    let out = e.clone();
    let key = key.to_string();
    let what = if e.key() == key {
        format!("changed {} {key}", E::WHAT)
    } else {
        format!("renamed {} {key} to {}", E::WHAT, e.key())
    };
    change(app, who, what, move |c| {
        if e.key() != key && find::<E>(c, e.key()).is_some() {
            return Err(ChangeError::conflict(
                E::KEY,
                format!("{} {} already exists", E::WHAT, e.key()),
            ));
        }
        let slot = E::list_mut(c)
            .iter_mut()
            .find(|x| x.key() == key)
            .ok_or_else(|| ChangeError::NotFound(format!("{} {key} does not exist", E::WHAT)))?;
        let new = e.key().to_string();
        *slot = e;
        if new != key {
            E::renamed(c, &key, &new);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

pub(crate) async fn delete<E: Entity>(
    app: &Arc<App>,
    who: &str,
    key: &str,
) -> Result<(), ApiError> {
    let k = key.to_string();
    change(app, who, format!("removed {} {key}", E::WHAT), move |c| {
        let l = E::list_mut(c);
        let before = l.len();
        l.retain(|x| x.key() != k);
        if l.len() == before {
            return Err(ChangeError::NotFound(format!(
                "{} {k} does not exist",
                E::WHAT
            )));
        }
        Ok(())
    })
    .await
}

/// The conflicts `link` would have if it were saved (replacing the link of its name).
pub(crate) fn preview_conflicts(c: &Config, link: Link) -> Result<Vec<config::Conflict>, ApiError> {
    link.compile().map_err(|e| ApiError::bad("patterns", e))?;
    let mut c = c.clone();
    let name = link.name.clone();
    match c.links.iter_mut().find(|l| l.name == name) {
        Some(slot) => *slot = link,
        None => c.links.push(link),
    }
    Ok(c.link_conflicts()
        .into_iter()
        .filter(|x| x.link == name)
        .collect())
}

/// A link from a preview body: merged over the stored one of that name, if any.
pub(crate) fn candidate_link(c: &Config, m: Map<String, Value>) -> Result<Link, ApiError> {
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if find::<Link>(c, &name).is_some() {
        merged(c, &name, m)
    } else {
        Link::from_json(m)
    }
}

pub(crate) async fn set_outbound(
    app: &Arc<App>,
    who: &str,
    routes: Vec<OutboundRoute>,
) -> Result<(), ApiError> {
    change(app, who, "changed outbound routes".into(), move |c| {
        c.outbound_routes = routes;
        Ok(())
    })
    .await
}

pub(crate) async fn set_emergency(app: &Arc<App>, who: &str, e: Emergency) -> Result<(), ApiError> {
    change(app, who, "changed emergency numbers".into(), move |c| {
        c.emergency = e;
        Ok(())
    })
    .await
}

/// Overwrites the emergency list with a country's preset (Kerio 18.2).
pub(crate) async fn load_preset(
    app: &Arc<App>,
    who: &str,
    country: &str,
) -> Result<Emergency, ApiError> {
    let list = config::emergency_preset(country).ok_or_else(|| {
        ApiError::bad(
            "country",
            format!(
                "no preset for {country:?}; known: {}",
                config::EMERGENCY_COUNTRIES
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    change(
        app,
        who,
        format!("loaded the emergency numbers of {country}"),
        move |c| {
            c.emergency.numbers = list;
            Ok(c.emergency.clone())
        },
    )
    .await
}

fn presets_json() -> Value {
    Value::Array(
        config::EMERGENCY_COUNTRIES
            .iter()
            .map(|(code, name)| {
                json!({"code": code, "name": name, "numbers": config::emergency_preset(code).unwrap_or_default()})
            })
            .collect(),
    )
}

/// Registration and keepalive state of interfaces and links, from the exchange.
pub(crate) async fn peers(app: &Arc<App>) -> Option<Value> {
    app.ask(crate::CoreRequest::Peers).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetBody {
    country: String,
}

/// The five routes of a collection of entities (`rest` after its name): list, add, read,
/// change and remove.
#[allow(clippy::too_many_arguments)]
async fn crud<E: Entity>(
    app: &Arc<App>,
    who: &str,
    reveal: bool,
    cfg: &Config,
    m: &Method,
    rest: &[&str],
    body: impl FnOnce() -> Result<Map<String, Value>, ApiError>,
) -> Result<Response, ApiError> {
    match (m, rest) {
        (&Method::GET, []) => ok(list_json::<E>(cfg, reveal)),
        (&Method::POST, []) => created(create::<E>(app, who, body()?).await?.to_json(true)),
        (&Method::GET, [n]) => ok(find::<E>(cfg, n)
            .ok_or_else(|| missing::<E>(n))?
            .to_json(reveal)),
        (&Method::PUT, [n]) => ok(update::<E>(app, who, n, body()?).await?.to_json(true)),
        (&Method::DELETE, [n]) => {
            delete::<E>(app, who, n).await?;
            no_content()
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// Routes `/api/v1/routing/...` (`segs` after `routing`).
pub(crate) async fn api(
    app: &Arc<App>,
    req: &Req,
    c: &Caller,
    segs: &[&str],
) -> Result<Response, ApiError> {
    if req.changes_state() && !(req.method == Method::POST && segs == ["conflicts"]) {
        crate::api::need_admin_write(c)?;
    } else {
        crate::api::need_admin_read(c)?;
    }
    let who = c.user.username.clone();
    let reveal = c.can_write_admin();
    let snap = app.cfg.snapshot();
    let cfg = &snap.config;
    let body = || ops::object(&req.body);
    let m = &req.method;
    match (m, segs) {
        (_, ["interfaces", rest @ ..]) => {
            crud::<SipInterface>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["isdn", rest @ ..]) => {
            crud::<IsdnInterface>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["links", rest @ ..]) => crud::<Link>(app, &who, reveal, cfg, m, rest, body).await,
        (&Method::GET, ["conflicts"]) => {
            ok(serde_json::to_value(cfg.link_conflicts()).expect("serialises"))
        }
        (&Method::POST, ["conflicts"]) => {
            let l = candidate_link(cfg, body()?)?;
            ok(serde_json::to_value(preview_conflicts(cfg, l)?).expect("serialises"))
        }

        (&Method::GET, ["outbound"]) => {
            ok(serde_json::to_value(&cfg.outbound_routes).expect("serialises"))
        }
        (&Method::PUT, ["outbound"]) => {
            let v: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
            if !v.is_array() {
                return Err(ApiError::bad("body", "must be a JSON array of routes"));
            }
            let routes: Vec<OutboundRoute> = ops::parse(v)?;
            set_outbound(app, &who, routes.clone()).await?;
            ok(serde_json::to_value(routes).expect("serialises"))
        }

        (_, ["permission_groups", rest @ ..]) => {
            crud::<PermissionGroup>(app, &who, reveal, cfg, m, rest, body).await
        }

        (&Method::GET, ["emergency"]) => {
            ok(serde_json::to_value(&cfg.emergency).expect("serialises"))
        }
        (&Method::PUT, ["emergency"]) => {
            let Value::Object(mut base) = serde_json::to_value(&cfg.emergency).expect("serialises")
            else {
                unreachable!("an object")
            };
            base.extend(body()?);
            let e: Emergency = ops::parse(Value::Object(base))?;
            set_emergency(app, &who, e.clone()).await?;
            ok(serde_json::to_value(e).expect("serialises"))
        }
        (&Method::GET, ["emergency", "presets"]) => ok(presets_json()),
        (&Method::POST, ["emergency", "preset"]) => {
            let b: PresetBody = ops::parse(Value::Object(body()?))?;
            ok(
                serde_json::to_value(load_preset(app, &who, &b.country).await?)
                    .expect("serialises"),
            )
        }

        (_, ["ring_groups", rest @ ..]) => {
            crud::<RingGroup>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["auto_attendants", rest @ ..]) => {
            crud::<AutoAttendant>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["conferences", rest @ ..]) => {
            crud::<Conference>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["queues", rest @ ..]) => crud::<Queue>(app, &who, reveal, cfg, m, rest, body).await,
        (_, ["ip_groups", rest @ ..]) => {
            crud::<IpGroup>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["music_collections", rest @ ..]) => {
            crud::<MusicCollection>(app, &who, reveal, cfg, m, rest, body).await
        }
        (_, ["time_ranges", rest @ ..]) => {
            crud::<TimeRange>(app, &who, reveal, cfg, m, rest, body).await
        }
        _ => Err(ApiError::not_found("no such route")),
    }
}

/// Each ISDN interface's span state by name, from pbxd.
pub(crate) async fn spans(app: &Arc<App>) -> Option<Value> {
    app.ask(crate::CoreRequest::Spans).await
}

/// `GET /api/v1/status/spans`.
pub(crate) async fn spans_api(app: &Arc<App>, c: &Caller) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    ok(spans(app).await.ok_or_else(busy)?)
}

/// `GET /api/v1/status/peers`.
pub(crate) async fn peers_api(app: &Arc<App>, c: &Caller) -> Result<Response, ApiError> {
    crate::api::need_admin_read(c)?;
    ok(peers(app).await.ok_or_else(busy)?)
}
