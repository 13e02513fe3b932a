//! The `application/simple-message-summary` body (RFC 3842 §3.5, §5.2) and the headers every
//! message-summary NOTIFY carries.

use pbx_sip::message::HeaderName;
use pbx_store_types::MessageCounts;

/// The event package (RFC 3842 §3.1).
pub const EVENT: &str = "message-summary";
/// The NOTIFY body type (RFC 3842 §3.5).
pub const CONTENT_TYPE: &str = "application/simple-message-summary";
/// RFC 6665 §8.2.3.
pub const SUBSCRIPTION_STATE: HeaderName = HeaderName::from_static("Subscription-State");

/// The body for a mailbox `account` (a SIP URI) holding `counts`. Voice messages only; saved
/// ones count as old, as the voicemail menu says them ("N new and M old"). No urgent
/// messages: the `(0/0)` part is always zero.
pub fn body(account: &str, counts: MessageCounts) -> String {
    let old = counts.old.saturating_add(counts.saved);
    let waiting = if counts.new > 0 { "yes" } else { "no" };
    format!(
        "Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\nVoice-Message: {}/{old} (0/0)\r\n",
        counts.new
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_says_new_and_old_with_saved_as_old() {
        let counts = MessageCounts {
            new: 2,
            old: 5,
            saved: 3,
        };
        assert_eq!(
            body("sip:1000@pbx.test", counts),
            "Messages-Waiting: yes\r\nMessage-Account: sip:1000@pbx.test\r\n\
             Voice-Message: 2/8 (0/0)\r\n"
        );
        let none = MessageCounts {
            new: 0,
            old: 1,
            saved: 0,
        };
        assert!(body("sip:1000@pbx.test", none).starts_with("Messages-Waiting: no\r\n"));
    }
}
