//! `app migrate`: applies pending migrations (safe to run from several replicas at once:
//! sqlx holds a Postgres advisory lock), or with `--status` lists them, or with `--check`
//! exits 1 when any is pending.

use std::process::ExitCode;

use sqlx::PgPool;

use crate::db;

/// What `app migrate` was asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Apply,
    Status,
    Check,
}

pub async fn run(pool: &PgPool, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Apply => {
            let applied = db::migrate(pool).await?;
            if applied.is_empty() {
                tracing::info!("database schema is up to date; nothing to apply");
            } else {
                tracing::info!(
                    versions = format!("{applied:?}"),
                    count = applied.len(),
                    "applied migrations"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Status => {
            let states = db::status(pool).await?;
            println!(
                "{:<16} {:<10} {:<26} description",
                "version", "state", "applied_at"
            );
            for m in &states {
                let at = m
                    .applied_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<16} {:<10} {:<26} {}",
                    m.version, m.state, at, m.description
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Check => {
            let states = db::status(pool).await?;
            let pending: Vec<_> = states.iter().filter(|m| m.state == "pending").collect();
            let modified: Vec<_> = states.iter().filter(|m| m.state == "modified").collect();
            for m in &pending {
                println!("pending: {} {}", m.version, m.description);
            }
            for m in &modified {
                println!("modified since applied: {} {}", m.version, m.description);
            }
            if pending.is_empty() && modified.is_empty() {
                println!("database schema is up to date");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
    }
}
