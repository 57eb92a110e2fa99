//! The Redis job queue's operations against a real Redis. Time is passed in, so the tests
//! step the clock instead of sleeping.

use std::time::Duration;

use switchyard::queue::{Done, Leased, NewJob, Queues};

use crate::common::{RedisKeys, test_queues, test_redis};

const T0: i64 = 1_900_000_000_000;
const LEASE: Duration = Duration::from_secs(1);

/// A queue over its own key prefix, and the guard that deletes those keys afterwards.
async fn queues() -> (Queues, RedisKeys) {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let queues = test_queues(&prefix, Duration::from_secs(60)).await;
    (queues, RedisKeys(prefix))
}

fn job(kind: &str) -> NewJob {
    NewJob {
        queue: "default".into(),
        kind: kind.into(),
        payload: serde_json::value::RawValue::from_string(r#"{"n":1}"#.into()).unwrap(),
        run_at_ms: None,
        max_attempts: 3,
        timeout: Duration::from_secs(15),
        idempotency_key: None,
        idempotency_window: None,
        retention: None,
    }
}

#[tokio::test]
async fn an_enqueued_job_is_leased_once_and_finished_by_its_ack() {
    let (q, _keys) = queues().await;
    let enqueued = q.enqueue(&job("mail"), T0).await.unwrap();

    let first = q.fetch("default", "w1", 10, LEASE, T0).await.unwrap().jobs;
    let again = q
        .fetch("default", "w2", 10, LEASE, T0 + 10)
        .await
        .unwrap()
        .jobs;
    let acked = q
        .ack("default", "w1", &[first[0].done()], T0 + 20)
        .await
        .unwrap();

    assert!(enqueued.created);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, enqueued.id);
    assert_eq!(first[0].kind, "mail");
    assert_eq!(first[0].payload, r#"{"n":1}"#);
    assert_eq!((first[0].attempt, first[0].max_attempts), (1, 3));
    assert!(again.is_empty(), "a leased job was handed out twice");
    assert_eq!(acked, 1);
    assert_eq!(
        q.state(&enqueued.id).await.unwrap().as_deref(),
        Some("succeeded")
    );
}

#[tokio::test]
async fn a_batch_longer_than_one_push_lands_whole_with_its_ready_jobs_in_order() {
    let (q, _keys) = queues().await;
    // 2500 jobs, every third due within the first lease: 1667 ready ids and 833 delayed
    // pairs, each more than the script pushes in one call.
    let jobs: Vec<NewJob> = (0..2500)
        .map(|i| NewJob {
            run_at_ms: (i % 3 == 2).then_some(T0 + 500),
            ..job("noop")
        })
        .collect();
    let enqueued = q.enqueue_batch(&jobs, T0).await.unwrap();
    let ids = |pick: fn(usize) -> bool| -> Vec<String> {
        enqueued
            .iter()
            .enumerate()
            .filter(|(i, _)| pick(*i))
            .map(|(_, e)| e.id.clone())
            .collect()
    };

    let ready = q
        .fetch("default", "w1", 5000, LEASE, T0)
        .await
        .unwrap()
        .jobs;
    let due = q
        .fetch("default", "w1", 5000, LEASE, T0 + 500)
        .await
        .unwrap()
        .jobs;

    assert!(enqueued.iter().all(|e| e.created));
    let ready: Vec<String> = ready.into_iter().map(|j| j.id).collect();
    assert_eq!(
        ready,
        ids(|i| i % 3 != 2),
        "the ready jobs, in the batch's order"
    );
    let mut due: Vec<String> = due.into_iter().map(|j| j.id).collect();
    let mut delayed = ids(|i| i % 3 == 2);
    due.sort();
    delayed.sort();
    assert_eq!(due, delayed, "every delayed job, once due");
}

#[tokio::test]
async fn jobs_are_fetched_oldest_first_in_batches() {
    let (q, _keys) = queues().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(q.enqueue(&job("noop"), T0 + i).await.unwrap().id);
    }

    let batch = q
        .fetch("default", "w1", 3, LEASE, T0 + 10)
        .await
        .unwrap()
        .jobs;
    let rest = q
        .fetch("default", "w1", 3, LEASE, T0 + 10)
        .await
        .unwrap()
        .jobs;

    let got: Vec<_> = batch.iter().chain(&rest).map(|j| j.id.clone()).collect();
    assert_eq!(batch.len(), 3);
    assert_eq!(got, ids);
}

