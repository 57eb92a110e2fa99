//! Rate limits: a burst past the budget gets 429 with `Retry-After` and the `RateLimit`
//! headers, two servers share one budget through Redis, route groups count apart,
//! failed authentications are limited per client address (forwarded addresses believed
//! only from trusted proxies), and a Redis outage fails open or closed as configured.

use std::time::{Duration, Instant};

use utoipa_axum::router::OpenApiRouter;

use crate::common::proxy::{Mode, Proxy, upstream_of};
use crate::common::{ADMIN_TOKEN, Reply, TestApp, call, server_redis_url};

async fn spawn(vars: &[(&str, &str)]) -> TestApp {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TestApp::spawn_with(
        move |env| {
            for (k, v) in vars {
                env.insert(k, v);
            }
        },
        OpenApiRouter::new(),
    )
    .await
}

async fn keys_list(app: &TestApp, headers: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    call("GET", &app.url("/api/v1/keys"), &all, None).await
}

/// Sends requests until one is refused; returns how many went through and the refusal.
async fn until_refused(send: impl AsyncFn() -> Reply, most: usize) -> (usize, Reply) {
    for allowed in 0..most {
        let reply = send().await;
        if reply.status == 429 {
            return (allowed, reply);
        }
        assert!(reply.status < 400, "{}: {}", reply.status, reply.body);
    }
    panic!("no request was refused in {most}");
}

