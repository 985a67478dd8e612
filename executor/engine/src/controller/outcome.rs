//! How a node ends, and how a parent's phase follows from its children's:
//! a finished child that did not succeed fails its parent unless the step
//! continues on it (`continueOn`), or, in a DAG, a task that ran because of
//! it handled it.

use ferry_workflow::binding;
use ferry_workflow::expr;
use ferry_workflow::expression;
use ferry_workflow::model::{ContinueOn, Template};
use ferry_workflow::repository::Repository;
use ferry_workflow::values::{Outputs, Phase};
use ferry_workflow::vars::{Outcome, Vars};

use super::NodeResult;
use crate::error::StepError;

/// How a node's body (a pod, steps, a DAG) ended.
#[derive(Debug)]
pub(super) struct Ended {
    /// `Running` when the run was interrupted: the node stays unfinished.
    pub(super) phase: Phase,
    /// Why it did not succeed.
    pub(super) message: String,
    /// What it produced.
    pub(super) outputs: Outputs,
}

impl Ended {
    /// Ended in `phase` for `message`, with no outputs.
    pub(super) fn new(phase: Phase, message: impl Into<String>) -> Ended {
        Ended { phase, message: message.into(), outputs: Outputs::default() }
    }

    /// Could not run as asked.
    pub(super) fn error(message: impl ToString) -> Ended {
        Ended::new(Phase::Error, message.to_string())
    }

    /// Interrupted before it finished.
    pub(super) fn unfinished() -> Ended {
        Ended::new(Phase::Running, String::new())
    }
}

/// Whether a finished child in `phase` fails its parent: it did not
/// succeed, and its step does not continue on it.
pub(super) fn fails(phase: Phase, continue_on: Option<ContinueOn>) -> bool {
    let c = continue_on.unwrap_or_default();
    let continued = (c.failed && phase == Phase::Failed) || (c.error && phase == Phase::Error);
    !phase.is_ok() && !continued
}

/// A parent's phase, folded over its children: unfinished while any child
/// is, else the first child that fails it decides, else `Succeeded`.
pub(super) struct Fold {
    pub(super) phase: Phase,
    pub(super) message: String,
}

impl Fold {
    pub(super) fn new() -> Fold {
        Fold { phase: Phase::Succeeded, message: String::new() }
    }

    /// Adds a child in `phase`; `counts` says whether its failure fails the
    /// parent (see [`fails`]); `describe` names it for the parent's message.
    pub(super) fn add(&mut self, phase: Phase, counts: bool, describe: impl FnOnce() -> String) {
        if !phase.is_done() {
            self.phase = Phase::Running;
        } else if counts && self.phase.is_ok() {
            self.phase = phase;
            self.message = describe();
        }
    }

    /// The parent's end: its outputs computed only when it succeeded.
    pub(super) fn end(self, outputs: impl FnOnce() -> Result<Outputs, StepError>) -> Ended {
        if !self.phase.is_ok() {
            return Ended::new(self.phase, self.message);
        }
        match outputs() {
            Ok(outputs) => Ended { phase: self.phase, message: self.message, outputs },
            Err(e) => Ended::error(e),
        }
    }
}

/// A node's result as its siblings' variables see it.
pub(super) fn outcome(r: &NodeResult) -> Outcome {
    Outcome {
        id: r.id.to_string(),
        phase: r.phase,
        outputs: r.outputs.clone(),
        children: None,
        started: r.started,
        finished: r.finished,
    }
}

pub(super) fn to_expr_phase(p: Phase) -> expr::Phase {
    match p {
        Phase::Succeeded => expr::Phase::Succeeded,
        Phase::Failed => expr::Phase::Failed,
        Phase::Error | Phase::Pending | Phase::Running => expr::Phase::Error,
        Phase::Skipped => expr::Phase::Skipped,
        Phase::Omitted => expr::Phase::Omitted,
    }
}

/// `valueFrom.expression` of a steps or DAG template's output: evaluated
/// with every variable of the template, its children's outcomes included,
/// and stored as Go's `%v` text, as Argo stores it.
fn expression_output(text: &str, vars: &Vars) -> Result<String, expression::ExpressionError> {
    let all = vars.expression_vars(&expression::references(text));
    expression::parameter_text(text, &expression::evaluate(text, &all)?)
}

/// A steps or DAG template's outputs, from its children's.
pub(super) fn composite_outputs(template: &Template, vars: &Vars, repo: &Repository) -> Result<Outputs, StepError> {
    let mut out = Outputs::default();
    for p in &template.outputs.parameters {
        if let Some(vf) = p.value_from.as_ref().filter(|vf| !vf.expression.is_empty()) {
            let value = expression_output(&vf.expression, vars)
                .or_else(|e| vf.default.as_ref().map(|d| d.0.clone()).ok_or(e))
                .map_err(|e| StepError::invalid(format!("outputs.parameters.{}.valueFrom.expression", p.name), e))?;
            out.parameters.insert(p.name.clone(), value);
            continue;
        }
        let raw = p
            .value_from
            .as_ref()
            .map(|vf| vf.parameter.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| p.value.as_ref().map(|v| v.0.clone()));
        let value = match raw {
            Some(raw) => match vars.substitute(&raw) {
                Ok(v) => v,
                Err(e) => match p.value_from.as_ref().and_then(|vf| vf.default.as_ref()) {
                    Some(d) => d.0.clone(),
                    None => return Err(StepError::invalid(format!("outputs.parameters.{}", p.name), e)),
                },
            },
            None => {
                let at = format!("outputs.parameters.{}", p.name);
                return Err(StepError::invalid(at, "needs valueFrom.parameter or value"));
            }
        };
        out.parameters.insert(p.name.clone(), value);
    }
    for a in &template.outputs.artifacts {
        match binding::argument_value(a, vars, repo) {
            Ok(Some(v)) => {
                out.artifacts.insert(a.name.clone(), v);
            }
            Ok(None) if a.optional => {}
            Ok(None) => return Err(StepError::invalid(format!("outputs.artifacts.{}", a.name), "nothing to export")),
            Err(e) => return Err(StepError::invalid(format!("outputs.artifacts.{}", a.name), e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_counted_failure_decides_and_unfinished_wins() {
        let mut f = Fold::new();
        f.add(Phase::Succeeded, false, || "a".into());
        f.add(Phase::Failed, false, || "continued".into());
        f.add(Phase::Error, true, || "b".into());
        f.add(Phase::Failed, true, || "c".into());
        assert_eq!((f.phase, f.message.as_str()), (Phase::Error, "b"));
        f.add(Phase::Running, false, String::new);
        assert_eq!(f.phase, Phase::Running);
    }

    #[test]
    fn continue_on_covers_only_its_phase() {
        let failed = Some(ContinueOn { failed: true, error: false });
        assert!(!fails(Phase::Failed, failed));
        assert!(fails(Phase::Error, failed));
        assert!(fails(Phase::Failed, None));
        assert!(!fails(Phase::Skipped, None));
    }
}
