-- Per-extension SRTP policy: required (an offer without a=crypto gets 488), optional
-- (SRTP when the phone offers it), off (plain RTP only).
ALTER TABLE extensions ADD COLUMN media_encryption TEXT NOT NULL DEFAULT 'optional';
