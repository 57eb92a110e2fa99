//! The load generator of the realtime benchmark (bench/realtime.sh), the same for both
//! servers: opens SOCKETS WebSockets subscribed to one channel, measures the server's RSS
//! before and after (idle), then broadcasts at each steady rate in RATES for DURATION
//! seconds, then as
//! fast as the sockets receive (a window of 16 events under way) as long, and reports
//! delivered messages per second, the latency from publish to receipt, and the CPU time
//! the server spent per delivery. Prints one JSON object.
//!
//! realtime_load switchyard <host:port> <server-pid> <token>
//! realtime_load socketio   <host:port> <server-pid>
//!
//! Environment: SOCKETS (10000), RATES ("5 10 20" events per second), DURATION (10),
//! IDLE_SECONDS (5), FLAT_OUT (1;
//! 0 skips that phase), LOAD_THREADS (2), TRACE (0; 1 prints each event's slowest
//! delivery to stderr), ADMIN_TOKEN (Switchyard's publish endpoint).
//!
//! Switchyard sockets speak its protocol (connect with ?token=, subscribe to `bench`);
//! socket.io sockets speak Engine.IO 4 over WebSocket (`40` to join the namespace,
//! answering `2` with `3`), and the server puts each in the room `bench`. Every event
//! carries its publish time (`sent_us`); latency is receipt minus that, on one clock.
//!
//! The receiving side is kept as cheap as it can be, because it shares the machine with
//! the server it measures: LOAD_THREADS threads, each with its own epoll set, read the
//! sockets without blocking and parse just enough of each WebSocket frame to find
//! `sent_us`. Sockets are opened beforehand by blocking threads, 100 at a time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Switchyard,
    SocketIo,
}

/// Latency buckets of this many microseconds.
const BUCKET_US: u64 = 50;
/// Buckets kept: up to 30 s; anything later lands in the last.
const BUCKETS: usize = 600_000;
/// Events of one phase traced with TRACE=1.
const TRACED: usize = 100_000;
/// Events on their way at once in the flat-out phase.
const WINDOW: u64 = 16;

/// What one receiving thread counts; only that thread writes it.
struct Stats {
    /// Counts of latencies, per BUCKET_US.
    latencies: Vec<AtomicU64>,
    received: AtomicU64,
    /// Per event (by `seq`): deliveries and the slowest, for TRACE=1.
    per_event: Vec<(AtomicU64, AtomicU64)>,
    /// Sockets the server closed.
    closed: AtomicU64,
}

impl Stats {
    fn new() -> Self {
        Self {
            latencies: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            per_event: (0..TRACED)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            closed: AtomicU64::new(0),
        }
    }

