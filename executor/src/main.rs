//! `ferry`: runs Argo-style workflows locally, moving every artifact through
//! artifact drivers on unix sockets.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ferry_executor::controller::RunSummary;
use ferry_executor::drivers::Registry;
use ferry_executor::home::{Finished, Home};
use ferry_executor::plan::{PlanOptions, RuntimeChoice};
use ferry_executor::status::{Direction, Node, NodeKind, Phase, display_name};
use ferry_executor::store::WorkflowRecord;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "ferry", version, about = "Run Argo-style workflows locally; artifacts move only through drivers")]
struct Cli {
    /// Ferry's state directory [env: FERRY_HOME; default: ~/.local/state/ferry].
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Default, ValueEnum)]
enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Clone)]
struct Inputs {
    /// Workflow YAML, plus any WorkflowTemplate and ConfigMap files it uses.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Driver registry: a workflow-controller ConfigMap or an `artifactDrivers:` file.
    #[arg(long)]
    drivers: Option<PathBuf>,
}

/// What `ferry render` writes for.
#[derive(Clone, Copy, ValueEnum)]
enum RenderTarget {
    /// Pods for a Kubernetes cluster.
    Kubernetes,
}

/// Where steps run.
#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum RuntimeKind {
    /// Processes of this host, each in its own step directory.
    #[default]
    Local,
    /// One Docker container per step, its declared paths bind-mounted from the step directory.
    Docker,
}

#[derive(Args, Clone)]
struct RuntimeArgs {
    /// Where steps run (default: local; for resume, where the run started).
    #[arg(long, value_enum)]
    runtime: Option<RuntimeKind>,
    /// With --runtime docker: run the template image FROM as the local image TO (repeatable).
    #[arg(long = "image-map", value_name = "FROM=TO")]
    image_map: Vec<String>,
}

impl RuntimeArgs {
    /// What a run records, so resume continues in the same runtime.
    fn choice(&self) -> RuntimeChoice {
        let runtime = match self.runtime.unwrap_or_default() {
            RuntimeKind::Local => "local",
            RuntimeKind::Docker => "docker",
        };
        RuntimeChoice { runtime: runtime.into(), image_map: self.image_map.clone() }
    }

    /// These arguments, or where the run started when none are given.
    fn or_stored(self, stored: &RuntimeChoice) -> Result<RuntimeArgs> {
        if self.runtime.is_some() || !self.image_map.is_empty() {
            return Ok(self);
        }
        let runtime = match stored.runtime.as_str() {
            "" | "local" => RuntimeKind::Local,
            "docker" => RuntimeKind::Docker,
            other => bail!("the run was started with an unknown runtime {other:?}; give --runtime"),
        };
        Ok(RuntimeArgs { runtime: Some(runtime), image_map: stored.image_map.clone() })
    }

