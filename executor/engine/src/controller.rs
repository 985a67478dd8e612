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

use crate::artifacts;
use crate::drivers::{DRIVER_GRACE, DriverPool};
use crate::runtime::{DriverRole, PodSpec, Runtime};
use crate::status::{ArtifactRecord, Node, NodeKind};
use crate::store::{Store, WorkflowRecord};
use ferry_workflow::binding::{self, Args, Bound, BoundArtifact};
use ferry_workflow::expr::{self, Depends, TaskOutcome};
use ferry_workflow::model::{ContinueOn, RetryPolicy, Step, Template};
use ferry_workflow::plan::{Origin, Plan};
use ferry_workflow::repository::Repository;
use ferry_workflow::time::{active_deadline, now_ms, parse_duration, rfc3339, strftime_parts};
use ferry_workflow::values::{Outputs, Phase};
use ferry_workflow::vars::{Outcome, Vars, item_label};
use ferry_workflow::{naming, sequence};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

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
    template: String,
    args: Args,
    cancel: CancellationToken,
    extra: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    nodes: Vec<Node>,
    by_name: HashMap<String, u32>,
    dirty: BTreeSet<u32>,
    artifacts: Vec<ArtifactRecord>,
    globals: BTreeMap<String, String>,
}

/// Something that wants to hear about node changes (the CLI's progress).
pub type Observer = tokio::sync::mpsc::UnboundedSender<Node>;

