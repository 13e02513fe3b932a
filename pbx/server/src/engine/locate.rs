//! The DNS side of locating a trunk (RFC 3263): asks the look-ups the sans-IO
//! [`Locate`] wants through `hickory-resolver` (NAPTR, SRV, A/AAAA), with the system's
//! resolv.conf or the `[dns] nameservers` of the config, and returns the ordered targets
//! with how long they hold (the records' smallest TTL, within bounds).

use hickory_resolver::config::{NameServerConfig, NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Name, TokioResolver};
use pbx_engine::peer::TransportKind;
use pbx_engine::trunk::locate::{Answer, Locate, Naptr, Query, Srv, Target};
use rand::Rng;
use std::net::SocketAddr;
use std::time::Duration;

/// An answer is asked again after at least this long (a TTL of 0 would ask at every call).
const MIN_HOLD: Duration = Duration::from_secs(10);
/// ... and at most this long, whatever the TTL.
const MAX_HOLD: Duration = Duration::from_secs(3600);
/// How long an answer without any record holds (nothing found: ask again soon).
const EMPTY_HOLD: Duration = Duration::from_secs(30);

/// The resolver the trunks share.
pub struct Locator {
    resolver: TokioResolver,
}

/// Where a host's requests go, and until when that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub targets: Vec<Target>,
    pub hold: Duration,
}

impl Locator {
    /// A resolver asking `nameservers` (UDP, then TCP for truncated answers), or the
    /// system's when the list is empty. A system without a readable resolv.conf asks
    /// 127.0.0.1:53 (logged): names may then fail to resolve; IP-address trunks still work.
    pub fn new(nameservers: &[SocketAddr]) -> Locator {
        let explicit = |servers: &[SocketAddr]| {
            let mut group = NameServerConfigGroup::new();
            for ns in servers {
                group.push(NameServerConfig::new(*ns, Protocol::Udp));
                group.push(NameServerConfig::new(*ns, Protocol::Tcp));
            }
            let config = ResolverConfig::from_parts(None, Vec::new(), group);
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        let builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().unwrap_or_else(|error| {
                tracing::warn!(%error, "no system DNS configuration: trunks' names are resolved through 127.0.0.1:53");
                explicit(&[SocketAddr::from(([127, 0, 0, 1], 53))])
            })
        } else {
            explicit(nameservers)
        };
        Locator {
            resolver: builder.build(),
        }
    }

    /// The targets of `host` (a name or an address) with the URI's `port`, for the
    /// transports allowed (RFC 3263 §4).
    pub async fn locate(
        &self,
        host: &str,
        port: Option<u16>,
        allowed: &[TransportKind],
    ) -> Located {
        let mut locate = Locate::new(host, port, allowed);
        while let Some(query) = locate.poll_query() {
            let answer = self.ask(&query).await;
            let mut rng = rand::rng();
            // RFC 2782: a uniform random number in 0..=sum.
            locate.handle_answer(answer, &mut |sum| rng.random_range(0..=sum));
        }
        let hold = match locate.ttl() {
            Some(ttl) => ttl.clamp(MIN_HOLD, MAX_HOLD),
            None if host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok() =>
            {
                MAX_HOLD
            }
            None => EMPTY_HOLD,
        };
        Located {
            targets: locate.targets(),
            hold,
        }
    }

    async fn ask(&self, query: &Query) -> Answer {
        let (name, kind) = match query {
            Query::Naptr(n) => (n, RecordType::NAPTR),
            Query::Srv(n) => (n, RecordType::SRV),
            Query::Address(n) => (n, RecordType::A),
        };
        // Absolute: no search domains appended to a provider's name.
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')));
        let Ok(fqdn) = fqdn else {
            tracing::debug!(%name, "not a DNS name");
            return empty(query);
        };
        if kind == RecordType::A {
            return match self.resolver.lookup_ip(fqdn).await {
                Ok(found) => {
                    let ttl = found.as_lookup().record_iter().map(|r| r.ttl()).min();
                    Answer::Address(found.iter().collect(), ttl)
                }
                Err(error) => {
                    tracing::debug!(%name, %error, "no address");
                    empty(query)
                }
            };
        }
        let found = match self.resolver.lookup(fqdn, kind).await {
            Ok(found) => found,
            Err(error) => {
                tracing::debug!(%name, %error, ?kind, "no records");
                return empty(query);
            }
        };
        let ttl = found.record_iter().map(|r| r.ttl()).min();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match kind {
            RecordType::NAPTR => Answer::Naptr(
                found
                    .record_iter()
                    .filter_map(|r| match r.data() {
                        RData::NAPTR(n) => Some(Naptr {
                            order: n.order(),
                            preference: n.preference(),
                            flags: text(n.flags()),
                            services: text(n.services()),
                            replacement: n.replacement().to_ascii(),
                        }),
                        _ => None,
                    })
                    .collect(),
                ttl,
            ),
            _ => Answer::Srv(
                found
                    .record_iter()
                    .filter_map(|r| match r.data() {
                        RData::SRV(s) => Some(Srv {
                            priority: s.priority(),
                            weight: s.weight(),
                            port: s.port(),
                            target: s.target().to_ascii(),
                        }),
                        _ => None,
                    })
                    .collect(),
                ttl,
            ),
        }
    }
}

fn empty(query: &Query) -> Answer {
    match query {
        Query::Naptr(_) => Answer::Naptr(Vec::new(), None),
        Query::Srv(_) => Answer::Srv(Vec::new(), None),
        Query::Address(_) => Answer::Address(Vec::new(), None),
    }
}

/// The transports a trunk of `transport` (`udp`, `tcp`, `tls`) may be reached by: its own.
pub fn allowed(transport: &str) -> [TransportKind; 1] {
    [match transport {
        "tcp" => TransportKind::Tcp,
        "tls" => TransportKind::Tls,
        _ => TransportKind::Udp,
    }]
}

/// A target as a socket address.
pub fn socket(target: &Target) -> SocketAddr {
    SocketAddr::new(target.ip, target.port)
}
