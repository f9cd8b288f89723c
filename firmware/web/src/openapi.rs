//! The OpenAPI 3.0 document of `/api/v1`, served at `/api/v1/openapi.json`.
//!
//! The document ships gzip-compressed as `openapi.json.gz` beside this file (17 KB), not
//! as the code that builds it (the `json!` builder below compiled to 0.68 MB of pbxd,
//! issue 22.5). The builder stays the source, checked by a test: after changing it,
//! `UPDATE_OPENAPI=1 cargo test -p web --lib openapi` writes the file anew.

use serde_json::Value;
use std::io::Read;

/// The shipped document, compressed.
const DOCUMENT: &[u8] = include_bytes!("openapi.json.gz");

/// The document.
pub fn document() -> Value {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(DOCUMENT)
        .read_to_end(&mut text)
        .expect("openapi.json.gz is gzip (checked by a test)");
    serde_json::from_slice(&text).expect("openapi.json.gz holds JSON (checked by a test)")
}

#[cfg(test)]
mod build {
    use serde_json::{json, Value};

    fn r(name: &str) -> Value {
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn body(schema: Value) -> Value {
        json!({"required": true, "content": {"application/json": {"schema": schema}}})
    }

    fn ok(desc: &str, schema: Value) -> Value {
        json!({"description": desc, "content": {"application/json": {"schema": schema}}})
    }

    fn err(desc: &str) -> Value {
        ok(desc, r("Error"))
    }

    /// Reads need the session cookie; writes also the CSRF header.
    fn read_op(summary: &str, out: Value) -> Value {
        json!({
            "summary": summary,
            "security": [{"session": []}],
            "responses": {"200": ok("OK", out), "401": err("not logged in"), "403": err("role may not read this"), "404": err("not found")}
        })
    }

    fn write_op(summary: &str, input: Option<Value>, status: &str, out: Option<Value>) -> Value {
        let mut responses = json!({
            "400": err("a field is wrong; `field` names it"),
            "401": err("not logged in"),
            "403": err("missing CSRF token or role may not change this"),
            "404": err("not found"),
            "409": err("conflicts with the configuration")
        });
        responses[status] = match out {
            Some(s) => ok("done", s),
            None => json!({"description": "done"}),
        };
        let mut op = json!({
            "summary": summary,
            "security": [{"session": [], "csrf": []}],
            "responses": responses
        });
        if let Some(i) = input {
            op["requestBody"] = body(i);
        }
        op
    }

    fn number_param() -> Value {
        json!({"name": "number", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"}})
    }

    fn username_param() -> Value {
        json!({"name": "username", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$"}})
    }

    /// The document.
    pub(super) fn document() -> Value {
        let mut d = base();
        for more in [provisioning_paths(), routing_paths(), certificate_paths()] {
            if let (Some(paths), Value::Object(more)) = (d["paths"].as_object_mut(), more) {
                paths.extend(more);
            }
        }
        d
    }

    /// `/certificates/...` (Kerio 19): the store the web admin and SIP over TLS share.
    fn certificate_paths() -> Value {
        let s = |t: &str| json!({"type": t});
        let info = json!({"type": "object", "properties": {
            "id": s("string"), "kind": {"type": "string", "enum": ["certificate", "request"]},
            "subject": s("string"), "issuer": s("string"), "names": {"type": "array", "items": s("string")},
            "not_before": s("integer"), "not_after": s("integer"), "days_left": s("integer"),
            "self_signed": s("boolean"), "chain": s("integer"), "active": s("boolean")}});
        let list = json!({"type": "object", "properties": {
            "certificates": {"type": "array", "items": info.clone()}, "trusted": {"type": "array", "items": info.clone()}}});
        let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"}});
        let pem = json!({"200": {"description": "PEM", "content": {"application/x-pem-file": {"schema": {"type": "string"}}}},
            "401": err("not logged in"), "403": err("not an administrator"), "404": err("no such certificate, or it has none of these")});
        json!({
            "/certificates": {
                "get": read_op("Certificates and requests in the store (the active one marked), and the certificates trusted besides the system's", list.clone()),
                "post": write_op("Make a self-signed certificate or a certificate request (host name and two-letter country required)",
                    Some(json!({"type": "object", "required": ["kind", "hostname", "country"], "properties": {
                        "kind": {"type": "string", "enum": ["self_signed", "request"]}, "hostname": s("string"),
                        "names": {"type": "array", "items": s("string")}, "organization": s("string"), "city": s("string"),
                        "country": s("string"), "days": {"type": "integer", "minimum": 0, "maximum": 3650}}})),
                    "201", Some(info.clone()))
            },
            "/certificates/import": {
                "post": write_op("Import a signed certificate with its chain, with its key or answering a request made here",
                    Some(json!({"type": "object", "required": ["certificate"], "properties": {"certificate": s("string"), "key": s("string")}})),
                    "201", Some(info))
            },
            "/certificates/trusted": {
                "get": read_op("Certificates trusted besides the system's (for providers and links over TLS)", json!({"type": "array", "items": list["certificates"]["items"].clone()})),
                "put": {"summary": "Replace the trusted certificates (PEM; empty: the system's only)", "security": [{"session": [], "csrf": []}],
                    "requestBody": {"required": true, "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "responses": {"200": ok("saved", json!({"type": "object", "properties": {"trusted": s("integer")}})),
                        "400": err("not PEM certificates"), "401": err("not logged in"), "403": err("missing CSRF token or not an administrator")}}
            },
            "/certificates/{id}": {
                "parameters": [id.clone()],
                "delete": write_op("Remove a certificate or request that is not active", None, "204", None)
            },
            "/certificates/{id}/activate": {
                "parameters": [id.clone()],
                "post": write_op("Make a certificate active: the web admin and SIP over TLS present it from the next connection", None, "200", Some(list))
            },
            "/certificates/{id}/certificate": {
                "parameters": [id.clone()],
                "get": {"summary": "A certificate with its chain (PEM)", "security": [{"session": []}], "responses": pem.clone()}
            },
            "/certificates/{id}/request": {
                "parameters": [id],
                "get": {"summary": "A certificate request (PKCS #10, PEM) for a certification authority", "security": [{"session": []}], "responses": pem}
            }
        })
    }

    /// `/routing/...` (trunks and number routing, Kerio chapters 6, 7, 18, 23), `/status/peers`
    /// and `/status/spans`.
    fn routing_paths() -> Value {
        let s = |t: &str| json!({"type": t});
        let str_array = json!({"type": "array", "items": {"type": "string"}});
        let uint = |max: u64| json!({"type": "integer", "minimum": 0, "maximum": max});
        let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"});
        let transport = json!({"type": "string", "enum": ["udp", "tcp", "tls"]});
        let rewrite = json!({"type": "object", "additionalProperties": false, "properties": {
            "strip": uint(4294967295), "prefix": s("string")}});
        let interface = json!({"type": "object", "additionalProperties": false, "properties": {
            "name": name.clone(), "enabled": s("boolean"), "description": s("string"),
            "numbers": str_array.clone(), "operator": s("string"),
            "did": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["number", "target"], "properties": {"number": s("string"), "target": s("string")}}},
            "called_rewrite": rewrite.clone(), "calling_rewrite": rewrite.clone(),
            "host": s("string"), "port": uint(65535), "transport": transport.clone(),
            "username": s("string"), "password": s("string"), "auth_user": s("string"),
            "register": s("boolean"), "register_expires": uint(4294967295), "external_ip": s("string"),
            "keepalive": uint(4294967295), "codecs": str_array.clone(), "max_calls": uint(4294967295),
            "inbound_sources": str_array.clone(), "srtp": s("boolean")}});
        let mut interface_new = interface.clone();
        interface_new["required"] = json!(["name", "host"]);
        let link = json!({"type": "object", "additionalProperties": false, "properties": {
            "name": name.clone(), "enabled": s("boolean"), "description": s("string"),
            "prefix": s("string"), "range_min": s("string"), "range_max": s("string"),
            "patterns": str_array.clone(), "priority": uint(4294967295),
            "mode": {"type": "string", "enum": ["direct", "peer_registers", "we_register"]},
            "host": s("string"), "port": uint(65535), "transport": transport,
            "username": s("string"), "password": s("string"),
            "register_string": {"type": "string", "description": "Kerauno's {username}@{host or IP}:{password}; fills the three fields"},
            "register_expires": uint(4294967295), "nat": s("boolean"), "codecs": str_array.clone(),
            "from_domain": s("string"), "fallback_ddi": s("string"), "country_code": s("string"),
            "area_code": s("string"), "permission_group": s("string"), "remote_wins": str_array.clone(),
            "keepalive": uint(4294967295), "srtp": s("boolean")}});
        let isdn = json!({"type": "object", "additionalProperties": false, "properties": {
            "name": name.clone(), "enabled": s("boolean"), "description": s("string"),
            "role": {"type": "string", "enum": ["provider", "pbx"]},
            "span": {"type": "object", "description": "{\"driver\": \"dahdi\", \"span\": 1} or {\"driver\": \"virtual\", \"path\": \"/abs/socket\"}",
                "required": ["driver"], "properties": {
                    "driver": {"type": "string", "enum": ["dahdi", "virtual"]},
                    "span": uint(128), "path": s("string")}},
            "line": {"type": "string", "enum": ["e1", "t1", "bri"]},
            "switch_type": {"type": "string", "enum": ["euroisdn", "ni2"]},
            "side": {"type": "string", "enum": ["user", "network"]},
            "numbers": str_array.clone(), "operator": s("string"),
            "did": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["number", "target"], "properties": {"number": s("string"), "target": s("string")}}},
            "called_digits": uint(20),
            "called_rewrite": rewrite.clone(), "calling_rewrite": rewrite.clone(),
            "overlap": s("boolean")}});
        let mut isdn_new = isdn.clone();
        isdn_new["required"] = json!(["name", "span"]);
        let span_state = json!({"type": "object", "properties": {
            "link_up": s("boolean"), "detail": s("string"), "calls": s("integer"),
            "channels_busy": {"type": "array", "items": s("integer")}, "alarm": s("string")}});
        let mut link_new = link.clone();
        link_new["required"] = json!(["name"]);
        let route = json!({"type": "object", "additionalProperties": false, "required": ["interfaces"], "properties": {
            "prefix": s("string"), "description": s("string"), "interfaces": str_array.clone(),
            "called_rewrite": rewrite.clone(), "calling_rewrite": rewrite}});
        let group = json!({"type": "object", "additionalProperties": false, "properties": {
            "name": s("string"), "description": s("string"), "default_allow": s("boolean"),
            "rules": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["prefix", "allow"], "properties": {"prefix": s("string"), "allow": s("boolean")}}}}});
        let mut group_new = group.clone();
        group_new["required"] = json!(["name"]);
        let emergency = json!({"type": "object", "additionalProperties": false, "properties": {
            "numbers": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["number"], "properties": {"number": s("string"), "description": s("string")}}},
            "direct_dialing": s("boolean"), "routes": str_array.clone()}});
        let ring = json!({"type": "object", "additionalProperties": false, "properties": {
            "number": {"type": "string", "pattern": "^[0-9]{1,20}$"}, "name": s("string"), "members": str_array,
            "strategy": {"type": "string", "enum": ["all", "in_order", "round_robin"]},
            "member_seconds": {"type": "integer", "minimum": 5, "maximum": 300},
            "timeout": {"type": "integer", "minimum": 0, "maximum": 3600, "description": "0 = the box's ring timeout"},
            "fallback": {"type": "string", "description": "a number, hangup, or empty"}}});
        let action = json!({"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": ["dial", "voicemail", "goto", "repeat", "hang_up"]},
            "number": {"type": "string", "description": "dial: a local number, or an outside one the script's permission group allows"},
            "extension": {"type": "string", "description": "voicemail: the extension whose box"},
            "node": {"type": "string", "description": "goto: a menu or condition of the script"}}});
        let mut key = action.clone();
        key["required"] = json!(["key", "action"]);
        key["properties"]["key"] = json!({"type": "string", "description": "0-9, * or #"});
        key["properties"]["announcement"] =
            json!({"type": "string", "description": "a sound played before the action"});
        let aa = json!({"type": "object", "additionalProperties": false, "properties": {
            "number": {"type": "string", "pattern": "^[0-9]{1,20}$"},
            "description": s("string"),
            "start": {"type": "string", "description": "the menu or condition callers start at"},
            "permission_group": {"type": "string", "description": "checks outside numbers a dial action reaches; empty: local numbers only"},
            "menus": {"type": "array", "maxItems": 64, "items": {"type": "object", "additionalProperties": false,
                "required": ["name"], "properties": {
                "name": s("string"),
                "announcement": {"type": "string", "description": "an uploaded sound of that name, else the system prompt"},
                "playbacks": {"type": "integer", "minimum": 1, "maximum": 10},
                "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 120},
                "default_action": action,
                "dial_by_extension": s("boolean"),
                "keys": {"type": "array", "items": key}}}},
            "conditions": {"type": "array", "maxItems": 64, "items": {"type": "object", "additionalProperties": false,
                "required": ["name", "time_range", "then", "otherwise"], "properties": {
                "name": s("string"), "time_range": s("string"), "then": s("string"), "otherwise": s("string")}}}}});
        let mut aa_new = aa.clone();
        aa_new["required"] = json!(["number", "start"]);
        let day =
            json!({"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]});
        let ip_group = json!({"type": "object", "additionalProperties": false, "required": ["name", "items"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
            "description": s("string"),
            "items": {"type": "array", "minItems": 1, "maxItems": 256, "items": {"type": "object", "required": ["type"], "properties": {
                "type": {"type": "string", "enum": ["host", "network", "range", "group"]},
                "address": {"type": "string", "description": "host: an IPv4 or IPv6 address"},
                "network": {"type": "string", "description": "network: address/prefix, host bits zero"},
                "from": s("string"), "to": {"type": "string", "description": "range: the first and last address, one family"},
                "group": {"type": "string", "description": "group: another group's name (no circles)"},
                "description": s("string")}}}}});
        let music = json!({"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$", "description": "not system (the shipped collection)"},
            "description": s("string"),
            "files": {"type": "array", "maxItems": 50, "items": {"type": "string"}, "description": "uploaded music files by name, in playing order"},
            "line_in": {"type": "string", "description": "an ALSA capture device (hw:1,0, plughw:1,0) played live instead of files"},
            "default": {"type": "boolean", "description": "held callers hear it (one collection at most)"}}});
        let conference = json!({"type": "object", "additionalProperties": false, "required": ["number"], "properties": {
            "number": {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "what callers dial (a DID may map to it)"},
            "description": s("string"),
            "pin": {"type": "string", "pattern": "^[0-9]{0,12}$", "description": "keyed by every participant to get in; empty: none"},
            "max_participants": {"type": "integer", "minimum": 0, "maximum": 64, "description": "0: the box's limit (64); else 2 to 64"},
            "tones": {"type": "boolean", "description": "a rising tone when someone joins, a falling one when someone leaves (default true)"}}});
        let secs = |d: &str| json!({"type": "integer", "minimum": 0, "description": d});
        let queue = json!({"type": "object", "additionalProperties": false, "required": ["number"], "properties": {
            "number": {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "what callers dial (a DID may map to it)"},
            "description": s("string"),
            "strategy": {"type": "string", "enum": ["ring_all", "longest_idle", "fewest_calls", "random", "round_robin"], "description": "which free agent rings: all of them, the least recently called, the one with fewest calls, one at random, or in turn (round robin with memory); default ring_all"},
            "max_callers": {"type": "integer", "minimum": 0, "maximum": 999, "description": "0: unlimited (999)"},
            "max_wait_seconds": secs("0: no limit; else 10 to 86400, then the fallback"),
            "fallback": {"type": "string", "description": "a number (another queue, an extension) or voicemail:<extension> for callers refused, put out or waiting too long; empty: goodbye"},
            "music": {"type": "string", "description": "music on hold collection; empty: the default"},
            "agents": {"type": "array", "items": s("string"), "maxItems": 64, "description": "extensions always in the queue"},
            "dynamic_agents": {"type": "boolean", "description": "extensions log in and out with the codes"},
            "login_code": {"type": "string", "pattern": "^[0-9]{0,20}$"},
            "logout_code": {"type": "string", "pattern": "^[0-9]{0,20}$"},
            "ring_seconds": {"type": "integer", "minimum": 5, "maximum": 300, "description": "an agent rings this long before the next is tried (default 20)"},
            "wrapup_seconds": {"type": "integer", "minimum": 0, "maximum": 3600, "description": "no queue call for an agent this long after one"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 10, "description": "queues sharing agents: higher first"},
            "position_seconds": secs("0: never; else 15 to 3600: the caller's place is said on entering and this often"),
            "hold_time": {"type": "boolean", "description": "the place comes with the estimated hold time"},
            "periodic_seconds": secs("0: never; else 15 to 3600"),
            "periodic_sound": {"type": "string", "description": "an uploaded sound or a system prompt; empty: queue-periodic-announce"},
            "agent_sound": {"type": "string", "description": "what the agent hears before the caller is put through; empty: nothing"},
            "refuse_when_empty": {"type": "boolean", "description": "no agent logged in: new callers go to the fallback"},
            "leave_when_empty": {"type": "boolean", "description": "the last agent logs out: waiting callers go to the fallback"},
            "record": {"type": "boolean", "description": "calls agents answer are recorded (stereo: the caller left, the agent right; the first hour), kept up to recordings_max_mb"}}});
        let range = json!({"type": "object", "additionalProperties": false, "properties": {
            "name": s("string"), "description": s("string"),
            "items": {"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "object", "required": ["type", "from", "to"], "properties": {
                "type": {"type": "string", "enum": ["daily", "weekly", "absolute"]},
                "from": {"type": "string", "description": "HH:MM (absolute: YYYY-MM-DD HH:MM)"},
                "to": {"type": "string", "description": "HH:MM (absolute: YYYY-MM-DD HH:MM); before from: past midnight"},
                "days": {"type": "array", "items": day.clone(), "description": "daily: the days (none: every day)"},
                "from_day": day.clone(), "to_day": day}}}}});
        let mut range_new = range.clone();
        range_new["required"] = json!(["name", "items"]);
        let mut ring_new = ring.clone();
        ring_new["required"] = json!(["number", "members"]);
        let conflict = json!({"type": "object", "properties": {
            "link": s("string"), "number": s("string"), "kind": s("string"),
            "winner": {"type": "string", "enum": ["local", "remote"]}}});
        let peer = json!({"type": "object", "properties": {
            "name": s("string"), "kind": {"type": "string", "enum": ["interface", "link"]}, "enabled": s("boolean"),
            "address": {"type": "string", "nullable": true},
            "registration": {"type": "string", "enum": ["off", "registering", "registered", "failed"]},
            "detail": s("string"), "expires_in": s("integer"),
            "keepalive": {"type": "string", "enum": ["off", "unknown", "up", "down"]}, "calls": s("integer")}});
        let arr = |x: &Value| json!({"type": "array", "items": x});
        let param = |n: &str| json!([{"name": n, "in": "path", "required": true, "schema": {"type": "string"}}]);
        json!({
            "/routing/interfaces": {
                "get": read_op("SIP interfaces to providers (Kerio 6.1)", arr(&interface)),
                "post": write_op("Add a SIP interface", Some(interface_new), "201", Some(interface.clone()))
            },
            "/routing/interfaces/{name}": {
                "parameters": param("name"),
                "get": read_op("One SIP interface", interface.clone()),
                "put": write_op("Change a SIP interface (fields left out keep their value; a new name renames it in the outbound routes too)", Some(interface.clone()), "200", Some(interface)),
                "delete": write_op("Remove a SIP interface no outbound route uses", None, "204", None)
            },
            "/routing/isdn": {
                "get": read_op("ISDN interfaces (Kerio 7): PRI/BRI spans to a provider or another PBX", arr(&isdn)),
                "post": write_op("Add an ISDN interface", Some(isdn_new), "201", Some(isdn.clone()))
            },
            "/routing/isdn/{name}": {
                "parameters": param("name"),
                "get": read_op("One ISDN interface", isdn.clone()),
                "put": write_op("Change an ISDN interface (fields left out keep their value; a new name renames it in the outbound routes too)", Some(isdn.clone()), "200", Some(isdn)),
                "delete": write_op("Remove an ISDN interface no outbound route uses", None, "204", None)
            },
            "/routing/links": {
                "get": read_op("Links to other PBXs (Kerio 6.2, Kerauno's System Connector, Ivoz's Friends)", arr(&link)),
                "post": write_op("Add a link", Some(link_new), "201", Some(link.clone()))
            },
            "/routing/links/{name}": {
                "parameters": param("name"),
                "get": read_op("One link", link.clone()),
                "put": write_op("Change a link (fields left out keep their value)", Some(link.clone()), "200", Some(link.clone())),
                "delete": write_op("Remove a link", None, "204", None)
            },
            "/routing/conflicts": {
                "get": read_op("Local numbers inside links' numbers, with the winner", arr(&conflict)),
                "post": {
                    "summary": "Conflicts a link would have if saved (nothing is stored); a known name is merged over the stored link",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": body(link),
                    "responses": {"200": ok("the conflicts", arr(&conflict)), "400": err("a field is wrong"),
                        "401": err("not logged in"), "403": err("missing CSRF token or role")}
                }
            },
            "/routing/outbound": {
                "get": read_op("Outbound routes (Kerio 6.6)", arr(&route)),
                "put": write_op("Replace the outbound routes", Some(arr(&route)), "200", Some(arr(&route)))
            },
            "/routing/permission_groups": {
                "get": read_op("Call permission groups (Kerio 23.2)", arr(&group)),
                "post": write_op("Add a permission group", Some(group_new), "201", Some(group.clone()))
            },
            "/routing/permission_groups/{name}": {
                "parameters": param("name"),
                "get": read_op("One permission group", group.clone()),
                "put": write_op("Change a permission group (a new name follows to extensions and links)", Some(group.clone()), "200", Some(group)),
                "delete": write_op("Remove a permission group nobody uses", None, "204", None)
            },
            "/routing/emergency": {
                "get": read_op("Emergency numbers (Kerio 18)", emergency.clone()),
                "put": write_op("Change the emergency numbers (fields left out keep their value)", Some(emergency.clone()), "200", Some(emergency.clone()))
            },
            "/routing/emergency/presets": {"get": read_op("Countries with preset emergency numbers", arr(&s("object")))},
            "/routing/emergency/preset": {"post": write_op("Replace the emergency numbers with a country's (code or name)",
                Some(json!({"type": "object", "additionalProperties": false, "required": ["country"], "properties": {"country": s("string")}})),
                "200", Some(emergency))},
            "/routing/ring_groups": {
                "get": read_op("Ring groups", arr(&ring)),
                "post": write_op("Add a ring group", Some(ring_new), "201", Some(ring.clone()))
            },
            "/routing/ring_groups/{number}": {
                "parameters": [number_param()],
                "get": read_op("One ring group", ring.clone()),
                "put": write_op("Change a ring group (fields left out keep their value)", Some(ring.clone()), "200", Some(ring)),
                "delete": write_op("Remove a ring group", None, "204", None)
            },
            "/routing/auto_attendants": {
                "get": read_op("Auto attendant scripts (Kerio 16)", arr(&aa)),
                "post": write_op("Add a script", Some(aa_new), "201", Some(aa.clone()))
            },
            "/routing/auto_attendants/{number}": {
                "parameters": [number_param()],
                "get": read_op("One script", aa.clone()),
                "put": write_op("Change a script (fields left out keep their value)", Some(aa.clone()), "200", Some(aa)),
                "delete": write_op("Remove a script", None, "204", None)
            },
            "/routing/time_ranges": {
                "get": read_op("Time ranges for time conditions (Kerio 25), in the box's time zone", arr(&range)),
                "post": write_op("Add a time range", Some(range_new), "201", Some(range.clone()))
            },
            "/routing/time_ranges/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": read_op("One time range", range.clone()),
                "put": write_op("Change a time range (fields left out keep their value; a new name follows into the conditions)", Some(range.clone()), "200", Some(range)),
                "delete": write_op("Remove a time range no condition uses", None, "204", None)
            },
            "/routing/ip_groups": {
                "get": read_op("IP address groups (Kerio 26)", arr(&ip_group)),
                "post": write_op("Add a group", Some(ip_group.clone()), "201", Some(ip_group.clone()))
            },
            "/routing/ip_groups/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": read_op("One group", ip_group.clone()),
                "put": write_op("Change a group (fields left out keep their value; a new name follows into the groups naming it)", Some(ip_group.clone()), "200", Some(ip_group)),
                "delete": write_op("Remove a group no other group names", None, "204", None)
            },
            "/routing/conferences": {
                "get": read_op("Conference rooms (Kerio 13)", arr(&conference)),
                "post": write_op("Add a room", Some(conference.clone()), "201", Some(conference.clone()))
            },
            "/routing/conferences/{number}": {
                "parameters": [{"name": "number", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": read_op("One room", conference.clone()),
                "put": write_op("Change a room (fields left out keep their value)", Some(conference.clone()), "200", Some(conference)),
                "delete": write_op("Remove a room (its participants stay connected until they hang up)", None, "204", None)
            },
            "/routing/queues": {
                "get": read_op("Call queues (Kerio 14)", arr(&queue)),
                "post": write_op("Add a queue", Some(queue.clone()), "201", Some(queue.clone()))
            },
            "/routing/queues/{number}": {
                "parameters": [{"name": "number", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": read_op("One queue", queue.clone()),
                "put": write_op("Change a queue (fields left out keep their value)", Some(queue.clone()), "200", Some(queue)),
                "delete": write_op("Remove a queue (its waiting callers go to its fallback)", None, "204", None)
            },
            "/routing/music_collections": {
                "get": read_op("Music on hold collections (Kerio 24)", arr(&music)),
                "post": write_op("Add a collection", Some(music.clone()), "201", Some(music.clone()))
            },
            "/routing/music_collections/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": read_op("One collection", music.clone()),
                "put": write_op("Change a collection (fields left out keep their value)", Some(music.clone()), "200", Some(music)),
                "delete": write_op("Remove a collection", None, "204", None)
            },
            "/music": {"get": read_op("Uploaded music on hold files, by name, with the collections that play them",
                arr(&json!({"type": "object", "properties": {"name": s("string"), "seconds": s("integer"), "collections": {"type": "array", "items": s("string")}}})))},
            "/music/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}],
                "get": {"summary": "One music file as WAV (8 kHz)", "security": [{"session": []}],
                    "responses": {"200": {"description": "OK", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                        "400": err("not a music file's name"), "401": err("not logged in"), "403": err("not an administrator"), "404": err("no such file")}},
                "put": {"summary": "Upload a music file: WAV (PCM 8/16-bit, A-law or µ-law) or MP3, any rate, a second to 10 minutes, at most 48 MB; stored at 8 kHz (collections playing it load it again)",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": {"204": {"description": "stored"}, "400": err("too short or too long, or not a music file's name"), "401": err("not logged in"), "403": err("not an administrator"), "413": err("too large"), "422": err("neither a WAV nor an MP3 the box can play"), "507": err("the data partition cannot store it")}},
                "delete": {"summary": "Remove a music file no collection plays", "security": [{"session": [], "csrf": []}],
                    "responses": {"204": {"description": "removed"}, "401": err("not logged in"), "403": err("not an administrator"), "404": err("no such file"), "409": err("a collection plays it")}}
            },
            "/sounds": {"get": read_op("Uploaded announcements auto attendants play, by name",
                arr(&json!({"type": "object", "properties": {"name": s("string"), "seconds": s("integer")}})))},
            "/sounds/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}],
                "get": {"summary": "One sound as WAV", "security": [{"session": []}],
                    "responses": {"200": {"description": "OK", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                        "400": err("not a sound's name"), "401": err("not logged in"), "403": err("not an administrator"), "404": err("no such sound")}},
                "put": {"summary": "Upload a sound: a WAV (PCM 8/16-bit, A-law or µ-law, any rate), half a second to two minutes, stored at 8 kHz",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": {"204": {"description": "stored"}, "400": err("too short or too long, or not a sound's name"), "401": err("not logged in"), "403": err("not an administrator"), "413": err("too large"), "422": err("not a WAV the box can play"), "507": err("the data partition cannot store it")}},
                "delete": write_op("Remove a sound (scripts naming it play the system prompt of that name, if any)", None, "204", None)
            },
            "/status/peers": {"get": read_op("Registration and keepalive state of SIP interfaces and links", arr(&peer))},
            "/status/spans": {"get": read_op("Each ISDN interface's span by name: data link, alarms, calls, channels in use, or why it is down",
                json!({"type": "object", "additionalProperties": span_state}))}
        })
    }

    /// `/provisioning/...` (phone provisioning, Kerio chapter 10).
    fn provisioning_paths() -> Value {
        let s = |t: &str| json!({"type": t});
        let str_array = json!({"type": "array", "items": {"type": "string"}});
        let settings = json!({
        "type": "object", "additionalProperties": false, "properties": {
            "enabled": s("boolean"),
            "first_extension": {"type": "string", "pattern": "^[0-9]{1,20}$"},
            "auto_create": s("boolean"),
            "phone_password": s("string"),
            "allowed_sources": str_array.clone(),
            "ntp_server": s("string"),
            "time_zone": s("string"),
            "utc_offset": {"type": "string", "pattern": "^[+-][0-9]{2}:[0-9]{2}$"}
        }});
        let blf_keys = json!({"type": "array", "maxItems": 40, "description": "busy-lamp keys after the line keys: an extension or parking slot each, with an optional label (at most 32 characters, no < > & \" | ;)",
            "items": {"type": "object", "additionalProperties": false, "required": ["number"], "properties": {"number": s("string"), "label": s("string")}}});
        let phone_in = json!({
            "type": "object", "additionalProperties": false, "required": ["mac", "model"],
            "properties": {"mac": s("string"), "model": s("string"), "extensions": str_array.clone(), "blf_keys": blf_keys.clone()}});
        let phone_edit = json!({
            "type": "object", "additionalProperties": false,
            "properties": {"model": s("string"), "extensions": str_array.clone(), "blf_keys": blf_keys}});
        let import = json!({
            "type": "object", "additionalProperties": false, "required": ["csv"],
            "properties": {"csv": s("string"), "lines": {"type": "array", "items": {"type": "integer", "minimum": 1}}, "dry_run": s("boolean")}});
        let update_state = json!({
            "type": "object",
            "required": ["state"],
            "properties": {
                "state": {"type": "string", "enum": ["idle", "installing", "rebooting", "failed"]},
                "percent": {"type": "integer", "minimum": 0, "maximum": 100},
                "step": {"type": "string"},
                "message": {"type": "string"}
            }
        });
        let restart = json!({
            "type": "object", "additionalProperties": false,
            "properties": {"phones": str_array.clone(), "at": {"type": "integer", "minimum": 0}, "cancel": s("boolean")}});
        let list = json!({"type": "array", "items": s("object")});
        let mac =
            json!({"name": "mac", "in": "path", "required": true, "schema": {"type": "string"}});
        let model =
            json!({"name": "model", "in": "path", "required": true, "schema": {"type": "string"}});
        json!({
            "/provisioning": {
                "get": read_op("Provisioning settings (Kerio 10.1)", s("object")),
                "put": write_op("Change provisioning settings; absent fields keep their value", Some(settings), "200", Some(s("object")))
            },
            "/provisioning/models": {"get": read_op("Phone models and how many extensions each carries", list.clone())},
            "/provisioning/phones": {
                "get": read_op("The Provisioned Phones table", list.clone()),
                "post": write_op("Add a phone by MAC and model (10.2)", Some(phone_in), "201", Some(s("object")))
            },
            "/provisioning/phones/{mac}": {
                "parameters": [mac],
                "get": read_op("One phone", s("object")),
                "put": write_op("Change a phone's model or extensions", Some(phone_edit), "200", Some(s("object"))),
                "delete": write_op("Remove a phone without extensions (10.4)", None, "204", None)
            },
            "/provisioning/import": {"post": write_op("Import phones from Kerio's CSV (10.3); dry_run previews", Some(import), "201", Some(list.clone()))},
            "/provisioning/restart": {"post": write_op("Restart phones now or at a Unix time (10.5)", Some(restart), "200", Some(s("object")))},
            "/provisioning/firmware": {"get": read_op("Uploaded phone firmware", list)},
            "/provisioning/firmware/{model}": {
                "parameters": [model],
                "delete": write_op("Remove a model's firmware", None, "204", None)
            },
            "/system/update": {
                "get": read_op("Where the firmware update stands (docs/updates.md)", update_state.clone()),
                "post": {
                    "summary": "Install a signed firmware bundle (.raucb, at most 512 MiB) into the other slot and restart into it",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": {
                        "202": ok("accepted: installing", update_state),
                        "400": err("no body"),
                        "401": err("not logged in"),
                        "403": err("missing CSRF token or not an administrator"),
                        "409": err("an update is already being installed"),
                        "413": err("larger than 512 MiB"),
                        "422": err("not a firmware bundle"),
                        "507": err("no room on the data partition")
                    }
                }
            },
            "/system/time": {
                "get": read_op("Time zone and NTP servers (Kerio 22)", r("TimeSettings")),
                "put": write_op("Set the time zone and NTP servers (empty: NTP off)", Some(r("TimeSettings")), "200", Some(r("TimeSettings")))
            },
            "/system/backups": {
                "get": read_op("Backups on the box (newest first), the parts a backup can hold, and whether a recovery waits for the restart (Kerio 20)", s("object")),
                "post": write_op(
                    "Make a backup now of the parts named (none: config, voicemail and sounds); the box keeps the newest 5",
                    Some(json!({"type": "object", "additionalProperties": false, "properties": {
                        "parts": {"type": "array", "items": {"type": "string", "enum": ["config", "voicemail", "sounds", "recordings", "firmware"]}}}})),
                    "201", Some(s("object")))
            },
            "/system/backups/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^backup-[0-9-]+\\.tar\\.gz$"}}],
                "get": {
                    "summary": "Download a backup (application/gzip)",
                    "security": [{"session": []}],
                    "responses": {"200": {"description": "the archive", "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}}, "401": err("not logged in"), "403": err("not an administrator"), "404": err("no such backup")}
                },
                "delete": write_op("Remove a backup from the box", None, "204", None)
            },
            "/system/backups/{name}/send": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^backup-[0-9-]+\\.tar\\.gz$"}}],
                "post": ({
                    let mut op = write_op(
                        "Send a backup to the remote target (backup-schedule's remote: an HTTPS PUT into a WebDAV folder) now; 409 when no target is on",
                        None,
                        "200",
                        Some(json!({"type": "object", "properties": {"name": s("string"), "sent_to": s("string")}})),
                    );
                    op["responses"]["202"] = json!({"description": "still sending after a minute: the send goes on, and `remote` in GET /system/backups says how it went"});
                    op["responses"]["502"] = err("the server could not be reached, was not trusted, or refused the backup (the reason says which)");
                    op
                })
            },
            "/directory": {
                "get": read_op("The directory settings (the bind password as ****) and the last synchronisation", json!({"type": "object", "properties": {"settings": r("Directory"), "last_sync": {"allOf": [r("DirectoryReport")], "nullable": true}}})),
                "put": write_op("Set the directory settings (fields left out take their defaults)", Some(r("Directory")), "200", None)
            },
            "/directory/sync": {
                "post": write_op("Synchronise the directory users now (422 with the reason when the directory cannot be read)", None, "200", Some(r("DirectoryReport")))
            },
            "/system/support-bundle": {
                "get": {
                    "summary": "The support bundle (.tar.gz): versions, health, the configuration without secrets, network and time settings, live registrations, calls and peers, the logs",
                    "security": [{"session": []}],
                    "responses": {"200": {"description": "the bundle", "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}}, "401": err("not logged in"), "403": err("not an administrator")}
                }
            },
            "/system/network": {
                "get": read_op("The network settings (saved, or the factory ones), whether this box puts them in force, and the change on trial", r("NetworkState")),
                "put": write_op("New network settings: validated like the console's, in force a moment after the answer, on trial until confirmed (or rolled back by themselves)", Some(r("NetworkSettings")), "202", Some(r("NetworkState")))
            },
            "/system/network/confirm": {
                "post": write_op("Confirm the network change on trial (409 when none waits)", None, "200", Some(r("NetworkState")))
            },
            "/system/capture": {
                "get": read_op("The packet capture: state (idle, running, done, failed), interface, filter, limits, bytes, packets, why it ended", r("CaptureState")),
                "post": write_op("Start a packet capture (tcpdump; one at a time; answered once it listens)", Some(r("CaptureRequest")), "202", Some(r("CaptureState"))),
                "delete": write_op("Delete the capture file (not while it runs)", None, "204", None)
            },
            "/system/capture/stop": {
                "post": write_op("Stop the running capture", None, "200", Some(r("CaptureState")))
            },
            "/system/capture/download": {
                "get": {
                    "summary": "The capture as a pcap file",
                    "security": [{"session": []}],
                    "responses": {"200": {"description": "the capture", "content": {"application/vnd.tcpdump.pcap": {"schema": {"type": "string", "format": "binary"}}}}, "401": err("not logged in"), "403": err("not an administrator"), "404": err("no capture"), "409": err("the capture is running")}
                }
            },
            "/system/backup-schedule": {
                "get": read_op("Scheduled backups and how many backups the box keeps", r("BackupSchedule")),
                "put": write_op("Set the backup schedule (fields left out take their defaults)", Some(r("BackupSchedule")), "200", Some(r("BackupSchedule")))
            },
            "/instance": {
                "get": {
                    "summary": "A random name of the running daemon, new at every start (a page waiting for the box to restart asks it; needs no login)",
                    "responses": {"200": ok("OK", json!({"type": "object", "properties": {"instance": {"type": "string"}}}))}
                }
            },
            "/system/restore": {
                "post": {
                    "summary": "Recover from a backup (the archive as the body, at most 512 MiB): checked whole, then the exchange restarts into it",
                    "security": [{"session": [], "csrf": []}],
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": {
                        "202": ok("staged: the exchange restarts into it", s("object")),
                        "400": err("no body"),
                        "401": err("not logged in"),
                        "403": err("missing CSRF token or not an administrator"),
                        "409": err("made by newer firmware (a newer data schema or archive format), or a recovery is already staged"),
                        "413": err("larger than 512 MiB"),
                        "422": err("not a backup, or a damaged one"),
                        "507": err("no room on the data partition")
                    }
                }
            }
        })
    }

    fn base() -> Value {
        let s = |t: &str| json!({"type": t});
        let str_array = json!({"type": "array", "items": {"type": "string"}});
        let extension_props = json!({
            "number": {"type": "string", "pattern": "^[0-9]{1,20}$"},
            "enabled": s("boolean"),
            "first_name": s("string"),
            "last_name": s("string"),
            "email": s("string"),
            "mobile": s("string"),
            "service_pin": {"type": "string", "description": "voicemail and feature-code PIN, 4+ digits or empty"},
            "call_limit": {"type": "integer", "minimum": 0, "maximum": 4294967295u64},
            "busy_level": {"type": "integer", "minimum": 0, "maximum": 4294967295u64},
            "caller_id": {"type": "object", "properties": {
                "mode": {"type": "string", "enum": ["show", "hide", "present"]},
                "number": s("string")}, "required": ["mode"]},
            "encrypt_calls": s("boolean"),
            "forward": {"type": "string", "description": "forward every call to this number; empty = ring here"},
            "permission_group": {"type": "string", "description": "call permission group; empty = every number"},
            "call_waiting": {"type": "boolean", "description": "a phone in a call rings for a second one (default true)"},
            "do_not_disturb": {"type": "boolean", "description": "the phones do not ring; callers are treated as if the extension were busy (default false)"},
            "voicemail": {"type": "boolean", "description": "the extension has a voicemail box that forwarding rules may send callers to (default true)"},
            "voicemail_email": {"type": "boolean", "description": "each new message is e-mailed to `email` through the mail server (/smtp); default false"},
            "voicemail_attach": {"type": "boolean", "description": "the e-mail carries the recording as WAV (default true)"},
            "voicemail_delete_sent": {"type": "boolean", "description": "a message sent as an attachment leaves the box (default false)"},
            "forwarding": {"type": "array", "maxItems": 12, "items": {"type": "object", "additionalProperties": false,
                "required": ["cause", "to"], "properties": {
                    "cause": {"type": "string", "enum": ["busy", "no_answer", "unavailable"]},
                    "origin": {"type": "string", "enum": ["any", "internal", "external", "transfer"]},
                    "to": {"type": "string", "description": "a number, voicemail (the extension's own box) or hangup"}}}},
            "no_answer_seconds": {"type": "integer", "minimum": 5, "maximum": 600},
            "pickup_groups": {"type": "array", "maxItems": 16, "items": s("string"), "description": "pickup groups the extension is a member of"},
            "pickup_from": {"type": "array", "maxItems": 16, "items": s("string"), "description": "pickup groups it may pick up calls from"}
        });
        let account_props = json!({
            "username": {"type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$"},
            "secret": {"type": "string", "description": "SIP password; generated when left out"},
            "enabled": s("boolean"),
            "extension": s("string"),
            "allowed_source": {"type": "string", "description": "address or CIDR subnet; empty = anywhere"},
            "registration_check": s("boolean"),
            "nat": s("boolean"),
            "direct_media": s("boolean"),
            "transports": {"type": "array", "items": {"type": "string", "enum": ["udp", "tcp", "tls", "ws", "wss"]}},
            "codecs": str_array
        });
        let role = json!({"type": "string", "enum": ["administrator", "auditor", "user"]});
        let call_record = json!({"type": "object", "properties": {
                        "id": s("integer"), "start": s("integer"), "answered": {"type": "integer", "nullable": true}, "end": s("integer"),
                        "caller": s("string"), "caller_name": s("string"), "called": s("string"), "answered_by": s("string"),
                        "outcome": {"type": "string", "enum": ["answered", "busy", "no_answer", "unavailable", "cancelled", "refused", "failed"]},
                        "status": s("integer"), "duration": s("integer"),
                        "direction": {"type": "string", "enum": ["internal", "inbound", "outbound"]},
                        "trunk": s("string"), "transferred_by": s("string")}});
        let history = json!({
            "get": {
                "summary": "Call history, newest first (administrators and auditors: every call; users: their extensions' calls)",
                "security": [{"session": []}],
                "parameters": [
                    {"name": "number", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                    {"name": "match", "in": "query", "schema": {"type": "string", "enum": ["exact", "contains"]}},
                    {"name": "since", "in": "query", "description": "Unix seconds or YYYY-MM-DD[ HH:MM] UTC", "schema": s("string")},
                    {"name": "until", "in": "query", "description": "Unix seconds or YYYY-MM-DD[ HH:MM] UTC", "schema": s("string")},
                    {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": ["answered", "busy", "no_answer", "unavailable", "cancelled", "refused", "failed"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}
                ],
                "responses": {
                    "200": {"description": "OK", "content": {
                        "application/json": {"schema": {"type": "array", "items": r("CallRecord")}},
                        "text/csv": {"schema": s("string")}}},
                    "400": err("a filter is wrong; the message names it"),
                    "401": err("not logged in")
                }
            },
            "delete": {
                "summary": "Clear the call history",
                "security": [{"session": []}],
                "responses": {"204": {"description": "cleared"}, "401": err("not logged in"), "403": err("missing CSRF token or role may not change this")}
            }
        });
        let mut doc = json!({
            "openapi": "3.0.3",
            "info": {
                "title": "PBX appliance API",
                "version": "1",
                "description": "Administration of the exchange. Log in with POST /login, send the session cookie on every request and the returned csrf_token as X-CSRF-Token on every POST, PUT and DELETE."
            },
            "servers": [{"url": "/api/v1"}],
            "components": {
                "securitySchemes": {
                    "session": {"type": "apiKey", "in": "cookie", "name": crate::COOKIE},
                    "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"}
                },
                "schemas": {
                    "Error": {"type": "object", "required": ["error"], "properties": {"error": s("string"), "field": s("string")}},
                    "BackupSchedule": {"type": "object", "additionalProperties": false, "properties": {
                        "every": {"type": "string", "enum": ["off", "daily", "weekly"], "description": "weekly: Sundays"},
                        "hour": {"type": "integer", "minimum": 0, "maximum": 23, "description": "local hour from which the backup is due"},
                        "parts": {"type": "array", "items": {"type": "string", "enum": ["config", "voicemail", "sounds", "recordings", "firmware"]}},
                        "keep": {"type": "integer", "minimum": 1, "maximum": 30, "description": "backups kept on the box, by hand or scheduled"},
                        "remote": {"type": "object", "additionalProperties": false, "description": "where scheduled backups are also sent: an HTTPS (WebDAV) folder taking PUT", "properties": {
                            "enabled": s("boolean"),
                            "url": {"type": "string", "description": "https://server[:port]/folder/"},
                            "username": {"type": "string", "description": "HTTP Basic; none when empty"},
                            "password": {"type": "string", "description": "shown as ****; **** sent back keeps the stored one"}
                        }}
                    }},
                    "NetworkSettings": {"type": "object", "required": ["interfaces"], "additionalProperties": false, "properties": {
                        "hostname": s("string"),
                        "interfaces": {"type": "array", "items": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                            "name": s("string"), "dhcp": s("boolean"), "address": {"type": "string", "format": "ipv4"},
                            "prefix": {"type": "integer", "minimum": 0, "maximum": 32}, "gateway": {"type": "string", "format": "ipv4"}
                        }}},
                        "dns": {"type": "array", "maxItems": 3, "items": {"type": "string", "format": "ipv4"}}
                    }},
                    "NetworkState": {"type": "object", "properties": {
                        "settings": r("NetworkSettings"), "applied": s("boolean"), "confirm_seconds": s("integer"),
                        "pending": {"type": "object", "nullable": true, "properties": {"seconds_left": s("integer")}},
                        "notes": {"type": "array", "items": s("string")}
                    }},
                    "CaptureRequest": {"type": "object", "additionalProperties": false, "properties": {
                        "interface": {"type": "string", "description": "an interface of the box, or any (the default)"},
                        "filter": {"type": "string", "maxLength": 512, "description": "pcap filter, e.g. udp port 5060; empty: everything"},
                        "seconds": {"type": "integer", "minimum": 1, "maximum": 3600},
                        "max_mib": {"type": "integer", "minimum": 1, "maximum": 100}
                    }},
                    "CaptureState": {"type": "object", "properties": {
                        "state": {"type": "string", "enum": ["idle", "starting", "running", "done", "failed"]},
                        "interface": s("string"), "filter": s("string"), "seconds": s("integer"), "max_mib": s("integer"),
                        "started": s("integer"), "ended": s("integer"), "bytes": s("integer"), "packets": s("integer"), "why": s("string")
                    }},
                    "LogSettings": {"type": "object", "additionalProperties": false, "properties": {
                        "debug": {"type": "array", "items": {"type": "string", "enum": config::DEBUG_CLASSES}, "description": "debug classes written to the debug log"},
                        "size_kib": {"type": "integer", "minimum": 16, "maximum": 16384, "description": "a file rolls over at this size, and every day"},
                        "keep": {"type": "integer", "minimum": 1, "maximum": 20, "description": "rolled-over files kept of each log"},
                        "days": {"type": "integer", "minimum": 1, "maximum": 3650, "description": "rolled-over files older than this are deleted"},
                        "syslog": {"type": "object", "additionalProperties": false, "properties": {
                            "enabled": s("boolean"),
                            "host": {"type": "string", "description": "host name or IP address; needed when enabled"},
                            "port": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "0: 514, or 6514 for TLS"},
                            "transport": {"type": "string", "enum": ["udp", "tcp", "tls"]},
                            "facility": {"type": "string", "enum": config::FACILITIES},
                            "logs": {"type": "array", "items": {"type": "string", "enum": config::LOG_NAMES}}
                        }}
                    }},
                    "TimeSettings": {"type": "object", "required": ["timezone"], "additionalProperties": false, "properties": {
                        "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Prague"},
                        "ntp": {"type": "array", "maxItems": 4, "items": {"type": "string"}}
                    }},
                    "Extension": {"type": "object", "properties": extension_props.clone(), "required": ["number"]},
                    "MyExtension": {"type": "object", "additionalProperties": false, "minProperties": 1,
                        "properties": {
                            "service_pin": extension_props["service_pin"].clone(),
                            "forward": extension_props["forward"].clone(),
                            "call_waiting": extension_props["call_waiting"].clone(),
                            "do_not_disturb": extension_props["do_not_disturb"].clone(),
                            "no_answer_seconds": extension_props["no_answer_seconds"].clone(),
                            "forwarding": extension_props["forwarding"].clone(),
                            "email": extension_props["email"].clone(),
                            "voicemail_email": extension_props["voicemail_email"].clone(),
                            "voicemail_attach": extension_props["voicemail_attach"].clone(),
                            "voicemail_delete_sent": extension_props["voicemail_delete_sent"].clone()}},
                    "ExtensionUpdate": {"type": "object", "properties": extension_props, "additionalProperties": false},
                    "Account": {"type": "object", "properties": account_props.clone(), "required": ["username"]},
                    "AccountInput": {"type": "object", "properties": account_props, "additionalProperties": false},
                    "User": {"type": "object", "properties": {
                        "username": s("string"), "full_name": s("string"), "role": role.clone(),
                        "enabled": s("boolean"), "extensions": str_array.clone(), "ring_also": str_array.clone(),
                        "has_password": s("boolean"), "directory": s("boolean")}},
                    "Directory": {"type": "object", "additionalProperties": false, "properties": {
                        "enabled": {"type": "boolean", "description": "synchronise periodically"},
                        "url": {"type": "string", "description": "ldap://host[:port] or ldaps://host[:port]"},
                        "bind_dn": s("string"), "bind_password": {"type": "string", "description": "**** keeps the one there is"},
                        "base_dn": s("string"), "filter": s("string"),
                        "username_attribute": s("string"), "name_attribute": s("string"),
                        "extension_attribute": s("string"), "email_attribute": s("string"),
                        "sync_minutes": {"type": "integer", "minimum": 5, "maximum": 1440}
                    }},
                    "DirectoryReport": {"type": "object", "properties": {
                        "when": s("integer"), "ok": s("boolean"), "created": str_array.clone(), "updated": str_array.clone(),
                        "disabled": str_array.clone(), "skipped": str_array.clone(), "error": s("string")
                    }},
                    "UserInput": {"type": "object", "additionalProperties": false, "properties": {
                        "username": {"type": "string", "pattern": "^[A-Za-z0-9._+-]{1,64}$"},
                        "full_name": s("string"),
                        "password": {"type": "string", "writeOnly": true, "description": "10+ characters mixing three of lower, upper, digits, symbols"},
                        "role": role, "enabled": s("boolean"), "extensions": str_array.clone(), "ring_also": str_array.clone()}},
                    "Registration": {"type": "object", "properties": {
                        "username": s("string"), "extension": s("string"), "contact": s("string"),
                        "source": s("string"), "local": s("string"), "transport": s("string"),
                        "expires_at": s("integer"), "user_agent": s("string")}},
                    "Call": {"type": "object", "properties": {
                        "id": s("integer"), "caller": s("string"), "callee": s("string"), "state": s("string"),
                        "seconds": s("integer"), "packets_a_to_b": s("integer"), "packets_b_to_a": s("integer"),
                        "transcoding": s("boolean")}},
                    "Health": {"type": "object", "properties": {
                        "version": s("string"), "uptime_seconds": s("integer"), "system_uptime_seconds": s("integer"),
                        "cpu": s("object"), "memory": s("object"), "disk": s("object"),
                        "extensions": s("integer"), "users": s("integer"), "registrations": s("integer"),
                        "calls": s("integer"), "revision": s("integer"), "warnings": str_array,
                        "temperatures": {"type": "array", "items": {"type": "object", "properties": {"sensor": s("string"), "celsius": s("number")}}}}},
                    "ConfigLogEntry": {"type": "object", "properties": {"revision": s("integer"), "who": s("string"), "when": s("integer"), "what": s("string")}},
                    "SecurityLogEntry": {"type": "object", "properties": {"when": s("integer"), "address": s("string"), "username": s("string"), "event": s("string")}},
                    "DialPlanEntry": {"type": "object", "properties": {"number": s("string"), "type_id": s("integer"), "type": s("string"), "description": s("string")}}
                }
            },
            "paths": {
                "/setup": {"post": {
                    "summary": "First run: create the administrator (user name Admin)",
                    "security": [],
                    "requestBody": body(json!({"type": "object", "required": ["password"], "additionalProperties": false, "properties": {"password": s("string")}})),
                    "responses": {"201": ok("created", json!({"type": "object", "properties": {"username": s("string")}})),
                                  "400": err("password too weak"), "409": err("an administrator already exists")}
                }},
                "/login": {"post": {
                    "summary": "Log in; sets the session cookie",
                    "security": [],
                    "requestBody": body(json!({"type": "object", "required": ["username", "password"], "additionalProperties": false,
                        "properties": {"username": s("string"), "password": s("string")}})),
                    "responses": {"200": ok("logged in", json!({"type": "object", "properties": {"csrf_token": s("string"), "username": s("string"), "role": s("string")}})),
                                  "400": err("malformed body"), "401": err("wrong user name or password"),
                                  "429": err("too many failed logins from this address")}
                }},
                "/logout": {"post": write_op("Log out", None, "204", None)},
                "/session": {"get": read_op("Who is logged in, and the CSRF token", s("object"))},
                "/me": {
                    "get": read_op("The portal: own user, extensions and SIP credentials", s("object")),
                    "put": write_op("The portal: ringing rules and own password",
                        Some(json!({"type": "object", "additionalProperties": false, "properties": {"ring_also": str_array, "password": s("string")}})), "204", None)
                },
                "/me/voicemail": {
                    "get": read_op("The portal: messages in the voicemail boxes of the user's own extensions, newest first",
                        json!({"type": "array", "items": {"type": "object", "properties": {
                            "extension": s("string"), "id": s("string"),
                            "unix": {"type": "integer", "description": "when it was left"},
                            "caller": s("string"), "seconds": s("integer")}}}))
                },
                "/me/voicemail/{number}/{id}": {
                    "parameters": [number_param(),
                        {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9+-]{1,80}$"}}],
                    "get": {
                        "summary": "One message of an own extension's box, as WAV (8 kHz, 16-bit)",
                        "security": [{"session": []}],
                        "responses": {
                            "200": {"description": "OK", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                            "400": err("not a message id"), "401": err("not logged in"),
                            "403": err("not the user's extension"), "404": err("no such message"),
                            "503": err("the data partition cannot be read")
                        }
                    },
                    "delete": write_op("Delete one message of an own extension's box", None, "204", None)
                },
                "/me/voicemail/{number}/greetings/{cause}": {
                    "parameters": [number_param(),
                        {"name": "cause", "in": "path", "required": true, "schema": {"type": "string", "enum": ["busy", "unavailable"]}}],
                    "get": {
                        "summary": "An own extension's greeting for busy or unavailable, as WAV (8 kHz, 16-bit)",
                        "security": [{"session": []}],
                        "responses": {
                            "200": {"description": "OK", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                            "401": err("not logged in"), "403": err("not the user's extension"), "404": err("no such greeting")
                        }
                    },
                    "put": {
                        "summary": "Upload a greeting: a WAV file (PCM 8/16-bit, A-law or µ-law, any rate, half a second to two minutes), stored at 8 kHz",
                        "security": [{"session": [], "csrf": []}],
                        "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                        "responses": {
                            "204": {"description": "stored"}, "400": err("too short or too long"),
                            "401": err("not logged in"), "403": err("missing CSRF token or not the user's extension"),
                            "404": err("not found"), "413": err("larger than 32 MiB"),
                            "422": err("not a WAV file the box can play"),
                            "507": err("the data partition cannot store it")
                        }
                    },
                    "delete": write_op("Remove a greeting (callers hear the box's invitation again)", None, "204", None)
                },
                "/me/extensions/{number}": {
                    "parameters": [number_param()],
                    "put": write_op("The portal: an own extension's voicemail PIN, forwarding and call waiting (fields left out stay)",
                        Some(r("MyExtension")), "204", None)
                },
                "/extensions": {
                    "get": read_op("Extensions", json!({"type": "array", "items": r("Extension")})),
                    "post": write_op("Add an extension", Some(r("Extension")), "201", Some(r("Extension")))
                },
                "/extensions/{number}": {
                    "parameters": [number_param()],
                    "get": read_op("One extension", r("Extension")),
                    "put": write_op("Replace an extension's settings (the number stays)", Some(r("ExtensionUpdate")), "200", Some(r("Extension"))),
                    "delete": write_op("Remove an extension with its SIP accounts", None, "204", None)
                },
                "/extensions/{number}/accounts": {
                    "parameters": [number_param()],
                    "get": read_op("SIP accounts of an extension", json!({"type": "array", "items": r("Account")})),
                    "post": write_op("Add a SIP account (user name and secret proposed when left out)", Some(r("AccountInput")), "201", Some(r("Account")))
                },
                "/extensions/{number}/accounts/{username}": {
                    "parameters": [number_param(), username_param()],
                    "get": read_op("One SIP account", r("Account")),
                    "put": write_op("Replace a SIP account's settings (the secret stays when left out)", Some(r("AccountInput")), "200", Some(r("Account"))),
                    "delete": write_op("Remove a SIP account", None, "204", None)
                },
                "/users": {
                    "get": read_op("Users", json!({"type": "array", "items": r("User")})),
                    "post": write_op("Add a user", Some(r("UserInput")), "201", Some(r("User")))
                },
                "/users/{username}": {
                    "parameters": [username_param()],
                    "get": read_op("One user", r("User")),
                    "put": write_op("Change a user (fields left out keep their value)", Some(r("UserInput")), "200", Some(r("User"))),
                    "delete": write_op("Remove a user", None, "204", None)
                },
                "/dialplan": {"get": read_op("Every used number with its type", json!({"type": "array", "items": r("DialPlanEntry")}))},
                "/status/registrations": {"get": read_op("Registered phones", json!({"type": "array", "items": r("Registration")}))},
                "/status/calls": {"get": read_op("Calls in progress", json!({"type": "array", "items": r("Call")}))},
                "/status/calls/{id}": {
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}],
                    "delete": write_op("Hang a call up", None, "204", None)
                },
                "/status/parked": {"get": read_op("Calls waiting in parking slots", json!({"type": "array", "items": {"type": "object", "properties": {
                    "slot": s("string"), "call": s("integer"), "number": s("string"), "parked_by": s("string"), "seconds": s("integer")}}}))},
                "/security/bans": {"get": read_op("SIP sources banned by the scanner and brute-force protection, the newest first", json!({"type": "array", "items": {"type": "object", "properties": {
                    "key": s("string"), "kind": {"type": "string", "enum": ["address", "port", "user"]}, "address": s("string"), "port": s("integer"), "user": s("string"),
                    "reason": s("string"), "since": s("integer"), "until": s("integer"), "seconds_left": s("integer"), "offence": s("integer"), "spares_phones": s("boolean")}}}))},
                "/security/bans/{key}": {
                    "parameters": [{"name": "key", "in": "path", "required": true, "description": "192.0.2.7, 192.0.2.7:5070 or alice@192.0.2.7", "schema": {"type": "string"}}],
                    "delete": write_op("Lift a SIP ban", None, "204", None)
                },
                "/security/sip_protection": {
                    "get": read_op("The IP address group never banned", json!({"type": "object", "properties": {"allow_group": s("string")}})),
                    "put": write_op("Set the IP address group never banned (empty: none)", Some(json!({"type": "object", "additionalProperties": false, "properties": {"allow_group": s("string")}})), "200", Some(json!({"type": "object", "properties": {"allow_group": s("string")}})))
                },
                "/firewall": {
                    "get": read_op("The firewall: each service's allowed IP address group, the change on trial, what is in force", r("FirewallView")),
                    "put": write_op("Set services' allowed groups (empty: anyone); a change that holds anything is on trial until confirmed", Some(r("FirewallSettings")), "200", Some(r("FirewallView")))
                },
                "/firewall/confirm": {"post": write_op("Confirm the change on trial (409: none)", None, "204", None)},
                "/firewall/rollback": {"post": write_op("Roll the change on trial back now (409: none)", None, "204", None)},
                "/status/conferences": {"get": read_op("Conference rooms with who is in them", json!({"type": "array", "items": r("ConferenceStatus")}))},
                "/status/conferences/{number}/{call}": {
                    "parameters": [
                        {"name": "number", "in": "path", "required": true, "schema": {"type": "string"}},
                        {"name": "call", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}],
                    "put": write_op("Mute or unmute a participant", Some(json!({"type": "object", "additionalProperties": false, "required": ["muted"], "properties": {"muted": s("boolean")}})), "204", None),
                    "delete": write_op("Put a participant out (the box hangs up on it)", None, "204", None)
                },
                "/status/queues": {"get": read_op("Call queues with their waiting callers, agents and figures", json!({"type": "array", "items": r("QueueStatus")}))},
                "/status/queues/{number}/agents/{extension}": {
                    "parameters": [
                        {"name": "number", "in": "path", "required": true, "schema": {"type": "string"}},
                        {"name": "extension", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "put": write_op("Log an extension in to or out of a queue taking dynamic agents", Some(json!({"type": "object", "additionalProperties": false, "required": ["logged_in"], "properties": {"logged_in": s("boolean")}})), "204", None)
                },
                "/recordings": {"get": read_op("Recorded queue calls, newest first", json!({"type": "array", "items": {"type": "object", "properties": {
                    "name": s("string"), "time": s("integer"), "queue": s("string"), "caller": s("string"),
                    "agent": s("string"), "seconds": s("integer"), "bytes": s("integer")}}}))},
                "/recordings/{name}": {
                    "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9A-Za-z+-]{1,160}$"}}],
                    "get": {"summary": "The recording (WAV, stereo 8 kHz 16-bit)", "security": [{"session": []}],
                        "responses": {"200": {"description": "OK", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                            "401": err("not logged in"), "403": err("not an administrator"), "404": err("no such recording")}},
                    "delete": write_op("Remove a recording", None, "204", None)
                },
                "/status/health": {"get": read_op("CPU, memory, disk, uptime, version", r("Health"))},
                "/status/tasks": {"get": read_op("The scheduled tasks: backup, directory synchronisation, log rotation, and the rollbacks and capture under way", json!({"type": "array", "items": {"type": "object", "properties": {
                    "task": s("string"), "schedule": s("string"), "last": {"type": "integer", "nullable": true}, "state": s("string")}}}))},
                "/status/dahdi": {"get": read_op("The ISDN cards and DAHDI spans the kernel found, with their ports and alarms", json!({"type": "object", "properties": {
                    "cards": {"type": "array", "items": {"type": "object", "properties": {"id": s("string"), "kind": s("string"), "manufacturer": s("string"), "location": s("string"), "spans": {"type": "array", "items": s("integer")}}}},
                    "spans": {"type": "array", "items": {"type": "object", "properties": {"span": s("integer"), "name": s("string"), "desc": s("string"), "spantype": s("string"),
                        "basechan": {"type": "integer", "nullable": true}, "channels": s("integer"), "alarms": {"type": "array", "items": s("string")}, "card": s("string"), "port": s("integer")}}}
                }}))},
                "/logs/config": {"get": read_op("Config log, newest first", json!({"type": "array", "items": r("ConfigLogEntry")}))},
                "/logs/security": {"get": read_op("Security log, newest first", json!({"type": "array", "items": r("SecurityLogEntry")}))},
                "/logs": {"get": read_op("The logs: name, what they hold, where they are kept, their size", json!({"type": "array", "items": {"type": "object", "properties": {
                    "name": s("string"), "title": s("string"), "kept": {"type": "string", "enum": ["store", "files"]}, "bytes": s("integer"), "files": s("integer")}}}))},
                "/logs/settings": {
                    "get": read_op("Debug classes, rotation of the log files, the syslog server", r("LogSettings")),
                    "put": write_op("Set the log settings (fields left out take their defaults)", Some(r("LogSettings")), "200", Some(r("LogSettings")))
                },
                "/logs/{name}": {
                    "parameters": [
                        {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "enum": ["error", "warning", "debug", "kernel"]}},
                        {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "only entries holding this text (any case)"},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}, "description": "at most this many entries (200 by default)"}
                    ],
                    "get": read_op("A log file's entries, newest first (an entry is a line and the indented lines continuing it)", json!({"type": "object", "properties": {
                        "lines": {"type": "array", "items": s("string")}, "more": s("boolean")}})),
                    "delete": write_op("Clear a log file (the config and security logs cannot be cleared)", None, "204", None)
                },
                "/logs/{name}/download": {
                    "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "enum": ["config", "security", "error", "warning", "debug", "kernel"]}}],
                    "get": {
                        "summary": "The whole log as text, oldest first (of a log file, its newest 64 MiB)",
                        "security": [{"session": []}],
                        "responses": {"200": {"description": "the log", "content": {"text/plain": {"schema": {"type": "string"}}}}, "401": err("not logged in"), "403": err("not an administrator")}
                    }
                }
            }
        });
        let group = json!({"type": "string", "maxLength": 32, "description": "an IP address group's name; empty: anyone"});
        let services: serde_json::Map<String, Value> = config::FIREWALL_SERVICES
            .iter()
            .map(|(k, _)| (k.to_string(), group.clone()))
            .collect();
        doc["components"]["schemas"]["FirewallSettings"] =
            json!({"type": "object", "additionalProperties": false, "properties": services});
        doc["components"]["schemas"]["FirewallView"] = json!({"type": "object", "required": ["settings", "in_force"], "properties": {
            "settings": r("FirewallSettings"),
            "confirm_within": {"type": "integer", "nullable": true, "description": "seconds left to confirm the change on trial; null: none"},
            "in_force": {"type": "object", "properties": {
                "enabled": s("boolean"), "revision": {"type": "integer", "nullable": true}, "rules": s("integer"),
                "error": {"type": "string", "nullable": true}}}
        }});
        doc["components"]["schemas"]["CallRecord"] = call_record;
        doc["components"]["schemas"]["ConferenceStatus"] = json!({"type": "object", "properties": {
            "number": s("string"), "description": s("string"), "limit": s("integer"),
            "participants": {"type": "array", "items": {"type": "object", "properties": {
                "call": s("integer"), "number": s("string"), "name": s("string"),
                "seconds": s("integer"), "muted": s("boolean"), "muted_by_admin": s("boolean")}}}}});
        doc["components"]["schemas"]["QueueStatus"] = json!({"type": "object", "properties": {
            "number": s("string"), "description": s("string"), "strategy": s("string"),
            "waiting": {"type": "array", "items": {"type": "object", "properties": {
                "call": s("integer"), "number": s("string"), "name": s("string"), "position": s("integer"),
                "seconds": s("integer"), "ringing": {"type": "array", "items": s("string")}}}},
            "agents": {"type": "array", "items": {"type": "object", "properties": {
                "extension": s("string"), "name": s("string"), "dynamic": s("boolean"),
                "state": {"type": "string", "enum": ["free", "ringing", "in call", "wrap-up", "do not disturb", "unavailable"]},
                "answered": s("integer"), "missed": s("integer")}}},
            "answered": s("integer"), "abandoned": s("integer"), "redirected": s("integer"),
            "average_wait": s("integer"), "longest_wait": s("integer")}});
        doc["paths"]["/history"] = history;
        let codes = json!({"type": "object", "additionalProperties": false, "properties": {
            "pickup": {"type": "string", "description": "1-8 of digits, * and #"},
            "voicemail": {"type": "string", "description": "the voicemail access number (own box after the service PIN); 1-8 of digits, * and #, or empty: off"},
            "voicemail_direct": {"type": "string", "description": "prefix followed by an extension: leave a message in its box; 1-8 of digits, * and #, or empty: off"},
            "directed_pickup": {"type": "string", "description": "1-8 of digits, * and #; followed by an extension"},
            "echo_test": {"type": "string", "description": "1-8 of digits, * and #, or empty (off): the box answers and sends the caller's voice back"},
            "park": {"type": "string", "description": "call park: dialled in a consultation call (then the transfer completed) or blind-transferred to, parks in the first free slot; 1-8 of digits, * and #, or empty: off"},
            "do_not_disturb": {"type": "string", "description": "switches the caller's extension's do not disturb on or off (the box says which); 1-8 of digits, * and #, or empty: off"}}});
        let smtp = json!({"type": "object", "additionalProperties": false, "properties": {
            "server": {"type": "string", "description": "host name or address of the mail server; empty: no e-mail is sent"},
            "port": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "0: 587 (starttls), 465 (tls), 25 (none)"},
            "security": {"type": "string", "enum": ["starttls", "tls", "none"], "description": "none never sends a password"},
            "username": {"type": "string", "description": "empty: no authentication"},
            "password": {"type": "string", "description": "write-only: a GET shows **** when one is set; **** in a PUT keeps it"},
            "from": {"type": "string", "description": "the sender's address"},
            "ca": {"type": "string", "description": "PEM certificates trusted besides the system's (at most 64 KiB)"}}});
        doc["paths"]["/smtp"] = json!({
            "get": read_op("The mail server voicemail messages are e-mailed through (Kerio 17.3)", smtp.clone()),
            "put": write_op("Set the mail server (fields left out keep their value)", Some(smtp.clone()), "200", Some(smtp))
        });
        doc["paths"]["/feature_codes"] = json!({
            "get": read_op("Feature codes (call pickup, directed pickup, echo test, voicemail, direct voicemail)", codes.clone()),
            "put": write_op("Set the feature codes", Some(codes.clone()), "200", Some(codes))
        });
        doc
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_document_is_the_one_the_builder_makes() {
        let built = super::build::document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            use std::io::Write;
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/openapi.json.gz");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&serde_json::to_vec(&built).unwrap()).unwrap();
            std::fs::write(path, gz.finish().unwrap()).unwrap();
            // This build holds the file as it was: the next run checks the new one.
            return;
        }
        assert!(
            super::document() == built,
            "src/openapi.json.gz is not what src/openapi.rs builds: run \
             UPDATE_OPENAPI=1 cargo test -p web --lib openapi"
        );
        assert_eq!(built["openapi"], "3.0.3");
        assert!(built["paths"].as_object().unwrap().len() > 20);
    }
}
