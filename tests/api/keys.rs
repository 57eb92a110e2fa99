//! Scoped API keys and the scope gate: the authorization matrix generated from the route
//! table, the keys API, and its bad input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::http::auth::RouteScopes;
use switchyard::storage::grants::Grant;

use crate::common::{ADMIN_TOKEN, Reply, TestApp, call};

/// Makes a key with `scopes` as the root token; returns its value and its view.
async fn make_key(app: &TestApp, scopes: &[&str]) -> (String, Value) {
    let reply = app
        .admin(
            "POST",
            "/api/v1/keys",
            Some(json!({ "name": format!("test {}", scopes.join(" ")), "scopes": scopes })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    (body["key"].as_str().unwrap().to_owned(), body)
}

/// A call with this `Authorization` header (none when `None`), and a JSON body for the
/// methods that take one.
async fn with_auth(app: &TestApp, method: &str, path: &str, auth: Option<&str>) -> Reply {
    let mut headers = Vec::new();
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    let body = matches!(method, "POST" | "PATCH" | "PUT").then(|| b"{}".to_vec());
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    call(method, &app.url(path), &headers, body).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Every route behind the gate, with its path's parameters filled in and whether it
/// takes upload tokens.
fn routes() -> Vec<(String, String, String, bool)> {
    let (_, doc) = switchyard::http::admin_routes().split_for_parts();
    RouteScopes::from_doc(&doc)
        .routes()
        .into_iter()
        .map(|(method, path, access)| {
            let scope = access
                .scope
                .unwrap_or_else(|| panic!("{method} {path} declares no scope"));
            let mut filled = String::new();
            let mut rest = path.as_str();
            while let Some(open) = rest.find('{') {
                filled.push_str(&rest[..open]);
                let close = rest[open..].find('}').unwrap() + open;
                filled.push_str(match &rest[open + 1..close] {
                    "queue" => "default",
                    "name" => "no-such-schedule",
                    _ => "0190f0c4-0000-7000-8000-000000000000",
                });
                rest = &rest[close + 1..];
            }
            filled.push_str(rest);
            (method.to_string(), filled, scope.to_string(), access.upload)
        })
        .collect()
}

/// An upload token for the default bucket, signed with the app's key, expiring at
/// `expires` (unix seconds).
fn upload_token(app: &TestApp, expires: i64) -> String {
    app.state
        .storage
        .grant_key()
        .expect("the test app has an app.secret")
        .sign(&Grant {
            id: uuid::Uuid::now_v7(),
            bucket: "default".into(),
            max_size: 1024,
            content_types: Vec::new(),
            name_prefix: None,
            single_use: false,
            expires,
            issuer: "admin".into(),
        })
}

/// What a refused request could have changed: the rows of every table and the keys under
/// the app's Redis prefix.
async fn footprint(app: &TestApp) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    let mut counts = BTreeMap::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{table}\""
        )))
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        counts.insert(table, n);
    }
    let mut conn = app.state.redis.get().await.unwrap();
    let pattern = format!("{}*", app.state.settings.redis.key_prefix);
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    // The rate limiter's own counters are bookkeeping of the refusals, not state.
    let state = keys.iter().filter(|k| !k.contains(":ratelimit:")).count();
    counts.insert("redis keys".into(), state as i64);
    counts
}