/// One run of a workflow.
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
    ) -> Result<Arc<Controller>, crate::store::StoreError> {
        let mut state = State::default();
        {
            let store = store.lock().map_err(|_| poisoned())?;
            for node in store.nodes(wf.id)? {
                state.by_name.insert(node.name.clone(), node.id);
                let id = node.id as usize;
                if state.nodes.len() <= id {
                    state.nodes.resize_with(id + 1, placeholder);
                }
                state.nodes[id] = node;
            }
        }
        for node in &state.nodes {
            if node.phase.is_done() {
                for (k, v) in &node.outputs.parameters {
                    if let Some(g) = k.strip_prefix("global:") {
                        state.globals.insert(g.to_string(), v.clone());
                    }
                }
            }
        }
        let pods = Arc::new(Semaphore::new(plan.parallelism));
        let fixed_vars = fixed_workflow_vars(&plan);
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
        }))
    }

    /// Runs the workflow (and its exit handler) to the end, or until
    /// interrupted, persisting as it goes.
    pub async fn run(self: &Arc<Self>) -> Result<RunSummary, crate::store::StoreError> {
        let flusher = {
            let me = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_EVERY).await;
                    if let Err(e) = me.flush() {
                        tracing::error!("saving state: {e}");
                    }
                }
            })
        };
        let spec = &self.plan.spec;
        let deadline = self.interrupt.child_token();
        if let Some(secs) = spec.active_deadline_seconds {
            let token = deadline.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                token.cancel();
            });
        }
        let mut args = Args { parameters: self.plan.parameters.clone(), ..Default::default() };
        let vars = self.workflow_vars();
        let mut problems = Vec::new();
        for a in &spec.arguments.artifacts {
            match binding::argument_value(a, &vars, &self.plan.repository) {
                Ok(v) => {
                    args.artifacts.insert(a.name.clone(), v);
                }
                Err(e) => problems.push(format!("spec.arguments.artifacts.{}: {e}", a.name)),
            }
        }
        let root = Call {
            name: self.plan.name.clone(),
            depth: 1,
            parent: None,
            origin: Origin::default(),
            template: spec.entrypoint.clone(),
            args,
            cancel: deadline.clone(),
            extra: BTreeMap::new(),
        };
        let mut result = if problems.is_empty() {
            self.execute(root).await
        } else {
            let id = match self.ensure(&root.name, NodeKind::Pod, &root.template, None) {
                Ok(id) => id,
                Err(done) => done.id,
            };
            self.finish(id, Phase::Error, problems.join("; "), Outputs::default())
        };
        let mut message = result.message.clone();
        if deadline.is_cancelled() && !self.interrupt.is_cancelled() && result.phase.is_done() {
            message = "Max duration limit exceeded".into();
            result.phase = Phase::Failed;
        }
        if !spec.on_exit.is_empty() && !self.interrupt.is_cancelled() {
            let mut extra = BTreeMap::new();
            extra.insert("workflow.status".into(), result.phase.to_string());
            extra.insert("workflow.failures".into(), self.failures_json());
            let exit = Call {
                name: format!("{}.onExit", self.plan.name),
                depth: 1,
                parent: None,
                origin: Origin::default(),
                template: spec.on_exit.clone(),
                args: Args::default(),
                cancel: self.interrupt.child_token(),
                extra,
            };
            let exit = self.execute(exit).await;
            if exit.phase.is_done() && !exit.phase.is_ok() && result.phase.is_ok() {
                result.phase = exit.phase;
                message = format!("exit handler failed: {}", exit.message);
            }
        }
        flusher.abort();
        self.flush()?;
        let nodes = self.state.lock().map(|s| s.nodes.len()).unwrap_or(0);
        let phase = if self.interrupt.is_cancelled() { Phase::Running } else { result.phase };
        if phase.is_done() {
            let store = self.store.lock().map_err(|_| poisoned())?;
            store.set_phase(self.wf.id, phase, &message, Some(now_ms()))?;
        }
        Ok(RunSummary { phase, message, nodes })
    }

    /// Writes changed nodes and new artifact records in one transaction.
    pub fn flush(&self) -> Result<(), crate::store::StoreError> {
        let (nodes, artifacts) = {
            let mut s = self.state.lock().map_err(|_| poisoned())?;
            if s.dirty.is_empty() && s.artifacts.is_empty() {
                return Ok(());
            }
            let dirty = std::mem::take(&mut s.dirty);
            let nodes: Vec<Node> = dirty.iter().map(|&i| s.nodes[i as usize].clone()).collect();
            (nodes, std::mem::take(&mut s.artifacts))
        };
        let mut store = self.store.lock().map_err(|_| poisoned())?;
        store.save(self.wf.id, &nodes, &artifacts)
    }

    fn failures_json(&self) -> String {
        let s = match self.state.lock() {
            Ok(s) => s,
            Err(_) => return "[]".into(),
        };
        let failures: Vec<serde_json::Value> = s
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Pod && matches!(n.phase, Phase::Failed | Phase::Error))
            .map(|n| {
                serde_json::json!({
                    "displayName": n.display_name(), "message": n.message, "templateName": n.template,
                    "phase": n.phase.as_str(), "podName": naming::pod_name(&self.plan.name, &n.template, &n.name),
                    "finishedAt": n.finished,
                })
            })
            .collect();
        serde_json::to_string(&failures).unwrap_or_default()
    }

    /// The `workflow.*` variables: the run's fixed ones, and the global
    /// outputs exported so far.
    fn workflow_vars(&self) -> Vars {
        let mut plain = self.fixed_vars.clone();
        if let Ok(s) = self.state.lock() {
            for (k, v) in &s.globals {
                plain.insert(format!("workflow.outputs.parameters.{k}"), v.clone());
            }
        }
        Vars { plain, ..Default::default() }
    }

    fn notify(&self, node: &Node) {
        if let Some(o) = &self.observer {
            let _ = o.send(node.clone());
        }
    }

    /// Ensures the node `name` exists: `Err` with its result when it is
    /// already finished (the idempotent step that makes resume work).
    fn ensure(&self, name: &str, kind: NodeKind, template: &str, parent: Option<u32>) -> Result<u32, Box<NodeResult>> {
        let mut s = self.state.lock().expect("controller state lock");
        if let Some(&id) = s.by_name.get(name) {
            let node = &mut s.nodes[id as usize];
            if node.phase.is_done() {
                return Err(Box::new(NodeResult::from_node(node)));
            }
            node.phase = Phase::Pending;
            node.kind = kind;
            node.template = template.to_string();
            node.parent = parent;
            node.message.clear();
            let node = node.clone();
            s.dirty.insert(id);
            drop(s);
            self.notify(&node);
            return Ok(id);
        }
        let id = s.nodes.len() as u32;
        let node = Node {
            id,
            name: name.to_string(),
            parent,
            kind,
            template: template.to_string(),
            phase: Phase::Pending,
            started: Some(now_ms()),
            finished: None,
            message: String::new(),
            outputs: Outputs::default(),
        };
        s.nodes.push(node.clone());
        s.by_name.insert(name.to_string(), id);
        s.dirty.insert(id);
        drop(s);
        self.notify(&node);
        Ok(id)
    }

    fn set_running(&self, id: u32) {
        self.update(id, |n| {
            n.phase = Phase::Running;
            n.started = Some(now_ms());
        });
    }

    fn update(&self, id: u32, f: impl FnOnce(&mut Node)) -> Node {
        let mut s = self.state.lock().expect("controller state lock");
        let node = &mut s.nodes[id as usize];
        f(node);
        let node = node.clone();
        s.dirty.insert(id);
        drop(s);
        self.notify(&node);
        node
    }

    fn finish(&self, id: u32, phase: Phase, message: String, outputs: Outputs) -> NodeResult {
        if !phase.is_done() {
            // Interrupted: leave the node unfinished so a resume redoes it.
            let s = self.state.lock().expect("controller state lock");
            return NodeResult::from_node(&s.nodes[id as usize]);
        }
        let node = self.update(id, |n| {
            n.phase = phase;
            n.message = message;
            n.outputs = outputs;
            n.finished = Some(now_ms());
        });
        NodeResult::from_node(&node)
    }

    fn record_artifacts(&self, records: Vec<ArtifactRecord>) {
        if let Ok(mut s) = self.state.lock() {
            s.artifacts.extend(records);
        }
    }

    /// Runs a template as a task of its own: nesting templates then nests
    /// tasks, not polls, so a deep tree never grows one thread's stack. The
    /// task ends when its parent drops it, as an awaited future would.
    fn execute(self: &Arc<Self>, call: Call) -> BoxFuture<'static, NodeResult> {
        let me = self.clone();
        let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(me.execute_inner(call)));
        Box::pin(async move {
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => unreachable!("a node task is only aborted with its parent: {e}"),
            }
        })
    }

    async fn execute_inner(self: Arc<Self>, call: Call) -> NodeResult {
        if call.depth >= MAX_STACK_DEPTH {
            let id = match self.ensure(&call.name, NodeKind::Pod, &call.template, call.parent) {
                Ok(id) => id,
                Err(done) => return *done,
            };
            let why = format!(
                "Maximum recursion depth exceeded: template {:?} is {} templates deep (the limit is {MAX_STACK_DEPTH}, as in Argo)",
                call.template, call.depth
            );
            return self.finish(id, Phase::Error, why, Outputs::default());
        }
        let Some((origin, template)) = self.plan.find(&call.origin, &call.template, None) else {
            let id = match self.ensure(&call.name, NodeKind::Pod, &call.template, call.parent) {
                Ok(id) => id,
                Err(done) => return *done,
            };
            return self.finish(
                id,
                Phase::Error,
                format!("template {:?} not found", call.template),
                Outputs::default(),
            );
        };
        let template = template.clone();
        let call = Call { origin, ..call };
        match &template.retry_strategy {
            Some(_) => self.run_retry(call, template).await,
            None => self.run_body(call, template, None).await,
        }
    }

    async fn run_retry(self: Arc<Self>, call: Call, template: Template) -> NodeResult {
        let id = match self.ensure(&call.name, NodeKind::Retry, &template.name, call.parent) {
            Ok(id) => id,
            Err(done) => return *done,
        };
        self.set_running(id);
        let strategy = template.retry_strategy.clone().unwrap_or_default();
        let limit = strategy.limit.as_ref().and_then(|l| l.0.trim().parse::<u32>().ok());
        let policy = strategy.retry_policy.unwrap_or_default();
        let backoff = strategy.backoff.clone().unwrap_or_default();
        let base = backoff.duration.as_ref().and_then(|d| parse_duration(&d.0)).unwrap_or(Duration::ZERO);
        let factor = backoff.factor.as_ref().and_then(|f| f.0.trim().parse::<f64>().ok()).unwrap_or(1.0);
        let cap = backoff.cap.as_ref().and_then(|d| parse_duration(&d.0));
        let max_duration = backoff.max_duration.as_ref().and_then(|d| parse_duration(&d.0));
        let began = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            let mut child = call.clone();
            child.name = format!("{}({attempt})", call.name);
            child.parent = Some(id);
            child.extra.insert("retries".into(), attempt.to_string());
            let result = self.clone().run_body(child, template.clone(), Some(attempt)).await;
            if !result.phase.is_done() || result.phase.is_ok() {
                return self.finish(id, result.phase, result.message, result.outputs);
            }
            let retryable = match policy {
                RetryPolicy::Always => true,
                RetryPolicy::OnFailure => result.phase == Phase::Failed,
                RetryPolicy::OnError | RetryPolicy::OnTransientError => result.phase == Phase::Error,
            };
            let exhausted = limit.is_some_and(|l| attempt >= l);
            if !retryable || exhausted || call.cancel.is_cancelled() {
                let why = if exhausted { format!("{} (no more retries left)", result.message) } else { result.message };
                return self.finish(id, result.phase, why, result.outputs);
            }
            let mut wait = base.mul_f64(factor.powi(attempt as i32));
            if let Some(cap) = cap {
                wait = wait.min(cap);
            }
            if max_duration.is_some_and(|m| began.elapsed() + wait > m) {
                return self.finish(
                    id,
                    result.phase,
                    format!("{} (backoff maxDuration reached)", result.message),
                    result.outputs,
                );
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = call.cancel.cancelled() => {}
            }
            attempt += 1;
        }
    }

    async fn run_body(self: Arc<Self>, call: Call, template: Template, _attempt: Option<u32>) -> NodeResult {
        let kind = match template.kind() {
            "steps" => NodeKind::Steps,
            "dag" => NodeKind::Dag,
            _ => NodeKind::Pod,
        };
        let id = match self.ensure(&call.name, kind, &template.name, call.parent) {
            Ok(id) => id,
            Err(done) => return *done,
        };
        let cancel = call.cancel.child_token();
        let vars = self.template_vars(&call, &template, kind == NodeKind::Pod);
        let bound = match self.bind(&call, &template, &vars) {
            Ok(b) => b,
            Err(e) => return self.finish(id, Phase::Error, e, Outputs::default()),
        };
        let template = match substitute_template(&template, &bound.vars) {
            Ok(t) => t,
            Err(e) => return self.finish(id, Phase::Error, e, Outputs::default()),
        };
        // Read after substitution: the deadline may be `{{inputs.parameters.t}}`.
        let deadline = match &template.active_deadline_seconds {
            None => None,
            Some(d) => match active_deadline(&d.0) {
                Some(d) => Some(d),
                None => {
                    let why = format!("activeDeadlineSeconds {:?} is not a number of seconds", d.0);
                    return self.finish(id, Phase::Error, why, Outputs::default());
                }
            },
        };
        if let (Some(d), NodeKind::Steps | NodeKind::Dag) = (deadline, kind) {
            let token = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                token.cancel();
            });
        }
        let result = match kind {
            NodeKind::Steps => self.clone().run_steps(id, &call, &template, bound, cancel.clone()).await,
            NodeKind::Dag => self.clone().run_dag(id, &call, &template, bound, cancel.clone()).await,
            _ => self.clone().run_pod(id, &call, &template, bound, cancel.clone(), deadline).await,
        };
        let (phase, message, outputs) = result;
        let message = if phase.is_done() && !phase.is_ok() && cancel.is_cancelled() && message.is_empty() {
            "Step exceeded its deadline".to_string()
        } else {
            message
        };
        self.finish(id, phase, message, outputs)
    }

    fn template_vars(&self, call: &Call, template: &Template, pod: bool) -> Vars {
        let mut vars = self.workflow_vars();
        vars.plain.extend(call.extra.clone());
        vars.plain.insert("node.name".into(), call.name.clone());
        if pod {
            vars.plain.insert("pod.name".into(), naming::pod_name(&self.plan.name, &template.name, &call.name));
        }
        for a in &template.inputs.artifacts {
            vars.plain.insert(format!("inputs.artifacts.{}.path", a.name), a.path.clone());
        }
        for p in &template.outputs.parameters {
            if let Some(vf) = &p.value_from {
                vars.plain.insert(format!("outputs.parameters.{}.path", p.name), vf.path.clone());
            }
        }
        for a in &template.outputs.artifacts {
            vars.plain.insert(format!("outputs.artifacts.{}.path", a.name), a.path.clone());
        }
        if !pod {
            vars.keep = vec!["steps.", "tasks.", "item", "workflow.status", "workflow.failures", "inputs.artifacts."];
        }
        vars
    }

    fn bind(&self, call: &Call, template: &Template, vars: &Vars) -> Result<Bound, String> {
        let mut vars = vars.clone();
        for p in &template.inputs.parameters {
            let value = match call.args.parameters.get(&p.name) {
                Some(v) => v.clone(),
                None => match p.value.as_ref().or(p.default.as_ref()) {
                    Some(v) => vars.substitute(&v.0).map_err(|e| format!("inputs.parameters.{}: {e}", p.name))?,
                    None => return Err(format!("inputs.parameters.{} was not supplied", p.name)),
                },
            };
            if !p.allowed.is_empty() && !p.allowed.iter().any(|a| a.0 == value) {
                return Err(format!(
                    "inputs.parameters.{}: value {value:?} is not one of {}",
                    p.name,
                    p.allowed.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            vars.inputs.insert(p.name.clone(), value);
        }
        let mut bound_artifacts = Vec::new();
        for a in &template.inputs.artifacts {
            let value = match call.args.artifacts.get(&a.name) {
                Some(v) => v.clone(),
                None => binding::argument_value(a, &vars, &self.plan.repository)
                    .map_err(|e| format!("inputs.artifacts.{}: {e}", a.name))?,
            };
            if value.is_none() && !a.optional {
                return Err(format!("inputs.artifacts.{} was not supplied", a.name));
            }
            let mut decl = a.clone();
            decl.path = vars.substitute(&a.path).map_err(|e| format!("inputs.artifacts.{}.path: {e}", a.name))?;
            vars.plain.insert(format!("inputs.artifacts.{}.path", a.name), decl.path.clone());
            if let Some(v) = &value {
                vars.input_artifacts.insert(a.name.clone(), v.clone());
            }
            bound_artifacts.push(BoundArtifact { decl, value });
        }
        Ok(Bound { vars, artifacts: bound_artifacts })
    }

    async fn run_pod(
        self: Arc<Self>,
        id: u32,
        call: &Call,
        template: &Template,
        bound: Bound,
        cancel: CancellationToken,
        deadline: Option<Duration>,
    ) -> (Phase, String, Outputs) {
        let permit = tokio::select! {
            p = self.pods.clone().acquire_owned() => p,
            () = cancel.cancelled() => return (self.cancel_phase(), String::new(), Outputs::default()),
        };
        let _permit = match permit {
            Ok(p) => p,
            Err(_) => return (Phase::Error, "controller shutting down".into(), Outputs::default()),
        };
        self.set_running(id);
        let pod_name = naming::pod_name(&self.plan.name, &template.name, &call.name);
        let pod = match PodSpec::from_template(&self.wf.dir, &pod_name, template) {
            Ok(p) => p,
            Err(e) => return (Phase::Error, e, Outputs::default()),
        };
        let pod = PodSpec { deadline, run: self.wf.uid.clone(), ..pod };
        let init = self.step_pool(&pod, DriverRole::Init);
        let ctx = artifacts::StepContext {
            plan: &self.plan,
            runtime: self.runtime.as_ref(),
            drivers: init.as_ref().unwrap_or(&self.drivers),
            pod: &pod,
            node: id,
            template,
            vars: &bound.vars,
        };
        let (inputs, records) = ctx.load_inputs(&bound.artifacts).await;
        self.record_artifacts(records);
        // The init containers end before the main container starts; one that
        // does not exit 0 fails the pod, as in Kubernetes.
        let init_failed = match &init {
            Some(pool) => pool.shutdown(DRIVER_GRACE).await,
            None => Vec::new(),
        };
        if let Err(e) = inputs {
            return (Phase::Error, e, Outputs::default());
        }
        if !init_failed.is_empty() {
            return (Phase::Error, format!("init containers failed: {}", init_failed.join(", ")), Outputs::default());
        }
        let sidecars = self.step_pool(&pod, DriverRole::Sidecar);
        let ctx = artifacts::StepContext { drivers: sidecars.as_ref().unwrap_or(&self.drivers), ..ctx };
        let run = self.runtime.run(&pod, cancel.clone());
        let exit = match &sidecars {
            Some(pool) => {
                let names = ctx.output_drivers();
                let (exit, started) = tokio::join!(run, pool.start_all(&names));
                if let Err(e) = started {
                    pool.shutdown(DRIVER_GRACE).await;
                    return (Phase::Error, e.to_string(), Outputs::default());
                }
                exit
            }
            None => run.await,
        };
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) => {
                if let Some(pool) = &sidecars {
                    pool.shutdown(DRIVER_GRACE).await;
                }
                return (Phase::Error, e, Outputs::default());
            }
        };
        if exit.cancelled && self.interrupt.is_cancelled() {
            if let Some(pool) = &sidecars {
                pool.shutdown(DRIVER_GRACE).await;
            }
            return (Phase::Running, String::new(), Outputs::default());
        }
        let mut outputs = Outputs { exit_code: exit.code, ..Default::default() };
        // An empty result is not stored: most steps print nothing, and a
        // 100,000-node run should not carry 100,000 empty strings.
        let result = exit.stdout.strip_suffix('\n').unwrap_or(&exit.stdout);
        outputs.result = (!result.is_empty()).then(|| result.to_string());
        let (phase, mut message) = match (exit.code, exit.signal) {
            _ if exit.timed_out || exit.cancelled => (Phase::Failed, "Step exceeded its deadline".to_string()),
            (Some(0), _) => (Phase::Succeeded, String::new()),
            (Some(code), _) => (Phase::Failed, format!("Error (exit code {code})")),
            (None, Some(sig)) => (Phase::Failed, format!("killed by signal {sig}")),
            (None, None) => (Phase::Error, "ended without a status".to_string()),
        };
        let mut saved = ctx.save_outputs(phase == Phase::Succeeded, &mut outputs).await;
        if let Some(pool) = &sidecars {
            let failed = pool.shutdown(DRIVER_GRACE).await;
            if !failed.is_empty() && saved.error.is_none() && phase == Phase::Succeeded {
                saved.error = Some(format!("sidecars failed: {}", failed.join(", ")));
            }
        }
        self.record_artifacts(saved.records);
        for (global, value) in saved.globals {
            if let Ok(mut s) = self.state.lock() {
                s.globals.insert(global.clone(), value.clone());
            }
            outputs.parameters.insert(format!("global:{global}"), value);
        }
        let phase = match saved.error {
            Some(e) if phase == Phase::Succeeded => {
                message = e;
                Phase::Error
            }
            Some(e) => {
                message = format!("{message}; {e}");
                phase
            }
            None => phase,
        };
        if phase == Phase::Succeeded {
            let _ = std::fs::remove_dir_all(pod.dir.join("root"));
        }
        (phase, message, outputs)
    }

    /// A pool for one of a step's driver groups, when the runtime runs
    /// drivers beside each step; its sockets live in a short directory of
    /// their own (a unix socket path holds 108 bytes).
    fn step_pool(&self, pod: &PodSpec, role: DriverRole) -> Option<DriverPool> {
        let launcher = self.runtime.step_drivers(pod, role)?;
        let scratch = std::env::temp_dir().join(format!("ferry-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let logs = pod.log.parent().map_or_else(|| pod.dir.clone(), std::path::Path::to_path_buf);
        Some(
            DriverPool::new(self.plan.registry.clone(), scratch.join("artifact-plugins"), logs)
                .with_launcher(launcher)
                .removing_at_shutdown(scratch),
        )
    }

    fn cancel_phase(&self) -> Phase {
        if self.interrupt.is_cancelled() { Phase::Running } else { Phase::Failed }
    }

    /// Builds the call for one step or task (one loop item).
    fn child_call(
        &self,
        step: &Step,
        origin: &Origin,
        vars: &Vars,
        name: String,
        at: Place<'_>,
    ) -> Result<Call, String> {
        let Place { parent, cancel, depth } = at;
        let (origin, template) = self
            .plan
            .find(origin, &step.template, step.template_ref.as_ref())
            .ok_or_else(|| format!("template {:?} not found", step.template))?;
        let mut args = Args::default();
        for p in &step.arguments.parameters {
            let raw = p.value.as_ref().or(p.default.as_ref()).map(|v| v.0.clone()).unwrap_or_default();
            let value = vars.substitute(&raw).map_err(|e| format!("arguments.parameters.{}: {e}", p.name))?;
            args.parameters.insert(p.name.clone(), value);
        }
        for a in &step.arguments.artifacts {
            let value = binding::argument_value(a, vars, &self.plan.repository)
                .map_err(|e| format!("arguments.artifacts.{}: {e}", a.name))?;
            let optional = a.optional || template.inputs.artifacts.iter().any(|i| i.name == a.name && i.optional);
            if value.is_none() && !optional {
                return Err(format!(
                    "arguments.artifacts.{}: nothing to pass (the producing step saved no such artifact)",
                    a.name
                ));
            }
            args.artifacts.insert(a.name.clone(), value);
        }
        // The exit handler's variables hold in every template below it.
        let extra = vars
            .plain
            .iter()
            .filter(|(k, _)| *k == "workflow.status" || *k == "workflow.failures")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Call {
            name,
            depth,
            parent: Some(parent),
            origin,
            template: template.name.clone(),
            args,
            cancel: cancel.clone(),
            extra,
        })
    }

    /// Creates a finished node for a step that does not run.
    fn not_run(&self, name: &str, template: &str, parent: u32, phase: Phase, message: String) -> NodeResult {
        match self.ensure(name, NodeKind::Skipped, template, Some(parent)) {
            Ok(id) => self.finish(id, phase, message, Outputs::default()),
            Err(done) => *done,
        }
    }

    /// Expands one step or task into its loop items (one `None` item without a loop).
    fn expand(&self, step: &Step, vars: &Vars) -> Result<Option<Vec<serde_json::Value>>, String> {
        if let Some(items) = &step.with_items {
            let mut out = Vec::new();
            for item in items {
                out.push(substitute_json(item, vars)?);
            }
            return Ok(Some(out));
        }
        if !step.with_param.is_empty() {
            let text = vars.substitute(&step.with_param).map_err(|e| format!("withParam: {e}"))?;
            let list: Vec<serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| format!("withParam: not a JSON list ({e}): {text:.200}"))?;
            return Ok(Some(list));
        }
        if let Some(seq) = &step.with_sequence {
            return sequence::sequence(seq, vars).map(Some);
        }
        Ok(None)
    }

    /// Runs one step or task: its `when`, its loop, its retries, its exit
    /// hook. Returns the outcome siblings see.
    async fn run_step(self: Arc<Self>, step: Step, origin: Origin, vars: Vars, site: Site) -> Outcome {
        let Site { name, parent, cancel, group_kind, parallelism, fail_fast, depth } = site;
        let items = match self.expand(&step, &vars) {
            Ok(i) => i,
            Err(e) => return outcome(&self.not_run(&name, &step.template, parent, Phase::Error, e)),
        };
        let Some(items) = items else {
            if let Some(skipped) = self.check_when(&step, &vars, &name, parent) {
                return outcome(&skipped);
            }
            let call = match self.child_call(
                &step,
                &origin,
                &vars,
                name.clone(),
                Place { parent, cancel: &cancel, depth: depth + 1 },
            ) {
                Ok(c) => c,
                Err(e) => return outcome(&self.not_run(&name, &step.template, parent, Phase::Error, e)),
            };
            let result = self.execute(call).await;
            self.clone().hook(&step, &origin, &vars, &name, Place { parent, cancel: &cancel, depth: depth + 1 }).await;
            return outcome(&result);
        };
        // A loop: DAG tasks get a TaskGroup node; steps put items in the group.
        let (group, group_id) = if group_kind == NodeKind::TaskGroup {
            match self.ensure(&name, NodeKind::TaskGroup, &step.template, Some(parent)) {
                Ok(id) => {
                    self.set_running(id);
                    (Some(id), id)
                }
                Err(done) => return Outcome { children: Some(self.stored_children(&name)), ..outcome(&done) },
            }
        } else {
            (None, parent)
        };
        let limit = Arc::new(Semaphore::new(parallelism.unwrap_or(usize::MAX >> 4)));
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut running = FuturesUnordered::new();
        for (i, item) in items.iter().enumerate() {
            let mut v = vars.clone();
            v.item = Some(item.clone());
            let child_name = format!("{name}({})", item_label(i, item));
            let me = self.clone();
            let step = step.clone();
            let origin = origin.clone();
            let cancel = cancel.clone();
            let limit = limit.clone();
            let failed = failed.clone();
            running.push(async move {
                let _permit = limit.acquire_owned().await;
                if fail_fast && failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return (i, None);
                }
                // `when` is per item: it may test `{{item}}`.
                if let Some(skipped) = me.check_when(&step, &v, &child_name, group_id) {
                    return (i, Some(skipped));
                }
                let call = match me.child_call(
                    &step,
                    &origin,
                    &v,
                    child_name.clone(),
                    Place { parent: group_id, cancel: &cancel, depth: depth + 1 },
                ) {
                    Ok(c) => c,
                    Err(e) => return (i, Some(me.not_run(&child_name, &step.template, group_id, Phase::Error, e))),
                };
                let r = me.execute(call).await;
                if r.phase.is_done() && !r.phase.is_ok() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                (i, Some(r))
            });
        }
        let mut results: Vec<Option<NodeResult>> = vec![None; items.len()];
        while let Some((i, r)) = running.next().await {
            results[i] = r;
        }
        let children: Vec<(Phase, Outputs)> = results.iter().flatten().map(|r| (r.phase, r.outputs.clone())).collect();
        let continue_on = step.continue_on.unwrap_or_default();
        let interrupted = results.iter().flatten().any(|r| !r.phase.is_done());
        let phase = if interrupted {
            Phase::Running
        } else {
            let bad = results.iter().flatten().find(|r| !r.phase.is_ok() && !continues(continue_on, r.phase));
            match bad {
                Some(r) => r.phase,
                None => Phase::Succeeded,
            }
        };
        let message = results
            .iter()
            .flatten()
            .find(|r| r.phase.is_done() && !r.phase.is_ok())
            .map(|r| format!("child {} {}", r.id, r.message))
            .unwrap_or_default();
        self.clone().hook(&step, &origin, &vars, &name, Place { parent, cancel: &cancel, depth: depth + 1 }).await;
        let mut outcome = Outcome {
            id: group_id.to_string(),
            phase,
            outputs: Outputs::default(),
            children: Some(children),
            started: None,
            finished: Some(now_ms()),
        };
        if let Some(g) = group {
            let r = self.finish(g, phase, message, Outputs::default());
            outcome.started = r.started;
        }
        outcome
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

    /// A step's `onExit`, run after it whatever its outcome.
    async fn hook(self: Arc<Self>, step: &Step, origin: &Origin, vars: &Vars, name: &str, at: Place<'_>) {
        if step.on_exit.is_empty() || self.interrupt.is_cancelled() {
            return;
        }
        let hook =
            Step { template: step.on_exit.clone(), template_ref: None, arguments: Default::default(), ..step.clone() };
        if let Ok(call) = self.child_call(&hook, origin, vars, format!("{name}.onExit"), at) {
            let _ = self.execute(call).await;
        }
    }

    async fn run_steps(
        self: Arc<Self>,
        id: u32,
        call: &Call,
        template: &Template,
        bound: Bound,
        cancel: CancellationToken,
    ) -> (Phase, String, Outputs) {
        self.set_running(id);
        let mut vars = bound.vars.clone();
        vars.keep = vec!["workflow.status", "workflow.failures"];
        let groups = template.steps.clone().unwrap_or_default();
        let fail_fast = template.fail_fast.unwrap_or(true);
        let mut phase = Phase::Succeeded;
        let mut message = String::new();
        for (gi, group) in groups.iter().enumerate() {
            let group_name = format!("{}[{gi}]", call.name);
            let gid = match self.ensure(&group_name, NodeKind::StepGroup, &template.name, Some(id)) {
                Ok(gid) => gid,
                Err(done) => {
                    // A finished group: its children's outcomes are in the store.
                    for step in group {
                        if let Some(o) = self.stored_outcome(&format!("{group_name}.{}", step.name)) {
                            vars.siblings.insert(format!("steps.{}", step.name), o);
                        }
                    }
                    if !done.phase.is_ok() {
                        return (done.phase, done.message, Outputs::default());
                    }
                    continue;
                }
            };
            self.set_running(gid);
            let limit = Arc::new(Semaphore::new(template.parallelism.map(|p| p as usize).unwrap_or(usize::MAX >> 4)));
            let mut running = FuturesUnordered::new();
            for step in group {
                let me = self.clone();
                let vars = vars.clone();
                let name = format!("{group_name}.{}", step.name);
                let step = step.clone();
                let origin = call.origin.clone();
                let cancel = cancel.clone();
                let limit = limit.clone();
                let parallelism = template.parallelism.map(|p| p as usize);
                running.push(async move {
                    let _permit = limit.acquire_owned().await;
                    let site = Site {
                        name,
                        parent: gid,
                        cancel,
                        group_kind: NodeKind::StepGroup,
                        parallelism,
                        fail_fast,
                        depth: call.depth,
                    };
                    let o = me.run_step(step.clone(), origin, vars, site).await;
                    (step, o)
                });
            }
            let mut group_phase = Phase::Succeeded;
            let mut group_message = String::new();
            while let Some((step, o)) = running.next().await {
                if !o.phase.is_done() {
                    group_phase = Phase::Running;
                } else if !o.phase.is_ok()
                    && !continues(step.continue_on.unwrap_or_default(), o.phase)
                    && group_phase.is_ok()
                {
                    group_phase = o.phase;
                    group_message = format!("step {} {}", step.name, o.phase);
                }
                vars.siblings.insert(format!("steps.{}", step.name), o);
            }
            self.finish(gid, group_phase, group_message.clone(), Outputs::default());
            if !group_phase.is_ok() {
                phase = group_phase;
                message = group_message;
                break;
            }
        }
        if !phase.is_ok() {
            return (phase, message, Outputs::default());
        }
        match composite_outputs(template, &vars, &self.plan.repository) {
            Ok(outputs) => (phase, message, outputs),
            Err(e) => (Phase::Error, e, Outputs::default()),
        }
    }

    /// The iterations of a finished loop, read back from the node table in
    /// item order (`name(0:a)`, `name(1:b)`, ...).
    fn stored_children(&self, name: &str) -> Vec<(Phase, Outputs)> {
        let Ok(s) = self.state.lock() else { return Vec::new() };
        let prefix = format!("{name}(");
        let mut children: Vec<(usize, Phase, Outputs)> = s
            .nodes
            .iter()
            .filter(|n| n.name.starts_with(&prefix) && !n.name[prefix.len()..].contains(")."))
            .filter_map(|n| {
                let idx = n.name[prefix.len()..].split(':').next()?.parse().ok()?;
                Some((idx, n.phase, n.outputs.clone()))
            })
            .collect();
        children.sort_by_key(|c| c.0);
        children.dedup_by_key(|c| c.0);
        children.into_iter().map(|c| (c.1, c.2)).collect()
    }

    /// The outcome of a finished step or task read back from the node table
    /// (for groups finished before a resume).
    fn stored_outcome(&self, name: &str) -> Option<Outcome> {
        let s = self.state.lock().ok()?;
        let direct = s.by_name.get(name).map(|&id| &s.nodes[id as usize]);
        if let Some(n) = direct {
            return Some(Outcome {
                id: n.id.to_string(),
                phase: n.phase,
                outputs: n.outputs.clone(),
                children: None,
                started: n.started,
                finished: n.finished,
            });
        }
        drop(s);
        let children = self.stored_children(name);
        let phase = if children.iter().all(|c| c.0.is_ok()) { Phase::Succeeded } else { Phase::Failed };
        Some(Outcome {
            id: String::new(),
            phase,
            outputs: Outputs::default(),
            children: Some(children),
            started: None,
            finished: None,
        })
    }

    async fn run_dag(
        self: Arc<Self>,
        id: u32,
        call: &Call,
        template: &Template,
        bound: Bound,
        cancel: CancellationToken,
    ) -> (Phase, String, Outputs) {
        self.set_running(id);
        let mut vars = bound.vars.clone();
        vars.keep = vec!["workflow.status", "workflow.failures"];
        let dag = template.dag.clone().unwrap_or_default();
        let fail_fast = dag.fail_fast.or(template.fail_fast).unwrap_or(true);
        let mut depends: Vec<Depends> = Vec::new();
        for t in &dag.tasks {
            let d = if !t.depends.trim().is_empty() {
                match expr::parse_depends(&t.depends) {
                    Ok(d) => Some(d),
                    Err(e) => return (Phase::Error, format!("task {}: depends: {e}", t.name), Outputs::default()),
                }
            } else if !t.dependencies.is_empty() {
                Some(expr::from_dependencies(&t.dependencies))
            } else {
                None
            };
            depends.push(d.unwrap_or_else(|| expr::from_dependencies(&[])));
        }
        let index: HashMap<&str, usize> = dag.tasks.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
        let deps: Vec<Vec<usize>> = depends
            .iter()
            .map(|d| {
                let mut v: Vec<usize> = d.tasks().iter().filter_map(|n| index.get(n.as_str()).copied()).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        // Each task waits for its dependencies to be decided; deciding one
        // wakes only its dependents, so a DAG of N tasks costs O(N + edges).
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                dependents[j].push(i);
            }
        }
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut ready: std::collections::VecDeque<usize> = (0..dag.tasks.len()).filter(|&i| waiting[i] == 0).collect();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; dag.tasks.len()];
        let mut ran = vec![false; dag.tasks.len()];
        let limit = Arc::new(Semaphore::new(template.parallelism.map(|p| p as usize).unwrap_or(usize::MAX >> 4)));
        let mut running = FuturesUnordered::new();
        let mut failed = false;
        let mut interrupted = false;
        let decide = |i: usize,
                      o: Outcome,
                      outcomes: &mut Vec<Option<Outcome>>,
                      waiting: &mut Vec<usize>,
                      ready: &mut std::collections::VecDeque<usize>| {
            vars.siblings.insert(format!("tasks.{}", dag.tasks[i].name), o.clone());
            outcomes[i] = Some(o);
            for &k in &dependents[i] {
                waiting[k] -= 1;
                if waiting[k] == 0 {
                    ready.push_back(k);
                }
            }
        };
        loop {
            while let Some(i) = ready.pop_front() {
                if (fail_fast && failed) || interrupted || cancel.is_cancelled() {
                    continue;
                }
                let task = &dag.tasks[i];
                let name = format!("{}.{}", call.name, task.name);
                let go = if task.depends.trim().is_empty() && !task.dependencies.is_empty() {
                    // `dependencies` also accept a failed dependency with continueOn.
                    task.dependencies.iter().all(|d| {
                        index.get(d.as_str()).and_then(|&j| outcomes[j].as_ref().map(|o| (j, o))).is_some_and(
                            |(j, o)| {
                                o.phase.is_ok() || continues(dag.tasks[j].continue_on.unwrap_or_default(), o.phase)
                            },
                        )
                    })
                } else {
                    let lookup = |n: &str| -> Option<TaskOutcome> {
                        let o = outcomes[*index.get(n)?].as_ref()?;
                        Some(TaskOutcome {
                            phase: to_expr_phase(o.phase),
                            children: o
                                .children
                                .as_ref()
                                .map(|c| c.iter().map(|(p, _)| to_expr_phase(*p)).collect())
                                .unwrap_or_default(),
                        })
                    };
                    match depends[i].evaluate(&lookup) {
                        Ok(b) => b,
                        Err(e) => {
                            let r = self.not_run(&name, &task.template, id, Phase::Error, format!("depends: {e}"));
                            decide(i, outcome(&r), &mut outcomes, &mut waiting, &mut ready);
                            continue;
                        }
                    }
                };
                if !go {
                    let why = format!("omitted: depends condition not met ({})", depends[i]);
                    let r = self.not_run(&name, &task.template, id, Phase::Omitted, why);
                    decide(i, outcome(&r), &mut outcomes, &mut waiting, &mut ready);
                    continue;
                }
                ran[i] = true;
                let me = self.clone();
                let task = task.clone();
                let v = vars.clone();
                let origin = call.origin.clone();
                let cancel = cancel.clone();
                let limit = limit.clone();
                let parallelism = template.parallelism.map(|p| p as usize);
                running.push(async move {
                    let _permit = limit.acquire_owned().await;
                    let site = Site {
                        name,
                        parent: id,
                        cancel,
                        group_kind: NodeKind::TaskGroup,
                        parallelism,
                        fail_fast,
                        depth: call.depth,
                    };
                    let o = me.run_step(task, origin, v, site).await;
                    (i, o)
                });
            }
            let Some((i, o)) = running.next().await else { break };
            if !o.phase.is_done() {
                interrupted = true;
            } else if !o.phase.is_ok()
                && !continues(dag.tasks[i].continue_on.unwrap_or_default(), o.phase)
                && !dependents[i].iter().any(|&k| depends[k].handles_failure_of(&dag.tasks[i].name))
            {
                failed = true;
            }
            decide(i, o, &mut outcomes, &mut waiting, &mut ready);
        }
        if interrupted || (self.interrupt.is_cancelled() && outcomes.iter().any(Option::is_none)) {
            return (Phase::Running, String::new(), Outputs::default());
        }
        // A failure fails the DAG unless it was continued on, or handled by a
        // task that ran because of it.
        let mut phase = Phase::Succeeded;
        let mut message = String::new();
        for (i, o) in outcomes.iter().enumerate() {
            let task = &dag.tasks[i];
            match o {
                None if phase.is_ok() => {
                    phase = if cancel.is_cancelled() { Phase::Failed } else { phase };
                }
                Some(o) if !o.phase.is_ok() && !continues(task.continue_on.unwrap_or_default(), o.phase) => {
                    let handled = dependents[i].iter().any(|&j| ran[j]);
                    if !handled && phase.is_ok() {
                        phase = o.phase;
                        message = format!("task {} {}", task.name, o.phase);
                    }
                }
                _ => {}
            }
        }
        if !phase.is_ok() {
            return (phase, message, Outputs::default());
        }
        match composite_outputs(template, &vars, &self.plan.repository) {
            Ok(outputs) => (phase, message, outputs),
            Err(e) => (Phase::Error, e, Outputs::default()),
        }
    }
}

