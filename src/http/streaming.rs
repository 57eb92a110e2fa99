//! The route layer that declares a route's body as streamed: an upload that may run far
//! longer than `http.request_timeout_seconds` as long as bytes keep coming, bounded
//! instead by its own limits and an idle timeout of its own. The edge reads the
//! declaration from the request's context and lifts the request deadline; the body limit
//! applies only where a body is read as JSON, so a streamed body is the route's to bound.
//!
//! ```ignore
//! OpenApiRouter::new().routes(routes!(upload)).route_layer(StreamsBody)
//! ```

use std::task::{Context, Poll};

use axum::extract::Request;
use tower::{Layer, Service};

use super::context;

/// Route layer: the routes it wraps stream their bodies.
#[derive(Clone, Copy, Debug)]
pub struct StreamsBody;

impl<S> Layer<S> for StreamsBody {
    type Service = Streaming<S>;

    fn layer(&self, inner: S) -> Streaming<S> {
        Streaming(inner)
    }
}

/// A route whose body streams.
#[derive(Clone)]
pub struct Streaming<S>(S);

impl<S: Service<Request>> Service<Request> for Streaming<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> S::Future {
        context::declare_streaming();
        self.0.call(request)
    }
}
