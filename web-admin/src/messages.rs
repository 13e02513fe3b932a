//! What the voicemail page and the API do to a message, in one place: find it in its
//! mailbox, move it, delete it with its file, read its audio. Every change tells the running
//! PBX ([`crate::live::Live::mailbox_changed`]) so that the phones' message lamps follow.

use pbx_store::{Folder, Message, StoreError};

use crate::Shared;
use crate::audio::{self, AudioError};

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("mailbox {mailbox} has no message {id}")]
    NotFound { mailbox: String, id: i64 },
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Message `id` if it is in `mailbox` (an id from another mailbox is as good as none).
pub async fn find(state: &Shared, mailbox: &str, id: i64) -> Result<Message, MessageError> {
    match state.mailboxes.message(id).await? {
        Some(m) if m.message.mailbox == mailbox => Ok(m),
        _ => Err(MessageError::NotFound {
            mailbox: mailbox.to_string(),
            id,
        }),
    }
}

/// Moves the message to `folder` (`new` → `old` is "mark heard").
pub async fn move_to(
    state: &Shared,
    mailbox: &str,
    id: i64,
    folder: Folder,
) -> Result<Message, MessageError> {
    let mut message = find(state, mailbox, id).await?;
    if message.folder != folder {
        if !state.mailboxes.move_message(id, folder).await? {
            return Err(MessageError::NotFound {
                mailbox: mailbox.to_string(),
                id,
            });
        }
        message.folder = folder;
        state.live.mailbox_changed(mailbox);
    }
    Ok(message)
}

/// Deletes the row, then the file (the store's rule: the file after the commit). A file that
/// is not under the storage folder is left where it is and logged.
pub async fn delete(state: &Shared, mailbox: &str, id: i64) -> Result<(), MessageError> {
    find(state, mailbox, id).await?;
    let Some(gone) = state.mailboxes.delete_message(id).await? else {
        return Err(MessageError::NotFound {
            mailbox: mailbox.to_string(),
            id,
        });
    };
    state.live.mailbox_changed(mailbox);
    if let Err(error) = audio::remove(
        state.settings.voicemail_storage.as_deref(),
        &gone.message.path,
    )
    .await
    {
        tracing::warn!(%error, mailbox, id, "voicemail message deleted, its file not");
    }
    Ok(())
}

/// The message's WAV bytes, read only from under the storage folder.
pub async fn audio_bytes(state: &Shared, message: &Message) -> Result<Vec<u8>, MessageError> {
    let file = audio::resolve(
        state.settings.voicemail_storage.as_deref(),
        &message.message.path,
    )?;
    tokio::fs::read(file)
        .await
        .map_err(|e| MessageError::Audio(AudioError::Io(e)))
}

/// The download's file name: `voicemail-1001-42.wav` (only safe characters).
pub fn file_name(message: &Message) -> String {
    let mailbox: String = message
        .message
        .mailbox
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
        .collect();
    format!("voicemail-{mailbox}-{}.wav", message.id)
}

/// After its extension was deleted: the mailbox's files (messages, greetings, name) under
/// `[voicemail] storage` go too. A failure is logged (the rows are gone already).
pub async fn remove_mailbox_files(state: &Shared, mailbox: &str) {
    let Some(storage) = state.settings.voicemail_storage.clone() else {
        return;
    };
    let number = mailbox.to_string();
    let done =
        tokio::task::spawn_blocking(move || pbx_store::remove_mailbox_files(&storage, &number))
            .await;
    match done {
        Ok(Ok(0)) => {}
        Ok(Ok(files)) => tracing::info!(
            mailbox,
            files,
            "voicemail files of a deleted extension removed"
        ),
        Ok(Err(error)) => {
            tracing::warn!(mailbox, %error, "voicemail files of a deleted extension not removed")
        }
        Err(error) => {
            tracing::warn!(mailbox, %error, "voicemail files of a deleted extension not removed")
        }
    }
}
