//! The worker engine in-process against real Redis and Postgres, with test handlers
//! registered the way a Rust application registers its own. Jobs go in through the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard::jobs::{Job, JobContext, JobError, Registry};
use switchyard::modes::worker::builtin_registry;
use switchyard::state::AppState;

use crate::harness::WorkerApp;

/// What the scripted handler saw: tag, attempt and when it started.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(String, u32, Instant)>>>);

impl Log {
    fn starts(&self, tag: &str) -> Vec<(u32, Instant)> {
        let log = self.0.lock().unwrap();
        log.iter()
            .filter(|(t, _, _)| t == tag)
            .map(|(_, attempt, at)| (*attempt, *at))
            .collect()
    }

    fn tags(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _, _)| t.clone())
            .collect()
    }
}

/// A handler that does what its payload says: fail the first `fail` calls of its tag,
/// sleep, or panic on the first call.
struct Scripted {
    log: Log,
    calls: Arc<Mutex<HashMap<String, u32>>>,
}

#[derive(Deserialize)]
struct Script {
    tag: String,
    #[serde(default)]
    fail: u32,
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    panic: bool,
}

impl Job for Scripted {
    const NAME: &'static str = "scripted";
    const QUEUE: &'static str = "default";
    type Payload = Script;

    async fn run(&self, ctx: &JobContext, script: Script) -> Result<(), JobError> {
        self.log
            .0
            .lock()
            .unwrap()
            .push((script.tag.clone(), ctx.attempt, Instant::now()));
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(script.tag.clone()).or_default();
            *n += 1;
            *n
        };
        tokio::time::sleep(Duration::from_millis(script.sleep_ms)).await;
        if script.panic && call == 1 {
            panic!("planned panic");
        }
        if call <= script.fail {
            return Err(JobError::Retry(anyhow!("planned failure {call}")));
        }
        Ok(())
    }
}

/// The API plus a worker running the built-in handlers and [`Scripted`], whose runs go
/// to `log`.
struct Harness {
    w: WorkerApp,
    log: Log,
}

fn registry(state: &AppState, log: &Log) -> Registry {
    builtin_registry(state).register(Scripted {
        log: log.clone(),
        calls: Arc::default(),
    })
}

impl Harness {
    async fn start(vars: &[(&str, &str)]) -> Self {
        let log = Log::default();
        let w = WorkerApp::start(vars, |state| registry(state, &log)).await;
        Self { w, log }
    }

    async fn enqueue(&self, body: Value) -> Value {
        self.w.enqueue(body).await
    }

    async fn wait_for(&self, id: &str, state: &str) -> Value {
        self.w.wait_for(id, state).await
    }

    async fn stop(self) {
        self.w.stop().await;
    }
}

