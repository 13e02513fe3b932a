//! `pbx mail test ADDRESS`: one message through `[smtp]`, sent at once.

use super::CliError;
use crate::config::Config;
use crate::mail::{Mail, Mailer, display_url};

pub(super) async fn test(config: &Config, to: &str) -> Result<(), CliError> {
    let smtp = config.smtp.as_ref().ok_or_else(|| {
        CliError::Failed("no [smtp] section in the config: no e-mail is sent".into())
    })?;
    let mailer = Mailer::new(&smtp.url, &smtp.from, smtp.queue.clone())
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mail = Mail {
        to: to.to_string(),
        subject: format!("[{}] test message", config.sip.domain),
        text: format!(
            "This is a test message from the PBX {}: its [smtp] settings work.\n",
            config.sip.domain
        ),
        attachment: None,
    };
    mailer
        .send_now(mail)
        .await
        .map_err(|e| CliError::Failed(format!("{e} (via {})", display_url(&smtp.url))))?;
    println!("sent to {to} via {}", display_url(&smtp.url));
    Ok(())
}
