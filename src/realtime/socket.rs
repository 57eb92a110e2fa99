//! One WebSocket connection, from authentication to close.
//!
//! The socket authenticates first (a token from the URL, or an `auth` message within
//! `realtime.auth_timeout_seconds`), then loops over: messages from the client, the
//! hub's signals (stop, resync, a queue to drain), the heartbeat and its token's expiry.
//! Every way out is a close frame with a code from [`super::protocol::close`].
//!
//! Events do not pass through this task: the hub writes them to the socket's
//! [`Outlet`]. The task reads the client's frames with tungstenite over the same socket,
//! answers through the outlet, and drains the outlet's queue when the kernel's buffer
//! was full.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error as WsError, Message};

use super::hub::Slot;
use super::outlet::{Io, Outlet, Release, Stop};
use super::protocol::{ClientMessage, ServerMessage, close};
use super::token::{Claims, TokenError};
use super::{Realtime, channel, frame};

/// Why the loop ended: the close frame to send, if any.
struct Closing(Option<(u16, &'static str)>);

/// The client's side of the protocol, read with tungstenite (it unmasks, reassembles,
/// checks sizes and UTF-8, answers pings).
type Reader = WebSocket<Io>;

/// The buffer each socket reads its client's frames into. Every idle socket holds one, and
/// clients send little (auth, subscribe, ping): a frame longer than this grows it to the
/// frame's length. At 4 KiB it was a quarter of an idle socket's memory.
const READ_BUFFER_BYTES: usize = 512;

/// Runs one upgraded connection until it closes. `read_ahead` is what the client sent
/// after its upgrade request, already read.
pub async fn run(
    stream: TcpStream,
    read_ahead: Vec<u8>,
    realtime: Arc<Realtime>,
    token: Option<String>,
    slot: Slot,
) {
    let settings = &realtime.settings;
    let outlet = Arc::new(Outlet::new(stream, settings.outbound_queue));
    slot.register(&outlet);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_frame_size(Some(settings.max_frame_bytes))
        .max_message_size(Some(settings.max_frame_bytes));
    let mut reader =
        WebSocket::from_partially_read(Io(outlet.clone()), read_ahead, Role::Server, Some(config));
    let claims = match authenticate(&mut reader, &outlet, &realtime, token).await {
        Ok(claims) => claims,
        Err(Closing(frame)) => {
            finish(&mut reader, &outlet, frame).await;
            return;
        }
    };
    let mut connection = Connection {
        realtime: realtime.clone(),
        outlet: outlet.clone(),
        id: slot.id(),
        connection_id: format!("{:016x}", rand_id()),
        claims,
        allowance: Allowance::new(settings.messages_per_second, settings.message_burst),
        heard: Instant::now(),
    };
    metrics::gauge!("switchyard_realtime_connections").increment(1.0);
    let ending = connection.serve(&mut reader).await;
    connection.leave_all();
    metrics::gauge!("switchyard_realtime_connections").decrement(1.0);
    finish(&mut reader, &outlet, ending.0).await;
    drop(slot);
}

/// The next message from the client; `None` once the connection closed.
async fn next_message(reader: &mut Reader, stream: &TcpStream) -> Result<Option<Message>, WsError> {
    loop {
        match reader.read() {
            Ok(message) => return Ok(Some(message)),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                stream.readable().await?;
            }
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Ok(None),
            Err(error) => return Err(error),
        }
    }
}

/// Sends the close frame (unless the connection broke), drains what is queued, and lets
/// the client answer; each for at most a second.
async fn finish(reader: &mut Reader, outlet: &Outlet, frame: Option<(u16, &'static str)>) {
    outlet.close(
        frame
            .map(|(code, reason)| frame::close(code, reason))
            .as_ref(),
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), outlet.drain()).await;
    if frame.is_some() {
        let answered = async {
            while let Ok(Some(message)) = next_message(reader, outlet.stream()).await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answered).await;
    }
}

/// The token's claims, from the URL or the first message.
async fn authenticate(
    reader: &mut Reader,
    outlet: &Outlet,
    realtime: &Realtime,
    token: Option<String>,
) -> Result<Claims, Closing> {
    let token = match token {
        Some(token) => token,
        None => {
            let deadline =
                Instant::now() + Duration::from_secs(realtime.settings.auth_timeout_seconds);
            loop {
                let next = tokio::select! {
                    _ = outlet.signalled() => {
                        if outlet.signals().stop.is_some() {
                            return Err(Closing(Some((close::GOING_AWAY, "the server is shutting down"))));
                        }
                        continue;
                    }
                    next = tokio::time::timeout_at(deadline, next_message(reader, outlet.stream())) => next,
                };
                let message = match next {
                    Err(_) => {
                        return Err(Closing(Some((
                            close::UNAUTHORIZED,
                            "no token: send {\"type\":\"auth\",\"token\":...} first",
                        ))));
                    }
                    Ok(Ok(Some(message))) => message,
                    Ok(Ok(None)) => return Err(Closing(None)),
                    Ok(Err(error)) => return Err(read_failure(&error)),
                };
                match message {
                    Message::Text(text) => match ClientMessage::parse(&text) {
                        Ok(ClientMessage::Auth { token }) => break token,
                        _ => {
                            return Err(Closing(Some((
                                close::UNAUTHORIZED,
                                "the first message must be {\"type\":\"auth\",\"token\":...}",
                            ))));
                        }
                    },
                    Message::Binary(_) => {
                        return Err(Closing(Some((
                            close::UNSUPPORTED_DATA,
                            "binary frames are not part of the protocol",
                        ))));
                    }
                    Message::Close(_) => return Err(Closing(None)),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
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
    outlet: Arc<Outlet>,
    id: u64,
    connection_id: String,
    claims: Claims,
    allowance: Allowance,
    /// When the client was last heard from.
    heard: Instant,
}

impl Connection {
    async fn serve(&mut self, reader: &mut Reader) -> Closing {
        let connected = ServerMessage::Connected {
            connection_id: &self.connection_id,
        };
        self.send(connected.text());
        let outlet = self.outlet.clone();
        let settings = &self.realtime.settings;
        let heartbeat = Duration::from_secs(settings.heartbeat_seconds);
        let silence = Duration::from_secs(settings.heartbeat_timeout_seconds);
        let mut beat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        // Made once and polled again on every turn: making it afresh would register with
        // the timer each time.
        let expires = tokio::time::sleep_until(expiry(self.claims.exp));
        tokio::pin!(expires);
        loop {
            let queued = outlet.queued();
            tokio::select! {
                biased;
                _ = outlet.signalled() => {
                    let signals = outlet.signals();
                    if let Some(why) = signals.stop {
                        return self.stopped(why);
                    }
                    if signals.resync {
                        self.resync().await;
                    }
                }
                _ = &mut expires => {
                    return Closing(Some((close::TOKEN_EXPIRED, "the token expired")));
                }
                _ = beat.tick() => {
                    if self.heard.elapsed() >= silence {
                        return Closing(Some((close::HEARTBEAT_TIMEOUT, "no pong or message within the heartbeat timeout")));
                    }
                    outlet.send(&frame::ping());
                }
                writable = outlet.stream().writable(), if queued => {
                    if writable.is_err() || outlet.flush().is_err() {
                        return Closing(None);
                    }
                }
                message = next_message(reader, outlet.stream()) => {
                    let message = match message {
                        Ok(Some(message)) => message,
                        Ok(None) => return Closing(None),
                        Err(error) => return read_failure(&error),
                    };
                    self.heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            if !self.allowance.take() {
                                metrics::counter!("switchyard_realtime_refused_total", "reason" => "rate").increment(1);
                                return Closing(Some((close::RATE_LIMITED, "too many messages: slow down")));
                            }
                            self.handle(&text).await;
                        }
                        Message::Binary(_) => {
                            return Closing(Some((close::UNSUPPORTED_DATA, "binary frames are not part of the protocol")));
                        }
                        Message::Close(_) => return Closing(None),
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
            }
        }
    }

    /// The close for a socket the hub stopped.
    fn stopped(&self, why: Stop) -> Closing {
        match why {
            Stop::Slow => {
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
            Stop::Broken | Stop::Closing => Closing(None),
            Stop::Shutdown => Closing(Some((
                close::GOING_AWAY,
                "the server is shutting down; reconnect and recover",
            ))),
        }
    }

    fn send(&self, text: String) {
        self.outlet.send(&frame::text(text.as_bytes()));
    }

    fn send_error(&self, code: &str, message: &str) {
        self.send(ServerMessage::Error { code, message }.text());
    }

    /// Acts on one message from the client.
    async fn handle(&mut self, text: &str) {
        match ClientMessage::parse(text) {
            Err((code, message)) => self.send_error(code, &message),
            Ok(ClientMessage::Ping) => self.send(ServerMessage::Pong.text()),
            Ok(ClientMessage::Auth { .. }) => self.send_error(
                "already_authenticated",
                "this socket is authenticated already",
            ),
            Ok(ClientMessage::Subscribe { channels, since }) => {
                self.subscribe(channels, since).await;
            }
            Ok(ClientMessage::Unsubscribe { channels }) => {
                for name in &channels {
                    if self.outlet.forget(name) {
                        self.realtime.hub.leave(name, self.id);
                    }
                }
                self.send(
                    ServerMessage::Unsubscribed {
                        channels: &channels,
                    }
                    .text(),
                );
            }
        }
    }

    async fn subscribe(&mut self, channels: Vec<String>, since: BTreeMap<String, u64>) {
        if channels.is_empty() {
            return self.send_error("bad_message", "name at least one channel");
        }
        for name in &channels {
            if let Err(problem) = channel::check(name) {
                return self.send_error("invalid_channel", &problem);
            }
            if !self.claims.allows(name) {
                metrics::counter!("switchyard_realtime_refused_total", "reason" => "claims")
                    .increment(1);
                return self.send_error(
                    "forbidden_channel",
                    &format!("the token does not grant channel {name:?}"),
                );
            }
        }
        if let Some(stray) = since.keys().find(|c| !channels.contains(c)) {
            return self.send_error(
                "bad_message",
                &format!("since names {stray:?}, which the subscribe does not"),
            );
        }
        let mut fresh: Vec<Arc<str>> = channels
            .iter()
            .filter(|c| !self.outlet.on(c))
            .map(|c| self.realtime.hub.intern(c))
            .collect();
        fresh.sort();
        fresh.dedup();
        let limit = self.realtime.settings.max_subscriptions;
        if self.outlet.channel_count() + fresh.len() > limit {
            return self.send_error(
                "too_many_subscriptions",
                &format!(
                    "a socket may be on at most {limit} channels (realtime.max_subscriptions)"
                ),
            );
        }
        // Live events first (held back meanwhile), then history: the overlap is dropped
        // by offset.
        self.outlet.hold(&fresh);
        let give_up = |this: &Self, joined: &[Arc<str>]| {
            for name in &fresh {
                this.outlet.forget(name);
            }
            for name in joined {
                this.realtime.hub.leave(name, this.id);
            }
        };
        for (joined, name) in fresh.iter().enumerate() {
            if let Err(error) = self.realtime.hub.join(name, self.id, &self.outlet).await {
                give_up(self, &fresh[..joined]);
                tracing::warn!(error = %error, "a realtime subscribe failed");
                return self.send_error(
                    "unavailable",
                    "realtime is not connected to Redis; retry shortly",
                );
            }
        }
        let mut recoveries = Vec::with_capacity(fresh.len());
        for name in &fresh {
            let wanted = since.get(&**name).copied();
            match self.realtime.history.recover(name, wanted).await {
                Ok(recovery) => recoveries.push((name.clone(), wanted, recovery)),
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), channel = %name, "reading realtime history failed");
                    give_up(self, &fresh);
                    return self.send_error(
                        "unavailable",
                        "the channel's history could not be read; retry shortly",
                    );
                }
            }
        }
        // Channels the socket was on already are live: nothing to recover for them.
        let recovered = !since.is_empty()
            && recoveries
                .iter()
                .all(|(_, wanted, recovery)| wanted.is_none() || recovery.recovered);
        let on: std::collections::HashMap<Arc<str>, u64> =
            self.outlet.channels().into_iter().collect();
        let mut offsets: BTreeMap<&str, u64> = channels
            .iter()
            .filter_map(|c| Some((c.as_str(), *on.get(c.as_str())?)))
            .collect();
        let mut releases = Vec::with_capacity(recoveries.len());
        for (name, wanted, recovery) in recoveries {
            let newest = recovery
                .events
                .last()
                .map_or(0, |e| e.offset)
                .max(recovery.position);
            if let Some(listed) = channels.iter().find(|c| c.as_str() == &*name) {
                offsets.insert(listed, newest);
            }
            releases.push(Release {
                channel: name,
                history: if wanted.is_some() {
                    recovery.events
                } else {
                    Vec::new()
                },
                position: newest,
            });
        }
        let reply = ServerMessage::Subscribed {
            channels: &channels,
            recovered,
            offsets,
        };
        self.outlet
            .release(Some(&frame::text(reply.text().as_bytes())), releases);
    }

    /// After the subscriber reconnected: delivers what each channel missed, or says it
    /// cannot (`subscribed` with `recovered: false`).
    async fn resync(&mut self) {
        for (name, delivered) in self.outlet.channels() {
            self.outlet.hold(std::slice::from_ref(&name));
            let recovery = match self.realtime.history.recover(&name, Some(delivered)).await {
                Ok(recovery) => recovery,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), channel = %name, "resync failed");
                    self.outlet.release(
                        None,
                        vec![Release {
                            channel: name,
                            history: Vec::new(),
                            position: 0,
                        }],
                    );
                    continue;
                }
            };
            let newest = delivered.max(recovery.position);
            let preface = (!recovery.recovered).then(|| {
                let channels = [name.to_string()];
                let reply = ServerMessage::Subscribed {
                    channels: &channels,
                    recovered: false,
                    offsets: [(&*name, newest)].into(),
                };
                frame::text(reply.text().as_bytes())
            });
            self.outlet.release(
                preface.as_ref(),
                vec![Release {
                    channel: name,
                    history: recovery.events,
                    position: newest,
                }],
            );
        }
    }

    fn leave_all(&mut self) {
        for (name, _) in self.outlet.channels() {
            self.outlet.forget(&name);
            self.realtime.hub.leave(&name, self.id);
        }
    }
}

/// The close for a frame that could not be read: 1009 for one over the size limit, 1002
/// for a protocol violation, none (the connection is gone or broken) otherwise.
fn read_failure(error: &WsError) -> Closing {
    match error {
        WsError::Capacity(_) => Closing(Some((
            close::TOO_BIG,
            "the frame is over realtime.max_frame_bytes",
        ))),
        WsError::Protocol(_) | WsError::Utf8(_) => Closing(Some((
            close::PROTOCOL_ERROR,
            "the frame breaks the WebSocket protocol",
        ))),
        _ => Closing(None),
    }
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
