//! Scoped API keys: minted, stored, listed, revoked, and checked on each request.
//!
//! A key is `sy_<prefix>_<secret>`. The prefix (10 characters) is stored as is: it finds
//! the row and names the key in listings and logs. The secret (40 characters, about 238
//! random bits) is stored only as HMAC-SHA256 under a key derived from
//! `encryption.key`. A slow password hash (argon2, bcrypt) exists to make guessing a
//! low-entropy secret expensive; a secret this random cannot be guessed at any speed, so
//! a slow hash would only cost every request milliseconds. Keying the hash means a copy
//! of the table alone does not even let one check a candidate key. After a rotation of
//! `encryption.key`, keys hashed under `encryption.previous_key` still verify.
//!
//! Checking a key reads its row at most once a second per process (so a revocation or
//! expiry takes effect on every replica within a second) and writes `last_used_at` at
//! most once a minute per key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use super::constant_time_eq;
use super::scopes::Scopes;
use crate::config::EncryptionSettings;
use crate::events::{self, Event};
use crate::invalid::Invalid;

/// How long a key's row is trusted before it is read again.
const ROW_TTL: Duration = Duration::from_secs(1);

/// How often `last_used_at` is written per key.
const USE_EVERY: Duration = Duration::from_secs(60);

/// Rows kept in the per-process cache; past this it starts over.
const CACHE_CAP: usize = 10_000;

const PREFIX_LEN: usize = 10;
const SECRET_LEN: usize = 40;

/// A key as listings show it: never its secret.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct KeyView {
    pub id: uuid::Uuid,
    pub name: String,
    /// The `<prefix>` of `sy_<prefix>_<secret>`.
    pub prefix: String,
    pub scopes: Vec<String>,
    /// `admin` (the root token or the CLI) or `key:<prefix>`.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, name, prefix, scopes, created_by, created_at, expires_at, revoked_at, last_used_at";

/// A key just made: the only time its whole value is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct Minted {
    #[serde(flatten)]
    pub view: KeyView,
    /// `sy_<prefix>_<secret>`: shown once, never again.
    pub key: String,
}

/// What a new key is.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new key as a caller asks for it (the API's body, the CLI's flags).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// What the key is for, 1 to 100 characters (`ci`, `laravel backend`).
    pub name: String,
    /// The scopes it holds, e.g. `["jobs:read", "metrics:read"]`; `*` is every scope.
    pub scopes: Vec<String>,
    /// How long it works: `30m`, `12h` or `90d`, up to ten years; never expires when
    /// absent.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// The longest a key may be made to last.
const LONGEST: Duration = Duration::from_secs(10 * 365 * 86_400);

impl KeyInput {
    /// The key this input asks for, or the field at fault.
    pub fn check(&self, now: DateTime<Utc>) -> Result<NewKey, Invalid> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Invalid::new("name", "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::new("name", "must not contain control characters"));
        }
        let scopes = Scopes::parse(self.scopes.iter().map(String::as_str))
            .map_err(|bad| Invalid::new("scopes", bad.to_string()))?;
        let expires_at = match &self.expires_in {
            None => None,
            Some(text) => {
                let span = crate::config::parse_duration(text)
                    .filter(|d| *d >= Duration::from_secs(60) && *d <= LONGEST)
                    .ok_or_else(|| {
                        Invalid::new(
                            "expires_in",
                            "must be a duration from 1m to 3650d, such as 30m, 12h or 90d",
                        )
                    })?;
                Some(now + chrono::Duration::from_std(span).unwrap_or_default())
            }
        };
        Ok(NewKey {
            name: name.to_owned(),
            scopes,
            expires_at,
        })
    }
}

/// Why a key cannot be made here.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("encryption.key (ENCRYPTION_KEY) is not set, so API keys cannot be made")]
    NoKey,
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// The keys that hash secrets: derived from the current and the previous encryption key.
#[derive(Clone)]
pub struct Hasher {
    current: Option<hmac::Key>,
    previous: Option<hmac::Key>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(redacted)")
    }
}

impl Hasher {
    pub fn new(settings: &EncryptionSettings) -> Self {
        let derive = |bytes: [u8; 32]| {
            // Its own key, so that no other use of encryption.key ever yields this MAC.
            let root = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
            let tag = hmac::sign(&root, b"switchyard api key hash v1");
            hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
        };
        Self {
            current: settings.key_bytes().map(derive),
            previous: settings.previous_key_bytes().map(derive),
        }
    }

    pub fn can_hash(&self) -> bool {
        self.current.is_some()
    }

    fn hash(&self, secret: &str) -> Option<Vec<u8>> {
        let key = self.current.as_ref()?;
        Some(hmac::sign(key, secret.as_bytes()).as_ref().to_vec())
    }

    /// Whether `secret` is the one `stored` was made from, under either key.
    fn matches(&self, secret: &str, stored: &[u8]) -> bool {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .any(|key| constant_time_eq(hmac::sign(key, secret.as_bytes()).as_ref(), stored))
    }
}

