//! Upload tokens: what lets a browser upload a file without ever holding a server
//! credential. A backend with `files:write` asks for one (`POST /api/v1/files/upload-tokens`)
//! and hands it to the browser, which posts the file with it and nothing else.
//!
//! A token is `syu_<claims>.<signature>`: the [`Grant`] as base64url JSON, and an
//! HMAC-SHA256 of that text under a key derived from `app.secret` for this one purpose (so
//! it cannot pass for a signed URL or a realtime token, nor they for it). Everything the
//! token allows is in it and signed, so checking one needs no lookup, and every replica
//! checks it alike. Only a single-use token's use is stored: a row in
//! `storage_upload_token_uses`, written in the transaction that records its file, so a
//! replay (even one racing the first use) cannot make a second file.
//!
//! A token outlives nothing it was made from: its lifetime is at most a day, and it is not
//! withdrawn when the key that asked for it is revoked, so keep lifetimes short.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::names;
use crate::config::{Secret, type_matches};

/// How every upload token starts, so it is told from an API key at a glance.
pub const PREFIX: &str = "syu_";
/// The longest lifetime a token may ask for.
pub const MAX_LIFETIME_SECONDS: u64 = 86_400;

/// What one upload token allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The token's id; also the id of the file a presigned S3 upload makes.
    pub id: uuid::Uuid,
    pub bucket: String,
    /// Bytes; never more than the bucket allows.
    pub max_size: u64,
    /// Media types, families and extensions accepted on top of the bucket's own rule;
    /// empty adds none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_types: Vec<String>,
    /// Every file name made with the token starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Makes one file, then is refused.
    #[serde(default)]
    pub single_use: bool,
    /// Unix seconds.
    pub expires: i64,
    /// Who asked for the token: `admin` or `key:<prefix>`.
    pub issuer: String,
}

impl Grant {
    /// Whether a file of this type and name may be made with the token (the bucket's own
    /// rule is checked besides).
    pub fn accepts(&self, content_type: &str, name: &str) -> bool {
        self.content_types.is_empty() || type_matches(&self.content_types, content_type, name)
    }

    /// The name a file gets: the client's name made safe, under the token's prefix.
    pub fn name(&self, given: &str) -> String {
        let name = names::clean_name(given);
        match &self.name_prefix {
            Some(prefix) if !name.starts_with(prefix.as_str()) => {
                names::clean_name(&format!("{prefix}{name}"))
            }
            _ => name,
        }
    }

    /// How events and logs name a caller holding this token.
    pub fn actor(&self) -> String {
        format!("upload:{}", self.id)
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this is not an upload token")]
    Malformed,
    #[error("this upload token's signature is not valid")]
    BadSignature,
    #[error("this upload token expired")]
    Expired,
    #[error("this single-use upload token has already made its file")]
    Used,
}

/// The key upload tokens are signed with.
#[derive(Clone)]
pub struct GrantKey(hmac::Key);

impl GrantKey {
    pub fn derive(secret: &Secret) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
        let derived = hmac::sign(&root, b"switchyard storage upload token v1");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// The token carrying `grant`.
    pub fn sign(&self, grant: &Grant) -> String {
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).unwrap_or_default());
        let signature = URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, claims.as_bytes()));
        format!("{PREFIX}{claims}.{signature}")
    }

    /// The grant `token` carries, once its signature (checked in constant time) and then
    /// its expiry against `now` hold. Whether a single-use token was used is [`used`].
    pub fn verify(&self, token: &str, now: i64) -> Result<Grant, Refusal> {
        let (claims, signature) = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or(Refusal::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refusal::BadSignature)?;
        hmac::verify(&self.0, claims.as_bytes(), &signature).map_err(|_| Refusal::BadSignature)?;
        // Signed by this key, so made here: a claim that does not parse is a bug's token.
        let grant: Grant = URL_SAFE_NO_PAD
            .decode(claims)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(Refusal::Malformed)?;
        if grant.expires <= now {
            return Err(Refusal::Expired);
        }
        Ok(grant)
    }
}

/// Whether `token` is shaped as an upload token (not whether it is valid).
pub fn is_upload_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Whether the single-use token `id` has made its file.
pub async fn used(db: &sqlx::PgPool, id: uuid::Uuid) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM storage_upload_token_uses WHERE id = $1)")
        .bind(id)
        .fetch_one(db)
        .await
        .context("failed to read an upload token's use")
}

/// Records that the single-use `grant` made `file_id`, inside the transaction that
/// records the file; false when it already had (the caller then records nothing).
pub async fn claim(
    conn: &mut sqlx::PgConnection,
    grant: &Grant,
    file_id: uuid::Uuid,
) -> anyhow::Result<bool> {
    let expires_at = chrono::DateTime::from_timestamp(grant.expires, 0).unwrap_or_default();
    let claimed = sqlx::query(
        "INSERT INTO storage_upload_token_uses (id, file_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(grant.id)
    .bind(file_id)
    .bind(expires_at)
    .execute(conn)
    .await
    .context("failed to record an upload token's use")?;
    Ok(claimed.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> GrantKey {
        GrantKey::derive(&Secret::new(secret.to_owned()))
    }

    fn grant() -> Grant {
        Grant {
            id: uuid::Uuid::now_v7(),
            bucket: "avatars".into(),
            max_size: 1024,
            content_types: vec!["image/*".into()],
            name_prefix: Some("user-7-".into()),
            single_use: true,
            expires: 1_000,
            issuer: "key:abc".into(),
        }
    }

    #[test]
    fn a_token_carries_its_grant_until_it_expires() {
        let key = key("0123456789abcdef0123456789abcdef");
        let token = key.sign(&grant());
        assert!(is_upload_token(&token));
        let back = key.verify(&token, 999).unwrap();
        assert_eq!(back.bucket, "avatars");
        assert_eq!(back.max_size, 1024);
        assert_eq!(key.verify(&token, 1_000), Err(Refusal::Expired));
    }

    #[test]
    fn a_changed_claim_or_another_key_breaks_the_signature() {
        let key = key("0123456789abcdef0123456789abcdef");
        let token = key.sign(&grant());
        let (claims, signature) = token.strip_prefix(PREFIX).unwrap().split_once('.').unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        json["max_size"] = 1_000_000_000.into();
        let forged = format!(
            "{PREFIX}{}.{signature}",
            URL_SAFE_NO_PAD.encode(json.to_string())
        );
        assert_eq!(key.verify(&forged, 0), Err(Refusal::BadSignature));
        let other = super::tests::key("fedcba9876543210fedcba9876543210");
        assert_eq!(other.verify(&token, 0), Err(Refusal::BadSignature));
        assert_eq!(key.verify("sy_abc_def", 0), Err(Refusal::Malformed));
        assert_eq!(key.verify("syu_nodot", 0), Err(Refusal::Malformed));
        assert_eq!(
            key.verify(&format!("{token}x!"), 0),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn names_land_under_the_prefix_once_and_types_narrow_the_bucket() {
        let grant = grant();
        assert_eq!(grant.name("me.png"), "user-7-me.png");
        assert_eq!(grant.name("user-7-me.png"), "user-7-me.png");
        assert_eq!(grant.name("../../etc/passwd"), "user-7-passwd");
        assert!(grant.accepts("image/png", "me.png"));
        assert!(!grant.accepts("application/pdf", "me.pdf"));
        let open = Grant {
            content_types: Vec::new(),
            ..grant
        };
        assert!(open.accepts("application/pdf", "me.pdf"));
    }
}
