//! Typed, layered, validated configuration. This module is the only place that reads the
//! process environment.
//!
//! Layers, later wins:
//! 1. the defaults compiled into the binary (`config/default.toml`),
//! 2. `$CONFIG_DIR/default.toml`, then `$CONFIG_DIR/$APP_ENV.toml`, when present,
//! 3. environment variables, each named in [`ENVIRONMENT`] (Railway's own names included),
//! 4. command-line flags.
//!
//! Every layer is a figment provider whose name says where a value came from, so a bad
//! value stops start-up with a message that names the variable, file or flag at fault.

mod realtime;
mod secret;
mod sources;
mod storage;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

pub use realtime::RealtimeSettings;
pub use secret::{Secret, SecretUrl};
pub use sources::{ENVIRONMENT, Override};
pub use storage::{BucketSettings, ByteSize, StorageBackend, StorageSettings};

/// The defaults every deployment starts from; the same file documents each key.
pub const DEFAULTS_TOML: &str = include_str!("../../config/default.toml");

/// Everything a mode needs to run, validated.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub app: AppSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub startup: StartupSettings,
    pub shutdown: ShutdownSettings,
    pub health: HealthSettings,
    pub jobs: JobsSettings,
    pub worker: WorkerSettings,
    pub outbound: OutboundSettings,
    pub mail: MailSettings,
    pub audit: AuditSettings,
    pub scheduler: SchedulerSettings,
    pub storage: StorageSettings,
    pub realtime: RealtimeSettings,
    /// Cron schedules: `[[schedule]]` tables, from `config/schedule.toml` or any layer.
    #[serde(default)]
    pub schedule: Vec<ScheduleSettings>,
    pub railway: RailwaySettings,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// Which `config/<env>.toml` overlay was loaded (`APP_ENV`, else Railway's environment).
    pub env: String,
    /// Bearer token for every endpoint but health. Unset means those endpoints refuse all.
    pub admin_token: Option<Secret>,
    /// Key for signing (signed URLs, realtime tokens).
    pub secret: Option<Secret>,
    /// Where clients reach the API (`https://api.example.com`), for the links it hands
    /// out; `https://$RAILWAY_PUBLIC_DOMAIN` when unset, else the request's own host.
    pub public_url: Option<url::Url>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub host: IpAddr,
    /// `serve`, `realtime` and `dev` listen here (8080 when unset); `worker` and
    /// `scheduler` serve health here only when it is set, as Railway does with `PORT`.
    pub port: Option<u16>,
    pub request_timeout_seconds: u64,
    pub body_limit_bytes: usize,
    /// A connection whose request headers take longer is closed (slow-client guard).
    pub header_read_timeout_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    /// A full `RUST_LOG` directive; wins over `level` when set.
    pub filter: Option<String>,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    Auto,
    Json,
    Pretty,
}

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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupSettings {
    pub dependency_wait_seconds: u64,
    /// `serve` applies pending migrations before listening (`--migrate`), for platforms
    /// without a pre-deploy step.
    pub migrate: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    pub drain_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    pub check_timeout_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSettings {
    /// The queues that exist; an enqueue elsewhere is refused.
    #[serde(deserialize_with = "list_or_csv")]
    pub queues: Vec<String>,
    pub max_attempts: u32,
    pub timeout_seconds: u64,
    pub backoff_base_ms: u64,
    pub backoff_cap_seconds: u64,
    pub idempotency_window_seconds: u64,
    /// How long succeeded and cancelled jobs stay queryable in Redis.
    pub retention_seconds: u64,
    pub dead_retention_days: u32,
    pub max_payload_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// `name` or `name:weight` entries.
    #[serde(deserialize_with = "list_or_csv")]
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub lease_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    pub timeout_seconds: u64,
    pub max_response_bytes: usize,
    pub max_concurrent: usize,
    pub max_redirects: u32,
    /// Host patterns (`*.railway.internal`, `hooks.local`) that may resolve to private
    /// addresses.
    #[serde(deserialize_with = "list_or_csv")]
    pub allow_hosts: Vec<String>,
    /// Lifts the private-address refusal for every host (development).
    pub allow_private: bool,
    /// Standard Webhooks secret, `whsec_` + base64.
    pub signing_secret: Option<Secret>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailDriver {
    /// Writes mails to the log instead of sending them.
    Log,
    /// Sends through a Resend-compatible HTTP API.
    Resend,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub driver: MailDriver,
    pub base_url: url::Url,
    pub api_key: Option<Secret>,
    pub from: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Adds the built-in maintenance schedules (the retention sweep daily at 02:00 UTC).
    pub builtin: bool,
    /// The leader's lease in Redis; a replica that dies is replaced within about this.
    pub lease_seconds: u64,
}

/// What a schedule does when ticks were missed while no scheduler ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Missed ticks are skipped.
    #[default]
    None,
    /// Only the newest missed tick is enqueued.
    Latest,
}

/// One cron schedule: when, and the job it enqueues.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub name: String,
    pub cron: String,
    #[serde(default = "utc")]
    pub timezone: String,
    pub queue: Option<String>,
    pub kind: String,
    #[serde(default = "empty_object")]
    pub payload: serde_json::Value,
    pub max_attempts: Option<u32>,
    pub timeout_seconds: Option<u64>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub catch_up: CatchUp,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

fn yes() -> bool {
    true
}

impl ScheduleSettings {
    /// The built-in maintenance: the `deletes` retention sweep daily at 02:00 UTC.
    pub fn builtin() -> Vec<Self> {
        vec![Self {
            name: "maintenance.deletes".into(),
            cron: "0 2 * * *".into(),
            timezone: utc(),
            queue: Some("deletes".into()),
            kind: "deletes".into(),
            payload: empty_object(),
            max_attempts: None,
            timeout_seconds: None,
            enabled: true,
            catch_up: CatchUp::Latest,
        }]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    pub retention_days: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RailwaySettings {
    pub environment_name: Option<String>,
    pub service_name: Option<String>,
    pub replica_id: Option<String>,
    /// The container's host name, the replica's name when Railway gives none.
    pub hostname: Option<String>,
    /// The service's public domain, when Railway generated one.
    pub public_domain: Option<String>,
}

impl Settings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.http.request_timeout_seconds)
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.shutdown.drain_seconds)
    }

    pub fn dependency_wait(&self) -> Duration {
        Duration::from_secs(self.startup.dependency_wait_seconds)
    }

    pub fn health_check_timeout(&self) -> Duration {
        Duration::from_millis(self.health.check_timeout_ms)
    }

    /// The service name logs and health report: Railway's, else `switchyard`.
    pub fn service_name(&self) -> &str {
        self.railway.service_name.as_deref().unwrap_or("switchyard")
    }

    /// The queues `worker.queues` names, each with its weight (1 when not given).
    pub fn worker_queues(&self) -> Vec<(String, u32)> {
        self.worker
            .queues
            .iter()
            .map(|entry| match entry.split_once(':') {
                Some((name, weight)) => (name.to_owned(), weight.parse().unwrap_or(1)),
                None => (entry.clone(), 1),
            })
            .collect()
    }

    /// Every schedule: the configured ones, then the built-in ones unless switched off.
    pub fn schedules(&self) -> Vec<ScheduleSettings> {
        let mut all = self.schedule.clone();
        if self.scheduler.builtin {
            // A built-in schedule whose queue is not declared is left out, not an error.
            all.extend(ScheduleSettings::builtin().into_iter().filter(|b| {
                b.queue
                    .as_ref()
                    .is_none_or(|q| self.jobs.queues.contains(q))
            }));
        }
        all
    }

    /// The base of the links the API hands out, when it is known without a request.
    pub fn public_url(&self) -> Option<url::Url> {
        self.app.public_url.clone().or_else(|| {
            let domain = self.railway.public_domain.as_deref()?;
            url::Url::parse(&format!("https://{domain}")).ok()
        })
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.worker.lease_seconds)
    }

    /// Which replica this is: Railway's replica id, else the host name.
    pub fn replica_id(&self) -> &str {
        self.railway
            .replica_id
            .as_deref()
            .or(self.railway.hostname.as_deref())
            .unwrap_or("local")
    }
}

