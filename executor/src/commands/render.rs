//! `ferry render`: the Kubernetes Pods a workflow's steps run as.

use super::{parameters, registry};
use crate::cli::Inputs;
use anyhow::Result;
use ferry_engine::Home;
use ferry_render_k8s::RenderOptions;
use ferry_workflow::plan::PlanOptions;

pub(super) fn render(home: &Home, inputs: &Inputs, given: Vec<String>, render: RenderOptions) -> Result<u8> {
    let mut options = PlanOptions { registry: registry(inputs.drivers.as_ref())?, ..Default::default() };
    options.parameters = parameters(given)?;
    let plan = home.plan(&inputs.files, options)?;
    let pods = ferry_render_k8s::render(&plan, &render)?;
    print!("{}", ferry_render_k8s::to_yaml(&pods).map_err(anyhow::Error::msg)?);
    Ok(0)
}
