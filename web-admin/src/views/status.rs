//! What is live now: the registered devices, and the banned addresses with a button to lift
//! each ban.

use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::extensions::Device;
use super::{Layout, LoggedIn};
use crate::errors::PageError;
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/registrations", get(registrations))
        .route("/bans", get(bans))
        .route("/bans/{address}/lift", post(lift))
}

#[derive(Template, WebTemplate)]
#[template(path = "registrations.html")]
struct RegistrationsPage {
    layout: Layout,
    rows: Vec<(String, Device)>,
}

async fn registrations(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
) -> RegistrationsPage {
    let now = state.now();
    RegistrationsPage {
        layout: Layout::new(&session, "registrations"),
        rows: state
            .live
            .registrations(now)
            .iter()
            .map(|b| (b.aor.clone(), Device::from(b, now)))
            .collect(),
    }
}

pub struct BanRow {
    pub address: String,
    pub reason: String,
    pub until: String,
    pub left: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "bans.html")]
struct BansPage {
    layout: Layout,
    rows: Vec<BanRow>,
    notice: String,
}

#[derive(Deserialize)]
struct BansQuery {
    lifted: Option<String>,
}

async fn bans(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<BansQuery>,
) -> Result<BansPage, PageError> {
    let now = state.now();
    let rows = state
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
    Ok(BansPage {
        layout: Layout::new(&session, "security"),
        rows,
        notice: q
            .lifted
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|a| format!("The ban of {a} is lifted."))
            .unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn lift(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(address): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let addr: IpAddr = address
        .parse()
        .map_err(|_| PageError::BadRequest(format!("`{address}` is not an IP address.")))?;
    if !state.live.lift_ban(addr).await? {
        return Err(PageError::NotFound(format!("{addr} is not banned.")));
    }
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "ban.lift", &addr.to_string(), "")
        .await;
    tracing::info!(user = %session.user, address = %addr, "ban lifted in the web admin");
    Ok(Redirect::to(&format!("/bans?lifted={addr}")).into_response())
}
