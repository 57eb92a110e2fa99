//! The platform database registry: validation naming each field, passwords sealed and
//! never returned, an event for every change, and checks that report latency or the class
//! of the failure, under the SSRF rules.

use serde_json::{Value, json};

use crate::common::{TestApp, server_database_url};
use crate::webhooks::eventually;

/// The test server's Postgres as a registration.
fn registration(password: &str, database: &str) -> Value {
    let url = url::Url::parse(&server_database_url()).unwrap();
    json!({
        "name": "the test server",
        "host": url.host_str().unwrap(),
        "port": url.port().unwrap_or(5432),
        "database": database,
        "username": url.username(),
        "password": password,
        "ssl_mode": "disable",
    })
}

fn server_password() -> String {
    url::Url::parse(&server_database_url())
        .unwrap()
        .password()
        .unwrap_or_default()
        .to_owned()
}

async fn register(app: &TestApp, body: Value) -> String {
    let reply = app.admin("POST", "/api/v1/databases", Some(body)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_invalid_field_is_a_422_naming_it_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let valid = json!({"name": "main", "host": "db.example.com", "port": 5432, "database": "app"});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (with("name", json!("")), "name"),
        (with("name", json!("x".repeat(256))), "name"),
        (without("name"), "name"),
        (with("host", json!("")), "host"),
        (with("host", json!("db.example.com/evil")), "host"),
        (without("host"), "host"),
        (with("port", json!(0)), "port"),
        (with("port", json!(65536)), "port"),
        (with("port", json!("5432")), "port"),
        (with("database", json!("")), "database"),
        (without("database"), "database"),
        (with("username", json!("")), "username"),
        (with("password", json!("")), "password"),
        (with("ssl_mode", json!("verify-full-please")), "ssl_mode"),
        (with("colour", json!("red")), "colour"),
    ];
    for (body, field) in cases {
        let problem = app
            .admin("POST", "/api/v1/databases", Some(body.clone()))
            .await
            .assert_problem(422, "validation_failed");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM databases").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 0);
    // The longest name is fine.
    let mut longest = valid.clone();
    longest["name"] = json!("x".repeat(255));
    register(&app, longest).await;
    app.stop().await;
}

#[tokio::test]
async fn a_password_is_sealed_at_rest_and_never_returned() {
    let app = TestApp::spawn().await;
    let secret = "correct horse battery staple";
    let id = register(
        &app,
        json!({"name": "main", "host": "db.example.com", "database": "app", "username": "u", "password": secret}),
    )
    .await;
    for reply in [
        app.admin_get(&format!("/api/v1/databases/{id}")).await,
        app.admin_get("/api/v1/databases").await,
    ] {
        assert!(!reply.body.contains(secret), "{}", reply.body);
        assert!(!reply.body.contains("\"password\""), "{}", reply.body);
    }
    let read = app
        .admin_get(&format!("/api/v1/databases/{id}"))
        .await
        .json();
    assert_eq!(read["has_password"], true);
    assert_eq!(read["port"], 5432);
    let stored: Vec<u8> = sqlx::query_scalar("SELECT password FROM databases WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));
    // Nor is it in any event.
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) FROM events WHERE data::text LIKE '%{secret}%'")
        )
        .await,
        0
    );
    // null removes it.
    let changed = app
        .admin(
            "PATCH",
            &format!("/api/v1/databases/{id}"),
            Some(json!({"password": null})),
        )
        .await
        .json();
    assert_eq!(changed["has_password"], false);
    app.stop().await;
}

#[tokio::test]
async fn every_change_emits_an_event_that_is_audited() {
    let app = TestApp::spawn().await;
    let id = register(
        &app,
        json!({"name": "main", "host": "db.example.com", "database": "app"}),
    )
    .await;
    let renamed = app
        .admin(
            "PATCH",
            &format!("/api/v1/databases/{id}"),
            Some(json!({"name": "primary"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.json()["name"], "primary");
    let deleted = app
        .admin("DELETE", &format!("/api/v1/databases/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    app.admin("DELETE", &format!("/api/v1/databases/{id}"), None)
        .await
        .assert_problem(404, "not_found");
    let path = format!("/api/v1/audit?resource_type=database&resource_id={id}");
    let mut actions = Vec::new();
    eventually("three audit rows", async || {
        let audit = app.admin_get(&path).await.json();
        actions = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        actions.len() == 3
    })
    .await;
    assert_eq!(
        actions,
        [
            "databases.deleted",
            "databases.updated",
            "databases.created"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_check_reports_latency_or_the_class_of_the_failure() {
    let app = TestApp::spawn_with(
        |env| {
            env.insert("OUTBOUND_ALLOW_PRIVATE".into(), "true".into());
        },
        Default::default(),
    )
    .await;
    let check = async |id: &str| -> Value {
        let reply = app
            .admin("POST", &format!("/api/v1/databases/{id}/check"), None)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    };
    let good = register(&app, registration(&server_password(), "postgres")).await;
    let report = check(&good).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["latency_ms"].is_u64(), "{report}");
    assert!(
        report["server_version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric)
    );

    let wrong = register(&app, registration("not-the-password", "postgres")).await;
    let report = check(&wrong).await;
    assert_eq!(report["error_class"], "auth", "{report}");
    assert!(!report.to_string().contains("not-the-password"), "{report}");

    let missing = register(
        &app,
        registration(&server_password(), "no_such_database_here"),
    )
    .await;
    assert_eq!(check(&missing).await["error_class"], "database_missing");

    let closed = register(
        &app,
        json!({"name": "closed", "host": "127.0.0.1", "port": 9, "database": "x", "ssl_mode": "disable"}),
    )
    .await;
    assert_eq!(check(&closed).await["error_class"], "connect");

    let unresolvable = register(
        &app,
        json!({"name": "nowhere", "host": "no-such-host.invalid", "database": "x"}),
    )
    .await;
    assert_eq!(check(&unresolvable).await["error_class"], "dns");
    app.admin("POST", "/api/v1/databases/not-an-id/check", None)
        .await
        .assert_problem(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn a_check_of_a_private_address_is_refused_unless_allowed() {
    let app = TestApp::spawn().await;
    let id = register(&app, registration(&server_password(), "postgres")).await;
    let report = app
        .admin("POST", &format!("/api/v1/databases/{id}/check"), None)
        .await
        .json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["error_class"], "forbidden", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("outbound.allow_hosts")
    );
    app.stop().await;
}
