//! The Switchyard side of the job benchmark (bench/jobs.sh): enqueues no-op jobs through
//! the library, then reads the jobs' own timestamps back from Redis to report drain
//! throughput and enqueue-to-start latency. Prints one JSON object per command.
//!
//! driver enqueue <n> single|batch <ids-file>   enqueue n jobs, write their ids
//! driver wait <ids-file> <timeout-s>            wait until every job succeeded
//! driver drain <ids-file>                       jobs/s from first start to last finish
//! driver steady <rate> <seconds> <ids-file>     enqueue at a steady rate
//! driver latency <ids-file>                     p50/p99 of start minus enqueue, in ms
//! driver crash <ids-file> <kill-times-file> <dead-in-postgres>
//!                                               lost jobs, repeated runs, recovery time
//!
//! SLEEP_MS in the environment makes each enqueued job sleep that long.

use std::time::{Duration, Instant};

use deadpool_redis::redis;
use switchyard::queue::{NewJob, Queues, now_ms};

fn noop() -> NewJob {
    NewJob {
        queue: "default".into(),
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = deadpool_redis::Config::from_url(env("REDIS_URL", "redis://127.0.0.1:6379"));
    config.pool = Some(deadpool_redis::PoolConfig::new(64));
    let pool = config.create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
    let prefix = env("REDIS_KEY_PREFIX", "bench:");
    let queues = Queues::connect(
        &env("REDIS_URL", "redis://127.0.0.1:6379"),
        Duration::from_secs(5),
        &prefix,
        Duration::from_secs(60),
        Duration::from_secs(3600),
    )
    .unwrap();
    match args.first().map(String::as_str) {
        Some("enqueue") => {
            let n: usize = args[1].parse()?;
            let began = Instant::now();
            let ids = if args[2] == "batch" {
                let mut ids = Vec::with_capacity(n);
                let batch = vec![noop(); 1000];
                while ids.len() < n {
                    let take = (n - ids.len()).min(1000);
                    let made = queues.enqueue_batch(&batch[..take], now_ms()).await?;
                    ids.extend(made.into_iter().map(|e| e.id));
                }
                ids
            } else {
                // One enqueue call per job, 64 in flight, as many API clients would.
                let mut tasks = Vec::new();
                for worker in 0..64 {
                    let queues = queues.clone();
                    let share = n / 64 + usize::from(worker < n % 64);
                    tasks.push(tokio::spawn(async move {
                        let mut ids = Vec::with_capacity(share);
                        for _ in 0..share {
                            ids.push(queues.enqueue(&noop(), now_ms()).await?.id);
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
        Some("wait") => {
            // Polls the queue's counts (four cheap commands) rather than every job, so the
            // wait does not load the Redis it measures; then checks every job once.
            let ids = read_ids(&args[1])?;
            let deadline = Instant::now() + Duration::from_secs(args[2].parse()?);
            loop {
                let c = &queues.counts(&["default".to_owned()], now_ms()).await?[0];
                if c.ready + c.scheduled + c.running + c.retrying == 0 {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "jobs still pending: {c:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let done = count_state(&pool, &prefix, &ids, "succeeded").await?;
            anyhow::ensure!(done == ids.len(), "only {done} of {} succeeded", ids.len());
            println!("{}", serde_json::json!({"succeeded": ids.len()}));
        }
        Some("drain") => {
            let ids = read_ids(&args[1])?;
            let times = timestamps(&pool, &prefix, &ids).await?;
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
                ids.push(queues.enqueue(&noop(), now_ms()).await?.id);
            }
            std::fs::write(&args[3], ids.join("\n"))?;
            println!("{}", serde_json::json!({"jobs": ids.len()}));
        }
        Some("latency") => {
            let ids = read_ids(&args[1])?;
            let mut waits: Vec<i64> = timestamps(&pool, &prefix, &ids)
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
            let mut conn = pool.get().await?;
            let mut lost = 0;
            let mut dead = 0;
            let mut rerun_starts: Vec<i64> = Vec::new();
            let mut all_starts: Vec<i64> = Vec::new();
            for chunk in ids.chunks(5000) {
                let mut pipe = redis::pipe();
                for id in chunk {
                    pipe.cmd("HMGET")
                        .arg(format!("{prefix}job:{id}"))
                        .arg("state")
                        .arg("lapses")
                        .arg("started_ms");
                }
                let rows: Vec<(Option<String>, Option<i64>, Option<i64>)> =
                    pipe.query_async(&mut conn).await?;
                for (state, lapses, started) in rows {
                    match state.as_deref() {
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

fn read_ids(path: &str) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::to_owned)
        .collect())
}

async fn count_state(
    pool: &deadpool_redis::Pool,
    prefix: &str,
    ids: &[String],
    state: &str,
) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    let mut done = 0;
    for chunk in ids.chunks(5000) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.hget(format!("{prefix}job:{id}"), "state");
        }
        let states: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        done += states
            .iter()
            .filter(|s| s.as_deref() == Some(state))
            .count();
    }
    Ok(done)
}

/// (created, started, finished) in ms for each job.
async fn timestamps(
    pool: &deadpool_redis::Pool,
    prefix: &str,
    ids: &[String],
) -> anyhow::Result<Vec<(i64, i64, i64)>> {
    let mut conn = pool.get().await?;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(5000) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("HMGET")
                .arg(format!("{prefix}job:{id}"))
                .arg("created_ms")
                .arg("started_ms")
                .arg("finished_ms");
        }
        let rows: Vec<(i64, i64, i64)> = pipe.query_async(&mut conn).await?;
        out.extend(rows);
    }
    Ok(out)
}
