//! `[outbound]` and `[mail]`: the guarded client every outgoing call goes through, and
//! the mail driver on top of it. A host pattern's and a signing secret's syntax are
//! checked by `outbound`, which owns both.

use serde::{Deserialize, Serialize};

use super::{Check, Secret, list_or_csv, positive};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    pub timeout_seconds: u64,
    pub max_response_bytes: usize,
    pub max_concurrent: usize,
    pub max_redirects: u32,
    /// Host patterns (`*.railway.internal`, `hooks.local`) that may resolve to private
    /// addresses.
    #[serde(deserialize_with = "list_or_csv")]
    pub allow_hosts: Vec<String>,
    /// Lifts the private-address refusal for every host (development).
    pub allow_private: bool,
    /// Standard Webhooks secret, `whsec_` + base64.
    pub signing_secret: Option<Secret>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailDriver {
    /// Writes mails to the log instead of sending them.
    Log,
    /// Sends through a Resend-compatible HTTP API.
    Resend,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub driver: MailDriver,
    pub base_url: url::Url,
    pub api_key: Option<Secret>,
    pub from: Option<String>,
}

pub(super) fn validate(outbound: &OutboundSettings, mail: &MailSettings) -> Check {
    positive(&[("outbound.timeout_seconds", outbound.timeout_seconds)])?;
    if !(1..=4096).contains(&outbound.max_concurrent) {
        return Err((
            "outbound.max_concurrent",
            "must be between 1 and 4096".into(),
        ));
    }
    if outbound.max_redirects > 20 {
        return Err(("outbound.max_redirects", "must be at most 20".into()));
    }
    if !["http", "https"].contains(&mail.base_url.scheme()) {
        return Err(("mail.base_url", "must be an http:// or https:// URL".into()));
    }
    if mail.driver == MailDriver::Resend {
        if mail.api_key.is_none() {
            return Err((
                "mail.api_key",
                "the resend mail driver needs an API key".into(),
            ));
        }
        if mail.from.is_none() {
            return Err((
                "mail.from",
                "the resend mail driver needs a sender address".into(),
            ));
        }
    }
    Ok(())
}
