-- How a trunk carries DTMF: 'rfc4733' (telephone-events in the media), 'info' (SIP INFO,
-- application/dtmf-relay) or 'auto' (RFC 4733 when the SDP agrees on telephone-event, INFO
-- otherwise). The PBX converts between legs that differ.
ALTER TABLE trunks ADD COLUMN dtmf TEXT NOT NULL DEFAULT 'rfc4733';
