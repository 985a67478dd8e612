// Ferry's web UI: the run list, a run's graph, a node's details with its
// logs and artifacts. Plain DOM, no framework and nothing fetched from
// elsewhere, so it works offline. Every value from the server is set as
// text (never as HTML).
"use strict";

const app = document.getElementById("app");
const statusLine = document.getElementById("status");
let cleanup = [];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, options) {
  const r = await fetch("/api/v1" + path, Object.assign({ headers: { "Content-Type": "application/json" } }, options));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.message || r.status + " " + r.statusText);
  return body;
}

function say(text, bad) {
  statusLine.textContent = text || "";
  statusLine.className = "status" + (bad ? " bad" : "");
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return ms + "ms";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + (s % 60) + "s";
  return Math.floor(m / 60) + "h " + (m % 60) + "m";
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}

function phaseBadge(phase) {
  return el("span", { class: "phase phase-" + phase.toLowerCase(), "data-phase": phase }, phase);
}

// ---- the run list ----

async function showRuns() {
  const table = el("table", { class: "runs", id: "runs" },
    el("thead", {}, el("tr", {}, ["Name", "Namespace", "Status", "Duration", "Created", "Artifact GC"].map(h => el("th", {}, h)))),
    el("tbody"));
  app.replaceChildren(el("h1", {}, "Runs"), table);
  const refresh = async () => {
    try {
      const runs = await api("/runs");
      table.tBodies[0].replaceChildren(...runs.map(r => el("tr", { "data-run": r.name },
        el("td", {}, el("a", { href: "#/runs/" + encodeURIComponent(r.name) }, r.name)),
        el("td", {}, r.namespace),
        el("td", {}, phaseBadge(r.phase), r.message ? el("span", { class: "message" }, " " + r.message) : null),
        el("td", { class: "num" }, duration(r.durationMs)),
        el("td", {}, when(r.createdAt)),
        el("td", {}, r.gc))));
      if (!runs.length) table.tBodies[0].append(el("tr", {}, el("td", { colspan: 6 }, "No runs yet: ferry run a workflow, or submit one.")));
      say("");
    } catch (e) { say(e.message, true); }
  };
  await refresh();
  const timer = setInterval(refresh, 2000);
  cleanup.push(() => clearInterval(timer));
}

// ---- one run ----

function layout(nodes) {
  // Layers by longest path from the roots (Argo's graph, top to bottom);
  // within a layer, nodes sit under the mean position of their parents.
  const byId = new Map(nodes.map(n => [n.id, n]));
  const parents = new Map(nodes.map(n => [n.id, []]));
  for (const n of nodes) for (const c of n.children) if (parents.has(c)) parents.get(c).push(n.id);
  const depth = new Map();
  const depthOf = (id, seen) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0; // a cycle would be a bug upstream; draw it flat
    seen.add(id);
    const ps = parents.get(id) || [];
    const d = ps.length ? Math.max(...ps.map(p => depthOf(p, seen) + 1)) : 0;
    depth.set(id, d);
    return d;
  };
  nodes.forEach(n => depthOf(n.id, new Set()));
  const layers = [];
  for (const n of nodes) (layers[depth.get(n.id)] = layers[depth.get(n.id)] || []).push(n.id);
  const pos = new Map();
  const width = Math.max(1, ...layers.map(l => (l || []).length));
  layers.forEach((layer, y) => {
    if (!layer) return;
    const mean = id => {
      const xs = (parents.get(id) || []).map(p => pos.get(p)).filter(Boolean).map(p => p.x);
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
    };
    layer.sort((a, b) => mean(a) - mean(b));
    const offset = (width - layer.length) / 2;
    layer.forEach((id, i) => pos.set(id, { x: i + offset, y }));
  });
  return { pos, columns: width, rows: layers.length || 1, byId };
}

function drawGraph(detail, selected, onSelect) {
  const { pos, columns, rows } = layout(detail.nodes);
  const W = 170, H = 70, w = 150, h = 36;
  const g = svg("svg", { class: "graph", id: "graph", width: columns * W + 20, height: rows * H + 20, role: "img", "aria-label": "graph of " + detail.run.name });
  for (const n of detail.nodes) {
    const p = pos.get(n.id);
    for (const c of n.children) {
      const q = pos.get(c);
      if (!p || !q) continue;
      g.append(svg("path", { class: "edge", d: `M${p.x * W + 10 + w / 2},${p.y * H + 10 + h} C${p.x * W + 10 + w / 2},${q.y * H + 5} ${q.x * W + 10 + w / 2},${p.y * H + h + 15} ${q.x * W + 10 + w / 2},${q.y * H + 10}` }));
    }
  }
  for (const n of detail.nodes) {
    const p = pos.get(n.id);
    const group = svg("g", { class: "node phase-" + n.phase.toLowerCase() + (n.id === selected ? " selected" : ""), "data-node": n.id, "data-name": n.displayName, tabindex: 0, transform: `translate(${p.x * W + 10},${p.y * H + 10})` },
      svg("title", {}, `${n.displayName} (${n.type}): ${n.phase}${n.message ? " — " + n.message : ""}`),
      svg("rect", { width: w, height: h, rx: n.type === "Pod" ? 18 : 4 }),
      svg("text", { x: w / 2, y: h / 2 + 4, "text-anchor": "middle" }, n.displayName.length > 20 ? n.displayName.slice(0, 19) + "…" : n.displayName));
    group.addEventListener("click", () => onSelect(n.id));
    group.addEventListener("keydown", e => { if (e.key === "Enter") onSelect(n.id); });
    g.append(group);
  }
  return g;
}

