//! Parsing URIs (RFC 3261 §19.1.1 and §25.1, RFC 3966 for tel).

use super::chars::{HEADER, PARAM, PASSWORD, URI_BYTES, USER, check_chars};
use super::error::UriError;
use super::{Host, Scheme, Uri};
use crate::header::params::Params;
use std::ops::Range;

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
        let ok = number
            .bytes()
            .any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
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
}

/// Where `part` (a sub-slice of `base`) sits in `base`.
fn span(base: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    start..start + part.len()
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
