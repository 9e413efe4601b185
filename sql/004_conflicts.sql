-- 004_conflicts.sql - concurrent edits that could not be merged: the
-- write-back's "local side wins", recorded and announced
-- (docs/protocol.md, "Conflicts"; DESIGN.md §5 invariant 4).
--
-- When a container's edit was based on version B of a file and the file
-- is now at version C > B, the write-back merges the two three-way
-- (sync/merge.c). When both touched the same lines it commits its own
-- content over C with vsync_write_file_over(): C is simply the previous
-- version, so it stays in history, and the change records the conflict
-- in file_operations.operation_data ({"conflict": {"based_on": B,
-- "overwrote": C}}), in the NOTIFY payload ("conflict": C), in the change
-- feed (column conflict = C, the relay's stream field `conflict`) and in
-- vsync_conflicts().
--
-- Supersedes two functions of 002: vsync_write_file is now a wrapper of
-- vsync__write_file (same signature and behaviour), and vsync__record
-- adds "conflict" to the NOTIFY payload of a change that has one.
-- vsync_change_feed gets a last column, conflict: its return type
-- changes, so it is dropped and created again.
--
-- Idempotent: applied by `vsyncctl init`, possibly again.

-- ---------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------

-- 002's vsync__record, plus: a change whose @p_extra has a "conflict"
-- object announces the version it overwrote as "conflict" (the last key
-- of the payload, present only then).
CREATE OR REPLACE FUNCTION vsync__record(p_project uuid, p_seq bigint,
					 p_op uuid, p_type text, p_path text,
					 p_old_path text, p_version int,
					 p_checksum text, p_file_id uuid,
					 p_author text, p_extra jsonb,
					 p_result jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	payload text;
	v_conflict int := (p_extra->'conflict'->>'overwrote')::int;
BEGIN
	INSERT INTO file_operations (operation_id, project_id, file_id,
				     operation_type, operation_data, user_id,
				     seq, path, result, created_at)
	VALUES (p_op, p_project, p_file_id, p_type,
		jsonb_strip_nulls(jsonb_build_object(
			'path', p_path, 'old_path', p_old_path,
			'version', p_version, 'checksum', p_checksum))
		|| coalesce(p_extra, '{}'::jsonb),
		coalesce(p_author, current_user), p_seq, p_path,
		p_result, clock_timestamp());
	payload := json_build_object('operation', p_type,
				     'project_id', p_project,
				     'file_path', p_path,
				     'version', p_version,
				     'checksum', p_checksum,
				     'timestamp', now(),
				     'seq', p_seq,
				     'old_path', p_old_path)::text;
	IF octet_length(payload) > 7900 THEN
		payload := json_build_object('operation', p_type,
					     'project_id', p_project,
					     'version', p_version,
					     'checksum', p_checksum,
					     'timestamp', now(),
					     'seq', p_seq,
					     'truncated', true)::text;
	END IF;
	IF v_conflict IS NOT NULL THEN
		-- json_build_object's text always ends with its closing brace
		payload := left(payload, -1) || ', "conflict" : ' || v_conflict
			   || '}';
	END IF;
	PERFORM pg_notify('file_changes', payload);
END $$;

-- The body of vsync_write_file (see 002), with @p_conflict: NULL, or the
-- object {"based_on": B, "overwrote": C} recorded in operation_data under
-- "conflict" (and so announced by vsync__record).
CREATE OR REPLACE FUNCTION vsync__write_file(p_project uuid, p_path text,
					     p_content bytea, p_mode int,
					     p_base_version int,
					     p_operation_id uuid,
					     p_author text, p_kind text,
					     p_conflict jsonb)
RETURNS TABLE(seq bigint, version int, content_hash text)
LANGUAGE plpgsql AS $$
DECLARE
	v_op uuid := coalesce(p_operation_id, gen_random_uuid());
	b record;
	cur vsync_entry;
	r vsync_entry;
	v_mode int;
	v_type text;
BEGIN
	PERFORM vsync_check_path(p_path);
	PERFORM vsync__check_mode(p_mode);
	IF p_kind IS NULL OR p_kind NOT IN ('file', 'symlink') THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid kind ''%s'' (file or symlink)', p_kind);
	END IF;
	IF p_content IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('no content for ''%s''', p_path);
	END IF;
	IF p_kind = 'symlink' AND (octet_length(p_content) NOT BETWEEN 1 AND 4095
			       OR NOT vsync__is_utf8(p_content)) THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid symlink target for ''%s'' (1..4095 bytes of UTF-8)',
					 p_path);
	END IF;
	b := vsync__begin_change(p_project, v_op);
	IF b.prior IS NOT NULL THEN
		RETURN QUERY SELECT (b.prior->>'seq')::bigint,
				    (b.prior->>'version')::int,
				    b.prior->>'content_hash';
		RETURN;
	END IF;
	cur := vsync__current(p_project, p_path);
	IF vsync__live(cur) AND cur.kind = 'dir' THEN
		RAISE EXCEPTION USING ERRCODE = 'P0006',
			MESSAGE = format('is a directory: ''%s''', p_path);
	END IF;
	PERFORM vsync__check_base(p_path, cur, p_base_version);
	PERFORM vsync__ensure_parents(p_project, p_path, b.new_seq, p_author);
	v_mode := coalesce(p_mode,
			   CASE WHEN vsync__live(cur) THEN cur.mode END,
			   CASE WHEN p_kind = 'symlink' THEN 511 ELSE 420 END);
	r := vsync__put(p_project, p_path, cur, p_kind, v_mode, p_content,
			NULL, false, b.new_seq, p_author);
	v_type := CASE WHEN vsync__live(cur) THEN 'update' ELSE 'create' END;
	PERFORM vsync__record(p_project, b.new_seq, v_op, v_type, p_path, NULL,
			      r.version, r.content_hash, r.id, p_author,
			      jsonb_build_object('kind', p_kind, 'mode', v_mode,
						 'size', r.file_size)
			      || CASE WHEN p_conflict IS NULL THEN '{}'::jsonb
				      ELSE jsonb_build_object('conflict',
							      p_conflict) END,
			      jsonb_build_object('seq', b.new_seq,
						 'version', r.version,
						 'content_hash', r.content_hash));
	RETURN QUERY SELECT b.new_seq, r.version, r.content_hash::text;
END $$;

-- ---------------------------------------------------------------------
-- Write functions
-- ---------------------------------------------------------------------

-- 002's vsync_write_file: same signature, same behaviour.
CREATE OR REPLACE FUNCTION vsync_write_file(p_project uuid, p_path text,
					    p_content bytea, p_mode int,
					    p_base_version int,
					    p_operation_id uuid,
					    p_author text,
					    p_kind text DEFAULT 'file')
RETURNS TABLE(seq bigint, version int, content_hash text)
LANGUAGE sql AS $$
	SELECT w.seq, w.version, w.content_hash
	  FROM vsync__write_file(p_project, p_path, p_content, p_mode,
				 p_base_version, p_operation_id, p_author,
				 p_kind, NULL) w
$$;

-- Commit a local edit based on version @p_base_version over the current
-- version @p_current_version, which the edits conflict with (the
-- write-back's "local side wins"). Exactly vsync_write_file with base
-- @p_current_version: if the path is no longer live at that version (a
-- newer edit, a delete), P0004, so nothing newer than what the caller
-- looked at is ever overwritten. The change records
-- {"conflict": {"based_on": B, "overwrote": C}} in operation_data and
-- announces "conflict": C; version C stays in history as the previous
-- version. 22023 unless 0 <= @p_base_version < @p_current_version.
-- Idempotent per @p_operation_id like every write function.
CREATE OR REPLACE FUNCTION vsync_write_file_over(p_project uuid,
						 p_path text,
						 p_content bytea,
						 p_mode int,
						 p_base_version int,
						 p_current_version int,
						 p_operation_id uuid,
						 p_author text,
						 p_kind text DEFAULT 'file')
RETURNS TABLE(seq bigint, version int, content_hash text)
LANGUAGE plpgsql AS $$
BEGIN
	IF p_current_version IS NULL OR p_current_version < 1 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid current version %s for ''%s'' (a live version, >= 1)',
					 coalesce(p_current_version::text, 'NULL'),
					 p_path);
	END IF;
	IF p_base_version IS NULL OR p_base_version < 0
	   OR p_base_version >= p_current_version THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid base version %s for ''%s'' (0 .. %s, below the current version)',
					 coalesce(p_base_version::text, 'NULL'),
					 p_path, p_current_version - 1);
	END IF;
	RETURN QUERY
	SELECT w.seq, w.version, w.content_hash
	  FROM vsync__write_file(p_project, p_path, p_content, p_mode,
				 p_current_version, p_operation_id, p_author,
				 p_kind,
				 jsonb_build_object('based_on', p_base_version,
						    'overwrote',
						    p_current_version)) w;
