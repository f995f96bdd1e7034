-- SPDX-License-Identifier: MIT
-- fetch.lua — move up to N envelopes from several kinds' queues (RIGHT end) into one
-- worker's processing list (LEFT end), never blocking. Kinds in P:paused are skipped. Kinds
-- are served round-robin starting at a rotating index, one envelope per kind per round, so
-- a deep queue cannot starve the others.
-- KEYS[1]: P:processing:<worker>
-- ARGV: prefix, max, start (0-based), kind1 .. kindN
-- Returns {paused, i1, env1, i2, env2, ...}: paused is a string with one '0'/'1' per kind
-- (a bitmask would not survive Lua's doubles beyond 53 kinds), i is the 0-based kind index.
local P, max, start = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #ARGV - 3
local flags = {}
for i = 1, n do
    flags[i] = redis.call('SISMEMBER', P .. ':paused', ARGV[3 + i]) == 1 and '1' or '0'
end
local out = {table.concat(flags)}
local live = {}
for k = 0, n - 1 do
    local i = (start + k) % n + 1
    if flags[i] == '0' then
        live[#live + 1] = i
    end
end
local got = 0
while got < max and #live > 0 do
    local still = {}
    for _, i in ipairs(live) do
        if got >= max then
            break
        end
        local env = redis.call('LMOVE', P .. ':queue:' .. ARGV[3 + i], KEYS[1], 'RIGHT', 'LEFT')
        if env then
            out[#out + 1] = i - 1
            out[#out + 1] = env
            got = got + 1
            still[#still + 1] = i
        end
    end
    live = still
end
return out
