//! Archive strategies for artifacts, as Argo applies them between a step's
//! files and the driver: `tar` (gzip, with `compressionLevel`), `none`, `zip`,
//! and `zstd` (a zstd-compressed tar) as Ferry's addition.
//!
//! Layout follows Argo's executor: a file becomes one entry named after it; a
//! directory becomes entries `basename(dir)/relative path`. Unpacking strips
//! that wrapper again when the archive has exactly one top-level entry.
//!
//! Unpacking never writes outside its destination: absolute names, `..`
//! components, links that resolve out of the tree (followed component by
//! component through the links already on disk, so chains such as `x -> .`,
//! `y -> x/x/../..` are caught) and writes through an unpacked symlink are
//! refused with an error naming the entry. What an archive may expand to is
//! bounded ([`Limits`]). Everything is unpacked into a staging directory
//! first, so a refused archive leaves nothing behind.
//!
//! Packing applies the same rule to links: a link that stays inside the
//! artifact is kept as a link (zip cannot hold links and refuses them), one
//! that leaves it or is absolute is refused, naming the link.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use ferry_workflow::strategy::Strategy;

/// What can go wrong packing or unpacking.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
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
    /// A link in what is being archived cannot be kept.
    #[error("refusing to archive {path}: {reason}")]
    Link {
        /// The link.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The archive expands beyond what [`Limits`] allow: a decompression bomb,
    /// or an artifact larger than this host was configured to take.
    #[error(
        "archive {path} expands to more than {limit} bytes ({why}); refused as a possible decompression bomb and removed what was unpacked. Raise {knob} if the artifact is genuine"
    )]
    TooLarge {
        /// The archive file.
        path: PathBuf,
        /// The bound that was crossed.
        limit: u64,
        /// How the bound came about.
        why: String,
        /// The setting that raises it.
        knob: &'static str,
    },
    /// A limit setting does not follow its rule.
    #[error("{name}={value:?} is not {expected}")]
    BadSetting {
        /// The environment variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What the rule takes.
        expected: &'static str,
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

/// Environment variable bounding what one archive may unpack to, in bytes.
pub(crate) const MAX_UNPACKED_BYTES_ENV: &str = "FERRY_MAX_UNPACKED_BYTES";
/// Environment variable bounding unpacked size as a multiple of the archive's size.
pub(crate) const MAX_UNPACK_RATIO_ENV: &str = "FERRY_MAX_UNPACK_RATIO";

/// How far one archive may expand. A real artifact compresses a few times to
/// a few dozen times (text, logs, JSON); gzip tops out near 1000:1 and zstd
/// goes far beyond on crafted input, so a ratio bound catches bombs early
/// while the absolute bound keeps any single artifact from filling a laptop's
/// disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Most bytes one archive may unpack to.
    pub max_bytes: u64,
    /// Most bytes unpacked per byte of archive, once past [`RATIO_FLOOR`].
    pub max_ratio: u64,
}

/// Up to this many bytes, any ratio is allowed: small archives of zeros or
/// of one repeated line are normal.
pub(crate) const RATIO_FLOOR: u64 = 1 << 30;

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 64 << 30, max_ratio: 200 }
    }
}

impl Limits {
    /// The defaults, overridden by [`MAX_UNPACKED_BYTES_ENV`] (a size, as
    /// every byte count is read: `64Gi` or bytes) and [`MAX_UNPACK_RATIO_ENV`]
    /// (a positive whole number), through the SDK's rules.
    pub(crate) fn from_env() -> Result<Limits> {
        let bad = |name: &'static str, expected: &'static str| Error::BadSetting {
            name,
            value: ferry_sdk::env::text(name).ok().flatten().unwrap_or_default(),
            expected,
        };
        let d = Limits::default();
        let max_bytes = match ferry_sdk::env::size(MAX_UNPACKED_BYTES_ENV) {
            Ok(None) => d.max_bytes,
            Ok(Some(n)) if n > 0 => n,
            _ => return Err(bad(MAX_UNPACKED_BYTES_ENV, "a size above zero: bytes, or with a unit Ki, Mi or Gi")),
        };
        let max_ratio = ferry_sdk::env::positive(MAX_UNPACK_RATIO_ENV)
            .map_err(|_| bad(MAX_UNPACK_RATIO_ENV, "a positive whole number"))?
            .unwrap_or(d.max_ratio);
        Ok(Limits { max_bytes, max_ratio })
    }