#[tokio::test]
async fn retries_back_off_and_a_dead_job_can_be_retried_from_the_api() {
    let h = Harness::start(&[]).await;
    let job = h
        .enqueue(
            json!({"kind": "scripted", "payload": {"tag": "flaky", "fail": 3}, "max_attempts": 3}),
        )
        .await;
    let id = job["id"].as_str().unwrap();

    let dead = h.wait_for(id, "dead").await;
    let listed =
        h.w.app
            .admin_get("/api/v1/queues/default/dead")
            .await
            .json();
    let retried =
        h.w.app
            .admin("POST", &format!("/api/v1/jobs/{id}/retry"), None)
            .await;
    let succeeded = h.wait_for(id, "succeeded").await;
    let retry_again =
        h.w.app
            .admin("POST", &format!("/api/v1/jobs/{id}/retry"), None)
            .await;

    let starts = h.log.starts("flaky");
    assert_eq!(starts.len(), 4, "three failed runs and one after the retry");
    // Equal jitter: the wait after attempt n is at least half of 100 ms * 2^(n-1).
    assert!(starts[1].1 - starts[0].1 >= Duration::from_millis(50));
    assert!(starts[2].1 - starts[1].1 >= Duration::from_millis(100));
    assert_eq!(dead["attempts"], 3);
    let errors: Vec<_> = dead["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        errors,
        [
            "planned failure 1",
            "planned failure 2",
            "planned failure 3"
        ]
    );
    assert_eq!(listed["jobs"][0]["id"], id);
    assert_eq!(retried.status, 202, "{}", retried.body);
    assert_eq!(
        succeeded["attempts"], 1,
        "the retry starts with fresh attempts"
    );
    assert_eq!(
        succeeded["errors"].as_array().unwrap().len(),
        3,
        "the history stays"
    );
    retry_again.assert_problem(409, "conflict");
    let counts = h.w.app.admin_get("/api/v1/queues").await.json();
    let default = crate::common::queue(&counts, "default");
    assert_eq!(
        (
            default["failed_last_minute"].as_u64(),
            default["succeeded_last_minute"].as_u64()
        ),
        (Some(3), Some(1)),
        "last-minute throughput: {default}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_dead_job_with_extreme_numbers_lists_reads_and_retries_and_keeps_them_exact() {
    let h = Harness::start(&[]).await;
    // The body as raw text: the numbers must reach the server exactly as written.
    let body = r#"{"kind": "scripted", "max_attempts": 1, "payload": {"tag": "extreme", "fail": 1, "max": 1.7976931348623157e308, "tiny": 5e-324, "big": 18446744073709551615}}"#;
    let reply = h.w.app.admin_raw("POST", "/api/v1/jobs", body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    // A row as jsonb left it before payloads were kept as text: the float came back as a
    // 309-digit integer. It must not break the listing either.
    let legacy = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts, timeout_ms,
             last_error, created_at, died_at)
         VALUES ($1, 'default', 'scripted', ('{\"max\": 1.7976931348623157e308}'::jsonb)::json,
             1, 1, 1000, 'old', now() - interval '1 hour', now() - interval '1 hour')",
    )
    .bind(legacy)
    .execute(&h.w.app.state.db)
    .await
    .unwrap();

    h.wait_for(&id, "dead").await;
    let one = h.w.app.admin_get(&format!("/api/v1/jobs/{id}")).await;
    let listed = h.w.app.admin_get("/api/v1/queues/default/dead").await;
    let old = h.w.app.admin_get(&format!("/api/v1/jobs/{legacy}")).await;
    let retried =
        h.w.app
            .admin("POST", &format!("/api/v1/jobs/{id}/retry"), None)
            .await;
    let succeeded = h.wait_for(&id, "succeeded").await;
    let deleted =
        h.w.app
            .admin(
                "DELETE",
                &format!("/api/v1/queues/default/dead/{legacy}"),
                None,
            )
            .await;

    assert_eq!(one.status, 200, "{}", one.body);
    for text in ["1.7976931348623157e308", "5e-324", "18446744073709551615"] {
        assert!(one.body.contains(text), "{text} in {}", one.body);
        assert!(listed.body.contains(text), "{text} in {}", listed.body);
    }
    assert_eq!(listed.status, 200, "{}", listed.body);
    // Searched as text: the legacy row's integer is valid JSON that serde_json refuses.
    let (new_at, old_at) = (listed.body.find(&id), listed.body.find(&legacy.to_string()));
    assert!(
        new_at.is_some() && old_at.is_some() && new_at < old_at,
        "{}",
        listed.body
    );
    assert_eq!(old.status, 200, "{}", old.body);
    assert_eq!(retried.status, 202, "{}", retried.body);
    assert_eq!(succeeded["payload"]["max"].as_f64(), Some(f64::MAX));
    assert_eq!(succeeded["payload"]["big"].as_u64(), Some(u64::MAX));
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    h.stop().await;
}