function artifactRow(a) {
  const links = [];
  if (a.deleted) links.push(el("span", { class: "muted" }, "deleted by GC"));
  else {
    // A key ending in `/` is a directory stored object by object (`archive: none`).
    if (a.key.endsWith("/")) links.push(el("a", { href: a.url + "/", target: "_blank", rel: "noopener", class: "browse", "data-artifact": a.name }, "browse"));
    else {
      links.push(el("a", { href: a.url, download: a.key.split("/").pop() || a.name, class: "download", "data-artifact": a.name }, "download"));
      links.push(" ", el("a", { href: a.url, target: "_blank", rel: "noopener", class: "view" }, "view"));
    }
  }
  return el("tr", {}, el("td", {}, a.name), el("td", {}, a.direction), el("td", {}, a.driver), el("td", { class: "key" }, a.key), el("td", {}, a.gc + (a.gcError ? " — " + a.gcError : "")), el("td", {}, links));
}

function nodePanel(detail, id, followLog) {
  const n = detail.nodes.find(x => x.id === id);
  if (!n) return el("aside", { class: "panel" }, el("p", { class: "muted" }, "Click a node to see its inputs, outputs, logs and artifacts."));
  const params = Object.entries(n.outputs.parameters || {});
  const arts = detail.artifacts.filter(a => a.node === n.id);
  const dl = (k, v) => (v === null || v === undefined || v === "") ? [] : [el("dt", {}, k), el("dd", {}, v)];
  const panel = el("aside", { class: "panel", id: "node-panel" },
    el("h2", {}, n.displayName),
    el("dl", {}, dl("Type", n.type), dl("Template", n.templateName), dl("Phase", phaseBadge(n.phase)), dl("Message", n.message),
      dl("Started", when(n.startedAt)), dl("Finished", when(n.finishedAt)),
      dl("Duration", n.startedAt ? duration((n.finishedAt || Date.now()) - n.startedAt) : ""), dl("Pod", n.podName),
      dl("Exit code", n.outputs.exitCode), dl("Node id", n.id)),
    params.length ? [el("h3", {}, "Output parameters"), el("table", { class: "params" }, params.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, el("code", {}, v)))))] : null,
    n.outputs.result ? [el("h3", {}, "Result"), el("pre", { class: "result" }, n.outputs.result)] : null,
    arts.length ? [el("h3", {}, "Artifacts"), el("table", { class: "artifacts", id: "node-artifacts" },
      el("tr", {}, ["Name", "Direction", "Driver", "Key", "GC", ""].map(h => el("th", {}, h))), arts.map(artifactRow))] : null);
  if (n.type === "Pod") {
    // The same node's log keeps following across updates.
    const old = document.getElementById("log");
    const pre = old && old.dataset.node === n.id ? old : el("pre", { class: "log", id: "log", "data-node": n.id });
    panel.append(el("h3", {}, "Log"), pre);
    if (pre !== old) followLog(n.id, pre);
  }
  return panel;
}

let stopLog = () => {};

async function followLog(run, node, pre) {
  stopLog();
  const controller = new AbortController();
  stopLog = () => controller.abort();
  cleanup.push(stopLog);
  try {
    const r = await fetch(`/api/v1/runs/${encodeURIComponent(run)}/logs?node=${encodeURIComponent(node)}&follow=true`, { signal: controller.signal });
    if (!r.ok) { pre.textContent = (await r.json().catch(() => ({}))).message || r.statusText; return; }
    const reader = r.body.getReader();
    const text = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pre.textContent += text.decode(value, { stream: true });
    }
    if (!pre.textContent) pre.textContent = "(empty)";
  } catch (e) { if (e.name !== "AbortError") pre.textContent += "\n" + e.message; }
}

