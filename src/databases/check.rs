//! Checking a registered database: resolve its host under the SSRF guard's rules, connect
//! to the address that was checked (so a second lookup cannot land elsewhere), run one
//! query, and report the latency or the class of the failure. The whole check is bounded
//! by a timeout. No setting of this process leaks into the attempt: every connection
//! option is set from the registration, a missing password included.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};
use utoipa::ToSchema;

use super::Credentials;
use crate::outbound::Outbound;

/// How long a check may take in all.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What a check found.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckReport {
    pub ok: bool,
    /// Connecting and one query, when it worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The server's version, when it worked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// Why not: `forbidden` (a private address the SSRF rules refuse), `dns`, `connect`,
    /// `timeout`, `tls`, `auth`, `database_missing` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CheckReport {
    fn failed(class: &'static str, error: impl Into<String>) -> Self {
        Self {
            ok: false,
            latency_ms: None,
            server_version: None,
            error_class: Some(class),
            error: Some(error.into()),
        }
    }
}

/// Tries the database within `timeout`.
pub async fn check(
    outbound: &Outbound,
    credentials: &Credentials,
    timeout: Duration,
) -> CheckReport {
    match tokio::time::timeout(timeout, attempt(outbound, credentials)).await {
        Ok(report) => report,
        Err(_) => CheckReport::failed(
            "timeout",
            format!("no answer within {}s", timeout.as_secs_f64()),
        ),
    }
}

async fn attempt(outbound: &Outbound, credentials: &Credentials) -> CheckReport {
    let addresses = match outbound
        .check_host(&credentials.host, credentials.port)
        .await
    {
        Ok(addresses) => addresses,
        Err(refused) => {
            return CheckReport::failed(
                "forbidden",
                format!(
                    "{refused}; private addresses are refused unless outbound.allow_hosts names the host"
                ),
            );
        }
    };
    let Some(address) = addresses.first() else {
        return CheckReport::failed("dns", format!("{} does not resolve", credentials.host));
    };
    let ssl_mode = match credentials.ssl_mode.as_str() {
        "disable" => PgSslMode::Disable,
        "require" => PgSslMode::Require,
        _ => PgSslMode::Prefer,
    };
    let options = PgConnectOptions::new_without_pgpass()
        .host(&address.to_string())
        .port(credentials.port)
        .database(&credentials.database)
        .username(credentials.username.as_deref().unwrap_or("postgres"))
        // Never the PGPASSWORD of this process: an empty one when none is registered.
        .password(credentials.password.as_deref().unwrap_or(""))
        .ssl_mode(ssl_mode)
        .application_name("switchyard-check")
        .log_statements(tracing::log::LevelFilter::Off);
    let began = Instant::now();
    let connected = options.connect().await;
    let mut conn = match connected {
        Ok(conn) => conn,
        Err(error) => return classify(&error),
    };
    let version: Result<String, _> = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await;
    let latency = began.elapsed();
    let _ = conn.close().await;
    match version {
        Ok(version) => CheckReport {
            ok: true,
            latency_ms: Some(latency.as_millis() as u64),
            server_version: Some(version),
            error_class: None,
            error: None,
        },
        Err(error) => classify(&error),
    }
}

/// The class of a failed connection, and its message (which never carries a password).
fn classify(error: &sqlx::Error) -> CheckReport {
    let class = match error {
        sqlx::Error::Io(_) => "connect",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("28") => "auth",
            Some("3D000") => "database_missing",
            _ => "other",
        },
        _ => "other",
    };
    CheckReport::failed(class, error.to_string())
}
