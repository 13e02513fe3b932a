//! From what a form or the API sent to the store's types, with every problem tied to its
//! field. The rules are the store's own (`NewExtension::problems`,
//! `ExtensionChanges::problems`, which the CLI uses too): each field is checked alone through
//! them, so the web and the CLI cannot disagree.

use ipnet::IpNet;
use pbx_store::{ExtensionChanges, NewExtension};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// The problems of a form, looked up by field in the templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    /// The message for `field`, empty when it has none.
    pub fn of(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|p| p.field == field)
            .map_or("", |p| p.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push(&mut self, field: &'static str, problems: Vec<String>) {
        if let Some(message) = problems.into_iter().next() {
            self.0.push(FieldError { field, message });
        }
    }
}

/// A new extension as sent: text fields, empty meaning "none".
#[derive(Debug, Clone, Default)]
pub struct NewInput {
    pub number: String,
    pub password: String,
    pub name: String,
    pub email: String,
    pub pin: String,
    pub media_encryption: String,
    /// CIDRs or addresses, separated by commas, spaces or new lines.
    pub allowed_networks: String,
    /// Its own public number (caller ID on trunks); empty: none.
    pub did: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn changes_probe(f: impl FnOnce(&mut ExtensionChanges)) -> Vec<String> {
    let mut c = ExtensionChanges::default();
    f(&mut c);
    c.problems()
}

/// Networks as the CLI's `--allow` takes them (CIDR), or a bare address (one host).
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("bad network `{s}`: expected a CIDR such as 192.168.1.0/24"))
        })
        .collect()
}

pub fn new_extension(input: &NewInput) -> Result<NewExtension, Problems> {
    let mut p = Problems::default();
    let number = input.number.trim().to_string();
    p.push(
        "number",
        NewExtension {
            number: number.clone(),
            password: "x".into(),
            ..NewExtension::default()
        }
        .problems(),
    );
    p.push(
        "password",
        changes_probe(|c| c.password = Some(input.password.clone())),
    );
    let name = opt(&input.name);
    p.push("name", changes_probe(|c| c.name = name.clone()));
    let email = opt(&input.email);
    p.push("email", changes_probe(|c| c.email = email.clone()));
    let pin = opt(&input.pin);
    p.push("pin", changes_probe(|c| c.pin = pin.clone()));
    let media_encryption = opt(&input.media_encryption);
    p.push(
        "media_encryption",
        changes_probe(|c| c.media_encryption = media_encryption.clone()),
    );
    let did = opt(&input.did);
    p.push("did", changes_probe(|c| c.did = did.clone()));
    let allowed_networks = match parse_networks(&input.allowed_networks) {
        Ok(nets) => nets,
        Err(e) => {
            p.push("allowed_networks", vec![e]);
            Vec::new()
        }
    };
    let ext = NewExtension {
        number,
        password: input.password.clone(),
        name,
        email,
        pin,
        allowed_networks,
        media_encryption,
        did,
    };
    // Whatever the field checks missed, the whole check catches.
    if p.is_empty() {
        p.push("number", ext.problems());
    }
    if p.is_empty() { Ok(ext) } else { Err(p) }
}

/// Changes as sent: `None` leaves a field as it is; an empty name, e-mail or context clears
/// it; an empty PIN or password keeps the old one.
#[derive(Debug, Clone, Default)]
pub struct ChangeInput {
    pub password: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub pin: Option<String>,
    pub media_encryption: Option<String>,
    pub context: Option<String>,
    /// Empty clears it.
    pub did: Option<String>,
}

