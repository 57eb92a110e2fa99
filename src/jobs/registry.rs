//! The handlers a worker can run, by kind. Built-in handlers come from
//! [`Registry::builtin`]; a Rust application linking Switchyard adds its own with
//! [`Registry::register`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::anyhow;

use super::{Job, JobContext, JobError};

type Run = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// A handler with its payload type erased, so different kinds share one map.
trait Erased: Send + Sync {
    fn call(self: Arc<Self>, ctx: JobContext, payload: &str) -> Run;
}

impl<J: Job> Erased for J {
    fn call(self: Arc<Self>, ctx: JobContext, payload: &str) -> Run {
        match serde_json::from_str::<J::Payload>(payload) {
            Ok(payload) => Box::pin(async move { self.run(&ctx, payload).await }),
            Err(error) => {
                let error = anyhow!("the payload does not decode as a {} job: {error}", J::NAME);
                Box::pin(std::future::ready(Err(JobError::Fatal(error))))
            }
        }
    }
}

/// Handlers by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn Erased>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler; a later one with the same NAME replaces the earlier.
    pub fn register<J: Job>(mut self, handler: J) -> Self {
        self.handlers.insert(J::NAME, Arc::new(handler));
        self
    }

    /// The kinds this registry runs.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Starts one attempt of a job of `kind`, or `None` when no handler has that kind.
    pub fn start(&self, kind: &str, ctx: JobContext, payload: &str) -> Option<Run> {
        let handler = self.handlers.get(kind)?.clone();
        Some(handler.call(ctx, payload))
    }
}
