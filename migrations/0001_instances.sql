-- Every running Switchyard process (serve, worker, scheduler, realtime, dev) registers here
-- at start-up and refreshes heartbeat_at while it runs. Operators and /api/metrics see which
-- modes, versions and replicas are live; a row whose heartbeat stopped is a process that died.
CREATE TABLE instances (
    id           uuid PRIMARY KEY,
    mode         text        NOT NULL,
    service      text        NOT NULL,
    replica      text        NOT NULL,
    version      text        NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX instances_heartbeat_at_idx ON instances (heartbeat_at);
