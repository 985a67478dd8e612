//! HTTP templates against a real HTTP server: Python's standard
//! `http.server`, answering each request with the status its path asks for
//! and a JSON echo of what it received.

use super::{Ferry, free_port, node};
use std::process::{Child, Command, Stdio};

/// `GET|POST /status/<code>` answers `<code>` with `{"method", "path",
/// "token", "body"}`; the `X-Echo` response header repeats `X-Token`.
const ECHO_SERVER: &str = r#"
import http.server, json, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        code = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 404
        reply = json.dumps({"method": self.command, "path": self.path, "token": self.headers.get("X-Token"), "body": body}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", self.headers.get("X-Token") or "")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    do_GET = do_POST = do_PUT = answer
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"#;

/// The echo server on `port`, killed when dropped.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Server {
        let child = Command::new("python3")
            .args(["-c", ECHO_SERVER, &port.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs the HTTP server");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < until, "the HTTP server did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http_templates_send_requests_judge_responses_and_give_the_body_as_result() {
    let f = Ferry::new();
    let port = free_port();
    let _server = Server::start(port);
    let secrets = f.home.path().join("secrets");
    std::fs::create_dir_all(secrets.join("api")).unwrap();
    std::fs::write(secrets.join("api").join("token"), "s3cret").unwrap();
    let spec = format!(
        r#"  entrypoint: main
  arguments: {{parameters: [{{name: base, value: "http://127.0.0.1:{port}"}}]}}
  templates:
  - name: main
    steps:
    - - name: get
        template: call
        arguments: {{parameters: [{{name: path, value: /status/200}}]}}
      - name: post
        template: post
      - name: server-error
        template: call
        continueOn: {{failed: true}}
        arguments: {{parameters: [{{name: path, value: /status/500}}]}}
      - name: unreachable
        template: unreachable
        continueOn: {{failed: true}}
      - name: condition-false
        template: condition-false
        continueOn: {{failed: true}}
    - - name: show
        template: show
        arguments: {{parameters: [{{name: v, value: "{{{{steps.post.outputs.result}}}}"}}]}}
  - name: call
    inputs: {{parameters: [{{name: path}}]}}
    http:
      url: "{{{{workflow.parameters.base}}}}{{{{inputs.parameters.path}}}}"
  - name: post
    http:
      url: "{{{{workflow.parameters.base}}}}/status/201"
      method: POST
      body: hello
      timeoutSeconds: 10
      headers:
      - name: X-Token
        valueFrom: {{secretKeyRef: {{name: api, key: token}}}}
      successCondition: 'response.statusCode == 201 && response.body contains "hello" && response.headers["X-Echo"][0] == "s3cret" && request.method == "POST"'
  - name: condition-false
    http:
      url: "{{{{workflow.parameters.base}}}}/status/200"
      successCondition: response.statusCode == 201
  - name: unreachable
    http:
      url: "http://127.0.0.1:{gone}/"
      timeoutSeconds: 5
  - name: show
    inputs: {{parameters: [{{name: v}}]}}
    container: {{image: alpine, command: [echo, "{{{{inputs.parameters.v}}}}"]}}
"#,
        gone = free_port()
    );
    let file = f.workflow("http", &spec);
    let out = f.cmd().args(["run", "--output", "json"]).arg(&file).env("FERRY_SECRETS_DIR", &secrets).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["workflow"]["phase"], "Succeeded", "{}", serde_json::to_string_pretty(&doc).unwrap());
    let get = node(&doc, "get");
    assert_eq!(get["kind"], "HTTP");
    let got: serde_json::Value = serde_json::from_str(get["outputs"]["result"].as_str().unwrap()).unwrap();
    assert_eq!((got["method"].as_str(), got["path"].as_str()), (Some("GET"), Some("/status/200")));
    let posted = f.logs("http", "show");
    let posted: serde_json::Value = serde_json::from_str(posted.trim()).unwrap();
    assert_eq!(
        posted,
        serde_json::json!({"method": "POST", "path": "/status/201", "token": "s3cret", "body": "hello"})
    );
    assert_eq!(node(&doc, "server-error")["phase"], "Failed");
    assert_eq!(node(&doc, "server-error")["message"], "received non-2xx response code: 500");
    assert_eq!(
        node(&doc, "condition-false")["message"],
        "successCondition 'response.statusCode == 201' evaluated false"
    );
    let unreachable = node(&doc, "unreachable")["message"].as_str().unwrap();
    assert!(
        unreachable.starts_with("http request to http://127.0.0.1:") && unreachable.contains("failed"),
        "{unreachable}"
    );
    // The secret's value is in no line ferry printed (the server echoed it
    // into the body on purpose).
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"), "the header's secret leaked");
    // Lint names what is wrong with an HTTP template, where.
    let bad = f.workflow(
        "bad-http",
        "  entrypoint: main\n  templates:\n  - name: main\n    http: {url: '', method: 'PO ST', body: x, bodyFrom: {bytes: '%%'}, successCondition: 'response.statusCode =='}\n",
    );
    let o = f.ferry(&["lint", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "http.url: is required",
        "http.method: \"PO ST\" is not an HTTP method",
        "http.bodyFrom: give body or bodyFrom",
        "http.bodyFrom.bytes: is not base64",
        "http.successCondition:",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
}
