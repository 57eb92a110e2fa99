//! The files API, run against each backend: the local directory, and a real S3-compatible
//! server (moto, started by scripts/test.sh) addressed path-style and virtual-hosted.

use std::time::Duration;

use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{ADMIN_TOKEN, Reply, TestApp, call};

/// Where the test S3 server listens: set by scripts/test.sh, with the same default.
pub(crate) fn s3_endpoint() -> String {
    std::env::var("SWITCHYARD_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9090".into())
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Backend {
    Local,
    S3PathStyle,
    S3VirtualHosted,
}

/// The API with the test buckets, on `backend`; an S3 backend gets a bucket of its own.
pub(crate) async fn spawn(backend: Backend) -> TestApp {
    spawn_adjusted(backend, |_| {}).await
}

pub(crate) async fn spawn_adjusted(
    backend: Backend,
    adjust: impl FnOnce(&mut std::collections::BTreeMap<String, String>),
) -> TestApp {
    let bucket = format!("t-{}", uuid::Uuid::new_v4().simple());
    if !matches!(backend, Backend::Local) {
        let created = call("PUT", &format!("{}/{bucket}", s3_endpoint()), &[], None).await;
        assert_eq!(
            created.status, 200,
            "create the test bucket: {}",
            created.body
        );
    }
    TestApp::spawn_with(
        |env| {
            env.insert(
                "CONFIG_DIR".into(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config/storage").into(),
            );
            if !matches!(backend, Backend::Local) {
                env.insert("STORAGE_BACKEND".into(), "s3".into());
                env.insert("S3_BUCKET".into(), bucket);
                env.insert(
                    "S3_ENDPOINT".into(),
                    s3_endpoint().replace("127.0.0.1", "localhost"),
                );
                env.insert("S3_REGION".into(), "us-east-1".into());
                env.insert("S3_ACCESS_KEY".into(), "test-key".into());
                env.insert("S3_SECRET_KEY".into(), "test-secret".into());
                let path_style = matches!(backend, Backend::S3PathStyle);
                env.insert("STORAGE_PATH_STYLE".into(), path_style.to_string());
            }
            adjust(env);
        },
        Default::default(),
    )
    .await
}

/// Runs one scenario on every backend, each as its own test.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::Backend::Local).await })*
        }
        mod s3_path_style {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::Backend::S3PathStyle).await })*
        }
        mod s3_virtual_hosted {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::Backend::S3VirtualHosted).await })*
        }
    };
}

on_every_backend!(
    an_upload_reads_back_with_its_metadata_and_safe_headers,
    a_file_larger_than_a_part_streams_through_a_multipart_upload,
    files_list_newest_first_by_bucket_and_name_prefix,
    ranges_and_conditional_requests_are_answered,
    a_delete_removes_the_object_and_converges_when_half_done,
    signed_urls_work_without_the_token_until_they_expire,
    oversized_uploads_are_refused_and_leave_nothing_stored,
    refused_types_and_malformed_uploads_leave_nothing_stored,
    hostile_names_are_stored_safely_and_never_reach_the_key,
    orphaned_objects_are_removed_by_the_deletes_sweep,
);

