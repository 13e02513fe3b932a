//! Locating a trunk's SIP server (RFC 3263 §4), sans-IO: a [`Locate`] says which DNS look-up
//! to make next ([`Locate::poll_query`]), takes the records the shell found
//! ([`Locate::handle_answer`]) and ends with the ordered targets (transport, address, port)
//! that a request tries in turn, failing over on 503, no answer or a transport error (§4.3).
//!
//! - An IP address: no DNS at all (§4.2).
//! - A name with a port: A/AAAA only, the port as given (§4.2).
//! - A name without a port: NAPTR (§4.1), the services `SIP+D2U`, `SIP+D2T`, `SIPS+D2T` of
//!   the transports the trunk allows, by order then preference; each replacement's SRV.
//!   Without a usable NAPTR: SRV `_sip._udp`, `_sip._tcp`, `_sips._tcp` of the name (§4.1).
//!   SRV targets are ordered as RFC 2782 says (priority, then a weighted random choice whose
//!   random numbers are an input). Without any SRV: A/AAAA of the name with the transport's
//!   default port (§4.2).
//!
//! The shell asks the DNS and keeps the result until its TTL ends, so the weighted order
//! holds across calls until then.

use crate::peer::TransportKind;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

/// A NAPTR record (RFC 3403 §4.1), as far as SIP uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    /// The SRV name to look up (RFC 3263 §4.1: SIP uses replacement, not regexp).
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// One place to send requests to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub transport: TransportKind,
    pub ip: IpAddr,
    pub port: u16,
}

/// A look-up the shell is to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    Naptr(String),
    Srv(String),
    /// A and AAAA of the name.
    Address(String),
}

/// What a look-up found; an error (no such name, no records, no answer) is an empty list.
/// `ttl`: the smallest TTL of the records, `None` when there were none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Naptr(Vec<Naptr>, Option<u32>),
    Srv(Vec<Srv>, Option<u32>),
    Address(Vec<IpAddr>, Option<u32>),
}

/// The port of a transport when neither the URI nor SRV gives one (RFC 3261 §19.1.2).
pub fn default_port(transport: TransportKind) -> u16 {
    if transport.is_secure() { 5061 } else { 5060 }
}

/// The NAPTR service of a transport (RFC 3263 §4.1, RFC 3261 §26.5.2).
fn service(transport: TransportKind) -> Option<&'static str> {
    match transport {
        TransportKind::Udp => Some("SIP+D2U"),
        TransportKind::Tcp => Some("SIP+D2T"),
        TransportKind::Tls => Some("SIPS+D2T"),
        TransportKind::Ws | TransportKind::Wss => None,
    }
}

/// The SRV name of a transport for `host` when there is no NAPTR (RFC 3263 §4.1).
fn srv_name(transport: TransportKind, host: &str) -> Option<String> {
    match transport {
        TransportKind::Udp => Some(format!("_sip._udp.{host}")),
        TransportKind::Tcp => Some(format!("_sip._tcp.{host}")),
        TransportKind::Tls => Some(format!("_sips._tcp.{host}")),
        TransportKind::Ws | TransportKind::Wss => None,
    }
}

/// The usable NAPTR records in the order to try them: only `S` (SRV follows) records of an
/// allowed transport's service, by order, then preference (RFC 3403 §4.1; RFC 3263 §4.1).
pub fn naptr_order(records: &[Naptr], allowed: &[TransportKind]) -> Vec<(TransportKind, String)> {
    let mut usable: Vec<(&Naptr, TransportKind)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let t = allowed
                .iter()
                .copied()
                .find(|t| service(*t).is_some_and(|s| s.eq_ignore_ascii_case(&r.services)))?;
            Some((r, t))
        })
        .collect();
    // A stable sort keeps the zone's order among equals.
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    usable
        .into_iter()
        .map(|(r, t)| (t, r.replacement.trim_end_matches('.').to_string()))
        .collect()
}

