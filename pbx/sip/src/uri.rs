//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966); any other scheme is kept opaque
//! (RFC 4475 §3.3.2 requires such a Request-URI to parse). IPv6 references follow RFC 5118.
//!
//! A parsed [`Uri`] keeps its text: [`Uri`]'s `Display` writes back exactly what was received
//! until the URI is modified, and a modified URI is re-rendered from its parts.

mod chars;
mod compare;
pub(crate) mod error;
mod host;
mod parse;

pub use chars::unescape;
pub use error::UriError;
pub use host::Host;
pub(crate) use host::parse_ipv6;

use crate::header::params::Params;
use chars::{PARAM, USER, escape};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Lower-cased (schemes are case-insensitive, RFC 3986 §3.1).
    Other(String),
}

impl Scheme {
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URI. See the module documentation.
#[derive(Clone, Debug)]
pub struct Uri {
    text: String,
    scheme: Scheme,
    /// sip/sips: the user part, as written (escapes kept); tel: the number. Spans of `text`.
    user: Option<Range<usize>>,
    password: Option<Range<usize>>,
    host: Option<Host>,
    port: Option<u16>,
    params: Params,
    /// The `?h=v&...` part without the `?`.
    headers: Option<Range<usize>>,
    /// Other schemes: everything after `scheme:`.
    opaque: Option<Range<usize>>,
}

impl Uri {
    /// A `sip:` URI. A user with characters outside the RFC 3261 `user` set is %-escaped.
    pub fn sip(user: Option<&str>, host: Host, port: Option<u16>) -> Uri {
        // The user goes in `text` first, so that `render` can copy it from its span.
        let text = user.map(|u| escape(u, &USER)).unwrap_or_default();
        let mut uri = Uri {
            user: user.map(|_| 0..text.len()),
            text,
            scheme: Scheme::Sip,
            password: None,
            host: Some(host),
            port,
            params: Params::new(),
            headers: None,
            opaque: None,
        };
        uri.render();
        uri
    }

    /// Like [`Uri::sip`] with the `sips:` scheme.
    pub fn sips(user: Option<&str>, host: Host, port: Option<u16>) -> Uri {
        let mut uri = Uri::sip(user, host, port);
        uri.scheme = Scheme::Sips;
        uri.render();
        uri
    }

    /// The text of a span.
    fn part(&self, span: &Option<Range<usize>>) -> Option<&str> {
        span.as_ref().and_then(|r| self.text.get(r.clone()))
    }

    /// Rebuilds `text` (and the spans into it) from the parts after a change.
    fn render(&mut self) {
        let mut t = String::with_capacity(self.text.len() + 16);
        t.push_str(self.scheme.as_str());
        t.push(':');
        let copy = |t: &mut String, span: &Option<Range<usize>>| -> Option<Range<usize>> {
            let text = self.part(span)?;
            let start = t.len();
            t.push_str(text);
            Some(start..t.len())
        };
        let (mut user, mut password, mut headers, mut opaque) = (None, None, None, None);
        match self.scheme {
            Scheme::Sip | Scheme::Sips => {
                user = copy(&mut t, &self.user);
                if user.is_some() {
                    if self.password.is_some() {
                        t.push(':');
                        password = copy(&mut t, &self.password);
                    }
                    t.push('@');
                }
                if let Some(h) = &self.host {
                    t.push_str(&h.to_string());
                }
                if let Some(p) = self.port {
                    t.push_str(&format!(":{p}"));
                }
                t.push_str(&self.params.to_string());
                if self.headers.is_some() {
                    t.push('?');
                    headers = copy(&mut t, &self.headers);
                }
            }
            Scheme::Tel => {
                user = copy(&mut t, &self.user);
                t.push_str(&self.params.to_string());
            }
            Scheme::Other(_) => opaque = copy(&mut t, &self.opaque),
        }
        self.text = t;
        (self.user, self.password, self.headers, self.opaque) = (user, password, headers, opaque);
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme.clone()
    }

