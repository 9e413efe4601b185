-- 006_chunks.sql - the content of large files, in chunks.
--
-- A text column holds at most 1 GB, and a file in one value travels
-- whole: in one bytea parameter from the writer, in one result to the
-- reader, whole in the memory of both and of the backend. A file larger
-- than one chunk (include/vsync/pg.h, VS_CHUNK_SIZE: 8 MiB) is therefore
-- stored as chunks of 8 MiB (the last shorter):
--   vsync_chunks          the bytes of a chunk, once per project, named
--                         by their SHA-256 (checked by the server when
--                         stored);
--   vsync_content_chunks  which chunks, in which order (idx 0 .. n-1),
--                         make up a content (the SHA-256 of the whole
--                         file, as project_files.content_hash).
-- A writer asks which chunks the server lacks (vsync_chunks_missing),
-- stores those (vsync_chunk_put, one statement each), then the version
-- that names them (vsync_write_chunked); an edit of a few bytes of a
-- large file stores one new chunk, and its versions share the rest. A
-- reader takes them one at a time (vsync_chunk). The file's
-- project_files row has encoding 'chunks' and content '' (the contract's
-- columns keep their meaning: content_hash and file_size are those of
-- the whole file); vsync_blob(), vsync_blobs() and vsync_read_file()
-- still return the whole content of such a row (up to PostgreSQL's 1 GB
-- limit of one value), so a client that knows nothing of chunks reads
-- what it read before.
--
-- A reader checks each chunk against its name as it arrives and the
-- whole file against content_hash at the end. A rename or a rollback
-- copies the row and so shares its chunks. Chunks no row names any more
-- stay until the project is deleted (as old versions' content does).

CREATE TABLE IF NOT EXISTS vsync_chunks (
	project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	sha varchar(64) NOT NULL CHECK (sha ~ '^[0-9a-f]{64}$'),
	data bytea NOT NULL
		CHECK (octet_length(data) BETWEEN 1 AND 8388608),
	PRIMARY KEY (project_id, sha)
);
-- most large files are compressed already (images, archives, media):
-- trying to compress each chunk again costs the writer and the reader
-- CPU for nothing
ALTER TABLE vsync_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE IF NOT EXISTS vsync_content_chunks (
	project_id uuid NOT NULL,
	content_hash varchar(64) NOT NULL
		CHECK (content_hash ~ '^[0-9a-f]{64}$'),
	idx integer NOT NULL CHECK (idx >= 0),
	sha varchar(64) NOT NULL,
	size integer NOT NULL CHECK (size BETWEEN 1 AND 8388608),
	PRIMARY KEY (project_id, content_hash, idx),
	FOREIGN KEY (project_id, sha) REFERENCES vsync_chunks (project_id, sha)
		ON DELETE CASCADE
);

ALTER TABLE project_files DROP CONSTRAINT IF EXISTS project_files_encoding_check;
ALTER TABLE project_files ADD CONSTRAINT project_files_encoding_check
	CHECK (encoding IN ('utf8', 'base64', 'chunks'));

ALTER TABLE vsync_chunks OWNER TO vsync_owner;
ALTER TABLE vsync_content_chunks OWNER TO vsync_owner;
REVOKE ALL ON vsync_chunks, vsync_content_chunks FROM PUBLIC;
ALTER TABLE vsync_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE vsync_chunks FORCE ROW LEVEL SECURITY;
ALTER TABLE vsync_content_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE vsync_content_chunks FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS vsync_project ON vsync_chunks;
CREATE POLICY vsync_project ON vsync_chunks
	USING ((SELECT vsync__privileged())
	       OR project_id = (SELECT vsync__granted_project()));
DROP POLICY IF EXISTS vsync_project ON vsync_content_chunks;
CREATE POLICY vsync_project ON vsync_content_chunks
	USING ((SELECT vsync__privileged())
	       OR project_id = (SELECT vsync__granted_project()));
