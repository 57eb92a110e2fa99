//! The console in a real browser against `app dev`: headless Chromium, driven by
//! tests/browser/console.mjs, signs in (a wrong token refused), walks the pages with no
//! console error and no failed request, sees a dead job appear without a reload, retries
//! it from the console, finds a delayed job under its queue's scheduled jobs, deletes a
//! queue's dead jobs at once, uploads a file, runs a schedule now and finds its job,
//! publishes a realtime event, is refused a change without the CSRF token, finds every
//! path of the API document on `/docs`, and signs out; on the way it reaches a page by
//! keyboard, checks every control has a name, and that no page runs off a phone's width
//! in the dark scheme.
//! Screenshots of each page land in `target/console-screenshots/`.
//!
//! scripts/test.sh installs Chromium (apt) and playwright-core (npm ci in tests/browser).

use std::path::Path;

use serde_json::json;

use crate::browser::{require_browser, run_script};
use crate::common::target::{Answer, Target};
use crate::common::{ADMIN_TOKEN, Process, RedisKeys, TestDb, environment, server_redis_url};

#[test]
fn the_console_signs_in_shows_a_dead_job_live_retries_it_and_signs_out() {
    require_browser();
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let dev = Process::start(&["dev"], &env);
    // The first call fails (the job dies: one attempt), the retry succeeds.
    let target = Target::start(vec![Answer::status(500)]);
    let hooks = Target::start(Vec::new());

    let plan = json!({
        "base": format!("http://127.0.0.1:{}", dev.port),
        "token": ADMIN_TOKEN,
        "failing_url": target.url("/hook"),
        // Nothing listens on the discard port: a call there fails at once.
        "refused_url": "http://127.0.0.1:9/refused",
        "hook_url": hooks.url("/webhooks"),
        "screenshots": screenshots,
        // What the test provokes on purpose: the wrong sign-in and the change without CSRF.
        "expected_refusals": ["/console/session", "/api/v1/jobs"],
    });
    let seen = run_script("console.mjs", &plan, &dev.output());
    let steps = &seen["steps"];
    assert_eq!(seen["problems"], json!([]), "{seen:#}");
    assert_eq!(
        steps["wrong_token"], "That token does not open the console.",
        "{seen:#}"
    );
    assert_eq!(
        steps["stored"],
        json!({"local": 0, "session": 0, "cookie": ""}),
        "nothing readable by scripts holds the session: {seen:#}"
    );
    assert_eq!(steps["enqueued"], 202, "{seen:#}");
    assert_eq!(steps["dead_appeared_live"], true, "{seen:#}");
    assert_eq!(steps["retried_state"], "succeeded", "{seen:#}");
    assert_eq!(steps["job_page_state"], "succeeded", "{seen:#}");
    let chart = steps["chart"].as_str().unwrap_or_default();
    assert!(
        chart.starts_with("Over the last 60 minutes: 0 succeeded, 0 failed"),
        "{seen:#}"
    );
    assert_eq!(steps["keyboard"], "#/queues", "{seen:#}");
    let history = steps["delayed_history"].as_str().unwrap_or_default();
    assert!(
        history.contains("enqueued") && history.contains("due"),
        "{seen:#}"
    );
    assert_eq!(
        steps["bulk_deleted"], "Deleted 1 dead jobs of http.",
        "{seen:#}"
    );
    assert_eq!(steps["dead_after"], 0, "{seen:#}");
    let published = steps["published"].as_str().unwrap_or_default();
    assert!(
        published.starts_with("Published to console.test at offset "),
        "{seen:#}"
    );
    assert_eq!(steps["dark_background"], "rgb(17, 19, 24)", "{seen:#}");
    assert_eq!(
        steps["low_contrast"],
        json!({"dark": [], "light": []}),
        "{seen:#}"
    );
    assert_eq!(steps["uploaded"], "Uploaded hello.txt.", "{seen:#}");
    assert_eq!(
        steps["downloaded"],
        json!({"name": "hello.txt", "failure": null}),
        "{seen:#}"
    );
    assert_eq!(steps["paused"], "paused", "{seen:#}");
    assert_eq!(steps["scheduled_job_kind"], "deletes", "{seen:#}");
    assert_eq!(steps["endpoint"], 201, "{seen:#}");
    assert_eq!(
        steps["replayed"], "Replayed the delivery of webhook.test.",
        "{seen:#}"
    );
    assert!(steps["docs_paths"].as_u64().unwrap() >= 40, "{seen:#}");
    assert_eq!(
        steps["docs_missing"],
        json!([]),
        "/docs lists every path: {seen:#}"
    );
    assert_eq!(steps["without_csrf"]["status"], 403, "{seen:#}");
    assert_eq!(
        steps["without_csrf"]["body"]["code"], "csrf_token_invalid",
        "{seen:#}"
    );
    assert_eq!(steps["after_sign_out"], 204, "{seen:#}");
    for page in [
        "signin",
        "overview",
        "queues",
        "dead-jobs",
        "job",
        "scheduled-jobs",
        "realtime",
        "phone-overview",
        "phone-queues",
        "phone-realtime",
        "files",
        "schedules-job",
        "webhooks",
        "audit",
        "keys",
        "docs",
    ] {
        assert!(
            screenshots.join(format!("{page}.png")).exists(),
            "{page}.png"
        );
    }
    assert_eq!(target.received().len(), 2, "one failed call, one retried");
}
