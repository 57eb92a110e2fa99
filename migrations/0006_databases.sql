-- The platform database registry: databases an application registers so that Switchyard
-- (and the studio built on it) can check and reach them. The password is sealed with
-- AES-256-GCM under encryption.key, bound to its row, and never returned.
CREATE TABLE databases (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    host       text        NOT NULL,
    port       integer     NOT NULL CHECK (port BETWEEN 1 AND 65535),
    database   text        NOT NULL,
    username   text,
    password   bytea,
    -- disable, prefer or require, as libpq's sslmode.
    ssl_mode   text        NOT NULL DEFAULT 'prefer'
                           CHECK (ssl_mode IN ('disable', 'prefer', 'require')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX databases_created_at_idx ON databases (created_at, id);
