//! `/api/v1/mailboxes`: the mailboxes holding messages, a mailbox's messages, a message's
//! audio (with `Range`), moving a message to another folder and deleting it with its file.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use pbx_store::{Folder, Message};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiUser, json_error};
use crate::Shared;
use crate::audio::AudioError;
use crate::errors::{ApiError, ErrorBody};
use crate::messages::{self, MessageError};

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> ApiError {
        match e {
            MessageError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            MessageError::Audio(AudioError::Io(io)) => {
                tracing::error!(error = %io, "voicemail audio could not be read");
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "the message's audio could not be read",
                )
            }
            MessageError::Audio(a) => ApiError::new(StatusCode::NOT_FOUND, a.to_string()),
            MessageError::Store(s) => ApiError::from(s),
        }
    }
}

/// A message id from the path; one that is not a number names no message.
fn message_id(number: &str, id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("message `{id}` of mailbox {number}")))
}

/// A mailbox that holds messages.
#[derive(Serialize, ToSchema)]
pub struct MailboxOut {
    /// The extension number.
    pub number: String,
    pub new: u64,
    pub old: u64,
    pub saved: u64,
}

/// The mailboxes that hold at least one message, by number (every extension has a mailbox;
/// empty ones are left out).
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes",
    tag = "voicemail",
    responses(
        (status = 200, body = Vec<MailboxOut>),
        (status = 401, body = ErrorBody)
    )
)]
pub async fn mailboxes(State(state): State<Shared>) -> Result<Json<Vec<MailboxOut>>, ApiError> {
    Ok(Json(
        state
            .mailboxes
            .mailboxes_with_messages()
            .await?
            .into_iter()
            .map(|(number, c)| MailboxOut {
                number,
                new: c.new,
                old: c.old,
                saved: c.saved,
            })
            .collect(),
    ))
}

/// A voicemail message.
#[derive(Serialize, ToSchema)]
pub struct MessageOut {
    pub id: i64,
    /// `new`, `old` (heard) or `saved`.
    pub folder: String,
    /// Empty when unknown.
    pub caller_number: String,
    pub caller_name: String,
    /// Unix seconds.
    pub received_at: u64,
    pub duration_ms: u64,
    /// Where its WAV is served.
    pub audio: String,
}

impl From<Message> for MessageOut {
    fn from(m: Message) -> MessageOut {
        MessageOut {
            audio: format!(
                "/api/v1/mailboxes/{}/messages/{}/audio",
                m.message.mailbox, m.id
            ),
            id: m.id,
            folder: m.folder.as_str().into(),
            caller_number: m.message.caller_number,
            caller_name: m.message.caller_name,
            received_at: m.message.received_at,
            duration_ms: m.message.duration_ms,
        }
    }
}

/// The messages of a mailbox, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{number}/messages",
    tag = "voicemail",
    params(("number" = String, Path, description = "The extension number")),
    responses(
        (status = 200, body = Vec<MessageOut>),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn messages(
    State(state): State<Shared>,
    Path(number): Path<String>,
) -> Result<Json<Vec<MessageOut>>, ApiError> {
    if state.mailboxes.mailbox(&number).await?.is_none() {
        return Err(ApiError::not_found(format!("extension {number}")));
    }
    Ok(Json(
        state
            .mailboxes
            .messages(&number, None)
            .await?
            .into_iter()
            .map(MessageOut::from)
            .collect(),
    ))
}

/// The message's audio: a WAV (G.711 or 16-bit PCM, 8 kHz mono), whole or the one byte
/// range asked for.
#[utoipa::path(
    get,
    path = "/api/v1/mailboxes/{number}/messages/{id}/audio",
    tag = "voicemail",
    params(
        ("number" = String, Path, description = "The extension number"),
        ("id" = i64, Path, description = "The message id"),
        ("Range" = Option<String>, Header, description = "One range: `bytes=0-1023`")
    ),
    responses(
        (status = 200, description = "The WAV file", content_type = "audio/wav"),
        (status = 206, description = "The range asked for", content_type = "audio/wav"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 416, description = "The range starts past the end")
    )
)]
pub async fn audio(
    State(state): State<Shared>,
    Path((number, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = message_id(&number, &id)?;
    let message = messages::find(&state, &number, id).await?;
    let bytes = messages::audio_bytes(&state, &message).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    Ok(crate::audio::response(
        bytes,
        range,
        &messages::file_name(&message),
        true,
    ))
}

/// What to change in a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePatch {
    /// `new`, `old` (heard) or `saved`.
    pub folder: String,
}

/// Moves a message to another folder (`old` marks it heard); the phones' message lamps
/// follow.
#[utoipa::path(
    patch,
    path = "/api/v1/mailboxes/{number}/messages/{id}",
    tag = "voicemail",
    params(
        ("number" = String, Path, description = "The extension number"),
        ("id" = i64, Path, description = "The message id")
    ),
    request_body = MessagePatch,
    responses(
        (status = 200, body = MessageOut),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn patch(
    State(state): State<Shared>,
    axum::Extension(user): axum::Extension<ApiUser>,
    Path((number, id)): Path<(String, String)>,
    body: Result<Json<MessagePatch>, JsonRejection>,
) -> Result<Json<MessageOut>, ApiError> {
    let id = message_id(&number, &id)?;
    let Json(p) = body.map_err(json_error)?;
    let folder = Folder::parse(&p.folder).ok_or_else(|| {
        ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "folder",
            "folder must be new, old or saved",
        )
    })?;
    let moved = messages::move_to(&state, &number, id, folder).await?;
    tracing::info!(user = %user.0, mailbox = %number, id, folder = folder.as_str(), "voicemail message moved through the API");
    Ok(Json(MessageOut::from(moved)))
}

/// Deletes a message and its audio file; the phones' message lamps follow.
#[utoipa::path(
    delete,
    path = "/api/v1/mailboxes/{number}/messages/{id}",
    tag = "voicemail",
    params(
        ("number" = String, Path, description = "The extension number"),
        ("id" = i64, Path, description = "The message id")
    ),
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
    Path((number, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = message_id(&number, &id)?;
    messages::delete(&state, &number, id).await?;
    actor
        .record(
            &state,
            "voicemail.delete",
            &number,
            &format!("message {id}"),
        )
        .await;
    tracing::info!(user = %user.0, mailbox = %number, id, "voicemail message deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}
