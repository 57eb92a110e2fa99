//! The hub's Redis subscription, on one server or on a cluster.
//!
//! On one server it is one pub/sub connection (SUBSCRIBE). On a Redis Cluster it is
//! sharded pub/sub (SSUBSCRIBE, Redis 7): redis-rs's cluster connection sends each
//! subscription to the shard that owns its channel's slot and keeps one connection per
//! shard, so a hub listens to exactly the shards that hold its channels, and an event
//! crosses no other node. Messages arrive as RESP3 pushes.
//!
//! Either way, anything that may have lost events (a connection that drops, a shard that
//! stops serving a channel because its slot moved) ends the subscription: the hub opens a
//! fresh one, subscribed to every channel in use, and has its sockets recover from
//! history.

use std::collections::HashSet;

use deadpool_redis::redis::{self, Msg, PushKind, RedisResult};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::config::RedisSettings;

/// Where subscriptions are opened.
pub enum Source {
    Single(redis::Client),
    Cluster(RedisSettings),
}

impl Source {
    pub fn new(settings: &RedisSettings) -> anyhow::Result<Self> {
        if settings.is_cluster() {
            return Ok(Self::Cluster(settings.clone()));
        }
        let client = redis::Client::open(settings.url.expose())
            .map_err(|_| anyhow::anyhow!("REDIS_URL is not a usable Redis URL"))?;
        Ok(Self::Single(client))
    }
}

/// What the subscription brought in.
pub enum Incoming {
    Message(Msg),
    /// Events may have been missed (see the module comment); carries why.
    Lost(String),
}

/// One open subscription.
pub enum Subscription {
    Single {
        sink: redis::aio::PubSubSink,
        stream: redis::aio::PubSubStream,
    },
    Cluster {
        conn: redis::cluster_async::ClusterConnection,
        pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
        /// The channels this subscription holds, to tell a shard's dropping one from the
        /// confirmation of our own leaving.
        held: HashSet<String>,
    },
}

impl Subscription {
    /// Opens a subscription to `channels`, returning once Redis confirmed them.
    pub async fn open(source: &Source, channels: &[String]) -> anyhow::Result<Self> {
        let mut subscription = match source {
            Source::Single(client) => {
                let (sink, stream) = client.get_async_pubsub().await?.split();
                Self::Single { sink, stream }
            }
            Source::Cluster(settings) => {
                let (push, pushes) = mpsc::unbounded_channel();
                let conn =
                    crate::redis::cluster(settings, Some(settings.timeout()), Some(push)).await?;
                Self::Cluster {
                    conn,
                    pushes,
                    held: HashSet::new(),
                }
            }
        };
        if !channels.is_empty() {
            subscription.subscribe(channels).await?;
        }
        Ok(subscription)
    }

    /// Subscribes to `channels`, returning once Redis confirmed them.
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } => sink.subscribe(channels).await,
            Self::Cluster { conn, held, .. } => {
                // One call per channel: channels of different slots go to different shards.
                for channel in channels {
                    conn.ssubscribe(channel).await?;
                    held.insert(channel.clone());
                }
                Ok(())
            }
        }
    }

    pub async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } => sink.unsubscribe(channel).await,
            Self::Cluster { conn, held, .. } => {
                held.remove(channel);
                conn.sunsubscribe(channel).await
            }
        }
    }

    /// A round trip to every server the subscription uses.
    pub async fn ping(&mut self) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } => sink.ping::<redis::Value>().await.map(drop),
            Self::Cluster { conn, .. } => redis::cmd("PING")
                .query_async::<redis::Value>(conn)
                .await
                .map(drop),
        }
    }

    /// The next message, or why events may have been lost. Cancel-safe.
    pub async fn next(&mut self) -> Incoming {
        match self {
            Self::Single { stream, .. } => match stream.next().await {
                Some(message) => Incoming::Message(message),
                None => Incoming::Lost("the connection closed".into()),
            },
            Self::Cluster { pushes, held, .. } => loop {
                let Some(push) = pushes.recv().await else {
                    return Incoming::Lost("the cluster connection closed".into());
                };
                match push.kind {
                    PushKind::SMessage => {
                        if let Some(message) = Msg::from_push_info(push) {
                            return Incoming::Message(message);
                        }
                    }
                    PushKind::Disconnection => {
                        return Incoming::Lost("a cluster node's connection closed".into());
                    }
                    PushKind::SUnsubscribe => {
                        let channel = push
                            .data
                            .first()
                            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
                        if let Some(channel) = channel.filter(|c| held.contains(c)) {
                            return Incoming::Lost(format!(
                                "the shard serving {channel} dropped it (its slot moved)"
                            ));
                        }
                    }
                    _ => {}
                }
            },
        }
    }
}