    /// The bound for an archive of `compressed` bytes, with the setting that sets it.
    fn allowance(&self, compressed: u64) -> (u64, String, &'static str) {
        let by_ratio = compressed.saturating_mul(self.max_ratio).max(RATIO_FLOOR);
        if by_ratio < self.max_bytes {
            (by_ratio, format!("{}x its {compressed} bytes", self.max_ratio), MAX_UNPACK_RATIO_ENV)
        } else {
            (self.max_bytes, "the absolute bound".into(), MAX_UNPACKED_BYTES_ENV)
        }
    }
}

/// Counts what unpacking writes against the allowance.
struct Budget {
    used: Cell<u64>,
    limit: u64,
    exceeded: Cell<bool>,
}

impl Budget {
    fn charge(&self, n: u64) -> std::io::Result<()> {
        let used = self.used.get().saturating_add(n);
        self.used.set(used);
        if used > self.limit {
            self.exceeded.set(true);
            return Err(std::io::Error::other("the unpack bound was crossed"));
        }
        Ok(())
    }
}

/// A reader of decompressed bytes that stops at the budget.
struct Counted<'a, R> {
    inner: R,
    budget: &'a Budget,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.charge(n as u64)?;
        Ok(n)
    }
}

/// Archives `src` (a file or a directory) into the file `dst`. With
/// [`Strategy::None`] nothing is written and `src` is to be uploaded as it is.
///
/// `src` must not itself be a symlink (resolve it first); links under it are
/// kept when they stay inside `src` and refused otherwise.
pub(crate) fn pack(src: &Path, dst: &Path, strategy: Strategy) -> Result<()> {
    let name = src.file_name().ok_or_else(|| Error::Io {
        action: "archiving",
        path: src.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    if std::fs::symlink_metadata(src).map_err(io("reading", src))?.file_type().is_symlink() {
        return Err(Error::Link { path: src.to_path_buf(), reason: "the artifact path itself is a symlink" });
    }
    if strategy != Strategy::None && src.is_dir() {
        check_links_to_pack(src, strategy == Strategy::Zip)?;
    }
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

/// Refuses links that [`pack`] must not store: any link for zip, and for tar
/// a link that is absolute or resolves outside `src`.
fn check_links_to_pack(src: &Path, zip: bool) -> Result<()> {
    let root = src.canonicalize().map_err(io("resolving", src))?;
    for entry in walkdir::WalkDir::new(&root).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| Error::Io {
            action: "walking",
            path: src.to_path_buf(),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("link loop")),
        })?;
        if !entry.path_is_symlink() {
            continue;
        }
        let relative = entry.path().strip_prefix(&root).expect("under the root");
        let shown = src.join(relative);
        if zip {
            return Err(Error::Link {
                path: shown,
                reason: "it is a symlink and zip cannot hold links (use archive tar, or replace the link by a copy)",
            });
        }
        resolve_below(&root, relative, &[]).map_err(|reason| Error::Link { path: shown, reason })?;
    }
    Ok(())
}

