//! `app healthcheck [--url]`: exits 0 when the local health endpoint answers 200, so a
//! Docker `HEALTHCHECK` works in an image without curl.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Settings;

/// The URL probed when `--url` is not given: this process's own port on loopback.
pub fn default_url(settings: &Settings) -> String {
    let port = settings.http.port.unwrap_or(8080);
    let host = settings.http.host;
    let host = if host.is_unspecified() {
        "127.0.0.1".to_owned()
    } else if host.is_ipv6() {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("http://{host}:{port}/api/health")
}

/// Probes `url` once. Blocking: it runs before any runtime exists.
pub fn run(url: &str, timeout: Duration) -> ExitCode {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) if response.status() == 200 => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("unhealthy: {url}: {error}");
            ExitCode::from(1)
        }
    }
}