#[tokio::test]
async fn a_delayed_job_is_not_fetched_before_its_time() {
    let (q, _keys) = queues().await;
    let mut delayed = job("report");
    delayed.run_at_ms = Some(T0 + 10_000);
    let enqueued = q.enqueue(&delayed, T0).await.unwrap();

    let early = q
        .fetch("default", "w1", 10, LEASE, T0 + 9_999)
        .await
        .unwrap()
        .jobs;
    let state_before = q.state(&enqueued.id).await.unwrap();
    let on_time = q
        .fetch("default", "w1", 10, LEASE, T0 + 10_000)
        .await
        .unwrap()
        .jobs;

    assert!(early.is_empty());
    assert_eq!(state_before.as_deref(), Some("scheduled"));
    assert_eq!(on_time.len(), 1);
}

#[tokio::test]
async fn a_job_whose_lease_ran_out_runs_again_and_the_old_worker_cannot_finish_it() {
    let (q, _keys) = queues().await;
    let id = q.enqueue(&job("slow"), T0).await.unwrap().id;
    q.fetch("default", "dead-worker", 10, LEASE, T0)
        .await
        .unwrap();

    let before_expiry = q
        .fetch("default", "w2", 10, LEASE, T0 + 999)
        .await
        .unwrap()
        .jobs;
    let recovered = q
        .fetch("default", "w2", 10, LEASE, T0 + 1_001)
        .await
        .unwrap()
        .jobs;
    let stale_ack = q
        .ack("default", "dead-worker", &[recovered[0].done()], T0 + 1_100)
        .await
        .unwrap();
    let ack = q
        .ack("default", "w2", &[recovered[0].done()], T0 + 1_200)
        .await
        .unwrap();

    assert!(before_expiry.is_empty());
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, id);
    assert_eq!(
        recovered[0].attempt, 1,
        "a lost worker does not use up an attempt"
    );
    assert_eq!(
        stale_ack, 0,
        "a worker that lost its lease finished the job"
    );
    assert_eq!(ack, 1);
}