/// Follows `relative` below `root` as the kernel would, one component at a
/// time through the symlinks that are on disk, and returns where it really
/// leads (relative to `root`), or why it leaves `root`. An absolute link
/// target is allowed only when it lies under one of `absolute_roots` (the
/// host paths of `root`, for links a local step wrote with host paths).
pub(crate) fn resolve_below(
    root: &Path,
    relative: &Path,
    absolute_roots: &[&Path],
) -> std::result::Result<PathBuf, &'static str> {
    const MAX_LINKS: u32 = 40; // Linux's own bound on links in one lookup.
    let mut todo: VecDeque<OsString> = VecDeque::new();
    let push_front = |todo: &mut VecDeque<OsString>, path: &Path| {
        for c in path.components().rev() {
            match c {
                Component::Normal(n) => todo.push_front(n.to_os_string()),
                Component::ParentDir => todo.push_front("..".into()),
                _ => {}
            }
        }
    };
    if relative.is_absolute() {
        return Err("it is an absolute path");
    }
    push_front(&mut todo, relative);
    let mut at = PathBuf::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            if !at.pop() {
                return Err("it resolves to a place outside the artifact (through `..` or a chain of links)");
            }
            continue;
        }
        at.push(&part);
        let full = root.join(&at);
        let Ok(meta) = std::fs::symlink_metadata(&full) else { continue };
        if !meta.file_type().is_symlink() {
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err("it goes through too many levels of symlinks");
        }
        let target = std::fs::read_link(&full).map_err(|_| "its link target cannot be read")?;
        at.pop();
        if target.is_absolute() {
            match absolute_roots.iter().find_map(|r| target.strip_prefix(r).ok()) {
                Some(rest) => {
                    at = PathBuf::new();
                    push_front(&mut todo, rest);
                }
                None => return Err("it is a symlink to an absolute path outside the artifact"),
            }
        } else {
            push_front(&mut todo, &target);
        }
    }
    Ok(at)
}

/// Refuses any symlink under `root` that resolves outside it, after
/// everything is unpacked, so no order of entries can sneak one through.
fn check_unpacked_links(root: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|e| Error::Io {
            action: "walking",
            path: root.to_path_buf(),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("link loop")),
        })?;
        if entry.path_is_symlink() {
            let relative = entry.path().strip_prefix(root).expect("under the root");
            resolve_below(root, relative, &[]).map_err(|reason| Error::Unsafe {
                entry: relative.to_string_lossy().into_owned(),
                reason: if reason.contains("absolute") { reason } else { "a link that resolves outside the archive" },
            })?;
        }
    }
    Ok(())
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> Error {
    Error::Malformed { format: "zip", path: path.to_path_buf(), detail: e.to_string() }
}

