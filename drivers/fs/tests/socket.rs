//! `ferry-driver-fs` as Argo runs it: a separate process, a unix socket given
//! as its only argument, gRPC over that socket, SIGTERM at the end.

use bytes::Bytes;
use ferry_proto as pb;
use ferry_sdk::ErrorKind;
use ferry_sdk::client::{DriverClient, Location};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Driver {
    child: Child,
    client: DriverClient,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Driver {
    async fn start() -> Driver {
        Driver::start_with(&[]).await
    }

    async fn start_with(env: &[(&str, &str)]) -> Driver {
        let dir = tempfile::tempdir().unwrap();
        // The socket directory does not exist yet: the driver must create it.
        let socket = dir.path().join("artifact-plugins/fs/socket");
        let child = Command::new(env!("CARGO_BIN_EXE_ferry-driver-fs"))
            .arg(&socket)
            .envs(env.iter().copied())
            .env("FERRY_LOG", std::env::var("TEST_DRIVER_LOG").unwrap_or("warn".into()))
            .stderr(if std::env::var_os("TEST_DRIVER_LOG").is_some() { Stdio::inherit() } else { Stdio::piped() })
            .spawn()
            .unwrap();
        let client = DriverClient::connect(&socket, Duration::from_secs(10)).await.unwrap();
        Driver { child, client, dir, socket }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    fn at(&self, key: &str) -> Location {
        Location::new("fs", format!("root: {}", self.root().display()), key)
    }

    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("scratch").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("driver did not exit within 10 s of SIGTERM");
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut out = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes of any length, so odd sizes cross frame boundaries.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed as usize * 7) % 251) as u8).collect()
}

