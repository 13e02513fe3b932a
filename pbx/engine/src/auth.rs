//! Digest authentication of REGISTER (401, RFC 3261 §22.2) and of INVITE (407, §22.3), with
//! the ban and network checks. A success is returned as [`Authorized`]: the dispatcher
//! (`shard.rs`) hands it to the registrar, the call or the subscription.

pub(crate) mod pending;

use super::credentials::Lookup;
use super::io::{Now, Output, Security};
use super::state::{Engine, Waiting};
use crate::peer::Peer;
use crate::security::acl::network_allowed;
use crate::security::{Admission, CheckOutcome, Gated, Ticket};
use bytes::Bytes;
use pbx_sip::auth::{Algorithm, AuthFailure, Credentials};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::TransactionKey;
pub(crate) use pending::{Pending, Purpose};

/// A request whose digest checked out, and the extension it came from: the dispatcher hands
/// it to the registrar, the call or the subscription, as its purpose says.
pub(crate) struct Authorized {
    pub(crate) key: TransactionKey,
    pub(crate) request: Request,
    pub(crate) peer: Peer,
    pub(crate) user: String,
    pub(crate) extension: std::sync::Arc<pbx_store_types::Credentials>,
    pub(crate) purpose: Purpose,
}

pub(super) fn authenticate(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    admission: Option<Admission>,
    purpose: Purpose,
) -> Option<Authorized> {
    if engine.ctx.guard.is_banned(peer.remote.ip(), now.unix()) {
        // Banned after it was queued (a burst): nothing is answered, not even a challenge.
        engine.push(Output::Security(Security::DroppedBanned));
        engine.abandon(&key);
        return None;
    }
    // RFC 3261 §22.2, §22.3: the credentials for our realm, if the phone sent any.
    let credentials = request
        .headers
        .get_all(&purpose.credentials_header())
        .filter_map(|value| std::str::from_utf8(value).ok())
        .map(Credentials::parse)
        .find(|parsed| !matches!(parsed, Ok(c) if c.realm != engine.ctx.domain));
    let credentials = match credentials {
        None => {
            challenge(
                engine,
                now,
                &key,
                &request,
                &peer,
                Challenge::Fresh,
                purpose,
            );
            return None;
        }
        Some(Err(error)) => {
            let reason = format!("Bad Request ({error})");
            let answer = engine.response_with_reason(&request, StatusCode::BAD_REQUEST, &reason);
            engine.respond(now, &key, answer);
            return None;
        }
        Some(Ok(credentials)) => credentials,
    };
    // The gate's ticket was taken on arrival; a request that reached here without one (it
    // cannot today) takes it now.
    let admission = admission.unwrap_or_else(|| {
        let guard = &engine.ctx.guard;
        guard.admit_credential(peer.remote.ip(), now.at, now.unix())
    });
    let ticket = match admission {
        Admission::Granted(ticket) => ticket,
        Admission::Banned => {
            engine.push(Output::Security(Security::DroppedBanned));
            engine.abandon(&key);
            return None;
        }
        Admission::Busy => {
            // RFC 3261 §21.5.4: the source has its limit's worth of guesses failed or on
            // their way; this credential is not checked. A phone retries after Retry-After.
            engine.push(Output::Security(Security::NotChecked {
                source: peer.remote,
                user: credentials.username.clone(),
            }));
            let mut answer = engine.response(&request, StatusCode::SERVICE_UNAVAILABLE);
            answer.headers.push(HeaderName::RETRY_AFTER, "5");
            engine.respond(now, &key, answer);
            return None;
        }
    };
    if let Some(lookup) = engine.ctx.credentials.cached(&credentials.username, now.at) {
        return finish(
            engine,
            now,
            key,
            request,
            peer,
            credentials,
            ticket,
            lookup,
            purpose,
        );
    }
    // Not in the table (added a moment ago, or no such user): the store decides.
    let id = engine.request_id();
    let user = credentials.username.clone();
    let pending = Pending {
        key,
        request,
        peer,
        credentials,
        ticket,
        purpose,
    };
    engine.waiting.insert(id, Waiting::Auth(Box::new(pending)));
    engine.push(Output::LoadCredentials { id, user });
    None
}

pub(super) fn resume(
    engine: &mut Engine,
    now: Now,
    pending: Box<Pending>,
    lookup: Result<Lookup, String>,
) -> Option<Authorized> {
    let Pending {
        key,
        request,
        peer,
        credentials,
        ticket,
        purpose,
    } = *pending;
    match lookup {
        Ok(lookup) => finish(
            engine,
            now,
            key,
            request,
            peer,
            credentials,
            ticket,
            lookup,
            purpose,
        ),
        Err(error) => {
            tracing::error!(%error, "credentials lookup failed");
            let mut answer = engine.response(&request, StatusCode::SERVER_INTERNAL_ERROR);
            answer.headers.push(HeaderName::RETRY_AFTER, "5");
            engine.respond(now, &key, answer);
            None
        }
    }
}

