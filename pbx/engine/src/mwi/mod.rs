//! Message-waiting indication (RFC 3842 over RFC 6665): the PBX is the notifier of every
//! extension's mailbox. A phone SUBSCRIBEs to `message-summary` for its own mailbox (digest
//! authenticated, 403 for another's); the subscription is a dialog owned by the shard its
//! Call-ID routes to, and gets a NOTIFY at once, on every change the shell reports
//! ([`crate::Input::MailboxChanged`]), and a final one when it ends. Counts come from the
//! store through the shell ([`crate::Output::MessageCounts`]): the engine does no I/O.
//! Extensions flagged for it also get NOTIFYs without subscribing ([`unsolicited`]).

pub(crate) mod pending;
mod request;
pub(crate) mod summary;
pub(crate) mod table;
mod unsolicited;

pub(crate) use pending::Pending;
pub(crate) use unsolicited::registered;

use super::auth;
use super::io::{Now, Output};
use super::state::{Engine, Waiting};
use crate::peer::Peer;
use crate::security::Admission;
use bytes::Bytes;
use pbx_calls::Dialog;
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionEvent, TransactionKey};
use pbx_store_types::MessageCounts;
use request::{Accepted, Refusal};
use std::time::Duration;
use table::{Ending, Subscription};

/// A SUBSCRIBE (RFC 6665 §4.2.1): refused at once when its shape is wrong, else a refresh in
/// an existing dialog, or a new subscription to authenticate.
pub(super) fn subscribe(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    admission: Option<Admission>,
) -> Option<auth::Authorized> {
    let policy = engine.ctx.policy;
    let accepted = match request::check(&request, policy.min_expires, policy.max_expires) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            refuse(engine, now, &key, &request, &refusal);
            return None;
        }
    };
    let to_tag = request
        .headers
        .to()
        .ok()
        .and_then(|to| to.tag().map(str::to_string));
    let Some(to_tag) = to_tag else {
        let purpose = auth::Purpose::Subscribe;
        return auth::authenticate(engine, now, key, request, peer, admission, purpose);
    };
    // RFC 6665 §4.2.1.2: a refresh (or unsubscribe) in the subscription's dialog.
    let call_id = request.headers.call_id().unwrap_or_default();
    let found = engine.mwi.find(call_id, &to_tag);
    let Some(id) = found else {
        // RFC 6665 §4.1.2.2: no such subscription (expired, or from before a restart).
        let answer = engine.response(&request, StatusCode::CALL_DOES_NOT_EXIST);
        {
            engine.respond(now, &key, answer);
            return None;
        }
    };
    let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
    let from_tag = request
        .headers
        .from()
        .ok()
        .and_then(|f| f.tag().map(str::to_string));
    let sub = engine.mwi.get_mut(id)?;
    if from_tag.as_deref() != Some(sub.dialog.remote_tag.as_str()) {
        let answer = engine.response(&request, StatusCode::CALL_DOES_NOT_EXIST);
        {
            engine.respond(now, &key, answer);
            return None;
        }
    }
    // RFC 3261 §12.2.2: a request older than the last one is answered 500.
    if !sub.dialog.accept_remote_cseq(cseq, &Method::SUBSCRIBE) {
        let answer = engine.response(&request, StatusCode::SERVER_INTERNAL_ERROR);
        {
            engine.respond(now, &key, answer);
            return None;
        }
    }
    // RFC 6665 §4.1.2: SUBSCRIBE is a target refresh request.
    if let Some(target) = first_contact(&request) {
        sub.dialog.remote_target = target;
    }
    sub.peer = peer.clone();
    let mailbox = sub.mailbox.clone();
    ask_counts(
        engine,
        Pending::Subscribe {
            key,
            request,
            peer,
            mailbox,
            accepted,
            existing: Some(id),
        },
    );
    None
}

/// A new SUBSCRIBE from extension `user`, authenticated: only its own mailbox (RFC 6665
/// §4.2.1.3 leaves the policy to the notifier; a mailbox is private).
pub(super) fn authorized(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    user: &str,
) {
    let mailbox = request.uri.user().unwrap_or_default().to_string();
    if mailbox != user {
        let reason = "Forbidden (not your mailbox)";
        let answer = engine.response_with_reason(&request, StatusCode::FORBIDDEN, reason);
        return engine.respond(now, &key, answer);
    }
    let policy = engine.ctx.policy;
    let accepted = match request::check(&request, policy.min_expires, policy.max_expires) {
        Ok(accepted) => accepted,
        Err(refusal) => return refuse(engine, now, &key, &request, &refusal),
    };
    ask_counts(
        engine,
        Pending::Subscribe {
            key,
            request,
            peer,
            mailbox,
            accepted,
            existing: None,
        },
    );
}

