//! NOTIFYs without a subscription, for phones configured to expect them (many desk phones
//! have an "unsolicited MWI" setting; Asterisk calls it `unsolicited_mailbox`): RFC 6665
//! does not define them, so they go only to extensions flagged with
//! `pbx extension set --mwi-unsolicited`, to each registered device, when it registers and
//! whenever its mailbox changes.

use super::request::Unsolicited;
use super::{Pending, ask_counts, summary};
use crate::io::Now;
use crate::location::BindingPeer;
use crate::peer::Peer;
use crate::state::Engine;
use pbx_store_types::MessageCounts;

/// Whether extension `number` asked for unsolicited NOTIFYs (as the credential table knows
/// it: refreshed from the store every few seconds).
fn wanted(engine: &Engine, number: &str, now: Now) -> bool {
    matches!(
        engine.ctx.credentials.cached(number, now.at),
        Some(Some(credentials)) if credentials.mwi_unsolicited
    )
}

/// A REGISTER from `peer` for extension `user` succeeded: its devices there get the
/// mailbox's state (also after every refresh, so a phone that restarted or missed a NOTIFY
/// is right again within one registration interval).
pub(crate) fn registered(engine: &mut Engine, now: Now, user: &str, peer: &Peer) {
    if !wanted(engine, user, now) {
        return;
    }
    let devices: Vec<(String, Peer)> = engine
        .ctx
        .location
        .lookup(user, now.unix())
        .into_iter()
        .filter(|b| b.source == peer.remote)
        .map(|b| (b.binding.contact.to_string(), b.peer()))
        .collect();
    if devices.is_empty() {
        return;
    }
    let mailbox = user.to_string();
    ask_counts(engine, Pending::Registered { mailbox, devices });
}

/// Mailbox `mailbox` changed: every registered device of a flagged extension is told,
/// unless the last unsolicited NOTIFYs already said the same.
pub(crate) fn changed(engine: &mut Engine, now: Now, mailbox: &str, counts: MessageCounts) {
    if !wanted(engine, mailbox, now) {
        engine.mwi.unsolicited_sent.remove(mailbox);
        return;
    }
    if engine.mwi.unsolicited_sent.get(mailbox) == Some(&counts) {
        return;
    }
    let devices: Vec<(String, Peer)> = engine
        .ctx
        .location
        .lookup(mailbox, now.unix())
        .into_iter()
        .map(|b| (b.binding.contact.to_string(), b.peer()))
        .collect();
    send(engine, now, mailbox, counts, &devices);
    engine
        .mwi
        .unsolicited_sent
        .insert(mailbox.to_string(), counts);
}

/// One NOTIFY per device, each in a Call-ID of this shard's (its answer comes back here).
pub(crate) fn send(
    engine: &mut Engine,
    now: Now,
    mailbox: &str,
    counts: MessageCounts,
    devices: &[(String, Peer)],
) {
    let account = format!("sip:{mailbox}@{}", engine.ctx.domain);
    let body = summary::body(&account, counts);
    let ctx = engine.ctx.clone();
    for (contact, peer) in devices {
        // Via and Contact need this host's address toward the device when the listener is
        // a wildcard: asked once, the answer serves the next NOTIFY.
        engine.knows_local(peer);
        let endpoint = engine.endpoint(peer);
        let call_id = pbx_calls::ids::call_id(&engine.call_id_prefix(), &mut engine.rng);
        let notify = Unsolicited {
            contact,
            mailbox,
            domain: &ctx.domain,
            user_agent: &ctx.user_agent,
            body: &body,
        };
        let Some(request) = notify.request(&endpoint, &call_id, &mut engine.rng) else {
            tracing::debug!(%contact, "cannot build a NOTIFY for this contact");
            continue;
        };
        let reliable = peer.kind.is_reliable();
        match engine
            .layer
            .send_request(now.at, request, peer.clone(), reliable)
        {
            Ok(key) => {
                metrics::counter!("pbx_mwi_notifies_total", "kind" => "unsolicited").increment(1);
                engine.mwi.track(key, None);
            }
            Err(error) => tracing::debug!(%error, "unsolicited NOTIFY not sent"),
        }
    }
}
