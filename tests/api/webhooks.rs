//! Webhooks end to end: events go in through the API (or are made by a change), the relay
//! turns them into deliveries, the worker sends them to a local receiver, and an
//! independent Standard Webhooks implementation (PyPI `standardwebhooks`) checks every
//! signature.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::target::{Answer, Received, Target};
use crate::common::verify::verify;
use crate::harness::WorkerApp;

/// How long a test waits for something the relay and the worker do.
const LIMIT: Duration = Duration::from_secs(30);

/// The API, an events relay and a worker on every built-in queue, allowed to call the
/// loopback receiver.
async fn start(vars: &[(&str, &str)]) -> WorkerApp {
    let mut all = vec![("OUTBOUND_ALLOW_PRIVATE", "true")];
    all.extend_from_slice(vars);
    WorkerApp::start(&all, switchyard::modes::worker::builtin_registry).await
}

/// Registers an endpoint; returns its id and secret.
pub async fn endpoint(app: &WorkerApp, url: &str, types: &[&str]) -> (String, String) {
    let reply = app
        .app
        .admin(
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": url, "event_types": types })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Sends one application event; returns its id.
async fn send(app: &WorkerApp, event: Value) -> String {
    let reply = app.app.admin("POST", "/api/v1/events", Some(event)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.json()["ids"][0].as_str().unwrap().to_owned()
}

/// A delivery of `endpoint` with its attempts, as the API shows it.
async fn detail(app: &WorkerApp, endpoint: &str, delivery: &Value) -> Value {
    let path = format!(
        "/api/v1/webhooks/{endpoint}/deliveries/{}",
        delivery["id"].as_str().unwrap()
    );
    app.app.admin_get(&path).await.json()
}

/// Waits until `check` is true, for up to [`LIMIT`].
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `target` to have received `n` requests.
pub async fn received(target: &Target, n: usize) -> Vec<Received> {
    eventually(&format!("{n} deliveries"), async || {
        target.received().len() >= n
    })
    .await;
    target.received()
}

async fn scalar(app: &WorkerApp, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&app.app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_application_event_reaches_every_subscribed_endpoint_signed_and_logged() {
    let app = start(&[]).await;
    let users = Target::start(vec![]);
    let all = Target::start(vec![]);
    let files = Target::start(vec![]);
    let (users_id, users_secret) = endpoint(&app, &users.url("/hooks"), &["user.*"]).await;
    let (_, all_secret) = endpoint(&app, &all.url("/all"), &["*"]).await;
    endpoint(&app, &files.url("/files"), &["files.*"]).await;

    let reply = app
        .app
        .admin_raw(
            "POST",
            "/api/v1/events",
            r#"{"type": "user.signup", "source": "astro", "subject": "u_1",
                "data": {"email": "a@example.com", "big": 12345678901234567890123}}"#,
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.json()["ids"][0].as_str().unwrap().to_owned();
    let to_users = received(&users, 1).await;
    let to_all = received(&all, 1).await;
    assert_eq!(
        verify(&[
            (&users_secret, &to_users[0]),
            (&all_secret, &to_all[0]),
            (&all_secret, &to_users[0])
        ]),
        [true, true, false],
        "each endpoint's own secret verifies its delivery, and no other"
    );
    let request = &to_users[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.header("webhook-id"), Some(id.as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert!(
        body.contains(r#""big": 12345678901234567890123"#),
        "data is delivered as sent: {body}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["type"], "user.signup");
    assert_eq!(body["source"], "astro");
    assert_eq!(body["subject"], "u_1");
    assert_eq!(body["data"]["email"], "a@example.com");

    // The log shows both deliveries succeeded, with the attempt's answer.
    let mut deliveries = Value::Null;
    eventually("the delivery log", async || {
        deliveries = app
            .app
            .admin_get(&format!("/api/v1/events/{id}/deliveries"))
            .await
            .json();
        let list = deliveries["deliveries"].as_array().unwrap();
        list.len() == 2 && list.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let delivery = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["endpoint_id"] == users_id.as_str())
        .unwrap()
        .clone();
    let detail = detail(&app, &users_id, &delivery).await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["attempts"][0]["status"], 200);
    assert_eq!(detail["attempts"][0]["response_body"], "ok");
    assert_eq!(
        detail["attempts"][0]["response_headers"]["content-length"],
        "2"
    );

    // The event is audited once, and the unsubscribed endpoint got nothing.
    eventually("the audit row", async || {
        let audit = app.app.admin_get("/api/v1/audit?action=user.").await.json();
        audit["entries"].as_array().unwrap().len() == 1
    })
    .await;
    assert!(files.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_file_change_is_delivered_as_a_builtin_event_and_a_test_event_reaches_one_endpoint() {
    let app = start(&[]).await;
    let target = Target::start(vec![]);
    let other = Target::start(vec![]);
    let (id, secret) = endpoint(&app, &target.url("/"), &["files.*", "webhook.test"]).await;
    endpoint(&app, &other.url("/"), &["*"]).await;
    let upload = crate::common::call(
        "POST",
        &app.app.url("/api/v1/files?name=a.txt"),
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
    assert_eq!(upload.status, 201, "{}", upload.body);
    let file_id = upload.json()["id"].as_str().unwrap().to_owned();
    let got = received(&target, 1).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "files.created");
    assert_eq!(body["source"], "switchyard");
    assert_eq!(body["subject"], file_id.as_str());
    assert_eq!(body["data"]["name"], "a.txt");
    assert_eq!(verify(&[(&secret, &got[0])]), [true]);

    let test = app
        .app
        .admin("POST", &format!("/api/v1/webhooks/{id}/test"), None)
        .await;
    assert_eq!(test.status, 202, "{}", test.body);
    let got = received(&target, 2).await;
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    // The other endpoint (subscribed to everything) got the file event, never the test.
    let others = received(&other, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(other.received().len(), 1, "{others:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_failed_attempt_retries_on_the_schedule_as_the_clock_steps() {
    let app = start(&[
        ("WEBHOOKS_RETRY_SCHEDULE", "1h,5h"),
        ("WEBHOOKS_RETRY_JITTER", "0.1"),
    ])
    .await;
    let target = Target::start(vec![
        Answer::status(500),
        Answer::status(503),
        Answer::status(500),
    ]);
    let (endpoint_id, _) = endpoint(&app, &target.url("/"), &["order.paid"]).await;
    let event = send(&app, json!({"type": "order.paid"})).await;
    let queues = &app.app.state.queues;
    let pending = async |attempts: i64| -> Value {
        let mut found = Value::Null;
        eventually(&format!("attempt {attempts} to be logged"), async || {
            found = app
                .app
                .admin_get(&format!("/api/v1/events/{event}/deliveries"))
                .await
                .json()["deliveries"][0]
                .clone();
            found["attempts"] == attempts
        })
        .await;
        found
    };
    // Each wait lies within the jitter of its step; stepping the clock past it (leasing
    // the job with a later "now" and handing it straight back) runs the next attempt.
    for (attempt, step) in [(1, 3_600_000i64), (2, 5 * 3_600_000)] {
        let delivery = pending(attempt).await;
        assert_eq!(delivery["status"], "pending", "{delivery}");
        let next =
            chrono::DateTime::parse_from_rfc3339(delivery["next_attempt_at"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
        let wait = next - chrono::Utc::now().timestamp_millis();
        assert!(
            wait > step * 85 / 100 && wait <= step * 110 / 100,
            "attempt {attempt}: the next comes in {wait} ms, the step is {step} ms"
        );
        let now = switchyard::queue::now_ms();
        let leased = queues
            .fetch(
                "webhooks",
                "clock",
                10,
                Duration::from_secs(30),
                now + step * 11 / 10,
            )
            .await
            .unwrap();
        assert_eq!(
            leased.jobs.len(),
            1,
            "the retry is due once the clock has stepped"
        );
        queues
            .release("webhooks", "clock", &[leased.jobs[0].id.clone()])
            .await
            .unwrap();
    }
    // The third attempt was the last: the delivery failed, and the log has all three.
    let delivery = pending(3).await;
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["last_status"], 500);
    let detail = detail(&app, &endpoint_id, &delivery).await;
    let statuses: Vec<i64> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 503, 500]);
    app.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_emits_webhooks_disabled() {
    let app = start(&[]).await;
    let gone = Target::start(vec![Answer::status(410)]);
    let watcher = Target::start(vec![]);
    let (gone_id, _) = endpoint(&app, &gone.url("/"), &["order.*"]).await;
    endpoint(&app, &watcher.url("/"), &["webhooks.disabled"]).await;
    send(&app, json!({"type": "order.paid"})).await;
    let notice = received(&watcher, 1).await;
    let body: Value = serde_json::from_slice(&notice[0].body).unwrap();
    assert_eq!(body["type"], "webhooks.disabled");
    assert_eq!(body["data"]["id"], gone_id.as_str());
    assert_eq!(body["data"]["reason"], "gone");
    let endpoint = app
        .app
        .admin_get(&format!("/api/v1/webhooks/{gone_id}"))
        .await
        .json();
    assert_eq!(endpoint["enabled"], false);
    assert_eq!(endpoint["disabled_reason"], "gone");
    // A disabled endpoint is sent nothing more.
    send(&app, json!({"type": "order.shipped"})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(gone.received().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_or_too_often_is_disabled() {
    let app = start(&[
        ("WEBHOOKS_RETRY_SCHEDULE", ""),
        ("WEBHOOKS_DISABLE_AFTER_FAILURES", "2"),
        ("WEBHOOKS_DISABLE_AFTER_DAYS", "5"),
    ])
    .await;
    let failing = Target::start((0..10).map(|_| Answer::status(500)).collect());
    let (often, _) = endpoint(&app, &failing.url("/often"), &["a.*"]).await;
    let (long, _) = endpoint(&app, &failing.url("/long"), &["b.*"]).await;
    // Two deliveries in a row out of attempts disable the first.
    send(&app, json!({"type": "a.one"})).await;
    received(&failing, 1).await;
    send(&app, json!({"type": "a.two"})).await;
    let disabled = async |id: &str| -> Value {
        let mut found = Value::Null;
        eventually("the endpoint to be disabled", async || {
            found = app
                .app
                .admin_get(&format!("/api/v1/webhooks/{id}"))
                .await
                .json();
            found["enabled"] == false
        })
        .await;
        found
    };
    let first = disabled(&often).await;
    assert_eq!(first["disabled_reason"], "failing");
    assert_eq!(first["consecutive_failures"], 2);
    // The second has failed every attempt for six days: its next failure disables it.
    sqlx::query("UPDATE webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = $1::uuid")
        .bind(&long)
        .execute(&app.app.state.db)
        .await
        .unwrap();
    send(&app, json!({"type": "b.one"})).await;
    let second = disabled(&long).await;
    assert_eq!(second["disabled_reason"], "failing");
    assert_eq!(second["consecutive_failures"], 1);
    eventually("both webhooks.disabled events", async || {
        scalar(
            &app,
            "SELECT count(*) FROM events WHERE type = 'webhooks.disabled'",
        )
        .await
            == 2
    })
    .await;
    // Enabling clears the failure record.
    let enabled = app
        .app
        .admin(
            "PATCH",
            &format!("/api/v1/webhooks/{often}"),
            Some(json!({"enabled": true})),
        )
        .await
        .json();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["consecutive_failures"], 0);
    assert_eq!(enabled["disabled_reason"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn replay_and_recover_send_failed_deliveries_again() {
    let app = start(&[("WEBHOOKS_RETRY_SCHEDULE", "")]).await;
    let target = Target::start(vec![
        Answer::status(500),
        Answer::status(500),
        Answer::status(500),
    ]);
    let (id, secret) = endpoint(&app, &target.url("/"), &["job.*"]).await;
    let since = chrono::Utc::now().to_rfc3339();
    for n in 0..3 {
        send(&app, json!({"type": "job.done", "data": {"n": n}})).await;
    }
    let failed_path = format!("/api/v1/webhooks/{id}/deliveries?status=failed");
    eventually("three failed deliveries", async || {
        app.app.admin_get(&failed_path).await.json()["deliveries"]
            .as_array()
            .unwrap()
            .len()
            == 3
    })
    .await;
    let failed = app.app.admin_get(&failed_path).await.json();
    let one = failed["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let replay = app
        .app
        .admin(
            "POST",
            &format!("/api/v1/webhooks/{id}/deliveries/{one}/replay"),
            None,
        )
        .await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    assert_eq!(replay.json()["trigger"], "replay");
    let got = received(&target, 4).await;
    assert_eq!(verify(&[(&secret, &got[3])]), [true]);
    // The replayed delivery keeps its id and event, now succeeded; a second replay of a
    // pending one is refused.
    eventually("the replay to succeed", async || {
        app.app.admin_get(&failed_path).await.json()["deliveries"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    let recover = app
        .app
        .admin(
            "POST",
            &format!("/api/v1/webhooks/{id}/recover?since={}", urlencode(&since)),
            None,
        )
        .await;
    assert_eq!(recover.status, 202, "{}", recover.body);
    assert_eq!(recover.json()["recovered"], 2);
    received(&target, 6).await;
    eventually("every delivery to succeed", async || {
        let all = app
            .app
            .admin_get(&format!(
                "/api/v1/webhooks/{id}/deliveries?status=succeeded"
            ))
            .await
            .json();
        all["deliveries"].as_array().unwrap().len() == 3
    })
    .await;
    let ids: std::collections::HashSet<String> = target
        .received()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "every resend carries its event's id");
    app.stop().await;
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify_during_the_overlap_and_only_the_new_one_after() {
    let app = start(&[]).await;
    let target = Target::start(vec![]);
    let (id, old) = endpoint(&app, &target.url("/"), &["*"]).await;
    let rotated = app
        .app
        .admin(
            "POST",
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    // The worker reads endpoints again after a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&app, json!({"type": "a.b"})).await;
    let during = received(&target, 1).await;
    assert_eq!(
        during[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2,
        "two signatures during the overlap"
    );
    assert_eq!(
        verify(&[(&old, &during[0]), (&new, &during[0])]),
        [true, true]
    );
    // The overlap ends.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_until = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.app.state.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&app, json!({"type": "a.c"})).await;
    let after = received(&target, 2).await;
    assert_eq!(
        verify(&[(&old, &after[1]), (&new, &after[1])]),
        [false, true]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_endpoints_rate_limit_spreads_deliveries_without_using_attempts() {
    let app = start(&[]).await;
    let target = Target::start(vec![]);
    let reply = app
        .app
        .admin(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"url": target.url("/"), "event_types": ["tick"], "rate_limit_per_second": 2})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let batch: Vec<Value> = (0..6)
        .map(|n| json!({"type": "tick", "data": {"n": n}}))
        .collect();
    let sent = app
        .app
        .admin(
            "POST",
            "/api/v1/events/batch",
            Some(json!({ "events": batch })),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let got = received(&target, 6).await;
    // No second gets more than the limit.
    let first = got.iter().map(|r| r.at).min().unwrap();
    let mut per_second = std::collections::BTreeMap::new();
    for request in &got {
        *per_second
            .entry(request.at.duration_since(first).as_millis() / 1000)
            .or_insert(0) += 1;
    }
    assert!(
        got.last().unwrap().at.duration_since(first) >= Duration::from_millis(1000),
        "{per_second:?}"
    );
    eventually("every delivery to be logged", async || {
        scalar(
            &app,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded' AND attempts = 1",
        )
        .await
            == 6
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_to_a_private_address_is_refused_at_send_time_and_never_retried() {
    let app = start(&[("OUTBOUND_ALLOW_PRIVATE", "false")]).await;
    let target = Target::start(vec![]);
    // Registered while its name resolved elsewhere; it now points at a private address.
    let reply = app
        .app
        .admin(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"url": "https://hooks.example.invalid/in", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    for url in [
        target.url("/in"),
        format!("http://localhost:{}/in", target.address.port()),
    ] {
        sqlx::query("UPDATE webhook_endpoints SET url = $2 WHERE id = $1::uuid")
            .bind(&id)
            .bind(&url)
            .execute(&app.app.state.db)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let event = send(&app, json!({"type": "a.b"})).await;
        let mut delivery = Value::Null;
        eventually("the refusal to be logged", async || {
            delivery = app
                .app
                .admin_get(&format!("/api/v1/events/{event}/deliveries"))
                .await
                .json()["deliveries"][0]
                .clone();
            delivery["status"] == "failed"
        })
        .await;
        assert_eq!(delivery["attempts"], 1, "a refusal is final: {delivery}");
        let error = delivery["last_error"].as_str().unwrap();
        assert!(
            error.contains("refused") && error.contains("127.0.0.1"),
            "{url}: {error}"
        );
    }
    assert!(target.received().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_endpoint_removes_its_deliveries_and_attempts_and_leaves_the_others() {
    let app = start(&[]).await;
    let gone = Target::start(vec![]);
    let kept = Target::start(vec![]);
    let (gone_id, _) = endpoint(&app, &gone.url("/gone"), &["*"]).await;
    let (kept_id, _) = endpoint(&app, &kept.url("/kept"), &["*"]).await;
    for n in 0..3 {
        send(
            &app,
            json!({ "type": "order.paid", "source": "shop", "data": { "n": n } }),
        )
        .await;
    }
    received(&gone, 3).await;
    received(&kept, 3).await;
    let attempts_of = |endpoint: &str| {
        format!(
            "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d
             ON d.id = a.delivery_id WHERE d.endpoint_id = '{endpoint}'"
        )
    };
    eventually("every attempt logged", async || {
        scalar(&app, &attempts_of(&gone_id)).await == 3
            && scalar(&app, &attempts_of(&kept_id)).await == 3
    })
    .await;

    let path = format!("/api/v1/webhooks/{gone_id}");
    assert_eq!(app.app.admin("DELETE", &path, None).await.status, 204);
    assert_eq!(app.app.admin_get(&path).await.status, 404);
    let again = app.app.admin("DELETE", &path, None).await;
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(again.json()["code"], "not_found");
    assert_eq!(
        scalar(
            &app,
            &format!("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '{gone_id}'")
        )
        .await,
        0,
        "the endpoint's deliveries went with it"
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM webhook_attempts").await,
        3,
        "its attempts went too, and the other endpoint's stayed"
    );
    assert_eq!(scalar(&app, &attempts_of(&kept_id)).await, 3);

    // The other endpoint goes on receiving; the deleted one gets nothing more.
    send(
        &app,
        json!({ "type": "order.paid", "source": "shop", "data": { "n": 3 } }),
    )
    .await;
    received(&kept, 4).await;
    assert_eq!(gone.received().len(), 3);
    app.stop().await;
}
