//! The API and worker engines on one state, for end-to-end job tests: jobs go in through
//! the API, run on real handlers, and are watched through the API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use switchyard::jobs::Registry;
use switchyard::state::AppState;
use tokio_util::sync::CancellationToken;

use crate::common::TestApp;

/// The key behind [`signing_secret`].
pub const SIGNING_KEY: [u8; 32] = [7; 32];

/// The tests' Standard Webhooks secret: `whsec_` + base64 of [`SIGNING_KEY`].
pub fn signing_secret() -> String {
    format!("whsec_{}", STANDARD.encode(SIGNING_KEY))
}

/// How long a test waits for a job to reach a state.
const LIMIT: Duration = Duration::from_secs(20);

pub struct WorkerApp {
    pub app: TestApp,
    engines: Vec<(
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
}

impl WorkerApp {
    /// The API with one worker running `registry`. The worker consumes the built-in
    /// queues with a 2 s lease and a 100 ms backoff base; `vars` override any setting.
    pub async fn start(vars: &[(&str, &str)], registry: impl Fn(&AppState) -> Registry) -> Self {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let app = TestApp::spawn_with(
            move |env: &mut BTreeMap<String, String>| {
                for (key, value) in [
                    (
                        "WORKER_QUEUES",
                        "default,http,webhooks,audits,deletes,mails".to_owned(),
                    ),
                    ("WORKER_LEASE_SECONDS", "2".to_owned()),
                    ("JOBS_BACKOFF_BASE_MS", "100".to_owned()),
                    ("SHUTDOWN_DRAIN_SECONDS", "5".to_owned()),
                    ("OUTBOUND_SIGNING_SECRET", signing_secret()),
                    ("OUTBOUND_TIMEOUT_SECONDS", "5".to_owned()),
                ] {
                    env.insert(key.into(), value);
                }
                env.extend(vars);
            },
            Default::default(),
        )
        .await;
        let mut this = Self {
            app,
            engines: Vec::new(),
        };
        this.add_worker(registry(&this.app.state));
        this
    }

    /// Another worker on the same queues, as a second replica would be.
    pub fn add_worker(&mut self, registry: Registry) {
        let stop = CancellationToken::new();
        let engine = tokio::spawn(switchyard::modes::worker::engine(
            self.app.state.clone(),
            registry,
            stop.clone(),
        ));
        self.engines.push((stop, engine));
    }

    /// Enqueues through the API, expecting 202; returns the job as the API shows it.
    pub async fn enqueue(&self, body: Value) -> Value {
        let reply = self.app.admin("POST", "/api/v1/jobs", Some(body)).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        reply.json()
    }

    /// Polls the job until it reaches `state`.
    pub async fn wait_for(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let job = self
                .app
                .admin_get(&format!("/api/v1/jobs/{id}"))
                .await
                .json();
            if job["state"] == state {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job never became {state}: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every worker (each must drain cleanly) and the API.
    pub async fn stop(self) {
        for (stop, _) in &self.engines {
            stop.cancel();
        }
        for (_, engine) in self.engines {
            engine.await.unwrap().unwrap();
        }
        self.app.stop().await;
    }
}
