//! Request counts and latency histograms by route, method and status, for `/metrics`.
//!
//! Kept in plain atomics rather than in the `metrics` registry: recording a request is one
//! map lookup under a read lock and two atomic additions, which matters on a path every
//! request takes. Rendered in the Prometheus text format beside the registry's output.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::Method;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every route's series.
#[derive(Default)]
pub struct RequestMetrics {
    by_route: RwLock<HashMap<Box<str>, RouteSeries, Fast>>,
}

type RouteSeries = HashMap<(Method, u16), Series, Fast>;
type Fast = BuildHasherDefault<FastHash>;

/// One label set: a count per bucket (the last is +Inf) and the total time.
#[derive(Default)]
struct Series {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Series {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl RequestMetrics {
    /// Counts one request.
    pub fn record(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        // Arbitrary methods would make arbitrary label sets.
        let method = match *method {
            Method::GET
            | Method::POST
            | Method::PUT
            | Method::PATCH
            | Method::DELETE
            | Method::HEAD
            | Method::OPTIONS => method.clone(),
            _ => Method::from_bytes(b"OTHER").unwrap_or(Method::GET),
        };
        let key = (method, status);
        // The common case: the series exists, and is updated under the read lock.
        if let Ok(map) = self.by_route.read()
            && let Some(series) = map.get(route).and_then(|r| r.get(&key))
        {
            series.observe(elapsed);
            return;
        }
        if let Ok(mut map) = self.by_route.write() {
            map.entry(route.into())
                .or_default()
                .entry(key)
                .or_default()
                .observe(elapsed);
        }
    }

    /// `http_requests_total` and `http_request_duration_seconds` in the Prometheus text
    /// format.
    pub fn render(&self) -> String {
        let Ok(map) = self.by_route.read() else {
            return String::new();
        };
        let mut rows: Vec<(&str, &Method, u16, &Series)> = map
            .iter()
            .flat_map(|(route, series)| {
                series
                    .iter()
                    .map(move |((method, status), s)| (route.as_ref(), method, *status, s))
            })
            .collect();
        rows.sort_by(|a, b| (a.0, a.1.as_str(), a.2).cmp(&(b.0, b.1.as_str(), b.2)));
        let mut out = String::new();
        out.push_str(
            "# HELP http_requests_total Requests answered, by route, method and status.\n",
        );
        out.push_str("# TYPE http_requests_total counter\n");
        for (route, method, status, series) in &rows {
            let total: u64 = series
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .sum();
            let labels = labels(method, route, *status);
            let _ = writeln!(out, "http_requests_total{{{labels}}} {total}");
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time to answer, by route, method and status.\n",
        );
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (route, method, status, series) in &rows {
            let labels = labels(method, route, *status);
            let mut cumulative = 0;
            for (i, bucket) in series.buckets.iter().enumerate() {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf".to_owned(), f64::to_string);
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "http_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {cumulative}"
            );
        }
        out
    }
}

fn labels(method: &Method, route: &str, status: u16) -> String {
    let route = route.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "method=\"{}\",route=\"{route}\",status=\"{status}\"",
        method.as_str()
    )
}

/// A small multiply-rotate hash for the keys: they are few, short and chosen by the
/// router, not by clients, so SipHash's flooding resistance buys nothing here.
#[derive(Default)]
pub struct FastHash(u64);

impl Hasher for FastHash {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_and_bucketed_by_route_method_and_status() {
        let metrics = RequestMetrics::default();
        metrics.record(&Method::GET, "/a", 200, Duration::from_micros(800));
        metrics.record(&Method::GET, "/a", 200, Duration::from_millis(30));
        metrics.record(
            &Method::from_bytes(b"BREW").unwrap(),
            "/a",
            405,
            Duration::ZERO,
        );

        let text = metrics.render();

        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/a",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_requests_total{method="OTHER",route="/a",status="405"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/a",status="200",le="0.001"} 1"#), "{text}");
        assert!(text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/a",status="200",le="0.05"} 2"#), "{text}");
        assert!(
            text.contains(
                r#"http_request_duration_seconds_count{method="GET",route="/a",status="200"} 2"#
            ),
            "{text}"
        );
    }
}
