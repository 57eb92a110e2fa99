//! Shared test harness: a database per test cloned from a migrated template, a Redis key
//! prefix per test, the real server in-process on port 0, the real binary for process
//! tests, and a TCP proxy that can cut or stall a real dependency.
#![allow(dead_code)]

pub mod proxy;
pub mod target;
pub mod verify;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};
use switchyard::config::{LoadOptions, Settings};
use switchyard::state::AppState;
use switchyard::telemetry::Identity;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const APP_SECRET: &str = "test-app-secret-0123456789abcdef0123456789";
/// The tests' encryption key: 32 bytes of 0x2a, base64.
pub const ENCRYPTION_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// Where the test servers are: set by scripts/test.sh, with the same defaults it uses.
pub fn server_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://switchyard:switchyard@127.0.0.1:5432/switchyard".into())
}

pub fn server_redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The seeds of the tests' Redis Cluster (scripts/services.sh starts one), for the tests
/// that need a cluster whatever the pass.
pub fn cluster_seeds() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_CLUSTER").expect(
        "SWITCHYARD_TEST_REDIS_CLUSTER names the test Redis Cluster's seeds (scripts/test.sh starts one)",
    )
}

/// The seeds, when the suites run against the cluster instead of one server:
/// scripts/test.sh's cluster pass sets SWITCHYARD_TEST_ON_CLUSTER.
pub fn server_redis_cluster() -> Option<String> {
    std::env::var("SWITCHYARD_TEST_ON_CLUSTER")
        .is_ok_and(|v| v == "1")
        .then(cluster_seeds)
}

/// Redis as the tests' settings name it: the one server, or the cluster.
pub async fn test_redis() -> switchyard::redis::Redis {
    let settings = settings(environment(&server_database_url(), &server_redis_url()));
    switchyard::redis::connect(&settings.redis, Duration::from_secs(5))
        .await
        .expect("Redis answers")
}

/// The job queues `default` and `other` over `prefix` on the tests' Redis.
pub async fn test_queues(prefix: &str, retention: Duration) -> switchyard::queue::Queues {
    let settings = settings(environment(&server_database_url(), &server_redis_url()));
    let redis = test_redis().await;
    switchyard::queue::Queues::new(
        redis.multiplexed(&settings.redis, 2).unwrap(),
        prefix,
        &["default".to_owned(), "other".to_owned()],
        Duration::from_secs(60),
        retention,
    )
}

fn with_database(url: &str, name: &str) -> String {
    let mut url = url::Url::parse(url).expect("DATABASE_URL parses");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A database of one test's own, dropped when the value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A copy of the migrated template.
    pub async fn migrated() -> Self {
        let template = ensure_template().await;
        Self::create(Some(&template)).await
    }

    /// An empty database, for migration tests.
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&server_database_url())
            .await
            .expect("connect to the test Postgres server");
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        // Cloning fails while another session is still leaving the template; retry briefly.
        let mut tries = 0;
        loop {
            match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot create {name}: {e}"),
            }
        }
        let url = with_database(&server_database_url(), &name);
        Self { name, url }
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_in_thread(async move {
            if let Ok(mut conn) = PgConnection::connect(&server_database_url()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        });
    }
}

/// Runs async clean-up from `Drop`, which may run inside a runtime or outside one: a
/// thread of its own with its own runtime works in both.
fn block_in_thread(work: impl Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for clean-up")
            .block_on(work);
    })
    .join();
}

/// A login role of a test's own, dropped when the test ends, passed or not. Declare it
/// before the test's database, so that the database (and the role's grants in it) goes
/// first.
pub struct TestRole(pub String);

