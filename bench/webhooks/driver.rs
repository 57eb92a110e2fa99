//! The webhook benchmark (bench/webhooks.sh): a local receiver that verifies every
//! Standard Webhooks signature with its own HMAC code (not Switchyard's), and the client
//! that drives a running `app serve` and `app worker` through the API.
//!
//! webhooks_driver <api-url> <admin-token>
//!
//! 1. Floor: a bare client signs and POSTs the same number of deliveries straight to the
//!    receiver, CLIENTS at a time: the most this machine delivers without Switchyard. Once
//!    blocking (ureq, a thread each) and once async (hyper, a task each).
//! 2. Fan-out: EVENTS events (batches of 1000) to ENDPOINTS endpoints each; deliveries/s
//!    from the first POST to the last verified receipt; lost, duplicated and unverified
//!    deliveries; relay latency (commit to job enqueued, from Postgres) p50/p99.
//! 3. Steady: RATE events/s for STEADY_SECONDS, one POST each; commit-to-receipt p50/p99
//!    (from the 202 to the receiver) and relay latency p50/p99.
//!
//! Prints one JSON object per phase. DATABASE_URL must name the app's database; PHASES
//! (default `floor,fanout,steady`) picks the phases to run.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ring::hmac;
use serde_json::{Value, json};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn number(name: &str, default: u64) -> u64 {
    env(name, &default.to_string()).parse().unwrap_or(default)
}

/// What the receiver has seen.
#[derive(Default)]
struct Seen {
    /// Receipt time of each (endpoint, webhook-id), the first time it arrived.
    first: HashMap<(usize, String), Instant>,
    duplicates: u64,
    unverified: u64,
}

struct Receiver {
    /// Each endpoint's HMAC key, by the number in its path (`/e/<n>`).
    keys: Mutex<Vec<hmac::Key>>,
    seen: Mutex<Seen>,
    verified: AtomicU64,
}

impl Receiver {
    fn reset(&self, secrets: &[String]) {
        let keys = secrets.iter().map(|s| hmac_key(s)).collect();
        *self.keys.lock().unwrap() = keys;
        *self.seen.lock().unwrap() = Seen::default();
        self.verified.store(0, Ordering::SeqCst);
    }

