//! The servers the GCS and Git drivers' tests use start and answer as those
//! protocols do.

use ferry_test_servers::{FakeGcs, GitDaemon, git};

#[test]
#[ignore = "needs fake-gcs-server: scripts/test.sh"]
fn fake_gcs_server_serves_the_json_api() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("ferry-test");
    let (status, body) = gcs.get("/storage/v1/b/ferry-test");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"ferry-test\""), "{body}");
    let (status, _) = gcs.get("/storage/v1/b/no-such-bucket/o/x");
    assert_eq!(status, 404);
}

#[test]
fn git_daemon_accepts_pushes_and_serves_clones() {
    let daemon = GitDaemon::start();
    let url = daemon.bare_repo("repo.git");
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "--quiet", "--initial-branch=main", "src"]);
    let src = work.path().join("src");
    std::fs::write(src.join("hello.txt"), "hi").unwrap();
    git(&src, &["add", "hello.txt"]);
    git(&src, &["commit", "--quiet", "-m", "first"]);
    git(&src, &["push", "--quiet", &url, "main"]);
    let refs = git(work.path(), &["ls-remote", &url]);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    git(work.path(), &["clone", "--quiet", "--depth", "1", &url, "copy"]);
    assert_eq!(std::fs::read_to_string(work.path().join("copy/hello.txt")).unwrap(), "hi");
}
