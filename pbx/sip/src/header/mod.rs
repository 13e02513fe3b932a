//! Typed views of the headers the PBX reads. Each view parses a header value (already
//! unfolded by the parser) and writes it back with `Display`; the raw lines stay in
//! [`crate::message::Headers`] untouched.

mod access;
mod contact;
mod cseq;
mod error;
pub(crate) mod lex;
mod name_addr;
pub(crate) mod params;
mod via;

pub use contact::Contacts;
pub use cseq::CSeq;
pub use error::SyntaxError;
pub use name_addr::NameAddr;
pub use params::Params;
pub use via::Via;

pub(crate) use lex::split_commas;

/// A typed header accessor failed: which header, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("more than one {0} value")]
    Multiple(&'static str),
    #[error("{0} header is not UTF-8")]
    NotUtf8(&'static str),
    #[error("invalid {header} header: {error}")]
    Invalid {
        header: &'static str,
        #[source]
        error: SyntaxError,
    },
}

impl HeaderError {
    /// The header concerned.
    pub fn header(&self) -> &'static str {
        match self {
            HeaderError::Missing(h) | HeaderError::Multiple(h) | HeaderError::NotUtf8(h) => h,
            HeaderError::Invalid { header, .. } => header,
        }
    }
}
