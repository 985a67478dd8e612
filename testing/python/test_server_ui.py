"""`ferry server`'s web UI in a real browser: Debian's headless Chromium,
driven through the Chrome DevTools Protocol over its websocket.

The runs are real `ferry run`s of the examples on the embedded fs driver;
the download is the browser's own, compared byte for byte with what
`ferry artifacts get` streams. Screenshots go to target/ui-screenshots/.
"""
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import websocket

REPO = Path(__file__).resolve().parents[2]
FERRY = os.environ.get("FERRY_BIN", str(REPO / "target" / "debug" / "ferry"))
SHOTS = REPO / "target" / "ui-screenshots"


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: scripts/test.sh installs Debian's package")


def ferry(home, *args):
    out = subprocess.run([FERRY, "--home", str(home), *args], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not Path(FERRY).exists():
        pytest.fail(f"{FERRY} does not exist: run `cargo build --workspace` first")
    home = tmp_path_factory.mktemp("home")
    runs = {}
    for example in ("dag-diamond.yaml", "archive-none.yaml", "dag-artifacts.yaml"):
        doc = json.loads(ferry(home, "run", "--output", "json", str(REPO / "examples" / "workflows" / example)))
        assert doc["workflow"]["phase"] == "Succeeded", doc
        runs[example] = doc["workflow"]["name"]
    proc = subprocess.Popen(
        [FERRY, "--home", str(home), "server", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE
    )
    base = proc.stdout.readline().decode().split()[-1]
    assert base.startswith("http://127.0.0.1:"), base
    yield base, home, runs
    proc.terminate()
    assert proc.wait(timeout=30) == 0, "SIGTERM ends ferry server with 0"


class Browser:
    """A headless Chromium and one page of it, spoken to over CDP."""

    def __init__(self, downloads):
        self.profile = tempfile.mkdtemp(prefix="ferry-chromium-")
        self.proc = subprocess.Popen(
            [
                chromium(),
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "--window-size=1300,800",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert self.proc.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its debugging port"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Runtime.enable")
        browser_ws = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version"))["webSocketDebuggerUrl"]
        # Kept open: the download setting lasts as long as the session that made it.
        self.browser_ws = websocket.create_connection(browser_ws, timeout=60)
        self.browser_ws.send(json.dumps({"id": 1, "method": "Browser.setDownloadBehavior",
                                         "params": {"behavior": "allow", "downloadPath": str(downloads)}}))
        assert "error" not in json.loads(self.browser_ws.recv())

    def call(self, method, **params):
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def wait_for(self, expression, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def go(self, url):
        self.call("Page.navigate", url=url)

    def screenshot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = SHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        self.ws.close()
        self.browser_ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    b = Browser(downloads)
    b.downloads = downloads
    yield b
    b.close()


def test_the_run_list_shows_every_run(served, browser):
    base, _, runs = served
    browser.go(base + "/")
    shown = browser.wait_for(
        "(() => { const r = [...document.querySelectorAll('#runs tbody tr[data-run]')]; "
        "return r.length >= 3 && r.map(x => [x.dataset.run, x.querySelector('[data-phase]').dataset.phase]); })()",
        "the run list",
    )
    assert sorted(name for name, _ in shown) == sorted(runs.values())
    assert {phase for _, phase in shown} == {"Succeeded"}
    assert browser.screenshot("runs").stat().st_size > 0


def test_a_runs_graph_renders_with_its_dependencies(served, browser):
    base, _, runs = served
    name = runs["dag-diamond.yaml"]
    browser.go(f"{base}/#/runs/{name}")
    nodes = browser.wait_for(
        "(() => { const g = [...document.querySelectorAll('#graph g.node')]; "
        "return g.length === 5 && g.map(n => [n.dataset.name, n.getAttribute('class')]); })()",
        "the graph's five nodes",
    )
    names = {n for n, _ in nodes}
    assert names == {name, "A", "B", "C", "D"}
    assert all("phase-succeeded" in cls for _, cls in nodes), nodes
    # The diamond: D is drawn below B and C, which are below A.
    y = browser.js(
        "Object.fromEntries([...document.querySelectorAll('#graph g.node')].map(n => "
        "[n.dataset.name, n.transform.baseVal[0].matrix.f]))"
    )
    assert y["A"] < y["B"] == y["C"] < y["D"], y
    assert browser.js("document.querySelectorAll('#graph path.edge').length") == 5
    browser.screenshot("graph")


def test_clicking_an_artifact_downloads_it_byte_for_byte(served, browser):
    base, home, runs = served
    name = runs["dag-artifacts.yaml"]
    browser.go(f"{base}/#/runs/{name}")
    browser.wait_for("document.querySelector('#graph g.node[data-name=\"produce\"]') !== null", "the produce node")
    browser.js(
        "document.querySelector('#graph g.node[data-name=\"produce\"]')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
    )
    browser.wait_for("document.querySelector('#node-panel h2')?.textContent === 'produce'", "produce's panel")
    browser.wait_for("document.querySelector('a.download[data-artifact=\"data\"]') !== null", "the download link")
    browser.screenshot("node")
    browser.js("document.querySelector('a.download[data-artifact=\"data\"]').click()")
    deadline = time.monotonic() + 60
    while True:
        done = [p for p in browser.downloads.iterdir() if not p.name.endswith(".crdownload")]
        if done:
            break
        assert time.monotonic() < deadline, "the download did not finish"
        time.sleep(0.1)
    expected = ferry(home, "artifacts", "get", name, "produce", "data")
    assert done[0].name == "data.tgz"
    assert done[0].read_bytes() == expected


def test_a_directory_artifact_is_browsable(served, browser):
    base, _, runs = served
    name = runs["archive-none.yaml"]
    browser.go(f"{base}/#/runs/{name}")
    browser.wait_for("document.querySelector('#graph g.node[data-name=\"make-tree\"]') !== null", "make-tree")
    browser.js(
        "document.querySelector('#graph g.node[data-name=\"make-tree\"]')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
    )
    href = browser.wait_for("document.querySelector('#node-artifacts a.browse')?.href", "the browse link")
    browser.go(href)
    entries = browser.wait_for(
        "document.readyState === 'complete' && [...document.querySelectorAll('a')].map(a => a.textContent)",
        "the listing",
    )
    assert entries == ["..", "docs/", "empty", "src/"], entries
    browser.js("[...document.querySelectorAll('a')].find(a => a.textContent === 'docs/').click()")
    browser.wait_for("location.pathname.endsWith('/docs/') && document.readyState === 'complete'", "docs/")
    assert browser.js("[...document.querySelectorAll('a')].map(a => a.textContent)") == ["..", "README.md"]
    browser.screenshot("listing")
