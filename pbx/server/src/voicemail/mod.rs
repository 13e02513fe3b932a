//! The shell of voicemail: the disk and the store for the machines the engine runs
//! (`pbx_voicemail`), the filing of messages (row, e-mail, "mailbox changed" for the message
//! lamps), and the recovery at start of messages cut short by a crash.

pub mod recordings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pbx_engine::VoicemailRequest;
use pbx_store::{MailboxStore, NewMessage, Store};
use pbx_voicemail::{
    Folder, GreetingKind, MailboxInfo, MessageInfo, RecordEnd, StoreAnswer, StoreRequest,
};
use tokio::sync::broadcast;

use crate::mail::{Attachment, Mail, Mailer};
use recordings::{Recordings, Sidecar};

/// Voicemail's files, store and mail.
pub struct VoicemailService {
    store: Arc<Store>,
    mailer: Option<Arc<Mailer>>,
    storage: PathBuf,
    time_zone: jiff::tz::TimeZone,
    pub recordings: Recordings,
    changed: broadcast::Sender<String>,
}

impl VoicemailService {
    pub fn new(
        store: Arc<Store>,
        mailer: Option<Arc<Mailer>>,
        storage: PathBuf,
        time_zone: jiff::tz::TimeZone,
    ) -> std::io::Result<Arc<VoicemailService>> {
        let (changed, _) = broadcast::channel(1024);
        Ok(Arc::new(VoicemailService {
            store,
            mailer,
            storage,
            time_zone,
            recordings: Recordings::start()?,
            changed,
        }))
    }

