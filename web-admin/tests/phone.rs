//! The browser phone's server side against a real SQLite store (in memory), driven with
//! tower's `oneshot`: login with the extension's SIP password (wrong ones counted by the
//! guard, an admin session no phone login and the other way round), the directory with
//! presence from the live state, the extension's own calls, its voicemail and audio (another
//! mailbox's message refused), logout with its CSRF token.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use pbx_store::{
    AdminStore, Binding, CdrStore, ExtensionStore, MailboxStore, NewExtension, Store, StoreError,
    Transport,
};
use pbx_web_admin::clock::ManualClock;
use pbx_web_admin::live::{
    Live, LiveCall, LoginGuard, LoginRefusal, LoginSettled, LoginTicket, MailHealth, SecurityEvent,
};
use pbx_web_admin::{AdminState, Settings};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;

/// Extension 1002 is registered; 1003 is in a call.
struct FakeLive;

#[async_trait]
impl Live for FakeLive {
    fn registrations(&self, now: u64) -> Vec<Binding> {
        let rule = pbx_sip_binding(now);
        vec![Binding {
            aor: "1002".into(),
            binding: rule,
            transport: Transport::Ws,
            source: "127.0.0.1:40000".parse().expect("addr"),
            local: "127.0.0.1:8080".parse().expect("addr"),
            conn: Some(1),
            user_agent: "browser".into(),
            reachable: None,
        }]
    }
    fn contexts(&self) -> Option<Vec<String>> {
        None
    }
    async fn reload_dialplan(&self) -> Result<(), Vec<String>> {
        Ok(())
    }
    async fn check_dialplan(
        &self,
        path: &std::path::Path,
        text: &str,
    ) -> Result<std::sync::Arc<pbx_dialplan::Plan>, Vec<pbx_web_admin::dialplan_file::Problem>>
    {
        pbx_web_admin::dialplan_file::parse(path, text)
    }
    async fn lift_ban(&self, _: IpAddr) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn calls(&self) -> Vec<LiveCall> {
        vec![LiveCall {
            id: "c1".into(),
            call_id: "x".into(),
            caller: "1003".into(),
            called: "600".into(),
            started_at: T0,
            answered_at: Some(T0),
            codec: None,
            caller_encrypted: false,
            callee_encrypted: false,
        }]
    }
    fn hang_up(&self, _: &str) -> bool {
        false
    }
    fn sip_running(&self) -> bool {
        true
    }
    fn dialplan_file(&self) -> Option<PathBuf> {
        None
    }
    fn mailbox_changed(&self, _: &str) {}
    fn security_events(&self, _: usize) -> Vec<SecurityEvent> {
        Vec::new()
    }
    fn mail_health(&self) -> Option<MailHealth> {
        None
    }
}

/// A registrar binding that lives an hour from `now`.
fn pbx_sip_binding(now: u64) -> pbx_sip::registrar::Binding {
    let request = "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\n\
        From: <sip:1002@pbx.test>;tag=a\r\nTo: <sip:1002@pbx.test>\r\nCall-ID: r1\r\n\
        CSeq: 1 REGISTER\r\nContact: <sip:x@a.invalid;transport=ws>\r\nExpires: 3600\r\n\
        Content-Length: 0\r\n\r\n";
    let Ok(pbx_sip::message::Message::Request(request)) =
        pbx_sip::parse::parse_message(bytes::Bytes::from_static(request.as_bytes()))
    else {
        panic!("a REGISTER");
    };
    let plan = pbx_sip::registrar::process_register(
        now,
        &request,
        &[],
        &pbx_sip::registrar::RegistrarPolicy::default(),
    )
    .expect("plan");
    match plan.changes.into_iter().next() {
        Some(pbx_sip::registrar::BindingChange::Upsert(b)) => b,
        _ => panic!("an upsert"),
    }
}