    fn build(&self, home: &Home) -> Result<std::sync::Arc<dyn ferry_executor::runtime::Runtime>> {
        match self.runtime.unwrap_or_default() {
            RuntimeKind::Local if !self.image_map.is_empty() => bail!("--image-map needs --runtime docker"),
            RuntimeKind::Local => Ok(Home::local_runtime()),
            RuntimeKind::Docker => Ok(std::sync::Arc::new(
                ferry_executor::docker::DockerRuntime::new(&self.image_map)
                    .map_err(anyhow::Error::msg)?
                    // The fs driver's container must see the embedded repository.
                    .with_driver_mount(home.artifacts_dir()),
            )),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a workflow to the end.
    Run {
        #[command(flatten)]
        inputs: Inputs,
        /// A workflow parameter, NAME=VALUE (repeatable).
        #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
        parameters: Vec<String>,
        /// At most this many steps at once (default: the workflow's, else 2 × CPUs).
        #[arg(long)]
        parallelism: Option<usize>,
        /// Name the run (instead of metadata.name / generateName).
        #[arg(long)]
        name: Option<String>,
        /// Print nothing while running.
        #[arg(long, short)]
        quiet: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Check workflows without running them.
    Lint {
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Write the Kubernetes Pods a workflow's steps run as (Argo's layout,
    /// drivers as init containers and sidecars), one YAML document each.
    Render {
        #[command(flatten)]
        inputs: Inputs,
        /// Where the pods are for (only `kubernetes`).
        #[arg(long, value_enum)]
        runtime: RenderTarget,
        /// metadata.namespace of the pods.
        #[arg(long, short)]
        namespace: Option<String>,
        /// Image of the executor's init and wait containers.
        #[arg(long, default_value = "quay.io/argoproj/argoexec:v4.0.0")]
        executor_image: String,
        /// Memory limit of each driver container.
        #[arg(long, default_value = "256Mi")]
        driver_memory_limit: String,
        /// A workflow parameter, NAME=VALUE (repeatable).
        #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
        parameters: Vec<String>,
    },
    /// List runs.
    List {
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Show a run's nodes as a tree.
    Get {
        workflow: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Print the logs of a run's steps.
    Logs {
        workflow: String,
        /// A node's display name, full name or pod name.
        node: Option<String>,
    },
    /// Continue a run that was stopped, without re-running finished steps.
    Resume {
        workflow: String,
        #[arg(long, short)]
        quiet: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Delete a run, deleting its artifacts per their GC strategy first.
    Delete {
        workflow: String,
        /// Remove the run even if artifact GC fails.
        #[arg(long)]
        force: bool,
    },
    /// List a run's artifacts, or stream one (`ferry artifacts get WF NODE NAME`).
    #[command(args_conflicts_with_subcommands = true)]
    Artifacts {
        workflow: Option<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
        #[command(subcommand)]
        get: Option<ArtifactsCommand>,
    },
}

#[derive(Subcommand)]
enum ArtifactsCommand {
    /// Stream one artifact through its driver's OpenStream.
    Get {
        workflow: String,
        /// The node (display name, full name or pod name).
        node: String,
        /// The artifact's name.
        name: String,
        /// Write here instead of standard output.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("ferry: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn registry(drivers: Option<&PathBuf>) -> Result<Registry> {
    let mut r = Registry::builtin();
    if let Some(f) = drivers {
        r.merge_file(f)?;
    }
    Ok(r)
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let home = Home::open(&cli.home.clone().unwrap_or_else(Home::default_dir))?;
    match cli.command {
        Command::Run { inputs, parameters, parallelism, name, quiet, output, runtime: runtime_args } => {
            let runtime = runtime_args.build(&home)?;
            let mut params = Vec::new();
            for p in parameters {
                let (k, v) = p.split_once('=').with_context(|| format!("-p {p}: expected NAME=VALUE"))?;
                params.push((k.to_string(), v.to_string()));
            }
            let options = PlanOptions {
                parameters: params,
                parallelism,
                registry: registry(inputs.drivers.as_ref())?,
                name,
                ..Default::default()
            };
            let mut plan = home.plan(&inputs.files, options)?;
            plan.runtime = runtime_args.choice();
            let wf = home.create(&plan)?;
            if !quiet && matches!(output, Output::Text) {
                eprintln!("ferry: running {} ({} steps at once)", wf.name, plan.parallelism);
            }
            let finished = execute(&home, wf, plan, runtime, quiet || matches!(output, Output::Json)).await?;
            report(&home, &finished, output)
        }
        Command::Lint { inputs } => {
            let options = PlanOptions { registry: registry(inputs.drivers.as_ref())?, ..Default::default() };
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
        Command::Render {
            inputs,
            runtime: RenderTarget::Kubernetes,
            namespace,
            executor_image,
            driver_memory_limit,
            parameters,
        } => {
            let mut options = PlanOptions { registry: registry(inputs.drivers.as_ref())?, ..Default::default() };
            for p in parameters {
                let (k, v) = p.split_once('=').with_context(|| format!("-p {p}: expected NAME=VALUE"))?;
                options.parameters.push((k.to_string(), v.to_string()));
            }
            let plan = home.plan(&inputs.files, options)?;
            let render = ferry_executor::kubernetes::RenderOptions { executor_image, namespace, driver_memory_limit };
            let pods = ferry_executor::kubernetes::render(&plan, &render)?;
            print!("{}", ferry_executor::kubernetes::to_yaml(&pods).map_err(anyhow::Error::msg)?);
            Ok(0)
        }
        Command::List { output } => {
            let list = home.store().workflows()?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                Output::Text => {
                    println!("{:<40} {:<10} {:>10}  {:<20} GC", "NAME", "STATUS", "DURATION", "CREATED");
                    for w in list {
                        println!(
                            "{:<40} {:<10} {:>10}  {:<20} {}",
                            w.name,
                            w.phase,
                            duration(Some(w.created), w.finished),
                            ferry_executor::names::rfc3339(w.created),
                            w.gc
                        );
                    }
                }
            }
            Ok(0)
        }
        Command::Get { workflow, output } => {
            let wf = home.workflow(&workflow)?;
            let nodes = home.store().nodes(wf.id)?;
            match output {
                Output::Json => {
                    let doc = serde_json::json!({"workflow": wf, "nodes": nodes});
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                }
                Output::Text => print_tree(&wf, &nodes),
            }
            Ok(0)
        }
        Command::Logs { workflow, node } => {
            let wf = home.workflow(&workflow)?;
            let nodes = home.store().nodes(wf.id)?;
            let mut found = false;
            for n in nodes.iter().filter(|n| n.kind == NodeKind::Pod) {
                let pod = ferry_executor::names::pod_name(&wf.name, &n.template, &n.name);
                if let Some(want) = &node
                    && ![n.display_name(), n.name.as_str(), pod.as_str()].contains(&want.as_str())
                {
                    continue;
                }
                found = true;
                let text = std::fs::read_to_string(wf.dir.join("logs").join(format!("{pod}.log"))).unwrap_or_default();
                let mut out = std::io::stdout().lock();
                for line in text.lines() {
                    if node.is_some() {
                        writeln!(out, "{line}")?;
                    } else {
                        writeln!(out, "{}: {line}", n.display_name())?;
                    }
                }
            }
            if !found {
                bail!("no step {:?} in {}", node.unwrap_or_default(), wf.name);
            }
            Ok(0)
        }
        Command::Resume { workflow, quiet, output, runtime: runtime_args } => {
            let wf = home.workflow(&workflow)?;
            if wf.phase.is_done() {
                if wf.gc.starts_with("failed") {
                    let r = home.retry_gc(&wf).await?;
                    println!("{}: artifact GC retried: {} deleted, {} failed", wf.name, r.deleted, r.failed.len());
                    for f in &r.failed {
                        eprintln!("  {f}");
                    }
                    return Ok(u8::from(!r.failed.is_empty()));
                }
                println!("{} already {}", wf.name, wf.phase);
                return Ok(u8::from(wf.phase != Phase::Succeeded));
            }
            let plan = home.stored_plan(&wf)?;
            let runtime = runtime_args.or_stored(&plan.runtime)?.build(&home)?;
            let finished = execute(&home, wf, plan, runtime, quiet || matches!(output, Output::Json)).await?;
            report(&home, &finished, output)
        }
        Command::Delete { workflow, force } => {
            let r = home.delete(&workflow, force).await?;
            println!("deleted {workflow} ({} artifact(s) deleted, {} failed)", r.deleted, r.failed.len());
            Ok(0)
        }
        Command::Artifacts { workflow, output, get } => match (workflow, get) {
            (_, Some(ArtifactsCommand::Get { workflow, node, name, out })) => {
                get_artifact(&home, &workflow, &node, &name, out).await?;
                Ok(0)
            }
            (Some(workflow), None) => {
                list_artifacts(&home, &workflow, output)?;
                Ok(0)
            }
            (None, None) => bail!("give a workflow: ferry artifacts WF, or ferry artifacts get WF NODE NAME"),
        },
    }
}

async fn execute(
    home: &Home,
    wf: WorkflowRecord,
    plan: ferry_executor::plan::Plan,
    runtime: std::sync::Arc<dyn ferry_executor::runtime::Runtime>,
    quiet: bool,
) -> Result<Finished> {
    let interrupt = CancellationToken::new();
    {
        let interrupt = interrupt.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
            }
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

/// Live progress: a spinner with counts on a terminal, a line per finished
/// step otherwise.
async fn show_progress(mut rx: tokio::sync::mpsc::UnboundedReceiver<Node>, quiet: bool) {
    let tty = std::io::stderr().is_terminal();
    let bar = (!quiet && tty).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let mut phases: BTreeMap<u32, Phase> = BTreeMap::new();
    while let Some(node) = rx.recv().await {
        if node.kind != NodeKind::Pod {
            continue;
        }
        let before = phases.insert(node.id, node.phase);
        if node.phase.is_done() && before != Some(node.phase) && !quiet {
            let line = format!(
                "{} {} ({}) {}{}",
                symbol(node.phase),
                node.display_name(),
                node.template,
                duration(node.started, node.finished),
                if node.message.is_empty() { String::new() } else { format!("  {}", node.message) }
            );
            match &bar {
                Some(b) => b.println(line),
                None => eprintln!("{line}"),
            }
        }
        if let Some(b) = &bar {
            let count = |p: Phase| phases.values().filter(|x| **x == p).count();
            b.set_message(format!(
                "running {}  succeeded {}  failed {}",
                count(Phase::Running),
                count(Phase::Succeeded),
                count(Phase::Failed) + count(Phase::Error)
            ));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

fn report(home: &Home, f: &Finished, output: Output) -> Result<u8> {
    let RunSummary { phase, message, nodes } = &f.summary;
    match output {
        Output::Json => {
            let nodes = home.store().nodes(f.workflow.id)?;
            let doc = serde_json::json!({
                "workflow": f.workflow,
                "nodes": nodes,
                "gc": f.gc.as_ref().map(|g| serde_json::json!({"deleted": g.deleted, "failed": g.failed, "state": g.state()})),
                "driverStartupMs": f.startups.iter().map(|(n, d)| (n.clone(), d.as_millis() as u64)).collect::<BTreeMap<_, _>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => {
            let took = duration(Some(f.workflow.created), f.workflow.finished);
            if *phase == Phase::Running {
                eprintln!("ferry: {} interrupted; continue with: ferry resume {}", f.workflow.name, f.workflow.name);
            } else {
                println!(
                    "{} {} {} in {took} ({nodes} nodes){}",
                    symbol(*phase),
                    f.workflow.name,
                    phase,
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                );
            }
            if let Some(gc) = &f.gc {
                if gc.deleted > 0 || !gc.failed.is_empty() {
                    println!("artifact GC: {} deleted, {} failed", gc.deleted, gc.failed.len());
                }
                for e in &gc.failed {
                    eprintln!("  {e}");
                }
            }
            for d in &f.driver_exits {
                eprintln!("ferry: driver {d} did not exit cleanly on SIGTERM");
            }
        }
    }
    Ok(match phase {
        Phase::Succeeded => 0,
        Phase::Running => 130,
        _ => 1,
    })
}

fn symbol(p: Phase) -> &'static str {
    match p {
        Phase::Succeeded => "✔",
        Phase::Failed | Phase::Error => "✖",
        Phase::Skipped | Phase::Omitted => "○",
        Phase::Running => "●",
        Phase::Pending => "◷",
    }
}

fn duration(start: Option<i64>, end: Option<i64>) -> String {
    let (Some(s), Some(e)) = (start, end) else { return String::new() };
    let ms = (e - s).max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn print_tree(wf: &WorkflowRecord, nodes: &[Node]) {
    println!("Name:      {}", wf.name);
    println!("Status:    {}", wf.phase);
    if !wf.message.is_empty() {
        println!("Message:   {}", wf.message);
    }
    println!("Created:   {}", ferry_executor::names::rfc3339(wf.created));
    println!("Duration:  {}", duration(Some(wf.created), wf.finished));
    println!("ArtifactGC: {}", wf.gc);
    println!();
    let mut children: BTreeMap<Option<u32>, Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        children.entry(n.parent).or_default().push(n);
    }
    println!("{:<50} {:<16} {:<40} {:>8}  MESSAGE", "STEP", "TEMPLATE", "PODNAME", "DURATION");
    fn walk(wf: &str, n: &Node, prefix: &str, last: bool, root: bool, children: &BTreeMap<Option<u32>, Vec<&Node>>) {
        let branch = if root {
            ""
        } else if last {
            "└─"
        } else {
            "├─"
        };
        let label = format!("{prefix}{branch}{} {}", symbol(n.phase), display_name(&n.name));
        let pod = if n.kind == NodeKind::Pod {
            ferry_executor::names::pod_name(wf, &n.template, &n.name)
        } else {
            String::new()
        };
        println!("{:<50} {:<16} {:<40} {:>8}  {}", label, n.template, pod, duration(n.started, n.finished), n.message);
        let kids = children.get(&Some(n.id)).cloned().unwrap_or_default();
        let next = if root { String::new() } else { format!("{prefix}{}", if last { "  " } else { "│ " }) };
        for (i, k) in kids.iter().enumerate() {
            walk(wf, k, &next, i + 1 == kids.len(), false, children);
        }
    }
    for root in children.get(&None).cloned().unwrap_or_default() {
        walk(&wf.name, root, "", true, true, &children);
    }
}

fn find_node<'a>(wf: &WorkflowRecord, nodes: &'a [Node], want: &str) -> Result<&'a Node> {
    nodes
        .iter()
        .find(|n| {
            n.name == want
                || n.display_name() == want
                || ferry_executor::names::pod_name(&wf.name, &n.template, &n.name) == want
                || n.id.to_string() == want
        })
        .with_context(|| format!("no node {want:?} in {} (see ferry get {})", wf.name, wf.name))
}

fn list_artifacts(home: &Home, workflow: &str, output: Output) -> Result<()> {
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
        Output::Text => {
            println!("{:<40} {:<7} {:<16} {:<8} {:<22} {:<8} KEY", "NODE", "IN/OUT", "NAME", "DRIVER", "GC", "DELETED");
            for r in &records {
                let gc = format!("{:?}", r.gc);
                println!(
                    "{:<40} {:<7} {:<16} {:<8} {:<22} {:<8} {}",
                    name_of(r.node),
                    if r.direction == Direction::Input { "in" } else { "out" },
                    r.name,
                    r.location.driver,
                    gc,
                    if r.deleted { "yes" } else { "" },
                    r.location.key
                );
            }
        }
    }
    Ok(())
}

async fn get_artifact(home: &Home, workflow: &str, node: &str, name: &str, out: Option<PathBuf>) -> Result<()> {
    use futures::StreamExt;
    let wf = home.workflow(workflow)?;
    let nodes = home.store().nodes(wf.id)?;
    let n = find_node(&wf, &nodes, node)?;
    let records = home.store().artifacts(wf.id)?;
    let record = records
        .iter()
        .filter(|r| r.node == n.id && r.name == name)
        .max_by_key(|r| r.direction == Direction::Output)
        .with_context(|| format!("node {} has no artifact {name:?} (see ferry artifacts {})", n.name, wf.name))?;
    if record.deleted {
        bail!("artifact {name} of {} was deleted by artifact GC", n.name);
    }
    let plan = home.stored_plan(&wf)?;
    let pool = home.drivers(&wf, plan.registry.clone());
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
    pool.shutdown(std::time::Duration::from_secs(10)).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_continues_in_the_runtime_the_run_started_with_unless_told_otherwise() {
        let started = RuntimeArgs { runtime: Some(RuntimeKind::Docker), image_map: vec!["a:1=b:2".into()] }.choice();
        assert_eq!(started, RuntimeChoice { runtime: "docker".into(), image_map: vec!["a:1=b:2".into()] });
        let none = RuntimeArgs { runtime: None, image_map: Vec::new() };
        let resumed = none.clone().or_stored(&started).unwrap();
        assert!(resumed.runtime == Some(RuntimeKind::Docker) && resumed.image_map == ["a:1=b:2"]);
        let told = RuntimeArgs { runtime: Some(RuntimeKind::Local), image_map: Vec::new() };
        assert!(told.or_stored(&started).unwrap().runtime == Some(RuntimeKind::Local));
        // A plan stored before the runtime was kept resumes locally.
        assert!(none.or_stored(&RuntimeChoice::default()).unwrap().runtime == Some(RuntimeKind::Local));
    }
}