pub(crate) const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One part of a form: field, file name, content type, bytes.
pub(crate) type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body and its content type.
pub(crate) fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----switchyard-test-boundary";
    let mut body = Vec::new();
    for (field, file_name, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{field}\"");
        if let Some(file_name) = file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_multipart(
    app: &TestApp,
    query: &str,
    file_name: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Reply {
    let (form_type, body) = multipart(&[("file", Some(file_name), content_type, bytes)]);
    let auth = auth();
    call(
        "POST",
        &app.url(&format!("/api/v1/files{query}")),
        &[("authorization", &auth), ("content-type", &form_type)],
        Some(body),
    )
    .await
}

async fn upload_raw(app: &TestApp, query: &str, content_type: &str, bytes: &[u8]) -> Reply {
    let auth = auth();
    call(
        "POST",
        &app.url(&format!("/api/v1/files{query}")),
        &[("authorization", &auth), ("content-type", content_type)],
        Some(bytes.to_vec()),
    )
    .await
}

async fn download(app: &TestApp, id: &str, headers: &[(&str, &str)]) -> Reply {
    let auth = auth();
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    call(
        "GET",
        &app.url(&format!("/api/v1/files/{id}/content")),
        &all,
        None,
    )
    .await
}

/// Every object the store holds, by key.
pub(crate) async fn stored_keys(app: &TestApp) -> Vec<String> {
    let mut keys: Vec<String> = app
        .state
        .storage
        .store()
        .list(None)
        .map(|meta| meta.expect("list the store").location.to_string())
        .collect()
        .await;
    keys.sort();
    keys
}

/// Every file under the local storage directory, staging files included.
pub(crate) fn files_on_disk(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&app.state.settings.storage.path, &mut out);
    out
}

pub(crate) async fn assert_nothing_stored(app: &TestApp, backend: Backend) {
    assert_eq!(
        stored_keys(app).await,
        Vec::<String>::new(),
        "objects left in the store"
    );
    if matches!(backend, Backend::Local) {
        assert_eq!(
            files_on_disk(app),
            Vec::<std::path::PathBuf>::new(),
            "files left on disk"
        );
    }
    let listed = app.admin_get("/api/v1/files").await.json();
    assert_eq!(listed["files"].as_array().unwrap().len(), 0, "{listed}");
}

