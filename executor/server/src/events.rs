//! What changes while a run runs: the run as server-sent events, and a
//! step's log followed as it is written.

use crate::api::detail;
use crate::error::{ApiError, Error};
use crate::lookup;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ferry_engine::{Node, NodeKind};
use futures::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How often a watched run or a followed log is looked at again. The state
/// database is the only channel from whichever process drives the run.
const POLL: Duration = Duration::from_millis(300);

/// `GET /api/v1/runs/{name}/events`: the run (as `GET /runs/{name}`) each
/// time it changes, as `run` events; an `end` event once it is over.
pub(crate) async fn run_events(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let first = detail(&state, &name)?;
    let watch = Watch { state, name, last: None, next: Some(first), step: Step::Watching };
    let stream = futures::stream::unfold(watch, Watch::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A run being watched for `run_events`.
struct Watch {
    state: AppState,
    name: String,
    last: Option<serde_json::Value>,
    next: Option<serde_json::Value>,
    step: Step,
}

#[derive(PartialEq)]
enum Step {
    Watching,
    /// The final state went out; `end` follows.
    Ending,
    Ended,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watch)> {
        match self.step {
            Step::Ended => return None,
            Step::Ending => {
                self.step = Step::Ended;
                return Some((Ok(Event::default().event("end").data("over")), self));
            }
            Step::Watching => {}
        }
        loop {
            let current = match self.next.take() {
                Some(v) => v,
                None => {
                    tokio::time::sleep(POLL).await;
                    match detail(&self.state, &self.name) {
                        Ok(v) => v,
                        // Deleted while watched: say so and end.
                        Err(e) => {
                            self.step = Step::Ended;
                            return Some((Ok(Event::default().event("end").data(e.to_string())), self));
                        }
                    }
                }
            };
            if self.last.as_ref() != Some(&current) {
                if is_over(&current) {
                    self.step = Step::Ending;
                }
                let event = Event::default().event("run").data(current.to_string());
                self.last = Some(current);
                return Some((Ok(event), self));
            }
        }
    }
}

fn is_over(v: &serde_json::Value) -> bool {
    let phase = v["run"]["phase"].as_str().unwrap_or_default();
    let driven = v["run"]["drivenHere"].as_bool().unwrap_or(false);
    !matches!(phase, "Pending" | "Running") && !driven
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    /// The node: Argo's node id or the pod name.
    node: Option<String>,
    #[serde(default)]
    follow: bool,
}

/// `GET /api/v1/runs/{name}/logs?node=…&follow=true`: a step's log as
/// text; followed until the step is over. Without a node, every step's log,
/// each line prefixed with the step's name.
pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let run = lookup::run(&state, &name, false)?;
    let nodes = state.home.store().nodes(run.record.id).map_err(ferry_engine::Error::from)?;
    let text = |body: Body| ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    let Some(id) = q.node else {
        let mut all = String::new();
        for n in nodes.iter().filter(|n| n.kind == NodeKind::Pod) {
            if let Ok(log) = std::fs::read_to_string(log_path(&run, n)) {
                for line in log.lines() {
                    all.push_str(&format!("{}: {line}\n", n.display_name()));
                }
            }
        }
        return Ok(text(Body::from(all)));
    };
    let node = match lookup::node(&run, &nodes, &id) {
        Ok(n) => n.clone(),
        // A step about to start can be followed before it has a node.
        Err(Error::NotFound(_)) if q.follow => wait_for_node(&state, &run, &id).await?,
        Err(e) => return Err(e.into()),
    };
    if node.kind != NodeKind::Pod {
        return Err(Error::BadRequest(format!("node {} is a {}: only steps have logs", id, node.kind.as_str())).into());
    }
    let path = log_path(&run, &node);
    if !q.follow {
        let log = tokio::fs::read(&path).await.unwrap_or_default();
        return Ok(text(Body::from(log)));
    }
    let follow = Follow { state, wf: run.record.id, node: node.id, path, offset: 0, done: false };
    Ok(text(Body::from_stream(futures::stream::unfold(follow, Follow::next))))
}

/// The node `id` once the run has it; not found once nothing drives the run
/// and it still has none.
async fn wait_for_node(state: &AppState, run: &lookup::Run, id: &str) -> Result<Node, Error> {
    loop {
        tokio::time::sleep(POLL).await;
        let nodes = state.home.store().nodes(run.record.id).map_err(ferry_engine::Error::from)?;
        match lookup::node(run, &nodes, id) {
            Ok(n) => return Ok(n.clone()),
            Err(e) => {
                let wf = state.home.workflow(&run.record.name)?;
                let driven = state.driving.drives(&wf.name) || state.home.in_progress(&wf)?;
                if !driven {
                    return Err(e);
                }
            }
        }
    }
}

fn log_path(run: &lookup::Run, n: &Node) -> std::path::PathBuf {
    let pod = ferry_workflow::naming::pod_name(&run.record.name, &n.template, &n.name);
    run.record.dir.join("logs").join(format!("{pod}.log"))
}

/// A log being followed: what was sent, and whether its step is over.
struct Follow {
    state: AppState,
    wf: i64,
    node: u32,
    path: std::path::PathBuf,
    offset: u64,
    done: bool,
}

impl Follow {
    /// The log's next bytes, waiting for them while the step runs; the
    /// stream ends once the step is over and its log read to the end.
    async fn next(mut self) -> Option<(Result<bytes::Bytes, std::io::Error>, Follow)> {
        loop {
            let chunk = self.read_more().await;
            match chunk {
                Ok(Some(b)) => return Some((Ok(b), self)),
                Ok(None) if self.done => return None,
                Ok(None) => {}
                Err(e) => return Some((Err(e), Follow { done: true, ..self })),
            }
            // Read the node's phase before the next read, so the bytes
            // written before it ended are read after it is seen to end.
            self.done = self.over();
            if !self.done {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    async fn read_more(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        file.seek(std::io::SeekFrom::Start(self.offset)).await?;
        let mut buf = vec![0; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        self.offset += n as u64;
        Ok(Some(bytes::Bytes::from(buf)))
    }

    fn over(&self) -> bool {
        let nodes = self.state.home.store().nodes(self.wf);
        nodes.map_or(true, |ns| ns.iter().find(|n| n.id == self.node).is_none_or(|n| n.phase.is_done()))
    }
}
