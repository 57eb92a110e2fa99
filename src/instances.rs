//! The instance registry: each running process has a row in `instances` with its mode,
//! version and replica, refreshed by a heartbeat and removed on a clean exit, so operators
//! can see what is live and which version each replica runs.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::telemetry::Identity;

const HEARTBEAT: Duration = Duration::from_secs(10);

/// A process that heartbeated within the last minute.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Instance {
    pub id: Uuid,
    pub mode: String,
    pub service: String,
    pub replica: String,
    pub version: String,
    pub details: serde_json::Value,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub heartbeat_at: chrono::DateTime<chrono::Utc>,
}

/// This process's row, kept fresh until shutdown.
pub struct Registration {
    id: Uuid,
    db: PgPool,
    heartbeat: JoinHandle<()>,
    stop: CancellationToken,
}

impl Registration {
    /// Inserts the row and starts the heartbeat. A database without the migration (a
    /// deploy whose pre-deploy step did not run) logs a warning and runs unregistered.
    pub async fn start(
        db: &PgPool,
        identity: &Identity,
        details: serde_json::Value,
    ) -> Option<Self> {
        let id = Uuid::now_v7();
        let insert = async {
            let mut conn = db.acquire().await?;
            let result = sqlx::query(
                "INSERT INTO instances (id, mode, service, replica, version, details) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(identity.mode)
            .bind(&identity.service)
            .bind(&identity.replica)
            .bind(crate::VERSION)
            .bind(&details)
            .execute(&mut *conn)
            .await;
            // Returned before the process starts serving, so the first request reuses
            // this connection instead of racing its return and opening another.
            conn.return_to_pool().await;
            result
        };
        let inserted = insert.await;
        if let Err(error) = inserted {
            tracing::warn!(
                error = %error,
                "could not register this instance; are migrations applied (app migrate)?"
            );
            return None;
        }
        let stop = CancellationToken::new();
        let heartbeat = tokio::spawn(beat(db.clone(), id, stop.clone()));
        Some(Self {
            id,
            db: db.clone(),
            heartbeat,
            stop,
        })
    }

    /// Stops the heartbeat and removes the row.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.heartbeat.await;
        let delete = sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(self.id)
            .execute(&self.db);
        // A database that is down at exit must not hold the exit; the row then ages out.
        match tokio::time::timeout(Duration::from_secs(3), delete).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "could not remove this instance's registry row")
            }
            Err(_) => tracing::warn!("removing this instance's registry row timed out"),
        }
    }
}

async fn beat(db: PgPool, id: Uuid, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Rows of processes killed without a clean exit are swept by whoever is alive.
        let result = sqlx::query(
            "WITH beat AS (UPDATE instances SET heartbeat_at = now() WHERE id = $1) \
             DELETE FROM instances WHERE heartbeat_at < now() - interval '1 hour'",
        )
        .bind(id)
        .execute(&db)
        .await;
        if let Err(error) = result {
            tracing::debug!(error = %error, "instance heartbeat failed; will retry");
        }
    }
}

/// How many processes of each mode heartbeated within the last minute.
pub async fn live_by_mode(db: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = sqlx::query_as(
        "SELECT mode, count(*) FROM instances \
         WHERE heartbeat_at > now() - interval '1 minute' GROUP BY mode ORDER BY mode",
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Processes that heartbeated within the last minute, newest first.
pub async fn live(db: &PgPool) -> anyhow::Result<Vec<Instance>> {
    let rows = sqlx::query_as(
        "SELECT id, mode, service, replica, version, details, started_at, heartbeat_at \
         FROM instances WHERE heartbeat_at > now() - interval '1 minute' \
         ORDER BY started_at DESC LIMIT 200",
    )
    .fetch_all(db)
    .await?;
    Ok(rows)
}
