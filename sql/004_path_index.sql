-- 004_path_index.sql - every path the mount accepts can be stored.
--
-- A B-tree index entry holds at most about 2.7 KB (a third of a page).
-- Paths may be 4096 bytes (include/vsync/path.h), so an index on
-- file_path itself refuses a long path with SQLSTATE 54000 ("index row
-- size exceeds maximum"): the write fails, for good, after everything
-- before it was accepted. The path indexes therefore hold
--   * vsync_path_key(file_path): the MD5 of the path (32 hex digits), for
--     equality (one current row per path; a path's history); and
--   * vsync_path_prefix(file_path): the path's first 600 characters (at
--     most 2,400 bytes of UTF-8), for range scans (the rows under a
--     directory). Truncation keeps byte order: if a <= b then
--     prefix(a) <= prefix(b), so a range on the prefix, with the exact
--     range on file_path beside it, finds exactly the rows of the range.
-- A query uses them by naming the expression: functions.sql looks a path
-- up with `vsync_path_key(f.file_path) = vsync_path_key($path) AND
-- f.file_path = $path` (the second condition makes a hash collision
-- harmless to correctness: two paths of one project with the same MD5,
-- which only someone who may write that project could make on purpose,
-- cannot both be current: the second is refused with 23505). md5(text):
-- PostgreSQL inlines the SQL function, and md5 is leakproof, so under
-- row-level security (005_access.sql) a lookup by a parameter is still an
-- index condition; a non-leakproof expression (decode(), left(),
-- sha256(convert_to())) may only be a filter applied after the policy,
-- and a write then scanned every current row of its project.
-- vsync_path_prefix is PL/pgSQL and declared LEAKPROOF for the same
-- reason (left() cannot fail, but is not marked so): PL/pgSQL is never
-- inlined, so the planner sees the declaration. Creating a LEAKPROOF
-- function takes a superuser, as the rest of this schema does.
--
-- Idempotent: applied once by `vsyncctl init` (again with --reapply).

CREATE OR REPLACE FUNCTION vsync_path_key(p text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT md5(p)
$$;

CREATE OR REPLACE FUNCTION vsync_path_prefix(p text)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE AS $$
BEGIN
	RETURN left(p, 600);
END $$;

-- one current row per path: the live version or its tombstone
CREATE UNIQUE INDEX IF NOT EXISTS project_files_current_key
	ON project_files (project_id, vsync_path_key(file_path))
	WHERE is_current;
CREATE INDEX IF NOT EXISTS project_files_current_prefix
	ON project_files (project_id, vsync_path_prefix(file_path))
	WHERE is_current;
CREATE INDEX IF NOT EXISTS project_files_history_key
	ON project_files (project_id, vsync_path_key(file_path), version);

DROP INDEX IF EXISTS project_files_current_path;
DROP INDEX IF EXISTS project_files_history;
