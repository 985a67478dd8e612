//! # ferry-conformance
//!
//! The conformance suite for Argo Workflows artifact drivers: any program that
//! serves `artifact.ArtifactService` on a unix socket, in any language. It talks
//! to the driver only over that socket, as Argo does, and never retries: it
//! tests the driver, not the network.
//!
//! Every case has a stable ID, a level (MUST, SHOULD, INFO) and tags. A case
//! the driver does not claim is skipped with its reason, never dropped. The run
//! exits 0 only when every MUST case passes.
//!
//! The suite writes and deletes data under the profile's `keyPrefix` plus a
//! random run id; point it at a bucket or root you do not mind it using.

pub mod case;
pub mod cases;
pub mod container;
pub mod context;
pub mod profile;
pub mod report;
pub mod runner;
pub mod starter;
