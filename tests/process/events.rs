//! The events outbox across processes: an event made while Redis is down is delivered
//! once it is back, and a relay killed with SIGKILL mid-batch loses and duplicates
//! nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use switchyard::sealed::Sealer;
use switchyard::webhooks::endpoints::{self, EndpointInput};

use crate::common::proxy::{Mode, Proxy, upstream_of};
use crate::common::target::Target;
use crate::common::verify::verify;
use crate::common::{
    ADMIN_TOKEN, Process, RedisKeys, TestDb, blocking_call, environment, server_redis_url,
};

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A count from the test's database.
fn count(rt: &tokio::runtime::Runtime, db: &TestDb, sql: &str) -> i64 {
    rt.block_on(async {
        let pool = db.pool().await;
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    })
}

#[test]
fn an_event_made_while_redis_is_down_is_delivered_once_redis_is_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let proxy = rt.block_on(Proxy::start(upstream_of(&server_redis_url())));
    let mut env: BTreeMap<String, String> = environment(&db.url, &server_redis_url());
    env.insert("REDIS_URL".into(), proxy.url_for(&server_redis_url()));
    env.insert("EVENTS_RELAY_POLL_MS".into(), "200".into());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let app = Process::start(&["dev"], &env);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("authorization".to_owned(), auth.clone()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let target = Target::start(vec![]);
    let created = blocking_call(
        "POST",
        &app.url("/api/v1/webhooks"),
        &headers,
        Some(
            serde_json::json!({"url": target.url("/hook"), "event_types": ["files.*"]})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.json()["secret"].as_str().unwrap().to_owned();

    proxy.set(Mode::Cut);
    let upload = blocking_call(
        "POST",
        &app.url("/api/v1/files?name=during-the-outage.txt"),
        &[
            ("authorization".to_owned(), auth.clone()),
            ("content-type".to_owned(), "text/plain".to_owned()),
        ],
        Some(b"made while Redis was down".to_vec()),
    );
    assert_eq!(upload.status, 201, "{}", upload.body);
    std::thread::sleep(Duration::from_secs(2));
    assert!(target.received().is_empty(), "nothing can be delivered yet");
    assert_eq!(
        count(
            &rt,
            &db,
            "SELECT count(*) FROM events WHERE relayed_at IS NULL"
        ),
        1,
        "the event waits in the outbox"
    );

    proxy.set(Mode::Pass);
    wait_until(Duration::from_secs(60), "the webhook", || {
        !target.received().is_empty()
    });
    let got = target.received();
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "files.created");
    assert_eq!(body["data"]["name"], "during-the-outage.txt");
    assert_eq!(verify(&[(&secret, &got[0])]), [true]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(target.received().len(), 1, "delivered once");
    drop(app);
}

#[test]
fn a_relay_killed_mid_batch_loses_nothing_and_duplicates_nothing() {
    const EVENTS: i64 = 30_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("EVENTS_RELAY_BATCH".into(), "200".into());
    // The worker consumes no webhooks queue: its jobs stay in Redis to be counted.
    env.insert("WORKER_QUEUES".into(), "default".into());
    let prefix = env["REDIS_KEY_PREFIX"].clone();
    let _keys = RedisKeys(prefix.clone());
    let settings = crate::common::settings(env.clone());
    rt.block_on(async {
        let pool = db.pool().await;
        let input = EndpointInput {
            url: Some("https://example.com/hook".into()),
            event_types: Some(vec!["*".into()]),
            ..Default::default()
        };
        endpoints::create(&pool, &Sealer::new(&settings.encryption), input)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO events (id, type, source, time, data, actor)
             SELECT 'e' || n, 'load.test', 'test', now(), '{}', 'test'
             FROM generate_series(1, $1) AS n",
        )
        .bind(EVENTS)
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });

    let first = Process::start(&["worker"], &env);
    wait_until(Duration::from_secs(60), "the relay to start", || {
        count(
            &rt,
            &db,
            "SELECT count(*) FROM events WHERE relayed_at IS NOT NULL",
        ) > 1000
    });
    first.signal(libc::SIGKILL);
    let relayed_at_kill = count(
        &rt,
        &db,
        "SELECT count(*) FROM events WHERE relayed_at IS NOT NULL",
    );
    assert!(
        relayed_at_kill < EVENTS,
        "the relay finished before the kill; nothing was tested"
    );

    let _second = Process::start(&["worker"], &env);
    wait_until(
        Duration::from_secs(120),
        "every event relayed and enqueued",
        || {
            count(
                &rt,
                &db,
                "SELECT count(*) FROM events WHERE relayed_at IS NULL",
            ) == 0
                && count(
                    &rt,
                    &db,
                    "SELECT count(*) FROM events WHERE enqueued_at IS NULL",
                ) == 0
        },
    );
    assert_eq!(
        count(&rt, &db, "SELECT count(*) FROM webhook_deliveries"),
        EVENTS
    );
    assert_eq!(
        count(
            &rt,
            &db,
            "SELECT count(DISTINCT metadata->>'event_id') FROM audit_logs"
        ),
        EVENTS
    );
    assert_eq!(count(&rt, &db, "SELECT count(*) FROM audit_logs"), EVENTS);
    // Exactly one job per delivery in Redis.
    let queued: i64 = rt.block_on(async {
        let mut conn = crate::common::test_redis().await.get().await.unwrap();
        deadpool_redis::redis::cmd("LLEN")
            .arg(format!("{prefix}{{q:webhooks}}:ready"))
            .query_async(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(queued, EVENTS);
}
