//! `app all` as a process: every part in one process on one port with production
//! settings (no generated secrets, the outbound guard on, no migration unless asked), the
//! worker on every declared queue, one registry row, and one SIGTERM draining it all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    ADMIN_TOKEN, Process, RedisKeys, Reply, TestDb, blocking_call, environment, server_redis_url,
};
use crate::lifecycle::is_migrated;

fn admin(method: &str, app: &Process, path: &str, body: Option<&str>) -> Reply {
    blocking_call(
        method,
        &app.url(path),
        &[
            ("authorization".into(), format!("Bearer {ADMIN_TOKEN}")),
            ("content-type".into(), "application/json".into()),
        ],
        body.map(|b| b.as_bytes().to_vec()),
    )
}

/// Polls `read` until `done` holds of its answer, or 20 s pass; returns the last answer.
fn wait_until(read: impl Fn() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = read();
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A signing secret for `http` jobs, which `app dev` would have generated.
pub(crate) const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The environment of a production deployment: every secret a part needs, set by hand.
pub(crate) fn production(db: &TestDb) -> BTreeMap<String, String> {
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("OUTBOUND_SIGNING_SECRET".into(), SIGNING_SECRET.into());
    env
}

#[test]
fn all_runs_every_part_on_one_port_with_production_settings_and_drains_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = production(&db);
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let mut app = Process::start(&["all"], &env);

    let health = blocking_call("GET", &app.url("/api/health"), &[], None);
    // The worker consumes a queue other than `default` without being told to.
    let noop = admin(
        "POST",
        &app,
        "/api/v1/jobs",
        Some(r#"{"kind": "noop", "queue": "mails"}"#),
    );
    // The outbound guard is on: an http job to this machine is refused at send time.
    let local = admin(
        "POST",
        &app,
        "/api/v1/jobs",
        Some(&format!(
            r#"{{"kind": "http", "queue": "http", "max_attempts": 1,
                 "payload": {{"url": "{}", "method": "GET"}}}}"#,
            app.url("/api/health/live")
        )),
    );
    let job = |reply: &Reply| {
        let id = reply.json()["id"].as_str().unwrap().to_owned();
        wait_until(
            || admin("GET", &app, &format!("/api/v1/jobs/{id}"), None).json(),
            |job| matches!(job["state"].as_str(), Some("succeeded" | "dead")),
        )
    };
    let (noop_job, local_job) = (job(&noop), job(&local));
    // The realtime hub reports itself, and the WebSocket route is on the same port.
    let stats = wait_until(
        || admin("GET", &app, "/api/v1/realtime/stats", None).json(),
        |stats| stats["hubs"].as_array().is_some_and(|h| !h.is_empty()),
    );
    let socket = blocking_call("GET", &app.url("/api/v1/realtime"), &[], None);
    let instances: Vec<(String, Value)> = rt.block_on(async {
        let pool = db.pool().await;
        let rows = sqlx::query_as("SELECT mode, details FROM instances")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    });

    app.signal(libc::SIGTERM);
    let status = app.wait_exit(Duration::from_secs(30));
    let output = app.output();

    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["mode"], "all");
    assert_eq!(noop.status, 202, "{}", noop.body);
    assert_eq!(noop_job["state"], "succeeded", "{noop_job}");
    assert_eq!(local.status, 202, "{}", local.body);
    assert_eq!(local_job["state"], "dead", "{local_job}");
    assert!(
        local_job["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("refused to call") && e.contains("loopback")),
        "refused by the outbound guard: {local_job}"
    );
    assert!(!stats["hubs"].as_array().unwrap().is_empty(), "{stats}");
    assert_ne!(socket.status, 404, "the realtime socket is served");
    // One process, one registry row, with what its worker and scheduler run.
    assert_eq!(instances.len(), 1, "{instances:?}");
    let (mode, details) = &instances[0];
    assert_eq!(mode, "all");
    assert_eq!(
        details["queues"],
        serde_json::json!(["default", "http", "webhooks", "audits", "deletes", "mails"])
    );
    assert!(
        details["kinds"]
            .as_array()
            .is_some_and(|k| k.contains(&"noop".into())),
        "{details}"
    );
    assert!(details["schedules"].is_u64(), "{details}");
    assert!(details["address"].is_string(), "{details}");
    assert!(!output.contains("generated"), "{output}");
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(output.contains("stopped cleanly"), "{output}");
}

#[test]
fn all_migrates_only_when_asked_and_narrows_its_queues_by_flag() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::empty());
    let env = production(&db);
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());

    let mut plain = Process::start(&["all"], &env);
    let untouched = !is_migrated(&rt, &db);
    plain.signal(libc::SIGTERM);
    plain.wait_exit(Duration::from_secs(30));
    let mut asked = Process::start(&["all", "--migrate", "--queues", "default,mails"], &env);
    let migrated = is_migrated(&rt, &db);
    let health = blocking_call("GET", &asked.url("/api/health"), &[], None);
    asked.signal(libc::SIGTERM);
    let status = asked.wait_exit(Duration::from_secs(30));

    assert!(untouched, "app all migrated without being asked");
    assert!(
        plain.output().contains("are migrations applied"),
        "{}",
        plain.output()
    );
    assert!(migrated, "app all --migrate did not migrate");
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(
        asked.output().contains("\"queues\":\"default,mails\""),
        "{}",
        asked.output()
    );
    assert_eq!(status.code(), Some(0), "{}", asked.output());
}

#[test]
fn all_without_a_secret_one_of_its_parts_needs_exits_1_naming_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env = production(&db);
    env.remove("OUTBOUND_SIGNING_SECRET");
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());

    let output = crate::common::app()
        .arg("all")
        .envs(&env)
        .output()
        .expect("run app all");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("OUTBOUND_SIGNING_SECRET"), "{stderr}");
    assert!(!stderr.contains("generated"), "{stderr}");
}

#[test]
fn sigterm_lets_jobs_running_in_all_finish_within_the_drain() {
    let s = crate::jobs::Setup::new(&[
        ("SHUTDOWN_DRAIN_SECONDS", "10"),
        ("OUTBOUND_SIGNING_SECRET", SIGNING_SECRET),
    ]);
    let ids = s.enqueue_noops(4, 1500);
    let mut app = Process::start(&["all"], &s.env);
    s.wait_until(Duration::from_secs(20), "all four running", || {
        s.count(&ids, "running") == 4
    });

    app.signal(libc::SIGTERM);
    let status = app.wait_exit(Duration::from_secs(30));

    assert_eq!(status.code(), Some(0), "{}", app.output());
    assert_eq!(s.count(&ids, "succeeded"), 4, "{:?}", s.states(&ids));
}
