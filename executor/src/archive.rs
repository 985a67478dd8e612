//! Archive strategies for artifacts, as Argo applies them between a step's
//! files and the driver: `tar` (gzip, with `compressionLevel`), `none`, `zip`,
//! and `zstd` (a zstd-compressed tar) as Ferry's addition.
//!
//! Layout follows Argo's executor: a file becomes one entry named after it; a
//! directory becomes entries `basename(dir)/relative path`. Unpacking strips
//! that wrapper again when the archive has exactly one top-level entry.
//!
//! Unpacking never writes outside its destination: absolute names, `..`
//! components, links pointing out of the tree and writes through an unpacked
//! symlink are refused with an error naming the entry. Everything is unpacked
//! into a staging directory first, so a refused archive leaves nothing behind.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

/// How an artifact is archived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// gzip over tar; `level` 0-9, `None` for the default (6). Argo's default.
    Tar {
        /// gzip `compressionLevel`.
        level: Option<u32>,
    },
    /// Uploaded as it is: a file, or a directory of files.
    None,
    /// A zip file (deflate).
    Zip,
    /// zstd over tar; `level` 1-22, `None` for the default (3).
    Zstd {
        /// zstd level.
        level: Option<i32>,
    },
}

/// What can go wrong packing or unpacking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a local path failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An archive entry would land outside the destination.
    #[error("refusing archive entry {entry:?}: {reason}")]
    Unsafe {
        /// The entry's name in the archive.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The archive is malformed.
    #[error("malformed {format} archive {path}: {detail}")]
    Malformed {
        /// tar, zip, ...
        format: &'static str,
        /// The archive file.
        path: PathBuf,
        /// The parser's complaint.
        detail: String,
    },
}

type Result<T> = std::result::Result<T, Error>;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