/// Where a step or task runs: its node name and parent, and the policies
/// its loop follows.
/// Where a child node hangs: its parent node, the parent's cancellation,
/// and the child's template depth.
#[derive(Clone, Copy)]
struct Place<'a> {
    parent: u32,
    cancel: &'a CancellationToken,
    depth: u32,
}

struct Site {
    name: String,
    parent: u32,
    cancel: CancellationToken,
    /// `TaskGroup` for DAG tasks (loops get a group node), `StepGroup` for steps.
    group_kind: NodeKind,
    parallelism: Option<usize>,
    fail_fast: bool,
    /// The depth of the template the step belongs to.
    depth: u32,
}

/// The `workflow.*` variables that do not change during a run.
fn fixed_workflow_vars(p: &Plan) -> BTreeMap<String, String> {
    let mut plain = BTreeMap::new();
    plain.insert("workflow.name".into(), p.name.clone());
    plain.insert("workflow.uid".into(), p.uid.clone());
    plain.insert("workflow.namespace".into(), p.namespace.clone());
    plain.insert("workflow.mainEntrypoint".into(), p.spec.entrypoint.clone());
    plain.insert("workflow.creationTimestamp".into(), rfc3339(p.created));
    for (k, v) in strftime_parts(p.created) {
        plain.insert(format!("workflow.creationTimestamp.{k}"), v);
    }
    for (k, v) in &p.parameters {
        plain.insert(format!("workflow.parameters.{k}"), v.clone());
    }
    plain.insert("workflow.parameters".into(), serde_json::to_string(&p.parameters).unwrap_or_default());
    for (k, v) in &p.metadata.labels {
        plain.insert(format!("workflow.labels.{k}"), v.clone());
    }
    for (k, v) in &p.metadata.annotations {
        plain.insert(format!("workflow.annotations.{k}"), v.clone());
    }
    plain
}

