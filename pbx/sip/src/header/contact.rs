//! `Contact: *` or a list of addresses (RFC 3261 §20.10).

use super::SyntaxError;
use super::lex::split_commas;
use super::name_addr::NameAddr;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *`, only meaningful in a REGISTER removing every binding (RFC 3261 §10.2.2).
    Star,
    List(Vec<NameAddr>),
}

impl Contacts {
    /// Parses every Contact line's value, in order; an absent header gives an empty list.
    pub fn parse_lines<'a>(
        lines: impl IntoIterator<Item = &'a str>,
    ) -> Result<Contacts, SyntaxError> {
        let mut list = Vec::new();
        let mut star = false;
        for line in lines {
            for value in split_commas(line)? {
                if value == "*" {
                    star = true;
                } else {
                    list.push(NameAddr::parse(value)?);
                }
            }
        }
        match (star, list.is_empty()) {
            (false, _) => Ok(Contacts::List(list)),
            (true, true) => Ok(Contacts::Star),
            // RFC 3261 §10.2.2: "*" must be the only Contact value.
            (true, false) => Err(SyntaxError::Bad("* mixed with other Contact values")),
        }
    }

    pub fn is_star(&self) -> bool {
        matches!(self, Contacts::Star)
    }

    /// The addresses (empty for `*`).
    pub fn addresses(&self) -> &[NameAddr] {
        match self {
            Contacts::Star => &[],
            Contacts::List(l) => l,
        }
    }
}

impl fmt::Display for Contacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contacts::Star => f.write_str("*"),
            Contacts::List(list) => {
                for (i, c) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_outside_quotes() {
        let c = Contacts::parse_lines([
            r#""Bob, Jr." <sip:bob@a.example;x=1>;q=0.5, sip:b2@b.example"#,
            "<sip:b3@c.example>;expires=60",
        ])
        .unwrap();
        let list = c.addresses();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].display_name.as_deref(), Some("Bob, Jr."));
        assert_eq!(list[0].q_millis(), Some(500));
        assert_eq!(list[2].expires(), Some(60));
        assert_eq!(
            c.to_string(),
            r#""Bob, Jr." <sip:bob@a.example;x=1>;q=0.5, <sip:b2@b.example>, <sip:b3@c.example>;expires=60"#
        );
    }

    #[test]
    fn star() {
        assert_eq!(Contacts::parse_lines(["*"]).unwrap(), Contacts::Star);
        assert!(Contacts::parse_lines(["*, <sip:a@b>"]).is_err());
        assert_eq!(Contacts::parse_lines([]).unwrap(), Contacts::List(vec![]));
    }
}
