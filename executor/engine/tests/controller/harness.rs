//! A Ferry home in a temporary directory whose runs use the fake runtime
//! and the in-memory driver, driven through `Home` as the CLI drives it.

use super::fake_runtime::FakeRuntime;
use super::memory_driver::MemoryDriver;
use ferry_engine::Node;
use ferry_engine::Runtime;
use ferry_engine::{Finished, Home};
use ferry_workflow::plan::{Plan, PlanOptions};
use ferry_workflow::registry::{DriverSpec, Registry};
use ferry_workflow::repository::{DEFAULT_KEY_FORMAT, Repository};
use ferry_workflow::values::{Location, Phase};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Every test's workflow has this name.
pub const WF: &str = "wf";

/// The driver name the in-memory driver is registered and attached under.
pub const DRIVER: &str = "memory";

/// A driver every plan registers but nothing serves.
pub const UNATTACHED: &str = "elsewhere";

pub struct Harness {
    pub home: Home,
    pub runtime: Arc<FakeRuntime>,
    pub driver: MemoryDriver,
    dir: tempfile::TempDir,
}

/// A finished (or interrupted) execution and the nodes it left.
pub struct Ran {
    pub finished: Finished,
    pub nodes: Vec<Node>,
}

impl Harness {
    /// Serves the driver and attaches it to `runtime`.
    pub fn new(mut runtime: FakeRuntime) -> Harness {
        let driver = MemoryDriver::serve();
        runtime.attach(DRIVER, driver.socket.clone());
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        Harness { home, runtime: Arc::new(runtime), driver, dir }
    }

    /// The plan of a Workflow named [`WF`] whose YAML, after its head, is `body`.
    pub fn plan(&self, body: &str) -> Plan {
        let file = self.dir.path().join("wf.yaml");
        let head = format!("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: {WF}\n");
        std::fs::write(&file, format!("{head}{body}")).unwrap();
        let mut registry = Registry::default();
        let spec = |name: &str| DriverSpec {
            name: name.into(),
            image: String::new(),
            connection_timeout_seconds: 0,
            command: Vec::new(),
            env: Default::default(),
        };
        registry.merge(vec![spec(DRIVER), spec(UNATTACHED)]).unwrap();
        let repository = Repository {
            location: Location {
                driver: DRIVER.into(),
                configuration: "store: in-memory\n".into(),
                key: DEFAULT_KEY_FORMAT.into(),
                timeout: 0,
            },
            archive_logs: false,
            source: "the tests' in-memory repository".into(),
        };
        let options = PlanOptions { registry, fallback_repository: Some(repository), ..Default::default() };
        self.home.plan(&[file], options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Plans, records and runs `body` to its end.
    pub async fn run(&self, body: &str) -> Ran {
        self.run_until(body, CancellationToken::new()).await
    }

    /// As [`Harness::run`], stopping when `interrupt` is cancelled.
    pub async fn run_until(&self, body: &str, interrupt: CancellationToken) -> Ran {
        let plan = self.plan(body);
        let wf = self.home.create(&plan).unwrap();
        self.execute(wf, plan, interrupt).await
    }

    /// Runs the recorded run again from its stored plan and nodes.
    pub async fn resume(&self) -> Ran {
        let wf = self.home.workflow(WF).unwrap();
        let plan = self.home.stored_plan(&wf).unwrap();
        self.execute(wf, plan, CancellationToken::new()).await
    }

    async fn execute(&self, wf: ferry_engine::WorkflowRecord, plan: Plan, interrupt: CancellationToken) -> Ran {
        let runtime: Arc<dyn Runtime> = self.runtime.clone();
        let id = wf.id;
        let finished = self.home.execute(wf, plan, runtime, interrupt, None).await.unwrap();
        let nodes = self.home.store().nodes(id).unwrap();
        Ran { finished, nodes }
    }
}

impl Ran {
    /// The run's phase (`Running` when interrupted).
    pub fn phase(&self) -> Phase {
        self.finished.summary.phase
    }

    /// Why it failed.
    pub fn message(&self) -> &str {
        &self.finished.summary.message
    }

    /// The node named `name`; panics with the names there are.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| {
            panic!("no node {name:?}; nodes: {:?}", self.nodes.iter().map(|n| &n.name).collect::<Vec<_>>())
        })
    }

    /// Whether a node named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.nodes.iter().any(|n| n.name == name)
    }

    /// The phases of the nodes named, in that order.
    pub fn phases(&self, names: &[&str]) -> Vec<Phase> {
        names.iter().map(|n| self.node(n).phase).collect()
    }
}
