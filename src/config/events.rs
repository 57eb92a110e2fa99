//! `[audit]`: how long audit rows are kept. The events and webhooks sections join here.

use serde::{Deserialize, Serialize};

use super::{Check, positive};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    pub retention_days: u32,
}

pub(super) fn validate(audit: &AuditSettings) -> Check {
    positive(&[("audit.retention_days", audit.retention_days.into())])
}
