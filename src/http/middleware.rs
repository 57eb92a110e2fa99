//! The edge every request passes through: request id, body-size precheck, timeout, panic
//! isolation, one access-log line with metrics, and the rewrite of bare error responses
//! from routing and layers into problem documents.

use std::any::Any;
use std::cell::Cell;
use std::convert::Infallible;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::telemetry::requests::RequestMetrics;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The request being handled, set by [`EdgeService`] so that error bodies, logs and
    /// extractors can read it without touching the request's extension map.
    static REQUEST: RequestContext;
}

struct RequestContext {
    id: RequestId,
    body_limit: usize,
    /// The matched route template, filled in by [`RecordRoute`] once routing is done.
    route: Cell<Option<MatchedPath>>,
}

impl Clone for RequestContext {
    /// A copy for producing a response outside the handler (refusals, panics, the
    /// problem rewrite); the route stays with the original.
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            body_limit: self.body_limit,
            route: Cell::new(None),
        }
    }
}

/// A request's id: one the caller sent, or one generated here and kept inline, so that
/// neither costs an allocation until the response header is written.
#[derive(Clone)]
enum RequestId {
    Given(HeaderValue),
    Generated([u8; 32]),
}

impl RequestId {
    fn as_str(&self) -> &str {
        match self {
            Self::Given(value) => value.to_str().unwrap_or_default(),
            Self::Generated(hex) => std::str::from_utf8(hex).unwrap_or_default(),
        }
    }

    fn header(&self) -> HeaderValue {
        match self {
            Self::Given(value) => value.clone(),
            Self::Generated(hex) => {
                HeaderValue::from_bytes(hex).unwrap_or(HeaderValue::from_static("unknown"))
            }
        }
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

/// The limits the edge enforces, from `[http]`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub request_timeout: Duration,
    pub body_limit: usize,
}

/// The edge as a tower layer, and what it keeps between requests.
#[derive(Clone)]
pub struct Edge(Arc<EdgeInner>);

struct EdgeInner {
    limits: Limits,
    ids: RequestIds,
    metrics: Arc<RequestMetrics>,
}

impl Edge {
    pub fn new(limits: Limits, metrics: Arc<RequestMetrics>) -> Self {
        Self(Arc::new(EdgeInner {
            limits,
            ids: RequestIds::new(),
            metrics,
        }))
    }
}

/// Request ids: a random 64-bit prefix drawn once per process, then a counter, as 32 hex
/// digits. Unique across replicas in practice, with no system call per request.
struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut seed = [0u8; 16];
        // Without randomness the ids are still unique within this process.
        let _ = getrandom::fill(&mut seed);
        let (prefix, start) = seed.split_at(8);
        Self {
            prefix: u64::from_le_bytes(prefix.try_into().unwrap_or_default()),
            next: AtomicU64::new(u64::from_le_bytes(start.try_into().unwrap_or_default())),
        }
    }

    fn next(&self) -> RequestId {
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

/// Reports the matched route template back to the edge on the response; runs per route,
/// where axum has matched it.
#[derive(Clone, Copy)]
pub struct RecordRouteLayer;

impl<S> Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;

    fn layer(&self, inner: S) -> RecordRoute<S> {
        RecordRoute(inner)
    }
}

#[derive(Clone)]
pub struct RecordRoute<S>(S);

impl<S> Service<Request> for RecordRoute<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RecordRouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        RecordRouteFuture {
            inner: self.0.call(request),
            route,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's response, its matched route handed to the edge.
    pub struct RecordRouteFuture<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for RecordRouteFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        // Into the request's context when there is one: no allocation on the response.
        let mut route = this.route.take();
        let _ = REQUEST.try_with(|c| c.route.set(route.take()));
        if let Some(route) = route {
            response.extensions_mut().insert(route);
        }
        Poll::Ready(Ok(response))
    }
}

