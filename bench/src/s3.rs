//! `ferry-bench s3`: ferry-driver-s3 through its socket against a real S3
//! server (s3s-fs), beside `rclone`, `aws s3 cp` and object_store used
//! directly, all on the same server in one run. Then a killed-and-resumed
//! save, OpenStream's first byte, peak RSS on a large file, and a directory
//! of many small files. Throughput and CPU per GiB come from interleaved
//! rounds (see [`crate::contest`]).

use crate::contest::{self, Contender, Moved, Worker, op};
use crate::{Driver, rate, timed, write_pattern};
use anyhow::{Context, Result, bail};
use ferry_sdk::client::Location;
use ferry_test_servers::{ACCESS_KEY, BUCKET, S3sFs, SECRET_KEY};
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PART: u64 = 8 << 20;

/// What to run.
pub struct Plan {
    pub transfers: bool,
    pub size_mib: u64,
    pub big_gib: u64,
    pub files: usize,
    pub rounds: usize,
    pub dir: PathBuf,
}

/// ferry-driver-s3 with the test servers' credentials.
async fn s3_driver(dir: &Path, name: &str) -> Result<Driver> {
    Driver::start(
        dir,
        name,
        "ferry-driver-s3",
        &[("FERRY_SECRET_S3_ACCESSKEY", ACCESS_KEY), ("FERRY_SECRET_S3_SECRETKEY", SECRET_KEY)],
    )
    .await
}

fn location(endpoint: &str, key: &str) -> Location {
    Location::new(
        "s3",
        format!(
            "{{endpoint: '{endpoint}', insecure: true, bucket: {BUCKET}, accessKeySecret: {{name: s3, key: accessKey}}, secretKeySecret: {{name: s3, key: secretKey}}}}"
        ),
        key,
    )
}

fn store(endpoint: &str) -> Result<Arc<dyn ObjectStore>> {
    Ok(Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(format!("http://{endpoint}"))
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()?,
    ))
}

/// A peer command line, or why it cannot run.
fn tool(path: &str, install: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() { Ok(p) } else { bail!("{path} is missing: apt-get install {install}") }
}

fn rclone(endpoint: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(tool("/usr/bin/rclone", "rclone")?)
        .args(args)
        .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
        .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", format!("http://{endpoint}"))
        .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", ACCESS_KEY)
        .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("RCLONE_CONFIG_BENCH_REGION", "us-east-1")
        // rclone's AWS SDK fails on a CA bundle it is pointed at for plain http.
        .env_remove("AWS_CA_BUNDLE")
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("rclone {args:?} failed: {status}");
    }
    Ok(())
}

fn aws(endpoint: &str, args: &[&str]) -> Result<()> {
    // Debian's awscli (v2); a pyenv shim earlier on PATH may be v1.
    let status = Command::new(tool("/usr/bin/aws", "awscli")?)
        .arg("--endpoint-url")
        .arg(format!("http://{endpoint}"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("aws {args:?} failed: {status}");
    }
    Ok(())
}

async fn direct_put(store: &Arc<dyn ObjectStore>, key: &str, src: &Path) -> Result<()> {
    let upload = store.put_multipart(&StorePath::from(key)).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART as usize);
    let mut file = tokio::fs::File::open(src).await?;
    loop {
        let mut buf = Vec::with_capacity(PART as usize);
        let n = (&mut file).take(PART).read_to_end(&mut buf).await?;
        if n == 0 {
            break;
        }
        writer.wait_for_capacity(4).await?;
        writer.write(&buf);
    }
    writer.finish().await?;
    Ok(())
}

async fn direct_get(store: &Arc<dyn ObjectStore>, key: &str, dst: &Path) -> Result<()> {
    let mut stream = store.get(&StorePath::from(key)).await?.into_stream();
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(dst).await?);
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await?;
    Ok(())
}

fn upload_report(log: &Path) -> Result<(u64, u64, u64)> {
    let text = std::fs::read_to_string(log)?;
    let line =
        text.lines().rev().find(|l| l.contains("multipart upload done")).context("no upload report in the log")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let f = &v["fields"];
    let n = |k: &str| f[k].as_u64().context("bad upload report");
    Ok((n("parts")?, n("reused")?, n("bytes_sent")?))
}

