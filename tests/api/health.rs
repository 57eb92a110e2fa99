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
