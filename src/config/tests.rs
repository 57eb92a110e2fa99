//! What `config` refuses on its own, and how each layer's values arrive.

use super::*;

/// Loads with `vars` as the environment and no domain rules: what `config` checks alone.
fn load_with(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load(LoadOptions::for_test(vars), |_| Ok(()))
}

fn refusal(vars: &[(&str, &str)]) -> String {
    load_with(vars).err().expect("refused").to_string()
}

#[test]
fn every_setting_and_variable_is_documented_in_the_readme_and_default_toml() {
    let readme = include_str!("../../README.md");
    let loaded = load_with(&[]).unwrap();
    for (key, _, _) in loaded.report() {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(readme.contains(&format!("`{key}`")), "README lacks {key}");
        assert!(DEFAULTS_TOML.contains(leaf), "default.toml lacks {key}");
    }
    for (var, _) in ENVIRONMENT {
        assert!(readme.contains(&format!("`{var}`")), "README lacks {var}");
        assert!(DEFAULTS_TOML.contains(var), "default.toml lacks {var}");
    }
}

#[test]
fn a_token_made_of_digits_stays_a_string() {
    let loaded = load_with(&[("ADMIN_TOKEN", "1234567890123456789")]).unwrap();
    let token = loaded.settings.app.admin_token.unwrap();
    assert_eq!(token.expose(), "1234567890123456789");
}

#[test]
fn service_name_names_the_service_on_any_platform_and_wins_over_railways() {
    let railway = load_with(&[("RAILWAY_SERVICE_NAME", "api")]).unwrap();
    let both = load_with(&[("RAILWAY_SERVICE_NAME", "api"), ("SERVICE_NAME", "web")]).unwrap();
    let neither = load_with(&[]).unwrap();
    assert_eq!(railway.settings.service_name(), "api");
    assert_eq!(both.settings.service_name(), "web");
    assert_eq!(neither.settings.service_name(), "switchyard");
}

#[test]
fn worker_queues_accept_a_comma_separated_variable() {
    let loaded = load_with(&[("WORKER_QUEUES", "webhooks, audits,mails")]).unwrap();
    assert_eq!(
        loaded.settings.worker.queues,
        ["webhooks", "audits", "mails"]
    );
}

#[test]
fn an_invalid_queue_name_names_the_setting() {
    let error = load_with(&[("WORKER_QUEUES", "Bad Queue")])
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("worker.queues") && error.contains("WORKER_QUEUES"),
        "{error}"
    );
}

#[test]
fn bad_realtime_limits_name_their_setting() {
    for (var, value, key) in [
        (
            "REALTIME_MAX_FRAME_BYTES",
            "100",
            "realtime.max_frame_bytes",
        ),
        ("REALTIME_MAX_CONNECTIONS", "0", "realtime.max_connections"),
        (
            "REALTIME_HEARTBEAT_TIMEOUT_SECONDS",
            "10",
            "realtime.heartbeat_timeout_seconds",
        ),
        (
            "REALTIME_ALLOWED_ORIGINS",
            "app.example.com",
            "realtime.allowed_origins",
        ),
        (
            "REALTIME_CLIENT_IP_HEADER",
            "bad header",
            "realtime.client_ip_header",
        ),
    ] {
        let error = load_with(&[(var, value)]).err().unwrap().to_string();
        assert!(error.contains(key), "{var}={value}: {error}");
    }
    let origins = load_with(&[(
        "REALTIME_ALLOWED_ORIGINS",
        "https://app.example.com, https://*.example.org",
    )])
    .unwrap();
    assert_eq!(
        origins.settings.realtime.allowed_origins,
        ["https://app.example.com", "https://*.example.org"]
    );
}

#[test]
fn a_short_admin_token_is_refused_without_printing_it() {
    let error = load_with(&[("ADMIN_TOKEN", "short-tok")])
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("ADMIN_TOKEN") && error.contains("16"),
        "{error}"
    );
    assert!(!error.contains("short-tok"), "{error}");
}

#[test]
fn worker_queues_take_weights_and_must_be_declared() {
    let loaded = load_with(&[("WORKER_QUEUES", "http:3,audits")]).unwrap();
    assert_eq!(
        loaded.settings.worker.weighted_queues(),
        [("http".to_owned(), 3), ("audits".to_owned(), 1)]
    );
    let undeclared = refusal(&[("WORKER_QUEUES", "billing")]);
    assert!(
        undeclared.contains("worker.queues") && undeclared.contains("JOBS_QUEUES"),
        "{undeclared}"
    );
    let bad_weight = refusal(&[("WORKER_QUEUES", "http:0")]);
    assert!(bad_weight.contains("weight"), "{bad_weight}");
}

#[test]
fn the_resend_driver_needs_a_key_and_a_sender() {
    let error = refusal(&[("MAIL_DRIVER", "resend")]);
    assert!(error.contains("mail.api_key"), "{error}");
    let error = refusal(&[("MAIL_DRIVER", "resend"), ("MAIL_API_KEY", "re_123")]);
    assert!(error.contains("mail.from"), "{error}");
}

