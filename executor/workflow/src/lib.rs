//! # ferry-workflow
//!
//! What Ferry knows about a workflow before anything runs, with no I/O beyond
//! reading the files: the Argo documents, the expressions and variables in
//! them, the plan a run follows, and the checks before a run.
//!
//! - [`model`]: the documents, refusing unsupported fields by path and line.
//! - [`cron`]: `CronWorkflow`: its schedule, the workflow a tick runs, what the scheduler does.
//! - [`expr`], [`vars`]: `{{...}}` tags, `when`, `depends`, and the values they read.
//! - [`expression`]: Argo's expr-lang expressions (`{{=...}}`, `valueFrom.expression`, `retryStrategy.expression`).
//! - [`plan`], [`lint`], [`problem`]: the resolved workflow and what stops it from running.
//! - [`defaults`]: `templateDefaults` merged into each template.
//! - [`binding`]: the values a template's input artifacts stand for.
//! - [`registry`], [`repository`]: the drivers a run may use, and where artifacts go.
//! - [`values`], [`strategy`]: what steps hand on, and how artifacts are packed.
//! - [`aggregate`]: the outputs of a loop, as one JSON list.
//! - [`naming`], [`time`], [`sequence`]: Argo's names, times and `withSequence`.
//! - [`volume`], [`synchronization`]: the volumes steps mount, the locks they hold.
#![warn(unreachable_pub)]

pub mod aggregate;
pub mod binding;
pub mod cron;
pub mod defaults;
pub mod expr;
pub mod expression;
pub mod lint;
pub mod model;
pub mod naming;
pub mod plan;
pub mod problem;
pub mod registry;
pub mod repository;
pub mod sequence;
pub mod strategy;
pub mod synchronization;
pub mod time;
pub mod values;
pub mod vars;
pub mod volume;
