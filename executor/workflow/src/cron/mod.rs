//! Argo's `CronWorkflow`: a workflow spec with a schedule. The document,
//! the workflow one tick of it runs as, and its checks; [`schedule`] holds
//! the times it runs at, [`decide`] what the scheduler does at a tick, and
//! [`when`] its `when` condition.

pub mod decide;
pub mod schedule;
pub mod when;

use crate::model::Workflow;
pub use crate::model::{CronSpec, CronWorkflow};
use crate::problem::{Problem, problem};

/// The label Argo puts on every workflow a cron workflow starts, naming it.
pub const CRON_LABEL: &str = "workflows.argoproj.io/cron-workflow";

/// The annotation holding a run's scheduled time (`{{workflow.scheduledTime}}`).
pub const SCHEDULED_TIME_ANNOTATION: &str = "workflows.argoproj.io/scheduled-time";

/// Runs kept of each outcome when the cron workflow does not say (Argo's defaults).
pub const DEFAULT_SUCCESSFUL_HISTORY: u32 = 3;
/// See [`DEFAULT_SUCCESSFUL_HISTORY`].
pub const DEFAULT_FAILED_HISTORY: u32 = 1;

/// What to do with a run still going when the next tick comes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConcurrencyPolicy {
    /// Start the new run beside it.
    #[default]
    Allow,
    /// Skip the tick.
    Forbid,
    /// Stop it, then start the new run.
    Replace,
}

impl ConcurrencyPolicy {
    /// Argo's spelling; empty is `Allow`.
    pub fn parse(text: &str) -> Option<ConcurrencyPolicy> {
        match text {
            "" | "Allow" => Some(ConcurrencyPolicy::Allow),
            "Forbid" => Some(ConcurrencyPolicy::Forbid),
            "Replace" => Some(ConcurrencyPolicy::Replace),
            _ => None,
        }
    }
}

impl CronSpec {
    /// `schedules`, or the one `schedule`.
    pub fn all_schedules(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.schedules.iter().map(String::as_str).collect();
        if !self.schedule.is_empty() {
            all.insert(0, &self.schedule);
        }
        all
    }

    /// How many finished runs of each outcome are kept, as Argo reads the
    /// limits: a negative one is the default.
    pub fn history_limits(&self) -> decide::HistoryLimits {
        let limit = |given: Option<i32>, default| given.and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
        decide::HistoryLimits {
            succeeded: limit(self.successful_jobs_history_limit, DEFAULT_SUCCESSFUL_HISTORY),
            failed: limit(self.failed_jobs_history_limit, DEFAULT_FAILED_HISTORY),
        }
    }

    /// The fields the scheduler reads, checked: the schedules in their time
    /// zone, the policy, the deadline and `when`. Every problem at its path.
    pub fn rules(&self) -> Result<decide::Rules, Vec<Problem>> {
        let mut problems = Vec::new();
        let schedule = schedule::Schedule::parse(self).map_err(|p| problems.extend(p)).ok();
        let policy = ConcurrencyPolicy::parse(&self.concurrency_policy);
        if policy.is_none() {
            problems.push(problem(
                "spec.concurrencyPolicy",
                format!("{:?} is not a concurrency policy: use Allow, Forbid or Replace", self.concurrency_policy),
            ));
        }
        if let Some(d) = self.starting_deadline_seconds
            && d < 0
        {
            problems.push(problem("spec.startingDeadlineSeconds", format!("{d} is negative")));
        }
        let when = when::When::parse(&self.when).map_err(|e| problems.push(problem("spec.when", e.to_string()))).ok();
        match (schedule, policy, when) {
            (Some(schedule), Some(policy), Some(when)) if problems.is_empty() => Ok(decide::Rules {
                schedule,
                policy,
                starting_deadline: self.starting_deadline_seconds.map(jiff::SignedDuration::from_secs),
                suspend: self.suspend,
                when,
            }),
            _ => Err(problems),
        }
    }
}

impl CronWorkflow {
    /// The name of the run scheduled at `scheduled` (unix seconds), as Argo
    /// names it: `<cron name>-<unix seconds>`.
    pub fn run_name(&self, scheduled: jiff::Timestamp) -> String {
        format!("{}-{}", self.metadata.name, scheduled.as_second())
    }

    /// The workflow the tick at `scheduled` runs: `workflowSpec` with
    /// `workflowMetadata`, the cron label and the scheduled-time annotation
    /// (RFC 3339, in the schedule's time zone).
    pub fn workflow_at(&self, scheduled: &jiff::Zoned) -> Workflow {
        let mut metadata = self.spec.workflow_metadata.clone().unwrap_or_default();
        metadata.name = self.run_name(scheduled.timestamp());
        metadata.generate_name = String::new();
        if metadata.namespace.is_empty() {
            metadata.namespace = self.metadata.namespace.clone();
        }
        metadata.labels.insert(CRON_LABEL.into(), self.metadata.name.clone());
        metadata.annotations.insert(SCHEDULED_TIME_ANNOTATION.into(), schedule::rfc3339_zoned(scheduled));
        Workflow {
            api_version: self.api_version.clone(),
            kind: "Workflow".into(),
            metadata,
            spec: self.spec.workflow_spec.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(yaml: &str) -> CronWorkflow {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_tick_runs_as_a_workflow_named_after_its_time() {
        let c = cron(
            "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: nightly}\nspec:\n  schedule: '0 3 * * *'\n  workflowMetadata: {labels: {team: a}, annotations: {note: b}}\n  workflowSpec: {entrypoint: main}\n",
        );
        let at: jiff::Zoned = "2026-03-01T03:00:00+01:00[Europe/Paris]".parse().unwrap();
        let wf = c.workflow_at(&at);
        assert_eq!(wf.metadata.name, "nightly-1772330400");
        assert_eq!(wf.kind, "Workflow");
        assert_eq!(wf.metadata.labels["team"], "a");
        assert_eq!(wf.metadata.labels[CRON_LABEL], "nightly");
        assert_eq!(wf.metadata.annotations["note"], "b");
        assert_eq!(wf.metadata.annotations[SCHEDULED_TIME_ANNOTATION], "2026-03-01T03:00:00+01:00");
        assert_eq!(wf.spec.entrypoint, "main");
    }

    #[test]
    fn bad_fields_are_named_by_path() {
        let c = cron(
            "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: x}\nspec:\n  schedule: '61 * * * *'\n  timezone: Mars/Olympus\n  concurrencyPolicy: Sometimes\n  startingDeadlineSeconds: -1\n  workflowSpec: {entrypoint: main}\n",
        );
        let problems = c.spec.rules().unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["spec.schedule", "spec.timezone", "spec.concurrencyPolicy", "spec.startingDeadlineSeconds"]);
        assert!(problems[1].message.contains("Mars/Olympus"), "{problems:?}");
    }

    #[test]
    fn history_limits_default_as_argo_does() {
        let mut spec = CronSpec::default();
        assert_eq!(spec.history_limits(), decide::HistoryLimits { succeeded: 3, failed: 1 });
        spec.successful_jobs_history_limit = Some(0);
        spec.failed_jobs_history_limit = Some(-2);
        assert_eq!(spec.history_limits(), decide::HistoryLimits { succeeded: 0, failed: 1 });
    }
}
