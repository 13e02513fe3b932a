//! Voicemail: the mailboxes that hold messages, and one mailbox's messages with a player,
//! download, "mark heard" (new → old), save and delete. The forms work without JavaScript.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use pbx_store::{Folder, Message};
use serde::Deserialize;

use super::calls::clock_duration;
use super::{Layout, LoggedIn};
use crate::audio::AudioError;
use crate::errors::PageError;
use crate::messages::{self, MessageError};
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/voicemail", get(mailboxes))
        .route("/voicemail/{number}", get(mailbox))
        .route("/voicemail/{number}/{id}/audio", get(play))
        .route("/voicemail/{number}/{id}/download", get(download))
        .route("/voicemail/{number}/{id}/move", post(move_to))
        .route("/voicemail/{number}/{id}/delete", post(delete))
}

impl From<MessageError> for PageError {
    fn from(e: MessageError) -> PageError {
        match e {
            MessageError::NotFound { .. } => PageError::NotFound(e.to_string()),
            MessageError::Audio(AudioError::Io(io)) => {
                tracing::error!(error = %io, "voicemail audio could not be read");
                PageError::NotFound("The message's audio could not be read.".into())
            }
            MessageError::Audio(a) => PageError::NotFound(format!("{a}.")),
            MessageError::Store(s) => PageError::Store(s),
        }
    }
}

pub struct MailboxRow {
    pub number: String,
    pub name: String,
    pub new: u64,
    pub old: u64,
    pub saved: u64,
}

#[derive(Template, WebTemplate)]
#[template(path = "voicemail.html")]
struct MailboxesPage {
    layout: Layout,
    rows: Vec<MailboxRow>,
    open: String,
    problem: String,
}

#[derive(Deserialize)]
struct OpenQuery {
    number: Option<String>,
}

async fn mailboxes(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<OpenQuery>,
) -> Result<Response, PageError> {
    let open = q.number.unwrap_or_default().trim().to_string();
    let mut problem = String::new();
    if !open.is_empty() {
        if state.mailboxes.mailbox(&open).await?.is_some() {
            return Ok(Redirect::to(&format!("/voicemail/{open}")).into_response());
        }
        problem = format!("There is no extension {open}.");
    }
    let mut rows = Vec::new();
    for (number, counts) in state.mailboxes.mailboxes_with_messages().await? {
        // Messages of a deleted extension have no mailbox row: shown by number alone.
        let name = state
            .mailboxes
            .mailbox(&number)
            .await?
            .map(|m| m.name)
            .unwrap_or_default();
        rows.push(MailboxRow {
            number,
            name,
            new: counts.new,
            old: counts.old,
            saved: counts.saved,
        });
    }
    Ok(MailboxesPage {
        layout: Layout::new(&session, "voicemail"),
        rows,
        open,
        problem,
    }
    .into_response())
}

pub struct MessageRow {
    pub id: i64,
    pub folder: &'static str,
    pub is_new: bool,
    pub caller: String,
    pub caller_name: String,
    pub received: String,
    pub length: String,
}

impl From<&Message> for MessageRow {
    fn from(m: &Message) -> MessageRow {
        MessageRow {
            id: m.id,
            folder: m.folder.as_str(),
            is_new: m.folder == Folder::New,
            caller: if m.message.caller_number.is_empty() {
                "unknown".into()
            } else {
                m.message.caller_number.clone()
            },
            caller_name: m.message.caller_name.clone(),
            received: super::when(m.message.received_at),
            length: clock_duration(m.message.duration_ms.div_ceil(1000)),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    layout: Layout,
    number: String,
    name: String,
    rows: Vec<MessageRow>,
    /// `all`, `new`, `old` or `saved`.
    folder: &'static str,
    notice: String,
}

#[derive(Deserialize)]
struct MailboxQuery {
    folder: Option<String>,
    done: Option<String>,
}

async fn mailbox(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
    Query(q): Query<MailboxQuery>,
) -> Result<MailboxPage, PageError> {
    let Some(mb) = state.mailboxes.mailbox(&number).await? else {
        return Err(PageError::NotFound(format!(
            "There is no extension {number}."
        )));
    };
    let folder = q.folder.as_deref().and_then(Folder::parse);
    let mut list = state.mailboxes.messages(&number, folder).await?;
    // Newest first, as a mail client lists them.
    list.reverse();
    Ok(MailboxPage {
        layout: Layout::new(&session, "voicemail"),
        number: mb.number,
        name: mb.name,
        rows: list.iter().map(MessageRow::from).collect(),
        folder: folder.map_or("all", Folder::as_str),
        notice: match q.done.as_deref() {
            Some("deleted") => "The message is deleted.".into(),
            Some("moved") => "The message is moved.".into(),
            _ => String::new(),
        },
    })
}

async fn play(
    State(state): State<Shared>,
    LoggedIn(_): LoggedIn,
    Path((number, id)): Path<(String, i64)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    serve(&state, &number, id, &headers, false).await
}

async fn download(
    State(state): State<Shared>,
    LoggedIn(_): LoggedIn,
    Path((number, id)): Path<(String, i64)>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    serve(&state, &number, id, &headers, true).await
}

async fn serve(
    state: &Shared,
    number: &str,
    id: i64,
    headers: &HeaderMap,
    download: bool,
) -> Result<Response, PageError> {
    let message = messages::find(state, number, id).await?;
    let bytes = messages::audio_bytes(state, &message).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    Ok(crate::audio::response(
        bytes,
        range,
        &messages::file_name(&message),
        download,
    ))
}

#[derive(Deserialize)]
struct MoveForm {
    csrf: Option<String>,
    folder: Option<String>,
}

async fn move_to(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path((number, id)): Path<(String, i64)>,
    Form(form): Form<MoveForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let folder = form
        .folder
        .as_deref()
        .and_then(Folder::parse)
        .ok_or_else(|| PageError::BadRequest("The folder must be new, old or saved.".into()))?;
    messages::move_to(&state, &number, id, folder).await?;
    tracing::info!(user = %session.user, mailbox = %number, id, folder = folder.as_str(), "voicemail message moved in the web admin");
    Ok(Redirect::to(&format!("/voicemail/{number}?done=moved")).into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn delete(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path((number, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    messages::delete(&state, &number, id).await?;
    crate::audit::Actor::web(&session, audit_ip)
        .record(
            &state,
            "voicemail.delete",
            &number,
            &format!("message {id}"),
        )
        .await;
    tracing::info!(user = %session.user, mailbox = %number, id, "voicemail message deleted in the web admin");
    Ok(Redirect::to(&format!("/voicemail/{number}?done=deleted")).into_response())
}
