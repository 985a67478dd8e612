//! `ferry-bench s3`: ferry-driver-s3 through its socket against a real S3
//! server (s3s-fs), beside `rclone`, `aws s3 cp` and object_store used
//! directly, all on the same server in one run. Then a killed-and-resumed
//! save, OpenStream's first byte, peak RSS on a large file, and a directory
//! of many small files (on moto: s3s-fs cannot serve directory keys).

use crate::{Driver, rate, timed, write_pattern};
use anyhow::{Context, Result, bail};
use ferry_sdk::client::Location;
use ferry_test_servers::{ACCESS_KEY, BUCKET, Moto, S3sFs, SECRET_KEY};
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

/// One line of figures; for a peer, Ferry's speed as a multiple of the peer's.
fn row(what: &str, save: Duration, load: Duration, bytes: u64, ferry: Option<(Duration, Duration)>) {
    let vs = |f: Duration, p: Duration| format!("Ferry {:.2}x", p.as_secs_f64() / f.as_secs_f64());
    match ferry {
        Some((fs, fl)) => println!(
            "  {what:<24} save {:>10} ({})  load {:>10} ({})",
            rate(bytes, save),
            vs(fs, save),
            rate(bytes, load),
            vs(fl, load)
        ),
        None => println!("  {what:<24} save {:>10}  load {:>10}", rate(bytes, save), rate(bytes, load)),
    }
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
        transfers(&dir, plan.size_mib).await?;
    }
    if plan.big_gib > 0 {
        let s3 = S3sFs::start();
        big(&s3, &dir, plan.big_gib).await?;
    }
    if plan.files > 0 {
        small_files(&dir, plan.files).await?;
    }
    Ok(())
}

