//! Switchyard: one binary that gives a Railway project its HTTP API, job workers, cron
//! scheduler, realtime hub, migrations and file storage. `app <mode>` picks what a process
//! does; every mode shares the modules below.
//!
//! The modules stand in floors, each importing only the floors beneath it (see
//! ARCHITECTURE.md): foundations (`config`, `invalid`, `telemetry`, `shutdown`, `retry`,
//! `panic`); stores and clients (`db`, `redis`, `queue`, `storage`, `outbound`,
//! `instances`); domains (`jobs`, `scheduler`, `realtime`, `events`, `health`, `auth`,
//! `webhooks`); process wiring (`settings`, `state`, `worker`); HTTP (`http`, `console`);
//! and the entry points (`modes`, `cli`).

pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
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
pub mod queue;
pub mod realtime;
pub mod redis;
pub mod retry;
pub mod scheduler;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod webhooks;
pub mod worker;

/// The version every mode reports in health, logs and the instance registry.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
