//! The controller: runs a [`Plan`] to completion, in the manner of a
//! kube-rs reconciler over a persisted state.
//!
//! Every node has a deterministic name (Argo's: `wf[0].step(1:item)`,
//! `wf.task`, `wf[0].flaky(2)`), and every step of the controller is
//! "ensure this node": a node that the database already holds as finished is
//! returned as it is, with its outputs, instead of being run again. A run that
//! was killed therefore resumes by running the same plan against the stored
//! nodes: finished work is reused, unfinished work is redone.
//!
//! Steps, DAGs, loops and retries are async functions that await their
//! children, so the controller only does work when something finishes: no
//! polling, no pass over every node per event.
//!
//! The groups: `nodes` (the node table: ensure, update, finish), `retry`,
//! `pod` (one step's pod and its artifacts), `steps`, `dag`, `loops` (one
//! step or task: its `when`, loop items and exit hook), `outcome` (how a
//! parent's phase follows from its children's) and `template` (variables,
//! binding and substitution).

mod dag;
mod http;
mod loops;
mod memo;
mod nodes;
mod outcome;
mod pod;
mod retry;
mod steps;
mod suspend;
mod template;

use crate::drivers::DriverPool;
use crate::error::StepError;
use crate::locks;
use crate::metrics::RunMetrics;
use crate::runtime::Runtime;
use crate::status::{Node, NodeKind};
use crate::store::{Store, StoreError, WorkflowRecord};
use ferry_workflow::binding::{self, Args};
use ferry_workflow::model::{EXIT_HOOK, LifecycleHook, Template, TemplateKind};
use ferry_workflow::plan::{Origin, Plan};
use ferry_workflow::synchronization::Lock;
use ferry_workflow::time::{self, active_deadline, now_ms};
use ferry_workflow::values::{Outputs, Phase};
use ferry_workflow::vars::Vars;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use nodes::{Ensured, State};
use outcome::Ended;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A node's result as its parent sees it.
#[derive(Clone, Debug)]
pub struct NodeResult {
    /// The node id.
    pub id: u32,
    /// Its phase; `Running` when the run was interrupted before it finished.
    pub phase: Phase,
    /// Why it failed.
    pub message: String,
    /// What it produced.
    pub outputs: Outputs,
    /// Unix ms.
    pub started: Option<i64>,
    /// Unix ms.
    pub finished: Option<i64>,
}

impl NodeResult {
    fn from_node(n: &Node) -> NodeResult {
        NodeResult {
            id: n.id,
            phase: n.phase,
            message: n.message.clone(),
            outputs: n.outputs.clone(),
            started: n.started,
            finished: n.finished,
        }
    }
}

/// A request to run a template as a node.
#[derive(Clone)]
struct Call {
    name: String,
    /// How many templates deep this call is (the entrypoint is 1), as
    /// Argo's stack depth.
    depth: u32,
    parent: Option<u32>,
    origin: Origin,
    /// The template's name; empty for an inline template, as Argo records it.
    template: String,
    /// The template itself when the step wrote it inline.
    inline: Option<Arc<Template>>,
    args: Args,
    cancel: CancellationToken,
    extra: BTreeMap<String, String>,
}

/// Something that wants to hear about node changes (the CLI's progress).
pub type Observer = tokio::sync::mpsc::UnboundedSender<Node>;

/// One run of a workflow.
///
/// Its locks are `parking_lot` mutexes: they do not poison, so a panicking
/// node task (whose panic the run re-raises anyway) never turns into a
/// misleading store error.
pub struct Controller {
    plan: Arc<Plan>,
    wf: WorkflowRecord,
    runtime: Arc<dyn Runtime>,
    drivers: Arc<DriverPool>,
    store: Arc<Mutex<Store>>,
    state: Mutex<State>,
    pods: Arc<Semaphore>,
    interrupt: CancellationToken,
    observer: Option<Observer>,
    /// `workflow.*` variables fixed for the run, built once.
    fixed_vars: BTreeMap<String, String>,
    /// Woken by every node change: the workflow's named hooks re-evaluate then.
    changed: Notify,
    /// The run's custom Prometheus metrics.
    metrics: RunMetrics,
    /// Daemons that are ready and still run, each with the token that
    /// stops it: cancelled when the steps or DAG template that started it
    /// ends, which then waits for them.
    daemons: Mutex<Vec<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The workflow's phase; `Running` when interrupted.
    pub phase: Phase,
    /// Why it failed.
    pub message: String,
    /// Number of nodes.
    pub nodes: usize,
}

