//! The call records: search by time, extension and disposition, newest first a page at a
//! time, and the same search as a CSV file (streamed in pages, so a year of calls does not
//! sit in memory).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pbx_store::{Cdr, CdrQuery};

use super::calls::{clock_duration, encryption_words};
use super::{Layout, LoggedIn};
use crate::Shared;
use crate::cdr_filter::{self, CdrSearch, DISPOSITIONS};
use crate::errors::PageError;
use crate::validate::Problems;

pub const PER_PAGE: u32 = 50;
/// Rows per database round trip of a CSV export.
const EXPORT_BATCH: u32 = 1000;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/cdrs", get(search))
        .route("/cdrs.csv", get(export))
}

pub struct CdrRow {
    pub started: String,
    pub caller: String,
    pub called: String,
    pub disposition: String,
    pub talked: String,
    pub codec: String,
    pub encryption: &'static str,
    pub encrypted: bool,
    pub cause: String,
}

impl From<&Cdr> for CdrRow {
    fn from(cdr: &Cdr) -> CdrRow {
        let c = &cdr.call;
        CdrRow {
            started: super::when(c.started_at),
            caller: c.caller.clone(),
            called: c.called.clone(),
            disposition: c.disposition.clone(),
            talked: if c.answered_at.is_some() {
                clock_duration(c.duration_secs)
            } else {
                String::new()
            },
            codec: c.codec.clone().unwrap_or_default(),
            encryption: encryption_words(c.caller_encrypted, c.callee_encrypted),
            encrypted: c.caller_encrypted && c.callee_encrypted,
            cause: c.hangup_cause.clone(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "cdrs.html")]
struct CdrsPage {
    layout: Layout,
    form: CdrSearch,
    problems: Problems,
    dispositions: Vec<(&'static str, bool)>,
    rows: Vec<CdrRow>,
    /// The query string of this search without the cursor (for the links).
    filters: String,
    /// Where the next page starts; empty on the last page.
    next: String,
    /// Whether this is a later page (a link back to the newest).
    later: bool,
}

/// `key=value&...` of the search's non-empty filters, for links.
fn filters_query(form: &CdrSearch) -> String {
    [
        ("from", &form.from),
        ("to", &form.to),
        ("extension", &form.extension),
        ("disposition", &form.disposition),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k}={}", urlencode(v.trim())))
    .collect::<Vec<_>>()
    .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(form): Query<CdrSearch>,
) -> Result<Response, PageError> {
    let dispositions = DISPOSITIONS
        .iter()
        .map(|d| (*d, *d == form.disposition.trim()))
        .collect();
    let mut page = CdrsPage {
        layout: Layout::new(&session, "cdrs"),
        filters: filters_query(&form),
        later: !form.cursor.trim().is_empty(),
        form: form.clone(),
        problems: Problems::default(),
        dispositions,
        rows: Vec::new(),
        next: String::new(),
    };
    let query = match cdr_filter::query(&form, PER_PAGE + 1) {
        Ok(q) => q,
        Err(problems) => {
            page.problems = problems;
            return Ok((StatusCode::BAD_REQUEST, page).into_response());
        }
    };
    let mut found = state.cdrs.search_cdrs(&query).await?;
    // One more than a page tells whether there is a next one.
    if found.len() > PER_PAGE as usize {
        found.truncate(PER_PAGE as usize);
        page.next = found.last().map(cdr_filter::cursor_of).unwrap_or_default();
    }
    page.rows = found.iter().map(CdrRow::from).collect();
    Ok(page.into_response())
}

async fn export(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(form): Query<CdrSearch>,
) -> Result<Response, PageError> {
    let query = cdr_filter::query(&form, EXPORT_BATCH).map_err(|p| {
        let text =
            p.0.iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
        PageError::BadRequest(text)
    })?;
    tracing::info!(user = %session.user, "call records exported");
    Ok(csv_response(state, query))
}

/// The records `query` finds as a CSV download, read in pages of `query.limit` as the
/// client takes them.
pub fn csv_response(state: Shared, query: CdrQuery) -> Response {
    enum Next {
        Header(CdrQuery),
        Page(CdrQuery),
        Done,
    }
    let stream = futures_util::stream::unfold(Next::Header(query), move |next| {
        let state = state.clone();
        async move {
            match next {
                Next::Header(q) => Some((
                    Ok::<_, pbx_store::StoreError>(cdr_filter::CSV_HEADER.to_string()),
                    Next::Page(q),
                )),
                Next::Page(mut q) => match state.cdrs.search_cdrs(&q).await {
                    Ok(rows) if rows.is_empty() => None,
                    Ok(rows) => {
                        let chunk: String = rows.iter().map(cdr_filter::csv_line).collect();
                        let full = rows.len() >= q.limit as usize;
                        q.before = rows.last().map(|c| (c.call.started_at, c.id));
                        Some((Ok(chunk), if full { Next::Page(q) } else { Next::Done }))
                    }
                    // The status line is sent already: cut the download short, which the
                    // client sees as a failed transfer, and say why in the log.
                    Err(e) => {
                        tracing::error!(error = %e, "call record export failed");
                        Some((Err(e), Next::Done))
                    }
                },
                Next::Done => None,
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"call-records.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