impl TestRole {
    pub async fn create(password: &str) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&server_database_url())
            .await
            .expect("connect to the test Postgres server");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{password}'"
        )))
        .execute(&mut conn)
        .await
        .expect("the test database role needs CREATEROLE (scripts/services.sh grants it)");
        Self(name)
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let name = self.0.clone();
        block_in_thread(async move {
            if let Ok(mut conn) = PgConnection::connect(&server_database_url()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

/// Creates the template for this set of migrations once; test processes running at the
/// same time take turns through an advisory lock.
async fn ensure_template() -> String {
    let digest: u64 = switchyard::db::migrator()
        .iter()
        .flat_map(|m| m.checksum.iter().copied())
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
    let name = format!("test_template_{digest:016x}");
    let mut conn = PgConnection::connect(&server_database_url())
        .await
        .expect("connect");
    sqlx::query("SELECT pg_advisory_lock(4242424242)")
        .execute(&mut conn)
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    if !exists {
        let building = format!("{name}_building");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {building} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let pool = PgPool::connect(&with_database(&server_database_url(), &building))
            .await
            .unwrap();
        switchyard::db::migrate(&pool)
            .await
            .expect("migrate the template");
        pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {name}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query("SELECT pg_advisory_unlock(4242424242)")
        .execute(&mut conn)
        .await
        .unwrap();
    name
}

/// The environment a test's app sees: its own database and key prefix, an admin token.
pub fn environment(db_url: &str, redis_url: &str) -> BTreeMap<String, String> {
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let mut env = BTreeMap::from([
        ("DATABASE_URL".into(), db_url.into()),
        ("REDIS_URL".into(), redis_url.into()),
        ("REDIS_KEY_PREFIX".into(), prefix),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        ("APP_SECRET".into(), APP_SECRET.into()),
        ("ENCRYPTION_KEY".into(), ENCRYPTION_KEY.into()),
        // Each test stores files in a directory of its own.
        (
            "STORAGE_PATH".into(),
            std::env::temp_dir()
                .join(format!(
                    "switchyard-test-storage-{}",
                    uuid::Uuid::new_v4().simple()
                ))
                .display()
                .to_string(),
        ),
        ("LOG_LEVEL".into(), "info".into()),
        ("STARTUP_DEPENDENCY_WAIT_SECONDS".into(), "5".into()),
    ]);
    if let Some(seeds) = server_redis_cluster() {
        env.insert("REDIS_CLUSTER_URLS".into(), seeds);
    }
    env
}

/// Loads settings as the binary would, from the given environment instead of the process's.
pub fn settings(environment: BTreeMap<String, String>) -> Settings {
    // A test's own CONFIG_DIR (schedules, say) replaces the repository's config folder.
    let config_dir = environment
        .get("CONFIG_DIR")
        .cloned()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/config").to_owned());
    let options = LoadOptions {
        config_dir: Some(config_dir.into()),
        environment,
        overrides: Vec::new(),
    };
    switchyard::settings::load(options)
        .expect("test settings are valid")
        .settings
}

/// `app serve` running in this process on a loopback port.
pub struct TestApp {
    pub address: SocketAddr,
    pub state: AppState,
    pub db: TestDb,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}, OpenApiRouter::new()).await
    }

    /// Starts the API with adjusted environment and extra admin routes merged in.
    pub async fn spawn_with(
        adjust: impl FnOnce(&mut BTreeMap<String, String>),
        extra_routes: OpenApiRouter<AppState>,
    ) -> Self {
        Self::spawn_on(TestDb::migrated().await, adjust, extra_routes).await
    }

    /// The API on `db`, as it is (an empty database, say).
    pub async fn spawn_on(
        db: TestDb,
        adjust: impl FnOnce(&mut BTreeMap<String, String>),
        extra_routes: OpenApiRouter<AppState>,
    ) -> Self {
        let mut env = environment(&db.url, &server_redis_url());
        adjust(&mut env);
        let settings = settings(env);
        let identity = Identity::new("serve", &settings);
        let state = AppState::connect(settings, identity)
            .await
            .expect("connect");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let options = switchyard::http::ServeOptions::from_settings(&state.settings);
        let router = switchyard::http::build(
            state.clone(),
            switchyard::http::public_routes().merge(switchyard::console::router()),
            switchyard::http::admin_routes().merge(extra_routes),
        );
        let shutdown = CancellationToken::new();
        // Like `app serve`: the API and an events relay.
        let relay = switchyard::relay::run(state.relay(), shutdown.clone());
        let serving = switchyard::http::serve(listener, router, shutdown.clone(), options);
        let server = tokio::spawn(async move {
            let (served, relayed) = tokio::join!(serving, relay);
            served.and(relayed)
        });
        Self {
            address,
            state,
            db,
            shutdown,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        call("GET", &self.url(path), &[], None).await
    }

    pub async fn admin_get(&self, path: &str) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        call("GET", &self.url(path), &[("authorization", &auth)], None).await
    }

    /// An admin call with an optional JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        call(method, &self.url(path), &headers, body).await
    }

    /// An admin call with a JSON body sent exactly as written.
    pub async fn admin_raw(&self, method: &str, path: &str, body: &str) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        call(
            method,
            &self.url(path),
            &headers,
            Some(body.as_bytes().to_vec()),
        )
        .await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        let _ = std::fs::remove_dir_all(&self.state.settings.storage.path);
        let keys = RedisKeys(self.state.settings.redis.key_prefix.clone());
        self.state.close().await;
        tokio::task::spawn_blocking(move || drop(keys))
            .await
            .unwrap();
        // The database goes here, while the state is still held, rather than after it as
        // the fields' order would have it: that order stalled some tests' ends for a
        // minute.
        let db = self.db;
        tokio::task::spawn_blocking(move || drop(db)).await.unwrap();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The body as it came, for binary contents.
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Asserts an RFC 9457 problem document with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "status; body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "content type; body: {}",
            self.body
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert_eq!(body["code"], code, "code; body: {}", self.body);
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        assert_eq!(body["type"], format!("urn:switchyard:problem:{code}"));
        body
    }
}

