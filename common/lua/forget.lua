-- SPDX-License-Identifier: MIT
-- forget.lua — remove a worker's registration (P:workers entry and P:worker:<id>), but only
-- while its processing list is empty: a worker still holding envelopes must stay visible to
-- the reaper. With a cutoff, also only while its heartbeat is still older than the cutoff,
-- so a worker that came back between the reaper's read and this call is left alone.
-- KEYS[1]: P:processing:<worker>
-- ARGV: prefix, worker id, cutoff_ms ("" = unconditional: the worker's own clean exit)
-- Returns 1 when removed, 0 when not.
local P, w, cutoff = ARGV[1], ARGV[2], ARGV[3]
if redis.call('LLEN', KEYS[1]) > 0 then
    return 0
end
if cutoff ~= '' then
    local s = redis.call('ZSCORE', P .. ':workers', w)
    if s and tonumber(s) >= tonumber(cutoff) then
        return 0
    end
end
redis.call('ZREM', P .. ':workers', w)
redis.call('DEL', P .. ':worker:' .. w)
return 1
