-- SPDX-License-Identifier: MIT
-- heartbeat.lua — refresh a worker's lease and its descriptive hash in one step.
-- KEYS[1]: P:workers
-- ARGV: prefix, worker id, now_ms, hash ttl_s, then field/value pairs for P:worker:<id>
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local h = ARGV[1] .. ':worker:' .. ARGV[2]
if #ARGV > 4 then
    redis.call('HSET', h, unpack(ARGV, 5))
end
redis.call('EXPIRE', h, ARGV[4])
return 1
