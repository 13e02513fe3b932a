//! Network access lists: `[security] allow` / `deny` and an extension's own allowed networks.

use ipnet::IpNet;
use std::net::IpAddr;

/// Which source networks may send SIP at all. `deny` wins over `allow`.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Acl {
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Acl {
        Acl { allow, deny }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !self.deny.iter().any(|n| n.contains(&ip)) && self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// An extension's allowed networks: an empty list allows every network.
pub fn network_allowed(allowed: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    allowed.is_empty() || allowed.iter().any(|n| n.contains(&ip))
}

/// A CIDR network (`10.0.0.0/8`, `::/0`) or a single address (taken as /32 or /128).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("bad network `{text}`: expected CIDR, such as \"192.168.1.0/24\""))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, from a dual-stack socket) compared as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn deny_wins_over_allow() {
        let acl = Acl::new(nets(&["0.0.0.0/0", "::/0"]), nets(&["10.0.0.0/8"]));
        assert!(acl.permits("192.0.2.1".parse().unwrap()));
        assert!(!acl.permits("10.1.2.3".parse().unwrap()));
        assert!(acl.permits("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn nothing_allowed_means_nothing_permitted() {
        let acl = Acl::new(vec![], vec![]);
        assert!(!acl.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn mapped_ipv6_is_matched_as_ipv4() {
        let acl = Acl::new(nets(&["127.0.0.0/8"]), vec![]);
        assert!(acl.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(network_allowed(
            &nets(&["127.0.0.1/32"]),
            "::ffff:127.0.0.1".parse().unwrap()
        ));
        assert!(!network_allowed(
            &nets(&["127.0.0.2/32"]),
            "127.0.0.1".parse().unwrap()
        ));
        assert!(network_allowed(&[], "127.0.0.1".parse().unwrap()));
    }
}
