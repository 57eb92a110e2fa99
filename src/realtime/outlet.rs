//! The write side of one socket, shared by the hub and the socket's own task.
//!
//! The hub writes an event straight to the socket: one `send` to the kernel with the frame
//! every member of the channel shares, and no task woken. Only when the kernel's buffer
//! for the socket is full does a frame wait in the outlet's queue, which the socket's task
//! drains as the socket becomes writable. A queue that reaches `realtime.outbound_queue`
//! frames means the client reads too slowly: the outlet stops and the socket closes.
//!
//! Everything written to the socket (events, replies, pings, tungstenite's pongs, the
//! close) goes through one lock, a whole frame at a time, so frames never interleave and
//! queued ones keep their order.
//!
//! Per channel, the outlet remembers the offset of the newest event it delivered and drops
//! any event at or below it. While the socket reads a channel's history (subscribing, or
//! recovering after the subscriber reconnected), live events for it are held back, then
//! released after the history: in order, with no gap and no duplicate.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::deliveries::Deliveries;
use super::frame;
use super::history::Frame;

/// A live event as every member of its channel gets it, shared.
#[derive(Debug)]
pub struct LiveEvent {
    pub channel: Arc<str>,
    pub offset: u64,
    /// The WebSocket frame, made once.
    pub wire: Bytes,
}

/// Why an outlet stopped taking frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Its queue filled: the client reads too slowly.
    Slow,
    /// The process is shutting down.
    Shutdown,
    /// A write failed: the connection is gone.
    Broken,
    /// The socket is closing (its close frame is queued).
    Closing,
}

/// What the hub asked of the socket's task since it last looked.
#[derive(Debug, Default)]
pub struct Signals {
    pub stop: Option<Stop>,
    /// The subscriber reconnected: recover every channel from history.
    pub resync: bool,
}

/// One channel's delivery state.
struct Delivery {
    /// The newest offset delivered.
    delivered: u64,
    /// Live events waiting for the history read under way, if one is.
    held: Option<Vec<Arc<LiveEvent>>>,
}

#[derive(Default)]
struct State {
    /// Frames the kernel did not take yet; the front may be the rest of a frame.
    queue: VecDeque<Bytes>,
    channels: Deliveries<Delivery>,
    stop: Option<Stop>,
    resync: bool,
}

/// A channel's history, ready to be delivered ahead of the live events held for it.
pub struct Release {
    pub channel: Arc<str>,
    /// Events to deliver (those at or below what was delivered are dropped).
    pub history: Vec<Frame>,
    /// The channel's newest offset when the history was read.
    pub position: u64,
}

/// Frames written with one `writev` when the queue drains.
const WRITE_BATCH: usize = 64;

/// See the module documentation.
pub struct Outlet {
    stream: TcpStream,
    state: Mutex<State>,
    signal: Notify,
    queue_limit: usize,
}

