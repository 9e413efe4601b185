/*
 * migrations.h - the SQL of sql/, embedded at build time.
 *
 * `vsyncctl init` applies the numbered migrations (tables, types, indexes,
 * data) in order, each once, recorded in vsync_schema_migrations; each is
 * idempotent. Then it applies vs_sql_functions (sql/functions.sql, every
 * vsync_* function, CREATE OR REPLACE) again, every time.
 */
#ifndef VSYNC_MIGRATIONS_H
#define VSYNC_MIGRATIONS_H

struct vs_migration {
	const char *name; /* "001_schema.sql" */
	const char *sql;
};

/* Terminated by an entry with name == NULL. */
extern const struct vs_migration vs_migrations[];
/* sql/functions.sql */
extern const struct vs_migration vs_sql_functions;

#endif
