//! The contract a driver author implements.

mod defaults;

use crate::error::Result;
use crate::key::ArtifactKey;
use crate::local;
use crate::stream::ByteStream;
use std::future::Future;
use std::path::Path;

/// What a Delete removes. Argo's rule: a key ending in `/` names a directory
/// artifact, any other key exactly one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeleteTarget {
    /// Exactly the object at the key; objects under `key/` are untouched.
    Object,
    /// Every object under `key/`; an object at the key itself is untouched.
    Directory,
}

impl DeleteTarget {
    /// The target a wire key names: `Directory` when it ends in `/`.
    pub fn of_raw_key(raw: &str) -> DeleteTarget {
        if raw.ends_with('/') { DeleteTarget::Directory } else { DeleteTarget::Object }
    }
}

/// What a driver can do, reported through `GetCapabilities` and used by the
/// conformance suite to decide which cases apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `SaveStream` uploads straight from the client's stream.
    pub save_stream: bool,
    /// Save and Delete are refused (for example a Git revision pinned to a tag).
    pub read_only: bool,
    /// A key can name a directory: every object under `key/`.
    pub directories: bool,
    /// The empty key is an artifact of its own (a git repository's whole
    /// tree). Without it the SDK refuses an empty key in every call: on an
    /// object store it would name the whole bucket or root.
    pub root_key: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities { save_stream: true, read_only: false, directories: true, root_key: false }
    }
}

impl Capabilities {
    /// Capabilities of a driver that refuses every write.
    pub fn read_only() -> Self {
        Capabilities { save_stream: false, read_only: true, directories: true, root_key: false }
    }

    /// These capabilities, with the empty key accepted as the whole storage.
    #[must_use]
    pub fn with_root_key(mut self) -> Self {
        self.root_key = true;
        self
    }
}

