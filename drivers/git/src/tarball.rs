//! A tree streamed as an uncompressed tar, built on a blocking thread and
//! handed to the async side in chunks so memory stays at one blob.

use crate::tree::{self, Node};
use bytes::Bytes;
use ferry_sdk::{ByteStream, Error, Result};
use futures::StreamExt;
use gix::ObjectId;
use std::io::Write;
use tokio::sync::mpsc;

const CHUNK: usize = 256 << 10;

/// Sends whatever the tar builder writes, `CHUNK` bytes at a time.
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

/// Streams the tree `root` of `repo` as a tar whose paths are relative to it.
pub fn stream(repo: gix::ThreadSafeRepository, root: ObjectId) -> ByteStream {
    let (tx, rx) = mpsc::channel(4);
    let errors = tx.clone();
    tokio::task::spawn_blocking(move || {
        let repo = repo.to_thread_local();
        let writer = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) };
        if let Err(e) = build(&repo, root, writer) {
            let _ = errors.blocking_send(Err(e));
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(rx: mpsc::Receiver<Result<Bytes>>) -> ByteStream {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

fn build(repo: &gix::Repository, root: ObjectId, writer: ChannelWriter) -> Result<()> {
    let io = |e: std::io::Error| Error::from(e).context("writing the tar stream");
    let mut tar = tar::Builder::new(writer);
    for (path, node) in tree::files(repo, root)? {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match node {
            Node::File(id, executable) => {
                let data = tree::blob(repo, id)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if executable { 0o755 } else { 0o644 });
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, &path, data.as_slice()).map_err(io)?;
            }
            Node::Link(id) => {
                let target = String::from_utf8(tree::blob(repo, id)?)
                    .map_err(|_| Error::other("symlink target is not UTF-8"))?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, &path, &target).map_err(io)?;
            }
            Node::Tree(_) | Node::Submodule => {}
        }
    }
    let mut writer = tar.into_inner().map_err(io)?;
    writer.flush().map_err(io)
}