fn outcome(r: &NodeResult) -> Outcome {
    Outcome {
        id: r.id.to_string(),
        phase: r.phase,
        outputs: r.outputs.clone(),
        children: None,
        started: r.started,
        finished: r.finished,
    }
}

fn continues(c: ContinueOn, phase: Phase) -> bool {
    (c.failed && phase == Phase::Failed) || (c.error && phase == Phase::Error)
}

fn to_expr_phase(p: Phase) -> expr::Phase {
    match p {
        Phase::Succeeded => expr::Phase::Succeeded,
        Phase::Failed => expr::Phase::Failed,
        Phase::Error | Phase::Pending | Phase::Running => expr::Phase::Error,
        Phase::Skipped => expr::Phase::Skipped,
        Phase::Omitted => expr::Phase::Omitted,
    }
}

fn placeholder() -> Node {
    Node {
        id: 0,
        name: String::new(),
        parent: None,
        kind: NodeKind::Skipped,
        template: String::new(),
        phase: Phase::Omitted,
        started: None,
        finished: None,
        message: String::new(),
        outputs: Outputs::default(),
    }
}

fn poisoned() -> crate::store::StoreError {
    crate::store::StoreError::Corrupt { path: PathBuf::new(), detail: "controller state lock poisoned".into() }
}

