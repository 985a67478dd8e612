//! Reading a commit's tree without a worktree: entries, listings, blobs, and
//! files written out to a local path. Blocking.

use crate::classify::gix_error;
use ferry_sdk::{ArtifactKey, Error, Result};
use gix::ObjectId;
use gix::object::tree::EntryKind;
use std::path::Path;

/// What a key names in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory (the root key is one).
    Tree(ObjectId),
    /// A regular or executable file.
    File(ObjectId, bool),
    /// A symbolic link; the blob holds its target.
    Link(ObjectId),
    /// A submodule: a commit of another repository, not stored here.
    Submodule,
}

fn read_err(e: gix::Error) -> Error {
    gix_error("reading the repository", e)
}

/// The tree of `commit`.
pub fn root(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId> {
    let tree = repo.find_object(commit).map_err(read_err)?.peel_to_tree().map_err(read_err)?;
    Ok(tree.id)
}

/// What `key` names under the tree `root`, if anything.
pub fn lookup(repo: &gix::Repository, root: ObjectId, key: &ArtifactKey) -> Result<Option<Node>> {
    if key.is_root() {
        return Ok(Some(Node::Tree(root)));
    }
    let tree = repo.find_tree(root).map_err(read_err)?;
    let Some(entry) = tree.lookup_entry_by_path(key.as_str()).map_err(read_err)? else {
        return Ok(None);
    };
    let id = entry.object_id();
    Ok(Some(match entry.mode().kind() {
        EntryKind::Tree => Node::Tree(id),
        EntryKind::Blob => Node::File(id, false),
        EntryKind::BlobExecutable => Node::File(id, true),
        EntryKind::Link => Node::Link(id),
        EntryKind::Commit => Node::Submodule,
    }))
}

/// Every file and symlink under the tree `tree`, as paths relative to it, in tree order.
pub fn files(repo: &gix::Repository, tree: ObjectId) -> Result<Vec<(String, Node)>> {
    let tree = repo.find_tree(tree).map_err(read_err)?;
    let mut out = Vec::new();
    for e in tree.traverse().breadthfirst.files().map_err(read_err)? {
        let node = match e.mode.kind() {
            EntryKind::Blob => Node::File(e.oid, false),
            EntryKind::BlobExecutable => Node::File(e.oid, true),
            EntryKind::Link => Node::Link(e.oid),
            EntryKind::Tree | EntryKind::Commit => continue,
        };
        let path = String::from_utf8(e.filepath.into())
            .map_err(|_| Error::other("the tree holds a path that is not UTF-8, which keys cannot name"))?;
        out.push((path, node));
    }
    Ok(out)
}

/// The bytes of a blob.
pub fn blob(repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>> {
    Ok(repo.find_blob(id).map_err(read_err)?.take_data())
}

/// The size of a blob, from its header: the blob is not inflated.
pub fn blob_size(repo: &gix::Repository, id: ObjectId) -> Result<u64> {
    Ok(repo.find_header(id).map_err(read_err)?.size())
}

/// Writes `node` (a file, link or tree) to `dst`, which must not exist yet.
pub fn write_out(repo: &gix::Repository, node: Node, dst: &Path) -> Result<()> {
    let local = |e: std::io::Error| Error::from(e).context(format!("writing {}", dst.display()));
    match node {
        Node::File(id, executable) => {
            std::fs::write(dst, blob(repo, id)?).map_err(local)?;
            if executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).map_err(local)?;
            }
        }
        Node::Link(id) => {
            let target = String::from_utf8(blob(repo, id)?).map_err(|_| Error::other("symlink target is not UTF-8"))?;
            std::os::unix::fs::symlink(target, dst).map_err(local)?;
        }
        Node::Tree(id) => {
            std::fs::create_dir_all(dst).map_err(local)?;
            for (path, child) in files(repo, id)? {
                let to = dst.join(&path);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(local)?;
                }
                write_out(repo, child, &to)?;
            }
        }
        Node::Submodule => {}
    }
    Ok(())
}
