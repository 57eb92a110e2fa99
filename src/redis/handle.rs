//! The two shapes a Redis deployment takes, behind one handle: one server, reached through
//! a pool (and, for the queue's hot path, one reconnecting multiplexed connection), or a
//! Redis Cluster, reached through redis-rs's cluster client, which holds a multiplexed
//! connection per node, routes each command by its key's slot and follows MOVED and ASK
//! while slots migrate.
//!
//! Callers write commands once: [`Conn`] and [`Multiplexed`] are connections like any
//! other, so `query_async`, scripts and pipelines take them as they are. What differs is
//! what a cluster forbids: a pipeline whose keys span slots. [`Multiplexed::pipelines`]
//! runs several single-slot pipelines as one round trip on one server, and concurrently,
//! one per slot, on a cluster.

use std::time::Duration;

use anyhow::Context;
use deadpool_redis::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use deadpool_redis::redis::{self, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use deadpool_redis::{PoolError, Status};
use futures_util::FutureExt;

use crate::config::RedisSettings;

/// Makes an enum of two connections a connection itself, each call going to the variant
/// it holds.
macro_rules! delegate_connection_like {
    ($type:ident, $a:ident, $b:ident) => {
        impl ConnectionLike for $type {
            fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
                match self {
                    Self::$a(conn) => conn.req_packed_command(cmd),
                    Self::$b(conn) => conn.req_packed_command(cmd),
                }
            }

            fn req_packed_commands<'a>(
                &'a mut self,
                pipeline: &'a Pipeline,
                offset: usize,
                count: usize,
            ) -> RedisFuture<'a, Vec<Value>> {
                match self {
                    Self::$a(conn) => conn.req_packed_commands(pipeline, offset, count),
                    Self::$b(conn) => conn.req_packed_commands(pipeline, offset, count),
                }
            }

            fn get_db(&self) -> i64 {
                match self {
                    Self::$a(conn) => conn.get_db(),
                    Self::$b(conn) => conn.get_db(),
                }
            }
        }
    };
}

/// Redis as every mode shares it: a pool of connections to one server, or the cluster
/// connection.
#[derive(Clone)]
pub enum Redis {
    Single(deadpool_redis::Pool),
    /// Multiplexed and cheap to clone; one per process serves every caller.
    Cluster(ClusterConnection),
}

impl Redis {
    /// A connection: one from the pool, or the cluster connection.
    pub async fn get(&self) -> Result<Conn, PoolError> {
        match self {
            Self::Single(pool) => Ok(Conn::Pooled(pool.get().await?)),
            Self::Cluster(cluster) => Ok(Conn::Cluster(cluster.clone())),
        }
    }

    /// The pool's figures. A cluster connection is one multiplexed connection per node
    /// that callers share rather than check out, so it counts as one, always available.
    pub fn status(&self) -> Status {
        match self {
            Self::Single(pool) => pool.status(),
            Self::Cluster(_) => Status {
                max_size: 1,
                size: 1,
                available: 1,
                waiting: 0,
            },
        }
    }

    /// Closes the pool; a cluster connection closes when its last clone is dropped.
    pub fn close(&self) {
        if let Self::Single(pool) = self {
            pool.close();
        }
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// A multiplexed connection for a hot path that runs many commands concurrently (the
    /// queue, the rate limiter): on one server a connection of its own that reconnects by
    /// itself and is made on first use; on a cluster the shared cluster connection.
    /// `retries` bounds its reconnection attempts per command.
    pub fn multiplexed(
        &self,
        settings: &RedisSettings,
        retries: usize,
    ) -> anyhow::Result<Multiplexed> {
        match self {
            Self::Single(_) => {
                let client = redis::Client::open(settings.url.expose())
                    .context("REDIS_URL is not a usable Redis URL")?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(settings.timeout()))
                    .set_response_timeout(Some(settings.timeout()))
                    .set_number_of_retries(retries);
                let conn = ConnectionManager::new_lazy_with_config(client, config)
                    .context("failed to prepare a multiplexed Redis connection")?;
                Ok(Multiplexed::Single(conn))
            }
            Self::Cluster(cluster) => Ok(Multiplexed::Cluster(cluster.clone())),
        }
    }

