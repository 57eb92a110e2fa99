-- File metadata. The contents live in the object store under `object_key`, which is made
-- from the id and never from the client's file name. A row exists only once its object
-- has been written; an object without a row is an orphan the `deletes` sweep removes.
CREATE TABLE storage_files (
    id           uuid PRIMARY KEY,
    bucket       text        NOT NULL,
    name         text        NOT NULL,
    object_key   text        NOT NULL UNIQUE,
    size         bigint      NOT NULL CHECK (size >= 0),
    content_type text        NOT NULL,
    -- Hex SHA-256 of the contents, also the download's ETag.
    sha256       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Listing is newest first (ids are UUIDv7, so id order is creation order), per bucket or
-- across all, optionally by name prefix.
CREATE INDEX storage_files_bucket_id ON storage_files (bucket, id DESC);
CREATE INDEX storage_files_name ON storage_files (bucket, name text_pattern_ops);
