-- Voicemail. Every extension has a mailbox: its PIN (extensions.pin_hash, argon2) and e-mail
-- address (extensions.email) are the ones `pbx extension add` stores; this adds the rest.
-- Audio stays on disk (WAV files under [voicemail] storage); the rows hold the paths.
-- Keep in step with ../sqlite/0006_voicemail.sql.

-- 1: the message is deleted once it was e-mailed (for those who want mail only).
ALTER TABLE extensions ADD COLUMN vm_delete_after_email BIGINT NOT NULL DEFAULT 0;

-- Recorded greetings, at most one of each kind per mailbox: unavailable, busy, temporary
-- (overrides both), name.
CREATE TABLE voicemail_greetings (
    mailbox     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    path        TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (mailbox, kind)
);

-- Messages left in a mailbox. folder: new, old (listened to) or saved.
CREATE TABLE voicemail_messages (
    id            BIGSERIAL PRIMARY KEY,
    mailbox       TEXT NOT NULL,
    folder        TEXT NOT NULL,
    caller_number TEXT NOT NULL DEFAULT '',
    caller_name   TEXT NOT NULL DEFAULT '',
    received_at   BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    path          TEXT NOT NULL
);
CREATE INDEX voicemail_messages_mailbox ON voicemail_messages (mailbox, folder, received_at);