/// One queue's entry in a `GET /api/v1/queues` answer.
pub fn queue(counts: &serde_json::Value, name: &str) -> serde_json::Value {
    counts["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap()
        .clone()
}

/// One HTTP call with ureq on a blocking thread.
pub async fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let method = method.to_owned();
    let url = url.to_owned();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || blocking_call(&method, &url, &headers, body))
        .await
        .unwrap()
}

pub fn blocking_call(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let result = match body {
        Some(bytes) => agent.run(request.body(bytes).unwrap()),
        None => agent.run(request.body(()).unwrap()),
    };
    let mut response = result.unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

/// The built `app` binary.
pub fn app() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json");
    command
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `app` process whose output is collected.
pub struct Process {
    pub child: Child,
    pub port: u16,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Process {
    /// Starts `app <args>` with `env` on a free port and waits for `/api/health/live`.
    pub fn start(args: &[&str], env: &BTreeMap<String, String>) -> Self {
        let port = free_port();
        let mut command = app();
        command
            .args(args)
            .envs(env)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start app");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = output.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut all = sink.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let process = Self {
            child,
            port,
            output,
        };
        process.wait_until_live();
        process
    }

    fn wait_until_live(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        while Instant::now() < deadline {
            if let Ok(r) = agent.get(&self.url("/api/health/live")).call()
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("app did not come up; output:\n{}", self.output());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for exit, failing the test after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "app did not exit within {limit:?}; output:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary config folder holding `schedule.toml`, removed when dropped.
pub struct ScheduleDir(pub std::path::PathBuf);

impl ScheduleDir {
    pub fn new(schedule_toml: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("switchyard-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("schedule.toml"), schedule_toml).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for ScheduleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deletes a test's Redis keys when dropped, so tests leave the shared server as found.
/// A cluster pass's cluster is the tests' own, and scripts/test.sh empties it after them.
pub struct RedisKeys(pub String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        if server_redis_cluster().is_some() {
            return;
        }
        let pattern = format!("{}*", self.0);
        block_in_thread(async move {
            let Ok(pool) = deadpool_redis::Config::from_url(server_redis_url())
                .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            else {
                return;
            };
            let Ok(mut conn) = pool.get().await else {
                return;
            };
            let mut cursor: u64 = 0;
            loop {
                let Ok((next, keys)): Result<(u64, Vec<String>), _> =
                    deadpool_redis::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await
                else {
                    return;
                };
                if !keys.is_empty() {
                    let _: Result<(), _> = deadpool_redis::redis::cmd("DEL")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await;
                }
                if next == 0 {
                    return;
                }
                cursor = next;
            }
        });
    }
}

/// Runs `tests/support/<script>` with Python on `input` and returns what it did: the
/// independent libraries the tests check Switchyard's output with are Python's.
pub fn python_support(script: &str, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/support")
                .join(script),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
