//! `ferry-bench git`: ferry-driver-git through its socket against `git
//! daemon`, beside the git CLI doing the same by hand (a shallow clone, add,
//! commit and push to save; a shallow clone to load), interleaved rounds on
//! one server; then 32 concurrent Saves to one branch, and the peak RSS of
//! the driver and of the git processes it ran.
//!
//! Every save writes new bytes (a round counter at the file's start), so no
//! contender ever finds the blob already on the server or in a cache, and
//! each round starts from an empty branch.

use crate::contest::{self, Contender, Moved, Worker, op};
use crate::{Driver, ms, write_pattern};
use anyhow::{Context, Result, bail};
use ferry_sdk::client::Location;
use ferry_test_servers::{GitDaemon, git};
use std::io::{Seek, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Puts a new counter value at the start of `path`, so its blob is new.
fn stamp(path: &Path, counter: &AtomicU64) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(std::io::SeekFrom::Start(0))?;
    f.write_all(&counter.fetch_add(1, Ordering::Relaxed).to_le_bytes())?;
    Ok(())
}

/// Runs the git CLI as a user would; its CPU lands in our children's times.
fn cli(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .args(["-c", "user.name=Bench", "-c", "user.email=bench@ferry.invalid"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("git {args:?} failed: {status}");
    }
    Ok(())
}

/// Files the same (length first, then bytes in blocks) without reading either whole.
fn same_file(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    if std::fs::metadata(a)?.len() != std::fs::metadata(b)?.len() {
        return Ok(false);
    }
    let (mut x, mut y) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut bx, mut by) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = x.read(&mut bx)?;
        if n == 0 {
            return Ok(true);
        }
        y.read_exact(&mut by[..n])?;
        if bx[..n] != by[..n] {
            return Ok(false);
        }
    }
}

/// The peak RSS (VmHWM) of any child of `pid` seen while sampling, in KiB:
/// git's processes live for one command, so they are sampled every 10 ms.
struct ChildPeak {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl ChildPeak {
    fn start(pid: u32) -> ChildPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                for child in descendants(pid) {
                    peak = peak.max(crate::peak_rss_kib(child).unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        ChildPeak { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0) as f64 / 1024.0
    }
}

/// Every process below `pid`, read from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents = vec![pid];
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    let all: Vec<(u32, u32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    while let Some(parent) = parents.pop() {
        for &(p, pp) in &all {
            if pp == parent {
                found.push(p);
                parents.push(p);
            }
        }
    }
    found
}

/// Runs every git figure on a file of `size_mib` MiB.
pub async fn bench(size_mib: u64, rounds: usize, concurrent: usize, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let size = size_mib << 20;
    let src = dir.join("git-src.bin");
    let back = dir.join("git-back.bin");
    let clones = dir.join("git-clones");
    write_pattern(&src, size)?;
    let daemon = GitDaemon::start();
    let url = daemon.bare_repo("bench.git");
    let bare = daemon.root.path().join("bench.git");
    // One empty commit each branch starts from, and is reset to after each round.
    let empty_tree = git(&bare, &["hash-object", "-t", "tree", "-w", "/dev/null"]);
    let root = git(&bare, &["commit-tree", "-m", "start", empty_tree.trim()]).trim().to_string();
    for branch in ["ferry", "cli", "many"] {
        git(&bare, &["update-ref", &format!("refs/heads/{branch}"), &root]);
    }
    println!(
        "git transfers of {size_mib} MiB against git daemon (git://127.0.0.1), median of {rounds} interleaved \
         rounds; CPU is user + sys of the driver and the git processes it ran, or of the git commands"
    );
    let driver = Driver::start(&dir, "git-driver", "ferry-driver-git", &[]).await?;
    let pid = driver.child.id();
    let save_at = Location::new("git", format!("{{repo: '{url}', branch: ferry}}"), "bench/ferry.bin");
    // Reads through a configuration of their own, so a load fetches from the
    // server rather than finding the save's commit in the writer's cache.
    let load_at = Location::new("git", format!("{{repo: '{url}', revision: ferry}}"), "bench/ferry.bin");
    let counter = AtomicU64::new(0);
    let reset = |branch: &'static str| {
        let (bare, root, back, clones) = (bare.clone(), root.clone(), back.clone(), clones.clone());
        Box::new(move || {
            git(&bare, &["update-ref", &format!("refs/heads/{branch}"), &root]);
            let _ = std::fs::remove_file(&back);
            let _ = std::fs::remove_dir_all(&clones);
        }) as Box<dyn Fn() + Send + Sync>
    };
    let (d, s, l, src_, back_, url_, clones_, n) =
        (&driver, &save_at, &load_at, &src, &back, url.as_str(), &clones, &counter);
    let peak = ChildPeak::start(pid);
    let contenders = vec![
        Contender {
            name: "ferry-driver-git (gRPC)".into(),
            worker: Worker::ProcessTree(pid),
            save: op(move || async move {
                stamp(src_, n)?;
                Ok(d.client.save(s, src_).await?)
            }),
            load: op(move || async move {
                d.client.load(l, back_).await?;
                anyhow::ensure!(same_file(back_, src_)?, "Ferry loaded different bytes");
                Ok(())
            }),
            tidy: reset("ferry"),
        },
        Contender {
            name: "git CLI (clone, add, commit, push)".into(),
            worker: Worker::Commands,
            save: op(move || async move {
                stamp(src_, n)?;
                let work = clones_.join("save");
                std::fs::create_dir_all(clones_)?;
                cli(clones_, &["clone", "-q", "--depth", "1", "--branch", "cli", url_, "save"])?;
                std::fs::create_dir_all(work.join("bench"))?;
                std::fs::copy(src_, work.join("bench/git.bin"))?;
                cli(&work, &["add", "bench/git.bin"])?;
                cli(&work, &["commit", "-q", "-m", "save"])?;
                cli(&work, &["push", "-q", "origin", "cli"])
            }),
            load: op(move || async move {
                cli(clones_, &["clone", "-q", "--depth", "1", "--branch", "cli", url_, "load"])?;
                anyhow::ensure!(same_file(&clones_.join("load/bench/git.bin"), src_)?, "git loaded different bytes");
                Ok(())
            }),
            tidy: reset("cli"),
        },
    ];
    let figures = contest::run(&contenders, rounds).await;
    contest::print(&contenders, &figures, Moved::Bytes(size));
    drop(contenders);
    let children = peak.finish();
    let rss = driver.rss_mib()?;
    println!("  driver peak RSS: {rss:.1} MiB; largest git process it ran: {children:.1} MiB (goal <= 64 each)");

    // Concurrent small Saves to one branch, as parallel steps of a workflow do.
    let many = Location::new("git", format!("{{repo: '{url}', branch: many}}"), "");
    let small = dir.join("git-small.txt");
    std::fs::write(&small, b"small artifact\n")?;
    let t = Instant::now();
    let saves = (0..concurrent).map(|i| {
        let (client, at, small) = (driver.client.clone(), many.clone(), small.clone());
        async move { client.save(&at.with_key(format!("steps/{i}.txt")), &small).await }
    });
    for result in futures::future::join_all(saves).await {
        result.context("a concurrent save failed")?;
    }
    let took = t.elapsed();
    let commits = git(&bare, &["rev-list", "--count", "many"]).trim().parse::<usize>()? - 1;
    println!(
        "  {concurrent} concurrent Saves to one branch: {} ({:.0} saves/s), {commits} commits",
        ms(took),
        concurrent as f64 / took.as_secs_f64()
    );
    std::fs::remove_file(&src)?;
    Ok(())
}
