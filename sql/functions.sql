-- functions.sql - every vsync_* function: the write path, the read
-- functions, the change feed and the conflict record.
--
-- Every writer (platform API, vsyncctl, the mount's write-back) changes a
-- project only through the vsync_* write functions below, so the write
-- semantics live here, whatever the writer's language:
--
--   * One change = one call = one seq. A write function first locks the
--     project row (SELECT ... FOR UPDATE), then advances projects.change_seq.
--     The row lock serialises the writers of a project until commit, so seq
--     order is commit order and there is no gap (a rolled-back change takes
--     its increment with it).
--   * Idempotency: p_operation_id (NULL = a fresh one) is recorded in
--     file_operations; calling again with an id already recorded returns the
--     stored result and changes nothing.
--   * Every change writes new project_files rows (never updates content in
--     place), one file_operations row, and one NOTIFY on 'file_changes'.
--     The rows a change produced are the project_files rows with its seq
--     (a write that creates parent directories, a recursive delete and a
--     directory rename produce several).
--   * A path has one current row: its live version or its tombstone
--     (is_deleted). Version numbers grow per path across deletes.
--
-- Errors (SQLSTATE, mapped to errno by sync/pg.c vs_pg_errno()):
--   P0002 unknown project / no such path or version      ENOENT
--   P0003 target exists                                  EEXIST
--   P0004 conflict: base version is not current          ESTALE
--   P0005 a parent is not a directory                    ENOTDIR
--   P0006 is a directory                                 EISDIR
--   P0007 directory not empty                            ENOTEMPTY
--   P0008 path or name too long                          ENAMETOOLONG
--   22023 invalid path or argument                       EINVAL
--
-- This file holds functions only; tables, types, indexes and policies are
-- numbered migrations (0NN_*.sql), applied once each, with the functions
-- they depend on (vsync_path_key and vsync_path_prefix in
-- 004_path_index.sql, vsync__privileged in 005_access.sql). `vsyncctl init` applies the
-- migrations first, then this whole file again, every time, in one
-- transaction: a function is changed here, in place, never in a
-- migration. A function whose return type changes is dropped first
-- (DROP FUNCTION IF EXISTS), since CREATE OR REPLACE cannot change it.

-- ---------------------------------------------------------------------
-- Internal helpers (vsync__*): not part of the protocol.
-- ---------------------------------------------------------------------

-- Raise 22023 / P0008 unless @p_path is a valid project path (see
-- include/vsync/path.h; control characters are refused too).
CREATE OR REPLACE FUNCTION vsync_check_path(p_path text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	c text;
	why text;
	shown text;
BEGIN
	IF p_path IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'invalid path: NULL';
	END IF;
	shown := CASE WHEN length(p_path) > 80
		 THEN left(p_path, 80) || '...' ELSE p_path END;
	shown := regexp_replace(shown, '[\x01-\x1f\x7f]', '?', 'g');
	IF octet_length(p_path) > 4096 THEN
		RAISE EXCEPTION USING ERRCODE = 'P0008',
			MESSAGE = format('path too long: ''%s'' (%s bytes, at most 4096)',
					 shown, octet_length(p_path));
	END IF;
	IF p_path = '' THEN
		why := 'empty';
	ELSIF left(p_path, 1) = '/' THEN
		why := 'absolute';
	ELSIF right(p_path, 1) = '/' THEN
		why := 'trailing ''/''';
	ELSIF p_path ~ '[\x01-\x1f\x7f]' THEN
		why := 'control character';
	ELSE
		FOREACH c IN ARRAY string_to_array(p_path, '/') LOOP
			IF c = '' THEN
				why := 'empty component';
			ELSIF c = '.' OR c = '..' THEN
				why := format('''%s'' component', c);
			ELSIF octet_length(c) > 255 THEN
				RAISE EXCEPTION USING ERRCODE = 'P0008',
					MESSAGE = format('name too long in ''%s'' (%s bytes, at most 255)',
							 shown, octet_length(c));
			END IF;
			EXIT WHEN why IS NOT NULL;
		END LOOP;
	END IF;
	IF why IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid path ''%s'': %s', shown, why);
	END IF;
END $$;

-- Whether @p_bytes can be stored as text: valid UTF-8 without NUL.
-- Anything else is stored as base64.
CREATE OR REPLACE FUNCTION vsync__is_utf8(p_bytes bytea)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	PERFORM convert_from(p_bytes, 'UTF8');
	RETURN true;
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
	RETURN false;
END $$;

-- (content, encoding) -> bytes.
-- STABLE like convert_to(), so that it is inlined into the caller's query
-- (an IMMUTABLE wrapper around a STABLE function is not: it then costs a
-- second copy of the content).
CREATE OR REPLACE FUNCTION vsync__decode(p_content text, p_encoding text)
RETURNS bytea LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_encoding = 'base64' THEN decode(p_content, 'base64')
		    ELSE convert_to(p_content, 'UTF8') END
$$;

-- The whole bytes of content @p_hash of project @p_project stored as
-- (@p_content, @p_encoding): decoded, or its chunks joined in order for
-- encoding 'chunks' (006_chunks.sql; at most 1 GB, PostgreSQL's limit of
-- one value: a reader of larger content takes it chunk by chunk with
-- vsync_chunk).
CREATE OR REPLACE FUNCTION vsync__bytes(p_project uuid, p_hash text,
					p_content text, p_encoding text)
RETURNS bytea LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_encoding = 'chunks' THEN
		(SELECT coalesce(string_agg(k.data, ''::bytea ORDER BY c.idx),
				 ''::bytea)
		   FROM vsync_content_chunks c
		   JOIN vsync_chunks k
		     ON k.project_id = c.project_id AND k.sha = c.sha
		  WHERE c.project_id = p_project AND c.content_hash = p_hash)
		ELSE vsync__decode(p_content, p_encoding) END
$$;

-- Raise 22023 unless the chunks of content @p_hash in project @p_project
-- are all there: 0 .. n-1, 8 MiB each but the last, @p_size bytes in all.
CREATE OR REPLACE FUNCTION vsync__check_chunks(p_project uuid, p_hash text,
					       p_size bigint)
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_n bigint;
	v_last int;
	v_bytes bigint;
	v_short bigint;
BEGIN
	SELECT count(*), coalesce(max(c.idx), -1), coalesce(sum(c.size), 0),
	       count(*) FILTER (WHERE c.size <> 8388608)
	  INTO v_n, v_last, v_bytes, v_short
	  FROM vsync_content_chunks c
	 WHERE c.project_id = p_project AND c.content_hash = p_hash;
	IF p_size IS NULL OR p_size < 1 OR v_n = 0 OR v_last <> v_n - 1
	   OR v_bytes <> p_size OR v_n <> (p_size + 8388607) / 8388608
	   OR v_short > 1 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('content %s is not stored whole: %s chunks (last %s), %s of %s bytes',
					 p_hash, v_n, v_last, v_bytes,
					 coalesce(p_size::text, 'NULL'));
	END IF;
END $$;

-- Lock project @p_project for a change (until commit) and return its
-- last change seq. 42501 for a project the session may not change, P0002
-- for an unknown one.
CREATE OR REPLACE FUNCTION vsync__lock_project(p_project uuid)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_seq bigint;
BEGIN
	SELECT p.change_seq INTO v_seq FROM projects p
	 WHERE p.id = p_project FOR UPDATE;
	IF NOT FOUND THEN
		-- row-level security hides the projects not granted: say so
		-- to a container that names one (it knows the id already)
		IF NOT vsync__privileged() THEN
			RAISE EXCEPTION USING ERRCODE = '42501',
				MESSAGE = format('permission denied: role %s may not change project %s',
						 session_user, p_project);
		END IF;
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('unknown project: %s', p_project);
	END IF;
	RETURN v_seq;
END $$;

-- Lock project @p_project for this change and check the idempotency key.
-- Returns the stored result if @p_op was already recorded (seq NULL then),
-- else the new change seq.
CREATE OR REPLACE FUNCTION vsync__begin_change(p_project uuid, p_op uuid,
					       OUT new_seq bigint,
					       OUT prior jsonb)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vsync__lock_project(p_project);
	SELECT o.result INTO prior FROM file_operations o
	 WHERE o.operation_id = p_op;
	IF FOUND THEN
		IF NOT EXISTS (SELECT 1 FROM file_operations o
				WHERE o.operation_id = p_op
				  AND o.project_id = p_project) THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = format('operation %s belongs to another project', p_op);
		END IF;
		RETURN;
	END IF;
	UPDATE projects p SET change_seq = p.change_seq + 1
	 WHERE p.id = p_project RETURNING p.change_seq INTO new_seq;
END $$;

-- True if the session may read project @p_project: it is the service's,
-- or the project is granted to it (and visible through row-level
-- security). Otherwise 42501, whether the project exists or not, so a
-- container learns nothing of the others. Called once per statement (a
-- one-time filter) by the read functions, which would otherwise return
-- nothing at all for a project not granted.
CREATE OR REPLACE FUNCTION vsync__access(p_project uuid)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF vsync__privileged()
	   OR EXISTS (SELECT 1 FROM projects p WHERE p.id = p_project) THEN
		RETURN true;
	END IF;
	RAISE EXCEPTION USING ERRCODE = '42501',
		MESSAGE = format('permission denied: role %s may not read project %s',
				 session_user, p_project);
END $$;

-- The current row of a path (its live version or tombstone); NULL if the
-- path never existed. PL/pgSQL, not SQL: its query is planned once per
-- session, where a SQL function is planned again at every call (twice per
-- write), and planning a query under row-level security is not free.
CREATE OR REPLACE FUNCTION vsync__current(p_project uuid, p_path text)
RETURNS vsync_entry LANGUAGE plpgsql STABLE AS $$
DECLARE
	r vsync_entry;
BEGIN
	SELECT f.id, f.file_path, f.version, f.kind, f.mode, f.is_deleted,
	       f.content_hash, f.file_size
	  INTO r
	  FROM project_files f
	 WHERE f.project_id = p_project
	   AND vsync_path_key(f.file_path) = vsync_path_key(p_path)
	   AND f.file_path = p_path
	   AND f.is_current;
	RETURN r;
END $$;

CREATE OR REPLACE FUNCTION vsync__live(r vsync_entry)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
	SELECT r.id IS NOT NULL AND NOT r.is_deleted
$$;

-- Raise P0004 unless the current row @cur of @p_path matches @p_base
-- (NULL: anything; 0: must not exist; N: live at version N).
CREATE OR REPLACE FUNCTION vsync__check_base(p_path text, cur vsync_entry,
					     p_base int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF p_base IS NULL THEN
		RETURN;
	END IF;
	IF p_base < 0 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid base version %s', p_base);
	END IF;
	IF vsync__live(cur) THEN
		IF cur.version <> p_base THEN
			RAISE EXCEPTION USING ERRCODE = 'P0004',
				MESSAGE = format('conflict: ''%s'' is at version %s, not %s',
						 p_path, cur.version, p_base);
		END IF;
	ELSIF p_base <> 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'P0004',
			MESSAGE = format('conflict: ''%s'' does not exist, not at version %s',
					 p_path, p_base);
	END IF;
END $$;

-- Make @prev (the current row of @p_path, or NULL) history and insert the
-- next version, made by change @p_seq. Content comes from @p_bytes, or is
-- copied from row @p_src (rename, rollback), or is the chunks of
-- @p_chunked_hash, @p_chunked_size bytes (checked by the caller); dirs and
-- tombstones have none.
DROP FUNCTION IF EXISTS vsync__put(uuid, text, vsync_entry, text, int,
				    bytea, uuid, boolean, bigint, text);
CREATE OR REPLACE FUNCTION vsync__put(p_project uuid, p_path text,
				      prev vsync_entry, p_kind text,
				      p_mode int, p_bytes bytea, p_src uuid,
				      p_deleted boolean, p_seq bigint,
				      p_author text,
				      p_chunked_hash text DEFAULT NULL,
				      p_chunked_size bigint DEFAULT NULL)
RETURNS vsync_entry LANGUAGE plpgsql AS $$
DECLARE
	r vsync_entry;
	v_now timestamptz := clock_timestamp();
	v_who text := coalesce(p_author, session_user);
	v_utf8 boolean;
BEGIN
	IF prev.id IS NOT NULL THEN
		UPDATE project_files f SET is_current = false, updated_at = v_now
		 WHERE f.id = prev.id;
	END IF;
	-- created_at is the clock after the project lock, so the versions
	-- of a project get increasing times in seq order (now() would be
	-- the transaction start)
	r := ROW(gen_random_uuid(), p_path, coalesce(prev.version, 0) + 1,
		 p_kind, p_mode, p_deleted, NULL, 0)::vsync_entry;
	IF p_deleted OR p_kind = 'dir' THEN
		INSERT INTO project_files (id, project_id, file_path, content,
			content_hash, file_size, encoding, version,
			parent_version_id, created_by, created_at, updated_at,
			kind, mode, is_deleted, seq)
		VALUES (r.id, p_project, p_path, NULL, NULL, 0, 'utf8',
			r.version, prev.id, v_who, v_now, v_now, p_kind, p_mode,
			p_deleted, p_seq);
	ELSIF p_src IS NOT NULL THEN
		INSERT INTO project_files (id, project_id, file_path, content,
			content_hash, file_size, mime_type, encoding, version,
			parent_version_id, created_by, created_at, updated_at,
			is_binary, kind, mode, is_deleted, seq)
		SELECT r.id, p_project, p_path, s.content, s.content_hash,
		       s.file_size, s.mime_type, s.encoding, r.version, prev.id,
		       v_who, v_now, v_now, s.is_binary, p_kind, p_mode, false,
		       p_seq
		  FROM project_files s WHERE s.id = p_src;
		SELECT s.content_hash, s.file_size INTO r.content_hash, r.file_size
		  FROM project_files s WHERE s.id = p_src;
	ELSIF p_bytes IS NULL AND p_chunked_hash IS NOT NULL THEN
		r.content_hash := p_chunked_hash;
		r.file_size := p_chunked_size;
		INSERT INTO project_files (id, project_id, file_path, content,
			content_hash, file_size, encoding, version,
			parent_version_id, created_by, created_at, updated_at,
			is_binary, kind, mode, is_deleted, seq)
		VALUES (r.id, p_project, p_path, '', r.content_hash,
			r.file_size, 'chunks', r.version, prev.id, v_who,
			v_now, v_now, true, p_kind, p_mode, false, p_seq);
	ELSE
		v_utf8 := vsync__is_utf8(p_bytes);
		r.content_hash := encode(sha256(p_bytes), 'hex');
		r.file_size := octet_length(p_bytes);
		INSERT INTO project_files (id, project_id, file_path, content,
			content_hash, file_size, encoding, version,
			parent_version_id, created_by, created_at, updated_at,
			is_binary, kind, mode, is_deleted, seq)
		VALUES (r.id, p_project, p_path,
			CASE WHEN v_utf8 THEN convert_from(p_bytes, 'UTF8')
			     ELSE encode(p_bytes, 'base64') END,
			r.content_hash, r.file_size,
			CASE WHEN v_utf8 THEN 'utf8' ELSE 'base64' END,
			r.version, prev.id, v_who, v_now, v_now, NOT v_utf8,
			p_kind, p_mode, false, p_seq);
	END IF;
	RETURN r;
END $$;

-- Create the missing parent directories of @p_path (mode 0755) as part of
-- change @p_seq; P0005 if a parent is a file or symlink.
CREATE OR REPLACE FUNCTION vsync__ensure_parents(p_project uuid, p_path text,
						 p_seq bigint, p_author text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	parts text[] := string_to_array(p_path, '/');
	dir text;
	cur vsync_entry;
BEGIN
	FOR i IN 1 .. coalesce(array_length(parts, 1), 0) - 1 LOOP
		dir := array_to_string(parts[1:i], '/');
		cur := vsync__current(p_project, dir);
		IF vsync__live(cur) THEN
			IF cur.kind <> 'dir' THEN
				RAISE EXCEPTION USING ERRCODE = 'P0005',
					MESSAGE = format('not a directory: ''%s''', dir);
			END IF;
			CONTINUE;
		END IF;
		PERFORM vsync__put(p_project, dir, cur, 'dir', 493, NULL, NULL,
				   false, p_seq, p_author);
	END LOOP;
END $$;

-- The live rows strictly under directory @p_dir, in path order.
CREATE OR REPLACE FUNCTION vsync__children(p_project uuid, p_dir text)
RETURNS SETOF vsync_entry LANGUAGE sql STABLE AS $$
	SELECT f.id, f.file_path, f.version, f.kind, f.mode, f.is_deleted,
	       f.content_hash::text, f.file_size
	  FROM project_files f
	 WHERE f.project_id = p_project AND f.is_current AND NOT f.is_deleted
	   AND vsync_path_prefix(f.file_path)
	       BETWEEN vsync_path_prefix(p_dir || '/')
		   AND vsync_path_prefix(p_dir || '0')
	   AND f.file_path >= p_dir || '/' AND f.file_path < p_dir || '0'
	 ORDER BY f.file_path
$$;

CREATE OR REPLACE FUNCTION vsync__check_mode(p_mode int)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_mode IS NOT NULL AND (p_mode < 0 OR p_mode > 4095) THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid mode %s (permission bits 0..07777)',
					 p_mode);
	END IF;
END $$;

-- ---------------------------------------------------------------------
-- Projects
-- ---------------------------------------------------------------------

-- Create project @p_name, or return the id it already has.
CREATE OR REPLACE FUNCTION vsync_create_project(p_name text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
	v_id uuid;
BEGIN
	IF p_name IS NULL OR p_name !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid project name ''%s''', p_name),
			HINT = 'a letter or digit, then up to 63 of [A-Za-z0-9._-]';
	END IF;
	INSERT INTO projects (name) VALUES (p_name)
	ON CONFLICT (name) DO NOTHING RETURNING id INTO v_id;
	IF v_id IS NULL THEN
		SELECT p.id INTO v_id FROM projects p WHERE p.name = p_name;
	END IF;
	RETURN v_id;
END $$;

-- A project's id from its name or its id (text). P0002 if unknown.
CREATE OR REPLACE FUNCTION vsync_project_id(p_name_or_id text)
RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_id uuid;
BEGIN
	IF p_name_or_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
		SELECT p.id INTO v_id FROM projects p
		 WHERE p.id = p_name_or_id::uuid;
	END IF;
	IF v_id IS NULL THEN
		SELECT p.id INTO v_id FROM projects p WHERE p.name = p_name_or_id;
	END IF;
	IF v_id IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('unknown project: %s', p_name_or_id);
	END IF;
	RETURN v_id;
END $$;

-- The last committed change of a project. P0002 if unknown.
CREATE OR REPLACE FUNCTION vsync_project_seq(p_project uuid)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_seq bigint;
BEGIN
	SELECT p.change_seq INTO v_seq FROM projects p WHERE p.id = p_project;
	IF NOT FOUND THEN
		PERFORM vsync__access(p_project);
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('unknown project: %s', p_project);
	END IF;
	RETURN v_seq;
END $$;

-- ---------------------------------------------------------------------
-- Write functions
-- ---------------------------------------------------------------------

-- Create directory @p_path (and missing parents). P0003 if it exists.
CREATE OR REPLACE FUNCTION vsync_mkdir(p_project uuid, p_path text,
				       p_mode int, p_operation_id uuid,
				       p_author text)
RETURNS TABLE(seq bigint, version int)
LANGUAGE plpgsql AS $$
DECLARE
	v_op uuid := coalesce(p_operation_id, gen_random_uuid());
	b record;
	cur vsync_entry;
	r vsync_entry;
BEGIN
	PERFORM vsync_check_path(p_path);
	PERFORM vsync__check_mode(p_mode);
	b := vsync__begin_change(p_project, v_op);
	IF b.prior IS NOT NULL THEN
		RETURN QUERY SELECT (b.prior->>'seq')::bigint,
				    (b.prior->>'version')::int;
		RETURN;
	END IF;
	cur := vsync__current(p_project, p_path);
	IF vsync__live(cur) THEN
		RAISE EXCEPTION USING ERRCODE = 'P0003',
			MESSAGE = format('file exists: ''%s''', p_path);
	END IF;
	PERFORM vsync__ensure_parents(p_project, p_path, b.new_seq, p_author);
	r := vsync__put(p_project, p_path, cur, 'dir', coalesce(p_mode, 493),
			NULL, NULL, false, b.new_seq, p_author);
	PERFORM vsync__record(p_project, b.new_seq, v_op, 'mkdir', p_path, NULL,
			      r.version, NULL, r.id, p_author,
			      jsonb_build_object('kind', 'dir', 'mode', r.mode),
			      jsonb_build_object('seq', b.new_seq,
						 'version', r.version));
	RETURN QUERY SELECT b.new_seq, r.version;
END $$;

-- Delete @p_path (a tombstone version). P0002 if missing, P0007 for a
-- non-empty directory unless @p_recursive. With @p_seen_seq, the caller
-- deletes what it had up to change @p_seen_seq (a mount: the newest
-- change it had applied): P0004 if anyone else (an author other than
-- @p_author) changed the path, or anything still under it, after that
-- change. Their work stays.
DROP FUNCTION IF EXISTS vsync_delete(uuid, text, int, uuid, text, boolean);
CREATE OR REPLACE FUNCTION vsync_delete(p_project uuid, p_path text,
					p_base_version int,
					p_operation_id uuid, p_author text,
					p_recursive boolean DEFAULT false,
					p_seen_seq bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_op uuid := coalesce(p_operation_id, gen_random_uuid());
	v_who text := coalesce(p_author, session_user);
	b record;
	cur vsync_entry;
	ch vsync_entry;
	r vsync_entry;
	n int := 0;
	v_path text;
	v_seq bigint;
BEGIN
	PERFORM vsync_check_path(p_path);
	b := vsync__begin_change(p_project, v_op);
	IF b.prior IS NOT NULL THEN
		RETURN (b.prior->>'seq')::bigint;
	END IF;
	cur := vsync__current(p_project, p_path);
	IF NOT vsync__live(cur) THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('no such file or directory: ''%s''', p_path);
	END IF;
	PERFORM vsync__check_base(p_path, cur, p_base_version);
	IF p_seen_seq IS NOT NULL THEN
		SELECT f.file_path, f.seq INTO v_path, v_seq
		  FROM project_files f
		 WHERE f.id = cur.id AND f.seq > p_seen_seq
		   AND f.created_by <> v_who;
		IF v_path IS NULL AND cur.kind = 'dir' THEN
			SELECT f.file_path, f.seq INTO v_path, v_seq
			  FROM project_files f
			 WHERE f.project_id = p_project AND f.is_current
			   AND NOT f.is_deleted
			   AND vsync_path_prefix(f.file_path)
			       BETWEEN vsync_path_prefix(p_path || '/')
				   AND vsync_path_prefix(p_path || '0')
			   AND f.file_path >= p_path || '/'
			   AND f.file_path < p_path || '0'
			   AND f.seq > p_seen_seq AND f.created_by <> v_who
			 LIMIT 1;
		END IF;
		IF v_path IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0004',
				MESSAGE = format('conflict: ''%s'' changed by another writer in change %s, after %s',
						 v_path, v_seq, p_seen_seq);
		END IF;
	END IF;
	IF cur.kind = 'dir' THEN
		FOR ch IN SELECT * FROM vsync__children(p_project, p_path) LOOP
			IF NOT coalesce(p_recursive, false) THEN
				RAISE EXCEPTION USING ERRCODE = 'P0007',
					MESSAGE = format('directory not empty: ''%s''', p_path);
			END IF;
			PERFORM vsync__put(p_project, ch.file_path, ch, ch.kind,
					   ch.mode, NULL, NULL,
					   true, b.new_seq, p_author);
			n := n + 1;
		END LOOP;
	END IF;
	r := vsync__put(p_project, p_path, cur, cur.kind, cur.mode, NULL,
			NULL, true, b.new_seq, p_author);
	PERFORM vsync__record(p_project, b.new_seq, v_op, 'delete', p_path,
			      NULL, r.version, NULL, r.id, p_author,
			      jsonb_build_object('kind', cur.kind,
						 'descendants', n),
			      jsonb_build_object('seq', b.new_seq,
						 'version', r.version));
	RETURN b.new_seq;
END $$;

-- Rename file, symlink or directory @p_from to @p_to (a directory moves
-- with its subtree in the same change). A file or symlink replaces a file
-- or symlink at @p_to; any other existing target is P0003. Moving a
-- directory into itself is 22023.
CREATE OR REPLACE FUNCTION vsync_rename(p_project uuid, p_from text,
					p_to text, p_base_version int,
					p_operation_id uuid, p_author text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	v_op uuid := coalesce(p_operation_id, gen_random_uuid());
	b record;
	src vsync_entry;
	dst vsync_entry;
	ch vsync_entry;
	dcur vsync_entry;
	r vsync_entry;
	v_new text;
	n int := 0;
BEGIN
	PERFORM vsync_check_path(p_from);
	PERFORM vsync_check_path(p_to);
	IF p_from = p_to THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid argument: ''%s'' renamed to itself', p_from);
	END IF;
	b := vsync__begin_change(p_project, v_op);
	IF b.prior IS NOT NULL THEN
		RETURN (b.prior->>'seq')::bigint;
	END IF;
	src := vsync__current(p_project, p_from);
	IF NOT vsync__live(src) THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('no such file or directory: ''%s''', p_from);
	END IF;
	PERFORM vsync__check_base(p_from, src, p_base_version);
	IF src.kind = 'dir' AND left(p_to, length(p_from) + 1) = p_from || '/' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid argument: cannot move ''%s'' into itself',
					 p_from);
	END IF;
	dst := vsync__current(p_project, p_to);
	IF vsync__live(dst) AND (src.kind = 'dir' OR dst.kind = 'dir') THEN
		RAISE EXCEPTION USING ERRCODE = 'P0003',
			MESSAGE = format('file exists: ''%s''', p_to);
	END IF;
	PERFORM vsync__ensure_parents(p_project, p_to, b.new_seq, p_author);
	r := vsync__put(p_project, p_to, dst, src.kind, src.mode, NULL, src.id,
			false, b.new_seq, p_author);
	IF src.kind = 'dir' THEN
		FOR ch IN SELECT * FROM vsync__children(p_project, p_from) LOOP
			v_new := p_to || substr(ch.file_path, length(p_from) + 1);
			PERFORM vsync_check_path(v_new);
			dcur := vsync__current(p_project, v_new);
			IF vsync__live(dcur) THEN
				RAISE EXCEPTION USING ERRCODE = 'P0003',
					MESSAGE = format('file exists: ''%s''', v_new);
			END IF;
			PERFORM vsync__put(p_project, v_new, dcur, ch.kind,
					   ch.mode, NULL, ch.id, false, b.new_seq,
					   p_author);
			PERFORM vsync__put(p_project, ch.file_path, ch, ch.kind,
					   ch.mode, NULL, NULL,
					   true, b.new_seq, p_author);
			n := n + 1;
		END LOOP;
	END IF;
	PERFORM vsync__put(p_project, p_from, src, src.kind, src.mode, NULL,
			   NULL, true, b.new_seq, p_author);
	PERFORM vsync__record(p_project, b.new_seq, v_op, 'rename', p_to,
			      p_from, r.version, r.content_hash, r.id, p_author,
			      jsonb_build_object('kind', src.kind,
						 'replaced', vsync__live(dst),
						 'descendants', n),
			      jsonb_build_object('seq', b.new_seq,
						 'version', r.version));
	RETURN b.new_seq;
END $$;

-- Make version @p_version of @p_path current again, as a new version with
-- its content, mode and kind.
CREATE OR REPLACE FUNCTION vsync_rollback(p_project uuid, p_path text,
					  p_version int, p_operation_id uuid,
					  p_author text)
RETURNS TABLE(seq bigint, version int, content_hash text)
LANGUAGE plpgsql AS $$
DECLARE
	v_op uuid := coalesce(p_operation_id, gen_random_uuid());
	b record;
	old vsync_entry;
	cur vsync_entry;
	r vsync_entry;
BEGIN
	PERFORM vsync_check_path(p_path);
	b := vsync__begin_change(p_project, v_op);
	IF b.prior IS NOT NULL THEN
		RETURN QUERY SELECT (b.prior->>'seq')::bigint,
				    (b.prior->>'version')::int,
				    b.prior->>'content_hash';
		RETURN;
	END IF;
	SELECT f.id, f.file_path, f.version, f.kind, f.mode, f.is_deleted,
	       f.content_hash, f.file_size
	  INTO old FROM project_files f
	 WHERE f.project_id = p_project
	   AND vsync_path_key(f.file_path) = vsync_path_key(p_path)
	   AND f.file_path = p_path
	   AND f.version = p_version;
	IF old.id IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('no version %s of ''%s''', p_version, p_path);
	END IF;
	IF old.is_deleted OR old.kind = 'dir' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('cannot roll back ''%s'' to version %s: it is %s',
					 p_path, p_version,
					 CASE WHEN old.is_deleted THEN 'a deletion'
					      ELSE 'a directory' END);
	END IF;
	cur := vsync__current(p_project, p_path);
	IF vsync__live(cur) AND cur.kind = 'dir' THEN
		RAISE EXCEPTION USING ERRCODE = 'P0006',
			MESSAGE = format('is a directory: ''%s''', p_path);
	END IF;
	PERFORM vsync__ensure_parents(p_project, p_path, b.new_seq, p_author);
	r := vsync__put(p_project, p_path, cur, old.kind, old.mode, NULL, old.id,
			false, b.new_seq, p_author);
	PERFORM vsync__record(p_project, b.new_seq, v_op, 'rollback', p_path,
			      NULL, r.version, r.content_hash, r.id, p_author,
			      jsonb_build_object('kind', old.kind,
						 'mode', old.mode,
						 'size', r.file_size,
						 'from_version', p_version),
			      jsonb_build_object('seq', b.new_seq,
						 'version', r.version,
						 'content_hash', r.content_hash));
	RETURN QUERY SELECT b.new_seq, r.version, r.content_hash::text;
END $$;

-- ---------------------------------------------------------------------
-- Read functions
-- ---------------------------------------------------------------------

-- The live tree: files, dirs and symlinks in byte order of path. Dirs
-- have content_hash NULL; link_target is a symlink's target.
CREATE OR REPLACE FUNCTION vsync_manifest(p_project uuid)
RETURNS TABLE(path text, kind text, mode int, size bigint,
	      content_hash text, version int, mtime_ns bigint,
	      link_target text)
LANGUAGE sql STABLE AS $$
	SELECT f.file_path, f.kind, f.mode, f.file_size, f.content_hash,
	       f.version,
	       (extract(epoch FROM f.created_at) * 1000000000)::bigint,
	       CASE WHEN f.kind = 'symlink' THEN f.content END
	  FROM project_files f
	 WHERE f.project_id = p_project AND vsync__access(p_project)
	   AND f.is_current AND NOT f.is_deleted
	 ORDER BY f.file_path
$$;

-- The tree as it was right after change @p_seq (0: before the first), in
-- the columns and order of vsync_manifest: for each path, its last row
-- stamped at or before @p_seq, if that row is live (every change stamps a
-- row for each path whose state it changes: vsync_change_rows). Callers
-- check @p_seq against vsync_project_seq: past it, this is the live tree.
CREATE OR REPLACE FUNCTION vsync_manifest_at(p_project uuid, p_seq bigint)
RETURNS TABLE(path text, kind text, mode int, size bigint,
	      content_hash text, version int, mtime_ns bigint,
	      link_target text)
LANGUAGE sql STABLE AS $$
	SELECT s.file_path, s.kind, s.mode, s.file_size, s.content_hash,
	       s.version, s.mtime, s.target
	  FROM (SELECT DISTINCT ON (f.file_path)
		       f.file_path, f.kind, f.mode, f.file_size,
		       f.content_hash::text AS content_hash, f.version,
		       (extract(epoch FROM f.created_at)
			* 1000000000)::bigint AS mtime,
		       CASE WHEN f.kind = 'symlink' THEN f.content END
			   AS target,
		       f.is_deleted
		  FROM project_files f
		 WHERE f.project_id = p_project AND vsync__access(p_project)
		   AND f.seq <= p_seq
		 ORDER BY f.file_path, f.seq DESC, f.version DESC) s
	 WHERE NOT s.is_deleted
	 ORDER BY s.file_path
$$;

-- The last change of @p_project stamped at or before @p_time (0: none):
-- what "the project at that time" means for vsync-mount --at and
-- vsyncctl diff.
CREATE OR REPLACE FUNCTION vsync_seq_at(p_project uuid, p_time timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
	SELECT coalesce(max(o.seq), 0)
	  FROM file_operations o
	 WHERE o.project_id = p_project AND vsync__access(p_project)
	   AND o.created_at <= p_time
$$;

-- The bytes of content @p_hash in project @p_project (any version), NULL
-- if there is none.
CREATE OR REPLACE FUNCTION vsync_blob(p_project uuid, p_hash text)
RETURNS bytea LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vsync__access(p_project);
	RETURN (SELECT vsync__bytes(p_project, p_hash, f.content, f.encoding)
		  FROM project_files f
		 WHERE f.project_id = p_project AND f.content_hash = p_hash
		 LIMIT 1);
END $$;

-- The bytes of each content of @p_hashes in project @p_project (any
-- version), one row per distinct hash in byte order; content NULL for a
-- hash the project has no content for. (vsyncctl export: one call a
-- batch.)
CREATE OR REPLACE FUNCTION vsync_blobs(p_project uuid, p_hashes text[])
RETURNS TABLE(content_hash text, content bytea)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vsync__access(p_project);
	RETURN QUERY
	SELECT h.h, (SELECT vsync__bytes(p_project, h.h, f.content,
					  f.encoding)
		       FROM project_files f
		      WHERE f.project_id = p_project AND f.content_hash = h.h
		      LIMIT 1)
	  FROM (SELECT DISTINCT x AS h FROM unnest(p_hashes) x) h
	 ORDER BY h.h COLLATE "C";
END $$;

-- The bytes of @p_path (current, or version @p_version). P0002 if the
-- path or version does not exist or is deleted, P0006 for a directory.
CREATE OR REPLACE FUNCTION vsync_read_file(p_project uuid, p_path text,
					   p_version int DEFAULT NULL)
RETURNS bytea LANGUAGE plpgsql STABLE AS $$
DECLARE
	r vsync_entry;
BEGIN
	PERFORM vsync__access(p_project);
	PERFORM vsync_check_path(p_path);
	IF p_version IS NULL THEN
		r := vsync__current(p_project, p_path);
	ELSE
		SELECT f.id, f.file_path, f.version, f.kind, f.mode,
		       f.is_deleted, f.content_hash, f.file_size
		  INTO r FROM project_files f
		 WHERE f.project_id = p_project
		   AND vsync_path_key(f.file_path) = vsync_path_key(p_path)
		   AND f.file_path = p_path
		   AND f.version = p_version;
	END IF;
	IF NOT vsync__live(r) THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = CASE WHEN p_version IS NULL
				  THEN format('no such file: ''%s''', p_path)
				  ELSE format('no version %s of ''%s''', p_version, p_path) END;
	END IF;
	IF r.kind = 'dir' THEN
		RAISE EXCEPTION USING ERRCODE = 'P0006',
			MESSAGE = format('is a directory: ''%s''', p_path);
	END IF;
	RETURN (SELECT vsync__bytes(p_project, f.content_hash, f.content,
				    f.encoding)
		  FROM project_files f WHERE f.id = r.id);
END $$;

-- Every version of @p_path, oldest first (empty if it never existed).
CREATE OR REPLACE FUNCTION vsync_history(p_project uuid, p_path text)
RETURNS TABLE(version int, kind text, size bigint, content_hash text,
	      author text, created_at timestamptz, is_deleted boolean,
	      seq bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vsync__access(p_project);
	PERFORM vsync_check_path(p_path);
	RETURN QUERY
	SELECT f.version, f.kind, f.file_size, f.content_hash::text,
	       f.created_by, f.created_at, f.is_deleted, f.seq
	  FROM project_files f
	 WHERE f.project_id = p_project
	   AND vsync_path_key(f.file_path) = vsync_path_key(p_path)
	   AND f.file_path = p_path
	 ORDER BY f.version;
END $$;

-- The changes after seq @p_after, in seq order, at most @p_limit (NULL:
-- all). The relay and catching-up agents read this.
-- The changes of @p_project made by the operation ids @p_ops (an idempotency
-- key not recorded in this project is simply absent): each one's seq and
-- the result a retry of it returns ({"seq", "version", "content_hash"} for
-- a write). The write-back asks which of its journaled operations are
-- committed already.
CREATE OR REPLACE FUNCTION vsync_operations(p_project uuid, p_ops uuid[])
RETURNS TABLE(operation_id uuid, seq bigint, result jsonb)
LANGUAGE sql STABLE AS $$
	SELECT o.operation_id, o.seq, o.result
	  FROM file_operations o
	 WHERE o.operation_id = ANY(p_ops) AND o.project_id = p_project
	   AND vsync__access(p_project)
	 ORDER BY o.seq
$$;

-- Every project and its last committed change, in id order: what
-- vsync-relay scans at start and after losing notifications.
DROP FUNCTION IF EXISTS vsync_projects();
CREATE OR REPLACE FUNCTION vsync_projects(p_project uuid DEFAULT NULL)
RETURNS TABLE(id uuid, change_seq bigint, name text)
LANGUAGE sql STABLE AS $$
	SELECT p.id, p.change_seq, p.name FROM projects p
	 WHERE p_project IS NULL OR p.id = p_project
	 ORDER BY p.id
$$;

CREATE OR REPLACE FUNCTION vsync_changes(p_project uuid, p_after bigint,
					 p_limit int)
RETURNS TABLE(seq bigint, operation_id uuid, operation_type text,
	      path text, old_path text, version int, content_hash text,
	      author text, created_at timestamptz, operation_data jsonb)
LANGUAGE sql STABLE AS $$
	SELECT o.seq, o.operation_id, o.operation_type::text, o.path,
	       o.operation_data->>'old_path',
	       (o.operation_data->>'version')::int,
	       o.operation_data->>'checksum',
	       o.user_id, o.created_at, o.operation_data
	  FROM file_operations o
	 WHERE o.project_id = p_project AND vsync__access(p_project) AND o.seq > coalesce(p_after, 0)
	 ORDER BY o.seq
	 LIMIT p_limit
$$;

-- Summary of a project's live tree. P0002 if unknown.
CREATE OR REPLACE FUNCTION vsync_project_status(p_project uuid)
RETURNS TABLE(id uuid, name text, seq bigint, files bigint, dirs bigint,
	      symlinks bigint, bytes bigint)
LANGUAGE sql STABLE AS $$
	SELECT p.id, p.name, vsync_project_seq(p.id),
	       count(*) FILTER (WHERE f.kind = 'file'),
	       count(*) FILTER (WHERE f.kind = 'dir'),
	       count(*) FILTER (WHERE f.kind = 'symlink'),
	       coalesce(sum(f.file_size) FILTER (WHERE f.kind = 'file'), 0)::bigint
	  FROM projects p
	  LEFT JOIN project_files f
	    ON f.project_id = p.id AND f.is_current AND NOT f.is_deleted
	 WHERE p.id = vsync_project_id(p_project::text)
	 GROUP BY p.id, p.name
$$;

-- ---------------------------------------------------------------------
-- The change feed, read by vsync-relay and by agents catching up from
-- PostgreSQL (docs/protocol.md, "Change feed").
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
-- ---------------------------------------------------------------------

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
	 WHERE f.project_id = p_project AND vsync__access(p_project) AND f.seq > coalesce(p_after, 0)
	   AND f.seq <= p_upto
	 ORDER BY f.seq, f.file_path
$$;

-- ---------------------------------------------------------------------
-- Conflicts: concurrent edits that could not be merged, the write-back's
-- "local side wins", recorded and announced (docs/protocol.md,
-- "Conflicts"; DESIGN.md section 5, invariant 4).
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
-- ---------------------------------------------------------------------

-- ---------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------

-- Record change @p_seq in file_operations (@p_extra, e.g. a "conflict"
-- object, merged into operation_data) and announce it on 'file_changes'
-- with {"project_id", "seq"} only: PostgreSQL lets any role LISTEN, so
-- the seed's full event (path, version, checksum, conflict) goes out
-- through vsync-relay on each project's own Redis channel instead.
CREATE OR REPLACE FUNCTION vsync__record(p_project uuid, p_seq bigint,
					 p_op uuid, p_type text, p_path text,
					 p_old_path text, p_version int,
					 p_checksum text, p_file_id uuid,
					 p_author text, p_extra jsonb,
					 p_result jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO file_operations (operation_id, project_id, file_id,
				     operation_type, operation_data, user_id,
				     seq, path, result, created_at)
	VALUES (p_op, p_project, p_file_id, p_type,
		jsonb_strip_nulls(jsonb_build_object(
			'path', p_path, 'old_path', p_old_path,
			'version', p_version, 'checksum', p_checksum))
		|| coalesce(p_extra, '{}'::jsonb),
		coalesce(p_author, session_user), p_seq, p_path,
		p_result, clock_timestamp());
	-- a wake-up, not the data: any role may LISTEN, so the payload says
	-- nothing a container of another project may not know
	PERFORM pg_notify('file_changes',
			  json_build_object('project_id', p_project,
					    'seq', p_seq)::text);
END $$;

-- The body of vsync_write_file, with @p_conflict: NULL, or the
-- object {"based_on": B, "overwrote": C} recorded in operation_data under
-- "conflict" (and so announced by vsync__record).
DROP FUNCTION IF EXISTS vsync__write_file(uuid, text, bytea, int, int, uuid,
					   text, text, jsonb);
CREATE OR REPLACE FUNCTION vsync__write_file(p_project uuid, p_path text,
					     p_content bytea, p_mode int,
					     p_base_version int,
					     p_operation_id uuid,
					     p_author text, p_kind text,
					     p_conflict jsonb,
					     p_chunked_hash text DEFAULT NULL,
					     p_chunked_size bigint DEFAULT NULL)
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
	IF p_content IS NULL AND (p_chunked_hash IS NULL OR p_kind <> 'file') THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('no content for ''%s''', p_path);
	END IF;
	IF p_content IS NULL AND p_chunked_hash !~ '^[0-9a-f]{64}$' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid content hash ''%s'' for ''%s''',
					 p_chunked_hash, p_path);
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
	IF p_content IS NULL THEN
		PERFORM vsync__check_chunks(p_project, p_chunked_hash,
					    p_chunked_size);
	END IF;
	r := vsync__put(p_project, p_path, cur, p_kind, v_mode, p_content,
			NULL, false, b.new_seq, p_author, p_chunked_hash,
			p_chunked_size);
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

-- Write file or symlink @p_path with @p_content (a symlink's target).
-- @p_mode NULL keeps the current mode (new: 0644, symlink 0777).
-- @p_base_version: NULL unconditional, 0 create only, N must be at N.
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
	RETURN QUERY
	SELECT w.seq, w.version, w.content_hash
	  FROM vsync__write_file(p_project, p_path, p_content, p_mode,
				 p_current_version, p_operation_id, p_author,
				 p_kind,
				 vsync__over(p_path, p_base_version,
					     p_current_version)) w;
END $$;

-- The conflict record of a write of @p_path based on @p_base_version
-- over @p_current_version (vsync_write_file_over); 22023 unless
-- 0 <= @p_base_version < @p_current_version.
CREATE OR REPLACE FUNCTION vsync__over(p_path text, p_base_version int,
				       p_current_version int)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
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
	RETURN jsonb_build_object('based_on', p_base_version,
				  'overwrote', p_current_version);
END $$;

-- Of the chunks named @p_shas (SHA-256 in hex), those project
-- @p_project does not have: what a writer must store (vsync_chunk_put)
-- before it names them.
CREATE OR REPLACE FUNCTION vsync_chunks_missing(p_project uuid,
						p_shas text[])
RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vsync__access(p_project);
	RETURN QUERY
	SELECT DISTINCT x FROM unnest(p_shas) x
	 WHERE NOT EXISTS (SELECT 1 FROM vsync_chunks k
			    WHERE k.project_id = p_project AND k.sha = x);
END $$;

-- Store chunk @p_data (1 byte to 8 MiB) of project @p_project under its
-- name @p_sha, the SHA-256 of its bytes in hex: 22023 if it is not (the
-- server checks). A chunk there already is left as it is.
CREATE OR REPLACE FUNCTION vsync_chunk_put(p_project uuid, p_sha text,
					   p_data bytea)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vsync__access(p_project);
	IF p_data IS NULL OR octet_length(p_data) NOT BETWEEN 1 AND 8388608
	   OR p_sha IS NULL OR encode(sha256(p_data), 'hex') <> p_sha THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid chunk %s (%s bytes: 1 to 8388608, named by their SHA-256)',
					 p_sha, octet_length(p_data));
	END IF;
	INSERT INTO vsync_chunks (project_id, sha, data)
	VALUES (p_project, p_sha, p_data)
	ON CONFLICT (project_id, sha) DO NOTHING;
END $$;

-- Write file @p_path with content @p_hash of @p_size bytes made of the
-- stored chunks @p_shas, in order (8 MiB each but the last):
-- vsync_write_file, or with @p_current_version not NULL
-- vsync_write_file_over, for content stored in chunks. 22023 if a chunk
-- is missing or the sizes do not add up. The server does not hash the
-- whole (it would read every chunk back): a reader checks it. Only when
-- a version of the project names @p_hash already and its chunk list is
-- not @p_shas (none, or another) does the server hash the new list (of
-- 8 chunks at most): it replaces the old one if its bytes are @p_hash,
-- else 22023. A
-- writer can therefore not change what committed versions (history
-- included) read, and an honest writer is not locked out by a forged
-- list (the cut is fixed, so one content has one list).
CREATE OR REPLACE FUNCTION vsync_write_chunked(p_project uuid, p_path text,
					       p_hash text, p_size bigint,
					       p_shas text[], p_mode int,
					       p_base_version int,
					       p_current_version int,
					       p_operation_id uuid,
					       p_author text)
RETURNS TABLE(seq bigint, version int, content_hash text)
LANGUAGE plpgsql AS $$
DECLARE
	v_old text[];
	v_keep boolean := false;
BEGIN
	PERFORM vsync__access(p_project);
	IF p_hash IS NULL OR p_hash !~ '^[0-9a-f]{64}$' OR p_shas IS NULL
	   OR cardinality(p_shas) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid chunked content %s for ''%s''',
					 p_hash, p_path);
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(p_shas) x
		    WHERE NOT EXISTS (SELECT 1 FROM vsync_chunks k
				       WHERE k.project_id = p_project
					 AND k.sha = x)) THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('content %s of ''%s'' names a chunk that is not stored',
					 p_hash, p_path);
	END IF;
	-- the list of a content is the same whoever writes it (its bytes
	-- cut at 8 MiB). The project lock first (vsync__write_file takes it
	-- again): a writer of the same content in another transaction then
	-- waits for its commit and finds its list, instead of inserting
	-- beside its uncommitted rows and failing on the primary key (23505,
	-- refused for good)
	PERFORM vsync__lock_project(p_project);
	SELECT array_agg(c.sha::text ORDER BY c.idx) INTO v_old
	  FROM vsync_content_chunks c
	 WHERE c.project_id = p_project AND c.content_hash = p_hash;
	IF v_old IS NOT DISTINCT FROM p_shas THEN
		v_keep := true; -- a retry, or a second writer of it
	ELSIF EXISTS (SELECT 1 FROM project_files f
		       WHERE f.project_id = p_project
			 AND f.content_hash = p_hash) THEN
		-- committed versions read the old list (or their whole
		-- bytes): only the list of exactly @p_hash may stand
		-- in for it, hashed here for content of 8 chunks (64 MiB)
		-- at most: the bytes are put together in memory, which a
		-- container must not be able to make 1 GB on the shared
		-- server (past that the stored list stands)
		IF cardinality(p_shas) > 8 OR
		   (SELECT encode(sha256(string_agg(k.data, ''::bytea
						     ORDER BY x.i)), 'hex')
		      FROM unnest(p_shas) WITH ORDINALITY AS x(sha, i)
		      JOIN vsync_chunks k
			ON k.project_id = p_project AND k.sha = x.sha)
		   IS DISTINCT FROM p_hash THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = format('content %s of ''%s'' is stored already, in other chunks',
						 p_hash, p_path);
		END IF;
	END IF;
	IF NOT v_keep THEN
		DELETE FROM vsync_content_chunks c
		 WHERE c.project_id = p_project AND c.content_hash = p_hash;
		INSERT INTO vsync_content_chunks (project_id, content_hash,
						  idx, sha, size)
		SELECT p_project, p_hash, (x.i - 1)::int, x.sha,
		       octet_length(k.data)
		  FROM unnest(p_shas) WITH ORDINALITY AS x(sha, i)
		  LEFT JOIN vsync_chunks k
		    ON k.project_id = p_project AND k.sha = x.sha;
	END IF;
	RETURN QUERY
	SELECT w.seq, w.version, w.content_hash
	  FROM vsync__write_file(p_project, p_path, NULL, p_mode,
				 coalesce(p_current_version, p_base_version),
				 p_operation_id, p_author, 'file',
				 CASE WHEN p_current_version IS NOT NULL
				      THEN vsync__over(p_path, p_base_version,
						       p_current_version) END,
				 p_hash, p_size) w;
END $$;

-- Chunk @p_idx of content @p_hash of project @p_project: its bytes and
-- their SHA-256 in hex (checked when it was stored). No row when there
-- is no such chunk, also when the content is stored whole (a
-- project_files row's encoding is not 'chunks'): read it with vsync_blob
-- then.
DROP FUNCTION IF EXISTS vsync_chunk(uuid, text, int);
CREATE FUNCTION vsync_chunk(p_project uuid, p_hash text, p_idx int)
RETURNS TABLE(data bytea, sha text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vsync__access(p_project);
	RETURN QUERY
	SELECT k.data, k.sha::text
	  FROM vsync_content_chunks c
	  JOIN vsync_chunks k ON k.project_id = c.project_id AND k.sha = c.sha
	 WHERE c.project_id = p_project AND c.content_hash = p_hash
	   AND c.idx = p_idx;
END $$;

-- The chunks of content @p_hash of project @p_project, in order: each
-- one's index, name (its SHA-256 in hex) and size, without their bytes.
-- No row when the content is stored whole. The relay reads it to put
-- into Redis only the chunks it has not cut into pieces before.
DROP FUNCTION IF EXISTS vsync_chunk_list(uuid, text);
CREATE FUNCTION vsync_chunk_list(p_project uuid, p_hash text)
RETURNS TABLE(idx int, sha text, size int)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM vsync__access(p_project);
	RETURN QUERY
	SELECT c.idx, c.sha::text, c.size
	  FROM vsync_content_chunks c
	 WHERE c.project_id = p_project AND c.content_hash = p_hash
	 ORDER BY c.idx;
END $$;

-- Import a batch of entries (vsyncctl import; a platform's bulk upload):
-- path @p_paths[i] becomes a @p_kinds[i] ('file', 'symlink' or 'dir')
-- with mode @p_modes[i] and, for files and symlinks, bytes
-- @p_contents[i] (NULL for a dir). Exactly what one vsync_mkdir or
-- vsync_write_file call per entry, in array order, would do (without a
-- base version, with fresh operation ids): one change (seq, a
-- project_files version, a file_operations row, a NOTIFY) per entry, but
-- set-based, in one statement per step. A dir that is already a live dir
-- is left alone (no change). Differences: every parent of a path must be
-- a live dir already or a dir earlier in the batch (22023 otherwise; the
-- single-path functions would create it), and the whole batch is refused
-- if one entry is. Errors as the single-path functions: 22023 / P0008
-- invalid path, mode, kind or content, or a path twice; P0003 a dir over a
-- live file; P0006 a file over a live dir; P0005 a parent is not a dir.
-- Returns one row per change: the entry's index in the arrays (1-based),
-- its seq, version and content hash (NULL for a dir).
CREATE OR REPLACE FUNCTION vsync_import_batch(p_project uuid, p_author text,
					      p_paths text[], p_kinds text[],
					      p_modes int[],
					      p_contents bytea[])
RETURNS TABLE(idx int, seq bigint, version int, content_hash text)
LANGUAGE plpgsql
-- the joins of a batch with itself and with the current rows are hash
-- joins: the planner sees an unnest() of unknown selectivity and, inside
-- the import's transaction, statistics that know none of its rows, and
-- its nested loops were quadratic in the batch. No JIT: the cost of a
-- nested loop it must still use (a LATERAL) counts as "disabled", far
-- above jit_above_cost, and compiling each statement took longer than
-- running it. An unnest() in FROM is materialised: with the default
-- work_mem a batch's content went through a temporary file.
SET enable_nestloop = off
SET jit = off
SET work_mem = '128MB'
AS $$
DECLARE
	v_who text := coalesce(p_author, session_user);
	v_n int := coalesce(cardinality(p_paths), 0);
	v_seq0 bigint;
	v_seq bigint[];
	v_prev uuid[];
	v_ver int[];
	v_type text[];
	v_last bigint;
	bad record;
BEGIN
	IF coalesce(cardinality(p_kinds), 0) <> v_n
	   OR coalesce(cardinality(p_modes), 0) <> v_n
	   OR coalesce(cardinality(p_contents), 0) <> v_n THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'import batch: paths, kinds, modes and contents differ in length';
	END IF;
	IF v_n = 0 THEN
		RETURN;
	END IF;
	PERFORM vsync_check_path(u.path), vsync__check_mode(u.mode)
	   FROM unnest(p_paths, p_modes) u(path, mode);
	SELECT u.path, u.kind INTO bad
	  FROM unnest(p_paths, p_kinds, p_modes, p_contents)
	       u(path, kind, mode, content)
	 WHERE u.kind IS NULL OR u.kind NOT IN ('file', 'symlink', 'dir')
	    OR u.mode IS NULL OR (u.kind = 'dir') <> (u.content IS NULL)
	    OR (u.kind = 'symlink'
		AND (octet_length(u.content) NOT BETWEEN 1 AND 4095
		     OR NOT vsync__is_utf8(u.content)))
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid import entry ''%s'' (kind %s: a file or symlink with content, a dir without; a mode; a symlink target of 1..4095 bytes of UTF-8)',
					 bad.path, coalesce(bad.kind, 'NULL'));
	END IF;
	SELECT u.path INTO bad FROM unnest(p_paths) u(path)
	 GROUP BY u.path HAVING count(*) > 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('''%s'' twice in one import batch', bad.path);
	END IF;
	v_seq0 := vsync__lock_project(p_project);

	-- each entry beside the current row of its path and of its parent
	SELECT u.path, u.kind, c.kind AS cur_kind, pc.kind AS parent_kind,
	       pr.parent, d.i AS parent_idx, u.i
	  INTO bad
	  FROM unnest(p_paths, p_kinds) WITH ORDINALITY u(path, kind, i)
	  CROSS JOIN LATERAL (SELECT CASE WHEN strpos(u.path, '/') > 0
				     THEN regexp_replace(u.path, '/[^/]*$', '')
				     END AS parent) pr
	  LEFT JOIN project_files c
		 ON c.project_id = p_project AND c.is_current
		AND NOT c.is_deleted
		AND vsync_path_key(c.file_path) = vsync_path_key(u.path)
		AND c.file_path = u.path
	  LEFT JOIN project_files pc
		 ON pc.project_id = p_project AND pc.is_current
		AND NOT pc.is_deleted
		AND vsync_path_key(pc.file_path) = vsync_path_key(pr.parent)
		AND pc.file_path = pr.parent
	  LEFT JOIN unnest(p_paths, p_kinds) WITH ORDINALITY d(path, kind, i)
		 ON d.path = pr.parent AND d.kind = 'dir'
	 WHERE (u.kind = 'dir' AND c.kind IN ('file', 'symlink'))
	    OR (u.kind <> 'dir' AND c.kind = 'dir')
	    OR (pr.parent IS NOT NULL
		AND coalesce(pc.kind, '') <> 'dir'
		AND (d.i IS NULL OR d.i > u.i))
	 ORDER BY u.i
	 LIMIT 1;
	IF FOUND THEN
		IF bad.kind = 'dir' AND bad.cur_kind IN ('file', 'symlink') THEN
			RAISE EXCEPTION USING ERRCODE = 'P0003',
				MESSAGE = format('file exists: ''%s''', bad.path);
		ELSIF bad.kind <> 'dir' AND bad.cur_kind = 'dir' THEN
			RAISE EXCEPTION USING ERRCODE = 'P0006',
				MESSAGE = format('is a directory: ''%s''', bad.path);
		ELSIF bad.parent_kind IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0005',
				MESSAGE = format('not a directory: ''%s''', bad.parent);
		END IF;
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('import of ''%s'': its parent ''%s'' is neither a directory nor a directory earlier in the batch',
					 bad.path, bad.parent);
	END IF;

	-- per entry: its seq (NULL: a dir that is one already), the row it
	-- replaces, its version and operation type
	SELECT array_agg(CASE WHEN x.skip THEN NULL
			      ELSE v_seq0 + x.rank END ORDER BY x.i),
	       array_agg(x.prev ORDER BY x.i),
	       array_agg(x.ver ORDER BY x.i),
	       array_agg(x.typ ORDER BY x.i)
	  INTO v_seq, v_prev, v_ver, v_type
	  FROM (SELECT u.i, s.skip,
		       count(*) FILTER (WHERE NOT s.skip)
			   OVER (ORDER BY u.i) AS rank,
		       c.id AS prev, coalesce(c.version, 0) + 1 AS ver,
		       CASE WHEN u.kind = 'dir' THEN 'mkdir'
			    WHEN c.id IS NOT NULL AND NOT c.is_deleted
			    THEN 'update' ELSE 'create' END AS typ
		  FROM unnest(p_paths, p_kinds) WITH ORDINALITY u(path, kind, i)
		  LEFT JOIN project_files c
			 ON c.project_id = p_project AND c.is_current
			AND vsync_path_key(c.file_path) = vsync_path_key(u.path)
			AND c.file_path = u.path
		 CROSS JOIN LATERAL (SELECT coalesce(u.kind = 'dir'
						     AND c.kind = 'dir'
						     AND NOT c.is_deleted,
						     false) AS skip) s) x;
	SELECT max(s) INTO v_last FROM unnest(v_seq) s;
	IF v_last IS NULL THEN
		RETURN;
	END IF;

	UPDATE projects p SET change_seq = v_last WHERE p.id = p_project;
	UPDATE project_files f SET is_current = false,
				   updated_at = clock_timestamp()
	  FROM unnest(v_prev, v_seq) x(prev, seq)
	 WHERE f.id = x.prev AND x.seq IS NOT NULL;

	-- the versions, in seq order (created_at increases with seq), and
	-- one file_operations row each, as vsync__put and vsync__record
	-- write them
	-- (the arrays are in seq order, and so is the scan: no sort, and
	-- the content is read once, by the INSERT)
	WITH ins AS (
		INSERT INTO project_files AS f (id, project_id, file_path,
			content, content_hash, file_size, encoding, version,
			parent_version_id, created_by, created_at, updated_at,
			is_binary, kind, mode, is_deleted, seq)
		SELECT gen_random_uuid(), p_project, u.path,
		       CASE WHEN u.kind = 'dir' THEN NULL
			    WHEN x.utf8 THEN convert_from(u.content, 'UTF8')
			    ELSE encode(u.content, 'base64') END,
		       CASE WHEN u.kind <> 'dir'
			    THEN encode(sha256(u.content), 'hex') END,
		       coalesce(octet_length(u.content), 0),
		       CASE WHEN u.kind = 'dir' OR x.utf8 THEN 'utf8'
			    ELSE 'base64' END,
		       u.ver, u.prev, v_who, x.ts, x.ts,
		       u.kind <> 'dir' AND NOT x.utf8, u.kind, u.mode, false,
		       u.seq
		  FROM unnest(p_paths, p_kinds, p_modes, p_contents, v_seq,
			      v_prev, v_ver)
		       u(path, kind, mode, content, seq, prev, ver)
		 -- once per row (OFFSET 0: not pulled up and repeated)
		 CROSS JOIN LATERAL (SELECT CASE WHEN u.kind <> 'dir'
					    THEN vsync__is_utf8(u.content)
					    END AS utf8,
					    clock_timestamp() AS ts
				     OFFSET 0) x
		 WHERE u.seq IS NOT NULL
		RETURNING f.id, f.file_path, f.version, f.kind, f.mode,
			  f.content_hash, f.file_size, f.seq, f.created_at
	)
	INSERT INTO file_operations (operation_id, project_id, file_id,
				     operation_type, operation_data, user_id,
				     seq, path, result, created_at)
	SELECT gen_random_uuid(), p_project, i.id, t.typ,
	       CASE WHEN i.kind = 'dir'
		    THEN jsonb_build_object('path', i.file_path,
					    'version', i.version,
					    'kind', 'dir', 'mode', i.mode)
		    ELSE jsonb_build_object('path', i.file_path,
					    'version', i.version,
					    'checksum', i.content_hash,
					    'kind', i.kind, 'mode', i.mode,
					    'size', i.file_size) END,
	       v_who, i.seq, i.file_path,
	       CASE WHEN i.kind = 'dir'
		    THEN jsonb_build_object('seq', i.seq, 'version', i.version)
		    ELSE jsonb_build_object('seq', i.seq, 'version', i.version,
					    'content_hash', i.content_hash) END,
	       i.created_at
	  FROM ins i
	  JOIN unnest(v_seq, v_type) t(seq, typ) ON t.seq = i.seq;
	PERFORM pg_notify('file_changes',
			  json_build_object('project_id', p_project,
					    'seq', s)::text)
	   FROM unnest(v_seq) s WHERE s IS NOT NULL;
	RETURN QUERY
	SELECT x.i::int, x.seq, x.ver, f.content_hash::text
	  FROM unnest(v_seq, v_ver) WITH ORDINALITY x(seq, ver, i)
	  JOIN project_files f ON f.project_id = p_project AND f.seq = x.seq
	 ORDER BY x.i;
END $$;

-- ---------------------------------------------------------------------
-- Read functions
-- ---------------------------------------------------------------------

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
	PERFORM vsync__access(p_project);
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

-- The change feed. The last column, conflict, is the version the change
-- overwrote in a conflict (vsync_write_file_over), NULL for every other
-- change. It was added after the others, so the function is dropped and
-- created again (a database from before has the shorter return type).
-- PL/pgSQL, not SQL (as vsync__current): vsync-relay reads it once per
-- change, and a PostgreSQL-only mount once per change it follows; a SQL
-- function's query was planned again at every call (about 0.8 ms of a
-- 1 ms call on the test VM), PL/pgSQL keeps the plan for the session
-- (0.15 ms a call once it settles on the generic plan). Same rows.
DROP FUNCTION IF EXISTS vsync_change_feed(uuid, bigint, int);
CREATE FUNCTION vsync_change_feed(p_project uuid, p_after bigint,
				  p_limit int)
RETURNS TABLE(seq bigint, op text, path text, old_path text, kind text,
	      mode int, size bigint, hash text, version int, mtime_ns bigint,
	      target text, author text, conflict int)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
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
		 WHERE r.project_id = o.project_id
		   AND vsync_path_key(r.file_path) = vsync_path_key(o.path)
		   AND r.file_path = o.path
		   AND r.seq = o.seq
		 ORDER BY r.version DESC
		 LIMIT 1) f ON true
	  LEFT JOIN LATERAL (
		SELECT r.kind
		  FROM project_files r
		 WHERE o.operation_type = 'delete'
		   AND r.project_id = o.project_id
		   AND vsync_path_key(r.file_path) = vsync_path_key(o.path)
		   AND r.file_path = o.path
		   AND r.seq < o.seq AND NOT r.is_deleted
		 ORDER BY r.version DESC
		 LIMIT 1) prev ON true
	 WHERE o.project_id = p_project AND vsync__access(p_project)
	   AND o.seq > coalesce(p_after, 0)
	 ORDER BY o.seq
	 LIMIT p_limit;
END $$;

-- ---------------------------------------------------------------------
-- Grants: the credentials of a project's containers and of vsync-relay
-- (vsyncctl grant and revoke). They create and drop roles, so they run as
-- their caller (SECURITY INVOKER), and nobody is granted EXECUTE on them:
-- a superuser calls them.
-- ---------------------------------------------------------------------

-- Create, or rotate, the login role of @p_project's containers: role
-- vsync_c_<project id without dashes>, member of vsync_container, with
-- password @p_password, valid for @p_ttl (NULL: until revoked); record it
-- in vsync_grants. A rotation changes the password and the expiry, and
-- drops the role's own settings (a container can ALTER ROLE
-- CURRENT_USER SET default_transaction_read_only = on, or any other
-- setting, for every container of the project); the sessions already
-- open stay (revoke ends them). P0002 if the project is unknown.
CREATE OR REPLACE FUNCTION vsync_grant(p_project uuid, p_password text,
				       p_ttl interval)
RETURNS TABLE(role name, expires_at timestamptz)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
	v_role name := 'vsync_c_' || replace(p_project::text, '-', '');
	v_until timestamptz := CASE WHEN p_ttl IS NULL THEN NULL
				    ELSE now() + p_ttl END;
	v_db name;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = p_project) THEN
		RAISE EXCEPTION USING ERRCODE = 'P0002',
			MESSAGE = format('unknown project: %s', p_project);
	END IF;
	IF p_password IS NULL OR length(p_password) < 16 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'a grant needs a password of 16 characters or more';
	END IF;
	IF p_ttl IS NOT NULL AND p_ttl <= interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = format('invalid time to live: %s', p_ttl);
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = v_role) THEN
		EXECUTE format('CREATE ROLE %I LOGIN IN ROLE vsync_container',
			       v_role);
	END IF;
	EXECUTE format('ALTER ROLE %I LOGIN INHERIT PASSWORD %L VALID UNTIL %L',
		       v_role, p_password,
		       coalesce(v_until::text, 'infinity'));
	EXECUTE format('ALTER ROLE %I RESET ALL', v_role);
	FOR v_db IN SELECT d.datname FROM pg_db_role_setting s
		      JOIN pg_database d ON d.oid = s.setdatabase
		     WHERE s.setrole = (SELECT r.oid FROM pg_roles r
					 WHERE r.rolname = v_role) LOOP
		EXECUTE format('ALTER ROLE %I IN DATABASE %I RESET ALL',
			       v_role, v_db);
	END LOOP;
	-- its privileges are vsync_container's, and nothing else
	IF NOT pg_has_role(v_role, 'vsync_container', 'MEMBER') THEN
		EXECUTE format('GRANT vsync_container TO %I', v_role);
	END IF;
	INSERT INTO vsync_grants AS g (role, project_id, expires_at,
				       secret_sha256)
	VALUES (v_role, p_project, v_until,
		encode(sha256(convert_to(p_password, 'UTF8')), 'hex'))
	ON CONFLICT ON CONSTRAINT vsync_grants_pkey
	DO UPDATE SET project_id = EXCLUDED.project_id,
		      expires_at = EXCLUDED.expires_at, created_at = now(),
		      secret_sha256 = EXCLUDED.secret_sha256;
	RETURN QUERY SELECT v_role, v_until;
