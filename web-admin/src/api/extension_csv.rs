//! `GET /api/v1/extensions/export` and `POST /api/v1/extensions/import`: the extensions as
//! CSV, in `pbx extension import`'s format (its parser: every bad line reported, nothing
//! imported on any error); the export carries no password and no PIN.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::Shared;
use crate::audit::Actor;
use crate::errors::{ApiError, ErrorBody};
use crate::views::extension_csv;

/// What an import did.
#[derive(Serialize, ToSchema)]
pub struct ImportOut {
    pub imported: usize,
}

/// A problem of an imported CSV, at its line (1 is the header).
#[derive(Serialize, ToSchema)]
pub struct CsvProblemOut {
    pub line: u64,
    pub message: String,
}

/// An import refused: nothing was imported.
#[derive(Serialize, ToSchema)]
pub struct ImportRefusal {
    pub error: String,
    /// Always `csv`.
    pub field: String,
    pub problems: Vec<CsvProblemOut>,
}

/// Every extension as CSV: `number,name,email,pin_set,media_encryption,context,allowed_networks`.
#[utoipa::path(
    get,
    path = "/api/v1/extensions/export",
    tag = "extensions",
    responses(
        (status = 200, description = "The CSV, header first", content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn export(State(state): State<Shared>) -> Result<Response, ApiError> {
    Ok(extension_csv::csv_download(
        extension_csv::csv_of_all(&state).await?,
    ))
}

/// Imports extensions from CSV (`number,password,name,email,pin`, header first), all or none.
#[utoipa::path(
    post,
    path = "/api/v1/extensions/import",
    tag = "extensions",
    request_body(content = String, content_type = "text/csv", description = "The CSV"),
    responses(
        (status = 200, body = ImportOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Every problem with its line; nothing imported", body = ImportRefusal)
    )
)]
pub async fn import(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<Actor>,
    body: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<Response, ApiError> {
    let text = body.map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, "csv", e.body_text()))?;
    let refuse = |error: &str, problems: Vec<CsvProblemOut>| {
        let body = ImportRefusal {
            error: error.to_string(),
            field: "csv".into(),
            problems,
        };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response())
    };
    let rows = match extension_csv::check(&state, &text).await? {
        Ok(rows) if rows.is_empty() => return refuse("no extension in the CSV", Vec::new()),
        Ok(rows) => rows,
        Err(problems) => {
            let n = problems.len();
            let problems = problems
                .into_iter()
                .map(|p| CsvProblemOut {
                    line: p.line,
                    message: p.message,
                })
                .collect();
            return refuse(
                &format!("the CSV has {n} problem(s); nothing was imported"),
                problems,
            );
        }
    };
    let imported = extension_csv::import_rows(&state, &actor, rows).await?;
    tracing::info!(user = %actor.admin, extensions = imported, "extensions imported through the API");
    Ok(Json(ImportOut { imported }).into_response())
}
