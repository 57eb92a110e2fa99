//! The cron scheduler behind `app scheduler`: the schedules from the configuration, fired
//! into job queues exactly once per tick however many replicas run.
//!
//! - One replica leads, holding a lease in Redis ([`leader`]). Only the leader fires; it
//!   sleeps until the next tick of any schedule (no polling) and enqueues one job per due
//!   schedule. Standbys try for the lease four times a second.
//! - Each tick's job is enqueued with the idempotency key `schedule:{name}:{tick ms}`. The
//!   enqueue script takes that key with set-if-absent semantics in the same atomic step
//!   that creates the job, so it is the per-tick key: two leaders for a moment (a paused
//!   leader whose lease lapsed) make one job, and no crash between claiming a tick and
//!   enqueueing it can lose the tick.
//! - Each schedule's last run (tick, job id, enqueue time) is kept in Redis, in the HASH
//!   `scheduler:last:{name}`, for the API, the CLI and catching up.
//! - When a replica becomes leader, ticks since the last run were missed (downtime, or
//!   the handover itself): `catch_up = "none"` skips them, `"latest"` enqueues the newest.
//!
//! It owns the schedules' rules ([`check_settings`]) and the built-in schedules. It takes
//! its queue handle, its Redis pool and the job settings through [`Scheduler`], never the
//! process state.

pub mod cron;
pub mod leader;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use deadpool_redis::redis::AsyncCommands;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::config::{CatchUp, Check, JobsSettings, ScheduleSettings, Settings};
use crate::health::HealthMonitor;
use crate::jobs::enqueue::EnqueueRequest;
use crate::queue::{Queues, now_ms};
use cron::Cron;
use leader::Leader;

/// How often a standby tries for the lease.
const STANDBY_POLL: Duration = Duration::from_millis(250);
/// How far back catching up looks for a missed tick.
const CATCH_UP_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// Tries to enqueue one tick before giving it up (about 1.5 s of retries).
const FIRE_ATTEMPTS: u32 = 5;
/// The most late ticks of one schedule fired in one pass (a leader that was paused).
const MAX_LATE_TICKS: usize = 100;

/// The built-in maintenance: the `deletes` retention sweep daily at 02:00 UTC.
pub fn builtin() -> Vec<ScheduleSettings> {
    vec![ScheduleSettings {
        name: "maintenance.deletes".into(),
        cron: "0 2 * * *".into(),
        timezone: "UTC".into(),
        queue: Some("deletes".into()),
        kind: "deletes".into(),
        payload: serde_json::json!({}),
        max_attempts: None,
        timeout_seconds: None,
        enabled: true,
        catch_up: CatchUp::Latest,
    }]
}

/// Every schedule: the configured ones, then the built-in ones unless switched off.
pub fn schedules(settings: &Settings) -> Vec<ScheduleSettings> {
    let mut all = settings.schedule.clone();
    if settings.scheduler.builtin {
        // A built-in schedule whose queue is not declared is left out, not an error.
        all.extend(builtin().into_iter().filter(|b| {
            b.queue
                .as_ref()
                .is_none_or(|q| settings.jobs.queues.contains(q))
        }));
    }
    all
}

