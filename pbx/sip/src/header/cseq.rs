//! `CSeq: 1*DIGIT LWS Method` (RFC 3261 §20.16).

use super::SyntaxError;
use super::lex::{Lexer, is_token_byte};
use crate::method::Method;
use bytes::Bytes;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn new(seq: u32, method: Method) -> CSeq {
        CSeq { seq, method }
    }

    pub fn parse(s: &str) -> Result<CSeq, SyntaxError> {
        let mut lx = Lexer::new(s);
        lx.skip_ws();
        let digits = lx.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(SyntaxError::Bad("sequence number expected"));
        }
        // RFC 3261 §8.1.1.5: the number MUST be expressible as a 32-bit unsigned integer.
        let seq = digits
            .parse::<u32>()
            .map_err(|_| SyntaxError::Bad("sequence number too large"))?;
        if !lx.skip_ws() {
            return Err(SyntaxError::Bad(
                "white space expected after sequence number",
            ));
        }
        let method = lx.take_while(is_token_byte);
        if method.is_empty() {
            return Err(SyntaxError::Bad("method expected"));
        }
        lx.skip_ws();
        if !lx.at_end() {
            return Err(SyntaxError::Bad("unexpected text after method"));
        }
        Ok(CSeq {
            seq,
            method: Method::from_bytes(Bytes::copy_from_slice(method.as_bytes())),
        })
    }
}

impl FromStr for CSeq {
    type Err = SyntaxError;
    fn from_str(s: &str) -> Result<CSeq, SyntaxError> {
        CSeq::parse(s)
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes() {
        let c = CSeq::parse("0009 \t INVITE").unwrap();
        assert_eq!(c, CSeq::new(9, Method::INVITE));
        assert_eq!(c.to_string(), "9 INVITE");
        assert_eq!(
            CSeq::parse("4294967295 RE%47IST%45R")
                .unwrap()
                .method
                .as_str(),
            "RE%47IST%45R"
        );
        for bad in [
            "",
            "INVITE",
            "1",
            "1INVITE",
            "36893488147419103232 REGISTER",
            "1 INVITE x",
            "-1 BYE",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad:?}");
        }
    }
}