#[tokio::test]
async fn every_route_declares_a_scope_and_the_authorization_matrix_holds() {
    // Hundreds of refusals come from one address: lift the failed-authentication budget
    // (tests/api/limits.rs tests it).
    let app = TestApp::spawn_with(
        |env| {
            env.insert("RATE_LIMIT_FAILED_AUTH_BURST".into(), "100000".into());
        },
        Default::default(),
    )
    .await;
    let routes = routes();
    assert!(routes.len() >= 40, "the route table is read: {routes:?}");
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let uploads: Vec<_> = routes.iter().filter(|r| r.3).map(|r| &r.1).collect();
    assert_eq!(
        uploads,
        ["/api/v1/files", "/api/v1/files/complete"],
        "only the upload routes take upload tokens"
    );
    for (_, _, scope, _) in &routes {
        if !keys.contains_key(scope) {
            keys.insert(scope.clone(), make_key(&app, &[scope]).await.0);
        }
    }
    let (revoked, revoked_view) = make_key(&app, &["*"]).await;
    let prefix = revoked_view["prefix"].as_str().unwrap();
    assert_eq!(
        app.admin("DELETE", &format!("/api/v1/keys/{prefix}"), None)
            .await
            .status,
        200
    );
    let (expired, expired_view) = make_key(&app, &["*"]).await;
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(expired_view["id"].as_str().unwrap())
        .execute(&app.state.db)
        .await
        .unwrap();
    let unknown = format!("sy_{}_{}", "a1b2c3d4e5", "Z".repeat(40));
    let right = &keys["jobs:read"];
    let last = if right.ends_with('x') { "y" } else { "x" };
    let wrong_secret = format!("{}{last}", &right[..right.len() - 1]);
    let now = chrono::Utc::now().timestamp();
    let upload = upload_token(&app, now + 600);
    let expired_upload = upload_token(&app, now - 1);
    let (claims, _) = upload.split_once('.').unwrap();
    let tampered_upload = format!("{claims}.{}", "A".repeat(43));

    // Refused: nothing a refused request could change changes. The keys made above are
    // events the relay is still auditing; the footprint is taken once it is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE relayed_at IS NULL")
                .fetch_one(&app.state.db)
                .await
                .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = footprint(&app).await;
    let refusals: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("another scheme", Some("Basic YWRtaW46YWRtaW4=".into())),
        ("an empty bearer", Some("Bearer ".into())),
        ("not a key", Some(bearer("not-a-key-at-all"))),
        ("an unknown key", Some(bearer(&unknown))),
        ("a wrong secret", Some(bearer(&wrong_secret))),
        ("a revoked key", Some(bearer(&revoked))),
        ("an expired key", Some(bearer(&expired))),
        ("an expired upload token", Some(bearer(&expired_upload))),
        ("a tampered upload token", Some(bearer(&tampered_upload))),
    ];
    for (method, path, scope, takes_upload) in &routes {
        for (case, auth) in &refusals {
            let reply = with_auth(&app, method, path, auth.as_deref()).await;
            assert_eq!(reply.status, 401, "{case}: {method} {path}: {}", reply.body);
            reply.assert_problem(401, "unauthorized");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
        let other = keys.iter().find(|(s, _)| *s != scope).unwrap().1;
        let reply = with_auth(&app, method, path, Some(&bearer(other))).await;
        let problem = reply.assert_problem(403, "insufficient_scope");
        assert_eq!(problem["required_scope"], scope.as_str(), "{method} {path}");
        if !takes_upload {
            let reply = with_auth(&app, method, path, Some(&bearer(&upload))).await;
            reply.assert_problem(403, "forbidden");
        }
    }
    assert_eq!(
        footprint(&app).await,
        before,
        "a refused request changed something"
    );

    // Allowed: the route's own scope, `*`, and the root token get past the gate (what the
    // handler then answers is its own business).
    let (star, _) = make_key(&app, &["*"]).await;
    let root = ADMIN_TOKEN.to_owned();
    for (method, path, scope, takes_upload) in &routes {
        let mut callers = vec![("its scope", &keys[scope]), ("*", &star), ("root", &root)];
        if *takes_upload {
            callers.push(("an upload token", &upload));
        }
        for (case, token) in callers {
            let reply = with_auth(&app, method, path, Some(&bearer(token))).await;
            assert!(
                ![401, 403].contains(&reply.status),
                "{case}: {method} {path} answered {}: {}",
                reply.status,
                reply.body
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn with_the_root_token_disabled_only_keys_open_the_api() {
    let app = TestApp::spawn_with(
        |env| {
            env.insert("ADMIN_TOKEN_ENABLED".into(), "false".into());
            env.insert("RATE_LIMIT_FAILED_AUTH_BURST".into(), "100000".into());
        },
        Default::default(),
    )
    .await;
    // Every route refuses the root token, and the refusals change nothing.
    let before = footprint(&app).await;
    let root = bearer(ADMIN_TOKEN);
    for (method, path, _, _) in routes() {
        let reply = with_auth(&app, &method, &path, Some(&root)).await;
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
        reply.assert_problem(401, "unauthorized");
    }
    assert_eq!(
        footprint(&app).await,
        before,
        "a refused request changed something"
    );
    // A key made out of band (the CLI's way) still works.
    let new = switchyard::auth::keys::KeyInput {
        name: "ci".into(),
        scopes: vec!["queues:read".into()],
        expires_in: None,
    }
    .check(chrono::Utc::now())
    .unwrap();
    let minted =
        switchyard::auth::keys::create(&app.state.db, app.state.keys.hasher(), &new, "admin")
            .await
            .unwrap();
    let reply = with_auth(&app, "GET", "/api/v1/queues", Some(&bearer(&minted.key))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.stop().await;
}

#[tokio::test]
async fn a_key_is_made_listed_used_and_revoked_and_each_step_is_audited() {
    let app = TestApp::spawn().await;
    let (key, made) = make_key(&app, &["jobs:read", "metrics:read"]).await;
    let prefix = made["prefix"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("sy_{prefix}_")), "{key}");
    assert_eq!(made["scopes"], json!(["jobs:read", "metrics:read"]));
    assert_eq!(made["created_by"], "admin");
    assert!(made["expires_at"].is_null() && made["revoked_at"].is_null());

    let listed = app.admin_get("/api/v1/keys").await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.contains(&key[prefix.len() + 4..]),
        "the secret is never listed"
    );
    assert!(!listed.body.contains("hash"), "{}", listed.body);
    let entry = listed.json()["keys"][0].clone();
    assert_eq!(entry["prefix"], prefix.as_str());
    assert!(entry.get("key").is_none());

    let used = with_auth(&app, "GET", "/api/metrics", Some(&bearer(&key))).await;
    assert_eq!(used.status, 200, "{}", used.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stamped: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE prefix = $1")
                .bind(&prefix)
                .fetch_one(&app.state.db)
                .await
                .unwrap();
        if stamped.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at was never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let revoked = app
        .admin("DELETE", &format!("/api/v1/keys/sy_{prefix}"), None)
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(revoked.json()["revoked_at"].is_string());
    // Within a second on every replica: this one cached the row a moment ago.
    let deadline = Instant::now() + Duration::from_millis(2500);
    loop {
        let reply = with_auth(&app, "GET", "/api/metrics", Some(&bearer(&key))).await;
        if reply.status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app
        .admin(
            "DELETE",
            &format!("/api/v1/keys/{}", made["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        again.json()["revoked_at"],
        revoked.json()["revoked_at"],
        "revoking twice changes nothing"
    );
    app.admin("DELETE", "/api/v1/keys/nosuchkey0", None)
        .await
        .assert_problem(404, "not_found");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let audit = app.admin_get("/api/v1/audit?action=keys.").await.json();
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        if actions == ["keys.revoked", "keys.created"] {
            let created = &audit["entries"][1];
            assert_eq!(created["actor"], "admin");
            assert_eq!(created["resource_id"], made["id"]);
            assert!(
                !created.to_string().contains(&key),
                "the key never reaches the audit log"
            );
            break;
        }
        assert!(Instant::now() < deadline, "audit rows: {actions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_key_makes_keys_only_within_its_own_scopes_and_is_named_as_their_maker() {
    let app = TestApp::spawn().await;
    let (maker, made) = make_key(&app, &["keys:write", "jobs:read"]).await;
    let auth = bearer(&maker);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let narrower = call(
        "POST",
        &app.url("/api/v1/keys"),
        &headers,
        Some(br#"{"name": "reader", "scopes": ["jobs:read"]}"#.to_vec()),
    )
    .await;
    assert_eq!(narrower.status, 201, "{}", narrower.body);
    assert_eq!(
        narrower.json()["created_by"],
        format!("key:{}", made["prefix"].as_str().unwrap())
    );
    for scopes in [
        r#"["jobs:write"]"#,
        r#"["*"]"#,
        r#"["jobs:read", "keys:read"]"#,
    ] {
        let wider = call(
            "POST",
            &app.url("/api/v1/keys"),
            &headers,
            Some(format!(r#"{{"name": "wider", "scopes": {scopes}}}"#).into_bytes()),
        )
        .await;
        let problem = wider.assert_problem(422, "validation_failed");
        assert_eq!(problem["field"], "scopes", "{scopes}");
    }
    // It cannot list keys either: that is keys:read.
    let listed = call("GET", &app.url("/api/v1/keys"), &headers[..1], None).await;
    assert_eq!(
        listed.assert_problem(403, "insufficient_scope")["required_scope"],
        "keys:read"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_key_requests_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"name": "x", "scopes": ["jobs:read"], "extra": 1}),
            None,
        ),
        (json!({"name": "", "scopes": ["jobs:read"]}), Some("name")),
        (
            json!({"name": "n".repeat(101), "scopes": ["jobs:read"]}),
            Some("name"),
        ),
        (
            json!({"name": "tab\there", "scopes": ["jobs:read"]}),
            Some("name"),
        ),
        (json!({"name": "x", "scopes": []}), Some("scopes")),
        (
            json!({"name": "x", "scopes": ["jobs:delete"]}),
            Some("scopes"),
        ),
        (
            json!({"name": "x", "scopes": ["jobs:read"], "expires_in": "forever"}),
            Some("expires_in"),
        ),
        (
            json!({"name": "x", "scopes": ["jobs:read"], "expires_in": "10s"}),
            Some("expires_in"),
        ),
        (
            json!({"name": "x", "scopes": ["jobs:read"], "expires_in": "4000d"}),
            Some("expires_in"),
        ),
        (json!({"name": "x"}), Some("scopes")),
    ];
    for (body, field) in cases {
        let reply = app.admin("POST", "/api/v1/keys", Some(body.clone())).await;
        let problem = reply.assert_problem(422, "validation_failed");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body}: {}", reply.body);
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing is stored");
    let (_, made) = make_key(&app, &["jobs:read"]).await;
    let _ = made;
    let expiring = app
        .admin(
            "POST",
            "/api/v1/keys",
            Some(json!({"name": "ci", "scopes": ["metrics:read"], "expires_in": "90d"})),
        )
        .await;
    assert_eq!(expiring.status, 201, "{}", expiring.body);
    let expires: chrono::DateTime<chrono::Utc> = expiring.json()["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((89.9..=90.1).contains(&days), "{days}");
    app.stop().await;
}

#[tokio::test]
async fn a_download_needs_files_read_from_a_key() {
    let app = TestApp::spawn().await;
    let (reader, _) = make_key(&app, &["files:read"]).await;
    let (other, _) = make_key(&app, &["jobs:read"]).await;
    let upload = call(
        "POST",
        &app.url("/api/v1/files?bucket=default&name=a.txt"),
        &[
            ("authorization", &bearer(ADMIN_TOKEN)),
            ("content-type", "text/plain"),
        ],
        Some(b"hello".to_vec()),
    )
    .await;
    assert_eq!(upload.status, 201, "{}", upload.body);
    let id = upload.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/files/{id}/content");
    let read = with_auth(&app, "GET", &path, Some(&bearer(&reader))).await;
    assert_eq!((read.status, read.body.as_str()), (200, "hello"));
    let refused = with_auth(&app, "GET", &path, Some(&bearer(&other))).await;
    assert_eq!(
        refused.assert_problem(403, "insufficient_scope")["required_scope"],
        "files:read"
    );
    with_auth(&app, "GET", &path, None)
        .await
        .assert_problem(401, "unauthorized");
    app.stop().await;
}
