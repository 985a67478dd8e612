//! ferry-driver-git against real servers: `git daemon` (git://), lighttpd with
//! `git http-backend` and basic auth (http://), and sshd (ssh://).

use ferry_sdk::ErrorKind;
use ferry_sdk::client::Location;
use ferry_test_servers::{DriverProcess, GIT_HTTP_PASSWORD, GIT_HTTP_USER, GitDaemon, GitHttp, Sshd, git};
use futures::TryStreamExt;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-driver-git");

/// A repository with two commits on `main` (tag `v1` on the first) and a branch `dev`.
struct Seeded {
    url: String,
    v1: String,
    v2: String,
}

fn seed(url: &str) -> Seeded {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    git(w, &["init", "-q", "--initial-branch=main", "."]);
    std::fs::write(w.join("README.md"), "v1\n").unwrap();
    std::fs::create_dir_all(w.join("src/deep")).unwrap();
    std::fs::write(w.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    std::fs::write(w.join("src/deep/x.txt"), "deep\n").unwrap();
    std::fs::create_dir_all(w.join("bin")).unwrap();
    std::fs::write(w.join("bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(w.join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    git(w, &["add", "-A"]);
    git(w, &["commit", "-q", "-m", "first"]);
    git(w, &["tag", "v1"]);
    let v1 = git(w, &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(w.join("README.md"), "v2\n").unwrap();
    git(w, &["commit", "-q", "-am", "second"]);
    let v2 = git(w, &["rev-parse", "HEAD"]).trim().to_string();
    git(w, &["branch", "dev", &v1]);
    git(w, &["push", "-q", url, "main", "dev", "v1"]);
    Seeded { url: url.to_string(), v1, v2 }
}

fn at(config: &str, key: &str) -> Location {
    Location::new("git", config, key)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn driver() -> DriverProcess {
    DriverProcess::start(BIN, &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn load_a_branch_a_tag_and_a_commit() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let out = tempfile::tempdir().unwrap();
    for (revision, readme, name) in [
        ("main", "v2\n", "branch"),
        ("v1", "v1\n", "tag"),
        (s.v1.as_str(), "v1\n", "commit"),
        ("dev", "v1\n", "other-branch"),
    ] {
        let dst = out.path().join(name);
        let cfg = format!("{{repo: '{}', revision: '{revision}'}}", s.url);
        d.client.load(&at(&cfg, ""), &dst).await.unwrap_or_else(|e| panic!("{revision}: {e}"));
        assert_eq!(read(&dst.join("README.md")), readme, "{revision}");
        assert_eq!(read(&dst.join("src/deep/x.txt")), "deep\n");
        assert!(dst.join(".git").is_dir(), "a Load of the root is a clone");
        let head = git(&dst, &["rev-parse", "HEAD"]);
        assert_eq!(head.trim(), if readme == "v1\n" { &s.v1 } else { &s.v2 });
        assert_eq!(git(&dst, &["status", "--porcelain"]), "", "{revision}: the worktree matches HEAD");
    }
    // No revision: the remote's HEAD (main).
    let dst = out.path().join("head");
    d.client.load(&at(&format!("repo: '{}'", s.url), ""), &dst).await.unwrap();
    assert_eq!(read(&dst.join("README.md")), "v2\n");
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(dst.join("bin/run.sh")).unwrap().permissions().mode() & 0o111, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn depth_one_is_shallow() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("w");
    d.client.load(&at(&format!("{{repo: '{}', revision: main, depth: 1}}", s.url), ""), &dst).await.unwrap();
    assert_eq!(git(&dst, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(git(&dst, &["rev-parse", "--is-shallow-repository"]).trim(), "true");
    assert_eq!(read(&dst.join("README.md")), "v2\n");
    // A full commit id with depth 1: that commit alone.
    let dst = out.path().join("sha");
    d.client.load(&at(&format!("{{repo: '{}', revision: '{}', depth: 1}}", s.url, s.v1), ""), &dst).await.unwrap();
    assert_eq!(git(&dst, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(read(&dst.join("README.md")), "v1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subdirectory_or_a_file_key_loads_just_that() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let cfg = format!("{{repo: '{}', revision: v1}}", s.url);
    let out = tempfile::tempdir().unwrap();
    d.client.load(&at(&cfg, "src"), &out.path().join("src")).await.unwrap();
    assert_eq!(read(&out.path().join("src/lib.rs")), "pub fn f() {}\n");
    assert_eq!(read(&out.path().join("src/deep/x.txt")), "deep\n");
    assert!(!out.path().join("src/.git").exists());
    d.client.load(&at(&cfg, "README.md"), &out.path().join("readme")).await.unwrap();
    assert_eq!(read(&out.path().join("readme")), "v1\n");
    d.client.load(&at(&cfg, "src/deep/"), &out.path().join("deep")).await.unwrap();
    assert_eq!(read(&out.path().join("deep/x.txt")), "deep\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_is_directory_and_open_stream() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let cfg = format!("{{repo: '{}', revision: main}}", s.url);
    let mut all = d.client.list(&at(&cfg, "")).await.unwrap();
    all.sort();
    assert_eq!(all, ["README.md", "bin/run.sh", "src/deep/x.txt", "src/lib.rs"]);
    let mut src = d.client.list(&at(&cfg, "src/")).await.unwrap();
    src.sort();
    assert_eq!(src, ["src/deep/x.txt", "src/lib.rs"]);
    assert!(d.client.list(&at(&cfg, "README.md")).await.unwrap().is_empty());
    assert!(d.client.is_directory(&at(&cfg, "")).await.unwrap());
    assert!(d.client.is_directory(&at(&cfg, "src/deep")).await.unwrap());
    assert!(!d.client.is_directory(&at(&cfg, "README.md")).await.unwrap());
    assert!(!d.client.is_directory(&at(&cfg, "nope")).await.unwrap());

    let bytes: Vec<u8> =
        d.client.open_stream(&at(&cfg, "README.md")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(bytes, b"v2\n");

    let tar_bytes =
        d.client.open_stream(&at(&cfg, "")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut names: Vec<(String, u32)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("README.md".to_string(), 0o644),
            ("bin/run.sh".into(), 0o755),
            ("src/deep/x.txt".into(), 0o644),
            ("src/lib.rs".into(), 0o644)
        ]
    );
    let sub = d.client.open_stream(&at(&cfg, "src")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    let mut archive = tar::Archive::new(sub.as_slice());
    let mut names: Vec<String> =
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    names.sort();
    assert_eq!(names, ["deep/x.txt", "lib.rs"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_have_sizes_but_directories_and_ranges_are_not_offered() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let cfg = format!("{{repo: '{}', revision: main}}", s.url);
    assert_eq!(d.client.stat(&at(&cfg, "README.md")).await.unwrap(), Some(3));
    assert_eq!(d.client.stat(&at(&cfg, "bin/run.sh")).await.unwrap(), Some(18));
    // A directory streams as a tar, whose size is unknown until it is built.
    assert_eq!(d.client.stat(&at(&cfg, "src")).await.unwrap(), None);
    assert_eq!(d.client.stat(&at(&cfg, "nope")).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(d.client.open_range(&at(&cfg, "README.md"), 0, 2).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_paths_and_revisions_are_not_found() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let out = tempfile::tempdir().unwrap();
    let cfg = format!("{{repo: '{}', revision: main}}", s.url);
    let err = d.client.load(&at(&cfg, "no/such/file"), &out.path().join("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = d.client.open_stream(&at(&cfg, "nope.txt")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    for revision in ["no-such-branch", "0123456789abcdef0123456789abcdef01234567"] {
        let cfg = format!("{{repo: '{}', revision: '{revision}'}}", s.url);
        let err = d.client.load(&at(&cfg, ""), &out.path().join(revision)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{revision}: {err}");
        assert!(!out.path().join(revision).exists(), "a failed Load leaves nothing behind");
        let err = d.client.list(&at(&cfg, "")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{revision}: {err}");
    }
    let err = d.client.load(&at(&format!("repo: '{}'", daemon.url("missing.git")), ""), &out.path().join("m")).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_transient_and_bad_config_names_the_field() {
    let d = driver().await;
    let port = ferry_test_servers::free_port();
    let out = tempfile::tempdir().unwrap();
    let cfg = format!("repo: 'git://127.0.0.1:{port}/r.git'");
    let err = d.client.load(&at(&cfg, ""), &out.path().join("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    let err = d.client.load(&at("{repo: r, depht: 1}", ""), &out.path().join("y")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.message().contains("depht"), "{err}");
    let err = d.client.load(&at("{repo: r, depth: 0}", ""), &out.path().join("y")).await.unwrap_err();
    assert!(err.message().contains("depth"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn submodules_are_cloned_unless_disabled() {
    let daemon = GitDaemon::start();
    let sub_url = daemon.bare_repo("sub.git");
    let work = tempfile::tempdir().unwrap();
    let w = work.path().join("sub");
    std::fs::create_dir_all(&w).unwrap();
    git(&w, &["init", "-q", "--initial-branch=main", "."]);
    std::fs::write(w.join("inner.txt"), "inner\n").unwrap();
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "sub"]);
    git(&w, &["push", "-q", &sub_url, "main"]);
    let top_url = daemon.bare_repo("top.git");
    let t = work.path().join("top");
    std::fs::create_dir_all(&t).unwrap();
    git(&t, &["init", "-q", "--initial-branch=main", "."]);
    std::fs::write(t.join("top.txt"), "top\n").unwrap();
    git(&t, &["submodule", "add", "-q", &sub_url, "libs/sub"]);
    git(&t, &["add", "-A"]);
    git(&t, &["commit", "-q", "-m", "top"]);
    git(&t, &["push", "-q", &top_url, "main"]);

    let d = driver().await;
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("with");
    d.client.load(&at(&format!("repo: '{top_url}'"), ""), &dst).await.unwrap();
    assert_eq!(read(&dst.join("libs/sub/inner.txt")), "inner\n");
    let dst = out.path().join("without");
    d.client.load(&at(&format!("{{repo: '{top_url}', disableSubmodules: true}}"), ""), &dst).await.unwrap();
    assert_eq!(read(&dst.join("top.txt")), "top\n");
    assert!(!dst.join("libs/sub/inner.txt").exists());
    // The tree lists the submodule's files nowhere: they live in another repository.
    let listed = d.client.list(&at(&format!("repo: '{top_url}'"), "")).await.unwrap();
    assert!(
        listed.contains(&"top.txt".to_string()) && !listed.iter().any(|k| k.starts_with("libs/sub/")),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn save_commits_and_pushes_then_a_fresh_clone_sees_it() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let cfg = format!(
        "{{repo: '{}', revision: main, commit: {{authorName: Robo Saver, authorEmail: robo@ferry.invalid, message: 'results: {{key}}'}}}}",
        s.url
    );
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("out/nested")).unwrap();
    std::fs::write(src.path().join("out/a.txt"), "a\n").unwrap();
    std::fs::write(src.path().join("out/nested/b.txt"), "b\n").unwrap();
    std::fs::write(src.path().join("out/.gitignore"), "*.txt\n").unwrap();
    std::fs::write(src.path().join("one.txt"), "one\n").unwrap();
    d.client.save(&at(&cfg, "results"), &src.path().join("out")).await.unwrap();
    d.client.save(&at(&cfg, "single/one.txt"), &src.path().join("one.txt")).await.unwrap();
    // Saving the same content again makes no commit.
    d.client.save(&at(&cfg, "single/one.txt"), &src.path().join("one.txt")).await.unwrap();

    // The same driver sees it at once.
    let mut listed = d.client.list(&at(&cfg, "results")).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["results/.gitignore", "results/a.txt", "results/nested/b.txt"]);

    // A fresh driver and a fresh CLI clone see it too.
    let d2 = driver().await;
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("w");
    d2.client.load(&at(&format!("{{repo: '{}', revision: main, depth: 1}}", s.url), ""), &dst).await.unwrap();
    assert_eq!(read(&dst.join("results/nested/b.txt")), "b\n");
    assert_eq!(read(&dst.join("single/one.txt")), "one\n");
    assert_eq!(read(&dst.join("README.md")), "v2\n", "the rest of the branch is kept");
    let clone = out.path().join("cli");
    git(out.path(), &["clone", "-q", &s.url, clone.to_str().unwrap()]);
    let log = git(&clone, &["log", "--format=%an <%ae>|%cn|%s", "-3"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "Robo Saver <robo@ferry.invalid>|Robo Saver|results: single/one.txt",
            "Robo Saver <robo@ferry.invalid>|Robo Saver|results: results",
            "Ferry Test <test@ferry.invalid>|Ferry Test|second",
        ]
    );

    // A directory Save replaces what was under the key.
    std::fs::remove_file(src.path().join("out/a.txt")).unwrap();
    d.client.save(&at(&cfg, "results"), &src.path().join("out")).await.unwrap();
    let mut listed = d.client.list(&at(&cfg, "results")).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["results/.gitignore", "results/nested/b.txt"]);

    // SaveStream works too.
    let data: ferry_sdk::ByteStream = Box::pin(futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"streamed"))]));
    d.client.save_stream(&at(&cfg, "s/t.bin"), data).await.unwrap();
    let got =
        d.client.open_stream(&at(&cfg, "s/t.bin")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(&got[..], b"streamed");
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_see_the_latest_push_whoever_made_it() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    // Two configurations of one branch: two targets, two caches.
    let writer = format!("{{repo: '{}', branch: main}}", s.url);
    let reader = format!("{{repo: '{}', revision: main}}", s.url);
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("v.txt");
    let read_back = |round: usize| {
        let (client, reader) = (d.client.clone(), reader.clone());
        async move {
            let got = client.open_stream(&at(&reader, "out/v.txt")).await.unwrap();
            let got = got.map_ok(|b| b.to_vec()).try_concat().await.unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), format!("version {round}\n"), "round {round}");
        }
    };
    for round in 0..3 {
        std::fs::write(&file, format!("version {round}\n")).unwrap();
        d.client.save(&at(&writer, "out/v.txt"), &file).await.unwrap();
        read_back(round).await;
    }
    // A push from outside the driver is seen by the next read too.
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("c");
    git(work.path(), &["clone", "-q", &s.url, clone.to_str().unwrap()]);
    std::fs::write(clone.join("out/v.txt"), "version 3\n").unwrap();
    git(&clone, &["commit", "-q", "-am", "outside"]);
    git(&clone, &["push", "-q", "origin", "main"]);
    read_back(3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn save_to_a_new_branch_starts_it_from_revision() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("r.txt"), "r\n").unwrap();
    // Reading a tag, writing to a branch that does not exist yet.
    let cfg = format!("{{repo: '{}', revision: v1, branch: results}}", s.url);
    d.client.save(&at(&cfg, "r.txt"), &src.path().join("r.txt")).await.unwrap();
    let read_back = format!("{{repo: '{}', revision: results}}", s.url);
    let mut listed = d.client.list(&at(&read_back, "")).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["README.md", "bin/run.sh", "r.txt", "src/deep/x.txt", "src/lib.rs"]);
    let readme = d
        .client
        .open_stream(&at(&read_back, "README.md"))
        .await
        .unwrap()
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .unwrap();
    assert_eq!(&readme[..], b"v1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn save_is_refused_when_read_only_and_delete_unless_allowed() {
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let d = driver().await;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "f").unwrap();
    for revision in ["v1", s.v1.as_str(), "refs/tags/v1"] {
        let cfg = format!("{{repo: '{}', revision: '{revision}'}}", s.url);
        let err = d.client.save(&at(&cfg, "f"), &src.path().join("f")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{revision}: {err}");
        assert!(err.message().contains("read-only") && err.message().contains("branch"), "{err}");
    }
    let err = d.client.save(&at(&format!("repo: '{}'", s.url), "f"), &src.path().join("f")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");

    let cfg = format!("{{repo: '{}', revision: main}}", s.url);
    let err = d.client.delete(&at(&cfg, "README.md")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.message().contains("allowDelete"), "{err}");
    assert!(d.client.list(&at(&cfg, "")).await.unwrap().contains(&"README.md".to_string()));

    // allowDelete: a key's removal is a commit; the empty key deletes the branch.
    let cfg = format!("{{repo: '{}', revision: dev, allowDelete: true}}", s.url);
    // A file key (no trailing `/`) never removes a directory of that name.
    let before = d.client.list(&at(&cfg, "")).await.unwrap();
    d.client.delete(&at(&cfg, "src")).await.unwrap();
    assert_eq!(d.client.list(&at(&cfg, "")).await.unwrap(), before, "Delete of the file key `src` removed src/");
    d.client.delete(&at(&cfg, "src/")).await.unwrap();
    d.client.delete(&at(&cfg, "src/")).await.unwrap();
    assert_eq!(d.client.list(&at(&cfg, "")).await.unwrap().len(), 2);
    d.client.delete(&at(&cfg, "")).await.unwrap();
    d.client.delete(&at(&cfg, "")).await.unwrap();
    let heads = git(Path::new("/"), &["ls-remote", "--heads", &s.url]);
    assert!(heads.contains("refs/heads/main") && !heads.contains("refs/heads/dev"), "{heads}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs lighttpd: scripts/test.sh"]
async fn basic_auth_over_http_and_no_password_in_the_log() {
    let http = GitHttp::start();
    http.bare_repo("r.git");
    let s = seed(&http.url_with_credentials("r.git"));
    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(secrets.path().join("git-creds")).unwrap();
    std::fs::write(secrets.path().join("git-creds/username"), GIT_HTTP_USER).unwrap();
    std::fs::write(secrets.path().join("git-creds/password"), GIT_HTTP_PASSWORD).unwrap();
    std::fs::create_dir_all(secrets.path().join("wrong")).unwrap();
    std::fs::write(secrets.path().join("wrong/username"), GIT_HTTP_USER).unwrap();
    std::fs::write(secrets.path().join("wrong/password"), "not-the-password-71c3").unwrap();
    let d = DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", secrets.path().to_str().unwrap())]).await;
    let url = http.url("r.git");
    assert!(!url.contains(GIT_HTTP_PASSWORD));
    let cfg = format!(
        "{{repo: '{url}', revision: main, usernameSecret: {{name: git-creds, key: username}}, passwordSecret: {{name: git-creds, key: password}}}}"
    );
    let out = tempfile::tempdir().unwrap();
    d.client.load(&at(&cfg, ""), &out.path().join("w")).await.unwrap();
    assert_eq!(read(&out.path().join("w/README.md")), "v2\n");
    assert!(!read(&out.path().join("w/.git/config")).contains(GIT_HTTP_PASSWORD));
    // Save pushes through the CLI with the inline credential helper.
    std::fs::write(out.path().join("pushed.txt"), "pushed\n").unwrap();
    d.client.save(&at(&cfg, "pushed.txt"), &out.path().join("pushed.txt")).await.unwrap();
    let got =
        d.client.open_stream(&at(&cfg, "pushed.txt")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(&got[..], b"pushed\n");
    let _ = s;

    let wrong = format!(
        "{{repo: '{url}', usernameSecret: {{name: wrong, key: username}}, passwordSecret: {{name: wrong, key: password}}}}"
    );
    let err = d.client.load(&at(&wrong, ""), &out.path().join("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = d.client.list(&at(&wrong, "")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let wrong_push = format!(
        "{{repo: '{url}', branch: main, usernameSecret: {{name: wrong, key: username}}, passwordSecret: {{name: wrong, key: password}}}}"
    );
    let err = d.client.save(&at(&wrong_push, "p.txt"), &out.path().join("pushed.txt")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.message().contains("not-the-password"), "{err}");
    let no_creds = format!("repo: '{url}'");
    let err = d.client.load(&at(&no_creds, ""), &out.path().join("y")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let log = d.log();
    assert!(!log.is_empty());
    assert!(!log.contains(GIT_HTTP_PASSWORD) && !log.contains("not-the-password"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs sshd: scripts/test.sh"]
async fn ssh_with_a_private_key_secret() {
    let sshd = Sshd::start();
    let url = sshd.bare_repo("r.git");
    // Seeding goes through git:// of the same directory, since the CLI has no key configured.
    let daemon = GitDaemon::start();
    let local = daemon.bare_repo("seed.git");
    let s = seed(&local);
    let seeded = daemon.root.path().join("seed.git");
    git(
        Path::new("/"),
        &["-C", seeded.to_str().unwrap(), "push", "-q", sshd.root.join("r.git").to_str().unwrap(), "main", "v1"],
    );

    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(secrets.path().join("ssh")).unwrap();
    std::fs::write(secrets.path().join("ssh/key"), &sshd.client_key).unwrap();
    let d = DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", secrets.path().to_str().unwrap())]).await;
    let cfg = format!(
        "{{repo: '{url}', revision: main, sshPrivateKeySecret: {{name: ssh, key: key}}, insecureIgnoreHostKey: true}}"
    );
    let out = tempfile::tempdir().unwrap();
    d.client.load(&at(&cfg, ""), &out.path().join("w")).await.unwrap_or_else(|e| panic!("{e}\nsshd: {}", sshd.log()));
    assert_eq!(read(&out.path().join("w/README.md")), "v2\n");
    let tag = format!(
        "{{repo: '{url}', revision: v1, depth: 1, sshPrivateKeySecret: {{name: ssh, key: key}}, insecureIgnoreHostKey: true}}"
    );
    let got =
        d.client.open_stream(&at(&tag, "README.md")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(&got[..], b"v1\n");
    std::fs::write(out.path().join("k.txt"), "over ssh\n").unwrap();
    d.client.save(&at(&cfg, "k.txt"), &out.path().join("k.txt")).await.unwrap();
    let got =
        d.client.open_stream(&at(&cfg, "k.txt")).await.unwrap().map_ok(|b| b.to_vec()).try_concat().await.unwrap();
    assert_eq!(&got[..], b"over ssh\n");
    let _ = s;

    // Without the key: refused by the server.
    let no_key = format!("{{repo: '{url}', insecureIgnoreHostKey: true}}");
    let err = d.client.load(&at(&no_key, ""), &out.path().join("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!d.log().contains("PRIVATE KEY"));
}

/// No configuration value or secret makes the driver panic; it answers
/// each with an error or a result and keeps serving (issue 14).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_configuration_values_never_crash_the_driver() {
    use ferry_test_servers::Field;
    let daemon = GitDaemon::start();
    let s = seed(&daemon.bare_repo("r.git"));
    let secrets = tempfile::tempdir().unwrap();
    let d = DriverProcess::start(BIN, &[("FERRY_SECRETS_DIR", secrets.path().to_str().unwrap())]).await;
    let fields = [
        Field::Value { name: "repo", template: "{}", good: &s.url },
        Field::Value { name: "revision", template: "{}", good: "main" },
        Field::Value { name: "branch", template: "{}", good: "main" },
        Field::Value { name: "fetch", template: "[{}]", good: "+refs/heads/main:refs/remotes/origin/main" },
        Field::Value { name: "commit", template: "{authorName: {}}", good: "ferry" },
        Field::Secret { name: "usernameSecret", good: "" },
        Field::Secret { name: "passwordSecret", good: "" },
        Field::Secret { name: "sshPrivateKeySecret", good: "" },
    ];
    let sent = ferry_test_servers::survives_hostile_configurations(&d, "git", secrets.path(), &fields, "k").await;
    assert!(sent >= 60, "{sent}");
}
