/* SPDX-License-Identifier: MIT */
/* seed_schema.c — the reference workload's DDL, applied by the seed kind before loading.
 *
 * A byte-for-byte copy of tools/schema.sql kept as a C string, so the worker binary
 * needs no files at run time; tests/unit/jobs/seed/test_seed_schema.c fails when the two
 * differ (update this copy whenever schema.sql changes). The DDL is idempotent. The pgbench
 * layout's DDL follows pgbench 15's initCreateTables() and initCreatePKeys(). */
#include "jobs/seed/seed_schema.h"

const char seed_schema_sql[] =
    "-- SPDX-License-Identifier: MIT\n"
    "-- The reference workload's schema: a small URL shortener (users, their short URLs, clicks).\n"
    "-- Used by the shortener service (tools/), the seed job (fills it), the backup job\n"
    "-- (dumps it) and the local lab. Idempotent.\n"
    "CREATE TABLE IF NOT EXISTS users (\n"
    "    id          bigint      PRIMARY KEY,\n"
    "    email       text        NOT NULL UNIQUE,\n"
    "    name        text        NOT NULL,\n"
    "    created_at  timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS urls (\n"
    "    id          bigint      PRIMARY KEY,\n"
    "    code        text        NOT NULL UNIQUE,   -- the short code: /r/<code>\n"
    "    target      text        NOT NULL,          -- where /r/<code> redirects\n"
    "    user_id     bigint      NOT NULL REFERENCES users (id),\n"
    "    created_at  timestamptz NOT NULL DEFAULT now(),\n"
    "    hits        bigint      NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS clicks (\n"
    "    id          bigint      PRIMARY KEY,\n"
    "    url_id      bigint      NOT NULL REFERENCES urls (id),\n"
    "    ts          timestamptz NOT NULL,\n"
    "    referrer    text,\n"
    "    user_agent  text\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS clicks_url_ts ON clicks (url_id, ts);\n"
    "-- ids created by the service itself come from this sequence, starting far above seeded ids.\n"
    "CREATE SEQUENCE IF NOT EXISTS shortener_ids START 1000000000000;\n";

const char seed_schema_pgbench_sql[] =
    "CREATE TABLE IF NOT EXISTS pgbench_history (tid int, bid int, aid int, delta int, "
    "mtime timestamp, filler char(22));\n"
    "CREATE TABLE IF NOT EXISTS pgbench_tellers (tid int NOT NULL PRIMARY KEY, bid int, "
    "tbalance int, filler char(84)) WITH (fillfactor = 100);\n"
    "CREATE TABLE IF NOT EXISTS pgbench_accounts (aid int NOT NULL PRIMARY KEY, bid int, "
    "abalance int, filler char(84)) WITH (fillfactor = 100);\n"
    "CREATE TABLE IF NOT EXISTS pgbench_branches (bid int NOT NULL PRIMARY KEY, bbalance int, "
    "filler char(88)) WITH (fillfactor = 100);\n";
