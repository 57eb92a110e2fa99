//! Console sign-in: a token traded for an HttpOnly session cookie that opens the API as
//! its holder, reads without and changes only with the session's CSRF token, and stops
//! at sign-out, at a key's revocation, and for a token that opens nothing.

use serde_json::{Value, json};

use crate::common::{ADMIN_TOKEN, Reply, TestApp, call};

/// Signs in with `token`; the reply.
async fn sign_in(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(extra);
    call(
        "POST",
        &app.url("/console/session"),
        &headers,
        Some(json!({ "token": token }).to_string().into_bytes()),
    )
    .await
}

/// The `name=value` of a reply's Set-Cookie.
fn cookie_of(reply: &Reply) -> String {
    let set = reply.header("set-cookie").expect("a Set-Cookie");
    set.split(';').next().unwrap().to_owned()
}

async fn with_cookie(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut headers = vec![("cookie", cookie), ("content-type", "application/json")];
    if let Some(csrf) = csrf {
        headers.push(("x-csrf-token", csrf));
    }
    call(
        method,
        &app.url(path),
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

/// A key holding only `queues:read`, as `POST /api/v1/keys` answers it.
async fn viewer_key(app: &TestApp) -> Value {
    app.admin(
        "POST",
        "/api/v1/keys",
        Some(json!({ "name": "viewer", "scopes": ["queues:read"] })),
    )
    .await
    .json()
}

#[tokio::test]
async fn a_signed_in_console_reads_freely_changes_only_with_its_csrf_token_and_signs_out() {
    let app = TestApp::spawn().await;
    let signed = sign_in(&app, ADMIN_TOKEN, &[]).await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    let set = signed.header("set-cookie").unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(part), "{part} missing from {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let view = signed.json();
    assert_eq!(view["holder"]["kind"], "root");
    assert_eq!(view["scopes"], json!(["*"]));
    let csrf = view["csrf_token"].as_str().unwrap().to_owned();
    let cookie = cookie_of(&signed);
    assert!(
        !signed.body.contains(ADMIN_TOKEN) && !set.contains(ADMIN_TOKEN),
        "the token never comes back"
    );

    // Redis keeps the session under a hash of its id, not the id.
    let id = cookie.split_once('=').unwrap().1;
    let mut conn = app.state.redis.get().await.unwrap();
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!(
            "{}console:session:*",
            app.state.settings.redis.key_prefix
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(id));

    let current = with_cookie(&app, "GET", "/console/session", &cookie, None, None).await;
    assert_eq!(current.status, 200, "{}", current.body);
    assert_eq!(current.json()["csrf_token"], csrf);

    // Reads need only the cookie.
    let queues = with_cookie(&app, "GET", "/api/v1/queues", &cookie, None, None).await;
    assert_eq!(queues.status, 200, "{}", queues.body);

    // A change without the CSRF token (what another site's form could send) is refused
    // and changes nothing; with it, it goes through.
    let job = json!({ "kind": "noop", "payload": {} });
    for bad in [None, Some("not-the-token")] {
        let refused = with_cookie(
            &app,
            "POST",
            "/api/v1/jobs",
            &cookie,
            bad,
            Some(job.clone()),
        )
        .await;
        refused.assert_problem(403, "csrf_token_invalid");
    }
    let listed = app.admin_get("/api/v1/queues").await.json();
    let ready: u64 = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["ready"].as_u64().unwrap())
        .sum();
    assert_eq!(ready, 0, "a refused change enqueued something: {listed}");
    let made = with_cookie(
        &app,
        "POST",
        "/api/v1/jobs",
        &cookie,
        Some(&csrf),
        Some(job),
    )
    .await;
    assert_eq!(made.status, 202, "{}", made.body);

    // Signing out needs the CSRF token too, clears the cookie and ends the session.
    with_cookie(&app, "DELETE", "/console/session", &cookie, None, None)
        .await
        .assert_problem(403, "csrf_token_invalid");
    let out = with_cookie(
        &app,
        "DELETE",
        "/console/session",
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let gone = with_cookie(&app, "GET", "/console/session", &cookie, None, None).await;
    assert_eq!(gone.status, 204, "not signed in: {}", gone.body);
    with_cookie(&app, "GET", "/api/v1/queues", &cookie, None, None)
        .await
        .assert_problem(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn only_a_working_token_signs_in_and_https_makes_the_cookie_secure() {
    let app = TestApp::spawn().await;
    for token in [
        "wrong",
        "sy_a1b2c3d4e5_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "",
    ] {
        let refused = sign_in(&app, token, &[]).await;
        refused.assert_problem(401, "unauthorized");
        assert!(refused.header("set-cookie").is_none());
    }
    // An upload token is for one upload, not for the console.
    let upload = app
        .admin(
            "POST",
            "/api/v1/files/upload-tokens",
            Some(json!({ "bucket": "default", "expires_in_seconds": 60 })),
        )
        .await
        .json();
    sign_in(&app, upload["token"].as_str().unwrap(), &[])
        .await
        .assert_problem(401, "unauthorized");
    let bad = call(
        "POST",
        &app.url("/console/session"),
        &[("content-type", "application/json")],
        Some(b"{\"key\": 1}".to_vec()),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);

    let secure = sign_in(&app, ADMIN_TOKEN, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(secure.status, 201);
    assert!(secure.header("set-cookie").unwrap().contains("; Secure"));
    app.stop().await;
}

#[tokio::test]
async fn a_key_session_holds_the_keys_scopes_and_ends_with_the_key() {
    let app = TestApp::spawn().await;
    let made = viewer_key(&app).await;
    let key = made["key"].as_str().unwrap();
    let signed = sign_in(&app, key, &[]).await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    let view = signed.json();
    assert_eq!(view["holder"]["kind"], "key");
    assert_eq!(view["holder"]["prefix"], made["prefix"]);
    assert_eq!(view["scopes"], json!(["queues:read"]));
    let cookie = cookie_of(&signed);

    let queues = with_cookie(&app, "GET", "/api/v1/queues", &cookie, None, None).await;
    assert_eq!(queues.status, 200);
    let keys = with_cookie(&app, "GET", "/api/v1/keys", &cookie, None, None).await;
    assert_eq!(
        keys.assert_problem(403, "insufficient_scope")["required_scope"],
        "keys:read"
    );

    let prefix = made["prefix"].as_str().unwrap();
    let revoked = app
        .admin("DELETE", &format!("/api/v1/keys/{prefix}"), None)
        .await;
    assert_eq!(revoked.status, 200);
    // A revoked key stops working within a second on every replica; so does its session.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let reply = with_cookie(&app, "GET", "/api/v1/queues", &cookie, None, None).await;
        if reply.status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let gone = with_cookie(&app, "GET", "/console/session", &cookie, None, None).await;
    assert_eq!(
        gone.status, 204,
        "the session ended with its key: {}",
        gone.body
    );
    app.stop().await;
}

#[tokio::test]
async fn the_page_is_never_cached_and_its_hashed_assets_are_served_gzipped_for_good() {
    let app = TestApp::spawn().await;
    let page = app.get("/console").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe"),
        "{policy}"
    );
    let names: Vec<String> = page
        .body
        .split("/console/assets/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2, "{}", page.body);
    for name in &names {
        let url = app.url(&format!("/console/assets/{name}"));
        let zipped = call("GET", &url, &[("accept-encoding", "gzip")], None).await;
        assert_eq!(zipped.status, 200, "{name}");
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        assert_eq!(
            zipped.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let plain = call("GET", &url, &[("accept-encoding", "identity")], None).await;
        assert_eq!(plain.status, 200);
        assert!(plain.header("content-encoding").is_none());
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&zipped.bytes[..]),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped, plain.bytes, "{name}: the same asset either way");
    }
    app.get("/console/assets/console.0000000000000000.js")
        .await
        .assert_problem(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn a_hidden_api_document_answers_only_callers_with_credentials() {
    let open = TestApp::spawn().await;
    assert_eq!(open.get("/api/openapi.json").await.status, 200);
    open.stop().await;

    let app = TestApp::spawn_with(
        |env| {
            env.insert("OPENAPI_PUBLIC".into(), "false".into());
        },
        Default::default(),
    )
    .await;
    app.get("/api/openapi.json")
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(app.admin_get("/api/openapi.json").await.status, 200);
    let signed = sign_in(&app, ADMIN_TOKEN, &[]).await;
    let cookie = cookie_of(&signed);
    let with_session = with_cookie(&app, "GET", "/api/openapi.json", &cookie, None, None).await;
    assert_eq!(with_session.status, 200, "{}", with_session.body);
    // The reference page itself stays open; it reads the document with the session.
    assert_eq!(app.get("/docs").await.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_session_downloads_a_file_as_its_holder() {
    let app = TestApp::spawn().await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let uploaded = call(
        "POST",
        &app.url("/api/v1/files?name=notes.txt"),
        &[("authorization", &auth), ("content-type", "text/plain")],
        Some(b"kept in the console".to_vec()),
    )
    .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let path = format!(
        "/api/v1/files/{}/content?download=true",
        uploaded.json()["id"].as_str().unwrap()
    );
    let admin_cookie = cookie_of(&sign_in(&app, ADMIN_TOKEN, &[]).await);
    let viewer = viewer_key(&app).await;
    let viewer_cookie = cookie_of(&sign_in(&app, viewer["key"].as_str().unwrap(), &[]).await);

    let downloaded = with_cookie(&app, "GET", &path, &admin_cookie, None, None).await;
    let without_scope = with_cookie(&app, "GET", &path, &viewer_cookie, None, None).await;
    let unknown = with_cookie(&app, "GET", &path, "sy_console=unknown", None, None).await;

    assert_eq!(downloaded.status, 200, "{}", downloaded.body);
    assert_eq!(downloaded.body, "kept in the console");
    assert!(
        downloaded
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(
        without_scope.assert_problem(403, "insufficient_scope")["required_scope"],
        "files:read"
    );
    unknown.assert_problem(401, "unauthorized");
    app.stop().await;
}
