-- SPDX-License-Identifier: MIT
-- sweep.lua — drop in-flight entries of one kind whose lease expired before the cutoff and
-- whose worker no longer exists (neither in P:workers nor as P:worker:<id>), or whose job
-- hash no longer names a worker. Reclaiming a dead worker already removes its entries; this
-- catches the leftovers (a processing list emptied by hand, an expired job hash).
-- KEYS[1]: P:inflight:<kind>
-- ARGV: prefix, cutoff_ms, limit
-- Returns the number of entries removed.
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0,
                       tonumber(ARGV[3]))
local n = 0
for _, id in ipairs(ids) do
    local w = redis.call('HGET', P .. ':job:' .. id, 'worker')
    if not w or (not redis.call('ZSCORE', P .. ':workers', w) and
                 redis.call('EXISTS', P .. ':worker:' .. w) == 0) then
        redis.call('ZREM', KEYS[1], id)
        n = n + 1
    end
end
return n
