//! Who places a call the engine takes in: an extension that passed digest, or a trunk
//! recognised by its source before any digest step (`trunk::TrunkTable::identify`).

use crate::trunk::{Channel, TrunkPeer};
use pbx_calls::Originator;
use pbx_sip::message::Request;
use pbx_store::Credentials;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) enum Caller {
    Extension(Arc<Credentials>),
    /// A trunk's call, holding one of its channels for as long as the call lives.
    Trunk(Arc<TrunkPeer>, Channel),
}

impl Caller {
    /// The caller's number: the extension's, or the number the trunk presented in `From`.
    pub(crate) fn number(&self, request: &Request) -> String {
        match self {
            Caller::Extension(ext) => ext.number.clone(),
            Caller::Trunk(..) => request
                .headers
                .from()
                .ok()
                .and_then(|from| from.uri.user().map(str::to_string))
                .filter(|user| !user.is_empty())
                .unwrap_or_else(|| "anonymous".to_string()),
        }
    }

    /// The number dialed: the Request-URI's user, except on a call a provider sends to the
    /// PBX's registered Contact (RFC 3261 §10.2.1: the Request-URI is then that Contact, the
    /// registered user name), where the number called is the `To` user (the DID).
    pub(crate) fn called(&self, request: &Request) -> String {
        let ruri_user = request.uri.user().unwrap_or_default();
        match self {
            Caller::Trunk(trunk, _) if trunk.registered_user.as_deref() == Some(ruri_user) => {
                request
                    .headers
                    .to()
                    .ok()
                    .and_then(|to| to.uri.user().map(str::to_string))
                    .filter(|user| user != ruri_user)
                    .unwrap_or_else(|| ruri_user.to_string())
            }
            _ => ruri_user.to_string(),
        }
    }

    /// The dialplan context the call starts in, when the caller names one: `pbx extension
    /// set --context` overrides the plan's `members`; a trunk's calls start in its context.
    pub(crate) fn context(&self) -> Option<String> {
        match self {
            Caller::Extension(ext) => Some(ext.context.clone()).filter(|c| !c.is_empty()),
            Caller::Trunk(trunk, _) => Some(trunk.context.clone()),
        }
    }

    /// The SRTP policy of the caller's leg.
    pub(crate) fn media_encryption(&self) -> String {
        match self {
            Caller::Extension(ext) => ext.media_encryption.clone(),
            Caller::Trunk(trunk, _) => trunk.media_encryption.clone(),
        }
    }

    /// The party the call shows to the devices it rings and writes in the CDR.
    pub(crate) fn originator(&self, request: &Request) -> Originator {
        let name = request
            .headers
            .from()
            .ok()
            .and_then(|from| from.display_name.clone());
        let number = self.number(request);
        match self {
            Caller::Extension(_) => Originator::Extension { number, name },
            Caller::Trunk(trunk, _) => Originator::Trunk {
                trunk: trunk.name.clone(),
                number,
                name,
            },
        }
    }

    /// The trunk channel the call holds, if any (kept by the call until it ends).
    pub(crate) fn into_channel(self) -> Option<Channel> {
        match self {
            Caller::Extension(_) => None,
            Caller::Trunk(_, channel) => Some(channel),
        }
    }

    /// The trunk's name, for the log.
    pub(crate) fn trunk(&self) -> Option<&str> {
        match self {
            Caller::Extension(_) => None,
            Caller::Trunk(trunk, _) => Some(&trunk.name),
        }
    }
}
