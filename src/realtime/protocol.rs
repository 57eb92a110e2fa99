//! The wire protocol: JSON text frames with a `type`, and the close codes.
//!
//! Client to server: `auth {token}`, `subscribe {channels, since?}`,
//! `unsubscribe {channels}`, `ping`. Server to client: `connected {connection_id}`,
//! `subscribed {channels, recovered, offsets}`, `unsubscribed {channels}`,
//! `event {channel, event, data, offset, ts}` (made by the publish script, see
//! [`super::history`]), `pong`, `error {code, message}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Close codes, each with the reason sent beside it.
pub mod close {
    /// The server is shutting down; reconnect (to another replica) and recover.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that breaks the WebSocket protocol (unmasked, bad UTF-8, bad opcode).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A binary frame: the protocol is JSON text.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A frame or message over `realtime.max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed.
    pub const INTERNAL: u16 = 1011;
    /// Nothing heard from the client within `realtime.heartbeat_timeout_seconds`.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// No token, a token that is not valid, or none in time.
    pub const UNAUTHORIZED: u16 = 4001;
    /// The token expired (at connect, or while connected).
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// The socket's outbound queue filled: the client reads too slowly.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The client sent messages faster than `realtime.messages_per_second` allows.
    pub const RATE_LIMITED: u16 = 4029;
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Auth {
        token: String,
    },
    Subscribe {
        channels: Vec<String>,
        since: BTreeMap<String, u64>,
    },
    Unsubscribe {
        channels: Vec<String>,
    },
    Ping,
}

/// Why a client message was not understood: `(code, message)` for the `error` reply.
pub type Refusal = (&'static str, String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthBody {
    #[serde(rename = "type")]
    _kind: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    #[serde(rename = "type")]
    _kind: String,
    channels: Vec<String>,
    #[serde(default)]
    since: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeBody {
    #[serde(rename = "type")]
    _kind: String,
    channels: Vec<String>,
}

impl ClientMessage {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|_| {
            (
                "bad_message",
                "messages are JSON objects with a \"type\"".to_owned(),
            )
        })?;
        let kind = envelope
            .kind
            .ok_or_else(|| ("bad_message", "the message has no \"type\"".to_owned()))?;
        let bad = |e: serde_json::Error| ("bad_message", format!("a {kind} message: {e}"));
        match kind.as_str() {
            "auth" => {
                let body: AuthBody = serde_json::from_str(text).map_err(bad)?;
                Ok(Self::Auth { token: body.token })
            }
            "subscribe" => {
                let body: SubscribeBody = serde_json::from_str(text).map_err(bad)?;
                Ok(Self::Subscribe {
                    channels: body.channels,
                    since: body.since,
                })
            }
            "unsubscribe" => {
                let body: UnsubscribeBody = serde_json::from_str(text).map_err(bad)?;
                Ok(Self::Unsubscribe {
                    channels: body.channels,
                })
            }
            "ping" => Ok(Self::Ping),
            other => Err((
                "unknown_type",
                format!(
                    "{other:?} is not a message type: use auth, subscribe, unsubscribe or ping"
                ),
            )),
        }
    }
}

/// A message from the server (events excepted, which the publish script writes).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Connected {
        connection_id: &'a str,
    },
    Subscribed {
        channels: &'a [String],
        recovered: bool,
        offsets: BTreeMap<&'a str, u64>,
    },
    Unsubscribed {
        channels: &'a [String],
    },
    Pong,
    Error {
        code: &'a str,
        message: &'a str,
    },
}

impl ServerMessage<'_> {
    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("server messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_type_parses() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientMessage::Auth { token: "t".into() })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","channels":["a"],"since":{"a":5}}"#),
            Ok(ClientMessage::Subscribe {
                channels: vec!["a".into()],
                since: [("a".to_owned(), 5)].into()
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"unsubscribe","channels":["a"]}"#),
            Ok(ClientMessage::Unsubscribe {
                channels: vec!["a".into()]
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
    }

    #[test]
    fn garbage_and_unknown_types_are_told_apart() {
        for garbage in [
            "",
            "nope",
            "[1,2]",
            r#"{"no":"type"}"#,
            r#"{"type":"subscribe"}"#,
        ] {
            assert_eq!(
                ClientMessage::parse(garbage).unwrap_err().0,
                "bad_message",
                "{garbage}"
            );
        }
        assert_eq!(
            ClientMessage::parse(r#"{"type":"shout"}"#).unwrap_err().0,
            "unknown_type"
        );
    }

    #[test]
    fn server_messages_carry_their_type() {
        assert_eq!(ServerMessage::Pong.text(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerMessage::Error {
                code: "x",
                message: "y"
            }
            .text(),
            r#"{"type":"error","code":"x","message":"y"}"#
        );
    }
}
