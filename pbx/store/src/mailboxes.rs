//! Voicemail: every extension's mailbox and the messages left in it. The mailbox is the
//! extension's row (its PIN hash and e-mail address, as `pbx extension add` stores them) plus
//! its recorded greetings and the delete-after-e-mail choice; a message is its metadata, the
//! audio being a WAV file whose path the row holds.

use crate::MessageCounts;
use sqlx::Row;
use sqlx::any::AnyRow;

use async_trait::async_trait;

use crate::pins::{pin_matches, pin_problem};
use crate::ports::MailboxStore;
use crate::secrets::hash_secret;
use crate::{Store, StoreError, from_db, to_db};

/// Where a message sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Folder {
    /// Not listened to yet (what lights the phone's lamp).
    New,
    /// Listened to.
    Old,
    /// Kept on purpose (key 9 in the menu).
    Saved,
}

impl Folder {
    pub const ALL: [Folder; 3] = [Folder::New, Folder::Old, Folder::Saved];

    pub fn as_str(self) -> &'static str {
        match self {
            Folder::New => "new",
            Folder::Old => "old",
            Folder::Saved => "saved",
        }
    }

    pub fn parse(text: &str) -> Option<Folder> {
        Folder::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// The kinds of recorded greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GreetingKind {
    /// Played when the extension did not answer or is not registered.
    Unavailable,
    /// Played when it was busy.
    Busy,
    /// Played instead of both while it exists (holidays).
    Temporary,
    /// The owner's name, said in the default greeting instead of the number.
    Name,
}

impl GreetingKind {
    pub const ALL: [GreetingKind; 4] = [
        GreetingKind::Unavailable,
        GreetingKind::Busy,
        GreetingKind::Temporary,
        GreetingKind::Name,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GreetingKind::Unavailable => "unavailable",
            GreetingKind::Busy => "busy",
            GreetingKind::Temporary => "temporary",
            GreetingKind::Name => "name",
        }
    }

    pub fn parse(text: &str) -> Option<GreetingKind> {
        GreetingKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A recorded greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub kind: GreetingKind,
    pub path: String,
    /// Unix seconds.
    pub recorded_at: u64,
}

/// One extension's mailbox (no secrets: whether it has a PIN, not the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The extension number.
    pub number: String,
    pub name: String,
    /// Where new messages are e-mailed; empty: nowhere.
    pub email: String,
    pub has_pin: bool,
    /// Delete a message once it was e-mailed.
    pub delete_after_email: bool,
    /// The recorded greetings, in [`GreetingKind`] order.
    pub greetings: Vec<Greeting>,
}

impl Mailbox {
    pub fn greeting(&self, kind: GreetingKind) -> Option<&Greeting> {
        self.greetings.iter().find(|g| g.kind == kind)
    }
}

/// A message to file (always into [`Folder::New`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub mailbox: String,
    /// The caller's number (From user part) and display name; empty when unknown.
    pub caller_number: String,
    pub caller_name: String,
    /// Unix seconds.
    pub received_at: u64,
    pub duration_ms: u64,
    /// The WAV file.
    pub path: String,
}

/// A filed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub folder: Folder,
    pub message: NewMessage,
}

macro_rules! messages_query {
    ($tail:literal) => {
        concat!(
            "SELECT id, mailbox, folder, caller_number, caller_name, received_at, duration_ms, \
             path FROM voicemail_messages ",
            $tail
        )
    };
}

fn message_from(row: &AnyRow) -> Result<Message, StoreError> {
    let folder: String = row.try_get("folder")?;
    Ok(Message {
        id: row.try_get("id")?,
        folder: Folder::parse(&folder)
            .ok_or_else(|| StoreError::Corrupt(format!("bad voicemail folder `{folder}`")))?,
        message: NewMessage {
            mailbox: row.try_get("mailbox")?,
            caller_number: row.try_get("caller_number")?,
            caller_name: row.try_get("caller_name")?,
            received_at: from_db(row.try_get("received_at")?),
            duration_ms: from_db(row.try_get("duration_ms")?),
            path: row.try_get("path")?,
        },
    })
}

