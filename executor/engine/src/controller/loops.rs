//! One step or DAG task: its `when`, its loop items (`withItems`,
//! `withParam`, `withSequence`), the call of its template and its exit hook.

use super::nodes::Ensured;
use super::outcome::{Ended, Fold, fails, outcome};
use super::template::substitute_json;
use super::{Call, Controller, NodeResult};
use crate::error::StepError;
use crate::status::NodeKind;
use ferry_workflow::binding::{self, Args};
use ferry_workflow::expr::{self, Resolved};
use ferry_workflow::model::{EXIT_HOOK, LifecycleHook, Step};
use ferry_workflow::plan::Origin;
use ferry_workflow::sequence;
use ferry_workflow::time::now_ms;
use ferry_workflow::values::{Outputs, Phase};
use ferry_workflow::vars::{Outcome, Vars, item_label};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Where a child node hangs: its parent node, the parent's cancellation,
/// and the child's template depth.
#[derive(Clone, Copy)]
pub(super) struct Place<'a> {
    pub(super) parent: u32,
    pub(super) cancel: &'a CancellationToken,
    pub(super) depth: u32,
}

/// Where a step or task runs: its node name and parent, and the policies
/// its loop follows.
pub(super) struct Site {
    pub(super) name: String,
    pub(super) parent: u32,
    pub(super) cancel: CancellationToken,
    /// `TaskGroup` for DAG tasks (loops get a group node), `StepGroup` for steps.
    pub(super) group_kind: NodeKind,
    pub(super) parallelism: Option<usize>,
    pub(super) fail_fast: bool,
    /// The depth of the template the step belongs to.
    pub(super) depth: u32,
}

impl Site {
    /// `vars` with this step's own outcome in them, as its hooks see it.
    fn with_own(&self, step: &str, vars: &Vars, own: &Outcome) -> Vars {
        let scope = if self.group_kind == NodeKind::TaskGroup { "tasks" } else { "steps" };
        Vars { siblings: vars.siblings.with(format!("{scope}.{step}"), own.clone()), ..vars.clone() }
    }

    /// Where the step's own children hang.
    fn children(&self) -> Place<'_> {
        Place { parent: self.parent, cancel: &self.cancel, depth: self.depth + 1 }
    }
}

/// A step's named hooks (all but `exit`) that have not run yet.
struct Hooks {
    pending: Vec<(String, LifecycleHook)>,
}

impl Hooks {
    fn new(step: &Step) -> Hooks {
        let named = step.hooks.iter().filter(|(name, _)| *name != EXIT_HOOK);
        Hooks { pending: named.map(|(n, h)| (n.clone(), h.clone())).collect() }
    }
}

/// An outcome with nothing recorded yet.
fn outcome_of_nothing() -> Outcome {
    Outcome {
        id: String::new(),
        phase: Phase::Pending,
        outputs: Outputs::default(),
        children: None,
        started: None,
        finished: None,
    }
}

/// How one step (or loop item) starts.
enum Start {
    Run(Call),
    /// It does not run: its finished node.
    NotRun(NodeResult),
}

/// At most `parallelism` children at once; no limit without one.
pub(super) fn limiter(parallelism: Option<usize>) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(parallelism.unwrap_or(usize::MAX >> 4)))
}

impl Controller {
    /// Runs one step or task: its `when`, its loop, its retries, its exit
    /// hook. Returns the outcome siblings see.
    pub(super) async fn run_step(self: Arc<Self>, step: Step, origin: Origin, vars: Vars, site: Site) -> Outcome {
        let o = match self.expand(&step, &vars) {
            Ok(None) => self.clone().run_once(&step, &origin, &vars, &site).await,
            Ok(Some(items)) => self.clone().run_loop(&step, &origin, &vars, &site, &items).await,
            Err(e) => outcome(&self.not_run(&site.name, &step.template, site.parent, Phase::Error, e.to_string())),
        };
        self.declared_defaults(&step, &origin, o)
    }