#[test]
fn storage_is_local_until_a_bucket_is_named() {
    let local = load_with(&[]).unwrap().settings.storage;
    assert_eq!(local.effective_backend(), StorageBackend::Local);
    let railway = load_with(&[
        ("BUCKET", "railway-bucket"),
        ("ENDPOINT", "https://storage.example"),
        ("ACCESS_KEY_ID", "rw-id"),
        ("SECRET_ACCESS_KEY", "rw-secret"),
    ])
    .unwrap()
    .settings
    .storage;
    assert_eq!(railway.effective_backend(), StorageBackend::S3);
    let described = railway.describe();
    assert!(
        described.contains("railway-bucket")
            && described.contains("virtual-hosted")
            && !described.contains("rw-secret"),
        "{described}"
    );
}

#[test]
fn the_most_specific_storage_variable_wins() {
    let storage = load_with(&[
        ("BUCKET", "from-railway"),
        ("AWS_S3_BUCKET_NAME", "from-aws"),
        ("S3_BUCKET", "from-seed"),
        ("REGION", "auto"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("S3_ACCESS_KEY", "seed-id"),
        ("S3_SECRET_KEY", "seed-secret"),
        ("STORAGE_BACKEND", "r2"),
    ])
    .unwrap()
    .settings
    .storage;
    assert_eq!(storage.bucket.as_deref(), Some("from-seed"));
    assert_eq!(storage.region.as_deref(), Some("eu-west-1"));
    assert_eq!(storage.backend, Some(StorageBackend::S3));
    let aws = load_with(&[
        ("AWS_S3_BUCKET_NAME", "from-aws"),
        ("BUCKET", "from-railway"),
    ]);
    assert_eq!(
        aws.unwrap().settings.storage.bucket.as_deref(),
        Some("from-aws")
    );
}

#[test]
fn bad_storage_settings_name_the_setting_without_printing_secrets() {
    let error = refusal(&[("STORAGE_BACKEND", "s3")]);
    assert!(
        error.contains("storage.bucket") && error.contains("S3_BUCKET"),
        "{error}"
    );
    let error = refusal(&[("S3_BUCKET", "Not_A_Bucket")]);
    assert!(error.contains("storage.bucket"), "{error}");
    let error = refusal(&[("S3_BUCKET", "media"), ("S3_ENDPOINT", "ftp://x")]);
    assert!(
        error.contains("storage.endpoint") && error.contains("S3_ENDPOINT"),
        "{error}"
    );
    let error = refusal(&[("S3_BUCKET", "media"), ("S3_SECRET_KEY", "hush-hush")]);
    assert!(
        error.contains("storage.secret_access_key") && !error.contains("hush-hush"),
        "{error}"
    );
    let error = refusal(&[("STORAGE_BACKEND", "floppy")]);
    assert!(error.contains("STORAGE_BACKEND"), "{error}");
    let error = refusal(&[("STORAGE_SIGNED_URL_TTL_SECONDS", "0")]);
    assert!(error.contains("storage.signed_url_ttl_seconds"), "{error}");
}

#[test]
fn an_app_env_that_is_not_a_file_name_is_refused() {
    let error = load_with(&[("APP_ENV", "../etc")])
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("APP_ENV"), "{error}");
}

#[test]
fn an_upload_memory_budget_below_one_upload_is_refused() {
    let error = refusal(&[("STORAGE_UPLOAD_MEMORY", "8MiB")]);
    assert!(
        error.contains("storage.upload_memory") && error.contains("STORAGE_UPLOAD_MEMORY"),
        "{error}"
    );
    let loaded = load_with(&[("STORAGE_UPLOAD_MEMORY", "100MiB")]).unwrap();
    assert_eq!(loaded.settings.storage.concurrent_uploads(), 4);
}

#[test]
fn bad_event_and_webhook_settings_name_their_setting() {
    for (var, value, key) in [
        (
            "WEBHOOKS_RETRY_SCHEDULE",
            "5s,soon",
            "webhooks.retry_schedule",
        ),
        (
            "WEBHOOKS_RETRY_SCHEDULE",
            "5s,2d",
            "webhooks.retry_schedule",
        ),
        ("WEBHOOKS_RETRY_JITTER", "0.9", "webhooks.retry_jitter"),
        (
            "WEBHOOKS_DISABLE_AFTER_FAILURES",
            "0",
            "webhooks.disable_after_failures",
        ),
        ("EVENTS_RELAY_BATCH", "0", "events.relay_batch"),
        ("EVENTS_RETENTION_DAYS", "0", "events.retention_days"),
        ("ENCRYPTION_KEY", "dG9vIHNob3J0", "encryption.key"),
    ] {
        let error = refusal(&[(var, value)]);
        assert!(
            error.contains(key) && error.contains(var),
            "{var}={value}: {error}"
        );
    }
    let previous_alone = refusal(&[(
        "ENCRYPTION_KEY_PREVIOUS",
        "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
    )]);
    assert!(
        previous_alone.contains("encryption.key"),
        "{previous_alone}"
    );
}

