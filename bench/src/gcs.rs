//! `ferry-bench gcs`: ferry-driver-gcs through its socket against
//! fake-gcs-server, beside Google's own Python client (`google-cloud-storage`,
//! plain and with its transfer manager) and `rclone`, all on the same server
//! in one run; then a killed-and-resumed save, OpenStream's first byte and the
//! driver's peak RSS.
//!
//! The emulator keeps objects and upload sessions in memory and computes
//! MD5 and CRC32C on every write, so it bounds everyone's figures; it also
//! cannot hold the 20 GiB objects of the S3 runs (see docs/benchmarks.md).

use crate::contest::{self, Contender, Moved, Worker, op};
use crate::{Driver, ms, timed, write_pattern};
use anyhow::{Result, bail};
use ferry_sdk::client::Location;
use ferry_test_servers::{BUCKET, FakeGcs, workspace_root};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Chunk size of Ferry's resumable uploads: the driver's default, or
/// `FERRY_GCS_CHUNK_SIZE` as the driver (which inherits it) reads it.
fn chunk_size() -> Result<u64> {
    Ok(ferry_sdk::env::size("FERRY_GCS_CHUNK_SIZE")?.unwrap_or(256 << 20))
}

/// The emulator's status query finishes half-uploaded objects (its issue
/// #2354), so the driver resumes from its journal here.
const ENV: [(&str, &str); 1] = [("FERRY_GCS_STATUS_QUERY", "false")];

fn location(gcs: &FakeGcs, key: &str) -> Location {
    Location::new("gcs", format!("{{endpoint: '{}', anonymous: true, bucket: {BUCKET}}}", gcs.endpoint()), key)
}

/// Google's Python client against the emulator; `op` is `up`, `down` or `chunks`.
fn python(gcs: &FakeGcs, op: &str, key: &str, path: &Path) -> Result<()> {
    const SCRIPT: &str = r#"
import sys
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import transfer_manager
op, endpoint, bucket, key, path = sys.argv[1:]
client = storage.Client(project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint})
blob = client.bucket(bucket).blob(key)
if op == "up":
    blob.upload_from_filename(path)
elif op == "down":
    blob.download_to_filename(path)
else:
    blob.reload()
    transfer_manager.download_chunks_concurrently(blob, path, chunk_size=32 << 20, max_workers=8, worker_type="thread")
"#;
    let python = workspace_root().join(".venv/bin/python");
    let status = Command::new(&python)
        .args(["-c", SCRIPT, op, &gcs.endpoint(), BUCKET, key])
        .arg(path)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!(
            "python google-cloud-storage {op} failed ({status}); install it with `.venv/bin/pip install -r bench/requirements.txt`"
        );
    }
    Ok(())
}

fn rclone(gcs: &FakeGcs, args: &[&str]) -> Result<()> {
    let bin = PathBuf::from("/usr/bin/rclone");
    if !bin.exists() {
        bail!("/usr/bin/rclone is missing: apt-get install rclone");
    }
    let status = Command::new(bin)
        .args(args)
        .env("RCLONE_CONFIG_BENCH_TYPE", "gcs")
        .env("RCLONE_CONFIG_BENCH_ANONYMOUS", "true")
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", format!("{}/storage/v1/", gcs.endpoint()))
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("rclone {args:?} failed: {status}");
    }
    Ok(())
}

fn delete(gcs: &FakeGcs, key: &str) {
    let _ = gcs.delete(&format!("/storage/v1/b/{BUCKET}/o/{}", key.replace('/', "%2F")));
}

