//! The events relay: moves each event from the Postgres outbox to its consumers. A pass
//! claims the oldest unrelayed events (`FOR UPDATE SKIP LOCKED`, so any number of relays
//! in `serve`, `worker`, `all` and `dev` replicas share the work and never take the same
//! row), and in one transaction writes their audit rows, makes one delivery per matching
//! enabled webhook endpoint and stamps them relayed; it publishes them on their realtime
//! channels before committing, so a Redis outage leaves them waiting in the outbox.
//! Delivery jobs are enqueued after the commit; a relay that dies in between leaves its
//! deliveries without a job, and the sweep here enqueues them (their idempotency keys keep
//! a repeat to one job). Each pass is woken by a Postgres notification from the outbox's
//! insert trigger, with a poll as the fallback.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::events::{Event, Stored, columns};
use crate::queue::Queues;
use crate::realtime::history::{History, PublishError};
use crate::webhooks::deliveries;

/// The notification channel the outbox trigger signals.
const CHANNEL: &str = "switchyard_events";

/// How often the sweep looks for deliveries whose job was never enqueued, and how old
/// such a delivery must be (a live relay enqueues its own within milliseconds).
const SWEEP_EVERY: Duration = Duration::from_secs(10);
const STRANDED_AFTER: Duration = Duration::from_secs(30);

/// What a relay uses.
#[derive(Clone)]
pub struct Relay {
    pub db: PgPool,
    pub queues: Queues,
    pub realtime: History,
    pub settings: Arc<Settings>,
}

/// Relays until `shutdown`; a pass under way finishes first.
pub async fn run(relay: Relay, shutdown: CancellationToken) -> anyhow::Result<()> {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(relay.db.clone(), wake.clone(), shutdown.clone()));
    let poll = relay.settings.events.relay_poll();
    let mut failing = false;
    let mut last_sweep = tokio::time::Instant::now();
    tracing::info!("events relay started");
    while !shutdown.is_cancelled() {
        let relayed = match relay.pass().await {
            Ok(n) => {
                if failing {
                    tracing::info!("the events relay works again");
                    failing = false;
                }
                n
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the events relay failed; events wait in the outbox and it retries"
                    );
                    failing = true;
                }
                0
            }
        };
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            if let Err(error) = relay.sweep().await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the stranded-delivery sweep failed"
                );
            }
        }
        if relayed == relay.settings.events.relay_batch {
            continue;
        }
        let wait = if failing {
            poll.max(Duration::from_secs(1))
        } else {
            poll
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    listener.abort();
    tracing::info!("events relay stopped");
    Ok(())
}

/// Wakes the relay on each outbox notification, reconnecting after a lost connection.
async fn listen(db: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&db).await?;
            listener.listen(CHANNEL).await?;
            // Events inserted while this was not listening are found by this pass.
            wake.notify_one();
            loop {
                listener.recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listening => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "the events listener lost its connection; the relay polls meanwhile");
                }
            }
            _ = shutdown.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

