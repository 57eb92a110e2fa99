//! Realtime: the WebSocket hub of `app realtime` (and `app dev`), and publishing events
//! to it from anywhere.
//!
//! - [`history`] publishes (offset, history, pub/sub in one Redis script) and recovers;
//!   any mode publishes through `AppState::realtime`.
//! - [`hub`] keeps the local sockets per channel and the one Redis [`subscription`] (pub/sub
//!   on one server, sharded pub/sub on a cluster), and writes each event to every member's
//!   [`outlet`].
//! - [`socket`] runs one connection; [`protocol`] is its wire format and close codes,
//!   [`frame`] the WebSocket frames the server writes.
//! - [`token`] checks the JWTs sockets authenticate with; [`channel`] names channels.
//! - [`stats`] is what every hub reports of its sockets and channels, added up.

pub mod channel;
mod deliveries;
pub mod frame;
pub mod history;
pub mod hub;
pub mod outlet;
pub mod protocol;
pub mod socket;
pub mod stats;
pub mod subscription;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{RealtimeSettings, Settings};
use history::History;
use hub::Hub;
use token::TokenKey;

/// What the WebSocket endpoint needs: the hub, history, the token key and the limits.
pub struct Realtime {
    pub hub: Arc<Hub>,
    pub history: History,
    pub tokens: TokenKey,
    pub settings: RealtimeSettings,
}

impl Realtime {
    /// The hub for this process. It needs `app.secret`, which signs the tokens.
    pub fn new(settings: &Settings, history: History) -> anyhow::Result<Arc<Self>> {
        let secret = settings.app.secret.as_ref().context(
            "realtime needs app.secret (APP_SECRET): sockets authenticate with tokens signed by it",
        )?;
        let hub = Hub::new(
            history.keys().clone(),
            settings.realtime.max_connections,
            Duration::from_secs(settings.redis.timeout_seconds.max(1)),
            fanout_threads(),
        );
        Ok(Arc::new(Self {
            hub,
            history,
            tokens: TokenKey::new(secret),
            settings: settings.realtime.clone(),
        }))
    }
}

/// Threads the hub writes events to sockets from: one per core this process may use, at
/// most 8.
fn fanout_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}
