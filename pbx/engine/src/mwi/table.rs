//! One shard's subscriptions: by number, by dialog, by mailbox and by expiry, and the
//! NOTIFY transactions on their way.

use crate::peer::Peer;
use pbx_calls::Dialog;
use pbx_sip::transaction::TransactionKey;
use pbx_store_types::MessageCounts;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// One `message-summary` subscription (RFC 6665 §4.1.2: a dialog of its own).
pub(crate) struct Subscription {
    pub mailbox: String,
    pub dialog: Dialog,
    /// Where its NOTIFYs go: where the last SUBSCRIBE came from.
    pub peer: Peer,
    /// The subscriber's Event value, echoed with its `id` (RFC 6665 §8.2.1).
    pub event: String,
    pub expires_at: Instant,
    /// The mailbox as last read.
    pub counts: MessageCounts,
    /// What the last NOTIFY said.
    pub sent: Option<MessageCounts>,
    /// The NOTIFY on its way, if any.
    pub in_flight: Option<TransactionKey>,
    /// Another NOTIFY is due once `in_flight` is answered.
    pub again: bool,
    /// Granted a duration (not a fetch): counted in the gauge, logged when it ends.
    pub active: bool,
}

impl Subscription {
    pub fn new(mailbox: String, dialog: Dialog, peer: Peer, event: String, at: Instant) -> Self {
        Subscription {
            mailbox,
            dialog,
            peer,
            event,
            expires_at: at,
            counts: MessageCounts::default(),
            sent: None,
            in_flight: None,
            again: false,
            active: false,
        }
    }
}

/// How a subscription ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Expires: 0 from the subscriber (or a one-time fetch).
    Unsubscribed,
    /// Not refreshed in time.
    Expired,
    /// Its NOTIFY got 481 or another failure, or no answer (RFC 6665 §4.2.2).
    Failed,
}

impl Ending {
    /// Whether a final NOTIFY is sent (not to a subscriber that stopped answering).
    pub fn notifies(self) -> bool {
        self != Ending::Failed
    }

    /// RFC 6665 §4.1.3: `timeout` tells the subscriber it may subscribe again.
    pub fn wire_reason(self) -> &'static str {
        match self {
            Ending::Unsubscribed | Ending::Expired => "timeout",
            Ending::Failed => "noresource",
        }
    }

    /// For the log.
    pub fn label(self) -> &'static str {
        match self {
            Ending::Unsubscribed => "unsubscribed",
            Ending::Expired => "expired",
            Ending::Failed => "notify failed",
        }
    }
}

#[derive(Default)]
pub(crate) struct Mwi {
    subs: HashMap<u64, Subscription>,
    /// (Call-ID, our tag) → subscription.
    by_dialog: HashMap<(String, String), u64>,
    /// Active subscriptions by expiry, earliest first.
    deadlines: BTreeSet<(Instant, u64)>,
    /// NOTIFY transactions: the subscription, or `None` for an unsolicited one.
    notifies: HashMap<TransactionKey, Option<u64>>,
    next: u64,
    /// What the last unsolicited NOTIFYs of each mailbox said (the one shard the shell asks
    /// to send them keeps it).
    pub unsolicited_sent: HashMap<String, MessageCounts>,
}

impl Mwi {
    pub fn insert(&mut self, sub: Subscription) -> u64 {
        self.next += 1;
        let id = self.next;
        let key = (sub.dialog.call_id.clone(), sub.dialog.local_tag.clone());
        self.by_dialog.insert(key, id);
        self.subs.insert(id, sub);
        id
    }

    pub fn find(&self, call_id: &str, local_tag: &str) -> Option<u64> {
        self.by_dialog
            .get(&(call_id.to_string(), local_tag.to_string()))
            .copied()
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Subscription> {
        self.subs.get_mut(&id)
    }

    pub fn set_counts(&mut self, id: u64, counts: MessageCounts) {
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.counts = counts;
        }
    }

    /// Grants subscription `id` until `at` (a new one or a refresh).
    pub fn set_expiry(&mut self, id: u64, at: Instant) {
        if let Some(sub) = self.subs.get_mut(&id) {
            if sub.active {
                self.deadlines.remove(&(sub.expires_at, id));
            }
            sub.expires_at = at;
            sub.active = true;
            self.deadlines.insert((at, id));
        }
    }

    pub fn remove(&mut self, id: u64) -> Option<Subscription> {
        let sub = self.subs.remove(&id)?;
        self.deadlines.remove(&(sub.expires_at, id));
        self.by_dialog
            .remove(&(sub.dialog.call_id.clone(), sub.dialog.local_tag.clone()));
        Some(sub)
    }

    /// The subscriptions to `mailbox`, in no particular order.
    pub fn of_mailbox(&self, mailbox: &str) -> Vec<u64> {
        self.subs
            .iter()
            .filter(|(_, s)| s.mailbox == mailbox)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Subscriptions whose time is up at `now`.
    pub fn expired(&self, now: Instant) -> Vec<u64> {
        self.deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    /// When the next subscription expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    pub fn track(&mut self, key: TransactionKey, owner: Option<u64>) {
        self.notifies.insert(key, owner);
    }

    pub fn tracks(&self, key: &TransactionKey) -> bool {
        self.notifies.contains_key(key)
    }

    pub fn owner(&self, key: &TransactionKey) -> Option<Option<u64>> {
        self.notifies.get(key).copied()
    }

    pub fn untrack(&mut self, key: &TransactionKey) {
        self.notifies.remove(key);
    }

    /// The number of active subscriptions.
    pub fn active(&self) -> usize {
        self.subs.values().filter(|s| s.active).count()
    }

    /// Forgets everything; returns how many active subscriptions there were.
    pub fn clear(&mut self) -> usize {
        let active = self.active();
        *self = Mwi::default();
        active
    }
}
