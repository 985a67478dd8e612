//! A [`Runtime`] that runs no process: each template is scripted (exit code,
//! standard output, files written into its outputs, how long it takes), and
//! every run is recorded with its start and end instants, so a test can
//! assert which pods ran, how often, in what order and how many at once.

use async_trait::async_trait;
use ferry_engine::Launcher;
use ferry_engine::WorkflowRecord;
use ferry_engine::{PodExit, PodSpec, Runtime, RuntimeError};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What one run of a template does.
#[derive(Clone, Debug, Default)]
pub struct Script {
    exit: i32,
    stdout: String,
    files: Vec<(String, String)>,
    takes: Duration,
    gathers: usize,
    cannot_run: Option<String>,
}

impl Script {
    /// Exits 0 at once.
    pub fn ok() -> Script {
        Script::default()
    }

    /// Exits with `code`.
    pub fn exits(code: i32) -> Script {
        Script { exit: code, ..Script::default() }
    }

    /// Cannot be started at all (the runtime's `Err`, an Error node).
    pub fn cannot_run(why: &str) -> Script {
        Script { cannot_run: Some(why.to_string()), ..Script::default() }
    }

    /// Prints `text` on standard output.
    pub fn prints(mut self, text: impl Into<String>) -> Script {
        self.stdout = text.into();
        self
    }

    /// Writes `contents` at the container path `path` before exiting.
    pub fn writes(mut self, path: &str, contents: impl Into<String>) -> Script {
        self.files.push((path.to_string(), contents.into()));
        self
    }

    /// Runs this long before exiting, unless cancelled or past its deadline.
    pub fn takes(mut self, d: Duration) -> Script {
        self.takes = d;
        self
    }

    /// Before that, waits (at most [`GATHER_LIMIT`]) until `n` runs of its
    /// template have started, so runs the controller starts side by side
    /// are seen side by side however loaded the machine is.
    pub fn gathers(mut self, n: usize) -> Script {
        self.gathers = n;
        self
    }
}

/// A run as a script sees it when the pod starts.
pub struct Run<'a> {
    /// The pod's arguments after substitution (`argv[0]` is the command).
    pub argv: &'a [String],
    /// How many runs of this template started before this one.
    pub nth: usize,
    root: PathBuf,
}

impl Run<'_> {
    /// Argument `i` after the command, or "" when absent.
    pub fn arg(&self, i: usize) -> &str {
        self.argv.get(i + 1).map(String::as_str).unwrap_or_default()
    }

    /// The contents of the container path `path` (inputs are in place).
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("reading {path} in the pod: {e}"))
    }
}

/// How long a run waits for its peers (see [`Script::gathers`]) before it
/// goes on alone, which the test then sees as runs that did not overlap.
pub const GATHER_LIMIT: Duration = Duration::from_secs(2);