impl Outlet {
    pub fn new(stream: TcpStream, queue_limit: usize) -> Self {
        Self {
            stream,
            state: Mutex::default(),
            signal: Notify::new(),
            queue_limit: queue_limit.max(1),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hub: delivers `events` (in offset order, all on one channel) with one write, or
    /// holds them while the channel's history is being read.
    pub fn deliver(&self, events: &[Arc<LiveEvent>]) {
        let Some(channel) = events.first().map(|e| &e.channel) else {
            return;
        };
        let mut state = self.lock();
        if state.stop.is_some() {
            return;
        }
        let Some(delivery) = state.channels.get_mut(channel) else {
            return;
        };
        if let Some(held) = &mut delivery.held {
            if held.len() + events.len() > self.queue_limit {
                self.halt(&mut state, Stop::Slow);
            } else {
                held.extend(events.iter().cloned());
            }
            return;
        }
        if let [event] = events {
            // The usual case, without gathering.
            if event.offset > delivery.delivered {
                delivery.delivered = event.offset;
                self.write(&mut state, &[&event.wire]);
            }
            return;
        }
        let mut wires = Vec::with_capacity(events.len());
        for event in events {
            if event.offset > delivery.delivered {
                delivery.delivered = event.offset;
                wires.push(&event.wire);
            }
        }
        self.write(&mut state, &wires);
    }

    /// Socket: writes one frame (a reply, a ping). Dropped once the outlet stopped: the
    /// socket's task is about to close.
    pub fn send(&self, wire: &Bytes) {
        let mut state = self.lock();
        if state.stop.is_none() {
            self.write(&mut state, &[wire]);
        }
    }

    /// Writes `wires` now if nothing waits ahead of them, else queues them; a queue that
    /// would go over its limit stops the outlet as a slow consumer.
    fn write(&self, state: &mut State, wires: &[&Bytes]) {
        if !state.queue.is_empty() && state.queue.len() + wires.len() > self.queue_limit {
            self.halt(state, Stop::Slow);
        } else {
            self.put(state, wires);
        }
    }

    /// Writes `wires` now (one `writev`) if nothing waits ahead of them, and queues what
    /// the kernel did not take.
    fn put(&self, state: &mut State, wires: &[&Bytes]) {
        if wires.is_empty() {
            return;
        }
        if !state.queue.is_empty() {
            state.queue.extend(wires.iter().map(|&w| w.clone()));
            return;
        }
        let mut written = match write_vectored(&self.stream, wires.iter().copied()) {
            Ok(written) => written,
            Err(_) => {
                self.halt(state, Stop::Broken);
                return;
            }
        };
        for wire in wires {
            if written >= wire.len() {
                written -= wire.len();
            } else {
                state.queue.push_back(wire.slice(written..));
                written = 0;
            }
        }
        if !state.queue.is_empty() {
            // The socket's task waits for the socket to be writable and drains the queue.
            self.signal.notify_one();
        }
    }

    fn halt(&self, state: &mut State, why: Stop) {
        if state.stop.is_none() {
            state.stop = Some(why);
            self.signal.notify_one();
        }
    }

    /// Hub: stops the outlet (shutdown, or a slow consumer) and wakes its task.
    pub fn stop(&self, why: Stop) {
        let mut state = self.lock();
        self.halt(&mut state, why);
    }

    /// Hub: the subscriber reconnected; the socket's task recovers from history.
    pub fn request_resync(&self) {
        self.lock().resync = true;
        self.signal.notify_one();
    }

    /// Completes when the hub asked something of the socket's task, or queued a frame.
    pub async fn signalled(&self) {
        self.signal.notified().await;
    }

    /// Socket: what the hub asked for since the last look (the resync request is taken).
    pub fn signals(&self) -> Signals {
        let mut state = self.lock();
        Signals {
            stop: state.stop,
            resync: std::mem::take(&mut state.resync),
        }
    }

    /// Whether frames wait for the socket to become writable.
    pub fn queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Socket: writes queued frames until none is left (true) or the socket would block
    /// (false).
    pub fn flush(&self) -> io::Result<bool> {
        let mut state = self.lock();
        while !state.queue.is_empty() {
            let mut written = match write_vectored(&self.stream, state.queue.iter()) {
                Ok(0) => return Ok(false),
                Ok(written) => written,
                Err(error) => {
                    self.halt(&mut state, Stop::Broken);
                    return Err(error);
                }
            };
            while written > 0 {
                let front = state
                    .queue
                    .pop_front()
                    .expect("written bytes came from the queue");
                if written < front.len() {
                    state.queue.push_front(front.slice(written..));
                    break;
                }
                written -= front.len();
            }
        }
        Ok(true)
    }

    /// Socket: writes what is queued, waiting for the socket as long as it takes.
    pub async fn drain(&self) -> io::Result<()> {
        while !self.flush()? {
            self.stream.writable().await?;
        }
        Ok(())
    }

    /// Socket: starts holding live events for `channels` (about to read their history).
    pub fn hold(&self, channels: &[Arc<str>]) {
        let mut state = self.lock();
        for channel in channels {
            state
                .channels
                .get_or_insert_with(channel, || Delivery {
                    delivered: 0,
                    held: None,
                })
                .held
                .get_or_insert_with(Vec::new);
        }
    }

    /// Socket: writes `preface`, then each channel's history and the live events held
    /// for it, newer than what was delivered, and goes live on those channels. Returns
    /// the newest offset delivered on each.
    pub fn release(&self, preface: Option<&Bytes>, releases: Vec<Release>) -> Vec<u64> {
        let mut state = self.lock();
        if let Some(preface) = preface
            && state.stop.is_none()
        {
            self.write(&mut state, &[preface]);
        }
        let mut newest = Vec::with_capacity(releases.len());
        for release in releases {
            let Some(delivery) = state.channels.get_mut(&release.channel) else {
                newest.push(0);
                continue;
            };
            let mut delivered = delivery.delivered;
            let held = delivery.held.take().unwrap_or_default();
            let mut frames = Vec::new();
            for event in release.history {
                if event.offset > delivered {
                    delivered = event.offset;
                    frames.push(frame::text(event.text.as_bytes()));
                }
            }
            delivered = delivered.max(release.position);
            for event in held {
                if event.offset > delivered {
                    delivered = event.offset;
                    frames.push(event.wire.clone());
                }
            }
            delivery.delivered = delivered;
            newest.push(delivered);
            if state.stop.is_none() {
                self.write(&mut state, &frames.iter().collect::<Vec<_>>());
            }
        }
        newest
    }

    /// Socket: the channels it is on, each with the newest offset delivered.
    pub fn channels(&self) -> Vec<(Arc<str>, u64)> {
        self.lock()
            .channels
            .iter()
            .map(|(name, delivery)| (name.clone(), delivery.delivered))
            .collect()
    }

    /// Whether the socket is on `channel` (or subscribing to it).
    pub fn on(&self, channel: &str) -> bool {
        self.lock().channels.contains_key(channel)
    }

    pub fn channel_count(&self) -> usize {
        self.lock().channels.len()
    }

    /// Socket: off `channel`; its events are dropped from here on.
    pub fn forget(&self, channel: &str) -> bool {
        self.lock().channels.remove(channel).is_some()
    }

    /// Socket: takes no more frames, except `close`, which goes after what is queued (a
    /// slow consumer's backlog is dropped, but for the frame at its front, which may be
    /// under way).
    pub fn close(&self, close: Option<&Bytes>) {
        let mut state = self.lock();
        let stopped = state.stop.replace(Stop::Closing);
        if stopped == Some(Stop::Slow) {
            state.queue.truncate(1);
        }
        if stopped != Some(Stop::Broken)
            && let Some(close) = close
        {
            self.put(&mut state, &[close]);
        }
    }
}

/// Writes the first [`WRITE_BATCH`] of `wires` with one system call (`send` for one,
/// `writev` for more): the bytes the kernel took, 0 when the socket would block.
fn write_vectored<'a>(
    stream: &TcpStream,
    mut wires: impl ExactSizeIterator<Item = &'a Bytes>,
) -> io::Result<usize> {
    let written = if wires.len() == 1 {
        stream.try_write(wires.next().expect("one wire"))
    } else {
        let mut slices = [IoSlice::new(&[]); WRITE_BATCH];
        let mut count = 0;
        for (slice, wire) in slices.iter_mut().zip(wires) {
            *slice = IoSlice::new(wire);
            count += 1;
        }
        stream.try_write_vectored(&slices[..count])
    };
    match written {
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
        written => written,
    }
}

/// The socket as tungstenite sees it: reads come from the socket (`WouldBlock` when
/// nothing is there), writes (its pongs and close replies) go through the outlet.
pub struct Io(pub Arc<Outlet>);

impl io::Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.stream.try_read(buf)
    }
}

