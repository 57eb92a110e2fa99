//! Which kinds the live workers handle, by queue, from the instance registry: each worker
//! registers its queues and kinds (`details.queues`, `details.kinds`). The API uses it to
//! refuse a kind no live worker on its queue handles (a typo) at enqueue time, instead of
//! letting the job die at the worker. With no live worker on a queue (scaled to zero,
//! deploying) any kind is accepted, so an enqueue never depends on a worker being up.
//!
//! The registry is read at most every [`FRESH_FOR`], not per enqueue: the check costs an
//! enqueue a read lock. A worker that just started or stopped is seen within that and the
//! registry's heartbeat. A registry that cannot be read within [`READ_LIMIT`] refuses
//! nothing for the next [`FRESH_FOR`], so Postgres being down never slows an enqueue,
//! which needs only Redis.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::invalid::Invalid;

/// How long one read of the registry answers for.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// The longest a read of the registry may take.
const READ_LIMIT: Duration = Duration::from_secs(1);

/// The kinds handled on each queue that at least one live worker consumes.
type Handled = HashMap<String, BTreeSet<String>>;

/// One read of the registry and when it was made.
type Read = Option<(Instant, Arc<Handled>)>;

/// The cached view of the live workers. Cloning shares the cache.
#[derive(Clone)]
pub struct LiveKinds {
    db: PgPool,
    /// The last read and when it was made.
    cache: Arc<RwLock<Read>>,
    /// Held while one task reads the registry, so the others wait for its answer.
    refresh: Arc<Mutex<()>>,
}

impl LiveKinds {
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            cache: Arc::default(),
            refresh: Arc::default(),
        }
    }

    /// Refuses `kind` on `queue` when live workers consume the queue and none handles it.
    /// A registry that cannot be read refuses nothing: the check is a convenience, never
    /// a reason for an enqueue to fail.
    pub async fn check(&self, queue: &str, kind: &str) -> Result<(), Invalid> {
        let handled = self.handled().await;
        match handled.get(queue) {
            Some(kinds) if !kinds.contains(kind) => Err(Invalid::new(
                "kind",
                format!(
                    "no live worker on queue {queue:?} handles kind {kind:?}; they handle {} \
                     (jobs.accept_unknown_kinds = true accepts it anyway)",
                    kinds.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn handled(&self) -> Arc<Handled> {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _reading = self.refresh.lock().await;
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let handled = match tokio::time::timeout(READ_LIMIT, read(&self.db)).await {
            Ok(Ok(handled)) => handled,
            Ok(Err(error)) => {
                tracing::debug!(
                    error = format!("{error:#}"),
                    "could not read the kinds live workers handle; accepting any"
                );
                Handled::new()
            }
            Err(_) => Handled::new(),
        };
        let handled = Arc::new(handled);
        if let Ok(mut cache) = self.cache.write() {
            *cache = Some((Instant::now(), handled.clone()));
        }
        handled
    }

    fn fresh(&self) -> Option<Arc<Handled>> {
        let cache = self.cache.read().ok()?;
        let (read_at, handled) = cache.as_ref()?;
        (read_at.elapsed() < FRESH_FOR).then(|| handled.clone())
    }
}

/// The live workers' queues and kinds, from their registry rows.
async fn read(db: &PgPool) -> anyhow::Result<Handled> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT details FROM instances \
         WHERE heartbeat_at > now() - interval '1 minute' AND details ? 'kinds'",
    )
    .fetch_all(db)
    .await?;
    let mut handled = Handled::new();
    for details in rows {
        let strings = |key: &str| -> Vec<String> {
            details[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let kinds = strings("kinds");
        for entry in strings("queues") {
            // `name` or `name:weight`, as worker.queues has them.
            let queue = entry.split_once(':').map_or(entry.as_str(), |(q, _)| q);
            handled
                .entry(queue.to_owned())
                .or_default()
                .extend(kinds.iter().cloned());
        }
    }
    Ok(handled)
}
