//! `[http]`, `[startup]`, `[shutdown]` and `[health]`: how a process listens, starts,
//! drains and checks its dependencies.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, positive};

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
    /// Browser origins allowed to call the API cross-origin (`https://app.example.com`,
    /// `https://*.example.com`, or `*` for any); empty answers no CORS request.
    #[serde(default, deserialize_with = "super::list_or_csv")]
    pub cors_allowed_origins: Vec<String>,
    /// Whether cross-origin requests may carry cookies or HTTP authentication; never with
    /// `*`. API keys go in `Authorization`, which needs no credentials mode.
    #[serde(default)]
    pub cors_allow_credentials: bool,
    /// How long a console sign-in lasts, in hours.
    pub console_session_hours: u64,
    /// `GET /api/openapi.json` answers everyone (it holds no secret); false answers only
    /// callers with credentials (a key, the admin token or a console session).
    pub openapi_public: bool,
}

impl HttpSettings {
    /// How long a request may run (and, for a streamed upload, how long the client may
    /// stay silent).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    /// How long a console sign-in lasts.
    pub fn console_session(&self) -> Duration {
        Duration::from_secs(self.console_session_hours * 3600)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupSettings {
    pub dependency_wait_seconds: u64,
    /// `serve` applies pending migrations before listening (`--migrate`), for platforms
    /// without a pre-deploy step.
    pub migrate: bool,
}

impl StartupSettings {
    /// How long start-up waits for Postgres and Redis to answer.
    pub fn dependency_wait(&self) -> Duration {
        Duration::from_secs(self.dependency_wait_seconds)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    pub drain_seconds: u64,
}

impl ShutdownSettings {
    /// How long in-flight work may take once shutdown begins.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    pub check_timeout_ms: u64,
}

impl HealthSettings {
    /// The bound on each dependency check.
    pub fn check_timeout(&self) -> Duration {
        Duration::from_millis(self.check_timeout_ms)
    }
}

pub(super) fn validate(
    http: &HttpSettings,
    shutdown: &ShutdownSettings,
    health: &HealthSettings,
) -> Check {
    positive(&[
        ("http.request_timeout_seconds", http.request_timeout_seconds),
        (
            "http.header_read_timeout_seconds",
            http.header_read_timeout_seconds,
        ),
        ("health.check_timeout_ms", health.check_timeout_ms),
    ])?;
    if http.body_limit_bytes < 1024 {
        return Err(("http.body_limit_bytes", "must be at least 1024".into()));
    }
    for origin in &http.cors_allowed_origins {
        if origin != "*" && !super::realtime::valid_origin(origin) {
            return Err((
                "http.cors_allowed_origins",
                format!(
                    "{origin:?} is not an origin: scheme://host[:port] (the host may start with *.), or *"
                ),
            ));
        }
    }
    if http.cors_allow_credentials && http.cors_allowed_origins.iter().any(|o| o == "*") {
        return Err((
            "http.cors_allow_credentials",
            "cannot be true while http.cors_allowed_origins allows any origin (*)".into(),
        ));
    }
    if !(1..=720).contains(&http.console_session_hours) {
        return Err((
            "http.console_session_hours",
            "must be 1 to 720 (30 days)".into(),
        ));
    }
    if shutdown.drain_seconds > 3600 {
        return Err(("shutdown.drain_seconds", "must be at most 3600".into()));
    }
    Ok(())
}
