-- 0010_benchmark_replicas.sql — scale-out lanes (docs/benchmark-jobs.md "Scale-out lanes").
--
-- replicas            the count a scale-out lane ran its target at; NULL for a lane that did
--                     not ask (the target as it was).
-- scaling_efficiency  throughput per replica against the job's baseline lane (the first lane
--                     without replicas or with 1, taken as one replica): 1.0 is linear
--                     scaling; NULL without a baseline or a throughput.
-- A lane's replicas are also part of its shape (0007), so runs at different sizes are separate
-- series and are never judged against each other. Independent of 0009: applies on its own.
ALTER TABLE opspool.benchmark_results
    ADD COLUMN replicas int CHECK (replicas > 0),
    ADD COLUMN scaling_efficiency double precision;