impl Strategy {
    /// The file name Argo gives an artifact staged with this strategy.
    pub fn file_name(&self, artifact: &str, source: &Path) -> String {
        match self {
            Strategy::Tar { .. } => format!("{artifact}.tgz"),
            Strategy::Zip => format!("{artifact}.zip"),
            Strategy::Zstd { .. } => format!("{artifact}.tar.zst"),
            Strategy::None => source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

/// Archives `src` (a file or a directory) into the file `dst`. With
/// [`Strategy::None`] nothing is written and `src` is to be uploaded as it is.
pub fn pack(src: &Path, dst: &Path, strategy: Strategy) -> Result<()> {
    let name = src.file_name().ok_or_else(|| Error::Io {
        action: "archiving",
        path: src.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let out = || File::create(dst).map(|f| BufWriter::with_capacity(1 << 20, f)).map_err(io("creating", dst));
    match strategy {
        Strategy::None => Ok(()),
        Strategy::Tar { level } => {
            let gz = flate2::write::GzEncoder::new(out()?, flate2::Compression::new(level.unwrap_or(6).min(9)));
            let gz = write_tar(src, name, gz, dst)?;
            gz.finish().and_then(|mut w| w.flush()).map_err(io("writing", dst))
        }
        Strategy::Zstd { level } => {
            let z = zstd::Encoder::new(out()?, level.unwrap_or(3)).map_err(io("writing", dst))?;
            let z = write_tar(src, name, z, dst)?;
            z.finish().and_then(|mut w| w.flush()).map_err(io("writing", dst))
        }
        Strategy::Zip => write_zip(src, name, out()?, dst),
    }
}

fn write_tar<W: Write>(src: &Path, name: &std::ffi::OsStr, w: W, dst: &Path) -> Result<W> {
    let mut builder = tar::Builder::new(w);
    // Links are stored as links, as Argo's tar writer does; unpacking judges them.
    builder.follow_symlinks(false);
    if src.is_dir() {
        builder.append_dir_all(name, src).map_err(io("archiving", src))?;
    } else {
        builder.append_path_with_name(src, name).map_err(io("archiving", src))?;
    }
    builder.into_inner().map_err(io("writing", dst))
}

fn write_zip<W: Write + std::io::Seek>(src: &Path, name: &std::ffi::OsStr, w: W, dst: &Path) -> Result<()> {
    let mut zip = zip::ZipWriter::new(w);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let base = PathBuf::from(name);
    let files: Vec<(PathBuf, PathBuf)> = if src.is_dir() {
        walkdir::WalkDir::new(src)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| (base.join(e.path().strip_prefix(src).expect("under src")), e.path().to_path_buf()))
            .collect()
    } else {
        vec![(base, src.to_path_buf())]
    };
    for (entry, path) in files {
        let entry = entry.to_string_lossy().into_owned();
        zip.start_file(entry, options).map_err(|e| zip_error(dst, e))?;
        let mut f = File::open(&path).map_err(io("reading", &path))?;
        std::io::copy(&mut f, &mut zip).map_err(io("writing", dst))?;
    }
    zip.finish().map_err(|e| zip_error(dst, e))?.flush().map_err(io("writing", dst))
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> Error {
    Error::Malformed { format: "zip", path: path.to_path_buf(), detail: e.to_string() }
}

/// What an archive file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    /// gzip-compressed tar.
    TarGz,
    /// zstd-compressed tar.
    TarZst,
    /// zip.
    Zip,
    /// Anything else: taken as the artifact itself (`archive: none`).
    Plain,
}

/// Sniffs the first bytes of `path`. Like Argo, a zip is only taken as an
/// archive when the artifact says `zip` (a plain file may start with `PK`).
pub fn detect(path: &Path, declared: Option<Strategy>) -> Result<Detected> {
    if path.is_dir() || declared == Some(Strategy::None) {
        return Ok(Detected::Plain);
    }
    let mut magic = [0u8; 4];
    let n = File::open(path).and_then(|mut f| f.read(&mut magic)).map_err(io("reading", path))?;
    Ok(match (&magic[..n], declared) {
        ([0x1f, 0x8b, ..], _) => Detected::TarGz,
        ([0x28, 0xb5, 0x2f, 0xfd], _) => Detected::TarZst,
        ([b'P', b'K', 3, 4], Some(Strategy::Zip)) => Detected::Zip,
        _ => Detected::Plain,
    })
}

/// Unpacks the archive file `src` into `dest` (which must not exist), or
/// renames it there when it is not an archive. A single top-level entry
/// becomes `dest` itself.
pub fn unpack(src: &Path, dest: &Path, declared: Option<Strategy>) -> Result<()> {
    let kind = detect(src, declared)?;
    if kind == Detected::Plain {
        return std::fs::rename(src, dest).map_err(io("renaming into", dest));
    }
    let staging = sibling(dest, "unpack");
    std::fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
    let result = match kind {
        Detected::TarGz => unpack_tar(flate2::read::GzDecoder::new(open(src)?), &staging, src, "tar.gz"),
        Detected::TarZst => {
            let z = zstd::Decoder::new(open(src)?).map_err(io("reading", src))?;
            unpack_tar(z, &staging, src, "tar.zst")
        }
        Detected::Zip => unpack_zip(src, &staging),
        Detected::Plain => unreachable!("handled above"),
    };
    let placed = result.and_then(|()| place(&staging, dest));
    if placed.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    placed?;
    std::fs::remove_file(src).map_err(io("removing", src))
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path).map(|f| BufReader::with_capacity(1 << 20, f)).map_err(io("reading", path))
}

fn sibling(dest: &Path, what: &str) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

/// Moves what was unpacked into `dest`: the single top-level entry, or the
/// whole staging directory.
fn place(staging: &Path, dest: &Path) -> Result<()> {
    let entries: Vec<_> = std::fs::read_dir(staging).map_err(io("reading", staging))?.filter_map(|e| e.ok()).collect();
    if let [only] = entries.as_slice() {
        std::fs::rename(only.path(), dest).map_err(io("renaming into", dest))?;
        std::fs::remove_dir(staging).map_err(io("removing", staging))
    } else {
        std::fs::rename(staging, dest).map_err(io("renaming into", dest))
    }
}

/// The path an entry name stands for below the destination, or why not.
fn safe_relative(name: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    if out.as_os_str().is_empty() { Err("it has an empty name") } else { Ok(out) }
}

/// Refuses a path whose parent, inside `root`, is a symlink (an earlier
/// entry could otherwise redirect later writes).
fn no_link_on_the_way(root: &Path, relative: &Path, entry: &str) -> Result<()> {
    let mut at = root.to_path_buf();
    if let Some(parent) = relative.parent() {
        for part in parent.components() {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::Unsafe { entry: entry.into(), reason: "a parent directory is a symlink" });
            }
        }
    }
    Ok(())
}

fn unpack_tar<R: Read>(reader: R, root: &Path, src: &Path, format: &'static str) -> Result<()> {
    let malformed = |e: std::io::Error| Error::Malformed { format, path: src.to_path_buf(), detail: e.to_string() };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        let name = entry.path().map_err(malformed)?.into_owned();
        let shown = name.to_string_lossy().into_owned();
        let relative = safe_relative(&name).map_err(|reason| Error::Unsafe { entry: shown.clone(), reason })?;
        no_link_on_the_way(root, &relative, &shown)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(malformed)?
                .ok_or_else(|| Error::Unsafe { entry: shown.clone(), reason: "a link without a target" })?;
            // Resolve the target against the link's own directory, lexically.
            let base = if kind.is_symlink() {
                relative.parent().unwrap_or(Path::new("")).to_path_buf()
            } else {
                PathBuf::new()
            };
            if target.is_absolute() || escapes(&base.join(&target)) {
                return Err(Error::Unsafe { entry: shown, reason: "a link that points outside the archive" });
            }
        } else if !(kind.is_file() || kind.is_dir() || kind.is_contiguous()) {
            // Devices, FIFOs and the like are never artifact content.
            continue;
        }
        if !entry.unpack_in(root).map_err(malformed)? {
            return Err(Error::Unsafe { entry: shown, reason: "it would land outside the destination" });
        }
    }
    Ok(())
}