async fn streamed(client: &DriverClient, at: &Location) -> Vec<u8> {
    let mut stream = client.open_stream(at).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walk(root, root);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(root, &p));
        } else {
            out.push((p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn files_round_trip_byte_exact_through_load_and_open_stream() {
    let d = Driver::start().await;
    for (name, data) in [
        ("small.txt", b"hello ferry".to_vec()),
        ("empty", Vec::new()),
        ("odd-3MiB", pattern(3 * 1024 * 1024 + 7, 1)),
        ("multipart-40MiB", pattern(40 * 1024 * 1024 + 3, 2)),
    ] {
        let src = d.scratch(name);
        std::fs::write(&src, &data).unwrap();
        let at = d.at(&format!("wf-abc/wf-abc-1234/{name}"));
        d.client.save(&at, &src).await.unwrap();
        // Argo loads into `<path>.tmp` whose parent exists.
        let dst = d.scratch(&format!("{name}.tmp"));
        d.client.load(&at, &dst).await.unwrap();
        assert_eq!(std::fs::read(&dst).unwrap(), data, "{name} via Load");
        assert_eq!(streamed(&d.client, &at).await, data, "{name} via OpenStream");
        assert!(!d.client.is_directory(&at).await.unwrap());
    }
}

#[tokio::test]
async fn open_stream_frames_are_bounded_and_end_with_an_empty_is_end() {
    let d = Driver::start().await;
    let src = d.scratch("big");
    let data = pattern(9 * 1024 * 1024 + 5, 3);
    std::fs::write(&src, &data).unwrap();
    let at = d.at("frames/big");
    d.client.save(&at, &src).await.unwrap();
    let mut raw = d.client.raw();
    let mut frames =
        raw.open_stream(pb::OpenStreamRequest { artifact: Some(at.to_artifact()) }).await.unwrap().into_inner();
    let (mut got, mut ends) = (Vec::new(), 0);
    while let Some(f) = frames.message().await.unwrap() {
        assert!(f.data.len() <= ferry_sdk::server::MAX_FRAME_BYTES, "frame of {} bytes", f.data.len());
        assert!(f.error.is_empty());
        if f.is_end {
            assert!(f.data.is_empty(), "data in the is_end frame is dropped by Argo");
            ends += 1;
        } else {
            assert_eq!(ends, 0, "frame after is_end");
            got.extend_from_slice(&f.data);
        }
    }
    assert_eq!(ends, 1);
    assert_eq!(got, data);
}

#[tokio::test]
async fn directories_with_unicode_names_round_trip_and_list_full_keys() {
    let d = Driver::start().await;
    let src = d.scratch("out");
    let files = [
        ("a.txt", pattern(10, 1)),
        ("empty", vec![]),
        ("sub/b.bin", pattern(70_000, 2)),
        ("sub/deeper/c", pattern(3, 3)),
        (".hidden", pattern(5, 4)),
        ("with space/d", pattern(6, 5)),
        ("ünïcødé/é.txt", pattern(7, 6)),
        ("日本語/🚀 launch.log", pattern(8, 7)),
    ];
    for (rel, data) in &files {
        std::fs::create_dir_all(src.join(rel).parent().unwrap()).unwrap();
        std::fs::write(src.join(rel), data).unwrap();
    }
    let at = d.at("wf/pod/out");
    d.client.save(&at, &src).await.unwrap();

    let mut listed = d.client.list(&at).await.unwrap();
    listed.sort();
    let mut expected: Vec<String> = files.iter().map(|(rel, _)| format!("wf/pod/out/{rel}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(d.client.list(&d.at("wf/pod/out/")).await.unwrap().len(), files.len(), "trailing slash");
    assert!(d.client.is_directory(&at).await.unwrap());
    assert!(d.client.is_directory(&d.at("wf/pod/out/")).await.unwrap());
    assert!(!d.client.is_directory(&d.at("wf/pod/ou")).await.unwrap(), "sibling prefix");

    let dst = d.scratch("out.tmp");
    d.client.load(&at, &dst).await.unwrap();
    assert_eq!(tree(&dst), tree(&src));
    // argo-server browsing: one file inside the directory.
    assert_eq!(streamed(&d.client, &d.at("wf/pod/out/ünïcødé/é.txt")).await, pattern(7, 6));

    // Re-saving a smaller tree replaces the old one.
    std::fs::remove_dir_all(src.join("sub")).unwrap();
    d.client.save(&at, &src).await.unwrap();
    let listed = d.client.list(&at).await.unwrap();
    assert_eq!(listed.len(), files.len() - 2, "{listed:?}");
    assert!(!listed.iter().any(|k| k.contains("/sub/")));
}

#[tokio::test]
async fn odd_keys_round_trip_and_list_byte_for_byte() {
    let d = Driver::start().await;
    let src = d.scratch("f");
    std::fs::write(&src, b"x").unwrap();
    for key in [
        "odd/ !@#$%^&()_+-=;',.~`[]{}",
        "odd/a%2Fb",
        "odd/a+b",
        "odd/file#1",
        "odd/données/résumé.txt",
        "odd/uploads/ns/0f2c/file name (1).csv",
    ] {
        d.client.save(&d.at(key), &src).await.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(streamed(&d.client, &d.at(key)).await, b"x", "{key}");
    }
    let listed = d.client.list(&d.at("odd")).await.unwrap();
    for key in ["odd/a%2Fb", "odd/file#1", "odd/ !@#$%^&()_+-=;',.~`[]{}", "odd/données/résumé.txt"] {
        assert!(listed.contains(&key.to_string()), "{key} missing from {listed:?}");
    }
    assert_eq!(listed.len(), 6);
}

#[tokio::test]
async fn sizes_and_ranges_read_the_file_in_place() {
    let d = Driver::start().await;
    // Odd sizes and a key that needs escaping: ranges start mid-file, across frames.
    let data = pattern(3 * 1024 * 1024 + 7, 5);
    let src = d.scratch("ranged");
    std::fs::write(&src, &data).unwrap();
    let at = d.at("wf/odd #%.bin");
    d.client.save(&at, &src).await.unwrap();
    ferry_test_servers::objects::check_sizes_and_ranges(&d.client, &at, &data, &d.at("wf/missing")).await;
    assert_eq!(d.client.stat(&d.at("wf")).await.unwrap_err().kind(), ErrorKind::NotFound, "a directory has no size");
    assert_eq!(ferry_test_servers::objects::read_range(&d.client, &at, 1, u64::MAX).await, data[1..]);
    // The file is read where it lies: nothing is copied or staged for a range.
    assert_eq!(tree(&d.root()).len(), 1);
}

#[tokio::test]
async fn missing_keys_are_not_found_and_leave_nothing_behind() {
    let d = Driver::start().await;
    let at = d.at("nope/missing.tgz");
    let dst = d.scratch("missing.tmp");
    let err = d.client.load(&at, &dst).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!dst.exists(), "Load of a missing key must not leave a file");
    assert_eq!(std::fs::read_dir(dst.parent().unwrap()).unwrap().count(), 0, "staging left behind");

    let err = d.client.open_stream(&at).await.err().expect("OpenStream of a missing key fails before data");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let status = d
        .client
        .raw()
        .load(pb::LoadArtifactRequest { input_artifact: Some(at.to_artifact()), path: dst.to_string_lossy().into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(d.client.list(&at).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(!d.client.is_directory(&at).await.unwrap());
}

#[tokio::test]
async fn delete_is_idempotent_scoped_and_prefix_safe() {
    let d = Driver::start().await;
    let src = d.scratch("f");
    std::fs::write(&src, b"keep").unwrap();
    // On a filesystem `a` is either a file or a directory; test both shapes.
    for key in ["p/a/x", "p/a/y/z", "p/ab", "p/a-b/x", "q/a", "q/ab", "q/a-b/x"] {
        d.client.save(&d.at(key), &src).await.unwrap();
    }
    // A file key never reaches under `key/`: on disk `p/a` is a directory,
    // and its files are not the object `p/a`.
    d.client.delete(&d.at("p/a")).await.unwrap();
    assert_eq!(d.client.list(&d.at("p/a")).await.unwrap().len(), 2, "Delete of the file key p/a emptied p/a/");
    for _ in 0..3 {
        d.client.delete(&d.at("p/a/")).await.unwrap();
        d.client.delete(&d.at("q/a")).await.unwrap();
    }
    for dir in ["p", "q"] {
        let mut left = d.client.list(&d.at(dir)).await.unwrap();
        left.sort();
        assert_eq!(left, vec![format!("{dir}/a-b/x"), format!("{dir}/ab")]);
    }
    d.client.delete(&d.at("never/existed")).await.unwrap();

    // A directory key with a trailing slash, as Argo GC sends for archive: none.
    d.client.delete(&d.at("p/")).await.unwrap();
    assert!(!d.client.is_directory(&d.at("p")).await.unwrap());
    // An empty key would name the whole root: refused by every call, and
    // nothing is loaded (issue 14: Load of "" copied the whole root).
    let err = d.client.delete(&d.at("")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let dst = d.scratch("everything");
    let err = d.client.load(&d.at(""), &dst).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("empty key"), "{err}");
    assert!(!dst.exists(), "Load of the empty key wrote {}", dst.display());
    assert_eq!(d.client.list(&d.at("")).await.unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(d.client.is_directory(&d.at("")).await.unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(d.client.open_stream(&d.at("")).await.err().map(|e| e.kind()), Some(ErrorKind::InvalidArgument));
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error_and_the_driver_keeps_serving() {
    let d = Driver::start().await;
    let src = d.scratch("f");
    std::fs::write(&src, b"data").unwrap();
    let cases = [
        ("root: [unclosed", "invalid configuration"),
        (&*format!("root: {}\nrot: /typo", d.root().display()), "rot"),
        ("root: relative/path", "absolute"),
        ("root: {a: 1}", "root"),
    ];
    for (config, needle) in cases {
        let at = Location::new("fs", config, "k");
        let err = d.client.save(&at, &src).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{config}: {err}");
        assert!(err.to_string().contains(needle), "{config}: {err}");
        let err = d.client.list(&at).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
    let good = d.at("after/bad/config");
    d.client.save(&good, &src).await.unwrap();
    assert_eq!(streamed(&d.client, &good).await, b"data");
}

#[tokio::test]
async fn keys_and_symlinks_cannot_escape_the_root() {
    let d = Driver::start().await;
    let src = d.scratch("f");
    std::fs::write(&src, b"data").unwrap();
    for key in ["../escape", "a/../../b", "/etc/passwd", "a//b"] {
        let err = d.client.save(&d.at(key), &src).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{key}: {err}");
    }
    assert!(!d.dir.path().join("escape").exists());

    // A symlink planted inside the root pointing outside it.
    let outside = d.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"secret canary").unwrap();
    d.client.save(&d.at("seed"), &src).await.unwrap();
    std::os::unix::fs::symlink(&outside, d.root().join("link")).unwrap();
    let err = d.client.load(&d.at("link/canary"), &d.scratch("c.tmp")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(d.client.open_stream(&d.at("link/canary")).await.is_err());
    d.client.save(&d.at("link/planted"), &src).await.unwrap_err();
    assert!(!outside.join("planted").exists());
    match d.client.list(&d.at("link")).await {
        Ok(listed) => assert!(!listed.iter().any(|k| k.contains("canary")), "{listed:?}"),
        Err(e) => assert_ne!(e.kind(), ErrorKind::Other, "{e}"),
    }

    // A step's output directory with a symlink out of it is refused, so the
    // canary is never uploaded.
    let out = d.scratch("outdir");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("ok.txt"), b"ok").unwrap();
    std::os::unix::fs::symlink(outside.join("canary"), out.join("steal")).unwrap();
    let err = d.client.save(&d.at("exfil"), &out).await.unwrap_err();
    assert!(err.to_string().contains("outside the artifact directory"), "{err}");
    assert!(d.client.list(&d.at("exfil")).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn save_stream_round_trips_and_a_cancelled_one_leaves_no_object() {
    let d = Driver::start().await;
    assert!(d.client.supports_save_stream().await.unwrap());
    let data = pattern(21 * 1024 * 1024 + 11, 9);
    let at = d.at("uploads/ns/id/file.bin");
    let chunks: Vec<_> = data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    d.client.save_stream(&at, futures::stream::iter(chunks).boxed()).await.unwrap();
    assert_eq!(streamed(&d.client, &at).await, data);

    let broken = d.at("uploads/ns/id/broken.bin");
    let chunks: Vec<ferry_sdk::Result<Bytes>> =
        vec![Ok(Bytes::from(pattern(20 << 20, 1))), Err(ferry_sdk::Error::new(ErrorKind::Transient, "reader failed"))];
    let err = d.client.save_stream(&broken, futures::stream::iter(chunks).boxed()).await.unwrap_err();
    assert!(err.to_string().contains("reader failed"), "{err}");
    // The driver sees a cancelled stream; give it a moment to abort.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!d.root().join("uploads/ns/id/broken.bin").exists(), "a cancelled upload was committed");
    // A fresh connection: this checks the object, not the cancelled call's connection.
    let fresh = DriverClient::connect(&d.socket, Duration::from_secs(5)).await.unwrap();
    match fresh.open_stream(&broken).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
        Ok(_) => panic!("a cancelled upload is readable"),
    }
    // The cancelled call's own connection must keep working too.
    if let Err(e) = d.client.list(&d.at("uploads")).await {
        panic!("the connection that carried the cancelled upload is broken: {e}");
    }
    let leftovers: Vec<_> =
        walk(&d.root(), &d.root()).into_iter().map(|(p, _)| p).filter(|p| p.contains("broken")).collect();
    assert!(leftovers.is_empty(), "partial upload left behind: {leftovers:?}");

    // The abandoned upload must not hold a handler open in the driver: SIGTERM
    // would then wait out the whole grace period.
    let mut d = d;
    let started = std::time::Instant::now();
    assert_eq!(tokio::task::block_in_place(|| d.terminate()).code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
}

#[tokio::test]
async fn sigterm_exits_zero_and_removes_the_socket() {
    let mut d = Driver::start().await;
    let src = d.scratch("f");
    std::fs::write(&src, b"x").unwrap();
    d.client.save(&d.at("k"), &src).await.unwrap();
    // An idle connection stays open, as Argo never closes its clients; the
    // driver must not wait for it (that would cost the whole 8 s grace).
    let started = std::time::Instant::now();
    let status = d.terminate();
    assert_eq!(status.code(), Some(0), "stderr: {}", d.stderr());
    assert!(started.elapsed() < Duration::from_secs(4), "idle connection held shutdown for {:?}", started.elapsed());
    assert!(!d.socket.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_save_finish() {
    let mut d = Driver::start().await;
    let src = d.scratch("big");
    std::fs::write(&src, pattern(256 << 20, 4)).unwrap();
    let client = d.client.clone();
    let at = d.at("inflight/big");
    let save = tokio::spawn(async move { client.save(&at, &src).await });
    // Signal only once the driver is copying: its staging file exists.
    let staging = d.root().join(ferry_driver_fs::STAGING_DIR);
    while std::fs::read_dir(&staging).map(|mut e| e.next().is_none()).unwrap_or(true) {
        assert!(!save.is_finished(), "save finished before it could be interrupted");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let status = tokio::task::block_in_place(|| d.terminate());
    assert_eq!(status.code(), Some(0));
    save.await.unwrap().expect("a save in flight at SIGTERM completes");
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let mut first = Driver::start().await;
    // SIGKILL leaves the socket file behind, as a crashed container would.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(first.socket.exists());
    let second = Command::new(env!("CARGO_BIN_EXE_ferry-driver-fs")).arg(&first.socket).spawn().unwrap();
    first.child = second;
    let client = DriverClient::connect(&first.socket, Duration::from_secs(10)).await.unwrap();
    assert!(client.supports_save_stream().await.unwrap());
}

#[tokio::test]
async fn json_logs_never_contain_secrets_or_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s");
    let child = Command::new(env!("CARGO_BIN_EXE_ferry-driver-fs"))
        .arg(&socket)
        .env("FERRY_LOG_FORMAT", "json")
        .env("FERRY_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = DriverClient::connect(&socket, Duration::from_secs(10)).await.unwrap();
    let secret = "s3cr3t-token-value";
    let config = format!("root: {}\n# {secret}", dir.path().join("r").display());
    let src = dir.path().join("f");
    std::fs::write(&src, b"x").unwrap();
    let at = Location::new("fs", config.clone(), "k");
    client.save(&at, &src).await.unwrap();
    let _ = client.load(&at.with_key("missing"), &dir.path().join("m")).await;
    let _ = client.save(&Location::new("fs", format!("{config}\nbogus: {secret}"), "k"), &src).await;
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(log.lines().all(|l| l.starts_with('{')), "not JSON: {log}");
    assert!(log.contains("\"op\":\"save\""), "{log}");
    assert!(!log.contains(secret), "secret leaked into logs: {log}");
}

#[test]
fn sigterm_during_start_up_still_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let socket = dir.path().join(format!("{i}/socket"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-driver-fs")).arg(&socket).spawn().unwrap();
        // Wait only until the runtime is up (the socket appears right after);
        // the handlers must already be in place by then.
        while !socket.exists() {
            std::thread::sleep(Duration::from_micros(200));
        }
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0), "start-up #{i}");
    }
}

/// No configuration value makes the driver panic; it answers each with an
/// error or a result and keeps serving (issue 14).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_configuration_values_never_crash_the_driver() {
    let root = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_ferry-driver-fs");
    let d =
        ferry_test_servers::DriverProcess::start(bin, &[("FERRY_SECRETS_DIR", secrets.path().to_str().unwrap())]).await;
    let good = root.path().join("store");
    let fields = [ferry_test_servers::Field::Value { name: "root", template: "{}", good: good.to_str().unwrap() }];
    let sent = ferry_test_servers::survives_hostile_configurations(&d, "fs", secrets.path(), &fields, "k").await;
    assert!(sent >= 5, "{sent}");
}

/// A 10 KB key was echoed whole in the gRPC status, past the client's 8 KiB
/// header limit: the caller got RESOURCE_EXHAUSTED instead of the real error
/// (issue 14). Echoed values are cut, on every error channel.
#[tokio::test]
async fn huge_values_are_cut_in_error_messages() {
    let d = Driver::start().await;
    let key = "k".repeat(10_000);
    let err = d.client.open_stream(&d.at(&key)).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().len() < 1024 && err.message().contains("(10000 bytes)"), "{err}");
    let err = d.client.load(&d.at(&key), &d.scratch("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().len() < 1024, "{err}");
    let root = format!("root: {}", "r".repeat(60_000));
    let err = d.client.list(&Location::new("fs", root, "k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.message().len() < 1024 && err.message().contains("absolute"), "{err}");
}

/// A `LoadArtifactRequest` whose `path` (a `string`) is sent as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawLoad {
    #[prost(message, optional, tag = "1")]
    input_artifact: Option<pb::Artifact>,
    #[prost(bytes = "vec", tag = "2")]
    path: Vec<u8>,
}

/// Invalid UTF-8 in a string field is the caller's error: INVALID_ARGUMENT,
/// not INTERNAL (tonic's answer to a message it cannot decode; issue 14).
#[tokio::test]
async fn invalid_utf8_in_a_request_is_invalid_argument() {
    let d = Driver::start().await;
    let channel = DriverClient::channel(&d.socket, Duration::from_secs(5)).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = RawLoad { input_artifact: Some(d.at("k").to_artifact()), path: vec![b'/', 0xff, 0xfe] };
    let method = tonic::codegen::http::uri::PathAndQuery::from_static("/artifact.ArtifactService/Load");
    let codec = tonic_prost::ProstCodec::<RawLoad, pb::LoadArtifactResponse>::default();
    let status = grpc.unary(tonic::Request::new(request), method, codec).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("UTF-8") || status.message().contains("utf-8"), "{status:?}");
    // The driver keeps serving.
    assert_eq!(d.client.list(&d.at("nothing")).await.unwrap_err().kind(), ErrorKind::NotFound);
}

/// A missing key's message names the key, never the driver's host path
/// (issue 14: OpenStream showed the root's absolute path).
#[tokio::test]
async fn not_found_names_the_key_not_the_host_path() {
    let d = Driver::start().await;
    let root = d.root().display().to_string();
    let err = d.client.open_stream(&d.at("no/such/key")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("\"no/such/key\"") && !err.message().contains(&root), "{err}");
    let err = d.client.load(&d.at("no/such/key"), &d.scratch("x")).await.unwrap_err();
    assert!(err.message().contains("\"no/such/key\"") && !err.message().contains(&root), "{err}");
}

/// `VmRSS` (KiB) and `Threads` of a process, from /proc.
fn rss_and_threads(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmRSS:"), field("Threads:"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_stalled_open_streams_keep_memory_threads_and_other_calls_bounded() {
    let d = Driver::start().await;
    let src = d.scratch("big.bin");
    std::fs::write(&src, pattern(4 << 20, 9)).unwrap();
    d.client.save(&d.at("big.bin"), &src).await.unwrap();
    // Ten connections (a server takes a bounded number of streams per
    // connection), a hundred OpenStreams each, none ever read. Those beyond
    // FERRY_MAX_STREAMS (64) wait 5 s for a slot, then are refused.
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(DriverClient::connect(&d.socket, Duration::from_secs(10)).await.unwrap());
    }
    let opens = (0..1000).map(|i| {
        let (client, at) = (clients[i % 10].clone(), d.at("big.bin"));
        tokio::spawn(async move { client.open_stream(&at).await })
    });
    let results = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(opens))
        .await
        .expect("opening the streams hung");
    let mut held = Vec::new();
    let mut refused = 0;
    for r in results {
        match r.unwrap() {
            Ok(stream) => held.push(stream),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
                assert!(e.to_string().contains("FERRY_MAX_STREAMS"), "{e}");
                refused += 1;
            }
        }
    }
    // Let every held stream fill whatever buffers it may.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let small = d.scratch("small.txt");
    std::fs::write(&small, "still answering").unwrap();
    let back = d.scratch("small-back.txt");
    let others = async {
        d.client.save(&d.at("small.txt"), &small).await.unwrap();
        d.client.load(&d.at("small.txt"), &back).await.unwrap();
        d.client.supports_save_stream().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(20), others).await.expect("Save and Load did not answer within 20 s");
    assert_eq!(std::fs::read(&back).unwrap(), b"still answering");

    let (rss_kib, threads) = rss_and_threads(d.child.id());
    eprintln!("{} streams held, {refused} refused: RSS {} MiB, {threads} threads", held.len(), rss_kib >> 10);
    assert!(rss_kib < 256 << 10, "RSS {} MiB with {} stalled streams", rss_kib >> 10, held.len());
    assert!(threads < 128, "{threads} threads with {} stalled streams", held.len());
    drop(held);
}

/// A client that opens a stream and stops reading does not keep its slot
/// forever: after FERRY_STREAM_IDLE_TIMEOUT the stream fails (what the client
/// reads next ends in an error, never in a clean end) and the slot is free
/// for the next OpenStream.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_fails_after_the_idle_timeout_and_frees_its_slot() {
    let d = Driver::start_with(&[("FERRY_MAX_STREAMS", "1"), ("FERRY_STREAM_IDLE_TIMEOUT", "1")]).await;
    let src = d.scratch("big.bin");
    std::fs::write(&src, pattern(16 << 20, 3)).unwrap();
    d.client.save(&d.at("big.bin"), &src).await.unwrap();
    let mut stalled = d.client.open_stream(&d.at("big.bin")).await.unwrap();
    // The only slot is taken; once the stalled stream has failed, a second
    // OpenStream gets it and streams the whole object.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = DriverClient::connect(&d.socket, Duration::from_secs(10)).await.unwrap();
    let whole = streamed(&other, &d.at("big.bin")).await;
    assert_eq!(whole.len(), 16 << 20);
    let mut read = 0usize;
    let end = loop {
        match stalled.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            Some(Err(e)) => break Some(e),
            None => break None,
        }
    };
    let err = end.unwrap_or_else(|| panic!("the stalled stream ended cleanly after {read} of {} bytes", 16 << 20));
    assert!(read < 16 << 20, "{read}");
    assert!(err.to_string().contains("FERRY_STREAM_IDLE_TIMEOUT"), "{err}");
}
