//! WebSocket frames as the server writes them (RFC 6455, section 5.2): unmasked and never
//! fragmented, so an event's frame is made once and written to every socket as it is.

use bytes::{BufMut, Bytes, BytesMut};

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
/// A control frame's payload is at most this long.
const CONTROL_PAYLOAD: usize = 125;

/// A text frame carrying `payload` (UTF-8 JSON).
pub fn text(payload: &[u8]) -> Bytes {
    frame(TEXT, payload)
}

/// An empty ping.
pub fn ping() -> Bytes {
    Bytes::from_static(&[FIN | PING, 0])
}

/// A close frame with `code` and as much of `reason` as a control frame holds.
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(CLOSE, &payload)
}

fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let length = payload.len();
    let mut out = BytesMut::with_capacity(length + 10);
    out.put_u8(FIN | opcode);
    if length < 126 {
        out.put_u8(length as u8);
    } else if let Ok(short) = u16::try_from(length) {
        out.put_u8(126);
        out.put_u16(short);
    } else {
        out.put_u8(127);
        out.put_u64(length as u64);
    }
    out.put_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::{Message, Utf8Bytes};

    /// What a client (tungstenite in the client role) reads from `bytes`.
    fn read_all(bytes: Vec<u8>) -> Vec<Message> {
        let mut client = WebSocket::from_raw_socket(Cursor::new(bytes), Role::Client, None);
        let mut messages = Vec::new();
        while let Ok(message) = client.read() {
            messages.push(message);
        }
        messages
    }

    #[test]
    fn a_client_reads_text_frames_of_every_length_class() {
        let texts: Vec<String> = [5, 125, 126, 65_535, 65_536, 200_000]
            .iter()
            .map(|&n| "é".repeat(n / 2) + &"x".repeat(n % 2))
            .collect();
        let mut wire = Vec::new();
        for text in &texts {
            wire.extend_from_slice(&super::text(text.as_bytes()));
        }
        let read = read_all(wire);
        let expected: Vec<Message> = texts
            .iter()
            .map(|t| Message::Text(Utf8Bytes::from(t.as_str())))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_client_reads_pings_and_a_close_with_its_code_and_a_reason_cut_to_fit() {
        let reason = "ü".repeat(100);
        let mut wire = super::ping().to_vec();
        wire.extend_from_slice(&super::close(4008, &reason));
        let read = read_all(wire);
        assert_eq!(read[0], Message::Ping(Default::default()));
        let Message::Close(Some(close)) = &read[1] else {
            panic!("expected a close frame, got {:?}", read[1]);
        };
        assert_eq!(close.code, CloseCode::from(4008));
        assert!(close.reason.len() <= 123 && reason.starts_with(close.reason.as_str()));
    }
}
