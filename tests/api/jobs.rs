//! The jobs and queues API without a worker: validation, state, cancel, counts and the
//! dead-job list. Every refusal is problem+json naming the field, and changes nothing.

use serde_json::json;

use crate::common::{TestApp, queue};

async fn app() -> TestApp {
    TestApp::spawn_with(
        |env| {
            env.insert("JOBS_MAX_PAYLOAD_BYTES".into(), "2048".into());
        },
        Default::default(),
    )
    .await
}

#[tokio::test]
async fn invalid_enqueues_get_422_naming_the_field_and_queue_nothing() {
    let app = app().await;
    let cases = [
        (json!({"kind": "noop", "queue": "nope"}), "queue"),
        (
            json!({"kind": "noop", "delay_seconds": -5}),
            "delay_seconds",
        ),
        (
            json!({"kind": "noop", "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}),
            "delay_seconds",
        ),
        (
            json!({"kind": "noop", "payload": {"blob": "x".repeat(4096)}}),
            "payload",
        ),
        (
            json!({"kind": "http", "payload": {"url": "ftp://example.com/x"}}),
            "payload.url",
        ),
        (
            json!({"kind": "http", "payload": {"url": "https://example.com", "method": "TRACE"}}),
            "payload.method",
        ),
        (
            json!({"kind": "http", "payload": {"url": "https://example.com", "headers": {"webhook-id": "x"}}}),
            "payload.headers.webhook-id",
        ),
        (
            json!({"kind": "mails", "payload": {"to": "not-an-address", "subject": "s", "text": "t"}}),
            "payload.to[0]",
        ),
        (json!({"kind": "noop", "max_attempts": 0}), "max_attempts"),
        (json!({"kind": "bad kind!"}), "kind"),
    ];
    for (body, field) in cases {
        let reply = app.admin("POST", "/api/v1/jobs", Some(body.clone())).await;
        let problem = reply.assert_problem(422, "validation_failed");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let counts = app.admin_get("/api/v1/queues").await.json();
    let queued: u64 = counts["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["ready"].as_u64().unwrap() + q["scheduled"].as_u64().unwrap())
        .sum();
    assert_eq!(queued, 0, "a refused enqueue queued something");
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_body_is_400_and_no_token_is_401() {
    let app = app().await;
    let auth = format!("Bearer {}", crate::common::ADMIN_TOKEN);
    let malformed = crate::common::call(
        "POST",
        &app.url("/api/v1/jobs"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(b"{\"kind\":".to_vec()),
    )
    .await;
    let anonymous = app.get("/api/v1/queues").await;

    malformed.assert_problem(400, "malformed_json");
    anonymous.assert_problem(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_with_one_bad_job_names_it_and_queues_none() {
    let app = app().await;
    let body = json!({"jobs": [{"kind": "noop"}, {"kind": "noop", "queue": "nope"}]});

    let reply = app.admin("POST", "/api/v1/jobs/batch", Some(body)).await;

    let problem = reply.assert_problem(422, "validation_failed");
    assert_eq!(problem["field"], "jobs[1].queue");
    let counts = app.admin_get("/api/v1/queues").await.json();
    let default = queue(&counts, "default");
    assert_eq!(default["ready"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_wrongly_typed_or_missing_field_is_named_by_its_json_path() {
    let app = app().await;
    let mut batch: Vec<_> = (0..1000).map(|_| json!({"kind": "noop"})).collect();
    batch[500]["run_at"] = json!("next tuesday");
    let cases = [
        (
            "/api/v1/jobs",
            json!({"kind": "noop", "delay_seconds": "soon"}),
            "delay_seconds",
        ),
        ("/api/v1/jobs", json!({"queue": "default"}), "kind"),
        (
            "/api/v1/jobs",
            json!({"kind": "noop", "colour": "red"}),
            "colour",
        ),
        (
            "/api/v1/jobs/batch",
            json!({"jobs": batch}),
            "jobs[500].run_at",
        ),
        (
            "/api/v1/jobs/batch",
            json!({"jobs": [{"kind": "noop"}, {"kind": 7}]}),
            "jobs[1].kind",
        ),
        (
            "/api/v1/realtime/publish",
            json!({"channel": 5, "event": "e"}),
            "channel",
        ),
        (
            "/api/v1/realtime/token",
            json!({"sub": "u", "channels": "files"}),
            "channels",
        ),
    ];

    for (path, body, field) in cases {
        let reply = app.admin("POST", path, Some(body)).await;

        let problem = reply.assert_problem(422, "validation_failed");
        assert_eq!(problem["field"], field, "{path}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field}: ")), "{detail}");
        assert!(!detail.contains(" line "), "{detail}");
    }
    let counts = app.admin_get("/api/v1/queues").await.json();
    assert_eq!(queue(&counts, "default")["ready"], 0);
    app.stop().await;
}

#[tokio::test]
async fn the_accepted_answer_is_the_job_as_a_read_returns_it() {
    let app = app().await;
    let mut answers = Vec::new();
    for body in [
        json!({"kind": "noop", "queue": "default", "payload": {"n": 1.50, "s": "é"}}),
        json!({"kind": "noop", "delay_seconds": 60, "max_attempts": 2, "timeout_seconds": 9}),
    ] {
        let accepted = app.admin("POST", "/api/v1/jobs", Some(body)).await;
        assert_eq!(accepted.status, 202, "{}", accepted.body);
        answers.push(accepted.json());
    }

    for mut answer in answers {
        let id = answer["id"].as_str().unwrap().to_owned();
        let read = app.admin_get(&format!("/api/v1/jobs/{id}")).await.json();
        assert_eq!(answer["created"], true);
        answer.as_object_mut().unwrap().remove("created");
        assert_eq!(answer, read, "the 202 differs from the stored job");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_queued_job_can_be_read_and_cancelled_once() {
    let app = app().await;
    let job = app
        .admin(
            "POST",
            "/api/v1/jobs",
            Some(json!({"kind": "noop", "delay_seconds": 60})),
        )
        .await
        .json();
    let id = job["id"].as_str().unwrap();

    let read = app.admin_get(&format!("/api/v1/jobs/{id}")).await.json();
    let counts = app.admin_get("/api/v1/queues").await.json();
    let cancelled = app
        .admin("DELETE", &format!("/api/v1/jobs/{id}"), None)
        .await;
    let again = app
        .admin("DELETE", &format!("/api/v1/jobs/{id}"), None)
        .await;
    let unknown = app
        .admin_get("/api/v1/jobs/0191d5b0-0000-7000-8000-000000000000")
        .await;
    let garbage = app.admin_get("/api/v1/jobs/not-an-id").await;

    assert_eq!(
        (read["state"].as_str(), read["queue"].as_str()),
        (Some("scheduled"), Some("default"))
    );
    assert_eq!(read["max_attempts"], 5, "jobs.max_attempts applies");
    let default = queue(&counts, "default");
    assert_eq!(default["scheduled"], 1);
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.json()["state"], "cancelled");
    again.assert_problem(409, "conflict");
    unknown.assert_problem(404, "not_found");
    garbage.assert_problem(404, "not_found");
    app.stop().await;
}

#[tokio::test]
async fn dead_jobs_page_with_a_cursor_and_can_be_deleted() {
    let app = app().await;
    let pool = app.db.pool().await;
    let mut ids = Vec::new();
    for minutes in [3, 2, 1] {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts, timeout_ms, last_error, created_at, died_at)
             VALUES ($1, 'default', 'noop', '{}', 5, 5, 1000, 'gave up', now(), now() - make_interval(mins => $2))",
        )
        .bind(id)
        .bind(minutes)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id.to_string());
    }

    let first = app
        .admin_get("/api/v1/queues/default/dead?limit=2")
        .await
        .json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .admin_get(&format!(
            "/api/v1/queues/default/dead?limit=2&cursor={cursor}"
        ))
        .await
        .json();
    let bad_cursor = app
        .admin_get("/api/v1/queues/default/dead?cursor=zzz")
        .await;
    let unknown_queue = app.admin_get("/api/v1/queues/nope/dead").await;
    let deleted = app
        .admin(
            "DELETE",
            &format!("/api/v1/queues/default/dead/{}", ids[0]),
            None,
        )
        .await;
    let deleted_again = app
        .admin(
            "DELETE",
            &format!("/api/v1/queues/default/dead/{}", ids[0]),
            None,
        )
        .await;
    let counts = app.admin_get("/api/v1/queues").await.json();

    let page: Vec<_> = first["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["jobs"].as_array().unwrap())
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        page,
        [ids[2].clone(), ids[1].clone(), ids[0].clone()],
        "newest first, no gap or repeat"
    );
    assert!(second["next_cursor"].is_null());
    assert_eq!(first["jobs"][0]["state"], "dead");
    bad_cursor.assert_problem(422, "validation_failed");
    unknown_queue.assert_problem(404, "not_found");
    assert_eq!(deleted.status, 204);
    deleted_again.assert_problem(404, "not_found");
    let default = queue(&counts, "default");
    assert_eq!(default["dead"], 2);
    app.stop().await;
}
