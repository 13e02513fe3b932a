//! `/` once logged in: is the PBX well (SIP engine, database, mail), how many devices are
//! registered and calls are up now, the calls per hour of the last day as a chart drawn on
//! the server, the most recent bans and security events.

use askama::Template;
use askama_web::WebTemplate;
use std::collections::HashSet;

use super::Layout;
use super::security::EventRow;
use super::status::BanRow;
use crate::Shared;
use crate::chart::{self, HourChart};
use crate::sessions::Session;

/// How many bans the dashboard lists.
const RECENT_BANS: usize = 5;
/// How many security events the dashboard lists.
const RECENT_EVENTS: usize = 8;

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    sip_up: bool,
    database_up: bool,
    devices: usize,
    extensions_registered: usize,
    calls_now: usize,
    calls_answered: usize,
    chart: HourChart,
    bans: Vec<BanRow>,
    bans_total: usize,
    events: Vec<EventRow>,
    /// `None`: no mail server configured.
    mail: Option<MailTile>,
}

/// The dashboard's mail line.
pub struct MailTile {
    pub server: String,
    pub failing: bool,
    /// Whether anything was delivered since the PBX started.
    pub delivered: bool,
    pub queued: usize,
    /// The last failure's error and when, when failing.
    pub error: String,
}

pub async fn page(state: &Shared, session: &Session) -> DashboardPage {
    let now = state.now();
    let registered = state.live.registrations(now);
    let extensions_registered = registered
        .iter()
        .map(|b| b.aor.as_str())
        .collect::<HashSet<_>>()
        .len();
    let calls = state.live.calls();
    // The database is up when it answers; its failure shows as "down", never as an error
    // page: the dashboard is where an admin looks when something is wrong.
    let bans = state.bans.active_bans(now).await;
    let per_hour = state
        .cdrs
        .calls_per_hour((now / 3600).saturating_sub(23) * 3600, now + 1)
        .await;
    let database_up = bans.is_ok() && per_hour.is_ok();
    if let Err(e) = &bans {
        tracing::error!(error = %e, "dashboard: the database failed");
    }
    let mut bans = bans.unwrap_or_default();
    bans.sort_by_key(|b| std::cmp::Reverse(b.created_at));
    let bans_total = bans.len();
    DashboardPage {
        layout: Layout::new(session, "dashboard"),
        sip_up: state.live.sip_running(),
        database_up,
        devices: registered.len(),
        extensions_registered,
        calls_answered: calls.iter().filter(|c| c.answered_at.is_some()).count(),
        calls_now: calls.len(),
        chart: chart::last_day(now, &per_hour.unwrap_or_default()),
        bans: bans
            .into_iter()
            .take(RECENT_BANS)
            .map(|b| BanRow {
                address: b.address.to_string(),
                reason: b.reason,
                until: super::when(b.until),
                left: super::remaining(b.until, now),
            })
            .collect(),
        bans_total,
        mail: state.live.mail_health().map(|m| MailTile {
            failing: m.failing(),
            delivered: m.last_sent.is_some(),
            error: m
                .last_failure
                .as_ref()
                .filter(|_| m.failing())
                .map(|(at, e)| format!("{e} ({})", super::security::ago(*at, now)))
                .unwrap_or_default(),
            server: m.server,
            queued: m.queued,
        }),
        events: state
            .live
            .security_events(RECENT_EVENTS)
            .iter()
            .map(|e| EventRow::new(e, now))
            .collect(),
    }
}
