//! What `ferry cron` does when a tick comes, and which finished runs it
//! deletes: pure functions of the rules, the clock and the runs, so each
//! policy is tested without waiting for a clock.

use super::ConcurrencyPolicy;
use super::schedule::Schedule;
use super::when::When;
use jiff::{SignedDuration, Timestamp};

/// How late a tick may start and still count as on time when
/// `startingDeadlineSeconds` is 0: waking from a timer is never exact.
pub const ON_TIME: SignedDuration = SignedDuration::from_secs(1);

/// The fields of a cron workflow the scheduler follows, checked.
#[derive(Clone, Debug)]
pub struct Rules {
    /// When ticks come.
    pub schedule: Schedule,
    /// What a tick does to a run still going.
    pub policy: ConcurrencyPolicy,
    /// A tick later than this is skipped.
    pub starting_deadline: Option<SignedDuration>,
    /// Nothing runs.
    pub suspend: bool,
    /// Checked before each run.
    pub when: When,
}

/// What to do at a tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the tick's run, after stopping these (Replace).
    Start {
        /// Runs of this cron workflow to stop first.
        stop: Vec<String>,
    },
    /// Do not run the tick.
    Skip(Skip),
}

/// Why a tick is not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `suspend: true`.
    Suspended,
    /// It came more than `startingDeadlineSeconds` ago.
    Late {
        /// How late.
        by: SignedDuration,
    },
    /// `when` is false.
    WhenFalse,
    /// `concurrencyPolicy: Forbid` and these runs are still going.
    Running(Vec<String>),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Suspended => f.write_str("suspended"),
            Skip::Late { by } => write!(f, "{}s late, past startingDeadlineSeconds", by.as_secs()),
            Skip::WhenFalse => f.write_str("`when` is false"),
            Skip::Running(names) => write!(f, "concurrencyPolicy Forbid and {} still running", names.join(", ")),
        }
    }
}

/// The action at `tick`, seen at `now`, with `running` runs of this cron
/// workflow still going and `when` already evaluated (`when_holds`).
/// Argo's order: suspension, the deadline, `when`, then the policy.
pub fn at_tick(rules: &Rules, tick: Timestamp, now: Timestamp, running: &[String], when_holds: bool) -> Action {
    if rules.suspend {
        return Action::Skip(Skip::Suspended);
    }
    let late = now.duration_since(tick);
    if let Some(deadline) = rules.starting_deadline
        && late > deadline.max(ON_TIME)
    {
        return Action::Skip(Skip::Late { by: late });
    }
    if !when_holds {
        return Action::Skip(Skip::WhenFalse);
    }
    match rules.policy {
        ConcurrencyPolicy::Allow => Action::Start { stop: Vec::new() },
        ConcurrencyPolicy::Forbid if !running.is_empty() => Action::Skip(Skip::Running(running.to_vec())),
        ConcurrencyPolicy::Forbid => Action::Start { stop: Vec::new() },
        ConcurrencyPolicy::Replace => Action::Start { stop: running.to_vec() },
    }
}

/// How many finished runs of each outcome are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Successful runs.
    pub succeeded: u32,
    /// Failed (or errored) runs.
    pub failed: u32,
}

/// A finished run of a cron workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedRun {
    /// Its name.
    pub name: String,
    /// When it finished (unix milliseconds).
    pub finished: i64,
    /// Whether it succeeded.
    pub succeeded: bool,
}

