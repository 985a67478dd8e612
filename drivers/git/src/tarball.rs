//! Blobs and trees streamed to the async side: a blocking thread reads them
//! from `git cat-file --batch` and hands them over in chunks through a
//! bounded channel, so memory stays at a few chunks whatever the size.

use crate::cache::Cache;
use crate::tree::{self, Node, Objects};
use bytes::Bytes;
use ferry_sdk::{ByteStream, Error, Result};
use futures::StreamExt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

const CHUNK: usize = 256 << 10;

/// Sends whatever is written to it, `CHUNK` bytes at a time.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // The reader went away: the client stopped reading, so stop building.
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Runs `produce` on a blocking thread and streams what it writes; an error
/// ends the stream with that error, so a consumer never takes a short
/// stream for a whole one.
fn stream(produce: impl FnOnce(&mut ChannelWriter) -> Result<()> + Send + 'static) -> ByteStream {
    let (tx, rx) = mpsc::channel(4);
    let errors = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) };
        let done = produce(&mut writer).and_then(|()| writer.flush().map_err(Error::from));
        if let Err(e) = done {
            let _ = errors.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

/// Streams the blob `id`. The stream holds the cache, which outlives it.
pub fn blob(cache: Arc<Cache>, id: String) -> ByteStream {
    stream(move |out| Objects::open(cache.path())?.copy(&id, out).map(drop))
}

/// Streams the tree `root` as an uncompressed tar whose paths are relative to it.
pub fn tar(cache: Arc<Cache>, root: String) -> ByteStream {
    stream(move |out| build(cache.path(), &root, out))
}

fn build(repo: &Path, root: &str, out: &mut ChannelWriter) -> Result<()> {
    let io = |e: std::io::Error| Error::from(e).context("writing the tar stream");
    let mut objects = Objects::open(repo)?;
    let mut tar = tar::Builder::new(out);
    for (path, node) in tree::files(repo, root)? {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match node {
            Node::File { id, executable, size } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if executable { 0o755 } else { 0o644 });
                header.set_size(size);
                // The header goes first and the blob straight after it, so
                // it is streamed into the tar rather than read whole.
                let mut blob = objects.blob(&id, size)?;
                tar.append_data(&mut header, &path, &mut blob).map_err(io)?;
                blob.finish()?;
            }
            Node::Link(id) => {
                let target =
                    String::from_utf8(objects.read(&id)?).map_err(|_| Error::other("symlink target is not UTF-8"))?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &path, &target).map_err(io)?;
            }
            Node::Tree(_) | Node::Submodule => {}
        }
    }
    tar.finish().map_err(io)
}
