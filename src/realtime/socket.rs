//! One WebSocket connection, from authentication to close.
//!
//! The socket authenticates first (a token from the URL, or an `auth` message within
//! `realtime.auth_timeout_seconds`), then loops over: messages from the client, events
//! from its queue, the heartbeat, its token's expiry, the slow-consumer signal and the
//! process's shutdown. Every way out is a close frame with a code from
//! [`super::protocol::close`].
//!
//! For each channel it is on, the socket remembers the offset of the newest event it
//! delivered; an event at or below it is a duplicate (history and live events overlap
//! while it subscribes) and is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::hub::{Member, Outbound, Slot, Stop};
use super::protocol::{ClientMessage, ServerMessage, close};
use super::token::{Claims, TokenError};
use super::{Realtime, channel};

/// Queued events written to the socket before one flush.
const BATCH: usize = 64;

/// Why the loop ended: the close frame to send, if any.
struct Closing(Option<(u16, &'static str)>);

/// Runs one upgraded connection until it closes.
pub async fn run(
    mut socket: WebSocket,
    realtime: Arc<Realtime>,
    token: Option<String>,
    slot: Slot,
) {
    let settings = &realtime.settings;
    let claims = match authenticate(&mut socket, &realtime, token).await {
        Ok(claims) => claims,
        Err(Closing(frame)) => {
            finish(&mut socket, frame).await;
            return;
        }
    };
    let (member, queue, stop) = Member::new(&realtime.hub, slot.id(), settings.outbound_queue);
    let mut connection = Connection {
        realtime: realtime.clone(),
        id: slot.id(),
        connection_id: format!("{:016x}", rand_id()),
        claims,
        member,
        channels: HashMap::new(),
        allowance: Allowance::new(settings.messages_per_second, settings.message_burst),
        heard: Instant::now(),
    };
    metrics::gauge!("switchyard_realtime_connections").increment(1.0);
    let ending = connection.serve(&mut socket, queue, stop).await;
    connection.leave_all();
    metrics::gauge!("switchyard_realtime_connections").decrement(1.0);
    finish(&mut socket, ending.0).await;
    drop(slot);
}

/// Sends the close frame (when the socket can still take one) and lets the client answer.
async fn finish(socket: &mut WebSocket, frame: Option<(u16, &'static str)>) {
    if let Some((code, reason)) = frame {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(close)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
}

/// The token's claims, from the URL or the first message.
async fn authenticate(
    socket: &mut WebSocket,
    realtime: &Realtime,
    token: Option<String>,
) -> Result<Claims, Closing> {
    let token = match token {
        Some(token) => token,
        None => {
            let deadline =
                Instant::now() + Duration::from_secs(realtime.settings.auth_timeout_seconds);
            let closing = realtime.hub.closing().clone();
            loop {
                let next = tokio::select! {
                    _ = closing.cancelled() => {
                        return Err(Closing(Some((close::GOING_AWAY, "the server is shutting down"))));
                    }
                    next = tokio::time::timeout_at(deadline, socket.recv()) => next,
                };
                let frame = match next {
                    Err(_) => {
                        return Err(Closing(Some((
                            close::UNAUTHORIZED,
                            "no token: send {\"type\":\"auth\",\"token\":...} first",
                        ))));
                    }
                    Ok(None | Some(Err(_))) => return Err(Closing(None)),
                    Ok(Some(Ok(frame))) => frame,
                };
                match frame {
                    Message::Text(text) => match ClientMessage::parse(&text) {
                        Ok(ClientMessage::Auth { token }) => break token,
                        _ => {
                            return Err(Closing(Some((
                                close::UNAUTHORIZED,
                                "the first message must be {\"type\":\"auth\",\"token\":...}",
                            ))));
                        }
                    },
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Binary(_) => {
                        return Err(Closing(Some((
                            close::UNSUPPORTED_DATA,
                            "binary frames are not part of the protocol",
                        ))));
                    }
                    Message::Close(_) => return Err(Closing(None)),
                }
            }
        }
    };
    realtime
        .tokens
        .verify(&token, chrono::Utc::now().timestamp())
        .map_err(|error| {
            metrics::counter!("switchyard_realtime_refused_total", "reason" => "token")
                .increment(1);
            Closing(Some(match error {
                TokenError::Expired => (close::TOKEN_EXPIRED, "the token expired"),
                TokenError::Signature => {
                    (close::UNAUTHORIZED, "the token's signature is not valid")
                }
                TokenError::Algorithm => {
                    (close::UNAUTHORIZED, "the token must be signed with HS256")
                }
                TokenError::NotYetValid => (close::UNAUTHORIZED, "the token is not valid yet"),
                TokenError::Malformed(_) => (close::UNAUTHORIZED, "the token is not a JWT"),
            }))
        })
}

/// An authenticated socket.
struct Connection {
    realtime: Arc<Realtime>,
    id: u64,
    connection_id: String,
    claims: Claims,
    member: Member,
    /// The channels it is on, each with the newest offset delivered.
    channels: HashMap<Arc<str>, u64>,
    allowance: Allowance,
    /// When the client was last heard from.
    heard: Instant,
}

impl Connection {
    async fn serve(
        &mut self,
        socket: &mut WebSocket,
        mut queue: mpsc::Receiver<Outbound>,
        stop: oneshot::Receiver<Stop>,
    ) -> Closing {
        let connected = ServerMessage::Connected {
            connection_id: &self.connection_id,
        };
        if socket.send(text(connected.text())).await.is_err() {
            return Closing(None);
        }
        let realtime = self.realtime.clone();
        let settings = &realtime.settings;
        let heartbeat = Duration::from_secs(settings.heartbeat_seconds);
        let silence = Duration::from_secs(settings.heartbeat_timeout_seconds);
        let mut beat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        // Each wait is made once and polled again on every turn (making the expiry afresh
        // would register with the timer on each event), and the stop signal is the
        // socket's own, so ten thousand sockets share no lock while they wait.
        let expires = tokio::time::sleep_until(expiry(self.claims.exp));
        tokio::pin!(expires, stop);
        loop {
            tokio::select! {
                biased;
                why = &mut stop => return self.stopped(why.ok()),
                _ = &mut expires => {
                    return Closing(Some((close::TOKEN_EXPIRED, "the token expired")));
                }
                _ = beat.tick() => {
                    if self.heard.elapsed() >= silence {
                        return Closing(Some((close::HEARTBEAT_TIMEOUT, "no pong or message within the heartbeat timeout")));
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Closing(None);
                    }
                }
                outbound = queue.recv() => {
                    let Some(outbound) = outbound else { return Closing(None) };
                    // A write that blocks (the client stopped reading) must not keep the
                    // socket from noticing that it is too slow or that the process stops.
                    tokio::select! {
                        delivered = self.deliver(socket, outbound, &mut queue) => {
                            if let Err(ending) = delivered {
                                return ending;
                            }
                        }
                        // (A oneshot is polled to completion once, here or above.)
                        why = &mut stop => return self.stopped(why.ok()),
                    }
                }
                frame = socket.recv() => {
                    let frame = match frame {
                        None => return Closing(None),
                        Some(Ok(frame)) => frame,
                        Some(Err(error)) => return read_failure(&error),
                    };
                    self.heard = Instant::now();
                    match frame {
                        Message::Text(text) => {
                            if !self.allowance.take() {
                                metrics::counter!("switchyard_realtime_refused_total", "reason" => "rate").increment(1);
                                return Closing(Some((close::RATE_LIMITED, "too many messages: slow down")));
                            }
                            if let Err(ending) = self.handle(socket, &text).await {
                                return ending;
                            }
                        }
                        Message::Binary(_) => {
                            return Closing(Some((close::UNSUPPORTED_DATA, "binary frames are not part of the protocol")));
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                        Message::Close(_) => return Closing(None),
                    }
                }
            }
        }
    }

    /// The close for a socket the hub stopped.
    fn stopped(&self, why: Option<Stop>) -> Closing {
        if why != Some(Stop::Slow) {
            return Closing(Some((
                close::GOING_AWAY,
                "the server is shutting down; reconnect and recover",
            )));
        }
        tracing::warn!(
            connection_id = %self.connection_id,
            sub = %self.claims.sub,
            queue = self.realtime.settings.outbound_queue,
            "closed a slow realtime consumer: its queue was full"
        );
        metrics::counter!("switchyard_realtime_slow_consumers_total").increment(1);
        Closing(Some((
            close::SLOW_CONSUMER,
            "too slow: the outbound queue filled",
        )))
    }

    /// Writes `first` and whatever else is queued (up to a batch), then flushes once.
    async fn deliver(
        &mut self,
        socket: &mut WebSocket,
        first: Outbound,
        queue: &mut mpsc::Receiver<Outbound>,
    ) -> Result<(), Closing> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(outbound) = next.take() {
            match outbound {
                Outbound::Event(event) => {
                    if let Some(delivered) = self.channels.get_mut(&event.channel)
                        && event.frame.offset > *delivered
                    {
                        *delivered = event.frame.offset;
                        socket
                            .feed(Message::Text(event.frame.text.clone()))
                            .await
                            .map_err(|_| Closing(None))?;
                        written += 1;
                    }
                }
                Outbound::Resync => self.resync(socket).await?,
            }
            if written < BATCH {
                next = queue.try_recv().ok();
            }
        }
        socket.flush().await.map_err(|_| Closing(None))
    }

    /// Acts on one message from the client.
    async fn handle(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), Closing> {
        match ClientMessage::parse(text) {
            Err((code, message)) => send_error(socket, code, &message).await,
            Ok(ClientMessage::Ping) => send(socket, ServerMessage::Pong.text()).await,
            Ok(ClientMessage::Auth { .. }) => {
                send_error(
                    socket,
                    "already_authenticated",
                    "this socket is authenticated already",
                )
                .await
            }
            Ok(ClientMessage::Subscribe { channels, since }) => {
                self.subscribe(socket, channels, since).await
            }
            Ok(ClientMessage::Unsubscribe { channels }) => {
                for name in &channels {
                    if self.channels.remove(name.as_str()).is_some() {
                        self.realtime.hub.leave(name, self.id);
                    }
                }
                send(
                    socket,
                    ServerMessage::Unsubscribed {
                        channels: &channels,
                    }
                    .text(),
                )
                .await
            }
        }
    }

    async fn subscribe(
        &mut self,
        socket: &mut WebSocket,
        channels: Vec<String>,
        since: std::collections::BTreeMap<String, u64>,
    ) -> Result<(), Closing> {
        if channels.is_empty() {
            return send_error(socket, "bad_message", "name at least one channel").await;
        }
        for name in &channels {
            if let Err(problem) = channel::check(name) {
                return send_error(socket, "invalid_channel", &problem).await;
            }
            if !self.claims.allows(name) {
                metrics::counter!("switchyard_realtime_refused_total", "reason" => "claims")
                    .increment(1);
                return send_error(
                    socket,
                    "forbidden_channel",
                    &format!("the token does not grant channel {name:?}"),
                )
                .await;
            }
        }
        if let Some(stray) = since.keys().find(|c| !channels.contains(c)) {
            return send_error(
                socket,
                "bad_message",
                &format!("since names {stray:?}, which the subscribe does not"),
            )
            .await;
        }
        let mut fresh: Vec<&String> = channels
            .iter()
            .filter(|c| !self.channels.contains_key(c.as_str()))
            .collect();
        fresh.sort();
        fresh.dedup();
        let limit = self.realtime.settings.max_subscriptions;
        if self.channels.len() + fresh.len() > limit {
            return send_error(
                socket,
                "too_many_subscriptions",
                &format!(
                    "a socket may be on at most {limit} channels (realtime.max_subscriptions)"
                ),
            )
            .await;
        }
        // Live events first, then history: the overlap is dropped by offset.
        for (joined, name) in fresh.iter().enumerate() {
            if let Err(error) = self.realtime.hub.join(name, self.id, &self.member).await {
                for name in &fresh[..joined] {
                    self.realtime.hub.leave(name, self.id);
                }
                tracing::warn!(error = %error, "a realtime subscribe failed");
                return send_error(
                    socket,
                    "unavailable",
                    "realtime is not connected to Redis; retry shortly",
                )
                .await;
            }
        }
        let mut recoveries = Vec::with_capacity(fresh.len());
        for name in &fresh {
            let wanted = since.get(name.as_str()).copied();
            match self.realtime.history.recover(name, wanted).await {
                Ok(recovery) => recoveries.push((name.as_str(), wanted, recovery)),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), channel = %name, "reading realtime history failed");
                    for name in &fresh {
                        self.realtime.hub.leave(name, self.id);
                    }
                    return send_error(
                        socket,
                        "unavailable",
                        "the channel's history could not be read; retry shortly",
                    )
                    .await;
                }
            }
        }
        // Channels the socket was on already are live: nothing to recover for them.
        let recovered = !since.is_empty()
            && recoveries
                .iter()
                .all(|(_, wanted, recovery)| wanted.is_none() || recovery.recovered);
        let mut offsets: std::collections::BTreeMap<&str, u64> = channels
            .iter()
            .filter_map(|c| Some((c.as_str(), *self.channels.get(c.as_str())?)))
            .collect();
        let mut missed = Vec::new();
        for (name, wanted, recovery) in recoveries {
            let newest = recovery
                .events
                .last()
                .map_or(0, |e| e.offset)
                .max(recovery.position);
            self.channels.insert(Arc::from(name), newest);
            offsets.insert(name, newest);
            if wanted.is_some() {
                missed.extend(recovery.events);
            }
        }
        let reply = ServerMessage::Subscribed {
            channels: &channels,
            recovered,
            offsets,
        };
        socket
            .feed(text(reply.text()))
            .await
            .map_err(|_| Closing(None))?;
        for event in missed {
            socket
                .feed(Message::Text(event.text))
                .await
                .map_err(|_| Closing(None))?;
        }
        socket.flush().await.map_err(|_| Closing(None))
    }

    /// After the subscriber reconnected: delivers what each channel missed, or says it
    /// cannot (`subscribed` with `recovered: false`).
    async fn resync(&mut self, socket: &mut WebSocket) -> Result<(), Closing> {
        let names: Vec<Arc<str>> = self.channels.keys().cloned().collect();
        for name in names {
            let delivered = self.channels[&name];
            let recovery = match self.realtime.history.recover(&name, Some(delivered)).await {
                Ok(recovery) => recovery,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), channel = %name, "resync failed");
                    continue;
                }
            };
            let mut newest = delivered.max(recovery.position);
            if !recovery.recovered {
                let channels = [name.to_string()];
                let reply = ServerMessage::Subscribed {
                    channels: &channels,
                    recovered: false,
                    offsets: [(&*name, newest)].into(),
                };
                socket
                    .feed(text(reply.text()))
                    .await
                    .map_err(|_| Closing(None))?;
            }
            for event in recovery.events.into_iter().filter(|e| e.offset > delivered) {
                newest = newest.max(event.offset);
                socket
                    .feed(Message::Text(event.text))
                    .await
                    .map_err(|_| Closing(None))?;
            }
            if let Some(entry) = self.channels.get_mut(&name) {
                *entry = newest;
            }
        }
        Ok(())
    }

    fn leave_all(&mut self) {
        for name in self.channels.keys() {
            self.realtime.hub.leave(name, self.id);
        }
        self.channels.clear();
    }
}

