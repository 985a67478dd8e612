//! `ferry lint`: checks workflows without running them.

use super::registry;
use crate::cli::{Inputs, RuntimeArgs};
use anyhow::Result;
use ferry_engine::Home;
use ferry_workflow::plan::PlanOptions;

/// Lints for the runtime the run would use (`--runtime`, default local).
pub(super) fn lint(home: &Home, inputs: &Inputs, runtime: &RuntimeArgs) -> Result<u8> {
    let options = PlanOptions {
        registry: registry(inputs.drivers.as_ref())?,
        runtime: Some(runtime.choice()),
        ..Default::default()
    };
    match home.plan(&inputs.files, options) {
        Ok(plan) => {
            println!("{}: ok ({} templates)", plan.source, plan.spec.templates.len());
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}
