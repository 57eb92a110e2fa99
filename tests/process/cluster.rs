//! Redis Cluster while it changes: a queue's slot moves to another master and back, with
//! `redis-cli --cluster reshard`, while a worker drains the queue and a client keeps
//! enqueueing, and no job is lost or left behind.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use switchyard::queue::{NewJob, Queues};

use crate::common::{Process, TestDb, cluster_seeds, environment, server_redis_url, settings};

/// A Redis Cluster key's slot: CRC16 (XMODEM) of its hash tag, modulo 16384.
fn slot(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for byte in tag.bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// `host:port` of the first seed.
fn first_seed() -> String {
    let seeds = cluster_seeds();
    let first = seeds.split(',').next().unwrap();
    first.trim_start_matches("redis://").to_owned()
}

fn redis_cli(args: &[&str]) -> String {
    let (host, port) = first_seed()
        .split_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let out = Command::new("redis-cli")
        .args(["-h", &host, "-p", &port])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The id of the master that serves `slot`, and of another master.
fn owner_and_other(slot: u16) -> (String, String) {
    let mut owner = None;
    let mut others = Vec::new();
    for line in redis_cli(&["cluster", "nodes"]).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 || !fields[2].contains("master") {
            continue;
        }
        let serves = fields[8..].iter().any(|range| {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
        });
        if serves {
            owner = Some(fields[0].to_owned());
        } else {
            others.push(fields[0].to_owned());
        }
    }
    (owner.expect("a master serves the slot"), others.remove(0))
}

/// Moves the lowest slot of `from` (redis-cli's choice) to `to`.
fn reshard(from: &str, to: &str) -> String {
    let out = Command::new("redis-cli")
        .args([
            "--cluster",
            "reshard",
            &first_seed(),
            "--cluster-from",
            from,
            "--cluster-to",
            to,
            "--cluster-slots",
            "1",
            "--cluster-yes",
        ])
        .output()
        .expect("redis-cli runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("ERR"),
        "reshard failed:\n{text}"
    );
    text
}

fn job(queue: &str, key: Option<String>) -> NewJob {
    NewJob {
        queue: queue.into(),
        kind: "noop".into(),
        payload: serde_json::value::to_raw_value(&serde_json::json!({"sleep_ms": 20})).unwrap(),
        run_at_ms: None,
        max_attempts: 5,
        timeout: Duration::from_secs(60),
        idempotency_key: key,
        idempotency_window: None,
        retention: None,
    }
}

#[test]
fn moving_a_queues_slot_to_another_master_and_back_while_it_drains_loses_no_job() {
    // A queue whose keys are in slot 0: the lowest slot of its master, which is the one
    // `redis-cli --cluster reshard` moves first.
    let queue = (0..)
        .map(|n| format!("moving{n}"))
        .find(|name| slot(&format!("q:{name}")) == 0)
        .unwrap();
    let (owner, other) = owner_and_other(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env: BTreeMap<String, String> = environment(&db.url, &server_redis_url());
    env.insert("REDIS_CLUSTER_URLS".into(), cluster_seeds());
    env.insert("JOBS_QUEUES".into(), format!("default,{queue}"));
    env.insert("WORKER_QUEUES".into(), queue.clone());
    env.insert("WORKER_CONCURRENCY".into(), "16".into());
    let config = settings(env.clone());
    let redis = rt
        .block_on(switchyard::redis::connect(
            &config.redis,
            Duration::from_secs(5),
        ))
        .unwrap();
    let queues = {
        let _runtime = rt.enter();
        Queues::new(
            redis.multiplexed(&config.redis, 2).unwrap(),
            &config.redis.key_prefix,
            &config.jobs.queues,
            Duration::from_secs(600),
            Duration::from_secs(3600),
        )
    };
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..6 {
        let batch: Vec<NewJob> = (0..500).map(|_| job(&queue, None)).collect();
        let made = rt
            .block_on(queues.enqueue_batch(&batch, switchyard::queue::now_ms()))
            .unwrap();
        ids.extend(made.into_iter().map(|e| e.id));
    }
    let worker = Process::start(&["worker"], &env);

    // A client keeps enqueueing through the migrations, each job under an idempotency
    // key so that a call retried after an error cannot make it twice.
    let enqueuer = {
        let queues = queues.clone();
        let queue = queue.clone();
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            let mut made = Vec::new();
            for n in 0..1_000 {
                let job = job(&queue, Some(format!("client-{n}")));
                let started = Instant::now();
                let id = loop {
                    match handle.block_on(queues.enqueue(&job, switchyard::queue::now_ms())) {
                        Ok(enqueued) => break enqueued.id,
                        Err(error) => {
                            assert!(started.elapsed() < Duration::from_secs(60), "{error:#}");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                };
                made.push(id);
                std::thread::sleep(Duration::from_millis(3));
            }
            made
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    reshard(&owner, &other);
    let (moved_to, _) = owner_and_other(0);
    std::thread::sleep(Duration::from_millis(300));
    reshard(&other, &owner);
    let (back_on, _) = owner_and_other(0);
    ids.extend(enqueuer.join().unwrap());

    let deadline = Instant::now() + Duration::from_secs(120);
    let states = loop {
        let states: Vec<String> = ids
            .iter()
            .map(|id| {
                rt.block_on(queues.get_in(&queue, id))
                    .unwrap()
                    .map_or_else(|| "missing".to_owned(), |job| job.state)
            })
            .collect();
        if states.iter().all(|s| s == "succeeded") || Instant::now() > deadline {
            break states;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for state in &states {
        *tally.entry(state.as_str()).or_default() += 1;
    }

    assert_eq!(
        moved_to, other,
        "the queue's slot moved to the other master"
    );
    assert_eq!(back_on, owner, "and back");
    assert_eq!(
        tally,
        BTreeMap::from([("succeeded", ids.len())]),
        "every job ran to success; worker output:\n{}",
        worker.output()
    );
    let counts = rt
        .block_on(queues.counts(std::slice::from_ref(&queue), switchyard::queue::now_ms()))
        .unwrap();
    assert_eq!(
        (
            counts[0].ready,
            counts[0].scheduled,
            counts[0].running,
            counts[0].retrying
        ),
        (0, 0, 0, 0)
    );
    let parked: u64 = rt.block_on(async {
        let mut conn = redis.get().await.unwrap();
        deadpool_redis::redis::cmd("ZCARD")
            .arg(format!("{}{{q:{queue}}}:limbo", config.redis.key_prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(parked, 0, "no id is left waiting for its record");
}