    /// The outcome later steps see of a step that did not run (`when`
    /// false, or omitted): it produced nothing, so each output parameter
    /// its template declares a `valueFrom.default` for reads that default
    /// (Argo's rule); the others stay absent.
    pub(super) fn declared_defaults(&self, step: &Step, origin: &Origin, mut o: Outcome) -> Outcome {
        if !matches!(o.phase, Phase::Skipped | Phase::Omitted) || o.children.is_some() {
            return o;
        }
        let Some((_, template)) = self.plan.find(origin, &step.template, step.template_ref.as_ref()) else {
            return o;
        };
        for p in &template.outputs.parameters {
            if let Some(default) = p.value_from.as_ref().and_then(|vf| vf.default.as_ref()) {
                o.outputs.parameters.entry(p.name.clone()).or_insert_with(|| default.0.clone());
            }
        }
        o
    }

    /// A step or task without a loop.
    async fn run_once(self: Arc<Self>, step: &Step, origin: &Origin, vars: &Vars, site: &Site) -> Outcome {
        let call = match self.call_for(step, origin, vars, &site.name, site.children()) {
            Start::Run(call) => call,
            Start::NotRun(not_run) => return outcome(&not_run),
        };
        let running = self.execute(call);
        let mut hooks = Hooks::new(step);
        let started = Outcome { phase: Phase::Running, started: Some(now_ms()), ..outcome_of_nothing() };
        let mut fired = self.fire_hooks(&mut hooks, step, origin, vars, site, &started);
        let o = outcome(&running.await);
        fired.extend(self.fire_hooks(&mut hooks, step, origin, vars, site, &o));
        fired.extend(self.exit_hook(step, origin, vars, site, &o));
        futures::future::join_all(fired).await;
        o
    }

    /// A loop: DAG tasks get a TaskGroup node; steps put items in the group.
    async fn run_loop(
        self: Arc<Self>,
        step: &Step,
        origin: &Origin,
        vars: &Vars,
        site: &Site,
        items: &[serde_json::Value],
    ) -> Outcome {
        let group = if site.group_kind == NodeKind::TaskGroup {
            match self.ensure(&site.name, NodeKind::TaskGroup, &step.template, Some(site.parent)) {
                Ensured::Fresh(id) => {
                    self.set_running(id);
                    Some(id)
                }
                Ensured::Done(done) => {
                    return Outcome { children: Some(self.stored_children(&site.name)), ..outcome(&done) };
                }
            }
        } else {
            None
        };
        let group_id = group.unwrap_or(site.parent);
        let mut hooks = Hooks::new(step);
        let started = Outcome { phase: Phase::Running, started: Some(now_ms()), ..outcome_of_nothing() };
        let mut fired = self.fire_hooks(&mut hooks, step, origin, vars, site, &started);
        let results = self.clone().run_items(step, origin, vars, site, group_id, items).await;
        let mut fold = Fold::new();
        for r in results.iter().flatten() {
            fold.add(r.phase, fails(r.phase, step.continue_on), String::new);
        }
        let message = results
            .iter()
            .flatten()
            .find(|r| r.phase.is_done() && !r.phase.is_ok())
            .map(|r| format!("child {} {}", r.id, r.message))
            .unwrap_or_default();
        let mut outcome = Outcome {
            id: group_id.to_string(),
            phase: fold.phase,
            outputs: Outputs::default(),
            children: Some(results.iter().flatten().map(|r| (r.phase, r.outputs.clone())).collect()),
            started: None,
            finished: Some(now_ms()),
        };
        fired.extend(self.fire_hooks(&mut hooks, step, origin, vars, site, &outcome));
        fired.extend(self.exit_hook(step, origin, vars, site, &outcome));
        futures::future::join_all(fired).await;
        if let Some(g) = group {
            outcome.started = self.finish(g, Ended::new(fold.phase, message)).started;
        }
        outcome
    }

