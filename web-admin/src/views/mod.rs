//! The pages, one module per area (after kanidm's `views/`), and what they share: the layout,
//! the logged-in extractor and the client's address.

pub mod admins;
pub mod audit;
pub mod calls;
pub mod cdrs;
pub mod dashboard;
pub mod dialplan;
pub mod extension_csv;
pub mod extensions;
pub mod login;
pub mod permissions;
pub mod provision;
pub mod security;
pub mod status;
pub mod trunks;
pub mod voicemail;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::Shared;
use crate::sessions::{Lookup, Session};

pub fn router() -> Router<Shared> {
    Router::new()
        .merge(login::router())
        .merge(extensions::router())
        .merge(extension_csv::router())
        .merge(provision::router())
        .merge(status::router())
        .merge(calls::router())
        .merge(cdrs::router())
        .merge(dialplan::router())
        .merge(permissions::router())
        .merge(voicemail::router())
        .merge(security::router())
        .merge(admins::router())
        .merge(trunks::router())
        .merge(audit::router())
}

/// What every logged-in page's frame shows.
pub struct Layout {
    pub user: String,
    /// For the logout form in the header.
    pub csrf: String,
    /// Which navigation entry is the current page.
    pub nav: &'static str,
    pub css: &'static str,
    pub htmx: &'static str,
    pub icon: &'static str,
}

impl Layout {
    pub fn new(session: &Session, nav: &'static str) -> Layout {
        Layout {
            user: session.user.clone(),
            csrf: session.csrf.clone(),
            nav,
            css: crate::assets::CSS.url(),
            htmx: crate::assets::HTMX.url(),
            icon: crate::assets::ICON.url(),
        }
    }
}

/// A request from a logged-in admin. Without a live session: to the login page (for htmx, by
/// `HX-Redirect`, so a live part does not swap the login page into itself).
pub struct LoggedIn(pub Session);

pub struct ToLogin {
    expired: bool,
    htmx: bool,
}

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let to = if self.expired { "/?expired=1" } else { "/" };
        let mut response = Redirect::to(to).into_response();
        if self.htmx {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            if let Ok(v) = HeaderValue::from_str(to) {
                response.headers_mut().insert("HX-Redirect", v);
            }
        }
        response
    }
}

impl FromRequestParts<Shared> for LoggedIn {
    type Rejection = ToLogin;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ToLogin> {
        let htmx = parts.headers.contains_key("HX-Request");
        session_of(&parts.headers, state)
            .map(LoggedIn)
            .map_err(|lookup| ToLogin {
                expired: lookup == Lookup::Expired,
                htmx,
            })
    }
}

/// The live session of the request's cookie, marked as used now.
pub fn session_of(headers: &HeaderMap, state: &Shared) -> Result<Session, Lookup> {
    let id = crate::cookies::get(headers, crate::cookies::SESSION).ok_or(Lookup::Unknown)?;
    state.sessions.touch(&id, state.now())
}

/// The TCP peer's address (the server serves with connect info). Forwarded-for headers are
/// not trusted: anyone can write them. Without connect info (never in the server), 0.0.0.0.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        ))
    }
}

/// The `Host` the browser used, when it looks like a host name or address (with a port).
pub fn request_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| host.to_string())
}

/// The host part of a `Host` value (no port, no brackets).
pub fn host_only(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// Unix seconds as `2026-12-06 13:20 UTC`.
pub fn when(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(
            || unix.to_string(),
            |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

/// How long until `until`, from `now`: `in 3 min`, `in 2 h`, `expired`.
pub fn remaining(until: u64, now: u64) -> String {
    let left = until.saturating_sub(now);
    match left {
        0 => "expired".into(),
        1..=119 => format!("in {left} s"),
        120..=7199 => format!("in {} min", left / 60),
        7200..=172_799 => format!("in {} h", left / 3600),
        _ => format!("in {} days", left / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_only("pbx.example:8080"), "pbx.example");
        assert_eq!(host_only("[::1]:8080"), "::1");
        assert_eq!(host_only("10.0.0.1"), "10.0.0.1");
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a.b:1"));
        assert_eq!(request_host(&h).as_deref(), Some("a.b:1"));
        h.insert(header::HOST, HeaderValue::from_static("a b"));
        assert_eq!(request_host(&h), None);
    }

    #[test]
    fn durations() {
        assert_eq!(remaining(100, 100), "expired");
        assert_eq!(remaining(190, 100), "in 90 s");
        assert_eq!(remaining(100 + 3600, 100), "in 60 min");
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}
