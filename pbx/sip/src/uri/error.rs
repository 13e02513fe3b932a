//! Why a URI did not parse.

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
