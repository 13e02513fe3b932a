//! `GET /api/v1/audit`: the audit log, newest first, a page at a time.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query_error;
use crate::Shared;
use crate::errors::{ApiError, ErrorBody};

/// One recorded change.
#[derive(Serialize, ToSchema)]
pub struct AuditOut {
    pub id: u64,
    /// Unix seconds.
    pub at: u64,
    /// The admin (for an API call, the token's admin).
    pub admin: String,
    /// The client's address.
    pub source: String,
    /// `web` or `api`.
    pub via: String,
    /// `thing.verb`: `extension.create`, `trunk.update`, `ban.lift`, ...
    pub action: String,
    /// What it was done to.
    pub target: String,
    pub detail: String,
}

/// One page of the log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditOut>,
    pub page: u32,
    pub per_page: u32,
    /// Entries over all pages.
    pub total: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// 1-based; default 1.
    pub page: Option<u32>,
    /// 1 to 500; default 50.
    pub per_page: Option<u32>,
}

/// The audit log of admin changes, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "admins",
    params(AuditParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<Shared>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(params) = params.map_err(query_error)?;
    let (page, per_page, offset) = super::paging(params.page, params.per_page)?;
    let (found, total) = state.audit.audit_page(offset, per_page).await?;
    let items = found
        .into_iter()
        .map(|e| AuditOut {
            id: e.id,
            at: e.entry.at,
            admin: e.entry.admin,
            source: e.entry.source,
            via: e.entry.via,
            action: e.entry.action,
            target: e.entry.target,
            detail: e.entry.detail,
        })
        .collect();
    Ok(Json(AuditPage {
        items,
        page,
        per_page,
        total,
    }))
}
