-- 002_entry_type.sql - the composite type the write functions use for a
-- project_files row without its content (functions.sql).
--
-- Idempotent: applied once by `vsyncctl init` (again with --reapply).
-- Databases made before functions.sql existed created this type in
-- 002_functions.sql; it is the same type.

-- What the write functions handle of a row: everything but the content,
-- which is never copied through PL/pgSQL variables (a 50 MB value copied
-- once per column reference costs seconds).
DO $$
BEGIN
	CREATE TYPE vsync_entry AS (id uuid, file_path text, version int,
				    kind text, mode int, is_deleted boolean,
				    content_hash text, file_size bigint);
EXCEPTION WHEN duplicate_object THEN
	NULL;
END $$;

