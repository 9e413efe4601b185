-- 003_change_feed.sql - the change feed read by vsync-relay and by agents
-- catching up from PostgreSQL (docs/protocol.md, "Change feed").
--
-- vsync_change_feed: one row per change, in seq order, with the state the
-- change left at its path, in the fields of include/vsync/change.h (the
-- Redis stream carries the same fields).
-- vsync_change_rows: every project_files row a range of changes produced
-- (a change may produce many: parent directories created on the way, a
-- recursive delete, a directory rename). Applying them in seq order to a
-- manifest of change N gives exactly the manifest of the later change:
-- every write function inserts a row, stamped with its seq, for each path
-- whose state it changes, and never changes a path otherwise.
--
-- Idempotent (CREATE OR REPLACE): applied by `vsyncctl init`.

-- 004_conflicts.sql adds a column (conflict), so the return type may
-- differ on --reapply: drop it first (004 then makes its own again).
DROP FUNCTION IF EXISTS vsync_change_feed(uuid, bigint, int);
CREATE OR REPLACE FUNCTION vsync_change_feed(p_project uuid, p_after bigint,
					     p_limit int)
RETURNS TABLE(seq bigint, op text, path text, old_path text, kind text,
	      mode int, size bigint, hash text, version int, mtime_ns bigint,
	      target text, author text)
LANGUAGE sql STABLE AS $$
	SELECT o.seq,
	       o.operation_type::text,
	       o.path,
	       CASE WHEN o.operation_type = 'rename'
		    THEN o.operation_data->>'old_path' END,
	       -- a tombstone keeps the kind of what it removed; the
	       -- operation's own record of it is the fallback
	       coalesce(f.kind, o.operation_data->>'kind', prev.kind),
	       CASE WHEN o.operation_type <> 'delete' THEN f.mode END,
	       CASE WHEN f.kind IN ('file', 'symlink') AND NOT f.is_deleted
		    THEN f.file_size END,
	       CASE WHEN NOT f.is_deleted THEN f.content_hash::text END,
	       coalesce(f.version, (o.operation_data->>'version')::int),
	       (extract(epoch FROM coalesce(f.created_at, o.created_at))
		* 1000000000)::bigint,
	       CASE WHEN f.kind = 'symlink' AND NOT f.is_deleted
		    THEN f.content END,
	       o.user_id
	  FROM file_operations o
	  LEFT JOIN LATERAL (
		SELECT r.kind, r.mode, r.file_size, r.content_hash,
		       r.version, r.created_at, r.content, r.is_deleted
		  FROM project_files r
		 WHERE r.project_id = o.project_id AND r.file_path = o.path
		   AND r.seq = o.seq
		 ORDER BY r.version DESC
		 LIMIT 1) f ON true
	  LEFT JOIN LATERAL (
		SELECT r.kind
		  FROM project_files r
		 WHERE o.operation_type = 'delete'
		   AND r.project_id = o.project_id AND r.file_path = o.path
		   AND r.seq < o.seq AND NOT r.is_deleted
		 ORDER BY r.version DESC
		 LIMIT 1) prev ON true
	 WHERE o.project_id = p_project AND o.seq > coalesce(p_after, 0)
	 ORDER BY o.seq
	 LIMIT p_limit
$$;

CREATE OR REPLACE FUNCTION vsync_change_rows(p_project uuid, p_after bigint,
					     p_upto bigint)
RETURNS TABLE(seq bigint, path text, deleted boolean, kind text, mode int,
	      size bigint, hash text, version int, mtime_ns bigint,
	      target text)
LANGUAGE sql STABLE AS $$
	SELECT f.seq, f.file_path, f.is_deleted, f.kind, f.mode, f.file_size,
	       f.content_hash::text, f.version,
	       (extract(epoch FROM f.created_at) * 1000000000)::bigint,
	       CASE WHEN f.kind = 'symlink' AND NOT f.is_deleted
		    THEN f.content END
	  FROM project_files f
	 WHERE f.project_id = p_project AND f.seq > coalesce(p_after, 0)
	   AND f.seq <= p_upto
	 ORDER BY f.seq, f.file_path
$$;
