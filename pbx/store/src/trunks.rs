//! Trunks: the legacy PBX, POTS gateways and SIP providers the PBX talks to
//! (`pbx trunk add|list|remove`). Unlike an extension's, a trunk's password is kept as given:
//! the PBX is the client here, and the realm its digest needs is only known from the
//! provider's challenge. It is never listed or logged.
//!
//! Beside each trunk the running PBX keeps its state (registered, up, down) in
//! `trunk_status`, with the time until which it holds, so that `pbx trunk list` can show it
//! from another process and says `unknown` once the PBX stopped refreshing it.

use ipnet::IpNet;
use sqlx::Row;
use sqlx::any::AnyRow;

use async_trait::async_trait;

use crate::ports::TrunkStore;
use crate::{Store, StoreError, from_db, now_unix, to_db};

/// The transports a trunk may use.
pub const TRUNK_TRANSPORTS: [&str; 3] = ["udp", "tcp", "tls"];
/// How the caller ID of an outbound call is presented: the calling extension's own number,
/// the trunk's `caller_id`, or anonymous (`Privacy: id`, RFC 3325 §9.3).
pub const CALLER_ID_MODES: [&str; 3] = ["extension", "trunk", "anonymous"];
/// The longest setup time a trunk may have, in seconds (a call waits no longer than this
/// for the trunk's first response).
pub const MAX_TRUNK_SETUP_TIMEOUT: u32 = 300;
/// How a trunk carries DTMF: RFC 4733 events in the media, SIP INFO, or RFC 4733 when the
/// SDP agrees on `telephone-event` and INFO otherwise.
pub const DTMF_MODES: [&str; 3] = ["rfc4733", "info", "auto"];
/// The dialplan context of a trunk's inbound calls when none is given.
pub const DEFAULT_TRUNK_CONTEXT: &str = "from-trunk";

/// A trunk as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct Trunk {
    /// 1 to 32 of `A-Z a-z 0-9 - _`: the `NAME` of the dial target `trunk:NAME/NUMBER`.
    pub name: String,
    /// An IP address or a DNS name.
    pub host: String,
    /// `None`: 5060, or 5061 for TLS (or what DNS SRV says, RFC 3263).
    pub port: Option<u16>,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Digest user name; empty: none.
    pub username: String,
    /// Digest password, kept as given (see the module comment); empty: none.
    pub password: String,
    /// Whether the PBX registers to the trunk (with the credentials).
    pub register: bool,
    /// Networks whose INVITEs are this trunk's calls without digest (IP authentication).
    pub allowed_networks: Vec<IpNet>,
    /// The dialplan context of its inbound calls.
    pub context: String,
    /// `host[:port]` every request to the trunk goes through; empty: none.
    pub outbound_proxy: String,
    /// One of [`CALLER_ID_MODES`].
    pub caller_id_mode: String,
    /// The trunk's default number (for `caller_id_mode = trunk`); empty: none.
    pub caller_id: String,
    /// Calls at once through the trunk; 0: no limit.
    pub channels: u32,
    /// `required`, `optional` or `off` (as an extension's).
    pub media_encryption: String,
    /// Codec names in preference order; empty: every codec the PBX has.
    pub codecs: Vec<String>,
    /// Seconds without any response to an INVITE before the next trunk is tried; `None`:
    /// `[calls] trunk_setup_timeout`.
    pub setup_timeout: Option<u32>,
    /// TLS: a CA file trusted for the trunk's certificate besides the system's roots;
    /// empty: `[sip] tls_ca_file`.
    pub tls_ca_file: String,
    /// TLS: whether the trunk's certificate is verified (false only by an admin's choice).
    pub tls_verify: bool,
    /// One of [`DTMF_MODES`].
    pub dtmf: String,
    /// Unix seconds.
    pub created_at: u64,
}

