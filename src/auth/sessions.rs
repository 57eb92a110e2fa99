//! Console sessions: what a signed-in browser holds instead of a key. Signing in with the
//! admin token or an API key makes a session in Redis; the browser keeps only its id, in
//! an HttpOnly, `SameSite=Strict` cookie (`Secure` behind HTTPS), and never the key.
//!
//! A session names who signed in (`root`, or a key by its prefix, whose revocation or
//! expiry ends the session's rights as it ends the key's) and carries a CSRF token: a
//! request that changes something must send it in `X-CSRF-Token`, which another site's
//! page cannot read. Redis keeps each session under the SHA-256 of its id, so a copy of
//! Redis holds no usable cookie, and forgets it when it expires; signing out removes it.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use deadpool_redis::redis::AsyncCommands;
use ring::digest;
use serde::{Deserialize, Serialize};

/// The cookie a session id travels in.
pub const COOKIE: &str = "sy_console";
/// The header a state-changing request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who signed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Holder {
    /// The admin token.
    Root,
    /// An API key, by its prefix.
    Key { prefix: String },
}

/// One signed-in browser.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub holder: Holder,
    /// Sent back in `X-CSRF-Token` by every request that changes something.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Sessions under `<prefix>console:session:`.
#[derive(Clone)]
pub struct Sessions {
    redis: crate::redis::Redis,
    prefix: String,
    lifetime: Duration,
}

impl Sessions {
    pub fn new(redis: crate::redis::Redis, key_prefix: &str, lifetime: Duration) -> Self {
        Self {
            redis,
            prefix: format!("{key_prefix}console:session:"),
            lifetime,
        }
    }

    /// How long a session lasts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session for `holder`: its id (for the cookie) and the session.
    pub async fn start(&self, holder: Holder) -> anyhow::Result<(String, Session)> {
        let id = random_token()?;
        let session = Session {
            holder,
            csrf: random_token()?,
            expires_at: Utc::now()
                + chrono::Duration::from_std(self.lifetime).unwrap_or(chrono::Duration::hours(8)),
        };
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        let _: () = conn
            .set_ex(
                self.key(&id),
                serde_json::to_string(&session)?,
                self.lifetime.as_secs().max(1),
            )
            .await
            .context("failed to store the console session")?;
        Ok((id, session))
    }

    /// The session `id` names, while it lasts.
    pub async fn find(&self, id: &str) -> anyhow::Result<Option<Session>> {
        if !plausible(id) {
            return Ok(None);
        }
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        let stored: Option<String> = conn
            .get(self.key(id))
            .await
            .context("failed to read the console session")?;
        Ok(stored
            .and_then(|json| serde_json::from_str::<Session>(&json).ok())
            .filter(|s| s.expires_at > Utc::now()))
    }

    /// Ends the session `id`.
    pub async fn end(&self, id: &str) -> anyhow::Result<()> {
        if !plausible(id) {
            return Ok(());
        }
        let mut conn = self.redis.get().await.context("no Redis connection")?;
        let _: () = conn
            .del(self.key(id))
            .await
            .context("failed to end the console session")?;
        Ok(())
    }

    fn key(&self, id: &str) -> String {
        let hash = digest::digest(&digest::SHA256, id.as_bytes());
        let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{hex}", self.prefix)
    }
}

/// Whether `csrf` is the session's token (compared in constant time).
pub fn csrf_matches(session: &Session, csrf: Option<&str>) -> bool {
    csrf.is_some_and(|given| super::constant_time_eq(given.as_bytes(), session.csrf.as_bytes()))
}

/// The session id in a `Cookie` header, if any.
pub fn from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// 256 random bits, base64url.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `id` could be one of ours: 43 base64url characters.
fn plausible(id: &str) -> bool {
    id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(from_cookies("a=1; sy_console=abc; b=2"), Some("abc"));
        assert_eq!(from_cookies("sy_console=abc"), Some("abc"));
        assert_eq!(from_cookies("sy_consolex=abc"), None);
        assert_eq!(from_cookies(""), None);
    }

    #[test]
    fn tokens_are_random_and_shaped_as_ids() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_ne!(a, b);
        assert!(plausible(&a), "{a}");
        assert!(!plausible("short"));
        assert!(!plausible(&format!("{}!", &a[..42])));
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let session = Session {
            holder: Holder::Root,
            csrf: "token".into(),
            expires_at: Utc::now(),
        };
        assert!(csrf_matches(&session, Some("token")));
        assert!(!csrf_matches(&session, Some("tokeN")));
        assert!(!csrf_matches(&session, None));
    }
}
