//! The `auth-param` list shared by challenges and credentials (RFC 3261 §25.1, §22.4;
//! RFC 7616 §3.3): `name=token` or `name="quoted string"`, comma separated, with linear
//! white space around the separators.

/// One `name=value` pair; `value` has its quoting and escapes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub name: &'a str,
    pub value: String,
    pub quoted: bool,
}

/// Why an auth-param list could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamSyntax {
    ExpectedName,
    ExpectedEquals,
    ExpectedValue,
    UnterminatedQuote,
    ExpectedComma,
}

impl ParamSyntax {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ParamSyntax::ExpectedName => "expected a parameter name",
            ParamSyntax::ExpectedEquals => "expected '=' after a parameter name",
            ParamSyntax::ExpectedValue => "expected a parameter value",
            ParamSyntax::UnterminatedQuote => "unterminated quoted string",
            ParamSyntax::ExpectedComma => "expected ',' between parameters",
        }
    }
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits `Scheme rest` and returns the scheme and the rest (leading white space removed).
pub(crate) fn split_scheme(value: &str) -> (&str, &str) {
    let value = value.trim_start_matches(is_lws);
    let end = value
        .find(|c: char| !is_token_char(c))
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(end);
    (scheme, rest.trim_start_matches(is_lws))
}

/// Reads a comma-separated auth-param list. Empty list elements (`a=1,,b=2`) are tolerated, as
/// RFC 7230 §7 list syntax allows.
pub(crate) fn parse_params(input: &str) -> Result<Vec<Param<'_>>, ParamSyntax> {
    let mut params = Vec::new();
    let mut rest = input;
    loop {
        rest = rest.trim_start_matches(|c: char| is_lws(c) || c == ',');
        if rest.is_empty() {
            return Ok(params);
        }
        let name_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        if name_end == 0 {
            return Err(ParamSyntax::ExpectedName);
        }
        let (name, after) = rest.split_at(name_end);
        let after = after.trim_start_matches(is_lws);
        let after = after.strip_prefix('=').ok_or(ParamSyntax::ExpectedEquals)?;
        let after = after.trim_start_matches(is_lws);
        let (value, quoted, after) = if let Some(body) = after.strip_prefix('"') {
            let (value, after) = read_quoted(body)?;
            (value, true, after)
        } else {
            let end = after
                .find(|c: char| !is_token_char(c))
                .unwrap_or(after.len());
            if end == 0 {
                return Err(ParamSyntax::ExpectedValue);
            }
            let (token, after) = after.split_at(end);
            (token.to_owned(), false, after)
        };
        params.push(Param {
            name,
            value,
            quoted,
        });
        rest = after.trim_start_matches(is_lws);
        if !rest.is_empty() && !rest.starts_with(',') {
            return Err(ParamSyntax::ExpectedComma);
        }
    }
}

/// Reads the body of a quoted string (after the opening quote); RFC 3261 §25.1 `quoted-pair`
/// escapes any character with a backslash. Returns the unescaped text and what follows.
fn read_quoted(body: &str) -> Result<(String, &str), ParamSyntax> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, body.get(i + 1..).unwrap_or(""))),
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => return Err(ParamSyntax::UnterminatedQuote),
            },
            _ => out.push(c),
        }
    }
    Err(ParamSyntax::UnterminatedQuote)
}

/// Quoting is the same as in any header (RFC 3261 §25.1 `quoted-string`).
pub(crate) use crate::header::lex::quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tokens_and_quoted_strings_with_escapes() {
        let params = parse_params("a=tok , b=\"x, \\\"y\\\" \\\\z\",\r\n c = \"\" ,,d=1").unwrap();
        let got: Vec<(&str, &str, bool)> = params
            .iter()
            .map(|p| (p.name, p.value.as_str(), p.quoted))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", "tok", false),
                ("b", "x, \"y\" \\z", true),
                ("c", "", true),
                ("d", "1", false)
            ]
        );
    }

    #[test]
    fn rejects_broken_lists() {
        assert_eq!(
            parse_params("a=\"open"),
            Err(ParamSyntax::UnterminatedQuote)
        );
        assert_eq!(parse_params("a=\"x\\"), Err(ParamSyntax::UnterminatedQuote));
        assert_eq!(parse_params("a"), Err(ParamSyntax::ExpectedEquals));
        assert_eq!(parse_params("a="), Err(ParamSyntax::ExpectedValue));
        assert_eq!(parse_params("=b"), Err(ParamSyntax::ExpectedName));
        assert_eq!(parse_params("a=b c=d"), Err(ParamSyntax::ExpectedComma));
    }

    #[test]
    fn quote_round_trips() {
        let text = "we\"ird\\realm";
        let rendered = format!("r={}", quote(text));
        assert_eq!(parse_params(&rendered).unwrap()[0].value, text);
    }

    #[test]
    fn splits_the_scheme() {
        assert_eq!(split_scheme("  Digest  a=b"), ("Digest", "a=b"));
        assert_eq!(split_scheme("Digest"), ("Digest", ""));
    }
}
