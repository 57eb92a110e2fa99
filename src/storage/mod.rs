//! File storage: contents in an object store (a local directory or an S3-compatible
//! bucket, both through `object_store`), metadata in Postgres (`storage_files`).
//!
//! The order of writes keeps the two consistent without a transaction across them:
//! - an upload writes its object first and commits the row after, so a row always names a
//!   complete object; a failed upload removes its partial object, and an object whose row
//!   never came (a crash in between) is an orphan the `deletes` sweep removes once older
//!   than `storage.orphan_grace_seconds`;
//! - a delete removes the object first and the row after, and a missing object counts as
//!   removed, so a delete interrupted anywhere converges when it is repeated.
//!
//! Object keys are made from the bucket and the file's id (`files/<bucket>/<id>`), never
//! from a client's file name.

pub mod files;
pub mod grants;
pub mod local;
pub mod names;
pub mod orphans;
pub mod post_policy;
pub mod range;
pub mod signed;
pub mod upload;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use object_store::aws::AmazonS3Builder;
use object_store::client::{DnsFuture, DnsResolver};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::config::{BucketSettings, Secret, StorageBackend, StorageSettings};

/// The object store and what the API needs around it.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The same S3 store, for presigned URLs; none on the local backend.
    presigner: Option<Arc<dyn Signer>>,
    backend: StorageBackend,
    key_prefix: String,
    /// Where `check` probes: the local root, or a key that need not exist.
    probe: Path,
    settings: Arc<StorageSettings>,
    /// Signs download URLs; none without `app.secret`.
    url_key: Option<signed::UrlKey>,
    /// Signs upload tokens; none without `app.secret`.
    grant_key: Option<grants::GrantKey>,
    /// Signs presigned POST forms: S3 backends with static credentials only.
    post_signer: Option<post_policy::PostSigner>,
    /// `storage.upload_memory` in reservations, one per upload in progress.
    uploads: Arc<tokio::sync::Semaphore>,
}

impl Storage {
    /// Opens the configured backend. The local one creates its directory; an S3 one makes
    /// no request until it is used.
    pub fn open(settings: &StorageSettings, app_secret: Option<&Secret>) -> anyhow::Result<Self> {
        let backend = settings.effective_backend();
        let (store, presigner): (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>) = match backend {
            StorageBackend::Local => {
                std::fs::create_dir_all(&settings.path)
                    .and_then(|()| writable(&settings.path))
                    .map_err(|error| unusable_directory(&settings.path, error))?;
                let local = LocalFileSystem::new_with_prefix(&settings.path)
                    .with_context(|| {
                        format!(
                            "cannot use the storage directory {} (storage.path, STORAGE_PATH)",
                            settings.path.display()
                        )
                    })?
                    // A row is committed only after its object is written; the object must
                    // survive a power cut as the row does.
                    .with_fsync(true);
                (
                    Arc::new(local::Directory::new(local, settings.path.clone())),
                    None,
                )
            }
            StorageBackend::S3 => {
                let s3 = Arc::new(s3_store(settings)?);
                (s3.clone(), Some(s3))
            }
        };
        Ok(Self {
            store,
            presigner,
            backend,
            key_prefix: settings.key_prefix.clone(),
            probe: Path::from(format!("{}.switchyard/health", settings.key_prefix)),
            settings: Arc::new(settings.clone()),
            url_key: app_secret.map(signed::UrlKey::derive),
            grant_key: app_secret.map(grants::GrantKey::derive),
            post_signer: match backend {
                StorageBackend::S3 => post_signer(settings)?,
                StorageBackend::Local => None,
            },
            uploads: Arc::new(tokio::sync::Semaphore::new(settings.concurrent_uploads())),
        })
    }

    pub fn backend(&self) -> StorageBackend {
        self.backend
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn settings(&self) -> &StorageSettings {
        &self.settings
    }

    /// The logical bucket named `name`, when declared.
    pub fn bucket(&self, name: &str) -> Option<&BucketSettings> {
        self.settings.buckets.get(name)
    }

    /// The key a file's object lives under.
    pub fn object_key(&self, bucket: &str, id: uuid::Uuid) -> Path {
        Path::from(format!("{}files/{bucket}/{id}", self.key_prefix))
    }

    /// Where every file object lives, for the orphan sweep.
    pub fn files_prefix(&self) -> Path {
        Path::from(format!("{}files", self.key_prefix))
    }

    /// Reserves one upload's memory, waiting at most `wait` for another upload to end;
    /// `None` when the budget stayed spent.
    pub async fn reserve_upload(&self, wait: Duration) -> Option<upload::Reservation> {
        let permit = tokio::time::timeout(wait, self.uploads.clone().acquire_owned()).await;
        permit.ok()?.ok().map(upload::Reservation::new)
    }

    /// Starts streaming a file of at most `limit` bytes to `key`, in 8 MiB parts (S3's
    /// minimum is 5), within `reservation`.
    pub fn upload(
        &self,
        key: Path,
        limit: u64,
        reservation: upload::Reservation,
    ) -> upload::Upload {
        let typed = self.backend == StorageBackend::S3;
        upload::Upload::new(self.store.clone(), key, limit, 8 << 20, typed, reservation)
    }

    /// The key that signs download URLs.
    pub fn url_key(&self) -> Option<&signed::UrlKey> {
        self.url_key.as_ref()
    }

    /// The key that signs upload tokens.
    pub fn grant_key(&self) -> Option<&grants::GrantKey> {
        self.grant_key.as_ref()
    }

    /// What signs presigned POST forms, on S3 backends with static credentials.
    pub fn post_signer(&self) -> Option<&post_policy::PostSigner> {
        self.post_signer.as_ref()
    }

    /// An S3 presigned GET for `key`, on S3 backends.
    pub async fn presign(
        &self,
        key: &Path,
        lifetime: Duration,
    ) -> Option<anyhow::Result<url::Url>> {
        let presigner = self.presigner.as_ref()?;
        Some(
            presigner
                .signed_url(Method::GET, key, lifetime)
                .await
                .context("failed to presign the object URL"),
        )
    }

    /// Whether the backend answers: the local directory exists, or the S3 endpoint
    /// answers a HEAD (a missing key counts as an answer) with these credentials.
    pub async fn check(&self) -> anyhow::Result<()> {
        if self.backend == StorageBackend::Local {
            let meta = tokio::fs::metadata(&self.settings.path)
                .await
                .context("the storage directory is missing")?;
            anyhow::ensure!(meta.is_dir(), "the storage path is not a directory");
            return Ok(());
        }
        match self.store.head(&self.probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(anyhow::Error::new(error).context("the object store did not answer")),
        }
    }
}

/// Writes and removes a file in `dir`: a directory this process cannot write is found at
/// start-up, not by the first upload.
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".switchyard-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// Why the storage directory cannot be used, and what to do about it.
fn unusable_directory(dir: &std::path::Path, error: std::io::Error) -> anyhow::Error {
    let what = format!(
        "the storage directory {} (storage.path, STORAGE_PATH) is not usable",
        dir.display()
    );
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        anyhow::anyhow!(
            "{what}: this process (uid {uid}) may not write there ({error}). A volume Railway \
             mounts is owned by root: set RAILWAY_RUN_UID=0 on this service, or store files \
             in a bucket (STORAGE_BACKEND=s3)"
        )
    } else {
        anyhow::anyhow!("{what}: {error}")
    }
}

