//! `pbx trace add|list|remove`: switch the SIP trace on and off for a source network or an
//! extension. The running PBX re-reads the table every 2 s (`crate::trace::sync`).

use super::{CliError, TraceCommand, table};
use crate::config::{Config, format_duration};
use crate::trace::Target;
use crate::trace::sync::SYNC_INTERVAL;
use pbx_store::{TraceStore, now_unix};

pub(super) async fn run(
    store: &dyn TraceStore,
    config: &Config,
    cmd: TraceCommand,
) -> Result<(), CliError> {
    match cmd {
        TraceCommand::Add {
            source,
            extension,
            duration,
        } => {
            let target = match (source, extension) {
                (Some(net), None) => Target::Source(net),
                (None, Some(user)) => Target::Extension(user),
                // clap's group makes exactly one of them required.
                _ => {
                    return Err(CliError::Input(vec![
                        "give exactly one of --source CIDR and --extension NUMBER".into(),
                    ]));
                }
            };
            let now = now_unix();
            let until = duration.map(|d| now.saturating_add(d.as_secs().max(1)));
            let _ = store.prune_traces(now).await?;
            let id = store
                .add_trace(target.kind(), &target.value(), until)
                .await?;
            let how_long = match duration {
                Some(d) => format!("for {}", format_duration(d)),
                None => "until `pbx trace remove`".to_string(),
            };
            println!(
                "trace {id} added: {target} {how_long}; a running PBX starts within {}s",
                SYNC_INTERVAL.as_secs()
            );
        }
        TraceCommand::List => {
            let now = now_unix();
            let mut rows: Vec<Vec<String>> = config
                .trace
                .targets
                .iter()
                .map(|t| {
                    vec![
                        "config".into(),
                        t.kind().into(),
                        t.value(),
                        "never ([trace] in the config)".into(),
                    ]
                })
                .collect();
            for row in store.active_traces(now).await? {
                rows.push(vec![
                    row.id.to_string(),
                    row.kind,
                    row.value,
                    row.until
                        .map_or_else(|| "never".into(), |at| table::format_expiry(at, now)),
                ]);
            }
            print!(
                "{}",
                table::render(&["ID", "KIND", "VALUE", "EXPIRES"], &rows)
            );
        }
        TraceCommand::Remove { id } => {
            if id.eq_ignore_ascii_case("all") {
                let n = store.remove_all_traces(now_unix()).await?;
                println!("{n} trace filter(s) removed");
            } else {
                let number: i64 = id.parse().map_err(|_| {
                    CliError::Input(vec![format!(
                        "bad trace id `{id}`: expected a number from `pbx trace list`, or all"
                    )])
                })?;
                if !store.remove_trace(number).await? {
                    return Err(CliError::Failed(format!("no trace filter {number}")));
                }
                println!("trace {number} removed");
            }
        }
    }
    Ok(())
}
