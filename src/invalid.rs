//! A request or payload field that is not acceptable, named by its path. Every domain's
//! checks return it; the HTTP edge turns it into a 422 problem whose `field` names it.

/// A payload or request field that is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field at fault, as a dotted path (`payload.url`).
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
