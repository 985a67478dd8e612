//! `ferry artifacts`: a run's artifacts, or one of them streamed through its
//! driver.

use crate::cli::Output;
use crate::output::table;
use anyhow::{Context, Result, bail};
use ferry_engine::{Home, Node, ToClient, WorkflowRecord};
use ferry_workflow::naming::pod_name;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn list(home: &Home, workflow: &str, output: Output) -> Result<()> {
    let wf = home.workflow(workflow)?;
    let nodes = home.store().nodes(wf.id)?;
    let records = home.store().artifacts(wf.id)?;
    let name_of = |id: u32| nodes.iter().find(|n| n.id == id).map(|n| n.name.clone()).unwrap_or_default();
    match output {
        Output::Json => {
            let rows: Vec<_> = records
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "node": name_of(r.node), "name": r.name, "direction": r.direction, "driver": r.location.driver,
                        "key": r.location.key, "gc": r.gc, "deleted": r.deleted, "error": r.error,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        Output::Text => table::artifacts(&records, name_of),
    }
    Ok(())
}

/// The node a user names: by full name, display name, pod name or id.
fn find_node<'a>(wf: &WorkflowRecord, nodes: &'a [Node], want: &str) -> Result<&'a Node> {
    nodes
        .iter()
        .find(|n| {
            n.name == want
                || n.display_name() == want
                || pod_name(&wf.name, &n.template, &n.name) == want
                || n.id.to_string() == want
        })
        .with_context(|| format!("no node {want:?} in {} (see ferry get {})", wf.name, wf.name))
}

pub(super) async fn get(home: &Home, workflow: &str, node: &str, name: &str, out: Option<PathBuf>) -> Result<()> {
    use futures::StreamExt;
    let wf = home.workflow(workflow)?;
    let nodes = home.store().nodes(wf.id)?;
    let n = find_node(&wf, &nodes, node)?;
    let records = home.store().artifacts(wf.id)?;
    let record = records
        .iter()
        .filter(|r| r.node == n.id && r.name == name)
        .max_by_key(|r| r.direction == ferry_engine::Direction::Output)
        .with_context(|| format!("node {} has no artifact {name:?} (see ferry artifacts {})", n.name, wf.name))?;
    if record.deleted {
        bail!("artifact {name} of {} was deleted by artifact GC", n.name);
    }
    let plan = home.stored_plan(&wf)?;
    let pool = home.reader_drivers(&wf, plan.registry.clone());
    let result = async {
        let client = pool.client(&record.location.driver, record.location.timeout).await?;
        let mut stream = client.open_stream(&record.location.to_client()).await?;
        let mut sink: Box<dyn Write + Send> = match &out {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => Box::new(std::io::stdout()),
        };
        while let Some(chunk) = stream.next().await {
            sink.write_all(&chunk?)?;
        }
        sink.flush()?;
        anyhow::Ok(())
    }
    .await;
    pool.shutdown(ferry_engine::DRIVER_GRACE).await;
    result
}
