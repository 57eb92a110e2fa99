//! Rate limits at the edge of the API, for the scope gate: which budget a request counts
//! against (its route's group, else `rate_limit.rate`), who it counts as (the key, the
//! root token, or the client's address), the client's address (the peer's, or the
//! forwarded one when the peer is a trusted proxy), the `RateLimit-Policy` / `RateLimit`
//! headers (draft-ietf-httpapi-ratelimit-headers) and what happens while Redis is down.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

use super::problem::ApiError;
use crate::config::{Cidr, FailMode, Rate, RateLimitSettings};
use crate::ratelimit::{Budget, Decision};
use crate::state::AppState;

/// The last time (unix seconds) a Redis outage of the limiter was logged.
static LAST_OUTAGE_LOG: AtomicI64 = AtomicI64::new(0);

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the one the
/// outermost trusted proxy saw), else `X-Real-IP`, else the peer's.
pub fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    if let Some(client) = forwarded
        .iter()
        .rev()
        .find(|a| !trusted.iter().any(|c| c.contains(**a)))
    {
        return Some(*client);
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(Some(peer))
}

/// A budget's name and terms, for its headers.
#[derive(Clone, Debug)]
pub struct Counted {
    name: Arc<str>,
    budget: Budget,
    decision: Decision,
}

impl Counted {
    /// Puts `RateLimit-Policy` and `RateLimit` on a response.
    pub fn stamp(&self, response: &mut Response) {
        let window = (f64::from(self.budget.burst) / self.budget.per_second)
            .ceil()
            .max(1.0);
        let reset = if self.decision.allowed {
            self.decision.full_in
        } else {
            self.decision.retry_after
        };
        let policy = format!(
            "\"{}\";q={};w={}",
            self.name, self.budget.burst, window as u64
        );
        let state = format!(
            "\"{}\";r={};t={}",
            self.name,
            self.decision.remaining,
            reset.as_secs_f64().ceil() as u64
        );
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&policy) {
            headers.insert("ratelimit-policy", v);
        }
        if let Ok(v) = HeaderValue::from_str(&state) {
            headers.insert("ratelimit", v);
        }
        if !self.decision.allowed {
            let seconds = self.decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
}

/// One route group's budget.
#[derive(Debug)]
struct Group {
    routes: Vec<(Method, String)>,
    limit: (Arc<str>, Budget),
}

/// `[rate_limit]` as the gate uses it, read once when the router is built: nothing is
/// parsed or formatted per request but the budget's key.
#[derive(Debug)]
pub struct Limits {
    default: Option<(Arc<str>, Budget)>,
    groups: Vec<Group>,
    failed_auth: (Arc<str>, Budget),
    /// The proxies whose forwarded addresses are believed.
    pub trusted: Vec<Cidr>,
    on_redis_down: FailMode,
}

impl Limits {
    /// The budgets of `settings`, which start-up validated.
    pub fn new(settings: &RateLimitSettings) -> Self {
        let budget = |rate: Rate, burst| Budget {
            per_second: rate.0,
            burst,
        };
        let groups = settings
            .groups
            .iter()
            .filter_map(|(name, group)| {
                let routes = group
                    .routes
                    .iter()
                    .filter_map(|route| {
                        let (method, path) = route.split_once(' ')?;
                        Some((Method::from_bytes(method.as_bytes()).ok()?, path.to_owned()))
                    })
                    .collect();
                Some(Group {
                    routes,
                    limit: (
                        name.as_str().into(),
                        budget(Rate::parse(&group.rate)?, group.burst),
                    ),
                })
            })
            .collect();
        Self {
            default: settings
                .rate()
                .map(|rate| ("default".into(), budget(rate, settings.burst))),
            groups,
            failed_auth: (
                "failed_auth".into(),
                budget(settings.failed_auth(), settings.failed_auth_burst),
            ),
            trusted: settings.trusted(),
            on_redis_down: settings.on_redis_down,
        }
    }

    /// The group and budget `method path` counts against, if any.
    fn budget_for(&self, method: &Method, path: &str) -> Option<&(Arc<str>, Budget)> {
        self.groups
            .iter()
            .find(|g| g.routes.iter().any(|(m, p)| m == method && p == path))
            .map(|g| &g.limit)
            .or(self.default.as_ref())
    }
}

/// Counts a request of `who` on `method path`. `Ok(None)` when no budget applies or
/// Redis is down and the limiter fails open; `Err` is the 429 (or, failing closed, the
/// 503) to answer with.
pub async fn count(
    state: &AppState,
    limits: &Limits,
    who: &str,
    method: &Method,
    path: &str,
) -> Result<Option<Counted>, Response> {
    let Some((name, budget)) = limits.budget_for(method, path) else {
        return Ok(None);
    };
    let key = format!("{name}:{who}");
    decide(state, limits, name, &key, *budget).await
}

/// Counts a failed authentication from `address`; the 429 when it is one too many.
pub async fn count_failure(
    state: &AppState,
    limits: &Limits,
    address: Option<IpAddr>,
) -> Result<(), Response> {
    let (name, budget) = &limits.failed_auth;
    let who = format!(
        "auth:{}",
        address.map_or("unknown".into(), |a| a.to_string())
    );
    decide(state, limits, name, &who, *budget).await.map(|_| ())
}

async fn decide(
    state: &AppState,
    limits: &Limits,
    name: &Arc<str>,
    who: &str,
    budget: Budget,
) -> Result<Option<Counted>, Response> {
    match state.limiter.check(who, budget).await {
        Ok(decision) => {
            let counted = Counted {
                name: name.clone(),
                budget,
                decision,
            };
            if decision.allowed {
                return Ok(Some(counted));
            }
            metrics::counter!("switchyard_rate_limited_total", "budget" => counted.name.to_string())
                .increment(1);
            let mut response = axum::response::IntoResponse::into_response(ApiError::RateLimited(
                format!(
                    "over the {} budget ({} a second, {} at once); retry after the Retry-After seconds",
                    counted.name, budget.per_second, budget.burst
                ),
            ));
            counted.stamp(&mut response);
            Err(response)
        }
        Err(error) => {
            metrics::counter!("switchyard_rate_limit_unavailable_total").increment(1);
            let now = chrono::Utc::now().timestamp();
            let last = LAST_OUTAGE_LOG.load(Ordering::Relaxed);
            if now - last >= 60
                && LAST_OUTAGE_LOG
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    error = format!("{error:#}"),
                    mode = ?limits.on_redis_down,
                    "rate limits cannot reach Redis"
                );
            }
            match limits.on_redis_down {
                FailMode::FailOpen => Ok(None),
                FailMode::FailClosed => Err(axum::response::IntoResponse::into_response(
                    ApiError::DependencyDown {
                        what: "Redis",
                        cause: error,
                    },
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let trusted = [
            Cidr::parse("127.0.0.1").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.1.1.1"),
        );
        let ip = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        assert_eq!(
            client_address(Some(peer), &headers, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(Some(stranger), &headers, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(Some(peer), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        let mut real = HeaderMap::new();
        real.insert("x-real-ip", HeaderValue::from_static("203.0.113.4"));
        assert_eq!(
            client_address(Some(peer), &real, &trusted),
            ip("203.0.113.4")
        );
        assert_eq!(client_address(None, &headers, &trusted), None);
    }
}
