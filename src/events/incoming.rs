//! An application's event as `POST /api/v1/events` receives it, checked field by field
//! and turned into an [`Event`]. Ids are the client's (so a repeat is a no-op), derived
//! from the request's `Idempotency-Key` (so a retried request is one), or fresh.

use chrono::{DateTime, Utc};
use ring::digest::{SHA256, digest};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::{Event, new_id, reserved_type, trunc, valid_type};
use crate::invalid::Invalid;

/// One application event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Unique per event, 1 to 128 characters of letters, digits and `._-:`; a repeat of a
    /// stored id is a no-op. Generated when absent.
    pub id: Option<String>,
    /// What happened, e.g. `user.signup`: dot-separated names of letters, digits and
    /// `_-/:`. Switchyard's own namespaces (`files`, `jobs`, ...) are refused.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who sent it, e.g. the application's name; `app` when absent.
    pub source: Option<String>,
    /// What it is about, e.g. a user's id.
    pub subject: Option<String>,
    /// When it happened; now when absent.
    pub time: Option<DateTime<Utc>>,
    /// Any JSON; `{}` when absent. Delivered exactly as sent.
    #[schema(value_type = Object)]
    pub data: Option<Box<RawValue>>,
    /// A realtime channel to publish it on as well.
    pub channel: Option<String>,
}

impl NewEvent {
    /// Checks every field and builds the event. `key` is the request's idempotency key
    /// and `index` the event's place in it, for an id derived from both.
    pub fn into_event(
        self,
        max_data_bytes: usize,
        key: Option<&str>,
        index: usize,
    ) -> Result<Event, Refused> {
        let id = match (self.id, key) {
            (Some(id), _) => {
                if id.is_empty()
                    || id.len() > 128
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
                {
                    return Err(Invalid::new(
                        "id",
                        "must be 1-128 characters of letters, digits, '.', '_', '-' or ':'",
                    )
                    .into());
                }
                id
            }
            (None, Some(key)) => derived_id(key, index),
            (None, None) => new_id(),
        };
        if !valid_type(&self.kind) {
            return Err(Invalid::new(
                "type",
                "must be 1-128 characters: dot-separated names of letters, digits, '_', '-', '/' or ':'",
            )
            .into());
        }
        if reserved_type(&self.kind) {
            return Err(Invalid::new(
                "type",
                format!(
                    "the namespaces {} are Switchyard's own events",
                    super::RESERVED_NAMESPACES.join(", ")
                ),
            )
            .into());
        }
        let bounded = |field: &str, value: &Option<String>| match value {
            Some(v) if v.is_empty() || v.chars().count() > 256 => {
                Err(Invalid::new(field, "must be 1-256 characters"))
            }
            _ => Ok(()),
        };
        bounded("source", &self.source)?;
        bounded("subject", &self.subject)?;
        if let Some(channel) = &self.channel {
            crate::realtime::channel::check(channel)
                .map_err(|problem| Invalid::new("channel", problem))?;
            if self.kind.len() > 64 || self.kind.contains('/') {
                return Err(Invalid::new(
                    "channel",
                    "an event published on realtime needs a type of at most 64 characters without '/'",
                )
                .into());
            }
        }
        let data = match self.data {
            Some(data) => data,
            None => RawValue::from_string("{}".into()).unwrap_or_default(),
        };
        Ok(Event {
            id,
            kind: self.kind,
            actor: self.source.clone().unwrap_or_else(|| "app".into()),
            source: self.source.unwrap_or_else(|| "app".into()),
            subject: self.subject,
            time: trunc(self.time.unwrap_or_else(Utc::now)),
            data: check_size(data, max_data_bytes).map_err(Refused::TooLarge)?,
            channel: self.channel,
            resource_type: None,
        })
    }
}

/// Why an event is refused: a field that is not acceptable (422), or `data` too large
/// (413). Each names its field.
#[derive(Debug)]
pub enum Refused {
    Invalid(Invalid),
    TooLarge(Invalid),
}

impl From<Invalid> for Refused {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

impl Refused {
    /// The same refusal with its field under `prefix` (`events[3].`).
    pub fn under(self, prefix: &str) -> Self {
        let moved = |i: Invalid| Invalid::new(format!("{prefix}{}", i.field), i.message);
        match self {
            Self::Invalid(i) => Self::Invalid(moved(i)),
            Self::TooLarge(i) => Self::TooLarge(moved(i)),
        }
    }
}

/// Why `data` is refused for its size: a 413, not a 422.
pub fn data_too_large(size: usize, limit: usize) -> Invalid {
    Invalid::new(
        "data",
        format!("is {size} bytes of JSON; the limit (events.max_data_bytes) is {limit}"),
    )
}

fn check_size(data: Box<RawValue>, limit: usize) -> Result<Box<RawValue>, Invalid> {
    let size = data.get().len();
    if size > limit {
        return Err(data_too_large(size, limit));
    }
    Ok(data)
}

/// The id of the `index`th event of a request with idempotency key `key`: the same for a
/// repeat of the request, different for any other key.
fn derived_id(key: &str, index: usize) -> String {
    let hash = digest(&SHA256, format!("{key}\n{index}").as_bytes());
    let hex: String = hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("evt_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_gives_each_event_of_a_request_a_stable_id() {
        assert_eq!(derived_id("k", 0), derived_id("k", 0));
        assert_ne!(derived_id("k", 0), derived_id("k", 1));
        assert_ne!(derived_id("k", 0), derived_id("j", 0));
    }
}
