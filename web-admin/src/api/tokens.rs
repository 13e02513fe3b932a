//! `/api/v1/tokens`: the API tokens (listed by id, never the token), a new one for the
//! caller (shown once), and revoking one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ApiUser;
use crate::Shared;
use crate::errors::{ApiError, ErrorBody};

/// An API token as it can be shown.
#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// The first 12 hex digits of the token's SHA-256: what `DELETE` takes.
    pub id: String,
    /// The admin it belongs to.
    pub user: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// A token just made: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct NewTokenOut {
    pub token: String,
    pub id: String,
    pub user: String,
}

/// Every API token, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "admins",
    responses(
        (status = 200, body = Vec<TokenOut>),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<TokenOut>>, ApiError> {
    Ok(Json(
        state
            .admins
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| TokenOut {
                id: t.id,
                user: t.user,
                created_at: t.created_at,
            })
            .collect(),
    ))
}

/// A new token for the admin whose token made the request.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "admins",
    responses(
        (status = 201, body = NewTokenOut),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
) -> Result<(StatusCode, Json<NewTokenOut>), ApiError> {
    let token = state.admins.create_token(&user.0).await?;
    actor
        .record(&state, "token.create", &crate::audit::token_id(&token), "")
        .await;
    tracing::info!(user = %user.0, "API token created through the API");
    Ok((
        StatusCode::CREATED,
        Json(NewTokenOut {
            // The store names a token by the start of its SHA-256.
            id: hex::encode(Sha256::digest(token.as_bytes()))
                .chars()
                .take(12)
                .collect(),
            token,
            user: user.0,
        }),
    ))
}

/// Revokes a token (the caller's own included: it stops working at once).
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "admins",
    params(("id" = String, Path, description = "The token's id from GET /api/v1/tokens")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn revoke(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.admins.revoke_token(&id).await? {
        actor.record(&state, "token.revoke", &id, "").await;
        tracing::info!(user = %user.0, token = %id, "API token revoked through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("a token with id `{id}`")))
    }
}