/// Loaded settings plus the record of where each value came from.
pub struct Loaded {
    pub settings: Settings,
    figment: Figment,
}

impl Loaded {
    /// Every effective setting as `(dotted key, value, source)`, secrets redacted.
    pub fn report(&self) -> Vec<(String, String, String)> {
        let value = serde_json::to_value(&self.settings).unwrap_or_default();
        let mut flat = BTreeMap::new();
        flatten("", &value, &mut flat);
        flat.into_iter()
            .map(|(key, value)| {
                let source = self
                    .figment
                    .find_metadata(&key)
                    .map(sources::origin)
                    .unwrap_or_else(|| "unset".to_string());
                (key, value, source)
            })
            .collect()
    }
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// A configuration problem, worded for the operator who has to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// What to load: where the files are, the environment to read and the flags given.
pub struct LoadOptions {
    pub config_dir: Option<PathBuf>,
    pub environment: BTreeMap<String, String>,
    pub overrides: Vec<Override>,
}

impl LoadOptions {
    /// Reads the process environment; the one place Switchyard does.
    pub fn from_process(config_dir: Option<PathBuf>, overrides: Vec<Override>) -> Self {
        Self {
            config_dir,
            environment: std::env::vars().collect(),
            overrides,
        }
    }
}

/// Loads and validates the settings.
pub fn load(options: LoadOptions) -> Result<Loaded, ConfigError> {
    let figment = sources::layered(&options)?;
    let settings: Settings = figment.extract().map_err(sources::describe)?;
    validate(&settings).map_err(|(key, problem)| {
        let origin = figment
            .find_metadata(key)
            .map(sources::origin)
            .unwrap_or_else(|| "defaults".to_string());
        ConfigError(format!("invalid setting {key} (from {origin}): {problem}"))
    })?;
    Ok(Loaded { settings, figment })
}

/// Checks that go beyond types. Returns the offending key and what is wrong with it.
fn validate(s: &Settings) -> Result<(), (&'static str, String)> {
    let scheme = s.database.url.url().scheme();
    if scheme != "postgres" && scheme != "postgresql" {
        return Err((
            "database.url",
            format!("scheme must be postgres:// or postgresql://, not {scheme}://"),
        ));
    }
    if s.database.url.url().host().is_none() {
        return Err(("database.url", "the URL names no host".into()));
    }
    let scheme = s.redis.url.url().scheme();
    if !["redis", "rediss", "unix", "redis+unix"].contains(&scheme) {
        return Err((
            "redis.url",
            format!("scheme must be redis://, rediss:// or unix://, not {scheme}://"),
        ));
    }
    if s.database.max_connections == 0 {
        return Err(("database.max_connections", "must be at least 1".into()));
    }
    if s.database.min_connections > s.database.max_connections {
        return Err((
            "database.min_connections",
            "must not exceed database.max_connections".into(),
        ));
    }
    if s.redis.pool_size == 0 {
        return Err(("redis.pool_size", "must be at least 1".into()));
    }
    for (key, value) in [
        (
            "database.acquire_timeout_seconds",
            s.database.acquire_timeout_seconds,
        ),
        (
            "database.connect_timeout_seconds",
            s.database.connect_timeout_seconds,
        ),
        ("redis.timeout_seconds", s.redis.timeout_seconds),
        (
            "http.request_timeout_seconds",
            s.http.request_timeout_seconds,
        ),
        (
            "http.header_read_timeout_seconds",
            s.http.header_read_timeout_seconds,
        ),
        ("health.check_timeout_ms", s.health.check_timeout_ms),
    ] {
        if value == 0 {
            return Err((key, "must be greater than 0".into()));
        }
    }
    if s.http.body_limit_bytes < 1024 {
        return Err(("http.body_limit_bytes", "must be at least 1024".into()));
    }
    if s.shutdown.drain_seconds > 3600 {
        return Err(("shutdown.drain_seconds", "must be at most 3600".into()));
    }
    crate::telemetry::parse_filter(s.log.filter.as_deref().unwrap_or(&s.log.level)).map_err(
        |e| {
            let key = if s.log.filter.is_some() {
                "log.filter"
            } else {
                "log.level"
            };
            (key, format!("not a valid log level or filter ({e})"))
        },
    )?;
    if let Some(token) = &s.app.admin_token
        && token.expose().len() < 16
    {
        return Err(("app.admin_token", "must be at least 16 characters".into()));
    }
    if let Some(secret) = &s.app.secret
        && secret.expose().len() < 32
    {
        return Err(("app.secret", "must be at least 32 characters".into()));
    }
    if let Some(url) = &s.app.public_url
        && (!["http", "https"].contains(&url.scheme()) || url.host().is_none())
    {
        return Err((
            "app.public_url",
            "must be an http:// or https:// URL with a host".into(),
        ));
    }
    validate_jobs(s)?;
    validate_outbound(s)?;
    storage::validate(&s.storage)?;
    realtime::validate(&s.realtime)?;
    validate_schedules(s)
}

fn validate_schedules(s: &Settings) -> Result<(), (&'static str, String)> {
    if !(2..=300).contains(&s.scheduler.lease_seconds) {
        return Err((
            "scheduler.lease_seconds",
            "must be between 2 and 300".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for schedule in s.schedules() {
        let name = &schedule.name;
        let fail = |problem: String| Err(("schedule", format!("schedule {name:?}: {problem}")));
        let plain = !name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err((
                "schedule",
                format!(
                    "schedule name {name:?} must be 1-100 characters of letters, digits, '.', '_' or '-'"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            let hint = if ScheduleSettings::builtin().iter().any(|b| &b.name == name) {
                " (a built-in one; set scheduler.builtin = false to replace it)"
            } else {
                ""
            };
            return fail(format!("the name is used twice{hint}"));
        }
        if let Err(problem) =
            crate::scheduler::cron::Cron::parse(&schedule.cron, &schedule.timezone)
        {
            return fail(problem);
        }
        if let Err(invalid) = crate::scheduler::job_request(&schedule).into_job(&s.jobs, 0) {
            return fail(invalid.to_string());
        }
    }
    Ok(())
}

fn validate_jobs(s: &Settings) -> Result<(), (&'static str, String)> {
    let plain =
        |name: &str| format!("queue name {name:?} must be 1-64 characters of a-z, 0-9, '_' or '-'");
    if s.jobs.queues.is_empty() {
        return Err(("jobs.queues", "name at least one queue".into()));
    }
    if let Some(bad) = s.jobs.queues.iter().find(|q| !valid_queue_name(q)) {
        return Err(("jobs.queues", plain(bad)));
    }
    if s.worker.queues.is_empty() {
        return Err(("worker.queues", "name at least one queue".into()));
    }
    for entry in &s.worker.queues {
        let (name, weight) = entry.split_once(':').unwrap_or((entry, "1"));
        if !valid_queue_name(name) {
            return Err(("worker.queues", plain(name)));
        }
        if !weight.parse::<u32>().is_ok_and(|w| (1..=100).contains(&w)) {
            return Err((
                "worker.queues",
                format!("weight {weight:?} of queue {name:?} must be a whole number from 1 to 100"),
            ));
        }
        if !s.jobs.queues.iter().any(|q| q == name) {
            return Err((
                "worker.queues",
                format!("queue {name:?} is not declared in jobs.queues (JOBS_QUEUES)"),
            ));
        }
    }
    if !(1..=1024).contains(&s.worker.concurrency) {
        return Err(("worker.concurrency", "must be between 1 and 1024".into()));
    }
    if !(2..=3600).contains(&s.worker.lease_seconds) {
        return Err(("worker.lease_seconds", "must be between 2 and 3600".into()));
    }
    if !(1..=1000).contains(&s.jobs.max_attempts) {
        return Err(("jobs.max_attempts", "must be between 1 and 1000".into()));
    }
    for (key, value) in [
        ("jobs.timeout_seconds", s.jobs.timeout_seconds),
        ("jobs.backoff_base_ms", s.jobs.backoff_base_ms),
        ("jobs.backoff_cap_seconds", s.jobs.backoff_cap_seconds),
        (
            "jobs.idempotency_window_seconds",
            s.jobs.idempotency_window_seconds,
        ),
        ("jobs.retention_seconds", s.jobs.retention_seconds),
        (
            "jobs.dead_retention_days",
            s.jobs.dead_retention_days.into(),
        ),
        ("audit.retention_days", s.audit.retention_days.into()),
    ] {
        if value == 0 {
            return Err((key, "must be greater than 0".into()));
        }
    }
    if s.jobs.max_payload_bytes < 1024 {
        return Err(("jobs.max_payload_bytes", "must be at least 1024".into()));
    }
    Ok(())
}

fn validate_outbound(s: &Settings) -> Result<(), (&'static str, String)> {
    let o = &s.outbound;
    if o.timeout_seconds == 0 {
        return Err(("outbound.timeout_seconds", "must be greater than 0".into()));
    }
    if !(1..=4096).contains(&o.max_concurrent) {
        return Err((
            "outbound.max_concurrent",
            "must be between 1 and 4096".into(),
        ));
    }
    if o.max_redirects > 20 {
        return Err(("outbound.max_redirects", "must be at most 20".into()));
    }
    if let Some(bad) = o
        .allow_hosts
        .iter()
        .find(|p| !crate::outbound::valid_host_pattern(p))
    {
        return Err((
            "outbound.allow_hosts",
            format!("{bad:?} is not a host name or a \"*.\" suffix pattern"),
        ));
    }
    if let Some(secret) = &o.signing_secret
        && let Err(problem) = crate::outbound::SigningKey::parse(secret.expose())
    {
        return Err(("outbound.signing_secret", problem));
    }
    let mail = &s.mail;
    if !["http", "https"].contains(&mail.base_url.scheme()) {
        return Err(("mail.base_url", "must be an http:// or https:// URL".into()));
    }
    if mail.driver == MailDriver::Resend {
        if mail.api_key.is_none() {
            return Err((
                "mail.api_key",
                "the resend mail driver needs an API key".into(),
            ));
        }
        if mail.from.is_none() {
            return Err((
                "mail.from",
                "the resend mail driver needs a sender address".into(),
            ));
        }
    }
    Ok(())
}

/// Queue names become Redis key parts and metric labels, so they stay plain.
pub fn valid_queue_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Accepts `["a", "b"]` from a file or `a,b` from an environment variable or flag.
pub(crate) fn list_or_csv<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::List(list) => list,
        Raw::Csv(csv) => csv
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        load(LoadOptions {
            config_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/config").into()),
            environment: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides: Vec::new(),
        })
    }

    #[test]
    fn every_setting_and_variable_is_documented_in_the_readme_and_default_toml() {
        let readme = include_str!("../../README.md");
        let loaded = load_with(&[]).unwrap();
        for (key, _, _) in loaded.report() {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(readme.contains(&format!("`{key}`")), "README lacks {key}");
            assert!(DEFAULTS_TOML.contains(leaf), "default.toml lacks {key}");
        }
        for (var, _) in ENVIRONMENT {
            assert!(readme.contains(&format!("`{var}`")), "README lacks {var}");
            assert!(DEFAULTS_TOML.contains(var), "default.toml lacks {var}");
        }
    }

    #[test]
    fn a_token_made_of_digits_stays_a_string() {
        let loaded = load_with(&[("ADMIN_TOKEN", "1234567890123456789")]).unwrap();
        let token = loaded.settings.app.admin_token.unwrap();
        assert_eq!(token.expose(), "1234567890123456789");
    }

    #[test]
    fn worker_queues_accept_a_comma_separated_variable() {
        let loaded = load_with(&[("WORKER_QUEUES", "webhooks, audits,mails")]).unwrap();
        assert_eq!(
            loaded.settings.worker.queues,
            ["webhooks", "audits", "mails"]
        );
    }

    #[test]
    fn an_invalid_queue_name_names_the_setting() {
        let error = load_with(&[("WORKER_QUEUES", "Bad Queue")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("worker.queues") && error.contains("WORKER_QUEUES"),
            "{error}"
        );
    }

    #[test]
    fn bad_realtime_limits_name_their_setting() {
        for (var, value, key) in [
            (
                "REALTIME_MAX_FRAME_BYTES",
                "100",
                "realtime.max_frame_bytes",
            ),
            ("REALTIME_MAX_CONNECTIONS", "0", "realtime.max_connections"),
            (
                "REALTIME_HEARTBEAT_TIMEOUT_SECONDS",
                "10",
                "realtime.heartbeat_timeout_seconds",
            ),
            (
                "REALTIME_ALLOWED_ORIGINS",
                "app.example.com",
                "realtime.allowed_origins",
            ),
            (
                "REALTIME_CLIENT_IP_HEADER",
                "bad header",
                "realtime.client_ip_header",
            ),
        ] {
            let error = load_with(&[(var, value)]).err().unwrap().to_string();
            assert!(error.contains(key), "{var}={value}: {error}");
        }
        let origins = load_with(&[(
            "REALTIME_ALLOWED_ORIGINS",
            "https://app.example.com, https://*.example.org",
        )])
        .unwrap();
        assert_eq!(
            origins.settings.realtime.allowed_origins,
            ["https://app.example.com", "https://*.example.org"]
        );
    }

    #[test]
    fn a_short_admin_token_is_refused_without_printing_it() {
        let error = load_with(&[("ADMIN_TOKEN", "short-tok")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("ADMIN_TOKEN") && error.contains("16"),
            "{error}"
        );
        assert!(!error.contains("short-tok"), "{error}");
    }

    #[test]
    fn an_invalid_log_filter_names_rust_log() {
        let error = load_with(&[("RUST_LOG", "info,[[[")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("log.filter") && error.contains("RUST_LOG"),
            "{error}"
        );
    }

    fn refusal(vars: &[(&str, &str)]) -> String {
        load_with(vars).err().expect("refused").to_string()
    }

    #[test]
    fn worker_queues_take_weights_and_must_be_declared() {
        let loaded = load_with(&[("WORKER_QUEUES", "http:3,audits")]).unwrap();
        assert_eq!(
            loaded.settings.worker_queues(),
            [("http".to_owned(), 3), ("audits".to_owned(), 1)]
        );
        let undeclared = refusal(&[("WORKER_QUEUES", "billing")]);
        assert!(
            undeclared.contains("worker.queues") && undeclared.contains("JOBS_QUEUES"),
            "{undeclared}"
        );
        let bad_weight = refusal(&[("WORKER_QUEUES", "http:0")]);
        assert!(bad_weight.contains("weight"), "{bad_weight}");
    }

    #[test]
    fn a_malformed_signing_secret_is_refused_without_printing_it() {
        let error = refusal(&[("OUTBOUND_SIGNING_SECRET", "not-a-whsec-secret")]);
        assert!(
            error.contains("OUTBOUND_SIGNING_SECRET") && error.contains("whsec_"),
            "{error}"
        );
        assert!(!error.contains("not-a-whsec-secret"), "{error}");
    }

    #[test]
    fn the_resend_driver_needs_a_key_and_a_sender() {
        let error = refusal(&[("MAIL_DRIVER", "resend")]);
        assert!(error.contains("mail.api_key"), "{error}");
        let error = refusal(&[("MAIL_DRIVER", "resend"), ("MAIL_API_KEY", "re_123")]);
        assert!(error.contains("mail.from"), "{error}");
    }

    #[test]
    fn an_allow_host_pattern_must_be_a_host_or_a_suffix() {
        let error = refusal(&[("OUTBOUND_ALLOW_HOSTS", "*.railway.internal,http://x")]);
        assert!(error.contains("outbound.allow_hosts"), "{error}");
        let loaded = load_with(&[("OUTBOUND_ALLOW_HOSTS", "*.railway.internal,hooks.local")]);
        assert_eq!(loaded.unwrap().settings.outbound.allow_hosts.len(), 2);
    }

    #[test]
    fn storage_is_local_until_a_bucket_is_named() {
        let local = load_with(&[]).unwrap().settings.storage;
        assert_eq!(local.effective_backend(), StorageBackend::Local);
        let railway = load_with(&[
            ("BUCKET", "railway-bucket"),
            ("ENDPOINT", "https://storage.example"),
            ("ACCESS_KEY_ID", "rw-id"),
            ("SECRET_ACCESS_KEY", "rw-secret"),
        ])
        .unwrap()
        .settings
        .storage;
        assert_eq!(railway.effective_backend(), StorageBackend::S3);
        let described = railway.describe();
        assert!(
            described.contains("railway-bucket")
                && described.contains("virtual-hosted")
                && !described.contains("rw-secret"),
            "{described}"
        );
    }

    #[test]
    fn the_most_specific_storage_variable_wins() {
        let storage = load_with(&[
            ("BUCKET", "from-railway"),
            ("AWS_S3_BUCKET_NAME", "from-aws"),
            ("S3_BUCKET", "from-seed"),
            ("REGION", "auto"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("S3_ACCESS_KEY", "seed-id"),
            ("S3_SECRET_KEY", "seed-secret"),
            ("STORAGE_BACKEND", "r2"),
        ])
        .unwrap()
        .settings
        .storage;
        assert_eq!(storage.bucket.as_deref(), Some("from-seed"));
        assert_eq!(storage.region.as_deref(), Some("eu-west-1"));
        assert_eq!(storage.backend, Some(StorageBackend::S3));
        let aws = load_with(&[
            ("AWS_S3_BUCKET_NAME", "from-aws"),
            ("BUCKET", "from-railway"),
        ]);
        assert_eq!(
            aws.unwrap().settings.storage.bucket.as_deref(),
            Some("from-aws")
        );
    }

    #[test]
    fn bad_storage_settings_name_the_setting_without_printing_secrets() {
        let error = refusal(&[("STORAGE_BACKEND", "s3")]);
        assert!(
            error.contains("storage.bucket") && error.contains("S3_BUCKET"),
            "{error}"
        );
        let error = refusal(&[("S3_BUCKET", "Not_A_Bucket")]);
        assert!(error.contains("storage.bucket"), "{error}");
        let error = refusal(&[("S3_BUCKET", "media"), ("S3_ENDPOINT", "ftp://x")]);
        assert!(
            error.contains("storage.endpoint") && error.contains("S3_ENDPOINT"),
            "{error}"
        );
        let error = refusal(&[("S3_BUCKET", "media"), ("S3_SECRET_KEY", "hush-hush")]);
        assert!(
            error.contains("storage.secret_access_key") && !error.contains("hush-hush"),
            "{error}"
        );
        let error = refusal(&[("STORAGE_BACKEND", "floppy")]);
        assert!(error.contains("STORAGE_BACKEND"), "{error}");
        let error = refusal(&[("STORAGE_SIGNED_URL_TTL_SECONDS", "0")]);
        assert!(error.contains("storage.signed_url_ttl_seconds"), "{error}");
    }

    #[test]
    fn an_app_env_that_is_not_a_file_name_is_refused() {
        let error = load_with(&[("APP_ENV", "../etc")])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("APP_ENV"), "{error}");
    }
}
