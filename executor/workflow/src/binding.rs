//! Binding a template's inputs: the values its arguments and its own input
//! declarations stand for, before the template runs. The controller binds
//! parameters; this module resolves artifact arguments (`from`,
//! `fromExpression`, `raw`, and locations), which the engine then loads.

use crate::expr;
use crate::model::Artifact;
use crate::repository::{Declared, Repository, declared, location_count};
use crate::strategy::Strategy;
use crate::values::{ArtifactValue, Location};
use crate::vars::Vars;
use std::collections::{BTreeMap, BTreeSet};

/// Input values handed to a template.
#[derive(Clone, Debug, Default)]
pub struct Args {
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Artifact values; `None` for an optional artifact that does not exist.
    pub artifacts: BTreeMap<String, Option<ArtifactValue>>,
    /// Parameters whose argument is nothing but a reference to an output a
    /// skipped or omitted step never produced: as in Argo, they count as not
    /// supplied, so the input's own default applies.
    pub absent: BTreeSet<String>,
}

/// An input artifact bound to a template.
#[derive(Clone, Debug)]
pub struct BoundArtifact {
    /// The template's declaration (path, mode, ...), substituted.
    pub decl: Artifact,
    /// Where it comes from; `None` when optional and missing.
    pub value: Option<ArtifactValue>,
}

/// The bound inputs of a template, as variables.
#[derive(Clone, Debug)]
pub struct Bound {
    /// Variables including `inputs.*`.
    pub vars: Vars,
    /// Input artifacts.
    pub artifacts: Vec<BoundArtifact>,
}

/// Why an artifact argument (or declaration) stands for nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// More than one of `plugin`, `s3`, ..., `raw`.
    #[error("names more than one location (plugin, s3, oss, gcs, git, http, raw): keep one")]
    SeveralLocations,
    /// Both `from` and `fromExpression`.
    #[error("has both from and fromExpression")]
    FromAndFromExpression,
    /// A `from` that is not one `{{...}}` reference.
    #[error("from {0:?} must be a single {{{{...}}}} reference")]
    NotAReference(String),
    /// A `fromExpression` that cannot be evaluated.
    #[error("fromExpression: {0}")]
    FromExpression(expr::Error),
    /// A field whose `{{...}}` tags cannot be substituted.
    #[error("{field}: {source}")]
    Substitution {
        /// The field (`key`, `raw.data`, `subPath`, ...).
        field: &'static str,
        /// Why.
        #[source]
        source: expr::Error,
    },
    /// A `subPath` leading out of the artifact.
    #[error("subPath {0:?} must be a relative path without `..`")]
    SubPathEscapes(String),
}

/// Strips `{{ }}` from a `from:` reference.
fn reference(text: &str) -> Option<&str> {
    Some(text.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim())
}

/// The value an artifact argument (or a template's own input declaration)
/// stands for. `Ok(None)` when it names nothing that exists.
pub fn argument_value(a: &Artifact, vars: &Vars, repo: &Repository) -> Result<Option<ArtifactValue>, BindError> {
    if location_count(a) > 1 {
        return Err(BindError::SeveralLocations);
    }
    if !a.from.is_empty() && !a.from_expression.is_empty() {
        return Err(BindError::FromAndFromExpression);
    }
    let mut value = if !a.from.is_empty() {
        let r = reference(&a.from).ok_or_else(|| BindError::NotAReference(a.from.clone()))?;
        vars.artifact(r)
    } else if !a.from_expression.is_empty() {
        let chosen = expr::from_expression(&a.from_expression, &mut |name| vars.resolve(name))
            .map_err(BindError::FromExpression)?;
        vars.artifact(&chosen)
    } else if let Some(raw) = &a.raw {
        Some(ArtifactValue {
            raw: Some(
                vars.substitute(&raw.data).map_err(|source| BindError::Substitution { field: "raw.data", source })?,
            ),
            ..Default::default()
        })
    } else {
        let sub = |t: &str, field: &'static str| {
            vars.substitute(t).map_err(|source| BindError::Substitution { field, source })
        };
        let location = match declared(a) {
            Declared::Nothing => None,
            Declared::KeyOnly(key) => Some(Location { key: sub(&key, "key")?, ..repo.location.clone() }),
            Declared::Full(loc) => Some(Location {
                key: sub(&loc.key, "key")?,
                configuration: sub(&loc.configuration, "configuration")?,
                ..loc
            }),
        };
        location.map(|l| ArtifactValue { location: Some(l), raw: None, archive: a.strategy() })
    };
    if let (Some(v), false) = (&mut value, a.sub_path.is_empty()) {
        let sub =
            vars.substitute(&a.sub_path).map_err(|source| BindError::Substitution { field: "subPath", source })?;
        let clean = sub.trim_matches('/');
        if clean.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(BindError::SubPathEscapes(sub));
        }
        if let Some(loc) = &mut v.location {
            loc.key = format!("{}/{clean}", loc.key.trim_end_matches('/'));
            v.archive = Some(Strategy::None);
        }
    }
    Ok(value)
}
