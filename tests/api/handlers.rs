//! The built-in handlers against real services: `http` and `mails` call a local HTTP
//! server, `audits` and `deletes` work on the test's Postgres database.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchyard::modes::worker::builtin_registry;

use crate::common::target::{Answer, Target};
use crate::harness::{SIGNING_KEY, WorkerApp};

async fn start(vars: &[(&str, &str)]) -> WorkerApp {
    WorkerApp::start(vars, builtin_registry).await
}

async fn enqueue(w: &WorkerApp, body: Value) -> String {
    w.enqueue(body).await["id"].as_str().unwrap().to_owned()
}

/// Checks a Standard Webhooks signature the way a receiver would, with ring directly.
fn verify(id: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &SIGNING_KEY);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = STANDARD.encode(ring::hmac::sign(&key, &signed).as_ref());
    signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[tokio::test]
async fn an_http_job_is_delivered_signed_and_the_signature_verifies() {
    let target = Target::start(vec![]);
    let w = start(&[("OUTBOUND_ALLOW_HOSTS", "localhost")]).await;
    let url = format!("http://localhost:{}/hooks/order", target.address.port());
    let id = enqueue(&w, json!({"kind": "http", "payload": {"url": url, "headers": {"x-tenant": "acme"}, "body": {"order": 42}}}))
        .await;

    w.wait_for(&id, "succeeded").await;

    let received = target.received();
    assert_eq!(received.len(), 1);
    let call = &received[0];
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("POST", "/hooks/order")
    );
    assert_eq!(call.header("x-tenant"), Some("acme"));
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.header("webhook-id"), Some(id.as_str()));
    let timestamp = call.header("webhook-timestamp").unwrap();
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp is now");
    assert!(verify(
        &id,
        timestamp,
        &call.body,
        call.header("webhook-signature").unwrap()
    ));
    assert_eq!(
        serde_json::from_slice::<Value>(&call.body).unwrap(),
        json!({"order": 42})
    );
    w.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_410_stops_retries() {
    let waits = Target::start(vec![Answer::status(503).with("retry-after", "2")]);
    let limited = Target::start(vec![Answer::status(429).with("retry-after", "2")]);
    let gone = Target::start(vec![Answer::status(410), Answer::status(200)]);
    let w = start(&[("OUTBOUND_ALLOW_PRIVATE", "true")]).await;

    let waited = enqueue(
        &w,
        json!({"kind": "http", "payload": {"url": waits.url("/")}}),
    )
    .await;
    let throttled = enqueue(
        &w,
        json!({"kind": "http", "payload": {"url": limited.url("/")}}),
    )
    .await;
    let stopped = enqueue(
        &w,
        json!({"kind": "http", "payload": {"url": gone.url("/")}, "max_attempts": 5}),
    )
    .await;
    w.wait_for(&waited, "succeeded").await;
    w.wait_for(&throttled, "succeeded").await;
    let dead = w.wait_for(&stopped, "dead").await;

    for target in [&waits, &limited] {
        let calls = target.received();
        assert_eq!(calls.len(), 2);
        assert!(
            calls[1].at - calls[0].at >= Duration::from_secs(2),
            "the retry came {:?} after a Retry-After of 2 s",
            calls[1].at - calls[0].at
        );
    }
    assert_eq!(gone.received().len(), 1, "410 was retried");
    assert_eq!(dead["attempts"], 1);
    assert!(dead["last_error"].as_str().unwrap().contains("410"));
    w.stop().await;
}

#[tokio::test]
async fn a_call_that_times_out_is_retried() {
    let slow = Target::start(vec![Answer::status(200).after(Duration::from_secs(3))]);
    let w = start(&[
        ("OUTBOUND_ALLOW_PRIVATE", "true"),
        ("OUTBOUND_TIMEOUT_SECONDS", "1"),
    ])
    .await;

    let id = enqueue(
        &w,
        json!({"kind": "http", "payload": {"url": slow.url("/")}}),
    )
    .await;
    let done = w.wait_for(&id, "succeeded").await;

    assert_eq!(done["attempts"], 2);
    let error = done["errors"][0]["error"].as_str().unwrap();
    assert!(error.contains("no response within"), "{error}");
    w.stop().await;
}