    fn record(&self, seq: Option<u64>, latency_us: u64) {
        if let Some((count, slowest)) = seq.and_then(|s| self.per_event.get(s as usize)) {
            count.fetch_add(1, Ordering::Relaxed);
            slowest.fetch_max(latency_us, Ordering::Relaxed);
        }
        let bucket = ((latency_us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.latencies[bucket].fetch_add(1, Ordering::Relaxed);
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for counter in self
            .latencies
            .iter()
            .chain(self.per_event.iter().flat_map(|(c, s)| [c, s]))
            .chain([&self.received])
        {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// Every receiving thread's stats, and whether latencies count.
struct Shared {
    threads: Vec<Stats>,
    recording: AtomicBool,
}

impl Shared {
    fn received(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| t.received.load(Ordering::Relaxed))
            .sum()
    }

    /// The `q` quantile of the recorded latencies, in milliseconds.
    fn quantile(&self, q: f64) -> f64 {
        let count = |i: usize| -> u64 {
            self.threads
                .iter()
                .map(|t| t.latencies[i].load(Ordering::Relaxed))
                .sum()
        };
        let total = self.received();
        let wanted = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for i in 0..BUCKETS {
            seen += count(i);
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

/// CPU seconds (user and system) process `pid` has used.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// The number after `"<field>":` in a message.
fn number(text: &[u8], field: &[u8]) -> Option<u64> {
    let at = text.windows(field.len()).position(|w| w == field)? + field.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut value: u64 = 0;
    let mut any = false;
    for digit in digits {
        value = value * 10 + u64::from(digit - b'0');
        any = true;
    }
    any.then_some(value)
}

/// One frame from the server: its opcode and payload, and the bytes it took.
fn parse_frame(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let (length, header) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        short => (usize::from(short), 2),
    };
    let end = header + length;
    (buf.len() >= end).then(|| (opcode, &buf[header..end], end))
}

/// A masked client frame (text 0x1, pong 0xA).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x1c, 0x77, 0x30];
    let mut out = vec![0x80 | opcode];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A socket being read, with the start of a frame that has not fully arrived.
struct Socket {
    stream: TcpStream,
    partial: Vec<u8>,
    open: bool,
}

/// Reads one socket's next text message while connecting (blocking).
fn read_text(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<String> {
    loop {
        if let Some((opcode, payload, used)) = parse_frame(buffer) {
            let text = String::from_utf8_lossy(payload).into_owned();
            buffer.drain(..used);
            if opcode == 0x1 {
                return Ok(text);
            }
            continue;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "the server closed the socket while it was opening");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Opens one socket: the upgrade, then the server's greeting and the subscription.
fn open(target: Target, address: &str, token: &str) -> anyhow::Result<Socket> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let path = match target {
        Target::Switchyard => format!("/api/v1/realtime?token={token}"),
        Target::SocketIo => "/socket.io/?EIO=4&transport=websocket".to_owned(),
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut buffer = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "the server closed the socket during the upgrade");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    anyhow::ensure!(
        buffer.starts_with(b"HTTP/1.1 101"),
        "the upgrade was refused: {}",
        String::from_utf8_lossy(&buffer[..head_end])
    );
    buffer.drain(..head_end);
    let (greeting, request, answer) = match target {
        Target::Switchyard => (
            r#"{"type":"connected""#,
            r#"{"type":"subscribe","channels":["bench"]}"#,
            r#"{"type":"subscribed""#,
        ),
        Target::SocketIo => ("0", "40", "40"),
    };
    let first = read_text(&mut stream, &mut buffer)?;
    anyhow::ensure!(
        first.starts_with(greeting),
        "expected {greeting}, got {first}"
    );
    stream.write_all(&client_frame(0x1, request.as_bytes()))?;
    let reply = read_text(&mut stream, &mut buffer)?;
    anyhow::ensure!(reply.starts_with(answer), "expected {answer}, got {reply}");
    stream.set_nonblocking(true)?;
    Ok(Socket {
        stream,
        partial: buffer,
        open: true,
    })
}

/// Reads the sockets handed over on `incoming` until the process ends.
fn receive(
    target: Target,
    incoming: std::sync::mpsc::Receiver<Socket>,
    shared: Arc<Shared>,
    index: usize,
) {
    let stats = &shared.threads[index];
    // SAFETY: plain system calls on descriptors this thread owns.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epoll >= 0, "epoll_create1 failed");
    let mut sockets: Vec<Socket> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        while let Ok(socket) = incoming.try_recv() {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: sockets.len() as u64,
            };
            // SAFETY: the descriptor is open and `event` outlives the call.
            let added = unsafe {
                libc::epoll_ctl(
                    epoll,
                    libc::EPOLL_CTL_ADD,
                    socket.stream.as_raw_fd(),
                    &mut event,
                )
            };
            assert_eq!(added, 0, "epoll_ctl failed");
            sockets.push(socket);
        }
        // SAFETY: `events` has room for the count given.
        let ready =
            unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, 50) };
        for event in events.iter().take(ready.max(0) as usize) {
            let socket = &mut sockets[event.u64 as usize];
            if socket.open {
                read_ready(target, socket, &mut buffer, stats, &shared.recording);
            }
        }
    }
}

/// Reads what arrived on one socket and records each event in it.
fn read_ready(
    target: Target,
    socket: &mut Socket,
    buffer: &mut [u8],
    stats: &Stats,
    recording: &AtomicBool,
) {
    let n = match (&socket.stream).read(buffer) {
        Ok(0) | Err(_) => {
            // The server closed it (or reset it); a would-block read is not reported ready.
            socket.open = false;
            stats.closed.fetch_add(1, Ordering::Relaxed);
            let _ = socket.stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        Ok(n) => n,
    };
    let received_at = now_us();
    let mut data: &[u8] = &buffer[..n];
    let joined;
    if !socket.partial.is_empty() {
        socket.partial.extend_from_slice(data);
        joined = std::mem::take(&mut socket.partial);
        data = &joined;
    }
    let recording = recording.load(Ordering::Relaxed);
    while let Some((opcode, payload, used)) = parse_frame(data) {
        match opcode {
            0x1 => {
                if target == Target::SocketIo && payload == b"2" {
                    let _ = (&socket.stream).write_all(&client_frame(0x1, b"3"));
                } else if recording && let Some(sent) = number(payload, b"\"sent_us\":") {
                    stats.record(
                        number(payload, b"\"seq\":"),
                        received_at.saturating_sub(sent),
                    );
                }
            }
            0x9 => {
                let _ = (&socket.stream).write_all(&client_frame(0xA, payload));
            }
            0x8 => {
                socket.open = false;
                stats.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
        data = &data[used..];
    }
    socket.partial.extend_from_slice(data);
}

/// Publishes one event; the body each server's publish endpoint takes.
fn publish(agent: &ureq::Agent, url: &str, auth: &str, seq: u64, pad: &str) -> bool {
    let body = format!(
        r#"{{"channel":"bench","event":"tick","data":{{"seq":{seq},"sent_us":{},"pad":"{pad}"}}}}"#,
        now_us()
    );
    agent
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .send(&body)
        .is_ok_and(|r| r.status().is_success())
}

/// What a phase publishes with.
struct Publisher {
    agent: ureq::Agent,
    url: String,
    auth: String,
    server_pid: String,
    sockets: u64,
}

/// Publishes for `seconds`, at `rate` per second or (rate 0) as fast as the sockets
/// receive; reports what was delivered meanwhile.
fn phase(shared: &Shared, publisher: &Publisher, rate: u64, seconds: u64) -> serde_json::Value {
    let pad = "x".repeat(100);
    let cpu_before = (cpu_seconds(&publisher.server_pid), cpu_seconds("self"));
    for stats in &shared.threads {
        stats.reset();
    }
    shared.recording.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut published = 0u64;
    let send = |published: &mut u64| {
        if publish(
            &publisher.agent,
            &publisher.url,
            &publisher.auth,
            *published,
            &pad,
        ) {
            *published += 1;
        }
    };
    if rate > 0 {
        let every = Duration::from_secs_f64(1.0 / rate as f64);
        let mut next = started;
        while Instant::now() < until {
            // Late ticks are caught up at once, so the rate holds on average.
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            next += every;
            send(&mut published);
        }
    } else {
        // At most WINDOW events on their way to every socket at once, so that no socket's
        // backlog grows past what a real client holds.
        while Instant::now() < until {
            if shared.received() + WINDOW * publisher.sockets >= published * publisher.sockets {
                send(&mut published);
            } else {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
    // Deliveries still under way count, up to a few seconds.
    let expected = published * publisher.sockets;
    let grace = Instant::now() + Duration::from_secs(5);
    while shared.received() < expected && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    shared.recording.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    let received = shared.received();
    let server_cpu = cpu_seconds(&publisher.server_pid) - cpu_before.0;
    let load_cpu = cpu_seconds("self") - cpu_before.1;
    if env("TRACE", 0) == 1 {
        for seq in 0..(published as usize).min(TRACED) {
            let (count, slowest) = shared.threads.iter().fold((0, 0), |(c, s), t| {
                let (count, slowest) = &t.per_event[seq];
                (
                    c + count.load(Ordering::Relaxed),
                    s.max(slowest.load(Ordering::Relaxed)),
                )
            });
            eprintln!(
                "event {seq}: {count} deliveries, slowest {:.1} ms",
                slowest as f64 / 1000.0
            );
        }
    }
    serde_json::json!({
        "rate": rate,
        "published": published,
        "expected": expected,
        "delivered": received,
        "delivered_per_s": received as f64 / elapsed,
        "p50_ms": shared.quantile(0.50),
        "p99_ms": shared.quantile(0.99),
        "max_ms": shared.quantile(1.0),
        "server_cpu_seconds": server_cpu,
        "load_cpu_seconds": load_cpu,
        "server_cpu_us_per_delivery": server_cpu * 1e6 / received.max(1) as f64,
    })
}

fn main() -> anyhow::Result<()> {
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
    let rates: Vec<u64> = std::env::var("RATES")
        .unwrap_or_else(|_| "5 10 20".to_owned())
        .split([' ', ','])
        .filter_map(|r| r.trim().parse().ok())
        .filter(|&r| r > 0)
        .collect();
    let seconds = env("DURATION", 10);
    let idle_seconds = env("IDLE_SECONDS", 5);
    let threads = env("LOAD_THREADS", 2).max(1) as usize;
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
        threads: (0..threads).map(|_| Stats::new()).collect(),
        recording: AtomicBool::new(false),
    });
    let mut handoff = Vec::with_capacity(threads);
    for index in 0..threads {
        let (sender, incoming) = std::sync::mpsc::channel();
        let shared = shared.clone();
        std::thread::spawn(move || receive(target, incoming, shared, index));
        handoff.push(sender);
    }

    let rss_before = rss_kib(&pid);
    let connecting = Instant::now();
    let next = AtomicU64::new(0);
    let opened = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..100 {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < sockets {
                    match open(target, &address, &token) {
                        Ok(socket) => {
                            let index = opened.fetch_add(1, Ordering::Relaxed) % threads;
                            let _ = handoff[index].send(socket);
                        }
                        Err(error) => eprintln!("a socket failed to open: {error}"),
                    }
                }
            });
        }
    });
    let connect_seconds = connecting.elapsed().as_secs_f64();
    let opened = opened.load(Ordering::Relaxed) as u64;
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let rss_idle = rss_kib(&pid);

    let publisher = Publisher {
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
        url,
        auth,
        server_pid: pid.clone(),
        sockets: opened,
    };
    let steady: Vec<serde_json::Value> = rates
        .iter()
        .map(|&rate| phase(&shared, &publisher, rate, seconds))
        .collect();
    let flat_out = if env("FLAT_OUT", 1) == 1 {
        phase(&shared, &publisher, 0, seconds)
    } else {
        serde_json::Value::Null
    };
    let rss_end = rss_kib(&pid);
    let closed: u64 = shared
        .threads
        .iter()
        .map(|t| t.closed.load(Ordering::Relaxed))
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "sockets": opened,
            "closed_by_server": closed,
            "connect_seconds": connect_seconds,
            "rss_before_kib": rss_before,
            "rss_idle_kib": rss_idle,
            "rss_end_kib": rss_end,
            "idle_bytes_per_socket": (rss_idle.saturating_sub(rss_before) * 1024) as f64 / opened.max(1) as f64,
            "steady": steady,
            "flat_out": flat_out,
        })
    );
    // The receiving threads hold the sockets open until here.
    std::process::exit(0);
}
