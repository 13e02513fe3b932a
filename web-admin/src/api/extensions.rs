//! `/api/v1/extensions`: list (paged, searchable), get, create, update, delete. Validation is
//! the web form's and the CLI's (the store's rules); a problem names its field.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pbx_store::{Extension, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiUser, json_error, query_error};
use crate::Shared;
use crate::errors::{ApiError, ErrorBody};
use crate::validate::{self, ChangeInput, NewInput, Problems};

/// An extension as the API shows it (no secrets).
#[derive(Serialize, ToSchema)]
pub struct ExtensionOut {
    pub number: String,
    pub name: String,
    pub email: String,
    /// Whether a voicemail PIN is set (the PIN itself is never shown).
    pub has_pin: bool,
    /// Where it may register and call from; empty = anywhere.
    pub allowed_networks: Vec<String>,
    /// `required`, `optional` or `off`.
    pub media_encryption: String,
    /// The dialplan context it calls from; empty: the dialplan decides.
    pub context: String,
    /// Its own public number, its caller ID on trunks; empty: none.
    pub did: String,
    /// Unix seconds.
    pub created_at: u64,
}

impl From<Extension> for ExtensionOut {
    fn from(e: Extension) -> ExtensionOut {
        ExtensionOut {
            allowed_networks: e.allowed_networks.iter().map(ToString::to_string).collect(),
            number: e.number,
            name: e.name,
            email: e.email,
            has_pin: e.has_pin,
            media_encryption: e.media_encryption,
            context: e.context,
            did: e.did,
            created_at: e.created_at,
        }
    }
}

/// One page of extensions.
#[derive(Serialize, ToSchema)]
pub struct ExtensionPage {
    pub items: Vec<ExtensionOut>,
    pub page: u32,
    pub per_page: u32,
    /// Matching extensions over all pages.
    pub total: usize,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based; default 1.
    pub page: Option<u32>,
    /// 1 to 500; default 50.
    pub per_page: Option<u32>,
    /// Only extensions whose number, name or e-mail contains this.
    pub q: Option<String>,
}

/// The extensions, by number, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/extensions",
    tag = "extensions",
    params(ListParams),
    responses(
        (status = 200, body = ExtensionPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<Shared>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ExtensionPage>, ApiError> {
    let Query(params) = params.map_err(query_error)?;
    let (page, per_page, offset) = super::paging(params.page, params.per_page)?;
    let q = params.q.unwrap_or_default();
    let (found, total) = state
        .extensions
        .search_extensions(q.trim(), offset, per_page)
        .await?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let items = found.into_iter().map(ExtensionOut::from).collect();
    Ok(Json(ExtensionPage {
        items,
        page,
        per_page,
        total,
    }))
}

async fn find(state: &Shared, number: &str) -> Result<Extension, ApiError> {
    state
        .extensions
        .list_extensions()
        .await?
        .into_iter()
        .find(|e| e.number == number)
        .ok_or_else(|| ApiError::not_found(format!("extension {number}")))
}

/// One extension.
#[utoipa::path(
    get,
    path = "/api/v1/extensions/{number}",
    tag = "extensions",
    params(("number" = String, Path, description = "The extension number")),
    responses(
        (status = 200, body = ExtensionOut),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn get_one(
    State(state): State<Shared>,
    Path(number): Path<String>,
) -> Result<Json<ExtensionOut>, ApiError> {
    Ok(Json(find(&state, &number).await?.into()))
}

/// A new extension. Without `password`, a strong one is generated and returned once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExtensionIn {
    /// 2 to 15 digits.
    pub number: String,
    pub password: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Voicemail PIN: 4 to 12 digits.
    pub pin: Option<String>,
    /// `required`, `optional` (default) or `off`.
    pub media_encryption: Option<String>,
    /// CIDRs; empty or absent = anywhere.
    pub allowed_networks: Option<Vec<String>>,
    /// Its own public number (digits, optional leading `+`), its caller ID on trunks.
    pub did: Option<String>,
}

/// What a create returns: the extension, and the password when it was generated.
#[derive(Serialize, ToSchema)]
pub struct CreatedOut {
    pub extension: ExtensionOut,
    /// Only when generated: the one time it can be seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn first_problem(problems: Problems) -> ApiError {
    problems.0.into_iter().next().map_or_else(
        || ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        |p| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, p.field, p.message),
    )
}

/// Creates an extension (a SIP account and a voicemail box).
#[utoipa::path(
    post,
    path = "/api/v1/extensions",
    tag = "extensions",
    request_body = NewExtensionIn,
    responses(
        (status = 201, body = CreatedOut),
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
    body: Result<Json<NewExtensionIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    let generated = body.password.is_none().then(crate::password::generate);
    let input = NewInput {
        number: body.number,
        password: body
            .password
            .or_else(|| generated.clone())
            .unwrap_or_default(),
        name: body.name.unwrap_or_default(),
        email: body.email.unwrap_or_default(),
        pin: body.pin.unwrap_or_default(),
        media_encryption: body.media_encryption.unwrap_or_default(),
        allowed_networks: body.allowed_networks.unwrap_or_default().join(","),
        did: body.did.unwrap_or_default(),
    };
    let ext = validate::new_extension(&input).map_err(first_problem)?;
    let number = ext.number.clone();
    state
        .extensions
        .add_extension(&state.settings.domain, ext)
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) | StoreError::Invalid(_) => ApiError::field(
                if matches!(e, StoreError::Duplicate(_)) {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                "number",
                e.to_string(),
            ),
            other => other.into(),
        })?;
    actor.record(&state, "extension.create", &number, "").await;
    tracing::info!(user = %user.0, extension = %number, "extension created through the API");
    let extension = find(&state, &number).await?.into();
    let location = format!("/api/v1/extensions/{number}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CreatedOut {
            extension,
            password: generated,
        }),
    )
        .into_response())
}