/// Substitutes every string of a template.
///
/// Steps and DAG tasks are left as they are: each is substituted when it
/// starts, with the same variables, so a DAG of 100,000 tasks is never turned
/// into one JSON tree at once.
fn substitute_template(t: &Template, vars: &Vars) -> Result<Template, String> {
    let mut shell = Template { steps: None, dag: None, ..t.clone_without_children() };
    let mut value = serde_json::to_value(&shell).map_err(|e| e.to_string())?;
    walk(&mut value, vars, &mut Vec::new())?;
    shell = serde_json::from_value(value).map_err(|e| format!("after substitution: {e}"))?;
    shell.steps.clone_from(&t.steps);
    shell.dag.clone_from(&t.dag);
    Ok(shell)
}

fn walk(v: &mut serde_json::Value, vars: &Vars, path: &mut Vec<String>) -> Result<(), String> {
    match v {
        serde_json::Value::String(s) if s.contains("{{") => {
            *s = vars.substitute(s).map_err(|e| format!("{}: {e}", path.join(".")))?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, vars, path)?;
                path.pop();
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                path.push(k.clone());
                walk(item, vars, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn substitute_json(v: &serde_json::Value, vars: &Vars) -> Result<serde_json::Value, String> {
    let mut v = v.clone();
    walk(&mut v, vars, &mut vec!["withItems".into()])?;
    Ok(v)
}

/// A steps or DAG template's outputs, from its children's.
fn composite_outputs(template: &Template, vars: &Vars, repo: &Repository) -> Result<Outputs, String> {
    let mut out = Outputs::default();
    for p in &template.outputs.parameters {
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
                    None => return Err(format!("outputs.parameters.{}: {e}", p.name)),
                },
            },
            None => return Err(format!("outputs.parameters.{}: needs valueFrom.parameter or value", p.name)),
        };
        out.parameters.insert(p.name.clone(), value);
    }
    for a in &template.outputs.artifacts {
        match binding::argument_value(a, vars, repo) {
            Ok(Some(v)) => {
                out.artifacts.insert(a.name.clone(), v);
            }
            Ok(None) if a.optional => {}
            Ok(None) => return Err(format!("outputs.artifacts.{}: nothing to export", a.name)),
            Err(e) => return Err(format!("outputs.artifacts.{}: {e}", a.name)),
        }
    }
    Ok(out)
}