/// SRV records in the order to try them (RFC 2782, "Usage rules"): by priority, lowest
/// first; within one priority, repeatedly a weighted random pick among those left, zero
/// weights first in the running sums so they are picked only rarely. `random(sum)` returns a
/// number in `0..=sum`. A single record with target `.` says there is no such service: none.
pub fn srv_order(records: &[Srv], random: &mut dyn FnMut(u32) -> u32) -> Vec<Srv> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    let mut by_priority: Vec<Srv> = records
        .iter()
        .filter(|r| !r.target.trim_end_matches('.').is_empty())
        .cloned()
        .collect();
    by_priority.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(by_priority.len());
    let mut rest = by_priority.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(same);
        rest = tail;
        // "arrange all SRV RRs (that have not been ordered yet) in any order, except that
        // all those with weight 0 are placed at the beginning of the list".
        let mut left: Vec<&Srv> = group.iter().filter(|r| r.weight == 0).collect();
        left.extend(group.iter().filter(|r| r.weight > 0));
        while !left.is_empty() {
            let sum: u32 = left.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(sum).min(sum);
            let mut running = 0u32;
            let chosen = left
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(left.remove(chosen).clone());
        }
    }
    out
}

/// A name waiting for its addresses, in the place its targets take in the order.
#[derive(Debug)]
struct Slot {
    transport: TransportKind,
    name: String,
    port: u16,
    addresses: Option<Vec<IpAddr>>,
}

/// One resolution of a host (see the module's text).
#[derive(Debug)]
pub struct Locate {
    host: String,
    allowed: Vec<TransportKind>,
    naptr_asked: bool,
    /// SRV names still to look up, each with its transport.
    srv: VecDeque<(TransportKind, String)>,
    slots: Vec<Slot>,
    /// The smallest TTL seen.
    ttl: Option<u32>,
}

impl Locate {
    /// Resolves `host` (a name or an IP address, IPv6 with or without brackets) with the
    /// `port` of the URI if it has one, for the transports the trunk allows, in preference
    /// order (the first is used when DNS does not say which).
    pub fn new(host: &str, port: Option<u16>, allowed: &[TransportKind]) -> Locate {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_string();
        let allowed: Vec<TransportKind> = allowed
            .iter()
            .copied()
            .filter(|t| service(*t).is_some())
            .collect();
        let first = allowed.first().copied().unwrap_or_default();
        let mut locate = Locate {
            host: host.clone(),
            allowed,
            naptr_asked: false,
            srv: VecDeque::new(),
            slots: Vec::new(),
            ttl: None,
        };
        let literal = host.parse::<IpAddr>().ok();
        if literal.is_some() || port.is_some() {
            // RFC 3263 §4.2: an address, or a name with a port: no NAPTR, no SRV.
            locate.naptr_asked = true;
            locate.slots.push(Slot {
                transport: first,
                name: host,
                port: port.unwrap_or_else(|| default_port(first)),
                addresses: literal.map(|ip| vec![ip]),
            });
        }
        locate
    }

    /// The next look-up to make; `None`: done, [`Locate::targets`] holds the answer.
    #[must_use]
    pub fn poll_query(&self) -> Option<Query> {
        if !self.naptr_asked {
            return Some(Query::Naptr(self.host.clone()));
        }
        if let Some((_, name)) = self.srv.front() {
            return Some(Query::Srv(name.clone()));
        }
        self.slots
            .iter()
            .find(|s| s.addresses.is_none())
            .map(|s| Query::Address(s.name.clone()))
    }

