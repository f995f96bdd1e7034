#!/bin/bash
# SPDX-License-Identifier: MIT
# postgres-init.sh — run once by the postgres image on an empty data directory
# (/docker-entrypoint-initdb.d): the opspool ledger database and the reference workload's
# database, each owned by its own role. Passwords come from the compose secrets.
#   opspool    owns database opspool (the ledger; its migrations create schema opspool)
#   shortener  owns database shortener; CREATEDB because the backup kind's "restore"
#              verification restores into a scratch database on the same server
set -euo pipefail
opspool_pw=$(cat /run/secrets/opspool_pg_password)
shortener_pw=$(cat /run/secrets/shortener_pg_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v opspool_pw="$opspool_pw" -v shortener_pw="$shortener_pw" <<'SQL'
CREATE ROLE opspool LOGIN PASSWORD :'opspool_pw';
CREATE DATABASE opspool OWNER opspool;
CREATE ROLE shortener LOGIN CREATEDB PASSWORD :'shortener_pw';
CREATE DATABASE shortener OWNER shortener;
SQL
