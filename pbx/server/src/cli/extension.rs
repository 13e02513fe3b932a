//! `pbx extension add|set|import|list|remove`.

use std::collections::{HashMap, HashSet};

use super::{CliError, ExtensionCommand, import, table};
use crate::config::Config;
use pbx_store::{ExtensionChanges, ExtensionStore, NewExtension};

pub(super) async fn run(
    store: &dyn ExtensionStore,
    config: &Config,
    cmd: ExtensionCommand,
) -> Result<(), CliError> {
    let realm = &config.sip.domain;
    match cmd {
        ExtensionCommand::Add {
            number,
            password,
            name,
            email,
            pin,
            allow,
            media_encryption,
            mwi_unsolicited,
            did,
        } => {
            let ext = NewExtension {
                number,
                password,
                name,
                email,
                pin,
                allowed_networks: allow,
                media_encryption,
                did,
            };
            let problems = ext.problems();
            if !problems.is_empty() {
                return Err(CliError::Input(problems));
            }
            let number = ext.number.clone();
            store.add_extension(realm, ext).await?;
            if mwi_unsolicited {
                let changes = ExtensionChanges {
                    mwi_unsolicited: Some(true),
                    ..Default::default()
                };
                store.update_extension(realm, &number, &changes).await?;
            }
            println!("extension {number} created");
        }
        ExtensionCommand::Set {
            number,
            password,
            name,
            email,
            pin,
            media_encryption,
            context,
            delete_after_email,
            mwi_unsolicited,
            did,
        } => {
            let changes = ExtensionChanges {
                password,
                name,
                email,
                pin,
                media_encryption,
                context,
                mwi_unsolicited,
                did,
            };
            // `--delete-after-email` alone was done by the caller (a mailbox setting).
            if !(changes.is_empty() && delete_after_email.is_some()) {
                set(store, config, &number, &changes).await?;
            }
            println!("extension {number} changed");
        }
        ExtensionCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", file.display())))?;
            let all = store.list_extensions().await?;
            let dids: HashMap<String, String> = all
                .iter()
                .filter(|e| !e.did.is_empty())
                .map(|e| (e.did.clone(), e.number.clone()))
                .collect();
            let existing: HashSet<String> = all.into_iter().map(|e| e.number).collect();
            let rows =
                import::parse_csv(&file, &text, &existing, &dids).map_err(|mut problems| {
                    problems.push(format!("nothing imported from {}", file.display()));
                    CliError::Input(problems)
                })?;
            let n = store.import_extensions(realm, rows).await?;
            println!("imported {n} extensions from {}", file.display());
        }
        ExtensionCommand::List => {
            let rows: Vec<Vec<String>> = store
                .list_extensions()
                .await?
                .into_iter()
                .map(|e| {
                    let nets: Vec<String> =
                        e.allowed_networks.iter().map(ToString::to_string).collect();
                    vec![
                        e.number,
                        e.name,
                        e.email,
                        if e.has_pin { "yes" } else { "no" }.to_string(),
                        if nets.is_empty() {
                            "any".to_string()
                        } else {
                            nets.join(",")
                        },
                        e.media_encryption,
                        if e.context.is_empty() {
                            "-".to_string()
                        } else {
                            e.context
                        },
                        if e.mwi_unsolicited {
                            "unsolicited"
                        } else {
                            "-"
                        }
                        .to_string(),
                        if e.did.is_empty() {
                            "-".to_string()
                        } else {
                            e.did
                        },
                    ]
                })
                .collect();
            let header = [
                "NUMBER", "NAME", "EMAIL", "PIN", "NETWORKS", "MEDIA", "CONTEXT", "MWI", "DID",
            ];
            print!("{}", table::render(&header, &rows));
        }
        ExtensionCommand::Remove { number } => {
            if !store.remove_extension(&number).await? {
                return Err(CliError::Failed(format!("unknown extension {number}")));
            }
            match pbx_store::remove_mailbox_files(&config.voicemail.storage, &number) {
                Ok(0) => println!("extension {number} removed"),
                Ok(n) => println!("extension {number} removed, and its {n} voicemail file(s)"),
                Err(e) => eprintln!(
                    "warning: extension {number} removed, its voicemail files under {} not: {e}",
                    config.voicemail.storage.display()
                ),
            }
        }
    }
    Ok(())
}

/// `pbx extension set`: validates, checks a new context against the configured dialplan,
/// and changes the row in place (registrations untouched).
async fn set(
    store: &dyn ExtensionStore,
    config: &Config,
    number: &str,
    changes: &ExtensionChanges,
) -> Result<(), CliError> {
    if changes.is_empty() {
        return Err(CliError::Input(vec![
            "nothing to change: give --password, --name, --email, --pin, --media-encryption, \
             --context, --delete-after-email or --mwi-unsolicited"
                .to_string(),
        ]));
    }
    let mut problems = changes.problems();
    if let Some(context) = changes.context.as_deref().filter(|c| !c.is_empty()) {
        problems.extend(unknown_context(config, context)?);
    }
    if !problems.is_empty() {
        return Err(CliError::Input(problems));
    }
    if !store
        .update_extension(&config.sip.domain, number, changes)
        .await?
    {
        return Err(CliError::Failed(format!("unknown extension {number}")));
    }
    Ok(())
}

/// A problem when `context` is not a context of the dialplan the config names (or when no
/// dialplan is configured: the context would never apply).
fn unknown_context(config: &Config, context: &str) -> Result<Option<String>, CliError> {
    // The context is about to be assigned: it needs no `members` or `may_call`.
    let assigned = [context.to_string()];
    let plan = crate::plan::load_assigned(config, &assigned).map_err(CliError::Problems)?;
    let Some(plan) = plan else {
        return Ok(Some(format!(
            "--context {context}: the config names no dialplan ([dialplan] file)"
        )));
    };
    if plan.context_names().any(|name| name == context) {
        return Ok(None);
    }
    let known: Vec<&str> = plan.context_names().collect();
    Ok(Some(format!(
        "--context {context}: no such context in {} (it has: {})",
        plan.path(),
        known.join(", ")
    )))
}
