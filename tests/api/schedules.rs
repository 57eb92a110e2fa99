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

#[tokio::test]
async fn the_api_and_the_list_command_agree() {
    let dir = ScheduleDir::new(SCHEDULES);
    let path = dir.path();
    let app_server = TestApp::spawn_with(
        move |env| {
            env.insert("CONFIG_DIR".into(), path);
        },
        Default::default(),
    )
    .await;

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
    assert!(nightly["last_run"].is_null());
    app_server.stop().await;
}

#[tokio::test]
async fn a_schedule_can_be_run_now_and_its_last_run_shows() {
    let dir = ScheduleDir::new(SCHEDULES);
    let path = dir.path();
    let app = TestApp::spawn_with(
        move |env| {
            env.insert("CONFIG_DIR".into(), path);
        },
        Default::default(),
    )
    .await;

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
