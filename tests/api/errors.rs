use std::time::Duration;

use axum::routing::{get, post};
use serde::Deserialize;
use switchyard::http::extract::Json;
use switchyard::http::problem::ApiError;
use switchyard::state::AppState;
use utoipa_axum::router::OpenApiRouter;

use crate::common::{ADMIN_TOKEN, TestApp, call};

#[derive(Deserialize)]
struct Greeting {
    #[allow(dead_code)]
    name: String,
}

/// Routes that exercise the library's extractor and error paths through the real edge.
fn probe_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route(
            "/probe/json",
            post(|Json(_): Json<Greeting>| async { "ok" }),
        )
        .route(
            "/probe/internal",
            get(|| async {
                Err::<(), _>(ApiError::Internal(anyhow::anyhow!(
                    "connection to 10.0.0.7 failed: password=hunter2"
                )))
            }),
        )
        .route(
            "/probe/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom at 10.0.0.7");
                }
                "unreachable"
            }),
        )
        .route(
            "/probe/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
}

async fn app() -> TestApp {
    TestApp::spawn_with(
        |env| {
            env.insert("HTTP_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
            env.insert("HTTP_BODY_LIMIT_BYTES".into(), "2048".into());
        },
        probe_routes(),
    )
    .await
}

fn admin() -> (&'static str, String) {
    ("authorization", format!("Bearer {ADMIN_TOKEN}"))
}

async fn post_json(app: &TestApp, body: &[u8], content_type: Option<&str>) -> crate::common::Reply {
    let (k, v) = admin();
    let mut headers = vec![(k, v.as_str())];
    if let Some(ct) = content_type {
        headers.push(("content-type", ct));
    }
    call(
        "POST",
        &app.url("/probe/json"),
        &headers,
        Some(body.to_vec()),
    )
    .await
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = app().await;

    let reply = app.get("/api/v1/nothing-here").await;

    let body = reply.assert_problem(404, "not_found");
    assert_eq!(body["request_id"].as_str(), reply.header("x-request-id"));
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_that_keeps_the_allow_header() {
    let app = app().await;

    let reply = call("DELETE", &app.url("/api/health"), &[], None).await;

    reply.assert_problem(405, "method_not_allowed");
    assert!(
        reply.header("allow").is_some_and(|a| a.contains("GET")),
        "{:?}",
        reply.headers
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = app().await;

    let reply = post_json(&app, b"{\"name\": ", Some("application/json")).await;

    reply.assert_problem(400, "malformed_json");
    app.stop().await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_422_problem() {
    let app = app().await;

    let reply = post_json(&app, b"{\"nome\": \"x\"}", Some("application/json")).await;

    reply.assert_problem(422, "validation_failed");
    app.stop().await;
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_a_415_problem() {
    let app = app().await;

    let reply = post_json(&app, b"{\"name\": \"x\"}", Some("text/plain")).await;

    reply.assert_problem(415, "unsupported_media_type");
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_problem_by_length_or_by_chunks() {
    let app = app().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(4096));

    let declared = post_json(&app, big.as_bytes(), Some("application/json")).await;
    // A streamed body has no Content-Length; the limit applies as it is read.
    let streamed = {
        let url = app.url("/probe/json");
        let token = format!("Bearer {ADMIN_TOKEN}");
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(url.trim_start_matches("http://").split('/').next().unwrap()).unwrap();
            let mut request = format!(
                "POST /probe/json HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            for chunk in big.as_bytes().chunks(512) {
                request.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
                request.extend(chunk);
                request.extend(b"\r\n");
            }
            request.extend(b"0\r\n\r\n");
            let _ = stream.write_all(&request);
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            response
        })
        .await
        .unwrap()
    };

    declared.assert_problem(413, "payload_too_large");
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(streamed.contains("application/problem+json"), "{streamed}");
    app.stop().await;
}

#[tokio::test]
async fn an_internal_error_is_an_opaque_500_problem() {
    let app = app().await;

    let reply = app.admin_get("/probe/internal").await;

    let body = reply.assert_problem(500, "internal_error");
    assert!(
        !reply.body.contains("hunter2") && !reply.body.contains("10.0.0.7"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_is_an_opaque_500_and_the_server_keeps_serving() {
    let app = app().await;

    let reply = app.admin_get("/probe/panic").await;
    let after = app.get("/api/health/live").await;

    reply.assert_problem(500, "internal_error");
    assert!(!reply.body.contains("boom"), "{}", reply.body);
    assert_eq!(after.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_503_problem() {
    let app = app().await;

    let reply = app.admin_get("/probe/slow").await;

    reply.assert_problem(503, "request_timeout");
    app.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_admin_token_is_a_401_problem() {
    let app = app().await;

    let missing = app.get("/api/metrics").await;
    let wrong = call(
        "GET",
        &app.url("/api/metrics"),
        &[("authorization", "Bearer not-the-token-at-all")],
        None,
    )
    .await;
    let other_scheme = call(
        "GET",
        &app.url("/api/metrics"),
        &[("authorization", &format!("Basic {ADMIN_TOKEN}"))],
        None,
    )
    .await;

    for reply in [&missing, &wrong, &other_scheme] {
        reply.assert_problem(401, "unauthorized");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    app.stop().await;
}

#[tokio::test]
async fn with_no_admin_token_configured_protected_endpoints_refuse_everyone() {
    let app = TestApp::spawn_with(
        |env| {
            env.remove("ADMIN_TOKEN");
        },
        OpenApiRouter::new(),
    )
    .await;

    let reply = call(
        "GET",
        &app.url("/api/metrics"),
        &[("authorization", "Bearer ")],
        None,
    )
    .await;
    let health = app.get("/api/health").await;

    reply.assert_problem(401, "unauthorized");
    assert_eq!(health.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_overlong_target_or_header_section_is_a_414_or_431_problem() {
    let app = app().await;
    let long_query = format!("/api/health?pad={}", "x".repeat(10 * 1024));
    let big_header = "y".repeat(40 * 1024);

    let long = crate::common::call("GET", &app.url(&long_query), &[], None).await;
    let large = crate::common::call(
        "GET",
        &app.url("/api/health"),
        &[("x-padding", big_header.as_str())],
        None,
    )
    .await;
    let fine = app.get("/api/health?pad=short").await;

    long.assert_problem(414, "uri_too_long");
    large.assert_problem(431, "headers_too_large");
    assert_eq!(fine.status, 200, "{}", fine.body);
    app.stop().await;
}
