//! Parsers for the string-valued config types: listen entries, socket addresses, port ranges,
//! networks, database URLs. Each returns the message to report on failure.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::model::{Listen, Transport};

/// `udp:127.0.0.1:5060`, `tls:[::1]:5061`.
pub fn parse_listen(text: &str) -> Result<Listen, String> {
    let Some((scheme, rest)) = text.split_once(':') else {
        return Err(format!(
            "bad listen address `{text}`: expected transport:ip:port, such as \"udp:127.0.0.1:5060\""
        ));
    };
    let transport = Transport::from_scheme(scheme).ok_or_else(|| {
        format!(
            "bad listen address `{text}`: unknown transport `{scheme}`, expected one of udp, tcp, tls, ws, wss"
        )
    })?;
    let addr = parse_socket_addr(rest).map_err(|m| format!("bad listen address `{text}`: {m}"))?;
    Ok(Listen { transport, addr })
}

/// `127.0.0.1:8080` or `[::1]:8080`: an IP literal (no host names) and a port 1-65535.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "`{text}` has no port: expected ip:port, such as 127.0.0.1:5060"
        ));
    };
    let ip_text = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = ip_text.parse().map_err(|_| {
        format!("`{host}` is not an IP address (IPv6 is written in brackets: [::1]:5060)")
    })?;
    if ip.is_ipv6() && !host.starts_with('[') {
        return Err(format!(
            "IPv6 address `{host}` must be written in brackets: [{host}]:{port}"
        ));
    }
    let port = parse_port(port)?;
    Ok(SocketAddr::new(ip, port))
}

/// A port 1-65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    let n: u64 = text
        .parse()
        .map_err(|_| format!("bad port `{text}`: expected a number 1-65535"))?;
    match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {n} out of range 1-65535")),
    }
}

/// `10000-20000`: at least two ports (one RTP/RTCP pair), low to high.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let Some((lo, hi)) = text.split_once('-') else {
        return Err(format!(
            "bad port range `{text}`: expected low-high, such as \"10000-20000\""
        ));
    };
    let lo = parse_port(lo.trim())?;
    let hi = parse_port(hi.trim())?;
    if lo >= hi {
        return Err(format!(
            "bad port range `{text}`: the first port must be lower than the last"
        ));
    }
    Ok((lo, hi))
}

/// A CIDR network or a single address: the ACL's syntax, shared with the trace filters.
pub use crate::security::acl::parse_network;

/// Checks the scheme and makes a relative SQLite path absolute against `base`.
pub fn resolve_database_url(url: &str, base: &Path) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(format!(
            "bad database url `{url}`: expected sqlite://PATH or postgres://USER@HOST/DB"
        ));
    };
    let (file, query) = match rest.split_once('?') {
        Some((f, q)) => (f, Some(q)),
        None => (rest, None),
    };
    if file.is_empty() {
        return Err(format!("bad database url `{url}`: no database file"));
    }
    if file == ":memory:" {
        return Ok(url.to_string());
    }
    let path = base.join(file);
    let mut out = format!("sqlite://{}", path.display());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_entries() {
        let l = parse_listen("udp:127.0.0.1:5060").ok();
        assert_eq!(l.map(|l| l.to_string()), Some("udp:127.0.0.1:5060".into()));
        let l = parse_listen("wss:[::1]:443").ok();
        assert_eq!(l.map(|l| l.transport), Some(Transport::Wss));
        assert!(
            parse_listen("sctp:127.0.0.1:5060").is_err_and(|m| m.contains("unknown transport"))
        );
        assert!(parse_listen("udp:localhost:5060").is_err_and(|m| m.contains("not an IP")));
        assert!(parse_listen("udp:127.0.0.1:70000").is_err_and(|m| m.contains("out of range")));
        assert!(parse_listen("udp:127.0.0.1:0").is_err());
        assert!(parse_listen("udp:::1:5060").is_err_and(|m| m.contains("brackets")));
        assert!(parse_listen("127.0.0.1").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("10000-20000"), Ok((10000, 20000)));
        assert!(parse_port_range("20000-10000").is_err());
        assert!(parse_port_range("10000").is_err());
        assert!(parse_port_range("1-99999").is_err());
    }

    #[test]
    fn networks() {
        assert_eq!(
            parse_network("10.0.0.0/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            parse_network("::/0").map(|n| n.to_string()),
            Ok("::/0".into())
        );
        assert_eq!(
            parse_network("10.1.2.3").map(|n| n.to_string()),
            Ok("10.1.2.3/32".into())
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("ten").is_err());
    }

    #[test]
    fn database_urls() {
        let base = Path::new("/etc/pbx");
        assert_eq!(
            resolve_database_url("sqlite://data/pbx.db", base),
            Ok("sqlite:///etc/pbx/data/pbx.db".into())
        );
        assert_eq!(
            resolve_database_url("sqlite:data/pbx.db?mode=rwc", base),
            Ok("sqlite:///etc/pbx/data/pbx.db?mode=rwc".into())
        );
        assert_eq!(
            resolve_database_url("sqlite:///var/pbx.db", base),
            Ok("sqlite:///var/pbx.db".into())
        );
        assert_eq!(
            resolve_database_url("postgres://pbx@db/pbx", base),
            Ok("postgres://pbx@db/pbx".into())
        );
        assert!(resolve_database_url("mysql://x", base).is_err());
        assert!(resolve_database_url("sqlite://", base).is_err());
    }
}
