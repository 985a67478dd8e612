//! `ferry-bench executor`: what the controller costs per node, and what a
//! step with 15 plugin artifacts pays to start.

use crate::{Running, driver_binary, ms, peak_rss_kib};
use anyhow::{Context, Result, bail};
use ferry_sdk::client::{DriverClient, Location};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A DAG of `n` no-op tasks in layers of 50: each task after the first layer
/// depends on the task 50 before it, so the controller resolves dependencies
/// as well as starting processes.
fn dag_yaml(n: usize) -> String {
    let mut y = String::from(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: bench-dag}\nspec:\n  entrypoint: main\n  templates:\n  - name: noop\n    container: {image: busybox, command: [\"true\"]}\n  - name: main\n    dag:\n      tasks:\n",
    );
    for i in 0..n {
        let _ = write!(y, "      - {{name: t{i}, template: noop");
        if i >= 50 {
            let _ = write!(y, ", depends: t{}", i - 50);
        }
        y.push_str("}\n");
    }
    y
}

/// Runs `ferry`, sampling its peak RSS (VmHWM) until it exits.
pub(crate) fn run_ferry(home: &Path, args: &[&str]) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = Command::new(driver_binary("ferry")?)
        .arg("--home")
        .arg(home)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut peak = 0;
    loop {
        // The process may exit between samples: its last reading stands.
        if let Ok(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut err)?;
                bail!("ferry {args:?} failed: {status}\n{err}");
            }
            return Ok((started.elapsed(), peak));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub async fn bench(nodes: usize, parallelism: usize, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    println!("# executor benchmark: {nodes}-node DAG of `true`, {parallelism} at once");

    // The peer: the same processes run by xargs, with no bookkeeping at all.
    let t = Instant::now();
    let mut xargs = Command::new("xargs")
        .args(["-P", &parallelism.to_string(), "-n", "1", "sh", "-c", "true"])
        .stdin(Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = xargs.stdin.take().context("stdin")?;
        for i in 0..nodes {
            writeln!(stdin, "{i}")?;
        }
    }
    if !xargs.wait()?.success() {
        bail!("xargs failed");
    }
    let peer = t.elapsed();

    let home = dir.join("executor-home");
    let _ = std::fs::remove_dir_all(&home);
    let wf = dir.join("bench-dag.yaml");
    std::fs::write(&wf, dag_yaml(nodes))?;
    let (took, peak_kib) =
        run_ferry(&home, &["run", "-q", "--parallelism", &parallelism.to_string(), wf.to_str().context("path")?])?;
    let db = file_size(&home.join("ferry.db")) + file_size(&home.join("ferry.db-wal"));
    let overhead = took.saturating_sub(peer).as_secs_f64() * 1e3 / nodes as f64;
    println!("{:<44} {:>12} {:>12}", "", "ferry", "xargs -P");
    println!("{:<44} {:>12} {:>12}", format!("wall time, {nodes} nodes"), ms(took), ms(peer));
    println!("{:<44} {:>9.3} ms {:>12}", "controller overhead per node (goal <= 1 ms)", overhead, "-");
    println!("{:<44} {:>9} MiB {:>12}", "peak RSS of ferry", peak_kib / 1024, "-");
    println!("{:<44} {:>9.1} MB {:>12}", "state database on disk", db as f64 / 1e6, "-");

    fifteen_artifacts(&dir).await
}

/// One step with 15 input artifacts: Ferry starts the driver once for the
/// run; Argo starts one init container per plugin artifact, one after the
/// other. The peer here starts the same driver 15 times in sequence, each
/// loading one artifact (a lower bound: no container runtime involved).
async fn fifteen_artifacts(dir: &Path) -> Result<()> {
    let home = dir.join("fifteen-home");
    let _ = std::fs::remove_dir_all(&home);
    let outputs: String = (0..15).map(|i| format!("      - {{name: a{i}, path: /out/a{i}}}\n")).collect();
    let inputs: String = (0..15).map(|i| format!("      - {{name: a{i}, path: /in/a{i}}}\n")).collect();
    let args: String = (0..15)
        .map(|i| format!("          - {{name: a{i}, from: '{{{{steps.make.outputs.artifacts.a{i}}}}}'}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: fifteen}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: make, template: make}}\n    - - name: use\n        template: use\n        arguments:\n          artifacts:\n{args}  - name: make\n    container: {{image: x, command: [sh, -c, 'mkdir -p /out; for i in $(seq 0 14); do echo $i > /out/a$i; done']}}\n    outputs:\n      artifacts:\n{outputs}  - name: use\n    container: {{image: x, command: [\"true\"]}}\n    inputs:\n      artifacts:\n{inputs}"
    );
    let wf = dir.join("fifteen.yaml");
    std::fs::write(&wf, yaml)?;
    run_ferry(&home, &["run", "-q", wf.to_str().context("path")?])?;
    let out = Command::new(driver_binary("ferry")?)
        .arg("--home")
        .arg(&home)
        .args(["get", "fifteen", "-o", "json"])
        .output()?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let nodes = doc["nodes"].as_array().context("nodes")?;
    let node = |suffix: &str| nodes.iter().find(|n| n["name"].as_str().is_some_and(|s| s.ends_with(suffix)));
    let use_node = node(".use").context("use node")?;
    let ferry_ms = use_node["finished"].as_i64().unwrap_or(0) - use_node["started"].as_i64().unwrap_or(0);
    let make = node(".make").context("make node")?;
    let keys: Vec<String> = (0..15)
        .map(|i| {
            make["outputs"]["artifacts"][format!("a{i}")]["location"]["key"].as_str().unwrap_or_default().to_string()
        })
        .collect();

    let binary = driver_binary("ferry-driver-fs")?;
    let configuration = format!("root: {}\n", home.join("artifacts").display());
    let scratch = dir.join("fifteen-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let t = Instant::now();
    for (i, key) in keys.iter().enumerate() {
        let socket = scratch.join(format!("s{i}.sock"));
        let driver = Running::start(&binary, &socket)?;
        let client = DriverClient::connect(&socket, Duration::from_secs(10)).await?;
        client.load(&Location::new("fs", &configuration, key), &scratch.join(format!("a{i}"))).await?;
        driver.stop()?;
    }
    let sequential = t.elapsed();
    println!();
    println!("# a step with 15 input artifacts (loads included in both)");
    println!("{:<44} {:>12} {:>12}", "", "ferry", "15 sequential");
    println!("{:<44} {:>9} ms {:>12}", "step start-up incl. 15 loads", ferry_ms, ms(sequential));
    Ok(())
}
