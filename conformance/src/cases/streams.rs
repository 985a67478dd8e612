//! OpenStream framing and SaveStream framing, checked on the raw frames.

use crate::case;
use crate::case::Case;
use crate::context::{Cx, same};
use anyhow::{bail, ensure};
use bytes::Bytes;
use ferry_sdk::pb;
use futures::StreamExt;
use std::time::Duration;

/// Every frame of an OpenStream call, or the status that ended it.
struct Frames {
    frames: Vec<pb::OpenStreamResponse>,
    status: Option<tonic::Status>,
}

async fn frames(cx: &Cx, name: &str) -> anyhow::Result<Frames> {
    let mut raw = cx.client().raw();
    let req = pb::OpenStreamRequest { artifact: Some(cx.at(name).to_artifact()) };
    let mut stream = match raw.open_stream(req).await {
        Ok(r) => r.into_inner(),
        Err(status) => return Ok(Frames { frames: vec![], status: Some(status) }),
    };
    let mut out = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return Ok(Frames { frames: out, status: None }),
            Err(status) => return Ok(Frames { frames: out, status: Some(status) }),
        }
    }
}

fn data(f: &Frames) -> Vec<u8> {
    f.frames.iter().filter(|f| !f.is_end).flat_map(|f| f.data.iter().copied()).collect()
}

/// Argo's SaveStream framing: one metadata frame, then chunks of `chunk` bytes.
async fn save_stream_raw(cx: &Cx, name: &str, pieces: Vec<Bytes>) -> anyhow::Result<pb::SaveArtifactResponse> {
    let first = pb::SaveStreamArtifactRequest { output_artifact: Some(cx.at(name).to_artifact()), chunk: Bytes::new() };
    let rest = pieces.into_iter().map(|chunk| pb::SaveStreamArtifactRequest { output_artifact: None, chunk });
    let frames: Vec<_> = std::iter::once(first).chain(rest).collect();
    Ok(cx.client().raw().save_stream(futures::stream::iter(frames)).await?.into_inner())
}

fn pieces(data: &[u8], size: usize) -> Vec<Bytes> {
    data.chunks(size.max(1)).map(Bytes::copy_from_slice).collect()
}

