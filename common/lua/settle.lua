-- SPDX-License-Identifier: MIT
-- settle.lua — apply one batch of queue transitions atomically (common/rq.h, "Operation
-- batches"). Only the holder of an envelope (this worker's processing list) may ack, retry,
-- dead-letter or requeue it, so a job reaped in the meantime is left to its new owner.
-- KEYS[1]: a key in the prefix's hash slot, for Redis Cluster routing only; every key below
--          is built from the prefix and shares its {hash tag}.
-- ARGV: prefix, worker id ("" for non-workers), now_ms, then 7 fields per op:
--       op, kind, id, env, data, n1, n2   (see rq.c rq_ops_add for each op's use)
-- Returns one integer per op. start and renew return 2 instead of 1 when a cancel was
-- requested (P:job:<id> cancel=1, docs/decisions/0005): the worker then stops the job.
-- lease (data = target, n1 = mode 1 exclusive / 2 shared, n2 = most shared holders, 0 = no
-- limit; docs/decisions/0008) returns 1 granted (or already held), 0 the target is busy: the
-- envelope left this worker's processing list for P:waiting:<target>, -1 the envelope is not
-- held by this worker. ack, retry, dead and requeue give back the job's lease.
local P, W, now = ARGV[1], ARGV[2], ARGV[3]
local NF = 7
if (#ARGV - 3) % NF ~= 0 then
    return redis.error_reply('ERR settle: bad argument count')
end
local known = {enqueue = true, start = true, renew = true, ack = true, retry = true,
               dead = true, requeue = true, lease = true}
-- Validate everything first: a script error half-way would leave earlier ops applied.
for i = 4, #ARGV, NF do
    local op = ARGV[i]
    if not known[op] then
        return redis.error_reply('ERR settle: unknown op ' .. op)
    end
    if W == '' and op ~= 'enqueue' and op ~= 'renew' then
        return redis.error_reply('ERR settle: ' .. op .. ' needs a worker id')
    end
end
local proc = P .. ':processing:' .. W

-- The job is no longer held by a worker: record its new state.
local function release(job, state)
    redis.call('HSET', job, 'state', state, 'updated_at', now)
    redis.call('HDEL', job, 'worker')
end

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

-- lease: may job run on target now? Exclusive needs no holder at all; shared needs no
-- exclusive holder, fewer than max shared holders, and no exclusive job waiting (so a stream
-- of shared jobs cannot starve a drill). Refused: the envelope moves to P:waiting:<target>.
local function lease(P, proc, job, kind, id, env, target, mode, max)
    if not redis.call('LPOS', proc, env) then return -1 end
    local lk = P .. ':lease:' .. target
    if redis.call('HEXISTS', lk, id) == 1 then return 1 end
    local holders = redis.call('HVALS', lk)
    local excl = false
    for _, m in ipairs(holders) do
        if m == '1' then excl = true end
    end
    local ok
    if mode == '1' then
        ok = #holders == 0
    else
        ok = not excl and (max == 0 or #holders < max) and
             tonumber(redis.call('GET', P .. ':leasexw:' .. target) or '0') == 0
    end
    if ok then
        redis.call('HSET', lk, id, mode)
        redis.call('HSET', job, 'lease', target)
        return 1
    end
    redis.call('LREM', proc, 1, env)
    redis.call('LPUSH', P .. ':waiting:' .. target, kind .. '|' .. mode .. '|' .. id .. '|' .. env)
    redis.call('HINCRBY', P .. ':waitcount', kind, 1)
    if mode == '1' then redis.call('INCR', P .. ':leasexw:' .. target) end
    redis.call('HSET', job, 'state', 'waiting', 'waiting_for', target, 'updated_at', now)
    redis.call('HDEL', job, 'worker')
    return 0
end

local out = {}
for i = 4, #ARGV, NF do
    local op, kind, id, env, data, n1, n2 = unpack(ARGV, i, i + NF - 1)
    local job = P .. ':job:' .. id
    local inflight = P .. ':inflight:' .. kind
    local r = 0
    if op == 'enqueue' then
        if tonumber(n1) > tonumber(now) then
            redis.call('ZADD', P .. ':delayed', n1, kind .. '|' .. env)
        else
            redis.call('LPUSH', P .. ':queue:' .. kind, env)
        end
        if id ~= '' then
            -- A (re)submission is a new intent: a cancel flag left by an earlier run of
            -- the same job must not stop this one. (A new job has no hash yet: nothing to
            -- clear, and the most common enqueue saves two calls.)
            local fresh = redis.call('EXISTS', job) == 0
            redis.call('HSET', job, 'state', 'queued', 'kind', kind, 'updated_at', now)
            if not fresh then
                redis.call('HDEL', job, 'worker', 'cancel')
                redis.call('PERSIST', job)
            end
        end
        r = 1
    elseif op == 'start' then
        if redis.call('LPOS', proc, env) then
            redis.call('ZADD', inflight, n1, id)
            redis.call('HSET', job, 'state', 'running', 'kind', kind, 'worker', W,
                       'attempt', n2, 'updated_at', now)
            r = redis.call('HGET', job, 'cancel') == '1' and 2 or 1
        end
    elseif op == 'lease' then
        r = lease(P, proc, job, kind, id, env, data, n1, tonumber(n2))
    elseif op == 'renew' then
        if redis.call('ZSCORE', inflight, id) then
            redis.call('ZADD', inflight, n1, id)
            r = redis.call('HGET', job, 'cancel') == '1' and 2 or 1
        end
    -- From the tail: the processing list is filled at its head, so the oldest held envelopes
    -- (the ones that finish first) sit at the tail and are found at once.
    elseif redis.call('LREM', proc, -1, env) == 1 then
        -- An empty id means the caller could not (or did not) decode the envelope: the
        -- envelope still moves, but there is no job hash or in-flight entry to update.
        local state, ttl = nil, nil
        if op == 'ack' then
            state, ttl = data, n1
        elseif op == 'retry' then
            redis.call('ZADD', P .. ':delayed', n1, kind .. '|' .. data)
            state = 'retrying'
        elseif op == 'dead' then
            redis.call('LPUSH', P .. ':dead:' .. kind, data)
            state, ttl = 'dead', n1
        else -- requeue: to the RIGHT end, so it is the next one taken
            redis.call('RPUSH', P .. ':queue:' .. kind, env)
            state = 'queued'
        end
        if id ~= '' then
            redis.call('ZREM', inflight, id)
            unlease(P, job, id, now)
            release(job, state)
            if ttl then
                redis.call('EXPIRE', job, ttl)
            end
        end
        r = 1
    end
    out[#out + 1] = r
end
return out
