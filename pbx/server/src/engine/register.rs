//! REGISTER (RFC 3261 §10.3): digest authentication, the ban and network checks, then the
//! registrar rules of `pbx_sip::registrar` applied to the location service.

use super::ShardInput;
use super::credentials::Lookup;
use super::respond::{response, response_with_reason};
use super::shard::Shard;
use crate::security::acl::network_allowed;
use crate::transport::{Peer, now_unix};
use bytes::Bytes;
use pbx_sip::auth::{Algorithm, AuthFailure, ChallengeKind, Credentials};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::registrar::process_register;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::TransactionKey;
use std::time::Instant;

/// A REGISTER waiting for its extension's credentials from the store.
pub(crate) struct Pending {
    key: TransactionKey,
    request: Request,
    peer: Peer,
    credentials: Credentials,
    lookup: Result<Lookup, String>,
}

pub(super) fn handle(
    shard: &mut Shard,
    now: Instant,
    key: TransactionKey,
    request: Request,
    peer: Peer,
) {
    let ua = shard.ctx.user_agent.clone();
    // RFC 3261 §22.2: the credentials for our realm, if the phone sent any.
    let credentials = request
        .headers
        .get_all(&HeaderName::AUTHORIZATION)
        .filter_map(|value| std::str::from_utf8(value).ok())
        .map(Credentials::parse)
        .find(|parsed| !matches!(parsed, Ok(c) if c.realm != shard.ctx.domain));
    let credentials = match credentials {
        None => return challenge(shard, now, &key, &request, &peer, Challenge::Fresh),
        Some(Err(error)) => {
            let reason = format!("Bad Request ({error})");
            let answer = response_with_reason(&request, StatusCode::BAD_REQUEST, &reason, &ua);
            return shard.respond(now, &key, answer);
        }
        Some(Ok(credentials)) => credentials,
    };
    if let Some(lookup) = shard.ctx.credentials.cached(&credentials.username, now) {
        return finish(shard, now, key, request, peer, credentials, lookup);
    }
    let ctx = shard.ctx.clone();
    let own = shard.own.clone();
    tokio::spawn(async move {
        let lookup = ctx
            .credentials
            .load(&credentials.username)
            .await
            .map_err(|e| e.to_string());
        let pending = Pending {
            key,
            request,
            peer,
            credentials,
            lookup,
        };
        let _ = own
            .send(ShardInput::CredentialsLoaded(Box::new(pending)))
            .await;
    });
}

pub(super) fn resume(shard: &mut Shard, now: Instant, pending: Box<Pending>) {
    let Pending {
        key,
        request,
        peer,
        credentials,
        lookup,
    } = *pending;
    match lookup {
        Ok(lookup) => finish(shard, now, key, request, peer, credentials, lookup),
        Err(error) => {
            tracing::error!(%error, "credentials lookup failed");
            let ua = shard.ctx.user_agent.clone();
            let mut answer = response(&request, StatusCode::SERVER_INTERNAL_ERROR, &ua);
            answer.headers.push(HeaderName::RETRY_AFTER, "5");
            shard.respond(now, &key, answer);
        }
    }
}

