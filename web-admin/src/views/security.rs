//! Security: the bans in force (with a button to lift each) and the recent security events
//! the running PBX kept (failed SIP authentications and web logins, bans, refused networks,
//! ACL and rate-limit drops). The events refresh themselves (htmx).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::status::BanRow;
use super::{Layout, LoggedIn};
use crate::Shared;
use crate::errors::PageError;
use crate::live::SecurityEvent;

/// How many events the page lists.
pub const SHOWN: usize = 100;

pub fn router() -> Router<Shared> {
    Router::new().route("/security", get(page))
}

/// An event as the pages show it.
pub struct EventRow {
    pub when: String,
    pub ago: String,
    pub kind: &'static str,
    pub words: &'static str,
    pub source: String,
    pub user: String,
    pub detail: String,
    pub count: u64,
}

impl EventRow {
    pub fn new(e: &SecurityEvent, now: u64) -> EventRow {
        EventRow {
            when: super::when(e.at),
            ago: ago(e.at, now),
            kind: e.kind.as_str(),
            words: e.kind.words(),
            source: e.source.to_string(),
            user: e.user.clone(),
            detail: e.detail.clone(),
            count: e.count,
        }
    }
}

/// How long ago: `just now`, `5 min ago`, `3 h ago`.
pub fn ago(at: u64, now: u64) -> String {
    match now.saturating_sub(at) {
        0..=59 => "just now".into(),
        s @ 60..=3599 => format!("{} min ago", s / 60),
        s @ 3600..=172_799 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "security.html")]
struct SecurityPage {
    layout: Layout,
    bans: Vec<BanRow>,
    events: Vec<EventRow>,
}

async fn page(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
) -> Result<SecurityPage, PageError> {
    let now = state.now();
    let bans = state
        .bans
        .active_bans(now)
        .await?
        .into_iter()
        .map(|b| BanRow {
            address: b.address.to_string(),
            reason: b.reason,
            until: super::when(b.until),
            left: super::remaining(b.until, now),
        })
        .collect();
    Ok(SecurityPage {
        layout: Layout::new(&session, "security"),
        bans,
        events: state
            .live
            .security_events(SHOWN)
            .iter()
            .map(|e| EventRow::new(e, now))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 400), "5 min ago");
        assert_eq!(ago(0, 7200), "2 h ago");
        assert_eq!(ago(0, 3 * 86400), "3 days ago");
    }
}
