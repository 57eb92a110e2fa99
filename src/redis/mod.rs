//! Redis: the connection every mode shares, opened with start-up retries. One server
//! (plain `redis://`, TLS `rediss://` and `unix://` URLs, IPv6 hosts included) or a Redis
//! Cluster from its seed nodes (`redis.cluster_urls`).

use std::time::Duration;

use anyhow::anyhow;
use deadpool_redis::redis::{ErrorKind, RedisError};
use deadpool_redis::{Config, PoolConfig, PoolError, Runtime, Timeouts};

use crate::config::RedisSettings;
use crate::retry::{self, Attempt};

mod handle;

pub use handle::{Conn, Multiplexed, Redis, cluster};

/// Connects and waits until Redis answers PING, for at most `wait`.
pub async fn connect(settings: &RedisSettings, wait: Duration) -> anyhow::Result<Redis> {
    if settings.is_cluster() {
        return connect_cluster(settings, wait).await;
    }
    let timeout = Duration::from_secs(settings.timeout_seconds);
    let mut config = Config::from_url(settings.url.expose());
    let mut pool_config = PoolConfig::new(settings.pool_size);
    pool_config.timeouts = Timeouts {
        wait: Some(timeout),
        create: Some(timeout),
        recycle: Some(timeout),
    };
    config.pool = Some(pool_config);
    // The error can quote the URL, password included, so it is not passed on.
    let pool = Redis::Single(
        config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|_| anyhow!("REDIS_URL is not a usable Redis URL ({})", settings.url))?,
    );
    let endpoint = settings.url.endpoint();
    let deadline = tokio::time::Instant::now() + wait;
    retry::until_ready("redis", wait, || async {
        // Bounded by what is left of the wait too, so the deadline holds.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let limit = timeout.min(left).max(Duration::from_millis(100));
        match ping(&pool, limit).await {
            Ok(()) => Attempt::Ready(()),
            Err(PingError::Pool(error)) => {
                let fatal = matches!(&error, PoolError::Backend(e) if is_permanent(e));
                let error = anyhow!("Redis at {endpoint}: {error}");
                if fatal {
                    Attempt::Fatal(error)
                } else {
                    Attempt::Retry(error)
                }
            }
            Err(PingError::Redis(error)) if is_permanent(&error) => {
                Attempt::Fatal(anyhow!("Redis at {endpoint}: {error}"))
            }
            Err(error) => Attempt::Retry(anyhow!("Redis at {endpoint}: {error}")),
        }
    })
    .await?;
    tracing::info!(endpoint = %endpoint, "connected to redis");
    Ok(pool)
}

/// Connects to the cluster the seeds belong to, retrying for at most `wait`.
async fn connect_cluster(settings: &RedisSettings, wait: Duration) -> anyhow::Result<Redis> {
    let endpoint = settings.endpoint();
    let deadline = tokio::time::Instant::now() + wait;
    let conn = retry::until_ready("redis", wait, || async {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let limit = settings.timeout().min(left).max(Duration::from_millis(100));
        let attempt = async {
            let cluster = Redis::Cluster(cluster(settings, Some(settings.timeout()), None).await?);
            ping(&cluster, limit)
                .await
                .map_err(|e| anyhow!("{endpoint}: {e}"))?;
            anyhow::Ok(cluster)
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(cluster)) => Attempt::Ready(cluster),
            Ok(Err(error)) => Attempt::Retry(anyhow!("Redis at {endpoint}: {error:#}")),
            Err(_) => Attempt::Retry(anyhow!(
                "Redis at {endpoint}: timed out after {} ms",
                limit.as_millis()
            )),
        }
    })
    .await?;
    tracing::info!(endpoint = %endpoint, "connected to the redis cluster");
    Ok(conn)
}

/// Why a PING did not come back.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("timed out after {0} ms")]
    Timeout(u128),
}

/// PING (every node of a cluster), bounded by `limit` in all.
pub async fn ping(redis: &Redis, limit: Duration) -> Result<(), PingError> {
    let work = async {
        let mut conn = redis.get().await?;
        deadpool_redis::redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(PingError::Timeout(limit.as_millis())))
}

/// Wrong credentials or a refused command will not fix themselves.
fn is_permanent(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    ) || error
        .code()
        .is_some_and(|c| c == "NOAUTH" || c == "WRONGPASS" || c == "NOPERM")
}
