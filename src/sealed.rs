//! Secrets at rest: webhook signing secrets and registered database passwords are sealed
//! with AES-256-GCM under `encryption.key` before they reach Postgres, and opened only
//! where they are used. A sealed value names the key that sealed it (the first 4 bytes of
//! the key's SHA-256), so after a rotation `encryption.previous_key` still opens old rows
//! while new ones are sealed with the new key. Each value is bound to where it is stored
//! (the associated data, e.g. `webhook_endpoints.secret:<id>`), so a sealed value copied to
//! another row does not open there.

use anyhow::{Context, anyhow, bail};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};

use crate::config::EncryptionSettings;

/// The format byte of every sealed value.
const VERSION: u8 = 1;

/// The keys this process seals and opens with.
#[derive(Clone)]
pub struct Sealer {
    current: Option<Key>,
    previous: Option<Key>,
}

#[derive(Clone)]
struct Key {
    id: [u8; 4],
    aead: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(redacted)")
    }
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Self {
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest(&SHA256, bytes).as_ref()[..4]);
        // AES-256 takes any 32 bytes, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key");
        Self {
            id,
            aead: std::sync::Arc::new(LessSafeKey::new(unbound)),
        }
    }
}

/// Why a secret cannot be sealed here.
#[derive(Debug, thiserror::Error)]
#[error("encryption.key (ENCRYPTION_KEY) is not set, so secrets cannot be stored")]
pub struct NoKey;

impl Sealer {
    pub fn new(settings: &EncryptionSettings) -> Self {
        Self {
            current: settings.key_bytes().as_ref().map(Key::new),
            previous: settings.previous_key_bytes().as_ref().map(Key::new),
        }
    }

    /// Whether a key to seal with is configured.
    pub fn can_seal(&self) -> bool {
        self.current.is_some()
    }

    /// Seals `plain` for the place `context` names.
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Vec<u8>, NoKey> {
        let key = self.current.as_ref().ok_or(NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        // The system's randomness is there or the process could not have started.
        getrandom::fill(&mut nonce).map_err(|_| NoKey)?;
        let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + plain.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| NoKey)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value sealed for `context` by the current or the previous key.
    pub fn open(&self, sealed: &[u8], context: &str) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < 1 + 4 + NONCE_LEN + 16 || sealed[0] != VERSION {
            bail!("the stored secret is not in a format this version reads");
        }
        let id = &sealed[1..5];
        let key = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or_else(|| {
                anyhow!(
                    "the stored secret was sealed with a key this process does not have \
                     (set ENCRYPTION_KEY, or ENCRYPTION_KEY_PREVIOUS after a rotation)"
                )
            })?;
        let nonce: [u8; NONCE_LEN] = sealed[5..5 + NONCE_LEN].try_into().context("short nonce")?;
        let mut body = sealed[5 + NONCE_LEN..].to_vec();
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| anyhow!("the stored secret does not open: it was altered or moved"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use base64::Engine;

    fn settings(key: u8, previous: Option<u8>) -> EncryptionSettings {
        let encode = |b: u8| Secret::new(base64::engine::general_purpose::STANDARD.encode([b; 32]));
        EncryptionSettings {
            key: Some(encode(key)),
            previous_key: previous.map(encode),
        }
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_own_context() {
        let sealer = Sealer::new(&settings(1, None));
        let sealed = sealer.seal(b"hunter2", "databases.password:a").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            sealer.open(&sealed, "databases.password:a").unwrap(),
            b"hunter2"
        );
        assert!(sealer.open(&sealed, "databases.password:b").is_err());
    }

    #[test]
    fn after_a_rotation_the_previous_key_still_opens_old_values() {
        let old = Sealer::new(&settings(1, None));
        let sealed = old.seal(b"secret", "x").unwrap();
        let rotated = Sealer::new(&settings(2, Some(1)));
        assert_eq!(rotated.open(&sealed, "x").unwrap(), b"secret");
        let resealed = rotated.seal(b"secret", "x").unwrap();
        assert!(
            old.open(&resealed, "x").is_err(),
            "the old key cannot open new values"
        );
        let forgotten = Sealer::new(&settings(2, None));
        let error = forgotten.open(&sealed, "x").unwrap_err().to_string();
        assert!(error.contains("ENCRYPTION_KEY_PREVIOUS"), "{error}");
    }

    #[test]
    fn without_a_key_nothing_is_sealed() {
        let sealer = Sealer::new(&EncryptionSettings {
            key: None,
            previous_key: None,
        });
        assert!(!sealer.can_seal());
        assert!(sealer.seal(b"x", "y").is_err());
    }
}