/// Changes to an extension: an absent field stays as it is; an empty name, e-mail or
/// context clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionUpdate {
    pub password: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Voicemail PIN: 4 to 12 digits.
    pub pin: Option<String>,
    /// `required`, `optional` or `off`.
    pub media_encryption: Option<String>,
    /// A context of the dialplan; empty: the dialplan decides.
    pub context: Option<String>,
    /// Its own public number; empty clears it.
    pub did: Option<String>,
}

/// Changes an extension in place; its registrations stay.
#[utoipa::path(
    patch,
    path = "/api/v1/extensions/{number}",
    tag = "extensions",
    params(("number" = String, Path, description = "The extension number")),
    request_body = ExtensionUpdate,
    responses(
        (status = 200, body = ExtensionOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The DID is another extension's (`field`: `did`)"),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn update(
    State(state): State<Shared>,
    axum::Extension(actor): axum::Extension<crate::audit::Actor>,
    axum::Extension(user): axum::Extension<ApiUser>,
    Path(number): Path<String>,
    body: Result<Json<ExtensionUpdate>, JsonRejection>,
) -> Result<Json<ExtensionOut>, ApiError> {
    let Json(body) = body.map_err(json_error)?;
    find(&state, &number).await?;
    // The form keeps a PIN or password left empty; here an empty one is a mistake.
    for (field, value) in [("password", &body.password), ("pin", &body.pin)] {
        if value.as_deref() == Some("") {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                format!("the {field} is empty (leave it out to keep it)"),
            ));
        }
    }
    let input = ChangeInput {
        password: body.password,
        name: body.name,
        email: body.email,
        pin: body.pin,
        media_encryption: body.media_encryption,
        context: body.context,
        did: body.did,
    };
    let changes =
        validate::changes(&input, state.live.contexts().as_deref()).map_err(first_problem)?;
    if !changes.is_empty()
        && !state
            .extensions
            .update_extension(&state.settings.domain, &number, &changes)
            .await?
    {
        return Err(ApiError::not_found(format!("extension {number}")));
    }
    actor.record(&state, "extension.update", &number, "").await;
    tracing::info!(user = %user.0, extension = %number, "extension changed through the API");
    Ok(Json(find(&state, &number).await?.into()))
}

/// Deletes an extension and its registrations.
#[utoipa::path(
    delete,
    path = "/api/v1/extensions/{number}",
    tag = "extensions",
    params(("number" = String, Path, description = "The extension number")),
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
    Path(number): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.extensions.remove_extension(&number).await? {
        crate::messages::remove_mailbox_files(&state, &number).await;
        actor.record(&state, "extension.delete", &number, "").await;
        tracing::info!(user = %user.0, extension = %number, "extension deleted through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("extension {number}")))
    }
}
