//! `ferry get`: a run's nodes.

use crate::cli::Output;
use crate::output::tree;
use anyhow::Result;
use ferry_engine::Home;

pub(super) fn get(home: &Home, workflow: &str, output: Output) -> Result<u8> {
    let wf = home.workflow(workflow)?;
    let nodes = home.store().nodes(wf.id)?;
    match output {
        Output::Json => {
            let doc = serde_json::json!({"workflow": wf, "nodes": nodes});
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => tree::print_tree(&wf, &nodes),
    }
    Ok(0)
}
