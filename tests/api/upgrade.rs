//! Upgrading from the key layout before Redis Cluster support (`queue:<q>:*`, `job:<id>`,
//! one `dead` outbox): workers adopt what it holds, on one server, and lose nothing.

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands};
use switchyard::queue::{Adopted, NewJob, adopt_legacy};

use crate::common::{RedisKeys, test_queues, test_redis};

const T0: i64 = 1_900_000_000_000;
const LEASE: Duration = Duration::from_secs(60);

fn mail(idempotency_key: Option<&str>) -> NewJob {
    NewJob {
        queue: "default".into(),
        kind: "mail".into(),
        payload: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
        run_at_ms: None,
        max_attempts: 3,
        timeout: Duration::from_secs(15),
        idempotency_key: idempotency_key.map(str::to_owned),
        idempotency_window: None,
        retention: None,
    }
}

/// A job record as the old layout wrote it.
async fn old_job(conn: &mut switchyard::redis::Conn, prefix: &str, id: &str, state: &str) {
    let _: () = conn
        .hset_multiple(
            format!("{prefix}job:{id}"),
            &[
                ("queue", "default"),
                ("kind", "mail"),
                ("payload", "{}"),
                ("attempts", if state == "running" { "1" } else { "0" }),
                ("max_attempts", "3"),
                ("timeout_ms", "15000"),
                ("created_ms", "1899999990000"),
                ("run_at_ms", "1899999990000"),
                ("state", state),
            ],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_worker_adopts_every_job_of_the_old_key_layout_in_order_and_loses_none() {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let _keys = RedisKeys(prefix.clone());
    let q = test_queues(&prefix, Duration::from_secs(60)).await;
    let mut conn = test_redis().await.get().await.unwrap();
    let old = |part: &str| format!("{prefix}queue:default:{part}");
    for (id, state) in [
        ("a", "queued"),
        ("b", "queued"),
        ("c", "scheduled"),
        ("d", "running"),
        ("e", "running"),
        ("f", "dead"),
        ("g", "succeeded"),
    ] {
        old_job(&mut conn, &prefix, id, state).await;
    }
    let _: () = conn.rpush(old("ready"), &["a", "b"]).await.unwrap();
    let _: () = conn.zadd(old("scheduled"), "c", T0 + 5_000).await.unwrap();
    // d's worker is gone (its lease lapsed); e's still runs it on the old version.
    let _: () = conn.zadd(old("leased"), "d|old-1", T0 - 1).await.unwrap();
    let _: () = conn
        .zadd(old("leased"), "e|old-2", T0 + 60_000)
        .await
        .unwrap();
    let _: () = conn.rpush(format!("{prefix}dead"), "f").await.unwrap();
    let _: () = conn.set_ex(old("idem:order-7"), "a", 100).await.unwrap();
    // Enqueued by the new version before the adoption: it runs after the old jobs.
    let newer = q.enqueue(&mail(None), T0).await.unwrap().id;

    let adopted = adopt_legacy(&q, true, T0).await.unwrap();
    let again = adopt_legacy(&q, true, T0).await.unwrap();
    let fetched = q.fetch("default", "w1", 10, LEASE, T0).await.unwrap();
    let repeated = q.enqueue(&mail(Some("order-7")), T0).await.unwrap();
    let later = q
        .fetch("default", "w1", 10, LEASE, T0 + 5_000)
        .await
        .unwrap();
    let running_elsewhere = q.get("e").await.unwrap().unwrap();
    let finished = q.get("g").await.unwrap().unwrap();
    let dead = q.dead_outbox_batch("default", 10).await.unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}queue:*"))
        .query_async(&mut conn)
        .await
        .unwrap();

    assert_eq!(
        adopted,
        Adopted {
            jobs: 5,
            idempotency_keys: 1
        }
    );
    assert_eq!(again, Adopted::default());
    let order: Vec<&str> = fetched.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(order, ["d", "a", "b", newer.as_str()]);
    assert_eq!(fetched.jobs[0].attempt, 1, "the lapsed run is refunded");
    assert_eq!((repeated.id.as_str(), repeated.created), ("a", false));
    let later: Vec<&str> = later.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(later, ["c"]);
    assert_eq!(running_elsewhere.state, "running");
    assert_eq!(finished.state, "succeeded");
    let dead: Vec<&str> = dead.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(dead, ["f"]);
    assert_eq!(left, [old("leased")], "only the running lease stays behind");
}

#[tokio::test]
async fn a_scan_for_old_idempotency_keys_stops_once_one_finds_none() {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let _keys = RedisKeys(prefix.clone());
    let q = test_queues(&prefix, Duration::from_secs(60)).await;
    let mut conn = test_redis().await.get().await.unwrap();
    let old = |key: &str| format!("{prefix}queue:default:idem:{key}");
    let marker = format!("{prefix}legacy:idem-clean");
    let _: () = conn.set_ex(old("early"), "a", 100).await.unwrap();

    let found = adopt_legacy(&q, true, T0).await.unwrap();
    let marked_after_finding: bool = conn.exists(&marker).await.unwrap();
    let clean = adopt_legacy(&q, true, T0).await.unwrap();
    let marked_after_clean: bool = conn.exists(&marker).await.unwrap();
    // Written after a clean scan: later starts no longer walk the keyspace for it.
    let _: () = conn.set_ex(old("late"), "b", 100).await.unwrap();
    let skipped = adopt_legacy(&q, true, T0).await.unwrap();
    let late_left: bool = conn.exists(old("late")).await.unwrap();

    assert_eq!(found.idempotency_keys, 1);
    assert!(
        !marked_after_finding,
        "a scan that found keys must run again"
    );
    assert_eq!(clean, Adopted::default());
    assert!(marked_after_clean);
    assert_eq!(skipped, Adopted::default());
    assert!(late_left);
}
