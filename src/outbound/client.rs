//! The async transport, for webhook deliveries: one pooled hyper client (HTTP/1.1,
//! keep-alive, rustls with the system's roots) whose resolver applies the same SSRF
//! rules as the blocking agent's. A call holds no thread while it waits, so thousands of
//! deliveries a second cost a few tasks rather than a thread hop each (a bare ureq
//! client on 64 threads reached a tenth of this client's rate on the same machine).
//! Redirects are not followed: a delivery answered with a 3xx failed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;

use super::guard::{Policy, Refused};
use super::{CallError, Request, Response, kept_headers};

/// Resolves like the system resolver, then refuses the whole lookup if any address is
/// forbidden, as the blocking agent's resolver does.
#[derive(Clone)]
struct GuardedDns {
    policy: Arc<Policy>,
    inner: GaiResolver,
}

impl tower::Service<Name> for GuardedDns {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let mut inner = self.inner.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = inner.call(name.clone()).await?.collect();
            policy
                .check(name.as_str(), found.iter().map(|a| a.ip()))
                .map_err(std::io::Error::other)?;
            Ok(found.into_iter())
        })
    }
}

/// The pooled async client.
#[derive(Clone)]
pub struct AsyncClient {
    client: Client<HttpsConnector<HttpConnector<GuardedDns>>, Full<Bytes>>,
    policy: Arc<Policy>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl AsyncClient {
    pub fn new(
        policy: Policy,
        timeout: Duration,
        max_response_bytes: usize,
        roots: rustls::RootCertStore,
    ) -> Self {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(GuardedDns {
            policy: policy.clone(),
            inner: GaiResolver::new(),
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Self {
            client,
            policy,
            timeout,
            max_response_bytes,
        }
    }

    /// Sends `request` and reads the answer, within the timeout.
    pub async fn send(&self, request: Request) -> Result<Response, CallError> {
        // An address in the URL is not resolved, so it is checked here.
        let literal: Option<std::net::IpAddr> = match request.url.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        if let Some(ip) = literal {
            self.policy
                .check(&ip.to_string(), [ip])
                .map_err(CallError::Refused)?;
        }
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(self.timeout)),
        }
    }

    async fn exchange(&self, request: Request) -> Result<Response, CallError> {
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str())
            .header("user-agent", format!("switchyard/{}", crate::VERSION));
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let body = Full::new(Bytes::from(request.body.unwrap_or_default()));
        let request = builder
            .body(body)
            .map_err(|e| CallError::Failed(e.to_string()))?;
        let response = self.client.request(request).await.map_err(describe)?;
        let status = response.status().as_u16();
        let headers = kept_headers(response.headers());
        let retry_after = headers
            .iter()
            .find(|(name, _)| name == "retry-after")
            .map(|(_, value)| value.clone());
        // The body up to the cap; the rest is left unread and the connection dropped.
        let mut body = Vec::new();
        let mut incoming = response.into_body();
        while body.len() < self.max_response_bytes {
            match incoming.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let room = self.max_response_bytes - body.len();
                        body.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(error)) => {
                    return Err(CallError::Failed(format!("the body broke off: {error}")));
                }
                None => break,
            }
        }
        Ok(Response {
            status,
            retry_after,
            headers,
            body,
        })
    }
}

/// A client error as the job sees it: the SSRF guard's refusal stands out, being final.
fn describe(error: hyper_util::client::legacy::Error) -> CallError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(refused) = io.get_ref().and_then(|e| e.downcast_ref::<Refused>())
        {
            return CallError::Refused(refused.clone());
        }
        source = current.source();
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    CallError::Failed(text)
}
