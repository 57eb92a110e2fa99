//! `app realtime` as processes: fan-out across two replicas through Redis, recovery after
//! a reconnect, slow consumers, SIGTERM, the heartbeat, and every refusal the protocol
//! documents (tokens, claims, bad frames, limits).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::proxy::{Mode, Proxy, upstream_of};
use crate::common::{
    ADMIN_TOKEN, APP_SECRET, Process, RedisKeys, TestDb, blocking_call, environment,
    server_redis_url,
};

/// How long a test waits for something that should come at once.
const PATIENCE: Duration = Duration::from_secs(10);

struct Setup {
    rt: tokio::runtime::Runtime,
    _db: TestDb,
    _keys: RedisKeys,
    env: BTreeMap<String, String>,
}

fn setup(adjust: &[(&str, &str)]) -> Setup {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env = environment(&db.url, &server_redis_url());
    for (key, value) in adjust {
        env.insert((*key).into(), (*value).into());
    }
    let keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    Setup {
        rt,
        _db: db,
        _keys: keys,
        env,
    }
}

fn admin() -> Vec<(String, String)> {
    vec![
        ("authorization".into(), format!("Bearer {ADMIN_TOKEN}")),
        ("content-type".into(), "application/json".into()),
    ]
}

/// A token for `channels` from the process's minting endpoint.
pub(crate) fn token(app: &Process, channels: &[&str]) -> String {
    let reply = blocking_call(
        "POST",
        &app.url("/api/v1/realtime/token"),
        &admin(),
        Some(
            json!({"sub": "tester", "channels": channels})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["token"].as_str().unwrap().to_owned()
}

/// Publishes through `app`'s API; returns the offset.
pub(crate) fn publish(app: &Process, channel: &str, event: &str, data: Value) -> u64 {
    let reply = blocking_call(
        "POST",
        &app.url("/api/v1/realtime/publish"),
        &admin(),
        Some(
            json!({"channel": channel, "event": event, "data": data})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["offset"].as_u64().unwrap()
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) struct Client {
    ws: Ws,
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Code(u16),
    /// Closed without a close frame.
    Dropped,
}

impl Client {
    async fn connect(app: &Process, token: Option<&str>) -> Self {
        Self::connect_with(app, token, &[]).await.unwrap()
    }

    async fn connect_with(
        app: &Process,
        token: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, WsError> {
        let url = match token {
            Some(token) => format!("ws://127.0.0.1:{}/api/v1/realtime?token={token}", app.port),
            None => format!("ws://127.0.0.1:{}/api/v1/realtime", app.port),
        };
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { ws })
    }

    /// Connects with a token for `channels` and reads `connected`.
    pub(crate) async fn authenticated(app: &Process, channels: &[&str]) -> Self {
        let mut client = Self::connect(app, Some(&token(app, channels))).await;
        assert_eq!(client.next().await["type"], "connected");
        client
    }

    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message, skipping pings.
    pub(crate) async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a readable frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Subscribes and returns the `subscribed` reply.
    pub(crate) async fn subscribe(&mut self, channels: &[&str], since: Value) -> Value {
        self.send(json!({"type": "subscribe", "channels": channels, "since": since}))
            .await;
        let reply = self.next().await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        reply
    }

    /// Reads until the socket ends; the close code, skipping anything before it.
    async fn ended(&mut self) -> Ended {
        loop {
            match tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the socket ends in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => return Ended::Code(u16::from(frame.code)),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Ended::Dropped,
                Some(Ok(_)) => {}
            }
        }
    }
}

fn event_offsets(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn an_event_published_through_either_process_reaches_subscribers_on_both() {
    let s = setup(&[]);
    let a = Process::start(&["realtime"], &s.env);
    let b = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut on_a = Client::authenticated(&a, &["news"]).await;
        let mut on_b = Client::authenticated(&b, &["news"]).await;
        on_a.subscribe(&["news"], json!({})).await;
        on_b.subscribe(&["news"], json!({})).await;

        let first = publish(&a, "news", "story.posted", json!({"n": 1}));
        let second = publish(&b, "news", "story.posted", json!({"n": 2}));
        assert_eq!(second, first + 1, "offsets rise by one per event");

        for client in [&mut on_a, &mut on_b] {
            let one = client.next().await;
            let two = client.next().await;
            assert_eq!(one["type"], "event");
            assert_eq!(one["channel"], "news");
            assert_eq!(one["event"], "story.posted");
            assert_eq!(one["data"], json!({"n": 1}));
            assert_eq!(one["offset"], first);
            assert!(one["ts"].as_u64().unwrap() > 1_700_000_000_000);
            assert_eq!(two["data"], json!({"n": 2}));
            assert_eq!(two["offset"], second);
        }
    });
}

#[test]
fn a_reconnecting_client_recovers_what_it_missed_with_no_gap_and_no_duplicate() {
    let s = setup(&[]);
    let a = Process::start(&["realtime"], &s.env);
    let b = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut client = Client::authenticated(&a, &["feed"]).await;
        let subscribed = client.subscribe(&["feed"], json!({})).await;
        let mut last = subscribed["offsets"]["feed"].as_u64().unwrap();
        for n in 0..3 {
            publish(&a, "feed", "tick", json!({"n": n}));
            let event = client.next().await;
            last = event["offset"].as_u64().unwrap();
        }
        drop(client);

        // Events keep coming while the client is away and while it comes back.
        let url = b.url("/api/v1/realtime/publish");
        let publisher = std::thread::spawn(move || {
            let mut offsets = Vec::new();
            for n in 3..60 {
                let reply = blocking_call(
                    "POST",
                    &url,
                    &admin(),
                    Some(
                        json!({"channel": "feed", "event": "tick", "data": {"n": n}})
                            .to_string()
                            .into_bytes(),
                    ),
                );
                offsets.push(reply.json()["offset"].as_u64().unwrap());
                std::thread::sleep(Duration::from_millis(5));
            }
            offsets
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut client = Client::authenticated(&b, &["feed"]).await;
        let subscribed = client.subscribe(&["feed"], json!({"feed": last})).await;
        assert_eq!(subscribed["recovered"], true, "{subscribed}");
        let published = tokio::task::spawn_blocking(move || publisher.join().unwrap())
            .await
            .unwrap();
        let newest = *published.last().unwrap();
        let mut received = Vec::new();
        while received.last().copied() != Some(newest) {
            let event = client.next().await;
            assert_eq!(event["type"], "event", "{event}");
            received.push(event["offset"].as_u64().unwrap());
        }
        let expected: Vec<u64> = (last + 1..=newest).collect();
        assert_eq!(
            received, expected,
            "every missed and live event once, in order"
        );
    });
}

#[test]
fn a_gap_older_than_the_history_is_reported_as_not_recovered() {
    // With approximate trimming, a stream of 300 events keeps far fewer than 300.
    let s = setup(&[("REALTIME_HISTORY_SIZE", "10")]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let first = publish(&app, "old", "e", json!(1));
        for _ in 0..300 {
            publish(&app, "old", "e", json!(1));
        }
        let mut client = Client::authenticated(&app, &["old"]).await;
        let subscribed = client.subscribe(&["old"], json!({"old": first})).await;
        assert_eq!(subscribed["recovered"], false, "{subscribed}");
        let newest = subscribed["offsets"]["old"].as_u64().unwrap();
        assert_eq!(newest, first + 300);

        // From an offset that is still kept, everything after it comes.
        let mut again = Client::authenticated(&app, &["old"]).await;
        let subscribed = again.subscribe(&["old"], json!({"old": newest - 3})).await;
        assert_eq!(subscribed["recovered"], true, "{subscribed}");
        let got: Vec<Value> = vec![again.next().await, again.next().await, again.next().await];
        assert_eq!(event_offsets(&got), vec![newest - 2, newest - 1, newest]);
    });
}

#[test]
fn a_slow_consumer_is_dropped_while_the_others_keep_receiving() {
    let s = setup(&[("REALTIME_OUTBOUND_QUEUE", "4")]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut fast = Client::authenticated(&app, &["bulk"]).await;
        let mut slow = Client::authenticated(&app, &["bulk"]).await;
        fast.subscribe(&["bulk"], json!({})).await;
        slow.subscribe(&["bulk"], json!({})).await;
        // 60 KB events until the slow client's socket buffers and queue are full.
        let filler = "x".repeat(60_000);
        let total = 300;
        let mut received = 0;
        for n in 0..total {
            publish(&app, "bulk", "big", json!({"n": n, "filler": filler}));
            // The fast client keeps up.
            let event = fast.next().await;
            assert_eq!(event["data"]["n"], n);
            received += 1;
        }
        assert_eq!(received, total);
        // The slow one was cut off before the end.
        let mut slow_count = 0;
        let ended = loop {
            match tokio::time::timeout(PATIENCE, slow.ws.next())
                .await
                .unwrap()
            {
                Some(Ok(Message::Text(_))) => slow_count += 1,
                Some(Ok(Message::Close(Some(frame)))) => break Ended::Code(u16::from(frame.code)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => break Ended::Dropped,
            }
        };
        assert!(
            slow_count < total,
            "the slow client got everything: {ended:?}"
        );
        assert!(
            matches!(ended, Ended::Code(4008) | Ended::Dropped),
            "{ended:?}"
        );
    });
    assert!(
        app.output().contains("closed a slow realtime consumer"),
        "{}",
        app.output()
    );
}

#[test]
fn sigterm_closes_every_socket_with_1001_and_exits_0() {
    let s = setup(&[]);
    let mut app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut one = Client::authenticated(&app, &["x"]).await;
        let mut two = Client::authenticated(&app, &["x"]).await;
        two.subscribe(&["x"], json!({})).await;
        app.signal(libc::SIGTERM);
        assert_eq!(one.ended().await, Ended::Code(1001));
        assert_eq!(two.ended().await, Ended::Code(1001));
    });
    let status = app.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", app.output());
}

