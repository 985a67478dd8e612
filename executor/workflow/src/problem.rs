//! What stops a workflow from running: problems, each with the field it is
//! about, found while building a plan or linting it.

/// A problem that stops a workflow from running, with the field it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field path, such as `spec.templates[1].dag.tasks[0].depends`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Problems found in a set of files.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("{}: {p}", .file)).collect::<Vec<_>>().join("\n"))]
pub struct PlanError {
    /// The workflow's file.
    pub file: String,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

/// A problem at `path`.
pub(crate) fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { path: path.into(), message: message.into() }
}
