//! What the console reads and does in bulk: a queue's jobs in each state with a cursor,
//! the last hour's throughput minute by minute, deleting a queue's dead jobs at once, and
//! every realtime hub's figures. Refusals are problem+json naming the field.

use std::time::Duration;

use serde_json::json;
use switchyard::queue::{Done, now_ms};
use switchyard::realtime::stats::{self, ChannelCount, HubReport};

use crate::common::{TestApp, queue};

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Jobs that keep the default retention, to acknowledge.
fn done(ids: &[String]) -> Vec<Done> {
    ids.iter()
        .map(|id| Done {
            id: id.clone(),
            retention: None,
        })
        .collect()
}

async fn enqueue(app: &TestApp, body: serde_json::Value) -> String {
    let reply = app.admin("POST", "/api/v1/jobs", Some(body)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_queues_jobs_are_listed_by_state_in_the_order_they_leave_it() {
    let app = TestApp::spawn().await;
    let mut ready = Vec::new();
    for n in 0..5 {
        ready.push(enqueue(&app, json!({"kind": "noop", "payload": {"n": n}})).await);
    }
    let mut delayed = Vec::new();
    for seconds in [600, 300] {
        delayed.push(enqueue(&app, json!({"kind": "noop", "delay_seconds": seconds})).await);
    }
    // A worker takes the three oldest: one succeeds, one fails into a retry, one runs on.
    let queues = &app.state.queues;
    let now = now_ms();
    let leased = queues
        .fetch("default", "w1", 3, Duration::from_secs(60), now)
        .await
        .unwrap();
    assert_eq!(leased.jobs.len(), 3);
    queues
        .ack("default", "w1", &done(&ready[..1]), now)
        .await
        .unwrap();
    queues
        .fail("default", "w1", &ready[1], "boom", Some(now + 600_000), now)
        .await
        .unwrap();

    let first = app
        .admin_get("/api/v1/queues/default/jobs?state=ready&limit=1")
        .await
        .json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .admin_get(&format!(
            "/api/v1/queues/default/jobs?state=ready&limit=1&cursor={cursor}"
        ))
        .await
        .json();
    let scheduled = app
        .admin_get("/api/v1/queues/default/jobs?state=scheduled")
        .await
        .json();
    let running = app
        .admin_get("/api/v1/queues/default/jobs?state=running")
        .await
        .json();
    let retrying = app
        .admin_get("/api/v1/queues/default/jobs?state=retrying")
        .await
        .json();

    assert_eq!(first["total"], 2);
    assert_eq!(ids(&first), [ready[3].clone()]);
    assert_eq!(ids(&second), [ready[4].clone()]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(second["jobs"][0]["payload"], json!({"n": 4}));
    assert_eq!(
        ids(&scheduled),
        [delayed[1].clone(), delayed[0].clone()],
        "soonest first"
    );
    assert_eq!(ids(&running), [ready[2].clone()]);
    assert_eq!(running["jobs"][0]["state"], "running");
    assert_eq!(ids(&retrying), [ready[1].clone()]);
    assert_eq!(retrying["jobs"][0]["errors"][0]["error"], "boom");
    app.stop().await;
}

#[tokio::test]
async fn bad_job_listings_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/api/v1/queues/default/jobs?state=dead", "state"),
        ("/api/v1/queues/default/jobs?state=", "state"),
        ("/api/v1/queues/default/jobs?state=ready&limit=0", "limit"),
        (
            "/api/v1/queues/default/jobs?state=ready&cursor=zzz",
            "cursor",
        ),
        ("/api/v1/queues/throughput?minutes=0", "minutes"),
        ("/api/v1/queues/throughput?minutes=61", "minutes"),
    ];
    for (path, field) in cases {
        let problem = app
            .admin_get(path)
            .await
            .assert_problem(422, "validation_failed");
        assert_eq!(problem["field"], field, "{path}");
    }
    app.admin_get("/api/v1/queues/nope/jobs?state=ready")
        .await
        .assert_problem(404, "not_found");
    app.admin_get("/api/v1/queues/default/jobs")
        .await
        .assert_problem(400, "bad_request");
    app.stop().await;
}

#[tokio::test]
async fn throughput_counts_each_minute_of_the_last_hour_per_queue_and_in_all() {
    let app = TestApp::spawn().await;
    let queues = &app.state.queues;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(enqueue(&app, json!({"kind": "noop"})).await);
    }
    made.push(enqueue(&app, json!({"kind": "noop", "queue": "mails"})).await);
    let now = now_ms();
    for queue in ["default", "mails"] {
        queues
            .fetch(queue, "w1", 3, Duration::from_secs(60), now)
            .await
            .unwrap();
    }
    // Finished five minutes ago (the counters take the time they are given) and now.
    let earlier = now - 5 * 60_000;
    queues
        .ack("default", "w1", &done(&made[..2]), earlier)
        .await
        .unwrap();
    queues
        .fail("default", "w1", &made[2], "boom", None, earlier)
        .await
        .unwrap();
    queues
        .ack("mails", "w1", &done(&made[3..]), now)
        .await
        .unwrap();

    let view = app
        .admin_get("/api/v1/queues/throughput?minutes=10")
        .await
        .json();
    let whole_hour = app.admin_get("/api/v1/queues/throughput").await.json();

    // The point a time falls in, counted back from the window `until` ends in.
    let until = chrono::DateTime::parse_from_rfc3339(view["until"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let point = |at: i64| 9 - ((until / 10_000 - at / 10_000) / 6) as usize;
    let series = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    let mut expected = vec![0; 10];
    expected[point(earlier)] = 2;
    let default = queue(&view, "default");
    assert_eq!(series(&default["succeeded"]), expected);
    expected[point(earlier)] = 1;
    assert_eq!(series(&default["failed"]), expected);
    assert_eq!(series(&queue(&view, "mails")["succeeded"])[9], 1);
    let total = series(&view["succeeded"]);
    assert_eq!(total.iter().sum::<u64>(), 3);
    assert_eq!(total[9], 1);
    assert_eq!(view["interval_seconds"], 60);
    assert_eq!(whole_hour["succeeded"].as_array().unwrap().len(), 60);
    app.stop().await;
}

#[tokio::test]
async fn a_queues_dead_jobs_are_deleted_at_once_up_to_the_time_the_listing_was_read() {
    let app = TestApp::spawn().await;
    let pool = app.db.pool().await;
    for (queue, minutes) in [
        ("default", 10),
        ("default", 9),
        ("default", 0),
        ("mails", 10),
    ] {
        sqlx::query(
            "INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts, timeout_ms, last_error, created_at, died_at)
             VALUES ($1, $2, 'noop', '{}', 5, 5, 1000, 'gave up', now(), now() - make_interval(mins => $3))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(queue)
        .bind(minutes)
        .execute(&pool)
        .await
        .unwrap();
    }
    let read_then = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let older = app
        .admin(
            "DELETE",
            &format!("/api/v1/queues/default/dead?died_before={read_then}"),
            None,
        )
        .await;
    let rest = app
        .admin("DELETE", "/api/v1/queues/default/dead", None)
        .await;
    let unknown = app.admin("DELETE", "/api/v1/queues/nope/dead", None).await;
    let garbage = app
        .admin(
            "DELETE",
            "/api/v1/queues/default/dead?died_before=yesterday",
            None,
        )
        .await;
    let counts = app.admin_get("/api/v1/queues").await.json();

    assert_eq!(older.json(), json!({"deleted": 2}));
    assert_eq!(rest.json(), json!({"deleted": 1}));
    unknown.assert_problem(404, "not_found");
    garbage.assert_problem(400, "bad_request");
    assert_eq!(queue(&counts, "default")["dead"], 0);
    assert_eq!(
        queue(&counts, "mails")["dead"],
        1,
        "other queues keep theirs"
    );
    app.stop().await;
}

#[tokio::test]
async fn realtime_figures_add_up_live_hubs_and_drop_the_silent_ones() {
    let app = TestApp::spawn().await;
    let history = &app.state.realtime;
    let hub = |name: &str, connections, at_ms, busiest: &[(&str, usize)]| HubReport {
        hub: name.into(),
        connections,
        channels: busiest.len(),
        subscriber: true,
        busiest: busiest
            .iter()
            .map(|(channel, subscribers)| ChannelCount {
                channel: (*channel).into(),
                subscribers: *subscribers,
            })
            .collect(),
        at_ms,
    };
    let now = now_ms();
    stats::report(
        history,
        &hub("web/1/10", 3, now, &[("files", 2), ("chat", 1)]),
    )
    .await
    .unwrap();
    stats::report(history, &hub("web/2/11", 2, now, &[("chat", 2)]))
        .await
        .unwrap();
    stats::report(history, &hub("web/3/12", 50, now - 60_000, &[("gone", 50)]))
        .await
        .unwrap();

    let figures = app.admin_get("/api/v1/realtime/stats").await.json();
    let again = stats::read(history, now_ms()).await.unwrap();

    assert_eq!(figures["connections"], 5);
    assert_eq!(
        figures["channels"],
        json!([{"channel": "chat", "subscribers": 3}, {"channel": "files", "subscribers": 2}])
    );
    let hubs: Vec<&str> = figures["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hub"].as_str().unwrap())
        .collect();
    assert_eq!(hubs, ["web/1/10", "web/2/11"]);
    assert_eq!(again.hubs.len(), 2, "the silent hub's report is removed");
    stats::withdraw(history, "web/1/10").await.unwrap();
    assert_eq!(stats::read(history, now_ms()).await.unwrap().connections, 2);
    app.stop().await;
}