#[allow(clippy::too_many_arguments)] // the request and everything learnt about it
fn finish(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    credentials: Credentials,
    ticket: Ticket,
    lookup: Lookup,
    purpose: Purpose,
) -> Option<Authorized> {
    let ctx = engine.ctx.clone();
    let now_unix = now.unix();
    let ha1 = lookup.as_ref().map(|c| match credentials.algorithm {
        Algorithm::Md5 => c.ha1_md5.as_str(),
        Algorithm::Sha256 => c.ha1_sha256.as_str(),
    });
    // Every digest check goes through the guard's gate: once the source has used up its
    // failures it is not checked at all, even when this request was queued before the ban.
    let gated = ctx.guard.check_credential(ticket, now.at, now_unix, || {
        let mut digest = ctx.digest.lock().unwrap_or_else(|e| e.into_inner());
        let result = digest.verify(now_unix, request.method.as_str(), &credentials, ha1);
        let failed = matches!(&result, Err(failure) if failure.counts_as_failure());
        CheckOutcome { result, failed }
    });
    let (verdict, ban) = match gated {
        Gated::Checked { result, ban } => (result, ban),
        Gated::Refused => {
            // Banned while this request waited: dropped without an answer, as the
            // transports drop everything else from a banned source.
            engine.push(Output::Security(Security::DroppedBanned));
            engine.abandon(&key);
            return None;
        }
    };
    match verdict {
        Ok(()) => {}
        Err(AuthFailure::Stale) => {
            challenge(
                engine,
                now,
                &key,
                &request,
                &peer,
                Challenge::Stale,
                purpose,
            );
            return None;
        }
        Err(failure) => {
            engine.push(Output::Security(Security::AuthFailed {
                source: peer.remote,
                user: credentials.username.clone(),
                failure: failure.to_string(),
                counted: failure.counts_as_failure(),
            }));
            if let Some(ban) = ban {
                engine.push(Output::Security(Security::Banned {
                    address: ban.address,
                    until: ban.until,
                }));
                engine.push(Output::SaveBan(ban));
                let answer = engine.response(&request, StatusCode::FORBIDDEN);
                engine.respond(now, &key, answer);
                return None;
            }
            match failure.status(purpose.kind()) {
                status if status == purpose.kind().status() => challenge(
                    engine,
                    now,
                    &key,
                    &request,
                    &peer,
                    Challenge::Rejected,
                    purpose,
                ),
                status => {
                    let answer =
                        engine.response_with_reason(&request, status, &failure.to_string());
                    engine.respond(now, &key, answer)
                }
            }
            return None;
        }
    }
    let Some(extension) = lookup else {
        // verify() never accepts an unknown user; answer as for a wrong password regardless.
        challenge(
            engine,
            now,
            &key,
            &request,
            &peer,
            Challenge::Rejected,
            purpose,
        );
        return None;
    };
    if !network_allowed(&extension.allowed_networks, peer.remote.ip()) {
        engine.push(Output::Security(Security::NetworkRefused {
            source: peer.remote,
            user: credentials.username.clone(),
        }));
        let reason = "Forbidden (network not allowed for this extension)";
        let answer = engine.response_with_reason(&request, StatusCode::FORBIDDEN, reason);
        engine.respond(now, &key, answer);
        return None;
    }
    if let Some(conn) = peer.conn {
        engine.push(Output::Authenticated { conn });
    }
    Some(Authorized {
        key,
        request,
        peer,
        user: credentials.username,
        extension,
        purpose,
    })
}

/// How a challenge is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Challenge {
    /// The request had no credentials, or a stale nonce: answered statelessly, so the
    /// first REGISTER of every refresh leaves no transaction behind; a retransmission just
    /// gets a fresh challenge.
    Fresh,
    Stale,
    /// Wrong credentials: answered in the transaction, so a retransmission of the same bad
    /// request is absorbed and not counted as a second failure.
    Rejected,
}

/// 401 with one WWW-Authenticate (or 407 with one Proxy-Authenticate) per offered algorithm
/// (RFC 8760 §2.4), fresh nonces.
fn challenge(
    engine: &mut Engine,
    now: Now,
    key: &TransactionKey,
    request: &Request,
    peer: &Peer,
    kind: Challenge,
    purpose: Purpose,
) {
    let stale = kind == Challenge::Stale;
    let mut answer = engine.response(request, purpose.kind().status());
    let md5_only = is_md5_only(request, &engine.ctx.md5_only_user_agents);
    let values = {
        let digest = engine.ctx.digest.lock().unwrap_or_else(|e| e.into_inner());
        if md5_only {
            digest.challenge_values_only(now.unix(), stale, &[Algorithm::Md5])
        } else {
            digest.challenge_values(now.unix(), stale)
        }
    };
    for value in values {
        answer
            .headers
            .push(purpose.challenge_header(), Bytes::from(value));
    }
    if kind == Challenge::Rejected {
        engine.respond(now, key, answer);
    } else {
        engine.respond_statelessly(key, peer, answer);
    }
}

/// Whether the client's User-Agent names one that fails when SHA-256 is offered.
fn is_md5_only(request: &Request, patterns: &[String]) -> bool {
    let Some(agent) = request.headers.get_str(&HeaderName::USER_AGENT) else {
        return false;
    };
    let agent = agent.to_ascii_lowercase();
    patterns.iter().any(|p| agent.contains(p.as_str()))
}
