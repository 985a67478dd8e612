//! A Ferry home: the state database and the run directories. The CLI's
//! commands are thin layers over this.

use crate::controller::{Controller, Observer, RunSummary};
use crate::drivers::{DRIVER_GRACE, DriverError, DriverPool};
use crate::gc::{self, GcReport};
use crate::runtime::{LocalRuntime, Runtime};
use crate::store::{Store, StoreError, WorkflowRecord};
use ferry_workflow::lint;
use ferry_workflow::model::{Documents, GcStrategy, LoadError};
use ferry_workflow::plan::{Plan, PlanOptions};
use ferry_workflow::problem::PlanError;
use ferry_workflow::registry::Registry;
use ferry_workflow::repository::Repository;
use ferry_workflow::time::now_ms;
use ferry_workflow::values::Phase;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What can go wrong in a Ferry home.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read as workflow YAML.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The workflow has problems.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A driver could not be registered or started.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The request conflicts with the state (a name in use, a run in progress).
    #[error("{0}")]
    Conflict(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A local file operation failed.
    #[error("{action}{}{}: {source}", if .action.is_empty() { "" } else { " " }, .path.display())]
    Io {
        /// What was being done (`creating`), or empty.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The plan could not be encoded for the state database.
    #[error("encoding the plan: {0}")]
    Encode(String),
}

type Result<T> = std::result::Result<T, Error>;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

/// The end of a run or resume.
#[derive(Debug)]
pub struct Finished {
    /// The run.
    pub workflow: WorkflowRecord,
    /// How it ended.
    pub summary: RunSummary,
    /// Garbage collection on completion, if it ran.
    pub gc: Option<GcReport>,
    /// Drivers that did not exit 0 on SIGTERM.
    pub driver_exits: Vec<String>,
    /// Each driver's start-up time.
    pub startups: Vec<(String, Duration)>,
}

/// `FERRY_HOME`: the home directory, unless `--home` names one.
pub(crate) const HOME_ENV: &str = "FERRY_HOME";

/// A Ferry home directory.
pub struct Home {
    dir: PathBuf,
    store: Arc<Mutex<Store>>,
}

impl Home {
    /// `$FERRY_HOME`, else `$XDG_STATE_HOME/ferry`, else `~/.local/state/ferry`
    /// (an empty `FERRY_HOME` is unset, as for every `FERRY_*` setting).
    pub fn default_dir() -> PathBuf {
        if let Some(h) = ferry_sdk::env::path(HOME_ENV) {
            return h;
        }
        if let Some(x) = std::env::var_os("XDG_STATE_HOME") {
            return PathBuf::from(x).join("ferry");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".local/state/ferry")
    }

    /// Opens (creating) the home at `dir`.
    pub fn open(dir: &Path) -> Result<Home> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let dir = dir.canonicalize().map_err(io("", dir))?;
        let store = Store::open(&dir.join("ferry.db"))?;
        Ok(Home { dir, store: Arc::new(Mutex::new(store)) })
    }

    /// Where the embedded default repository (the fs driver) keeps objects.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.join("artifacts")
    }

    /// The state database.
    pub fn store(&self) -> parking_lot::MutexGuard<'_, Store> {
        self.store.lock()
    }

    /// Reads `files` and builds the plan, with every problem found.
    pub fn plan(&self, files: &[PathBuf], mut options: PlanOptions) -> Result<Plan> {
        let docs = Documents::load(files)?;
        if options.fallback_repository.is_none() {
            options.fallback_repository = Some(Repository::embedded(&self.artifacts_dir()));
        }
        Ok(lint::checked(Plan::build(&docs, &options)?)?)
    }

    /// Records a new run of `plan`.
    pub fn create(&self, plan: &Plan) -> Result<WorkflowRecord> {
        let store = self.store();
        if store.exists(&plan.name)? {
            return Err(Error::Conflict(format!(
                "workflow {:?} already exists: delete it (ferry delete {}) or use metadata.generateName",
                plan.name, plan.name
            )));
        }
        let dir = self.dir.join("runs").join(&plan.name);
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        // The plan holds the whole workflow: compressed, a 100,000-task DAG is
        // a few hundred KB instead of several MB.
        let json = serde_json::to_vec(plan).map_err(|e| Error::Encode(e.to_string()))?;
        let bytes = zstd::encode_all(json.as_slice(), 3).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(store.create_workflow(&plan.name, &plan.uid, &dir, &bytes, now_ms())?)
    }

    /// A run's summary.
    pub fn workflow(&self, name: &str) -> Result<WorkflowRecord> {
        self.store().workflow(name).map_err(|e| match e {
            StoreError::NotFound(n) => Error::NotFound(format!("no workflow named {n:?} (see ferry list)")),
            other => other.into(),
        })
    }

    /// The plan a run was started with.
    pub fn stored_plan(&self, wf: &WorkflowRecord) -> Result<Plan> {
        let bytes = self.store().plan(wf.id)?;
        let corrupt = |detail: String| {
            Error::Store(StoreError::Corrupt { path: self.dir.join("ferry.db"), detail: format!("plan: {detail}") })
        };
        let json = zstd::decode_all(bytes.as_slice()).map_err(|e| corrupt(e.to_string()))?;
        serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
    }

    /// A pool for the drivers of a run, with sockets where Argo puts them
    /// (`<run>/artifact-plugins/<name>/socket`) unless that path is too long
    /// for a unix socket.
    pub fn drivers(&self, wf: &WorkflowRecord, registry: Registry) -> DriverPool {
        let tag = format!("{}-{}", &wf.uid[..8.min(wf.uid.len())], std::process::id());
        DriverPool::with_short_sockets(registry, Some(wf.dir.join("artifact-plugins")), &tag, wf.dir.join("logs"))
    }

    /// A pool for reading a run's artifacts beside whatever process drives
    /// it (`ferry artifacts get`, `ferry server`). Its sockets and driver logs
    /// live in a scratch directory of its own, removed at shutdown: the run's
    /// own pool uses `<run>/artifact-plugins`, and a second driver started on
    /// one of those sockets would take it over from the running one.
    pub fn reader_drivers(&self, wf: &WorkflowRecord, registry: Registry) -> DriverPool {
        static POOLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = POOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("read-{}-{}-{n}", &wf.uid[..8.min(wf.uid.len())], std::process::id());
        let logs = std::env::temp_dir().join(format!("ferry-{tag}")).join("logs");
        DriverPool::with_short_sockets(registry, None, &tag, logs)
    }

    /// Runs (or resumes) `wf` to the end. Holds the run's lock, so two
    /// processes never drive one run.
    pub async fn execute(
        &self,
        wf: WorkflowRecord,
        plan: Plan,
        runtime: Arc<dyn Runtime>,
        interrupt: CancellationToken,
        observer: Option<Observer>,
    ) -> Result<Finished> {
        let lock = Self::lock_run(&wf, "is being run by another ferry process")?;
        // Waits for killed processes and calls the docker CLI: blocking work,
        // kept off the async workers.
        let (earlier, run) = (runtime.clone(), wf.clone());
        tokio::task::spawn_blocking(move || earlier.stop_earlier_steps(&run))
            .await
            .map_err(|e| Error::Conflict(format!("stopping earlier attempts failed: {e}")))?
            .map_err(|e| Error::Conflict(e.to_string()))?;
        let _held = self.hold_run_locks(&wf, &plan, &interrupt).await?;
        self.store().set_phase(wf.id, Phase::Running, "", None)?;
        let pool = Arc::new(self.drivers(&wf, plan.registry.clone()).with_launcher(runtime.run_drivers(&wf)));
        let plan = Arc::new(plan);
        let controller = Controller::new(
            plan.clone(),
            wf.clone(),
            self.store.clone(),
            runtime,
            pool.clone(),
            interrupt.clone(),
            observer,
        )?;
        let summary = controller.run().await?;
        drop(controller);
        crate::volumes::release_run(&plan, &wf.dir, summary.phase);
        let mut gc = None;
        if summary.phase.is_done() {
            gc = Some(gc::collect(&self.store, &wf, &pool, &[GcStrategy::OnWorkflowCompletion]).await?);
        }
        let startups = pool.startups().into_iter().map(|(n, d, _)| (n, d)).collect();
        let driver_exits = pool.shutdown(DRIVER_GRACE).await;
        let workflow = self.workflow(&wf.name)?;
        self.store().checkpoint()?;
        drop(lock);
        Ok(Finished { workflow, summary, gc, driver_exits, startups })
    }

    /// Takes the locks of the workflow's `synchronization` for the whole
    /// run, the run Pending with Argo's message while it waits. An
    /// interrupted wait leaves the run to resume.
    async fn hold_run_locks(
        &self,
        wf: &WorkflowRecord,
        plan: &Plan,
        interrupt: &CancellationToken,
    ) -> Result<Option<crate::locks::Held>> {
        let Some(sync) = &plan.spec.synchronization else { return Ok(None) };
        let wanted = sync.locks(&plan.namespace, &plan.config_maps).map_err(|e| Error::Conflict(e.to_string()))?;
        let waiting = |lock: &ferry_workflow::synchronization::Lock, holders: usize| {
            let message = format!("Waiting for {} lock. Lock status: {holders}/{}", lock.key, lock.limit);
            let _ = self.store().set_phase(wf.id, Phase::Pending, &message, None);
        };
        Ok(crate::locks::acquire(&self.store, &wanted, &wf.uid, interrupt, waiting).await?)
    }

    /// Records a decision on the suspended nodes of an unfinished run, for
    /// whichever process runs it (now, or when it is resumed).
    pub fn decide(&self, wf: &WorkflowRecord, decision: &crate::store::Decision) -> Result<()> {
        if wf.phase.is_done() {
            return Err(Error::Conflict(format!("workflow {:?} is {}: nothing is suspended", wf.name, wf.phase)));
        }
        Ok(self.store().decide(wf.id, decision, ferry_workflow::time::now_ms())?)
    }

    /// Whether another process drives the run now.
    pub fn in_progress(&self, wf: &WorkflowRecord) -> Result<bool> {
        match Self::lock_run(wf, "") {
            Ok(_) => Ok(false),
            Err(Error::Conflict(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Takes the run's lock (held until the file is dropped), so two
    /// processes never drive or delete one run at once.
    fn lock_run(wf: &WorkflowRecord, busy: &str) -> Result<std::fs::File> {
        std::fs::create_dir_all(&wf.dir).map_err(io("creating", &wf.dir))?;
        let path = wf.dir.join("lock");
        let lock =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io("", &path))?;
        if lock.try_lock().is_err() {
            return Err(Error::Conflict(format!("workflow {:?} {busy}", wf.name)));
        }
        Ok(lock)
    }

    /// Runs the completion GC of a finished run again (after a failure).
    pub async fn retry_gc(&self, wf: &WorkflowRecord) -> Result<GcReport> {
        let plan = self.stored_plan(wf)?;
        let pool = self.drivers(wf, plan.registry.clone());
        let report = gc::collect(&self.store, wf, &pool, &[GcStrategy::OnWorkflowCompletion]).await;
        pool.shutdown(DRIVER_GRACE).await;
        Ok(report?)
    }

    /// Deletes a run: its deletion GC first (and any completion GC still
    /// owed). A GC failure keeps the run unless `force`.
    pub async fn delete(&self, name: &str, force: bool) -> Result<GcReport> {
        let wf = self.workflow(name)?;
        let _lock = Self::lock_run(&wf, "is running: stop it first")?;
        let plan = self.stored_plan(&wf)?;
        let pool = self.drivers(&wf, plan.registry.clone());
        let report =
            gc::collect(&self.store, &wf, &pool, &[GcStrategy::OnWorkflowCompletion, GcStrategy::OnWorkflowDeletion])
                .await;
        pool.shutdown(DRIVER_GRACE).await;
        let report = report?;
        let force = force || plan.spec.artifact_gc.as_ref().is_some_and(|g| g.force_finalizer_removal);
        if !report.failed.is_empty() && !force {
            return Err(Error::Conflict(format!(
                "workflow {name:?} kept: artifact GC failed (retry with ferry delete, or --force to remove it anyway):\n  {}",
                report.failed.join("\n  ")
            )));
        }
        self.store().delete_workflow(wf.id)?;
        let _ = std::fs::remove_dir_all(&wf.dir);
        Ok(report)
    }

    /// The local runtime, isolating steps in namespaces where this host
    /// allows it; `launcher` runs [`crate::sandbox::main`] for `__sandbox`.
    pub fn local_runtime(
        launcher: PathBuf,
        image_map: &[String],
    ) -> std::result::Result<Arc<dyn Runtime>, crate::RuntimeError> {
        Ok(Arc::new(LocalRuntime::detect(launcher).with_entrypoints(image_map)?))
    }
}
