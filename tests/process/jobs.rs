//! The worker and the jobs CLI as processes: kill -9 loses no job, SIGTERM drains or hands
//! back, and `app jobs` enqueues, lists and retries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use switchyard::queue::{NewJob, Queues};

use crate::common::{Process, RedisKeys, TestDb, app, environment, server_redis_url, test_queues};

/// A test's database, key prefix and a handle on its queues.
pub(crate) struct Setup {
    rt: tokio::runtime::Runtime,
    db: TestDb,
    pub(crate) env: BTreeMap<String, String>,
    queues: Queues,
    _keys: RedisKeys,
}

impl Setup {
    /// Runs `app <args>` against this test's database and queues, to its end.
    fn run(&self, args: &[&str]) -> std::process::Output {
        app().args(args).envs(&self.env).output().expect("run app")
    }

    pub(crate) fn new(vars: &[(&str, &str)]) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let db = rt.block_on(TestDb::migrated());
        let mut env = environment(&db.url, &server_redis_url());
        for (k, v) in vars {
            env.insert(k.to_string(), v.to_string());
        }
        let prefix = env["REDIS_KEY_PREFIX"].clone();
        // The connection lives on this test's runtime.
        let _runtime = rt.enter();
        let queues = rt.block_on(test_queues(&prefix, Duration::from_secs(3600)));
        Self {
            rt,
            db,
            env,
            queues,
            _keys: RedisKeys(prefix),
        }
    }

    pub(crate) fn enqueue_noops(&self, n: usize, sleep_ms: u64) -> Vec<String> {
        let jobs: Vec<NewJob> = (0..n)
            .map(|_| NewJob {
                queue: "default".into(),
                kind: "noop".into(),
                payload: serde_json::value::to_raw_value(
                    &serde_json::json!({"sleep_ms": sleep_ms}),
                )
                .unwrap(),
                run_at_ms: None,
                max_attempts: 5,
                timeout: Duration::from_secs(60),
                idempotency_key: None,
                idempotency_window: None,
                retention: None,
            })
            .collect();
        let now = switchyard::queue::now_ms();
        self.rt
            .block_on(self.queues.enqueue_batch(&jobs, now))
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    pub(crate) fn states(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .map(|id| {
                self.rt
                    .block_on(self.queues.state(id))
                    .unwrap()
                    .unwrap_or_else(|| "missing".into())
            })
            .collect()
    }

    pub(crate) fn count(&self, ids: &[String], state: &str) -> usize {
        self.states(ids).iter().filter(|s| *s == state).count()
    }

    pub(crate) fn wait_until(&self, limit: Duration, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_worker_killed_with_sigkill_loses_no_job() {
    let s = Setup::new(&[("WORKER_CONCURRENCY", "8"), ("WORKER_LEASE_SECONDS", "2")]);
    let ids = s.enqueue_noops(40, 300);
    let first = Process::start(&["worker"], &s.env);
    s.wait_until(Duration::from_secs(20), "jobs running", || {
        s.count(&ids, "running") > 0 && s.count(&ids, "succeeded") > 0
    });

    first.signal(libc::SIGKILL);
    let held = s.count(&ids, "running");
    let second = Process::start(&["worker"], &s.env);
    s.wait_until(Duration::from_secs(30), "every job succeeded", || {
        s.count(&ids, "succeeded") == ids.len()
    });

    assert!(
        held > 0,
        "the killed worker held no job, so nothing was tested"
    );
    drop(second);
}

#[test]
fn sigterm_lets_running_jobs_finish_within_the_drain() {
    let s = Setup::new(&[
        ("WORKER_CONCURRENCY", "4"),
        ("SHUTDOWN_DRAIN_SECONDS", "10"),
    ]);
    let ids = s.enqueue_noops(4, 1500);
    let mut worker = Process::start(&["worker"], &s.env);
    s.wait_until(Duration::from_secs(20), "all four running", || {
        s.count(&ids, "running") == 4
    });

    worker.signal(libc::SIGTERM);
    let status = worker.wait_exit(Duration::from_secs(20));

    assert_eq!(status.code(), Some(0), "{}", worker.output());
    assert_eq!(s.count(&ids, "succeeded"), 4, "{:?}", s.states(&ids));
}

#[test]
fn sigterm_hands_back_jobs_still_running_at_the_drain_deadline() {
    let s = Setup::new(&[
        ("WORKER_CONCURRENCY", "2"),
        ("SHUTDOWN_DRAIN_SECONDS", "1"),
        ("WORKER_LEASE_SECONDS", "60"),
    ]);
    let ids = s.enqueue_noops(2, 30_000);
    let mut worker = Process::start(&["worker"], &s.env);
    s.wait_until(Duration::from_secs(20), "both running", || {
        s.count(&ids, "running") == 2
    });

    worker.signal(libc::SIGTERM);
    let status = worker.wait_exit(Duration::from_secs(15));

    assert_eq!(status.code(), Some(0), "{}", worker.output());
    assert_eq!(
        s.count(&ids, "queued"),
        2,
        "the jobs wait for their 60 s leases instead of being handed back: {:?}",
        s.states(&ids)
    );
    assert!(
        worker.output().contains("handed running jobs back"),
        "{}",
        worker.output()
    );
}

#[test]
fn the_jobs_cli_enqueues_and_refuses_bad_input_naming_the_field() {
    let s = Setup::new(&[]);
    let run = |args: &[&str]| s.run(args);

    let ok = run(&[
        "jobs",
        "enqueue",
        "default",
        "noop",
        "--payload",
        "{}",
        "--delay",
        "5m",
    ]);
    let unknown_queue = run(&["jobs", "enqueue", "nope", "noop"]);
    let bad_json = run(&["jobs", "enqueue", "default", "noop", "--payload", "{"]);
    let bad_delay = run(&["jobs", "enqueue", "default", "noop", "--delay", "5 weeks"]);
    let no_dead = run(&["jobs", "dead"]);
    let retry_missing = run(&["jobs", "retry", "0191d5b0-0000-7000-8000-000000000000"]);

    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    let id = printed["id"].as_str().unwrap().to_owned();
    assert_eq!(s.states(&[id]), ["scheduled"]);
    assert_eq!(unknown_queue.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown_queue.stderr).contains("queue: unknown queue \"nope\"")
    );
    assert_eq!(bad_json.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_json.stderr).contains("--payload"));
    assert_eq!(
        bad_delay.status.code(),
        Some(2),
        "a malformed flag is a usage error"
    );
    assert_eq!(no_dead.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&no_dead.stdout).contains("no dead jobs"));
    assert_eq!(retry_missing.status.code(), Some(1));
    drop(s.db);
}

