//! Trunks seen from the engine: the table that says whether an INVITE is a trunk's inbound
//! call ([`TrunkTable::identify`]), and the UAC REGISTER machine for trunks the PBX
//! registers to ([`register`]).
//!
//! A trunk's call is recognised before any digest step (issue 15, part 3), and only by what
//! a caller cannot choose: the source address must be in the trunk's `allow` networks, or
//! be one of the addresses of a registering trunk's host (from the shell's DNS look-up) with
//! the Request-URI or `To` user being the user name the PBX registered with (RFC 3261
//! §10.2.1: the provider sends calls to the registered Contact). Anything else is challenged
//! as an extension would be, so no one reaches a trunk's context by naming it.

pub(crate) mod inbound;
pub mod locate;
pub(crate) mod outbound;
pub mod ping;
pub mod register;
#[cfg(test)]
mod register_tests;
pub mod task;
#[cfg(test)]
mod task_tests;

use crate::security::acl::canonical;
use ipnet::IpNet;
use pbx_sip::message::Request;
use std::collections::HashMap;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

/// What the engine knows of one trunk (the shell loads it from the store).
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkPeer {
    pub name: String,
    /// The dialplan context its inbound calls start in.
    pub context: String,
    /// Networks whose INVITEs are this trunk's calls without digest.
    pub allowed_networks: Vec<IpNet>,
    /// The user name the PBX registers with, when it registers to this trunk.
    pub registered_user: Option<String>,
    /// The addresses the trunk's host resolved to (where its calls on the registration
    /// come from).
    pub addresses: Vec<IpAddr>,
    /// `required`, `optional` or `off`: SRTP on its calls.
    pub media_encryption: String,
    /// Calls at once through the trunk; 0: no limit.
    pub channels: u32,
    /// How calls go out through it.
    pub outbound: Outbound,
    /// How it carries DTMF (the PBX converts when the other leg differs).
    pub dtmf: pbx_calls::DtmfMode,
}

// Hand-written so that the trunk's password never reaches a log through `{:?}`.
impl std::fmt::Debug for TrunkPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkPeer")
            .field("name", &self.name)
            .field("context", &self.context)
            .field("addresses", &self.addresses)
            .field("channels", &self.channels)
            .field("targets", &self.outbound.targets)
            .finish_non_exhaustive()
    }
}

/// Where and how the PBX sends a call to the trunk (the shell resolves the addresses).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Outbound {
    /// The trunk's host (a name or an address) and port as configured: the Request-URI's,
    /// `To`'s and `From`'s host part.
    pub host: String,
    pub port: Option<u16>,
    /// The addresses INVITEs go to (the outbound proxy's when there is one), in the order to
    /// try them (RFC 3263 §4.3), each with the PBX's own UDP listener toward it; none: not
    /// resolved (calls through it fail over).
    pub targets: Vec<(SocketAddr, SocketAddr)>,
    /// `host[:port]` of the outbound proxy: a `Route` to it (RFC 3261 §8.1.2, loose routing).
    pub proxy: Option<String>,
    pub transport: crate::peer::TransportKind,
    pub username: String,
    pub password: String,
    /// `extension`, `trunk` or `anonymous`.
    pub caller_id_mode: String,
    /// The trunk's default number.
    pub caller_id: String,
    /// Codec names in preference order; empty: any.
    pub codecs: Vec<String>,
    /// No provisional response within this time: the next trunk.
    pub setup_timeout: std::time::Duration,
}

/// The trunks, shared by every shard; replaced whole when the shell reloads them.
#[derive(Default)]
pub struct TrunkTable {
    trunks: RwLock<Arc<Vec<Arc<TrunkPeer>>>>,
    /// Calls in progress per trunk, across shards (kept over reloads).
    in_use: Arc<Mutex<HashMap<String, u32>>>,
    /// Trunks the shell found down (OPTIONS unanswered, registration unanswered): calls
    /// skip them at once (kept over reloads).
    down: RwLock<HashSet<String>>,
}

