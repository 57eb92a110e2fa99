-- The events outbox. Every event (a built-in one written in the same transaction as the
-- change it describes, or an application's from POST /api/v1/events) is a row here first;
-- the relay claims unrelayed rows in `seq` order (FOR UPDATE SKIP LOCKED, so replicas never
-- take the same row), turns each into an audit row, webhook deliveries and a realtime
-- message, and stamps `relayed_at` in the same transaction. `data` is json, not jsonb, so
-- it is delivered exactly as it was sent. The `deletes` job removes relayed rows past
-- events.retention_days; until then a repeated id is a no-op.
CREATE TABLE events (
    id            text        PRIMARY KEY,
    seq           bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    type          text        NOT NULL,
    source        text        NOT NULL,
    subject       text,
    time          timestamptz NOT NULL,
    data          json        NOT NULL,
    -- Who caused it (admin, system, an application's source); the audit row's actor.
    actor         text        NOT NULL,
    -- The realtime channel it is published on; none when absent.
    channel       text,
    resource_type text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    relayed_at    timestamptz
);

-- What the relay reads: unrelayed rows, oldest first.
CREATE INDEX events_unrelayed_idx ON events (seq) WHERE relayed_at IS NULL;
CREATE INDEX events_relayed_at_idx ON events (relayed_at) WHERE relayed_at IS NOT NULL;

-- Wakes the relays once per inserting statement; they also poll, so a lost notification
-- only delays.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchyard_events', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Webhook endpoints. `secret` is the whsec_ secret sealed under encryption.key; after a
-- rotation `previous_secret` also signs until `previous_secret_until`. `failing_since` is
-- when the first failed attempt of the current failing streak happened (NULL while
-- healthy) and `consecutive_failures` counts deliveries that ran out of attempts in a row.
CREATE TABLE webhook_endpoints (
    id                    uuid        PRIMARY KEY,
    url                   text        NOT NULL,
    description           text        NOT NULL DEFAULT '',
    event_types           text[]      NOT NULL,
    enabled               boolean     NOT NULL DEFAULT true,
    disabled_reason       text,
    headers               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    rate_limit_per_second integer     CHECK (rate_limit_per_second > 0),
    secret                bytea       NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    failing_since         timestamptz,
    consecutive_failures  integer     NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, endpoint) pair, made by the relay in the transaction that marks the
-- event relayed, so a pair exists once however often a relay restarts. Its job is enqueued
-- after that commit with the idempotency key `webhook:<id>:<generation>` and `enqueued_at`
-- stamped; a relay that dies in between leaves `enqueued_at` NULL, and the relays' sweep
-- enqueues it. A replay or recover bumps `generation` for a fresh job.
-- `status`: pending (an attempt is due), succeeded, failed (out of attempts or final).
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    next_attempt_at timestamptz,
    generation      integer     NOT NULL DEFAULT 0,
    -- What started the current generation: scheduled (the relay), replay, recover or test.
    trigger         text        NOT NULL DEFAULT 'scheduled',
    enqueued_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);

-- An endpoint's deliveries newest first (ids are UUIDv7), and recovery by time.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_created_at_idx ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
-- The sweep's work: pending deliveries whose job was never enqueued.
CREATE INDEX webhook_deliveries_unenqueued_idx ON webhook_deliveries (created_at)
    WHERE enqueued_at IS NULL AND status = 'pending';

-- Every attempt: what was answered, how long it took, a subset of the response headers and
-- the first 4 KiB of the body.
CREATE TABLE webhook_attempts (
    id               uuid        PRIMARY KEY,
    delivery_id      uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          integer     NOT NULL,
    -- scheduled (the relay or a retry), replay, recover or test.
    trigger          text        NOT NULL,
    status           integer,
    error            text,
    duration_ms      integer     NOT NULL,
    response_headers jsonb       NOT NULL DEFAULT '{}'::jsonb,
    response_body    text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
