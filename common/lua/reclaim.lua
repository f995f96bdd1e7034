-- SPDX-License-Identifier: MIT
-- reclaim.lua — move ONE envelope out of a dead worker's processing list. The LREM comes
-- first and everything else happens only if it removed the envelope, so reapers running
-- concurrently never move the same item twice. The caller (C) has decoded the envelope's
-- kind and id (Lua cmsgpack cannot read msgpack bin) and, when this recovery would exceed
-- max_recoveries, built the dead record whose reason names the expected count.
-- KEYS[1]: P:processing:<dead worker>
-- ARGV: prefix, env, kind, id ("" = undecodable), max_recoveries, expected recoveries,
--       dead record ("" when not expected to die), now_ms, dead job hash ttl_s
-- Returns 0 not there any more, 1 handed back, 2 undecodable dead-lettered, 3 dead-lettered
-- after too many recoveries, -1 the count differs from the caller's expectation (nothing
-- changed; read the count again and retry).

-- unlease(P, job, id, now): give back the target lease job holds (docs/decisions/0008), and
-- wake every job waiting for that target: back to the RIGHT end of its queue, oldest taken
-- first, its hash queued again. Waiters whose target is still busy wait again when fetched
-- (the lease op decides); none is ever lost. Kept identical in every script that carries it
-- (tests/lint/lua_shared.sh checks).
local function unlease(P, job, id, now)
    local t = redis.call('HGET', job, 'lease')
    if not t then return end
    redis.call('HDEL', job, 'lease')
    redis.call('HDEL', P .. ':lease:' .. t, id)
    local wl = P .. ':waiting:' .. t
    for _ = 1, 100000 do
        local e = redis.call('LPOP', wl)
        if not e then break end
        -- "kind|mode|id|env": kind has no '|', mode is one byte, id is 36 bytes
        local k = string.find(e, '|', 1, true)
        local kind, wid = string.sub(e, 1, k - 1), string.sub(e, k + 3, k + 38)
        redis.call('RPUSH', P .. ':queue:' .. kind, string.sub(e, k + 40))
        redis.call('HINCRBY', P .. ':waitcount', kind, -1)
        local wj = P .. ':job:' .. wid
        if redis.call('HGET', wj, 'state') == 'waiting' then -- never over a cancel
            redis.call('HSET', wj, 'state', 'queued', 'updated_at', now)
        end
        redis.call('HDEL', wj, 'waiting_for')
    end
    redis.call('DEL', P .. ':leasexw:' .. t)
end

local P, env, kind, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local maxr, expected, dead, now = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
if id == '' then
    if redis.call('LREM', KEYS[1], 1, env) == 0 then
        return 0
    end
    redis.call('LPUSH', P .. ':dead:' .. kind, dead)
    return 2
end
local job = P .. ':job:' .. id
local r = (tonumber(redis.call('HGET', job, 'recoveries') or '0') or 0) + 1
if r > maxr and (r ~= expected or dead == '') then
    return -1
end
if redis.call('LREM', KEYS[1], 1, env) == 0 then
    return 0
end
redis.call('HINCRBY', job, 'recoveries', 1)
redis.call('ZREM', P .. ':inflight:' .. kind, id)
unlease(P, job, id, now)
redis.call('HDEL', job, 'worker')
if r > maxr then
    redis.call('LPUSH', P .. ':dead:' .. kind, dead)
    redis.call('HSET', job, 'state', 'dead', 'updated_at', now)
    redis.call('EXPIRE', job, ARGV[9])
    return 3
end
redis.call('RPUSH', P .. ':queue:' .. kind, env)
redis.call('HSET', job, 'state', 'queued', 'updated_at', now)
return 1
