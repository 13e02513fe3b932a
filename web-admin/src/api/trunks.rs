//! `/api/v1/trunks`: list with state, get, create, update, delete. Validation is the trunk
//! form's and `pbx trunk add`'s (the store's rules); a problem names its field. The password
//! is taken, never given back.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::{StoreError, Trunk};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiUser, json_error};
use crate::Shared;
use crate::errors::{ApiError, ErrorBody};
use crate::trunk_form::{self, TrunkInput};
use crate::validate::Problems;

/// A trunk as the API shows it (no password).
#[derive(Serialize, ToSchema)]
pub struct TrunkOut {
    pub name: String,
    pub host: String,
    /// `null`: the transport's default (5060, TLS 5061).
    pub port: Option<u16>,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    pub username: String,
    /// Whether a password is stored (it is never shown).
    pub has_password: bool,
    /// Whether the PBX registers to the trunk.
    pub register: bool,
    /// Networks whose calls are this trunk's without digest.
    pub allowed_networks: Vec<String>,
    /// The dialplan context of its inbound calls.
    pub context: String,
    pub outbound_proxy: String,
    /// `extension`, `trunk` or `anonymous`.
    pub caller_id_mode: String,
    pub caller_id: String,
    /// Calls at once; 0: no limit.
    pub channels: u32,
    /// `required`, `optional` or `off`.
    pub media_encryption: String,
    /// In preference order; empty: every codec.
    pub codecs: Vec<String>,
    /// Seconds without any response to an INVITE before the next trunk is tried; `null`:
    /// the PBX's `[calls] trunk_setup_timeout`.
    pub setup_timeout: Option<u32>,
    /// `registered`, `up`, `down` or `unknown` (the PBX reported nothing lately).
    pub state: String,
    /// Why, in a few words.
    pub detail: String,
    /// Unix seconds.
    pub created_at: u64,
}

impl TrunkOut {
    fn from(row: crate::views::trunks::Row) -> TrunkOut {
        let t = row.trunk;
        TrunkOut {
            has_password: !t.password.is_empty(),
            allowed_networks: t.allowed_networks.iter().map(ToString::to_string).collect(),
            name: t.name,
            host: t.host,
            port: t.port,
            transport: t.transport,
            username: t.username,
            register: t.register,
            context: t.context,
            outbound_proxy: t.outbound_proxy,
            caller_id_mode: t.caller_id_mode,
            caller_id: t.caller_id,
            channels: t.channels,
            media_encryption: t.media_encryption,
            codecs: t.codecs,
            setup_timeout: t.setup_timeout,
            state: row.state,
            detail: row.detail,
            created_at: t.created_at,
        }
    }
}

async fn one(state: &Shared, name: &str) -> Result<TrunkOut, ApiError> {
    crate::views::trunks::rows(state, state.now())
        .await?
        .into_iter()
        .find(|r| r.trunk.name == name)
        .map(TrunkOut::from)
        .ok_or_else(|| ApiError::not_found(format!("trunk {name}")))
}

async fn stored(state: &Shared, name: &str) -> Result<Trunk, ApiError> {
    state
        .trunks
        .list_trunks()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::not_found(format!("trunk {name}")))
}

fn first_problem(problems: Problems) -> ApiError {
    problems.0.into_iter().next().map_or_else(
        || ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        |p| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, p.field, p.message),
    )
}

