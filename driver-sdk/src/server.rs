//! Serving a [`Driver`] on a unix socket as `artifact.ArtifactService`, the way
//! Argo runs plugins: socket path as the last argument, graceful exit 0 on
//! SIGTERM. The same socket serves Ferry's optional `ferry.v1.ObjectService`
//! (an object's size and byte ranges), which Argo never calls.
//!
//! Most drivers need only [`run`] or [`run_with`] (re-exported at the crate
//! root, with [`serve`] and [`DriverService`]). The rest is for hosting a
//! driver in a server of your own: binding the socket, the signals, and the
//! two request and response layers a server hosting [`DriverService`] must
//! install ([`watch`], [`decode_failure_as_invalid_argument`]).
//!
//! One job per file: `service` adapts the eight RPCs to the driver,
//! `object` the two of Ferry's extension, `frames` cuts streamed responses, `shutdown` knows signals, grace and
//! in-flight calls, `socket` finds and binds the socket, and `run` is a
//! driver's whole `main`. [`serve`], here, puts them together.

mod frames;
mod object;
mod run;
mod service;
mod shutdown;
mod socket;

pub use frames::{DEFAULT_STREAM_IDLE_TIMEOUT, MAX_FRAME_BYTES, STREAM_IDLE_TIMEOUT_ENV};
pub use run::{DEFAULT_MAX_BLOCKING_THREADS, MAX_BLOCKING_THREADS_ENV, run, run_with};
pub use service::{DEFAULT_MAX_STREAMS, DriverService, MAX_STREAMS_ENV, max_streams};
pub use shutdown::{DEFAULT_SHUTDOWN_GRACE, EXIT_WITH_PARENT_ENV, SHUTDOWN_GRACE_ENV, shutdown_grace, shutdown_signal};
pub use socket::{bind, socket_path_from_args};

pub use crate::body_end::watch;
pub use crate::decode_status::decode_failure_as_invalid_argument;

use crate::driver::Driver;
use crate::error::{Error, Result};
use ferry_proto::artifact_service_server::ArtifactServiceServer;
use ferry_proto::ferry_v1::object_service_server::ObjectServiceServer;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// Serves `driver` on `socket` until `shutdown` resolves, then lets in-flight
/// calls finish for at most `grace` and removes the socket.
pub async fn serve<D: Driver>(
    socket: &Path,
    driver: D,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<()> {
    let listener = bind(socket)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    // By name, not by type: a generic await here makes `serve` non-Send for
    // drivers built from closures (a rustc higher-ranked lifetime limitation).
    health.set_service_status(ferry_proto::SERVICE_NAME, tonic_health::ServingStatus::Serving).await;
    health.set_service_status(ferry_proto::ferry_v1::SERVICE_NAME, tonic_health::ServingStatus::Serving).await;
    let reflection_error = |e| Error::other(format!("building reflection service: {e}"));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ferry_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(reflection_error)?;
    // The older protocol too: grpcurl before 1.9, and many tools, ask only for v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ferry_proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(reflection_error)?;

    let service = DriverService::new(driver)
        .with_max_streams(max_streams()?)
        .with_stream_idle_timeout(crate::env::duration(STREAM_IDLE_TIMEOUT_ENV, DEFAULT_STREAM_IDLE_TIMEOUT)?);
    // One service state behind both: one target cache, stream limit and in-flight count.
    let service = std::sync::Arc::new(service);
    let in_flight = service.in_flight();
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new calls, waiting for in-flight ones");
        let _ = stopping_tx.send(true);
    };
    let server = tonic::transport::Server::builder()
        .layer(crate::traces::RpcSpanLayer)
        .layer(tower::util::MapRequestLayer::new(watch))
        .layer(tower::util::MapResponseLayer::new(decode_failure_as_invalid_argument))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(ArtifactServiceServer::from_arc(service.clone()))
        .add_service(ObjectServiceServer::from_arc(service))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::UnixListenerStream::new(listener), signal);
    tracing::info!(socket = %socket.display(), "serving artifact.ArtifactService and ferry.v1.ObjectService");
    let drained = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::select! {
            () = in_flight.idle() => tracing::info!("all calls finished"),
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_seconds = grace.as_secs(), "grace period over with calls still in flight; exiting");
            }
        }
    };
    let result = tokio::select! {
        r = server => r.map_err(|e| Error::other(format!("gRPC server failed: {e}"))),
        () = drained => Ok(()),
    };
    let _ = std::fs::remove_file(socket);
    result
}
