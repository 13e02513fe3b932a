-- Initial schema (SQLite). Times are unix seconds; booleans are 0/1 integers so that the same
-- queries work on PostgreSQL through sqlx's Any driver. Keep in step with ../postgres/0001_init.sql.

-- SIP accounts and voicemail boxes. Never the plain password or PIN: digest HA1s
-- (RFC 3261 §22.4 / RFC 7616 §3.4.2) and an argon2 PIN hash.
CREATE TABLE extensions (
    number           TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    email            TEXT NOT NULL DEFAULT '',
    ha1_md5          TEXT NOT NULL,
    ha1_sha256       TEXT NOT NULL,
    pin_hash         TEXT,
    -- comma-separated CIDRs; empty = any network
    allowed_networks TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL
);

-- Registrar bindings (RFC 3261 §10.3), one per (address of record, contact).
CREATE TABLE registrations (
    aor        TEXT NOT NULL,
    contact    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    call_id    TEXT NOT NULL,
    cseq       BIGINT NOT NULL,
    -- q-value in thousandths (q=0.5 -> 500); NULL when the contact gave none
    q_milli    BIGINT,
    instance   TEXT,
    reg_id     BIGINT,
    transport  TEXT NOT NULL,
    source     TEXT NOT NULL,
    local      TEXT NOT NULL,
    user_agent TEXT,
    -- OPTIONS qualify result: 1 answered, 0 did not, NULL not qualified (yet)
    reachable  BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX registrations_expires_at ON registrations (expires_at);

-- Source addresses whose SIP is dropped until expires_at.
CREATE TABLE bans (
    address    TEXT PRIMARY KEY NOT NULL,
    reason     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Web admin accounts (argon2 password hash) and their API tokens (SHA-256 of the token).
CREATE TABLE admins (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    username   TEXT NOT NULL REFERENCES admins (username) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

-- Call detail records, one per call whatever its outcome.
CREATE TABLE cdrs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id          TEXT NOT NULL,
    caller           TEXT NOT NULL,
    called           TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    answered_at      BIGINT,
    ended_at         BIGINT NOT NULL,
    duration_secs    BIGINT NOT NULL,
    -- answered, busy, no_answer, failed, cancelled
    disposition      TEXT NOT NULL,
    hangup_cause     TEXT NOT NULL DEFAULT '',
    -- caller, callee or pbx
    hangup_side      TEXT NOT NULL DEFAULT '',
    codec            TEXT,
    caller_encrypted BIGINT NOT NULL DEFAULT 0,
    callee_encrypted BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX cdrs_started_at ON cdrs (started_at);
