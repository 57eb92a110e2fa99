//! The Switchyard side of the job benchmark (bench/jobs.sh): enqueues no-op jobs through
//! the library, then reads the jobs' own timestamps back from Redis to report drain
//! throughput and enqueue-to-start latency. Prints one JSON object per command.
//!
//! driver enqueue <n> single|batch <ids-file>   enqueue n jobs, write their ids
//! driver wait <ids-file> <timeout-s>            wait until every job succeeded
//! driver settle <ids-file> <timeout-s>          wait until no job is pending, reading
//!                                               only the queues' counts, not each job
//! driver drain <ids-file>                       jobs/s from first start to last finish
//! driver steady <rate> <seconds> <ids-file>     enqueue at a steady rate
//! driver latency <ids-file>                     p50/p99 of start minus enqueue, in ms
//! driver crash <ids-file> <kill-times-file> <dead-in-postgres>
//!                                               lost jobs, repeated runs, recovery time
//!
//! SLEEP_MS in the environment makes each enqueued job sleep that long. QUEUES (comma-
//! separated, `default` unless set) spreads the jobs over those queues in turn.
//! REDIS_CLUSTER_URLS, when set, runs it against a Redis Cluster instead of REDIS_URL.
//! An ids file holds one `<queue> <id>` line per job.

use std::time::{Duration, Instant};

use deadpool_redis::redis;
use switchyard::config::{RedisSettings, SecretUrl};
use switchyard::queue::{NewJob, Queues, now_ms};
use switchyard::redis::Multiplexed;

