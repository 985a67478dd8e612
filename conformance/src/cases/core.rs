//! GetCapabilities, file round trips, keys, not-found, delete, ListObjects, IsDirectory.

use crate::case;
use crate::case::Case;
use crate::context::{Cx, same};
use anyhow::{Context, bail, ensure};
use std::time::{Duration, Instant};

pub fn cases() -> Vec<Case> {
    vec![
        case!("AD-CAP-001", Must, ["Core"], [], "GetCapabilities answers OK within 1 s, or UNIMPLEMENTED", |cx| {
            let started = Instant::now();
            match cx.client().raw().get_capabilities(ferry_sdk::pb::GetCapabilitiesRequest {}).await {
                Ok(_) => ensure!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed()),
                Err(s) if s.code() == tonic::Code::Unimplemented => {}
                Err(s) => bail!("status {:?}: Argo turns anything but OK or UNIMPLEMENTED into a hard error", s.code()),
            }
            Ok(())
        }),
        case!("AD-CAP-002", Must, ["Core"], [], "GetCapabilities is deterministic, also on fresh connections", |cx| {
            let first = cx.client().supports_save_stream().await?;
            for _ in 0..10 {
                ensure!(cx.client().supports_save_stream().await? == first, "answer changed between calls");
            }
            for _ in 0..3 {
                let fresh =
                    ferry_sdk::client::DriverClient::connect(cx.client().socket(), Duration::from_secs(5)).await?;
                ensure!(fresh.supports_save_stream().await? == first, "answer changed on a fresh connection");
            }
            Ok(())
        }),
        case!(
            "AD-CAP-003",
            Must,
            ["Core", "SaveStream"],
            [Writable, SaveStream],
            "supports_save_stream=true means SaveStream works",
            |cx| {
                let data = cx.payload(1000, 1);
                cx.client().save_stream(&cx.at("f"), Cx::chunks(&data, 2 << 20)).await?;
                same(&cx.stream_bytes("f").await?, &data, "OpenStream")
            }
        ),
        case!("AD-CAP-005", Must, ["Core"], [Writable], "Claims agree with probes", |cx| {
            if let Some(claimed) = cx.run.profile.claims.save_stream {
                ensure!(
                    claimed == cx.run.supports_save_stream,
                    "the profile claims saveStream: {claimed}, GetCapabilities says {}",
                    cx.run.supports_save_stream
                );
            }
            if cx.run.profile.claims.directories {
                cx.save_tree("t", &[("a", b"a".to_vec())]).await?;
                ensure!(
                    cx.client().is_directory(&cx.at("t")).await?,
                    "claims directories, but IsDirectory is false after a directory Save"
                );
            }
            Ok(())
        }),
        case!("AD-FILE-001", Must, ["Core"], [Writable], "1 KiB file round trip into <path>.tmp", |cx| {
            let data = cx.payload(1024, 1);
            cx.round_trip("f", &data).await
        }),
        case!("AD-FILE-002", Must, ["Core"], [Writable], "Empty file round trip", |cx| {
            cx.round_trip("empty", &[]).await
        }),
        case!("AD-FILE-003", Must, ["Core"], [Writable], "1 byte, all 256 byte values, NUL and CRLF", |cx| {
            cx.round_trip("one", b"x").await?;
            let all: Vec<u8> = (0..=255u8).collect();
            cx.round_trip("all", &all).await?;
            cx.round_trip("nul", b"a\0b\r\nc\0\r\n").await
        }),
        case!("AD-FILE-004", Must, ["Core"], [Writable], "Sizes across chunk and message boundaries", |cx| {
            const MIB: usize = 1 << 20;
            for (i, size) in [MIB - 1, MIB + 1, 2 * MIB, 4 * MIB - 1, 4 * MIB + 1, 5 * MIB + 7].into_iter().enumerate()
            {
                let data = cx.payload(size, i as u64);
                cx.round_trip(&format!("s{size}"), &data).await?;
            }
            Ok(())
        }),
        case!(
            "AD-FILE-005",
            Must,
            ["Core", "Slow"],
            [Writable],
            "Large file (limits.largeFileBytes) round trip",
            |cx| {
                let data = cx.payload(cx.run.profile.limits.large_file_bytes as usize, 5);
                cx.round_trip("large", &data).await
            }
        ),
        case!(
            "AD-FILE-007",
            Must,
            ["Core"],
            [Writable],
            "Overwrite with shorter content leaves no trailing bytes",
            |cx| {
                cx.save_bytes("f", &cx.payload(5 << 20, 1)).await?;
                cx.round_trip("f", b"0123456789").await
            }
        ),
        case!("AD-FILE-008", Must, ["Core"], [Writable], "Overwrite with longer content", |cx| {
            cx.save_bytes("f", b"short").await?;
            cx.round_trip("f", &cx.payload(3 << 20, 2)).await
        }),
        case!("AD-FILE-009", Must, ["Core"], [Writable], "The same content saved 10 times", |cx| {
            let data = cx.payload(4096, 3);
            for _ in 0..10 {
                cx.save_bytes("f", &data).await?;
            }
            same(&cx.load_bytes("f").await?, &data, "Load")
        }),
        case!("AD-FILE-010", Must, ["Core"], [Writable], "A gzip tarball is stored as opaque bytes", |cx| {
            let mut tgz = vec![0x1f, 0x8b, 0x08, 0x00];
            tgz.extend(cx.payload(10_000, 4));
            cx.round_trip("out.tgz", &tgz).await
        }),
        case!("AD-FILE-011", Should, ["Core"], [Writable], "Save does not modify the source", |cx| {
            let src = cx.path("src/keep");
            let data = cx.payload(2 << 20, 5);
            std::fs::write(&src, &data)?;
            let before = std::fs::metadata(&src)?;
            cx.client().save(&cx.at("keep"), &src).await?;
            let after = std::fs::metadata(&src)?;
            ensure!(before.modified()? == after.modified()?, "source mtime changed");
            same(&std::fs::read(&src)?, &data, "source")
        }),
        case!("AD-FILE-012", Should, ["Core"], [Writable], "Load replaces a file already at the path", |cx| {
            let data = cx.payload(3000, 6);
            cx.save_bytes("f", &data).await?;
            let dst = cx.path("stale.tmp");
            std::fs::write(&dst, cx.payload(9000, 7))?;
            cx.client().load(&cx.at("f"), &dst).await?;
            same(&std::fs::read(&dst)?, &data, "Load over an existing file")
        }),
        case!(
            "AD-FILE-013",
            Must,
            ["Core"],
            [Writable],
            "Save of a missing local path fails cleanly and creates nothing",
            |cx| {
                let missing = cx.path("does-not-exist");
                cx.failed_cleanly("Save of a missing path", cx.client().save(&cx.at("f"), &missing).await)?;
                ensure!(!cx.client().is_directory(&cx.at("f")).await.unwrap_or(false), "a directory appeared");
                cx.failed_cleanly(
                    "Load after the failed Save",
                    cx.client().load(&cx.at("f"), &cx.path("f.tmp")).await,
                )?;
                cx.still_serving().await
            }
        ),
        case!("AD-KEY-001", Must, ["Core"], [Writable], "Argo-shaped keys round trip, list and delete", |cx| {
            for name in
                ["wf-abc/wf-abc-1234/out.tgz", "wf-abc/wf-abc-1234/main.log", "uploads/ns/0f2c/file name (1).csv"]
            {
                cx.round_trip(name, name.as_bytes()).await?;
            }
            if !cx.run.profile.claims.list || !cx.run.profile.claims.delete {
                return Ok(());
            }
            let listed = cx.client().list(&cx.at("wf-abc")).await?;
            ensure!(listed.contains(&cx.key("wf-abc/wf-abc-1234/main.log")), "listing lacks main.log: {listed:?}");
            cx.client().delete(&cx.at("wf-abc/wf-abc-1234/out.tgz")).await?;
            ensure!(cx.client().list(&cx.at("wf-abc")).await?.len() == 1, "delete did not remove out.tgz");
            Ok(())
        }),
        case!(
            "AD-KEY-002",
            Must,
            ["Core"],
            [Writable],
            "Special ASCII characters round trip and list byte for byte",
            |cx| {
                let name = "odd/ !@#$%^&()_+-=;',.~`[]{}";
                cx.round_trip(name, b"x").await?;
                if !cx.run.profile.claims.list {
                    return Ok(());
                }
                let listed = cx.client().list(&cx.at("odd")).await?;
                ensure!(listed == vec![cx.key(name)], "listing is {listed:?}");
                Ok(())
            }
        ),
        case!("AD-KEY-003", Must, ["Core"], [Writable], "UTF-8 keys round trip and list byte for byte", |cx| {
            let names = ["u/données/résumé.txt", "u/日本語/ファイル", "u/🚀/launch", "u/שלום/עולם"];
            for n in names {
                cx.round_trip(n, n.as_bytes()).await?;
            }
            if !cx.run.profile.claims.list {
                return Ok(());
            }
            let mut listed = cx.client().list(&cx.at("u")).await?;
            listed.sort();
            let mut want: Vec<String> = names.iter().map(|n| cx.key(n)).collect();
            want.sort();
            ensure!(listed == want, "listing is {listed:?}");
            Ok(())
        }),
        case!("AD-KEY-006", Should, ["Core"], [Writable], "A 255-byte segment round trips", |cx| {
            let name = "s".repeat(200);
            cx.round_trip(&name, b"long").await
        }),
        case!(
            "AD-KEY-007",
            Must,
            ["Core", "Security"],
            [Writable],
            "Traversal in the key fails cleanly or stays confined",
            |cx| {
                // Enough `..` to climb above the key prefix (and a filesystem root).
                let depth = cx.key("k").split('/').count() + 1;
                let leaf = format!("escaped-{}", cx.run.run_id);
                let src = cx.path("src/t");
                std::fs::write(&src, b"escape")?;
                for key in [
                    format!("{}/{}{leaf}", cx.key("k"), "../".repeat(depth)),
                    format!("{}/a/../../{leaf}", cx.key("k")),
                ] {
                    if cx.client().save(&cx.raw_at(&key), &src).await.is_ok() {
                        // Accepted: the object must then be confined to this case's namespace.
                        let inside = cx.client().list(&cx.raw_at(&cx.key(""))).await.unwrap_or_default();
                        ensure!(
                            inside.iter().any(|k| k.ends_with(&leaf)),
                            "key {key:?} was accepted but its object is not under the case's prefix"
                        );
                    }
                }
                cx.still_serving().await
            }
        ),
        case!(
            "AD-KEY-008",
            Should,
            ["Core", "Security"],
            [Writable],
            "Empty key for Save and Delete fails cleanly and deletes nothing",
            |cx| {
                cx.save_bytes("canary", b"keep").await?;
                let src = cx.path("src/empty-key");
                std::fs::write(&src, b"x")?;
                cx.failed_cleanly("Save with an empty key", cx.client().save(&cx.raw_at(""), &src).await)?;
                cx.failed_cleanly("Delete with an empty key", cx.client().delete(&cx.raw_at("")).await)?;
                same(&cx.load_bytes("canary").await?, b"keep", "canary after empty-key Delete")
            }
        ),
        case!(
            "AD-KEY-011",
            Must,
            ["Core", "Security"],
            [NoRootKey],
            "An empty key is refused by Load, OpenStream, ListObjects and IsDirectory; nothing is loaded",
            |cx| {
                // A template parameter that renders empty sends this; on an
                // object store it would name the whole bucket or root.
                // The caller's mistake, not a missing object: never NOT_FOUND
                // (an optional input would be skipped silently).
                let invalid = |what: &str, err: ferry_sdk::Error| {
                    ensure!(!Cx::is_not_found(&err), "{what} with an empty key answered NOT_FOUND: {err}");
                    Ok(())
                };
                let dst = cx.path("empty-key.tmp");
                invalid(
                    "Load",
                    cx.failed_cleanly("Load with an empty key", cx.client().load(&cx.raw_at(""), &dst).await)?,
                )?;
                ensure!(!dst.exists(), "Load with an empty key wrote {}", dst.display());
                invalid(
                    "OpenStream",
                    cx.failed_cleanly(
                        "OpenStream with an empty key",
                        cx.client().open_stream(&cx.raw_at("")).await.map(drop),
                    )?,
                )?;
                invalid(
                    "ListObjects",
                    cx.failed_cleanly("ListObjects with an empty key", cx.client().list(&cx.raw_at("")).await)?,
                )?;
                invalid(
                    "IsDirectory",
                    cx.failed_cleanly("IsDirectory with an empty key", cx.client().is_directory(&cx.raw_at("")).await)?,
                )
            }
        ),
        case!(
            "AD-KEY-010",
            Must,
            ["Core"],
            [Writable],
            "Trailing slash on a file key: clean failure or the file",
            |cx| {
                cx.save_bytes("f", b"file").await?;
                let key = format!("{}/", cx.key("f"));
                if let Ok(bytes) = cx.stream_location(&cx.raw_at(&key)).await {
                    ensure!(bytes == b"file", "OpenStream of key/ returned other bytes");
                }
                cx.still_serving().await
            }
        ),
        case!("AD-NF-001", Must, ["Core"], [], "Load of a missing key fails cleanly and leaves no file", |cx| {
            let dst = cx.path("missing.tmp");
            cx.failed_cleanly("Load of a missing key", cx.client().load(&cx.at("missing"), &dst).await)?;
            ensure!(!dst.exists(), "{} exists after a failed Load", dst.display());
            Ok(())
        }),
        case!("AD-NF-002", Must, ["Core"], [], "OpenStream of a missing key fails before any data", |cx| {
            match cx.stream_location(&cx.at("missing")).await {
                Ok(bytes) => bail!("OpenStream of a missing key ended OK with {} bytes", bytes.len()),
                Err(_) => Ok(()),
            }
        }),
        case!("AD-NF-003", Should, ["Core"], [], "ListObjects of a missing key: an error or an empty list", |cx| {
            if let Ok(list) = cx.client().list(&cx.at("missing")).await {
                ensure!(list.is_empty(), "lists {list:?} for a missing key");
            }
            cx.still_serving().await
        }),
        case!("AD-NF-004", Should, ["Core"], [], "IsDirectory of a missing key is false without an error", |cx| {
            ensure!(!cx.client().is_directory(&cx.at("missing")).await?, "true for a missing key");
            Ok(())
        }),
        case!("AD-NF-005", Info, ["Core"], [], "Not-found signal is gRPC NOT_FOUND (recommended)", |cx| {
            let err = cx.failed_cleanly(
                "Load of a missing key",
                cx.client().load(&cx.at("missing"), &cx.path("m.tmp")).await,
            )?;
            ensure!(Cx::is_not_found(&err), "not-found arrives as {:?}, not NOT_FOUND", err.kind());
            Ok(())
        }),
        case!("AD-NF-006", Must, ["Core"], [], "Every failure carries a message", |cx| {
            cx.failed_cleanly("Load", cx.client().load(&cx.at("missing"), &cx.path("a.tmp")).await)?;
            cx.failed_cleanly("Save of a missing path", cx.client().save(&cx.at("x"), &cx.path("nope")).await)?;
            Ok(())
        }),
        case!("AD-NF-007", Must, ["Core"], [], "No success=true with an error message", |cx| {
            let mut raw = cx.client().raw();
            let r = raw
                .delete(ferry_sdk::pb::DeleteArtifactRequest { artifact: Some(cx.at("missing").to_artifact()) })
                .await?;
            let m = r.into_inner();
            ensure!(!m.success || m.error.is_empty(), "success=true with error {:?} (Argo ignores it)", m.error);
            Ok(())
        }),
        case!("AD-NF-008", Must, ["Core"], [Writable], "100 not-found calls do not poison the driver", |cx| {
            for i in 0..100 {
                let _ = cx.client().load(&cx.at(&format!("missing{i}")), &cx.path("m.tmp")).await;
            }
            cx.round_trip("after", b"still fine").await
        }),
        case!("AD-DEL-001", Must, ["Core"], [Writable, Delete], "Delete an existing file key", |cx| {
            cx.save_bytes("f", b"x").await?;
            cx.client().delete(&cx.at("f")).await?;
            cx.failed_cleanly("Load after Delete", cx.client().load(&cx.at("f"), &cx.path("f.tmp")).await)?;
            ensure!(!cx.client().is_directory(&cx.at("f")).await?, "IsDirectory true after Delete");
            Ok(())
        }),
        case!(
            "AD-DEL-010",
            Must,
            ["Core", "Security"],
            [Writable],
            "Delete does what the profile claims: removes the object, or is refused with a message and keeps it",
            |cx| {
                cx.save_bytes("kept", b"kept").await?;
                // Either answer is a MUST that applies to every writable driver,
                // so certify never meets this case skipped.
                if cx.run.profile.claims.delete {
                    cx.client().delete(&cx.at("kept")).await?;
                    cx.failed_cleanly("Load after Delete", cx.client().load(&cx.at("kept"), &cx.path("k.tmp")).await)?;
                    return Ok(());
                }
                // An OK here would tell Argo's GC the artifact is gone while it stays.
                cx.failed_cleanly("Delete", cx.client().delete(&cx.at("kept")).await)?;
                same(&cx.load_bytes("kept").await?, b"kept", "the object after a refused Delete")
            }
        ),
        case!("AD-DEL-002", Must, ["Core"], [Writable, Delete], "Delete of a missing key succeeds", |cx| {
            cx.client()
                .delete(&cx.at("never-existed"))
                .await
                .map_err(|e| anyhow::anyhow!("{e} (GC retries failures forever)"))
        }),
        case!("AD-DEL-003", Must, ["Core"], [Writable, Delete], "Delete the same key 10 times", |cx| {
            cx.save_bytes("f", b"x").await?;
            for _ in 0..10 {
                cx.client().delete(&cx.at("f")).await?;
            }
            Ok(())
        }),
        case!(
            "AD-DEL-004",
            Must,
            ["Core", "Security"],
            [Writable, Delete],
            "Delete of `a` never touches `ab` or `a-b/x`",
            |cx| {
                for (name, data) in [("a", b"a".as_slice()), ("ab", b"ab"), ("a-b/x", b"a-b")] {
                    cx.save_bytes(name, data).await?;
                }
                cx.client().delete(&cx.at("a")).await?;
                same(&cx.load_bytes("ab").await?, b"ab", "ab")?;
                same(&cx.load_bytes("a-b/x").await?, b"a-b", "a-b/x")
            }
        ),
        case!(
            "AD-DEL-009",
            Must,
            ["Core", "Security"],
            [Writable, Directories, Delete],
            "Delete of the file key `k` never touches `k/child`; `k/` deletes it",
            |cx| {
                // Argo deletes under `k/` only for a key ending in `/`: the
                // objects under a file artifact's key may belong to others.
                for (name, data) in [("k/child", b"child".as_slice()), ("k/sub/deep", b"deep"), ("k-sibling", b"sib")] {
                    cx.save_bytes(name, data).await?;
                }
                cx.client().delete(&cx.at("k")).await?;
                same(&cx.load_bytes("k/child").await.context("after Delete of `k`")?, b"child", "k/child")?;
                same(&cx.load_bytes("k/sub/deep").await.context("after Delete of `k`")?, b"deep", "k/sub/deep")?;
                cx.client().delete(&cx.raw_at(&format!("{}/", cx.key("k")))).await?;
                cx.failed_cleanly(
                    "Load of k/child after Delete of `k/`",
                    cx.client().load(&cx.at("k/child"), &cx.path("c.tmp")).await,
                )?;
                ensure!(!cx.client().is_directory(&cx.at("k")).await?, "objects remain under k/ after Delete of `k/`");
                same(&cx.load_bytes("k-sibling").await?, b"sib", "k-sibling")
            }
        ),
        case!(
            "AD-DEL-007",
            Must,
            ["Core", "Dir"],
            [Writable, Directories, Delete],
            "Delete of a 2,000-object tree completes in bounded time",
            |cx| {
                let files: Vec<(String, Vec<u8>)> =
                    (0..2000).map(|i| (format!("d{}/f{i}", i % 20), vec![i as u8])).collect();
                let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
                cx.save_tree("t", &refs).await?;
                let started = Instant::now();
                cx.client().delete(&cx.raw_at(&format!("{}/", cx.key("t")))).await?;
                let limit = Duration::from_secs(cx.run.profile.limits.rpc_deadline_seconds);
                ensure!(started.elapsed() < limit, "took {:?}", started.elapsed());
                ensure!(!cx.client().is_directory(&cx.at("t")).await?, "objects left after Delete");
                Ok(())
            }
        ),
        case!(
            "AD-LIST-001",
            Must,
            ["Core"],
            [Writable, List],
            "ListObjects returns exactly the objects under key/",
            |cx| {
                let want = fixture(&cx).await?;
                let mut got = cx.client().list(&cx.at("p")).await?;
                got.sort();
                ensure!(got == want, "got {got:?}, want {want:?}");
                Ok(())
            }
        ),
        case!("AD-LIST-002", Must, ["Core"], [Writable, List], "Every listed key starts with key/", |cx| {
            fixture(&cx).await?;
            let prefix = format!("{}/", cx.key("p"));
            for k in cx.client().list(&cx.at("p")).await? {
                ensure!(k.starts_with(&prefix), "{k:?} does not start with {prefix:?}");
            }
            Ok(())
        }),
        case!("AD-LIST-003", Must, ["Core", "Security"], [Writable, List], "Sibling prefixes are excluded", |cx| {
            fixture(&cx).await?;
            for k in cx.client().list(&cx.at("p")).await? {
                ensure!(!k.contains("/px/") && !k.contains("/p-q/"), "sibling {k:?} listed");
            }
            Ok(())
        }),
        case!("AD-LIST-004", Must, ["Core"], [Writable, List], "Trailing slash lists the same set", |cx| {
            fixture(&cx).await?;
            let mut a = cx.client().list(&cx.at("p")).await?;
            let mut b = cx.client().list(&cx.raw_at(&format!("{}/", cx.key("p")))).await?;
            a.sort();
            b.sort();
            ensure!(a == b, "{a:?} vs {b:?}");
            Ok(())
        }),
        case!("AD-LIST-005", Must, ["Core"], [Writable, List], "No duplicates, no directory markers", |cx| {
            fixture(&cx).await?;
            let got = cx.client().list(&cx.at("p")).await?;
            let mut dedup = got.clone();
            dedup.sort();
            dedup.dedup();
            ensure!(dedup.len() == got.len(), "duplicates in {got:?}");
            ensure!(!got.iter().any(|k| k.ends_with('/')), "directory marker in {got:?}");
            Ok(())
        }),
        case!(
            "AD-LIST-006",
            Must,
            ["Core", "Dir"],
            [Writable, Directories, List],
            "1,500 objects under one key are all listed",
            |cx| {
                let files: Vec<(String, Vec<u8>)> = (0..1500).map(|i| (format!("f{i:04}"), vec![1])).collect();
                let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
                cx.save_tree("many", &refs).await?;
                let n = cx.client().list(&cx.at("many")).await?.len();
                ensure!(n == 1500, "listed {n} of 1500");
                Ok(())
            }
        ),
        case!("AD-LIST-007", Should, ["Core"], [Writable], "Listing a plain file key is not an error", |cx| {
            cx.save_bytes("pfile", b"x").await?;
            let got = cx.client().list(&cx.at("pfile")).await?;
            ensure!(got.is_empty() || got == vec![cx.key("pfile")], "lists {got:?}");
            Ok(())
        }),
        case!(
            "AD-LIST-008",
            Must,
            ["Core"],
            [Writable, List, Delete],
            "Listings reflect Save and Delete at once",
            |cx| {
                cx.save_bytes("d/one", b"1").await?;
                ensure!(cx.client().list(&cx.at("d")).await?.contains(&cx.key("d/one")), "new key not listed");
                cx.save_bytes("d/two", b"2").await?;
                cx.client().delete(&cx.at("d/one")).await?;
                let got = cx.client().list(&cx.at("d")).await?;
                ensure!(got == vec![cx.key("d/two")], "after delete: {got:?}");
                Ok(())
            }
        ),
        case!("AD-ISDIR-001", Must, ["Core"], [Writable, List], "A key with children is a directory", |cx| {
            fixture(&cx).await?;
            ensure!(cx.client().is_directory(&cx.at("p")).await?, "false");
            Ok(())
        }),
        case!("AD-ISDIR-002", Must, ["Core"], [Writable], "A plain file key is not a directory", |cx| {
            fixture(&cx).await?;
            ensure!(!cx.client().is_directory(&cx.at("pfile")).await?, "true");
            Ok(())
        }),
        case!(
            "AD-ISDIR-003",
            Must,
            ["Core", "Security"],
            [Writable],
            "A prefix without a / boundary is not a directory",
            |cx| {
                fixture(&cx).await?;
                ensure!(!cx.client().is_directory(&cx.at("p-")).await?, "p- counted p-q/y");
                ensure!(!cx.client().is_directory(&cx.at("pfil")).await?, "pfil counted pfile");
                Ok(())
            }
        ),
        case!("AD-ISDIR-004", Must, ["Core"], [Writable], "Trailing slash gives the same answer", |cx| {
            fixture(&cx).await?;
            for name in ["p", "pfile", "nothing"] {
                let a = cx.client().is_directory(&cx.at(name)).await?;
                let b = cx.client().is_directory(&cx.raw_at(&format!("{}/", cx.key(name)))).await?;
                ensure!(a == b, "{name}: {a} vs {b} with a slash");
            }
            Ok(())
        }),
        case!("AD-ISDIR-005", Should, ["Core"], [Writable], "IsDirectory agrees with ListObjects", |cx| {
            fixture(&cx).await?;
            for name in ["p", "p/b", "pfile"] {
                let dir = cx.client().is_directory(&cx.at(name)).await?;
                let listed = cx.client().list(&cx.at(name)).await.unwrap_or_default();
                ensure!(dir != listed.is_empty(), "{name}: IsDirectory {dir}, {} listed", listed.len());
            }
            Ok(())
        }),
    ]
}

/// `p/a`, `p/b/c`, `p/b/d/e`, `px/z`, `p-q/y` and a plain `pfile`; returns the keys under `p/`.
async fn fixture(cx: &Cx) -> anyhow::Result<Vec<String>> {
    for name in ["p/a", "p/b/c", "p/b/d/e", "px/z", "p-q/y", "pfile"] {
        cx.save_bytes(name, name.as_bytes()).await?;
    }
    let mut want: Vec<String> = ["p/a", "p/b/c", "p/b/d/e"].iter().map(|n| cx.key(n)).collect();
    want.sort();
    Ok(want)
}