    /// Runs a loop's items under `group`, as many at once as the step's
    /// parallelism allows; with failFast, no item starts after one failed.
    /// `None` for an item that did not start.
    async fn run_items(
        self: Arc<Self>,
        step: &Step,
        origin: &Origin,
        vars: &Vars,
        site: &Site,
        group: u32,
        items: &[serde_json::Value],
    ) -> Vec<Option<NodeResult>> {
        let limit = limiter(site.parallelism);
        let failed = Arc::new(AtomicBool::new(false));
        let mut running = FuturesUnordered::new();
        for (i, item) in items.iter().enumerate() {
            let mut v = vars.clone();
            v.item = Some(item.clone());
            let name = format!("{}({})", site.name, item_label(i, item));
            let (me, limit, failed) = (self.clone(), limit.clone(), failed.clone());
            let (step, origin, cancel) = (step.clone(), origin.clone(), site.cancel.clone());
            let (fail_fast, depth) = (site.fail_fast, site.depth);
            running.push(async move {
                let _permit = limit.acquire_owned().await;
                if fail_fast && failed.load(Ordering::Relaxed) {
                    return (i, None);
                }
                // `when` is per item: it may test `{{item}}`.
                let at = Place { parent: group, cancel: &cancel, depth: depth + 1 };
                let r = match me.call_for(&step, &origin, &v, &name, at) {
                    Start::Run(call) => me.execute(call).await,
                    Start::NotRun(not_run) => return (i, Some(not_run)),
                };
                if r.phase.is_done() && !r.phase.is_ok() {
                    failed.store(true, Ordering::Relaxed);
                }
                (i, Some(r))
            });
        }
        let mut results: Vec<Option<NodeResult>> = vec![None; items.len()];
        while let Some((i, r)) = running.next().await {
            results[i] = r;
        }
        results
    }

    /// The call that runs one step (or loop item) named `name`, or its
    /// finished node when it does not run: its `when` is false or wrong, or
    /// its arguments cannot be bound.
    fn call_for(&self, step: &Step, origin: &Origin, vars: &Vars, name: &str, at: Place<'_>) -> Start {
        if let Some(skipped) = self.check_when(step, vars, name, at.parent) {
            return Start::NotRun(skipped);
        }
        match self.child_call(step, origin, vars, name.to_string(), at) {
            Ok(call) => Start::Run(call),
            Err(e) => Start::NotRun(self.not_run(name, &step.template, at.parent, Phase::Error, e.to_string())),
        }
    }
    /// Evaluates a step's `when`: `Some` with the finished node when the
    /// step does not run (Skipped, or Error for a bad condition).
    fn check_when(&self, step: &Step, vars: &Vars, name: &str, parent: u32) -> Option<NodeResult> {
        let when = match vars.substitute(&step.when) {
            Ok(w) => w,
            Err(e) => return Some(self.not_run(name, &step.template, parent, Phase::Error, format!("when: {e}"))),
        };
        if when.trim().is_empty() {
            return None;
        }
        match expr::evaluate_when(&when) {
            Ok(true) => None,
            Ok(false) => Some(self.not_run(
                name,
                &step.template,
                parent,
                Phase::Skipped,
                format!("when '{when}' evaluated false"),
            )),
            Err(e) => Some(self.not_run(name, &step.template, parent, Phase::Error, format!("when: {e}"))),
        }
    }

