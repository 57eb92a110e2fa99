//! The local backend: `object_store`'s `LocalFileSystem`, except for streamed (multipart)
//! uploads, which this module writes itself.
//!
//! `LocalFileSystem` writes every part through the page cache and syncs the whole file on
//! completion, so a large upload pays the kernel's copy of each byte into the cache and
//! then waits at its end for all of them to be written back. Here the parts go to the
//! device as they arrive (see [`PartWriter`]), and completion finds little left to sync.
//!
//! The staging file is `<object>.partial` beside the object and is renamed into place
//! when complete, then its directory synced. It is an ordinary object name, so one left
//! behind by a crash has no row in `storage_files` and the orphan sweep removes it.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

const STORE: &str = "LocalFileSystem";

/// A directory of objects.
#[derive(Debug)]
pub struct Directory {
    inner: LocalFileSystem,
    /// The storage directory itself. Writes refuse to recreate it: a directory that went
    /// away (an unmounted volume) would otherwise be replaced by one on the container's
    /// own disk, lost on the next deploy, while health says storage is down.
    root: std::path::PathBuf,
}

impl Directory {
    /// Wraps a `LocalFileSystem` rooted at `root`, which must sync its own writes
    /// (`with_fsync(true)`).
    pub fn new(inner: LocalFileSystem, root: std::path::PathBuf) -> Self {
        Self { inner, root }
    }

    /// Fails when the storage directory is gone, as the health check does.
    async fn ensure_root(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(missing_root(&self.root, "it is not a directory".into())),
            Err(error) => Err(missing_root(&self.root, error.to_string())),
        }
    }
}

fn missing_root(root: &std::path::Path, why: String) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: format!(
            "the storage directory {} is unusable: {why}",
            root.display()
        )
        .into(),
    }
}

impl fmt::Display for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Directory {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.ensure_root().await?;
        self.inner.put_opts(location, payload, opts).await
    }

    /// A streamed upload into a staging file. A directory keeps no attributes, so the
    /// options are not used.
    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.ensure_root().await?;
        let dest = self.inner.path_to_filesystem(location)?;
        let upload = blocking(move || StagedFile::create(dest)).await?;
        Ok(Box::new(upload))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// One streamed upload's staging file.
#[derive(Debug)]
struct StagedFile {
    /// Parts are written one at a time: writers of one file only contend for its lock.
    writer: Arc<Mutex<PartWriter>>,
    staging: PathBuf,
    dest: PathBuf,
    /// Where the next part goes.
    offset: u64,
    /// Set once the file is renamed into place or removed.
    settled: bool,
}

impl StagedFile {
    fn create(dest: PathBuf) -> io::Result<Self> {
        let mut staging = dest.clone().into_os_string();
        staging.push(".partial");
        let staging = PathBuf::from(staging);
        if let Some(parent) = dest.parent() {
            create_dirs(parent)?;
        }
        Ok(Self {
            writer: Arc::new(Mutex::new(PartWriter::open(&staging, true)?)),
            staging,
            dest,
            offset: 0,
            settled: false,
        })
    }
}

#[async_trait]
impl MultipartUpload for StagedFile {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let offset = self.offset;
        self.offset += data.content_length() as u64;
        let writer = self.writer.clone();
        blocking(move || lock(&writer).write(&data, offset)).boxed()
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.settled = true;
        let (writer, staging, dest) =
            (self.writer.clone(), self.staging.clone(), self.dest.clone());
        blocking(move || {
            lock(&writer).file.sync_all()?;
            std::fs::rename(&staging, &dest)?;
            if let Some(parent) = dest.parent() {
                sync_dir(parent)?;
            }
            Ok(PutResult {
                e_tag: None,
                version: None,
                extensions: Default::default(),
            })
        })
        .await
    }

    async fn abort(&mut self) -> Result<()> {
        self.settled = true;
        let staging = self.staging.clone();
        blocking(move || remove_if_present(&staging)).await
    }
}

impl Drop for StagedFile {
    /// An upload dropped unfinished removes its staging file.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let staging = std::mem::take(&mut self.staging);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || remove_if_present(&staging))),
            Err(_) => drop(remove_if_present(&staging)),
        }
    }
}

