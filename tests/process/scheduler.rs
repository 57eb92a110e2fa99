//! `app scheduler` as processes: several replicas fire each tick once, a killed leader is
//! replaced within its lease, missed ticks follow the catch-up policy, and the CLI lists,
//! triggers and refuses bad schedules by name.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deadpool_redis::redis::AsyncCommands;

use crate::common::{
    Process, RedisKeys, ScheduleDir, TestDb, app, blocking_call, environment, server_redis_url,
    test_redis,
};

const EVERY_SECOND: &str = r#"
[[schedule]]
name = "every-second"
cron = "* * * * * *"
queue = "default"
kind = "noop"
"#;

/// The ticks (ms) for which `schedule` made a job, from the idempotency keys the
/// scheduler derives from ticks, and the number of jobs queued.
fn ticks(rt: &tokio::runtime::Runtime, prefix: &str, schedule: &str) -> (Vec<i64>, usize) {
    rt.block_on(async {
        let mut conn = test_redis().await.get().await.unwrap();
        let pattern = format!("{prefix}{{q:default}}:idem:schedule:{schedule}:*");
        let keys: Vec<String> = conn.keys(pattern).await.unwrap();
        let mut ticks: Vec<i64> = keys
            .iter()
            .filter_map(|k| k.rsplit(':').next()?.parse().ok())
            .collect();
        ticks.sort_unstable();
        let jobs: usize = conn
            .llen(format!("{prefix}{{q:default}}:ready"))
            .await
            .unwrap();
        (ticks, jobs)
    })
}

fn leads(process: &Process) -> bool {
    let health = blocking_call("GET", &process.url("/api/health"), &[], None).json();
    health["details"]["scheduler"]["leader"] == true
}

#[test]
fn three_schedulers_fire_each_tick_of_an_every_second_schedule_exactly_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let dir = ScheduleDir::new(EVERY_SECOND);
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CONFIG_DIR".into(), dir.path());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let started = chrono::Utc::now().timestamp_millis();

    let mut replicas: Vec<Process> = (0..3)
        .map(|_| Process::start(&["scheduler"], &env))
        .collect();
    std::thread::sleep(Duration::from_secs(20));
    let leaders = replicas.iter().filter(|p| leads(p)).count();
    for replica in &replicas {
        replica.signal(libc::SIGTERM);
    }
    for replica in &mut replicas {
        assert_eq!(replica.wait_exit(Duration::from_secs(15)).code(), Some(0));
    }

    let (ticks, jobs) = ticks(&rt, &env["REDIS_KEY_PREFIX"], "every-second");
    assert_eq!(leaders, 1, "exactly one replica leads");
    assert_eq!(jobs, ticks.len(), "a tick made more than one job");
    assert!(ticks.len() >= 17, "only {} ticks in 20 s", ticks.len());
    assert!(ticks[0] >= started - 1000);
    let gaps: Vec<_> = ticks.windows(2).filter(|w| w[1] - w[0] != 1000).collect();
    assert!(gaps.is_empty(), "ticks missing between {gaps:?}");
}

#[test]
fn a_killed_leader_is_replaced_within_its_lease_and_no_tick_doubles() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let dir = ScheduleDir::new(EVERY_SECOND);
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CONFIG_DIR".into(), dir.path());
    env.insert("SCHEDULER_LEASE_SECONDS".into(), "2".into());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let a = Process::start(&["scheduler"], &env);
    let b = Process::start(&["scheduler"], &env);
    std::thread::sleep(Duration::from_secs(2));
    let (mut leader, mut standby) = if leads(&a) { (a, b) } else { (b, a) };
    assert!(leads(&leader) && !leads(&standby));

    leader.signal(libc::SIGKILL);
    let killed = Instant::now();
    while !leads(&standby) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "nobody took over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let takeover = killed.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    standby.signal(libc::SIGTERM);
    assert_eq!(standby.wait_exit(Duration::from_secs(15)).code(), Some(0));
    let _ = leader.wait_exit(Duration::from_secs(5));

    let (ticks, jobs) = ticks(&rt, &env["REDIS_KEY_PREFIX"], "every-second");
    // The lease's remaining life, a standby poll and the health probe.
    assert!(
        takeover <= Duration::from_millis(3_500),
        "took {takeover:?} with a 2 s lease"
    );
    assert_eq!(jobs, ticks.len(), "a tick made more than one job");
    let unique: BTreeSet<_> = ticks.iter().collect();
    assert_eq!(unique.len(), ticks.len());
}

