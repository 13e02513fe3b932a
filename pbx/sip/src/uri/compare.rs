//! URI comparison: RFC 3261 §19.1.4 for sip/sips, RFC 3966 §4 for tel.

use super::{Scheme, Uri, unescape};
use crate::header::params::Params;

impl Uri {
    /// RFC 3261 §19.1.4 URI comparison (for sip/sips); RFC 3966 §4 for tel; otherwise
    /// scheme and text compared, the scheme without case.
    pub fn equivalent(&self, other: &Uri) -> bool {
        match (&self.scheme, &other.scheme) {
            (Scheme::Sip, Scheme::Sip) | (Scheme::Sips, Scheme::Sips) => self.sip_equivalent(other),
            (Scheme::Tel, Scheme::Tel) => self.tel_equivalent(other),
            (Scheme::Other(a), Scheme::Other(b)) => a == b && self.opaque() == other.opaque(),
            // RFC 3261 §19.1.4: a SIP and a SIPS URI are never equivalent.
            _ => false,
        }
    }

    fn sip_equivalent(&self, other: &Uri) -> bool {
        // RFC 3261 §19.1.4: userinfo compares case-sensitively, after unescaping.
        if self.user().map(unescape) != other.user().map(unescape)
            || self.password().map(unescape) != other.password().map(unescape)
        {
            return false;
        }
        let hosts = match (&self.host, &other.host) {
            (Some(a), Some(b)) => a.matches(b),
            _ => false,
        };
        // An omitted port does not match an explicit one, even 5060.
        if !hosts || self.port != other.port {
            return false;
        }
        if !params_equivalent(&self.params, &other.params) {
            return false;
        }
        // URI headers are never ignored: both must have the same set.
        header_set(self.headers()) == header_set(other.headers())
    }

    fn tel_equivalent(&self, other: &Uri) -> bool {
        // RFC 3966 §4: visual separators are ignored; parameters compare as a set.
        let digits = |u: &Uri| -> String {
            u.user()
                .unwrap_or("")
                .chars()
                .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        if digits(self) != digits(other) || self.params.len() != other.params.len() {
            return false;
        }
        self.params
            .iter()
            .all(|(n, v)| match other.params.get_raw(n) {
                Some(ov) => eq_unescaped_ci(v.unwrap_or(""), ov.unwrap_or("")),
                None => false,
            })
    }
}

fn eq_unescaped_ci(a: &str, b: &str) -> bool {
    unescape(a).eq_ignore_ascii_case(&unescape(b))
}

/// RFC 3261 §19.1.4 uri-parameter rules.
fn params_equivalent(a: &Params, b: &Params) -> bool {
    for (name, value) in a.iter() {
        match b.get_raw(name) {
            Some(other) => {
                if !eq_unescaped_ci(value.unwrap_or(""), other.unwrap_or("")) {
                    return false;
                }
            }
            None => {
                // user, ttl, method and maddr never match when only one URI has them.
                if ["user", "ttl", "method", "maddr"]
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name))
                {
                    return false;
                }
            }
        }
    }
    // The same rule the other way round for the parameters only `b` has.
    b.iter().all(|(name, _)| {
        a.get_raw(name).is_some()
            || !["user", "ttl", "method", "maddr"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
    })
}

fn header_set(h: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut set: Vec<(Vec<u8>, Vec<u8>)> = h
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(n).to_ascii_lowercase(), unescape(v))
        })
        .collect();
    set.sort();
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    #[test]
    fn rfc3261_19_1_4_equivalence() {
        let eq = |a: &str, b: &str| p(a).equivalent(&p(b));
        // The RFC's examples of equivalent URIs.
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
        // And of non-equivalent ones.
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp;ttl=1"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sips:bob@biloxi.com"));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;newparam=6",
            "sip:carol@chicago.com;newparam=5"
        ));
        // Escaped NULs are distinct users (RFC 4475 §3.1.1.4).
        assert!(!eq("sip:%00@h.example.com", "sip:%00%00@h.example.com"));
    }
}
