//! `noop`: does nothing, optionally after a pause. For smoke tests, benchmarks and checking
//! that a worker is consuming a queue.

use std::time::Duration;

use serde::Deserialize;

use crate::invalid::Invalid;
use crate::jobs::{Job, JobContext, JobError};

/// The longest pause a `noop` job may ask for.
const MAX_SLEEP_MS: u64 = 600_000;

pub struct Noop;

#[derive(Debug, Default, Deserialize)]
pub struct NoopPayload {
    /// Milliseconds to wait before succeeding.
    #[serde(default)]
    pub sleep_ms: u64,
}

impl Job for Noop {
    const NAME: &'static str = "noop";
    const QUEUE: &'static str = "default";
    type Payload = NoopPayload;

    fn validate(payload: &NoopPayload) -> Result<(), Invalid> {
        if payload.sleep_ms > MAX_SLEEP_MS {
            return Err(Invalid::new(
                "payload.sleep_ms",
                format!("must be at most {MAX_SLEEP_MS}"),
            ));
        }
        Ok(())
    }

    async fn run(&self, _ctx: &JobContext, payload: NoopPayload) -> Result<(), JobError> {
        if payload.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(payload.sleep_ms.min(MAX_SLEEP_MS))).await;
        }
        Ok(())
    }
}