    /// The answer to the query [`Locate::poll_query`] gave; `random` orders SRV weights (see
    /// [`srv_order`]).
    pub fn handle_answer(&mut self, answer: Answer, random: &mut dyn FnMut(u32) -> u32) {
        match answer {
            Answer::Naptr(records, ttl) => {
                self.naptr_asked = true;
                self.note_ttl(ttl);
                self.srv = naptr_order(&records, &self.allowed).into();
                if self.srv.is_empty() {
                    // RFC 3263 §4.1: no NAPTR: SRV for each transport the client supports.
                    let host = self.host.clone();
                    self.srv = self
                        .allowed
                        .iter()
                        .filter_map(|t| srv_name(*t, &host).map(|n| (*t, n)))
                        .collect();
                }
            }
            Answer::Srv(records, ttl) => {
                self.note_ttl(ttl);
                let Some((transport, _)) = self.srv.pop_front() else {
                    return;
                };
                for r in srv_order(&records, random) {
                    self.slots.push(Slot {
                        transport,
                        name: r.target.trim_end_matches('.').to_string(),
                        port: r.port,
                        addresses: None,
                    });
                }
                if self.srv.is_empty() && self.slots.is_empty() {
                    // RFC 3263 §4.2: no SRV: the name's A/AAAA, the transport's port.
                    let transport = self.allowed.first().copied().unwrap_or_default();
                    self.slots.push(Slot {
                        transport,
                        name: self.host.clone(),
                        port: default_port(transport),
                        addresses: None,
                    });
                }
            }
            Answer::Address(mut ips, ttl) => {
                self.note_ttl(ttl);
                let Some(name) = self
                    .slots
                    .iter()
                    .find(|s| s.addresses.is_none())
                    .map(|s| s.name.clone())
                else {
                    return;
                };
                // IPv4 first: most providers and most listeners are IPv4.
                ips.sort_by_key(|ip| !ip.is_ipv4());
                for slot in self.slots.iter_mut().filter(|s| s.name == name) {
                    slot.addresses.get_or_insert_with(|| ips.clone());
                }
            }
        }
    }

    fn note_ttl(&mut self, ttl: Option<u32>) {
        if let Some(ttl) = ttl {
            self.ttl = Some(self.ttl.map_or(ttl, |t| t.min(ttl)));
        }
    }

