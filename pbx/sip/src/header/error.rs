//! Why a header value did not parse.

use crate::uri::error::UriError;

/// Why a header value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("{0}")]
    Bad(&'static str),
    #[error("invalid URI: {0}")]
    Uri(#[from] UriError),
}
