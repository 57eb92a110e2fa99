//! What every mode shares once it has started: the settings, both pools, the object
//! store, the domain services built on them and who this process is. Cloning is cheap;
//! handlers and background tasks each hold a clone.
//!
//! Only the modes and HTTP see [`AppState`]. Everything below them is handed the pieces
//! it uses (a pool, the queues, its settings), which this module builds once.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::config::Settings;
use crate::health::HealthMonitor;
use crate::jobs::Services;
use crate::jobs::live::LiveKinds;
use crate::outbound::Outbound;
use crate::queue::Queues;
use crate::realtime::history::History;
use crate::scheduler::Scheduler;
use crate::sealed::Sealer;
use crate::storage::Storage;
use crate::telemetry::requests::RequestMetrics;
use crate::telemetry::{self, Identity};

/// Shared state of a running process.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub settings: Settings,
    pub identity: Identity,
    pub db: PgPool,
    pub redis: crate::redis::Redis,
    /// Renders the Prometheus text for `/metrics`.
    pub metrics: PrometheusHandle,
    /// Request counts and latencies, recorded by the HTTP edge.
    pub requests: Arc<RequestMetrics>,
    /// Checks the dependencies, logging each change once, and knows the uptime.
    pub health: HealthMonitor,
    /// The job queues in Redis.
    pub queues: Queues,
    /// The guarded client for outbound HTTP calls.
    pub outbound: Outbound,
    /// The object store for file contents.
    pub storage: Storage,
    /// Publishes realtime events (and reads channel history).
    pub realtime: History,
    /// Seals and opens secrets stored in Postgres (`encryption.key`).
    pub sealer: Sealer,
    /// Checks presented API keys.
    pub keys: crate::auth::keys::Verifier,
    /// Request budgets in Redis.
    pub limiter: crate::ratelimit::Limiter,
    /// Console sign-ins.
    pub sessions: crate::auth::sessions::Sessions,
    /// Cancelled when the process begins to shut down: long-lived responses (the
    /// console's live stream) end with it rather than hold the drain.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Fires schedules and reads their last runs.
    pub scheduler: Scheduler,
    /// The kinds live workers handle, for refusing a typo at enqueue.
    pub live_kinds: LiveKinds,
    /// What job handlers may use, shared by every worker engine of the process.
    job_services: Arc<Services>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Connects to Postgres and Redis at once, each retried for up to
    /// `startup.dependency_wait_seconds`.
    pub async fn connect(settings: Settings, identity: Identity) -> anyhow::Result<Self> {
        let wait = settings.startup.dependency_wait();
        let (db, redis) = tokio::try_join!(
            async {
                crate::db::connect(&settings.database, wait)
                    .await
                    .context("failed to connect to Postgres (DATABASE_URL)")
            },
            async {
                crate::redis::connect(&settings.redis, wait)
                    .await
                    .context("failed to connect to Redis (REDIS_URL)")
            },
        )?;
        Self::from_parts(settings, identity, db, redis)
    }

    /// Builds the state from pools that are already open.
    pub fn from_parts(
        settings: Settings,
        identity: Identity,
        db: PgPool,
        redis: crate::redis::Redis,
    ) -> anyhow::Result<Self> {
        let queues = Queues::new(
            redis.multiplexed(&settings.redis, 2)?,
            &settings.redis.key_prefix,
            &settings.jobs.queues,
            std::time::Duration::from_secs(settings.jobs.idempotency_window_seconds),
            std::time::Duration::from_secs(settings.jobs.retention_seconds),
        );
        let outbound = Outbound::new(&settings.outbound);
        let storage = Storage::open(&settings.storage, settings.app.secret.as_ref())?;
        let realtime = History::new(
            redis.clone(),
            &settings.redis.key_prefix,
            &settings.realtime,
        );
        let sealer = Sealer::new(&settings.encryption);
        let keys = crate::auth::keys::Verifier::new(db.clone(), &settings.encryption);
        let limiter = crate::ratelimit::Limiter::new(
            redis.multiplexed(&settings.redis, 1)?,
            &settings.redis.key_prefix,
        );
        let sessions = crate::auth::sessions::Sessions::new(
            redis.clone(),
            &settings.redis.key_prefix,
            settings.http.console_session(),
        );
        let scheduler = Scheduler::new(
            queues.clone(),
            db.clone(),
            redis.clone(),
            &settings.redis.key_prefix,
            settings.jobs.clone(),
        );
        let health = HealthMonitor::new(identity.clone(), settings.health.check_timeout());
        let live_kinds = LiveKinds::new(db.clone());
        let job_services = Arc::new(Services {
            db: db.clone(),
            redis: redis.clone(),
            outbound: outbound.clone(),
            storage: storage.clone(),
        });
        Ok(Self(Arc::new(Shared {
            settings,
            identity,
            db,
            redis,
            metrics: telemetry::metrics(),
            requests: Arc::default(),
            health,
            queues,
            outbound,
            storage,
            realtime,
            sealer,
            keys,
            limiter,
            sessions,
            stopping: tokio_util::sync::CancellationToken::new(),
            scheduler,
            live_kinds,
            job_services,
        })))
    }

    /// What job handlers may use: the pools, the outbound client and the object store.
    pub fn job_services(&self) -> Arc<Services> {
        self.job_services.clone()
    }

    /// What the events relay uses.
    pub fn relay(&self) -> crate::relay::Relay {
        crate::relay::Relay {
            db: self.db.clone(),
            queues: self.queues.clone(),
            realtime: self.realtime.clone(),
            settings: Arc::new(self.settings.clone()),
        }
    }

    /// Closes both pools. Connections still in use get a few seconds to come back; a
    /// hung one must not keep the process from exiting after its drain.
    pub async fn close(&self) {
        self.redis.close();
        if tokio::time::timeout(std::time::Duration::from_secs(3), self.db.close())
            .await
            .is_err()
        {
            tracing::warn!("postgres connections still busy at exit; closing anyway");
        }
    }
}
