//! Every API route against every role, CSRF, the login rate limit and bad input, driven
//! through the same warp filter the HTTPS server runs (the TLS path is covered by the
//! end-to-end tests against pbxd).

mod common;

use common::*;
use serde_json::{json, Value};

/// Admin routes: (method, path, body) with bodies that would succeed for an admin.
fn admin_routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/api/v1/extensions", None),
        ("POST", "/api/v1/extensions", Some(json!({"number": "150"}))),
        ("GET", "/api/v1/extensions/101", None),
        (
            "PUT",
            "/api/v1/extensions/101",
            Some(json!({"first_name": "Anna"})),
        ),
        ("GET", "/api/v1/extensions/101/accounts", None),
        (
            "POST",
            "/api/v1/extensions/101/accounts",
            Some(json!({"username": "101-desk"})),
        ),
        ("GET", "/api/v1/extensions/101/accounts/101", None),
        (
            "PUT",
            "/api/v1/extensions/101/accounts/101",
            Some(json!({"nat": false})),
        ),
        ("DELETE", "/api/v1/extensions/101/accounts/101-desk", None),
        ("GET", "/api/v1/users", None),
        (
            "POST",
            "/api/v1/users",
            Some(json!({"username": "new", "password": PW, "role": "user"})),
        ),
        ("GET", "/api/v1/users/ursula", None),
        (
            "PUT",
            "/api/v1/users/ursula",
            Some(json!({"full_name": "Ursula U"})),
        ),
        ("DELETE", "/api/v1/users/new", None),
        ("GET", "/api/v1/status/registrations", None),
        ("GET", "/api/v1/status/calls", None),
        ("DELETE", "/api/v1/status/calls/7", None),
        ("GET", "/api/v1/status/health", None),
        ("GET", "/api/v1/logs/config", None),
        ("GET", "/api/v1/logs/security", None),
        ("GET", "/api/v1/dialplan", None),
        ("DELETE", "/api/v1/extensions/150", None),
        (
            "PUT",
            "/api/v1/provisioning",
            Some(json!({"enabled": true, "first_extension": "300", "auto_create": true})),
        ),
        ("GET", "/api/v1/provisioning", None),
        ("GET", "/api/v1/provisioning/models", None),
        (
            "POST",
            "/api/v1/provisioning/phones",
            Some(json!({"mac": "00:1a:a0:be:1e:cd", "model": "794X", "extensions": ["310"]})),
        ),
        ("GET", "/api/v1/provisioning/phones", None),
        ("GET", "/api/v1/provisioning/phones/001AA0BE1ECD", None),
        (
            "PUT",
            "/api/v1/provisioning/phones/001aa0be1ecd",
            Some(json!({"extensions": []})),
        ),
        (
            "DELETE",
            "/api/v1/provisioning/phones/00-1a-a0-be-1e-cd",
            None,
        ),
        (
            "POST",
            "/api/v1/provisioning/import",
            Some(json!({"csv": "00:1b:b0:cd:e1:ca;Cisco;796X;320\n"})),
        ),
        ("POST", "/api/v1/provisioning/restart", Some(json!({}))),
        ("GET", "/api/v1/provisioning/firmware", None),
        ("GET", "/api/v1/routing/interfaces", None),
        (
            "POST",
            "/api/v1/routing/interfaces",
            Some(json!({"name": "sipgate", "host": "127.0.0.4"})),
        ),
        ("GET", "/api/v1/routing/interfaces/sipgate", None),
        (
            "PUT",
            "/api/v1/routing/interfaces/sipgate",
            Some(json!({"description": "main line"})),
        ),
        ("GET", "/api/v1/routing/links", None),
        (
            "POST",
            "/api/v1/routing/links",
            Some(
                json!({"name": "branch", "range_min": "151", "range_max": "200", "host": "127.0.0.3"}),
            ),
        ),
        ("GET", "/api/v1/routing/links/branch", None),
        (
            "PUT",
            "/api/v1/routing/links/branch",
            Some(json!({"priority": 2})),
        ),
        ("GET", "/api/v1/routing/conflicts", None),
        (
            "POST",
            "/api/v1/routing/conflicts",
            Some(json!({"name": "other", "prefix": "8", "host": "127.0.0.6"})),
        ),
        ("GET", "/api/v1/routing/outbound", None),
        (
            "PUT",
            "/api/v1/routing/outbound",
            Some(
                json!([{"prefix": "0", "interfaces": ["sipgate"], "called_rewrite": {"strip": 1}}]),
            ),
        ),
        ("GET", "/api/v1/routing/permission_groups", None),
        (
            "POST",
            "/api/v1/routing/permission_groups",
            Some(json!({"name": "internal", "default_allow": false})),
        ),
        ("GET", "/api/v1/routing/permission_groups/internal", None),
        (
            "PUT",
            "/api/v1/routing/permission_groups/internal",
            Some(json!({"description": "internal calls only"})),
        ),
        ("GET", "/api/v1/routing/emergency", None),
        (
            "PUT",
            "/api/v1/routing/emergency",
            Some(json!({"direct_dialing": true, "routes": ["0"]})),
        ),
        ("GET", "/api/v1/routing/emergency/presets", None),
        (
            "POST",
            "/api/v1/routing/emergency/preset",
            Some(json!({"country": "CZ"})),
        ),
        ("GET", "/api/v1/routing/ring_groups", None),
        (
            "POST",
            "/api/v1/routing/ring_groups",
            Some(json!({"number": "600", "members": ["101"]})),
        ),
        ("GET", "/api/v1/routing/ring_groups/600", None),
        (
            "PUT",
            "/api/v1/routing/ring_groups/600",
            Some(json!({"name": "Sales"})),
        ),
        ("GET", "/api/v1/status/peers", None),
        ("DELETE", "/api/v1/routing/ring_groups/600", None),
        ("DELETE", "/api/v1/routing/permission_groups/internal", None),
        ("DELETE", "/api/v1/routing/links/branch", None),
    ]
}

