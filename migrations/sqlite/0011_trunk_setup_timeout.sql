-- A trunk's own setup time (`pbx trunk add --setup-timeout SECS`): seconds without any
-- response to an INVITE before the next trunk is tried; NULL = `[calls] trunk_setup_timeout`.
ALTER TABLE trunks ADD COLUMN setup_timeout BIGINT;