fn journaled_parts(s3: &S3sFs, key: &str) -> usize {
    std::fs::read(s3.object(&format!(".ferry-uploads/{key}.upload.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["parts"].as_object().map(|p| p.len()))
        .unwrap_or(0)
}

pub async fn bench(plan: Plan) -> Result<()> {
    std::fs::create_dir_all(&plan.dir)?;
    let dir = plan.dir.canonicalize()?;
    if plan.transfers {
        transfers(&dir, plan.size_mib, plan.rounds).await?;
    }
    if plan.big_gib > 0 {
        let s3 = S3sFs::start();
        big(&s3, &dir, plan.big_gib).await?;
    }
    if plan.files > 0 {
        small_files(&dir, plan.files, plan.rounds).await?;
    }
    Ok(())
}

async fn transfers(dir: &Path, size_mib: u64, rounds: usize) -> Result<()> {
    let dir = dir.to_path_buf();
    let size = size_mib << 20;
    let src = dir.join("s3-src.bin");
    write_pattern(&src, size)?;
    let s3 = S3sFs::start();
    let endpoint = s3.endpoint();
    println!(
        "S3 transfers of {size_mib} MiB against s3s-fs on 127.0.0.1, median of {rounds} interleaved rounds \
         (part size 8 MiB, 4 parts in flight for Ferry and object_store); CPU is user + sys of the process doing the work"
    );
    let driver = s3_driver(&dir, "s3-driver").await?;
    let direct = store(&endpoint)?;
    let back = dir.join("s3-back.bin");
    let (srcs, backs) = (src.to_string_lossy().to_string(), back.to_string_lossy().to_string());
    let at = location(&endpoint, "ferry.bin");
    let tidy = |key: &'static str| {
        let (object, back) = (s3.object(key), back.clone());
        Box::new(move || {
            let _ = std::fs::remove_file(&object);
            let _ = std::fs::remove_file(&back);
        }) as Box<dyn Fn() + Send + Sync>
    };
    let (d, at_, src_, back_, direct_, ep) = (&driver, &at, &src, &back, &direct, endpoint.as_str());
    let (srcs, backs) = (srcs.as_str(), backs.as_str());
    let contenders = vec![
        Contender {
            name: "ferry-driver-s3 (gRPC)".into(),
            worker: Worker::Process(driver.child.id()),
            save: op(move || async move { Ok(d.client.save(at_, src_).await?) }),
            load: op(move || async move {
                d.client.load(at_, back_).await?;
                anyhow::ensure!(std::fs::metadata(back_)?.len() == size, "Ferry loaded a wrong size");
                Ok(())
            }),
            tidy: tidy("ferry.bin"),
        },
        Contender {
            name: "object_store direct".into(),
            worker: Worker::ThisProcess,
            save: op(move || direct_put(direct_, "direct.bin", src_)),
            load: op(move || direct_get(direct_, "direct.bin", back_)),
            tidy: tidy("direct.bin"),
        },
        Contender {
            name: "rclone copyto".into(),
            worker: Worker::Commands,
            save: op(move || async move { rclone(ep, &["copyto", srcs, &format!("bench:{BUCKET}/rclone.bin")]) }),
            load: op(move || async move { rclone(ep, &["copyto", &format!("bench:{BUCKET}/rclone.bin"), backs]) }),
            tidy: tidy("rclone.bin"),
        },
        Contender {
            name: "aws s3 cp (awscli v2)".into(),
            worker: Worker::Commands,
            save: op(move || async move { aws(ep, &["s3", "cp", "--quiet", srcs, &format!("s3://{BUCKET}/aws.bin")]) }),
            load: op(
                move || async move { aws(ep, &["s3", "cp", "--quiet", &format!("s3://{BUCKET}/aws.bin"), backs]) },
            ),
            tidy: tidy("aws.bin"),
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
    let _ = std::fs::remove_file(s3.object("ferry.bin"));
    println!("  OpenStream first byte of the {} MiB object: {}", size_mib, crate::ms(first));
    println!("  driver peak RSS over the rounds and the stream: {rss:.1} MiB");

    // Killed at half-way, resumed by a new process.
    let mut killed = s3_driver(&dir, "s3-killed").await?;
    let at = location(&endpoint, "resume.bin");
    let client = killed.client.clone();
    let (a, s) = (at.clone(), src.clone());
    let save = tokio::spawn(async move { client.save(&a, &s).await });
    let parts = size.div_ceil(PART) as usize;
    while journaled_parts(&s3, "resume.bin") < parts / 2 {
        if save.is_finished() {
            bail!("the save finished before half-way; use a larger --size-mib");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    killed.kill();
    let _ = save.await;
    let on_server = s3.stored_parts();
    let journaled = journaled_parts(&s3, "resume.bin");
    let resumed = s3_driver(&dir, "s3-resumed").await?;
    resumed.client.save(&at, &src).await?;
    let (_, reused, sent) = upload_report(&resumed.log)?;
    anyhow::ensure!(std::fs::metadata(s3.object("resume.bin"))?.len() == size, "resumed object has a wrong size");
    let lost = size - on_server as u64 * PART;
    println!(
        "Resume after SIGKILL at {journaled}/{parts} parts journaled ({on_server} stored on the server): {reused} parts reused, {:.0} MiB sent again; \
         beyond what was lost at the kill ({:.0} MiB in flight): {:.0} MiB (goal <= one part, {} MiB)",
        sent as f64 / 1048576.0,
        lost as f64 / 1048576.0,
        sent.saturating_sub(lost) as f64 / 1048576.0,
        PART >> 20
    );
    drop(resumed);
    let _ = std::fs::remove_file(s3.object("resume.bin"));
    std::fs::remove_file(&src)?;
    Ok(())
}

/// Peak RSS of the driver saving and loading a file of `gib` GiB. The source
/// is sparse (its zeros cost no disk), so the disk holds the object and the
/// loaded copy only.
async fn big(s3: &S3sFs, dir: &Path, gib: u64) -> Result<()> {
    let size = gib << 30;
    let src = dir.join("s3-big.bin");
    std::fs::File::create(&src)?.set_len(size)?;
    let driver = s3_driver(dir, "s3-big").await?;
    let at = location(&s3.endpoint(), "big.bin");
    let save = timed(|| async { Ok(driver.client.save(&at, &src).await?) }).await?;
    let after_save = driver.rss_mib()?;
    let back = dir.join("s3-big-back.bin");
    let load = timed(|| async { Ok(driver.client.load(&at, &back).await?) }).await?;
    anyhow::ensure!(std::fs::metadata(&back)?.len() == size, "loaded a wrong size");
    println!(
        "{gib} GiB file: save {} (peak RSS {after_save:.1} MiB), load {} (peak RSS {:.1} MiB); goal <= 128 MiB",
        rate(size, save),
        rate(size, load),
        driver.rss_mib()?
    );
    std::fs::remove_file(&back)?;
    std::fs::remove_file(&src)?;
    let _ = std::fs::remove_file(s3.object("big.bin"));
    Ok(())
}

/// A directory of `n` files of 1–64 KiB, saved and loaded with `archive:
/// none`, against s3s-fs beside `aws s3 cp --recursive` and `rclone copy`.
async fn small_files(dir: &Path, n: usize, rounds: usize) -> Result<()> {
    let tree = dir.join("s3-tree");
    let _ = std::fs::remove_dir_all(&tree);
    let mut bytes = 0u64;
    for i in 0..n {
        let sub = tree.join(format!("d{:02}", i % 50));
        std::fs::create_dir_all(&sub)?;
        let len = 1024 + (i * 7919) % (63 * 1024);
        bytes += len as u64;
        std::fs::write(sub.join(format!("f{i:05}.bin")), vec![(i % 251) as u8; len])?;
    }
    let s3 = S3sFs::start();
    let endpoint = s3.endpoint();
    println!(
        "A directory of {n} files (1-64 KiB, {:.0} MiB, archive: none) against s3s-fs, median of {rounds} interleaved rounds",
        bytes as f64 / 1048576.0
    );
    let driver = s3_driver(dir, "s3-small").await?;
    let at = location(&endpoint, "ferry-tree");
    let back = dir.join("s3-tree-back");
    let (trees, backs) = (tree.to_string_lossy().to_string(), back.to_string_lossy().to_string());
    let tidy = |prefix: &'static str| {
        let (objects, back) = (s3.object(prefix), back.clone());
        Box::new(move || {
            let _ = std::fs::remove_dir_all(&objects);
            let _ = std::fs::remove_dir_all(&back);
        }) as Box<dyn Fn() + Send + Sync>
    };
    let (d, at_, tree_, back_, ep) = (&driver, &at, &tree, &back, endpoint.as_str());
    let (trees, backs) = (trees.as_str(), backs.as_str());
    let contenders = vec![
        Contender {
            name: "ferry-driver-s3 (gRPC)".into(),
            worker: Worker::Process(driver.child.id()),
            save: op(move || async move { Ok(d.client.save(at_, tree_).await?) }),
            load: op(move || async move { Ok(d.client.load(at_, back_).await?) }),
            tidy: tidy("ferry-tree"),
        },
        Contender {
            name: "rclone copy".into(),
            worker: Worker::Commands,
            // The trailing `/` says "a directory": without it rclone first
            // HEADs the key as a file, which s3s-fs answers with 500 for a
            // prefix, and rclone spends a minute retrying.
            save: op(move || async move { rclone(ep, &["copy", trees, &format!("bench:{BUCKET}/rclone-tree/")]) }),
            load: op(move || async move { rclone(ep, &["copy", &format!("bench:{BUCKET}/rclone-tree/"), backs]) }),
            tidy: tidy("rclone-tree"),
        },
        Contender {
            name: "aws s3 cp --recursive".into(),
            worker: Worker::Commands,
            save: op(move || async move {
                aws(ep, &["s3", "cp", "--quiet", "--recursive", trees, &format!("s3://{BUCKET}/aws-tree")])
            }),
            load: op(move || async move {
                aws(ep, &["s3", "cp", "--quiet", "--recursive", &format!("s3://{BUCKET}/aws-tree"), backs])
            }),
            tidy: tidy("aws-tree"),
        },
    ];
    let figures = contest::run(&contenders, rounds).await;
    contest::print(&contenders, &figures, Moved::Objects { count: n, bytes });
    drop(contenders);
    std::fs::remove_dir_all(&tree)?;
    Ok(())
}
