//! The Grafana dashboard in `deploy/grafana/` and the alert rules in `deploy/prometheus/`
//! against a real process: every metric they name is one `app all` exports once it has
//! done a little of everything (a request, a job that succeeds and one that fails, an
//! event, a realtime subscriber and a publish), in text the Prometheus client's own parser
//! reads.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{ADMIN_TOKEN, Process, RedisKeys, TestDb, blocking_call};
use crate::realtime::{Client, publish};

fn admin(app: &Process, method: &str, path: &str, body: Option<Value>) -> Value {
    let reply = blocking_call(
        method,
        &app.url(path),
        &[
            ("authorization".into(), format!("Bearer {ADMIN_TOKEN}")),
            ("content-type".into(), "application/json".into()),
        ],
        body.map(|b| b.to_string().into_bytes()),
    );
    assert!(reply.status < 300, "{method} {path}: {}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or(Value::Null)
}

/// Every string under `key` anywhere in `value`.
fn strings_under<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == key => out.push(s),
                    _ => strings_under(v, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression mentions (Switchyard's, the HTTP and the process
/// families; PromQL's own functions and label names never start with these).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| {
            ["switchyard_", "http_", "process_"]
                .iter()
                .any(|p| t.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

/// What the Prometheus client's own parser (PyPI `prometheus-client`, run by
/// `tests/support/parse_metrics.py`) reads in `text`: each family's name, type and samples.
fn parse_metrics(text: &str) -> Vec<Value> {
    let output = crate::common::python_support("parse_metrics.py", text.as_bytes());
    assert!(
        output.status.success(),
        "the Prometheus parser refused the text (is prometheus-client installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_metric_the_dashboard_and_the_alert_rules_name_is_exported_in_valid_prometheus_text() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/switchyard.json"),
    )
    .unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let mut queries = Vec::new();
    strings_under(&dashboard, "expr", &mut queries);
    strings_under(&dashboard, "definition", &mut queries);
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "{} panels", panels.len());
    assert!(queries.len() >= 15, "{queries:?}");
    // The alert rules keep each expression on its `expr:` line.
    let alerts = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yaml"),
    )
    .unwrap();
    let rules: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert!(rules.len() >= 5, "{rules:?}");
    queries.extend(rules);
    let wanted: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = crate::all::production(&db);
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let mut app = Process::start(&["all"], &env);

    let jobs = [
        json!({"kind": "noop", "queue": "default"}),
        // Refused by the outbound guard: a failure.
        json!({"kind": "http", "queue": "http", "max_attempts": 1,
               "payload": {"url": app.url("/api/health/live")}}),
    ];
    let ids: Vec<String> = jobs
        .into_iter()
        .map(|job| {
            admin(&app, "POST", "/api/v1/jobs", Some(job))["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    admin(
        &app,
        "POST",
        "/api/v1/events",
        Some(json!({"type": "dashboard.checked"})),
    );
    rt.block_on(async {
        let mut client = Client::authenticated(&app, &["news"]).await;
        client.subscribe(&["news"], json!({})).await;
        publish(&app, "news", "story.posted", json!({"n": 1}));
        assert_eq!(client.next().await["type"], "event");
        // The hub's channel gauge is set with its report, once a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let states: Vec<Value> = ids
                .iter()
                .map(|id| admin(&app, "GET", &format!("/api/v1/jobs/{id}"), None)["state"].clone())
                .collect();
            if states == [json!("succeeded"), json!("dead")] || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let scrape = blocking_call(
            "GET",
            &app.url("/metrics"),
            &[("authorization".into(), format!("Bearer {ADMIN_TOKEN}"))],
            None,
        );
        assert_eq!(scrape.status, 200, "{}", scrape.body);
        let exported: BTreeSet<&str> = scrape
            .body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|name| !exported.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "the dashboard or the alert rules name metrics the binary does not export: \
             {missing:?}\n{}",
            scrape.body
        );
        // The Prometheus client's own parser reads the whole text, and sees each family
        // with the type it was declared with.
        let families = parse_metrics(&scrape.body);
        let kind = |name: &str| {
            families
                .iter()
                .find(|f| f["name"] == name)
                .map(|f| f["type"].as_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("no family {name} in {families:?}"))
        };
        assert_eq!(kind("switchyard_queue_jobs"), "gauge");
        assert_eq!(kind("switchyard_queue_oldest_ready_age_seconds"), "gauge");
        assert_eq!(kind("switchyard_jobs_succeeded"), "counter");
        assert_eq!(kind("switchyard_job_duration_seconds"), "histogram");
        assert_eq!(kind("http_request_duration_seconds"), "histogram");
        assert_eq!(kind("process_cpu_seconds"), "counter");
        assert_eq!(kind("process_resident_memory_bytes"), "gauge");
        drop(client);
    });

    app.signal(libc::SIGTERM);
    let status = app.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", app.output());
}
