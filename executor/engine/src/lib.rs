//! # ferry-engine
//!
//! Runs a workflow plan (ferry-workflow's [`Plan`](ferry_workflow::plan::Plan))
//! against a persisted state, reaching storage only through artifact drivers
//! speaking Argo's gRPC contract.
//!
//! - [`Home`]: a Ferry home (its database and run directories), what the CLI drives.
//! - [`Controller`]: runs a plan, node by node, against the [`Store`].
//! - [`Node`], [`ArtifactRecord`]: the records of a run.
//! - [`DriverPool`]: the driver processes of a run; [`GcReport`]: artifact garbage collection.
//! - [`Runtime`]: where steps run ([`LocalRuntime`], [`DockerRuntime`]).
//!
//! Inside: `controller` schedules; `artifacts` and `archive` move and pack a
//! step's artifacts; `drivers` runs the driver processes; `gc` deletes
//! artifacts; `store` is the SQLite state; `telemetry` the process's
//! Prometheus metrics; `home` ties them together.
#![warn(unreachable_pub)]

mod archive;
mod artifacts;
mod controller;
mod drivers;
mod error;
mod gc;
mod home;
mod locks;
mod metrics;
mod probe;
mod runtime;
mod status;
mod store;
mod telemetry;
mod volumes;

pub use controller::{Controller, MAX_STACK_DEPTH, NodeResult, Observer, RunSummary};
pub use drivers::{ContainerLauncher, DRIVER_GRACE, DriverError, DriverPool, Launcher, MAX_RESTARTS, ToClient};
pub use gc::GcReport;
pub use home::{Error, Finished, Home};
pub use runtime::docker::DockerRuntime;
pub use runtime::{DriverRole, Isolation, LocalRuntime, Mounted, PodExit, PodSpec, Runtime, RuntimeError, sandbox};
pub use status::{ArtifactRecord, Direction, GcState, Node, NodeKind, display_name};
pub use store::{Decision, Store, StoreError, WorkflowRecord};
pub use telemetry::serve_from_env as serve_metrics_from_env;
