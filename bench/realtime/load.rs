//! The load generator of the realtime benchmark (bench/realtime.sh), the same for both
//! servers: opens SOCKETS WebSockets subscribed to one channel, measures the server's RSS
//! before and after (idle), then broadcasts at a steady RATE for DURATION seconds, then as fast as
//! the sockets receive (a window of 16 events under way) as long, and reports
//! delivered messages per second and the latency from publish to receipt. Prints one
//! JSON object.
//!
//! realtime_load switchyard <host:port> <server-pid> <token>
//! realtime_load socketio   <host:port> <server-pid>
//!
//! Environment: SOCKETS (10000), RATE (20), DURATION (10), IDLE_SECONDS (5), FLAT_OUT (1;
//! 0 skips that phase).
//!
//! Switchyard sockets speak its protocol (connect with ?token=, subscribe to `bench`);
//! socket.io sockets speak Engine.IO 4 over WebSocket (`40` to join the namespace,
//! answering `2` with `3`), and the server puts each in the room `bench`. Every event
//! carries its publish time (`sent_us`); latency is receipt minus that, on one clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Switchyard,
    SocketIo,
}

/// Latency buckets of this many microseconds.
const BUCKET_US: u64 = 50;
/// Buckets kept: up to 30 s; anything later lands in the last.
const BUCKETS: usize = 600_000;

/// What every socket task shares.
struct Shared {
    /// Counts of latencies while `recording`, per BUCKET_US.
    latencies: Vec<AtomicU64>,
    received: AtomicU64,
    recording: AtomicBool,
}