/// The trunks, by name, with their state.
#[utoipa::path(
    get,
    path = "/api/v1/trunks",
    tag = "trunks",
    responses(
        (status = 200, body = Vec<TrunkOut>),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<TrunkOut>>, ApiError> {
    let rows = crate::views::trunks::rows(&state, state.now()).await?;
    Ok(Json(rows.into_iter().map(TrunkOut::from).collect()))
}

/// One trunk.
#[utoipa::path(
    get,
    path = "/api/v1/trunks/{name}",
    tag = "trunks",
    params(("name" = String, Path, description = "The trunk's name")),
    responses(
        (status = 200, body = TrunkOut),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn get_one(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<TrunkOut>, ApiError> {
    Ok(Json(one(&state, &name).await?))
}

/// A trunk's fields. On create, `name` and `host` are needed and an absent field takes its
/// default; on update, an absent field stays as it is.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TrunkIn {
    /// 1 to 32 of `A-Z a-z 0-9 - _` (create only).
    pub name: Option<String>,
    /// `HOST[:PORT]`.
    pub host: Option<String>,
    /// `udp` (default), `tcp` or `tls`.
    pub transport: Option<String>,
    pub username: Option<String>,
    /// Kept as given; on update, absent keeps the stored one (an empty user name clears both).
    pub password: Option<String>,
    pub register: Option<bool>,
    /// CIDRs or addresses.
    pub allowed_networks: Option<Vec<String>>,
    /// Default `from-trunk`.
    pub context: Option<String>,
    pub outbound_proxy: Option<String>,
    /// `extension` (default), `trunk` or `anonymous`.
    pub caller_id_mode: Option<String>,
    pub caller_id: Option<String>,
    /// 0 (default): no limit.
    pub channels: Option<u32>,
    /// `required`, `optional` (default) or `off`.
    pub media_encryption: Option<String>,
    pub codecs: Option<Vec<String>>,
    /// Seconds (1 to 300) without any response to an INVITE before the next trunk is tried;
    /// 0 (default): the PBX's `[calls] trunk_setup_timeout`.
    pub setup_timeout: Option<u32>,
}

impl TrunkIn {
    /// Over `base` (the stored trunk's fields, or the defaults).
    fn over(self, base: TrunkInput) -> TrunkInput {
        TrunkInput {
            name: self.name.unwrap_or(base.name),
            host: self.host.unwrap_or(base.host),
            transport: self.transport.unwrap_or(base.transport),
            username: self.username.unwrap_or(base.username),
            password: self.password.unwrap_or(base.password),
            register: self.register.unwrap_or(base.register),
            allowed_networks: self
                .allowed_networks
                .map_or(base.allowed_networks, |n| n.join(",")),
            context: self.context.unwrap_or(base.context),
            outbound_proxy: self.outbound_proxy.unwrap_or(base.outbound_proxy),
            caller_id_mode: self.caller_id_mode.unwrap_or(base.caller_id_mode),
            caller_id: self.caller_id.unwrap_or(base.caller_id),
            channels: self.channels.map_or(base.channels, |c| c.to_string()),
            media_encryption: self.media_encryption.unwrap_or(base.media_encryption),
            codecs: self.codecs.map_or(base.codecs, |c| c.join(",")),
            setup_timeout: match self.setup_timeout {
                None => base.setup_timeout,
                Some(0) => String::new(),
                Some(s) => s.to_string(),
            },
        }
    }
}

/// Adds a trunk; the running PBX uses it at once.
#[utoipa::path(
    post,
    path = "/api/v1/trunks",
    tag = "trunks",
    request_body = TrunkIn,
    responses(
        (status = 201, body = TrunkOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    body: Result<Json<TrunkIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    for (field, given) in [("name", body.name.is_some()), ("host", body.host.is_some())] {
        if !given {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                format!("missing field `{field}`"),
            ));
        }
    }
    let input = body.over(TrunkInput::default());
    let trunk = trunk_form::trunk(&input, None).map_err(first_problem)?;
    state.trunks.add_trunk(&trunk).await.map_err(|e| match e {
        StoreError::Duplicate(_) => ApiError::field(StatusCode::CONFLICT, "name", e.to_string()),
        StoreError::Invalid(_) => {
            ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "name", e.to_string())
        }
        other => other.into(),
    })?;
    state.live.trunks_changed();
    actor
        .record(&state, "trunk.create", &trunk.name, &trunk.address())
        .await;
    tracing::info!(user = %user.0, trunk = %trunk.name, "trunk created through the API");
    let out = one(&state, &trunk.name).await?;
    let location = format!("/api/v1/trunks/{}", trunk.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(out),
    )
        .into_response())
}

/// Changes a trunk in place; the running PBX uses the change at once.
#[utoipa::path(
    patch,
    path = "/api/v1/trunks/{name}",
    tag = "trunks",
    params(("name" = String, Path, description = "The trunk's name")),
    request_body = TrunkIn,
    responses(
        (status = 200, body = TrunkOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn update(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    Path(name): Path<String>,
    body: Result<Json<TrunkIn>, JsonRejection>,
) -> Result<Json<TrunkOut>, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let current = stored(&state, &name).await?;
    if body.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
            "a trunk cannot be renamed: delete it and add it under the new name",
        ));
    }
    let input = body.over(TrunkInput::from_trunk(&current));
    let trunk = trunk_form::trunk(&input, Some(&current)).map_err(first_problem)?;
    if !state.trunks.update_trunk(&trunk).await? {
        return Err(ApiError::not_found(format!("trunk {name}")));
    }
    state.live.trunks_changed();
    actor
        .record(&state, "trunk.update", &name, &trunk.address())
        .await;
    tracing::info!(user = %user.0, trunk = %name, "trunk changed through the API");
    Ok(Json(one(&state, &name).await?))
}

/// Deletes a trunk; the PBX stops using it (and unregisters) at once.
#[utoipa::path(
    delete,
    path = "/api/v1/trunks/{name}",
    tag = "trunks",
    params(("name" = String, Path, description = "The trunk's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn remove(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.trunks.remove_trunk(&name).await? {
        return Err(ApiError::not_found(format!("trunk {name}")));
    }
    state.live.trunks_changed();
    actor.record(&state, "trunk.delete", &name, "").await;
    tracing::info!(user = %user.0, trunk = %name, "trunk deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}