type Behaviour = Arc<dyn Fn(&Run<'_>) -> Script + Send + Sync>;

/// One run of a pod, as recorded.
#[derive(Clone, Debug)]
pub struct Record {
    pub template: String,
    pub pod: String,
    pub argv: Vec<String>,
    pub started: Instant,
    /// `None` while it runs.
    pub ended: Option<Instant>,
    /// The deadline the controller gave the pod.
    pub deadline: Option<Duration>,
}

impl Record {
    /// When it ended (panics while it runs).
    pub fn end(&self) -> Instant {
        self.ended.unwrap_or_else(|| panic!("pod {} has not ended", self.pod))
    }
}

/// The scripted runtime. Templates without a script exit 0 at once.
pub struct FakeRuntime {
    workflow: String,
    scripts: HashMap<String, Behaviour>,
    drivers: BTreeMap<String, PathBuf>,
    records: Mutex<Vec<Record>>,
    started: tokio::sync::Notify,
}

impl FakeRuntime {
    /// A runtime for the run named `workflow` (pod names carry it).
    pub fn new(workflow: &str) -> FakeRuntime {
        FakeRuntime {
            workflow: workflow.to_string(),
            scripts: HashMap::new(),
            drivers: BTreeMap::new(),
            records: Mutex::new(Vec::new()),
            started: tokio::sync::Notify::new(),
        }
    }

    /// Scripts `template`: `behaviour` decides each run when it starts.
    pub fn on(mut self, template: &str, behaviour: impl Fn(&Run<'_>) -> Script + Send + Sync + 'static) -> Self {
        self.scripts.insert(template.to_string(), Arc::new(behaviour));
        self
    }

    /// Runs' drivers are served at these sockets by someone else.
    pub fn attach(&mut self, driver: &str, socket: PathBuf) {
        self.drivers.insert(driver.to_string(), socket);
    }

    /// Every run so far, in start order.
    pub fn runs(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// The runs of one template, in start order.
    pub fn runs_of(&self, template: &str) -> Vec<Record> {
        self.runs().into_iter().filter(|r| r.template == template).collect()
    }

    /// How many times the pod of node `node` (running `template`) ran.
    pub fn pod_runs(&self, template: &str, node: &str) -> usize {
        let pod = ferry_workflow::naming::pod_name(&self.workflow, template, node);
        self.runs().iter().filter(|r| r.pod == pod).count()
    }

    /// The most runs that were under way at one instant.
    pub fn max_concurrent(&self) -> usize {
        let runs = self.runs();
        runs.iter()
            .map(|r| runs.iter().filter(|o| o.started <= r.started && o.ended.is_none_or(|e| e > r.started)).count())
            .max()
            .unwrap_or(0)
    }

    /// Waits until `template` has started `n` runs.
    pub async fn wait_started(&self, template: &str, n: usize) {
        tokio::time::timeout(Duration::from_secs(5), self.started_runs(template, n))
            .await
            .unwrap_or_else(|_| panic!("{template} did not start {n} run(s) in 5 s"));
    }

    async fn started_runs(&self, template: &str, n: usize) {
        loop {
            let notified = self.started.notified();
            if self.runs_of(template).len() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Pod names are `<workflow>-<template>-<hash of the node name>`, and
    /// `<workflow>-<hash>` for inline templates, which have no name: their
    /// runs are recorded (and scripted) under the template "".
    fn template_of(&self, pod: &str) -> String {
        let rest = pod.strip_prefix(&format!("{}-", self.workflow)).unwrap_or(pod);
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return String::new();
        }
        rest.rsplit_once('-').map_or(rest, |(t, _)| t).to_string()
    }

    fn end(&self, at: usize) {
        self.records.lock().unwrap()[at].ended = Some(Instant::now());
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn host_path(&self, pod: &PodSpec, path: &str) -> PathBuf {
        pod.dir.join("root").join(path.trim_start_matches('/'))
    }

    /// Loopback, once the pod has started, as the local runtime does.
    async fn address(&self, pod: &PodSpec) -> Result<String, RuntimeError> {
        while !self.records.lock().unwrap().iter().any(|r| r.pod == pod.name) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok("127.0.0.1".to_string())
    }

    async fn run(&self, pod: &PodSpec, cancel: CancellationToken) -> Result<PodExit, RuntimeError> {
        let template = self.template_of(&pod.name);
        let (script, at) = {
            let mut records = self.records.lock().unwrap();
            let nth = records.iter().filter(|r| r.template == template).count();
            let run = Run { argv: &pod.argv, nth, root: self.host_path(pod, "/") };
            let script = self.scripts.get(&template).map_or_else(Script::ok, |b| b(&run));
            records.push(Record {
                template: template.clone(),
                pod: pod.name.clone(),
                argv: pod.argv.clone(),
                started: Instant::now(),
                ended: None,
                deadline: pod.deadline,
            });
            (script, records.len() - 1)
        };
        self.started.notify_waiters();
        let gathered = tokio::time::timeout(GATHER_LIMIT, self.started_runs(&template, script.gathers));
        let deadline = async {
            match pod.deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let mut exit = PodExit::default();
        tokio::select! {
            _ = async { gathered.await.ok(); tokio::time::sleep(script.takes).await } => {}
            () = deadline => exit.timed_out = true,
            () = cancel.cancelled() => exit.cancelled = true,
        }
        if exit.timed_out || exit.cancelled {
            // As a killed process: no exit code, SIGTERM.
            exit.signal = Some(15);
            self.end(at);
            return Ok(exit);
        }
        if let Some(why) = script.cannot_run {
            self.end(at);
            return Err(RuntimeError::Invalid(why));
        }
        for (path, contents) in &script.files {
            let host = self.host_path(pod, path);
            std::fs::create_dir_all(host.parent().expect("a container path has a parent")).unwrap();
            std::fs::write(&host, contents).unwrap();
        }
        exit.code = Some(script.exit);
        exit.stdout = script.stdout;
        self.end(at);
        Ok(exit)
    }

    fn run_drivers(&self, _run: &WorkflowRecord) -> Launcher {
        Launcher::Attached(self.drivers.clone())
    }

    /// Nothing of a fake pod outlives its run.
    fn stop_earlier_steps(&self, _run: &WorkflowRecord) -> Result<(), RuntimeError> {
        Ok(())
    }
}
