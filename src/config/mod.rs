//! Typed, layered configuration: every settings type, how the layers are read, and the
//! checks that need nothing but the settings themselves. This module is the only place
//! that reads the process environment.
//!
//! Layers, later wins:
//! 1. the defaults compiled into the binary (`config/default.toml`),
//! 2. `$CONFIG_DIR/default.toml`, then `$CONFIG_DIR/$APP_ENV.toml`, when present,
//! 3. environment variables, each named in [`ENVIRONMENT`] (Railway's own names included),
//! 4. command-line flags.
//!
//! Every layer is a figment provider whose name says where a value came from, so a bad
//! value stops start-up with a message that names the variable, file or flag at fault.
//!
//! # The rule
//! `config` is the bottom floor: every module may import it, and it imports no other
//! module of the crate. Each section's type lives in a file of its own (`jobs.rs` holds
//! `[jobs]` and `[worker]`, `outbound.rs` `[outbound]` and `[mail]`, ...) with the checks
//! that need no domain knowledge: ranges, names, URL shapes, settings that must agree.
//! A rule that needs a domain's knowledge (a cron expression, a Standard Webhooks key, a
//! host pattern, a log filter) lives in that domain and reaches [`load`] as its `rules`
//! argument; `crate::settings::load` is the one that passes every domain's rules, and
//! what every process and test loads through.

mod app;
mod events;
mod http;
mod jobs;
mod log;
mod outbound;
mod rate_limit;
mod realtime;
mod scheduler;
mod secret;
mod sources;
mod storage;
mod stores;

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

pub use app::{AppSettings, RailwaySettings};
pub use events::{
    AuditSettings, EncryptionSettings, EventsSettings, WebhooksSettings, parse_duration,
};
pub use http::{HealthSettings, HttpSettings, ShutdownSettings, StartupSettings};
pub use jobs::{JobsSettings, WorkerSettings, valid_queue_name};
pub use log::{LogFormat, LogSettings};
pub use outbound::{MailDriver, MailSettings, OutboundSettings};
pub use rate_limit::{Cidr, FailMode, Rate, RateGroup, RateLimitSettings};
pub use realtime::RealtimeSettings;
pub use scheduler::{CatchUp, ScheduleSettings, SchedulerSettings};
pub use secret::{Secret, SecretUrl};
pub use sources::{ENVIRONMENT, Override};
pub use storage::{
    BucketSettings, ByteSize, StorageBackend, StorageSettings, UPLOAD_RESERVATION, type_matches,
    valid_type_pattern,
};
pub use stores::{DatabaseSettings, RedisSettings};

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
    pub events: EventsSettings,
    pub webhooks: WebhooksSettings,
    pub encryption: EncryptionSettings,
    pub scheduler: SchedulerSettings,
    pub storage: StorageSettings,
    pub realtime: RealtimeSettings,
    pub rate_limit: RateLimitSettings,
    /// Cron schedules: `[[schedule]]` tables, from `config/schedule.toml` or any layer.
    #[serde(default)]
    pub schedule: Vec<ScheduleSettings>,
    pub railway: RailwaySettings,
}

impl Settings {
    /// The service name logs and health report: Railway's, else `switchyard`.
    pub fn service_name(&self) -> &str {
        self.railway.service_name.as_deref().unwrap_or("switchyard")
    }

    /// Which replica this is: Railway's replica id, else the host name.
    pub fn replica_id(&self) -> &str {
        self.railway
            .replica_id
            .as_deref()
            .or(self.railway.hostname.as_deref())
            .unwrap_or("local")
    }

    /// The base of the links the API hands out, when it is known without a request.
    pub fn public_url(&self) -> Option<url::Url> {
        self.app.public_url.clone().or_else(|| {
            let domain = self.railway.public_domain.as_deref()?;
            url::Url::parse(&format!("https://{domain}")).ok()
        })
    }
}

/// A setting that is not acceptable: its dotted key, and what is wrong with it worded for
/// the operator who has to fix it (never the value of a secret).
pub type BadSetting = (&'static str, String);

/// The outcome of one check.
pub type Check = Result<(), BadSetting>;

/// Checks that need a domain's knowledge, run by [`load`] after its own.
pub type Rules = fn(&Settings) -> Check;

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

    /// The repository's `config/` folder with `vars` as the whole environment: what the
    /// unit tests load.
    #[cfg(test)]
    pub(crate) fn for_test(vars: &[(&str, &str)]) -> Self {
        Self {
            config_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/config").into()),
            environment: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides: Vec::new(),
        }
    }
}

/// Loads the settings, checks them section by section, then runs `rules`. A refusal names
/// the key and the layer its value came from.
pub fn load(options: LoadOptions, rules: Rules) -> Result<Loaded, ConfigError> {
    let figment = sources::layered(&options)?;
    let settings: Settings = figment.extract().map_err(sources::describe)?;
    validate(&settings)
        .and_then(|()| rules(&settings))
        .map_err(|(key, problem)| {
            let origin = figment
                .find_metadata(key)
                .map(sources::origin)
                .unwrap_or_else(|| "defaults".to_string());
            ConfigError(format!("invalid setting {key} (from {origin}): {problem}"))
        })?;
    Ok(Loaded { settings, figment })
}

/// The checks every section makes of itself, and of the sections it must agree with.
fn validate(s: &Settings) -> Check {
    stores::validate(&s.database, &s.redis)?;
    http::validate(&s.http, &s.shutdown, &s.health)?;
    app::validate(&s.app)?;
    jobs::validate(&s.jobs, &s.worker)?;
    events::validate(&s.audit, &s.events, &s.webhooks, &s.encryption)?;
    outbound::validate(&s.outbound, &s.mail)?;
    storage::validate(&s.storage)?;
    realtime::validate(&s.realtime)?;
    rate_limit::validate(&s.rate_limit)?;
    scheduler::validate(&s.scheduler)
}

/// Refuses the first of `values` that is zero.
fn positive(values: &[(&'static str, u64)]) -> Check {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err((key, "must be greater than 0".into())),
        None => Ok(()),
    }
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
mod tests;
