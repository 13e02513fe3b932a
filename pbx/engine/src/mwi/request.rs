//! What a SUBSCRIBE for `message-summary` must be before anyone is asked for anything:
//! the event package, the body types the subscriber accepts and the duration (RFC 6665
//! §4.2.1.1, RFC 3842 §3.7). Also the out-of-dialog NOTIFY for phones that never subscribe.

use super::summary;
use crate::peer::Peer;
use bytes::Bytes;
use pbx_calls::Endpoint;
use pbx_sip::message::{HeaderName, Message, Request};
use pbx_sip::status::StatusCode;

/// RFC 6665 §8.3.2; not among the codes the codec names.
pub const BAD_EVENT: StatusCode = StatusCode(489);
/// RFC 3261 §21.4.7.
pub const NOT_ACCEPTABLE: StatusCode = StatusCode(406);
/// RFC 3842 §3.4: an hour when the subscriber does not say.
pub const DEFAULT_EXPIRES: u32 = 3600;

/// Why a SUBSCRIBE is refused before authentication (nothing here depends on who asks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Bad Event (only message-summary)")]
    BadEvent,
    #[error("Not Acceptable (only application/simple-message-summary)")]
    NotAcceptable,
    #[error("Interval Too Brief")]
    TooBrief { min: u32 },
    #[error("Bad Request (no Contact)")]
    NoContact,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadEvent => BAD_EVENT,
            Refusal::NotAcceptable => NOT_ACCEPTABLE,
            Refusal::TooBrief { .. } => StatusCode::INTERVAL_TOO_BRIEF,
            Refusal::NoContact => StatusCode::BAD_REQUEST,
        }
    }
}

/// An acceptable SUBSCRIBE: the Event value to echo in NOTIFYs (with its `id`, RFC 6665
/// §8.2.1) and the granted duration in seconds (0: unsubscribe or fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub event: String,
    pub expires: u32,
}

/// Checks a SUBSCRIBE; `min` and `max` bound the duration (`[sip] min_expires`,
/// `max_expires`, shared with registrations).
pub fn check(request: &Request, min: u32, max: u32) -> Result<Accepted, Refusal> {
    // RFC 6665 §4.2.1.1: an unknown (or missing) event package gets 489.
    let event = request
        .headers
        .get_str(&HeaderName::EVENT)
        .map(str::trim)
        .unwrap_or_default();
    let package = event.split(';').next().unwrap_or_default().trim();
    if !package.eq_ignore_ascii_case(summary::EVENT) {
        return Err(Refusal::BadEvent);
    }
    // RFC 6665 §4.2.1.1: the subscriber must accept the body we send (406 otherwise).
    let accepts: Vec<&str> = request
        .headers
        .get_all(&HeaderName::ACCEPT)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or_default().trim())
        .filter(|t| !t.is_empty())
        .collect();
    let acceptable = |t: &&str| {
        t.eq_ignore_ascii_case(summary::CONTENT_TYPE)
            || t.eq_ignore_ascii_case("application/*")
            || *t == "*/*"
    };
    if !accepts.is_empty() && !accepts.iter().any(acceptable) {
        return Err(Refusal::NotAcceptable);
    }
    // RFC 6665 §4.1.1, §4.2.1.1: the notifier may shorten the duration, never lengthen it;
    // a non-zero one below the minimum gets 423 with Min-Expires.
    let expires = match request.headers.expires() {
        None => DEFAULT_EXPIRES.min(max),
        Some(0) => 0,
        Some(asked) if asked < min => return Err(Refusal::TooBrief { min }),
        Some(asked) => asked.min(max),
    };
    // RFC 6665 §4.1.2.1 (RFC 3261 §12.1.1): the Contact is the dialog's remote target.
    let has_contact = request
        .headers
        .contacts()
        .is_ok_and(|c| !c.addresses().is_empty());
    if !has_contact {
        return Err(Refusal::NoContact);
    }
    Ok(Accepted {
        event: event.to_string(),
        expires,
    })
}

/// An unsolicited NOTIFY to one registered device of `mailbox` (no subscription: Asterisk's
/// `unsolicited_mailbox`, Cisco and Polycom "unsolicited MWI"), in its own Call-ID that
/// starts with `call_id_prefix` so that the answer comes back to this shard.
pub struct Unsolicited<'a> {
    pub contact: &'a str,
    pub mailbox: &'a str,
    pub domain: &'a str,
    pub user_agent: &'a str,
    pub body: &'a str,
}

impl Unsolicited<'_> {
    pub fn request(
        &self,
        endpoint: &Endpoint<Peer>,
        call_id: &str,
        rng: &mut impl rand::RngCore,
    ) -> Option<Request> {
        let via = endpoint.via(&pbx_calls::ids::branch(rng));
        let text = format!(
            "NOTIFY {contact} SIP/2.0\r\n\
             Via: {via}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{mailbox}@{domain}>;tag={tag}\r\n\
             To: <sip:{mailbox}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 NOTIFY\r\n\
             Contact: <{local}>\r\n\
             Event: {event}\r\n\
             Subscription-State: active\r\n\
             User-Agent: {user_agent}\r\n\
             Content-Type: {content_type}\r\n\
             Content-Length: {length}\r\n\r\n{body}",
            contact = self.contact,
            mailbox = self.mailbox,
            domain = self.domain,
            tag = pbx_calls::ids::tag(rng),
            local = endpoint.contact(),
            event = summary::EVENT,
            user_agent = self.user_agent,
            content_type = summary::CONTENT_TYPE,
            length = self.body.len(),
            body = self.body,
        );
        match pbx_sip::parse::parse_message(Bytes::from(text)) {
            Ok(Message::Request(request)) => Some(request),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(extra: &str) -> Request {
        let text = format!(
            "SUBSCRIBE sip:1000@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\n\
             From: <sip:1000@pbx.test>;tag=a\r\nTo: <sip:1000@pbx.test>\r\nCall-ID: c\r\n\
             CSeq: 1 SUBSCRIBE\r\nContact: <sip:1000@10.0.0.1>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match pbx_sip::parse::parse_message(Bytes::from(text)) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn event_accept_and_expires() {
        let ok = |extra: &str| check(&subscribe(extra), 60, 3600);
        assert_eq!(ok("Expires: 600\r\n"), Err(Refusal::BadEvent));
        assert_eq!(ok("Event: presence\r\n"), Err(Refusal::BadEvent));
        assert_eq!(
            ok("Event: message-summary;id=7\r\n"),
            Ok(Accepted {
                event: "message-summary;id=7".into(),
                expires: 3600
            })
        );
        // The compact form of Event is `o`.
        assert_eq!(
            ok("o: message-summary\r\nExpires: 7200\r\n").map(|a| a.expires),
            Ok(3600)
        );
        assert_eq!(
            ok("Event: message-summary\r\nExpires: 30\r\n"),
            Err(Refusal::TooBrief { min: 60 })
        );
        assert_eq!(
            ok("Event: message-summary\r\nExpires: 0\r\n").map(|a| a.expires),
            Ok(0)
        );
        assert_eq!(
            ok("Event: message-summary\r\nAccept: application/pidf+xml\r\n"),
            Err(Refusal::NotAcceptable)
        );
        assert!(
            ok("Event: message-summary\r\nAccept: application/simple-message-summary\r\n").is_ok()
        );
    }
}
