//! Lifecycle (launch, socket, SIGTERM, restarts) and resource use. These start
//! their own driver processes, so they need managed launch.

use crate::case;
use crate::case::Case;
use crate::context::{Cx, ManagedDriver, same};
use anyhow::{Context as _, bail, ensure};
use ferry_sdk::client::{DriverClient, Location};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fresh driver for one lifecycle case, on its own socket.
fn start(cx: &Cx, tag: &str) -> anyhow::Result<(ManagedDriver, PathBuf)> {
    let socket = cx.path(&format!("{tag}/artifact-plugins/{}/socket", cx.run.profile.driver.name));
    let _ = std::fs::remove_dir_all(socket.parent().expect("parent"));
    let driver = ManagedDriver::start(&cx.run.profile, &cx.run.work, &socket, &cx.path(&format!("{tag}.stderr")))?;
    Ok((driver, socket))
}

async fn connect(socket: &std::path::Path) -> anyhow::Result<DriverClient> {
    Ok(DriverClient::connect(socket, Duration::from_secs(10)).await?)
}

fn grace(cx: &Cx) -> Duration {
    Duration::from_secs(cx.run.profile.limits.sigterm_grace_seconds)
}

/// Waits for `path` to exist, up to `limit`; returns how long it took.
async fn appears(path: &std::path::Path, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !path.exists() {
        ensure!(started.elapsed() < limit, "{} did not appear within {limit:?}", path.display());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(started.elapsed())
}

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "AD-LIFE-001",
            Must,
            ["Lifecycle"],
            [Managed],
            "Launched as `command… <socket>`, it serves at exactly that path",
            |cx| {
                let (_driver, socket) = start(&cx, "l1")?;
                appears(&socket, Duration::from_secs(120)).await?;
                use std::os::unix::fs::FileTypeExt;
                ensure!(
                    std::fs::symlink_metadata(&socket)?.file_type().is_socket(),
                    "{} is not a socket",
                    socket.display()
                );
                connect(&socket).await?.supports_save_stream().await?;
                Ok(())
            }
        ),
        case!(
            "AD-LIFE-002",
            Must,
            ["Lifecycle"],
            [Managed],
            "Socket and READY within Argo's limits (and the profile's startupMs)",
            |cx| {
                let started = Instant::now();
                let (_driver, socket) = start(&cx, "l2")?;
                let socket_ms = appears(&socket, Duration::from_secs(120)).await?;
                let client = connect(&socket).await?;
                client.supports_save_stream().await?;
                let ready = started.elapsed();
                cx.observe("socketMs", socket_ms.as_millis() as u64);
                cx.observe("readyMs", ready.as_millis() as u64);
                ensure!(
                    ready - socket_ms < Duration::from_secs(5),
                    "READY {:?} after the socket appeared",
                    ready - socket_ms
                );
                let limit = Duration::from_millis(cx.run.profile.limits.startup_ms);
                ensure!(ready < limit, "ready after {ready:?}, the profile allows {limit:?}");
                Ok(())
            }
        ),
        case!(
            "AD-LIFE-004",
            Should,
            ["Lifecycle"],
            [Managed],
            "A missing socket directory is created, or the driver exits non-zero fast",
            |cx| {
                let (mut driver, socket) = start(&cx, "l4")?;
                let started = Instant::now();
                loop {
                    if socket.exists() {
                        cx.observe("createsSocketDir", true);
                        return Ok(());
                    }
                    if let Some(status) = driver.try_exit()? {
                        cx.observe("createsSocketDir", false);
                        ensure!(!status.success(), "exited 0 without serving");
                        return Ok(());
                    }
                    ensure!(
                        started.elapsed() < Duration::from_secs(5),
                        "alive without a socket after 5 s (Argo issue #16784)"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        ),
        case!("AD-LIFE-005", Should, ["Lifecycle"], [Managed], "A stale socket file at the path is replaced", |cx| {
            let socket = cx.path("l5/artifact-plugins/x/socket");
            std::fs::create_dir_all(socket.parent().expect("parent"))?;
            drop(std::os::unix::net::UnixListener::bind(&socket)?);
            ensure!(socket.exists(), "could not plant a stale socket");
            let _driver = ManagedDriver::start(&cx.run.profile, &cx.run.work, &socket, &cx.path("l5.stderr"))?;
            connect(&socket)
                .await
                .context("the driver does not serve over a stale socket")?
                .supports_save_stream()
                .await?;
            Ok(())
        }),
        case!(
            "AD-LIFE-006",
            Should,
            ["Lifecycle"],
            [Managed],
            "Without a socket argument the driver exits non-zero with a message",
            |cx| {
                let stderr = cx.path("l6.stderr");
                let mut driver =
                    ManagedDriver::start_with_args(&cx.run.profile, &cx.run.work, &[], &cx.path("l6-none"), &stderr)?;
                let started = Instant::now();
                let status = loop {
                    if let Some(s) = driver.try_exit()? {
                        break s;
                    }
                    ensure!(
                        started.elapsed() < Duration::from_secs(5),
                        "still running 5 s after starting without arguments"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                ensure!(!status.success(), "exited 0 without a socket path");
                ensure!(!std::fs::read_to_string(&stderr)?.trim().is_empty(), "no message on stderr");
                Ok(())
            }
        ),
        case!(
            "AD-LIFE-007",
            Must,
            ["Lifecycle"],
            [Managed],
            "SIGTERM while idle: exit code 0 within the grace period",
            |cx| {
                let (mut driver, socket) = start(&cx, "l7")?;
                let client = connect(&socket).await?;
                client.supports_save_stream().await?;
                let (code, took) = driver.terminate(grace(&cx))?;
                cx.observe("sigtermExitMs", took.as_millis() as u64);
                ensure!(code == Some(0), "exit code {code:?} on SIGTERM; Argo requires 0");
                drop(client);
                Ok(())
            }
        ),
        case!(
            "AD-LIFE-008",
            Must,
            ["Lifecycle"],
            [Managed, Writable],
            "SIGTERM during an OpenStream and a Save: exit 0, no hang, no partial object",
            |cx| {
                let (mut driver, socket) = start(&cx, "l8")?;
                let client = connect(&socket).await?;
                let big = cx.payload(cx.run.profile.limits.large_file_bytes as usize, 8);
                let src = cx.path("src/l8");
                std::fs::write(&src, &big)?;
                let at = Location::new(&cx.run.profile.driver.name, &cx.run.configuration, cx.key("big"));
                client.save(&at, &src).await?;
                let target = Location::new(&cx.run.profile.driver.name, &cx.run.configuration, cx.key("during"));
                let (c1, c2, a1, t2, s2) = (client.clone(), client.clone(), at.clone(), target.clone(), src.clone());
                let stream = tokio::spawn(async move {
                    let mut s = c1.open_stream(&a1).await?;
                    while let Some(chunk) = futures::StreamExt::next(&mut s).await {
                        chunk?;
                    }
                    Ok::<_, ferry_sdk::Error>(())
                });
                let save = tokio::spawn(async move { c2.save(&t2, &s2).await });
                tokio::time::sleep(Duration::from_millis(20)).await;
                let (code, _) = tokio::task::block_in_place(|| driver.terminate(grace(&cx)))?;
                ensure!(code == Some(0), "exit code {code:?}");
                let bound = grace(&cx);
                let _ = tokio::time::timeout(bound, stream).await.context("OpenStream hung after the driver exited")?;
                let saved = tokio::time::timeout(bound, save).await.context("Save hung after the driver exited")??;
                // A new driver process must see either the whole object or none.
                let (_again, socket2) = start(&cx, "l8b")?;
                let client2 = connect(&socket2).await?;
                let dst = cx.path("l8.tmp");
                match client2.load(&target, &dst).await {
                    Ok(()) => same(&std::fs::read(&dst)?, &big, "the object saved across SIGTERM"),
                    Err(_) => {
                        ensure!(saved.is_err(), "Save reported success but the object is missing");
                        Ok(())
                    }
                }
            }
        ),
        case!("AD-LIFE-009", Should, ["Lifecycle"], [Managed], "The socket file is removed on exit", |cx| {
            let (mut driver, socket) = start(&cx, "l9")?;
            connect(&socket).await?.supports_save_stream().await?;
            driver.terminate(grace(&cx))?;
            ensure!(!socket.exists(), "{} still exists", socket.display());
            Ok(())
        }),
        case!(
            "AD-LIFE-010",
            Must,
            ["Lifecycle"],
            [Managed, Writable, Persistent],
            "Objects survive a restart of the driver",
            |cx| {
                let data = cx.payload(100_000, 10);
                let (mut first, socket) = start(&cx, "l10")?;
                let client = connect(&socket).await?;
                let src = cx.path("src/l10");
                std::fs::write(&src, &data)?;
                let at = Location::new(&cx.run.profile.driver.name, &cx.run.configuration, cx.key("persist"));
                client.save(&at, &src).await?;
                first.terminate(grace(&cx))?;
                drop(client);
                let _second = ManagedDriver::start(&cx.run.profile, &cx.run.work, &socket, &cx.path("l10b.stderr"))?;
                let client = connect(&socket).await?;
                let dst = cx.path("l10.tmp");
                client.load(&at, &dst).await.context("Load after restart")?;
                same(&std::fs::read(&dst)?, &data, "after restart")
            }
        ),
        case!("AD-LIFE-011", Info, ["Lifecycle"], [], "gRPC health service (recorded)", |cx| {
            let channel = DriverClient::channel(cx.client().socket(), Duration::from_secs(5)).await?;
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            let ok = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok();
            cx.observe("health", ok);
            Ok(())
        }),
        case!(
            "AD-LIFE-013",
            Info,
            ["Lifecycle"],
            [Managed],
            "A unix:// prefix on the socket argument (recorded)",
            |cx| {
                let socket = cx.path("l13/socket");
                let arg = format!("unix://{}", socket.display());
                let _d = ManagedDriver::start_with_args(
                    &cx.run.profile,
                    &cx.run.work,
                    &[arg],
                    &socket,
                    &cx.path("l13.stderr"),
                )?;
                let ok = match appears(&socket, Duration::from_secs(5)).await {
                    Ok(_) => connect(&socket).await.is_ok(),
                    Err(_) => false,
                };
                cx.observe("unixPrefixTolerated", ok);
                Ok(())
            }
        ),
        case!(
            "AD-RES-002",
            Must,
            ["Resources"],
            [Managed, Writable],
            "Peak RSS of a fresh driver moving a large file stays within limits.maxRssMiB",
            |cx| {
                let size = cx.run.profile.limits.large_file_bytes as usize;
                let data = cx.payload(size, 20);
                let main = cx.run.driver.as_ref().expect("gated on Managed");
                cx.observe(
                    "peakRssWholeRunMiB",
                    main.lock().map_err(|_| anyhow::anyhow!("driver lock"))?.peak_rss_kib()? / 1024,
                );
                // A fresh process: its high-water mark covers this transfer only.
                let (driver, socket) = start(&cx, "res2")?;
                let client = connect(&socket).await?;
                let at = Location::new(&cx.run.profile.driver.name, &cx.run.configuration, cx.key("rss"));
                let src = cx.path("src/rss");
                std::fs::write(&src, &data)?;
                client.save(&at, &src).await?;
                let dst = cx.path("rss.tmp");
                client.load(&at, &dst).await?;
                same(&std::fs::read(&dst)?, &data, "Load")?;
                let mut stream = client.open_stream(&at).await?;
                let mut n = 0;
                while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                    n += chunk?.len();
                }
                ensure!(n == size, "streamed {n} of {size} bytes");
                if cx.run.supports_save_stream {
                    client.save_stream(&at, Cx::chunks(&data, 2 << 20)).await?;
                }
                let peak = driver.peak_rss_kib()? / 1024;
                cx.observe("peakRssMiB", peak);
                let limit = cx.run.profile.limits.max_rss_mib;
                ensure!(
                    peak <= limit,
                    "peak RSS {peak} MiB over the {limit} MiB limit while moving {} MiB",
                    size >> 20
                );
                Ok(())
            }
        ),
        case!("AD-RES-004", Must, ["Resources"], [Managed], "No descriptor leak over the whole run", |cx| {
            let driver = cx.run.driver.as_ref().expect("gated on Managed");
            let fds = driver.lock().map_err(|_| anyhow::anyhow!("driver lock"))?.open_fds()?;
            let baseline = cx.run.baseline_fds.context("no descriptor baseline was taken")?;
            cx.observe("openFds", serde_json::json!({"start": baseline, "end": fds}));
            if fds > baseline + 10 {
                bail!("{fds} descriptors open at the end of the run, {baseline} at the start");
            }
            Ok(())
        }),
    ]
}
