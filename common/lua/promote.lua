-- SPDX-License-Identifier: MIT
-- promote.lua — move delayed entries that are due to their queues. Members are
-- "<kind>|<envelope>", so the kind is known without decoding msgpack (see
-- docs/decisions/0001). A member without a valid kind cannot be routed: it goes to
-- P:dead:unknown as a dead record built here in the same msgpack layout as
-- osp_dead_encode: ["dead", reason, failed_at_ms, job_id, envelope:bin].
-- KEYS[1]: P:delayed
-- ARGV: prefix, now_ms, max
-- Returns the number of entries moved to a queue.
local P, now, max = ARGV[1], ARGV[2], tonumber(ARGV[3])

local function be(n, bytes)
    local t = {}
    for k = bytes, 1, -1 do
        t[k] = string.char(n % 256)
        n = math.floor(n / 256)
    end
    return table.concat(t)
end
local function mp_str(s)
    local n = #s
    if n < 32 then
        return string.char(0xa0 + n) .. s
    elseif n < 256 then
        return '\217' .. be(n, 1) .. s
    elseif n < 65536 then
        return '\218' .. be(n, 2) .. s
    end
    return '\219' .. be(n, 4) .. s
end
local function mp_bin(s)
    local n = #s
    if n < 256 then
        return '\196' .. be(n, 1) .. s
    elseif n < 65536 then
        return '\197' .. be(n, 2) .. s
    end
    return '\198' .. be(n, 4) .. s
end
local function dead_record(reason, at, env)
    return '\149' .. mp_str('dead') .. mp_str(reason) .. '\207' .. be(tonumber(at), 8) ..
           mp_str('') .. mp_bin(env)
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max)
local moved = 0
for _, m in ipairs(due) do
    redis.call('ZREM', KEYS[1], m)
    local bar = string.find(m, '|', 1, true)
    local kind = bar and string.sub(m, 1, bar - 1) or ''
    if #kind >= 1 and #kind <= 32 and not string.find(kind, '[^a-z0-9_%-]') then
        redis.call('LPUSH', P .. ':queue:' .. kind, string.sub(m, bar + 1))
        moved = moved + 1
    else
        redis.call('LPUSH', P .. ':dead:unknown',
                   dead_record('delayed entry without a valid kind prefix', now, m))
    end
end
return moved