async fn transfers(dir: &Path, size_mib: u64) -> Result<()> {
    let dir = dir.to_path_buf();

    let size = size_mib << 20;
    let src = dir.join("s3-src.bin");
    write_pattern(&src, size)?;
    let s3 = S3sFs::start();
    let endpoint = s3.endpoint();
    println!(
        "S3 transfers of {} MiB against s3s-fs on 127.0.0.1 (part size 8 MiB, 4 parts in flight for Ferry and object_store)",
        size_mib
    );

    // Ferry through gRPC.
    let driver = s3_driver(&dir, "s3-driver").await?;
    let at = location(&endpoint, "ferry.bin");
    let back = dir.join("s3-back.bin");
    let f_save = timed(|| async { Ok(driver.client.save(&at, &src).await?) }).await?;
    let f_load = timed(|| async { Ok(driver.client.load(&at, &back).await?) }).await?;
    anyhow::ensure!(std::fs::metadata(&back)?.len() == size, "Ferry loaded a wrong size");
    std::fs::remove_file(&back)?;
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
    // Each peer's object goes once measured, so a run on tmpfs holds at most
    // the source, one object and one copy.
    let _ = std::fs::remove_file(s3.object("ferry.bin"));
    let ferry = (f_save, f_load);
    row("ferry-driver-s3 (gRPC)", f_save, f_load, size, None);

    let direct = store(&endpoint)?;
    let d_save = timed(|| direct_put(&direct, "direct.bin", &src)).await?;
    let d_load = timed(|| direct_get(&direct, "direct.bin", &back)).await?;
    std::fs::remove_file(&back)?;
    let _ = std::fs::remove_file(s3.object("direct.bin"));
    row("object_store direct", d_save, d_load, size, Some(ferry));

    let srcs = src.to_string_lossy().to_string();
    let backs = back.to_string_lossy().to_string();
    match async {
        let s =
            timed(|| async { rclone(&endpoint, &["copyto", &srcs, &format!("bench:{BUCKET}/rclone.bin")]) }).await?;
        let l =
            timed(|| async { rclone(&endpoint, &["copyto", &format!("bench:{BUCKET}/rclone.bin"), &backs]) }).await?;
        Ok::<_, anyhow::Error>((s, l))
    }
    .await
    {
        Ok((s, l)) => row("rclone copyto", s, l, size, Some(ferry)),
        Err(e) => println!("  rclone: not run: {e}"),
    }
    let _ = std::fs::remove_file(&back);
    let _ = std::fs::remove_file(s3.object("rclone.bin"));
    match async {
        let s = timed(|| async { aws(&endpoint, &["s3", "cp", "--quiet", &srcs, &format!("s3://{BUCKET}/aws.bin")]) })
            .await?;
        let l = timed(|| async { aws(&endpoint, &["s3", "cp", "--quiet", &format!("s3://{BUCKET}/aws.bin"), &backs]) })
            .await?;
        Ok::<_, anyhow::Error>((s, l))
    }
    .await
    {
        Ok((s, l)) => row("aws s3 cp (awscli v2)", s, l, size, Some(ferry)),
        Err(e) => println!("  aws: not run: {e}"),
    }
    let _ = std::fs::remove_file(&back);
    println!("  OpenStream first byte of the {} MiB object: {}", size_mib, crate::ms(first));
    println!("  driver peak RSS over save, load and stream: {rss:.1} MiB");
    let _ = std::fs::remove_file(s3.object("aws.bin"));

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
/// none`, against moto beside `aws s3 cp --recursive` and `rclone copy`.
async fn small_files(dir: &Path, n: usize) -> Result<()> {
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
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    aws(&endpoint, &["s3", "mb", &format!("s3://{BUCKET}")])?;
    println!(
        "A directory of {n} files (1-64 KiB, {:.0} MiB) against moto (single Python process)",
        bytes as f64 / 1048576.0
    );
    let driver = s3_driver(dir, "s3-small").await?;
    let at = location(&endpoint, "ferry-tree");
    let back = dir.join("s3-tree-back");
    let save = timed(|| async { Ok(driver.client.save(&at, &tree).await?) }).await?;
    let load = timed(|| async { Ok(driver.client.load(&at, &back).await?) }).await?;
    let per_s = |d: Duration| format!("{:.0} objects/s", n as f64 / d.as_secs_f64());
    println!("  ferry-driver-s3          save {:>16}  load {:>16}", per_s(save), per_s(load));
    let _ = std::fs::remove_dir_all(&back);
    let trees = tree.to_string_lossy().to_string();
    let backs = back.to_string_lossy().to_string();
    match async {
        let s =
            timed(|| async { rclone(&endpoint, &["copy", &trees, &format!("bench:{BUCKET}/rclone-tree")]) }).await?;
        let l =
            timed(|| async { rclone(&endpoint, &["copy", &format!("bench:{BUCKET}/rclone-tree"), &backs]) }).await?;
        Ok::<_, anyhow::Error>((s, l))
    }
    .await
    {
        Ok((s, l)) => println!("  rclone copy              save {:>16}  load {:>16}", per_s(s), per_s(l)),
        Err(e) => println!("  rclone: not run: {e}"),
    }
    let _ = std::fs::remove_dir_all(&back);
    match async {
        let s = timed(|| async {
            aws(&endpoint, &["s3", "cp", "--quiet", "--recursive", &trees, &format!("s3://{BUCKET}/aws-tree")])
        })
        .await?;
        let l = timed(|| async {
            aws(&endpoint, &["s3", "cp", "--quiet", "--recursive", &format!("s3://{BUCKET}/aws-tree"), &backs])
        })
        .await?;
        Ok::<_, anyhow::Error>((s, l))
    }
    .await
    {
        Ok((s, l)) => println!("  aws s3 cp --recursive    save {:>16}  load {:>16}", per_s(s), per_s(l)),
        Err(e) => println!("  aws: not run: {e}"),
    }
    let _ = std::fs::remove_dir_all(&back);
    std::fs::remove_dir_all(&tree)?;
    Ok(())
}
