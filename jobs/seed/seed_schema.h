/* SPDX-License-Identifier: MIT */
/* seed_schema.h — the DDL the seed kind applies: the reference workload's schema
 * (tools/schema.sql) and pgbench -i's tables, as strings. */
#ifndef OSP_JOBS_SEED_SCHEMA_H
#define OSP_JOBS_SEED_SCHEMA_H

/* Idempotent DDL (CREATE ... IF NOT EXISTS); identical to tools/schema.sql. */
extern const char seed_schema_sql[];

/* Idempotent DDL of pgbench -i's four tables as pgbench 15 creates them (fillfactor 100), with
 * the primary keys pgbench's "p" step adds, so the seed's drop/rebuild of keys matches it. */
extern const char seed_schema_pgbench_sql[];

#endif
