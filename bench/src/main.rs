//! `ferry-bench`: benchmarks that print Ferry's figure beside its peer, in one run.
//!
//! Build in release mode: `cargo run --release -p ferry-bench -- fs`.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ferry_sdk::client::{DriverClient, Location};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod contest;
mod executor;
mod gcs;
mod git;
mod images;
mod s3;
mod server;

#[derive(Parser)]
#[command(about = "Ferry benchmarks: each figure printed beside the peer it is compared with")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// The filesystem driver: socket-ready time, Save/Load/OpenStream throughput against `cp`, peak RSS.
    Fs {
        /// Size of the transferred file in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Timed repetitions of each transfer (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Driver start-ups measured for socket-ready time.
        #[arg(long, default_value_t = 30)]
        startups: usize,
        /// Scratch directory (needs about 4 × size free).
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
    /// The executor: per-node controller overhead on a generated DAG against
    /// `xargs -P`, peak RSS, database size; and a 15-artifact step's start-up
    /// against 15 sequential driver start-ups.
    Executor {
        /// Nodes in the generated DAG (100000 for the stretch goal).
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// Steps at once, for both ferry and xargs.
        #[arg(long, default_value_t = 4)]
        parallelism: usize,
        /// Scratch directory.
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
    /// The driver images (deploy/images/build.sh): size, cold start beside the
    /// engine's own container start, and 15 inputs from 3 drivers loaded by one
    /// group of driver containers beside 15 sequential init containers.
    Images {
        /// Cold starts measured per image (the median is reported).
        #[arg(long, default_value_t = 10)]
        starts: usize,
        /// Scratch directory.
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
    /// `ferry server`: an artifact downloaded through argo-server's URL beside
    /// the fs driver's own OpenStream and `ferry artifacts get`; the
    /// server's peak RSS, disk writes and first byte.
    Server {
        /// Size of the artifact in MiB.
        #[arg(long, default_value_t = 4096)]
        size_mib: u64,
        /// Downloads of each kind (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Scratch directory (needs about 1 × size free).
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
    /// ferry-driver-git against git daemon beside the git CLI (clone, commit,
    /// push; clone); peak RSS of the driver and its git processes;
    /// concurrent Saves to one branch.
    Git {
        /// Size of the transferred file in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Interleaved rounds of every contender (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Concurrent small Saves to one branch.
        #[arg(long, default_value_t = 32)]
        concurrent: usize,
        /// Scratch directory (needs about 3 × size free).
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
    /// ferry-driver-gcs against fake-gcs-server beside Google's Python client
    /// and rclone; resume after a kill; OpenStream first byte; peak RSS.
    Gcs {
        /// Size of the transferred file in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Interleaved rounds of every contender (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Scratch directory (needs about 2 × size free; the emulator holds objects in memory).
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
    /// ferry-driver-s3 against s3s-fs beside rclone, aws-cli and object_store
    /// direct (throughput and CPU per GiB, interleaved rounds); resume after a
    /// kill; OpenStream first byte; peak RSS on a big file; a directory of
    /// small files.
    S3 {
        /// Skip the throughput, first-byte and resume runs.
        #[arg(long)]
        no_transfers: bool,
        /// Size of the file of the throughput runs in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Interleaved rounds of every contender (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Size in GiB of the file whose save and load peak RSS is measured (0: skip).
        #[arg(long, default_value_t = 20)]
        big_gib: u64,
        /// Files in the directory benchmark (0: skip).
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// Scratch directory (needs about 3 × size free, plus 2 × big).
        #[arg(long, default_value = "target/bench-data")]
        dir: PathBuf,
    },
}

/// Exit codes as every Ferry command line (docs/configuration.md): 0 when
/// the benchmark ran, 2 when it could not (clap's code for a bad command
/// line, too).
fn main() -> std::process::ExitCode {
    match bench(Cli::parse().bench) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn bench(which: Bench) -> Result<()> {
    match which {
        Bench::Fs { size_mib, runs, startups, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(fs_bench(size_mib, runs.max(1), startups.max(1), &dir))
        }
        Bench::S3 { no_transfers, size_mib, rounds, big_gib, files, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(s3::bench(s3::Plan {
                transfers: !no_transfers,
                size_mib,
                big_gib,
                files,
                rounds: rounds.max(1),
                dir,
            }))
        }
        Bench::Git { size_mib, rounds, concurrent, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(git::bench(size_mib, rounds.max(1), concurrent.max(1), &dir))
        }
        Bench::Gcs { size_mib, rounds, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(gcs::bench(size_mib, rounds.max(1), &dir))
        }
        Bench::Images { starts, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(images::bench(starts.max(1), &std::path::absolute(dir)?))
        }
        Bench::Server { size_mib, runs, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(server::bench(size_mib, runs.max(1), &dir))
        }
        Bench::Executor { nodes, parallelism, dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(executor::bench(nodes.max(1), parallelism.max(1), &dir))
        }
    }
}

/// A driver process a benchmark talks to through its socket.
pub(crate) struct Driver {
    child: std::process::Child,
    pub(crate) client: ferry_sdk::client::DriverClient,
    pub(crate) log: PathBuf,
}

impl Driver {
    /// Starts the driver binary `binary` (beside this one) with `env` added;
    /// its JSON log goes to `<dir>/<name>.log`.
    pub(crate) async fn start(dir: &Path, name: &str, binary: &str, env: &[(&str, &str)]) -> Result<Driver> {
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(driver_binary(binary)?)
            .arg(&socket)
            .env("FERRY_LOG", "info")
            .env("FERRY_LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let client = DriverClient::connect(&socket, Duration::from_secs(10)).await?;
        Ok(Driver { child, client, log })
    }

    pub(crate) fn rss_mib(&self) -> Result<f64> {
        Ok(peak_rss_kib(self.child.id())? as f64 / 1024.0)
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn driver_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("exe has no directory")?.join(name);
    if !path.exists() {
        bail!("{} not found: build it with `cargo build --release -p {name}`", path.display());
    }
    Ok(path)
}

pub(crate) struct Running {
    child: Child,
}

impl Running {
    pub(crate) fn start(binary: &Path, socket: &Path) -> Result<Running> {
        let child = Command::new(binary).arg(socket).env("FERRY_LOG", "warn").stderr(Stdio::inherit()).spawn()?;
        Ok(Running { child })
    }

    /// Peak resident set size (VmHWM) of the driver process so far, in KiB.
    fn peak_rss_kib(&self) -> Result<u64> {
        peak_rss_kib(self.child.id())
    }

    pub(crate) fn stop(mut self) -> Result<i32> {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status()?;
        Ok(self.child.wait()?.code().unwrap_or(-1))
    }
}

/// Peak resident set size (VmHWM) of process `pid` so far, in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("bad VmHWM")?.parse()?)
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

pub(crate) fn rate(bytes: u64, d: Duration) -> String {
    format!("{:.0} MiB/s", bytes as f64 / (1 << 20) as f64 / d.as_secs_f64())
}

/// Times one run of `f`, after flushing dirty pages: otherwise whichever run
/// follows gigabytes of writes is throttled by writeback for reasons not its own.
pub(crate) async fn timed<F, Fut>(f: F) -> Result<Duration>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    Command::new("sync").status()?;
    let t = Instant::now();
    f().await?;
    Ok(t.elapsed())
}

async fn fs_bench(size_mib: u64, runs: usize, startups: usize, dir: &Path) -> Result<()> {
    let binary = driver_binary("ferry-driver-fs")?;
    let dir = std::path::absolute(dir)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let size = size_mib << 20;

    println!("ferry-bench fs: {} MiB file, median of {runs} runs; scratch {}", size_mib, dir.display());
    println!();

    // Socket-ready: process start to the first answered RPC, as Argo's executor experiences it.
    let mut ready = Vec::with_capacity(startups);
    for i in 0..startups {
        let socket = dir.join(format!("startup/{i}/socket"));
        let t = Instant::now();
        let driver = Running::start(&binary, &socket)?;
        let client = DriverClient::connect(&socket, Duration::from_secs(10)).await?;
        client.supports_save_stream().await?;
        ready.push(t.elapsed());
        let code = driver.stop()?;
        if code != 0 {
            bail!("driver exited {code} on SIGTERM");
        }
    }
    let mut spawn = Vec::with_capacity(startups);
    for _ in 0..startups {
        let t = Instant::now();
        Command::new("true").status()?;
        spawn.push(t.elapsed());
    }
    println!("{:<44} {:>12} {:>12}   compared with", "socket ready (spawn -> first RPC answered)", "median", "p90");
    println!(
        "{:<44} {:>12} {:>12}   goal <= 20 ms; bare process spawn+exit (/bin/true) median {}",
        "ferry-driver-fs",
        ms(median(ready.clone())),
        ms(percentile(ready, 0.9)),
        ms(median(spawn))
    );
    println!();

    // Throughput against cp: same file, same disk, runs interleaved (cp, Save,
    // Load, OpenStream, cp, ...) so drifting disk and cache state hits all alike.
    let src = dir.join("source.bin");
    write_pattern(&src, size)?;
    let cp_dst = dir.join("cp.out");
    let socket = dir.join("transfer/socket");
    let driver = Running::start(&binary, &socket)?;
    let client = DriverClient::connect(&socket, Duration::from_secs(10)).await?;
    let at = Location::new("fs", format!("root: {}", dir.join("storage").display()), "bench/source.bin");
    let load_dst = dir.join("load.out");
    let (mut cp, mut save, mut load, mut stream) = (vec![], vec![], vec![], vec![]);
    let (mut peak_save, mut peak_load) = (0, 0);
    for _ in 0..runs {
        let _ = std::fs::remove_file(&cp_dst);
        cp.push(
            timed(|| async {
                let status = Command::new("cp").arg(&src).arg(&cp_dst).status()?;
                anyhow::ensure!(status.success(), "cp failed");
                Ok(())
            })
            .await?,
        );
        // Like cp's target, the previous object is removed untimed first.
        client.delete(&at).await?;
        save.push(timed(|| async { Ok(client.save(&at, &src).await?) }).await?);
        peak_save = driver.peak_rss_kib()?;
        let _ = std::fs::remove_file(&load_dst);
        load.push(timed(|| async { Ok(client.load(&at, &load_dst).await?) }).await?);
        peak_load = driver.peak_rss_kib()?;
        anyhow::ensure!(std::fs::metadata(&load_dst)?.len() == size, "loaded file has the wrong size");
        stream.push(
            timed(|| async {
                let mut s = client.open_stream(&at).await?;
                let mut n = 0u64;
                while let Some(chunk) = s.next().await {
                    n += chunk?.len() as u64;
                }
                anyhow::ensure!(n == size, "streamed {n} of {size} bytes");
                Ok(())
            })
            .await?,
        );
    }
    let min = |v: &Vec<Duration>| v.iter().min().copied().unwrap_or_default();
    let (cp_min, save_min, load_min, stream_min) = (min(&cp), min(&save), min(&load), min(&stream));
    let (cp, save, load, stream) = (median(cp), median(save), median(load), median(stream));
    let peak_stream = driver.peak_rss_kib()?;
    let code = driver.stop()?;
    anyhow::ensure!(code == 0, "driver exited {code} on SIGTERM");

    println!("{:<44} {:>12} {:>12}   compared with", format!("transfer of {size_mib} MiB"), "time", "throughput");
    println!(
        "{:<44} {:>12} {:>12}   (the peer; fastest run {})",
        "cp (file to file)",
        ms(cp),
        rate(size, cp),
        ms(cp_min)
    );
    for (what, d, best, note) in [
        ("Save via ferry-driver-fs", save, save_min, "goal >= 0.80x"),
        ("Load via ferry-driver-fs", load, load_min, "goal >= 0.80x"),
        ("OpenStream via ferry-driver-fs", stream, stream_min, "to the client, no disk write"),
    ] {
        println!(
            "{:<44} {:>12} {:>12}   {:.2}x cp median, {:.2}x fastest vs fastest ({note})",
            what,
            ms(d),
            rate(size, d),
            cp.as_secs_f64() / d.as_secs_f64(),
            cp_min.as_secs_f64() / best.as_secs_f64(),
        );
    }
    println!();
    for (what, kib) in [("after Save", peak_save), ("after Load", peak_load), ("after OpenStream", peak_stream)] {
        println!(
            "{:<44} {:>12}   goal <= 64 MiB, whatever the file size",
            format!("peak RSS of the driver (VmHWM) {what}"),
            format!("{:.1} MiB", kib as f64 / 1024.0)
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

pub(crate) fn write_pattern(path: &Path, size: u64) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let block: Vec<u8> = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}
