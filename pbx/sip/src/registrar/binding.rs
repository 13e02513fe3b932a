//! A registration binding: one contact of one address-of-record (RFC 3261 §10.3).

use crate::header::NameAddr;
use crate::uri::Uri;

/// What the rules need to know about a binding. The shell stores more beside it (transport,
/// source address, user agent, connection).
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// The contact URI as registered (without the Contact header's own parameters).
    pub contact: Uri,
    /// Unix seconds at which the binding lapses.
    pub expires_at: u64,
    pub call_id: String,
    pub cseq: u32,
    /// The `q` preference in thousandths (RFC 3261 §20.10), exact for ordering.
    pub q: Option<u16>,
    /// `+sip.instance` (RFC 5626 §4.1), unquoted, e.g. `<urn:uuid:...>`.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626 §4.2); only kept together with an instance.
    pub reg_id: Option<u32>,
}

impl Binding {
    /// Builds the binding a Contact value asks for.
    pub(crate) fn from_contact(
        contact: &NameAddr,
        expires_at: u64,
        call_id: &str,
        cseq: u32,
    ) -> Binding {
        let instance = contact
            .params
            .get("+sip.instance")
            .flatten()
            .map(str::to_owned);
        // RFC 5626 §6: reg-id only means something next to +sip.instance.
        let reg_id = instance
            .as_ref()
            .and_then(|_| contact.params.get("reg-id").flatten())
            .and_then(|v| v.parse().ok());
        Binding {
            contact: contact.uri.clone(),
            expires_at,
            call_id: call_id.to_owned(),
            cseq,
            q: contact.q_millis(),
            instance,
            reg_id,
        }
    }

    /// Seconds left, 0 once lapsed.
    pub fn expires_in(&self, now_unix: u64) -> u64 {
        self.expires_at.saturating_sub(now_unix)
    }

    pub fn is_expired(&self, now_unix: u64) -> bool {
        self.expires_at <= now_unix
    }

    /// Whether `other` (a binding the request asks for) refers to this one: by instance and
    /// reg-id when both carry `+sip.instance` (RFC 5626 §6), otherwise by URI equivalence
    /// (RFC 3261 §10.3 step 7, §19.1.4).
    pub fn same_binding(&self, other: &Binding) -> bool {
        match (&self.instance, &other.instance) {
            (Some(mine), Some(theirs)) => mine == theirs && self.reg_id == other.reg_id,
            _ => self.contact.equivalent(&other.contact),
        }
    }

    /// Whether a store keyed by (contact text, instance, reg-id) holds both under one key.
    pub fn same_key(&self, other: &Binding) -> bool {
        self.contact.as_str() == other.contact.as_str()
            && self.instance == other.instance
            && self.reg_id == other.reg_id
    }

    /// The Contact value for a 200 to REGISTER: `<uri>;expires=N` (RFC 3261 §10.3 step 8 MUST),
    /// plus q, +sip.instance and reg-id when the binding has them, so an RFC 5626 client can
    /// find its own flow.
    pub fn contact_value(&self, now_unix: u64) -> String {
        let mut out = format!("<{}>", self.contact);
        if let Some(q) = self.q {
            out.push_str(";q=");
            out.push_str(&format_q(q));
        }
        out.push_str(&format!(";expires={}", self.expires_in(now_unix)));
        if let Some(instance) = &self.instance {
            out.push_str(&format!(";+sip.instance=\"{instance}\""));
        }
        if let Some(reg_id) = self.reg_id {
            out.push_str(&format!(";reg-id={reg_id}"));
        }
        out
    }
}

/// Thousandths back to RFC 3261 `qvalue` text: 1000 → "1", 500 → "0.5", 75 → "0.075".
fn format_q(millis: u16) -> String {
    if millis >= 1000 {
        return "1".to_owned();
    }
    let digits = format!("{millis:03}");
    format!("0.{}", digits.trim_end_matches('0'))
        .trim_end_matches('.')
        .to_owned()
}

/// Drops lapsed bindings; returns how many went.
pub fn prune_expired(now_unix: u64, bindings: &mut Vec<Binding>) -> usize {
    let before = bindings.len();
    bindings.retain(|b| !b.is_expired(now_unix));
    before - bindings.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(text: &str) -> NameAddr {
        NameAddr::parse(text).unwrap()
    }

    #[test]
    fn reads_contact_parameters() {
        let c = contact(
            "<sip:1001@10.0.0.5:5062;transport=tcp>;q=0.7;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=2",
        );
        let b = Binding::from_contact(&c, 160, "cid", 7);
        assert_eq!(
            b.contact.to_string(),
            "sip:1001@10.0.0.5:5062;transport=tcp"
        );
        assert_eq!(b.q, Some(700));
        assert_eq!(
            b.instance.as_deref(),
            Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>")
        );
        assert_eq!(b.reg_id, Some(2));
        assert_eq!(
            b.contact_value(100),
            "<sip:1001@10.0.0.5:5062;transport=tcp>;q=0.7;expires=60;\
             +sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=2"
        );
        let plain = Binding::from_contact(&contact("sip:a@b;reg-id=1"), 10, "c", 1);
        assert_eq!((plain.instance, plain.reg_id, plain.q), (None, None, None));
    }

    #[test]
    fn q_values_render_exactly() {
        assert_eq!(format_q(1000), "1");
        assert_eq!(format_q(0), "0");
        assert_eq!(format_q(500), "0.5");
        assert_eq!(format_q(75), "0.075");
        assert_eq!(format_q(120), "0.12");
    }

    #[test]
    fn prunes_lapsed_bindings() {
        let mk = |at| Binding::from_contact(&contact("<sip:a@b>"), at, "c", 1);
        let mut list = vec![mk(100), mk(101), mk(99)];
        assert_eq!(prune_expired(100, &mut list), 2);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].expires_in(100), 1);
        assert_eq!(list[0].expires_in(500), 0);
    }
}
