-- The audit log: every change an admin made through the web admin or the API (extensions,
-- trunks, permissions, dialplan, voicemail deletes, bans lifted, tokens, admins): who, what,
-- when, from which address. via: 'web' (a logged-in page) or 'api' (a token, under its
-- admin). Never a password, PIN or token.
CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    admin   TEXT NOT NULL,
    source  TEXT NOT NULL,
    via     TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
