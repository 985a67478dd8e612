//! Configuration errors, malformed requests and concurrency.

use crate::case;
use crate::case::Case;
use crate::context::{Cx, same};
use anyhow::{Context as _, bail, ensure};
use ferry_sdk::client::{DriverClient, Location};
use ferry_sdk::pb;
use std::time::{Duration, Instant};

/// Runs every RPC that takes an artifact against `at`; each must fail cleanly.
async fn every_rpc_fails(cx: &Cx, at: &Location, what: &str) -> anyhow::Result<Vec<String>> {
    let c = cx.client();
    let src = cx.path("src/conf");
    std::fs::write(&src, b"x")?;
    let mut messages = Vec::new();
    messages.push(cx.failed_cleanly(&format!("Save with {what}"), c.save(at, &src).await)?.to_string());
    messages.push(cx.failed_cleanly(&format!("Load with {what}"), c.load(at, &cx.path("conf.tmp")).await)?.to_string());
    messages.push(cx.failed_cleanly(&format!("Delete with {what}"), c.delete(at).await)?.to_string());
    messages.push(cx.failed_cleanly(&format!("ListObjects with {what}"), c.list(at).await)?.to_string());
    if let Err(e) = c.open_stream(at).await {
        messages.push(e.to_string());
    } else {
        bail!("OpenStream with {what} succeeded");
    }
    Ok(messages)
}

