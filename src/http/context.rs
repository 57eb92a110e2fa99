//! The request being handled, kept in a task-local by the edge: its id, the body limit,
//! the route it matched and whether that route streams its body. Error bodies, logs and
//! extractors read it without touching the request's extension map. This module imports
//! nothing else of `http`, so every other part of it may use it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::MatchedPath;
use axum::http::HeaderValue;

tokio::task_local! {
    /// The request being handled, set by the edge around its handler.
    pub(super) static REQUEST: RequestContext;
}

pub(super) struct RequestContext {
    pub(super) id: RequestId,
    pub(super) body_limit: usize,
    /// The matched route template, filled in by the edge's per-route layer once routing
    /// is done.
    pub(super) route: Cell<Option<MatchedPath>>,
    /// Set by a route that streams its body ([`super::streaming::StreamsBody`]): the
    /// request deadline does not apply to it.
    pub(super) streams: Cell<bool>,
}

impl RequestContext {
    pub(super) fn new(id: RequestId, body_limit: usize) -> Self {
        Self {
            id,
            body_limit,
            route: Cell::new(None),
            streams: Cell::new(false),
        }
    }
}

impl Clone for RequestContext {
    /// A copy for producing a response outside the handler (refusals, panics, the
    /// problem rewrite); the route stays with the original.
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            body_limit: self.body_limit,
            route: Cell::new(None),
            streams: Cell::new(self.streams.get()),
        }
    }
}

/// A request's id: one the caller sent, or one generated here and kept inline, so that
/// neither costs an allocation until the response header is written.
#[derive(Clone)]
pub(super) enum RequestId {
    Given(HeaderValue),
    Generated([u8; 32]),
}

impl RequestId {
    pub(super) fn as_str(&self) -> &str {
        match self {
            Self::Given(value) => value.to_str().unwrap_or_default(),
            Self::Generated(hex) => std::str::from_utf8(hex).unwrap_or_default(),
        }
    }

    pub(super) fn header(&self) -> HeaderValue {
        match self {
            Self::Given(value) => value.clone(),
            Self::Generated(hex) => {
                HeaderValue::from_bytes(hex).unwrap_or(HeaderValue::from_static("unknown"))
            }
        }
    }
}

/// Request ids: a random 64-bit prefix drawn once per process, then a counter, as 32 hex
/// digits. Unique across replicas in practice, with no system call per request.
pub(super) struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    pub(super) fn new() -> Self {
        let mut seed = [0u8; 16];
        // Without randomness the ids are still unique within this process.
        let _ = getrandom::fill(&mut seed);
        let (prefix, start) = seed.split_at(8);
        Self {
            prefix: u64::from_le_bytes(prefix.try_into().unwrap_or_default()),
            next: AtomicU64::new(u64::from_le_bytes(start.try_into().unwrap_or_default())),
        }
    }

    pub(super) fn next(&self) -> RequestId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut text = [0u8; 32];
        for (i, word) in [self.prefix, n].into_iter().enumerate() {
            for j in 0..16 {
                text[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
            }
        }
        RequestId::Generated(text)
    }
}

/// The current request's id, when called inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST.try_with(|r| r.id.as_str().to_owned()).ok()
}

/// The configured body limit, when called inside a request.
pub fn current_body_limit() -> Option<usize> {
    REQUEST.try_with(|r| r.body_limit).ok()
}

/// Marks the current request as one whose body streams (see [`streams_body`]).
pub(super) fn declare_streaming() {
    let _ = REQUEST.try_with(|r| r.streams.set(true));
}

/// Whether the current request's route streams its body.
pub(super) fn streams_body() -> bool {
    REQUEST.try_with(|r| r.streams.get()).unwrap_or(false)
}
