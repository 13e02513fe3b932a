-- The call record search on 1,000,000 CDRs (docs/performance.md): run from the repository root,
--   sqlite3 /tmp/cdr.db < bench/cdr-search.sql
-- It builds the table (the store's migrations, then generated rows) and times the store's
-- search queries (CdrStore::search_cdrs, calls_per_hour) with their plans.
.read migrations/sqlite/0001_init.sql
.read migrations/sqlite/0002_revisions.sql
.read migrations/sqlite/0003_media_encryption.sql
.read migrations/sqlite/0004_sip_traces.sql
.read migrations/sqlite/0005_extension_context.sql
.read migrations/sqlite/0007_cdr_search.sql
-- 1,000,000 calls over 100 days among 10,000 extensions; one in five busy, a few failed.
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
INSERT INTO cdrs (call_id, caller, called, started_at, answered_at, ended_at, duration_secs,
  disposition, hangup_cause, hangup_side, codec)
SELECT 'c' || i, CAST(1000 + (i * 7919) % 10000 AS TEXT), CAST(1000 + (i * 104729) % 10000 AS TEXT),
  1790000000 + i * 8, 1790000000 + i * 8 + 3, 1790000000 + i * 8 + 60, 57,
  CASE WHEN i % 5 = 0 THEN 'busy' WHEN i % 997 = 0 THEN 'failed' ELSE 'answered' END, 'BYE', 'caller', 'PCMU/8000'
FROM n;
.timer on
.output /dev/null
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 ORDER BY started_at DESC, id DESC LIMIT 51;
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND started_at <= 1794000000 AND (started_at < 1794000000 OR id < 500001) ORDER BY started_at DESC, id DESC LIMIT 51;
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND disposition = 'failed' ORDER BY started_at DESC, id DESC LIMIT 51;
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND started_at >= 1793000000 AND started_at < 1793086400 AND disposition = 'busy' ORDER BY started_at DESC, id DESC LIMIT 51;
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM (SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE caller = '1234' ORDER BY started_at DESC, id DESC LIMIT 51) AS a UNION SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM (SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE called = '1234' ORDER BY started_at DESC, id DESC LIMIT 51) AS b ORDER BY started_at DESC, id DESC LIMIT 51;
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM (SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE caller = '1234' AND started_at <= 1794000000 AND (started_at < 1794000000 OR id < 500001) ORDER BY started_at DESC, id DESC LIMIT 51) AS a UNION SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM (SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE called = '1234' AND started_at <= 1794000000 AND (started_at < 1794000000 OR id < 500001) ORDER BY started_at DESC, id DESC LIMIT 51) AS b ORDER BY started_at DESC, id DESC LIMIT 51;
SELECT started_at / 3600 AS hour, COUNT(*) AS calls FROM cdrs WHERE started_at >= 1797913600 AND started_at < 1798000001 GROUP BY started_at / 3600 ORDER BY hour;
SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND disposition = 'no_answer' ORDER BY started_at DESC, id DESC LIMIT 51;
.output stdout
.timer off
EXPLAIN QUERY PLAN SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND started_at <= 1794000000 AND (started_at < 1794000000 OR id < 500001) ORDER BY started_at DESC, id DESC LIMIT 51;
EXPLAIN QUERY PLAN SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM (SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE caller = '1234' ORDER BY started_at DESC, id DESC LIMIT 51) AS a UNION SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM (SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE called = '1234' ORDER BY started_at DESC, id DESC LIMIT 51) AS b ORDER BY started_at DESC, id DESC LIMIT 51;
EXPLAIN QUERY PLAN SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND disposition = 'failed' ORDER BY started_at DESC, id DESC LIMIT 51;
EXPLAIN QUERY PLAN SELECT id, call_id, caller, called, started_at, answered_at, ended_at, duration_secs, disposition, hangup_cause, hangup_side, codec, caller_encrypted, callee_encrypted FROM cdrs WHERE 1 = 1 AND started_at >= 1793000000 AND started_at < 1793086400 AND disposition = 'busy' ORDER BY started_at DESC, id DESC LIMIT 51;