/// What an archive file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detected {
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
pub(crate) fn detect(path: &Path, declared: Option<Strategy>) -> Result<Detected> {
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
/// becomes `dest` itself. Expansion beyond `limits` fails with
/// [`Error::TooLarge`] and leaves nothing behind.
pub(crate) fn unpack(src: &Path, dest: &Path, declared: Option<Strategy>, limits: &Limits) -> Result<()> {
    let kind = detect(src, declared)?;
    if kind == Detected::Plain {
        return std::fs::rename(src, dest).map_err(io("renaming into", dest));
    }
    let compressed = std::fs::metadata(src).map_err(io("reading", src))?.len();
    let (limit, why, knob) = limits.allowance(compressed);
    let budget = Budget { used: Cell::new(0), limit, exceeded: Cell::new(false) };
    let staging = sibling(dest, "unpack");
    std::fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
    let result = match kind {
        Detected::TarGz => {
            let gz = Counted { inner: flate2::read::GzDecoder::new(open(src)?), budget: &budget };
            unpack_tar(gz, &staging, src, "tar.gz")
        }
        Detected::TarZst => match zstd::Decoder::new(open(src)?) {
            Ok(z) => unpack_tar(Counted { inner: z, budget: &budget }, &staging, src, "tar.zst"),
            Err(e) => Err(io("reading", src)(e)),
        },
        Detected::Zip => unpack_zip(src, &staging, &budget),
        Detected::Plain => unreachable!("handled above"),
    };
    let result =
        if budget.exceeded.get() { Err(Error::TooLarge { path: src.to_path_buf(), limit, why, knob }) } else { result };
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
        // The single entry becomes `dest`, so its links are judged from
        // inside it: `out/l -> ../x` would point beside `dest`.
        let kind = only.file_type().map_err(io("reading", &only.path()))?;
        if kind.is_symlink() {
            return Err(Error::Unsafe {
                entry: only.file_name().to_string_lossy().into_owned(),
                reason: "the archive's only entry is a link",
            });
        }
        check_unpacked_links(&only.path())?;
        std::fs::rename(only.path(), dest).map_err(io("renaming into", dest))?;
        std::fs::remove_dir(staging).map_err(io("removing", staging))
    } else {
        check_unpacked_links(staging)?;
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

/// Refuses a path that, inside `root`, passes through or replaces a symlink
/// an earlier entry made: writes are never redirected by a link.
fn no_link_on_the_way(root: &Path, relative: &Path, entry: &str) -> Result<()> {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = relative.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            let reason = if i + 1 == parts.len() {
                "an earlier entry made a link there"
            } else {
                "a parent directory is a symlink"
            };
            return Err(Error::Unsafe { entry: entry.into(), reason });
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
            if kind.is_hard_link() {
                // A hard link's target is opened through its directories.
                no_link_on_the_way(root, &target, &shown)?;
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

fn unpack_zip(src: &Path, root: &Path, budget: &Budget) -> Result<()> {
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
        std::io::copy(&mut Counted { inner: &mut file, budget }, &mut w).map_err(io("writing", &out))?;
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
            unpack(&packed, &dest, Some(strategy), &Limits::default()).unwrap();
            assert_eq!(tree(&dest), tree(&src), "{strategy:?}: directory");
            assert!(!packed.exists(), "the archive is consumed");

            let file = src.join("sub/ünï/b.bin");
            let packed = dir.path().join("file.pkg");
            pack(&file, &packed, strategy).unwrap();
            let dest = dir.path().join("file-in");
            unpack(&packed, &dest, Some(strategy), &Limits::default()).unwrap();
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
        unpack(&plain, &dir.path().join("plain-in"), None, &Limits::default()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("plain-in")).unwrap(), b"PK\x03\x04 not declared as zip");
    }

    /// A tar.gz built by hand, so its names can be anything.
    fn evil_tar(path: &Path, entries: &[(&str, tar::EntryType, &str)]) {
        let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::default());
        evil_tar_into(gz, entries).finish().unwrap();
    }

    fn evil_tar_into<W: Write>(w: W, entries: &[(&str, tar::EntryType, &str)]) -> W {
        let mut b = tar::Builder::new(w);
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
        b.into_inner().unwrap()
    }

    /// The same hand-made entries as tar.gz, tar.zst and (links as zip
    /// symlink entries) zip.
    fn evil_archives(dir: &Path, entries: &[(&str, tar::EntryType, &str)]) -> Vec<(PathBuf, Strategy)> {
        let tgz = dir.join("evil.tgz");
        evil_tar(&tgz, entries);
        let zst = dir.join("evil.tar.zst");
        let z = zstd::Encoder::new(File::create(&zst).unwrap(), 3).unwrap();
        evil_tar_into(z, entries).finish().unwrap();
        let zip_path = dir.join("evil.zip");
        let mut z = zip::ZipWriter::new(File::create(&zip_path).unwrap());
        let mut seen = std::collections::HashSet::new();
        for (name, kind, link) in entries {
            if !seen.insert(*name) {
                continue; // zip refuses duplicate names at writing already
            }
            let options = zip::write::SimpleFileOptions::default();
            if kind.is_symlink() {
                z.add_symlink(*name, *link, options).unwrap();
            } else {
                z.start_file(*name, options).unwrap();
                z.write_all(b"evil").unwrap();
            }
        }
        z.finish().unwrap();
        vec![(tgz, Strategy::Tar { level: None }), (zst, Strategy::Zstd { level: None }), (zip_path, Strategy::Zip)]
    }

    /// Everything under `dir` except `keep`, as relative paths.
    fn left_behind(dir: &Path, keep: &Path) -> Vec<PathBuf> {
        walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .filter_map(|e| e.ok())
            .map(|e| e.path().strip_prefix(dir).unwrap().to_path_buf())
            .filter(|p| p != keep)
            .collect()
    }

    #[test]
    fn a_link_chain_that_climbs_out_is_refused_for_every_strategy() {
        use tar::EntryType::{Regular, Symlink};
        // `x` is the root itself, so `x/x/x/x/x/../../../../..` climbs five
        // levels above it although it reads as staying put.
        let cases: &[&[(&str, tar::EntryType, &str)]] = &[
            &[("x", Symlink, "."), ("y", Symlink, "x/x/x/x/x/../../../../..")],
            &[("x", Symlink, "."), ("y", Symlink, "x/x/x/x/x/../../../../.."), ("y/z", Regular, "")],
            // The chain split over a directory, with the link made before its target.
            &[("d/up", Symlink, "../e/.."), ("e", Symlink, "d/../.."), ("f", Regular, "")],
            // A single top-level directory becomes the destination, so a link
            // to its sibling leaves it.
            &[("out/f", Regular, ""), ("out/l", Symlink, "../out/f")],
            // A file entry written over an earlier link.
            &[("l", Symlink, "."), ("l", Regular, "")],
        ];
        for entries in cases {
            let dir = tempfile::tempdir().unwrap();
            for (archive, strategy) in evil_archives(dir.path(), entries) {
                let work = dir.path().join(format!("work-{strategy:?}"));
                std::fs::create_dir_all(&work).unwrap();
                let name = archive.file_name().unwrap().to_owned();
                std::fs::rename(&archive, work.join(&name)).unwrap();
                let dest = work.join("dest");
                let err = unpack(&work.join(&name), &dest, Some(strategy), &Limits::default()).unwrap_err();
                assert!(matches!(err, Error::Unsafe { .. }), "{strategy:?} {entries:?}: {err}");
                assert!(err.to_string().contains("refusing archive entry"), "{err}");
                assert_eq!(left_behind(&work, Path::new(&name)), Vec::<PathBuf>::new(), "{strategy:?} {entries:?}");
                assert!(!dir.path().join("z").exists());
            }
        }
    }

    #[test]
    fn resolving_follows_links_on_disk_component_by_component() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(".", root.join("x")).unwrap();
        std::os::unix::fs::symlink("a/b", root.join("deep")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("abs")).unwrap();
        assert_eq!(resolve_below(root, Path::new("x/x/a/b/../b"), &[]).unwrap(), Path::new("a/b"));
        assert_eq!(resolve_below(root, Path::new("deep/../.."), &[]).unwrap(), Path::new(""));
        assert!(resolve_below(root, Path::new("x/x/x/.."), &[]).is_err());
        assert!(resolve_below(root, Path::new("deep/../../.."), &[]).is_err());
        assert!(resolve_below(root, Path::new("loop/f"), &[]).unwrap_err().contains("too many"));
        assert!(resolve_below(root, Path::new("abs/b"), &[]).unwrap_err().contains("absolute"));
        assert_eq!(resolve_below(root, Path::new("abs/b"), &[root]).unwrap(), Path::new("a/b"));
        assert_eq!(resolve_below(root, Path::new("new/../a"), &[]).unwrap(), Path::new("a"));
    }

    #[test]
    fn packing_keeps_inside_links_and_refuses_links_that_leave() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("canary"), "host secret").unwrap();
        let tar = Strategy::Tar { level: None };
        let zst = Strategy::Zstd { level: None };
        for (link, target) in [("up", "../canary"), ("abs", "/etc/passwd"), ("chain/l", "../x/x/../..")] {
            let src = sample(dir.path());
            std::os::unix::fs::symlink(".", src.join("x")).unwrap();
            let at = src.join(link);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, &at).unwrap();
            for strategy in [tar, zst, Strategy::Zip] {
                let err = pack(&src, &dir.path().join("o.pkg"), strategy).unwrap_err();
                assert!(matches!(err, Error::Link { .. }), "{strategy:?} {link}: {err}");
                if strategy != Strategy::Zip {
                    assert!(err.to_string().contains(&at.display().to_string()), "names the link: {err}");
                }
            }
            std::fs::remove_dir_all(&src).unwrap();
        }
        // Zip cannot hold a link even inside the tree: refused, not dropped.
        let src = sample(dir.path());
        std::os::unix::fs::symlink("a.txt", src.join("alias")).unwrap();
        let err = pack(&src, &dir.path().join("o.zip"), Strategy::Zip).unwrap_err();
        assert!(err.to_string().contains("zip cannot hold links") && err.to_string().contains("alias"), "{err}");
        for strategy in [tar, zst] {
            pack(&src, &dir.path().join("o.pkg"), strategy).unwrap();
            let dest = dir.path().join(format!("in-{strategy:?}"));
            unpack(&dir.path().join("o.pkg"), &dest, Some(strategy), &Limits::default()).unwrap();
            assert_eq!(std::fs::read_link(dest.join("alias")).unwrap(), Path::new("a.txt"), "kept as a link");
        }
        // The artifact path itself being a link is the caller's to resolve.
        let link = dir.path().join("passwd");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        for strategy in [tar, zst, Strategy::Zip] {
            let err = pack(&link, &dir.path().join("p.pkg"), strategy).unwrap_err();
            assert!(matches!(err, Error::Link { .. }), "{strategy:?}: {err}");
        }
    }

    #[test]
    fn the_bound_is_the_ratio_over_a_floor_capped_by_the_absolute_limit() {
        let l = Limits { max_bytes: 10 << 30, max_ratio: 200 };
        assert_eq!(l.allowance(1000).0, RATIO_FLOOR, "small archives may expand to the floor");
        assert_eq!(l.allowance(20 << 20).0, 200 * (20 << 20));
        let (bound, _, knob) = l.allowance(1 << 30);
        assert_eq!((bound, knob), (10 << 30, MAX_UNPACKED_BYTES_ENV));
        // The reporter's bombs: 329 KB zstd and 45 MB gzip, each 10 GiB unpacked.
        let d = Limits::default();
        assert!(d.allowance(329_000).0 < 10 << 30 && d.allowance(45_000_000).0 < 10 << 30);
    }

    #[test]
    fn a_bomb_fails_clearly_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("zeros");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a"), vec![0u8; 3 << 20]).unwrap();
        std::fs::write(src.join("b"), vec![0u8; 3 << 20]).unwrap();
        let limits = Limits { max_bytes: 4 << 20, max_ratio: 1000 };
        for strategy in [Strategy::Tar { level: Some(9) }, Strategy::Zstd { level: Some(19) }, Strategy::Zip] {
            let work = dir.path().join(format!("work-{strategy:?}"));
            std::fs::create_dir_all(&work).unwrap();
            let packed = work.join("bomb");
            pack(&src, &packed, strategy).unwrap();
            assert!(std::fs::metadata(&packed).unwrap().len() < 200 << 10);
            let err = unpack(&packed, &work.join("dest"), Some(strategy), &limits).unwrap_err();
            assert!(matches!(err, Error::TooLarge { limit, .. } if limit == 4 << 20), "{strategy:?}: {err}");
            assert!(err.to_string().contains(MAX_UNPACKED_BYTES_ENV), "{err}");
            assert_eq!(left_behind(&work, Path::new("bomb")), Vec::<PathBuf>::new(), "{strategy:?}");
            // Under the bound the same archive unpacks.
            let roomy = Limits { max_bytes: 8 << 20, ..limits };
            unpack(&packed, &work.join("dest"), Some(strategy), &roomy).unwrap();
        }
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
            let err = unpack(&archive, &dest, Some(Strategy::Tar { level: None }), &Limits::default()).unwrap_err();
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
        let err = unpack(&path, &dir.path().join("dest"), Some(Strategy::Zip), &Limits::default()).unwrap_err();
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
        unpack(&packed, &dest, None, &Limits::default()).unwrap();
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
        let err = unpack(&packed, &dir.path().join("in"), None, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("malformed tar.gz archive"), "{err}");
        assert!(!dir.path().join("in").exists());
    }
}
