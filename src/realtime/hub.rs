//! The hub of one realtime process: which local sockets listen on which channel, and the
//! one Redis subscriber connection (dedicated, not from the pool) that brings every
//! replica's events in.
//!
//! The subscriber holds a Redis subscription for exactly the channels some local socket
//! is on. Joining a channel waits until Redis has confirmed the subscription, so a socket
//! reads history only once live events are already flowing to it: together they leave no
//! gap, and the socket drops the overlap by offset.
//!
//! Fan-out never waits on a socket: each has a bounded queue, and one whose queue is full
//! is told to close as a slow consumer while the others carry on.
//!
//! When the subscriber's connection drops, it reconnects with backoff, subscribes again
//! to every channel in use, and asks every socket to resync: each recovers what it missed
//! meanwhile from history.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_redis::redis;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::history::{Frame, Keys, parse_live};

/// How often the subscriber checks its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A live event as every member of its channel gets it, shared.
#[derive(Debug)]
pub struct LiveEvent {
    pub channel: Arc<str>,
    pub frame: Frame,
}

/// What the hub sends a socket.
#[derive(Debug)]
pub enum Outbound {
    /// An event on a channel the socket joined.
    Event(Arc<LiveEvent>),
    /// Live events may have been missed (the subscriber reconnected): recover.
    Resync,
}

/// Why the hub stops a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Its queue overflowed: the client reads too slowly.
    Slow,
    /// The process is shutting down.
    Shutdown,
}

/// The sending end of a socket's stop signal; used once.
#[derive(Default)]
struct StopSender(std::sync::Mutex<Option<oneshot::Sender<Stop>>>);

impl StopSender {
    fn send(&self, why: Stop) {
        if let Some(sender) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = sender.send(why);
        }
    }
}

/// A socket as the hub sees it.
#[derive(Clone)]
pub struct Member {
    queue: mpsc::Sender<Outbound>,
    stop: Arc<StopSender>,
}

impl Member {
    /// Socket `id` as a member of this hub: the member, the receiving end of its queue of
    /// `capacity` messages, and its stop signal. Each socket waits on a signal of its own
    /// (a oneshot, which costs no lock to poll), not on one token all sockets share.
    pub fn new(
        hub: &Hub,
        id: u64,
        capacity: usize,
    ) -> (Self, mpsc::Receiver<Outbound>, oneshot::Receiver<Stop>) {
        let (queue, receiver) = mpsc::channel(capacity);
        let (sender, stop) = oneshot::channel();
        let member = Self {
            queue,
            stop: Arc::new(StopSender(std::sync::Mutex::new(Some(sender)))),
        };
        hub.stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, member.stop.clone());
        // Registered after shutdown began: stop at once.
        if hub.closing.is_cancelled() {
            member.stop.send(Stop::Shutdown);
        }
        (member, receiver, stop)
    }

    fn offer(&self, message: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(message) {
            self.stop.send(Stop::Slow);
        }
    }
}

struct Channel {
    name: Arc<str>,
    members: HashMap<u64, Member>,
}

enum Control {
    Join {
        channel: String,
        done: oneshot::Sender<Result<(), String>>,
    },
    Leave {
        channel: String,
    },
}

/// Why a socket could not join a channel.
#[derive(Debug, thiserror::Error)]
#[error("the realtime subscriber is not connected to Redis: {0}")]
pub struct JoinError(String);

/// The hub: channels, members, the subscriber's state and the open sockets.
pub struct Hub {
    keys: Keys,
    channels: RwLock<HashMap<String, Channel>>,
    control: mpsc::UnboundedSender<Control>,
    control_receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
    subscriber_up: AtomicBool,
    connections: AtomicUsize,
    max_connections: usize,
    next_id: AtomicU64,
    /// Every open socket's task, for the drain.
    sockets: TaskTracker,
    /// Every authenticated socket's stop signal, by socket id.
    stops: std::sync::Mutex<HashMap<u64, Arc<StopSender>>>,
    /// Cancelled at shutdown: every socket closes with 1001.
    closing: CancellationToken,
    join_timeout: Duration,
}

/// A counted open socket; dropping it frees the slot.
pub struct Slot {
    hub: Arc<Hub>,
    id: u64,
    _tracked: tokio_util::task::task_tracker::TaskTrackerToken,
}

