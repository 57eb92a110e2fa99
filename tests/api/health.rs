use crate::common::{TestApp, call};

#[tokio::test]
async fn health_is_200_and_reports_each_dependency_when_all_are_up() {
    let app = TestApp::spawn().await;

    let reply = app.get("/api/health").await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
    assert_eq!(body["checks"]["redis"]["status"], "up");
    assert!(body["checks"]["postgres"]["latency_ms"].is_number());
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["mode"], "serve");
    assert!(body["uptime_s"].is_u64());
    app.stop().await;
}

#[tokio::test]
async fn liveness_answers_200_without_a_token() {
    let app = TestApp::spawn().await;

    let reply = app.get("/api/health/live").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "alive");
    app.stop().await;
}

#[tokio::test]
async fn health_accepts_the_host_header_railway_sends() {
    let app = TestApp::spawn().await;

    let reply = call(
        "GET",
        &app.url("/api/health"),
        &[("host", "healthcheck.railway.app")],
        None,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = TestApp::spawn().await;

    let generated = app.get("/api/health/live").await;
    let kept = call(
        "GET",
        &app.url("/api/health/live"),
        &[("x-request-id", "trace-from-laravel-42")],
        None,
    )
    .await;
    let replaced = call(
        "GET",
        &app.url("/api/health/live"),
        &[("x-request-id", "has spaces and is not kept")],
        None,
    )
    .await;

    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|v| v.len() >= 32)
    );
    assert_eq!(kept.header("x-request-id"), Some("trace-from-laravel-42"));
    assert_ne!(
        replaced.header("x-request-id"),
        Some("has spaces and is not kept")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_stalls_while_sending_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(
        |env| {
            env.insert("HTTP_HEADER_READ_TIMEOUT_SECONDS".into(), "1".into());
        },
        utoipa_axum::router::OpenApiRouter::new(),
    )
    .await;
    let mut stalled = tokio::net::TcpStream::connect(app.address).await.unwrap();

    // Headers begun but never finished.
    stalled
        .write_all(b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stalled.read_to_end(&mut rest),
    )
    .await;
    let healthy = app.get("/api/health/live").await;

    assert!(
        closed.is_ok(),
        "the stalled connection was still open after 10 s"
    );
    assert!(
        rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(healthy.status, 200, "other clients are served meanwhile");
    app.stop().await;
}

#[tokio::test]
async fn an_unmigrated_schema_is_503_in_health_and_schema_not_migrated_on_routes() {
    let app = TestApp::spawn_on(
        crate::common::TestDb::empty().await,
        |_| {},
        utoipa_axum::router::OpenApiRouter::new(),
    )
    .await;
    let migrations = switchyard::db::migrator().iter().count();

    let health = app.get("/api/health").await;
    let refused = [
        app.admin_get("/api/v1/files").await,
        app.admin_get("/api/v1/queues/default/dead").await,
        app.admin_get("/api/metrics").await,
    ];
    switchyard::db::migrate(&app.state.db).await.unwrap();
    let healthy = app.get("/api/health").await;
    let files = app.admin_get("/api/v1/files").await;

    assert_eq!(health.status, 503, "{}", health.body);
    let report = health.json();
    assert_eq!(report["status"], "degraded");
    assert_eq!(report["schema"]["status"], "behind");
    assert_eq!(report["schema"]["pending"], migrations);
    assert_eq!(report["checks"]["postgres"]["status"], "up");
    for reply in &refused {
        let problem = reply.assert_problem(503, "schema_not_migrated");
        assert!(
            problem["detail"].as_str().unwrap().contains("app migrate"),
            "{problem}"
        );
    }
    assert_eq!(healthy.status, 200, "{}", healthy.body);
    assert_eq!(healthy.json()["schema"]["status"], "current");
    assert_eq!(healthy.json()["schema"]["pending"], 0);
    assert_eq!(files.status, 200, "{}", files.body);
    app.stop().await;
}
