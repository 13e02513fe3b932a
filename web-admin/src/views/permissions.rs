//! Call permissions, as the seed paper's connection matrix: the dialplan's contexts (classes
//! of service) in rows and columns, a tick where the row may call the column, and "may call
//! out" (`any`: every number, outside ones included). Saving rewrites only the `may_call`
//! lists that changed (comments and layout stay), checks the result like the dialplan
//! editor does, writes it atomically and reloads.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::{Layout, LoggedIn};
use crate::dialplan_file::{self, Permissions, Problem};
use crate::errors::PageError;
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new().route("/permissions", get(page).post(save))
}

pub struct Cell {
    /// The form field: `c:ROW:COLUMN`, or `out:ROW`.
    pub name: String,
    pub ticked: bool,
    pub label: String,
}

pub struct MatrixRow {
    pub context: String,
    pub cells: Vec<Cell>,
    pub out: Cell,
}

#[derive(Template, WebTemplate)]
#[template(path = "permissions.html")]
struct PermissionsPage {
    layout: Layout,
    contexts: Vec<String>,
    rows: Vec<MatrixRow>,
    notice: String,
    failure: String,
    problems: Vec<Problem>,
}

fn rows_of(matrix: &[Permissions]) -> Vec<MatrixRow> {
    let contexts: Vec<&str> = matrix.iter().map(|p| p.context.as_str()).collect();
    matrix
        .iter()
        .map(|p| MatrixRow {
            context: p.context.clone(),
            cells: contexts
                .iter()
                .map(|c| Cell {
                    name: format!("c:{}:{c}", p.context),
                    ticked: p.may_call.iter().any(|m| m == c),
                    label: format!("{} may call {c}", p.context),
                })
                .collect(),
            out: Cell {
                name: format!("out:{}", p.context),
                ticked: p.call_out,
                label: format!("{} may call out", p.context),
            },
        })
        .collect()
}

/// The file, its plan's matrix, or why there is none.
async fn load(state: &Shared) -> Result<(std::path::PathBuf, String, Vec<Permissions>), String> {
    let path = dialplan_file::configured(state.live.dialplan_file()).map_err(|e| e.to_string())?;
    let text = dialplan_file::read(&path).map_err(|e| e.to_string())?;
    let plan = state
        .live
        .check_dialplan(&path, &text)
        .await
        .map_err(|problems| {
            format!(
                "The dialplan has {} problem(s): fix them in the Dialplan editor first.",
                problems.len()
            )
        })?;
    let matrix = dialplan_file::permissions(&plan, &text);
    Ok((path, text, matrix))
}

fn empty_page(layout: Layout) -> PermissionsPage {
    PermissionsPage {
        layout,
        contexts: Vec::new(),
        rows: Vec::new(),
        notice: String::new(),
        failure: String::new(),
        problems: Vec::new(),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

async fn page(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<PageQuery>,
) -> PermissionsPage {
    let mut page = empty_page(Layout::new(&session, "permissions"));
    match load(&state).await {
        Ok((_, _, matrix)) => {
            page.contexts = matrix.iter().map(|p| p.context.clone()).collect();
            page.rows = rows_of(&matrix);
        }
        Err(failure) => page.failure = failure,
    }
    if q.saved.is_some() {
        page.notice = "Saved and reloaded: new calls follow these permissions.".into();
    }
    page
}

/// The matrix a posted form describes: every row of `before`, ticked where the form says.
pub fn posted_matrix(before: &[Permissions], form: &HashMap<String, String>) -> Vec<Permissions> {
    before
        .iter()
        .map(|row| Permissions {
            context: row.context.clone(),
            may_call: before
                .iter()
                .map(|c| c.context.clone())
                .filter(|c| form.contains_key(&format!("c:{}:{c}", row.context)))
                .collect(),
            call_out: form.contains_key(&format!("out:{}", row.context)),
        })
        .collect()
}

async fn save(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.get("csrf").map(String::as_str))?;
    let mut page = empty_page(Layout::new(&session, "permissions"));
    let (path, text, before) = match load(&state).await {
        Ok(loaded) => loaded,
        Err(failure) => {
            page.failure = failure;
            return Ok((StatusCode::CONFLICT, page).into_response());
        }
    };
    let after = posted_matrix(&before, &form);
    page.contexts = before.iter().map(|p| p.context.clone()).collect();
    page.rows = rows_of(&after);
    let new_text = match dialplan_file::with_permissions(&text, &before, &after) {
        Ok(t) => t,
        Err(e) => {
            page.failure = e.to_string();
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    if new_text == text {
        return Ok(Redirect::to("/permissions?saved=1").into_response());
    }
    if let Err(problems) = state.live.check_dialplan(&path, &new_text).await {
        page.failure =
            "These permissions would make the dialplan invalid; nothing was saved.".into();
        page.problems = problems;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    dialplan_file::write_atomically(&path, &new_text)?;
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "permissions.save", &path.display().to_string(), "")
        .await;
    tracing::info!(user = %session.user, "call permissions saved in the web admin");
    if let Err(problems) = state.live.reload_dialplan().await {
        page.failure = format!(
            "Saved, but the PBX did not load it: {}",
            problems.join("; ")
        );
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    Ok(Redirect::to("/permissions?saved=1").into_response())
}