/// Asks the shell for the counts. Behind a wildcard listener, the address toward each peer
/// is asked for first: the shell answers that at once, so the 200's Contact and the NOTIFY's
/// Via name a real address by the time the counts arrive.
pub(super) fn ask_counts(engine: &mut Engine, pending: Pending) {
    let mailbox = match &pending {
        Pending::Subscribe { mailbox, peer, .. } => {
            engine.knows_local(peer);
            mailbox.clone()
        }
        Pending::Registered { mailbox, devices } => {
            for (_, peer) in devices {
                engine.knows_local(peer);
            }
            mailbox.clone()
        }
    };
    let id = engine.request_id();
    engine.waiting.insert(id, Waiting::Mwi(Box::new(pending)));
    engine.push(Output::MessageCounts { id, mailbox });
}

/// The shell's answer to [`Output::MessageCounts`].
pub(super) fn counts_loaded(
    engine: &mut Engine,
    now: Now,
    pending: Pending,
    counts: Result<MessageCounts, String>,
) {
    match pending {
        Pending::Registered { mailbox, devices } => match counts {
            Ok(counts) => unsolicited::send(engine, now, &mailbox, counts, &devices),
            Err(error) => tracing::error!(%mailbox, %error, "message counts not read"),
        },
        Pending::Subscribe {
            key,
            request,
            peer,
            mailbox,
            accepted,
            existing,
        } => match counts {
            Ok(counts) => accept(
                engine, now, key, &request, peer, mailbox, accepted, existing, counts,
            ),
            Err(error) => {
                tracing::error!(%mailbox, %error, "message counts not read");
                let mut answer = engine.response(&request, StatusCode::SERVER_INTERNAL_ERROR);
                answer.headers.push(HeaderName::RETRY_AFTER, "5");
                engine.respond(now, &key, answer);
            }
        },
    }
}

/// 200 (with the granted Expires and our Contact), then the NOTIFY RFC 6665 §4.2.1.2 asks
/// for at once: `active` with what remains, or `terminated` for an unsubscribe or a fetch.
#[allow(clippy::too_many_arguments)] // the SUBSCRIBE and everything learnt about it
fn accept(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: &Request,
    peer: Peer,
    mailbox: String,
    accepted: Accepted,
    existing: Option<u64>,
    counts: MessageCounts,
) {
    let id = match existing {
        Some(id) if engine.mwi.get_mut(id).is_none() => {
            // Ended (a failed NOTIFY) while the counts were read.
            let answer = engine.response(request, StatusCode::CALL_DOES_NOT_EXIST);
            return engine.respond(now, &key, answer);
        }
        Some(id) => id,
        None => {
            let Some(dialog) = new_dialog(engine, request) else {
                let reason = "Bad Request (From, To, Call-ID or Contact)";
                let answer = engine.response_with_reason(request, StatusCode::BAD_REQUEST, reason);
                return engine.respond(now, &key, answer);
            };
            let event = accepted.event.clone();
            let sub = Subscription::new(mailbox.clone(), dialog, peer.clone(), event, now.at);
            engine.mwi.insert(sub)
        }
    };
    let endpoint = engine.endpoint(&peer);
    let Some(sub) = engine.mwi.get_mut(id) else {
        return;
    };
    let tag = sub.dialog.local_tag.clone();
    let mut ok = pbx_sip::message::Response::for_request(request, StatusCode::OK, Some(&tag));
    ok.headers.push(
        HeaderName::SERVER,
        Bytes::copy_from_slice(engine.ctx.user_agent.as_bytes()),
    );
    ok.headers
        .push(HeaderName::EXPIRES, accepted.expires.to_string());
    ok.headers
        .push(HeaderName::CONTACT, format!("<{}>", endpoint.contact()));
    engine.respond(now, &key, ok);
    engine.mwi.set_counts(id, counts);
    if accepted.expires == 0 {
        // RFC 6665 §4.2.1.4 (unsubscribe), §4.4.3 (fetch): the state, then the end.
        return end(engine, now, id, Ending::Unsubscribed);
    }
    if existing.is_none() {
        metrics::gauge!("pbx_mwi_subscriptions").increment(1.0);
        tracing::info!(%mailbox, source = %peer.remote, expires = accepted.expires, "MWI subscribed");
    }
    let expires_at = now.at + Duration::from_secs(u64::from(accepted.expires));
    engine.mwi.set_expiry(id, expires_at);
    // A refresh re-sends the state even when unchanged (RFC 6665 §4.2.1.2).
    notify(engine, now, id, true);
}

