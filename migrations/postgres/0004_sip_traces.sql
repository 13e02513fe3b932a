-- SIP trace filters written by `pbx trace add` and re-read by the running PBX every 2 s:
-- messages from a source network (kind 'source', value a CIDR) or about an extension (kind
-- 'extension', value its number) are written to the trace log. expires_at NULL = until removed.
CREATE TABLE sip_traces (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
);
