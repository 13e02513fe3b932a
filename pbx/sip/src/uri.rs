//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966); any other scheme is kept opaque
//! (RFC 4475 §3.3.2 requires such a Request-URI to parse). IPv6 references follow RFC 5118.
//!
//! A parsed [`Uri`] keeps its text: [`Uri`]'s `Display` writes back exactly what was received
//! until the URI is modified, and a modified URI is re-rendered from its parts.

use crate::header::Params;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

/// The host of a SIP URI or Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// As written (compare with [`Host::matches`], which ignores case).
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses `hostname`, `IPv4address` or `[IPv6address]` (RFC 3261 §25.1, RFC 5118).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::Host)?;
            return parse_ipv6(inner).map(Host::Ipv6).ok_or(UriError::Host);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && let Ok(v4) = Ipv4Addr::from_str(s)
        {
            return Ok(Host::Ipv4(v4));
        }
        if is_hostname(s) {
            Ok(Host::Domain(s.to_owned()))
        } else {
            Err(UriError::Host)
        }
    }

    /// RFC 3261 §19.1.4: domain names compare case-insensitively; an IP address never
    /// matches a domain name.
    pub fn matches(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// An IPv6 address, tolerating the `:::` form that RFC 3261's ABNF allowed by mistake
/// (RFC 5118 §4.10: implementations must accept it).
pub(crate) fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    Ipv6Addr::from_str(s)
        .ok()
        .or_else(|| Ipv6Addr::from_str(&s.replacen(":::", "::", 1)).ok())
}

/// RFC 3261 `hostname`: dot-separated labels of alphanumerics and `-` (and `_`, which real
/// clients use), with an optional final dot.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let mut after_dot = true;
    for b in s.bytes() {
        if b == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            after_dot = false;
        } else {
            return false;
        }
    }
    !after_dot
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("empty URI")]
    Empty,
    #[error("missing or invalid scheme")]
    Scheme,
    #[error("character not allowed in a URI")]
    Char,
    #[error("invalid user part")]
    User,
    #[error("invalid host")]
    Host,
    #[error("invalid port")]
    Port,
    #[error("invalid %-escape")]
    Escape,
    #[error("invalid URI parameter")]
    Param,
    #[error("invalid URI header")]
    Header,
    #[error("invalid telephone number")]
    Tel,
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

/// Where `part` (a sub-slice of `base`) sits in `base`.
fn span(base: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    start..start + part.len()
}

use crate::header::lex::byte_class;

/// RFC 3261 §25.1: `unreserved` / `reserved` / `%`, plus `[` `]` of IPv6 references and the
/// `#` of tel numbers.
static URI_BYTES: [bool; 256] = byte_class(b"-_.!~*'()%;/?:@&=+$,[]#");
static UNRESERVED: [bool; 256] = byte_class(b"-_.!~*'()");
/// `unreserved` plus RFC 3261 §25.1 `user-unreserved`.
static USER: [bool; 256] = byte_class(b"-_.!~*'()&=+$,;?/");
static PASSWORD: [bool; 256] = byte_class(b"-_.!~*'()&=+$,");
/// `unreserved` plus `param-unreserved`.
static PARAM: [bool; 256] = byte_class(b"-_.!~*'()[]/:&+$");
/// `unreserved` plus `hnv-unreserved`, and the `=` and `&` that separate headers.
static HEADER: [bool; 256] = byte_class(b"-_.!~*'()[]/?:+$=&");

fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// Checks that `s` has only bytes of `class` and `%HH` escapes.
fn check_chars(s: &str, class: &[bool; 256], err: UriError) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UriError::Escape);
            }
            i += 3;
            continue;
        }
        if !class[usize::from(c)] {
            return Err(err);
        }
        i += 1;
    }
    Ok(())
}

