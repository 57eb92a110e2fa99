use std::collections::BTreeMap;

use crate::common::{TestDb, app, server_redis_url};

fn env_for(db: &TestDb) -> BTreeMap<String, String> {
    crate::common::environment(&db.url, &server_redis_url())
}

fn migrate(db: &TestDb, args: &[&str]) -> (i32, String) {
    let output = app()
        .arg("migrate")
        .args(args)
        .envs(env_for(db))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

async fn scalar<T>(db: &TestDb, sql: &'static str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let pool = db.pool().await;
    let value = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    value
}

#[test]
fn three_concurrent_migrate_runs_all_succeed_and_apply_each_migration_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::empty());

    let children: Vec<_> = (0..3)
        .map(|_| {
            app()
                .arg("migrate")
                .envs(env_for(&db))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();

    for output in &outputs {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let known = switchyard::db::migrator().iter().count() as i64;
    let rows: i64 = rt.block_on(scalar(&db, "SELECT count(*) FROM _sqlx_migrations"));
    let distinct: i64 = rt.block_on(scalar(
        &db,
        "SELECT count(DISTINCT version) FROM _sqlx_migrations",
    ));
    assert_eq!(rows, known);
    assert_eq!(distinct, known);
}

#[test]
fn migrate_is_idempotent_and_check_and_status_follow_the_state() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::empty());

    let (check_before, _) = migrate(&db, &["--check"]);
    let (_, status_before) = migrate(&db, &["--status"]);
    let (first, first_out) = migrate(&db, &[]);
    let (second, second_out) = migrate(&db, &[]);
    let (check_after, _) = migrate(&db, &["--check"]);
    let (_, status_after) = migrate(&db, &["--status"]);

    assert_eq!(check_before, 1, "pending migrations make --check fail");
    assert!(
        status_before.contains("pending") && status_before.contains("instances"),
        "{status_before}"
    );
    assert_eq!(first, 0, "{first_out}");
    assert!(first_out.contains("applied migrations"), "{first_out}");
    assert_eq!(second, 0, "{second_out}");
    assert!(second_out.contains("nothing to apply"), "{second_out}");
    assert_eq!(check_after, 0);
    assert!(
        status_after.contains("applied") && !status_after.contains("pending"),
        "{status_after}"
    );
}

#[test]
fn a_failed_migration_exits_non_zero_and_leaves_the_schema_as_it_was() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::empty());
    // An index that already has the name the first migration's last statement creates:
    // its CREATE TABLE succeeds, then CREATE INDEX fails and the whole migration must undo.
    rt.block_on(async {
        let pool = db.pool().await;
        sqlx::query("CREATE TABLE squatter (x int)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("CREATE INDEX instances_heartbeat_at_idx ON squatter (x)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });

    let (code, output) = migrate(&db, &[]);

    assert_ne!(code, 0, "{output}");
    assert!(output.contains("failed to apply migrations"), "{output}");
    let table: Option<String> = rt.block_on(scalar(&db, "SELECT to_regclass('instances')::text"));
    let recorded: i64 = rt.block_on(scalar(&db, "SELECT count(*) FROM _sqlx_migrations"));
    assert_eq!(
        table, None,
        "the failed migration's CREATE TABLE was rolled back"
    );
    assert_eq!(recorded, 0, "the failed migration is not recorded");
}

#[test]
fn a_migration_from_a_newer_release_does_not_block_an_older_binary() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    rt.block_on(async {
        let pool = db.pool().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', true, '\\x00', 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });

    let (code, output) = migrate(&db, &[]);
    let (_, status) = migrate(&db, &["--status"]);

    assert_eq!(code, 0, "{output}");
    assert!(
        status.contains("unknown") && status.contains("from the future"),
        "{status}"
    );
}
