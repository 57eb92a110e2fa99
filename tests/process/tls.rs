//! `rediss://` URLs: the connection is TLS and the server's certificate is verified.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{Process, TestDb, app, blocking_call, environment, free_port};

/// A CA and a `localhost` server certificate it signed, made with the openssl CLI.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Switchyard test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A Redis of this test's own that speaks only TLS.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
}

impl TlsRedis {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args([
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_rediss_url_connects_over_tls_and_verifies_the_certificate() {
    let dir = std::env::temp_dir().join(format!("switchyard-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let redis = TlsRedis::start(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::migrated());
    let url = format!("rediss://localhost:{}", redis.port);
    let mut env = environment(&db.url, &url);

    // Not trusted: the handshake is refused, and start-up gives up after its wait.
    let untrusted = app()
        .arg("worker")
        .envs(&env)
        .env("STARTUP_DEPENDENCY_WAIT_SECONDS", "1")
        .output()
        .unwrap();
    // Trusted through the standard SSL_CERT_FILE: it connects and health is 200.
    env.insert(
        "SSL_CERT_FILE".into(),
        dir.join("ca.pem").display().to_string(),
    );
    let mut trusted = Process::start(&["serve"], &env);
    let health = blocking_call("GET", &trusted.url("/api/health"), &[], None);
    trusted.signal(libc::SIGTERM);
    trusted.wait_exit(Duration::from_secs(20));
    drop(redis);
    std::fs::remove_dir_all(&dir).unwrap();

    let untrusted_log = String::from_utf8_lossy(&untrusted.stdout);
    assert_eq!(untrusted.status.code(), Some(1), "{untrusted_log}");
    assert!(
        untrusted_log.contains("failed to connect to Redis"),
        "{untrusted_log}"
    );
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["checks"]["redis"]["status"], "up");
}
