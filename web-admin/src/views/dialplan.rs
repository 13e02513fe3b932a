//! The dialplan editor: the file with line numbers; Save checks it first with the dialplan's
//! own parser and shows each problem at its line (the file stays as it was), then writes it
//! atomically and reloads the running plan. A trace form shows what `Plan::trace` says a
//! call would do ("1000 dials 700 on Sunday at 23:00").

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{Layout, LoggedIn};
use crate::dialplan_file::{self, FileError, Problem, TraceRequest};
use crate::errors::PageError;
use crate::validate::{FieldError, Problems};
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/dialplan", get(page).post(save))
        .route("/dialplan/trace", post(run_trace))
}

/// A line number of the gutter, marked when a problem is on it.
pub struct GutterLine {
    pub number: usize,
    pub bad: bool,
}

#[derive(Default, Clone, Deserialize)]
pub struct TraceForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// `2026-12-06T23:00`, UTC; empty: now.
    #[serde(default)]
    pub at: String,
    /// Dial outcomes in order, separated by commas.
    #[serde(default)]
    pub dial: String,
    /// Menu keys in order, separated by commas.
    #[serde(default)]
    pub digits: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "dialplan.html")]
struct DialplanPage {
    layout: Layout,
    path: String,
    text: String,
    gutter: Vec<GutterLine>,
    problems: Vec<Problem>,
    notice: String,
    /// A failure that is not the text's (no file configured, unreadable).
    failure: String,
    trace: TraceForm,
    trace_problems: Problems,
    steps: Vec<String>,
}

impl DialplanPage {
    fn new(state: &Shared, layout: Layout) -> DialplanPage {
        let mut page = DialplanPage {
            layout,
            path: String::new(),
            text: String::new(),
            gutter: Vec::new(),
            problems: Vec::new(),
            notice: String::new(),
            failure: String::new(),
            trace: TraceForm::default(),
            trace_problems: Problems::default(),
            steps: Vec::new(),
        };
        match dialplan_file::configured(state.live.dialplan_file()) {
            Ok(path) => {
                page.path = path.display().to_string();
                match dialplan_file::read(&path) {
                    Ok(text) => page.set_text(text, Vec::new()),
                    Err(e) => page.failure = e.to_string(),
                }
            }
            Err(e) => page.failure = e.to_string(),
        }
        page
    }

    fn set_text(&mut self, text: String, problems: Vec<Problem>) {
        let lines = text.lines().count().max(1) + usize::from(text.ends_with('\n'));
        self.gutter = (1..=lines)
            .map(|number| GutterLine {
                number,
                bad: problems.iter().any(|p| p.line == number),
            })
            .collect();
        self.text = text;
        self.problems = problems;
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
) -> DialplanPage {
    let mut page = DialplanPage::new(&state, Layout::new(&session, "dialplan"));
    if q.saved.is_some() {
        page.notice = "Saved and reloaded: new calls follow it now.".into();
    }
    page
}

#[derive(Deserialize)]
struct SaveForm {
    csrf: Option<String>,
    #[serde(default)]
    text: String,
    /// Set by the Check button: validate only.
    check: Option<String>,
}

/// Line endings as the file has them on disk: a browser sends CR LF.
fn unix_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

async fn save(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Form(form): Form<SaveForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let mut page = DialplanPage::new(&state, Layout::new(&session, "dialplan"));
    if !page.failure.is_empty() && page.path.is_empty() {
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    let path = std::path::PathBuf::from(&page.path);
    let text = unix_lines(&form.text);
    if let Err(problems) = state.live.check_dialplan(&path, &text).await {
        page.set_text(text, problems);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    if form.check.is_some() {
        page.set_text(text, Vec::new());
        page.notice = "No problems found. Not saved yet.".into();
        return Ok(page.into_response());
    }
    dialplan_file::write_atomically(&path, &text).map_err(|e| {
        tracing::error!(error = %e, "web admin: dialplan not saved");
        PageError::BadRequest(e.to_string())
    })?;
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "dialplan.save", &page.path, "")
        .await;
    tracing::info!(user = %session.user, path = %page.path, "dialplan saved in the web admin");
    if let Err(problems) = state.live.reload_dialplan().await {
        // Checked above, so only a change on disk in between gets here.
        page.failure = format!(
            "Saved, but the PBX did not load it: {}",
            problems.join("; ")
        );
        page.set_text(text, Vec::new());
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    Ok(Redirect::to("/dialplan?saved=1").into_response())
}

/// The trace form as a request, or its problems by field.
pub fn trace_request(form: &TraceForm, now: u64) -> Result<TraceRequest, Problems> {
    let mut problems = Vec::new();
    let number_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+*#".contains(&b))
    };
    let from = form.from.trim().to_string();
    if !number_ok(&from) {
        problems.push(FieldError {
            field: "from",
            message: "the caller's number: digits, + * #".into(),
        });
    }
    let to = form.to.trim().to_string();
    if !number_ok(&to) {
        problems.push(FieldError {
            field: "to",
            message: "the number dialed: digits, + * #".into(),
        });
    }
    let at = match crate::cdr_filter::parse_time(&form.at) {
        Ok(at) => at.unwrap_or(now),
        Err(message) => {
            problems.push(FieldError {
                field: "at",
                message,
            });
            now
        }
    };
    let mut dial = Vec::new();
    for item in form.dial.split(',').filter(|s| !s.trim().is_empty()) {
        match dialplan_file::parse_outcome(item) {
            Ok(o) => dial.push(o),
            Err(message) => {
                problems.push(FieldError {
                    field: "dial",
                    message,
                });
                break;
            }
        }
    }
    let digits: Vec<String> = form
        .digits
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = digits.iter().find(|d| {
        !d.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    }) {
        problems.push(FieldError {
            field: "digits",
            message: format!("`{bad}`: keys are 0-9, * and #"),
        });
    }
    if problems.is_empty() {
        Ok(TraceRequest {
            from,
            to,
            at,
            dial,
            digits,
        })
    } else {
        Err(Problems(problems))
    }
}

async fn run_trace(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Form(form): Form<TraceForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let mut page = DialplanPage::new(&state, Layout::new(&session, "dialplan"));
    page.trace = TraceForm {
        csrf: None,
        ..form.clone()
    };
    let request = match trace_request(&form, state.now()) {
        Ok(r) => r,
        Err(problems) => {
            page.trace_problems = problems;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let path = std::path::PathBuf::from(&page.path);
    match state.live.check_dialplan(&path, &page.text).await {
        Ok(plan) => {
            let extensions = state.extensions.list_extensions().await?;
            page.steps = dialplan_file::trace(&plan, &extensions, &request);
            Ok(page.into_response())
        }
        Err(problems) => {
            let text = page.text.clone();
            page.set_text(text, problems);
            page.failure = "The file on disk has problems: fix them before tracing.".into();
            Ok((StatusCode::CONFLICT, page).into_response())
        }
    }
}

impl From<FileError> for PageError {
    fn from(e: FileError) -> PageError {
        PageError::BadRequest(e.to_string())
    }
}
