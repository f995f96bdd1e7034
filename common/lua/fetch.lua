-- SPDX-License-Identifier: MIT
-- fetch.lua — move up to N envelopes from several kinds' queues (RIGHT end) into one
-- worker's processing list (LEFT end), never blocking. Kinds in P:paused are skipped. Kinds
-- are served round-robin starting at a rotating index, one envelope per kind per round, so
-- a deep queue cannot starve the others. Envelopes of cancelled jobs are dropped on the way,
-- never handed out (see cancelled() below).
-- KEYS[1]: P:processing:<worker>
-- ARGV: prefix, max, start (0-based), kind1 .. kindN
-- Returns {paused, i1, env1, i2, env2, ...}: paused is a string with one '0'/'1' per kind
-- (a bitmask would not survive Lua's doubles beyond 53 kinds), i is the 0-based kind index.
local P, max, start = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
-- env_id(e): the job id inside an envelope, read from its fixed msgpack prefix without
-- decoding the body: [version, signature:bin, body:bin] with the body a map whose first key
-- is "id" (envelope.c osp_env_encode writes it first). nil when the bytes are laid out
-- otherwise (then nothing is decided from the envelope). Kept identical in every script that
-- carries it (tests/lint/lua_shared.sh checks).
local function env_id(e)
    local b = string.byte(e, 1)
    if b ~= 0x93 then return nil end
    local p = 2
    b = string.byte(e, p)
    if b == nil then return nil end
    if b <= 0x7f then p = p + 1 elseif b == 0xcc then p = p + 2 else return nil end
    b = string.byte(e, p)
    if b == 0xc4 then
        local n = string.byte(e, p + 1)
        if n == nil then return nil end
        p = p + 2 + n
    else
        return nil
    end
    b = string.byte(e, p)
    if b == 0xc4 then p = p + 2 elseif b == 0xc5 then p = p + 3 elseif b == 0xc6 then p = p + 5
    else return nil end
    b = string.byte(e, p)
    if b == nil then return nil end
    if b >= 0x80 and b <= 0x8f then p = p + 1 elseif b == 0xde then p = p + 3 else return nil end
    if string.sub(e, p, p + 4) ~= '\162id\217\36' then return nil end
    local id = string.sub(e, p + 5, p + 40)
    if #id ~= 36 then return nil end
    return id
end
-- A cancelled job's envelope is dropped instead of being handed out: the ledger already
-- says cancelled (common/ops.c records it there first, then cancel.lua flags the hash), so
-- running it would be work nobody wants (a drill's fault, a benchmark's load). The hash then
-- gets the TTL cancel.lua kept aside for it.
local function cancelled(P, e)
    local id = env_id(e)
    if not id then return false end
    local job = P .. ':job:' .. id
    local f = redis.call('HMGET', job, 'cancel', 'state', 'ttl')
    if f[1] ~= '1' or f[2] ~= 'cancelled' then return false end
    if f[3] then redis.call('EXPIRE', job, f[3]) end
    return true
end
local DROP_MAX, drops = 10000, 0
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
        -- Cancelled envelopes are dropped (up to DROP_MAX per call, so the script stays short).
        while env and drops < DROP_MAX and cancelled(P, env) do
            redis.call('LREM', KEYS[1], 1, env)
            drops = drops + 1
            env = redis.call('LMOVE', P .. ':queue:' .. ARGV[3 + i], KEYS[1], 'RIGHT', 'LEFT')
        end
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