#[tokio::test]
async fn a_burst_past_the_budget_gets_429_with_retry_after_and_ratelimit_headers() {
    let app = spawn(&[("RATE_LIMIT_RATE", "1/s"), ("RATE_LIMIT_BURST", "5")]).await;
    let first = keys_list(&app, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"default\";q=5;w=5")
    );
    let state = first.header("ratelimit").unwrap();
    assert!(state.starts_with("\"default\";r=4;t="), "{state}");

    let (allowed, refused) = until_refused(|| keys_list(&app, &[]), 20).await;
    assert!((3..=5).contains(&allowed), "{allowed} more went through");
    refused.assert_problem(429, "rate_limited");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert!(refused.header("ratelimit").unwrap().contains(";r=0;"));
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(
        keys_list(&app, &[]).await.status,
        200,
        "allowed again after Retry-After"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_servers_share_one_budget_and_a_group_counts_apart() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-limits-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("development.toml"),
        "[rate_limit.groups.listing]\nroutes = [\"GET /api/v1/keys\"]\nrate = \"1/m\"\nburst = 4\n",
    )
    .unwrap();
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let config = dir.display().to_string();
    let vars = [
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("CONFIG_DIR", config.as_str()),
        ("RATE_LIMIT_RATE", "1/m"),
        ("RATE_LIMIT_BURST", "3"),
    ];
    let one = spawn(&vars).await;
    let two = spawn(&vars).await;
    // The group's four, across both servers.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let app = if n % 2 == 0 { &one } else { &two };
        statuses.push(keys_list(app, &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    // Other routes count against the default budget of three, not the group's.
    let queues = |app: &TestApp| {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let url = app.url("/api/v1/queues");
        async move { call("GET", &url, &[("authorization", &auth)], None).await }
    };
    let mut statuses = Vec::new();
    for n in 0..4 {
        let app = if n % 2 == 0 { &one } else { &two };
        statuses.push(queues(app).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    one.stop().await;
    two.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_address_believing_only_trusted_proxies() {
    let bad = |app: &TestApp, forwarded: &'static str| {
        let url = app.url("/api/v1/queues");
        async move {
            call(
                "GET",
                &url,
                &[
                    ("authorization", "Bearer wrong-token"),
                    ("x-forwarded-for", forwarded),
                ],
                None,
            )
            .await
        }
    };
    // Not trusted: the forwarded address is the client's own claim; all share the peer's.
    let app = spawn(&[
        ("RATE_LIMIT_FAILED_AUTH_RATE", "1/m"),
        ("RATE_LIMIT_FAILED_AUTH_BURST", "3"),
    ])
    .await;
    let mut statuses = Vec::new();
    for forwarded in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        statuses.push(bad(&app, forwarded).await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    let refused = bad(&app, "203.0.113.5").await;
    refused.assert_problem(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    // Good credentials from the same address still work: only failures are counted.
    assert_eq!(keys_list(&app, &[]).await.status, 200);
    app.stop().await;

    // The loopback peer is a trusted proxy: each forwarded client has its own budget.
    let app = spawn(&[
        ("RATE_LIMIT_FAILED_AUTH_RATE", "1/m"),
        ("RATE_LIMIT_FAILED_AUTH_BURST", "3"),
        ("RATE_LIMIT_TRUSTED_PROXIES", "127.0.0.1,::1"),
    ])
    .await;
    let mut statuses = Vec::new();
    for forwarded in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        statuses.push(bad(&app, forwarded).await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401]);
    for _ in 0..3 {
        assert_eq!(bad(&app, "203.0.113.9, 127.0.0.1").await.status, 401);
    }
    assert_eq!(
        bad(&app, "198.51.100.7, 203.0.113.9").await.status,
        429,
        "the right-most untrusted entry is the client, whatever it put before it"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_redis_cut_the_limiter_fails_open_or_closed_as_configured() {
    for (mode, expected) in [("fail_open", 200), ("fail_closed", 503)] {
        let base = server_redis_url();
        let proxy = Proxy::start(upstream_of(&base)).await;
        let url = proxy.url_for(&base);
        let app = spawn(&[
            ("REDIS_URL", url.as_str()),
            ("RATE_LIMIT_RATE", "100/s"),
            ("RATE_LIMIT_ON_REDIS_DOWN", mode),
            ("REDIS_TIMEOUT_SECONDS", "1"),
        ])
        .await;
        assert_eq!(keys_list(&app, &[]).await.status, 200);
        proxy.set(Mode::Cut);
        // GET /api/v1/keys reads Postgres alone: only the limiter needs Redis.
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = loop {
            let reply = keys_list(&app, &[]).await;
            if reply.status == expected || Instant::now() > deadline {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(reply.status, expected, "{mode}: {}", reply.body);
        if expected == 503 {
            reply.assert_problem(503, "dependency_unavailable");
        } else {
            assert!(reply.header("ratelimit").is_none(), "nothing was counted");
        }
        proxy.set(Mode::Pass);
        let deadline = Instant::now() + Duration::from_secs(15);
        while keys_list(&app, &[]).await.header("ratelimit").is_none() {
            assert!(
                Instant::now() < deadline,
                "{mode}: the limiter never came back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn downloads_without_credentials_count_per_client_address_and_health_never_counts() {
    let app = TestApp::spawn_with(
        |env| {
            env.insert(
                "CONFIG_DIR".into(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/config/storage").into(),
            );
            env.insert("RATE_LIMIT_RATE".into(), "1/s".into());
            env.insert("RATE_LIMIT_BURST".into(), "3".into());
            env.insert("RATE_LIMIT_TRUSTED_PROXIES".into(), "127.0.0.1/32".into());
        },
        OpenApiRouter::new(),
    )
    .await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let stored = call(
        "POST",
        &app.url("/api/v1/files?bucket=public&name=a.txt"),
        &[("authorization", &auth), ("content-type", "text/plain")],
        Some(b"hello".to_vec()),
    )
    .await;
    assert_eq!(stored.status, 201, "{}", stored.body);
    let id = stored.json()["id"].as_str().unwrap().to_owned();
    let content = app.url(&format!("/api/v1/files/{id}/content"));
    let from = |address: &'static str| {
        let content = content.clone();
        async move || call("GET", &content, &[("x-forwarded-for", address)], None).await
    };

    let first = from("203.0.113.7")().await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.header("ratelimit").is_some(),
        "the download is counted"
    );
    let (allowed, refused) = until_refused(from("203.0.113.7"), 10).await;
    assert!(allowed <= 3, "{allowed} more went through");
    refused.assert_problem(429, "rate_limited");
    // Another address has its own budget; health is never counted.
    assert_eq!(from("203.0.113.8")().await.status, 200);
    for _ in 0..10 {
        let live = call("GET", &app.url("/api/health/live"), &[], None).await;
        assert_eq!(live.status, 200);
        assert!(live.header("ratelimit").is_none());
    }
    app.stop().await;
}
