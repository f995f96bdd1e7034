-- SPDX-License-Identifier: MIT
-- requeue.lua — put a dead or cancelled job back on its queue, after the ledger made it
-- queued again (common/ops.c osp_op_retry: the ledger first).
-- KEYS[1]: P:dead:<kind>
-- ARGV: prefix, kind, id, has_record ('1'/'0'), record, envelope, now_ms
-- Removes the dead record (when given), pushes the envelope and resets P:job:<id> (state
-- queued, no cancel flag, no TTL). The envelope is pushed even when the record is gone
-- meanwhile (a purge, or another operator's retry): a ledger row made queued is never left
-- without one. Returns 1 when the record was removed (or there was none), 0 when it was
-- already gone.
local P, kind, id, has, rec, env, now = unpack(ARGV, 1, 7)
local r = 1
if has == '1' then
    r = redis.call('LREM', KEYS[1], -1, rec) -- from the oldest end, where retries walk
end
redis.call('LPUSH', P .. ':queue:' .. kind, env)
local job = P .. ':job:' .. id
redis.call('HSET', job, 'state', 'queued', 'kind', kind, 'updated_at', now)
redis.call('HDEL', job, 'worker', 'cancel', 'ttl')
redis.call('PERSIST', job)
return r