#[tokio::test]
async fn http_jobs_to_internal_addresses_are_refused_for_every_class() {
    let w = start(&[]).await;
    let table = [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://[::1]:9/", "loopback"),
        ("http://10.1.2.3:9/", "private"),
        ("http://192.168.0.10:9/", "private"),
        ("http://169.254.1.1:9/", "link-local"),
        ("http://[fe80::1]:9/", "link-local"),
        ("http://[fd00::1]:9/", "unique-local"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://localhost:9/", "loopback"),
    ];
    let mut ids = Vec::new();
    for (url, _) in &table {
        ids.push(
            enqueue(
                &w,
                json!({"kind": "http", "payload": {"url": url}, "max_attempts": 3}),
            )
            .await,
        );
    }

    for ((url, class), id) in table.iter().zip(&ids) {
        let dead = w.wait_for(id, "dead").await;
        let error = dead["last_error"].as_str().unwrap();
        assert!(error.contains(class), "{url}: {error}");
        assert_eq!(dead["attempts"], 1, "{url}: a refusal is final");
    }
    w.stop().await;
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused_even_from_an_allowed_host() {
    let inner = Target::start(vec![]);
    let outer = Target::start(vec![
        Answer::status(302).with("location", &inner.url("/secret")),
    ]);
    let w = start(&[("OUTBOUND_ALLOW_HOSTS", "localhost")]).await;
    let url = format!("http://localhost:{}/start", outer.address.port());

    let id = enqueue(
        &w,
        json!({"kind": "http", "payload": {"url": url, "method": "GET"}}),
    )
    .await;
    let dead = w.wait_for(&id, "dead").await;

    assert_eq!(outer.received().len(), 1);
    assert!(inner.received().is_empty(), "the redirect reached loopback");
    assert!(dead["last_error"].as_str().unwrap().contains("loopback"));
    w.stop().await;
}

#[tokio::test]
async fn a_mail_is_sent_through_the_resend_api_with_the_job_as_idempotency_key() {
    let api = Target::start(vec![Answer::status(500)]);
    let base = api.url("/");
    let w = start(&[
        ("OUTBOUND_ALLOW_PRIVATE", "true"),
        ("MAIL_DRIVER", "resend"),
        ("MAIL_BASE_URL", &base),
        ("MAIL_API_KEY", "re_test_key_123"),
        ("MAIL_FROM", "Acme <noreply@acme.dev>"),
    ])
    .await;

    let id = enqueue(&w, json!({"kind": "mails", "payload": {"to": "ada@example.com", "subject": "Welcome", "text": "Hello"}}))
        .await;
    let done = w.wait_for(&id, "succeeded").await;

    let calls = api.received();
    assert_eq!(calls.len(), 2, "the 500 was retried");
    let call = &calls[1];
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("POST", "/emails")
    );
    assert_eq!(call.header("authorization"), Some("Bearer re_test_key_123"));
    assert_eq!(call.header("idempotency-key"), Some(id.as_str()));
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        body,
        json!({"from": "Acme <noreply@acme.dev>", "to": ["ada@example.com"], "subject": "Welcome", "text": "Hello"})
    );
    assert_eq!(done["attempts"], 2);
    w.stop().await;
}

