//! Directories (`archive: none`): trees, symlinks, recursive delete.

use crate::case;
use crate::case::Case;
use crate::context::{Cx, same};
use anyhow::{Context as _, ensure};
use std::time::Duration;

/// The base tree `T` of the catalogue.
fn base_tree(cx: &Cx) -> Vec<(String, Vec<u8>)> {
    let deep = (0..16).map(|i| format!("d{i}")).collect::<Vec<_>>().join("/") + "/deep.txt";
    vec![
        ("a.txt".into(), cx.payload(100, 1)),
        ("empty".into(), vec![]),
        ("sub/b.bin".into(), cx.payload(70_000, 2)),
        ("sub/deeper/c".into(), cx.payload(3, 3)),
        (".hidden".into(), cx.payload(5, 4)),
        ("with space/d".into(), cx.payload(6, 5)),
        ("ünïcødé/é.txt".into(), cx.payload(7, 6)),
        (deep, cx.payload(8, 7)),
        ("n".repeat(200), cx.payload(9, 8)),
    ]
}

async fn save_base(cx: &Cx, name: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let files = base_tree(cx);
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    cx.save_tree(name, &refs).await?;
    Ok(files)
}

/// Regular files under `root` as (relative path, bytes), sorted.
fn read_tree(root: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "AD-DIR-001",
            Must,
            ["Dir"],
            [Writable, Directories],
            "A directory round trips: same files, same bytes",
            |cx| {
                let mut files = save_base(&cx, "t").await?;
                let dst = cx.path("t.tmp");
                cx.client().load(&cx.at("t"), &dst).await?;
                ensure!(dst.is_dir(), "Load did not create a directory");
                files.sort();
                let got = read_tree(&dst)?;
                let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
                ensure!(names(&got) == names(&files), "files differ: got {:?}", names(&got));
                ensure!(got == files, "file contents differ");
                Ok(())
            }
        ),
        case!("AD-DIR-002", Must, ["Dir"], [Writable, Directories], "OpenStream of a file inside a directory", |cx| {
            let files = save_base(&cx, "t").await?;
            let want = &files.iter().find(|(n, _)| n == "sub/deeper/c").expect("fixture").1;
            same(&cx.stream_bytes("t/sub/deeper/c").await?, want, "OpenStream")
        }),
        case!(
            "AD-DIR-003",
            Must,
            ["Dir"],
            [Writable, Directories],
            "ListObjects of a directory lists every file with its full key",
            |cx| {
                let files = save_base(&cx, "t").await?;
                let mut want: Vec<String> = files.iter().map(|(n, _)| format!("{}/{n}", cx.key("t"))).collect();
                want.sort();
                let mut got = cx.client().list(&cx.at("t")).await?;
                got.sort();
                ensure!(got == want, "got {got:?}");
                Ok(())
            }
        ),
        case!(
            "AD-DIR-004",
            Must,
            ["Dir"],
            [Writable, Directories],
            "IsDirectory of K and K/ after a directory Save",
            |cx| {
                save_base(&cx, "t").await?;
                ensure!(cx.client().is_directory(&cx.at("t")).await?, "IsDirectory(K) false");
                ensure!(
                    cx.client().is_directory(&cx.raw_at(&format!("{}/", cx.key("t")))).await?,
                    "IsDirectory(K/) false"
                );
                Ok(())
            }
        ),
        case!("AD-DIR-005", Must, ["Dir"], [Writable, Directories], "Zero-byte files inside a tree survive", |cx| {
            cx.save_tree("z", &[("empty", vec![]), ("sub/also-empty", vec![]), ("full", vec![1])]).await?;
            let dst = cx.path("z.tmp");
            cx.client().load(&cx.at("z"), &dst).await?;
            for f in ["empty", "sub/also-empty"] {
                let meta = std::fs::metadata(dst.join(f)).with_context(|| format!("{f} missing after Load"))?;
                ensure!(meta.len() == 0, "{f} has {} bytes", meta.len());
            }
            Ok(())
        }),
        case!(
            "AD-DIR-006",
            Info,
            ["Dir"],
            [Writable, Directories],
            "Empty sub-directories (recorded as preservesEmptyDirs)",
            |cx| {
                let root = cx.save_tree("e", &[("f", vec![1])]).await?;
                std::fs::create_dir_all(root.join("empty-dir"))?;
                cx.client().save(&cx.at("e"), &root).await?;
                let dst = cx.path("e.tmp");
                cx.client().load(&cx.at("e"), &dst).await?;
                cx.observe("preservesEmptyDirs", dst.join("empty-dir").is_dir());
                Ok(())
            }
        ),
        case!(
            "AD-DIR-008",
            Must,
            ["Dir"],
            [Writable, Directories],
            "Loaded files are plain, readable and writable",
            |cx| {
                save_base(&cx, "t").await?;
                let dst = cx.path("t.tmp");
                cx.client().load(&cx.at("t"), &dst).await?;
                use std::os::unix::fs::PermissionsExt;
                for (rel, _) in read_tree(&dst)? {
                    let meta = std::fs::symlink_metadata(dst.join(&rel))?;
                    ensure!(meta.is_file(), "{rel} is not a regular file");
                    let mode = meta.permissions().mode();
                    ensure!(mode & 0o6000 == 0, "{rel} has setuid/setgid bits ({mode:o})");
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(dst.join(&rel))
                        .with_context(|| format!("{rel} is not readable and writable"))?;
                }
                Ok(())
            }
        ),
        case!(
            "AD-DIR-009",
            Must,
            ["Dir"],
            [Writable, Directories],
            "A symlink to a file inside the tree: no error, no hang",
            |cx| {
                let root = cx.path("tree/l");
                std::fs::create_dir_all(root.join("sub"))?;
                std::fs::write(root.join("sub/target"), b"target")?;
                std::os::unix::fs::symlink("sub/target", root.join("link"))?;
                let saved = cx.client().save(&cx.at("l"), &root).await;
                let behaviour = match &saved {
                    Err(_) => "refused",
                    Ok(()) if cx.client().list(&cx.at("l")).await?.contains(&format!("{}/link", cx.key("l"))) => {
                        "dereferenced"
                    }
                    Ok(()) => "skipped",
                };
                cx.observe("symlinks", behaviour);
                ensure!(
                    saved.is_ok(),
                    "Save of a tree with an inner symlink failed: {}",
                    saved.err().map(|e| e.to_string()).unwrap_or_default()
                );
                Ok(())
            }
        ),
        case!(
            "AD-DIR-010",
            Must,
            ["Dir", "Security"],
            [Writable, Directories],
            "A symlink out of the tree never uploads its target",
            |cx| {
                let canary = cx.path("canary-secret");
                let secret = format!("canary-{}", cx.run.run_id);
                std::fs::write(&canary, &secret)?;
                let root = cx.path("tree/x");
                std::fs::create_dir_all(&root)?;
                std::fs::write(root.join("ok.txt"), b"ok")?;
                std::os::unix::fs::symlink(&canary, root.join("steal"))?;
                let _ = cx.client().save(&cx.at("x"), &root).await;
                for key in cx.client().list(&cx.at("x")).await.unwrap_or_default() {
                    let bytes = cx.stream_location(&cx.raw_at(&key)).await.unwrap_or_default();
                    ensure!(bytes != secret.as_bytes(), "the canary outside the tree was uploaded as {key}");
                }
                Ok(())
            }
        ),
        case!(
            "AD-DIR-011",
            Must,
            ["Dir"],
            [Writable, Directories],
            "Dangling symlinks and loops: completes or fails cleanly",
            |cx| {
                let root = cx.path("tree/loop");
                std::fs::create_dir_all(&root)?;
                std::fs::write(root.join("f"), b"f")?;
                std::os::unix::fs::symlink("missing", root.join("dangling"))?;
                std::os::unix::fs::symlink(".", root.join("loop"))?;
                let deadline = Duration::from_secs(cx.run.profile.limits.rpc_deadline_seconds);
                let r = tokio::time::timeout(deadline, cx.client().save(&cx.at("loop"), &root)).await;
                ensure!(r.is_ok(), "Save did not finish within {deadline:?}");
                cx.still_serving().await
            }
        ),
        case!(
            "AD-DIR-012",
            Should,
            ["Dir"],
            [Writable, Directories],
            "Re-saving a smaller tree replaces the old one",
            |cx| {
                cx.save_tree("r", &[("keep", vec![1]), ("gone", vec![2])]).await?;
                let root = cx.path("tree/r");
                std::fs::remove_file(root.join("gone"))?;
                cx.client().save(&cx.at("r"), &root).await?;
                let got = cx.client().list(&cx.at("r")).await?;
                cx.observe("dirOverwrite", if got.len() == 1 { "replace" } else { "merge" });
                ensure!(got == vec![format!("{}/keep", cx.key("r"))], "stale files remain: {got:?}");
                Ok(())
            }
        ),
        case!(
            "AD-DIR-015",
            Must,
            ["Dir"],
            [Writable, Directories],
            "OpenStream on a directory key never passes as an empty file",
            |cx| {
                save_base(&cx, "t").await?;
                match cx.stream_bytes("t").await {
                    Ok(bytes) => {
                        ensure!(!bytes.is_empty(), "OpenStream of a directory ended OK with 0 bytes");
                        cx.observe("openStreamDirectory", "bytes");
                    }
                    Err(_) => cx.observe("openStreamDirectory", "error"),
                }
                Ok(())
            }
        ),
        case!(
            "AD-DIR-017",
            Must,
            ["Dir", "Security"],
            [Writable, Directories],
            "A file Save at a directory's key is refused, or Load then gives that file",
            |cx| {
                // Argo's Load lists `key/` first: a file saved beside a tree
                // would otherwise be acknowledged and never read back.
                cx.save_tree("k", &[("a", b"tree".to_vec())]).await?;
                let file = cx.path("file-over-tree");
                std::fs::write(&file, b"file")?;
                let saved = cx.client().save(&cx.at("k"), &file).await;
                cx.observe("fileOverDirectory", if saved.is_ok() { "replaces" } else { "refused" });
                let dst = cx.path("k.out");
                cx.client().load(&cx.at("k"), &dst).await.context("Load after the file Save")?;
                match saved {
                    Ok(()) => same(&std::fs::read(&dst).context("Load gave a directory")?, b"file", "Load of the key"),
                    Err(e) => {
                        ensure!(!e.message().trim().is_empty(), "refused without a message");
                        same(&std::fs::read(dst.join("a")).context("the tree after a refused Save")?, b"tree", "k/a")
                    }
                }
            }
        ),
        case!(
            "AD-DIR-018",
            Must,
            ["Dir"],
            [Writable, Directories],
            "A directory Save at a file's key is refused, or Load then gives that directory",
            |cx| {
                cx.save_bytes("f", b"file").await?;
                let root = cx.path("tree/f");
                std::fs::create_dir_all(&root)?;
                std::fs::write(root.join("a"), b"tree")?;
                let saved = cx.client().save(&cx.at("f"), &root).await;
                cx.observe("directoryOverFile", if saved.is_ok() { "replaces" } else { "refused" });
                let dst = cx.path("f.out");
                cx.client().load(&cx.at("f"), &dst).await.context("Load after the directory Save")?;
                match saved {
                    Ok(()) => same(&std::fs::read(dst.join("a")).context("Load gave no directory")?, b"tree", "f/a"),
                    Err(e) => {
                        ensure!(!e.message().trim().is_empty(), "refused without a message");
                        same(&std::fs::read(&dst).context("the file after a refused Save")?, b"file", "f")
                    }
                }
            }
        ),
        case!(
            "AD-DIR-016",
            Should,
            ["Dir", "Slow"],
            [Writable, Directories],
            "A tree of 2,000 small files round trips",
            |cx| {
                let files: Vec<(String, Vec<u8>)> =
                    (0..2000).map(|i| (format!("s{}/f{i}", i % 40), cx.payload(i % 500, i as u64))).collect();
                let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
                cx.save_tree("many", &refs).await?;
                let dst = cx.path("many.tmp");
                cx.client().load(&cx.at("many"), &dst).await?;
                let mut want = files.clone();
                want.sort();
                ensure!(read_tree(&dst)? == want, "the loaded tree differs");
                Ok(())
            }
        ),
        case!(
            "AD-DEL-006",
            Must,
            ["Dir"],
            [Writable, Directories, Delete],
            "Delete of a directory key with a trailing slash is recursive",
            |cx| {
                save_base(&cx, "t").await?;
                cx.client().delete(&cx.raw_at(&format!("{}/", cx.key("t")))).await?;
                ensure!(!cx.client().is_directory(&cx.at("t")).await?, "objects remain under K/");
                Ok(())
            }
        ),
        case!(
            "AD-DEL-008",
            Should,
            ["Dir"],
            [Writable, Directories, Delete],
            "Deleting one file of a tree leaves the rest",
            |cx| {
                let files = save_base(&cx, "t").await?;
                cx.client().delete(&cx.at("t/sub/b.bin")).await?;
                let got = cx.client().list(&cx.at("t")).await?;
                ensure!(got.len() == files.len() - 1, "{} left of {}", got.len(), files.len());
                ensure!(!got.iter().any(|k| k.ends_with("/sub/b.bin")), "b.bin still listed");
                Ok(())
            }
        ),
    ]
}
