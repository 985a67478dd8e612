//! # Ferry driver SDK
//!
//! Write an [Argo Workflows](https://argoproj.github.io/workflows/) artifact
//! driver by implementing one small async trait, [`Driver`], or by handing over
//! an [`object_store::ObjectStore`] through [`ObjectStoreDriver`]. The SDK
//! serves it as `artifact.ArtifactService` on the unix socket Argo names in
//! `argv[1]`, with everything around it:
//!
//! - **Lifecycle** ([`run`], [`run_with`], [`serve`]): socket directory
//!   created, stale socket replaced, gRPC health and reflection (so
//!   `grpcurl -unix` works), graceful exit 0 on SIGTERM after in-flight calls
//!   finish (bounded by `FERRY_SHUTDOWN_GRACE_SECONDS`).
//! - **Environment and logs** ([`env`](mod@env), [`logging`]): every `FERRY_*`
//!   variable read by one typed reader, listed in one table; one logging
//!   setup (`FERRY_LOG`, `FERRY_LOG_FORMAT=json`) for every binary.
//! - **Telemetry** ([`metrics`], [`traces`]): Prometheus metrics on
//!   `FERRY_METRICS_ADDR`, and OpenTelemetry spans of every call, continuing
//!   the caller's W3C trace, exported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - **Configuration** ([`config`]): the artifact's `configuration` string read
//!   as YAML or JSON into your struct, with errors naming the field and line.
//! - **Secrets** ([`secrets`]): references in Argo's `{name, key}` shape
//!   resolved from environment variables, mounted files or (feature
//!   `kubernetes-secrets`) the Kubernetes API, never logged.
//! - **Semantics Argo relies on**: directories (every object under `key/`),
//!   idempotent delete of one object or, for a key ending in `/`, of a directory, full-key listings, not-found as gRPC
//!   `NOT_FOUND`, atomic local writes, OpenStream frames of at most 2 MiB
//!   ending in an empty `is_end` frame, mid-stream failures as errors.
//! - **A client** ([`client::DriverClient`]) for calling any driver.
//!
//! ## Why not implement the generated gRPC trait directly?
//! Because most of a correct driver is not storage code: framing, error
//! channels Argo reads differently per RPC, directory semantics, path safety
//! and shutdown. [`Driver`] keeps only what differs between storages.
//!
//! ## A driver in a few lines
//! See `docs/write-a-driver.md` and `driver-sdk/examples/memory_driver.rs`.
//!
//! ## Exit codes
//! Every driver binary whose `main` is [`run`] or [`run_with`] (all of
//! Ferry's) exits with the codes below, which `docs/configuration.md` lists
//! beside those of every other Ferry binary:
//!
//! | code | when |
//! | ---: | --- |
//! | 0 | it served until SIGTERM or SIGINT (or, with `FERRY_EXIT_WITH_PARENT=1`, until its parent died), then stopped once in-flight calls finished or the grace period ran out: what Argo requires of a plugin sidecar |
//! | 1 | it could not start, or stopped on a failure: no socket argument, a bad `FERRY_*` setting, the driver's own set-up failed (`run_with`, for example bad transfer options), the socket could not be bound, or the gRPC server failed. The reason is on stderr and in the log |
//!
//! A bad artifact `configuration` is not an exit: it fails that one call
//! with `InvalidConfig` and the driver keeps serving.

mod body_end;
pub mod client;
pub mod config;
mod decode_status;
mod driver;
pub mod env;
mod error;
mod key;
pub mod local;
pub mod logging;
pub mod metrics;
mod multipart;
#[cfg(feature = "http")]
pub mod net;
mod ranged;
pub mod secrets;
pub mod server;
pub mod store;
mod stream;
pub mod traces;

pub use driver::{Capabilities, DeleteTarget, Driver};
pub use error::{Error, ErrorKind, Result, SHOWN_BYTES, shown};
pub use ferry_proto as pb;
pub use key::{ArtifactKey, MAX_KEY_BYTES};
pub use server::{DriverService, run, run_with, serve};
pub use store::{KeyEncoding, ObjectStoreDriver, Store, StoreConnector, TransferOptions};
pub use stream::ByteStream;
