-- What the relay needs to make a pass's deliveries inside its one statement: matching an
-- event type against an endpoint's subscriptions, and time-ordered delivery ids.

-- Whether `kind` matches any of `patterns`: `*`, an exact type, or `prefix.*` (every type
-- under `prefix.`): the forms `events::Pattern` accepts when an endpoint is saved.
CREATE FUNCTION switchyard_subscribed(patterns text[], kind text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1 FROM unnest(patterns) AS p
        WHERE p = '*' OR p = kind
           OR (right(p, 2) = '.*' AND starts_with(kind, left(p, -1))))
$$;

-- A version 7 UUID (RFC 9562): the Unix time in milliseconds, then random bits, so ids
-- sort by creation time as the ones made by the application do. PostgreSQL 18 has
-- uuidv7(); this serves the versions before it.
CREATE FUNCTION switchyard_uuid_v7() RETURNS uuid
    LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
