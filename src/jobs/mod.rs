//! Job handlers and what they share: the [`Job`] trait every handler implements (one file
//! per handler under `handlers/`), the [`Registry`] a worker runs them from, how a run
//! reports failure ([`JobError`]), how an enqueue request becomes a queued job
//! ([`enqueue`]), and the dead-job record in Postgres ([`dead`]).
//!
//! Handlers get what they use through [`JobContext`] and [`Services`], never the process
//! state; this module and its handlers import stores, clients and `config`, never a mode,
//! the worker or HTTP.

pub mod dead;
pub mod enqueue;
pub mod handlers;
pub mod live;
mod registry;
pub mod summary;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::PgPool;

pub use registry::Registry;

use crate::invalid::Invalid;
use crate::outbound::Outbound;
use crate::storage::Storage;

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
    /// The clients this process shares with its handlers.
    pub services: Arc<Services>,
}

/// The shared clients a handler may use: both pools, the guarded outbound HTTP client and
/// the object store. A handler that needs settings takes them when it is built.
#[derive(Clone)]
pub struct Services {
    pub db: PgPool,
    pub redis: crate::redis::Redis,
    pub outbound: Outbound,
    pub storage: Storage,
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
    /// Not now, and not a failure: run it again after this wait without using an attempt
    /// (a rate limit the job observes for its target).
    #[error("deferred for {0:?}")]
    Defer(std::time::Duration),
}

impl From<anyhow::Error> for JobError {
    fn from(error: anyhow::Error) -> Self {
        Self::Retry(error)
    }
}