fn finish(
    shard: &mut Shard,
    now: Instant,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    credentials: Credentials,
    lookup: Lookup,
) {
    let ctx = shard.ctx.clone();
    let ua = ctx.user_agent.clone();
    let now_unix = now_unix();
    let ha1 = lookup.as_ref().map(|c| match credentials.algorithm {
        Algorithm::Md5 => c.ha1_md5.as_str(),
        Algorithm::Sha256 => c.ha1_sha256.as_str(),
    });
    let verdict = {
        let mut digest = ctx.digest.lock().unwrap_or_else(|e| e.into_inner());
        digest.verify(now_unix, request.method.as_str(), &credentials, ha1)
    };
    match verdict {
        Ok(()) => {}
        Err(AuthFailure::Stale) => {
            return challenge(shard, now, &key, &request, &peer, Challenge::Stale);
        }
        Err(failure) => {
            tracing::info!(source = %peer.remote, user = %credentials.username, %failure, "authentication failed");
            if failure.counts_as_failure() {
                metrics::counter!("pbx_auth_failures_total").increment(1);
                if let Some(ban) = ctx
                    .guard
                    .record_auth_failure(peer.remote.ip(), now, now_unix)
                {
                    metrics::counter!("pbx_bans_total").increment(1);
                    tracing::warn!(address = %ban.address, until = ban.until, "banned after repeated authentication failures");
                    let store = ctx.store.clone();
                    tokio::spawn(async move {
                        if let Err(error) = store.add_ban(ban.address, &ban.reason, ban.until).await
                        {
                            tracing::error!(%error, "could not save a ban");
                        }
                    });
                    let answer = response(&request, StatusCode::FORBIDDEN, &ua);
                    return shard.respond(now, &key, answer);
                }
            }
            return match failure.status(ChallengeKind::Www) {
                StatusCode::UNAUTHORIZED => {
                    challenge(shard, now, &key, &request, &peer, Challenge::Rejected)
                }
                status => {
                    let answer = response_with_reason(&request, status, &failure.to_string(), &ua);
                    shard.respond(now, &key, answer)
                }
            };
        }
    }
    let Some(extension) = lookup else {
        // verify() never accepts an unknown user; answer as for a wrong password regardless.
        return challenge(shard, now, &key, &request, &peer, Challenge::Rejected);
    };
    // RFC 3261 §10.3 step 3/4: the authenticated user may only register its own address.
    let aor = match request.headers.to() {
        Ok(to) => to.uri.user().unwrap_or_default().to_string(),
        Err(error) => {
            let reason = format!("Bad Request ({error})");
            let answer = response_with_reason(&request, StatusCode::BAD_REQUEST, &reason, &ua);
            return shard.respond(now, &key, answer);
        }
    };
    if aor != credentials.username {
        let reason = "Forbidden (the To user is not the authenticated user)";
        let answer = response_with_reason(&request, StatusCode::FORBIDDEN, reason, &ua);
        return shard.respond(now, &key, answer);
    }
    if !network_allowed(&extension.allowed_networks, peer.remote.ip()) {
        tracing::info!(source = %peer.remote, user = %aor, "registration from a network the extension does not allow");
        let reason = "Forbidden (network not allowed for this extension)";
        let answer = response_with_reason(&request, StatusCode::FORBIDDEN, reason, &ua);
        return shard.respond(now, &key, answer);
    }
    let user_agent = request
        .headers
        .get_str(&HeaderName::USER_AGENT)
        .unwrap_or_default()
        .to_string();
    let policy = ctx.policy;
    let plan = ctx.location.update(&aor, &peer, &user_agent, |current| {
        process_register(now_unix, &request, current, &policy)
    });
    match plan {
        Ok(plan) => {
            metrics::counter!("pbx_registrations_total").increment(1);
            let mut ok = response(&request, StatusCode::OK, &ua);
            // RFC 3261 §10.3 step 8: the 200 lists every current binding with its expiry.
            for contact in plan.response_contacts(now_unix) {
                ok.headers.push(HeaderName::CONTACT, Bytes::from(contact));
            }
            ok.headers
                .push(HeaderName::DATE, Bytes::from(http_date(now_unix)));
            shard.respond(now, &key, ok);
        }
        Err(error) => {
            let mut answer =
                response_with_reason(&request, error.status(), &error.to_string(), &ua);
            if let Some(min) = error.min_expires() {
                // RFC 3261 §10.3 step 7: 423 carries Min-Expires.
                answer
                    .headers
                    .push(HeaderName::MIN_EXPIRES, Bytes::from(min.to_string()));
            }
            shard.respond(now, &key, answer);
        }
    }
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

/// 401 with one WWW-Authenticate per offered algorithm (RFC 8760 §2.4), fresh nonces.
fn challenge(
    shard: &mut Shard,
    now: Instant,
    key: &TransactionKey,
    request: &Request,
    peer: &Peer,
    kind: Challenge,
) {
    let stale = kind == Challenge::Stale;
    let mut answer = response(request, StatusCode::UNAUTHORIZED, &shard.ctx.user_agent);
    let md5_only = is_md5_only(request, &shard.ctx.md5_only_user_agents);
    let values = {
        let digest = shard.ctx.digest.lock().unwrap_or_else(|e| e.into_inner());
        if md5_only {
            digest.challenge_values_only(now_unix(), stale, &[Algorithm::Md5])
        } else {
            digest.challenge_values(now_unix(), stale)
        }
    };
    for value in values {
        answer
            .headers
            .push(HeaderName::WWW_AUTHENTICATE, Bytes::from(value));
    }
    if kind == Challenge::Rejected {
        shard.respond(now, key, answer);
    } else {
        shard.respond_statelessly(key, peer, answer);
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

/// RFC 7231 IMF-fixdate, as RFC 3261 §20.17 uses it.
fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = crate::cli::table::civil_from_days(i64::try_from(days).unwrap_or(0));
    let month = MONTHS
        .get((month as usize).saturating_sub(1))
        .unwrap_or(&"Jan");
    let weekday = DAYS.get((days % 7) as usize).unwrap_or(&"Thu");
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_date_formats_known_instants() {
        assert_eq!(super::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::http_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(
            super::http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }
}
