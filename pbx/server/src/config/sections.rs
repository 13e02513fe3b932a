//! One function per `[section]` of `pbx.toml`: the keys it allows, their defaults and checks.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use pbx_media::relay::{LatchPolicy, StrictRtp};
use toml::de::{DeTable, DeValue};

use super::duration::parse_duration;
use super::model::{
    CallsConfig, Config, DatabaseConfig, DialplanConfig, DigestAlgorithm, DnsConfig, Listen,
    LookupConfig, RtpConfig, SecurityConfig, SipConfig, SmtpConfig, TlsConfig, TraceConfig,
    VoicemailConfig, WebConfig, media_bind_for,
};
use super::read::{Ctx, Section};
use super::values::{
    parse_listen, parse_network, parse_port_range, parse_socket_addr, resolve_database_url,
};

const SECTIONS: [&str; 13] = [
    "sip",
    "rtp",
    "database",
    "tls",
    "security",
    "web",
    "voicemail",
    "smtp",
    "dialplan",
    "calls",
    "trace",
    "lookup",
    "dns",
];

/// Reads every section of the root table; problems go to `ctx`.
pub(crate) fn config(ctx: &mut Ctx<'_>, root: &DeTable<'_>) -> Config {
    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        if !SECTIONS.contains(&name) {
            let expected: Vec<String> = SECTIONS.iter().map(|s| format!("[{s}]")).collect();
            ctx.error(
                key.span(),
                format!(
                    "unknown section [{name}], expected one of {}",
                    expected.join(", ")
                ),
            );
        } else if !matches!(value.get_ref(), DeValue::Table(_)) {
            ctx.error(key.span(), format!("`{name}` must be a section: [{name}]"));
        }
    }
    let section = |name: &'static str| {
        let entry = root.get_key_value(name);
        Section {
            name,
            table: entry.and_then(|(_, v)| match v.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            }),
            span: entry.map_or(0..0, |(k, _)| k.span()),
        }
    };
    let sip = sip(ctx, &section("sip"));
    let smtp = smtp(ctx, &section("smtp"), &sip.domain);
    Config {
        path: ctx.file().to_path_buf(),
        base_dir: ctx.base_dir.clone(),
        rtp: rtp(ctx, &section("rtp"), &sip.listen),
        database: database(ctx, &section("database")),
        tls: tls(ctx, &section("tls")),
        security: security(ctx, &section("security")),
        web: web(ctx, &section("web")),
        voicemail: voicemail(ctx, &section("voicemail")),
        dialplan: dialplan(ctx, &section("dialplan")),
        calls: calls(ctx, &section("calls")),
        dns: dns(ctx, &section("dns")),
        trace: trace(ctx, &section("trace")),
        lookup: lookups(ctx, &section("lookup")),
        sip,
        smtp,
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn sip(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> SipConfig {
    ctx.check_keys(
        s,
        &[
            "listen",
            "domain",
            "min_expires",
            "max_expires",
            "default_expires",
            "max_message_size",
            "qualify_interval",
            "user_agent",
            "threads",
            "tls_ca_file",
        ],
    );
    let listen = match ctx.list(s, "listen", parse_listen) {
        Some(entries) => {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for (l, span) in entries {
                if seen.insert(l) {
                    out.push(l);
                } else {
                    ctx.error(span, format!("listen address `{l}` is given twice"));
                }
            }
            if out.is_empty()
                && let Some(v) = s.get("listen")
                && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty())
            {
                ctx.error(
                    v.span(),
                    "`listen` in [sip] must name at least one address".into(),
                );
            }
            out
        }
        None => ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]
            .into_iter()
            .filter_map(|l| parse_listen(l).ok())
            .collect(),
    };
    let domain = match ctx.string(s, "domain") {
        Some((d, span)) => {
            if d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '@' || c == ':') {
                ctx.error(
                    span,
                    format!("bad domain `{d}`: expected a host name such as \"pbx.example.com\""),
                );
            }
            d.to_string()
        }
        None => {
            if s.get("domain").is_none() {
                ctx.missing(s, "domain");
            }
            String::new()
        }
    };
    let min_expires = ctx.duration(s, "min_expires", Duration::from_secs(60));
    let max_expires = ctx.duration(s, "max_expires", Duration::from_secs(3600));
    let default_expires = ctx.duration(s, "default_expires", Duration::from_secs(3600));
    if min_expires > max_expires || default_expires < min_expires || default_expires > max_expires {
        let span = s
            .get("default_expires")
            .or_else(|| s.get("min_expires"))
            .or_else(|| s.get("max_expires"))
            .map_or(s.span.clone(), |v| v.span());
        ctx.error(
            span,
            "[sip] expiries must satisfy min_expires <= default_expires <= max_expires".into(),
        );
    }
    let max_message_size = ctx.integer(s, "max_message_size", 1024..=1_048_576, 65535);
    let qualify_interval = ctx.duration(s, "qualify_interval", Duration::ZERO);
    let user_agent = ctx
        .string(s, "user_agent")
        .map_or("pbx", |(u, _)| u)
        .to_string();
    let threads = usize::try_from(ctx.integer(s, "threads", 0..=256, 0)).unwrap_or(0);
    let tls_ca_file = match ctx.string(s, "tls_ca_file") {
        Some((text, span)) => {
            let path = ctx.base_dir.join(text);
            if text.is_empty() || !path.is_file() {
                ctx.error(
                    span,
                    format!("`tls_ca_file` in [sip]: no such file `{}`", path.display()),
                );
            }
            Some(path)
        }
        None => None,
    };
    SipConfig {
        listen,
        domain,
        min_expires,
        max_expires,
        default_expires,
        max_message_size: usize::try_from(max_message_size).unwrap_or(65535),
        qualify_interval,
        user_agent,
        threads,
        tls_ca_file,
    }
}