    pub fn is_sip_or_sips(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part as written (escapes kept); for `tel:` the number.
    pub fn user(&self) -> Option<&str> {
        self.part(&self.user)
    }

    /// The user part with `%HH` escapes decoded (may hold any byte, NUL included).
    pub fn user_unescaped(&self) -> Option<Vec<u8>> {
        self.user().map(unescape)
    }

    pub fn password(&self) -> Option<&str> {
        self.part(&self.password)
    }

    pub fn host(&self) -> Option<&Host> {
        self.host.as_ref()
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `None`: absent; `Some(None)`: present without value. Names compare without case.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.get(name)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The `transport` URI parameter (RFC 3261 §19.1.1).
    pub fn transport_param(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// The `?h=v&...` part, without the `?`, as written.
    pub fn headers(&self) -> Option<&str> {
        self.part(&self.headers)
    }

    /// Other schemes: the text after `scheme:`.
    pub fn opaque(&self) -> Option<&str> {
        self.part(&self.opaque)
    }

    /// The URI text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Sets (or adds) a URI parameter. Characters outside the RFC 3261 `paramchar` set are
    /// %-escaped. No effect on other schemes, which have no parameters.
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Uri {
        if matches!(self.scheme, Scheme::Other(_)) {
            return self;
        }
        let name = escape(name, &PARAM);
        let value = value.map(|v| escape(v, &PARAM));
        self.params.set(&name, value.as_deref());
        self.render();
        self
    }

    /// Removes a URI parameter.
    pub fn without_param(mut self, name: &str) -> Uri {
        if self.params.remove(name) {
            self.render();
        }
        self
    }

    /// Drops the `?headers` part (for URIs that must not carry one, RFC 3261 §19.1.1).
    pub fn without_headers(mut self) -> Uri {
        if self.headers.take().is_some() {
            self.render();
        }
        self
    }

    pub fn with_port(mut self, port: Option<u16>) -> Uri {
        if self.is_sip_or_sips() {
            self.port = port;
            self.render();
        }
        self
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Uri, UriError> {
        Uri::parse(s)
    }
}

/// Textual equality (use [`Uri::equivalent`] for RFC 3261 §19.1.4 comparison).
impl PartialEq for Uri {
    fn eq(&self, other: &Uri) -> bool {
        self.text == other.text
    }
}

impl Eq for Uri {}

impl std::hash::Hash for Uri {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    #[test]
    fn parses_sip_parts() {
        let u = p("sip:alice:secret@Example.COM:5070;transport=tcp;lr?Subject=hi&X=y");
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host(), Some(&Host::Domain("Example.COM".into())));
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.transport_param(), Some("tcp"));
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(u.param("maddr"), None);
        assert_eq!(u.headers(), Some("Subject=hi&X=y"));
        assert_eq!(
            u.to_string(),
            "sip:alice:secret@Example.COM:5070;transport=tcp;lr?Subject=hi&X=y"
        );
    }

    #[test]
    fn user_part_may_hold_semicolons() {
        // RFC 4475 §3.1.1.9
        let u = p("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host(), Some(&Host::Domain("example.com".into())));
        assert!(u.params().is_empty());
    }

    #[test]
    fn ipv6_references() {
        let u = p("sip:[2001:db8::10]:5070");
        assert_eq!(u.host(), Some(&Host::Ipv6("2001:db8::10".parse().unwrap())));
        assert_eq!(u.port(), Some(5070));
        // RFC 5118 §4.3: the port inside the brackets is part of the address.
        let u = p("sip:[2001:db8::10:5070]");
        assert_eq!(
            u.host(),
            Some(&Host::Ipv6("2001:db8::10:5070".parse().unwrap()))
        );
        assert_eq!(u.port(), None);
        // RFC 5118 §4.10: tolerate the three-colon form.
        let u = p("sip:user@[2001:db8:::192.0.2.1]");
        assert_eq!(
            u.host(),
            Some(&Host::Ipv6("2001:db8::192.0.2.1".parse().unwrap()))
        );
        assert_eq!(u.to_string(), "sip:user@[2001:db8:::192.0.2.1]");
        // RFC 5118 §4.2: an IPv6 address needs its brackets.
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert_eq!(Host::Ipv6("::1".parse().unwrap()).to_string(), "[::1]");
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = p("tel:+1-201-555-0123;phone-context=example.com");
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some("+1-201-555-0123"));
        assert_eq!(u.param("phone-context"), Some(Some("example.com")));
        assert!(u.host().is_none());
        assert!(p("tel:+12015550123;phone-context=EXAMPLE.com").equivalent(&u));
        let u = p("nobodyKnowsThisScheme:totallyopaquecontent");
        assert_eq!(u.scheme(), Scheme::Other("nobodyknowsthisscheme".into()));
        assert_eq!(u.opaque(), Some("totallyopaquecontent"));
        assert_eq!(u.to_string(), "nobodyKnowsThisScheme:totallyopaquecontent");
        assert!(Uri::parse("soap.beep://192.0.2.103:3002").is_ok());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sip:",
            "<sip:a@b>",
            "sip:a b@c",
            "sip:@host",
            "sip:a@",
            "sip:a@host:",
            "sip:a@host:99999",
            "sip:a@host;",
            "sip:a@host;=x",
            "sip:%zz@host",
            "1sip:a@b",
            "sip:a@ho st",
            "tel:",
            "sip:a@[::1",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn builds_and_modifies() {
        let u = Uri::sip(
            Some("al ice"),
            Host::Ipv6("::1".parse().unwrap()),
            Some(5060),
        );
        assert_eq!(u.to_string(), "sip:al%20ice@[::1]:5060");
        assert_eq!(u.user_unescaped().unwrap(), b"al ice");
        let u = u
            .with_param("transport", Some("tcp"))
            .with_param("lr", None);
        assert_eq!(u.to_string(), "sip:al%20ice@[::1]:5060;transport=tcp;lr");
        assert_eq!(u, p(&u.to_string()));
        let u = u.without_param("LR").with_port(None);
        assert_eq!(u.to_string(), "sip:al%20ice@[::1];transport=tcp");
    }
}
