//! The calls in progress: who calls whom, since when, the codec, whether each leg is
//! encrypted, and a button that hangs a call up. The table refreshes itself (htmx).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{Layout, LoggedIn};
use crate::errors::PageError;
use crate::live::LiveCall;
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/calls", get(page))
        .route("/calls/{id}/hangup", post(hang_up))
}

/// A live call as the page shows it.
pub struct CallRow {
    pub id: String,
    pub caller: String,
    pub called: String,
    /// `ringing` or `answered`.
    pub state: &'static str,
    pub started: String,
    /// How long it has rung or been talked: `1:05`, `1:02:09`.
    pub for_how_long: String,
    pub codec: String,
    /// `both legs`, `caller only`, `callee only` or `none`.
    pub encryption: &'static str,
    pub encrypted: bool,
}

/// Seconds as `m:ss` or `h:mm:ss`.
pub fn clock_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Which legs are SRTP, in words.
pub fn encryption_words(caller: bool, callee: bool) -> &'static str {
    match (caller, callee) {
        (true, true) => "both legs",
        (true, false) => "caller only",
        (false, true) => "callee only",
        (false, false) => "none",
    }
}

impl CallRow {
    pub fn new(c: &LiveCall, now: u64) -> CallRow {
        CallRow {
            id: c.id.clone(),
            caller: c.caller.clone(),
            called: c.called.clone(),
            state: if c.answered_at.is_some() {
                "answered"
            } else {
                "ringing"
            },
            started: super::when(c.started_at),
            for_how_long: clock_duration(now.saturating_sub(c.answered_at.unwrap_or(c.started_at))),
            codec: c.codec.clone().unwrap_or_default(),
            encryption: encryption_words(c.caller_encrypted, c.callee_encrypted),
            encrypted: c.caller_encrypted && c.callee_encrypted,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "calls.html")]
struct CallsPage {
    layout: Layout,
    rows: Vec<CallRow>,
    notice: String,
}

#[derive(Deserialize)]
struct CallsQuery {
    ended: Option<String>,
}

async fn page(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<CallsQuery>,
) -> CallsPage {
    let now = state.now();
    CallsPage {
        layout: Layout::new(&session, "calls"),
        rows: state
            .live
            .calls()
            .iter()
            .map(|c| CallRow::new(c, now))
            .collect(),
        notice: q
            .ended
            .filter(|id| id.len() <= 41 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
            .map(|_| "The call is being hung up.".to_string())
            .unwrap_or_default(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn hang_up(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    if !state.live.hang_up(&id) {
        return Err(PageError::NotFound(
            "That call is not in progress any more.".into(),
        ));
    }
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "call.hang_up", &id, "")
        .await;
    tracing::info!(user = %session.user, call = %id, "call hung up in the web admin");
    Ok(Redirect::to(&format!("/calls?ended={id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_words() {
        assert_eq!(clock_duration(0), "0:00");
        assert_eq!(clock_duration(65), "1:05");
        assert_eq!(clock_duration(3729), "1:02:09");
        assert_eq!(encryption_words(true, false), "caller only");
    }
}