/// Enqueues `kind` on `queue` through `api`.
fn enqueue(api: &Process, queue: &str, kind: &str) -> crate::common::Reply {
    crate::common::blocking_call(
        "POST",
        &api.url("/api/v1/jobs"),
        &[
            (
                "authorization".into(),
                format!("Bearer {}", crate::common::ADMIN_TOKEN),
            ),
            ("content-type".into(), "application/json".into()),
        ],
        Some(format!(r#"{{"kind": "{kind}", "queue": "{queue}"}}"#).into_bytes()),
    )
}

#[test]
fn a_kind_no_live_worker_handles_is_refused_only_while_a_worker_consumes_its_queue() {
    let s = Setup::new(&[("WORKER_QUEUES", "default")]);
    let api = Process::start(&["serve"], &s.env);
    let mut lenient_env = s.env.clone();
    lenient_env.insert("JOBS_ACCEPT_UNKNOWN_KINDS".into(), "true".into());
    let lenient = Process::start(&["serve"], &lenient_env);

    // No worker is live: anything goes, so an enqueue never waits on a worker.
    let before = enqueue(&api, "default", "invoices.sned");
    let mut worker = Process::start(&["worker"], &s.env);
    // The API reads the registry every few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let typo = loop {
        let reply = enqueue(&api, "default", "invoices.sned");
        if reply.status != 202 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let known = enqueue(&api, "default", "noop");
    let elsewhere = enqueue(&api, "mails", "invoices.sned");
    let allowed = enqueue(&lenient, "default", "invoices.sned");
    worker.signal(libc::SIGTERM);
    worker.wait_exit(Duration::from_secs(20));

    assert_eq!(before.status, 202, "{}", before.body);
    let problem = typo.assert_problem(422, "validation_failed");
    assert_eq!(problem["field"], "kind");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("noop") && detail.contains("http"),
        "{detail}"
    );
    assert_eq!(known.status, 202, "{}", known.body);
    assert_eq!(
        elsewhere.status, 202,
        "no live worker consumes mails: {}",
        elsewhere.body
    );
    assert_eq!(allowed.status, 202, "{}", allowed.body);
}

#[test]
fn the_jobs_cli_lists_and_retries_a_dead_job_with_extreme_numbers() {
    let s = Setup::new(&[]);
    let id = uuid::Uuid::now_v7();
    // A row as jsonb left it: the float printed back as a 309-digit integer.
    s.rt.block_on(async {
        let pool = s.db.pool().await;
        sqlx::query(
            "INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts, timeout_ms,
                 last_error, created_at)
             VALUES ($1, 'default', 'noop', ('{\"max\": 1.7976931348623157e308}'::jsonb)::json,
                 1, 1, 1000, 'planned', now())",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    let run = |args: &[&str]| s.run(args);

    let listed = run(&["jobs", "dead"]);
    let retried = run(&["jobs", "retry", &id.to_string()]);

    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        stdout.contains(&id.to_string()) && stdout.contains("planned"),
        "{stdout}"
    );
    assert_eq!(
        retried.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert_eq!(s.states(&[id.to_string()]), ["queued"]);
}