/// Three failures from one address ban it.
#[derive(Default)]
struct FakeGuard {
    failures: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

struct FakeTicket {
    ip: IpAddr,
    failures: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl LoginGuard for FakeGuard {
    fn admit(&self, source: IpAddr) -> Result<Box<dyn LoginTicket>, LoginRefusal> {
        let map = self.failures.lock().map_err(|_| LoginRefusal::Busy)?;
        if map.get(&source).is_some_and(|n| *n >= 3) {
            return Err(LoginRefusal::Banned);
        }
        Ok(Box::new(FakeTicket {
            ip: source,
            failures: self.failures.clone(),
        }))
    }
}

#[async_trait]
impl LoginTicket for FakeTicket {
    async fn settle(self: Box<Self>, ok: bool) -> LoginSettled {
        if ok {
            return LoginSettled::Accepted;
        }
        let Ok(mut map) = self.failures.lock() else {
            return LoginSettled::Banned;
        };
        let n = map.entry(self.ip).or_default();
        *n += 1;
        if *n >= 3 {
            LoginSettled::RejectedAndBanned
        } else {
            LoginSettled::Rejected
        }
    }
}

struct App {
    router: Router,
    store: Arc<Store>,
    storage: PathBuf,
}

async fn app() -> App {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let store = Arc::new(Store::open("sqlite::memory:").await.expect("store"));
    store
        .create_admin("admin", "Adm1n-secret")
        .await
        .expect("admin");
    for (number, name) in [("1001", "Alice"), ("1002", "Bob"), ("1003", "Carol")] {
        store
            .add_extension(
                "pbx.test",
                NewExtension {
                    number: number.into(),
                    password: format!("pw{number}"),
                    name: Some(name.into()),
                    ..NewExtension::default()
                },
            )
            .await
            .expect("extension");
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let storage = std::env::temp_dir().join(format!("pbx-phone-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&storage);
    std::fs::create_dir_all(&storage).expect("storage");
    let listeners: Vec<(Transport, SocketAddr)> =
        vec![(Transport::Udp, "127.0.0.1:5060".parse().expect("addr"))];
    let mut settings = Settings::new("pbx.test", listeners);
    settings.voicemail_storage = Some(storage.clone());
    let state = AdminState::new(
        store.clone(),
        Arc::new(FakeLive),
        Arc::new(FakeGuard::default()),
        settings,
    )
    .with_clock(Arc::new(ManualClock::new(T0)));
    App {
        router: pbx_web_admin::router(Arc::new(state)),
        store,
        storage,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|kv| kv.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

impl App {
    async fn send(&self, ip: &str, mut req: Request<Body>) -> Reply {
        let peer: SocketAddr = format!("{ip}:40000").parse().expect("peer");
        req.extensions_mut().insert(ConnectInfo(peer));
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn login(&self, ip: &str, extension: &str, password: &str) -> Reply {
        let body = serde_json::json!({ "extension": extension, "password": password });
        let req = Request::post("/phone/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(ip, req).await
    }

    async fn get(&self, path: &str, cookie: &str) -> Reply {
        let req = Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("request");
        self.send("192.0.2.10", req).await
    }
}

#[tokio::test]
async fn login_with_the_sip_password_and_logout_with_the_csrf_token() {
    let app = app().await;
    let wrong = app.login("192.0.2.10", "1001", "nope").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "wrong extension or password");
    let unknown = app.login("192.0.2.10", "9999", "pw9999").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "no enumeration");
    assert_eq!(unknown.json()["error"], "wrong extension or password");

    let ok = app.login("192.0.2.10", "1001", "pw1001").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let me = ok.json();
    assert_eq!(me["extension"], "1001");
    assert_eq!(me["name"], "Alice");
    assert_eq!(me["domain"], "pbx.test");
    let csrf = me["csrf"].as_str().expect("csrf").to_string();
    let cookie = ok.cookie("pbx_phone").expect("phone cookie");
    let set = ok.headers[header::SET_COOKIE].to_str().expect("ascii");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );

    assert_eq!(
        app.get("/phone/api/me", &cookie).await.json()["extension"],
        "1001"
    );
    // A phone login is no admin session, and an admin page does not take it.
    let admin = app.get("/extensions", &cookie).await;
    assert_ne!(admin.status, StatusCode::OK);
    assert_eq!(
        app.get("/phone/api/me", "").await.status,
        StatusCode::UNAUTHORIZED
    );

    let logout = |token: Option<&str>| {
        let mut req = Request::post("/phone/logout").header(header::COOKIE, &cookie);
        if let Some(token) = token {
            req = req.header("X-CSRF-Token", token);
        }
        req.body(Body::empty()).expect("request")
    };
    let refused = app.send("192.0.2.10", logout(None)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = app.send("192.0.2.10", logout(Some("0123"))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = app.send("192.0.2.10", logout(Some(&csrf))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/phone/api/me", &cookie).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_passwords_ban_the_source_like_sip() {
    let app = app().await;
    for _ in 0..2 {
        let r = app.login("192.0.2.66", "1001", "guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let third = app.login("192.0.2.66", "1001", "guess").await;
    assert_eq!(third.status, StatusCode::FORBIDDEN);
    let right = app.login("192.0.2.66", "1001", "pw1001").await;
    assert_eq!(
        right.status,
        StatusCode::FORBIDDEN,
        "banned, even with the password"
    );
    let elsewhere = app.login("192.0.2.67", "1001", "pw1001").await;
    assert_eq!(elsewhere.status, StatusCode::OK);
}

#[tokio::test]
async fn the_directory_shows_presence_and_searches() {
    let app = app().await;
    let cookie = app
        .login("192.0.2.10", "1001", "pw1001")
        .await
        .cookie("pbx_phone")
        .expect("cookie");
    let all = app.get("/phone/api/directory", &cookie).await.json();
    let rows = all.as_array().expect("a list");
    assert_eq!(rows.len(), 3);
    let presence = |number: &str| {
        rows.iter()
            .find(|r| r["number"] == number)
            .map(|r| r["presence"].clone())
    };
    assert_eq!(presence("1001"), Some("offline".into()));
    assert_eq!(presence("1002"), Some("online".into()));
    assert_eq!(presence("1003"), Some("on_the_phone".into()));
    let found = app.get("/phone/api/directory?q=car", &cookie).await.json();
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(found[0]["name"], "Carol");
    assert_eq!(
        app.get("/phone/api/directory", "").await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn cdr(caller: &str, called: &str, at: u64) -> pbx_store::NewCdr {
    pbx_store::NewCdr {
        call_id: format!("{caller}-{called}-{at}"),
        caller: caller.into(),
        called: called.into(),
        started_at: at,
        answered_at: Some(at + 2),
        ended_at: at + 30,
        duration_secs: 28,
        disposition: "answered".into(),
        hangup_cause: "normal".into(),
        hangup_side: "caller".into(),
        codec: Some("PCMU".into()),
        caller_encrypted: false,
        callee_encrypted: false,
        trunk: String::new(),
    }
}

#[tokio::test]
async fn calls_and_voicemail_are_the_extensions_own() {
    let app = app().await;
    app.store
        .insert_cdrs(&[
            cdr("1001", "1002", T0 - 300),
            cdr("1003", "1001", T0 - 200),
            cdr("1002", "1003", T0 - 100),
        ])
        .await
        .expect("cdrs");
    let mut ids = Vec::new();
    for (mailbox, body) in [("1001", "RIFF mine"), ("1002", "RIFF not mine")] {
        let path = app.storage.join(format!("{mailbox}.wav"));
        std::fs::write(&path, body).expect("wav");
        let id = app
            .store
            .add_message(&pbx_store::NewMessage {
                mailbox: mailbox.into(),
                caller_number: "1003".into(),
                caller_name: "Carol".into(),
                received_at: T0 - 50,
                duration_ms: 3000,
                path: path.to_string_lossy().into_owned(),
            })
            .await
            .expect("message");
        ids.push(id);
    }
    let cookie = app
        .login("192.0.2.10", "1001", "pw1001")
        .await
        .cookie("pbx_phone")
        .expect("cookie");

    let calls = app.get("/phone/api/calls", &cookie).await.json();
    let calls = calls.as_array().expect("a list");
    assert_eq!(calls.len(), 2, "not 1002's call to 1003: {calls:?}");
    assert_eq!(calls[0]["caller"], "1003", "newest first");
    assert_eq!(calls[0]["direction"], "in");
    assert_eq!(calls[1]["direction"], "out");

    let messages = app.get("/phone/api/voicemail", &cookie).await.json();
    let messages = messages.as_array().expect("a list");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["caller_name"], "Carol");
    assert_eq!(messages[0]["folder"], "new");
    let audio = messages[0]["audio"].as_str().expect("audio").to_string();
    let played = app.get(&audio, &cookie).await;
    assert_eq!(played.status, StatusCode::OK);
    assert_eq!(played.body, "RIFF mine");
    assert_eq!(played.headers[header::CONTENT_TYPE], "audio/wav");
    // 1002's message by its id: as good as none.
    let theirs = app
        .get(&format!("/phone/api/voicemail/{}/audio", ids[1]), &cookie)
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(!theirs.body.contains("not mine"));
    assert_eq!(
        app.get(&audio, "").await.status,
        StatusCode::UNAUTHORIZED,
        "no audio without a login"
    );
}

/// The `/assets/HASH/NAME` URLs a page names, in order.
fn asset_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_phone_page_and_its_assets_are_served_from_the_binary() {
    let app = app().await;
    // No login needed: the page itself holds nothing about anyone.
    let page = app.get("/phone", "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(page.body.contains(r#"id="login-form""#));

    let urls = asset_urls(&page.body);
    for name in [
        "app.css",
        "phone.css",
        "phone.js",
        "sip.min.js",
        "sip.js-LICENSE.md",
    ] {
        assert!(
            urls.iter().any(|u| u.ends_with(&format!("/{name}"))),
            "{name} not in {urls:?}"
        );
    }
    for url in &urls {
        let asset = app.get(url, "").await;
        assert_eq!(asset.status, StatusCode::OK, "{url}");
        assert_eq!(
            asset.headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        if url.ends_with(".js") {
            assert_eq!(
                asset.headers[header::CONTENT_TYPE],
                "text/javascript; charset=utf-8"
            );
        }
    }
    let sip = urls
        .iter()
        .find(|u| u.ends_with("/sip.min.js"))
        .expect("sip.js");
    // The page script imports SIP.js from the URL in `data-sip` (an ES module bundle).
    assert!(page.body.contains(&format!(r#"data-sip="{sip}""#)));
    let bundle = app.get(sip, "").await;
    assert!(bundle.body.contains("UserAgent") && bundle.body.contains("export{"));
    let licence = urls
        .iter()
        .find(|u| u.ends_with("/sip.js-LICENSE.md"))
        .expect("licence");
    assert!(app.get(licence, "").await.body.contains("MIT"));
}
