//! `[realtime]`: the WebSocket hub's limits, heartbeat and channel history.

use serde::{Deserialize, Serialize};

use super::{list_or_csv, positive};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSettings {
    /// Open sockets one process accepts; more are refused with 503 before the upgrade.
    pub max_connections: usize,
    /// Channels one socket may be subscribed to at once.
    pub max_subscriptions: usize,
    /// The largest frame or message a client may send, in bytes.
    pub max_frame_bytes: usize,
    /// Messages a client may send per second, on average.
    pub messages_per_second: u32,
    /// Messages a client may send at once above that rate.
    pub message_burst: u32,
    /// Connection attempts one client address may make per minute, across replicas.
    pub connections_per_ip_per_minute: u32,
    /// The header that carries the client's address behind the platform's proxy
    /// (Railway's sets `X-Real-IP`); empty to use the peer address alone.
    pub client_ip_header: String,
    /// `Origin` values allowed to connect (`https://app.example.com`, or
    /// `https://*.example.com`); empty allows any.
    #[serde(deserialize_with = "list_or_csv")]
    pub allowed_origins: Vec<String>,
    /// How long a socket may stay open without authenticating.
    pub auth_timeout_seconds: u64,
    /// How often the server pings each socket.
    pub heartbeat_seconds: u64,
    /// A socket silent for this long (no pong, no message) is closed.
    pub heartbeat_timeout_seconds: u64,
    /// Frames waiting for one socket (beyond its kernel buffer) before it counts as a slow
    /// consumer and is closed.
    pub outbound_queue: usize,
    /// Events kept per channel for recovery.
    pub history_size: usize,
    /// How long a channel's history outlives its last event.
    pub history_ttl_seconds: u64,
    /// The largest `data` a published event may carry, in bytes of JSON.
    pub max_event_bytes: usize,
    /// Lifetime of a token minted by `POST /api/v1/realtime/token` when the request names
    /// none.
    pub token_ttl_seconds: u64,
    /// Workers publish each job's state changes on `jobs.<id>`.
    pub job_events: bool,
}

pub(super) fn validate(s: &RealtimeSettings) -> Result<(), (&'static str, String)> {
    positive(&[
        ("realtime.max_connections", s.max_connections as u64),
        ("realtime.max_subscriptions", s.max_subscriptions as u64),
        (
            "realtime.messages_per_second",
            u64::from(s.messages_per_second),
        ),
        ("realtime.message_burst", u64::from(s.message_burst)),
        (
            "realtime.connections_per_ip_per_minute",
            u64::from(s.connections_per_ip_per_minute),
        ),
        ("realtime.auth_timeout_seconds", s.auth_timeout_seconds),
        ("realtime.heartbeat_seconds", s.heartbeat_seconds),
        ("realtime.outbound_queue", s.outbound_queue as u64),
        ("realtime.history_size", s.history_size as u64),
        ("realtime.history_ttl_seconds", s.history_ttl_seconds),
        ("realtime.token_ttl_seconds", s.token_ttl_seconds),
    ])?;
    if !(1024..=16 << 20).contains(&s.max_frame_bytes) {
        return Err((
            "realtime.max_frame_bytes",
            "must be between 1024 and 16777216".into(),
        ));
    }
    if !(16..=16 << 20).contains(&s.max_event_bytes) {
        return Err((
            "realtime.max_event_bytes",
            "must be between 16 and 16777216".into(),
        ));
    }
    if s.heartbeat_timeout_seconds <= s.heartbeat_seconds {
        return Err((
            "realtime.heartbeat_timeout_seconds",
            "must be longer than realtime.heartbeat_seconds, so a pong has time to come".into(),
        ));
    }
    if s.token_ttl_seconds > 7 * 24 * 3600 {
        return Err((
            "realtime.token_ttl_seconds",
            "must be at most 604800 (a week)".into(),
        ));
    }
    if !s.client_ip_header.is_empty()
        && axum::http::HeaderName::from_bytes(s.client_ip_header.as_bytes()).is_err()
    {
        return Err((
            "realtime.client_ip_header",
            format!("{:?} is not a header name", s.client_ip_header),
        ));
    }
    for origin in &s.allowed_origins {
        if !valid_origin(origin) {
            return Err((
                "realtime.allowed_origins",
                format!(
                    "{origin:?} is not an origin: scheme://host[:port], the host may start with *."
                ),
            ));
        }
    }
    Ok(())
}

/// `scheme://host[:port]` with nothing after, the host optionally `*.`-prefixed.
pub(super) fn valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = rest.strip_prefix("*.").unwrap_or(rest);
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '*', '@', ' '])
}

#[cfg(test)]
mod tests {
    use super::valid_origin;

    #[test]
    fn origins_are_a_scheme_and_a_host_with_an_optional_wildcard() {
        for good in [
            "https://app.example.com",
            "http://localhost:4321",
            "https://*.example.com",
        ] {
            assert!(valid_origin(good), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://",
            "https://a.*.com",
            "*://example.com",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