impl Relay {
    /// One pass: relays up to `events.relay_batch` events; returns how many. Claiming
    /// them, their audit rows, their deliveries and their relayed stamp are one statement,
    /// so a pass costs three round trips to Postgres (with its BEGIN and COMMIT) however
    /// many events and endpoints it handles: under load every round trip waits for a
    /// busy CPU, and the relay's latency is counted in them.
    pub async fn pass(&self) -> anyhow::Result<usize> {
        #[derive(sqlx::FromRow)]
        struct Claimed {
            #[sqlx(flatten)]
            event: Stored,
            deliveries: Vec<uuid::Uuid>,
            endpoints: Vec<uuid::Uuid>,
        }
        let mut tx = self
            .db
            .begin()
            .await
            .context("failed to start a transaction")?;
        // Endpoints are read `FOR KEY SHARE`, so that one cannot be deleted (with its
        // deliveries) while this pass makes deliveries for it. An event with deliveries
        // is stamped enqueued once their jobs are in Redis; the others are done.
        let rows: Vec<Claimed> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH claimed AS (
                 SELECT * FROM events WHERE relayed_at IS NULL
                 ORDER BY seq LIMIT $1
                 FOR UPDATE SKIP LOCKED),
             audit AS (
                 INSERT INTO audit_logs (id, actor, action, resource_type, resource_id, metadata, created_at)
                 SELECT gen_random_uuid(), actor, type, resource_type, subject,
                        CASE json_typeof(data) WHEN 'object' THEN data::jsonb
                             ELSE jsonb_build_object('data', data::jsonb) END
                        || jsonb_build_object('event_id', id),
                        time
                 FROM claimed),
             subscribed AS (
                 SELECT id, event_types FROM webhook_endpoints WHERE enabled FOR KEY SHARE),
             made AS (
                 INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type)
                 SELECT switchyard_uuid_v7(), s.id, c.id, c.type
                 FROM claimed c JOIN subscribed s ON switchyard_subscribed(s.event_types, c.type)
                 ON CONFLICT (event_id, endpoint_id) DO NOTHING
                 RETURNING id, endpoint_id, event_id),
             stamped AS (
                 UPDATE events e SET relayed_at = now(),
                     enqueued_at = CASE WHEN e.id IN (SELECT event_id FROM made)
                                        THEN NULL ELSE now() END
                 FROM claimed c WHERE e.id = c.id)
             SELECT {},
                    COALESCE(m.deliveries, '{{}}') AS deliveries,
                    COALESCE(m.endpoints, '{{}}') AS endpoints
             FROM claimed c
             LEFT JOIN (SELECT event_id, array_agg(id ORDER BY id) AS deliveries,
                               array_agg(endpoint_id ORDER BY id) AS endpoints
                        FROM made GROUP BY event_id) m ON m.event_id = c.id
             ORDER BY c.seq",
            columns("c")
        )))
        .bind(self.settings.events.relay_batch as i64)
        .fetch_all(&mut *tx)
        .await
        .context("failed to relay events")?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(rows.len());
        let mut jobs = Vec::new();
        for row in rows {
            let event = Event::from(row.event);
            let made = row.deliveries.into_iter().zip(row.endpoints);
            jobs.extend(deliveries::first_round(&event, made));
            events.push(event);
        }
        // An event's jobs are adjacent (made event by event above), so `dedup` leaves each
        // event with deliveries once.
        let mut waiting: Vec<&str> = jobs.iter().map(|j| j.event_id.as_str()).collect();
        waiting.dedup();
        self.publish(&events).await?;
        tx.commit()
            .await
            .context("failed to commit relayed events")?;
        metrics::counter!("switchyard_events_relayed_total").increment(events.len() as u64);
        let enqueued = async {
            deliveries::enqueue(&self.queues, &self.settings, &jobs).await?;
            deliveries::stamp_enqueued(&self.db, &waiting).await
        };
        if let Err(error) = enqueued.await {
            tracing::warn!(
                error = format!("{error:#}"),
                deliveries = jobs.len(),
                "could not enqueue webhook deliveries; the sweep enqueues them"
            );
        }
        Ok(events.len())
    }

    /// Publishes each event that names a channel, in outbox order within a channel (the
    /// channels side by side). Redis being unreachable fails the pass (the events stay in
    /// the outbox); an event realtime refuses (over `realtime.max_event_bytes`) is logged
    /// and skipped.
    async fn publish(&self, events: &[Event]) -> anyhow::Result<()> {
        let mut by_channel: Vec<(&str, Vec<&Event>)> = Vec::new();
        for event in events {
            let Some(channel) = event.channel.as_deref() else {
                continue;
            };
            match by_channel.iter_mut().find(|(c, _)| *c == channel) {
                Some((_, list)) => list.push(event),
                None => by_channel.push((channel, vec![event])),
            }
        }
        let channels = by_channel.into_iter().map(|(channel, list)| async move {
            for event in list {
                let data = serde_json::json!({
                    "id": event.id,
                    "source": event.source,
                    "subject": event.subject,
                    "time": event.time,
                    "data": &*event.data,
                });
                match self.realtime.publish(channel, &event.kind, &data).await {
                    Ok(_) => {}
                    Err(PublishError::Redis(error)) => return Err(error),
                    Err(refused) => tracing::warn!(
                        event_id = event.id,
                        error = %refused,
                        "an event was not published on realtime"
                    ),
                }
            }
            Ok(())
        });
        futures_util::future::try_join_all(channels).await?;
        Ok(())
    }

    /// Enqueues the deliveries of events whose relay committed them but never stamped
    /// their jobs enqueued.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let mut tx = self
            .db
            .begin()
            .await
            .context("failed to start a transaction")?;
        let (events, jobs) = deliveries::stranded(&mut tx, STRANDED_AFTER, 100).await?;
        if events.is_empty() {
            return Ok(0);
        }
        deliveries::enqueue(&self.queues, &self.settings, &jobs).await?;
        let ids: Vec<&str> = events.iter().map(String::as_str).collect();
        sqlx::query("UPDATE events SET enqueued_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .context("failed to stamp swept events")?;
        tx.commit().await.context("failed to commit the sweep")?;
        if !jobs.is_empty() {
            tracing::info!(
                deliveries = jobs.len(),
                "enqueued stranded webhook deliveries"
            );
        }
        Ok(jobs.len())
    }
}
