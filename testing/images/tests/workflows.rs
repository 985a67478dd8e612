//! `ferry run --runtime docker` against an S3 server in a container: the
//! steps' main containers, the S3 driver as init containers (inputs) and
//! sidecars (outputs) on their own socket volumes, and the server, all
//! containers; the server started through testcontainers. `#[ignore]`d
//! without the images; `scripts/test.sh` builds them and runs these.

use ferry_image_tests::{driver_image_name, s3_server_image};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testcontainers::core::{IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const ACCESS: &str = "ferry-test-access";
const SECRET: &str = "ferry-test-secret";
const BUSYBOX: &str = "ferry/busybox:dev";

/// The `ferry` binary of this build (target/<profile>/ferry).
fn ferry_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("ferry");
    assert!(bin.exists(), "{} is missing: cargo build --workspace first", bin.display());
    bin
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows")
}

struct S3 {
    _container: ContainerAsync<GenericImage>,
    port: u16,
    data: tempfile::TempDir,
}

impl S3 {
    /// The server with a bucket `ferry-test`, its data in a host directory
    /// (world-writable: the server runs as a non-root user).
    async fn start() -> S3 {
        let data = tempfile::tempdir().expect("temp dir");
        for dir in [data.path().to_path_buf(), data.path().join("ferry-test")] {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o777)).expect("chmod");
        }
        let container = s3_server_image()
            .with_exposed_port(9000.tcp())
            .with_cmd(["--host", "0.0.0.0", "--port", "9000", "--access-key", ACCESS, "--secret-key", SECRET, "/data"])
            .with_mount(Mount::bind_mount(data.path().to_string_lossy(), "/data"))
            .start()
            .await
            .unwrap_or_else(|e| panic!("starting the S3 server image (testing/images/servers.sh builds it): {e}"));
        let port = container.get_host_port_ipv4(9000).await.expect("mapped port");
        let began = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(began.elapsed() < Duration::from_secs(30), "the S3 server is not listening after 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        S3 { _container: container, port, data }
    }

    fn object(&self, key: &str) -> PathBuf {
        self.data.path().join("ferry-test").join(key)
    }
}

struct Run {
    home: tempfile::TempDir,
    repository: PathBuf,
    driver_image: String,
}

impl Run {
    fn new(s3: &S3) -> Run {
        let home = tempfile::tempdir().expect("temp dir");
        let repository = home.path().join("s3-repository.yaml");
        std::fs::write(
            &repository,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: artifact-repositories\n  annotations:\n    workflows.argoproj.io/default-artifact-repository: s3\ndata:\n  s3: |\n    s3:\n      endpoint: 127.0.0.1:{}\n      insecure: true\n      bucket: ferry-test\n      accessKeySecret: {{name: s3-creds, key: accessKey}}\n      secretKeySecret: {{name: s3-creds, key: secretKey}}\n",
                s3.port
            ),
        )
        .expect("repository file");
        Run { home, repository, driver_image: driver_image_name("s3") }
    }

    fn ferry(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ferry_bin());
        c.arg("--home").arg(self.home.path()).env_remove("FERRY_HOME").args(args);
        // ferry drives the engine with the docker CLI, whose `docker run`
        // attach does not pass through the API version proxy that
        // DOCKER_HOST may point testcontainers at (testing/images/docker-api).
        match std::env::var("FERRY_ENGINE_DOCKER_HOST") {
            Ok(host) if !host.is_empty() => c.env("DOCKER_HOST", host),
            Ok(_) => c.env_remove("DOCKER_HOST"),
            Err(_) => &mut c,
        };
        // The secrets reach the driver containers by name, never on a command line.
        c.env("FERRY_SECRET_S3_CREDS_ACCESSKEY", ACCESS).env("FERRY_SECRET_S3_CREDS_SECRETKEY", SECRET);
        c
    }

    /// Runs an example in containers; the template images and the
    /// registered S3 driver image map to the images built here.
    fn run(&self, example: &str, s3_image: &str) -> serde_json::Value {
        let registered = format!("ferry/driver-s3:{}", env!("CARGO_PKG_VERSION"));
        let mut c = self.ferry(&["run", "--output", "json", "--runtime", "docker"]);
        for image in ["docker/whalesay:latest", "alpine:latest", "alpine:3.20"] {
            c.arg("--image-map").arg(format!("{image}={BUSYBOX}"));
        }
        c.arg("--image-map").arg(format!("{registered}={s3_image}"));
        c.arg(examples().join(example)).arg(&self.repository);
        let out = output_within(c, Duration::from_secs(300), example);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{example}: {e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        })
    }

    fn logs(&self, wf: &str, node: &str) -> String {
        let out = self.ferry(&["logs", wf, node]).output().expect("ferry logs");
        assert!(out.status.success(), "logs {wf} {node}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The log files of driver containers in a role (`init-artifact-s3`).
    fn driver_logs(&self, wf: &str, role: &str) -> Vec<PathBuf> {
        let dir = self.home.path().join("runs").join(wf).join("logs");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(&format!(".{role}.log"))))
            .collect()
    }
}