/// The finished runs beyond the limits, oldest first: those to delete.
pub fn beyond_history(runs: &[FinishedRun], limits: HistoryLimits) -> Vec<String> {
    let mut doomed = Vec::new();
    for (succeeded, keep) in [(true, limits.succeeded), (false, limits.failed)] {
        let mut these: Vec<&FinishedRun> = runs.iter().filter(|r| r.succeeded == succeeded).collect();
        // Newest first; equal times by name, so the choice never depends on listing order.
        these.sort_by(|a, b| b.finished.cmp(&a.finished).then_with(|| b.name.cmp(&a.name)));
        doomed.extend(these.into_iter().skip(keep as usize).map(|r| (r.finished, r.name.clone())));
    }
    doomed.sort();
    doomed.into_iter().map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::CronSpec;

    fn rules(policy: ConcurrencyPolicy, deadline: Option<i64>) -> Rules {
        let spec = CronSpec { schedule: "* * * * *".into(), timezone: "UTC".into(), ..Default::default() };
        Rules {
            schedule: Schedule::parse(&spec).unwrap(),
            policy,
            starting_deadline: deadline.map(SignedDuration::from_secs),
            suspend: false,
            when: When::default(),
        }
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const TICK: &str = "2026-01-01T10:00:00Z";

    fn start(stop: &[&str]) -> Action {
        Action::Start { stop: stop.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn allow_starts_beside_a_running_run() {
        let r = rules(ConcurrencyPolicy::Allow, None);
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &["c-1".into()], true), start(&[]));
    }

    #[test]
    fn forbid_skips_while_a_run_is_going_and_starts_once_it_is_done() {
        let r = rules(ConcurrencyPolicy::Forbid, None);
        let running = vec!["c-1767261540".to_string()];
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &running, true), Action::Skip(Skip::Running(running.clone())));
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &[], true), start(&[]));
    }

    #[test]
    fn replace_stops_every_running_run_first() {
        let r = rules(ConcurrencyPolicy::Replace, None);
        let running = vec!["c-1".to_string(), "c-2".to_string()];
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &running, true), start(&["c-1", "c-2"]));
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &[], true), start(&[]));
    }

    #[test]
    fn a_tick_later_than_the_starting_deadline_is_skipped() {
        let r = rules(ConcurrencyPolicy::Allow, Some(30));
        assert_eq!(at_tick(&r, ts(TICK), ts("2026-01-01T10:00:30Z"), &[], true), start(&[]));
        let late = at_tick(&r, ts(TICK), ts("2026-01-01T10:00:31Z"), &[], true);
        assert_eq!(late, Action::Skip(Skip::Late { by: SignedDuration::from_secs(31) }));
        // Without a deadline a late tick still runs, as Argo's does.
        let none = rules(ConcurrencyPolicy::Allow, None);
        assert_eq!(at_tick(&none, ts(TICK), ts("2026-01-01T11:00:00Z"), &[], true), start(&[]));
        // A deadline of 0 still lets a tick run that the timer woke a moment late for.
        let zero = rules(ConcurrencyPolicy::Allow, Some(0));
        assert_eq!(at_tick(&zero, ts(TICK), ts("2026-01-01T10:00:00.3Z"), &[], true), start(&[]));
        assert!(matches!(at_tick(&zero, ts(TICK), ts("2026-01-01T10:00:05Z"), &[], true), Action::Skip(_)));
    }

    #[test]
    fn suspension_then_lateness_then_when_decide_before_the_policy() {
        let mut r = rules(ConcurrencyPolicy::Forbid, Some(10));
        let running = vec!["c-1".to_string()];
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &running, false), Action::Skip(Skip::WhenFalse));
        let late = at_tick(&r, ts(TICK), ts("2026-01-01T10:05:00Z"), &running, false);
        assert!(matches!(late, Action::Skip(Skip::Late { .. })), "{late:?}");
        r.suspend = true;
        assert_eq!(at_tick(&r, ts(TICK), ts(TICK), &running, true), Action::Skip(Skip::Suspended));
    }

    fn run(name: &str, finished: i64, succeeded: bool) -> FinishedRun {
        FinishedRun { name: name.into(), finished, succeeded }
    }

    #[test]
    fn history_keeps_the_newest_runs_of_each_outcome() {
        let runs = [
            run("c-1", 1, true),
            run("c-2", 2, false),
            run("c-3", 3, true),
            run("c-4", 4, false),
            run("c-5", 5, true),
            run("c-6", 6, true),
        ];
        assert_eq!(beyond_history(&runs, HistoryLimits { succeeded: 3, failed: 1 }), ["c-1", "c-2"]);
        assert_eq!(
            beyond_history(&runs, HistoryLimits { succeeded: 0, failed: 0 }),
            ["c-1", "c-2", "c-3", "c-4", "c-5", "c-6"]
        );
        assert!(beyond_history(&runs, HistoryLimits { succeeded: 10, failed: 10 }).is_empty());
        assert!(beyond_history(&[], HistoryLimits { succeeded: 0, failed: 0 }).is_empty());
    }
}
