//! What digest authentication keeps about a request: what it is for, and the request itself
//! while the store looks its user up (data only: `auth.rs` decides).

use crate::peer::Peer;
use crate::security::Ticket;
use pbx_sip::auth::{ChallengeKind, Credentials};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::transaction::TransactionKey;

/// What the authenticated request goes on to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Register,
    Invite,
    /// A new message-waiting subscription: the PBX is its notifier (a UAS), so 401.
    Subscribe,
}

impl Purpose {
    pub(crate) fn kind(self) -> ChallengeKind {
        match self {
            Purpose::Register | Purpose::Subscribe => ChallengeKind::Www,
            Purpose::Invite => ChallengeKind::Proxy,
        }
    }

    pub(crate) fn credentials_header(self) -> HeaderName {
        match self {
            Purpose::Register | Purpose::Subscribe => HeaderName::AUTHORIZATION,
            Purpose::Invite => HeaderName::PROXY_AUTHORIZATION,
        }
    }

    pub(crate) fn challenge_header(self) -> HeaderName {
        match self {
            Purpose::Register | Purpose::Subscribe => HeaderName::WWW_AUTHENTICATE,
            Purpose::Invite => HeaderName::PROXY_AUTHENTICATE,
        }
    }
}

/// A request waiting for its extension's credentials from the store.
pub(crate) struct Pending {
    pub(crate) key: TransactionKey,
    pub(crate) request: Request,
    pub(crate) peer: Peer,
    pub(crate) credentials: Credentials,
    pub(crate) ticket: Ticket,
    pub(crate) purpose: Purpose,
}
