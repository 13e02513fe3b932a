//! A mail as the PBX writes it: plain text, and a file attached (a voicemail's WAV).

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde::{Deserialize, Serialize};

use super::MailError;

/// One message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    /// A MIME type, `audio/wav`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The SMTP envelope, kept beside the message in the spool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
}

impl Envelope {
    pub fn to_lettre(&self) -> Result<lettre::address::Envelope, MailError> {
        let parse = |a: &str| {
            a.parse::<lettre::Address>()
                .map_err(|e| MailError::Address {
                    address: a.to_string(),
                    reason: e.to_string(),
                })
        };
        let to = self
            .to
            .iter()
            .map(|a| parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        lettre::address::Envelope::new(Some(parse(&self.from)?), to)
            .map_err(|e| MailError::Build(e.to_string()))
    }
}

fn mailbox(text: &str) -> Result<Mailbox, MailError> {
    text.parse::<Mailbox>().map_err(|e| MailError::Address {
        address: text.to_string(),
        reason: e.to_string(),
    })
}

/// The envelope and the RFC 5322 bytes of `mail` from `from`.
pub fn build(from: &str, mail: Mail) -> Result<(Envelope, Vec<u8>), MailError> {
    let from = mailbox(from)?;
    let to = mailbox(&mail.to)?;
    let envelope = Envelope {
        from: from.email.to_string(),
        to: vec![to.email.to_string()],
    };
    let builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject);
    let text = SinglePart::plain(mail.text);
    let message = match mail.attachment {
        None => builder.singlepart(text),
        Some(file) => {
            let content_type = ContentType::parse(&file.content_type)
                .map_err(|e| MailError::Build(e.to_string()))?;
            let part =
                lettre::message::Attachment::new(file.filename).body(file.bytes, content_type);
            builder.multipart(MultiPart::mixed().singlepart(text).singlepart(part))
        }
    }
    .map_err(|e| MailError::Build(e.to_string()))?;
    Ok((envelope, message.formatted()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_with_a_wav_attached() {
        let mail = Mail {
            to: "Anna <anna@example.com>".into(),
            subject: "New voicemail from 1001".into(),
            text: "From 1001, 12 seconds.".into(),
            attachment: Some(Attachment {
                filename: "msg0001.wav".into(),
                content_type: "audio/wav".into(),
                bytes: b"RIFF....WAVE".to_vec(),
            }),
        };
        let (envelope, bytes) = build("PBX <pbx@pbx.test>", mail).expect("built");
        assert_eq!(envelope.from, "pbx@pbx.test");
        assert_eq!(envelope.to, ["anna@example.com"]);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Subject: New voicemail from 1001"), "{text}");
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(text.contains("filename=\"msg0001.wav\""), "{text}");
        assert!(text.contains("Content-Type: audio/wav"), "{text}");
    }

    #[test]
    fn a_bad_address_says_which() {
        let mail = Mail {
            to: "not an address".into(),
            subject: String::new(),
            text: String::new(),
            attachment: None,
        };
        let error = build("pbx@pbx.test", mail).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("not an address")));
    }
}
