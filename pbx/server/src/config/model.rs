//! The loaded, validated configuration. Every path is absolute (resolved against the config
//! file's folder) and every optional key holds its default.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The config file, as given on the command line.
    pub path: PathBuf,
    /// The absolute folder of the config file; relative paths inside it start here.
    pub base_dir: PathBuf,
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub database: DatabaseConfig,
    pub tls: TlsConfig,
    pub security: SecurityConfig,
    pub web: WebConfig,
    pub voicemail: VoicemailConfig,
    /// `None` when the file has no `[smtp]` section: no e-mail is sent.
    pub smtp: Option<SmtpConfig>,
    pub dialplan: DialplanConfig,
    pub calls: CallsConfig,
    pub dns: DnsConfig,
    pub trace: TraceConfig,
    /// `[lookup.NAME]`: databases the dialplan's `db_lookup` may query, by name.
    pub lookup: std::collections::BTreeMap<String, LookupConfig>,
}

/// One `[lookup.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupConfig {
    /// `sqlite://PATH` (relative to the config file) or `postgres://...`.
    pub url: String,
}

/// The transport of a listener, from the scheme of a `listen` entry. Defined in pbx-sip so
/// that the store's bindings use the same type.
pub use pbx_sip::transport::Transport;

/// One `listen` entry: `udp:127.0.0.1:5060`, `tls:[::1]:5061`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// Default: `udp:0.0.0.0:5060`, `tcp:0.0.0.0:5060`.
    pub listen: Vec<Listen>,
    /// SIP domain and digest realm. Required.
    pub domain: String,
    /// Default 60s. Shorter requested expiries get 423 Interval Too Brief.
    pub min_expires: Duration,
    /// Default 3600s. Longer requested expiries are cut down to this.
    pub max_expires: Duration,
    /// Default 3600s: used when a REGISTER names no expiry.
    pub default_expires: Duration,
    /// Default 65535 bytes.
    pub max_message_size: usize,
    /// Default 0s = off: how often registered contacts are sent OPTIONS.
    pub qualify_interval: Duration,
    /// Default "pbx": the User-Agent / Server header value.
    pub user_agent: String,
    /// Default 0 = automatic: one thread less than the machine has cores (at least one), so
    /// the database writer and the operating system's network work keep a core.
    pub threads: usize,
    /// Default none: a CA file trusted, besides the system's roots, for the certificates of
    /// TLS trunks (a trunk may name its own).
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RtpConfig {
    /// Default 10000. Inclusive.
    pub port_min: u16,
    /// Default 20000. Inclusive.
    pub port_max: u16,
    /// Written into SDP when the PBX sits behind NAT.
    pub public_ip: Option<IpAddr>,
    /// Default 60 s: an answered call with no media for this long (not on hold) is ended.
    pub rtp_timeout: Duration,
    /// Default false: SDES keys (`a=crypto`) are only written into SDP sent over TLS
    /// (RFC 4568 §8.3); true lets them go over UDP and TCP too.
    pub sdes_over_insecure: bool,
    /// The address RTP/RTCP sockets bind to. Default: derived from `[sip] listen` by
    /// [`media_bind_for`].
    pub bind: IpAddr,
    /// Default true: the relay workers ask for real-time scheduling, so frames leave on
    /// time on a busy host (kept normal, with a warning, where the OS refuses).
    pub realtime: bool,
    /// Default "sequence": a plain RTP leg latches to its SDP address at once and to any
    /// other source only after `rtp_probation` consecutive packets (against RTP bleed);
    /// "off" latches the first packet.
    pub strict_rtp: pbx_media::relay::StrictRtp,
    /// Default 4, 1..=32: the consecutive packets of that probation.
    pub rtp_probation: u8,
}

impl RtpConfig {
    /// How the relay latches plain RTP legs.
    pub fn latching(&self) -> pbx_media::relay::LatchPolicy {
        match self.strict_rtp {
            pbx_media::relay::StrictRtp::Off => pbx_media::relay::LatchPolicy::OFF,
            pbx_media::relay::StrictRtp::Sequence => {
                pbx_media::relay::LatchPolicy::sequence(self.rtp_probation)
            }
        }
    }
}