// Hand-written so that the password never reaches a log through `{:?}`.
impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("register", &self.register)
            .field("allowed_networks", &self.allowed_networks)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Trunk {
    /// A trunk to `host` with the safe defaults: UDP, no credentials, no registration, no
    /// networks, context `from-trunk`, the extension's caller ID, no channel limit, SRTP
    /// `optional`, every codec.
    pub fn new(name: &str, host: &str) -> Trunk {
        Trunk {
            name: name.to_string(),
            host: host.to_string(),
            port: None,
            transport: "udp".to_string(),
            username: String::new(),
            password: String::new(),
            register: false,
            allowed_networks: Vec::new(),
            context: DEFAULT_TRUNK_CONTEXT.to_string(),
            outbound_proxy: String::new(),
            caller_id_mode: "extension".to_string(),
            caller_id: String::new(),
            channels: 0,
            media_encryption: "optional".to_string(),
            codecs: Vec::new(),
            setup_timeout: None,
            tls_ca_file: String::new(),
            tls_verify: true,
            dtmf: "rfc4733".to_string(),
            created_at: 0,
        }
    }

    /// The port to use: the given one, else the transport's default (RFC 3261 §19.1.2).
    pub fn port_or_default(&self) -> u16 {
        self.port
            .unwrap_or(if self.transport == "tls" { 5061 } else { 5060 })
    }

    /// `host:port` as shown (an IPv6 address in brackets).
    pub fn address(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{}", self.port_or_default())
    }

    /// Every problem with the trunk's fields (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let n = &self.name;
        if n.is_empty()
            || n.len() > 32
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            out.push(format!(
                "bad trunk name `{n}`: expected 1 to 32 letters, digits, `-` or `_`"
            ));
        }
        if !host_ok(&self.host) {
            out.push(format!(
                "bad host `{}`: expected an IP address or a DNS name",
                self.host
            ));
        }
        if self.port == Some(0) {
            out.push("bad port 0".to_string());
        }
        if !TRUNK_TRANSPORTS.contains(&self.transport.as_str()) {
            out.push(format!(
                "bad transport `{}`: expected udp, tcp or tls",
                self.transport
            ));
        }
        if self.username.is_empty() != self.password.is_empty() {
            out.push("give --username and --password together".to_string());
        }
        if bad_text(&self.username) || self.username.contains([':', '@', '"']) {
            out.push("the user name contains characters a SIP URI cannot carry".to_string());
        }
        if self.password.chars().any(char::is_control) {
            out.push("the password contains control characters".to_string());
        }
        if self.register && self.username.is_empty() {
            out.push("--register needs --username and --password".to_string());
        }
        if self.context.is_empty() || bad_text(&self.context) {
            out.push(format!(
                "bad context `{}`: not empty, no spaces or control characters",
                self.context
            ));
        }
        if !self.outbound_proxy.is_empty() && parse_host_port(&self.outbound_proxy).is_err() {
            out.push(format!(
                "bad outbound proxy `{}`: expected HOST[:PORT]",
                self.outbound_proxy
            ));
        }
        if !CALLER_ID_MODES.contains(&self.caller_id_mode.as_str()) {
            out.push(format!(
                "bad caller ID mode `{}`: expected extension, trunk or anonymous",
                self.caller_id_mode
            ));
        }
        if !self.caller_id.is_empty() && !caller_id_ok(&self.caller_id) {
            out.push(format!(
                "bad caller ID `{}`: expected digits, optionally after `+`",
                self.caller_id
            ));
        }
        if !DTMF_MODES.contains(&self.dtmf.as_str()) {
            out.push(format!(
                "bad DTMF mode `{}`: expected rfc4733, info or auto",
                self.dtmf
            ));
        }
        if self.caller_id_mode == "trunk" && self.caller_id.is_empty() {
            out.push("caller ID mode `trunk` needs --caller-id".to_string());
        }
        if !crate::MEDIA_ENCRYPTION.contains(&self.media_encryption.as_str()) {
            out.push(format!(
                "bad media encryption `{}`: expected required, optional or off",
                self.media_encryption
            ));
        }
        if let Some(secs) = self.setup_timeout
            && !(1..=MAX_TRUNK_SETUP_TIMEOUT).contains(&secs)
        {
            out.push(format!(
                "bad setup timeout {secs}: expected 1 to {MAX_TRUNK_SETUP_TIMEOUT} seconds"
            ));
        }
        for codec in &self.codecs {
            if codec.is_empty()
                || !codec
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'/')
            {
                out.push(format!("bad codec name `{codec}`"));
            }
        }
        out
    }
}

/// What the running PBX last knew of a trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkStatus {
    pub name: String,
    /// `registered`, `up`, `down` (or `unknown` while a first attempt is under way).
    pub state: String,
    /// Why, in a few words (`200 OK, expires in 3600s`, `403 Forbidden, retry in 300s`).
    pub detail: String,
    /// Unix seconds until which the state holds: past it (the PBX stopped) it is unknown.
    pub valid_until: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

impl TrunkStatus {
    /// The state as of `now_unix`: `unknown` once it is out of date.
    pub fn state_at(&self, now_unix: u64) -> &str {
        if self.valid_until > now_unix {
            &self.state
        } else {
            "unknown"
        }
    }
}