#[test]
fn a_client_that_stops_answering_pings_is_closed_after_the_heartbeat_timeout() {
    let s = setup(&[
        ("REALTIME_HEARTBEAT_SECONDS", "1"),
        ("REALTIME_HEARTBEAT_TIMEOUT_SECONDS", "2"),
    ]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut silent = Client::authenticated(&app, &["x"]).await;
        let mut lively = Client::authenticated(&app, &["x"]).await;
        // The lively client reads (so its library answers each ping) for 4 s; the silent
        // one reads nothing, so it sends no pong.
        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        while let Ok(frame) = tokio::time::timeout_at(until, lively.ws.next()).await {
            assert!(
                matches!(frame, Some(Ok(Message::Ping(_)))),
                "the lively client got {frame:?}"
            );
        }
        assert_eq!(silent.ended().await, Ended::Code(4000));
        lively.send(json!({"type": "ping"})).await;
        assert_eq!(lively.next().await["type"], "pong");
    });
}

#[test]
fn missing_expired_and_tampered_tokens_are_closed_without_a_subscription() {
    let s = setup(&[("REALTIME_AUTH_TIMEOUT_SECONDS", "1")]);
    let app = Process::start(&["realtime"], &s.env);
    let key =
        switchyard::realtime::token::TokenKey::new(&switchyard::config::Secret::new(APP_SECRET));
    let now = chrono::Utc::now().timestamp();
    let claims = |exp| switchyard::realtime::token::Claims {
        sub: "u".into(),
        exp,
        channels: vec!["x".into()],
        iat: None,
        nbf: None,
    };
    let expired = key.mint(&claims(now - 10));
    let good = key.mint(&claims(now + 600));
    s.rt.block_on(async {
        // No token at all, in time.
        let mut none = Client::connect(&app, None).await;
        assert_eq!(none.ended().await, Ended::Code(4001));

        let mut client = Client::connect(&app, Some(&expired)).await;
        assert_eq!(client.ended().await, Ended::Code(4002));

        // Another token's claims under this one's signature.
        let wider = key.mint(&switchyard::realtime::token::Claims {
            channels: vec!["*".into()],
            ..claims(now + 600)
        });
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            wider.split('.').nth(1).unwrap(),
            parts[2]
        );
        let mut client = Client::connect(&app, Some(&tampered)).await;
        assert_eq!(client.ended().await, Ended::Code(4001));

        let other = switchyard::realtime::token::TokenKey::new(&switchyard::config::Secret::new(
            "some-other-secret-of-thirty-two-characters",
        ));
        let mut client = Client::connect(&app, None).await;
        client
            .send(json!({"type": "auth", "token": other.mint(&claims(now + 600))}))
            .await;
        assert_eq!(client.ended().await, Ended::Code(4001));

        // A first message that is not auth.
        let mut client = Client::connect(&app, None).await;
        client
            .send(json!({"type": "subscribe", "channels": ["x"]}))
            .await;
        assert_eq!(client.ended().await, Ended::Code(4001));

        // The auth message works, and a valid token then subscribes.
        let mut client = Client::connect(&app, None).await;
        client.send(json!({"type": "auth", "token": &good})).await;
        assert_eq!(client.next().await["type"], "connected");
        client.subscribe(&["x"], json!({})).await;
        let mut by_url = Client::connect(&app, Some(&good)).await;
        assert_eq!(by_url.next().await["type"], "connected");
    });
    // Request logs name the route, never the query that carries the token.
    let logs = app.output();
    assert!(logs.contains("/api/v1/realtime"), "{logs}");
    assert!(!logs.contains(&good) && !logs.contains(&expired), "{logs}");
}

