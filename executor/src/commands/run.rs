//! `ferry run`: plans a workflow, records the run and runs it to the end.

use super::{build_runtime, execute, parameters, registry};
use crate::cli::{Inputs, Output, RuntimeArgs};
use crate::output::report::report;
use anyhow::Result;
use ferry_engine::Home;
use ferry_workflow::plan::PlanOptions;

/// What `ferry run` was told besides the files and the runtime.
pub(super) struct Options {
    pub(super) parameters: Vec<String>,
    pub(super) parallelism: Option<usize>,
    pub(super) name: Option<String>,
    pub(super) quiet: bool,
    pub(super) output: Output,
}

pub(super) async fn run(home: &Home, inputs: &Inputs, options: Options, runtime_args: RuntimeArgs) -> Result<u8> {
    let runtime = build_runtime(&runtime_args, home)?;
    let plan_options = PlanOptions {
        parameters: parameters(options.parameters)?,
        parallelism: options.parallelism,
        registry: registry(inputs.drivers.as_ref())?,
        name: options.name,
        runtime: Some(runtime_args.choice()),
        ..Default::default()
    };
    let plan = home.plan(&inputs.files, plan_options)?;
    let wf = home.create(&plan)?;
    let json = matches!(options.output, Output::Json);
    if !options.quiet && !json {
        eprintln!("ferry: running {} ({} steps at once)", wf.name, plan.parallelism);
    }
    let finished = execute(home, wf, plan, runtime, options.quiet || json).await?;
    report(home, &finished, options.output)
}
