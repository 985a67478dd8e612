//! The driver images: their size, their cold start (`docker run` until the
//! socket is ready) beside the engine's own start of the same container, and
//! a step with 15 input artifacts from 3 drivers, loaded Ferry's way (the
//! three driver containers started at once, loads concurrent) beside Argo's
//! (15 init containers one after the other, each starting its driver and
//! loading one artifact).
//!
//! Needs Docker and the images: `deploy/images/build.sh`.

use crate::{median, ms};
use anyhow::{Context, Result, bail, ensure};
use ferry_sdk::client::{DriverClient, Location};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DRIVERS: [&str; 6] = ["fs", "s3", "oss", "gcs", "git", "http"];

fn image(driver: &str) -> String {
    format!("{}{driver}:{}", setting("FERRY_IMAGE_PREFIX", "ferry/driver-"), setting("FERRY_IMAGE_TAG", "dev"))
}

/// A text setting, `default` when unset or empty (as deploy/images/build.sh reads it).
fn setting(name: &str, default: &str) -> String {
    ferry_sdk::env::text(name).ok().flatten().filter(|v| !v.is_empty()).unwrap_or_else(|| default.into())
}

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker").args(args).stdin(Stdio::null()).output().context("running docker")?;
    ensure!(out.status.success(), "docker {}: {}", args[0], String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A directory anyone may write, like the emptyDir Argo shares with a plugin container.
fn shared_dir(path: PathBuf) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
    Ok(path)
}

/// A plugin container serving on `<sockets>/socket`, as Argo runs one.
struct Plugin {
    id: String,
    socket: PathBuf,
    /// `docker run -d` returned: the engine has started the container.
    started: Duration,
    /// The socket appeared: the driver is ready.
    ready: Duration,
}