/// `count` random characters from `alphabet`, without bias.
fn random_text(alphabet: &[u8], count: usize) -> anyhow::Result<String> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(count);
    let mut bytes = [0u8; 64];
    while out.len() < count {
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        for &b in &bytes {
            if (b as usize) < limit && out.len() < count {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// The prefix and secret of a presented key, when it has the shape of one.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("sy_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let fits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (fits(prefix, PREFIX_LEN) && fits(secret, SECRET_LEN)).then_some((prefix, secret))
}

/// Makes a key; its creation is recorded as a `keys.created` event in the same
/// transaction, and so audited.
pub async fn create(
    db: &PgPool,
    hasher: &Hasher,
    new: &NewKey,
    actor: &str,
) -> Result<Minted, CreateError> {
    let prefix = random_text(b"abcdefghijklmnopqrstuvwxyz0123456789", PREFIX_LEN)?;
    let secret = random_text(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        SECRET_LEN,
    )?;
    let hash = hasher.hash(&secret).ok_or(CreateError::NoKey)?;
    let id = uuid::Uuid::now_v7();
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let view: KeyView = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (id, name, prefix, hash, scopes, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&new.name)
    .bind(&prefix)
    .bind(&hash)
    .bind(new.scopes.names())
    .bind(actor)
    .bind(new.expires_at)
    .fetch_one(&mut *tx)
    .await
    .context("failed to store the API key")?;
    let event = Event::builtin(
        "keys.created",
        "key",
        id.to_string(),
        actor,
        None,
        &serde_json::json!({
            "name": view.name,
            "prefix": view.prefix,
            "scopes": view.scopes,
            "expires_at": view.expires_at,
        }),
    );
    events::record(&mut tx, &[event]).await?;
    tx.commit().await.context("failed to commit the API key")?;
    Ok(Minted {
        key: format!("sy_{prefix}_{secret}"),
        view,
    })
}

/// Every key, newest first (revoked and expired ones too, marked so).
pub async fn list(db: &PgPool) -> anyhow::Result<Vec<KeyView>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
    )))
    .fetch_all(db)
    .await
    .context("failed to list API keys")
}

/// Revokes the key with this id or prefix; `None` when there is none. Revoking a revoked
/// key changes nothing. The first revocation is recorded as a `keys.revoked` event.
pub async fn revoke(
    db: &PgPool,
    id_or_prefix: &str,
    actor: &str,
) -> anyhow::Result<Option<KeyView>> {
    let id: Option<uuid::Uuid> = id_or_prefix.parse().ok();
    let prefix = id_or_prefix.strip_prefix("sy_").unwrap_or(id_or_prefix);
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let found: Option<KeyView> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id = $1 OR prefix = $2 FOR UPDATE"
    )))
    .bind(id)
    .bind(prefix)
    .fetch_optional(&mut *tx)
    .await
    .context("failed to read the API key")?;
    let Some(key) = found else {
        return Ok(None);
    };
    if key.revoked_at.is_some() {
        return Ok(Some(key));
    }
    let view: KeyView = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(key.id)
    .fetch_one(&mut *tx)
    .await
    .context("failed to revoke the API key")?;
    let event = Event::builtin(
        "keys.revoked",
        "key",
        key.id.to_string(),
        actor,
        None,
        &serde_json::json!({ "name": view.name, "prefix": view.prefix }),
    );
    events::record(&mut tx, &[event]).await?;
    tx.commit()
        .await
        .context("failed to commit the revocation")?;
    Ok(Some(view))
}

/// Whether any key that still works exists (for start-up advice about the root token).
pub async fn any_active(db: &PgPool) -> anyhow::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_keys
                        WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))",
    )
    .fetch_one(db)
    .await
    .context("failed to look for API keys")
}

/// A key that checked out.
#[derive(Clone, Debug)]
pub struct KeyCaller {
    pub id: uuid::Uuid,
    pub prefix: String,
    pub scopes: Scopes,
}

/// Why a presented key does not open anything. Each is a 401; the reason is for logs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("not an API key")]
    Malformed,
    #[error("no such API key")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
    #[error("the API key has expired")]
    Expired,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    hash: Vec<u8>,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A key's row as checks use it, its scopes parsed once.
