//! A DAG template. Each task waits for its dependencies to be decided;
//! deciding one wakes only its dependents, so a DAG of N tasks costs
//! O(N + edges).

use super::loops::{Site, limiter};
use super::outcome::{Ended, Fold, composite_outputs, fails, outcome, to_expr_phase};
use super::{Call, Controller};
use crate::error::StepError;
use crate::status::NodeKind;
use ferry_workflow::binding::Bound;
use ferry_workflow::expr::{self, Depends, TaskOutcome};
use ferry_workflow::model::{Step, Template};
use ferry_workflow::plan::Origin;
use ferry_workflow::values::Phase;
use ferry_workflow::vars::{Outcome, Vars};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The tasks and their edges.
struct Graph<'a> {
    tasks: &'a [Step],
    /// Each task's condition (`depends`, or its `dependencies` as one).
    depends: Vec<Depends>,
    index: HashMap<&'a str, usize>,
    /// The tasks that depend on each task.
    dependents: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    fn new(tasks: &'a [Step]) -> Result<Graph<'a>, StepError> {
        let mut depends = Vec::with_capacity(tasks.len());
        for t in tasks {
            depends.push(if t.depends.trim().is_empty() {
                expr::from_dependencies(&t.dependencies)
            } else {
                expr::parse_depends(&t.depends)
                    .map_err(|e| StepError::invalid(format!("task {}", t.name), format!("depends: {e}")))?
            });
        }
        let index: HashMap<&str, usize> = tasks.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for (i, d) in depends.iter().enumerate() {
            let mut on: Vec<usize> = d.tasks().iter().filter_map(|n| index.get(n.as_str()).copied()).collect();
            on.sort_unstable();
            on.dedup();
            for j in on {
                dependents[j].push(i);
            }
        }
        Ok(Graph { tasks, depends, index, dependents })
    }

    /// Whether task `i` runs, its dependencies decided.
    fn should_run(&self, i: usize, outcomes: &[Option<Outcome>]) -> Result<bool, StepError> {
        let task = &self.tasks[i];
        if task.depends.trim().is_empty() && !task.dependencies.is_empty() {
            // `dependencies` also accept a failed dependency with continueOn.
            return Ok(task.dependencies.iter().all(|d| {
                let decided = self.index.get(d.as_str()).and_then(|&j| outcomes[j].as_ref().map(|o| (j, o)));
                decided.is_some_and(|(j, o)| !fails(o.phase, self.tasks[j].continue_on))
            }));
        }
        let lookup = |n: &str| -> Option<TaskOutcome> {
            let o = outcomes[*self.index.get(n)?].as_ref()?;
            let children = o.children.as_ref().map(|c| c.iter().map(|(p, _)| to_expr_phase(*p)).collect());
            Some(TaskOutcome { phase: to_expr_phase(o.phase), children: children.unwrap_or_default() })
        };
        self.depends[i].evaluate(&lookup).map_err(|e| StepError::invalid("depends", e))
    }

    /// Whether a task that depends on task `i` handles its failure.
    fn handled_by_dependents(&self, i: usize) -> bool {
        self.dependents[i].iter().any(|&k| self.depends[k].handles_failure_of(&self.tasks[i].name))
    }
}

/// Where a DAG's run stands.
struct Progress {
    /// Per task, its dependencies not yet decided.
    waiting: Vec<usize>,
    ready: VecDeque<usize>,
    outcomes: Vec<Option<Outcome>>,
    ran: Vec<bool>,
    /// A task failed unhandled (failFast starts nothing after it).
    failed: bool,
    interrupted: bool,
}

impl Progress {
    fn new(g: &Graph<'_>) -> Progress {
        let mut waiting = vec![0; g.tasks.len()];
        for &k in g.dependents.iter().flatten() {
            waiting[k] += 1;
        }
        let ready = (0..g.tasks.len()).filter(|&i| waiting[i] == 0).collect();
        Progress {
            waiting,
            ready,
            outcomes: vec![None; g.tasks.len()],
            ran: vec![false; g.tasks.len()],
            failed: false,
            interrupted: false,
        }
    }

    /// Records a task that ran to outcome `o`.
    fn finished(&mut self, g: &Graph<'_>, i: usize, o: Outcome, vars: &mut Vars) {
        if !o.phase.is_done() {
            self.interrupted = true;
        } else if fails(o.phase, g.tasks[i].continue_on) && !g.handled_by_dependents(i) {
            self.failed = true;
        }
        self.decide(g, i, o, vars);
    }

