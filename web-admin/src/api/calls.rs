//! `/api/v1/calls` (the calls in progress, and hanging one up) and `/api/v1/cdrs` (the call
//! records, searched and paged as on the Call records page).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiUser, query_error};
use crate::Shared;
use crate::cdr_filter::{self, CdrSearch};
use crate::errors::{ApiError, ErrorBody};

/// A call in progress.
#[derive(Serialize, ToSchema)]
pub struct CallOut {
    /// What `DELETE /api/v1/calls/{id}` takes.
    pub id: String,
    /// The caller's Call-ID; the call's CDR will carry it.
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// `ringing` or `answered`.
    pub state: String,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds; absent while ringing.
    pub answered_at: Option<u64>,
    /// The codec both legs agreed on (`PCMU/8000`), once media is set up.
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
}

/// The calls in progress, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/calls",
    tag = "calls",
    responses(
        (status = 200, body = Vec<CallOut>),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn list(State(state): State<Shared>) -> Json<Vec<CallOut>> {
    Json(
        state
            .live
            .calls()
            .into_iter()
            .map(|c| CallOut {
                state: if c.answered_at.is_some() {
                    "answered"
                } else {
                    "ringing"
                }
                .into(),
                id: c.id,
                call_id: c.call_id,
                caller: c.caller,
                called: c.called,
                started_at: c.started_at,
                answered_at: c.answered_at,
                codec: c.codec,
                caller_encrypted: c.caller_encrypted,
                callee_encrypted: c.callee_encrypted,
            })
            .collect(),
    )
}

/// Hangs up a call in progress: BYE to both legs when answered, CANCEL and 503 while ringing.
/// The end is asynchronous: the call leaves the list (and its CDR appears) a moment later.
#[utoipa::path(
    delete,
    path = "/api/v1/calls/{id}",
    tag = "calls",
    params(("id" = String, Path, description = "The call's id from GET /api/v1/calls")),
    responses(
        (status = 202, description = "Being hung up"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn hang_up(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.live.hang_up(&id) {
        actor.record(&state, "call.hang_up", &id, "").await;
        tracing::info!(user = %user.0, call = %id, "call hung up through the API");
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::not_found(format!(
            "a call in progress with id `{id}`"
        )))
    }
}

/// A call record.
#[derive(Serialize, ToSchema)]
pub struct CdrOut {
    pub id: i64,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds; absent when not answered.
    pub answered_at: Option<u64>,
    /// Unix seconds.
    pub ended_at: u64,
    /// Seconds talked.
    pub duration_secs: u64,
    /// answered, busy, no_answer, failed, cancelled
    pub disposition: String,
    pub hangup_cause: String,
    /// caller, callee or pbx
    pub hangup_side: String,
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
}

/// A page of call records.
#[derive(Serialize, ToSchema)]
pub struct CdrPage {
    pub items: Vec<CdrOut>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CdrParams {
    /// Calls started at or after this: Unix seconds, RFC 3339, or `2026-12-06T08:00` (UTC).
    pub from: Option<String>,
    /// Calls started before this, as `from`.
    pub to: Option<String>,
    /// Calls from or to this number.
    pub extension: Option<String>,
    /// answered, busy, no_answer, failed or cancelled.
    pub disposition: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 500; default 50.
    pub per_page: Option<u32>,
}

/// The call records, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/cdrs",
    tag = "calls",
    params(CdrParams),
    responses(
        (status = 200, body = CdrPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn cdrs(
    State(state): State<Shared>,
    params: Result<Query<CdrParams>, QueryRejection>,
) -> Result<Json<CdrPage>, ApiError> {
    let Query(p) = params.map_err(query_error)?;
    let per_page = super::per_page_of(p.per_page)?;
    let search = CdrSearch {
        from: p.from.unwrap_or_default(),
        to: p.to.unwrap_or_default(),
        extension: p.extension.unwrap_or_default(),
        disposition: p.disposition.unwrap_or_default(),
        cursor: p.cursor.unwrap_or_default(),
    };
    let query = cdr_filter::query(&search, per_page + 1).map_err(|problems| {
        let first = problems.0.into_iter().next();
        match first {
            Some(e) => ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message),
            None => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad search"),
        }
    })?;
    let mut found = state.cdrs.search_cdrs(&query).await?;
    let mut next_cursor = None;
    if found.len() > per_page as usize {
        found.truncate(per_page as usize);
        next_cursor = found.last().map(cdr_filter::cursor_of);
    }
    let items = found
        .into_iter()
        .map(|cdr| {
            let c = cdr.call;
            CdrOut {
                id: cdr.id,
                call_id: c.call_id,
                caller: c.caller,
                called: c.called,
                started_at: c.started_at,
                answered_at: c.answered_at,
                ended_at: c.ended_at,
                duration_secs: c.duration_secs,
                disposition: c.disposition,
                hangup_cause: c.hangup_cause,
                hangup_side: c.hangup_side,
                codec: c.codec,
                caller_encrypted: c.caller_encrypted,
                callee_encrypted: c.callee_encrypted,
            }
        })
        .collect();
    Ok(Json(CdrPage { items, next_cursor }))
}
