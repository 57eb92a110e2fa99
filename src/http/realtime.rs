//! `/api/v1/realtime`: the WebSocket endpoint (on `app realtime` and `app dev`), and
//! publishing (`realtime:publish`), token minting (`realtime:token`) and every hub's
//! sockets and channels (`metrics:read`), on every mode that serves the API.
//!
//! Before a socket is upgraded, the edge checks, in order: the `Origin` against
//! `realtime.allowed_origins` (403), the client address's attempts this minute against
//! `realtime.connections_per_ip_per_minute`, counted in Redis across replicas (429), and
//! the process's open sockets against `realtime.max_connections` (503). Tokens are checked
//! after the upgrade, so that a browser sees the close code.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use deadpool_redis::redis;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::browser::origin_allowed;
use super::extract::Json;
use super::problem::{ApiError, Problem};
use crate::invalid::Invalid;
use crate::realtime::history::PublishError;
use crate::realtime::stats::{self, RealtimeStats};
use crate::realtime::token::{Claims, TokenKey};
use crate::realtime::{Realtime, channel, socket};
use crate::state::AppState;

/// Publishing and minting, behind the scope gate.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(mint_token))
        .routes(routes!(hub_stats))
}

/// The WebSocket endpoint, served by the process that runs `realtime`'s hub.
pub fn socket_router(realtime: Arc<Realtime>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connect))
        .layer(axum::Extension(realtime))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The channel, e.g. `files` or `user.42.messages`.
    pub channel: String,
    /// The event's name, e.g. `message.created`.
    pub event: String,
    /// Any JSON, delivered as the event's `data`.
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub channel: String,
    /// The event's offset in its channel; subscribers recover from offsets like it.
    pub offset: u64,
}

/// Publishes an event to every subscriber of its channel, on every realtime replica, and
/// keeps it in the channel's history.
#[utoipa::path(
    post,
    path = "/api/v1/realtime/publish",
    tag = "realtime",
    security(("api_key" = ["realtime:publish"])),
    request_body = PublishRequest,
    responses(
        (status = 200, description = "Published", body = Published),
        (status = 413, description = "The data is over realtime.max_event_bytes", body = Problem),
        (status = 422, description = "A bad channel or event name", body = Problem),
    )
)]
async fn publish(
    State(state): State<AppState>,
    Json(request): Json<PublishRequest>,
) -> Result<axum::Json<Published>, ApiError> {
    let offset = state
        .realtime
        .publish(&request.channel, &request.event, &request.data)
        .await
        .map_err(|error| match error {
            PublishError::Channel(problem) => Invalid::new("channel", problem).into(),
            PublishError::EventName => Invalid::new("event", error.to_string()).into(),
            PublishError::TooLarge { limit, .. } => ApiError::PayloadTooLarge { limit },
            PublishError::Redis(cause) => ApiError::from(cause),
        })?;
    Ok(axum::Json(Published {
        channel: request.channel,
        offset,
    }))
}

