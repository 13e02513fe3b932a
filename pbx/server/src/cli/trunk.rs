//! `pbx trunk add|list|remove`. The state column is what the running PBX last wrote to the
//! store (`trunk_status`); once that is out of date (the PBX stopped) it reads `unknown`.

use ipnet::IpNet;

use super::{CliError, TrunkCommand, table};
use crate::config::Config;
use pbx_store::{Trunk, TrunkStore, now_unix, parse_host_port};

/// `--allow`: a CIDR or one address.
pub(super) fn parse_network(text: &str) -> Result<IpNet, String> {
    pbx_engine::security::acl::parse_network(text.trim())
}

pub(super) async fn run(
    store: &dyn TrunkStore,
    config: &Config,
    cmd: TrunkCommand,
) -> Result<(), CliError> {
    match cmd {
        TrunkCommand::Add {
            name,
            host,
            transport,
            username,
            password,
            register,
            allow,
            context,
            outbound_proxy,
            caller_id_mode,
            caller_id,
            channels,
            media_encryption,
            codecs,
            setup_timeout,
            tls_ca_file,
            tls_no_verify,
            dtmf,
        } => {
            let (host, port) = parse_host_port(&host).map_err(|e| CliError::Input(vec![e]))?;
            let tls_ca_file = match tls_ca_file {
                // Stored absolute: the PBX may run from another directory.
                Some(path) => match std::fs::canonicalize(&path) {
                    Ok(path) if path.is_file() => path.display().to_string(),
                    _ => {
                        let problem = format!("--tls-ca-file: no such file {}", path.display());
                        return Err(CliError::Input(vec![problem]));
                    }
                },
                None => String::new(),
            };
            let trunk = Trunk {
                port,
                transport: transport.to_ascii_lowercase(),
                username: username.unwrap_or_default(),
                password: password.unwrap_or_default(),
                register,
                allowed_networks: allow,
                context,
                outbound_proxy: outbound_proxy.unwrap_or_default(),
                caller_id_mode,
                caller_id: caller_id.unwrap_or_default(),
                channels,
                media_encryption,
                codecs: codecs.iter().map(|c| c.to_ascii_lowercase()).collect(),
                setup_timeout,
                tls_ca_file,
                tls_verify: !tls_no_verify,
                dtmf: dtmf.to_ascii_lowercase(),
                ..Trunk::new(&name, &host)
            };
            let problems = trunk.problems();
            if !problems.is_empty() {
                return Err(CliError::Input(problems));
            }
            if let Some(warning) = context_warning(config, &trunk.context) {
                eprintln!("warning: {warning}");
            }
            if tls_no_verify {
                eprintln!(
                    "warning: the certificate of trunk {name} will NOT be verified: anyone on \
                     the path can pose as it, read and change its calls"
                );
            }
            store.add_trunk(&trunk).await?;
            println!("trunk {name} added ({})", trunk.address());
        }
        TrunkCommand::List => list(store, config.calls.trunk_setup_timeout).await?,
        TrunkCommand::Remove { name } => {
            if !store.remove_trunk(&name).await? {
                return Err(CliError::Failed(format!("unknown trunk {name}")));
            }
            println!("trunk {name} removed");
        }
    }
    Ok(())
}

/// `global`: `[calls] trunk_setup_timeout`, shown for trunks without their own.
async fn list(store: &dyn TrunkStore, global: std::time::Duration) -> Result<(), CliError> {
    let now = now_unix();
    let statuses = store.trunk_statuses().await?;
    let rows: Vec<Vec<String>> = store
        .list_trunks()
        .await?
        .into_iter()
        .map(|t| {
            let status = statuses.iter().find(|s| s.name == t.name);
            let state = status.map_or("unknown", |s| s.state_at(now)).to_string();
            let detail = status
                .filter(|s| s.valid_until > now)
                .map(|s| s.detail.clone())
                .unwrap_or_default();
            let networks = t
                .allowed_networks
                .iter()
                .map(IpNet::to_string)
                .collect::<Vec<_>>()
                .join(",");
            vec![
                t.name.clone(),
                t.address(),
                transport_cell(&t),
                if t.register {
                    format!("yes ({})", t.username)
                } else if t.username.is_empty() {
                    "no".to_string()
                } else {
                    format!("no ({})", t.username)
                },
                or_dash(networks),
                t.context.clone(),
                t.dtmf.clone(),
                match t.setup_timeout {
                    Some(secs) => format!("{secs}s"),
                    None => format!("{} (global)", crate::config::format_duration(global)),
                },
                state,
                detail,
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "NAME",
                "HOST",
                "TRANSPORT",
                "REGISTER",
                "ALLOW",
                "CONTEXT",
                "DTMF",
                "SETUP",
                "STATE",
                "DETAIL"
            ],
            &rows
        )
    );
    Ok(())
}

/// The transport, and for TLS what an admin chose about the certificate: not verified, or
/// verified against the trunk's own CA file.
fn transport_cell(t: &Trunk) -> String {
    match (t.transport.as_str(), t.tls_verify, t.tls_ca_file.is_empty()) {
        ("tls", false, _) => "tls (not verified)".to_string(),
        ("tls", true, false) => format!("tls (CA {})", t.tls_ca_file),
        _ => t.transport.clone(),
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

/// A warning when the trunk's context is not in the configured dialplan: its calls would be
/// refused until it is added (not an error: the plan may be written after the trunk). The
/// refusal is 403, as for any caller whose context is missing: the number may well exist,
/// the caller has no permission to reach it (RFC 3261 §21.4.3, not §21.4.4's "does not
/// exist").
fn context_warning(config: &Config, context: &str) -> Option<String> {
    match crate::plan::load_assigned(config, &[context.to_string()]) {
        Ok(Some(plan)) if !plan.context_names().any(|name| name == context) => Some(format!(
            "context `{context}` is not in {} yet: the trunk's inbound calls get 403 until it is",
            plan.path()
        )),
        Ok(None) => Some(format!(
            "the config names no dialplan: context `{context}` does not apply"
        )),
        _ => None,
    }
}
