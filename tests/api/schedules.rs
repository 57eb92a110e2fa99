//! `/api/v1/schedules`: the same schedules and next runs as `app scheduler --list`, and a
//! manual trigger.

use crate::common::{ScheduleDir, TestApp, app};

const SCHEDULES: &str = r#"
[[schedule]]
name = "nightly-report"
cron = "30 2 * * *"
timezone = "Europe/Berlin"
queue = "default"
kind = "noop"

[[schedule]]
name = "hourly"
cron = "@hourly"
kind = "noop"
catch_up = "latest"

[[schedule]]
name = "paused"
cron = "0 0 1 1 *"
kind = "noop"
enabled = false
"#;

/// The API with `dir` as its configuration directory.
async fn spawn_with_schedules(dir: &ScheduleDir) -> TestApp {
    let path = dir.path();
    TestApp::spawn_with(
        move |env| {
            env.insert("CONFIG_DIR".into(), path);
        },
        Default::default(),
    )
    .await
}

#[tokio::test]
async fn the_api_and_the_list_command_agree() {
    let dir = ScheduleDir::new(SCHEDULES);
    let app_server = spawn_with_schedules(&dir).await;

    let listed = app_server.admin_get("/api/v1/schedules").await.json();
    let path = dir.path();
    let output = tokio::task::spawn_blocking(move || {
        app()
            .args(["scheduler", "--list"])
            .env("CONFIG_DIR", path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();

    let schedules = listed["schedules"].as_array().unwrap();
    let names: Vec<&str> = schedules
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["nightly-report", "hourly", "paused", "maintenance.deletes"]
    );
    for schedule in schedules {
        let name = schedule["name"].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        match schedule["next_run"].as_str() {
            Some(next) => assert!(line.contains(&format!("next: {next}")), "{line} vs {next}"),
            None => assert!(line.contains("disabled") && line.ends_with("next: -")),
        }
    }
    let nightly = &schedules[0];
    assert_eq!(nightly["timezone"], "Europe/Berlin");
    assert!(
        nightly["next_run"]
            .as_str()
            .unwrap()
            .contains("T02:30:00+0"),
        "{nightly}"
    );
    let upcoming: Vec<&str> = nightly["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(upcoming.len(), 5, "{nightly}");
    assert_eq!(upcoming[0], nightly["next_run"]);
    let days: Vec<chrono::DateTime<chrono::FixedOffset>> = upcoming
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .collect();
    for pair in days.windows(2) {
        assert!(pair[0] < pair[1], "{upcoming:?}");
        assert!(
            pair[1].format("%H:%M").to_string() == "02:30",
            "{upcoming:?}"
        );
    }
    assert!(nightly["last_run"].is_null());
    app_server.stop().await;
}

#[tokio::test]
async fn a_schedule_can_be_run_now_and_its_last_run_shows() {
    let dir = ScheduleDir::new(SCHEDULES);
    let app = spawn_with_schedules(&dir).await;

    let ran = app
        .admin("POST", "/api/v1/schedules/hourly/run", None)
        .await;
    let unknown = app.admin("POST", "/api/v1/schedules/nope/run", None).await;
    let listed = app.admin_get("/api/v1/schedules").await.json();

    assert_eq!(ran.status, 202, "{}", ran.body);
    let job_id = ran.json()["job_id"].as_str().unwrap().to_owned();
    unknown.assert_problem(404, "not_found");
    let hourly = &listed["schedules"][1];
    assert_eq!(hourly["last_run"]["job_id"], job_id.as_str());
    assert_eq!(hourly["last_job_state"], "queued");
    app.stop().await;
}

#[tokio::test]
async fn a_redis_blip_at_a_tick_delays_it_instead_of_losing_it() {
    use crate::common::proxy::{Mode, Proxy, upstream_of};
    use crate::common::server_redis_url;
    use deadpool_redis::redis::AsyncCommands;

    let dir = ScheduleDir::new(
        "[[schedule]]\nname = \"every-second\"\ncron = \"* * * * * *\"\nqueue = \"default\"\nkind = \"noop\"\n",
    );
    let proxy = Proxy::start(upstream_of(&server_redis_url())).await;
    let (path, through) = (dir.path(), proxy.url_for(&server_redis_url()));
    let app = TestApp::spawn_with(
        move |env| {
            env.insert("CONFIG_DIR".into(), path);
            env.insert("REDIS_URL".into(), through);
        },
        Default::default(),
    )
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = tokio::spawn(switchyard::modes::scheduler::engine(
        app.state.clone(),
        stop.clone(),
    ));

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    proxy.set(Mode::Cut);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    proxy.set(Mode::Pass);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    stop.cancel();
    scheduler.await.unwrap().unwrap();

    let prefix = app.state.settings.redis.key_prefix.clone();
    let mut conn = app.state.redis.get().await.unwrap();
    let keys: Vec<String> = conn
        .keys(format!(
            "{prefix}{{q:default}}:idem:schedule:every-second:*"
        ))
        .await
        .unwrap();
    let mut ticks: Vec<i64> = keys
        .iter()
        .filter_map(|k| k.rsplit(':').next()?.parse().ok())
        .collect();
    ticks.sort_unstable();
    let gaps: Vec<_> = ticks.windows(2).filter(|w| w[1] - w[0] != 1000).collect();
    assert!(ticks.len() >= 4, "{ticks:?}");
    assert!(gaps.is_empty(), "ticks lost around the blip: {gaps:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_paused_schedule_lets_its_ticks_pass_until_it_is_resumed() {
    use deadpool_redis::redis::AsyncCommands;
    let dir = ScheduleDir::new(&format!(
        "{SCHEDULES}\n[[schedule]]\nname = \"every-second\"\ncron = \"* * * * * *\"\nqueue = \"default\"\nkind = \"noop\"\n"
    ));
    let app = spawn_with_schedules(&dir).await;
    let fired = async || -> usize {
        let mut conn = app.state.redis.get().await.unwrap();
        let keys: Vec<String> = conn
            .keys(format!(
                "{}{{q:default}}:idem:schedule:every-second:*",
                app.state.settings.redis.key_prefix
            ))
            .await
            .unwrap();
        keys.len()
    };
    let paused = app
        .admin(
            "PATCH",
            "/api/v1/schedules/every-second",
            Some(serde_json::json!({ "paused": true })),
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.json()["paused"], true);
    assert!(paused.json()["next_run"].is_null());
    assert_eq!(paused.json()["next_runs"], serde_json::json!([]));

    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = tokio::spawn(switchyard::modes::scheduler::engine(
        app.state.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(fired().await, 0, "a paused schedule fired");

    let resumed = app
        .admin(
            "PATCH",
            "/api/v1/schedules/every-second",
            Some(serde_json::json!({ "paused": false })),
        )
        .await;
    assert_eq!(resumed.json()["paused"], false);
    assert!(resumed.json()["next_run"].is_string());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fired().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed schedule never fired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.cancel();
    scheduler.await.unwrap().unwrap();

    // Bad input: an unknown schedule, one disabled in the configuration, a body that is
    // not a change.
    app.admin(
        "PATCH",
        "/api/v1/schedules/nope",
        Some(serde_json::json!({ "paused": true })),
    )
    .await
    .assert_problem(404, "not_found");
    let disabled = app
        .admin(
            "PATCH",
            "/api/v1/schedules/paused",
            Some(serde_json::json!({ "paused": false })),
        )
        .await;
    assert!(
        disabled.body.contains("enabled = false"),
        "{}",
        disabled.body
    );
    disabled.assert_problem(409, "conflict");
    for body in [
        serde_json::json!({}),
        serde_json::json!({ "paused": "yes" }),
        serde_json::json!({ "paused": true, "cron": "* * * * *" }),
    ] {
        let reply = app
            .admin("PATCH", "/api/v1/schedules/hourly", Some(body.clone()))
            .await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
    }
    app.stop().await;
}
