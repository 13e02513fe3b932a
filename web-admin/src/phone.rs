//! The server side of the browser phone (`/phone`): a staff member logs in with the
//! extension and its SIP password, and the page reads JSON about that extension only: the
//! directory of colleagues with their presence, the extension's own calls and voicemail.
//!
//! Phone sessions are the admin's [`Sessions`](crate::sessions::Sessions) machinery in a table
//! of their own, under a cookie of their own: a phone login never opens an admin page, and an
//! admin session is no phone login. Failed logins count and ban through the same
//! [`LoginGuard`](crate::live::LoginGuard) as SIP digest failures. Posts need the session's
//! CSRF token in `X-CSRF-Token`; the login itself takes JSON only, which a cross-site form
//! cannot send.

use std::collections::HashSet;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::live::{LoginRefusal, LoginSettled};
use crate::messages::{self, MessageError};
use crate::sessions::Session;
use crate::views::ClientIp;

/// The phone's session cookie (the admin's is `pbx_session`).
pub const COOKIE: &str = "pbx_phone";
/// The header every phone post carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

const DIRECTORY_LIMIT: u32 = 200;
const CALLS_LIMIT: u32 = 100;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/phone", get(page))
        .route("/phone/login", post(login))
        .route("/phone/logout", post(logout))
        .route("/phone/api/me", get(me))
        .route("/phone/api/directory", get(directory))
        .route("/phone/api/calls", get(calls))
        .route("/phone/api/voicemail", get(voicemail))
        .route("/phone/api/voicemail/{id}/audio", get(audio))
}

/// The page's policy: everything from this origin only. `connect-src 'self'` covers the
/// same origin's `ws:`/`wss:` (`/ws`) in CSP Level 3.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; \
     form-action 'self'; base-uri 'none'";

/// `/phone`: one static page; its script (`assets/phone.js`) logs in over the JSON API below
/// and registers with SIP.js over `/ws`.
#[derive(Template, WebTemplate)]
#[template(path = "phone.html")]
struct PhonePage {
    css: &'static str,
    phone_css: &'static str,
    phone_js: &'static str,
    sip_js: &'static str,
    sip_license: &'static str,
    icon: &'static str,
}

async fn page() -> Response {
    let page = PhonePage {
        css: crate::assets::CSS.url(),
        phone_css: crate::assets::PHONE_CSS.url(),
        phone_js: crate::assets::PHONE_JS.url(),
        sip_js: crate::assets::SIP_JS.url(),
        sip_license: crate::assets::SIP_JS_LICENSE.url(),
        icon: crate::assets::ICON.url(),
    };
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        page,
    )
        .into_response()
}

/// What a phone request can fail with, as JSON `{"error": ...}` with its status.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("log in with your extension and password")]
    NotLoggedIn,
    #[error("wrong extension or password")]
    WrongCredentials,
    #[error("too many failed logins from this address; try again later")]
    Banned,
    #[error("too many logins at once from this address; try again in a moment")]
    Busy,
    #[error("the request's CSRF token is missing or wrong")]
    Csrf,
    #[error("no such message")]
    NotFound,
    #[error("the server could not answer: {0}")]
    Internal(String),
}

impl PhoneError {
    pub fn status(&self) -> StatusCode {
        match self {
            PhoneError::NotLoggedIn | PhoneError::WrongCredentials => StatusCode::UNAUTHORIZED,
            PhoneError::Banned | PhoneError::Csrf => StatusCode::FORBIDDEN,
            PhoneError::Busy => StatusCode::TOO_MANY_REQUESTS,
            PhoneError::NotFound => StatusCode::NOT_FOUND,
            PhoneError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PhoneError {
    fn into_response(self) -> Response {
        if let PhoneError::Internal(detail) = &self {
            tracing::warn!(%detail, "phone request failed");
        }
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        (self.status(), body).into_response()
    }
}

impl From<pbx_store::StoreError> for PhoneError {
    fn from(e: pbx_store::StoreError) -> Self {
        PhoneError::Internal(e.to_string())
    }
}

impl From<MessageError> for PhoneError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::NotFound { .. } => PhoneError::NotFound,
            MessageError::Audio(crate::audio::AudioError::Missing) => PhoneError::NotFound,
            other => PhoneError::Internal(other.to_string()),
        }
    }
}

/// A logged-in extension: its session (`user` is the extension number).
pub struct Extension(pub Session);

impl FromRequestParts<Shared> for Extension {
    type Rejection = PhoneError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, PhoneError> {
        let id = crate::cookies::get(&parts.headers, COOKIE).ok_or(PhoneError::NotLoggedIn)?;
        state
            .phone_sessions
            .touch(&id, state.now())
            .map(Extension)
            .map_err(|_| PhoneError::NotLoggedIn)
    }
}

