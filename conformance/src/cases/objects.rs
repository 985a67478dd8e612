//! Ferry's optional `ferry.v1.ObjectService`: where a driver offers it, Stat
//! is OpenStream's byte count and ReadRange yields exact slices clamped to
//! the object's end. A driver that answers UNIMPLEMENTED (one written from
//! Argo's proto alone) is skipped, not failed: Argo never calls the service,
//! so the cases are SHOULD, and `--mode certify` does not demand them.

use crate::case;
use crate::case::{Case, skip};
use crate::context::{Cx, same};
use anyhow::{Context, ensure};
use futures::StreamExt;

const NOT_OFFERED: &str = "the driver does not offer ferry.v1.ObjectService (UNIMPLEMENTED)";

/// The bytes of `length` from `offset` of `name`, or a skip when not offered.
async fn range(cx: &Cx, name: &str, offset: u64, length: u64) -> anyhow::Result<Vec<u8>> {
    let what = format!("ReadRange {offset}+{length} of {}", cx.key(name));
    let mut data = cx
        .client()
        .open_range(&cx.at(name), offset, length)
        .await
        .context(what.clone())?
        .ok_or_else(|| skip(NOT_OFFERED))?;
    let mut out = Vec::new();
    while let Some(chunk) = data.next().await {
        out.extend_from_slice(&chunk.context(what.clone())?);
    }
    Ok(out)
}

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "AD-OBJ-001",
            Should,
            ["Object"],
            [Writable],
            "Stat, where offered, is OpenStream's byte count; a missing key is NOT_FOUND",
            |cx| {
                for (i, size) in [0usize, 1, (2 << 20) + 3].into_iter().enumerate() {
                    let name = format!("stat{size}");
                    cx.save_bytes(&name, &cx.payload(size, i as u64)).await?;
                    let streamed = cx.stream_bytes(&name).await?.len() as u64;
                    let stat =
                        cx.client().stat(&cx.at(&name)).await.context("Stat")?.ok_or_else(|| skip(NOT_OFFERED))?;
                    ensure!(stat == streamed, "Stat says {stat} bytes, OpenStream yields {streamed}");
                }
                let err = cx.failed_cleanly("Stat of a missing key", cx.client().stat(&cx.at("missing")).await)?;
                ensure!(Cx::is_not_found(&err), "Stat of a missing key: {} ({}), not NOT_FOUND", err, err.kind());
                Ok(())
            }
        ),
        case!(
            "AD-OBJ-002",
            Should,
            ["Object"],
            [Writable],
            "ReadRange, where offered, yields exact slices clamped to the object's end",
            |cx| {
                let data = cx.payload((3 << 20) + 5, 7);
                cx.save_bytes("ranged", &data).await?;
                let len = data.len() as u64;
                let slice = |a: u64, b: u64| &data[a as usize..b as usize];
                let cases: [(u64, u64, &[u8]); 7] = [
                    (0, 10, slice(0, 10)),
                    (1000, 2 << 20, slice(1000, 1000 + (2 << 20))),
                    (len - 10, 10, slice(len - 10, len)),
                    (len - 10, 1000, slice(len - 10, len)),
                    (len, 5, &[]),
                    (len + 100, 5, &[]),
                    (3, 0, &[]),
                ];
                for (offset, length, want) in cases {
                    same(&range(&cx, "ranged", offset, length).await?, want, &format!("ReadRange {offset}+{length}"))?;
                }
                let err = cx.failed_cleanly(
                    "ReadRange of a missing key",
                    cx.client().open_range(&cx.at("missing"), 0, 10).await,
                )?;
                ensure!(Cx::is_not_found(&err), "ReadRange of a missing key: {} ({}), not NOT_FOUND", err, err.kind());
                Ok(())
            }
        ),
    ]
}