/// Splits `HOST[:PORT]` (`[v6]:port` or a bare IPv6 address too) and checks both parts.
pub fn parse_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("bad host `{text}`: expected HOST[:PORT]");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address: no port can follow it unbracketed.
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if !host_ok(host) {
        return Err(format!(
            "bad host `{host}`: expected an IP address or a DNS name"
        ));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(format!("bad port `{p}` in `{text}`: expected 1 to 65535")),
        },
    };
    Ok((host.to_string(), port))
}

/// An IP address, or a DNS name (RFC 1123 §2.1 labels).
fn host_ok(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // All digits and dots is an IPv4 address that did not parse, not a name.
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn bad_text(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn caller_id_ok(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn join(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(",")
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn trunk_from(row: &AnyRow) -> Result<Trunk, StoreError> {
    let name: String = row.try_get("name")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("trunk {name}: bad {what}"));
    let port = row
        .try_get::<Option<i64>, _>("port")?
        .map(|p| u16::try_from(p).map_err(|_| corrupt("port")))
        .transpose()?;
    let allowed_networks = split(&row.try_get::<String, _>("allowed_networks")?)
        .map(|s| s.parse().map_err(|_| corrupt("network")))
        .collect::<Result<Vec<IpNet>, _>>()?;
    Ok(Trunk {
        host: row.try_get("host")?,
        port,
        transport: row.try_get("transport")?,
        username: row.try_get("username")?,
        password: row.try_get("password")?,
        register: row.try_get::<i64, _>("register")? != 0,
        allowed_networks,
        context: row.try_get("context")?,
        outbound_proxy: row.try_get("outbound_proxy")?,
        caller_id_mode: row.try_get("caller_id_mode")?,
        caller_id: row.try_get("caller_id")?,
        channels: u32::try_from(row.try_get::<i64, _>("channels")?).unwrap_or(0),
        media_encryption: row.try_get("media_encryption")?,
        codecs: split(&row.try_get::<String, _>("codecs")?)
            .map(str::to_string)
            .collect(),
        setup_timeout: row
            .try_get::<Option<i64>, _>("setup_timeout")?
            .map(|s| u32::try_from(s).map_err(|_| corrupt("setup timeout")))
            .transpose()?,
        tls_ca_file: row.try_get("tls_ca_file")?,
        tls_verify: row.try_get::<i64, _>("tls_verify")? != 0,
        dtmf: row.try_get("dtmf")?,
        created_at: from_db(row.try_get("created_at")?),
        name,
    })
}

macro_rules! columns {
    () => {
        "name, host, port, transport, username, password, register, allowed_networks, \
         context, outbound_proxy, caller_id_mode, caller_id, channels, media_encryption, \
         codecs, setup_timeout, created_at, tls_ca_file, tls_verify, dtmf"
    };
}

#[async_trait]
impl TrunkStore for Store {
    async fn add_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        if let Some(problem) = trunk.problems().into_iter().next() {
            return Err(StoreError::Invalid(problem));
        }
        sqlx::query(concat!(
            "INSERT INTO trunks (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20)"
        ))
        .bind(&trunk.name)
        .bind(&trunk.host)
        .bind(trunk.port.map(i64::from))
        .bind(&trunk.transport)
        .bind(&trunk.username)
        .bind(&trunk.password)
        .bind(i64::from(trunk.register))
        .bind(join(trunk.allowed_networks.iter().map(IpNet::to_string)))
        .bind(&trunk.context)
        .bind(&trunk.outbound_proxy)
        .bind(&trunk.caller_id_mode)
        .bind(&trunk.caller_id)
        .bind(i64::from(trunk.channels))
        .bind(&trunk.media_encryption)
        .bind(join(trunk.codecs.iter().cloned()))
        .bind(trunk.setup_timeout.map(i64::from))
        .bind(to_db(now_unix()))
        .bind(&trunk.tls_ca_file)
        .bind(i64::from(trunk.tls_verify))
        .bind(&trunk.dtmf)
        .execute(self.pool())
        .await
        .map_err(|e| StoreError::unique(e, || format!("trunk {}", trunk.name)))?;
        Ok(())
    }

    async fn list_trunks(&self) -> Result<Vec<Trunk>, StoreError> {
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM trunks ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(trunk_from).collect()
    }

    async fn remove_trunk(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let removed = sqlx::query("DELETE FROM trunks WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM trunk_status WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn update_trunk(&self, trunk: &Trunk) -> Result<bool, StoreError> {
        if let Some(problem) = trunk.problems().into_iter().next() {
            return Err(StoreError::Invalid(problem));
        }
        let updated = sqlx::query(
            "UPDATE trunks SET host = $2, port = $3, transport = $4, username = $5, \
             password = $6, register = $7, allowed_networks = $8, context = $9, \
             outbound_proxy = $10, caller_id_mode = $11, caller_id = $12, channels = $13, \
             media_encryption = $14, codecs = $15, setup_timeout = $16, tls_ca_file = $17, \
             tls_verify = $18, dtmf = $19 WHERE name = $1",
        )
        .bind(&trunk.name)
        .bind(&trunk.host)
        .bind(trunk.port.map(i64::from))
        .bind(&trunk.transport)
        .bind(&trunk.username)
        .bind(&trunk.password)
        .bind(i64::from(trunk.register))
        .bind(join(trunk.allowed_networks.iter().map(IpNet::to_string)))
        .bind(&trunk.context)
        .bind(&trunk.outbound_proxy)
        .bind(&trunk.caller_id_mode)
        .bind(&trunk.caller_id)
        .bind(i64::from(trunk.channels))
        .bind(&trunk.media_encryption)
        .bind(join(trunk.codecs.iter().cloned()))
        .bind(trunk.setup_timeout.map(i64::from))
        .bind(&trunk.tls_ca_file)
        .bind(i64::from(trunk.tls_verify))
        .bind(&trunk.dtmf)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn set_trunk_status(&self, status: &TrunkStatus) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO trunk_status (name, state, detail, valid_until, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
             state = excluded.state, detail = excluded.detail, \
             valid_until = excluded.valid_until, updated_at = excluded.updated_at",
        )
        .bind(&status.name)
        .bind(&status.state)
        .bind(&status.detail)
        .bind(to_db(status.valid_until))
        .bind(to_db(status.updated_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn trunk_statuses(&self) -> Result<Vec<TrunkStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, state, detail, valid_until, updated_at FROM trunk_status ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TrunkStatus {
                    name: row.try_get("name")?,
                    state: row.try_get("state")?,
                    detail: row.try_get("detail")?,
                    valid_until: from_db(row.try_get("valid_until")?),
                    updated_at: from_db(row.try_get("updated_at")?),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            parse_host_port("sip.example.com:5080"),
            Ok(("sip.example.com".into(), Some(5080)))
        );
        assert_eq!(parse_host_port("10.0.0.1"), Ok(("10.0.0.1".into(), None)));
        assert_eq!(
            parse_host_port("[2001:db8::1]:5062"),
            Ok(("2001:db8::1".into(), Some(5062)))
        );
        assert_eq!(
            parse_host_port("2001:db8::1"),
            Ok(("2001:db8::1".into(), None))
        );
        for bad in [
            "",
            "sip..example",
            "-a.example",
            "a b",
            "host:0",
            "host:70000",
            "host:x",
            "999.1.1.1",
            "[::1",
            "[::1]x",
            "user@host",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn problems_are_named() {
        assert!(
            Trunk::new("carrier", "sip.example.com")
                .problems()
                .is_empty()
        );
        let mut t = Trunk::new("bad name", "sip.example.com");
        t.register = true;
        t.transport = "sctp".into();
        t.username = "u".into();
        let problems = t.problems().join("\n");
        assert!(problems.contains("bad trunk name"), "{problems}");
        assert!(problems.contains("bad transport `sctp`"), "{problems}");
        assert!(problems.contains("together"), "{problems}");
        let mut t = Trunk::new("x", "h");
        t.register = true;
        assert!(t.problems().join("").contains("--register needs"));
        t.caller_id_mode = "trunk".into();
        assert!(t.problems().join("").contains("needs --caller-id"));
    }

    #[test]
    fn default_ports_and_address() {
        let mut t = Trunk::new("x", "2001:db8::1");
        assert_eq!(t.address(), "[2001:db8::1]:5060");
        t.transport = "tls".into();
        assert_eq!(t.port_or_default(), 5061);
        t.port = Some(5080);
        assert_eq!(t.port_or_default(), 5080);
    }

    #[test]
    fn debug_hides_the_password() {
        let mut t = Trunk::new("x", "h");
        t.username = "acct".into();
        t.password = "Sup3rSecret".into();
        assert!(!format!("{t:?}").contains("Sup3rSecret"));
    }

    #[test]
    fn stale_status_is_unknown() {
        let s = TrunkStatus {
            name: "x".into(),
            state: "registered".into(),
            detail: String::new(),
            valid_until: 100,
            updated_at: 0,
        };
        assert_eq!(s.state_at(99), "registered");
        assert_eq!(s.state_at(100), "unknown");
    }
}
