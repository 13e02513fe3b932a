//! `/api/v1/registrations`, `/api/v1/bans` and `/api/v1/security/events`.

use std::net::IpAddr;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Shared;
use crate::errors::{ApiError, ErrorBody};

/// A device registered now.
#[derive(Serialize, ToSchema)]
pub struct RegistrationOut {
    pub extension: String,
    pub contact: String,
    /// `udp`, `tcp`, `tls`, ...
    pub transport: String,
    /// Where its REGISTER came from.
    pub source: String,
    /// Unix seconds.
    pub expires_at: u64,
    pub user_agent: String,
    /// The last OPTIONS qualify result, when qualified.
    pub reachable: Option<bool>,
}

/// The devices registered now, by extension.
#[utoipa::path(
    get,
    path = "/api/v1/registrations",
    tag = "status",
    responses(
        (status = 200, body = Vec<RegistrationOut>),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn registrations(State(state): State<Shared>) -> Json<Vec<RegistrationOut>> {
    Json(
        state
            .live
            .registrations(state.now())
            .into_iter()
            .map(|b| RegistrationOut {
                contact: b.contact(),
                expires_at: b.expires_at(),
                transport: b.transport.to_string(),
                source: b.source.to_string(),
                extension: b.aor,
                user_agent: b.user_agent,
                reachable: b.reachable,
            })
            .collect(),
    )
}

/// A source address banned now.
#[derive(Serialize, ToSchema)]
pub struct BanOut {
    pub address: String,
    pub reason: String,
    /// Unix seconds.
    pub until: u64,
    /// Unix seconds.
    pub created_at: u64,
}

/// The bans in force, soonest expiry first.
#[utoipa::path(
    get,
    path = "/api/v1/bans",
    tag = "status",
    responses(
        (status = 200, body = Vec<BanOut>),
        (status = 401, body = ErrorBody),
        (status = 500, body = ErrorBody)
    )
)]
pub async fn bans(State(state): State<Shared>) -> Result<Json<Vec<BanOut>>, ApiError> {
    Ok(Json(
        state
            .bans
            .active_bans(state.now())
            .await?
            .into_iter()
            .map(|b| BanOut {
                address: b.address.to_string(),
                reason: b.reason,
                until: b.until,
                created_at: b.created_at,
            })
            .collect(),
    ))
}

/// Lifts a ban.
#[utoipa::path(
    delete,
    path = "/api/v1/bans/{address}",
    tag = "status",
    params(("address" = String, Path, description = "The banned IP address")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn lift_ban(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    let addr: IpAddr = address.parse().map_err(|_| {
        ApiError::field(
            StatusCode::BAD_REQUEST,
            "address",
            format!("`{address}` is not an IP address"),
        )
    })?;
    if state.live.lift_ban(addr).await? {
        actor
            .record(&state, "ban.lift", &addr.to_string(), "")
            .await;
        tracing::info!(address = %addr, "ban lifted through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("a ban of {addr}")))
    }
}

/// A security event the running PBX kept.
#[derive(Serialize, ToSchema)]
pub struct SecurityEventOut {
    /// Unix seconds of the latest occurrence.
    pub at: u64,
    /// auth_failed, login_failed, banned, network_refused, acl_refused, rate_limited
    pub kind: String,
    /// The source address.
    pub source: String,
    /// The extension or admin named, if any.
    pub user: String,
    pub detail: String,
    /// How many times in a row from this source.
    pub count: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// 1 to 200; default 50.
    pub limit: Option<u32>,
}

/// The most recent security events (kept in memory since the PBX started), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/security/events",
    tag = "status",
    params(EventParams),
    responses(
        (status = 200, body = Vec<SecurityEventOut>),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn security_events(
    State(state): State<Shared>,
    params: Result<Query<EventParams>, QueryRejection>,
) -> Result<Json<Vec<SecurityEventOut>>, ApiError> {
    let Query(p) = params.map_err(super::query_error)?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
            "limit must be 1 to 200",
        ));
    }
    Ok(Json(
        state
            .live
            .security_events(limit as usize)
            .into_iter()
            .map(|e| SecurityEventOut {
                at: e.at,
                kind: e.kind.as_str().into(),
                source: e.source.to_string(),
                user: e.user,
                detail: e.detail,
                count: e.count,
            })
            .collect(),
    ))
}
