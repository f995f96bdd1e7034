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
local P, W, now = ARGV[1], ARGV[2], ARGV[3]
local NF = 7
if (#ARGV - 3) % NF ~= 0 then
    return redis.error_reply('ERR settle: bad argument count')
end
local known = {enqueue = true, start = true, renew = true, ack = true, retry = true,
               dead = true, requeue = true}
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
            -- the same job must not stop this one.
            redis.call('HSET', job, 'state', 'queued', 'kind', kind, 'updated_at', now)
            redis.call('HDEL', job, 'worker', 'cancel')
            redis.call('PERSIST', job)
        end
        r = 1
    elseif op == 'start' then
        if redis.call('LPOS', proc, env) then
            redis.call('ZADD', inflight, n1, id)
            redis.call('HSET', job, 'state', 'running', 'kind', kind, 'worker', W,
                       'attempt', n2, 'updated_at', now)
            r = redis.call('HGET', job, 'cancel') == '1' and 2 or 1
        end
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
