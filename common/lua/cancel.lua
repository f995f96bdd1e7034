-- SPDX-License-Identifier: MIT
-- cancel.lua — after the ledger recorded cancels (common/ops.c: the ledger first), flag each
-- job for the workers.
-- KEYS[1]: a key in the prefix's hash slot (Redis Cluster routing only).
-- ARGV: prefix, now_ms, ttl_s, then pairs (id, mode):
--   'final'   the ledger says cancelled. The hash says state=cancelled, cancel=1 and keeps
--             the TTL aside (field ttl) without applying it while an envelope may still be
--             queued or delayed: fetch.lua and purge.lua drop that envelope when they meet it
--             and only then set the TTL. A hash that did not exist (Redis never had the job,
--             or lost it) gets the TTL at once.
--   'running' cancel requested: the worker's next renewal sees cancel=1 and stops the attempt.
-- Returns the number of jobs flagged.
local P, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local n = 0
for i = 4, #ARGV, 2 do
    local job = P .. ':job:' .. ARGV[i]
    local mode = ARGV[i + 1]
    if mode == 'final' then
        local had = redis.call('EXISTS', job)
        redis.call('HSET', job, 'state', 'cancelled', 'cancel', '1', 'ttl', ttl, 'updated_at', now)
        redis.call('HDEL', job, 'worker')
        if had == 0 then
            redis.call('EXPIRE', job, ttl)
        end
        n = n + 1
    elseif mode == 'running' then
        redis.call('HSET', job, 'cancel', '1')
        n = n + 1
    else
        return redis.error_reply('ERR cancel: unknown mode ' .. tostring(mode))
    end
end
return n
