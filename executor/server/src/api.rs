//! The JSON API the UI and scripts use, under `/api/v1`:
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /runs` | every run, newest first |
//! | `POST /runs` | submit a workflow (`{"workflow": "<yaml>", "parameters": {…}, "name": …}`) |
//! | `GET /runs/{name}` | a run with its nodes and artifacts |
//! | `GET /runs/{name}/events` | the same, as server-sent events while it changes |
//! | `GET /runs/{name}/logs?node=…&follow=true` | a step's log, followed while it runs |
//! | `POST /runs/{name}/stop` | interrupt a run this server drives |
//! | `POST /runs/{name}/resume` | continue a run, or decide its suspended nodes (`{"approve": true}`) |
//! | `DELETE /runs/{name}?force=true` | delete a run, its artifact GC first |
//!
//! No response holds a driver's configuration: artifacts show their driver
//! and key only.

use crate::error::{ApiError, Error};
use crate::lookup::{self, Run};
use crate::runs::{self, Resumed, Submission};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_engine::{ArtifactRecord, Direction, Node, WorkflowRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

type ApiResult<T> = std::result::Result<T, ApiError>;

/// A run as the API shows it.
#[derive(Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunView {
    name: String,
    uid: String,
    namespace: String,
    phase: String,
    message: String,
    created_at: i64,
    finished_at: Option<i64>,
    duration_ms: i64,
    gc: String,
    driven_here: bool,
}

fn run_view(state: &AppState, wf: &WorkflowRecord, namespace: String) -> RunView {
    let end = wf.finished.unwrap_or_else(ferry_workflow::time::now_ms);
    RunView {
        name: wf.name.clone(),
        uid: wf.uid.clone(),
        namespace,
        phase: wf.phase.as_str().to_string(),
        message: wf.message.clone(),
        created_at: wf.created,
        finished_at: wf.finished,
        duration_ms: (end - wf.created).max(0),
        gc: wf.gc.to_string(),
        driven_here: state.driving.drives(&wf.name),
    }
}

pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<RunView>>> {
    let mut all = state.home.store().workflows().map_err(ferry_engine::Error::from)?;
    all.sort_by_key(|w| std::cmp::Reverse(w.created));
    let views = all
        .iter()
        .map(|w| {
            let ns = lookup::plan(&state, w).map(|p| p.namespace.clone()).unwrap_or_default();
            run_view(&state, w, ns)
        })
        .collect();
    Ok(Json(views))
}

/// A run with its nodes and artifacts, as `GET /runs/{name}` answers.
pub(crate) fn detail(state: &AppState, name: &str) -> Result<Value, Error> {
    let run = lookup::run(state, name, false)?;
    let nodes = state.home.store().nodes(run.record.id).map_err(ferry_engine::Error::from)?;
    let records = state.home.store().artifacts(run.record.id).map_err(ferry_engine::Error::from)?;
    let view = run_view(state, &run.record, run.namespace.clone());
    let edges = crate::graph::children(&*lookup::plan(state, &run.record)?, &nodes);
    let node_views: Vec<Value> = nodes.iter().map(|n| node_view(&run, &nodes, n, &edges)).collect();
    let artifacts: Vec<Value> = records.iter().filter_map(|r| artifact_view(&run, &nodes, r)).collect();
    Ok(json!({ "run": view, "nodes": node_views, "artifacts": artifacts }))
}

fn node_view(run: &Run, nodes: &[Node], n: &Node, edges: &BTreeMap<u32, Vec<u32>>) -> Value {
    let id_of = |i: &u32| nodes.iter().find(|m| m.id == *i).map(|m| run.node_id(m));
    let parent = n.parent.as_ref().and_then(id_of);
    // Argo's `children`: the edges of the graph (dependencies, step order).
    let children: Vec<String> = edges.get(&n.id).into_iter().flatten().filter_map(id_of).collect();
    let pod = (n.kind == ferry_engine::NodeKind::Pod)
        .then(|| ferry_workflow::naming::pod_name(&run.record.name, &n.template, &n.name));
    json!({
        "id": run.node_id(n),
        "name": n.name,
        "displayName": n.display_name(),
        "type": n.kind.as_str(),
        "templateName": n.template,
        "phase": n.phase.as_str(),
        "startedAt": n.started,
        "finishedAt": n.finished,
        "message": n.message,
        "parent": parent,
        "children": children,
        "podName": pod,
        "outputs": {
            "parameters": n.outputs.parameters,
            "result": n.outputs.result,
            "exitCode": n.outputs.exit_code,
        },
    })
}

fn artifact_view(run: &Run, nodes: &[Node], r: &ArtifactRecord) -> Option<Value> {
    let node = nodes.iter().find(|n| n.id == r.node)?;
    let id = run.node_id(node);
    let direction = match r.direction {
        Direction::Input => "inputs",
        Direction::Output => "outputs",
    };
    let enc = lookup::encode_segment;
    let url = format!(
        "/artifact-files/{}/workflows/{}/{}/{direction}/{}",
        enc(&run.namespace),
        enc(&run.record.name),
        enc(&id),
        enc(&r.name)
    );
    Some(json!({
        "node": id,
        "nodeName": node.display_name(),
        "name": r.name,
        "direction": r.direction,
        "driver": r.location.driver,
        "key": r.location.key,
        "gc": format!("{:?}", r.gc),
        "deleted": r.deleted,
        "gcError": r.error,
        "url": url,
    }))
}

pub(crate) async fn get(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(detail(&state, &name)?))
}

/// A submission: the workflow's YAML (with any WorkflowTemplates and
/// ConfigMaps it needs as further documents), its parameters, a name.
#[derive(Deserialize)]
pub(crate) struct SubmitBody {
    workflow: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
    #[serde(default)]
    name: Option<String>,
}

pub(crate) async fn submit(State(state): State<AppState>, Json(body): Json<SubmitBody>) -> ApiResult<Response> {
    let s = Submission { yaml: body.workflow, parameters: body.parameters.into_iter().collect(), name: body.name };
    let wf = runs::submit(&state, s).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": wf.name, "uid": wf.uid }))).into_response())
}

pub(crate) async fn stop(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let wf = state.home.workflow(&name)?;
    if state.driving.stop(&name) {
        return Ok(Json(json!({ "name": name, "stopping": true })));
    }
    let why = if wf.phase.is_done() {
        format!("run {name:?} is already {}", wf.phase)
    } else if state.home.in_progress(&wf)? {
        format!("run {name:?} is driven by another ferry process: stop it there (Ctrl-C or SIGTERM)")
    } else {
        format!("run {name:?} is not running (resume continues it)")
    };
    Err(Error::Conflict(why).into())
}

/// A decision on suspended nodes, as `ferry resume --approve/--fail` takes it.
#[derive(Deserialize, Default)]
pub(crate) struct ResumeBody {
    #[serde(default)]
    approve: bool,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    message: String,
    #[serde(default)]
    set: BTreeMap<String, String>,
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Option<Json<ResumeBody>>,
) -> ApiResult<Json<Value>> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    if body.approve && body.fail {
        return Err(Error::BadRequest("approve and fail exclude each other".into()).into());
    }
    let decision = (body.approve || body.fail).then_some(ferry_engine::Decision {
        approve: body.approve,
        message: body.message,
        supplied: body.set,
    });
    let what = match runs::resume(&state, &name, decision)? {
        Resumed::Decided => "decided",
        Resumed::Continued => "continued",
        Resumed::AlreadyDone => "already done",
    };
    Ok(Json(json!({ "name": name, "result": what })))
}

#[derive(Deserialize)]
pub(crate) struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    let report = runs::delete(&state, &name, q.force).await?;
    Ok(Json(json!({ "name": name, "deleted": report.deleted, "gcFailed": report.failed })))
}