pub fn cases() -> Vec<Case> {
    vec![
        case!("AD-CONF-001", Must, ["Core"], [Writable], "An empty configuration fails cleanly for every RPC", |cx| {
            let at = Location::new(&cx.run.profile.driver.name, "", cx.key("f"));
            every_rpc_fails(&cx, &at, "an empty configuration").await?;
            cx.still_serving().await
        }),
        case!("AD-CONF-002", Must, ["Core"], [Writable], "Malformed configurations fail cleanly", |cx| {
            let huge = "[".repeat(3 << 20);
            let mut mentions = true;
            for (what, config) in
                [("`{: [`", "{: ["), ("control characters", "\u{1}\u{2}\u{3}"), ("a 3 MiB string", huge.as_str())]
            {
                let at = Location::new(&cx.run.profile.driver.name, config, cx.key("f"));
                let src = cx.path("src/m");
                std::fs::write(&src, b"x")?;
                let err = cx.failed_cleanly(&format!("Save with {what}"), cx.client().save(&at, &src).await)?;
                let msg = err.to_string().to_lowercase();
                mentions &=
                    msg.contains("config") || msg.contains("pars") || msg.contains("yaml") || msg.contains("json");
            }
            cx.observe("configErrorsMentionConfiguration", mentions);
            cx.still_serving().await
        }),
        case!(
            "AD-CONF-003",
            Must,
            ["Core"],
            [BadConfigurations],
            "The profile's bad configurations fail cleanly within the deadline",
            |cx| {
                let deadline = Duration::from_secs(cx.run.profile.limits.rpc_deadline_seconds);
                for bad in &cx.run.profile.bad_configurations {
                    let at = Location::new(&cx.run.profile.driver.name, &bad.configuration, cx.key("f"));
                    let started = Instant::now();
                    let r = tokio::time::timeout(deadline, cx.client().load(&at, &cx.path("bad.tmp"))).await;
                    let r = r.map_err(|_| anyhow::anyhow!("{}: no answer within {deadline:?}", bad.name))?;
                    cx.failed_cleanly(&format!("Load with {}", bad.name), r)?;
                    ensure!(started.elapsed() < deadline, "{}: took {:?}", bad.name, started.elapsed());
                }
                Ok(())
            }
        ),
        case!(
            "AD-CONF-004",
            Must,
            ["Core", "Security"],
            [Secrets],
            "No secret appears in any error or in the driver's output",
            |cx| {
                let secrets = cx
                    .run
                    .profile
                    .secrets
                    .iter()
                    .map(|s| crate::profile::expand_env(s))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut texts = Vec::new();
                for bad in &cx.run.profile.bad_configurations {
                    let at = Location::new(&cx.run.profile.driver.name, &bad.configuration, cx.key("f"));
                    if let Err(e) = cx.client().load(&at, &cx.path("s.tmp")).await {
                        texts.push(e.to_string());
                    }
                }
                for secret in &secrets {
                    let config = format!("{}\n# {secret}\nnotAField: {secret}", cx.run.configuration);
                    let at = Location::new(&cx.run.profile.driver.name, &config, cx.key("f"));
                    if let Err(e) = cx.client().load(&at, &cx.path("s2.tmp")).await {
                        texts.push(e.to_string());
                    }
                }
                if let Some(driver) = &cx.run.driver {
                    let path = driver.lock().map_err(|_| anyhow::anyhow!("driver lock"))?.stderr_path.clone();
                    texts.push(std::fs::read_to_string(path).unwrap_or_default());
                }
                for secret in secrets.iter().filter(|s| !s.is_empty()) {
                    ensure!(
                        !texts.iter().any(|t| t.contains(secret.as_str())),
                        "a secret from the profile appears in driver output"
                    );
                }
                Ok(())
            }
        ),
        case!("AD-CONF-005", Must, ["Core"], [Writable, Alt], "Per-request configurations are isolated", |cx| {
            let alt = cx.run.alt_configuration.clone().expect("gated on Alt");
            let main_at = cx.at("k");
            let alt_at = cx.with_config(&alt, "k");
            let (a, b) = (cx.payload(1000, 1), cx.payload(2000, 2));
            let (sa, sb) = (cx.path("src/a"), cx.path("src/b"));
            std::fs::write(&sa, &a)?;
            std::fs::write(&sb, &b)?;
            let (ra, rb) = tokio::join!(cx.client().save(&main_at, &sa), cx.client().save(&alt_at, &sb));
            ra?;
            rb?;
            same(&cx.stream_location(&main_at).await?, &a, "main configuration")?;
            same(&cx.stream_location(&alt_at).await?, &b, "alt configuration")?;
            if !cx.run.profile.claims.delete {
                return Ok(());
            }
            cx.client().delete(&alt_at).await?;
            same(&cx.stream_location(&main_at).await?, &a, "main after deleting alt")
        }),
        case!(
            "AD-CONF-006",
            Info,
            ["Core"],
            [],
            "Unknown configuration fields (recorded as strict or lenient)",
            |cx| {
                let config = format!("{}\nnoSuchFieldXyz: 1", cx.run.configuration);
                let at = Location::new(&cx.run.profile.driver.name, &config, cx.key("f"));
                let strict = cx.client().is_directory(&at).await.is_err()
                    || cx.client().list(&at).await.is_err_and(|e| !Cx::is_not_found(&e));
                cx.observe("configStrictness", if strict { "strict" } else { "lenient" });
                Ok(())
            }
        ),
        case!(
            "AD-CONF-007",
            Should,
            ["Core"],
            [BadConfigurations],
            "Bad-configuration errors match the profile's expectErrorMatching",
            |cx| {
                for bad in &cx.run.profile.bad_configurations {
                    let Some(pattern) = &bad.expect_error_matching else { continue };
                    let re = regex::Regex::new(pattern).with_context(|| format!("{}: bad regex", bad.name))?;
                    let at = Location::new(&cx.run.profile.driver.name, &bad.configuration, cx.key("f"));
                    let err = cx.failed_cleanly(&bad.name, cx.client().load(&at, &cx.path("e.tmp")).await)?;
                    ensure!(
                        re.is_match(&err.to_string()),
                        "{}: {:?} does not match {pattern:?}",
                        bad.name,
                        err.to_string()
                    );
                }
                Ok(())
            }
        ),
        case!("AD-CONF-008", Must, ["Core"], [Writable], "A configuration error does not poison later calls", |cx| {
            for i in 0..5 {
                let at = Location::new(&cx.run.profile.driver.name, "{: [", cx.key("f"));
                let _ = cx.client().load(&at, &cx.path("p.tmp")).await;
                cx.round_trip(&format!("after{i}"), &cx.payload(100, i)).await?;
            }
            Ok(())
        }),
        case!("AD-PROTO-001", Must, ["Core"], [], "Requests without an artifact fail cleanly", |cx| {
            let mut raw = cx.client().raw();
            let clean = |r: Result<(bool, String), tonic::Status>, what: &str| -> anyhow::Result<()> {
                match r {
                    Ok((true, _)) => bail!("{what} without an artifact succeeded"),
                    Ok((false, e)) => ensure!(!e.is_empty(), "{what}: success=false without a message"),
                    Err(s) => ensure!(!s.message().is_empty(), "{what}: status without a message"),
                }
                Ok(())
            };
            let path = cx.path("nil.tmp").to_string_lossy().into_owned();
            clean(
                raw.load(pb::LoadArtifactRequest { input_artifact: None, path: path.clone() })
                    .await
                    .map(|r| (r.get_ref().success, r.get_ref().error.clone())),
                "Load",
            )?;
            clean(
                raw.save(pb::SaveArtifactRequest { path, output_artifact: None })
                    .await
                    .map(|r| (r.get_ref().success, r.get_ref().error.clone())),
                "Save",
            )?;
            clean(
                raw.delete(pb::DeleteArtifactRequest { artifact: None })
                    .await
                    .map(|r| (r.get_ref().success, r.get_ref().error.clone())),
                "Delete",
            )?;
            clean(
                raw.list_objects(pb::ListObjectsRequest { artifact: None })
                    .await
                    .map(|r| (r.get_ref().error.is_empty(), r.get_ref().error.clone())),
                "ListObjects",
            )?;
            clean(
                raw.is_directory(pb::IsDirectoryRequest { artifact: None })
                    .await
                    .map(|r| (r.get_ref().error.is_empty(), r.get_ref().error.clone())),
                "IsDirectory",
            )?;
            if let Ok(r) = raw.open_stream(pb::OpenStreamRequest { artifact: None }).await {
                let mut s = r.into_inner();
                if let Ok(Some(f)) = s.message().await {
                    ensure!(!f.error.is_empty(), "OpenStream without an artifact sent data");
                }
            }
            cx.still_serving().await
        }),
        case!("AD-PROTO-002", Must, ["Core"], [], "An artifact without a plugin block fails cleanly", |cx| {
            let art = pb::Artifact { name: "no-plugin".into(), ..Default::default() };
            let r = cx
                .client()
                .raw()
                .load(pb::LoadArtifactRequest {
                    input_artifact: Some(art),
                    path: cx.path("np.tmp").to_string_lossy().into(),
                })
                .await;
            match r {
                Ok(r) => ensure!(
                    !r.get_ref().success && !r.get_ref().error.is_empty(),
                    "Load without a plugin block succeeded"
                ),
                Err(s) => ensure!(!s.message().is_empty(), "status without a message"),
            }
            cx.still_serving().await
        }),
        case!(
            "AD-PROTO-004",
            Should,
            ["Core"],
            [Writable],
            "Informational Artifact fields do not change the outcome",
            |cx| {
                let data = cx.payload(500, 3);
                let src = cx.path("src/odd");
                std::fs::write(&src, &data)?;
                let mut art = cx.at("odd").to_artifact();
                art.path = "/some/where".into();
                art.mode = 0;
                art.from = "{{steps.x.outputs.artifacts.y}}".into();
                art.optional = true;
                art.sub_path = "ignored/sub".into();
                art.recurse_mode = true;
                art.deleted = true;
                art.from_expression = "true".into();
                let r = cx
                    .client()
                    .raw()
                    .save(pb::SaveArtifactRequest { path: src.to_string_lossy().into(), output_artifact: Some(art) })
                    .await?;
                ensure!(r.get_ref().success, "Save with informational fields failed: {}", r.get_ref().error);
                same(&cx.stream_bytes("odd").await?, &data, "OpenStream")
            }
        ),
        case!("AD-PROTO-005", Must, ["Core"], [], "Garbage on the socket does not hurt the driver", |cx| {
            use tokio::io::AsyncWriteExt;
            let mut sock = tokio::net::UnixStream::connect(cx.client().socket()).await?;
            sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02garbage").await?;
            let _half_open = tokio::net::UnixStream::connect(cx.client().socket()).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(sock);
            let fresh = DriverClient::connect(cx.client().socket(), Duration::from_secs(5)).await?;
            fresh.supports_save_stream().await?;
            cx.still_serving().await
        }),
        case!("AD-PROTO-006", Must, ["Core"], [], "An unknown method is UNIMPLEMENTED", |cx| {
            let channel = DriverClient::channel(cx.client().socket(), Duration::from_secs(5)).await?;
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.map_err(|e| anyhow::anyhow!("channel not ready: {e}"))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static("/artifact.ArtifactService/Nope");
            let codec = tonic_prost::ProstCodec::<pb::GetCapabilitiesRequest, pb::GetCapabilitiesResponse>::default();
            match grpc.unary(tonic::Request::new(pb::GetCapabilitiesRequest {}), path, codec).await {
                Ok(_) => bail!("an unknown method answered OK"),
                Err(s) => ensure!(s.code() == tonic::Code::Unimplemented, "answered {:?}", s.code()),
            }
            Ok(())
        }),
        case!("AD-PROTO-008", Must, ["Core"], [], "A 1 ms deadline on unary calls leaves the driver healthy", |cx| {
            for _ in 0..20 {
                let mut req = tonic::Request::new(pb::IsDirectoryRequest { artifact: Some(cx.at("x").to_artifact()) });
                req.set_timeout(Duration::from_millis(1));
                match cx.client().raw().is_directory(req).await {
                    Ok(_) => {}
                    Err(s) if matches!(s.code(), tonic::Code::DeadlineExceeded | tonic::Code::Cancelled) => {}
                    Err(s) => bail!("answered {:?} instead of DEADLINE_EXCEEDED", s.code()),
                }
            }
            cx.still_serving().await
        }),
        case!("AD-PROTO-009", Must, ["Core"], [], "Load and Save with an empty path fail cleanly", |cx| {
            cx.failed_cleanly("Load with path=\"\"", cx.client().load(&cx.at("f"), std::path::Path::new("")).await)?;
            cx.failed_cleanly("Save with path=\"\"", cx.client().save(&cx.at("f"), std::path::Path::new("")).await)?;
            cx.still_serving().await
        }),
        case!("AD-CONC-001", Must, ["Core"], [Writable], "32 parallel Save/Load pairs on one connection", |cx| {
            let tasks = (0..32).map(|i| {
                let cx = cx.clone();
                async move {
                    let data = cx.payload(4 << 20, i);
                    cx.round_trip(&format!("p{i}"), &data).await
                }
            });
            for r in futures::future::join_all(tasks).await {
                r?;
            }
            Ok(())
        }),
        case!("AD-CONC-002", Must, ["Core"], [Writable], "Mixed parallel calls all answer correctly", |cx| {
            let data = cx.payload(2 << 20, 9);
            cx.save_bytes("shared/obj", &data).await?;
            let mut jobs: Vec<futures::future::BoxFuture<'static, anyhow::Result<()>>> = Vec::new();
            for i in 0..16 {
                let (cx, data) = (cx.clone(), data.clone());
                jobs.push(Box::pin(async move {
                    same(&cx.stream_bytes("shared/obj").await?, &data, &format!("stream {i}"))
                }));
            }
            for i in 0..8 {
                let cx1 = cx.clone();
                jobs.push(Box::pin(async move { cx1.save_bytes(&format!("w{i}"), &cx1.payload(100_000, i)).await }));
                if !cx.run.profile.claims.list {
                    continue;
                }
                let cx2 = cx.clone();
                jobs.push(Box::pin(async move {
                    let l = cx2.client().list(&cx2.at("shared")).await?;
                    ensure!(l == vec![cx2.key("shared/obj")], "list {l:?}");
                    Ok(())
                }));
                let cx3 = cx.clone();
                jobs.push(Box::pin(async move {
                    ensure!(cx3.client().is_directory(&cx3.at("shared")).await?, "IsDirectory false");
                    Ok(())
                }));
            }
            for r in futures::future::join_all(jobs).await {
                r?;
            }
            Ok(())
        }),
        case!("AD-CONC-003", Must, ["Core"], [Writable], "Two concurrent Saves to one key never mix", |cx| {
            for round in 0..3 {
                let (a, b) = (vec![b'A'; 8 << 20], vec![b'B'; 8 << 20]);
                let (pa, pb) = (cx.path(&format!("src/a{round}")), cx.path(&format!("src/b{round}")));
                std::fs::write(&pa, &a)?;
                std::fs::write(&pb, &b)?;
                let at = cx.at("torn");
                let (ra, rb) = tokio::join!(cx.client().save(&at, &pa), cx.client().save(&at, &pb));
                ensure!(ra.is_ok() || rb.is_ok(), "both concurrent Saves failed");
                let got = cx.load_bytes("torn").await?;
                ensure!(got == a || got == b, "round {round}: the object mixes both writes ({} bytes)", got.len());
            }
            Ok(())
        }),
        case!(
            "AD-CONC-004",
            Should,
            ["Core"],
            [Writable],
            "A Load during an overwrite returns one whole version",
            |cx| {
                let (a, b) = (vec![b'A'; 8 << 20], vec![b'B'; 8 << 20]);
                cx.save_bytes("rw", &a).await?;
                let pb_ = cx.path("src/rw-b");
                std::fs::write(&pb_, &b)?;
                let at = cx.at("rw");
                let (w, r) = tokio::join!(cx.client().save(&at, &pb_), cx.load_bytes("rw"));
                w?;
                let got = r?;
                ensure!(got == a || got == b, "read a mix of two versions ({} bytes)", got.len());
                Ok(())
            }
        ),
        case!("AD-CONC-005", Must, ["Core"], [], "500 short connections, as Argo opens one per operation", |cx| {
            let before = cx.run.driver.as_ref().and_then(|d| d.lock().ok()?.open_fds().ok());
            for i in 0..500 {
                let c = DriverClient::connect(cx.client().socket(), Duration::from_secs(5)).await?;
                c.is_directory(&cx.at("churn")).await.with_context(|| format!("connection {i}"))?;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let (Some(before), Some(driver)) = (before, cx.run.driver.as_ref()) {
                let after = driver.lock().map_err(|_| anyhow::anyhow!("driver lock"))?.open_fds()?;
                ensure!(after <= before + 5, "open fds grew from {before} to {after}");
            }
            Ok(())
        }),
    ]
}
