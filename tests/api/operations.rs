use crate::common::TestApp;

#[tokio::test]
async fn json_metrics_report_system_database_redis_queues_and_instances() {
    let app = TestApp::spawn().await;

    let reply = app.admin_get("/api/metrics").await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["system"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["system"]["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(body["database"]["pool_max"], 10);
    assert_eq!(body["database"]["migrations_pending"], 0);
    assert!(body["database"]["migrations_applied"].as_u64().unwrap() >= 1);
    assert!(body["redis"]["used_memory_bytes"].as_u64().unwrap() > 0);
    assert!(body["queues"].is_object());
    assert!(body["instances"].is_array());
    app.stop().await;
}

#[tokio::test]
async fn prometheus_text_counts_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/api/health/live").await;
    app.get("/no/such/route").await;

    let reply = app.admin_get("/metrics").await;

    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        reply
            .body
            .contains(r#"http_requests_total{method="GET",route="/api/health/live",status="200"}"#),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(r#"route="unmatched",status="404""#),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("http_request_duration_seconds_bucket"));
    app.stop().await;
}

/// The value of one series in Prometheus text, by its name and labels as printed.
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name_and_labels} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn prometheus_gauges_give_jobs_by_queue_and_state_the_oldest_wait_pools_and_the_process() {
    let app = TestApp::spawn().await;
    let queues = &app.state.queues;
    let now = switchyard::queue::now_ms();
    let job = |queue: &str, run_at_ms: Option<i64>| switchyard::queue::NewJob {
        queue: queue.into(),
        kind: "noop".into(),
        payload: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
        run_at_ms,
        max_attempts: 1,
        timeout: std::time::Duration::from_secs(60),
        idempotency_key: None,
        idempotency_window: None,
        retention: None,
    };
    // Two ready on mails, the first enqueued a minute ago, and one due in an hour.
    queues
        .enqueue(&job("mails", None), now - 60_000)
        .await
        .unwrap();
    queues.enqueue(&job("mails", None), now).await.unwrap();
    queues
        .enqueue(&job("mails", Some(now + 3_600_000)), now)
        .await
        .unwrap();
    // One running on audits, and one dead on deletes.
    queues.enqueue(&job("audits", None), now).await.unwrap();
    let leased = queues
        .fetch("audits", "w1", 1, std::time::Duration::from_secs(60), now)
        .await
        .unwrap();
    assert_eq!(leased.jobs.len(), 1);
    sqlx::query(
        "INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts, timeout_ms,
             last_error, created_at)
         VALUES ($1, 'deletes', 'noop', '{}', 1, 1, 1000, 'planned', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&app.state.db)
    .await
    .unwrap();

    let reply = app.admin_get("/metrics").await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let text = &reply.body;
    let jobs = |queue: &str, state: &str| {
        series(
            text,
            &format!(r#"switchyard_queue_jobs{{queue="{queue}",state="{state}"}}"#),
        )
    };
    assert_eq!(jobs("mails", "ready"), 2.0);
    assert_eq!(jobs("mails", "scheduled"), 1.0);
    assert_eq!(jobs("audits", "running"), 1.0);
    assert_eq!(jobs("audits", "ready"), 0.0);
    assert_eq!(jobs("deletes", "dead"), 1.0);
    assert_eq!(jobs("default", "retrying"), 0.0);
    let waited = series(
        text,
        r#"switchyard_queue_oldest_ready_age_seconds{queue="mails"}"#,
    );
    assert!((60.0..600.0).contains(&waited), "{waited}");
    assert_eq!(
        series(
            text,
            r#"switchyard_queue_oldest_ready_age_seconds{queue="default"}"#
        ),
        0.0
    );
    assert_eq!(series(text, "switchyard_db_pool_max_connections"), 10.0);
    assert!(series(text, r#"switchyard_db_pool_connections{state="in_use"}"#) >= 0.0);
    assert_eq!(series(text, "switchyard_redis_pool_waiting"), 0.0);
    assert!(series(text, "process_resident_memory_bytes") > 1e6);
    assert!(series(text, "process_open_fds") > 0.0);
    assert!(series(text, "process_cpu_seconds_total") > 0.0);
    assert!(text.contains("# TYPE switchyard_instances gauge"), "{text}");
    // Each family is declared once, and no label carries a job id.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        assert_eq!(text.matches(&format!("{line}\n")).count(), 1, "{line}");
    }
    let id = leased.jobs[0].id.as_str();
    assert!(!text.contains(id), "a job id reached the metrics");
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_every_route() {
    let app = TestApp::spawn().await;

    // Open to all: it is the same for every deployment, and a client generator or the
    // console's API reference reads it before it has credentials.
    let reply = app.get("/api/openapi.json").await;

    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for path in [
        "/api/health",
        "/api/health/live",
        "/api/metrics",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from the document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        doc["paths"]["/api/v1/jobs"]["post"]["security"],
        serde_json::json!([{ "api_key": ["jobs:write"] }]),
        "each operation names its scope"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_running_server_is_listed_in_the_instance_registry_until_it_stops() {
    let db = crate::common::TestDb::migrated().await;
    let pool = db.pool().await;
    let settings = crate::common::settings(crate::common::environment(
        &db.url,
        &crate::common::server_redis_url(),
    ));
    let identity = switchyard::telemetry::Identity::new("serve", &settings);
    let state = switchyard::state::AppState::connect(settings, identity)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(switchyard::modes::serve::run(
        state.clone(),
        listener,
        shutdown.clone(),
    ));
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM instances WHERE mode = 'serve'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let mut registered = 0;
    for _ in 0..100 {
        registered = count().await;
        if registered == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    shutdown.cancel();
    server.await.unwrap().unwrap();

    assert_eq!(registered, 1);
    assert_eq!(count().await, 0, "the row is removed on a clean stop");
    state.close().await;
}
