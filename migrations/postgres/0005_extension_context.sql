-- The dialplan context an extension calls from; empty: the dialplan decides (the context
-- whose `members` list it, else `[defaults] context`). Set with `pbx extension set --context`.
ALTER TABLE extensions ADD COLUMN context TEXT NOT NULL DEFAULT '';