/// The scheduler's rules of the settings: each schedule has a plain, unique name, a cron
/// expression and time zone that parse, and a job the API would accept.
pub fn check_settings(settings: &Settings) -> Check {
    let mut seen = std::collections::BTreeSet::new();
    for schedule in schedules(settings) {
        let name = &schedule.name;
        let fail = |problem: String| Err(("schedule", format!("schedule {name:?}: {problem}")));
        let plain = !name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err((
                "schedule",
                format!(
                    "schedule name {name:?} must be 1-100 characters of letters, digits, '.', '_' or '-'"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            let hint = if builtin().iter().any(|b| &b.name == name) {
                " (a built-in one; set scheduler.builtin = false to replace it)"
            } else {
                ""
            };
            return fail(format!("the name is used twice{hint}"));
        }
        if let Err(problem) = Cron::parse(&schedule.cron, &schedule.timezone) {
            return fail(problem);
        }
        if let Err(invalid) = job_request(&schedule).into_job(&settings.jobs, 0) {
            return fail(invalid.to_string());
        }
    }
    Ok(())
}

/// The job a schedule enqueues, as an enqueue request (checked like the API's).
pub fn job_request(schedule: &ScheduleSettings) -> EnqueueRequest {
    EnqueueRequest {
        kind: schedule.kind.clone(),
        queue: schedule.queue.clone(),
        payload: crate::jobs::enqueue::payload(&schedule.payload),
        delay_seconds: None,
        run_at: None,
        max_attempts: schedule.max_attempts,
        timeout_seconds: schedule.timeout_seconds,
        idempotency_key: None,
    }
}

/// A schedule with its parsed expression.
#[derive(Clone, Debug)]
pub struct Entry {
    pub settings: ScheduleSettings,
    pub cron: Cron,
}

/// Every configured schedule, parsed. The configuration was validated at start-up.
pub fn entries(settings: &Settings) -> anyhow::Result<Vec<Entry>> {
    schedules(settings)
        .into_iter()
        .map(|settings| {
            let cron = Cron::parse(&settings.cron, &settings.timezone)
                .map_err(|e| anyhow::anyhow!("schedule {:?}: {e}", settings.name))?;
            Ok(Entry { settings, cron })
        })
        .collect()
}

/// A schedule's last run.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LastRun {
    pub tick: DateTime<Utc>,
    pub job_id: String,
    pub enqueued_at: DateTime<Utc>,
}

fn ms(at: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(at).single().unwrap_or_default()
}

/// What firing schedules needs: the queues their jobs go into, the Redis that keeps each
/// schedule's last run, and the job settings every tick's job is checked against.
#[derive(Clone)]
pub struct Scheduler {
    queues: Queues,
    /// Where `schedules.failed` events are recorded.
    db: sqlx::PgPool,
    redis: crate::redis::Redis,
    /// `redis.key_prefix`, which the last-run keys start with.
    key_prefix: String,
    jobs: JobsSettings,
}

impl Scheduler {
    pub fn new(
        queues: Queues,
        db: sqlx::PgPool,
        redis: crate::redis::Redis,
        key_prefix: &str,
        jobs: JobsSettings,
    ) -> Self {
        Self {
            queues,
            db,
            redis,
            key_prefix: key_prefix.to_owned(),
            jobs,
        }
    }

    fn last_key(&self, name: &str) -> String {
        format!("{}scheduler:last:{name}", self.key_prefix)
    }

    /// The last run of `name`, if it ever ran.
    /// Whether `name` is paused at run time (the console's or the API's switch): its ticks
    /// pass without firing until it is resumed.
    pub async fn paused(&self, name: &str) -> anyhow::Result<bool> {
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        conn.sismember(self.paused_key(), name)
            .await
            .context("failed to read whether a schedule is paused")
    }

    /// Pauses or resumes `name`; every scheduler replica sees it at its next tick.
    pub async fn set_paused(&self, name: &str, paused: bool) -> anyhow::Result<()> {
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        let _: () = if paused {
            conn.sadd(self.paused_key(), name).await
        } else {
            conn.srem(self.paused_key(), name).await
        }
        .context("failed to pause or resume a schedule")?;
        Ok(())
    }

    fn paused_key(&self) -> String {
        format!("{}scheduler:paused", self.key_prefix)
    }

    pub async fn last_run(&self, name: &str) -> anyhow::Result<Option<LastRun>> {
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        let hash: HashMap<String, String> = conn
            .hgetall(self.last_key(name))
            .await
            .context("failed to read a schedule's last run")?;
        let number = |field: &str| hash.get(field).and_then(|v| v.parse::<i64>().ok());
        Ok(
            match (number("tick_ms"), hash.get("job_id"), number("enqueued_ms")) {
                (Some(tick), Some(job_id), Some(enqueued)) => Some(LastRun {
                    tick: ms(tick),
                    job_id: job_id.clone(),
                    enqueued_at: ms(enqueued),
                }),
                _ => None,
            },
        )
    }

    /// Enqueues the job of `entry` for `tick`, once whoever calls: the job's idempotency
    /// key is derived from the tick. Returns the job id and whether this call made it.
    pub async fn fire(&self, entry: &Entry, tick: DateTime<Utc>) -> anyhow::Result<(String, bool)> {
        let name = &entry.settings.name;
        let tick_ms = tick.timestamp_millis();
        let mut request = job_request(&entry.settings);
        request.idempotency_key = Some(format!("schedule:{name}:{tick_ms}"));
        let now = now_ms();
        let job = request
            .into_job(&self.jobs, now)
            .map_err(|e| anyhow::anyhow!("schedule {name:?}: {e}"))?;
        let enqueued = self.queues.enqueue(&job, now).await?;
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        let _: () = RECORD
            .key(self.last_key(name))
            .arg(tick_ms)
            .arg(&enqueued.id)
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .context("failed to record a schedule's run")?;
        Ok((enqueued.id, enqueued.created))
    }

    /// Records `schedules.failed` for a tick that could not be fired, so that it is
    /// audited and reaches the webhooks subscribed to it.
    async fn report_failure(&self, entry: &Entry, tick: DateTime<Utc>, error: &anyhow::Error) {
        let name = &entry.settings.name;
        let event = crate::events::Event::builtin(
            "schedules.failed",
            "schedule",
            name.clone(),
            "system",
            Some("schedules"),
            &serde_json::json!({
                "schedule": name,
                "tick": tick,
                "error": format!("{error:#}"),
            }),
        );
        let recorded = async {
            let mut conn = self.db.acquire().await?;
            crate::events::record(&mut conn, std::slice::from_ref(&event)).await
        };
        if let Err(e) = recorded.await {
            tracing::error!(
                schedule = name,
                error = format!("{e:#}"),
                "could not record the schedules.failed event"
            );
        }
    }

    /// [`Self::fire`], tried again after a failure (a Redis blip), so a brief outage at a
    /// tick delays it rather than losing it. Retrying is safe: the tick's job is idempotent.
    async fn fire_with_retries(
        &self,
        entry: &Entry,
        tick: DateTime<Utc>,
    ) -> anyhow::Result<(String, bool)> {
        let mut wait = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match self.fire(entry, tick).await {
                Ok(fired) => return Ok(fired),
                Err(error) if attempt < FIRE_ATTEMPTS => {
                    tracing::warn!(
                        schedule = entry.settings.name,
                        attempt,
                        error = format!("{error:#}"),
                        "could not enqueue a scheduled job; trying again"
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// KEYS: last-run hash. ARGV: tick ms, job id, enqueue ms. Only moves the record forward:
/// a late manual run must not hide a newer tick.
static RECORD: std::sync::LazyLock<deadpool_redis::redis::Script> =
    std::sync::LazyLock::new(|| {
        deadpool_redis::redis::Script::new(
            r#"
local previous = tonumber(redis.call('HGET', KEYS[1], 'tick_ms') or '-1')
if tonumber(ARGV[1]) >= previous then
  redis.call('HSET', KEYS[1], 'tick_ms', ARGV[1], 'job_id', ARGV[2], 'enqueued_ms', ARGV[3])
end
"#,
        )
    });

/// Runs the scheduler until `shutdown`: a standby until it takes the lease, then the
/// leader firing ticks. Releases the lease on the way out.
///
/// `holder` names this replica in the lease; `health` shows whether it leads.
pub async fn run(
    scheduler: &Scheduler,
    entries: Vec<Entry>,
    holder: String,
    lease: Duration,
    health: &HealthMonitor,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let entries: Vec<Entry> = entries.into_iter().filter(|e| e.settings.enabled).collect();
    let leader = Leader::new(
        scheduler.redis.clone(),
        &scheduler.key_prefix,
        holder,
        lease,
    );
    // `holder`, not `replica`: every line already carries the process's replica label.
    tracing::info!(
        schedules = entries.len(),
        holder = leader.id,
        "scheduler started"
    );
    let mut leading = false;
    // The other replica last seen holding the lease, for the log of a change.
    let mut seen: Option<String> = None;
    let mut next: Vec<Option<DateTime<Utc>>> = Vec::new();
    let mut last_tick: Option<DateTime<Utc>> = None;
    let publish = |leading: bool, last_tick: Option<DateTime<Utc>>| {
        health.publish(
            "scheduler",
            serde_json::json!({"leader": leading, "last_tick": last_tick, "schedules": entries.len()}),
        );
    };
    publish(false, None);
    while !shutdown.is_cancelled() {
        let held = match leader.hold().await {
            Ok(holder) if holder == leader.id => true,
            Ok(holder) => {
                seen = Some(holder);
                false
            }
            // A Redis blip: carry on as before. Should another replica take over meanwhile,
            // a tick fired by both still makes one job.
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the leader lease could not be checked"
                );
                leading
            }
        };
        if held != leading {
            leading = held;
            publish(leading, last_tick);
            if leading {
                tracing::info!(
                    holder = leader.id,
                    previous = seen.as_deref().unwrap_or("none"),
                    "this replica leads the scheduler"
                );
                next = take_over(scheduler, &entries).await;
            } else {
                lost(&leader, seen.as_deref());
            }
        }
        if !leading {
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        // Sleep until the earliest tick, or until the lease needs renewing.
        let renew_at = Utc::now() + leader.lease / 3;
        let wake = next
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(renew_at)
            .min(renew_at);
        let pause = (wake - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => break,
        }
        let now = Utc::now();
        'firing: for (entry, slot) in entries.iter().zip(next.iter_mut()) {
            let mut fired = 0;
            while let Some(tick) = *slot {
                if tick > now || fired == MAX_LATE_TICKS {
                    break;
                }
                // Fenced: a replica that slept or stalled past its lease (a paused process,
                // a frozen VM) while another took over fires nothing, not even one tick.
                if !still_leads(&leader, &mut seen).await {
                    leading = false;
                    lost(&leader, seen.as_deref());
                    break 'firing;
                }
                // A paused schedule's tick passes unfired; Redis unreadable counts as not
                // paused, as a tick is worth more than a switch.
                if scheduler
                    .paused(&entry.settings.name)
                    .await
                    .unwrap_or(false)
                {
                    tracing::info!(
                        schedule = entry.settings.name,
                        tick = %tick,
                        "schedule paused; the tick passes"
                    );
                    *slot = entry.cron.next_after(tick);
                    continue;
                }
                match scheduler.fire_with_retries(entry, tick).await {
                    Ok((job_id, created)) => {
                        tracing::info!(
                            schedule = entry.settings.name,
                            tick = %tick,
                            job_id,
                            late_ms = (Utc::now() - tick).num_milliseconds(),
                            created,
                            "schedule fired"
                        );
                        last_tick = Some(tick);
                    }
                    Err(e) => {
                        tracing::error!(
                            schedule = entry.settings.name,
                            tick = %tick,
                            error = format!("{e:#}"),
                            "could not enqueue a scheduled job after retrying; the tick is skipped"
                        );
                        scheduler.report_failure(entry, tick, &e).await;
                    }
                }
                fired += 1;
                *slot = entry.cron.next_after(tick);
            }
        }
        publish(leading, last_tick);
    }
    if leading {
        match leader.release().await {
            Ok(()) => tracing::info!("released the scheduler lease"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "could not release the lease; it expires on its own"
            ),
        }
    }
    Ok(())
}

/// Renews the lease before a tick fires: false once another replica holds it. A Redis
/// blip counts as still leading, as in the main loop: the tick's idempotency key keeps a
/// tick fired twice to one job.
async fn still_leads(leader: &Leader, seen: &mut Option<String>) -> bool {
    match leader.hold().await {
        Ok(holder) if holder == leader.id => true,
        Ok(holder) => {
            *seen = Some(holder);
            false
        }
        Err(_) => true,
    }
}

/// Logs losing the lease, with both ids.
fn lost(leader: &Leader, now_held_by: Option<&str>) {
    tracing::warn!(
        holder = leader.id,
        leader = now_held_by.unwrap_or("unknown"),
        "this replica lost the scheduler lease"
    );
}

/// On becoming leader: applies each schedule's catch-up policy to ticks missed since its
/// last run, and returns each schedule's next tick.
async fn take_over(scheduler: &Scheduler, entries: &[Entry]) -> Vec<Option<DateTime<Utc>>> {
    let now = Utc::now();
    let mut next = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.settings.catch_up == CatchUp::Latest {
            match scheduler.last_run(&entry.settings.name).await {
                Ok(Some(last)) => {
                    let since = last.tick.max(now - CATCH_UP_HORIZON);
                    if let Some(missed) = entry.cron.latest_between(since, now) {
                        match scheduler.fire(entry, missed).await {
                            Ok((job_id, _)) => tracing::info!(
                                schedule = entry.settings.name,
                                tick = %missed,
                                job_id,
                                "caught up on the latest missed tick"
                            ),
                            Err(e) => tracing::error!(
                                schedule = entry.settings.name,
                                error = format!("{e:#}"),
                                "could not catch up"
                            ),
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    "could not read a schedule's last run"
                ),
            }
        }
        next.push(entry.cron.next_after(now));
    }
    next
}
