//! `pbx cdr list [--limit N]`. The ID is the one the log's "call ended" line names.

use super::{CliError, table};
use pbx_store::CdrStore;

pub(super) async fn list(store: &dyn CdrStore, limit: u32) -> Result<(), CliError> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let rows: Vec<Vec<String>> = store
        .list_cdrs(limit)
        .await?
        .into_iter()
        .map(|c| {
            let id = c.id;
            let c = c.call;
            vec![
                id.to_string(),
                table::format_unix(c.started_at),
                c.caller,
                c.called,
                c.disposition,
                format!("{}s", c.duration_secs),
                format!("{} {}", c.hangup_side, c.hangup_cause)
                    .trim()
                    .to_string(),
                c.codec.unwrap_or_default(),
                format!(
                    "{}/{}",
                    yes_no(c.caller_encrypted),
                    yes_no(c.callee_encrypted)
                ),
                c.trunk,
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "ID",
                "START",
                "CALLER",
                "CALLED",
                "DISPOSITION",
                "DURATION",
                "HANGUP",
                "CODEC",
                "ENCRYPTED",
                "TRUNK"
            ],
            &rows
        )
    );
    Ok(())
}
