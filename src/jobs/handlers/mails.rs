//! `mails`: sends an email through a Resend-compatible HTTP API, or writes it to the log
//! with the `log` driver in development. The job id is the API's idempotency key, so a job
//! delivered twice sends one mail. Logs carry the subject and the recipient count, never
//! an address.

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use crate::config::{MailDriver, MailSettings};
use crate::invalid::Invalid;
use crate::jobs::{Job, JobContext, JobError};
use crate::outbound;

pub struct Mails {
    settings: MailSettings,
}

impl Mails {
    pub fn new(settings: &MailSettings) -> Self {
        Self {
            settings: settings.clone(),
        }
    }
}

/// One address or several.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    fn list(&self) -> Vec<&str> {
        match self {
            Self::One(one) => vec![one.as_str()],
            Self::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailPayload {
    pub to: Recipients,
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    /// The sender; `mail.from` when absent.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// The body the Resend API takes.
#[derive(Serialize)]
struct Outgoing<'a> {
    from: &'a str,
    to: Vec<&'a str>,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
}

fn looks_like_address(address: &str) -> bool {
    let address = address.trim();
    // "Name <a@b>" or "a@b": one @ with something on each side.
    let bare = match (address.rfind('<'), address.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => address,
    };
    matches!(bare.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !bare.contains(char::is_whitespace))
}

impl Job for Mails {
    const NAME: &'static str = "mails";
    const QUEUE: &'static str = "mails";
    type Payload = MailPayload;

    fn validate(payload: &MailPayload) -> Result<(), Invalid> {
        let to = payload.to.list();
        if to.is_empty() || to.len() > 50 {
            return Err(Invalid::new("payload.to", "name 1 to 50 recipients"));
        }
        if let Some(i) = to.iter().position(|a| !looks_like_address(a)) {
            return Err(Invalid::new(
                format!("payload.to[{i}]"),
                "is not an email address",
            ));
        }
        if payload.subject.trim().is_empty() {
            return Err(Invalid::new("payload.subject", "must not be empty"));
        }
        if payload.text.is_none() && payload.html.is_none() {
            return Err(Invalid::new("payload.text", "give text, html or both"));
        }
        if let Some(from) = &payload.from
            && !looks_like_address(from)
        {
            return Err(Invalid::new("payload.from", "is not an email address"));
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext, payload: MailPayload) -> Result<(), JobError> {
        let recipients = payload.to.list();
        if self.settings.driver == MailDriver::Log {
            tracing::info!(
                job_id = ctx.id,
                subject = payload.subject,
                recipients = recipients.len(),
                "mail written to the log (mail.driver = log)"
            );
            return Ok(());
        }
        let from = payload
            .from
            .as_deref()
            .or(self.settings.from.as_deref())
            .ok_or_else(|| JobError::Fatal(anyhow!("no sender: set mail.from (MAIL_FROM)")))?;
        let key = self
            .settings
            .api_key
            .as_ref()
            .ok_or_else(|| anyhow!("mail.api_key (MAIL_API_KEY) is not set"))?;
        let body = serde_json::to_vec(&Outgoing {
            from,
            to: recipients,
            subject: &payload.subject,
            text: payload.text.as_deref(),
            html: payload.html.as_deref(),
            reply_to: payload.reply_to.as_deref(),
        })
        .map_err(|e| JobError::Fatal(e.into()))?;
        let url = self
            .settings
            .base_url
            .join("emails")
            .map_err(|e| JobError::Fatal(e.into()))?;
        let request = outbound::Request {
            method: "POST".into(),
            url,
            headers: vec![
                ("authorization".into(), format!("Bearer {}", key.expose())),
                ("content-type".into(), "application/json".into()),
                ("idempotency-key".into(), ctx.id.clone()),
            ],
            body: Some(body),
        };
        super::deliver(ctx, request, "the mail API").await?;
        tracing::info!(job_id = ctx.id, subject = payload.subject, "mail sent");
        Ok(())
    }
}
