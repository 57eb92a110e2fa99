//! A dependency that goes away while `serve` runs: health turns 503 within about a second
//! and returns to 200 when it is back, with no restart.

use std::time::{Duration, Instant};

use utoipa_axum::router::OpenApiRouter;

use crate::common::proxy::{Mode, Proxy, upstream_of};
use crate::common::{TestApp, TestRole, server_database_url, server_redis_url};

/// Polls `/api/health` until it answers `status`, returning how long that took.
async fn until_health(
    app: &TestApp,
    status: u16,
    limit: Duration,
) -> (Duration, serde_json::Value) {
    let start = Instant::now();
    loop {
        let reply = app.get("/api/health").await;
        if reply.status == status {
            return (start.elapsed(), reply.json());
        }
        assert!(
            start.elapsed() < limit,
            "health stayed {} ({})",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn app_behind(proxy_for: &str) -> (TestApp, Proxy) {
    let base = if proxy_for == "redis" {
        server_redis_url()
    } else {
        server_database_url()
    };
    let proxy = Proxy::start(upstream_of(&base)).await;
    let app = TestApp::spawn_with(
        |env| {
            if proxy_for == "redis" {
                env.insert("REDIS_URL".into(), proxy.url_for(&base));
            } else {
                let db = url::Url::parse(&env["DATABASE_URL"]).unwrap();
                let mut through = url::Url::parse(&proxy.url_for(&base)).unwrap();
                through.set_path(db.path());
                env.insert("DATABASE_URL".into(), through.to_string());
            }
        },
        OpenApiRouter::new(),
    )
    .await;
    (app, proxy)
}

/// Cuts `dependency`, expects 503 naming it within about a second while the other stays
/// up, restores it, and expects 200 again, all on the same running server.
async fn outage_and_recovery(dependency: &str, other: &str) {
    let (app, proxy) = app_behind(dependency).await;
    until_health(&app, 200, Duration::from_secs(10)).await;

    proxy.set(Mode::Cut);
    let (took, body) = until_health(&app, 503, Duration::from_secs(10)).await;
    proxy.set(Mode::Pass);
    let (_, back) = until_health(&app, 200, Duration::from_secs(15)).await;

    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"][dependency]["status"], "down");
    assert_eq!(body["checks"][other]["status"], "up");
    assert_eq!(back["status"], "healthy");
    app.stop().await;
}

#[tokio::test]
async fn health_turns_503_when_postgres_goes_away_and_200_when_it_returns() {
    outage_and_recovery("postgres", "redis").await;
}

#[tokio::test]
async fn health_turns_503_when_redis_goes_away_and_200_when_it_returns() {
    outage_and_recovery("redis", "postgres").await;
}

#[tokio::test]
async fn a_hanging_dependency_makes_health_answer_503_within_its_bound_not_hang() {
    let (app, proxy) = app_behind("redis").await;
    until_health(&app, 200, Duration::from_secs(10)).await;

    proxy.set(Mode::Stall);
    let start = Instant::now();
    let reply = app.get("/api/health").await;
    let took = start.elapsed();
    proxy.set(Mode::Pass);

    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["checks"]["redis"]["error"], "timeout");
    // The bound is 1 s; allow a loaded machine generous slack without accepting a hang.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_enqueue_while_redis_is_down_is_a_retryable_503_and_works_once_it_is_back() {
    let (app, proxy) = app_behind("redis").await;
    let job = serde_json::json!({"kind": "noop"});

    proxy.set(Mode::Cut);
    let down = app.admin("POST", "/api/v1/jobs", Some(job.clone())).await;
    proxy.set(Mode::Pass);
    let start = Instant::now();
    let back = loop {
        let reply = app.admin("POST", "/api/v1/jobs", Some(job.clone())).await;
        if reply.status == 202 || start.elapsed() > Duration::from_secs(10) {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let problem = down.assert_problem(503, "dependency_unavailable");
    assert!(problem["detail"].as_str().unwrap().contains("Redis"));
    assert_eq!(down.header("retry-after"), Some("1"));
    assert_eq!(back.status, 202, "{}", back.body);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_postgres_login_is_a_retryable_503_like_an_outage() {
    // A login role of the test's own, whose password is rotated under the running server.
    let role = TestRole::create("first-password").await;
    let admin = sqlx::PgPool::connect(&server_database_url()).await.unwrap();
    let base = server_database_url();
    let proxy = Proxy::start(upstream_of(&base)).await;
    let app = TestApp::spawn_with(
        |env| {
            let db = url::Url::parse(&env["DATABASE_URL"]).unwrap();
            let mut through = url::Url::parse(&proxy.url_for(&base)).unwrap();
            through.set_path(db.path());
            through.set_username(&role.0).unwrap();
            through.set_password(Some("first-password")).unwrap();
            env.insert("DATABASE_URL".into(), through.to_string());
        },
        OpenApiRouter::new(),
    )
    .await;
    let owner = app.db.pool().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}",
        role.0
    )))
    .execute(&owner)
    .await
    .unwrap();
    let before = app.admin_get("/api/v1/files").await;

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE {} PASSWORD 'rotated-password'",
        role.0
    )))
    .execute(&admin)
    .await
    .unwrap();
    // Every pooled connection goes, so the next request must log in again.
    proxy.set(Mode::Cut);
    proxy.set(Mode::Pass);
    let files = app.admin_get("/api/v1/files").await;
    let dead = app.admin_get("/api/v1/queues/default/dead").await;
    let health = app.get("/api/health").await;

    assert_eq!(before.status, 200, "{}", before.body);
    for refused in [&files, &dead] {
        let problem = refused.assert_problem(503, "dependency_unavailable");
        assert!(problem["detail"].as_str().unwrap().contains("PostgreSQL"));
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert!(!refused.body.contains("password"), "{}", refused.body);
    }
    assert_eq!(health.status, 503, "{}", health.body);
    owner.close().await;
    admin.close().await;
    app.stop().await;
}