impl<S> Layer<S> for Edge {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService {
            inner,
            edge: self.clone(),
        }
    }
}

/// The edge around the whole router.
#[derive(Clone)]
pub struct EdgeService<S> {
    inner: S,
    edge: Edge,
}

impl<S> Service<Request> for EdgeService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let limits = self.edge.0.limits;
        // Handlers read the id through `current_request_id`; it is not copied into the
        // request's headers.
        let id = request
            .headers()
            .get(&X_REQUEST_ID)
            .filter(|v| acceptable_request_id(v.as_bytes()))
            .map(|v| RequestId::Given(v.clone()))
            .unwrap_or_else(|| self.edge.0.ids.next());
        let context = RequestContext {
            id,
            body_limit: limits.body_limit,
            route: Cell::new(None),
        };
        let method = request.method().clone();
        // Uploads stream to storage under their bucket's limit and an idle timeout of
        // their own; upgraded connections (WebSockets) live as long as the client stays.
        let streams = super::files::streams_body(&method, request.uri().path());
        let deadline = (!streams && !request.headers().contains_key(header::UPGRADE))
            .then(|| tokio::time::Instant::from_std(started) + limits.request_timeout);
        let too_large = !streams
            && request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n > limits.body_limit as u64);
        let done = Done {
            edge: self.edge.clone(),
            method,
            started,
            deadline,
        };
        // The handler runs only for a body that may fit. A panic, while the route is
        // called or later while it runs, fails this request alone with an opaque 500.
        if too_large {
            let refusal = REQUEST.sync_scope(context.clone(), || {
                ApiError::PayloadTooLarge {
                    limit: limits.body_limit,
                }
                .into_response()
            });
            return EdgeFuture::early(refusal, context, done);
        }
        match panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(inner) => EdgeFuture {
                handler: Some(REQUEST.scope(context, crate::panic::catch_unwind(inner))),
                context: None,
                early: None,
                timer: None,
                rewrite: None,
                done,
            },
            Err(panic) => {
                let response = REQUEST.sync_scope(context.clone(), || panic_response(panic));
                EdgeFuture::early(response, context, done)
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// One request through the edge, as a state machine rather than a boxed async block:
    /// the common case (a handler that answers at once with a success) allocates nothing
    /// here. The task-local context moves in and out of the handler without copies, and
    /// the timer exists only once the handler has had to wait.
    pub struct EdgeFuture<F> {
        #[pin]
        handler: Option<TaskLocalFuture<RequestContext, crate::panic::CatchUnwind<F>>>,
        // The context, once taken back from the finished handler.
        context: Option<RequestContext>,
        early: Option<Response>,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        rewrite: Option<Pin<Box<dyn Future<Output = Response> + Send>>>,
        done: Done,
    }
}

impl<F> EdgeFuture<F> {
    fn early(response: Response, context: RequestContext, done: Done) -> Self {
        Self {
            handler: None,
            context: Some(context),
            early: Some(response),
            timer: None,
            rewrite: None,
            done,
        }
    }
}