impl Plugin {
    fn start(driver: &str, sockets: &Path, mounts: &[(&Path, &str)]) -> Result<Plugin> {
        let inside = format!("/tmp/artifact-plugins/{driver}");
        let socket = sockets.join("socket");
        let mut args = vec!["run".to_string(), "-d".into(), "--rm".into()];
        args.extend(["-v".into(), format!("{}:{inside}", sockets.display())]);
        for (host, at) in mounts {
            args.extend(["-v".into(), format!("{}:{at}", host.display())]);
        }
        args.extend([image(driver), format!("{inside}/socket")]);
        let t = Instant::now();
        let id = docker(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let started = t.elapsed();
        while !socket.exists() {
            if t.elapsed() > Duration::from_secs(30) {
                let _ = docker(&["rm", "-f", &id]);
                bail!("{driver}: no socket 30 s after docker run");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        Ok(Plugin { id, socket, started, ready: t.elapsed() })
    }

    /// SIGTERM and wait for the exit, as the kubelet ends an init container's plugin.
    fn stop(self) -> Result<()> {
        docker(&["stop", "-t", "10", &self.id]).map(drop)
    }
}

pub async fn bench(starts: usize, dir: &Path) -> Result<()> {
    docker(&["info", "--format", "{{.ServerVersion}}"]).context("the image benchmark needs a Docker engine")?;
    std::fs::create_dir_all(dir)?;
    println!("# driver images: size and cold start (median of {starts} starts; socket in a shared volume)");
    println!("{:<24} {:>9} {:>22} {:>18}", "image", "size", "docker run -d returns", "socket ready");
    for driver in DRIVERS {
        let size: f64 = docker(&["image", "inspect", "-f", "{{.Size}}", &image(driver)])
            .with_context(|| format!("{} is missing: build it with deploy/images/build.sh", image(driver)))?
            .parse()?;
        let (mut started, mut ready) = (Vec::new(), Vec::new());
        for i in 0..starts {
            let sockets = shared_dir(dir.join(format!("cold-{driver}-{i}")))?;
            let plugin = Plugin::start(driver, &sockets, &[])?;
            started.push(plugin.started);
            ready.push(plugin.ready);
            plugin.stop()?;
        }
        println!("{:<24} {:>6.1} MB {:>22} {:>18}", image(driver), size / 1e6, ms(median(started)), ms(median(ready)));
    }
    fifteen_inputs(dir).await?;
    docker_runtime(starts, dir)
}

/// `ferry run` of examples/workflows/artifact-passing.yaml (two steps, one
/// artifact passed through the fs driver): steps and drivers as processes of
/// this host, beside steps and drivers as containers (`--runtime docker`:
/// the producer's sidecar, the consumer's init container, each step's main
/// container, the GC driver).
fn docker_runtime(runs: usize, dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()?;
    let ferry = exe.with_file_name("ferry");
    ensure!(ferry.exists(), "{} is missing: cargo build --release -p ferry-executor", ferry.display());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/workflows/artifact-passing.yaml");
    let busybox = "ferry/busybox:dev";
    docker(&["image", "inspect", busybox]).context("ferry/busybox:dev is missing: testing/images/busybox.sh")?;
    let fs_image = format!("ferry/driver-fs:{}", env!("CARGO_PKG_VERSION"));
    let time = |docker_runtime: bool| -> Result<Duration> {
        let home = dir.join("home");
        let _ = std::fs::remove_dir_all(&home);
        let mut c = Command::new(&ferry);
        c.arg("--home").arg(&home).args(["run", "--quiet"]);
        if docker_runtime {
            c.args(["--runtime", "docker"]);
            for from in ["docker/whalesay:latest", "alpine:latest"] {
                c.arg("--image-map").arg(format!("{from}={busybox}"));
            }
            c.arg("--image-map").arg(format!("{fs_image}={}", image("fs")));
        }
        let t = Instant::now();
        let out = c.arg(&example).stdin(Stdio::null()).output()?;
        ensure!(out.status.success(), "ferry run: {}", String::from_utf8_lossy(&out.stderr));
        Ok(t.elapsed())
    };
    let (mut local, mut containers) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        local.push(time(false)?);
        containers.push(time(true)?);
    }
    println!();
    println!("# ferry run of artifact-passing.yaml, 2 steps (median of {runs})");
    println!("{:<44} {:>14} {:>26}", "", "local", "--runtime docker");
    println!("{:<44} {:>14} {:>26}", "whole run (steps, drivers, GC)", ms(median(local)), ms(median(containers)));
    Ok(())
}

/// 15 artifacts of 1 MiB, 5 in each of 3 stores, each store its own driver
/// (three fs containers under three plugin names: what is measured is the
/// start-up pattern, not the storage).
async fn fifteen_inputs(dir: &Path) -> Result<()> {
    let work = shared_dir(dir.join("fifteen-work"))?;
    let stores: Vec<PathBuf> =
        (0..3).map(|d| shared_dir(dir.join(format!("fifteen-store-{d}")))).collect::<Result<_>>()?;
    let at = |i: usize| Location::new("fs", "root: /store", format!("in/a{i}"));
    // The inputs, saved through the image itself.
    for (d, store) in stores.iter().enumerate() {
        let plugin = Plugin::start(
            "fs",
            &shared_dir(dir.join("fifteen-setup"))?,
            &[(store, "/store"), (&work, &work.to_string_lossy())],
        )?;
        let client = DriverClient::connect(&plugin.socket, Duration::from_secs(10)).await?;
        for i in (0..15).filter(|i| i % 3 == d) {
            let src = work.join(format!("src{i}"));
            std::fs::write(&src, vec![i as u8; 1 << 20])?;
            client.save(&at(i), &src).await?;
        }
        plugin.stop()?;
    }
    let work_at = work.to_string_lossy().into_owned();

    // Argo: one init container per artifact, in sequence.
    let t = Instant::now();
    for i in 0..15 {
        let sockets = shared_dir(dir.join(format!("fifteen-seq-{i}")))?;
        let plugin = Plugin::start("fs", &sockets, &[(&stores[i % 3], "/store"), (&work, &work_at)])?;
        let client = DriverClient::connect(&plugin.socket, Duration::from_secs(10)).await?;
        client.load(&at(i), &work.join(format!("seq{i}"))).await?;
        plugin.stop()?;
    }
    let sequential = t.elapsed();

    // Ferry: the step's three drivers start together; all loads run at once.
    let t = Instant::now();
    let starting: Vec<_> = (0..3)
        .map(|d| {
            let (sockets, store, work, work_at) =
                (shared_dir(dir.join(format!("fifteen-group-{d}"))), stores[d].clone(), work.clone(), work_at.clone());
            std::thread::spawn(move || Plugin::start("fs", &sockets?, &[(&store, "/store"), (&work, &work_at)]))
        })
        .collect();
    let plugins: Vec<Plugin> = starting
        .into_iter()
        .map(|h| h.join().map_err(|_| anyhow::anyhow!("start thread panicked"))?)
        .collect::<Result<_>>()?;
    let mut clients = Vec::new();
    for p in &plugins {
        clients.push(DriverClient::connect(&p.socket, Duration::from_secs(10)).await?);
    }
    let loads = (0..15).map(|i| {
        let (client, dst) = (clients[i % 3].clone(), work.join(format!("group{i}")));
        async move { client.load(&at(i), &dst).await }
    });
    for r in futures::future::join_all(loads).await {
        r?;
    }
    let grouped = t.elapsed();
    for p in plugins {
        p.stop()?;
    }
    for i in 0..15 {
        ensure!(std::fs::read(work.join(format!("group{i}")))? == vec![i as u8; 1 << 20], "input a{i} loaded wrong");
        ensure!(std::fs::read(work.join(format!("seq{i}")))? == vec![i as u8; 1 << 20], "input a{i} loaded wrong");
    }
    println!();
    println!("# a step with 15 input artifacts of 1 MiB from 3 drivers, in containers (until every input is loaded)");
    println!("{:<44} {:>14} {:>26}", "", "ferry (group)", "15 sequential init containers");
    println!("{:<44} {:>14} {:>26}", "start-up incl. 15 loads", ms(grouped), ms(sequential));
    Ok(())
}
