-- The extension list's search and pages on 10,000 extensions (docs/performance.md): run from
-- the repository root,
--   rm -f /tmp/ext.db && sqlite3 /tmp/ext.db < bench/extension-search.sql
-- It builds the table (the store's migrations, then generated rows) and times the queries of
-- ExtensionStore::search_extensions (a count and a page of 25) with their plans.
.read migrations/sqlite/0001_init.sql
.read migrations/sqlite/0002_revisions.sql
.read migrations/sqlite/0003_media_encryption.sql
.read migrations/sqlite/0004_sip_traces.sql
.read migrations/sqlite/0005_extension_context.sql
.read migrations/sqlite/0006_voicemail.sql
-- 10,000 extensions 1000-10999 with a name and an e-mail each.
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
INSERT INTO extensions (number, name, email, ha1_md5, ha1_sha256, created_at)
SELECT CAST(1000 + i AS TEXT), 'Person ' || i || CASE WHEN i % 100 = 0 THEN ' Martin' ELSE '' END,
  'p' || i || '@example.com', printf('%032x', i), printf('%064x', i), 1790000000
FROM n;
.timer on
.output /dev/null
-- no search: the first page, and page 400 (OFFSET 9975)
SELECT COUNT(*) FROM extensions WHERE '%%' = '%%' OR lower(number) LIKE '%%' ESCAPE '\' OR lower(name) LIKE '%%' ESCAPE '\' OR lower(email) LIKE '%%' ESCAPE '\';
SELECT number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context FROM extensions WHERE '%%' = '%%' OR lower(number) LIKE '%%' ESCAPE '\' OR lower(name) LIKE '%%' ESCAPE '\' OR lower(email) LIKE '%%' ESCAPE '\' ORDER BY number LIMIT 25 OFFSET 0;
SELECT number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context FROM extensions WHERE '%%' = '%%' OR lower(number) LIKE '%%' ESCAPE '\' OR lower(name) LIKE '%%' ESCAPE '\' OR lower(email) LIKE '%%' ESCAPE '\' ORDER BY number LIMIT 25 OFFSET 9975;
-- a search by name matching 100 rows: count and first page
SELECT COUNT(*) FROM extensions WHERE '%martin%' = '%%' OR lower(number) LIKE '%martin%' ESCAPE '\' OR lower(name) LIKE '%martin%' ESCAPE '\' OR lower(email) LIKE '%martin%' ESCAPE '\';
SELECT number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context FROM extensions WHERE '%martin%' = '%%' OR lower(number) LIKE '%martin%' ESCAPE '\' OR lower(name) LIKE '%martin%' ESCAPE '\' OR lower(email) LIKE '%martin%' ESCAPE '\' ORDER BY number LIMIT 25 OFFSET 0;
-- a search matching nothing (the whole table is read)
SELECT number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context FROM extensions WHERE '%zzz%' = '%%' OR lower(number) LIKE '%zzz%' ESCAPE '\' OR lower(name) LIKE '%zzz%' ESCAPE '\' OR lower(email) LIKE '%zzz%' ESCAPE '\' ORDER BY number LIMIT 25 OFFSET 0;
-- the old way, for comparison: every row to the application
SELECT number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context FROM extensions ORDER BY number;
.output stdout
.timer off
EXPLAIN QUERY PLAN SELECT number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context FROM extensions WHERE '%%' = '%%' OR lower(number) LIKE '%%' ESCAPE '\' OR lower(name) LIKE '%%' ESCAPE '\' OR lower(email) LIKE '%%' ESCAPE '\' ORDER BY number LIMIT 25 OFFSET 9975;
