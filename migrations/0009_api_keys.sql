-- Scoped API keys. A key is `sy_<prefix>_<secret>`: the prefix finds the row and is
-- shown in listings; the secret is kept only as an HMAC-SHA256 under a key derived from
-- encryption.key (see src/auth/keys.rs for why a fast keyed hash is right here).
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    prefix       text        NOT NULL UNIQUE,
    hash         bytea       NOT NULL,
    scopes       text[]      NOT NULL,
    -- Who made it: `admin` (the root token or the CLI) or `key:<prefix>`.
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    -- Written at most once a minute per key.
    last_used_at timestamptz
);

CREATE INDEX api_keys_created_idx ON api_keys (created_at DESC);
