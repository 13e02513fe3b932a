//! The audit log: who changed what, when, from where, newest first, a page at a time.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use pbx_store::AuditEntry;
use serde::Deserialize;

use super::extensions::page_count;
use super::{Layout, LoggedIn};
use crate::Shared;
use crate::errors::PageError;

pub const PER_PAGE: usize = 50;

pub fn router() -> Router<Shared> {
    Router::new().route("/audit", get(page))
}

/// An entry as the page shows it.
pub struct Row {
    pub when: String,
    pub entry: AuditEntry,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    rows: Vec<Row>,
    page: usize,
    pages: usize,
    total: usize,
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<String>,
}

async fn page(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<PageQuery>,
) -> Result<AuditPage, PageError> {
    // A page that is not a number or past the end shows the nearest one.
    let asked = q
        .page
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, usize::MAX / PER_PAGE);
    let fetch = |page: usize| {
        let offset = ((page - 1) * PER_PAGE) as u64;
        state.audit.audit_page(offset, PER_PAGE as u32)
    };
    let (mut found, total) = fetch(asked).await?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let pages = page_count(total, PER_PAGE);
    let page = asked.min(pages);
    if page != asked {
        found = fetch(page).await?.0;
    }
    Ok(AuditPage {
        layout: Layout::new(&session, "audit"),
        rows: found
            .into_iter()
            .map(|entry| Row {
                when: super::when(entry.entry.at),
                entry,
            })
            .collect(),
        page,
        pages,
        total,
    })
}
