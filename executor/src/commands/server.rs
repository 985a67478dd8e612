//! `ferry server`: serves the home until Ctrl-C or SIGTERM.

use super::runtime_for;
use crate::cli::RuntimeArgs;
use anyhow::Result;
use ferry_engine::Home;
use std::sync::Arc;

pub(super) async fn server(home: Home, options: ferry_server::Options, runtime: RuntimeArgs) -> Result<u8> {
    let artifacts = home.artifacts_dir();
    // A run resumed here continues where it started, unless `--runtime` says otherwise.
    let factory: ferry_server::RuntimeFactory = Arc::new(move |stored| {
        runtime_for(&runtime.clone().or_stored(stored), artifacts.clone()).map_err(|e| format!("{e:#}"))
    });
    let server = ferry_server::Server::bind(home, options, factory).await?;
    // Tests and scripts read the address from this line (port 0 picks one).
    println!("ferry server: listening on http://{}", server.local_addr()?);
    server.serve(super::interrupted()).await?;
    Ok(0)
}
