//! The edge every request passes through: request id, timeout, panic isolation, one
//! access-log line with metrics, and the rewrite of bare error responses from routing and
//! layers into problem documents. It knows no route: a route that needs the edge to treat
//! it differently says so through the request's context
//! ([`StreamsBody`](super::streaming::StreamsBody)).

use std::any::Any;
use std::convert::Infallible;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::context::{self, REQUEST, RequestContext, RequestId, RequestIds};
use super::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::telemetry::requests::RequestMetrics;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request target (path and query) the edge accepts; longer gets 414. Well
/// under hyper's own bound (64 KiB), which it answers with a bare status.
const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header section the edge accepts; larger gets 431. Well under the buffer
/// hyper reads headers into (about 400 KiB), past which it answers with a bare status.
const MAX_HEADER_BYTES: usize = 32 * 1024;

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
    /// `http.cors_allowed_origins`, when any.
    cors: Option<super::browser::Cors>,
}

impl Edge {
    pub fn new(
        limits: Limits,
        metrics: Arc<RequestMetrics>,
        cors: Option<super::browser::Cors>,
    ) -> Self {
        Self(Arc::new(EdgeInner {
            limits,
            ids: RequestIds::new(),
            metrics,
            cors,
        }))
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
        let context = RequestContext::new(id, limits.body_limit);
        let method = request.method().clone();
        // Upgraded connections (WebSockets) live as long as the client stays; a route
        // that streams its body lifts the deadline itself (see `Deadline`).
        let deadline = (!request.headers().contains_key(header::UPGRADE))
            .then(|| tokio::time::Instant::from_std(started) + limits.request_timeout);
        let cors = self.edge.0.cors.as_ref();
        let done = Done {
            edge: self.edge.clone(),
            method,
            started,
            https: super::browser::forwarded_https(request.headers()),
            origin: cors.and_then(|c| c.allowed(request.headers())),
        };
        if let Some(answer) = cors.and_then(|c| c.preflight(request.method(), request.headers())) {
            return EdgeFuture::early(answer, context, done);
        }
        // Oversized targets and headers get a problem document here, not hyper's bare
        // status with an empty body.
        if let Some(refusal) = oversized(&request) {
            let response = REQUEST.sync_scope(context.clone(), || refusal.into_response());
            return EdgeFuture::early(response, context, done);
        }
        // A panic, while the route is called or later while it runs, fails this request
        // alone with an opaque 500.
        match panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(inner) => EdgeFuture {
                handler: Some(REQUEST.scope(
                    context,
                    Deadline {
                        inner: crate::panic::catch_unwind(inner),
                        deadline,
                        timer: None,
                    },
                )),
                context: None,
                early: None,
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
    /// here. The task-local context moves in and out of the handler without copies.
    pub struct EdgeFuture<F> {
        #[pin]
        handler: Option<TaskLocalFuture<RequestContext, Deadline<crate::panic::CatchUnwind<F>>>>,
        // The context, once taken back from the finished handler.
        context: Option<RequestContext>,
        early: Option<Response>,
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
    /// The request came over HTTPS (by the proxy's word): the answer gets HSTS.
    https: bool,
    /// The request's `Origin`, when CORS allows it: the answer echoes it.
    origin: Option<HeaderValue>,
}

pin_project_lite::pin_project! {
    /// The handler under the request deadline. It is polled inside the request's scope, so
    /// each time the handler waits it sees whether the route has declared that its body
    /// streams, however late in the route's layers that came; such a route runs without
    /// the deadline. The timer exists only once the handler has had to wait. Its output is
    /// `None` when the deadline passed first.
    pub struct Deadline<F> {
        #[pin]
        inner: F,
        deadline: Option<tokio::time::Instant>,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            return Poll::Ready(Some(output));
        }
        let Some(deadline) = *this.deadline else {
            return Poll::Pending;
        };
        if context::streams_body() {
            *this.deadline = None;
            *this.timer = None;
            return Poll::Pending;
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
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
        let Poll::Ready(outcome) = handler.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        let context = handler.take_value();
        this.handler.set(None);
        let scoped = |f: &mut dyn FnMut() -> Response| match &context {
            Some(c) => REQUEST.sync_scope(c.clone(), f),
            None => f(),
        };
        let response = match outcome {
            Some(Ok(Ok(response))) => response,
            Some(Err(panic)) => {
                let mut panic = Some(panic);
                scoped(&mut || panic_response(panic.take().unwrap_or_else(|| Box::new(()))))
            }
            None => {
                let seconds = this.done.edge.0.limits.request_timeout.as_secs();
                scoped(&mut || ApiError::Timeout { seconds }.into_response())
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
}

impl Done {
    /// Stamps the request id and the security headers, writes the access-log line and
    /// records the metrics.
    fn finish(&mut self, mut response: Response, context: Option<&RequestContext>) -> Response {
        super::browser::secure(response.headers_mut(), self.https);
        if let Some(cors) = &self.edge.0.cors {
            cors.stamp(self.origin.take(), response.headers_mut());
        }
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

/// A 414 or 431 for a request target or header section past the edge's bounds.
fn oversized(request: &Request) -> Option<ApiError> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    // As on the wire: name, ": ", value, CRLF.
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge {
        limit: MAX_HEADER_BYTES,
    })
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
    let request_id = context::current_request_id().unwrap_or_default();
    tracing::error!(panic = message, request_id, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR, None).into_response()
}