/// One of a trunk's channels, held by a call: given back when the call is dropped (also
/// when its shard fails and is replaced).
#[derive(Debug)]
pub struct Channel {
    in_use: Arc<Mutex<HashMap<String, u32>>>,
    trunk: String,
}

impl Drop for Channel {
    fn drop(&mut self) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = in_use.get_mut(&self.trunk) {
            *n = n.saturating_sub(1);
            metrics::gauge!("pbx_trunk_channels_in_use", "trunk" => self.trunk.clone())
                .set(f64::from(*n));
        }
    }
}

impl TrunkTable {
    pub fn new(trunks: Vec<TrunkPeer>) -> TrunkTable {
        let table = TrunkTable::default();
        table.replace(trunks);
        table
    }

    /// Replaces every trunk (a reload from the store).
    pub fn replace(&self, trunks: Vec<TrunkPeer>) {
        let trunks = Arc::new(trunks.into_iter().map(Arc::new).collect());
        *self.trunks.write().unwrap_or_else(|e| e.into_inner()) = trunks;
    }

    fn snapshot(&self) -> Arc<Vec<Arc<TrunkPeer>>> {
        self.trunks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A channel of `trunk` for a new call; `None` when its `channels` are all in use.
    pub fn seize(&self, trunk: &TrunkPeer) -> Option<Channel> {
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        let n = in_use.entry(trunk.name.clone()).or_insert(0);
        if trunk.channels > 0 && *n >= trunk.channels {
            return None;
        }
        *n += 1;
        metrics::gauge!("pbx_trunk_channels_in_use", "trunk" => trunk.name.clone())
            .set(f64::from(*n));
        Some(Channel {
            in_use: self.in_use.clone(),
            trunk: trunk.name.clone(),
        })
    }

    /// The trunk called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<TrunkPeer>> {
        self.snapshot().iter().find(|t| t.name == name).cloned()
    }

    /// The shell's word on whether trunk `name` answers.
    pub fn set_up(&self, name: &str, up: bool) {
        let mut down = self.down.write().unwrap_or_else(|e| e.into_inner());
        if up {
            down.remove(name);
        } else {
            down.insert(name.to_string());
        }
    }