impl Slot {
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub
            .stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        self.hub.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(keys: Keys, max_connections: usize, join_timeout: Duration) -> Arc<Self> {
        let (control, receiver) = mpsc::unbounded_channel();
        Arc::new(Self {
            keys,
            channels: RwLock::default(),
            control,
            control_receiver: std::sync::Mutex::new(Some(receiver)),
            subscriber_up: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            max_connections,
            next_id: AtomicU64::new(1),
            sockets: TaskTracker::new(),
            stops: std::sync::Mutex::default(),
            closing: CancellationToken::new(),
            join_timeout,
        })
    }

    /// Takes a connection slot, unless the process is at `realtime.max_connections` or
    /// shutting down.
    pub fn open(self: &Arc<Self>) -> Option<Slot> {
        if self.closing.is_cancelled() {
            return None;
        }
        let before = self.connections.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_connections {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot {
            hub: self.clone(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            _tracked: self.sockets.token(),
        })
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    pub fn channel_count(&self) -> usize {
        self.channels.read().map(|c| c.len()).unwrap_or(0)
    }

    pub fn subscriber_connected(&self) -> bool {
        self.subscriber_up.load(Ordering::Acquire)
    }

    /// Cancelled when the process starts shutting down (sockets still authenticating
    /// watch it; the others get [`Stop::Shutdown`]).
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    /// Adds `member` (socket `id`) to `channel` and waits until the subscriber listens
    /// on it.
    pub async fn join(&self, channel: &str, id: u64, member: &Member) -> Result<(), JoinError> {
        {
            let mut channels = self.channels.write().unwrap_or_else(|p| p.into_inner());
            channels
                .entry(channel.to_owned())
                .or_insert_with(|| Channel {
                    name: Arc::from(channel),
                    members: HashMap::new(),
                })
                .members
                .insert(id, member.clone());
        }
        let (done, confirmed) = oneshot::channel();
        let outcome = match self.control.send(Control::Join {
            channel: channel.to_owned(),
            done,
        }) {
            Ok(()) => match tokio::time::timeout(self.join_timeout, confirmed).await {
                Ok(Ok(result)) => result.map_err(JoinError),
                Ok(Err(_)) => Err(JoinError("the subscriber stopped".into())),
                Err(_) => Err(JoinError("no confirmation in time".into())),
            },
            Err(_) => Err(JoinError("the subscriber stopped".into())),
        };
        if outcome.is_err() {
            self.leave(channel, id);
        }
        outcome
    }

    /// Takes socket `id` off `channel`.
    pub fn leave(&self, channel: &str, id: u64) {
        let emptied = {
            let mut channels = self.channels.write().unwrap_or_else(|p| p.into_inner());
            match channels.get_mut(channel) {
                Some(entry) => {
                    entry.members.remove(&id);
                    let empty = entry.members.is_empty();
                    if empty {
                        channels.remove(channel);
                    }
                    empty
                }
                None => false,
            }
        };
        if emptied {
            let _ = self.control.send(Control::Leave {
                channel: channel.to_owned(),
            });
        }
    }

    /// Hands a live event to every local member of its channel.
    fn dispatch(&self, live_channel: &str, payload: &[u8]) {
        let Some(channel) = self.keys.channel_of(live_channel) else {
            return;
        };
        let Some(frame) = parse_live(payload) else {
            tracing::warn!(channel, "ignored a malformed realtime message");
            return;
        };
        let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = channels.get(channel) {
            let event = Arc::new(LiveEvent {
                channel: entry.name.clone(),
                frame,
            });
            for member in entry.members.values() {
                member.offer(Outbound::Event(event.clone()));
            }
            metrics::counter!("switchyard_realtime_deliveries_total")
                .increment(entry.members.len() as u64);
        }
    }

    /// Asks every member to recover from history.
    fn resync_all(&self) {
        let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
        let mut told = HashSet::new();
        for entry in channels.values() {
            for (id, member) in &entry.members {
                if told.insert(*id) {
                    member.offer(Outbound::Resync);
                }
            }
        }
    }

    fn wanted(&self) -> Vec<String> {
        let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
        channels.keys().map(|c| self.keys.live(c)).collect()
    }

    /// Runs the subscriber until `shutdown`: connects, follows joins and leaves, hands
    /// events out, and reconnects when the connection drops.
    pub async fn run_subscriber(
        self: Arc<Self>,
        client: redis::Client,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut control = self
            .control_receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| anyhow::anyhow!("the realtime subscriber is already running"))?;
        let mut backoff = Duration::from_millis(100);
        let mut reconnecting = false;
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                connected = self.connect(&client) => connected,
            };
            let (mut sink, mut stream, mut subscribed) = match connected {
                Ok(parts) => parts,
                Err(error) => {
                    if !reconnecting {
                        tracing::warn!(error = %error, "the realtime subscriber cannot reach Redis; retrying");
                        reconnecting = true;
                    }
                    refuse_pending(&mut control, &error.to_string());
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            self.subscriber_up.store(true, Ordering::Release);
            if reconnecting {
                tracing::info!(
                    "the realtime subscriber reconnected to Redis; sockets recover what they missed"
                );
                self.resync_all();
            }
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.reset();
            let lost = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    message = stream.next() => match message {
                        Some(message) => self.dispatch(message.get_channel_name(), message.get_payload_bytes()),
                        None => break "the connection closed".to_owned(),
                    },
                    command = control.recv() => match command {
                        Some(Control::Join { channel, done }) => {
                            let live = self.keys.live(&channel);
                            if subscribed.contains(&live) {
                                let _ = done.send(Ok(()));
                                continue;
                            }
                            match sink.subscribe(&live).await {
                                Ok(()) => {
                                    subscribed.insert(live);
                                    let _ = done.send(Ok(()));
                                }
                                Err(error) => {
                                    let _ = done.send(Err(error.to_string()));
                                    break error.to_string();
                                }
                            }
                        }
                        Some(Control::Leave { channel }) => {
                            let live = self.keys.live(&channel);
                            let still_used = self
                                .channels
                                .read()
                                .map(|c| c.contains_key(&channel))
                                .unwrap_or(true);
                            if !still_used
                                && subscribed.remove(&live)
                                && let Err(error) = sink.unsubscribe(&live).await
                            {
                                break error.to_string();
                            }
                        }
                        None => return Ok(()),
                    },
                    _ = ping.tick() => {
                        match tokio::time::timeout(self.join_timeout, sink.ping::<String>()).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => break error.to_string(),
                            Err(_) => break "no answer to PING in time".to_owned(),
                        }
                    }
                }
            };
            self.subscriber_up.store(false, Ordering::Release);
            reconnecting = true;
            tracing::warn!(error = %lost, "the realtime subscriber lost its Redis connection; reconnecting");
        }
    }

    /// A fresh subscriber connection, subscribed to every channel in use.
    async fn connect(
        &self,
        client: &redis::Client,
    ) -> anyhow::Result<(
        redis::aio::PubSubSink,
        redis::aio::PubSubStream,
        HashSet<String>,
    )> {
        let attempt = async {
            let (mut sink, stream) = client.get_async_pubsub().await?.split();
            let wanted = self.wanted();
            if !wanted.is_empty() {
                sink.subscribe(&wanted).await?;
            }
            anyhow::Ok((sink, stream, wanted.into_iter().collect()))
        };
        tokio::time::timeout(self.join_timeout, attempt)
            .await
            .map_err(|_| anyhow::anyhow!("no answer from Redis in time"))?
    }

    /// Closes every socket with 1001 and waits for them, at most `drain`.
    pub async fn close_all(&self, drain: Duration) {
        self.closing.cancel();
        let stops: Vec<Arc<StopSender>> = self
            .stops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for stop in stops {
            stop.send(Stop::Shutdown);
        }
        self.sockets.close();
        crate::shutdown::drain("realtime sockets", drain, self.sockets.wait()).await;
    }
}

/// Answers joins that arrived while the subscriber was disconnected.
fn refuse_pending(control: &mut mpsc::UnboundedReceiver<Control>, error: &str) {
    while let Ok(command) = control.try_recv() {
        if let Control::Join { done, .. } = command {
            let _ = done.send(Err(error.to_owned()));
        }
    }
}
