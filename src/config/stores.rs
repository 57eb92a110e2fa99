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
}

impl RedisSettings {
    /// How long one command may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
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