END $$;

-- ---------------------------------------------------------------------
-- Read functions
-- ---------------------------------------------------------------------

-- finds a project's conflicts without reading its whole change log
CREATE INDEX IF NOT EXISTS file_operations_conflicts
	ON file_operations (project_id, seq)
	WHERE operation_data ? 'conflict';

-- The recorded conflicts of a project (of @p_path only, if given), in seq
-- order: the change that overwrote (seq, the path, its new version and
-- author, when), the version its edit was based on and the version it
-- overwrote (which stays in history).
CREATE OR REPLACE FUNCTION vsync_conflicts(p_project uuid,
					   p_path text DEFAULT NULL)
RETURNS TABLE(seq bigint, path text, based_on int, overwrote int,
	      version int, author text, created_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_path IS NOT NULL THEN
		PERFORM vsync_check_path(p_path);
	END IF;
	RETURN QUERY
	SELECT o.seq, o.path::text,
	       (o.operation_data->'conflict'->>'based_on')::int,
	       (o.operation_data->'conflict'->>'overwrote')::int,
	       (o.operation_data->>'version')::int,
	       o.user_id, o.created_at
	  FROM file_operations o
	 WHERE o.project_id = p_project
	   AND o.operation_data ? 'conflict'
	   AND (p_path IS NULL OR o.path = p_path)
	 ORDER BY o.seq;
END $$;

-- 003's change feed plus a last column, conflict: the version the change
-- overwrote in a conflict (vsync_write_file_over), NULL for every other
-- change. The other columns, their order and meaning are unchanged.
DROP FUNCTION IF EXISTS vsync_change_feed(uuid, bigint, int);
CREATE FUNCTION vsync_change_feed(p_project uuid, p_after bigint,
				  p_limit int)
RETURNS TABLE(seq bigint, op text, path text, old_path text, kind text,
	      mode int, size bigint, hash text, version int, mtime_ns bigint,
	      target text, author text, conflict int)
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
	       o.user_id,
	       (o.operation_data->'conflict'->>'overwrote')::int
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
