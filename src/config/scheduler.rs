//! `[scheduler]` and `[[schedule]]`: the leader's lease and the cron schedules. What a
//! schedule's expression and job mean, and the built-in schedules, are the scheduler's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Check;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Adds the built-in maintenance schedules (the retention sweep daily at 02:00 UTC).
    pub builtin: bool,
    /// The leader's lease in Redis; a replica that dies is replaced within about this.
    pub lease_seconds: u64,
}

impl SchedulerSettings {
    /// How long the leader's lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
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

pub(super) fn validate(scheduler: &SchedulerSettings) -> Check {
    if !(2..=300).contains(&scheduler.lease_seconds) {
        return Err((
            "scheduler.lease_seconds",
            "must be between 2 and 300".into(),
        ));
    }
    Ok(())
}