    /// The mailboxes whose messages changed (a message filed, heard, saved or deleted): the
    /// message lamps follow them.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changed.subscribe()
    }

    fn mailbox_changed(&self, mailbox: &str) {
        let _ = self.changed.send(mailbox.to_string());
    }

    /// Files the message recorded in `wav` from its sidecar: into the mailbox's new folder,
    /// then by e-mail. A recording shorter than the minimum is deleted. `end` is how the
    /// recording ended (`None` when recovered after a crash). Nothing happens when there is
    /// no sidecar (filed already).
    pub async fn file(&self, wav: &Path, end: Option<RecordEnd>) {
        let sidecar_path = Sidecar::path_of(wav);
        let sidecar: Sidecar = match std::fs::read(&sidecar_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(error) => {
                tracing::debug!(file = %sidecar_path.display(), %error, "no sidecar to file");
                return;
            }
        };
        let samples = match pbx_voicemail::wav::recover(wav) {
            Ok(r) => r.samples,
            Err(error) => {
                tracing::warn!(%error, "voicemail recording unreadable: discarded");
                remove(wav);
                remove(&sidecar_path);
                return;
            }
        };
        let duration = Duration::from_millis(samples * 1000 / 8000);
        let trailing_silence = match (end, sidecar.silence_ms) {
            (Some(RecordEnd::Silence), Some(ms)) => Duration::from_millis(ms),
            _ => Duration::ZERO,
        };
        if duration.saturating_sub(trailing_silence) < Duration::from_millis(sidecar.min_ms) {
            tracing::info!(mailbox = %sidecar.mailbox, ?duration, "voicemail too short: discarded");
            metrics::counter!("pbx_voicemail_messages_discarded_total").increment(1);
            remove(wav);
            remove(&sidecar_path);
            return;
        }
        let path = wav.to_string_lossy().into_owned();
        // Recovery only (`end` unknown): a crash after the row was written and before the
        // sidecar was removed must not file the message twice. A live recording has no row yet.
        if end.is_none()
            && let Ok(existing) = self.store.messages(&sidecar.mailbox, None).await
            && existing.iter().any(|m| m.message.path == path)
        {
            remove(&sidecar_path);
            return;
        }
        let message = NewMessage {
            mailbox: sidecar.mailbox.clone(),
            caller_number: sidecar.caller_number.clone(),
            caller_name: sidecar.caller_name.clone(),
            received_at: sidecar.received_at,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            path,
        };
        let id = match self.store.add_message(&message).await {
            Ok(id) => id,
            Err(error) => {
                // The sidecar stays: the next start files it.
                tracing::error!(%error, mailbox = %message.mailbox, "voicemail not filed yet");
                return;
            }
        };
        remove(&sidecar_path);
        metrics::counter!("pbx_voicemail_messages_total").increment(1);
        tracing::info!(
            mailbox = %message.mailbox,
            id,
            caller = %message.caller_number,
            seconds = duration.as_secs(),
            "voicemail message filed"
        );
        self.mailbox_changed(&message.mailbox);
        self.email(id, &message, duration).await;
    }

    /// Mails message `id` to its mailbox's address, when it has one and `[smtp]` is set;
    /// then deletes it when the mailbox wants mail only.
    async fn email(&self, id: i64, message: &NewMessage, duration: Duration) {
        let Some(mailer) = &self.mailer else {
            return;
        };
        let mailbox = match self.store.mailbox(&message.mailbox).await {
            Ok(Some(m)) if !m.email.is_empty() => m,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "voicemail e-mail not sent: mailbox not read");
                return;
            }
        };
        let bytes = match std::fs::read(&message.path) {
            Ok(b) => b,
            Err(error) => {
                tracing::error!(%error, "voicemail e-mail not sent: file not read");
                return;
            }
        };
        let mail = compose(message, &mailbox.email, duration, &self.time_zone, bytes);
        match mailer.send(mail) {
            Ok(()) => {
                metrics::counter!("pbx_voicemail_emails_total").increment(1);
                if mailbox.delete_after_email
                    && let Ok(Some(gone)) = self.store.delete_message(id).await
                {
                    remove(Path::new(&gone.message.path));
                    self.mailbox_changed(&message.mailbox);
                }
            }
            Err(error) => {
                metrics::counter!("pbx_voicemail_emails_failed_total").increment(1);
                tracing::error!(%error, mailbox = %message.mailbox, "voicemail e-mail not queued");
            }
        }
    }

    /// Files every message a crash left behind (a sidecar without its row), repairing the
    /// WAV's header first. Run at start, before calls come in.
    pub async fn recover(&self) -> usize {
        let mut found = Vec::new();
        let Ok(mailboxes) = std::fs::read_dir(&self.storage) else {
            return 0;
        };
        for dir in mailboxes.flatten() {
            let Ok(files) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "json") {
                    found.push(path.with_extension("wav"));
                }
            }
        }
        for wav in &found {
            tracing::info!(file = %wav.display(), "voicemail: filing a recording cut short");
            self.file(wav, None).await;
        }
        found.len()
    }

    /// Does what a machine asked: the answer for the machine, when it waits for one.
    pub async fn request(&self, request: VoicemailRequest) -> Option<StoreAnswer> {
        match request {
            VoicemailRequest::Discard { path } => {
                remove(Path::new(&path));
                remove(&Sidecar::path_of(Path::new(&path)));
                None
            }
            VoicemailRequest::Store(request) => self.store_request(request).await,
        }
    }

    async fn store_request(&self, request: StoreRequest) -> Option<StoreAnswer> {
        let store = &self.store;
        let failed = |what: &str, error: pbx_store::StoreError| {
            tracing::error!(%error, "voicemail: {what} failed");
        };
        match request {
            StoreRequest::Mailbox { number } => Some(match store.mailbox(&number).await {
                Ok(found) => StoreAnswer::Mailbox(found.map(|m| {
                    MailboxInfo {
                        number: m.number.clone(),
                        greetings: m
                            .greetings
                            .iter()
                            .map(|g| (greeting_kind(g.kind), g.path.clone()))
                            .collect(),
                    }
                })),
                Err(e) => {
                    failed("mailbox", e);
                    StoreAnswer::Failed
                }
            }),
            StoreRequest::CheckPin { number, pin } => {
                Some(match store.check_pin(&number, &pin).await {
                    Ok(ok) => StoreAnswer::Pin(ok),
                    Err(e) => {
                        failed("PIN check", e);
                        StoreAnswer::Failed
                    }
                })
            }
            StoreRequest::Messages { number } => Some(match store.messages(&number, None).await {
                Ok(all) => StoreAnswer::Messages(
                    all.into_iter()
                        .map(|m| MessageInfo {
                            id: m.id,
                            folder: folder_to_machine(m.folder),
                            caller_number: m.message.caller_number,
                            received: civil(m.message.received_at, &self.time_zone),
                            path: m.message.path,
                        })
                        .collect(),
                ),
                Err(e) => {
                    failed("messages", e);
                    StoreAnswer::Failed
                }
            }),
            // Filed from the recording's sidecar (see `file`).
            StoreRequest::AddMessage(_) => None,
            StoreRequest::Move { id, folder } => {
                let mailbox = store.message(id).await.ok().flatten();
                match store.move_message(id, folder_to_store(folder)).await {
                    Ok(_) => {
                        if let Some(m) = mailbox {
                            self.mailbox_changed(&m.message.mailbox);
                        }
                    }
                    Err(e) => failed("move", e),
                }
                None
            }
            StoreRequest::Delete { id } => {
                match store.delete_message(id).await {
                    Ok(Some(m)) => {
                        remove(Path::new(&m.message.path));
                        self.mailbox_changed(&m.message.mailbox);
                    }
                    Ok(None) => {}
                    Err(e) => failed("delete", e),
                }
                None
            }
            StoreRequest::SetGreeting { number, kind, path } => {
                let greeting = pbx_store::Greeting {
                    kind: greeting_to_store(kind),
                    path,
                    recorded_at: crate::transport::now_unix(),
                };
                match store.set_greeting(&number, &greeting).await {
                    Ok(Some(old)) => remove(Path::new(&old)),
                    Ok(None) => {}
                    Err(e) => failed("greeting", e),
                }
                None
            }
            StoreRequest::RemoveGreeting { number, kind } => {
                match store
                    .remove_greeting(&number, greeting_to_store(kind))
                    .await
                {
                    Ok(Some(old)) => remove(Path::new(&old)),
                    Ok(None) => {}
                    Err(e) => failed("greeting removal", e),
                }
                None
            }
            StoreRequest::SetPin { number, pin } => {
                match store.set_pin(&number, &pin).await {
                    Ok(_) => tracing::info!(mailbox = %number, "voicemail PIN changed"),
                    Err(e) => failed("PIN change", e),
                }
                None
            }
        }
    }
}

