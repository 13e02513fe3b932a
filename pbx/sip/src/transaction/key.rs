//! Matching messages to transactions: RFC 3261 §17.1.3 (responses to client transactions) and
//! §17.2.3 (requests to server transactions), with the RFC 2543 fallback for requests whose
//! branch lacks the magic cookie.

use crate::header::HeaderError;
use crate::message::{Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use crate::uri::Uri;

/// Which side of a transaction the PBX is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// Identifies one transaction. ACK is keyed as the INVITE it acknowledges; CANCEL has its own
/// key, from which [`cancelled_invite`](Self::cancelled_invite) derives the INVITE's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    role: Role,
    id: KeyId,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyId {
    /// RFC 3261 §17.2.3 / §17.1.3: the branch, the sent-by of the top Via (servers only; empty
    /// for clients, whose branches are their own), and the method.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 3261 §17.2.3, for RFC 2543 peers: see [`LegacyKey`].
    Legacy(Box<LegacyKey>),
}

/// The Request-URI, From tag, Call-ID, CSeq number, method and top Via. The To tag counts
/// only outside the INVITE/ACK/CANCEL family: the ACK carries the tag of our response, which
/// the INVITE lacked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LegacyKey {
    request_uri: Uri,
    from_tag: String,
    to_tag: String,
    call_id: String,
    cseq: u32,
    method: Method,
    top_via: String,
}

/// A request that cannot be matched to a transaction (§8.1.1: these headers are mandatory).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the top Via has no branch")]
    NoBranch,
    #[error("missing Call-ID header")]
    CallId,
}

impl KeyError {
    /// The answer to a request that cannot be keyed.
    pub fn status(&self) -> StatusCode {
        match self {
            KeyError::Header(_) | KeyError::NoBranch | KeyError::CallId => StatusCode::BAD_REQUEST,
        }
    }
}

impl TransactionKey {
    /// The server transaction a received request belongs to (§17.2.3).
    pub fn server(request: &Request) -> Result<TransactionKey, KeyError> {
        let via = request.headers.top_via()?;
        // RFC 3261 §17.2.3: ACK matches the INVITE transaction it acknowledges.
        let method = if request.method == Method::ACK {
            Method::INVITE
        } else {
            request.method.clone()
        };
        let id = match via.branch() {
            // RFC 3261 §17.2.3: a branch with the magic cookie, the sent-by and the method.
            Some(branch) if via.has_rfc3261_branch() => KeyId::Branch {
                branch: branch.to_owned(),
                sent_by: via.sent_by().to_ascii_lowercase(),
                method,
            },
            _ => legacy(request, method, via.to_string())?,
        };
        Ok(TransactionKey {
            role: Role::Server,
            id,
        })
    }

    /// The client transaction of a request the PBX sends: its branch and method (§17.1.3).
    pub fn client(request: &Request) -> Result<TransactionKey, KeyError> {
        let via = request.headers.top_via()?;
        let branch = via.branch().ok_or(KeyError::NoBranch)?;
        Ok(TransactionKey::client_key(branch, request.method.clone()))
    }

    /// The client transaction a received response belongs to: the branch of its top Via and
    /// the method of its CSeq (§17.1.3). `None` when either is missing.
    pub fn client_for_response(response: &Response) -> Option<TransactionKey> {
        let via = response.headers.top_via().ok()?;
        let method = response.headers.cseq().ok()?.method;
        Some(TransactionKey::client_key(via.branch()?, method))
    }

    fn client_key(branch: &str, method: Method) -> TransactionKey {
        let id = KeyId::Branch {
            branch: branch.to_owned(),
            sent_by: String::new(),
            method,
        };
        TransactionKey {
            role: Role::Client,
            id,
        }
    }

    /// For a CANCEL's key, the key of the INVITE it cancels: the same but for the method
    /// (§9.2). `None` for other methods.
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        if *self.method() != Method::CANCEL {
            return None;
        }
        let mut invite = self.clone();
        match &mut invite.id {
            KeyId::Branch { method, .. } => *method = Method::INVITE,
            KeyId::Legacy(legacy) => legacy.method = Method::INVITE,
        }
        Some(invite)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this key names a server transaction (one the TU answers).
    pub fn is_server(&self) -> bool {
        self.role == Role::Server
    }

    /// The transaction's method (INVITE for an ACK's key).
    pub fn method(&self) -> &Method {
        match &self.id {
            KeyId::Branch { method, .. } => method,
            KeyId::Legacy(legacy) => &legacy.method,
        }
    }

    /// The branch, for RFC 3261 keys.
    pub fn branch(&self) -> Option<&str> {
        match &self.id {
            KeyId::Branch { branch, .. } => Some(branch),
            KeyId::Legacy(_) => None,
        }
    }
}

/// RFC 3261 §17.2.3: the RFC 2543 matching fields.
fn legacy(request: &Request, method: Method, top_via: String) -> Result<KeyId, KeyError> {
    let headers = &request.headers;
    let cseq = headers.cseq()?.seq;
    let call_id = headers.call_id().ok_or(KeyError::CallId)?.to_owned();
    let from_tag = headers.from()?.tag().unwrap_or_default().to_owned();
    // The INVITE had no To tag, its ACK has ours: within the INVITE family it cannot count.
    let invite_family = method == Method::INVITE || method == Method::CANCEL;
    let to_tag = if invite_family {
        String::new()
    } else {
        headers.to()?.tag().unwrap_or_default().to_owned()
    };
    Ok(KeyId::Legacy(Box::new(LegacyKey {
        request_uri: request.uri.clone(),
        from_tag,
        to_tag,
        call_id,
        cseq,
        method,
        top_via,
    })))
}
