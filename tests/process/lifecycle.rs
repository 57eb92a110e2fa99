use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::proxy::{Mode, Proxy, upstream_of};
use crate::common::{ADMIN_TOKEN, Process, TestDb, blocking_call, environment, server_redis_url};

fn count_instances(rt: &tokio::runtime::Runtime, db: &TestDb) -> i64 {
    rt.block_on(async {
        let pool = db.pool().await;
        let n = sqlx::query_scalar("SELECT count(*) FROM instances")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    })
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_refuses_new_connections() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let proxy = rt.block_on(Proxy::start(upstream_of(&server_redis_url())));
    let env = environment(&db.url, &proxy.url_for(&server_redis_url()));
    let mut app = Process::start(&["serve"], &env);
    assert_eq!(
        blocking_call("GET", &app.url("/api/health"), &[], None).status,
        200
    );

    // With Redis hanging, /api/health takes its full 1 s bound: a request in flight.
    proxy.set(Mode::Stall);
    let url = app.url("/api/health");
    let slow = std::thread::spawn(move || blocking_call("GET", &url, &[], None));
    std::thread::sleep(Duration::from_millis(300));
    app.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(150));
    let refused = std::net::TcpStream::connect(("127.0.0.1", app.port));
    let finished = slow.join().unwrap();
    proxy.set(Mode::Pass);
    let status = app.wait_exit(Duration::from_secs(20));

    assert_eq!(
        finished.status, 503,
        "the in-flight request got its full answer"
    );
    assert_eq!(finished.json()["checks"]["redis"]["status"], "down");
    assert!(
        refused.is_err(),
        "a new connection after SIGTERM was accepted"
    );
    assert_eq!(status.code(), Some(0), "{}", app.output());
    assert!(
        app.output().contains("shutdown requested"),
        "{}",
        app.output()
    );
}

#[test]
fn every_long_running_mode_reports_ready_serves_health_and_exits_0_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    for mode in ["serve", "worker", "scheduler", "realtime"] {
        let mut app = Process::start(&[mode], &env);
        let health = blocking_call("GET", &app.url("/api/health"), &[], None);
        let registered = count_instances(&rt, &db);

        app.signal(libc::SIGTERM);
        let status = app.wait_exit(Duration::from_secs(20));

        assert_eq!(health.status, 200, "{mode}: {}", health.body);
        assert_eq!(health.json()["mode"], mode);
        assert_eq!(registered, 1, "{mode} registered itself");
        assert_eq!(status.code(), Some(0), "{mode}: {}", app.output());
        assert!(
            app.output().contains("\"message\":\"ready\""),
            "{mode}: {}",
            app.output()
        );
        assert_eq!(
            count_instances(&rt, &db),
            0,
            "{mode} removed its registry row"
        );
    }
}

#[test]
fn sigint_stops_the_worker_cleanly_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let mut app = Process::start(
        &["worker", "--queues", "mails,audits", "--concurrency", "3"],
        &env,
    );

    app.signal(libc::SIGINT);
    let status = app.wait_exit(Duration::from_secs(20));

    assert_eq!(status.code(), Some(0), "{}", app.output());
    assert!(
        app.output().contains("\"queues\":\"mails,audits\""),
        "{}",
        app.output()
    );
    assert!(
        app.output().contains("\"concurrency\":3"),
        "{}",
        app.output()
    );
}

#[test]
fn json_logs_carry_mode_service_and_replica_and_each_request_is_one_line() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("LOG_LEVEL".into(), "info".into());
    env.insert("RAILWAY_SERVICE_NAME".into(), "api".into());
    env.insert("RAILWAY_REPLICA_ID".into(), "replica-7".into());
    let mut app = Process::start(&["serve"], &env);

    let auth = format!("Bearer {ADMIN_TOKEN}");
    let reply = blocking_call(
        "GET",
        &app.url("/api/metrics"),
        &[("authorization".into(), auth)],
        None,
    );
    app.signal(libc::SIGTERM);
    app.wait_exit(Duration::from_secs(20));

    let output = app.output();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3);
    for line in &lines {
        for field in ["timestamp", "level", "message", "target"] {
            assert!(line[field].is_string(), "{field} missing: {line}");
        }
        assert_eq!(line["mode"], "serve", "{line}");
        assert_eq!(line["service"], "api", "{line}");
        assert_eq!(line["replica"], "replica-7", "{line}");
    }
    let requests: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "request" && l["route"] == "/api/metrics")
        .collect();
    assert_eq!(requests.len(), 1, "{output}");
    let request = requests[0];
    assert_eq!(request["method"], "GET");
    assert_eq!(request["status"], 200);
    assert!(request["duration_ms"].is_f64());
    assert_eq!(request["request_id"].as_str(), reply.header("x-request-id"));
    assert!(
        !output.contains(ADMIN_TOKEN),
        "the admin token reached the logs"
    );
    assert!(
        !output.contains(":switchyard@"),
        "the database password reached the logs"
    );
}

#[test]
fn dev_migrates_first_prints_a_generated_token_once_and_serves_everything() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::empty());
    let mut env: BTreeMap<String, String> = environment(&db.url, &server_redis_url());
    env.remove("ADMIN_TOKEN");
    let mut app = Process::start(&["dev"], &env);

    let output = app.output();
    let token = output
        .split_whitespace()
        .find(|w| w.starts_with("dev_"))
        .unwrap_or_else(|| panic!("no token printed: {output}"))
        .to_owned();
    let metrics = blocking_call(
        "GET",
        &app.url("/api/metrics"),
        &[("authorization".into(), format!("Bearer {token}"))],
        None,
    );
    let health = blocking_call("GET", &app.url("/api/health"), &[], None);
    app.signal(libc::SIGTERM);
    let status = app.wait_exit(Duration::from_secs(20));

    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert_eq!(metrics.json()["database"]["migrations_pending"], 0);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["mode"], "dev");
    assert_eq!(
        app.output().matches(&token).count(),
        1,
        "the token is printed once"
    );
    assert_eq!(status.code(), Some(0), "{}", app.output());
}

