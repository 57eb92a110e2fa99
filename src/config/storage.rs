//! `[storage]`: where file contents live (the local disk or an S3-compatible bucket) and
//! the logical buckets uploads are sorted into, each with its own limits.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Secret, list_or_csv, positive};

/// Which object store holds the contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A directory on this machine (`storage.path`).
    #[serde(alias = "fs", alias = "filesystem")]
    Local,
    /// Any S3-compatible service: AWS S3, Cloudflare R2, MinIO, Railway Buckets.
    #[serde(alias = "r2", alias = "minio", alias = "aws", alias = "railway")]
    S3,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// `local` or `s3`; unset means `s3` when a bucket is named, else `local`.
    pub backend: Option<StorageBackend>,
    /// The local backend's directory, created when missing.
    pub path: PathBuf,
    /// The S3 bucket.
    pub bucket: Option<String>,
    /// The S3 region; `us-east-1` when unset (R2 and Railway accept any).
    pub region: Option<String>,
    /// The S3 endpoint; AWS's own when unset.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Prepended to every object key, so one bucket can hold several deployments.
    pub key_prefix: String,
    /// How long a connection attempt to the S3 endpoint may take.
    pub connect_timeout_seconds: u64,
    /// How long the S3 endpoint may stay silent in the middle of a request.
    pub read_timeout_seconds: u64,
    /// Lifetime of a signed download URL when the request names none.
    pub signed_url_ttl_seconds: u64,
    /// Objects with no metadata row are removed by the `deletes` sweep after this long.
    pub orphan_grace_seconds: u64,
    /// Memory all uploads in progress may hold together; each reserves
    /// [`UPLOAD_RESERVATION`].
    pub upload_memory: ByteSize,
    /// The logical buckets; an upload names one.
    pub buckets: BTreeMap<String, BucketSettings>,
}

/// The memory one upload holds at most: an 8 MiB part being gathered and two in flight.
pub const UPLOAD_RESERVATION: u64 = 3 * (8 << 20);

impl StorageSettings {
    /// How many uploads may run at once within `upload_memory`.
    pub fn concurrent_uploads(&self) -> usize {
        usize::try_from(self.upload_memory.0 / UPLOAD_RESERVATION)
            .unwrap_or(usize::MAX)
            .max(1)
    }
}

/// One logical bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BucketSettings {
    /// The largest file accepted: bytes, or a size such as `30MB` or `5MiB`.
    pub max_file_size: ByteSize,
    /// Accepted media types (`image/png`, `image/*`) and extensions (`.pdf`); empty
    /// accepts any.
    #[serde(deserialize_with = "list_or_csv")]
    pub allowed_types: Vec<String>,
    /// Downloads need no token (anyone with the file's id may read it).
    pub public: bool,
}

impl Default for BucketSettings {
    fn default() -> Self {
        Self {
            // Appwrite's default limit.
            max_file_size: ByteSize(30_000_000),
            allowed_types: Vec::new(),
            public: false,
        }
    }
}

impl BucketSettings {
    /// Whether a file of this media type and name may be stored here.
    pub fn accepts(&self, content_type: &str, name: &str) -> bool {
        self.allowed_types.is_empty() || type_matches(&self.allowed_types, content_type, name)
    }
}

/// Whether a file of this media type and name matches one of `allowed`: a media type
/// (`image/png`), a family (`image/*`) or an extension (`.pdf`), without regard to case.
pub fn type_matches(allowed: &[String], content_type: &str, name: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    allowed.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        if allowed.starts_with('.') {
            name.ends_with(&allowed)
        } else if let Some(family) = allowed.strip_suffix("/*") {
            essence
                .split_once('/')
                .is_some_and(|(top, _)| top == family)
        } else {
            essence == allowed
        }
    })
}

impl StorageSettings {
    /// The backend in use, with an unset one resolved.
    pub fn effective_backend(&self) -> StorageBackend {
        match self.backend {
            Some(backend) => backend,
            None if self.bucket.as_deref().is_some_and(|b| !b.is_empty()) => StorageBackend::S3,
            None => StorageBackend::Local,
        }
    }

    /// One line for `app config check`: the backend, its bucket and endpoint, no secrets.
    pub fn describe(&self) -> String {
        match self.effective_backend() {
            StorageBackend::Local => format!("local directory {}", self.path.display()),
            StorageBackend::S3 => format!(
                "s3 bucket {} at {} ({}, region {}{})",
                self.bucket.as_deref().unwrap_or("(none)"),
                self.endpoint.as_deref().unwrap_or("AWS"),
                if self.path_style {
                    "path-style"
                } else {
                    "virtual-hosted"
                },
                self.region.as_deref().unwrap_or("us-east-1"),
                match &self.access_key_id {
                    Some(id) => format!(", access key {id}"),
                    None => ", no access key".to_owned(),
                },
            ),
        }
    }
}

