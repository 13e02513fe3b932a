//! REGISTER (RFC 3261 §10.3) after authentication: the registrar rules of
//! `pbx_sip::registrar` applied to the location service.

use super::io::{Now, Output};
use super::location::Updated;
use super::state::Engine;
use crate::peer::Peer;
use bytes::Bytes;
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::registrar::process_register;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::TransactionKey;

/// Applies an authenticated REGISTER from extension `user`.
pub(super) fn bind(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    user: &str,
) {
    let ctx = engine.ctx.clone();
    let now_unix = now.unix();
    // RFC 3261 §10.3 step 3/4: the authenticated user may only register its own address.
    let aor = match request.headers.to() {
        Ok(to) => to.uri.user().unwrap_or_default().to_string(),
        Err(error) => {
            let reason = format!("Bad Request ({error})");
            let answer = engine.response_with_reason(&request, StatusCode::BAD_REQUEST, &reason);
            return engine.respond(now, &key, answer);
        }
    };
    if aor != user {
        let reason = "Forbidden (the To user is not the authenticated user)";
        let answer = engine.response_with_reason(&request, StatusCode::FORBIDDEN, reason);
        return engine.respond(now, &key, answer);
    }
    let user_agent = request
        .headers
        .get_str(&HeaderName::USER_AGENT)
        .unwrap_or_default()
        .to_string();
    let policy = ctx.policy;
    let updated = ctx.location.update(&aor, &peer, &user_agent, |current| {
        process_register(now_unix, &request, current, &policy)
    });
    match updated {
        Ok(Updated { plan, writes }) => {
            for write in writes {
                engine.push(Output::Location(write));
            }
            metrics::counter!("pbx_registrations_total").increment(1);
            let mut ok = engine.response(&request, StatusCode::OK);
            // RFC 3261 §10.3 step 8: the 200 lists every current binding with its expiry.
            for contact in plan.response_contacts(now_unix) {
                ok.headers.push(HeaderName::CONTACT, Bytes::from(contact));
            }
            ok.headers
                .push(HeaderName::DATE, Bytes::from(http_date(now_unix)));
            engine.respond(now, &key, ok);
            super::mwi::registered(engine, now, user, &peer);
        }
        Err(error) => {
            let mut answer =
                engine.response_with_reason(&request, error.status(), &error.to_string());
            if let Some(min) = error.min_expires() {
                // RFC 3261 §10.3 step 7: 423 carries Min-Expires.
                answer
                    .headers
                    .push(HeaderName::MIN_EXPIRES, Bytes::from(min.to_string()));
            }
            engine.respond(now, &key, answer);
        }
    }
}

/// RFC 7231 IMF-fixdate, as RFC 3261 §20.17 uses it.
fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = crate::date::civil_from_days(i64::try_from(days).unwrap_or(0));
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
