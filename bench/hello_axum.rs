//! A second reference for the HTTP benchmark: a bare axum router with one JSON route,
//! served by hyper's HTTP/1.1 connection builder as `app` is. The gap between it and
//! hello_hyper is the router's; the gap between it and `app` is Switchyard's edge
//! (request ids, timeout, access log, metrics, problem documents).
//! Usage: hello_axum <port>

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Router::new().route(
            "/",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"status":"alive"}"#,
                )
            }),
        );
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
