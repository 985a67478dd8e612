//! `ferry delete`: deletes a run, its artifacts first per their GC strategy.

use anyhow::Result;
use ferry_engine::Home;

pub(super) async fn delete(home: &Home, workflow: &str, force: bool) -> Result<u8> {
    let r = home.delete(workflow, force).await?;
    println!("deleted {workflow} ({} artifact(s) deleted, {} failed)", r.deleted, r.failed.len());
    Ok(0)
}