impl io::Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(&Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::{Message, Utf8Bytes};

    use super::{LiveEvent, Outlet, Release, Stop};
    use crate::realtime::frame;
    use crate::realtime::history::Frame;

    /// An outlet on the server end of a loopback connection, and the client end.
    async fn connected(queue_limit: usize) -> (Arc<Outlet>, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Arc::new(Outlet::new(server, queue_limit)), client)
    }

    fn event(offset: u64) -> Arc<LiveEvent> {
        Arc::new(LiveEvent {
            channel: Arc::from("c"),
            offset,
            wire: frame::text(offset.to_string().as_bytes()),
        })
    }

    /// The client's text messages until the server's close frame (or `count` of them).
    async fn read(client: std::net::TcpStream, count: usize) -> (Vec<String>, Option<u16>) {
        tokio::task::spawn_blocking(move || {
            let mut socket = WebSocket::from_raw_socket(client, Role::Client, None);
            let mut texts = Vec::new();
            while texts.len() < count {
                match socket.read().expect("a whole frame") {
                    Message::Text(text) => texts.push(text.to_string()),
                    Message::Close(close) => return (texts, close.map(|c| c.code.into())),
                    _ => {}
                }
            }
            (texts, None)
        })
        .await
        .unwrap()
    }

    fn go_live(outlet: &Outlet, position: u64) {
        outlet.hold(&[Arc::from("c")]);
        outlet.release(
            None,
            vec![Release {
                channel: Arc::from("c"),
                history: Vec::new(),
                position,
            }],
        );
    }

    #[tokio::test]
    async fn live_events_reach_the_socket_in_order_and_old_or_repeated_ones_are_dropped() {
        let (outlet, client) = connected(4).await;
        outlet.deliver(&[event(1)]);
        go_live(&outlet, 1);
        outlet.deliver(&[event(1)]);
        outlet.deliver(&[event(2)]);
        outlet.deliver(&[event(2), event(3), event(4)]);
        outlet.deliver(&[Arc::new(LiveEvent {
            channel: Arc::from("other"),
            offset: 9,
            wire: frame::text(b"9"),
        })]);
        outlet.deliver(&[event(5)]);
        let (texts, _) = read(client, 4).await;
        assert_eq!(texts, ["2", "3", "4", "5"]);
        assert!(!outlet.queued());
    }

    #[tokio::test]
    async fn events_held_while_history_is_read_follow_it_with_no_gap_and_no_duplicate() {
        let (outlet, client) = connected(8).await;
        outlet.hold(&[Arc::from("c")]);
        outlet.deliver(&[event(4)]);
        outlet.deliver(&[event(5), event(6)]);
        let history = [2, 3, 4]
            .map(|offset| Frame {
                offset,
                text: offset.to_string(),
            })
            .to_vec();
        let newest = outlet.release(
            Some(&frame::text(b"subscribed")),
            vec![Release {
                channel: Arc::from("c"),
                history,
                position: 4,
            }],
        );
        assert_eq!(newest, [6]);
        outlet.deliver(&[event(6)]);
        outlet.deliver(&[event(7)]);
        let (texts, _) = read(client, 7).await;
        assert_eq!(texts, ["subscribed", "2", "3", "4", "5", "6", "7"]);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_stopped_as_slow_and_still_gets_whole_frames_then_its_close()
     {
        let (outlet, client) = connected(4).await;
        go_live(&outlet, 0);
        let pad = "y".repeat(64 * 1024);
        let mut offset = 0;
        while outlet.signals().stop.is_none() {
            offset += 1;
            assert!(offset < 100_000, "the outlet never stopped");
            outlet.deliver(&[Arc::new(LiveEvent {
                channel: Arc::from("c"),
                offset,
                wire: frame::text(pad.as_bytes()),
            })]);
        }
        assert_eq!(outlet.signals().stop, Some(Stop::Slow));
        outlet.deliver(&[event(offset + 1)]);
        outlet.close(Some(&frame::close(4008, "too slow")));
        let reading = tokio::spawn(read(client, usize::MAX));
        outlet.drain().await.unwrap();
        let (texts, code) = reading.await.unwrap();
        assert_eq!(code, Some(4008));
        assert!(!texts.is_empty() && texts.iter().all(|t| *t == pad));
        assert!(texts.len() < offset as usize, "the backlog was dropped");
    }

    #[tokio::test]
    async fn tungstenite_writes_go_through_the_outlet_in_order_with_the_events() {
        let (outlet, client) = connected(4).await;
        go_live(&outlet, 0);
        outlet.deliver(&[event(1)]);
        let mut server = WebSocket::from_raw_socket(super::Io(outlet.clone()), Role::Server, None);
        server
            .send(Message::Text(Utf8Bytes::from_static("reply")))
            .unwrap();
        outlet.deliver(&[event(2)]);
        outlet.close(Some(&frame::close(1001, "bye")));
        let (texts, code) = read(client, usize::MAX).await;
        assert_eq!(texts, ["1", "reply", "2"]);
        assert_eq!(code.map(CloseCode::from), Some(CloseCode::Away));
    }
}