    /// The step's exit hook (`hooks.exit` or `onExit`), started after it
    /// whatever its outcome, its arguments able to read the step's outputs.
    fn exit_hook(
        self: &Arc<Self>,
        step: &Step,
        origin: &Origin,
        vars: &Vars,
        site: &Site,
        own: &Outcome,
    ) -> Option<BoxFuture<'static, NodeResult>> {
        let hook = step.exit_hook()?;
        if self.interrupt.is_cancelled() {
            return None;
        }
        let vars = site.with_own(&step.name, vars, own);
        let call =
            self.child_call(&hook.as_step(&step.name), origin, &vars, format!("{}.onExit", site.name), site.children());
        match call {
            Ok(call) => Some(self.execute(call)),
            Err(e) => {
                let name = format!("{}.onExit", site.name);
                self.not_run(&name, &hook.template, site.parent, Phase::Error, e.to_string());
                None
            }
        }
    }

    /// Starts each named hook of the step whose expression holds now that
    /// the step stands at `own` (Running as it starts, its end as it ends);
    /// each hook runs at most once.
    fn fire_hooks(
        self: &Arc<Self>,
        hooks: &mut Hooks,
        step: &Step,
        origin: &Origin,
        vars: &Vars,
        site: &Site,
        own: &Outcome,
    ) -> Vec<BoxFuture<'static, NodeResult>> {
        if hooks.pending.is_empty() || self.interrupt.is_cancelled() {
            return Vec::new();
        }
        let vars = site.with_own(&step.name, vars, own);
        let mut fired = Vec::new();
        hooks.pending.retain(|(name, hook)| {
            let node = format!("{}.hooks.{name}", site.name);
            match vars.holds(&hook.expression) {
                Ok(false) => return true,
                Ok(true) => {
                    match self.child_call(&hook.as_step(&step.name), origin, &vars, node.clone(), site.children()) {
                        Ok(call) => fired.push(self.execute(call)),
                        Err(e) => {
                            self.not_run(&node, &hook.template, site.parent, Phase::Error, e.to_string());
                        }
                    }
                }
                Err(e) => {
                    let why = format!("hooks.{name}.expression: {e}");
                    self.not_run(&node, &hook.template, site.parent, Phase::Error, why);
                }
            }
            false
        });
        fired
    }

    /// Builds the call for one step or task (one loop item).
    pub(super) fn child_call(
        &self,
        step: &Step,
        origin: &Origin,
        vars: &Vars,
        name: String,
        at: Place<'_>,
    ) -> Result<Call, StepError> {
        let Place { parent, cancel, depth } = at;
        let (origin, template) =
            self.plan.target(origin, step).ok_or_else(|| StepError::TemplateNotFound(step.template.clone()))?;
        // Argo's node context: `{{steps.name}}` / `{{tasks.name}}` is the
        // step's own name, in its arguments and in the template it runs.
        let own = [("steps.name".to_string(), step.name.clone()), ("tasks.name".to_string(), step.name.clone())];
        let named = Vars { plain: vars.plain.clone().into_iter().chain(own.clone()).collect(), ..vars.clone() };
        let vars = &named;
        let mut args = Args::default();
        for p in &step.arguments.parameters {
            // An argument with no value leaves the input's default in force, as in Argo.
            let Some(raw) = p.value.as_ref().or(p.default.as_ref()).map(|v| v.0.as_str()) else { continue };
            if expr::single_tag(raw).is_some_and(|tag| matches!(vars.resolve(tag), Resolved::Absent(_))) {
                args.absent.insert(p.name.clone());
                continue;
            }
            let value =
                vars.substitute(raw).map_err(|e| StepError::invalid(format!("arguments.parameters.{}", p.name), e))?;
            args.parameters.insert(p.name.clone(), value);
        }
        for a in &step.arguments.artifacts {
            let value = binding::argument_value(a, vars, &self.plan.repository)
                .map_err(|e| StepError::invalid(format!("arguments.artifacts.{}", a.name), e))?;
            let optional = a.optional || template.inputs.artifacts.iter().any(|i| i.name == a.name && i.optional);
            if value.is_none() && !optional {
                let problem = "nothing to pass (the producing step saved no such artifact)";
                return Err(StepError::invalid(format!("arguments.artifacts.{}", a.name), problem));
            }
            args.artifacts.insert(a.name.clone(), value);
        }
        // The exit handler's variables hold in every template below it.
        let extra = vars
            .plain
            .iter()
            .filter(|(k, _)| *k == "workflow.status" || *k == "workflow.failures")
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(own)
            .collect();
        Ok(Call {
            name,
            depth,
            parent: Some(parent),
            origin,
            template: template.name.clone(),
            inline: step.inline.as_ref().map(|t| Arc::new(t.as_ref().clone())),
            args,
            cancel: cancel.clone(),
            extra,
        })
    }

    /// Expands one step or task into its loop items (one `None` item without a loop).
    fn expand(&self, step: &Step, vars: &Vars) -> Result<Option<Vec<serde_json::Value>>, StepError> {
        if let Some(items) = &step.with_items {
            let mut out = Vec::new();
            for item in items {
                out.push(substitute_json(item, vars)?);
            }
            return Ok(Some(out));
        }
        if !step.with_param.is_empty() {
            let text = vars.substitute(&step.with_param).map_err(|e| StepError::invalid("withParam", e))?;
            let list: Vec<serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| StepError::invalid("withParam", format!("not a JSON list ({e}): {text:.200}")))?;
            return Ok(Some(list));
        }
        if let Some(seq) = &step.with_sequence {
            return sequence::sequence(seq, vars).map(Some).map_err(StepError::Sequence);
        }
        Ok(None)
    }
}
