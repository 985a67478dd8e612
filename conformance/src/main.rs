//! `ferry-conformance`: run the artifact-driver conformance suite.

use clap::{Parser, Subcommand, ValueEnum};
use ferry_conformance::profile::Profile;
use ferry_conformance::report;
use ferry_conformance::runner::{self, Mode, Options};
use ferry_conformance::starter::Starter;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ferry-conformance",
    about = "Conformance suite for Argo Workflows artifact drivers (artifact.ArtifactService on a unix socket)",
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The driver profile (YAML).
    #[arg(long, required_unless_present = "list")]
    profile: Option<PathBuf>,
    /// Test a driver already listening on this socket instead of launching it.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Launch this local container image (with Docker) instead of the profile's
    /// command: as Argo runs a plugin image, socket in a shared volume, the image's own user.
    #[arg(long, conflicts_with = "socket")]
    image: Option<String>,
    /// quick (smoke), full (every applicable case) or certify (no skipped MUST, no expected failures).
    #[arg(long, value_enum, default_value = "full")]
    mode: Mode,
    /// Only cases whose ID matches this regex.
    #[arg(long)]
    focus: Option<String>,
    /// Leave out cases whose ID matches this regex.
    #[arg(long)]
    skip: Option<String>,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write JSON results (with the observed capability profile) here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a Markdown report here (verdict, results by area and level,
    /// failures with their messages, observed capabilities), to attach to a
    /// pull request.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Scratch directory shared with the driver.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Payload seed, to replay a run.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the catalogue instead of running it.
    #[arg(long)]
    list: bool,
    /// Check the profile and exit: no driver is started.
    #[arg(long, conflicts_with_all = ["socket", "image", "list"])]
    validate: bool,
    /// Catalogue format for --list.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Print a starter profile with every field written out and commented.
    ///
    /// ferry-conformance init --driver my-driver --directories -- ./my-driver --verbose > my-driver.yaml
    Init(InitArgs),
}

#[derive(clap::Args)]
struct InitArgs {
    #[command(flatten)]
    starter: Starter,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Replace --output if it exists.
    #[arg(long)]
    force: bool,
}

/// How `--list` prints the catalogue.
#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per case.
    #[default]
    Text,
    /// A Markdown table, as in docs/conformance.md.
    Md,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Init(args)) = cli.command {
        return match init(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ferry-conformance init: {err:#}");
                ExitCode::from(2)
            }
        };
    }
    if cli.list {
        print!("{}", catalogue(cli.format));
        return ExitCode::SUCCESS;
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err((code, err)) => {
            eprintln!("ferry-conformance: {err:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> Result<u8, (u8, anyhow::Error)> {
    let regex = |r: &Option<String>| r.as_deref().map(regex::Regex::new).transpose().map_err(|e| (2, e.into()));
    let path = cli.profile.clone().expect("clap requires --profile");
    let mut profile = Profile::load(&path).map_err(|e| (2, e))?;
    if cli.validate {
        profile.launch_env().map_err(|e| (2, e.context(format!("profile {}: launch.env", path.display()))))?;
        println!("profile {}: valid (driver {:?})", path.display(), profile.driver.name);
        return Ok(0);
    }
    if let Some(image) = &cli.image {
        let launch = profile.launch.get_or_insert_with(Default::default);
        launch.command.clear();
        launch.image = Some(image.clone());
    }
    if cli.socket.is_none() && profile.launch.is_none() {
        return Err((2, anyhow::anyhow!("the profile has no launch.command; give --socket to test a running driver")));
    }
    let options = Options {
        profile,
        socket: cli.socket.clone(),
        mode: cli.mode,
        focus: regex(&cli.focus)?,
        skip: regex(&cli.skip)?,
        work_dir: cli.work_dir.clone(),
        seed: cli.seed,
    };
    let driver = options.profile.driver.name.clone();
    let rt = tokio::runtime::Runtime::new().map_err(|e| (2, e.into()))?;
    let outcome = rt.block_on(runner::run(options)).map_err(|e| (3, e))?;
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), (u8, anyhow::Error)> {
        if let Some(p) = path {
            std::fs::write(p, text).map_err(|e| (2, anyhow::anyhow!("writing {}: {e}", p.display())))?;
        }
        Ok(())
    };
    write(&cli.junit, report::junit(&driver, &outcome.results))?;
    write(&cli.json, report::json(&driver, &outcome.run_id, outcome.seed, &outcome.capabilities, &outcome.results))?;
    let passed = outcome.exit_code == 0;
    let md = report::markdown(&driver, &outcome.run_id, outcome.seed, &outcome.capabilities, &outcome.results, passed);
    write(&cli.report, md)?;
    println!("{}", report::summary_line(&outcome.results));
    Ok(outcome.exit_code as u8)
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let text = args.starter.render()?;
    let Some(path) = args.output else {
        print!("{text}");
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new();
    file.write(true);
    // Never overwrite a profile someone has edited unless told to.
    if args.force {
        file.create(true).truncate(true);
    } else {
        file.create_new(true);
    }
    let mut file = file.open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!("{} exists; give --force to replace it", path.display()),
        _ => anyhow::anyhow!("writing {}: {e}", path.display()),
    })?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {}; check it with: ferry-conformance --validate --profile {0}", path.display());
    Ok(())
}

fn catalogue(format: Format) -> String {
    let cases = ferry_conformance::cases::all();
    let mut out = String::new();
    if format == Format::Md {
        out.push_str("| ID | Level | Tags | Needs | Checks |\n| --- | --- | --- | --- | --- |\n");
        for c in &cases {
            let needs: Vec<String> = c.needs.iter().map(|n| format!("{n:?}")).collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                c.id,
                c.level.as_str(),
                c.tags.join(", "),
                needs.join(", "),
                c.title
            ));
        }
        out.push_str(&format!("\n{} cases.\n", cases.len()));
    } else {
        for c in &cases {
            out.push_str(&format!("{:<14} {:<6} {}\n", c.id, c.level.as_str(), c.title));
        }
    }
    out
}