#[test]
fn the_default_retry_schedule_is_svixs() {
    let webhooks = load_with(&[]).unwrap().settings.webhooks;
    let minutes: Vec<u64> = webhooks
        .retry_waits()
        .iter()
        .map(|w| w.as_secs() / 60)
        .collect();
    assert_eq!(minutes, [0, 5, 30, 120, 300, 600, 600]);
    assert_eq!(webhooks.attempts(), 8);
}

#[test]
fn cors_origins_are_checked_and_any_origin_refuses_credentials() {
    let loaded = load_with(&[(
        "CORS_ORIGINS",
        "https://a.example.com, https://*.b.example.com",
    )])
    .unwrap();
    assert_eq!(
        loaded.settings.http.cors_allowed_origins,
        ["https://a.example.com", "https://*.b.example.com"]
    );
    let both = load_with(&[
        ("CORS_ORIGINS", "https://old.example.com"),
        ("CORS_ALLOWED_ORIGINS", "https://new.example.com"),
    ])
    .unwrap();
    assert_eq!(
        both.settings.http.cors_allowed_origins,
        ["https://new.example.com"],
        "the canonical name wins"
    );
    let error = load_with(&[("CORS_ALLOWED_ORIGINS", "https://a.example.com/path")])
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("http.cors_allowed_origins") && error.contains("CORS_ALLOWED_ORIGINS"),
        "{error}"
    );
    let error = load_with(&[
        ("CORS_ALLOWED_ORIGINS", "*"),
        ("CORS_ALLOW_CREDENTIALS", "true"),
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("http.cors_allow_credentials"), "{error}");
}

#[test]
fn bad_rate_limit_settings_stop_start_up_naming_the_setting() {
    for (var, value, key) in [
        ("RATE_LIMIT_RATE", "fast", "rate_limit.rate"),
        ("RATE_LIMIT_RATE", "0/s", "rate_limit.rate"),
        (
            "RATE_LIMIT_FAILED_AUTH_RATE",
            "10/week",
            "rate_limit.failed_auth_rate",
        ),
        ("RATE_LIMIT_BURST", "0", "rate_limit.burst"),
        (
            "RATE_LIMIT_TRUSTED_PROXIES",
            "10.0.0.0/8,proxy",
            "rate_limit.trusted_proxies",
        ),
        (
            "RATE_LIMIT_ON_REDIS_DOWN",
            "maybe",
            "rate_limit.on_redis_down",
        ),
    ] {
        let error = load_with(&[(var, value)]).err().unwrap().to_string();
        assert!(error.contains(key), "{var}={value}: {error}");
    }
    let loaded = load_with(&[
        ("RATE_LIMIT_RATE", "600/m"),
        ("RATE_LIMIT_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
    ])
    .unwrap();
    assert_eq!(loaded.settings.rate_limit.rate(), Some(super::Rate(10.0)));
    assert_eq!(loaded.settings.rate_limit.trusted().len(), 2);
}

#[test]
fn a_console_session_outside_an_hour_to_a_month_names_the_setting() {
    for value in ["0", "721", "soon"] {
        let error = load_with(&[("CONSOLE_SESSION_HOURS", value)])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("http.console_session_hours"),
            "{value}: {error}"
        );
    }
    let loaded = load_with(&[("CONSOLE_SESSION_HOURS", "24")]).unwrap();
    assert_eq!(
        loaded.settings.http.console_session(),
        std::time::Duration::from_secs(86_400)
    );
}

#[test]
fn redis_cluster_urls_take_a_comma_separated_list_of_seeds() {
    let loaded = load_with(&[(
        "REDIS_CLUSTER_URLS",
        "redis://:pw@10.0.0.1:7001, rediss://10.0.0.2:7002",
    )])
    .unwrap();
    let redis = &loaded.settings.redis;
    assert!(redis.is_cluster());
    assert_eq!(redis.cluster_urls.len(), 2);
    assert_eq!(
        redis.endpoint(),
        "the cluster at 10.0.0.1:7001,10.0.0.2:7002"
    );
    assert!(!load_with(&[]).unwrap().settings.redis.is_cluster());
}

#[test]
fn a_bad_redis_cluster_seed_names_the_setting_and_the_entry_but_not_its_password() {
    let scheme = refusal(&[(
        "REDIS_CLUSTER_URLS",
        "redis://a:7001,http://u:hunter2@b:7002",
    )]);
    assert!(scheme.contains("redis.cluster_urls"), "{scheme}");
    assert!(scheme.contains("entry 2"), "{scheme}");
    assert!(scheme.contains("redis:// or rediss://"), "{scheme}");
    assert!(!scheme.contains("hunter2"), "{scheme}");
    let garbled = refusal(&[("REDIS_CLUSTER_URLS", "redis://a:7001,not a url :hunter2")]);
    assert!(garbled.contains("REDIS_CLUSTER_URLS"), "{garbled}");
    assert!(garbled.contains("entry 2 is not a valid URL"), "{garbled}");
    assert!(!garbled.contains("hunter2"), "{garbled}");
}