END $$;

-- Create, or rotate, the login role of vsync-relay: vsync_relay, member of
-- vsync_service (every project), with password @p_password.
CREATE OR REPLACE FUNCTION vsync_grant_relay(p_password text)
RETURNS name LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
	IF p_password IS NULL OR length(p_password) < 16 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'a grant needs a password of 16 characters or more';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'vsync_relay') THEN
		CREATE ROLE vsync_relay LOGIN IN ROLE vsync_service;
	END IF;
	EXECUTE format('ALTER ROLE vsync_relay LOGIN INHERIT PASSWORD %L',
		       p_password);
	IF NOT pg_has_role('vsync_relay', 'vsync_service', 'MEMBER') THEN
		GRANT vsync_service TO vsync_relay;
	END IF;
	RETURN 'vsync_relay'::name;
END $$;

-- Drop login role @p_role of a grant (its row is the caller's to
-- delete): no more logins, its sessions terminated. Whether there was
-- one to drop.
CREATE OR REPLACE FUNCTION vsync__drop_grant_role(p_role name)
RETURNS boolean LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p_role) THEN
		RETURN false;
	END IF;
	EXECUTE format('ALTER ROLE %I NOLOGIN', p_role);
	PERFORM pg_terminate_backend(a.pid)
	   FROM pg_stat_activity a WHERE a.usename = p_role;
	EXECUTE format('DROP ROLE %I', p_role);
	RETURN true;
