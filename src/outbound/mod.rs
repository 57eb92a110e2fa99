//! Outbound HTTP for jobs: one ureq agent (`http` and `mails` jobs) whose resolver refuses
//! private addresses (see [`guard`]), run on tokio's blocking pool behind a semaphore so
//! that a flood of slow targets holds at most `outbound.max_concurrent` threads; and, for
//! webhook deliveries by the thousand, an async pooled client under the same rules
//! ([`client`]). Responses are read up to `outbound.max_response_bytes`.

mod checks;
mod client;
mod guard;
mod signing;

use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::DefaultConnector;

pub use checks::{UrlProblem, header_problem, url_problem};
pub use guard::{Forbidden, Policy, Refused, classify, valid_host_pattern};
pub use signing::SigningKey;

use crate::config::{Check, OutboundSettings};

/// The outbound rules of the settings: every allowed host is a host name or a `*.`
/// suffix, and the signing secret is a Standard Webhooks key. Neither value is printed.
pub fn check_settings(settings: &OutboundSettings) -> Check {
    if let Some(bad) = settings.allow_hosts.iter().find(|p| !valid_host_pattern(p)) {
        return Err((
            "outbound.allow_hosts",
            format!("{bad:?} is not a host name or a \"*.\" suffix pattern"),
        ));
    }
    if let Some(secret) = &settings.signing_secret
        && let Err(problem) = SigningKey::parse(secret.expose())
    {
        return Err(("outbound.signing_secret", problem));
    }
    Ok(())
}

/// One outbound request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What came back, the body cut at the configured cap.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// The response headers (the first 50), names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a call produced no response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The SSRF guard refused the address; trying again will not help.
    #[error("{0}")]
    Refused(Refused),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

/// The shared outbound client.
#[derive(Clone)]
pub struct Outbound {
    /// Built on first use: loading the system's root certificates costs start-up time and
    /// a few MiB that modes which never call out should not pay.
    agent: Arc<OnceLock<Agent>>,
    /// The async client for deliveries, also built on first use.
    deliveries: Arc<OnceLock<client::AsyncClient>>,
    settings: Arc<OutboundSettings>,
    /// Bounds the blocking threads calls occupy.
    slots: Arc<Semaphore>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl Outbound {
    pub fn new(settings: &OutboundSettings) -> Self {
        Self {
            agent: Arc::default(),
            deliveries: Arc::default(),
            settings: Arc::new(settings.clone()),
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            timeout: Duration::from_secs(settings.timeout_seconds),
            max_response_bytes: settings.max_response_bytes,
        }
    }

    fn agent(&self) -> &Agent {
        self.agent.get_or_init(|| {
            let settings = &self.settings;
            let config = Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(self.timeout))
                .max_redirects(settings.max_redirects)
                .proxy(None)
                .user_agent(format!("switchyard/{}", crate::VERSION))
                .tls_config(TlsConfig::builder().root_certs(ureq_roots()).build())
                .build();
            let resolver = guard::GuardedResolver {
                policy: self.policy(),
                inner: DefaultResolver::default(),
            };
            Agent::with_parts(config, DefaultConnector::default(), resolver)
        })
    }

    /// The guard's rules, from `outbound.allow_private` and `outbound.allow_hosts`.
    pub fn policy(&self) -> Policy {
        Policy {
            allow_private: self.settings.allow_private,
            allow_hosts: self
                .settings
                .allow_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Resolves `host` and applies the guard's rules before anything is sent: how a URL
    /// or a database host is checked when it is registered, and what a connection the
    /// guarded agent does not make (a database check) goes through. A name that does not
    /// resolve is not refused here; the call itself fails later.
    pub async fn check_host(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<std::net::IpAddr>, Refused> {
        let policy = self.policy();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let lookup = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host, port)),
        )
        .await;
        let addresses: Vec<std::net::IpAddr> = match lookup {
            Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
            _ => return Ok(Vec::new()),
        };
        policy.check(host, addresses.iter().copied())?;
        Ok(addresses)
    }

    /// Sends a webhook delivery on the async client: no redirects followed, no thread
    /// held while it waits.
    pub async fn deliver(&self, request: Request) -> Result<Response, CallError> {
        let client = self.deliveries.get_or_init(|| {
            client::AsyncClient::new(
                self.policy(),
                self.timeout,
                self.max_response_bytes,
                rustls_roots(),
            )
        });
        client.send(request).await
    }

    /// Sends `request` on a blocking thread once a slot is free.
    pub async fn send(&self, request: Request) -> Result<Response, CallError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::Failed("the outbound client is closed".into()))?;
        let this = self.clone();
        // The slot moves into the thread: a job cancelled by its timeout drops this future,
        // but the blocking call runs on until its own timeout and keeps its slot till then.
        tokio::task::spawn_blocking(move || {
            let response = this.send_blocking(request);
            drop(slot);
            response
        })
        .await
        .map_err(|e| CallError::Failed(format!("the call's thread failed: {e}")))?
    }

    fn send_blocking(&self, request: Request) -> Result<Response, CallError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let result = match request.body {
            Some(body) => builder
                .body(body)
                .map_err(|e| CallError::Failed(e.to_string()))
                .and_then(|r| self.agent().run(r).map_err(|e| self.describe(e))),
            None => builder
                .body(())
                .map_err(|e| CallError::Failed(e.to_string()))
                .and_then(|r| self.agent().run(r).map_err(|e| self.describe(e))),
        };
        let mut response = result?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = kept_headers(response.headers());
        let mut body = Vec::new();
        // The rest of an oversized body is left unread; the connection is not reused.
        let _ = response
            .body_mut()
            .as_reader()
            .take(self.max_response_bytes as u64)
            .read_to_end(&mut body);
        Ok(Response {
            status: response.status().as_u16(),
            retry_after,
            headers,
            body,
        })
    }

    fn describe(&self, error: ureq::Error) -> CallError {
        match error {
            ureq::Error::Other(inner) => match inner.downcast::<Refused>() {
                Ok(refused) => CallError::Refused(*refused),
                Err(other) => CallError::Failed(other.to_string()),
            },
            ureq::Error::Timeout(_) => CallError::Timeout(self.timeout),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                CallError::Timeout(self.timeout)
            }
            other => CallError::Failed(other.to_string()),
        }
    }
}

/// The system's trust store (and `SSL_CERT_FILE`), as Postgres and Redis use; empty when
/// the system has none.
fn system_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The blocking agent's roots: the system's, else Mozilla's.
fn ureq_roots() -> RootCerts {
    let found = system_roots();
    if found.is_empty() {
        return RootCerts::WebPki;
    }
    let certs: Vec<Certificate<'static>> = found
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    RootCerts::new_with_certs(&certs)
}

/// The async client's roots: the system's, else Mozilla's.
fn rustls_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots());
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// Reads `Retry-After` (seconds or an HTTP date) as a wait from `now_ms`.
pub fn retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis().saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(wait as u64))
}

/// The first 50 response headers whose values are text: what an answer keeps of them,
/// whichever client made the call.
fn kept_headers(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .take(50)
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
