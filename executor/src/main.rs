//! `ferry`: runs Argo-style workflows locally, moving every artifact through
//! artifact drivers on unix sockets. The work is ferry-workflow's (plans,
//! lint), ferry-engine's (runs) and ferry-render-k8s's (`ferry render`);
//! this binary parses the command line and shows the results.

mod cli;
mod commands;
mod output;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // A step's sandbox: set up before any thread starts, since it forks.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(ferry_engine::sandbox::SANDBOX_ARG) {
        let code = ferry_engine::sandbox::main(&args[2..]);
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = cli::Cli::parse();
    // Drivers log at info; a CLI shows only what needs the user's attention.
    // Logs go to stderr, so they never mix with the output on stdout.
    ferry_sdk::logging::init("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("ferry: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
