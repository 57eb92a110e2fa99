//! `app keys` as a process: a key made on the command line is printed once on stdout,
//! opens what its scopes allow through a running `app serve`, is listed without its
//! secret, and stops working once revoked; bad flags exit 2 naming the flag.

use std::time::{Duration, Instant};

use crate::common::{
    ADMIN_TOKEN, Process, RedisKeys, TestDb, app, blocking_call, environment, free_port,
    server_redis_url,
};

#[test]
fn a_key_made_on_the_command_line_works_until_it_is_revoked() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let _keys = RedisKeys(env["REDIS_KEY_PREFIX"].clone());
    let run = |args: &[&str]| app().args(args).envs(&env).output().expect("run app");

    let made = run(&[
        "keys",
        "create",
        "--name",
        "ci",
        "--scopes",
        "queues:read,metrics:read",
        "--expires",
        "90d",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let stdout = String::from_utf8(made.stdout).unwrap();
    let key = stdout.trim().to_owned();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key goes to stdout: {stdout}"
    );
    assert!(
        key.starts_with("sy_") && key.len() == 3 + 10 + 1 + 40,
        "{key}"
    );
    let stderr = String::from_utf8_lossy(&made.stderr);
    assert!(
        stderr.contains("ci")
            && stderr.contains("[metrics:read,queues:read]")
            && stderr.contains("expires"),
        "{stderr}"
    );

    let port = free_port();
    let mut serve_env = env.clone();
    serve_env.insert("PORT".into(), port.to_string());
    let serve = Process::start(&["serve"], &serve_env);
    let url = serve.url("/api/v1/queues");
    let get = |token: &str| {
        blocking_call(
            "GET",
            &url,
            &[("authorization".into(), format!("Bearer {token}"))],
            None,
        )
    };
    assert_eq!(get(&key).status, 200);
    let jobs = blocking_call(
        "GET",
        &serve.url("/api/v1/schedules"),
        &[("authorization".into(), format!("Bearer {key}"))],
        None,
    );
    assert_eq!(jobs.status, 403, "{}", jobs.body);

    let listed = run(&["keys", "list"]);
    let listing = String::from_utf8(listed.stdout).unwrap();
    let prefix = &key[3..13];
    assert!(
        listing.contains(prefix) && listing.contains("[metrics:read,queues:read]"),
        "{listing}"
    );
    assert!(
        !listing.contains(&key[14..]),
        "the secret is never listed: {listing}"
    );

    let revoked = run(&["keys", "revoke", prefix]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while get(&key).status != 401 {
        assert!(
            Instant::now() < deadline,
            "the revoked key still opens the API"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(ADMIN_TOKEN).status, 200, "the root token is unaffected");
    let unknown = run(&["keys", "revoke", "nosuchkey0"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no API key"));
    drop(serve);
}

#[test]
fn bad_key_flags_exit_2_naming_the_flag_and_store_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let run = |args: &[&str]| app().args(args).envs(&env).output().expect("run app");
    for (args, flag) in [
        (
            vec![
                "keys",
                "create",
                "--name",
                "ci",
                "--scopes",
                "jobs:read,jobs:nuke",
            ],
            "--scopes",
        ),
        (
            vec![
                "keys",
                "create",
                "--name",
                "ci",
                "--scopes",
                "jobs:read",
                "--expires",
                "soon",
            ],
            "--expires",
        ),
        (
            vec!["keys", "create", "--name", "", "--scopes", "jobs:read"],
            "--name",
        ),
        (vec!["keys", "create", "--name", "ci"], "--scopes"),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let mut no_key = env.clone();
    no_key.remove("ENCRYPTION_KEY");
    let out = app()
        .args(["keys", "create", "--name", "ci", "--scopes", "jobs:read"])
        .envs(&no_key)
        .env_remove("ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ENCRYPTION_KEY"));
    let pool = rt.block_on(db.pool());
    let count: i64 = rt
        .block_on(sqlx::query_scalar("SELECT count(*) FROM api_keys").fetch_one(&pool))
        .unwrap();
    assert_eq!(count, 0, "nothing is stored");
}