#[test]
fn a_trace_level_run_logs_no_token_or_admin_token() {
    let s = setup(&[("LOG_LEVEL", "trace")]);
    let app = Process::start(&["realtime"], &s.env);
    let good = token(&app, &["x"]);
    s.rt.block_on(async {
        let mut by_message = Client::connect(&app, None).await;
        by_message
            .send(json!({"type": "auth", "token": &good}))
            .await;
        assert_eq!(by_message.next().await["type"], "connected");
        by_message.subscribe(&["x"], json!({})).await;
        let mut by_url = Client::connect(&app, Some(&good)).await;
        assert_eq!(by_url.next().await["type"], "connected");
    });

    let logs = app.output();
    // Dependencies still speak, at debug.
    assert!(logs.contains("\"level\":\"debug\""), "{logs}");
    // Whole, or as any of its three parts (a dependency may print one), or in hex.
    let hex: String = good.bytes().map(|b| format!("{b:02x}")).collect();
    for secret in good
        .split('.')
        .chain([good.as_str(), ADMIN_TOKEN, hex.as_str()])
    {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
}

#[test]
fn a_subscription_outside_the_claims_is_refused_and_the_socket_stays_open() {
    let s = setup(&[]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut client = Client::authenticated(&app, &["user.42.*"]).await;
        client
            .send(json!({"type": "subscribe", "channels": ["user.43.inbox"]}))
            .await;
        let refusal = client.next().await;
        assert_eq!(refusal["type"], "error");
        assert_eq!(refusal["code"], "forbidden_channel");
        // Nothing from the refused channel arrives; the allowed one works.
        publish(&app, "user.43.inbox", "m", json!(1));
        let subscribed = client.subscribe(&["user.42.inbox"], json!({})).await;
        assert_eq!(subscribed["channels"], json!(["user.42.inbox"]));
        publish(&app, "user.42.inbox", "m", json!(2));
        let event = client.next().await;
        assert_eq!(event["channel"], "user.42.inbox");
        assert_eq!(event["data"], 2);
    });
}

