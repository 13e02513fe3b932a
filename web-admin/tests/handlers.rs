//! The web admin's handlers against a real SQLite store (in memory), driven with tower's
//! `oneshot`: login, CSRF refusals, session expiry on an injected clock, the login's ban
//! rules, the extension pages, provisioning links, and the API (401 without a token on every
//! path of its own OpenAPI document, JSON errors naming the field).

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
use md5::{Digest, Md5};
use pbx_store::{
    AdminStore, AuditStore, BanStore, Binding, CredentialStore, ExtensionStore, NewExtension,
    Store, StoreError, Transport, TrunkStatus, TrunkStore,
};
use pbx_web_admin::clock::ManualClock;
use pbx_web_admin::live::{
    Live, LiveCall, LoginGuard, LoginRefusal, LoginSettled, LoginTicket, MailHealth, SecurityEvent,
    SecurityKind,
};
use pbx_web_admin::{AdminState, Settings};
use tower::ServiceExt;

const T0: u64 = 1_800_000_000;
const ADMIN_PW: &str = "Adm1n-secret";

/// The live state: no device registered, two contexts, bans lifted in the store, the calls
/// a test puts in, and a dialplan file of the test's own.
struct FakeLive {
    store: Arc<Store>,
    calls: Arc<Mutex<Vec<LiveCall>>>,
    hung_up: Arc<Mutex<Vec<String>>>,
    dialplan: PathBuf,
    reloads: Arc<AtomicUsize>,
    changed: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Vec<SecurityEvent>>>,
    mail: Arc<Mutex<Option<MailHealth>>>,
}

#[async_trait]
impl Live for FakeLive {
    fn registrations(&self, _: u64) -> Vec<Binding> {
        Vec::new()
    }
    fn contexts(&self) -> Option<Vec<String>> {
        Some(vec!["staff".into(), "lobby".into()])
    }
    async fn reload_dialplan(&self) -> Result<(), Vec<String>> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
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
    async fn lift_ban(&self, addr: IpAddr) -> Result<bool, StoreError> {
        self.store.remove_ban(addr).await
    }
    fn calls(&self) -> Vec<LiveCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
    fn hang_up(&self, id: &str) -> bool {
        let Ok(mut calls) = self.calls.lock() else {
            return false;
        };
        let before = calls.len();
        calls.retain(|c| c.id != id);
        if calls.len() == before {
            return false;
        }
        self.hung_up.lock().map(|mut h| h.push(id.into())).is_ok()
    }
    fn sip_running(&self) -> bool {
        true
    }
    fn dialplan_file(&self) -> Option<PathBuf> {
        Some(self.dialplan.clone())
    }
    fn mailbox_changed(&self, mailbox: &str) {
        if let Ok(mut c) = self.changed.lock() {
            c.push(mailbox.to_string());
        }
    }
    fn security_events(&self, limit: usize) -> Vec<SecurityEvent> {
        self.events
            .lock()
            .map(|e| e.iter().take(limit).cloned().collect())
            .unwrap_or_default()
    }
    fn mail_health(&self) -> Option<MailHealth> {
        self.mail.lock().ok().and_then(|m| m.clone())
    }
}

/// The dialplan each test app starts with.
const PLAN: &str = r#"# The office plan.
[defaults]
context = "staff"

[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.lobby]
members = ["4900-4999"]
may_call = ["4001", "staff"]   # reception and staff only
include = ["staff"]
"#;

/// A folder of its own for each test app's dialplan.
fn plan_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pbx-web-handlers-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The guard's rules in small: `limit` failures ban the source.
struct FakeGuard {
    limit: u32,
    state: Arc<Mutex<HashMap<IpAddr, (u32, bool)>>>,
}

struct FakeTicket {
    ip: IpAddr,
    limit: u32,
    state: Arc<Mutex<HashMap<IpAddr, (u32, bool)>>>,
}

impl LoginGuard for FakeGuard {
    fn admit(&self, source: IpAddr) -> Result<Box<dyn LoginTicket>, LoginRefusal> {
        let map = self.state.lock().map_err(|_| LoginRefusal::Busy)?;
        if map.get(&source).is_some_and(|(_, banned)| *banned) {
            return Err(LoginRefusal::Banned);
        }
        Ok(Box::new(FakeTicket {
            ip: source,
            limit: self.limit,
            state: self.state.clone(),
        }))
    }
}

#[async_trait]
impl LoginTicket for FakeTicket {
    async fn settle(self: Box<Self>, ok: bool) -> LoginSettled {
        let Ok(mut map) = self.state.lock() else {
            return LoginSettled::Banned;
        };
        let entry = map.entry(self.ip).or_default();
        if ok {
            return LoginSettled::Accepted;
        }
        entry.0 += 1;
        if entry.0 >= self.limit {
            entry.1 = true;
            LoginSettled::RejectedAndBanned
        } else {
            LoginSettled::Rejected
        }
    }
}

struct App {
    router: Router,
    clock: Arc<ManualClock>,
    store: Arc<Store>,
    token: String,
    calls: Arc<Mutex<Vec<LiveCall>>>,
    hung_up: Arc<Mutex<Vec<String>>>,
    dialplan: PathBuf,
    reloads: Arc<AtomicUsize>,
    /// The mailboxes the handlers told the PBX about.
    changed: Arc<Mutex<Vec<String>>>,
    /// `[voicemail] storage`.
    storage: PathBuf,
    /// What the PBX reports as its recent security events, newest first.
    events: Arc<Mutex<Vec<SecurityEvent>>>,
    /// What the PBX reports of its mail; `None`: no `[smtp]`.
    mail: Arc<Mutex<Option<MailHealth>>>,
}