fn rtp(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, listen: &[Listen]) -> RtpConfig {
    ctx.check_keys(
        s,
        &[
            "ports",
            "public_ip",
            "rtp_timeout",
            "sdes_over_insecure",
            "bind",
            "realtime",
            "strict_rtp",
            "rtp_probation",
        ],
    );
    let (port_min, port_max) = ctx
        .parsed(s, "ports", parse_port_range)
        .map_or((10000, 20000), |(r, _)| r);
    let public_ip = ctx
        .parsed(s, "public_ip", |t| {
            t.parse()
                .map_err(|_| format!("bad public_ip `{t}`: expected an IP address"))
        })
        .map(|(ip, _)| ip);
    let rtp_timeout = ctx.duration(s, "rtp_timeout", Duration::from_secs(60));
    let sdes_over_insecure = ctx.boolean(s, "sdes_over_insecure", false);
    let realtime = ctx.boolean(s, "realtime", true);
    let strict_rtp = ctx
        .parsed(s, "strict_rtp", |t| match t {
            "off" => Ok(StrictRtp::Off),
            "sequence" => Ok(StrictRtp::Sequence),
            _ => Err(format!(
                "bad strict_rtp `{t}`: expected \"sequence\" or \"off\""
            )),
        })
        .map_or(StrictRtp::Sequence, |(m, _)| m);
    let probation_range = 1..=i64::from(LatchPolicy::MAX_PROBATION);
    let default_probation = i64::from(LatchPolicy::DEFAULT_PROBATION);
    let rtp_probation =
        u8::try_from(ctx.integer(s, "rtp_probation", probation_range, default_probation))
            .unwrap_or(LatchPolicy::DEFAULT_PROBATION);
    let bind = ctx
        .parsed(s, "bind", |t| {
            t.parse().map_err(|_| {
                format!(
                    "bad bind `{t}`: expected an IP address such as \"192.0.2.10\" or \"0.0.0.0\""
                )
            })
        })
        .map_or_else(|| media_bind_for(listen), |(ip, _)| ip);
    RtpConfig {
        port_min,
        port_max,
        public_ip,
        rtp_timeout,
        sdes_over_insecure,
        bind,
        realtime,
        strict_rtp,
        rtp_probation,
    }
}

