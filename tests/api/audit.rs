//! The audit log's API: filters, newest-first pages with a cursor, refused filters that
//! name their field, and an NDJSON export that reads a range of any size a page at a time.

use serde_json::Value;

use crate::common::TestApp;

/// Writes audit rows as the `audits` job does: `(actor, action, resource_type,
/// resource_id, seconds after 2026-01-01T00:00:00Z)`.
async fn seed(app: &TestApp, rows: &[(&str, &str, &str, &str, i64)]) {
    let pool = app.db.pool().await;
    for (actor, action, kind, id, seconds) in rows {
        sqlx::query(
            "INSERT INTO audit_logs (id, actor, action, resource_type, resource_id, metadata,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, '{\"n\": 18446744073709551615}',
                 '2026-01-01T00:00:00Z'::timestamptz + make_interval(secs => $6))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(actor)
        .bind(action)
        .bind(kind)
        .bind(id)
        .bind(*seconds as f64)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

fn actions(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_audit_log_filters_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    seed(
        &app,
        &[
            ("admin", "files.created", "file", "f1", 10),
            ("admin", "files.deleted", "file", "f1", 20),
            ("system", "jobs.dead", "job", "j1", 30),
            ("admin", "files.created", "file", "f2", 40),
            ("admin", "files_created", "file", "f3", 50),
        ],
    )
    .await;

    let all = app.admin_get("/api/v1/audit").await.json();
    let files = app.admin_get("/api/v1/audit?action=files.").await.json();
    let f1 = app
        .admin_get("/api/v1/audit?resource_type=file&resource_id=f1")
        .await
        .json();
    let window = app
        .admin_get(
            "/api/v1/audit?actor=admin&since=2026-01-01T00:00:15Z&until=2026-01-01T00:00:45Z",
        )
        .await
        .json();
    let first = app.admin_get("/api/v1/audit?limit=2").await.json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .admin_get(&format!("/api/v1/audit?limit=2&cursor={cursor}"))
        .await
        .json();
    let cursor = second["next_cursor"].as_str().unwrap().to_owned();
    let last = app
        .admin_get(&format!("/api/v1/audit?limit=2&cursor={cursor}"))
        .await
        .json();

    assert_eq!(
        actions(&all),
        [
            "files_created",
            "files.created",
            "jobs.dead",
            "files.deleted",
            "files.created"
        ]
    );
    // `.` and `_` are literal in the prefix: files_created is not a files. action.
    assert_eq!(
        actions(&files),
        ["files.created", "files.deleted", "files.created"]
    );
    assert_eq!(actions(&f1), ["files.deleted", "files.created"]);
    assert_eq!(actions(&window), ["files.created", "files.deleted"]);
    assert_eq!(actions(&first), ["files_created", "files.created"]);
    assert_eq!(actions(&second), ["jobs.dead", "files.deleted"]);
    assert_eq!(actions(&last), ["files.created"]);
    assert!(last["next_cursor"].is_null());
    let entry = &all["entries"][0];
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["resource_id"], "f3");
    assert_eq!(entry["time"], "2026-01-01T00:00:50Z");
    assert_eq!(entry["metadata"]["n"].as_u64(), Some(u64::MAX));
    app.stop().await;
}

#[tokio::test]
async fn bad_audit_filters_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
        ("limit=0", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("actor=", "actor"),
    ] {
        let reply = app.admin_get(&format!("/api/v1/audit?{query}")).await;

        let problem = reply.assert_problem(422, "validation_failed");
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
    let paged_export = app.admin_get("/api/v1/audit/export?limit=10").await;
    assert_eq!(
        paged_export.assert_problem(422, "validation_failed")["field"],
        "limit"
    );
    let unknown = app.admin_get("/api/v1/audit?colour=red").await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let anonymous = app.get("/api/v1/audit").await;
    anonymous.assert_problem(401, "unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn an_export_streams_every_row_of_a_range_oldest_first_as_ndjson() {
    let app = TestApp::spawn().await;
    // More rows than one export page, so the export reads several.
    let rows: Vec<(String, i64)> = (0..1_234).map(|i| (format!("r{i}"), i)).collect();
    let pool = app.db.pool().await;
    sqlx::query(
        "INSERT INTO audit_logs (id, actor, action, resource_type, resource_id, created_at)
         SELECT gen_random_uuid(), 'system', 'bulk.made', 'row', 'r' || i,
                '2026-01-01T00:00:00Z'::timestamptz + make_interval(secs => i)
         FROM generate_series(0, 1233) AS i",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let whole = app.admin_get("/api/v1/audit/export").await;
    let range = app
        .admin_get("/api/v1/audit/export?since=2026-01-01T00:01:40Z&until=2026-01-01T00:01:50Z")
        .await;

    assert_eq!(whole.status, 200, "{}", whole.body);
    assert_eq!(whole.header("content-type"), Some("application/x-ndjson"));
    assert!(whole.body.ends_with('\n'));
    let ids: Vec<String> = whole
        .body
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["resource_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected, "every row once, oldest first");
    assert_eq!(range.body.lines().count(), 10, "{}", range.body);
    app.stop().await;
}
