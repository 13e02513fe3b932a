-- The web admin's call record search: newest first by extension (as caller or as called) or
-- by disposition, each an index walk that stops after a page; `id` breaks ties of the same
-- second for keyset paging.
CREATE INDEX cdrs_started_id ON cdrs (started_at, id);
CREATE INDEX cdrs_caller_started ON cdrs (caller, started_at, id);
CREATE INDEX cdrs_called_started ON cdrs (called, started_at, id);
CREATE INDEX cdrs_disposition_started ON cdrs (disposition, started_at, id);
