//! The layers that make up the configuration, each named for the place its values come
//! from, and the translation of figment's errors into messages that name that place.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::Serialize;

use super::{ConfigError, DEFAULTS_TOML, LoadOptions};

/// Every environment variable read, and the setting it fills. The README's settings table
/// and `config/default.toml` document the same list.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("APP_ENV", "app.env"),
    ("ADMIN_TOKEN", "app.admin_token"),
    ("ADMIN_TOKEN_ENABLED", "app.admin_token_enabled"),
    ("APP_SECRET", "app.secret"),
    ("APP_PUBLIC_URL", "app.public_url"),
    ("HOST", "http.host"),
    ("PORT", "http.port"),
    (
        "HTTP_REQUEST_TIMEOUT_SECONDS",
        "http.request_timeout_seconds",
    ),
    ("HTTP_BODY_LIMIT_BYTES", "http.body_limit_bytes"),
    (
        "HTTP_HEADER_READ_TIMEOUT_SECONDS",
        "http.header_read_timeout_seconds",
    ),
    // FastAPI deployments often name it CORS_ORIGINS; the canonical name wins when both are set.
    ("CORS_ORIGINS", "http.cors_allowed_origins"),
    ("CORS_ALLOWED_ORIGINS", "http.cors_allowed_origins"),
    ("CORS_ALLOW_CREDENTIALS", "http.cors_allow_credentials"),
    ("CONSOLE_SESSION_HOURS", "http.console_session_hours"),
    ("OPENAPI_PUBLIC", "http.openapi_public"),
    ("LOG_LEVEL", "log.level"),
    ("RUST_LOG", "log.filter"),
    ("LOG_FORMAT", "log.format"),
    ("DATABASE_URL", "database.url"),
    ("DATABASE_MAX_CONNECTIONS", "database.max_connections"),
    ("DATABASE_MIN_CONNECTIONS", "database.min_connections"),
    (
        "DATABASE_ACQUIRE_TIMEOUT_SECONDS",
        "database.acquire_timeout_seconds",
    ),
    (
        "DATABASE_CONNECT_TIMEOUT_SECONDS",
        "database.connect_timeout_seconds",
    ),
    ("REDIS_URL", "redis.url"),
    ("REDIS_POOL_SIZE", "redis.pool_size"),
    ("REDIS_TIMEOUT_SECONDS", "redis.timeout_seconds"),
    ("REDIS_KEY_PREFIX", "redis.key_prefix"),
    ("REDIS_CLUSTER_URLS", "redis.cluster_urls"),
    (
        "STARTUP_DEPENDENCY_WAIT_SECONDS",
        "startup.dependency_wait_seconds",
    ),
    ("MIGRATE_ON_START", "startup.migrate"),
    ("SHUTDOWN_DRAIN_SECONDS", "shutdown.drain_seconds"),
    ("HEALTH_CHECK_TIMEOUT_MS", "health.check_timeout_ms"),
    ("JOBS_QUEUES", "jobs.queues"),
    ("JOBS_MAX_ATTEMPTS", "jobs.max_attempts"),
    ("JOBS_TIMEOUT_SECONDS", "jobs.timeout_seconds"),
    ("JOBS_BACKOFF_BASE_MS", "jobs.backoff_base_ms"),
    ("JOBS_BACKOFF_CAP_SECONDS", "jobs.backoff_cap_seconds"),
    (
        "JOBS_IDEMPOTENCY_WINDOW_SECONDS",
        "jobs.idempotency_window_seconds",
    ),
    ("JOBS_RETENTION_SECONDS", "jobs.retention_seconds"),
    ("JOBS_DEAD_RETENTION_DAYS", "jobs.dead_retention_days"),
    ("JOBS_MAX_PAYLOAD_BYTES", "jobs.max_payload_bytes"),
    ("JOBS_ACCEPT_UNKNOWN_KINDS", "jobs.accept_unknown_kinds"),
    ("WORKER_QUEUES", "worker.queues"),
    ("WORKER_CONCURRENCY", "worker.concurrency"),
    ("WORKER_LEASE_SECONDS", "worker.lease_seconds"),
    ("OUTBOUND_TIMEOUT_SECONDS", "outbound.timeout_seconds"),
    ("OUTBOUND_MAX_RESPONSE_BYTES", "outbound.max_response_bytes"),
    ("OUTBOUND_MAX_CONCURRENT", "outbound.max_concurrent"),
    ("OUTBOUND_MAX_REDIRECTS", "outbound.max_redirects"),
    ("OUTBOUND_ALLOW_HOSTS", "outbound.allow_hosts"),
    ("OUTBOUND_ALLOW_PRIVATE", "outbound.allow_private"),
    ("OUTBOUND_SIGNING_SECRET", "outbound.signing_secret"),
    ("MAIL_DRIVER", "mail.driver"),
    ("MAIL_BASE_URL", "mail.base_url"),
    ("MAIL_API_KEY", "mail.api_key"),
    ("MAIL_FROM", "mail.from"),
    ("AUDIT_RETENTION_DAYS", "audit.retention_days"),
    ("EVENTS_RETENTION_DAYS", "events.retention_days"),
    ("EVENTS_RELAY_BATCH", "events.relay_batch"),
    ("EVENTS_RELAY_POLL_MS", "events.relay_poll_ms"),
    ("EVENTS_MAX_DATA_BYTES", "events.max_data_bytes"),
    ("WEBHOOKS_RETRY_SCHEDULE", "webhooks.retry_schedule"),
    ("WEBHOOKS_RETRY_JITTER", "webhooks.retry_jitter"),
    (
        "WEBHOOKS_SECRET_OVERLAP_HOURS",
        "webhooks.secret_overlap_hours",
    ),
    ("WEBHOOKS_DISABLE_AFTER_DAYS", "webhooks.disable_after_days"),
    (
        "WEBHOOKS_DISABLE_AFTER_FAILURES",
        "webhooks.disable_after_failures",
    ),
    ("ENCRYPTION_KEY", "encryption.key"),
    ("ENCRYPTION_KEY_PREVIOUS", "encryption.previous_key"),
    ("SCHEDULER_BUILTIN", "scheduler.builtin"),
    ("SCHEDULER_LEASE_SECONDS", "scheduler.lease_seconds"),
    // Storage: each platform's own names, the most generic first, so that a more specific
    // name wins when several are set: Railway Buckets' injected variables, then the AWS
    // names `railway bucket credentials` prints, then the S3_* names, then our own.
    ("BUCKET", "storage.bucket"),
    ("ACCESS_KEY_ID", "storage.access_key_id"),
    ("SECRET_ACCESS_KEY", "storage.secret_access_key"),
    ("ENDPOINT", "storage.endpoint"),
    ("REGION", "storage.region"),
    ("AWS_S3_BUCKET_NAME", "storage.bucket"),
    ("AWS_ACCESS_KEY_ID", "storage.access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "storage.secret_access_key"),
    ("AWS_ENDPOINT_URL", "storage.endpoint"),
    ("AWS_DEFAULT_REGION", "storage.region"),
    ("S3_BUCKET", "storage.bucket"),
    ("S3_ACCESS_KEY", "storage.access_key_id"),
    ("S3_SECRET_KEY", "storage.secret_access_key"),
    ("S3_ENDPOINT", "storage.endpoint"),
    ("S3_REGION", "storage.region"),
    ("STORAGE_BACKEND", "storage.backend"),
    ("STORAGE_PATH", "storage.path"),
    ("STORAGE_PATH_STYLE", "storage.path_style"),
    ("STORAGE_UPLOAD_MEMORY", "storage.upload_memory"),
    ("STORAGE_KEY_PREFIX", "storage.key_prefix"),
    (
        "STORAGE_CONNECT_TIMEOUT_SECONDS",
        "storage.connect_timeout_seconds",
    ),
    (
        "STORAGE_READ_TIMEOUT_SECONDS",
        "storage.read_timeout_seconds",
    ),
    (
        "STORAGE_SIGNED_URL_TTL_SECONDS",
        "storage.signed_url_ttl_seconds",
    ),
    (
        "STORAGE_ORPHAN_GRACE_SECONDS",
        "storage.orphan_grace_seconds",
    ),
    ("REALTIME_MAX_CONNECTIONS", "realtime.max_connections"),
    ("REALTIME_MAX_SUBSCRIPTIONS", "realtime.max_subscriptions"),
    ("REALTIME_MAX_FRAME_BYTES", "realtime.max_frame_bytes"),
    (
        "REALTIME_MESSAGES_PER_SECOND",
        "realtime.messages_per_second",
    ),
    ("REALTIME_MESSAGE_BURST", "realtime.message_burst"),
    (
        "REALTIME_CONNECTIONS_PER_IP_PER_MINUTE",
        "realtime.connections_per_ip_per_minute",
    ),
    ("REALTIME_CLIENT_IP_HEADER", "realtime.client_ip_header"),
    ("RATE_LIMIT_RATE", "rate_limit.rate"),
    ("RATE_LIMIT_BURST", "rate_limit.burst"),
    ("RATE_LIMIT_FAILED_AUTH_RATE", "rate_limit.failed_auth_rate"),
    (
        "RATE_LIMIT_FAILED_AUTH_BURST",
        "rate_limit.failed_auth_burst",
    ),
    ("RATE_LIMIT_ON_REDIS_DOWN", "rate_limit.on_redis_down"),
    ("RATE_LIMIT_TRUSTED_PROXIES", "rate_limit.trusted_proxies"),
    ("REALTIME_ALLOWED_ORIGINS", "realtime.allowed_origins"),
    (
        "REALTIME_AUTH_TIMEOUT_SECONDS",
        "realtime.auth_timeout_seconds",
    ),
    ("REALTIME_HEARTBEAT_SECONDS", "realtime.heartbeat_seconds"),
    (
        "REALTIME_HEARTBEAT_TIMEOUT_SECONDS",
        "realtime.heartbeat_timeout_seconds",
    ),
    ("REALTIME_OUTBOUND_QUEUE", "realtime.outbound_queue"),
    ("REALTIME_HISTORY_SIZE", "realtime.history_size"),
    (
        "REALTIME_HISTORY_TTL_SECONDS",
        "realtime.history_ttl_seconds",
    ),
    ("REALTIME_MAX_EVENT_BYTES", "realtime.max_event_bytes"),
    ("REALTIME_TOKEN_TTL_SECONDS", "realtime.token_ttl_seconds"),
    ("REALTIME_JOB_EVENTS", "realtime.job_events"),
    ("RAILWAY_ENVIRONMENT_NAME", "railway.environment_name"),
    ("RAILWAY_SERVICE_NAME", "railway.service_name"),
    // The same name on any other platform (Kubernetes: the manifests set it); it wins.
    ("SERVICE_NAME", "railway.service_name"),
    ("RAILWAY_REPLICA_ID", "railway.replica_id"),
    ("HOSTNAME", "railway.hostname"),
    ("RAILWAY_PUBLIC_DOMAIN", "railway.public_domain"),
];

