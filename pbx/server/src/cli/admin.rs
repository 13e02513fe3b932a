//! `pbx admin create|token`.

use super::{AdminCommand, CliError};
use pbx_store::AdminStore;

pub(super) async fn run(store: &dyn AdminStore, cmd: AdminCommand) -> Result<(), CliError> {
    match cmd {
        AdminCommand::Create { user, password } => {
            store.create_admin(&user, &password).await?;
            println!("admin {user} created");
        }
        AdminCommand::Token { user } => {
            // Only the token on stdout, so that scripts can capture it.
            println!("{}", store.create_token(&user).await?);
        }
    }
    Ok(())
}