/// Items the administrator's pass creates: the auditor before it gets 404.
const CREATED_LATER: &[&str] = &[
    "/api/v1/routing/interfaces/sipgate",
    "/api/v1/routing/links/branch",
    "/api/v1/routing/permission_groups/internal",
    "/api/v1/routing/ring_groups/600",
];

#[tokio::test]
async fn every_admin_route_checks_the_role() {
    let rig = rig();
    let (admin, auditor, user) = rig.populated().await;
    for (m, p, b) in admin_routes() {
        let anon = rig.call(&Who::default(), m, p, b.clone()).await;
        assert_eq!(anon.status, 401, "anonymous {m} {p}: {}", anon.text);
        assert!(anon.body["error"].is_string());
        let u = rig.call(&user, m, p, b.clone()).await;
        assert_eq!(u.status, 403, "user {m} {p}: {}", u.text);
        let a = rig.call(&auditor, m, p, b.clone()).await;
        if m == "GET"
            && (p.starts_with("/api/v1/provisioning/phones/") || CREATED_LATER.contains(&p))
        {
            // Only added by the administrator's pass below.
            assert_eq!(a.status, 404, "auditor {m} {p}: {}", a.text);
        } else if (m, p) == ("POST", "/api/v1/routing/conflicts") {
            // A preview changes nothing: auditors may look.
            assert_eq!(a.status, 200, "auditor {m} {p}: {}", a.text);
        } else if m == "GET" {
            assert_eq!(a.status, 200, "auditor {m} {p}: {}", a.text);
        } else {
            assert_eq!(a.status, 403, "auditor {m} {p}: {}", a.text);
        }
    }
    // The administrator may do everything (the hang-up of a call that is not there is 404).
    for (m, p, b) in admin_routes() {
        let a = rig.call(&admin, m, p, b).await;
        let want = match (m, p) {
            ("POST", "/api/v1/provisioning/restart")
            | ("POST", "/api/v1/routing/conflicts")
            | ("POST", "/api/v1/routing/emergency/preset") => 200,
            ("POST", _) => 201,
            ("DELETE", "/api/v1/status/calls/7") => 404,
            ("DELETE", _) => 204,
            _ => 200,
        };
        assert_eq!(a.status, want, "admin {m} {p}: {}", a.text);
    }
    // Auditors do not see secrets; administrators do.
    let a = rig
        .call(&auditor, "GET", "/api/v1/extensions/101/accounts/101", None)
        .await;
    assert_eq!(a.body["secret"], "********");
    let a = rig
        .call(&admin, "GET", "/api/v1/extensions/101/accounts/101", None)
        .await;
    assert!(config::weak_secret_reason(a.body["secret"].as_str().unwrap()).is_none());
    // The user has the portal.
    let me = rig.call(&user, "GET", "/api/v1/me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["extensions"][0]["number"], "101");
    assert!(me.body["extensions"][0]["accounts"][0]["secret"].is_string());
    let a = rig
        .call(
            &user,
            "PUT",
            "/api/v1/me",
            Some(json!({"ring_also": ["+420602111111"]})),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    let a = rig
        .call(
            &user,
            "PUT",
            "/api/v1/me/extensions/101",
            Some(json!({"service_pin": "4711"})),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    let a = rig
        .call(
            &user,
            "PUT",
            "/api/v1/me/extensions/102",
            Some(json!({"service_pin": "4711"})),
        )
        .await;
    assert_eq!(a.status, 403, "not the user's extension: {}", a.text);
    assert_eq!(
        rig.cfg.snapshot().extension("101").unwrap().service_pin,
        "4711"
    );
    // The user forwards their own calls and switches call waiting off (Kerio MyPhone).
    let fw = json!({"forward": "", "call_waiting": false, "no_answer_seconds": 15,
        "forwarding": [{"cause": "busy", "origin": "any", "to": " hangup "},
                       {"cause": "no_answer", "origin": "external", "to": "102"}]});
    let a = rig
        .call(&user, "PUT", "/api/v1/me/extensions/101", Some(fw.clone()))
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    let e = rig.cfg.snapshot().extension("101").unwrap().clone();
    assert!(!e.call_waiting && e.no_answer_seconds == 15, "{e:?}");
    assert_eq!(e.forwarding.len(), 2);
    assert_eq!(e.forwarding[0].to, "hangup", "trimmed");
    assert_eq!(e.service_pin, "4711", "fields left out stay");
    let me = rig.call(&user, "GET", "/api/v1/me", None).await;
    assert_eq!(me.body["extensions"][0]["forwarding"][1]["to"], "102");
    assert_eq!(me.body["extensions"][0]["call_waiting"], false);
    let a = rig
        .call(&user, "PUT", "/api/v1/me/extensions/102", Some(fw))
        .await;
    assert_eq!(a.status, 403, "not the user's extension: {}", a.text);
    // Wrong input is refused, naming the field, and changes nothing.
    for (body, field) in [
        (json!({}), "body"),
        (json!({"no_answer_seconds": 2}), "no_answer_seconds"),
        (
            json!({"forwarding": [{"cause": "sometimes", "to": "101"}]}),
            "forwarding[0].cause",
        ),
        (
            json!({"forwarding": [{"cause": "busy", "to": "55x"}]}),
            "forwarding",
        ),
        (json!({"call_limit": 1}), "call_limit"),
    ] {
        let a = rig
            .call(
                &user,
                "PUT",
                "/api/v1/me/extensions/101",
                Some(body.clone()),
            )
            .await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert_eq!(a.body["field"], field, "{body}: {}", a.text);
    }
    assert_eq!(rig.cfg.snapshot().extension("101").unwrap(), &e);
    // Nothing ever shows a password hash.
    let all = rig.call(&admin, "GET", "/api/v1/users", None).await;
    assert!(!all.text.contains("argon2"), "{}", all.text);
}

#[tokio::test]
async fn state_changes_need_the_csrf_token() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let mut no_token = admin.clone();
    no_token.csrf = None;
    let mut wrong = admin.clone();
    wrong.csrf = Some("0".repeat(64));
    for who in [&no_token, &wrong] {
        for (m, p, b) in admin_routes().into_iter().filter(|r| r.0 != "GET") {
            let a = rig.call(who, m, p, b).await;
            assert_eq!(a.status, 403, "{m} {p} without a good token: {}", a.text);
        }
        assert_eq!(
            rig.call(who, "POST", "/api/v1/logout", None).await.status,
            403
        );
    }
    assert_eq!(
        rig.cfg.snapshot().config.extensions.len(),
        1,
        "nothing changed"
    );
    // A request from another site is refused even with the token.
    let body = Some(("application/json", json!({"number": "555"}).to_string()));
    let a = rig
        .raw(
            &admin,
            "POST",
            "/api/v1/extensions",
            body,
            &[("origin", "https://evil.example")],
            "127.0.0.1",
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    // Logout ends the session.
    assert_eq!(
        rig.call(&admin, "POST", "/api/v1/logout", None)
            .await
            .status,
        204
    );
    assert_eq!(
        rig.call(&admin, "GET", "/api/v1/extensions", None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address_and_logged() {
    let rig = rig();
    rig.populated().await;
    let bad = json!({"username": "Admin", "password": "wrong-password-1"});
    for i in 0..5 {
        let a = rig
            .req(
                &Who::default(),
                "POST",
                "/api/v1/login",
                Some(bad.clone()),
                "10.9.9.9",
            )
            .await;
        assert_eq!(a.status, 401, "attempt {i}: {}", a.text);
    }
    let good = json!({"username": "Admin", "password": ADMIN_PW});
    let a = rig
        .req(
            &Who::default(),
            "POST",
            "/api/v1/login",
            Some(good.clone()),
            "10.9.9.9",
        )
        .await;
    assert_eq!(
        a.status, 429,
        "blocked even with the right password: {}",
        a.text
    );
    assert!(a.headers.contains_key("retry-after"));
    let a = rig
        .req(
            &Who::default(),
            "POST",
            "/api/v1/login",
            Some(good),
            "10.9.9.10",
        )
        .await;
    assert_eq!(a.status, 200, "other addresses are not blocked");
    let log = rig.cfg.store().security_log().unwrap();
    assert!(
        log.iter()
            .filter(|e| e.address == "10.9.9.9" && e.event.starts_with("login failed"))
            .count()
            >= 5
    );
    assert!(log.iter().any(|e| e.event.contains("blocked")));
    assert!(log
        .iter()
        .any(|e| e.address == "10.9.9.10" && e.event == "session opened"));
    // Unknown users fail the same way and are logged too.
    let a = rig
        .call(
            &Who::default(),
            "POST",
            "/api/v1/login",
            Some(json!({"username": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(a.status, 401);
    assert!(rig
        .cfg
        .store()
        .security_log()
        .unwrap()
        .iter()
        .any(|e| e.username == "nobody"));
}

#[tokio::test]
async fn setup_happens_once_and_refuses_weak_passwords() {
    let rig = rig();
    let anon = Who::default();
    let a = rig.call(&anon, "GET", "/api/v1/extensions", None).await;
    assert_eq!(a.status, 401);
    let a = rig
        .call(
            &anon,
            "POST",
            "/api/v1/setup",
            Some(json!({"password": "password"})),
        )
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("password")),
        "{}",
        a.text
    );
    let page = rig.call(&anon, "GET", "/admin", None).await;
    assert!(page.text.contains("Create the administrator account"));
    let a = rig
        .call(
            &anon,
            "POST",
            "/api/v1/setup",
            Some(json!({"password": ADMIN_PW})),
        )
        .await;
    assert_eq!(a.status, 201);
    let a = rig
        .call(
            &anon,
            "POST",
            "/api/v1/setup",
            Some(json!({"password": ADMIN_PW})),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    let page = rig.call(&anon, "GET", "/admin", None).await;
    assert!(page.text.contains("Log in") && !page.text.contains("Create the administrator"));
}

#[tokio::test]
async fn bad_input_gets_an_error_naming_the_field() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let cases = [
        ("POST", "/api/v1/extensions", "{not json", 400, "body"),
        ("POST", "/api/v1/extensions", "[1,2]", 400, "body"),
        (
            "POST",
            "/api/v1/extensions",
            r#"{"number":"12a"}"#,
            400,
            "number",
        ),
        (
            "POST",
            "/api/v1/extensions",
            r#"{"number":"101"}"#,
            409,
            "number",
        ),
        (
            "POST",
            "/api/v1/extensions",
            r#"{"number":"102","bogus":1}"#,
            400,
            "bogus",
        ),
        (
            "POST",
            "/api/v1/extensions",
            r#"{"number":"102","call_limit":-1}"#,
            400,
            "call_limit",
        ),
        (
            "PUT",
            "/api/v1/extensions/101",
            r#"{"number":"999"}"#,
            400,
            "number",
        ),
        (
            "POST",
            "/api/v1/extensions/101/accounts",
            r#"{"secret":"weak"}"#,
            400,
            "secret",
        ),
        (
            "POST",
            "/api/v1/users",
            r#"{"username":"x","role":"user","password":"short"}"#,
            400,
            "password",
        ),
        (
            "POST",
            "/api/v1/users",
            r#"{"username":"x y","role":"user","password":"Us3r-Secret!x"}"#,
            400,
            "username",
        ),
        (
            "POST",
            "/api/v1/users",
            r#"{"username":"z","role":"root","password":"Us3r-Secret!x"}"#,
            400,
            "role",
        ),
        (
            "PUT",
            "/api/v1/users/ursula",
            r#"{"ring_also":["call me"]}"#,
            400,
            "ring_also",
        ),
        (
            "PUT",
            "/api/v1/users/Admin",
            r#"{"role":"user"}"#,
            409,
            "role",
        ),
        (
            "PUT",
            "/api/v1/users/ursula",
            r#"{"extensions":["999"]}"#,
            400,
            "extensions",
        ),
        (
            "PUT",
            "/api/v1/provisioning",
            r#"{"utc_offset":"1"}"#,
            400,
            "utc_offset",
        ),
        (
            "PUT",
            "/api/v1/provisioning",
            r#"{"bogus":1}"#,
            400,
            "bogus",
        ),
        (
            "PUT",
            "/api/v1/provisioning",
            r#"{"phone_password":"weak"}"#,
            400,
            "phone_password",
        ),
        (
            "POST",
            "/api/v1/provisioning/phones",
            r#"{"mac":"zz","model":"794X"}"#,
            400,
            "mac",
        ),
        (
            "POST",
            "/api/v1/provisioning/phones",
            r#"{"mac":"00:1a:a0:be:1e:cd","model":"7970"}"#,
            400,
            "model",
        ),
        (
            "POST",
            "/api/v1/provisioning/phones",
            r#"{"mac":"00:1a:a0:be:1e:cd","model":"794X","blf_keys":[{"number":"999"}]}"#,
            400,
            "blf_keys",
        ),
        (
            "POST",
            "/api/v1/provisioning/phones",
            r#"{"mac":"00:1a:a0:be:1e:cd","model":"794X","blf_keys":[{"number":"*71","label":"a\nb"}]}"#,
            400,
            "blf_keys",
        ),
        (
            "POST",
            "/api/v1/provisioning/restart",
            r#"{"phones":["00:1a:a0:be:1e"]}"#,
            400,
            "phones",
        ),
        (
            "POST",
            "/api/v1/provisioning/import",
            r#"{"csv":"garbage;x"}"#,
            400,
            "file",
        ),
        (
            "POST",
            "/api/v1/provisioning/import",
            r#"{"csv":"","dry_run":true}"#,
            400,
            "csv",
        ),
    ];
    for (m, p, body, status, field) in cases {
        let a = rig
            .raw(
                &admin,
                m,
                p,
                Some(("application/json", body.to_string())),
                &[],
                "127.0.0.1",
            )
            .await;
        assert_eq!(a.status, status, "{m} {p} {body}: {}", a.text);
        assert_eq!(a.body["field"], field, "{m} {p} {body}: {}", a.text);
        assert!(a.body["error"].is_string());
    }
    let a = rig
        .call(&admin, "GET", "/api/v1/extensions/999", None)
        .await;
    assert_eq!(a.status, 404);
    let a = rig.call(&admin, "GET", "/api/v1/nowhere", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        rig.cfg.snapshot().config.extensions.len(),
        1,
        "nothing half-done"
    );
}

#[tokio::test]
async fn pages_follow_the_roles() {
    let rig = rig();
    let (_, auditor, user) = rig.populated().await;
    let page = rig.call(&auditor, "GET", "/admin/extensions", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("101") && !page.text.contains("Add extension"),
        "read only"
    );
    let page = rig.call(&user, "GET", "/admin/extensions", None).await;
    assert_eq!(page.status, 403);
    let page = rig.call(&auditor, "GET", "/admin/phones", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("Provisioned phones") && !page.text.contains("Import from CSV"),
        "read only: {}",
        page.text
    );
    assert_eq!(
        rig.call(&user, "GET", "/admin/phones", None).await.status,
        403
    );
    let page = rig.call(&user, "GET", "/", None).await;
    assert!(page.text.contains("Extension 101"), "{}", page.text);
    // A form post without the token changes nothing.
    let form = "application/x-www-form-urlencoded";
    let no_token = Who {
        csrf: None,
        ..user.clone()
    };
    let a = rig
        .raw(
            &no_token,
            "POST",
            "/ringing",
            Some((form, "ring_also=123".into())),
            &[],
            "127.0.0.1",
        )
        .await;
    assert_eq!(a.status, 403);
    let body = format!("csrf={}&ring_also=0602111111", user.csrf.as_ref().unwrap());
    let a = rig
        .raw(
            &no_token,
            "POST",
            "/ringing",
            Some((form, body)),
            &[],
            "127.0.0.1",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let u = rig
        .cfg
        .snapshot()
        .config
        .users
        .iter()
        .find(|u| u.username == "ursula")
        .unwrap()
        .clone();
    assert_eq!(u.ring_also, vec!["0602111111"]);
    // Dial plan CSV in Kerio's layout.
    let csv = rig.call(&auditor, "GET", "/admin/dialplan.csv", None).await;
    assert!(
        csv.text
            .starts_with("Extension Number,Type ID,Description\r\n101,1,Ann"),
        "{}",
        csv.text
    );
}

#[tokio::test]
async fn the_phones_page_enables_adds_previews_and_imports() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let form = "application/x-www-form-urlencoded";
    let csrf = admin.csrf.clone().unwrap();
    let post = |path: &'static str, body: String| {
        let admin = admin.clone();
        let rig = &rig;
        async move {
            rig.raw(&admin, "POST", path, Some((form, body)), &[], "127.0.0.1")
                .await
        }
    };
    let a = post(
        "/admin/phones/settings",
        format!("csrf={csrf}&enabled=on&first_extension=200&auto_create=on&phone_password=Ph0ne-Secret%21&allowed_sources=10.0.0.0%2F8&ntp_server=&time_zone=Europe%2FPrague&utc_offset=%2B01%3A00"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let p = rig.cfg.snapshot().config.provisioning.clone();
    assert!(p.enabled && p.auto_create && p.first_extension == "200");
    assert_eq!(p.allowed_sources, vec!["10.0.0.0/8"]);
    let a = post(
        "/admin/phones/add",
        format!("csrf={csrf}&mac=00%3A04%3A13%3Aaa%3Abb%3Acc&model=snom360&extensions=210%2C+211"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("00:04:13:aa:bb:cc"));
    // Too many extensions for the model: the form says so and nothing changes.
    let a = post(
        "/admin/phones/add",
        format!("csrf={csrf}&mac=00%3A0e%3A08%3Aaa%3Abb%3Acc&model=SPA922&extensions=220%2C221"),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.text.contains("at most 1"), "{}", a.text);
    let csv = "00:1a:a0:be:1e:cd;Cisco;794X;111;112\n00:1b:b0:cd:e1:ca;Cisco;796X;210\n00:1c:c0:ab:a2:24;Linksys;SPA942;113;114\n";
    let enc: String = form_urlencoded::byte_serialize(csv.as_bytes()).collect();
    let a = post("/admin/phones/preview", format!("csrf={csrf}&csv={enc}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("id=\"preview\""));
    assert!(
        a.text
            .contains("extension 210 is taken by phone 00:04:13:aa:bb:cc"),
        "{}",
        a.text
    );
    // Import the good lines only.
    let a = post(
        "/admin/phones/import",
        format!("csrf={csrf}&csv={enc}&line=1&line=3"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config.phones.len(), 3);
    // Choosing the bad line refuses the whole import.
    let a = post(
        "/admin/phones/import",
        format!("csrf={csrf}&csv={enc}&line=2"),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(rig.cfg.snapshot().config.phones.len(), 3);
    // A restart at a bad time is refused; a good one is scheduled.
    let a = post("/admin/phones/restart", format!("csrf={csrf}&at=tomorrow")).await;
    assert_eq!(a.status, 400);
    let a = post(
        "/admin/phones/restart",
        format!("csrf={csrf}&at=2099-01-01+02%3A00"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.text.contains("Phones restart at 2099-01-01 02:00:00"),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn feature_codes_forwarding_and_ring_groups_are_set_from_the_pages() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let form = "application/x-www-form-urlencoded";
    let csrf = admin.csrf.clone().unwrap();
    let post = |path: &'static str, body: String| {
        let admin = admin.clone();
        let rig = &rig;
        async move {
            rig.raw(&admin, "POST", path, Some((form, body)), &[], "127.0.0.1")
                .await
        }
    };
    // A code that is an extension's number is refused, naming the field.
    let a = post(
        "/admin/dialplan/feature-codes",
        format!("csrf={csrf}&pickup=101&directed_pickup=**&echo_test=%2A43"),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.text.contains("conflicts with number 101"), "{}", a.text);
    let a = post(
        "/admin/dialplan/feature-codes",
        format!("csrf={csrf}&pickup=%2A9&directed_pickup=%2A%2A&echo_test=%2A44"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config.feature_codes.pickup, "*9");
    assert_eq!(rig.cfg.snapshot().config.feature_codes.echo_test, "*44");
    let csv = rig.call(&admin, "GET", "/admin/dialplan.csv", None).await;
    assert!(csv.text.contains("*9,9,Call pickup"), "{}", csv.text);
    assert!(csv.text.contains("*44,9,Echo test"), "{}", csv.text);
    // The API changes the codes it names; the others keep their value.
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/feature_codes",
            Some(serde_json::json!({"pickup": "*7"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let fc = &rig.cfg.snapshot().config.feature_codes;
    assert_eq!((fc.pickup.as_str(), fc.echo_test.as_str()), ("*7", "*44"));
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/feature_codes",
            Some(serde_json::json!({"echo_test": "", "bogus": 1})),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/feature_codes",
            Some(serde_json::json!({"echo_test": ""})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(rig.cfg.snapshot().config.feature_codes.echo_test, "");
    // The extension page's forwarding grid, call waiting and pickup groups.
    let a = post(
        "/admin/extensions/101",
        format!("csrf={csrf}&enabled=on&first_name=Ann&no_answer_seconds=12&fw_busy_internal=102&fw_no_answer_any=hangup&pickup_groups=sales%2C+desk&pickup_from=sales"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let e = rig.cfg.snapshot().extension("101").unwrap().clone();
    assert!(!e.call_waiting, "an unchecked box is off");
    assert_eq!(e.no_answer_seconds, 12);
    assert_eq!(e.forwarding.len(), 2);
    assert_eq!(
        e.forward_for(config::ForwardCause::Busy, config::CallOrigin::Internal),
        Some("102")
    );
    assert_eq!(e.pickup_groups, ["sales", "desk"]);
    let a = post(
        "/admin/extensions/101",
        format!("csrf={csrf}&enabled=on&no_answer_seconds=12&fw_busy_any=somewhere"),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        a.text
            .contains("must be another number, voicemail, voicemail:&lt;extension&gt; or hangup"),
        "{}",
        a.text
    );
    // Voicemail is a target while the extension has a box, and only then.
    let a = post(
        "/admin/extensions/101",
        format!(
            "csrf={csrf}&enabled=on&voicemail=on&no_answer_seconds=12&fw_no_answer_any=voicemail"
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let e = rig.cfg.snapshot().extension("101").unwrap().clone();
    assert!(e.voicemail);
    assert_eq!(
        e.forward_for(config::ForwardCause::NoAnswer, config::CallOrigin::External),
        Some("voicemail")
    );
    let a = post(
        "/admin/extensions/101",
        format!("csrf={csrf}&enabled=on&no_answer_seconds=12&fw_no_answer_any=voicemail"),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.text.contains("has no voicemail box"), "{}", a.text);
    // Ring groups with a strategy and a fallback.
    let a = post(
        "/admin/routing/ring-groups",
        format!("csrf={csrf}&rg_number=600&rg_name=Sales&rg_members=101%2C102&rg_strategy=in_order&rg_member_seconds=10&rg_timeout=&rg_fallback=102"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let g = rig.cfg.snapshot().config.ring_groups[0].clone();
    assert_eq!(
        (g.strategy, g.member_seconds, g.timeout, g.fallback.as_str()),
        (config::RingStrategy::InOrder, 10, 0, "102")
    );
    let a = post(
        "/admin/routing/ring-groups",
        format!("csrf={csrf}&rg_number=600&rg_members=101&rg_strategy=&rg_member_seconds=x"),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text);
}

/// The dial plan names every kind of number the box has (issue 21.7): extensions,
/// ring groups, queues with their agent codes, conferences, auto attendants, emergency
/// numbers, parking slots, feature codes, links to other PBXs and outbound routes.
#[tokio::test]
async fn the_dial_plan_covers_every_number_type() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let cfg: config::Config = serde_json::from_value(serde_json::json!({
        "format": "pbx-config", "version": 1,
        "extensions": [{"number": "101", "first_name": "Ann"}],
        "ring_groups": [{"number": "600", "name": "Sales", "members": ["101"]}],
        "queues": [{"number": "700", "description": "Support", "dynamic_agents": true, "login_code": "7001", "logout_code": "7002"}],
        "conferences": [{"number": "800", "description": "Board room"}],
        "auto_attendants": [{"number": "500", "description": "Main menu", "start": "main",
            "menus": [{"name": "main", "announcement": "hello-world", "playbacks": 1, "timeout_seconds": 3,
                       "default_action": {"action": "hang_up"}, "keys": []}]}],
        "emergency": {"numbers": [{"number": "112", "description": "Emergency (EU)"}]},
        "parking": {"slots": ["71"]},
        "sip_interfaces": [{"name": "telco", "host": "192.0.2.5"}],
        "links": [{"name": "branch", "description": "Brno office", "prefix": "8", "host": "192.0.2.9"}],
        "outbound_routes": [{"prefix": "0", "description": "Out to the world", "interfaces": ["telco"]}]
    }))
    .map_err(|e| e.to_string())
    .unwrap();
    rig.cfg
        .change("test", "dial plan types", 0, move |c| {
            let users = std::mem::take(&mut c.users);
            *c = cfg;
            c.users = users;
            Ok(())
        })
        .unwrap();
    let csv = rig.call(&admin, "GET", "/admin/dialplan.csv", None).await;
    for line in [
        "101,1,Ann",
        "600,2,Sales",
        "800,3,Board room",
        "500,4,Main menu",
        "700,5,Support",
        "7001,9,Agent login: Support",
        "112,6,Emergency (EU)",
        "0<number>,7,Out to the world",
        "8<number>,8,link branch: Brno office",
        "71,9,\"Parking slot",
    ] {
        assert!(csv.text.contains(line), "{line} not in:\n{}", csv.text);
    }
    let api = rig.call(&admin, "GET", "/api/v1/dialplan", None).await;
    assert!(api.text.contains("\"emergency number\""), "{}", api.text);
}

/// The scheduled tasks (Kerio 27.5) from the configuration, on the API and the Status
/// page (issue 21.6).
#[tokio::test]
async fn scheduled_tasks_are_listed() {
    let rig = rig();
    let (admin, _, _) = rig.populated().await;
    let a = rig
        .call(
            &admin,
            "PUT",
            "/api/v1/system/backup-schedule",
            Some(serde_json::json!({"every": "daily", "hour": 3, "parts": ["config"], "keep": 4})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let t = rig.call(&admin, "GET", "/api/v1/status/tasks", None).await;
    assert_eq!(t.status, 200, "{}", t.text);
    let v: serde_json::Value = serde_json::from_str(&t.text).unwrap();
    let backup = &v[0];
    assert_eq!(backup["task"], "backup");
    assert_eq!(backup["state"], "on");
    assert!(
        backup["schedule"]
            .as_str()
            .unwrap()
            .starts_with("every day from 03:00; the newest 4 kept (config)"),
        "{backup}"
    );
    assert_eq!(v[1]["task"], "directory synchronisation");
    assert_eq!(v[1]["state"], "off");
    assert_eq!(v[2]["task"], "log rotation");
    // A restart of the phones set for later (Kerio 10.5) is a task too; the
    // provisioning tests show it outlives a restart.
    let r = rig
        .call(
            &admin,
            "POST",
            "/api/v1/provisioning/restart",
            Some(serde_json::json!({"at": 4_102_444_800u64})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = rig.call(&admin, "GET", "/api/v1/status/tasks", None).await;
    let v: serde_json::Value = serde_json::from_str(&t.text).unwrap();
    let restart = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "phone restart")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(restart["state"], "pending");
    assert_eq!(
        restart["schedule"],
        "at 2100-01-01 00:00:00 UTC: all provisioned phones"
    );
    let page = rig.call(&admin, "GET", "/admin/status", None).await;
    assert!(page.text.contains("id=\"tasks\""), "{}", page.text);
    assert!(page.text.contains("every day from 03:00"), "{}", page.text);
    assert!(page.text.contains("phone restart"), "{}", page.text);
}
