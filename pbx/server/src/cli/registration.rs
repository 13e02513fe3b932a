//! `pbx registration list`.

use super::{CliError, table};
use pbx_store::{LocationStore, now_unix};

pub(super) async fn list(store: &dyn LocationStore) -> Result<(), CliError> {
    let now = now_unix();
    let rows: Vec<Vec<String>> = store
        .list_bindings()
        .await?
        .into_iter()
        .filter(|b| b.expires_at() > now)
        .map(|b| {
            let contact = b.contact();
            vec![
                b.aor,
                contact,
                b.transport.to_string(),
                b.source.to_string(),
                table::format_expiry(b.binding.expires_at, now),
                match b.reachable {
                    Some(true) => "reachable".to_string(),
                    Some(false) => "unreachable".to_string(),
                    None => "-".to_string(),
                },
                b.user_agent,
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "EXTENSION",
                "CONTACT",
                "TRANSPORT",
                "SOURCE",
                "EXPIRES",
                "STATUS",
                "USER AGENT"
            ],
            &rows
        )
    );
    Ok(())
}