#[tokio::test]
async fn audit_events_are_written_in_batches_once_each() {
    let w = start(&[("WORKER_CONCURRENCY", "32")]).await;
    let jobs: Vec<Value> = (0..40)
        .map(|i| {
            json!({"kind": "audits", "payload": {
            "actor": "user-1", "action": "files.created", "resource_type": "file",
            "resource_id": format!("f{i}"), "metadata": {"size": i}, "ip": "203.0.113.9",
            "user_agent": "curl/8"}})
        })
        .collect();
    let reply = w
        .app
        .admin("POST", "/api/v1/jobs/batch", Some(json!({"jobs": jobs})))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let ids: Vec<String> = reply.json()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();

    for id in &ids {
        w.wait_for(id, "succeeded").await;
    }

    let pool = w.app.db.pool().await;
    let rows: Vec<(uuid::Uuid, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, action, resource_id, metadata->>'size', ip FROM audit_logs ORDER BY resource_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 40);
    assert!(
        rows.iter()
            .all(|r| r.1 == "files.created" && r.4.as_deref() == Some("203.0.113.9"))
    );
    let row_ids: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r.0.to_string()).collect();
    assert_eq!(
        row_ids,
        ids.iter().cloned().collect(),
        "each row is keyed by its job"
    );
    w.stop().await;
}

#[tokio::test]
async fn the_deletes_job_removes_only_rows_past_their_retention() {
    let w = start(&[
        ("AUDIT_RETENTION_DAYS", "14"),
        ("JOBS_DEAD_RETENTION_DAYS", "30"),
    ])
    .await;
    let pool = w.app.db.pool().await;
    for days in [20, 1] {
        sqlx::query("INSERT INTO audit_logs (id, action, created_at) VALUES ($1, 'old.or.new', now() - make_interval(days => $2))")
            .bind(uuid::Uuid::now_v7())
            .bind(days)
            .execute(&pool)
            .await
            .unwrap();
    }
    for days in [40, 10] {
        sqlx::query("INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts, timeout_ms, last_error, created_at, died_at)
                     VALUES ($1, 'default', 'x', '{}', 1, 1, 1000, 'e', now(), now() - make_interval(days => $2))")
            .bind(uuid::Uuid::now_v7())
            .bind(days)
            .execute(&pool)
            .await
            .unwrap();
    }

    for (id, days) in [("old", 10), ("recent", 1)] {
        sqlx::query("INSERT INTO events (id, type, source, time, data, actor, relayed_at)
                     VALUES ($1, 'a.b', 'test', now(), '{}', 'test', now() - make_interval(days => $2))")
            .bind(id)
            .bind(days)
            .execute(&pool)
            .await
            .unwrap();
    }

    // A delivery is swept by its age, with its attempts.
    for (event, days) in [("old", 10), ("recent", 1)] {
        let delivery = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, created_at)
             VALUES ($1, $2, $3, 'a.b', now() - make_interval(days => $4))",
        )
        .bind(delivery)
        .bind(uuid::Uuid::now_v7())
        .bind(event)
        .bind(days)
        .execute(&pool)
        .await
        .unwrap();
        for attempt in 1..=2 {
            sqlx::query(
                "INSERT INTO webhook_attempts (id, delivery_id, attempt, trigger, duration_ms)
                 VALUES ($1, $2, $3, 'scheduled', 1)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(delivery)
            .bind(attempt)
            .execute(&pool)
            .await
            .unwrap();
        }
    }

    let id = enqueue(&w, json!({"kind": "deletes"})).await;
    w.wait_for(&id, "succeeded").await;

    let deliveries: Vec<String> = sqlx::query_scalar("SELECT event_id FROM webhook_deliveries")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        deliveries,
        ["recent"],
        "deliveries go after events.retention_days"
    );
    let attempts: Vec<String> = sqlx::query_scalar(
        "SELECT d.event_id FROM webhook_attempts a
         LEFT JOIN webhook_deliveries d ON d.id = a.delivery_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        attempts,
        ["recent", "recent"],
        "an old delivery's attempts go with it"
    );

    let events: Vec<String> = sqlx::query_scalar("SELECT id FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        events,
        ["recent"],
        "relayed events go after events.retention_days (7)"
    );
    let audits: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((audits, dead), (1, 1), "only the rows past retention went");
    w.stop().await;
}