/// The shell says a mailbox changed: each subscription to it on this shard whose last
/// NOTIFY said something else gets one; with `unsolicited`, the flagged devices too.
pub(super) fn mailbox_changed(
    engine: &mut Engine,
    now: Now,
    mailbox: &str,
    counts: MessageCounts,
    unsolicited: bool,
) {
    for id in engine.mwi.of_mailbox(mailbox) {
        engine.mwi.set_counts(id, counts);
        notify(engine, now, id, false);
    }
    if unsolicited {
        unsolicited::changed(engine, now, mailbox, counts);
    }
}

/// Sends subscription `id` its state, unless it already said so (`force` for the NOTIFY
/// that must follow every SUBSCRIBE). One NOTIFY at a time per subscription: a change while
/// one is on its way is sent when it is answered, so they arrive in order.
fn notify(engine: &mut Engine, now: Now, id: u64, force: bool) {
    let Some(sub) = engine.mwi.get_mut(id) else {
        return;
    };
    if sub.in_flight.is_some() {
        sub.again |= force || sub.sent != Some(sub.counts);
        return;
    }
    if !force && sub.sent == Some(sub.counts) {
        return;
    }
    let remaining = sub.expires_at.saturating_duration_since(now.at).as_secs();
    let state = format!("active;expires={remaining}");
    send(engine, now, id, &state, true);
}

/// Ends subscription `id` with a final NOTIFY (RFC 6665 §4.2.2: `terminated` and why).
fn end(engine: &mut Engine, now: Now, id: u64, ending: Ending) {
    if ending.notifies() {
        let state = format!("terminated;reason={}", ending.wire_reason());
        send(engine, now, id, &state, false);
    }
    if let Some(sub) = engine.mwi.remove(id)
        && sub.active
    {
        metrics::gauge!("pbx_mwi_subscriptions").decrement(1.0);
        tracing::info!(mailbox = %sub.mailbox, source = %sub.peer.remote, reason = ending.label(), "MWI subscription ended");
    }
}

/// Builds and sends one NOTIFY in subscription `id`'s dialog; `track`: its answer decides
/// what happens to the subscription (not for the final one).
fn send(engine: &mut Engine, now: Now, id: u64, state: &str, track: bool) {
    let Some(sub) = engine.mwi.get_mut(id) else {
        return;
    };
    let peer = sub.peer.clone();
    let endpoint = engine.endpoint(&peer);
    let domain = engine.ctx.domain.clone();
    let user_agent = engine.ctx.user_agent.clone();
    let Some(sub) = engine.mwi.get_mut(id) else {
        return;
    };
    let mut request = sub
        .dialog
        .request(Method::NOTIFY, &endpoint, &user_agent, &mut engine.rng);
    let account = format!("sip:{}@{domain}", sub.mailbox);
    request.headers.push(HeaderName::EVENT, sub.event.clone());
    request
        .headers
        .push(summary::SUBSCRIPTION_STATE, state.to_string());
    request
        .headers
        .push(HeaderName::CONTENT_TYPE, summary::CONTENT_TYPE);
    request.body = Bytes::from(summary::body(&account, sub.counts));
    sub.sent = Some(sub.counts);
    sub.again = false;
    let reliable = peer.kind.is_reliable();
    match engine.layer.send_request(now.at, request, peer, reliable) {
        Ok(key) => {
            metrics::counter!("pbx_mwi_notifies_total", "kind" => "subscription").increment(1);
            if track {
                if let Some(sub) = engine.mwi.get_mut(id) {
                    sub.in_flight = Some(key.clone());
                }
                engine.mwi.track(key, Some(id));
            }
        }
        Err(error) => tracing::debug!(%error, "NOTIFY not sent"),
    }
}

