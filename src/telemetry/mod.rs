//! What a process tells its operators: logs (one line per event: JSON with `level`,
//! `message`, `target`, the event's and its spans' fields, and the process's `mode`,
//! `service` and `replica` when stdout is not a terminal or `LOG_FORMAT=json`, so Railway's
//! log explorer can filter on every field; a readable line on a terminal), the metrics
//! registry behind `/metrics`, the request series the HTTP edge records ([`requests`]),
//! and who this process is ([`Identity`]).

pub mod exposition;
pub mod process;
pub mod requests;

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{Check, LogFormat, LogSettings, Settings};

/// Who is logging; stamped on every line.
#[derive(Clone, Debug)]
pub struct Identity {
    pub mode: &'static str,
    pub service: String,
    pub replica: String,
}

impl Identity {
    pub fn new(mode: &'static str, settings: &Settings) -> Self {
        Self {
            mode,
            service: settings.service_name().to_string(),
            replica: settings.replica_id().to_string(),
        }
    }

    /// A fresh, unique name to hold leases under (a worker's jobs, the scheduler's
    /// leadership): replica, pid and a random part, so replicas and restarts never mistake
    /// each other's leases.
    pub fn lease_holder(&self) -> String {
        let mut random = [0u8; 4];
        let _ = getrandom::fill(&mut random);
        let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{}:{random}", self.replica, std::process::id())
    }
}

/// The logging rule of the settings: the filter in force must parse.
pub fn check_settings(log: &LogSettings) -> Check {
    let (key, directive) = log.directive();
    parse_filter(directive)
        .map(|_| ())
        .map_err(|e| (key, format!("not a valid log level or filter ({e})")))
}

/// Crates whose trace output carries what passes through them: request and response bytes
/// with their headers (ureq, hyper, h2, reqwest), WebSocket frames with the tokens in them
/// (tungstenite), TLS records (rustls), queries (sqlx) and Redis commands.
const THIRD_PARTY: &[&str] = &[
    "ureq",
    "ureq_proto",
    "rustls",
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "sqlx",
    "redis",
    "deadpool",
    "deadpool_redis",
    "object_store",
    "axum",
    "tower",
    "mio",
    "want",
];

/// Caps the crates in [`THIRD_PARTY`] at `debug` when the filter's default level is
/// `trace`, so that `LOG_LEVEL=trace` never writes a credential a dependency saw. A crate
/// the filter names (`RUST_LOG=trace,ureq=trace`) gets what it asks for.
pub fn cap_third_party(directive: &str) -> String {
    let parts: Vec<&str> = directive
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let default_is_trace = parts.iter().any(|p| p.eq_ignore_ascii_case("trace"));
    if !default_is_trace {
        return directive.to_owned();
    }
    let named = |krate: &str| {
        parts.iter().any(|p| {
            let target = p.split(['=', '[']).next().unwrap_or_default();
            target == krate
                || target
                    .strip_prefix(krate)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
    };
    let mut capped = directive.to_owned();
    for krate in THIRD_PARTY.iter().filter(|k| !named(k)) {
        capped.push_str(&format!(",{krate}=debug"));
    }
    capped
}

/// Parses `LOG_LEVEL` or `RUST_LOG`.
pub fn parse_filter(directive: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(directive)
        .map_err(|e| e.to_string())
}

/// Installs the global subscriber. Later calls (tests running modes in one process) are
/// ignored, which keeps the first one.
pub fn init(settings: &Settings, identity: Identity, logs_to_stderr: bool) {
    let (_, directive) = settings.log.directive();
    // Validated at load time; fall back to info rather than fail after validation passed.
    let filter =
        parse_filter(&cap_third_party(directive)).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    // One-shot commands print their result on stdout, so their logs go to stderr.
    let to_stderr = logs_to_stderr;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    let result = if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLine { identity })
            .try_init()
    } else {
        builder
            .event_format(PrettyLine {
                identity,
                inner: Format::default(),
            })
            .try_init()
    };
    // Err means a subscriber is already set: in tests that run several modes in one process.
    let _ = result;
}

/// Formats each event as one JSON object.
struct JsonLine {
    identity: Identity,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert(
            "level".into(),
            Value::from(meta.level().as_str().to_ascii_lowercase()),
        );
        line.insert("target".into(), Value::from(meta.target()));
        // Span fields first (outermost to innermost), then the event's own, which win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(map);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        line.insert("mode".into(), Value::from(self.identity.mode));
        line.insert(
            "service".into(),
            Value::from(self.identity.service.as_str()),
        );
        line.insert(
            "replica".into(),
            Value::from(self.identity.replica.as_str()),
        );
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // `{:#}` would need anyhow; walk the chain so the cause is in the same line.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().into(), Value::from(text));
    }
}

/// The usual human-readable line, prefixed with the mode, service and replica.
struct PrettyLine {
    identity: Identity,
    inner: Format<Full>,
}

impl<S> FormatEvent<S, DefaultFields> for PrettyLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, DefaultFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(
            writer,
            "[{} {}/{}] ",
            self.identity.mode, self.identity.service, self.identity.replica
        )?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// The Prometheus recorder. The `metrics` facade is process-wide by design, so the
/// recorder is installed once and every mode in the process (and every in-process test
/// server) shares its handle.
pub fn metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may exist when Switchyard is embedded as a library; the
            // handle then renders only what reached ours, which is still correct.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok();
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::cap_third_party;

    #[test]
    fn trace_caps_dependencies_at_debug_unless_the_filter_names_them() {
        let capped = cap_third_party("trace");
        assert!(capped.starts_with("trace,"), "{capped}");
        for krate in [
            "ureq=debug",
            "tungstenite=debug",
            "hyper=debug",
            "rustls=debug",
        ] {
            assert!(capped.split(',').any(|d| d == krate), "{krate} in {capped}");
        }
        let named = cap_third_party("trace,ureq=trace,hyper::proto=trace");
        assert!(!named.contains("ureq=debug") && !named.contains("hyper=debug"));
        assert!(named.contains("tungstenite=debug"), "{named}");
        assert_eq!(cap_third_party("info"), "info");
        assert_eq!(
            cap_third_party("info,switchyard=trace"),
            "info,switchyard=trace"
        );
        assert!(super::parse_filter(&capped).is_ok());
    }
}
