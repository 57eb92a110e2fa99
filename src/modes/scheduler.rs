//! `app scheduler`: fires cron schedules into queues beside the health and metrics routes
//! (on `PORT` when set). `--list` prints the schedules and their next runs; `--run-now`
//! enqueues one run of a schedule. Both exit at once.

use std::process::ExitCode;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::scheduler::{self, Entry};
use crate::state::AppState;

pub async fn run(
    state: AppState,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let details = details(&state.settings);
    let engine = engine(state.clone(), shutdown.clone());
    super::with_operations(&state, listener, shutdown, details, engine).await
}

/// What the scheduler's registry row says.
pub fn details(settings: &Settings) -> serde_json::Value {
    serde_json::json!({"schedules": scheduler::schedules(settings).len()})
}

/// The scheduler alone, wired to `state`, until `shutdown`.
pub async fn engine(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let settings = &state.settings;
    scheduler::run(
        &state.scheduler,
        scheduler::entries(settings)?,
        state.identity.lease_holder(),
        settings.scheduler.lease(),
        &state.health,
        shutdown,
    )
    .await
}

/// One line per schedule: name, cron, time zone, state, then its next three runs in its
/// own time zone.
pub fn render(entries: &[Entry]) -> String {
    let now = Utc::now();
    let mut out = String::new();
    for entry in entries {
        let s = &entry.settings;
        let next: Vec<String> = if s.enabled {
            entry
                .cron
                .upcoming(now, 3)
                .iter()
                .map(|t| t.with_timezone(&entry.cron.timezone()).to_rfc3339())
                .collect()
        } else {
            Vec::new()
        };
        out.push_str(&format!(
            "{}  cron={:?}  timezone={}  {}  queue={}  kind={}  next: {}\n",
            s.name,
            s.cron,
            s.timezone,
            if s.enabled { "enabled" } else { "disabled" },
            s.queue.as_deref().unwrap_or("(kind's own)"),
            s.kind,
            if next.is_empty() {
                "-".to_owned()
            } else {
                next.join(", ")
            },
        ));
    }
    if entries.is_empty() {
        out.push_str("no schedules\n");
    }
    out
}

pub fn list(settings: &crate::config::Settings) -> ExitCode {
    match scheduler::entries(settings) {
        Ok(entries) => {
            print!("{}", render(&entries));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

pub async fn run_now(state: &AppState, name: &str) -> ExitCode {
    let outcome = async {
        let entries = scheduler::entries(&state.settings)?;
        let Some(entry) = entries.iter().find(|e| e.settings.name == name) else {
            let names: Vec<&str> = entries.iter().map(|e| e.settings.name.as_str()).collect();
            anyhow::bail!(
                "no schedule {name:?}; the schedules are: {}",
                names.join(", ")
            );
        };
        state.scheduler.fire(entry, Utc::now()).await
    }
    .await;
    match outcome {
        Ok((job_id, _)) => {
            println!(
                "{}",
                serde_json::json!({"schedule": name, "job_id": job_id})
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
