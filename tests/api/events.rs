//! Application events and the outbox: what `POST /api/v1/events` accepts and refuses, that
//! a repeat is a no-op, and that the relay moves every committed event exactly once, with
//! several relays at work, and nothing of a change that rolled back.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard::events::Event;
use tokio_util::sync::CancellationToken;

use crate::common::TestApp;
use crate::webhooks::eventually;

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

/// The API (with its relay) allowed to register loopback endpoints, which nothing serves:
/// deliveries stay queued, to be counted.
async fn spawn() -> TestApp {
    TestApp::spawn_with(
        |env| {
            env.insert("OUTBOUND_ALLOW_PRIVATE".into(), "true".into());
        },
        Default::default(),
    )
    .await
}

async fn subscribe(app: &TestApp, types: &[&str]) -> String {
    let reply = app
        .admin(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": types})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// Waits until every relayed event's delivery jobs are in Redis.
async fn every_delivery_enqueued(app: &TestApp) {
    eventually("every delivery's job", async || {
        count(app, "SELECT count(*) FROM events WHERE enqueued_at IS NULL").await == 0
    })
    .await;
}

/// Sends `events` in one batch, which the API accepts.
async fn send_batch(app: &TestApp, events: Vec<Value>) {
    let reply = app
        .admin(
            "POST",
            "/api/v1/events/batch",
            Some(json!({ "events": events })),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[tokio::test]
async fn bad_events_and_endpoints_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "/api/v1/events",
            "an unknown field",
            json!({"type": "a.b", "colour": "red"}),
            422,
            "colour",
        ),
        (
            "/api/v1/events",
            "a missing type",
            json!({"data": {}}),
            422,
            "type",
        ),
        (
            "/api/v1/events",
            "a malformed type",
            json!({"type": "a..b"}),
            422,
            "type",
        ),
        (
            "/api/v1/events",
            "a reserved type",
            json!({"type": "files.created"}),
            422,
            "type",
        ),
        (
            "/api/v1/events",
            "a malformed id",
            json!({"type": "a.b", "id": "no spaces"}),
            422,
            "id",
        ),
        (
            "/api/v1/events",
            "a bad channel",
            json!({"type": "a.b", "channel": "Bad Channel"}),
            422,
            "channel",
        ),
        (
            "/api/v1/events",
            "data over events.max_data_bytes",
            json!({"type": "a.b", "data": {"blob": "x".repeat(70_000)}}),
            413,
            "data",
        ),
        (
            "/api/v1/events/batch",
            "a batch of 1001",
            json!({"events": (0..1001).map(|_| json!({"type": "a.b"})).collect::<Vec<_>>()}),
            422,
            "events",
        ),
        (
            "/api/v1/events/batch",
            "an empty batch",
            json!({"events": []}),
            422,
            "events",
        ),
        (
            "/api/v1/events/batch",
            "a repeated id within a batch",
            json!({"events": [{"type": "a.b", "id": "one"}, {"type": "a.c", "id": "one"}]}),
            422,
            "events[1].id",
        ),
        (
            "/api/v1/events/batch",
            "one bad event in a batch",
            json!({"events": [{"type": "a.b"}, {"type": "a.b"}, {"type": ""}]}),
            422,
            "events[2].type",
        ),
        (
            "/api/v1/webhooks",
            "an unknown endpoint field",
            json!({"url": "https://example.com/h", "event_types": ["*"], "secret": "mine"}),
            422,
            "secret",
        ),
        (
            "/api/v1/webhooks",
            "a bad pattern",
            json!({"url": "https://example.com/h", "event_types": ["files.*", "*.created"]}),
            422,
            "event_types[1]",
        ),
        (
            "/api/v1/webhooks",
            "no patterns",
            json!({"url": "https://example.com/h", "event_types": []}),
            422,
            "event_types",
        ),
        (
            "/api/v1/webhooks",
            "a private address",
            json!({"url": "http://127.0.0.1:8080/h", "event_types": ["*"]}),
            422,
            "url",
        ),
        (
            "/api/v1/webhooks",
            "the cloud metadata address",
            json!({"url": "http://169.254.169.254/latest", "event_types": ["*"]}),
            422,
            "url",
        ),
        (
            "/api/v1/webhooks",
            "a non-HTTP URL",
            json!({"url": "ftp://example.com/h", "event_types": ["*"]}),
            422,
            "url",
        ),
        (
            "/api/v1/webhooks",
            "credentials in the URL",
            json!({"url": "https://user:pw@example.com/h", "event_types": ["*"]}),
            422,
            "url",
        ),
        (
            "/api/v1/webhooks",
            "a reserved header",
            json!({"url": "https://example.com/h", "event_types": ["*"], "headers": {"Webhook-Signature": "x"}}),
            422,
            "headers.Webhook-Signature",
        ),
        (
            "/api/v1/webhooks",
            "a zero rate limit",
            json!({"url": "https://example.com/h", "event_types": ["*"], "rate_limit_per_second": 0}),
            422,
            "rate_limit_per_second",
        ),
    ];
    for (path, what, body, status, field) in cases {
        let reply = app.admin("POST", path, Some(body)).await;
        let code = if status == 413 {
            "payload_too_large"
        } else {
            "validation_failed"
        };
        let problem = reply.assert_problem(status, code);
        assert_eq!(problem["field"], field, "{what}: {problem}");
    }
    // A body over http.body_limit_bytes (a 2 MB event) is refused on its declared length,
    // before a byte of it is read, and still names what is too large. (Only the headers
    // are sent: the server answers and closes without reading the rest.)
    let address = app.address;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        let head = format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            crate::common::ADMIN_TOKEN,
            2 << 20
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let problem: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(problem["code"], "payload_too_large", "{problem}");
    assert_eq!(problem["field"], "data", "{problem}");
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM webhook_endpoints").await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_event_id_or_idempotency_key_is_a_no_op() {
    let app = TestApp::spawn().await;
    let first = app
        .admin(
            "POST",
            "/api/v1/events",
            Some(json!({"type": "order.paid", "id": "ord_1"})),
        )
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.json(), json!({"ids": ["ord_1"], "duplicates": 0}));
    let again = app
        .admin(
            "POST",
            "/api/v1/events",
            Some(json!({"type": "order.paid", "id": "ord_1"})),
        )
        .await
        .json();
    assert_eq!(again, json!({"ids": ["ord_1"], "duplicates": 1}));

    let keyed = async || {
        crate::common::call(
            "POST",
            &app.url("/api/v1/events/batch"),
            &[
                (
                    "authorization",
                    &format!("Bearer {}", crate::common::ADMIN_TOKEN),
                ),
                ("content-type", "application/json"),
                ("idempotency-key", "signup-42"),
            ],
            Some(
                json!({"events": [{"type": "user.signup"}, {"type": "user.welcomed"}]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .json()
    };
    let once = keyed().await;
    let twice = keyed().await;
    assert_eq!(once["ids"], twice["ids"], "the same key makes the same ids");
    assert_eq!(once["duplicates"], 0);
    assert_eq!(twice["duplicates"], 2);
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn with_three_relays_every_event_is_relayed_exactly_once() {
    let app = spawn().await;
    subscribe(&app, &["*"]).await;
    subscribe(&app, &["load.even"]).await;
    // Two more relays beside the API's own, on small batches so that they contend.
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let mut relay = app.state.relay();
            let mut settings = (*relay.settings).clone();
            settings.events.relay_batch = 50;
            relay.settings = std::sync::Arc::new(settings);
            tokio::spawn(switchyard::relay::run(relay, stop.clone()))
        })
        .collect();
    for chunk in 0..3 {
        let events: Vec<Value> = (0..500)
            .map(|n| {
                let kind = if n % 2 == 0 { "load.even" } else { "load.odd" };
                json!({"type": kind, "id": format!("e{chunk}_{n}")})
            })
            .collect();
        send_batch(&app, events).await;
    }
    eventually("every event to be relayed", async || {
        count(&app, "SELECT count(*) FROM events WHERE relayed_at IS NULL").await == 0
    })
    .await;
    stop.cancel();
    for relay in relays {
        relay.await.unwrap().unwrap();
    }
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 1500);
    let audits = "SELECT count(*) FROM audit_logs WHERE action LIKE 'load.%'";
    assert_eq!(count(&app, audits).await, 1500);
    let distinct =
        "SELECT count(DISTINCT metadata->>'event_id') FROM audit_logs WHERE action LIKE 'load.%'";
    assert_eq!(count(&app, distinct).await, 1500);
    // 1500 to the catch-all endpoint, 750 to the even one; each pair once, each with one job.
    assert_eq!(
        count(&app, "SELECT count(*) FROM webhook_deliveries").await,
        2250
    );
    every_delivery_enqueued(&app).await;
    let queues = app.admin_get("/api/v1/queues").await.json();
    assert_eq!(
        crate::common::queue(&queues, "webhooks")["ready"],
        2250,
        "{queues}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_relay_matches_exact_types_prefixes_and_everything_and_makes_time_ordered_ids() {
    let app = spawn().await;
    let orders = subscribe(&app, &["orders.*"]).await;
    let signup = subscribe(&app, &["user.signup"]).await;
    let all = subscribe(&app, &["*"]).await;
    let both = subscribe(&app, &["user.signup", "orders.*"]).await;
    let events: Vec<Value> = [
        "orders.placed",
        "orders.items.added",
        "orders",
        "ordersystem.full",
        "user.signup",
        "user.signup.retry",
        "user.signup2",
    ]
    .iter()
    .map(|kind| json!({"type": kind, "id": format!("match-{kind}")}))
    .collect();
    send_batch(&app, events).await;
    every_delivery_enqueued(&app).await;
    let made: Vec<(String, String)> = sqlx::query_as(
        "SELECT endpoint_id::text, event_type FROM webhook_deliveries ORDER BY 1, 2",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    let to = |endpoint: &str| -> Vec<&str> {
        made.iter()
            .filter(|(e, _)| e == endpoint)
            .map(|(_, t)| t.as_str())
            .collect()
    };
    assert_eq!(to(&orders), ["orders.items.added", "orders.placed"]);
    assert_eq!(to(&signup), ["user.signup"]);
    assert_eq!(to(&all).len(), 7);
    assert_eq!(
        to(&both),
        ["orders.items.added", "orders.placed", "user.signup"]
    );
    // Delivery ids are version 7 UUIDs whose time is when the relay made them.
    let ids: Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT id, created_at FROM webhook_deliveries")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    for (id, created) in ids {
        assert_eq!(id.get_version_num(), 7, "{id}");
        let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
        let ms = seconds as i64 * 1000 + i64::from(nanos / 1_000_000);
        assert!(
            (ms - created.timestamp_millis()).abs() < 5_000,
            "{id} made at {created}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_change_that_rolls_back_emits_nothing() {
    let app = spawn().await;
    subscribe(&app, &["*"]).await;
    // The file's row cannot be written: the upload fails after its object was stored, and
    // the transaction that held its files.created event rolls back.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON storage_files
             FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&app.state.db)
    .await
    .unwrap();
    let upload = crate::common::call(
        "POST",
        &app.url("/api/v1/files?name=a.txt"),
        &[
            (
                "authorization",
                &format!("Bearer {}", crate::common::ADMIN_TOKEN),
            ),
            ("content-type", "text/plain"),
        ],
        Some(b"hello".to_vec()),
    )
    .await;
    assert_eq!(upload.status, 500, "{}", upload.body);
    // An event in its own transaction, rolled back, is not there either.
    let mut tx = app.state.db.begin().await.unwrap();
    let event = Event::builtin(
        "files.deleted",
        "file",
        "f1",
        "admin",
        Some("files"),
        &json!({}),
    );
    switchyard::events::record(&mut tx, &[event]).await.unwrap();
    tx.rollback().await.unwrap();
    // A later event is relayed, so the relay has passed over where those would have been.
    let reply = app
        .admin("POST", "/api/v1/events", Some(json!({"type": "after.all"})))
        .await;
    assert_eq!(reply.status, 202);
    eventually("the later event to be relayed", async || {
        count(
            &app,
            "SELECT count(*) FROM events WHERE relayed_at IS NOT NULL",
        )
        .await
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&app, "SELECT count(*) FROM events").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM audit_logs").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM webhook_deliveries").await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn deliveries_a_relay_left_without_a_job_are_swept_into_the_queue_once() {
    let app = spawn().await;
    let endpoint = subscribe(&app, &["*"]).await;
    // Two events relayed by a relay that died before stamping their jobs enqueued: the
    // job of the first delivery was enqueued, the second's never was.
    let mut deliveries = Vec::new();
    for n in 0..2 {
        let event = format!("stranded_{n}");
        sqlx::query(
            "INSERT INTO events (id, type, source, time, data, actor, relayed_at)
             VALUES ($1, 'a.b', 'test', now(), '{}', 'test', now() - interval '1 minute')",
        )
        .bind(&event)
        .execute(&app.state.db)
        .await
        .unwrap();
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, created_at)
             VALUES ($1, $2::uuid, $3, 'a.b', now() - interval '1 minute')",
        )
        .bind(id)
        .bind(&endpoint)
        .bind(&event)
        .execute(&app.state.db)
        .await
        .unwrap();
        deliveries.push(id);
    }
    let mut conn = app.state.db.acquire().await.unwrap();
    let first = switchyard::webhooks::deliveries::jobs_for(&mut conn, &deliveries[..1])
        .await
        .unwrap();
    drop(conn);
    app.state
        .queues
        .enqueue(
            &first[0].to_job(&app.state.settings),
            switchyard::queue::now_ms(),
        )
        .await
        .unwrap();

    let relay = app.state.relay();
    relay.sweep().await.unwrap();
    relay.sweep().await.unwrap();
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE enqueued_at IS NULL"
        )
        .await,
        0
    );
    let queues = app.admin_get("/api/v1/queues").await.json();
    assert_eq!(
        crate::common::queue(&queues, "webhooks")["ready"],
        2,
        "one job each: {queues}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_job_that_dies_emits_jobs_dead_with_its_dead_row_but_a_dead_delivery_does_not() {
    let w = crate::harness::WorkerApp::start(
        &[
            ("OUTBOUND_ALLOW_PRIVATE", "true"),
            ("WEBHOOKS_RETRY_SCHEDULE", ""),
        ],
        switchyard::modes::worker::builtin_registry,
    )
    .await;
    let failing = crate::common::target::Target::start(
        (0..4)
            .map(|_| crate::common::target::Answer::status(500))
            .collect(),
    );
    // A webhook to the failing target, subscribed to jobs.dead itself: its own failed
    // delivery must not feed it another event.
    let reply = w
        .app
        .admin(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"url": failing.url("/hook"), "event_types": ["jobs.dead", "ping"]})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let job = w
        .enqueue(
            json!({"kind": "http", "max_attempts": 1, "payload": {"url": failing.url("/job")}}),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    w.wait_for(&id, "dead").await;
    let app = &w.app;
    eventually("the jobs.dead event and its delivery", async || {
        count(
            app,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'",
        )
        .await
            == 1
    })
    .await;
    let subject: String = sqlx::query_scalar("SELECT subject FROM events WHERE type = 'jobs.dead'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(subject, id);
    // The delivery of jobs.dead failed too (its job died), and emitted nothing more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(app, "SELECT count(*) FROM events WHERE type = 'jobs.dead'").await,
        1
    );
    assert_eq!(count(app, "SELECT count(*) FROM dead_jobs").await, 2);
    w.stop().await;
}