#[test]
fn a_leader_paused_past_its_lease_fires_nothing_when_it_resumes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let dir = ScheduleDir::new(EVERY_SECOND);
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CONFIG_DIR".into(), dir.path());
    env.insert("SCHEDULER_LEASE_SECONDS".into(), "2".into());
    let prefix = env["REDIS_KEY_PREFIX"].clone();
    let _keys = RedisKeys(prefix.clone());
    let a = Process::start(&["scheduler"], &env);
    let b = Process::start(&["scheduler"], &env);
    std::thread::sleep(Duration::from_secs(2));
    let (mut paused, mut other) = if leads(&a) { (a, b) } else { (b, a) };

    // Stopped like a frozen VM, long past its 2 s lease: the other replica takes over
    // and, with catch_up = "none", skips the ticks of the handover.
    paused.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    while !leads(&other) {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "nobody took over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let (before, _) = ticks(&rt, &prefix, "every-second");
    let resumed_at = chrono::Utc::now().timestamp_millis();
    paused.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_secs(3));
    for replica in [&paused, &other] {
        replica.signal(libc::SIGTERM);
    }
    assert_eq!(other.wait_exit(Duration::from_secs(15)).code(), Some(0));
    assert_eq!(paused.wait_exit(Duration::from_secs(15)).code(), Some(0));

    let (after, jobs) = ticks(&rt, &prefix, "every-second");
    let known: BTreeSet<_> = before.iter().collect();
    // Ticks that appeared after the resume but were due well before it: fired late by the
    // replica that woke up no longer leading.
    let late: Vec<_> = after
        .iter()
        .filter(|t| !known.contains(t) && **t < resumed_at - 1_500)
        .collect();
    assert!(late.is_empty(), "fired late after the pause: {late:?}");
    assert_eq!(jobs, after.len(), "a tick made more than one job");
    let logs = paused.output();
    assert!(
        logs.contains("this replica lost the scheduler lease"),
        "{logs}"
    );
    assert!(
        logs.contains("\"holder\""),
        "the lease holder is named: {logs}"
    );
}

#[test]
fn after_downtime_catch_up_latest_enqueues_one_missed_tick_and_none_enqueues_none() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let dir = ScheduleDir::new(
        r#"
[[schedule]]
name = "latest"
cron = "* * * * * *"
queue = "default"
kind = "noop"
catch_up = "latest"

[[schedule]]
name = "skip"
cron = "* * * * * *"
queue = "default"
kind = "noop"
catch_up = "none"
"#,
    );
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CONFIG_DIR".into(), dir.path());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let mut first = Process::start(&["scheduler"], &env);
    std::thread::sleep(Duration::from_secs(3));
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(Duration::from_secs(15)).code(), Some(0));
    let (before, _) = ticks(&rt, &env["REDIS_KEY_PREFIX"], "skip");
    std::thread::sleep(Duration::from_secs(4));
    let mut second = Process::start(&["scheduler"], &env);
    std::thread::sleep(Duration::from_millis(1500));
    second.signal(libc::SIGTERM);
    assert_eq!(second.wait_exit(Duration::from_secs(15)).code(), Some(0));

    // Both schedules fire the same ticks while a scheduler runs, so what "latest" has
    // beyond "skip" is what it caught up on.
    let (latest, _) = ticks(&rt, &env["REDIS_KEY_PREFIX"], "latest");
    let (skip, _) = ticks(&rt, &env["REDIS_KEY_PREFIX"], "skip");
    let extra: Vec<i64> = latest
        .iter()
        .filter(|t| !skip.contains(t))
        .copied()
        .collect();
    let last_before = *before.last().unwrap();
    assert!(
        skip.iter().all(|t| latest.contains(t)),
        "{latest:?} vs {skip:?}"
    );
    assert_eq!(
        extra.len(),
        1,
        "latest catches up on exactly one tick: {extra:?}"
    );
    assert!(
        extra[0] > last_before + 1000,
        "the caught-up tick {} is not one the downtime missed (last before {last_before})",
        extra[0]
    );
    let missed_by_skip = skip
        .iter()
        .filter(|t| **t > last_before && **t < extra[0])
        .count();
    assert_eq!(missed_by_skip, 0, "none enqueued a missed tick");
}

