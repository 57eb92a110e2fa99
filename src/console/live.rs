//! `GET /console/live`: the console's one live connection per browser tab, as server-sent
//! events. Every two seconds it sends a `snapshot` (each queue's jobs by state, dead
//! included, and, for a caller holding `metrics:read`, the realtime hubs' sockets and
//! channels); the page re-reads what it shows when the snapshot changes, so a retried
//! dead job leaves the list without a reload, and a page never polls per widget. The page
//! closes the stream while its tab is hidden.
//!
//! A stream lasts at most a minute (the browser reconnects at once, and the session is
//! checked again), and ends when the process begins to shut down, so it never holds the
//! drain.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use super::session::signed_in;
use crate::auth::scopes::{METRICS_READ, QUEUES_READ};
use crate::http::problem::ApiError;
use crate::jobs::summary::{QueueView, summaries};
use crate::realtime::stats::{self, ChannelCount};
use crate::state::AppState;

/// Where the stream is served.
pub const PATH: &str = "/console/live";
/// How often a snapshot is sent.
const EVERY: Duration = Duration::from_secs(2);
/// How long one stream lasts before the browser reconnects.
const LIFETIME: Duration = Duration::from_secs(60);

/// `GET /console/live`: needs a console session holding `queues:read`.
pub async fn live(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, _, caller) = signed_in(&state, &headers)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !caller.allows(QUEUES_READ) {
        return Err(ApiError::MissingScope(QUEUES_READ));
    }
    let realtime = caller.allows(METRICS_READ);
    Ok(Sse::new(snapshots(state, realtime))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn snapshots(state: AppState, realtime: bool) -> impl Stream<Item = Result<Event, Infallible>> {
    let until = tokio::time::Instant::now() + LIFETIME;
    futures_util::stream::unfold((state, true), move |(state, first)| async move {
        if !first {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = state.stopping.cancelled() => return None,
            }
        }
        if tokio::time::Instant::now() >= until || state.stopping.is_cancelled() {
            return None;
        }
        let event = match snapshot(&state, realtime).await {
            Ok(snapshot) => Event::default()
                .event("snapshot")
                .json_data(&snapshot)
                .unwrap_or_default(),
            Err(error) => {
                tracing::debug!(error = format!("{error:#}"), "a console snapshot failed");
                Event::default()
                    .event("unavailable")
                    .data("a dependency is down")
            }
        };
        Some((Ok(event), (state, false)))
    })
}

/// What one snapshot holds.
#[derive(serde::Serialize)]
struct Snapshot {
    queues: Vec<QueueView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realtime: Option<Realtime>,
}

#[derive(serde::Serialize)]
struct Realtime {
    connections: usize,
    channels: Vec<ChannelCount>,
}

async fn snapshot(state: &AppState, realtime: bool) -> anyhow::Result<Snapshot> {
    let queues = summaries(&state.queues, &state.db, &state.settings.jobs.queues).await?;
    let realtime = if realtime {
        let figures = stats::read(&state.realtime, crate::queue::now_ms()).await?;
        Some(Realtime {
            connections: figures.connections,
            channels: figures.channels,
        })
    } else {
        None
    };
    Ok(Snapshot { queues, realtime })
}