/// A value given on the command line, e.g. `--port 9000` for `http.port`.
#[derive(Clone, Debug)]
pub struct Override {
    flag: &'static str,
    key: &'static str,
    value: Value,
}

impl Override {
    pub fn new(flag: &'static str, key: &'static str, value: impl Serialize) -> Self {
        let value = Value::serialize(value).unwrap_or_else(|e| Value::from(e.to_string()));
        Self { flag, key, value }
    }
}

/// One value from one named place: an environment variable or a flag.
struct Single {
    origin: String,
    key: &'static str,
    value: Value,
}

impl Provider for Single {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let dict = figment::util::nest(self.key, self.value.clone())
            .into_dict()
            .unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

/// The defaults compiled into the binary.
struct BuiltIn;

impl Provider for BuiltIn {
    fn metadata(&self) -> Metadata {
        Metadata::named("built-in defaults")
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Toml::string(DEFAULTS_TOML).data()
    }
}

/// Builds the figment, lowest layer first.
pub(super) fn layered(options: &LoadOptions) -> Result<Figment, ConfigError> {
    let env = &options.environment;
    let app_env = env
        .get("APP_ENV")
        .or_else(|| env.get("RAILWAY_ENVIRONMENT_NAME"))
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| "development".to_string());
    let file_safe = app_env
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !file_safe {
        return Err(ConfigError(format!(
            "invalid APP_ENV {app_env:?}: use letters, digits, '-' or '_' (it names config/<APP_ENV>.toml)"
        )));
    }
    let dir = options
        .config_dir
        .clone()
        .or_else(|| env.get("CONFIG_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("config"));
    if options.config_dir.is_some() && !dir.is_dir() {
        return Err(ConfigError(format!(
            "--config-dir {}: not a directory",
            dir.display()
        )));
    }

    let mut figment = Figment::new().merge(BuiltIn);
    for file in [
        dir.join("default.toml"),
        dir.join("schedule.toml"),
        dir.join(format!("{app_env}.toml")),
    ] {
        if file.is_file() {
            figment = figment.merge(Toml::file_exact(&file));
        }
    }
    // The environment name chose the files, so no file may contradict it.
    figment = figment.merge(Single {
        origin: "APP_ENV (or RAILWAY_ENVIRONMENT_NAME)".into(),
        key: "app.env",
        value: Value::from(app_env.clone()),
    });
    for (var, key) in ENVIRONMENT {
        if let Some(raw) = env.get(*var) {
            figment = figment.merge(Single {
                origin: format!("environment variable {var}"),
                key,
                value: raw.parse().unwrap_or_else(|_| Value::from(raw.clone())),
            });
        }
    }
    for o in &options.overrides {
        figment = figment.merge(Single {
            origin: format!("command-line flag {}", o.flag),
            key: o.key,
            value: o.value.clone(),
        });
    }
    Ok(figment)
}

/// Names a provider for a person: `environment variable PORT`, `config file config/x.toml`.
pub(super) fn origin(metadata: &Metadata) -> String {
    match &metadata.source {
        Some(Source::File(path)) => format!("config file {}", shorten(path)),
        _ => metadata.name.to_string(),
    }
}

fn shorten(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Turns figment's extraction errors into one message per problem.
pub(super) fn describe(error: figment::Error) -> ConfigError {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let from = e
                .metadata
                .as_ref()
                .map(origin)
                .unwrap_or_else(|| "configuration".to_string());
            if key.is_empty() {
                format!("invalid configuration (from {from}): {}", e.kind)
            } else {
                format!("invalid setting {key} (from {from}): {}", e.kind)
            }
        })
        .collect();
    ConfigError(lines.join("\n"))
}
