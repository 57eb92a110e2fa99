//! The route layer that declares a route's body as streamed: an upload that may run far
//! longer than `http.request_timeout_seconds` as long as bytes keep coming, bounded
//! instead by its own limits and an idle timeout of its own. The edge reads the
//! declaration from the request's context and lifts the request deadline; the body limit
//! applies only where a body is read as JSON, so a streamed body is the route's to bound.
//! A route that bounds its body refuses it part way, so after a 4xx the rest is drained
//! first ([`super::linger`]): the client still sending it reads the refusal instead of a
//! reset connection.
//!
//! ```ignore
//! OpenApiRouter::new().routes(routes!(upload)).route_layer(StreamsBody)
//! ```

use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::{context, linger};

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

impl<S> Service<Request> for Streaming<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        context::declare_streaming();
        let (request, body) = linger::shared(request);
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if response.status().is_client_error() {
                linger::drain(body).await;
            }
            Ok(response)
        })
    }
}