/// Whether a client transaction is one of this module's NOTIFYs.
pub(super) fn owns(engine: &Engine, key: &TransactionKey) -> bool {
    engine.mwi.tracks(key)
}

/// What became of a NOTIFY (RFC 6665 §4.2.2): a 2xx lets the next one go; a 481, any other
/// failure, a timeout (Timer F) or a transport error ends the subscription.
pub(super) fn event(engine: &mut Engine, now: Now, key: &TransactionKey, event: TransactionEvent) {
    let Some(owner) = engine.mwi.owner(key) else {
        return;
    };
    let failure = match &event {
        TransactionEvent::Response(r) if r.status.is_success() => None,
        TransactionEvent::Response(r) if r.status.is_final() => Some(r.status.code().to_string()),
        TransactionEvent::Response(_) => return,
        TransactionEvent::Timeout => Some("timeout".to_string()),
        TransactionEvent::TransportError => Some("transport error".to_string()),
        TransactionEvent::Terminated => {
            engine.mwi.untrack(key);
            return;
        }
    };
    let Some(id) = owner else {
        if let Some(failure) = failure {
            tracing::debug!(%failure, "unsolicited NOTIFY failed");
        }
        return;
    };
    let again = match engine.mwi.get_mut(id) {
        Some(sub) if sub.in_flight.as_ref() == Some(key) => {
            sub.in_flight = None;
            sub.again
        }
        _ => return,
    };
    match failure {
        Some(failure) => {
            tracing::info!(%failure, "NOTIFY refused or unanswered");
            end(engine, now, id, Ending::Failed);
        }
        None if again => notify(engine, now, id, true),
        None => {}
    }
}

/// Subscriptions whose time ran out get their final NOTIFY (RFC 6665 §4.2.2, reason
/// `timeout`) and are gone.
pub(super) fn timeouts(engine: &mut Engine, now: Now) {
    for id in engine.mwi.expired(now.at) {
        end(engine, now, id, Ending::Expired);
    }
}

/// A shard being replaced: its subscriptions are forgotten (phones subscribe again when
/// their refresh gets 481).
pub(super) fn abandon_all(engine: &mut Engine) {
    let counted = engine.mwi.clear();
    metrics::gauge!("pbx_mwi_subscriptions").decrement(counted as f64);
}

fn refuse(
    engine: &mut Engine,
    now: Now,
    key: &TransactionKey,
    request: &Request,
    refusal: &Refusal,
) {
    let mut answer = engine.response_with_reason(request, refusal.status(), &refusal.to_string());
    match refusal {
        // RFC 6665 §8.3.2: 489 says which packages are supported.
        Refusal::BadEvent => answer
            .headers
            .push(HeaderName::ALLOW_EVENTS, summary::EVENT),
        // RFC 6665 §4.2.1.1, RFC 3261 §21.4.17: 423 carries Min-Expires.
        Refusal::TooBrief { min } => answer
            .headers
            .push(HeaderName::MIN_EXPIRES, min.to_string()),
        Refusal::NotAcceptable => answer
            .headers
            .push(HeaderName::ACCEPT, summary::CONTENT_TYPE),
        Refusal::NoContact => {}
    }
    engine.respond(now, key, answer);
}

fn first_contact(request: &Request) -> Option<pbx_sip::uri::Uri> {
    let contacts = request.headers.contacts().ok()?;
    contacts.addresses().first().map(|c| c.uri.clone())
}

/// The subscription's dialog as its notifier sees it (RFC 6665 §4.1.2, RFC 3261 §12.1.1):
/// our tag in To, theirs in From, their Contact as remote target, Record-Route as route set.
fn new_dialog(engine: &mut Engine, request: &Request) -> Option<Dialog> {
    let headers = &request.headers;
    let mut from = headers.from().ok()?;
    let mut to = headers.to().ok()?;
    let remote_tag = from.tag()?.to_string();
    from.params.remove("tag");
    to.params.remove("tag");
    let remote_target = first_contact(request)?;
    let route_set = headers
        .get_all(&HeaderName::RECORD_ROUTE)
        .cloned()
        .collect();
    Some(Dialog {
        call_id: headers.call_id()?.to_string(),
        local_tag: super::respond::new_tag(&mut engine.rng),
        remote_tag,
        local_uri: to,
        remote_uri: from,
        remote_target,
        route_set,
        local_cseq: 0,
        remote_cseq: headers.cseq().ok().map(|c| c.seq),
    })
}
