//! A TCP proxy in front of a real Postgres or Redis, so a test can make the dependency go
//! away (cut), hang (stall) and come back without touching the shared server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bytes flow both ways.
    Pass,
    /// Connections stay open but nothing flows: the dependency hangs.
    Stall,
    /// Open connections are closed and new ones are closed on arrival.
    Cut,
}

pub struct Proxy {
    pub address: SocketAddr,
    mode: watch::Sender<Mode>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    acceptor: AbortHandle,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_on("127.0.0.1:0", upstream).await
    }

    /// Listens on `bind` (e.g. `[::1]:0` for an IPv6-only front).
    pub async fn start_on(bind: &str, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(bind).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Pass);
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let tracked = connections.clone();
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *watcher.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                let watcher = watcher.clone();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, watcher.clone()) => {}
                        _ = pump(sr, cw, watcher) => {}
                    }
                });
                tracked.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            address,
            mode,
            connections,
            acceptor,
        }
    }

    /// A URL like `base` that goes through this proxy.
    pub fn url_for(&self, base: &str) -> String {
        let mut url = url::Url::parse(base).unwrap();
        let host = match self.address {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        url.set_host(Some(&host)).unwrap();
        url.set_port(Some(self.address.port())).unwrap();
        url.to_string()
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        if mode == Mode::Cut {
            for handle in self.connections.lock().unwrap().drain(..) {
                handle.abort();
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        for handle in self.connections.lock().unwrap().drain(..) {
            handle.abort();
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Hold the bytes back while stalled; stop when cut.
        loop {
            match *mode.borrow_and_update() {
                Mode::Pass => break,
                Mode::Cut => return,
                Mode::Stall => {}
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *mode.borrow() == Mode::Stall {
            if mode.changed().await.is_err() {
                return;
            }
        }
        if *mode.borrow() == Mode::Cut || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The socket address of a `postgres://` or `redis://` URL.
pub fn upstream_of(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).unwrap();
    let host = url.host_str().unwrap().trim_matches(['[', ']']);
    let port = url.port().unwrap_or(if url.scheme().starts_with("redis") {
        6379
    } else {
        5432
    });
    let ip: std::net::IpAddr = if host == "localhost" {
        "127.0.0.1".parse().unwrap()
    } else {
        host.parse().unwrap()
    };
    SocketAddr::new(ip, port)
}
