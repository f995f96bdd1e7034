-- SPDX-License-Identifier: MIT
-- The reference workload's schema: a small URL shortener (users, their short URLs, clicks).
-- Used by the shortener service (tools/), the seed job (fills it), the backup job
-- (dumps it) and the local lab. Idempotent.
CREATE TABLE IF NOT EXISTS users (
    id          bigint      PRIMARY KEY,
    email       text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS urls (
    id          bigint      PRIMARY KEY,
    code        text        NOT NULL UNIQUE,   -- the short code: /r/<code>
    target      text        NOT NULL,          -- where /r/<code> redirects
    user_id     bigint      NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    hits        bigint      NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS clicks (
    id          bigint      PRIMARY KEY,
    url_id      bigint      NOT NULL REFERENCES urls (id),
    ts          timestamptz NOT NULL,
    referrer    text,
    user_agent  text
);
CREATE INDEX IF NOT EXISTS clicks_url_ts ON clicks (url_id, ts);
-- ids created by the service itself come from this sequence, starting far above seeded ids.
CREATE SEQUENCE IF NOT EXISTS shortener_ids START 1000000000000;