END $$;

-- End the credentials of @p_project's containers: their sessions are
-- terminated, their roles dropped, their grants deleted. The number of
-- roles dropped (0: there were none).
CREATE OR REPLACE FUNCTION vsync_revoke(p_project uuid)
RETURNS int LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
	g record;
	n int := 0;
BEGIN
	FOR g IN DELETE FROM vsync_grants x WHERE x.project_id = p_project
		 RETURNING x.role LOOP
		IF vsync__drop_grant_role(g.role) THEN
			n := n + 1;
		END IF;
	END LOOP;
	RETURN n;
END $$;

-- End every grant whose time to live (`vsyncctl grant --ttl`) has
-- passed, as vsync_revoke does: its row, its role, the role's sessions
-- (VALID UNTIL refuses new logins only). Returns each one ended, with the
-- SHA-256 of its password, which is its Redis user's too: vsyncctl
-- removes that password, never one a grant made since has set (NULL for
-- a grant made before the column: the Redis user is dropped). A grant
-- renewed meanwhile is not expired any more, and stays.
CREATE OR REPLACE FUNCTION vsync_revoke_expired()
RETURNS TABLE(project_id uuid, role name, secret_sha256 text)
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
	g record;
BEGIN
	FOR g IN DELETE FROM vsync_grants x WHERE x.expires_at <= now()
		 RETURNING x.project_id, x.role, x.secret_sha256 LOOP
		PERFORM vsync__drop_grant_role(g.role);
		project_id := g.project_id;
		role := g.role;
		secret_sha256 := g.secret_sha256;
		RETURN NEXT;
	END LOOP;
