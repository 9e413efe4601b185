-- 005_access.sql - who may reach which project: roles, grants and
-- row-level security (docs/security.md).
--
-- Roles (cluster-wide, NOLOGIN; login roles are made members):
--   vsync_owner      owns the tables and every vsync_* function. Nobody
--                    logs in as it. Row-level security is FORCEd on the
--                    tables, so even the functions, which run as
--                    vsync_owner (SECURITY DEFINER), see only the rows
--                    the caller may see.
--   vsync_service    the relay, the platform's API writer, administrators:
--                    every project. Superusers count as members.
--   vsync_container  the preview containers: a member may call the
--                    container's functions (functions.sql grants them),
--                    reads no table, and reaches only the projects
--                    vsync_grants gives its login role, until they expire.
-- `vsyncctl grant PROJECT` makes (or rotates) the login role of a
-- project's containers and its row here; `vsyncctl revoke` drops both.
--
-- Idempotent: applied once by `vsyncctl init` (again with --reapply). The
-- user applying it must be a superuser (it creates roles and changes
-- owners).

DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['vsync_owner', 'vsync_service',
				 'vsync_container'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END $$;

CREATE TABLE IF NOT EXISTS vsync_grants (
	-- a login role, member of vsync_container
	role name PRIMARY KEY,
	project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	-- NULL: until revoked
	expires_at timestamptz
);
CREATE INDEX IF NOT EXISTS vsync_grants_project ON vsync_grants (project_id);

ALTER TABLE projects OWNER TO vsync_owner;
ALTER TABLE project_files OWNER TO vsync_owner;
ALTER TABLE file_operations OWNER TO vsync_owner;
ALTER TABLE vsync_grants OWNER TO vsync_owner;
ALTER TYPE vsync_entry OWNER TO vsync_owner;
REVOKE ALL ON projects, project_files, file_operations, vsync_grants
	FROM PUBLIC;

-- Is the session's user one of the service's (every project)? The session
-- user, not the current one: inside the functions the current user is
-- vsync_owner.
-- (pg_has_role counts a superuser as a member of every role)
CREATE OR REPLACE FUNCTION vsync__privileged()
RETURNS boolean LANGUAGE sql STABLE AS $$
	SELECT pg_has_role(session_user, 'vsync_service', 'MEMBER')
$$;

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
ALTER TABLE project_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_files FORCE ROW LEVEL SECURITY;
ALTER TABLE file_operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_operations FORCE ROW LEVEL SECURITY;
ALTER TABLE vsync_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE vsync_grants FORCE ROW LEVEL SECURITY;

-- The project granted to the session's role (a container role has one),
-- if the grant has not expired; NULL otherwise. PL/pgSQL, so its query is
-- planned once per session.
CREATE OR REPLACE FUNCTION vsync__granted_project()
RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE
	v uuid;
BEGIN
	SELECT g.project_id INTO v FROM vsync_grants g
	 WHERE g.role = session_user
	   AND (g.expires_at IS NULL OR g.expires_at > now());
	RETURN v;
END $$;

-- A row is visible and writable when the session is the service's, or
-- its project is the one granted to the session's role. Both tests are
-- scalar subqueries without outer references, so PostgreSQL evaluates
-- each once per query (an InitPlan), and planning them is cheap: the SQL
-- functions of the write path are planned again at each call, and a
-- policy with a subquery over another table with a policy made that
-- planning cost more than the write itself.
DROP POLICY IF EXISTS vsync_project ON projects;
CREATE POLICY vsync_project ON projects
	USING ((SELECT vsync__privileged())
	       OR id = (SELECT vsync__granted_project()));
DROP POLICY IF EXISTS vsync_project ON project_files;
CREATE POLICY vsync_project ON project_files
	USING ((SELECT vsync__privileged())
	       OR project_id = (SELECT vsync__granted_project()));
DROP POLICY IF EXISTS vsync_project ON file_operations;
CREATE POLICY vsync_project ON file_operations
	USING ((SELECT vsync__privileged())
	       OR project_id = (SELECT vsync__granted_project()));
-- a container sees its own grant only; only the service changes grants
DROP POLICY IF EXISTS vsync_own_grant ON vsync_grants;
CREATE POLICY vsync_own_grant ON vsync_grants
	USING ((SELECT vsync__privileged()) OR role = session_user)
	WITH CHECK ((SELECT vsync__privileged()));
