//! Partial updates (`PATCH`): a field sent as `null` (clear it) told apart from one left
//! out (keep it). Use with `#[serde(default, deserialize_with = "crate::patch::nullable")]`
//! on an `Option<Option<T>>`.

use serde::{Deserialize, Deserializer};

/// `Some(None)` for `null`, `Some(Some(v))` for a value; a missing field stays `None`
/// through `#[serde(default)]`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}