const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Argo's `maxAllowedStackDepth`: a template nested this deep (counting the
/// entrypoint as 1) fails with "Maximum recursion depth exceeded" instead of
/// recursing on. It also keeps the nested futures well inside a thread's stack.
pub const MAX_STACK_DEPTH: u32 = 100;

impl Controller {
    /// A controller for the run `wf` of `plan`, picking up the nodes the
    /// store already has for it.
    pub fn new(
        plan: Arc<Plan>,
        wf: WorkflowRecord,
        store: Arc<Mutex<Store>>,
        runtime: Arc<dyn Runtime>,
        drivers: Arc<DriverPool>,
        interrupt: CancellationToken,
        observer: Option<Observer>,
    ) -> Result<Arc<Controller>, StoreError> {
        let state = State::load(&store.lock().nodes(wf.id)?);
        let pods = Arc::new(Semaphore::new(plan.parallelism));
        let fixed_vars = template::fixed_workflow_vars(&plan);
        let metrics_file = crate::volumes::home_of(&wf.dir).join("metrics").join(format!("{}.prom", wf.name));
        let metrics = RunMetrics::new(metrics_file, &wf.name);
        Ok(Arc::new(Controller {
            plan,
            wf,
            runtime,
            drivers,
            store,
            state: Mutex::new(state),
            pods,
            interrupt,
            observer,
            fixed_vars,
            changed: Notify::new(),
            metrics,
            daemons: Mutex::new(Vec::new()),
        }))
    }

    /// Runs the workflow (and its exit handler) to the end, or until
    /// interrupted, persisting as it goes.
    #[tracing::instrument(name = "run", skip_all, fields(workflow = %self.plan.name, uid = %self.wf.uid))]
    pub async fn run(self: &Arc<Self>) -> Result<RunSummary, StoreError> {
        let flusher = self.start_flusher();
        let deadline = self.interrupt.child_token();
        if let Some(secs) = self.plan.spec.active_deadline_seconds {
            cancel_after(Duration::from_secs(secs), deadline.clone());
        }
        let hooks_done = CancellationToken::new();
        let hooks = self.start_workflow_hooks(hooks_done.clone());
        let mut result = match self.root_call(&deadline) {
            Ok(root) => self.execute(root).await,
            Err(problems) => {
                let (name, template) = (self.plan.name.clone(), self.plan.spec.entrypoint.clone());
                let id = match self.ensure(&name, NodeKind::Pod, &template, None) {
                    Ensured::Fresh(id) => id,
                    Ensured::Done(done) => done.id,
                };
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                self.finish(id, Ended::error(problems.join("; ")))
            }
        };
        if deadline.is_cancelled() && !self.interrupt.is_cancelled() && result.phase.is_done() {
            result.message = "Max duration limit exceeded".into();
            result.phase = Phase::Failed;
        }
        hooks_done.cancel();
        if let Some(hooks) = hooks {
            hooks.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        }
        // Every scope has ended; a daemon left is one whose scope was
        // interrupted before it could stop it.
        for (stop, _) in self.daemons.lock().iter() {
            stop.cancel();
        }
        self.stop_daemons().await;
        if let Some(exit) = self.run_exit_handler(result.phase).await
            && exit.phase.is_done()
            && !exit.phase.is_ok()
            && result.phase.is_ok()
        {
            result.phase = exit.phase;
            result.message = format!("exit handler failed: {}", exit.message);
        }
        if let Some(metrics) = &self.plan.spec.metrics
            && result.phase.is_done()
            && !self.interrupt.is_cancelled()
        {
            let mut vars = self.workflow_vars();
            vars.plain.insert("workflow.status".into(), result.phase.to_string());
            self.emit_metrics(metrics, &vars);
        }
        flusher.abort();
        self.flush()?;
        let nodes = self.state.lock().nodes.len();
        let phase = if self.interrupt.is_cancelled() { Phase::Running } else { result.phase };
        if phase.is_done() {
            self.store.lock().set_phase(self.wf.id, phase, &result.message, Some(now_ms()))?;
        }
        Ok(RunSummary { phase, message: result.message, nodes })
    }