#[test]
fn garbage_unknown_binary_and_oversized_frames_get_an_error_or_a_close_code() {
    let s = setup(&[("REALTIME_MAX_FRAME_BYTES", "1024")]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut client = Client::authenticated(&app, &["x"]).await;
        client.ws.send(Message::text("not json")).await.unwrap();
        assert_eq!(client.next().await["code"], "bad_message");
        client
            .send(json!({"type": "subscribe", "channels": "x"}))
            .await;
        assert_eq!(client.next().await["code"], "bad_message");
        client.send(json!({"type": "shout"})).await;
        assert_eq!(client.next().await["code"], "unknown_type");
        client
            .send(json!({"type": "subscribe", "channels": ["bad channel"]}))
            .await;
        assert_eq!(client.next().await["code"], "invalid_channel");
        client.send(json!({"type": "ping"})).await;
        assert_eq!(client.next().await["type"], "pong", "still open");
        // Within the limit but twice the socket's read buffer: read whole, over several reads.
        let long = json!({"type": "ping", "pad": "y".repeat(1000 - 30)});
        client
            .ws
            .send(Message::text(long.to_string()))
            .await
            .unwrap();
        assert_eq!(
            client.next().await["type"],
            "pong",
            "a long frame is read whole"
        );

        let mut binary = Client::authenticated(&app, &["x"]).await;
        binary
            .ws
            .send(Message::binary(vec![1u8, 2, 3]))
            .await
            .unwrap();
        assert_eq!(binary.ended().await, Ended::Code(1003));

        let mut bad_text = Client::authenticated(&app, &["x"]).await;
        let not_utf8 = Frame::message(vec![0xff, 0xfe], OpCode::Data(Data::Text), true);
        let _ = bad_text.ws.send(Message::Frame(not_utf8)).await;
        assert_eq!(bad_text.ended().await, Ended::Code(1002));

        let mut big = Client::authenticated(&app, &["x"]).await;
        let oversized = json!({"type": "ping", "pad": "y".repeat(2000)});
        let _ = big.ws.send(Message::text(oversized.to_string())).await;
        assert_eq!(big.ended().await, Ended::Code(1009));
    });
    let health = blocking_call("GET", &app.url("/api/health"), &[], None);
    assert_eq!(health.status, 200, "the process is still healthy");
}

