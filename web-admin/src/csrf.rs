//! Anti-CSRF: every form carries a `csrf` field that must equal the session's token (or, on
//! the login form, the login cookie). SameSite=Strict cookies already stop most cross-site
//! posts; the token also covers browsers that ignore SameSite.

use subtle_eq::ct_eq;

use crate::errors::PageError;

/// Checks a posted token against the expected one.
pub fn check(expected: &str, posted: Option<&str>) -> Result<(), PageError> {
    match posted {
        Some(p) if !expected.is_empty() && ct_eq(expected.as_bytes(), p.as_bytes()) => Ok(()),
        _ => Err(PageError::Csrf),
    }
}

mod subtle_eq {
    /// Constant-time equality for equal lengths (the length of a token is no secret).
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_wrong_and_empty() {
        assert!(check("abc", Some("abc")).is_ok());
        assert!(check("abc", Some("abd")).is_err());
        assert!(check("abc", Some("ab")).is_err());
        assert!(check("abc", None).is_err());
        assert!(check("", Some("")).is_err());
    }
}