/// An artifact driver, at the level a storage author thinks in.
///
/// Implement the five required methods (connecting, reading a stream,
/// writing a stream, deleting one object, listing a prefix); everything Argo
/// needs on top of them (files, directories, directory delete, is-directory,
/// atomic local writes) has a default built from those five. Override a
/// default only when the storage can do it better, as the
/// [`ObjectStoreDriver`](crate::ObjectStoreDriver) does for multipart uploads.
///
/// # Contract
/// - Keys reaching a driver are already validated [`ArtifactKey`]s: no `..`,
///   no leading `/`, no empty segment.
/// - A directory is every object whose key starts with `key/`; `ab` is never
///   under `a`.
/// - A missing key is an error of kind [`ErrorKind::NotFound`](crate::ErrorKind::NotFound)
///   from reads, and success from deletes.
/// - A stream that fails part-way yields an `Err` item; it never just ends early.
/// - A write that fails part-way leaves no object behind that looks complete.
pub trait Driver: Send + Sync + 'static {
    /// What [`connect`](Driver::connect) makes of one `configuration` string:
    /// the storage this configuration names, connected (a bucket client, a
    /// confined root, a remote repository), plus whatever settings the calls
    /// need. Not the configuration itself: that is the driver's own serde
    /// struct, parsed inside `connect`. The SDK caches targets per distinct
    /// configuration string, so connecting happens once, not per call.
    type Target: Send + Sync + 'static;

    /// Parses an artifact's `configuration` string and connects to the
    /// storage it names. Use [`config::parse`](crate::config::parse) for the
    /// typed part; fail with
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig).
    fn connect(&self, configuration: &str) -> impl Future<Output = Result<Self::Target>> + Send;

    /// What this driver supports.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Streams the object at `key`.
    fn open_stream(&self, target: &Self::Target, key: &ArtifactKey) -> impl Future<Output = Result<ByteStream>> + Send;

    /// Stores `data` as the object at `key`, replacing any object there. If
    /// `data` yields an error, nothing must become visible at `key`.
    fn save_stream(
        &self,
        target: &Self::Target,
        key: &ArtifactKey,
        data: ByteStream,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes exactly the object at `key`; succeeds when there is none.
    fn delete_object(&self, target: &Self::Target, key: &ArtifactKey) -> impl Future<Output = Result<()>> + Send;

    /// Every object under `key/`, recursively, as full keys; empty when none.
    fn list(&self, target: &Self::Target, key: &ArtifactKey) -> impl Future<Output = Result<Vec<ArtifactKey>>> + Send;

    /// The size in bytes of the object at `key`: how many bytes
    /// [`open_stream`](Driver::open_stream) yields for it. A missing key is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
    ///
    /// Optional: it serves `Stat` of `ferry.v1.ObjectService`, Ferry's
    /// extension for servers that send `Content-Length`; Argo never calls it.
    /// The default is [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported),
    /// which travels as `UNIMPLEMENTED`, and callers then stream without a size.
    /// Override it when the storage tells a size without reading the object.
    fn size(&self, target: &Self::Target, key: &ArtifactKey) -> impl Future<Output = Result<u64>> + Send {
        let _ = (target, key);
        std::future::ready(Err(crate::Error::unsupported("this driver cannot tell an object's size")))
    }

    /// Streams the bytes `range` of the object at `key`, clamped to its end:
    /// a range reaching past the end yields the bytes up to the end, and an
    /// empty range or one starting at or past the end yields an empty stream,
    /// not an error. A missing key is
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound), and, as for
    /// `open_stream`, a stream that fails part-way yields an `Err` item.
    ///
    /// Optional: it serves `ReadRange` of `ferry.v1.ObjectService`, Ferry's
    /// extension for servers that answer HTTP `Range` requests; Argo never
    /// calls it. The default is
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported), which
    /// travels as `UNIMPLEMENTED`. Override it when the storage reads a range
    /// without reading what comes before it.
    fn open_range(
        &self,
        target: &Self::Target,
        key: &ArtifactKey,
        range: std::ops::Range<u64>,
    ) -> impl Future<Output = Result<ByteStream>> + Send {
        let _ = (target, key, range);
        std::future::ready(Err(crate::Error::unsupported("this driver cannot read a byte range")))
    }

    /// Whether an object exists at exactly `key`.
    fn exists(&self, target: &Self::Target, key: &ArtifactKey) -> impl Future<Output = Result<bool>> + Send {
        async move {
            match self.open_stream(target, key).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        }
    }

    /// Whether at least one object lives under `key/`.
    fn is_directory(&self, target: &Self::Target, key: &ArtifactKey) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(!self.list(target, key).await?.is_empty()) }
    }

    /// Deletes `what` the key names: exactly the object at `key`, or every
    /// object under `key/` (never `key` itself, never `key-sibling`).
    /// Idempotent: deleting what is not there succeeds.
    ///
    /// The SDK picks `what` from the wire key as Argo does: a key ending in
    /// `/` is a directory, any other key one object. A file key must never
    /// reach objects under `key/`: those may belong to someone else.
    fn delete(
        &self,
        target: &Self::Target,
        key: &ArtifactKey,
        what: DeleteTarget,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            key.require_object("delete")?;
            match what {
                DeleteTarget::Object => self.delete_object(target, key).await,
                DeleteTarget::Directory => {
                    for child in self.list(target, key).await? {
                        self.delete_object(target, &child).await?;
                    }
                    Ok(())
                }
            }
        }
    }

    /// Uploads the local regular file `src` as the object at `key`.
    fn save_file(
        &self,
        target: &Self::Target,
        key: &ArtifactKey,
        src: &Path,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let data = local::file_stream(src).await?;
            self.save_stream(target, key, data).await
        }
    }

    /// Downloads the object at `key` to the local file `dst`. The file appears
    /// complete or not at all.
    fn load_file(
        &self,
        target: &Self::Target,
        key: &ArtifactKey,
        dst: &Path,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            let data = self.open_stream(target, key).await?;
            local::write_atomically(dst, data).await.map(drop)
        }
    }

    /// Saves `src`, a file or a directory, under `key`. A directory replaces
    /// whatever was under `key/` before; a file is refused where `key/`
    /// holds a directory (Load would answer with the directory).
    fn save(&self, target: &Self::Target, key: &ArtifactKey, src: &Path) -> impl Future<Output = Result<()>> + Send {
        defaults::save_path(self, target, key, src)
    }

    /// Loads `key` to `dst`: the directory under `key/` if there is one, else
    /// the object at `key`.
    fn load(&self, target: &Self::Target, key: &ArtifactKey, dst: &Path) -> impl Future<Output = Result<()>> + Send {
        defaults::load_path(self, target, key, dst)
    }
}
