-- Jobs whose attempts ran out. Redis holds live jobs; a job that dies is copied here by
-- the worker (idempotently, keyed by the job id) and then removed from Redis, so Postgres
-- is the record an operator lists, retries or deletes from. `errors` keeps every
-- attempt's error as [{"attempt": n, "error": "...", "at": "<RFC 3339>"}].
CREATE TABLE dead_jobs (
    id           uuid PRIMARY KEY,
    queue        text        NOT NULL,
    kind         text        NOT NULL,
    payload      jsonb       NOT NULL,
    attempts     integer     NOT NULL,
    max_attempts integer     NOT NULL,
    timeout_ms   bigint      NOT NULL,
    last_error   text        NOT NULL,
    errors       jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL,
    died_at      timestamptz NOT NULL DEFAULT now()
);

-- Listing a queue's dead jobs newest first, with (died_at, id) as the cursor.
CREATE INDEX dead_jobs_queue_died_at_idx ON dead_jobs (queue, died_at DESC, id DESC);
-- The retention sweep deletes the oldest first.
CREATE INDEX dead_jobs_died_at_idx ON dead_jobs (died_at);

-- The audit log. The `audits` job writes it in batches; the row id is the job id, so a job
-- delivered twice (at least once) still makes one row.
CREATE TABLE audit_logs (
    id            uuid PRIMARY KEY,
    actor         text,
    action        text        NOT NULL,
    resource_type text,
    resource_id   text,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ip            text,
    user_agent    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at, id);
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id, created_at);