/// Builds the S3 client: bounded connects and silences, a short retry budget so a down
/// store turns into a prompt 503, and no deadline on a whole request, since a large
/// download to a slow client may rightly take long.
fn s3_store(s: &StorageSettings) -> anyhow::Result<object_store::aws::AmazonS3> {
    // reqwest's TLS takes the process's provider; tests and library users may not have
    // installed one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = s.bucket.clone().unwrap_or_default();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&bucket)
        .with_region(s.region.as_deref().unwrap_or("us-east-1"))
        .with_virtual_hosted_style_request(!s.path_style)
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_connect_timeout(Duration::from_secs(s.connect_timeout_seconds))
                .with_read_timeout(Duration::from_secs(s.read_timeout_seconds))
                .with_timeout_disabled()
                .with_dns_resolver(Arc::new(LocalhostResolver)),
        )
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &s.endpoint {
        builder = builder.with_endpoint(bucket_endpoint(endpoint, &bucket, s.path_style)?);
    }
    if let (Some(id), Some(secret)) = (&s.access_key_id, &s.secret_access_key) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret.expose());
    }
    builder
        .build()
        .context("invalid S3 storage settings (storage.*)")
}

/// The signer of presigned POST forms, when the settings carry static credentials. The
/// form posts to the bucket's own URL: the endpoint with the bucket in the path or the
/// host name, or AWS's regional address without an endpoint.
fn post_signer(s: &StorageSettings) -> anyhow::Result<Option<post_policy::PostSigner>> {
    let (Some(id), Some(secret)) = (&s.access_key_id, &s.secret_access_key) else {
        return Ok(None);
    };
    let bucket = s.bucket.clone().unwrap_or_default();
    let region = s.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
    let endpoint = s
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let url = if s.path_style {
        format!("{}/{bucket}", endpoint.trim_end_matches('/'))
    } else {
        bucket_endpoint(&endpoint, &bucket, false)?
    };
    Ok(Some(post_policy::PostSigner {
        url,
        bucket,
        region,
        access_key_id: id.clone(),
        secret_access_key: secret.clone(),
    }))
}

/// The endpoint requests go to. Virtual-hosted addressing puts the bucket in the host
/// name (`https://bucket.storage.example`), which object_store expects the endpoint to
/// carry already; path-style keeps the endpoint as given.
fn bucket_endpoint(endpoint: &str, bucket: &str, path_style: bool) -> anyhow::Result<String> {
    let mut url = url::Url::parse(endpoint).context("storage.endpoint is not a URL")?;
    if !path_style {
        let host = url.host_str().context("storage.endpoint names no host")?;
        if !host.starts_with(&format!("{bucket}.")) {
            let with_bucket = format!("{bucket}.{host}");
            url.set_host(Some(&with_bucket)).context(
                "storage.endpoint cannot take the bucket as a subdomain; set storage.path_style",
            )?;
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The system resolver, except that `localhost` and its subdomains are loopback without a
/// lookup (RFC 6761), as curl and browsers do. A store on this machine can then be
/// reached virtual-hosted (`bucket.localhost:9000`).
#[derive(Debug)]
struct LocalhostResolver;

impl DnsResolver for LocalhostResolver {
    fn resolve(&self, host: &str) -> DnsFuture {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                return Ok(vec![
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ]);
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(found.map(|address| address.ip()).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket_once() {
        let url = |e, p| bucket_endpoint(e, "media", p).unwrap();
        assert_eq!(
            url("https://storage.example", false),
            "https://media.storage.example"
        );
        assert_eq!(
            url("https://media.storage.example", false),
            "https://media.storage.example"
        );
        assert_eq!(
            url("http://localhost:9000", false),
            "http://media.localhost:9000"
        );
        assert_eq!(url("http://127.0.0.1:9000/", true), "http://127.0.0.1:9000");
    }
}
