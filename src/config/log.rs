//! `[log]`: how much is logged and in which format. The filter's syntax is checked by
//! `telemetry`, which owns the logger.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    /// A full `RUST_LOG` directive; wins over `level` when set.
    pub filter: Option<String>,
    pub format: LogFormat,
}

impl LogSettings {
    /// The directive in force, and the key it came from.
    pub fn directive(&self) -> (&'static str, &str) {
        match &self.filter {
            Some(filter) => ("log.filter", filter),
            None => ("log.level", &self.level),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless stdout (where logs go) is a terminal.
    Auto,
    Json,
    Pretty,
}
