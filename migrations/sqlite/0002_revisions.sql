-- A counter per table that the running PBX caches, bumped by every change made through the
-- store (the CLI, the admin UI): the PBX re-reads the table only when its counter moved.
CREATE TABLE revisions (
    name  TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('extensions', 0);
