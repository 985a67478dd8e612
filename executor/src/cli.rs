//! The command line: `ferry`'s arguments as clap types.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferry_workflow::plan::RuntimeChoice;
pub(crate) use ferry_workflow::plan::RuntimeKind;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "ferry", version, about = "Run Argo-style workflows locally; artifacts move only through drivers")]
pub(crate) struct Cli {
    /// Ferry's state directory [env: FERRY_HOME; default: ~/.local/state/ferry].
    #[arg(long, global = true)]
    pub(crate) home: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, Default, ValueEnum)]
pub(crate) enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Clone)]
pub(crate) struct Inputs {
    /// Workflow YAML, plus any WorkflowTemplate and ConfigMap files it uses.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Driver registry: a workflow-controller ConfigMap or an `artifactDrivers:` file.
    #[arg(long)]
    pub(crate) drivers: Option<PathBuf>,
}

/// What `ferry render` writes for.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RenderTarget {
    /// Pods for a Kubernetes cluster.
    Kubernetes,
}

#[derive(Args, Clone)]
pub(crate) struct RuntimeArgs {
    /// Where steps run (default: local; for resume, where the run started).
    #[arg(long, value_enum)]
    pub(crate) runtime: Option<RuntimeKind>,
    /// With --runtime docker: run the template image FROM as the local image TO. With the
    /// local runtime: run a container of image FROM that gives no command with the program TO
    /// of this host, its args after (repeatable).
    #[arg(long = "image-map", value_name = "FROM=TO")]
    pub(crate) image_map: Vec<String>,
}

impl RuntimeArgs {
    /// What a run records, so resume continues in the same runtime.
    pub(crate) fn choice(&self) -> RuntimeChoice {
        RuntimeChoice { runtime: self.runtime.unwrap_or_default(), image_map: self.image_map.clone() }
    }

    /// These arguments, or where the run started when none are given.
    pub(crate) fn or_stored(self, stored: &RuntimeChoice) -> RuntimeArgs {
        if self.runtime.is_some() || !self.image_map.is_empty() {
            return self;
        }
        RuntimeArgs { runtime: Some(stored.runtime), image_map: stored.image_map.clone() }
    }
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Run a CronWorkflow on its schedule, in the foreground, until Ctrl-C or SIGTERM.
    Cron {
        #[command(flatten)]
        inputs: Inputs,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Check workflows without running them.
    Lint {
        #[command(flatten)]
        inputs: Inputs,
        /// What the runtime can run is checked too.
        #[command(flatten)]
        runtime: RuntimeArgs,
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
        /// Approve the run's suspended nodes (they succeed).
        #[arg(long, conflicts_with = "fail")]
        approve: bool,
        /// Fail the run's suspended nodes.
        #[arg(long)]
        fail: bool,
        /// With --approve: an output parameter of the suspended nodes (NAME=VALUE, repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE", requires = "approve")]
        set: Vec<String>,
        /// With --fail: why.
        #[arg(long, requires = "fail")]
        message: Option<String>,
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
    /// Serve the home over HTTP as argo-server does: a web UI, a JSON API,
    /// and artifacts streamed through their drivers (Argo's URLs).
    Server {
        /// Address to listen on; off loopback a token is required.
        #[arg(long, default_value = "127.0.0.1:2746")]
        listen: std::net::SocketAddr,
        /// The bearer token every request must carry [env: FERRY_SERVER_TOKEN].
        #[arg(long)]
        auth_token: Option<String>,
        /// A directory of WorkflowTemplate and ConfigMap YAML files: what
        /// uploads (`/upload-artifacts/NS/TEMPLATE/ARTIFACT`) and submitted
        /// workflows refer to.
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Driver registry: a workflow-controller ConfigMap or an `artifactDrivers:` file.
        #[arg(long)]
        drivers: Option<PathBuf>,
        /// The largest file an upload may carry, in bytes.
        #[arg(long, default_value_t = ferry_server::DEFAULT_MAX_UPLOAD_BYTES)]
        max_upload_bytes: u64,
        #[command(flatten)]
        runtime: RuntimeArgs,
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
pub(crate) enum ArtifactsCommand {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_continues_in_the_runtime_the_run_started_with_unless_told_otherwise() {
        let started = RuntimeArgs { runtime: Some(RuntimeKind::Docker), image_map: vec!["a:1=b:2".into()] }.choice();
        assert_eq!(started, RuntimeChoice { runtime: RuntimeKind::Docker, image_map: vec!["a:1=b:2".into()] });
        let none = RuntimeArgs { runtime: None, image_map: Vec::new() };
        let resumed = none.clone().or_stored(&started);
        assert!(resumed.runtime == Some(RuntimeKind::Docker) && resumed.image_map == ["a:1=b:2"]);
        let told = RuntimeArgs { runtime: Some(RuntimeKind::Local), image_map: Vec::new() };
        assert!(told.or_stored(&started).runtime == Some(RuntimeKind::Local));
        // A plan stored before the runtime was kept resumes locally.
        assert!(none.or_stored(&RuntimeChoice::default()).runtime == Some(RuntimeKind::Local));
    }
}
