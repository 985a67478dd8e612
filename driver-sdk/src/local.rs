//! The local side of every transfer: reading files and trees safely, and
//! writing them so that nothing half-written ever sits at the destination.
//! Knows files and byte streams only, nothing of drivers or keys.

use crate::error::{Error, ErrorKind, Result};
use crate::stream::ByteStream;
use futures::{StreamExt, TryStreamExt};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Read size for local files: large enough that per-read overhead vanishes,
/// small enough that a handful in flight stay far below the memory budget.
pub const READ_CHUNK: usize = 1 << 20;

/// A stream of the local file at `path`, read in [`READ_CHUNK`] pieces.
pub async fn file_stream(path: &Path) -> Result<ByteStream> {
    let file = tokio::fs::File::open(path).await.map_err(|e| local_error(e, "opening", path))?;
    let shown = path.display().to_string();
    Ok(tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK)
        .map_err(move |e| Error::from(e).context(format!("reading {shown}")))
        .boxed())
}

/// Writes `data` to `dst` through a hidden sibling file renamed into place at
/// the end, so `dst` is either the complete object or untouched. Parents are
/// created; an existing file or directory at `dst` is replaced. Returns the
/// number of bytes written.
pub async fn write_atomically(dst: &Path, data: ByteStream) -> Result<u64> {
    write_staged(Staging::beside(dst).await?, dst, data).await
}

/// Writes `data` to `staging`, then renames it to `dst` (whose parent must exist).
pub async fn write_staged(staging: Staging, dst: &Path, mut data: ByteStream) -> Result<u64> {
    let file = tokio::fs::File::create(&staging.path).await.map_err(|e| local_error(e, "creating", &staging.path))?;
    let mut out = tokio::io::BufWriter::with_capacity(READ_CHUNK, file);
    let mut written = 0u64;
    while let Some(chunk) = data.next().await {
        let chunk = chunk?;
        out.write_all(&chunk).await.map_err(|e| local_error(e, "writing", &staging.path))?;
        written += chunk.len() as u64;
    }
    out.flush().await.map_err(|e| local_error(e, "writing", &staging.path))?;
    staging.commit(dst).await?;
    Ok(written)
}

/// A temporary path that is removed again unless committed, also when the
/// transfer is cancelled half-way (the future dropped).
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    committed: bool,
}

impl Staging {
    /// A uniquely named path in `dir`, which must exist.
    pub fn in_dir(dir: &Path) -> Staging {
        Staging { path: dir.join(format!("{}.partial", uuid::Uuid::new_v4().simple())), committed: false }
    }

    /// The staging path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A hidden, uniquely named sibling of `dst`; creates `dst`'s parent.
    pub async fn beside(dst: &Path) -> Result<Staging> {
        let name = dst
            .file_name()
            .ok_or_else(|| Error::invalid_argument(format!("destination {} has no file name", dst.display())))?;
        let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent).await.map_err(|e| local_error(e, "creating", parent))?;
        let hidden = format!(".{}.ferry-{}.partial", name.to_string_lossy(), uuid::Uuid::new_v4().simple());
        Ok(Staging { path: parent.join(hidden), committed: false })
    }

    /// Renames the staged file or directory to `dst`, replacing what is there.
    pub async fn commit(mut self, dst: &Path) -> Result<()> {
        if let Ok(meta) = tokio::fs::symlink_metadata(dst).await
            && meta.is_dir()
        {
            tokio::fs::remove_dir_all(dst).await.map_err(|e| local_error(e, "replacing", dst))?;
        }
        tokio::fs::rename(&self.path, dst).await.map_err(|e| local_error(e, "renaming into", dst))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the staging name is unique, so a leftover harms nothing.
            let _ = std::fs::remove_file(&self.path).or_else(|_| std::fs::remove_dir_all(&self.path));
        }
    }
}