async fn app() -> App {
    let store = Arc::new(Store::open("sqlite::memory:").await.expect("store"));
    store.create_admin("admin", ADMIN_PW).await.expect("admin");
    let token = store.create_token("admin").await.expect("token");
    let clock = Arc::new(ManualClock::new(T0));
    let listeners: Vec<(Transport, SocketAddr)> = vec![
        // A browsers' listener first: provisioning must never hand it to a softphone.
        (Transport::Ws, "127.0.0.1:5066".parse().expect("addr")),
        (Transport::Udp, "127.0.0.1:5060".parse().expect("addr")),
        (Transport::Tls, "127.0.0.1:5061".parse().expect("addr")),
    ];
    let calls: Arc<Mutex<Vec<LiveCall>>> = Arc::default();
    let hung_up: Arc<Mutex<Vec<String>>> = Arc::default();
    let reloads: Arc<AtomicUsize> = Arc::default();
    let dir = plan_dir();
    let dialplan = dir.join("dialplan.toml");
    std::fs::write(&dialplan, PLAN).expect("dialplan");
    let storage = dir.join("voicemail");
    std::fs::create_dir_all(&storage).expect("storage");
    let changed: Arc<Mutex<Vec<String>>> = Arc::default();
    let events: Arc<Mutex<Vec<SecurityEvent>>> = Arc::default();
    let mail: Arc<Mutex<Option<MailHealth>>> = Arc::default();
    let mut settings = Settings::new("pbx.test", listeners);
    settings.voicemail_storage = Some(storage.clone());
    let state = AdminState::new(
        store.clone(),
        Arc::new(FakeLive {
            store: store.clone(),
            calls: calls.clone(),
            hung_up: hung_up.clone(),
            dialplan: dialplan.clone(),
            reloads: reloads.clone(),
            changed: changed.clone(),
            events: events.clone(),
            mail: mail.clone(),
        }),
        Arc::new(FakeGuard {
            limit: 3,
            state: Arc::default(),
        }),
        settings,
    )
    .with_clock(clock.clone());
    App {
        router: pbx_web_admin::router(Arc::new(state)),
        clock,
        store,
        token,
        calls,
        hung_up,
        dialplan,
        reloads,
        changed,
        storage,
        events,
        mail,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `name=value` of a Set-Cookie for `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|kv| kv.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..at + 64].to_string()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl App {
    async fn send(&self, req: Request<Body>) -> Reply {
        self.send_from("192.0.2.10", req).await
    }

    async fn send_from(&self, ip: &str, mut req: Request<Body>) -> Reply {
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

    async fn get(&self, path: &str, cookie: &str) -> Reply {
        let req = Request::get(path)
            .header(header::COOKIE, cookie)
            .header(header::HOST, "pbx.example:8080")
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    async fn post_form(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Reply {
        self.post_form_from("192.0.2.10", path, cookie, form).await
    }

    async fn post_form_from(
        &self,
        ip: &str,
        path: &str,
        cookie: &str,
        form: &[(&str, &str)],
    ) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        self.send_from(ip, req).await
    }

    /// Logs in; returns the session cookie (`pbx_session=...`).
    async fn login(&self) -> String {
        let page = self.get("/", "").await;
        let login_cookie = page.cookie("pbx_login_csrf").expect("login cookie");
        let r = self
            .post_form(
                "/login",
                &login_cookie,
                &[
                    ("user", "admin"),
                    ("password", ADMIN_PW),
                    ("csrf", &page.csrf()),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location(), "/");
        let set = r
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("pbx_session="))
            .expect("session cookie")
            .to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        r.cookie("pbx_session").expect("session cookie")
    }

    async fn api(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(body.map_or_else(Body::empty, |s| Body::from(s.to_string())))
            .expect("request");
        self.send(req).await
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn login_pages_and_logout() {
    let app = app().await;
    // Not logged in: the login page at /, every page sends there.
    let r = app.get("/", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Log in"));
    let r = app.get("/extensions", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");

    let session = app.login().await;
    // Logged in, / is the dashboard.
    let r = app.get("/", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<h1>Dashboard</h1>"), "{}", r.body);
    let r = app.get("/extensions", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No extensions yet"));

    let r = app
        .post_form("/logout", &session, &[("csrf", &r.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.cookie("pbx_session").is_some_and(|c| c == "pbx_session="));
    let r = app.get("/extensions", &session).await;
    assert_eq!(r.location(), "/");
}

#[tokio::test]
async fn wrong_password_is_refused_with_a_message() {
    let app = app().await;
    let page = app.get("/", "").await;
    let cookie = page.cookie("pbx_login_csrf").expect("cookie");
    let r = app
        .post_form(
            "/login",
            &cookie,
            &[
                ("user", "admin"),
                ("password", "nope"),
                ("csrf", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong user name or password"));
    assert!(r.cookie("pbx_session").is_none());
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    let app = app().await;
    // The login form: no token, a wrong one, or no cookie.
    let page = app.get("/", "").await;
    let cookie = page.cookie("pbx_login_csrf").expect("cookie");
    for (cookie, form) in [
        (
            cookie.as_str(),
            vec![("user", "admin"), ("password", ADMIN_PW)],
        ),
        (
            cookie.as_str(),
            vec![("user", "admin"), ("password", ADMIN_PW), ("csrf", "0")],
        ),
        (
            "",
            vec![("user", "admin"), ("password", ADMIN_PW), ("csrf", "x")],
        ),
    ] {
        let r = app.post_form("/login", cookie, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("security token"), "{}", r.body);
        assert!(r.cookie("pbx_session").is_none());
    }

    // Logged in: creating, editing, deleting and logging out all need the session's token.
    let session = app.login().await;
    let r = app
        .post_form("/extensions", &session, &[("number", "1000")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(app.store.list_extensions().await.expect("list").is_empty());
    add(&app, "1001").await;
    let r = app
        .post_form("/extensions/1001", &session, &[("name", "Mallory")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post_form("/extensions/1001/delete", &session, &[("csrf", "wrong")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.list_extensions().await.expect("list").len(), 1);
    let r = app.post_form("/logout", &session, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/extensions", &session).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions_end_when_idle_and_after_their_absolute_limit() {
    let app = app().await;
    let session = app.login().await;
    app.clock.advance(29 * 60);
    assert_eq!(
        app.get("/extensions", &session).await.status,
        StatusCode::OK
    );
    app.clock.advance(31 * 60);
    let r = app.get("/extensions", &session).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/?expired=1");
    assert!(
        app.get("/?expired=1", "")
            .await
            .body
            .contains("session has expired")
    );

    // Busy all day: still ends 12 h after login.
    let session = app.login().await;
    for _ in 0..(12 * 3) {
        app.clock.advance(20 * 60);
        let r = app.get("/extensions", &session).await;
        if r.status != StatusCode::OK {
            assert_eq!(r.location(), "/?expired=1");
            return;
        }
    }
    panic!("the session outlived its absolute limit");
}

#[tokio::test]
async fn htmx_requests_without_a_session_are_told_where_to_go() {
    let app = app().await;
    let req = Request::get("/extensions")
        .header("HX-Request", "true")
        .body(Body::empty())
        .expect("request");
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers.get("HX-Redirect").and_then(|v| v.to_str().ok()),
        Some("/")
    );
}

#[tokio::test]
async fn failed_logins_ban_the_source_even_for_the_right_password() {
    let app = app().await;
    let attacker = "198.51.100.7";
    let page = app.get("/", "").await;
    let cookie = page.cookie("pbx_login_csrf").expect("cookie");
    let csrf = page.csrf();
    let attempt = |password: &'static str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let app = &app;
        async move {
            app.post_form_from(
                attacker,
                "/login",
                &cookie,
                &[("user", "admin"), ("password", password), ("csrf", &csrf)],
            )
            .await
        }
    };
    assert_eq!(attempt("guess1").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("guess2").await.status, StatusCode::UNAUTHORIZED);
    let r = attempt("guess3").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("banned"));
    let r = attempt(ADMIN_PW).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("banned"));
    assert!(r.cookie("pbx_session").is_none());
    // Another address still logs in.
    app.login().await;
}

async fn add(app: &App, number: &str) {
    app.store
        .add_extension(
            "pbx.test",
            NewExtension {
                number: number.into(),
                password: "pw".into(),
                name: Some("Bob".into()),
                ..NewExtension::default()
            },
        )
        .await
        .expect("add");
}

#[tokio::test]
async fn create_an_extension_with_a_generated_password() {
    let app = app().await;
    let session = app.login().await;
    let form = app.get("/extensions/new", &session).await;
    assert_eq!(form.status, StatusCode::OK);
    let r = app
        .post_form(
            "/extensions",
            &session,
            &[
                ("csrf", &form.csrf()),
                ("number", "1000"),
                ("name", "Alice"),
                ("email", "alice@example.com"),
                ("pin", "4321"),
                ("media_encryption", "required"),
                ("allowed_networks", "10.0.0.0/8"),
                ("did", " +15551230001 "),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(
        form.body.contains("name=\"did\""),
        "the form has the DID field"
    );
    let at = r.body.find("id=\"password\">").expect("password shown") + 14;
    let password = &r.body[at..at + 20];
    // The password shown is the one the HA1 was made from.
    let creds = app
        .store
        .credentials("1000")
        .await
        .expect("store")
        .expect("credentials");
    let ha1 = hex::encode(Md5::digest(format!("1000:pbx.test:{password}").as_bytes()));
    assert_eq!(creds.ha1_md5, ha1);
    assert!(app.store.verify_pin("1000", "4321").await.expect("pin"));
    let ext = &app.store.list_extensions().await.expect("list")[0];
    assert_eq!(
        (
            ext.name.as_str(),
            ext.email.as_str(),
            ext.media_encryption.as_str()
        ),
        ("Alice", "alice@example.com", "required")
    );
    assert_eq!(ext.allowed_networks.len(), 1);
    assert_eq!(ext.did, "+15551230001", "trimmed");
    assert!(
        app.get("/extensions/1000", &session)
            .await
            .body
            .contains("value=\"+15551230001\""),
        "the edit form shows it"
    );
    // It is in the list, and searchable.
    let list = app.get("/extensions?q=alic", &session).await;
    assert!(list.body.contains("/extensions/1000"));
    let list = app.get("/extensions?q=zzz", &session).await;
    assert!(!list.body.contains("/extensions/1000"));
}

#[tokio::test]
async fn bad_fields_get_messages_next_to_them_and_nothing_is_saved() {
    let app = app().await;
    let session = app.login().await;
    let csrf = app.get("/extensions/new", &session).await.csrf();
    let r = app
        .post_form(
            "/extensions",
            &session,
            &[
                ("csrf", &csrf),
                ("number", "12ab"),
                ("email", "not an address"),
                ("pin", "12"),
                ("allowed_networks", "10.0.0.0/33"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for message in [
        "bad extension number",
        "bad e-mail address",
        "bad PIN",
        "bad network",
    ] {
        assert!(r.body.contains(message), "{message}: {}", r.body);
    }
    assert!(app.store.list_extensions().await.expect("list").is_empty());

    // A duplicate number is refused at the number field.
    add(&app, "1001").await;
    let r = app
        .post_form(
            "/extensions",
            &session,
            &[("csrf", &csrf), ("number", "1001")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already exists"));

    // Editing: a good name with a bad PIN and an unknown context changes nothing.
    let r = app
        .post_form(
            "/extensions/1001",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "Robert"),
                ("pin", "1"),
                ("media_encryption", "optional"),
                ("context", "nowhere"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("bad PIN") && r.body.contains("staff, lobby"),
        "{}",
        r.body
    );
    assert_eq!(
        app.store.list_extensions().await.expect("list")[0].name,
        "Bob"
    );

    let r = app
        .post_form(
            "/extensions/1001",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "Robert"),
                ("pin", ""),
                ("media_encryption", "off"),
                ("context", "lobby"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let ext = &app.store.list_extensions().await.expect("list")[0];
    assert_eq!(
        (
            ext.name.as_str(),
            ext.context.as_str(),
            ext.media_encryption.as_str()
        ),
        ("Robert", "lobby", "off")
    );
    assert!(
        app.get(r.location(), &session)
            .await
            .body
            .contains("Saved.")
    );

    // An unknown extension is a 404 page, not a failure.
    assert_eq!(
        app.get("/extensions/999", &session).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn delete_asks_first() {
    let app = app().await;
    let session = app.login().await;
    add(&app, "1001").await;
    let confirm = app.get("/extensions/1001/delete", &session).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Delete extension 1001?"));
    assert_eq!(app.store.list_extensions().await.expect("list").len(), 1);
    let r = app
        .post_form(
            "/extensions/1001/delete",
            &session,
            &[("csrf", &confirm.csrf())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.store.list_extensions().await.expect("list").is_empty());
    assert!(
        app.get(r.location(), &session)
            .await
            .body
            .contains("Extension 1001 deleted")
    );
}

#[tokio::test]
async fn list_pages() {
    let app = app().await;
    let session = app.login().await;
    let exts: Vec<NewExtension> = (0..60)
        .map(|i| NewExtension {
            number: format!("{}", 2000 + i),
            password: "pw".into(),
            ..NewExtension::default()
        })
        .collect();
    app.store
        .import_extensions("pbx.test", exts)
        .await
        .expect("import");
    let p1 = app.get("/extensions", &session).await;
    assert!(p1.body.contains("Page 1 of 3") && p1.body.contains("/extensions/2000\""));
    assert!(!p1.body.contains("/extensions/2025\""));
    let p3 = app.get("/extensions?page=3", &session).await;
    assert!(p3.body.contains("/extensions/2059\"") && !p3.body.contains("/extensions/2049\""));
    // Out of range or not a number: the nearest page, never an error.
    assert!(
        app.get("/extensions?page=99", &session)
            .await
            .body
            .contains("Page 3 of 3")
    );
    assert!(
        app.get("/extensions?page=x", &session)
            .await
            .body
            .contains("Page 1 of 3")
    );
}

#[tokio::test]
async fn provisioning_links_work_once_and_expire() {
    let app = app().await;
    let session = app.login().await;
    add(&app, "1001").await;
    let page = app.get("/extensions/1001/qr", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg"));
    assert!(
        page.body.contains(r#"<option value="udp""#)
            && !page.body.contains(r#"<option value="ws""#),
        "a softphone is offered UDP and TLS, never the browsers' WebSocket"
    );
    let at = page
        .body
        .find("http://pbx.example:8080/provision/")
        .expect("link")
        + 23;
    let path = page.body[at..at + 11 + 64].to_string();
    assert!(path.starts_with("/provision/"), "{path}");

    let xml = app.get(&path, "").await;
    assert_eq!(xml.status, StatusCode::OK);
    let creds = app
        .store
        .credentials("1001")
        .await
        .expect("store")
        .expect("creds");
    assert!(xml.body.contains(&format!(">{}</entry>", creds.ha1_md5)));
    // TLS is offered first, with SRTP (media_encryption optional over TLS).
    assert!(
        xml.body
            .contains("&lt;sip:127.0.0.1:5061;transport=tls&gt;"),
        "{}",
        xml.body
    );
    assert!(xml.body.contains(">srtp<"));

    let again = app.get(&path, "").await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("used already"));

    let sheet = app.get("/extensions/1001/welcome", &session).await;
    assert_eq!(sheet.status, StatusCode::OK);
    assert!(sheet.body.contains("<svg") && sheet.body.contains("pbx.test"));

    let udp = app.get("/extensions/1001/qr?transport=udp", &session).await;
    let at = udp.body.find("/provision/").expect("link");
    let path = udp.body[at..at + 11 + 64].to_string();
    app.clock.advance(24 * 3600);
    let late = app.get(&path, "").await;
    assert_eq!(late.status, StatusCode::GONE);
    assert!(late.body.contains("expired"));
    let unknown = app.get(&format!("/provision/{}", "0".repeat(64)), "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_cached_forever_under_their_hash() {
    let app = app().await;
    let page = app.get("/", "").await;
    let at = page.body.find("/assets/").expect("asset link");
    let end = page.body[at..].find('"').expect("end") + at;
    let r = app.get(&page.body[at..end], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=31536000, immutable")
    );
    let r = app.get("/assets/000000000000/htmx.min.js", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
    assert_eq!(
        app.get("/assets/x/nope.js", "").await.status,
        StatusCode::NOT_FOUND
    );
}

/// Walks the API's own OpenAPI document: every path and method, without a token or with a
/// wrong one, is 401 with a JSON error.
#[tokio::test]
async fn every_api_path_refuses_a_request_without_a_token() {
    let app = app().await;
    let doc = app.api("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 5, "{paths:?}");
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{number}", "1000")
            .replace("{address}", "192.0.2.1")
            .replace("{id}", "0-1")
            .replace("{name}", "carrier");
        for method in item.as_object().expect("methods").keys() {
            for auth in [None, Some("Bearer nope"), Some("Basic YWRtaW46eA==")] {
                let mut b = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&concrete);
                if let Some(auth) = auth {
                    b = b.header(header::AUTHORIZATION, auth);
                }
                let r = app.send(b.body(Body::empty()).expect("request")).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} {auth:?}"
                );
                assert!(r.json()["error"].is_string(), "{method} {path}: {}", r.body);
                checked += 1;
            }
        }
    }
    assert!(checked >= 27, "{checked}");
    // And a path the document does not know.
    let r = app
        .send(
            Request::get("/api/v1/nothing")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_extensions_round_trip_and_errors_name_the_field() {
    let app = app().await;
    let r = app
        .api(
            "POST",
            "/api/v1/extensions",
            Some(r#"{"number":"1000","password":"S3cret-pass","name":"Alice","email":"a@example.com","pin":"1234"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["extension"]["number"], "1000");
    assert!(r.json().get("password").is_none());
    assert_eq!(r.location(), "/api/v1/extensions/1000");

    // Without a password one is generated and returned once.
    let r = app
        .api("POST", "/api/v1/extensions", Some(r#"{"number":"1001"}"#))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["password"].as_str().map(str::len), Some(20));

    for (body, status, field) in [
        (r#"{"number":"1"}"#, 422, Some("number")),
        (r#"{"number":"1002","email":"nope"}"#, 422, Some("email")),
        (r#"{"number":"1002","pin":"12"}"#, 422, Some("pin")),
        (
            r#"{"number":"1002","media_encryption":"maybe"}"#,
            422,
            Some("media_encryption"),
        ),
        (
            r#"{"number":"1002","allowed_networks":["x"]}"#,
            422,
            Some("allowed_networks"),
        ),
        (r#"{"number":"1000"}"#, 409, Some("number")),
        (r#"{"numbr":"1002"}"#, 422, Some("numbr")),
        (r#"{"number":1002}"#, 422, None),
        (r#"{"number":"#, 400, None),
    ] {
        let r = app.api("POST", "/api/v1/extensions", Some(body)).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        let json = r.json();
        assert!(json["error"].is_string(), "{body}: {}", r.body);
        if let Some(field) = field {
            assert_eq!(json["field"], field, "{body}");
        }
    }
    // Not JSON at all.
    let req = Request::post("/api/v1/extensions")
        .header(header::AUTHORIZATION, format!("Bearer {}", app.token))
        .body(Body::from("number=1002"))
        .expect("request");
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json()["error"].is_string());
    assert_eq!(app.store.list_extensions().await.expect("list").len(), 2);

    let r = app
        .api("GET", "/api/v1/extensions?per_page=1&page=2", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.json();
    assert_eq!(
        (page["total"].as_u64(), page["items"][0]["number"].as_str()),
        (Some(2), Some("1001"))
    );
    assert_eq!(
        app.api("GET", "/api/v1/extensions?page=0", None)
            .await
            .json()["field"],
        "page"
    );
    assert_eq!(
        app.api("GET", "/api/v1/extensions?page=x", None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.api("GET", "/api/v1/extensions?q=alice", None)
            .await
            .json()["total"],
        1
    );

    let r = app
        .api(
            "PATCH",
            "/api/v1/extensions/1000",
            Some(r#"{"name":"Alicia","context":"staff"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.json()["name"].as_str(), r.json()["context"].as_str()),
        (Some("Alicia"), Some("staff"))
    );
    let r = app
        .api(
            "PATCH",
            "/api/v1/extensions/1000",
            Some(r#"{"name":"X","context":"mars"}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("context"))
    );
    // The DID: set, refused when malformed (nothing changes), cleared.
    let r = app
        .api(
            "PATCH",
            "/api/v1/extensions/1000",
            Some(r#"{"did":"+15551230001"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["did"], "+15551230001");
    let r = app
        .api(
            "PATCH",
            "/api/v1/extensions/1000",
            Some(r#"{"did":"555-12"}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("did"))
    );
    let r = app.api("GET", "/api/v1/extensions/1000", None).await;
    assert_eq!(r.json()["did"], "+15551230001");
    let r = app
        .api("PATCH", "/api/v1/extensions/1000", Some(r#"{"did":""}"#))
        .await;
    assert_eq!(r.json()["did"], "");
    let r = app
        .api("PATCH", "/api/v1/extensions/1000", Some(r#"{"pin":""}"#))
        .await;
    assert_eq!(r.json()["field"], "pin");
    assert_eq!(
        app.api("GET", "/api/v1/extensions/1000", None).await.json()["name"],
        "Alicia"
    );
    assert_eq!(
        app.api("PATCH", "/api/v1/extensions/9999", Some("{}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        app.api("DELETE", "/api/v1/extensions/1000", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api("DELETE", "/api/v1/extensions/1000", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api("GET", "/api/v1/extensions/1000", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn api_bans_list_and_lift() {
    let app = app().await;
    let addr: IpAddr = "203.0.113.9".parse().expect("addr");
    app.store
        .add_ban(addr, "too many failed authentications", T0 + 3600)
        .await
        .expect("ban");
    let r = app.api("GET", "/api/v1/bans", None).await;
    // The store filters by its own clock; the ban ends in the future either way.
    assert_eq!(r.json()[0]["address"], "203.0.113.9", "{}", r.body);
    let r = app.api("DELETE", "/api/v1/bans/not-an-ip", None).await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("address"))
    );
    assert_eq!(
        app.api("DELETE", "/api/v1/bans/203.0.113.9", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api("DELETE", "/api/v1/bans/203.0.113.9", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.api("GET", "/api/v1/registrations", None).await.body,
        "[]"
    );
}

fn cdr(i: u64, caller: &str, called: &str, disposition: &str) -> pbx_store::NewCdr {
    let started_at = T0 - 7200 + i * 60;
    pbx_store::NewCdr {
        call_id: format!("cdr-{i}"),
        caller: caller.into(),
        called: called.into(),
        started_at,
        answered_at: (disposition == "answered").then_some(started_at + 3),
        ended_at: started_at + 63,
        duration_secs: if disposition == "answered" { 60 } else { 0 },
        disposition: disposition.into(),
        hangup_cause: "BYE".into(),
        hangup_side: "caller".into(),
        codec: Some("PCMU/8000".into()),
        caller_encrypted: i.is_multiple_of(2),
        callee_encrypted: i.is_multiple_of(2),
        trunk: String::new(),
    }
}

/// 60 calls, one a minute over the last two hours: 1000 calls 1001, every fifth is busy, and
/// one from a caller whose name would be a spreadsheet formula.
async fn add_cdrs(app: &App) {
    use pbx_store::CdrStore;
    let mut all: Vec<_> = (0..60)
        .map(|i| {
            let disposition = if i % 5 == 0 { "busy" } else { "answered" };
            cdr(i, "1000", "1001", disposition)
        })
        .collect();
    all[59].caller = "=cmd|'/c calc'!A1".into();
    app.store.insert_cdrs(&all).await.expect("cdrs");
}

fn count(body: &str, needle: &str) -> usize {
    body.matches(needle).count()
}

#[tokio::test]
async fn call_records_are_searched_paged_and_exported() {
    let app = app().await;
    add_cdrs(&app).await;
    let session = app.login().await;

    // The newest 50, and a link to the older ones.
    let r = app.get("/cdrs", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(count(&r.body, "<td data-label=\"Started\">"), 50);
    let older = r
        .body
        .split("id=\"older\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an Older link")
        .replace("&amp;", "&");
    let r = app.get(&older, &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(count(&r.body, "<td data-label=\"Started\">"), 10);
    assert!(!r.body.contains("id=\"older\""), "the last page");
    assert!(r.body.contains("← Newest"));

    // Filters: disposition, extension, time range.
    let r = app.get("/cdrs?disposition=busy", &session).await;
    assert_eq!(count(&r.body, "<td data-label=\"Started\">"), 12);
    let r = app
        .get("/cdrs?extension=1001&disposition=busy", &session)
        .await;
    assert_eq!(count(&r.body, "<td data-label=\"Started\">"), 12);
    let r = app.get("/cdrs?extension=2000", &session).await;
    assert!(r.body.contains("No call matches."));
    let from = jiff::Timestamp::from_second((T0 - 7200 + 50 * 60) as i64)
        .expect("time")
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    let r = app.get(&format!("/cdrs?from={from}"), &session).await;
    assert_eq!(count(&r.body, "<td data-label=\"Started\">"), 10, "{from}");

    // Bad fields: a message next to each, a 400, no rows.
    let r = app
        .get(
            "/cdrs?from=yesterday&extension=1%200&disposition=lost",
            &session,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not a time"), "{}", r.body);
    assert!(r.body.contains("is not a number"));
    assert!(r.body.contains("is not a disposition"));
    assert!(!r.body.contains("<td data-label=\"Started\">"));

    // CSV: the header and every matching row, a formula defused; needs a session.
    let r = app.get("/cdrs.csv?disposition=answered", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv"))
    );
    let lines: Vec<&str> = r.body.lines().collect();
    assert!(lines[0].starts_with("id,call_id,caller,called,started_at"));
    assert_eq!(lines.len(), 1 + 48);
    assert!(r.body.contains(",'=cmd|'/c calc'!A1,1001,"), "{}", lines[1]);
    assert!(!r.body.contains(",=cmd"));
    let r = app.get("/cdrs.csv", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app.get("/cdrs.csv?disposition=lost", &session).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The API: the same search, paged by cursor, errors naming the field.
    let r = app.api("GET", "/api/v1/cdrs?per_page=25", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(25));
    assert_eq!(page["items"][0]["call_id"], "cdr-59");
    let mut seen = 25;
    let mut cursor = page["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let r = app
            .api("GET", &format!("/api/v1/cdrs?per_page=25&cursor={c}"), None)
            .await;
        let page = r.json();
        seen += page["items"].as_array().map_or(0, Vec::len);
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, 60);
    let r = app
        .api(
            "GET",
            &format!("/api/v1/cdrs?extension=1001&from={}", T0 - 7200 + 50 * 60),
            None,
        )
        .await;
    assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(10));
    let r = app.api("GET", "/api/v1/cdrs?disposition=lost", None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "disposition");
    let r = app.api("GET", "/api/v1/cdrs?per_page=0", None).await;
    assert_eq!(r.json()["field"], "per_page");
    let r = app.api("GET", "/api/v1/cdrs?cursor=abc", None).await;
    assert_eq!(r.json()["field"], "cursor");
}

fn live_call(id: &str, caller: &str, answered: bool) -> LiveCall {
    LiveCall {
        id: id.into(),
        call_id: format!("{id}@phone"),
        caller: caller.into(),
        called: "1001".into(),
        started_at: T0 - 95,
        answered_at: answered.then_some(T0 - 65),
        codec: answered.then(|| "PCMA/8000".to_string()),
        caller_encrypted: answered,
        callee_encrypted: answered,
    }
}

#[tokio::test]
async fn live_calls_show_and_hang_up() {
    let app = app().await;
    let session = app.login().await;
    let r = app.get("/calls", &session).await;
    assert!(r.body.contains("Nobody is on the phone"));

    if let Ok(mut calls) = app.calls.lock() {
        calls.push(live_call("0-1", "1000", true));
        calls.push(live_call("1-4", "1002", false));
    }
    let r = app.get("/calls", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(count(&r.body, "<tr data-call="), 2);
    assert!(r.body.contains("PCMA/8000"));
    assert!(r.body.contains("1:05"), "answered 65 s ago");
    assert!(r.body.contains("both legs") && r.body.contains("ringing"));

    // Hang-up: a form with its token; without it, refused and the call stays.
    let r = app.post_form("/calls/0-1/hangup", &session, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.calls().len(), 2);
    let csrf = app.get("/calls", &session).await.csrf();
    let r = app
        .post_form("/calls/0-1/hangup", &session, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/calls?ended=0-1");
    assert_eq!(
        app.hung_up.lock().map(|h| h.clone()).unwrap_or_default(),
        ["0-1"]
    );
    let r = app
        .post_form("/calls/0-1/hangup", &session, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("not in progress any more"));

    // The API.
    let r = app.api("GET", "/api/v1/calls", None).await;
    let calls = r.json();
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    assert_eq!(calls[0]["id"], "1-4");
    assert_eq!(calls[0]["state"], "ringing");
    assert_eq!(
        app.api("DELETE", "/api/v1/calls/1-4", None).await.status,
        StatusCode::ACCEPTED
    );
    let r = app.api("DELETE", "/api/v1/calls/1-4", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());
}

impl App {
    fn calls(&self) -> Vec<LiveCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[tokio::test]
async fn the_dashboard_shows_health_counts_the_day_and_bans() {
    let app = app().await;
    add_cdrs(&app).await;
    app.store
        .add_ban("203.0.113.9".parse().expect("ip"), "SIP scanner", T0 + 600)
        .await
        .expect("ban");
    if let Ok(mut calls) = app.calls.lock() {
        calls.push(live_call("0-1", "1000", true));
    }
    let session = app.login().await;
    let r = app.get("/", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("SIP up") && r.body.contains("Database up"));
    assert!(r.body.contains("1 answered, 0 ringing"));
    // 60 calls in the last two hours, drawn as bars whose counts add up.
    assert!(r.body.contains("60 calls →"), "{}", r.body);
    let bars: u64 = r
        .body
        .split("data-calls=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(bars, 60);
    assert_eq!(count(&r.body, "<rect class=\"bar\""), 24);
    assert!(r.body.contains("203.0.113.9") && r.body.contains("SIP scanner"));
}

/// The value of the `name` field of the page's form.
fn textarea(body: &str) -> String {
    let start = body.find("<textarea").expect("a textarea");
    let rest = &body[start..];
    let open = rest.find('>').expect("open") + 1;
    let close = rest.find("</textarea>").expect("close");
    rest[open..close]
        .trim_start_matches('\n')
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_dialplan_is_checked_before_it_is_saved_and_traced() {
    let app = app().await;
    app.store
        .add_extension(
            "pbx.test",
            NewExtension {
                number: "1000".into(),
                password: "Secret-123456".into(),
                ..NewExtension::default()
            },
        )
        .await
        .expect("extension");
    let session = app.login().await;
    let r = app.get("/dialplan", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(textarea(&r.body), PLAN);
    let csrf = r.csrf();

    // A broken file: each problem at its line, the file on disk untouched, no reload.
    let broken = PLAN.replace(
        "include = [\"staff\"]",
        "include = [\"nowhere\"]\nbogus = 1",
    );
    let r = app
        .post_form("/dialplan", &session, &[("csrf", &csrf), ("text", &broken)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("line 14, column 1"), "{}", r.body);
    assert!(r.body.contains("bogus"));
    assert!(r.body.contains("<span id=\"line-14\" class=\"bad-line\">"));
    assert_eq!(
        textarea(&r.body),
        broken,
        "the text sent is kept in the editor"
    );
    assert_eq!(
        std::fs::read_to_string(&app.dialplan).ok().as_deref(),
        Some(PLAN)
    );
    assert_eq!(app.reloads.load(Ordering::Relaxed), 0);

    // Without its token: refused.
    let r = app
        .post_form("/dialplan", &session, &[("text", PLAN)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Check only, then save: written (browser line ends made Unix) and reloaded.
    let better = PLAN.replace("# The office plan.", "# The office plan, edited.");
    let r = app
        .post_form(
            "/dialplan",
            &session,
            &[("csrf", &csrf), ("text", &better), ("check", "1")],
        )
        .await;
    assert!(r.body.contains("No problems found. Not saved yet."));
    assert_eq!(
        std::fs::read_to_string(&app.dialplan).ok().as_deref(),
        Some(PLAN)
    );
    let r = app
        .post_form(
            "/dialplan",
            &session,
            &[("csrf", &csrf), ("text", &better.replace('\n', "\r\n"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(&app.dialplan).ok().as_deref(),
        Some(better.as_str())
    );
    assert_eq!(app.reloads.load(Ordering::Relaxed), 1);

    // The trace: what the plan does with a call, and problems by field.
    let r = app
        .post_form(
            "/dialplan/trace",
            &session,
            &[
                ("csrf", &csrf),
                ("from", "4901"),
                ("to", "1000"),
                ("at", "2026-12-06T23:00"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<ol class=\"trace\""), "{}", r.body);
    assert!(r.body.contains("lobby"), "{}", r.body);
    let r = app
        .post_form(
            "/dialplan/trace",
            &session,
            &[
                ("csrf", &csrf),
                ("from", ""),
                ("to", "1000"),
                ("dial", "maybe"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("the caller&#39;s number") || r.body.contains("the caller's number"));
    assert!(r.body.contains("expected busy, no-answer"));

    // The API: read, check, refuse with every problem, save, trace.
    let r = app.api("GET", "/api/v1/dialplan", None).await;
    assert_eq!(r.json()["text"], better.as_str());
    let body = serde_json::json!({ "text": broken }).to_string();
    let r = app
        .api("POST", "/api/v1/dialplan/validate", Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["valid"], false);
    assert!(
        r.json()["problems"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["line"] == 14 && p["col"] == 1)),
        "{}",
        r.body
    );
    let r = app.api("PUT", "/api/v1/dialplan", Some(&body)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "text");
    assert!(
        r.json()["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    assert_eq!(
        std::fs::read_to_string(&app.dialplan).ok().as_deref(),
        Some(better.as_str())
    );
    let body = serde_json::json!({ "text": PLAN }).to_string();
    let r = app.api("PUT", "/api/v1/dialplan", Some(&body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(&app.dialplan).ok().as_deref(),
        Some(PLAN)
    );
    assert_eq!(app.reloads.load(Ordering::Relaxed), 2);
    let r = app
        .api("PUT", "/api/v1/dialplan", Some("{\"txt\": 1}"))
        .await;
    assert!(r.status.is_client_error());
    let body = serde_json::json!({ "from": "4901", "to": "1000", "at": "2026-12-06T23:00" });
    let r = app
        .api("POST", "/api/v1/dialplan/trace", Some(&body.to_string()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.json()["steps"].as_array().is_some_and(|s| !s.is_empty()));
    let body = serde_json::json!({ "from": "4901", "to": "1000", "dial": ["maybe"] });
    let r = app
        .api("POST", "/api/v1/dialplan/trace", Some(&body.to_string()))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "dial");
}

#[tokio::test]
async fn the_permission_matrix_rewrites_only_may_call() {
    let app = app().await;
    let session = app.login().await;
    let r = app.get("/permissions", &session).await;
    assert_eq!(r.status, StatusCode::OK);
    // staff: no may_call (anything); lobby: staff and a number.
    for (name, ticked) in [
        ("c:staff:staff", true),
        ("c:staff:lobby", true),
        ("out:staff", true),
        ("c:lobby:staff", true),
        ("c:lobby:lobby", false),
        ("out:lobby", false),
    ] {
        let at = r
            .body
            .find(&format!("name=\"{name}\""))
            .unwrap_or_else(|| panic!("{name}"));
        let tag = &r.body[at..at + r.body[at..].find('>').unwrap_or(0)];
        assert_eq!(tag.contains("checked"), ticked, "{name}: {tag}");
    }
    let csrf = r.csrf();

    // Saving it unchanged leaves the file alone.
    let all = [
        ("csrf", csrf.as_str()),
        ("c:staff:staff", "1"),
        ("c:staff:lobby", "1"),
        ("out:staff", "1"),
        ("c:lobby:staff", "1"),
    ];
    let r = app.post_form("/permissions", &session, &all).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        std::fs::read_to_string(&app.dialplan).ok().as_deref(),
        Some(PLAN)
    );
    assert_eq!(app.reloads.load(Ordering::Relaxed), 0);

    // Staff may no longer call the lobby nor out; comments stay; reloaded.
    let r = app
        .post_form(
            "/permissions",
            &session,
            &[
                ("csrf", &csrf),
                ("c:staff:staff", "1"),
                ("c:lobby:staff", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let text = std::fs::read_to_string(&app.dialplan).unwrap_or_default();
    assert!(
        text.contains("[context.staff]\nmay_call = [\"staff\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("may_call = [\"4001\", \"staff\"]   # reception and staff only"),
        "{text}"
    );
    assert!(text.starts_with("# The office plan.\n"));
    assert_eq!(app.reloads.load(Ordering::Relaxed), 1);
    let r = app.get("/permissions?saved=1", &session).await;
    assert!(r.body.contains("Saved and reloaded"));

    // Without the token: refused, nothing written.
    let r = app
        .post_form("/permissions", &session, &[("out:lobby", "1")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        !std::fs::read_to_string(&app.dialplan)
            .unwrap_or_default()
            .contains("\"any\"")
    );
}

/// A message filed the way the PBX files one: the WAV under the storage folder, the row
/// naming it.
async fn leave_message(
    app: &App,
    mailbox: &str,
    caller: &str,
    at: u64,
    body: &str,
) -> (i64, PathBuf) {
    use pbx_store::MailboxStore;
    let dir = app.storage.join(mailbox);
    std::fs::create_dir_all(&dir).expect("mailbox dir");
    let path = dir.join(format!("msg-{caller}-{at}.wav"));
    std::fs::write(&path, body).expect("wav");
    let id = app
        .store
        .add_message(&pbx_store::NewMessage {
            mailbox: mailbox.into(),
            caller_number: caller.into(),
            caller_name: "Carol".into(),
            received_at: at,
            duration_ms: 4200,
            path: path.to_string_lossy().into_owned(),
        })
        .await
        .expect("message");
    (id, path)
}

#[tokio::test]
async fn voicemail_pages_play_download_mark_heard_and_delete() {
    let app = app().await;
    add(&app, "1001").await;
    add(&app, "1002").await;
    let cookie = app.login().await;
    let audio = "RIFF fake wave 0123456789abcdefghij";
    let (first, first_path) = leave_message(&app, "1001", "1002", T0 - 600, audio).await;
    let (second, _) = leave_message(&app, "1001", "4444", T0 - 60, "RIFF second").await;
    let (other, _) = leave_message(&app, "1002", "1001", T0, "RIFF other").await;

    let list = app.get("/voicemail", &cookie).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("href=\"/voicemail/1001\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("2 new"), "{}", list.body);
    let open = app.get("/voicemail?number=1002", &cookie).await;
    assert_eq!(open.location(), "/voicemail/1002");
    let unknown = app.get("/voicemail?number=9999", &cookie).await;
    assert!(unknown.body.contains("There is no extension 9999."));

    let page = app.get("/voicemail/1001", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(count(&page.body, "<audio controls"), 2);
    assert!(
        page.body
            .contains(&format!("/voicemail/1001/{first}/audio"))
    );
    assert!(page.body.contains("0:05"), "4.2 s rounds up: {}", page.body);
    // Newest first.
    let at_first = page
        .body
        .find(&format!("data-message=\"{first}\""))
        .expect("first");
    let at_second = page
        .body
        .find(&format!("data-message=\"{second}\""))
        .expect("second");
    assert!(at_second < at_first);

    // Played whole, in ranges, downloaded as a file.
    let whole = app
        .get(&format!("/voicemail/1001/{first}/audio"), &cookie)
        .await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, audio);
    assert_eq!(whole.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(whole.headers[header::ACCEPT_RANGES], "bytes");
    let req = Request::get(format!("/voicemail/1001/{first}/audio"))
        .header(header::COOKIE, &cookie)
        .header(header::RANGE, "bytes=5-8")
        .body(Body::empty())
        .expect("request");
    let part = app.send(req).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, "fake");
    assert_eq!(
        part.headers[header::CONTENT_RANGE],
        format!("bytes 5-8/{}", audio.len()).as_str()
    );
    let down = app
        .get(&format!("/voicemail/1001/{first}/download"), &cookie)
        .await;
    assert_eq!(down.body, audio);
    assert_eq!(
        down.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"voicemail-1001-{first}.wav\"").as_str()
    );
    // Another mailbox's message is not reachable through this one, nor without a session.
    let cross = app
        .get(&format!("/voicemail/1001/{other}/audio"), &cookie)
        .await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
    let anon = app.get(&format!("/voicemail/1001/{first}/audio"), "").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);

    // Mark heard: new → old, and the PBX is told.
    let csrf = page.csrf();
    let no_token = app
        .post_form(
            &format!("/voicemail/1001/{first}/move"),
            &cookie,
            &[("folder", "old")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let moved = app
        .post_form(
            &format!("/voicemail/1001/{first}/move"),
            &cookie,
            &[("csrf", &csrf), ("folder", "old")],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    let heard = app.get("/voicemail/1001?folder=old", &cookie).await;
    assert_eq!(count(&heard.body, "<audio controls"), 1);
    assert!(heard.body.contains(&format!("data-message=\"{first}\"")));
    assert_eq!(app.changed.lock().expect("lock").as_slice(), ["1001"]);
    let bad = app
        .post_form(
            &format!("/voicemail/1001/{first}/move"),
            &cookie,
            &[("csrf", &csrf), ("folder", "INBOX")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Delete: the row and the file go.
    let gone = app
        .post_form(
            &format!("/voicemail/1001/{first}/delete"),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
    assert!(!first_path.exists(), "the file is deleted");
    let after = app.get("/voicemail/1001", &cookie).await;
    assert_eq!(count(&after.body, "<audio controls"), 1);
    assert_eq!(app.changed.lock().expect("lock").len(), 2);
    let again = app
        .post_form(
            &format!("/voicemail/1001/{first}/delete"),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn voicemail_audio_is_served_only_from_the_storage_folder() {
    use pbx_store::MailboxStore;
    let app = app().await;
    add(&app, "1001").await;
    let cookie = app.login().await;
    // A tampered row naming a file outside the storage folder (by `..` and directly).
    let outside = app.storage.parent().expect("dir").join("secret.txt");
    std::fs::write(&outside, "top secret").expect("secret");
    let mut ids = Vec::new();
    for path in [app.storage.join("1001/../../secret.txt"), outside.clone()] {
        ids.push(
            app.store
                .add_message(&pbx_store::NewMessage {
                    mailbox: "1001".into(),
                    caller_number: "1002".into(),
                    caller_name: String::new(),
                    received_at: T0,
                    duration_ms: 1000,
                    path: path.to_string_lossy().into_owned(),
                })
                .await
                .expect("row"),
        );
    }
    for id in &ids {
        let r = app
            .get(&format!("/voicemail/1001/{id}/audio"), &cookie)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert!(!r.body.contains("top secret"));
        let r = app
            .api(
                "GET",
                &format!("/api/v1/mailboxes/1001/messages/{id}/audio"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.json()["error"].is_string());
        // Deleting the row leaves a file outside the folder alone.
        let r = app
            .api(
                "DELETE",
                &format!("/api/v1/mailboxes/1001/messages/{id}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(outside.exists());
    }
    assert!(
        app.store
            .messages("1001", None)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn api_mailboxes_messages_audio_patch_and_delete() {
    let app = app().await;
    add(&app, "1001").await;
    let (id, path) = leave_message(&app, "1001", "1002", T0, "RIFF api body").await;

    let r = app.api("GET", "/api/v1/mailboxes", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()[0]["number"], "1001");
    assert_eq!(r.json()[0]["new"], 1);

    let r = app
        .api("GET", "/api/v1/mailboxes/1001/messages", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let m = &r.json()[0];
    assert_eq!(m["id"], id);
    assert_eq!(m["folder"], "new");
    assert_eq!(m["caller_number"], "1002");
    assert_eq!(m["duration_ms"], 4200);
    let audio = m["audio"].as_str().expect("audio").to_string();
    let r = app.api("GET", &audio, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, "RIFF api body");
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    let r = app
        .api("GET", "/api/v1/mailboxes/9999/messages", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .api("GET", "/api/v1/mailboxes/1001/messages/abc/audio", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let one = format!("/api/v1/mailboxes/1001/messages/{id}");
    let r = app.api("PATCH", &one, Some(r#"{"folder":"INBOX"}"#)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "folder");
    let r = app.api("PATCH", &one, Some(r#"{"colour":"red"}"#)).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let r = app.api("PATCH", &one, Some(r#"{"folder":"old"}"#)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["folder"], "old");
    assert_eq!(app.changed.lock().expect("lock").as_slice(), ["1001"]);
    let r = app
        .api(
            "PATCH",
            "/api/v1/mailboxes/1002/messages/1",
            Some(r#"{"folder":"old"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app.api("DELETE", &one, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!path.exists());
    let r = app.api("DELETE", &one, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.api("GET", "/api/v1/mailboxes", None).await;
    assert_eq!(r.json(), serde_json::json!([]));
}

#[tokio::test]
async fn security_events_on_their_page_the_dashboard_and_the_api() {
    let app = app().await;
    let cookie = app.login().await;
    let empty = app.get("/security", &cookie).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty
            .body
            .contains("Nothing happened since the PBX started.")
    );
    let source: IpAddr = "203.0.113.7".parse().expect("ip");
    *app.events.lock().expect("lock") = vec![
        SecurityEvent {
            at: T0 - 30,
            kind: SecurityKind::Banned,
            source,
            user: String::new(),
            detail: "until 2027-01-15 08:00 UTC".into(),
            count: 1,
        },
        SecurityEvent {
            at: T0 - 600,
            kind: SecurityKind::AuthFailed,
            source,
            user: "1001".into(),
            detail: "wrong password".into(),
            count: 5,
        },
    ];
    app.store
        .add_ban(source, "too many failed authentications", T0 + 3600)
        .await
        .expect("ban");
    let page = app.get("/security", &cookie).await;
    assert_eq!(count(&page.body, "data-kind="), 2, "{}", page.body);
    assert!(page.body.contains("SIP authentication failed"));
    assert!(page.body.contains("×5"));
    assert!(page.body.contains("10 min ago"));
    assert!(
        page.body.contains("data-ban=\"203.0.113.7\""),
        "the ban with its lift button"
    );
    assert!(page.body.contains("/bans/203.0.113.7/lift"));
    let dash = app.get("/", &cookie).await;
    assert!(dash.body.contains("id=\"recent-events\""));
    assert_eq!(count(&dash.body, "data-kind="), 2);

    let r = app
        .api("GET", "/api/v1/security/events?limit=1", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let events = r.json();
    assert_eq!(events.as_array().map(Vec::len), Some(1));
    assert_eq!(events[0]["kind"], "banned");
    assert_eq!(events[0]["source"], "203.0.113.7");
    let r = app.api("GET", "/api/v1/security/events", None).await;
    assert_eq!(r.json()[1]["count"], 5);
    assert_eq!(r.json()[1]["user"], "1001");
    let r = app
        .api("GET", "/api/v1/security/events?limit=0", None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "limit");
}

#[tokio::test]
async fn admins_are_created_deleted_and_change_their_password() {
    let app = app().await;
    let cookie = app.login().await;
    let page = app.get("/admins", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-admin=\"admin\""));
    let csrf = page.csrf();

    // Mistakes by field, nothing saved.
    let r = app
        .post_form(
            "/admins",
            &cookie,
            &[
                ("csrf", &csrf),
                ("user", "bob"),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("At least 10 characters"), "{}", r.body);
    let r = app
        .post_form(
            "/admins",
            &cookie,
            &[
                ("csrf", &csrf),
                ("user", "bad name"),
                ("password", "long enough pass"),
                ("confirm", "long enough pass"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("bad user name"), "{}", r.body);
    let r = app
        .post_form(
            "/admins",
            &cookie,
            &[
                ("csrf", &csrf),
                ("user", "bob"),
                ("password", "long enough pass"),
                ("confirm", "other pass here"),
            ],
        )
        .await;
    assert!(r.body.contains("The two passwords differ."));
    assert_eq!(app.store.list_admins().await.expect("list"), ["admin"]);
    let no_token = app
        .post_form(
            "/admins",
            &cookie,
            &[("user", "bob"), ("password", "long enough pass")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    let r = app
        .post_form(
            "/admins",
            &cookie,
            &[
                ("csrf", &csrf),
                ("user", "bob"),
                ("password", "long enough pass"),
                ("confirm", "long enough pass"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        app.store
            .verify_admin("bob", "long enough pass")
            .await
            .expect("verify")
    );
    let dup = app
        .post_form(
            "/admins",
            &cookie,
            &[
                ("csrf", &csrf),
                ("user", "bob"),
                ("password", "long enough pass"),
                ("confirm", "long enough pass"),
            ],
        )
        .await;
    assert!(dup.body.contains("There is already an admin bob."));

    // Own password: the current one is checked (and counted by the guard).
    let r = app
        .post_form(
            "/admins/password",
            &cookie,
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("password", "brand new passphrase"),
                ("new_confirm", "brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("That is not your current password."));
    let r = app
        .post_form(
            "/admins/password",
            &cookie,
            &[
                ("csrf", &csrf),
                ("current", ADMIN_PW),
                ("password", "brand new passphrase"),
                ("new_confirm", "brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/admins?done=password");
    assert!(
        app.store
            .verify_admin("admin", "brand new passphrase")
            .await
            .expect("verify")
    );

    // Not yourself; another admin is deleted and logged out.
    let r = app
        .post_form("/admins/admin/delete", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post_form("/admins/bob/delete", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.location(), "/admins?done=deleted");
    assert_eq!(app.store.list_admins().await.expect("list"), ["admin"]);
    let r = app
        .post_form("/admins/bob/delete", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_tokens_are_made_once_listed_by_id_and_revoked() {
    let app = app().await;
    let cookie = app.login().await;
    let page = app.get("/admins", &cookie).await;
    assert_eq!(count(&page.body, "data-token="), 1, "the app's own token");
    let csrf = page.csrf();
    let made = app.post_form("/tokens", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(made.status, StatusCode::OK);
    let at = made.body.find("id=\"token\">").expect("token shown") + 11;
    let token = made.body[at..at + 64].to_string();
    assert_eq!(
        app.store.verify_token(&token).await.expect("verify"),
        Some("admin".into())
    );
    let page = app.get("/admins", &cookie).await;
    assert_eq!(count(&page.body, "data-token="), 2);
    assert!(!page.body.contains(&token), "never shown again");

    // The API: list, make, revoke (then it no longer works).
    let r = app.api("GET", "/api/v1/tokens", None).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(2));
    let r = app.api("POST", "/api/v1/tokens", None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let fresh = r.json()["token"].as_str().expect("token").to_string();
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(r.json()["user"], "admin");
    let listed = app.api("GET", "/api/v1/tokens", None).await.json();
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|t| t["id"] == id.as_str())
    );
    let r = app
        .api("DELETE", &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.store.verify_token(&fresh).await.expect("verify"), None);
    let r = app
        .api("DELETE", &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Revoked from the page.
    let page = app.get("/admins", &cookie).await;
    let at = page.body.find("/tokens/").expect("a revoke form") + 8;
    let first = page.body[at..at + 12].to_string();
    let r = app
        .post_form(
            &format!("/tokens/{first}/revoke"),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.location(), "/admins?done=revoked");
    assert_eq!(app.store.list_tokens().await.expect("list").len(), 1);
}

#[tokio::test]
async fn the_dashboard_shows_how_the_mail_is_doing() {
    let app = app().await;
    let cookie = app.login().await;
    let dash = app.get("/", &cookie).await;
    assert!(
        dash.body.contains("Mail: no server configured"),
        "{}",
        dash.body
    );
    let set = |m: MailHealth| *app.mail.lock().expect("lock") = Some(m);
    set(MailHealth {
        server: "smtp://mail.example:587".into(),
        queued: 0,
        last_sent: None,
        last_failure: None,
    });
    let dash = app.get("/", &cookie).await;
    assert!(dash.body.contains("nothing sent yet"));
    set(MailHealth {
        server: "smtp://mail.example:587".into(),
        queued: 2,
        last_sent: Some(T0 - 3600),
        last_failure: Some((T0 - 120, "SMTP: connection refused".into())),
    });
    let dash = app.get("/", &cookie).await;
    assert!(dash.body.contains("failing"), "{}", dash.body);
    assert!(dash.body.contains("(2 waiting)"));
    assert!(dash.body.contains("SMTP: connection refused (2 min ago)"));
    set(MailHealth {
        server: "smtp://mail.example:587".into(),
        queued: 0,
        last_sent: Some(T0 - 10),
        last_failure: Some((T0 - 120, "SMTP: connection refused".into())),
    });
    let dash = app.get("/", &cookie).await;
    assert!(!dash.body.contains("failing"));
    assert!(
        !dash.body.contains("connection refused"),
        "an old failure is not shown"
    );
    assert!(dash.body.contains("Mail up"));
}

#[tokio::test]
async fn trunks_are_created_listed_with_their_state_edited_and_deleted() {
    let app = app().await;
    let session = app.login().await;
    let list = app.get("/trunks", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("No trunks yet"), "{}", list.body);
    let csrf = app.get("/trunks/new", &session).await.csrf();

    // Mistakes: each message at its field, nothing stored.
    let r = app
        .post_form(
            "/trunks",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "bad name"),
                ("host", "sip..example"),
                ("username", "acct"),
                ("password", "Pr0vider-secret"),
                ("caller_id_mode", "trunk"),
                ("channels", "many"),
                ("allowed_networks", "bogus"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for message in [
        "bad trunk name",
        "bad host `sip..example`",
        "bad channels `many`",
        "bad network `bogus`",
        "caller ID mode `trunk` needs the trunk&#39;s caller ID",
    ] {
        assert!(r.body.contains(message), "{message}: {}", r.body);
    }
    // The password typed is not sent back in the page.
    assert!(!r.body.contains("Pr0vider-secret"));
    assert!(app.store.list_trunks().await.expect("list").is_empty());

    let r = app
        .post_form(
            "/trunks",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "carrier"),
                ("host", "sip.example.com:5080"),
                ("transport", "udp"),
                ("username", "acct42"),
                ("password", "Pr0vider-secret"),
                ("register", "1"),
                ("allowed_networks", "203.0.113.0/24"),
                ("caller_id_mode", "trunk"),
                ("caller_id", "+4930123"),
                ("channels", "4"),
                ("media_encryption", "off"),
                ("codecs", "PCMA, pcmu"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/trunks/carrier?saved=1");
    let stored = app.store.list_trunks().await.expect("list").remove(0);
    assert_eq!(
        (
            stored.host.as_str(),
            stored.port,
            stored.password.as_str(),
            stored.register,
            stored.channels,
            stored.codecs.clone(),
            stored.caller_id.as_str(),
        ),
        (
            "sip.example.com",
            Some(5080),
            "Pr0vider-secret",
            true,
            4,
            vec!["pcma".to_string(), "pcmu".to_string()],
            "+4930123"
        )
    );
    // A second with the same name is refused at the name.
    let r = app
        .post_form(
            "/trunks",
            &session,
            &[("csrf", &csrf), ("name", "carrier"), ("host", "10.0.0.1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already exists"), "{}", r.body);

    // The state the PBX reported, while it holds; unknown after.
    let list = app.get("/trunks", &session).await;
    assert!(list.body.contains("sip.example.com:5080"), "{}", list.body);
    assert!(list.body.contains("unknown"), "{}", list.body);
    app.store
        .set_trunk_status(&TrunkStatus {
            name: "carrier".into(),
            state: "registered".into(),
            detail: "binding for 3600s".into(),
            valid_until: T0 + 60,
            updated_at: T0,
        })
        .await
        .expect("status");
    let list = app.get("/trunks", &session).await;
    assert!(
        list.body.contains("registered") && list.body.contains("binding for 3600s"),
        "{}",
        list.body
    );
    app.clock.advance(61);
    let list = app.get("/trunks", &session).await;
    assert!(!list.body.contains("binding for 3600s"), "{}", list.body);

    // Edit: the password is never shown; left empty it stays.
    let edit = app.get("/trunks/carrier", &session).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(!edit.body.contains("Pr0vider-secret"));
    assert!(edit.body.contains("(set)"), "{}", edit.body);
    let r = app
        .post_form(
            "/trunks/carrier",
            &session,
            &[
                ("csrf", &csrf),
                ("host", "sip2.example.com"),
                ("username", "acct42"),
                ("password", ""),
                ("context", "from-carrier"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let stored = app.store.list_trunks().await.expect("list").remove(0);
    assert_eq!(
        (
            stored.host.as_str(),
            stored.port,
            stored.password.as_str(),
            stored.register,
            stored.context.as_str()
        ),
        (
            "sip2.example.com",
            None,
            "Pr0vider-secret",
            false,
            "from-carrier"
        )
    );
    let r = app
        .post_form(
            "/trunks/carrier",
            &session,
            &[("csrf", &csrf), ("host", "a b")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.store.list_trunks().await.expect("list")[0].host,
        "sip2.example.com"
    );
    // Without the form's token: refused, nothing changed.
    let r = app
        .post_form("/trunks/carrier/delete", &session, &[("csrf", "x")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let confirm = app.get("/trunks/carrier/delete", &session).await;
    assert!(confirm.body.contains("Delete trunk carrier?"));
    let r = app
        .post_form("/trunks/carrier/delete", &session, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.location(), "/trunks?deleted=carrier");
    assert!(app.store.list_trunks().await.expect("list").is_empty());
    assert_eq!(
        app.get("/trunks/carrier", &session).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_lists_show_a_trunks_tls_and_dtmf_and_an_extensions_did() {
    let app = app().await;
    let session = app.login().await;
    let csrf = app.get("/trunks/new", &session).await.csrf();
    let r = app
        .post_form(
            "/trunks",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "carrier"),
                ("host", "sip.example.com"),
                ("transport", "tls"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // `--tls-no-verify` and `--dtmf` are set with `pbx trunk add/set`.
    let mut trunk = app.store.list_trunks().await.expect("list").remove(0);
    trunk.tls_verify = false;
    trunk.dtmf = "info".into();
    app.store.update_trunk(&trunk).await.expect("update");
    let list = app.get("/trunks", &session).await;
    assert!(
        list.body.contains("<th class=\"hide-s\">DTMF</th>"),
        "{}",
        list.body
    );
    assert!(
        list.body.contains("not verified") && list.body.contains(">info</td>"),
        "{}",
        list.body
    );
    trunk.tls_verify = true;
    trunk.tls_ca_file = "/etc/pbx/carrier-ca.pem".into();
    trunk.dtmf = "rfc4733".into();
    app.store.update_trunk(&trunk).await.expect("update");
    let list = app.get("/trunks", &session).await;
    assert!(!list.body.contains("not verified"), "{}", list.body);
    assert!(
        list.body
            .contains("CA <code>/etc/pbx/carrier-ca.pem</code>")
            && list.body.contains(">rfc4733</td>"),
        "{}",
        list.body
    );

    app.store
        .add_extension(
            "pbx.test",
            NewExtension {
                number: "1000".into(),
                password: "pw-1000-long".into(),
                did: Some("+4930123".into()),
                ..NewExtension::default()
            },
        )
        .await
        .expect("add");
    add(&app, "1001").await;
    let list = app.get("/extensions", &session).await;
    assert!(
        list.body.contains("<th class=\"hide-s\">DID</th>"),
        "{}",
        list.body
    );
    assert!(list.body.contains("<code>+4930123</code>"), "{}", list.body);
}

#[tokio::test]
async fn api_trunks_round_trip_without_the_password() {
    let app = app().await;
    let r = app
        .api("POST", "/api/v1/trunks", Some(r#"{"name": "carrier"}"#))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "host");
    let r = app
        .api(
            "POST",
            "/api/v1/trunks",
            Some(r#"{"name": "carrier", "host": "sip.example.com", "username": "acct"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "password");
    let r = app
        .api(
            "POST",
            "/api/v1/trunks",
            Some(
                r#"{"name": "carrier", "host": "sip.example.com", "username": "acct",
                    "password": "Pr0vider-secret", "register": true, "codecs": ["pcma"],
                    "allowed_networks": ["203.0.113.0/24"], "channels": 2}"#,
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(!r.body.contains("Pr0vider-secret"));
    let t = r.json();
    assert_eq!(
        (&t["has_password"], &t["state"], &t["channels"], &t["port"]),
        (
            &serde_json::json!(true),
            &serde_json::json!("unknown"),
            &serde_json::json!(2),
            &serde_json::Value::Null
        )
    );
    let again = app
        .api(
            "POST",
            "/api/v1/trunks",
            Some(r#"{"name": "carrier", "host": "10.0.0.1"}"#),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // PATCH: an absent field stays, the password too; bad values name their field.
    let r = app
        .api(
            "PATCH",
            "/api/v1/trunks/carrier",
            Some(r#"{"host": "sip.example.com:5070", "transport": "tcp"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["port"], 5070);
    let stored = app.store.list_trunks().await.expect("list").remove(0);
    assert_eq!(
        (stored.password.as_str(), stored.codecs.clone()),
        ("Pr0vider-secret", vec!["pcma".to_string()])
    );
    let r = app
        .api(
            "PATCH",
            "/api/v1/trunks/carrier",
            Some(r#"{"media_encryption": "maybe"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "media_encryption");
    let r = app
        .api(
            "PATCH",
            "/api/v1/trunks/carrier",
            Some(r#"{"name": "other"}"#),
        )
        .await;
    assert_eq!(r.json()["field"], "name");
    let r = app
        .api(
            "PATCH",
            "/api/v1/trunks/nobody",
            Some(r#"{"host": "h.example"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = app.api("GET", "/api/v1/trunks", None).await;
    assert_eq!(list.json()[0]["name"], "carrier");
    assert!(!list.body.contains("Pr0vider-secret"));
    assert_eq!(
        app.api("DELETE", "/api/v1/trunks/carrier", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.api("GET", "/api/v1/trunks/carrier", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admin_changes_are_audited_with_who_what_when_and_where() {
    let app = app().await;
    let session = app.login().await;
    let csrf = app.get("/extensions/new", &session).await.csrf();
    // Through the pages...
    let r = app
        .post_form(
            "/extensions",
            &session,
            &[("csrf", &csrf), ("number", "1000"), ("pin", "4321")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .post_form("/extensions/1000/delete", &session, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // ...a refused form is not a change...
    let r = app
        .post_form("/extensions/1000/delete", &session, &[("csrf", "x")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // ...and through the API, under the token's admin.
    app.clock.advance(60);
    let r = app
        .api(
            "POST",
            "/api/v1/trunks",
            Some(r#"{"name": "carrier", "host": "sip.example.com", "username": "acct", "password": "Pr0vider-secret"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.store
        .add_ban("198.51.100.9".parse().expect("ip"), "test", T0 + 3600)
        .await
        .expect("ban");
    let r = app.api("DELETE", "/api/v1/bans/198.51.100.9", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let log = app.api("GET", "/api/v1/audit", None).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let log = log.json();
    assert_eq!(log["total"], 4);
    let seen: Vec<(String, String, String, u64)> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["target"].as_str().unwrap_or("").to_string(),
                e["via"].as_str().unwrap_or("").to_string(),
                e["at"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want =
        |a: &str, t: &str, v: &str, at: u64| (a.to_string(), t.to_string(), v.to_string(), at);
    assert_eq!(
        seen,
        vec![
            want("ban.lift", "198.51.100.9", "api", T0 + 60),
            want("trunk.create", "carrier", "api", T0 + 60),
            want("extension.delete", "1000", "web", T0),
            want("extension.create", "1000", "web", T0),
        ]
    );
    for e in log["items"].as_array().expect("items") {
        assert_eq!(
            (e["admin"].as_str(), e["source"].as_str()),
            (Some("admin"), Some("192.0.2.10"))
        );
    }
    // No secret in it.
    let text = log.to_string();
    assert!(
        !text.contains("Pr0vider-secret") && !text.contains("4321"),
        "{text}"
    );

    // The page, newest first, paged.
    for i in 0..60 {
        app.store
            .record_audit(&pbx_store::NewAudit {
                at: T0 + 100 + i,
                admin: "other".into(),
                source: "192.0.2.99".into(),
                via: "web".into(),
                action: "extension.update".into(),
                target: format!("2{i:03}"),
                detail: String::new(),
            })
            .await
            .expect("audit");
    }
    let page = app.get("/audit", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Page 1 of 2"), "{}", page.body);
    assert!(page.body.contains("2059") && !page.body.contains(">1000<"));
    let page = app.get("/audit?page=2", &session).await;
    assert!(page.body.contains("trunk.create") && page.body.contains("192.0.2.10"));
    let r = app.api("GET", "/api/v1/audit?page=0", None).await;
    assert_eq!(r.json()["field"], "page");
}

#[tokio::test]
async fn extensions_are_imported_from_csv_all_or_nothing_and_exported_without_secrets() {
    let app = app().await;
    add(&app, "2000").await;
    let session = app.login().await;
    let form = app.get("/extensions/import", &session).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.csrf();
    // Every bad line is named, and nothing is imported.
    let bad = "number,password,name,email,pin\n\
               1000,pw-one,Alice,alice@example.com,1234\n\
               12x,pw,B,,\n\
               2000,pw,Dup,,\n\
               1001,,C,,\n";
    let r = app
        .post_form(
            "/extensions/import",
            &session,
            &[("csrf", &csrf), ("csv", bad)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for line in [
        "line 3: bad extension number `12x`",
        "line 4: extension 2000 already exists",
        "line 5: the password is empty",
        "Nothing was imported.",
    ] {
        assert!(r.body.contains(line), "{line}: {}", r.body);
    }
    // The text stays in the form to be fixed.
    assert!(r.body.contains("1000,pw-one,Alice"));
    assert_eq!(app.store.list_extensions().await.expect("list").len(), 1);
    let r = app
        .post_form(
            "/extensions/import",
            &session,
            &[("csrf", "x"), ("csv", bad)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let good = "number,password,name,email,pin\n\
                1000,pw-one,\"Smith, Alice\",alice@example.com,1234\n\
                1001,pw-two,Bob,,\n";
    let r = app
        .post_form(
            "/extensions/import",
            &session,
            &[("csrf", &csrf), ("csv", good)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/extensions?imported=2");
    let list = app.get(r.location(), &session).await;
    assert!(
        list.body.contains("2 extensions imported."),
        "{}",
        list.body
    );
    assert!(app.store.verify_pin("1000", "1234").await.expect("pin"));
    let creds = app
        .store
        .credentials("1001")
        .await
        .expect("store")
        .expect("creds");
    let ha1 = hex::encode(Md5::digest(b"1001:pbx.test:pw-two"));
    assert_eq!(creds.ha1_md5, ha1);

    let csv = app.get("/extensions.csv", &session).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.body,
        "number,name,email,pin_set,media_encryption,context,allowed_networks,did\n\
         1000,\"Smith, Alice\",alice@example.com,yes,optional,,,\n\
         1001,Bob,,no,optional,,,\n\
         2000,Bob,,no,optional,,,\n"
    );
    assert!(!csv.body.contains("pw-"));

    // The API: the same parser, the problems with their lines; the same export.
    let req = |body: &str| {
        Request::post("/api/v1/extensions/import")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.token))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    let r = app.send(req("number,password\n3000,pw\n3000,pw\n")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = &r.json()["problems"];
    assert_eq!(problems[0]["line"], 3);
    assert_eq!(
        problems[0]["message"],
        "extension 3000 is already on line 2"
    );
    let r = app.send(req("number,password\n")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.send(req("number,password\n3000,pw\n3001,pw\n")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["imported"], 2);
    let export = app.api("GET", "/api/v1/extensions/export", None).await;
    assert!(
        export.body.contains("\n3001,,,no,optional,,,\n"),
        "{}",
        export.body
    );
    // Both imports are in the audit log.
    let log = app.api("GET", "/api/v1/audit", None).await.json();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert_eq!(actions, ["2 extensions", "2 extensions"]);
}

#[tokio::test]
async fn deleting_an_extension_removes_its_voicemail_files() {
    let app = app().await;
    add(&app, "1000").await;
    add(&app, "1001").await;
    add(&app, "1002").await;
    for mailbox in ["1000", "1001", "1002"] {
        let dir = app.storage.join(mailbox);
        std::fs::create_dir_all(&dir).expect("dir");
        for f in [
            "msg-1-a.wav",
            "greeting-unavailable-1-2.wav",
            "greeting-name-1-3.wav",
        ] {
            std::fs::write(dir.join(f), b"RIFF").expect("file");
        }
    }
    let session = app.login().await;
    let csrf = app.get("/extensions/new", &session).await.csrf();
    let r = app
        .post_form("/extensions/1000/delete", &session, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!app.storage.join("1000").exists());
    let r = app.api("DELETE", "/api/v1/extensions/1001", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!app.storage.join("1001").exists());
    // Another mailbox's files stay.
    assert_eq!(
        std::fs::read_dir(app.storage.join("1002"))
            .expect("dir")
            .count(),
        3
    );
}

#[tokio::test]
async fn api_dialplan_put_refuses_a_body_without_text_as_documented() {
    // Found by schemathesis: a JSON body that is not `{"text": ...}` got the generic error
    // body, not the documented refusal with its `problems`.
    let app = app().await;
    let r = app
        .api(
            "PUT",
            "/api/v1/dialplan",
            Some(r#"{"": {"": [3, true, "\u0083"], "<,#\u00e8]": "N\u00d7%"}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let body = r.json();
    assert_eq!(body["field"], "text");
    assert_eq!(body["problems"], serde_json::json!([]));
    assert!(body["error"].as_str().unwrap_or("").contains("text"));
    assert_eq!(std::fs::read_to_string(&app.dialplan).expect("plan"), PLAN);
}

#[tokio::test]
async fn a_did_taken_by_another_extension_is_refused_at_the_did_everywhere() {
    let app = app().await;
    app.store
        .add_extension(
            "pbx.test",
            NewExtension {
                number: "1000".into(),
                password: "pw-1000-long".into(),
                did: Some("+4930123".into()),
                ..NewExtension::default()
            },
        )
        .await
        .expect("add");
    add(&app, "1002").await;
    let session = app.login().await;
    let message = "DID +4930123 is already extension 1000&#39;s";

    // The new-extension form: the message next to the DID, nothing created.
    let csrf = app.get("/extensions/new", &session).await.csrf();
    let r = app
        .post_form(
            "/extensions",
            &session,
            &[("csrf", &csrf), ("number", "1001"), ("did", "+4930123")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let did_field = r.body.find("name=\"did\"").expect("the DID field");
    let at = r.body.find(message).unwrap_or_else(|| panic!("{}", r.body));
    assert!(
        at > did_field,
        "the message is not at the DID field: {}",
        r.body
    );
    assert!(
        app.store
            .credentials("1001")
            .await
            .expect("store")
            .is_none()
    );

    // The edit form: the same, 1002 unchanged.
    let r = app
        .post_form(
            "/extensions/1002",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "Bob"),
                ("media_encryption", "optional"),
                ("did", "+4930123"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let did_field = r.body.find("name=\"did\"").expect("the DID field");
    let at = r.body.find(message).unwrap_or_else(|| panic!("{}", r.body));
    assert!(
        at > did_field,
        "the message is not at the DID field: {}",
        r.body
    );
    let did_of = |all: Vec<pbx_store::Extension>, n: &str| {
        all.into_iter()
            .find(|e| e.number == n)
            .map(|e| e.did)
            .unwrap_or_default()
    };
    assert_eq!(
        did_of(app.store.list_extensions().await.expect("list"), "1002"),
        ""
    );

    // The API: 409 with the field.
    let r = app
        .api(
            "POST",
            "/api/v1/extensions",
            Some(r#"{"number":"1001","did":"+4930123"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.json()["field"], "did");
    assert_eq!(
        r.json()["error"],
        "DID +4930123 is already extension 1000's"
    );
    let r = app
        .api(
            "PATCH",
            "/api/v1/extensions/1002",
            Some(r#"{"did":"+4930123"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.json()["field"], "did");
    assert_eq!(
        did_of(app.store.list_extensions().await.expect("list"), "1002"),
        ""
    );

    // The CSV import: each repeated DID at its line, nothing imported.
    let csrf = app.get("/extensions/import", &session).await.csrf();
    let csv = "number,password,did\n\
               2000,pw-two-k,+15550001\n\
               2001,pw-two-k,+15550001\n\
               2002,pw-two-k,+4930123\n";
    let r = app
        .post_form(
            "/extensions/import",
            &session,
            &[("csrf", &csrf), ("csv", csv)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for line in [
        "line 3: DID +15550001 is already extension 2000&#39;s on line 2",
        "line 4: DID +4930123 is already extension 1000&#39;s",
    ] {
        assert!(r.body.contains(line), "{line}: {}", r.body);
    }
    assert_eq!(app.store.list_extensions().await.expect("list").len(), 2);
}