const SIZES: [usize; 7] = [0, 1, (1 << 20) - 1, (2 << 20) + 1, (4 << 20) + 1, (5 << 20) + 7, 9 << 20];

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "AD-STREAM-001",
            Must,
            ["Core", "Stream"],
            [Writable],
            "Concatenated frames equal the object, for every size",
            |cx| {
                for (i, size) in SIZES.into_iter().enumerate() {
                    let want = cx.payload(size, i as u64);
                    cx.save_bytes(&format!("s{size}"), &want).await?;
                    let f = frames(&cx, &format!("s{size}")).await?;
                    if let Some(s) = f.status {
                        bail!("{size} bytes: stream ended with {s}");
                    }
                    same(&data(&f), &want, &format!("{size} bytes"))?;
                }
                Ok(())
            }
        ),
        case!(
            "AD-STREAM-002",
            Must,
            ["Core", "Stream"],
            [Writable],
            "No frame exceeds gRPC's default 4 MiB message limit",
            |cx| {
                cx.save_bytes("big", &cx.payload(9 << 20, 1)).await?;
                let f = frames(&cx, "big").await?;
                let max = f.frames.iter().map(|f| f.data.len()).max().unwrap_or(0);
                cx.observe("maxFrameBytes", max);
                ensure!(max + 64 <= 4 << 20, "a frame carries {max} bytes; Argo's client rejects messages over 4 MiB");
                Ok(())
            }
        ),
        case!(
            "AD-STREAM-003",
            Must,
            ["Core", "Stream"],
            [Writable],
            "The stream ends OK after the data, or after one is_end frame",
            |cx| {
                cx.save_bytes("f", &cx.payload(3 << 20, 2)).await?;
                let f = frames(&cx, "f").await?;
                if let Some(s) = f.status {
                    bail!("ended with status {s}");
                }
                let ends = f.frames.iter().filter(|f| f.is_end).count();
                ensure!(ends <= 1, "{ends} is_end frames");
                cx.observe("endsWithIsEnd", ends == 1);
                Ok(())
            }
        ),
        case!(
            "AD-STREAM-004",
            Must,
            ["Core", "Stream"],
            [Writable],
            "The is_end frame carries no data (Argo drops it)",
            |cx| {
                for size in [1usize, 5 << 20] {
                    cx.save_bytes(&format!("f{size}"), &cx.payload(size, 3)).await?;
                    let f = frames(&cx, &format!("f{size}")).await?;
                    if let Some(end) = f.frames.iter().find(|f| f.is_end) {
                        ensure!(end.data.is_empty(), "the is_end frame carries {} bytes", end.data.len());
                    }
                }
                Ok(())
            }
        ),
        case!("AD-STREAM-005", Must, ["Core", "Stream"], [Writable], "Nothing follows the is_end frame", |cx| {
            cx.save_bytes("f", &cx.payload(3 << 20, 4)).await?;
            let f = frames(&cx, "f").await?;
            if let Some(pos) = f.frames.iter().position(|f| f.is_end) {
                ensure!(pos + 1 == f.frames.len(), "{} frames after is_end", f.frames.len() - pos - 1);
            }
            Ok(())
        }),
        case!("AD-STREAM-006", Must, ["Core", "Stream"], [], "An error frame is the last frame", |cx| {
            let f = frames(&cx, "missing").await?;
            if let Some(pos) = f.frames.iter().position(|f| !f.error.is_empty()) {
                ensure!(pos + 1 == f.frames.len(), "frames follow an error frame");
                ensure!(!f.frames[..pos].iter().any(|f| f.is_end), "is_end precedes the error frame");
            }
            ensure!(f.status.is_some() || f.frames.iter().any(|f| !f.error.is_empty()), "a missing key streamed OK");
            Ok(())
        }),
        case!(
            "AD-STREAM-007",
            Must,
            ["Core", "Stream"],
            [Writable],
            "An empty object streams zero bytes and ends OK",
            |cx| {
                cx.save_bytes("empty", &[]).await?;
                let f = frames(&cx, "empty").await?;
                if let Some(s) = f.status {
                    bail!("ended with status {s}");
                }
                ensure!(data(&f).is_empty(), "{} bytes", data(&f).len());
                ensure!(f.frames.iter().all(|f| f.error.is_empty()), "error frame for an empty object");
                Ok(())
            }
        ),
        case!(
            "AD-STREAM-008",
            Must,
            ["Core", "Stream"],
            [Writable],
            "Cancelling mid-stream leaves the driver healthy",
            |cx| {
                cx.save_bytes("big", &cx.payload(32 << 20, 5)).await?;
                let fds_before = cx.run.driver.as_ref().and_then(|d| d.lock().ok()?.open_fds().ok());
                for _ in 0..5 {
                    let mut s = cx.client().open_stream(&cx.at("big")).await?;
                    let first = s.next().await;
                    ensure!(matches!(first, Some(Ok(_))), "no first frame");
                    drop(s);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let (Some(before), Some(driver)) = (fds_before, cx.run.driver.as_ref()) {
                    let after = driver.lock().map_err(|_| anyhow::anyhow!("driver lock"))?.open_fds()?;
                    ensure!(after <= before + 2, "open fds grew from {before} to {after} after cancelled streams");
                }
                same(&cx.stream_bytes("big").await?, &cx.payload(32 << 20, 5), "a new OpenStream")
            }
        ),
        case!(
            "AD-STREAM-012",
            Must,
            ["Core", "Stream"],
            [Writable],
            "A deadline mid-stream ends the call; the driver stays healthy",
            |cx| {
                cx.save_bytes("big", &cx.payload(32 << 20, 6)).await?;
                let deadline = Duration::from_millis(300);
                let mut req = tonic::Request::new(pb::OpenStreamRequest { artifact: Some(cx.at("big").to_artifact()) });
                req.set_timeout(deadline);
                // Enforced here as grpc-go (Argo's client) enforces it: at the
                // deadline the call is cancelled, whatever the server does.
                let slow_read = async {
                    let mut s = cx.client().raw().open_stream(req).await?.into_inner();
                    loop {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if s.message().await?.is_none() {
                            return Ok::<_, tonic::Status>(());
                        }
                    }
                };
                match tokio::time::timeout(deadline, slow_read).await {
                    Err(_elapsed) => {}
                    Ok(Err(s)) if s.code() == tonic::Code::DeadlineExceeded || s.code() == tonic::Code::Cancelled => {}
                    Ok(Err(s)) => bail!("ended with {:?} before the deadline", s.code()),
                    Ok(Ok(())) => bail!("a slow read of 32 MiB completed within {deadline:?}"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                cx.still_serving().await?;
                same(&cx.stream_bytes("big").await?, &cx.payload(32 << 20, 6), "OpenStream after the deadline")
            }
        ),
        case!(
            "AD-STREAM-011",
            Must,
            ["Core", "Stream", "Fault"],
            [Writable, FaultHook],
            "A backend failure mid-stream is an error, never a clean short stream",
            |cx| {
                let size = 32 << 20;
                cx.save_bytes("fault", &cx.payload(size, 7)).await?;
                let mut stream = cx.client().open_stream(&cx.at("fault")).await?;
                let first = futures::StreamExt::next(&mut stream).await;
                ensure!(matches!(first, Some(Ok(_))), "no first frame");
                let hooks = cx.run.profile.hooks.clone();
                cx.hook(hooks.backend_down.as_deref().expect("gated"), "fault")?;
                let mut got = first.and_then(|r| r.ok()).map(|b| b.len()).unwrap_or(0);
                let mut failed = false;
                while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                    match chunk {
                        Ok(b) => got += b.len(),
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                if let Some(up) = hooks.backend_up.as_deref() {
                    cx.hook(up, "fault")?;
                }
                ensure!(
                    failed || got == size,
                    "the stream ended cleanly after {got} of {size} bytes: a silent truncation"
                );
                cx.still_serving().await
            }
        ),
        case!(
            "AD-SSTR-001",
            Must,
            ["SaveStream"],
            [Writable, SaveStream],
            "Argo framing: metadata frame, then 2 MiB chunks",
            |cx| {
                for (i, size) in [1usize, 2 << 20, (2 << 20) + 1, cx.run.profile.limits.large_file_bytes as usize]
                    .into_iter()
                    .enumerate()
                {
                    let want = cx.payload(size, 10 + i as u64);
                    let r = save_stream_raw(&cx, &format!("s{size}"), pieces(&want, 2 << 20)).await?;
                    ensure!(r.success, "{size} bytes: success=false: {}", r.error);
                    same(&cx.load_bytes(&format!("s{size}")).await?, &want, &format!("{size} bytes via Load"))?;
                    same(&cx.stream_bytes(&format!("s{size}")).await?, &want, &format!("{size} bytes via OpenStream"))?;
                }
                Ok(())
            }
        ),
        case!("AD-SSTR-002", Must, ["SaveStream"], [Writable, SaveStream], "Zero chunks make a 0-byte object", |cx| {
            let r = save_stream_raw(&cx, "empty", vec![]).await?;
            ensure!(r.success, "success=false: {}", r.error);
            same(&cx.load_bytes("empty").await?, &[], "Load")
        }),
        case!("AD-SSTR-003", Must, ["SaveStream"], [Writable, SaveStream], "Irregular chunk sizes", |cx| {
            let ones = cx.payload(10_000, 11);
            let r = save_stream_raw(&cx, "ones", pieces(&ones, 1)).await?;
            ensure!(r.success, "10,000 x 1 B: {}", r.error);
            same(&cx.stream_bytes("ones").await?, &ones, "10,000 x 1 B")?;
            let mixed = cx.payload(7 + (3 << 20) + 1 + 1, 12);
            let parts = vec![
                Bytes::copy_from_slice(&mixed[..7]),
                Bytes::copy_from_slice(&mixed[7..7 + (3 << 20) + 1]),
                Bytes::copy_from_slice(&mixed[7 + (3 << 20) + 1..]),
            ];
            let r = save_stream_raw(&cx, "mixed", parts).await?;
            ensure!(r.success, "mixed: {}", r.error);
            same(&cx.stream_bytes("mixed").await?, &mixed, "7 B / 3 MiB+1 / 1 B")
        }),
        case!("AD-SSTR-004", Should, ["SaveStream"], [Writable, SaveStream], "Zero-length chunks are ignored", |cx| {
            let want = cx.payload(5000, 13);
            let parts = vec![
                Bytes::new(),
                Bytes::copy_from_slice(&want[..100]),
                Bytes::new(),
                Bytes::copy_from_slice(&want[100..]),
            ];
            let r = save_stream_raw(&cx, "z", parts).await?;
            ensure!(r.success, "{}", r.error);
            same(&cx.stream_bytes("z").await?, &want, "OpenStream")
        }),
        case!(
            "AD-SSTR-005",
            Must,
            ["SaveStream"],
            [Writable, SaveStream],
            "A first frame without output_artifact fails cleanly",
            |cx| {
                let frames =
                    vec![pb::SaveStreamArtifactRequest { output_artifact: None, chunk: Bytes::from_static(b"data") }];
                match cx.client().raw().save_stream(futures::stream::iter(frames)).await {
                    Ok(r) => ensure!(
                        !r.get_ref().success && !r.get_ref().error.is_empty(),
                        "accepted a stream with no artifact"
                    ),
                    Err(s) => ensure!(!s.message().is_empty(), "status {:?} without a message", s.code()),
                }
                cx.still_serving().await
            }
        ),
        case!(
            "AD-SSTR-006",
            Info,
            ["SaveStream"],
            [Writable, SaveStream],
            "output_artifact repeated in a later frame (recorded)",
            |cx| {
                let first = pb::SaveStreamArtifactRequest {
                    output_artifact: Some(cx.at("rep").to_artifact()),
                    chunk: Bytes::new(),
                };
                let again = pb::SaveStreamArtifactRequest {
                    output_artifact: Some(cx.at("rep").to_artifact()),
                    chunk: Bytes::from_static(b"x"),
                };
                let r = cx.client().raw().save_stream(futures::stream::iter(vec![first, again])).await;
                let accepted = matches!(&r, Ok(r) if r.get_ref().success);
                cx.observe("saveStreamRepeatedArtifact", if accepted { "ignore" } else { "reject" });
                Ok(())
            }
        ),
        case!(
            "AD-SSTR-007",
            Must,
            ["SaveStream"],
            [Writable, SaveStream],
            "A cancelled SaveStream never leaves a truncated object",
            |cx| {
                let v1 = cx.payload(1 << 20, 14);
                cx.save_bytes("k", &v1).await?;
                let v2 = cx.payload(64 << 20, 15);
                let mut parts: Vec<ferry_sdk::Result<Bytes>> =
                    pieces(&v2[..10 << 20], 2 << 20).into_iter().map(Ok).collect();
                parts.push(Err(ferry_sdk::Error::new(ferry_sdk::ErrorKind::Transient, "client gave up")));
                let r = cx.client().save_stream(&cx.at("k"), futures::stream::iter(parts).boxed()).await;
                ensure!(r.is_err(), "the cancelled upload reported success");
                tokio::time::sleep(Duration::from_millis(500)).await;
                match cx.load_bytes("k").await {
                    Ok(bytes) => same(&bytes, &v1, "after a cancelled SaveStream, the previous version"),
                    Err(_) => Ok(()),
                }
            }
        ),
        case!(
            "AD-SSTR-008",
            Must,
            ["SaveStream"],
            [Writable, SaveStream],
            "Save and SaveStream overwrite each other; the last writer wins",
            |cx| {
                let a = cx.payload(3 << 20, 16);
                let b = cx.payload(1 << 20, 17);
                cx.save_bytes("k", &a).await?;
                cx.client().save_stream(&cx.at("k"), Cx::chunks(&b, 2 << 20)).await?;
                same(&cx.load_bytes("k").await?, &b, "after SaveStream over Save")?;
                cx.save_bytes("k", &a).await?;
                same(&cx.load_bytes("k").await?, &a, "after Save over SaveStream")
            }
        ),
    ]
}
