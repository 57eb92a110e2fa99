//! Switchyard: one binary that gives a Railway project its HTTP API, job workers, cron
//! scheduler, realtime hub, migrations and file storage. `app <mode>` picks what a process
//! does; every mode shares the modules below.
//!
//! The modules stand in floors, each importing only the floors beneath it (see
//! ARCHITECTURE.md): foundations (`config`, `invalid`, `cursor`, `telemetry`, `shutdown`,
//! `retry`, `panic`); stores and clients (`db`, `redis`, `queue`, `storage`, `outbound`,
//! `instances`); domains (`jobs`, `scheduler`, `realtime`, `events`, `health`, `auth`,
//! `webhooks`); process wiring (`settings`, `state`, `worker`); HTTP (`http`, `console`);
//! and the entry points (`modes`, `cli`).

pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod cursor;
pub mod databases;
pub mod db;
pub mod events;
pub mod health;
pub mod http;
pub mod instances;
pub mod invalid;
pub mod jobs;
pub mod modes;
pub mod outbound;
pub mod panic;
pub mod patch;
pub mod queue;
pub mod ratelimit;
pub mod realtime;
pub mod redis;
pub mod relay;
pub mod retry;
pub mod scheduler;
pub mod sealed;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod webhooks;
pub mod worker;

/// The version every mode reports in health, logs and the instance registry.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    const README: &str = include_str!("../README.md");

    /// What a new user looks up first, checked so that it does not drift from the code.
    #[test]
    fn the_readme_and_deploy_files_answer_a_newcomers_questions() {
        let rust = env!("CARGO_PKG_RUST_VERSION");
        for (needed, why) in [
            (format!("Rust {rust}"), "the Rust version the build needs"),
            (
                "`$CONFIG_DIR/schedule.toml`".into(),
                "every configuration layer",
            ),
            (
                "switchyard app migrate".into(),
                "the Docker example migrates",
            ),
            (
                "`POST /api/v1/realtime/token`".into(),
                "the token route in the API table",
            ),
            (
                "`POST /api/v1/realtime/publish`".into(),
                "the publish route in the API table",
            ),
            (
                "railway.internal:8080".into(),
                "private-network URLs carry the port",
            ),
            (
                "from standardwebhooks.webhooks import Webhook".into(),
                "a Python check",
            ),
            (
                "several ranges gets 200 with the whole file".into(),
                "multi-range requests",
            ),
            (
                "none of the missed events follow".into(),
                "what recovered: false means",
            ),
            (
                "RAILWAY_RUN_UID=0".into(),
                "the fix for a root-owned volume",
            ),
            ("`bad_request`".into(), "every error code"),
            ("`unavailable`".into(), "every error code"),
            ("`rate_limited`".into(), "every error code"),
            ("`conflict`".into(), "every error code"),
        ] {
            assert!(README.contains(&needed), "README lacks {why}: {needed}");
        }
        // The README's first job goes to `default`; every deployed worker must consume it.
        assert!(README.contains(r#"{"kind":"noop""#));
        for file in [
            include_str!("../Procfile"),
            include_str!("../config/railway/worker.json"),
            include_str!("../.railway/railway.ts"),
        ] {
            assert!(file.contains("--queues=default,"), "{file}");
        }
        assert!(
            !README.contains("| cron |"),
            "the scheduler service has one name"
        );
        let defaults = crate::config::DEFAULTS_TOML;
        assert!(
            !defaults.contains("stderr is a terminal"),
            "logs go to stdout"
        );
    }
}
