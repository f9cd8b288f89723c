//! Trunks and number routing through the API and the Call routing pages: what an
//! administrator does, what the configuration holds afterwards, and bad input.

mod common;

use common::*;
use serde_json::json;

const FORM: &str = "application/x-www-form-urlencoded";

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A form body from pairs, with the CSRF token first.
fn form(who: &Who, pairs: &[(&str, &str)]) -> String {
    let mut out = format!("csrf={}", who.csrf.as_ref().unwrap());
    for (k, v) in pairs {
        out.push_str(&format!("&{k}={}", enc(v)));
    }
    out
}

#[tokio::test]
async fn interfaces_links_and_routes_through_the_api() {
    let rig = rig();
    let (admin, auditor, _) = rig.populated().await;
    let call = |m: &'static str, p: &'static str, b: Option<serde_json::Value>| {
        let (rig, admin) = (&rig, admin.clone());
        async move { rig.call(&admin, m, p, b).await }
    };

    // Kerio 6.1: a provider with credentials; auditors never see the password.
    let a = call(
        "POST",
        "/api/v1/routing/interfaces",
        Some(
            json!({"name": "voipex", "host": "127.0.0.4", "username": "95550399",
            "password": "prov-pass", "register": true, "numbers": ["800225XXX"],
            "did": [{"number": "800225111", "target": "101"}]}),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a = rig
        .call(&auditor, "GET", "/api/v1/routing/interfaces/voipex", None)
        .await;
    assert_eq!(a.body["password"], "********", "{}", a.text);
    // A change keeps what it does not name.
    let a = call(
        "PUT",
        "/api/v1/routing/interfaces/voipex",
        Some(json!({"description": "main line"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let i = rig.cfg.snapshot().config.sip_interfaces[0].clone();
    assert_eq!(
        (i.password.as_str(), i.description.as_str(), i.did.len()),
        ("prov-pass", "main line", 1)
    );

    // Outbound routes are one ordered list; a rename follows into them.
    let a = call(
        "PUT",
        "/api/v1/routing/outbound",
        Some(json!([{"prefix": "9", "interfaces": ["voipex"], "called_rewrite": {"strip": 1}}])),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = call(
        "PUT",
        "/api/v1/routing/interfaces/voipex",
        Some(json!({"name": "voipex2"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        rig.cfg.snapshot().config.outbound_routes[0].interfaces,
        vec!["voipex2"]
    );
    // An interface a route uses cannot go: the error names the route.
    let a = call("DELETE", "/api/v1/routing/interfaces/voipex2", None).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.text.contains("outbound route"), "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config.sip_interfaces.len(), 1);

    // Kerauno: the register string fills user, host and password and is shown back.
    let a = call(
        "POST",
        "/api/v1/routing/links",
        Some(
            json!({"name": "branch", "range_min": "100", "range_max": "150",
            "mode": "we_register", "register_string": "sysconn@127.0.0.3:Link-Secret-42"}),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["host"], "127.0.0.3");
    assert_eq!(
        a.body["register_string"],
        "sysconn@127.0.0.3:Link-Secret-42"
    );
    let a = rig
        .call(&auditor, "GET", "/api/v1/routing/links/branch", None)
        .await;
    assert_eq!(a.body["register_string"], "sysconn@127.0.0.3:********");
    assert!(!a.text.contains("Link-Secret-42"), "{}", a.text);

    // Conflicts: 101 is local and inside 100-150; Local wins unless chosen otherwise.
    let a = call("GET", "/api/v1/routing/conflicts", None).await;
    assert_eq!(
        a.body,
        json!([{"link": "branch", "number": "101", "kind": "extension", "winner": "local"}])
    );
    // Before saving: a preview of a new range shows its conflicts and stores nothing.
    let before = rig.cfg.snapshot().revision;
    let a = call(
        "POST",
        "/api/v1/routing/conflicts",
        Some(json!({"name": "branch", "range_min": "160", "range_max": "170"})),
    )
    .await;
    assert_eq!((a.status, a.body.clone()), (200, json!([])), "{}", a.text);
    let a = call(
        "POST",
        "/api/v1/routing/conflicts",
        Some(json!({"name": "friend", "patterns": ["10[0-9]"], "host": "127.0.0.6"})),
    )
    .await;
    assert_eq!(a.body[0]["number"], "101", "{}", a.text);
    assert_eq!(
        rig.cfg.snapshot().revision,
        before,
        "a preview stores nothing"
    );
    let a = call(
        "PUT",
        "/api/v1/routing/links/branch",
        Some(json!({"remote_wins": ["101"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = call("GET", "/api/v1/routing/conflicts", None).await;
    assert_eq!(a.body[0]["winner"], "remote");

    // Kerio 23.3's group; a rename follows to the extension that uses it.
    let a = call(
        "POST",
        "/api/v1/routing/permission_groups",
        Some(json!({"name": "Restricted", "rules": [
            {"prefix": "0900654321", "allow": true}, {"prefix": "0900", "allow": false},
            {"prefix": "5000100", "allow": false}, {"prefix": "5000123", "allow": false}]})),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a = call(
        "PUT",
        "/api/v1/extensions/101",
        Some(json!({"permission_group": "Restricted", "forward": "0900111222"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = call(
        "PUT",
        "/api/v1/routing/permission_groups/Restricted",
        Some(json!({"name": "Limited"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let snap = rig.cfg.snapshot();
    assert_eq!(snap.extension("101").unwrap().permission_group, "Limited");
    let g = snap.permission_group("Limited").unwrap();
    assert!(g.allows("0900654321") && !g.allows("0900123456") && g.allows("0212345678"));
    let a = call("DELETE", "/api/v1/routing/permission_groups/Limited", None).await;
    assert_eq!(a.status, 400, "in use: {}", a.text);

    // Emergency: a preset replaces the list; direct dialing needs a route.
    let a = call(
        "POST",
        "/api/v1/routing/emergency/preset",
        Some(json!({"country": "Germany"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("110"), "{}", a.text);
    let a = call(
        "PUT",
        "/api/v1/routing/emergency",
        Some(json!({"direct_dialing": true})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("routes")),
        "{}",
        a.text
    );
    let a = call(
        "PUT",
        "/api/v1/routing/emergency",
        Some(json!({"direct_dialing": true, "routes": ["9"]})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // While direct dialing is on, no extension may take an emergency number.
    let a = call("POST", "/api/v1/extensions", Some(json!({"number": "112"}))).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.text.contains("emergency"), "{}", a.text);

    // Ring groups.
    let a = call(
        "POST",
        "/api/v1/routing/ring_groups",
        Some(json!({"number": "600", "name": "Sales", "members": ["101", "0602111111"]})),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let a = call(
        "POST",
        "/api/v1/routing/ring_groups",
        Some(json!({"number": "600", "members": ["101"]})),
    )
    .await;
    assert_eq!(a.status, 409, "{}", a.text);

    // The state of providers and links comes from the exchange.
    let a = rig
        .call(&auditor, "GET", "/api/v1/status/peers", None)
        .await;
    assert_eq!(a.body[0]["registration"], "registered", "{}", a.text);

    // Every change is in the configuration log under the administrator's name.
    let a = call("GET", "/api/v1/logs/config", None).await;
    assert!(
        a.text.contains("renamed interface voipex to voipex2"),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn bad_routing_input_gets_an_error_naming_the_field() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "POST",
            "/api/v1/routing/interfaces",
            "{not json",
            400,
            "body",
        ),
        (
            "POST",
            "/api/v1/routing/interfaces",
            r#"{"name":"my provider","host":"127.0.0.4"}"#,
            400,
            "name",
        ),
        (
            "POST",
            "/api/v1/routing/interfaces",
            r#"{"name":"p1"}"#,
            400,
            "host",
        ),
        (
            "POST",
            "/api/v1/routing/interfaces",
            r#"{"name":"p1","host":"127.0.0.4","port":70000}"#,
            400,
            "port",
        ),
        (
            "POST",
            "/api/v1/routing/interfaces",
            r#"{"name":"p1","host":"127.0.0.4","did":[{"number":"800","target":"999"}]}"#,
            400,
            "did",
        ),
        (
            "POST",
            "/api/v1/routing/interfaces",
            r#"{"name":"p1","host":"127.0.0.4","codecs":["MP3"]}"#,
            400,
            "codecs",
        ),
        (
            "POST",
            "/api/v1/routing/interfaces",
            r#"{"name":"p1","host":"127.0.0.4","transport":"carrier-pigeon"}"#,
            400,
            "transport",
        ),
        (
            "POST",
            "/api/v1/routing/links",
            r#"{"name":"l1","register_string":"no-at-sign"}"#,
            400,
            "register_string",
        ),
        (
            "POST",
            "/api/v1/routing/links",
            r#"{"name":"l1","host":"127.0.0.3","patterns":["(unclosed"]}"#,
            400,
            "patterns",
        ),
        (
            "POST",
            "/api/v1/routing/links",
            r#"{"name":"l1","host":"127.0.0.3"}"#,
            400,
            "prefix",
        ),
        (
            "POST",
            "/api/v1/routing/links",
            r#"{"name":"l1","host":"127.0.0.3","range_min":"200","range_max":"100"}"#,
            400,
            "range_min",
        ),
        (
            "POST",
            "/api/v1/routing/links",
            r#"{"name":"l1","prefix":"8","host":"127.0.0.3","username":"l1","password":"short"}"#,
            400,
            "password",
        ),
        (
            "POST",
            "/api/v1/routing/links",
            r#"{"name":"l1","prefix":"8","mode":"telepathy","host":"127.0.0.3"}"#,
            400,
            "mode",
        ),
        (
            "POST",
            "/api/v1/routing/conflicts",
            r#"{"name":"l1","patterns":["(("]}"#,
            400,
            "patterns",
        ),
        (
            "PUT",
            "/api/v1/routing/outbound",
            r#"{"prefix":"0"}"#,
            400,
            "body",
        ),
        (
            "PUT",
            "/api/v1/routing/outbound",
            r#"[{"prefix":"0","interfaces":["nowhere"]}]"#,
            400,
            "interfaces",
        ),
        (
            "PUT",
            "/api/v1/routing/outbound",
            r#"[{"prefix":"0x","interfaces":[]}]"#,
            400,
            "prefix",
        ),
        (
            "POST",
            "/api/v1/routing/permission_groups",
            r#"{"name":"g","rules":[{"prefix":"09*","allow":true}]}"#,
            400,
            "rules",
        ),
        (
            "POST",
            "/api/v1/routing/emergency/preset",
            r#"{"country":"Atlantis"}"#,
            400,
            "country",
        ),
        (
            "PUT",
            "/api/v1/routing/emergency",
            r#"{"numbers":[{"number":"11a"}]}"#,
            400,
            "number",
        ),
        (
            "POST",
            "/api/v1/routing/ring_groups",
            r#"{"number":"101","members":["102"]}"#,
            400,
            "number",
        ),
        (
            "POST",
            "/api/v1/routing/ring_groups",
            r#"{"number":"600","members":["600"]}"#,
            400,
            "members",
        ),
        (
            "PUT",
            "/api/v1/routing/links/nope",
            r#"{"priority":1}"#,
            404,
            "",
        ),
        (
            "POST",
            "/api/v1/routing/isdn",
            r#"{"name":"tel co","span":{"driver":"dahdi","span":1}}"#,
            400,
            "name",
        ),
        (
            "POST",
            "/api/v1/routing/isdn",
            r#"{"name":"telco","span":{"driver":"dahdi","span":0}}"#,
            400,
            "span",
        ),
        (
            "POST",
            "/api/v1/routing/isdn",
            r#"{"name":"telco","span":{"driver":"virtual","path":"relative"}}"#,
            400,
            "span",
        ),
        (
            "POST",
            "/api/v1/routing/isdn",
            r#"{"name":"telco","span":{"driver":"dahdi","span":1},"switch_type":"qsig"}"#,
            400,
            "switch_type",
        ),
        (
            "POST",
            "/api/v1/routing/isdn",
            r#"{"name":"telco","span":{"driver":"dahdi","span":1},"called_rewrite":{"strip":1,"prefix":"9x"}}"#,
            400,
            "called_rewrite",
        ),
        ("DELETE", "/api/v1/routing/isdn/none", "", 404, ""),
        ("DELETE", "/api/v1/routing/ring_groups/999", "", 404, ""),
        ("GET", "/api/v1/routing/nothing", "", 404, ""),
    ];
    let before = rig.cfg.snapshot().config.clone();
    for (m, p, body, want, field) in cases {
        let b = (!body.is_empty()).then(|| ("application/json", body.to_string()));
        let a = rig.raw(&admin, m, p, b, &[], "127.0.0.1").await;
        assert_eq!(a.status, *want, "{m} {p} {body}: {}", a.text);
        assert!(a.body["error"].is_string(), "{m} {p}: {}", a.text);
        if !field.is_empty() {
            assert_eq!(a.body["field"], *field, "{m} {p} {body}: {}", a.text);
        }
    }
    assert_eq!(
        rig.cfg.snapshot().config,
        before,
        "bad input changed nothing"
    );
}

#[tokio::test]
async fn the_call_routing_pages_add_edit_and_check_conflicts() {
    let rig = rig();
    let (admin, auditor, user) = rig.populated().await;
    let post = |path: String, body: String| {
        let (rig, admin) = (&rig, admin.clone());
        async move {
            rig.raw(&admin, "POST", &path, Some((FORM, body)), &[], "127.0.0.1")
                .await
        }
    };

    // A provider from the blank form, with a DID row and Kerio 6.3's rewrite.
    let a = post(
        "/admin/routing/interfaces".into(),
        form(
            &admin,
            &[
                ("name", "voipex"),
                ("enabled", "on"),
                ("numbers", "800225111, 8002252XX"),
                ("host", "127.0.0.4"),
                ("port", "5060"),
                ("transport", "udp"),
                ("username", "95550399"),
                ("password", "prov-pass"),
                ("register", "on"),
                ("register_expires", "600"),
                ("keepalive", "30"),
                ("codecs", "PCMA PCMU"),
                ("did_number", "800225111"),
                ("did_target", "101"),
                ("did_number", ""),
                ("did_target", ""),
                ("called_strip", "6"),
                ("called_prefix", ""),
                ("calling_strip", "0"),
                ("calling_prefix", "9"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("Interface voipex added."), "{}", a.text);
    let i = rig.cfg.snapshot().config.sip_interfaces[0].clone();
    assert!(i.register && i.port == 5060 && i.keepalive == 30);
    assert_eq!(i.numbers, vec!["800225111", "8002252XX"]);
    assert_eq!(i.did.len(), 1);
    assert_eq!(i.called_rewrite.strip, 6);
    assert_eq!(i.calling_rewrite.apply("95550399"), "995550399");

    // A wrong field keeps what was typed and says which field.
    let a = post(
        "/admin/routing/interfaces/voipex".into(),
        form(
            &admin,
            &[
                ("name", "voipex"),
                ("host", "127.0.0.4"),
                ("description", "typed but refused"),
                ("keepalive", "often"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.text.contains("keepalive"), "{}", a.text);
    let a = post(
        "/admin/routing/interfaces/voipex".into(),
        form(
            &admin,
            &[
                ("name", "voipex"),
                ("host", "127.0.0.4"),
                ("description", "typed but refused"),
                ("operator", "999"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.text.contains("999 is not a local number"), "{}", a.text);
    assert!(a.text.contains("typed but refused"), "kept: {}", a.text);
    assert!(rig.cfg.snapshot().config.sip_interfaces[0]
        .description
        .is_empty());

    // A link: checking conflicts first shows 101 inside 100-150 and stores nothing.
    let link = |action: &'static str, winner: Option<&'static str>| {
        let mut v = vec![
            ("name", "branch"),
            ("enabled", "on"),
            ("range_min", "100"),
            ("range_max", "150"),
            ("priority", "1"),
            ("mode", "direct"),
            ("host", "127.0.0.3"),
            ("transport", "udp"),
            ("codecs", "PCMA"),
            ("action", action),
        ];
        if let Some(w) = winner {
            v.push(("conflict_number", "101"));
            v.push(("conflict_winner", w));
        }
        form(&admin, &v)
    };
    let a = post("/admin/routing/links".into(), link("check", None)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("id=\"link-conflicts\""), "{}", a.text);
    assert!(a.text.contains("Not saved yet"), "{}", a.text);
    assert!(rig.cfg.snapshot().config.links.is_empty());
    // Saved with Remote chosen for 101.
    let a = post("/admin/routing/links".into(), link("save", Some("remote"))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config.links[0].remote_wins, vec!["101"]);
    // The register string on the page changes user, host and password at once.
    let a = post(
        "/admin/routing/links/branch".into(),
        form(
            &admin,
            &[
                ("name", "branch"),
                ("range_min", "100"),
                ("range_max", "150"),
                ("mode", "peer_registers"),
                ("register_string", "sysconn@127.0.0.3:Link-Secret-42"),
                ("codecs", "PCMA"),
                ("action", "save"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let l = rig.cfg.snapshot().config.links[0].clone();
    assert_eq!(
        (l.username.as_str(), l.password.as_str()),
        ("sysconn", "Link-Secret-42")
    );
    assert!(l.remote_wins.is_empty(), "no winner sent: Local again");

    // Outbound routes and ring groups are table forms; blank rows are ignored.
    let a = post(
        "/admin/routing/outbound".into(),
        form(
            &admin,
            &[
                ("out_prefix", "9"),
                ("out_interfaces", "voipex"),
                ("out_called_strip", "1"),
                ("out_called_prefix", ""),
                ("out_calling_strip", ""),
                ("out_calling_prefix", ""),
                ("out_description", "PSTN"),
                ("out_prefix", ""),
                ("out_interfaces", ""),
                ("out_called_strip", ""),
                ("out_called_prefix", ""),
                ("out_calling_strip", ""),
                ("out_calling_prefix", ""),
                ("out_description", ""),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let o = rig.cfg.snapshot().config.outbound_routes.clone();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].called_rewrite.apply("90212345678"), "0212345678");
    let a = post(
        "/admin/routing/ring-groups".into(),
        form(
            &admin,
            &[
                ("rg_number", "600"),
                ("rg_name", "Sales"),
                ("rg_members", "101, 90602111111"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        rig.cfg.snapshot().config.ring_groups[0].members,
        vec!["101", "90602111111"]
    );

    // Kerio 23.3's group; the order column moves the specific allow above the deny.
    let a = post(
        "/admin/routing/groups".into(),
        form(
            &admin,
            &[
                ("name", "Restricted"),
                ("rule_order", "20"),
                ("rule_prefix", "90900"),
                ("rule_action", "deny"),
                ("rule_order", "10"),
                ("rule_prefix", "90900654321"),
                ("rule_action", "allow"),
                ("rule_order", ""),
                ("rule_prefix", ""),
                ("rule_action", "deny"),
                ("default", "allow"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let g = rig.cfg.snapshot().config.permission_groups[0].clone();
    assert_eq!(g.rules[0].prefix, "90900654321");
    assert!(g.allows("90900654321") && !g.allows("90900111111"));

    // The extension page sets the group and a forward, and keeps them on save.
    let a = post(
        "/admin/extensions/101".into(),
        form(
            &admin,
            &[
                ("enabled", "on"),
                ("first_name", "Ann"),
                ("forward", "90602111111"),
                ("permission_group", "Restricted"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let e = rig.cfg.snapshot().extension("101").unwrap().clone();
    assert_eq!(
        (e.forward.as_str(), e.permission_group.as_str()),
        ("90602111111", "Restricted")
    );
    assert!(
        a.text.contains("<option value=\"Restricted\" selected>"),
        "{}",
        a.text
    );

    // Emergency: a preset, then direct dialing through route 9.
    let a = post(
        "/admin/routing/emergency/preset".into(),
        form(&admin, &[("country", "CZ")]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config.emergency.numbers.len(), 5);
    let a = post(
        "/admin/routing/emergency".into(),
        form(
            &admin,
            &[
                ("em_number", "112"),
                ("em_description", "Emergency"),
                ("em_number", "155"),
                ("em_description", "Ambulance"),
                ("direct_dialing", "on"),
                ("routes", "9"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let em = rig.cfg.snapshot().config.emergency.clone();
    assert!(em.direct_dialing && em.numbers.len() == 2 && em.routes == vec!["9"]);

    // The overview shows it all, with the state from the exchange.
    let page = rig.call(&auditor, "GET", "/admin/routing", None).await;
    assert_eq!(page.status, 200);
    for s in ["voipex", "branch", "100–150", "Restricted", "Sales", "112"] {
        assert!(page.text.contains(s), "{s} missing: {}", page.text);
    }
    assert!(
        !page.text.contains("Add link") && !page.text.contains("Save outbound routes"),
        "auditors cannot change"
    );
    let page = rig
        .call(&auditor, "GET", "/admin/routing/interfaces/voipex", None)
        .await;
    assert!(!page.text.contains("prov-pass"), "{}", page.text);
    let page = rig
        .call(&auditor, "GET", "/admin/routing/links/branch", None)
        .await;
    assert!(!page.text.contains("Link-Secret-42"), "{}", page.text);
    assert_eq!(
        rig.call(&user, "GET", "/admin/routing", None).await.status,
        403
    );
    let a = rig
        .raw(
            &auditor,
            "POST",
            "/admin/routing/links/branch/delete",
            Some((FORM, form(&auditor, &[]))),
            &[],
            "127.0.0.1",
        )
        .await;
    assert_eq!(a.status, 403);
    // Removing the link from its page.
    let a = post(
        "/admin/routing/links/branch/delete".into(),
        form(&admin, &[]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(rig.cfg.snapshot().config.links.is_empty());
    let page = rig
        .call(&admin, "GET", "/admin/routing/links/branch", None)
        .await;
    assert_eq!(page.status, 404);
}

#[tokio::test]
async fn a_permission_group_with_any_printable_name_has_working_pages() {
    // Group names may hold spaces, #, ? and /: links and forms must still reach them.
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let name = "Sales & Support #2/?x";
    let post = |path: String, body: String| {
        let (rig, admin) = (&rig, admin.clone());
        async move {
            rig.raw(&admin, "POST", &path, Some((FORM, body)), &[], "127.0.0.1")
                .await
        }
    };
    let a = post(
        "/admin/routing/groups".into(),
        form(&admin, &[("name", name), ("default", "deny")]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let href = "/admin/routing/groups/Sales%20%26%20Support%20%232%2F%3Fx";
    assert!(a.text.contains(&format!("action=\"{href}\"")), "{}", a.text);
    let page = rig.call(&admin, "GET", "/admin/routing", None).await;
    assert!(
        page.text.contains(&format!("href=\"{href}\"")),
        "{}",
        page.text
    );
    let page = rig.call(&admin, "GET", href, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page
        .text
        .contains("Permission group Sales &amp; Support #2/?x"));
    // Saved through the page's own form action, then removed through its button.
    let a = post(
        href.into(),
        form(
            &admin,
            &[
                ("name", name),
                ("description", "front desk"),
                ("default", "deny"),
            ],
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        rig.cfg
            .snapshot()
            .permission_group(name)
            .unwrap()
            .description,
        "front desk"
    );
    let a = post(format!("{href}/delete"), form(&admin, &[])).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(rig.cfg.snapshot().config.permission_groups.is_empty());
}

#[tokio::test]
async fn isdn_interfaces_through_the_api_and_the_pages() {
    let rig = rig();
    let (admin, auditor, _) = rig.populated().await;

    // Kerio 7.3 through the API; a rename follows into the outbound routes.
    let a = rig
        .call(
            &admin,
            "POST",
            "/api/v1/routing/isdn",
            Some(
                json!({"name": "telco", "span": {"driver": "dahdi", "span": 1},
                "numbers": ["55501XX"], "called_digits": 4,
                "called_rewrite": {"strip": 2, "prefix": "2"},
                "calling_rewrite": {"strip": 0, "prefix": "9"}}),
            ),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["line"], "e1");
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/routing/outbound",
            Some(json!([{"prefix": "9", "interfaces": ["telco"]}])),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/routing/isdn/telco",
            Some(json!({"name": "pri1", "overlap": true})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let c = rig.cfg.snapshot().config.clone();
    assert_eq!(c.outbound_routes[0].interfaces, vec!["pri1"]);
    assert!(c.isdn_interfaces[0].overlap && c.isdn_interfaces[0].called_digits == 4);
    // Auditors read, never write; the same span twice is refused.
    let a = rig
        .call(&auditor, "GET", "/api/v1/routing/isdn/pri1", None)
        .await;
    assert_eq!(
        (a.status, a.body["numbers"][0].as_str()),
        (200, Some("55501XX"))
    );
    let a = rig
        .call(&auditor, "DELETE", "/api/v1/routing/isdn/pri1", None)
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = rig
        .call(
            &admin,
            "POST",
            "/api/v1/routing/isdn",
            Some(json!({"name": "pri2", "span": {"driver": "dahdi", "span": 1}})),
        )
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("span")),
        "{}",
        a.text
    );
    let a = rig.call(&admin, "GET", "/api/v1/status/spans", None).await;
    assert_eq!(a.body["telco"]["link_up"], false, "{}", a.text);

    // The pages: a BRI to another PBX from the blank form, on a virtual span.
    let post = |path: &'static str, body: String| {
        let (rig, admin) = (&rig, admin.clone());
        async move {
            rig.raw(&admin, "POST", path, Some((FORM, body)), &[], "127.0.0.1")
                .await
        }
    };
    let a = rig
        .raw(&admin, "GET", "/admin/routing/isdn", None, &[], "127.0.0.1")
        .await;
    assert!(
        a.text.contains("New ISDN interface") && a.text.contains("name=\"driver\""),
        "{}",
        a.text
    );
    let fields = |name: &'static str, path: &'static str| {
        vec![
            ("name", name),
            ("enabled", "on"),
            ("role", "pbx"),
            ("driver", "virtual"),
            ("span", ""),
            ("path", path),
            ("line", "bri"),
            ("switch_type", "euroisdn"),
            ("side", "network"),
            ("overlap", "on"),
            ("numbers", "201, 202"),
            ("called_digits", ""),
            ("did_number", "201"),
            ("did_target", "101"),
            ("called_strip", ""),
            ("called_prefix", ""),
            ("calling_strip", "0"),
            ("calling_prefix", "8"),
        ]
    };
    let a = post(
        "/admin/routing/isdn",
        form(&admin, &fields("oldpbx", "/run/pbx/bri1")),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.text.contains("ISDN interface oldpbx added."),
        "{}",
        a.text
    );
    let i = rig.cfg.snapshot().config.isdn_interfaces[1].clone();
    assert_eq!(
        (i.role, i.line, i.side, i.overlap, i.did.len()),
        (
            config::IsdnRole::Pbx,
            config::IsdnLine::Bri,
            config::IsdnSide::Network,
            true,
            1
        )
    );
    assert_eq!(
        i.span,
        config::SpanDriver::Virtual {
            path: "/run/pbx/bri1".into()
        }
    );
    assert_eq!(i.calling_rewrite.apply("201"), "8201");

    // Bad fields: the page says which and keeps what was typed; nothing is stored.
    let before = rig.cfg.snapshot().config.clone();
    let mut bad = fields("oldpbx", "relative/path");
    bad.push(("description", "typed but refused"));
    let a = post("/admin/routing/isdn/oldpbx", form(&admin, &bad)).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.text.contains("absolute socket path") && a.text.contains("typed but refused"),
        "{}",
        a.text
    );
    let mut bad = fields("oldpbx", "/run/pbx/bri1");
    bad.retain(|(k, _)| *k != "called_digits");
    bad.push(("called_digits", "four"));
    let a = post("/admin/routing/isdn/oldpbx", form(&admin, &bad)).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.text.contains("called_digits"), "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config, before);

    // The overview lists both with their lines and the span's state.
    let a = rig
        .raw(&admin, "GET", "/admin/routing", None, &[], "127.0.0.1")
        .await;
    assert!(
        a.text.contains("DAHDI span 1: E1, EuroISDN, user side"),
        "{}",
        a.text
    );
    assert!(
        a.text
            .contains("virtual span /run/pbx/bri1: BRI, EuroISDN, network side"),
        "{}",
        a.text
    );
    // The rig's pbxd reports "telco" (the old name) as down with a red alarm.
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/routing/isdn/pri1",
            Some(json!({"name": "telco"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = rig
        .raw(&admin, "GET", "/admin/routing", None, &[], "127.0.0.1")
        .await;
    assert!(
        a.text
            .contains("link down; alarm: red (no signal or no frame sync) (T200 expired)"),
        "{}",
        a.text
    );

    // Pages of what does not exist say so, for every kind.
    for (path, says) in [
        (
            "/admin/routing/isdn/nope",
            "ISDN interface nope does not exist.",
        ),
        (
            "/admin/routing/interfaces/nope",
            "Interface nope does not exist.",
        ),
        ("/admin/routing/links/nope", "Link nope does not exist."),
        (
            "/admin/routing/groups/nope",
            "Permission group nope does not exist.",
        ),
        ("/admin/routing/isdn/oldpbx/more", "There is no such page."),
    ] {
        let a = rig.raw(&admin, "GET", path, None, &[], "127.0.0.1").await;
        assert_eq!(a.status, 404, "{path}");
        assert!(a.text.contains(says), "{path}: {}", a.text);
    }

    // Removing from the page.
    let a = post("/admin/routing/isdn/oldpbx/delete", form(&admin, &[])).await;
    assert!(
        a.text.contains("ISDN interface oldpbx removed."),
        "{}",
        a.text
    );
    assert_eq!(rig.cfg.snapshot().config.isdn_interfaces.len(), 1);
}
