//! The hub of one realtime process: which local sockets listen on which channel, and the
//! one Redis [`Subscription`] (dedicated connections, not from the pool) that brings every
//! replica's events in.
//!
//! The subscriber holds a Redis subscription for exactly the channels some local socket
//! is on. Joining a channel waits until Redis has confirmed the subscription, so a socket
//! reads history only once live events are already flowing to it: together they leave no
//! gap, and the socket drops the overlap by offset.
//!
//! Fan-out runs on a thread of its own and never waits on a socket: it writes each event
//! straight to every member's [`Outlet`], which queues what the kernel does not take yet
//! and stops a slow consumer whose queue fills, while the others carry on.
//!
//! When the subscriber's connection drops, it reconnects with backoff, subscribes again
//! to every channel in use, and asks every socket to resync: each recovers what it missed
//! meanwhile from history.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::frame;
use super::history::{Keys, parse_live};
use super::outlet::{LiveEvent, Outlet, Stop};
use super::subscription::{Incoming, Source, Subscription};

/// Events a fan-out thread writes to a socket at once, at most.
const BATCH: usize = 64;
/// How often the subscriber checks its connection is alive.
const PING_EVERY: Duration = Duration::from_secs(5);
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the subscriber hands the fan-out thread, in the order it arrived.
enum Fanout {
    Event(Arc<LiveEvent>),
    /// Live events may have been missed (the subscriber reconnected): every socket
    /// recovers.
    Resync,
}

/// The members of each channel that one fan-out thread writes to: sockets are spread
/// over the threads by id, so that a broadcast's writes run on every core.
#[derive(Default)]
struct Shard {
    channels: RwLock<HashMap<String, HashMap<u64, Arc<Outlet>>>>,
}

impl Shard {
    /// Copies the shard's members of `channel` into `outlets`.
    fn members(&self, channel: &str, outlets: &mut Vec<Arc<Outlet>>) {
        let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
        if let Some(members) = channels.get(channel) {
            outlets.extend(members.values().cloned());
        }
    }
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
    /// Local members per channel, over all shards: the channels the subscriber listens on.
    /// Each name is kept once and shared with the events and sockets on the channel, so
    /// that a socket recognises an event's channel by pointer, not by reading the name.
    members: std::sync::Mutex<HashMap<Arc<str>, usize>>,
    shards: Vec<Shard>,
    control: mpsc::UnboundedSender<Control>,
    control_receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Control>>>,
    subscriber_up: AtomicBool,
    connections: AtomicUsize,
    max_connections: usize,
    next_id: AtomicU64,
    /// Every open socket's task, for the drain.
    sockets: TaskTracker,
    /// Every upgraded socket's outlet, by socket id.
    outlets: std::sync::Mutex<HashMap<u64, Arc<Outlet>>>,
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

