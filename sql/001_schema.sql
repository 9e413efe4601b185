-- 001_schema.sql - vsync tables: projects, every version of every path,
-- and the change log.
--
-- The seed's project_files / file_operations model (seed/000, "PostgreSQL
-- Schema (Enhanced)") made valid and binary-safe:
--   * its partial UNIQUE constraint becomes a partial unique index;
--   * authors are text (there is no users table);
--   * content TEXT holds UTF-8 text (encoding 'utf8') or base64 (encoding
--     'base64', is_binary true) for bytes that are not valid UTF-8 or
--     contain NUL; a symlink's content is its target;
--   * directories and tombstones carry no content: content and
--     content_hash are NULL for them (a CHECK pins this);
--   * every change of a project has a gap-free sequence number
--     (projects.change_seq), written on each row it produced
--     (project_files.seq) and on its one file_operations row.
--
-- Idempotent: applied by `vsyncctl init`, possibly again.

CREATE TABLE IF NOT EXISTS vsync_schema_migrations (
	name text PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS projects (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL UNIQUE
		CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
	-- the last change committed (0: none yet). Writers lock this row
	-- first, so changes of one project commit in seq order.
	change_seq bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS project_files (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	-- byte order ("C") so prefix range scans and listings are bytewise
	file_path text COLLATE "C" NOT NULL,
	content text,
	content_hash varchar(64)
		CHECK (content_hash ~ '^[0-9a-f]{64}$'),
	file_size bigint NOT NULL DEFAULT 0 CHECK (file_size >= 0),
	mime_type varchar(255),
	encoding varchar(32) DEFAULT 'utf8'
		CHECK (encoding IN ('utf8', 'base64')),

	-- version control
	version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
	parent_version_id uuid REFERENCES project_files(id),
	is_current boolean NOT NULL DEFAULT true,

	-- metadata
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),

	-- performance hints (seed)
	is_binary boolean NOT NULL DEFAULT false,
	is_generated boolean NOT NULL DEFAULT false,
	last_accessed_at timestamptz,
	access_count integer NOT NULL DEFAULT 0,

	-- vsync
	kind text NOT NULL DEFAULT 'file'
		CHECK (kind IN ('file', 'dir', 'symlink')),
	mode integer NOT NULL CHECK (mode BETWEEN 0 AND 4095),
	is_deleted boolean NOT NULL DEFAULT false,
	seq bigint,

	-- content and hash exist exactly for live files and symlinks
	CONSTRAINT project_files_content_kind CHECK (
		(content_hash IS NULL) = (kind = 'dir' OR is_deleted)
		AND (content IS NULL) = (content_hash IS NULL))
);

-- The path indexes (one current row per path; a path's history; the rows
-- under a directory) are on expressions of file_path: 004_path_index.sql.
CREATE INDEX IF NOT EXISTS project_files_project_current
	ON project_files (project_id) WHERE is_current;
CREATE INDEX IF NOT EXISTS project_files_content_hash
	ON project_files (project_id, content_hash);
CREATE INDEX IF NOT EXISTS project_files_seq
	ON project_files (project_id, seq);
CREATE INDEX IF NOT EXISTS project_files_hot
	ON project_files (project_id, last_accessed_at DESC)
	WHERE access_count > 10;

CREATE TABLE IF NOT EXISTS file_operations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	operation_id uuid NOT NULL,	-- idempotency key
	project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	file_id uuid REFERENCES project_files(id),
	operation_type varchar(50) NOT NULL
		CHECK (operation_type IN ('create', 'update', 'delete',
					  'rename', 'mkdir', 'rollback')),
	operation_data jsonb NOT NULL,
	user_id text NOT NULL,		-- the author
	session_id uuid,
	ip_address inet,
	user_agent text,
	created_at timestamptz NOT NULL DEFAULT now(),

	seq bigint NOT NULL,
	path text COLLATE "C",
	result jsonb,			-- returned again to a retry

	CONSTRAINT unique_operation UNIQUE (operation_id),
	CONSTRAINT file_operations_project_seq UNIQUE (project_id, seq)
);
