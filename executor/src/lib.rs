//! # ferry-executor
//!
//! The executor behind the `ferry` command: it runs Argo-style `Workflow`
//! YAML (steps, DAGs, loops, retries, exit handlers, artifact passing and
//! garbage collection) and reaches storage only through artifact drivers
//! speaking Argo's gRPC contract.
//!
//! - [`workflow`]: the documents, refusing unsupported fields by path and line.
//! - [`plan`] and [`lint`]: the resolved workflow, and the checks before a run.
//! - [`controller`]: runs a plan against a persisted state ([`store`]).
//! - [`artifacts`], [`archive`], [`repository`], [`drivers`]: artifact flow.
//! - [`runtime`]: where steps run; [`gc`]: artifact garbage collection.
//! - [`home`]: a Ferry home (its database and run directories), used by the CLI.

pub mod archive;
pub mod artifacts;
pub mod controller;
pub mod docker;
pub mod drivers;
pub mod expr;
pub mod gc;
pub mod home;
pub mod kubernetes;
pub mod lint;
pub mod names;
pub mod plan;
pub mod repository;
pub mod runtime;
pub mod status;
pub mod store;
pub mod vars;
pub mod workflow;
