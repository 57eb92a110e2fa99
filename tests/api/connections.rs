//! Connection URLs as platforms hand them out: IPv6 hosts and TLS to Postgres.

use utoipa_axum::router::OpenApiRouter;

use crate::common::proxy::{Proxy, upstream_of};
use crate::common::{TestApp, server_database_url, server_redis_url};

fn ipv6_loopback_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[tokio::test]
async fn ipv6_hosts_work_for_postgres_and_redis() {
    assert!(
        ipv6_loopback_available(),
        "this test needs the IPv6 loopback (::1)"
    );
    // Fronts that listen on [::1] only, so the app can reach the stores over IPv6 alone
    // whatever addresses the local servers bind.
    let postgres = Proxy::start_on("[::1]:0", upstream_of(&server_database_url())).await;
    let redis = Proxy::start_on("[::1]:0", upstream_of(&server_redis_url())).await;
    let app = TestApp::spawn_with(
        |env| {
            let db = url::Url::parse(&env["DATABASE_URL"]).unwrap();
            let mut through = url::Url::parse(&postgres.url_for(&server_database_url())).unwrap();
            through.set_path(db.path());
            env.insert("DATABASE_URL".into(), through.to_string());
            env.insert("REDIS_URL".into(), redis.url_for(&server_redis_url()));
        },
        OpenApiRouter::new(),
    )
    .await;

    let reply = app.get("/api/health").await;

    assert!(app.state.settings.database.url.expose().contains("[::1]"));
    assert!(app.state.settings.redis.url.expose().contains("[::1]"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.stop().await;
}

#[tokio::test]
async fn sslmode_require_connects_to_postgres_over_tls() {
    let app = TestApp::spawn_with(
        |env| {
            let mut db = url::Url::parse(&env["DATABASE_URL"]).unwrap();
            db.query_pairs_mut().append_pair("sslmode", "require");
            env.insert("DATABASE_URL".into(), db.to_string());
        },
        OpenApiRouter::new(),
    )
    .await;

    let reply = app.get("/api/health").await;
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&app.state.db)
            .await
            .unwrap();

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(encrypted, "the pool's connection is not encrypted");
    app.stop().await;
}
