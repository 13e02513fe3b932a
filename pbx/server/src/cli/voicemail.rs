//! `pbx voicemail list MAILBOX`: the mailbox's messages, oldest first.

use super::{CliError, table};
use pbx_store::MailboxStore;

pub(super) async fn list(store: &dyn MailboxStore, mailbox: &str) -> Result<(), CliError> {
    if store.mailbox(mailbox).await?.is_none() {
        return Err(CliError::Failed(format!(
            "no mailbox {mailbox}: no such extension"
        )));
    }
    let rows: Vec<Vec<String>> = store
        .messages(mailbox, None)
        .await?
        .into_iter()
        .map(|m| {
            let caller = match (
                m.message.caller_name.as_str(),
                m.message.caller_number.as_str(),
            ) {
                ("", number) => number.to_string(),
                (name, number) => format!("{name} <{number}>"),
            };
            let secs = m.message.duration_ms / 1000;
            vec![
                m.id.to_string(),
                m.folder.as_str().to_string(),
                caller,
                table::format_unix(m.message.received_at),
                format!("{}:{:02}", secs / 60, secs % 60),
                m.message.path,
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["ID", "FOLDER", "CALLER", "TIME", "LENGTH", "FILE"], &rows)
    );
    Ok(())
}
