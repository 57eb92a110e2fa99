use std::time::{Duration, Instant};

use crate::common::{TestDb, app, environment, free_port, server_database_url, server_redis_url};

#[test]
fn unreachable_postgres_is_retried_until_the_deadline_then_exit_1() {
    let env = environment(
        &format!("postgres://nobody:pw@127.0.0.1:{}/none", free_port()),
        &server_redis_url(),
    );
    let start = Instant::now();

    let output = app()
        .arg("serve")
        .envs(&env)
        .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "2")
        .env("PORT", free_port().to_string())
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "gave up before the deadline"
    );
    assert!(
        stdout.contains("dependency not reachable yet; retrying"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed to connect to Postgres (DATABASE_URL)"),
        "{stdout}"
    );
    assert!(stdout.contains("not reachable within 2s"), "{stdout}");
    assert!(
        !stdout.contains(":pw@"),
        "the password stays out of the logs: {stdout}"
    );
}

#[test]
fn unreachable_redis_is_retried_until_the_deadline_then_exit_1() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(
        &db.url,
        &format!("redis://:redis-pw@127.0.0.1:{}", free_port()),
    );

    let output = app()
        .arg("worker")
        .envs(&env)
        .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "1")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("failed to connect to Redis (REDIS_URL)"),
        "{stdout}"
    );
    assert!(stdout.contains("not reachable within 1s"), "{stdout}");
    assert!(
        !stdout.contains("redis-pw"),
        "the password stays out of the logs: {stdout}"
    );
    drop(db);
}

#[test]
fn a_dependency_that_appears_during_the_wait_is_used() {
    // Postgres behind a proxy port that starts listening only after the app has begun.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let port = free_port();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_port(Some(port)).unwrap();
    let env = environment(url.as_str(), &server_redis_url());
    let upstream = crate::common::proxy::upstream_of(&server_database_url());
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            for _ in 0..8 {
                let (client, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let mut client = client;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
    });

    let output = app()
        .args(["migrate", "--check"])
        .envs(&env)
        .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "20")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("dependency not reachable yet; retrying"),
        "{stdout}"
    );
    assert!(stdout.contains("database schema is up to date"), "{stdout}");
    drop(late);
    drop(db);
}

#[test]
fn wrong_postgres_credentials_fail_at_once_instead_of_waiting() {
    let mut url = url::Url::parse(&server_database_url()).unwrap();
    url.set_password(Some("definitely-wrong")).unwrap();
    let start = Instant::now();

    let output = app()
        .args(["migrate", "--status"])
        .env("DATABASE_URL", url.as_str())
        .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "30")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "retried an answer that cannot change"
    );
    assert!(
        stdout.contains("password authentication failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("definitely-wrong"), "{stdout}");
}

#[test]
fn sigterm_while_waiting_for_dependencies_exits_at_once_and_cleanly() {
    let env = environment(
        &format!("postgres://nobody:pw@127.0.0.1:{}/none", free_port()),
        &server_redis_url(),
    );
    let mut child = app()
        .arg("serve")
        .envs(&env)
        .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "60")
        .env("PORT", free_port().to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));

    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(20),
            "still waiting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "took {:?}",
        signalled.elapsed()
    );
    assert!(
        stdout.contains("shutdown requested during start-up"),
        "{stdout}"
    );
}

#[test]
fn realtime_without_an_app_secret_exits_1_naming_app_secret() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let mut env = environment(&db.url, &server_redis_url());
    env.remove("APP_SECRET");
    let output = app()
        .arg("realtime")
        .envs(&env)
        .env("PORT", free_port().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("APP_SECRET"),
        "{stdout}{stderr}"
    );
}

#[test]
fn an_unwritable_storage_directory_stops_start_up_saying_what_to_do() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let env = environment(&db.url, &server_redis_url());
    let dir = std::env::temp_dir().join(format!("switchyard-ro-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let mut command = app();
    command
        .arg("serve")
        .envs(&env)
        .env("STORAGE_PATH", &dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string());
    // As on Railway: the volume belongs to root and the image runs as another user.
    let copy = dir.with_extension("app");
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // That user may not reach a binary under the checkout (/root is private), so it
        // runs a copy from the temporary directory.
        std::fs::copy(env!("CARGO_BIN_EXE_app"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
        let envs: Vec<_> = command
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
            .collect();
        command = std::process::Command::new(&copy);
        command
            .args(args)
            .env_clear()
            .envs(envs)
            .current_dir(std::env::temp_dir())
            .uid(65534)
            .gid(65534);
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }

    // Spawned and waited for with a deadline: a binary that starts anyway must fail the
    // test, not hang it.
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (exited, watch) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(Duration::from_secs(30)).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let output = child.wait_with_output().unwrap();
    let _ = exited.send(());
    watchdog.join().unwrap();

    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&copy);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for needed in [
        "STORAGE_PATH",
        "not usable",
        "RAILWAY_RUN_UID=0",
        "STORAGE_BACKEND=s3",
    ] {
        assert!(text.contains(needed), "{needed} in {text}");
    }
}
