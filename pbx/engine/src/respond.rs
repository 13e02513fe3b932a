//! Building the PBX's own responses: RFC 3261 §8.2.6 plus the headers every answer carries.

use bytes::Bytes;
use pbx_sip::message::{HeaderName, Request, Response};
use pbx_sip::status::StatusCode;

/// Methods the PBX handles today, for Allow (RFC 3261 §20.5) and 405 answers.
pub const ALLOW: &str =
    "REGISTER, INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY, SUBSCRIBE";

/// A fresh To tag (RFC 3261 §19.3: at least 32 bits of randomness).
pub fn new_tag(rng: &mut impl rand::RngCore) -> String {
    format!("{:016x}", rng.next_u64())
}

/// A response to `request` with a To tag (from `rng`) and a Server header.
pub fn response(
    request: &Request,
    status: StatusCode,
    user_agent: &str,
    rng: &mut impl rand::RngCore,
) -> Response {
    let tag = (status.code() > 100).then(|| new_tag(rng));
    let mut response = Response::for_request(request, status, tag.as_deref());
    response.headers.push(
        HeaderName::SERVER,
        Bytes::copy_from_slice(user_agent.as_bytes()),
    );
    response
}

/// The same with a reason phrase that says what was wrong.
pub fn response_with_reason(
    request: &Request,
    status: StatusCode,
    reason: &str,
    user_agent: &str,
    rng: &mut impl rand::RngCore,
) -> Response {
    let mut response = response(request, status, user_agent, rng);
    response.reason = Bytes::copy_from_slice(reason.as_bytes());
    response
}