    /// Whether trunk `name` was found down.
    pub fn is_down(&self, name: &str) -> bool {
        self.down
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// Calls in progress through trunk `name`.
    pub fn in_use(&self, name: &str) -> u32 {
        let in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        in_use.get(name).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trunk an out-of-dialog INVITE from `source` belongs to, if any: the most specific
    /// `allow` network containing the source (ties: the first trunk by name), else a
    /// registering trunk whose host has this address and whose user name the Request-URI or
    /// `To` names.
    pub fn identify(&self, source: IpAddr, request: &Request) -> Option<Arc<TrunkPeer>> {
        let source = canonical(source);
        let trunks = self.snapshot();
        let by_network = trunks
            .iter()
            .filter_map(|t| {
                t.allowed_networks
                    .iter()
                    .filter(|n| n.contains(&source))
                    .map(IpNet::prefix_len)
                    .max()
                    .map(|len| (len, t))
            })
            // `max_by_key` keeps the last of equals: iterate in reverse so the first wins.
            .rev()
            .max_by_key(|(len, _)| *len)
            .map(|(_, t)| t.clone());
        if by_network.is_some() {
            return by_network;
        }
        let ruri_user = request.uri.user();
        let to = request.headers.to().ok();
        let to_user = to.as_ref().and_then(|to| to.uri.user());
        trunks
            .iter()
            .find(|t| {
                t.registered_user.as_deref().is_some_and(|user| {
                    t.addresses.iter().any(|a| canonical(*a) == source)
                        && (ruri_user == Some(user) || to_user == Some(user))
                })
            })
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pbx_sip::message::Message;

    fn invite(ruri: &str, to: &str) -> Request {
        let text = format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
             From: <sip:+4930555@carrier>;tag=a\r\nTo: <{to}>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        match pbx_sip::parse::parse_message(Bytes::from(text)) {
            Ok(Message::Request(r)) => r,
            _ => panic!("bad test request"),
        }
    }

    fn trunk(name: &str, nets: &[&str]) -> TrunkPeer {
        TrunkPeer {
            name: name.into(),
            context: format!("from-{name}"),
            allowed_networks: nets.iter().filter_map(|n| n.parse().ok()).collect(),
            registered_user: None,
            addresses: Vec::new(),
            media_encryption: "optional".into(),
            channels: 0,
            dtmf: Default::default(),
            outbound: Outbound::default(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn named(found: Option<Arc<TrunkPeer>>) -> Option<String> {
        found.map(|t| t.name.clone())
    }

    #[test]
    fn by_the_most_specific_network() {
        let table = TrunkTable::new(vec![
            trunk("gateway", &["10.0.0.0/8"]),
            trunk("legacy", &["10.1.2.0/24"]),
            trunk("other", &["10.0.0.0/8"]),
        ]);
        let call = invite("sip:2000@pbx.test", "sip:2000@pbx.test");
        assert_eq!(
            named(table.identify(ip("10.1.2.3"), &call)),
            Some("legacy".into())
        );
        assert_eq!(
            named(table.identify(ip("10.9.9.9"), &call)),
            Some("gateway".into())
        );
        // An IPv4-mapped source (dual-stack socket) is its IPv4 address.
        assert_eq!(
            named(table.identify(ip("::ffff:10.1.2.3"), &call)),
            Some("legacy".into())
        );
        assert_eq!(table.identify(ip("192.0.2.1"), &call), None);
    }

    #[test]
    fn by_registration_only_from_the_trunks_own_address() {
        let mut provider = trunk("provider", &[]);
        provider.registered_user = Some("acct42".into());
        provider.addresses = vec![ip("203.0.113.5")];
        let table = TrunkTable::new(vec![provider]);
        let to_contact = invite("sip:acct42@192.0.2.10:5060", "sip:+4930123@pbx.test");
        let to_aor = invite("sip:+4930123@pbx.test", "sip:acct42@provider.test");
        let other = invite("sip:1001@pbx.test", "sip:1001@pbx.test");
        let from = ip("203.0.113.5");
        assert_eq!(
            named(table.identify(from, &to_contact)),
            Some("provider".into())
        );
        assert_eq!(
            named(table.identify(from, &to_aor)),
            Some("provider".into())
        );
        assert_eq!(table.identify(from, &other), None);
        // The user name from anywhere else is no trunk call: it is challenged.
        assert_eq!(table.identify(ip("198.51.100.66"), &to_contact), None);
    }

    #[test]
    fn channels_are_limited_and_given_back() {
        let mut legacy = trunk("legacy", &["10.0.0.0/8"]);
        legacy.channels = 2;
        let table = TrunkTable::new(vec![legacy.clone()]);
        let a = table.seize(&legacy);
        let b = table.seize(&legacy);
        assert!(a.is_some() && b.is_some());
        assert!(table.seize(&legacy).is_none());
        assert_eq!(table.in_use("legacy"), 2);
        drop(a);
        assert_eq!(table.in_use("legacy"), 1);
        assert!(table.seize(&legacy).is_some());
        // No limit: always.
        let open = trunk("open", &[]);
        let held: Vec<_> = (0..100).filter_map(|_| table.seize(&open)).collect();
        assert_eq!(held.len(), 100);
    }

    #[test]
    fn replaced_whole() {
        let table = TrunkTable::new(vec![trunk("a", &["10.0.0.0/8"])]);
        assert_eq!(table.len(), 1);
        table.replace(Vec::new());
        assert!(table.is_empty());
        let call = invite("sip:1@x", "sip:1@x");
        assert_eq!(table.identify(ip("10.0.0.1"), &call), None);
    }
}
