-- Message-waiting indication (RFC 3842). Keep in step with ../postgres/0008_mwi.sql.

-- 1: the PBX sends this extension's registered devices NOTIFYs without a subscription
-- (phones configured for "unsolicited" MWI); set with `pbx extension set --mwi-unsolicited`.
ALTER TABLE extensions ADD COLUMN mwi_unsolicited BIGINT NOT NULL DEFAULT 0;

-- A counter per mailbox, bumped by triggers on every change of its messages, whoever makes it
-- (this PBX, another node on the same database, the CLI, an admin's SQL): the running PBX
-- polls `revisions.voicemail` and, when it moved, which mailboxes moved, and tells their
-- subscribers.
CREATE TABLE voicemail_revisions (
    mailbox  TEXT PRIMARY KEY NOT NULL,
    revision BIGINT NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('voicemail', 0);

CREATE TRIGGER voicemail_messages_mwi_insert AFTER INSERT ON voicemail_messages
BEGIN
    INSERT INTO voicemail_revisions (mailbox, revision) VALUES (NEW.mailbox, 1)
        ON CONFLICT (mailbox) DO UPDATE SET revision = revision + 1;
    UPDATE revisions SET value = value + 1 WHERE name = 'voicemail';
END;

CREATE TRIGGER voicemail_messages_mwi_update AFTER UPDATE ON voicemail_messages
BEGIN
    INSERT INTO voicemail_revisions (mailbox, revision) VALUES (OLD.mailbox, 1)
        ON CONFLICT (mailbox) DO UPDATE SET revision = revision + 1;
    INSERT INTO voicemail_revisions (mailbox, revision) VALUES (NEW.mailbox, 1)
        ON CONFLICT (mailbox) DO UPDATE SET revision = revision + 1;
    UPDATE revisions SET value = value + 1 WHERE name = 'voicemail';
END;

CREATE TRIGGER voicemail_messages_mwi_delete AFTER DELETE ON voicemail_messages
BEGIN
    INSERT INTO voicemail_revisions (mailbox, revision) VALUES (OLD.mailbox, 1)
        ON CONFLICT (mailbox) DO UPDATE SET revision = revision + 1;
    UPDATE revisions SET value = value + 1 WHERE name = 'voicemail';
END;
