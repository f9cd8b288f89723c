//! The test rig shared by the web tests: a web app on a fresh store, driven through the
//! same warp filter the HTTPS server runs, with the exchange answering like an idle box.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use warp::Filter;

pub const ADMIN_PW: &str = "Adm1n-Secret!";
pub const PW: &str = "Us3r-Secret!x";

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    pub cfg: Arc<store::Configurator>,
}

/// A web app on a fresh store; the exchange side answers like an idle box.
pub fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    let cfg = Arc::new(store::Configurator::new(
        store,
        Arc::new(config::Snapshot::default()),
    ));
    let (tx, mut rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            match r {
                web::CoreRequest::Registrations(t)
                | web::CoreRequest::Calls(t)
                | web::CoreRequest::Conferences(t)
                | web::CoreRequest::Queues(t)
                | web::CoreRequest::Bans(t)
                | web::CoreRequest::Lamps(t)
                | web::CoreRequest::Parked(t) => {
                    let _ = t.send(json!([]));
                }
                web::CoreRequest::HangUp(_, t)
                | web::CoreRequest::ConferenceMute(_, _, _, t)
                | web::CoreRequest::ConferenceKick(_, _, t)
                | web::CoreRequest::LiftBan(_, _, t)
                | web::CoreRequest::QueueLogin(_, _, _, t) => {
                    let _ = t.send(false);
                }
                web::CoreRequest::WebPhoneGrant(_, g, t) => {
                    let _ = t.send((g.secret, true));
                }
                web::CoreRequest::Resync(targets, t) => {
                    let _ = t.send(targets.len());
                }
                web::CoreRequest::Spans(t) => {
                    let _ = t.send(json!({"telco": {"link_up": false, "calls": 0,
                        "channels_busy": [], "alarm": "alarm: red (no signal or no frame sync)",
                        "detail": "T200 expired"}}));
                }
                web::CoreRequest::Peers(t) => {
                    let _ = t.send(json!([{"name": "sipgate", "kind": "interface", "registration": "registered"}]));
                }
                web::CoreRequest::MailboxChanged(_)
                | web::CoreRequest::MusicChanged
                | web::CoreRequest::TrustChanged
                | web::CoreRequest::Restart => {}
            }
        }
    });
    let app = web::App::new(
        cfg.clone(),
        tx,
        web::Settings {
            idle_timeout: Duration::from_secs(600),
            version: "test".into(),
            data_dir: dir.path().to_path_buf(),
            root: Some({
                // A scratch system root holding the real zoneinfo, for the time settings.
                let root = dir.path().join("root");
                std::fs::create_dir_all(root.join("usr/share")).unwrap();
                std::os::unix::fs::symlink("/usr/share/zoneinfo", root.join("usr/share/zoneinfo"))
                    .unwrap();
                root
            }),
            firewall_confirm: web::firewall::CONFIRM_WINDOW,
            board: "test".into(),
            recovery: None,
            logs: logs::Logs::start(&dir.path().join("logs")),
            tcpdump: "tcpdump".into(),
            network_confirm: web::network::CONFIRM_WINDOW,
            dahdi_sys: dir.path().join("sys"),
        },
        Arc::new(provision::Provisioner::new(cfg.clone(), 5060, dir.path())),
        // Tests put a program standing in for RAUC at <dir>/rauc when they need one.
        system::update::Updater::new(system::update::UpdateSettings {
            rauc: dir.path().join("rauc"),
            reboot: vec!["true".into()],
            reboot_delay: Duration::from_millis(10),
            timeout: Duration::from_secs(60),
        }),
    );
    Rig {
        dir,
        filter: web::routes(app).boxed(),
        cfg,
    }
}

/// A logged-in client: cookie and CSRF token.
#[derive(Clone, Default)]
pub struct Who {
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: warp::http::HeaderMap,
}

impl Rig {
    /// Sends one request: `body` is (content type, text); `extra` adds headers.
    pub async fn raw(
        &self,
        who: &Who,
        method: &str,
        path: &str,
        body: Option<(&str, String)>,
        extra: &[(&str, &str)],
        from: &str,
    ) -> Answer {
        let mut r = warp::test::request()
            .method(method)
            .path(path)
            .header("host", "127.0.0.1:4021")
            .remote_addr(format!("{from}:40000").parse::<SocketAddr>().unwrap());
        if let Some(c) = &who.cookie {
            r = r.header("cookie", format!("pbx_session={c}"));
        }
        if let Some(t) = &who.csrf {
            r = r.header("x-csrf-token", t);
        }
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        if let Some((ctype, b)) = body {
            r = r.header("content-type", ctype).body(b);
        }
        let resp = r.reply(&self.filter).await;
        let text = String::from_utf8_lossy(resp.body()).to_string();
        Answer {
            status: resp.status().as_u16(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            headers: resp.headers().clone(),
        }
    }

    pub async fn req(
        &self,
        who: &Who,
        method: &str,
        path: &str,
        body: Option<Value>,
        from: &str,
    ) -> Answer {
        let body = body.map(|b| ("application/json", b.to_string()));
        self.raw(who, method, path, body, &[], from).await
    }

    pub async fn call(&self, who: &Who, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.req(who, method, path, body, "127.0.0.1").await
    }

    pub async fn login(&self, user: &str, pw: &str) -> Who {
        let a = self
            .call(
                &Who::default(),
                "POST",
                "/api/v1/login",
                Some(json!({"username": user, "password": pw})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let set = a.headers["set-cookie"].to_str().unwrap().to_string();
        for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(set.contains(flag), "cookie lacks {flag}: {set}");
        }
        let cookie = set
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        Who {
            cookie: Some(cookie),
            csrf: Some(a.body["csrf_token"].as_str().unwrap().to_string()),
        }
    }

    /// Admin, an auditor, a user; extension 101 with an account.
    pub async fn populated(&self) -> (Who, Who, Who) {
        let a = self
            .call(
                &Who::default(),
                "POST",
                "/api/v1/setup",
                Some(json!({"password": ADMIN_PW})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        let admin = self.login("Admin", ADMIN_PW).await;
        assert_eq!(
            self.call(
                &admin,
                "POST",
                "/api/v1/extensions",
                Some(json!({"number": "101", "first_name": "Ann"}))
            )
            .await
            .status,
            201
        );
        assert_eq!(
            self.call(
                &admin,
                "POST",
                "/api/v1/extensions/101/accounts",
                Some(json!({}))
            )
            .await
            .status,
            201
        );
        for (u, role) in [("audrey", "auditor"), ("ursula", "user")] {
            let a = self
                .call(
                    &admin,
                    "POST",
                    "/api/v1/users",
                    Some(json!({"username": u, "password": PW, "role": role})),
                )
                .await;
            assert_eq!(a.status, 201, "{}", a.text);
        }
        let a = self
            .call(
                &admin,
                "PUT",
                "/api/v1/users/ursula",
                Some(json!({"extensions": ["101"]})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        (
            admin,
            self.login("audrey", PW).await,
            self.login("ursula", PW).await,
        )
    }
}
