//! Signed download URLs: `…/files/{id}/content?expires=<unix seconds>&signature=<sig>`,
//! where the signature is HMAC-SHA256 over the id and the expiry, base64url. The key is
//! derived from `app.secret` for this one purpose, so a signature made here can never
//! pass as anything else the secret signs (realtime tokens, for one).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::config::Secret;

/// Why a signed URL was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this signed URL expired")]
    Expired,
    #[error("this URL's signature is not valid")]
    BadSignature,
}

/// The key download URLs are signed with.
#[derive(Clone)]
pub struct UrlKey(hmac::Key);

impl UrlKey {
    pub fn derive(secret: &Secret) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
        let derived = hmac::sign(&root, b"switchyard storage download url v1");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// The signature of a URL for `id` that expires at `expires` (unix seconds).
    pub fn sign(&self, id: uuid::Uuid, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, &message(id, expires)))
    }

    /// Checks a URL's signature (in constant time) and then its expiry against `now`.
    pub fn verify(
        &self,
        id: uuid::Uuid,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), Refusal> {
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refusal::BadSignature)?;
        hmac::verify(&self.0, &message(id, expires), &given).map_err(|_| Refusal::BadSignature)?;
        if expires <= now {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

fn message(id: uuid::Uuid, expires: i64) -> Vec<u8> {
    format!("{id}\n{expires}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> UrlKey {
        UrlKey::derive(&Secret::new(secret.to_owned()))
    }

    #[test]
    fn a_signature_holds_until_its_expiry_and_for_its_file_only() {
        let key = key("0123456789abcdef0123456789abcdef");
        let id = uuid::Uuid::now_v7();
        let signature = key.sign(id, 1_000);
        assert_eq!(key.verify(id, 1_000, &signature, 999), Ok(()));
        assert_eq!(
            key.verify(id, 1_000, &signature, 1_000),
            Err(Refusal::Expired)
        );
        assert_eq!(
            key.verify(id, 2_000, &signature, 999),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            key.verify(uuid::Uuid::now_v7(), 1_000, &signature, 999),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            key.verify(id, 1_000, "not base64!", 999),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn another_secret_makes_another_signature() {
        let id = uuid::Uuid::now_v7();
        let a = key("0123456789abcdef0123456789abcdef").sign(id, 5);
        let b = key("fedcba9876543210fedcba9876543210").sign(id, 5);
        assert_ne!(a, b);
    }
}