fn lock(writer: &Mutex<PartWriter>) -> std::sync::MutexGuard<'_, PartWriter> {
    writer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Direct writes start, end and sit in memory at multiples of this (the largest logical
/// block size of common devices).
const DIRECT_ALIGN: usize = 4096;
/// Bytes per direct write (a part), and the size of the aligned buffer they are copied
/// into. Smaller windows measured slower: each direct write waits for the device.
const DIRECT_WINDOW: usize = 8 << 20;

/// Writes parts into the staging file.
///
/// Where the file system allows it, the file is open for direct I/O: each part is copied,
/// a window at a time, into one page-aligned buffer and written from there straight to
/// the device, bypassing the page cache (as MinIO writes its objects). That saves the kernel's copy of every byte into the cache (the largest
/// CPU cost of a buffered upload on a small machine), leaves nothing to write back on
/// completion, and keeps uploads from evicting files that are being read.
///
/// What direct I/O cannot take (a tail shorter than a block, a file system without it) is
/// written through the page cache instead, with its write-back started at once and the
/// write-back of earlier bytes waited for, so the final sync stays short there too.
#[derive(Debug)]
struct PartWriter {
    file: File,
    direct: bool,
    /// Page-aligned room for one direct write; allocated on first use.
    scratch: Vec<u8>,
}

impl PartWriter {
    /// Opens `path` for writing, for direct I/O when `try_direct` and the file system
    /// allow it.
    fn open(path: &FsPath, try_direct: bool) -> io::Result<Self> {
        let options = || {
            let mut options = File::options();
            options.write(true).create(true).truncate(true);
            options
        };
        let (file, direct) = match try_direct.then(|| open_direct(options(), path)) {
            Some(Ok(file)) => (file, true),
            Some(Err(error)) if error.raw_os_error() != Some(libc::EINVAL) => return Err(error),
            _ => (options().open(path)?, false),
        };
        Ok(Self {
            file,
            direct,
            scratch: Vec::new(),
        })
    }

    fn write(&mut self, data: &PutPayload, offset: u64) -> io::Result<()> {
        let len = data.content_length();
        let mut done = 0;
        if self.direct && offset.is_multiple_of(DIRECT_ALIGN as u64) {
            let blocks = len - len % DIRECT_ALIGN;
            while done < blocks {
                let window = (blocks - done).min(DIRECT_WINDOW);
                let buffer = aligned(&mut self.scratch, window);
                copy_from(data, done, buffer);
                match self.file.write_all_at(buffer, offset + done as u64) {
                    Ok(()) => done += window,
                    // The device wants another alignment: go through the page cache.
                    Err(error) if error.raw_os_error() == Some(libc::EINVAL) => break,
                    Err(error) => return Err(error),
                }
            }
        }
        if done < len {
            if self.direct {
                self.stop_direct()?;
            }
            let mut at = offset + done as u64;
            for slice in suffix(data, done) {
                self.file.write_all_at(slice, at)?;
                at += slice.len() as u64;
            }
            write_back(&self.file, offset + done as u64, (len - done) as u64);
        }
        Ok(())
    }

    /// Goes on through the page cache for the rest of the file.
    fn stop_direct(&mut self) -> io::Result<()> {
        self.direct = false;
        self.scratch = Vec::new();
        clear_direct(&self.file)
    }
}

/// `len` bytes of page-aligned space in `scratch`, which grows to hold them.
fn aligned(scratch: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if scratch.len() < len + DIRECT_ALIGN {
        *scratch = vec![0; len + DIRECT_ALIGN];
    }
    let start = scratch.as_ptr().align_offset(DIRECT_ALIGN);
    &mut scratch[start..start + len]
}

/// Fills `out` with the bytes of `data` from `skip` on.
fn copy_from(data: &PutPayload, skip: usize, out: &mut [u8]) {
    let mut filled = 0;
    for slice in suffix(data, skip) {
        let take = slice.len().min(out.len() - filled);
        out[filled..filled + take].copy_from_slice(&slice[..take]);
        filled += take;
        if filled == out.len() {
            break;
        }
    }
}

/// The slices of `data` after its first `skip` bytes.
fn suffix(data: &PutPayload, mut skip: usize) -> impl Iterator<Item = &[u8]> {
    data.iter().filter_map(move |bytes| {
        let from = skip.min(bytes.len());
        skip -= from;
        (from < bytes.len()).then(|| &bytes[from..])
    })
}

#[cfg(target_os = "linux")]
fn open_direct(mut options: std::fs::OpenOptions, path: &FsPath) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_DIRECT).open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_options: std::fs::OpenOptions, _path: &FsPath) -> io::Result<File> {
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

#[cfg(target_os = "linux")]
fn clear_direct(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file`; F_GETFL and F_SETFL only read
    // and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn clear_direct(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Starts writing `len` bytes at `offset` back to disk, after waiting for everything
/// before them to be written back. Only a hint for speed and memory: durability comes
/// from the `sync_all` on completion, so a failure here is ignored.
#[cfg(target_os = "linux")]
fn write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: `fd` is an open descriptor owned by `file`, which outlives both calls.
    // (A length of 0 would mean "to the end of the file", so the first part waits on none.)
    unsafe {
        if offset > 0 {
            libc::sync_file_range(
                fd,
                0,
                offset,
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            );
        }
        libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(_file: &File, _offset: u64, _len: u64) {}

/// Creates `dir` and any missing parents, syncing each new directory's entry.
fn create_dirs(dir: &FsPath) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(error),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &FsPath) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_present(path: &FsPath) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Runs file work on the blocking pool, as an object store error when it fails.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    let outcome = tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| generic(io::Error::other(error)))?;
    outcome.map_err(generic)
}

fn generic(error: io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(error),
    }
}

/// Bytes read from disk per chunk of a download.
const READ_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the socket.
const READ_AHEAD: usize = 2;

/// The bytes of `range` in `file`, read on a blocking thread a few chunks ahead of the
/// consumer, so that reading the disk and writing the socket overlap. The reader stops
/// when the stream is dropped.
pub fn read_ahead(
    file: File,
    range: std::ops::Range<u64>,
) -> impl futures_util::Stream<Item = io::Result<bytes::Bytes>> + Send + 'static {
    let (chunks, receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut at = range.start;
        while at < range.end {
            let len =
                usize::try_from(range.end - at).map_or(READ_CHUNK, |left| left.min(READ_CHUNK));
            let mut chunk = vec![0; len];
            let read = match file.read_exact_at(&mut chunk, at) {
                Ok(()) => Ok(bytes::Bytes::from(chunk)),
                Err(error) => Err(error),
            };
            let failed = read.is_err();
            if chunks.blocking_send(read).is_err() || failed {
                return;
            }
            at += len as u64;
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    /// A fresh directory store and its root.
    fn directory() -> (Directory, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "switchyard-local-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).unwrap();
        let inner = LocalFileSystem::new_with_prefix(&root)
            .unwrap()
            .with_fsync(true);
        (Directory::new(inner, root.clone()), root)
    }

    /// Parts of the given sizes, each byte telling its position.
    fn parts(sizes: &[usize]) -> (Vec<PutPayload>, Vec<u8>) {
        let mut all = Vec::new();
        let parts = sizes
            .iter()
            .map(|&size| {
                let part: Vec<u8> = (all.len()..all.len() + size)
                    .map(|i| (i % 251) as u8)
                    .collect();
                all.extend_from_slice(&part);
                // Two slices per part, as a payload gathered from several chunks is.
                let mut payload = object_store::PutPayloadMut::new();
                payload.push(bytes::Bytes::copy_from_slice(&part[..size / 3]));
                payload.push(bytes::Bytes::copy_from_slice(&part[size / 3..]));
                payload.freeze()
            })
            .collect();
        (parts, all)
    }

    fn leftovers(root: &FsPath) -> Vec<String> {
        walk(root)
            .into_iter()
            .filter(|name| name.ends_with(".partial"))
            .collect()
    }

    fn walk(dir: &FsPath) -> Vec<String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                names.extend(walk(&path));
            } else {
                names.push(path.display().to_string());
            }
        }
        names
    }

    #[tokio::test]
    async fn a_streamed_upload_of_uneven_parts_is_stored_byte_for_byte() {
        let (store, root) = directory();
        // Several windows of whole blocks, then a part ending mid-block, then one starting
        // mid-block.
        let (parts, all) = parts(&[
            2 * DIRECT_WINDOW + 3 * DIRECT_ALIGN,
            DIRECT_ALIGN + 100,
            5000,
        ]);
        let key = Path::from("files/default/uneven");
        let mut upload = store.put_multipart(&key).await.unwrap();
        for part in parts {
            upload.put_part(part).await.unwrap();
        }
        upload.complete().await.unwrap();
        let stored = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(stored.len(), all.len());
        assert!(stored == all, "the stored bytes differ from the parts");
        assert!(leftovers(&root).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_file_system_without_direct_io_takes_the_parts_through_the_page_cache() {
        let (_store, root) = directory();
        let path = root.join("buffered");
        let mut writer = PartWriter::open(&path, false).unwrap();
        assert!(!writer.direct);
        let (parts, all) = parts(&[2 * DIRECT_ALIGN, 777, 3 * DIRECT_ALIGN]);
        let mut offset = 0;
        for part in &parts {
            writer.write(part, offset).unwrap();
            offset += part.content_length() as u64;
        }
        writer.file.sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == all);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn an_aborted_or_dropped_upload_leaves_no_staging_file() {
        let (store, root) = directory();
        let (parts, _) = parts(&[DIRECT_ALIGN, DIRECT_ALIGN]);
        let mut aborted = store
            .put_multipart(&Path::from("files/default/aborted"))
            .await
            .unwrap();
        aborted.put_part(parts[0].clone()).await.unwrap();
        assert_eq!(leftovers(&root).len(), 1);
        aborted.abort().await.unwrap();
        assert!(leftovers(&root).is_empty());

        let mut dropped = store
            .put_multipart(&Path::from("files/default/dropped"))
            .await
            .unwrap();
        dropped.put_part(parts[1].clone()).await.unwrap();
        drop(dropped);
        // The removal runs on the blocking pool.
        for _ in 0..100 {
            if leftovers(&root).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(leftovers(&root).is_empty());
        assert!(!root.join("files/default/dropped").exists());
        std::fs::remove_dir_all(root).unwrap();
    }
}