/// Whether `password` is the extension's SIP password: its MD5 HA1 (RFC 2617 §3.2.2.2,
/// `number:realm:password`) compared in constant time with the stored one.
pub fn password_matches(number: &str, realm: &str, password: &str, ha1_md5: &str) -> bool {
    let ha1 = hex::encode(Md5::digest(
        format!("{number}:{realm}:{password}").as_bytes(),
    ));
    ha1.len() == ha1_md5.len()
        && ha1
            .bytes()
            .zip(ha1_md5.to_ascii_lowercase().bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[derive(Deserialize)]
struct LoginBody {
    extension: String,
    password: String,
}

#[derive(Serialize)]
struct Me {
    extension: String,
    name: String,
    /// The SIP domain: the page registers as `sip:EXTENSION@DOMAIN` over `/ws`.
    domain: String,
    csrf: String,
}

async fn login(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginBody>,
) -> Result<Response, PhoneError> {
    let ticket = state.guard.admit(ip).map_err(|refusal| match refusal {
        LoginRefusal::Banned => PhoneError::Banned,
        LoginRefusal::Busy => PhoneError::Busy,
    })?;
    let number = body.extension.trim().to_string();
    let credentials = state.credentials.credentials(&number).await?;
    // An unknown extension fails like a wrong password: no enumeration.
    let ok = credentials.is_some_and(|c| {
        password_matches(&number, &state.settings.domain, &body.password, &c.ha1_md5)
    });
    match ticket.settle(ok).await {
        LoginSettled::Accepted => {}
        LoginSettled::Banned | LoginSettled::RejectedAndBanned => return Err(PhoneError::Banned),
        LoginSettled::Rejected => return Err(PhoneError::WrongCredentials),
    }
    let now = state.now();
    let id = state.phone_sessions.create(&number, now);
    let session = state
        .phone_sessions
        .touch(&id, now)
        .map_err(|_| PhoneError::Internal("the new session is gone".into()))?;
    tracing::info!(extension = %number, %ip, "phone login");
    let me = me_of(&state, session).await?;
    let cookie = crate::cookies::set(COOKIE, &id, state.settings.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Json(me)).into_response())
}

async fn logout(
    State(state): State<Shared>,
    Extension(session): Extension,
    headers: HeaderMap,
) -> Result<Response, PhoneError> {
    check_csrf(&session, &headers)?;
    if let Some(id) = crate::cookies::get(&headers, COOKIE) {
        state.phone_sessions.remove(&id);
    }
    let cookie = crate::cookies::clear(COOKIE, state.settings.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}

fn check_csrf(session: &Session, headers: &HeaderMap) -> Result<(), PhoneError> {
    let posted = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    crate::csrf::check(&session.csrf, posted).map_err(|_| PhoneError::Csrf)
}

async fn me_of(state: &Shared, session: Session) -> Result<Me, PhoneError> {
    let name = state
        .extensions
        .search_extensions(&session.user, 0, DIRECTORY_LIMIT)
        .await?
        .0
        .into_iter()
        .find(|e| e.number == session.user)
        .map(|e| e.name)
        .unwrap_or_default();
    Ok(Me {
        extension: session.user,
        name,
        domain: state.settings.domain.clone(),
        csrf: session.csrf,
    })
}

async fn me(
    State(state): State<Shared>,
    Extension(session): Extension,
) -> Result<Json<Me>, PhoneError> {
    Ok(Json(me_of(&state, session).await?))
}

/// Whether a colleague can be called now, from the engine's live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// No device registered.
    Offline,
    Online,
    /// In a call, ringing or answered.
    OnThePhone,
}

/// The presence of `number`, given the registered extensions and the parties of live calls.
pub fn presence(number: &str, registered: &HashSet<String>, busy: &HashSet<String>) -> Presence {
    if busy.contains(number) {
        Presence::OnThePhone
    } else if registered.contains(number) {
        Presence::Online
    } else {
        Presence::Offline
    }
}

#[derive(Deserialize)]
struct DirectoryQuery {
    q: Option<String>,
}

#[derive(Serialize)]
struct Colleague {
    number: String,
    name: String,
    presence: Presence,
}

async fn directory(
    State(state): State<Shared>,
    Extension(_): Extension,
    Query(query): Query<DirectoryQuery>,
) -> Result<Json<Vec<Colleague>>, PhoneError> {
    let q = query.q.unwrap_or_default();
    let (found, _) = state
        .extensions
        .search_extensions(q.trim(), 0, DIRECTORY_LIMIT)
        .await?;
    let registered: HashSet<String> = state
        .live
        .registrations(state.now())
        .into_iter()
        .map(|b| b.aor)
        .collect();
    let busy: HashSet<String> = state
        .live
        .calls()
        .into_iter()
        .flat_map(|c| [c.caller, c.called])
        .collect();
    Ok(Json(
        found
            .into_iter()
            .map(|e| Colleague {
                presence: presence(&e.number, &registered, &busy),
                number: e.number,
                name: e.name,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct CallRecord {
    started_at: u64,
    caller: String,
    called: String,
    /// `in` when the extension was called, else `out`.
    direction: &'static str,
    disposition: String,
    duration_secs: u64,
}

async fn calls(
    State(state): State<Shared>,
    Extension(session): Extension,
) -> Result<Json<Vec<CallRecord>>, PhoneError> {
    let query = pbx_store::CdrQuery {
        extension: Some(session.user.clone()),
        limit: CALLS_LIMIT,
        ..Default::default()
    };
    let rows = state.cdrs.search_cdrs(&query).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| CallRecord {
                direction: if c.call.called == session.user {
                    "in"
                } else {
                    "out"
                },
                started_at: c.call.started_at,
                caller: c.call.caller,
                called: c.call.called,
                disposition: c.call.disposition,
                duration_secs: c.call.duration_secs,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct VoicemailMessage {
    id: i64,
    folder: &'static str,
    caller_number: String,
    caller_name: String,
    received_at: u64,
    duration_ms: u64,
    /// Where the page plays it from.
    audio: String,
}

async fn voicemail(
    State(state): State<Shared>,
    Extension(session): Extension,
) -> Result<Json<Vec<VoicemailMessage>>, PhoneError> {
    let mut list = state.mailboxes.messages(&session.user, None).await?;
    list.sort_by_key(|m| std::cmp::Reverse(m.message.received_at));
    Ok(Json(
        list.into_iter()
            .map(|m| VoicemailMessage {
                audio: format!("/phone/api/voicemail/{}/audio", m.id),
                id: m.id,
                folder: m.folder.as_str(),
                caller_number: m.message.caller_number,
                caller_name: m.message.caller_name,
                received_at: m.message.received_at,
                duration_ms: m.message.duration_ms,
            })
            .collect(),
    ))
}

/// The message's audio, as the admin's player serves it (ranges for seeking), only from the
/// logged-in extension's own mailbox: another mailbox's id is as good as none.
async fn audio(
    State(state): State<Shared>,
    Extension(session): Extension,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, PhoneError> {
    let message = messages::find(&state, &session.user, id).await?;
    let bytes = messages::audio_bytes(&state, &message).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    Ok(crate::audio::response(
        bytes,
        range,
        &messages::file_name(&message),
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sip_password_is_checked_against_the_md5_ha1() {
        // MD5("1001:pbx.test:secret")
        let ha1 = hex::encode(Md5::digest(b"1001:pbx.test:secret"));
        assert!(password_matches("1001", "pbx.test", "secret", &ha1));
        assert!(password_matches(
            "1001",
            "pbx.test",
            "secret",
            &ha1.to_ascii_uppercase()
        ));
        assert!(!password_matches("1001", "pbx.test", "Secret", &ha1));
        assert!(!password_matches("1002", "pbx.test", "secret", &ha1));
        assert!(!password_matches("1001", "other.realm", "secret", &ha1));
        assert!(!password_matches("1001", "pbx.test", "secret", ""));
    }

    #[test]
    fn presence_prefers_on_the_phone() {
        let registered: HashSet<String> = ["1001", "1002"].map(String::from).into();
        let busy: HashSet<String> = ["1002", "1003"].map(String::from).into();
        assert_eq!(presence("1001", &registered, &busy), Presence::Online);
        assert_eq!(presence("1002", &registered, &busy), Presence::OnThePhone);
        assert_eq!(presence("1003", &registered, &busy), Presence::OnThePhone);
        assert_eq!(presence("1004", &registered, &busy), Presence::Offline);
    }

    #[test]
    fn errors_have_their_status() {
        assert_eq!(PhoneError::NotLoggedIn.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            PhoneError::WrongCredentials.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(PhoneError::Banned.status(), StatusCode::FORBIDDEN);
        assert_eq!(PhoneError::Csrf.status(), StatusCode::FORBIDDEN);
        assert_eq!(PhoneError::NotFound.status(), StatusCode::NOT_FOUND);
    }
}