#[async_trait]
impl MailboxStore for Store {
    async fn mailbox(&self, number: &str) -> Result<Option<Mailbox>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT number, name, email, pin_hash, vm_delete_after_email FROM extensions \
             WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT kind, path, recorded_at FROM voicemail_greetings WHERE mailbox = $1",
        )
        .bind(number)
        .fetch_all(self.pool())
        .await?;
        let mut greetings = rows
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(Greeting {
                    kind: GreetingKind::parse(&kind).ok_or_else(|| {
                        StoreError::Corrupt(format!("bad greeting kind `{kind}`"))
                    })?,
                    path: r.try_get("path")?,
                    recorded_at: from_db(r.try_get("recorded_at")?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        greetings.sort_by_key(|g| g.kind);
        Ok(Some(Mailbox {
            number: row.try_get("number")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            has_pin: row.try_get::<Option<String>, _>("pin_hash")?.is_some(),
            delete_after_email: row.try_get::<i64, _>("vm_delete_after_email")? != 0,
            greetings,
        }))
    }

    async fn check_pin(&self, number: &str, pin: &str) -> Result<bool, StoreError> {
        pin_matches(self, number, pin).await
    }

    async fn set_pin(&self, number: &str, pin: &str) -> Result<bool, StoreError> {
        if let Some(problem) = pin_problem(pin) {
            return Err(StoreError::Invalid(problem));
        }
        let hash = hash_secret(pin)?;
        let done = sqlx::query("UPDATE extensions SET pin_hash = $1 WHERE number = $2")
            .bind(hash)
            .bind(number)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(done > 0)
    }

    async fn set_delete_after_email(&self, number: &str, on: bool) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE extensions SET vm_delete_after_email = $1 WHERE number = $2")
                .bind(i64::from(on))
                .bind(number)
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(done > 0)
    }

    async fn set_greeting(
        &self,
        number: &str,
        greeting: &Greeting,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let old: Option<String> = sqlx::query_scalar(
            "SELECT path FROM voicemail_greetings WHERE mailbox = $1 AND kind = $2",
        )
        .bind(number)
        .bind(greeting.kind.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM voicemail_greetings WHERE mailbox = $1 AND kind = $2")
            .bind(number)
            .bind(greeting.kind.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO voicemail_greetings (mailbox, kind, path, recorded_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(number)
        .bind(greeting.kind.as_str())
        .bind(&greeting.path)
        .bind(to_db(greeting.recorded_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old.filter(|p| *p != greeting.path))
    }

    async fn remove_greeting(
        &self,
        number: &str,
        kind: GreetingKind,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let old: Option<String> = sqlx::query_scalar(
            "SELECT path FROM voicemail_greetings WHERE mailbox = $1 AND kind = $2",
        )
        .bind(number)
        .bind(kind.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM voicemail_greetings WHERE mailbox = $1 AND kind = $2")
            .bind(number)
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(old)
    }

    async fn add_message(&self, m: &NewMessage) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO voicemail_messages (mailbox, folder, caller_number, caller_name, \
             received_at, duration_ms, path) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&m.mailbox)
        .bind(Folder::New.as_str())
        .bind(&m.caller_number)
        .bind(&m.caller_name)
        .bind(to_db(m.received_at))
        .bind(to_db(m.duration_ms))
        .bind(&m.path)
        .fetch_one(self.pool())
        .await?
        .try_get("id")?;
        Ok(id)
    }

    async fn messages(
        &self,
        mailbox: &str,
        folder: Option<Folder>,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = match folder {
            Some(f) => sqlx::query(messages_query!(
                "WHERE mailbox = $1 AND folder = $2 ORDER BY received_at, id"
            ))
            .bind(mailbox)
            .bind(f.as_str()),
            None => sqlx::query(messages_query!(
                "WHERE mailbox = $1 ORDER BY received_at, id"
            ))
            .bind(mailbox),
        }
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(message_from).collect()
    }

    async fn message(&self, id: i64) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query(messages_query!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(message_from).transpose()
    }

    async fn move_message(&self, id: i64, folder: Folder) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE voicemail_messages SET folder = $1 WHERE id = $2")
            .bind(folder.as_str())
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(done > 0)
    }

    async fn delete_message(&self, id: i64) -> Result<Option<Message>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(messages_query!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let message = message_from(&row)?;
        sqlx::query("DELETE FROM voicemail_messages WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(message))
    }

    async fn message_counts(&self, mailbox: &str) -> Result<MessageCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT folder, COUNT(*) AS n FROM voicemail_messages WHERE mailbox = $1 \
             GROUP BY folder",
        )
        .bind(mailbox)
        .fetch_all(self.pool())
        .await?;
        let mut counts = MessageCounts::default();
        for row in &rows {
            let n = from_db(row.try_get("n")?);
            match Folder::parse(&row.try_get::<String, _>("folder")?) {
                Some(Folder::New) => counts.new = n,
                Some(Folder::Old) => counts.old = n,
                Some(Folder::Saved) => counts.saved = n,
                None => {}
            }
        }
        Ok(counts)
    }

    async fn mailboxes_with_messages(&self) -> Result<Vec<(String, MessageCounts)>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox, folder, COUNT(*) AS n FROM voicemail_messages \
             GROUP BY mailbox, folder ORDER BY LENGTH(mailbox), mailbox",
        )
        .fetch_all(self.pool())
        .await?;
        let mut all: Vec<(String, MessageCounts)> = Vec::new();
        for row in &rows {
            let mailbox: String = row.try_get("mailbox")?;
            let n = from_db(row.try_get("n")?);
            if all.last().is_none_or(|(m, _)| *m != mailbox) {
                all.push((mailbox, MessageCounts::default()));
            }
            let Some((_, counts)) = all.last_mut() else {
                continue;
            };
            match Folder::parse(&row.try_get::<String, _>("folder")?) {
                Some(Folder::New) => counts.new = n,
                Some(Folder::Old) => counts.old = n,
                Some(Folder::Saved) => counts.saved = n,
                None => {}
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Folder::ALL {
            assert_eq!(Folder::parse(f.as_str()), Some(f));
        }
        for k in GreetingKind::ALL {
            assert_eq!(GreetingKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Folder::parse("INBOX"), None);
        assert_eq!(GreetingKind::parse(""), None);
    }
}