async function action(name, verb, body) {
  try {
    const path = `/runs/${encodeURIComponent(name)}` + (verb === "delete" ? "" : "/" + verb);
    const r = await api(path, { method: verb === "delete" ? "DELETE" : "POST", body: body ? JSON.stringify(body) : undefined });
    say(`${name}: ${verb} — ${r.result || (r.deleted !== undefined ? r.deleted + " artifact(s) deleted" : "ok")}`);
    if (verb === "delete") location.hash = "#/";
  } catch (e) { say(e.message, true); }
}

async function showRun(name) {
  let detail;
  let selected = decodeURIComponent((location.hash.split("?node=")[1] || ""));
  const header = el("div", { class: "run-header" });
  const graphBox = el("div", { class: "graph-box" });
  const panelBox = el("div", { class: "panel-box" });
  app.replaceChildren(header, el("div", { class: "run-body" }, graphBox, panelBox));
  const select = id => {
    selected = id;
    history.replaceState(null, "", "#/runs/" + encodeURIComponent(name) + "?node=" + encodeURIComponent(id));
    render(true);
  };
  const render = panelToo => {
    const r = detail.run;
    const suspended = detail.nodes.some(n => n.type === "Suspend" && n.phase === "Running");
    header.replaceChildren(
      el("h1", {}, r.name, " ", phaseBadge(r.phase)),
      el("p", { class: "meta" }, `namespace ${r.namespace} · created ${when(r.createdAt)} · duration ${duration(r.durationMs)} · artifact GC: ${r.gc}`, r.message ? el("span", { class: "message" }, " · " + r.message) : null),
      el("div", { class: "actions" },
        r.drivenHere ? el("button", { onclick: () => action(r.name, "stop") }, "Stop") : null,
        !["Succeeded", "Failed", "Error"].includes(r.phase) && !r.drivenHere ? el("button", { onclick: () => action(r.name, "resume") }, "Resume") : null,
        suspended ? el("button", { onclick: () => action(r.name, "resume", { approve: true }) }, "Approve") : null,
        suspended ? el("button", { onclick: () => action(r.name, "resume", { fail: true, message: "failed from the UI" }) }, "Fail") : null,
        el("button", { class: "danger", onclick: () => { if (confirm(`Delete ${r.name} and GC its artifacts?`)) action(r.name, "delete"); } }, "Delete")));
    graphBox.replaceChildren(drawGraph(detail, selected, select));
    if (panelToo) {
      panelBox.replaceChildren(nodePanel(detail, selected, (id, pre) => followLog(name, id, pre)));
    }
  };
  try {
    detail = await api("/runs/" + encodeURIComponent(name));
    if (!selected) selected = (detail.nodes.find(n => n.type === "Pod") || {}).id;
    render(true);
  } catch (e) { app.replaceChildren(el("h1", {}, name), el("p", { class: "bad" }, e.message)); return; }
  const events = new EventSource(`/api/v1/runs/${encodeURIComponent(name)}/events`);
  cleanup.push(() => events.close());
  events.addEventListener("run", e => {
    const prev = detail;
    detail = JSON.parse(e.data);
    const node = id => JSON.stringify((prev.nodes.find(n => n.id === id) || {})) + JSON.stringify(prev.artifacts.filter(a => a.node === id));
    const now = id => JSON.stringify((detail.nodes.find(n => n.id === id) || {})) + JSON.stringify(detail.artifacts.filter(a => a.node === id));
    render(node(selected) !== now(selected));
  });
  events.addEventListener("end", () => events.close());
}

// ---- submit ----

function showSubmit() {
  const text = el("textarea", { id: "workflow", rows: 24, spellcheck: "false", placeholder: "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n…" });
  const params = el("input", { id: "parameters", placeholder: "name=value, name2=value2" });
  const form = el("form", { class: "submit", onsubmit: async e => {
    e.preventDefault();
    const parameters = {};
    for (const p of params.value.split(",").map(s => s.trim()).filter(Boolean)) {
      const i = p.indexOf("=");
      if (i < 1) { say(`parameter ${p}: expected name=value`, true); return; }
      parameters[p.slice(0, i)] = p.slice(i + 1);
    }
    try {
      const r = await api("/runs", { method: "POST", body: JSON.stringify({ workflow: text.value, parameters }) });
      location.hash = "#/runs/" + encodeURIComponent(r.name);
    } catch (err) { say(err.message, true); }
  } }, el("label", { for: "workflow" }, "Workflow YAML"), text, el("label", { for: "parameters" }, "Parameters"), params, el("button", { type: "submit" }, "Submit"));
  app.replaceChildren(el("h1", {}, "Submit a workflow"), form);
}

// ---- routing ----

function route() {
  cleanup.forEach(f => f());
  cleanup = [];
  say("");
  const h = location.hash.replace(/^#/, "");
  const m = h.match(/^\/runs\/([^?]+)/);
  if (m) showRun(decodeURIComponent(m[1]));
  else if (h === "/submit") showSubmit();
  else showRuns();
}

window.addEventListener("hashchange", route);
route();
