//! `/`: the login page (or, logged in, the dashboard); `POST /login`, `POST /logout`.
//! Failed logins count against the source address by the same rules, and into the same bans,
//! as failed SIP authentications.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{ClientIp, LoggedIn};
use crate::errors::PageError;
use crate::live::{LoginRefusal, LoginSettled};
use crate::{Shared, cookies, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    css: &'static str,
    icon: &'static str,
    csrf: String,
    user: String,
    message: String,
}

#[derive(Deserialize)]
struct HomeQuery {
    expired: Option<String>,
}

fn login_page(headers: &HeaderMap, state: &Shared, user: String, message: String) -> Response {
    // One token per browser (reused across tabs), carried by a cookie and the form alike.
    let token = cookies::get(headers, cookies::LOGIN_CSRF)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(crate::sessions::random_token);
    let page = LoginPage {
        css: crate::assets::CSS.url(),
        icon: crate::assets::ICON.url(),
        csrf: token.clone(),
        user,
        message,
    };
    (
        [(
            header::SET_COOKIE,
            cookies::set(cookies::LOGIN_CSRF, &token, state.settings.secure_cookies),
        )],
        page,
    )
        .into_response()
}

async fn home(
    State(state): State<Shared>,
    Query(q): Query<HomeQuery>,
    headers: HeaderMap,
) -> Response {
    if let Ok(session) = super::session_of(&headers, &state) {
        return super::dashboard::page(&state, &session)
            .await
            .into_response();
    }
    if headers.contains_key("HX-Request") {
        // The dashboard refreshing itself after the session ended: the whole page goes to
        // the login form, not the form into the dashboard.
        return (StatusCode::UNAUTHORIZED, [("HX-Redirect", "/?expired=1")]).into_response();
    }
    let message = if q.expired.is_some() {
        "Your session has expired: please log in again.".to_string()
    } else {
        String::new()
    };
    login_page(&headers, &state, String::new(), message)
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    csrf: Option<String>,
}

async fn login(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookies::get(&headers, cookies::LOGIN_CSRF).unwrap_or_default();
    csrf::check(&expected, form.csrf.as_deref())?;
    let ticket = match state.guard.admit(ip) {
        Ok(ticket) => ticket,
        Err(LoginRefusal::Banned) => return Err(PageError::Banned),
        Err(LoginRefusal::Busy) => {
            let mut page = login_page(
                &headers,
                &state,
                form.user,
                "Too many login attempts from your address are under way: wait a minute and try again."
                    .into(),
            );
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return Ok(page);
        }
    };
    // A store failure drops the ticket unsettled: it counts as no attempt.
    let ok = state
        .admins
        .verify_admin(&form.user, &form.password)
        .await?;
    match ticket.settle(ok).await {
        LoginSettled::Accepted => {
            tracing::info!(user = %form.user, source = %ip, "web admin login");
            let id = state.sessions.create(&form.user, state.now());
            let secure = state.settings.secure_cookies;
            let mut response = Redirect::to("/").into_response();
            let h = response.headers_mut();
            for cookie in [
                cookies::set(cookies::SESSION, &id, secure),
                cookies::clear(cookies::LOGIN_CSRF, secure),
            ] {
                if let Ok(v) = cookie.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            Ok(response)
        }
        LoginSettled::Rejected => {
            tracing::warn!(user = %form.user, source = %ip, "web admin login failed");
            let mut page = login_page(
                &headers,
                &state,
                form.user,
                "Wrong user name or password.".into(),
            );
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(page)
        }
        LoginSettled::RejectedAndBanned | LoginSettled::Banned => {
            tracing::warn!(user = %form.user, source = %ip, "web admin login failed; source banned");
            Err(PageError::Banned)
        }
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

async fn logout(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    if let Some(id) = cookies::get(&headers, cookies::SESSION) {
        state.sessions.remove(&id);
    }
    tracing::info!(user = %session.user, "web admin logout");
    Ok((
        [(
            header::SET_COOKIE,
            cookies::clear(cookies::SESSION, state.settings.secure_cookies),
        )],
        Redirect::to("/"),
    )
        .into_response())
}
