-- 003_conflicts_index.sql - finds a project's recorded conflicts
-- (vsync_conflicts() in functions.sql) without reading its whole change
-- log.
--
-- Idempotent: applied once by `vsyncctl init` (again with --reapply).
-- Databases made before functions.sql existed created this index in
-- 004_conflicts.sql; it is the same index.

CREATE INDEX IF NOT EXISTS file_operations_conflicts
	ON file_operations (project_id, seq)
	WHERE operation_data ? 'conflict';

