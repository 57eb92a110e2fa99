//! `[database]` and `[redis]`: where the two stores are and how many connections each
//! process keeps to them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, SecretUrl, positive};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretUrl,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_seconds: u64,
    pub connect_timeout_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: SecretUrl,
    pub pool_size: usize,
    pub timeout_seconds: u64,
    /// Prepended to every key, so several deployments (or tests) share one Redis.
    pub key_prefix: String,
    /// Seed nodes of a Redis Cluster. When set, Switchyard talks to the cluster they
    /// belong to and `url` is not used.
    #[serde(default, deserialize_with = "super::secret::url_list")]
    pub cluster_urls: Vec<SecretUrl>,
}

impl RedisSettings {
    /// How long one command may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// Whether the settings name a Redis Cluster rather than one server.
    pub fn is_cluster(&self) -> bool {
        !self.cluster_urls.is_empty()
    }

    /// Where Redis is, for messages: one server's `host:port`, or the cluster's seeds.
    pub fn endpoint(&self) -> String {
        if self.is_cluster() {
            let seeds: Vec<String> = self.cluster_urls.iter().map(SecretUrl::endpoint).collect();
            format!("the cluster at {}", seeds.join(","))
        } else {
            self.url.endpoint()
        }
    }
}

pub(super) fn validate(database: &DatabaseSettings, redis: &RedisSettings) -> Check {
    let scheme = database.url.url().scheme();
    if scheme != "postgres" && scheme != "postgresql" {
        return Err((
            "database.url",
            format!("scheme must be postgres:// or postgresql://, not {scheme}://"),
        ));
    }
    if database.url.url().host().is_none() {
        return Err(("database.url", "the URL names no host".into()));
    }
    let scheme = redis.url.url().scheme();
    if !["redis", "rediss", "unix", "redis+unix"].contains(&scheme) {
        return Err((
            "redis.url",
            format!("scheme must be redis://, rediss:// or unix://, not {scheme}://"),
        ));
    }
    for (i, seed) in redis.cluster_urls.iter().enumerate() {
        let scheme = seed.url().scheme();
        if scheme != "redis" && scheme != "rediss" {
            return Err((
                "redis.cluster_urls",
                format!(
                    "entry {}: scheme must be redis:// or rediss://, not {scheme}://",
                    i + 1
                ),
            ));
        }
        if seed.url().host().is_none() {
            return Err((
                "redis.cluster_urls",
                format!("entry {}: the URL names no host", i + 1),
            ));
        }
    }
    if database.max_connections == 0 {
        return Err(("database.max_connections", "must be at least 1".into()));
    }
    if database.min_connections > database.max_connections {
        return Err((
            "database.min_connections",
            "must not exceed database.max_connections".into(),
        ));
    }
    if redis.pool_size == 0 {
        return Err(("redis.pool_size", "must be at least 1".into()));
    }
    positive(&[
        (
            "database.acquire_timeout_seconds",
            database.acquire_timeout_seconds,
        ),
        (
            "database.connect_timeout_seconds",
            database.connect_timeout_seconds,
        ),
        ("redis.timeout_seconds", redis.timeout_seconds),
    ])
}