    /// Records task `i`'s outcome (`tasks.<name>` for the tasks after it)
    /// and readies the dependents it was the last wait of.
    fn decide(&mut self, g: &Graph<'_>, i: usize, o: Outcome, vars: &mut Vars) {
        vars.siblings.insert(format!("tasks.{}", g.tasks[i].name), o.clone());
        self.outcomes[i] = Some(o);
        for &k in &g.dependents[i] {
            self.waiting[k] -= 1;
            if self.waiting[k] == 0 {
                self.ready.push_back(k);
            }
        }
    }

    /// The DAG's phase: a failure fails it unless it was continued on, or
    /// handled by a task that ran because of it; a task never started at a
    /// deadline (`cancelled`) fails it.
    fn fold(&self, g: &Graph<'_>, cancelled: bool) -> Fold {
        let mut fold = Fold::new();
        for (i, o) in self.outcomes.iter().enumerate() {
            let task = &g.tasks[i];
            match o {
                None if cancelled => fold.add(Phase::Failed, true, String::new),
                None => {}
                Some(o) => {
                    let counts = fails(o.phase, task.continue_on) && !g.dependents[i].iter().any(|&j| self.ran[j]);
                    fold.add(o.phase, counts, || format!("task {} {}", task.name, o.phase));
                }
            }
        }
        fold
    }
}

impl Controller {
    pub(super) async fn run_dag(
        self: Arc<Self>,
        id: u32,
        call: &Call,
        template: &Template,
        bound: Bound,
        cancel: CancellationToken,
    ) -> Ended {
        self.set_running(id);
        let mut vars = bound.vars;
        vars.keep = vec!["workflow.status", "workflow.failures"];
        let mut dag = template.dag.clone().unwrap_or_default();
        dag.target = match vars.substitute(&dag.target) {
            Ok(target) => target,
            Err(e) => return Ended::error(format!("dag.target: {e}")),
        };
        let fail_fast = dag.fail_fast.or(template.fail_fast).unwrap_or(true);
        let tasks = match dag.targeted() {
            Ok(tasks) => tasks,
            Err(e) => return Ended::error(format!("dag.target: {e}")),
        };
        let g = match Graph::new(&tasks) {
            Ok(g) => g,
            Err(e) => return Ended::error(e),
        };
        let mut run = Progress::new(&g);
        let parallelism = template.parallelism.map(|p| p as usize);
        let limit = limiter(parallelism);
        let mut running = FuturesUnordered::new();
        loop {
            while let Some(i) = run.ready.pop_front() {
                if (fail_fast && run.failed) || run.interrupted || cancel.is_cancelled() {
                    continue;
                }
                let task = &g.tasks[i];
                let name = format!("{}.{}", call.name, task.name);
                let not_run = match g.should_run(i, &run.outcomes) {
                    Ok(true) => None,
                    Ok(false) => {
                        Some((Phase::Omitted, format!("omitted: depends condition not met ({})", g.depends[i])))
                    }
                    Err(e) => Some((Phase::Error, e.to_string())),
                };
                if let Some((phase, why)) = not_run {
                    let r = self.not_run(&name, &task.template, id, phase, why);
                    run.decide(&g, i, self.declared_defaults(task, &call.origin, outcome(&r)), &mut vars);
                    continue;
                }
                run.ran[i] = true;
                let site = Site {
                    name,
                    parent: id,
                    cancel: cancel.clone(),
                    group_kind: NodeKind::TaskGroup,
                    parallelism,
                    fail_fast,
                    depth: call.depth,
                };
                let task = (i, task.clone(), call.origin.clone());
                running.push(self.clone().run_task(task, vars.clone(), site, limit.clone()));
            }
            let Some((i, o)) = running.next().await else { break };
            run.finished(&g, i, o, &mut vars);
        }
        if run.interrupted || (self.interrupt.is_cancelled() && run.outcomes.iter().any(Option::is_none)) {
            return Ended::unfinished();
        }
        run.fold(&g, cancel.is_cancelled()).end(|| composite_outputs(template, &vars, &self.plan.repository))
    }

    /// Runs task `i` once the DAG's parallelism allows.
    async fn run_task(
        self: Arc<Self>,
        (i, task, origin): (usize, Step, Origin),
        vars: Vars,
        site: Site,
        limit: Arc<Semaphore>,
    ) -> (usize, Outcome) {
        let _permit = limit.acquire_owned().await;
        (i, self.run_step(task, origin, vars, site).await)
    }
}