/// Replaces `%HH` escapes by the byte they encode (RFC 3261 §19.1.4 compares unescaped).
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|h| (*h as char).to_digit(16));
            let lo = b.get(i + 2).and_then(|h| (*h as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Escapes every byte outside `unreserved` and `extra`.
fn escape(s: &str, class: &[bool; 256]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if class[usize::from(b)] && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Uri {
    /// Parses a URI. White space, `<`, `>`, `"` and non-ASCII bytes are rejected.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        if !s.bytes().all(|b| URI_BYTES[usize::from(b)]) {
            return Err(UriError::Char);
        }
        let (scheme_text, rest) = s.split_once(':').ok_or(UriError::Scheme)?;
        let mut sb = scheme_text.bytes();
        let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
            && sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(UriError::Scheme);
        }
        let scheme = if scheme_text.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_text.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_text.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_text.to_ascii_lowercase())
        };
        let mut uri = Uri {
            text: s.to_owned(),
            scheme,
            user: None,
            password: None,
            host: None,
            port: None,
            params: Params::new(),
            headers: None,
            opaque: None,
        };
        match uri.scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(s, rest)?,
            Scheme::Tel => uri.parse_tel(s, rest)?,
            Scheme::Other(_) => {
                if rest.is_empty() {
                    return Err(UriError::Empty);
                }
                uri.opaque = Some(span(s, rest));
            }
        }
        Ok(uri)
    }

    fn parse_sip(&mut self, base: &str, rest: &str) -> Result<(), UriError> {
        // `@` cannot appear unescaped after the userinfo, so the first one ends it.
        let hostpart = match rest.split_once('@') {
            Some((userinfo, hostpart)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(UriError::User);
                }
                check_chars(user, &USER, UriError::User)?;
                if let Some(p) = password {
                    check_chars(p, &PASSWORD, UriError::User)?;
                    self.password = Some(span(base, p));
                }
                self.user = Some(span(base, user));
                hostpart
            }
            None => rest,
        };
        let (hostport, headers) = match hostpart.split_once('?') {
            Some((hp, h)) => (hp, Some(h)),
            None => (hostpart, None),
        };
        let (hostport, params) = match hostport.split_once(';') {
            Some((hp, p)) => (hp, Some(p)),
            None => (hostport, None),
        };
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']').ok_or(UriError::Host)?;
            let (h, after) = hostport.split_at(close + 1);
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or(UriError::Port)?)),
            }
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        self.host = Some(Host::parse(host)?);
        if let Some(p) = port {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UriError::Port);
            }
            self.port = Some(p.parse().map_err(|_| UriError::Port)?);
        }
        if let Some(params) = params {
            self.params = parse_uri_params(params)?;
        }
        if let Some(h) = headers {
            for pair in h.split('&') {
                let (name, value) = pair.split_once('=').ok_or(UriError::Header)?;
                if name.is_empty() {
                    return Err(UriError::Header);
                }
                check_chars(name, &HEADER, UriError::Header)?;
                check_chars(value, &HEADER, UriError::Header)?;
            }
            self.headers = Some(span(base, h));
        }
        Ok(())
    }

    /// RFC 3966: `telephone-subscriber *par`; the number goes in `user`.
    fn parse_tel(&mut self, base: &str, rest: &str) -> Result<(), UriError> {
        let (number, params) = match rest.split_once(';') {
            Some((n, p)) => (n, Some(p)),
            None => (rest, None),
        };
        let ok = number.bytes().any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
            && number.bytes().all(|b| {
                b.is_ascii_hexdigit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b'*' | b'#')
            });
        if !ok {
            return Err(UriError::Tel);
        }
        self.user = Some(span(base, number));
        if let Some(p) = params {
            self.params = parse_uri_params(p)?;
        }
        Ok(())
    }

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
        self.params.iter().all(|(n, v)| match other.params.get_raw(n) {
            Some(ov) => eq_unescaped_ci(v.unwrap_or(""), ov.unwrap_or("")),
            None => false,
        })
    }
}

fn parse_uri_params(s: &str) -> Result<Params, UriError> {
    let mut params = Params::new();
    for p in s.split(';') {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if name.is_empty() || value.is_some_and(str::is_empty) {
            return Err(UriError::Param);
        }
        check_chars(name, &PARAM, UriError::Param)?;
        if let Some(v) = value {
            check_chars(v, &PARAM, UriError::Param)?;
        }
        params.push_raw(name.to_owned(), value.map(str::to_owned));
    }
    Ok(params)
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
        assert_eq!(u.to_string(), "sip:alice:secret@Example.COM:5070;transport=tcp;lr?Subject=hi&X=y");
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
        assert_eq!(u.host(), Some(&Host::Ipv6("2001:db8::10:5070".parse().unwrap())));
        assert_eq!(u.port(), None);
        // RFC 5118 §4.10: tolerate the three-colon form.
        let u = p("sip:user@[2001:db8:::192.0.2.1]");
        assert_eq!(u.host(), Some(&Host::Ipv6("2001:db8::192.0.2.1".parse().unwrap())));
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
            "", "sip:", "<sip:a@b>", "sip:a b@c", "sip:@host", "sip:a@", "sip:a@host:", "sip:a@host:99999",
            "sip:a@host;", "sip:a@host;=x", "sip:%zz@host", "1sip:a@b", "sip:a@ho st", "tel:", "sip:a@[::1",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn builds_and_modifies() {
        let u = Uri::sip(Some("al ice"), Host::Ipv6("::1".parse().unwrap()), Some(5060));
        assert_eq!(u.to_string(), "sip:al%20ice@[::1]:5060");
        assert_eq!(u.user_unescaped().unwrap(), b"al ice");
        let u = u.with_param("transport", Some("tcp")).with_param("lr", None);
        assert_eq!(u.to_string(), "sip:al%20ice@[::1]:5060;transport=tcp;lr");
        assert_eq!(u, p(&u.to_string()));
        let u = u.without_param("LR").with_port(None);
        assert_eq!(u.to_string(), "sip:al%20ice@[::1];transport=tcp");
    }

    #[test]
    fn rfc3261_19_1_4_equivalence() {
        let eq = |a: &str, b: &str| p(a).equivalent(&p(b));
        // The RFC's examples of equivalent URIs.
        assert!(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
        assert!(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
        assert!(eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
        // And of non-equivalent ones.
        assert!(!eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp;ttl=1"));
        assert!(!eq("sip:bob@biloxi.com", "sips:bob@biloxi.com"));
        assert!(!eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq("sip:carol@chicago.com;newparam=6", "sip:carol@chicago.com;newparam=5"));
        // Escaped NULs are distinct users (RFC 4475 §3.1.1.4).
        assert!(!eq("sip:%00@h.example.com", "sip:%00%00@h.example.com"));
    }
}