/// Sockets open on every realtime hub, the busiest channels with their subscribers, and
/// each hub's own figures, reported every second.
#[utoipa::path(
    get,
    path = "/api/v1/realtime/stats",
    tag = "realtime",
    security(("api_key" = ["metrics:read"])),
    responses((status = 200, description = "Every live hub's figures and their sum", body = RealtimeStats))
)]
async fn hub_stats(State(state): State<AppState>) -> Result<axum::Json<RealtimeStats>, ApiError> {
    let stats = stats::read(&state.realtime, crate::queue::now_ms()).await?;
    Ok(axum::Json(stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocketTokenRequest {
    /// Who the socket belongs to (the `sub` claim).
    pub sub: String,
    /// Channel names or `*`-suffixed patterns the socket may subscribe to.
    pub channels: Vec<String>,
    /// Lifetime in seconds; `realtime.token_ttl_seconds` when absent, at most a week.
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MintedToken {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Mints a socket token (HS256, signed with `APP_SECRET`). Any backend holding the secret
/// can mint the same tokens itself.
#[utoipa::path(
    post,
    path = "/api/v1/realtime/token",
    tag = "realtime",
    security(("api_key" = ["realtime:token"])),
    request_body = SocketTokenRequest,
    responses(
        (status = 200, description = "A token", body = MintedToken),
        (status = 422, description = "A bad claim", body = Problem),
        (status = 503, description = "No app.secret is configured", body = Problem),
    )
)]
async fn mint_token(
    State(state): State<AppState>,
    Json(request): Json<SocketTokenRequest>,
) -> Result<axum::Json<MintedToken>, ApiError> {
    let secret = state.settings.app.secret.as_ref().ok_or_else(|| {
        ApiError::Unavailable("tokens need app.secret (APP_SECRET), which is not set".into())
    })?;
    if request.sub.is_empty() || request.sub.len() > 256 {
        return Err(Invalid::new("sub", "sub is 1 to 256 characters").into());
    }
    if request.channels.is_empty() || request.channels.len() > 1000 {
        return Err(Invalid::new("channels", "name 1 to 1000 channels or patterns").into());
    }
    for pattern in &request.channels {
        let name = pattern.strip_suffix('*').unwrap_or(pattern);
        if !(pattern == "*" || channel::check(name).is_ok()) {
            return Err(Invalid::new(
                "channels",
                format!("{pattern:?} is not a channel name or a pattern ending in *"),
            )
            .into());
        }
    }
    let ttl = request
        .ttl_seconds
        .unwrap_or(state.settings.realtime.token_ttl_seconds);
    if ttl == 0 || ttl > 7 * 24 * 3600 {
        return Err(Invalid::new("ttl_seconds", "between 1 and 604800 seconds").into());
    }
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: request.sub,
        exp: now + ttl as i64,
        channels: request.channels,
        iat: Some(now),
        nbf: None,
    };
    Ok(axum::Json(MintedToken {
        token: TokenKey::new(secret).mint(&claims),
        expires_at: claims.exp,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConnectQuery {
    /// The socket's token; or send `{"type":"auth","token":...}` first.
    pub token: Option<String>,
}

/// Upgrades to a WebSocket. The protocol (messages, close codes) is in the README.
#[utoipa::path(
    get,
    path = "/api/v1/realtime",
    tag = "realtime",
    params(ConnectQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 403, description = "The Origin is not allowed", body = Problem),
        (status = 426, description = "Not a WebSocket upgrade", body = Problem),
        (status = 429, description = "Too many connection attempts from this address", body = Problem),
        (status = 503, description = "The process is at realtime.max_connections", body = Problem),
    )
)]
async fn connect(
    axum::Extension(realtime): axum::Extension<Arc<Realtime>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Query(query): Query<ConnectQuery>,
    mut request: axum::extract::Request,
) -> Response {
    let settings = &realtime.settings;
    let headers = request.headers();
    let Some(accept) = accept_key(headers) else {
        let problem = Problem::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks WebSocket: send Connection: Upgrade, Upgrade: websocket, \
             Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
        );
        let mut response = problem.into_response();
        let response_headers = response.headers_mut();
        response_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        response_headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    };
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin_allowed(&settings.allowed_origins, origin.to_str().unwrap_or(""))
    {
        metrics::counter!("switchyard_realtime_refused_total", "reason" => "origin").increment(1);
        return ApiError::Forbidden(
            "this Origin may not connect (realtime.allowed_origins)".into(),
        )
        .into_response();
    }
    let address = client_address(&settings.client_ip_header, headers, peer.map(|p| p.0.0));
    if let Some(retry_after) = over_attempts(&realtime, &address).await {
        metrics::counter!("switchyard_realtime_refused_total", "reason" => "attempts").increment(1);
        return with_retry_after(
            ApiError::RateLimited(format!(
                "more than {} connection attempts this minute from this address \
                 (realtime.connections_per_ip_per_minute)",
                settings.connections_per_ip_per_minute
            )),
            retry_after,
        );
    }
    let Some(slot) = realtime.hub.open() else {
        metrics::counter!("switchyard_realtime_refused_total", "reason" => "capacity").increment(1);
        return with_retry_after(
            ApiError::Unavailable(
                "this realtime process is at its connection limit (realtime.max_connections) \
                 or shutting down; retry"
                    .into(),
            ),
            5,
        );
    };
    let upgrading = hyper::upgrade::on(&mut request);
    let token = query.token;
    let for_socket = realtime.clone();
    tokio::spawn(async move {
        let upgraded = match upgrading.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(error = %error, "a WebSocket upgrade did not complete");
                return;
            }
        };
        // The socket itself, so that the hub can write events to it directly.
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(hyper::upgrade::Parts { io, read_buf, .. }) => {
                // A copy: the bytes hyper read ahead share its whole read buffer.
                let read_ahead = read_buf.to_vec();
                drop(read_buf);
                socket::run(io.into_inner(), read_ahead, for_socket, token, slot).await;
            }
            Err(_) => tracing::error!("an upgraded connection was not a TCP stream"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response_headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// The `Sec-WebSocket-Accept` for a WebSocket upgrade request (RFC 6455, section 4.2.1),
/// or `None` when the request is not one.
fn accept_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let lists = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !lists(header::CONNECTION, "upgrade")
        || !lists(header::UPGRADE, "websocket")
        || headers.get(header::SEC_WEBSOCKET_VERSION)? != "13"
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes())).ok()
}

fn with_retry_after(error: ApiError, seconds: u64) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The client's address: from `header` when set and present (the last entry of a list,
/// the one the nearest proxy wrote), else the peer's.
fn client_address(header: &str, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let forwarded = (!header.is_empty())
        .then(|| headers.get(header))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match (forwarded, peer) {
        (Some(address), _) => address.to_owned(),
        (None, Some(peer)) => peer.ip().to_string(),
        (None, None) => "unknown".to_owned(),
    }
}

/// How long counting a connection attempt may take before it is let through.
const ATTEMPT_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Counts an attempt from `address` in this minute's window; when over the limit, the
/// seconds until the window ends. Redis being down lets the attempt through (the other
/// limits still hold).
async fn over_attempts(realtime: &Realtime, address: &str) -> Option<u64> {
    let now = chrono::Utc::now().timestamp();
    let minute = now / 60;
    let key = realtime.history.keys().attempts(address, minute);
    let count = async {
        let mut conn = realtime.history.pool().get().await?;
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .expire(&key, 120)
            .ignore()
            .query_async(&mut conn)
            .await?;
        anyhow::Ok(count)
    };
    // Bounded, so that an outage does not hold every new socket for the pool's timeout.
    let counted = tokio::time::timeout(ATTEMPT_CHECK_LIMIT, count)
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "Redis did not answer within {ATTEMPT_CHECK_LIMIT:?}"
            ))
        });
    match counted {
        Ok(count) if count > u64::from(realtime.settings.connections_per_ip_per_minute) => {
            Some((60 - now.rem_euclid(60)) as u64)
        }
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not count a realtime connection attempt; letting it through"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_comes_from_the_proxy_header_when_configured() {
        let mut headers = HeaderMap::new();
        headers.insert("x-real-ip", HeaderValue::from_static("203.0.113.7"));
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.9.9.9, 198.51.100.2"),
        );
        let peer = Some("127.0.0.1:5000".parse().unwrap());
        assert_eq!(client_address("x-real-ip", &headers, peer), "203.0.113.7");
        assert_eq!(
            client_address("x-forwarded-for", &headers, peer),
            "198.51.100.2"
        );
        assert_eq!(client_address("", &headers, peer), "127.0.0.1");
        assert_eq!(client_address("x-missing", &headers, peer), "127.0.0.1");
    }
}
