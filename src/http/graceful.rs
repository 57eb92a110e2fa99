//! Graceful shutdown of open HTTP connections. Each connection registers its task's waker
//! once, then checks one atomic flag each time it is polled. The usual alternative (a
//! watch channel or `Notify` in a `select!` beside the connection) takes a lock on every
//! poll of every connection, which shows on a request path this short.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The signal shared by the server loop and its connections.
#[derive(Default)]
pub struct Stopping {
    flag: AtomicBool,
    wakers: Mutex<HashMap<u64, Waker>>,
    next_id: AtomicU64,
}

impl Stopping {
    /// Asks every connection to finish its current request and close.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = match self.wakers.lock() {
            Ok(mut map) => map.drain().map(|(_, w)| w).collect(),
            Err(_) => return,
        };
        for waker in wakers {
            waker.wake();
        }
    }

    fn stopped(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

pin_project_lite::pin_project! {
    /// A connection that starts its graceful shutdown when the server stops.
    pub struct Graceful<C> {
        #[pin]
        connection: C,
        begin_shutdown: fn(Pin<&mut C>),
        stopping: Arc<Stopping>,
        registered: Option<u64>,
        shutting_down: bool,
    }

    impl<C> PinnedDrop for Graceful<C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (Some(id), Ok(mut wakers)) = (this.registered.take(), this.stopping.wakers.lock()) {
                wakers.remove(&id);
            }
        }
    }
}

impl<C> Graceful<C> {
    /// Wraps `connection`; `begin_shutdown` is its own graceful-shutdown call.
    pub fn new(connection: C, begin_shutdown: fn(Pin<&mut C>), stopping: Arc<Stopping>) -> Self {
        Self {
            connection,
            begin_shutdown,
            stopping,
            registered: None,
            shutting_down: false,
        }
    }
}

impl<C: Future> Future for Graceful<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.shutting_down {
            if this.registered.is_none() {
                // A spawned task's waker stays the same, so registering once is enough.
                let id = this.stopping.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut wakers) = this.stopping.wakers.lock() {
                    wakers.insert(id, cx.waker().clone());
                }
                *this.registered = Some(id);
            }
            if this.stopping.stopped() {
                *this.shutting_down = true;
                (this.begin_shutdown)(this.connection.as_mut());
            }
        }
        this.connection.poll(cx)
    }
}