impl Shared {
    fn record(&self, latency_us: u64) {
        let bucket = ((latency_us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.latencies[bucket].fetch_add(1, Ordering::Relaxed);
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for bucket in &self.latencies {
            bucket.store(0, Ordering::Relaxed);
        }
        self.received.store(0, Ordering::Relaxed);
    }

    /// The `q` quantile of the recorded latencies, in milliseconds.
    fn quantile(&self, q: f64) -> f64 {
        let total: u64 = self
            .latencies
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum();
        let wanted = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, bucket) in self.latencies.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= wanted {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        0.0
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The number after `"sent_us":` in a message, without parsing the whole JSON.
fn sent_us(text: &str) -> Option<u64> {
    let at = text.find("\"sent_us\":")? + "\"sent_us\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn open(
    target: Target,
    address: &str,
    token: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let url = match target {
        Target::Switchyard => format!("ws://{address}/api/v1/realtime?token={token}"),
        Target::SocketIo => format!("ws://{address}/socket.io/?EIO=4&transport=websocket"),
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    let expect = |ws_next: Option<Result<Message, _>>, prefix: &str| -> anyhow::Result<()> {
        match ws_next {
            Some(Ok(Message::Text(text))) if text.starts_with(prefix) => Ok(()),
            other => anyhow::bail!("expected {prefix}, got {other:?}"),
        }
    };
    match target {
        Target::Switchyard => {
            expect(ws.next().await, r#"{"type":"connected""#)?;
            ws.send(Message::text(
                r#"{"type":"subscribe","channels":["bench"]}"#,
            ))
            .await?;
            expect(ws.next().await, r#"{"type":"subscribed""#)?;
        }
        Target::SocketIo => {
            expect(ws.next().await, "0")?;
            ws.send(Message::text("40")).await?;
            expect(ws.next().await, "40")?;
        }
    }
    Ok(ws)
}

/// Reads one socket until the run ends, answering socket.io's pings.
async fn listen(
    target: Target,
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    shared: Arc<Shared>,
) {
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(text) = frame else { continue };
        if target == Target::SocketIo && text.as_str() == "2" {
            let _ = ws.send(Message::text("3")).await;
            continue;
        }
        if let Some(sent) = sent_us(&text)
            && shared.recording.load(Ordering::Relaxed)
        {
            shared.record(now_us().saturating_sub(sent));
        }
    }
}

/// Publishes one event; the body each server's publish endpoint takes.
async fn publish(client: &reqwest::Client, url: &str, auth: &str, pad: &str) -> bool {
    let body = format!(
        r#"{{"channel":"bench","event":"tick","data":{{"sent_us":{},"pad":"{pad}"}}}}"#,
        now_us()
    );
    client
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Events on their way at once in the flat-out phase.
const WINDOW: u64 = 16;

/// Publishes for `seconds`, at `rate` per second or (rate 0) as fast as the sockets
/// receive; reports what was delivered meanwhile.
async fn phase(
    shared: &Arc<Shared>,
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    rate: u64,
    seconds: u64,
    sockets: u64,
) -> serde_json::Value {
    let pad = "x".repeat(100);
    shared.reset();
    shared.recording.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let published = Arc::new(AtomicU64::new(0));
    if rate > 0 {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while Instant::now() < until {
            tick.tick().await;
            if publish(client, url, auth, &pad).await {
                published.fetch_add(1, Ordering::Relaxed);
            }
        }
    } else {
        // As fast as the server delivers: at most WINDOW events on their way to every
        // socket at once, so no socket's backlog grows past what a real client holds.
        while Instant::now() < until {
            let done = shared.received.load(Ordering::Relaxed);
            let sent = published.load(Ordering::Relaxed);
            if done + WINDOW * sockets >= sent * sockets {
                if publish(client, url, auth, &pad).await {
                    published.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
    }
    // Deliveries still under way count, up to a few seconds.
    let published = published.load(Ordering::Relaxed);
    let expected = published * sockets;
    let grace = Instant::now() + Duration::from_secs(5);
    while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    shared.recording.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received = shared.received.load(Ordering::Relaxed);
    serde_json::json!({
        "rate": rate,
        "published": published,
        "expected": expected,
        "delivered": received,
        "delivered_per_s": received as f64 / elapsed,
        "p50_ms": shared.quantile(0.50),
        "p99_ms": shared.quantile(0.99),
        "max_ms": shared.quantile(1.0),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = match args.first().map(String::as_str) {
        Some("switchyard") => Target::Switchyard,
        Some("socketio") => Target::SocketIo,
        _ => anyhow::bail!("usage: realtime_load switchyard|socketio <host:port> <pid> [token]"),
    };
    let address = args.get(1).cloned().unwrap_or_default();
    let pid = args.get(2).cloned().unwrap_or_default();
    let token = args.get(3).cloned().unwrap_or_default();
    let sockets = env("SOCKETS", 10_000);
    let rate = env("RATE", 20);
    let seconds = env("DURATION", 10);
    let idle_seconds = env("IDLE_SECONDS", 5);
    let (url, auth) = match target {
        Target::Switchyard => (
            format!("http://{address}/api/v1/realtime/publish"),
            format!(
                "Bearer {}",
                std::env::var("ADMIN_TOKEN").unwrap_or_default()
            ),
        ),
        Target::SocketIo => (format!("http://{address}/publish"), String::new()),
    };

    let shared = Arc::new(Shared {
        latencies: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        received: AtomicU64::new(0),
        recording: AtomicBool::new(false),
    });
    let rss_before = rss_kib(&pid);
    let connecting = Instant::now();
    let opened = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = Vec::with_capacity(sockets as usize);
    for _ in 0..sockets {
        let (address, token, shared, opened, gate) = (
            address.clone(),
            token.clone(),
            shared.clone(),
            opened.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let ws = match open(target, &address, &token).await {
                Ok(ws) => ws,
                Err(error) => {
                    eprintln!("a socket failed to open: {error}");
                    return;
                }
            };
            drop(permit);
            opened.fetch_add(1, Ordering::Relaxed);
            listen(target, ws, shared).await;
        }));
    }
    while opened.load(Ordering::Relaxed) < sockets
        && connecting.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_seconds = connecting.elapsed().as_secs_f64();
    let opened = opened.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
    let rss_idle = rss_kib(&pid);

    // reqwest is built without a TLS provider of its own; the app installs ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let steady = phase(&shared, &client, &url, &auth, rate, seconds, opened).await;
    let flat_out = if env("FLAT_OUT", 1) == 1 {
        phase(&shared, &client, &url, &auth, 0, seconds, opened).await
    } else {
        serde_json::Value::Null
    };
    let rss_end = rss_kib(&pid);
    println!(
        "{}",
        serde_json::json!({
            "sockets": opened,
            "connect_seconds": connect_seconds,
            "rss_before_kib": rss_before,
            "rss_idle_kib": rss_idle,
            "rss_end_kib": rss_end,
            "idle_bytes_per_socket": (rss_idle.saturating_sub(rss_before) * 1024) as f64 / opened.max(1) as f64,
            "steady": steady,
            "flat_out": flat_out,
        })
    );
    for task in tasks {
        task.abort();
    }
    Ok(())
}
