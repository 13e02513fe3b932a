-- Trunks (`pbx trunk add|list|remove`): the legacy PBX, gateways and SIP providers. The
-- password is kept as given (the PBX is the digest client; the realm comes with the
-- challenge). port NULL = the transport's default; register 0/1; allowed_networks and codecs
-- comma-separated; channels 0 = no limit.
CREATE TABLE trunks (
    name             TEXT PRIMARY KEY NOT NULL,
    host             TEXT NOT NULL,
    port             BIGINT,
    transport        TEXT NOT NULL DEFAULT 'udp',
    username         TEXT NOT NULL DEFAULT '',
    password         TEXT NOT NULL DEFAULT '',
    register         BIGINT NOT NULL DEFAULT 0,
    allowed_networks TEXT NOT NULL DEFAULT '',
    context          TEXT NOT NULL DEFAULT 'from-trunk',
    outbound_proxy   TEXT NOT NULL DEFAULT '',
    caller_id_mode   TEXT NOT NULL DEFAULT 'extension',
    caller_id        TEXT NOT NULL DEFAULT '',
    channels         BIGINT NOT NULL DEFAULT 0,
    media_encryption TEXT NOT NULL DEFAULT 'optional',
    codecs           TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL
);

-- What the running PBX knows of each trunk (registered, up, down), valid until valid_until:
-- past it the PBX stopped refreshing it and `pbx trunk list` says unknown.
CREATE TABLE trunk_status (
    name        TEXT PRIMARY KEY NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    valid_until BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The trunk a call came in (or goes out) by; empty for calls between extensions.
ALTER TABLE cdrs ADD COLUMN trunk TEXT NOT NULL DEFAULT '';