/// Whether a relative path climbs above its start.
fn escapes(path: &Path) -> bool {
    let mut depth = 0i32;
    for c in path.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::RootDir | Component::Prefix(_) => return true,
            Component::CurDir => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

fn unpack_zip(src: &Path, root: &Path) -> Result<()> {
    let mut zip = zip::ZipArchive::new(open(src)?).map_err(|e| zip_error(src, e))?;
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| zip_error(src, e))?;
        let shown = file.name().map_err(|e| zip_error(src, e))?.to_string();
        let relative =
            safe_relative(Path::new(&shown)).map_err(|reason| Error::Unsafe { entry: shown.clone(), reason })?;
        no_link_on_the_way(root, &relative, &shown)?;
        let out = root.join(&relative);
        if file.is_dir() {
            std::fs::create_dir_all(&out).map_err(io("creating", &out))?;
            continue;
        }
        if file.is_symlink() {
            return Err(Error::Unsafe { entry: shown, reason: "zip symlinks are not unpacked" });
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        let mut w = File::create(&out).map_err(io("creating", &out))?;
        std::io::copy(&mut file, &mut w).map_err(io("writing", &out))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                (e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        out.sort();
        out
    }

    fn sample(dir: &Path) -> PathBuf {
        let src = dir.join("out");
        std::fs::create_dir_all(src.join("sub/ünï")).unwrap();
        std::fs::write(src.join("a.txt"), b"a").unwrap();
        std::fs::write(src.join("empty"), b"").unwrap();
        std::fs::write(src.join("sub/ünï/b.bin"), vec![7u8; 100_000]).unwrap();
        src
    }

    #[test]
    fn every_strategy_round_trips_a_directory_and_a_file() {
        for strategy in [
            Strategy::Tar { level: None },
            Strategy::Tar { level: Some(0) },
            Strategy::Zip,
            Strategy::Zstd { level: Some(19) },
        ] {
            let dir = tempfile::tempdir().unwrap();
            let src = sample(dir.path());
            let packed = dir.path().join(strategy.file_name("out", &src));
            pack(&src, &packed, strategy).unwrap();
            let dest = dir.path().join("in");
            unpack(&packed, &dest, Some(strategy)).unwrap();
            assert_eq!(tree(&dest), tree(&src), "{strategy:?}: directory");
            assert!(!packed.exists(), "the archive is consumed");

            let file = src.join("sub/ünï/b.bin");
            let packed = dir.path().join("file.pkg");
            pack(&file, &packed, strategy).unwrap();
            let dest = dir.path().join("file-in");
            unpack(&packed, &dest, Some(strategy)).unwrap();
            assert_eq!(std::fs::read(&dest).unwrap(), vec![7u8; 100_000], "{strategy:?}: file");
        }
    }

    #[test]
    fn tar_gz_is_detected_without_a_declared_strategy_and_plain_files_are_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let src = sample(dir.path());
        let packed = dir.path().join("x.tgz");
        pack(&src, &packed, Strategy::Tar { level: Some(9) }).unwrap();
        assert_eq!(detect(&packed, None).unwrap(), Detected::TarGz);
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"PK\x03\x04 not declared as zip").unwrap();
        assert_eq!(detect(&plain, None).unwrap(), Detected::Plain);
        unpack(&plain, &dir.path().join("plain-in"), None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("plain-in")).unwrap(), b"PK\x03\x04 not declared as zip");
    }

    /// A tar built by hand, so its names can be anything.
    fn evil_tar(path: &Path, entries: &[(&str, tar::EntryType, &str)]) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(if kind.is_file() { 4 } else { 0 });
            h.set_mode(0o644);
            // Bypass the builder's own path checks to write hostile names.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            b.append(&h, &b"evil"[..if kind.is_file() { 4 } else { 0 }]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn hostile_tar_entries_are_refused_and_nothing_is_written() {
        use tar::EntryType::{Regular, Symlink};
        let cases: &[&[(&str, tar::EntryType, &str)]] = &[
            &[("../escape.txt", Regular, "")],
            &[("a/../../escape.txt", Regular, "")],
            &[("/tmp/absolute.txt", Regular, "")],
            &[("link", Symlink, "../../.."), ("ok", Regular, "")],
            &[("link", Symlink, "/etc"), ("ok", Regular, "")],
            &[("d/link", Symlink, "."), ("d/link/x", Regular, "")],
        ];
        for entries in cases {
            let dir = tempfile::tempdir().unwrap();
            let work = dir.path().join("work");
            std::fs::create_dir_all(&work).unwrap();
            let archive = work.join("evil.tgz");
            evil_tar(&archive, entries);
            let dest = work.join("dest");
            let err = unpack(&archive, &dest, Some(Strategy::Tar { level: None })).unwrap_err();
            assert!(matches!(err, Error::Unsafe { .. }), "{entries:?}: {err}");
            assert!(err.to_string().contains("refusing archive entry"), "{err}");
            assert!(!dest.exists(), "{entries:?}: destination created");
            assert!(!dir.path().join("escape.txt").exists());
            let left: Vec<_> = std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(left, vec![std::ffi::OsString::from("evil.tgz")], "{entries:?}: staging left behind");
        }
    }

    #[test]
    fn zip_slip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.zip");
        let mut z = zip::ZipWriter::new(File::create(&path).unwrap());
        z.start_file("../../zip-slip.txt", zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(b"evil").unwrap();
        z.finish().unwrap();
        let err = unpack(&path, &dir.path().join("dest"), Some(Strategy::Zip)).unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }), "{err}");
        assert!(
            !dir.path().join("zip-slip.txt").exists() && !dir.path().parent().unwrap().join("zip-slip.txt").exists()
        );
    }

    #[test]
    fn links_inside_the_tree_survive() {
        let dir = tempfile::tempdir().unwrap();
        let src = sample(dir.path());
        std::os::unix::fs::symlink("a.txt", src.join("alias")).unwrap();
        let packed = dir.path().join("x.tgz");
        pack(&src, &packed, Strategy::Tar { level: None }).unwrap();
        let dest = dir.path().join("in");
        unpack(&packed, &dest, None).unwrap();
        assert_eq!(std::fs::read(dest.join("alias")).unwrap(), b"a");
    }

    #[test]
    fn a_truncated_archive_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = sample(dir.path());
        let packed = dir.path().join("x.tgz");
        pack(&src, &packed, Strategy::Tar { level: None }).unwrap();
        let bytes = std::fs::read(&packed).unwrap();
        std::fs::write(&packed, &bytes[..bytes.len() / 2]).unwrap();
        let err = unpack(&packed, &dir.path().join("in"), None).unwrap_err();
        assert!(err.to_string().contains("malformed tar.gz archive"), "{err}");
        assert!(!dir.path().join("in").exists());
    }
}
