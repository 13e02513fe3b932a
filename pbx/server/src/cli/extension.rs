//! `pbx extension add|import|list|remove`.

use std::collections::HashSet;

use super::{CliError, ExtensionCommand, import, table};
use crate::config::Config;
use pbx_store::{ExtensionStore, NewExtension};

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
        } => {
            let ext = NewExtension {
                number,
                password,
                name,
                email,
                pin,
                allowed_networks: allow,
                media_encryption,
            };
            let problems = ext.problems();
            if !problems.is_empty() {
                return Err(CliError::Input(problems));
            }
            let number = ext.number.clone();
            store.add_extension(realm, ext).await?;
            println!("extension {number} created");
        }
        ExtensionCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", file.display())))?;
            let existing: HashSet<String> = store
                .list_extensions()
                .await?
                .into_iter()
                .map(|e| e.number)
                .collect();
            let rows = import::parse_csv(&file, &text, &existing).map_err(|mut problems| {
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
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(&["NUMBER", "NAME", "EMAIL", "PIN", "NETWORKS"], &rows)
            );
        }
        ExtensionCommand::Remove { number } => {
            if !store.remove_extension(&number).await? {
                return Err(CliError::Failed(format!("unknown extension {number}")));
            }
            println!("extension {number} removed");
        }
    }
    Ok(())
}