/// Checks `[storage]`; returns the offending key and the problem.
pub(super) fn validate(s: &StorageSettings) -> Result<(), (&'static str, String)> {
    if s.upload_memory.0 < UPLOAD_RESERVATION {
        return Err((
            "storage.upload_memory",
            "must be at least 24MiB, what one upload holds".into(),
        ));
    }
    if s.effective_backend() == StorageBackend::S3 {
        let Some(bucket) = s.bucket.as_deref().filter(|b| !b.is_empty()) else {
            return Err((
                "storage.bucket",
                "the s3 backend needs a bucket (S3_BUCKET, AWS_S3_BUCKET_NAME or BUCKET)".into(),
            ));
        };
        let plain = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !plain {
            return Err((
                "storage.bucket",
                format!("{bucket:?} is not an S3 bucket name (3-63 of a-z, 0-9, '-', '.')"),
            ));
        }
        if let Some(endpoint) = &s.endpoint {
            let url = url::Url::parse(endpoint)
                .map_err(|e| ("storage.endpoint", format!("not a URL ({e})")))?;
            if !["http", "https"].contains(&url.scheme()) || url.host().is_none() {
                return Err((
                    "storage.endpoint",
                    "must be an http:// or https:// URL with a host".into(),
                ));
            }
        }
        if s.access_key_id.is_some() != s.secret_access_key.is_some() {
            return Err((
                "storage.secret_access_key",
                "give both the access key id and the secret access key, or neither".into(),
            ));
        }
    }
    if s.key_prefix.starts_with('/') || s.key_prefix.contains("..") {
        return Err((
            "storage.key_prefix",
            "must not start with '/' or contain '..'".into(),
        ));
    }
    positive(&[
        ("storage.connect_timeout_seconds", s.connect_timeout_seconds),
        ("storage.read_timeout_seconds", s.read_timeout_seconds),
        ("storage.orphan_grace_seconds", s.orphan_grace_seconds),
    ])?;
    // S3 presigned URLs live at most a week; signed URLs follow the same bound.
    if !(1..=604_800).contains(&s.signed_url_ttl_seconds) {
        return Err((
            "storage.signed_url_ttl_seconds",
            "must be between 1 and 604800 (a week)".into(),
        ));
    }
    if s.buckets.is_empty() {
        return Err(("storage.buckets", "declare at least one bucket".into()));
    }
    for (name, bucket) in &s.buckets {
        if !crate::config::valid_queue_name(name) {
            return Err((
                "storage.buckets",
                format!("bucket name {name:?} must be 1-64 characters of a-z, 0-9, '_' or '-'"),
            ));
        }
        if bucket.max_file_size.0 == 0 {
            return Err((
                "storage.buckets",
                format!("bucket {name:?}: max_file_size must be greater than 0"),
            ));
        }
        if let Some(bad) = bucket.allowed_types.iter().find(|t| !valid_type_pattern(t)) {
            return Err((
                "storage.buckets",
                format!(
                    "bucket {name:?}: allowed type {bad:?} is not a media type (image/png), a family (image/*) or an extension (.pdf)"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `pattern` is one [`type_matches`] understands: `type/subtype`, `type/*` or
/// `.ext`, made of RFC 6838 name characters.
pub fn valid_type_pattern(pattern: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match pattern.strip_prefix('.') {
        Some(extension) => token(extension),
        None => match pattern.split_once('/') {
            Some((top, "*")) => token(top),
            Some((top, sub)) => token(top) && token(sub),
            None => false,
        },
    }
}

/// A size in bytes, written as a number or with a unit: `30MB` (10^6), `5MiB` (2^20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?} is not a size such as 30MB, 5MiB or 1048576"))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?} (use B, KB, MB, GB, KiB, MiB or GiB)"
                ));
            }
        };
        number
            .checked_mul(factor)
            .map(Self)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(ByteSize::parse("30MB"), Ok(ByteSize(30_000_000)));
        assert_eq!(ByteSize::parse("5 MiB"), Ok(ByteSize(5 << 20)));
        assert_eq!(ByteSize::parse("1024"), Ok(ByteSize(1024)));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("MB").is_err());
    }

    #[test]
    fn a_bucket_matches_types_families_and_extensions() {
        let bucket = BucketSettings {
            allowed_types: vec!["image/*".into(), "application/pdf".into(), ".csv".into()],
            ..BucketSettings::default()
        };
        assert!(bucket.accepts("image/png", "a.png"));
        assert!(bucket.accepts("application/pdf; charset=binary", "a"));
        assert!(bucket.accepts("text/plain", "REPORT.CSV"));
        assert!(!bucket.accepts("text/html", "index.html"));
        assert!(BucketSettings::default().accepts("text/html", "index.html"));
    }

    #[test]
    fn type_patterns_are_checked() {
        for good in [
            "image/png",
            "image/*",
            ".tar.gz",
            "application/vnd.ms-excel",
        ] {
            assert!(valid_type_pattern(good), "{good}");
        }
        for bad in ["image", "*/*x", ".", "image/", "text/plain; x"] {
            assert!(!valid_type_pattern(bad), "{bad}");
        }
    }
}