#[tokio::test]
async fn extending_a_lease_keeps_a_long_job_from_running_twice() {
    let (q, _keys) = queues().await;
    let id = q.enqueue(&job("long"), T0).await.unwrap().id;
    q.fetch("default", "w1", 10, LEASE, T0).await.unwrap();

    let ids = std::slice::from_ref(&id);
    let extended = q
        .extend("default", "w1", ids, LEASE, T0 + 900)
        .await
        .unwrap();
    let stranger = q
        .extend("default", "w2", ids, LEASE, T0 + 900)
        .await
        .unwrap();
    let taken = q
        .fetch("default", "w2", 10, LEASE, T0 + 1_500)
        .await
        .unwrap()
        .jobs;
    let after = q
        .fetch("default", "w2", 10, LEASE, T0 + 1_901)
        .await
        .unwrap()
        .jobs;

    assert!(extended.is_empty());
    assert_eq!(
        stranger,
        std::slice::from_ref(&id),
        "another worker extended a lease it does not hold"
    );
    assert!(taken.is_empty(), "the extended lease was not honoured");
    assert_eq!(
        after.len(),
        1,
        "the job returns once the extended lease ends too"
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_job_and_makes_no_second() {
    let (q, _keys) = queues().await;
    let mut keyed = job("charge");
    keyed.idempotency_key = Some("order-42".into());

    let first = q.enqueue(&keyed, T0).await.unwrap();
    let second = q.enqueue(&keyed, T0 + 5).await.unwrap();
    let fetched = q
        .fetch("default", "w1", 10, LEASE, T0 + 10)
        .await
        .unwrap()
        .jobs;

    assert!(first.created);
    assert!(!second.created);
    assert_eq!(second.id, first.id);
    assert_eq!(fetched.len(), 1);
}

#[tokio::test]
async fn concurrent_enqueues_share_calls_yet_each_gets_its_own_answer() {
    let (q, _keys) = queues().await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..600 {
        let q = q.clone();
        calls.spawn(async move {
            let mut one = job("mail");
            one.queue = ["default", "other"][i % 2].into();
            // Every fifth job repeats one of four keys per queue.
            if i % 5 == 0 {
                one.idempotency_key = Some(format!("k{}", i % 4));
            }
            let due = T0 + (i % 3) as i64 * 1000;
            one.run_at_ms = Some(due);
            (i, q.enqueue(&one, T0).await.unwrap())
        });
    }
    let answers = calls.join_all().await;
    let created: Vec<_> = answers.iter().filter(|(_, e)| e.created).collect();
    let mut ids: Vec<&str> = created.iter().map(|(_, e)| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let keyed = |queue: usize, key: usize| {
        answers
            .iter()
            .filter(move |(i, _)| i % 5 == 0 && i % 2 == queue && i % 4 == key)
    };
    let mut leased = 0;
    for queue in ["default", "other"] {
        leased += q
            .fetch(queue, "w1", 1000, LEASE, T0 + 5000)
            .await
            .unwrap()
            .jobs
            .len();
    }

    // 120 keyed jobs over 4 keys per queue: keys 0 and 2 only meet even i (default),
    // keys 1 and 3 odd i (critical), so four distinct keyed jobs in all.
    assert_eq!(created.len(), 480 + 4);
    assert_eq!(ids.len(), created.len(), "two callers got the same new job");
    for (queue, key) in [(0, 0), (0, 2), (1, 1), (1, 3)] {
        let mut same: Vec<&str> = keyed(queue, key).map(|(_, e)| e.id.as_str()).collect();
        same.dedup();
        assert_eq!(same.len(), 1, "one key made more than one job");
    }
    assert_eq!(
        leased,
        created.len(),
        "every job answered as made is in Redis"
    );
    for (i, enqueued) in answers.iter().filter(|(i, e)| e.created && i % 3 == 2) {
        let record = q.get(&enqueued.id).await.unwrap().unwrap();
        assert_eq!(record.run_at_ms, T0 + 2000, "job {i} kept its own due time");
        assert_eq!(record.created_ms, T0);
    }
}

#[tokio::test]
async fn a_fetch_that_skips_the_sweep_leaves_due_jobs_for_the_next_one_that_sweeps() {
    let (q, _keys) = queues().await;
    let mut delayed = job("later");
    delayed.run_at_ms = Some(T0 + 100);
    let delayed = q.enqueue(&delayed, T0).await.unwrap().id;
    for _ in 0..3 {
        q.enqueue(&job("now"), T0).await.unwrap();
    }

    let unswept = q
        .fetch_swept("default", "w1", 2, LEASE, T0 + 200, false)
        .await
        .unwrap()
        .jobs;
    let still = q.state(&delayed).await.unwrap();
    let swept = q
        .fetch_swept("default", "w1", 10, LEASE, T0 + 200, true)
        .await
        .unwrap()
        .jobs;

    let kinds = |jobs: &[Leased]| jobs.iter().map(|j| j.kind.clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&unswept), ["now", "now"]);
    assert_eq!(still.as_deref(), Some("scheduled"));
    assert_eq!(kinds(&swept), ["now", "later"]);
}

#[tokio::test]
async fn a_failed_attempt_waits_for_its_retry_time_and_the_last_one_is_dead() {
    let (q, _keys) = queues().await;
    let id = q.enqueue(&job("flaky"), T0).await.unwrap().id;
    q.fetch("default", "w1", 10, LEASE, T0).await.unwrap();

    let recorded = q
        .fail("default", "w1", &id, "boom", Some(T0 + 500), T0 + 10)
        .await
        .unwrap();
    let retrying = q.state(&id).await.unwrap();
    let too_soon = q
        .fetch("default", "w1", 10, LEASE, T0 + 499)
        .await
        .unwrap()
        .jobs;
    let retried = q
        .fetch("default", "w1", 10, LEASE, T0 + 500)
        .await
        .unwrap()
        .jobs;
    let stranger = q
        .fail("default", "w9", &id, "not mine", None, T0 + 600)
        .await
        .unwrap();
    q.fail("default", "w1", &id, "boom again", None, T0 + 700)
        .await
        .unwrap();

    assert_eq!(recorded.as_deref(), Some("retrying"));
    assert_eq!(retrying.as_deref(), Some("retrying"));
    assert!(too_soon.is_empty());
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempt, 2);
    assert_eq!(stranger, None);
    let dead = q.get(&id).await.unwrap().unwrap();
    assert_eq!(dead.state, "dead");
    let errors: Vec<_> = dead
        .errors
        .iter()
        .map(|e| (e.attempt, e.error.as_str()))
        .collect();
    assert_eq!(errors, [(1, "boom"), (2, "boom again")]);
    let outbox = q.dead_outbox_batch("default", 10).await.unwrap();
    assert_eq!(
        outbox.len(),
        1,
        "the dead job waits in the outbox for Postgres"
    );
}

#[tokio::test]
async fn handing_back_a_lease_makes_the_job_ready_at_once_without_using_an_attempt() {
    let (q, _keys) = queues().await;
    let id = q.enqueue(&job("interrupted"), T0).await.unwrap().id;
    q.fetch("default", "stopping", 10, LEASE, T0).await.unwrap();

    let by_stranger = q
        .release("default", "other", std::slice::from_ref(&id))
        .await
        .unwrap();
    let released = q
        .release("default", "stopping", std::slice::from_ref(&id))
        .await
        .unwrap();
    let again = q
        .fetch("default", "w2", 10, LEASE, T0 + 1)
        .await
        .unwrap()
        .jobs;

    assert_eq!(by_stranger, 0);
    assert_eq!(released, 1);
    assert_eq!(
        again.len(),
        1,
        "the job did not wait for its lease to run out"
    );
    assert_eq!(
        again[0].attempt, 1,
        "the interrupted run counted as an attempt"
    );
}

#[tokio::test]
async fn a_job_that_has_not_started_can_be_cancelled_but_a_running_one_cannot() {
    let (q, _keys) = queues().await;
    let waiting = q.enqueue(&job("later"), T0).await.unwrap().id;
    let mut delayed = job("delayed");
    delayed.run_at_ms = Some(T0 + 60_000);
    let scheduled = q.enqueue(&delayed, T0).await.unwrap().id;
    let running = q.enqueue(&job("now"), T0).await.unwrap().id;
    // Lease the first two ready jobs, then hand one back so only `running` runs.
    let leased = q.fetch("default", "w1", 2, LEASE, T0).await.unwrap().jobs;
    q.release("default", "w1", std::slice::from_ref(&leased[0].id))
        .await
        .unwrap();

    let cancel_waiting = q.cancel(&waiting, T0 + 1).await.unwrap();
    let cancel_scheduled = q.cancel(&scheduled, T0 + 1).await.unwrap();
    let cancel_running = q.cancel(&running, T0 + 1).await.unwrap();
    let cancel_missing = q
        .cancel(&switchyard::queue::new_id(), T0 + 1)
        .await
        .unwrap();
    let left = q
        .fetch("default", "w2", 10, LEASE, T0 + 500)
        .await
        .unwrap()
        .jobs;

    use switchyard::queue::Cancel;
    assert_eq!(cancel_waiting, Cancel::Cancelled);
    assert_eq!(cancel_scheduled, Cancel::Cancelled);
    assert_eq!(cancel_running, Cancel::TooLate("running".into()));
    assert_eq!(cancel_missing, Cancel::NotFound);
    assert!(left.is_empty(), "a cancelled job still ran: {left:?}");
    assert_eq!(
        q.state(&waiting).await.unwrap().as_deref(),
        Some("cancelled")
    );
    let after_due = q
        .fetch("default", "w2", 10, LEASE, T0 + 60_000)
        .await
        .unwrap()
        .jobs;
    assert!(
        after_due.iter().all(|j| j.id != scheduled),
        "a cancelled delayed job ran at its time"
    );
}

#[tokio::test]
async fn a_lapsed_lease_refunds_the_attempt_and_a_third_lapse_makes_the_job_dead() {
    let (q, _keys) = queues().await;
    let mut once = job("fragile");
    once.max_attempts = 1;
    let id = q.enqueue(&once, T0).await.unwrap().id;

    let mut seen = Vec::new();
    for round in 0..3 {
        let at = T0 + round * 2_000;
        let leased = q
            .fetch("default", "crashing", 10, LEASE, at)
            .await
            .unwrap()
            .jobs;
        seen.push(leased.iter().map(|j| j.attempt).collect::<Vec<_>>());
    }
    let after = q
        .fetch("default", "w2", 10, LEASE, T0 + 6_000)
        .await
        .unwrap()
        .jobs;

    let record = q.get(&id).await.unwrap().unwrap();
    assert_eq!(
        seen,
        [vec![1], vec![1], vec![1]],
        "a lost worker did not use up the attempt"
    );
    assert!(
        after.is_empty(),
        "a job that outlived three workers ran again"
    );
    assert_eq!(record.state, "dead");
    assert!(record.last_error.unwrap().contains("3 times"));
    assert_eq!(record.errors.len(), 3, "each lapse is in the history");
}

#[tokio::test]
async fn a_batch_enqueue_keeps_input_order_across_queues_and_repeated_keys() {
    let (q, _keys) = queues().await;
    let mut a = job("a");
    a.idempotency_key = Some("k".into());
    let mut b = job("b");
    b.queue = "other".into();
    let jobs = [a.clone(), b, a];

    let made = q.enqueue_batch(&jobs, T0).await.unwrap();
    let counts = q
        .counts(&["default".into(), "other".into()], T0)
        .await
        .unwrap();

    assert_eq!(made.len(), 3);
    assert!(made[0].created && made[1].created && !made[2].created);
    assert_eq!(
        made[2].id, made[0].id,
        "the repeated key returned the first job"
    );
    assert_eq!((counts[0].ready, counts[1].ready), (1, 1));
}

#[tokio::test]
async fn a_fetch_reports_when_the_next_delayed_job_comes_due() {
    let (q, _keys) = queues().await;
    let mut delayed = job("later");
    delayed.run_at_ms = Some(T0 + 7_000);
    q.enqueue(&delayed, T0).await.unwrap();

    let fetched = q.fetch("default", "w1", 10, LEASE, T0).await.unwrap();

    assert!(fetched.jobs.is_empty());
    assert_eq!(fetched.next_due_ms, Some(T0 + 7_000));
}

#[tokio::test]
async fn a_job_keeps_its_record_and_idempotency_key_for_its_own_times_when_it_names_them() {
    let (q, keys) = queues().await;
    let mut short = job("webhooks");
    short.retention = Some(Duration::from_secs(7));
    short.idempotency_key = Some("delivery-1".into());
    short.idempotency_window = Some(Duration::from_secs(11));
    let short = q.enqueue(&short, T0).await.unwrap().id;
    let default = q.enqueue(&job("mail"), T0).await.unwrap().id;
    let leased = q.fetch("default", "w1", 10, LEASE, T0).await.unwrap().jobs;
    let done: Vec<Done> = leased.iter().map(Leased::done).collect();
    q.ack("default", "w1", &done, T0 + 5).await.unwrap();

    let mut conn = test_redis().await.get().await.unwrap();
    let mut ttl = async |key: String| -> i64 {
        deadpool_redis::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    let short_ttl = ttl(format!("{}{{q:default}}:job:{short}", keys.0)).await;
    let default_ttl = ttl(format!("{}{{q:default}}:job:{default}", keys.0)).await;
    let key_ttl = ttl(format!("{}{{q:default}}:idem:delivery-1", keys.0)).await;
    assert!((1..=7).contains(&short_ttl), "{short_ttl}");
    assert!((8..=60).contains(&default_ttl), "{default_ttl}");
    assert!((8..=11).contains(&key_ttl), "{key_ttl}");
}

#[tokio::test]
async fn the_keda_example_scales_on_the_list_a_ready_job_of_the_default_queue_is_in() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/kubernetes/examples/keda-worker.yaml"),
    )
    .unwrap();
    let list = example
        .lines()
        .find_map(|l| l.trim().strip_prefix("listName:"))
        .expect("the example names a list")
        .trim()
        .trim_matches('"');
    // Written with the default prefix; this test's own prefix stands in for it.
    let key = list
        .strip_prefix("switchyard:")
        .expect("the example uses the default REDIS_KEY_PREFIX");
    let (q, _keys) = queues().await;
    q.enqueue(&job("mail"), T0).await.unwrap();

    let mut conn = test_redis().await.get().await.unwrap();
    let prefix = &_keys.0;
    let length: u64 = deadpool_redis::redis::cmd("LLEN")
        .arg(format!("{prefix}{key}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(length, 1, "{prefix}{key} holds the ready job");
}

/// The key of a job's record under this test's prefix.
fn record_key(keys: &RedisKeys, id: &str) -> String {
    format!("{}{{q:default}}:job:{id}", keys.0)
}

#[tokio::test]
async fn a_ready_job_whose_record_is_missing_waits_in_limbo_until_the_record_is_back() {
    use deadpool_redis::redis::AsyncCommands;
    let (q, keys) = queues().await;
    let id = q.enqueue(&job("mail"), T0).await.unwrap().id;
    let mut conn = test_redis().await.get().await.unwrap();
    // What a fetch on a cluster's importing node sees before the record has migrated.
    let record: Vec<(String, String)> = conn.hgetall(record_key(&keys, &id)).await.unwrap();
    let _: () = conn.del(record_key(&keys, &id)).await.unwrap();

    let while_missing = q.fetch("default", "w1", 10, LEASE, T0 + 1).await.unwrap();
    let parked: Option<i64> = conn
        .zscore(format!("{}{{q:default}}:limbo", keys.0), &id)
        .await
        .unwrap();
    let _: () = conn
        .hset_multiple(record_key(&keys, &id), &record)
        .await
        .unwrap();
    q.fetch("default", "w1", 10, LEASE, T0 + 2).await.unwrap();
    let once_back = q.fetch("default", "w1", 10, LEASE, T0 + 3).await.unwrap();

    assert!(while_missing.jobs.is_empty());
    assert_eq!(parked, Some(T0 + 1), "the id is parked, not dropped");
    let ids: Vec<&str> = once_back.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    assert_eq!(once_back.jobs[0].attempt, 1);
}

#[tokio::test]
async fn an_id_whose_record_never_comes_back_leaves_limbo_after_an_hour() {
    use deadpool_redis::redis::AsyncCommands;
    let (q, keys) = queues().await;
    let id = q.enqueue(&job("mail"), T0).await.unwrap().id;
    let mut conn = test_redis().await.get().await.unwrap();
    let _: () = conn.del(record_key(&keys, &id)).await.unwrap();
    let limbo = format!("{}{{q:default}}:limbo", keys.0);

    q.fetch("default", "w1", 10, LEASE, T0 + 1).await.unwrap();
    q.fetch("default", "w1", 10, LEASE, T0 + 3_600_000)
        .await
        .unwrap();
    let within_the_hour: u64 = conn.zcard(&limbo).await.unwrap();
    q.fetch("default", "w1", 10, LEASE, T0 + 3_600_002)
        .await
        .unwrap();
    let after_it: u64 = conn.zcard(&limbo).await.unwrap();

    assert_eq!(within_the_hour, 1);
    assert_eq!(after_it, 0);
}
