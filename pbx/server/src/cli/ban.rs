//! `pbx ban list|remove`.

use super::{BanCommand, CliError, table};
use pbx_store::{BanStore, now_unix};

pub(super) async fn run(store: &dyn BanStore, cmd: BanCommand) -> Result<(), CliError> {
    match cmd {
        BanCommand::List => {
            let now = now_unix();
            let rows: Vec<Vec<String>> = store
                .active_bans(now)
                .await?
                .into_iter()
                .map(|b| {
                    vec![
                        b.address.to_string(),
                        b.reason,
                        table::format_expiry(b.until, now),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(&["ADDRESS", "REASON", "EXPIRES"], &rows)
            );
        }
        BanCommand::Remove { address } => {
            if !store.remove_ban(address).await? {
                return Err(CliError::Failed(format!("{address} is not banned")));
            }
            println!("ban of {address} lifted");
        }
    }
    Ok(())
}