/// Runs every GCS figure on a file of `size_mib` MiB.
pub async fn bench(size_mib: u64, rounds: usize, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let size = size_mib << 20;
    let src = dir.join("gcs-src.bin");
    let back = dir.join("gcs-back.bin");
    write_pattern(&src, size)?;
    let gcs = FakeGcs::start();
    gcs.create_bucket(BUCKET);
    println!(
        "GCS transfers of {size_mib} MiB against fake-gcs-server (memory backend) on 127.0.0.1, median of {rounds} \
         interleaved rounds; Ferry's upload chunks: {} MiB; CPU is user + sys of the process doing the work",
        chunk_size()? >> 20
    );
    let driver = Driver::start(&dir, "gcs-driver", "ferry-driver-gcs", &ENV).await?;
    let at = location(&gcs, "ferry.bin");
    let tidy = |key: &'static str| {
        let (gcs, back) = (&gcs, back.clone());
        Box::new(move || {
            delete(gcs, key);
            let _ = std::fs::remove_file(&back);
        }) as Box<dyn Fn() + Send + Sync + '_>
    };
    let (srcs, backs) = (src.to_string_lossy().to_string(), back.to_string_lossy().to_string());
    let (d, g, at_, src_, back_, srcs, backs) = (&driver, &gcs, &at, &src, &back, srcs.as_str(), backs.as_str());
    let contenders = vec![
        Contender {
            name: "ferry-driver-gcs (gRPC)".into(),
            worker: Worker::Process(driver.child.id()),
            save: op(move || async move { Ok(d.client.save(at_, src_).await?) }),
            load: op(move || async move {
                d.client.load(at_, back_).await?;
                anyhow::ensure!(std::fs::read(back_)? == std::fs::read(src_)?, "Ferry loaded different bytes");
                Ok(())
            }),
            tidy: tidy("ferry.bin"),
        },
        Contender {
            name: "google-cloud-storage (Python)".into(),
            worker: Worker::Commands,
            save: op(move || async move { python(g, "up", "python.bin", src_) }),
            load: op(move || async move { python(g, "down", "python.bin", back_) }),
            tidy: tidy("python.bin"),
        },
        Contender {
            name: "  its transfer_manager, 8 threads".into(),
            worker: Worker::Commands,
            save: op(move || async move { python(g, "up", "chunks.bin", src_) }),
            load: op(move || async move { python(g, "chunks", "chunks.bin", back_) }),
            tidy: tidy("chunks.bin"),
        },
        Contender {
            name: "rclone copyto".into(),
            worker: Worker::Commands,
            save: op(move || async move { rclone(g, &["copyto", srcs, &format!("bench:{BUCKET}/rclone.bin")]) }),
            load: op(move || async move { rclone(g, &["copyto", &format!("bench:{BUCKET}/rclone.bin"), backs]) }),
            tidy: tidy("rclone.bin"),
        },
    ];
    let figures = contest::run(&contenders, rounds).await;
    contest::print(&contenders, &figures, Moved::Bytes(size));
    drop(contenders);

    driver.client.save(&at, &src).await?;
    let t = Instant::now();
    let mut stream = driver.client.open_stream(&at).await?;
    let first = loop {
        match stream.next().await {
            Some(Ok(c)) if !c.is_empty() => break t.elapsed(),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("empty stream"),
        }
    };
    drop(stream);
    let rss = driver.rss_mib()?;
    drop(driver);
    delete(&gcs, "ferry.bin");
    println!("  OpenStream first byte of the {size_mib} MiB object: {}", ms(first));
    println!("  driver peak RSS over the rounds and the stream: {rss:.1} MiB (goal <= 128)");

    resume(&gcs, &dir, &src, size).await?;
    std::fs::remove_file(&src)?;
    Ok(())
}

fn journaled(gcs: &FakeGcs, key: &str) -> usize {
    let (status, body) = gcs
        .get(&format!("/storage/v1/b/{BUCKET}/o/.ferry-uploads%2F{}.upload.json?alt=media", key.replace('/', "%2F")));
    if status != 200 {
        return 0;
    }
    serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["crcs"].as_array().map(Vec::len)).unwrap_or(0)
}

/// Kills a save half-way and lets a new process finish it.
async fn resume(gcs: &FakeGcs, dir: &Path, src: &Path, size: u64) -> Result<()> {
    let mut killed = Driver::start(dir, "gcs-killed", "ferry-driver-gcs", &ENV).await?;
    let at = location(gcs, "resume.bin");
    let client = killed.client.clone();
    let (a, s) = (at.clone(), src.to_path_buf());
    let save = tokio::spawn(async move { client.save(&a, &s).await });
    let chunks = size.div_ceil(chunk_size()?) as usize;
    while journaled(gcs, "resume.bin") < chunks / 2 {
        if save.is_finished() {
            bail!("the save finished before half-way; use a larger --size-mib");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    killed.kill();
    let _ = save.await;
    let at_kill = journaled(gcs, "resume.bin");
    let resumed = Driver::start(dir, "gcs-resumed", "ferry-driver-gcs", &ENV).await?;
    let took = timed(|| async { Ok(resumed.client.save(&at, src).await?) }).await?;
    let log = std::fs::read_to_string(&resumed.log)?;
    let report = log.lines().rev().find(|l| l.contains("resumed an interrupted upload"));
    match report.and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        Some(v) => {
            let f = &v["fields"];
            let mib = |k: &str| f[k].as_u64().unwrap_or(0) as f64 / 1048576.0;
            println!(
                "Resume after SIGKILL at {at_kill}/{chunks} chunks journaled: {:.0} MiB kept, {:.0} MiB sent by the new process in {}",
                mib("resumed"),
                mib("sent"),
                ms(took)
            );
        }
        None if log.contains("uploading again from the start") => println!(
            "Resume after SIGKILL at {at_kill}/{chunks} chunks journaled: the emulator had stored a chunk the journal \
             had not recorded (it appends chunks whatever their offset), the checksum caught it and the upload started over ({})",
            ms(took)
        ),
        None => println!("Resume after SIGKILL at {at_kill}/{chunks} chunks journaled: no report in the log"),
    }
    delete(gcs, "resume.bin");
    Ok(())
}
