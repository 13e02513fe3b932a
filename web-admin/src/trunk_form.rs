//! A trunk as a form or the API sends it (text fields) to the store's [`Trunk`], every
//! problem tied to its field. The rules are the store's own ([`Trunk::problems`], which
//! `pbx trunk add` applies too): its messages are sorted to their fields here, so the web and
//! the CLI cannot disagree on what a valid trunk is.

use pbx_store::{DEFAULT_TRUNK_CONTEXT, Trunk, parse_host_port};

use crate::validate::{FieldError, Problems, parse_networks};

/// A trunk as sent: text, empty meaning "the default" (or "none").
#[derive(Debug, Clone, Default)]
pub struct TrunkInput {
    pub name: String,
    /// `HOST[:PORT]`.
    pub host: String,
    pub transport: String,
    pub username: String,
    /// Empty on an edit: keep the stored one (while there is a user name).
    pub password: String,
    pub register: bool,
    /// CIDRs or addresses, separated by commas, spaces or new lines.
    pub allowed_networks: String,
    pub context: String,
    pub outbound_proxy: String,
    pub caller_id_mode: String,
    pub caller_id: String,
    /// Digits; empty: no limit.
    pub channels: String,
    pub media_encryption: String,
    /// Codec names separated by commas or spaces, in preference order.
    pub codecs: String,
    /// Seconds; empty: `[calls] trunk_setup_timeout`.
    pub setup_timeout: String,
}

impl TrunkInput {
    /// The stored trunk's fields, to edit: the password left empty (never shown back).
    pub fn from_trunk(t: &Trunk) -> TrunkInput {
        let host = match t.port {
            Some(_) => t.address(),
            None if t.host.contains(':') => format!("[{}]", t.host),
            None => t.host.clone(),
        };
        TrunkInput {
            name: t.name.clone(),
            host,
            transport: t.transport.clone(),
            username: t.username.clone(),
            password: String::new(),
            register: t.register,
            allowed_networks: t
                .allowed_networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            context: t.context.clone(),
            outbound_proxy: t.outbound_proxy.clone(),
            caller_id_mode: t.caller_id_mode.clone(),
            caller_id: t.caller_id.clone(),
            channels: if t.channels == 0 {
                String::new()
            } else {
                t.channels.to_string()
            },
            media_encryption: t.media_encryption.clone(),
            codecs: t.codecs.join(", "),
            setup_timeout: t.setup_timeout.map(|s| s.to_string()).unwrap_or_default(),
        }
    }
}

/// Which field a message of [`Trunk::problems`] is about, and the web's words for the
/// messages that name the CLI's flags.
const FIELDS: [(&str, &str, Option<&str>); 15] = [
    ("bad trunk name", "name", None),
    ("bad host", "host", None),
    ("bad port", "host", None),
    ("bad transport", "transport", None),
    (
        "give --username and --password together",
        "password",
        Some("give a user name and a password together"),
    ),
    ("the user name", "username", None),
    ("the password", "password", None),
    (
        "--register needs",
        "register",
        Some("registering needs a user name and a password"),
    ),
    ("bad context", "context", None),
    ("bad outbound proxy", "outbound_proxy", None),
    ("bad caller ID mode", "caller_id_mode", None),
    (
        "caller ID mode `trunk` needs",
        "caller_id",
        Some("caller ID mode `trunk` needs the trunk's caller ID"),
    ),
    ("bad caller ID", "caller_id", None),
    ("bad media encryption", "media_encryption", None),
    ("bad setup timeout", "setup_timeout", None),
];

fn field_of(message: &str) -> (&'static str, String) {
    FIELDS
        .iter()
        .find(|(prefix, _, _)| message.starts_with(prefix))
        .map_or(("codecs", message.to_string()), |(_, field, words)| {
            (
                *field,
                words.map_or_else(|| message.to_string(), str::to_string),
            )
        })
}

fn add(p: &mut Problems, field: &'static str, message: String) {
    if p.of(field).is_empty() {
        p.0.push(FieldError { field, message });
    }
}

fn or_default(text: &str, default: &str) -> String {
    match text.trim() {
        "" => default.to_string(),
        t => t.to_ascii_lowercase(),
    }
}