/// The close for a frame that could not be read: 1009 for one over the size limit, none
/// (the connection is gone or broken) otherwise.
fn read_failure(error: &axum::Error) -> Closing {
    let too_big = std::error::Error::source(error)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|inner| matches!(inner, tungstenite::Error::Capacity(_)));
    if too_big {
        Closing(Some((
            close::TOO_BIG,
            "the frame is over realtime.max_frame_bytes",
        )))
    } else {
        Closing(None)
    }
}

fn text(text: String) -> Message {
    Message::Text(Utf8Bytes::from(text))
}

async fn send(socket: &mut WebSocket, message: String) -> Result<(), Closing> {
    socket.send(text(message)).await.map_err(|_| Closing(None))
}

async fn send_error(socket: &mut WebSocket, code: &str, message: &str) -> Result<(), Closing> {
    send(socket, ServerMessage::Error { code, message }.text()).await
}

/// When a token that expires at `exp` (unix seconds) runs out, on the runtime's clock.
fn expiry(exp: i64) -> Instant {
    let left = exp.saturating_sub(chrono::Utc::now().timestamp());
    Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0).min(10 * 365 * 86400))
}

fn rand_id() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// A token bucket: `rate` messages per second on average, `burst` at once.
struct Allowance {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl Allowance {
    fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            updated: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Allowance;

    #[test]
    fn the_allowance_lets_a_burst_through_then_refuses() {
        let mut allowance = Allowance::new(1, 3);
        assert!(allowance.take() && allowance.take() && allowance.take());
        assert!(!allowance.take());
    }
}
