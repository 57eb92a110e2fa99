//! Lingering after a refused streamed body. A route that refuses a body before reading all of it
//! (a declared length over the limit, a file part that grows past it, a type refused by
//! its first bytes) answers while the rest is still arriving. Closing a connection with
//! unread data makes the kernel reset it, and the reset can reach the client before the
//! answer, which the client then never reads: it sees a broken connection instead of a
//! 413. So after a 4xx the rest of the body is read and dropped first, up to a bound in
//! bytes and time (a body larger than that is cut off as before). Every route declared
//! with [`super::streaming::StreamsBody`] gets it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use futures_util::{Stream, StreamExt};

/// The most of a refused body read before answering.
const DRAIN_BYTES: usize = 4 << 20;
/// The longest an answer waits for the rest of a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// `request` with its body behind a shared handle, and the handle: the route reads the
/// body as ever, and [`drain`] can take back what it left.
pub(super) fn shared(request: Request) -> (Request, Shared) {
    let (parts, body) = request.into_parts();
    let shared = Shared(Arc::new(Mutex::new(body.into_data_stream())));
    let request = Request::from_parts(parts, Body::from_stream(shared.clone()));
    (request, shared)
}

/// The request body behind a handle the route and this layer share.
#[derive(Clone)]
pub(super) struct Shared(Arc<Mutex<BodyDataStream>>);

impl Stream for Shared {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        inner.poll_next_unpin(cx)
    }
}

/// Reads and drops what is left of the body, up to the bounds.
pub(super) async fn drain(mut body: Shared) {
    let mut read = 0;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read >= DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}