#[test]
fn dev_prints_the_app_secret_it_generates_so_a_backend_can_mint_tokens() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env: BTreeMap<String, String> = environment(&db.url, &server_redis_url());
    env.remove("APP_SECRET");
    let mut app = Process::start(&["dev"], &env);

    let output = app.output();
    let secret = output
        .lines()
        .skip_while(|line| !line.contains("set APP_SECRET"))
        .find_map(|line| line.split_whitespace().find(|w| w.starts_with("dev_")))
        .unwrap_or_else(|| panic!("no app secret printed: {output}"))
        .to_owned();
    let minted = blocking_call(
        "POST",
        &app.url("/api/v1/realtime/token"),
        &[
            ("authorization".into(), format!("Bearer {ADMIN_TOKEN}")),
            ("content-type".into(), "application/json".into()),
        ],
        Some(br#"{"sub": "u1", "channels": ["files"]}"#.to_vec()),
    );
    app.signal(libc::SIGTERM);
    app.wait_exit(Duration::from_secs(20));

    assert_eq!(minted.status, 200, "{}", minted.body);
    let token = minted.json()["token"].as_str().unwrap().to_owned();
    let key = switchyard::realtime::token::TokenKey::new(&switchyard::config::Secret::new(secret));
    let claims = key.verify(&token, chrono::Utc::now().timestamp());
    assert!(
        claims.is_ok(),
        "the printed secret signs the tokens: {claims:?}"
    );
    assert_eq!(app.output().matches(&token).count(), 0);
}

/// Whether the first migration's table exists in `db`.
pub(crate) fn is_migrated(rt: &tokio::runtime::Runtime, db: &TestDb) -> bool {
    rt.block_on(async {
        let pool = db.pool().await;
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('instances')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        exists.is_some()
    })
}

#[test]
fn serve_migrates_only_when_asked_by_flag_or_variable() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let by_flag = rt.block_on(TestDb::empty());
    let by_variable = rt.block_on(TestDb::empty());
    let flag_env = environment(&by_flag.url, &server_redis_url());
    let mut variable_env = environment(&by_variable.url, &server_redis_url());
    variable_env.insert("MIGRATE_ON_START".into(), "true".into());

    let mut plain = Process::start(&["serve"], &flag_env);
    let untouched = !is_migrated(&rt, &by_flag);
    plain.signal(libc::SIGTERM);
    plain.wait_exit(Duration::from_secs(20));
    let mut flagged = Process::start(&["serve", "--migrate"], &flag_env);
    let migrated_by_flag = is_migrated(&rt, &by_flag);
    flagged.signal(libc::SIGTERM);
    flagged.wait_exit(Duration::from_secs(20));
    let mut variable = Process::start(&["serve"], &variable_env);
    let migrated_by_variable = is_migrated(&rt, &by_variable);
    variable.signal(libc::SIGTERM);
    variable.wait_exit(Duration::from_secs(20));

    assert!(untouched, "serve migrated without being asked");
    assert!(
        plain.output().contains("are migrations applied"),
        "{}",
        plain.output()
    );
    assert!(migrated_by_flag, "serve --migrate did not migrate");
    assert!(
        migrated_by_variable,
        "MIGRATE_ON_START=true did not migrate"
    );
}

#[test]
fn work_still_running_at_the_drain_deadline_does_not_hold_the_exit() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let proxy = rt.block_on(Proxy::start(upstream_of(&server_redis_url())));
    let mut env = environment(&db.url, &proxy.url_for(&server_redis_url()));
    env.insert("SHUTDOWN_DRAIN_SECONDS".into(), "1".into());
    env.insert("HEALTH_CHECK_TIMEOUT_MS".into(), "30000".into());
    let mut app = Process::start(&["serve"], &env);

    // A health check that will hang for 30 s, far past the 1 s drain.
    proxy.set(Mode::Stall);
    let url = app.url("/api/health");
    let _hanging = std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| blocking_call("GET", &url, &[], None));
    });
    std::thread::sleep(Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    app.signal(libc::SIGTERM);
    let status = app.wait_exit(Duration::from_secs(20));
    let took = signalled.elapsed();
    proxy.set(Mode::Pass);

    assert_eq!(status.code(), Some(0), "{}", app.output());
    assert!(
        took < Duration::from_secs(15),
        "exit waited {took:?} for the hanging request"
    );
    assert!(
        app.output().contains("drain deadline passed"),
        "{}",
        app.output()
    );
}

#[test]
fn worker_scheduler_and_realtime_ports_serve_health_and_metrics_but_no_files() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let admin = [("authorization".to_owned(), format!("Bearer {ADMIN_TOKEN}"))];
    let download = format!("/api/v1/files/{}/content", uuid::Uuid::now_v7());
    for mode in ["worker", "scheduler", "realtime"] {
        let mut app = Process::start(&[mode], &env);

        let health = blocking_call("GET", &app.url("/api/health"), &[], None);
        let metrics = blocking_call("GET", &app.url("/metrics"), &admin, None);
        let file = blocking_call("GET", &app.url(&download), &admin, None);
        app.signal(libc::SIGTERM);
        app.wait_exit(Duration::from_secs(20));

        assert_eq!(health.status, 200, "{mode}: {}", health.body);
        assert_eq!(metrics.status, 200, "{mode}: {}", metrics.body);
        let problem = file.assert_problem(404, "not_found");
        assert_eq!(problem["detail"], "no route matches this path", "{mode}");
    }
}