fn noop_on(queue: &str) -> NewJob {
    NewJob {
        queue: queue.into(),
        kind: "noop".into(),
        payload: serde_json::value::to_raw_value(
            &serde_json::json!({"sleep_ms": env("SLEEP_MS", "0").parse::<u64>().unwrap_or(0)}),
        )
        .unwrap(),
        run_at_ms: None,
        max_attempts: 3,
        timeout: Duration::from_secs(60),
        idempotency_key: None,
        idempotency_window: None,
        retention: None,
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The queues jobs go to, in turn.
fn queue_names() -> Vec<String> {
    env("QUEUES", "default")
        .split(',')
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .collect()
}

/// The `i`th job: on the queues in turn.
fn noop_at(names: &[String], i: usize) -> NewJob {
    noop_on(&names[i % names.len()])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let prefix = env("REDIS_KEY_PREFIX", "bench:");
    let cluster_urls = env("REDIS_CLUSTER_URLS", "")
        .split(',')
        .filter(|u| !u.is_empty())
        .map(SecretUrl::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let settings = RedisSettings {
        url: SecretUrl::parse(&env("REDIS_URL", "redis://127.0.0.1:6379"))?,
        pool_size: 64,
        timeout_seconds: 5,
        key_prefix: prefix.clone(),
        cluster_urls,
    };
    let redis = switchyard::redis::connect(&settings, Duration::from_secs(5)).await?;
    let conn = redis.multiplexed(&settings, 2)?;
    let names = queue_names();
    let queues = Queues::new(
        conn.clone(),
        &prefix,
        &names,
        Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    match args.first().map(String::as_str) {
        Some("enqueue") => {
            let n: usize = args[1].parse()?;
            let began = Instant::now();
            let ids = if args[2] == "batch" {
                let mut ids = Vec::with_capacity(n);
                while ids.len() < n {
                    let take = (n - ids.len()).min(1000);
                    let batch: Vec<NewJob> = (ids.len()..ids.len() + take)
                        .map(|i| noop_at(&names, i))
                        .collect();
                    let made = queues.enqueue_batch(&batch, now_ms()).await?;
                    ids.extend(
                        batch
                            .iter()
                            .zip(made)
                            .map(|(job, e)| format!("{} {}", job.queue, e.id)),
                    );
                }
                ids
            } else {
                // One enqueue call per job, 64 in flight, as many API clients would.
                let mut tasks = Vec::new();
                for worker in 0..64 {
                    let queues = queues.clone();
                    let names = names.clone();
                    let share = n / 64 + usize::from(worker < n % 64);
                    tasks.push(tokio::spawn(async move {
                        let mut ids = Vec::with_capacity(share);
                        for i in 0..share {
                            let job = noop_at(&names, worker + i);
                            let id = queues.enqueue(&job, now_ms()).await?.id;
                            ids.push(format!("{} {id}", job.queue));
                        }
                        anyhow::Ok(ids)
                    }));
                }
                let mut ids = Vec::with_capacity(n);
                for task in tasks {
                    ids.extend(task.await??);
                }
                ids
            };
            let seconds = began.elapsed().as_secs_f64();
            std::fs::write(&args[3], ids.join("\n"))?;
            println!(
                "{}",
                serde_json::json!({"jobs": n, "seconds": seconds, "jobs_per_s": n as f64 / seconds})
            );
        }
        Some(phase @ ("wait" | "settle")) => {
            // Polls the queue's counts (four cheap commands) rather than every job, so the
            // wait does not load the Redis it measures; then checks every job once.
            let ids = read_ids(&args[1])?;
            let deadline = Instant::now() + Duration::from_secs(args[2].parse()?);
            loop {
                let counts = queues.counts(&names, now_ms()).await?;
                let c = &counts
                    .iter()
                    .map(|c| c.ready + c.scheduled + c.running + c.retrying)
                    .sum::<u64>();
                if *c == 0 {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "jobs still pending: {c:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if phase == "settle" {
                println!("{}", serde_json::json!({"settled": ids.len()}));
                return Ok(());
            }
            let done = count_state(&conn, &prefix, &ids, "succeeded").await?;
            anyhow::ensure!(done == ids.len(), "only {done} of {} succeeded", ids.len());
            println!("{}", serde_json::json!({"succeeded": ids.len()}));
        }
        Some("drain") => {
            let ids = read_ids(&args[1])?;
            let times = timestamps(&conn, &prefix, &ids).await?;
            let first = times.iter().map(|t| t.1).min().unwrap_or(0);
            let last = times.iter().map(|t| t.2).max().unwrap_or(0);
            let seconds = (last - first).max(1) as f64 / 1000.0;
            println!(
                "{}",
                serde_json::json!({"jobs": ids.len(), "seconds": seconds, "jobs_per_s": ids.len() as f64 / seconds})
            );
        }
        Some("steady") => {
            let rate: u64 = args[1].parse()?;
            let seconds: u64 = args[2].parse()?;
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let mut ids = Vec::new();
            for _ in 0..rate * seconds {
                tick.tick().await;
                let job = noop_at(&names, ids.len());
                let id = queues.enqueue(&job, now_ms()).await?.id;
                ids.push(format!("{} {id}", job.queue));
            }
            std::fs::write(&args[3], ids.join("\n"))?;
            println!("{}", serde_json::json!({"jobs": ids.len()}));
        }
        Some("latency") => {
            let ids = read_ids(&args[1])?;
            let mut waits: Vec<i64> = timestamps(&conn, &prefix, &ids)
                .await?
                .into_iter()
                .map(|(created, started, _)| started - created)
                .collect();
            waits.sort_unstable();
            let at = |q: f64| waits[((waits.len() as f64 * q) as usize).min(waits.len() - 1)];
            println!(
                "{}",
                serde_json::json!({"jobs": waits.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": waits.last()})
            );
        }
        Some("crash") => {
            let ids = read_ids(&args[1])?;
            let kills: Vec<i64> = std::fs::read_to_string(&args[2])?
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            let mut lost = 0;
            let mut dead = 0;
            let mut rerun_starts: Vec<i64> = Vec::new();
            let mut all_starts: Vec<i64> = Vec::new();
            let rows = fields(&conn, &prefix, &ids, &["state", "lapses", "started_ms"]).await?;
            for row in rows {
                let number = |i: usize| row[i].as_deref().and_then(|v| v.parse::<i64>().ok());
                let (lapses, started) = (number(1), number(2));
                match row[0].as_deref() {
                    Some("succeeded") => {}
                    // Dead by the three-lapses rule, still in Redis's outbox.
                    Some("dead") => dead += 1,
                    // Gone from Redis: moved to Postgres once dead, or lost.
                    _ => lost += 1,
                }
                all_starts.extend(started);
                if lapses.unwrap_or(0) > 0 {
                    rerun_starts.extend(started);
                }
            }
            // Jobs Postgres holds as dead are accounted for, not lost.
            let in_postgres: usize = args[3].trim().parse()?;
            dead += in_postgres;
            lost -= in_postgres.min(lost);
            // Per kill: how soon the restarted worker started a job, and how long until
            // the last job whose lease it stranded ran again (its final start, measured
            // from the latest kill before it).
            let first_after = |k: i64| {
                all_starts
                    .iter()
                    .filter(|&&s| s > k)
                    .min()
                    .map(|&s| (s - k) as f64 / 1000.0)
            };
            let back_to_work: Vec<Option<f64>> = kills.iter().map(|&k| first_after(k)).collect();
            let stranded_rerun: Vec<f64> = kills
                .iter()
                .enumerate()
                .map(|(i, &k)| {
                    let next = kills.get(i + 1).copied().unwrap_or(i64::MAX);
                    rerun_starts
                        .iter()
                        .filter(|&&s| s > k && s < next)
                        .map(|&s| (s - k) as f64 / 1000.0)
                        .fold(0.0, f64::max)
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "jobs": ids.len(), "lost": lost, "dead_after_three_lapses": dead,
                    "ran_again_after_a_kill": rerun_starts.len(), "kills": kills.len(),
                    "restart_to_first_job_s": back_to_work,
                    "stranded_jobs_rerun_within_s": stranded_rerun,
                })
            );
        }
        _ => anyhow::bail!("usage: see the comment at the top of bench/jobs/driver.rs"),
    }
    Ok(())
}

/// `(queue, id)` per line of an ids file.
fn read_ids(path: &str) -> anyhow::Result<Vec<(String, String)>> {
    std::fs::read_to_string(path)?
        .lines()
        .map(|line| {
            let (queue, id) = line
                .split_once(' ')
                .ok_or_else(|| anyhow::anyhow!("{path}: not a `<queue> <id>` line: {line}"))?;
            Ok((queue.to_owned(), id.to_owned()))
        })
        .collect()
}

/// The given fields of every job, in the ids' order: pipelines of one queue each (one
/// cluster slot), 5,000 jobs at a time.
async fn fields(
    conn: &Multiplexed,
    prefix: &str,
    ids: &[(String, String)],
    names: &[&str],
) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(5000) {
        let pipes: Vec<redis::Pipeline> = chunk
            .iter()
            .map(|(queue, id)| {
                let mut pipe = redis::pipe();
                pipe.cmd("HMGET")
                    .arg(format!("{prefix}{{q:{queue}}}:job:{id}"))
                    .arg(names);
                pipe
            })
            .collect();
        for reply in conn.pipelines(&pipes).await? {
            for value in reply {
                out.push(redis::from_redis_value(value)?);
            }
        }
    }
    Ok(out)
}

async fn count_state(
    conn: &Multiplexed,
    prefix: &str,
    ids: &[(String, String)],
    state: &str,
) -> anyhow::Result<usize> {
    let rows = fields(conn, prefix, ids, &["state"]).await?;
    Ok(rows
        .iter()
        .filter(|row| row[0].as_deref() == Some(state))
        .count())
}

/// (created, started, finished) in ms for each job.
async fn timestamps(
    conn: &Multiplexed,
    prefix: &str,
    ids: &[(String, String)],
) -> anyhow::Result<Vec<(i64, i64, i64)>> {
    let rows = fields(
        conn,
        prefix,
        ids,
        &["created_ms", "started_ms", "finished_ms"],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let number = |i: usize| {
                row[i]
                    .as_deref()
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            (number(0), number(1), number(2))
        })
        .collect())
}
