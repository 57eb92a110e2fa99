-- A dead job's payload is kept as the text it was enqueued with. jsonb normalised numbers
-- into Postgres numerics and printed a large float (1.7976931348623157e308) back as a
-- 309-digit integer that JSON decoders refuse, so one such row broke every listing of its
-- queue. json keeps the text as it came and still checks that it is JSON.
ALTER TABLE dead_jobs ALTER COLUMN payload TYPE json USING payload::json;
