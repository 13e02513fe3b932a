//! `/api/v1/dialplan`: read and replace the dialplan file (checked first, written
//! atomically, then reloaded), check a text without saving, and trace a call through the
//! saved plan.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiUser, json_error};
use crate::Shared;
use crate::dialplan_file::{self, FileError, Problem};
use crate::errors::{ApiError, ErrorBody};
use crate::views::dialplan::{TraceForm, trace_request};

/// The dialplan file.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DialplanText {
    /// The whole TOML file.
    pub text: String,
}

/// What checking a dialplan text found.
#[derive(Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    /// Every problem, at its line and column; empty when valid.
    pub problems: Vec<Problem>,
}

/// A refused dialplan: the message, the field (`text`) and every problem.
#[derive(Serialize, ToSchema)]
pub struct DialplanRefusal {
    pub error: String,
    pub field: String,
    pub problems: Vec<Problem>,
}

fn file_error(e: FileError) -> ApiError {
    match e {
        FileError::NotConfigured => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        other => {
            tracing::error!(error = %other, "web API: dialplan file");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the dialplan file could not be read or written; the details are in the server's log",
            )
        }
    }
}

/// The dialplan file as it is on disk.
#[utoipa::path(
    get,
    path = "/api/v1/dialplan",
    tag = "dialplan",
    responses(
        (status = 200, body = DialplanText),
        (status = 401, body = ErrorBody),
        (status = 409, description = "No dialplan file is configured", body = ErrorBody),
        (status = 500, body = ErrorBody)
    )
)]
pub async fn get_text(State(state): State<Shared>) -> Result<Json<DialplanText>, ApiError> {
    let path = dialplan_file::configured(state.live.dialplan_file()).map_err(file_error)?;
    let text = dialplan_file::read(&path).map_err(file_error)?;
    Ok(Json(DialplanText { text }))
}

/// Replaces the dialplan file: checked first (nothing is written when it has problems),
/// written atomically, then loaded by the running PBX.
#[utoipa::path(
    put,
    path = "/api/v1/dialplan",
    tag = "dialplan",
    request_body = DialplanText,
    responses(
        (status = 200, description = "Saved and reloaded", body = Validation),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, description = "Not saved: the problems", body = DialplanRefusal),
        (status = 500, body = ErrorBody)
    )
)]
pub async fn put_text(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    body: Result<Json<DialplanText>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = match body.map_err(json_error) {
        Ok(Json(body)) => body,
        // A 422 of this path is a refusal with its (here: no) problems, as documented.
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let refusal = DialplanRefusal {
                error: e.body.error,
                field: e.body.field.unwrap_or_else(|| "text".into()),
                problems: Vec::new(),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(refusal)).into_response());
        }
        Err(e) => return Err(e),
    };
    let path = dialplan_file::configured(state.live.dialplan_file()).map_err(file_error)?;
    if let Err(problems) = state.live.check_dialplan(&path, &body.text).await {
        let refusal = DialplanRefusal {
            error: format!(
                "the dialplan has {} problem(s); nothing was saved",
                problems.len()
            ),
            field: "text".into(),
            problems,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(refusal)).into_response());
    }
    dialplan_file::write_atomically(&path, &body.text).map_err(file_error)?;
    actor
        .record(&state, "dialplan.save", &path.display().to_string(), "")
        .await;
    tracing::info!(user = %user.0, "dialplan saved through the API");
    if let Err(problems) = state.live.reload_dialplan().await {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "saved, but the PBX did not load it: {}",
                problems.join("; ")
            ),
        ));
    }
    Ok(Json(Validation {
        valid: true,
        problems: Vec::new(),
    })
    .into_response())
}

/// Checks a dialplan text without saving it.
#[utoipa::path(
    post,
    path = "/api/v1/dialplan/validate",
    tag = "dialplan",
    request_body = DialplanText,
    responses(
        (status = 200, body = Validation),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn validate(
    State(state): State<Shared>,
    body: Result<Json<DialplanText>, JsonRejection>,
) -> Result<Json<Validation>, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let path = state
        .live
        .dialplan_file()
        .unwrap_or_else(|| "dialplan.toml".into());
    let problems = state
        .live
        .check_dialplan(&path, &body.text)
        .await
        .err()
        .unwrap_or_default();
    Ok(Json(Validation {
        valid: problems.is_empty(),
        problems,
    }))
}

/// A call to trace through the saved dialplan.
#[derive(Deserialize, ToSchema)]
pub struct TraceIn {
    /// The caller's number.
    pub from: String,
    /// The number dialed.
    pub to: String,
    /// When: Unix seconds, RFC 3339 or `2026-12-06T23:00` (UTC); absent: now.
    pub at: Option<String>,
    /// What each `dial` step comes to, in order: busy, no-answer, unavailable, answered.
    #[serde(default)]
    pub dial: Vec<String>,
    /// The keys pressed at each menu, in order.
    #[serde(default)]
    pub digits: Vec<String>,
}

/// What the plan does with the call, step by step.
#[derive(Serialize, ToSchema)]
pub struct TraceOut {
    pub steps: Vec<String>,
}

/// Traces a call through the saved dialplan (as `pbx dialplan trace`).
#[utoipa::path(
    post,
    path = "/api/v1/dialplan/trace",
    tag = "dialplan",
    request_body = TraceIn,
    responses(
        (status = 200, body = TraceOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn trace(
    State(state): State<Shared>,
    body: Result<Json<TraceIn>, JsonRejection>,
) -> Result<Json<TraceOut>, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let form = TraceForm {
        from: body.from,
        to: body.to,
        at: body.at.unwrap_or_default(),
        dial: body.dial.join(","),
        digits: body.digits.join(","),
        ..TraceForm::default()
    };
    let request = trace_request(&form, state.now()).map_err(|problems| {
        match problems.0.into_iter().next() {
            Some(e) => ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message),
            None => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad trace"),
        }
    })?;
    let path = dialplan_file::configured(state.live.dialplan_file()).map_err(file_error)?;
    let text = dialplan_file::read(&path).map_err(file_error)?;
    let plan = state
        .live
        .check_dialplan(&path, &text)
        .await
        .map_err(|problems| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "the saved dialplan has {} problem(s); fix it first",
                    problems.len()
                ),
            )
        })?;
    let extensions = state.extensions.list_extensions().await?;
    Ok(Json(TraceOut {
        steps: dialplan_file::trace(&plan, &extensions, &request),
    }))
}
