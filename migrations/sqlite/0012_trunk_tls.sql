-- TLS trunks: a CA file trusted for this trunk's certificate besides the system's roots
-- (empty: `[sip] tls_ca_file`), and whether the certificate is checked at all (1; 0 only
-- for a trunk an admin chose to trust blindly, `pbx trunk add --tls-no-verify`).
ALTER TABLE trunks ADD COLUMN tls_ca_file TEXT NOT NULL DEFAULT '';
ALTER TABLE trunks ADD COLUMN tls_verify BIGINT NOT NULL DEFAULT 1;
