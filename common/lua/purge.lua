-- SPDX-License-Identifier: MIT
-- purge.lua — drop cancelled jobs' envelopes from a queue or from the delayed set now, rather
-- than when a worker would meet them (fetch.lua drops them too). Called in chunks by
-- common/ops.c so Redis never blocks for long.
-- KEYS[1]: P:queue:<kind> (mode 'queue') or P:delayed (mode 'delayed')
-- ARGV: prefix, mode, kind, max, start
--   queue:   take up to max envelopes from the RIGHT end (the next to be fetched); drop the
--            cancelled ones, put the others back at the LEFT end: one call after another, the
--            list turns over once and keeps its order (envelopes pushed meanwhile end up
--            among them). Every envelope is in the list at every moment but inside this
--            script, so a crash of the caller loses nothing.
--   delayed: look at up to max members from index start; drop the cancelled ones of kind.
--   one:     KEYS[1] is P:queue:<kind>; drop job ARGV[6]'s envelope if it is among the max
--            newest or the max oldest envelopes of the queue, or among the first max members
--            of P:delayed (a single cancel; an envelope further in is dropped by fetch.lua).
-- Returns {looked, dropped, next_start}.
local P, mode, kind, max, start = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
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

local looked, dropped = 0, 0
if mode == 'queue' then
    while looked < max do
        local e = redis.call('RPOP', KEYS[1])
        if not e then break end
        looked = looked + 1
        if cancelled(P, e) then
            dropped = dropped + 1
        else
            redis.call('LPUSH', KEYS[1], e)
        end
    end
    return {looked, dropped, 0}
elseif mode == 'delayed' then
    local members = redis.call('ZRANGE', KEYS[1], start, start + max - 1)
    local pre = kind .. '|'
    for _, m in ipairs(members) do
        looked = looked + 1
        if string.sub(m, 1, #pre) == pre and cancelled(P, string.sub(m, #pre + 1)) then
            redis.call('ZREM', KEYS[1], m)
            dropped = dropped + 1
        end
    end
    return {looked, dropped, start + looked - dropped}
elseif mode == 'one' then
    local want = ARGV[6]
    local function scan(items)
        for _, e in ipairs(items) do
            looked = looked + 1
            if env_id(e) == want and cancelled(P, e) then
                redis.call('LREM', KEYS[1], 1, e)
                return true
            end
        end
        return false
    end
    if scan(redis.call('LRANGE', KEYS[1], 0, max - 1)) or
       scan(redis.call('LRANGE', KEYS[1], -max, -1)) then
        return {looked, 1, 0}
    end
    local pre = kind .. '|'
    for _, m in ipairs(redis.call('ZRANGE', P .. ':delayed', 0, max - 1)) do
        looked = looked + 1
        if string.sub(m, 1, #pre) == pre and env_id(string.sub(m, #pre + 1)) == want and
           cancelled(P, string.sub(m, #pre + 1)) then
            redis.call('ZREM', P .. ':delayed', m)
            return {looked, 1, 0}
        end
    end
    return {looked, 0, 0}
end
return redis.error_reply('ERR purge: unknown mode ' .. tostring(mode))
