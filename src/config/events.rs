//! `[audit]`, `[events]`, `[webhooks]` and `[encryption]`: how long the audit log and
//! relayed events are kept, how the relay batches, how webhook deliveries retry and when a
//! failing endpoint is disabled, and the key that seals stored secrets.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{Check, Secret, list_or_csv, positive};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    pub retention_days: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    /// Relayed events older than this are removed by the `deletes` job.
    pub retention_days: u32,
    /// Events one relay pass claims.
    pub relay_batch: usize,
    /// The relay polls this often when no notification wakes it.
    pub relay_poll_ms: u64,
    /// The largest `data` of one event, as JSON text.
    pub max_data_bytes: usize,
}

impl EventsSettings {
    pub fn relay_poll(&self) -> Duration {
        Duration::from_millis(self.relay_poll_ms)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSettings {
    /// The waits between attempts, e.g. `["5s", "5m", "30m"]`: a delivery gets one attempt
    /// more than there are waits.
    #[serde(deserialize_with = "list_or_csv")]
    pub retry_schedule: Vec<String>,
    /// Each wait is moved by up to this fraction of itself, either way.
    pub retry_jitter: f64,
    /// After a secret rotation, deliveries carry both signatures for this long.
    pub secret_overlap_hours: u32,
    /// An endpoint whose every attempt has failed for this long is disabled.
    pub disable_after_days: u32,
    /// An endpoint whose deliveries failed this many times in a row is disabled.
    pub disable_after_failures: u32,
}

impl WebhooksSettings {
    /// The retry waits; validated at load, so an entry that does not parse is skipped.
    pub fn retry_waits(&self) -> Vec<Duration> {
        self.retry_schedule
            .iter()
            .filter_map(|w| parse_duration(w))
            .collect()
    }

    /// Attempts one delivery gets.
    pub fn attempts(&self) -> u32 {
        self.retry_schedule.len() as u32 + 1
    }

    pub fn secret_overlap(&self) -> Duration {
        Duration::from_secs(u64::from(self.secret_overlap_hours) * 3600)
    }

    pub fn disable_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.disable_after_days) * 86_400)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSettings {
    /// 32 bytes, base64: seals webhook secrets and database passwords at rest.
    #[serde(default)]
    pub key: Option<Secret>,
    /// The key before a rotation; still opens what it sealed.
    #[serde(default)]
    pub previous_key: Option<Secret>,
}

impl EncryptionSettings {
    /// The current key's bytes, when set (validated at load).
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        self.key.as_ref().and_then(|k| decode_key(k.expose()))
    }

    pub fn previous_key_bytes(&self) -> Option<[u8; 32]> {
        self.previous_key
            .as_ref()
            .and_then(|k| decode_key(k.expose()))
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    STANDARD.decode(text.trim()).ok()?.try_into().ok()
}

/// `250ms`, `5s`, `5m`, `2h` or `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

pub(super) fn validate(
    audit: &AuditSettings,
    events: &EventsSettings,
    webhooks: &WebhooksSettings,
    encryption: &EncryptionSettings,
) -> Check {
    positive(&[
        ("audit.retention_days", audit.retention_days.into()),
        ("events.retention_days", events.retention_days.into()),
        ("events.relay_batch", events.relay_batch as u64),
        ("events.relay_poll_ms", events.relay_poll_ms),
        ("events.max_data_bytes", events.max_data_bytes as u64),
        (
            "webhooks.disable_after_days",
            webhooks.disable_after_days.into(),
        ),
        (
            "webhooks.disable_after_failures",
            webhooks.disable_after_failures.into(),
        ),
    ])?;
    if events.relay_batch > 5000 {
        return Err(("events.relay_batch", "must be at most 5000".into()));
    }
    if events.max_data_bytes > 16 << 20 {
        return Err(("events.max_data_bytes", "must be at most 16 MiB".into()));
    }
    if webhooks.retry_schedule.len() > 30 {
        return Err((
            "webhooks.retry_schedule",
            "must have at most 30 waits".into(),
        ));
    }
    for wait in &webhooks.retry_schedule {
        match parse_duration(wait) {
            Some(d) if d <= Duration::from_secs(86_400) => {}
            Some(_) => {
                return Err((
                    "webhooks.retry_schedule",
                    format!("{wait:?} is longer than a day"),
                ));
            }
            None => {
                return Err((
                    "webhooks.retry_schedule",
                    format!("{wait:?} is not a wait such as 500ms, 5s, 5m, 2h or 1d"),
                ));
            }
        }
    }
    if !(0.0..=0.5).contains(&webhooks.retry_jitter) {
        return Err(("webhooks.retry_jitter", "must be between 0 and 0.5".into()));
    }
    for (key, value) in [
        ("encryption.key", &encryption.key),
        ("encryption.previous_key", &encryption.previous_key),
    ] {
        if let Some(value) = value
            && decode_key(value.expose()).is_none()
        {
            return Err((
                key,
                "must be 32 bytes encoded as base64 (generate one with: openssl rand -base64 32)"
                    .into(),
            ));
        }
    }
    if encryption.key.is_none() && encryption.previous_key.is_some() {
        return Err((
            "encryption.key",
            "must be set when encryption.previous_key is: the previous key only opens, it never seals"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_with_their_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("10h"), Some(Duration::from_secs(36_000)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        for bad in ["", "5", "s", "5 weeks", "-5s", "5.5s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
