/*
 * migrations.h - the SQL migrations of sql/, embedded at build time.
 * Applied in order by `vsyncctl init`; each is idempotent and recorded in
 * vsync_schema_migrations.
 */
#ifndef VSYNC_MIGRATIONS_H
#define VSYNC_MIGRATIONS_H

struct vs_migration {
	const char *name; /* "001_schema.sql" */
	const char *sql;
};

/* Terminated by an entry with name == NULL. */
extern const struct vs_migration vs_migrations[];

#endif