    /// The targets in the order to try them, each once.
    pub fn targets(&self) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        for slot in &self.slots {
            for ip in slot.addresses.iter().flatten() {
                let t = Target {
                    transport: slot.transport,
                    ip: *ip,
                    port: slot.port,
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// How long the answer holds: the smallest TTL of the records used (`None`: no DNS
    /// record was seen; the shell picks its own time).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl.map(|s| Duration::from_secs(u64::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const UDP: TransportKind = TransportKind::Udp;
    const TCP: TransportKind = TransportKind::Tcp;
    const TLS: TransportKind = TransportKind::Tls;

    fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "S".into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    /// A zone of fixture records the resolution is run against, as the shell would.
    #[derive(Default)]
    struct Zone {
        naptr: HashMap<String, Vec<Naptr>>,
        srv: HashMap<String, Vec<Srv>>,
        a: HashMap<String, Vec<IpAddr>>,
        asked: Vec<Query>,
    }

    impl Zone {
        fn run(&mut self, host: &str, port: Option<u16>, allowed: &[TransportKind]) -> Vec<String> {
            self.run_with(host, port, allowed, &mut |_| 0).0
        }

        fn run_with(
            &mut self,
            host: &str,
            port: Option<u16>,
            allowed: &[TransportKind],
            random: &mut dyn FnMut(u32) -> u32,
        ) -> (Vec<String>, Option<Duration>) {
            let mut l = Locate::new(host, port, allowed);
            let mut guard = 0;
            while let Some(q) = l.poll_query() {
                guard += 1;
                assert!(guard < 100, "the resolution does not end");
                self.asked.push(q.clone());
                let answer = match &q {
                    Query::Naptr(n) => {
                        let r = self.naptr.get(n).cloned().unwrap_or_default();
                        let ttl = (!r.is_empty()).then_some(300);
                        Answer::Naptr(r, ttl)
                    }
                    Query::Srv(n) => {
                        let r = self.srv.get(n).cloned().unwrap_or_default();
                        let ttl = (!r.is_empty()).then_some(60);
                        Answer::Srv(r, ttl)
                    }
                    Query::Address(n) => {
                        let r = self.a.get(n).cloned().unwrap_or_default();
                        let ttl = (!r.is_empty()).then_some(120);
                        Answer::Address(r, ttl)
                    }
                };
                l.handle_answer(answer, random);
            }
            let targets = l
                .targets()
                .iter()
                .map(|t| format!("{} {}:{}", t.transport.name(), t.ip, t.port))
                .collect();
            (targets, l.ttl())
        }

        fn a(mut self, name: &str, ips: &[&str]) -> Zone {
            let ips = ips.iter().filter_map(|i| i.parse().ok()).collect();
            self.a.insert(name.into(), ips);
            self
        }
    }

    #[test]
    fn an_ip_address_asks_nothing() {
        let mut zone = Zone::default();
        assert_eq!(zone.run("192.0.2.7", None, &[UDP]), ["udp 192.0.2.7:5060"]);
        assert_eq!(
            zone.run("[2001:db8::7]", Some(5080), &[UDP]),
            ["udp 2001:db8::7:5080"]
        );
        assert_eq!(zone.run("192.0.2.7", None, &[TLS]), ["tls 192.0.2.7:5061"]);
        assert!(zone.asked.is_empty());
    }

    #[test]
    fn a_name_with_a_port_is_a_and_aaaa_only() {
        let mut zone = Zone::default().a("sip.example.net", &["2001:db8::1", "192.0.2.1"]);
        zone.srv.insert(
            "_sip._udp.sip.example.net".into(),
            vec![srv(10, 1, 5070, "other.example.net")],
        );
        assert_eq!(
            zone.run("sip.example.net", Some(5080), &[UDP]),
            ["udp 192.0.2.1:5080", "udp 2001:db8::1:5080"]
        );
        assert_eq!(zone.asked, [Query::Address("sip.example.net".into())]);
    }

    #[test]
    fn naptr_by_order_then_preference_and_only_allowed_transports() {
        let mut zone = Zone::default()
            .a("udp1.example.net", &["192.0.2.1"])
            .a("udp2.example.net", &["192.0.2.2"])
            .a("tcp.example.net", &["192.0.2.3"]);
        zone.naptr.insert(
            "example.net".into(),
            vec![
                naptr(20, 10, "SIP+D2U", "_sip._udp.late.example.net."),
                naptr(10, 50, "SIP+D2U", "_sip._udp.second.example.net."),
                naptr(10, 10, "SIP+D2T", "_sip._tcp.example.net."),
                naptr(10, 20, "SIP+D2U", "_sip._udp.first.example.net."),
                // Not a SIP service, and a flag SIP does not use: skipped.
                naptr(1, 1, "E2U+sip", "_sip._udp.enum.example.net."),
                Naptr {
                    flags: "A".into(),
                    ..naptr(1, 1, "SIP+D2U", "x.example.net.")
                },
            ],
        );
        zone.srv.insert(
            "_sip._udp.first.example.net".into(),
            vec![srv(10, 0, 5060, "udp1.example.net.")],
        );
        zone.srv.insert(
            "_sip._udp.second.example.net".into(),
            vec![srv(10, 0, 5062, "udp2.example.net.")],
        );
        zone.srv.insert(
            "_sip._tcp.example.net".into(),
            vec![srv(10, 0, 5060, "tcp.example.net.")],
        );
        // A UDP trunk: the TCP record is not its.
        assert_eq!(
            zone.run("example.net", None, &[UDP]),
            ["udp 192.0.2.1:5060", "udp 192.0.2.2:5062"]
        );
        assert_eq!(zone.asked[0], Query::Naptr("example.net".into()));
        assert_eq!(
            zone.asked[1],
            Query::Srv("_sip._udp.first.example.net".into())
        );
        // A trunk that allows both: TCP by its NAPTR order first.
        assert_eq!(
            zone.run("example.net", None, &[UDP, TCP]),
            [
                "tcp 192.0.2.3:5060",
                "udp 192.0.2.1:5060",
                "udp 192.0.2.2:5062"
            ]
        );
    }

    #[test]
    fn srv_by_priority_then_weight_with_the_random_number_given() {
        let records = [
            srv(20, 0, 5060, "backup.example.net"),
            srv(10, 10, 5060, "a.example.net"),
            srv(10, 30, 5060, "b.example.net"),
            srv(10, 0, 5060, "zero.example.net"),
        ];
        let names = |mut random: Box<dyn FnMut(u32) -> u32>| -> Vec<String> {
            srv_order(&records, &mut *random)
                .into_iter()
                .map(|r| r.target)
                .collect()
        };
        // Running sums in priority 10: zero 0, a 10, b 40. Picking 0 takes the zero-weight
        // one (RFC 2782: "weight 0 ... a very small chance of being selected").
        assert_eq!(
            names(Box::new(|_| 0)),
            [
                "zero.example.net",
                "a.example.net",
                "b.example.net",
                "backup.example.net"
            ]
        );
        // Always the top of the sum: b (sum 40), then a, then zero.
        assert_eq!(
            names(Box::new(|sum| sum)),
            [
                "b.example.net",
                "a.example.net",
                "zero.example.net",
                "backup.example.net"
            ]
        );
        // 11 of 40 falls in b's share; the second pick over the remaining sum 10 takes a.
        let mut picks = vec![11, 10, 0, 0].into_iter();
        assert_eq!(
            names(Box::new(move |_| picks.next().unwrap_or(0))),
            [
                "b.example.net",
                "a.example.net",
                "zero.example.net",
                "backup.example.net"
            ]
        );
        // A number out of range is taken as the sum, never a panic.
        assert_eq!(names(Box::new(|_| u32::MAX))[0], "b.example.net");
    }

    #[test]
    fn srv_dot_says_no_service() {
        assert!(srv_order(&[srv(0, 0, 0, ".")], &mut |_| 0).is_empty());
    }

    #[test]
    fn without_naptr_srv_per_transport_then_a_and_aaaa() {
        let mut zone = Zone::default()
            .a("pbx1.example.org", &["198.51.100.1"])
            .a("pbx2.example.org", &["198.51.100.2", "2001:db8::2"])
            .a("example.org", &["198.51.100.9"]);
        zone.srv.insert(
            "_sip._udp.example.org".into(),
            vec![
                srv(20, 0, 5062, "pbx2.example.org."),
                srv(10, 0, 5061, "pbx1.example.org."),
            ],
        );
        let (targets, ttl) = zone.run_with("example.org", None, &[UDP], &mut |_| 0);
        assert_eq!(
            targets,
            [
                "udp 198.51.100.1:5061",
                "udp 198.51.100.2:5062",
                "udp 2001:db8::2:5062"
            ]
        );
        // The smallest TTL of what was used (SRV's 60 s; no NAPTR record, so no NAPTR TTL).
        assert_eq!(ttl, Some(Duration::from_secs(60)));
        assert_eq!(
            zone.asked,
            [
                Query::Naptr("example.org".into()),
                Query::Srv("_sip._udp.example.org".into()),
                Query::Address("pbx1.example.org".into()),
                Query::Address("pbx2.example.org".into()),
            ]
        );
        // Neither NAPTR nor SRV: the name itself on the transport's default port.
        zone.srv.clear();
        zone.asked.clear();
        assert_eq!(
            zone.run("example.org", None, &[TLS]),
            ["tls 198.51.100.9:5061"]
        );
        assert_eq!(
            zone.asked,
            [
                Query::Naptr("example.org".into()),
                Query::Srv("_sips._tcp.example.org".into()),
                Query::Address("example.org".into()),
            ]
        );
        // Nothing at all: no target.
        assert!(zone.run("nowhere.example", None, &[UDP]).is_empty());
    }

    /// The order a call fails over in (RFC 3263 §4.3): every address of the first SRV target,
    /// then the next target's, a target named twice tried once.
    #[test]
    fn failover_order_across_targets_and_addresses() {
        let mut zone = Zone::default()
            .a("a.example.com", &["203.0.113.1", "203.0.113.2"])
            .a("b.example.com", &["203.0.113.3"]);
        zone.naptr.insert(
            "example.com".into(),
            vec![
                naptr(10, 10, "SIP+D2U", "_sip._udp.example.com"),
                naptr(10, 20, "SIP+D2U", "_sip._udp.again.example.com"),
            ],
        );
        zone.srv.insert(
            "_sip._udp.example.com".into(),
            vec![
                srv(10, 5, 5060, "a.example.com"),
                srv(20, 5, 5060, "b.example.com"),
            ],
        );
        zone.srv.insert(
            "_sip._udp.again.example.com".into(),
            vec![srv(10, 5, 5060, "a.example.com")],
        );
        assert_eq!(
            zone.run("example.com", None, &[UDP]),
            [
                "udp 203.0.113.1:5060",
                "udp 203.0.113.2:5060",
                "udp 203.0.113.3:5060"
            ]
        );
        // Each name's addresses are asked once.
        let a_asked = zone
            .asked
            .iter()
            .filter(|q| **q == Query::Address("a.example.com".into()))
            .count();
        assert_eq!(a_asked, 1);
    }
}
