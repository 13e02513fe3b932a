-- A DID names one extension: an inbound call to it, and the caller ID an extension presents on
-- trunks, must not be ambiguous. Databases from before this migration may hold the same DID on
-- several extensions: the lowest number (numerically) keeps it, the others' DID is cleared.
-- The PBX logs a warning for each one cleared when it applies this migration (Store::open), and
-- `pbx extension set NUMBER --did` gives them another.
UPDATE extensions SET did = ''
WHERE did <> ''
  AND EXISTS (
    SELECT 1 FROM extensions AS keeper
    WHERE keeper.did = extensions.did
      AND (LENGTH(keeper.number) < LENGTH(extensions.number)
           OR (LENGTH(keeper.number) = LENGTH(extensions.number)
               AND keeper.number < extensions.number))
  );
CREATE UNIQUE INDEX extensions_did_unique ON extensions (did) WHERE did <> '';