/// The e-mail of a new message: who, when, how long, and the WAV.
fn compose(
    message: &NewMessage,
    to: &str,
    duration: Duration,
    tz: &jiff::tz::TimeZone,
    wav: Vec<u8>,
) -> Mail {
    let when = civil(message.received_at, tz);
    let from = match (message.caller_name.as_str(), message.caller_number.as_str()) {
        ("", "") => "an unknown caller".to_string(),
        ("", number) => number.to_string(),
        (name, "") => name.to_string(),
        (name, number) => format!("{name} <{number}>"),
    };
    let length = format!("{}:{:02}", duration.as_secs() / 60, duration.as_secs() % 60);
    Mail {
        to: to.to_string(),
        subject: format!("New voicemail from {from} ({length})"),
        text: format!(
            "You have a new voicemail in mailbox {mailbox}.\n\n\
             From:     {from}\n\
             Received: {when}\n\
             Length:   {length}\n\n\
             The message is attached. Dial *97 from your phone to listen to your messages.\n",
            mailbox = message.mailbox,
            when = when.strftime("%A, %-d %B %Y at %H:%M"),
        ),
        attachment: Some(Attachment {
            filename: format!(
                "voicemail-{}-{}.wav",
                message.mailbox,
                when.strftime("%Y%m%d-%H%M%S")
            ),
            content_type: "audio/wav".into(),
            bytes: wav,
        }),
    }
}

/// Unix seconds as the listener's civil time.
fn civil(unix: u64, tz: &jiff::tz::TimeZone) -> jiff::civil::DateTime {
    i64::try_from(unix)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_zoned(tz.clone()).datetime())
        .unwrap_or_default()
}

fn remove(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), %error, "voicemail file not removed");
    }
}

fn folder_to_machine(f: pbx_store::Folder) -> Folder {
    match f {
        pbx_store::Folder::New => Folder::New,
        pbx_store::Folder::Old => Folder::Old,
        pbx_store::Folder::Saved => Folder::Saved,
    }
}

fn folder_to_store(f: Folder) -> pbx_store::Folder {
    match f {
        Folder::New => pbx_store::Folder::New,
        Folder::Old => pbx_store::Folder::Old,
        Folder::Saved => pbx_store::Folder::Saved,
    }
}

fn greeting_kind(k: pbx_store::GreetingKind) -> GreetingKind {
    match k {
        pbx_store::GreetingKind::Unavailable => GreetingKind::Unavailable,
        pbx_store::GreetingKind::Busy => GreetingKind::Busy,
        pbx_store::GreetingKind::Temporary => GreetingKind::Temporary,
        pbx_store::GreetingKind::Name => GreetingKind::Name,
    }
}

fn greeting_to_store(k: GreetingKind) -> pbx_store::GreetingKind {
    match k {
        GreetingKind::Unavailable => pbx_store::GreetingKind::Unavailable,
        GreetingKind::Busy => pbx_store::GreetingKind::Busy,
        GreetingKind::Temporary => pbx_store::GreetingKind::Temporary,
        GreetingKind::Name => pbx_store::GreetingKind::Name,
    }
}
