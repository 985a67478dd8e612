//! Reading a commit's tree in the cache repository with the git CLI:
//! entries, listings, and blobs streamed through one `git cat-file --batch`,
//! so no blob is ever held whole in memory (git streams blobs larger than
//! the cache's `core.bigFileThreshold`). Blocking.

use crate::cli::{local, local_command};
use ferry_sdk::{ArtifactKey, Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

/// What a key names in the tree. Ids are hex object names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory (the root key is one).
    Tree(String),
    /// A regular or executable file, with its size.
    File { id: String, executable: bool, size: u64 },
    /// A symbolic link; the blob holds its target.
    Link(String),
    /// A submodule: a commit of another repository, not stored here.
    Submodule,
}

/// The tree of `commit`.
pub fn root(repo: &Path, commit: &str) -> Result<String> {
    Ok(local(repo, &["rev-parse", "--verify", "-q", &format!("{commit}^{{tree}}")])?.trim().to_string())
}

/// What `key` names under the tree `root`, if anything.
pub fn lookup(repo: &Path, root: &str, key: &ArtifactKey) -> Result<Option<Node>> {
    if key.is_root() {
        return Ok(Some(Node::Tree(root.to_string())));
    }
    let out = local(repo, &["ls-tree", "-z", "-l", "--full-tree", root, "--", key.as_str()])?;
    Ok(parse(&out)?.into_iter().find(|(path, _)| path == key.as_str()).map(|(_, node)| node))
}

/// Every file, symlink and submodule under the tree `tree`, as paths
/// relative to it, in tree order.
pub fn files(repo: &Path, tree: &str) -> Result<Vec<(String, Node)>> {
    parse(&local(repo, &["ls-tree", "-r", "-z", "-l", "--full-tree", tree])?)
}

/// `ls-tree -z -l` output: `<mode> <type> <id> <size>\t<path>\0…`.
fn parse(out: &str) -> Result<Vec<(String, Node)>> {
    let bad = |entry: &str| Error::other(format!("unexpected `git ls-tree` output {entry:?}"));
    let mut nodes = Vec::new();
    for entry in out.split('\0').filter(|e| !e.is_empty()) {
        let (meta, path) = entry.split_once('\t').ok_or_else(|| bad(entry))?;
        let mut fields = meta.split_whitespace();
        let (Some(mode), Some(_), Some(id), Some(size)) = (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(entry));
        };
        let id = id.to_string();
        let node = match mode {
            "040000" => Node::Tree(id),
            "100644" | "100755" => {
                let size = size.parse().map_err(|_| bad(entry))?;
                Node::File { id, executable: mode == "100755", size }
            }
            "120000" => Node::Link(id),
            "160000" => Node::Submodule,
            _ => return Err(bad(entry)),
        };
        nodes.push((path.to_string(), node));
    }
    Ok(nodes)
}

/// One `git cat-file --batch` on the cache repository: blobs stream out of
/// it one after another.
pub struct Objects {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Objects {
    pub fn open(repo: &Path) -> Result<Objects> {
        let mut child = local_command(repo, &["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::from(e).context("starting git cat-file"))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err(Error::other("git cat-file started without pipes"));
        };
        Ok(Objects { child, stdin, stdout: BufReader::with_capacity(256 << 10, stdout) })
    }

    /// Copies the blob `id` into `to` and returns its size. A short copy is
    /// an error, never a smaller file.
    pub fn copy(&mut self, id: &str, to: &mut impl Write) -> Result<u64> {
        let size = self.header(id)?;
        let copied = std::io::copy(&mut (&mut self.stdout).take(size), to)
            .map_err(|e| Error::from(e).context(format!("reading blob {id}")))?;
        if copied != size {
            return Err(Error::other(format!("blob {id} ended after {copied} of {size} bytes")));
        }
        let mut newline = [0u8; 1];
        self.stdout.read_exact(&mut newline).map_err(|e| Error::from(e).context(format!("reading blob {id}")))?;
        Ok(size)
    }

    /// A small blob (a symlink's target) in memory.
    pub fn read(&mut self, id: &str) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.copy(id, &mut data)?;
        Ok(data)
    }