/// `contexts`: those of the running dialplan (`None`: no dialplan, so no context can apply).
pub fn changes(
    input: &ChangeInput,
    contexts: Option<&[String]>,
) -> Result<ExtensionChanges, Problems> {
    let keep_if_empty = |s: &Option<String>| s.as_deref().and_then(opt);
    let changes = ExtensionChanges {
        password: input.password.clone().filter(|p| !p.is_empty()),
        name: input.name.as_deref().map(|s| s.trim().to_string()),
        email: input.email.as_deref().map(|s| s.trim().to_string()),
        pin: keep_if_empty(&input.pin),
        media_encryption: keep_if_empty(&input.media_encryption),
        context: input.context.as_deref().map(|s| s.trim().to_string()),
        // Not on the edit form yet: `pbx extension set --mwi-unsolicited`.
        mwi_unsolicited: None,
        did: input.did.as_deref().map(|s| s.trim().to_string()),
    };
    let mut p = Problems::default();
    p.push(
        "password",
        changes_probe(|c| c.password = changes.password.clone()),
    );
    p.push("name", changes_probe(|c| c.name = changes.name.clone()));
    p.push("email", changes_probe(|c| c.email = changes.email.clone()));
    p.push("did", changes_probe(|c| c.did = changes.did.clone()));
    p.push("pin", changes_probe(|c| c.pin = changes.pin.clone()));
    p.push(
        "media_encryption",
        changes_probe(|c| c.media_encryption = changes.media_encryption.clone()),
    );
    let mut context = changes_probe(|c| c.context = changes.context.clone());
    if let Some(ctx) = changes.context.as_deref().filter(|c| !c.is_empty())
        && context.is_empty()
    {
        match contexts {
            None => context.push(format!(
                "context `{ctx}`: the config names no dialplan ([dialplan] file)"
            )),
            Some(known) if !known.iter().any(|k| k == ctx) => context.push(format!(
                "no context `{ctx}` in the dialplan (it has: {})",
                known.join(", ")
            )),
            Some(_) => {}
        }
    }
    p.push("context", context);
    if p.is_empty() { Ok(changes) } else { Err(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_extension_problems_by_field() {
        let input = NewInput {
            number: "1".into(),
            password: "pw".into(),
            email: "not-an-address".into(),
            pin: "12".into(),
            media_encryption: "maybe".into(),
            allowed_networks: "10.0.0.0/8, bogus".into(),
            ..NewInput::default()
        };
        let p = new_extension(&input).err().unwrap_or_default();
        for field in [
            "number",
            "email",
            "pin",
            "media_encryption",
            "allowed_networks",
        ] {
            assert!(!p.of(field).is_empty(), "{field}: {p:?}");
        }
        assert_eq!(p.of("name"), "");
        assert_eq!(p.of("password"), "");
    }

    #[test]
    fn new_extension_ok() {
        let input = NewInput {
            number: " 1000 ".into(),
            password: "pw".into(),
            name: "Alice".into(),
            allowed_networks: "10.0.0.0/8 192.0.2.7".into(),
            ..NewInput::default()
        };
        let ext = new_extension(&input).ok();
        assert_eq!(ext.as_ref().map(|e| e.number.as_str()), Some("1000"));
        assert_eq!(ext.map(|e| e.allowed_networks.len()), Some(2));
    }

    #[test]
    fn changes_check_the_context_against_the_plan() {
        let known = vec!["staff".to_string(), "lobby".to_string()];
        let input = ChangeInput {
            context: Some("nowhere".into()),
            ..ChangeInput::default()
        };
        let p = changes(&input, Some(&known)).err().unwrap_or_default();
        assert!(p.of("context").contains("staff, lobby"), "{p:?}");
        assert!(changes(&input, None).is_err());
        let ok = ChangeInput {
            context: Some("lobby".into()),
            pin: Some(String::new()),
            ..ChangeInput::default()
        };
        let c = changes(&ok, Some(&known)).ok().unwrap_or_default();
        assert_eq!(c.context.as_deref(), Some("lobby"));
        assert_eq!(c.pin, None);
        // An empty context clears it: always allowed.
        let clear = ChangeInput {
            context: Some(String::new()),
            ..ChangeInput::default()
        };
        assert!(changes(&clear, None).is_ok());
    }
}