fn calls(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> CallsConfig {
    ctx.check_keys(s, &["ring_timeout", "trunk_setup_timeout"]);
    CallsConfig {
        ring_timeout: ctx.duration(s, "ring_timeout", Duration::from_secs(20)),
        // Zero would give up on every trunk at once.
        trunk_setup_timeout: ctx
            .parsed(s, "trunk_setup_timeout", |text| {
                match parse_duration(text)? {
                    d if d.is_zero() => Err("`trunk_setup_timeout` must be more than 0s".into()),
                    d => Ok(d),
                }
            })
            .map_or(Duration::from_secs(5), |(d, _)| d),
    }
}

/// `[dns]`: where trunks' names are resolved (the system's resolver by default).
fn dns(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> DnsConfig {
    ctx.check_keys(s, &["nameservers"]);
    let nameservers = ctx
        .list(s, "nameservers", |text| {
            text.parse::<SocketAddr>().map_err(|_| {
                format!("bad nameserver `{text}`: expected IP:PORT such as \"192.0.2.53:53\"")
            })
        })
        .unwrap_or_default()
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    DnsConfig { nameservers }
}

fn database(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> DatabaseConfig {
    ctx.check_keys(s, &["url", "cdr_spool"]);
    let base = ctx.base_dir.clone();
    let url = ctx
        .parsed(s, "url", |u| resolve_database_url(u, &base))
        .map(|(u, _)| u)
        .unwrap_or_else(|| resolve_database_url("sqlite://data/pbx.db", &base).unwrap_or_default());
    let cdr_spool = ctx.path(s, "cdr_spool", "data/cdr-spool.jsonl");
    DatabaseConfig { url, cdr_spool }
}

/// `[lookup.NAME]`: the databases the dialplan's `db_lookup` steps may query.
fn lookups(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> BTreeMap<String, LookupConfig> {
    let mut out = BTreeMap::new();
    let Some(table) = s.table else {
        return out;
    };
    for (name, value) in table.iter() {
        let DeValue::Table(inner) = value.get_ref() else {
            let m = format!(
                "`{}` must be a section: [lookup.{}] with url = \"...\"",
                name.get_ref(),
                name.get_ref()
            );
            ctx.error(name.span(), m);
            continue;
        };
        let one = Section {
            name: "lookup",
            table: Some(inner),
            span: name.span(),
        };
        ctx.check_keys(&one, &["url"]);
        let base = ctx.base_dir.clone();
        match ctx.parsed(&one, "url", |u| resolve_database_url(u, &base)) {
            Some((url, _)) => {
                out.insert(name.get_ref().to_string(), LookupConfig { url });
            }
            None if one.get("url").is_none() => ctx.missing(&one, "url"),
            None => {}
        }
    }
    out
}

fn tls(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> TlsConfig {
    ctx.check_keys(s, &["cert", "key"]);
    TlsConfig {
        cert: ctx.path(s, "cert", "tls/cert.pem"),
        key: ctx.path(s, "key", "tls/key.pem"),
    }
}

fn networks(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, key: &str, default: &[&str]) -> Vec<IpNet> {
    match ctx.list(s, key, parse_network) {
        Some(list) => list.into_iter().map(|(n, _)| n).collect(),
        None => default
            .iter()
            .filter_map(|n| parse_network(n).ok())
            .collect(),
    }
}

fn algorithm(text: &str) -> Result<DigestAlgorithm, String> {
    DigestAlgorithm::from_token(text).ok_or_else(|| {
        format!("unknown digest algorithm `{text}`, expected \"SHA-256\" or \"MD5\"")
    })
}

fn security(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> SecurityConfig {
    ctx.check_keys(
        s,
        &[
            "max_auth_failures",
            "failure_window",
            "ban_for",
            "allow",
            "deny",
            "rate_limit",
            "rate_burst",
            "nonce_lifetime",
            "digest_algorithms",
            "md5_only_user_agents",
            "message_timeout",
            "unauthenticated_idle",
            "max_connections_per_source",
            "alert_email",
        ],
    );
    let to_u32 = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let max_auth_failures = to_u32(ctx.integer(s, "max_auth_failures", 1..=1_000_000, 5));
    let failure_window = ctx.duration(s, "failure_window", Duration::from_secs(60));
    let ban_for = ctx.duration(s, "ban_for", Duration::from_secs(3600));
    let allow = networks(ctx, s, "allow", &["0.0.0.0/0", "::/0"]);
    let deny = networks(ctx, s, "deny", &[]);
    let rate_limit = to_u32(ctx.integer(s, "rate_limit", 1..=10_000_000, 200));
    let rate_burst = to_u32(ctx.integer(s, "rate_burst", 1..=10_000_000, 400));
    let nonce_lifetime = ctx.duration(s, "nonce_lifetime", Duration::from_secs(300));
    for (key, d) in [
        ("failure_window", failure_window),
        ("nonce_lifetime", nonce_lifetime),
    ] {
        if d.is_zero()
            && let Some(v) = s.get(key)
        {
            ctx.error(
                v.span(),
                format!("`{key}` in [security] must be longer than 0s"),
            );
        }
    }
    if secs(ban_for) > i64::from(u32::MAX)
        && let Some(v) = s.get("ban_for")
    {
        ctx.error(v.span(), "`ban_for` in [security] is too long".into());
    }
    let digest_algorithms = match ctx.list(s, "digest_algorithms", algorithm) {
        Some(list) => {
            let mut out: Vec<DigestAlgorithm> = Vec::new();
            for (a, span) in list {
                if out.contains(&a) {
                    ctx.error(
                        span,
                        format!("digest algorithm {} is given twice", a.name()),
                    );
                } else {
                    out.push(a);
                }
            }
            if let Some(v) = s.get("digest_algorithms")
                && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty())
            {
                ctx.error(
                    v.span(),
                    "`digest_algorithms` must name at least one algorithm".into(),
                );
            }
            out
        }
        None => vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
    };
    let md5_only_user_agents = match ctx.list(s, "md5_only_user_agents", |t: &str| {
        if t.trim().is_empty() {
            Err("an empty User-Agent pattern would match every phone".to_string())
        } else {
            Ok(t.to_ascii_lowercase())
        }
    }) {
        Some(list) => list.into_iter().map(|(pattern, _)| pattern).collect(),
        None => DEFAULT_MD5_ONLY_USER_AGENTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let message_timeout = ctx.duration(s, "message_timeout", Duration::from_secs(10));
    let unauthenticated_idle = ctx.duration(s, "unauthenticated_idle", Duration::from_secs(30));
    for (key, d) in [
        ("message_timeout", message_timeout),
        ("unauthenticated_idle", unauthenticated_idle),
    ] {
        if d.is_zero()
            && let Some(v) = s.get(key)
        {
            ctx.error(
                v.span(),
                format!("`{key}` in [security] must be longer than 0s"),
            );
        }
    }
    let max_connections_per_source =
        to_u32(ctx.integer(s, "max_connections_per_source", 0..=1_000_000, 128));
    let alert_email = ctx
        .parsed(s, "alert_email", |a| {
            if a.contains('@') {
                Ok(a.to_string())
            } else {
                Err(format!(
                    "bad alert_email `{a}`: expected an address such as \"it@example.com\""
                ))
            }
        })
        .map(|(a, _)| a);
    SecurityConfig {
        alert_email,
        max_auth_failures,
        failure_window,
        ban_for,
        allow,
        deny,
        rate_limit,
        rate_burst,
        nonce_lifetime,
        digest_algorithms,
        md5_only_user_agents,
        message_timeout,
        unauthenticated_idle,
        max_connections_per_source,
    }
}

/// Clients known to fail when a SHA-256 challenge is offered at all: baresip 1.0 (libre)
/// aborts on any challenge it cannot answer, SIPp 3.6 answers only the first one.
const DEFAULT_MD5_ONLY_USER_AGENTS: [&str; 2] = ["baresip", "sipp"];

fn web(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> WebConfig {
    ctx.check_keys(s, &["listen", "tls"]);
    let tls = ctx.boolean(s, "tls", false);
    let listen = ctx
        .parsed(s, "listen", |t| {
            parse_socket_addr(t).map_err(|m| format!("bad web listen address: {m}"))
        })
        .map_or(SocketAddr::from(([127, 0, 0, 1], 8080)), |(a, _)| a);
    WebConfig { listen, tls }
}

fn voicemail(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> VoicemailConfig {
    ctx.check_keys(
        s,
        &[
            "storage",
            "sounds",
            "operator",
            "min_message",
            "max_message",
            "silence",
            "max_greeting",
            "max_logins",
        ],
    );
    let sounds = ctx
        .string(s, "sounds")
        .is_some()
        .then(|| ctx.path(s, "sounds", "sounds"));
    VoicemailConfig {
        storage: ctx.path(s, "storage", "data/voicemail"),
        sounds,
        operator: ctx.string(s, "operator").map(|(o, _)| o.to_string()),
        min_message: ctx.duration(s, "min_message", Duration::from_secs(1)),
        max_message: ctx.duration(s, "max_message", Duration::from_secs(300)),
        silence: ctx.duration(s, "silence", Duration::from_secs(10)),
        max_greeting: ctx.duration(s, "max_greeting", Duration::from_secs(60)),
        max_logins: u32::try_from(ctx.integer(s, "max_logins", 1..=20, 3)).unwrap_or(3),
    }
}

fn smtp(ctx: &mut Ctx<'_>, s: &Section<'_, '_>, domain: &str) -> Option<SmtpConfig> {
    ctx.check_keys(s, &["url", "from", "queue"]);
    if !s.is_present() {
        return None;
    }
    let queue = ctx.path(s, "queue", "data/mail-queue");
    let url = ctx.parsed(s, "url", |u| {
        if u.starts_with("smtp://") || u.starts_with("smtps://") {
            Ok(u.to_string())
        } else {
            Err(format!(
                "bad smtp url `{u}`: expected smtp://HOST:PORT or smtps://HOST:PORT"
            ))
        }
    });
    if s.get("url").is_none() {
        ctx.missing(s, "url");
    }
    let from = ctx
        .parsed(s, "from", |f| {
            if f.contains('@') {
                Ok(f.to_string())
            } else {
                Err(format!(
                    "bad sender `{f}`: expected an address such as \"PBX <pbx@example.com>\""
                ))
            }
        })
        .map_or_else(|| format!("PBX <pbx@{domain}>"), |(f, _)| f);
    Some(SmtpConfig {
        url: url.map(|(u, _)| u).unwrap_or_default(),
        from,
        queue,
    })
}

fn dialplan(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> DialplanConfig {
    ctx.check_keys(s, &["file"]);
    let Some((name, span)) = ctx.string(s, "file") else {
        return DialplanConfig { file: None };
    };
    let file = ctx.base_dir.join(name);
    if !file.is_file() {
        ctx.error(span, format!("dialplan file not found: {}", file.display()));
    }
    DialplanConfig { file: Some(file) }
}

fn trace(ctx: &mut Ctx<'_>, s: &Section<'_, '_>) -> TraceConfig {
    use crate::trace::{Target, filter};
    ctx.check_keys(
        s,
        &[
            "sources",
            "extensions",
            "log",
            "file",
            "hep",
            "hep_id",
            "hep_password",
        ],
    );
    let mut targets = Vec::new();
    for (net, _) in ctx
        .list(s, "sources", filter::parse_source)
        .unwrap_or_default()
    {
        targets.push(Target::Source(net));
    }
    for (user, _) in ctx
        .list(s, "extensions", filter::parse_extension)
        .unwrap_or_default()
    {
        targets.push(Target::Extension(user));
    }
    let log = ctx.boolean(s, "log", true);
    let file = match ctx.string(s, "file") {
        Some(("", span)) => {
            ctx.error(span, "`file` in [trace] must not be empty".into());
            None
        }
        Some((name, _)) => Some(ctx.base_dir.join(name)),
        None => None,
    };
    let hep = ctx
        .parsed(s, "hep", |t| match t.strip_prefix("udp:") {
            Some(addr) => parse_socket_addr(addr).map_err(|m| format!("bad HEP address: {m}")),
            None => Err(format!(
                "bad HEP address `{t}`: expected udp:IP:PORT, such as \"udp:127.0.0.1:9060\""
            )),
        })
        .map(|(addr, _)| addr);
    let hep_id = u32::try_from(ctx.integer(s, "hep_id", 0..=i64::from(u32::MAX), 1)).unwrap_or(1);
    let hep_password = ctx.string(s, "hep_password").map(|(p, _)| p.to_string());
    TraceConfig {
        targets,
        log,
        file,
        hep,
        hep_id,
        hep_password,
    }
}

#[cfg(test)]
mod trunk_setup_tests {
    use std::path::Path;
    use std::time::Duration;

    fn load(calls: &str) -> Result<super::super::Config, Vec<String>> {
        let text = format!("[sip]\ndomain = \"x\"\n[calls]\n{calls}");
        super::super::load_str(&text, Path::new("pbx.toml"), Path::new("/tmp"))
            .map_err(|e| e.lines())
    }

    #[test]
    fn trunk_setup_timeout_defaults_to_5s_and_is_never_zero() {
        let config = load("").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.calls.trunk_setup_timeout, Duration::from_secs(5));
        let config = load("trunk_setup_timeout = \"2s\"\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.calls.trunk_setup_timeout, Duration::from_secs(2));
        let errors = load("trunk_setup_timeout = \"0s\"\n")
            .err()
            .unwrap_or_default();
        assert_eq!(
            errors,
            ["pbx.toml:4:23: `trunk_setup_timeout` must be more than 0s"]
        );
    }
}

#[cfg(test)]
mod dns_tests {
    use std::path::Path;

    fn load(dns: &str) -> Result<super::super::Config, Vec<String>> {
        let text = format!("[sip]\ndomain = \"x\"\n[dns]\n{dns}");
        super::super::load_str(&text, Path::new("pbx.toml"), Path::new("/tmp"))
            .map_err(|e| e.lines())
    }

    #[test]
    fn nameservers_default_to_the_systems_and_are_ip_and_port() {
        let config = load("").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(config.dns.nameservers.is_empty());
        let config = load("nameservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let shown: Vec<String> = config
            .dns
            .nameservers
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(shown, ["127.0.0.1:5353", "[::1]:53"]);
        let errors = load("nameservers = [\"ns.example.net\"]\n")
            .err()
            .unwrap_or_default();
        assert_eq!(
            errors,
            [
                "pbx.toml:4:16: bad nameserver `ns.example.net`: expected IP:PORT such as \"192.0.2.53:53\""
            ]
        );
    }
}