END $$;

-- ---------------------------------------------------------------------
-- Access (005_access.sql, docs/security.md)
--
-- Every function belongs to vsync_owner, and nobody but the roles below
-- may call one. The entry points run as their owner (SECURITY DEFINER,
-- with a fixed search_path), so a caller needs no privilege on any table;
-- row-level security, FORCEd on the tables, still limits what they see
-- and change to the caller's projects. vsync_service may call every entry
-- point; vsync_container those a mount needs, on its own project.
-- ---------------------------------------------------------------------

DO $$
DECLARE
	f record;
	container text[] := ARRAY[
		'vsync_check_path', 'vsync_project_id', 'vsync_project_seq',
		'vsync_write_file', 'vsync_write_file_over', 'vsync_mkdir',
		'vsync_chunk_put', 'vsync_write_chunked', 'vsync_chunk',
		'vsync_chunks_missing',
		'vsync_delete', 'vsync_rename', 'vsync_rollback',
		'vsync_manifest', 'vsync_manifest_at', 'vsync_seq_at',
		'vsync_blob', 'vsync_read_file',
		'vsync_history', 'vsync_operations', 'vsync_changes',
		'vsync_project_status', 'vsync_change_rows',
		'vsync_change_feed', 'vsync_conflicts', 'vsync_path_key',
		'vsync_path_prefix'];