    /// Checks one request the Standard Webhooks way: HMAC-SHA256 over
    /// `<id>.<timestamp>.<body>`, base64, against any `v1,` signature in the header.
    fn check(
        &self,
        endpoint: usize,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> bool {
        let keys = self.keys.lock().unwrap();
        let Some(key) = keys.get(endpoint) else {
            return false;
        };
        let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
        signed.extend_from_slice(id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        let tag = hmac::sign(key, &signed);
        let expected = STANDARD.encode(tag.as_ref());
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
        fresh
            && signatures
                .split(' ')
                .filter_map(|s| s.strip_prefix("v1,"))
                .any(|s| s == expected)
    }

    async fn serve(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let at = Instant::now();
        let endpoint: usize = request
            .uri()
            .path()
            .strip_prefix("/e/")
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (id, timestamp, signature) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let ok = self.check(endpoint, &id, &timestamp, &signature, &body);
        {
            let mut seen = self.seen.lock().unwrap();
            if !ok {
                seen.unverified += 1;
            } else if seen.first.insert((endpoint, id.clone()), at).is_some() {
                seen.duplicates += 1;
            } else {
                self.verified.fetch_add(1, Ordering::SeqCst);
            }
        }
        let status = if ok { 204 } else { 401 };
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        Ok(response)
    }

    async fn wait_for(&self, n: u64, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        while self.verified.load(Ordering::SeqCst) < n {
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.seen.lock().unwrap().first.values().max().copied()
    }

    fn report(&self, expected: u64) -> Value {
        let seen = self.seen.lock().unwrap();
        json!({
            "lost": expected.saturating_sub(seen.first.len() as u64),
            "duplicated": seen.duplicates,
            "unverified": seen.unverified,
        })
    }
}

/// The HMAC key of a `whsec_` secret.
fn hmac_key(secret: &str) -> hmac::Key {
    let raw = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    hmac::Key::new(hmac::HMAC_SHA256, &raw)
}

/// Delivery `i` of the floor, signed as Switchyard signs: its endpoint, and the headers
/// and body to send.
struct FloorDelivery {
    endpoint: usize,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl FloorDelivery {
    fn new(keys: &[hmac::Key], i: u64) -> Self {
        let endpoint = (i % keys.len() as u64) as usize;
        let id = format!("floor_{}", i / keys.len() as u64);
        let body = format!(r#"{{"id":"{id}","type":"bench.floor","data":{{"n":{i}}}}}"#);
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let tag = hmac::sign(
            &keys[endpoint],
            format!("{id}.{timestamp}.{body}").as_bytes(),
        );
        let signature = format!("v1,{}", STANDARD.encode(tag.as_ref()));
        Self {
            endpoint,
            id,
            timestamp,
            signature,
            body,
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] * 10.0).round() / 10.0
}

/// Relay latency from the app's database: when the relay stamped an event's delivery jobs
/// enqueued (after Redis took them) minus the event's commit, for events whose type
/// starts with `prefix`.
async fn relay_latency(db: &sqlx::PgPool, prefix: &str) -> Value {
    let (p50, p99): (Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
         FROM (SELECT extract(epoch FROM enqueued_at - created_at) * 1000 AS ms
               FROM events WHERE type LIKE $1) AS l",
    )
    .bind(format!("{prefix}%"))
    .fetch_one(db)
    .await
    .unwrap();
    let round = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
    json!({"p50_ms": round(p50), "p99_ms": round(p99)})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let api = args[0].clone();
    let auth = format!("Bearer {}", args[1]);
    let events = number("EVENTS", 10_000);
    let endpoints = number("ENDPOINTS", 10) as usize;
    let clients = number("CLIENTS", 64) as usize;
    let rate = number("RATE", 500);
    let steady_seconds = number("STEADY_SECONDS", 20);
    let db = sqlx::PgPool::connect(&env("DATABASE_URL", "")).await?;

    let receiver = Arc::new(Receiver {
        keys: Mutex::default(),
        seen: Mutex::default(),
        verified: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let serving = receiver.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let receiver = serving.clone();
            tokio::spawn(async move {
                let service = service_fn(move |r| receiver.clone().serve(r));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let deliveries = events * endpoints as u64;

    let phases = env("PHASES", "floor,fanout,steady");
    let runs = |phase: &str| phases.split(',').any(|p| p == phase);

    // 1. The floor: the same deliveries, signed and sent by a bare client.
    if runs("floor") {
        let secrets: Vec<String> = (0..endpoints)
            .map(|n| format!("whsec_{}", STANDARD.encode([n as u8 + 1; 32])))
            .collect();
        receiver.reset(&secrets);
        let began = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let senders: Vec<_> = (0..clients)
            .map(|_| {
                let next = next.clone();
                let secrets = secrets.clone();
                std::thread::spawn(move || {
                    let agent = agent();
                    let keys: Vec<hmac::Key> = secrets.iter().map(|s| hmac_key(s)).collect();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= deliveries {
                            return;
                        }
                        let d = FloorDelivery::new(&keys, i);
                        let _ = agent
                            .post(&format!("http://127.0.0.1:{port}/e/{}", d.endpoint))
                            .header("content-type", "application/json")
                            .header("webhook-id", &d.id)
                            .header("webhook-timestamp", &d.timestamp)
                            .header("webhook-signature", &d.signature)
                            .send(d.body.as_bytes());
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let floor_s = began.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"phase": "floor-ureq", "deliveries_per_s": (deliveries as f64 / floor_s).round()})
        );
        receiver.reset(&secrets);
        let began = Instant::now();
        let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let next = next.clone();
                let client = client.clone();
                let keys: Vec<hmac::Key> = secrets.iter().map(|s| hmac_key(s)).collect();
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= deliveries {
                            return;
                        }
                        let d = FloorDelivery::new(&keys, i);
                        let request =
                            Request::post(format!("http://127.0.0.1:{port}/e/{}", d.endpoint))
                                .header("content-type", "application/json")
                                .header("webhook-id", &d.id)
                                .header("webhook-timestamp", &d.timestamp)
                                .header("webhook-signature", &d.signature)
                                .body(Full::new(Bytes::from(d.body)))
                                .unwrap();
                        if let Ok(response) = client.request(request).await {
                            let _ = response.into_body().collect().await;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let floor_s = began.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"phase": "floor", "deliveries": deliveries, "clients": clients,
               "deliveries_per_s": (deliveries as f64 / floor_s).round(), "check": receiver.report(deliveries)})
        );
    }

    // 2. Fan-out through Switchyard.
    let api_agent = agent();
    let mut secrets = Vec::new();
    for n in 0..endpoints {
        let mut reply = api_agent
            .post(&format!("{api}/api/v1/webhooks"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(json!({"url": format!("http://127.0.0.1:{port}/e/{n}"), "event_types": ["bench.*"]}).to_string())?;
        let body: Value = serde_json::from_str(&reply.body_mut().read_to_string()?)?;
        assert_eq!(reply.status(), 201, "{body}");
        secrets.push(body["secret"].as_str().unwrap().to_owned());
    }
    receiver.reset(&secrets);
    if runs("fanout") {
        let began = Instant::now();
        for batch in 0..events.div_ceil(1000) {
            let list: Vec<Value> = (batch * 1000..((batch + 1) * 1000).min(events))
                .map(|i| json!({"type": "bench.fanout", "id": format!("f{i}"), "data": {"n": i}}))
                .collect();
            let reply = api_agent
                .post(&format!("{api}/api/v1/events/batch"))
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(json!({ "events": list }).to_string())?;
            assert_eq!(reply.status(), 202);
        }
        let sent_s = began.elapsed().as_secs_f64();
        let last = receiver
            .wait_for(deliveries, Duration::from_secs(600))
            .await;
        let took = last.map(|t| t.duration_since(began).as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!(
            "{}",
            json!({"phase": "fanout", "events": events, "endpoints": endpoints, "deliveries": deliveries,
               "events_sent_in_s": (sent_s * 100.0).round() / 100.0,
               "deliveries_per_s": took.map(|t| (deliveries as f64 / t).round()),
               "relay": relay_latency(&db, "bench.fanout").await,
               "check": receiver.report(deliveries)})
        );
    }

    // 3. A steady rate, one event a POST.
    if !runs("steady") {
        return Ok(());
    }
    receiver.reset(&secrets);
    let total = rate * steady_seconds;
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let senders: Vec<_> = (0..8u64)
        .map(|lane| {
            let committed = committed.clone();
            let api = api.clone();
            let auth = auth.clone();
            std::thread::spawn(move || {
                let agent = agent();
                let mut i = lane;
                while i < total {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let id = format!("s{i}");
                    let reply = agent
                        .post(&format!("{api}/api/v1/events"))
                        .header("authorization", &auth)
                        .header("content-type", "application/json")
                        .send(
                            json!({"type": "bench.steady", "id": id, "data": {"n": i}}).to_string(),
                        )
                        .unwrap();
                    assert_eq!(reply.status(), 202);
                    committed.lock().unwrap().insert(id, Instant::now());
                    i += 8;
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let steady_deliveries = total * endpoints as u64;
    receiver
        .wait_for(steady_deliveries, Duration::from_secs(300))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies: Vec<f64> = {
        let seen = receiver.seen.lock().unwrap();
        let committed = committed.lock().unwrap();
        seen.first
            .iter()
            .filter_map(|((_, id), at)| {
                let sent = committed.get(id)?;
                Some(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"phase": "steady", "events_per_s": rate, "seconds": steady_seconds,
               "deliveries": steady_deliveries,
               "commit_to_receipt": {"p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
                                     "max_ms": percentile(&latencies, 1.0)},
               "relay": relay_latency(&db, "bench.steady").await,
               "check": receiver.report(steady_deliveries)})
    );
    Ok(())
}
