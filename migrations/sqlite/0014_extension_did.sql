-- An extension's own public number (DID): digits with an optional leading '+', empty for
-- none. Trunks whose caller-ID mode is 'extension' present it in From and
-- P-Asserted-Identity. Set with `pbx extension add/set --did`.
ALTER TABLE extensions ADD COLUMN did TEXT NOT NULL DEFAULT '';
