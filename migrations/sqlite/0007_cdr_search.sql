-- The web admin's call record search: newest first by extension (as caller or as called) or
-- by disposition, each an index walk that stops after a page. The rowid (`id`) ends every
-- SQLite index already; it is named so the definitions read as PostgreSQL's.
CREATE INDEX cdrs_caller_started ON cdrs (caller, started_at, id);
CREATE INDEX cdrs_called_started ON cdrs (called, started_at, id);
CREATE INDEX cdrs_disposition_started ON cdrs (disposition, started_at, id);
