//! Dependency checks behind `/api/health`. Each check is bounded by
//! `health.check_timeout_ms`, and they run at once, so the endpoint answers within about
//! that bound even when a dependency hangs. [`HealthMonitor`] checks the pools and the
//! store it is handed, and remembers what the running mode publishes about itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::storage::Storage;
use crate::telemetry::Identity;

/// The body of `/api/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy` when every check is up, else `degraded`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    pub checks: BTreeMap<&'static str, Check>,
    pub version: &'static str,
    pub mode: &'static str,
    pub service: String,
    pub replica: String,
    pub uptime_s: u64,
    /// Whether the database has every migration this release needs; absent while
    /// Postgres is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// What the running mode reports about itself (the scheduler: leadership and its
    /// last tick).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub details: BTreeMap<&'static str, serde_json::Value>,
}

/// One dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `up` or `down`.
    pub status: &'static str,
    pub latency_ms: f64,
    /// Why it is down, in a few words; the full cause is in the logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The database schema against this release's migrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Schema {
    /// `current`, or `behind` until `app migrate` applies what is pending.
    #[schema(example = "current")]
    pub status: &'static str,
    /// Migrations this release has that the database lacks.
    pub pending: usize,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.status == "healthy"
    }
}

/// Who this process is and each dependency's last known state, so a change is logged
/// once rather than on every probe.
pub struct HealthMonitor {
    identity: Identity,
    /// When the process started, for `uptime_s`.
    started: Instant,
    /// The bound on each check (`health.check_timeout_ms`).
    limit: Duration,
    postgres_down: AtomicBool,
    redis_down: AtomicBool,
    storage_down: AtomicBool,
    schema_behind: AtomicBool,
    /// Published by the running mode, shown under `details`.
    details: std::sync::Mutex<BTreeMap<&'static str, serde_json::Value>>,
}

impl HealthMonitor {
    pub fn new(identity: Identity, limit: Duration) -> Self {
        Self {
            identity,
            started: Instant::now(),
            limit,
            postgres_down: AtomicBool::default(),
            redis_down: AtomicBool::default(),
            storage_down: AtomicBool::default(),
            schema_behind: AtomicBool::default(),
            details: std::sync::Mutex::default(),
        }
    }

    /// How long this process has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Shows `value` under `details.<key>` in `/api/health`.
    pub fn publish(&self, key: &'static str, value: serde_json::Value) {
        if let Ok(mut details) = self.details.lock() {
            details.insert(key, value);
        }
    }

    /// Runs every check.
    pub async fn check(
        &self,
        db: &PgPool,
        redis: &crate::redis::Redis,
        storage: &Storage,
    ) -> HealthReport {
        let limit = self.limit;
        let postgres = timed(async {
            match tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(db)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(("unreachable", error.to_string())),
                Err(_) => Err((
                    "timeout",
                    format!("no answer within {} ms", limit.as_millis()),
                )),
            }
        });
        let redis = timed(async {
            match crate::redis::ping(redis, limit).await {
                Ok(()) => Ok(()),
                Err(crate::redis::PingError::Timeout(ms)) => {
                    Err(("timeout", format!("no answer within {ms} ms")))
                }
                Err(error) => Err(("unreachable", error.to_string())),
            }
        });
        // Storage matters where files are served: the API (and dev, which includes it).
        let uses_storage = matches!(self.identity.mode, "serve" | "dev");
        let storage = timed(async {
            match tokio::time::timeout(limit, storage.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(("unreachable", format!("{error:#}"))),
                Err(_) => Err((
                    "timeout",
                    format!("no answer within {} ms", limit.as_millis()),
                )),
            }
        });
        let storage = async {
            if uses_storage {
                Some(storage.await)
            } else {
                None
            }
        };
        let (postgres, redis, storage) = tokio::join!(postgres, redis, storage);
        let mut checks = BTreeMap::new();
        checks.insert(
            "postgres",
            record("postgres", &self.postgres_down, postgres),
        );
        checks.insert("redis", record("redis", &self.redis_down, redis));
        if let Some(storage) = storage {
            checks.insert("storage", record("storage", &self.storage_down, storage));
        }
        let schema = match checks.get("postgres") {
            Some(check) if check.status == "up" => self.schema(db).await,
            _ => None,
        };
        let healthy = checks.values().all(|c| c.status == "up")
            && schema.as_ref().is_none_or(|s| s.pending == 0);
        HealthReport {
            status: if healthy { "healthy" } else { "degraded" },
            checks,
            schema,
            version: crate::VERSION,
            mode: self.identity.mode,
            service: self.identity.service.clone(),
            replica: self.identity.replica.clone(),
            uptime_s: self.uptime().as_secs(),
            details: self.details.lock().map(|d| d.clone()).unwrap_or_default(),
        }
    }
}

impl HealthMonitor {
    /// The schema's state, logging a change once. `None` when it cannot be read in time.
    async fn schema(&self, db: &PgPool) -> Option<Schema> {
        let pending = match tokio::time::timeout(self.limit, crate::db::pending(db)).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(error)) => {
                tracing::debug!(error = format!("{error:#}"), "could not read the schema");
                return None;
            }
            Err(_) => return None,
        };
        let behind = pending > 0;
        if self.schema_behind.swap(behind, Ordering::Relaxed) != behind {
            if behind {
                tracing::warn!(
                    pending,
                    "the database schema is behind this release; run `app migrate`"
                );
            } else {
                tracing::info!("the database schema is current");
            }
        }
        Some(Schema {
            status: if behind { "behind" } else { "current" },
            pending,
        })
    }
}

type Outcome = Result<(), (&'static str, String)>;

async fn timed(work: impl Future<Output = Outcome>) -> (Outcome, f64) {
    let start = Instant::now();
    let outcome = work.await;
    (outcome, start.elapsed().as_secs_f64() * 1000.0)
}

/// Builds the check and logs a change of state once, with the cause.
fn record(
    name: &'static str,
    was_down: &AtomicBool,
    (outcome, latency_ms): (Outcome, f64),
) -> Check {
    let latency_ms = (latency_ms * 100.0).round() / 100.0;
    match outcome {
        Ok(()) => {
            if was_down.swap(false, Ordering::Relaxed) {
                tracing::info!(dependency = name, "dependency is back up");
            }
            Check {
                status: "up",
                latency_ms,
                error: None,
            }
        }
        Err((kind, cause)) => {
            if !was_down.swap(true, Ordering::Relaxed) {
                tracing::warn!(dependency = name, error = %cause, "dependency check failed");
            }
            Check {
                status: "down",
                latency_ms,
                error: Some(kind.to_string()),
            }
        }
    }
}
