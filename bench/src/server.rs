//! `ferry-bench server`: an artifact downloaded through `ferry server`
//! (argo-server's URL) beside the same object read with the fs driver's own
//! OpenStream and with `ferry artifacts get`, runs interleaved; with the
//! server's peak RSS, its writes to disk and the first byte's latency.

use crate::executor::run_ferry;
use crate::{Driver, driver_binary, median, ms, peak_rss_kib, rate, write_pattern};
use anyhow::{Context, Result, ensure};
use ferry_sdk::client::Location;
use futures::StreamExt;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const WORKFLOW: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: big}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container: {image: x, command: [sh, -c, 'echo small > /tmp/big']}\n    outputs: {artifacts: [{name: big, path: /tmp/big, archive: {none: {}}}]}\n";

/// Bytes written to storage on behalf of process `pid` (`/proc/<pid>/io`).
fn written(pid: u32) -> Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:")).context("no write_bytes")?;
    Ok(line.split_whitespace().nth(1).context("bad write_bytes")?.parse()?)
}

pub async fn bench(size_mib: u64, runs: usize, dir: &Path) -> Result<()> {
    let dir = std::path::absolute(dir)?.join("server");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let home = dir.join("home");
    let size = size_mib << 20;
    std::fs::write(dir.join("big.yaml"), WORKFLOW)?;
    run_ferry(&home, &["run", "-q", dir.join("big.yaml").to_str().context("path")?])?;
    // The object the run recorded, made big in place: the fs driver's root is the home's artifacts.
    let root = home.canonicalize()?.join("artifacts");
    let key = find_key(&root)?;
    write_pattern(&root.join(&key), size)?;
    println!("ferry-bench server: a {size_mib} MiB artifact (fs driver), median of {runs} runs, interleaved");
    println!();

    let mut server = Command::new(driver_binary("ferry")?)
        .arg("--home")
        .arg(&home)
        .args(["server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().context("stdout")?).read_line(&mut line)?;
    let base = line.trim().rsplit(' ').next().context("no address")?.to_string();
    let url = format!("{base}/artifacts/default/big/big/big");
    let driver = Driver::start(&dir, "fs", "ferry-driver-fs", &[]).await?;
    let at = Location::new("fs", format!("root: {}", root.display()), key.clone());
    let http = reqwest::Client::new();
    let disk_before = written(server.id())?;

    let (mut direct, mut via_server, mut cli, mut first) = (vec![], vec![], vec![], vec![]);
    let mut cli_peak = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let mut s = driver.client.open_stream(&at).await?;
        let mut n = 0;
        while let Some(c) = s.next().await {
            n += c?.len() as u64;
        }
        direct.push(t.elapsed());
        ensure!(n == size, "OpenStream gave {n} of {size} bytes");

        let t = Instant::now();
        let r = http.get(&url).send().await?.error_for_status()?;
        let mut body = r.bytes_stream();
        let mut n = 0;
        while let Some(c) = body.next().await {
            if n == 0 {
                first.push(t.elapsed());
            }
            n += c?.len() as u64;
        }
        via_server.push(t.elapsed());
        ensure!(n == size, "the server gave {n} of {size} bytes");

        let (took, peak) = run_ferry(&home, &["artifacts", "get", "big", "big", "big", "-o", "/dev/null"])?;
        cli.push(took);
        cli_peak = cli_peak.max(peak);
    }
    let server_peak = peak_rss_kib(server.id())?;
    let server_wrote = written(server.id())? - disk_before;
    let driver_peak = driver.rss_mib()?;
    Command::new("kill").arg("-TERM").arg(server.id().to_string()).status()?;
    let code = server.wait()?.code();
    ensure!(code == Some(0), "ferry server exited {code:?} on SIGTERM");

    println!("{:<48} {:>10} {:>12} {:>14}", "download", "time", "throughput", "peak RSS");
    let (d, s, c) = (median(direct), median(via_server), median(cli));
    println!(
        "{:<48} {:>10} {:>12} {:>14}   (the peer: the driver itself)",
        "fs driver OpenStream, gRPC client in-process",
        ms(d),
        rate(size, d),
        format!("{driver_peak:.1} MiB")
    );
    println!(
        "{:<48} {:>10} {:>12} {:>14}   {:.2}x OpenStream; peak RSS of the `ferry` process",
        "ferry artifacts get -o /dev/null",
        ms(c),
        rate(size, c),
        format!("{:.1} MiB", cli_peak as f64 / 1024.0),
        d.as_secs_f64() / c.as_secs_f64()
    );
    println!(
        "{:<48} {:>10} {:>12} {:>14}   {:.2}x OpenStream; server RSS, goal <= 64 MiB",
        "ferry server, GET /artifacts/… (HTTP/1.1)",
        ms(s),
        rate(size, s),
        format!("{:.1} MiB", server_peak as f64 / 1024.0),
        d.as_secs_f64() / s.as_secs_f64()
    );
    println!();
    println!(
        "{:<48} {:>10}   goal <= 50 ms (driver already started by the first run)",
        "ferry server first byte (median)",
        ms(median(first.clone()))
    );
    println!(
        "{:<48} {:>10}   the first request, which starts the driver",
        "ferry server first byte (first run)",
        ms(first[0])
    );
    println!("{:<48} {:>10}   goal: nothing", "written to disk by ferry server", format!("{server_wrote} B"));
    drop(driver);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The one object under `root`: the run's output.
fn find_key(root: &Path) -> Result<String> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "big") {
                return Ok(p.strip_prefix(root)?.to_string_lossy().into_owned());
            }
        }
    }
    anyhow::bail!("the run stored no object named big under {}", root.display())
}