/// Runs `c` to its end, or kills it after `limit` and fails naming `what`
/// (a docker CLI that cannot reach the engine's attach would hang forever).
fn output_within(mut c: Command, limit: Duration, what: &str) -> std::process::Output {
    use std::io::Read;
    let mut child =
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("running ferry");
    // Drained while it runs, so a full pipe never blocks it.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for ferry") {
            break status;
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!("{what}: ferry still running after {limit:?}: {}", String::from_utf8_lossy(&err));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn node<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["displayName"] == name || n["name"].as_str().is_some_and(|x| x.ends_with(&format!(".{name}"))))
        .unwrap_or_else(|| panic!("no node {name} in {doc}"))
}

fn succeeded(example: &str, doc: &serde_json::Value) -> String {
    assert_eq!(doc["workflow"]["phase"], "Succeeded", "{example}: {}", serde_json::to_string_pretty(doc).unwrap());
    doc["workflow"]["name"].as_str().expect("workflow name").to_string()
}

/// Driver containers a run (named `wf`) left behind.
fn leftover_driver_containers(wf: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", "label=ferry.group", "--format", "{{.Names}}"])
        .output()
        .expect("docker ps");
    let names = String::from_utf8_lossy(&out.stdout).into_owned();
    names.lines().filter(|n| n.contains(wf)).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
#[ignore = "needs Docker and the images of deploy/images/build.sh, testing/images/{busybox,servers}.sh: scripts/test.sh"]
async fn docker_examples_run_in_containers_against_an_s3_server_in_a_container() {
    let s3 = S3::start().await;
    let run = Run::new(&s3);

    let doc = run.run("artifact-passing.yaml", &run.driver_image);
    let wf = succeeded("artifact-passing", &doc);
    assert_eq!(leftover_driver_containers(&wf), "", "driver containers left after the run");
    let hello = &node(&doc, "generate")["outputs"]["artifacts"]["hello-art"]["location"];
    assert_eq!(hello["driver"], "s3");
    assert!(s3.object(hello["key"].as_str().unwrap()).is_file(), "hello-art is not in the bucket: {hello}");
    assert_eq!(run.logs(&wf, "consume").trim(), "hello world");
    // The S3 driver ran as an init container of `consume` and a sidecar of `generate`.
    assert_eq!(run.driver_logs(&wf, "init-artifact-s3").len(), 1, "one init container (consume's input)");
    assert_eq!(run.driver_logs(&wf, "artifact-plugin-s3").len(), 1, "one sidecar (generate's output)");

    let doc = run.run("dag-diamond.yaml", &run.driver_image);
    succeeded("dag-diamond", &doc);

    let doc = run.run("gc-on-completion.yaml", &run.driver_image);
    let wf = succeeded("gc-on-completion", &doc);
    let key = |n: &str| {
        node(&doc, "produce")["outputs"]["artifacts"][n]["location"]["key"].as_str().expect("key").to_string()
    };
    assert!(!s3.object(&key("scratch")).exists(), "the OnWorkflowCompletion artifact is still in the bucket");
    assert!(s3.object(&key("report")).is_file() && s3.object(&key("audit")).is_file());
    assert_eq!(run.driver_logs(&wf, "artifact-gc-s3").len(), 1, "GC ran through a driver container");
    assert_eq!(leftover_driver_containers(&wf), "", "driver containers left after the run");
}

#[tokio::test]
#[ignore = "needs Docker and the images of deploy/images/build.sh, testing/images/{busybox,servers}.sh: scripts/test.sh"]
async fn docker_missing_driver_image_fails_the_step_naming_the_image() {
    let s3 = S3::start().await;
    let run = Run::new(&s3);
    let doc = run.run("artifact-passing.yaml", "ferry/no-such-driver:1");
    assert_ne!(doc["workflow"]["phase"], "Succeeded");
    let generate = node(&doc, "generate");
    assert_eq!(generate["phase"], "Error", "{generate}");
    let message = generate["message"].as_str().unwrap_or_default();
    assert!(message.contains("ferry/no-such-driver:1") && message.contains("s3"), "{message}");
    let wf = doc["workflow"]["name"].as_str().expect("workflow name");
    assert_eq!(leftover_driver_containers(wf), "");
}
