//! Transfers by several contenders, measured in interleaved rounds: each
//! round runs every contender's save and load once, starting with a
//! different contender, so a slow patch of the shared machine (writeback,
//! the server's compaction, the other core busy) falls on all of them. Each
//! figure is the median over the rounds, of wall time and of the CPU time
//! (user + sys) of the process that did the work: the driver process for
//! Ferry, this process for a library used in-process, the command for a CLI.
//! CPU per GiB does not move with the server the way throughput does.

use crate::rate;
use anyhow::{Context, Result, bail};
use futures::future::BoxFuture;
use std::time::Duration;

/// Whose CPU time a contender's work is.
#[derive(Clone, Copy)]
pub(crate) enum Worker {
    /// A long-running process (a driver), read from `/proc/<pid>/stat`.
    Process(u32),
    /// A long-running process and the commands it runs and waits for (the
    /// git driver's git processes).
    ProcessTree(u32),
    /// This process: a library called in-process.
    ThisProcess,
    /// Commands this process runs and waits for (their rusage lands in our
    /// children's times once waited).
    Commands,
}

/// One timed operation; a new future per call.
pub(crate) type Op<'a> = Box<dyn Fn() -> BoxFuture<'a, Result<()>> + Send + Sync + 'a>;

/// Boxes `f` as an [`Op`]. Its future may borrow what `f` holds by
/// reference: `let (d, s) = (&driver, &src); op(move || async move { … })`.
pub(crate) fn op<'a, F, Fut>(f: F) -> Op<'a>
where
    F: Fn() -> Fut + Send + Sync + 'a,
    Fut: std::future::Future<Output = Result<()>> + Send + 'a,
{
    Box::new(move || Box::pin(f()))
}

/// One contender: its save, its load, and what to remove after a round.
pub(crate) struct Contender<'a> {
    pub name: String,
    pub worker: Worker,
    pub save: Op<'a>,
    pub load: Op<'a>,
    /// Removes what the round left (the object, the loaded copy), so a run
    /// on tmpfs holds at most one object per contender.
    pub tidy: Box<dyn Fn() + Send + Sync + 'a>,
}

/// Medians over the rounds.
#[derive(Clone, Copy)]
pub(crate) struct Figures {
    pub save: Duration,
    pub load: Duration,
    pub save_cpu: Duration,
    pub load_cpu: Duration,
}

/// What a transfer moved: bytes of one object, or many small objects.
#[derive(Clone, Copy)]
pub(crate) enum Moved {
    Bytes(u64),
    Objects { count: usize, bytes: u64 },
}

/// Asked once: a `getconf` run between two readings of our children's
/// times would be counted as a command's CPU.
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Fields 14.. of `/proc/<who>/stat` (utime, stime, cutime, cstime), in seconds.
fn stat_times(who: &str) -> Result<[f64; 4]> {
    let tick = ticks_per_second();
    let stat = std::fs::read_to_string(format!("/proc/{who}/stat"))?;
    // The command name may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<f64> { Ok(fields.get(i).context("short stat")?.parse::<f64>()? / tick) };
    // `rest` starts at field 3 (state): utime is field 14, so index 11.
    Ok([field(11)?, field(12)?, field(13)?, field(14)?])
}

/// The CPU time `worker` has used so far.
pub(crate) fn cpu(worker: Worker) -> Result<Duration> {
    let seconds = match worker {
        Worker::Process(pid) => {
            let [u, s, ..] = stat_times(&pid.to_string())?;
            u + s
        }
        Worker::ProcessTree(pid) => stat_times(&pid.to_string())?.iter().sum(),
        Worker::ThisProcess => {
            let [u, s, ..] = stat_times("self")?;
            u + s
        }
        Worker::Commands => {
            let [.., cu, cs] = stat_times("self")?;
            cu + cs
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

async fn measure(worker: Worker, op: &Op<'_>) -> Result<(Duration, Duration)> {
    let cpu_before = cpu(worker)?;
    let wall = crate::timed(op).await?;
    Ok((wall, cpu(worker)?.saturating_sub(cpu_before)))
}

/// Runs `rounds` interleaved rounds; a contender that fails is dropped from
/// the later rounds and reported with its error.
pub(crate) async fn run(contenders: &[Contender<'_>], rounds: usize) -> Vec<Result<Figures>> {
    let n = contenders.len();
    let mut samples: Vec<Vec<[Duration; 4]>> = vec![Vec::new(); n];
    let mut failed: Vec<Option<anyhow::Error>> = (0..n).map(|_| None).collect();
    for round in 0..rounds {
        for i in (0..n).map(|k| (k + round) % n) {
            if failed[i].is_some() {
                continue;
            }
            let c = &contenders[i];
            let result = async {
                let (save, save_cpu) = measure(c.worker, &c.save).await?;
                let (load, load_cpu) = measure(c.worker, &c.load).await?;
                Ok::<_, anyhow::Error>([save, load, save_cpu, load_cpu])
            }
            .await;
            (c.tidy)();
            match result {
                Ok(s) => samples[i].push(s),
                Err(e) => failed[i] = Some(e),
            }
        }
    }
    samples
        .into_iter()
        .zip(failed)
        .map(|(s, failed)| match failed {
            Some(e) => Err(e),
            None if s.is_empty() => bail!("no rounds"),
            None => {
                let median = |k: usize| crate::median(s.iter().map(|x| x[k]).collect());
                Ok(Figures { save: median(0), load: median(1), save_cpu: median(2), load_cpu: median(3) })
            }
        })
        .collect()
}

fn speed(moved: Moved, d: Duration) -> String {
    match moved {
        Moved::Bytes(bytes) => rate(bytes, d),
        Moved::Objects { count, .. } => format!("{:.0} obj/s", count as f64 / d.as_secs_f64()),
    }
}

/// CPU seconds per GiB moved.
fn per_gib(moved: Moved, cpu: Duration) -> f64 {
    let bytes = match moved {
        Moved::Bytes(b) | Moved::Objects { bytes: b, .. } => b,
    };
    cpu.as_secs_f64() / (bytes as f64 / (1u64 << 30) as f64)
}

/// Prints one line per contender; the first is Ferry, and each peer's line
/// says how Ferry compares: speed as a multiple of the peer's, and CPU per
/// GiB as a fraction of the peer's (below 1.00x: Ferry uses less).
pub(crate) fn print(contenders: &[Contender<'_>], figures: &[Result<Figures>], moved: Moved) {
    let ferry = figures.first().and_then(|f| f.as_ref().ok()).copied();
    for (i, (c, f)) in contenders.iter().zip(figures).enumerate() {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                println!("  {:<34} not run: {e:#}", c.name);
                continue;
            }
        };
        let side = |wall: Duration, cpu: Duration, ferry: Option<(Duration, Duration)>| {
            let mut s = format!("{:>11} {:>5.2} CPU-s/GiB", speed(moved, wall), per_gib(moved, cpu));
            if let Some((fw, fc)) = ferry {
                let cpu_ratio = fc.as_secs_f64() / cpu.as_secs_f64().max(1e-3);
                s += &format!(" (Ferry {:.2}x speed, {cpu_ratio:.2}x CPU)", wall.as_secs_f64() / fw.as_secs_f64());
            }
            s
        };
        let (fs, fl) = match ferry {
            Some(fe) if i > 0 => (Some((fe.save, fe.save_cpu)), Some((fe.load, fe.load_cpu))),
            _ => (None, None),
        };
        println!("  {:<34} save {}", c.name, side(f.save, f.save_cpu, fs));
        println!("  {:<34} load {}", "", side(f.load, f.load_cpu, fl));
    }
}
