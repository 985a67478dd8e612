//! The catalogue's building blocks: a case, its level, tags and requirements.

use crate::context::Cx;
use futures::future::BoxFuture;

/// How much a case matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Level {
    /// Argo relies on it, or data integrity or safety does. A failure fails the run.
    Must,
    /// Parity with built-in drivers or operational robustness. Reported, not fatal.
    Should,
    /// Recorded in the observed capability profile; never a failure.
    Info,
}

impl Level {
    /// `MUST`, `SHOULD` or `INFO`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        }
    }
}

/// What a case needs; a case whose need is unmet is skipped with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The profile claims directories.
    Directories,
    /// GetCapabilities answered `supports_save_stream=true`.
    SaveStream,
    /// The runner started the driver (lifecycle and resource cases).
    Managed,
    /// The profile does not claim read-only.
    Writable,
    /// The profile has an `altConfiguration`.
    Alt,
    /// The profile claims objects survive a restart.
    Persistent,
    /// The profile lists `badConfigurations`.
    BadConfigurations,
    /// The profile lists `secrets`.
    Secrets,
    /// The profile has a `hooks.backendDown` command.
    FaultHook,
    /// The profile does not claim `rootKey` (the empty key as an artifact).
    NoRootKey,
    /// The profile does not claim `delete: false`.
    Delete,
    /// The profile does not claim `list: false`.
    List,
}

/// A conformance case.
pub struct Case {
    /// Stable ID, never reused.
    pub id: &'static str,
    /// MUST, SHOULD or INFO.
    pub level: Level,
    /// Selection tags.
    pub tags: &'static [&'static str],
    /// Requirements, checked before running.
    pub needs: &'static [Need],
    /// What the case checks, in one line.
    pub title: &'static str,
    /// The check. `Err` fails it; [`skip`] skips it with a reason.
    pub run: fn(Cx) -> BoxFuture<'static, anyhow::Result<()>>,
}

/// A case that decided at run time it does not apply.
#[derive(Debug)]
pub struct Skipped(pub String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skipped {}

/// Skips the running case with `reason`.
pub fn skip(reason: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Skipped(reason.into()))
}

/// Declares a [`Case`]: `case!("AD-X-001", Must, ["Core"], [Writable], "title", |cx| { ... })`.
#[macro_export]
macro_rules! case {
    ($id:literal, $level:ident, [$($tag:literal),*], [$($need:ident),*], $title:literal, |$cx:ident| $body:block) => {
        $crate::case::Case {
            id: $id,
            level: $crate::case::Level::$level,
            tags: &[$($tag),*],
            needs: &[$($crate::case::Need::$need),*],
            title: $title,
            run: |$cx| Box::pin(async move $body),
        }
    };
}
