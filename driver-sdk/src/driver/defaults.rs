//! The default bodies of [`Driver::save`] and [`Driver::load`]: directory
//! semantics built from the five required methods and the local side in
//! [`crate::local`].

use super::Driver;
use crate::error::{Error, ErrorKind, Result};
use crate::key::ArtifactKey;
use crate::local::{Staging, local_error, walk_tree};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::path::Path;

/// How many files of one directory move at once.
const DIRECTORY_CONCURRENCY: usize = 16;

/// The default [`Driver::save`]: a file, or every regular file of a directory.
pub(crate) async fn save_path<D: Driver + ?Sized>(
    driver: &D,
    target: &D::Target,
    key: &ArtifactKey,
    src: &Path,
) -> Result<()> {
    key.require_object("save")?;
    let meta = tokio::fs::metadata(src).await.map_err(|e| local_error(e, "reading", src))?;
    if meta.is_file() {
        // Load takes a key with objects under `key/` for that directory, as
        // Argo does, so a file saved beside a tree would never be read back.
        if driver.capabilities().directories && driver.is_directory(target, key).await? {
            return Err(Error::invalid_argument(format!(
                "key {key:?} holds a directory (objects under {key:?}/): delete it first (the key with a trailing `/`) or save the file under another key"
            )));
        }
        return driver.save_file(target, key, src).await;
    }
    if !meta.is_dir() {
        return Err(Error::invalid_argument(format!("{} is neither a regular file nor a directory", src.display())));
    }
    // Refused before anything is written: a driver of single objects (an
    // HTTP URL) would otherwise store each file over the last, then fail.
    if !driver.capabilities().directories {
        return Err(Error::unsupported(format!(
            "{} is a directory, and this driver stores one object per location: archive it (Argo's default `archive: tar`) or save a single file",
            src.display()
        )));
    }
    let root = src.to_path_buf();
    let files = tokio::task::spawn_blocking(move || walk_tree(&root))
        .await
        .map_err(|e| Error::other(format!("walking {}: {e}", src.display())))??;

    let saved: HashSet<ArtifactKey> = futures::stream::iter(files)
        .map(|(relative, path)| async move {
            let child = key.join(&relative)?;
            driver.save_file(target, &child, &path).await?;
            Ok::<_, Error>(child)
        })
        .buffer_unordered(DIRECTORY_CONCURRENCY)
        .try_collect()
        .await?;

    // A directory save replaces the previous tree: files that vanished from
    // the source must not reappear in the next step.
    for stale in driver.list(target, key).await? {
        if !saved.contains(&stale) {
            driver.delete_object(target, &stale).await?;
        }
    }
    // No HEAD of `key` here: a server that keeps objects as files (s3s-fs,
    // MinIO on a filesystem) fails one for a key that is also a prefix, and
    // a plain object left at `key` cannot shadow the tree, which Load prefers.
    Ok(())
}

/// The default [`Driver::load`]: the tree under `key/` if there is one (Argo's
/// rule: a listing decides, never a HEAD or GET of `key`, which servers that
/// keep objects as files fail for a directory), staged beside `dst` and
/// renamed into place whole; else the object at `key`.
pub(crate) async fn load_path<D: Driver + ?Sized>(
    driver: &D,
    target: &D::Target,
    key: &ArtifactKey,
    dst: &Path,
) -> Result<()> {
    // A marker object for the directory itself (`key/`) lists as `key`.
    let children: Vec<ArtifactKey> = driver.list(target, key).await?.into_iter().filter(|c| c != key).collect();
    if children.is_empty() {
        if key.is_root() {
            return Err(Error::not_found("no objects at the root key"));
        }
        return match driver.load_file(target, key, dst).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(Error::not_found(format!("no object or directory at key {key:?}")))
            }
            other => other,
        };
    }
    let staging = Staging::beside(dst).await?;
    let staging_root = staging.path().to_path_buf();
    tokio::fs::create_dir_all(&staging_root).await.map_err(|e| local_error(e, "creating", &staging_root))?;
    futures::stream::iter(children)
        .map(|child| {
            let staging_root = &staging_root;
            async move {
                // Keys are validated, so `relative` has no `..` and cannot
                // leave the staging directory.
                let relative = key
                    .relative(&child)
                    .ok_or_else(|| Error::other(format!("driver listed {child:?}, which is not under {key:?}")))?;
                let file = staging_root.join(relative);
                match driver.load_file(target, &child, &file).await {
                    // Listed but not readable by its name: a directory marker
                    // (`dir/`, as Argo's OSS driver and consoles write them),
                    // whose slash the listing dropped. It stands for a directory.
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        tokio::fs::create_dir_all(&file).await.map_err(|e| local_error(e, "creating", &file))
                    }
                    other => other,
                }
            }
        })
        .buffer_unordered(DIRECTORY_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    staging.commit(dst).await
}
