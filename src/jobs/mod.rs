//! Job handlers and what they share: the [`Job`] trait every handler implements (one file
//! per handler under `handlers/`), the [`Registry`] a worker runs them from, how a run
//! reports failure ([`JobError`]), how an enqueue request becomes a queued job
//! ([`enqueue`]), and the dead-job record in Postgres ([`dead`]).

pub mod dead;
pub mod enqueue;
pub mod handlers;
mod registry;

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use registry::Registry;

use crate::outbound::Outbound;
use crate::state::AppState;

/// A kind of background job.
///
/// ```ignore
/// struct Resize;
/// impl Job for Resize {
///     const NAME: &'static str = "images.resize";
///     const QUEUE: &'static str = "default";
///     type Payload = ResizePayload;
///     async fn run(&self, ctx: &JobContext, payload: ResizePayload) -> Result<(), JobError> { ... }
/// }
/// ```
pub trait Job: Send + Sync + 'static {
    /// The kind stored with every queued job. Never rename it: queued jobs carry it.
    const NAME: &'static str;
    /// The queue an enqueue that names none goes to.
    const QUEUE: &'static str;
    /// The payload, decoded from the job's JSON; a payload that does not decode makes the
    /// job dead at once with the decoding error.
    type Payload: DeserializeOwned + Send + 'static;

    /// Checks a payload when it is enqueued, so bad input is refused there (422) instead of
    /// failing later. The default accepts whatever decodes.
    fn validate(_payload: &Self::Payload) -> Result<(), Invalid> {
        Ok(())
    }

    /// Runs one attempt. An error retries with backoff unless it is [`JobError::Fatal`].
    fn run(
        &self,
        ctx: &JobContext,
        payload: Self::Payload,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// What a running job knows about itself and the services it may use.
#[derive(Clone)]
pub struct JobContext {
    pub id: String,
    pub queue: String,
    /// This run, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub state: AppState,
    pub outbound: Outbound,
}

/// Why an attempt failed, and whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again after the backoff, while attempts remain.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Try again no sooner than this (a `Retry-After`), while attempts remain.
    #[error("{1:#}")]
    RetryAfter(Duration, anyhow::Error),
    /// Trying again cannot help: the job is dead now.
    #[error("{0:#}")]
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for JobError {
    fn from(error: anyhow::Error) -> Self {
        Self::Retry(error)
    }
}

/// A payload or request field that is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field at fault, as a dotted path (`payload.url`).
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
