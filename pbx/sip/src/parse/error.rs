//! Why a message was rejected, and the answer to send back.

use crate::build::reply_headers;
use crate::header::HeaderError;
use crate::message::{Headers, Response};
use crate::status::StatusCode;
use crate::uri::UriError;
use bytes::Bytes;
use std::fmt;

/// What was wrong with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty message")]
    Empty,
    #[error("malformed start line")]
    StartLine,
    #[error("invalid method")]
    Method,
    #[error("invalid Request-URI: {0}")]
    RequestUri(UriError),
    #[error("headers in Request-URI")]
    RequestUriHeaders,
    #[error("SIP version not supported")]
    Version,
    #[error("invalid status code")]
    StatusCode,
    #[error("malformed header line")]
    HeaderLine,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("more than one Content-Length")]
    MultipleContentLength,
    #[error("Content-Length larger than body")]
    BodyTooShort,
    #[error("{0}")]
    Header(HeaderError),
    #[error("invalid Call-ID")]
    CallId,
    #[error("invalid Max-Forwards")]
    MaxForwards,
    #[error("CSeq method does not match the request method")]
    CSeqMethod,
}

/// A message that could not be parsed, with what is needed to answer it.
#[derive(Clone)]
pub struct ParseError {
    kind: ParseErrorKind,
    reason: String,
    /// Copied headers of a request that can still be answered.
    reply: Option<Box<Headers>>,
}

impl ParseError {
    pub(super) fn new(kind: ParseErrorKind) -> ParseError {
        let reason = kind.to_string();
        ParseError {
            kind,
            reason,
            reply: None,
        }
    }

    pub(super) fn with_reply(mut self, reply: Option<Box<Headers>>) -> ParseError {
        self.reply = reply;
        self
    }

    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Why, in a few words (goes into the reason phrase).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The status to answer with: 505 for another SIP version, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            // RFC 3261 §8.2.6... §21.5.20: a version we do not support gets 505.
            ParseErrorKind::Version => StatusCode::VERSION_NOT_SUPPORTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The response to send back, when the input was a request whose top Via, From, To,
    /// Call-ID and CSeq could be read. Responses and unreadable requests get `None` (drop).
    pub fn bad_request_response(&self) -> Option<Response> {
        let copied = self.reply.as_deref()?;
        let status = self.status();
        let reason = format!("{} ({})", status.canonical_reason(), self.reason);
        Some(Response {
            status,
            reason: Bytes::from(reason),
            headers: reply_headers(copied, status, None),
            body: Bytes::new(),
        })
    }
}

impl fmt::Debug for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ParseError({:?}, answerable: {})",
            self.kind,
            self.reply.is_some()
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseErrorKind> for ParseError {
    fn from(kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind)
    }
}