#[derive(Debug)]
struct Known {
    id: uuid::Uuid,
    hash: Vec<u8>,
    scopes: Scopes,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A key (or that there is none), with when its row was read.
type Cached = (Instant, Option<Arc<Known>>);

/// Checks presented keys, with the rows cached for [`ROW_TTL`].
#[derive(Clone)]
pub struct Verifier {
    db: PgPool,
    hasher: Hasher,
    rows: Arc<Mutex<HashMap<String, Cached>>>,
    used: Arc<Mutex<HashMap<uuid::Uuid, Instant>>>,
}

impl Verifier {
    pub fn new(db: PgPool, settings: &EncryptionSettings) -> Self {
        Self {
            db,
            hasher: Hasher::new(settings),
            rows: Arc::default(),
            used: Arc::default(),
        }
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Who `token` is, if it is a key that works now.
    pub async fn check(&self, token: &str) -> anyhow::Result<Result<KeyCaller, Refusal>> {
        let Some((prefix, secret)) = split(token) else {
            return Ok(Err(Refusal::Malformed));
        };
        let Some(row) = self.row(prefix).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        if !self.hasher.matches(secret, &row.hash) {
            return Ok(Err(Refusal::Unknown));
        }
        Ok(self.admit(prefix, &row))
    }

    /// Who the key `prefix` is now, without its secret: for a console session, which
    /// proved the key when it began. The key's revocation or expiry ends the session's
    /// rights as it ends the key's.
    pub async fn check_prefix(&self, prefix: &str) -> anyhow::Result<Result<KeyCaller, Refusal>> {
        let Some(row) = self.row(prefix).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        Ok(self.admit(prefix, &row))
    }

    /// The caller a known key makes, unless it is revoked or expired.
    fn admit(&self, prefix: &str, row: &Known) -> Result<KeyCaller, Refusal> {
        if row.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        if row.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(Refusal::Expired);
        }
        self.note_use(row.id);
        Ok(KeyCaller {
            id: row.id,
            prefix: prefix.to_owned(),
            scopes: row.scopes.clone(),
        })
    }

    async fn row(&self, prefix: &str) -> anyhow::Result<Option<Arc<Known>>> {
        if let Ok(rows) = self.rows.lock()
            && let Some((read, row)) = rows.get(prefix)
            && read.elapsed() < ROW_TTL
        {
            return Ok(row.clone());
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, hash, scopes, expires_at, revoked_at FROM api_keys WHERE prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(&self.db)
        .await
        .context("failed to read the API key")?;
        let row = row.map(|row| {
            Arc::new(Known {
                id: row.id,
                hash: row.hash,
                // Scopes are checked when stored; a list naming one this release does
                // not know (written by a newer one) grants nothing.
                scopes: Scopes::parse(row.scopes.iter().map(String::as_str)).unwrap_or_default(),
                expires_at: row.expires_at,
                revoked_at: row.revoked_at,
            })
        });
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() >= CACHE_CAP {
                rows.retain(|_, (read, _)| read.elapsed() < ROW_TTL);
                if rows.len() >= CACHE_CAP {
                    rows.clear();
                }
            }
            rows.insert(prefix.to_owned(), (Instant::now(), row.clone()));
        }
        Ok(row)
    }

    /// Writes `last_used_at` when this process has not for a minute; the write itself
    /// skips a key another replica stamped within the minute.
    fn note_use(&self, id: uuid::Uuid) {
        let due = match self.used.lock() {
            Ok(mut used) => match used.get(&id) {
                Some(at) if at.elapsed() < USE_EVERY => false,
                _ => {
                    used.insert(id, Instant::now());
                    true
                }
            },
            Err(_) => false,
        };
        if !due {
            return;
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            let stamped = sqlx::query(
                "UPDATE api_keys SET last_used_at = now()
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            )
            .bind(id)
            .execute(&db)
            .await;
            if let Err(error) = stamped {
                tracing::debug!(error = %error, key = %id, "could not stamp the key's last use");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shape_of_a_key_splits() {
        let key = format!("sy_{}_{}", "a".repeat(10), "B".repeat(40));
        assert_eq!(split(&key), Some(("aaaaaaaaaa", &*"B".repeat(40))));
        assert_eq!(split("sy_short_secret"), None);
        assert_eq!(split(&key.replace("sy_", "sk_")), None);
        assert_eq!(split(&format!("{key}_")), None);
        assert_eq!(split("admin-token-value"), None);
    }

    #[test]
    fn random_text_uses_only_its_alphabet() {
        let text = random_text(b"ab", 200).unwrap();
        assert_eq!(text.len(), 200);
        assert!(text.bytes().all(|b| b == b'a' || b == b'b'));
        assert!(text.contains('a') && text.contains('b'));
    }

    #[test]
    fn a_secret_verifies_under_the_key_it_was_hashed_with_or_the_previous_one() {
        use base64::Engine;
        let encode = |b: u8| {
            Some(crate::config::Secret::new(
                base64::engine::general_purpose::STANDARD.encode([b; 32]),
            ))
        };
        let old = Hasher::new(&EncryptionSettings {
            key: encode(1),
            previous_key: None,
        });
        let rotated = Hasher::new(&EncryptionSettings {
            key: encode(2),
            previous_key: encode(1),
        });
        let other = Hasher::new(&EncryptionSettings {
            key: encode(3),
            previous_key: None,
        });
        let stored = old.hash("s3cret").unwrap();
        assert!(old.matches("s3cret", &stored));
        assert!(!old.matches("s3creT", &stored));
        assert!(
            rotated.matches("s3cret", &stored),
            "the previous key still verifies"
        );
        assert!(!other.matches("s3cret", &stored));
        let none = Hasher::new(&EncryptionSettings {
            key: None,
            previous_key: None,
        });
        assert!(!none.can_hash() && none.hash("x").is_none());
    }
}
