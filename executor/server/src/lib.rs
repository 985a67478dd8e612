//! # ferry-server
//!
//! `ferry server`: what argo-server is to Argo, for a Ferry home. It serves
//!
//! - argo-server's artifact routes (`/artifacts/…`, `/input-artifacts/…`,
//!   `/artifacts-by-uid/…`, `/artifact-files/…`, `/upload-artifacts/…`),
//!   streamed through each artifact's driver: nothing staged on disk;
//! - a JSON API for runs, nodes, logs and actions (submit, stop, resume,
//!   delete), with live updates as server-sent events;
//! - a web UI, built into the binary, that works offline.
//!
//! It binds to loopback unless told otherwise, and elsewhere only with a
//! bearer token ([`Options::token`]).
//!
//! Inside: `download` and `upload` are the artifact routes; `api` and
//! `events` the JSON API; `runs` submits, resumes and deletes runs and `driving` runs them; `auth` checks
//! tokens and origins; `lookup` finds what a URL names; `state` holds the
//! driver pools; `ui` serves the pages.
#![warn(unreachable_pub)]

mod api;
mod auth;
mod download;
mod driving;
mod error;
mod events;
mod graph;
mod lookup;
mod runs;
mod state;
mod ui;
mod upload;

pub use error::{Error, Result};

use axum::Router;
use axum::routing::{get, post};
use ferry_engine::{Home, Runtime};
use ferry_workflow::plan::RuntimeChoice;
use ferry_workflow::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Argo's port: links and scripts written for a local argo-server work.
pub const DEFAULT_PORT: u16 = 2746;

/// `FERRY_SERVER_TOKEN`: the bearer token, unless `--auth-token` gives one.
pub const TOKEN_ENV: &str = "FERRY_SERVER_TOKEN";

/// Argo's default cap on an upload, 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1 << 30;

/// Makes the runtime a run's steps run in, from where the run was started.
pub type RuntimeFactory = Arc<dyn Fn(&RuntimeChoice) -> std::result::Result<Arc<dyn Runtime>, String> + Send + Sync>;

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The bearer token every request must carry; required off loopback.
    pub token: Option<String>,
    /// A directory of WorkflowTemplate (and ConfigMap) YAML files: what
    /// uploads name and submitted workflows may reference.
    pub templates: Option<PathBuf>,
    /// The drivers runs submitted here may use, and uploads go through.
    pub registry: Registry,
    /// The largest file an upload may carry.
    pub max_upload_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            token: None,
            templates: None,
            registry: Registry::builtin(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
        }
    }
}

impl Options {
    /// The template files, if a templates directory was given.
    fn template_files(&self) -> Result<Vec<PathBuf>> {
        self.templates.as_deref().map_or(Ok(Vec::new()), runs::yaml_files)
    }

    /// Where submitted workflow files are kept, for the runs' messages.
    fn submissions_dir(&self, home: &Home) -> PathBuf {
        home.artifacts_dir().with_file_name("submitted")
    }

    /// Temporary files for uploads to a driver without SaveStream.
    fn scratch_dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("ferry-server-{}", std::process::id()))
    }
}

/// A server bound to its address, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: state::AppState,
}

impl Server {
    /// Binds to `options.listen`. Refuses a non-loopback address without a
    /// token: the API can run workflows, which run programs on this host.
    pub async fn bind(home: Home, options: Options, runtime: RuntimeFactory) -> Result<Server> {
        if !options.listen.ip().is_loopback() && options.token.as_deref().is_none_or(str::is_empty) {
            return Err(Error::BadRequest(format!(
                "refusing to listen on {} without a token: set --auth-token or {TOKEN_ENV} (anyone who can reach the server can run programs on this host)",
                options.listen
            )));
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| Error::Internal(format!("listening on {}: {e}", options.listen)))?;
        let state = state::AppState {
            home: Arc::new(home),
            pools: Arc::default(),
            options: Arc::new(options),
            driving: Arc::default(),
            runtime,
            plans: Arc::default(),
        };
        Ok(Server { listener, state })
    }

    /// The address it listens on (the port chosen, for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Internal(format!("listening socket: {e}")))
    }

    /// Serves until `shutdown` completes, then finishes the requests in
    /// flight, interrupts the runs it drives (so they can be resumed) and
    /// stops its drivers.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let state = self.state.clone();
        let app = router(self.state);
        let served = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        state.driving.stop_all().await;
        state.pools.shutdown().await;
        served.map_err(|e| Error::Internal(format!("serving: {e}")))
    }
}

fn router(state: state::AppState) -> Router {
    let api = Router::new()
        .route("/runs", get(api::list).post(api::submit))
        .route("/runs/{name}", get(api::get).delete(api::delete))
        .route("/runs/{name}/events", get(events::run_events))
        .route("/runs/{name}/logs", get(events::logs))
        .route("/runs/{name}/stop", post(api::stop))
        .route("/runs/{name}/resume", post(api::resume));
    Router::new()
        .nest("/api/v1", api)
        .route("/artifacts/{*rest}", get(download::output))
        .route("/input-artifacts/{*rest}", get(download::input))
        .route("/artifacts-by-uid/{*rest}", get(download::output_by_uid))
        .route("/input-artifacts-by-uid/{*rest}", get(download::input_by_uid))
        .route("/artifact-files/{*rest}", get(download::file))
        // An upload's limit is its own (--max-upload-bytes), counted as it streams.
        .route(
            "/upload-artifacts/{namespace}/{template}/{artifact}",
            post(upload::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .merge(ui::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .with_state(state)
}
