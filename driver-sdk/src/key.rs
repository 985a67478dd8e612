//! Validated object keys.

use crate::error::{Error, Result};
use std::fmt;

/// An object key inside a driver's storage, validated once at the edge.
///
/// # Invariants
/// - No leading `/`, no empty segment (`a//b`), no `.` or `..` segment, so a key
///   can never name something outside the storage root or alias another key.
/// - No ASCII control character (NUL, CR, LF, ...).
/// - At most 1,024 bytes, the limit S3 and GCS share.
/// - One trailing `/` is accepted and dropped: `a/b/` and `a/b` are the same key,
///   as Argo's directory keys are written both ways.
/// - The empty key is the storage root. The server refuses it in every call
///   unless the driver declares [`Capabilities::root_key`](crate::Capabilities::root_key)
///   (git: the whole repository); it is never written or deleted by the SDK's defaults.
///
/// ```
/// use ferry_sdk::ArtifactKey;
/// assert_eq!(ArtifactKey::parse("wf/pod/out.tgz").unwrap().as_str(), "wf/pod/out.tgz");
/// assert_eq!(ArtifactKey::parse("dir/").unwrap().as_str(), "dir");
/// assert!(ArtifactKey::parse("../etc/passwd").is_err());
/// assert!(ArtifactKey::parse("/abs").is_err());
/// assert!(ArtifactKey::parse("a//b").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey(String);

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

impl ArtifactKey {
    /// Validates `raw` against the invariants above.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid_argument(format!("invalid key {}: {why}", crate::shown(raw)));
        if raw.len() > MAX_KEY_BYTES {
            return Err(bad(&format!("longer than {MAX_KEY_BYTES} bytes")));
        }
        if raw.starts_with('/') {
            return Err(bad("must not start with '/'"));
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return if raw.is_empty() { Ok(ArtifactKey(String::new())) } else { Err(bad("empty")) };
        }
        for segment in trimmed.split('/') {
            match segment {
                "" => return Err(bad("empty path segment ('//')")),
                "." | ".." => return Err(bad("'.' and '..' segments are not allowed")),
                s if s.chars().any(|c| c.is_ascii_control()) => {
                    return Err(bad("control characters are not allowed"));
                }
                _ => {}
            }
        }
        Ok(ArtifactKey(trimmed.to_string()))
    }

    /// The storage root (the empty key).
    pub fn root() -> Self {
        ArtifactKey(String::new())
    }

    /// The key as a string, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the storage root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Fails with [`crate::ErrorKind::InvalidArgument`] for the root key, which
    /// names no single object: writing or deleting it would touch everything.
    pub fn require_object(&self, operation: &str) -> Result<&Self> {
        if self.is_root() {
            Err(Error::invalid_argument(format!("{operation} needs a non-empty key")))
        } else {
            Ok(self)
        }
    }

    /// The key of `relative` (a `/`-separated path) under this key, validated.
    pub fn join(&self, relative: &str) -> Result<Self> {
        if self.is_root() {
            ArtifactKey::parse(relative)
        } else {
            ArtifactKey::parse(&format!("{}/{}", self.0, relative))
        }
    }

    /// The part of `child` below this key (`a` + `a/b/c` gives `b/c`), or `None`
    /// when `child` is not strictly under it. `ab` is never under `a`.
    pub fn relative<'a>(&self, child: &'a ArtifactKey) -> Option<&'a str> {
        if self.is_root() {
            return (!child.is_root()).then_some(child.as_str());
        }
        child.0.strip_prefix(self.0.as_str())?.strip_prefix('/').filter(|rest| !rest.is_empty())
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_argo_shaped_and_odd_keys() {
        for k in [
            "wf-abc/wf-abc-1234/out.tgz",
            "uploads/ns/0f2c/file name (1).csv",
            "données/résumé.txt",
            "日本/🚀/שלום",
            "a%2Fb",
            "a+b",
            "a\\b",
            " !@#$%^&()_+-=;',.~`[]{}",
            ".hidden/..dots/x..y",
        ] {
            assert_eq!(ArtifactKey::parse(k).unwrap().as_str(), k);
        }
    }

    #[test]
    fn rejects_escapes_and_garbage() {
        for k in ["..", "../x", "a/../../b", "a/./b", "/abs", "a//b", "a\0b", "a\nb", "/", "//"] {
            let err = ArtifactKey::parse(k).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{k:?}");
            assert!(err.message().contains("invalid key"), "{err}");
        }
        assert!(ArtifactKey::parse(&"x".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    #[test]
    fn trailing_slash_is_the_same_key() {
        assert_eq!(ArtifactKey::parse("a/b/").unwrap(), ArtifactKey::parse("a/b").unwrap());
        assert!(ArtifactKey::parse("").unwrap().is_root());
    }

    #[test]
    fn relative_respects_segment_boundaries() {
        let a = ArtifactKey::parse("a").unwrap();
        let child = |s| ArtifactKey::parse(s).unwrap();
        assert_eq!(a.relative(&child("a/b/c")), Some("b/c"));
        assert_eq!(a.relative(&child("ab/c")), None);
        assert_eq!(a.relative(&child("a")), None);
        assert_eq!(ArtifactKey::root().relative(&child("x/y")), Some("x/y"));
        assert_eq!(a.join("b/c").unwrap(), child("a/b/c"));
        assert!(a.join("../b").is_err());
    }
}
