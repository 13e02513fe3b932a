//! `name-addr / addr-spec` followed by header parameters: From, To, Contact, Route...
//! (RFC 3261 §20.10, §20.20, §20.39). In the `addr-spec` form (no `<>`) everything after
//! the first `;` is a header parameter, never a URI parameter (RFC 3261 §20).

use super::SyntaxError;
use super::lex::{Lexer, is_token_byte, is_ws, quote, unquote};
use super::params::Params;
use crate::uri::Uri;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// Unquoted (escapes removed); `Display` writes it back quoted.
    pub display_name: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    pub fn parse(s: &str) -> Result<NameAddr, SyntaxError> {
        let mut lx = Lexer::new(s);
        lx.skip_ws();
        let has_angle = s.contains('<');
        let (display_name, uri) = if lx.peek() == Some(b'"') {
            let q = lx.quoted()?;
            lx.skip_ws();
            (Some(unquote(q)), angle_uri(&mut lx)?)
        } else if has_angle {
            // RFC 3261 `*(token LWS)`; RFC 4475 §3.1.1.6: no LWS before `<` is accepted.
            let name = lx.take_while(|b| is_token_byte(b) || is_ws(b));
            let name = super::lex::trim_ws(name);
            (
                (!name.is_empty()).then(|| name.to_owned()),
                angle_uri(&mut lx)?,
            )
        } else {
            let text = lx.take_while(|b| b != b';' && !is_ws(b));
            let uri = Uri::parse(text)?;
            if uri.headers().is_some() {
                // RFC 3261 §20: a URI with `?headers` must be enclosed in `<>`.
                return Err(SyntaxError::Bad("URI with headers must be enclosed in <>"));
            }
            (None, uri)
        };
        let params = Params::parse_from(&mut lx)?;
        lx.skip_ws();
        if !lx.at_end() {
            return Err(SyntaxError::Bad("unexpected text after address"));
        }
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }

    /// The `expires` contact parameter (RFC 3261 §20.10), saturating at `u32::MAX`;
    /// `None` when absent or not a number.
    pub fn expires(&self) -> Option<u32> {
        self.params.get("expires").flatten().and_then(parse_seconds)
    }

    /// The `q` contact parameter (RFC 3261 §20.10), 0.0..=1.0.
    pub fn q(&self) -> Option<f32> {
        self.q_millis().map(|m| f32::from(m) / 1000.0)
    }

    /// The `q` parameter in thousandths (exact, for ordering bindings).
    pub fn q_millis(&self) -> Option<u16> {
        let v = self.params.get("q").flatten()?;
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole = match int {
            "0" => 0u16,
            "1" if frac.bytes().all(|b| b == b'0') => 1,
            _ => return None,
        };
        let mut millis = whole * 1000;
        for (i, d) in frac.bytes().enumerate() {
            millis += u16::from(d - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
        }
        Some(millis)
    }
}

/// Decimal seconds, saturating (RFC 4475 §3.1.2.4: an overlarge value is not an error here).
pub(crate) fn parse_seconds(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u32>().unwrap_or(u32::MAX))
}

fn angle_uri(lx: &mut Lexer<'_>) -> Result<Uri, SyntaxError> {
    if !lx.eat(b'<') {
        return Err(SyntaxError::Bad("expected <"));
    }
    let text = lx.until(b'>').ok_or(SyntaxError::Bad("missing >"))?;
    lx.eat(b'>');
    Ok(Uri::parse(text)?)
}

impl FromStr for NameAddr {
    type Err = SyntaxError;
    fn from_str(s: &str) -> Result<NameAddr, SyntaxError> {
        NameAddr::parse(s)
    }
}

/// Always writes the `name-addr` form, so URI parameters and header parameters stay apart.
impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Host;

    #[test]
    fn name_addr_form() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.uri.to_string(), "sip:jdrosen@example.com");
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(
            n.to_string(),
            r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#
        );
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        let n = NameAddr::parse("A. Bell <sip:a@b.com;lr>").unwrap();
        assert_eq!(n.display_name.as_deref(), Some("A. Bell"));
        assert_eq!(n.uri.param("lr"), Some(None));
        assert!(n.params.is_empty());
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        // RFC 4475 §3.3.12
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(n.uri.param("unknownparam"), None);
        assert_eq!(n.params.get("unknownparam"), Some(None));
        // RFC 4475 §3.3.13
        let n = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(n.uri.param("unknownparam"), Some(None));
        assert!(n.params.is_empty());
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert_eq!(
            n.uri.host(),
            Some(&Host::Domain("chair-dnrc.example.com".into()))
        );
    }

    #[test]
    fn contact_params() {
        let n = NameAddr::parse("<sip:a@b>;expires=280297596632815;q=0.33").unwrap();
        assert_eq!(n.expires(), Some(u32::MAX));
        assert_eq!(n.q_millis(), Some(330));
        assert!((n.q().unwrap() - 0.33).abs() < 1e-6);
        assert_eq!(
            NameAddr::parse("<sip:a@b>;q=1.000").unwrap().q_millis(),
            Some(1000)
        );
        assert_eq!(NameAddr::parse("<sip:a@b>;q=1.5").unwrap().q_millis(), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b",
            "Bell, Alexander <sip:a@b>",
            "<sip:a@b>;;",
            "<sip:a@b> junk",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad:?}");
        }
        // In <>, URI headers are fine (RFC 4475 §3.3.14).
        let n = NameAddr::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").unwrap();
        assert_eq!(n.uri.headers(), Some("Route=%3Csip:sip.example.com%3E"));
    }
}