#[test]
fn bad_schedules_stop_start_up_naming_the_schedule_and_the_problem() {
    let cases = [
        (
            "[[schedule]]\nname = \"nightly\"\ncron = \"0 25 * * *\"\nkind = \"noop\"\n",
            "not a valid cron expression",
        ),
        (
            "[[schedule]]\nname = \"nightly\"\ncron = \"0 2 * * *\"\ntimezone = \"Mars/Base\"\nkind = \"noop\"\n",
            "unknown time zone",
        ),
        (
            "[[schedule]]\nname = \"nightly\"\ncron = \"0 2 * * *\"\nqueue = \"nope\"\nkind = \"noop\"\n",
            "unknown queue",
        ),
        (
            "[[schedule]]\nname = \"nightly\"\ncron = \"@daily\"\nkind = \"noop\"\n[[schedule]]\nname = \"nightly\"\ncron = \"@hourly\"\nkind = \"noop\"\n",
            "used twice",
        ),
    ];
    for (toml, problem) in cases {
        let dir = ScheduleDir::new(toml);
        let output = app()
            .args(["scheduler", "--list"])
            .env("CONFIG_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("\"nightly\"") && stderr.contains(problem),
            "{stderr}"
        );
        assert!(
            stderr.contains("schedule.toml"),
            "the message names the file: {stderr}"
        );
    }
}

#[test]
fn run_now_enqueues_one_run_and_refuses_an_unknown_name() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let dir = ScheduleDir::new(
        "[[schedule]]\nname = \"nightly\"\ncron = \"0 2 * * *\"\nqueue = \"default\"\nkind = \"noop\"\n",
    );
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CONFIG_DIR".into(), dir.path());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let run = |name: &str| {
        app()
            .args(["scheduler", "--run-now", name])
            .envs(&env)
            .output()
            .unwrap()
    };

    let ok = run("nightly");
    let unknown = run("weekly");

    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(printed["schedule"], "nightly");
    let (_, jobs) = ticks(&rt, &env["REDIS_KEY_PREFIX"], "nightly");
    assert_eq!(jobs, 1);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no schedule \"weekly\""));
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let dir = ScheduleDir::new(EVERY_SECOND);
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CONFIG_DIR".into(), dir.path());
    env.insert("SCHEDULER_LEASE_SECONDS".into(), "30".into());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let a = Process::start(&["scheduler"], &env);
    let b = Process::start(&["scheduler"], &env);
    std::thread::sleep(Duration::from_millis(1500));
    let (mut leader, mut standby) = if leads(&a) { (a, b) } else { (b, a) };

    leader.signal(libc::SIGTERM);
    let stopped = Instant::now();
    assert_eq!(leader.wait_exit(Duration::from_secs(15)).code(), Some(0));
    while !leads(&standby) {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the standby waited out the 30 s lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "took {:?}",
        stopped.elapsed()
    );
    assert!(
        leader.output().contains("released the scheduler lease"),
        "{}",
        leader.output()
    );
    standby.signal(libc::SIGTERM);
    assert_eq!(standby.wait_exit(Duration::from_secs(15)).code(), Some(0));
}