BEGIN
	FOR f IN SELECT p.oid::regprocedure AS sig, p.proname AS name
		   FROM pg_proc p
		   JOIN pg_namespace n ON n.oid = p.pronamespace
		  WHERE n.nspname = current_schema()
		    AND p.proname LIKE 'vsync%' LOOP
		EXECUTE format('ALTER FUNCTION %s OWNER TO vsync_owner', f.sig);
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
		-- (the path keys are pure, and in indexes: left as they are)
		IF f.name NOT LIKE 'vsync\_\_%'
		   AND f.name NOT IN ('vsync_path_key', 'vsync_path_prefix',
				      'vsync_grant', 'vsync_grant_relay',
				      'vsync_revoke', 'vsync_revoke_expired') THEN
			EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER'
				       ' SET search_path = %I, pg_temp',
				       f.sig, current_schema());
		END IF;
		-- (grants make roles: a superuser's, nobody else's)
		IF f.name NOT LIKE 'vsync\_\_%'
		   AND f.name NOT IN ('vsync_grant', 'vsync_grant_relay',
				      'vsync_revoke', 'vsync_revoke_expired') THEN
			EXECUTE format('GRANT EXECUTE ON FUNCTION %s'
				       ' TO vsync_service', f.sig);
		END IF;
		IF f.name = ANY(container) THEN
			EXECUTE format('GRANT EXECUTE ON FUNCTION %s'
				       ' TO vsync_container', f.sig);
		END IF;
	END LOOP;
END $$;
