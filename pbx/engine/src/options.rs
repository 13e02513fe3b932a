//! OPTIONS addressed to the PBX (RFC 3261 §11.2): 200 with what it supports.

use super::respond::{ALLOW, response};
use pbx_sip::message::{HeaderName, Request, Response};
use pbx_sip::status::StatusCode;

pub fn answer(request: &Request, user_agent: &str, rng: &mut impl rand::RngCore) -> Response {
    let mut ok = response(request, StatusCode::OK, user_agent, rng);
    ok.headers.push(HeaderName::ALLOW, ALLOW);
    ok.headers.push(HeaderName::ACCEPT, "application/sdp");
    // RFC 6665 §8.2.2: the event packages the PBX is a notifier for.
    ok.headers.push(HeaderName::ALLOW_EVENTS, "message-summary");
    ok
}
