/* SPDX-License-Identifier: MIT */
/* seed_schema.h — the reference workload's schema (deploy/workload/schema.sql) as a string. */
#ifndef OSP_JOBS_SEED_SCHEMA_H
#define OSP_JOBS_SEED_SCHEMA_H

/* Idempotent DDL (CREATE ... IF NOT EXISTS); identical to deploy/workload/schema.sql. */
extern const char seed_schema_sql[];

#endif
