//! Phones provisioned by QR code: one-time, expiring links (`/provision/TOKEN`) that return a
//! Linphone remote-provisioning document (its `lpconfig` XML) with the account.
//!
//! The store keeps no password, only the digest HA1s, so the document carries the MD5 HA1
//! (Linphone's `auth_info` takes `ha1` with `algorithm`). Links live in memory: a restart
//! voids them (docs/decisions.md), and only the SHA-256 of a token is kept.

use std::collections::HashMap;
use std::sync::Mutex;

use pbx_store::Transport;
use sha2::{Digest, Sha256};

/// How long a used or expired link is remembered, so that it can say so (410) rather than
/// "unknown" (404).
const REMEMBER: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub number: String,
    pub transport: Transport,
    /// The host (name or address) the phone is told to reach the PBX at.
    pub host: String,
    pub port: u16,
    pub expires: u64,
    used: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Valid(Link),
    Used,
    Expired,
    Unknown,
}

#[derive(Default)]
pub struct ProvisionLinks {
    by_hash: Mutex<HashMap<String, Link>>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl ProvisionLinks {
    /// A new link; returns its token (32 random bytes as hex).
    pub fn create(
        &self,
        number: &str,
        transport: Transport,
        host: &str,
        port: u16,
        now: u64,
        ttl: u64,
    ) -> String {
        let token = crate::sessions::random_token();
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, l| l.expires.saturating_add(REMEMBER) > now);
        map.insert(
            hash(&token),
            Link {
                number: number.to_string(),
                transport,
                host: host.to_string(),
                port,
                expires: now.saturating_add(ttl),
                used: None,
            },
        );
        token
    }

    /// Uses the link up: the first call gets it, every later one hears it was used.
    pub fn redeem(&self, token: &str, now: u64) -> Redeemed {
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        let Some(link) = map.get_mut(&hash(token)) else {
            return Redeemed::Unknown;
        };
        if link.used.is_some() {
            return Redeemed::Used;
        }
        if now >= link.expires {
            return Redeemed::Expired;
        }
        link.used = Some(now);
        Redeemed::Valid(link.clone())
    }
}

/// What the document sets up.
pub struct Account<'a> {
    pub display_name: &'a str,
    pub number: &'a str,
    pub domain: &'a str,
    pub transport: Transport,
    pub host: &'a str,
    pub port: u16,
    pub ha1_md5: &'a str,
    /// The extension's `media_encryption`: `required`, `optional` or `off`.
    pub media_encryption: &'a str,
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// SRTP as the PBX offers it: always when required, over TLS when optional (SDES keys need
/// an encrypted signalling path), never when off.
pub fn srtp(account: &Account<'_>) -> (bool, bool) {
    match account.media_encryption {
        "required" => (true, true),
        "optional" => (account.transport == Transport::Tls, false),
        _ => (false, false),
    }
}

/// A host for a SIP URI: IPv6 literals in brackets.
pub fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The Linphone remote-provisioning document for `account`.
pub fn linphone_xml(a: &Account<'_>) -> String {
    let transport = a.transport.to_string();
    let proxy = format!(
        "<sip:{}:{};transport={transport}>",
        uri_host(a.host),
        a.port
    );
    let identity = if a.display_name.is_empty() {
        format!("<sip:{}@{}>", a.number, a.domain)
    } else {
        format!(
            "\"{}\" <sip:{}@{}>",
            a.display_name.replace(['"', '\\'], ""),
            a.number,
            a.domain
        )
    };
    let (srtp, mandatory) = srtp(a);
    let entry = |name: &str, value: &str| {
        format!(
            "    <entry name=\"{name}\" overwrite=\"true\">{}</entry>\n",
            xml_escape(value)
        )
    };
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://www.linphone.org/xsds/lpconfig.xsd lpconfig.xsd\">\n",
    );
    x.push_str("  <section name=\"sip\">\n");
    x.push_str(&entry("default_proxy", "0"));
    x.push_str(&entry(
        "media_encryption",
        if srtp { "srtp" } else { "none" },
    ));
    x.push_str(&entry(
        "media_encryption_mandatory",
        if mandatory { "1" } else { "0" },
    ));
    x.push_str("  </section>\n  <section name=\"proxy_0\">\n");
    x.push_str(&entry("reg_proxy", &proxy));
    x.push_str(&entry("reg_route", &proxy));
    x.push_str(&entry("reg_identity", &identity));
    x.push_str(&entry("realm", a.domain));
    x.push_str(&entry("reg_expires", "3600"));
    x.push_str(&entry("reg_sendregister", "1"));
    x.push_str("  </section>\n  <section name=\"auth_info_0\">\n");
    x.push_str(&entry("username", a.number));
    x.push_str(&entry("userid", a.number));
    x.push_str(&entry("ha1", a.ha1_md5));
    x.push_str(&entry("algorithm", "MD5"));
    x.push_str(&entry("realm", a.domain));
    x.push_str(&entry("domain", a.domain));
    x.push_str("  </section>\n</config>\n");
    x
}

/// `text` as a QR code in SVG, for inlining in a page.
pub fn qr_svg(text: &str) -> Result<String, String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    // The XML declaration is for a file, not for a page.
    Ok(match image.find("<svg") {
        Some(at) => image[at..].to_string(),
        None => image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_one_time_and_expire() {
        let links = ProvisionLinks::default();
        let t = links.create("1000", Transport::Tls, "pbx.example", 5061, 100, 60);
        assert_eq!(links.redeem("nope", 110), Redeemed::Unknown);
        match links.redeem(&t, 110) {
            Redeemed::Valid(l) => assert_eq!((l.number.as_str(), l.port), ("1000", 5061)),
            other => panic!("{other:?}"),
        }
        assert_eq!(links.redeem(&t, 111), Redeemed::Used);
        let late = links.create("1000", Transport::Udp, "h", 5060, 100, 60);
        assert_eq!(links.redeem(&late, 160), Redeemed::Expired);
    }

    #[test]
    fn document_escapes_and_sets_srtp() {
        let a = Account {
            display_name: "Ann <&> \"Lee\"",
            number: "1000",
            domain: "pbx.test",
            transport: Transport::Tls,
            host: "::1",
            port: 5061,
            ha1_md5: "00ff",
            media_encryption: "optional",
        };
        let x = linphone_xml(&a);
        assert!(x.contains("&lt;sip:[::1]:5061;transport=tls&gt;"), "{x}");
        assert!(x.contains("Ann &lt;&amp;&gt; Lee"), "{x}");
        assert!(x.contains(">srtp<"));
        assert!(x.contains("<entry name=\"ha1\" overwrite=\"true\">00ff</entry>"));
        let plain = Account {
            transport: Transport::Udp,
            ..a
        };
        assert!(linphone_xml(&plain).contains(">none<"));
    }

    #[test]
    fn qr_is_svg() {
        let svg = qr_svg("http://127.0.0.1:8080/provision/abc").unwrap_or_default();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