    /// Saves the state every [`FLUSH_EVERY`] until aborted.
    fn start_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                if let Err(e) = me.flush() {
                    tracing::error!("saving state: {e}");
                }
            }
        })
    }

    /// The entrypoint's call, with the workflow's argument artifacts; `Err`
    /// lists every argument that could not be resolved.
    fn root_call(&self, deadline: &CancellationToken) -> Result<Call, Vec<StepError>> {
        let spec = &self.plan.spec;
        let mut args = Args { parameters: self.plan.parameters.clone(), ..Default::default() };
        let vars = self.workflow_vars();
        let mut problems = Vec::new();
        for a in &spec.arguments.artifacts {
            match binding::argument_value(a, &vars, &self.plan.repository) {
                Ok(v) => {
                    args.artifacts.insert(a.name.clone(), v);
                }
                Err(e) => problems.push(StepError::invalid(format!("spec.arguments.artifacts.{}", a.name), e)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Call {
            name: self.plan.name.clone(),
            depth: 1,
            parent: None,
            origin: Origin::default(),
            inline: None,
            template: spec.entrypoint.clone(),
            args,
            cancel: deadline.clone(),
            extra: BTreeMap::new(),
        })
    }

    /// Runs the workflow's exit hook (`onExit` or `hooks.exit`), if it has
    /// one and the run was not interrupted, with `workflow.status` set to
    /// `status`.
    async fn run_exit_handler(self: &Arc<Self>, status: Phase) -> Option<NodeResult> {
        let hook = self.plan.spec.exit_hook()?;
        if self.interrupt.is_cancelled() {
            return None;
        }
        let mut vars = self.workflow_vars();
        vars.plain.insert("workflow.status".into(), status.to_string());
        vars.plain.insert("workflow.failures".into(), self.failures_json());
        let name = format!("{}.onExit", self.plan.name);
        Some(match self.hook_call(&hook, &vars, name.clone()) {
            Ok(call) => self.execute(call).await,
            Err(e) => {
                let id = match self.ensure(&name, NodeKind::Pod, &hook.template, None) {
                    Ensured::Fresh(id) => id,
                    Ensured::Done(done) => return Some(done),
                };
                self.finish(id, Ended::error(e))
            }
        })
    }

    /// The call of a workflow-level hook: a top-level node, like the root,
    /// whose templates below see `vars`' `workflow.status`/`failures`.
    fn hook_call(&self, hook: &LifecycleHook, vars: &Vars, name: String) -> Result<Call, StepError> {
        let cancel = self.interrupt.child_token();
        let at = loops::Place { parent: 0, cancel: &cancel, depth: 1 };
        let mut call = self.child_call(&hook.as_step(&name), &Origin::default(), vars, name, at)?;
        call.parent = None;
        Ok(call)
    }

    /// Runs each named workflow hook once, when its expression turns true
    /// (evaluated as the run starts and after every node change, with
    /// `workflow.status` Running), until `done`; then waits for the hooks
    /// it started. `None` when the workflow has no named hooks.
    fn start_workflow_hooks(self: &Arc<Self>, done: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
        let mut pending: Vec<(String, LifecycleHook)> =
            self.plan.spec.hooks.iter().filter(|(n, _)| *n != EXIT_HOOK).map(|(n, h)| (n.clone(), h.clone())).collect();
        if pending.is_empty() {
            return None;
        }
        let me = self.clone();
        Some(tokio::spawn(async move {
            let mut running = FuturesUnordered::new();
            while !pending.is_empty() && !done.is_cancelled() {
                let mut vars = me.workflow_vars();
                vars.plain.insert("workflow.status".into(), Phase::Running.to_string());
                pending.retain(|(name, hook)| {
                    let node = format!("{}.hooks.{name}", me.plan.name);
                    let call = match vars.holds(&hook.expression) {
                        Ok(false) => return true,
                        Ok(true) => me.hook_call(hook, &vars, node.clone()),
                        Err(e) => Err(StepError::invalid(format!("spec.hooks.{name}.expression"), e)),
                    };
                    match call {
                        Ok(call) => running.push(me.execute(call)),
                        Err(e) => {
                            if let Ensured::Fresh(id) = me.ensure(&node, NodeKind::Pod, &hook.template, None) {
                                me.finish(id, Ended::error(e));
                            }
                        }
                    }
                    false
                });
                tokio::select! {
                    _ = me.changed.notified() => {}
                    _ = done.cancelled() => {}
                }
            }
            while running.next().await.is_some() {}
        }))
    }

    /// Writes changed nodes and new artifact records in one transaction.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (nodes, artifacts) = {
            let mut s = self.state.lock();
            if s.dirty.is_empty() && s.artifacts.is_empty() {
                return Ok(());
            }
            let dirty = std::mem::take(&mut s.dirty);
            let nodes: Vec<Node> = dirty.iter().map(|&i| s.nodes[i as usize].clone()).collect();
            (nodes, std::mem::take(&mut s.artifacts))
        };
        self.store.lock().save(self.wf.id, &nodes, &artifacts)
    }

    /// Runs a template as a task of its own: nesting templates then nests
    /// tasks, not polls, so a deep tree never grows one thread's stack. The
    /// task ends when its parent drops it, as an awaited future would.
    fn execute(self: &Arc<Self>, call: Call) -> BoxFuture<'static, NodeResult> {
        let me = self.clone();
        // A child of the current span (the run's, or the parent node's):
        // spawned tasks do not inherit it by themselves. `pod` is filled in
        // when the node runs a pod.
        let span =
            tracing::debug_span!("node", node = %call.name, template = %call.template, pod = tracing::field::Empty);
        let task = tokio::spawn(me.execute_inner(call).instrument(span));
        let task = tokio_util::task::AbortOnDropHandle::new(task);
        Box::pin(async move {
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => unreachable!("a node task is only aborted with its parent: {e}"),
            }
        })
    }

    async fn execute_inner(self: Arc<Self>, call: Call) -> NodeResult {
        let found = match &call.inline {
            Some(inline) => Some((call.origin.clone(), inline.as_ref())),
            None => self.plan.find(&call.origin, &call.template, None),
        };
        let (origin, template) = match found {
            Some(found) if call.depth < MAX_STACK_DEPTH => found,
            _ => {
                let id = match self.ensure(&call.name, NodeKind::Pod, &call.template, call.parent) {
                    Ensured::Fresh(id) => id,
                    Ensured::Done(done) => return done,
                };
                let why = if call.depth >= MAX_STACK_DEPTH {
                    format!(
                        "Maximum recursion depth exceeded: template {:?} is {} templates deep (the limit is {MAX_STACK_DEPTH}, as in Argo)",
                        call.template, call.depth
                    )
                } else {
                    format!("template {:?} not found", call.template)
                };
                return self.finish(id, Ended::error(why));
            }
        };
        let template = template.clone();
        let call = Call { origin, ..call };
        match &template.retry_strategy {
            Some(_) => self.run_retry(call, template).await,
            None => self.run_body(call, template).await,
        }
    }

    /// Runs one attempt of a template: binds its inputs, substitutes it and
    /// runs it as a pod, steps or a DAG.
    async fn run_body(self: Arc<Self>, call: Call, template: Template) -> NodeResult {
        let started = now_ms();
        let kind = match template.kind() {
            TemplateKind::Steps => NodeKind::Steps,
            TemplateKind::Dag => NodeKind::Dag,
            TemplateKind::Suspend => NodeKind::Suspend,
            TemplateKind::Http => NodeKind::Http,
            // Lint refuses None and Several before a run starts.
            TemplateKind::Container | TemplateKind::Script | TemplateKind::None | TemplateKind::Several => {
                NodeKind::Pod
            }
        };
        let id = match self.ensure(&call.name, kind, &template.name, call.parent) {
            Ensured::Fresh(id) => id,
            Ensured::Done(done) => return done,
        };
        let cancel = call.cancel.child_token();
        let vars = self.template_vars(&call, &template, kind == NodeKind::Pod);
        let prepared = self.bind(&call, &template, &vars).and_then(|bound| {
            let template = template::substitute_template(&template, &bound.vars)?;
            // Read after substitution: the deadline may be `{{inputs.parameters.t}}`.
            let deadline = deadline_of(&template)?;
            Ok((bound, template, deadline))
        });
        let (bound, template, deadline) = match prepared {
            Ok(p) => p,
            Err(e) => return self.finish(id, Ended::error(e)),
        };
        match self.memoized(&template) {
            Ok(Some(hit)) => return self.finish(id, hit),
            Ok(None) => {}
            Err(e) => return self.finish(id, Ended::error(e)),
        }
        let metric_vars = template.metrics.as_ref().map(|_| bound.vars.clone());
        // Held until this attempt ends, whatever the outcome.
        let _held = match self.hold_locks(id, &call, &template, &cancel).await {
            Ok(held) => held,
            Err(ended) => return self.finish(id, ended),
        };
        if let (Some(d), NodeKind::Steps | NodeKind::Dag | NodeKind::Http) = (deadline, kind) {
            cancel_after(d, cancel.clone());
        }
        let mut ended = match kind {
            NodeKind::Steps => self.clone().run_steps(id, &call, &template, bound, cancel.clone()).await,
            NodeKind::Dag => self.clone().run_dag(id, &call, &template, bound, cancel.clone()).await,
            NodeKind::Suspend => self.run_suspend(id, &template, cancel.clone()).await,
            NodeKind::Http => self.run_http(id, &template, cancel.clone()).await,
            _ => self.clone().run_pod(id, &call, &template, bound, cancel.clone(), deadline).await,
        };
        if ended.phase.is_done() && !ended.phase.is_ok() && cancel.is_cancelled() && ended.message.is_empty() {
            ended.message = "Step exceeded its deadline".to_string();
        }
        self.memoize(&template, &ended);
        if let (Some(metrics), Some(vars)) = (&template.metrics, metric_vars) {
            self.emit_metrics(metrics, &template::node_metric_vars(vars, &ended, started));
        }
        // The scope ends: its daemons stop before its node ends, so what
        // runs next finds their ports free.
        if matches!(kind, NodeKind::Steps | NodeKind::Dag) {
            cancel.cancel();
            self.stop_daemons().await;
        }
        self.finish(id, ended)
    }

    /// Emits custom metrics, logging those that cannot be emitted.
    fn emit_metrics(&self, metrics: &ferry_workflow::model::Metrics, vars: &Vars) {
        for problem in self.metrics.emit(metrics, vars) {
            tracing::warn!("{problem}");
        }
    }

    /// Waits for every daemon that has been told to stop.
    async fn stop_daemons(&self) {
        let stopping: Vec<_> = {
            let mut daemons = self.daemons.lock();
            let (stopping, running) =
                std::mem::take(&mut *daemons).into_iter().partition(|(stop, _)| stop.is_cancelled());
            *daemons = running;
            stopping
        };
        for (_, daemon) in stopping {
            let _ = daemon.await;
        }
    }

    /// Takes the template's `synchronization` locks for this node, showing
    /// what it waits for in the node's message (Argo's words).
    async fn hold_locks(
        &self,
        id: u32,
        call: &Call,
        template: &Template,
        cancel: &CancellationToken,
    ) -> Result<Option<locks::Held>, Ended> {
        let Some(sync) = &template.synchronization else { return Ok(None) };
        let wanted = sync.locks(&self.plan.namespace, &self.plan.config_maps).map_err(Ended::error)?;
        let holder = format!("{}/{}", self.wf.uid, call.name);
        let waiting = |lock: &Lock, holders: usize| {
            self.set_message(id, format!("Waiting for {} lock. Lock status: {holders}/{}", lock.key, lock.limit));
        };
        match locks::acquire(&self.store, &wanted, &holder, cancel, waiting).await {
            Ok(Some(held)) => {
                self.set_message(id, String::new());
                Ok(Some(held))
            }
            Ok(None) => Err(Ended::new(self.cancel_phase(), "")),
            Err(e) => Err(Ended::error(e)),
        }
    }

    /// The phase of a node stopped by cancellation: unfinished when the run
    /// was interrupted (a resume redoes it), failed at a deadline.
    fn cancel_phase(&self) -> Phase {
        if self.interrupt.is_cancelled() { Phase::Running } else { Phase::Failed }
    }

    /// The `workflow.*` variables: the run's fixed ones, the global outputs
    /// exported so far, and `workflow.duration` (seconds since the run was
    /// created, as Argo's `%f`).
    fn workflow_vars(&self) -> Vars {
        let mut plain = self.fixed_vars.clone();
        let seconds = (now_ms() - self.wf.created).max(0) as f64 / 1000.0;
        plain.insert("workflow.duration".into(), format!("{seconds:.6}"));
        let state = self.state.lock();
        for (k, v) in &state.globals {
            plain.insert(format!("workflow.outputs.parameters.{k}"), v.clone());
        }
        Vars { plain, global_artifacts: state.global_artifacts.clone(), ..Default::default() }
    }
}

/// A template's deadline, once substituted: the sooner of its
/// `activeDeadlineSeconds` and its `timeout` (which Argo also turns into the
/// pod's deadline).
fn deadline_of(template: &Template) -> Result<Option<Duration>, StepError> {
    let deadline = match &template.active_deadline_seconds {
        None => None,
        Some(d) => Some(active_deadline(&d.0).ok_or_else(|| {
            StepError::Workflow(format!("activeDeadlineSeconds {:?} is not a number of seconds", d.0))
        })?),
    };
    let timeout = match &template.timeout {
        None => None,
        Some(t) => Some(
            time::timeout(&t.0)
                .ok_or_else(|| StepError::Workflow(format!("timeout {:?} is not a duration such as \"10s\"", t.0)))?,
        ),
    };
    Ok(deadline.into_iter().chain(timeout).min())
}

/// Cancels `token` after `wait`.
fn cancel_after(wait: Duration, token: CancellationToken) {
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        token.cancel();
    });
}
