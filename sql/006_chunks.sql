-- 006_chunks.sql - the content of large files, in chunks.
--
-- A text column holds at most 1 GB, and a file in one value travels
-- whole: in one bytea parameter from the writer, in one result to the
-- reader, whole in the memory of both and of the backend. A file larger
-- than one chunk (include/vsync/pg.h, VS_CHUNK_SIZE: 8 MiB) is therefore
-- stored as rows of vsync_chunks, 0 .. n-1, each at most 8 MiB, keyed by
-- its project and its content hash (the SHA-256 of the whole file): a
-- writer uploads them one statement each (vsync_chunk_put), then the
-- version that names them (vsync_write_chunked); a reader takes them one
-- at a time (vsync_chunk). Its project_files row has encoding 'chunks'
-- and content '' (the contract's columns keep their meaning: content_hash
-- and file_size are those of the whole file); vsync_blob(),
-- vsync_blobs() and vsync_read_file() still return the whole content of
-- such a row (up to PostgreSQL's 1 GB limit of one value), so a client
-- that knows nothing of chunks reads what it read before.
--
-- Each chunk carries the SHA-256 of its own bytes, computed by the server
-- when it is stored: a reader checks each chunk as it arrives and the
-- whole file against content_hash at the end. A rename or a rollback
-- copies the row and so shares its chunks; rows of one content in one
-- project share them too. Chunks of a content no row names any more stay
-- until the project is deleted (as old versions' content does).

CREATE TABLE IF NOT EXISTS vsync_chunks (
	project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	content_hash varchar(64) NOT NULL
		CHECK (content_hash ~ '^[0-9a-f]{64}$'),
	idx integer NOT NULL CHECK (idx >= 0),
	data bytea NOT NULL
		CHECK (octet_length(data) BETWEEN 1 AND 8388608),
	sha bytea GENERATED ALWAYS AS (sha256(data)) STORED,
	PRIMARY KEY (project_id, content_hash, idx)
);
-- most large files are compressed already (images, archives, media):
-- trying to compress each chunk again costs the writer and the reader
-- CPU for nothing
ALTER TABLE vsync_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE project_files DROP CONSTRAINT IF EXISTS project_files_encoding_check;
ALTER TABLE project_files ADD CONSTRAINT project_files_encoding_check
	CHECK (encoding IN ('utf8', 'base64', 'chunks'));

ALTER TABLE vsync_chunks OWNER TO vsync_owner;
REVOKE ALL ON vsync_chunks FROM PUBLIC;
ALTER TABLE vsync_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE vsync_chunks FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS vsync_project ON vsync_chunks;
CREATE POLICY vsync_project ON vsync_chunks
	USING ((SELECT vsync__privileged())
	       OR project_id = (SELECT vsync__granted_project()));