/// An I/O error on a local path, with the path in the message. A missing local
/// path is the caller's mistake, not a missing key, so it never becomes
/// `NotFound` (which on the wire means "no such object").
pub fn local_error(err: std::io::Error, action: &str, path: &Path) -> Error {
    let err = Error::from(err).context(format!("{action} {}", path.display()));
    if err.kind() == ErrorKind::NotFound {
        Error::new(ErrorKind::InvalidArgument, err.message().to_string())
    } else {
        err
    }
}

/// Bytes and file count of a local file, or of the files of a tree that
/// [`walk_tree`] yields (what a directory Save uploads). Blocking.
pub fn tree_size(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| local_error(e, "reading", path))?;
    if meta.is_file() {
        return Ok((meta.len(), 1));
    }
    let files = walk_tree(path)?;
    let bytes = files.iter().map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    Ok((bytes, files.len() as u64))
}

/// Every regular file under `root` as (`/`-separated relative path, path to
/// read). Symlinks to files inside the tree are followed; symlinks to
/// directories and dangling ones are skipped (as Argo's S3 driver skips
/// symlinks); a symlink leading outside the tree is refused, so a step cannot
/// exfiltrate files it merely points at.
pub fn walk_tree(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let canonical_root = root.canonicalize().map_err(|e| local_error(e, "resolving", root))?;
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::other(format!("walking {}: {e}", root.display())))?;
        let path = entry.path();
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let relative = relative_key(root, path)?;
        if kind.is_file() {
            files.push((relative, path.to_path_buf()));
        } else if kind.is_symlink() {
            match std::fs::canonicalize(path) {
                Err(_) => tracing::warn!(path = %path.display(), "skipping dangling symlink"),
                Ok(target) if !target.starts_with(&canonical_root) => {
                    return Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "refusing to save {}: it is a symlink to {}, outside the artifact directory {}",
                            path.display(),
                            target.display(),
                            root.display()
                        ),
                    ));
                }
                Ok(target) if target.is_file() => files.push((relative, path.to_path_buf())),
                Ok(_) => tracing::warn!(path = %path.display(), "skipping symlink to a directory"),
            }
        } else {
            tracing::warn!(path = %path.display(), "skipping special file (socket, FIFO or device)");
        }
    }
    Ok(files)
}

fn relative_key(root: &Path, path: &Path) -> Result<String> {
    let relative = path.strip_prefix(root).map_err(|_| Error::other("walk left its root"))?;
    let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
    parts.map(|p| p.join("/")).ok_or_else(|| Error::invalid_argument(format!("{} is not valid UTF-8", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_follows_inner_links_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("sub/a.txt", root.join("link")).unwrap();
        std::os::unix::fs::symlink(".", root.join("loop")).unwrap();
        std::os::unix::fs::symlink("missing", root.join("dangling")).unwrap();
        let files: Vec<String> = walk_tree(&root).unwrap().into_iter().map(|(r, _)| r).collect();
        assert_eq!(files, vec!["link".to_string(), "sub/a.txt".to_string()]);

        std::fs::write(dir.path().join("canary"), "secret").unwrap();
        std::os::unix::fs::symlink("../canary", root.join("escape")).unwrap();
        let err = walk_tree(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("escape"), "{err}");
    }

    #[tokio::test]
    async fn failed_stream_leaves_nothing_at_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("x/out.bin");
        let data = futures::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"part")),
            Err(Error::new(ErrorKind::Transient, "connection reset")),
        ])
        .boxed();
        assert!(write_atomically(&dst, data).await.is_err());
        assert!(!dst.exists());
        assert_eq!(std::fs::read_dir(dir.path().join("x")).unwrap().count(), 0, "staging file left behind");
    }

    #[tokio::test]
    async fn write_replaces_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out");
        std::fs::create_dir_all(dst.join("old")).unwrap();
        let data = futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"new"))]).boxed();
        assert_eq!(write_atomically(&dst, data).await.unwrap(), 3);
        assert_eq!(std::fs::read(&dst).unwrap(), b"new");
    }
}
