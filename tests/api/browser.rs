//! What browsers see: CORS preflights and cross-origin answers for the configured
//! origins (and nothing for others), and the security headers on every response.

use crate::common::{ADMIN_TOKEN, TestApp, call};

async fn spawn_with_origins(var: &str, origins: &str) -> TestApp {
    let (var, origins) = (var.to_owned(), origins.to_owned());
    TestApp::spawn_with(
        move |env| {
            env.insert(var, origins);
        },
        Default::default(),
    )
    .await
}

async fn preflight(app: &TestApp, origin: &str) -> crate::common::Reply {
    call(
        "OPTIONS",
        &app.url("/api/v1/jobs"),
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            ),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_answered_without_credentials_and_others_get_nothing()
{
    let app = spawn_with_origins(
        "CORS_ALLOWED_ORIGINS",
        "https://app.example.com,https://*.pages.example.org",
    )
    .await;
    for origin in [
        "https://app.example.com",
        "https://preview-1.pages.example.org",
    ] {
        let reply = preflight(&app, origin).await;
        assert_eq!(reply.status, 204, "{origin}: {}", reply.body);
        assert!(
            reply.status < 300,
            "{origin}: {} {}",
            reply.status,
            reply.body
        );
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
        let methods = reply.header("access-control-allow-methods").unwrap_or("");
        assert!(
            methods.contains("POST") && methods.contains("DELETE"),
            "{methods}"
        );
        let headers = reply
            .header("access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("idempotency-key"),
            "{headers}"
        );
        assert!(
            reply.header("access-control-allow-credentials").is_none(),
            "credentials are off by default"
        );
    }
    for origin in [
        "https://evil.example.com",
        "https://pages.example.org",
        "http://app.example.com",
    ] {
        let reply = preflight(&app, origin).await;
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{origin} was allowed"
        );
    }

    // The real request: the origin is echoed and the headers a client reads are exposed.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = call(
        "GET",
        &app.url("/api/v1/queues"),
        &[
            ("origin", "https://app.example.com"),
            ("authorization", &auth),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        reply.header("vary").is_some_and(|v| v.contains("origin")),
        "the answer depends on the Origin: {:?}",
        reply.header("vary")
    );
    // A server-to-server call (no Origin) gets no CORS headers, and the same Vary.
    let direct = call(
        "GET",
        &app.url("/api/v1/queues"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert!(direct.header("access-control-allow-origin").is_none());
    assert!(direct.header("vary").is_some_and(|v| v.contains("origin")));
    for name in [
        "x-request-id",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "etag",
        "content-range",
    ] {
        assert!(exposed.contains(name), "{name} is not exposed: {exposed}");
    }
    // A refused request still carries CORS headers, so the browser lets the page read why.
    let refused = call(
        "GET",
        &app.url("/api/v1/queues"),
        &[("origin", "https://app.example.com")],
        None,
    )
    .await;
    refused.assert_problem(401, "unauthorized");
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    app.stop().await;
}

#[tokio::test]
async fn cors_origins_is_read_as_fastapi_deployments_name_it_and_none_means_no_cors() {
    let app = spawn_with_origins("CORS_ORIGINS", "https://astro.example.com").await;
    let reply = preflight(&app, "https://astro.example.com").await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://astro.example.com")
    );
    app.stop().await;

    let app = TestApp::spawn().await;
    let reply = preflight(&app, "https://astro.example.com").await;
    assert!(reply.header("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_hsts_only_over_https() {
    let app = TestApp::spawn().await;
    for reply in [
        app.get("/api/health/live").await,
        app.get("/api/v1/queues").await,
        app.get("/no/such/route").await,
        app.admin_get("/api/v1/queues").await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        let csp = reply.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(reply.header("strict-transport-security").is_none());
    }
    let https = call(
        "GET",
        &app.url("/api/health/live"),
        &[("x-forwarded-proto", "https")],
        None,
    )
    .await;
    assert!(
        https
            .header("strict-transport-security")
            .is_some_and(|v| v.starts_with("max-age=31536000")),
        "{:?}",
        https.headers
    );
    app.stop().await;
}
