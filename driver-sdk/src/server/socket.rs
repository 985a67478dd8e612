//! Where a driver listens: the socket path Argo passes, and binding it.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The socket path Argo passes as the last argument; a `unix://` prefix is
/// accepted and stripped.
pub fn socket_path_from_args(args: impl IntoIterator<Item = String>) -> Result<PathBuf> {
    let raw = args.into_iter().skip(1).last().ok_or_else(|| {
        Error::invalid_argument("usage: <driver> SOCKET_PATH (for example /tmp/artifact-plugins/NAME/socket)")
    })?;
    let path = raw.strip_prefix("unix://").unwrap_or(&raw);
    if path.is_empty() {
        return Err(Error::invalid_argument("the socket path is empty"));
    }
    Ok(PathBuf::from(path))
}

/// Binds `socket`: creates its directory (Argo may start the driver before it
/// exists) and replaces a stale socket, but never a file that is not a socket.
pub fn bind(socket: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::from(e).context(format!("creating {}", dir.display())))?;
    }
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(socket)
            .map_err(|e| Error::from(e).context(format!("removing stale socket {}", socket.display())))?,
        Ok(_) => {
            return Err(Error::invalid_argument(format!(
                "{} exists and is not a socket; refusing to replace it",
                socket.display()
            )));
        }
        Err(_) => {}
    }
    tokio::net::UnixListener::bind(socket).map_err(|e| Error::from(e).context(format!("binding {}", socket.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_is_the_last_argument() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(socket_path_from_args(args(&["drv", "/tmp/x/socket"])).unwrap(), PathBuf::from("/tmp/x/socket"));
        assert_eq!(socket_path_from_args(args(&["drv", "unix:///tmp/s"])).unwrap(), PathBuf::from("/tmp/s"));
        assert!(socket_path_from_args(args(&["drv"])).is_err());
    }

    #[test]
    fn bind_refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        std::fs::write(&path, "precious").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt.block_on(async { bind(&path).map(drop) }).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }
}
