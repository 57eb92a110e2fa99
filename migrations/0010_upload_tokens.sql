-- Single-use upload tokens that have made their file. An upload token is signed and
-- carries its own limits, so only its use needs a row: one per single-use token, written
-- in the same transaction as the file it made, so a replayed token cannot make a second
-- file. `id` is the token's id. Rows go once the token has expired (the `deletes` sweep),
-- since an expired token is refused anyway.
CREATE TABLE storage_upload_token_uses (
    id         uuid        PRIMARY KEY,
    file_id    uuid        NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX storage_upload_token_uses_expires_idx ON storage_upload_token_uses (expires_at);
