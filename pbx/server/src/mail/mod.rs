//! E-mail through the `[smtp] url` server (lettre): voicemail notifications and the admin's
//! ban alerts.
//!
//! Nothing is lost while the mail server is down: [`Mailer::send`] writes the message to the
//! spool (`[smtp] queue`, one file per message, synced) before it returns, and one task
//! delivers what the spool holds, retrying with back-off (5 s doubling to 5 min) and picking
//! up what a previous run left. Failures are logged and counted (`pbx_mail_failed_total`).

mod alerts;
mod compose;
mod spool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Notify;

pub use alerts::BanAlerts;
pub use compose::{Attachment, Mail};
use spool::Spool;

/// The first retry after a failure; each next one waits twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a mail could not be queued or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad [smtp] url: {0}")]
    Url(String),
    #[error("bad address `{address}`: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("mail spool {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
    #[error("SMTP: {0}")]
    Smtp(String),
}

/// The outgoing mail of the PBX.
pub struct Mailer {
    from: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    spool: Spool,
    wake: Notify,
    /// `[smtp] url` without its password, for the web admin.
    server: String,
    /// The last delivery and the last failure, for the web admin's dashboard.
    outcomes: std::sync::Mutex<Outcomes>,
}

#[derive(Default)]
struct Outcomes {
    last_sent: Option<u64>,
    last_failure: Option<(u64, String)>,
}

/// What the web admin shows of the mail.
pub type MailHealth = pbx_web_admin::live::MailHealth;

impl Mailer {
    /// A mailer for `url` (smtp://, smtp://...?tls=required, smtps://, with an optional
    /// `user:password@`) sending as `from`, queueing in `queue`.
    pub fn new(url: &str, from: &str, queue: PathBuf) -> Result<Arc<Mailer>, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let spool = Spool::open(queue)?;
        Ok(Arc::new(Mailer {
            from: from.to_string(),
            transport,
            spool,
            wake: Notify::new(),
            server: display_url(url),
            outcomes: Default::default(),
        }))
    }

    /// The server, the spool's length and the last delivery and failure.
    pub fn health(&self) -> MailHealth {
        let outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        MailHealth {
            server: self.server.clone(),
            queued: self.spool.len(),
            last_sent: outcomes.last_sent,
            last_failure: outcomes.last_failure.clone(),
        }
    }

    fn note(&self, outcome: Result<(), &MailError>) {
        let now = crate::transport::now_unix();
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => outcomes.last_sent = Some(now),
            Err(error) => outcomes.last_failure = Some((now, error.to_string())),
        }
    }

    /// Queues `mail` (durably) for delivery; returns once it is in the spool.
    pub fn send(&self, mail: Mail) -> Result<(), MailError> {
        let (envelope, bytes) = compose::build(&self.from, mail)?;
        self.spool.put(&envelope, &bytes)?;
        metrics::gauge!("pbx_mail_queued").set(self.spool.len() as f64);
        self.wake.notify_one();
        Ok(())
    }

    /// Sends `mail` now, without the spool (`pbx mail test`): the error says what went wrong.
    pub async fn send_now(&self, mail: Mail) -> Result<(), MailError> {
        let (envelope, bytes) = compose::build(&self.from, mail)?;
        self.transport
            .send_raw(&envelope.to_lettre()?, &bytes)
            .await
            .map(|_| ())
            .map_err(|e| MailError::Smtp(e.to_string()))
    }

    /// Delivers the spool until the process ends.
    pub async fn run(self: Arc<Self>) {
        // Per message: failures so far and when to try again.
        let mut retry: HashMap<String, (u32, Instant)> = HashMap::new();
        loop {
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            for id in self.spool.list() {
                if let Some(&(_, at)) = retry.get(&id)
                    && at > now
                {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                match self.deliver(&id).await {
                    Ok(()) => {
                        self.note(Ok(()));
                        retry.remove(&id);
                        metrics::counter!("pbx_mail_sent_total").increment(1);
                    }
                    Err(error) => {
                        self.note(Err(&error));
                        metrics::counter!("pbx_mail_failed_total").increment(1);
                        let failures = retry.get(&id).map_or(1, |(n, _)| n + 1);
                        let wait = backoff(failures);
                        tracing::warn!(mail = %id, %error, failures, retry_in = ?wait, "e-mail not delivered; will retry");
                        let at = Instant::now() + wait;
                        retry.insert(id, (failures, at));
                        next = Some(next.map_or(at, |n| n.min(at)));
                    }
                }
            }
            metrics::gauge!("pbx_mail_queued").set(self.spool.len() as f64);
            match next {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), self.wake.notified()).await;
                }
                None => self.wake.notified().await,
            }
        }
    }

    async fn deliver(&self, id: &str) -> Result<(), MailError> {
        let (envelope, bytes) = self.spool.get(id)?;
        self.transport
            .send_raw(&envelope.to_lettre()?, &bytes)
            .await
            .map_err(|e| MailError::Smtp(e.to_string()))?;
        self.spool.remove(id);
        tracing::info!(mail = %id, to = %envelope.to.join(","), "e-mail delivered");
        Ok(())
    }
}

/// `url` for logs and messages: a password in it (`smtp://user:secret@host`) is masked.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_the_url_are_masked() {
        assert_eq!(
            display_url("smtps://pbx:s3cret@mail.example.com:465"),
            "smtps://pbx:***@mail.example.com:465"
        );
        assert_eq!(
            display_url("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525"
        );
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
    }
}
