//! Typed accessors on [`Headers`]: each parses the stored lines on demand.

use super::contact::Contacts;
use super::cseq::CSeq;
use super::lex::{split_commas, trim_ws};
use super::name_addr::{NameAddr, parse_seconds};
use super::via::Via;
use super::{HeaderError, SyntaxError};
use crate::message::{HeaderName, Headers};

fn invalid(header: &'static str) -> impl Fn(SyntaxError) -> HeaderError {
    move |error| HeaderError::Invalid { header, error }
}

impl Headers {
    /// Every line of `name` as text (errors on non-UTF-8).
    fn lines_str(&self, name: &HeaderName, label: &'static str) -> Result<Vec<&str>, HeaderError> {
        self.iter()
            .filter(|h| h.name == *name)
            .map(|h| std::str::from_utf8(&h.value).map_err(|_| HeaderError::NotUtf8(label)))
            .collect()
    }

    /// The one value of a single-valued header: present once, with no comma list.
    fn single(&self, name: &HeaderName, label: &'static str) -> Result<&str, HeaderError> {
        let mut lines = self.iter().filter(|h| h.name == *name);
        match (lines.next(), lines.next()) {
            (None, _) => Err(HeaderError::Missing(label)),
            (Some(_), Some(_)) => Err(HeaderError::Multiple(label)),
            (Some(one), None) => {
                std::str::from_utf8(&one.value).map_err(|_| HeaderError::NotUtf8(label))
            }
        }
    }

    fn single_name_addr(
        &self,
        name: &HeaderName,
        label: &'static str,
    ) -> Result<NameAddr, HeaderError> {
        let value = self.single(name, label)?;
        if value.contains(',') && split_commas(value).map_err(invalid(label))?.len() != 1 {
            return Err(HeaderError::Multiple(label));
        }
        NameAddr::parse(value).map_err(invalid(label))
    }

    /// Every Via value, top first (lines in order, each split at commas).
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for line in self.lines_str(&HeaderName::VIA, "Via")? {
            for value in split_commas(line).map_err(invalid("Via"))? {
                out.push(Via::parse(value).map_err(invalid("Via"))?);
            }
        }
        Ok(out)
    }

    /// The first Via value.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let line = self
            .iter()
            .find(|h| h.name == HeaderName::VIA)
            .ok_or(HeaderError::Missing("Via"))?;
        let line = std::str::from_utf8(&line.value).map_err(|_| HeaderError::NotUtf8("Via"))?;
        let parts = split_commas(line).map_err(invalid("Via"))?;
        let top = parts.first().ok_or(HeaderError::Missing("Via"))?;
        Via::parse(top).map_err(invalid("Via"))
    }

    /// Call-ID, when present exactly once.
    pub fn call_id(&self) -> Option<&str> {
        self.single(&HeaderName::CALL_ID, "Call-ID").ok()
    }

    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.single(&HeaderName::CSEQ, "CSeq")?).map_err(invalid("CSeq"))
    }

    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        self.single_name_addr(&HeaderName::FROM, "From")
    }

    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        self.single_name_addr(&HeaderName::TO, "To")
    }

    /// All Contact values; no Contact header gives an empty list.
    pub fn contacts(&self) -> Result<Contacts, HeaderError> {
        let lines = self.lines_str(&HeaderName::CONTACT, "Contact")?;
        Contacts::parse_lines(lines).map_err(invalid("Contact"))
    }

    /// Expires in seconds (saturating at `u32::MAX`); `None` when absent or malformed
    /// (RFC 3261 §20.19 lets a malformed value be treated as absent).
    pub fn expires(&self) -> Option<u32> {
        parse_seconds(trim_ws(self.single(&HeaderName::EXPIRES, "Expires").ok()?))
    }

    /// Max-Forwards (saturating); `None` when absent or malformed.
    pub fn max_forwards(&self) -> Option<u32> {
        parse_seconds(trim_ws(
            self.single(&HeaderName::MAX_FORWARDS, "Max-Forwards")
                .ok()?,
        ))
    }

    /// Content-Length; `None` when absent, repeated or malformed.
    pub fn content_length(&self) -> Option<usize> {
        let v = trim_ws(
            self.single(&HeaderName::CONTENT_LENGTH, "Content-Length")
                .ok()?,
        );
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;

    fn headers(lines: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.push(HeaderName::from_static(n), *v);
        }
        h
    }

    #[test]
    fn reads_typed_values() {
        let h = headers(&[
            (
                "v",
                "SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example;branch=z9hG4bK2",
            ),
            ("Via", "SIP/2.0/TLS c.example:5061;branch=z9hG4bK3"),
            ("f", "<sip:alice@example.com>;tag=1"),
            ("To", "sip:bob@example.com"),
            ("i", "abc@host"),
            ("CSeq", "7 REGISTER"),
            ("m", "<sip:a@1.2.3.4>;expires=30, <sip:b@1.2.3.4>"),
            ("Expires", "3600"),
            ("Max-Forwards", "70"),
            ("l", "0"),
        ]);
        let vias = h.vias().unwrap();
        assert_eq!(
            vias.iter()
                .map(|v| v.transport.as_str())
                .collect::<Vec<_>>(),
            ["UDP", "TCP", "TLS"]
        );
        assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(h.from().unwrap().tag(), Some("1"));
        assert_eq!(h.to().unwrap().tag(), None);
        assert_eq!(h.call_id(), Some("abc@host"));
        assert_eq!(h.cseq().unwrap(), CSeq::new(7, Method::REGISTER));
        assert_eq!(h.contacts().unwrap().addresses().len(), 2);
        assert_eq!(h.expires(), Some(3600));
        assert_eq!(h.max_forwards(), Some(70));
        assert_eq!(h.content_length(), Some(0));
    }

    #[test]
    fn says_which_header_and_why() {
        let h = headers(&[
            ("From", "sip:a@b;tag=1"),
            ("From", "sip:c@d"),
            ("CSeq", "x INVITE"),
        ]);
        assert_eq!(h.from(), Err(HeaderError::Multiple("From")));
        assert_eq!(h.to(), Err(HeaderError::Missing("To")));
        let err = h.cseq().unwrap_err();
        assert_eq!(err.header(), "CSeq");
        assert!(err.to_string().contains("CSeq"));
        assert!(h.top_via().is_err());
        assert_eq!(h.call_id(), None);
        assert_eq!(h.content_length(), None);
        let h = headers(&[("To", "\"Watson, T\" <sip:t@w>, <sip:x@y>")]);
        assert_eq!(h.to(), Err(HeaderError::Multiple("To")));
    }
}
