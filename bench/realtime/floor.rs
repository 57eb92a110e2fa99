//! The floor of the realtime benchmark (bench/realtime.sh): about the least a WebSocket
//! server can do to broadcast on this machine, measured by the same load generator in the
//! same run. It upgrades the load generator's sockets with a bare handshake, answers its
//! greeting and subscribe, and for each POST writes the body as one text frame to every
//! socket, one `send` each, from one thread per core. No Redis, no history, no JSON, no
//! per-socket state or queue: what is left is mostly the kernel's cost of the sends (on
//! loopback, also the receiving side's), which bounds the latency any server reaches here.
//!
//! realtime_floor <port>

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The sockets one sending thread writes to, and the frames it is handed.
struct Shard {
    sockets: Mutex<Vec<std::net::TcpStream>>,
    frames: std::sync::mpsc::Sender<Arc<bytes::Bytes>>,
}

/// Reads up to the end of a request's head; returns the head and what came after it.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..at]).into_owned();
            let rest = buffer[at + 4..].to_vec();
            buffer.clear();
            return Some((head, rest));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Upgrades a socket, answers the greeting and the subscribe, and hands it to a shard.
async fn upgrade(mut stream: TcpStream, shards: &[Shard], next: &AtomicUsize) -> Option<()> {
    stream
        .write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        )
        .await
        .ok()?;
    stream
        .write_all(&switchyard::realtime::frame::text(
            br#"{"type":"connected"}"#,
        ))
        .await
        .ok()?;
    // The subscribe: one small frame.
    let mut chunk = [0u8; 1024];
    if stream.read(&mut chunk).await.ok()? == 0 {
        return None;
    }
    stream
        .write_all(&switchyard::realtime::frame::text(
            br#"{"type":"subscribed"}"#,
        ))
        .await
        .ok()?;
    let stream = stream.into_std().ok()?;
    stream.set_nonblocking(false).ok()?;
    let shard = &shards[next.fetch_add(1, Ordering::Relaxed) % shards.len()];
    shard.sockets.lock().unwrap().push(stream);
    Some(())
}

/// Serves publishes on a keep-alive connection: each body goes to every socket.
async fn publishes(
    mut stream: TcpStream,
    head: String,
    mut body: Vec<u8>,
    shards: &[Shard],
) -> Option<()> {
    let mut head = head;
    let mut buffer = Vec::new();
    loop {
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let rest = body.split_off(length);
        if length > 0 {
            let frame = Arc::new(switchyard::realtime::frame::text(&body));
            for shard in shards {
                let _ = shard.frames.send(frame.clone());
            }
        }
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
            )
            .await
            .ok()?;
        buffer.extend_from_slice(&rest);
        let (next_head, next_body) = read_head(&mut stream, &mut buffer).await?;
        head = next_head;
        body = next_body;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("usage: realtime_floor <port>"))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut shards = Vec::with_capacity(threads);
    let mut receivers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (sender, receiver) = std::sync::mpsc::channel::<Arc<bytes::Bytes>>();
        shards.push(Shard {
            sockets: Mutex::new(Vec::new()),
            frames: sender,
        });
        receivers.push(receiver);
    }
    let shards: Arc<[Shard]> = shards.into();
    for (index, frames) in receivers.into_iter().enumerate() {
        let shards = shards.clone();
        std::thread::spawn(move || {
            while let Ok(frame) = frames.recv() {
                for mut socket in shards[index].sockets.lock().unwrap().iter() {
                    let _ = socket.write_all(&frame);
                }
            }
        });
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (mut stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (shards, next) = (shards.clone(), next.clone());
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let (head, rest) = read_head(&mut stream, &mut buffer).await?;
            if head.to_ascii_lowercase().contains("upgrade: websocket") {
                upgrade(stream, &shards, &next).await
            } else {
                publishes(stream, head, rest, &shards).await
            }
        });
    }
}
