//! The pure parts of routing a message to its shard: the shell's dispatcher hashes the
//! Call-ID, except for Call-IDs the PBX made, which name their shard.

use pbx_sip::message::{HeaderName, Message};

/// Call-IDs the PBX makes start with this, then the shard number and `-`, so that the
/// dispatcher routes their messages to the shard that owns the call.
pub const OWN_CALL_ID_PREFIX: &str = "pbx";

/// Whether a message is a request with digest credentials (RFC 3261 §22.2, §22.3).
pub fn carries_credentials(message: &Message) -> bool {
    match message {
        Message::Request(request) => {
            request.headers.get(&HeaderName::AUTHORIZATION).is_some()
                || request
                    .headers
                    .get(&HeaderName::PROXY_AUTHORIZATION)
                    .is_some()
        }
        Message::Response(_) => false,
    }
}

/// The shard number in a Call-ID the PBX made (`pbx<N>-...`).
pub fn own_shard(call_id: &[u8]) -> Option<usize> {
    let rest = call_id.strip_prefix(OWN_CALL_ID_PREFIX.as_bytes())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if rest.get(digits) != Some(&b'-') || digits == 0 || digits > 4 {
        return None;
    }
    std::str::from_utf8(rest.get(..digits)?).ok()?.parse().ok()
}
