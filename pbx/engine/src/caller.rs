//! Who places a call the engine takes in: an extension that passed digest, or a trunk
//! recognised by its source before any digest step (`trunk::TrunkTable::identify`).

use crate::trunk::{Channel, TrunkPeer};
use pbx_calls::Originator;
use pbx_sip::message::Request;
use pbx_store_types::Credentials;
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

    /// The extension's own public number (`pbx extension set --did`), its caller ID on
    /// trunks; `None` for a trunk's caller or an extension without one.
    pub(crate) fn did(&self) -> Option<String> {
        match self {
            Caller::Extension(ext) => Some(ext.did.clone()).filter(|d| !d.is_empty()),
            Caller::Trunk(..) => None,
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
    ///
    /// An extension's display name is its configured name when it has one (the PBX is the
    /// authority for its extensions' names, whatever the phone put in `From`); a trunk
    /// caller's is the one the trunk presented.
    pub(crate) fn originator(&self, request: &Request) -> Originator {
        let presented = request
            .headers
            .from()
            .ok()
            .and_then(|from| from.display_name.as_deref().and_then(display_name));
        let number = self.number(request);
        match self {
            Caller::Extension(ext) => Originator::Extension {
                number,
                name: display_name(&ext.name).or(presented),
            },
            Caller::Trunk(trunk, _) => Originator::Trunk {
                trunk: trunk.name.clone(),
                number,
                name: presented,
            },
        }
    }

    /// How the caller carries DTMF, when it is a trunk (extensions use RFC 4733).
    pub(crate) fn dtmf(&self) -> Option<pbx_calls::DtmfMode> {
        match self {
            Caller::Extension(_) => None,
            Caller::Trunk(trunk, _) => Some(trunk.dtmf),
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

/// Longest display name passed on, in characters (phones show far fewer).
const MAX_DISPLAY_NAME: usize = 64;

/// A display name fit to pass on: control characters dropped (a CR or LF would split the
/// header), blanks trimmed, at most [`MAX_DISPLAY_NAME`] characters; `None` when nothing is
/// left. Quotes and backslashes stay: the `From` writer escapes them (RFC 3261 §25.1
/// `quoted-pair`).
fn display_name(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DISPLAY_NAME)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_names_are_cleaned() {
        assert_eq!(display_name("  Alice  ").as_deref(), Some("Alice"));
        assert_eq!(display_name("Eve\r\nVia: x").as_deref(), Some("EveVia: x"));
        assert_eq!(display_name(" \t "), None);
        assert_eq!(display_name(&"x".repeat(100)).map(|n| n.len()), Some(64));
        assert_eq!(
            display_name(r#"Bob "the" \ Jr"#).as_deref(),
            Some(r#"Bob "the" \ Jr"#)
        );
    }
}
