//! `ferry server` as a real process on a real port: argo-server's artifact
//! routes through the fs driver, uploads, the JSON API with its events and
//! followed logs, and the token and origin checks.

use super::*;
use std::io::{BufRead, BufReader, Write};

/// A `ferry server` process of a home, on a port it chose.
pub(crate) struct Served {
    child: std::process::Child,
    pub(crate) base: String,
}

impl Served {
    pub(crate) fn start(cmd: Command, extra: &[&str]) -> Served {
        let mut cmd = cmd;
        cmd.args(["server", "--listen", "127.0.0.1:0"]).args(extra).stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
        Served { child, base }
    }

    /// SIGTERM, as a service manager stops it; its exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A request sent as written, so `..` reaches the server un-normalised.
fn raw_get(base: &str, path: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut status = String::new();
    BufReader::new(s).read_line(&mut status).unwrap();
    status.split(' ').nth(1).unwrap().parse().unwrap()
}

fn node_id(doc: &Value, display: &str) -> String {
    let wf = doc["workflow"]["name"].as_str().unwrap();
    ferry_workflow::naming::node_id(wf, node(doc, display)["name"].as_str().unwrap())
}

fn artifacts_get(f: &Ferry, wf: &str, node: &str, name: &str) -> Vec<u8> {
    let out = f.ferry(&["artifacts", "get", wf, node, name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn artifacts_are_served_on_argo_servers_urls() {
    let f = Ferry::new();
    let (tree_wf, tree) = f.example("archive-none.yaml");
    let (dag_wf, dag) = f.example("dag-artifacts.yaml");
    let served = Served::start(f.cmd(), &[]);
    let http = client();
    let get = |path: &str| http.get(format!("{}{path}", served.base)).send().unwrap();

    // A file artifact (tgz, as Argo archives it): byte for byte what the driver holds.
    let producer = node_id(&dag, "produce");
    let url = format!("/artifacts/default/{dag_wf}/{producer}/data");
    let r = get(&url);
    assert_eq!(r.status(), 200, "{url}");
    let h = r.headers().clone();
    let body = r.bytes().unwrap();
    assert_eq!(body.as_ref(), artifacts_get(&f, &dag_wf, "produce", "data").as_slice());
    assert!(h["content-disposition"].to_str().unwrap().contains(".tgz\""), "{h:?}");
    assert!(h["content-security-policy"].to_str().unwrap().starts_with("sandbox"), "{h:?}");
    assert_eq!(h["content-length"].to_str().unwrap(), body.len().to_string(), "the fs driver tells sizes");
    // The same through /artifact-files/, and the consumer's input.
    let same = get(&format!("/artifact-files/default/workflows/{dag_wf}/{producer}/outputs/data"));
    assert_eq!(same.bytes().unwrap(), body);
    let consumer = node_id(&dag, "consume");
    let input = get(&format!("/input-artifacts/default/{dag_wf}/{consumer}/data"));
    assert_eq!(input.status(), 200);
    assert_eq!(input.bytes().unwrap(), body);
    // By uid, as for an archived workflow.
    let uid = dag["workflow"]["uid"].as_str().unwrap();
    assert_eq!(get(&format!("/artifacts-by-uid/{uid}/{producer}/data")).bytes().unwrap(), body);

    // A range.
    let r = http.get(format!("{}{url}", served.base)).header("range", "bytes=10-19").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"].to_str().unwrap(), format!("bytes 10-19/{}", body.len()));
    assert_eq!(r.bytes().unwrap().as_ref(), &body[10..20]);
    let r = http.get(format!("{}{url}", served.base)).header("range", format!("bytes={}-", body.len())).send().unwrap();
    assert_eq!(r.status(), 416);

    // A directory artifact: redirected to its listing, which links its first level.
    let maker = node_id(&tree, "make-tree");
    let dir = format!("/artifact-files/default/workflows/{tree_wf}/{maker}/outputs/tree");
    let r = get(&dir);
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"].to_str().unwrap(), format!("{dir}/"));
    let listing = get(&format!("{dir}/")).text().unwrap();
    for entry in ["href=\"./docs/\"", "href=\"./src/\"", "href=\"./empty\"", "href=\"..\""] {
        assert!(listing.contains(entry), "{entry} not in {listing}");
    }
    let sub = get(&format!("{dir}/docs/")).text().unwrap();
    assert!(sub.contains("href=\"./README.md\""), "{sub}");
    let readme = get(&format!("{dir}/docs/README.md"));
    assert_eq!(readme.status(), 200);
    assert_eq!(readme.text().unwrap(), "# readme\n");
    assert_eq!(get(&format!("{dir}/src/nested/f2.txt")).text().unwrap(), "file 2\n");

    // What is not there is 404; what climbs out is 400, before any driver call.
    for missing in [
        format!("/artifacts/default/no-such-run/{producer}/data"),
        format!("/artifacts/other-namespace/{dag_wf}/{producer}/data"),
        format!("/artifacts/default/{dag_wf}/{dag_wf}-1/data"),
        format!("/artifacts/default/{dag_wf}/{producer}/no-such-artifact"),
        format!("/input-artifacts/default/{dag_wf}/{producer}/data"),
        format!("{dir}/docs/nope.md"),
        "/artifacts-by-uid/00000000-0000-0000-0000-000000000000/x/y".to_string(),
    ] {
        assert_eq!(get(&missing).status(), 404, "{missing}");
    }
    for bad in [
        format!("{dir}/../../../{producer}/outputs/data"),
        format!("{dir}/docs/../../x"),
        format!("{dir}/%2e%2e/x"),
        format!("{dir}/a%2F..%2F..%2Fx"),
        format!("{dir}/a%5C..%5Cx"),
        format!("/artifact-files/default/cronworkflows/{tree_wf}/{maker}/outputs/tree"),
        format!("/artifact-files/default/workflows/{tree_wf}/{maker}/sideways/tree"),
        "/artifacts/default/too-short".to_string(),
    ] {
        assert_eq!(raw_get(&served.base, &bad), 400, "{bad}");
    }
    assert!(served.stop().success(), "SIGTERM ends the server with 0");
}

#[test]
fn the_api_shows_runs_without_driver_configuration_and_follows_them() {
    let f = Ferry::new();
    let (wf, _) = f.example("dag-artifacts.yaml");
    let served = Served::start(f.cmd(), &[]);
    let http = client();
    let base = &served.base;
    let runs: Value = http.get(format!("{base}/api/v1/runs")).send().unwrap().json().unwrap();
    assert_eq!(runs[0]["name"], wf.as_str());
    assert_eq!(runs[0]["phase"], "Succeeded");
    let detail = http.get(format!("{base}/api/v1/runs/{wf}")).send().unwrap().text().unwrap();
    let artifacts_dir = f.home.path().canonicalize().unwrap().join("artifacts");
    for secret in ["root:", "configuration", artifacts_dir.to_str().unwrap()] {
        assert!(!detail.contains(secret), "{secret:?} in {detail}");
    }
    let detail: Value = serde_json::from_str(&detail).unwrap();
    let report = detail["artifacts"].as_array().unwrap().iter().find(|a| a["name"] == "data").unwrap();
    let r = http.get(format!("{base}{}", report["url"].as_str().unwrap())).send().unwrap();
    assert_eq!(r.status(), 200, "the API's artifact links work");
    assert_eq!(http.get(format!("{base}/api/v1/runs/nope")).send().unwrap().status(), 404);

    // A submitted run, watched through its events until it ends, then its log.
    let yaml = format!(
        "{}  entrypoint: main\n  templates:\n  - name: main\n    container: {{image: x, command: [sh, -c, 'for i in 1 2 3; do echo line $i; sleep 0.3; done']}}\n",
        HEAD.replace("NAME", "submitted")
    );
    let r = http.post(format!("{base}/api/v1/runs")).json(&serde_json::json!({ "workflow": yaml })).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let events = http.get(format!("{base}/api/v1/runs/submitted/events")).send().unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let log = http.get(format!("{base}/api/v1/runs/submitted/logs?node=submitted&follow=true")).send().unwrap();
    let mut phases = Vec::new();
    let mut event = String::new();
    for line in BufReader::new(events).lines() {
        let line = line.unwrap();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            if event == "end" {
                break;
            }
            let v: Value = serde_json::from_str(data).unwrap();
            phases.push(v["run"]["phase"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(phases.last().map(String::as_str), Some("Succeeded"), "{phases:?}");
    assert!(phases.iter().any(|p| p == "Running"), "seen while it ran: {phases:?}");
    // The followed log ends when the step does, with every line.
    assert_eq!(log.text().unwrap(), "line 1\nline 2\nline 3\n");
    assert_eq!(f.logs("submitted", "submitted"), "line 1\nline 2\nline 3\n");

    // Delete through the API (its GC first); a second delete is 404.
    let r = http.delete(format!("{base}/api/v1/runs/submitted")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    assert_eq!(http.delete(format!("{base}/api/v1/runs/submitted")).send().unwrap().status(), 404);
    assert!(served.stop().success());
}

#[test]
fn a_stopped_run_resumes_through_the_api() {
    let f = Ferry::new();
    let served = Served::start(f.cmd(), &[]);
    let http = client();
    let base = &served.base;
    let yaml = format!(
        "{}  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: slow, template: slow}}\n    - - {{name: after, template: after}}\n  - name: slow\n    container: {{image: x, command: [sh, -c, 'sleep 2; echo slow done']}}\n  - name: after\n    container: {{image: x, command: [sh, -c, 'echo after']}}\n",
        HEAD.replace("NAME", "stoppable")
    );
    let r = http.post(format!("{base}/api/v1/runs")).json(&serde_json::json!({ "workflow": yaml })).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let state = || -> Value { http.get(format!("{base}/api/v1/runs/stoppable")).send().unwrap().json().unwrap() };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state()["nodes"].as_array().unwrap().iter().any(|n| n["displayName"] == "slow" && n["phase"] == "Running") {
        assert!(Instant::now() < deadline, "slow never ran: {}", state());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Actions come only from the server's own pages: another site's is refused.
    let r = http
        .post(format!("{base}/api/v1/runs/stoppable/stop"))
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http.post(format!("{base}/api/v1/runs/stoppable/stop")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    while state()["run"]["drivenHere"] == true {
        assert!(Instant::now() < deadline, "the run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(state()["run"]["phase"], "Succeeded", "stopped before its end");
    // Nothing drives it now: stop is a conflict, resume continues it to the end.
    assert_eq!(http.post(format!("{base}/api/v1/runs/stoppable/stop")).send().unwrap().status(), 409);
    let r = http.post(format!("{base}/api/v1/runs/stoppable/resume")).send().unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    while state()["run"]["phase"] != "Succeeded" {
        assert!(Instant::now() < deadline + Duration::from_secs(30), "not resumed: {}", state());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(f.logs("stoppable", "after").trim(), "after");
}

#[test]
fn uploads_stream_to_the_templates_repository_and_bad_ones_store_nothing() {
    let f = Ferry::new();
    let templates = f.home.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    write(
        &templates,
        "wft.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: ingest, namespace: team}\nspec:\n  entrypoint: main\n  arguments:\n    artifacts:\n    - name: data\n  templates:\n  - name: main\n    container: {image: x, command: [true]}\n",
    );
    let served = Served::start(f.cmd(), &["--templates", templates.to_str().unwrap(), "--max-upload-bytes", "3000000"]);
    // A fresh connection per upload: the server answers a refused upload
    // without reading its body and closes the connection, and a pooled one
    // reused a moment later fails with IncompleteMessage (a CI flake).
    let http = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let base = &served.base;
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let upload = |name: &str, bytes: Vec<u8>, path: &str| {
        let part = reqwest::blocking::multipart::Part::bytes(bytes).file_name(name.to_string());
        let form = reqwest::blocking::multipart::Form::new().text("note", "ignored").part("file", part);
        http.post(format!("{base}{path}")).multipart(form).send().unwrap()
    };
    let r = upload("../../escape.bin", data.clone(), "/upload-artifacts/team/ingest/data");
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let answer: Value = r.json().unwrap();
    let key = answer["key"].as_str().unwrap();
    assert_eq!(answer["name"], "data");
    assert!(key.starts_with("uploads/team/") && key.ends_with("/escape.bin") && key.split('/').count() == 4, "{key}");
    let stored = f.home.path().join("artifacts").join(key);
    assert_eq!(std::fs::read(&stored).unwrap(), data, "byte for byte through SaveStream");
    for (path, status) in [
        ("/upload-artifacts/team/nope/data", 404),
        ("/upload-artifacts/team/ingest/nope", 404),
        ("/upload-artifacts/other/ingest/data", 404),
    ] {
        assert_eq!(upload("x.bin", b"x".to_vec(), path).status(), status, "{path}");
    }
    // Over the limit: 413, and nothing under uploads/ but the first upload.
    let big = vec![7u8; 3_000_001];
    assert_eq!(upload("big.bin", big, "/upload-artifacts/team/ingest/data").status(), 413);
    let files: Vec<_> = walkdir::WalkDir::new(f.home.path().join("artifacts/uploads"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    assert_eq!(files, [stored], "a refused upload leaves no object, complete-looking or not");
}

#[test]
fn a_token_guards_every_route_but_the_login_page() {
    let f = Ferry::new();
    let (wf, dag) = f.example("dag-artifacts.yaml");
    let served = Served::start(f.cmd(), &["--auth-token", "s3cret-token"]);
    let http = client();
    let base = &served.base;
    let producer = node_id(&dag, "produce");
    let art = format!("/artifacts/default/{wf}/{producer}/data");
    for path in ["/api/v1/runs", art.as_str(), "/"] {
        assert_eq!(http.get(format!("{base}{path}")).send().unwrap().status(), 401, "{path}");
        let wrong = http.get(format!("{base}{path}")).bearer_auth("s3cret-tokeN").send().unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let right = http.get(format!("{base}{path}")).bearer_auth("s3cret-token").send().unwrap();
        assert_eq!(right.status(), 200, "{path}");
    }
    // A browser is sent to log in; logging in sets a cookie its links then carry.
    let page = http.get(format!("{base}/")).header("accept", "text/html").send().unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(http.get(format!("{base}/login")).send().unwrap().status(), 200);
    let bad = http.post(format!("{base}/login")).form(&[("token", "nope")]).send().unwrap();
    assert!(bad.headers().get("set-cookie").is_none());
    let ok = http.post(format!("{base}/login")).form(&[("token", "s3cret-token")]).send().unwrap();
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let with_cookie =
        http.get(format!("{base}{art}")).header("cookie", cookie.split(';').next().unwrap()).send().unwrap();
    assert_eq!(with_cookie.status(), 200);
    drop(served);

    // Off loopback, no token: refused before it listens.
    let out = f.cmd().args(["server", "--listen", "0.0.0.0:0"]).env_remove("FERRY_SERVER_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One MiB of the big object's bytes: a fixed noise block stamped with the
/// block's number, so a block out of place or repeated is caught.
fn block(base: &[u8], k: u64) -> Vec<u8> {
    let mut b = base.to_vec();
    b[..8].copy_from_slice(&k.to_le_bytes());
    b
}

/// `/proc/<pid>/status` field in KiB, such as `VmHWM` (peak RSS).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Bytes the process has caused to be written to storage (`/proc/<pid>/io`).
fn written_to_disk(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let line = text.lines().find(|l| l.starts_with("write_bytes:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        kids.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    kids
}

#[test]
#[ignore = "needs s3s-fs: scripts/test.sh"]
fn s3_artifacts_of_gibibytes_stream_both_ways_with_nothing_on_the_servers_disk() {
    const MIB: u64 = 1 << 20;
    const SIZE: u64 = 4096 * MIB;
    let f = Ferry::new();
    let s3 = S3Server::start();
    let repo = s3.repository(f.home.path());
    let with_creds = |mut c: Command| {
        c.env("FERRY_SECRET_S3_CREDS_ACCESSKEY", "ferry-test-access");
        c.env("FERRY_SECRET_S3_CREDS_SECRETKEY", "ferry-test-secret");
        c
    };
    let file = f.workflow(
        "big",
        "  entrypoint: main\n  templates:\n  - name: main\n    container: {image: x, command: [sh, -c, 'echo small > /tmp/big']}\n    outputs: {artifacts: [{name: big, path: /tmp/big, archive: {none: {}}}]}\n",
    );
    let out = with_creds(f.cmd()).args(["run", "--output", "json"]).arg(&file).arg(&repo).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["workflow"]["phase"], "Succeeded", "{doc}");
    let key = node(&doc, "big")["outputs"]["artifacts"]["big"]["location"]["key"].as_str().unwrap().to_string();
    // The 4 GiB object is written in place on s3s-fs's disk (it serves its
    // files as objects), so the test's time goes to the download itself.
    let base: Vec<u8> = (0..MIB).map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8).collect();
    {
        let mut w =
            std::io::BufWriter::new(std::fs::File::create(s3.data.path().join("ferry-test").join(&key)).unwrap());
        for k in 0..SIZE / MIB {
            w.write_all(&block(&base, k)).unwrap();
        }
        w.flush().unwrap();
    }

    // Uploads go to the repository of a template among the server's templates: S3 here.
    let templates = f.home.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::copy(&repo, templates.join("repository.yaml")).unwrap();
    write(
        &templates,
        "wft.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: ingest}\nspec:\n  entrypoint: main\n  arguments: {artifacts: [{name: data}]}\n  templates:\n  - name: main\n    container: {image: x, command: [true]}\n",
    );
    let served = Served::start(with_creds(f.cmd()), &["--templates", templates.to_str().unwrap()]);
    let pid = served.child.id();
    let http = client();
    let url = format!("{}/artifacts/default/big/big/big", served.base);
    let disk_before = written_to_disk(pid);
    let began = Instant::now();
    let mut r = http.get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"].to_str().unwrap(), SIZE.to_string());
    let mut got = vec![0u8; MIB as usize];
    let mut first_byte = None;
    for k in 0..SIZE / MIB {
        r.read_exact(&mut got).unwrap_or_else(|e| panic!("block {k}: {e}"));
        first_byte.get_or_insert_with(|| began.elapsed());
        assert!(got == block(&base, k), "block {k} differs");
    }
    assert_eq!(r.read(&mut got).unwrap(), 0, "nothing after the object's end");
    let took = began.elapsed();
    let drivers = children_of(pid);
    assert_eq!(drivers.len(), 1, "one s3 driver read the artifact: {drivers:?}");
    let written = written_to_disk(pid) - disk_before;
    let driver_written = written_to_disk(drivers[0]);
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "4 GiB through ferry server: first MiB after {first_byte:?}, all in {took:?} ({:.0} MiB/s); server peak RSS {} MiB, driver peak RSS {} MiB; written to disk: server {written} B, driver {driver_written} B",
        4096.0 / took.as_secs_f64(),
        peak / 1024,
        status_kib(drivers[0], "VmHWM:") / 1024
    );
    assert!(written < MIB, "the server wrote {written} bytes to disk while serving");
    assert!(driver_written < MIB, "the driver wrote {driver_written} bytes to disk while serving");
    assert!(peak <= 64 * 1024, "the server's peak RSS was {} MiB", peak / 1024);

    // The last 300 bytes, by range.
    let r = http.get(&url).header("range", format!("bytes={}-", SIZE - 300)).send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"].to_str().unwrap(), format!("bytes {}-{}/{SIZE}", SIZE - 300, SIZE - 1));
    assert_eq!(r.bytes().unwrap().as_ref(), &block(&base, SIZE / MIB - 1)[(MIB - 300) as usize..]);

    // 1 GiB up, through the S3 driver's SaveStream, from a form the client streams.
    const UP: u64 = 1024 * MIB;
    let disk_before = written_to_disk(pid);
    let source = Blocks { base: base.clone(), at: 0, end: UP, current: None };
    let part = reqwest::blocking::multipart::Part::reader_with_length(source, UP).file_name("up.bin");
    let form = reqwest::blocking::multipart::Form::new().part("file", part);
    let r = http.post(format!("{}/upload-artifacts/default/ingest/data", served.base)).multipart(form).send().unwrap();
    assert_eq!(r.status(), 200);
    let key = r.json::<Value>().unwrap()["key"].as_str().unwrap().to_string();
    let written = written_to_disk(pid) - disk_before;
    assert!(written < MIB, "the server wrote {written} bytes to disk while receiving");
    let mut stored = std::fs::File::open(s3.data.path().join("ferry-test").join(&key)).unwrap();
    assert_eq!(stored.metadata().unwrap().len(), UP);
    for k in 0..UP / MIB {
        stored.read_exact(&mut got).unwrap();
        assert!(got == block(&base, k), "uploaded block {k} differs");
    }
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "1 GiB uploaded through ferry server: server peak RSS {} MiB, {written} B written to its disk",
        peak / 1024
    );
    assert!(peak <= 64 * 1024, "the server's peak RSS was {} MiB", peak / 1024);
    assert!(served.stop().success());
}

/// The big object's bytes from `at` to `end`, read as a stream.
struct Blocks {
    base: Vec<u8>,
    at: u64,
    end: u64,
    /// The block being read, by number: reads are much smaller than a block.
    current: Option<(u64, Vec<u8>)>,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const MIB: u64 = 1 << 20;
        if self.at >= self.end {
            return Ok(0);
        }
        let k = self.at / MIB;
        if self.current.as_ref().is_none_or(|(c, _)| *c != k) {
            self.current = Some((k, block(&self.base, k)));
        }
        let b = &self.current.as_ref().unwrap().1;
        let from = (self.at % MIB) as usize;
        let n = buf.len().min(b.len() - from).min((self.end - self.at) as usize);
        buf[..n].copy_from_slice(&b[from..from + n]);
        self.at += n as u64;
        Ok(n)
    }
}

/// `name{labels} value` lines of an OpenMetrics text, comments left out.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) =
                series.split_once('{').map_or((series, ""), |(n, rest)| (n, rest.trim_end_matches('}')));
            (name.to_string(), labels.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// The sum of the samples of `name` whose labels hold every one of `with`.
fn sum(samples: &[(String, String, f64)], name: &str, with: &[&str]) -> f64 {
    samples.iter().filter(|(n, l, _)| n == name && with.iter().all(|w| l.contains(w))).map(|(_, _, v)| v).sum()
}

#[test]
fn ferry_serves_metrics_of_the_runs_it_drives() {
    let f = Ferry::new();
    let port = ferry_test_servers::free_port();
    let mut cmd = f.cmd();
    cmd.env("FERRY_METRICS_ADDR", format!("127.0.0.1:{port}"));
    // The drivers the server starts must not inherit the address: binding it
    // too, they would fail to start and the run with them.
    let served = Served::start(cmd, &[]);
    let http = client();
    let base = &served.base;
    let yaml = std::fs::read_to_string(examples().join("dag-artifacts.yaml")).unwrap();
    let r = http.post(format!("{base}/api/v1/runs")).json(&serde_json::json!({ "workflow": yaml })).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let name = r.json::<Value>().unwrap()["name"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let phase = loop {
        let runs: Value = http.get(format!("{base}/api/v1/runs")).send().unwrap().json().unwrap();
        let run = runs.as_array().unwrap().iter().find(|r| r["name"] == name.as_str()).unwrap().clone();
        let phase = run["phase"].as_str().unwrap().to_string();
        if !matches!(phase.as_str(), "Pending" | "Running") || Instant::now() > deadline {
            break phase;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(phase, "Succeeded");

    let r = http.get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = r.text().unwrap();
    let s = samples(&text);
    // Two pods (produce, consume), both started and succeeded, both timed.
    assert_eq!(sum(&s, "ferry_nodes_started_total", &["kind=\"Pod\""]), 2.0, "{text}");
    assert_eq!(sum(&s, "ferry_nodes_finished_total", &["kind=\"Pod\"", "phase=\"Succeeded\""]), 2.0, "{text}");
    assert_eq!(sum(&s, "ferry_nodes_finished_total", &["phase=\"Failed\""]), 0.0, "{text}");
    assert_eq!(sum(&s, "ferry_pod_duration_seconds_count", &[]), 2.0, "{text}");
    // produce saved `data`, consume loaded it: the same archive both ways.
    assert!(sum(&s, "ferry_driver_calls_total", &["rpc=\"save\"", "outcome=\"ok\""]) >= 1.0, "{text}");
    assert!(sum(&s, "ferry_driver_calls_total", &["rpc=\"load\"", "outcome=\"ok\""]) >= 1.0, "{text}");
    assert_eq!(sum(&s, "ferry_driver_calls_total", &["outcome=\"error\""]), 0.0, "{text}");
    assert!(sum(&s, "ferry_driver_call_duration_seconds_count", &["rpc=\"save\""]) >= 1.0, "{text}");
    let (up, down) = (
        sum(&s, "ferry_artifact_bytes_total", &["direction=\"upload\""]),
        sum(&s, "ferry_artifact_bytes_total", &["direction=\"download\""]),
    );
    assert!(down > 0.0 && up >= down, "uploaded {up}, downloaded {down}: {text}");
    assert_eq!(sum(&s, "ferry_driver_calls_in_flight", &[]), 0.0, "{text}");
    assert_eq!(sum(&s, "ferry_driver_call_retries_total", &[]), 0.0, "{text}");
    assert!(served.stop().success());
}
