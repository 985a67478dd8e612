//! One module per `ferry` command; this one dispatches and holds what
//! several commands share.

mod artifacts;
mod cron;
mod delete;
mod get;
mod lint;
mod list;
mod logs;
mod render;
mod resume;
mod run;
mod server;

use crate::cli::{ArtifactsCommand, Cli, Command, RuntimeArgs, RuntimeKind};
use crate::output::progress::show_progress;
use anyhow::{Context, Result, bail};
use ferry_engine::{Decision, DockerRuntime, Finished, Home, Runtime, WorkflowRecord};
use ferry_workflow::plan::Plan;
use ferry_workflow::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Runs the command; the exit code on success.
pub(crate) async fn dispatch(cli: Cli) -> Result<u8> {
    let home = Home::open(&cli.home.clone().unwrap_or_else(Home::default_dir))?;
    // Only the commands that drive runs have metrics to serve.
    if matches!(
        cli.command,
        Command::Run { .. } | Command::Cron { .. } | Command::Resume { .. } | Command::Server { .. }
    ) {
        ferry_engine::serve_metrics_from_env().await?;
    }
    match cli.command {
        Command::Run { inputs, parameters, parallelism, name, quiet, output, runtime } => {
            let options = run::Options { parameters, parallelism, name, quiet, output };
            run::run(&home, &inputs, options, runtime).await
        }
        Command::Cron { inputs, runtime } => cron::cron(home, &inputs, runtime).await,
        Command::Lint { inputs, runtime } => lint::lint(&home, &inputs, &runtime),
        Command::Render { inputs, runtime: _, namespace, executor_image, driver_memory_limit, parameters } => {
            let options = ferry_render_k8s::RenderOptions { executor_image, namespace, driver_memory_limit };
            render::render(&home, &inputs, parameters, options)
        }
        Command::List { output } => list::list(&home, output),
        Command::Get { workflow, output } => get::get(&home, &workflow, output),
        Command::Logs { workflow, node } => logs::logs(&home, &workflow, node.as_deref()),
        Command::Resume { workflow, approve, fail, set, message, quiet, output, runtime } => {
            let decision = (approve || fail).then(|| -> Result<Decision> {
                let supplied = parameters(set)?.into_iter().collect();
                Ok(Decision { approve, message: message.unwrap_or_default(), supplied })
            });
            let decision = decision.transpose()?;
            resume::resume(&home, &workflow, decision, quiet, output, runtime).await
        }
        Command::Delete { workflow, force } => delete::delete(&home, &workflow, force).await,
        Command::Server { listen, auth_token, templates, drivers, max_upload_bytes, runtime } => {
            let options = ferry_server::Options {
                listen,
                token: match auth_token {
                    Some(t) => Some(t),
                    None => ferry_sdk::env::text(ferry_server::TOKEN_ENV)?,
                },
                templates,
                registry: registry(drivers.as_ref())?,
                max_upload_bytes,
            };
            server::server(home, options, runtime).await
        }
        Command::Artifacts { workflow, output, get } => match (workflow, get) {
            (_, Some(ArtifactsCommand::Get { workflow, node, name, out })) => {
                artifacts::get(&home, &workflow, &node, &name, out).await?;
                Ok(0)
            }
            (Some(workflow), None) => {
                artifacts::list(&home, &workflow, output)?;
                Ok(0)
            }
            (None, None) => bail!("give a workflow: ferry artifacts WF, or ferry artifacts get WF NODE NAME"),
        },
    }
}

/// The built-in drivers, with `--drivers` over them.
fn registry(drivers: Option<&PathBuf>) -> Result<Registry> {
    let mut r = Registry::builtin();
    if let Some(f) = drivers {
        r.merge_file(f)?;
    }
    Ok(r)
}

/// `-p NAME=VALUE` arguments as pairs.
fn parameters(given: Vec<String>) -> Result<Vec<(String, String)>> {
    given
        .into_iter()
        .map(|p| {
            let (k, v) = p.split_once('=').with_context(|| format!("-p {p}: expected NAME=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The runtime the arguments choose.
fn build_runtime(args: &RuntimeArgs, home: &Home) -> Result<Arc<dyn Runtime>> {
    runtime_for(args, home.artifacts_dir())
}

/// The runtime the arguments choose; `artifacts` is the embedded repository.
fn runtime_for(args: &RuntimeArgs, artifacts: PathBuf) -> Result<Arc<dyn Runtime>> {
    match args.runtime.unwrap_or_default() {
        RuntimeKind::Local => {
            Home::local_runtime(std::env::current_exe()?, &args.image_map).map_err(anyhow::Error::msg)
        }
        RuntimeKind::Docker => Ok(Arc::new(
            DockerRuntime::new(&args.image_map)
                .map_err(anyhow::Error::msg)?
                // The fs driver's container must see the embedded repository.
                .with_driver_mount(artifacts),
        )),
    }
}

/// Runs (or resumes) a run to the end, showing progress; Ctrl-C or SIGTERM
/// stops it so that `ferry resume` continues it.
async fn execute(
    home: &Home,
    wf: WorkflowRecord,
    plan: Plan,
    runtime: Arc<dyn Runtime>,
    quiet: bool,
) -> Result<Finished> {
    let interrupt = CancellationToken::new();
    {
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            interrupted().await;
            eprintln!("ferry: stopping; `ferry resume` continues the run");
            interrupt.cancel();
        });
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = tokio::spawn(show_progress(rx, quiet));
    let finished = home.execute(wf, plan, runtime, interrupt, Some(tx)).await;
    let _ = progress.await;
    Ok(finished?)
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}
