//! Keyset cursors for listings ordered by a time and an id (dead jobs, the audit log):
//! the last row's `(time, id)` as opaque base64url text, so a page never shifts when rows
//! are added in front of it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};

/// Where a page starts: after the row with this time and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    pub at: DateTime<Utc>,
    pub id: uuid::Uuid,
}

/// Why a cursor was refused.
#[derive(Debug, thiserror::Error)]
#[error("the cursor is not one this API returned")]
pub struct BadCursor;

/// The cursor of the page after the row at `at` with `id`.
pub fn encode(at: DateTime<Utc>, id: uuid::Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

/// Cuts `rows`, read with one row more than `limit`, to `limit`, and returns the cursor of
/// the page after them when that extra row showed there is one. `key` gives a row's time
/// and id.
pub fn next_page<T>(
    rows: &mut Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> (DateTime<Utc>, uuid::Uuid),
) -> Option<String> {
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(|row| {
        let (at, id) = key(row);
        encode(at, id)
    })
}

/// Reads a cursor [`encode`] made.
pub fn decode(cursor: &str) -> Result<After, BadCursor> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| BadCursor)?;
    let raw = String::from_utf8(raw).map_err(|_| BadCursor)?;
    let (micros, id) = raw.split_once('|').ok_or(BadCursor)?;
    let micros: i64 = micros.parse().map_err(|_| BadCursor)?;
    let at = Utc.timestamp_micros(micros).single().ok_or(BadCursor)?;
    Ok(After {
        at,
        id: id.parse().map_err(|_| BadCursor)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let at = Utc.timestamp_micros(1_800_000_000_123_456).unwrap();
        let id = uuid::Uuid::now_v7();
        assert_eq!(decode(&encode(at, id)).unwrap(), After { at, id });
        for bad in ["", "not base64!", "MTIz", &URL_SAFE_NO_PAD.encode("x|y")] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