    /// Registers the socket's outlet, so that shutdown reaches it; stopped at once when
    /// shutdown began already.
    pub fn register(&self, outlet: &Arc<Outlet>) {
        self.hub
            .outlets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.id, outlet.clone());
        if self.hub.closing.is_cancelled() {
            outlet.stop(Stop::Shutdown);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub
            .outlets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        self.hub.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    /// A hub whose fan-out runs on `fanout_threads` threads.
    pub fn new(
        keys: Keys,
        max_connections: usize,
        join_timeout: Duration,
        fanout_threads: usize,
    ) -> Arc<Self> {
        let (control, receiver) = mpsc::unbounded_channel();
        Arc::new(Self {
            keys,
            members: std::sync::Mutex::default(),
            shards: (0..fanout_threads.max(1))
                .map(|_| Shard::default())
                .collect(),
            control,
            control_receiver: std::sync::Mutex::new(Some(receiver)),
            subscriber_up: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            max_connections,
            next_id: AtomicU64::new(1),
            sockets: TaskTracker::new(),
            outlets: std::sync::Mutex::default(),
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
        self.lock_members().len()
    }

    /// The `n` channels with the most subscribers here, most first.
    pub fn busiest(&self, n: usize) -> Vec<(String, usize)> {
        let mut channels: Vec<(String, usize)> = self
            .lock_members()
            .iter()
            .map(|(channel, count)| (channel.to_string(), *count))
            .collect();
        channels.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        channels.truncate(n);
        channels
    }

    pub fn subscriber_connected(&self) -> bool {
        self.subscriber_up.load(Ordering::Acquire)
    }

    /// Adds `member` (socket `id`) to `channel` and waits until the subscriber listens
    /// on it.
    pub async fn join(
        &self,
        channel: &Arc<str>,
        id: u64,
        outlet: &Arc<Outlet>,
    ) -> Result<(), JoinError> {
        let added = self
            .shard(id)
            .channels
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(channel.to_string())
            .or_default()
            .insert(id, outlet.clone())
            .is_none();
        if added {
            let mut members = self.lock_members();
            match members.get_mut(&**channel) {
                Some(count) => *count += 1,
                None => {
                    members.insert(channel.clone(), 1);
                }
            }
        }
        let (done, confirmed) = oneshot::channel();
        let outcome = match self.control.send(Control::Join {
            channel: channel.to_string(),
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
        let removed = {
            let mut channels = self
                .shard(id)
                .channels
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let Some(members) = channels.get_mut(channel) else {
                return;
            };
            let removed = members.remove(&id).is_some();
            if members.is_empty() {
                channels.remove(channel);
            }
            removed
        };
        if !removed {
            return;
        }
        let emptied = {
            let mut members = self.lock_members();
            let count = members.get_mut(channel).map_or(0, |count| {
                *count = count.saturating_sub(1);
                *count
            });
            let emptied = count == 0;
            if emptied {
                members.remove(channel);
            }
            emptied
        };
        if emptied {
            let _ = self.control.send(Control::Leave {
                channel: channel.to_owned(),
            });
        }
    }

    /// The event in a pub/sub message, framed once for every socket.
    fn parse(&self, live_channel: &str, payload: &[u8]) -> Option<LiveEvent> {
        let channel = self.keys.channel_of(live_channel)?;
        let Some(event) = parse_live(payload) else {
            tracing::warn!(channel, "ignored a malformed realtime message");
            return None;
        };
        Some(LiveEvent {
            channel: self.intern(channel),
            offset: event.offset,
            wire: frame::text(event.text.as_bytes()),
        })
    }

    fn shard(&self, id: u64) -> &Shard {
        &self.shards[(id % self.shards.len() as u64) as usize]
    }

    /// The shared name of `channel` when a local socket is on it, else a new one.
    pub fn intern(&self, channel: &str) -> Arc<str> {
        self.lock_members()
            .get_key_value(channel)
            .map_or_else(|| Arc::from(channel), |(name, _)| name.clone())
    }

    fn lock_members(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, usize>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts one fan-out thread per shard, each writing every event to its shard's
    /// members of the event's channel. Threads of their own, because a broadcast to many
    /// sockets is many writes in a row, which would hold up a runtime worker. They end
    /// when the subscriber drops the senders returned.
    fn spawn_fanout(self: &Arc<Self>) -> anyhow::Result<Vec<std::sync::mpsc::Sender<Fanout>>> {
        let mut senders = Vec::with_capacity(self.shards.len());
        for index in 0..self.shards.len() {
            let (sender, events) = std::sync::mpsc::channel::<Fanout>();
            let hub = self.clone();
            std::thread::Builder::new()
                .name(format!("realtime-fanout-{index}"))
                .spawn(move || {
                    let shard = &hub.shards[index];
                    let mut batch = Vec::new();
                    let mut outlets = Vec::new();
                    while let Ok(first) = events.recv() {
                        // Whatever else arrived meanwhile goes out with it: a socket gets
                        // the events on one channel in one write, so a fan-out that falls
                        // behind catches up with fewer writes.
                        let mut resync = false;
                        for next in std::iter::once(first).chain(events.try_iter().take(BATCH - 1))
                        {
                            match next {
                                Fanout::Event(event) => batch.push(event),
                                Fanout::Resync => resync = true,
                            }
                        }
                        while !batch.is_empty() {
                            let channel = batch[0].channel.clone();
                            let (same, rest): (Vec<_>, Vec<_>) =
                                batch.drain(..).partition(|e| e.channel == channel);
                            batch = rest;
                            // The members are copied out so that joins and leaves do not
                            // wait for the writes.
                            shard.members(&channel, &mut outlets);
                            for outlet in &outlets {
                                outlet.deliver(&same);
                            }
                            metrics::counter!("switchyard_realtime_deliveries_total")
                                .increment((outlets.len() * same.len()) as u64);
                            outlets.clear();
                        }
                        if resync {
                            // A socket on several channels is told once.
                            let mut told = HashSet::new();
                            let channels = shard.channels.read().unwrap_or_else(|p| p.into_inner());
                            for (id, outlet) in channels.values().flatten() {
                                if told.insert(*id) {
                                    outlet.request_resync();
                                }
                            }
                        }
                    }
                })?;
            senders.push(sender);
        }
        Ok(senders)
    }

    fn wanted(&self) -> Vec<String> {
        self.lock_members()
            .keys()
            .map(|c| self.keys.live(c))
            .collect()
    }

    /// Runs the subscriber until `shutdown`: connects, follows joins and leaves, hands
    /// events out, and reconnects when the connection drops.
    pub async fn run_subscriber(
        self: Arc<Self>,
        source: Source,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut control = self
            .control_receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| anyhow::anyhow!("the realtime subscriber is already running"))?;
        let fanout = self.spawn_fanout()?;
        // A fan-out thread only stops by panicking; without it some sockets would hear
        // nothing, so the subscriber fails and the process exits.
        let fan_out = |next: &dyn Fn() -> Fanout| {
            fanout
                .iter()
                .try_for_each(|shard| shard.send(next()))
                .map_err(|_| anyhow::anyhow!("a realtime fan-out thread stopped"))
        };
        let mut backoff = Duration::from_millis(100);
        let mut reconnecting = false;
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                connected = self.connect(&source) => connected,
            };
            let (mut subscription, mut subscribed) = match connected {
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
                fan_out(&|| Fanout::Resync)?;
            }
            let mut ping = tokio::time::interval(PING_EVERY);
            ping.reset();
            let lost = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    incoming = subscription.next() => match incoming {
                        Incoming::Message(message) => {
                            if let Some(event) = self.parse(message.get_channel_name(), message.get_payload_bytes()) {
                                let event = Arc::new(event);
                                fan_out(&|| Fanout::Event(event.clone()))?;
                            }
                        }
                        Incoming::Lost(why) => break why,
                    },
                    command = control.recv() => match command {
                        Some(Control::Join { channel, done }) => {
                            let live = self.keys.live(&channel);
                            if subscribed.contains(&live) {
                                let _ = done.send(Ok(()));
                                continue;
                            }
                            match subscription.subscribe(std::slice::from_ref(&live)).await {
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
                            let still_used = self.lock_members().contains_key(channel.as_str());
                            if !still_used
                                && subscribed.remove(&live)
                                && let Err(error) = subscription.unsubscribe(&live).await
                            {
                                break error.to_string();
                            }
                        }
                        None => return Ok(()),
                    },
                    _ = ping.tick() => {
                        match tokio::time::timeout(self.join_timeout, subscription.ping()).await {
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

    /// A fresh subscription to every channel in use.
    async fn connect(&self, source: &Source) -> anyhow::Result<(Subscription, HashSet<String>)> {
        let attempt = async {
            let wanted = self.wanted();
            let subscription = Subscription::open(source, &wanted).await?;
            anyhow::Ok((subscription, wanted.into_iter().collect()))
        };
        tokio::time::timeout(self.join_timeout, attempt)
            .await
            .map_err(|_| anyhow::anyhow!("no answer from Redis in time"))?
    }

    /// Closes every socket with 1001 and waits for them, at most `drain`.
    pub async fn close_all(&self, drain: Duration) {
        self.closing.cancel();
        let outlets: Vec<Arc<Outlet>> = self
            .outlets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for outlet in outlets {
            outlet.stop(Stop::Shutdown);
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
