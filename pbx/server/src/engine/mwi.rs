//! Message-waiting indication, the shell's part: reading a mailbox's counts and telling
//! every shard (a subscription lives on whichever shard its Call-ID hashes to), which
//! NOTIFYs the mailbox's subscribers. Two ways in:
//!
//! - [`MwiNotifier::mailbox_changed`], called by whoever changed a mailbox in this process
//!   (a message recorded, listened to, moved or deleted): the lamp follows at once.
//! - [`MwiNotifier::watch`], a task that polls the store's change counters (kept by triggers,
//!   migration 0008) every [`WATCH_INTERVAL`]: changes made elsewhere (another node on the
//!   same PostgreSQL, the CLI, an admin's SQL) reach the phones too. A change already pushed
//!   is seen again here; the engine sends nothing when the counts did not move.

use super::Dispatcher;
use pbx_store::{MailboxStore, MwiStore, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the change counters are read.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Cheap to clone; hand one to everything that changes mailboxes.
#[derive(Clone)]
pub struct MwiNotifier {
    mailboxes: Arc<dyn MailboxStore>,
    dispatcher: Arc<Dispatcher>,
}

impl MwiNotifier {
    pub fn new(mailboxes: Arc<dyn MailboxStore>, dispatcher: Arc<Dispatcher>) -> MwiNotifier {
        MwiNotifier {
            mailboxes,
            dispatcher,
        }
    }

    /// Mailbox `mailbox` (an extension number) changed: its subscribers and, when the
    /// extension asked for them, its registered devices get the new counts.
    pub async fn mailbox_changed(&self, mailbox: &str) -> Result<(), StoreError> {
        let counts = self.mailboxes.message_counts(mailbox).await?;
        self.dispatcher.mailbox_changed(mailbox, counts).await;
        Ok(())
    }

    /// Polls `store`'s change counters for ever, telling the shards of every mailbox whose
    /// counter moved. The first read is the baseline: nothing is sent for it.
    pub async fn watch(self, store: Arc<dyn MwiStore>) {
        let mut watcher = Watcher::default();
        let mut ticker = tokio::time::interval(WATCH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match watcher.changed(store.as_ref()).await {
                Ok(changed) => {
                    for mailbox in changed {
                        if let Err(error) = self.mailbox_changed(&mailbox).await {
                            tracing::warn!(%mailbox, %error, "message counts not read");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "voicemail change counters not read"),
            }
        }
    }
}

/// The counters as last read.
#[derive(Default)]
struct Watcher {
    /// `None` before the first read.
    revision: Option<u64>,
    mailboxes: HashMap<String, u64>,
}

impl Watcher {
    /// The mailboxes that changed since the last call (none on the first).
    async fn changed(&mut self, store: &dyn MwiStore) -> Result<Vec<String>, StoreError> {
        let revision = store.voicemail_revision().await?;
        if self.revision == Some(revision) {
            return Ok(Vec::new());
        }
        let all = store.mailbox_revisions().await?;
        let first = self.revision.is_none();
        let mut changed = Vec::new();
        for (mailbox, value) in all {
            if self.mailboxes.get(&mailbox) != Some(&value) {
                if !first {
                    changed.push(mailbox.clone());
                }
                self.mailboxes.insert(mailbox, value);
            }
        }
        self.revision = Some(revision);
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_store::{ExtensionStore, NewExtension, NewMessage, Store};

    #[tokio::test]
    async fn the_watcher_names_each_changed_mailbox_once() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for number in ["1000", "1001"] {
            let extension = NewExtension {
                number: number.into(),
                password: "pw".into(),
                ..Default::default()
            };
            store.add_extension("pbx.test", extension).await.unwrap();
        }
        let message = |mailbox: &str| NewMessage {
            mailbox: mailbox.into(),
            caller_number: String::new(),
            caller_name: String::new(),
            received_at: 1,
            duration_ms: 1,
            path: "m.wav".into(),
        };
        store.add_message(&message("1000")).await.unwrap();
        let mut watcher = Watcher::default();
        assert!(
            watcher.changed(&store).await.unwrap().is_empty(),
            "baseline"
        );
        assert!(watcher.changed(&store).await.unwrap().is_empty());
        store.add_message(&message("1001")).await.unwrap();
        assert_eq!(watcher.changed(&store).await.unwrap(), ["1001"]);
        assert!(watcher.changed(&store).await.unwrap().is_empty());
        let id = store.add_message(&message("1000")).await.unwrap();
        store.delete_message(id).await.unwrap();
        assert_eq!(watcher.changed(&store).await.unwrap(), ["1000"]);
    }
}