/// The trunk `input` describes. `stored`: the trunk being edited (its password stays when
/// none is given and the user name is kept); `None` for a new one.
pub fn trunk(input: &TrunkInput, stored: Option<&Trunk>) -> Result<Trunk, Problems> {
    let mut p = Problems::default();
    let name = stored.map_or_else(|| input.name.trim().to_string(), |t| t.name.clone());
    let (host, port) = match parse_host_port(input.host.trim()) {
        Ok(hp) => hp,
        Err(e) => {
            add(&mut p, "host", e);
            (input.host.trim().to_string(), None)
        }
    };
    let allowed_networks = parse_networks(&input.allowed_networks).unwrap_or_else(|e| {
        add(&mut p, "allowed_networks", e);
        Vec::new()
    });
    let channels = match input.channels.trim() {
        "" => 0,
        c => c.parse::<u32>().unwrap_or_else(|_| {
            add(
                &mut p,
                "channels",
                format!("bad channels `{c}`: expected a number (0 or empty: no limit)"),
            );
            0
        }),
    };
    let setup_timeout = match input.setup_timeout.trim() {
        "" => None,
        s => s.parse::<u32>().map(Some).unwrap_or_else(|_| {
            add(
                &mut p,
                "setup_timeout",
                format!("bad setup timeout `{s}`: expected seconds (empty: the global one)"),
            );
            None
        }),
    };
    let username = input.username.trim().to_string();
    let password = match stored {
        Some(t) if input.password.is_empty() && !username.is_empty() => t.password.clone(),
        _ => input.password.clone(),
    };
    let trunk = Trunk {
        port,
        transport: or_default(&input.transport, "udp"),
        username,
        password,
        register: input.register,
        allowed_networks,
        context: match input.context.trim() {
            "" => DEFAULT_TRUNK_CONTEXT.to_string(),
            c => c.to_string(),
        },
        outbound_proxy: input.outbound_proxy.trim().to_string(),
        caller_id_mode: or_default(&input.caller_id_mode, "extension"),
        caller_id: input.caller_id.trim().to_string(),
        channels,
        media_encryption: or_default(&input.media_encryption, "optional"),
        codecs: input
            .codecs
            .split([',', ' ', '\n', '\r', '\t'])
            .filter(|c| !c.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        setup_timeout,
        // Not on the form: the TLS settings made with `pbx trunk add` are kept.
        tls_ca_file: stored.map_or(String::new(), |t| t.tls_ca_file.clone()),
        tls_verify: stored.is_none_or(|t| t.tls_verify),
        created_at: stored.map_or(0, |t| t.created_at),
        // Not on the form yet (`pbx trunk add --dtmf`): an edit keeps it.
        dtmf: stored.map_or_else(|| "rfc4733".to_string(), |t| t.dtmf.clone()),
        ..Trunk::new(&name, &host)
    };
    for message in trunk.problems() {
        let (field, message) = field_of(&message);
        add(&mut p, field, message);
    }
    if p.is_empty() { Ok(trunk) } else { Err(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, host: &str) -> TrunkInput {
        TrunkInput {
            name: name.into(),
            host: host.into(),
            ..TrunkInput::default()
        }
    }

    #[test]
    fn an_edit_keeps_the_dtmf_mode() {
        let mut stored = Trunk::new("gw", "192.0.2.1");
        stored.dtmf = "info".into();
        let edited = trunk(&input("gw", "192.0.2.1"), Some(&stored)).ok();
        assert_eq!(edited.map(|t| t.dtmf).as_deref(), Some("info"));
        let new = trunk(&input("gw", "192.0.2.1"), None).ok();
        assert_eq!(new.map(|t| t.dtmf).as_deref(), Some("rfc4733"));
    }

    #[test]
    fn defaults_and_host_port() {
        let t = trunk(&input("carrier", "sip.example.com:5080"), None).ok();
        let t = t.unwrap_or_else(|| Trunk::new("", ""));
        assert_eq!((t.host.as_str(), t.port), ("sip.example.com", Some(5080)));
        assert_eq!(
            (
                t.transport.as_str(),
                t.context.as_str(),
                t.caller_id_mode.as_str(),
                t.media_encryption.as_str(),
                t.channels
            ),
            ("udp", "from-trunk", "extension", "optional", 0)
        );
    }

    #[test]
    fn every_problem_is_at_its_field() {
        let bad = TrunkInput {
            name: "bad name".into(),
            host: "sip..example".into(),
            transport: "sctp".into(),
            username: "us er".into(),
            password: "x".into(),
            register: true,
            allowed_networks: "10.0.0.0/8, bogus".into(),
            context: "a b".into(),
            outbound_proxy: "proxy:0".into(),
            caller_id_mode: "loud".into(),
            caller_id: "12ab".into(),
            channels: "-3".into(),
            media_encryption: "maybe".into(),
            codecs: "pcmu, op us".into(),
            setup_timeout: "soon".into(),
        };
        let p = trunk(&bad, None).err().unwrap_or_default();
        for field in [
            "name",
            "host",
            "transport",
            "username",
            "allowed_networks",
            "context",
            "outbound_proxy",
            "caller_id_mode",
            "caller_id",
            "channels",
            "media_encryption",
            "setup_timeout",
        ] {
            assert!(!p.of(field).is_empty(), "{field}: {p:?}");
        }
        let p = trunk(
            &TrunkInput {
                register: true,
                ..input("x", "h.example")
            },
            None,
        )
        .err()
        .unwrap_or_default();
        assert_eq!(
            p.of("register"),
            "registering needs a user name and a password"
        );
        let p = trunk(
            &TrunkInput {
                username: "acct".into(),
                ..input("x", "h.example")
            },
            None,
        )
        .err()
        .unwrap_or_default();
        assert_eq!(p.of("password"), "give a user name and a password together");
    }

    #[test]
    fn an_edit_keeps_the_password_unless_the_user_goes() {
        let mut stored = Trunk::new("carrier", "sip.example.com");
        stored.username = "acct".into();
        stored.password = "Secr3t".into();
        stored.created_at = 42;
        let mut form = TrunkInput::from_trunk(&stored);
        assert_eq!(form.password, "");
        form.name = "renamed".into();
        let t = trunk(&form, Some(&stored)).ok();
        let t = t.unwrap_or_else(|| Trunk::new("", ""));
        assert_eq!(
            (t.name.as_str(), t.password.as_str(), t.created_at),
            ("carrier", "Secr3t", 42)
        );
        form.username.clear();
        let t = trunk(&form, Some(&stored)).ok();
        assert_eq!(t.map(|t| t.password), Some(String::new()));
    }

    #[test]
    fn the_form_shows_the_port_and_brackets() {
        let mut t = Trunk::new("v6", "2001:db8::1");
        assert_eq!(TrunkInput::from_trunk(&t).host, "[2001:db8::1]");
        t.port = Some(5070);
        assert_eq!(TrunkInput::from_trunk(&t).host, "[2001:db8::1]:5070");
        let back = trunk(&TrunkInput::from_trunk(&t), Some(&t)).ok();
        assert_eq!(
            back.map(|b| (b.host, b.port)),
            Some(("2001:db8::1".into(), Some(5070)))
        );
    }

    #[test]
    fn the_setup_timeout_is_seconds_or_the_global_one() {
        let t = trunk(&input("carrier", "sip.example.com"), None).ok();
        assert_eq!(t.map(|t| t.setup_timeout), Some(None));
        let form = TrunkInput {
            setup_timeout: " 3 ".into(),
            ..input("carrier", "sip.example.com")
        };
        let t = trunk(&form, None).ok();
        assert_eq!(t.as_ref().map(|t| t.setup_timeout), Some(Some(3)));
        let back = t.map(|t| TrunkInput::from_trunk(&t).setup_timeout);
        assert_eq!(back.as_deref(), Some("3"));
        let zero = TrunkInput {
            setup_timeout: "0".into(),
            ..input("carrier", "sip.example.com")
        };
        let p = trunk(&zero, None).err().unwrap_or_default();
        assert!(p.of("setup_timeout").contains("1 to 300"), "{p:?}");
    }
}