    /// The blob `id`, which the tree says is `size` bytes, as a reader to
    /// consume whole and then [`Blob::finish`].
    pub fn blob(&mut self, id: &str, size: u64) -> Result<Blob<'_>> {
        let actual = self.header(id)?;
        if actual != size {
            return Err(Error::other(format!("blob {id} is {actual} bytes where its tree says {size}")));
        }
        Ok(Blob { objects: self, left: size })
    }

    /// Asks for `id` and returns its size; its bytes follow on stdout.
    fn header(&mut self, id: &str) -> Result<u64> {
        let ask = |e: std::io::Error| Error::from(e).context("asking git cat-file for an object");
        writeln!(self.stdin, "{id}").map_err(ask)?;
        self.stdin.flush().map_err(ask)?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(ask)?;
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(_), Some("blob"), Some(size)) => {
                size.parse().map_err(|_| Error::other(format!("git cat-file answered {line:?}")))
            }
            _ => Err(Error::not_found(format!("blob {id} is not in the repository (git cat-file: {:?})", line.trim()))),
        }
    }
}

/// One blob's bytes on `git cat-file`'s stdout.
pub struct Blob<'a> {
    objects: &'a mut Objects,
    left: u64,
}

impl Read for Blob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let got = self.objects.stdout.read(&mut buf[..want])?;
        if got == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "git cat-file stopped mid-blob"));
        }
        self.left -= got as u64;
        Ok(got)
    }
}

impl Blob<'_> {
    /// Checks the blob was read to its end and steps over the newline after it.
    pub fn finish(self) -> Result<()> {
        if self.left != 0 {
            return Err(Error::other(format!("a blob was left with {} bytes unread", self.left)));
        }
        let mut newline = [0u8; 1];
        self.objects.stdout.read_exact(&mut newline).map_err(|e| Error::from(e).context("reading a blob"))
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        // A reader dropped part-way leaves the child mid-blob: stop it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `node` (a file, link or tree) to `dst`, which must not exist yet.
pub fn write_out(repo: &Path, node: &Node, dst: &Path) -> Result<()> {
    let local_err = |at: &Path| {
        let at = at.display().to_string();
        move |e: std::io::Error| Error::from(e).context(format!("writing {at}"))
    };
    let mut objects = Objects::open(repo)?;
    let mut write_one = |node: &Node, to: &Path| -> Result<()> {
        match node {
            Node::File { id, executable, .. } => {
                let mut file = std::fs::File::create(to).map_err(local_err(to))?;
                objects.copy(id, &mut file)?;
                if *executable {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(0o755)).map_err(local_err(to))?;
                }
            }
            Node::Link(id) => {
                let target =
                    String::from_utf8(objects.read(id)?).map_err(|_| Error::other("symlink target is not UTF-8"))?;
                std::os::unix::fs::symlink(target, to).map_err(local_err(to))?;
            }
            Node::Tree(_) | Node::Submodule => {}
        }
        Ok(())
    };
    match node {
        Node::Tree(id) => {
            std::fs::create_dir_all(dst).map_err(local_err(dst))?;
            for (path, child) in files(repo, id)? {
                let to = dst.join(&path);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(local_err(parent))?;
                }
                write_one(&child, &to)?;
            }
            Ok(())
        }
        other => write_one(other, dst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tree_entries_parse_with_modes_sizes_and_tabs_in_paths() {
        let out = [
            "100644 blob aa      12\ta\tb.txt",
            "100755 blob bb 3\tbin/run",
            "120000 blob cc 4\tlink",
            "040000 tree dd       -\tdir",
            "160000 commit ee       -\tsub",
        ]
        .map(|entry| format!("{entry}\0"))
        .concat();
        let nodes = parse(&out).unwrap();
        assert_eq!(nodes[0], ("a\tb.txt".into(), Node::File { id: "aa".into(), executable: false, size: 12 }));
        assert_eq!(nodes[1].1, Node::File { id: "bb".into(), executable: true, size: 3 });
        assert_eq!(nodes[2].1, Node::Link("cc".into()));
        assert_eq!(nodes[3].1, Node::Tree("dd".into()));
        assert_eq!(nodes[4], ("sub".into(), Node::Submodule));
        assert!(parse("100644 blob aa\tshort").is_err());
        assert!(parse("100600 blob aa 1\tweird-mode").is_err());
    }
}
