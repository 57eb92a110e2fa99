//! A real browser against `app serve` and `app realtime`: Debian's headless Chromium, driven
//! by tests/browser/cross_origin.mjs, loads a page from an allowed origin and one from
//! another. From the allowed one it uploads a file with an upload token and receives a
//! realtime event; from the other the browser itself blocks both, and nothing is stored.
//!
//! scripts/test.sh installs Chromium (apt) and playwright-core (npm ci in tests/browser);
//! [`run_script`] runs a browser script there for this test and tests/process/console.rs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{
    ADMIN_TOKEN, Process, RedisKeys, TestDb, blocking_call, environment, server_redis_url,
};

/// Where the Node tools the browser tests use live.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Debian's Chromium and playwright-core are there, or the test says how to get them.
pub(crate) fn require_browser() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists()
            && browser_dir().join("node_modules/playwright-core").exists(),
        "this test drives Debian's Chromium with playwright-core: run scripts/test.sh, which \
         installs both (apt-get install chromium; npm ci in tests/browser)"
    );
}

/// Runs the browser script `name` (in tests/browser) with `plan` and returns what it
/// saw; a failed script fails the test with its output and `context`.
pub(crate) fn run_script(name: &str, plan: &Value, context: &str) -> Value {
    let output = Command::new("node")
        .arg(browser_dir().join(name))
        .env("SWITCHYARD_BROWSER_PLAN", plan.to_string())
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "the browser script failed: {}\n{context}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Serves an empty HTML page on a loopback port of its own: an origin for the browser to
/// run scripts from. The thread ends with the test process.
fn page_origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let page = "<!doctype html><title>a page</title>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    origin
}

fn admin() -> Vec<(String, String)> {
    vec![
        ("authorization".into(), format!("Bearer {ADMIN_TOKEN}")),
        ("content-type".into(), "application/json".into()),
    ]
}

fn post(app: &Process, path: &str, body: Value) -> Value {
    let reply = blocking_call(
        "POST",
        &app.url(path),
        &admin(),
        Some(body.to_string().into_bytes()),
    );
    assert!(reply.status < 300, "{path}: {}", reply.body);
    reply.json()
}

#[test]
fn a_browser_on_an_allowed_origin_uploads_and_subscribes_and_another_origin_is_blocked() {
    require_browser();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let allowed = page_origin();
    let blocked = page_origin();
    let mut env = environment(&db.url, &server_redis_url());
    env.insert("CORS_ALLOWED_ORIGINS".into(), allowed.clone());
    env.insert("REALTIME_ALLOWED_ORIGINS".into(), allowed.clone());
    env.insert(
        "STORAGE_PATH".into(),
        std::env::temp_dir()
            .join(format!(
                "switchyard-browser-{}",
                uuid::Uuid::new_v4().simple()
            ))
            .display()
            .to_string(),
    );
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let serve = Process::start(&["serve"], &env);
    let realtime = Process::start(&["realtime"], &env);

    let upload = post(
        &serve,
        "/api/v1/files/upload-tokens",
        json!({"bucket": "default", "content_types": ["image/*"], "expires_in_seconds": 300}),
    );
    let socket = post(
        &realtime,
        "/api/v1/realtime/token",
        json!({"sub": "browser", "channels": ["lobby"]}),
    );
    let plan = json!({
        "allowed_origin": allowed,
        "blocked_origin": blocked,
        "api": format!("http://127.0.0.1:{}", serve.port),
        "realtime_api": format!("http://127.0.0.1:{}", realtime.port),
        "realtime_ws": format!("ws://127.0.0.1:{}", realtime.port),
        "admin_token": ADMIN_TOKEN,
        "upload_token": upload["token"],
        "realtime_token": socket["token"],
        "channel": "lobby",
    });
    let seen = run_script("cross_origin.mjs", &plan, "");

    // The allowed origin: the upload passes the preflight and the response is readable,
    // exposed headers included; the socket subscribes and receives the event.
    let upload = &seen["allowed"]["upload"];
    assert_eq!(upload["status"], 201, "{seen:#}");
    assert_eq!(upload["body"]["name"], "pixel.png", "{seen:#}");
    assert_eq!(upload["body"]["content_type"], "image/png", "{seen:#}");
    assert!(
        upload["request_id"].is_string(),
        "X-Request-Id is exposed: {seen:#}"
    );
    let socket = &seen["allowed"]["realtime"];
    assert_eq!(socket["subscribed"], true, "{seen:#}");
    assert_eq!(socket["published"], 200, "{seen:#}");
    assert_eq!(socket["event"]["channel"], "lobby", "{seen:#}");
    assert_eq!(socket["event"]["data"]["from"], allowed, "{seen:#}");

    // The other origin: the browser refuses to send the upload (its preflight is not
    // answered for that origin), and the hub refuses the socket.
    let refused = &seen["blocked"]["upload"];
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "the browser blocks the cross-origin upload: {seen:#}"
    );
    assert_eq!(seen["blocked"]["realtime"]["subscribed"], false, "{seen:#}");

    let listed = blocking_call("GET", &serve.url("/api/v1/files"), &admin(), None).json();
    assert_eq!(
        listed["files"].as_array().unwrap().len(),
        1,
        "only the allowed origin's file is stored: {listed}"
    );
}
