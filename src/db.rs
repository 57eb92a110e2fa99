//! PostgreSQL: the pool every mode shares, opened with start-up retries, and the embedded
//! migrations with their status.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::config::DatabaseSettings;
use crate::retry::{self, Attempt};

/// How long a pooled connection may sit idle before it is tested on checkout.
const TEST_IDLE_AFTER: Duration = Duration::from_secs(10);

/// The SQL files in `migrations/`, compiled into the binary.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    // A rollback to an older image must not fail its pre-deploy step because the database
    // already has a newer migration; `status` reports such versions instead.
    migrator.set_ignore_missing(true);
    migrator
}

/// Opens the pool and waits until Postgres accepts a connection, for at most `wait`.
///
/// The first attempt goes through the pool, so on a normal boot the connection it opens
/// is the one the process goes on using (each new Postgres connection costs tens of
/// milliseconds of fork and authentication). When that attempt does not succeed quickly,
/// later ones are plain connections, each bounded by `connect_timeout_seconds` and by
/// what is left of the wait, so that every retry is logged with its real cause and the
/// deadline holds.
pub async fn connect(settings: &DatabaseSettings, wait: Duration) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(|e| anyhow!("DATABASE_URL is not a usable Postgres URL: {e}"))?
        .application_name("switchyard");
    // sqlx keeps the brackets of an IPv6 host (`[::1]`) and then fails to resolve it.
    let options = match settings.url.url().host() {
        Some(url::Host::Ipv6(ip)) => options.host(&ip.to_string()),
        _ => options,
    };
    let pool = PgPoolOptions::new()
        // sqlx pings every pooled connection before lending it by default: a round trip
        // before every checkout's first statement, which under load waits for a busy CPU
        // like any other. Only a connection idle for a while is likely to have been cut
        // (a restart, a failover, a proxy's idle timeout), so only such a one is tested;
        // one that fails is dropped and another lent. sqlx also pings each connection
        // as it goes back to the pool, which catches a connection broken while in use.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= TEST_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_seconds))
        .connect_lazy_with(options.clone());
    let connect_timeout = Duration::from_secs(settings.connect_timeout_seconds);
    let endpoint = settings.url.endpoint();
    let deadline = tokio::time::Instant::now() + wait;
    let mut attempts = 0u32;
    retry::until_ready("postgres", wait, || {
        attempts += 1;
        let first = attempts == 1;
        let (pool, options, endpoint) = (pool.clone(), options.clone(), endpoint.clone());
        async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let limit = connect_timeout.min(left).max(Duration::from_millis(100));
            if first {
                let limit = limit.min(Duration::from_secs(1));
                return match tokio::time::timeout(limit, pool.acquire()).await {
                    Ok(Ok(mut connection)) => {
                        // Back in the pool before anyone asks, or the next query opens
                        // a second connection.
                        connection.return_to_pool().await;
                        Attempt::Ready(())
                    }
                    Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => Attempt::Retry(anyhow!(
                        "Postgres at {endpoint} did not accept a connection within {} ms",
                        limit.as_millis()
                    )),
                    Ok(Err(error)) => classify(error, &endpoint),
                };
            }
            match tokio::time::timeout(limit, PgConnection::connect_with(&options)).await {
                Ok(Ok(probe)) => {
                    let _ = probe.close().await;
                    Attempt::Ready(())
                }
                Ok(Err(error)) => classify(error, &endpoint),
                Err(_) => Attempt::Retry(anyhow!(
                    "connecting to Postgres at {endpoint} timed out after {} ms",
                    limit.as_millis()
                )),
            }
        }
    })
    .await?;
    tracing::info!(endpoint = %endpoint, "connected to postgres");
    Ok(pool)
}

/// A server that answered with an error other than "starting up" or "too many
/// connections" will answer the same way next time.
fn classify<T>(error: sqlx::Error, endpoint: &str) -> Attempt<T> {
    const RETRYABLE: [&str; 3] = ["57P03", "53300", "08006"];
    let transient = match &error {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| RETRYABLE.contains(&c.as_ref())),
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => false,
        _ => true,
    };
    let error = anyhow::Error::new(error).context(format!("Postgres at {endpoint}"));
    if transient {
        Attempt::Retry(error)
    } else {
        Attempt::Fatal(error)
    }
}

/// One migration and whether this database has it.
#[derive(Debug, Serialize)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    /// `applied`, `pending`, `modified` (applied with other content than this binary's)
    /// or `unknown` (applied by a newer binary).
    pub state: &'static str,
    pub applied_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Applies pending migrations under sqlx's advisory lock, each in its own transaction,
/// and returns the versions this call applied.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<Vec<i64>> {
    let before = status(pool).await?;
    migrator()
        .run(pool)
        .await
        .context("failed to apply migrations; the failing migration was rolled back")?;
    let after = status(pool).await?;
    let applied = after
        .iter()
        .filter(|m| m.state == "applied")
        .filter(|m| {
            before
                .iter()
                .any(|b| b.version == m.version && b.state == "pending")
        })
        .map(|m| m.version)
        .collect();
    Ok(applied)
}

/// How many of this binary's migrations the database lacks: 0 when its schema is current.
pub async fn pending(pool: &PgPool) -> anyhow::Result<usize> {
    Ok(status(pool)
        .await?
        .iter()
        .filter(|m| m.state == "pending")
        .count())
}

/// Every migration the binary knows or the database has applied, oldest first.
pub async fn status(pool: &PgPool) -> anyhow::Result<Vec<MigrationState>> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .context("failed to read the migrations table")?;
    let applied: Vec<(i64, String, Vec<u8>, chrono::DateTime<chrono::Utc>)> = if exists.is_some() {
        sqlx::query_as(
            "SELECT version, description, checksum, installed_on \
             FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(pool)
        .await
        .context("failed to read the migrations table")?
    } else {
        Vec::new()
    };
    let migrator = migrator();
    let mut states: Vec<MigrationState> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| {
            let found = applied.iter().find(|a| a.0 == m.version);
            MigrationState {
                version: m.version,
                description: m.description.to_string(),
                state: match found {
                    None => "pending",
                    Some(a) if a.2 == m.checksum.as_ref() => "applied",
                    Some(_) => "modified",
                },
                applied_at: found.map(|a| a.3),
            }
        })
        .collect();
    for (version, description, _, at) in &applied {
        if !migrator.version_exists(*version) {
            states.push(MigrationState {
                version: *version,
                description: description.clone(),
                state: "unknown",
                applied_at: Some(*at),
            });
        }
    }
    states.sort_by_key(|m| m.version);
    Ok(states)
}

/// `text` for a `LIKE` pattern, matched literally: `%`, `_` and `\` lose their meaning.
/// Append `%` for a prefix match.
pub fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_wildcards_in_a_prefix_are_literal() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
    }
}
