//! `[app]` and `[railway]`: who this deployment is, its root credentials, and what
//! Railway tells a replica about itself.

use serde::{Deserialize, Serialize};

use super::{Check, Secret};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// Which `config/<env>.toml` overlay was loaded (`APP_ENV`, else Railway's environment).
    pub env: String,
    /// The root key: a bearer token with every scope, for bootstrap. Unset means only API
    /// keys open anything.
    pub admin_token: Option<Secret>,
    /// `false` turns the admin token off once API keys exist, without unsetting it.
    #[serde(default = "yes")]
    pub admin_token_enabled: bool,
    /// Key for signing (signed URLs, realtime tokens).
    pub secret: Option<Secret>,
    /// Where clients reach the API (`https://api.example.com`), for the links it hands
    /// out; `https://$RAILWAY_PUBLIC_DOMAIN` when unset, else the request's own host.
    pub public_url: Option<url::Url>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RailwaySettings {
    pub environment_name: Option<String>,
    pub service_name: Option<String>,
    pub replica_id: Option<String>,
    /// The container's host name, the replica's name when Railway gives none.
    pub hostname: Option<String>,
    /// The service's public domain, when Railway generated one.
    pub public_domain: Option<String>,
}

fn yes() -> bool {
    true
}

pub(super) fn validate(app: &AppSettings) -> Check {
    if let Some(token) = &app.admin_token
        && token.expose().len() < 16
    {
        return Err(("app.admin_token", "must be at least 16 characters".into()));
    }
    if let Some(secret) = &app.secret
        && secret.expose().len() < 32
    {
        return Err(("app.secret", "must be at least 32 characters".into()));
    }
    if let Some(url) = &app.public_url
        && (!["http", "https"].contains(&url.scheme()) || url.host().is_none())
    {
        return Err((
            "app.public_url",
            "must be an http:// or https:// URL with a host".into(),
        ));
    }
    Ok(())
}
