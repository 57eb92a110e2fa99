//! Upload tokens for browsers: a backend makes one, a browser uploads with it and nothing
//! else, within its bucket, size, types and uses; and on S3, the presigned POST straight
//! to the bucket and its completion, which checks the object before it becomes a file.

use serde_json::{Value, json};
use switchyard::storage::grants::Grant;

use crate::common::{Reply, TestApp, call};
use crate::files::{
    Backend, PNG, Part, assert_nothing_stored, multipart, sha256_hex, spawn, stored_keys, to_store,
};

/// Makes an upload token as the root token.
async fn make_token(app: &TestApp, request: Value) -> Value {
    let made = app
        .admin("POST", "/api/v1/files/upload-tokens", Some(request))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    made.json()
}

/// Uploads `bytes` as the multipart file `name` with `token` in the Authorization header.
async fn upload_with(app: &TestApp, token: &str, query: &str, name: &str, bytes: &[u8]) -> Reply {
    let (form_type, body) = multipart(&[("file", Some(name), None, bytes)]);
    let auth = format!("Bearer {token}");
    call(
        "POST",
        &app.url(&format!("/api/v1/files{query}")),
        &[("authorization", &auth), ("content-type", &form_type)],
        Some(body),
    )
    .await
}

/// A token for the `images` bucket (64 KiB, `image/*`) signed with the app's own key.
fn signed(app: &TestApp, adjust: impl FnOnce(&mut Grant)) -> String {
    let mut grant = Grant {
        id: uuid::Uuid::now_v7(),
        bucket: "images".into(),
        max_size: 1024,
        content_types: Vec::new(),
        name_prefix: None,
        single_use: false,
        expires: chrono::Utc::now().timestamp() + 600,
        issuer: "admin".into(),
    };
    adjust(&mut grant);
    app.state.storage.grant_key().unwrap().sign(&grant)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_token_stores_its_kind_of_file_in_its_bucket_under_its_prefix() {
    let app = spawn(Backend::Local).await;
    let made = make_token(
        &app,
        json!({
            "bucket": "images",
            "max_size": 1000,
            "content_types": ["image/png"],
            "expires_in_seconds": 600,
            "name_prefix": "user-7-",
        }),
    )
    .await;
    let token = made["token"].as_str().unwrap();
    assert!(token.starts_with("syu_"), "{made}");
    assert_eq!(made["bucket"], "images");
    assert_eq!(made["max_size"], 1000);
    assert_eq!(made["single_use"], false);
    assert!(
        made["presigned_post"].is_null(),
        "no presigned POST on disk"
    );
    assert!(
        made["upload_url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/files?bucket=images"),
        "{made}"
    );

    // In the header, with the multipart file's name.
    let first = upload_with(&app, token, "", "avatar.png", PNG).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let file = first.json();
    assert_eq!(file["bucket"], "images");
    assert_eq!(file["name"], "user-7-avatar.png");
    assert_eq!(file["sha256"], sha256_hex(PNG));

    // As `?token=`, as a browser form posts it, with the raw body.
    let query_token = url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>();
    let second = call(
        "POST",
        &app.url(&format!(
            "/api/v1/files?token={query_token}&name=user-7-b.png"
        )),
        &[("content-type", "image/png")],
        Some(PNG.to_vec()),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(second.json()["name"], "user-7-b.png");

    // The files name the token as their maker.
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM events WHERE type = 'files.created' ORDER BY seq")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    let expected = format!("upload:{}", made["id"].as_str().unwrap());
    assert_eq!(actors, [expected.clone(), expected]);

    // The token opens nothing else.
    let auth = format!("Bearer {token}");
    let listed = call(
        "GET",
        &app.url("/api/v1/files"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    listed.assert_problem(403, "forbidden");

    // Only an upload token is taken from the URL: a key there is not (URLs end up in logs).
    let key = app
        .admin(
            "POST",
            "/api/v1/keys",
            Some(json!({"name": "backend", "scopes": ["files:write"]})),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let key = key.json()["key"].as_str().unwrap().to_owned();
    let in_url = call(
        "POST",
        &app.url(&format!("/api/v1/files?token={key}&name=k.png")),
        &[("content-type", "image/png")],
        Some(PNG.to_vec()),
    )
    .await;
    in_url.assert_problem(401, "unauthorized");
    app.stop().await;
}

async fn refused_upload_tokens_store_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let png_only = make_token(
        &app,
        json!({
            "bucket": "images",
            "max_size": 100,
            "content_types": ["image/png"],
            "expires_in_seconds": 600,
        }),
    )
    .await;
    let token = png_only["token"].as_str().unwrap();
    let big_png: Vec<u8> = PNG.iter().copied().chain([0u8; 200]).collect();
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    let expired = signed(&app, |g| g.expires = chrono::Utc::now().timestamp() - 1);
    let (claims, signature) = signed(&app, |_| {})
        .split_once('.')
        .map(|(c, s)| (c.to_owned(), s.to_owned()))
        .unwrap();
    let forged_claims = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut grant: Value =
            serde_json::from_slice(&engine.decode(claims.trim_start_matches("syu_")).unwrap())
                .unwrap();
        grant["max_size"] = json!(1_000_000_000);
        format!("syu_{}", engine.encode(grant.to_string()))
    };
    let tampered = format!("{forged_claims}.{signature}");
    // Each case: its token, query and bytes, and the answer it gets.
    let cases: [(_, _, _, &[u8], _, _); 5] = [
        (
            "another bucket",
            token.to_owned(),
            "?bucket=default",
            PNG,
            403,
            "forbidden",
        ),
        (
            "too big",
            token.to_owned(),
            "",
            &big_png,
            413,
            "payload_too_large",
        ),
        (
            "a refused type",
            token.to_owned(),
            "",
            gif,
            415,
            "unsupported_media_type",
        ),
        ("expired", expired, "", PNG, 401, "unauthorized"),
        ("tampered with", tampered, "", PNG, 401, "unauthorized"),
    ];
    for (case, token, query, bytes, status, code) in cases {
        let reply = upload_with(&app, &token, query, "x.png", bytes).await;
        assert_eq!(reply.status, status, "{case}: {}", reply.body);
        let problem = reply.assert_problem(status, code);
        if case == "expired" {
            assert_eq!(problem["detail"], "this upload token expired");
        }
    }
    assert_nothing_stored(&app, backend).await;

    // A single-use token makes one file; its replay, racing or later, makes none.
    let once = make_token(
        &app,
        json!({ "bucket": "images", "expires_in_seconds": 600, "single_use": true }),
    )
    .await;
    let once = once["token"].as_str().unwrap();
    let racing =
        futures_util::future::join_all((0..4).map(|_| upload_with(&app, once, "", "x.png", PNG)))
            .await;
    let mut statuses: Vec<u16> = racing.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 401, 401, 401], "racing replays");
    for refused in racing.iter().filter(|r| r.status == 401) {
        let problem = refused.assert_problem(401, "unauthorized");
        assert_eq!(
            problem["detail"],
            "this single-use upload token has already made its file"
        );
    }
    let replay = upload_with(&app, once, "", "y.png", PNG).await;
    replay.assert_problem(401, "unauthorized");
    assert_eq!(stored_keys(&app).await.len(), 1, "one object for one use");
    let listed = app.admin_get("/api/v1/files").await.json();
    assert_eq!(listed["files"].as_array().unwrap().len(), 1, "{listed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_upload_tokens_store_nothing_on_disk() {
    refused_upload_tokens_store_nothing(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_upload_tokens_store_nothing_on_s3() {
    refused_upload_tokens_store_nothing(Backend::S3PathStyle).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_upload_token_requests_name_the_field() {
    let app = spawn(Backend::Local).await;
    let base = || json!({ "bucket": "images", "expires_in_seconds": 60 });
    let with = |field: &str, value: Value| {
        let mut body = base();
        body[field] = value;
        body
    };
    let mut missing_expiry = base();
    missing_expiry
        .as_object_mut()
        .unwrap()
        .remove("expires_in_seconds");
    let cases = [
        (with("bucket", json!("nope")), Some("bucket")),
        (
            with("expires_in_seconds", json!(0)),
            Some("expires_in_seconds"),
        ),
        (
            with("expires_in_seconds", json!(86_401)),
            Some("expires_in_seconds"),
        ),
        (with("max_size", json!(0)), Some("max_size")),
        (with("max_size", json!(65_537)), Some("max_size")),
        (
            with("content_types", json!(["image"])),
            Some("content_types"),
        ),
        (with("content_types", json!(["*/*"])), Some("content_types")),
        (with("name_prefix", json!("a/b")), Some("name_prefix")),
        (with("name_prefix", json!("")), Some("name_prefix")),
        (with("extra", json!(1)), None),
        (missing_expiry, None),
    ];
    for (body, field) in cases {
        let reply = app
            .admin("POST", "/api/v1/files/upload-tokens", Some(body.clone()))
            .await;
        let problem = reply.assert_problem(422, reply.json()["code"].as_str().unwrap_or(""));
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body}");
        }
    }
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM storage_upload_token_uses")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(listed, 0);

    // Without storage to presign on, completing is a conflict, not a guess.
    let token = make_token(&app, base()).await;
    let reply = app
        .admin(
            "POST",
            "/api/v1/files/complete",
            Some(json!({ "token": token["token"] })),
        )
        .await;
    reply.assert_problem(409, "conflict");
    app.stop().await;
}

/// Posts `bytes` to the bucket with the presigned form, as a browser would.
async fn post_form(form: &Value, bytes: &[u8], content_type: &str) -> u16 {
    let fields = form["fields"].as_object().unwrap();
    let mut parts: Vec<Part<'_>> = fields
        .iter()
        .map(|(name, value)| {
            (
                name.as_str(),
                None,
                None,
                value.as_str().unwrap().as_bytes(),
            )
        })
        .collect();
    parts.push(("file", Some("upload.bin"), Some(content_type), bytes));
    let (form_type, body) = multipart(&parts);
    let (status, answer) = to_store(
        "POST",
        form["url"].as_str().unwrap(),
        Some(&form_type),
        &body,
    )
    .await;
    assert!(
        (200..300).contains(&status),
        "the store refused the form: {}",
        String::from_utf8_lossy(&answer)
    );
    status
}

async fn complete(app: &TestApp, token: &str, name: &str) -> Reply {
    let auth = format!("Bearer {token}");
    call(
        "POST",
        &app.url("/api/v1/files/complete"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(json!({ "name": name }).to_string().into_bytes()),
    )
    .await
}

async fn a_presigned_post_becomes_a_file_once_the_object_is_checked(backend: Backend) {
    let app = spawn(backend).await;
    let request = json!({
        "bucket": "images",
        "max_size": 100,
        "content_types": ["image/png"],
        "expires_in_seconds": 600,
        "name_prefix": "u1-",
    });
    let made = make_token(&app, request.clone()).await;
    let token = made["token"].as_str().unwrap();
    let form = &made["presigned_post"];
    assert_eq!(form["fields"]["Content-Type"], "image/png", "{made}");
    assert_eq!(
        form["fields"]["key"],
        format!("files/images/{}", made["id"].as_str().unwrap())
    );

    // Before anything is posted there is nothing to complete.
    complete(&app, token, "a.png")
        .await
        .assert_problem(404, "not_found");

    post_form(form, PNG, "image/png").await;
    let done = complete(&app, token, "a.png").await;
    assert_eq!(done.status, 201, "{}", done.body);
    let file = done.json();
    assert_eq!(file["id"], made["id"]);
    assert_eq!(file["name"], "u1-a.png");
    assert_eq!(file["size"], PNG.len());
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["sha256"], sha256_hex(PNG));
    let content = app
        .admin_get(&format!(
            "/api/v1/files/{}/content",
            made["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(content.bytes, PNG);
    // A repeat answers the same file and makes no other.
    let again = complete(&app, token, "other.png").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["name"], "u1-a.png");

    // The store may not enforce the policy (this one does not): the completion does. A
    // too large or wrongly typed object is removed, and no file is recorded.
    let gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    let big: Vec<u8> = PNG.iter().copied().chain([0u8; 200]).collect();
    for (bytes, status, code) in [
        (&big[..], 413, "payload_too_large"),
        (&gif[..], 415, "unsupported_media_type"),
    ] {
        let made = make_token(&app, request.clone()).await;
        let token = made["token"].as_str().unwrap();
        post_form(&made["presigned_post"], bytes, "image/png").await;
        complete(&app, token, "x.png")
            .await
            .assert_problem(status, code);
        let key = format!("files/images/{}", made["id"].as_str().unwrap());
        assert!(
            !stored_keys(&app).await.contains(&key),
            "the refused object {key} is removed"
        );
    }
    let listed = app.admin_get("/api/v1/files").await.json();
    assert_eq!(listed["files"].as_array().unwrap().len(), 1, "{listed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_post_becomes_a_file_once_the_object_is_checked_path_style() {
    a_presigned_post_becomes_a_file_once_the_object_is_checked(Backend::S3PathStyle).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_post_becomes_a_file_once_the_object_is_checked_virtual_hosted() {
    a_presigned_post_becomes_a_file_once_the_object_is_checked(Backend::S3VirtualHosted).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_declared_buckets_are_listed_with_their_rules() {
    let app = spawn(Backend::Local).await;
    let listed = app.admin_get("/api/v1/files/buckets").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let buckets = listed.json()["buckets"].as_array().unwrap().clone();
    let names: Vec<&str> = buckets
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "docs", "images", "public", "small"]);
    let images = buckets.iter().find(|b| b["name"] == "images").unwrap();
    assert_eq!(images["max_file_size"], 65_536);
    assert_eq!(images["allowed_types"], json!(["image/*"]));
    assert_eq!(images["public"], false);
    // The static segment is not taken for a file id.
    app.admin_get("/api/v1/files/0190f0c4-0000-7000-8000-000000000000")
        .await
        .assert_problem(404, "not_found");
    app.stop().await;
}

/// Sends `head` and `body` on a raw connection, the second half of the body a moment after
/// the first, all of it before reading the answer, as a client that does not watch for an
/// early answer does (Node's fetch); returns the answer.
async fn raw_exchange(app: &TestApp, head: &str, body: &[u8]) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.address).await?;
    stream.write_all(head.as_bytes()).await?;
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stream.write_all(rest).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn an_upload_refused_part_way_through_its_body_still_reaches_the_client_as_a_413() {
    let app = spawn(Backend::Local).await;
    let token = make_token(
        &app,
        json!({"bucket": "default", "max_size": 16, "expires_in_seconds": 60}),
    )
    .await;
    // A form whose file grows past the token's size: refused part way through the body.
    let (form_type, body) = multipart(&[("file", Some("big.bin"), None, &vec![b'x'; 256 * 1024])]);
    let head = format!(
        "POST /api/v1/files HTTP/1.1\r\nhost: switchyard\r\nauthorization: Bearer {}\r\n\
         content-type: {form_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        token["token"].as_str().unwrap(),
    );
    let body = [
        format!("{:x}\r\n", body.len()).into_bytes(),
        body,
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();

    // Without draining the rest, closing the connection resets it and the answer can be
    // lost with it.
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(raw_exchange(&app, &head, &body).await);
    }

    for answer in &answers {
        let answer = answer.as_ref().expect("the answer arrives, not a reset");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
    app.stop().await;
}
