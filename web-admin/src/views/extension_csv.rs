//! The extensions as CSV: import (the CLI's format and parser, `pbx extension import`: every
//! bad line reported, nothing imported on any error) and export (no passwords, no PINs).

use std::collections::{HashMap, HashSet};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use pbx_store::{CsvProblem, IMPORT_COLUMNS, NewExtension};
use serde::Deserialize;

use super::{ClientIp, Layout, LoggedIn};
use crate::audit::Actor;
use crate::errors::PageError;
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/extensions.csv", get(export))
        .route("/extensions/import", get(form).post(import))
}

/// The CSV of every extension, as a download.
pub async fn csv_of_all(state: &Shared) -> Result<String, pbx_store::StoreError> {
    let all = state.extensions.list_extensions().await?;
    Ok(pbx_store::extensions_to_csv(&all))
}

/// The same as a response.
pub fn csv_download(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"extensions.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

async fn export(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
) -> Result<Response, PageError> {
    tracing::info!(user = %session.user, "extensions exported");
    Ok(csv_download(csv_of_all(&state).await?))
}

/// Checks `text` against the extensions there are now; what to import, or every problem.
pub async fn check(
    state: &Shared,
    text: &str,
) -> Result<Result<Vec<NewExtension>, Vec<CsvProblem>>, pbx_store::StoreError> {
    let all = state.extensions.list_extensions().await?;
    let dids: HashMap<String, String> = all
        .iter()
        .filter(|e| !e.did.is_empty())
        .map(|e| (e.did.clone(), e.number.clone()))
        .collect();
    let existing: HashSet<String> = all.into_iter().map(|e| e.number).collect();
    Ok(pbx_store::parse_extensions_csv(text, &existing, &dids))
}

/// Imports checked rows in one transaction and records it; how many.
pub async fn import_rows(
    state: &Shared,
    actor: &Actor,
    rows: Vec<NewExtension>,
) -> Result<usize, pbx_store::StoreError> {
    let numbers: Vec<String> = rows.iter().map(|r| r.number.clone()).collect();
    let n = state
        .extensions
        .import_extensions(&state.settings.domain, rows)
        .await?;
    let mut detail = numbers.join(" ");
    if detail.len() > 200 {
        let cut = detail.floor_char_boundary(200);
        detail.truncate(cut);
        detail.push('…');
    }
    let target = if n == 1 {
        "1 extension".to_string()
    } else {
        format!("{n} extensions")
    };
    actor
        .record(state, "extension.import", &target, &detail)
        .await;
    Ok(n)
}

#[derive(Template, WebTemplate)]
#[template(path = "extension_import.html")]
struct ImportPage {
    layout: Layout,
    text: String,
    problems: Vec<String>,
    columns: String,
}

fn page(session: &crate::sessions::Session, text: String, problems: Vec<String>) -> ImportPage {
    ImportPage {
        layout: Layout::new(session, "extensions"),
        text,
        problems,
        columns: IMPORT_COLUMNS.join(","),
    }
}

async fn form(LoggedIn(session): LoggedIn) -> ImportPage {
    page(&session, String::new(), Vec::new())
}

#[derive(Deserialize)]
struct ImportForm {
    csrf: Option<String>,
    #[serde(default)]
    csv: String,
}

async fn import(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    ClientIp(ip): ClientIp,
    Form(form): Form<ImportForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let rows = match check(&state, &form.csv).await? {
        Ok(rows) if rows.is_empty() => {
            let problems =
                vec!["No extension in it: the header line, then one line per extension.".into()];
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&session, form.csv, problems),
            )
                .into_response());
        }
        Ok(rows) => rows,
        Err(problems) => {
            let mut problems: Vec<String> = problems
                .into_iter()
                .map(|p| format!("line {}: {}", p.line, p.message))
                .collect();
            problems.push("Nothing was imported.".into());
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&session, form.csv, problems),
            )
                .into_response());
        }
    };
    let n = import_rows(&state, &Actor::web(&session, ip), rows).await?;
    tracing::info!(user = %session.user, extensions = n, "extensions imported in the web admin");
    Ok(Redirect::to(&format!("/extensions?imported={n}")).into_response())
}