#[tokio::test]
async fn a_delayed_job_does_not_start_before_its_time() {
    let h = Harness::start(&[]).await;
    let enqueued_at = Instant::now();
    let job = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "later"}, "delay_seconds": 1}))
        .await;
    assert_eq!(job["state"], "scheduled");

    h.wait_for(job["id"].as_str().unwrap(), "succeeded").await;

    let started = h.log.starts("later")[0].1;
    assert!(started - enqueued_at >= Duration::from_secs(1));
    h.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_runs_the_job_once() {
    let h = Harness::start(&[]).await;
    let body =
        json!({"kind": "scripted", "payload": {"tag": "once"}, "idempotency_key": "order-7"});
    let first = h.enqueue(body.clone()).await;
    let second = h.enqueue(body).await;

    h.wait_for(first["id"].as_str().unwrap(), "succeeded").await;
    let third = h
        .enqueue(
            json!({"kind": "scripted", "payload": {"tag": "once"}, "idempotency_key": "order-7"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(second["id"], first["id"]);
    assert_eq!(
        (first["created"].as_bool(), second["created"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        third["id"], first["id"],
        "the key holds after the job finished"
    );
    assert_eq!(h.log.starts("once").len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_job_longer_than_its_lease_keeps_it_and_runs_once_with_two_workers() {
    let mut h = Harness::start(&[]).await;
    // A second worker competing for the same queue.
    let second = registry(&h.w.app.state, &h.log);
    h.w.add_worker(second);
    let job = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "long", "sleep_ms": 5000}}))
        .await;

    let done = h.wait_for(job["id"].as_str().unwrap(), "succeeded").await;

    assert_eq!(
        h.log.starts("long").len(),
        1,
        "the lease lapsed and the job ran twice"
    );
    assert_eq!(done["attempts"], 1);
    h.stop().await;
}

#[tokio::test]
async fn an_attempt_past_its_timeout_is_cancelled_and_fails() {
    let h = Harness::start(&[]).await;
    let job = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "slow", "sleep_ms": 10000}, "timeout_seconds": 1, "max_attempts": 1}))
        .await;

    let dead = h.wait_for(job["id"].as_str().unwrap(), "dead").await;

    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{dead:#}"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_kind_or_undecodable_payload_dies_at_once_and_the_worker_keeps_going() {
    let h = Harness::start(&[]).await;
    let unknown = h
        .enqueue(json!({"kind": "no.such.kind", "payload": {}}))
        .await;
    let garbled = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": 5}}))
        .await;
    let fine = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "after"}}))
        .await;

    let unknown = h.wait_for(unknown["id"].as_str().unwrap(), "dead").await;
    let garbled = h.wait_for(garbled["id"].as_str().unwrap(), "dead").await;
    h.wait_for(fine["id"].as_str().unwrap(), "succeeded").await;

    assert_eq!(unknown["attempts"], 1, "no retries for an unknown kind");
    assert!(
        unknown["last_error"]
            .as_str()
            .unwrap()
            .contains("no handler for job kind \"no.such.kind\"")
    );
    assert_eq!(garbled["attempts"], 1);
    assert!(
        garbled["last_error"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{garbled:#}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_fails_only_that_attempt() {
    let h = Harness::start(&[]).await;
    let job = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "panics", "panic": true}, "max_attempts": 2}))
        .await;

    let done = h.wait_for(job["id"].as_str().unwrap(), "succeeded").await;

    assert_eq!(done["attempts"], 2);
    assert!(
        done["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("panicked: planned panic")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_busy_queue_does_not_starve_a_quiet_one() {
    let h = Harness::start(&[
        ("JOBS_QUEUES", "busy,quiet"),
        ("WORKER_QUEUES", "busy,quiet"),
        ("WORKER_CONCURRENCY", "2"),
    ])
    .await;
    let flood: Vec<Value> = (0..200)
        .map(|i| json!({"kind": "scripted", "queue": "busy", "payload": {"tag": format!("busy-{i}"), "sleep_ms": 20}}))
        .collect();
    let reply =
        h.w.app
            .admin("POST", "/api/v1/jobs/batch", Some(json!({"jobs": flood})))
            .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let quiet = h
        .enqueue(json!({"kind": "scripted", "queue": "quiet", "payload": {"tag": "quiet"}}))
        .await;

    h.wait_for(quiet["id"].as_str().unwrap(), "succeeded").await;

    let busy_before = h.log.tags().iter().take_while(|t| *t != "quiet").count();
    assert!(
        busy_before < 50,
        "the quiet job waited behind {busy_before} busy jobs"
    );
    h.stop().await;
}

#[tokio::test]
async fn job_state_changes_are_published_on_the_jobs_channel_when_enabled() {
    let h = Harness::start(&[("REALTIME_JOB_EVENTS", "true")]).await;
    let job = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "evented", "fail": 1}, "max_attempts": 2}))
        .await;
    let id = job["id"].as_str().unwrap();
    h.wait_for(id, "succeeded").await;
    let channel = format!("jobs.{id}");
    // The success is published just after the acknowledgement: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let names = loop {
        let history =
            h.w.app
                .state
                .realtime
                .recover(&channel, Some(0))
                .await
                .unwrap();
        let events: Vec<Value> = history
            .events
            .iter()
            .map(|e| serde_json::from_str(e.text.as_str()).unwrap())
            .collect();
        let names: Vec<String> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect();
        if names.len() >= 4 || Instant::now() > deadline {
            assert_eq!(events[1]["data"]["attempt"], 1);
            assert!(
                events[1]["data"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("planned failure")
            );
            assert_eq!(events[3]["data"]["kind"], "scripted");
            break names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        names,
        ["job.active", "job.retrying", "job.active", "job.succeeded"]
    );
    h.stop().await;
}

#[tokio::test]
async fn job_events_are_off_by_default() {
    let h = Harness::start(&[]).await;
    let job = h
        .enqueue(json!({"kind": "scripted", "payload": {"tag": "quiet"}}))
        .await;
    let id = job["id"].as_str().unwrap();
    h.wait_for(id, "succeeded").await;
    let history =
        h.w.app
            .state
            .realtime
            .recover(&format!("jobs.{id}"), Some(0))
            .await
            .unwrap();
    assert!(history.events.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn retrying_dead_jobs_that_die_again_at_once_revives_each_once_and_answers() {
    let h = Harness::start(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let job = h
            .enqueue(json!({"kind": "no.such.kind", "payload": {}}))
            .await;
        ids.push(job["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        h.wait_for(id, "dead").await;
    }

    // Each revived job dies again within milliseconds, while the call is still going: it
    // must not be taken again. (It was, without end, and the call never answered.)
    let reply = tokio::time::timeout(
        Duration::from_secs(60),
        h.w.app
            .admin("POST", "/api/v1/queues/default/dead/retry", None),
    )
    .await
    .expect("retrying the dead jobs never answered");
    let mut again = Vec::new();
    for id in &ids {
        again.push(h.wait_for(id, "dead").await);
    }

    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json()["retried"], 3);
    for job in again {
        assert_eq!(job["attempts"], 1, "{job:#}");
        assert_eq!(
            job["errors"].as_array().map(Vec::len),
            Some(2),
            "the first death and the second: {job:#}"
        );
    }
    h.stop().await;
}
