-- SPDX-License-Identifier: MIT
-- stats.lua — one kind's queue figures in one round trip. The delayed count scans at most
-- `limit` entries of P:delayed (the earliest due), because a script blocks the server.
-- KEYS[1]: P:queue:<kind>
-- ARGV: prefix, kind, limit
-- Returns {pending, running, delayed, dead, paused, right-most pending envelope or nil,
-- waiting for a busy target (docs/decisions/0008)}.
local P, kind = ARGV[1], ARGV[2]
local pre = kind .. '|'
local delayed = 0
for _, m in ipairs(redis.call('ZRANGE', P .. ':delayed', 0, tonumber(ARGV[3]) - 1)) do
    if string.sub(m, 1, #pre) == pre then
        delayed = delayed + 1
    end
end
return {redis.call('LLEN', KEYS[1]), redis.call('ZCARD', P .. ':inflight:' .. kind), delayed,
        redis.call('LLEN', P .. ':dead:' .. kind), redis.call('SISMEMBER', P .. ':paused', kind),
        redis.call('LINDEX', KEYS[1], -1),
        tonumber(redis.call('HGET', P .. ':waitcount', kind) or '0')}