async fn an_upload_reads_back_with_its_metadata_and_safe_headers(backend: Backend) {
    let app = spawn(backend).await;

    let created = upload_multipart(&app, "?bucket=images", "dot.png", Some("image/png"), PNG).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let file = created.json();
    let id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(file["bucket"], "images");
    assert_eq!(file["name"], "dot.png");
    assert_eq!(file["size"], PNG.len());
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["sha256"], sha256_hex(PNG));
    assert!(file["created_at"].is_string());
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/files/{id}").as_str())
    );

    let metadata = app.admin_get(&format!("/api/v1/files/{id}")).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json(), file);

    let content = download(&app, &id, &[]).await;
    assert_eq!(content.status, 200);
    assert_eq!(content.bytes, PNG);
    assert_eq!(content.header("content-type"), Some("image/png"));
    assert_eq!(
        content.header("content-length"),
        Some(PNG.len().to_string().as_str())
    );
    assert_eq!(
        content.header("etag"),
        Some(format!("\"{}\"", sha256_hex(PNG)).as_str())
    );
    assert_eq!(content.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(content.header("accept-ranges"), Some("bytes"));
    assert!(
        content
            .header("content-disposition")
            .unwrap()
            .starts_with("inline; filename=\"dot.png\"")
    );

    let auth = auth();
    let head = call(
        "HEAD",
        &app.url(&format!("/api/v1/files/{id}/content")),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.bytes.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(PNG.len().to_string().as_str())
    );

    // A raw body with ?name=; text the bytes cannot identify keeps its declared type and
    // downloads as an attachment rather than rendering.
    let html = b"<html><script>alert(1)</script></html>";
    let raw = upload_raw(&app, "?name=page.html", "text/html", html).await;
    assert_eq!(raw.status, 201, "{}", raw.body);
    assert_eq!(raw.json()["bucket"], "default");
    let raw_id = raw.json()["id"].as_str().unwrap().to_owned();
    let page = download(&app, &raw_id, &[]).await;
    assert_eq!(page.bytes, html);
    assert!(
        page.header("content-disposition")
            .unwrap()
            .starts_with("attachment;")
    );

    // Without the token the file is not there for the caller: same answer as no file.
    let anonymous = app.get(&format!("/api/v1/files/{id}/content")).await;
    anonymous.assert_problem(401, "unauthorized");
    app.get(&format!("/api/v1/files/{id}"))
        .await
        .assert_problem(401, "unauthorized");

    // A public bucket serves without a token, cacheably.
    let public = upload_raw(&app, "?bucket=public&name=logo.png", "image/png", PNG).await;
    let public_id = public.json()["id"].as_str().unwrap().to_owned();
    let open = app.get(&format!("/api/v1/files/{public_id}/content")).await;
    assert_eq!(open.status, 200);
    assert_eq!(open.bytes, PNG);
    assert!(open.header("cache-control").unwrap().contains("public"));

    // Unknown ids, well-formed or not, are 404.
    let unknown = uuid::Uuid::now_v7();
    app.admin_get(&format!("/api/v1/files/{unknown}"))
        .await
        .assert_problem(404, "not_found");
    app.admin_get("/api/v1/files/not-an-id")
        .await
        .assert_problem(404, "not_found");
    download(&app, &unknown.to_string(), &[])
        .await
        .assert_problem(404, "not_found");
    app.admin("DELETE", &format!("/api/v1/files/{unknown}"), None)
        .await
        .assert_problem(404, "not_found");

    // Uploads and deletes reach the audit log through the events outbox and its relay.
    let deleted = app
        .admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    let path = format!("/api/v1/audit?resource_type=file&resource_id={id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let actions = loop {
        let audit = app.admin_get(&path).await.json();
        let actions: Vec<String> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        if actions.len() >= 2 || std::time::Instant::now() > deadline {
            break actions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(actions, ["files.deleted", "files.created"]);
    app.stop().await;
}

async fn a_file_larger_than_a_part_streams_through_a_multipart_upload(backend: Backend) {
    let app = spawn(backend).await;
    // 9 MiB and a bit: more than one part on either backend.
    let bytes: Vec<u8> = (0..(9 << 20) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let created = upload_raw(&app, "?name=big.bin", "application/octet-stream", &bytes).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let file = created.json();
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha256_hex(&bytes));
    let id = file["id"].as_str().unwrap();
    let content = download(&app, id, &[]).await;
    assert_eq!(content.status, 200);
    assert!(
        content.bytes == bytes,
        "the download differs from the upload"
    );
    let tail = download(&app, id, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.bytes, bytes[bytes.len() - 10..]);
    app.stop().await;
}

async fn files_list_newest_first_by_bucket_and_name_prefix(backend: Backend) {
    let app = spawn(backend).await;
    let mut ids = Vec::new();
    for name in ["report-1.txt", "report-2.txt", "50%_off.txt", "notes.txt"] {
        let created = upload_raw(
            &app,
            &format!("?name={}", urlencode(name)),
            "text/plain",
            b"x",
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
        ids.push(created.json()["id"].as_str().unwrap().to_owned());
    }
    upload_raw(&app, "?bucket=public&name=report-3.txt", "text/plain", b"x").await;

    let page = app
        .admin_get("/api/v1/files?bucket=default&limit=3")
        .await
        .json();
    let names: Vec<&str> = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notes.txt", "50%_off.txt", "report-2.txt"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .admin_get(&format!(
            "/api/v1/files?bucket=default&limit=3&cursor={cursor}"
        ))
        .await
        .json();
    assert_eq!(rest["files"][0]["id"], ids[0].as_str());
    assert!(rest["next_cursor"].is_null(), "{rest}");

    let reports = app
        .admin_get("/api/v1/files?name_prefix=report-")
        .await
        .json();
    assert_eq!(reports["files"].as_array().unwrap().len(), 3);
    let literal = app
        .admin_get("/api/v1/files?name_prefix=50%25_")
        .await
        .json();
    assert_eq!(literal["files"].as_array().unwrap().len(), 1, "{literal}");
    let none = app.admin_get("/api/v1/files?name_prefix=5_").await.json();
    assert_eq!(
        none["files"].as_array().unwrap().len(),
        0,
        "LIKE wildcards are literal"
    );

    app.admin_get("/api/v1/files?bucket=nope")
        .await
        .assert_problem(404, "not_found");
    let bad = app
        .admin_get("/api/v1/files?cursor=garbage")
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(bad["field"], "cursor");
    let bad = app
        .admin_get("/api/v1/files?limit=0")
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(bad["field"], "limit");
    app.stop().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn ranges_and_conditional_requests_are_answered(backend: Backend) {
    let app = spawn(backend).await;
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let id = upload_raw(&app, "?name=data.bin", "application/octet-stream", &bytes)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let etag = format!("\"{}\"", sha256_hex(&bytes));

    let part = download(&app, &id, &[("range", "bytes=100-199")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, bytes[100..200]);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(part.header("content-length"), Some("100"));

    let open_ended = download(&app, &id, &[("range", "bytes=990-")]).await;
    assert_eq!(open_ended.status, 206);
    assert_eq!(open_ended.bytes, bytes[990..]);

    let past_end = download(&app, &id, &[("range", "bytes=1000-")]).await;
    past_end.assert_problem(416, "range_not_satisfiable");
    assert_eq!(past_end.header("content-range"), Some("bytes */1000"));

    // Several ranges, or a malformed one, get the whole file.
    let several = download(&app, &id, &[("range", "bytes=0-1,5-6")]).await;
    assert_eq!(several.status, 200);
    assert_eq!(several.bytes.len(), 1000);

    let unchanged = download(&app, &id, &[("if-none-match", &etag)]).await;
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.bytes.is_empty());
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
    let weak = download(
        &app,
        &id,
        &[("if-none-match", &format!("\"other\", W/{etag}"))],
    )
    .await;
    assert_eq!(weak.status, 304);
    let changed = download(&app, &id, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(changed.status, 200);

    // If-Range with another validator: the range is ignored and the whole file sent.
    let stale = download(
        &app,
        &id,
        &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
    )
    .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.bytes.len(), 1000);
    let current = download(&app, &id, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(current.status, 206);
    app.stop().await;
}

async fn a_delete_removes_the_object_and_converges_when_half_done(backend: Backend) {
    let app = spawn(backend).await;
    let id = upload_raw(&app, "?name=a.txt", "text/plain", b"hello")
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stored_keys(&app).await.len(), 1);
    let deleted = app
        .admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(stored_keys(&app).await.is_empty());
    app.admin_get(&format!("/api/v1/files/{id}"))
        .await
        .assert_problem(404, "not_found");
    app.admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await
        .assert_problem(404, "not_found");

    // The object already gone (a delete that stopped after it): the row still goes.
    let id = upload_raw(&app, "?name=b.txt", "text/plain", b"hello")
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = stored_keys(&app).await.pop().unwrap();
    app.state
        .storage
        .store()
        .delete(&object_store::path::Path::from(key.as_str()))
        .await
        .unwrap();
    let missing = download(&app, &id, &[]).await;
    missing.assert_problem(404, "not_found");
    let deleted = app
        .admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    app.admin_get(&format!("/api/v1/files/{id}"))
        .await
        .assert_problem(404, "not_found");
    app.stop().await;
}

async fn signed_urls_work_without_the_token_until_they_expire(backend: Backend) {
    let app = spawn(backend).await;
    let id = upload_raw(&app, "?name=photo.png", "image/png", PNG)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = app
        .admin(
            "POST",
            &format!("/api/v1/files/{id}/url"),
            Some(serde_json::json!({"expires_in_seconds": 60})),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let url = signed.json()["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!(
            "http://{}/api/v1/files/{id}/content?",
            app.address
        )),
        "{url}"
    );
    let fetched = call("GET", &url, &[], None).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.bytes, PNG);

    // No body: the default lifetime.
    let default = app
        .admin("POST", &format!("/api/v1/files/{id}/url"), None)
        .await;
    assert_eq!(default.status, 200, "{}", default.body);

    // Tampered: another file's id, another expiry, a changed signature.
    let other = uuid::Uuid::now_v7();
    let forged = url.replace(&id, &other.to_string());
    call("GET", &forged, &[], None)
        .await
        .assert_problem(403, "forbidden");
    let (base, query) = url.split_once('?').unwrap();
    let params: Vec<(String, String)> = query
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let expires: i64 = params
        .iter()
        .find(|(k, _)| k == "expires")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let signature = params
        .iter()
        .find(|(k, _)| k == "signature")
        .unwrap()
        .1
        .clone();
    let later = format!("{base}?expires={}&signature={signature}", expires + 3600);
    call("GET", &later, &[], None)
        .await
        .assert_problem(403, "forbidden");
    // One character changed (to one it is not).
    let other_first = if signature.starts_with('A') { 'B' } else { 'A' };
    let flipped = format!(
        "{base}?expires={expires}&signature={other_first}{}",
        &signature[1..]
    );
    call("GET", &flipped, &[], None)
        .await
        .assert_problem(403, "forbidden");
    call("GET", &format!("{base}?expires={expires}"), &[], None)
        .await
        .assert_problem(403, "forbidden");

    // Expired: a genuine signature whose time has passed.
    let key = app.state.storage.url_key().unwrap();
    let id_uuid: uuid::Uuid = id.parse().unwrap();
    let past = chrono::Utc::now().timestamp() - 1;
    let expired = format!(
        "{base}?expires={past}&signature={}",
        key.sign(id_uuid, past)
    );
    let refused = call("GET", &expired, &[], None)
        .await
        .assert_problem(403, "forbidden");
    assert!(
        refused["detail"].as_str().unwrap().contains("expired"),
        "{refused}"
    );

    let bad = app
        .admin(
            "POST",
            &format!("/api/v1/files/{id}/url"),
            Some(serde_json::json!({"expires_in_seconds": 0})),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(bad["field"], "expires_in_seconds");

    // The store's own presigned URL, where there is one.
    let presigned = app
        .admin(
            "POST",
            &format!("/api/v1/files/{id}/url"),
            Some(serde_json::json!({"presigned": true})),
        )
        .await;
    match backend {
        Backend::Local => {
            assert_eq!(
                presigned.assert_problem(422, "validation_failed")["field"],
                "presigned"
            );
        }
        _ => {
            assert_eq!(presigned.status, 200, "{}", presigned.body);
            let direct = presigned.json()["presigned_url"]
                .as_str()
                .unwrap()
                .to_owned();
            let (status, body) = get_from_store(&direct).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert_eq!(body, PNG);
        }
    }
    app.stop().await;
}

async fn oversized_uploads_are_refused_and_leave_nothing_stored(backend: Backend) {
    let app = spawn(backend).await;
    let big = vec![b'a'; 1001];

    // A declared length over the limit: refused before the body is read.
    let declared = upload_raw(&app, "?bucket=small&name=a.txt", "text/plain", &big).await;
    let problem = declared.assert_problem(413, "payload_too_large");
    assert!(
        problem["detail"].as_str().unwrap().contains("1000"),
        "{problem}"
    );

    // Chunked, no length given: counted on the way.
    let status = raw_upload(
        &app,
        "/api/v1/files?bucket=small&name=a.txt",
        None,
        &[&big[..600], &big[600..]],
        true,
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // A multipart body whose length is within the form allowance but whose file is not.
    let (form_type, body) = multipart(&[("file", Some("a.txt"), Some("text/plain"), &big)]);
    let auth = auth();
    let form = call(
        "POST",
        &app.url("/api/v1/files?bucket=small"),
        &[("authorization", &auth), ("content-type", &form_type)],
        Some(body),
    )
    .await;
    form.assert_problem(413, "payload_too_large");

    // Exactly at the limit is fine.
    let fits = upload_raw(&app, "?bucket=small&name=a.txt", "text/plain", &big[..1000]).await;
    assert_eq!(fits.status, 201, "{}", fits.body);
    let id = fits.json()["id"].as_str().unwrap().to_owned();
    app.admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await;
    assert_nothing_stored(&app, backend).await;
    app.stop().await;
}

async fn refused_types_and_malformed_uploads_leave_nothing_stored(backend: Backend) {
    let app = spawn(backend).await;
    // HTML that claims to be a PNG is judged by its bytes, and images refuse it.
    let lie = upload_multipart(
        &app,
        "?bucket=images",
        "x.png",
        Some("image/png"),
        b"<html>hi</html>",
    )
    .await;
    lie.assert_problem(415, "unsupported_media_type");
    let text = upload_raw(
        &app,
        "?bucket=images&name=notes.txt",
        "text/plain",
        b"hello",
    )
    .await;
    text.assert_problem(415, "unsupported_media_type");
    // Extensions are accepted where the bucket names them.
    let pdf_name = upload_raw(
        &app,
        "?bucket=docs&name=scan.pdf",
        "application/octet-stream",
        b"%PDF-1.4\n",
    )
    .await;
    assert_eq!(pdf_name.status, 201, "{}", pdf_name.body);
    let id = pdf_name.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(pdf_name.json()["content_type"], "application/pdf");
    app.admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await;

    // A form without a file field, or a raw body without a name.
    let (form_type, body) = multipart(&[("title", None, None, b"holiday")]);
    let auth = auth();
    let no_file = call(
        "POST",
        &app.url("/api/v1/files"),
        &[("authorization", &auth), ("content-type", &form_type)],
        Some(body),
    )
    .await;
    let problem = no_file.assert_problem(400, "bad_request");
    assert!(
        problem["detail"].as_str().unwrap().contains("file"),
        "{problem}"
    );
    upload_raw(&app, "", "text/plain", b"hello")
        .await
        .assert_problem(400, "bad_request");
    let broken = call(
        "POST",
        &app.url("/api/v1/files"),
        &[
            ("authorization", &auth),
            ("content-type", "multipart/form-data; boundary=x"),
        ],
        Some(b"not a multipart body".to_vec()),
    )
    .await;
    broken.assert_problem(400, "bad_request");

    upload_raw(&app, "?bucket=nope&name=a.txt", "text/plain", b"x")
        .await
        .assert_problem(404, "not_found");
    // Without the token nothing is accepted.
    let anonymous = call(
        "POST",
        &app.url("/api/v1/files?name=a.txt"),
        &[],
        Some(b"x".to_vec()),
    )
    .await;
    anonymous.assert_problem(401, "unauthorized");

    // A client that goes away mid-upload leaves no partial object (9 MiB: past the first
    // part, so the multipart upload has begun).
    let half = vec![7u8; 9 << 20];
    raw_upload(
        &app,
        "/api/v1/files?name=gone.bin",
        Some(10 << 20),
        &[&half],
        false,
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !files_on_disk(&app).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_nothing_stored(&app, backend).await;
    app.stop().await;
}

async fn hostile_names_are_stored_safely_and_never_reach_the_key(backend: Backend) {
    let app = spawn(backend).await;
    let created = upload_multipart(
        &app,
        "",
        "../../etc/pass\u{202e}wd.txt",
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let file = created.json();
    assert_eq!(file["name"], "passwd.txt");
    let id = file["id"].as_str().unwrap();
    let keys = stored_keys(&app).await;
    assert_eq!(keys, [format!("files/default/{id}")]);
    let via_query = upload_raw(
        &app,
        "?name=..%2F..%2Fsec%1Bret%0D%0A.txt",
        "text/plain",
        b"x",
    )
    .await;
    assert_eq!(via_query.json()["name"], "secret.txt");
    let content = download(&app, id, &[]).await;
    let disposition = content.header("content-disposition").unwrap();
    assert!(
        !disposition.contains('/') && !disposition.contains('\u{1b}'),
        "{disposition}"
    );
    app.stop().await;
}

async fn orphaned_objects_are_removed_by_the_deletes_sweep(backend: Backend) {
    let app = spawn_adjusted(backend, |env| {
        env.insert("STORAGE_ORPHAN_GRACE_SECONDS".into(), "1".into());
    })
    .await;
    let kept = upload_raw(&app, "?name=kept.txt", "text/plain", b"kept")
        .await
        .json();
    let orphan = upload_raw(&app, "?name=orphan.txt", "text/plain", b"orphan")
        .await
        .json();
    // The row goes but the object stays, as after a crash between the two.
    sqlx::query("DELETE FROM storage_files WHERE id = $1")
        .bind(
            orphan["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .execute(&app.state.db)
        .await
        .unwrap();
    // On the local backend, also the staging file of an upload cut short by a crash.
    let mut orphans = 1;
    if matches!(backend, Backend::Local) {
        let staging = app
            .state
            .storage
            .settings()
            .path
            .join(format!("files/default/{}.partial", uuid::Uuid::new_v4()));
        std::fs::write(staging, b"half an upload").unwrap();
        orphans += 1;
    }
    // Old enough for the grace period (S3 keeps whole seconds).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let removed = switchyard::storage::orphans::sweep(
        &app.state.storage,
        &app.state.db,
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    assert_eq!(removed, orphans);
    assert_eq!(
        stored_keys(&app).await,
        [format!("files/default/{}", kept["id"].as_str().unwrap())]
    );
    let still = download(&app, kept["id"].as_str().unwrap(), &[]).await;
    assert_eq!(still.bytes, b"kept");
    app.stop().await;
}

/// A GET straight to the test S3 server, whatever host the URL names (the server is on
/// loopback; `bucket.localhost` does not resolve for every client).
async fn get_from_store(url: &str) -> (u16, Vec<u8>) {
    to_store("GET", url, None, &[]).await
}

/// A request straight to the test S3 server, as [`get_from_store`], with a body of
/// `content_type` when one is given.
pub(crate) async fn to_store(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let parsed = url::Url::parse(url).unwrap();
    let port = parsed.port_or_known_default().unwrap();
    let host = format!("{}:{port}", parsed.host_str().unwrap());
    let target = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(content_type) = content_type {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, answer[split + 4..].to_vec())
}

/// Sends an upload by hand: the body in `chunks`, chunked or under `length`. Returns the
/// status line, or "" when the connection closed without one. With `finish` false the
/// client hangs up after the chunks.
async fn raw_upload(
    app: &TestApp,
    path: &str,
    length: Option<usize>,
    chunks: &[&[u8]],
    finish: bool,
) -> String {
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let framing = match length {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: text/plain\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        let sent = if length.is_none() {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(chunk);
            framed.extend_from_slice(b"\r\n");
            stream.write_all(&framed).await
        } else {
            stream.write_all(chunk).await
        };
        if sent.is_err() {
            break;
        }
    }
    if !finish {
        drop(stream);
        return String::new();
    }
    if length.is_none() {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A raw upload sent in `chunks` chunks of 5 bytes, `gap` apart; the whole answer.
async fn slow_upload(address: std::net::SocketAddr, chunks: usize, gap: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/files?name=slow.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        stream.write_all(b"5\r\nhello\r\n").await.unwrap();
        tokio::time::sleep(gap).await;
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_outlasts_the_request_timeout_completes_while_bytes_keep_coming() {
    let app = spawn_adjusted(Backend::Local, |env| {
        env.insert("HTTP_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    // Six chunks 400 ms apart: well past the 1 s deadline, never silent for a second.
    let answer = slow_upload(app.address, 6, Duration::from_millis(400)).await;

    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"size\":30"), "{answer}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_past_the_memory_budget_wait_then_get_503_busy() {
    // Room for one upload; a second waits at most the 1 s request timeout.
    let app = spawn_adjusted(Backend::Local, |env| {
        env.insert("STORAGE_UPLOAD_MEMORY".into(), "24MiB".into());
        env.insert("HTTP_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    // Holds the one slot for about 3 s, never silent for a second.
    let slow = tokio::spawn(slow_upload(app.address, 10, Duration::from_millis(300)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let refused = upload_raw(&app, "?name=b.txt", "text/plain", b"second").await;
    let slow = slow.await.unwrap();
    let after = upload_raw(&app, "?name=c.txt", "text/plain", b"third").await;

    let problem = refused.assert_problem(503, "busy");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("storage.upload_memory"),
        "{problem}"
    );
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert!(slow.starts_with("HTTP/1.1 201"), "{slow}");
    assert_eq!(after.status, 201, "the slot came back: {}", after.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_object_store_is_a_503_and_degrades_health() {
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::spawn_with(
        |env| {
            env.insert("STORAGE_BACKEND".into(), "s3".into());
            env.insert("S3_BUCKET".into(), "unreachable".into());
            env.insert("S3_ENDPOINT".into(), endpoint);
            env.insert("STORAGE_PATH_STYLE".into(), "true".into());
            env.insert("S3_ACCESS_KEY".into(), "test-key".into());
            env.insert("S3_SECRET_KEY".into(), "test-secret-never-shown".into());
        },
        Default::default(),
    )
    .await;
    let upload = upload_raw(&app, "?name=a.txt", "text/plain", b"hello").await;
    let problem = upload.assert_problem(503, "dependency_unavailable");
    assert_eq!(upload.header("retry-after"), Some("1"));
    assert!(!upload.body.contains("test-secret-never-shown"));
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("object storage"),
        "{problem}"
    );
    let health = app.get("/api/health").await;
    assert_eq!(health.status, 503);
    let report = health.json();
    assert_eq!(report["status"], "degraded");
    assert_eq!(report["checks"]["storage"]["status"], "down");
    assert_eq!(report["checks"]["postgres"]["status"], "up");
    assert!(!health.body.contains("test-secret-never-shown"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_local_storage_directory() {
    let app = TestApp::spawn().await;
    let report = app.get("/api/health").await.json();
    assert_eq!(report["checks"]["storage"]["status"], "up", "{report}");
    std::fs::remove_dir_all(&app.state.settings.storage.path).unwrap();
    let health = app.get("/api/health").await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["checks"]["storage"]["status"], "down");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_storage_directory_fails_uploads_as_it_fails_health() {
    let app = TestApp::spawn().await;
    let root = app.state.settings.storage.path.clone();
    std::fs::remove_dir_all(&root).unwrap();

    let small = upload_raw(&app, "?name=a.txt", "text/plain", b"hello").await;
    let streamed = upload_multipart(&app, "", "b.txt", Some("text/plain"), &[7u8; 64 * 1024]).await;
    let health = app.get("/api/health").await;

    for refused in [&small, &streamed] {
        let problem = refused.assert_problem(503, "dependency_unavailable");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("object storage"),
            "{problem}"
        );
    }
    assert_eq!(health.status, 503);
    assert!(!root.exists(), "an upload recreated the storage directory");
    app.stop().await;
}

#[tokio::test]
async fn uploads_and_deletes_are_published_on_the_files_channel() {
    let app = spawn(Backend::Local).await;
    let before = app.state.realtime.recover("files", None).await.unwrap();
    let file = upload_raw(&app, "?name=note.txt", "text/plain", b"hello")
        .await
        .json();
    let id = file["id"].as_str().unwrap();
    let deleted = app
        .admin("DELETE", &format!("/api/v1/files/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    // The relay publishes them from the outbox shortly after each commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let events = loop {
        let after = app
            .state
            .realtime
            .recover("files", Some(before.position))
            .await
            .unwrap();
        let events: Vec<serde_json::Value> = after
            .events
            .iter()
            .map(|e| serde_json::from_str(e.text.as_str()).unwrap())
            .collect();
        if events.len() >= 2 || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], "files.created");
    assert_eq!(events[0]["channel"], "files");
    assert_eq!(events[0]["data"]["subject"], id);
    assert_eq!(events[0]["data"]["data"]["name"], "note.txt");
    assert_eq!(events[1]["event"], "files.deleted");
    app.stop().await;
}
