use crate::common::{TestDb, app, environment, server_redis_url};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = app().args(args).envs(env.iter().copied()).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_subcommand_is_a_usage_error_with_exit_code_2() {
    let (code, _, stderr) = run(&["frobnicate"], &[]);

    assert_eq!(code, 2);
    assert!(stderr.contains("unrecognized subcommand"), "{stderr}");
}

#[test]
fn an_unknown_flag_is_a_usage_error_with_exit_code_2() {
    let (code, _, stderr) = run(&["serve", "--frobnicate"], &[]);

    assert_eq!(code, 2);
    assert!(stderr.contains("--frobnicate"), "{stderr}");
}

#[test]
fn a_malformed_flag_value_is_a_usage_error_with_exit_code_2() {
    let (code, _, stderr) = run(&["serve", "--port", "70000"], &[]);

    assert_eq!(code, 2);
    assert!(stderr.contains("--port"), "{stderr}");
}

#[test]
fn every_subcommand_has_help_and_the_binary_has_a_version() {
    for sub in [
        "serve",
        "worker",
        "scheduler",
        "realtime",
        "migrate",
        "dev",
        "config",
        "healthcheck",
    ] {
        let (code, stdout, _) = run(&[sub, "--help"], &[]);
        assert_eq!(code, 0, "{sub} --help");
        assert!(stdout.contains("Usage: app"), "{sub}: {stdout}");
    }
    let (code, stdout, _) = run(&["config", "check", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage: app config check"), "{stdout}");
    let (code, stdout, _) = run(&["worker", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("WORKER_QUEUES") && stdout.contains("WORKER_CONCURRENCY"),
        "{stdout}"
    );

    let (code, stdout, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), format!("app {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_port_out_of_range_stops_start_up_with_exit_1_naming_port() {
    let (code, _, stderr) = run(&["serve"], &[("PORT", "70000")]);

    assert_eq!(code, 1);
    assert!(
        stderr.contains("http.port") && stderr.contains("environment variable PORT"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_encryption_key_stops_start_up_naming_it_without_printing_it() {
    for key in [
        "not-base64!",
        "c2hvcnQ=",
        "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
    ] {
        let (code, _, stderr) = run(&["serve"], &[("ENCRYPTION_KEY", key)]);

        assert_eq!(code, 1, "{key}");
        assert!(
            stderr.contains("encryption.key")
                && stderr.contains("environment variable ENCRYPTION_KEY"),
            "{stderr}"
        );
        assert!(stderr.contains("32 bytes"), "{stderr}");
        assert!(!stderr.contains(key), "the key is not printed: {stderr}");
    }
}

#[test]
fn a_worker_on_the_webhooks_queue_needs_an_encryption_key() {
    let (code, stdout, stderr) = run(&["worker", "--queues=webhooks"], &[]);

    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "encryption.key (ENCRYPTION_KEY) must be set for a worker on the webhooks queue"
        ),
        "{stdout}{stderr}"
    );
}

#[test]
fn a_bad_database_url_stops_start_up_with_exit_1_naming_database_url() {
    let (code, _, stderr) = run(&["serve"], &[("DATABASE_URL", "not a url at all")]);

    assert_eq!(code, 1);
    assert!(
        stderr.contains("environment variable DATABASE_URL"),
        "{stderr}"
    );
    assert!(stderr.contains("not a valid URL"), "{stderr}");
}

#[test]
fn a_redis_url_with_the_wrong_scheme_stops_start_up_naming_redis_url() {
    let (code, _, stderr) = run(&["worker"], &[("REDIS_URL", "http://127.0.0.1:6379")]);

    assert_eq!(code, 1);
    assert!(
        stderr.contains("redis.url") && stderr.contains("REDIS_URL"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_log_format_stops_start_up_with_exit_1_naming_log_format() {
    let (code, _, stderr) = run(&["serve"], &[("LOG_FORMAT", "xml")]);

    assert_eq!(code, 1);
    assert!(
        stderr.contains("LOG_FORMAT") && stderr.contains("xml"),
        "{stderr}"
    );
}

#[test]
fn a_bad_worker_concurrency_stops_start_up_naming_the_setting() {
    let (code, _, stderr) = run(&["worker"], &[("WORKER_CONCURRENCY", "0")]);

    assert_eq!(code, 1);
    assert!(
        stderr.contains("worker.concurrency") && stderr.contains("WORKER_CONCURRENCY"),
        "{stderr}"
    );
}

#[test]
fn config_check_prints_every_setting_with_its_source_and_redacts_secrets() {
    let (code, stdout, stderr) = run(
        &["config", "check"],
        &[
            ("PORT", "9123"),
            ("ADMIN_TOKEN", "super-secret-admin-token"),
            (
                "DATABASE_URL",
                "postgres://app:db-password-123@db.railway.internal:5432/railway",
            ),
            ("RAILWAY_SERVICE_NAME", "api"),
        ],
    );

    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("http.port = 9123"), "{stdout}");
    assert!(stdout.contains("# environment variable PORT"), "{stdout}");
    assert!(stdout.contains("log.level = \"info\""), "{stdout}");
    assert!(
        stdout.contains("# config file config/default.toml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("railway.service_name = \"api\""),
        "{stdout}"
    );
    assert!(stdout.contains("app:***@db.railway.internal"), "{stdout}");
    assert!(!stdout.contains("super-secret-admin-token"), "{stdout}");
    assert!(!stdout.contains("db-password-123"), "{stdout}");
}

#[test]
fn config_check_names_the_storage_backend_and_bucket_and_hides_the_secret_key() {
    let (code, stdout, stderr) = run(&["config", "check"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("# storage: local directory ./data/storage"),
        "{stdout}"
    );

    // Railway Bucket variables as Railway injects them.
    let (code, stdout, stderr) = run(
        &["config", "check"],
        &[
            ("BUCKET", "media-7f3a"),
            ("ENDPOINT", "https://storage.example.com"),
            ("REGION", "auto"),
            ("ACCESS_KEY_ID", "tid_railway"),
            ("SECRET_ACCESS_KEY", "tsec_very_secret_value"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "# storage: s3 bucket media-7f3a at https://storage.example.com (virtual-hosted, region auto, access key tid_railway)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("# environment variable SECRET_ACCESS_KEY"),
        "{stdout}"
    );
    assert!(!stdout.contains("tsec_very_secret_value"), "{stdout}");

    // An S3 backend without a bucket is refused, naming the setting and its variables.
    let (code, _, stderr) = run(&["config", "check"], &[("STORAGE_BACKEND", "r2")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("storage.bucket") && stderr.contains("S3_BUCKET"),
        "{stderr}"
    );
}

#[test]
fn config_layers_apply_in_order_file_then_env_file_then_environment_then_flags() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("default.toml"),
        "[http]\nport = 7001\nrequest_timeout_seconds = 11\n[worker]\nconcurrency = 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("staging.toml"),
        "[http]\nport = 7002\n[worker]\nconcurrency = 4\nqueues = [\"mails\"]\n",
    )
    .unwrap();

    let (code, stdout, stderr) = run(
        &["--config-dir", dir.to_str().unwrap(), "config", "check"],
        &[("APP_ENV", "staging"), ("WORKER_CONCURRENCY", "5")],
    );
    let (_, railway_env, _) = run(
        &["--config-dir", dir.to_str().unwrap(), "config", "check"],
        &[("RAILWAY_ENVIRONMENT_NAME", "staging")],
    );
    let (_, flagged, _) = run(
        &[
            "--config-dir",
            dir.to_str().unwrap(),
            "--log-level",
            "debug",
            "config",
            "check",
        ],
        &[
            ("APP_ENV", "staging"),
            ("LOG_LEVEL", "warn"),
            ("RUST_LOG", "error"),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("http.request_timeout_seconds = 11"),
        "default.toml applies: {stdout}"
    );
    assert!(
        stdout.contains("http.port = 7002"),
        "staging.toml wins over default.toml: {stdout}"
    );
    assert!(
        stdout.contains("worker.concurrency = 5"),
        "environment wins over files: {stdout}"
    );
    assert!(stdout.contains("worker.queues = [\"mails\"]"), "{stdout}");
    assert!(
        railway_env.contains("http.port = 7002"),
        "RAILWAY_ENVIRONMENT_NAME picks the file: {railway_env}"
    );
    assert!(
        flagged.contains("log.filter = \"debug\""),
        "flags win over environment: {flagged}"
    );
    assert!(
        flagged.contains("# command-line flag --log-level"),
        "{flagged}"
    );
}

#[test]
fn a_typo_in_a_config_file_names_the_file_and_the_key() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("default.toml"), "[http]\nprot = 7001\n").unwrap();

    let (code, _, stderr) = run(
        &["--config-dir", dir.to_str().unwrap(), "config", "check"],
        &[],
    );
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(code, 1);
    assert!(
        stderr.contains("prot") && stderr.contains("default.toml"),
        "{stderr}"
    );
}

#[test]
fn healthcheck_exits_0_against_a_healthy_server_and_1_when_nothing_answers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let server = crate::common::Process::start(&["serve"], &env);

    let healthy = app()
        .args(["healthcheck"])
        .env("PORT", server.port.to_string())
        .output()
        .unwrap();
    let nothing = app()
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{}/api/health", crate::common::free_port()),
        ])
        .output()
        .unwrap();

    assert_eq!(
        healthy.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert_eq!(nothing.status.code(), Some(1));
    drop(server);
    drop(db);
}

#[test]
fn log_level_and_rust_log_set_the_level_and_rust_log_wins() {
    let lines = |env: &[(&str, &str)]| {
        // `migrate --check` against an unreachable database logs its start-up (info),
        // its retries (warn) and its failure (error): enough to see the level.
        let output = app()
            .args(["migrate", "--check"])
            .envs(env.iter().copied())
            .env("DATABASE_URL", "postgres://x:y@127.0.0.1:1/none")
            .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "2")
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let warn_only = lines(&[("LOG_LEVEL", "warn")]);
    let info = lines(&[("LOG_LEVEL", "info")]);
    let rust_log_wins = lines(&[("LOG_LEVEL", "info"), ("RUST_LOG", "error")]);

    assert!(
        !warn_only.contains("\"message\":\"starting\""),
        "{warn_only}"
    );
    assert!(warn_only.contains("\"level\":\"warn\""), "{warn_only}");
    assert!(info.contains("\"message\":\"starting\""), "{info}");
    assert!(
        !rust_log_wins.contains("\"level\":\"warn\""),
        "{rust_log_wins}"
    );
    assert!(
        rust_log_wins.contains("\"level\":\"error\""),
        "{rust_log_wins}"
    );
}

#[test]
fn openapi_prints_the_document_without_configuration_and_a_reader_may_stop_early() {
    let output = app()
        .arg("openapi")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(doc["paths"]["/api/v1/jobs"].is_object());

    // `app openapi | head -c 10`: the reader closes the pipe early.
    let mut child = app()
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let finished = child.wait_with_output().unwrap();
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(
        finished.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
}