#[test]
fn every_limit_is_refused_as_documented() {
    let s = setup(&[
        ("REALTIME_MAX_CONNECTIONS", "3"),
        ("REALTIME_MAX_SUBSCRIPTIONS", "2"),
        ("REALTIME_MESSAGES_PER_SECOND", "2"),
        ("REALTIME_MESSAGE_BURST", "3"),
        ("REALTIME_CONNECTIONS_PER_IP_PER_MINUTE", "5"),
        (
            "REALTIME_ALLOWED_ORIGINS",
            "https://app.example.com,https://*.example.org",
        ),
    ]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let status = |error: WsError| match error {
            WsError::Http(response) => response.status().as_u16(),
            other => panic!("expected an HTTP refusal, got {other}"),
        };
        // Origins.
        let refused = Client::connect_with(
            &app,
            None,
            &[("origin", "https://evil.test"), ("x-real-ip", "10.0.0.1")],
        )
        .await;
        assert_eq!(status(refused.err().unwrap()), 403);
        let allowed = Client::connect_with(
            &app,
            None,
            &[
                ("origin", "https://a.example.org"),
                ("x-real-ip", "10.0.0.1"),
            ],
        )
        .await;
        assert!(allowed.is_ok());
        drop(allowed);

        // Attempts per address per minute: the sixth from one address is 429, another
        // address still gets in.
        for _ in 0..4 {
            drop(
                Client::connect_with(&app, None, &[("x-real-ip", "10.0.0.1")])
                    .await
                    .unwrap(),
            );
        }
        let refused = Client::connect_with(&app, None, &[("x-real-ip", "10.0.0.1")]).await;
        assert_eq!(status(refused.err().unwrap()), 429);

        // Connections per process: wait for the dropped ones to be gone, then fill up.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut open = Vec::new();
        for n in 0..3 {
            let ip = format!("10.1.0.{n}");
            open.push(
                Client::connect_with(&app, None, &[("x-real-ip", &ip)])
                    .await
                    .unwrap(),
            );
        }
        let refused = Client::connect_with(&app, None, &[("x-real-ip", "10.2.0.1")]).await;
        assert_eq!(status(refused.err().unwrap()), 503);
        drop(open);
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Subscriptions per socket.
        let mut client = Client::connect(&app, Some(&token(&app, &["*"]))).await;
        assert_eq!(client.next().await["type"], "connected");
        client.subscribe(&["a", "b"], json!({})).await;
        client
            .send(json!({"type": "subscribe", "channels": ["c"]}))
            .await;
        assert_eq!(client.next().await["code"], "too_many_subscriptions");

        // Message rate: a burst of 3, then a flood is closed.
        for _ in 0..10 {
            if client
                .ws
                .send(Message::text(r#"{"type":"ping"}"#))
                .await
                .is_err()
            {
                break;
            }
        }
        assert_eq!(client.ended().await, Ended::Code(4029));
    });
}

#[test]
fn health_on_the_realtime_port_reports_connections_and_the_subscriber() {
    let s = setup(&[]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let _one = Client::authenticated(&app, &["x"]).await;
        let _two = Client::authenticated(&app, &["x"]).await;
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let health = blocking_call("GET", &app.url("/api/health"), &[], None).json();
            if health["details"]["connections"] == 2 {
                assert_eq!(health["details"]["subscriber"], "connected", "{health}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{health}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn publishing_and_minting_refuse_bad_input() {
    let s = setup(&[("REALTIME_MAX_EVENT_BYTES", "100")]);
    let app = Process::start(&["realtime"], &s.env);
    let post = |path: &str, body: Value, auth: bool| {
        let headers = if auth {
            admin()
        } else {
            vec![("content-type".into(), "application/json".into())]
        };
        blocking_call(
            "POST",
            &app.url(path),
            &headers,
            Some(body.to_string().into_bytes()),
        )
    };
    let publish_path = "/api/v1/realtime/publish";
    post(publish_path, json!({"channel": "x", "event": "e"}), false)
        .assert_problem(401, "unauthorized");
    let bad = post(
        publish_path,
        json!({"channel": "no spaces", "event": "e"}),
        true,
    );
    assert_eq!(
        bad.assert_problem(422, "validation_failed")["field"],
        "channel"
    );
    let bad = post(publish_path, json!({"channel": "x", "event": ""}), true);
    assert_eq!(
        bad.assert_problem(422, "validation_failed")["field"],
        "event"
    );
    post(
        publish_path,
        json!({"channel": "x", "event": "e", "data": "z".repeat(200)}),
        true,
    )
    .assert_problem(413, "payload_too_large");
    post(publish_path, json!({"channel": "x"}), true).assert_problem(422, "validation_failed");

    let token_path = "/api/v1/realtime/token";
    let bad = post(
        token_path,
        json!({"sub": "u", "channels": ["ok", "bad*x"]}),
        true,
    );
    assert_eq!(
        bad.assert_problem(422, "validation_failed")["field"],
        "channels"
    );
    let bad = post(
        token_path,
        json!({"sub": "u", "channels": ["x"], "ttl_seconds": 0}),
        true,
    );
    assert_eq!(
        bad.assert_problem(422, "validation_failed")["field"],
        "ttl_seconds"
    );

    let plain = blocking_call("GET", &app.url("/api/v1/realtime"), &[], None);
    plain.assert_problem(426, "upgrade_required");
    let old_version: Vec<(String, String)> = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "8"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let old_version = blocking_call("GET", &app.url("/api/v1/realtime"), &old_version, None);
    old_version.assert_problem(426, "upgrade_required");
    assert_eq!(old_version.header("sec-websocket-version"), Some("13"));
}

#[test]
fn a_subscribed_replica_keeps_its_redis_subscriber_across_the_keepalive_pings() {
    let s = setup(&[]);
    let app = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut client = Client::authenticated(&app, &["orders"]).await;
        client.subscribe(&["orders"], json!({})).await;
        // The subscriber pings Redis every 5 s; a subscribed connection answers with an
        // array, which once read as a lost connection (and made every socket resync).
        tokio::time::sleep(Duration::from_secs(6)).await;
        let offset = publish(&app, "orders", "placed", json!({}));
        assert_eq!(client.next().await["offset"], offset);
    });
    let output = app.output();
    assert!(!output.contains("lost its Redis connection"), "{output}");
}

#[test]
fn after_losing_redis_a_replica_recovers_the_events_its_sockets_missed() {
    let s = setup(&[]);
    let proxy =
        s.rt.block_on(Proxy::start(upstream_of(&server_redis_url())));
    // Replica A reaches Redis through the proxy; replica B directly.
    let mut through_proxy = s.env.clone();
    through_proxy.insert("REDIS_URL".into(), proxy.url_for(&server_redis_url()));
    let a = Process::start(&["realtime"], &through_proxy);
    let b = Process::start(&["realtime"], &s.env);
    s.rt.block_on(async {
        let mut client = Client::authenticated(&a, &["orders"]).await;
        client.subscribe(&["orders"], json!({})).await;
        let first = publish(&b, "orders", "placed", json!({"n": 0}));
        assert_eq!(client.next().await["offset"], first);

        proxy.set(Mode::Cut);
        let health_url = a.url("/api/health");
        let wait_for = |state: &'static str| {
            let health_url = health_url.clone();
            async move {
                let deadline = std::time::Instant::now() + PATIENCE;
                loop {
                    let health = blocking_call("GET", &health_url, &[], None).json();
                    if health["details"]["subscriber"] == state {
                        return;
                    }
                    assert!(std::time::Instant::now() < deadline, "{health}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        wait_for("reconnecting").await;
        // A subscribe meanwhile is refused, and the socket stays open.
        let mut late = Client::connect(&a, Some(&token(&b, &["orders", "other"]))).await;
        assert_eq!(late.next().await["type"], "connected");
        late.send(json!({"type": "subscribe", "channels": ["other"]}))
            .await;
        assert_eq!(late.next().await["code"], "unavailable");
        // Published through B while A hears nothing.
        let missed: Vec<u64> = (1..=3)
            .map(|n| publish(&b, "orders", "placed", json!({"n": n})))
            .collect();
        proxy.set(Mode::Pass);
        wait_for("connected").await;
        let after = publish(&b, "orders", "placed", json!({"n": 4}));

        let mut received = Vec::new();
        while received.last() != Some(&after) {
            let event = client.next().await;
            assert_eq!(event["type"], "event", "{event}");
            received.push(event["offset"].as_u64().unwrap());
        }
        let mut expected = missed.clone();
        expected.push(after);
        assert_eq!(
            received, expected,
            "the missed events once, in order, then live ones"
        );
    });
}