    /// The text of `INFO <sections>` from every server: one, or each primary of the
    /// cluster.
    pub async fn info(&self, sections: &[&str]) -> anyhow::Result<Vec<String>> {
        let mut cmd = redis::cmd("INFO");
        for section in sections {
            cmd.arg(*section);
        }
        match self {
            Self::Single(pool) => {
                let mut conn = pool.get().await.context("no Redis connection")?;
                let text: String = cmd.query_async(&mut conn).await.context("INFO failed")?;
                Ok(vec![text])
            }
            Self::Cluster(cluster) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = cluster
                    .clone()
                    .route_command(cmd, routing)
                    .await
                    .context("INFO failed")?;
                Ok(texts(reply))
            }
        }
    }
}

/// The strings in a reply from several nodes: a map of address to text, or one text.
fn texts(reply: Value) -> Vec<String> {
    let text = |v: Value| redis::from_redis_value::<String>(v).ok();
    match reply {
        Value::Map(pairs) => pairs.into_iter().filter_map(|(_, v)| text(v)).collect(),
        Value::Array(values) => values.into_iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

/// One connection from [`Redis::get`].
pub enum Conn {
    Pooled(deadpool_redis::Connection),
    Cluster(ClusterConnection),
}

delegate_connection_like!(Conn, Pooled, Cluster);

/// A multiplexed connection from [`Redis::multiplexed`]: clone it per caller.
#[derive(Clone)]
pub enum Multiplexed {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Multiplexed {
    /// Runs `pipelines`, each of whose keys share one slot, and returns each one's
    /// replies in order. On one server they go as one round trip; on a cluster, one
    /// pipeline per slot, concurrently.
    pub async fn pipelines(&self, pipelines: &[Pipeline]) -> RedisResult<Vec<Vec<Value>>> {
        match self {
            Self::Single(conn) => {
                let mut all = redis::pipe();
                for pipeline in pipelines {
                    for cmd in pipeline.cmd_iter() {
                        all.add_command(cmd.clone());
                    }
                }
                if all.is_empty() {
                    return Ok(vec![Vec::new(); pipelines.len()]);
                }
                let mut flat: std::vec::IntoIter<Value> = all
                    .query_async::<Vec<Value>>(&mut conn.clone())
                    .await?
                    .into_iter();
                Ok(pipelines
                    .iter()
                    .map(|p| flat.by_ref().take(p.len()).collect())
                    .collect())
            }
            Self::Cluster(conn) => {
                let runs = pipelines.iter().map(|pipeline| {
                    let mut conn = conn.clone();
                    async move {
                        if pipeline.is_empty() {
                            return Ok(Vec::new());
                        }
                        pipeline.query_async::<Vec<Value>>(&mut conn).await
                    }
                });
                futures_util::future::try_join_all(runs).await
            }
        }
    }
}

delegate_connection_like!(Multiplexed, Single, Cluster);

/// Opens a cluster connection from the seed nodes: it learns the slot map from the first
/// seed that answers and connects to every primary. `response_timeout` `None` is for a
/// connection that blocks (BLPOP).
pub async fn cluster(
    settings: &RedisSettings,
    response_timeout: Option<Duration>,
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> anyhow::Result<ClusterConnection> {
    let seeds: Vec<&str> = settings.cluster_urls.iter().map(|u| u.expose()).collect();
    let mut builder = redis::cluster::ClusterClientBuilder::new(seeds)
        .connection_timeout(settings.timeout())
        .retries(4);
    builder = match response_timeout {
        Some(timeout) => builder.response_timeout(timeout),
        // A day: BLPOP answers when its own, shorter, timeout runs out.
        None => builder.response_timeout(Duration::from_secs(86_400)),
    };
    if let Some(push) = push {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push);
    }
    // The error can quote a seed URL, password included, so it is not passed on.
    let client = builder.build().map_err(|e| {
        anyhow::anyhow!(
            "REDIS_CLUSTER_URLS does not make a usable cluster client ({:?})",
            e.kind()
        )
    })?;
    client
        .get_async_connection()
        .map(|r| r.context("failed to connect to the Redis cluster"))
        .await
}