/// The default `[rtp] bind`: when every SIP listener is on one and the same specific address,
/// media binds there too (a loopback-only or single-interface PBX opens nothing else);
/// otherwise (a wildcard listener, or several addresses) media listens on every IPv4
/// interface, `0.0.0.0`, and the SDP names the address each leg's signalling uses.
pub fn media_bind_for(listen: &[Listen]) -> IpAddr {
    let wildcard = IpAddr::from([0, 0, 0, 0]);
    let Some(first) = listen.first().map(|l| l.addr.ip()) else {
        return wildcard;
    };
    if first.is_unspecified() || listen.iter().any(|l| l.addr.ip() != first) {
        wildcard
    } else {
        first
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallsConfig {
    /// Default 20 s: how long the devices of an extension ring before the caller gets 480.
    pub ring_timeout: Duration,
    /// Default 5 s: a trunk that sends no response at all (not even 100 Trying) this long
    /// after an INVITE has failed; the dialplan's next trunk is tried.
    pub trunk_setup_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DnsConfig {
    /// Default: none, the system's (resolv.conf). The DNS servers that locate trunks (RFC
    /// 3263 NAPTR, SRV, A/AAAA).
    pub nameservers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    /// `sqlite:///abs/path.db` (relative SQLite paths resolved) or `postgres://...` as given.
    /// Default `sqlite://data/pbx.db` relative to the config folder.
    pub url: String,
    /// Call records the database could not take wait here, and are written when it returns.
    /// Default `data/cdr-spool.jsonl` relative to the config folder.
    pub cdr_spool: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Default `tls/cert.pem`.
    pub cert: PathBuf,
    /// Default `tls/key.pem`.
    pub key: PathBuf,
}

/// A digest algorithm offered in challenges (RFC 8760): the SIP core's own type.
pub use pbx_sip::auth::Algorithm as DigestAlgorithm;

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityConfig {
    /// Who is e-mailed when a source is banned (once per ban); none by default.
    pub alert_email: Option<String>,
    /// Default 5.
    pub max_auth_failures: u32,
    /// Default 60s.
    pub failure_window: Duration,
    /// Default 1h.
    pub ban_for: Duration,
    /// Default `0.0.0.0/0`, `::/0`.
    pub allow: Vec<IpNet>,
    /// Default empty. Deny wins over allow.
    pub deny: Vec<IpNet>,
    /// Default 200 requests per second per source address.
    pub rate_limit: u32,
    /// Default 400 requests.
    pub rate_burst: u32,
    /// Default 300s.
    pub nonce_lifetime: Duration,
    /// Default `["SHA-256", "MD5"]`: challenges are sent in this order.
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Default `["baresip", "sipp"]`: lower-case substrings of User-Agent values of clients
    /// that are challenged with MD5 only, because they fail when offered SHA-256 too.
    pub md5_only_user_agents: Vec<String>,
    /// Default 10s: a TCP/TLS message must be complete this long after its first byte.
    pub message_timeout: Duration,
    /// Default 30s: a TCP/TLS connection on which no request passed digest authentication
    /// is closed after this long without a message.
    pub unauthenticated_idle: Duration,
    /// Default 128; 0 = no cap: simultaneous TCP/TLS connections per source address.
    pub max_connections_per_source: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Default false: serve the admin over HTTPS with `[tls] cert/key` (made self-signed at
    /// first start when missing); the session cookie is then `Secure`.
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VoicemailConfig {
    /// Default `data/voicemail`.
    pub storage: PathBuf,
    /// A folder of the admin's own prompts (`NAME.wav`) that replace the built-in ones by
    /// name. Default: none, the built-in English set only.
    pub sounds: Option<PathBuf>,
    /// The extension a caller reaches with `0` from a mailbox. Default: none.
    pub operator: Option<String>,
    /// Messages shorter than this are discarded (default 1 s).
    pub min_message: Duration,
    /// The longest message (default 300 s).
    pub max_message: Duration,
    /// Silence that ends a message or greeting (default 10 s; 0: never).
    pub silence: Duration,
    /// The longest greeting (default 60 s).
    pub max_greeting: Duration,
    /// Wrong PINs before the voicemail menu hangs up (default 3).
    pub max_logins: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// `smtp://host:port` (plain, `?tls=required` for STARTTLS) or `smtps://host:port`.
    pub url: String,
    /// Default `PBX <pbx@DOMAIN>`.
    pub from: String,
    /// Mail waiting for the server, one file per message; default `data/mail-queue`.
    pub queue: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DialplanConfig {
    /// The dialplan file, which exists at load time. `None` when `[dialplan] file` is not set.
    pub file: Option<PathBuf>,
}

/// `[trace]`: the trace's own type (the trace module reads it; the config only fills it).
pub use crate::trace::TraceConfig;

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(entries: &[&str]) -> Vec<Listen> {
        entries
            .iter()
            .map(|e| super::super::values::parse_listen(e).unwrap())
            .collect()
    }

    #[test]
    fn media_binds_where_sip_listens_when_that_is_one_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let one = listen(&[
            "udp:127.0.0.1:5060",
            "tcp:127.0.0.1:5060",
            "tls:127.0.0.1:5061",
        ]);
        assert_eq!(media_bind_for(&one), ip("127.0.0.1"));
        let v6 = listen(&["udp:[2001:db8::1]:5060"]);
        assert_eq!(media_bind_for(&v6), ip("2001:db8::1"));
        for any in [
            &["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"][..],
            &["udp:127.0.0.1:5060", "tcp:0.0.0.0:5060"],
            &["udp:192.0.2.1:5060", "udp:192.0.2.2:5060"],
            &["udp:[::]:5060"],
            &[],
        ] {
            assert_eq!(media_bind_for(&listen(any)), ip("0.0.0.0"), "{any:?}");
        }
    }
}
