//! How an idle worker waits for work: it blocks on the wake tokens of its queues (see
//! the key layout in the module above) on connections of its own, since a blocking
//! command would stall a shared one.
//!
//! On one server a single BLPOP covers every queue. On a cluster each queue's wake key
//! lives in its queue's slot, and BLPOP may only name keys of one slot, so a listener
//! task per queue blocks on its key on a connection of its own and passes each token on
//! to the waiting worker. A token that arrives while the worker is busy is kept, so its
//! next wait returns at once: the work that token announced is fetched.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_redis::redis;
use tokio::sync::Notify;

use crate::config::RedisSettings;

/// How long a cluster listener blocks per BLPOP before asking again.
const LISTEN_BLOCK_S: f64 = 5.0;

/// Waits for wake tokens on some queues' wake keys.
pub struct Waiter {
    settings: RedisSettings,
    keys: Vec<String>,
    on: On,
}

enum On {
    /// One server: one BLPOP over every key.
    Single(redis::aio::MultiplexedConnection),
    /// A cluster: listener tasks, one per key, that wake `woken`.
    Cluster {
        woken: Arc<Notify>,
        listeners: Vec<tokio::task::AbortHandle>,
    },
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let On::Cluster { listeners, .. } = &self.on {
            for listener in listeners {
                listener.abort();
            }
        }
    }
}

impl Waiter {
    pub async fn connect(settings: &RedisSettings, keys: Vec<String>) -> anyhow::Result<Self> {
        let on = if settings.is_cluster() {
            let woken = Arc::new(Notify::new());
            let listeners = keys
                .iter()
                .map(|key| {
                    tokio::spawn(listen(settings.clone(), key.clone(), woken.clone()))
                        .abort_handle()
                })
                .collect();
            On::Cluster { woken, listeners }
        } else {
            let client = redis::Client::open(settings.url.expose())
                .context("REDIS_URL is not a usable Redis URL")?;
            // No response timeout: BLPOP answers only when its own timeout runs out.
            let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .context("failed to open the worker's wake connection")?;
            On::Single(conn)
        };
        Ok(Self {
            settings: settings.clone(),
            keys,
            on,
        })
    }

    /// A fresh connection after an error.
    pub async fn reconnect(&self) -> anyhow::Result<Self> {
        Self::connect(&self.settings, self.keys.clone()).await
    }

    /// Waits for a wake token or `wait`, whichever comes first.
    pub async fn wait(&mut self, wait: Duration) -> anyhow::Result<()> {
        match &mut self.on {
            On::Single(conn) => {
                let seconds = wait.as_secs_f64().max(0.01);
                let _: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(&self.keys)
                    .arg(format!("{seconds:.3}"))
                    .query_async(conn)
                    .await
                    .context("waiting for jobs failed")?;
            }
            On::Cluster { woken, .. } => {
                let _ = tokio::time::timeout(wait, woken.notified()).await;
            }
        }
        Ok(())
    }
}

/// Blocks on one wake key of a cluster, forever, waking `woken` at each token; after an
/// error it reconnects a second later.
async fn listen(settings: RedisSettings, key: String, woken: Arc<Notify>) {
    loop {
        let lost = match crate::redis::cluster(&settings, None, None).await {
            Ok(mut conn) => loop {
                let token: Result<Option<(String, String)>, _> = redis::cmd("BLPOP")
                    .arg(&key)
                    .arg(LISTEN_BLOCK_S)
                    .query_async(&mut conn)
                    .await;
                match token {
                    Ok(Some(_)) => woken.notify_one(),
                    Ok(None) => {}
                    Err(error) => break anyhow::Error::new(error),
                }
            },
            Err(error) => error,
        };
        tracing::warn!(
            key,
            error = format!("{lost:#}"),
            "waiting for jobs failed; reconnecting"
        );
        // Work may have arrived meanwhile: the worker looks.
        woken.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