/// What the edge needs once the response exists.
struct Done {
    edge: Edge,
    method: Method,
    started: Instant,
    deadline: Option<tokio::time::Instant>,
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(response) = this.early.take() {
            let context = this.context.take();
            return Poll::Ready(Ok(this.done.finish(response, context.as_ref())));
        }
        if let Some(rewrite) = this.rewrite.as_mut() {
            let context = this.context.take();
            let polled = match &context {
                Some(c) => REQUEST.sync_scope(c.clone(), || rewrite.as_mut().poll(cx)),
                None => rewrite.as_mut().poll(cx),
            };
            *this.context = context;
            let response = std::task::ready!(polled);
            let context = this.context.take();
            return Poll::Ready(Ok(this.done.finish(response, context.as_ref())));
        }
        let Some(mut handler) = this.handler.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        match handler.as_mut().poll(cx) {
            Poll::Ready(outcome) => {
                let context = handler.take_value();
                this.handler.set(None);
                let scoped = |f: &mut dyn FnMut() -> Response| match &context {
                    Some(c) => REQUEST.sync_scope(c.clone(), f),
                    None => f(),
                };
                let response = match outcome {
                    Ok(Ok(response)) => response,
                    Err(panic) => {
                        let mut panic = Some(panic);
                        scoped(&mut || panic_response(panic.take().unwrap_or_else(|| Box::new(()))))
                    }
                };
                if !needs_problem_body(&response) {
                    return Poll::Ready(Ok(this.done.finish(response, context.as_ref())));
                }
                *this.rewrite = Some(Box::pin(as_problem(response)));
                *this.context = context;
                // Poll the rewrite at once; it only reads a short body already received.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => {
                let Some(deadline) = this.done.deadline else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let context = handler.take_value();
                this.handler.set(None);
                let seconds = this.done.edge.0.limits.request_timeout.as_secs();
                let timeout = || ApiError::Timeout { seconds }.into_response();
                let response = match &context {
                    Some(c) => REQUEST.sync_scope(c.clone(), timeout),
                    None => timeout(),
                };
                Poll::Ready(Ok(this.done.finish(response, context.as_ref())))
            }
        }
    }
}

impl Done {
    /// Stamps the request id, writes the access-log line and records the metrics.
    fn finish(&self, mut response: Response, context: Option<&RequestContext>) -> Response {
        let request_id = context.map_or("", |c| c.id.as_str());
        if let Some(context) = context {
            response
                .headers_mut()
                .insert(X_REQUEST_ID.clone(), context.id.header());
        }
        let route = context
            .and_then(|c| c.route.take())
            .or_else(|| response.extensions().get::<MatchedPath>().cloned());
        let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let method = &self.method;
        let status = response.status().as_u16();
        let elapsed = self.started.elapsed();
        let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        // Probes arrive every few seconds from the platform; keep them out of the info
        // stream.
        if route.starts_with("/api/health") {
            tracing::debug!(method = %method, route, status, duration_ms, request_id, "request");
        } else {
            tracing::info!(method = %method, route, status, duration_ms, request_id, "request");
        }
        self.edge.0.metrics.record(method, route, status, elapsed);
        response
    }
}

/// Client-chosen ids are kept when they are short and printable, so a trace can cross
/// services; anything else is replaced.
fn acceptable_request_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len()) && value.iter().all(u8::is_ascii_graphic)
}

/// Whether a response is an error without a JSON body (axum's empty 405, a layer's
/// plain-text rejection), which [`as_problem`] turns into a problem document. Problem
/// documents and JSON reports such as a 503 health body pass as they are.
fn needs_problem_body(response: &Response) -> bool {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
        });
    response.status().as_u16() >= 400 && !is_json
}

/// Rewrites such a response into a problem document, keeping its headers (`Allow`,
/// `Retry-After`) and, for a client error, its short text as the detail.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let (mut parts, body) = response.into_parts();
    let detail = if is_text && status.is_client_error() {
        axum::body::to_bytes(body, 1024)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .filter(|s| !s.trim().is_empty())
    } else {
        None
    };
    let problem = Problem::for_status(status, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (problem_parts, problem_body) = problem.into_parts();
    for (name, value) in problem_parts.headers.iter() {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, Body::new(problem_body))
}

/// The answer for a path no route matches.
pub async fn not_found() -> Response {
    Problem::for_status(StatusCode::NOT_FOUND, None).into_response()
}

/// A handler panicked: the task survives, the client gets an opaque 500, the log gets
/// the panic message once.
fn panic_response(panic: Box<dyn Any + Send>) -> Response {
    let message = crate::panic::message(panic.as_ref());
    let request_id = current_request_id().unwrap_or_default();
    tracing::error!(panic = message, request_id, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR, None).into_response()
}
